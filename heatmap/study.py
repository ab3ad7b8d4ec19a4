"""A study: one place, one model; every site, unit, price and temperature defined once, read by every command.

A study file (YAML, ``kind: study``) holds the year (outdoor temperature, electricity price, the sites' hourly
profiles), one temperature regime (the supply curve by outdoor temperature, the return and ground temperatures,
the approach), the economics and the prices of the heat trade, the sources, consumers, boilers, electric boilers
and storages with their locations, the network planned with the study (its candidate routes and limits), the
concepts and the matching settings. Each command takes from it the model it runs:

- ``heatmap plan`` the network (:func:`plan_scenario`): the sources, boilers and consumers with ``network: true``
  and the year of operation at the trade's prices;
- ``heatmap concepts`` the town's heat supply per concept (:func:`energy_scenario`): the sink's demand, every
  source, boiler, electric boiler and storage, the network named by the study itself;
- ``heatmap matches`` every source against every consumer that is a sink (:func:`match_scenario`).

So no site has two locations or two temperatures, and a price changed once changes every part. The derived
models are the commands' own scenario models (:class:`heatmap.scenario.Scenario`,
:class:`heatmap.energy.energy_scenario.EnergyScenario`, :class:`heatmap.energy.matching.MatchScenario`), built from
the study's values, so each part runs and is checked exactly as it runs from its own scenario file.

Rules the derivation follows (each a documented setting of the study):

- A source's water on the network leaves at most ``temperature_c − temperatures.approach_k``, and its capacity on
  the network is the heat it has: capacity × availability where that is one number (monthly or hourly
  availability: its full capacity); a boiler heats to its ``t_supply_c`` (default the supply curve's highest).
- A consumer needs ``t_supply_c`` (default ``temperatures.min_consumer_supply_c``) and returns at
  ``temperatures.return_c``. With ``profile: true`` its hourly net heat is its column of ``year.site_profiles``
  (the plan's year, and the match's hourly load); in the plan its annual demand is that profile's sum.
- The concept study's demand is the network's sink (``network.sink``): its ``annual_demand_mwh`` spread by
  degree-hours with ``year.hot_water_share`` flat.
- Matching's heat pumps and the plan's pumping pay the year's mean electricity price.
- The network's year of operation decides what its sources send the sink in every hour; the concepts' dispatch
  holds them there (:func:`heatmap.energy.concept_network.source_links`), so the parts agree hour by hour.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import Field, PrivateAttr, field_validator, model_validator

from heatmap import settings
from heatmap._errors import InputDataError, ScenarioError
from heatmap.economics import HOURS_PER_YEAR
from heatmap.energy.energy_scenario import (
    Concepts,
    ElectricBoiler,
    ElectricityPrice,
    EnergyScenario,
    HourlyCsv,
    Id,
    SourceValues,
    StorageSpec,
    SupplyCurve,
    energy_scenario_from_dict,
    settings_from_file,
)
from heatmap.scenario import (
    MAX_CAPACITY_KW,
    MAX_PRICE_EUR_PER_MWH,
    FilePath,
    Scenario,
    SettingsModel,
    SourceRole,
    WorkingCrs,
)

if TYPE_CHECKING:
    import pandas as pd

    from heatmap.energy.matching import MatchScenario

logger = logging.getLogger(__name__)

KIND = "study"
"""The value of the top-level key ``kind`` that marks a study file."""


class _Located(SettingsModel):
    """Where a unit is: a plant of ``plants_csv``, a longitude and latitude, or the site of another unit."""

    id: Id
    name: str | None = Field(None, description="name shown on the maps")
    plant: str | None = Field(None, description="plant name in plants_csv (its approximate location)")
    lon: float | None = Field(None, ge=-180, le=180, description="longitude (WGS84)")
    lat: float | None = Field(None, ge=-90, le=90, description="latitude (WGS84)")
    at: Id | None = Field(None, description="id of another unit of the study standing at the same site")
    company: str | None = Field(None, description="company owning the unit (default its id)")
    network: bool = Field(False, description="on the network planned with the study (heatmap plan)")
    note: str | None = Field(None, description="where the figures come from (sourced or estimate)")

    @model_validator(mode="after")
    def _one_location(self) -> _Located:
        given = sum((self.plant is not None, self.lon is not None or self.lat is not None, self.at is not None))
        if given > 1 or (given == 1 and (self.lon is None) != (self.lat is None)):
            raise ValueError("give one location: plant, both lon and lat, or at (another unit's id)")
        return self

    @property
    def located(self) -> bool:
        """Whether the unit has a location."""
        return self.plant is not None or self.lon is not None or self.at is not None


class StudySource(_Located, SourceValues):
    """An excess-heat source of a study: where it is (:class:`_Located`) and what it is (``SourceValues``)."""

    role: SourceRole = Field("excess_heat", description="on the network: excess_heat runs first, backup the rest")

    @model_validator(mode="after")
    def _capacity(self) -> StudySource:
        if (self.capacity_kw is None) == (self.electric_input_kw is None):
            raise ValueError("give capacity_kw, or electric_input_kw for an electrolyser (one of the two)")
        return self


class StudyConsumer(_Located):
    """A heat user (and, with ``t_feed_in_c`` and a profile that sells, a prosumer)."""

    annual_demand_mwh: float = Field(ge=0, le=1e8, description="heat it uses per year (MWh/a)")
    shape: Literal["degree_hours", "flat"] = Field(
        "degree_hours", description="how the annual heat spreads over the hours without a profile"
    )
    peak_load_kw: float | None = Field(
        None, gt=0, le=MAX_CAPACITY_KW, description="design load (kW); for the network sink: the connection"
    )
    profile: bool = Field(
        False, description="its hourly net heat is its column of year.site_profiles (+ buys, − sells)"
    )
    t_supply_c: float | None = Field(
        None,
        gt=0,
        lt=200,
        description="lowest supply temperature it accepts (default temperatures.min_consumer_supply_c)",
    )
    t_feed_in_c: float | None = Field(None, gt=0, lt=200, description="temperature a prosumer feeds its heat in at")
    sink: bool = Field(True, description="a heat user that matching pairs with the sources")

    @model_validator(mode="after")
    def _demand(self) -> StudyConsumer:
        if self.sink and not self.profile and self.annual_demand_mwh <= 0:
            raise ValueError(
                "annual_demand_mwh is 0, and a sink (matched with the sources) needs a demand: give it, or sink: false"
            )
        most_mwh = (self.peak_load_kw or 0.0) * HOURS_PER_YEAR / 1000
        if self.peak_load_kw is not None and not self.profile and self.annual_demand_mwh > most_mwh * (1 + 1e-9):
            raise ValueError(
                f"annual_demand_mwh {self.annual_demand_mwh:,.6g} is more than peak_load_kw "
                f"{self.peak_load_kw:,.6g} kW can give in a year ({most_mwh:,.6g} MWh in {HOURS_PER_YEAR:g} h); raise "
                "peak_load_kw or lower the demand (check the units: kW, MWh/a)"
            )
        return self


class StudyBoiler(_Located):
    """A fuel boiler: the town's plants (no location needed) or a backup on the planned network."""

    fuel: str = Field(description="fuel name in the fuel table (data/fuels_fi.csv)")
    capacity_kw: float = Field(gt=0, le=MAX_CAPACITY_KW, description="heat output (kW)")
    efficiency: float = Field(gt=0, le=1.1, description="heat ÷ fuel (lower heating value; >1 with condensing)")
    om_eur_per_mwh: float = Field(0.0, ge=0, le=MAX_PRICE_EUR_PER_MWH, description="variable O&M per MWh of heat")
    t_supply_c: float | None = Field(None, gt=0, lt=200, description="water it heats to (default the curve's highest)")

    @field_validator("fuel")
    @classmethod
    def _known(cls, fuel: str) -> str:
        _check_fuels([fuel])
        return fuel


FUEL_TABLE = settings.data_dir / "fuels_fi.csv"
"""The fuel table a study's boilers burn from and its fuel prices replace prices of."""


@cache
def known_fuels() -> tuple[str, ...]:
    """Return the fuels of :data:`FUEL_TABLE`, in its order."""
    from heatmap.io.inputs import read_table

    return tuple(read_table(FUEL_TABLE, ["co2_t_per_tj", "price_eur_per_mwh"], index="fuel", what="fuel table").index)


def _check_fuels(fuels: Any) -> None:
    """Refuse fuels not in :data:`FUEL_TABLE` (at validation: before the study's network is planned)."""
    unknown = [f for f in fuels if f not in known_fuels()]
    if unknown:
        raise ValueError(
            f"fuel {', '.join(map(repr, unknown))} is not in the fuel table {FUEL_TABLE}; known: "
            f"{', '.join(known_fuels())}"
        )


class StudyYear(SettingsModel):
    """The year of the study: its hours, outdoor temperature, electricity price and the sites' own profiles."""

    year: int = Field(ge=1900, le=2100, description="calendar year of the hourly time stamps (8760 hours)")
    outdoor_temperature: HourlyCsv = Field(description="hourly outdoor temperature (°C)")
    electricity_price: HourlyCsv | ElectricityPrice = Field(description="€/MWh: one price, or an hourly CSV column")
    electricity_co2_t_per_mwh: float = Field(ge=0, le=1000, description="CO₂ counted per MWh of electricity bought")
    site_profiles: FilePath | None = Field(
        None, description="CSV with a time column and one column per consumer with profile: true (kW, + buys, − sells)"
    )
    base_temperature_c: float = Field(17.0, ge=5, le=25, description="base of the heating degree-hours (FMI S17)")
    hot_water_share: float = Field(0.2, ge=0, lt=1, description="share of a degree-hour site's heat drawn flat")
    electricity_price_scale: float = Field(
        1.0, gt=0, le=100, description="multiplies every hour's electricity price (1: as given; an ensemble's lever)"
    )
    note: str | None = None


class StudyTemperatures(SettingsModel):
    """One temperature regime for the dispatch, the sizing and every simulated hour."""

    supply_curve: SupplyCurve = Field(description="supply temperature by outdoor temperature (constant: max = min)")
    return_c: float = Field(gt=0, lt=100, description="return temperature of the network")
    ground_c: float = Field(gt=-10, lt=30, description="undisturbed ground temperature around buried pipes")
    approach_k: float = Field(5.0, ge=0, le=50, description="a source heats water to at most its temperature − this")
    min_consumer_supply_c: float = Field(
        70.0, gt=0, lt=200, description="lowest supply a consumer accepts, where it gives no t_supply_c"
    )

    @model_validator(mode="after")
    def _order(self) -> StudyTemperatures:
        if self.return_c >= self.supply_curve.min_c:
            raise ValueError(
                f"return_c ({self.return_c:g} °C) must be below supply_curve.min_c ({self.supply_curve.min_c:g} °C)"
            )
        return self


class StudyEconomics(SettingsModel):
    """Annualising investments and pricing CO₂, for every part of the study."""

    discount_rate: float = Field(ge=0, lt=1, description="real discount rate per year")
    lifetime_a: int = Field(gt=0, le=100, description="lifetime of the network and new equipment (years)")
    co2_price_eur_per_t: float = Field(0.0, ge=0, le=1e4, description="CO₂ allowance price added to fuel costs")
    fuel_prices_eur_per_mwh: dict[str, Annotated[float, Field(ge=0, le=1e4)]] = Field(
        default_factory=dict, description="fuel prices (€/MWh, by fuel name) replacing those of data/fuels_fi.csv"
    )

    @field_validator("fuel_prices_eur_per_mwh")
    @classmethod
    def _known(cls, prices: dict[str, float]) -> dict[str, float]:
        _check_fuels(prices)
        return prices

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "interest_rate" in data:
            raise ValueError("'interest_rate' is called 'discount_rate' in a study (one name in every part): rename it")
        return data


class StudyTrade(SettingsModel):
    """The prices of the heat bought and sold on the planned network over the year."""

    operator: str = Field(min_length=1, description="company running the network, counterparty of every sale")
    heat_price_eur_per_mwh: float = Field(ge=0, le=1e4, description="price a consumer pays per MWh of heat")
    feed_in_price_eur_per_mwh: float = Field(
        ge=0, le=1e4, description="price paid per MWh fed in (prosumers, sources without a heat price)"
    )
    own_sites_heat_value_eur_per_mwh: float | None = Field(
        None,
        ge=0,
        le=1e4,
        description="value of the heat delivered to the operator's own sites (e.g. the production cost it avoids); "
        "absent: counted at 0 in the network's revenue, and the summary says so",
    )


class StudyNetwork(SettingsModel):
    """The network planned with the study, and how the concept study's demand reaches it.

    ``streets``, ``links``, ``limits`` and ``network`` are the sections of the same name of a plan scenario
    (:mod:`heatmap.scenario`), checked as a plan scenario checks them.
    """

    sink: Id = Field(description="consumer where the concept study's demand is delivered")
    heat_loss_coefficient_w_per_k: float = Field(ge=0, le=1e9, description="UA of the grid behind the sink (estimate)")
    plan_losses: Literal["add", "replace"] = Field(
        "add", description="add the planned network's UA to the estimate (a connection) or replace it (whole grid)"
    )
    streets: dict[str, Any] = Field(description="where the candidate streets come from (as in a plan scenario)")
    links: dict[str, Any] = Field(default_factory=dict, description="candidate links (as in a plan scenario)")
    limits: dict[str, Any] = Field(default_factory=dict, description="hydraulic limits (as in a plan scenario)")
    network: dict[str, Any] = Field(default_factory=dict, description="pipes and model (as in a plan scenario)")


class StudyMatching(SettingsModel):
    """Matching settings (:class:`heatmap.energy.matching.MatchingSettings`) and the chosen pairs (``plan``).

    The CRS, approach, discount rate, lifetime and electricity price come from the study.
    """

    model_config = SettingsModel.model_config | {"extra": "allow"}
    plan: dict[str, Any] | None = Field(None, description="the chosen pairs to plan (as a matching scenario's plan)")


class Study(SettingsModel):
    """A study: the year, one temperature regime, the prices, every unit once, the network, concepts, matching."""

    kind: Literal["study"] = Field(description="marks a study file")
    name: str = Field(min_length=1)
    crs: WorkingCrs = Field(
        "EPSG:3067", description="metric CRS of all geometry work, true to scale (within 1 %) at the study's sites"
    )
    plants_csv: FilePath | None = Field(None, description="plants with their (approximate) locations")
    year: StudyYear
    temperatures: StudyTemperatures
    economics: StudyEconomics
    trade: StudyTrade | None = Field(None, description="prices of the network's year (needed with a network)")
    sources: list[StudySource] = Field(default_factory=list)
    consumers: list[StudyConsumer] = Field(default_factory=list)
    boilers: list[StudyBoiler] = Field(default_factory=list)
    electric_boilers: list[ElectricBoiler] = Field(default_factory=list)
    storages: list[StorageSpec] = Field(default_factory=list)
    network: StudyNetwork | None = None
    concepts: Concepts = Field(default_factory=list)
    matching: StudyMatching | None = None
    _path: Path | None = PrivateAttr(default=None)
    _base_dir: Path = PrivateAttr(default=Path("."))

    def _warn_of_magnitudes(self) -> None:
        """Log prices and factors a thousand times off (a unit of kWh or g where MWh or t is meant); still used."""
        y, hint = self.year, "check the unit"
        if y.electricity_co2_t_per_mwh > MAX_PLAUSIBLE_CO2_T_PER_MWH:
            logger.warning(
                "year.electricity_co2_t_per_mwh is %g t/MWh, above %g (coal power emits about 1): %s (t/MWh = kg/kWh, "
                "not g/kWh)", y.electricity_co2_t_per_mwh, MAX_PLAUSIBLE_CO2_T_PER_MWH, hint,
            )  # fmt: skip
        prices = {
            f"economics.fuel_prices_eur_per_mwh.{k}": v for k, v in self.economics.fuel_prices_eur_per_mwh.items()
        }
        if not isinstance(y.electricity_price, HourlyCsv):
            prices["year.electricity_price"] = y.electricity_price
        for key, price in prices.items():
            if 0 < abs(price) < MIN_PLAUSIBLE_PRICE_EUR_PER_MWH:
                logger.warning("%s is %g €/MWh: %s (€/MWh, not €/kWh)", key, price, hint)

    @model_validator(mode="after")
    def _references(self) -> Study:
        units: list[StudySource | StudyConsumer | StudyBoiler] = [*self.sources, *self.consumers, *self.boilers]
        ids = [*(u.id for u in units), *(e.id for e in self.electric_boilers), *(s.id for s in self.storages)]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"every unit needs its own id; repeated: {', '.join(dup)}")
        known = {u.id for u in units}
        for u in units:
            if u.at is not None and (u.at not in known or u.at == u.id):
                raise ValueError(f"{u.id}: at {u.at!r} names no other unit of the study")
            if u.network and not u.located:
                raise ValueError(f"{u.id} is on the network and needs a location: plant, lon and lat, or at")
        if self.network is not None:
            sink = next((c for c in self.consumers if c.id == self.network.sink), None)
            if sink is None or not sink.network:
                raise ValueError(
                    f"network.sink {self.network.sink!r} must be a consumer of the study with network: true"
                )
            if self.trade is None:
                raise ValueError("a study with a network needs trade (the prices of the network's year)")
        if any(c.profile for c in self.consumers) and self.year.site_profiles is None:
            raise ValueError("consumers with profile: true need year.site_profiles")
        self._warn_of_magnitudes()
        hottest = self.temperatures.supply_curve.max_c
        if self.temperatures.min_consumer_supply_c > hottest:
            raise ValueError(
                f"temperatures.min_consumer_supply_c ({self.temperatures.min_consumer_supply_c:g} °C) is above "
                f"temperatures.supply_curve.max_c ({hottest:g} °C), the hottest the network ever supplies"
            )
        too_hot = [c for c in self.consumers if c.network and c.t_supply_c is not None and c.t_supply_c > hottest]
        if too_hot:
            raise ValueError(
                f"consumers {', '.join(f'{c.id} ({c.t_supply_c:g} °C)' for c in too_hot)} need a supply above "
                f"temperatures.supply_curve.max_c ({hottest:g} °C), the hottest the network ever supplies; lower "
                "their t_supply_c or raise the curve"
            )
        return self

    @property
    def path(self) -> Path | None:
        """The study file, if read from one."""
        return self._path

    def unit(self, uid: str) -> StudySource | StudyConsumer | StudyBoiler:
        """Return the source, consumer or boiler of that id."""
        units: list[StudySource | StudyConsumer | StudyBoiler] = [*self.sources, *self.consumers, *self.boilers]
        return next(u for u in units if u.id == uid)

    @cached_property
    def _plants(self) -> pd.DataFrame:
        from heatmap.io.inputs import read_plants

        assert self.plants_csv is not None  # lonlat reads the plants only after checking the study has them
        return read_plants(self.plants_csv)

    def lonlat(self, uid: str) -> tuple[float, float]:
        """Return a unit's longitude and latitude (its plant's, its own, or those of the unit it stands ``at``)."""
        u = self.unit(uid)
        seen = {uid}
        while u.at is not None:
            if u.at in seen:
                raise ScenarioError(f"{self._origin}: {uid}: the units' 'at' go round in a circle ({', '.join(seen)})")
            seen.add(u.at)
            u = self.unit(u.at)
        if u.plant is None:
            if u.lon is None:
                raise ScenarioError(f"{self._origin}: {uid} has no location; give plant, lon and lat, or at")
            assert u.lat is not None  # _one_location: lon and lat come together
            return float(u.lon), float(u.lat)
        if self.plants_csv is None:
            raise ScenarioError(f"{self._origin}: {u.id} names plant {u.plant!r} but the study has no plants_csv")
        if u.plant not in self._plants.index:
            raise ScenarioError(
                f"{self._origin}: {u.id}: plant {u.plant!r} is not in {self.plants_csv}; known: "
                f"{', '.join(self._plants.index)}"
            )
        p = self._plants.loc[u.plant]
        if p.isna()[["lat", "lon"]].any():
            raise ScenarioError(f"{self._origin}: {u.id}: plant {u.plant!r} has no coordinates; give lon and lat")
        return float(p.lon), float(p.lat)

    def check_crs(self) -> None:
        """Refuse a ``crs`` not true to scale at the study's sites (the check of every command's working CRS).

        Raises
        ------
        heatmap._errors.ScenarioError
            Naming the file, the key ``crs``, how much it distorts and the CRS to give.
        """
        from heatmap.io.crs import check_scale

        units: list[StudySource | StudyConsumer | StudyBoiler] = [*self.sources, *self.consumers, *self.boilers]
        sites = [self.lonlat(u.id) for u in units if u.located]
        if sites:
            lon, lat = zip(*sites, strict=True)
            check_scale(self.crs, lon, lat, key="'crs'", where=self._origin, error=ScenarioError)

    @property
    def _origin(self) -> str:
        return str(self._path) if self._path is not None else "study"


def is_study(path: str | Path) -> bool:
    """Whether a YAML file is a study (its top level has ``kind: study``); ``False`` for anything unreadable.

    Raises
    ------
    heatmap._errors.ScenarioError
        Where ``path`` is no file to read (a loop of symbolic links, a FIFO, a device): naming it (a folder is
        told by the reader).
    """
    from heatmap.io.paths import refuse_special

    refuse_special(path, "the scenario file given to the command", error=ScenarioError, folder_ok=True)
    try:
        with open(path, encoding="utf-8") as f:
            head = f.read(65536)
    except (OSError, UnicodeDecodeError):
        return False
    return any(line.strip().replace('"', "").replace("'", "") == f"kind: {KIND}" for line in head.splitlines())


def read_study(path: str | Path) -> Study:
    """Read and validate a study file (YAML); errors name the file, its line and the key.

    Parameters
    ----------
    path
        The study file.

    Returns
    -------
    Study
    """
    study, _ = settings_from_file(path, Study)
    study._path = Path(path).resolve()
    study.check_crs()
    logger.info(
        "Read study %s: %d sources, %d consumers, %d concepts",
        path, len(study.sources), len(study.consumers), len(study.concepts),
    )  # fmt: skip
    return study


# ------------------------------------------------------------------------------------------ derived models ---


def _presets(study: Study) -> pd.DataFrame:
    from heatmap import settings
    from heatmap.energy.excess_heat import read_presets

    return read_presets(settings.data_dir / "excess_heat_presets.csv")


def _source_value(study: Study, s: StudySource, name: str, presets: pd.DataFrame) -> float:
    """Return a source's value, from the study or else its preset (errors name the source and the value)."""
    value = getattr(s, name)
    if value is not None:
        return float(value)
    if s.preset is not None:
        if s.preset not in presets.index:
            raise ScenarioError(f"{study._origin}: sources[{s.id}].preset {s.preset!r} unknown; known: "
                                f"{', '.join(presets.index)}")  # fmt: skip
        v = presets.loc[s.preset].get(name)
        if v is not None and v == v:
            return float(v)
    raise ScenarioError(f"{study._origin}: sources[{s.id}]: {name} missing (give it, or a preset that has it)")


def source_capacity_kw(study: Study, s: StudySource, presets: pd.DataFrame | None = None) -> float:
    """Return a source's heat at full availability: ``capacity_kw``, or electric input × heat share."""
    if s.capacity_kw is not None:
        return float(s.capacity_kw)
    presets = _presets(study) if presets is None else presets
    assert s.electric_input_kw is not None  # StudySource._capacity: capacity_kw or electric_input_kw
    return float(s.electric_input_kw) * _source_value(study, s, "heat_share_of_electric_input", presets)


def _constant_availability(study: Study, s: StudySource, presets: pd.DataFrame) -> float:
    """Return a source's availability where it is one number (the plan's capacity is the heat it has), else 1."""
    if isinstance(s.availability, HourlyCsv | list):
        return 1.0
    if s.availability is not None:
        return float(s.availability)
    try:
        return _source_value(study, s, "availability", presets)
    except ScenarioError:
        return 1.0


def _hourly_csv(h: HourlyCsv) -> dict[str, str]:
    return {"csv": str(h.csv), "column": h.column}


MIN_PLAUSIBLE_PRICE_EUR_PER_MWH = 1.0
"""A fuel or electricity price (or a year's mean) below this in size is warned of: given in €/kWh, most likely."""
MAX_PLAUSIBLE_CO2_T_PER_MWH = 2.0
"""An electricity CO₂ factor above this is warned of: given in g/kWh where t/MWh is meant, most likely."""
PROFILE_MISMATCH_SHARE = 0.05
"""A consumer's site profile whose year differs from its stated annual demand by more than this share is warned of
(not the network's sink, whose demand is the town's behind its connection, nor a prosumer, which sells too)."""


def _profile_sums_mwh(study: Study, ids: list[str]) -> dict[str, float]:
    """Net annual heat (MWh) of the consumers' site-profile columns.

    A column of nothing is refused; one off its consumer's stated annual demand is warned of
    (:data:`PROFILE_MISMATCH_SHARE`).
    """
    if not ids:
        return {}
    from heatmap.demand.climate import year_index
    from heatmap.demand.profiles import read_hourly_table

    assert study.year.site_profiles is not None  # Study._references: consumers with profile need site_profiles
    table = read_hourly_table(
        study.year.site_profiles, ids, year_index(study.year.year), lower=-1e7, upper=1e7, what="site profiles"
    )
    sums = {c: float(table[c].clip(lower=0).sum() / 1000) for c in ids}
    where = study.year.site_profiles
    for c in ids:
        stated = study.unit(c).annual_demand_mwh  # type: ignore[union-attr]  # the ids are consumers'
        if sums[c] <= 0 and not (table[c] < 0).any():
            raise ScenarioError(
                f"{where}: column {c} is 0 in every hour, so consumer {c} (annual_demand_mwh {stated:,.6g}) draws "
                "nothing; fill the profile, or give the consumer profile: false"
            )
        # the network's sink states the demand behind its connection, a prosumer what it buys less what it sells
        sink = study.network is not None and study.network.sink == c
        if (
            stated > 0
            and not sink
            and not (table[c] < 0).any()
            and abs(sums[c] - stated) > PROFILE_MISMATCH_SHARE * stated
        ):
            logger.warning(
                "%s: column %s buys %s MWh over the year, and consumer %s states annual_demand_mwh %s; the profile "
                "is used (the stated demand only where there is none): check one or the other",
                where, c, f"{sums[c]:,.6g}", c, f"{stated:,.6g}",
            )  # fmt: skip
    return sums


def mean_electricity_price(study: Study, *, warn: bool = False) -> float:
    """Return the year's mean electricity price (€/MWh): what one price per MWh stands for (pumping, matching).

    ``warn``: log a mean a thousand times too small (:data:`MIN_PLAUSIBLE_PRICE_EUR_PER_MWH`; once per run).
    """
    price, scale = study.year.electricity_price, study.year.electricity_price_scale
    if not isinstance(price, HourlyCsv):
        return float(price) * scale
    from heatmap.demand.climate import year_index
    from heatmap.demand.profiles import read_hourly

    index = year_index(study.year.year)
    hourly = read_hourly(price.csv, price.column, index, lower=-500, upper=5000, what="electricity-price")
    if warn and 0 < abs(hourly.mean()) < MIN_PLAUSIBLE_PRICE_EUR_PER_MWH:
        logger.warning(
            "%s: the electricity price's mean is %g €/MWh: check the unit (€/MWh, not €/kWh)",
            hourly.attrs.get("where", price.csv), hourly.mean(),
        )  # fmt: skip
    return float(hourly.mean()) * scale


def _site(study: Study, unit: StudySource | StudyConsumer | StudyBoiler) -> dict[str, Any]:
    """Return what every site on the plan has: its id, name, longitude, latitude and company."""
    lon, lat = study.lonlat(unit.id)
    return {"id": unit.id, "name": unit.name or unit.id, "lon": lon, "lat": lat, "company": unit.company or unit.id}


def _check_warm_enough(
    study: Study,
    sources: list[StudySource],
    boilers: list[StudyBoiler],
    consumers: list[StudyConsumer],
    presets: pd.DataFrame,
) -> None:
    """Refuse a network source or boiler colder than every consumer needs, naming the study's own settings."""
    t = study.temperatures
    need = min((c.t_supply_c if c.t_supply_c is not None else t.min_consumer_supply_c for c in consumers), default=0.0)
    hint = "(temperatures.min_consumer_supply_c or the consumers' t_supply_c)"
    for s in sources:
        temperature = _source_value(study, s, "temperature_c", presets)
        if temperature - t.approach_k < need:
            given = "its temperature_c" if s.temperature_c is not None else "its preset's temperature"
            raise ScenarioError(
                f"source {s.id} heats the network's water to at most {temperature - t.approach_k:g} °C ({given} "
                f"{temperature:g} °C less temperatures.approach_k {t.approach_k:g} K), colder than the {need:g} °C "
                f"every consumer needs {hint}; lower approach_k or the consumers' minimum, or give the source a heat "
                "pump and network: false"
            )
    for b in boilers:
        if b.t_supply_c is not None and b.t_supply_c < need:
            raise ScenarioError(
                f"boiler {b.id} supplies {b.t_supply_c:g} °C, colder than the {need:g} °C every "
                f"consumer needs {hint}; raise its t_supply_c (or leave it out: it then heats to the curve's highest)"
            )


def plan_data(study: Study) -> dict[str, Any]:
    """Derive the plan scenario of the study's network, as the mapping a plan scenario file holds.

    Sources: the study's sources and boilers with ``network: true``; consumers: its consumers with ``network: true``;
    the year of operation at the trade's prices. A consumer with a profile draws it, its annual demand in the plan
    being the profile's purchases (so that the plan's figures are what goes through the network).
    """
    if study.network is None:
        raise ScenarioError(
            f"{study._origin}: the study has no network section; its network plan (heatmap plan, heatmap study) "
            f"needs one"
        )
    t, net, trade = study.temperatures, study.network, study.trade
    assert trade is not None  # Study._references: a study with a network has trade
    presets = _presets(study)
    sources: list[dict[str, Any]] = [
        {
            **_site(study, s),
            "capacity_kw": source_capacity_kw(study, s, presets) * _constant_availability(study, s, presets),
            "t_supply_c": min(_source_value(study, s, "temperature_c", presets) - t.approach_k, t.supply_curve.max_c),
            "role": s.role,
            "heat_price_eur_per_mwh": _source_value(study, s, "heat_price_eur_per_mwh", presets),
        }
        for s in study.sources
        if s.network
    ]
    sources += [
        {
            **_site(study, b),
            "capacity_kw": b.capacity_kw,
            "t_supply_c": b.t_supply_c if b.t_supply_c is not None else t.supply_curve.max_c,
            "role": "backup",
        }
        for b in study.boilers
        if b.network
    ]
    on_net = [c for c in study.consumers if c.network]
    _check_warm_enough(study, [s for s in study.sources if s.network], [b for b in study.boilers if b.network],
                       on_net, presets)  # fmt: skip
    sums = _profile_sums_mwh(study, [c.id for c in on_net if c.profile])
    consumers = []
    for c in on_net:
        row: dict[str, Any] = {
            **_site(study, c),
            "annual_demand_mwh": sums.get(c.id, c.annual_demand_mwh),
            "min_supply_c": c.t_supply_c if c.t_supply_c is not None else t.min_consumer_supply_c,
        }
        if c.peak_load_kw is not None:
            row["peak_load_kw"] = c.peak_load_kw
        if c.t_feed_in_c is not None:
            row["t_feed_in_c"] = c.t_feed_in_c
        consumers.append(row)
    y = study.year
    operation: dict[str, Any] = {
        "year": y.year,
        "outdoor_temperature": _hourly_csv(y.outdoor_temperature),
        "base_temperature_c": y.base_temperature_c,
        "hot_water_share": y.hot_water_share,
        "heat_price_eur_per_mwh": trade.heat_price_eur_per_mwh,
        "feed_in_price_eur_per_mwh": trade.feed_in_price_eur_per_mwh,
        "operator": trade.operator,
    }
    if trade.own_sites_heat_value_eur_per_mwh is not None:
        operation["own_sites_heat_value_eur_per_mwh"] = trade.own_sites_heat_value_eur_per_mwh
    if sums:
        operation["site_profiles"] = str(y.site_profiles)
    return {
        "name": f"{study.name} — network",
        "study_area": {"crs": study.crs},
        "streets": dict(net.streets),
        "links": dict(net.links),
        "sources": {"inline": sources},
        "consumers": {"inline": consumers},
        "temperatures": {
            "supply_c": max(s["t_supply_c"] for s in sources) if sources else t.supply_curve.max_c,
            "return_c": t.return_c,
            "ground_c": t.ground_c,
            "min_consumer_supply_c": t.min_consumer_supply_c,
            "supply_curve": t.supply_curve.model_dump(),
        },
        "limits": dict(net.limits),
        "network": dict(net.network),
        "economics": {
            "discount_rate": study.economics.discount_rate,
            "lifetime_a": study.economics.lifetime_a,
            "electricity_price_eur_per_mwh": mean_electricity_price(study, warn=True),
        },
        "operation": operation,
    }


def energy_data(study: Study) -> dict[str, Any]:
    """Derive the concept scenario of the study, as the mapping a concept scenario file holds.

    Its demand is the network sink's (``annual_demand_mwh`` by degree-hours, ``year.hot_water_share`` flat); its
    network is the study's own (``network.plan`` names the study file).
    """
    if not study.concepts:
        raise ScenarioError("the study has no concepts; give at least one under 'concepts:' (each names its units)")
    t, y = study.temperatures, study.year
    if study.network is None:
        raise ScenarioError(f"{study._origin}: the concepts need network.sink (the consumer whose demand they serve)")
    sink = study.unit(study.network.sink)
    assert isinstance(sink, StudyConsumer)  # Study._references: network.sink is a consumer of the study
    if sink.shape != "degree_hours":
        raise ScenarioError(f"{study._origin}: the sink {sink.id} of the concepts needs shape: degree_hours")
    network: dict[str, Any] = {
        "heat_loss_coefficient_w_per_k": study.network.heat_loss_coefficient_w_per_k,
        "return_c": t.return_c,
        "ground_c": t.ground_c,
        "supply": t.supply_curve.model_dump(exclude_unset=True),
        "approach_k": t.approach_k,
    }
    if study.path is not None:
        network |= {"plan": str(study.path), "plan_losses": study.network.plan_losses, "sink": sink.id}
    price = y.electricity_price
    sources = []
    for s in study.sources:
        row = s.model_dump(
            include={
                "id", "name", "preset", "capacity_kw", "electric_input_kw", "heat_share_of_electric_input",
                "temperature_c", "heat_price_eur_per_mwh", "hx_cost_eur_per_kw", "published_mwh_per_a",
                "published_note", "plant",
            },
            exclude_none=True,
        )  # fmt: skip
        if s.availability is not None:
            row["availability"] = (
                _hourly_csv(s.availability) if isinstance(s.availability, HourlyCsv) else s.availability
            )
        if s.heat_pump is not None:
            row["heat_pump"] = s.heat_pump.model_dump(exclude_unset=True)
        sources.append(row)
    data: dict[str, Any] = {
        "name": study.name,
        "year": y.year,
        "outdoor_temperature": _hourly_csv(y.outdoor_temperature),
        "electricity": {
            "price": _hourly_csv(price) if isinstance(price, HourlyCsv) else price,
            "co2_t_per_mwh": y.electricity_co2_t_per_mwh,
        }
        | ({"price_scale": y.electricity_price_scale} if "electricity_price_scale" in y.model_fields_set else {}),
        "demand": {
            "annual_mwh": sink.annual_demand_mwh,
            "hot_water_share": y.hot_water_share,
            "base_temperature_c": y.base_temperature_c,
            "note": f"the demand of {sink.name or sink.id} (study consumer {sink.id})",
        },
        "network": network,
        "economics": study.economics.model_dump(exclude_unset=True, exclude={"fuel_prices_eur_per_mwh"}),
        "sources": sources,
        "boilers": [
            b.model_dump(
                include={"id", "name", "fuel", "capacity_kw", "efficiency", "om_eur_per_mwh"}, exclude_unset=True
            )
            for b in study.boilers
        ],
        "electric_boilers": [e.model_dump(exclude_unset=True) for e in study.electric_boilers],
        "storages": [s.model_dump(exclude_unset=True) for s in study.storages],
        "concepts": [c.model_dump(exclude_unset=True) for c in study.concepts],
    }
    if study.plants_csv is not None:
        data["plants_csv"] = str(study.plants_csv)
    if study.economics.fuel_prices_eur_per_mwh:
        data["fuel_prices_eur_per_mwh"] = dict(study.economics.fuel_prices_eur_per_mwh)
    return data


def match_data(study: Study) -> dict[str, Any]:
    """Derive the matching scenario of the study: every located source against every consumer that is a sink."""
    m = study.matching.model_dump() if study.matching is not None else {}
    plan = m.pop("plan", None)
    t, y = study.temperatures, study.year
    settings = m | {
        "crs": study.crs,
        "approach_k": t.approach_k,
        "electricity_price_eur_per_mwh": mean_electricity_price(study),
        "discount_rate": study.economics.discount_rate,
        "lifetime_a": study.economics.lifetime_a,
    }
    presets = _presets(study)
    sources = []
    for s in study.sources:
        if not s.located:
            continue
        lon, lat = study.lonlat(s.id)
        row = {"id": s.id, "lon": lon, "lat": lat, "peak_kw": source_capacity_kw(study, s, presets)}
        row |= s.model_dump(
            include={"preset", "heat_price_eur_per_mwh", "hx_cost_eur_per_kw", "note"}, exclude_none=True
        )
        if s.temperature_c is not None:
            row["t_c"] = s.temperature_c
        if s.availability is not None:
            row["availability"] = (
                _hourly_csv(s.availability) if isinstance(s.availability, HourlyCsv) else s.availability
            )
        sources.append(row)
    sinks = []
    for c in study.consumers:
        if not c.sink or not c.located:
            continue
        lon, lat = study.lonlat(c.id)
        row = {
            "id": c.id,
            "lon": lon,
            "lat": lat,
            "t_c": c.t_supply_c if c.t_supply_c is not None else t.min_consumer_supply_c,
            "t_return_c": t.return_c,
        }
        if c.profile:
            row["profile"] = {"csv": str(y.site_profiles), "column": c.id}
        else:
            row |= {"annual_mwh": c.annual_demand_mwh, "shape": c.shape, "hot_water_share": y.hot_water_share,
                    "base_temperature_c": y.base_temperature_c}  # fmt: skip
        if c.peak_load_kw is not None:
            row["peak_kw"] = c.peak_load_kw
        if c.note is not None:
            row["note"] = c.note
        sinks.append(row)
    data: dict[str, Any] = {
        "name": f"{study.name} — matches",
        "year": y.year,
        "outdoor_temperature": _hourly_csv(y.outdoor_temperature),
        "settings": settings,
        "sources": sources,
        "sinks": sinks,
    }
    if plan is not None:
        data["plan"] = {"ground_c": t.ground_c} | plan
    return data


_T = TypeVar("_T")


def _derived(study: Study, what: str, build: Callable[[], _T]) -> _T:
    try:
        return build()
    except (ScenarioError, InputDataError) as exc:
        raise type(exc)(f"{study._origin} ({what} of the study): {exc}") from None


def plan_scenario(study: Study) -> Scenario:
    """Return the study's network as a :class:`heatmap.scenario.Scenario` (see :func:`plan_data`)."""
    from heatmap.scenario import scenario_from_dict

    return _derived(study, "network", lambda: scenario_from_dict(plan_data(study), base_dir=study._base_dir,
                                                                   path=study.path))  # fmt: skip


def energy_scenario(study: Study) -> EnergyScenario:
    """Return the study's concepts as an :class:`~heatmap.energy.energy_scenario.EnergyScenario` (energy_data)."""

    def build() -> EnergyScenario:
        scn = energy_scenario_from_dict(energy_data(study), base_dir=study._base_dir, origin="concepts")
        scn._path = study.path
        return scn

    return _derived(study, "concepts", build)


def match_scenario(study: Study) -> MatchScenario:
    """Return the study's matching as a :class:`heatmap.energy.matching.MatchScenario` (see :func:`match_data`)."""
    from heatmap.energy.matching import MatchScenario

    def build() -> MatchScenario:
        scn = energy_scenario_from_dict(match_data(study), base_dir=study._base_dir, origin="matches",
                                        model=MatchScenario)  # fmt: skip
        scn._path = study.path
        return scn

    return _derived(study, "matches", build)


def plan_scenario_from_file(path: str | Path) -> Scenario:
    """Read the plan scenario of a file: a plan scenario, or the network of a study."""
    from heatmap.scenario import scenario_from_file

    if is_study(path):
        return plan_scenario(read_study(path))
    return scenario_from_file(path)


def energy_scenario_from_file(path: str | Path) -> EnergyScenario:
    """Read the concept scenario of a file: a concept scenario, or the concepts of a study."""
    from heatmap.energy import energy_scenario as es

    if is_study(path):
        return energy_scenario(read_study(path))
    return es.energy_scenario_from_file(path)


def matching_scenario_from_file(path: str | Path) -> MatchScenario:
    """Read the matching scenario of a file: a matching scenario, or the matching of a study."""
    from heatmap.energy import matching

    if is_study(path):
        return match_scenario(read_study(path))
    return matching.matching_scenario_from_file(path)
