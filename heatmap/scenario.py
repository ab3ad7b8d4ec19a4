"""Read and validate a scenario file (YAML) into typed, documented settings.

A scenario names the study area, the street source, the heat sources and consumers, and every assumption
of the plan: design temperatures, hydraulic limits, the pipe catalogue and cost model, the demand rule and
the economics. Every setting has a documented default (the field's ``doc``); the summary of a plan lists
each setting with its value and whether it came from the scenario or from the default.

Validation names the key, the value and what is allowed; an unknown key gets the closest known key
suggested. Relative paths are resolved against the scenario file's folder.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from heatmap import settings
from heatmap._errors import ScenarioError

logger = logging.getLogger(__name__)


def _setting(default: Any, doc: str, **checks: Any) -> Any:
    """Declare a scenario setting with its default, its documentation and its checks."""
    kwargs: dict[str, Any] = {"metadata": {"doc": doc, **checks}}
    if isinstance(default, list | dict):
        kwargs["default_factory"] = lambda: type(default)(default)
    else:
        kwargs["default"] = default
    return field(**kwargs)


@dataclass(frozen=True)
class StudyArea:
    """Where the plan is made."""

    bbox: list[float] | None = _setting(
        None, "[west, south, east, north] in degrees (EPSG:4326); default: the extent of the street data"
    )
    crs: str | None = _setting(
        None, "metric CRS for all geometry work; default: EPSG:3067 in Finland, else the local UTM zone"
    )


@dataclass(frozen=True)
class Streets:
    """Where the candidate streets come from."""

    source: str = _setting(
        "pbf",
        "pbf (OSM PBF via pyrosm), xml (.osm via osmnx), graphml, place, bbox or polygon (live osmnx)",
        choices=("pbf", "xml", "graphml", "place", "bbox", "polygon"),
    )
    path: Path | None = _setting(None, "file for pbf, xml, graphml (or a polygon file for source: polygon)")
    place: str | None = _setting(None, "place name geocoded by osmnx, for source: place")
    network_type: str = _setting(
        "driving+service",
        "which OSM ways may carry pipes: public roads and service roads by default",
        choices=("driving", "driving+service", "walking", "cycling", "all"),
    )
    max_service_length_m: float = _setting(
        150.0,
        "longest service connection from a building or plant to the street; farther is unreachable",
        min=1.0,
    )


@dataclass(frozen=True)
class Sources:
    """Heat sources: a file (GPKG, GeoJSON, SHP, CSV with lon/lat) or inline rows."""

    path: Path | None = _setting(None, "file with id, capacity_kw, t_supply_c (and name) per source")
    inline: list[dict] = _setting([], "rows with id, name, lon, lat, capacity_kw, t_supply_c")
    id_column: str = _setting("id", "column holding each source's unique id")


@dataclass(frozen=True)
class Consumers:
    """Heat consumers: a file of points or footprints, or the buildings of the OSM street file."""

    path: Path | None = _setting(None, "file with id and annual_demand_mwh (peak_load_kw optional) per consumer")
    inline: list[dict] = _setting([], "rows with id, lon, lat, annual_demand_mwh (peak_load_kw, min_supply_c optional)")
    osm_buildings: bool = _setting(False, "take the buildings of the streets' OSM PBF as consumers")
    id_column: str = _setting("id", "column holding each consumer's unique id")
    layer: str | None = _setting(None, "layer to read from a multi-layer file (GeoPackage)")
    min_annual_demand_mwh: float = _setting(
        0.0, "consumers with less annual demand are left out of the plan (reported)", min=0.0
    )


@dataclass(frozen=True)
class Temperatures:
    """Design temperatures in °C."""

    supply_c: float = _setting(80.0, "network supply temperature at the source(s) at design load", min=20, max=150)
    return_c: float = _setting(45.0, "return temperature leaving each consumer", min=5, max=100)
    ground_c: float = _setting(8.0, "undisturbed ground temperature around buried pipes", min=-20, max=40)
    min_consumer_supply_c: float = _setting(
        70.0, "lowest supply temperature acceptable at a consumer without its own min_supply_c", min=5, max=150
    )


@dataclass(frozen=True)
class Limits:
    """Hydraulic design limits checked after every simulation."""

    max_velocity_m_per_s: float = _setting(
        1.5,
        "highest flow velocity in any pipe (industry: < 1 m/s in service pipes, warn > 1.5)",
        min=0.1,
        max=5,
    )
    max_pressure_gradient_pa_per_m: float = _setting(
        250.0,
        "highest friction pressure gradient (topotherm default 250 Pa/m, range 70–350)",
        min=10,
        max=2000,
    )
    min_consumer_dp_bar: float = _setting(
        0.5, "lowest supply-return differential pressure at any consumer", min=0.0, max=20
    )
    max_resize_rounds: int = _setting(
        5, "simulation–resize rounds before the remaining violations are reported", min=0, max=50
    )


@dataclass(frozen=True)
class Network:
    """Pipe catalogue, sizing rule and hydraulic model settings."""

    catalogue: Path = _setting(
        Path("pipes_en253.csv"), "EN 253 pipe catalogue (in the data folder unless a path is given)"
    )
    insulation_series: int = _setting(2, "EN 253 insulation series 1, 2 or 3", choices=(1, 2, 3))
    cost_column: str = _setting(
        "cost_eur_per_m",
        "catalogue column with the trench cost per metre of route (supply + return pair)",
    )
    roughness_mm: float = _setting(0.045, "pipe wall roughness (new steel)", min=0.0, max=5.0)
    simultaneity: str = _setting(
        "winter",
        "simultaneity factor on peak loads: winter (Winter et al. 2001), thermos (0.62 + 0.38/n) or none",
        choices=("winter", "thermos", "none"),
    )
    sizing_margin: float = _setting(
        0.03,
        "share below the velocity and pressure-gradient limits that sizing aims for, to cover what the sizing "
        "estimate leaves out (water properties varying with temperature); resize rounds correct the rest",
        min=0.0,
        max=0.5,
    )
    p_return_bar: float = _setting(
        2.0,
        "static pressure the pressure-holding source keeps at its pump inlet (return side)",
        min=0.5,
        max=40,
    )
    initial_pump_lift_bar: float = _setting(
        1.5, "pump lift of the first simulation; raised where consumers lack differential pressure", min=0.1
    )
    max_pump_lift_bar: float = _setting(10.0, "highest pump lift the resizing may set", min=0.1)


@dataclass(frozen=True)
class Demand:
    """First demand estimate for buildings without metered demand (footprint × floors × specific demand)."""

    specific_demand_table: Path = _setting(
        Path("specific_heat_demand_fi.csv"), "space-heat kWh per floor m² and year by era × type"
    )
    building_types_table: Path = _setting(
        Path("osm_building_types.csv"), "OSM building tag → demand type (or unheated)"
    )
    dhw_table: Path = _setting(Path("dhw_fi.csv"), "domestic hot water kWh per floor m² and year by type")
    degree_days: float = _setting(
        4233.0, "local heating degree days (S17); the table's reference year has 4233", min=100, max=12000
    )
    reference_degree_days: float = _setting(4233.0, "degree days of the specific-demand table", min=100)
    default_floors: float = _setting(4.0, "floors where OSM has neither building:levels nor height", min=1)
    floor_height_m: float = _setting(3.2, "storey height used to derive floors from height", min=2)
    default_type: str = _setting("apartment_block", "demand type of buildings tagged only building=yes")
    default_era: str = _setting("1970s", "construction era where start_date is missing")
    full_load_hours_h: float = _setting(
        2000.0, "peak load = annual demand / full-load hours (Finnish DH: ~2,000 h)", min=100, max=8760
    )
    peak_method: str = _setting(
        "full_load_hours",
        "peak load rule: full_load_hours (annual / full-load hours) or design_temperature (degree-day method: "
        "space heat at the design outdoor temperature + average hot water)",
        choices=("full_load_hours", "design_temperature"),
    )
    base_temperature_c: float = _setting(17.0, "base temperature of the degree days (FMI S17: 17 °C)", min=5, max=25)
    design_temperature_c: float = _setting(
        -29.0,
        "design outdoor temperature (proxy: Kauhava, ASHRAE 99.6 % = −29.0 °C, the nearest to Kokkola)",
        min=-60,
        max=10,
    )
    metered_column: str | None = _setting(
        None, "column of the buildings holding metered annual demand (MWh/a); where given it is kept"
    )
    infer_type: bool = _setting(
        True,
        "type buildings whose tag does not say it (building=yes, residential, house, building) from the land use "
        "around them, their footprint and floors (heatmap.demand); false: demand.default_type for them all",
    )
    landuse_types_table: Path = _setting(
        settings.data_dir / "osm_landuse_types.csv", "OSM landuse around a building → demand type (or residential)"
    )
    floors_table: Path = _setting(
        settings.data_dir / "default_floors_fi.csv",
        "floors by demand type where OSM has neither building:levels nor height (demand.default_floors for types "
        "not in it)",
    )
    floors_by_type: dict = _setting(
        {},
        "floors by demand type overriding demand.floors_table where OSM has neither building:levels nor height, "
        "e.g. {apartment_block: 5, office: 5} in a city centre",
    )
    statistics_table: Path = _setting(
        settings.data_dir / "demand_statistics_fi.csv",
        "published Finnish figures per type (Statistics Finland) the estimate is compared with in the summary",
    )
    detached_max_footprint_m2: float = _setting(
        250.0,
        "dwellings of unknown kind with a footprint up to this are detached houses (estimate: Finnish detached "
        "houses average 145 floor m² on 1–2 floors, Statistics Finland 2020)",
        min=0.0,
    )
    row_min_elongation: float = _setting(
        2.5,
        "larger dwellings whose footprint's oriented rectangle is at least this many times longer than wide are row "
        "houses (estimate, not sourced)",
        min=1.0,
    )
    row_max_footprint_m2: float = _setting(
        1000.0,
        "largest footprint of a row house; larger dwellings are apartment blocks (estimate: Finnish row houses "
        "average 433 floor m², Statistics Finland 2020)",
        min=0.0,
    )
    apartment_min_floors: float = _setting(
        3.0,
        "dwellings of unknown kind with at least this many floors (building:levels or height) are apartment blocks "
        "(Statistics Finland 2010: 69 % of blocks of flats have 3–9 floors, 95 % of all residential buildings 1–2)",
        min=1.0,
    )
    min_heated_footprint_m2: float = _setting(
        30.0,
        "buildings of inferred type with a smaller footprint are outbuildings (saunas, sheds) and left out, unless "
        "metered (estimate, not sourced; Statistics Finland's building stock leaves out saunas and outbuildings)",
        min=0.0,
    )
    max_floors: float = _setting(
        50.0,
        "building:levels (or height / floor_height_m) above this is implausible, ignored and reported; the type's "
        "default floors apply (estimate: above Finland's tallest buildings)",
        min=1.0,
    )


@dataclass(frozen=True)
class Economics:
    """Economic assumptions."""

    interest_rate: float = _setting(0.03, "real discount rate per year", min=0.0, max=0.5)
    lifetime_a: int = _setting(30, "economic lifetime of the network in years", min=1, max=100)
    heat_price_eur_per_mwh: float = _setting(
        80.0, "price consumers pay for heat (Statistics Finland: 76–82 €/MWh incl. VAT)", min=0
    )
    heat_cost_eur_per_mwh: float = _setting(
        10.0, "cost of the (excess) heat bought at the source(s), losses included", min=0
    )
    electricity_price_eur_per_mwh: float = _setting(
        60.0, "electricity price for pumping (Finland 2018–22: 44–154 €/MWh)", min=0
    )
    om_fraction_per_a: float = _setting(0.01, "operation and maintenance per year as a share of capex", min=0)
    pump_efficiency: float = _setting(0.7, "wire-to-water efficiency of the circulation pumps", min=0.05, max=1)
    pump_full_load_hours_h: float = _setting(
        2000.0, "annual pumping energy = design pumping power × these hours", min=0, max=8760
    )


@dataclass(frozen=True)
class Density:
    """Heat-density raster and district-heating potential areas (Hotmaps / sEEnergies method)."""

    cell_size_m: float = _setting(
        100.0, "cell size of the heat-density raster (Hotmaps heat density map: 100 m, one hectare)", min=1.0
    )
    min_cell_density_mwh_per_ha: float = _setting(
        333.0,
        "lowest heat density of a cell in a potential DH area, MWh/(ha·a) (Hotmaps DH potential module default)",
        min=0.0,
    )
    min_area_demand_gwh_per_a: float = _setting(
        30.0, "lowest annual demand of a potential DH area (Hotmaps DH potential module default)", min=0.0
    )
    cost_c1_eur_per_m: float = _setting(
        439.0,
        "distribution-grid cost per trench metre, fixed part c1 (sEEnergies / Hotmaps, Finland; EU default 212)",
        min=0.0,
    )
    cost_c2_eur_per_m2: float = _setting(
        4073.0,
        "distribution-grid cost per trench metre and metre of average pipe diameter, c2 (sEEnergies / Hotmaps, "
        "Finland; EU default 4464)",
        min=0.0,
    )


@dataclass(frozen=True)
class Scenario:
    """A validated scenario: every path absolute, every setting typed."""

    name: str = _setting("unnamed scenario", "title shown on the map and in the summary")
    study_area: StudyArea = field(default_factory=StudyArea)
    streets: Streets = field(default_factory=Streets)
    sources: Sources = field(default_factory=Sources)
    consumers: Consumers = field(default_factory=Consumers)
    temperatures: Temperatures = field(default_factory=Temperatures)
    limits: Limits = field(default_factory=Limits)
    network: Network = field(default_factory=Network)
    demand: Demand = field(default_factory=Demand)
    economics: Economics = field(default_factory=Economics)
    density: Density = field(default_factory=Density)
    path: Path | None = None
    given: frozenset[str] = frozenset()

    def assumptions(self) -> list[dict[str, Any]]:
        """List every setting with its value, unit-bearing name, documentation and origin.

        Returns
        -------
        list of dict
            One ``{"key", "value", "source", "doc"}`` per setting; ``source`` is ``scenario`` or
            ``default``.
        """
        rows = []
        for section in dataclasses.fields(self):
            value = getattr(self, section.name)
            if not dataclasses.is_dataclass(value):
                if section.name == "name":
                    rows.append(_row(section.name, value, section, self.given))
                continue
            for f in dataclasses.fields(value):
                key = f"{section.name}.{f.name}"
                rows.append(_row(key, getattr(value, f.name), f, self.given))
        return rows


def _row(key: str, value: Any, f: dataclasses.Field, given: frozenset[str]) -> dict[str, Any]:
    if isinstance(value, Path):
        value = str(value)
    return {
        "key": key,
        "value": value,
        "source": "scenario" if key in given else "default",
        "doc": f.metadata.get("doc", ""),
    }


def _type_name(tp: Any) -> str:
    return {
        float: "a number",
        int: "a whole number",
        str: "text",
        bool: "true or false",
        Path: "a file path",
        list: "a list",
        dict: "a mapping",
    }.get(tp, str(tp))


def _coerce(value: Any, tp: Any, key: str, meta: dict, base: Path) -> Any:
    """Check and convert one value against its declared type and checks."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        tp = args[0]
        origin = typing.get_origin(tp)
    base_tp = origin or tp
    ok = {
        float: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        bool: lambda v: isinstance(v, bool),
        str: lambda v: isinstance(v, str),
        Path: lambda v: isinstance(v, str) and v.strip() != "",
        list: lambda v: isinstance(v, list),
        dict: lambda v: isinstance(v, dict),
    }[base_tp](value)
    if not ok:
        raise ScenarioError(f"'{key}' must be {_type_name(base_tp)}, got {value!r}")
    if base_tp is float:
        value = float(value)
    if base_tp is Path:
        value = Path(value).expanduser()
        if not value.is_absolute():
            value = (base / value).resolve()
    if "choices" in meta and value not in meta["choices"]:
        allowed = ", ".join(map(str, meta["choices"]))
        raise ScenarioError(f"'{key}' is {value!r}; allowed: {allowed}")
    if "min" in meta and value < meta["min"]:
        raise ScenarioError(f"'{key}' is {value}; it must be at least {meta['min']}")
    if "max" in meta and value > meta["max"]:
        hint = " (°C expected, not kelvin)" if key.endswith("_c") else ""
        raise ScenarioError(f"'{key}' is {value}; it must be at most {meta['max']}{hint}")
    return value


def _unknown_key(key: str, prefix: str, known: list[str]) -> ScenarioError:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"; did you mean '{prefix}{close[0]}'?" if close else f"; known keys: {', '.join(known)}"
    return ScenarioError(f"unknown key '{prefix}{key}'{hint}")


def _build(cls: type, data: Any, prefix: str, base: Path, given: set[str]) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError(f"'{prefix.rstrip('.') or 'scenario'}' must be a mapping of keys to values, got {data!r}")
    internal = ("path", "given") if cls is Scenario else ()
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in internal}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            raise _unknown_key(str(key), prefix, sorted(fields))
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _build(tp, value, f"{prefix}{key}.", base, given)
        else:
            kwargs[key] = _coerce(value, tp, f"{prefix}{key}", fields[key].metadata, base)
            given.add(f"{prefix}{key}")
    return cls(**kwargs)


def _resolve_data_paths(scn: Scenario) -> Scenario:
    """Look up bundled tables given by bare name in the data folder."""

    def in_data(p: Path, key: str) -> Path:
        if key in scn.given:
            return p
        return settings.data_dir / p.name

    network = dataclasses.replace(scn.network, catalogue=in_data(scn.network.catalogue, "network.catalogue"))
    demand = dataclasses.replace(
        scn.demand,
        specific_demand_table=in_data(scn.demand.specific_demand_table, "demand.specific_demand_table"),
        building_types_table=in_data(scn.demand.building_types_table, "demand.building_types_table"),
        dhw_table=in_data(scn.demand.dhw_table, "demand.dhw_table"),
    )
    return dataclasses.replace(scn, network=network, demand=demand)


def _check_consistency(scn: Scenario, *, for_plan: bool = True) -> None:
    t = scn.temperatures
    if t.return_c >= t.supply_c:
        raise ScenarioError(
            f"'temperatures.return_c' ({t.return_c} °C) must be below 'temperatures.supply_c' ({t.supply_c} °C)"
        )
    if t.min_consumer_supply_c > t.supply_c:
        raise ScenarioError("'temperatures.min_consumer_supply_c' must not exceed 'temperatures.supply_c'")
    if t.ground_c >= t.return_c:
        raise ScenarioError("'temperatures.ground_c' must be below 'temperatures.return_c'")
    if scn.network.initial_pump_lift_bar > scn.network.max_pump_lift_bar:
        raise ScenarioError("'network.initial_pump_lift_bar' must not exceed 'network.max_pump_lift_bar'")
    if not for_plan:
        return
    s = scn.streets
    needs = {"pbf": "path", "xml": "path", "graphml": "path", "polygon": "path", "place": "place"}
    if s.source in needs and getattr(s, needs[s.source]) is None:
        raise ScenarioError(f"'streets.source: {s.source}' needs 'streets.{needs[s.source]}'")
    if s.source == "bbox" and scn.study_area.bbox is None:
        raise ScenarioError("'streets.source: bbox' needs 'study_area.bbox'")
    if scn.study_area.bbox is not None:
        b = scn.study_area.bbox
        if len(b) != 4 or not all(isinstance(v, int | float) for v in b) or b[0] >= b[2] or b[1] >= b[3]:
            raise ScenarioError(
                f"'study_area.bbox' must be [west, south, east, north] in degrees with west < east and "
                f"south < north, got {b}"
            )
    if scn.sources.path is None and not scn.sources.inline:
        raise ScenarioError("the scenario names no heat source: give 'sources.path' or 'sources.inline'")
    if scn.consumers.path is None and not scn.consumers.inline and not scn.consumers.osm_buildings:
        raise ScenarioError(
            "the scenario names no consumers: give 'consumers.path', 'consumers.inline' or "
            "'consumers.osm_buildings: true'"
        )
    if scn.consumers.osm_buildings and s.source != "pbf":
        raise ScenarioError("'consumers.osm_buildings' needs 'streets.source: pbf' (the buildings are read from it)")


def scenario_from_dict(
    data: dict[str, Any], *, base_dir: Path, path: Path | None = None, for_plan: bool = True
) -> Scenario:
    """Validate a scenario given as a mapping (the parsed YAML).

    Parameters
    ----------
    data
        The scenario's keys and values.
    base_dir
        Folder that relative paths are resolved against.
    path
        The scenario file, kept for the summary.
    for_plan
        Require what a plan needs (sources and consumers); ``False`` for ``heatmap demand``, which reads
        only the demand and density settings.

    Returns
    -------
    Scenario
    """
    given: set[str] = set()
    scn = _build(Scenario, data, "", base_dir, given)
    scn = dataclasses.replace(scn, path=path, given=frozenset(given))
    scn = _resolve_data_paths(scn)
    _check_consistency(scn, for_plan=for_plan)
    logger.info(
        "Scenario %r: %d settings given, %d defaults",
        scn.name,
        len(given),
        len(scn.assumptions()) - len(given),
    )
    return scn


def scenario_from_file(path: str | Path, *, for_plan: bool = True) -> Scenario:
    """Read and validate a scenario YAML file.

    Parameters
    ----------
    path
        The scenario file.
    for_plan
        As for :func:`scenario_from_dict`.

    Returns
    -------
    Scenario
    """
    path = Path(path)
    if not path.is_file():
        raise ScenarioError(f"scenario file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a scenario must be a mapping of keys to values")
    try:
        return scenario_from_dict(data, base_dir=path.resolve().parent, path=path.resolve(), for_plan=for_plan)
    except ScenarioError as exc:
        raise ScenarioError(f"{path}: {exc}") from exc
