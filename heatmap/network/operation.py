"""The designed network at an hour of operation: other loads, other sources running, prosumers selling.

The design case (:func:`heatmap.network.hydraulics.design_case`) fixes the pipe sizes and pump lifts at the
diversified peak. An hour of operation keeps them and changes what flows: every consumer draws its load of
that hour (a consumer drawing nothing is left out), only the sources that run feed in, and a prosumer that sells
feeds its heat in at its own temperature through its service pipe. Per network the running source with the
largest capacity holds the pressure (at the network's design pump lift) and balances the hour's loads and losses
(where prosumers cover the hour alone, the network's largest source holds the pressure and balances);
every other running source and every selling prosumer injects a fixed mass flow ``ṁ = Q / (c_p (T_feed − T_return))``
at its own temperature, its pressure free (pandapipes ``circ_pump_const_mass_flow`` of type ``"t"``).

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
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from heatmap._errors import HydraulicError
from heatmap.network import hydraulics
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
        Heat each selling prosumer feeds in per consumer id (kW, > 0).
    """

    name: str
    time: pd.Timestamp | None
    consumer_kw: pd.Series
    source_kw: pd.Series
    sale_kw: pd.Series


@dataclass(frozen=True)
class HourResult:
    """An hour simulated and checked."""

    hour: OperatingHour
    simulation: hydraulics.Simulation
    violations: pd.DataFrame
    pressure_sources: list[str]
    pump_lift_bar: dict[int, float]
    bypass_mdot_kg_per_s: pd.Series = dataclasses.field(default_factory=lambda: pd.Series(dtype=float))
    """Consumers passing a bypass flow this hour (their set mass flow)."""

    def figures(self) -> dict:
        """One row of the operating-hours table: what ran, the extremes of the checks, the balance."""
        sim = self.simulation
        c, p = sim.consumers, sim.pipes
        reversed_supply = p[(p.circuit == "supply") & p.flow_reversed & (p.mdot_kg_per_s > 1e-6)]
        return {
            "hour": self.hour.name,
            "time": None if self.hour.time is None else self.hour.time.isoformat(),
            "consumers_drawing": len(c),
            "load_kw": float(c.q_kw.sum()),
            "sources_running": sorted(self.hour.source_kw.index),
            "pressure_held_by": self.pressure_sources,
            "pump_lift_bar": self.pump_lift_bar,
            "prosumers_selling": sorted(self.hour.sale_kw.index),
            "consumers_bypassing": len(self.bypass_mdot_kg_per_s),
            "sold_by_prosumers_kw": float(self.hour.sale_kw.sum()),
            "fed_in_kw": sim.sources.set_index("source_id").q_supplied_kw.round(1).to_dict(),
            "losses_kw": float(p.q_loss_kw.sum()),
            "pumping_kw": float(sim.sources.pump_power_kw.clip(lower=0.0).sum()),
            "min_consumer_supply_c": float(c.t_supply_c.min()) if len(c) else float("nan"),
            "min_consumer_dp_bar": float(c.dp_bar.min()) if len(c) else float("nan"),
            "max_velocity_m_per_s": float(p.v_m_per_s.max()),
            "supply_pipes_reversed": int(reversed_supply.edge_id.nunique()),
            "energy_balance_residual": sim.energy_balance["residual_relative"],
            "violations": len(self.violations),
            "checks_failed": sorted(set(self.violations.check)),
        }


MAX_BYPASS_ROUNDS = 6
"""Simulations that may add bypass flow to consumers still too cold (each raises their flow at least 1.5×)."""


def simulate_hour(net: DesignedNetwork, hour: OperatingHour, *, bypass_margin_k: float | None = None) -> HourResult:
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
        for its minimum plus this margin, over up to :data:`MAX_BYPASS_ROUNDS` simulations. ``None``: no bypass.

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
            q = float(hour.source_kw.get(sid, 0.0))
            mdot = np.nan if sid == holder else q * 1000 / (cp * (r.t_supply_c - t_return))
            rows.append((sid, r.node, r.t_supply_c, r.capacity_kw, tree, mdot))
    for cid, q in sale.items():
        t_feed = float(cons.t_feed_in_c[cid])
        rows.append((cid, cons.node[cid], t_feed, np.nan, cons.tree[cid], q * 1000 / (cp * (t_feed - t_return))))
    sources = pd.DataFrame(rows, columns=["source_id", "node", "t_supply_c", "capacity_kw", "tree", "mdot_kg_per_s"])
    lift = dict(net.conditions.pump_lift_bar)
    sims = {}
    bypass = pd.Series(dtype=float)

    def solve(trees, bypass: pd.Series) -> tuple[hydraulics.Simulation, pd.DataFrame]:
        design = hydraulics.NetworkDesign(
            net.pipes, consumers.assign(mdot_kg_per_s=consumers.consumer_id.map(bypass)), sources, net.node_xy
        )
        cond = dataclasses.replace(net.conditions, pump_lift_bar=dict(lift))
        for tree in trees:
            part = design.network(tree)
            sims[tree] = hydraulics.run_net(hydraulics.build_net(part, cond), part)
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

    sim, service = solve(sorted(set(sources.tree)), bypass)
    if bypass_margin_k is not None:
        sim, service, bypass = _bypass(net, sim, service, consumers, sources, bypass, solve, bypass_margin_k)
    # Differential-pressure control: where the critical consumer lacks pressure, the pump lifts more (Δp at
    # every consumer moves one for one with the lift, the flows being set by the loads).
    short = (
        (net.limits.min_consumer_dp_bar + net.lift_margin_bar - service.dp_bar).groupby(consumers.tree.to_numpy()).max()
    )
    raise_lift = {k: float(d) for k, d in short.items() if d > 0 and sims[k].converged}
    if raise_lift:
        for k, d in raise_lift.items():
            lift[k] = min(lift[k] + d, net.max_lift_bar)
        sim, service = solve(sorted(raise_lift), bypass)
    violations = hydraulics.check_simulation(sim, net.limits, src.capacity_kw, service).assign(hour=hour.name)
    logger.info(
        "Hour %r: %.0f kW drawn by %d consumers, %d sources running, %d prosumers selling, %d violations",
        hour.name,
        load.sum(),
        len(load),
        len(running),
        len(sale),
        len(violations),
    )
    return HourResult(hour, sim, violations, holders, {int(k): round(v, 4) for k, v in lift.items()}, bypass)


def _bypass(net, sim, service, consumers, sources, bypass, solve, margin_k):
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
        dt = mine.tree.map(t_source).to_numpy(dtype=float) - net.conditions.t_return_c
        flow = 2 * mine.q_design_w.to_numpy() / (net.water.cp_j_per_kgk * dt)
        bypass = pd.concat([bypass.drop(mine.consumer_id, errors="ignore"), pd.Series(flow, index=mine.consumer_id)])
        sim, service = solve(sorted(failed), bypass)
    for _ in range(MAX_BYPASS_ROUNDS):
        c = sim.consumers.set_index("consumer_id")
        minimum = c.index.map(limits.min_supply_c_by_consumer).to_series(index=c.index)
        minimum = minimum.astype(float).fillna(limits.min_consumer_supply_c)
        cold = c[c.t_supply_c < minimum]
        if cold.empty or not sim.converged:
            break
        t0 = tree_of.reindex(cold.index).map(t_source).to_numpy(dtype=float) - t_ground
        now = np.maximum(cold.t_supply_c.to_numpy() - t_ground, 0.1)
        target = np.minimum(minimum[cold.index].to_numpy() + margin_k - t_ground, 0.99 * t0)
        factor = np.clip(np.log(t0 / target) / np.log(np.maximum(t0 / now, 1 + 1e-9)), 1.5, 20.0)
        flow = np.abs(cold.mdot_kg_per_s.to_numpy()) * factor
        bypass = pd.concat([bypass.drop(cold.index, errors="ignore"), pd.Series(flow, index=cold.index)])
        sim, service = solve(sorted(set(tree_of.reindex(cold.index))), bypass)
    return sim, service, bypass
