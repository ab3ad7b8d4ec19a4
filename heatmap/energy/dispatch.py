"""A year of operation: least-cost hourly dispatch of heat producers and storages, one linear program.

Each hour ``t`` the heat of the producers plus the storages' discharge minus their charge meets the
consumers' demand plus the network's losses::

    Σ_u q[u, t] + Σ_s (d[s, t] − c[s, t]) + unserved[t] = demand[t] + losses[t]

A storage's content follows ``e[t] = (1 − λ) · e[t−1] + η_c · c[t] − d[t] / η_d`` (``λ`` the standing loss
per hour), cyclic over the period (the last hour's content carries into the first hour), so a year ends with
what it started with. Producers have hour-dependent upper bounds (availability) and marginal costs (fuel,
electricity price ÷ COP); unserved heat is allowed at a documented penalty so an undersized concept still
solves and shows where it falls short.

The whole year is one LP: variables in blocks of ``hours`` (one block per producer; charge, discharge and
content per storage; unserved heat), the constraint matrix built at once with numpy/scipy and handed to HiGHS
(``highspy``) with ``passModel`` — no per-variable Python loops. All powers are kW and each step is one hour,
so a variable's value is also its kWh in that hour.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from heatmap._errors import ScenarioError
from heatmap._highs import new_highs

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

UNSERVED_PENALTY_EUR_PER_MWH = 10_000.0
"""Default cost of heat not delivered (a value of lost load; far above any producer so it is a last resort)."""


RUNNING_KW = 1e-3
"""A producer delivering more than this in an hour runs in that hour (for counting hours; the LP's tolerance)."""


def _hourly(value: float | np.ndarray, hours: int, name: str) -> np.ndarray:
    arr = np.broadcast_to(np.asarray(value, dtype=float), (hours,)).copy()
    if not np.isfinite(arr).all():
        raise ScenarioError(f"{name}: not a finite number in every hour")
    return arr


@dataclass
class Producer:
    """A heat producer as the LP sees it: hourly bounds and per-MWh costs of its heat output.

    Attributes
    ----------
    name
        Unique name (a column of the results).
    kind
        ``excess_heat`` (direct or through a heat pump), ``electric_boiler`` or ``boiler``.
    capacity_kw
        Nominal heat output (for full-load hours).
    max_kw
        Upper bound of the heat output in each hour (capacity × availability; 0 where it cannot run).
    cost_eur_per_mwh
        Marginal cost of one MWh of heat in each hour (fuel ÷ efficiency, electricity ÷ COP, heat bought…).
    electricity_mwh_per_mwh
        Electricity used per MWh of heat in each hour (1 / COP for a heat pump, 1 / η for an electric boiler).
    fuel_mwh_per_mwh
        Fuel burnt per MWh of heat (1 / η for a boiler).
    fuel
        Name of the fuel burnt (boilers), else ``None``.
    co2_t_per_mwh
        Direct CO₂ per MWh of heat (fuel emission factor ÷ efficiency).
    excess_share
        Share of each MWh of output that is recovered excess heat (1 direct, 1 − 1/COP through a heat pump).
    preheat_hours
        Hours in which the producer only preheats the network's flow (a source colder than the supply
        temperature: :func:`heatmap.energy.excess_heat.source_producer`); ``None``: none.
    min_kw
        Lower bound of the heat output in each hour (0 by default; a source whose hourly heat a planned network
        fixes has ``min_kw = max_kw``).
    too_cold_hours
        Hours in which an excess-heat source cannot feed at all, its heat too cold for the hour's supply temperature
        (and no heat pump to lift it); ``None``: none.
    preheat_share
        In its preheat hours, the share of the temperature lift it gives the flow it heats (``f``: (its usable
        temperature − return) ÷ (supply − return)); the rest of that flow's lift must come from other units, so the
        preheaters together heat at most the flow served: ``Σ q / f + unserved ≤ demand + losses``. ``None``: none.
    """

    name: str
    kind: str
    capacity_kw: float
    max_kw: np.ndarray
    cost_eur_per_mwh: np.ndarray
    electricity_mwh_per_mwh: np.ndarray | float = 0.0
    fuel_mwh_per_mwh: float = 0.0
    fuel: str | None = None
    co2_t_per_mwh: float = 0.0
    excess_share: np.ndarray | float = 0.0
    preheat_hours: np.ndarray | None = None
    min_kw: np.ndarray | float = 0.0
    too_cold_hours: np.ndarray | None = None
    preheat_share: np.ndarray | None = None


@dataclass
class Storage:
    """A thermal storage (tank or pit).

    Attributes
    ----------
    name
        Unique name.
    capacity_kwh
        Usable heat content.
    charge_kw, discharge_kw
        Largest charge and discharge power.
    standing_loss_per_h
        Share of the content lost each hour (e.g. 0.0005 = 0.05 %/h).
    charge_efficiency, discharge_efficiency
        Efficiencies of charging and discharging.
    wear_eur_per_mwh
        Cost per MWh discharged (keeps the LP from cycling heat for nothing when heat is free).
    """

    name: str
    capacity_kwh: float
    charge_kw: float
    discharge_kw: float
    standing_loss_per_h: float = 0.0
    charge_efficiency: float = 1.0
    discharge_efficiency: float = 1.0
    wear_eur_per_mwh: float = 0.0


@dataclass
class DispatchResult:
    """The solved dispatch.

    Attributes
    ----------
    heat_kw
        Heat output per producer (columns) and hour (rows), kW.
    charge_kw, discharge_kw, content_kwh
        Per storage (columns) and hour.
    unserved_kw
        Heat not delivered in each hour.
    demand_kw, losses_kw
        What had to be met.
    objective_eur
        Total cost of the period as the LP counts it (including unserved-heat penalties and storage wear).
    status
        HiGHS model status (``Optimal`` when solved).
    build_s, solve_s
        Seconds to build the matrix and to solve.
    """

    heat_kw: pd.DataFrame
    charge_kw: pd.DataFrame
    discharge_kw: pd.DataFrame
    content_kwh: pd.DataFrame
    unserved_kw: np.ndarray
    demand_kw: np.ndarray
    losses_kw: np.ndarray
    objective_eur: float
    status: str
    build_s: float
    solve_s: float
    producers: list[Producer] = field(repr=False, default_factory=list)
    storages: list[Storage] = field(repr=False, default_factory=list)

    def balance_residual_kw(self) -> np.ndarray:
        """Supply + discharge − charge + unserved − (demand + losses) in each hour (≈ 0)."""
        supply = self.heat_kw.to_numpy().sum(axis=1) + self.discharge_kw.to_numpy().sum(axis=1)
        return supply - self.charge_kw.to_numpy().sum(axis=1) + self.unserved_kw - self.demand_kw - self.losses_kw


def _check(producers: list[Producer], storages: list[Storage], hours: int) -> None:
    names = [p.name for p in producers] + [s.name for s in storages]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ScenarioError(f"unit names must be unique; repeated: {', '.join(dup)}")
    for p in producers:
        if np.any(np.asarray(p.max_kw) < 0):
            raise ScenarioError(f"producer {p.name}: negative hourly capacity")
        if np.any(np.asarray(p.min_kw) > np.asarray(p.max_kw) + 1e-9):
            raise ScenarioError(f"producer {p.name}: its lower bound exceeds its upper bound in some hour")
    for s in storages:
        if min(s.capacity_kwh, s.charge_kw, s.discharge_kw) < 0:
            raise ScenarioError(f"storage {s.name}: capacity and powers must be ≥ 0")
        if not (0 <= s.standing_loss_per_h < 1):
            raise ScenarioError(f"storage {s.name}: standing_loss_per_h must be in [0, 1)")
        if not (0 < s.charge_efficiency <= 1 and 0 < s.discharge_efficiency <= 1):
            raise ScenarioError(f"storage {s.name}: efficiencies must be in (0, 1]")


def solve_dispatch(
    demand_kw: np.ndarray,
    losses_kw: np.ndarray | float,
    producers: Sequence[Producer],
    storages: Sequence[Storage] = (),
    *,
    unserved_penalty_eur_per_mwh: float = UNSERVED_PENALTY_EUR_PER_MWH,
    solver: str = "simplex",
) -> DispatchResult:
    """Dispatch producers and storages at least cost over every hour, as one LP solved by HiGHS.

    Parameters
    ----------
    demand_kw
        Consumers' heat demand in each hour (kW), length = number of hours.
    losses_kw
        The network's heat loss in each hour (kW), or one value for all hours.
    producers, storages
        The units (see :class:`Producer`, :class:`Storage`).
    unserved_penalty_eur_per_mwh
        Cost of heat not delivered.
    solver
        HiGHS ``solver`` option: ``simplex``, ``ipm`` or ``choose`` (on one thread: :func:`heatmap._highs.new_highs`).

    Returns
    -------
    DispatchResult
        Hourly heat of each unit, storage flows and content, costs and solve times.
    """
    import highspy

    producers, storages = list(producers), list(storages)
    t0 = time.perf_counter()
    demand = np.asarray(demand_kw, dtype=float)
    if demand.ndim != 1 or len(demand) == 0:
        raise ScenarioError("demand must be one value per hour")
    T = len(demand)
    demand = _hourly(demand, T, "demand_kw")
    losses = _hourly(losses_kw, T, "losses_kw")
    _check(producers, storages, T)
    U, S = len(producers), len(storages)
    n = T * (U + 3 * S + 1)
    hours = np.arange(T)

    cost = np.empty(n)
    lower = np.zeros(n)
    upper = np.empty(n)
    rows, cols, vals = [], [], []
    # producers: block u holds q[u, :]
    for u, p in enumerate(producers):
        sl = slice(u * T, (u + 1) * T)
        cost[sl] = _hourly(p.cost_eur_per_mwh, T, f"{p.name}.cost") / 1000.0
        upper[sl] = _hourly(p.max_kw, T, f"{p.name}.max_kw")
        lower[sl] = np.minimum(_hourly(p.min_kw, T, f"{p.name}.min_kw"), upper[sl])
        rows.append(hours)
        cols.append(u * T + hours)
        vals.append(np.ones(T))
    # storages: charge, discharge, content blocks
    base = U * T
    srow = T  # storage balance rows start after the T demand rows
    for k, s in enumerate(storages):
        c0, d0, e0 = base + 3 * k * T, base + (3 * k + 1) * T, base + (3 * k + 2) * T
        cost[c0 : c0 + T] = 0.0
        cost[d0 : d0 + T] = s.wear_eur_per_mwh / 1000.0
        cost[e0 : e0 + T] = 0.0
        upper[c0 : c0 + T] = s.charge_kw
        upper[d0 : d0 + T] = s.discharge_kw
        upper[e0 : e0 + T] = s.capacity_kwh
        # demand rows: + discharge − charge
        rows += [hours, hours]
        cols += [d0 + hours, c0 + hours]
        vals += [np.ones(T), -np.ones(T)]
        # content rows: e[t] − (1 − λ) e[t−1] − η_c c[t] + d[t] / η_d = 0 (cyclic)
        r = srow + k * T + hours
        rows += [r, r, r, r]
        cols += [e0 + hours, e0 + (hours - 1) % T, c0 + hours, d0 + hours]
        vals += [
            np.ones(T),
            -np.full(T, 1.0 - s.standing_loss_per_h),
            -np.full(T, s.charge_efficiency),
            np.full(T, 1.0 / s.discharge_efficiency),
        ]
    # unserved heat
    us = base + 3 * S * T
    cost[us : us + T] = unserved_penalty_eur_per_mwh / 1000.0
    upper[us : us + T] = demand + losses
    rows.append(hours)
    cols.append(us + hours)
    vals.append(np.ones(T))

    # preheaters heat at most the flow served: Σ_u q[u, t] / f[u, t] + unserved[t] ≤ demand[t] + losses[t]
    pre_rows = T * (1 + S)
    pre_hours = np.zeros(T, dtype=bool)
    for u, p in enumerate(producers):
        if p.preheat_share is None:
            continue
        f = _hourly(p.preheat_share, T, f"{p.name}.preheat_share")
        on = np.flatnonzero(f > 0)
        rows.append(pre_rows + on)
        cols.append(u * T + on)
        vals.append(1.0 / f[on])
        pre_hours[on] = True
    on = np.flatnonzero(pre_hours)
    rows.append(pre_rows + on)
    cols.append(us + on)
    vals.append(np.ones(len(on)))

    m = pre_rows + (T if pre_hours.any() else 0)  # the preheat rows only where a unit preheats
    A = sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(m, n), dtype=float)
    row_bound = np.zeros(m)
    row_bound[:T] = demand + losses
    if m > pre_rows:
        row_bound[pre_rows:] = demand + losses
    if T and (demand + losses < 0).any():
        raise ScenarioError("demand plus losses is negative in some hours")
    row_lower = row_bound.copy()
    row_lower[pre_rows:] = -np.inf

    # solve in MW and €/MWh (same objective): values nearer 1 make the simplex faster and better conditioned
    cost, lower, upper, row_bound = cost * 1000.0, lower / 1000.0, upper / 1000.0, row_bound / 1000.0
    row_lower = row_lower / 1000.0
    lp = highspy.HighsLp()
    lp.num_col_ = n
    lp.num_row_ = m
    lp.col_cost_ = cost
    lp.col_lower_ = lower
    lp.col_upper_ = upper
    lp.row_lower_ = row_lower
    lp.row_upper_ = row_bound
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = A.indptr
    lp.a_matrix_.index_ = A.indices
    lp.a_matrix_.value_ = A.data
    h = new_highs()
    h.setOptionValue("solver", solver)
    h.passModel(lp)
    t1 = time.perf_counter()
    h.run()
    t2 = time.perf_counter()
    status = h.modelStatusToString(h.getModelStatus())
    if status != "Optimal":
        raise ScenarioError(f"the dispatch LP could not be solved (HiGHS status: {status}); check the units' data")
    x = np.asarray(h.getSolution().col_value) * 1000.0
    objective = float(h.getInfo().objective_function_value)

    def block(start: int, count: int, names: list[str]) -> pd.DataFrame:
        return pd.DataFrame(x[start : start + count * T].reshape(count, T).T, columns=names)

    heat = block(0, U, [p.name for p in producers])
    sx = x[base : base + 3 * S * T].reshape(S, 3, T) if S else np.zeros((0, 3, T))
    names = [s.name for s in storages]
    result = DispatchResult(
        heat_kw=heat,
        charge_kw=pd.DataFrame(sx[:, 0, :].T, columns=names),
        discharge_kw=pd.DataFrame(sx[:, 1, :].T, columns=names),
        content_kwh=pd.DataFrame(sx[:, 2, :].T, columns=names),
        unserved_kw=x[us : us + T].copy(),
        demand_kw=demand,
        losses_kw=losses,
        objective_eur=objective,
        status=status,
        build_s=t1 - t0,
        solve_s=t2 - t1,
        producers=producers,
        storages=storages,
    )
    logger.info(
        "Dispatch of %d producers and %d storages over %d h: %s, cost %.0f €, build %.2f s, solve %.2f s",
        U, S, T, status, objective, t1 - t0, t2 - t1,
    )  # fmt: skip
    return result


def dispatch_figures(result: DispatchResult) -> dict:
    """Yearly figures of a dispatch: energy per unit, full-load hours, electricity, fuel, cost and CO₂.

    Parameters
    ----------
    result
        A solved dispatch.

    Returns
    -------
    dict
        ``units`` (one dict per producer), ``storages`` (one per storage) and totals: ``demand_mwh``,
        ``losses_mwh``, ``excess_heat_mwh`` (recovered heat, the heat-pump electricity not counted),
        ``excess_heat_share`` (of demand + losses), ``electricity_mwh``, ``fuel_mwh_by_fuel``,
        ``operating_cost_eur`` (producers' marginal costs), ``co2_direct_t`` and ``unserved_mwh``. Each unit's
        ``preheat_mwh`` and ``preheat_hours_h`` are its heat in the hours it only preheats and the number of those
        hours it delivered heat in (more than :data:`RUNNING_KW`).
    """
    T = len(result.demand_kw)
    units, excess, elec, cost, co2 = [], 0.0, 0.0, 0.0, 0.0
    fuel: dict[str, float] = {}
    for p in result.producers:
        q = result.heat_kw[p.name].to_numpy() / 1000.0  # MWh per hour
        e = float((q * _hourly(p.electricity_mwh_per_mwh, T, p.name)).sum())
        x = float((q * _hourly(p.excess_share, T, p.name)).sum())
        c = float((q * _hourly(p.cost_eur_per_mwh, T, p.name)).sum())
        f = float(q.sum() * p.fuel_mwh_per_mwh)
        em = float(q.sum() * p.co2_t_per_mwh)
        pre = np.zeros(T, dtype=bool) if p.preheat_hours is None else np.asarray(p.preheat_hours, dtype=bool)
        if p.fuel:
            fuel[p.fuel] = fuel.get(p.fuel, 0.0) + f
        excess, elec, cost, co2 = excess + x, elec + e, cost + c, co2 + em
        units.append(
            {
                "unit": p.name,
                "kind": p.kind,
                "capacity_kw": p.capacity_kw,
                "heat_mwh": float(q.sum()),
                "full_load_hours_h": float(q.sum() * 1000.0 / p.capacity_kw) if p.capacity_kw > 0 else 0.0,
                "excess_heat_mwh": x,
                "preheat_mwh": float(q[pre].sum()),
                "preheat_hours_h": int((pre & (q * 1000.0 > RUNNING_KW)).sum()),
                "electricity_mwh": e,
                "fuel": p.fuel,
                "fuel_mwh": f,
                "operating_cost_eur": c,
                "co2_t": em,
            }
        )
    storages = []
    for s in result.storages:
        out = float(result.discharge_kw[s.name].sum() / 1000.0)
        storages.append(
            {
                "storage": s.name,
                "capacity_mwh": s.capacity_kwh / 1000.0,
                "charged_mwh": float(result.charge_kw[s.name].sum() / 1000.0),
                "discharged_mwh": out,
                "cycles": out * 1000.0 / s.capacity_kwh if s.capacity_kwh > 0 else 0.0,
                "lost_mwh": float(result.charge_kw[s.name].sum() / 1000.0) - out,
            }
        )
    need = float((result.demand_kw + result.losses_kw).sum() / 1000.0)
    return {
        "hours": T,
        "demand_mwh": float(result.demand_kw.sum() / 1000.0),
        "losses_mwh": float(result.losses_kw.sum() / 1000.0),
        "excess_heat_mwh": excess,
        "excess_heat_share": excess / need if need > 0 else 0.0,
        "electricity_mwh": elec,
        "fuel_mwh_by_fuel": fuel,
        "operating_cost_eur": cost,
        "co2_direct_t": co2,
        "unserved_mwh": float(result.unserved_kw.sum() / 1000.0),
        "max_balance_residual_kw": float(np.abs(result.balance_residual_kw()).max()),
        "units": units,
        "storages": storages,
    }
