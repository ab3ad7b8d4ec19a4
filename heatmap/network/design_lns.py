"""A large-neighbourhood search on a network design: the MILP solved exactly in one region at a time.

:func:`improve` takes forests (the heuristic's) and, round by round, frees one region of one and solves the
fixed-charge network-design MILP (:func:`heatmap.network.design_milp._model`) there, the rest kept as it is. A region
is the nodes of the reduced problem (:mod:`heatmap.network.design_reduce`) nearest a centre, by street length; the
centres are the junctions (nodes of three edges or more: where a street is fed from one side or another), each once,
in a random order, before any is again. Every arc touching the region is free; the arcs on
the paths from the sources down to it stay built but may change their cost segment and flow (what the region draws
may come in by another of them); every other column keeps its value. The flow on a free arc is bounded by the load
of the consumers in or below the region (and of the optional ones next to it), on a path's arc by its flow plus
that: the sub-MILP's LP relaxation is much tighter than the whole problem's. HiGHS solves it from the current
forest, looking only for a cheaper one, which is then kept. This finds what moves of one subtree at a time
(:mod:`heatmap.network.design_heuristic`) do not: a street fed from its other end together with the branch beside
it, a trunk's size and route changed together. The regions are shared among several searches, each from its own
forest (the heuristic's cheapest local optima) in its own order of the junctions; they end in different forests,
which are merged: where two differ, the MILP is solved on the pipes either builds there (solution merging, as in
Blum et al. 2016); a last search goes on from the merged forest. Seeded: the same problem gives the same forest
(where no region reaches :data:`REGION_TIME_LIMIT_S`). Large-neighbourhood search: Shaw (1998); Pisinger and Ropke
(2010).
"""

from __future__ import annotations

import copy
import logging
import time

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from heatmap._highs import new_highs
from heatmap.network import design, design_milp, design_reduce

logger = logging.getLogger(__name__)

AFTER_MERGE = 1 / 3
"""Share of the regions solved after the searches' forests are merged, from the merged forest (where there are
several searches). On the benchmark's Helsinki instances, over 10 seeds, no worse than all regions before the merge:
with the catalogue curve within 0.5 % of the optimum as often (6 times), with every consumer optional at the optimum
once more often (8 times against 7)."""

REGION_TIME_LIMIT_S = 5.0
"""Time limit of one region's sub-MILP (on the benchmark's Helsinki instance they take 0.02–2 s; one that stops
there keeps the best forest it found)."""


def improve(ix: design.ProblemIndex, starts: list[design.Forest], *, rounds: int, region_nodes: int) -> design.Forest:
    """Return the cheapest forest of searches by regions of ``region_nodes`` nodes re-solved exactly, merged.

    One search runs from each forest of ``starts``, taking the junctions in its own seeded order; they share the
    ``rounds`` regions but the last :data:`AFTER_MERGE` of them. The forests they end with are then merged
    (:meth:`_Regions.merge`): the cheapest is taken and, where another differs from it, the MILP is solved on the
    pipes either builds there, so the merged forest takes the cheaper part of each; the last regions go on from it.
    Searches from other starts, in other orders, end in other local optima; merged, they come nearer the optimum
    than one search of as many regions.

    Parameters
    ----------
    ix
        The problem.
    starts
        Forests of it (every required consumer connected), at least one, the cheapest first; a forest may be given
        more than once (its searches then differ in their order).
    rounds
        Regions solved in all (each a sub-MILP in HiGHS); 0: none.
    region_nodes
        Nodes of the reduced problem in each region (the larger, the more a region can change and the longer it
        takes: on the benchmark's Helsinki instance with the catalogue curve 15 nodes take 0.05 s a region, 25 nodes
        0.2 s, 35 nodes 0.4 s).

    Returns
    -------
    design.Forest
        ``starts[0]`` itself where nothing cheaper was found.
    """
    if rounds <= 0:
        return starts[0]
    t0 = time.perf_counter()
    red = design_reduce.reduce_problem(ix)
    if not red.ix.n or not len(red.ix.ea):
        return starts[0]
    model = design_milp._model(red.ix, penalty_eur_per_kw=design.overload_eur_per_kw(ix), offset_eur=red.offset_eur)
    if region_nodes >= red.ix.n:  # one region holds the whole problem: the MILP itself, once
        rounds, starts = 1, starts[:1]
    starts = starts[: max(1, rounds)]
    xs = [
        design_milp._start_vector(red, design.to_design(ix, tree, method="heuristic", status="heuristic"), model)
        for tree in starts
    ]
    first = _Regions(red.ix, model, xs[0])
    found = [first] + [first.at(x) for x in xs[1:]]
    shared = rounds - int(rounds * AFTER_MERGE) if len(found) > 1 else rounds
    made = sum(
        search.search(shared // len(found) + (k < shared % len(found)), region_nodes, seed=k)
        for k, search in enumerate(found)
    )
    found.sort(key=_Regions.value)
    best = found[0]
    merged = sum(best.merge(other.x) for other in found[1:])
    made += best.search(rounds - shared, region_nodes, seed=len(found))
    c0, p0 = design.evaluate(ix, starts[0])
    out, value = starts[0], c0 - p0
    forest = design_milp._forest_of(model, red, best.x)
    c1, p1 = design.evaluate(ix, forest)
    if c1 - p1 < value - 1e-9 * max(1.0, abs(value)):  # (the reduced problem prices it the same, up to rounding)
        out, value = forest, c1 - p1
    logger.info(
        "Large-neighbourhood search: %d of %d regions of %d nodes in %d searches found a cheaper network, "
        "%d merges; %.6g → %.6g € in %.2f s",
        made,
        rounds,
        region_nodes,
        len(starts),
        merged,
        c0 - p0,
        value,
        time.perf_counter() - t0,
    )
    return out


class _Regions:
    """The reduced problem's MILP and its current solution ``x``; :meth:`solve` improves ``x`` one region at a time."""

    def __init__(self, ix: design.ProblemIndex, model: design_milp._Model, x: np.ndarray):
        self.ix, self.model, self.x = ix, model, x
        lp = model.lp
        self.matrix = sp.csc_matrix(
            (lp.a_matrix_.value_, lp.a_matrix_.index_, lp.a_matrix_.start_), shape=(lp.num_row_, lp.num_col_)
        )
        self.cost = np.asarray(lp.col_cost_)
        self.lower, self.upper = np.asarray(lp.col_lower_), np.asarray(lp.col_upper_)
        self.row_lower, self.row_upper = np.asarray(lp.row_lower_), np.asarray(lp.row_upper_)
        self.integer = np.zeros(lp.num_col_, dtype=bool)
        self.integer[model.col_y.ravel()] = True
        self.integer[model.col_x] = True
        self.graph = sp.csr_matrix((ix.length_m, (ix.ea, ix.eb)), shape=(ix.n, ix.n))
        self.node_load = np.bincount(ix.con_node, ix.con_load, minlength=ix.n)  # every consumer's, optional too
        self.seg_lower = ix.costs.lower_kw[model.arc_edge]  # (arcs, segments), kW
        self.always = np.concatenate([model.col_x, model.col_s, model.col_o])
        degree = np.bincount(ix.ea, minlength=ix.n) + np.bincount(ix.eb, minlength=ix.n)
        junctions = np.flatnonzero(degree >= 3)  # the regions' centres (any node where there is none)
        self.centres = junctions if len(junctions) else np.arange(ix.n)

    def at(self, x: np.ndarray) -> _Regions:
        """Return the same problem at another solution ``x`` (its arrays shared: none is changed in place)."""
        other = copy.copy(self)
        other.x = x
        return other

    def value(self) -> float:
        """Return the objective of the current solution ``x`` (of the reduced problem), €."""
        return float(self.cost @ self.x)

    def search(self, rounds: int, size: int, *, seed: int) -> int:
        """Solve ``rounds`` regions of ``size`` nodes; return how many found a cheaper forest.

        The centres are the junctions (nodes of three edges or more), each once in an order seeded by ``seed``
        before any is again.
        """
        rng = np.random.default_rng(seed)
        centres: list[int] = []
        made = 0
        for _ in range(rounds):
            if not centres:
                centres = rng.permutation(self.centres).tolist()
            made += self.solve(centres.pop(), size)
        return made

    def merge(self, other: np.ndarray) -> bool:
        """Solve the MILP where the solution ``other`` builds other arcs than ``x``; return whether it was cheaper.

        The region is the nodes at either end of an arc one builds and the other not; of the arcs touching it only
        those either builds are free: the MILP on the union of the two forests there.
        """
        m = self.model
        mine, theirs = self.x[m.col_b] > 0.5, other[m.col_b] > 0.5
        differ = mine != theirs
        if not differ.any():
            return False
        region = np.zeros(self.ix.n, dtype=bool)
        region[m.tail[differ]] = True
        region[m.head[differ]] = True
        return self.solve_region(region, arcs=mine | theirs)

    def solve(self, centre: int, size: int, *, bound_flows: bool = True) -> bool:
        """Solve the region of the ``size`` nodes nearest ``centre``; return whether it found a cheaper forest.

        ``bound_flows``: bound the flows by what may pass the region (False: not, the same optimum more slowly).
        """
        dist = dijkstra(self.graph, directed=False, indices=centre)
        region = np.zeros(self.ix.n, dtype=bool)
        region[np.argsort(dist, kind="stable")[:size]] = True
        return self.solve_region(region, bound_flows=bound_flows)

    def solve_region(self, region: np.ndarray, *, bound_flows: bool = True, arcs: np.ndarray | None = None) -> bool:
        """Solve the MILP with the arcs touching ``region``'s nodes free; return whether it found a cheaper forest.

        ``region``: a mask of the nodes; ``arcs``: a mask of the arcs that may be free (``None``: every one touching
        the region). A cheaper forest found is kept in ``x``.
        """
        ix, m, x = self.ix, self.model, self.x
        free = region[m.tail] | region[m.head]
        if arcs is not None:
            free &= arcs
        built = np.flatnonzero(x[m.col_b] > 0.5)
        parent = np.full(ix.n, -1, dtype=np.int64)
        arc_in = np.full(ix.n, -1, dtype=np.int64)
        parent[m.head[built]] = m.tail[built]
        arc_in[m.head[built]] = built
        # the consumers whose flow may pass the region: those in or below it, and the optional ones next to it
        tin, tout = design.euler_tour(parent)
        mark = np.bincount(tin[region], minlength=ix.n + 1) - np.bincount(tout[region], minlength=ix.n + 1)
        below = (np.cumsum(mark)[: ix.n] > 0)[tin]
        near = below.copy()
        near[m.tail[free]] = True
        near[m.head[free]] = True
        through_kw = float(self.node_load[near].sum())
        # the arcs on the paths from the sources down to the region: into a node whose subtree holds a region node
        held = np.concatenate([[0], np.cumsum(np.bincount(tin[region], minlength=ix.n))])
        above = (held[tout] - held[tin] > 0) & (arc_in >= 0)
        path = np.zeros(len(m.tail), dtype=bool)
        path[arc_in[above]] = True
        path &= ~free
        flow_now = x[m.col_f].sum(axis=1)
        cap = np.where(free, through_kw, np.where(path, flow_now + through_kw, np.inf))
        least = np.where(path, np.maximum(flow_now - through_kw, 0.0), 0.0)
        if not bound_flows:
            cap, least = np.full(len(cap), np.inf), np.zeros(len(cap))
        upper = self.upper.copy()
        upper[m.col_f] = np.minimum(upper[m.col_f], cap[:, None])
        # the segments a free arc's or a path's flow can be in (the others stay 0)
        possible = (self.seg_lower <= cap[:, None]) & (self.upper[m.col_f] >= least[:, None]) & (free | path)[:, None]
        keep = np.zeros(len(x), dtype=bool)
        keep[m.col_y[possible]] = True
        keep[m.col_f[possible]] = True
        keep[m.col_b[free]] = True
        keep[self.always] = True
        return self._solve(np.flatnonzero(keep), upper)

    def _solve(self, cols: np.ndarray, upper: np.ndarray) -> bool:
        """Solve the MILP in the columns ``cols``, the others fixed at their values in ``x``."""
        import highspy

        x = self.x
        fixed = np.ones(len(x), dtype=bool)
        fixed[cols] = False
        activity = self.matrix[:, fixed] @ x[fixed]
        sub = self.matrix[:, cols].tocsr()
        rows = np.flatnonzero(np.diff(sub.indptr) > 0)
        sub = sub[rows].tocsc()
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = len(cols), len(rows)
        lp.col_cost_, lp.col_lower_, lp.col_upper_ = self.cost[cols], self.lower[cols], upper[cols]
        lp.row_lower_ = self.row_lower[rows] - activity[rows]
        lp.row_upper_ = self.row_upper[rows] - activity[rows]
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = sub.indptr, sub.indices, sub.data
        lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = len(cols), len(rows)
        kinds = np.array([highspy.HighsVarType.kContinuous, highspy.HighsVarType.kInteger])
        lp.integrality_ = list(kinds[self.integer[cols].astype(int)])
        h = new_highs()
        h.setOptionValue("random_seed", 0)
        h.setOptionValue("time_limit", REGION_TIME_LIMIT_S)
        h.passModel(lp)
        now = float(self.cost[cols] @ x[cols])
        start = highspy.HighsSolution()
        start.col_value = list(x[cols])
        start.value_valid = True
        h.setSolution(start)
        h.setOptionValue("objective_bound", now - 1e-9 * max(1.0, abs(now)))  # only a cheaper forest
        h.run()
        if h.getInfo().primal_solution_status != 2:  # kSolutionStatusFeasible
            return False
        value = np.asarray(h.getSolution().col_value)
        if float(self.cost[cols] @ value) >= now - 1e-9 * max(1.0, abs(now)):
            return False
        self.x = x.copy()
        self.x[cols] = value
        return True
