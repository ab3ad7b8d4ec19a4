"""The designed network at an hour of operation: other loads, other sources running, prosumers selling.

The design case (:func:`heatmap.network.hydraulics.design_case`) fixes the pipe sizes and pump lifts at the
diversified peak. An hour of operation keeps them and changes what flows: every consumer draws its load of
that hour (a consumer drawing nothing is left out), only the sources that run feed in, and a prosumer that sells
feeds its heat in at its own temperature through its service pipe. Per network the running source with the
largest capacity holds the pressure (at the network's design pump lift) and balances the hour's loads and losses
(where prosumers cover the hour alone, the network's largest source holds the pressure and balances);
every other running source and every selling prosumer injects a fixed mass flow ``ṁ = Q / (c_p (T_feed − T_return))``
at its own temperature, its pressure free (pandapipes ``circ_pump_const_mass_flow`` of type ``"t"``).

With a supply curve (scenario ``temperatures.supply_curve``) each hour has the network's supply temperature, its
*target*: the water leaves every source (and the pressure-holding pump) at the target. A source whose own
``t_supply_c`` is below it preheats: its own heat lifts the water from the return to its ``t_supply_c``
(``q_own = ṁ c_p (t_own − t_return)``), a booster at the source lifts it on to the target
(``q_boost = ṁ c_p (target − t_own)``); a source at or above the target delivers at the target, all of its heat its
own. A selling prosumer feeds in at its ``t_feed_in_c``, or, below the target, preheats the same way (its sale
being its own heat). The source's capacity limits its own heat; the booster is not capacity-limited
(:func:`own_share`, at the network's return temperature). Where the return water arrives colder than that and a
feed-in at its full capacity would exceed it, the feed-in's flow is trimmed to its capacity and the hour solved
once more.

The pumps follow the load as a differential-pressure control does: each network starts at its design pump lift,
and where its critical consumer lacks the minimum differential pressure (fittings counted, plus the design's
margin) the lift rises by the shortfall, up to the largest allowed, and the network is solved again.

Every check of the design case applies (:func:`heatmap.network.hydraulics.check_simulation`): convergence,
differential pressure and supply temperature at each consumer, velocity and pressure gradient in every pipe,
source capacity and the energy balance. The service pipes are checked as simulated: in an hour of operation each
consumer draws its own load, there is no diversity to undo.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from heatmap._errors import HydraulicError
from heatmap.io.outputs import CHECK_ORDER
from heatmap.network import first_guess, hydraulics
from heatmap.network.sizing import Water

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DesignedNetwork:
    """What a designed network needs to be simulated again at another hour.

    Attributes
    ----------
    pipes : pandas.DataFrame
        The pipe table of the final design (:func:`heatmap.network.hydraulics.pipe_table`).
    node_xy : pandas.DataFrame
        ``x``, ``y`` per node.
    consumers : pandas.DataFrame
        ``consumer_id``, ``node``, ``tree``, ``t_feed_in_c`` (NaN: cannot sell).
    sources : pandas.DataFrame
        ``source_id``, ``node``, ``tree``, ``t_supply_c``, ``capacity_kw``.
    conditions : heatmap.network.hydraulics.Conditions
        With the final pump lift of each network.
    limits : heatmap.network.hydraulics.Limits
        The checks' limits.
    water : heatmap.network.sizing.Water
        Water properties (the feed-ins' mass flows).
    lift_margin_bar : float
        Pump lift kept above what the critical consumer's minimum differential pressure needs.
    max_lift_bar : float
        Highest pump lift.
    pipe_ids : pandas.Series
        The pipes layer's ``pipe_id`` by (``edge_id``, ``circuit``); empty: numbered as simulated.
    """

    pipes: pd.DataFrame
    node_xy: pd.DataFrame
    consumers: pd.DataFrame
    sources: pd.DataFrame
    conditions: hydraulics.Conditions
    limits: hydraulics.Limits
    water: Water
    lift_margin_bar: float
    max_lift_bar: float
    pipe_ids: pd.Series = dataclasses.field(default_factory=lambda: pd.Series(dtype="int64"))


@dataclass(frozen=True)
class OperatingHour:
    """What flows in one hour.

    Attributes
    ----------
    name : str
        What the hour stands for ("summer, least load").
    time : pandas.Timestamp or None
        The hour of the year.
    consumer_kw : pandas.Series
        Load drawn per consumer id (kW, ≥ 0).
    source_kw : pandas.Series
        Heat each running source is to feed in per source id (kW, > 0); the pressure-holding source gives
        what balances its network instead.
    sale_kw : pandas.Series
        Heat each selling prosumer feeds in per consumer id (kW, > 0): its own heat.
    t_out_c : float or None
        Outdoor temperature of the hour (°C); ``None`` for the design peak.
    t_supply_target_c : float or None
        The network's supply temperature this hour (°C, the supply curve's); ``None``: every source supplies its
        own ``t_supply_c``.
    """

    name: str
    time: pd.Timestamp | None
    consumer_kw: pd.Series
    source_kw: pd.Series
    sale_kw: pd.Series
    t_out_c: float | None = None
    t_supply_target_c: float | None = None


def water_temperature_c(t_own_c: float, target_c: float | None, *, prosumer: bool = False) -> float:
    """Temperature of the water a feeder sends into the network (°C).

    Without a target, its own; with one, the target (a source above it delivers at the target, one below it
    preheats and is boosted to it), except a prosumer above the target, which feeds in at its own.
    """
    if target_c is None:
        return float(t_own_c)
    return float(max(t_own_c, target_c)) if prosumer else float(target_c)


def own_share(t_own_c: np.ndarray | float, t_water_c: np.ndarray | float, t_return_c: np.ndarray | float) -> np.ndarray:
    """Share of the heat fed in that is the feeder's own: ``(t_own − t_return) / (t_water − t_return)``, at most 1.

    The rest is its booster's. The feeder's capacity limits its own heat, so in heat delivered (own plus boost)
    a preheating source can give its capacity divided by this share.

    Examples
    --------
    >>> own_share(np.array([100.0, 120.0]), 115.0, 50.0).round(4).tolist()
    [0.7692, 1.0]
    """
    t_own, t_water, t_return = (np.asarray(v, dtype=float) for v in (t_own_c, t_water_c, t_return_c))
    below = t_own < t_water - 1e-9
    return np.where(below, (t_own - t_return) / np.where(below, t_water - t_return, 1.0), 1.0)


CHECKS = CHECK_ORDER
"""The checks of every hour, each with a verdict column in the operating-hours table (the summary's order)."""


@dataclass(frozen=True)
class HourResult:
    """An hour simulated and checked.

    ``sources``, ``consumers`` and ``pipes`` are the hour's tidy tables (:func:`hour_tables`).
    """

    hour: OperatingHour
    simulation: hydraulics.Simulation
    violations: pd.DataFrame
    pressure_sources: list[str]
    pump_lift_bar: dict[int, float]
    bypass_mdot_kg_per_s: pd.Series = dataclasses.field(default_factory=lambda: pd.Series(dtype=float))
    """Consumers passing a bypass flow this hour (their set mass flow)."""
    sources: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    consumers: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    pipes: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)

    def figures(self) -> dict:
        """One row of the operating-hours table: one value a cell (see the README's operation outputs)."""
        sim, c, p, s = self.simulation, self.consumers, self.pipes, self.sources
        failed = set(self.violations.check)

        def at_extreme(frame: pd.DataFrame, col: str, smallest: bool) -> pd.Series | pd.DataFrame | None:
            values = frame[col].dropna() if len(frame) else pd.Series(dtype=float)
            if values.empty:
                return None
            return frame.loc[values.idxmin() if smallest else values.idxmax()]

        crit = at_extreme(c, "dp_bar", smallest=True)
        cold = at_extreme(c, "margin_k", smallest=True)
        fast = at_extreme(p, "v_m_per_s", smallest=False)
        steep = at_extreme(p, "pa_per_m", smallest=False)

        def get(row: pd.Series | pd.DataFrame | None, col: str) -> Any:
            return None if row is None else row[col]

        row = {
            "hour": self.hour.name,
            "time": None if self.hour.time is None else self.hour.time.isoformat(),
            "t_out_c": self.hour.t_out_c,
            "t_supply_target_c": self.hour.t_supply_target_c,
            "consumers_drawing": len(c),
            "load_kw": float(sim.consumers.q_kw.sum()),
            "losses_kw": float(sim.pipes.q_loss_kw.sum()),
            "fed_in_kw": float(s.q_kw.sum()) if len(s) else 0.0,
            "boost_kw": float(s.q_boost_kw.sum()) if len(s) else 0.0,
            "sold_by_prosumers_kw": float(self.hour.sale_kw.sum()),
            "sources_running": int((s.kind == "source").sum()) if len(s) else 0,
            "prosumers_selling": int((s.kind == "prosumer").sum()) if len(s) else 0,
            "consumers_bypassing": len(self.bypass_mdot_kg_per_s),
            "pumping_kw": float(sim.sources.pump_power_kw.clip(lower=0.0).sum()),
            "energy_balance_residual": sim.energy_balance["residual_relative"],
            "violations": len(self.violations),
            **{f"check_{k}": "fails" if k in failed else "holds" for k in CHECKS},
            "critical_consumer_id": get(crit, "consumer_id"),
            "critical_consumer_dp_bar": get(crit, "dp_bar"),
            "min_consumer_dp_bar": get(crit, "min_dp_bar"),
            "least_margin_consumer_id": get(cold, "consumer_id"),
            "least_margin_t_supply_c": get(cold, "t_supply_c"),
            "least_margin_min_supply_c": get(cold, "min_supply_c"),
            "least_margin_k": get(cold, "margin_k"),
            "max_velocity_m_per_s": get(fast, "v_m_per_s"),
            "max_velocity_pipe_id": get(fast, "pipe_id"),
            "max_pa_per_m": get(steep, "pa_per_m"),
            "max_pa_per_m_pipe_id": get(steep, "pipe_id"),
            "pipes_reversed": int(p.reversed.sum()) if len(p) else 0,
        }
        return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}

    def reversed_pipes(self) -> list[int]:
        """Return the ``pipe_id`` of every pipe whose flow runs against its drawn direction this hour."""
        p = self.pipes
        return sorted(int(i) for i in p.pipe_id[p.reversed]) if len(p) else []


def hour_tables(
    net: DesignedNetwork,
    hour: OperatingHour,
    sim: hydraulics.Simulation,
    service: pd.DataFrame,
    holders: list[str],
    bypass: pd.Series,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Return the hour's tidy tables: per feeder, per consumer, per pipe.

    Parameters
    ----------
    net
        The designed network.
    hour
        The hour (its supply target).
    sim
        Its simulation.
    service
        :func:`heatmap.network.hydraulics.service_at_own_peak` of the hour (the differential pressure checked).
    holders
        The sources holding the pressure.
    bypass
        The bypass flow per consumer id.

    Returns
    -------
    tuple of pandas.DataFrame
        Feeders: ``source_id``, ``kind`` (source or prosumer), ``q_kw`` (heat fed in), ``q_own_kw``, ``q_boost_kw``,
        ``t_supply_c`` (the water sent), ``t_own_max_c`` (its own heat's temperature), ``t_inlet_c`` (return water
        arriving), ``mdot_kg_per_s``, ``holds_pressure``, ``pump_lift_bar`` (the pressure holder's only),
        ``pump_power_kw``. The split: ``q_own = q (t_own − t_return) / (t_supply − t_return)`` where
        ``t_own < t_supply`` (``t_return`` the network's return temperature), ``q_boost = q − q_own``.
        Consumers: ``consumer_id``, ``q_kw``, ``mdot_kg_per_s``, ``t_supply_c``, ``min_supply_c``, ``margin_k``,
        ``t_return_c``, ``dp_bar`` (checked: fittings counted), ``min_dp_bar``, ``bypass``,
        ``bypass_mdot_kg_per_s``. Pipes: ``pipe_id``, ``edge_id``, ``circuit``, ``v_m_per_s``, ``pa_per_m``,
        ``mdot_kg_per_s``, ``reversed`` (against the drawn direction), ``t_from_c``, ``t_to_c`` (at its drawn ends).
    """
    target = hour.t_supply_target_c
    src = net.sources.set_index("source_id")
    cons = net.consumers.set_index("consumer_id")
    s = sim.sources.copy()
    is_source = s.source_id.isin(src.index).to_numpy()
    ids = s.source_id
    t_own = np.where(
        is_source,
        src.t_supply_c.reindex(ids).to_numpy(dtype=float),
        cons.t_feed_in_c.reindex(ids).to_numpy(dtype=float),
    )
    t_water = np.array(
        [water_temperature_c(t, target, prosumer=not k) for t, k in zip(t_own, is_source, strict=True)], dtype=float
    )
    node = np.where(is_source, src.node.reindex(ids).to_numpy(), cons.node.reindex(ids).to_numpy())
    j = sim.junctions
    t_in = j[j.circuit == "return"].groupby("node").t_c.first().reindex(node).to_numpy(dtype=float)
    share = own_share(t_own, t_water, net.conditions.t_return_c)
    q = s.q_supplied_kw.to_numpy(dtype=float)
    holds = ids.isin(holders).to_numpy() & is_source
    feeders = pd.DataFrame(
        {
            "source_id": ids.astype(str).to_numpy(),
            "kind": np.where(is_source, "source", "prosumer"),
            "q_kw": q,
            "q_own_kw": q * share,
            "q_boost_kw": q * (1 - share),
            "t_supply_c": t_water,
            "t_own_max_c": t_own,
            "t_inlet_c": t_in,
            "mdot_kg_per_s": s.mdot_kg_per_s.to_numpy(dtype=float),
            "holds_pressure": holds,
            "pump_lift_bar": np.where(holds, s.pump_lift_bar.to_numpy(dtype=float), np.nan),
            "pump_power_kw": s.pump_power_kw.to_numpy(dtype=float),
        }
    )
    c = sim.consumers
    lim = net.limits
    minimum = c.consumer_id.map(lim.min_supply_c_by_consumer).astype(float).fillna(lim.min_consumer_supply_c)
    dp = service.set_index("consumer_id").dp_bar.reindex(c.consumer_id).to_numpy(dtype=float)
    bypass_flow = bypass.reindex(c.consumer_id).to_numpy(dtype=float)
    consumers = pd.DataFrame(
        {
            "consumer_id": c.consumer_id.astype(str).to_numpy(),
            "q_kw": c.q_kw.to_numpy(),
            "mdot_kg_per_s": c.mdot_kg_per_s.to_numpy(),
            "t_supply_c": c.t_supply_c.to_numpy(),
            "min_supply_c": minimum.to_numpy(),
            "margin_k": c.t_supply_c.to_numpy() - minimum.to_numpy(),
            "t_return_c": c.t_return_c.to_numpy(),
            "dp_bar": dp,
            "min_dp_bar": net.limits.min_consumer_dp_bar,
            "bypass": np.isfinite(bypass_flow),
            "bypass_mdot_kg_per_s": bypass_flow,
        }
    )
    p = sim.pipes
    rev = p.flow_reversed.to_numpy(dtype=bool) & (p.mdot_kg_per_s.to_numpy() > 1e-6)
    key = pd.MultiIndex.from_arrays([p.edge_id.to_numpy(), p.circuit.to_numpy()])
    pipe_id = net.pipe_ids.reindex(key).to_numpy() if len(net.pipe_ids) else np.arange(len(p))
    t_a, t_b = p.t_in_c.to_numpy(), p.t_out_c.to_numpy()
    flowing_back = p.flow_reversed.to_numpy(dtype=bool)
    pipes = pd.DataFrame(
        {
            "pipe_id": pipe_id,
            "edge_id": p.edge_id.to_numpy(),
            "circuit": p.circuit.to_numpy(),
            "v_m_per_s": p.v_m_per_s.to_numpy(),
            "pa_per_m": p.r_pa_per_m.to_numpy(),
            "mdot_kg_per_s": p.mdot_kg_per_s.to_numpy(),
            "reversed": rev,
            "t_from_c": np.where(flowing_back, t_b, t_a),
            "t_to_c": np.where(flowing_back, t_a, t_b),
        }
    )
    return feeders, consumers, pipes


MAX_TRIM_ROUNDS = 3
"""Simulations that may trim feed-ins at full capacity whose own heat the colder return water lifts above it."""
MAX_BYPASS_ROUNDS = 6
"""Simulations that may add bypass flow to consumers still too cold (each raises their flow at least 1.5×)."""


def simulate_hour(
    net: DesignedNetwork,
    hour: OperatingHour,
    *,
    bypass_margin_k: float | None = None,
    processes: int = 1,
) -> HourResult:
    """Simulate the designed network at one hour and check it.

    Parameters
    ----------
    net
        The designed network.
    hour
        Loads, running sources and sales of the hour.
    bypass_margin_k
        With a value, substations keep their supply temperature with a bypass: a consumer receiving water colder
        than its minimum passes more flow (its return then warmer), enough by exponential cooling along its path
        for its minimum plus this margin: first on each network's directly solved steady state before pandapipes
        solves it (:func:`_bypass_on_model`), then over up to :data:`MAX_BYPASS_ROUNDS` pandapipes simulations for
        what pandapipes still finds too cold. ``None``: no bypass.
    processes
        Networks solved at once in forked processes at most (:func:`heatmap.network.hydraulics.solve_networks`).

    Returns
    -------
    HourResult
        The simulation, every violated check (with an ``hour`` column) and the sources holding the pressure.

    Raises
    ------
    HydraulicError
        A network with load but no running source, or a selling consumer without a feed-in temperature.
    """
    cons = net.consumers.set_index("consumer_id")
    load = hour.consumer_kw[hour.consumer_kw > 0]
    sale = hour.sale_kw[hour.sale_kw > 0]
    no_t = sale.index[cons.t_feed_in_c.reindex(sale.index).isna()]
    if len(no_t):
        raise HydraulicError(f"prosumers {', '.join(map(str, no_t))} sell heat but have no t_feed_in_c")
    consumers = pd.DataFrame(
        {
            "consumer_id": load.index.to_numpy(),
            "node": cons.node.reindex(load.index).to_numpy(),
            "tree": cons.tree.reindex(load.index).to_numpy(),
            "q_design_w": load.to_numpy() * 1000,
        }
    )
    src = net.sources.set_index("source_id")
    running = src.loc[hour.source_kw.index[hour.source_kw > 0]]
    t_return = net.conditions.t_return_c
    cp = net.water.cp_j_per_kgk
    target = hour.t_supply_target_c
    holders, rows = [], []
    for tree in sorted(set(consumers.tree) | set(cons.tree.reindex(sale.index)) | set(running.tree)):
        mine = running[running.tree == tree]
        if mine.empty:  # prosumers cover the hour: the largest source only holds the pressure
            mine = src[src.tree == tree].nlargest(1, "capacity_kw")
        if mine.empty:
            raise HydraulicError(f"{hour.name}: the network of tree {tree} has load but no source")
        holder = mine.capacity_kw.idxmax()
        holders.append(str(holder))
        for sid, r in mine.iterrows():
            q = float(hour.source_kw.get(sid, 0.0))  # heat delivered: its own and its booster's
            t_water = water_temperature_c(r.t_supply_c, target)
            mdot = np.nan if sid == holder else q * 1000 / (cp * (t_water - t_return))
            rows.append((sid, r.node, t_water, r.capacity_kw, tree, mdot))
    for cid, q in zip(
        sale.index.tolist(), sale.tolist(), strict=True
    ):  # the sale is the prosumer's own heat: its flow carries it from t_return to t_feed
        t_feed = float(cons.t_feed_in_c[cid])
        t_water = water_temperature_c(t_feed, target, prosumer=True)
        rows.append((cid, cons.node[cid], t_water, np.nan, cons.tree[cid], q * 1000 / (cp * (t_feed - t_return))))
    sources = pd.DataFrame(rows, columns=["source_id", "node", "t_supply_c", "capacity_kw", "tree", "mdot_kg_per_s"])
    lift = dict(net.conditions.pump_lift_bar)
    sims: dict[int, hydraulics.Simulation] = {}
    adjust = None if bypass_margin_k is None else functools.partial(_bypass_on_model, net, bypass_margin_k)

    def solve(trees: Iterable[int], bypass: pd.Series | None = None) -> tuple[hydraulics.Simulation, pd.DataFrame]:
        """Solve the networks ``trees`` again, each consumer passing the flow it passes so far or ``bypass`` sets."""
        held = pd.concat([pd.Series(dtype=float), *(s.set_mdot_kg_per_s for s in sims.values()), bypass])
        held = held[~held.index.duplicated(keep="last")]
        design = hydraulics.NetworkDesign(
            net.pipes, consumers.assign(mdot_kg_per_s=consumers.consumer_id.map(held)), sources, net.node_xy
        )
        cond = dataclasses.replace(net.conditions, pump_lift_bar=dict(lift))
        sims.update(hydraulics.solve_networks(design, trees, cond, processes=processes, adjust=adjust))
        sim = hydraulics.combine([sims[k] for k in sorted(sims)])
        # Each consumer draws its own load this hour: its service pipe as simulated, the fittings' share added.
        service = hydraulics.service_at_own_peak(
            sim,
            consumers.assign(peak_w=consumers.q_design_w),
            net.pipes,
            water=net.water,
            roughness_m=net.conditions.roughness_mm / 1000,
            t_return_c=t_return,
            lift_bar=consumers.tree.map(lift).to_numpy(dtype=float),
            local_loss_factor=net.conditions.local_loss_factor,
        )
        return sim, service

    sim, service = solve(sorted(set(sources.tree)))  # with a bypass where the steady state shows it (_bypass_on_model)
    if bypass_margin_k is not None:
        sim, service = _bypass(net, sim, service, consumers, sources, solve, bypass_margin_k)
    # Differential-pressure control: where the critical consumer lacks pressure, the pump lifts more (Δp at
    # every consumer moves one for one with the lift, the flows being set by the loads).
    short = (
        (net.limits.min_consumer_dp_bar + net.lift_margin_bar - service.dp_bar).groupby(consumers.tree.to_numpy()).max()
    )
    raise_lift = {
        k: float(d) for k, d in zip(short.index.tolist(), short.tolist(), strict=True) if d > 0 and sims[k].converged
    }
    if raise_lift:  # only pressures change: each network's solution shifted, not solved again
        for k, d in raise_lift.items():
            new = min(lift[k] + d, net.max_lift_bar)
            sims[k] = hydraulics.with_pump_lift(sims[k], new - lift[k])
            lift[k] = new
        sim, service = solve([])
    feeders, consumer_table, pipe_table = hour_tables(net, hour, sim, service, holders, sim.set_mdot_kg_per_s)
    for _ in range(MAX_TRIM_ROUNDS):
        # a feed-in at its full capacity meets return water colder than the return temperature: it holds its
        # capacity, its flow trimmed to it, and the hour is solved again
        own = feeders.set_index("source_id").q_own_kw.reindex(src.index)
        over = (own > src.capacity_kw * (1 + 1e-9)) & ~src.index.isin(holders) & own.notna()
        if not over.any():
            break
        trim = (src.capacity_kw / own)[over] * (1 - 1e-6)
        sources["mdot_kg_per_s"] = sources.mdot_kg_per_s * sources.source_id.map(trim).fillna(1.0).to_numpy()
        sim, service = solve(sorted(set(src.tree[over])))
        feeders, consumer_table, pipe_table = hour_tables(net, hour, sim, service, holders, sim.set_mdot_kg_per_s)
        logger.debug("Hour %r: feed-ins %s trimmed to their capacity", hour.name, ", ".join(map(str, own.index[over])))
    violations = _checked(net, sim, service, feeders, target).assign(hour=hour.name)
    logger.info(
        "Hour %r: %.0f kW drawn by %d consumers, %d sources running, %d prosumers selling, supply %s, %d violations",
        hour.name,
        load.sum(),
        len(load),
        len(running),
        len(sale),
        "each source's own" if target is None else f"{target:.1f} °C",
        len(violations),
    )
    return HourResult(
        hour,
        sim,
        violations,
        holders,
        {int(k): round(v, 4) for k, v in lift.items()},
        sim.set_mdot_kg_per_s,
        feeders,
        consumer_table,
        pipe_table,
    )


def _checked(
    net: DesignedNetwork,
    sim: hydraulics.Simulation,
    service: pd.DataFrame,
    feeders: pd.DataFrame,
    target: float | None,
) -> pd.DataFrame:
    """Every check of the hour; with a supply target a source's capacity limits its own heat, not its booster's."""
    capacity = net.sources.set_index("source_id").capacity_kw
    if target is None:
        return hydraulics.check_simulation(sim, net.limits, capacity, service)
    f = feeders.set_index("source_id")
    share = (f.q_own_kw / f.q_kw).where(f.q_kw > 0).reindex(capacity.index).fillna(1.0)
    violations = hydraulics.check_simulation(sim, net.limits, capacity / share, service)
    over = violations.check == "source_capacity"
    if over.any():  # report the own heat against the capacity
        el = violations.element[over]
        violations.loc[over, "value"] = f.q_own_kw.reindex(el).to_numpy()
        violations.loc[over, "limit"] = capacity.reindex(el).to_numpy()
    return violations


def _bypass(
    net: DesignedNetwork,
    sim: hydraulics.Simulation,
    service: pd.DataFrame,
    consumers: pd.DataFrame,
    sources: pd.DataFrame,
    solve: Callable[[Iterable[int], pd.Series], tuple[hydraulics.Simulation, pd.DataFrame]],
    margin_k: float,
) -> tuple[hydraulics.Simulation, pd.DataFrame]:
    """Raise the flow of consumers too cold until they hold their minimum supply temperature (see simulate_hour).

    Along a consumer's path the water cools as ``T − T_g = (T_0 − T_g) exp(−k / ṁ)``; scaling its flow by
    ``ln((T_0 − T_g)/(T_now − T_g)) / ln((T_0 − T_g)/(T_min + margin − T_g))`` would reach the target were the
    whole path's flow scaled alike (at least 1.5×, at most 20× a round).

    A network that does not converge at all (at very small loads the water can reach a consumer colder than the
    return temperature it is to leave at) is solved again once with every consumer bypassing: each passes twice
    the flow its load needs at the network's design temperature difference, its return temperature floating.
    """
    limits, t_ground = net.limits, net.conditions.t_ground_c
    tree_of = consumers.set_index("consumer_id").tree
    t_source = sources.groupby("tree").t_supply_c.max()
    failed = set(sources.set_index("source_id").tree.reindex(sim.failed_sources).dropna().astype(int))
    if failed:
        mine = consumers[consumers.tree.isin(failed)]
        flow = _failed_net_flow(net, mine.q_design_w.to_numpy(), mine.tree.map(t_source).to_numpy(dtype=float))
        sim, service = solve(sorted(failed), pd.Series(flow, index=mine.consumer_id))
    for _ in range(MAX_BYPASS_ROUNDS):
        c = sim.consumers
        flow = _bypass_flow(
            limits,
            c.consumer_id.to_numpy(),
            c.t_supply_c.to_numpy(),
            c.mdot_kg_per_s.to_numpy(),
            tree_of.reindex(c.consumer_id).map(t_source).to_numpy(dtype=float),
            t_ground,
            margin_k,
        )
        cold = c.consumer_id[np.isfinite(flow)]
        if cold.empty or not sim.converged:
            break
        sim, service = solve(sorted(set(tree_of.reindex(cold))), pd.Series(flow[np.isfinite(flow)], index=cold))
    return sim, service


def _failed_net_flow(net: DesignedNetwork, q_w: np.ndarray, t_source_c: np.ndarray | float) -> np.ndarray:
    """Return each consumer's flow in a net that does not converge: twice what its load needs at the design ΔT."""
    return 2 * q_w / (net.water.cp_j_per_kgk * (t_source_c - net.conditions.t_return_c))


def _bypass_flow(
    limits: hydraulics.Limits,
    consumer_id: np.ndarray,
    t_supply_c: np.ndarray,
    mdot_kg_per_s: np.ndarray,
    t_source_c: np.ndarray,
    t_ground_c: float,
    margin_k: float,
) -> np.ndarray:
    """Return the flow each consumer too cold is to pass (NaN for the others): the rule of :func:`_bypass`."""
    given = pd.Series(consumer_id).map(limits.min_supply_c_by_consumer).astype(float)
    minimum = given.fillna(limits.min_consumer_supply_c).to_numpy()
    cold = t_supply_c < minimum
    t0 = t_source_c[cold] - t_ground_c
    now = np.maximum(t_supply_c[cold] - t_ground_c, 0.1)
    target = np.minimum(minimum[cold] + margin_k - t_ground_c, 0.99 * t0)
    factor = np.clip(np.log(t0 / target) / np.log(np.maximum(t0 / now, 1 + 1e-9)), 1.5, 20.0)
    flow = np.full(len(consumer_id), np.nan)
    flow[cold] = np.abs(mdot_kg_per_s[cold]) * factor
    return flow


STUCK_MARGIN_K = 0.5
"""A consumer reached by water less than this above its return temperature makes the whole net bypass at once."""


def _bypass_on_model(net: DesignedNetwork, margin_k: float, pnet: Any, state: first_guess.SteadyState) -> bool:
    """Raise the flow of consumers too cold in a net's directly solved steady state (:func:`_bypass`'s rule).

    The bypass rounds done on the steady state (:mod:`heatmap.network.first_guess`, within 10⁻⁵ K of pandapipes'
    solution) before pandapipes solves the net once, instead of on a pandapipes solution each round
    (:data:`heatmap.network.hydraulics.Adjust`); what pandapipes then still finds too cold gets further rounds.
    Where the steady state brings a consumer water no warmer than the return temperature it is to leave at, or its
    rounds of substation flows and temperatures do not settle (at small loads each consumer's flow follows the
    temperature the flows upstream leave it), pandapipes does not converge either (100 iterations spent: 7 s on a
    network of 10,000 pipes): every consumer of the net bypasses at once, as :func:`_bypass` does after such a
    failure (twice the flow its load needs at the design temperature difference, its return temperature floating).
    """
    hc = pnet.heat_consumer
    pumps = [pnet[t] for t in ("circ_pump_pressure", "circ_pump_mass") if t in pnet and len(pnet[t])]
    t_source = max(float(p.t_flow_k.max()) for p in pumps) - hydraulics.KELVIN
    t_in_k = state.t_k[hc.from_junction.to_numpy()]
    t_out_k = hc.treturn_k.to_numpy(dtype=float)
    stuck = not state.converged or (t_in_k <= t_out_k + STUCK_MARGIN_K).any()  # NaN (a set flow) compares False
    if stuck and np.isfinite(t_out_k).any():  # (where every consumer passes a set flow already, nothing to do)
        flow = _failed_net_flow(net, hc.qext_w.to_numpy(), t_source)
        hc["controlled_mdot_kg_per_s"] = np.fmax(hc.controlled_mdot_kg_per_s.to_numpy(dtype=float), flow)
        hc["treturn_k"] = np.nan
        return True
    flow = _bypass_flow(
        net.limits,
        hc.name.to_numpy(),
        state.t_k[hc.from_junction.to_numpy()] - hydraulics.KELVIN,
        state.consumer_mdot_kg_per_s,
        np.full(len(hc), t_source),
        net.conditions.t_ground_c,
        margin_k,
    )
    cold = np.isfinite(flow)
    if not cold.any():
        return False
    hc.loc[cold, "controlled_mdot_kg_per_s"] = flow[cold]
    hc.loc[cold, "treturn_k"] = np.nan
    return True
