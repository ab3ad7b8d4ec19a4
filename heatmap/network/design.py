"""Economic network design: which consumers to connect and which candidate edges to build, at least cost.

The problem
-----------
A candidate graph (streets, drawn links, service connections), sources with capacities and consumers with a
design load. Each consumer is *required* (must be connected where it can be reached) or *optional* (connected
where its ``prize_eur`` — the present value of the margin its heat earns over the lifetime — pays for what its
connection costs). A built edge carrying the design load ``p`` (kW) costs

    ``weight_m · (a_k + b_k · p) + length_m · (la_k + lb_k · p)``

on the segment ``k`` of the piecewise-linear :class:`CostCurve` whose load range holds ``p``: ``a``, ``b`` the
pipe and trench capex per metre of street-equivalent trench (``weight_m`` = length × the surface's cost factor),
``la``, ``lb`` the capitalised heat losses per metre of route. The objective is the total cost less the prizes of
the optional consumers connected (the negative NPV of the network where the required consumers' revenue is
fixed).

Two solvers
-----------
- :func:`optimal_design` — the fixed-charge network-design MILP solved with HiGHS (``highspy``): per arc (edge
  and direction) and segment a build binary and a flow; flow conservation at every node; a consumer connected
  draws its load; every node but a source has at most one built arc in (the network is a forest of trees, each
  rooted at a source) and an arc can leave a node only if one enters it (both tighten the LP relaxation); each
  source supplies at most its capacity. Warm-started from the heuristic, with a time limit and a relative MIP
  gap; the proven bound and the gap are reported.
- :func:`heuristic_design` — dynamic slope scaling (Kim and Pardalos 1999) from two starts, a minimum Steiner
  tree (trench cost dominates) and a shortest-path tree (carried load dominates): each round routes every
  consumer along its cheapest path under per-kW slopes (one Dijkstra run from a super-source whose arcs to the
  sources carry a capacity price), takes the slopes of the resulting tree's edges (cost / load) for the next
  round and keeps the cheapest tree; optional consumers whose subtree costs more than it earns are pruned in
  every round. Its lower bound is the LP relaxation of the MILP (HiGHS), so its gap is reported too.

Costs are in euros, loads in kW, lengths in metres. Nodes are the candidate graph's integer node ids.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import networkx as nx
import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from heatmap._errors import RoutingError
from heatmap._highs import new_highs
from heatmap.network import routing, sizing

if TYPE_CHECKING:
    import highspy

logger = logging.getLogger(__name__)

INF_KW = 1e12
"""Upper end of the last cost segment."""


@dataclass(frozen=True)
class CostCurve:
    """Cost of a built edge per metre as a piecewise-linear function of the design load it carries.

    Segment ``k`` covers loads in ``(lower_kw[k], upper_kw[k]]`` (the first also a load of 0); a load is priced on
    the cheapest segment holding it.

    Attributes
    ----------
    lower_kw, upper_kw : numpy.ndarray
        Load range of each segment, kW.
    capex_eur_per_m, capex_eur_per_kw_m : numpy.ndarray
        Intercept and slope of the capex per metre of street-equivalent trench (length × surface cost factor).
    loss_eur_per_m, loss_eur_per_kw_m : numpy.ndarray
        Intercept and slope of the capitalised heat losses per metre of route.
    label : str
        What the curve is (for the summary).
    """

    lower_kw: np.ndarray
    upper_kw: np.ndarray
    capex_eur_per_m: np.ndarray
    capex_eur_per_kw_m: np.ndarray
    loss_eur_per_m: np.ndarray
    loss_eur_per_kw_m: np.ndarray
    label: str = ""

    @property
    def segments(self) -> int:
        """Number of segments."""
        return len(self.lower_kw)

    @classmethod
    def linear(cls, trench_eur_per_m: float, pipe_eur_per_kw_m: float) -> CostCurve:
        """Make a one-segment curve: a fixed cost per metre of trench plus a cost per kW of carried load and metre."""
        one = np.ones(1)
        return cls(
            np.zeros(1),
            one * INF_KW,
            one * trench_eur_per_m,
            one * pipe_eur_per_kw_m,
            np.zeros(1),
            np.zeros(1),
            label=f"linear: {trench_eur_per_m:g} €/m of trench + {pipe_eur_per_kw_m:g} €/(kW·m) of carried load",
        )

    @classmethod
    def from_steps(
        cls,
        capacity_kw: np.ndarray,
        capex_eur_per_m: np.ndarray,
        loss_eur_per_m: np.ndarray,
        *,
        segments: int,
        label: str = "",
    ) -> CostCurve:
        """Piecewise-linear under-estimate of a step cost (a catalogue: each size carries up to its capacity).

        The sizes are grouped into ``segments`` consecutive groups of about equal count; on each group's load range
        the capex and the losses are lines at or below the steps (:func:`_under_line`), so the curve never over-prices
        a load and the MILP's bound is a bound on the step cost too. With one segment per size the curve is the
        steps themselves.

        Parameters
        ----------
        capacity_kw
            Largest design load of each size, ascending.
        capex_eur_per_m, loss_eur_per_m
            Each size's capex per metre of trench and capitalised losses per metre.
        segments
            Number of segments (at most the number of sizes).
        label
            What the curve is.
        """
        cap = np.asarray(capacity_kw, dtype=float)
        n = len(cap)
        segments = max(1, min(int(segments), n))
        groups = np.array_split(np.arange(n), segments)
        lower = np.array([0.0 if g[0] == 0 else cap[g[0] - 1] for g in groups])
        upper = np.array([cap[g[-1]] for g in groups])
        upper[-1] = INF_KW  # beyond the largest size its line continues (sizing reports the load it cannot carry)
        lines = [
            _under_line(lower[i], cap[g], np.asarray(c, float)[g])
            for c in (capex_eur_per_m, loss_eur_per_m)
            for i, g in enumerate(groups)
        ]
        ca, cb = np.array(lines[:segments]).T
        la, lb = np.array(lines[segments:]).T
        return cls(lower, upper, ca, cb, la, lb, label=label)

    def edge_cost_eur(self, load_kw: np.ndarray, weight_m: np.ndarray, length_m: np.ndarray) -> np.ndarray:
        """Cost of edges carrying ``load_kw`` (0 where the load is 0 or below: the edge is not built)."""
        p = np.asarray(load_kw, dtype=float)[:, None]
        inside = (p <= self.upper_kw[None, :] + 1e-9) & ((p > self.lower_kw[None, :]) | (self.lower_kw[None, :] == 0))
        per = np.asarray(weight_m, float)[:, None] * (self.capex_eur_per_m + self.capex_eur_per_kw_m * p) + np.asarray(
            length_m, float
        )[:, None] * (self.loss_eur_per_m + self.loss_eur_per_kw_m * p)
        # beyond the last segment: its line continued (the step curve has no larger size; sizing reports it)
        last = per[:, -1]
        cost = np.where(inside, per, np.inf).min(axis=1)
        cost = np.where(np.isfinite(cost), cost, last)
        return np.where(p[:, 0] > 1e-9, cost, 0.0)


def _under_line(p0: float, cap: np.ndarray, cost: np.ndarray) -> tuple[float, float]:
    """Return the best line over ``(p0, cap[-1]]`` at or below a step curve (``cost[i]`` on ``(cap[i-1], cap[i]]``).

    The steps are flat and the line rises, so it stays under them where it is under each step's right end
    ``(cap[i], cost[i])``: the candidates are the flat line at the first step and the edges of those points' lower
    convex hull; of those not below zero at ``p0`` (a built edge never earns), the one highest at the middle of the
    range is kept. Returns the intercept at load 0 and the slope per kW.
    """
    x, y = np.asarray(cap, float), np.asarray(cost, float)
    candidates = [(float(y[0]), 0.0)]
    hull: list[int] = []
    for i in range(len(x)):  # lower hull, left to right (monotone chain)
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            if (y[b] - y[a]) * (x[i] - x[a]) >= (y[i] - y[a]) * (x[b] - x[a]):
                hull.pop()
            else:
                break
        hull.append(i)
    for a, b in itertools.pairwise(hull):
        slope = (y[b] - y[a]) / (x[b] - x[a])
        candidates.append((float(y[a] - slope * x[a]), float(slope)))
    mid = (p0 + x[-1]) / 2
    valid = [(c, s) for c, s in candidates if c + s * p0 >= 0 and s >= 0]
    return max(valid, key=lambda line: line[0] + line[1] * mid)


@dataclass(frozen=True)
class DesignProblem:
    """An economic network-design problem on a candidate graph.

    Attributes
    ----------
    edges : pandas.DataFrame
        Candidate edges: ``edge_id``, ``a``, ``b`` (nodes), ``length_m``, ``weight_m`` (length × cost factor).
    sources : pandas.DataFrame
        ``source_id``, ``node``, ``capacity_kw`` (design load a source can carry).
    consumers : pandas.DataFrame
        ``consumer_id``, ``node``, ``load_kw`` (design load), ``required`` (bool) and ``prize_eur`` (present value of
        the margin on its heat over the lifetime; used for optional consumers).
    curve : CostCurve
        The pipe cost.
    """

    edges: pd.DataFrame
    sources: pd.DataFrame
    consumers: pd.DataFrame
    curve: CostCurve


@dataclass
class Design:
    """A designed network: the built edges as trees rooted at the sources, and how good it is.

    Attributes
    ----------
    edges : pandas.DataFrame
        Built edges oriented away from their source: ``edge_id``, ``from_node``, ``to_node``, ``load_kw`` (design
        load carried), ``cost_eur`` (on the cost curve).
    connected : list of str
        Consumer ids connected.
    not_economic : list of str
        Optional consumers left out because connecting them costs more than they earn.
    cost_eur : float
        Total cost of the built edges.
    prize_eur : float
        Prizes of the optional consumers connected.
    objective_eur : float
        ``cost_eur − prize_eur + overload_penalty_eur``.
    source_overload_kw : float
        Design load the sources supply beyond their capacities (only where they cannot carry the required
        consumers together; the plan's source-capacity check reports it).
    overload_penalty_eur : float
        Its penalty in the objective (:func:`_overload_eur_per_kw`).
    bound_eur : float
        A proven lower bound on the objective (``nan`` where none was computed).
    method : str
        ``optimal`` (the MILP), ``heuristic`` or a start's name.
    status : str
        Solver status (``optimal``, ``time limit``, ``heuristic``).
    time_s : dict
        Seconds per phase.
    """

    edges: pd.DataFrame
    connected: list[str]
    not_economic: list[str]
    cost_eur: float
    prize_eur: float
    objective_eur: float
    source_overload_kw: float = 0.0
    overload_penalty_eur: float = 0.0
    bound_eur: float = float("nan")
    method: str = "heuristic"
    status: str = "heuristic"
    time_s: dict[str, float] = field(default_factory=dict)

    def summary(self, problem: DesignProblem) -> dict[str, object]:
        """Describe the design for the plan's summary: method, objective and its terms, bound, gap, time, counts."""
        c = problem.consumers
        optional = set(c.consumer_id[~c.required.astype(bool)].astype(str))
        return {
            "method": self.method,
            "status": self.status,
            "cost_curve": problem.curve.label,
            "objective_eur": self.objective_eur,
            "pipe_cost_eur": self.cost_eur,
            "optional_prizes_eur": self.prize_eur,
            "source_overload_kw": self.source_overload_kw,
            "bound_eur": self.bound_eur,
            "gap": self.gap,
            "time_s": self.time_s,
            "consumers_required": len(c) - len(optional),
            "consumers_optional": len(optional),
            "optional_connected": len(optional & set(self.connected)),
            "not_economic": self.not_economic,
        }

    @property
    def gap(self) -> float:
        """Relative gap between the objective and the bound, ``(objective − bound) / |objective|``."""
        if not np.isfinite(self.bound_eur) or self.objective_eur == 0:
            return float("nan")
        return max(0.0, (self.objective_eur - self.bound_eur) / abs(self.objective_eur))


# --------------------------------------------------------------------------------------------------------------
# The problem in index form


@dataclass(frozen=True)
class _Index:
    """The problem on compact node numbers ``0 … n-1``, with arrays the solvers share."""

    n: int
    node_ids: np.ndarray  # compact → graph node id
    ea: np.ndarray  # edge ends (compact)
    eb: np.ndarray
    edge_id: np.ndarray
    length_m: np.ndarray
    weight_m: np.ndarray
    src_node: np.ndarray  # compact node per source
    src_cap: np.ndarray
    src_id: np.ndarray
    con_node: np.ndarray  # compact node per consumer
    con_load: np.ndarray
    con_required: np.ndarray
    con_prize: np.ndarray
    con_id: np.ndarray


def _index(problem: DesignProblem) -> _Index:
    e = problem.edges.copy()
    lo, hi = np.minimum(e.a.to_numpy(), e.b.to_numpy()), np.maximum(e.a.to_numpy(), e.b.to_numpy())
    e = e.assign(lo=lo, hi=hi).sort_values("weight_m", kind="stable").drop_duplicates(["lo", "hi"])
    e = e[e.lo != e.hi]
    s, c = problem.sources, problem.consumers
    node_ids = np.unique(np.concatenate([e.lo, e.hi, s.node, c.node]).astype(np.int64))
    pos = pd.Series(np.arange(len(node_ids)), index=node_ids)
    if c.node.duplicated().any() or s.node.duplicated().any() or set(c.node) & set(s.node):
        raise RoutingError("two terminals share a graph node; every source and consumer needs a node of its own")
    return _Index(
        n=len(node_ids),
        node_ids=node_ids,
        ea=pos[e.lo].to_numpy(),
        eb=pos[e.hi].to_numpy(),
        edge_id=e.edge_id.to_numpy(),
        length_m=e.length_m.to_numpy(float),
        weight_m=e.weight_m.to_numpy(float),
        src_node=pos[s.node].to_numpy(),
        src_cap=s.capacity_kw.to_numpy(float),
        src_id=s.source_id.astype(str).to_numpy(),
        con_node=pos[c.node].to_numpy(),
        con_load=c.load_kw.to_numpy(float),
        con_required=c.required.to_numpy(bool),
        con_prize=c.prize_eur.fillna(0.0).to_numpy(float),
        con_id=c.consumer_id.astype(str).to_numpy(),
    )


@dataclass
class _Tree:
    """A forest on compact nodes.

    ``parent`` (−1 for roots and nodes off the tree), ``parent_edge`` (edge position) and the consumers it connects
    (bool per consumer).
    """

    parent: np.ndarray
    parent_edge: np.ndarray
    connected: np.ndarray


def _edge_loads(ix: _Index, tree: _Tree) -> tuple[np.ndarray, np.ndarray]:
    """Design load on every edge of the tree and the node order (deepest first) it was summed in."""
    load = np.zeros(ix.n)
    load[ix.con_node[tree.connected]] = ix.con_load[tree.connected]
    on = tree.parent >= 0
    depth = _depths(tree.parent)
    order = np.argsort(-depth, kind="stable")
    order = order[on[order]]
    # sum level by level (deepest first), vectorised within each level
    d = depth[order]
    for lvl in np.split(order, np.flatnonzero(np.diff(d)) + 1):
        np.add.at(load, tree.parent[lvl], load[lvl])
    edge_load = np.zeros(len(ix.edge_id))
    edge_load[tree.parent_edge[on]] = load[on]
    return edge_load, order


def _depths(parent: np.ndarray) -> np.ndarray:
    """Depth of every node in a parent-pointer forest (0 for roots and nodes off it)."""
    depth = np.zeros(len(parent), dtype=np.int64)
    anc = parent.copy()
    active = anc >= 0
    while active.any():
        depth[active] += 1
        anc[active] = parent[anc[active]]
        active = anc >= 0
        if depth.max() > len(parent):
            raise RoutingError("the designed network holds a cycle")
    return depth


def _cost(ix: _Index, curve: CostCurve, edge_load: np.ndarray) -> np.ndarray:
    return curve.edge_cost_eur(edge_load, ix.weight_m, ix.length_m)


def _prune(ix: _Index, tree: _Tree, curve: CostCurve) -> _Tree:
    """Leave out optional consumers (and the edges only they need) whose subtree costs more than it earns.

    Strong pruning on the fixed tree, bottom-up: a node's worth is the prize of its consumer (infinite for a
    required one) plus the net worth of the children kept; the edge into it costs what it costs at the load of the
    consumers kept below it; a subtree whose worth does not cover that edge (or that keeps no consumer) is cut.
    """
    tree = _Tree(tree.parent.copy(), tree.parent_edge.copy(), tree.connected.copy())
    _, order = _edge_loads(ix, tree)
    depth = _depths(tree.parent)
    d = depth[order]
    worth, kept = np.zeros(ix.n), np.zeros(ix.n)
    nodes = ix.con_node[tree.connected]
    worth[nodes] = np.where(ix.con_required, np.inf, ix.con_prize)[tree.connected]
    kept[nodes] = ix.con_load[tree.connected]
    cut = np.zeros(ix.n, dtype=bool)
    levels = np.split(order, np.flatnonzero(np.diff(d)) + 1)
    for lvl in levels:
        pe = tree.parent_edge[lvl]
        net = worth[lvl] - curve.edge_cost_eur(kept[lvl], ix.weight_m[pe], ix.length_m[pe])
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


def _overload_eur_per_kw(ix: _Index, curve: CostCurve) -> float:
    """Penalty per kW a source supplies beyond its capacity: more than routing that kW over every candidate edge.

    A design overloads a source only where the sources together cannot carry the required consumers (the plan's
    source-capacity check then reports it); the penalty is part of the objective and of its bound.
    """
    top = np.array([max(float(ix.con_load.sum()), 1.0)])
    per_kw = curve.edge_cost_eur(np.repeat(top, len(ix.weight_m)), ix.weight_m, ix.length_m) / top[0]
    return 10.0 * float(per_kw.sum()) + 1.0


def _select(ix: _Index, tree: _Tree, curve: CostCurve, reach: np.ndarray, *, rounds: int = 10) -> _Tree:
    """Choose the optional consumers on a tree: prune those that do not pay, add back those that do.

    Pruning (:func:`_prune`) alone keeps what pays on the tree as routed; an optional consumer routed along a path
    others do not share may pay when joined to the pruned tree at its nearest node instead. Each round joins every
    left-out optional consumer whose prize beats its cheapest join (:func:`_joins`), then prunes again; until no
    consumer is added.
    """
    tree = _prune(ix, tree, curve)
    if ix.con_required.all():
        return tree
    for _ in range(rounds):
        joined = _joins(ix, tree, curve, reach)
        if joined is None:
            break
        tree = _prune(ix, joined, curve)
    return tree


def _joins(ix: _Index, tree: _Tree, curve: CostCurve, reach: np.ndarray) -> _Tree | None:
    """Join each left-out optional consumer that pays to the tree by its cheapest path (``None``: none pays).

    The path is the shortest from any node of the tree (or a source) under the first cost segment's fixed price
    per metre (one multi-source Dijkstra run); its price is that plus the consumer's load × the segment's slope
    along it and × the slopes of the tree's edges from where it joins up to the source (the extra load they carry).
    """
    seg_fixed = ix.weight_m * curve.capex_eur_per_m[0] + ix.length_m * curve.loss_eur_per_m[0]
    seg_slope = ix.weight_m * curve.capex_eur_per_kw_m[0] + ix.length_m * curve.loss_eur_per_kw_m[0]
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
    step[pred >= 0] = seg_slope[_edges_of(ix, pred)[pred >= 0]]
    path_slope = _path_sums(pred, step)
    edge_load, _ = _edge_loads(ix, tree)
    k = _segment_of(curve, edge_load, ix.weight_m, ix.length_m)
    tree_slope = ix.weight_m * curve.capex_eur_per_kw_m[k] + ix.length_m * curve.loss_eur_per_kw_m[k]
    step = np.zeros(ix.n)
    step[tree.parent >= 0] = tree_slope[tree.parent_edge[tree.parent >= 0]]
    up = _path_sums(tree.parent, step)
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
    t = np.flatnonzero(~tree.connected & ~ix.con_required & reach)
    node = ix.con_node[t]
    ok = np.isfinite(dist[node]) & (origin[node] >= 0)
    t, node = t[ok], node[ok]
    d = ix.con_load[t]
    price = dist[node] + d * (path_slope[node] + up[origin[node]])
    pays = ix.con_prize[t] > price
    if not pays.any():
        return None
    out = _Tree(tree.parent.copy(), tree.parent_edge.copy(), tree.connected.copy())
    frontier = node[pays]
    while len(frontier):  # lay each chosen path back to the tree
        frontier = frontier[~on[frontier] & (out.parent[frontier] < 0)]
        out.parent[frontier] = pred[frontier]
        frontier = pred[frontier]
    out.parent_edge = _edges_of(ix, out.parent)
    out.connected[t[pays]] = True
    return out


def _path_sums(parent: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Sum ``step`` (each node's, for the edge into it) from the root of a parent-pointer forest down to each node."""
    total = np.zeros(len(parent))
    depth = _depths(parent)
    for level in range(1, int(depth.max(initial=0)) + 1):  # one vectorised step per level, roots outwards
        at = np.flatnonzero(depth == level)
        total[at] = total[parent[at]] + step[at]
    return total


def _evaluate(ix: _Index, tree: _Tree, curve: CostCurve) -> tuple[float, float]:
    """Return a tree's cost (its edges' and any overload penalty) and the prizes of its optional consumers."""
    edge_load, _ = _edge_loads(ix, tree)
    over = np.maximum(_source_loads(ix, tree) - ix.src_cap, 0.0).sum()
    cost = float(_cost(ix, curve, edge_load).sum()) + float(over) * _overload_eur_per_kw(ix, curve)
    prize = float(ix.con_prize[tree.connected & ~ix.con_required].sum())
    return cost, prize


def _to_design(ix: _Index, tree: _Tree, curve: CostCurve, *, method: str, status: str) -> Design:
    edge_load, _ = _edge_loads(ix, tree)
    cost = _cost(ix, curve, edge_load)
    on = np.flatnonzero(tree.parent >= 0)
    pe = tree.parent_edge[on]
    edges = pd.DataFrame(
        {
            "edge_id": ix.edge_id[pe],
            "from_node": ix.node_ids[tree.parent[on]],
            "to_node": ix.node_ids[on],
            "load_kw": edge_load[pe],
            "cost_eur": cost[pe],
        }
    )
    total, prize = float(cost.sum()), float(ix.con_prize[tree.connected & ~ix.con_required].sum())
    over = float(np.maximum(_source_loads(ix, tree) - ix.src_cap, 0.0).sum())
    penalty = over * _overload_eur_per_kw(ix, curve)
    return Design(
        edges=edges,
        connected=sorted(ix.con_id[tree.connected].tolist()),
        not_economic=sorted(ix.con_id[~tree.connected & ~ix.con_required].tolist()),
        cost_eur=total,
        prize_eur=prize,
        objective_eur=total - prize + penalty,
        source_overload_kw=over,
        overload_penalty_eur=penalty,
        method=method,
        status=status,
    )


# --------------------------------------------------------------------------------------------------------------
# Heuristic


def _shortest_path_forest(ix: _Index, per_kw: np.ndarray, offset: np.ndarray, reach: np.ndarray) -> _Tree:
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
    frontier = ix.con_node[reach]
    frontier = frontier[pred[frontier] >= 0]
    while len(frontier):
        frontier = frontier[~keep[frontier]]
        keep[frontier] = True
        nxt = pred[frontier]
        frontier = nxt[(nxt >= 0) & (nxt != sup)]
    parent[keep] = pred[keep]
    parent[np.isin(np.arange(n), ix.src_node)] = -1
    parent[parent == sup] = -1
    parent_edge = _edges_of(ix, parent)
    connected = reach & (parent[ix.con_node] >= 0)
    return _Tree(parent, parent_edge, connected)


def _edge_lookup(ix: _Index) -> sp.csr_matrix:
    """Return a node × node matrix holding each edge's position + 1 (both directions)."""
    m = len(ix.edge_id)
    pos = np.arange(1, m + 1)
    return sp.csr_matrix(
        (np.concatenate([pos, pos]), (np.concatenate([ix.ea, ix.eb]), np.concatenate([ix.eb, ix.ea]))),
        shape=(ix.n, ix.n),
    )


def _edges_of(ix: _Index, parent: np.ndarray) -> np.ndarray:
    """Return the position of the edge from each node's parent to it (−1 for roots and nodes off the forest)."""
    out = np.full(ix.n, -1, dtype=np.int64)
    on = np.flatnonzero(parent >= 0)
    if len(on):
        lookup = _edge_lookup(ix)
        out[on] = np.asarray(lookup[parent[on], on]).ravel() - 1
    return out


def _reachable(ix: _Index) -> np.ndarray:
    """Consumers with a path to some source."""
    graph = sp.csr_matrix((np.ones(len(ix.ea)), (ix.ea, ix.eb)), shape=(ix.n, ix.n))
    _, label = sp.csgraph.connected_components(graph, directed=False)
    return np.isin(label[ix.con_node], label[ix.src_node])


def _steiner_start(ix: _Index, reach: np.ndarray) -> _Tree:
    """Start from Mehlhorn's minimum Steiner tree on trench weight, per supply area.

    See :func:`heatmap.network.routing.route_network`.
    """
    G: nx.Graph = nx.Graph()
    for i, (a, b) in enumerate(zip(ix.ea.tolist(), ix.eb.tolist(), strict=True)):
        G.add_edge(a, b, edge_id=i, length_m=ix.length_m[i], weight_m=ix.weight_m[i])
    routed = routing.route_network(
        G,
        {sid: int(v) for sid, v in zip(ix.src_id, ix.src_node, strict=True)},
        {cid: int(v) for cid, v, ok in zip(ix.con_id, ix.con_node, reach, strict=True) if ok},
    )
    parent = np.full(ix.n, -1, dtype=np.int64)
    parent_edge = np.full(ix.n, -1, dtype=np.int64)
    parent[routed.edges.to_node.to_numpy()] = routed.edges.from_node.to_numpy()
    parent_edge[routed.edges.to_node.to_numpy()] = routed.edges.edge_id.to_numpy()
    return _Tree(parent, parent_edge, reach & (parent[ix.con_node] >= 0))


def heuristic_design(
    problem: DesignProblem, *, rounds: int = 30, bound: bool = True, bound_time_s: float = 30.0
) -> Design:
    """Design the network by dynamic slope scaling from a Steiner and a shortest-path start.

    Parameters
    ----------
    problem
        The design problem.
    rounds
        Slope-scaling rounds per start at most (each one Dijkstra run; a start stops when its tree repeats).
    bound
        Compute a lower bound (the MILP's LP relaxation, HiGHS: :func:`_lp_bound`) so the design carries its gap.
    bound_time_s
        Time limit of the LP.

    Returns
    -------
    Design
    """
    t0 = time.perf_counter()
    ix = _index(problem)
    curve = problem.curve
    reach = _reachable(ix)
    total_load = float(ix.con_load[reach].sum())
    offset = np.zeros(len(ix.src_node))  # each source's capacity price, raised where it is overloaded (kept)
    # per-kW slope of every edge at the full load (the least it can be): the shortest-path start
    full = _cost(ix, curve, np.full(len(ix.edge_id), max(total_load, 1.0))) / max(total_load, 1.0)
    # every edge's cost at a mean consumer's load: shortest paths that weigh trench and load as one consumer does
    mean_load = max(float(ix.con_load.mean()) if len(ix.con_load) else 1.0, 1e-3)
    at_mean = _cost(ix, curve, np.full(len(ix.edge_id), mean_load))
    starts = {
        "shortest paths": _select(ix, _shortest_path_forest(ix, full, offset, reach), curve, reach),
        "steiner": _select(ix, _steiner_start(ix, reach), curve, reach),
        "one consumer's paths": _select(ix, _shortest_path_forest(ix, at_mean, offset, reach), curve, reach),
    }
    best: tuple[float, str, _Tree] | None = None
    for name, tree in starts.items():
        slope = full.copy()
        seen: set[bytes] = set()
        for _ in range(rounds):
            tree = _capacity_feasible(ix, tree, slope, offset, reach, curve)
            c, p = _evaluate(ix, tree, curve)
            if best is None or c - p < best[0] - 1e-6:
                best = (c - p, name, tree)
            key = tree.parent.tobytes()
            if key in seen:
                break
            seen.add(key)
            edge_load, _ = _edge_loads(ix, tree)
            used = edge_load > 0
            slope = slope.copy()
            slope[used] = _cost(ix, curve, edge_load)[used] / edge_load[used]
            tree = _select(ix, _shortest_path_forest(ix, slope, offset, reach), curve, reach)
    assert best is not None
    t1 = time.perf_counter()
    design = _to_design(ix, best[2], curve, method="heuristic", status="heuristic")
    design.time_s = {"heuristic": t1 - t0}
    if bound:
        design.bound_eur = _lp_bound(ix, curve, time_limit_s=bound_time_s)
        design.time_s["bound"] = time.perf_counter() - t1
    logger.info(
        "Heuristic design (best from the %s start): %d edges, %d of %d consumers, objective %.4g €, bound %.4g €, "
        "gap %.2f %% in %.2f s",
        best[1],
        len(design.edges),
        len(design.connected),
        len(ix.con_id),
        design.objective_eur,
        design.bound_eur,
        100 * design.gap,
        sum(design.time_s.values()),
    )
    return design


def _capacity_feasible(
    ix: _Index, tree: _Tree, slope: np.ndarray, offset: np.ndarray, reach: np.ndarray, curve: CostCurve
) -> _Tree:
    """Re-route until no source carries more than its capacity.

    An overloaded source's arc from the super-source is priced up (a capacity price) and the consumers re-routed (a
    few rounds; what is left, sizing reports).
    """
    if len(ix.src_node) < 2:
        return tree
    for _ in range(20):
        load = _source_loads(ix, tree)
        over = load > ix.src_cap * (1 + 1e-9)
        if not over.any():
            return tree
        scale = float(np.median(slope[slope > 0])) * float(np.median(ix.length_m)) if (slope > 0).any() else 1.0
        offset[over] += scale * (1 + load[over] / ix.src_cap[over])
        tree = _select(ix, _shortest_path_forest(ix, slope, offset, reach), curve, reach)
    return tree


def _source_loads(ix: _Index, tree: _Tree) -> np.ndarray:
    edge_load, _ = _edge_loads(ix, tree)
    out = np.zeros(len(ix.src_node))
    is_child = np.isin(tree.parent, ix.src_node)
    pos = pd.Series(np.arange(len(ix.src_node)), index=ix.src_node)
    np.add.at(out, pos[tree.parent[is_child]].to_numpy(), edge_load[tree.parent_edge[is_child]])
    return out


# --------------------------------------------------------------------------------------------------------------
# MILP


def optimal_design(
    problem: DesignProblem,
    *,
    time_limit_s: float = 60.0,
    mip_rel_gap: float = 1e-4,
    start: Design | None = None,
    threads: int = 1,
) -> Design:
    """Solve the fixed-charge network-design MILP with HiGHS.

    Parameters
    ----------
    problem
        The design problem.
    time_limit_s
        Wall-clock limit; the best design found and the proven bound are returned when it is reached.
    mip_rel_gap
        Relative gap at which the search stops.
    start
        A design to warm-start from (default: :func:`heuristic_design`, without its bound); its phases' times and
        its bound carry over.
    threads
        HiGHS threads.

    Returns
    -------
    Design
        With ``bound_eur`` the proven lower bound and ``status`` ``optimal`` or ``time limit``.
    """
    t0 = time.perf_counter()
    ix = _index(problem)
    if start is None:
        start = heuristic_design(problem, bound=False)
    t1 = time.perf_counter()
    design = _milp(
        ix,
        problem.curve,
        time_limit_s=time_limit_s,
        mip_rel_gap=mip_rel_gap,
        start=start,
        threads=threads,
    )
    design.time_s = (
        {**start.time_s, "milp": time.perf_counter() - t1} if start.time_s else {"milp": time.perf_counter() - t0}
    )
    if np.isfinite(start.bound_eur):  # a bound computed before (the LP relaxation) holds too
        design.bound_eur = max(design.bound_eur, start.bound_eur)
    logger.info(
        "Optimal design (HiGHS, %s): %d edges, %d consumers, objective %.6g €, bound %.6g €, gap %.3f %% in %.1f s",
        design.status,
        len(design.edges),
        len(design.connected),
        design.objective_eur,
        design.bound_eur,
        100 * design.gap,
        sum(design.time_s.values()),
    )
    return design


@dataclass(frozen=True)
class _Model:
    """The MILP's matrix (``lp``) and where its arcs and columns are."""

    lp: highspy.HighsLp
    tail: np.ndarray  # per arc: compact node it leaves, enters, and its edge position
    head: np.ndarray
    arc_edge: np.ndarray
    col_y: np.ndarray  # (arcs, segments): build binaries
    col_f: np.ndarray  # (arcs, segments): flows, kW
    col_x: np.ndarray  # per optional consumer: connected
    col_s: np.ndarray  # per source: supply within capacity, kW
    col_o: np.ndarray  # per source: overload beyond it, kW (penalised)
    optional: np.ndarray  # consumer positions of the optional (reachable) consumers, in col_x order
    required: np.ndarray  # ... and of the required reachable ones


def _model(ix: _Index, curve: CostCurve) -> _Model:
    """Build the fixed-charge network-design MILP as a HiGHS matrix (integrality not yet set)."""
    import highspy

    reach = _reachable(ix)
    n, m, K = ix.n, len(ix.edge_id), curve.segments
    is_src = np.zeros(n, dtype=bool)
    is_src[ix.src_node] = True
    # arcs: both directions of every edge, none into a source
    tail = np.concatenate([ix.ea, ix.eb])
    head = np.concatenate([ix.eb, ix.ea])
    arc_edge = np.concatenate([np.arange(m), np.arange(m)])
    ok = ~is_src[head]
    tail, head, arc_edge = tail[ok], head[ok], arc_edge[ok]
    A = len(tail)
    cons_all = np.flatnonzero(reach)
    optional = cons_all[~ix.con_required[cons_all]]
    required = cons_all[ix.con_required[cons_all]]
    flow_max = max(float(ix.con_load[cons_all].sum()), 1e-6)  # no arc carries more than every consumer draws

    # columns: y[a,k] (A·K), f[a,k] (A·K), x (optional consumers), s (sources)
    ny = A * K
    col_y = np.arange(ny).reshape(A, K)
    col_f = ny + np.arange(ny).reshape(A, K)
    col_x = 2 * ny + np.arange(len(optional))
    col_s = 2 * ny + len(optional) + np.arange(len(ix.src_node))
    col_o = col_s + len(ix.src_node)  # overload beyond capacity, at a penalty (the plan's checks report it)
    ncol = 2 * ny + len(optional) + 2 * len(ix.src_node)
    w = ix.weight_m[arc_edge][:, None]
    ln = ix.length_m[arc_edge][:, None]
    cost = np.zeros(ncol)
    cost[col_y.ravel()] = (w * curve.capex_eur_per_m[None, :] + ln * curve.loss_eur_per_m[None, :]).ravel()
    cost[col_f.ravel()] = (w * curve.capex_eur_per_kw_m[None, :] + ln * curve.loss_eur_per_kw_m[None, :]).ravel()
    cost[col_x] = -ix.con_prize[optional]
    cost[col_o] = _overload_eur_per_kw(ix, curve)
    lower = np.zeros(ncol)
    upper = np.full(ncol, np.inf)
    upper[col_y.ravel()] = 1.0
    upper[col_f.ravel()] = np.broadcast_to(np.minimum(curve.upper_kw, flow_max)[None, :], (A, K)).ravel()
    upper[col_x] = 1.0
    upper[col_s] = ix.src_cap
    # unreachable consumers' nodes carry no flow: nothing else to do (their nodes have no path to a source)

    rows, cols, vals = [], [], []
    r_lo, r_hi = [], []
    r = 0

    def add(block_rows: np.ndarray, block_cols: np.ndarray, block_vals: np.ndarray) -> None:
        rows.append(block_rows)
        cols.append(block_cols)
        vals.append(block_vals)

    # 1. flow balance at every node: in − out − d·x + s = 0 (required: rhs d)
    for k in range(K):
        add(head, col_f[:, k], np.ones(A))
        add(tail, col_f[:, k], -np.ones(A))
    add(ix.con_node[optional], col_x, -ix.con_load[optional])
    add(ix.src_node, col_s, np.ones(len(col_s)))
    add(ix.src_node, col_o, np.ones(len(col_o)))
    rhs = np.zeros(n)
    rhs[ix.con_node[required]] = ix.con_load[required]
    r_lo.append(rhs)
    r_hi.append(rhs)
    r += n
    # 2. segment ranges: lo_k y ≤ f ≤ hi_k y
    seg = np.arange(A * K)
    hi = np.broadcast_to(np.minimum(curve.upper_kw, flow_max)[None, :], (A, K)).ravel()
    add(r + seg, col_f.ravel(), np.ones(A * K))
    add(r + seg, col_y.ravel(), -hi)
    r_lo.append(np.full(A * K, -np.inf))
    r_hi.append(np.zeros(A * K))
    r += A * K
    lo_k = np.broadcast_to(curve.lower_kw[None, :], (A, K)).ravel()
    has_lo = np.flatnonzero(lo_k > 0)
    if len(has_lo):
        rr = r + np.arange(len(has_lo))
        add(rr, col_f.ravel()[has_lo], np.ones(len(has_lo)))
        add(rr, col_y.ravel()[has_lo], -lo_k[has_lo])
        r_lo.append(np.zeros(len(has_lo)))
        r_hi.append(np.full(len(has_lo), np.inf))
        r += len(has_lo)
    # 3. in-degree: ≤ 1 at every node but the sources; = x (or 1) at a consumer
    for k in range(K):
        add(r + head, col_y[:, k], np.ones(A))
    indeg_hi = np.ones(n)
    indeg_lo = np.zeros(n)
    indeg_lo[ix.con_node[required]] = 1.0
    add(r + ix.con_node[optional], col_x, -np.ones(len(optional)))
    indeg_hi[ix.con_node[optional]] = 0.0
    r_lo.append(indeg_lo)
    r_hi.append(indeg_hi)
    r += n
    # 4. an arc leaves a node (not a source) only if an arc enters it: Σ_k y_out − Σ_in Σ_k y ≤ 0
    leave = np.flatnonzero(~is_src[tail])
    rr = r + np.arange(len(leave))
    for k in range(K):
        add(rr, col_y[leave, k], np.ones(len(leave)))
    # pair every leaving arc with every arc into its tail
    by_head = np.argsort(head, kind="stable")
    first = np.searchsorted(head[by_head], tail[leave], "left")
    count = np.searchsorted(head[by_head], tail[leave], "right") - first
    pr = np.repeat(rr, count)
    within = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    pa = by_head[np.repeat(first, count) + within]
    for k in range(K):
        add(pr, col_y[pa, k], -np.ones(len(pa)))
    r_lo.append(np.full(len(leave), -np.inf))
    r_hi.append(np.zeros(len(leave)))
    r += len(leave)

    # 5. one direction per edge: Σ_k y_uv + Σ_k y_vu ≤ 1
    arc_of = pd.Series(np.arange(A), index=pd.MultiIndex.from_arrays([tail, head]))
    back = arc_of.reindex(pd.MultiIndex.from_arrays([head, tail])).to_numpy()
    pair = np.flatnonzero(np.isfinite(back) & (np.arange(A) < np.nan_to_num(back, nan=-1)))
    rr = r + np.arange(len(pair))
    for k in range(K):
        add(rr, col_y[pair, k], np.ones(len(pair)))
        add(rr, col_y[back[pair].astype(np.int64), k], np.ones(len(pair)))
    r_lo.append(np.full(len(pair), -np.inf))
    r_hi.append(np.ones(len(pair)))
    r += len(pair)

    mat = sp.csc_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r, ncol), dtype=float
    )
    mat.sum_duplicates()
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = ncol, r
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = cost, lower, upper
    lp.row_lower_, lp.row_upper_ = np.concatenate(r_lo), np.concatenate(r_hi)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = mat.indptr, mat.indices, mat.data
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = ncol, r
    return _Model(lp, tail, head, arc_edge, col_y, col_f, col_x, col_s, col_o, optional, required)


def _highs(model: _Model, *, time_limit_s: float, mip_rel_gap: float, threads: int) -> highspy.Highs:
    h = new_highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", int(threads))
    h.setOptionValue("random_seed", 0)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    h.passModel(model.lp)
    return h


def _lp_bound(ix: _Index, curve: CostCurve, *, time_limit_s: float, solver: str = "choose") -> float:
    """Solve the MILP's LP relaxation: a lower bound on the objective.

    (Directed Steiner cuts found by maximum flows were tried on top of it: on the bundled Helsinki instances they
    raised the bound by 0.1–0.6 % for ten times the time, so they are not used.) Where HiGHS does not finish within
    ``time_limit_s`` the bound is unknown (NaN) and a warning says so.
    """
    h = _highs(_model(ix, curve), time_limit_s=time_limit_s, mip_rel_gap=0.0, threads=1)
    h.setOptionValue("solver", solver)
    h.run()
    status = h.modelStatusToString(h.getModelStatus())
    if status != "Optimal":
        logger.warning("The design's bound (LP relaxation) is not known: HiGHS stopped with %r", status)
        return float("nan")
    return float(h.getInfo().objective_function_value)


def _milp(
    ix: _Index,
    curve: CostCurve,
    *,
    time_limit_s: float = 60.0,
    mip_rel_gap: float = 1e-4,
    start: Design | None = None,
    threads: int = 1,
) -> Design:
    """Solve the MILP with HiGHS from a warm start."""
    import highspy

    model = _model(ix, curve)
    h = _highs(model, time_limit_s=time_limit_s, mip_rel_gap=mip_rel_gap, threads=threads)
    integrality = np.zeros(model.lp.num_col_, dtype=np.int32)
    integrality[model.col_y.ravel()] = 1
    integrality[model.col_x] = 1
    h.changeColsIntegrality(len(integrality), np.arange(len(integrality), dtype=np.int32), integrality.astype(np.uint8))
    if start is not None:
        sol = highspy.HighsSolution()
        sol.col_value = _start_vector(ix, start, model, curve)
        sol.value_valid = True
        h.setSolution(sol)
    h.run()
    status = h.modelStatusToString(h.getModelStatus())
    info = h.getInfo()
    if info.primal_solution_status < 2:
        raise RoutingError(
            f"the network-design MILP found no network within its time limit (HiGHS: {status}); raise "
            "'design.time_limit_s' or use 'design.method: heuristic'"
        )
    x = np.asarray(h.getSolution().col_value)
    m = model
    built = x[m.col_y].sum(axis=1) > 0.5
    parent = np.full(ix.n, -1, dtype=np.int64)
    parent_edge = np.full(ix.n, -1, dtype=np.int64)
    parent[m.head[built]] = m.tail[built]
    parent_edge[m.head[built]] = m.arc_edge[built]
    connected = np.zeros(len(ix.con_id), dtype=bool)
    connected[m.required] = True
    connected[m.optional] = x[m.col_x] > 0.5
    tree = _drop_idle(ix, _Tree(parent, parent_edge, connected))
    label = "optimal" if status == "Optimal" else ("time limit" if "time" in status.lower() else status)
    design = _to_design(ix, tree, curve, method="optimal", status=label)
    design.bound_eur = float(info.mip_dual_bound)
    return design


def _drop_idle(ix: _Index, tree: _Tree) -> _Tree:
    """Remove built arcs carrying no consumer (a zero-cost solution may keep them)."""
    load, _ = _edge_loads(ix, tree)
    on = tree.parent >= 0
    idle = on & (load[np.maximum(tree.parent_edge, 0)] <= 0)
    # a node whose parent edge is idle has nothing below it; cut it
    tree.parent[idle] = -1
    tree.parent_edge[idle] = -1
    return tree


def _start_vector(ix: _Index, start: Design, model: _Model, curve: CostCurve) -> np.ndarray:
    """Return the warm start's column values."""
    m = model
    tail, head, arc_edge, col_y, col_f, col_x, col_s = m.tail, m.head, m.arc_edge, m.col_y, m.col_f, m.col_x, m.col_s
    optional = m.optional
    x = np.zeros(m.lp.num_col_)
    pos = pd.Series(np.arange(ix.n), index=ix.node_ids)
    arcs = pd.Series(np.arange(len(tail)), index=pd.MultiIndex.from_arrays([tail, head]))
    e = start.edges
    if len(e):
        found = arcs.reindex(pd.MultiIndex.from_arrays([pos[e.from_node].to_numpy(), pos[e.to_node].to_numpy()]))
        good = found.notna().to_numpy()
        a = found.to_numpy()[good].astype(np.int64)
        load = e.load_kw.to_numpy()[good]
        # segment: the cheapest holding the load
        k = _segment_of(curve, load, ix.weight_m[arc_edge[a]], ix.length_m[arc_edge[a]])
        x[col_y[a, k]] = 1.0
        x[col_f[a, k]] = load
    connected = set(start.connected)
    x[col_x] = [1.0 if c in connected else 0.0 for c in ix.con_id[optional]]
    src_load = pd.Series(0.0, index=ix.src_node)
    if len(e):
        from_src = pos[e.from_node].isin(ix.src_node).to_numpy()
        s = (
            pd.Series(e.load_kw.to_numpy()[from_src], index=pos[e.from_node].to_numpy()[from_src])
            .groupby(level=0)
            .sum()
        )
        src_load = src_load.add(s, fill_value=0.0).reindex(ix.src_node)
    x[col_s] = np.minimum(src_load.to_numpy(), ix.src_cap)
    x[col_s + len(col_s)] = np.maximum(src_load.to_numpy() - ix.src_cap, 0.0)
    return x


def _segment_of(curve: CostCurve, load: np.ndarray, weight_m: np.ndarray, length_m: np.ndarray) -> np.ndarray:
    p = load[:, None]
    inside = (p <= curve.upper_kw[None, :] + 1e-9) & ((p > curve.lower_kw[None, :]) | (curve.lower_kw[None, :] == 0))
    per = weight_m[:, None] * (curve.capex_eur_per_m + curve.capex_eur_per_kw_m * p) + length_m[:, None] * (
        curve.loss_eur_per_m + curve.loss_eur_per_kw_m * p
    )
    per = np.where(inside, per, np.inf)
    k = per.argmin(axis=1)
    return np.where(np.isfinite(per.min(axis=1)), k, curve.segments - 1)


def catalogue_curve(
    catalogue: pd.DataFrame,
    *,
    water: sizing.Water,
    t_supply_c: float,
    t_return_c: float,
    t_ground_c: float,
    max_velocity_m_per_s: float,
    max_pressure_gradient_pa_per_m: float,
    roughness_m: float,
    heat_value_eur_per_mwh: float,
    annuity: float,
    segments: int,
) -> CostCurve:
    """Make the cost curve of a pipe catalogue.

    Each DN costs its capex per metre up to the design load it can carry, plus its heat losses over the lifetime.

    A DN carries up to ``ṁ_max · c_p · (t_supply − t_return)``, ``ṁ_max`` the largest flow within both limits
    (:func:`heatmap.network.sizing.dn_capacity_kw`). Its losses per metre of route are those of the supply and the
    return pipe, ``U' · ((t_supply − t_ground) + (t_return − t_ground))``, all year (8760 h: the plan's rule without
    a year of operation), valued at ``heat_value_eur_per_mwh`` and capitalised over the lifetime (÷ ``annuity``).

    Parameters
    ----------
    catalogue
        :func:`heatmap.network.sizing.load_catalogue`.
    water
        Water properties.
    t_supply_c, t_return_c, t_ground_c
        Design temperatures, °C.
    max_velocity_m_per_s, max_pressure_gradient_pa_per_m, roughness_m
        The sizing limits and the wall roughness.
    heat_value_eur_per_mwh
        What a MWh of heat lost costs.
    annuity
        Capital recovery factor of the lifetime.
    segments
        Segments of the piecewise-linear curve (:meth:`CostCurve.from_steps`).

    Returns
    -------
    CostCurve
    """
    cap = sizing.dn_capacity_kw(
        catalogue,
        water=water,
        delta_t_k=t_supply_c - t_return_c,
        max_velocity_m_per_s=max_velocity_m_per_s,
        max_pressure_gradient_pa_per_m=max_pressure_gradient_pa_per_m,
        roughness_m=roughness_m,
    )
    loss_w_per_m = catalogue.u_w_per_mk.to_numpy() * ((t_supply_c - t_ground_c) + (t_return_c - t_ground_c))
    loss_eur_per_m = loss_w_per_m * 8760.0 / 1e6 * heat_value_eur_per_mwh / annuity
    return CostCurve.from_steps(
        cap,
        catalogue.cost_eur_per_m.to_numpy(),
        loss_eur_per_m,
        segments=segments,
        label=(
            f"EN 253 catalogue in {segments} segments: capex by DN up to its capacity at "
            f"{t_supply_c:g}/{t_return_c:g} °C, heat losses at {heat_value_eur_per_mwh:g} €/MWh over the lifetime"
        ),
    )


def routed_tree(result: Design, problem: DesignProblem) -> routing.RoutedTree:
    """Return the design as the routing stage's trees.

    Each built edge is oriented away from its source, with its depth and tree (one per source that feeds anyone);
    consumers with no path to a source are ``unreachable``.
    """
    e = result.edges
    ix = _index(problem)
    unreachable = sorted(ix.con_id[~_reachable(ix)].tolist())
    parent = pd.Series(e.from_node.to_numpy(), index=e.to_node.to_numpy())
    up, depth = parent.copy(), pd.Series(1, index=parent.index)
    while True:  # climb every node one edge at a time until it stands on its source
        higher = up.isin(parent.index)
        if not higher.any():
            break
        up[higher] = parent.reindex(up[higher]).to_numpy()
        depth[higher] += 1
    tree_of_root = {int(r): i for i, r in enumerate(sorted(set(up)))}
    edges = pd.DataFrame(
        {
            "edge_id": e.edge_id.to_numpy(),
            "from_node": e.from_node.to_numpy(),
            "to_node": e.to_node.to_numpy(),
            "depth": depth.reindex(e.to_node).to_numpy(),
            "tree": up.reindex(e.to_node).map(tree_of_root).to_numpy(),
        }
    ).sort_values(["tree", "depth"], kind="stable", ignore_index=True)
    return routing.RoutedTree(
        edges=edges, root_of_tree={i: r for r, i in tree_of_root.items()}, unreachable=unreachable
    )
