"""The heuristic economic network design: dynamic slope scaling, a local search and perturbation, with a bound.

:func:`heuristic_design` starts from a minimum Steiner tree (trench cost dominates), a shortest-path tree at full
load (carried load dominates) and the shortest paths at one consumer's load, and improves each by dynamic slope
scaling (Kim and Pardalos 1999): each round routes every consumer along its cheapest path under per-kW slopes (one
Dijkstra run from a super-source whose arcs to the sources carry a capacity price), takes the slopes of the
resulting tree's edges (cost / load) for the next round and keeps the cheapest tree. In every round the optional
consumers are chosen on the tree: those whose subtree does not pay are pruned, those left out that pay when joined
to the tree at its nearest node are added. The cheapest tree is then improved by a local search that moves
subtrees, joined again at whichever of their nodes costs least (key-path exchange, :func:`_relocate`), and by an
iterated local search from perturbed slopes (:func:`_perturbed`), last by regions re-solved exactly by the MILP in
searches from the cheapest trees found, their plans merged (a large-neighbourhood search,
:mod:`heatmap.network.design_lns`). Its lower bound is the LP relaxation of the MILP
(:func:`heatmap.network.design_milp.lp_bound`), so its gap is reported too. The problem and the cost curve are
:mod:`heatmap.network.design`.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order, dijkstra

from heatmap._errors import RoutingError
from heatmap.network import design, design_lns, design_milp, routing

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


LOCAL_SEARCH_FULL_CONSUMERS = 10_000
"""Above this many reachable consumers the local search tries fewer moves, in proportion (each move made prices the
whole tree again: at 50,000 consumers 2,000 moves took 14 s, 400 moves 3 s)."""


def heuristic_design(
    problem: design.DesignProblem,
    *,
    rounds: int = 30,
    bound: bool = True,
    bound_time_s: float = 30.0,
    bound_mip_time_s: float = 0.0,
    bound_mip_solver: str = "scip",
    local_search_moves: int = 2000,
    perturbations: int = 4,
    perturbations_max_consumers: int = 2000,
    regions: int = 30,
    region_nodes: int = 25,
    region_searches: int = 3,
) -> design.Design:
    """Design the network by dynamic slope scaling from a Steiner and a shortest-path start, then a local search.

    Parameters
    ----------
    problem
        The design problem.
    rounds
        Slope-scaling rounds per start at most (each one Dijkstra run; a start stops when its tree repeats).
    bound
        Compute a lower bound (the MILP's LP relaxation, HiGHS: :func:`lp_bound`; its first cuts on the design's
        subtrees) so the design carries its gap.
    bound_time_s
        Time limit of the bound.
    bound_mip_time_s
        Of it, time for a branch and cut on the MILP after the LP relaxation, to raise the bound (0: the LP's;
        a time makes the bound depend on the machine's speed).
    bound_mip_solver
        Its solver: ``highs`` or ``scip`` (:meth:`heatmap.network.design_milp._CutLP.search`).
    local_search_moves
        Moves of subtrees to cheaper places tried on the best tree found at most (:func:`_relocate`), and in each
        perturbation round; fewer in proportion above :data:`LOCAL_SEARCH_FULL_CONSUMERS` reachable consumers.
    perturbations
        Rounds of an iterated local search on the best tree (:func:`_perturbed`; its cheapest trees start the
        regions' searches); 0: none.
    perturbations_max_consumers
        The rounds run only where at most this many consumers can be reached (each costs about a local search).
    regions
        Then regions of the best tree re-solved exactly, the rest kept (a large-neighbourhood search,
        :func:`heatmap.network.design_lns.improve`); 0: none.
    region_nodes
        Nodes in each region.
    region_searches
        Searches the regions are shared among, their plans then merged (:func:`heatmap.network.design_lns.improve`).

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
            slope = _slopes(ix, tree, slope)
            tree = _select(ix, _shortest_path_forest(ix, slope, offset))
    assert best is not None
    reach = int(ix.reach.sum())
    if reach > LOCAL_SEARCH_FULL_CONSUMERS:  # each move made costs a pricing of the whole tree
        local_search_moves = local_search_moves * LOCAL_SEARCH_FULL_CONSUMERS // reach
    trees = [_relocate(ix, best[2], moves=local_search_moves)]
    if reach <= perturbations_max_consumers:
        trees = _perturbed(ix, trees[0], rounds=perturbations, moves=local_search_moves, slope=full, offset=offset)
    # the searches start from the cheapest trees found, the cheapest again where there are fewer
    search_from = (trees + [trees[0]] * region_searches)[: max(region_searches, 1)]
    tree = design_lns.improve(ix, search_from, rounds=regions, region_nodes=region_nodes)
    t1 = time.perf_counter()
    result = design.to_design(ix, tree, method="heuristic", status="heuristic")
    result.time_s = {"heuristic": t1 - t0}
    if bound:
        design_milp.lp_bound(
            ix, time_limit_s=bound_time_s, start=result, mip_time_s=bound_mip_time_s, mip_solver=bound_mip_solver
        ).onto(result)
        result.time_s["bound"] = time.perf_counter() - t1
    logger.info("Heuristic design (best from the %s start): %s", best[1], result.describe())
    return result


def _slopes(ix: design.ProblemIndex, tree: design.Forest, slope: np.ndarray) -> np.ndarray:
    """Return each edge's per-kW slope on a tree (its cost / its load), ``slope`` where the tree does not use it."""
    edge_load, _ = design.edge_loads(ix, tree)
    used = edge_load > 0
    out = slope.copy()
    out[used] = ix.costs.at(edge_load)[used] / edge_load[used]
    return out


PERTURBATION_NOISE = 0.3
"""Each perturbation round multiplies every edge's slope by a factor drawn uniformly from 1 ± this."""


def _perturbed(
    ix: design.ProblemIndex, tree: design.Forest, *, rounds: int, moves: int, slope: np.ndarray, offset: np.ndarray
) -> list[design.Forest]:
    """Return the trees of an iterated local search from ``tree``: each one found once, the cheapest first.

    Each round takes the best tree's slopes (:func:`_slopes`; ``slope`` for the edges it does not use), multiplies
    each by a random factor (:data:`PERTURBATION_NOISE`), routes every consumer along its cheapest path under them,
    chooses the optional consumers and searches locally from there (:func:`_relocate`, at most ``moves``); the tree
    found is the best where it costs less. Seeded: the same problem gives the same trees. On the benchmark's Helsinki
    instance with the catalogue curve 4 rounds take the heuristic from 34.89 to 34.88 M€, 8 rounds to 34.86 M€, 16
    rounds (other seeds) to 34.79–34.83 M€; the other trees found are local optima elsewhere, starts for the regions'
    searches (:func:`heatmap.network.design_lns.improve`).
    """
    cost, prize = design.evaluate(ix, tree)
    found = {tree.parent.tobytes(): (cost - prize, tree)}
    if rounds <= 0:
        return [tree]
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    best = cost - prize
    kept = 0
    for _ in range(rounds):
        noisy = _slopes(ix, tree, slope) * rng.uniform(1 - PERTURBATION_NOISE, 1 + PERTURBATION_NOISE, len(slope))
        other = _select(ix, _shortest_path_forest(ix, noisy, offset))
        other = _relocate(ix, _capacity_feasible(ix, other, noisy, offset.copy()), moves=moves)
        cost, prize = design.evaluate(ix, other)
        found.setdefault(other.parent.tobytes(), (cost - prize, other))
        if cost - prize < best - 1e-9 * max(1.0, abs(best)):
            tree, best = other, cost - prize
            kept += 1
    logger.info("Perturbation: %d of %d rounds found a cheaper tree in %.2f s", kept, rounds, time.perf_counter() - t0)
    return [t for _, t in sorted(found.values(), key=lambda v: v[0])]


def _relocate(ix: design.ProblemIndex, tree: design.Forest, *, moves: int) -> design.Forest:
    """Move subtrees to where they cost less, until no move pays or ``moves`` have been tried (a local search).

    A move takes the subtree below a node ``v`` (a consumer's node or a branching node) with its load ``L`` off the
    tree, with the path above it that only it needed, and joins it again by the cheapest path from any of its nodes
    ``w`` to any node of the rest of the tree (one Dijkstra run over the nodes off the tree, each edge priced at load
    ``L``, each ``w`` starting at what hanging the subtree from it costs: :func:`_relocation`), where that path plus
    ``L`` × the per-kW slopes of the edges upstream of the joining point (and a source's overload penalty) costs
    less than what the move saves (a key-path exchange). A move so found is made only where the whole tree, priced
    again, costs less. Moves are tried in a seeded order: the same problem gives the same tree.
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
        # prices per move; a node before all others (n) starts the search, an arc from it to every node
        heads = np.concatenate([self.b, np.arange(n)])
        self.graph = sp.csr_matrix(
            (np.zeros(len(heads)), heads, np.append(self.indptr, len(heads))), shape=(n + 1, n + 1)
        )
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
        self.tin, self.tout = design.euler_tour(tree.parent, depth=priced.depth)
        self.preorder = np.empty(n, dtype=np.int64)  # the nodes by entry time: a subtree is a slice of it
        self.preorder[self.tin] = np.arange(n)
        self.from_off = ~(self.on | self.is_src)[arcs.a]  # arcs leaving a node off the tree

    def key_nodes(self) -> np.ndarray:
        """Nodes whose subtree a move may take: consumers' and branching nodes on the tree."""
        return np.flatnonzero(self.on & (self.terminal | (self.children >= 2)))


def _relocation(state: _TreeState, v: int) -> _TreeState | None:
    """Return the tree with the subtree below ``v`` joined again where it costs least (``None``: no move pays).

    The subtree may be joined at any of its nodes ``w``, not only at ``v``: it is then hung from ``w``, the edges
    from ``w`` up to ``v`` turned round, each carrying the subtree's load less what it carried before (a key-path
    exchange). Every node of the subtree starts the search at what turning it so costs.
    """
    ix, tree, arcs = state.ix, state.tree, state.arcs
    load = state.edge_load[tree.parent_edge[v]]
    if load <= 0 or not (state.terminal[v] or state.children[v] >= 2):
        return None  # no longer a key node (an earlier move took a branch): turned round, it would end idle
    # the path above v that only its subtree needs: up while the node above is a Steiner node of one child
    removed = [int(tree.parent_edge[v])]
    freed = []
    p = int(tree.parent[v])
    while not state.terminal[p] and state.children[p] == 1 and tree.parent[p] >= 0:
        removed.append(int(tree.parent_edge[p]))
        freed.append(p)
        p = int(tree.parent[p])
    saving = float(state.cost[removed].sum()) + load * state.slope_up[p]
    low = state.preorder[state.tin[v] : state.tout[v]]  # the subtree, v first
    below = np.zeros(ix.n, dtype=bool)
    below[low] = True
    rest = (state.on & ~below) | state.is_src
    rest[freed] = False
    # what hanging the subtree from each of its nodes costs more: along the path up to v each edge carries
    # load − what it carries now (summed down the subtree: each step added over its node's preorder range)
    size = len(low)
    turn = np.zeros(size)
    if size > 1:
        inner = low[1:]
        e = tree.parent_edge[inner]
        step = ix.costs.at(load - state.edge_load[e], e) - state.cost[e]
        first, last = state.tin[inner] - state.tin[v], state.tout[inner] - state.tin[v]
        turn = np.cumsum(np.bincount(first, step, size + 1) - np.bincount(last, step, size + 1))[:size]
    base = float(turn.min())
    # Dijkstra from a node before the subtree, over the nodes off the rest of the tree: a rest node (a source too)
    # only ends a path, and the path is laid from it to the subtree (so nothing enters a source)
    ok = (state.from_off | below[arcs.a]) & ~below[arcs.b]
    for w in freed:
        out_of = slice(arcs.indptr[w], arcs.indptr[w + 1])
        ok[out_of] = ~below[arcs.b[out_of]]
    graph = arcs.graph  # its data: each arc's price at this load, then each node's start (only the subtree's)
    price, start = graph.data[: len(ok)], graph.data[len(ok) :]
    price[:] = arcs.costs.at_load(load)
    price += 1e-9
    price[~ok] = np.inf
    start.fill(np.inf)
    start[low] = turn - base + 1e-9
    # a path dearer than the move saves cannot pay: the search stops there
    dist, pred = dijkstra(graph, directed=True, indices=ix.n, return_predecessors=True, limit=saving - base)
    total = np.where(rest, dist[: ix.n] + base + load * state.slope_up, np.inf)
    u = int(np.argmin(total))
    if not np.isfinite(total[u]) or total[u] >= saving - 1e-9 * max(1.0, saving):
        return None
    out = design.Forest(tree.parent.copy(), tree.parent_edge.copy(), tree.connected.copy())
    out.parent[freed] = -1
    path = [u]  # from the rest of the tree to the subtree's node w where it is joined
    while not below[path[-1]]:
        path.append(int(pred[path[-1]]))
    turned = [path[-1]]  # w up to v, turned round
    while turned[-1] != v:
        turned.append(int(tree.parent[turned[-1]]))
    out.parent[turned[1:]] = turned[:-1]
    out.parent[path[1:]] = path[:-1]
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
