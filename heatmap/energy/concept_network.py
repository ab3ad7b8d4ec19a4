"""The network planned with a concept study (``network.plan``): its heat-loss coefficient, figures and maps.

A concept study may name a plan scenario (``heatmap plan``) for its network. The command line plans it
(:func:`heatmap.plan.plan_from_scenario`, on the scenario :func:`read_plan_scenario` reads) and hands the plan
to :func:`heatmap.energy.concepts.run_concepts`, which takes from it:

- the planned network's heat-loss coefficient (:func:`planned_heat_loss_coefficient`), combined with the
  scenario's estimate as ``network.plan_losses`` says (:func:`heat_loss_coefficient`);
- the study's sources the plan carries to the sink, with the connection's capacity and what the plan's other
  consumers take from them each hour (:func:`source_links`): hourly bounds of the dispatch;
- what a concept using the network pays for it: its capex and pumping electricity (:func:`network_costs`);
- the network's figures for the summary (:func:`network_summary`);
- the layers of the concepts map (:func:`concepts_map_layers`): the planned pipes, the excess-heat sources with
  their heat in each concept, and the sink (the plan's consumer where the study's demand is delivered).

How the planned network relates to the study's demand is the scenario's to say: in the bundled KIP study the
plan is the connection that carries Boliden's acid-plant heat to the town's network (and to three park users),
while the study's demand is the whole town's district heating. ``plan_losses: add`` counts the connection's
losses on top of the town network's estimated losses; the park users' demand in the plan is not part of the
study's demand (reported as such in the summary).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import geopandas as gpd
import numpy as np
import pandas as pd

from heatmap._errors import InputDataError, ScenarioError

if TYPE_CHECKING:
    from heatmap.energy.dispatch import DispatchResult
    from heatmap.energy.energy_scenario import EnergyScenario
    from heatmap.energy.trade import SiteLoads, Year
    from heatmap.io.outputs import PlanLike
    from heatmap.scenario import Scenario

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class PlannedNetwork:
    """The plan of a study's network and the figures the study takes from it.

    ``plan`` is a :class:`heatmap.plan.Plan` (every check holds); ``heat_loss_coefficient_w_per_k`` follows the
    rule of :func:`planned_heat_loss_coefficient`.
    """

    plan: PlanLike
    sink_id: str | None
    heat_loss_coefficient_w_per_k: float
    design_losses_kw: float
    design_mean_temperature_c: float
    ground_c: float


def read_plan_scenario(scn: EnergyScenario) -> Scenario | None:
    """Read and check the plan scenario that ``network.plan`` names (``None`` if it names none).

    Parameters
    ----------
    scn
        A validated :class:`heatmap.energy.energy_scenario.EnergyScenario`.

    Returns
    -------
    heatmap.scenario.Scenario or None
        The plan scenario, its input files checked.

    Raises
    ------
    heatmap._errors.ScenarioError
        Naming ``network.plan``, the plan scenario file and what is wrong in it.
    """
    from heatmap.scenario import check_input_files
    from heatmap.study import plan_scenario_from_file

    path = scn.network.plan
    if path is None:
        return None
    try:
        plan_scn = plan_scenario_from_file(path)
        check_input_files(plan_scn)
    except (ScenarioError, InputDataError) as exc:
        raise ScenarioError(f"network.plan ({path}): {exc}") from None
    logger.info("Read the plan scenario %s of the study's network", path)
    return plan_scn


def planned_heat_loss_coefficient(plan: PlanLike) -> tuple[float, float, float]:
    """Return the planned network's UA (W/K), its design-case losses (kW) and mean water temperature (°C).

    Rule: ``UA = Q_loss / ((T_supply + T_return) / 2 − T_ground)``, with ``Q_loss`` the heat lost by every pipe
    (supply and return) in the plan's simulated design case and the plan's design temperatures (the supply curve's
    highest where the plan has one). With this UA the
    dispatch's hourly loss ``UA · ((T_supply + T_return) / 2 − T_ground)`` reproduces the simulated loss at the
    design temperatures. By hand it is about ``Σ U'·L`` over all pipes (catalogue U' per metre of pipe): the
    supply and return pipes of a route have the same U' and length, so their mean excess temperature is that of
    the design case, apart from the small cooling along the pipes.

    Parameters
    ----------
    plan
        A :class:`heatmap.plan.Plan`.

    Returns
    -------
    tuple of float
        UA (W/K), losses at the design case (kW), the design mean temperature (°C).
    """
    t = plan.scenario.temperatures
    mean_c = (plan.scenario.design_supply_c + t.return_c) / 2
    losses_kw = float(plan.pipes.q_loss_kw.sum())
    ua = losses_kw * 1000.0 / (mean_c - t.ground_c)
    logger.info("Planned network: %.1f kW lost at the design case, UA %.0f W/K", losses_kw, ua)
    return ua, losses_kw, mean_c


def planned_network(scn: EnergyScenario, plan: PlanLike) -> PlannedNetwork:
    """Check the plan of the study's network and take its heat-loss coefficient.

    Parameters
    ----------
    scn
        The concept scenario (its ``network.plan`` and ``network.sink``).
    plan
        The :class:`heatmap.plan.Plan` of ``network.plan``.

    Raises
    ------
    heatmap._errors.ScenarioError
        If the plan fails its checks, or ``network.sink`` is not a connected consumer of the plan.
    """
    from heatmap.io.outputs import failed_checks

    if not plan.ok:
        raise ScenarioError(
            f"network.plan ({scn.network.plan}): the planned network fails its checks "
            f"({', '.join(failed_checks(plan))}); run `heatmap plan {scn.network.plan} --partial` to see why"
        )
    sink = scn.network.sink
    if sink is not None:
        connected = plan.consumers.loc[plan.consumers.connected.astype(bool), "consumer_id"].astype(str).tolist()
        if sink not in connected:
            raise ScenarioError(
                f"network.sink {sink!r} is not a connected consumer of the plan {scn.network.plan}; "
                f"connected: {', '.join(connected)}"
            )
    ua, losses_kw, mean_c = planned_heat_loss_coefficient(plan)
    return PlannedNetwork(plan, sink, ua, losses_kw, mean_c, plan.scenario.temperatures.ground_c)


def heat_loss_coefficient(scn: EnergyScenario, network: PlannedNetwork | None) -> dict[str, Any]:
    """Return the network UA the dispatch uses, both values it comes from and the rule that combined them."""
    estimate = scn.network.heat_loss_coefficient_w_per_k
    if network is None:
        return {"used_w_per_k": estimate, "rule": "estimate", "estimate_w_per_k": estimate, "planned_w_per_k": None}
    planned = network.heat_loss_coefficient_w_per_k
    if scn.network.plan_losses == "add":
        return {
            "used_w_per_k": estimate + planned,
            "rule": "estimate + planned (plan_losses: add; the plan connects a source to the estimated network)",
            "estimate_w_per_k": estimate,
            "planned_w_per_k": planned,
        }
    return {
        "used_w_per_k": planned,
        "rule": "planned (plan_losses: replace; the plan is the whole network, the estimate is not used)",
        "estimate_w_per_k": estimate,
        "planned_w_per_k": planned,
    }


def network_summary(network: PlannedNetwork, demand_mwh: float) -> dict[str, Any]:
    """Return the planned network's figures for the summary: length, capex, losses, checks, consumers."""
    from heatmap.io.outputs import failed_checks

    plan = network.plan
    f = plan.figures
    c = plan.consumers
    connected = c[c.connected.astype(bool)]
    others = connected[connected.consumer_id.astype(str) != (network.sink_id or "")]
    return {
        "plan_scenario": plan.scenario.name,
        "plan_scenario_file": plan.scenario.path,
        "route_length_m": f["route_length_m"],
        "capex_eur": f["capex_eur"],
        "design_losses_kw": network.design_losses_kw,
        "design_mean_temperature_c": network.design_mean_temperature_c,
        "design_ground_c": network.ground_c,
        "heat_loss_coefficient_w_per_k": network.heat_loss_coefficient_w_per_k,
        "heat_loss_coefficient_rule": "design-case simulated losses ÷ ((T_supply + T_return)/2 − T_ground)",
        "plan_heat_losses_mwh_per_a": f["heat_losses_mwh_per_a"],
        "checks_ok": bool(plan.ok),
        "failed_checks": failed_checks(plan),
        "energy_balance_residual_relative": plan.energy_balance["residual_relative"],
        "sources": plan.sources.source_id.astype(str).tolist(),
        "consumers_connected": connected.consumer_id.astype(str).tolist(),
        "sink": network.sink_id,
        "sink_note": (
            f"the study's demand ({demand_mwh / 1000:,.1f} GWh/a) is delivered at the plan's consumer "
            f"{network.sink_id!r}"
            if network.sink_id
            else "no sink named (network.sink)"
        ),
        "plan_demand_outside_study_mwh_per_a": float(others.annual_demand_mwh.sum()),
        "plan_demand_outside_study_note": (
            "annual demand of the plan's other consumers: planned and drawn, not part of the study's dispatch"
        ),
    }


# --- the planned network's sources in the study: capacities that agree ------------------------------------

SHARE_RULE_YEAR = (
    "the plan's year of operation decides and the dispatch follows: in each hour the network's sources and its "
    "prosumers' sales supply every draw and the losses (heatmap.energy.trade.source_hours); the sink's draw and the "
    "network's losses are the study's (its dispatch serves the sink, the planned losses are in its UA), so a "
    "source sends the study its share of sink draw + losses — its part of the sources' feed in that hour (the "
    "prosumers' sales go to the other consumers first) — and gives the plan's other consumers the rest of its feed; "
    "both counted as its own heat (the feed × its own share, where the supply curve has a booster lift the rest). "
    "The dispatch holds the source at the heat sent to the study (lower bound = upper bound)"
)
SHARE_RULE_DESIGN = (
    "the plan has no year of operation: the other consumers of the sink's network draw their design loads "
    "(peak_load_kw) in every hour, shared by the network's sources in proportion to their capacity (as in the "
    "plan's design case)"
)
CONNECTION_RULE = (
    "the connection to the sink is sized for the sink consumer's design load in the plan (peak_load_kw): with the "
    "plan's year of operation the sink draws at most that in any hour (the plan's simulated hours check the pipes "
    "carry it); without one the source's heat dispatched to the study is at most that in every hour"
)


@dataclasses.dataclass
class SourceLink:
    """A study source that is also a source of the planned network feeding the sink (same id).

    Attributes
    ----------
    source_id
        The source (in the study and in the plan).
    connection_kw
        Capacity of the connection to the sink (:data:`CONNECTION_RULE`): an hourly bound of the dispatch.
    others_kw
        Heat the plan's other consumers take from the source in each hour (kW; :data:`SHARE_RULE_YEAR` or
        :data:`SHARE_RULE_DESIGN`): the study has capacity × availability less this.
    others_rule
        Which of the two rules gave ``others_kw``.
    study_kw
        Where the plan has a year: the source's own heat the planned network sends the study in each hour (the
        dispatch holds it there, :data:`SHARE_RULE_YEAR`); ``None``: the dispatch chooses within the bounds.
    sink_draw_kw
        Where the plan has a year: what the sink draws through the connection in each hour (kW, at most the
        connection's capacity; the plan's simulated hours check the pipes carry it).
    """

    source_id: str
    connection_kw: float
    others_kw: np.ndarray
    others_rule: str
    study_kw: np.ndarray | None = None
    sink_draw_kw: np.ndarray | None = None

    def summary(self) -> dict[str, Any]:
        """Return the link's figures for the summary (hourly values summed)."""
        return {
            "source": self.source_id,
            "connection_kw": self.connection_kw,
            "connection_rule": CONNECTION_RULE,
            "others_mwh_per_a": float(self.others_kw.sum() / 1000),
            "others_peak_kw": float(self.others_kw.max()) if len(self.others_kw) else 0.0,
            "others_rule": self.others_rule,
            "sent_to_study_mwh_per_a": None if self.study_kw is None else float(self.study_kw.sum() / 1000),
        }


def _node_tree(plan: PlanLike) -> tuple[pd.Series, pd.Series]:
    """Return each site's network (by its root source id) for the plan's sources and consumers.

    A source or consumer sits on a junction of the plan (same point); its network is that of the pipes meeting
    there (``pipes.source_id``, the source holding the network's pressure). A site on no junction of a pipe has no
    network (left out).
    """
    j = plan.junctions[plan.junctions.circuit == "supply"]
    pipes = plan.pipes[plan.pipes.circuit == "supply"]
    ends = pd.concat(
        [pipes[["from_node", "source_id"]].set_axis(["node", "tree"], axis=1),
         pipes[["to_node", "source_id"]].set_axis(["node", "tree"], axis=1)]
    ).drop_duplicates("node").set_index("node").tree  # fmt: skip

    def tree_of(points: gpd.GeoDataFrame, key: str) -> pd.Series:
        near = gpd.sjoin_nearest(points[[key, "geometry"]], j[["node_id", "geometry"]], max_distance=0.01)
        near = near.drop_duplicates(key)
        return pd.Series(near.node_id.map(ends).to_numpy(), index=near[key].astype(str).to_numpy()).dropna()

    return tree_of(plan.sources, "source_id"), tree_of(plan.consumers, "consumer_id")


def _plan_year(plan: PlanLike, scn: EnergyScenario, index: pd.DatetimeIndex) -> Year:
    """Return the plan's year of operation (every hour: draws, each source's feed), on the study's hours."""
    op = plan.scenario.operation
    year = plan.operation.hourly
    if op.year != scn.year or not year.index.equals(index):
        raise ScenarioError(
            f"network.plan ({scn.network.plan}): its year of operation (operation.year {op.year}) has other hours "
            f"than the study's year {scn.year}; the planned network's hourly shares need the same hours: give both "
            f"the same year"
        )
    return year


def _site_draw_kw(loads: SiteLoads, site: str) -> np.ndarray:
    """One site's hourly draw (kW) in the plan's year (a prosumer's purchases only)."""
    if site in loads.own_kw.columns:
        return loads.own_kw[site].clip(lower=0.0).to_numpy()
    return 1000 * (loads.space_mwh[site] * loads.space_share + loads.hot_water_mwh[site] / len(loads.index))


def source_links(scn: EnergyScenario, network: PlannedNetwork, index: pd.DatetimeIndex) -> dict[str, SourceLink]:
    """Return the study's sources that the planned network carries to its sink, with their hourly bounds.

    A study source with the id of a source of the plan that lies in the sink's network (``network.sink``) gets
    the connection's capacity (:data:`CONNECTION_RULE`) and what the plan's other consumers take from it in each
    hour: from the plan's year of operation where the plan has one (:data:`SHARE_RULE_YEAR`; its hours must be the
    study's), else their design loads (:data:`SHARE_RULE_DESIGN`). Without a sink there is no link.

    Parameters
    ----------
    scn
        The concept scenario.
    network
        Its planned network.
    index
        The study's hours.

    Returns
    -------
    dict
        Source id → :class:`SourceLink`.

    Raises
    ------
    heatmap._errors.ScenarioError
        If the plan's year of operation has other hours than the study.
    """
    plan, sink = network.plan, network.sink_id
    if sink is None:
        logger.info("No sink named (network.sink): no capacity of the planned network bounds the dispatch")
        return {}
    tree_of_source, tree_of_site = _node_tree(plan)
    tree = tree_of_site[sink]
    study_ids = {s.id for s in scn.sources}
    linked = [sid for sid, t in tree_of_source.items() if t == tree and sid in study_ids]
    if not linked:
        logger.warning(
            "network.plan: no source of the study is a source of the planned network feeding its sink %s (the "
            "study's: %s; the plan's there: %s), so no concept carries heat over it or pays for it; give a study "
            "source the id of the plan's", sink, ", ".join(sorted(study_ids)) or "none",
            ", ".join(sorted(map(str, tree_of_source.index[tree_of_source == tree]))) or "none",
        )  # fmt: skip
        return {}
    c = plan.consumers.set_index(plan.consumers.consumer_id.astype(str))
    connection_kw = float(c.peak_load_kw[sink])
    capacity = plan.sources.set_index(plan.sources.source_id.astype(str)).capacity_kw.astype(float)
    in_tree = tree_of_source.index[tree_of_source == tree]
    links = {}
    if plan.operation is not None:
        year = _plan_year(plan, scn, index)
        losses = plan.pipes.groupby("source_id").q_loss_kw.sum()
        sink_draw = _site_draw_kw(year.loads, sink)
        study_part = sink_draw + float(losses.get(tree, 0.0)) * plan.operation.loss_scale
        fed = year.source_kw[list(in_tree)].sum(axis=1).to_numpy()
        share = plan.operation.own_share
        for sid in linked:
            feed = year.source_kw[sid].to_numpy()
            own = np.ones_like(feed) if share is None or sid not in share else share[sid].to_numpy()
            part = np.divide(study_part * feed, fed, out=np.zeros_like(feed), where=fed > 0)
            others = np.clip(feed - part, 0.0, None) * own
            sent = np.minimum(part, feed) * own
            links[sid] = SourceLink(sid, connection_kw, others, SHARE_RULE_YEAR, study_kw=sent, sink_draw_kw=sink_draw)
    else:
        others = tree_of_site.index[(tree_of_site == tree) & (tree_of_site.index != sink)]
        design = float(c.peak_load_kw.reindex(others).sum())
        for sid in linked:
            share = capacity[sid] / float(capacity.reindex(in_tree).sum())
            links[sid] = SourceLink(sid, connection_kw, np.full(len(index), design * share), SHARE_RULE_DESIGN)
    logger.info(
        "Planned network carries %s to %s: connection %.0f kW, the plan's other consumers take %s MWh/a",
        ", ".join(links), sink, connection_kw, ", ".join(f"{lk.others_kw.sum() / 1000:,.0f}" for lk in links.values()),
    )  # fmt: skip
    return links


PUMPING_RULE = (
    "the plan's design pumping energy (design pumping power × its economics.pump_full_load_hours_h) × the study "
    "year's mean electricity price"
)


def network_costs(network: PlannedNetwork) -> dict[str, Any]:
    """Return what a concept using the planned network pays for it: its investment and pumping electricity.

    The investment is the plan's capex (item ``network connection``; the study annualises it with its own
    economics like every other investment). The pumping electricity is the plan's design pumping energy (design
    pumping power × the plan's ``economics.pump_full_load_hours_h``: the plan simulates only the hours that
    matter, not every hour), bought at the study year's mean electricity price (:data:`PUMPING_RULE`). The
    network's heat losses are not here: they enter the dispatch through its UA.
    """
    f = network.plan.figures
    logger.info(
        "Planned network costs: capex %.2f M€, pumping %.1f MWh/a", f["capex_eur"] / 1e6, f["pumping_energy_mwh_per_a"]
    )
    return {
        "capex_eur": float(f["capex_eur"]),
        "pumping_power_kw": float(f["pumping_power_kw"]),
        "pumping_mwh_per_a": float(f["pumping_energy_mwh_per_a"]),
    }


# --- what the network's outputs read of the concept study -----------------------------------------------
# Protocols, as the study's own classes (heatmap.energy.concepts) import this module.


class ConceptDispatch(Protocol):
    """What the network reads of a concept's result (a :class:`heatmap.energy.concepts.ConceptResult`)."""

    @property
    def name(self) -> str:
        """The concept's name."""

    @property
    def figures(self) -> dict[str, Any]:
        """Its figures: ``units`` (one dict per unit: ``unit``, ``heat_mwh``, ``full_load_hours_h``, …) and more."""

    @property
    def dispatch(self) -> DispatchResult:
        """Its year's dispatch."""


class SourceSite(Protocol):
    """What the concepts map reads of a source (a :class:`heatmap.energy.concepts.ResolvedSource`)."""

    @property
    def id(self) -> str:
        """The source's id."""

    @property
    def location(self) -> dict[str, Any]:
        """Its plant, ``lat``, ``lon`` and the quality of the coordinates (empty without a location)."""

    @property
    def temperature_c(self) -> float:
        """The temperature its heat is available at."""

    @property
    def capacity_kw(self) -> float:
        """Its heat at full availability."""

    @property
    def available_mwh(self) -> float:
        """The heat it can give over the year."""


class _StudyHours(Protocol):
    """What the concepts map reads of the study's year (a :class:`heatmap.energy.concepts.Year`)."""

    @property
    def demand_kw(self) -> np.ndarray:
        """The study's demand in each hour."""

    @property
    def losses_kw(self) -> np.ndarray:
        """The network's losses in each hour."""


class _Named(Protocol):
    """A scenario, as far as the map's title reads it."""

    @property
    def name(self) -> str:
        """The scenario's name."""


class ConceptsMapStudy(Protocol):
    """What the network's outputs read of a concept study (a :class:`heatmap.energy.concepts.ConceptStudy`)."""

    @property
    def scenario(self) -> _Named:
        """The concept scenario."""

    @property
    def year(self) -> _StudyHours:
        """The hourly inputs."""

    @property
    def sources(self) -> Sequence[SourceSite]:
        """The resolved sources."""

    @property
    def results(self) -> Sequence[ConceptDispatch]:
        """The reference's result first, then each concept's."""

    @property
    def network(self) -> PlannedNetwork | None:
        """The planned network, if the study has one."""


# --- the concepts map ---------------------------------------------------------------------------------


SOURCE_RADIUS_PX = 9.0
"""Radius of a source's marker on the concepts map; sources at one plant are drawn as rings around each other."""
RING_STEP_PX = 5.0
"""How much wider each further source's ring at one plant is (pixels)."""


def _source_points(study: ConceptsMapStudy, labels: Mapping[str, str]) -> gpd.GeoDataFrame:
    """One point per located source with its heat in each concept (sources without a location are left out).

    Sources at one plant share its point: each is drawn as a ring around the next (``radius_px``, the first
    source of the plant innermost and on top), so each keeps its own colour and popup.
    """
    rows = []
    for s in study.sources:
        lat, lon = s.location.get("lat"), s.location.get("lon")
        if lat is None or lon is None:
            continue
        row: dict[str, Any] = {
            "source_id": s.id,
            "name": labels.get(s.id, s.id),
            "plant": s.location.get("plant"),
            "coordinates": str(s.location.get("coordinates", "unknown quality")),
            "temperature_c": float(s.temperature_c),
            "capacity_kw": float(s.capacity_kw),
            "available_gwh_per_a": float(s.available_mwh / 1000),
            "lat": lat,
            "lon": lon,
        }
        for i, r in enumerate(study.results[1:]):
            u = {u["unit"]: u for u in r.figures["units"]}.get(s.id)
            row[f"concept_{i}"] = (
                "not in this concept"
                if u is None
                else f"{u['heat_mwh'] / 1000:,.1f} GWh/a, {u['full_load_hours_h']:,.0f} full-load h"
            )
        rows.append(row)
    if not rows:
        return gpd.GeoDataFrame(geometry=[], crs=4326)
    frame = pd.DataFrame(rows)
    at_site = frame.groupby(["lat", "lon"], sort=False).cumcount(ascending=False)  # 0: the plant's last source
    frame["radius_px"] = SOURCE_RADIUS_PX + RING_STEP_PX * at_site.to_numpy()
    frame = frame.sort_values("radius_px", ascending=False, kind="stable")  # the widest ring drawn first (below)
    geometry = gpd.points_from_xy(frame.lon, frame.lat)
    return gpd.GeoDataFrame(frame.drop(columns=["lat", "lon"]), geometry=geometry, crs=4326)


def concepts_map_layers(
    study: ConceptsMapStudy, *, colours: Mapping[str, str], labels: Mapping[str, str]
) -> tuple[dict[str, gpd.GeoDataFrame], dict[str, Any]]:
    """Return the concepts map's layers and their definitions.

    Drawn: the planned network's pipes and consumers (its sources give way to the study's), the
    study's excess-heat sources, each in its unit colour and labelled with its name (popup: its plant, heat
    fed in and full-load hours per concept), and the sink (popup: the study's demand, losses and each concept's
    excess-heat share).

    Parameters
    ----------
    study
        The concept study (:class:`heatmap.energy.concepts.ConceptStudy`).
    colours, labels
        Each unit's colour and name by id, those of the study's plots
        (:func:`heatmap.energy.concepts.unit_colours`, :func:`heatmap.energy.concepts.unit_labels`).

    Returns
    -------
    tuple
        Layer name → features, layer name → :class:`heatmap.maps.layers.LayerSpec`.
    """
    from heatmap.io.outputs import plan_layers
    from heatmap.maps.layers import ColorClass, ColorRule, PopupField, load_layer_specs

    specs = load_layer_specs()
    layers: dict[str, gpd.GeoDataFrame] = {}
    network = study.network
    if network is not None:
        for name, frame in plan_layers(network.plan).items():
            if name in ("pipes", "consumers"):  # the candidate links and its own sources are the plan map's
                layers[name] = frame
    concepts = [r.name for r in study.results[1:]]
    points = _source_points(study, labels)
    source_spec = dataclasses.replace(
        specs["sources"],
        name="concept_sources",
        title="Excess-heat sources (heat per concept)",
        draw_order=4,
        color=ColorRule(
            kind="categorized",
            field="source_id",
            classes=tuple(
                ColorClass(color=colours[sid], label=name, value=sid)
                for sid, name in zip(points.get("source_id", []), points.get("name", []), strict=True)
            ),
        ),
        radius_px=SOURCE_RADIUS_PX,
        radius_field="radius_px",
        label=(PopupField("name", "Name"),),
        popup=(
            PopupField("source_id", "Source"),
            PopupField("name", "Name"),
            PopupField("plant", "Plant"),
            PopupField("coordinates", "Coordinates"),
            PopupField("temperature_c", "Temperature", "°C", 0),
            PopupField("capacity_kw", "Capacity", "kW", 0),
            PopupField("available_gwh_per_a", "Available", "GWh/a", 1),
            *(PopupField(f"concept_{i}", name) for i, name in enumerate(concepts)),
        ),
    )
    layers["concept_sources"] = points
    specs["concept_sources"] = source_spec
    if network is not None and network.sink_id is not None:
        c = network.plan.consumers
        sink = c[c.consumer_id.astype(str) == network.sink_id][["consumer_id", "name", "geometry"]].copy()
        year = study.year
        sink["demand_gwh_per_a"] = year.demand_kw.sum() / 1e6
        sink["peak_mw"] = year.demand_kw.max() / 1000
        sink["losses_gwh_per_a"] = year.losses_kw.sum() / 1e6
        for i, r in enumerate(study.results[1:]):
            sink[f"share_{i}"] = 100 * r.figures["excess_heat_share"]
        layers["concept_sink"] = sink
        specs["concept_sink"] = dataclasses.replace(
            specs["sources"],
            name="concept_sink",
            title="Sink: the study's demand (town district heating)",
            draw_order=3.5,
            color=dataclasses.replace(specs["sources"].color, color="#2c7bb6"),
            radius_px=11,
            popup=(
                PopupField("consumer_id", "Sink"),
                PopupField("name", "Name"),
                PopupField("demand_gwh_per_a", "Demand of the study", "GWh/a", 1),
                PopupField("peak_mw", "Peak demand", "MW", 1),
                PopupField("losses_gwh_per_a", "Network losses", "GWh/a", 1),
                *(PopupField(f"share_{i}", f"{name}: excess-heat share", "%", 1) for i, name in enumerate(concepts)),
            ),
        )
    return layers, specs


def write_network_outputs(
    study: ConceptsMapStudy, folder: Path, *, colours: Mapping[str, str], labels: Mapping[str, str]
) -> None:
    """Write the planned network and the concepts map into ``folder`` (the study's temporary output folder).

    Files: the plan's files in ``network/`` as ``heatmap plan`` writes them
    (:func:`heatmap.io.outputs.write_plan_files`) and ``map.html`` (:func:`concepts_map_layers`, the sources in
    ``colours`` with their ``labels``).
    """
    from heatmap.io.outputs import write_plan_files
    from heatmap.maps import webmap

    network = study.network
    if network is not None:
        sub = folder / "network"
        sub.mkdir()
        write_plan_files(network.plan, sub, source_colours=colours)  # its map in the study's unit colours
    layers, specs = concepts_map_layers(study, colours=colours, labels=labels)
    webmap.write_map(layers, folder / "map.html", specs=specs, title=study.scenario.name)
    n = 0 if network is None else int(np.sum(network.plan.pipes.circuit == "supply"))
    logger.info("Wrote the concepts map (%d supply pipes, %d sources)", n, len(layers["concept_sources"]))


AGREEMENT_RULE = (
    "in each hour the planned network simulates (pandapipes), each source's own heat as simulated against the "
    "dispatch's: what the concept dispatches from it to the study plus what the plan's other consumers take from it"
)


def hour_agreement(
    network: PlannedNetwork, links: dict[str, SourceLink], results: Sequence[ConceptDispatch]
) -> list[dict[str, Any]]:
    """Compare, in every simulated hour of the planned network, each linked source's heat with the dispatch's.

    One answer per hour: the simulated own heat of a source (:attr:`heatmap.network.operation.HourResult.sources`,
    ``q_own_kw``) against, per concept using it, its dispatched heat plus what the plan's other consumers take
    from it (:data:`AGREEMENT_RULE`).

    Parameters
    ----------
    network
        The planned network (its plan has a year of operation, else there is nothing to compare).
    links
        The linked sources (:func:`source_links`).
    results
        The concepts' results (:class:`heatmap.energy.concepts.ConceptResult`), with their dispatch.

    Returns
    -------
    list of dict
        One row per simulated hour, source and concept using it: ``hour``, ``time``, ``source``, ``concept``,
        ``simulated_own_kw``, ``dispatched_kw``, ``others_kw``, ``difference_kw``, ``difference_share``.
    """
    op = network.plan.operation
    if op is None or not links:
        return []
    index = op.hourly.index
    rows: list[dict[str, Any]] = []
    for h in op.hours:
        i = index.get_loc(h.hour.time)
        own = h.sources.set_index(h.sources.source_id.astype(str)).q_own_kw
        for sid, link in links.items():
            simulated = float(own.get(sid, 0.0))
            for r in results:
                if sid not in r.dispatch.heat_kw.columns:
                    continue
                dispatched = float(r.dispatch.heat_kw[sid].iloc[i])
                diff = dispatched + float(link.others_kw[i]) - simulated
                rows.append(
                    {
                        "hour": h.hour.name,
                        "time": str(h.hour.time),
                        "source": sid,
                        "concept": r.name,
                        "simulated_own_kw": simulated,
                        "dispatched_kw": dispatched,
                        "others_kw": float(link.others_kw[i]),
                        "difference_kw": diff,
                        "difference_share": diff / simulated if simulated > 0 else float("nan"),
                    }
                )
    worst = max((abs(r["difference_kw"]) for r in rows), default=0.0)
    logger.info("Hour agreement: %d comparisons, largest difference %.0f kW", len(rows), worst)
    return rows
