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

**Chosen pairs** (``plan.pairs``) are planned with the network model (:func:`plan_matches`): routed, sized,
simulated, checked and costed like ``heatmap plan``, with the pipe heat losses and pumping the table leaves out;
the rules are in :func:`chosen_pairs` and :func:`plan_scenario_dict`.
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
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator, model_validator
from shapely.geometry import LineString

from heatmap import settings
from heatmap._errors import InputDataError, ScenarioError
from heatmap.economics import annuity_factor
from heatmap.energy.energy_scenario import MAX_COP, MAX_COP_DOC, HourlyCsv, Id, assumptions
from heatmap.energy.excess_heat import availability_hourly, cop, read_presets
from heatmap.scenario import Surface, SurfaceCostFactors

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
class _Model(BaseModel):
    """A block of settings: unknown keys, NaN and infinity are refused; frozen once read."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class HeatPumpRule(_Model):
    """Heat pumps that may lift a source too cold for a sink."""

    allowed: bool = Field(True, description="pair cold sources with sinks through a heat pump")
    eta: float = Field(0.5, gt=0, le=1, description="share of the Carnot COP reached (COP = η·T_hot/(T_hot−T_cold))")
    cost_eur_per_kw: float = Field(700.0, ge=0, description="investment per kW of heat output (estimate)")
    om_eur_per_mwh: float = Field(0.0, ge=0, description="operation and maintenance per MWh of heat")
    max_lift_k: float = Field(80.0, gt=0, description="largest lift T_hot − T_cold one pump makes (estimate)")
    max_cop: float = Field(MAX_COP, gt=1, le=50, description=MAX_COP_DOC)


class MatchingSettings(_Model):
    """How pairs are judged and costed; every value is reported in ``summary.json``."""

    crs: str = Field("EPSG:3067", description="metric CRS of the distances and the map layer")
    detour_factor: float = Field(1.3, ge=1, le=5, description="route length ÷ straight line (estimate)")
    min_route_length_m: float = Field(100.0, ge=0, description="shortest route, e.g. within one site (estimate)")
    max_route_length_m: float = Field(10_000.0, gt=0, description="longer routes are flagged infeasible")
    max_connection_m: float = Field(
        500.0, gt=0, description="with candidate routes: farthest a unit may lie from its nearest segment"
    )
    approach_k: float = Field(5.0, ge=0, description="source must exceed the sink's supply temperature by this")
    heat_pump: HeatPumpRule = HeatPumpRule()
    electricity_price_eur_per_mwh: float = Field(60.0, description="electricity bought by heat pumps (estimate)")
    hx_cost_eur_per_kw: float = Field(
        15.0, ge=0, description="heat exchanger at the source per kW, unless the source gives its own"
    )
    om_share_of_capex_per_a: float = Field(0.01, ge=0, lt=1, description="O&M per year as a share of capex")
    discount_rate: float = Field(0.05, ge=0, lt=1, description="real discount rate per year")
    lifetime_a: int = Field(20, gt=0, le=100, description="lifetime of pipes and equipment (years)")
    catalogue: Path = Field(settings.data_dir / "pipes_en253.csv", description="EN 253 pipe catalogue")
    insulation_series: int = Field(2, ge=1, le=3, description="EN 253 insulation series")
    cost_column: str = Field("cost_eur_per_m", description="catalogue column: trench cost per metre (pipe pair)")
    max_velocity_m_per_s: float = Field(1.5, gt=0, le=5, description="sizing limit on the flow velocity")
    max_pressure_gradient_pa_per_m: float = Field(250.0, gt=0, le=2000, description="sizing limit on friction")
    roughness_mm: float = Field(0.045, ge=0, le=5, description="pipe wall roughness")


class _Unit(_Model):
    id: Id
    plant: str | None = Field(None, description="plant name in plants_csv (its location)")
    lon: float | None = Field(None, ge=-180, le=180, description="longitude (WGS84), instead of plant")
    lat: float | None = Field(None, ge=-90, le=90, description="latitude (WGS84), instead of plant")
    note: str | None = Field(None, description="where the figures come from (sourced or estimate)")

    @model_validator(mode="after")
    def _location(self):
        if (self.plant is None) == (self.lon is None or self.lat is None):
            raise ValueError("give either plant or both lon and lat")
        return self


class MatchSource(_Unit):
    """An excess-heat source; values left out come from its preset (``data/excess_heat_presets.csv``)."""

    preset: str | None = Field(None, description="kind in the preset table (roaster_steam, electrolyser, …)")
    t_c: float | None = Field(None, gt=-20, lt=600, description="temperature the heat is available at (°C)")
    peak_kw: float = Field(gt=0, description="heat it can give at full availability (kW)")
    availability: float | list[float] | HourlyCsv | None = Field(
        None, description="0…1: a constant, 12 monthly factors, or an hourly CSV column"
    )
    heat_price_eur_per_mwh: float | None = Field(None, ge=0, description="price of the heat taken")
    hx_cost_eur_per_kw: float | None = Field(None, ge=0, description="recovery heat exchanger per kW")

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
    annual_mwh: float | None = Field(None, gt=0, description="heat it uses per year (MWh)")
    profile: HourlyCsv | None = Field(None, description="hourly heat use in kW instead of annual_mwh and shape")
    shape: str = Field("flat", pattern="^(flat|degree_hours)$", description="flat, or by heating degree-hours")
    hot_water_share: float = Field(0.2, ge=0, lt=1, description="degree_hours shape: flat share of annual_mwh")
    base_temperature_c: float = Field(17.0, description="degree_hours shape: base temperature (FMI S17)")
    peak_kw: float | None = Field(None, gt=0, description="design load (kW); default the profile's highest hour")

    @model_validator(mode="after")
    def _check(self) -> MatchSink:
        if self.t_return_c >= self.t_c:
            raise ValueError("t_return_c must be below t_c")
        if (self.annual_mwh is None) == (self.profile is None):
            raise ValueError("give either annual_mwh or profile")
        return self


class CandidateLinks(_Model):
    """Candidate routes drawn in QGIS (a line layer, see :mod:`heatmap.network.links`) instead of straight lines."""

    path: Path = Field(description="line layer of candidate routes (optional 'surface' column)")
    layer: str | None = Field(None, description="layer of that file")
    default_surface: Surface = Field("open_terrain", description="surface of lines without a 'surface' value")
    snap_m: float = Field(2.0, ge=0, le=100, description="line ends this close join")
    cost_factors: SurfaceCostFactors = Field(SurfaceCostFactors(), description="trench cost relative to a street")


class MatchPlan(_Model):
    """The pairs a study chooses, planned together with the network model (:func:`plan_matches`).

    Each chosen source feeds its sinks through one network (``network.supply_areas: shared`` of the plan):
    the pipes follow the pairs' routes (their straight lines, or the candidate links), the heat exchanger or
    heat pump stands at the source and heats the water to its sinks' supply temperature.
    """

    pairs: list[tuple[Id, Id]] = Field(
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


class MatchScenario(_Model):
    """A matching study: sources, sinks, their locations and the settings."""

    name: str = Field(min_length=1)
    year: int = Field(2023, ge=1900, le=2100, description="calendar year of the hourly time stamps")
    outdoor_temperature: HourlyCsv | None = Field(None, description="hourly °C, for sinks of shape degree_hours")
    plants_csv: Path | None = Field(None, description="plants with their (approximate) locations")
    presets_csv: Path = Field(settings.data_dir / "excess_heat_presets.csv", description="source presets")
    settings: MatchingSettings = MatchingSettings()
    candidate_links: CandidateLinks | None = Field(None, description="route on these lines, not straight lines")
    sources: list[MatchSource] = Field(min_length=1)
    sinks: list[MatchSink] = Field(min_length=1)
    plan: MatchPlan | None = Field(None, description="the chosen pairs to plan with the network model")
    _base_dir: Path = PrivateAttr(default=Path("."))
    _pair_lines: dict[int, int] = PrivateAttr(default_factory=dict)
    _path: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _ids(self) -> MatchScenario:
        for group in ("sources", "sinks"):
            ids = [u.id for u in getattr(self, group)]
            dup = sorted({i for i in ids if ids.count(i) > 1})
            if dup:
                raise ValueError(f"{group}: ids repeated: {dup}")
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
    from heatmap.energy.energy_scenario import energy_scenario_from_file
    from heatmap.scenario import _line, _load_yaml

    scn = energy_scenario_from_file(path, model=MatchScenario)
    if scn.plan is not None:
        _, node = _load_yaml(Path(path).read_text(encoding="utf-8"))
        scn._pair_lines = {i: _line(node, ("plan", "pairs", i)) for i in range(len(scn.plan.pairs))}
    logger.info("Read matching scenario %s: %d sources, %d sinks", path, len(scn.sources), len(scn.sinks))
    return scn


# ------------------------------------------------------------------------------------------------ units ---
def _locations(scn: MatchScenario, units: list[_Unit], group: str) -> list[tuple[float, float]]:
    plants = None
    if any(u.plant is not None for u in units):
        if scn.plants_csv is None:
            raise ScenarioError(f"{group}: a unit names a plant but the scenario has no plants_csv")
        from heatmap.io.inputs import read_table

        plants = read_table(scn.path(scn.plants_csv), required=["lat", "lon"], index="name", what="plants file")
    out = []
    for u in units:
        if u.plant is None:
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


def _hourly(path: Path, column: str, *, lower: float, upper: float, what: str) -> np.ndarray:
    """Read one year of hourly values (8760, a year without 29 February) from a CSV with a ``time`` column."""
    from heatmap.demand.profiles import read_hourly

    values = read_hourly(path, column, lower=lower, upper=upper, what=what).to_numpy()
    if len(values) != HOURS:
        raise InputDataError(f"{path}: {what} file holds {len(values)} hours; matching needs {HOURS} (no leap day)")
    return values


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
    from heatmap.demand.profiles import hourly_load_kw

    index = year_index(scn.year)[:HOURS]
    presets = read_presets(scn.path(scn.presets_csv))
    base = scn.path(Path("."))
    rows, profiles = [], {}
    for s in scn.sources:
        if s.preset is not None and s.preset not in presets.index:
            raise ScenarioError(f"sources[{s.id}].preset {s.preset!r} unknown; known: {', '.join(presets.index)}")
        row = presets.loc[s.preset] if s.preset else None

        def pick(name: str, preset_name: str, s=s, row=row, default=None):
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
    sources = _frame(rows, _locations(scn, scn.sources, "sources"), scn.settings.crs)
    outdoor = None
    if scn.outdoor_temperature is not None:
        t = scn.outdoor_temperature
        outdoor = _hourly(scn.path(t.csv), t.column, lower=-70, upper=50, what="outdoor-temperature")
    rows, sink_profiles = [], {}
    for k in scn.sinks:
        if k.profile is not None:
            load = _hourly(scn.path(k.profile.csv), k.profile.column, lower=0, upper=1e9, what="sink profile")
        elif k.shape == "degree_hours":
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
    sinks = _frame(rows, _locations(scn, scn.sinks, "sinks"), scn.settings.crs)
    return sources, sinks, profiles, sink_profiles


def scenario_routes(scn: MatchScenario) -> gpd.GeoDataFrame | None:
    """Read the scenario's candidate links into segments for :func:`rank_matches` (``None`` if it has none)."""
    from pyproj import CRS

    from heatmap.network import links

    lk = scn.candidate_links
    if lk is None:
        return None
    lines = links.read_lines(scn.path(lk.path), layer=lk.layer, crs=CRS(scn.settings.crs), what="candidate links")
    drawn = links.drawn_links(lines, cost_factors=lk.cost_factors.model_dump(), default_surface=lk.default_surface)
    return links.combine(None, [drawn], snap_m=lk.snap_m)


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
                v, grad = sizing.pressure_gradient_pa_per_m(
                    np.array(mdot),
                    np.array(catalogue.d_inner_m[dn]),
                    rho=water.rho_kg_per_m3,
                    nu_m2_per_s=water.nu_m2_per_s,
                    roughness_m=st.roughness_mm / 1000,
                )
                v, grad = float(v), float(grad)
                if v > st.max_velocity_m_per_s or grad > st.max_pressure_gradient_pa_per_m:
                    reasons.append(f"peak flow {mdot:,.1f} kg/s beyond the largest pipe DN{dn} within the limits")
                pipe = float(catalogue.cost_eur_per_m[dn]) * route * factor if np.isfinite(route) else 0.0
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


# ------------------------------------------------------------------------------------------ chosen pairs ---
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


def _refuse(scn: MatchScenario, i: int, message: str) -> None:
    line = scn._pair_lines.get(i)
    where = f"{scn._path}, line {line}: " if getattr(scn, "_path", None) and line else ""
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
    if scn.plan is None:
        raise ScenarioError("the scenario chooses no pairs: give plan.pairs")
    st, pl = scn.settings, scn.plan
    row = table.set_index(["source_id", "sink_id"])
    chosen = []
    for i, (source, sink) in enumerate(pl.pairs):
        r = row.loc[(source, sink)]
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
    for sid, group in pairs.groupby("source_id", sort=False):
        taken = sum(
            np.minimum(src_p[sid] / r.from_source, snk_p[r.sink_id]) * r.from_source for r in group.itertuples()
        )
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
    G = nx.Graph()
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
    st, pl = scn.settings, scn.plan
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
                for r in chosen_sources.itertuples()
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
                for r in pairs.itertuples()
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
            "interest_rate": st.discount_rate,
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
            lines = _pair_lines(table, pairs, scn.plan.route_surface)
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


# ---------------------------------------------------------------------------------------------- outputs ---
OUTPUT_FILES = ("matches.csv", "matches.gpkg", "summary.json")
PLAN_FILES = ("network/plan.gpkg", "network/map.html", "network/summary.json")
"""The planned network of the chosen pairs, written where the scenario chooses pairs (``plan.pairs``)."""


def matches_summary(
    scn: MatchScenario,
    table: gpd.GeoDataFrame,
    sources: gpd.GeoDataFrame | None = None,
    sinks: gpd.GeoDataFrame | None = None,
    planned: MatchesPlan | None = None,
) -> dict[str, Any]:
    """Summarise a matching run: counts, the feasible pairs in order, the reasons, every setting and unit used.

    ``sources`` and ``sinks`` (from :func:`scenario_units`) add each unit's values as used (preset values
    filled in) beside its note; ``planned`` (from :func:`plan_matches`) adds the planned network of the chosen
    pairs (:func:`planned_summary`).
    """
    feasible = table[table.feasible]

    def units(group: list, frame: gpd.GeoDataFrame | None) -> dict[str, Any]:
        used = {} if frame is None else frame.drop(columns="geometry").set_index("id").to_dict("index")
        return {u.id: {**used.get(u.id, {}), "note": u.note} for u in group}

    out = {
        "scenario": scn.name,
        "sources": len(scn.sources),
        "sinks": len(scn.sinks),
        "pairs": len(table),
        "feasible_pairs": len(feasible),
        "ranking": [
            {
                "rank": int(r.rank),
                "source_id": r.source_id,
                "sink_id": r.sink_id,
                "kind": r.kind,
                "route_length_m": round(float(r.route_length_m), 1),
                "matched_mwh_per_a": round(float(r.matched_mwh_per_a), 1),
                "eur_per_mwh": round(float(r.eur_per_mwh), 2),
            }
            for r in feasible.itertuples()
        ],
        "infeasible": {f"{r.source_id} → {r.sink_id}": r.reason for r in table[~table.feasible].itertuples()},
        "rule": "each pair judged as if alone; annual energy matched = Σ_h min(source deliverable, sink load); "
        "€/MWh = (capex × annuity factor + O&M + electricity + heat purchase) / MWh matched",
        "assumptions": {
            **assumptions(scn.settings, "settings."),
            **(assumptions(scn.plan, "plan.") if scn.plan is not None else {}),
        },
        "units": {"sources": units(scn.sources, sources), "sinks": units(scn.sinks, sinks)},
    }
    if planned is not None:
        out["plan"] = planned_summary(planned)
    return out


def write_matches(
    scn: MatchScenario,
    table: gpd.GeoDataFrame,
    out_dir: Path,
    *,
    inputs: tuple | list = (),
    sources: gpd.GeoDataFrame | None = None,
    sinks: gpd.GeoDataFrame | None = None,
    planned: MatchesPlan | None = None,
    tiles: str | None = None,
) -> dict[str, Path]:
    """Write ``matches.csv``, ``matches.gpkg`` (line layer ``matches``, QGIS style embedded) and ``summary.json``.

    With ``planned`` (:func:`plan_matches`) also the planned network of the chosen pairs in ``network/``:
    ``plan.gpkg`` (styled for QGIS), ``map.html`` (offline web map), ``summary.json`` (the plan's full
    summary: every check, figure and assumption) and, where the plan routed on the pairs' straight lines,
    ``pair_lines.gpkg``. A plan whose checks fail is written marked partial (as ``heatmap plan --partial``).
    The folder is swapped in whole (:func:`heatmap.io.output_folder.write_atomically`).
    """
    from heatmap.io.output_folder import write_atomically
    from heatmap.io.outputs import write_gpkg, write_json
    from heatmap.maps import qgis_style

    names = OUTPUT_FILES
    if planned is not None:
        names = (*names, *PLAN_FILES, *(("network/pair_lines.gpkg",) if planned.pair_lines is not None else ()))

    def write(tmp: Path) -> None:
        table.drop(columns="geometry").to_csv(tmp / "matches.csv", index=False, float_format="%.4f")
        layer = table.copy()
        layer["rank"] = layer["rank"].astype("float")
        layer.insert(3, "status", np.where(layer.feasible, layer.kind, "infeasible"))
        gpkg = tmp / "matches.gpkg"
        qgis_style.write_layer_styles(gpkg, write_gpkg({"matches": layer}, gpkg))
        write_json(matches_summary(scn, table, sources, sinks, planned), tmp / "summary.json")
        if planned is not None:
            _write_planned(planned, tmp / "network", tiles=tiles)

    written = write_atomically(out_dir, names, write, inputs=inputs)
    logger.info("Wrote %d files to %s", len(written), out_dir)
    return written


def _write_planned(planned: MatchesPlan, folder: Path, *, tiles: str | None) -> None:
    """Write the planned network's GeoPackage, web map and summary into ``folder`` (as :func:`write_plan` does)."""
    from heatmap import __version__
    from heatmap.io.outputs import failed_checks, plan_layers, plan_summary, write_gpkg, write_json
    from heatmap.maps import qgis_style, webmap

    plan = planned.plan
    folder.mkdir()
    checks = failed_checks(plan)
    metadata = {
        "heatmap_version": __version__,
        "heatmap_scenario": str(plan.scenario.name),
        "heatmap_status": "ok" if plan.ok else "partial",
        "heatmap_failed_checks": ", ".join(checks),
    }
    note = "" if plan.ok else f" (PARTIAL plan: checks failed: {', '.join(checks)})"
    banner = None if plan.ok else f"Partial plan: checks fail ({', '.join(checks)}); see network/summary.json"
    layers = plan_layers(plan)
    gpkg = folder / "plan.gpkg"
    qgis_style.write_layer_styles(gpkg, write_gpkg(layers, gpkg, metadata=metadata, note=note))
    webmap.write_map(layers, folder / "map.html", title=plan.scenario.name, tiles=tiles, banner=banner)
    summary = plan_summary(plan, partial=not plan.ok)
    if planned.pair_lines is not None:
        planned.pair_lines.to_file(folder / "pair_lines.gpkg", layer="pair_lines")
        for row in summary["assumptions"]:
            if row["key"] == "links.path":
                row["value"] = "network/pair_lines.gpkg (the chosen pairs' straight lines, written by heatmap matches)"
    write_json(summary, folder / "summary.json")


def format_matches(table: pd.DataFrame) -> str:
    """Render the ranking as a text table (what the command prints)."""
    view = table[
        ["rank", "source_id", "sink_id", "kind", "route_length_m", "dn", "matched_mwh_per_a", "eur_per_mwh", "reason"]
    ].rename(
        columns={
            "route_length_m": "route m",
            "matched_mwh_per_a": "matched MWh/a",
            "eur_per_mwh": "€/MWh",
        }
    )
    return view.to_string(index=False, float_format=lambda v: f"{v:,.1f}", na_rep="–")
