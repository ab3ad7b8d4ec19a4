"""Plan a heat network end to end: scenario → inputs → candidate graph → route → size → simulate → cost.

:func:`plan_from_scenario` runs the stages in order and returns a :class:`Plan` holding every table the
outputs need, the checks' verdict and each stage's time. Writing the plan is :mod:`heatmap.io.outputs`.

Design load: each consumer draws its peak load times the simultaneity factor of all consumers of its
network (the diversified simultaneous peak), so trunk pipes see the flow they were sized for.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from heatmap import economics
from heatmap._errors import InputDataError, ScenarioError
from heatmap.demand import buildings as demand
from heatmap.io import forked, inputs, outputs, streets
from heatmap.network import (
    candidates,
    design,
    design_heuristic,
    design_milp,
    hydraulics,
    links,
    operation,
    routing,
    sizing,
)
from heatmap.scenario import (
    BboxStreets,
    Design,
    GraphmlStreets,
    LinesStreets,
    NoStreets,
    Operation,
    PbfStreets,
    PlaceStreets,
    Scenario,
    Streets,
    SupplyCurve,
    Temperatures,
    XmlStreets,
)

if TYPE_CHECKING:
    from pathlib import Path

    import networkx as nx

    from heatmap.energy.trade import SiteLoads

logger = logging.getLogger(__name__)

STAGES = ("load", "candidate graph", "routing", "sizing", "hydraulics", "economics")
"""The stages :func:`plan_from_scenario` reports progress for, in order."""


@dataclass
class Plan:
    """A routed, sized, simulated and costed network with everything needed to write it out."""

    scenario: Scenario
    crs: CRS
    sources: gpd.GeoDataFrame
    consumers: gpd.GeoDataFrame
    streets: gpd.GeoDataFrame
    pipes: gpd.GeoDataFrame
    junctions: gpd.GeoDataFrame
    violations: pd.DataFrame
    figures: dict[str, float]
    energy_balance: dict[str, float]
    rounds: list[dict]
    excluded: dict[str, list[str]]
    timings_s: dict[str, float] = field(default_factory=dict)
    input_columns: dict[str, dict[str, str]] = field(default_factory=dict)
    """Per input (sources, consumers): the file column that fed each field."""
    operation: OperatingYear | None = None
    """The hours that matter and the heat trade over a year (scenario section ``operation``)."""
    money: dict = field(default_factory=dict)
    """Where the money figures come from and the settings each rests on (:func:`heatmap.economics.money_origins`)."""
    _design: dict = field(default_factory=dict, repr=False)
    _settle_design: Callable[[], dict] | None = field(default=None, repr=False, compare=False)
    """Waits for the design's bound computed beside the plan and returns the design's summary (:attr:`design`)."""
    fallbacks: dict = field(default_factory=dict)
    """Input values ignored for a documented default, by kind: count, rule and ids (OSM buildings' floor tags)."""
    left_out: gpd.GeoDataFrame | None = None
    """Every consumer and building the plan does not connect, with why (:func:`heatmap.io.outputs.left_out_layer`)."""
    drawn_lines: gpd.GeoDataFrame | None = None
    """Each drawn line of ``links.path`` as drawn, with what the plan made of it (``status``, ``why``), or ``None``."""
    no_go_areas: gpd.GeoDataFrame | None = None
    """The no-go polygons of ``links.no_go_path``, or ``None``."""
    tunnel_ways_left_out: int = 0
    """The OSM ways in tunnels left out of the candidate routes (``streets.tunnels``)."""
    cold_consumers: list[dict] = field(default_factory=list)
    """Consumers whose own pipes cool their supply by much of its margin (``consumer_id``, ``peak_load_kw``,
    ``own_pipes_cooling_k``, ``margin_k``; :data:`COLD_END_SHARE`)."""

    @property
    def ok(self) -> bool:
        """Whether every check holds."""
        return self.violations.empty

    @property
    def design(self) -> dict:
        """How the route was chosen: method, objective, bound and gap (:meth:`heatmap.network.design.Design.summary`).

        Where the design's lower bound is still being computed beside the plan (:class:`_Bound`), the first read
        waits for it: a writer reads it last (:func:`heatmap.io.outputs.write_plan_files`).
        """
        if self._settle_design is not None:
            settle, self._settle_design = self._settle_design, None
            self._design = settle()
        return self._design

    @design.setter
    def design(self, value: dict) -> None:
        self._design, self._settle_design = value, None

    @property
    def design_known(self) -> bool:
        """Whether :attr:`design` is known without waiting."""
        return self._settle_design is None

    def __getstate__(self) -> dict:
        """Pickle the plan with its design settled (not the process computing its bound)."""
        self.design  # noqa: B018
        return self.__dict__.copy()


class _Timer:
    """Time the plan's stages; report finished stages to a progress callback."""

    def __init__(self, progress: Callable[[str], None] | None):
        self.timings: dict[str, float] = {}
        self._progress = progress

    @contextmanager
    def stage(self, name: str, *, accumulate: bool = False) -> Iterator[None]:
        """Time a stage; ``accumulate`` adds to earlier runs of it (a sub-stage repeated in rounds)."""
        t0 = time.perf_counter()
        yield
        again = name in self.timings
        self.timings[name] = self.timings.get(name, 0.0) * accumulate + time.perf_counter() - t0
        if self._progress is not None and name in STAGES and not again:  # a stage run again is reported once
            self._progress(name)


@dataclass(frozen=True)
class Inputs:
    """What the load stage hands on: the plan's inputs in its metric CRS.

    Attributes
    ----------
    crs : pyproj.CRS
        The plan's metric CRS.
    sources : geopandas.GeoDataFrame
        The heat sources (:func:`heatmap.io.inputs.prepare_sources`).
    consumers : geopandas.GeoDataFrame
        The consumers planned for (those below the scenario's minimum demand or peak load left out).
    streets : geopandas.GeoDataFrame
        The candidate routes: the street segments and the scenario's candidate links.
    left_out : dict
        Consumer ids left out, by reason (``below_min_annual_demand``, ``below_min_peak_load``).
    left_out_rows : geopandas.GeoDataFrame
        The consumers (and OSM buildings given no demand) left out before routing, one row each with its
        ``reason`` (a key of ``left_out`` or of the demand estimate's ``left_out_ids``).
    no_go : geopandas.GeoDataFrame or None
        The no-go polygons (``links.no_go_path``): no pipe, street or service, enters one.
    tunnel_ways_left_out : int
        The OSM ways in tunnels left out of the streets (``streets.tunnels``).
    """

    crs: CRS
    sources: gpd.GeoDataFrame
    consumers: gpd.GeoDataFrame
    streets: gpd.GeoDataFrame
    left_out: dict[str, list[str]]
    left_out_rows: gpd.GeoDataFrame
    no_go: gpd.GeoDataFrame | None = None
    tunnel_ways_left_out: int = 0


@dataclass(frozen=True)
class RoutedNetwork:
    """What the routing stage hands on to sizing, hydraulics and operation.

    Attributes
    ----------
    cand : heatmap.network.candidates.CandidateNetwork
        The candidate edges, nodes and terminals the network was routed on.
    tree : heatmap.network.routing.RoutedTree
        The routed trees.
    source_at : dict
        Graph node → id of the source there (the pressure-holding sources first on a shared network).
    cons_routed : pandas.DataFrame
        The routed consumers' rows, indexed by consumer id.
    consumer_node : numpy.ndarray
        The graph node of each routed consumer, in the order of ``cons_routed``.
    t_supply_by_tree : dict
        Tree index → its design supply temperature (°C).
    economic : heatmap.network.design.Design or None
        The economic design (``None`` for ``design.method: steiner``).
    design_summary : dict
        The design's summary (:meth:`heatmap.network.design.Design.summary`; only the method for ``steiner``).
    """

    cand: candidates.CandidateNetwork
    tree: routing.RoutedTree
    source_at: dict[int, str]
    cons_routed: pd.DataFrame
    consumer_node: np.ndarray
    t_supply_by_tree: dict[int, float]
    economic: design.Design | None = None
    design_summary: dict = dataclasses.field(default_factory=dict)
    bound: _Bound | None = None
    """The heuristic design's bound while it is computed beside the plan (:func:`_settled_summary`)."""
    problem: design.DesignProblem | None = None


class _Bound:
    """A design's lower bound (its LP relaxation, :func:`heatmap.network.design_milp.lp_bound`) beside the plan.

    It runs in a process forked from the plan's (:class:`heatmap.io.forked.Call`) where the system can fork and this
    process may start processes (not a daemonic one, such as a Dask worker), else on a thread (HiGHS and SCIP release
    the GIL while they solve). On a machine of two cores or more the bound costs the plan no time: the sizing and the
    pandapipes runs go on meanwhile, and, with no thread of heatmap's running, they may fork processes of their own
    (:func:`heatmap.network.hydraulics.solve_networks`). A plan that fails does not wait for it.
    """

    def __init__(
        self, problem: design.DesignProblem, *, time_limit_s: float, mip_time_s: float, mip_solver: str
    ) -> None:
        self._found: design_milp.Bound | None = None
        self._error: BaseException | None = None
        self._call: forked.Call[design_milp.Bound] | None = None
        self._thread: threading.Thread | None = None
        if not forked.why_not_fork():
            self._call = forked.Call(
                _bound_of, problem, time_limit_s, mip_time_s, mip_solver, name="heatmap-design-bound"
            )
        else:
            self._thread = threading.Thread(
                target=self._run,
                args=(problem, time_limit_s, mip_time_s, mip_solver),
                name="heatmap-design-bound",
                daemon=True,
            )
            self._thread.start()

    def _run(self, problem: design.DesignProblem, time_limit_s: float, mip_time_s: float, mip_solver: str) -> None:
        try:
            self._found = _bound_of(problem, time_limit_s, mip_time_s, mip_solver)
        except BaseException as exc:  # handed to the plan's thread by result()
            self._error = exc

    def result(self) -> design_milp.Bound:
        """Wait for the bound and return it (its value NaN where HiGHS did not finish in time)."""
        if self._call is not None:
            return self._call.result()
        assert self._thread is not None
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._found is not None
        return self._found

    def stop(self) -> None:
        """End the bound's process if it still runs (a design round not kept)."""
        if self._call is not None:
            self._call.stop()


def _bound_of(
    problem: design.DesignProblem, time_limit_s: float, mip_time_s: float, mip_solver: str
) -> design_milp.Bound:
    return design_milp.lp_bound(
        design.index_problem(problem), time_limit_s=time_limit_s, mip_time_s=mip_time_s, mip_solver=mip_solver
    )


def _settled_summary(routed: RoutedNetwork) -> dict:
    """Return the design's summary with its bound and gap, once the bound computed beside the plan is known."""
    if routed.bound is not None and routed.economic is not None and routed.problem is not None:
        d = routed.economic
        found = routed.bound.result()
        found.onto(d)
        d.time_s["bound"] = found.time_s
        routed.design_summary.update(d.summary(routed.problem))
        logger.info("Heuristic design's bound: %s", d.describe())
    return routed.design_summary


def _streets_of(scn: Scenario) -> Streets:
    """Return the scenario's streets section (a scenario read for a plan names one: :mod:`heatmap.scenario`)."""
    if scn.streets is None:
        raise ScenarioError("the scenario names no streets: give 'streets.source' and 'streets.path'")
    return scn.streets


def _load(scn: Scenario) -> Inputs:
    """Read the scenario's sources, consumers and candidate routes."""
    st = _streets_of(scn)
    src_raw = inputs.read_features(
        scn.sources.path,
        inline=scn.sources.inline,
        id_column=scn.sources.id_column,
        layer=scn.sources.layer,
        what="sources",
    )
    bbox = scn.study_area.bbox
    if bbox is not None:
        w, s, e, n = bbox
        lon, lat = (w + e) / 2, (s + n) / 2
    else:
        centre = src_raw.to_crs(4326).geometry.union_all().centroid
        lon, lat = centre.x, centre.y
    crs = inputs.metric_crs_for(lon, lat, given=scn.study_area.crs)
    src = inputs.prepare_sources(
        src_raw, crs=crs, default_t_supply_c=scn.temperatures.supply_c, columns=scn.sources.columns
    )

    street_gdf = _streets(scn, st, crs)
    tunnel_ways_left_out = 0 if street_gdf is None else int(street_gdf.attrs.get("tunnel_ways_left_out", 0))
    if scn.consumers.osm_buildings:
        if not isinstance(st, PbfStreets):  # the scenario refuses this (heatmap.scenario)
            raise ScenarioError(
                "'consumers.osm_buildings' needs 'streets.source: pbf' (the buildings are read from it)"
            )
        buildings = streets.buildings_from_pbf(st.path).to_crs(crs)
        cons = demand.estimate_building_demand(buildings, scn.demand)
        no_demand = _buildings_given_no_demand(buildings, cons.attrs.get("left_out_ids", {}))
        cons = cons.assign(company=cons.consumer_id.astype(str), t_feed_in_c=np.nan)  # each building its own
        where_cons = str(st.path)
    else:
        no_demand = None
        raw = inputs.read_features(
            scn.consumers.path,
            inline=scn.consumers.inline,
            id_column=scn.consumers.id_column,
            layer=scn.consumers.layer,
            what="consumers",
            allowed_geometry=("Point", "Polygon", "MultiPolygon"),
        )
        cons = inputs.prepare_consumers(
            raw,
            crs=crs,
            full_load_hours_h=scn.demand.full_load_hours_h,
            default_min_supply_c=scn.temperatures.min_consumer_supply_c,
            columns=scn.consumers.columns,
        )
        where_cons = raw.attrs["where"]
    no_go = _no_go(scn, crs)
    if scn.links.used or no_go is not None:  # no-go areas keep the streets out too
        street_gdf = _with_links(scn, crs, street_gdf, src, cons, no_go)
    if street_gdf is None:  # the scenario refuses this (heatmap.scenario)
        raise ScenarioError("'streets.source: none' needs candidate links: 'links.path' or 'links.site_to_site'")

    if bbox is not None:
        w, s, e, n = bbox
        area = gpd.GeoSeries([shapely.box(w, s, e, n)], crs=4326).to_crs(crs).iloc[0]
        street_gdf = street_gdf[street_gdf.intersects(area)].reset_index(drop=True)
        street_gdf["edge_id"] = np.arange(len(street_gdf))
        area_name = "the study area 'study_area.bbox'"
    else:
        area = shapely.box(*street_gdf.total_bounds).buffer(st.max_service_length_m)
        routes = [f"'{key}' {path}" for key, path in _route_files(scn, st).items()]
        files = "".join(f"{r}, " for r in routes)
        area_name = f"the extent of the candidate routes ({files}plus {st.max_service_length_m:g} m)"
        _refuse_routes_elsewhere(src, cons, area, routes, margin_m=st.max_service_length_m)
        if scn.links.site_to_site:
            area_name += (
                f" (site-to-site links join sites at most 'links.site_link_max_length_m' "
                f"{scn.links.site_link_max_length_m:g} m apart: raise it if they are that far)"
            )
        cut = {k: n for k, n in street_gdf.attrs.get("no_go_left_out", {}).items() if n}
        if cut:
            area_name += (
                f" (the no-go areas 'links.no_go_path' left out {' and '.join(f'{n} {k}' for k, n in cut.items())}:"
                " check them against the sites)"
            )
    outside = src[~src.within(area)]
    if len(outside):
        raise InputDataError(
            f"{src_raw.attrs.get('where', 'sources')}: sources {', '.join(outside.source_id)} lie outside "
            f"{area_name}; check their coordinates and CRS, and that the candidate routes reach them"
        )
    if not scn.consumers.osm_buildings:
        out = cons[~cons.intersects(area)]
        if len(out):
            raise InputDataError(
                f"{where_cons}: consumers {inputs._rows(out.consumer_id)} lie outside {area_name}; "
                f"check their coordinates and CRS, and that the candidate routes reach them"
            )
    clash = set(src.source_id) & set(cons.consumer_id)
    if clash:
        raise InputDataError(
            f"ids {inputs._rows(sorted(clash))} name both a source ({src.attrs.get('where', 'sources')}) and a "
            f"consumer ({where_cons}); make them unique"
        )
    given = cons["connect"].to_numpy() if "connect" in cons else np.full(len(cons), "")
    by_rule = np.where(cons.annual_demand_mwh < scn.design.optional_below_mwh_per_a, "optional", "required")
    cons["connect"] = np.where(given != "", given, by_rule)
    left_out = {
        "zero_demand": (cons.annual_demand_mwh <= 0) & (cons.peak_load_kw <= 0),  # nothing to deliver
        "below_min_annual_demand": cons.annual_demand_mwh < scn.consumers.min_annual_demand_mwh,
        "below_min_peak_load": cons.peak_load_kw < scn.consumers.min_peak_load_kw,
        "excluded": cons.connect == "excluded",
    }
    earlier = np.zeros(len(cons), dtype=bool)
    for reason, mask in left_out.items():  # each consumer under its first reason
        left_out[reason] = mask & ~earlier
        earlier |= mask.to_numpy()
    excluded = {reason: sorted(cons.consumer_id[mask]) for reason, mask in left_out.items()}
    dropped = np.logical_or.reduce(list(left_out.values()))
    reason_of = np.select(list(left_out.values()), list(left_out), default="")
    rows = pd.DataFrame(cons.loc[dropped, ["consumer_id", "annual_demand_mwh", "peak_load_kw"]]).assign(
        reason=reason_of[dropped], geometry=cons.geometry[dropped].to_numpy()
    )
    for col in ("name", "building_type"):
        if col in cons:
            rows.insert(1, col, cons.loc[dropped, col])
    left_out_rows = gpd.GeoDataFrame(
        pd.concat([r for r in (rows, no_demand) if r is not None], ignore_index=True), geometry="geometry", crs=crs
    )
    cons = cons[~dropped].reset_index(drop=True)
    if cons.empty:
        reasons = ", ".join(f"{len(ids)} {reason.replace('_', ' ')}" for reason, ids in excluded.items() if ids)
        raise InputDataError(
            f"{where_cons}: no consumer is left to plan for ({reasons}; check 'consumers.min_annual_demand_mwh' and "
            "'consumers.min_peak_load_kw', the consumers' demand and their 'connect' values)"
        )
    _check_source_temperatures(src, cons, scn.temperatures, where_cons=where_cons)
    return Inputs(
        crs=crs,
        sources=src,
        consumers=cons,
        streets=street_gdf,
        left_out=excluded,
        left_out_rows=left_out_rows,
        no_go=no_go,
        tunnel_ways_left_out=tunnel_ways_left_out,
    )


UNTAGGED_USE = "use not tagged (OSM building=yes)"
"""The building type of a left-out OSM building tagged only ``building=yes``."""


def _buildings_given_no_demand(buildings: gpd.GeoDataFrame, ids_by_reason: dict[str, list[str]]) -> pd.DataFrame:
    """Return the OSM buildings the demand estimate left out (no heat demand), one row each with its reason."""
    reason = {str(i): r for r, ids in ids_by_reason.items() for i in ids}
    ids = buildings["id"].astype(str)
    keep = ids.isin(reason).to_numpy()
    b = buildings.loc[keep]
    return pd.DataFrame(
        {
            "consumer_id": ids[keep].to_numpy(),
            # the OSM tag as given, its plain 'yes' (a building whose use is not tagged) said in words
            "building_type": b["building"].astype(str).replace({"yes": UNTAGGED_USE}).to_numpy()
            if "building" in b
            else None,
            "annual_demand_mwh": 0.0,
            "peak_load_kw": 0.0,
            "reason": ids[keep].map(reason).to_numpy(),
            "geometry": b.geometry.to_numpy(),
        }
    )


def _route_files(scn: Scenario, st: Streets) -> dict[str, Path]:
    """Return the files the candidate routes are read from, by their setting (``streets.path``, ``links.path``)."""
    files = {}
    if isinstance(st, (PbfStreets, XmlStreets, GraphmlStreets, LinesStreets)):
        files["streets.path"] = st.path
    if scn.links.path is not None:
        files["links.path"] = scn.links.path
    return files


def _refuse_routes_elsewhere(
    src: gpd.GeoDataFrame, cons: gpd.GeoDataFrame, area: shapely.Geometry, routes: list[str], *, margin_m: float
) -> None:
    """Refuse candidate routes that lie away from every source and consumer: a file of another place or CRS."""
    if not routes or src.within(area).any() or cons.intersects(area).any():
        return
    raise InputDataError(
        f"{' and '.join(routes)}: no source and no consumer lies within the extent of these candidate routes (plus "
        f"{margin_m:g} m): they are of another place, or in another CRS; check them against the sources "
        f"({src.attrs.get('where', 'sources')}) and consumers"
    )


def _streets(scn: Scenario, st: Streets, crs: CRS) -> gpd.GeoDataFrame | None:
    """Read the street segments the scenario names, in the plan's CRS (``None`` for ``streets.source: none``)."""
    if isinstance(st, NoStreets):
        return None
    if isinstance(st, LinesStreets):
        lines = links.read_lines(st.path, layer=st.layer, crs=crs, what="street lines", layer_setting="streets.layer")
        if lines.empty:
            raise InputDataError(f"{st.path}: the layer of street lines holds no lines ('streets.path')")
        factor = {"street": scn.links.cost_factors.street}  # a 'surface' column of a street file is its own
        street = links.drawn_links(
            lines.drop(columns="surface", errors="ignore"), cost_factors=factor, default_surface="street"
        )
        # its own nodes and feature numbers: drawn links joined later are numbered from link:0 and feature 1 too
        joined = links.combine(None, [street], snap_m=scn.links.snap_m, node_prefix="street")
        return joined.assign(street_feature=joined.link_feature, link_feature=np.nan)
    keep_tunnels = st.tunnels == "include"
    if isinstance(st, PbfStreets):
        G = streets.graph_from_pbf(st.path, network_type=st.network_type, keep_tunnels=keep_tunnels)
    elif isinstance(st, XmlStreets):
        G = streets.graph_from_xml(st.path, keep_tunnels=keep_tunnels)
    elif isinstance(st, GraphmlStreets):
        G = streets.graph_from_graphml(st.path, keep_tunnels=keep_tunnels)
    else:  # downloaded live: a place, a bbox or polygons
        live = functools.partial(streets.graph_from_osm_live, network_type=st.network_type, keep_tunnels=keep_tunnels)
        if isinstance(st, PlaceStreets):
            G = live(place=st.place)
        elif isinstance(st, BboxStreets):
            if scn.study_area.bbox is None:  # the scenario refuses this (heatmap.scenario)
                raise ScenarioError("'streets.source: bbox' needs 'study_area.bbox'")
            w, s, e, n = scn.study_area.bbox
            G = live(bbox=(w, s, e, n))
        else:
            area = inputs.read_features(
                st.path, id_column="id", what="study areas", allowed_geometry=("Polygon", "MultiPolygon")
            )
            G = live(polygon=area.to_crs(4326).union_all())
    return streets.street_edges(G, crs)


def _footprints(*layers: gpd.GeoDataFrame) -> np.ndarray:
    """Return the building footprints (polygons) among the layers' geometries: consumers, left-out buildings."""
    geoms = np.concatenate([layer.geometry.to_numpy() for layer in layers])
    polygons = [shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON]
    return geoms[np.isin(shapely.get_type_id(geoms), polygons)]


def _no_go(scn: Scenario, crs: CRS) -> gpd.GeoDataFrame | None:
    """Read the scenario's no-go polygons (``links.no_go_path``), or ``None``."""
    if scn.links.no_go_path is None:
        return None
    return links.read_lines(
        scn.links.no_go_path,
        layer=scn.links.no_go_layer,
        crs=crs,
        what="no-go areas",
        allowed=("Polygon",),
        layer_setting="links.no_go_layer",
    )


def _with_links(
    scn: Scenario,
    crs: CRS,
    street_gdf: gpd.GeoDataFrame | None,
    src: gpd.GeoDataFrame,
    cons: gpd.GeoDataFrame,
    no_go: gpd.GeoDataFrame | None,
) -> gpd.GeoDataFrame:
    """Add the scenario's candidate links (drawn lines, site-to-site lines, minus no-go areas) to the streets."""
    lk = scn.links
    factors = lk.cost_factors.model_dump()
    left_out: dict[str, int] = {}
    if no_go is not None and street_gdf is not None:
        given = len(street_gdf)
        street_gdf = links.avoid(street_gdf, no_go, what="street segments", from_inside=False)
        left_out["street segments"] = given - len(street_gdf)
        if given and street_gdf.empty and not lk.used:
            raise InputDataError(
                f"{no_go.attrs.get('where', 'links.no_go_path')}: the no-go areas ('links.no_go_path') leave out all "
                f"{given} street segments, so no route is left; check the no-go polygons against the streets"
            )
    parts = []
    if lk.path is not None:
        drawn = links.read_lines(lk.path, layer=lk.layer, crs=crs, what="candidate links", layer_setting="links.layer")
        _refuse_lines_elsewhere(drawn, lk.path, street_gdf, src, cons, snap_m=lk.snap_m)
        forbidden = links.forbidden_mask(drawn)
        if street_gdf is not None:
            street_gdf = links.forbid(street_gdf, drawn[forbidden], within_m=lk.snap_m)
        parts.append(links.drawn_links(drawn, cost_factors=factors, default_surface=lk.default_surface))
    if lk.site_to_site:
        sites = pd.concat([src[["geometry"]], cons[["geometry"]]], ignore_index=True)
        parts.append(
            links.site_links(
                gpd.GeoDataFrame(sites, crs=crs),
                max_length_m=lk.site_link_max_length_m,
                neighbours=lk.site_link_neighbours,
                cost_factor=factors[lk.site_link_surface],
                surface=lk.site_link_surface,
            )
        )
    sites = pd.concat([src[["source_id"]].set_axis(["id"], axis=1), cons[["consumer_id"]].set_axis(["id"], axis=1)])
    sites = gpd.GeoDataFrame(sites, geometry=[*src.geometry, *cons.geometry], crs=crs)
    kept = links.avoid_all(parts, no_go, sites=sites, streets=street_gdf is not None and len(street_gdf) > 0)
    left_out["links"] = sum(len(p) for p in parts) - sum(len(k) for k in kept)
    out = links.combine(street_gdf, kept, snap_m=lk.snap_m, street_cost_factor=factors["street"])
    if no_go is not None:
        out.attrs["no_go_left_out"] = left_out
        out.attrs["no_go"] = gpd.GeoDataFrame(
            {"area_m2": no_go.geometry.area.to_numpy()}, geometry=no_go.geometry.to_numpy(), crs=crs
        )
    if lk.path is not None:
        past_no_go = drawn.feature.isin(set(kept[0].link_feature)).to_numpy()  # kept[0]: the drawn links
        joined = drawn.feature.isin(set(out.link_feature.dropna())).to_numpy()
        out.attrs["drawn"] = (
            pd.DataFrame(
                {
                    "feature": drawn.feature.to_numpy(),
                    "length_m": drawn.geometry.length.to_numpy(),
                    "forbidden": forbidden.to_numpy(),
                    "in_no_go": ~past_no_go & ~forbidden.to_numpy(),
                    "one_node": past_no_go & ~joined,  # both ends joined one node: a ring, or shorter than snap_m
                }
            )
            .groupby("feature")
            .agg({"length_m": "sum", "forbidden": "any", "in_no_go": "all", "one_node": "all"})
        )
        as_drawn = drawn[["feature", "geometry"]].assign(drawn_status=links.statuses(drawn))
        as_drawn = as_drawn.dissolve("feature", aggfunc="first")  # each as drawn (its parts joined)
        as_drawn["dn"] = parts[0].groupby("link_feature").existing_dn.first()  # parts[0]: the drawn links, as read
        out.attrs["drawn_lines"] = as_drawn
    return out


DRAWN_REACH_M = 1000.0
"""A layer of drawn lines none of which comes this near the extent of the streets, sources and consumers is refused: it
is of another place, or in another CRS."""


def _refuse_lines_elsewhere(
    drawn: gpd.GeoDataFrame,
    path: Path,
    street_gdf: gpd.GeoDataFrame | None,
    src: gpd.GeoDataFrame,
    cons: gpd.GeoDataFrame,
    *,
    snap_m: float,
) -> None:
    """Refuse a layer of drawn lines that holds none, or none near the streets, sources or consumers."""
    if drawn.empty:
        raise InputDataError(
            f"{path}: the layer of candidate links holds no lines ('links.path'): draw them, or leave 'links.path' out"
        )
    bounds = [src.total_bounds, cons.total_bounds]
    if street_gdf is not None and len(street_gdf):
        bounds.append(street_gdf.total_bounds)
    b = np.array(bounds)
    extent = shapely.box(b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())
    if not drawn.intersects(extent.buffer(max(snap_m, DRAWN_REACH_M))).any():
        raise InputDataError(
            f"{path}: none of its {len(drawn)} lines ('links.path') comes within {DRAWN_REACH_M:g} m of the streets, "
            "sources and consumers: the layer is of another place, or in another CRS; check it against them"
        )


PIPE_RATING_C = 120.0
"""EN 253 pre-insulated bonded pipes are rated for continuous operation at 120 °C (peaks to 140 °C): water fed in
hotter is warned of (:func:`_check_source_temperatures`)."""


def _check_source_temperatures(
    src: gpd.GeoDataFrame, cons: gpd.GeoDataFrame, t: Temperatures, *, where_cons: str = "consumers"
) -> None:
    """Refuse sources that cannot supply any consumer at its minimum supply temperature, and consumers no source can.

    Warn of sources and prosumers that feed in water above the pipes' rating (:data:`PIPE_RATING_C`).
    """
    where = src.attrs.get("where", "sources")
    feeds = {"sources": src.set_index("source_id").t_supply_c}
    if "t_feed_in_c" in cons:
        feeds["prosumers"] = cons.set_index("consumer_id").t_feed_in_c
    # on a supply curve the network runs at most at its top temperature, whatever a source could give
    top = t.supply_curve.max_c if t.supply_curve is not None else np.inf
    hot = {kind: t_c[np.minimum(t_c, top) > PIPE_RATING_C] for kind, t_c in feeds.items()}
    named = [f"{kind} {', '.join(f'{i} ({c:g} °C)' for i, c in t_c.items())}" for kind, t_c in hot.items() if len(t_c)]
    if named:
        logger.warning(
            "%s feed the network water above %g °C, the continuous rating of EN 253 pre-insulated pipes (peaks to "
            "140 °C): the plan simulates it, but such heat needs a heat exchanger or a mixing shunt to the network's "
            "temperature; lower their t_supply_c or t_feed_in_c",
            " and ".join(named),
            PIPE_RATING_C,
        )
    too_cold = src[src.t_supply_c <= t.return_c]
    if len(too_cold):
        r = too_cold.iloc[0]
        raise InputDataError(
            f"{where}: source {r.source_id} supplies {r.t_supply_c:g} °C, at or below the return temperature "
            f"{t.return_c:g} °C ('temperatures.return_c'): it cannot deliver heat; raise its t_supply_c"
        )
    need = cons.min_supply_c.min() if "min_supply_c" in cons else t.min_consumer_supply_c
    too_cold = src[src.t_supply_c < need]
    if len(too_cold):
        r = too_cold.iloc[0]
        raise InputDataError(
            f"{where}: source {r.source_id} supplies {r.t_supply_c:g} °C, colder than the {need:g} °C that every "
            f"consumer needs at least ('temperatures.min_consumer_supply_c' or the consumers' min_supply_c): raise its "
            f"t_supply_c (a heat pump can lift excess heat to the network temperature) or lower the consumers' "
            f"minimum"
        )
    _check_consumer_temperatures(cons, feeds, top, where_cons)


def _check_consumer_temperatures(cons: gpd.GeoDataFrame, feeds: dict[str, pd.Series], top: float, where: str) -> None:
    """Refuse consumers needing supply water hotter than anything feeds the network (no route can serve them).

    ``cons``: the consumers planned for (those excluded already left out); ``feeds``: the sources' and prosumers'
    temperatures by kind; ``top``: the supply curve's top temperature (``inf`` without one).
    """
    hottest_by = {kind: t_c.max() for kind, t_c in feeds.items() if t_c.notna().any()}
    if "min_supply_c" not in cons or not hottest_by:
        return
    kind, hottest = max(hottest_by.items(), key=lambda kv: kv[1])
    hottest = min(float(hottest), top)
    rows = cons[cons.min_supply_c.to_numpy(dtype=float) > hottest]
    if rows.empty:
        return
    named = inputs._rows(f"{i} ({c:g} °C)" for i, c in zip(rows.consumer_id, rows.min_supply_c, strict=True))
    source = "the supply curve's top ('temperatures.supply_curve')" if hottest == top else f"of the {kind}"
    raise InputDataError(
        f"{where}: consumers {named} need supply water hotter than the hottest the network gets, {hottest:g} °C "
        f"({source}): no route can serve them; lower their min_supply_c, raise a source's t_supply_c, or set them "
        f"excluded (the consumers' connect column)"
    )


def plan_from_scenario(
    scn: Scenario,
    *,
    progress: Callable[[str], None] | None = None,
    site_profiles_kw: pd.DataFrame | None = None,
) -> Plan:
    """Plan the network a scenario describes.

    Parameters
    ----------
    scn
        A validated scenario.
    progress
        Called with each stage's name when it finishes (see :data:`STAGES`).
    site_profiles_kw
        Hourly net heat (kW; + buys, − sells) of sites over the operation's year, one column per consumer id,
        in place of those sites' columns of ``operation.site_profiles`` (a study drives its sink's draw by the
        concepts' dispatch this way); every column must name a consumer.

    Returns
    -------
    Plan
    """
    st = _streets_of(scn)
    timer = _Timer(progress)
    with timer.stage("load"):
        loaded = _load(scn)
        src, cons = loaded.sources, loaded.consumers
        input_columns = {"sources": src.attrs.get("columns", {}), "consumers": cons.attrs.get("columns", {})}

    with timer.stage("candidate graph"):
        cand = candidates.build_candidates(
            loaded.streets,
            src,
            cons,
            max_service_length_m=st.max_service_length_m,
            no_go=loaded.no_go,
            buildings=_footprints(cons, loaded.left_out_rows) if st.service_detour_m > 0 else None,
            detour_m=st.service_detour_m,
        )
        G = candidates.candidate_graph(cand.edges)

    curve = scn.temperatures.supply_curve if scn.operation is not None else None
    catalogue = sizing.load_catalogue(
        scn.network.catalogue, insulation_series=scn.network.insulation_series, cost_column=scn.network.cost_column
    )
    _check_existing_dns(
        loaded.streets, catalogue, {"street_feature": st.path if isinstance(st, LinesStreets) else None,
                                    "link_feature": scn.links.path}
    )  # fmt: skip
    dns = _dn_costs(scn, catalogue, curve)
    net_round = functools.partial(
        _network_round,
        scn,
        st,
        loaded,
        cand,
        G,
        timer,
        curve=curve,
        catalogue=catalogue,
        dns=dns,
        site_profiles_kw=site_profiles_kw,
    )
    done = _with_feedback(net_round, scn.design, dns)
    routed, site_year, case, designed = done.routed, done.site_year, done.case, done.designed
    sim, violations, rounds, edges = case.simulation, case.violations, case.rounds, case.edges

    year = None
    if scn.operation is not None and site_year is not None:
        with timer.stage("operation"):
            loads, outdoor = site_year
            year = _operation(
                scn.operation,
                loads,
                outdoor,
                src,
                routed,
                curve=curve,
                designed=designed,
                case=case,
                processes=scn.network.processes,
            )
            parts = [violations.assign(hour="design peak"), *(h.violations for h in year.hours)]
            violations = pd.concat([v for v in parts if len(v)] or parts[:1], ignore_index=True)

    with timer.stage("economics"):
        edges = _priced(edges, catalogue.cost_eur_per_m)
        money, sellers = None, {}
        if year is not None and scn.operation is not None:
            op = scn.operation
            money = economics.trade_money(
                year.trade, operator=op.operator, own_sites_heat_value_eur_per_mwh=op.own_sites_heat_value_eur_per_mwh
            )
            priced = src[(src.company.astype(str) != op.operator) & src.heat_price_eur_per_mwh.notna()]
            sellers = dict(zip(priced.source_id.astype(str), priced.heat_price_eur_per_mwh.astype(float), strict=True))
        figures = economics.key_figures(
            edges,
            routed.cons_routed,
            sim.pipes,
            sim.sources,
            scn.economics,
            year=money,
            losses_mwh_per_a=None if year is None else year.totals["losses_mwh"],
            unserved_mwh_per_a=0.0 if year is None else year.totals["unserved_mwh"],
        )
        origins = economics.money_origins(scn, money, seller_prices_eur_per_mwh=sellers)
        served = routed.cons_routed.index.isin(sim.consumers.consumer_id)
        shares = economics.consumer_shares(
            edges,
            sim.pipes.groupby("edge_id").q_loss_kw.sum(),
            pd.DataFrame(
                {
                    "consumer_id": routed.cons_routed.index[served],
                    "node": routed.consumer_node[served],
                    "peak_load_kw": routed.cons_routed.peak_load_kw.to_numpy()[served],
                    "annual_demand_mwh": routed.cons_routed.annual_demand_mwh.to_numpy()[served],
                }
            ),
            figures,
            scn.economics,
        )
        own, cold = _own_pipes(edges, cand, cons, catalogue, scn.temperatures)
        tables = outputs.plan_tables(
            src=src,
            cons=cons,
            street_gdf=loaded.streets,
            cand=cand,
            tree=routed.tree,
            edges=edges,
            sim=sim,
            catalogue=catalogue,
            left_out=loaded.left_out | {"not_economic": _not_economic(routed)},
            left_out_rows=loaded.left_out_rows,
            own_peak=case.service,
            max_service_length_m=st.max_service_length_m,
            shares=shares,
            own_pipes=own,
        )
        plan = Plan(
            scn,
            loaded.crs,
            tables.sources,
            tables.consumers,
            tables.streets,
            tables.pipes,
            tables.junctions,
            violations,
            figures,
            sim.energy_balance,
            rounds,
            tables.excluded,
        )
    plan.timings_s = timer.timings
    plan.input_columns = input_columns
    plan.operation = year
    plan.money = origins
    plan._settle_design = functools.partial(_settled_summary, routed)  # read last by the writers: Plan.design
    plan.fallbacks = cons.attrs.get("fallbacks", {})
    plan.left_out = tables.left_out
    plan.drawn_lines, plan.no_go_areas = tables.drawn_lines, tables.no_go_areas
    plan.cold_consumers = cold
    plan.tunnel_ways_left_out = loaded.tunnel_ways_left_out
    plan.sources = _with_heat_over_the_year(plan.sources, plan.pipes, plan.consumers, year)
    logger.info(
        "Planned %r: %d consumers connected, %d violations; stage times %s",
        scn.name,
        int(plan.consumers.connected.sum()),
        len(violations),
        ", ".join(f"{k} {v:.2f} s" for k, v in timer.timings.items()),
    )
    return plan


def _route(
    scn: Scenario,
    st: Streets,
    loaded: Inputs,
    cand: candidates.CandidateNetwork,
    G: nx.Graph,
    *,
    curve: SupplyCurve | None,
    dns: pd.DataFrame,
    cost_scale: pd.Series | None = None,
) -> RoutedNetwork:
    """Route the network on the candidate graph ``G``: every reachable consumer to a source.

    With a supply curve (``curve``) every network is designed at the curve's highest temperature, else at its
    source's own.
    """
    src, cons = loaded.sources, loaded.consumers
    term = cand.terminals.set_index("terminal_id")
    far = term[~term.reachable]
    far_sources = far.index[far.role == "source"].tolist()
    fenced = far.index[(far.role == "source") & far.service_in_no_go].tolist()
    if fenced:
        raise InputDataError(
            f"sources {', '.join(fenced)}: every street within {st.max_service_length_m:g} m "
            f"('streets.max_service_length_m') lies across a no-go area ('links.no_go_path'), so no service pipe "
            "leaves them; draw a link out of the area ('links.path') or change the no-go polygons"
        )
    if far_sources:
        raise InputDataError(
            f"sources {', '.join(far_sources)} are farther than {st.max_service_length_m:g} m "
            f"('streets.max_service_length_m') from every street; move them or raise the setting"
            + ("; the no-go areas ('links.no_go_path') keep the streets in them out" if scn.links.no_go_path else "")
        )
    reach = term[term.reachable]
    src_nodes = _terminal_nodes(reach, "source")
    con_nodes = _terminal_nodes(reach, "consumer")
    shared = scn.network.supply_areas == "shared"
    method = _design_method(scn.design, shared=shared)
    result = None
    bound = None
    if method == "steiner":
        if shared:  # the largest source of each piece holds the pressure
            capacity = src.set_index("source_id").capacity_kw
            src_nodes = dict(sorted(src_nodes.items(), key=lambda kv: -capacity[kv[0]]))
        tree = routing.route_network(G, src_nodes, con_nodes, shared=shared)
    else:
        problem = _design_problem(
            scn, cand, src, cons, src_nodes, con_nodes, curve=curve, dns=dns, cost_scale=cost_scale
        )
        d = scn.design
        too_large = method != "optimal" and len(problem.edges) > d.bound_max_edges
        if method != "optimal" and not too_large:  # the bound goes on beside the heuristic, sizing and simulation
            bound = _Bound(
                problem, time_limit_s=d.bound_time_limit_s, mip_time_s=d.bound_mip_time_s, mip_solver=d.mip_solver
            )
        result = design_heuristic.heuristic_design(
            problem,
            bound=method == "optimal",  # the MILP needs it now; the heuristic's plan gets it on a thread of its own
            bound_time_s=d.bound_time_limit_s,
            bound_mip_time_s=0.0,  # the MILP's own search follows
            local_search_moves=d.local_search_moves,
            perturbations=d.perturbations,
            perturbations_max_consumers=d.perturbations_max_consumers,
            regions=d.regions,
            region_nodes=d.region_nodes,
            region_searches=d.region_searches,
        )
        if method == "optimal" and not result.gap <= d.mip_gap:  # the MILP goes on from it (NaN gap: no bound)
            result = design_milp.optimal_design(
                problem, time_limit_s=d.time_limit_s, mip_rel_gap=d.mip_gap, start=result, solver=d.mip_solver
            )
        if too_large:
            result.bound_from = (
                f"none: {len(problem.edges):,} candidate edges, more than design.bound_max_edges {d.bound_max_edges:,}"
            )
        tree = design.routed_tree(result)
    summary = {"method": "steiner"} if result is None else result.summary(problem)
    source_at = {node: sid for sid, node in src_nodes.items()}
    left = set(tree.unreachable) | set(result.not_economic if result is not None else ())
    routed_consumers = [c for c in con_nodes if c not in left]
    src_t = src.set_index("source_id").t_supply_c
    return RoutedNetwork(
        cand=cand,
        tree=tree,
        source_at=source_at,
        cons_routed=cons.set_index("consumer_id").loc[routed_consumers],
        consumer_node=np.array([con_nodes[c] for c in routed_consumers]),
        t_supply_by_tree={
            tr: float(src_t[source_at[root]]) if curve is None else curve.max_c
            for tr, root in tree.root_of_tree.items()
        },
        economic=result,
        design_summary=summary,
        bound=bound,
        problem=None if result is None else problem,
    )


ROUTE_CHECKS = ("consumer_dp", "consumer_supply_temperature", "velocity", "pressure_gradient")
"""Failed checks a re-design may mend by routing another way (a source's capacity, convergence and the energy
balance it cannot)."""


@dataclass(frozen=True)
class _Round:
    """One design of the network, sized and simulated at its design case."""

    routed: RoutedNetwork
    site_year: tuple[SiteLoads, pd.Series] | None
    case: hydraulics.DesignCase
    designed: operation.DesignedNetwork


def _network_round(
    scn: Scenario,
    st: Streets,
    loaded: Inputs,
    cand: candidates.CandidateNetwork,
    G: nx.Graph,
    timer: _Timer,
    *,
    curve: SupplyCurve | None,
    catalogue: pd.DataFrame,
    dns: pd.DataFrame,
    site_profiles_kw: pd.DataFrame | None,
    cost_scale: pd.Series | None = None,
) -> _Round:
    """Route (design), size and simulate the network once; ``cost_scale`` re-prices the design's edges by id."""
    with timer.stage("routing", accumulate=True):
        routed = _route(scn, st, loaded, cand, G, curve=curve, dns=dns, cost_scale=cost_scale)

    with timer.stage("sizing", accumulate=True):
        t, lim, net = scn.temperatures, scn.limits, scn.network
        water = sizing.water_properties(t.supply_c if curve is None else curve.max_c, t.return_c)
        # With a supply curve the design case runs at its highest temperature, and a preheating source delivers
        # its capacity over its own share (its booster adds the rest; operation.own_share).
        design_capacity_kw = _design_capacity_kw(loaded.sources, t, curve)
        edges = routed.tree.edges.merge(
            cand.edges[["edge_id", "length_m", "kind", "surface", "cost_factor", "existing_dn"]],
            on="edge_id",
            how="left",
        )
        node_load_kw = pd.Series(routed.cons_routed.peak_load_kw.to_numpy(), index=routed.consumer_node)
        feeds = _feed_ins(routed.tree, routed.source_at, node_load_kw, net.simultaneity, design_capacity_kw)
        site_year = None
        hour_cases: list[tuple[pd.Series, pd.Series]] = []
        if scn.operation is not None:
            not_routed = sorted(
                set(loaded.consumers.consumer_id.astype(str)) - set(routed.cons_routed.index.astype(str))
            )
            loads, outdoor = _site_loads(
                scn.operation,
                routed.cons_routed,
                t_return_c=t.return_c,
                given=site_profiles_kw,
                left_out={**loaded.left_out, "not_routed": not_routed},
            )
            site_year = (loads, outdoor)
            targets = None
            if curve is not None:
                targets = pd.Series(curve.at(outdoor.to_numpy()), index=outdoor.index, name="t_supply_target_c")
            hour_cases = _sizing_hours(
                scn.operation, loads, loaded.sources, routed, t_return_c=t.return_c, targets=targets
            )
        sized = sizing.design_network(
            edges,
            node_load_kw,
            routed.t_supply_by_tree,
            catalogue=catalogue,
            water=water,
            t_return_c=t.return_c,
            t_ground_c=t.ground_c,
            simultaneity=net.simultaneity,
            max_velocity_m_per_s=lim.max_velocity_m_per_s * (1 - net.sizing_margin),
            max_pressure_gradient_pa_per_m=lim.max_pressure_gradient_pa_per_m * (1 - net.sizing_margin),
            roughness_m=net.roughness_mm / 1000,
            lift_rule=sizing.PumpLiftRule(
                min_consumer_dp_bar=lim.min_consumer_dp_bar,
                local_loss_factor=net.local_loss_factor,
                margin_bar=net.pump_lift_margin_bar,
                min_lift_bar=net.initial_pump_lift_bar,
                max_lift_bar=net.max_pump_lift_bar,
            ),
            feed_in_kw=pd.Series(feeds.q_kw.to_numpy(), index=feeds.node.to_numpy()),
            hour_cases=hour_cases,
        )

    with timer.stage("hydraulics", accumulate=True):
        hydraulics.use_fast_conflict_check()
        case, designed = _design_case(
            scn,
            timer,
            sized,
            feeds,
            loaded.sources,
            routed,
            catalogue=catalogue,
            water=water,
            t_design_c=None if curve is None else curve.max_c,
            design_capacity_kw=design_capacity_kw,
        )
    return _Round(routed, site_year, case, designed)


def _priced(edges: pd.DataFrame, price_eur_per_m: pd.Series) -> pd.DataFrame:
    """Price the route's edges and say which pipes are new, existing (reused as they are) or upgraded.

    A new or upgraded pipe costs the catalogue's price per metre of street trench of its DN × the edge's length and
    surface factor (an upgrade lays the larger DN in the reopened trench); an existing pipe that carries its load as
    it is costs nothing. ``price_eur_per_m``: each DN's price per metre of street trench (the catalogue's).
    """
    per_m = price_eur_per_m.reindex(edges.dn).to_numpy()
    existing = edges.existing_dn.notna().to_numpy()
    as_is = existing & (edges.dn.to_numpy() == edges.existing_dn.to_numpy())
    return edges.assign(
        status=np.select([as_is, existing], ["existing", "upgraded"], "new"),
        cost_eur=np.where(as_is, 0.0, per_m * edges.length_m.to_numpy() * edges.cost_factor.to_numpy()),
    )


def _check_existing_dns(
    street_gdf: gpd.GeoDataFrame | None, catalogue: pd.DataFrame, files: dict[str, Path | None]
) -> None:
    """Refuse existing pipes whose DN the pipe catalogue does not hold (their size, losses and cost are unknown).

    ``files``: per feature column (``street_feature``, ``link_feature``), the file its features are of.
    """
    if street_gdf is None or "existing_dn" not in street_gdf:
        return
    dn = street_gdf.existing_dn
    unknown = street_gdf[dn.notna() & ~dn.isin(catalogue.index)]
    for column, path in files.items():
        here = unknown[unknown[column].notna()] if column in unknown else unknown.iloc[:0]
        if len(here):
            features = sorted(set(here[column].astype(int)))
            raise InputDataError(
                f"{path}: features {', '.join(map(str, features[:10]))}: existing pipes of DN "
                f"{', '.join(sorted({f'{v:g}' for v in here.existing_dn}))}, which the pipe catalogue does not list "
                f"(its DNs: {', '.join(map(str, catalogue.index))}); give the nearest catalogue DN"
            )


def _with_heat_over_the_year(
    sources: gpd.GeoDataFrame, pipes: gpd.GeoDataFrame, consumers: gpd.GeoDataFrame, year: OperatingYear | None
) -> gpd.GeoDataFrame:
    """Add each source's heat over the year (``heat_mwh_per_a``) and how it is counted (``heat_basis``).

    With a year of operation: the heat the source fed in over its hours (its booster's lift included). Without
    one, as the plan's economics counts it: its network's consumers' annual demand + the network's losses (design
    loss rate × 8760 h); left empty where several sources feed one network (no split is computed then).
    """
    out = sources.copy()
    ids = out.source_id.astype(str)
    if year is not None and year.hourly is not None:
        fed = year.hourly.source_kw.sum() / 1000
        out["heat_mwh_per_a"] = ids.map(fed.rename(index=str)).to_numpy(dtype=float)
        out["heat_basis"] = "fed in over the year of operation (its booster's lift included)"
        return out
    network = pipes.source_id.astype(str)
    service = pipes[(pipes.circuit == "supply") & pipes.consumer_id.notna()]
    network_of = dict(zip(service.consumer_id.astype(str), service.source_id.astype(str), strict=False))
    connected = consumers[consumers.connected.astype(bool)]
    demand = connected.annual_demand_mwh.groupby(connected.consumer_id.astype(str).map(network_of)).sum()
    losses = pipes.q_loss_kw.groupby(network).sum() * economics.HOURS_PER_YEAR / 1000
    heat = demand.add(losses, fill_value=0.0)
    feeding = out.q_supplied_kw.fillna(0).to_numpy() > 0
    shared = bool((feeding & ~ids.isin(set(network)).to_numpy()).any())  # a source feeding a network it is not root of
    out["heat_mwh_per_a"] = np.nan if shared else ids.map(heat).to_numpy(dtype=float)
    out["heat_basis"] = (
        "not split: several sources feed one network"
        if shared
        else "its network's consumers' annual demand + the network's losses (design loss rate × 8760 h)"
    )
    return out


def _own_pipes(
    edges: pd.DataFrame,
    cand: candidates.CandidateNetwork,
    cons: gpd.GeoDataFrame,
    catalogue: pd.DataFrame,
    t: Temperatures,
) -> tuple[pd.DataFrame, list[dict]]:
    """Return each connected consumer's own pipes' loss and cooling (:func:`heatmap.network.sizing.own_pipes`).

    And the consumers whose own pipes cool their supply by :data:`COLD_END_SHARE` of its margin (its source's supply
    temperature above its minimum) or more, the most cooled first; they are warned of.
    """
    service = cand.edges[(cand.edges.kind == "service") & cand.edges.terminal_id.isin(set(cons.consumer_id))]
    by_id = cons.set_index("consumer_id")
    own = sizing.own_pipes(
        edges,
        service.set_index("edge_id").terminal_id,
        catalogue.u_w_per_mk.reindex(edges.dn).to_numpy(),
        peak_kw=by_id.peak_load_kw,
        t_return_c=t.return_c,
        t_ground_c=t.ground_c,
    )
    need = by_id.min_supply_c.reindex(own.index) if "min_supply_c" in by_id else t.min_consumer_supply_c
    edge_of = service.set_index("terminal_id").edge_id.reindex(own.index)
    margin_k = edges.set_index("edge_id").t_supply_c.reindex(edge_of).to_numpy() - np.asarray(need, dtype=float)
    flagged = own.assign(margin_k=margin_k, peak_load_kw=by_id.peak_load_kw.reindex(own.index))
    flagged = flagged[flagged.own_pipes_cooling_k >= COLD_END_SHARE * flagged.margin_k]
    cold = [
        {"consumer_id": str(i), **{c: float(r[c]) for c in ("peak_load_kw", "own_pipes_cooling_k", "margin_k")}}
        for i, r in flagged.sort_values("own_pipes_cooling_k", ascending=False).iterrows()
    ]
    if cold:
        logger.warning(
            "%d consumers draw too little to keep warm the pipes that feed them alone: %s; a demand given in the "
            "wrong unit? Exclude them (the consumers' 'connect' column) or raise 'consumers.min_peak_load_kw'",
            len(cold),
            outputs.cold_consumer_list(cold),
        )
    return own, cold


COLD_END_SHARE = 0.5
"""A consumer whose own pipes (:func:`heatmap.network.sizing.own_pipes`) cool its supply by this share or more of
its margin (its source's supply temperature above its minimum) is warned of: its load is too small for its pipes."""


def _not_economic(routed: RoutedNetwork) -> list[str]:
    """Return the optional consumers the economic design left out."""
    return [] if routed.economic is None else routed.economic.not_economic


def _design_method(d: Design, *, shared: bool) -> str:
    """Return the routing method ``design.method`` asks for (``auto``: heuristic, steiner on a shared network)."""
    if d.method == "auto":
        return "steiner" if shared else "heuristic"
    if shared and d.method != "steiner":
        raise ScenarioError(
            f"'design.method: {d.method}' designs a network per source; with 'network.supply_areas: shared' use "
            f"'design.method: steiner' (or auto)"
        )
    return d.method


def _design_capacity_kw(src: gpd.GeoDataFrame, t: Temperatures, curve: SupplyCurve | None) -> pd.Series:
    """Return each source's capacity at the design case, by id.

    With a supply curve a preheating source delivers its capacity over its own share (its booster adds the rest;
    :func:`heatmap.network.operation.own_share`).
    """
    capacity = src.set_index("source_id").capacity_kw
    if curve is None:
        return capacity
    return capacity / operation.own_share(src.set_index("source_id").t_supply_c, curve.max_c, t.return_c)


def _dn_costs(scn: Scenario, catalogue: pd.DataFrame, curve: SupplyCurve | None) -> pd.DataFrame:
    """Return what each catalogue DN carries and costs at the plan's design temperatures and sizing limits.

    :func:`heatmap.network.design.dn_costs`; with a supply curve at its highest temperature.
    """
    t, lim, net, econ = scn.temperatures, scn.limits, scn.network, scn.economics
    t_supply = t.supply_c if curve is None else curve.max_c
    return design.dn_costs(
        catalogue,
        water=sizing.water_properties(t_supply, t.return_c),
        t_supply_c=t_supply,
        t_return_c=t.return_c,
        t_ground_c=t.ground_c,
        max_velocity_m_per_s=lim.max_velocity_m_per_s * (1 - net.sizing_margin),
        max_pressure_gradient_pa_per_m=lim.max_pressure_gradient_pa_per_m * (1 - net.sizing_margin),
        roughness_m=net.roughness_mm / 1000,
        heat_value_eur_per_mwh=econ.heat_cost_eur_per_mwh,
        annuity=economics.annuity_factor(econ.discount_rate, econ.lifetime_a),
        pumping=design.Pumping(econ.electricity_price_eur_per_mwh, econ.pump_efficiency, econ.pump_full_load_hours_h),
    )


def _with_feedback(net_round: Callable[..., _Round], d: Design, dns: pd.DataFrame) -> _Round:
    """Design, size and simulate the network; re-design while sizing and hydraulics say the design was wrong.

    The design prices a pipe on its cost curve at the load the design gives it; sizing and the pandapipes design case
    then choose its DN with what the design cannot see (each pipe's own simultaneity, the supply cooling on the way,
    the pump lift on long paths, resize rounds), and checks may fail. After each round every built edge is priced
    again as built: the capex of its DN in its trench and that DN's capitalised losses (``dns``; an existing pipe
    kept as it is, its losses only). The next design scales each built edge's cost by that over what it had priced
    (its cost as built, where the plan is on the catalogue curve), every other edge by the median of those ratios,
    and the edges on the path to a consumer or pipe that failed a check by ``1 + design.failed_check_penalty`` more.
    Re-designs run while the plan fails a check another route may pass (:data:`ROUTE_CHECKS`; ``design.feedback:
    failed_checks``) or each time (``always``), up to ``design.feedback_rounds``, for an economic design only; the
    round kept is the one with the fewest failed checks, then the least cost as built.
    Each round's figures are in the design's summary (``feedback``).
    """
    scale: pd.Series | None = None
    done: list[tuple[_Round, dict[str, Any]]] = []
    for i in range(d.feedback_rounds + 1):
        rnd = net_round(cost_scale=scale)
        economic = rnd.routed.economic
        built = _as_built(rnd.case.edges, dns)
        fails = rnd.case.violations
        done.append(
            (
                rnd,
                {
                    "round": i,
                    "objective_eur": None if economic is None else economic.objective_eur,
                    "cost_as_built_eur": float(built.sum()),
                    "failed_checks": len(fails),
                },
            )
        )
        again = d.feedback == "always" or fails.check.isin(ROUTE_CHECKS).any()
        if economic is None or not again or i == d.feedback_rounds:
            break
        priced = economic.edges.set_index("edge_id").cost_eur.reindex(built.index)
        ratio = (built / priced).where(priced > 0) if d.cost == "catalogue" else pd.Series(1.0, index=built.index)
        ratio = ratio.replace([np.inf, -np.inf], np.nan).dropna()
        ids = rnd.routed.cand.edges.edge_id.to_numpy()
        factor = pd.Series(float(ratio.median()) if len(ratio) else 1.0, index=ids)
        factor.update(ratio)
        factor[factor.index.isin(_blamed_edges(rnd))] *= 1 + d.failed_check_penalty
        scale = factor if scale is None else scale * factor
    kept_round, kept = min(done, key=lambda rd: (rd[1]["failed_checks"], rd[1]["cost_as_built_eur"]))
    for rnd, _ in done:  # the bounds of the rounds not kept are not needed
        if rnd is not kept_round and rnd.routed.bound is not None:
            rnd.routed.bound.stop()
    summary = kept_round.routed.design_summary  # its bound is added at the plan's end (_settled_summary)
    summary["feedback"] = {
        "mode": d.feedback,
        "kept_round": kept["round"],
        "rounds": [r for _, r in done],
    }
    logger.info(
        "Design feedback: %d round(s), kept round %d (%d failed checks, %.6g € as built)",
        len(done),
        kept["round"],
        kept["failed_checks"],
        kept["cost_as_built_eur"],
    )
    return kept_round


def _as_built(edges: pd.DataFrame, dns: pd.DataFrame) -> pd.Series:
    """Return each built edge's cost as built, by edge id: its DN's capex in its trench and capitalised losses.

    An existing pipe kept as it is costs its losses only (:func:`_priced`).
    """
    losses = dns.running_eur_per_m.reindex(edges.dn).to_numpy() * edges.length_m.to_numpy()
    cost = _priced(edges, dns.capex_eur_per_m).cost_eur.to_numpy() + losses
    return pd.Series(cost, index=edges.edge_id.to_numpy())


def _blamed_edges(rnd: _Round) -> set[int]:
    """Return the edges a round's failed checks point at: each failing pipe's, and the path to each failing site."""
    fails = rnd.case.violations
    edges = rnd.case.edges
    out = set(fails.edge_id.dropna().astype(int))
    sites = set(fails.element.astype(str))
    nodes = {
        n
        for cid, n in zip(rnd.routed.cons_routed.index.astype(str), rnd.routed.consumer_node, strict=True)
        if cid in sites
    }
    if nodes:
        up = dict(zip(edges.to_node, zip(edges.from_node, edges.edge_id, strict=True), strict=True))
        for node in nodes:
            while node in up:
                node, edge = up[node]
                out.add(int(edge))
    return out


def _design_problem(
    scn: Scenario,
    cand: candidates.CandidateNetwork,
    src: gpd.GeoDataFrame,
    cons: gpd.GeoDataFrame,
    src_nodes: dict[str, int],
    con_nodes: dict[str, int],
    *,
    curve: SupplyCurve | None,
    dns: pd.DataFrame,
    cost_scale: pd.Series | None = None,
) -> design.DesignProblem:
    """Build the economic design problem of a plan (:mod:`heatmap.network.design`).

    Each consumer's design load is its peak load × the simultaneity factor of all the plan's reachable consumers
    (the diversified peak the trunk carries); an optional consumer's prize is its annual demand × the heat margin
    over the lifetime. The cost curve is ``design.cost``'s, the catalogue's (``dns``, :func:`_dn_costs`) at the
    design temperatures and the sizing limits; ``cost_scale`` (by edge id) re-prices edges (:func:`_with_feedback`).
    """
    t, econ, d = scn.temperatures, scn.economics, scn.design
    af = economics.annuity_factor(econ.discount_rate, econ.lifetime_a)
    if d.cost == "linear":
        assert d.trench_eur_per_m is not None and d.pipe_eur_per_kw_m is not None  # the scenario checks this
        cost = design.CostCurve.linear(d.trench_eur_per_m, d.pipe_eur_per_kw_m)
        dns = dns.assign(running_eur_per_m=0.0)  # the linear cost counts no losses, of an existing pipe neither
    else:
        t_supply = t.supply_c if curve is None else curve.max_c
        cost = design.catalogue_curve(
            dns,
            segments=d.cost_segments,
            label=f"at {t_supply:g}/{t.return_c:g} °C, heat losses at {econ.heat_cost_eur_per_mwh:g} €/MWh and pumping "
            f"(at the DN's capacity, η {econ.pump_efficiency:g}, {econ.pump_full_load_hours_h:g} h a year) at "
            f"{econ.electricity_price_eur_per_mwh:g} €/MWh over the lifetime",
        )
    e = cand.edges
    existing = dns.reindex(e.existing_dn.to_numpy())  # NaN rows where no pipe lies
    edges = pd.DataFrame(
        {
            "edge_id": e.edge_id,
            "a": e.u,
            "b": e.v,
            "length_m": e.length_m,
            "weight_m": e.length_m * e.cost_factor,
            "existing_kw": existing.capacity_kw.to_numpy(),
            "existing_eur_per_m": existing.running_eur_per_m.to_numpy(),
            "cost_scale": 1.0 if cost_scale is None else e.edge_id.map(cost_scale).fillna(1.0).to_numpy(),
        }
    )
    capacity = _design_capacity_kw(src, t, curve)
    sources = pd.DataFrame(
        {"source_id": list(src_nodes), "node": list(src_nodes.values()), "capacity_kw": capacity[list(src_nodes)]}
    )
    c = cons.set_index("consumer_id").loc[list(con_nodes)]
    factor = float(sizing.simultaneity_factor(len(c), scn.network.simultaneity))
    consumers = pd.DataFrame(
        {
            "consumer_id": list(con_nodes),
            "node": list(con_nodes.values()),
            "load_kw": c.peak_load_kw.to_numpy() * factor,
            "required": c.connect.to_numpy() != "optional",
            "prize_eur": c.annual_demand_mwh.to_numpy() * _heat_margin(scn) / af,
        }
    )
    return design.DesignProblem(edges, sources, consumers, cost)


def _heat_margin(scn: Scenario) -> float:
    """Return what a MWh delivered earns over its heat cost.

    ``design.heat_margin_eur_per_mwh``, else ``economics.heat_price_eur_per_mwh − economics.heat_cost_eur_per_mwh``.
    """
    d, econ = scn.design, scn.economics
    if d.heat_margin_eur_per_mwh is not None:
        return d.heat_margin_eur_per_mwh
    return econ.heat_price_eur_per_mwh - econ.heat_cost_eur_per_mwh


def _terminal_nodes(reach: pd.DataFrame, role: str) -> dict[str, int]:
    """Terminal id → graph node of each reachable terminal of a role (``source``, ``consumer``)."""
    nodes = reach.node[reach.role == role].astype(int)
    return dict(zip(nodes.index.tolist(), nodes.tolist(), strict=True))


@dataclass(frozen=True)
class OperatingYear:
    """The designed network over a year of operation (see :mod:`heatmap.energy.trade`).

    Attributes
    ----------
    design : heatmap.network.operation.HourResult
        The design peak: the design case as finally simulated.
    hours : list of heatmap.network.operation.HourResult
        The other hours that matter, simulated and checked.
    trade : pandas.DataFrame
        Heat bought and sold per company and the money that changes hands.
    totals : dict
        The year's heat drawn, fed in by sources, sold by prosumers, unserved and curtailed (MWh).
    hourly : heatmap.energy.trade.Year
        Every hour of the year: each site's draw, each source's heat delivered (its booster's lift included).
    own_share : pandas.DataFrame or None
        Per hour and source, the share of its heat delivered that is its own (1 − the booster's lift; below 1
        where the supply curve is above the source's temperature); ``None`` without a supply curve (all its own).
    loss_scale : numpy.ndarray
        Each hour's heat losses over the design case's (:func:`_loss_scale`: 1 without a supply curve).
    """

    design: operation.HourResult
    hours: list[operation.HourResult]
    trade: pd.DataFrame
    totals: dict[str, float]
    hourly: Any = None
    own_share: pd.DataFrame | None = None
    loss_scale: np.ndarray | None = None

    @property
    def table(self) -> list[dict]:
        """One row per hour (the design peak first): what ran and the extremes of the checks."""
        return [h.figures() for h in (self.design, *self.hours)]


def _site_loads(
    op: Operation,
    cons_routed: pd.DataFrame,
    *,
    t_return_c: float,
    given: pd.DataFrame | None = None,
    left_out: dict[str, list[str]] | None = None,
) -> tuple[SiteLoads, pd.Series]:
    """Hourly net heat of every routed consumer over the operation's year, and the year's outdoor temperature.

    ``given`` columns (kW, on the year's hours) replace the site profiles' columns of the same consumers;
    ``left_out`` (consumers not planned, by reason) lets a profile of such a consumer be refused with the reason.

    Returns
    -------
    tuple
        The loads (:class:`heatmap.energy.trade.SiteLoads`) and the hourly outdoor temperature (°C).
    """
    from heatmap.demand.climate import year_index
    from heatmap.demand.profiles import read_hourly
    from heatmap.energy import trade

    index = year_index(op.year)
    t = op.outdoor_temperature
    outdoor = read_hourly(t.csv, t.column, index, lower=-70, upper=50, what="outdoor-temperature", hint=" (°C)")
    sites = cons_routed.reset_index()
    own = None
    if op.site_profiles is not None:
        own = trade.read_site_profiles(op.site_profiles, index, sites, left_out=left_out)
    if given is not None:
        unknown = sorted(set(map(str, given.columns)) - set(sites.consumer_id.astype(str)))
        if unknown or len(given) != len(index):
            raise InputDataError(
                f"site profiles given to the plan: {len(given)} hours for the year's {len(index)}, columns naming "
                f"no routed consumer: {', '.join(unknown) or 'none'}"
            )
        given = given.set_axis(index)
        own = given if own is None else own.drop(columns=given.columns, errors="ignore").join(given)
    loads = trade.site_loads(
        sites,
        outdoor,
        base_temperature_c=op.base_temperature_c,
        hot_water_share=op.hot_water_share,
        profiles=own,
    )
    sells = loads.own_kw.columns[(loads.own_kw < 0).any()]
    no_t = [c for c in sells if not np.isfinite(cons_routed.t_feed_in_c.get(c, np.nan))]
    if no_t:
        raise InputDataError(
            f"{op.site_profiles}: prosumers {', '.join(no_t)} sell heat in some hours but have no t_feed_in_c; give "
            f"the temperature they feed in at in the consumers' t_feed_in_c (a consumers file or inline rows: the "
            f"buildings of an OSM file cannot sell)"
        )
    cold = [c for c in sells if cons_routed.t_feed_in_c[c] <= t_return_c]  # every seller has one (above)
    if cold:
        raise InputDataError(
            f"prosumers {', '.join(cold)} feed in at a t_feed_in_c at or below the return temperature "
            f"{t_return_c:g} °C ('temperatures.return_c'): they cannot deliver heat; raise their t_feed_in_c"
        )
    return loads, outdoor


def _sizing_hours(
    op: Operation,
    loads: SiteLoads,
    src: gpd.GeoDataFrame,
    routed: RoutedNetwork,
    *,
    t_return_c: float,
    targets: pd.Series | None = None,
) -> list[tuple[pd.Series, pd.Series]]:
    """Hours of the year the pipes are sized for besides the design case (:func:`sizing.design_network`).

    The sources are dispatched over the year in merit order as operation runs them (the network's losses not yet
    known, left out), and each pipe then carries the hours that matter (:func:`heatmap.energy.trade.sizing_hours`:
    highest load, summer's least, prosumers' largest sale, and each own-profile site's largest draw and sale). A
    prosumer's sale counts as the heat carrying its flow at its network's temperature difference. With a supply
    curve (``targets``: each hour's supply temperature) the hour's loads and sources' heat count as the heat
    carrying their flow at the hour's temperature difference, and a preheating source's capacity limits its own heat.
    """
    from heatmap.energy import trade

    cons_routed, source_at, t_supply_by_tree = routed.cons_routed, routed.source_at, routed.t_supply_by_tree
    tree_of_node = routed.tree.tree_of_node
    ids = cons_routed.index.astype(str)
    node_of_site = pd.Series(routed.consumer_node, index=ids)
    s = src.set_index("source_id")
    sources = pd.DataFrame({"source_id": list(source_at.values()), "node": list(source_at.keys())}).assign(
        tree=lambda d: d.node.map(tree_of_node).to_numpy(),
        capacity_kw=lambda d: s.capacity_kw.reindex(d.source_id).to_numpy(),
        role=lambda d: s.role.reindex(d.source_id).to_numpy(),
        t_supply_c=lambda d: s.t_supply_c.reindex(d.source_id).to_numpy(),
    )
    sources = sources[sources.tree.notna()]
    year = trade.source_hours(
        loads,
        node_of_site.map(tree_of_node),
        sources,
        pd.Series(dtype=float),
        min_source_share=op.min_pressure_source_share,
        capacity_factor=_capacity_factor(sources, targets, t_return_c),
    )
    t_tree = node_of_site.map(tree_of_node).map(t_supply_by_tree)
    flow_equivalent = (t_tree - t_return_c) / (cons_routed.t_feed_in_c.set_axis(ids) - t_return_c)
    cases: list[tuple[pd.Series, pd.Series]] = []
    for hour in trade.sizing_hours(year, summer_months=op.summer_months):
        load = pd.Series(hour.consumer_kw.reindex(ids).to_numpy(), index=node_of_site.reindex(ids).to_numpy())
        feed_src = hour.source_kw.set_axis(sources.set_index("source_id").node.reindex(hour.source_kw.index).to_numpy())
        # a kW drawn or delivered at the hour's temperature carries more flow than at design
        if targets is not None and hour.time is not None:
            at_hour = (max(t_supply_by_tree.values()) - t_return_c) / (float(targets[hour.time]) - t_return_c)
            load, feed_src = load * at_hour, feed_src * at_hour
        sale = hour.sale_kw * flow_equivalent.reindex(hour.sale_kw.index)
        feed_sale = sale.set_axis(node_of_site.reindex(sale.index).to_numpy())
        cases.append((load.fillna(0.0), pd.concat([feed_src, feed_sale]).groupby(level=0).sum()))
    return cases


def _capacity_factor(sources: pd.DataFrame, targets: pd.Series | None, t_return_c: float) -> pd.DataFrame | None:
    """Heat each source can deliver per kW of its capacity in each hour: 1 over its own share (a booster adds the rest).

    ``None`` without a supply curve (every source at its own temperature, its capacity all it delivers).
    """
    if targets is None:
        return None
    t_own = sources.t_supply_c.to_numpy(dtype=float)
    share = operation.own_share(t_own[None, :], targets.to_numpy()[:, None], t_return_c)
    return pd.DataFrame(1.0 / share, index=targets.index, columns=sources.source_id.astype(str).to_numpy())


def _operation(
    op: Operation,
    loads: SiteLoads,
    outdoor: pd.Series,
    src: gpd.GeoDataFrame,
    routed: RoutedNetwork,
    *,
    curve: SupplyCurve | None,
    designed: operation.DesignedNetwork,
    case: hydraulics.DesignCase,
    processes: int = 1,
) -> OperatingYear:
    """Run the scenario's year of operation on the designed network (section ``operation``).

    With a supply curve (``temperatures.supply_curve``) each hour's supply temperature follows the outdoor
    temperature; the design case (``case``) is reported as the first hour, at the curve's highest temperature.
    """
    from heatmap.energy import trade

    sim, violations = case.simulation, case.violations
    sites = routed.cons_routed.reset_index()
    tree_of = designed.consumers.set_index(designed.consumers.consumer_id.astype(str)).tree
    loss_by_tree = (
        sim.pipes.assign(tree=sim.pipes.edge_id.map(designed.pipes.set_index("edge_id").tree))
        .groupby("tree")
        .q_loss_kw.sum()
    )
    s = src.set_index("source_id")
    sources = designed.sources.assign(role=s.role.reindex(designed.sources.source_id).to_numpy())
    t_return = designed.conditions.t_return_c
    targets = None if curve is None else pd.Series(curve.at(outdoor.to_numpy()), index=outdoor.index)
    factor = _capacity_factor(sources, targets, t_return)
    loss_scale = _loss_scale(targets, curve, t_return, designed.conditions.t_ground_c)
    year = trade.source_hours(
        loads,
        tree_of,
        sources,
        loss_by_tree,
        min_source_share=op.min_pressure_source_share,
        capacity_factor=factor,
        loss_scale=loss_scale,
    )
    matter = [
        dataclasses.replace(h, t_out_c=float(outdoor[h.time]), t_supply_target_c=float(targets[h.time]))
        if targets is not None and h.time is not None
        else h
        for h in trade.hours_that_matter(year, summer_months=op.summer_months)
    ]
    margin = op.bypass_margin_k if op.bypass else None
    hours = [operation.simulate_hour(designed, h, bypass_margin_k=margin, processes=processes) for h in matter]
    design_hour = operation.OperatingHour(
        "design peak",
        None,
        sim.consumers.set_index("consumer_id").q_kw,
        sim.sources.set_index("source_id").q_supplied_kw,
        pd.Series(dtype=float),
        t_supply_target_c=None if curve is None else float(curve.max_c),
    )
    roots = designed.sources.groupby("tree").first().source_id.tolist()
    empty = pd.Series(dtype=float)
    tables = operation.hour_tables(designed, design_hour, sim, case.service, roots, empty)
    lift = dict(designed.conditions.pump_lift_bar)
    design = operation.HourResult(design_hour, sim, violations, roots, lift, empty, *tables)
    own_share = None if factor is None else 1.0 / factor
    companies = trade.company_trade(
        year,
        sites,
        s.reset_index(),
        heat_price_eur_per_mwh=op.heat_price_eur_per_mwh,
        feed_in_price_eur_per_mwh=op.feed_in_price_eur_per_mwh,
        operator=op.operator,
        own_share=own_share,
    )
    totals = {
        "drawn_mwh": float(year.draw_by_tree.to_numpy().sum() / 1000),
        "fed_in_by_sources_mwh": float(year.source_kw.to_numpy().sum() / 1000),
        "sold_by_prosumers_mwh": float(year.sale_kw.to_numpy().sum() / 1000),
        "unserved_mwh": float(year.unserved_kw.sum() / 1000),
        "curtailed_mwh": float(year.curtailed_kw.sum() / 1000),
        "losses_mwh": float(loss_by_tree.sum() * np.broadcast_to(loss_scale, len(year.index)).sum() / 1000),
    }
    if factor is not None:  # of the sources' heat, what their boosters lifted (1 − own share)
        boost = year.source_kw * (1 - 1 / factor.reindex(columns=year.source_kw.columns).fillna(1.0))
        totals["boosted_by_sources_mwh"] = float(boost.to_numpy().sum() / 1000)
    return OperatingYear(
        design,
        hours,
        companies,
        totals,
        hourly=year,
        own_share=own_share,
        loss_scale=np.broadcast_to(loss_scale, len(year.index)),
    )


def _loss_scale(
    targets: pd.Series | None, curve: SupplyCurve | None, t_return_c: float, t_ground_c: float
) -> np.ndarray | float:
    """Each hour's heat losses over the design case's: the mean water temperature above the ground, hour over design.

    The losses follow ``UA · ((T_supply + T_return)/2 − T_ground)``, the rule of the concept study's hourly losses;
    without a supply curve the temperatures do not change and the losses are the design case's (1).
    """
    if targets is None or curve is None:
        return 1.0
    design = (curve.max_c + t_return_c) / 2 - t_ground_c
    return ((targets.to_numpy() + t_return_c) / 2 - t_ground_c) / design


def _feed_ins(
    tree: routing.RoutedTree, source_at: dict[int, str], node_load_kw: pd.Series, rule: str, capacity_kw: pd.Series
) -> pd.DataFrame:
    """Heat each non-root source of a shared network feeds in at the design peak.

    Every source of a network runs at the same share of its capacity (``capacity_kw``: the heat it can deliver
    at the design, per source id): the network's diversified design load over the capacity of all its sources
    (at most 1); the root source, holding the pressure, also covers the network's losses.
    """
    tree_of = tree.tree_of_node
    capacity = capacity_kw
    roots = set(tree.root_of_tree.values())
    rows = [(sid, node, int(tree_of[node])) for node, sid in source_at.items() if node in tree_of and node not in roots]
    feeds = pd.DataFrame(rows, columns=["source_id", "node", "tree"])
    root_kw = pd.Series({tr: capacity[source_at[root]] for tr, root in tree.root_of_tree.items()}, dtype=float)
    total_kw = root_kw.add(capacity.reindex(feeds.source_id).groupby(feeds.tree.to_numpy()).sum(), fill_value=0.0)
    by_tree = node_load_kw.groupby(tree_of.reindex(node_load_kw.index).to_numpy())
    design_kw = by_tree.sum() * sizing.simultaneity_factor(by_tree.size().to_numpy(), rule)
    share = (design_kw / total_kw.reindex(design_kw.index)).clip(upper=1.0)
    return feeds.assign(q_kw=capacity.reindex(feeds.source_id).to_numpy() * share.reindex(feeds.tree).to_numpy())


def _design_case(
    scn: Scenario,
    timer: _Timer,
    sized: sizing.SizedNetwork,
    feeds: pd.DataFrame,
    src: gpd.GeoDataFrame,
    routed: RoutedNetwork,
    *,
    catalogue: pd.DataFrame,
    water: sizing.Water,
    t_design_c: float | None,
    design_capacity_kw: pd.Series,
) -> tuple[hydraulics.DesignCase, operation.DesignedNetwork]:
    """Set up the design case of the sized network and simulate it (:func:`heatmap.network.hydraulics.design_case`).

    With a supply curve every source's water leaves at ``t_design_c`` (the curve's highest), a preheating source
    boosted to it, and its capacity in the capacity check is the heat it then delivers (``design_capacity_kw``).
    Returns the design case and the designed network as hours of operation simulate it again (with the sources'
    own temperatures and capacities).
    """
    t, lim, net = scn.temperatures, scn.limits, scn.network
    cons_routed, consumer_node, source_at = routed.cons_routed, routed.consumer_node, routed.source_at
    roots = routed.tree.root_of_tree
    edges = sized.edges
    cons_tree = pd.Series(edges.tree.to_numpy(), index=edges.to_node.to_numpy()).reindex(consumer_node).to_numpy()
    n_in_tree = pd.Series(cons_tree).value_counts().reindex(cons_tree).to_numpy()
    peak_w = cons_routed.peak_load_kw.to_numpy() * 1000
    consumers = pd.DataFrame(
        {
            "consumer_id": cons_routed.index.to_numpy(),
            "node": consumer_node,
            "tree": cons_tree,
            "q_design_w": peak_w * sizing.simultaneity_factor(n_in_tree, net.simultaneity),
            "peak_w": peak_w,
        }
    )
    s = src.set_index("source_id")
    ids = [source_at[roots[tr]] for tr in sorted(roots)] + feeds.source_id.tolist()
    t_supply = s.t_supply_c.reindex(ids).to_numpy()
    own = pd.DataFrame(
        {
            "source_id": ids,
            "node": [roots[tr] for tr in sorted(roots)] + feeds.node.tolist(),
            "t_supply_c": t_supply,
            "capacity_kw": s.capacity_kw.reindex(ids).to_numpy(),
            "tree": sorted(roots) + feeds.tree.tolist(),
        }
    )
    if t_design_c is not None:
        t_supply = np.full(len(ids), float(t_design_c))
    feed_mdot = feeds.q_kw.to_numpy() * 1000 / (water.cp_j_per_kgk * (t_supply[len(roots) :] - t.return_c))
    sources = own.assign(
        t_supply_c=t_supply,
        capacity_kw=design_capacity_kw.reindex(ids).to_numpy(),
        mdot_kg_per_s=np.concatenate([np.full(len(roots), np.nan), feed_mdot]),
    )
    used_nodes = np.unique(np.concatenate([edges.from_node, edges.to_node]))
    xy = shapely.get_coordinates(routed.cand.nodes.geometry.values[used_nodes])
    node_xy = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1]}, index=used_nodes)
    conditions = hydraulics.Conditions(
        t.return_c, t.ground_c, net.p_return_bar, net.roughness_mm, sized.pump_lift_bar, net.local_loss_factor
    )
    limits = hydraulics.Limits(
        lim.max_velocity_m_per_s,
        lim.max_pressure_gradient_pa_per_m,
        lim.min_consumer_dp_bar,
        t.min_consumer_supply_c,
        lim.energy_balance_tolerance,
        (
            dict(zip(cons_routed.index.tolist(), cons_routed.min_supply_c.tolist(), strict=True))
            if "min_supply_c" in cons_routed
            else {}
        ),
    )
    case = hydraulics.design_case(
        edges,
        consumers,
        sources,
        node_xy,
        catalogue=catalogue,
        conditions=conditions,
        limits=limits,
        rules=hydraulics.ResizeRules(lim.max_resize_rounds, net.max_pump_lift_bar, net.pump_lift_margin_bar),
        water=water,
        timed=lambda name: timer.stage(name, accumulate=True),
        processes=net.processes,
    )
    designed = operation.DesignedNetwork(
        pipes=hydraulics.pipe_table(case.edges, catalogue),
        node_xy=node_xy,
        consumers=consumers[["consumer_id", "node", "tree"]].assign(
            t_feed_in_c=cons_routed.t_feed_in_c.to_numpy() if "t_feed_in_c" in cons_routed else np.nan
        ),
        sources=own,
        conditions=dataclasses.replace(conditions, pump_lift_bar=dict(case.pump_lift_bar)),
        limits=limits,
        water=water,
        lift_margin_bar=net.pump_lift_margin_bar,
        max_lift_bar=net.max_pump_lift_bar,
        # the pipes layer numbers the design simulation's pipes in order (heatmap.io.outputs.plan_tables)
        pipe_ids=pd.Series(
            np.arange(len(case.simulation.pipes)),
            index=pd.MultiIndex.from_arrays([case.simulation.pipes.edge_id, case.simulation.pipes.circuit]),
        ),
    )
    return case, designed
