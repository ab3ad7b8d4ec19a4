"""Write a plan: ``plan.gpkg`` (styled for QGIS), ``map.html`` (offline web map) and ``summary.json``.

The files are written through :func:`heatmap.io.output_folder.write_atomically`: into a temporary folder
beside the output folder, swapped in whole once complete (nothing lost, nothing mixed; see there). The
summary's text for the command line (:func:`format_summary`) fits one screen.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import math
import sqlite3
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from heatmap import __version__
from heatmap._errors import OutputError
from heatmap.io import exports, forked
from heatmap.io.output_folder import write_atomically
from heatmap.io.tables import write_csv

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd

PlanLike = Any
NOT_IN_A_PLAN = ("density.",)
"""Settings a plan does not use (the heat-density map of ``heatmap demand``): not among a plan's assumptions."""
"""A :class:`heatmap.plan.Plan`: typed ``Any``, as a stage imports no conductor, not even for its types
(``tests/test_package_layout.py``)."""

logger = logging.getLogger(__name__)

GPKG_LAYERS = ("sources", "consumers", "pipes", "junctions", "streets", "left_out")
"""Layers of ``plan.gpkg``, in this order."""
LINK_LAYERS = ("drawn_lines", "no_go_areas")
"""Layers of ``plan.gpkg`` after :data:`GPKG_LAYERS` where the scenario gives drawn lines (``links.path``) or no-go
areas (``links.no_go_path``): each drawn line as drawn with what the plan made of it, and the no-go areas."""
OUTPUT_FILES = ("plan.gpkg", "map.html", "report.html", "summary.json")
TABLE_FILES = ("consumers.csv", "pipe_quantities.csv")
"""Tables for spreadsheets written besides :data:`OUTPUT_FILES` (:mod:`heatmap.io.exports`)."""
OPERATION_FILES = ("trade.csv", "operating_hours.csv", "operating_consumers.csv", "operating_sources.csv")
"""Written besides :data:`OUTPUT_FILES` by a plan with a year of operation (scenario section ``operation``)."""
OPERATION_LAYER = "pipes_by_hour"
"""Layer of ``plan.gpkg`` written by a plan with a year of operation: every pipe in every simulated hour."""
_MISSING = "–"


@dataclass(frozen=True)
class PlanTables:
    """The plan's layers as written to ``plan.gpkg`` and the map, and the consumers left out by reason."""

    sources: gpd.GeoDataFrame
    consumers: gpd.GeoDataFrame
    streets: gpd.GeoDataFrame
    pipes: gpd.GeoDataFrame
    junctions: gpd.GeoDataFrame
    excluded: dict[str, list[str]]
    left_out: gpd.GeoDataFrame
    drawn_lines: gpd.GeoDataFrame | None = None
    no_go_areas: gpd.GeoDataFrame | None = None


LEFT_OUT_REASONS = {
    "zero_demand": ("no_heat_demand", "its annual demand and peak load are zero"),
    "below_min_annual_demand": (
        "too_small",
        "annual demand below the plan's minimum (consumers.min_annual_demand_mwh)",
    ),
    "below_min_peak_load": ("too_small", "peak load below the plan's minimum (consumers.min_peak_load_kw)"),
    "excluded": ("excluded", "set to excluded (the consumers' connect column)"),
    "too_far_from_street": (
        "too_far",
        "no candidate route within the longest service pipe (streets.max_service_length_m)",
    ),
    "service_across_no_go": (
        "no_go",
        "every street within the longest service pipe lies across a no-go area (links.no_go_path)",
    ),
    "no_path_to_source": ("no_path", "no candidate route joins it to a heat source"),
    "not_economic": ("not_economic", "its connection costs more than its heat earns over the lifetime"),
    "left_out_unheated_tag": ("no_heat_demand", "its OpenStreetMap tag names an unheated building"),
    "left_out_below_min_footprint": ("no_heat_demand", "footprint below demand.min_heated_footprint_m2 (outbuilding)"),
    "left_out_no_footprint": ("no_heat_demand", "a point without a footprint and without a metered demand"),
    "left_out_inside_another": (
        "no_heat_demand",
        "its footprint lies inside another building's, whose floor area counts it (demand.nested_buildings)",
    ),
    "left_out_zero_demand": ("no_heat_demand", "its demand is zero"),
}
"""Key of ``excluded_consumers`` → the ``reason`` of the ``left_out`` layer and the plain words of its ``why``."""


def left_out_layer(
    consumers: gpd.GeoDataFrame, excluded: Mapping[str, list[str]], left_out_rows: gpd.GeoDataFrame | None
) -> gpd.GeoDataFrame:
    """Return every consumer and building the plan does not connect, one row each with why.

    Columns ``consumer_id``, ``name``, ``building_type``, ``annual_demand_mwh``, ``peak_load_kw``, ``reason``
    (``too_small``, ``too_far``, ``no_go``, ``no_path``, ``not_economic``, ``excluded``, ``no_heat_demand``, or
    ``not_connected`` where no reason is recorded), ``reason_key`` (its key in ``excluded_consumers`` of
    summary.json) and ``why`` (plain words naming the setting).
    """
    import geopandas as gpd
    import pandas as pd

    key_of = {str(i): key for key, ids in excluded.items() for i in ids}
    fields = ["consumer_id", "name", "building_type", "annual_demand_mwh", "peak_load_kw"]
    unconnected = consumers[~consumers.connected.astype(bool)]
    parts = [pd.DataFrame(unconnected.reindex(columns=fields)).assign(geometry=unconnected.geometry.to_numpy())]
    parts[0]["reason_key"] = None
    if left_out_rows is not None and len(left_out_rows):
        rows = pd.DataFrame(left_out_rows.reindex(columns=fields))
        parts.append(
            rows.assign(geometry=left_out_rows.geometry.to_numpy(), reason_key=left_out_rows.reason.to_numpy())
        )
    frame = pd.concat(parts, ignore_index=True)
    ids = frame.consumer_id.astype(str)
    frame["reason_key"] = frame.reason_key.where(frame.reason_key.notna(), ids.map(key_of))
    known = frame.reason_key.map(lambda k: LEFT_OUT_REASONS.get(k, ("not_connected", "not connected")))
    frame["reason"] = [r for r, _ in known]
    frame["why"] = [w for _, w in known]
    frame["reason_key"] = frame.reason_key.fillna("")
    out = gpd.GeoDataFrame(frame, geometry="geometry", crs=consumers.crs)
    if len(set(out.geom_type.dropna().str.removeprefix("Multi"))) > 1:  # points and footprints: one type a layer
        out = out.set_geometry(out.geometry.representative_point())
    return out[[*fields, "reason", "reason_key", "why", "geometry"]]


def plan_tables(
    *,
    src: gpd.GeoDataFrame,
    cons: gpd.GeoDataFrame,
    street_gdf: gpd.GeoDataFrame,
    cand: Any,
    tree: Any,
    edges: pd.DataFrame,
    sim: Any,
    catalogue: pd.DataFrame,
    left_out: dict[str, list[str]],
    own_peak: pd.DataFrame,
    max_service_length_m: float,
    shares: pd.DataFrame | None = None,
    left_out_rows: gpd.GeoDataFrame | None = None,
    own_pipes: pd.DataFrame | None = None,
) -> PlanTables:
    """Shape the stages' results into the plan's layers.

    Parameters
    ----------
    src, cons
        Sources and consumers as read (metric CRS).
    street_gdf
        The candidate routes (streets and links).
    cand
        The candidate network (:class:`heatmap.network.candidates.CandidateNetwork`).
    tree
        The routed tree (:class:`heatmap.network.routing.RoutedTree`).
    edges
        The sized tree edges with ``dn``, ``cost_eur`` and the design columns.
    sim
        The final simulation (:class:`heatmap.network.hydraulics.Simulation`).
    catalogue
        The pipe catalogue.
    left_out
        Consumers left out before routing, by reason.
    own_peak
        Service pipes and consumers at each building's own peak
        (:func:`heatmap.network.hydraulics.service_at_own_peak`).
    max_service_length_m
        Longest service pipe (tells consumers too far from every street from those cut off from the sources).
    shares
        Each connected consumer's share of the costs (:func:`heatmap.economics.consumer_shares`), by id.
    left_out_rows
        The consumers and buildings left out before routing, with their ``reason`` (for :func:`left_out_layer`).
    own_pipes
        What the pipes that carry each connected consumer's flow alone lose and how much they cool its supply
        (:func:`heatmap.network.sizing.own_pipes`), by id: the consumers' columns of those names.

    Returns
    -------
    PlanTables
    """
    import geopandas as gpd
    import pandas as pd
    import shapely

    crs = cand.edges.crs
    e = edges.set_index("edge_id")
    res = sim.pipes.merge(
        e[
            [
                "dn",
                "status",
                "existing_dn",
                "length_m",
                "kind",
                "surface",
                "cost_factor",
                "cost_eur",
                "design_load_kw",
                "n_consumers_downstream",
            ]
        ],
        left_on="edge_id",
        right_index=True,
    )
    res["cost_eur"] = res.cost_eur / 2  # one trench for the pair: half its cost on each pipe
    # Draw every pipe in its design flow direction: a supply pipe from its edge's from-node (source side),
    # a return pipe towards it. Candidate geometry runs from the edge's u to its v.
    ce = cand.edges.set_index("edge_id").reindex(res.edge_id)  # each pipe's candidate edge
    line = ce.geometry.to_numpy()
    from_node = e.from_node.reindex(res.edge_id).to_numpy()
    to_node = e.to_node.reindex(res.edge_id).to_numpy()
    supply = res.circuit.to_numpy() == "supply"
    flip = (ce.u.to_numpy() != from_node) == supply
    line = np.where(flip, shapely.reverse(line), line)
    term = cand.terminals[cand.terminals.role == "source"]
    source_at_node = dict(zip(term.node, term.terminal_id, strict=True))
    source_of_tree = {tr: source_at_node[root] for tr, root in tree.root_of_tree.items()}
    pipes = gpd.GeoDataFrame(
        {
            "pipe_id": np.arange(len(res)),
            "edge_id": res.edge_id.to_numpy(),
            "circuit": res.circuit.to_numpy(),
            "source_id": e.tree.reindex(res.edge_id).map(source_of_tree).to_numpy(),
            "from_node": np.where(supply, from_node, to_node),
            "to_node": np.where(supply, to_node, from_node),
            "consumer_id": ce.terminal_id.where(ce.terminal_id.isin(set(cons.consumer_id))).to_numpy(),
            "kind": res.kind.to_numpy(),
            "surface": res.surface.to_numpy(),
            "cost_factor": res.cost_factor.to_numpy(),
            "dn": res.dn.to_numpy().astype(int),
            "status": res.status.to_numpy(),
            "existing_dn": res.existing_dn.to_numpy(float),
            # the drawn line (links.path) it is laid along, NaN on streets and service pipes
            "link_feature": ce.street_edge_id.where(ce.kind == "street")
            .map(street_gdf.set_index("edge_id").link_feature)
            .to_numpy(float)
            if "link_feature" in street_gdf
            else np.nan,
            "d_inner_mm": catalogue.d_inner_m.reindex(res.dn).to_numpy() * 1000,
            "length_m": res.length_m.to_numpy(),
            "n_consumers_downstream": res.n_consumers_downstream.to_numpy().astype(int),
            "design_load_kw": res.design_load_kw.to_numpy(),
            **{
                c: res[c].to_numpy()
                for c in (
                    "mdot_kg_per_s",
                    "v_m_per_s",
                    "r_pa_per_m",
                    "dp_bar",
                    "t_in_c",
                    "t_out_c",
                    "q_loss_kw",
                    "cost_eur",
                )
            },
        },
        geometry=line,
        crs=crs,
    )
    nodes_geom = cand.nodes.geometry.values
    j = sim.junctions
    junctions = gpd.GeoDataFrame(
        {
            "junction_id": np.arange(len(j)),
            "node_id": j.node.to_numpy(),
            "circuit": j.circuit.to_numpy(),
            "p_bar": j.p_bar.to_numpy(),
            "t_c": j.t_c.to_numpy(),
        },
        geometry=nodes_geom[j.node.to_numpy().astype(int)],
        crs=crs,
    )
    service = cand.edges[cand.edges.kind == "service"].set_index("terminal_id")
    routed = set(edges.edge_id)
    sc = sim.consumers.set_index("consumer_id")
    consumers = cons.copy()
    consumers["connected"] = consumers.consumer_id.isin(sc.index)
    svc = service.reindex(consumers.consumer_id)
    svc_edge_ok = svc.edge_id.isin(routed).to_numpy()
    consumers["service_length_m"] = np.where(svc_edge_ok, svc.length_m.to_numpy(), np.nan)
    svc_cost = e.cost_eur.reindex(svc.edge_id.where(svc_edge_ok)).to_numpy()
    consumers["service_cost_eur"] = svc_cost
    for col, src_col in (("q_design_kw", "q_kw"), ("dp_bar", "dp_bar"), ("t_supply_c", "t_supply_c")):
        consumers[col] = sc[src_col].reindex(consumers.consumer_id).to_numpy()
    own = own_peak.set_index("consumer_id").reindex(consumers.consumer_id)
    consumers["dp_own_peak_bar"] = own.dp_bar.to_numpy()
    if shares is not None:
        for col in shares.columns.drop("service_cost_eur"):  # the service pipe's cost is written above
            consumers[col] = shares[col].reindex(consumers.consumer_id).to_numpy()
    consumers["service_v_own_peak_m_per_s"] = own.v_m_per_s.to_numpy()
    if own_pipes is not None:
        for name in own_pipes.columns:
            consumers[str(name)] = own_pipes[name].reindex(consumers.consumer_id).to_numpy()
    ss = sim.sources.set_index("source_id")
    sources = src.copy()
    for col in ("q_supplied_kw", "mdot_kg_per_s", "pump_lift_bar", "pump_power_kw"):
        sources[col] = ss[col].reindex(sources.source_id).to_numpy()
    streets_out = street_gdf.copy()
    on_route = cand.edges[cand.edges.edge_id.isin(routed) & (cand.edges.kind == "street")]
    # a street segment split where buildings join it is in the plan for the length of its pieces the route takes
    streets_out["in_plan_m"] = streets_out.edge_id.map(on_route.groupby("street_edge_id").length_m.sum()).fillna(0.0)
    streets_out["in_plan"] = streets_out.in_plan_m > 0
    use = pd.DataFrame(drawn_link_use(streets_out))
    if len(use):  # each drawn line's segments say what became of the line
        by_feature = use.set_index("feature")
        streets_out["drawn_status"] = streets_out.link_feature.map(by_feature.status)
        streets_out["drawn_why"] = streets_out.link_feature.map(by_feature.why)
    term = cand.terminals.set_index("terminal_id")
    cut_off = term[(~term.reachable) & (term.role == "consumer")]
    fenced = cut_off.service_in_no_go.to_numpy(bool) if "service_in_no_go" in cut_off else np.zeros(len(cut_off), bool)
    near_a_street = (cut_off.nearest_street_m <= max_service_length_m).to_numpy() & ~fenced
    consumers["reachable_street_m"] = term.reachable_street_m.reindex(consumers.consumer_id).to_numpy()
    for layer, ids in ((consumers, consumers.consumer_id), (sources, sources.source_id)):
        layer["service_through_building"] = term.service_through_building.reindex(ids).fillna(False).to_numpy(bool)
    excluded = {
        "too_far_from_street": sorted(cut_off.index[~near_a_street & ~fenced]),
        "service_across_no_go": sorted(cut_off.index[fenced]),
        "no_path_to_source": sorted([*cut_off.index[near_a_street], *tree.unreachable]),
        **left_out,
    }
    excluded.update(
        cons.attrs.get("left_out_ids", {})
    )  # OSM buildings given no demand, by reason (heatmap.demand.buildings)
    tables = PlanTables(
        sources,
        consumers,
        streets_out,
        pipes,
        junctions,
        excluded,
        left_out_layer(consumers, excluded, left_out_rows),
        drawn_lines=_drawn_line_layer(use, street_gdf.attrs.get("drawn_lines"), crs),
        no_go_areas=street_gdf.attrs.get("no_go"),
    )
    logger.info(
        "Plan tables: %d pipes, %d junctions, %d of %d consumers connected",
        len(pipes),
        len(junctions),
        int(consumers.connected.sum()),
        len(consumers),
    )
    return tables


def _drawn_line_layer(use: pd.DataFrame, drawn: gpd.GeoDataFrame | None, crs: Any) -> gpd.GeoDataFrame | None:
    """Return each drawn line as drawn (``drawn``, by feature) with what the plan made of it (``use``)."""
    import geopandas as gpd

    if drawn is None or not len(use):
        return None
    own = drawn.reindex(use.feature)
    return gpd.GeoDataFrame(
        use.assign(drawn_status=own.drawn_status.to_numpy(), dn=own.dn.to_numpy(float)),
        geometry=own.geometry.to_numpy(),
        crs=crs,
    )


def plan_layers(plan: PlanLike) -> dict[str, gpd.GeoDataFrame]:
    """Return the plan's output layers by name (see :data:`GPKG_LAYERS` and :data:`LINK_LAYERS`).

    The sources layer gets a ``status`` field: ``"ok"``, or ``"partial"`` for a plan whose checks fail
    (written only with ``--partial``).
    """
    names = GPKG_LAYERS + LINK_LAYERS
    layers = {name: getattr(plan, name) for name in names if getattr(plan, name, None) is not None}
    layers["sources"] = layers["sources"].assign(status="ok" if plan.ok else "partial")
    return layers


def failed_checks(plan: PlanLike) -> list[str]:
    """Return the names of the checks the plan fails, in the order of :data:`CHECK_ORDER`."""
    return _ordered_checks({str(c) for c in plan.violations["check"]}) if len(plan.violations) else []


def _jsonable(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:  # most values: as they are
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    if value is not None and not isinstance(value, str | int | float | bool) and _is_missing(value):
        return None  # pandas.NA, NaT
    return value


def _is_missing(value: Any) -> bool:
    try:
        return bool(value != value)  # NaN, pandas.NA and NaT compare unequal to themselves
    except (TypeError, ValueError):
        return True


def plan_summary(plan: PlanLike, *, partial: bool = False, design: bool = True) -> dict[str, Any]:
    """Everything a reader needs to judge the plan: totals, checks, exclusions and every assumption.

    The same scenario gives the same summary, apart from ``created_utc`` and the design's solve times
    (``network_design.time_s``; stage timings are logged instead).
    Figures that could not be computed (NaN, infinite, missing) are ``null``.

    Parameters
    ----------
    plan
        A :class:`heatmap.plan.Plan`.
    partial
        Whether the plan is written although checks failed.
    design
        Include the network design's summary (``network_design``). ``False``: left empty, for a writer that
        fills it in last, once the design's bound computed beside the plan is known (:attr:`heatmap.plan.Plan.design`).

    Returns
    -------
    dict
        JSON-ready summary.
    """
    c = plan.consumers
    supply = plan.pipes[plan.pipes.circuit == "supply"]
    dn_length = supply.groupby("dn").length_m.sum().round(1)
    status = "ok" if plan.ok else ("partial: checks failed" if partial else "checks failed")
    left_out = getattr(plan, "left_out", None)  # the layer of those not connected, where the plan has one
    summary = {
        "heatmap_version": __version__,
        "created_utc": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "scenario": plan.scenario.name,
        "scenario_file": plan.scenario.path,
        "crs": plan.crs.to_string(),
        "status": status,
        "failed_checks": failed_checks(plan),
        "counts": {
            "sources": len(plan.sources),
            "consumers": len(c),
            "consumers_connected": int(c.connected.sum()),
            # every consumer and building given: those connected and those left out (the left_out layer)
            "consumers_given": int(c.connected.sum()) + (0 if left_out is None else len(left_out)),
            "pipes": len(plan.pipes),
            "route_edges": len(supply),
            "tunnel_ways_left_out": getattr(plan, "tunnel_ways_left_out", 0),  # OSM ways ('streets.tunnels')
        },
        "input_columns": getattr(plan, "input_columns", {}),
        "excluded_consumers": plan.excluded,
        "fallbacks": getattr(plan, "fallbacks", {}),
        "cold_consumers": getattr(plan, "cold_consumers", []),
        "nearest_reachable_street_m": _nearest_reachable_street_m(plan),
        "service_through_building": _through_building(plan),
        "figures": plan.figures,
        "economics": getattr(plan, "money", {}),
        "network_design": getattr(plan, "design", {}) if design else {},
        "consumer_costs": _consumer_costs(c),
        "drawn_links": drawn_link_use(plan.streets),
        "design_load_kw": float(c.q_design_kw.sum(min_count=1)),
        "peak_load_undiversified_kw": float(c.peak_load_kw[c.connected.astype(bool)].sum()),
        "energy_balance": plan.energy_balance,
        "route_length_by_dn_m": {f"DN{k}": v for k, v in dn_length.items()},
        "existing_pipes": _existing_pipes(plan.pipes),
        "violations": plan.violations.to_dict(orient="records"),
        "resize_rounds": plan.rounds,
        "assumptions": [a for a in plan.scenario.assumptions() if not a["key"].startswith(NOT_IN_A_PLAN)],
        "renamed_keys": plan.scenario.renamed_keys,
    }
    year = getattr(plan, "operation", None)
    if year is not None:
        summary["operation"] = operation_summary(year)
    return _jsonable(summary)


def drawn_link_use(streets: pd.DataFrame) -> list[dict[str, Any]]:
    """Say of each drawn candidate line whether the plan used it, and why not.

    Parameters
    ----------
    streets
        The plan's candidate routes (``link_feature``, ``in_plan_m``: the length the route takes), with the drawn
        lines' table in ``attrs["drawn"]`` (feature → ``length_m``, ``forbidden``, ``in_no_go``, ``one_node``).

    Returns
    -------
    list of dict
        Per drawn feature: ``feature``, ``length_m`` (drawn), ``used_m`` (in the plan), ``status`` (``used``,
        ``partly used``, ``not used``, ``forbidden``, ``left out``) and ``why``.
    """
    drawn = streets.attrs.get("drawn")
    if drawn is None or "link_feature" not in streets:
        return []
    on = streets[streets.link_feature.notna()]
    used = on.groupby("link_feature").in_plan_m.sum()
    apart = set(on.link_feature[~_joins_the_plan(streets)[streets.link_feature.notna().to_numpy()]])
    rows = []
    for feature, d in drawn.iterrows():
        used_m = float(used.get(feature, 0.0))
        if d.forbidden:
            status, why = (
                "forbidden",
                "drawn with status forbidden: no pipe along it (streets it runs along left out too)",
            )
        elif d.in_no_go:
            status, why = "left out", "it enters a no-go area ('links.no_go_path')"
        elif d.get("one_node", False):
            status, why = (
                "left out",
                "its ends meet at one node (a closed ring, or a line shorter than 'links.snap_m'), so no pipe can run "
                "along it: draw it from one street or line to another",
            )
        elif used_m >= 0.99 * d.length_m:
            status, why = "used", ""
        elif used_m > 0:
            status, why = "partly used", "the plan uses the part that serves its buildings at least cost"
        elif feature in apart:
            status, why = (
                "not used",
                "it does not join the streets and lines the plan is built on (none of its ends lies within "
                "'links.snap_m' of their nodes): draw an end onto a street or a line of the plan",
            )
        else:
            status, why = "not used", "the design joins the buildings at less cost without it"
        rows.append(
            {"feature": int(feature), "length_m": float(d.length_m), "used_m": used_m, "status": status, "why": why}
        )
    return rows


def _joins_the_plan(streets: pd.DataFrame) -> np.ndarray:
    """Per candidate route, whether it is joined (through other routes, ``u``–``v``) to a route the plan uses."""
    import pandas as pd
    import scipy.sparse as sp

    if not {"u", "v", "in_plan_m"} <= set(streets.columns) or streets.empty:
        return np.ones(len(streets), dtype=bool)
    codes, _ = pd.factorize(np.concatenate([streets.u.astype(str).to_numpy(), streets.v.astype(str).to_numpy()]))
    u, v = codes[: len(streets)], codes[len(streets) :]
    n = int(codes.max()) + 1
    _, label = sp.csgraph.connected_components(sp.coo_matrix((np.ones(len(u)), (u, v)), shape=(n, n)), directed=False)
    planned = np.unique(label[u[streets.in_plan_m.to_numpy() > 0]])
    return np.isin(label[u], planned)


def _consumer_costs(c: pd.DataFrame) -> dict[str, Any]:
    """Summarise the connected consumers' cost shares: their sums (the plan's totals) and the spread of their LCOH."""
    if "lcoh_eur_per_mwh" not in c:
        return {}
    on = c[c.connected.astype(bool)]
    lcoh = on.lcoh_eur_per_mwh.dropna()  # unknown where a simulation failed
    dearest = on.nlargest(5, "lcoh_eur_per_mwh")
    return {
        "capex_shares_sum_eur": float(on.capex_share_eur.sum()),
        "loss_shares_sum_mwh_per_a": float(on.loss_share_mwh_per_a.sum(skipna=False)),
        "pumping_shares_sum_eur_per_a": float(on.pumping_share_eur_per_a.sum(skipna=False)),
        "annual_cost_shares_sum_eur_per_a": float(on.annual_cost_share_eur_per_a.sum(skipna=False)),
        "lcoh_eur_per_mwh": {
            k: float(f(lcoh)) if len(lcoh) else None for k, f in (("min", min), ("median", np.median), ("max", max))
        },
        "dearest": dict(zip(dearest.consumer_id.astype(str), dearest.lcoh_eur_per_mwh, strict=True)),
    }


def operation_summary(year: Any) -> dict[str, Any]:
    """Summarise the year of operation: the hours that matter as simulated, the totals, each company's trade.

    Each hour is its row of ``operating_hours.csv`` plus, as lists, the sources holding the pressure, the
    ``pipe_id`` of every pipe whose flow runs against its drawn direction, and its feeders' records (the rows of
    ``operating_sources.csv``).

    Parameters
    ----------
    year
        A :class:`heatmap.plan.OperatingYear`.
    """
    hours = []
    for h in (year.design, *year.hours):
        hours.append(
            {
                **h.figures(),
                "pressure_held_by": list(h.pressure_sources),
                "reversed_pipe_ids": h.reversed_pipes(),
                "feeders": h.sources.to_dict(orient="records"),
            }
        )
    return {
        "hours": hours,
        "totals_mwh_per_a": year.totals,
        "companies": year.trade.to_dict(orient="records"),
    }


def operation_tables(year: Any) -> dict[str, pd.DataFrame]:
    """Return the year's hours as tidy tables, one value a cell: the files of :data:`OPERATION_FILES` by name.

    ``operating_hours.csv`` one row per simulated hour (the design peak first); ``operating_consumers.csv`` hour ×
    consumer; ``operating_sources.csv`` hour × source and selling prosumer (see
    :func:`heatmap.network.operation.hour_tables`); ``trade.csv`` per company.

    Parameters
    ----------
    year
        A :class:`heatmap.plan.OperatingYear`.
    """
    import pandas as pd

    results = (year.design, *year.hours)

    def per_hour(attr: str) -> pd.DataFrame:
        frames = [
            getattr(h, attr).assign(hour=h.hour.name, time=None if h.hour.time is None else h.hour.time.isoformat())
            for h in results
        ]
        table = pd.concat(frames, ignore_index=True)
        return table[["hour", "time", *[c for c in table.columns if c not in ("hour", "time")]]]

    return {
        "trade.csv": year.trade,
        "operating_hours.csv": pd.DataFrame([h.figures() for h in results]),
        "operating_consumers.csv": per_hour("consumers"),
        "operating_sources.csv": per_hour("sources"),
    }


def pipes_by_hour(plan: PlanLike) -> gpd.GeoDataFrame:
    """Return the layer :data:`OPERATION_LAYER`: one row per pipe and simulated hour, with its geometry.

    Fields: ``pipe_id``, ``edge_id``, ``circuit``, ``hour`` (its name), ``time``, ``v_m_per_s``, ``pa_per_m``,
    ``mdot_kg_per_s``, ``reversed`` (flow against the drawn direction), ``t_from_c``, ``t_to_c`` (at the drawn
    ends). A pipe of a network not running in an hour has empty results.
    """
    import geopandas as gpd
    import pandas as pd

    base = plan.pipes[["pipe_id", "edge_id", "circuit", "geometry"]]
    frames = []
    for h in (plan.operation.design, *plan.operation.hours):
        res = h.pipes.drop(columns=["edge_id", "circuit"]).set_index("pipe_id")
        frame = base.join(res, on="pipe_id")
        frame["reversed"] = frame.reversed.astype("boolean").fillna(False).astype(bool)
        frames.append(frame.assign(hour=h.hour.name, time=None if h.hour.time is None else h.hour.time.isoformat()))
    layer = pd.concat(frames, ignore_index=True)
    columns = ["pipe_id", "edge_id", "circuit", "hour", "time", "v_m_per_s", "pa_per_m", "mdot_kg_per_s"]
    return gpd.GeoDataFrame(
        layer[[*columns, "reversed", "t_from_c", "t_to_c", "geometry"]], geometry="geometry", crs=plan.pipes.crs
    )


# --- the summary on the command line -----------------------------------------------------------------

CHECK_ORDER = (
    "converged",
    "boiling",
    "source_capacity",
    "consumer_supply_temperature",
    "consumer_dp",
    "velocity",
    "pressure_gradient",
    "energy_balance",
)
"""Checks from the most to the least fundamental: a summary lists failed checks in this order."""

# check → (what the value is, unit, value format, comparison, limit prefix, limit format); a check's value
# violates its limit in the direction shown (see heatmap.network.hydraulics.check_simulation).
_CHECK_FORMATS: dict[str, tuple[str, str, str, str, str, str]] = {
    "source_capacity": ("", "kW", ",.0f", ">", "capacity ", ",.0f"),
    "boiling": ("", "bar(a)", ",.2f", "<", "saturation ", ",.2f"),
    "consumer_supply_temperature": ("supply ", "°C", ",.1f", "<", "minimum ", ",.2f"),
    "consumer_dp": ("Δp ", "bar", ",.2f", "<", "", ",.3f"),
    "velocity": ("", "m/s", ",.2f", ">", "", ",.3f"),
    "pressure_gradient": ("", "Pa/m", ",.0f", ">", "", ",.1f"),
    "energy_balance": ("residual ", "", ".1e", ">", "tolerance ", ".1e"),
}
_MAX_VIOLATION_LINES = 5
_MAX_IDS = 5


def _ordered_checks(checks: Iterable[str]) -> list[str]:
    checks = set(checks)
    return [c for c in CHECK_ORDER if c in checks] + sorted(checks - set(CHECK_ORDER))


def _number(value: Any, fmt: str, unit: str = "", *, trim: bool = False) -> str:
    """Format a number with its unit, or "–" when it is missing, NaN or infinite.

    ``trim`` drops trailing zeros of fixed-point decimals (a limit reads ``1.5 m/s``, not ``1.50 m/s``).
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        return _MISSING
    if not math.isfinite(v):
        return _MISSING
    text = format(v, fmt)
    if trim and "." in text and "e" not in text:
        text = text.rstrip("0").rstrip(".")
    if text.lstrip("-").strip("0.,") == "":  # "-0" or "-0.00"
        text = text.lstrip("-")
    return f"{text} {unit}" if unit else text


def format_violation(v: Mapping[str, Any]) -> str:
    """Render one violated check with units, e.g. ``S1: 24,280 kW > capacity 6,000 kW``.

    Parameters
    ----------
    v
        A row of :func:`heatmap.network.hydraulics.check_simulation` (``check``, ``element``, ``value``, ``limit``).
    """
    check, element = str(v.get("check")), str(v.get("element"))
    if check == "converged":
        return f"{element}: the simulation did not converge"
    fmt = _CHECK_FORMATS.get(check)
    if fmt is None:
        return f"{element}: {_number(v.get('value'), '.4g')} (limit {_number(v.get('limit'), '.4g')})"
    what, unit, value_fmt, cmp, limit_what, limit_fmt = fmt
    value, limit = _number(v.get("value"), value_fmt, unit), _number(v.get("limit"), limit_fmt, unit, trim=True)
    return f"{element}: {what}{value} {cmp} {limit_what}{limit}"


def _severity(v: Mapping[str, Any]) -> float:
    """How far a violation is beyond its limit (larger is worse); missing values count as worst."""
    try:
        value, limit = float(v["value"]), float(v["limit"])
    except (TypeError, ValueError, KeyError):
        return math.inf
    if not (math.isfinite(value) and math.isfinite(limit)):
        return math.inf
    if _CHECK_FORMATS.get(str(v.get("check")), ("", "", "", ">"))[3] == "<":
        return limit - value
    return value / limit if limit > 0 else value - limit


def _shown_violations(violations: list[Mapping[str, Any]], n: int) -> list[Mapping[str, Any]]:
    """Pick the ``n`` violations to print: the worst of each failed check in turn, fundamental checks first."""
    by_check: dict[str, list] = {}
    for v in violations:
        by_check.setdefault(str(v.get("check")), []).append(v)
    queues = [sorted(by_check[c], key=_severity, reverse=True) for c in _ordered_checks(by_check)]
    shown: list[Mapping[str, Any]] = []
    while len(shown) < n and any(queues):
        for q in queues:
            if q and len(shown) < n:
                shown.append(q.pop(0))
    return shown


def _assumption(summary: Mapping[str, Any], key: str) -> Any:
    return next((a.get("value") for a in summary.get("assumptions") or [] if a.get("key") == key), None)


def cold_consumer_list(cold: Sequence[Mapping[str, Any]], n: int = _MAX_IDS) -> str:
    """Name the first ``n`` consumers of a plan's ``cold_consumers``, each with its load and its own pipes' cooling."""
    text = ", ".join(
        f"{c['consumer_id']} ({c['peak_load_kw']:.3g} kW at peak: its own pipes cool its supply by "
        f"{c['own_pipes_cooling_k']:.1f} K of its {c['margin_k']:.1f} K margin)"
        for c in cold[:n]
    )
    return text + (f" and {len(cold) - n} more" if len(cold) > n else "")


def what_to_change(summary: Mapping[str, Any]) -> list[str]:
    """Say for each failed check what it means and which settings or inputs to change (one paragraph each).

    Resizing rounds are named only where more rounds could help (pipe sizes and pump lift), and only when
    they ran out; a source that is too small or too cold is not a matter of pipe sizes.
    """
    violations = summary.get("violations") or []
    checks = _ordered_checks(str(v.get("check")) for v in violations)
    # The simulations of the design and resize rounds (the pump-lift trim at the end is not a round).
    rounds = [r for r in summary.get("resize_rounds") or [] if r.get("action", "resize") != "pump lift trimmed"]
    max_rounds = _assumption(summary, "limits.max_resize_rounds")
    ran_out = isinstance(max_rounds, int | float) and len(rounds) > max_rounds
    n_rounds = len(rounds) - 1  # the first simulation is round 0
    plural = "s" if n_rounds != 1 else ""
    rounds_hint = f"; the {n_rounds} resizing round{plural} ran out: raise limits.max_resize_rounds" if ran_out else ""

    def ids(check: str) -> str:
        elements = [str(v.get("element")) for v in violations if v.get("check") == check]
        more = f" and {len(elements) - _MAX_IDS} more" if len(elements) > _MAX_IDS else ""
        return ", ".join(elements[:_MAX_IDS]) + more

    cold = summary.get("cold_consumers") or []
    cold_text = (
        f"; {len(cold)} consumers draw too little to keep warm the pipes that feed them alone: "
        f"{cold_consumer_list(cold)}: exclude them (the consumers' connect column) or raise "
        "consumers.min_peak_load_kw"
        if cold
        else ""
    )
    lines = []
    for check in checks:
        if check == "converged":
            text = (
                f"{ids(check)} did not converge: check that the sources' supply temperatures are above "
                "temperatures.return_c, that consumers have a load, that prosumers feed in less than the network "
                "draws and well above the return temperature (t_feed_in_c), and network.max_pump_lift_bar" + cold_text
            )
        elif check == "boiling":
            text = (
                "the water would boil where its pressure is below the saturation pressure at its temperature (above "
                "100 °C it needs more than the atmosphere's): raise network.p_return_bar, the pressure the sources "
                "hold, or lower the supply temperature (the sources' t_supply_c, prosumers' t_feed_in_c)"
            )
        elif check == "source_capacity":
            text = (
                f"sources {ids(check)} must supply more than their capacity: raise capacity_kw in the sources "
                "file, add a source, or connect fewer consumers"
            )
        elif check == "consumer_supply_temperature":
            text = (
                "consumers receive water colder than they need: raise the sources' t_supply_c (or "
                "temperatures.supply_c), or lower temperatures.min_consumer_supply_c (or their min_supply_c)"
                + cold_text
            )
        elif check == "consumer_dp":
            lift = _assumption(summary, "network.max_pump_lift_bar")
            text = (
                f"consumers lack differential pressure: raise network.max_pump_lift_bar "
                f"(now {_number(lift, 'g', 'bar')}) or lower limits.min_consumer_dp_bar{rounds_hint}"
            )
        elif check in ("velocity", "pressure_gradient"):
            key = "limits.max_velocity_m_per_s" if check == "velocity" else "limits.max_pressure_gradient_pa_per_m"
            cause = rounds_hint or "; the largest pipe of the catalogue is too small for this flow"
            text = f"pipes carry too much flow for their size: raise {key}{cause}"
        elif check == "energy_balance":
            text = "the simulation's energy balance does not close: check the loads and temperatures"
        else:
            text = f"{len([v for v in violations if v.get('check') == check])} violations"
        lines.append(textwrap.fill(f"{check}: {text}", width=120, initial_indent="  ", subsequent_indent="    "))
    hours = sorted({str(v["hour"]) for v in violations if v.get("hour") not in (None, "design peak")})
    if hours:
        text = (
            f"checks fail in hours of operation ({'; '.join(hours)}) that the design peak does not show (see "
            "operating_hours.csv): a source short of capacity needs a backup source (role: backup); supply too cold "
            "at low load needs operation.bypass or a lower min_supply_c; pipes or pressure short in one hour point "
            "at a site profile beyond its peak_load_kw"
        )
        lines.append(textwrap.fill(f"hours: {text}", width=120, initial_indent="  ", subsequent_indent="    "))
    return lines


def format_summary(summary: dict[str, Any], *, assumptions: bool = False) -> str:
    """Render a summary for the command line: one screen (status, key figures, exclusions, checks).

    Missing figures (``None``, NaN) show as "–".

    Parameters
    ----------
    summary
        Output of :func:`plan_summary`.
    assumptions
        Also list every assumption with its value and origin (``-v``; they are always in summary.json).
    """
    f = summary.get("figures") or {}
    n = summary.get("counts") or {}
    eb = summary.get("energy_balance") or {}
    violations = summary.get("violations") or []

    def figure(label: str, value: Any, fmt: str, unit: str, scale: float = 1.0, extra: str = "") -> str:
        scaled = value / scale if isinstance(value, int | float) and not isinstance(value, bool) else value
        text = _number(scaled, fmt)
        return f"{label:<27}{text:>12}" + (f" {unit}{extra}" if text != _MISSING else "")

    share = f.get("heat_losses_share")
    share_text = f" ({_number(100 * share, '.1f', '%')})" if isinstance(share, int | float) else ""
    pumping_energy = _number(f.get("pumping_energy_mwh_per_a"), ",.0f", "MWh/a")
    lines = [
        f"Scenario: {summary.get('scenario')}",
        f"Status:   {summary.get('status')}",
        f"CRS:      {summary.get('crs')}",
        "",
        f"{'Consumers connected':<27}{_number(n.get('consumers_connected'), ',.0f'):>12} of "
        f"{_number(n.get('consumers_given', n.get('consumers')), ',.0f')}",
        *_design_lines(summary.get("network_design") or {}),
        *_drawn_lines(summary.get("drawn_links") or []),
        *_existing_lines(summary.get("existing_pipes") or {}),
    ]
    excluded = {r: ids for r, ids in (summary.get("excluded_consumers") or {}).items() if ids}
    if excluded:
        parts = ", ".join(f"{r.replace('_', ' ')} {len(ids):,d}" for r, ids in excluded.items())
        lines.append(f"  excluded {sum(map(len, excluded.values())):,d}: {parts} (ids in summary.json)")
    for kind, fallback in (summary.get("fallbacks") or {}).items():
        lines.append(
            f"  {kind.replace('_', ' ')} {fallback.get('count', 0):,d}: {fallback.get('rule')} (ids in summary.json)"
        )
    far = summary.get("nearest_reachable_street_m") or {}
    if far:
        d = [v for v in far.values() if isinstance(v, int | float)]
        span = f"{_number(min(d), ',.0f')}–{_number(max(d), ',.0f')} m" if d else _MISSING
        lines.append(f"  no street a source reaches within the longest service pipe: nearest such street {span}")
    lines += [
        figure(
            "Route length",
            f.get("route_length_m"),
            ",.2f",
            "km",
            scale=1000,
            extra=_design_note(summary.get("network_design") or {}),
        ),
        figure("Heat delivered", f.get("heat_delivered_mwh_per_a"), ",.0f", "MWh/a"),
        figure("Design load (diversified)", summary.get("design_load_kw"), ",.0f", "kW"),
        figure("Heat losses", f.get("heat_losses_mwh_per_a"), ",.0f", "MWh/a", extra=share_text),
        figure("Pumping (electric)", f.get("pumping_power_kw"), ",.0f", "kW", extra=f", {pumping_energy}"),
        figure("Linear heat density", f.get("linear_heat_density_mwh_per_m_a"), ",.2f", "MWh/m/a"),
        figure("Capex", f.get("capex_eur"), ",.2f", "M€", scale=1e6),
        figure("LCOH", f.get("lcoh_eur_per_mwh"), ",.1f", "€/MWh", extra=_lcoh_spread(summary.get("consumer_costs"))),
        figure("NPV", f.get("npv_eur"), ",.2f", "M€", scale=1e6),
        figure("Energy balance residual", eb.get("residual_relative"), ".1e", "(|Q_src − Q_cons − Q_loss| / Q_src)"),
    ]
    lines += _money_lines(summary.get("economics") or {}, f) + [""]
    if summary.get("operation"):
        lines += _operation_lines(summary["operation"]) + [""]
    if not violations:
        lines.append("Checks: all hold")
    else:
        counts: dict[str, int] = {}
        for v in violations:
            counts[str(v.get("check"))] = counts.get(str(v.get("check")), 0) + 1
        order = _ordered_checks(counts)
        lines.append(f"Checks: {len(violations):,d} violated ({', '.join(f'{c} {counts[c]:,d}' for c in order)})")
        shown = _shown_violations(violations, _MAX_VIOLATION_LINES)
        lines += [f"  {str(v.get('check')):<28}{format_violation(v)}{_in_hour(v)}" for v in shown]
        if len(violations) > len(shown):
            lines.append(f"  … and {len(violations) - len(shown):,d} more (every one in summary.json)")
        lines.append("What to change:")
        lines += what_to_change(summary)
    if assumptions:
        lines += ["", "Assumptions (value, from scenario or default):"]
        lines += [f"  {a['key']} = {a['value']}  [{a['source']}]" for a in summary.get("assumptions") or []]
    return "\n".join(lines)


def _existing_pipes(pipes: pd.DataFrame) -> dict[str, Any]:
    """Summarise the pipes that lay there already: route length reused and upgraded, and what the upgrades cost.

    Empty where the plan has none.
    """
    if not (pipes.status != "new").any():
        return {}
    supply = pipes[pipes.circuit == "supply"]
    length = supply.groupby("status").length_m.sum()
    up = supply[supply.status == "upgraded"]
    return {
        "route_reused_m": float(length.get("existing", 0.0)),
        "route_upgraded_m": float(length.get("upgraded", 0.0)),
        "route_new_m": float(length.get("new", 0.0)),
        "upgrade_capex_eur": float(pipes.cost_eur[pipes.status == "upgraded"].sum()),
        "upgrades": [
            {"edge_id": int(e), "length_m": float(m), "dn_from": int(a), "dn_to": int(b)}
            for e, m, a, b in zip(up.edge_id, up.length_m, up.existing_dn, up.dn, strict=True)
        ],
    }


def _lcoh_spread(costs: Mapping[str, Any] | None) -> str:
    """Say after the plan's LCOH how it spreads over the consumers (their shares: economics.consumer_shares)."""
    spread = (costs or {}).get("lcoh_eur_per_mwh") or {}
    if not all(isinstance(spread.get(k), int | float) for k in ("min", "median", "max")):
        return ""
    lo, mid, hi = (_number(spread[k], ",.1f") for k in ("min", "median", "max"))
    return f" (per consumer {lo}–{hi}, median {mid})"


def _design_note(d: Mapping[str, Any]) -> str:
    """Say after the route length how the route was chosen (method, gap to its bound, solve time)."""
    if not d or d.get("method") == "steiner":
        return " (Steiner tree)"
    seconds = sum(v for v in (d.get("time_s") or {}).values() if isinstance(v, int | float))
    gap = d.get("gap")
    gap_text = _number(None if gap is None else 100 * gap, ".2f", "%")
    gap_eur = d.get("gap_eur")
    if isinstance(gap_eur, int | float) and math.isfinite(gap_eur):  # the gap in money too: near an NPV of 0 the
        gap_text += f", {_number(gap_eur / 1e6, ',.2f', 'M€')}"  # share says little
    status = " at its time limit" if d.get("status") == "time limit" else ""
    return f" ({d.get('method')} design{status}, {gap_text} above its bound, {seconds:.1f} s)"


def _drawn_lines(drawn: list[Mapping[str, Any]]) -> list[str]:
    """Render how many drawn lines the plan used, and why the others not (each one in summary.json)."""
    if not drawn:
        return []
    counts: dict[str, int] = {}
    for d in drawn:
        counts[str(d.get("status"))] = counts.get(str(d.get("status")), 0) + 1
    parts = ", ".join(f"{k} {v:,d}" for k, v in counts.items())
    return [f"  drawn lines {len(drawn):,d}: {parts} (each with why in summary.json drawn_links)"]


def _existing_lines(e: Mapping[str, Any]) -> list[str]:
    """Render how much of the route reuses existing pipes, and what their upgrades cost."""
    if not e:
        return []
    km = {k: _number(_scaled(e.get(f"route_{k}_m"), 1000), ",.2f", "km") for k in ("reused", "upgraded", "new")}
    upgraded = (
        f"{km['upgraded']} upgraded to a larger DN ({_number(_scaled(e.get('upgrade_capex_eur'), 1e6), ',.2f', 'M€')})"
        if e.get("route_upgraded_m")
        else "none upgraded"
    )
    return [f"  existing pipes: {km['reused']} reused as they are, {upgraded}, {km['new']} new"]


def _design_lines(d: Mapping[str, Any]) -> list[str]:
    """Render the optional consumers the design connected, and its rounds after sizing and hydraulics, if any."""
    lines = []
    if d.get("consumers_optional"):
        lines.append(
            f"  optional consumers connected {d.get('optional_connected'):,d} of {d.get('consumers_optional'):,d} "
            f"(their margin over the lifetime {_number(_scaled(d.get('optional_prizes_eur'), 1e6), ',.2f', 'M€')})"
        )
    rounds = (d.get("feedback") or {}).get("rounds") or []
    if len(rounds) > 1:
        each = ", ".join(
            f"{_number(_scaled(r.get('cost_as_built_eur'), 1e6), ',.2f', 'M€')} as built with "
            f"{r.get('failed_checks')} failed checks"
            for r in rounds
        )
        lines.append(
            f"  designed {len(rounds)} times after sizing and hydraulics ({each}); round "
            f"{d['feedback'].get('kept_round', 0) + 1} kept"
        )
    return lines


def _money_lines(money: Mapping[str, Any], f: Mapping[str, Any]) -> list[str]:
    """Render where the money comes from and each default price NPV or LCOH rests on (the rest: summary.json)."""
    lines = []
    if money.get("money_from"):
        from_year = money["money_from"] == "year of operation"
        source = "the year's heat trade (trade.csv)" if from_year else "economics prices"
        lines.append(
            f"  revenue {_number(_scaled(f.get('revenue_eur_per_a'), 1e6), ',.2f', 'M€/a')}, heat purchase "
            f"{_number(_scaled(f.get('heat_purchase_cost_eur_per_a'), 1e6), ',.2f', 'M€/a')}, from {source}"
        )
    lines += [f"  {d['message']}" for d in money.get("on_defaults") or [] if d.get("price")]
    lines += [f"  note: {n}" for n in money.get("notes") or []]
    return lines


def _scaled(value: Any, scale: float) -> Any:
    return value / scale if isinstance(value, int | float) and not isinstance(value, bool) else value


_MAX_COMPANY_LINES = 6


def _operation_lines(op: Mapping[str, Any]) -> list[str]:
    """Render the hours that matter (one line each) and the companies' trade (largest money first)."""
    lines = ["Hours that matter (the designed network simulated at each):"]
    for h in op.get("hours") or []:
        checks = [k.removeprefix("check_") for k, v in h.items() if k.startswith("check_") and v == "fails"]
        verdict = "checks hold" if not checks else "fails " + ", ".join(checks)
        feeders = h.get("feeders") or []
        running = ", ".join(str(f.get("source_id")) for f in feeders if f.get("kind") == "source") or "–"
        selling = [str(f.get("source_id")) for f in feeders if f.get("kind") == "prosumer"]
        selling_text = f"; selling {', '.join(selling)}" if selling else ""
        when = f" {h['time'][:13].replace('T', ' ')}h" if h.get("time") else ""
        target = h.get("t_supply_target_c")
        supply = f"; supply {_number(target, '.1f', '°C')}" if isinstance(target, int | float) else ""
        outdoor = f" at {_number(h.get('t_out_c'), '.1f', '°C')}" if isinstance(h.get("t_out_c"), int | float) else ""
        boost = h.get("boost_kw")
        boosted = f" ({_number(boost, ',.0f', 'kW')} boosted)" if isinstance(boost, int | float) and boost > 0 else ""
        lines.append(
            f"  {h.get('hour')}{when}{outdoor}: {_number(h.get('load_kw'), ',.0f', 'kW')} drawn{supply}; running "
            f"{running}{boosted}{selling_text}; {verdict}"
        )
        lines.append(
            f"    critical Δp {h.get('critical_consumer_id') or _MISSING} "
            f"{_number(h.get('critical_consumer_dp_bar'), '.2f', 'bar')} (min "
            f"{_number(h.get('min_consumer_dp_bar'), '.2f', 'bar')}); least supply margin "
            f"{h.get('least_margin_consumer_id') or _MISSING} {_number(h.get('least_margin_k'), '+.1f', 'K')}; "
            f"max {_number(h.get('max_velocity_m_per_s'), '.2f', 'm/s')} in pipe "
            f"{_number(h.get('max_velocity_pipe_id'), '.0f')}, max {_number(h.get('max_pa_per_m'), ',.0f', 'Pa/m')} "
            f"in pipe {_number(h.get('max_pa_per_m_pipe_id'), '.0f')}"
        )
    totals = op.get("totals_mwh_per_a") or {}
    missing = [
        f"{k.removesuffix('_mwh')} {_number(totals.get(k), ',.0f', 'MWh/a')}"
        for k in ("unserved_mwh", "curtailed_mwh")
        if totals.get(k)
    ]
    if missing:
        lines.append("  " + "; ".join(missing))
    companies = sorted(op.get("companies") or [], key=lambda c: -abs(c.get("net_eur") or 0))
    if companies:
        lines.append("Heat trade over the year (bought / sold, net money received):")
        for c in companies[:_MAX_COMPANY_LINES]:
            lines.append(
                f"  {str(c.get('company')):<30}{_number(c.get('bought_mwh'), ',.0f'):>10} / "
                f"{_number(c.get('sold_mwh'), ',.0f'):>9} MWh/a {_number(c.get('net_eur'), '+,.0f', '€/a'):>16}"
            )
        if len(companies) > _MAX_COMPANY_LINES:
            lines.append(f"  … and {len(companies) - _MAX_COMPANY_LINES} more (summary.json, trade.csv)")
    return lines


def _in_hour(v: Mapping[str, Any]) -> str:
    """Name the hour of operation a violation belongs to (none for the design peak)."""
    hour = v.get("hour")
    return f" [{hour}]" if hour and hour != "design peak" else ""


def _through_building(plan: PlanLike) -> dict[str, Any]:
    """Return the sources and connected consumers whose service pipe runs through another building.

    With the detour that would have kept it out at most (``streets.service_detour_m``).
    """
    ids: list[str] = []
    for layer, key in ((plan.sources, "source_id"), (plan.consumers[plan.consumers.connected], "consumer_id")):
        if "service_through_building" in layer:
            ids += sorted(map(str, layer.loc[layer.service_through_building.astype(bool), key]))
    return {"ids": ids, "detour_m": getattr(plan.scenario.streets, "service_detour_m", None)}


def _nearest_reachable_street_m(plan: PlanLike) -> dict[str, float | None]:
    """Distance from each consumer without a path to a source to the nearest street a source reaches."""
    ids = plan.excluded.get("no_path_to_source", [])
    if not ids or "reachable_street_m" not in plan.consumers:
        return {}
    d = plan.consumers.set_index("consumer_id").reachable_street_m.reindex(ids)
    return {str(k): (float(v) if np.isfinite(v) else None) for k, v in d.items()}


_EMPTY_GEOMETRY = {"point": "Point", "line": "LineString", "polygon": "Polygon", "polygon_or_point": "Point"}


def write_gpkg(
    layers: dict[str, gpd.GeoDataFrame],
    path: Path,
    *,
    specs: dict | None = None,
    metadata: Mapping[str, str] | None = None,
    note: str = "",
    abstract: str = "",
) -> dict[str, str]:
    """Write the layers in order, titled from their definitions; return each layer's geometry type.

    Parameters
    ----------
    layers
        Layer name → features.
    path
        The GeoPackage (version 1.3, for older readers).
    specs
        Layer name → definition; default :func:`heatmap.maps.layers.load_layer_specs`.
    metadata
        Key → value stored as JSON in the GeoPackage's metadata (``gpkg_metadata``, scope ``geopackage``;
        GDAL shows it as ``GPKG_METADATA_ITEM_1``).
    note
        Appended to every layer's description (``gpkg_contents.description``, shown by QGIS).
    abstract
        Appended to every layer's description after the definition's own (QGIS shows the description as the
        layer's abstract: Layer Properties → Information and Metadata), e.g. the scenario and its assumptions.

    Returns
    -------
    dict
        Layer name → geometry type written (for :func:`heatmap.maps.qgis_style.write_layer_styles`).
    """
    from heatmap.maps.layers import load_layer_specs

    specs = specs or load_layer_specs()
    geometry_types = {}
    for name, gdf in layers.items():
        kinds = set(gdf.geom_type.dropna())
        multi = "MultiPolygon" in kinds
        gdf.to_file(
            path,
            layer=name,
            driver="GPKG",
            engine="pyogrio",
            # through Arrow, a third faster, the same tables; not where pyogrio would make the polygons multi-part,
            # which through Arrow it does in the frame given (pyogrio 0.13), changing the plan's own layer
            use_arrow=not multi and _plain_fields(gdf),
            promote_to_multi=multi,
            # an empty layer still gets its geometry type (else "Unknown", which QGIS draws with no renderer)
            **({} if kinds else {"geometry_type": _EMPTY_GEOMETRY[specs[name].geometry]}),
            dataset_options={"VERSION": "1.3"},
            layer_options={
                "IDENTIFIER": specs[name].title,
                "DESCRIPTION": " ".join(
                    t for t in (f"heatmap {__version__}: {name}{note}.", specs[name].description, abstract) if t
                ),
            },
        )
        geometry_types[name] = "MultiPolygon" if multi else next(iter(kinds), _EMPTY_GEOMETRY[specs[name].geometry])
    if metadata:
        _write_gpkg_metadata(path, metadata)
    return geometry_types


def _plain_fields(frame: gpd.GeoDataFrame) -> bool:
    """Whether every field is a numpy column of numbers or booleans, or of texts (and missing values)."""
    import pandas as pd

    for name, column in frame.items():
        if name == frame.geometry.name:
            continue
        dtype = column.dtype
        if not isinstance(dtype, np.dtype) or dtype.kind not in "biufO":
            return False
        if dtype.kind == "O" and pd.api.types.infer_dtype(column, skipna=True) not in ("string", "empty"):
            return False
    return True


GPKG_METADATA_URI = "urn:x-heatmap:run"
"""``md_standard_uri`` of the JSON that heatmap stores in a GeoPackage's ``gpkg_metadata`` table."""


def _write_gpkg_metadata(path: Path, metadata: Mapping[str, str]) -> None:
    """Store ``metadata`` as JSON in the GeoPackage metadata extension, for the whole GeoPackage.

    Written with SQLite rather than as GDAL dataset metadata: GDAL would then leave a ``.aux.xml`` file
    beside the GeoPackage whenever it is read (measured with GDAL 3.12), which is not written by heatmap.
    """
    try:
        with contextlib.closing(sqlite3.connect(path)) as con, con:
            con.executescript(_CREATE_GPKG_METADATA)
            for table in ("gpkg_metadata", "gpkg_metadata_reference"):
                con.execute(
                    "INSERT INTO gpkg_extensions (table_name, column_name, extension_name, definition, scope) "
                    "SELECT ?, NULL, 'gpkg_metadata', 'http://www.geopackage.org/spec120/#extension_metadata', "
                    "'read-write' WHERE NOT EXISTS (SELECT 1 FROM gpkg_extensions WHERE table_name = ?)",
                    (table, table),
                )
            row = con.execute(
                "INSERT INTO gpkg_metadata (md_scope, md_standard_uri, mime_type, metadata) "
                "VALUES ('dataset', ?, 'application/json', ?)",
                (GPKG_METADATA_URI, json.dumps(dict(metadata), ensure_ascii=False)),
            )
            con.execute(
                "INSERT INTO gpkg_metadata_reference (reference_scope, md_file_id) VALUES ('geopackage', ?)",
                (row.lastrowid,),
            )
    except sqlite3.Error as exc:
        raise OutputError(f"cannot write the metadata of {path} ({exc})") from exc


_CREATE_GPKG_METADATA = """
CREATE TABLE IF NOT EXISTS gpkg_extensions (
    table_name TEXT, column_name TEXT, extension_name TEXT NOT NULL, definition TEXT NOT NULL,
    scope TEXT NOT NULL, CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name));
CREATE TABLE IF NOT EXISTS gpkg_metadata (
    id INTEGER CONSTRAINT m_pk PRIMARY KEY ASC NOT NULL, md_scope TEXT NOT NULL DEFAULT 'dataset',
    md_standard_uri TEXT NOT NULL, mime_type TEXT NOT NULL DEFAULT 'text/xml', metadata TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS gpkg_metadata_reference (
    reference_scope TEXT NOT NULL, table_name TEXT, column_name TEXT, row_id_value INTEGER,
    timestamp DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')), md_file_id INTEGER NOT NULL,
    md_parent_id INTEGER, CONSTRAINT crmr_mfi_fk FOREIGN KEY (md_file_id) REFERENCES gpkg_metadata(id),
    CONSTRAINT crmr_mpi_fk FOREIGN KEY (md_parent_id) REFERENCES gpkg_metadata(id));
"""


def assumptions_text(summary: Mapping) -> str:
    """Return a summary's assumptions as one line of text for a layer's abstract: ``key = value (source); ...``.

    Takes both forms heatmap's summaries use: a list of ``{key, value, source}`` rows or a mapping
    ``key → {value, origin}``.
    """
    found = summary.get("assumptions") or []
    rows = (
        [(k, v.get("value"), v.get("origin")) for k, v in found.items()]
        if isinstance(found, Mapping)
        else [(a.get("key"), a.get("value"), a.get("source")) for a in found]
    )
    return "Assumptions: " + "; ".join(f"{key} = {value} ({source})" for key, value, source in rows) + "."


def plan_file_names(plan: PlanLike) -> tuple[str, ...]:
    """Return the files :func:`write_plan_files` writes for a plan."""
    return OUTPUT_FILES + TABLE_FILES + (OPERATION_FILES if getattr(plan, "operation", None) is not None else ())


def write_plan_files(
    plan: PlanLike,
    folder: Path,
    *,
    partial: bool = False,
    tiles: str | None = None,
    summary: dict | None = None,
    source_colours: Mapping[str, str] | None = None,
) -> None:
    """Write a plan's files into an existing folder, without a swap of its own (the caller's write is atomic).

    ``plan.gpkg`` (styled for QGIS), ``map.html`` and ``summary.json``; with a year of operation also
    :data:`OPERATION_FILES`. A partial plan carries its status and failed checks in the GeoPackage's metadata,
    its layer descriptions, the sources' ``status`` field and a banner on the map.

    Parameters
    ----------
    plan
        A :class:`heatmap.plan.Plan`.
    folder
        Where the files go.
    partial
        Mark the plan as partial (written although checks failed); implied when its checks fail.
    tiles
        A tile URL template for the web map (online use); ``None`` draws no base map.
    summary
        The summary to write, where the caller adds to :func:`plan_summary` (default: that summary).
    source_colours
        A colour by source id for the web map (a study's unit colours, those of its plots): the sources drawn in
        them and the pipes coloured by network in their source's; default: one red for every source.
    """
    from heatmap.maps import qgis_style, report

    partial = partial or not plan.ok
    checks = failed_checks(plan)
    metadata = {
        "heatmap_version": __version__,
        "heatmap_scenario": str(plan.scenario.name),
        "heatmap_status": "partial" if partial else "ok",
        "heatmap_failed_checks": ", ".join(checks),
    }
    note = f" (PARTIAL plan: checks failed: {', '.join(checks)})" if partial else ""
    banner = f"Partial plan: written although checks fail ({', '.join(checks)}); see summary.json" if partial else None
    layers = plan_layers(plan)
    year = getattr(plan, "operation", None)
    operating = year is not None
    gpkg_layers = {**layers, OPERATION_LAYER: pipes_by_hour(plan)} if operating else layers
    design_later = summary is None and not getattr(plan, "design_known", True)
    summary = summary if summary is not None else plan_summary(plan, partial=partial, design=not design_later)
    abstract = f"Scenario: {plan.scenario.name}. " + assumptions_text(summary)
    metadata["heatmap_assumptions"] = json.dumps(summary.get("assumptions") or [], ensure_ascii=False)
    gpkg = folder / "plan.gpkg"
    qgis_style.write_layer_styles(gpkg, write_gpkg(gpkg_layers, gpkg, metadata=metadata, note=note, abstract=abstract))
    if len(plan.pipes) >= forked.MIN_PIPES:  # its GeoJSON written meanwhile, the same files on a second core
        exports.start_geojson_layers(folder, gpkg)
    write_plan_map(
        layers, folder / "map.html", summary, title=plan.scenario.name, tiles=tiles, banner=banner,
        source_colours=source_colours,
    )  # fmt: skip
    write_plan_tables(plan, folder)
    if year is not None:
        for name, table in operation_tables(year).items():
            write_csv(table, folder / name, float_format="%.4f" if name == "trade.csv" else "%.6g")
    if design_later:  # the design's bound, computed beside the plan and the files above, is waited for only now
        summary["network_design"] = plan.design
    report.write_plan_report(summary, layers, folder / "report.html", hourly=getattr(year, "hourly", None))
    write_json(summary, folder / "summary.json")


def write_plan_map(
    layers: Mapping[str, gpd.GeoDataFrame],
    path: Path,
    summary: Mapping[str, Any],
    *,
    title: str,
    tiles: str | None = None,
    banner: str | None = None,
    source_colours: Mapping[str, str] | None = None,
) -> Path:
    """Write a plan's web map: the connected consumers, those not connected with why, and the key figures.

    The candidate routes the plan uses are not drawn (its pipes lie on them), so every feature drawn can be clicked.

    Parameters
    ----------
    layers
        The plan's layers (:func:`plan_layers`).
    path
        The HTML file.
    summary
        The plan's summary (:func:`plan_summary`): the key figures and the prices they rest on.
    title, tiles, banner
        As :func:`heatmap.maps.webmap.write_map`.
    source_colours
        A colour by source id (see :func:`write_plan_files`); ``None``: the sources' layer colour.
    """
    import dataclasses

    from heatmap.maps import webmap
    from heatmap.maps.layers import ColorClass, ColorRule, load_layer_specs

    specs = load_layer_specs()
    drawn = dict(layers)
    sources = drawn.get("sources")
    if source_colours and sources is not None and len(sources):
        ids = sources.source_id.astype(str)
        names = sources["name"].fillna(ids) if "name" in sources else ids
        specs["sources"] = dataclasses.replace(
            specs["sources"],
            color=ColorRule(
                kind="categorized",
                field="source_id",
                classes=tuple(
                    ColorClass(color=source_colours.get(sid, specs["sources"].unmatched_color), label=str(n), value=sid)
                    for sid, n in zip(ids, names, strict=True)
                ),
            ),
        )
        rule = specs["pipes"].color_by
        if rule is not None:
            colours = {sid: c for sid, c in source_colours.items() if sid in set(ids)}
            specs["pipes"] = dataclasses.replace(specs["pipes"], color_by=dataclasses.replace(rule, colors=colours))
    consumers = drawn.get("consumers")
    if consumers is not None and "connected" in consumers and "left_out" in drawn:  # the others are in left_out
        drawn["consumers"] = consumers[consumers.connected.astype(bool)]
        specs["consumers"] = dataclasses.replace(specs["consumers"], title="Connected consumers (annual demand)")
    streets = drawn.get("streets")
    if streets is not None and "in_plan" in streets:  # a street the plan uses lies under its pipe: not drawn
        drawn["streets"] = streets[~streets.in_plan.astype(bool)]
        specs["streets"] = dataclasses.replace(specs["streets"], title="Candidate routes the plan does not use")
    panel = webmap.plan_panel(summary)
    return webmap.write_map(drawn, path, specs=specs, title=title, tiles=tiles, banner=banner, panel=panel)


def write_plan_tables(plan: PlanLike, folder: Path) -> None:
    """Write the plan's tables for spreadsheets (:data:`TABLE_FILES`): the consumers and the pipe quantities."""
    from heatmap.io.exports import consumers_table, pipe_quantities

    write_csv(consumers_table(plan.consumers), folder / "consumers.csv", float_format="%.10g")
    write_csv(pipe_quantities(plan.pipes), folder / "pipe_quantities.csv", float_format="%.2f")


def write_plan(
    plan: PlanLike,
    out_dir: Path,
    *,
    partial: bool = False,
    tiles: str | None = None,
    inputs: Iterable[Path] = (),
) -> dict[str, Path]:
    """Write the plan's GeoPackage, web map and summary into ``out_dir`` in one swap (:func:`write_atomically`).

    A plan whose checks fail is written as partial: its summary says so, ``plan.gpkg`` carries the status
    and the failed checks in its metadata, its layer descriptions and the sources' ``status`` field, and
    ``map.html`` shows them in a banner.

    Parameters
    ----------
    plan
        A :class:`heatmap.plan.Plan`.
    out_dir
        The output folder (created if missing).
    partial
        Mark the plan as partial (written although checks failed); implied when its checks fail.
    tiles
        A tile URL template for the web map (online use); ``None`` draws no base map.
    inputs
        The run's input files, none of which may lie in ``out_dir``
        (see :func:`heatmap.io.output_folder.check_output_folder`).

    Returns
    -------
    dict
        File name → path written.
    """
    partial = partial or not plan.ok

    def write(tmp: Path) -> None:
        write_plan_files(plan, tmp, partial=partial, tiles=tiles)

    title = f"heatmap plan, scenario {plan.scenario.name}" + (" (partial plan: checks failed)" if partial else "")
    written = write_atomically(out_dir, plan_file_names(plan), write, inputs=inputs, title=title)
    logger.info("Wrote %s to %s%s", ", ".join(written), out_dir, " (partial plan)" if partial else "")
    return written


def write_json(data: dict[str, Any], path: Path) -> None:
    """Write a summary as indented UTF-8 JSON (NaN and infinity as null)."""
    path.write_text(json.dumps(_jsonable(data), indent=2, ensure_ascii=False, allow_nan=False), encoding="utf-8")
