"""A large-neighbourhood search on a network design: the MILP solved exactly in one region at a time.

:func:`improve` takes a forest (the heuristic's) and, round by round, frees one region of it and solves the
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
it, a trunk's size and route changed together. Seeded: the same problem gives the same forest (where no region
reaches :data:`REGION_TIME_LIMIT_S`). Large-neighbourhood search: Shaw (1998); Pisinger and Ropke (2010).
"""

from __future__ import annotations

import logging
import time

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from heatmap._highs import new_highs
from heatmap.network import design, design_milp, design_reduce

logger = logging.getLogger(__name__)

REGION_TIME_LIMIT_S = 5.0
"""Time limit of one region's sub-MILP (on the benchmark's Helsinki instance they take 0.02–2 s; one that stops
there keeps the best forest it found)."""


def improve(ix: design.ProblemIndex, tree: design.Forest, *, rounds: int, region_nodes: int) -> design.Forest:
    """Return the forest improved by ``rounds`` regions of ``region_nodes`` nodes each, re-solved exactly.

    Parameters
    ----------
    ix
        The problem.
    tree
        A forest of it (every required consumer connected).
    rounds
        Regions solved (each a sub-MILP in HiGHS); 0: none.
    region_nodes
        Nodes of the reduced problem in each region (the larger, the more a region can change and the longer it
        takes: on the benchmark's Helsinki instance with the catalogue curve 15 nodes take 0.05 s a region, 25 nodes
        0.2 s, 35 nodes 0.4 s).

    Returns
    -------
    design.Forest
        ``tree`` itself where no region found a cheaper forest.
    """
    if rounds <= 0:
        return tree
    t0 = time.perf_counter()
    red = design_reduce.reduce_problem(ix)
    if not red.ix.n or not len(red.ix.ea):
        return tree
    model = design_milp._model(red.ix, penalty_eur_per_kw=design.overload_eur_per_kw(ix), offset_eur=red.offset_eur)
    start = design.to_design(ix, tree, method="heuristic", status="heuristic")
    regions = _Regions(red.ix, model, design_milp._start_vector(red, start, model))
    if region_nodes >= red.ix.n:  # one region holds the whole problem: the MILP itself, once
        rounds = 1
    rng = np.random.default_rng(0)
    degree = np.bincount(red.ix.ea, minlength=red.ix.n) + np.bincount(red.ix.eb, minlength=red.ix.n)
    junctions = np.flatnonzero(degree >= 3)
    pool = junctions if len(junctions) else np.arange(red.ix.n)
    made = 0
    centres: list[int] = []
    for _ in range(rounds):
        if not centres:  # every junction a centre once, in a random order, before any is again
            centres = rng.permutation(pool).tolist()
        made += regions.solve(centres.pop(), region_nodes)
    c0, p0 = design.evaluate(ix, tree)
    out, value = tree, c0 - p0
    if made:
        found = design_milp._forest_of(model, red, regions.x)
        c1, p1 = design.evaluate(ix, found)
        if c1 - p1 < value:  # (the reduced problem prices it the same, up to rounding)
            out, value = found, c1 - p1
    logger.info(
        "Large-neighbourhood search: %d of %d regions of %d nodes found a cheaper network, %.6g → %.6g € in %.2f s",
        made,
        rounds,
        region_nodes,
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

    def solve(self, centre: int, size: int, *, bound_flows: bool = True) -> bool:
        """Solve the region of the ``size`` nodes nearest ``centre``; return whether it found a cheaper forest.

        ``bound_flows``: bound the flows by what may pass the region (False: not, the same optimum more slowly).
        """
        ix, m, x = self.ix, self.model, self.x
        dist = dijkstra(self.graph, directed=False, indices=centre)
        region = np.zeros(ix.n, dtype=bool)
        region[np.argsort(dist, kind="stable")[:size]] = True
        free = region[m.tail] | region[m.head]
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
        h.setOptionValue("output_flag", False)
        h.setOptionValue("threads", 1)
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
