"""Plan the chosen source–sink pairs of a matching study with the network model.

A matching study (:mod:`heatmap.energy.matching`) may choose pairs (``plan.pairs``); :func:`plan_matches` checks
them against the ranking (:func:`chosen_pairs`), turns them into a plan scenario (:func:`plan_scenario_dict`:
no streets, the pairs' straight lines or the candidate links as routes, the sources of a connected piece feeding
one network) and plans it with the planner its caller gives (:func:`heatmap.plan.plan_from_scenario`): routed,
sized, simulated, checked and costed like ``heatmap plan``, with the heat losses and pumping the ranking leaves
out. :func:`planned_summary` sets the planned network beside the ranking's screening figures for the same pairs;
:func:`write_planned` writes it (GeoPackage, web map, summary) into the matching run's output folder.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from heatmap._errors import ScenarioError
from heatmap.energy.excess_heat import cop
from heatmap.energy.matching import MatchPlan, MatchScenario, _profile
from heatmap.io.tables import row_tuples

logger = logging.getLogger(__name__)

PLANNED_PAIR_COLUMNS = (
    "source_id",
    "sink_id",
    "kind",
    "source_t_c",
    "sink_t_c",
    "sink_t_return_c",
    "planned_t_supply_c",
    "planned_cop",
    "design_kw",
    "planned_peak_kw",
    "matched_mwh_per_a",
    "straight_m",
    "route_length_m",
    "pipe_capex_eur",
)
"""Columns of :attr:`MatchesPlan.pairs`: each chosen pair as the match table judged it and as it is planned."""

# The network model's ranges (heatmap.scenario.Temperatures): a pair beyond them cannot be planned.
PLAN_MAX_SUPPLY_C = 150.0
PLAN_MAX_RETURN_C = 100.0


@dataclass
class MatchesPlan:
    """The chosen pairs planned as one network model (several pieces where their routes do not meet)."""

    plan: Any
    """The :class:`heatmap.plan.Plan`."""
    pairs: pd.DataFrame
    """One row per chosen pair (:data:`PLANNED_PAIR_COLUMNS`)."""
    sources: pd.DataFrame
    """One row per chosen source: ``source_id``, ``planned_t_supply_c``, ``planned_cop``, ``capacity_kw``."""
    pair_lines: gpd.GeoDataFrame | None
    """The straight pair lines the plan routed on (``None`` where it used the scenario's candidate links)."""


def _chosen(scn: MatchScenario) -> MatchPlan:
    """Return the scenario's ``plan`` section: the pairs it chooses."""
    if scn.plan is None:
        raise ScenarioError("the scenario chooses no pairs: give plan.pairs")
    return scn.plan


def _refuse(scn: MatchScenario, i: int, message: str) -> None:
    line = scn._pair_lines.get(i)
    where = f"{scn._path}, line {line}: " if getattr(scn, "_path", None) and line else ""
    if scn.plan is None:  # only a chosen pair is refused
        raise ScenarioError(f"{where}plan.pairs[{i}]: {message}")
    source, sink = scn.plan.pairs[i]
    raise ScenarioError(f"{where}plan.pairs[{i}] [{source}, {sink}]: {message}")


def chosen_pairs(
    scn: MatchScenario,
    table: pd.DataFrame,
    sources: gpd.GeoDataFrame,
    sinks: gpd.GeoDataFrame,
    source_profiles_kw: dict[str, np.ndarray],
    sink_profiles_kw: dict[str, np.ndarray],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check the scenario's chosen pairs against the ranking and decide what each source and sink is planned with.

    A chosen pair must be feasible and within the network model's temperatures (supply ≤ 150 °C, return ≤
    100 °C); a source chosen for several sinks must have, in every hour, the heat all of them take from it
    (each pair's hourly take as in the ranking: ``min(deliverable, sink) × (1 − 1/COP)``, or × 1 direct).

    The sources of one network (pairs joined by a shared source, sink or site; on candidate links, all of them)
    supply one temperature: the highest supply temperature of its sinks plus ``plan.supply_margin_k`` (a direct
    source at most its own temperature − ``approach_k``; a heat-pump source at a COP for that temperature).
    Its capacity is the heat it can deliver at its peak (``peak_kw ÷ (1 − 1/COP)`` through a heat pump). Each
    sink is a consumer with the pair's matched annual energy and peak = the pair's design load, scaled down
    where the source's capacity binds so that ``(1 − plan.loss_allowance_share)`` of it covers its sinks.

    Returns
    -------
    (pairs, sources)
        See :attr:`MatchesPlan.pairs` and :attr:`MatchesPlan.sources`.

    Raises
    ------
    heatmap._errors.ScenarioError
        Naming the pair (and its file line) and why it cannot be planned.
    """
    st, pl = scn.settings, _chosen(scn)
    row = table.set_index(["source_id", "sink_id"])
    chosen = []
    for i, (source, sink) in enumerate(pl.pairs):
        r = row.xs((source, sink))
        assert isinstance(r, pd.Series)  # the match table has one row per pair
        if not r.feasible:
            _refuse(scn, i, f"the pair is infeasible: {r.reason}")
        if r.sink_t_c + pl.supply_margin_k > PLAN_MAX_SUPPLY_C:
            _refuse(
                scn, i, f"sink supply {r.sink_t_c:g} °C + margin {pl.supply_margin_k:g} K is beyond the network "
                f"model's {PLAN_MAX_SUPPLY_C:g} °C (temperatures.supply_c of a plan); leave the pair out of plan.pairs",
            )  # fmt: skip
        if r.sink_t_return_c > PLAN_MAX_RETURN_C:
            _refuse(
                scn, i, f"sink return {r.sink_t_return_c:g} °C is beyond the network model's {PLAN_MAX_RETURN_C:g} °C "
                "(temperatures.return_c of a plan); leave the pair out of plan.pairs",
            )  # fmt: skip
        chosen.append({"i": i, **r.to_dict(), "source_id": source, "sink_id": sink})
    pairs = pd.DataFrame(chosen)
    pairs["from_source"] = np.where(pairs.kind == "heat_pump", 1 - 1 / pairs.cop.fillna(np.inf), 1.0)

    src = sources.set_index("id")
    snk_p = _profile(sinks, sink_profiles_kw, "sink")
    src_p = _profile(sources, source_profiles_kw, "source")
    hp = st.heat_pump
    network_of = _networks(pairs, sources, sinks, one=scn.candidate_links is not None)
    network_t_c = pairs.groupby(pairs.source_id.map(network_of)).sink_t_c.max()
    out_sources = []
    for sid in pairs.source_id.unique():  # in the order of their first pair
        group = pairs[pairs.source_id == sid]
        taken = sum(np.minimum(src_p[sid] / r.from_source, snk_p[r.sink_id]) * r.from_source for r in row_tuples(group))
        excess = taken - src_p[sid]
        if (excess > 1e-6 * max(1.0, src_p[sid].max())).any():
            h = int(np.argmax(excess))
            _refuse(
                scn, int(group.i.iloc[-1]),
                f"source {sid} is chosen for {', '.join(group.sink_id)}, which together take {taken[h]:,.0f} kW of "
                f"its heat in hour {h} of the year, more than the {src_p[sid][h]:,.0f} kW it has then; choose another "
                "source for one of them",
            )  # fmt: skip
        t_c = float(src.t_c[sid])
        t_supply = float(network_t_c[network_of[sid]]) + pl.supply_margin_k
        if (group.kind == "direct").all():
            t_supply = max(min(t_supply, t_c - st.approach_k), float(group.sink_t_c.max()))
            c, deliverable = np.inf, float(src.peak_kw[sid])
        else:
            c = float(cop(t_supply, t_c, eta=hp.eta, max_cop=hp.max_cop))
            deliverable = float(src.peak_kw[sid]) / (1 - 1 / c)
        need = float(group.design_kw.sum())
        scale = min(1.0, deliverable * (1 - pl.loss_allowance_share) / need)
        pairs.loc[group.index, "planned_t_supply_c"] = t_supply
        pairs.loc[group.index, "planned_cop"] = c if np.isfinite(c) else np.nan
        pairs.loc[group.index, "planned_peak_kw"] = group.design_kw * scale
        out_sources.append(
            {"source_id": sid, "planned_t_supply_c": t_supply, "planned_cop": c, "capacity_kw": deliverable}
        )
    logger.info(
        "Chosen pairs: %d, from %d sources, %.0f MWh/a matched",
        len(pairs), len(out_sources), pairs.matched_mwh_per_a.sum(),
    )  # fmt: skip
    return pairs[list(PLANNED_PAIR_COLUMNS)].reset_index(drop=True), pd.DataFrame(out_sources)


def _networks(pairs: pd.DataFrame, sources: gpd.GeoDataFrame, sinks: gpd.GeoDataFrame, *, one: bool) -> dict[str, int]:
    """Give each chosen source the number of the network it feeds.

    On straight pair lines, pairs sharing a source or a sink, or units on one site (within 1 m: the lines' ends
    join there), form one network; ``one``: every chosen source feeds one network (candidate links may join any).
    """
    import networkx as nx

    if one:
        return dict.fromkeys(pairs.source_id, 0)
    at = {("source", i): g for i, g in zip(sources["id"], sources.geometry, strict=True)}
    at |= {("sink", i): g for i, g in zip(sinks["id"], sinks.geometry, strict=True)}
    used = [("source", a) for a in pairs.source_id] + [("sink", b) for b in pairs.sink_id]
    G: nx.Graph[tuple[str, str]] = nx.Graph()
    G.add_nodes_from(used)
    G.add_edges_from(zip(used[: len(pairs)], used[len(pairs) :], strict=True))
    G.add_edges_from((u, v) for u in G for v in G if u < v and at[u].distance(at[v]) <= 1.0)
    piece = {u: n for n, part in enumerate(nx.connected_components(G)) for u in part}
    return {a: piece[("source", a)] for a in pairs.source_id}


def _pair_lines(table: gpd.GeoDataFrame, pairs: pd.DataFrame, surface: str) -> gpd.GeoDataFrame:
    """Return the chosen pairs' straight lines from the match table, as candidate links with one surface."""
    keys = pd.MultiIndex.from_frame(pairs[["source_id", "sink_id"]])
    lines = table.set_index(["source_id", "sink_id"]).loc[keys]
    return gpd.GeoDataFrame(
        {"pair": [f"{a} → {b}" for a, b in keys], "surface": surface}, geometry=lines.geometry.values, crs=table.crs
    )


def plan_scenario_dict(
    scn: MatchScenario,
    pairs: pd.DataFrame,
    chosen_sources: pd.DataFrame,
    sources: gpd.GeoDataFrame,
    sinks: gpd.GeoDataFrame,
    links_path: Path,
) -> dict[str, Any]:
    """Build the plan scenario (a mapping for :func:`heatmap.scenario.scenario_from_dict`) of the chosen pairs.

    No streets: the candidate routes are ``links_path`` (the pairs' lines, or the scenario's candidate links);
    the sources of a connected piece feed one network together (``supply_areas: shared``); no simultaneity
    (each sink's design load is already its peak in the pair); one return temperature, the highest of the
    chosen sinks'; the matching settings' pipe catalogue, limits and economics.
    """
    st, pl = scn.settings, _chosen(scn)
    lonlat_src = sources.set_index("id").geometry.to_crs(4326)
    lonlat_snk = sinks.set_index("id").geometry.to_crs(4326)
    lk = scn.candidate_links
    links: dict[str, Any] = {"path": str(links_path), "default_surface": pl.route_surface, "snap_m": 1.0}
    if lk is not None:
        links = {
            "path": str(links_path),
            "layer": lk.layer,
            "default_surface": lk.default_surface,
            "snap_m": lk.snap_m,
            "cost_factors": lk.cost_factors.model_dump(),
        }
    t_return = float(pairs.sink_t_return_c.max())
    return {
        "name": f"{scn.name}: chosen pairs",
        "study_area": {"crs": st.crs},
        # The pair lines end at the sites (a service pipe of ~0 m; any farther and a site would join the
        # longest line in reach, another pair's); on candidate links, units join as the ranking joins them.
        "streets": {"source": "none", "max_service_length_m": 1.0 if lk is None else min(st.max_connection_m, 5000.0)},
        "links": links,
        "sources": {
            "inline": [
                {
                    "id": r.source_id,
                    "name": r.source_id,
                    "lon": float(lonlat_src[r.source_id].x),
                    "lat": float(lonlat_src[r.source_id].y),
                    "capacity_kw": float(r.capacity_kw),
                    "t_supply_c": float(r.planned_t_supply_c),
                }
                for r in row_tuples(chosen_sources)
            ]
        },
        "consumers": {
            "inline": [
                {
                    "id": r.sink_id,
                    "name": f"{r.sink_id} (from {r.source_id}, {r.kind.replace('_', ' ')})",
                    "lon": float(lonlat_snk[r.sink_id].x),
                    "lat": float(lonlat_snk[r.sink_id].y),
                    "annual_demand_mwh": float(r.matched_mwh_per_a),
                    "peak_load_kw": float(r.planned_peak_kw),
                    "min_supply_c": float(r.sink_t_c),
                }
                for r in row_tuples(pairs)
            ]
        },
        "temperatures": {
            "supply_c": float(chosen_sources.planned_t_supply_c.max()),
            "return_c": t_return,
            "ground_c": pl.ground_c,
            "min_consumer_supply_c": float(pairs.sink_t_c.min()),
        },
        "limits": {
            "max_velocity_m_per_s": st.max_velocity_m_per_s,
            "max_pressure_gradient_pa_per_m": st.max_pressure_gradient_pa_per_m,
        },
        "network": {
            "catalogue": str(st.catalogue),
            "insulation_series": st.insulation_series,
            "cost_column": st.cost_column,
            "roughness_mm": st.roughness_mm,
            "simultaneity": "none",
            "supply_areas": "shared",
        },
        "economics": {
            "discount_rate": st.discount_rate,
            "lifetime_a": st.lifetime_a,
            "electricity_price_eur_per_mwh": st.electricity_price_eur_per_mwh,
            "om_fraction_per_a": st.om_share_of_capex_per_a,
        },
    }


def plan_matches(
    scn: MatchScenario,
    table: gpd.GeoDataFrame,
    sources: gpd.GeoDataFrame,
    sinks: gpd.GeoDataFrame,
    source_profiles_kw: dict[str, np.ndarray],
    sink_profiles_kw: dict[str, np.ndarray],
    *,
    planner: Callable[[Any], Any],
) -> MatchesPlan:
    """Plan the scenario's chosen pairs with the network model (route, size, simulate, check, cost).

    The pairs are checked and turned into sources and consumers by :func:`chosen_pairs`, into a plan scenario by
    :func:`plan_scenario_dict` and planned by :func:`heatmap.plan.plan_from_scenario`. Without candidate links the
    routes are the pairs' straight lines (no detour factor: the planned route is the straight line, the match
    table's ``route_length_m`` is it × ``detour_factor``).

    Parameters
    ----------
    scn
        The matching scenario with ``plan.pairs``.
    table
        The ranking (:func:`rank_matches`) of the scenario's units.
    sources, sinks, source_profiles_kw, sink_profiles_kw
        The units and hourly profiles (:func:`scenario_units`).
    planner
        The network model: :func:`heatmap.plan.plan_from_scenario` (given by the caller, as the conductors
        ``plan`` and ``cli`` call the stages and no stage imports them).

    Returns
    -------
    MatchesPlan
    """
    import tempfile

    from heatmap.scenario import scenario_from_dict

    pairs, chosen_sources = chosen_pairs(scn, table, sources, sinks, source_profiles_kw, sink_profiles_kw)
    lines = None
    with tempfile.TemporaryDirectory(prefix="heatmap-matches-") as tmp:
        if scn.candidate_links is None:
            lines = _pair_lines(table, pairs, _chosen(scn).route_surface)
            links_path = Path(tmp) / "pair_lines.gpkg"
            lines.to_file(links_path, layer="pair_lines")
        else:
            links_path = scn.path(scn.candidate_links.path)
        data = plan_scenario_dict(scn, pairs, chosen_sources, sources, sinks, links_path)
        plan = planner(scenario_from_dict(data, base_dir=scn.path(Path("."))))
    logger.info(
        "Planned %d chosen pairs: %d of %d sinks connected, route %.0f m, capex %.0f €, checks %s",
        len(pairs), int(plan.consumers.connected.sum()), len(plan.consumers), plan.figures["route_length_m"],
        plan.figures["capex_eur"], "hold" if plan.ok else "fail",
    )  # fmt: skip
    return MatchesPlan(plan, pairs, chosen_sources, lines)


def planned_summary(planned: MatchesPlan) -> dict[str, Any]:
    """Summarise the planned network in a few figures, beside the match table's screening estimate of its pairs."""
    plan, pairs = planned.plan, planned.pairs
    f = plan.figures
    from heatmap.io.outputs import failed_checks

    return {
        "pairs": [[a, b] for a, b in zip(pairs.source_id, pairs.sink_id, strict=True)],
        "status": "ok" if plan.ok else "checks failed",
        "failed_checks": failed_checks(plan),
        "sinks_connected": int(plan.consumers.connected.sum()),
        "sinks": len(plan.consumers),
        "route_length_m": f["route_length_m"],
        "pipe_capex_eur": f["capex_eur"],
        "heat_delivered_mwh_per_a": f["heat_delivered_mwh_per_a"],
        "heat_losses_mwh_per_a": f["heat_losses_mwh_per_a"],
        "heat_losses_share": f["heat_losses_share"],
        "pumping_power_kw": f["pumping_power_kw"],
        "pumping_energy_mwh_per_a": f["pumping_energy_mwh_per_a"],
        "energy_balance_residual": plan.energy_balance.get("residual_relative"),
        "screening": {
            "route_length_m": float(pairs.route_length_m.sum()),
            "pipe_capex_eur": float(pairs.pipe_capex_eur.sum()),
            "note": "the match table's figures for the same pairs, each judged as if alone (straight line × "
            "detour_factor, or its path on the candidate links; catalogue €/m × length × cost factor)",
        },
        "sources": planned.sources.to_dict("records"),
        "chosen": pairs.to_dict("records"),
        "rule": "each source heats the water to the highest supply temperature of its network's sinks + "
        "plan.supply_margin_k (heat pump at the source); sinks are consumers with the pair's matched MWh/a and "
        "design load; one return temperature (the highest of the chosen sinks'); details in network/summary.json",
    }


def format_planned(summary: dict[str, Any]) -> str:
    """Render :func:`planned_summary` for the terminal: the planned network against the screening estimate."""
    sc = summary["screening"]

    def num(v: Any, fmt: str) -> str:
        return "–" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, fmt)

    share = summary["heat_losses_share"]
    return "\n".join(
        [
            f"Planned network of the {len(summary['pairs'])} chosen pairs: {summary['status']}"
            + (f" ({', '.join(summary['failed_checks'])})" if summary["failed_checks"] else ", every check holds"),
            f"  sinks connected      {summary['sinks_connected']} of {summary['sinks']}",
            f"  route length         {num(summary['route_length_m'] / 1000, ',.2f')} km"
            f"   (match table: {num(sc['route_length_m'] / 1000, ',.2f')} km)",
            f"  pipe capex           {num(summary['pipe_capex_eur'] / 1e6, ',.2f')} M€"
            f"   (match table: {num(sc['pipe_capex_eur'] / 1e6, ',.2f')} M€)",
            f"  heat delivered       {num(summary['heat_delivered_mwh_per_a'], ',.0f')} MWh/a",
            f"  heat losses          {num(summary['heat_losses_mwh_per_a'], ',.0f')} MWh/a"
            f" ({num(100 * share if share is not None else None, '.1f')} %)",
            f"  pumping              {num(summary['pumping_power_kw'], ',.1f')} kW,"
            f" {num(summary['pumping_energy_mwh_per_a'], ',.0f')} MWh/a",
        ]
    )


def write_planned(planned: MatchesPlan, folder: Path, *, tiles: str | None) -> None:
    """Write the planned network's GeoPackage, web map and summary into ``folder``.

    As :func:`heatmap.io.outputs.write_plan` writes a plan, without its own atomic swap: the caller's
    (:func:`heatmap.energy.matches_job.write_matches`) holds the whole output folder. A plan whose checks fail is
    written marked partial.
    """
    from heatmap.io.outputs import plan_summary, write_gpkg, write_plan_files
    from heatmap.maps import qgis_style

    plan = planned.plan
    folder.mkdir()
    summary = plan_summary(plan, partial=not plan.ok)
    if planned.pair_lines is not None:
        lines = folder / "pair_lines.gpkg"
        qgis_style.write_layer_styles(lines, write_gpkg({"pair_lines": planned.pair_lines}, lines))
        for row in summary["assumptions"]:
            if row["key"] == "links.path":
                row["value"] = "network/pair_lines.gpkg (the chosen pairs' straight lines, written by heatmap matches)"
    write_plan_files(plan, folder, tiles=tiles, summary=summary)
