"""The heuristic economic network design: dynamic slope scaling with a bound.

:func:`heuristic_design` starts from a minimum Steiner tree (trench cost dominates), a shortest-path tree at full
load (carried load dominates) and the shortest paths at one consumer's load, and improves each by dynamic slope
scaling (Kim and Pardalos 1999): each round routes every consumer along its cheapest path under per-kW slopes (one
Dijkstra run from a super-source whose arcs to the sources carry a capacity price), takes the slopes of the
resulting tree's edges (cost / load) for the next round and keeps the cheapest tree. In every round the optional
consumers are chosen on the tree: those whose subtree does not pay are pruned, those left out that pay when joined
to the tree at its nearest node are added. Its lower bound is the LP relaxation of the MILP
(:func:`heatmap.network.design_milp.lp_bound`), so its gap is reported too. The problem and the cost curve are
:mod:`heatmap.network.design`.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order, depth_first_order, dijkstra

from heatmap._errors import RoutingError
from heatmap.network import design, design_milp, routing

logger = logging.getLogger(__name__)


def _prune(ix: design.ProblemIndex, tree: design.Forest) -> design.Forest:
    """Leave out optional consumers (and the edges only they need) whose subtree costs more than it earns.

    Strong pruning on the fixed tree, bottom-up: a node's worth is the prize of its consumer (infinite for a
    required one) plus the net worth of the children kept; the edge into it costs what it costs at the load of the
    consumers kept below it; a subtree whose worth does not cover that edge (or that keeps no consumer) is cut.
    """
    tree = design.Forest(tree.parent.copy(), tree.parent_edge.copy(), tree.connected.copy())
    depth = design.depths(tree.parent)
    _, order = design.edge_loads(ix, tree, depth=depth)
    d = depth[order]
    priced = not ix.con_required.all()  # all required: only subtrees without a consumer go, whatever they cost
    worth, kept = np.zeros(ix.n), np.zeros(ix.n)
    nodes = ix.con_node[tree.connected]
    worth[nodes] = np.where(ix.con_required, np.inf, ix.con_prize)[tree.connected]
    kept[nodes] = ix.con_load[tree.connected]
    cut = np.zeros(ix.n, dtype=bool)
    levels = np.split(order, np.flatnonzero(np.diff(d)) + 1)
    for lvl in levels:
        net = worth[lvl] - ix.costs.at(kept[lvl], tree.parent_edge[lvl]) if priced else worth[lvl]
        bad = (net < 0) | (kept[lvl] <= 0)
        cut[lvl[bad]] = True
        np.add.at(worth, tree.parent[lvl[~bad]], net[~bad])
        np.add.at(kept, tree.parent[lvl[~bad]], kept[lvl[~bad]])
    for lvl in reversed(levels):  # every node below a cut is off the tree
        cut[lvl] |= cut[tree.parent[lvl]]
    tree.parent[cut] = -1
    tree.parent_edge[cut] = -1
    tree.connected &= ~cut[ix.con_node]
    return tree


def _select(ix: design.ProblemIndex, tree: design.Forest, *, rounds: int = 10) -> design.Forest:
    """Choose the optional consumers on a tree: prune those that do not pay, add back those that do.

    Pruning (:func:`_prune`) alone keeps what pays on the tree as routed; an optional consumer routed along a path
    others do not share may pay when joined to the pruned tree at its nearest node instead. Each round joins every
    left-out optional consumer whose prize beats its cheapest join (:func:`_joins`), then prunes again; until no
    consumer is added.
    """
    tree = _prune(ix, tree)
    if ix.con_required.all():
        return tree
    for _ in range(rounds):
        joined = _joins(ix, tree)
        if joined is None:
            break
        tree = _prune(ix, joined)
    return tree


def _joins(ix: design.ProblemIndex, tree: design.Forest) -> design.Forest | None:
    """Join each left-out optional consumer that pays to the tree by its cheapest path (``None``: none pays).

    The path is the shortest from any node of the tree (or a source) under each edge's fixed price at a first kW
    (one multi-source Dijkstra run); its price is that plus the consumer's load × the segment's slope
    along it and × the slopes of the tree's edges from where it joins up to the source (the extra load they carry).
    """
    seg_fixed, seg_slope = ix.costs.first()
    on = (tree.parent >= 0) | np.isin(np.arange(ix.n), ix.src_node)
    starts = np.flatnonzero(on)
    graph = sp.csr_matrix(
        (
            np.concatenate([seg_fixed, seg_fixed]) + 1e-9,
            (np.concatenate([ix.ea, ix.eb]), np.concatenate([ix.eb, ix.ea])),
        ),
        shape=(ix.n, ix.n),
    )
    dist, pred = dijkstra(graph, directed=True, indices=starts, min_only=True, return_predecessors=True)[:2]
    # per-kW price along each shortest path, and of the tree from each of its nodes up to the source
    pred = np.where(pred >= 0, pred, -1)
    step = np.zeros(ix.n)
    step[pred >= 0] = seg_slope[design.edges_of(ix, pred)[pred >= 0]]
    path_slope = design.path_sums(pred, step)
    edge_load, _ = design.edge_loads(ix, tree)
    tree_slope = ix.costs.slope_at(edge_load)
    step = np.zeros(ix.n)
    step[tree.parent >= 0] = tree_slope[tree.parent_edge[tree.parent >= 0]]
    up = design.path_sums(tree.parent, step)
    # the node of the tree each path starts from: climb the predecessors
    origin = np.where(on, np.arange(ix.n), -1)
    todo = np.flatnonzero(~on & (pred >= 0))
    climb = pred.copy()
    while len(todo):
        hit = on[climb[todo]]
        origin[todo[hit]] = climb[todo[hit]]
        todo = todo[~hit]
        climb[todo] = pred[climb[todo]]
        todo = todo[climb[todo] >= 0]
    t = np.flatnonzero(~tree.connected & ~ix.con_required & ix.reach)
    node = ix.con_node[t]
    ok = np.isfinite(dist[node]) & (origin[node] >= 0)
    t, node = t[ok], node[ok]
    d = ix.con_load[t]
    price = dist[node] + d * (path_slope[node] + up[origin[node]])
    pays = ix.con_prize[t] > price
    if not pays.any():
        return None
    out = design.Forest(tree.parent.copy(), tree.parent_edge.copy(), tree.connected.copy())
    frontier = node[pays]
    while len(frontier):  # lay each chosen path back to the tree
        frontier = frontier[~on[frontier] & (out.parent[frontier] < 0)]
        out.parent[frontier] = pred[frontier]
        frontier = pred[frontier]
    out.parent_edge = design.edges_of(ix, out.parent)
    out.connected[t[pays]] = True
    return out


def _shortest_path_forest(ix: design.ProblemIndex, per_kw: np.ndarray, offset: np.ndarray) -> design.Forest:
    """Route every consumer along its cheapest path under per-kW edge prices.

    The paths start at a super-source whose arc to each source is priced ``offset``; arcs into sources are left out
    so each tree holds one source.
    """
    n = ix.n
    sup = n
    rows = np.concatenate([ix.ea, ix.eb, np.full(len(ix.src_node), sup)])
    cols = np.concatenate([ix.eb, ix.ea, ix.src_node])
    w = np.concatenate([per_kw, per_kw, offset]) + 1e-12
    into_source = np.isin(cols, ix.src_node) & (rows != sup)
    rows, cols, w = rows[~into_source], cols[~into_source], w[~into_source]
    graph = sp.csr_matrix((w, (rows, cols)), shape=(n + 1, n + 1))
    _, pred = dijkstra(graph, directed=True, indices=sup, return_predecessors=True)
    pred = pred[:n]
    # keep only the paths to the consumers routed (reachable ones)
    parent = np.full(n, -1, dtype=np.int64)
    keep = np.zeros(n, dtype=bool)
    frontier = ix.con_node[ix.reach]
    frontier = frontier[pred[frontier] >= 0]
    while len(frontier):
        frontier = frontier[~keep[frontier]]
        keep[frontier] = True
        nxt = pred[frontier]
        frontier = nxt[(nxt >= 0) & (nxt != sup)]
    parent[keep] = pred[keep]
    parent[np.isin(np.arange(n), ix.src_node)] = -1
    parent[parent == sup] = -1
    parent_edge = design.edges_of(ix, parent)
    connected = ix.reach & (parent[ix.con_node] >= 0)
    return design.Forest(parent, parent_edge, connected)


def _steiner_start(ix: design.ProblemIndex) -> design.Forest:
    """Start from Mehlhorn's minimum Steiner tree on trench weight, per supply area.

    As :func:`heatmap.network.routing.route_network` routes (each node in the supply area of its nearest source, a
    Steiner tree per area holding a consumer: :func:`heatmap.network.routing.steiner_edges`), on the index arrays.
    """
    n = ix.n
    if not len(ix.src_node):
        raise RoutingError("no heat source could be connected to the street network")
    graph = sp.csr_matrix((ix.weight_m, (ix.ea, ix.eb)), shape=(n, n))
    leads = np.unique(ix.src_node)
    _, _, area = dijkstra(graph, directed=False, indices=leads, min_only=True, return_predecessors=True)
    area = np.where(area >= 0, area, -1)  # the supply area: each node's nearest source
    consumers = ix.con_node[ix.reach & (area[ix.con_node] >= 0)]
    if not len(consumers):
        raise RoutingError(
            "no consumer can be reached from any source along the streets; check that the sources lie "
            "on the same street network as the consumers"
        )
    terminals = np.concatenate([consumers, leads[np.isin(area[leads], area[consumers])]])
    inside = area[ix.ea] == area[ix.eb]
    ta, tb = routing.steiner_edges(n, ix.ea[inside], ix.eb[inside], ix.weight_m[inside], terminals)
    # orient each tree away from its source: a breadth-first walk from a root joined to every source
    root = np.concatenate([ta, tb, np.full(len(leads), n)])
    leaf = np.concatenate([tb, ta, leads])
    tree = sp.csr_matrix((np.ones(len(root)), (root, leaf)), shape=(n + 1, n + 1))
    _, pred = breadth_first_order(tree, n, directed=True, return_predecessors=True)
    parent = np.where((pred[:n] >= 0) & (pred[:n] < n), pred[:n], -1).astype(np.int64)
    return design.Forest(parent, design.edges_of(ix, parent), ix.reach & (parent[ix.con_node] >= 0))


def heuristic_design(
    problem: design.DesignProblem,
    *,
    rounds: int = 30,
    bound: bool = True,
    bound_time_s: float = 30.0,
    local_search_moves: int = 2000,
) -> design.Design:
    """design.Design the network by dynamic slope scaling from a Steiner and a shortest-path start.

    Parameters
    ----------
    problem
        The design problem.
    rounds
        Slope-scaling rounds per start at most (each one Dijkstra run; a start stops when its tree repeats).
    bound
        Compute a lower bound (the MILP's LP relaxation, HiGHS: :func:`lp_bound`) so the design carries its gap.
    bound_time_s
        Time limit of the LP.
    local_search_moves
        Moves of subtrees to cheaper places tried on the best tree found at most (:func:`_relocate`).

    Returns
    -------
    design.Design
    """
    t0 = time.perf_counter()
    ix = design.index_problem(problem)
    total_load = float(ix.con_load[ix.reach].sum())
    offset = np.zeros(len(ix.src_node))  # each source's capacity price, raised where it is overloaded (kept)
    # per-kW slope of every edge at the full load (the least it can be): the shortest-path start
    full = ix.costs.at(np.full(len(ix.edge_id), max(total_load, 1.0))) / max(total_load, 1.0)
    # every edge's cost at a mean consumer's load: shortest paths that weigh trench and load as one consumer does
    mean_load = max(float(ix.con_load.mean()) if len(ix.con_load) else 1.0, 1e-3)
    at_mean = ix.costs.at(np.full(len(ix.edge_id), mean_load))
    starts = {
        "shortest paths": _select(ix, _shortest_path_forest(ix, full, offset)),
        "steiner": _select(ix, _steiner_start(ix)),
        "one consumer's paths": _select(ix, _shortest_path_forest(ix, at_mean, offset)),
    }
    best: tuple[float, str, design.Forest] | None = None
    for name, tree in starts.items():
        slope = full.copy()
        seen: set[bytes] = set()
        for _ in range(rounds):
            tree = _capacity_feasible(ix, tree, slope, offset)
            c, p = design.evaluate(ix, tree)
            if best is None or c - p < best[0] - 1e-6:
                best = (c - p, name, tree)
            key = tree.parent.tobytes()
            if key in seen:
                break
            seen.add(key)
            edge_load, _ = design.edge_loads(ix, tree)
            used = edge_load > 0
            slope = slope.copy()
            slope[used] = ix.costs.at(edge_load)[used] / edge_load[used]
            tree = _select(ix, _shortest_path_forest(ix, slope, offset))
    assert best is not None
    tree = _relocate(ix, best[2], moves=local_search_moves)
    t1 = time.perf_counter()
    result = design.to_design(ix, tree, method="heuristic", status="heuristic")
    result.time_s = {"heuristic": t1 - t0}
    if bound:
        design_milp.lp_bound(ix, time_limit_s=bound_time_s).onto(result)
        result.time_s["bound"] = time.perf_counter() - t1
    logger.info("Heuristic design (best from the %s start): %s", best[1], result.describe())
    return result


def _relocate(ix: design.ProblemIndex, tree: design.Forest, *, moves: int) -> design.Forest:
    """Move subtrees to where they cost less, until no move pays or ``moves`` have been tried (a local search).

    A move takes the subtree below a node ``v`` (a consumer's node or a branching node) with its load ``L`` off the
    tree, with the path above it that only it needed, and joins it again by the cheapest path from any node of the
    rest of the tree (one Dijkstra run from ``v`` over the nodes off the tree, each edge priced at load ``L``),
    where that path plus ``L`` × the per-kW slopes of the edges upstream of the joining point (and a source's
    overload penalty) costs less than what the move saves. A move so found is made only where the whole tree,
    priced again, costs less. Moves are tried in a seeded order: the same problem gives the same tree.
    """
    t0 = time.perf_counter()
    arcs = _Arcs(ix)
    state = _TreeState(ix, tree, arcs)
    rng = np.random.default_rng(0)
    tried = made = 0
    improved = True
    while improved and tried < moves:
        improved = False
        for v in rng.permutation(state.key_nodes()):
            if tried >= moves:
                break
            if state.tree.parent[v] < 0:
                continue
            tried += 1
            moved = _relocation(state, int(v))
            if moved is not None:
                state = moved
                made += 1
                improved = True
    logger.info("Local search: %d moves made of %d tried in %.2f s", made, tried, time.perf_counter() - t0)
    return state.tree


class _Arcs:
    """Both directions of every edge in the order of a CSR matrix (built once; each move gives its prices)."""

    def __init__(self, ix: design.ProblemIndex):
        n = ix.n
        self.is_src = np.zeros(n, dtype=bool)
        self.is_src[ix.src_node] = True
        arc_a = np.concatenate([ix.ea, ix.eb])
        arc_b = np.concatenate([ix.eb, ix.ea])
        order = np.lexsort((arc_b, arc_a))
        self.a, self.b = arc_a[order], arc_b[order]
        self.e = np.concatenate([np.arange(len(ix.ea)), np.arange(len(ix.ea))])[order]
        self.indptr = np.searchsorted(self.a, np.arange(n + 1))
        self.graph = sp.csr_matrix((np.zeros(len(self.a)), self.b, self.indptr), shape=(n, n))  # prices per move
        c = ix.costs  # each arc's cost by its load (its edge's)
        self.costs = design.EdgeCosts(
            c.fixed_eur[self.e], c.eur_per_kw[self.e], c.lower_kw[self.e], c.upper_kw[self.e], c.existing[self.e]
        )


class _Priced:
    """A forest priced: its depths, edge loads, edge costs and objective (cost and any overload penalty)."""

    def __init__(self, ix: design.ProblemIndex, tree: design.Forest):
        self.tree = tree
        self.depth = design.depths(tree.parent)
        self.edge_load, _ = design.edge_loads(ix, tree, depth=self.depth)
        self.cost = ix.costs.at(self.edge_load)
        self.objective = float(self.cost.sum()) + design.overload(ix, tree, self.edge_load)[1]


class _TreeState:
    """A forest with what moves on it need: loads, costs, per-kW slopes up to the source, an Euler tour."""

    def __init__(self, ix: design.ProblemIndex, tree: design.Forest | _Priced, arcs: _Arcs):
        priced = tree if isinstance(tree, _Priced) else _Priced(ix, tree)
        self.ix, self.tree, self.arcs = ix, priced.tree, arcs
        tree = priced.tree
        n = ix.n
        self.is_src = arcs.is_src
        self.edge_load, self.cost, self.objective = priced.edge_load, priced.cost, priced.objective
        self.on = tree.parent >= 0
        self.children = np.bincount(tree.parent[self.on], minlength=n)
        self.terminal = self.is_src.copy()
        self.terminal[ix.con_node[tree.connected]] = True
        slope = ix.costs.slope_at(self.edge_load)
        step = np.zeros(n)
        step[self.on] = slope[tree.parent_edge[self.on]]
        # € per kW more from each node up to its source
        self.slope_up = design.path_sums(tree.parent, step, depth=priced.depth)
        self.tin, self.tout = _euler(tree.parent, depth=priced.depth)
        self.from_off = ~(self.on | self.is_src)[arcs.a]  # arcs leaving a node off the tree

    def key_nodes(self) -> np.ndarray:
        """Nodes whose subtree a move may take: consumers' and branching nodes on the tree."""
        return np.flatnonzero(self.on & (self.terminal | (self.children >= 2)))


def _euler(parent: np.ndarray, *, depth: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return entry and exit times of a depth-first walk of a forest (the subtree of v: tin in [tin[v], tout[v])).

    The entry times are a preorder (:func:`scipy.sparse.csgraph.depth_first_order` from each root with children);
    a node's exit time is its entry time plus the size of its subtree (summed level by level, deepest first).
    ``depth``: the forest's :func:`heatmap.network.design.depths`, where known already.
    """
    n = len(parent)
    on = np.flatnonzero(parent >= 0)
    children = sp.csr_matrix((np.ones(len(on)), (parent[on], on)), shape=(n, n))
    tin = np.full(n, -1, dtype=np.int64)
    clock = 0
    for root in np.flatnonzero((parent < 0) & (np.bincount(parent[on], minlength=n) > 0)).tolist():
        order = depth_first_order(children, root, directed=True, return_predecessors=False)
        tin[order] = clock + np.arange(len(order))
        clock += len(order)
    alone = np.flatnonzero(tin < 0)  # nodes off every tree: a walk of their own
    tin[alone] = clock + np.arange(len(alone))
    size = np.ones(n, dtype=np.int64)
    depth = design.depths(parent) if depth is None else depth
    by_depth = design.deepest_first(depth[on])
    nodes = on[by_depth]
    for level in np.split(nodes, np.flatnonzero(np.diff(depth[nodes])) + 1):
        np.add.at(size, parent[level], size[level])
    return tin, tin + size


def _relocation(state: _TreeState, v: int) -> _TreeState | None:
    """Return the tree with the subtree below ``v`` moved to its cheapest place (``None``: no move pays)."""
    ix, tree, arcs = state.ix, state.tree, state.arcs
    load = state.edge_load[tree.parent_edge[v]]
    if load <= 0:
        return None
    # the path above v that only its subtree needs: up while the node above is a Steiner node of one child
    removed = [int(tree.parent_edge[v])]
    freed = []
    p = int(tree.parent[v])
    while not state.terminal[p] and state.children[p] == 1 and tree.parent[p] >= 0:
        removed.append(int(tree.parent_edge[p]))
        freed.append(p)
        p = int(tree.parent[p])
    saving = float(state.cost[removed].sum()) + load * state.slope_up[p]
    below = (state.tin >= state.tin[v]) & (state.tin < state.tout[v])
    rest = (state.on & ~below) | state.is_src
    rest[freed] = False
    # Dijkstra from v over the nodes off the rest of the tree: a rest node (a source too) only ends a path, and the
    # path is laid from it to v (so nothing enters a source)
    blocked = below.copy()
    blocked[v] = False
    # the arcs a path may take: from a node off the tree, from v or a freed node; into none of the subtree
    ok = state.from_off & ~blocked[arcs.b]
    for w in (v, *freed):
        out_of = slice(arcs.indptr[w], arcs.indptr[w + 1])
        ok[out_of] = ~blocked[arcs.b[out_of]]
    price = arcs.costs.at_load(load)
    price += 1e-9
    price[~ok] = np.inf
    graph = arcs.graph
    graph.data = price
    # a path dearer than the move saves cannot pay: the search stops there
    dist, pred = dijkstra(graph, directed=True, indices=v, return_predecessors=True, limit=saving)
    total = np.where(rest, dist + load * state.slope_up, np.inf)
    total[v] = np.inf
    u = int(np.argmin(total))
    if not np.isfinite(total[u]) or total[u] >= saving - 1e-9 * max(1.0, saving):
        return None
    out = design.Forest(tree.parent.copy(), tree.parent_edge.copy(), tree.connected.copy())
    out.parent[freed] = -1
    w = u
    while w != v:
        prev = int(pred[w])
        out.parent[prev] = w
        w = prev
    out.parent_edge = design.edges_of(ix, out.parent)
    priced = _Priced(ix, out)
    if priced.objective < state.objective - 1e-9 * max(1.0, abs(state.objective)):
        return _TreeState(ix, priced, arcs)
    return None


def _capacity_feasible(
    ix: design.ProblemIndex,
    tree: design.Forest,
    slope: np.ndarray,
    offset: np.ndarray,
) -> design.Forest:
    """Re-route until no source carries more than its capacity.

    An overloaded source's arc from the super-source is priced up (a capacity price) and the consumers re-routed (a
    few rounds; what is left, sizing reports).
    """
    if len(ix.src_node) < 2:
        return tree
    for _ in range(20):
        load = design.source_loads(ix, tree)
        over = load > ix.src_cap * (1 + 1e-9)
        if not over.any():
            return tree
        scale = float(np.median(slope[slope > 0])) * float(np.median(ix.length_m)) if (slope > 0).any() else 1.0
        offset[over] += scale * (1 + load[over] / ix.src_cap[over])
        tree = _select(ix, _shortest_path_forest(ix, slope, offset))
    return tree
