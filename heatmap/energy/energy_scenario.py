"""The scenario of an excess-heat concept study (``heatmap concepts``): typed, validated, every unit in a name.

A YAML file names the year's hourly series (outdoor temperature, electricity price), the consumers' demand,
the network (heat-loss coefficient, heating curve), the excess-heat sources, boilers, electric boilers and
storages, and the concepts to compare — each concept a selection of those units. Relative paths are taken from
the scenario file's folder when the scenario is read, so every path held is absolute. Unknown keys, wrong types,
NaN, infinity and a key given twice are errors naming the file, its line and the key (a typo never silently
falls back to a default); every value used, set or default, is listed in the summary (:func:`assumptions`).

See ``data/scenarios/kip.yaml`` for a complete example.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, overload

import yaml
from pydantic import AfterValidator, BaseModel, Field, PrivateAttr, ValidationError, model_validator

from heatmap import settings
from heatmap._errors import ScenarioError
from heatmap.scenario import (
    ELECTRICITY_PRICE_RANGE_EUR_PER_MWH,
    ID_PATTERN,
    MAX_CAPACITY_KW,
    MAX_COST_EUR_PER_KW,
    MAX_ENERGY_MWH,
    MAX_PRICE_EUR_PER_MWH,
    OUTDOOR_RANGE_C,
    FilePath,
    SettingsModel,
    _raise,
    _renamed_keys,
    read_yaml,
    validation_problems,
)

logger = logging.getLogger(__name__)

Id = Annotated[str, Field(min_length=1, pattern=ID_PATTERN, description="identifier: letters, digits, _ . -")]

Share = Annotated[float, Field(ge=0, le=1)]
"""A share of 0…1 (an availability)."""

ElectricityPrice = Annotated[
    float, Field(ge=ELECTRICITY_PRICE_RANGE_EUR_PER_MWH[0], le=ELECTRICITY_PRICE_RANGE_EUR_PER_MWH[1])
]
"""One electricity price for every hour, €/MWh (within the market's limits)."""

MAX_COP = 6.5
"""Default ceiling of a heat pump's COP (settings ``max_cop``), see :data:`MAX_COP_DOC`."""
MAX_COP_DOC = (
    "ceiling of the COP at small lifts: 6.5, the highest COP Arpagaus et al. (2018) report for high-temperature "
    "heat pumps (research units 5.7–6.5 at a 30 K lift and 120 °C sink; market units 2.4–5.8 at lifts of 95–40 K; "
    "Energy 152, 985–1010, abstract); holding it as the ceiling at every lift is an estimate"
)


class HourlyCsv(SettingsModel):
    """A column of a CSV file with one row per hour of the year."""

    csv: FilePath = Field(description="CSV file (relative to the scenario file)")
    column: str = Field(description="column holding the values")


class HeatPump(SettingsModel):
    """A heat pump lifting a source's heat to the network's supply temperature."""

    capacity_kw: float = Field(gt=0, le=MAX_CAPACITY_KW, description="largest heat output (kW)")
    eta: float = Field(0.5, gt=0, le=1, description="share of the Carnot COP reached (COP = η·T_hot/(T_hot−T_cold))")
    max_cop: float = Field(MAX_COP, gt=1, le=50, description=MAX_COP_DOC)
    cost_eur_per_kw: float = Field(0.0, ge=0, le=MAX_COST_EUR_PER_KW, description="investment per kW of heat output")
    om_eur_per_mwh: float = Field(
        0.0, ge=0, le=MAX_PRICE_EUR_PER_MWH, description="operation and maintenance per MWh of heat"
    )


class SourceValues(SettingsModel):
    """What an excess-heat source is; values left out come from its preset (``data/excess_heat_presets.csv``).

    The fields of a concept study's source (:class:`Source`) and of a study's (:class:`heatmap.study.StudySource`).
    """

    preset: str | None = Field(None, description="kind in the preset table (flue_gas, roaster_steam, …)")
    capacity_kw: float | None = Field(
        None, gt=0, le=MAX_CAPACITY_KW, description="heat it can give at full availability (kW)"
    )
    electric_input_kw: float | None = Field(
        None, gt=0, le=MAX_CAPACITY_KW, description="electrolyser: electric input (kW)"
    )
    heat_share_of_electric_input: float | None = Field(None, gt=0, lt=1, description="electrolyser: heat ÷ input")
    temperature_c: float | None = Field(None, gt=-20, lt=600, description="temperature the heat is available at")
    availability: Share | list[Share] | HourlyCsv | None = Field(
        None, description="0…1: a constant, 12 monthly factors, or an hourly CSV column"
    )
    heat_price_eur_per_mwh: float | None = Field(
        None, ge=0, le=MAX_PRICE_EUR_PER_MWH, description="price paid for the heat"
    )
    hx_cost_eur_per_kw: float | None = Field(
        None, ge=0, le=MAX_COST_EUR_PER_KW, description="recovery equipment (heat exchanger) per kW"
    )
    heat_pump: HeatPump | None = Field(None, description="needed where the source is colder than the supply")
    published_mwh_per_a: float | None = Field(
        None, gt=0, le=MAX_ENERGY_MWH, description="published annual delivery, for calibration"
    )
    published_note: str | None = Field(None, description="where the published delivery comes from")

    @model_validator(mode="after")
    def _check(self) -> SourceValues:
        if isinstance(self.availability, float | int) and not 0 <= self.availability <= 1:
            raise ValueError("availability must be within 0…1")
        if isinstance(self.availability, list) and (
            len(self.availability) != 12 or not all(0 <= a <= 1 for a in self.availability)
        ):
            raise ValueError("availability as a list needs 12 monthly factors within 0…1")
        if self.capacity_kw is not None and self.electric_input_kw is not None:
            raise ValueError("give capacity_kw or electric_input_kw (electrolyser), not both")
        return self


class Source(SourceValues):
    """An industrial excess-heat source of a concept study (see :class:`SourceValues`)."""

    id: Id
    name: str | None = Field(None, description="name shown in the plots (default: the id in words)")
    plant: str | None = Field(None, description="plant name as in data/kip/plants.csv (for its location)")


class Boiler(SettingsModel):
    """A fuel boiler (backup or base load)."""

    id: Id
    name: str | None = Field(None, description="name shown in the plots (default: the id in words)")
    fuel: str = Field(description="fuel name in the fuel table (data/fuels_fi.csv)")
    capacity_kw: float = Field(gt=0, le=MAX_CAPACITY_KW, description="heat output (kW)")
    efficiency: float = Field(gt=0, le=1.1, description="heat ÷ fuel (lower heating value; >1 with condensing)")
    om_eur_per_mwh: float = Field(0.0, ge=0, le=MAX_PRICE_EUR_PER_MWH, description="variable O&M per MWh of heat")


class ElectricBoiler(SettingsModel):
    """An electric (electrode) boiler."""

    id: Id
    name: str | None = Field(None, description="name shown in the plots (default: the id in words)")
    capacity_kw: float = Field(gt=0, le=MAX_CAPACITY_KW, description="heat output (kW)")
    efficiency: float = Field(0.99, gt=0, le=1, description="heat ÷ electricity")
    cost_eur_per_kw: float = Field(0.0, ge=0, le=MAX_COST_EUR_PER_KW, description="investment per kW")


class StorageSpec(SettingsModel):
    """A thermal storage."""

    id: Id
    name: str | None = Field(None, description="name shown in the plots (default: the id in words)")
    capacity_mwh: float = Field(gt=0, le=MAX_ENERGY_MWH, description="usable heat content (MWh)")
    charge_kw: float = Field(gt=0, le=MAX_CAPACITY_KW, description="largest charge power (kW)")
    discharge_kw: float = Field(gt=0, le=MAX_CAPACITY_KW, description="largest discharge power (kW)")
    standing_loss_per_h: float = Field(0.0005, ge=0, lt=0.1, description="share of the content lost per hour")
    charge_efficiency: float = Field(1.0, gt=0, le=1)
    discharge_efficiency: float = Field(1.0, gt=0, le=1)
    cost_eur_per_mwh: float = Field(0.0, ge=0, le=1e6, description="investment per MWh of capacity")
    wear_eur_per_mwh: float = Field(
        0.1, ge=0, le=MAX_PRICE_EUR_PER_MWH, description="cost per MWh discharged (avoids pointless cycling)"
    )


class Demand(SettingsModel):
    """The consumers' hourly heat demand: annual energy spread by degree-hours, or an hourly CSV (kW)."""

    annual_mwh: float | None = Field(
        None, gt=0, le=MAX_ENERGY_MWH, description="heat delivered to consumers per year (MWh)"
    )
    hot_water_share: float = Field(0.2, ge=0, lt=1, description="share of annual_mwh that is hot water (flat)")
    base_temperature_c: float = Field(
        17.0, ge=5, le=25, description="base of the heating degree-hours (FMI S17: 17 °C)"
    )
    profile: HourlyCsv | None = Field(None, description="hourly demand in kW instead of annual_mwh")
    note: str | None = Field(None, description="how the demand was estimated")

    @model_validator(mode="after")
    def _one(self) -> Demand:
        if (self.annual_mwh is None) == (self.profile is None):
            raise ValueError("give either annual_mwh or profile")
        return self


class SupplyCurve(SettingsModel):
    """The heating curve: supply temperature by outdoor temperature (linear between two points)."""

    max_c: float = Field(gt=0, lt=200, description="supply temperature at and below outdoor_at_max_c")
    min_c: float = Field(gt=0, lt=200, description="supply temperature at and above outdoor_at_min_c")
    outdoor_at_max_c: float = Field(
        ge=OUTDOOR_RANGE_C[0],
        le=OUTDOOR_RANGE_C[1],
        description="outdoor temperature of the highest supply temperature",
    )
    outdoor_at_min_c: float = Field(
        ge=OUTDOOR_RANGE_C[0], le=OUTDOOR_RANGE_C[1], description="outdoor temperature of the lowest supply temperature"
    )

    @model_validator(mode="after")
    def _order(self) -> SupplyCurve:
        if self.max_c < self.min_c or self.outdoor_at_max_c >= self.outdoor_at_min_c:
            raise ValueError("need max_c ≥ min_c and outdoor_at_max_c < outdoor_at_min_c")
        return self


def _existing_file(value: Path | None) -> Path | None:
    if value is not None and not value.is_file():
        raise ValueError(f"plan scenario file {value} not found (a path relative to this scenario file)")
    return value


class Network(SettingsModel):
    """The network as the dispatch sees it: its temperatures and its heat loss.

    ``plan`` names a plan scenario (``heatmap plan``) whose network is planned with the study: its GeoPackage
    and maps are written with the study, and its heat-loss coefficient, taken from the simulated losses at its
    design case (:func:`heatmap.energy.concept_network.planned_heat_loss_coefficient`), enters the hourly losses as
    ``plan_losses`` says: ``add`` — the planned pipes connect a source to the network whose losses
    ``heat_loss_coefficient_w_per_k`` estimates, so their UA is added to it; ``replace`` — the plan is the whole
    network, its UA replaces the estimate. A concept using the planned network (one of its sources is a source of
    the plan) also invests in it and pays its pumping; a source the plan carries to ``sink`` is bounded by that
    connection and by what the plan's other consumers take from it (:func:`heatmap.energy.concept_network.
    source_links`).
    """

    heat_loss_coefficient_w_per_k: float = Field(
        ge=0, le=1e9, description="UA of the network (W per K above ground); an estimate unless plan_losses is replace"
    )
    plan: Annotated[FilePath | None, AfterValidator(_existing_file)] = Field(
        None, description="plan scenario (YAML, relative to this file) of the network planned with the study"
    )
    plan_losses: Literal["add", "replace"] = Field(
        "add", description="add the planned network's UA to the estimate (a connection) or replace it (whole grid)"
    )
    sink: Id | None = Field(
        None, description="consumer id in the plan where this study's demand is delivered (drawn as the sink)"
    )
    return_c: float = Field(gt=0, lt=100, description="return temperature of the network (°C)")
    ground_c: float = Field(gt=-10, lt=30, description="undisturbed ground temperature around buried pipes (°C)")
    supply: SupplyCurve
    approach_k: float = Field(
        5.0,
        ge=0,
        le=50,
        description=(
            "source must exceed the supply temperature by this to feed directly; colder but more than this above "
            "the return temperature, a source without a heat pump preheats"
        ),
    )
    note: str | None = None

    @model_validator(mode="after")
    def _plan_settings_need_a_plan(self) -> Network:
        if self.plan is None and (self.sink is not None or "plan_losses" in self.model_fields_set):
            raise ValueError("sink and plan_losses need a plan (the plan scenario of the network)")
        return self

    @model_validator(mode="after")
    def _return_below_supply(self) -> Network:
        if self.return_c >= self.supply.min_c:
            raise ValueError(
                f"return_c ({self.return_c:g} °C) must be below supply.min_c "
                f"({self.supply.min_c:g} °C), the lowest supply temperature"
            )
        return self


class Electricity(SettingsModel):
    """Electricity bought by heat pumps and electric boilers."""

    price: HourlyCsv | ElectricityPrice = Field(description="€/MWh: one price, or an hourly CSV column")
    co2_t_per_mwh: float = Field(ge=0, le=1000, description="CO₂ counted per MWh of electricity bought")
    price_scale: float = Field(
        1.0, gt=0, le=100, description="multiplies every hour's price (1: as given; a sensitivity run's lever)"
    )
    note: str | None = None


class Economics(SettingsModel):
    """Annualising investments and pricing CO₂."""

    discount_rate: float = Field(0.03, ge=0, lt=1, description="real discount rate per year (Hotmaps excess heat: 3 %)")
    lifetime_a: int = Field(30, gt=0, le=100, description="lifetime of new equipment, a (Hotmaps excess heat: 30 a)")
    co2_price_eur_per_t: float = Field(0.0, ge=0, le=1e4, description="CO₂ allowance price added to fuel costs")


REFERENCE_NAME = "Reference (boilers only)"
"""The concept every other is compared with: all the scenario's boilers, no excess heat, nothing new."""
MAX_CONCEPT_NAME_CHARS = 120
"""Longest concept name: its files (``dispatch_<name>.csv``) must fit a file system's 255 bytes, its reports a line."""


def concept_slug(name: str) -> str:
    """Return a concept's name as its files' names hold it (``With storage`` → ``with_storage``)."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "concept"


def _distinct_names(concepts: list[Concept]) -> list[Concept]:
    """Refuse the reference's name and names whose files would collide (they differ only in punctuation or case)."""
    for c in concepts:
        if c.name == REFERENCE_NAME:
            raise ValueError(f"concept name {REFERENCE_NAME!r} is reserved for the reference; name it otherwise")
    seen: dict[str, str] = {}
    for c in concepts:
        other = seen.setdefault(concept_slug(c.name), c.name)
        if other != c.name:
            raise ValueError(
                f"concept names {other!r} and {c.name!r} differ only in punctuation or case: their files "
                f"(dispatch_{concept_slug(c.name)}.csv) would be one; name them apart"
            )
    return concepts


class Concept(SettingsModel):
    """An implementation concept: which of the scenario's units it uses."""

    name: str = Field(min_length=1, max_length=MAX_CONCEPT_NAME_CHARS)
    description: str = ""
    sources: list[Id] = Field(default_factory=list)
    heat_pumps: bool = Field(False, description="use the heat pumps of sources that have one")
    boilers: list[Id] = Field(default_factory=list)
    electric_boilers: list[Id] = Field(default_factory=list)
    storages: list[Id] = Field(default_factory=list)

    @model_validator(mode="after")
    def _each_unit_once(self) -> Concept:
        units = [*self.sources, *self.boilers, *self.electric_boilers, *self.storages]
        twice = sorted({u for u in units if units.count(u) > 1})
        if twice:
            raise ValueError(f"concept {self.name!r} names units {', '.join(twice)} more than once; name each once")
        return self


Concepts = Annotated[list[Concept], AfterValidator(_distinct_names)]
"""A list of concepts whose names are apart (:func:`_distinct_names`)."""


class EnergyScenario(SettingsModel):
    """A concept study: the year, the demand, the network, the units and the concepts."""

    name: str = Field(min_length=1)
    year: int = Field(2023, ge=1900, le=2100, description="calendar year of the hourly time stamps")
    outdoor_temperature: HourlyCsv = Field(description="hourly outdoor temperature (°C)")
    electricity: Electricity
    demand: Demand
    network: Network
    economics: Economics = Economics()
    fuels_csv: FilePath = Field(settings.data_dir / "fuels_fi.csv", description="fuel table (CO₂ factors, prices)")
    fuel_prices_eur_per_mwh: dict[str, Annotated[float, Field(ge=0, le=1e4)]] = Field(
        default_factory=dict, description="fuel prices (€/MWh, by fuel name) replacing the fuel table's"
    )
    presets_csv: FilePath = Field(settings.data_dir / "excess_heat_presets.csv", description="source presets")
    plants_csv: FilePath | None = Field(None, description="plants with their (approximate) locations")
    sources: list[Source] = Field(default_factory=list)
    boilers: list[Boiler] = Field(min_length=1)
    electric_boilers: list[ElectricBoiler] = Field(default_factory=list)
    storages: list[StorageSpec] = Field(default_factory=list)
    concepts: Concepts = Field(min_length=1)
    solver: Literal["simplex", "ipm", "choose"] = Field("simplex", description="HiGHS solver")
    unserved_penalty_eur_per_mwh: float = Field(10_000.0, gt=0, le=1e6, description="cost of heat not delivered")
    _base_dir: Path = PrivateAttr(default=Path("."))
    _path: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _references(self) -> EnergyScenario:
        groups = {
            "sources": [s.id for s in self.sources],
            "boilers": [b.id for b in self.boilers],
            "electric_boilers": [b.id for b in self.electric_boilers],
            "storages": [s.id for s in self.storages],
        }
        every = [i for ids in groups.values() for i in ids]
        dup = sorted({i for i in every if every.count(i) > 1})
        if dup:
            raise ValueError(f"unit ids must be unique across sources, boilers and storages; repeated: {dup}")
        names = [c.name for c in self.concepts]
        if len(set(names)) != len(names):
            raise ValueError("concept names must be unique")
        for c in self.concepts:
            for group, known in groups.items():
                unknown = sorted(set(getattr(c, group)) - set(known))
                if unknown:
                    raise ValueError(f"concept {c.name!r}: {group} {unknown} not defined (known: {known})")
            pumps = [s.id for s in self.sources if s.id in c.sources and s.heat_pump is not None]
            if c.heat_pumps and not pumps:
                logger.warning(
                    "concept %r: heat_pumps: true, but none of its sources has a heat_pump: it changes nothing", c.name
                )
            if not c.boilers and not c.electric_boilers and not c.sources:
                stores = " (a storage makes no heat)" if c.storages else ""
                raise ValueError(
                    f"concept {c.name!r} has no unit that makes heat{stores}: give it sources, boilers or "
                    f"electric_boilers"
                )
        return self

    @model_validator(mode="after")
    def _heat_pumps_lift(self) -> EnergyScenario:
        for s in self.sources:
            if s.temperature_c is not None:  # a preset's temperature is checked where it is read (resolve_sources)
                problem = heat_pump_problem(s.id, s.temperature_c, s.heat_pump, self.network)
                if problem is not None:
                    raise ValueError(problem)
        return self

    def path(self, p: Path) -> Path:
        """Return a path from the scenario, made absolute from the scenario file's folder."""
        return p if p.is_absolute() else self._base_dir / p

    @property
    def file(self) -> Path | None:
        """The scenario file read (``None`` if built from a dict)."""
        return self._path


def heat_pump_problem(source_id: str, temperature_c: float, heat_pump: HeatPump | None, network: Network) -> str | None:
    """Say why a source's heat pump would never lift its heat, or ``None`` where it may run.

    A heat pump lifts a source's heat to the network's supply temperature; a source at least as hot as the
    hottest supply temperature (``network.supply.max_c``) has nothing to lift in any hour. Its heat would pass
    through the heat pump at an infinite COP, be reported as heat-pump heat and the heat pump be paid for.

    Parameters
    ----------
    source_id
        The source's id (named in the message).
    temperature_c
        The temperature its heat is available at (°C), given or from its preset.
    heat_pump
        Its heat pump, if it has one.
    network
        The network whose supply temperature the heat pump would reach.

    Returns
    -------
    str or None
        The message naming the source, both temperatures and what to do instead.
    """
    if heat_pump is None or temperature_c < network.supply.max_c:
        return None
    return (
        f"sources[{source_id}].heat_pump: the source's heat at {temperature_c:g} °C is not below the network's "
        f"hottest supply temperature ({network.supply.max_c:g} °C, the heating curve's max_c), so the heat pump would "
        f"never lift it (its heat would pass straight through, counted as heat-pump heat, and the heat pump be "
        f"paid for); leave out heat_pump: the source feeds through its heat exchanger (directly where "
        f"{temperature_c:g} °C − approach_k reaches the supply temperature, else it preheats)"
    )


RENAMED_KEYS: dict[tuple[str, str], str] = {
    ("network", "return_temperature_c"): "return_c",
    ("network", "ground_temperature_c"): "ground_c",
}
"""Old keys of concept scenarios still read (section, old key → new key), the names of the plan scenario's
``temperatures`` and of a study: read with a warning naming the new key; giving both is an error."""

ModelT = TypeVar("ModelT", bound=BaseModel)
"""A scenario model read through :func:`energy_scenario_from_dict` (it has a private ``_base_dir``)."""


@overload
def energy_scenario_from_dict(
    data: dict[str, Any],
    *,
    base_dir: Path,
    origin: str = "scenario",
    node: yaml.Node | None = None,
    model: None = None,
) -> EnergyScenario: ...


@overload
def energy_scenario_from_dict(
    data: dict[str, Any],
    *,
    base_dir: Path,
    origin: str = "scenario",
    node: yaml.Node | None = None,
    model: type[ModelT],
) -> ModelT: ...


def energy_scenario_from_dict(
    data: dict[str, Any],
    *,
    base_dir: Path,
    origin: str = "scenario",
    node: yaml.Node | None = None,
    model: type[BaseModel] | None = None,
) -> BaseModel:
    """Validate a concept scenario given as a mapping; errors name the key and what is wrong.

    Parameters
    ----------
    data
        The scenario's keys and values.
    base_dir
        Folder that relative paths are resolved against (they are held as absolute paths).
    origin
        How the scenario is named in messages (its file).
    node
        The parsed YAML document, to name the file line of each error.
    model
        The scenario model (default :class:`EnergyScenario`; the matching scenario reads through here too).
    """
    if not isinstance(data, dict):
        raise ScenarioError(f"{origin}: expected a mapping of settings at the top level")
    if model in (None, EnergyScenario):
        data, _ = _renamed_keys(data, node, origin, RENAMED_KEYS)
    try:
        # every scenario model has the private _base_dir (EnergyScenario's, MatchScenario's, the study's)
        scn: Any = (model or EnergyScenario).model_validate(data, context={"base_dir": Path(base_dir)})
    except ValidationError as exc:
        _raise(validation_problems(exc, model or EnergyScenario), node, origin)
    scn._base_dir = Path(base_dir)
    return scn


def settings_from_file(path: str | Path, model: type[ModelT]) -> tuple[ModelT, yaml.Node | None]:
    """Read and validate a settings file (YAML) of any schema read here: a concept study, a matching, a study.

    A key given twice in one mapping is refused; errors name the file, its line and the key.

    Returns
    -------
    (model instance, yaml.Node)
        The validated settings (``_path`` set to ``path``) and the parsed document, for the file lines.
    """
    from heatmap.io.paths import refuse_special

    path = Path(path)
    refuse_special(path, "the scenario file given to the command", error=ScenarioError)  # a folder, a FIFO, …
    if not path.is_file():
        raise ScenarioError(f"{path}: scenario file not found")
    data, node = read_yaml(path)
    scn: Any = energy_scenario_from_dict(data, base_dir=path.resolve().parent, origin=str(path), node=node, model=model)
    scn._path = path
    return scn, node


def energy_scenario_from_file(path: str | Path) -> EnergyScenario:
    """Read and validate a concept scenario (YAML), see :func:`settings_from_file`."""
    scn, _ = settings_from_file(path, EnergyScenario)
    logger.info("Read scenario %s: %d sources", path, len(scn.sources))
    return scn


def assumptions(model: BaseModel, prefix: str = "") -> dict[str, dict[str, Any]]:
    """Every setting of a scenario with its value and origin (``scenario`` if set in the file, else ``default``)."""
    out: dict[str, dict[str, Any]] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        key = f"{prefix}{name}"
        origin = "scenario" if name in model.model_fields_set else "default"
        if isinstance(value, BaseModel):
            out.update(assumptions(value, key + "."))
        elif isinstance(value, list) and value and isinstance(value[0], BaseModel):
            for i, item in enumerate(value):
                label = getattr(item, "id", None) or getattr(item, "name", None) or i
                out.update(assumptions(item, f"{key}[{label}]."))
        else:
            out[key] = {"value": str(value) if isinstance(value, Path) else value, "origin": origin}
    return out
