"""Economic network design: the problem, the pipe cost curve and the designed forest.

The problem
-----------
A candidate graph (streets, drawn links, service connections), sources with capacities and consumers with a
design load. Each consumer is *required* (must be connected where it can be reached) or *optional* (connected
where its ``prize_eur`` — the present value of the margin its heat earns over the lifetime — pays for what its
connection costs). A built edge carrying the design load ``p`` (kW) costs

    ``weight_m · (a_k + b_k · p) + length_m · (la_k + lb_k · p)``

on the segment ``k`` of the piecewise-linear :class:`CostCurve` whose load range holds ``p``: ``a``, ``b`` the
pipe and trench capex per metre of street-equivalent trench (``weight_m`` = length × the surface's cost factor),
``la``, ``lb`` the capitalised heat losses per metre of route. Where a pipe lies already, its edge has one more
segment: up to the load that pipe carries, its losses only (no capex); above it, the curve (the upgrade). Each edge's
segments in euros are :class:`EdgeCosts`. The objective is the total cost less the prizes of the optional consumers
connected (the negative NPV of the network where the required consumers' revenue is fixed), plus a penalty on any
load the sources must carry beyond their capacities.

The solvers are :func:`heatmap.network.design_heuristic.heuristic_design` (fast, with the LP relaxation as its
bound) and :func:`heatmap.network.design_milp.optimal_design` (the MILP, with a proven bound); this module holds
what both share: the problem in index form, the forest they build and its loads and costs.

Costs are in euros, loads in kW, lengths in metres. Nodes are the candidate graph's integer node ids.
"""

from __future__ import annotations

import functools
import itertools
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import depth_first_order

from heatmap._errors import RoutingError
from heatmap.network import routing, sizing

if TYPE_CHECKING:
    pass

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
        Intercept and slope of the capitalised heat losses (and pumping, where priced) per metre of route.
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

    def on_edges(
        self,
        weight_m: np.ndarray,
        length_m: np.ndarray,
        *,
        existing_kw: np.ndarray | None = None,
        existing_eur_per_m: np.ndarray | None = None,
        scale: np.ndarray | None = None,
    ) -> EdgeCosts:
        """Return the curve laid on edges: each edge's segments in euros (:class:`EdgeCosts`).

        Parameters
        ----------
        weight_m, length_m
            Each edge's street-equivalent trench length (length × surface cost factor) and route length.
        existing_kw, existing_eur_per_m
            Where a pipe lies already: the design load it carries (0 where none) and its capitalised heat losses per
            metre of route. Such an edge has one more segment, the pipe as it is: up to that load it costs only its
            losses (no capex); above it, the curve's price (the upgrade: a new pipe in the reopened trench).
        scale
            A factor on each edge's whole cost (1 where not given): what the network, sized and simulated, costs
            over what the design priced (:func:`heatmap.network.design.cost_feedback`).
        """
        w, ln = np.asarray(weight_m, float)[:, None], np.asarray(length_m, float)[:, None]
        fixed = w * self.capex_eur_per_m[None, :] + ln * self.loss_eur_per_m[None, :]
        per_kw = w * self.capex_eur_per_kw_m[None, :] + ln * self.loss_eur_per_kw_m[None, :]
        lower = np.broadcast_to(self.lower_kw[None, :], fixed.shape)
        upper = np.broadcast_to(self.upper_kw[None, :], fixed.shape)
        cap = np.zeros(len(w)) if existing_kw is None else np.nan_to_num(np.asarray(existing_kw, float))
        if (cap > 0).any():
            loss = np.zeros(len(w)) if existing_eur_per_m is None else np.nan_to_num(np.asarray(existing_eur_per_m))
            fixed = np.column_stack([fixed, ln[:, 0] * loss])
            per_kw = np.column_stack([per_kw, np.zeros(len(w))])
            lower = np.column_stack([lower, np.zeros(len(w))])
            upper = np.column_stack([upper, np.where(cap > 0, cap, NO_SEGMENT_KW)])
        if scale is not None:
            factor = np.nan_to_num(np.asarray(scale, float), nan=1.0)[:, None]
            fixed, per_kw = fixed * factor, per_kw * factor
        return EdgeCosts(fixed, per_kw, np.ascontiguousarray(lower), np.ascontiguousarray(upper), existing=cap > 0)

    def edge_cost_eur(self, load_kw: np.ndarray, weight_m: np.ndarray, length_m: np.ndarray) -> np.ndarray:
        """Return the cost of edges carrying ``load_kw`` (0 where the load is 0 or below: the edge is not built)."""
        return self.on_edges(weight_m, length_m).at(load_kw)


NO_SEGMENT_KW = -1.0
"""Upper load of a segment an edge does not have (no load lies in it)."""


@dataclass(frozen=True)
class EdgeCosts:
    """Every candidate edge's cost as a piecewise-linear function of the design load it carries.

    One row per edge, one column per segment: segment ``k`` of edge ``e`` covers loads in
    ``(lower_kw[e, k], upper_kw[e, k]]`` (the first also a load of 0) at ``fixed_eur[e, k] + eur_per_kw[e, k] · p``;
    a load is priced on the cheapest segment holding it. A segment the edge does not have ends at
    :data:`NO_SEGMENT_KW`. Made by :meth:`CostCurve.on_edges`.

    Attributes
    ----------
    existing : numpy.ndarray
        Per edge: a pipe lies there already (its last segment is that pipe as it is).
    """

    fixed_eur: np.ndarray
    eur_per_kw: np.ndarray
    lower_kw: np.ndarray
    upper_kw: np.ndarray
    existing: np.ndarray

    @property
    def segments(self) -> int:
        """Number of segments (columns)."""
        return self.fixed_eur.shape[1]

    def _per_segment(self, load_kw: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        """Each edge's cost on each segment holding its load (``inf`` on the others), edges × segments."""
        sel = slice(None) if rows is None else rows
        same = self._same_bounds
        lo, hi = (same[0][None, :], same[1][None, :]) if same is not None else (self.lower_kw[sel], self.upper_kw[sel])
        p = np.asarray(load_kw, dtype=float)[:, None]
        inside = (p <= hi + 1e-9) & ((p > lo) | (lo == 0))
        return np.where(inside, self.fixed_eur[sel] + self.eur_per_kw[sel] * p, np.inf)  # every load has a segment

    def segment_of(self, load_kw: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Return the segment each edge's load is priced on: the cheapest holding it (of the edges ``rows``)."""
        per = self._per_segment(load_kw, rows)
        best, k = per[:, 0].copy(), np.zeros(len(per), dtype=np.int64)
        # column by column: numpy's argmin along a short row is slow; ties keep the first
        for j in range(1, per.shape[1]):
            cheaper = per[:, j] < best
            best[cheaper], k[cheaper] = per[cheaper, j], j
        return k

    def at(self, load_kw: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Return each edge's cost at its load, 0 where it is 0 or below (not built); of the edges ``rows`` only."""
        per = self._per_segment(load_kw, rows)
        cost = per[:, 0].copy()
        for j in range(1, per.shape[1]):  # column by column: numpy's min along a short row is slow
            np.minimum(cost, per[:, j], out=cost)
        return np.where(np.asarray(load_kw, dtype=float) > 1e-9, cost, 0.0)

    def at_load(self, load_kw: float) -> np.ndarray:
        """Return every edge's cost at the same load: :meth:`at` of that load on every edge, segment by segment."""
        p = float(load_kw)
        if not p > 1e-9:
            return np.zeros(len(self.fixed_eur))
        cost: np.ndarray | None = None  # inf everywhere until a segment holds the load
        for k, (fixed, per_kw, lower, upper) in enumerate(self._columns):
            if lower is not None and upper is not None:  # the segment's range is the same on every edge
                if p <= upper + 1e-9 and (p > lower or lower == 0):
                    here = fixed + per_kw * p
                    cost = here if cost is None else np.minimum(cost, here, out=cost)
                continue
            if cost is None:
                cost = np.full(len(self.fixed_eur), np.inf)
            lo, hi = self.lower_kw[:, k], self.upper_kw[:, k]
            inside = np.flatnonzero((p <= hi + 1e-9) & ((p > lo) | (lo == 0)))
            cost[inside] = np.minimum(cost[inside], fixed[inside] + per_kw[inside] * p)
        return np.full(len(self.fixed_eur), np.inf) if cost is None else cost

    @functools.cached_property
    def _same_bounds(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Each segment's load range where every edge has the same in every segment (no pipe laid), else ``None``."""
        columns = self._columns
        if not len(self.lower_kw) or any(lo is None for _, _, lo, _ in columns):
            return None
        return np.array([lo for _, _, lo, _ in columns]), np.array([hi for _, _, _, hi in columns])

    @functools.cached_property
    def _columns(self) -> list[tuple[np.ndarray, np.ndarray, float | None, float | None]]:
        """Each segment's fixed cost and slope on every edge, and its load range where every edge has the same."""
        out = []
        for k in range(self.segments):
            lo, hi = self.lower_kw[:, k], self.upper_kw[:, k]
            same = len(lo) > 0 and bool((lo == lo[0]).all() and (hi == hi[0]).all())
            out.append(
                (
                    np.ascontiguousarray(self.fixed_eur[:, k]),
                    np.ascontiguousarray(self.eur_per_kw[:, k]),
                    float(lo[0]) if same else None,
                    float(hi[0]) if same else None,
                )
            )
        return out

    def slope_at(self, load_kw: np.ndarray) -> np.ndarray:
        """Return each edge's cost per kW more at its load (the slope of the segment it is priced on)."""
        return self.eur_per_kw[np.arange(len(self.eur_per_kw)), self.segment_of(load_kw)]

    def line_below(self, max_load_kw: float) -> EdgeCosts:
        """Return each edge's best one-segment cost at or below its curve for loads up to ``max_load_kw``.

        The line starts at the least cost of a first kW (the first segment's, or an existing pipe's) and rises by
        the least slope that keeps it under every segment's two ends up to ``max_load_kw`` (each segment is a line, so
        under its ends is under all of it). An LP relaxation with it is a bound on the curve's optimum too, weaker
        but much smaller (:func:`heatmap.network.design_milp.lp_bound`).
        """
        has = self.upper_kw > 0
        starts = has & (self.lower_kw <= 0)
        f0 = np.where(starts, self.fixed_eur, np.inf).min(axis=1)
        slope = np.full(len(f0), np.inf)
        top = max(float(max_load_kw), 1e-6)
        for p in (np.maximum(self.lower_kw, 1e-6), np.minimum(self.upper_kw, top)):
            at = self.fixed_eur + self.eur_per_kw * p
            ok = has & (p <= top) & (p > 0)
            slope = np.minimum(slope, np.where(ok, (at - f0[:, None]) / p, np.inf).min(axis=1))
        slope = np.maximum(np.where(np.isfinite(slope), slope, 0.0), 0.0)
        one = np.ones((len(f0), 1))
        return EdgeCosts(f0[:, None], slope[:, None], 0 * one, one * INF_KW, self.existing)

    def first(self) -> tuple[np.ndarray, np.ndarray]:
        """Return each edge's fixed cost and slope at the smallest load (the segment a first kW is priced on)."""
        k = self.segment_of(np.full(len(self.fixed_eur), 1e-6))
        rows = np.arange(len(k))
        return self.fixed_eur[rows, k], self.eur_per_kw[rows, k]


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
        Candidate edges: ``edge_id``, ``a``, ``b`` (nodes), ``length_m``, ``weight_m`` (length × cost factor); where a
        pipe lies already, ``existing_kw`` (the design load it carries) and ``existing_eur_per_m`` (its capitalised
        heat losses per metre); optional ``cost_scale``, a factor on the edge's cost (:meth:`CostCurve.on_edges`).
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
    unreachable : list of str
        Consumers with no path to any source.
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
        Its penalty in the objective (:func:`overload_eur_per_kw`).
    bound_eur : float
        A proven lower bound on the objective (``nan`` where none was computed).
    bound_from : str
        What gave the bound: ``MILP`` (HiGHS' dual bound), an LP relaxation
        (:func:`heatmap.network.design_milp.lp_bound`) or ``none``.
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
    unreachable: list[str]
    cost_eur: float
    prize_eur: float
    objective_eur: float
    source_overload_kw: float = 0.0
    overload_penalty_eur: float = 0.0
    bound_eur: float = float("nan")
    bound_from: str = "none"
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
            "bound_from": self.bound_from,
            "gap": self.gap,
            "gap_eur": max(0.0, self.objective_eur - self.bound_eur) if np.isfinite(self.bound_eur) else float("nan"),
            "time_s": self.time_s,
            "consumers_required": len(c) - len(optional),
            "consumers_optional": len(optional),
            "optional_connected": len(optional & set(self.connected)),
            "not_economic": self.not_economic,
        }

    def describe(self) -> str:
        """Return a one-line account: edges, consumers connected, objective, bound, gap and time."""
        return (
            f"{len(self.edges)} edges, {len(self.connected)} consumers connected, "
            f"objective {self.objective_eur:.6g} €, bound {self.bound_eur:.6g} €, gap {100 * self.gap:.3f} %, "
            f"{sum(self.time_s.values()):.2f} s"
        )

    @property
    def gap(self) -> float:
        """Relative gap between the objective and the bound, ``(objective − bound) / |objective|``."""
        if not np.isfinite(self.bound_eur) or self.objective_eur == 0:
            return float("nan")
        return max(0.0, (self.objective_eur - self.bound_eur) / abs(self.objective_eur))


# --------------------------------------------------------------------------------------------------------------
# The problem in index form


@dataclass(frozen=True)
class ProblemIndex:
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
    reach: np.ndarray  # per consumer: whether a source can be reached along the edges
    lookup: sp.csr_matrix  # node × node: each edge's position + 1, both directions
    costs: EdgeCosts  # each edge's cost by its load


def index_problem(problem: DesignProblem) -> ProblemIndex:
    """Put a problem on compact node numbers (of parallel edges an existing pipe, else the cheapest, is kept)."""
    e = problem.edges.copy()
    for col, default in (("existing_kw", 0.0), ("existing_eur_per_m", 0.0), ("cost_scale", 1.0)):
        e[col] = e[col].fillna(default).astype(float) if col in e else default
    lo, hi = np.minimum(e.a.to_numpy(), e.b.to_numpy()), np.maximum(e.a.to_numpy(), e.b.to_numpy())
    e = e.assign(lo=lo, hi=hi, new=e.existing_kw <= 0)
    e = e.sort_values(["new", "weight_m"], kind="stable").drop_duplicates(["lo", "hi"])
    e = e[e.lo != e.hi]
    s, c = problem.sources, problem.consumers
    node_ids = np.unique(np.concatenate([e.lo, e.hi, s.node, c.node]).astype(np.int64))
    pos = pd.Series(np.arange(len(node_ids)), index=node_ids)
    if c.node.duplicated().any() or s.node.duplicated().any() or set(c.node) & set(s.node):
        raise RoutingError("two terminals share a graph node; every source and consumer needs a node of its own")
    n = len(node_ids)
    ea, eb = pos[e.lo].to_numpy(), pos[e.hi].to_numpy()
    src_node, con_node = pos[s.node].to_numpy(), pos[c.node].to_numpy()
    edge_pos = np.arange(1, len(e) + 1)
    _, label = sp.csgraph.connected_components(
        sp.csr_matrix((np.ones(len(ea)), (ea, eb)), shape=(n, n)), directed=False
    )
    return ProblemIndex(
        n=n,
        node_ids=node_ids,
        ea=ea,
        eb=eb,
        edge_id=e.edge_id.to_numpy(),
        length_m=e.length_m.to_numpy(float),
        weight_m=e.weight_m.to_numpy(float),
        src_node=src_node,
        src_cap=s.capacity_kw.to_numpy(float),
        src_id=s.source_id.astype(str).to_numpy(),
        con_node=con_node,
        con_load=c.load_kw.to_numpy(float),
        con_required=c.required.to_numpy(bool),
        con_prize=c.prize_eur.fillna(0.0).to_numpy(float),
        con_id=c.consumer_id.astype(str).to_numpy(),
        reach=np.isin(label[con_node], label[src_node]),
        lookup=sp.csr_matrix(
            (np.concatenate([edge_pos, edge_pos]), (np.concatenate([ea, eb]), np.concatenate([eb, ea]))), shape=(n, n)
        ),
        costs=problem.curve.on_edges(
            e.weight_m.to_numpy(float),
            e.length_m.to_numpy(float),
            existing_kw=e.existing_kw.to_numpy(),
            existing_eur_per_m=e.existing_eur_per_m.to_numpy(),
            scale=e.cost_scale.to_numpy(),
        ),
    )


@dataclass
class Forest:
    """A forest on compact nodes.

    ``parent`` (−1 for roots and nodes off the tree), ``parent_edge`` (edge position) and the consumers it connects
    (bool per consumer).
    """

    parent: np.ndarray
    parent_edge: np.ndarray
    connected: np.ndarray


def edge_loads(ix: ProblemIndex, tree: Forest, *, depth: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Design load on every edge of the tree and the node order (deepest first) it was summed in.

    ``depth``: the tree's :func:`depths`, where known already.
    """
    load = np.zeros(ix.n)
    load[ix.con_node[tree.connected]] = ix.con_load[tree.connected]
    on = tree.parent >= 0
    depth = depths(tree.parent) if depth is None else depth
    order = deepest_first(depth)
    order = order[on[order]]
    # sum level by level (deepest first), vectorised within each level
    d = depth[order]
    for lvl in np.split(order, np.flatnonzero(np.diff(d)) + 1):
        np.add.at(load, tree.parent[lvl], load[lvl])
    edge_load = np.zeros(len(ix.edge_id))
    edge_load[tree.parent_edge[on]] = load[on]
    return edge_load, order


def deepest_first(depth: np.ndarray) -> np.ndarray:
    """Return the positions ordered by depth, deepest first, each depth in position order (a stable sort).

    Depths that fit 16 bits are sorted as such (numpy's radix sort): the same order, sooner.
    """
    key = -np.asarray(depth)
    if len(key) and -32768 <= key.min() and key.max() <= 32767:
        key = key.astype(np.int16)
    return np.argsort(key, kind="stable")


def depths(parent: np.ndarray) -> np.ndarray:
    """Return the depth of every node in a parent-pointer forest (0 for roots and nodes off it).

    Pointer jumping: each round every node adds the depth counted by the node it points to and then points to that
    node's target, so ⌈log₂ n⌉ + 1 rounds reach every root; a node still pointing somewhere then is on a cycle.
    """
    jump = np.asarray(parent, dtype=np.int64).copy()
    depth = (jump >= 0).astype(np.int64)
    for _ in range(int(np.ceil(np.log2(max(len(jump), 2)))) + 1):
        live = np.flatnonzero(jump >= 0)
        if not len(live):
            return depth
        target = jump[live]
        depth[live] += depth[target]
        jump[live] = jump[target]
    if (jump >= 0).any():
        raise RoutingError("the designed network holds a cycle")
    return depth


def euler_tour(parent: np.ndarray, *, depth: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return entry and exit times of a depth-first walk of a forest (the subtree of v: tin in [tin[v], tout[v])).

    The entry times are a preorder (:func:`scipy.sparse.csgraph.depth_first_order` from each root with children);
    a node's exit time is its entry time plus the size of its subtree (summed level by level, deepest first).
    ``depth``: the forest's :func:`heatmap.network.depths`, where known already.
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
    depth = depths(parent) if depth is None else depth
    by_depth = deepest_first(depth[on])
    nodes = on[by_depth]
    for level in np.split(nodes, np.flatnonzero(np.diff(depth[nodes])) + 1):
        np.add.at(size, parent[level], size[level])
    return tin, tin + size


def overload_eur_per_kw(ix: ProblemIndex) -> float:
    """Penalty per kW a source supplies beyond its capacity: more than routing that kW over every candidate edge.

    A design overloads a source only where the sources together cannot carry the required consumers (the plan's
    source-capacity check then reports it); the penalty is part of the objective and of its bound.
    """
    top = np.array([max(float(ix.con_load.sum()), 1.0)])
    per_kw = ix.costs.at(np.repeat(top, len(ix.weight_m))) / top[0]
    return 10.0 * float(per_kw.sum()) + 1.0


def path_sums(parent: np.ndarray, step: np.ndarray, *, depth: np.ndarray | None = None) -> np.ndarray:
    """Sum ``step`` (each node's, for the edge into it) from the root of a parent-pointer forest down to each node.

    ``depth``: the forest's :func:`depths`, where known already.
    """
    total = np.zeros(len(parent))
    depth = depths(parent) if depth is None else depth
    for level in range(1, int(depth.max(initial=0)) + 1):  # one vectorised step per level, roots outwards
        at = np.flatnonzero(depth == level)
        total[at] = total[parent[at]] + step[at]
    return total


def overload(ix: ProblemIndex, tree: Forest, edge_load: np.ndarray | None = None) -> tuple[float, float]:
    """Return the load the sources of a forest carry beyond their capacities (kW) and its penalty (€).

    ``edge_load``: the forest's :func:`edge_loads`, where known already.
    """
    over = float(np.maximum(source_loads(ix, tree, edge_load) - ix.src_cap, 0.0).sum())
    return over, (over * overload_eur_per_kw(ix) if over > 0 else 0.0)


def tree_cost(ix: ProblemIndex, tree: Forest) -> float:
    """Return a tree's cost: its edges' at their loads and any overload penalty."""
    edge_load, _ = edge_loads(ix, tree)
    return float(ix.costs.at(edge_load).sum()) + overload(ix, tree, edge_load)[1]


def evaluate(ix: ProblemIndex, tree: Forest) -> tuple[float, float]:
    """Return a tree's cost (:func:`tree_cost`) and the prizes of its optional consumers."""
    cost = tree_cost(ix, tree)
    prize = float(ix.con_prize[tree.connected & ~ix.con_required].sum())
    return cost, prize


def to_design(ix: ProblemIndex, tree: Forest, *, method: str, status: str) -> Design:
    """Return a forest as a :class:`Design`: its edges with loads and costs, its consumers, its objective."""
    edge_load, _ = edge_loads(ix, tree)
    cost = ix.costs.at(edge_load)
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
    over, penalty = overload(ix, tree, edge_load)
    return Design(
        edges=edges,
        connected=sorted(ix.con_id[tree.connected].tolist()),
        not_economic=sorted(ix.con_id[~tree.connected & ~ix.con_required & ix.reach].tolist()),
        unreachable=sorted(ix.con_id[~ix.reach].tolist()),
        cost_eur=total,
        prize_eur=prize,
        objective_eur=total - prize + penalty,
        source_overload_kw=over,
        overload_penalty_eur=penalty,
        method=method,
        status=status,
    )


def source_loads(ix: ProblemIndex, tree: Forest, edge_load: np.ndarray | None = None) -> np.ndarray:
    """Return the design load each source supplies on a forest (``edge_load``: its :func:`edge_loads`, if known)."""
    if edge_load is None:
        edge_load, _ = edge_loads(ix, tree)
    out = np.zeros(len(ix.src_node))
    is_child = np.isin(tree.parent, ix.src_node)
    pos = np.zeros(ix.n, dtype=np.int64)  # each source's node → its position
    pos[ix.src_node] = np.arange(len(ix.src_node))
    np.add.at(out, pos[tree.parent[is_child]], edge_load[tree.parent_edge[is_child]])
    return out


def edges_of(ix: ProblemIndex, parent: np.ndarray) -> np.ndarray:
    """Return the position of the edge from each node's parent to it (−1 for roots and nodes off the forest)."""
    out = np.full(ix.n, -1, dtype=np.int64)
    on = np.flatnonzero(parent >= 0)
    if len(on):
        out[on] = np.asarray(ix.lookup[parent[on], on]).ravel() - 1
    return out


def drop_idle(ix: ProblemIndex, tree: Forest) -> Forest:
    """Remove built arcs carrying no consumer (a zero-cost solution may keep them)."""
    load, _ = edge_loads(ix, tree)
    on = tree.parent >= 0
    idle = on & (load[np.maximum(tree.parent_edge, 0)] <= 0)
    # a node whose parent edge is idle has nothing below it; cut it
    tree.parent[idle] = -1
    tree.parent_edge[idle] = -1
    return tree


def dn_costs(
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
    pumping: Pumping | None = None,
) -> pd.DataFrame:
    """Return what each DN of a pipe catalogue carries and costs.

    A DN carries up to ``ṁ_max · c_p · (t_supply − t_return)``, ``ṁ_max`` the largest flow within both limits
    (:func:`heatmap.network.sizing.dn_capacity_kw`). Its losses per metre of route are those of the supply and the
    return pipe, ``U' · ((t_supply − t_ground) + (t_return − t_ground))``, all year (8760 h: the plan's rule without
    a year of operation), valued at ``heat_value_eur_per_mwh`` and capitalised over the lifetime (÷ ``annuity``).
    Its pumping per metre of route is the friction power of both pipes at that largest flow, ``2 · V̇ · R / η``
    (``R`` the Darcy–Weisbach gradient, :func:`heatmap.network.sizing.pressure_gradient_pa_per_m`), over
    ``pumping.full_load_hours_h`` at ``pumping.electricity_eur_per_mwh``, capitalised likewise; 0 without
    ``pumping``.

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
    pumping
        What pumping costs; ``None``: not priced.

    Returns
    -------
    pandas.DataFrame
        By DN (ascending): ``capacity_kw``, ``capex_eur_per_m`` (per metre of street trench), ``loss_eur_per_m`` and
        ``pump_eur_per_m`` (per metre of route), ``running_eur_per_m`` (their sum).
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
    loss = loss_w_per_m * 8760.0 / 1e6 * heat_value_eur_per_mwh / annuity
    pump = np.zeros(len(cap))
    if pumping is not None:
        mdot = cap * 1000.0 / (water.cp_j_per_kgk * (t_supply_c - t_return_c))
        _, r = sizing.pressure_gradient_pa_per_m(
            mdot,
            catalogue.d_inner_m.to_numpy(),
            rho=water.rho_kg_per_m3,
            nu_m2_per_s=water.nu_m2_per_s,
            roughness_m=roughness_m,
        )
        pump_w_per_m = 2.0 * mdot / water.rho_kg_per_m3 * r / pumping.efficiency
        pump = pump_w_per_m * pumping.full_load_hours_h / 1e6 * pumping.electricity_eur_per_mwh / annuity
    return pd.DataFrame(
        {
            "capacity_kw": cap,
            "capex_eur_per_m": catalogue.cost_eur_per_m.to_numpy(),
            "loss_eur_per_m": loss,
            "pump_eur_per_m": pump,
            "running_eur_per_m": loss + pump,
        },
        index=catalogue.index,
    )


@dataclass(frozen=True)
class Pumping:
    """What pumping costs: electricity price (€/MWh), the pumps' wire-to-water efficiency, full-load hours a year."""

    electricity_eur_per_mwh: float
    efficiency: float
    full_load_hours_h: float


def catalogue_curve(dns: pd.DataFrame, *, segments: int, label: str) -> CostCurve:
    """Make the cost curve of a pipe catalogue: each DN's capex per metre up to its capacity, losses and pumping.

    Parameters
    ----------
    dns
        :func:`dn_costs`.
    segments
        Segments of the piecewise-linear curve (:meth:`CostCurve.from_steps`).
    label
        What the curve is (the design temperatures and the value of heat lost it rests on).
    """
    return CostCurve.from_steps(
        dns.capacity_kw.to_numpy(),
        dns.capex_eur_per_m.to_numpy(),
        dns.running_eur_per_m.to_numpy(),
        segments=segments,
        label=f"EN 253 catalogue in {segments} segments: capex by DN up to its capacity {label}",
    )


def routed_tree(result: Design) -> routing.RoutedTree:
    """Return the design as the routing stage's trees.

    Each built edge is oriented away from its source, with its depth and tree (one per source that feeds anyone);
    consumers with no path to a source are ``unreachable``.
    """
    e = result.edges
    parent = routing.parent_edge(e)  # each edge's upstream edge, −1 for those leaving a source
    top = np.where(parent >= 0, parent, np.arange(len(e)))
    for _ in range(int(np.ceil(np.log2(max(len(e), 2)))) + 1):  # pointer jumping to each edge's first edge
        top = top[top]
    roots, tree = np.unique(e.from_node.to_numpy()[top], return_inverse=True)  # one tree per source, in node order
    edges = pd.DataFrame(
        {
            "edge_id": e.edge_id.to_numpy(),
            "from_node": e.from_node.to_numpy(),
            "to_node": e.to_node.to_numpy(),
            "depth": depths(parent) + 1,
            "tree": tree,
        }
    ).sort_values(["tree", "depth"], kind="stable", ignore_index=True)
    return routing.RoutedTree(
        edges=edges, root_of_tree={i: int(r) for i, r in enumerate(roots)}, unreachable=result.unreachable
    )
