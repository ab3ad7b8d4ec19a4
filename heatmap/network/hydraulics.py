"""Hydraulic and thermal simulation of the routed, sized network in pandapipes, and its checks.

Model: every tree node becomes a supply and a return junction; every tree edge a supply pipe and a return
pipe of the same DN, buried (heat loss to ground at ``temperatures.ground_c``); every consumer a
``heat_consumer`` from its supply to its return junction drawing its design load with a fixed return
temperature; the source of each connected network (routing gives every source a network of its own) a
circulation pump holding the return-side pressure and the supply temperature. Solved with
``mode="bidirectional"`` and Colebrook friction.

The catalogue's heat-loss coefficient ``U'`` (W per metre of pipe and kelvin) is given to pandapipes per
m² of steel outer surface, ``u = U' / (π d_outer)``; pandapipes integrates the loss exactly:
``T_out = T_ground + (T_in − T_ground) · exp(−U' L / (ṁ c_p))``.

The design case and which load each check sees
----------------------------------------------
The network is simulated once per source network at the *diversified* design load: every consumer draws its
peak load times the simultaneity factor of all consumers of its network, so the trunk carries the
simultaneous peak it was sized for. A building's own service pipe, though, must carry the building's own
peak (simultaneity of one). So, after each simulation (:func:`service_at_own_peak`):

- **street pipes**: velocity and pressure gradient as simulated (diversified load);
- **service pipes**: velocity and pressure gradient at the building's own peak flow
  (``ṁ = Q_peak / (c_p (T_at_building − T_return))``, Darcy–Weisbach with Colebrook);
- **differential pressure at a consumer**: the simulated value less the extra drop of its supply and return
  service pipes between the simulated flow and its own peak flow (the street network's pressures held);
- **supply temperature at a consumer**: as simulated (at the lower diversified flow the service pipe cools
  the water more, so this is on the safe side);
- **source capacity and energy balance**: as simulated.

:func:`design_case` runs the simulate–check–resize rounds, then lowers each pump lift to the least that keeps
every consumer at its minimum differential pressure plus a margin, and solves once more at that lift.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandapipes as pp
import pandas as pd

from heatmap._errors import HydraulicError
from heatmap.io import forked
from heatmap.io.tables import row_tuples
from heatmap.network import _pandapipes_speedup, first_guess, sizing

logger = logging.getLogger(__name__)

KELVIN = 273.15
MAX_ITERATIONS = 100
"""Newton iterations allowed to pandapipes (its default of 10 fails on large networks)."""


def use_fast_conflict_check() -> bool:
    """Replace a slow internal check of pandapipes by a vectorised equivalent, on tested versions only.

    See :mod:`heatmap.network._pandapipes_speedup`; returns whether it is in use.
    """
    return _pandapipes_speedup.install()


@dataclass
class NetworkDesign:
    """Everything pandapipes needs, in plain tables.

    Attributes
    ----------
    pipes : pandas.DataFrame
        One row per tree edge: ``edge_id``, ``from_node``, ``to_node``, ``length_m``, ``dn``,
        ``d_inner_m``, ``d_outer_m``, ``u_w_per_mk``, ``tree``.
    consumers : pandas.DataFrame
        ``consumer_id``, ``node``, ``q_design_w``; optional ``mdot_kg_per_s``: where given, the consumer passes
        that mass flow (its return temperature then follows from its load), elsewhere it returns at the network's
        return temperature.
    sources : pandas.DataFrame
        ``source_id``, ``node``, ``t_supply_c``, ``capacity_kw``, ``tree``; optional ``mdot_kg_per_s``:
        where given, the source feeds in that mass flow at its supply temperature (a second plant, or a
        prosumer selling heat), its pressure free; where missing or NaN it holds the network's pressure
        (exactly one such source per network).
    node_xy : pandas.DataFrame
        ``x``, ``y`` indexed by node (for pandapipes geodata).
    """

    pipes: pd.DataFrame
    consumers: pd.DataFrame
    sources: pd.DataFrame
    node_xy: pd.DataFrame

    def network(self, tree: int) -> NetworkDesign:
        """Select the part of the design fed by the source of network ``tree``."""
        pipes = self.pipes[self.pipes.tree == tree]
        nodes = np.unique(np.concatenate([pipes.from_node.to_numpy(), pipes.to_node.to_numpy()]))
        return NetworkDesign(
            pipes,
            self.consumers[self.consumers.tree == tree],
            self.sources[self.sources.tree == tree],
            self.node_xy.loc[nodes],
        )


@dataclass
class Conditions:
    """Temperatures and pressures of a simulation."""

    t_return_c: float
    t_ground_c: float
    p_return_bar: float
    roughness_mm: float
    pump_lift_bar: dict[int, float] = field(default_factory=dict)
    local_loss_factor: float = 1.0
    """Fittings, valves and bends as a factor on the friction drop, taken into the consumers' Δp check."""


@dataclass
class Simulation:
    """Results of one pandapipes run, in the plan's units.

    Attributes
    ----------
    pipes : pandas.DataFrame
        Per pipe (two per edge): ``edge_id``, ``circuit``, ``mdot_kg_per_s``, ``flow_reversed`` (against the
        pipe's design direction: a supply pipe away from the source, a return pipe towards it),
        ``v_m_per_s``, ``dp_bar``, ``r_pa_per_m``, ``t_in_c``, ``t_out_c``, ``q_loss_kw``.
    junctions : pandas.DataFrame
        ``node``, ``circuit``, ``p_bar``, ``t_c``.
    consumers : pandas.DataFrame
        ``consumer_id``, ``q_kw``, ``mdot_kg_per_s``, ``dp_bar``, ``t_supply_c``, ``t_return_c``.
    sources : pandas.DataFrame
        ``source_id``, ``q_supplied_kw``, ``mdot_kg_per_s``, ``pump_lift_bar``, ``pump_power_kw`` (hydraulic).
    failed_sources : list of str
        Sources whose network did not converge (its results are NaN).
    set_mdot_kg_per_s : pandas.Series
        Consumers passing a set mass flow, by id.
    """

    pipes: pd.DataFrame
    junctions: pd.DataFrame
    consumers: pd.DataFrame
    sources: pd.DataFrame
    failed_sources: list[str] = field(default_factory=list)
    set_mdot_kg_per_s: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    """Consumers passing a set mass flow (a bypass), by id: given with the design or set by an ``adjust``."""

    @property
    def converged(self) -> bool:
        """Whether every network converged."""
        return not self.failed_sources

    @property
    def energy_balance(self) -> dict[str, float]:
        """Heat in at the sources, out at the consumers, lost by the pipes (kW) and the relative residual."""
        q_src = float(self.sources.q_supplied_kw.sum())
        q_con = float(self.consumers.q_kw.sum())
        q_loss = float(self.pipes.q_loss_kw.sum())
        resid = q_src - q_con - q_loss
        return {
            "q_sources_kw": q_src,
            "q_consumers_kw": q_con,
            "q_losses_kw": q_loss,
            "residual_kw": resid,
            "residual_relative": abs(resid) / q_src if q_src > 0 else float("nan"),
        }


def build_net(design: NetworkDesign, cond: Conditions) -> pp.pandapipesNet:
    """Create the pandapipes network in bulk.

    Parameters
    ----------
    design
        Pipes, consumers and sources.
    cond
        Temperatures, pressures and pump lift per tree.

    Returns
    -------
    pandapipes.pandapipesNet
        Junction ``i`` is the supply side of node ``nodes[i]``, junction ``n + i`` its return side.
    """
    net = pp.create_empty_network(name="heatmap", fluid="water", add_stdtypes=False)  # pipes by their parameters
    nodes = design.node_xy.index.to_numpy()
    n = len(nodes)
    pos = pd.Series(np.arange(n), index=nodes)
    t_supply_k = float(design.sources.t_supply_c.max()) + KELVIN
    p_init = cond.p_return_bar + max((cond.pump_lift_bar[t] for t in design.sources.tree), default=1.0)
    xy = design.node_xy[["x", "y"]].to_numpy()
    pp.create_junctions(
        net,
        n,
        pn_bar=p_init,
        tfluid_k=t_supply_k,
        name=[f"S{v}" for v in nodes],
        geodata=[tuple(c) for c in xy],
        circuit="supply",
        node=nodes,
    )
    pp.create_junctions(
        net,
        n,
        pn_bar=cond.p_return_bar,
        tfluid_k=cond.t_return_c + KELVIN,
        name=[f"R{v}" for v in nodes],
        geodata=[tuple(c) for c in xy],
        circuit="return",
        node=nodes,
    )
    p = design.pipes
    fj = pos[p.from_node].to_numpy()
    tj = pos[p.to_node].to_numpy()
    common = {
        "length_km": p.length_m.to_numpy() / 1000,
        "inner_diameter_mm": p.d_inner_m.to_numpy() * 1000,
        "outer_diameter_mm": p.d_outer_m.to_numpy() * 1000,
        "k_mm": cond.roughness_mm,
        "u_w_per_m2k": p.u_w_per_mk.to_numpy() / (np.pi * p.d_outer_m.to_numpy()),
        "text_k": cond.t_ground_c + KELVIN,
        "sections": 1,
        "edge_id": p.edge_id.to_numpy(),
        "dn": p.dn.to_numpy(),
    }
    pp.create_pipes_from_parameters(net, fj, tj, circuit="supply", **common)
    pp.create_pipes_from_parameters(net, tj + n, fj + n, circuit="return", **common)
    c = design.consumers
    cj = pos[c.node].to_numpy()
    # A consumer with a set mass flow (a substation whose bypass keeps a minimum flow) lets its return temperature
    # float; every other one returns at the network's return temperature.
    mdot = c.mdot_kg_per_s.to_numpy(dtype=float) if "mdot_kg_per_s" in c else np.full(len(c), np.nan)
    pp.create_heat_consumers(
        net,
        cj,
        cj + n,
        qext_w=c.q_design_w.to_numpy(),
        controlled_mdot_kg_per_s=mdot,
        treturn_k=np.where(np.isnan(mdot), cond.t_return_c + KELVIN, np.nan),
        name=c.consumer_id.astype(str).tolist(),
    )
    # Per network one source holds the pressure (the slack); any other feed-in (a second plant, a prosumer
    # selling heat) injects a fixed mass flow at its own temperature, its pressure free.
    feed = (
        design.sources.mdot_kg_per_s if "mdot_kg_per_s" in design.sources else pd.Series(np.nan, design.sources.index)
    )
    for row, mdot in zip(row_tuples(design.sources), feed.to_numpy(), strict=True):
        j = int(pos[row.node])
        pump = {"t_flow_k": row.t_supply_c + KELVIN, "name": str(row.source_id)}
        if np.isnan(mdot):
            lift = cond.pump_lift_bar[row.tree]
            pp.create_circ_pump_const_pressure(
                net, j + n, j, p_flow_bar=cond.p_return_bar + lift, plift_bar=lift, **pump
            )
        else:  # type "t": flow and temperature fixed, pressure free
            pp.create_circ_pump_const_mass_flow(
                net, j + n, j, p_flow_bar=None, mdot_flow_kg_per_s=mdot, type="t", **pump
            )
    logger.info(
        "Built pandapipes net: %d junctions, %d pipes, %d consumers, %d pumps",
        len(net.junction),
        len(net.pipe),
        len(net.heat_consumer),
        len(design.sources),
    )
    return net


_RESULT_COLUMNS = {
    "junction": ["p_bar", "t_k"],
    "pipe": ["mdot_from_kg_per_s", "t_from_k", "t_to_k", "t_outlet_k", "v_mean_m_per_s", "p_from_bar", "p_to_bar"],
    "heat_consumer": ["qext_w", "mdot_from_kg_per_s", "p_from_bar", "p_to_bar", "t_from_k", "t_outlet_k"],
    "circ_pump_pressure": ["p_to_bar", "p_from_bar", "vdot_m3_per_s", "qext_w", "mdot_from_kg_per_s"],
    "circ_pump_mass": ["p_to_bar", "p_from_bar", "vdot_m3_per_s", "qext_w", "mdot_from_kg_per_s"],
}
"""pandapipes result columns read by :func:`run_net` (NaN where a network did not converge)."""


Adjust = Callable[[pp.pandapipesNet, first_guess.SteadyState], bool]
"""Changes a built net from its directly solved steady state before pandapipes solves it; returns whether it did."""
MAX_ADJUST_ROUNDS = 6
"""Steady states an :data:`Adjust` is shown at most (then pandapipes solves the net as it is)."""


def _pipeflow(net: pp.pandapipesNet, guess: bool, adjust: Adjust | None = None) -> None:
    """Run pandapipes' pipeflow, from the directly solved steady state where ``guess`` (:mod:`.first_guess`).

    ``adjust`` may change the net from that steady state first (solved again after each change).
    """
    options = {"mode": "bidirectional", "friction_model": "colebrook", "iter": MAX_ITERATIONS}
    state = first_guess.steady_state(net) if guess else None
    for _ in range(MAX_ADJUST_ROUNDS):
        if state is None or adjust is None or not adjust(net, state):
            break
        state = first_guess.steady_state(net, start=state)
    if state is None:
        pp.pipeflow(net, **options)
        return
    from pandapipes.pf.result_extraction import extract_all_results
    from pandapipes.pipeflow import execute_pipeflow, init_pipeflow

    # pandapipes' own pipeflow() in its three steps, the first guess set between the first two
    init_pipeflow(net, **options)
    first_guess.set_first_guess(net, state)
    execute_pipeflow(net)
    extract_all_results(net)


def run_net(
    net: pp.pandapipesNet, design: NetworkDesign, *, guess: bool = True, adjust: Adjust | None = None
) -> Simulation:
    """Solve the network and collect its results.

    Parameters
    ----------
    net
        Output of :func:`build_net`.
    design
        The design it was built from.
    guess
        Start the Newton iterations from the steady state solved directly on the network's trees
        (:func:`heatmap.network.first_guess.steady_state`); the solution is pandapipes' own, within its tolerance,
        in fewer iterations. ``False``, or a network that is not such a tree: pandapipes' own first guess.
    adjust
        Changes the net from that steady state before pandapipes solves it (:data:`Adjust`; with ``guess`` only).

    Returns
    -------
    Simulation
    """
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _pipeflow(net, guess, adjust)
        for w in {str(w.message) for w in caught}:
            logger.debug("pandapipes warned: %s", w)
        converged = bool(net.converged)
    except (pp.pf.pipeflow_setup.PipeflowNotConverged, np.linalg.LinAlgError) as exc:
        logger.warning("pandapipes did not converge: %s", exc)
        converged = False
    except UserWarning as exc:  # pandapipes raises it where a circulation pump's flow would turn round
        if "direction change in circulation pump" not in str(exc):
            raise
        logger.warning(
            "pandapipes found no state: the flow through a source's circulation pump would turn round (the "
            "prosumers feed in more than the network draws, or at a temperature too near the return): %s",
            exc,
        )
        converged = False
    if not converged:  # report the network's elements with unknown (NaN) results
        for table, columns in _RESULT_COLUMNS.items():
            if table in net:
                net[f"res_{table}"] = pd.DataFrame(np.nan, index=net[table].index, columns=columns)

    rj = net.res_junction
    junctions = pd.DataFrame(
        {
            "node": net.junction.node.to_numpy(),
            "circuit": net.junction.circuit.to_numpy(),
            "p_bar": rj.p_bar.to_numpy(),
            "t_c": rj.t_k.to_numpy() - KELVIN,
        }
    )
    rp = net.res_pipe
    mdot = rp.mdot_from_kg_per_s.to_numpy()
    forward = mdot >= 0
    t_in_k = np.where(forward, rp.t_from_k.to_numpy(), rp.t_to_k.to_numpy())
    t_out_k = rp.t_outlet_k.to_numpy()
    cp = net.fluid.get_heat_capacity((t_in_k + t_out_k) / 2)
    length_m = net.pipe.length_km.to_numpy() * 1000
    dp = np.abs(rp.p_from_bar.to_numpy() - rp.p_to_bar.to_numpy())
    pipes = pd.DataFrame(
        {
            "edge_id": net.pipe.edge_id.to_numpy(),
            "circuit": net.pipe.circuit.to_numpy(),
            "mdot_kg_per_s": np.abs(mdot),
            "flow_reversed": mdot < 0,
            "v_m_per_s": np.abs(rp.v_mean_m_per_s.to_numpy()),
            "dp_bar": dp,
            "r_pa_per_m": dp * 1e5 / length_m,
            "t_in_c": t_in_k - KELVIN,
            "t_out_c": t_out_k - KELVIN,
            "q_loss_kw": np.abs(mdot) * cp * (t_in_k - t_out_k) / 1000,
        }
    )
    rc = net.res_heat_consumer
    hc = net.heat_consumer
    consumers = pd.DataFrame(
        {
            "consumer_id": hc.name.to_numpy(),
            "q_kw": rc.qext_w.to_numpy() / 1000,
            "mdot_kg_per_s": rc.mdot_from_kg_per_s.to_numpy(),
            "dp_bar": rc.p_from_bar.to_numpy() - rc.p_to_bar.to_numpy(),
            "t_supply_c": rc.t_from_k.to_numpy() - KELVIN,
            "t_return_c": rc.t_outlet_k.to_numpy() - KELVIN,
        }
    )
    frames = []
    for table in ("circ_pump_pressure", "circ_pump_mass"):
        if table in net and len(net[table]):
            r = net[f"res_{table}"]
            lift = r.p_to_bar.to_numpy() - r.p_from_bar.to_numpy()
            vdot = np.abs(r.vdot_m3_per_s.to_numpy())
            frames.append(
                pd.DataFrame(
                    {
                        "source_id": net[table].name.to_numpy(),
                        "q_supplied_kw": r.qext_w.to_numpy() / 1000,
                        "mdot_kg_per_s": np.abs(r.mdot_from_kg_per_s.to_numpy()),
                        "pump_lift_bar": lift,
                        "pump_power_kw": vdot * lift * 1e5 / 1000,
                    }
                )
            )
    sources = pd.concat(frames, ignore_index=True)
    held = hc.controlled_mdot_kg_per_s.to_numpy(dtype=float)
    set_mdot = pd.Series(held, index=hc.name.to_numpy())[~np.isnan(held)]
    sim = Simulation(pipes, junctions, consumers, sources, [] if converged else [*sources.source_id], set_mdot)
    if not converged:
        logger.info("pandapipes did not converge for the network of %s", ", ".join(sources.source_id))
        return sim
    eb = sim.energy_balance
    logger.info(
        "pandapipes solved: %.0f kW in, %.0f kW delivered, %.1f kW lost, balance residual %.1e",
        eb["q_sources_kw"],
        eb["q_consumers_kw"],
        eb["q_losses_kw"],
        eb["residual_relative"],
    )
    return sim


AMBIENT_PRESSURE_BAR = 1.01325
"""pandapipes' pressures are relative to the ambient (``p_abs = p_bar + ambient``), at sea level this."""

_IF97 = (
    0.11670521452767e4, -0.72421316703206e6, -0.17073846940092e2, 0.12020824702470e5, -0.32325550322333e7,
    0.14915108613530e2, -0.48232657361591e4, 0.40511340542057e6, -0.23855557567849, 0.65017534844798e3,
)  # fmt: skip


def saturation_pressure_bar(t_c: np.ndarray | float) -> np.ndarray:
    """Absolute pressure at which water boils at ``t_c`` (IAPWS-IF97, region 4; 0.01–373.9 °C).

    Examples
    --------
    >>> [round(float(saturation_pressure_bar(t)), 4) for t in (100.0, 120.0, 150.0)]
    [1.0142, 1.9867, 4.761]
    """
    n1, n2, n3, n4, n5, n6, n7, n8, n9, n10 = _IF97
    t_k = np.asarray(t_c, dtype=float) + KELVIN
    theta = t_k + n9 / (t_k - n10)
    a = theta**2 + n1 * theta + n2
    b = n3 * theta**2 + n4 * theta + n5
    c = n6 * theta**2 + n7 * theta + n8
    return (2 * c / (-b + np.sqrt(b**2 - 4 * a * c))) ** 4 * 10.0  # MPa → bar


@dataclass(frozen=True)
class Limits:
    """Limits checked after a simulation."""

    max_velocity_m_per_s: float
    max_pressure_gradient_pa_per_m: float
    min_consumer_dp_bar: float
    min_consumer_supply_c: float
    energy_balance_tolerance: float
    min_supply_c_by_consumer: dict[str, float] = field(default_factory=dict)


def service_at_own_peak(
    sim: Simulation,
    consumers: pd.DataFrame,
    pipes: pd.DataFrame,
    *,
    water: sizing.Water,
    roughness_m: float,
    t_return_c: float,
    lift_bar: np.ndarray | float = 0.0,
    local_loss_factor: float = 1.0,
) -> pd.DataFrame:
    """Each consumer's service pipe at the building's own peak flow, and the differential pressure left.

    The simulation models straight pipes; fittings, valves and bends add ``local_loss_factor − 1`` of the
    friction drop. Along a consumer's supply and return path the friction drop is ``lift − Δp``, so the
    differential pressure left with fittings is ``f · Δp − (f − 1) · lift`` (``f`` the factor, ``Δp`` the
    friction-only value at the building's own peak).

    Parameters
    ----------
    sim
        The design-case simulation (diversified loads).
    consumers
        ``consumer_id``, ``node``, ``peak_w`` (own peak).
    pipes
        The pipe table of the design (``edge_id``, ``to_node``, ``length_m``, ``d_inner_m``).
    water
        Water properties.
    roughness_m
        Pipe wall roughness.
    t_return_c
        Return temperature of the consumers.
    lift_bar
        Pump lift of each consumer's network.
    local_loss_factor
        Pressure drop of fittings as a factor on the friction drop (1: straight pipes only).

    Returns
    -------
    pandas.DataFrame
        Per consumer: ``consumer_id``, ``edge_id`` (its service pipe), ``mdot_kg_per_s``, ``v_m_per_s``,
        ``r_pa_per_m`` at its own peak, and ``dp_bar``: the simulated differential pressure less the extra
        drop of its supply and return service pipes at its own peak, with the fittings' share added.
    """
    sc = sim.consumers.set_index("consumer_id").reindex(consumers.consumer_id)
    service = pipes.set_index("to_node").reindex(consumers.node)
    d = service.d_inner_m.to_numpy()
    length = service.length_m.to_numpy()
    dt = np.maximum(sc.t_supply_c.to_numpy() - t_return_c, 1.0)
    own = consumers.peak_w.to_numpy() / (water.cp_j_per_kgk * dt)
    simulated = np.abs(sc.mdot_kg_per_s.to_numpy())
    props = {"rho": water.rho_kg_per_m3, "nu_m2_per_s": water.nu_m2_per_s, "roughness_m": roughness_m}
    v_own, r_own = sizing.pressure_gradient_pa_per_m(own, d, **props)
    _, r_sim = sizing.pressure_gradient_pa_per_m(simulated, d, **props)
    extra_bar = 2 * np.maximum(r_own - r_sim, 0.0) * length / 1e5
    return pd.DataFrame(
        {
            "consumer_id": consumers.consumer_id.to_numpy(),
            "edge_id": service.edge_id.to_numpy(),
            "mdot_kg_per_s": own,
            "v_m_per_s": v_own,
            "r_pa_per_m": r_own,
            "dp_bar": local_loss_factor * (sc.dp_bar.to_numpy() - extra_bar)
            - (local_loss_factor - 1) * np.asarray(lift_bar),
        }
    )


def check_simulation(
    sim: Simulation, limits: Limits, capacity_kw: pd.Series, service: pd.DataFrame | None = None
) -> pd.DataFrame:
    """List every violated check of a simulation.

    Parameters
    ----------
    sim
        A simulation.
    limits
        The limits.
    capacity_kw
        Capacity per source id.
    service
        Output of :func:`service_at_own_peak`: the service pipes' velocity and gradient and the consumers'
        differential pressure are then checked at each building's own peak (see the module docstring).

    Returns
    -------
    pandas.DataFrame
        One row per violation: ``check``, ``element`` (the pipe, consumer id, source id, junction or ``network``),
        ``value``, ``limit`` and ``edge_id`` (pipe checks only). Empty when every check holds. ``boiling``: a
        junction whose absolute pressure is below the saturation pressure of its water
        (:func:`saturation_pressure_bar`): the water there would boil.
    """
    columns = ["check", "element", "value", "limit", "edge_id"]
    # A network that did not converge has NaN results, which no comparison below flags.
    rows: list[tuple] = [("converged", f"network of source {sid}", 0.0, 1.0, None) for sid in sim.failed_sources]
    p, c = sim.pipes, sim.consumers
    if service is not None:
        p = p[~p.edge_id.isin(service.edge_id)]
        c = c.drop(columns="dp_bar").merge(service[["consumer_id", "dp_bar"]], on="consumer_id", how="left")
    for col, limit, name in (
        ("v_m_per_s", limits.max_velocity_m_per_s, "velocity"),
        ("r_pa_per_m", limits.max_pressure_gradient_pa_per_m, "pressure_gradient"),
    ):
        bad = p[p[col] > limit * (1 + 1e-9)]
        rows += [
            (name, f"{r.circuit} pipe of edge {r.edge_id}", float(getattr(r, col)), limit, int(r.edge_id))
            for r in row_tuples(bad)
        ]
        if service is not None:
            bad = service[service[col] > limit * (1 + 1e-9)]
            rows += [
                (
                    name,
                    f"service pipe of {r.consumer_id} at its own peak",
                    float(getattr(r, col)),
                    limit,
                    int(r.edge_id),
                )
                for r in row_tuples(bad)
            ]
    bad = c[c.dp_bar < limits.min_consumer_dp_bar]
    rows += [
        ("consumer_dp", str(r.consumer_id), float(r.dp_bar), limits.min_consumer_dp_bar, None) for r in row_tuples(bad)
    ]
    minimum = c.consumer_id.map(limits.min_supply_c_by_consumer).fillna(limits.min_consumer_supply_c)
    c = c.assign(min_supply_c=minimum.to_numpy())
    bad = c[c.t_supply_c < c.min_supply_c]
    rows += [
        ("consumer_supply_temperature", str(r.consumer_id), float(r.t_supply_c), float(r.min_supply_c), None)
        for r in row_tuples(bad)
    ]
    s = sim.sources.set_index("source_id")
    over = s.q_supplied_kw > capacity_kw.reindex(s.index) * (1 + 1e-9)
    rows += [
        ("source_capacity", str(sid), float(s.q_supplied_kw[sid]), float(capacity_kw[sid]), None)
        for sid in s.index[over]
    ]
    j = sim.junctions.dropna(subset=["p_bar", "t_c"])
    p_abs = j.p_bar.to_numpy() + AMBIENT_PRESSURE_BAR
    p_sat = saturation_pressure_bar(j.t_c.to_numpy())
    boils = p_abs < p_sat
    rows += [
        ("boiling", f"{circuit} junction at node {node}", float(pa), float(ps), None)
        for circuit, node, pa, ps in zip(j.circuit[boils], j.node[boils], p_abs[boils], p_sat[boils], strict=True)
    ]
    eb = sim.energy_balance
    tolerance = limits.energy_balance_tolerance
    if eb["q_sources_kw"] > 0 and not eb["residual_relative"] <= tolerance:
        rows.append(("energy_balance", "network", eb["residual_relative"], tolerance, None))
    out = pd.DataFrame(rows, columns=columns).astype({"edge_id": "Int64"})
    logger.info("Checks: %d violations", len(out))
    return out


_FORKED: dict[str, Any] = {}
"""What the networks solved in forked processes share, set before the fork (inherited, never pickled)."""


def solve_networks(
    design: NetworkDesign,
    trees: Iterable[int],
    conditions: Conditions,
    *,
    processes: int = 1,
    adjust: Adjust | None = None,
) -> dict[int, Simulation]:
    """Build and solve the networks ``trees`` of a design (:func:`build_net`, :func:`run_net`), each on its own.

    The networks of separate sources share nothing, so with ``processes`` above 1 and a design of at least
    :data:`heatmap.io.forked.MIN_PIPES` pipes they are solved at once in processes forked from this one, the networks
    dealt out by size (the design inherited, not copied; each solved network sent back). The
    results are those of solving them one after the other. Processes are not used where a fork is not safe
    (:func:`heatmap.io.forked.why_not_fork`: no ``fork``, a daemonic process such as a Dask worker, a heatmap
    thread running).

    Parameters
    ----------
    design
        The whole design.
    trees
        The networks to solve.
    conditions
        Temperatures, pressures and pump lifts.
    processes
        Processes at most.
    adjust
        Changes each net from its directly solved steady state before pandapipes solves it (:func:`run_net`).

    Returns
    -------
    dict
        Network → its simulation.
    """
    trees = sorted(trees)
    why_not = _why_not_fork(len(design.pipes), len(trees), processes)
    if why_not:
        logger.debug("Networks one after the other: %s", why_not)
        return {tr: _solve_one(design, tr, conditions, adjust) for tr in trees}
    size = design.pipes.tree.value_counts().reindex(trees, fill_value=0)
    batches = forked.deal_out(dict(zip(trees, size.to_numpy(dtype=float).tolist(), strict=True)), processes)
    _FORKED.update(design=design, conditions=conditions, adjust=adjust)
    try:
        with forked.process_pool(len(batches)) as pool:
            solved = [sim for part in pool.map(_solve_in_child, batches) for sim in part.items()]
    finally:
        _FORKED.clear()
    logger.info("Solved %d networks in %d processes", len(trees), len(batches))
    return dict(sorted(solved))


def _solve_one(design: NetworkDesign, tree: int, conditions: Conditions, adjust: Adjust | None) -> Simulation:
    part = design.network(tree)
    return run_net(build_net(part, conditions), part, adjust=adjust)


def _solve_in_child(trees: list[int]) -> dict[int, Simulation]:
    """Solve networks in a forked process (:func:`solve_networks`)."""
    f = _FORKED
    return {tr: _solve_one(f["design"], tr, f["conditions"], f["adjust"]) for tr in trees}


def _why_not_fork(pipes: int, networks: int, processes: int) -> str:
    """Return why networks cannot be solved in forked processes ('' where they can)."""
    if processes <= 1 or networks <= 1:
        return "one process or one network"
    if pipes < forked.MIN_PIPES:
        return f"{pipes:,} pipes, fewer than {forked.MIN_PIPES:,}"
    return forked.why_not_fork()


def combine(simulations: list[Simulation]) -> Simulation:
    """Join the simulations of separate networks into one."""
    tables = {
        name: pd.concat([getattr(sim, name) for sim in simulations], ignore_index=True)
        for name in ("pipes", "junctions", "consumers", "sources")
    }
    return Simulation(
        **tables,
        failed_sources=[sid for sim in simulations for sid in sim.failed_sources],
        set_mdot_kg_per_s=pd.concat([pd.Series(dtype=float), *(sim.set_mdot_kg_per_s for sim in simulations)]),
    )


def with_pump_lift(sim: Simulation, delta_bar: float) -> Simulation:
    """Return a network's converged simulation as it is with its pump lift raised by ``delta_bar`` (lowered if < 0).

    Water here is incompressible, its properties depend on its temperature alone, and every consumer's flow is set
    by its load (or a set mass flow): raising the lift of the network's pressure-holding pump raises the pressure of
    every supply junction by ``delta_bar`` and changes nothing else, neither a flow nor a temperature nor a
    return-side pressure. So the solution is shifted instead of solved again (``tests/test_hydraulics.py``: equal
    to pandapipes solving the network at the new lift, to the last bit on the bundled plan). Each pump's lift rises
    by ``delta_bar`` (its outlet lies on the supply side, its inlet on the return side) and its hydraulic power with it.
    """
    junctions = sim.junctions.copy()
    junctions["p_bar"] = junctions.p_bar + np.where(junctions.circuit == "supply", delta_bar, 0.0)
    consumers = sim.consumers.assign(dp_bar=sim.consumers.dp_bar + delta_bar)
    lift = sim.sources.pump_lift_bar.to_numpy()
    new = lift + delta_bar
    power = sim.sources.pump_power_kw.to_numpy()
    sources = sim.sources.assign(
        pump_lift_bar=new, pump_power_kw=np.divide(power * new, lift, out=np.zeros_like(power), where=lift != 0)
    )
    return Simulation(sim.pipes, junctions, consumers, sources, list(sim.failed_sources), sim.set_mdot_kg_per_s)


def simulate(design: NetworkDesign, cond: Conditions) -> Simulation:
    """Build and solve the network (see :func:`build_net` and :func:`run_net`)."""
    if len(design.pipes) == 0:
        raise HydraulicError("the routed network has no pipes to simulate")
    return run_net(build_net(design, cond), design)


@dataclass(frozen=True)
class ResizeRules:
    """How the simulate–check–resize rounds may change the design."""

    max_rounds: int
    max_lift_bar: float
    lift_margin_bar: float


@dataclass(frozen=True)
class DesignCase:
    """The design case as finally simulated.

    Attributes
    ----------
    simulation : Simulation
        The last simulation of every network.
    violations : pandas.DataFrame
        What still fails (see :func:`check_simulation`); empty when every check holds.
    rounds : list of dict
        Per round: networks simulated, violations, pump lifts, checks failed.
    edges : pandas.DataFrame
        The sized tree edges with their final ``dn``.
    pump_lift_bar : dict
        Final pump lift per network.
    service : pandas.DataFrame
        Service pipes and consumers at each building's own peak (:func:`service_at_own_peak`).
    """

    simulation: Simulation
    violations: pd.DataFrame
    rounds: list[dict]
    edges: pd.DataFrame
    pump_lift_bar: dict[int, float]
    service: pd.DataFrame


def pipe_table(edges: pd.DataFrame, catalogue: pd.DataFrame) -> pd.DataFrame:
    """Turn sized tree edges into the pipe table of a :class:`NetworkDesign` (dimensions from the catalogue)."""
    cat = catalogue.reindex(edges.dn)
    return pd.DataFrame(
        {
            "edge_id": edges.edge_id.to_numpy(),
            "from_node": edges.from_node.to_numpy(),
            "to_node": edges.to_node.to_numpy(),
            "length_m": edges.length_m.to_numpy(),
            "dn": edges.dn.to_numpy(),
            "d_inner_m": cat.d_inner_m.to_numpy(),
            "d_outer_m": cat.d_outer_m.to_numpy(),
            "u_w_per_mk": cat.u_w_per_mk.to_numpy(),
            "tree": edges.tree.to_numpy(),
        }
    )


def design_case(
    edges: pd.DataFrame,
    consumers: pd.DataFrame,
    sources: pd.DataFrame,
    node_xy: pd.DataFrame,
    *,
    catalogue: pd.DataFrame,
    conditions: Conditions,
    limits: Limits,
    rules: ResizeRules,
    water: sizing.Water,
    timed: Callable[[str], AbstractContextManager] = lambda name: nullcontext(),
    processes: int = 1,
) -> DesignCase:
    """Simulate the design case, resize until every check holds (or the rounds run out), then trim pump lifts.

    Each round solves only the networks whose sizes or pump lift changed. After a round with violations:
    a network that did not converge gets 1.5× its pump lift; otherwise pipes breaking a velocity or gradient
    limit go one size up, the pump lift rises for consumers short of differential pressure, and where the
    largest lift is not enough the steepest pipes on their paths go one size up. Finally each converged
    network's pump lift is lowered to the least that keeps its critical consumer at the minimum differential
    pressure plus ``rules.lift_margin_bar`` and solved once more.

    Parameters
    ----------
    edges
        Sized tree edges (:attr:`heatmap.network.sizing.SizedNetwork.edges`).
    consumers
        ``consumer_id``, ``node``, ``tree``, ``q_design_w`` (simulated load) and ``peak_w`` (own peak).
    sources
        ``source_id``, ``node``, ``t_supply_c``, ``capacity_kw``, ``tree``.
    node_xy
        ``x``, ``y`` per node.
    catalogue
        The pipe catalogue.
    conditions
        Temperatures, pressures, roughness and the first pump lift per network.
    limits
        The checks' limits.
    rules
        Rounds and pump-lift bounds.
    water
        Water properties (for the service pipes at their own peak).
    timed
        Context-manager factory timing the named sub-stages (``pandapipes solve``: build and solve; ``checks``).
    processes
        Networks solved at once in forked processes at most (:func:`solve_networks`).

    Returns
    -------
    DesignCase
    """
    lift = dict(conditions.pump_lift_bar)
    dns = catalogue.index.to_numpy()
    capacity_kw = sources.set_index("source_id").capacity_kw
    rounds: list[dict] = []
    sims: dict[int, Simulation] = {}

    def solve(
        stale: set[int], label: str, lifted: Mapping[int, float] | None = None
    ) -> tuple[Simulation, pd.DataFrame, pd.DataFrame]:
        """Solve the networks ``stale`` again, shift those ``lifted`` to their new pump lift, check them all."""
        design = NetworkDesign(pipe_table(edges, catalogue), consumers, sources, node_xy)
        cond = dataclasses.replace(conditions, pump_lift_bar=dict(lift))
        with timed("pandapipes solve"):  # build and solve (at once in processes: one time)
            sims.update(solve_networks(design, stale, cond, processes=processes))
        for tr, d in (lifted or {}).items():
            sims[tr] = with_pump_lift(sims[tr], d)
        with timed("checks"):
            sim = combine([sims[tr] for tr in sorted(sims)])
            service = service_at_own_peak(
                sim,
                consumers,
                design.pipes,
                water=water,
                roughness_m=conditions.roughness_mm / 1000,
                t_return_c=conditions.t_return_c,
                lift_bar=consumers.tree.map(lift).to_numpy(dtype=float),
                local_loss_factor=conditions.local_loss_factor,
            )
            violations = check_simulation(sim, limits, capacity_kw, service)
        rounds.append(
            {
                "round": len(rounds),
                "action": label,
                "networks_simulated": len(stale),
                "violations": len(violations),
                "pump_lift_bar": {int(k): round(v, 4) for k, v in lift.items()},
                "checks_failed": sorted(set(violations.check)),
            }
        )
        return sim, service, violations

    stale = set(lift)  # networks to (re)simulate: all at first, then those whose sizes or pump lift changed
    label = "design"
    for round_no in range(rules.max_rounds + 1):
        sim, service, violations = solve(stale, label)
        if violations.empty or round_no == rules.max_rounds:
            break
        before_dn, before_lift = edges.dn.to_numpy().copy(), dict(lift)
        failed = [tr for tr, s in sims.items() if not s.converged]
        for tr in failed:  # a network that did not converge first gets more pump lift
            lift[tr] = min(lift[tr] * 1.5, rules.max_lift_bar)
        if not failed:
            edges = _resize(edges, sim, service, violations, consumers, lift, dns, limits, rules)
        stale = set(edges.tree[edges.dn.to_numpy() != before_dn]) | {k for k in lift if lift[k] != before_lift[k]}
        label = "resize"
        if not stale:
            break

    # Trim: Δp at every consumer of a network moves one for one with its pump lift (the flows are set by the
    # loads), so the lift can drop by the critical consumer's spare Δp above the minimum plus the margin.
    spare = (service.dp_bar - limits.min_consumer_dp_bar).groupby(consumers.tree.to_numpy()).min()
    trim = {
        tr: min(float(s) - rules.lift_margin_bar, lift[tr] - 0.01)
        for tr, s in zip(spare.index.tolist(), spare.tolist(), strict=True)
        if sims[tr].converged and float(s) - rules.lift_margin_bar > 1e-3
    }
    if trim:
        for tr, d in trim.items():
            lift[tr] -= d
        sim, service, violations = solve(set(), "pump lift trimmed", {tr: -d for tr, d in trim.items()})
    logger.info(
        "Design case: %d round(s), %d violations, pump lifts %s bar",
        len(rounds),
        len(violations),
        ", ".join(f"{v:.2f}" for _, v in sorted(lift.items())),
    )
    return DesignCase(sim, violations, rounds, edges, dict(lift), service)


def _resize(
    edges: pd.DataFrame,
    sim: Simulation,
    service: pd.DataFrame,
    violations: pd.DataFrame,
    consumers: pd.DataFrame,
    lift: dict[int, float],
    dns: np.ndarray,
    limits: Limits,
    rules: ResizeRules,
) -> pd.DataFrame:
    """One resize step: offending pipes one size up; pump lift raised for consumers short of pressure.

    Where the largest lift is not enough, the steepest pipes on the paths to those consumers go one size up.
    ``lift`` is updated in place; the edges with their new sizes are returned.
    """
    dn = edges.dn.to_numpy().copy()
    up = edges.edge_id.isin(violations.edge_id.dropna()).to_numpy() & (dn < dns[-1])
    low_dp = service[service.dp_bar < limits.min_consumer_dp_bar]
    if len(low_dp):
        low = consumers.set_index("consumer_id").reindex(low_dp.consumer_id)
        deficit = pd.Series(limits.min_consumer_dp_bar - low_dp.dp_bar.to_numpy(), index=low.tree.to_numpy())
        capped = []
        most = deficit.groupby(level=0).max()
        for tr, d in zip(most.index.tolist(), most.tolist(), strict=True):
            wanted = lift[tr] + d + rules.lift_margin_bar
            if wanted > rules.max_lift_bar:
                capped.append(tr)
            lift[tr] = min(wanted, rules.max_lift_bar)
        starved = low.node[low.tree.isin(capped)].to_numpy()
        if len(starved):
            supply = sim.pipes[sim.pipes.circuit == "supply"].set_index("edge_id")
            r = supply.r_pa_per_m.reindex(edges.edge_id).to_numpy()
            up |= sizing.steepest_on_paths(edges, r, pd.Index(edges.to_node).get_indexer(starved), dn, dns)
    dn[up] = sizing.next_size(dn[up], dns)
    return edges.assign(dn=dn)
