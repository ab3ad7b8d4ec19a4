"""Pipe sizing from the EN 253 catalogue: smallest DN keeping velocity and pressure gradient within limits.

Each tree edge carries the design heat flow of the consumers downstream of it, ``Q = GLF(n) · Σ peak``,
with the simultaneity factor ``GLF`` of the ``n`` consumers downstream (1 for a single consumer: a service
pipe is sized for its building's own peak). The design mass flow is ``ṁ = Q / (c_p · (T_supply − T_return))``
with the supply temperature of the edge's own source. For each DN the velocity ``v = ṁ / (ρ A)`` and the
friction pressure gradient ``R = λ / d · ρ v² / 2`` (Darcy–Weisbach, ``λ`` from Colebrook–White) are
computed at the mean network temperature; the smallest DN with ``v ≤ v_max · (1 − m)`` and
``R ≤ R_max · (1 − m)`` is chosen (``m`` is the scenario's ``network.sizing_margin``). Supply and return
pipes of an edge get the same DN.

:func:`design_network` makes two refinements before any simulation:

- **Heat losses.** The supply water cools on its way (:func:`supply_temperature_c`), so a consumer needs
  more flow for its load: pipes are sized a second time with each consumer's flow scaled by
  ``(T_supply − T_return) / (T_at_consumer − T_return)``.
- **Pump lift.** Where a network's longest path needs more lift than the largest allowed, the steepest pipes
  on the paths that fall short go up one size until it fits (:func:`fit_pump_lift`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from heatmap._errors import ScenarioError
from heatmap.io.tables import csv_file_lines
from heatmap.network import routing

logger = logging.getLogger(__name__)

WINTER_GLF = (0.449677646267461, 0.551234688, 53.84382392, 1.762743268)
"""Coefficients a, b, c, d of Winter et al. (2001): GLF(n) = a + b / (1 + (n / c)^d)."""


@dataclass(frozen=True)
class Water:
    """Water properties at the mean network temperature."""

    rho_kg_per_m3: float
    nu_m2_per_s: float
    cp_j_per_kgk: float


def water_properties(t_supply_c: float, t_return_c: float) -> Water:
    """Water properties at the mean of supply and return temperature, from pandapipes' fluid library."""
    import pandapipes as pp

    fluid = pp.call_lib("water")
    t_k = (t_supply_c + t_return_c) / 2 + 273.15
    rho = float(fluid.get_density(t_k))
    return Water(rho, float(fluid.get_viscosity(t_k)) / rho, float(fluid.get_heat_capacity(t_k)))


@dataclass(frozen=True)
class PumpLiftRule:
    """How a pump lift follows from the path pressure drops.

    ``lift = 2 · local_loss_factor · path drop + min_consumer_dp_bar + margin_bar`` (supply and return path).
    """

    min_consumer_dp_bar: float
    local_loss_factor: float
    margin_bar: float
    min_lift_bar: float
    max_lift_bar: float


@dataclass(frozen=True)
class SizedNetwork:
    """The routed tree with sizes, design flows and pump lifts.

    Attributes
    ----------
    edges : pandas.DataFrame
        The tree edges (``edge_id``, ``from_node``, ``to_node``, ``depth``, ``tree``, ``length_m``, ``kind``)
        with ``dn``, ``t_supply_c`` (of the edge's source), ``design_load_kw``, ``n_consumers_downstream`` and
        ``mdot_design_kg_per_s``.
    pump_lift_bar : dict
        Tree index → pump lift of its source.
    """

    edges: pd.DataFrame
    pump_lift_bar: dict[int, float]


def load_catalogue(path: Path, *, insulation_series: int, cost_column: str) -> pd.DataFrame:
    """Read the EN 253 pipe catalogue.

    Parameters
    ----------
    path
        CSV with ``dn``, ``d_inner_mm``, ``d_outer_steel_mm``, ``u_w_per_mk_series<k>`` and cost columns.
    insulation_series
        Insulation series 1, 2 or 3 (heat-loss coefficient column).
    cost_column
        Column with the trench cost per metre of route.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``dn`` (ascending), columns ``d_inner_m``, ``d_outer_m``, ``u_w_per_mk``,
        ``cost_eur_per_m``; DNs whose cell of the chosen series or cost is empty (not offered) are left out and
        named in the log. A cell that holds anything but a number (``n/a``, ``-``, ``cheap``) is refused naming
        the line, the DN and the column: it is never taken for an empty one.
    """
    path = Path(path)
    if not path.is_file():
        kind = "is a folder, not a file" if path.is_dir() else "not found"
        raise ScenarioError(f"pipe catalogue {path} {kind}; check 'network.catalogue'")
    try:
        cat = pd.read_csv(path, comment="#", keep_default_na=False, na_values=[""])  # "n/a" is text, not empty
    except pd.errors.EmptyDataError:
        raise ScenarioError(f"pipe catalogue {path} is empty; it needs a header and one row per DN") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"pipe catalogue {path} is not a readable CSV file ({exc})") from exc
    u_col = f"u_w_per_mk_series{insulation_series}"
    for col in ("dn", "d_inner_mm", "d_outer_steel_mm", u_col, cost_column):
        if col not in cat.columns:
            raise ScenarioError(f"pipe catalogue {path} has no column '{col}' (columns: {', '.join(cat.columns)})")
    lines = pd.Series(csv_file_lines(path, len(cat)), index=cat.index)
    values = {}
    for col, required, positive in (
        ("dn", True, True),
        ("d_inner_mm", True, True),
        ("d_outer_steel_mm", True, True),
        (u_col, False, True),
        (cost_column, False, False),
    ):
        raw = cat[col]
        if raw.dtype == object:  # a cell of blanks is an empty one
            raw = raw.where(raw.astype(str).str.strip() != "")
        v = pd.to_numeric(raw, errors="coerce")
        problems = {
            "is not a number": v.isna() & raw.notna(),
            "is empty": v.isna() & raw.isna() if required else v.isna() & False,
            "is not finite": np.isinf(v),
            "must be positive" if positive else "must not be negative": v <= 0 if positive else v < 0,
        }
        for what, bad in problems.items():
            if bad.any():
                rows = ", ".join(map(str, lines[bad].tolist()[:10]))
                got = raw[bad].iloc[0]
                got = repr(got) if isinstance(got, str) else f"{got:g}"
                dns = "" if col == "dn" else f" for DN {', '.join(map(str, cat.dn[bad].tolist()[:10]))}"
                fix = "; give a number, or leave the cell empty where the DN is not offered"
                raise ScenarioError(
                    f"pipe catalogue {path}, line{'s' if bad.sum() > 1 else ''} {rows}: '{col}' {what} (got {got})"
                    f"{dns}{fix if what == 'is not a number' and not required else ''}"
                )
        values[col] = v
    if values["dn"].duplicated().any():
        dup = values["dn"][values["dn"].duplicated(keep=False)]
        raise ScenarioError(f"pipe catalogue {path}, lines {', '.join(map(str, lines[dup.index]))}: DN given twice")
    thick = values["d_inner_mm"] >= values["d_outer_steel_mm"]
    if thick.any():
        raise ScenarioError(
            f"pipe catalogue {path}, line {lines[thick].iloc[0]}: 'd_inner_mm' must be below 'd_outer_steel_mm'"
        )
    cat = cat.assign(**values)
    for col in (u_col, cost_column):
        empty = cat[col].isna()
        if empty.any():
            logger.info(
                "Pipe catalogue %s: DN %s left out (no '%s': not offered)",
                path, ", ".join(map(str, cat.dn[empty].astype(int))), col,
            )  # fmt: skip
    cat = cat.dropna(subset=[u_col, cost_column]).sort_values("dn")
    if cat.empty:
        raise ScenarioError(f"pipe catalogue {path}: no DN has both '{u_col}' and '{cost_column}'")
    out = pd.DataFrame(
        {
            "d_inner_m": cat.d_inner_mm.to_numpy() / 1000,
            "d_outer_m": cat.d_outer_steel_mm.to_numpy() / 1000,
            "u_w_per_mk": cat[u_col].to_numpy(),
            "cost_eur_per_m": cat[cost_column].to_numpy(),
        },
        index=pd.Index(cat.dn.astype(int).to_numpy(), name="dn"),
    )
    logger.info(
        "Pipe catalogue: %d sizes DN%d–DN%d, series %d, cost '%s'",
        len(out),
        out.index[0],
        out.index[-1],
        insulation_series,
        cost_column,
    )
    return out


def simultaneity_factor(n: np.ndarray | int, rule: str) -> np.ndarray:
    """Simultaneity (diversity) factor of ``n`` consumers' peak loads.

    Parameters
    ----------
    n
        Number of consumers downstream (≥ 1).
    rule
        ``winter`` (Winter et al. 2001, fitted for 1 < n < 200, held at its value for larger n),
        ``thermos`` (``0.62 + 0.38 / n``) or ``none`` (1).

    Returns
    -------
    numpy.ndarray
        Factors in (0, 1]; 1 for a single consumer.

    Examples
    --------
    >>> float(simultaneity_factor(1, "winter"))
    1.0
    >>> round(float(simultaneity_factor(10, "thermos")), 3)
    0.658
    """
    n = np.maximum(np.asarray(n, dtype=float), 1.0)
    f: np.ndarray | float
    if rule == "none":
        f = np.ones_like(n)
    elif rule == "thermos":
        f = 0.62 + 0.38 / n
    elif rule == "winter":
        a, b, c, d = WINTER_GLF
        f = a + b / (1.0 + (np.minimum(n, 200.0) / c) ** d)
    else:
        raise ScenarioError(f"unknown simultaneity rule {rule!r}")
    return np.where(n <= 1.0, 1.0, np.minimum(f, 1.0))


def colebrook_friction_factor(reynolds: np.ndarray, relative_roughness: np.ndarray) -> np.ndarray:
    """Darcy friction factor from the Colebrook–White equation (laminar ``64/Re`` below Re 2300).

    Solves ``1/√λ = −2 log10(ε/(3.7 d) + 2.51/(Re √λ))`` by fixed-point iteration to 1e-10.

    Parameters
    ----------
    reynolds
        Reynolds numbers.
    relative_roughness
        Roughness over inner diameter, ``k / d``.

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> round(float(colebrook_friction_factor(1e5, 0.0)), 4)
    0.018
    """
    re = np.maximum(np.asarray(reynolds, dtype=float), 1e-9)
    eps = np.broadcast_to(np.asarray(relative_roughness, dtype=float), re.shape)
    turbulent = np.maximum(re, 2300.0)  # the iteration diverges at a creeping flow, whose λ is laminar anyway
    x = np.full(re.shape, 8.0)  # x = 1/sqrt(lambda)
    for _ in range(100):
        x_new = -2.0 * np.log10(eps / 3.7 + 2.51 * x / turbulent)
        if np.all(np.abs(x_new - x) < 1e-10):
            x = x_new
            break
        x = x_new
    return np.where(re < 2300.0, 64.0 / re, 1.0 / x**2)


def pressure_gradient_pa_per_m(
    mdot_kg_per_s: np.ndarray, d_inner_m: np.ndarray, *, rho: float, nu_m2_per_s: float, roughness_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """Velocity and Darcy–Weisbach friction gradient for mass flows through pipes.

    Returns
    -------
    tuple of numpy.ndarray
        ``(v_m_per_s, r_pa_per_m)``, broadcast over the inputs.
    """
    area = np.pi * d_inner_m**2 / 4.0
    v = np.abs(mdot_kg_per_s) / (rho * area)
    lam = colebrook_friction_factor(v * d_inner_m / nu_m2_per_s, roughness_m / d_inner_m)
    return v, lam / d_inner_m * rho * v**2 / 2.0


def size_pipes(
    mdot_kg_per_s: np.ndarray,
    catalogue: pd.DataFrame,
    *,
    rho: float,
    nu_m2_per_s: float,
    roughness_m: float,
    max_velocity_m_per_s: float,
    max_pressure_gradient_pa_per_m: float,
) -> np.ndarray:
    """Choose the smallest catalogue DN meeting both limits for each design mass flow.

    Parameters
    ----------
    mdot_kg_per_s
        Design mass flow per pipe.
    catalogue
        Output of :func:`load_catalogue`.
    rho, nu_m2_per_s
        Density and kinematic viscosity of the water.
    roughness_m
        Wall roughness.
    max_velocity_m_per_s, max_pressure_gradient_pa_per_m
        The limits.

    Returns
    -------
    numpy.ndarray
        DN per pipe; the largest DN where no size meets the limits (the checks report it).
    """
    m = np.asarray(mdot_kg_per_s, dtype=float)[:, None]
    d = catalogue.d_inner_m.to_numpy()[None, :]
    v, r = pressure_gradient_pa_per_m(m, d, rho=rho, nu_m2_per_s=nu_m2_per_s, roughness_m=roughness_m)
    ok = (v <= max_velocity_m_per_s) & (r <= max_pressure_gradient_pa_per_m)
    first = np.where(ok.any(axis=1), ok.argmax(axis=1), len(catalogue) - 1)
    dn = catalogue.index.to_numpy()[first]
    logger.info(
        "Sized %d pipes: DN%d–DN%d, %d beyond the largest size",
        len(dn),
        dn.min() if len(dn) else 0,
        dn.max() if len(dn) else 0,
        int((~ok.any(axis=1)).sum()),
    )
    return dn


def supply_temperature_c(
    edges: pd.DataFrame,
    mdot_kg_per_s: np.ndarray,
    u_w_per_mk: np.ndarray,
    *,
    t_supply_c: float | np.ndarray,
    t_ground_c: float,
    cp_j_per_kgk: float,
) -> np.ndarray:
    """Supply temperature at each tree edge's downstream end, cooling exponentially along the path.

    Along a pipe of length ``L`` the water cools towards the ground: ``T_out = T_g + (T_in − T_g) ·
    exp(−U' L / (ṁ c_p))``; along a path the exponents add up.

    Parameters
    ----------
    edges
        Oriented tree edges with ``from_node``, ``to_node``, ``depth`` and ``length_m``.
    mdot_kg_per_s
        Mass flow per edge.
    u_w_per_mk
        Heat-loss coefficient per metre of supply pipe.
    t_supply_c, t_ground_c
        Temperature leaving the source (one, or per edge: its source's) and of the ground.
    cp_j_per_kgk
        Heat capacity of the water.

    Returns
    -------
    numpy.ndarray
    """
    mdot = np.maximum(np.asarray(mdot_kg_per_s, dtype=float), 1e-9)
    exponent = routing.path_totals(edges, u_w_per_mk * edges.length_m.to_numpy() / (mdot * cp_j_per_kgk))
    return t_ground_c + (t_supply_c - t_ground_c) * np.exp(-exponent)


def steepest_on_paths(
    edges: pd.DataFrame, r_pa_per_m: np.ndarray, ends: np.ndarray, dn: np.ndarray, dns: np.ndarray
) -> np.ndarray:
    """Mark the pipes worth widening to bring more pressure to the ``ends`` (edge positions).

    These are the pipes on the paths from the sources to the ends whose pressure gradient is at least half
    the steepest on those paths, and that are not yet the largest catalogue size ``dns[-1]``.
    """
    on_path = routing.upstream_mask(edges, ends)
    return on_path & (r_pa_per_m >= 0.5 * r_pa_per_m[on_path].max()) & (dn < dns[-1])


def next_size(dn: np.ndarray, dns: np.ndarray) -> np.ndarray:
    """Return the catalogue size one step up from each ``dn`` (each below the largest, ``dns[-1]``)."""
    return dns[np.searchsorted(dns, dn) + 1]


def pump_lift_bar(path_dp_bar: np.ndarray, rule: PumpLiftRule) -> np.ndarray:
    """Pump lift a network needs: supply and return path drop (with fittings) + the consumer minimum + margin."""
    return 2 * rule.local_loss_factor * np.asarray(path_dp_bar) + rule.min_consumer_dp_bar + rule.margin_bar


def fit_pump_lift(
    edges: pd.DataFrame,
    mdot_kg_per_s: np.ndarray,
    catalogue: pd.DataFrame,
    *,
    rho: float,
    nu_m2_per_s: float,
    roughness_m: float,
    rule: PumpLiftRule,
    max_steps: int = 40,
) -> tuple[np.ndarray, dict[int, float]]:
    """Upsize pipes on critical paths until each network's pump lift is within the largest allowed.

    The lift a network needs is :func:`pump_lift_bar` of its longest path pressure drop at design flow. Where it
    exceeds ``rule.max_lift_bar``, every pipe on a path to a consumer that the largest lift cannot serve, whose
    pressure gradient is at least half the largest gradient on those paths, goes up one catalogue size; this
    repeats (cheap: no simulation) until the lift fits, nothing can grow, or ``max_steps`` is reached.

    Parameters
    ----------
    edges
        Oriented tree edges with ``from_node``, ``to_node``, ``depth``, ``tree``, ``length_m`` and ``dn``.
    mdot_kg_per_s
        Design mass flow per edge.
    catalogue
        Output of :func:`load_catalogue`.
    rho, nu_m2_per_s, roughness_m
        Water properties and wall roughness, as for :func:`size_pipes`.
    rule
        How the lift follows from the path drops, and its bounds.
    max_steps
        Upsizing steps at most.

    Returns
    -------
    tuple
        ``(dn, lift_bar)``: DN per edge and pump lift per tree index.
    """
    dns = catalogue.index.to_numpy()
    dn = edges.dn.to_numpy().copy()
    tree = edges.tree.to_numpy()
    length = edges.length_m.to_numpy()
    headroom_bar = (rule.max_lift_bar - rule.min_consumer_dp_bar - rule.margin_bar) / (2 * rule.local_loss_factor)
    upsized = 0
    for _ in range(max_steps + 1):
        _, r = pressure_gradient_pa_per_m(
            mdot_kg_per_s,
            catalogue.d_inner_m.reindex(dn).to_numpy(),
            rho=rho,
            nu_m2_per_s=nu_m2_per_s,
            roughness_m=roughness_m,
        )
        path_dp = routing.path_totals(edges, r * length / 1e5)
        too_far = np.flatnonzero(path_dp > headroom_bar)
        if not len(too_far) or headroom_bar <= 0:  # fits, or no pipe size can help
            break
        grow = steepest_on_paths(edges, r, too_far, dn, dns)
        if not grow.any():
            break
        dn[grow] = next_size(dn[grow], dns)
        upsized += int(grow.sum())
    need = pd.Series(pump_lift_bar(path_dp, rule)).groupby(tree).max()
    lift = {
        int(t): float(np.clip(v, rule.min_lift_bar, rule.max_lift_bar))
        for t, v in zip(need.index.to_numpy(), need.to_numpy(), strict=True)
    }
    logger.info(
        "Pump lifts %.2f–%.2f bar for %d network(s); %d pipe size steps up on critical paths",
        min(lift.values(), default=0.0),
        max(lift.values(), default=0.0),
        len(lift),
        upsized,
    )
    return dn, lift


def design_network(
    tree_edges: pd.DataFrame,
    node_load_kw: pd.Series,
    t_supply_c_by_tree: dict[int, float],
    *,
    catalogue: pd.DataFrame,
    water: Water,
    t_return_c: float,
    t_ground_c: float,
    simultaneity: str,
    max_velocity_m_per_s: float,
    max_pressure_gradient_pa_per_m: float,
    roughness_m: float,
    lift_rule: PumpLiftRule,
    feed_in_kw: pd.Series | None = None,
    hour_cases: Sequence[tuple[pd.Series, pd.Series]] = (),
) -> SizedNetwork:
    """Size every pipe of the routed tree and set each source's pump lift, before any simulation.

    Parameters
    ----------
    tree_edges
        Oriented tree edges with ``edge_id``, ``from_node``, ``to_node``, ``depth``, ``tree``, ``length_m`` and
        ``kind``; ``existing_dn`` where a pipe lies already (a pipe is never sized below it: where it carries the
        load it stays, else the larger DN replaces it).
    node_load_kw
        Peak load per consumer node.
    t_supply_c_by_tree
        Supply temperature leaving the source of each tree.
    catalogue
        Output of :func:`load_catalogue`.
    water
        Water properties (:func:`water_properties`).
    t_return_c, t_ground_c
        Return temperature at the consumers, ground temperature.
    simultaneity
        Simultaneity rule (:func:`simultaneity_factor`).
    max_velocity_m_per_s, max_pressure_gradient_pa_per_m
        The limits sizing aims for (the scenario's limits less its sizing margin).
    roughness_m
        Pipe wall roughness.
    lift_rule
        How pump lifts follow from path pressure drops.
    feed_in_kw
        Heat fed in at the design peak by the sources of a shared network other than its root, per node:
        an edge then carries the diversified load downstream of it less the heat fed in downstream of it
        (sized for the magnitude; the flow runs towards the root where the feed-ins exceed the load).
    hour_cases
        Hours of operation, each as (load per consumer node, heat fed in per node by the sources and prosumers
        that feed in that hour, as the heat carrying their flow at the network's temperature difference); hourly
        loads are means of many buildings already, so no simultaneity applies. Each pipe is then sized for the
        largest of the design case and these hours: the load downstream of it less the heat fed in downstream.

    Returns
    -------
    SizedNetwork
    """
    edges = tree_edges.reset_index(drop=True).copy()
    t_supply = edges.tree.map(t_supply_c_by_tree).to_numpy(dtype=float)
    hydraulic: dict[str, Any] = {
        "rho": water.rho_kg_per_m3,
        "nu_m2_per_s": water.nu_m2_per_s,
        "roughness_m": roughness_m,
    }

    floor = edges["existing_dn"].fillna(0).to_numpy(int) if "existing_dn" in edges else np.zeros(len(edges), int)
    fed = np.zeros(len(edges))
    if feed_in_kw is not None and len(feed_in_kw):
        fed = routing.downstream_totals(edges, feed_in_kw).peak_load_kw.to_numpy()

    def size(flow_factor: np.ndarray) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
        down = routing.downstream_totals(edges, node_load_kw * flow_factor)
        glf = simultaneity_factor(down.n_consumers.to_numpy(), simultaneity)
        heat_kw = np.abs(glf * down.peak_load_kw.to_numpy() - fed)
        for load, feed in hour_cases:
            drawn = routing.downstream_totals(edges, load.reindex(node_load_kw.index, fill_value=0.0) * flow_factor)
            fed_h = routing.downstream_totals(edges, feed).peak_load_kw.to_numpy() if len(feed) else 0.0
            heat_kw = np.maximum(heat_kw, np.abs(drawn.peak_load_kw.to_numpy() - fed_h))
        mdot = heat_kw * 1000 / (water.cp_j_per_kgk * (t_supply - t_return_c))
        dn = size_pipes(
            mdot,
            catalogue,
            **hydraulic,
            max_velocity_m_per_s=max_velocity_m_per_s,
            max_pressure_gradient_pa_per_m=max_pressure_gradient_pa_per_m,
        )
        return down, heat_kw, mdot, np.maximum(dn, floor)

    down, heat_kw, mdot, dn = size(np.ones(len(node_load_kw)))
    # Heat lost on the way cools the supply water, so a consumer needs more flow for its load: size again
    # with each consumer's flow scaled by (T_supply − T_return) / (T_at_consumer − T_return).
    t_at = supply_temperature_c(
        edges,
        mdot,
        catalogue.u_w_per_mk.reindex(dn).to_numpy(),
        t_supply_c=t_supply,
        t_ground_c=t_ground_c,
        cp_j_per_kgk=water.cp_j_per_kgk,
    )
    at_node = pd.Series(t_at, index=edges.to_node.to_numpy())
    t_consumer = at_node.reindex(node_load_kw.index).to_numpy()
    t_source = pd.Series(t_supply, index=edges.to_node.to_numpy()).reindex(node_load_kw.index).to_numpy()
    flow_factor = (t_source - t_return_c) / np.maximum(t_consumer - t_return_c, 1.0)
    _, _, mdot, edges["dn"] = size(flow_factor)
    edges["t_supply_c"] = t_supply
    edges["design_load_kw"] = heat_kw
    edges["n_consumers_downstream"] = down.n_consumers.to_numpy()
    edges["mdot_design_kg_per_s"] = mdot
    edges["dn"], lift = fit_pump_lift(edges, mdot, catalogue, **hydraulic, rule=lift_rule)
    logger.info(
        "Designed %d pipes in %d network(s): DN%d–DN%d, supply %s °C",
        len(edges),
        len(lift),
        edges.dn.min(),
        edges.dn.max(),
        "/".join(f"{t:g}" for t in sorted(set(t_supply_c_by_tree.values()))),
    )
    return SizedNetwork(edges=edges, pump_lift_bar=lift)


def own_pipes(
    edges: pd.DataFrame,
    consumer_of_edge: pd.Series,
    u_w_per_mk: np.ndarray,
    *,
    peak_kw: pd.Series,
    t_return_c: float,
    t_ground_c: float,
) -> pd.DataFrame:
    """Return what the pipes that carry one consumer's flow alone lose, and how much they cool its supply.

    A consumer's own pipes are its service pipe and the pipes up the tree from it that feed no other consumer
    (``n_consumers_downstream`` 1). At the design temperatures they lose ``Q = Σ U' L · (T_s − T_g)``; at the
    consumer's own design flow ``ṁ = P / (c_p (T_s − T_r))`` the water cools along them by
    ``(T_s − T_g) · (1 − exp(−Σ U' L / (ṁ c_p)))`` (:func:`supply_temperature_c`; ``T_s`` the supply leaving its
    source). Where this takes much of the margin above the consumer's minimum supply temperature, its load is too
    small to keep its pipes warm.

    Parameters
    ----------
    edges
        Sized tree edges with ``edge_id``, ``from_node``, ``to_node``, ``depth``, ``n_consumers_downstream``,
        ``length_m`` and ``t_supply_c``.
    consumer_of_edge
        Consumer id by the ``edge_id`` of its service pipe.
    u_w_per_mk
        Heat-loss coefficient per metre of each edge's supply pipe (its DN's).
    peak_kw
        Each consumer's peak load, by id.
    t_return_c, t_ground_c
        Return and ground temperatures.

    Returns
    -------
    pandas.DataFrame
        By consumer id (those whose service pipe is in ``edges``): ``own_pipes_loss_kw`` and
        ``own_pipes_cooling_k``.
    """
    # the pipes feeding one consumer alone end every path they lie on (downstream counts only fall), so summing
    # theirs from the source gives each service pipe its own pipes' U'·L
    alone = edges.n_consumers_downstream.to_numpy() == 1
    own_ua = routing.path_totals(edges, np.where(alone, u_w_per_mk * edges.length_m.to_numpy(), 0.0))
    service = edges.edge_id.isin(consumer_of_edge.index).to_numpy()
    t_s = edges.t_supply_c.to_numpy()[service]
    ua = own_ua[service]
    ids = consumer_of_edge.reindex(edges.edge_id.to_numpy()[service]).to_numpy()
    p_w = np.maximum(peak_kw.reindex(ids).to_numpy(dtype=float), 1e-9) * 1000
    exponent = ua * (t_s - t_return_c) / p_w  # Σ U'L / (ṁ c_p), with ṁ c_p = P / (T_s − T_r)
    out = pd.DataFrame(
        {
            "own_pipes_loss_kw": ua * (t_s - t_ground_c) / 1000,
            "own_pipes_cooling_k": (t_s - t_ground_c) * -np.expm1(-exponent),
        },
        index=pd.Index(ids, name="consumer_id"),
    )
    logger.info(
        "Own pipes: %d consumers, their supply cooled by at most %.1f K",
        len(out),
        out.own_pipes_cooling_k.max() if len(out) else 0.0,
    )
    return out


def dn_capacity_kw(
    catalogue: pd.DataFrame,
    *,
    water: Water,
    delta_t_k: float,
    max_velocity_m_per_s: float,
    max_pressure_gradient_pa_per_m: float,
    roughness_m: float,
) -> np.ndarray:
    """Return the largest design heat load each catalogue DN carries within the velocity and pressure-gradient limits.

    The largest mass flow meeting both limits is found by bisection on the Darcy–Weisbach/Colebrook gradient
    (:func:`pressure_gradient_pa_per_m`), to 1e-9 relative; the load is ``ṁ · c_p · ΔT``.

    Returns
    -------
    numpy.ndarray
        kW per DN, in the catalogue's order (ascending).
    """
    d = catalogue.d_inner_m.to_numpy()
    hi = max_velocity_m_per_s * water.rho_kg_per_m3 * np.pi * d**2 / 4  # the velocity limit's flow
    lo = np.zeros_like(hi)
    for _ in range(80):
        mid = (lo + hi) / 2
        _, r = pressure_gradient_pa_per_m(
            mid, d, rho=water.rho_kg_per_m3, nu_m2_per_s=water.nu_m2_per_s, roughness_m=roughness_m
        )
        ok = r <= max_pressure_gradient_pa_per_m
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
    _, r = pressure_gradient_pa_per_m(
        hi, d, rho=water.rho_kg_per_m3, nu_m2_per_s=water.nu_m2_per_s, roughness_m=roughness_m
    )
    mdot = np.where(r <= max_pressure_gradient_pa_per_m, hi, lo)
    return mdot * water.cp_j_per_kgk * delta_t_k / 1000.0
