"""Read and validate a scenario file (YAML) into typed, documented settings.

A scenario names the study area, the street source, the heat sources and consumers, and every assumption
of the plan: design temperatures, hydraulic limits, the pipe catalogue and cost model, the demand rule and
the economics. The settings are pydantic models (:class:`Scenario` and its sections): each field has its
unit in its name, its allowed range or choices and a description; ``heatmap schema`` prints the JSON Schema
(:func:`json_schema`) that editors use to check scenario files as they are typed. Every setting has a
documented default; the summary of a plan lists each setting that applies with its value and whether it
came from the scenario or from the default (:meth:`Scenario.assumptions`).

Validation names the key, its line in the file, the value and what is allowed; an unknown key gets the
closest known key suggested; a key given twice, NaN and infinity are refused. Relative paths are resolved
against the scenario file's folder; the bundled tables (pipe catalogue, demand tables) default to the
package's data folder.
"""

from __future__ import annotations

import difflib
import logging
import math
import re
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, ValidationError, ValidationInfo
from pydantic_core import ErrorDetails

from heatmap import settings
from heatmap._errors import InputDataError, ScenarioError
from heatmap.io.postgis import PostgisUrl

logger = logging.getLogger(__name__)

MAX_MESSAGES = 5
"""At most this many problems of one scenario are listed (then their count)."""

DISCOUNT_RATE = 0.03
"""Default real discount rate per year of every schema (plan, concept study, matching): the Hotmaps excess-heat
module's "Lifetime 30 a, 3 % discount rate"."""

LIFETIME_A = 30
"""Default economic lifetime in years of every schema, with :data:`DISCOUNT_RATE` (Hotmaps excess-heat module)."""

MAX_CAPACITY_KW = 1e7
"""Largest heat capacity of one source, heat pump or boiler taken (10 GW, a large power station); above it a value
is a typo (watts for kilowatts) and refused, in scenario files and input files alike."""

MIN_SUPPLY_LIFT_K = 5.0
"""Least difference between the network's supply and return temperatures (low-temperature networks run 20–30 K; at
0.1 K the flows, velocities and pump power a plan computed were absurd, the pumping negative)."""

MAX_PRICE_EUR_PER_MWH = 1e4
"""Largest price, cost or penalty per MWh taken (fuel, heat, O&M, wear); above it a value is a typo."""

MAX_COST_EUR_PER_KW = 1e5
"""Largest investment per kW taken (heat pumps, boilers, heat exchangers); above it a value is a typo."""

MAX_ENERGY_MWH = 1e8
"""Largest energy taken: a year's heat (10 GW for a year is 8.8e7 MWh) or a storage's content."""

ELECTRICITY_PRICE_RANGE_EUR_PER_MWH = (-500.0, 5000.0)
"""The day-ahead market's price limits (Nord Pool): an electricity price outside them is refused."""

OUTDOOR_RANGE_C = (-60.0, 45.0)
"""Outdoor temperatures taken (a heating curve's points)."""

RENAMED_KEYS: dict[tuple[str, str], str] = {("economics", "interest_rate"): "discount_rate"}
"""Old scenario keys still read: (section, old key) → its new name. Read with a warning naming the new key and
listed in :attr:`Scenario.renamed_keys`; giving both is an error."""


class SettingsModel(BaseModel):
    """A block of settings: unknown keys, wrong types, NaN and infinity are refused; frozen once read.

    The one base of every settings model: plan scenarios (here), concept studies
    (:mod:`heatmap.energy.energy_scenario`), matching (:mod:`heatmap.energy.matching`) and studies
    (:mod:`heatmap.study`). Strict: a number in quotes is text, not a number.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def _f(default: Any, doc: str | None, **checks: Any) -> Any:
    """Declare a setting with its default, its documentation and its checks (``ge``, ``le``, ...)."""
    if callable(default):
        return Field(default_factory=default, description=doc, **checks)
    return Field(default, description=doc, **checks)


def _in_data(name: str) -> Any:
    """Default of a bundled table: the file of that name in the package's data folder."""
    return lambda: settings.data_dir / name


def _to_path(value: Any, info: ValidationInfo) -> Any:
    """Turn a non-empty text (or a Path) into an absolute Path, a relative one against the scenario's folder.

    Every path-valued setting of every schema passes here: a path that is no file to read (a loop of symbolic
    links, a FIFO, a device, a socket, or a folder other than a FileGDB) is refused by the one path check
    (:func:`heatmap.io.paths.special_problem`), its message naming the key; a missing file is left to the reader.
    """
    if value is None:
        return None
    if isinstance(value, str) and value.strip():
        value = Path(value)
    if not isinstance(value, Path):
        raise ValueError(f"must be a file path, got {value!r}")
    from heatmap.io.paths import special_problem

    value = value.expanduser()
    base = (info.context or {}).get("base_dir")
    relative = not value.is_absolute() and base is not None
    if base is not None and relative:
        value = Path(base) / value
    problem = special_problem(value, folder_ok=value.suffix.lower() == ".gdb")
    if problem is not None:
        raise ValueError(f"{problem}; give a regular file")
    return value.resolve() if relative else value


def _to_id(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value
    raise ValueError(f"must be text or a whole number, got {value!r}")


def _check_bbox(value: Any) -> Any:
    if value is None:
        return None
    ok = (
        isinstance(value, list)
        and len(value) == 4
        and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    )
    if ok:
        w, s, e, n = (float(v) for v in value)
        ok = -180 <= w < e <= 180 and -90 <= s < n <= 90
    if not ok:
        raise ValueError(
            f"must be [west, south, east, north]: four finite numbers in degrees (EPSG:4326) with west < east and "
            f"south < north, got {value!r}"
        )
    return [float(v) for v in value]


def _check_crs(value: Any) -> Any:
    if value is None or not isinstance(value, str):
        return value  # the type check answers
    from heatmap.io.crs import crs_problem

    problem = crs_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _to_input(value: Any, info: ValidationInfo) -> Any:
    """Turn a ``postgresql://`` URL into a :class:`heatmap.io.postgis.PostgisUrl`, any other value into a path."""
    from heatmap.io.postgis import looks_like_url

    if looks_like_url(value):
        return PostgisUrl(value)  # a ValueError names what is wrong, without the password
    return _to_path(value, info)


FilePath = Annotated[Path, BeforeValidator(_to_path)]
InputPath = Annotated[Path | PostgisUrl, BeforeValidator(_to_input)]
"""A file of features, or a PostgreSQL database (``postgresql://user@host/db``) whose table ``layer`` names."""
Id = Annotated[str, BeforeValidator(_to_id)]
WorkingCrs = Annotated[str, BeforeValidator(_check_crs)]
"""A working CRS: known, projected and in metres (its scale at the study area: :func:`heatmap.io.crs.check_scale`)."""


class StudyArea(SettingsModel):
    """Where the plan is made."""

    bbox: Annotated[list[float] | None, BeforeValidator(_check_bbox)] = _f(
        None, "[west, south, east, north] in degrees (EPSG:4326); default: the extent of the street data"
    )
    crs: WorkingCrs | None = _f(
        None,
        "metric CRS for all geometry work, accepted where its scale error over the study area is below 1 %; "
        "default: EPSG:3067 in Finland, else the local UTM zone",
    )


NetworkType = Literal["driving", "driving+service", "walking", "cycling", "all"]
NETWORK_TYPE_DOC = "which OSM ways may carry pipes: public roads and service roads by default"
MAX_SERVICE_DOC = "longest service connection from a building or plant to the street; farther is unreachable"


class _StreetsBase(SettingsModel):
    """Keys every street source has."""

    max_service_length_m: float = _f(150.0, MAX_SERVICE_DOC, ge=1.0, le=5000.0)
    service_detour_m: float = _f(
        30.0,
        "how much longer a service pipe may be to join a street without crossing another building's footprint (by "
        "more than 0.5 m); where no such street is that close it runs through the building to the nearest (as "
        "through a basement) and the consumers layer says so (service_through_building); 0: the nearest street, "
        "wherever the pipe runs",
        ge=0.0,
        le=5000.0,
    )


class _OsmStreets(_StreetsBase):
    """Keys every OpenStreetMap street source has."""

    tunnels: Literal["exclude", "include"] = _f(
        "exclude",
        "OSM ways in tunnels (tunnel=yes, below ground; building passages are kept): exclude (no trench route) or "
        "include",
    )


class PbfStreets(_OsmStreets):
    """Streets from an OSM PBF extract (pyrosm), offline."""

    source: Literal["pbf"] = _f("pbf", "pbf: an OSM PBF extract read with pyrosm")
    path: FilePath = _f(..., "the .osm.pbf file")
    network_type: NetworkType = _f("driving+service", NETWORK_TYPE_DOC)


class XmlStreets(_OsmStreets):
    """Streets from an OSM XML (.osm) file (osmnx), offline; every highway way is a candidate."""

    source: Literal["xml"] = _f("xml", "xml: an .osm XML file read with osmnx")
    path: FilePath = _f(..., "the .osm file")


class GraphmlStreets(_OsmStreets):
    """Streets from a GraphML street graph (osmnx), offline; every edge is a candidate."""

    source: Literal["graphml"] = _f("graphml", "graphml: a street graph saved by osmnx")
    path: FilePath = _f(..., "the .graphml file")


class PlaceStreets(_OsmStreets):
    """Streets of a named place, downloaded live by osmnx (cached)."""

    source: Literal["place"] = _f("place", "place: a place name geocoded and downloaded by osmnx")
    place: str = _f(..., "place name geocoded by osmnx, e.g. 'Kokkola, Finland'", min_length=1)
    network_type: NetworkType = _f("driving+service", NETWORK_TYPE_DOC)


class BboxStreets(_OsmStreets):
    """Streets inside ``study_area.bbox``, downloaded live by osmnx (cached)."""

    source: Literal["bbox"] = _f("bbox", "bbox: the streets inside study_area.bbox, downloaded by osmnx")
    network_type: NetworkType = _f("driving+service", NETWORK_TYPE_DOC)


class PolygonStreets(_OsmStreets):
    """Streets inside the polygon(s) of a file, downloaded live by osmnx (cached)."""

    source: Literal["polygon"] = _f("polygon", "polygon: the streets inside a polygon file, downloaded by osmnx")
    path: FilePath = _f(..., "file with the study-area polygon(s) (GPKG, GeoJSON, SHP)")
    network_type: NetworkType = _f("driving+service", NETWORK_TYPE_DOC)


class LinesStreets(_StreetsBase):
    """Street centre lines or a utility's trench map from any line layer (GeoPackage, GeoJSON, Shapefile).

    The lines are split where they cross or touch, so every crossing is a junction (as drawn links are); each is
    priced as a street trench (``links.cost_factors.street``).
    """

    source: Literal["lines"] = _f("lines", "lines: a line layer of street centre lines or trenches (GPKG/GeoJSON/SHP)")
    path: FilePath = _f(..., "the line file")
    layer: str | None = _f(None, "layer of that file (a GeoPackage with several)")


class NoStreets(_StreetsBase):
    """No streets: the candidate routes are the ``links`` only (inside an industrial park)."""

    source: Literal["none"] = _f("none", "none: no streets; candidate routes come from 'links'")


STREET_SOURCES: dict[str, type[_StreetsBase]] = {
    "pbf": PbfStreets,
    "xml": XmlStreets,
    "graphml": GraphmlStreets,
    "place": PlaceStreets,
    "bbox": BboxStreets,
    "polygon": PolygonStreets,
    "lines": LinesStreets,
    "none": NoStreets,
}
"""The street sources by ``streets.source``; each has its own keys."""


def _default_street_source(value: Any) -> Any:
    if isinstance(value, dict) and "source" not in value:
        return {**value, "source": "pbf"}
    return value


Streets = Annotated[
    PbfStreets | XmlStreets | GraphmlStreets | PlaceStreets | BboxStreets | PolygonStreets | LinesStreets | NoStreets,
    Field(discriminator="source"),
    BeforeValidator(_default_street_source),
]
"""Where the candidate streets come from: one of :data:`STREET_SOURCES`, chosen by ``source`` (default pbf)."""


Surface = Literal["street", "open_terrain", "pipe_rack", "road_crossing", "rail_crossing"]
SourceRole = Literal["excess_heat", "backup"]


class SurfaceCostFactors(SettingsModel):
    """Trench cost per metre on each surface, relative to a street trench (the pipe catalogue's price)."""

    street: float = _f(1.0, "in a street (the catalogue's cost per metre)", gt=0, le=20)
    open_terrain: float = _f(
        0.6,
        "across open ground: EMB3Rs GIS module, digging in open terrain 200 + (500·d)^1.1 against 350 + (700·d)^1.1 "
        "€/m in a street, about 0.6 for DN50–DN300",
        gt=0,
        le=20,
    )
    pipe_rack: float = _f(
        1.0, "on a pipe rack above ground (estimate: rack share in place of the trench; no sourced figure)", gt=0, le=20
    )
    road_crossing: float = _f(2.0, "under a road, by jacking or boring (estimate; no sourced figure)", gt=0, le=20)
    rail_crossing: float = _f(3.0, "under a railway (estimate; no sourced figure)", gt=0, le=20)


class Links(SettingsModel):
    """Candidate links where there are no streets: lines drawn in QGIS and straight site-to-site lines."""

    path: FilePath | None = _f(
        None,
        "line layer of candidate routes drawn in QGIS (optional 'surface' column; 'status' candidate, forbidden or "
        "existing with its 'dn')",
    )
    layer: str | None = _f(None, "layer of that file")
    default_surface: Surface = _f("open_terrain", "surface of drawn lines without a 'surface' value")
    site_to_site: bool = _f(False, "add a straight link from every site (source, consumer) to its nearest sites")
    site_link_max_length_m: float = _f(500.0, "longest straight site-to-site link", gt=0, le=50_000)
    site_link_neighbours: int = _f(4, "straight links from each site to at most this many nearest sites", ge=1, le=50)
    site_link_surface: Surface = _f("open_terrain", "surface the straight site-to-site links cross")
    no_go_path: FilePath | None = _f(None, "polygons no pipe may cross (buildings, tanks, process areas)")
    no_go_layer: str | None = _f(None, "layer of that file")
    snap_m: float = _f(2.0, "link ends this close to each other or to a street node join it", ge=0, le=100)
    cost_factors: SurfaceCostFactors = _f(SurfaceCostFactors, SurfaceCostFactors.__doc__)

    @property
    def used(self) -> bool:
        """Whether the scenario gives any candidate links."""
        return self.path is not None or self.site_to_site


class SourceColumns(SettingsModel):
    """The file column that feeds each source field, where the file names it differently."""

    name: str = _f("name", "column with the source's name (optional)", min_length=1)
    capacity_kw: str = _f("capacity_kw", "column with the heat capacity, kW", min_length=1)
    t_supply_c: str = _f(
        "t_supply_c", "column with the supply temperature, °C (optional; default temperatures.supply_c)", min_length=1
    )
    company: str = _f("company", "column with the company owning the source (optional; default its id)", min_length=1)
    role: str = _f("role", "column with the source's role, excess_heat or backup (optional)", min_length=1)
    heat_price_eur_per_mwh: str = _f(
        "heat_price_eur_per_mwh",
        "column with the price the network pays for the source's heat, €/MWh (optional)",
        min_length=1,
    )


class ConsumerColumns(SettingsModel):
    """The file column that feeds each consumer field, where the file names it differently."""

    name: str = _f("name", "column with the consumer's name (optional)", min_length=1)
    building_type: str = _f("building_type", "column with the building type (optional)", min_length=1)
    annual_demand_mwh: str = _f("annual_demand_mwh", "column with the annual heat demand, MWh/a", min_length=1)
    peak_load_kw: str = _f(
        "peak_load_kw", "column with the peak load, kW (optional; default annual / full-load hours)", min_length=1
    )
    min_supply_c: str = _f(
        "min_supply_c",
        "column with the lowest acceptable supply temperature, °C (optional; default "
        "temperatures.min_consumer_supply_c)",
        min_length=1,
    )
    company: str = _f("company", "column with the company the consumer belongs to (optional)", min_length=1)
    t_feed_in_c: str = _f(
        "t_feed_in_c", "column with the temperature a prosumer feeds its heat in at, °C (optional)", min_length=1
    )
    connect: str = _f(
        "connect", "column with required, optional or excluded (optional; see the design section)", min_length=1
    )


class InlineSource(SettingsModel):
    """A heat source given in the scenario."""

    id: Id = _f(..., "unique id")
    name: str | None = _f(None, "name shown on the map")
    lon: float = _f(..., "longitude in degrees (EPSG:4326)", ge=-180, le=180)
    lat: float = _f(..., "latitude in degrees (EPSG:4326)", ge=-90, le=90)
    capacity_kw: float = _f(..., "heat capacity, kW", gt=0, le=1e7)
    t_supply_c: float | None = _f(None, "supply temperature, °C (default temperatures.supply_c)", ge=0, le=200)
    company: str | None = _f(None, "company owning the source (default its id); see operation")
    role: SourceRole | None = _f(None, "excess_heat (runs first) or backup (covers what is left); see operation")
    heat_price_eur_per_mwh: float | None = _f(
        None, "price the network pays for the source's heat (default operation.feed_in_price_eur_per_mwh)", ge=0, le=1e4
    )
    _line: int | None = PrivateAttr(None)


class InlineConsumer(SettingsModel):
    """A heat consumer given in the scenario."""

    id: Id = _f(..., "unique id")
    name: str | None = _f(None, "name shown on the map")
    building_type: str | None = _f(None, "building type (for the map)")
    lon: float = _f(..., "longitude in degrees (EPSG:4326)", ge=-180, le=180)
    lat: float = _f(..., "latitude in degrees (EPSG:4326)", ge=-90, le=90)
    annual_demand_mwh: float = _f(..., "annual heat demand, MWh/a", ge=0, le=1e7)
    peak_load_kw: float | None = _f(None, "peak load, kW (default annual / demand.full_load_hours_h)", ge=0, le=1e6)
    min_supply_c: float | None = _f(
        None, "lowest acceptable supply temperature, °C (default temperatures.min_consumer_supply_c)", ge=0, le=200
    )
    company: str | None = _f(None, "company the consumer belongs to (default its id); see operation")
    connect: Literal["required", "optional", "excluded"] | None = _f(
        None, "required, optional or excluded (default: by design.optional_below_mwh_per_a)"
    )
    t_feed_in_c: float | None = _f(
        None,
        "temperature a prosumer feeds its heat in at, °C (needed where operation.site_profiles has it sell)",
        ge=0,
        le=200,
    )
    _line: int | None = PrivateAttr(None)


class Sources(SettingsModel):
    """Heat sources: a file (GPKG, GeoJSON, SHP, CSV with lon/lat) or inline rows."""

    path: InputPath | None = _f(
        None,
        "file with id, capacity_kw, t_supply_c (and name) per source, or a PostgreSQL database "
        "(postgresql://user@host/db) whose table 'layer' names (schema.name)",
    )
    inline: list[InlineSource] = _f(list, "rows with id, name, lon, lat, capacity_kw, t_supply_c")
    id_column: str = _f("id", "column holding each source's unique id", min_length=1)
    layer: str | None = _f(None, "layer to read from a multi-layer file (GeoPackage), or the PostGIS table")
    columns: SourceColumns = _f(SourceColumns, "file columns feeding each field where they are named differently")


class Consumers(SettingsModel):
    """Heat consumers: a file of points or footprints, inline rows, or the buildings of the OSM street file."""

    path: InputPath | None = _f(
        None,
        "file with id and annual_demand_mwh (peak_load_kw optional) per consumer, or a PostgreSQL database "
        "(postgresql://user@host/db) whose table 'layer' names (schema.name)",
    )
    inline: list[InlineConsumer] = _f(
        list, "rows with id, lon, lat, annual_demand_mwh (peak_load_kw, min_supply_c optional)"
    )
    osm_buildings: bool = _f(False, "take the buildings of the streets' OSM PBF as consumers")
    id_column: str = _f("id", "column holding each consumer's unique id", min_length=1)
    layer: str | None = _f(None, "layer to read from a multi-layer file (GeoPackage), or the PostGIS table")
    columns: ConsumerColumns = _f(ConsumerColumns, "file columns feeding each field where they are named differently")
    min_annual_demand_mwh: float = _f(
        0.0, "consumers with less annual demand are left out of the plan (reported)", ge=0.0, le=1e6
    )
    min_peak_load_kw: float = _f(
        1.0,
        "consumers with a lower peak load are left out of the plan with the reason 'below_min_peak_load' (a "
        "consumer drawing almost nothing cools below the return temperature and cannot be simulated)",
        ge=0.0,
        le=1e5,
    )


class SupplyCurve(SettingsModel):
    """The network's heating curve: the supply temperature by outdoor temperature, linear between two points.

    In every hour of the operation's year the water leaves every source (and the pressure-holding pump) at
    ``curve(t_out)`` (:func:`heatmap.demand.climate.supply_temperature_c`, the curve of the concept study's
    ``network.supply``); the design case runs at ``max_c``. A source whose own ``t_supply_c`` is below the hour's
    temperature preheats: its own heat lifts the water from the return temperature to its ``t_supply_c``, a
    booster at the source lifts it on to the network's temperature (the booster is not capacity-limited: the
    source's ``capacity_kw`` limits its own heat). Needs the ``operation`` section (the outdoor temperature).
    """

    max_c: float = _f(
        ...,
        "supply temperature, °C, at and below outdoor_at_max_c (the coldest hours; the design case runs at it)",
        ge=20,
        le=150,
    )
    min_c: float = _f(..., "supply temperature, °C, at and above outdoor_at_min_c (the warmest hours)", ge=20, le=150)
    outdoor_at_max_c: float = _f(
        ...,
        "outdoor temperature, °C, at and below which the supply is max_c (often the design outdoor temperature)",
        ge=-70,
        le=50,
    )
    outdoor_at_min_c: float = _f(..., "outdoor temperature, °C, at and above which the supply is min_c", ge=-70, le=50)

    def at(self, outdoor_c: Any) -> Any:
        """Return the supply temperature (°C) at the outdoor temperatures ``outdoor_c`` (°C)."""
        from heatmap.demand.climate import supply_temperature_c

        return supply_temperature_c(
            outdoor_c,
            max_c=self.max_c,
            min_c=self.min_c,
            outdoor_at_max_c=self.outdoor_at_max_c,
            outdoor_at_min_c=self.outdoor_at_min_c,
        )


class Temperatures(SettingsModel):
    """Design temperatures in °C."""

    supply_c: float = _f(
        80.0,
        "supply temperature of the sources that give no t_supply_c, at design load (each source's own drives the "
        "sizing and simulation of its network; a source colder than the consumers need is refused)",
        ge=20,
        le=150,
    )
    return_c: float = _f(45.0, "return temperature leaving each consumer", ge=5, le=100)
    ground_c: float = _f(8.0, "undisturbed ground temperature around buried pipes", ge=-20, le=40)
    min_consumer_supply_c: float = _f(
        70.0, "lowest supply temperature acceptable at a consumer without its own min_supply_c", ge=5, le=150
    )
    supply_curve: SupplyCurve | None = _f(
        None,
        "sliding supply temperature of the network by outdoor temperature in every hour of the operation's year "
        "(optional; see SupplyCurve); without it every source supplies its own t_supply_c in every hour",
    )


class Limits(SettingsModel):
    """Hydraulic design limits checked after every simulation."""

    max_velocity_m_per_s: float = _f(
        1.5, "highest flow velocity in any pipe (industry: < 1 m/s in service pipes, warn > 1.5)", ge=0.1, le=5
    )
    max_pressure_gradient_pa_per_m: float = _f(
        250.0, "highest friction pressure gradient (topotherm default 250 Pa/m, range 70–350)", ge=10, le=2000
    )
    min_consumer_dp_bar: float = _f(0.5, "lowest supply-return differential pressure at any consumer", ge=0.0, le=20)
    max_resize_rounds: int = _f(5, "simulation–resize rounds before the remaining violations are reported", ge=0, le=50)
    energy_balance_tolerance: float = _f(
        1e-3,
        "largest relative residual of the simulated energy balance (source heat − consumer heat − losses) "
        "accepted as converged",
        gt=0,
        le=0.1,
    )


class Network(SettingsModel):
    """Pipe catalogue, sizing rule and hydraulic model settings."""

    catalogue: FilePath = _f(
        _in_data("pipes_en253.csv"), "EN 253 pipe catalogue (in the data folder unless a path is given)"
    )
    insulation_series: Literal[1, 2, 3] = _f(2, "EN 253 insulation series 1, 2 or 3")
    cost_column: str = _f(
        "cost_eur_per_m",
        "catalogue column with the trench cost per metre of route (supply + return pair)",
        min_length=1,
    )
    roughness_mm: float = _f(0.045, "pipe wall roughness (new steel)", ge=0.0, le=5.0)
    simultaneity: Literal["winter", "thermos", "none"] = _f(
        "winter", "simultaneity factor on peak loads: winter (Winter et al. 2001), thermos (0.62 + 0.38/n) or none"
    )
    sizing_margin: float = _f(
        0.03,
        "share below the velocity and pressure-gradient limits that sizing aims for, to cover what the sizing "
        "estimate leaves out (water properties varying with temperature); resize rounds correct the rest",
        ge=0.0,
        le=0.5,
    )
    local_loss_factor: float = _f(
        1.1,
        "factor on the friction pressure losses that adds the local losses of fittings, bends and valves "
        "(1.1: 10 % on top); the pump lift before simulating and every consumer's differential-pressure check "
        "take it in (the simulation itself models straight pipes)",
        ge=1.0,
        le=2.0,
    )
    p_return_bar: float = _f(
        2.0, "static pressure the pressure-holding source keeps at its pump inlet (return side)", ge=0.5, le=40
    )
    processes: int = _f(
        2,
        "pandapipes networks (one per source) solved at once, each batch in a process forked from the plan's, in the "
        "design case and every hour of operation (designs of 5,000 pipes or more, on systems that fork; the same "
        "results as one after the other); 1: one after the other",
        ge=1,
        le=64,
    )
    initial_pump_lift_bar: float = _f(
        1.5,
        "lowest pump lift set before the first simulation (the lift is estimated from the path pressure drops); the "
        "final lift is trimmed to what the critical consumer needs",
        ge=0.1,
        le=100,
    )
    max_pump_lift_bar: float = _f(10.0, "highest pump lift the resizing may set", ge=0.1, le=100)
    supply_areas: Literal["separate", "shared"] = _f(
        "separate",
        "separate: each source feeds the consumers nearest to it along the routes through a network of its own; "
        "shared: the sources of a connected piece of the routes feed one network together (the largest holds the "
        "pressure, the others feed in at their own temperature; at the design peak every source runs at the same "
        "share of its capacity)",
    )
    pump_lift_margin_bar: float = _f(
        0.05, "pump lift kept above what the critical consumer's minimum differential pressure needs", ge=0.0, le=5.0
    )


class HourlyColumn(SettingsModel):
    """A column of a CSV file with a ``time`` column and one row per hour of the year."""

    csv: FilePath = _f(..., "CSV file (relative to the scenario file)")
    column: str = _f(..., "column holding the values", min_length=1)


class Operation(SettingsModel):
    """Operating hours: the designed network at the hours that matter of a year, and who buys and sells heat.

    Each consumer's hourly load spreads its annual demand by heating degree-hours (space heat) plus a flat hot-water
    share; a site named in ``site_profiles`` follows its own hourly net heat instead (+ buys, − sells: a prosumer).
    Every hour the sources cover the consumers' load plus the network's losses less the prosumers' sales:
    excess-heat sources first, in proportion to their capacity, backup sources for what is left. The pipes are
    sized for these hours as well as the design case (the year's highest load, the summer's least, the prosumers'
    largest sale, each own-profile site's largest draw and sale). The designed network is simulated at the hour
    of highest load, the summer hour of least load (when excess heat alone runs, if it can) and the hour prosumers
    sell most, with every check of the design case, the pumps following the load and substations bypassing where
    the flow is too small to keep them warm; the year's heat bought and sold per company is priced at the prices
    below, the operator being the counterparty of every sale.
    """

    year: int = _f(..., "year of the hourly series (8760 hours; 29 February dropped)", ge=1900, le=2200)
    outdoor_temperature: HourlyColumn = _f(..., "hourly outdoor temperature, °C")
    base_temperature_c: float = _f(17.0, "base temperature of the heating degree-hours (FMI: 17 °C)", ge=5, le=25)
    hot_water_share: float = _f(
        0.2, "share of each consumer's annual demand drawn as a flat hot-water load (estimate)", ge=0.0, le=1.0
    )
    site_profiles: FilePath | None = _f(
        None,
        "CSV with a time column and one column per consumer id: its hourly net heat in kW (+ buys, − sells); sites "
        "not in it follow the degree-hour profile",
    )
    min_pressure_source_share: float = _f(
        0.2,
        "share of each hour's load plus losses the sources keep supplying: the source holding the pressure must "
        "keep a forward flow through its pump, so prosumers' sales beyond the rest are curtailed (modelling rule)",
        ge=0.01,
        le=1.0,
    )
    bypass: bool = _f(
        True,
        "substations hold their supply temperature with a bypass (thermostatic bypass valves, as district-heating "
        "networks keep their ends warm in summer): in an hour whose flow is too small, a consumer receiving water "
        "colder than its minimum passes more flow and returns warmer; false: such a consumer is a violation",
    )
    bypass_margin_k: float = _f(1.0, "supply temperature a bypassing consumer aims above its minimum", ge=0.0, le=20.0)
    summer_months: list[Annotated[int, Field(ge=1, le=12)]] = _f(
        lambda: [6, 7, 8], "months searched for the summer hour of least load", min_length=1
    )
    heat_price_eur_per_mwh: float = _f(..., "price a consumer pays the operator per MWh of heat", ge=0, le=1e4)
    feed_in_price_eur_per_mwh: float = _f(
        ...,
        "price the operator pays per MWh fed in, to prosumers and to sources without their own heat_price_eur_per_mwh",
        ge=0,
        le=1e4,
    )
    operator: str = _f(
        "network operator",
        "company running the network: it buys every MWh fed in and sells every MWh delivered (its own sources and "
        "sites trade with no money)",
        min_length=1,
    )
    own_sites_heat_value_eur_per_mwh: float | None = _f(
        None,
        "value of the heat delivered to the operator's own sites (€/MWh), e.g. the production cost it avoids: the "
        "plan's revenue counts their heat at it; not given: it is valued at 0 and the summary says so",
        ge=0,
        le=1e4,
    )


class Demand(SettingsModel):
    """First demand estimate for buildings without metered demand (footprint × floors × specific demand)."""

    specific_demand_table: FilePath = _f(
        _in_data("specific_heat_demand_fi.csv"), "space-heat kWh per floor m² and year by era × type"
    )
    building_types_table: FilePath = _f(
        _in_data("osm_building_types.csv"), "OSM building tag → demand type (or unheated)"
    )
    dhw_table: FilePath = _f(_in_data("dhw_fi.csv"), "domestic hot water kWh per floor m² and year by type")
    degree_days: float = _f(
        4233.0, "local heating degree days (S17); the table's reference year has 4233", ge=100, le=12000
    )
    reference_degree_days: float = _f(4233.0, "degree days of the specific-demand table", ge=100, le=12000)
    default_floors: float = _f(
        4.0,
        "floors of types missing in demand.floors_table where OSM has neither building:levels nor height",
        ge=1,
        le=200,
    )
    floor_height_m: float = _f(3.2, "storey height used to derive floors from height", ge=2, le=20)
    default_type: str = _f(
        "apartment_block",
        "demand type of buildings whose tag does not say it, where demand.infer_type is false",
    )
    default_era: str = _f("1970s", "construction era where start_date is missing")
    full_load_hours_h: float = _f(
        2000.0, "peak load = annual demand / full-load hours (Finnish DH: ~2,000 h)", ge=100, le=8760
    )
    peak_method: Literal["full_load_hours", "design_temperature"] = _f(
        "full_load_hours",
        "peak load rule: full_load_hours (annual / full-load hours) or design_temperature (degree-day method: "
        "space heat at the design outdoor temperature + average hot water)",
    )
    base_temperature_c: float = _f(17.0, "base temperature of the degree days (FMI S17: 17 °C)", ge=5, le=25)
    design_temperature_c: float = _f(
        -29.0,
        "design outdoor temperature (proxy: Kauhava, ASHRAE 99.6 % = −29.0 °C, the nearest to Kokkola)",
        ge=-60,
        le=10,
    )
    metered_column: str | None = _f(
        None, "column of the buildings holding metered annual demand (MWh/a); where given it is kept"
    )
    infer_type: bool = _f(
        True,
        "type buildings whose tag does not say it (building=yes, residential, house, building) from the land use "
        "around them, their footprint and floors (heatmap.demand.buildings); false: demand.default_type for them all",
    )
    landuse_types_table: FilePath = _f(
        _in_data("osm_landuse_types.csv"), "OSM landuse around a building → demand type (or residential)"
    )
    floors_table: FilePath = _f(
        _in_data("default_floors_fi.csv"),
        "floors by demand type where OSM has neither building:levels nor height (demand.default_floors for types "
        "not in it)",
    )
    floors_by_type: dict[str, Annotated[float, Field(ge=1, le=200)]] = _f(
        dict,
        "floors by demand type overriding demand.floors_table where OSM has neither building:levels nor height, "
        "e.g. {apartment_block: 5, office: 5} in a city centre",
    )
    statistics_table: FilePath = _f(
        _in_data("demand_statistics_fi.csv"),
        "published Finnish figures per type (Statistics Finland) the estimate is compared with in the summary",
    )
    detached_max_footprint_m2: float = _f(
        250.0,
        "dwellings of unknown kind with a footprint up to this are detached houses (estimate: Finnish detached "
        "houses average 145 floor m² on 1–2 floors, Statistics Finland 2020)",
        ge=0.0,
        le=1e6,
    )
    row_min_elongation: float = _f(
        2.5,
        "larger dwellings whose footprint's oriented rectangle is at least this many times longer than wide are row "
        "houses (estimate, not sourced)",
        ge=1.0,
        le=1000,
    )
    row_max_footprint_m2: float = _f(
        1000.0,
        "largest footprint of a row house; larger dwellings are apartment blocks (estimate: Finnish row houses "
        "average 433 floor m², Statistics Finland 2020)",
        ge=0.0,
        le=1e6,
    )
    apartment_min_floors: float = _f(
        3.0,
        "dwellings of unknown kind with at least this many floors (building:levels or height) are apartment blocks "
        "(Statistics Finland 2010: 69 % of blocks of flats have 3–9 floors, 95 % of all residential buildings 1–2)",
        ge=1.0,
        le=1000,
    )
    min_heated_footprint_m2: float = _f(
        30.0,
        "buildings of inferred type with a smaller footprint are outbuildings (saunas, sheds) and left out, unless "
        "metered (estimate, not sourced; Statistics Finland's building stock leaves out saunas and outbuildings)",
        ge=0.0,
        le=1e6,
    )
    nested_buildings: Literal["leave_out", "count"] = _f(
        "leave_out",
        "a building whose footprint lies inside another building's (OSM maps some twice: a church's dome and tower "
        "inside the church, a shop inside its department store): leave_out counts its floor area once, in the "
        "building around it, and lists it as left out; count counts both (only for OSM PBF buildings, whose reader "
        "finds them; a metered building is kept either way)",
    )
    max_floors: float = _f(
        50.0,
        "building:levels (or height / floor_height_m) above this is implausible, ignored and reported; the type's "
        "default floors apply (estimate: above Finland's tallest buildings)",
        ge=1.0,
        le=1000,
    )


class Economics(SettingsModel):
    """Economic assumptions."""

    discount_rate: float = _f(
        DISCOUNT_RATE,
        "real discount rate per year, for the annuity of the capex and the NPV (the old key interest_rate is read "
        "as this, with a warning); default 3 %, the Hotmaps excess-heat module's (Lifetime 30 a, 3 % discount rate)",
        ge=0.0,
        le=0.5,
    )
    lifetime_a: int = _f(
        LIFETIME_A,
        "economic lifetime of the network in years; default 30 a, the Hotmaps excess-heat module's (Lifetime 30 a, "
        "3 % discount rate)",
        ge=1,
        le=100,
    )
    heat_price_eur_per_mwh: float = _f(
        80.0, "price consumers pay for heat (Statistics Finland: 76–82 €/MWh incl. VAT)", ge=0, le=10_000
    )
    heat_cost_eur_per_mwh: float = _f(
        10.0, "cost of the (excess) heat bought at the source(s), losses included", ge=0, le=10_000
    )
    electricity_price_eur_per_mwh: float = _f(
        60.0, "electricity price for pumping (Finland 2018–22: 44–154 €/MWh)", ge=0, le=10_000
    )
    om_fraction_per_a: float = _f(0.01, "operation and maintenance per year as a share of capex", ge=0, le=1)
    pump_efficiency: float = _f(0.7, "wire-to-water efficiency of the circulation pumps", ge=0.05, le=1)
    pump_full_load_hours_h: float = _f(
        2000.0, "annual pumping energy = design pumping power × these hours", ge=0, le=8760
    )


class Design(SettingsModel):
    """Economic network design: which consumers to connect and which candidate routes to build.

    See :mod:`heatmap.network.design`.

    Each consumer is ``required`` (connected where it can be reached), ``optional`` (connected where the margin on
    its heat over the lifetime pays for what its connection costs) or ``excluded`` (left out): the consumers' file
    column ``connect``, else ``optional`` below ``optional_below_mwh_per_a`` and ``required`` above. The route is the
    least-cost forest of candidate edges, each source feeding a tree of its own: pipe cost grows with the load a pipe
    carries (``cost``), so the design weighs trench length against carried load as sizing will.
    """

    method: Literal["auto", "optimal", "heuristic", "steiner"] = _f(
        "auto",
        "heuristic: slope scaling from a Steiner and a shortest-path start, with the LP relaxation's bound (seconds); "
        "optimal: the heuristic, then the fixed-charge network-design MILP (HiGHS) warm-started from it until the gap "
        "to its proven bound is within mip_gap or time_limit_s has passed; steiner: the minimum-length Steiner tree "
        "joining every reachable consumer that is not excluded (no economic choice); auto: heuristic, or steiner for "
        "network.supply_areas: shared (the economic design builds a network per source)",
    )
    cost: Literal["catalogue", "linear"] = _f(
        "catalogue",
        "catalogue: the pipe catalogue's cost by DN up to the load each DN carries within the limits, plus its heat "
        "losses and pumping (at the DN's capacity; economics' pump settings and electricity price) over the lifetime, "
        "as a piecewise-linear curve of cost_segments segments under the steps; linear: "
        "trench_eur_per_m + pipe_eur_per_kw_m × carried load",
    )
    cost_segments: int = _f(
        4, "segments of the catalogue's cost curve (one per DN: the steps themselves; more is slower)", ge=1, le=30
    )
    trench_eur_per_m: float | None = _f(
        None, "cost: linear: cost per metre of trench, whatever it carries (needed then)", ge=0, le=1e6
    )
    pipe_eur_per_kw_m: float | None = _f(
        None, "cost: linear: cost per kW of carried design load and metre of route (needed then)", ge=0, le=1e4
    )
    heat_margin_eur_per_mwh: float | None = _f(
        None,
        "what a MWh delivered to an optional consumer earns the network over the heat it costs (default "
        "economics.heat_price_eur_per_mwh − economics.heat_cost_eur_per_mwh); an optional consumer's prize is its "
        "annual demand × this margin over the lifetime (÷ the annuity factor)",
        ge=-1e4,
        le=1e4,
    )
    optional_below_mwh_per_a: float = _f(
        0.0, "consumers without a 'connect' value and with less annual demand are optional", ge=0.0, le=1e7
    )
    time_limit_s: float = _f(
        20.0, "optimal: the MILP's wall-clock limit (the best plan and its bound are kept)", gt=0, le=86400
    )
    mip_gap: float = _f(0.005, "optimal: the relative gap to the proven bound at which the MILP stops", ge=0.0, le=1.0)
    local_search_moves: int = _f(
        2000,
        "heuristic: moves of a subtree of the best tree to a cheaper place, joined there at any of its nodes, tried "
        "at most (a local search, in a seeded order: the same scenario gives the same plan); as many again in each "
        "perturbation round; above 10,000 reachable consumers fewer in proportion (each move made prices the whole "
        "tree again: 400 at 50,000)",
        ge=0,
        le=10_000_000,
    )
    perturbations: int = _f(
        4,
        "heuristic: rounds of an iterated local search on the best tree (its per-kW slopes perturbed at random, "
        "seeded; every consumer routed again under them, then the local search), on problems of at most "
        "perturbations_max_consumers reachable consumers; each round costs about one local search (Helsinki's "
        "473 buildings: 0.4 s; a 10,000-building town: 3 s); the cheapest trees they find are the regions' "
        "searches' starts",
        ge=0,
        le=10_000,
    )
    perturbations_max_consumers: int = _f(
        2000,
        "heuristic: the perturbation rounds run only on problems of at most this many reachable consumers",
        ge=0,
        le=100_000_000,
    )
    regions: int = _f(
        30,
        "heuristic: then regions of the best tree re-solved exactly by the MILP in HiGHS, the rest of the tree kept "
        "(a large-neighbourhood search; each region the region_nodes nodes nearest a junction; shared among "
        "region_searches searches, each taking every junction once in its own seeded order; the same scenario gives "
        "the same plan); 0: none",
        ge=0,
        le=100_000,
    )
    region_nodes: int = _f(
        25,
        "heuristic: nodes in each region (of the problem reduced: chains of street segments one edge); larger regions "
        "change more and take longer",
        ge=2,
        le=100_000,
    )
    region_searches: int = _f(
        3,
        "heuristic: searches the regions are shared among, each from one of the cheapest trees found before (the "
        "cheapest again where there are fewer); they end in different plans, which are then merged (where two "
        "differ, the MILP solved on the pipes either builds there)",
        ge=1,
        le=1_000,
    )
    bound_time_limit_s: float = _f(
        30.0,
        "heuristic: time for its lower bound, the LP relaxation (HiGHS, computed beside the plan's sizing and "
        "simulation): with the line under each edge's cost curve first, then, where that took at most a quarter of "
        "this time, with the curve itself in the time left (at 10,000 consumers with the catalogue curve only the "
        "line's finishes here, in about 10 s); where neither finishes the plan's gap is unknown",
        gt=0,
        le=86400,
    )
    bound_mip_time_s: float = _f(
        0.0,
        "heuristic: of bound_time_limit_s, time for a branch and cut (mip_solver) on the design MILP after the LP "
        "relaxation: its presolve and root cuts raise the bound (bundled Helsinki plan: gap 11.2 % → 4.8 % with 5 s "
        "of SCIP, 6.1 % with HiGHS, medians of 3 runs: 4.8–7.2 % and 5.8–6.9 %; the bound 5.6–6.4 s, not 0.8 s), "
        "but how far it gets depends on the machine, so the summary's bound and gap then differ from run to run; 0: "
        "the LP relaxation's bound only, the same on every run",
        ge=0,
        le=86400,
    )
    mip_solver: Literal["scip", "highs"] = _f(
        "scip",
        "the branch and cut on the design MILP (optimal, after HiGHS's LP with cut-set inequalities; the heuristic's "
        "bound_mip_time_s): scip (SCIP, single-threaded) or highs. SCIP's flow-cover and c-MIR cuts close more of "
        "the gap on this model: bundled Helsinki plan, 20 s: gap 1.6 % (HiGHS 3.8 %); Helsinki benchmark with the "
        "catalogue curve, 60 s: 1.2 % (HiGHS 2.8 %); its linear-cost instance proven optimal in 1.1 s (HiGHS 5 s); "
        "synthetic towns, linear cost: 1,000 consumers proven in 5 s (HiGHS 41 s), 3,000 in 60 s gap 0.06 % (HiGHS "
        "0.13 %); at 10,000 HiGHS did better (120 s: gap 0.18 %, SCIP 0.47 %)",
    )
    bound_max_edges: int = _f(
        50_000,
        "heuristic: its bound is computed for candidate graphs of at most this many edges (a 10,000-consumer town "
        "has about 22,000; at 112,000, a 50,000-consumer town, the LP does not finish in bound_time_limit_s here and "
        "holds 350 MB); above it the plan's gap is not computed and the summary says why",
        ge=0,
        le=100_000_000,
    )
    feedback: Literal["failed_checks", "always"] = _f(
        "failed_checks",
        "when the network is designed again after sizing and the pandapipes design case: failed_checks, while the "
        "plan fails a check another route may pass (consumer differential pressure or supply temperature, velocity, "
        "pressure gradient; the edges towards what failed re-priced by failed_check_penalty); always, also to "
        "re-price every edge by what it cost as built (its sized DN's capex and losses) over what the design priced "
        "(on the bundled Helsinki plan, 3 rounds more: the third 27 k€ cheaper as built, 24.104 M€ against 24.131, the "
        "others 24.407 and 24.303 M€, one run); the round with "
        "the fewest failed checks, then the least cost as built, is kept",
    )
    feedback_rounds: int = _f(
        2, "designs after the first at most (0: none); each is one more routing, sizing and design case", ge=0, le=20
    )
    failed_check_penalty: float = _f(
        1.0,
        "on a re-design, the cost of each edge on the path to a consumer or pipe that failed a check rises by this "
        "share (1: doubled), so the design routes it another way where there is one",
        ge=0.0,
        le=100.0,
    )


class Density(SettingsModel):
    """Heat-density raster and district-heating potential areas (Hotmaps / sEEnergies method)."""

    cell_size_m: float = _f(
        100.0, "cell size of the heat-density raster (Hotmaps heat density map: 100 m, one hectare)", ge=1.0, le=10_000
    )
    min_cell_density_mwh_per_ha: float = _f(
        333.0,
        "lowest heat density of a cell in a potential DH area, MWh/(ha·a) (Hotmaps DH potential module default)",
        ge=0.0,
        le=1e6,
    )
    min_area_demand_gwh_per_a: float = _f(
        30.0, "lowest annual demand of a potential DH area (Hotmaps DH potential module default)", ge=0.0, le=1e6
    )
    cost_c1_eur_per_m: float = _f(
        439.0,
        "distribution-grid cost per trench metre, fixed part c1 (sEEnergies / Hotmaps, Finland; EU default 212)",
        ge=0.0,
        le=1e6,
    )
    cost_c2_eur_per_m2: float = _f(
        4073.0,
        "distribution-grid cost per trench metre and metre of average pipe diameter, c2 (sEEnergies / Hotmaps, "
        "Finland; EU default 4464)",
        ge=0.0,
        le=1e7,
    )


class Scenario(SettingsModel):
    """A heatmap scenario: every path absolute, every setting typed, documented and checked."""

    model_config = ConfigDict(title="heatmap scenario")

    name: str = _f("unnamed scenario", "title shown on the map and in the summary")
    study_area: StudyArea = _f(StudyArea, StudyArea.__doc__)
    streets: Streets | None = _f(None, "where the candidate streets come from (needed by heatmap plan)")
    links: Links = _f(Links, Links.__doc__)
    sources: Sources = _f(Sources, Sources.__doc__)
    consumers: Consumers = _f(Consumers, Consumers.__doc__)
    temperatures: Temperatures = _f(Temperatures, Temperatures.__doc__)
    limits: Limits = _f(Limits, Limits.__doc__)
    network: Network = _f(Network, Network.__doc__)
    demand: Demand = _f(Demand, Demand.__doc__)
    economics: Economics = _f(Economics, Economics.__doc__)
    design: Design = _f(Design, Design.__doc__)
    density: Density = _f(Density, Density.__doc__)
    operation: Operation | None = _f(None, "operating hours and heat trade over a year (optional; see Operation)")
    _path: Path | None = PrivateAttr(None)
    _default_street_source: bool = PrivateAttr(False)
    _renamed: tuple[dict[str, Any], ...] = PrivateAttr(())

    @property
    def renamed_keys(self) -> list[dict[str, Any]]:
        """The old keys the scenario gave (:data:`RENAMED_KEYS`): ``{"old", "new", "line", "message"}`` each."""
        return [dict(r) for r in self._renamed]

    @property
    def path(self) -> Path | None:
        """The scenario file, if it was read from one."""
        return self._path

    @property
    def design_supply_c(self) -> float:
        """The supply temperature of the design case: the supply curve's highest where it applies, else supply_c."""
        t = self.temperatures
        return t.supply_curve.max_c if t.supply_curve is not None and self.operation is not None else t.supply_c

    @property
    def given(self) -> frozenset[str]:
        """The keys (``section.key``) the scenario gave; every other setting is at its default."""
        keys: set[str] = set()
        for name in self.model_fields_set:
            value = getattr(self, name)
            if isinstance(value, BaseModel):
                keys |= {f"{name}.{k}" for k in _given(value)}
            else:
                keys.add(name)
        if self._default_street_source:
            keys.discard("streets.source")
        return frozenset(keys)

    def assumptions(self) -> list[dict[str, Any]]:
        """List every setting that applies with its value, documentation and origin.

        Settings that do not apply are left out: the keys of other street sources (no
        ``streets.network_type`` for a GraphML street source), the file keys of sources or consumers given
        inline or as OSM buildings.

        Returns
        -------
        list of dict
            One ``{"key", "value", "source", "doc"}`` per setting; ``source`` is ``scenario`` or
            ``default``.
        """
        given = self.given
        rows = []
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            if isinstance(value, BaseModel):
                for key, v, doc in _flatten(value, name):
                    if _applies(self, key):
                        rows.append(_row(key, v, doc, given))
            elif value is not None or name not in ("streets", "operation"):
                rows.append(_row(name, value, info.description or "", given))
        return rows


def _given(model: BaseModel) -> set[str]:
    keys = set()
    for name in model.model_fields_set:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            keys |= {f"{name}.{k}" for k in _given(value)}
        keys.add(name)
    return keys


def _flatten(model: BaseModel, prefix: str) -> typing.Iterator[tuple[str, Any, str]]:
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            yield from _flatten(value, f"{prefix}.{name}")
        elif isinstance(value, list):
            rows = [v.model_dump(exclude_none=True) if isinstance(v, BaseModel) else v for v in value]
            yield f"{prefix}.{name}", rows, info.description or ""
        else:
            yield f"{prefix}.{name}", value, info.description or ""


def _applies(scn: Scenario, key: str) -> bool:
    """Whether a setting changes anything in this scenario (the file keys of inputs given otherwise do not)."""
    section, _, rest = key.partition(".")
    if section == "links":
        return scn.links.used
    if section not in ("sources", "consumers"):
        return True
    part = getattr(scn, section)
    field = rest.split(".")[0]
    if field == "inline":
        return bool(part.inline)
    if field in ("path", "id_column", "layer", "columns"):
        return part.path is not None
    return True


def _row(key: str, value: Any, doc: str, given: frozenset[str]) -> dict[str, Any]:
    if isinstance(value, Path | PostgisUrl):
        value = str(value)  # a database URL without its password
    return {"key": key, "value": value, "source": "scenario" if key in given else "default", "doc": doc}


# ----------------------------------------------------------------------------------------------- messages


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    """Find the settings model inside an annotation (through Optional, Annotated and list), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _walk(loc: tuple, root: type[BaseModel]) -> dict[str, Any]:
    """Resolve an error location to the key as the user writes it, its data path and the model holding it."""
    key, data = "", []
    holder: type[BaseModel] | None = None
    model: type[BaseModel] | None = root
    field: str | None = None
    tag: str | None = None
    items = list(loc)
    i = 0
    while i < len(items):
        el = items[i]
        i += 1
        if isinstance(el, int):
            key += f"[{el}]"
            data.append(el)
            continue
        key = f"{key}.{el}" if key else str(el)
        data.append(el)
        holder, field = model, str(el)
        if model is Scenario and el == "streets":
            if i < len(items) and items[i] in STREET_SOURCES:
                tag = items[i]
                model = STREET_SOURCES[tag]
                i += 1
            else:
                model = None
            continue
        info = model.model_fields.get(str(el)) if model is not None else None
        model = _inner_model(info.annotation) if info is not None else None
    return {"key": key, "data": tuple(data), "holder": holder, "field": field, "tag": tag}


def _annotation(holder: type[BaseModel] | None, field: str | None) -> Any:
    info = holder.model_fields.get(field) if holder is not None and field else None
    return info.annotation if info is not None else None


def _number(value: Any, annotation: Any) -> Any:
    is_float = annotation is float or float in typing.get_args(annotation)
    if is_float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


SHOWN_CHARACTERS = 200
"""Longest value a message quotes: a longer one (a YAML alias bomb in a text) is cut, its length told."""


def _cut(text: str, limit: int = SHOWN_CHARACTERS) -> str:
    """``text`` cut to ``limit`` characters with "… (N characters)" where it is longer."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def _shown(value: Any) -> str:
    """Quote a value for a message: text in quotes, anything else as written, cut to a readable length."""
    if isinstance(value, str):
        return (
            repr(value)
            if len(value) <= SHOWN_CHARACTERS
            else f"{value[:SHOWN_CHARACTERS]!r}… ({len(value)} characters)"
        )
    return _cut(_short_str(value))


def _short_str(value: Any) -> str:
    """``str(value)`` of a list or mapping built from its first items only (a huge one is not turned to text)."""
    if isinstance(value, list | tuple) and len(value) > SHOWN_CHARACTERS:
        return str(list(value[:SHOWN_CHARACTERS])) + f"… ({len(value)} items)"
    if isinstance(value, dict) and len(value) > SHOWN_CHARACTERS:
        return str(dict(list(value.items())[:SHOWN_CHARACTERS])) + f"… ({len(value)} keys)"
    return str(value)


_TYPE_NAMES = {
    "float_type": "a number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "string_type": "text",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping of keys to values",
    "model_type": "a mapping of keys to values",
    "model_attributes_type": "a mapping of keys to values",
}


def _holds_inline(holder: type[BaseModel], field: str) -> bool:
    """Whether the setting ``field`` of ``holder`` is a section with an ``inline`` list (sources, consumers)."""
    model = _annotation(holder, field)
    return isinstance(model, type) and issubclass(model, BaseModel) and "inline" in model.model_fields


def _message(err: ErrorDetails, root: type[BaseModel]) -> tuple[tuple, str]:
    """One pydantic error → (data path, message naming the key, the value and what is allowed)."""
    where = _walk(err["loc"], root)
    key, holder, field, tag = where["key"], where["holder"], where["field"], where["tag"]
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    annotation = _annotation(holder, field)
    shown = key or "scenario"
    if kind == "extra_forbidden":
        known = sorted(k for k in (holder.model_fields if holder else {}) if not k.startswith("_"))
        prefix = key.rsplit(".", 1)[0] + "." if "." in key else ""
        if tag is not None and any(field in m.model_fields for m in STREET_SOURCES.values()):
            return where["data"], (
                f"'streets.{field}' does not apply to 'streets.source: {tag}' (its keys: {', '.join(known)})"
            )
        close = difflib.get_close_matches(str(field), known, n=1, cutoff=0.6)
        hint = f"; did you mean '{prefix}{close[0]}'?" if close else f"; known keys: {', '.join(known)}"
        return where["data"], f"unknown key '{key}'{hint}"
    if kind == "missing":
        if tag is not None:
            return where["data"][:-1], f"'streets.source: {tag}' needs 'streets.{field}'"
        return where["data"][:-1], f"'{key}' is required"
    if kind == "union_tag_invalid":
        allowed = ", ".join(STREET_SOURCES)
        tag_value = value.get("source") if isinstance(value, dict) else value
        return where["data"] + ("source",), f"'{key}.source' is {_shown(tag_value)}; allowed: {allowed}"
    if kind in _TYPE_NAMES:
        inline = isinstance(value, list) and holder is not None and field is not None and _holds_inline(holder, field)
        hint = f"; rows given in the scenario go under '{shown}.inline:'" if inline else ""
        return where["data"], f"'{shown}' must be {_TYPE_NAMES[kind]}, got {value!r}{hint}"
    if kind == "finite_number":
        return where["data"], f"'{key}' is {value}; it must be a finite number (NaN and infinity are not allowed)"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = next(iter(ctx.values()))
        word = {
            "greater_than_equal": "at least",
            "greater_than": "greater than",
            "less_than_equal": "at most",
            "less_than": "less than",
        }[kind]
        hint = " (°C expected, not kelvin)" if kind.startswith("less") and key.endswith("_c") else ""
        return where["data"], f"'{key}' is {_number(value, annotation)}; it must be {word} {bound:g}{hint}"
    if kind == "literal_error":
        choices = [
            c
            for arg in typing.get_args(annotation)
            for c in (typing.get_args(arg) if typing.get_origin(arg) is Literal else (arg,))
            if c is not type(None)
        ] or [ctx.get("expected", "")]
        return where["data"], f"'{key}' is {_shown(value)}; allowed: {', '.join(map(str, choices))}"
    if kind == "string_too_short":
        return where["data"], f"'{key}' must not be empty"
    if kind == "value_error":  # a check of the whole file (no key) names what it is about itself
        return where["data"], f"'{key}' {ctx.get('error', err['msg'])}" if key else str(ctx.get("error", err["msg"]))
    if kind == "string_pattern_mismatch" and ctx.get("pattern") == ID_PATTERN:
        return where["data"], (
            f"'{shown}' is {value!r}; an id may use only the letters A–Z and a–z (no ä, ö or å), digits and _ . - "
            "(no spaces)"
        )
    msg = err["msg"]
    return where["data"], f"'{shown}': {msg[:1].lower() + msg[1:]}, got {value!r}"


ID_PATTERN = r"^[A-Za-z0-9_.\-]+$"
"""What a unit's id may hold (the energy scenarios' ids: file names and column names are made of them)."""


# ----------------------------------------------------------------------------------------------- YAML


class _Loader(yaml.SafeLoader):
    """YAML loader that refuses a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ScenarioError(f"line {line}: key '{key}' is given twice (lines {seen[key]} and {line}); keep one")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


# YAML 1.1 reads 8e1 and 1.502e4 as text (it wants a dot and a signed exponent); YAML 1.2, JSON and the editors that
# check a scenario against its JSON Schema read them as numbers, and so does heatmap
_Loader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _load_yaml(text: str) -> tuple[Any, yaml.Node | None]:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return data, node


def _line(node: yaml.Node | None, path: tuple) -> int | None:
    """Find the file line (1-based) of the key or item at ``path``, or of the deepest part of it in the file."""
    line = None
    for el in path:
        if isinstance(node, yaml.MappingNode):
            match = [(k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == str(el)]
            if not match:
                break
            line = match[-1][0].start_mark.line + 1
            node = match[-1][1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(el, int) and el < len(node.value):
            node = node.value[el]
            line = node.start_mark.line + 1
        else:
            break
    return line


# ----------------------------------------------------------------------------------------------- checks


def _demand_types(path: Path) -> list[str] | None:
    """Return the demand types of a specific-demand table (its header after ``era``; ``None``: unreadable)."""
    import csv

    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = (line for line in f if line.strip() and not line.startswith("#"))
            header = next(csv.reader(rows), None)
    except (OSError, UnicodeDecodeError):
        return None
    return [c.strip() for c in header[1:]] if header else None


def _consistency(scn: Scenario, *, for_plan: bool) -> list[tuple[tuple, str]]:
    """Check across settings; return (data path, message) per problem."""
    problems: list[tuple[tuple, str]] = []
    known = _demand_types(scn.demand.specific_demand_table) if scn.demand.floors_by_type else None
    for name in sorted(set(scn.demand.floors_by_type) - set(known or scn.demand.floors_by_type)):
        problems.append(
            (
                ("demand", "floors_by_type", name),
                f"'demand.floors_by_type' names {name!r}, no demand type of {scn.demand.specific_demand_table.name}; "
                f"allowed: {', '.join(sorted(known or []))}",
            )
        )
    t = scn.temperatures
    if t.return_c > t.supply_c - MIN_SUPPLY_LIFT_K:
        problems.append(
            (
                ("temperatures", "return_c"),
                f"'temperatures.return_c' ({t.return_c} °C) must be at least {MIN_SUPPLY_LIFT_K:g} K below "
                f"'temperatures.supply_c' ({t.supply_c} °C): the water carries q = ṁ·c_p·(supply − return), so a "
                "narrower difference needs flows no pipe carries",
            )
        )
    if t.ground_c >= t.return_c:
        problems.append(
            (
                ("temperatures", "ground_c"),
                f"'temperatures.ground_c' ({t.ground_c} °C) must be below 'temperatures.return_c' ({t.return_c} °C)",
            )
        )
    curve = t.supply_curve
    if curve is not None:
        if scn.operation is None:
            problems.append(
                (
                    ("temperatures", "supply_curve"),
                    "'temperatures.supply_curve' needs an 'operation' section (its outdoor temperature sets each "
                    "hour's supply temperature); add one or drop the curve",
                )
            )
        if curve.max_c < curve.min_c:
            problems.append(
                (
                    ("temperatures", "supply_curve", "max_c"),
                    f"'temperatures.supply_curve.max_c' ({curve.max_c} °C) must be at least "
                    f"'temperatures.supply_curve.min_c' ({curve.min_c} °C)",
                )
            )
        if curve.outdoor_at_max_c >= curve.outdoor_at_min_c:
            problems.append(
                (
                    ("temperatures", "supply_curve", "outdoor_at_max_c"),
                    f"'temperatures.supply_curve.outdoor_at_max_c' ({curve.outdoor_at_max_c} °C) must be below "
                    f"'temperatures.supply_curve.outdoor_at_min_c' ({curve.outdoor_at_min_c} °C): the supply is "
                    f"hottest in the coldest hours",
                )
            )
        if curve.min_c < t.return_c + MIN_SUPPLY_LIFT_K:
            problems.append(
                (
                    ("temperatures", "supply_curve", "min_c"),
                    f"'temperatures.supply_curve.min_c' ({curve.min_c} °C) must be at least {MIN_SUPPLY_LIFT_K:g} K "
                    f"above 'temperatures.return_c' ({t.return_c} °C)",
                )
            )
    n = scn.network
    if n.initial_pump_lift_bar > n.max_pump_lift_bar:
        problems.append(
            (
                ("network", "initial_pump_lift_bar"),
                f"'network.initial_pump_lift_bar' ({n.initial_pump_lift_bar} bar) must not exceed "
                f"'network.max_pump_lift_bar' ({n.max_pump_lift_bar} bar)",
            )
        )
    d = scn.design
    for key in ("trench_eur_per_m", "pipe_eur_per_kw_m"):
        if d.cost == "linear" and getattr(d, key) is None:
            problems.append((("design", key), f"'design.cost: linear' needs 'design.{key}'"))
    if d.cost == "linear" and d.trench_eur_per_m == 0 and d.pipe_eur_per_kw_m == 0:
        logger.warning(
            "'design.cost: linear' with trench_eur_per_m and pipe_eur_per_kw_m both 0: every route costs the design "
            "nothing, so any is as good as another to it; give the prices (the plan's own costs come from the pipe "
            "catalogue)"
        )
    s = scn.streets
    if s is not None and s.source == "bbox" and scn.study_area.bbox is None:
        problems.append((("streets", "source"), "'streets.source: bbox' needs 'study_area.bbox'"))
    if scn.consumers.osm_buildings and s is not None and s.source != "pbf":
        problems.append(
            (
                ("consumers", "osm_buildings"),
                "'consumers.osm_buildings' needs 'streets.source: pbf' (the buildings are read from it)",
            )
        )
    if s is not None and s.source == "none" and not scn.links.used:
        problems.append(
            (
                ("streets", "source"),
                "'streets.source: none' needs candidate links: 'links.path' or 'links.site_to_site'",
            )
        )
    for name in ("sources", "consumers"):
        part = getattr(scn, name)
        for key in sorted({"columns", "layer", "id_column"} & part.model_fields_set):
            if part.path is None:
                problems.append(
                    ((name, key), f"'{name}.{key}' applies to a file, and the scenario gives no '{name}.path'")
                )
    for name in ("sources", "consumers"):
        part = getattr(scn, name)
        given = [key for key in ("path", "inline", "osm_buildings") if getattr(part, key, None)]
        if len(given) > 1:  # one of them would be read and the others silently dropped
            both = " and ".join(f"'{name}.{key}'" for key in given)
            problems.append(
                ((name, given[-1]), f"{both} are given: give one of them (the {name} are read from one, not combined)")
            )
    if not for_plan:
        return problems
    if s is None:
        problems.append(((), "the scenario names no streets: give 'streets.source' and 'streets.path'"))
    if scn.sources.path is None and not scn.sources.inline:
        problems.append((("sources",), "the scenario names no heat source: give 'sources.path' or 'sources.inline'"))
    if scn.consumers.path is None and not scn.consumers.inline and not scn.consumers.osm_buildings:
        problems.append(
            (
                ("consumers",),
                "the scenario names no consumers: give 'consumers.path', 'consumers.inline' or "
                "'consumers.osm_buildings: true'",
            )
        )
    return problems


def _is_union_tag(el: Any) -> bool:
    """Whether an error location part names a member of a union (``float``, ``list[float]``, ``HourlyCsv``, ...).

    A bounded number's member is ``constrained-float``; a validated one's ``function-after[...]``.
    """
    return isinstance(el, str) and (
        el in ("float", "int", "str") or "[" in el or el[:1].isupper() or el.startswith(("constrained-", "function-"))
    )


def validation_problems(exc: ValidationError, root: type[BaseModel]) -> list[tuple[tuple, str]]:
    """Turn a model's validation errors into one (data path, message) per setting, for every settings schema.

    Each message names the key as the user writes it, the value and what is allowed (see :func:`_message`); a
    value refused by every member of a union (a number, a list or a mapping) is one problem, told once, and a
    mapping a union's model member takes is told by what is wrong inside it alone.

    Parameters
    ----------
    exc
        The error pydantic raised.
    root
        The model validated (a plan scenario, a concept study, a matching scenario, a study).

    Returns
    -------
    list of (tuple, str)
    """
    by_key: dict[tuple, list[ErrorDetails]] = {}
    for e in exc.errors(include_url=False):
        loc = tuple(el for el in e["loc"] if not _is_union_tag(el))
        by_key.setdefault(loc, []).append({**e, "loc": loc})
    for loc in [k for k in by_key if any(o[: len(k)] == k and len(o) > len(k) for o in by_key)]:
        if all(e["type"] in _TYPE_NAMES for e in by_key[loc]):  # a union's mapping member took the value and
            del by_key[loc]  # failed inside it: its other members' type errors are no problem of their own
    problems = []
    for group in by_key.values():
        kinds = [_TYPE_NAMES.get(e["type"]) for e in group]
        names = list(dict.fromkeys(k for k in kinds if k is not None))
        if len(group) > 1 and len(names) == len(set(kinds)):  # of none of the union's types: name them all at once
            where = _walk(group[0]["loc"], root)
            allowed = ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]
            problems.append((where["data"], f"'{where['key']}' must be {allowed}, got {_shown(group[0].get('input'))}"))
            continue
        finite = [e for e in group if e["type"] == "finite_number"]
        matched = [e for e in group if e["type"] not in _TYPE_NAMES]  # the union member the value's type is
        told = [_message(e, root) for e in finite or matched or group]
        problems.append((told[0][0], " or ".join(dict.fromkeys(m for _, m in told))))
    return [(path, _cut(message, 20 * SHOWN_CHARACTERS)) for path, message in problems]  # whatever else quotes


def _raise(problems: list[tuple[tuple, str]], node: yaml.Node | None, where: str | None) -> None:
    lines = []
    for path, message in problems[:MAX_MESSAGES]:
        line = _line(node, path) if node is not None else None
        at = ", ".join(p for p in (where, f"line {line}" if line else None) if p)
        lines.append(f"{at}: {message}" if at else message)
    if len(problems) > MAX_MESSAGES:
        lines.append(f"… and {len(problems) - MAX_MESSAGES} more problems")
    raise ScenarioError("\n".join(lines))


def _renamed_keys(
    data: dict[str, Any],
    node: yaml.Node | None,
    where: str | None,
    table: dict[tuple[str, str], str] = RENAMED_KEYS,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Read the old keys of ``table`` (section, old key → new key) as their new names; refuse both given."""
    renamed, problems = [], []
    for (section, old), new in table.items():
        part = data.get(section)
        if not isinstance(part, dict) or old not in part:
            continue
        if new in part:
            problems.append(
                (
                    (section, old),
                    f"'{section}.{old}' and '{section}.{new}' are both given; '{old}' is the old name of '{new}': "
                    f"keep '{section}.{new}' only",
                )
            )
            continue
        data = {**data, section: {(new if k == old else k): v for k, v in part.items()}}
        line = _line(node, (section, old)) if node is not None else None
        at = ", ".join(p for p in (where, f"line {line}" if line else None) if p)
        message = (
            f"'{section}.{old}' is the old name of '{section}.{new}'; read as '{section}.{new}: {part[old]}': "
            f"write '{new}' in the scenario"
        )
        renamed.append({"old": f"{section}.{old}", "new": f"{section}.{new}", "line": line, "message": message})
        logger.warning("%s%s", f"{at}: " if at else "", message)
    if problems:
        _raise(problems, node, where)
    return data, renamed


def _validate(
    data: Any, *, base_dir: Path, path: Path | None, for_plan: bool, node: yaml.Node | None = None
) -> Scenario:
    where = str(path) if node is not None and path is not None else None
    if not isinstance(data, dict):
        got = "an empty file" if data is None else repr(data)
        named = where or (str(path) if path is not None else None)
        _raise([((), f"a scenario must be a mapping of keys to values, got {got}")], node, named)
    data, renamed = _renamed_keys(data, node, where)
    try:
        scn = Scenario.model_validate(data, context={"base_dir": Path(base_dir)})
    except ValidationError as exc:
        problems = validation_problems(exc, Scenario)
        for r in renamed:  # a value under an old key: name the key as written, and find its line
            old_path, new_path = tuple(r["old"].split(".")), tuple(r["new"].split("."))
            problems = [
                (old_path, m.replace(f"'{r['new']}'", f"'{r['old']}' (now '{r['new']}')")) if p == new_path else (p, m)
                for p, m in problems
            ]
        problems.sort(key=lambda p: not p[1].startswith("'streets.source:"))  # what a street source needs first
        _raise(problems, node, where)
    problems = _consistency(scn, for_plan=for_plan)
    if problems:
        _raise(problems, node, where)
    scn._path = path
    scn._renamed = tuple(renamed)
    scn._default_street_source = isinstance(data.get("streets"), dict) and "source" not in data["streets"]
    inline: dict[str, typing.Sequence[InlineSource | InlineConsumer]] = {
        "sources": scn.sources.inline,
        "consumers": scn.consumers.inline,
    }
    for name, rows in inline.items():
        for i, row in enumerate(rows):
            row._line = _line(node, (name, "inline", i)) if node is not None else None
    given = scn.given
    n_rows = len(scn.assumptions())
    logger.info("Scenario %r: %d settings given, %d defaults", scn.name, len(given), n_rows - len(given))
    return scn


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
        Require what a plan needs (streets, sources and consumers); ``False`` for ``heatmap demand``, which
        reads only the demand and density settings.

    Returns
    -------
    Scenario
    """
    return _validate(data, base_dir=base_dir, path=path, for_plan=for_plan)


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
    from heatmap.io.paths import refuse_special

    path = Path(path)
    if path.is_dir():
        raise ScenarioError(f"scenario {path} is a folder; give the scenario's YAML file")
    refuse_special(path, "the scenario file given to the command", error=ScenarioError)  # a FIFO is no missing file
    if not path.is_file():
        raise ScenarioError(f"scenario file {path} does not exist")
    data, node = read_yaml(path)
    return _validate(data, base_dir=path.resolve().parent, path=path.resolve(), for_plan=for_plan, node=node)


def read_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    """Parse a settings file (YAML) keeping its nodes for the file lines; every schema's files are read here.

    Raises
    ------
    heatmap._errors.ScenarioError
        Naming the file: not YAML, not text, no file to read (a link loop, a FIFO, a device), or a key given
        twice in one mapping (with both lines).
    """
    from heatmap.io.paths import refuse_special

    refuse_special(path, "the settings file's path", error=ScenarioError)
    try:
        return _load_yaml(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1  # the file's bytes, as read
        raise ScenarioError(
            f"{path}, line {line}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}, a letter such as ö written in "
            f"another encoding, e.g. Latin-1 or Windows-1252); save the file as UTF-8 (a text editor's Save As, "
            f"encoding UTF-8)"
        ) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML ({exc})") from None
    except ScenarioError as exc:
        raise ScenarioError(f"{path}, {exc}") from None


_UNITS = {
    "_c": "°C",
    "_m": "m",
    "_mm": "mm",
    "_kw": "kW",
    "_bar": "bar",
    "_h": "h",
    "_a": "a",
    "_mwh": "MWh/a",
    "_m_per_s": "m/s",
    "_pa_per_m": "Pa/m",
    "_eur_per_mwh": "€/MWh",
    "_eur_per_m": "€/m",
    "_eur_per_m2": "€/m²",
    "_mwh_per_ha": "MWh/(ha·a)",
    "_gwh_per_a": "GWh/a",
    "_per_a": "1/a",
}


def json_schema(model: type[BaseModel] | None = None, *, description: str | None = None) -> dict[str, Any]:
    """Give the JSON Schema of scenario files, for editors (the YAML language server) to check them as typed.

    Each setting's unit (from its name's suffix) is added as ``x-unit``.

    Parameters
    ----------
    model
        The schema's model: plan scenarios (:class:`Scenario`, the default), or a study's, a concept study's or a
        matching scenario's (``heatmap schema --kind``).
    description
        The schema's description (default: the plan scenario's).

    Returns
    -------
    dict
    """
    model = Scenario if model is None else model
    schema = model.model_json_schema(mode="validation")

    def add_units(node: Any) -> None:
        if isinstance(node, dict):
            for name, prop in (node.get("properties") or {}).items():
                unit = next((u for s, u in sorted(_UNITS.items(), key=lambda x: -len(x[0])) if name.endswith(s)), None)
                if unit and isinstance(prop, dict):
                    prop.setdefault("x-unit", unit)
            for value in node.values():
                add_units(value)
        elif isinstance(node, list):
            for value in node:
                add_units(value)

    add_units(schema)
    for (section, old), new in RENAMED_KEYS.items():  # an old key is still read: editors mark it deprecated
        field = model.model_fields.get(section)
        inner = _inner_model(field.annotation) if field is not None else None
        props = schema.get("$defs", {}).get(inner.__name__, {}).get("properties", {}) if inner is not None else {}
        if new not in props:
            continue  # the model has no such section (or the section no such key)
        props[old] = {
            **{k: v for k, v in props[new].items() if k not in ("default", "title")},
            "deprecated": True,
            "description": f"old name of {new}, read as {new} with a warning; write {new}",
        }
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["description"] = description or (
        "A heatmap scenario: study area, streets, heat sources and consumers, and every assumption of the plan. "
        "Unknown keys are refused."
    )
    return schema


def check_input_files(scn: Scenario, *, for_plan: bool = True) -> None:
    """Check that every input file the scenario names exists, before any heavy work begins.

    Parameters
    ----------
    scn
        A validated scenario.
    for_plan
        Check the files a plan reads (streets, sources, consumers, pipe catalogue); ``False`` checks only the
        demand tables.

    Raises
    ------
    heatmap._errors.InputDataError
        Naming the file and the scenario key that points to it: missing, or no file to read (a folder, a loop
        of symbolic links, a FIFO, a device).
    """
    from heatmap.io.paths import refuse_special

    files: list[tuple[str, Path | PostgisUrl | None]] = []
    if for_plan:
        files += [
            ("streets.path", getattr(scn.streets, "path", None)),
            ("links.path", scn.links.path),
            ("links.no_go_path", scn.links.no_go_path),
            ("sources.path", scn.sources.path),
            ("consumers.path", scn.consumers.path),
            ("network.catalogue", scn.network.catalogue),
        ]
    if not for_plan or scn.consumers.osm_buildings:
        d = scn.demand
        files += [
            ("demand.specific_demand_table", d.specific_demand_table),
            ("demand.building_types_table", d.building_types_table),
            ("demand.dhw_table", d.dhw_table),
            ("demand.landuse_types_table", d.landuse_types_table),
            ("demand.floors_table", d.floors_table),
            ("demand.statistics_table", d.statistics_table),
        ]
    for key, path in files:
        if path is None or isinstance(path, PostgisUrl):  # a database: read (and checked) by heatmap.io.postgis
            continue
        refuse_special(path, f"'{key}' in the scenario", folder_ok=path.suffix.lower() == ".gdb")
        if not path.exists():
            raise InputDataError(f"{path}: file not found; check '{key}' in the scenario")
    logger.info("Scenario input files: %d found", sum(p is not None for _, p in files))
