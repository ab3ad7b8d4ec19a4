"""Source–sink matching: rank pairings of excess-heat sources with heat users (industrial symbiosis).

Every source is paired with every sink, each pair judged **as if it were alone** (pairs sharing a source or a
sink compete; the table is a list for discussion, not an allocation). For each pair:

- **Kind.** ``direct`` where ``source t_c ≥ sink t_c + approach_k`` (a heat exchanger suffices); else
  ``heat_pump`` if heat pumps are allowed, with ``COP = min(η · T_hot / (T_hot − T_cold), max_cop)`` (kelvin;
  ``T_hot`` the sink's supply temperature, ``T_cold`` the source temperature — the rule of
  :func:`heatmap.energy.excess_heat.cop`).
  Per MWh delivered the pump takes ``1 − 1/COP`` MWh from the source and ``1/COP`` MWh of electricity.
- **Distance.** Without candidate routes: ``route_length_m = max(straight line × detour_factor,
  min_route_length_m)`` and ``route_cost_factor`` 1. With candidate routes (streets and/or links drawn in QGIS,
  :mod:`heatmap.network.links`): the cheapest path on the candidate graph
  (:func:`heatmap.network.candidates.build_candidates`, :func:`heatmap.network.candidates.candidate_graph`,
  networkx Dijkstra on ``weight_m`` = length × surface cost factor),
  each unit joined to its nearest segment within ``max_connection_m``; ``route_length_m`` is the path's length,
  ``route_cost_factor`` its weight ÷ length, and the map line follows the path. A unit with no segment in reach,
  or a pair with no path, is infeasible.
- **Hourly match.** Each unit has an hourly profile (kW over 8760 h): the one given, else flat at
  ``annual_mwh / 8760``; both are clipped at the unit's ``peak_kw``. The heat a source can deliver to the sink
  in an hour is its profile (direct) or its profile ÷ ``(1 − 1/COP)`` (heat pump). **Annual energy matched**
  = Σ_h min(deliverable_h, sink_h). The **simultaneity** reported is matched ÷ min(deliverable annual, sink
  annual): 1 when the two profiles have the same shape (two flat profiles give min(annuals)), below 1 where
  the sink needs heat in hours the source has none (e.g. a summer source and a winter sink).
- **Pipe.** Design load = min(deliverable peak, sink peak); design flow ``ṁ = Q / (c_p (t_c − t_return_c))`` at
  the sink's temperatures (the heat exchanger or heat pump stands at the source; the pipe pair carries the
  sink's supply and return water). The DN is the smallest of the EN 253 catalogue within the velocity and
  pressure-gradient limits (:func:`heatmap.network.sizing.size_pipes`); pipe capex = catalogue € per metre of trench
  (supply + return pair) × route length × route cost factor.
- **Cost per MWh.** capex = pipe + heat exchanger (``hx_cost_eur_per_kw`` × design load) + heat pump
  (``heat_pump.cost_eur_per_kw`` × design load, heat-pump pairs); annual cost = capex × annuity factor
  (:func:`heatmap.economics.annuity_factor`) + O&M (``om_share_of_capex_per_a`` × capex + heat-pump O&M per MWh)
  + electricity (MWh × price) + the source's heat (MWh taken from it × its heat price);
  ``eur_per_mwh`` = annual cost ÷ annual energy matched.
- **Infeasible** pairs stay in the table with a ``reason``: too cold with no heat pump allowed, a lift beyond
  ``heat_pump.max_lift_k``, a route beyond ``max_route_length_m`` or none on the candidate graph, a flow beyond
  the largest DN, nothing matched. Feasible pairs are ranked by ``eur_per_mwh`` (ascending); infeasible ones
  follow, unranked.

Left out: heat lost from the pipe, pumping energy, the sink's own equipment, and the hourly electricity price
(one price per MWh is used).

**Chosen pairs** (``plan.pairs``) are planned with the network model by :mod:`heatmap.energy.match_plan`: routed,
sized, simulated, checked and costed like ``heatmap plan``, with the pipe heat losses and pumping the table leaves
out. :mod:`heatmap.energy.matches_job` conducts the whole job (ranking, planning, outputs); this module imports
neither.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import geopandas as gpd
import numpy as np
import pandas as pd
from pydantic import BeforeValidator, Field, PrivateAttr, ValidationInfo, field_validator, model_validator
from shapely.geometry import LineString

from heatmap import settings
from heatmap._errors import InputDataError, ScenarioError
from heatmap.economics import annuity_factor
from heatmap.energy.energy_scenario import MAX_COP, MAX_COP_DOC, ElectricityPrice, HourlyCsv, Id, Share
from heatmap.energy.excess_heat import availability_hourly, cop, read_presets
from heatmap.scenario import (
    MAX_CAPACITY_KW,
    MAX_COST_EUR_PER_KW,
    MAX_ENERGY_MWH,
    MAX_PRICE_EUR_PER_MWH,
    FilePath,
    SettingsModel,
    Surface,
    SurfaceCostFactors,
    WorkingCrs,
)

logger = logging.getLogger(__name__)

HOURS = 8760
MATCH_COLUMNS = (
    "rank",
    "source_id",
    "sink_id",
    "feasible",
    "reason",
    "kind",
    "source_t_c",
    "sink_t_c",
    "sink_t_return_c",
    "cop",
    "straight_m",
    "route_length_m",
    "route_cost_factor",
    "design_kw",
    "mdot_kg_per_s",
    "dn",
    "v_m_per_s",
    "r_pa_per_m",
    "pipe_capex_eur",
    "hx_capex_eur",
    "heat_pump_capex_eur",
    "capex_eur",
    "capital_cost_eur_per_a",
    "om_cost_eur_per_a",
    "electricity_mwh_per_a",
    "electricity_cost_eur_per_a",
    "heat_purchase_cost_eur_per_a",
    "annual_cost_eur_per_a",
    "source_heat_mwh_per_a",
    "matched_mwh_per_a",
    "simultaneity",
    "eur_per_mwh",
)


# --------------------------------------------------------------------------------------------- settings ---
class HeatPumpRule(SettingsModel):
    """Heat pumps that may lift a source too cold for a sink."""

    allowed: bool = Field(True, description="pair cold sources with sinks through a heat pump")
    eta: float = Field(0.5, gt=0, le=1, description="share of the Carnot COP reached (COP = η·T_hot/(T_hot−T_cold))")
    cost_eur_per_kw: float = Field(
        700.0, ge=0, le=MAX_COST_EUR_PER_KW, description="investment per kW of heat output (estimate)"
    )
    om_eur_per_mwh: float = Field(
        0.0, ge=0, le=MAX_PRICE_EUR_PER_MWH, description="operation and maintenance per MWh of heat"
    )
    max_lift_k: float = Field(80.0, gt=0, le=200, description="largest lift T_hot − T_cold one pump makes (estimate)")
    max_cop: float = Field(MAX_COP, gt=1, le=50, description=MAX_COP_DOC)


class MatchingSettings(SettingsModel):
    """How pairs are judged and costed; every value is reported in ``summary.json``."""

    crs: WorkingCrs = Field(
        "EPSG:3067", description="metric CRS of the distances and the map layer, true to scale (within 1 %) there"
    )
    detour_factor: float = Field(1.3, ge=1, le=5, description="route length ÷ straight line (estimate)")
    min_route_length_m: float = Field(
        100.0, ge=0, le=1e5, description="shortest route, e.g. within one site (estimate)"
    )
    max_route_length_m: float = Field(10_000.0, gt=0, le=1e6, description="longer routes are flagged infeasible")
    max_connection_m: float = Field(
        500.0, gt=0, le=1e5, description="with candidate routes: farthest a unit may lie from its nearest segment"
    )
    approach_k: float = Field(5.0, ge=0, le=50, description="source must exceed the sink's supply temperature by this")
    heat_pump: HeatPumpRule = HeatPumpRule()
    electricity_price_eur_per_mwh: ElectricityPrice = Field(
        60.0, description="electricity bought by heat pumps (estimate)"
    )
    hx_cost_eur_per_kw: float = Field(
        15.0,
        ge=0,
        le=MAX_COST_EUR_PER_KW,
        description="heat exchanger at the source per kW, unless the source gives its own",
    )
    om_share_of_capex_per_a: float = Field(0.01, ge=0, lt=1, description="O&M per year as a share of capex")
    discount_rate: float = Field(0.03, ge=0, lt=1, description="real discount rate per year (Hotmaps excess heat: 3 %)")
    lifetime_a: int = Field(30, gt=0, le=100, description="life of pipes, equipment, a (Hotmaps excess heat: 30 a)")

    catalogue: FilePath = Field(settings.data_dir / "pipes_en253.csv", description="EN 253 pipe catalogue")
    insulation_series: int = Field(2, ge=1, le=3, description="EN 253 insulation series")
    cost_column: str = Field("cost_eur_per_m", description="catalogue column: trench cost per metre (pipe pair)")
    max_velocity_m_per_s: float = Field(1.5, gt=0, le=5, description="sizing limit on the flow velocity")
    max_pressure_gradient_pa_per_m: float = Field(250.0, gt=0, le=2000, description="sizing limit on friction")
    roughness_mm: float = Field(0.045, ge=0, le=5, description="pipe wall roughness")

    @model_validator(mode="after")
    def _route_lengths(self) -> MatchingSettings:
        if self.min_route_length_m > self.max_route_length_m:
            raise ValueError(
                f"min_route_length_m ({self.min_route_length_m:g} m) is above max_route_length_m "
                f"({self.max_route_length_m:g} m): every pair would be too far; lower it or raise max_route_length_m"
            )
        return self


class _Unit(SettingsModel):
    id: Id
    plant: str | None = Field(None, description="plant name in plants_csv (its location)")
    lon: float | None = Field(None, ge=-180, le=180, description="longitude (WGS84), instead of plant")
    lat: float | None = Field(None, ge=-90, le=90, description="latitude (WGS84), instead of plant")
    note: str | None = Field(None, description="where the figures come from (sourced or estimate)")

    @model_validator(mode="after")
    def _location(self) -> _Unit:
        if (self.plant is None) == (self.lon is None or self.lat is None):
            raise ValueError("give either plant or both lon and lat")
        return self


class MatchSource(_Unit):
    """An excess-heat source; values left out come from its preset (``data/excess_heat_presets.csv``)."""

    preset: str | None = Field(None, description="kind in the preset table (roaster_steam, electrolyser, …)")
    t_c: float | None = Field(None, gt=-20, lt=600, description="temperature the heat is available at (°C)")
    peak_kw: float = Field(gt=0, le=MAX_CAPACITY_KW, description="heat it can give at full availability (kW)")
    availability: Share | list[Share] | HourlyCsv | None = Field(
        None, description="0…1: a constant, 12 monthly factors, or an hourly CSV column"
    )
    heat_price_eur_per_mwh: float | None = Field(
        None, ge=0, le=MAX_PRICE_EUR_PER_MWH, description="price of the heat taken"
    )
    hx_cost_eur_per_kw: float | None = Field(
        None, ge=0, le=MAX_COST_EUR_PER_KW, description="recovery heat exchanger per kW"
    )

    @model_validator(mode="after")
    def _availability(self) -> MatchSource:
        a = self.availability
        if isinstance(a, float | int) and not 0 <= a <= 1:
            raise ValueError("availability must be within 0…1")
        if isinstance(a, list) and (len(a) != 12 or not all(0 <= x <= 1 for x in a)):
            raise ValueError("availability as a list needs 12 monthly factors within 0…1")
        return self


class MatchSink(_Unit):
    """A heat user: its supply and return temperature and its heat over the year."""

    t_c: float = Field(gt=0, lt=600, description="supply temperature it needs (°C)")
    t_return_c: float = Field(gt=0, lt=600, description="temperature it returns (°C)")
    annual_mwh: float | None = Field(None, gt=0, le=MAX_ENERGY_MWH, description="heat it uses per year (MWh)")
    profile: HourlyCsv | None = Field(None, description="hourly heat use in kW instead of annual_mwh and shape")
    shape: str = Field("flat", pattern="^(flat|degree_hours)$", description="flat, or by heating degree-hours")
    hot_water_share: float = Field(0.2, ge=0, lt=1, description="degree_hours shape: flat share of annual_mwh")
    base_temperature_c: float = Field(17.0, ge=5, le=25, description="degree_hours shape: base temperature (FMI S17)")
    peak_kw: float | None = Field(
        None, gt=0, le=MAX_CAPACITY_KW, description="design load (kW); default the profile's highest hour"
    )

    @model_validator(mode="after")
    def _check(self) -> MatchSink:
        if self.t_return_c >= self.t_c:
            raise ValueError("t_return_c must be below t_c")
        if (self.annual_mwh is None) == (self.profile is None):
            raise ValueError("give either annual_mwh or profile")
        return self


class CandidateLinks(SettingsModel):
    """Candidate routes drawn in QGIS (a line layer, see :mod:`heatmap.network.links`) instead of straight lines."""

    path: FilePath = Field(description="line layer of candidate routes (optional 'surface' column)")
    layer: str | None = Field(None, description="layer of that file")
    default_surface: Surface = Field("open_terrain", description="surface of lines without a 'surface' value")
    snap_m: float = Field(2.0, ge=0, le=100, description="line ends this close join")
    cost_factors: SurfaceCostFactors = Field(SurfaceCostFactors(), description="trench cost relative to a street")


def _pair(value: Any) -> Any:
    """Turn a pair as YAML writes it, ``[source id, sink id]``, into the tuple the model holds."""
    if isinstance(value, list) and len(value) == 2:
        return tuple(value)
    if isinstance(value, tuple):
        return value
    raise ValueError(f"must be a pair [source id, sink id], got {value!r}")


class MatchPlan(SettingsModel):
    """The pairs a study chooses, planned together with the network model (:mod:`heatmap.energy.match_plan`).

    Each chosen source feeds its sinks through one network (``network.supply_areas: shared`` of the plan):
    the pipes follow the pairs' routes (their straight lines, or the candidate links), the heat exchanger or
    heat pump stands at the source and heats the water to its sinks' supply temperature.
    """

    pairs: list[Annotated[tuple[Id, Id], BeforeValidator(_pair)]] = Field(
        min_length=1, description="the chosen pairs, each [source_id, sink_id]; a sink is fed by one source"
    )
    route_surface: Surface = Field(
        "street",
        description="surface of the straight pair lines where the scenario has no candidate_links (street: the "
        "catalogue's price, cost factor 1, as the match table prices its routes)",
    )
    supply_margin_k: float = Field(
        2.0,
        ge=0,
        le=30,
        description="the source heats the water this much above its sinks' supply temperature, for the cooling "
        "along the pipe (estimate; a direct source gives at most its temperature − approach_k)",
    )
    loss_allowance_share: float = Field(
        0.03,
        ge=0,
        lt=0.5,
        description="where a source's capacity limits its pairs, their sinks are planned at design load × (1 − this) "
        "so that the source also covers the pipes' heat losses at the peak (estimate; the plan reports the losses)",
    )
    ground_c: float = Field(8.0, ge=-20, le=40, description="undisturbed ground temperature around the pipes")


class MatchScenario(SettingsModel):
    """A matching study: sources, sinks, their locations and the settings."""

    name: str = Field(min_length=1)
    year: int = Field(2023, ge=1900, le=2100, description="calendar year of the hourly time stamps")
    outdoor_temperature: HourlyCsv | None = Field(None, description="hourly °C, for sinks of shape degree_hours")
    plants_csv: FilePath | None = Field(None, description="plants with their (approximate) locations")
    presets_csv: FilePath = Field(settings.data_dir / "excess_heat_presets.csv", description="source presets")
    settings: MatchingSettings = MatchingSettings()
    candidate_links: CandidateLinks | None = Field(None, description="route on these lines, not straight lines")
    sources: list[MatchSource] = Field(min_length=1)
    sinks: list[MatchSink] = Field(min_length=1)
    plan: MatchPlan | None = Field(None, description="the chosen pairs to plan with the network model")
    _base_dir: Path = PrivateAttr(default=Path("."))
    _pair_lines: dict[int, int | None] = PrivateAttr(default_factory=dict)
    _path: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _ids(self) -> MatchScenario:
        for group in ("sources", "sinks"):
            ids = [u.id for u in getattr(self, group)]
            dup = sorted({i for i in ids if ids.count(i) > 1})
            if dup:
                raise ValueError(f"{group}: ids repeated: {dup}")
        both = sorted({u.id for u in self.sources} & {u.id for u in self.sinks})
        if both:
            raise ValueError(f"ids {', '.join(both)} name both a source and a sink; give each unit its own id")
        if any(s.shape == "degree_hours" for s in self.sinks) and self.outdoor_temperature is None:
            raise ValueError("sinks of shape degree_hours need outdoor_temperature")
        return self

    @field_validator("plan")
    @classmethod
    def _chosen(cls, plan: MatchPlan | None, info: ValidationInfo) -> MatchPlan | None:
        if plan is None or "sources" not in info.data or "sinks" not in info.data:
            return plan
        known = {"source": [u.id for u in info.data["sources"]], "sink": [u.id for u in info.data["sinks"]]}
        fed_by: dict[str, str] = {}
        for i, (source, sink) in enumerate(plan.pairs):
            where = f"pairs[{i}] [{source}, {sink}]"
            for role, uid in (("source", source), ("sink", sink)):
                if uid not in known[role]:
                    raise ValueError(f"{where}: no {role} has the id {uid!r} (known: {', '.join(known[role])})")
            if plan.pairs.index((source, sink)) < i:
                first = plan.pairs.index((source, sink))
                raise ValueError(f"{where}: the pair is chosen twice (also pairs[{first}])")
            if sink in fed_by:
                raise ValueError(
                    f"{where}: sink {sink} is already chosen with source {fed_by[sink]}; each pair's energy is judged "
                    "as if alone, so a sink is planned with one source"
                )
            fed_by[sink] = source
        clash = sorted({a for a, _ in plan.pairs} & set(fed_by))
        if clash:
            raise ValueError(
                f"pairs: {', '.join(clash)} names both a chosen source and a chosen sink; the network model needs "
                "distinct ids: rename one of them"
            )
        return plan

    def path(self, p: Path) -> Path:
        """Return a path from the scenario, made absolute from the scenario file's folder."""
        return p if p.is_absolute() else self._base_dir / p


def matching_scenario_from_file(path: str | Path) -> MatchScenario:
    """Read and validate a matching scenario (YAML); errors name the file and the key.

    Parameters
    ----------
    path
        The YAML file.

    Returns
    -------
    MatchScenario
    """
    from heatmap.energy.energy_scenario import settings_from_file
    from heatmap.scenario import _line

    scn, node = settings_from_file(path, MatchScenario)
    if scn.plan is not None:
        scn._pair_lines = {i: _line(node, ("plan", "pairs", i)) for i in range(len(scn.plan.pairs))}
    logger.info("Read matching scenario %s: %d sources, %d sinks", path, len(scn.sources), len(scn.sinks))
    return scn


# ------------------------------------------------------------------------------------------------ units ---
def _locations(scn: MatchScenario, units: Sequence[_Unit], group: str) -> list[tuple[float, float]]:
    plants = None
    if any(u.plant is not None for u in units):
        if scn.plants_csv is None:
            raise ScenarioError(f"{group}: a unit names a plant but the scenario has no plants_csv")
        from heatmap.io.inputs import read_plants

        plants = read_plants(scn.path(scn.plants_csv))
    out = []
    for u in units:
        if u.plant is None or plants is None:  # plants are read where a unit names one
            assert u.lon is not None and u.lat is not None  # a unit gives a plant or lon and lat (_Unit)
            out.append((float(u.lon), float(u.lat)))
            continue
        if u.plant not in plants.index:
            raise ScenarioError(f"{group}[{u.id}].plant {u.plant!r} not in {scn.plants_csv}")
        p = plants.loc[u.plant]
        if pd.isna(p.lat) or pd.isna(p.lon):
            raise ScenarioError(
                f"{group}[{u.id}].plant {u.plant!r} has no coordinates in {scn.plants_csv}; give lon and lat"
            )
        out.append((float(p.lon), float(p.lat)))
    return out


MAX_UNIT_SPREAD_KM = 300.0
"""Farthest a source or sink may lie from the median site of all of them; farther, its lon and lat are taken for a
mistake (swapped, or of another place) and refused, naming the unit."""


def _check_far_units(
    located: dict[str, list[tuple[float, float]]], units: dict[str, Sequence[_Unit]], where: str
) -> None:
    """Refuse a unit that lies more than :data:`MAX_UNIT_SPREAD_KM` from the median site (its lon and lat, swapped?)."""
    from pyproj import Geod

    points = [(group, u.id, xy) for group in located for u, xy in zip(units[group], located[group], strict=True)]
    if len(points) < 3:
        return
    lon, lat = np.array([xy for *_, xy in points]).T
    mid_lon, mid_lat = float(np.median(lon)), float(np.median(lat))
    geod = Geod(ellps="WGS84")

    def km(x: np.ndarray, y: np.ndarray) -> np.ndarray:  # along the ellipsoid to the median site
        return np.asarray(geod.inv(x, y, np.full_like(x, mid_lon), np.full_like(y, mid_lat))[2]) / 1000.0

    far = km(lon, lat)
    i = int(np.argmax(far))
    if far[i] > MAX_UNIT_SPREAD_KM:
        group, uid, (x, y) = points[i]
        near_if_swapped = abs(x) <= 90 and km(np.array([y]), np.array([x]))[0] <= MAX_UNIT_SPREAD_KM
        swapped = " (lon and lat look swapped)" if near_if_swapped else ""
        raise ScenarioError(
            f"{where + ': ' if where else ''}{group}[{uid}] at lon {x:g}, lat {y:g} lies {far[i]:,.0f} km from the "
            f"other units (their median site lon {mid_lon:.3f}, lat {mid_lat:.3f}; at most {MAX_UNIT_SPREAD_KM:g} km "
            f"is taken){swapped}: check its lon and lat"
        )


def _hourly(path: Path, column: str, index: pd.DatetimeIndex, *, lower: float, upper: float, what: str) -> np.ndarray:
    """Read the scenario year's hourly values (8760, 29 February left out) from a CSV with a ``time`` column.

    The file's times must be the hours of ``index`` (:func:`heatmap.demand.climate.year_index` of the scenario's
    ``year``), as every command reads its hourly files: a file of another year, or of 8784 rows for a year that is
    no leap year, is refused naming the file, its rows and the hours expected.
    """
    from heatmap.demand.profiles import read_hourly

    return read_hourly(path, column, index, lower=lower, upper=upper, what=what).to_numpy()


def scenario_units(
    scn: MatchScenario,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Turn a matching scenario into the inputs of :func:`rank_matches`.

    Returns
    -------
    (sources, sinks, source_profiles_kw, sink_profiles_kw)
        GeoDataFrames in ``scn.settings.crs`` and the hourly profiles (kW, 8760 values) by id.
    """
    from heatmap.demand.climate import year_index
    from heatmap.demand.profiles import hourly_load_kw, read_hourly
    from heatmap.io.crs import check_scale

    index = year_index(scn.year)[:HOURS]
    located = {"sources": _locations(scn, scn.sources, "sources"), "sinks": _locations(scn, scn.sinks, "sinks")}
    lon, lat = zip(*located["sources"], *located["sinks"], strict=True)
    where = str(scn._path) if scn._path is not None else ""
    _check_far_units(located, {"sources": scn.sources, "sinks": scn.sinks}, where)
    check_scale(scn.settings.crs, lon, lat, key="'settings.crs'", where=where, error=ScenarioError)
    presets = read_presets(scn.path(scn.presets_csv))
    base = scn.path(Path("."))
    rows, profiles = [], {}
    for s in scn.sources:
        if s.preset is not None and s.preset not in presets.index:
            raise ScenarioError(f"sources[{s.id}].preset {s.preset!r} unknown; known: {', '.join(presets.index)}")
        row = presets.loc[s.preset] if s.preset else None
        assert row is None or isinstance(row, pd.Series)  # one preset per kind

        def pick(
            name: str,
            preset_name: str,
            s: MatchSource = s,
            row: pd.Series | None = row,
            default: float | None = None,
        ) -> Any:
            value = getattr(s, name)
            if value is not None:
                return value
            if row is not None and pd.notna(row.get(preset_name)):
                return float(row[preset_name])
            if default is not None:
                return default
            raise ScenarioError(f"sources[{s.id}]: {name} missing (give it, or a preset that has it)")

        avail = pick("availability", "availability")
        if hasattr(avail, "csv"):
            avail = {"csv": avail.csv, "column": avail.column}
        factor = availability_hourly(avail, index, base_dir=base)
        profiles[s.id] = s.peak_kw * factor
        rows.append(
            {
                "id": s.id,
                "t_c": float(pick("t_c", "temperature_c")),
                "peak_kw": s.peak_kw,
                "annual_mwh": float(profiles[s.id].sum() / 1000),
                "heat_price_eur_per_mwh": float(pick("heat_price_eur_per_mwh", "heat_price_eur_per_mwh", default=0.0)),
                "hx_cost_eur_per_kw": float(
                    pick("hx_cost_eur_per_kw", "hx_cost_eur_per_kw", default=scn.settings.hx_cost_eur_per_kw)
                ),
            }
        )
    sources = _frame(rows, located["sources"], scn.settings.crs)
    outdoor = None
    if scn.outdoor_temperature is not None:
        t = scn.outdoor_temperature
        outdoor = read_hourly(scn.path(t.csv), t.column, index, lower=-70, upper=50, what="outdoor-temperature")
    rows, sink_profiles = [], {}
    for k in scn.sinks:
        if k.profile is not None:
            load = _hourly(scn.path(k.profile.csv), k.profile.column, index, lower=0, upper=1e9, what="sink profile")
        elif k.annual_mwh is None:  # a sink gives annual_mwh or a profile (MatchSink)
            raise ScenarioError(f"sinks[{k.id}]: give either annual_mwh or profile")
        elif k.shape == "degree_hours":
            if outdoor is None:  # the scenario refuses this (MatchScenario)
                raise ScenarioError("sinks of shape degree_hours need outdoor_temperature")
            load = hourly_load_kw(
                k.annual_mwh * (1 - k.hot_water_share),
                k.annual_mwh * k.hot_water_share,
                outdoor,
                base_temperature_c=k.base_temperature_c,
            )
        else:
            load = np.full(HOURS, k.annual_mwh * 1000 / HOURS)
        peak = k.peak_kw if k.peak_kw is not None else float(load.max())
        sink_profiles[k.id] = np.asarray(load, dtype=float)
        rows.append(
            {
                "id": k.id,
                "t_c": k.t_c,
                "t_return_c": k.t_return_c,
                "peak_kw": peak,
                "annual_mwh": float(np.minimum(load, peak).sum() / 1000),
            }
        )
    sinks = _frame(rows, located["sinks"], scn.settings.crs)
    return sources, sinks, profiles, sink_profiles


def scenario_routes(scn: MatchScenario) -> gpd.GeoDataFrame | None:
    """Read the scenario's candidate links into segments for :func:`rank_matches` (``None`` if it has none)."""
    from pyproj import CRS

    from heatmap.network import links

    lk = scn.candidate_links
    if lk is None:
        return None
    crs = CRS(scn.settings.crs)
    path = scn.path(lk.path)
    lines = links.read_lines(path, layer=lk.layer, crs=crs, what="candidate links", layer_setting="links.layer")
    drawn = links.drawn_links(lines, cost_factors=lk.cost_factors.model_dump(), default_surface=lk.default_surface)
    routes = links.combine(None, [drawn], snap_m=lk.snap_m)
    routes.attrs["where"] = str(path)
    return routes


def _frame(rows: list[dict], lonlat: list[tuple[float, float]], crs: str) -> gpd.GeoDataFrame:
    lon, lat = zip(*lonlat, strict=True)
    return gpd.GeoDataFrame(rows, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326").to_crs(crs)


# ---------------------------------------------------------------------------------------------- ranking ---
def _profile(units: gpd.GeoDataFrame, profiles: dict[str, np.ndarray] | None, what: str) -> dict[str, np.ndarray]:
    """Hourly kW of each unit: the given profile or flat at annual/8760, clipped at ``peak_kw``."""
    out = {}
    for u in units.itertuples():
        if profiles is not None and u.id in profiles:
            p = np.asarray(profiles[u.id], dtype=float)
            if p.shape != (HOURS,) or not np.isfinite(p).all() or (p < 0).any():
                raise InputDataError(f"{what} {u.id}: the hourly profile needs {HOURS} finite values ≥ 0 (kW)")
            if what == "sink" and not p.sum() > 0:
                raise InputDataError(f"sink {u.id}: its hourly profile is 0 in every hour (it needs no heat); check it")
        else:
            if u.annual_mwh > u.peak_kw * HOURS / 1000 * (1 + 1e-9):
                raise InputDataError(
                    f"{what} {u.id}: annual_mwh {u.annual_mwh:g} is more than peak_kw × 8760 h "
                    f"({u.peak_kw * HOURS / 1000:g} MWh)"
                )
            p = np.full(HOURS, u.annual_mwh * 1000 / HOURS)
        out[u.id] = np.minimum(p, u.peak_kw)
    return out


def _graph_routes(
    sources: gpd.GeoDataFrame, sinks: gpd.GeoDataFrame, routes: gpd.GeoDataFrame, max_connection_m: float
) -> dict[tuple[str, str], tuple[float, float, Any]]:
    """Cheapest path of every source–sink pair on the candidate graph: ``(length_m, weight_m, line)``.

    Pairs without a path are left out; ``line`` is ``None`` where the path's pieces do not merge into one line.
    """
    import networkx as nx
    import shapely

    from heatmap.network import candidates

    if routes.crs != sources.crs:
        raise InputDataError(f"candidate routes ({routes.crs}) and units ({sources.crs}) must share one CRS")
    src = gpd.GeoDataFrame({"source_id": "source:" + sources["id"].astype(str)}, geometry=sources.geometry.values)
    con = gpd.GeoDataFrame({"consumer_id": "sink:" + sinks["id"].astype(str)}, geometry=sinks.geometry.values)
    cn = candidates.build_candidates(
        routes, src.set_crs(sources.crs), con.set_crs(sources.crs), max_service_length_m=max_connection_m
    )
    G = candidates.candidate_graph(cn.edges)
    node = cn.terminals.set_index("terminal_id").node
    geometry = cn.edges.set_index("edge_id").geometry
    out = {}
    for s in sources["id"]:
        start = node[f"source:{s}"]
        if start < 0 or start not in G:
            continue
        dist, paths = nx.single_source_dijkstra(G, start, weight="weight_m")
        assert isinstance(dist, dict) and isinstance(paths, dict)  # from one source to every node
        for k in sinks["id"]:
            end = node[f"sink:{k}"]
            if end < 0 or end not in dist:
                continue
            steps = [G.edges[a, b] for a, b in zip(paths[end][:-1], paths[end][1:], strict=True)]
            line = (
                shapely.line_merge(shapely.MultiLineString([geometry[e["edge_id"]] for e in steps])) if steps else None
            )
            out[(s, k)] = (
                sum(e["length_m"] for e in steps),
                float(dist[end]),
                line if line is not None and line.geom_type == "LineString" else None,
            )
    return out


def _check_columns(frame: gpd.GeoDataFrame, needed: tuple[str, ...], what: str) -> None:
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise InputDataError(f"{what}: columns {', '.join(missing)} missing")
    if frame.crs is None or not frame.crs.is_projected:
        raise InputDataError(f"{what}: need a metric (projected) CRS, not {frame.crs}")
    if frame["id"].duplicated().any():
        raise InputDataError(f"{what}: ids repeated: {', '.join(map(str, frame['id'][frame['id'].duplicated()]))}")


def rank_matches(
    sources: gpd.GeoDataFrame,
    sinks: gpd.GeoDataFrame,
    config: MatchingSettings | None = None,
    *,
    source_profiles_kw: dict[str, np.ndarray] | None = None,
    sink_profiles_kw: dict[str, np.ndarray] | None = None,
    routes: gpd.GeoDataFrame | None = None,
) -> gpd.GeoDataFrame:
    """Judge every source–sink pair and rank the feasible ones by cost per MWh matched.

    The rules are in the module docstring.

    Parameters
    ----------
    sources
        Points with ``id``, ``t_c`` (°C), ``annual_mwh``, ``peak_kw``; optional ``heat_price_eur_per_mwh`` (default
        0) and ``hx_cost_eur_per_kw`` (default the setting). Metric CRS.
    sinks
        Points with ``id``, ``t_c`` (supply it needs, °C), ``t_return_c``, ``annual_mwh``, ``peak_kw``; same CRS.
    config
        The matching settings (default :class:`MatchingSettings`).
    source_profiles_kw, sink_profiles_kw
        Hourly kW (8760 values) by id; units without one are flat at ``annual_mwh / 8760``.
    routes
        Candidate segments (``edge_id``, ``u``, ``v``, ``length_m``, optional ``cost_factor``: the output of
        :func:`heatmap.network.links.combine` or :func:`heatmap.io.streets.street_edges`) to route on;
        ``None``: straight lines × ``detour_factor``.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per pair with the columns of :data:`MATCH_COLUMNS` and a line from source to sink; feasible
        pairs first, by ``rank``.
    """
    from heatmap.network import sizing

    st = config or MatchingSettings()
    _check_columns(sources, ("id", "t_c", "annual_mwh", "peak_kw"), "sources")
    _check_columns(sinks, ("id", "t_c", "t_return_c", "annual_mwh", "peak_kw"), "sinks")
    if sources.crs != sinks.crs:
        raise InputDataError(f"sources ({sources.crs}) and sinks ({sinks.crs}) must share one CRS")
    src_p = _profile(sources, source_profiles_kw, "source")
    snk_p = _profile(sinks, sink_profiles_kw, "sink")
    catalogue = sizing.load_catalogue(st.catalogue, insulation_series=st.insulation_series, cost_column=st.cost_column)
    af = annuity_factor(st.discount_rate, st.lifetime_a)
    hp = st.heat_pump
    paths = None if routes is None else _graph_routes(sources, sinks, routes, st.max_connection_m)
    if paths is not None and not paths and len(sources) and len(sinks):
        logger.warning(
            "%s: no source–sink pair is joined by the candidate routes (each unit joins its nearest segment within "
            "settings.max_connection_m %g m): every pair is infeasible; check the routes' location and CRS",
            routes.attrs.get("where", "candidate_links") if routes is not None else "", st.max_connection_m,
        )  # fmt: skip
    rows, lines = [], []
    for s in sources.itertuples():
        for k in sinks.itertuples():
            r: dict[str, Any] = {
                "source_id": s.id,
                "sink_id": k.id,
                "source_t_c": float(s.t_c),
                "sink_t_c": float(k.t_c),
                "sink_t_return_c": float(k.t_return_c),
            }
            reasons = []
            straight = float(s.geometry.distance(k.geometry))
            line = LineString([s.geometry, k.geometry])
            if paths is None:
                route, factor = max(straight * st.detour_factor, st.min_route_length_m), 1.0
            elif (s.id, k.id) in paths:
                length, weight, path_line = paths[(s.id, k.id)]
                route = max(length, st.min_route_length_m)
                factor = weight / length if length > 0 else 1.0
                line = path_line if path_line is not None else line
            else:
                route, factor = np.nan, np.nan
                reasons.append(f"no route on the candidate links within {st.max_connection_m:g} m of both")
            r.update(straight_m=straight, route_length_m=route, route_cost_factor=factor)
            lift = float(k.t_c) - float(s.t_c)
            if s.t_c >= k.t_c + st.approach_k:
                kind, c = "direct", np.inf
            elif not hp.allowed:
                kind, c = "none", np.nan
                reasons.append(
                    f"too cold: {s.t_c:g} °C < sink supply {k.t_c:g} °C + approach {st.approach_k:g} K, "
                    "and heat pumps are not allowed"
                )
            elif lift > hp.max_lift_k:
                kind, c = "none", np.nan
                reasons.append(f"lift {lift:g} K beyond a heat pump's {hp.max_lift_k:g} K (heat_pump.max_lift_k)")
            else:
                kind, c = "heat_pump", float(cop(float(k.t_c), float(s.t_c), eta=hp.eta, max_cop=hp.max_cop))
                if c <= 1:
                    kind = "none"
                    reasons.append(f"heat-pump COP {c:.2f} ≤ 1")
            r.update(kind=kind, cop=c if kind == "heat_pump" else np.nan)  # a direct pair has no COP
            if route > st.max_route_length_m:
                reasons.append(f"too far: route {route:,.0f} m > {st.max_route_length_m:,.0f} m")
            from_source = 1.0 if kind == "direct" else (1 - 1 / c if kind == "heat_pump" else np.nan)
            if kind == "none":
                deliverable = np.zeros(HOURS)
            else:
                deliverable = src_p[s.id] / from_source
            hourly = np.minimum(deliverable, snk_p[k.id])
            matched = float(hourly.sum() / 1000)
            possible = min(deliverable.sum(), snk_p[k.id].sum()) / 1000
            design = float(min(s.peak_kw / from_source, k.peak_kw)) if kind != "none" else 0.0
            dt_k = float(k.t_c - k.t_return_c)
            water = sizing.water_properties(float(k.t_c), float(k.t_return_c))
            mdot = design * 1000 / (water.cp_j_per_kgk * dt_k)
            if kind != "none":
                dn = int(
                    sizing.size_pipes(
                        np.array([mdot]),
                        catalogue,
                        rho=water.rho_kg_per_m3,
                        nu_m2_per_s=water.nu_m2_per_s,
                        roughness_m=st.roughness_mm / 1000,
                        max_velocity_m_per_s=st.max_velocity_m_per_s,
                        max_pressure_gradient_pa_per_m=st.max_pressure_gradient_pa_per_m,
                    )[0]
                )
                v_at, grad_at = sizing.pressure_gradient_pa_per_m(
                    np.array(mdot),
                    np.array(catalogue.d_inner_m[dn]),
                    rho=water.rho_kg_per_m3,
                    nu_m2_per_s=water.nu_m2_per_s,
                    roughness_m=st.roughness_mm / 1000,
                )
                v, grad = float(v_at), float(grad_at)
                if v > st.max_velocity_m_per_s or grad > st.max_pressure_gradient_pa_per_m:
                    reasons.append(f"peak flow {mdot:,.1f} kg/s beyond the largest pipe DN{dn} within the limits")
                # no route: no price (a pipe of 0 € made the pair look cheaper than any feasible one)
                pipe = float(catalogue.cost_eur_per_m[dn]) * route * factor if np.isfinite(route) else np.nan
            else:
                dn, v, grad, pipe = 0, np.nan, np.nan, 0.0
            if kind != "none" and matched <= 0:
                reasons.append("nothing matched: the source has no heat in the hours the sink needs it")
            hx_per_kw = getattr(s, "hx_cost_eur_per_kw", st.hx_cost_eur_per_kw)
            hx_per_kw = st.hx_cost_eur_per_kw if pd.isna(hx_per_kw) else float(hx_per_kw)
            hx = hx_per_kw * design
            hp_capex = hp.cost_eur_per_kw * design if kind == "heat_pump" else 0.0
            capex = pipe + hx + hp_capex
            elec = matched / c if kind == "heat_pump" else 0.0
            source_heat = matched - elec
            price = getattr(s, "heat_price_eur_per_mwh", 0.0)
            price = 0.0 if pd.isna(price) else float(price)
            om = st.om_share_of_capex_per_a * capex + (hp.om_eur_per_mwh * matched if kind == "heat_pump" else 0.0)
            costs = {
                "capital_cost_eur_per_a": capex * af,
                "om_cost_eur_per_a": om,
                "electricity_cost_eur_per_a": elec * st.electricity_price_eur_per_mwh,
                "heat_purchase_cost_eur_per_a": source_heat * price,
            }
            annual = sum(costs.values())
            r.update(
                design_kw=design,
                mdot_kg_per_s=mdot,
                dn=dn,
                v_m_per_s=v,
                r_pa_per_m=grad,
                pipe_capex_eur=pipe,
                hx_capex_eur=hx,
                heat_pump_capex_eur=hp_capex,
                capex_eur=capex,
                **costs,
                annual_cost_eur_per_a=annual,
                electricity_mwh_per_a=elec,
                source_heat_mwh_per_a=source_heat,
                matched_mwh_per_a=matched,
                simultaneity=matched / possible if possible > 0 else np.nan,
                eur_per_mwh=annual / matched if matched > 0 else np.nan,
                feasible=not reasons,
                reason="; ".join(reasons),
            )
            rows.append(r)
            lines.append(line)
    table = gpd.GeoDataFrame(rows, geometry=lines, crs=sources.crs)
    table = table.sort_values(["feasible", "eur_per_mwh"], ascending=[False, True], kind="stable", na_position="last")
    table["rank"] = pd.array(np.where(table.feasible, np.arange(1, len(table) + 1), np.nan), dtype="Int64")
    table = table[[*MATCH_COLUMNS, "geometry"]].reset_index(drop=True)
    best = table.iloc[0] if len(table) and table.feasible.iloc[0] else None
    logger.info(
        "Matched %d sources × %d sinks: %d of %d pairs feasible%s",
        len(sources), len(sinks), int(table.feasible.sum()), len(table),
        "" if best is None else f", best {best.source_id} → {best.sink_id} at {best.eur_per_mwh:.1f} €/MWh",
    )  # fmt: skip
    return table


# ---------------------------------------------------------------------------------------------- outputs ---
MAX_PRINTED_PAIRS = 40
"""Pairs the command prints at most (the best first); matches.csv holds them all."""


def format_matches(table: pd.DataFrame) -> str:
    """Render the ranking as a text table (what the command prints): the first :data:`MAX_PRINTED_PAIRS` pairs."""
    more = len(table) - MAX_PRINTED_PAIRS
    table = table.head(MAX_PRINTED_PAIRS)
    view = table[
        ["rank", "source_id", "sink_id", "kind", "route_length_m", "dn", "matched_mwh_per_a", "eur_per_mwh", "reason"]
    ].rename(
        columns={
            "route_length_m": "route m",
            "matched_mwh_per_a": "matched MWh/a",
            "eur_per_mwh": "€/MWh",
        }
    )
    text = view.to_string(index=False, float_format=lambda v: f"{v:,.1f}", na_rep="–")
    return text + (f"\n… and {more:,d} more pairs (all in matches.csv)" if more > 0 else "")
