"""The exact economic network design: the fixed-charge network-design MILP, its LP in HiGHS, its search in SCIP.

:func:`optimal_design`: per arc (edge and direction) and cost segment a build binary and a flow; flow conservation
at every node; a consumer connected draws its load; every node but a source has at most one built arc in (the
network is a forest of trees, each rooted at a source), an arc can leave a node only if one enters it and an edge is
built in one direction at most (these tighten the LP relaxation); each source supplies up to its capacity, beyond it
at a penalty. Before the search the LP relaxation is tightened by cut-set inequalities on the subtrees of the
warm start and of the LP's own builds rounded to trees (:func:`_with_cuts`), kept in the MILP. The branch and cut
then runs in SCIP (the default) or goes on in HiGHS (:meth:`_CutLP.search`). Warm-started from a design (the
heuristic's), with a time limit and a relative MIP gap; the proven bound and the gap are reported.
:func:`lp_bound` is the LP relaxation (with the cuts), then, where asked, a short branch and cut: the heuristic's
bound. The problem and the cost curve are :mod:`heatmap.network.design`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from heatmap._errors import RoutingError
from heatmap._highs import new_highs
from heatmap.network import design, design_reduce

if TYPE_CHECKING:
    import highspy

logger = logging.getLogger(__name__)


def optimal_design(
    problem: design.DesignProblem,
    *,
    time_limit_s: float = 60.0,
    mip_rel_gap: float = 1e-4,
    start: design.Design | None = None,
    solver: str = "scip",
) -> design.Design:
    """Solve the fixed-charge network-design MILP: its cut LP with HiGHS, then a branch and cut (SCIP, or HiGHS).

    Parameters
    ----------
    problem
        The design problem.
    time_limit_s
        Wall-clock limit; the best design found and the proven bound are returned when it is reached.
    mip_rel_gap
        Relative gap at which the search stops.
    start
        A design to warm-start from (the heuristic's, :func:`heatmap.network.design_heuristic.heuristic_design`); its
        phases' times and its bound carry over.
    solver
        Of the branch and cut after the cut LP (:data:`MIP_SOLVERS`): ``highs`` or ``scip`` (:func:`_scip_search`).

    Returns
    -------
    design.Design
        With ``bound_eur`` the proven lower bound and ``status`` ``optimal`` or ``time limit``.
    """
    original = design.index_problem(problem)
    t1 = time.perf_counter()
    lp = _cut_lp(original, penalty_eur_per_kw=design.overload_eur_per_kw(original), time_limit_s=time_limit_s,
                 cut_time_s=time_limit_s / 4, start=start, mip_rel_gap=mip_rel_gap)  # fmt: skip
    found = lp.search(time_limit_s - (time.perf_counter() - t1), solver=solver, mip_rel_gap=mip_rel_gap)
    if found.x is None:
        raise RoutingError(
            f"the network-design MILP found no network within its time limit ({solver}: {found.status}); raise "
            "'design.time_limit_s' or use 'design.method: heuristic'"
        )
    tree = _forest_of(lp.model, lp.red, found.x)
    result = design.to_design(original, tree, method="optimal", status=found.status)
    result.time_s = {**(start.time_s if start is not None else {}), "milp": time.perf_counter() - t1}
    # a bound computed before (the heuristic's LP relaxation) holds too
    earlier = start.bound_eur if start is not None and np.isfinite(start.bound_eur) else -np.inf
    result.bound_eur = max(found.bound_eur, earlier)
    result.bound_from = "MILP" if result.bound_eur > earlier or start is None else start.bound_from
    logger.info("Optimal design (%s, %s): %s", solver, result.status, result.describe())
    return result


@dataclass
class _CutLP:
    """The MILP of a reduced problem in HiGHS, its LP relaxation solved and tightened by cut-set inequalities."""

    h: highspy.Highs
    red: design_reduce.Reduced
    model: _Model
    start_x: np.ndarray | None  # the warm start's column values
    value: float  # the cut LP's optimum (NaN where it did not finish)

    def search(
        self,
        time_limit_s: float,
        *,
        solver: str = "scip",
        mip_rel_gap: float = 0.0,
        objective_limit_eur: float | None = None,
    ) -> _Found:
        """Go on with a branch and cut for at most ``time_limit_s`` (the warm start its first incumbent).

        ``solver``: ``highs`` goes on in the same HiGHS; ``scip`` hands the MILP, its cut rows included, to SCIP
        (:func:`_scip_search`), whose separators close more of the gap on this model. ``objective_limit_eur`` (SCIP
        only): look only for designs cheaper than that (the warm start and primal heuristics left out); status
        ``infeasible`` then proves there is none.
        """
        import highspy

        h, model = self.h, self.model
        integrality = np.zeros(model.lp.num_col_, dtype=np.uint8)
        integrality[model.col_y.ravel()] = 1
        integrality[model.col_x] = 1
        h.changeColsIntegrality(len(integrality), np.arange(len(integrality), dtype=np.int32), integrality)
        if solver == "scip":
            return _scip_search(
                h,
                self.start_x if objective_limit_eur is None else None,
                time_limit_s=time_limit_s,
                mip_rel_gap=mip_rel_gap,
                objective_limit_eur=objective_limit_eur,
            )
        if objective_limit_eur is not None:
            raise ValueError("an objective limit needs solver 'scip'")
        h.setOptionValue("time_limit", max(time_limit_s, 1e-3))
        if self.start_x is not None:
            sol = highspy.HighsSolution()
            sol.col_value = self.start_x
            sol.value_valid = True
            h.setSolution(sol)
        h.run()
        status = h.modelStatusToString(h.getModelStatus())
        info = h.getInfo()
        x = np.asarray(h.getSolution().col_value) if info.primal_solution_status >= 2 else None
        label = "optimal" if status == "Optimal" else ("time limit" if "time" in status.lower() else status)
        return _Found(x, float(info.mip_dual_bound), label)


MIP_SOLVERS = ("highs", "scip")
"""The solvers of the design MILP's branch and cut (:meth:`_CutLP.search`)."""


@dataclass(frozen=True)
class _Found:
    """What a branch and cut found (:meth:`_CutLP.search`)."""

    x: np.ndarray | None
    """The best solution's column values (``None``: none found)."""
    bound_eur: float
    """The proven lower bound."""
    status: str
    """``optimal`` (within the relative gap asked), ``time limit``, or the solver's own word."""


def _scip_search(
    h: highspy.Highs,
    start_x: np.ndarray | None,
    *,
    time_limit_s: float,
    mip_rel_gap: float,
    objective_limit_eur: float | None = None,
) -> _Found:
    """Solve the MILP held in ``h`` (cut rows and integrality included) with SCIP (``pyscipopt``), single-threaded.

    The model goes over as an MPS file that HiGHS writes (its columns named ``c0`` … in order); ``start_x`` is
    SCIP's first incumbent. With ``objective_limit_eur`` SCIP searches only below it, its primal heuristics off (a
    proof that no cheaper design exists: status ``infeasible``). On the Helsinki benchmark with the catalogue curve
    SCIP's aggregation separators (flow covers, knapsack covers, c-MIR) raise the root bound to 34.44 M€ in 48 s where
    HiGHS's stays at 33.88 M€ after 60 s; SCIP proves the linear-cost and all-optional instances optimal in 1.1 and
    0.6 s (HiGHS: 6.1 and 0.8 s).
    """
    import tempfile
    from pathlib import Path

    from pyscipopt import Model

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="heatmap-milp-") as tmp:
        path = str(Path(tmp) / "design.mps")
        h.writeModel(path)
        m = Model()
        m.hideOutput()
        m.readProblem(path)
    columns = {v.name: v for v in m.getVars()}
    var = [columns[f"c{j}"] for j in range(h.getNumCol())]
    m.setParam("limits/time", max(time_limit_s - (time.perf_counter() - t0), 1e-3))
    m.setParam("limits/gap", float(mip_rel_gap))
    m.setParam("randomization/randomseedshift", 0)
    if objective_limit_eur is not None:
        from pyscipopt import SCIP_PARAMSETTING

        m.setObjlimit(objective_limit_eur)
        m.setHeuristics(SCIP_PARAMSETTING.OFF)
    if start_x is not None:
        sol = m.createSol()
        for j in np.flatnonzero(start_x):
            m.setSolVal(sol, var[j], float(start_x[j]))
        m.addSol(sol, free=True)
    m.optimizeNogil()  # the GIL released, as HiGHS does: the plan's bound may run on a thread
    status = m.getStatus()
    x = None
    if m.getNSols() > 0:
        best = m.getBestSol()
        x = np.array([m.getSolVal(best, v) for v in var])
    label = {"optimal": "optimal", "gaplimit": "optimal", "timelimit": "time limit"}.get(status, status)
    bound = float(m.getDualbound())
    return _Found(x, -np.inf if m.isInfinity(-bound) else bound, label)  # no bound yet: SCIP's −infinity


def _cut_lp(
    ix: design.ProblemIndex,
    *,
    penalty_eur_per_kw: float,
    time_limit_s: float,
    cut_time_s: float,
    start: design.Design | None = None,
    solver: str = "choose",
    mip_rel_gap: float = 0.0,
) -> _CutLP:
    """Reduce the problem, build its MILP and solve the LP relaxation with cuts (:func:`_with_cuts`, ``cut_time_s``).

    ``penalty_eur_per_kw`` prices load beyond the sources' capacities; ``start``, a design of ``ix``, gives the first
    round's sets and the warm start of a later search.
    """
    t0 = time.perf_counter()
    red = design_reduce.reduce_problem(ix)
    model = _model(red.ix, penalty_eur_per_kw=penalty_eur_per_kw, offset_eur=red.offset_eur)
    h = _highs(model, time_limit_s=max(time_limit_s, 1e-3), mip_rel_gap=mip_rel_gap)
    h.setOptionValue("solver", solver)
    start_x = _start_vector(red, start, model) if start is not None else None
    value = _with_cuts(h, red.ix, model, deadline=t0 + cut_time_s, start=_parent_of(model, start_x, red.ix.n))
    h.setOptionValue("solver", "choose")
    return _CutLP(h, red, model, start_x, value)


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
    col_b: np.ndarray  # per arc: built in any segment (Σ_k y)
    optional: np.ndarray  # consumer positions of the optional (reachable) consumers, in col_x order
    required: np.ndarray  # ... and of the required reachable ones


def _model(ix: design.ProblemIndex, *, penalty_eur_per_kw: float, offset_eur: float) -> _Model:
    """Build the fixed-charge network-design MILP as a HiGHS matrix (integrality not yet set).

    ``penalty_eur_per_kw`` prices load beyond the sources' capacities and ``offset_eur`` is a constant in the
    objective (what the reduction fixed: :func:`heatmap.network.design_reduce.reduce_problem`).
    """
    import highspy

    reach = ix.reach
    n, m, K = ix.n, len(ix.edge_id), ix.costs.segments
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
    flow_max = np.maximum(_arc_flow_bounds(ix, tail, head), 1e-6)[:, None]

    # columns: y[a,k] (A·K), f[a,k] (A·K), x (optional consumers), s (sources)
    ny = A * K
    col_y = np.arange(ny).reshape(A, K)
    col_f = ny + np.arange(ny).reshape(A, K)
    col_x = 2 * ny + np.arange(len(optional))
    col_s = 2 * ny + len(optional) + np.arange(len(ix.src_node))
    col_o = col_s + len(ix.src_node)  # overload beyond capacity, at a penalty (the plan's checks report it)
    col_b = 2 * ny + len(optional) + 2 * len(ix.src_node) + np.arange(A)  # per arc: built (Σ_k y)
    ncol = 2 * ny + len(optional) + 2 * len(ix.src_node) + A
    costs = ix.costs
    seg_hi = np.maximum(np.minimum(costs.upper_kw[arc_edge], flow_max), 0.0)  # (A, K); 0: a segment the edge lacks
    cost = np.zeros(ncol)
    cost[col_y.ravel()] = costs.fixed_eur[arc_edge].ravel()
    cost[col_f.ravel()] = costs.eur_per_kw[arc_edge].ravel()
    cost[col_x] = -ix.con_prize[optional]
    cost[col_o] = penalty_eur_per_kw
    lower = np.zeros(ncol)
    upper = np.full(ncol, np.inf)
    upper[col_y.ravel()] = (costs.upper_kw[arc_edge] >= 0).ravel().astype(float)
    upper[col_f.ravel()] = seg_hi.ravel()
    upper[col_x] = 1.0
    upper[col_s] = ix.src_cap
    upper[col_b] = 1.0
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
    add(r + seg, col_f.ravel(), np.ones(A * K))
    add(r + seg, col_y.ravel(), -seg_hi.ravel())
    r_lo.append(np.full(A * K, -np.inf))
    r_hi.append(np.zeros(A * K))
    r += A * K
    lo_k = costs.lower_kw[arc_edge].ravel()
    has_lo = np.flatnonzero(lo_k > 0)
    if len(has_lo):
        rr = r + np.arange(len(has_lo))
        add(rr, col_f.ravel()[has_lo], np.ones(len(has_lo)))
        add(rr, col_y.ravel()[has_lo], -lo_k[has_lo])
        r_lo.append(np.zeros(len(has_lo)))
        r_hi.append(np.full(len(has_lo), np.inf))
        r += len(has_lo)
    # 3. in-degree: ≤ 1 at every node but the sources; = x (or 1) at a consumer
    # 3. an arc built: b = Σ_k y (the constraints below on b alone: K times fewer nonzeros)
    for k in range(K):
        add(r + np.arange(A), col_y[:, k], np.ones(A))
    add(r + np.arange(A), col_b, -np.ones(A))
    r_lo.append(np.zeros(A))
    r_hi.append(np.zeros(A))
    r += A
    add(r + head, col_b, np.ones(A))
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
    add(rr, col_b[leave], np.ones(len(leave)))
    # pair every leaving arc with every arc into its tail
    by_head = np.argsort(head, kind="stable")
    first = np.searchsorted(head[by_head], tail[leave], "left")
    count = np.searchsorted(head[by_head], tail[leave], "right") - first
    pr = np.repeat(rr, count)
    within = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    pa = by_head[np.repeat(first, count) + within]
    add(pr, col_b[pa], -np.ones(len(pa)))
    r_lo.append(np.full(len(leave), -np.inf))
    r_hi.append(np.zeros(len(leave)))
    r += len(leave)

    # 5. one direction per edge: Σ_k y_uv + Σ_k y_vu ≤ 1
    arc_of = pd.Series(np.arange(A), index=pd.MultiIndex.from_arrays([tail, head]))
    back = arc_of.reindex(pd.MultiIndex.from_arrays([head, tail])).to_numpy()
    pair = np.flatnonzero(np.isfinite(back) & (np.arange(A) < np.nan_to_num(back, nan=-1)))
    rr = r + np.arange(len(pair))
    add(rr, col_b[pair], np.ones(len(pair)))
    add(rr, col_b[back[pair].astype(np.int64)], np.ones(len(pair)))
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
    lp.offset_ = float(offset_eur)
    lp.row_lower_, lp.row_upper_ = np.concatenate(r_lo), np.concatenate(r_hi)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = mat.indptr, mat.indices, mat.data
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = ncol, r
    return _Model(lp, tail, head, arc_edge, col_y, col_f, col_x, col_s, col_o, col_b, optional, required)


def _arc_flow_bounds(ix: design.ProblemIndex, tail: np.ndarray, head: np.ndarray) -> np.ndarray:
    """Return the most design load each arc can carry: what the consumers beyond it draw, where the arc is a bridge.

    An arc of an edge whose removal splits the graph (a bridge: every service pipe, every dead-end street) can carry
    at most the load of the consumers on its far side, and nothing towards a side without sources; an arc inside a
    part of the graph fed across one bridge at most what that bridge carries in; any other arc at most what all
    consumers draw. Bounding the flow so makes the LP relaxation pay the fixed cost of such edges in
    proportion to the load they can carry, not to the whole network's (a tighter bound, the same optimum).
    """
    import networkx as nx

    reach = ix.reach
    total = float(ix.con_load[reach].sum())
    bound = np.full(len(tail), total)
    G: nx.Graph = nx.Graph()
    G.add_nodes_from(range(ix.n))
    G.add_edges_from(zip(ix.ea.tolist(), ix.eb.tolist(), strict=True))
    bridges = {tuple(sorted(b)) for b in nx.bridges(G)}
    if not bridges:
        return bound
    pair = pd.MultiIndex.from_arrays([np.minimum(ix.ea, ix.eb), np.maximum(ix.ea, ix.eb)])
    kept = ~pair.isin(list(bridges))
    H: nx.Graph = nx.Graph()
    H.add_nodes_from(range(ix.n))
    H.add_edges_from(zip(ix.ea[kept].tolist(), ix.eb[kept].tolist(), strict=True))
    comp = np.empty(ix.n, dtype=np.int64)
    for i, nodes in enumerate(nx.connected_components(H)):
        comp[list(nodes)] = i
    demand = np.zeros(comp.max() + 1)
    np.add.at(demand, comp[ix.con_node[reach]], ix.con_load[reach])
    tree: nx.Graph = nx.Graph()  # the bridge tree: 2-edge-connected pieces joined by the bridges
    tree.add_nodes_from(range(len(demand)))
    tree.add_edges_from((int(comp[a]), int(comp[b])) for a, b in bridges)
    src_comp = set(comp[ix.src_node].tolist())
    beyond: dict[tuple[int, int], float] = {}  # (piece nearer the sources, piece beyond) → load beyond the bridge
    for piece in nx.connected_components(tree):
        roots = src_comp & piece
        if len(roots) != 1:  # sources on several sides of a bridge: leave this part unbounded
            continue
        root = roots.pop()
        below: dict[int, float] = {}
        for parent, child in reversed(list(nx.bfs_edges(tree, root))):
            below[child] = float(demand[child]) + sum(below.get(c, 0.0) for c in tree.neighbors(child) if c != parent)
            beyond[(parent, child)] = below[child]
    if beyond:
        load = pd.Series(beyond)
        outward = load.reindex(pd.MultiIndex.from_arrays([comp[tail], comp[head]])).to_numpy()
        bound = np.where(np.isfinite(outward), outward, bound)
        # inside a piece fed across one bridge: at most what that bridge carries in
        fed = pd.Series(load.to_numpy(), index=load.index.get_level_values(1))
        inner = comp[tail] == comp[head]
        within = fed.reindex(comp[tail]).to_numpy()
        bound = np.where(inner & np.isfinite(within), np.minimum(bound, within), bound)
        back = pd.MultiIndex.from_arrays([comp[head], comp[tail]]).isin(load.index)
        bound[back & (comp[tail] != comp[head])] = 0.0  # towards the sources across a bridge: no flow
    return bound


def _highs(model: _Model, *, time_limit_s: float, mip_rel_gap: float) -> highspy.Highs:
    """Pass the model to a new HiGHS (one thread, as every HiGHS here: :func:`heatmap._highs.new_highs`)."""
    h = new_highs()
    h.setOptionValue("random_seed", 0)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    h.passModel(model.lp)
    return h


CUT_ROUNDS = 4
"""Rounds of cut-set inequalities added to the LP relaxation at most (:func:`_with_cuts`)."""


_Row = tuple[np.ndarray, np.ndarray, float]
"""A row ``Σ coefficient · column ≥ rhs``: its columns, coefficients and right-hand side."""


def _cut_rows(ix: design.ProblemIndex, model: _Model, parent: np.ndarray, y: np.ndarray) -> list[_Row]:
    """Return the cut-set inequalities on the subtrees of a forest that the build values ``y`` (arcs, segments) break.

    A set ``S`` of nodes holding no source, whose required consumers draw ``D``, is fed across the arcs entering it:
    Σ f ≥ D there, and each arc's segment carries at most ``U`` (its flow bound) when built, so Σ U·y ≥ D. Its
    mixed-integer rounding by each segment's upper end ``λ`` (Marchand and Wolsey 2001), with ``r`` the fraction of
    D/λ: Σ (⌊U/λ⌋ + min(frac(U/λ), r)/r)·y ≥ ⌈D/λ⌉, is valid for binary ``y`` and cuts off fractional builds that
    carry a large load in a segment priced for a small one (the LP's chord under the concave cost). The sets are the
    subtrees of ``parent`` (per node, a forest on the compact nodes). Each row: (columns, coefficients, rhs).
    """
    upper = np.asarray(model.lp.col_upper_)[model.col_f]  # (arcs, segments): each segment's flow bound
    ends = np.unique(ix.costs.upper_kw[np.isfinite(ix.costs.upper_kw) & (ix.costs.upper_kw > 0)])
    if not len(ends):
        return []
    demand = np.zeros(ix.n)
    required = ix.reach & ix.con_required
    np.add.at(demand, ix.con_node[required], ix.con_load[required])
    tin, tout = design.euler_tour(parent)
    preorder = np.empty(ix.n, dtype=np.int64)
    preorder[tin] = np.arange(ix.n)
    is_src = np.zeros(ix.n)
    is_src[ix.src_node] = 1.0
    # per node, its subtree's demand and sources: sums over a preorder interval
    below = np.concatenate([[0.0], np.cumsum(demand[preorder])])
    src_below = np.concatenate([[0.0], np.cumsum(is_src[preorder])])
    d = below[tout] - below[tin]
    wanted = (parent >= 0) & (d > 0) & (src_below[tout] - src_below[tin] == 0)
    v, a = _entering(parent, tin, tout, model.tail, model.head)
    keep = wanted[v]
    v, a = v[keep], a[keep]
    order = np.lexsort((a, v))
    v, a = v[order], a[order]
    first = np.searchsorted(v, np.arange(ix.n + 1))  # the pairs of node w: first[w]:first[w + 1]
    found = []
    for j, lam in enumerate(ends):
        r = d / lam - np.floor(d / lam)
        ok = wanted & (r >= 1e-6)
        pick = ok[v]
        coef = _mir(upper[a[pick]] / lam, r[v[pick], None])
        lhs = np.bincount(v[pick], (coef * y[a[pick]]).sum(axis=1), minlength=ix.n)
        for w in np.flatnonzero(ok & (lhs < np.ceil(d / lam) - 1e-6)):
            found.append((w, j, lam))
    rows = []
    for w, _, lam in sorted(found):
        into = a[first[w] : first[w + 1]]
        coef = _mir(upper[into] / lam, d[w] / lam - np.floor(d[w] / lam)).ravel()
        keep = coef > 1e-12
        rows.append((model.col_y[into].ravel()[keep], coef[keep], float(np.ceil(d[w] / lam))))
    return rows


def _mir(ratio: np.ndarray, r: np.ndarray | float) -> np.ndarray:
    """Return the mixed-integer rounding of coefficients ``ratio`` (U/λ) for a right-hand side of fraction ``r``."""
    return np.floor(ratio) + np.minimum(ratio - np.floor(ratio), r) / r


def _entering(
    parent: np.ndarray, tin: np.ndarray, tout: np.ndarray, tail: np.ndarray, head: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return the pairs (node ``v``, arc) of the arcs entering the subtree of ``v`` (a node with a parent).

    An arc enters the subtrees of the nodes from its head up to, not including, the first that holds its tail too:
    climbed for all arcs at once, a level per step.
    """
    arc = np.arange(len(head))
    cur = head.copy()
    nodes, arcs = [], []
    while len(arc):
        t = tin[tail[arc]]
        keep = ~((tin[cur] <= t) & (t < tout[cur])) & (parent[cur] >= 0)
        arc, cur = arc[keep], cur[keep]
        nodes.append(cur)
        arcs.append(arc)
        cur = parent[cur]
    return np.concatenate(nodes), np.concatenate(arcs)


def _add_rows(h: highspy.Highs, rows: list[_Row]) -> None:
    if not rows:
        return
    starts = np.cumsum([0] + [len(c) for c, _, _ in rows[:-1]]).astype(np.int32)
    h.addRows(
        len(rows),
        np.array([rhs for _, _, rhs in rows]),
        np.full(len(rows), np.inf),
        int(sum(len(c) for c, _, _ in rows)),
        starts,
        np.concatenate([c for c, _, _ in rows]).astype(np.int32),
        np.concatenate([v for _, v, _ in rows]),
    )


def _with_cuts(
    h: highspy.Highs, ix: design.ProblemIndex, model: _Model, *, deadline: float, start: np.ndarray | None = None
) -> float:
    """Solve the LP relaxation in ``h`` with cut-set inequalities added round by round; return its last optimum.

    The sets of the first round are the subtrees of ``start`` (a forest on the compact nodes: the warm start), where
    given; each round then rounds the LP's builds to a tree (each node reached from the sources along the arcs most
    built: shortest paths under 1 − Σ y) and adds the inequalities on its subtrees that the LP breaks
    (:func:`_cut_rows`), until none is broken, :data:`CUT_ROUNDS` or ``deadline`` (a ``time.perf_counter()``).
    On the bundled Helsinki instance with the catalogue curve the LP bound rises from 32.40 to 32.78 M€ from the LP's
    own trees, to 32.87 M€ with the heuristic's tree's subtrees first.
    """
    from scipy.sparse.csgraph import dijkstra

    value = float("nan")  # the last optimum found: a bound whatever a later round does
    h.run()
    for i in range(CUT_ROUNDS + 1):
        if h.modelStatusToString(h.getModelStatus()) != "Optimal":
            break
        value = float(h.getInfo().objective_function_value)
        if i == CUT_ROUNDS or time.perf_counter() > deadline:
            break
        x = np.asarray(h.getSolution().col_value)
        if i == 0 and start is not None:  # the LP's own tree follows in the next round however it went
            parent, from_start = start, True
        else:
            built = np.clip(x[model.col_b], 0.0, 1.0)
            graph = sp.csr_matrix((1.0 - built + 1e-6, (model.tail, model.head)), shape=(ix.n, ix.n))
            pred = dijkstra(graph, directed=True, indices=ix.src_node, min_only=True, return_predecessors=True)[1]
            parent, from_start = np.where(pred >= 0, pred, -1), False
        rows = _cut_rows(ix, model, parent, x[model.col_y])
        if not rows and not from_start:
            break
        _add_rows(h, rows)
        h.setOptionValue("time_limit", max(deadline - time.perf_counter(), 1e-3))
        h.run()
    return value


LINE_FIRST_SHARE = 0.25
"""The curve's LP relaxation is solved after the line's only where the line's took at most this share of the time."""


@dataclass(frozen=True)
class Bound:
    """A lower bound on a design problem's objective and how it was found (:func:`lp_bound`)."""

    value_eur: float
    """The bound (NaN where no LP finished in time)."""
    relaxation: str
    """What gave it: the LP relaxation with the ``cost curve`` or the ``line under the cost curve``, the ``MILP``'s
    branch and cut, or ``none``."""
    time_s: float

    def onto(self, result: design.Design) -> None:
        """Give a design this bound and say where it came from (``bound_eur``, ``bound_from``)."""
        result.bound_eur = self.value_eur
        result.bound_from = "MILP" if self.relaxation == "MILP" else f"LP relaxation, {self.relaxation}"


def lp_bound(
    ix: design.ProblemIndex,
    *,
    time_limit_s: float,
    solver: str = "choose",
    start: design.Design | None = None,
    mip_time_s: float = 0.0,
    mip_solver: str = "scip",
) -> Bound:
    """Solve the MILP's LP relaxation: a lower bound on the objective.

    With a curve of several segments the relaxation is solved twice: first with each edge's cost replaced by the
    line under its curve (:meth:`heatmap.network.design.EdgeCosts.line_below`; one segment: a smaller LP, on the
    bundled and synthetic instances 4× faster and 0.5–4 % lower), then, where that took at most
    :data:`LINE_FIRST_SHARE` of ``time_limit_s``, with the curve itself in the time left; the higher bound found
    is returned. Both are bounds on the curve's optimum. The curve's LP is tightened by rounds of cut-set
    inequalities (:func:`_with_cuts`; bundled Helsinki instance with the catalogue curve: 32.40 → 32.78 M€ for
    0.4 s more; 32.87 M€ when the heuristic's design is given as ``start``: the first round's sets are its
    subtrees). Then, where ``mip_time_s`` > 0 and time is left, a branch and cut goes on from the curve's cut LP for at
    most that long (:meth:`_CutLP.search`, in SCIP or HiGHS by ``mip_solver``; ``start`` its incumbent): its presolve
    and root cuts raise the bound further (HiGHS: bundled Helsinki plan, with its road tunnels then, 19.85 → 20.75 M€ in
    3 s, 21.15 M€ in 10 s; the Helsinki benchmark with the catalogue curve 32.88 → 33.62 M€ in 3 s; with 5 s there
    33.75 M€, SCIP 33.92 M€); the highest bound found is returned. Where nothing finishes the bound is unknown (NaN)
    and a warning says so.
    (Directed Steiner cuts found by maximum flows were tried on top of it: on the bundled Helsinki instances they
    raised the bound by 0.1–0.6 % for ten times the time, so they are not used.)
    """
    t0 = time.perf_counter()
    total = float(ix.con_load[ix.reach].sum())
    best = Bound(float("nan"), "none", 0.0)
    tries = [("cost curve", ix)]
    if ix.costs.segments > 1:
        tries.insert(0, ("line under the cost curve", dataclasses.replace(ix, costs=ix.costs.line_below(total))))
    penalty = design.overload_eur_per_kw(ix)
    curve: _CutLP | None = None  # the curve's cut LP, where solved: the search goes on from it
    for i, (label, problem) in enumerate(tries):
        left = time_limit_s - (time.perf_counter() - t0)
        if i > 0 and time.perf_counter() - t0 > LINE_FIRST_SHARE * time_limit_s:
            logger.info("The cost curve's LP relaxation is skipped: the line's took %.1f s", time.perf_counter() - t0)
            break
        lp = _cut_lp(problem, penalty_eur_per_kw=penalty, time_limit_s=left, cut_time_s=left, start=start,
                     solver=solver)  # fmt: skip
        if problem is ix:
            curve = lp
        if np.isfinite(lp.value) and not lp.value < best.value_eur:
            best = Bound(lp.value, label, 0.0)
    t1 = time.perf_counter()
    left = min(mip_time_s, time_limit_s - (t1 - t0))
    if mip_time_s > 0 and left <= 0:
        logger.warning(
            "The design's bound is the LP relaxation's: its LP took the whole %.3g s ('design.bound_time_limit_s'), "
            "none was left for the branch and cut ('design.bound_mip_time_s'); raise 'design.bound_time_limit_s'",
            time_limit_s,
        )
    if left > 0:
        if curve is None:
            curve = _cut_lp(ix, penalty_eur_per_kw=penalty, time_limit_s=left, cut_time_s=left / 4, start=start)
        value = curve.search(left - (time.perf_counter() - t1), solver=mip_solver).bound_eur
        if np.isfinite(value) and not value <= best.value_eur:
            best = Bound(value, "MILP", 0.0)
    if not np.isfinite(best.value_eur):
        logger.warning("The design's bound (LP relaxation) is not known: HiGHS did not finish in %.0f s", time_limit_s)
    best = dataclasses.replace(best, time_s=time.perf_counter() - t0)
    logger.info("Design bound %.6g € (LP relaxation, %s) in %.1f s", best.value_eur, best.relaxation, best.time_s)
    return best


def _parent_of(model: _Model, x: np.ndarray | None, n: int) -> np.ndarray | None:
    """Return the forest (a parent per compact node, ``n`` nodes) the column values ``x`` build (``None``: none)."""
    if x is None:
        return None
    parent = np.full(n, -1, dtype=np.int64)
    built = x[model.col_b] > 0.5
    parent[model.head[built]] = model.tail[built]
    return parent


def _forest_of(model: _Model, red: design_reduce.Reduced, x: np.ndarray) -> design.Forest:
    """Return the forest of the original problem that the column values ``x`` of the reduced one's MILP build."""
    ix = red.ix
    built = x[model.col_y].sum(axis=1) > 0.5
    parent = np.full(ix.n, -1, dtype=np.int64)
    parent_edge = np.full(ix.n, -1, dtype=np.int64)
    parent[model.head[built]] = model.tail[built]
    parent_edge[model.head[built]] = model.arc_edge[built]
    connected = np.zeros(len(ix.con_id), dtype=bool)
    connected[model.required] = True
    connected[model.optional] = x[model.col_x] > 0.5
    tree = design_reduce.expand(red, design.Forest(parent, parent_edge, connected))
    return design.drop_idle(red.original, tree)


def _start_vector(red: design_reduce.Reduced, start: design.Design, model: _Model) -> np.ndarray:
    """Return the warm start's column values on the reduced problem (each chain built where its edges are)."""
    m, ix, original = model, red.ix, red.original
    x = np.zeros(m.lp.num_col_)
    e = start.edges
    pos = pd.Series(np.arange(original.n), index=original.node_ids)
    parent = np.full(original.n, -1, dtype=np.int64)
    if len(e):
        parent[pos[e.to_node].to_numpy()] = pos[e.from_node].to_numpy()
    load_of = pd.Series(e.load_kw.to_numpy(), index=e.edge_id.to_numpy()) if len(e) else pd.Series(dtype=float)
    tails, heads, loads = [], [], []
    for r, (nodes, edges) in enumerate(zip(red.chain_nodes, red.chain_edges, strict=True)):
        load = load_of.get(original.edge_id[edges[0]])
        if load is None:
            continue
        forward = parent[nodes[1]] == nodes[0]
        tails.append(ix.ea[r] if forward else ix.eb[r])
        heads.append(ix.eb[r] if forward else ix.ea[r])
        loads.append(float(load))
    arcs = pd.Series(np.arange(len(m.tail)), index=pd.MultiIndex.from_arrays([m.tail, m.head]))
    if tails:
        found = arcs.reindex(pd.MultiIndex.from_arrays([np.array(tails), np.array(heads)]))
        good = found.notna().to_numpy()
        a = found.to_numpy()[good].astype(np.int64)
        load = np.array(loads)[good]
        k = ix.costs.segment_of(load, m.arc_edge[a])  # the cheapest segment holding the load
        x[m.col_y[a, k]] = 1.0
        x[m.col_b[a]] = 1.0
        x[m.col_f[a, k]] = load
        src_load = pd.Series(load, index=m.tail[a]).groupby(level=0).sum().reindex(ix.src_node, fill_value=0.0)
    else:
        src_load = pd.Series(0.0, index=ix.src_node)
    connected = set(start.connected)
    x[m.col_x] = [1.0 if c in connected else 0.0 for c in ix.con_id[m.optional]]
    x[m.col_s] = np.minimum(src_load.to_numpy(), ix.src_cap)
    x[m.col_o] = np.maximum(src_load.to_numpy() - ix.src_cap, 0.0)
    return x
