"""Excess-heat concepts compared over a year (``heatmap concepts``): conducts the stages and writes the outputs.

scenario (and the plan of its network, ``network.plan``: :mod:`heatmap.energy.concept_network`) → hourly inputs
(outdoor temperature, heating curve, demand, network losses, electricity price) →
sources resolved from their presets → per concept: producers and storages → one LP each
(:mod:`heatmap.energy.dispatch`) → yearly figures, costs, CO₂ → regional impact against the reference (boilers only,
:mod:`heatmap.energy.impact`) → hourly dispatch CSVs, comparison and impact tables, plots, ``summary.json``,
and with a planned network its GeoPackage and maps (``network/``) and the concepts map (``map.html``).

Everything is written into a temporary folder beside the output folder and swapped into place only when all
files are complete (:func:`heatmap.io.output_folder.write_atomically`).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from heatmap import __version__
from heatmap._errors import ScenarioError
from heatmap.demand.climate import network_losses_kw, supply_temperature_c, year_index
from heatmap.energy.concept_network import (
    AGREEMENT_RULE,
    PUMPING_RULE,
    PlannedNetwork,
    SourceLink,
    heat_loss_coefficient,
    hour_agreement,
    network_costs,
    network_summary,
    planned_network,
    source_links,
)
from heatmap.energy.dispatch import DispatchResult, Producer, Storage, dispatch_figures, solve_dispatch
from heatmap.energy.energy_scenario import (
    REFERENCE_NAME,
    Concept,
    EnergyScenario,
    Source,
    assumptions,
    concept_slug,
    heat_pump_problem,
)
from heatmap.energy.excess_heat import availability_hourly, read_presets, source_producer
from heatmap.io.inputs import read_plants, read_table

if TYPE_CHECKING:
    from heatmap.io.outputs import PlanLike

logger = logging.getLogger(__name__)

MWH_PER_TJ = 1 / 3.6 * 1000  # 277.78 MWh per TJ
BINDING_KW = 1e-3
"""A bound holds with equality (binds) in an hour when the dispatch is within this of it (kW)."""
PUBLISHED_SHORTFALL = 0.8
"""A source whose capacity × availability gives less than this share of its published delivery is warned of (it
cannot have delivered what was published: a capacity or availability too low, or a published figure of another
thing)."""
UNSERVED_TOLERANCE_MWH = 1e-3
"""A concept leaving more heat than this unserved over the year is reported as too small: its costs are left out
of every comparison (NaN), since it is cheaper only by not delivering (see :class:`ConceptResult`)."""


@dataclass
class Year:
    """The hourly inputs shared by every concept.

    ``losses_kw`` are the network's losses with the planned network (the UA :func:`heat_loss_coefficient` uses);
    ``losses_without_plan_kw`` those of a concept that does not use the planned network (``network.plan_losses:
    add``: the estimate's UA alone; otherwise the same as ``losses_kw``).
    """

    index: pd.DatetimeIndex
    outdoor_c: np.ndarray
    supply_c: np.ndarray
    demand_kw: np.ndarray
    losses_kw: np.ndarray
    price_eur_per_mwh: np.ndarray
    heat_loss_coefficient_w_per_k: float
    losses_without_plan_kw: np.ndarray | None = None

    def losses_for(self, uses_plan: bool) -> np.ndarray:
        """Return the hourly network losses (kW) of a concept that uses the planned network or not."""
        if uses_plan or self.losses_without_plan_kw is None:
            return self.losses_kw
        return self.losses_without_plan_kw


@dataclass
class ResolvedSource:
    """A source with every value filled in (from the scenario or its preset) and its hourly availability."""

    id: str
    kind: str | None
    capacity_kw: float
    temperature_c: float
    availability: np.ndarray
    heat_price_eur_per_mwh: float
    hx_cost_eur_per_kw: float
    heat_pump: dict | None
    published_mwh_per_a: float | None
    published_note: str | None
    origins: dict[str, str] = field(default_factory=dict)
    location: dict[str, Any] = field(default_factory=dict)

    @property
    def available_mwh(self) -> float:
        """Heat the source can give over the year (capacity × availability)."""
        return float(self.capacity_kw * self.availability.sum() / 1000.0)


@dataclass
class ConceptResult:
    """One concept's year.

    ``total_cost_eur`` is what the concept costs: its units' operation, the annualised investments (the planned
    network's among them where the concept uses it) and the planned network's pumping electricity; the LP's
    penalty for unserved heat is not money and is left out. A concept that leaves heat unserved (``costs_comparable``
    false) would look cheaper only because it delivers less: the comparison and the regional impact report its
    total cost, cost of heat and savings as NaN and the command warns.
    """

    name: str
    description: str
    dispatch: DispatchResult
    figures: dict[str, Any]
    investments: list[dict[str, Any]]
    annualised_investment_eur: float
    co2_t: float
    electricity_co2_t: float
    total_cost_eur: float
    delivered_mwh: float
    unusable_sources: list[str] = field(default_factory=list)
    uses_plan: bool = False
    """Whether the concept uses the planned network (one of its sources is a source of the plan)."""
    pumping_mwh: float = 0.0
    pumping_cost_eur: float = 0.0
    planned_losses_mwh: float = 0.0
    losses_cost_eur: float = 0.0
    """What producing the network's losses cost (each hour's losses at that hour's average production cost); it is
    part of the operating cost, not added to it."""
    stops: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    """Per excess-heat source of the concept, the hours it cannot give what it has and why (:func:`stop_hours`)."""
    network_bounds: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per source linked to the planned network (:class:`heatmap.energy.concept_network.SourceLink`): its heat, the
    others' share and the hours each bound binds."""

    @property
    def unserved_mwh(self) -> float:
        """Heat the concept's units could not deliver over the year (MWh)."""
        return float(self.figures["unserved_mwh"])

    @property
    def costs_comparable(self) -> bool:
        """Whether the concept delivers all the heat (within :data:`UNSERVED_TOLERANCE_MWH`)."""
        return self.unserved_mwh <= UNSERVED_TOLERANCE_MWH


@dataclass
class ConceptStudy:
    """All concepts of a scenario, their comparison and their regional impact."""

    scenario: EnergyScenario
    year: Year
    sources: list[ResolvedSource]
    fuels: pd.DataFrame
    results: list[ConceptResult]
    comparison: pd.DataFrame
    units: pd.DataFrame
    impact: pd.DataFrame
    calibration: pd.DataFrame
    network: PlannedNetwork | None = None
    heat_loss: dict[str, Any] = field(default_factory=dict)
    """The network UA used for the hourly losses, the values it comes from and the rule (see
    :func:`heatmap.energy.concept_network.heat_loss_coefficient`)."""
    links: dict[str, SourceLink] = field(default_factory=dict)
    """The study's sources the planned network carries to its sink, with their hourly bounds."""


def year_inputs(scn: EnergyScenario, *, heat_loss_coefficient_w_per_k: float | None = None) -> Year:
    """Read and derive the hourly inputs: outdoor temperature, supply temperature, demand, losses, price.

    The hourly network losses use ``heat_loss_coefficient_w_per_k`` (W/K), by default the scenario's
    ``network.heat_loss_coefficient_w_per_k``.
    """
    ua = heat_loss_coefficient_w_per_k
    if ua is None:
        ua = scn.network.heat_loss_coefficient_w_per_k
    from heatmap.demand.profiles import hourly_load_kw, read_hourly

    index = year_index(scn.year)
    T = len(index)
    t = scn.outdoor_temperature
    outdoor_series = read_hourly(
        scn.path(t.csv), t.column, index, lower=-70, upper=50, what="outdoor-temperature", hint=" (°C expected)"
    )
    outdoor = outdoor_series.to_numpy()
    supply = supply_temperature_c(
        outdoor,
        max_c=scn.network.supply.max_c,
        min_c=scn.network.supply.min_c,
        outdoor_at_max_c=scn.network.supply.outdoor_at_max_c,
        outdoor_at_min_c=scn.network.supply.outdoor_at_min_c,
    )
    d = scn.demand
    if d.profile is not None:
        demand = read_hourly(
            scn.path(d.profile.csv), d.profile.column, index, lower=0, upper=1e9, what="demand"
        ).to_numpy()
    else:
        assert d.annual_mwh is not None  # Demand's validator: annual_mwh where there is no profile
        demand = hourly_load_kw(
            d.annual_mwh * (1 - d.hot_water_share),
            d.annual_mwh * d.hot_water_share,
            outdoor_series,
            base_temperature_c=d.base_temperature_c,
        )
    losses = network_losses_kw(
        supply,
        return_c=scn.network.return_c,
        ground_c=scn.network.ground_c,
        heat_loss_coefficient_w_per_k=ua,
    )
    p = scn.electricity.price
    if isinstance(p, float | int):
        price = np.full(T, float(p))
    else:
        price = read_hourly(
            scn.path(p.csv), p.column, index, lower=-500, upper=5000, what="electricity-price"
        ).to_numpy()
    price = price * scn.electricity.price_scale
    if not demand.sum() > 0:
        raise ScenarioError(
            f"{scn.path(d.profile.csv) if d.profile is not None else scn.file}: the demand is 0 in every hour; give "
            "the consumers' hourly demand in kW (or demand.annual_mwh)"
        )
    if losses.sum() > demand.sum():
        logger.warning(
            "%s: the network loses more heat over the year (%.0f MWh) than its consumers draw (%.0f MWh): a demand "
            "profile in MW given as kW, or network.heat_loss_coefficient_w_per_k too large?",
            scn.path(d.profile.csv) if d.profile is not None else scn.file, losses.sum() / 1000, demand.sum() / 1000,
        )  # fmt: skip
    logger.info(
        "Year %d: demand %.0f MWh (peak %.0f kW), network losses %.0f MWh, mean price %.1f €/MWh",
        scn.year, demand.sum() / 1000, demand.max(), losses.sum() / 1000, price.mean(),
    )  # fmt: skip
    return Year(index, outdoor, supply, np.asarray(demand, dtype=float), losses, price, float(ua))


def read_fuels(path: Path, prices_eur_per_mwh: dict[str, float] | None = None) -> pd.DataFrame:
    """Read the fuel table (indexed by ``fuel``): CO₂ per TJ and price per MWh.

    ``prices_eur_per_mwh`` replaces the table's price of the fuels it names (a scenario's
    ``fuel_prices_eur_per_mwh``); a fuel not in the table is refused, naming the known ones.
    """
    columns = ["co2_t_per_tj", "price_eur_per_mwh"]
    fuels = read_table(path, columns, index="fuel", what="fuel table", numeric=columns)
    fuels["co2_t_per_mwh"] = fuels.co2_t_per_tj / MWH_PER_TJ
    if prices_eur_per_mwh:  # the table's prices may be whole numbers: held as floats to take any price
        fuels["price_eur_per_mwh"] = fuels.price_eur_per_mwh.astype(float)
    for fuel, price in (prices_eur_per_mwh or {}).items():
        if fuel not in fuels.index:
            raise ScenarioError(
                f"fuel_prices_eur_per_mwh: fuel {fuel!r} not in the fuel table {path}; known: {', '.join(fuels.index)}"
            )
        fuels.loc[fuel, "price_eur_per_mwh"] = float(price)
    return fuels


def _check_fixed_below_need(
    scn: EnergyScenario, concept: Concept, year: Year, links: dict[str, SourceLink], need_kw: np.ndarray
) -> None:
    """Refuse a concept whose sources the planned network holds above the study's need in some hour.

    The dispatch holds a linked source at what the plan's year sends the sink (``study_kw``); where that exceeds the
    study's demand and losses (and what its storages could take), the LP has no solution: the study's demand is
    below the plan's sink.
    """
    held = [kw for sid in concept.sources if sid in links and (kw := links[sid].study_kw) is not None]
    if not held:
        return
    sts = {st.id: st for st in scn.storages}
    room = sum(sts[i].charge_kw for i in concept.storages if i in sts)
    sent = np.sum(held, axis=0)
    over = sent - (need_kw + room)
    if (over > 1e-6).any():
        h = int(np.argmax(over))
        raise ScenarioError(
            f"{scn.file or 'the scenario'}: concept {concept.name!r}: in hour {year.index[h]:%Y-%m-%d %H:%M} the "
            f"planned network sends the sink {scn.network.sink!r} {float(sent[h]):,.0f} kW of the "
            f"study's sources (the plan's year), more than the study's demand and losses then "
            f"({float(need_kw[h]):,.0f} kW): the study's demand (demand) is below what the plan's sink draws; make "
            "them agree"
        )


def _check_fuels(scn: EnergyScenario, fuels: pd.DataFrame) -> None:
    """Refuse boilers whose fuel the fuel table does not have, naming the scenario file, the boilers and the fuels."""
    unknown = {b.id: b.fuel for b in scn.boilers if b.fuel not in fuels.index}
    if unknown:
        named = ", ".join(f"boilers[{bid}].fuel {fuel!r}" for bid, fuel in unknown.items())
        raise ScenarioError(
            f"{scn.file or 'the scenario'}: {named} not in the fuel table {scn.path(scn.fuels_csv)}; known: "
            f"{', '.join(fuels.index)}"
        )


def resolve_sources(scn: EnergyScenario, index: pd.DatetimeIndex) -> list[ResolvedSource]:
    """Fill each source's missing values from its preset; errors name the source and the missing value."""
    presets = read_presets(scn.path(scn.presets_csv))
    plants = read_plants(scn.path(scn.plants_csv)) if scn.plants_csv is not None else None
    where = scn.file or "the scenario"
    out = []
    for s in scn.sources:
        if s.preset is not None and s.preset not in presets.index:
            raise ScenarioError(
                f"{where}: sources[{s.id}].preset {s.preset!r} unknown; known: {', '.join(presets.index)}"
            )
        row = presets.loc[s.preset] if s.preset else None
        assert row is None or isinstance(row, pd.Series)  # one preset per kind (read_table refuses repeated keys)
        origins: dict[str, str] = {}

        def pick(name: str, s: Source = s, row: pd.Series | None = row, origins: dict[str, str] = origins) -> Any:
            value = getattr(s, name)
            if value is not None:
                origins[name] = "scenario"
                return value
            if row is not None and name in row.index and pd.notna(row[name]):
                origins[name] = f"preset {s.preset}"
                return float(row[name])
            raise ScenarioError(f"{where}: sources[{s.id}]: {name} missing (give it, or a preset that has it)")

        if s.electric_input_kw is not None:
            share = pick("heat_share_of_electric_input")
            capacity = s.electric_input_kw * share
            origins["capacity_kw"] = "electric_input_kw × heat_share_of_electric_input"
        else:
            capacity = pick("capacity_kw")
        location: dict[str, Any] = {}
        if s.plant is not None:
            if plants is None:
                raise ScenarioError(f"{where}: sources[{s.id}].plant is given but the scenario has no plants_csv")
            if s.plant not in plants.index:
                raise ScenarioError(
                    f"{where}: sources[{s.id}].plant {s.plant!r} not in {scn.plants_csv}; known: "
                    f"{', '.join(plants.index)}"
                )
            p = plants.loc[s.plant]
            location = {
                "plant": s.plant,
                "lat": None if pd.isna(p.lat) else float(p.lat),
                "lon": None if pd.isna(p.lon) else float(p.lon),
                "coordinates": p.get("coordinates", "unknown quality"),
            }
        avail = pick("availability")
        if hasattr(avail, "csv"):
            avail = {"csv": avail.csv, "column": avail.column}
        temperature_c = float(pick("temperature_c"))
        problem = heat_pump_problem(s.id, temperature_c, s.heat_pump, scn.network)
        if problem is not None:
            raise ScenarioError(f"{where}: {problem} (the temperature is its preset's, {s.preset})")
        out.append(
            ResolvedSource(
                id=s.id,
                kind=s.preset,
                capacity_kw=float(capacity),
                temperature_c=temperature_c,
                availability=availability_hourly(avail, index, base_dir=scn.path(Path("."))),
                heat_price_eur_per_mwh=float(pick("heat_price_eur_per_mwh")),
                hx_cost_eur_per_kw=float(pick("hx_cost_eur_per_kw")),
                heat_pump=s.heat_pump.model_dump() if s.heat_pump else None,
                published_mwh_per_a=s.published_mwh_per_a,
                published_note=s.published_note,
                origins=origins,
                location=location,
            )
        )
    for r in out:
        if r.published_mwh_per_a and r.available_mwh < PUBLISHED_SHORTFALL * r.published_mwh_per_a:
            logger.warning(
                "source %s: capacity × availability gives %s MWh/a, %.0f %% of the %s MWh/a it is published to "
                "deliver (published_mwh_per_a); check its capacity and availability, or the published figure",
                r.id, f"{r.available_mwh:,.0f}", 100 * r.available_mwh / r.published_mwh_per_a,
                f"{r.published_mwh_per_a:,.0f}",
            )  # fmt: skip
    logger.info("Resolved %d sources: %.0f MWh/a of excess heat available", len(out), sum(s.available_mwh for s in out))
    return out


def _uses_plan(concept: Concept, network: PlannedNetwork | None) -> bool:
    """Whether a concept uses the planned network: one of its sources is a source of the plan (same id)."""
    if network is None:
        return False
    return bool(set(concept.sources) & set(network.plan.sources.source_id.astype(str)))


def concept_units(
    scn: EnergyScenario,
    concept: Concept,
    year: Year,
    sources: list[ResolvedSource],
    fuels: pd.DataFrame,
    *,
    network: PlannedNetwork | None = None,
    links: dict[str, SourceLink] | None = None,
) -> tuple[list[Producer], list[Storage], list[dict[str, Any]]]:
    """Build the producers, storages and new investments of one concept.

    Parameters
    ----------
    scn, concept, year, sources, fuels
        The scenario, the concept, the hourly inputs, the resolved sources and the fuel table.
    network
        The planned network (``None``: the scenario plans none): a concept using it (:func:`_uses_plan`) invests in
        it (item ``network connection``, the plan's capex) and has its losses.
    links
        The study's sources the planned network carries to its sink (:func:`heatmap.energy.concept_network.
        source_links`): their hourly heat is bounded by the connection and by what the plan's other consumers take.

    Returns
    -------
    tuple
        Producers, storages and the investments (``unit``, ``item``, ``eur``).
    """
    co2_price = scn.economics.co2_price_eur_per_t
    producers: list[Producer] = []
    storages: list[Storage] = []
    invest: list[dict[str, Any]] = []
    links = links or {}
    by_id = {s.id: s for s in sources}
    with_plan = _uses_plan(concept, network)
    need_kw = year.demand_kw + year.losses_for(with_plan)
    _check_fixed_below_need(scn, concept, year, links, need_kw)
    for sid in concept.sources:
        s = by_id[sid]
        hp = s.heat_pump if concept.heat_pumps else None
        link = links.get(sid)
        prod, _ = source_producer(
            sid,
            capacity_kw=s.capacity_kw,
            temperature_c=s.temperature_c,
            availability=s.availability,
            heat_price_eur_per_mwh=s.heat_price_eur_per_mwh,
            supply_c=year.supply_c,
            return_c=scn.network.return_c,
            need_kw=need_kw,
            approach_k=scn.network.approach_k,
            electricity_price_eur_per_mwh=year.price_eur_per_mwh,
            heat_pump=hp,
            taken_kw=None if link is None else link.others_kw,
            connection_kw=None if link is None or link.study_kw is not None else link.connection_kw,
            fixed_kw=None if link is None else link.study_kw,  # the plan's simulated hours check the connection
        )
        producers.append(prod)
        invest.append({"unit": sid, "item": "heat exchanger", "eur": s.hx_cost_eur_per_kw * s.capacity_kw})
        if hp is not None:
            invest.append({"unit": sid, "item": "heat pump", "eur": hp["cost_eur_per_kw"] * hp["capacity_kw"]})
    if with_plan:
        assert network is not None  # _uses_plan: only a concept with a planned network uses it
        invest.append(
            {"unit": "planned network", "item": "network connection", "eur": network_costs(network)["capex_eur"]}
        )
    boilers = {b.id: b for b in scn.boilers}
    for bid in concept.boilers:
        b = boilers[bid]
        f = fuels.loc[b.fuel]  # every boiler's fuel is in the table (_check_fuels)
        co2 = float(f.co2_t_per_mwh) / b.efficiency
        cost = float(f.price_eur_per_mwh) / b.efficiency + b.om_eur_per_mwh + co2_price * co2
        producers.append(
            Producer(
                name=bid,
                kind="boiler",
                capacity_kw=b.capacity_kw,
                max_kw=np.full(len(year.index), b.capacity_kw),
                cost_eur_per_mwh=np.full(len(year.index), cost),
                fuel_mwh_per_mwh=1.0 / b.efficiency,
                fuel=b.fuel,
                co2_t_per_mwh=co2,
            )
        )
    ebs = {e.id: e for e in scn.electric_boilers}
    for eid in concept.electric_boilers:
        e = ebs[eid]
        producers.append(
            Producer(
                name=eid,
                kind="electric_boiler",
                capacity_kw=e.capacity_kw,
                max_kw=np.full(len(year.index), e.capacity_kw),
                cost_eur_per_mwh=year.price_eur_per_mwh / e.efficiency,
                electricity_mwh_per_mwh=1.0 / e.efficiency,
            )
        )
        invest.append({"unit": eid, "item": "electric boiler", "eur": e.cost_eur_per_kw * e.capacity_kw})
    sts = {s.id: s for s in scn.storages}
    for sid in concept.storages:
        spec = sts[sid]
        storages.append(
            Storage(
                name=sid,
                capacity_kwh=spec.capacity_mwh * 1000.0,
                charge_kw=spec.charge_kw,
                discharge_kw=spec.discharge_kw,
                standing_loss_per_h=spec.standing_loss_per_h,
                charge_efficiency=spec.charge_efficiency,
                discharge_efficiency=spec.discharge_efficiency,
                wear_eur_per_mwh=spec.wear_eur_per_mwh,
            )
        )
        invest.append({"unit": sid, "item": "storage", "eur": spec.cost_eur_per_mwh * spec.capacity_mwh})
    logger.info(
        "Concept %r: %d producers, %d storages, %.2f M€ of investment%s",
        concept.name, len(producers), len(storages), sum(i["eur"] for i in invest) / 1e6,
        ", with the planned network" if with_plan else "",
    )  # fmt: skip
    return producers, storages, invest


def _network_bounds(
    result: DispatchResult, links: dict[str, SourceLink], sources: list[ResolvedSource]
) -> dict[str, dict[str, Any]]:
    """Per linked source of the concept: its heat, the others' share and the hours each bound binds."""
    by_id = {s.id: s for s in sources}
    out = {}
    for sid, link in links.items():
        if sid not in result.heat_kw.columns:
            continue
        q = result.heat_kw[sid].to_numpy()
        own = by_id[sid].capacity_kw * by_id[sid].availability
        out[sid] = {
            "connection_kw": link.connection_kw,
            "dispatched_mwh": float(q.sum() / 1000),
            "others_mwh": float(link.others_kw.sum() / 1000),
            "available_mwh": float(own.sum() / 1000),
            "hours_connection_binds": int(
                ((q if link.sink_draw_kw is None else link.sink_draw_kw) >= link.connection_kw - BINDING_KW).sum()
            ),
            "max_deviation_from_the_plans_year_kw": None
            if link.study_kw is None
            else float(np.abs(q - link.study_kw).max()),
            "hours_shared_capacity_binds": int(((link.others_kw > 0) & (q + link.others_kw >= own - BINDING_KW)).sum()),
            "hours_others_exceed_available": int((link.others_kw > own + BINDING_KW).sum()),
            "max_dispatch_plus_others_over_available_kw": float((q + link.others_kw - own).max()),
        }
    return out


def _losses_cost_eur(result: DispatchResult) -> float:
    """Cost of producing the network's losses: each hour's losses at that hour's average production cost (€)."""
    heat = result.heat_kw.to_numpy()
    T = len(result.demand_kw)
    cost = np.column_stack(
        [np.broadcast_to(np.asarray(p.cost_eur_per_mwh, dtype=float), (T,)) for p in result.producers]
    ) if result.producers else np.zeros((T, 0))  # fmt: skip
    made = heat.sum(axis=1)
    average = np.divide((heat * cost).sum(axis=1), made, out=np.zeros(T), where=made > 0)  # €/MWh
    return float((result.losses_kw / 1000 * average).sum())


def run_concept(
    scn: EnergyScenario,
    concept: Concept,
    year: Year,
    sources: list[ResolvedSource],
    fuels: pd.DataFrame,
    *,
    network: PlannedNetwork | None = None,
    links: dict[str, SourceLink] | None = None,
) -> ConceptResult:
    """Dispatch one concept over the year and count its energy, cost and CO₂.

    A concept using the planned network (:func:`_uses_plan`) has its losses (``Year.losses_kw``), its
    investment and its pumping electricity (:data:`heatmap.energy.concept_network.PUMPING_RULE`); one that does
    not has the losses without it (``Year.losses_without_plan_kw``). See :func:`concept_units` for the arguments.
    """
    from heatmap.economics import annuity_factor

    with_plan = _uses_plan(concept, network)
    links = links if with_plan and links is not None else {}
    producers, storages, invest = concept_units(scn, concept, year, sources, fuels, network=network, links=links)
    result = solve_dispatch(
        year.demand_kw,
        year.losses_for(with_plan),
        producers,
        storages,
        unserved_penalty_eur_per_mwh=scn.unserved_penalty_eur_per_mwh,
        solver=scn.solver,
    )
    figures = dispatch_figures(result)
    capex = sum(i["eur"] for i in invest)
    annual = capex * annuity_factor(scn.economics.discount_rate, scn.economics.lifetime_a)
    pumping_mwh = network_costs(network)["pumping_mwh_per_a"] if with_plan and network is not None else 0.0
    pumping_cost = pumping_mwh * float(year.price_eur_per_mwh.mean())
    el_co2 = (figures["electricity_mwh"] + pumping_mwh) * scn.electricity.co2_t_per_mwh
    total = figures["operating_cost_eur"] + annual + pumping_cost
    delivered = float(np.maximum(result.demand_kw - result.unserved_kw, 0.0).sum() / 1000.0)
    planned_losses = 0.0
    if with_plan and year.losses_without_plan_kw is not None:
        planned_losses = float((year.losses_kw - year.losses_without_plan_kw).sum() / 1000)
    elif with_plan:  # plan_losses: replace, the plan is the whole network
        planned_losses = float(year.losses_kw.sum() / 1000)
    logger.info(
        "Concept %r: excess heat %.1f %%, cost %.2f M€/a, CO₂ %.1f kt/a",
        concept.name, 100 * figures["excess_heat_share"], total / 1e6, (figures["co2_direct_t"] + el_co2) / 1000,
    )  # fmt: skip
    return ConceptResult(
        name=concept.name,
        description=concept.description,
        dispatch=result,
        figures=figures,
        investments=invest,
        annualised_investment_eur=annual,
        co2_t=figures["co2_direct_t"] + el_co2,
        electricity_co2_t=el_co2,
        total_cost_eur=total,
        delivered_mwh=delivered,
        unusable_sources=[p.name for p in producers if p.kind.startswith("excess_heat") and not p.max_kw.any()],
        uses_plan=with_plan,
        pumping_mwh=pumping_mwh,
        pumping_cost_eur=pumping_cost,
        planned_losses_mwh=planned_losses,
        losses_cost_eur=_losses_cost_eur(result),
        stops=stop_hours(producers, sources),
        network_bounds=_network_bounds(result, links, sources),
    )


STOP_REASONS = ("unavailable", "too cold", "preheats only")
"""Why an excess-heat source gives less than it has in an hour (:func:`stop_hours`), in the plots' order."""


def stop_hours(producers: list[Producer], sources: list[ResolvedSource]) -> dict[str, dict[str, np.ndarray]]:
    """Return, per excess-heat source, the hours it stops or gives only part of its heat, by reason.

    ``unavailable``: the plant gives no heat (availability 0); ``too cold``: it has heat, too cold for the hour's
    supply temperature and with no heat pump to lift it; ``preheats only``: it heats the return flow part of the
    way and a booster lifts the rest (:func:`heatmap.energy.excess_heat.source_producer`).
    """
    by_id = {s.id: s for s in sources}
    out = {}
    for p in producers:
        if not p.kind.startswith("excess_heat") or p.name not in by_id:
            continue
        off = by_id[p.name].availability <= 0
        n = len(off)
        cold = np.zeros(n, bool) if p.too_cold_hours is None else np.asarray(p.too_cold_hours, bool)
        pre = np.zeros(n, bool) if p.preheat_hours is None else np.asarray(p.preheat_hours, bool)
        out[p.name] = {"unavailable": off, "too cold": cold & ~off, "preheats only": pre & ~off}
    return out


def unit_labels(scn: EnergyScenario) -> dict[str, str]:
    """Return each unit's name for plots and tables: its ``name``, else its id in words."""
    named = _units_in_order(scn)
    return {uid: name or uid.replace("_", " ").capitalize() for uid, name in named} | {
        "storage discharge": "Storage discharge"
    }


def _units_in_order(scn: EnergyScenario) -> list[tuple[str, str | None]]:
    """Return each unit's id and name: sources, electric boilers, storages, boilers."""
    return (
        [(u.id, u.name) for u in scn.sources]
        + [(u.id, u.name) for u in scn.electric_boilers]
        + [(u.id, u.name) for u in scn.storages]
        + [(u.id, u.name) for u in scn.boilers]
    )


UNIT_PALETTE = "tab20"
"""Matplotlib colour map the units' colours come from (qualitative, 20 colours)."""


def unit_colours(scn: EnergyScenario) -> dict[str, str]:
    """Return one colour per unit of the scenario, the same in every plot of its concepts.

    The units take the colours of :data:`UNIT_PALETTE` in the scenario's order (sources, electric boilers, storages,
    boilers), so a unit keeps its colour whichever concepts it is in; ``storage discharge`` (all storages) takes
    the first storage's colour.
    """
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    cmap = colormaps[UNIT_PALETTE]
    out = {uid: to_hex(cmap(i % cmap.N)) for i, (uid, _) in enumerate(_units_in_order(scn))}
    if scn.storages:
        out["storage discharge"] = out[scn.storages[0].id]
    return out


INVESTMENT_ITEMS = {
    "network connection": "investment_network_connection_meur",
    "heat exchanger": "investment_heat_exchangers_meur",
    "heat pump": "investment_heat_pumps_meur",
    "storage": "investment_storage_meur",
    "electric boiler": "investment_electric_boiler_meur",
}
"""Investment items and their column in the comparison (M€)."""


def _comparison(results: list[ConceptResult]) -> pd.DataFrame:
    """One row per concept; the costs of a concept leaving heat unserved are NaN (not comparable)."""
    nan = float("nan")
    rows = []
    for r in results:
        f = r.figures
        kinds = pd.DataFrame(f["units"]).groupby("kind").heat_mwh.sum() if f["units"] else pd.Series(dtype=float)
        need = f["demand_mwh"] + f["losses_mwh"]
        rows.append(
            {
                "concept": r.name,
                "excess_heat_share_pct": 100 * f["excess_heat_share"],
                "excess_heat_gwh": f["excess_heat_mwh"] / 1000,
                "heat_pump_heat_gwh": kinds.get("excess_heat_heat_pump", 0.0) / 1000,
                "electric_boiler_heat_gwh": kinds.get("electric_boiler", 0.0) / 1000,
                "boiler_heat_gwh": kinds.get("boiler", 0.0) / 1000,
                "storage_cycles": sum(s["cycles"] for s in f["storages"]),
                "electricity_gwh": f["electricity_mwh"] / 1000,
                "fuel_gwh": sum(f["fuel_mwh_by_fuel"].values()) / 1000,
                "investment_meur": sum(i["eur"] for i in r.investments) / 1e6,
                **{
                    column: sum(i["eur"] for i in r.investments if i["item"] == item) / 1e6
                    for item, column in INVESTMENT_ITEMS.items()
                },
                "operating_cost_meur_per_a": f["operating_cost_eur"] / 1e6,
                "annualised_investment_meur_per_a": r.annualised_investment_eur / 1e6,
                "uses_planned_network": r.uses_plan,
                "pumping_electricity_mwh": r.pumping_mwh,
                "pumping_cost_meur_per_a": r.pumping_cost_eur / 1e6,
                "losses_gwh": f["losses_mwh"] / 1000,
                "planned_network_losses_gwh": r.planned_losses_mwh / 1000,
                "losses_cost_meur_per_a": r.losses_cost_eur / 1e6,
                "total_cost_meur_per_a": r.total_cost_eur / 1e6 if r.costs_comparable else nan,
                "cost_of_heat_eur_per_mwh": (
                    r.total_cost_eur / r.delivered_mwh if r.costs_comparable and r.delivered_mwh > 0 else nan
                ),
                # the parts of the cost of heat in € (the M€ columns above are rounded in the CSV)
                "operating_cost_eur_per_a": f["operating_cost_eur"],
                "annualised_investment_eur_per_a": r.annualised_investment_eur,
                "pumping_cost_eur_per_a": r.pumping_cost_eur,
                "co2_kt_per_a": r.co2_t / 1000,
                "delivered_mwh": r.delivered_mwh,
                "unserved_mwh": f["unserved_mwh"],
                "costs_comparable": r.costs_comparable,
                "demand_plus_losses_gwh": need / 1000,
            }
        )
    return pd.DataFrame(rows)


def _units_table(results: list[ConceptResult]) -> pd.DataFrame:
    frames = [pd.DataFrame(r.figures["units"]).assign(concept=r.name) for r in results if r.figures["units"]]
    table = pd.concat(frames, ignore_index=True)
    return table[["concept"] + [c for c in table.columns if c != "concept"]]


def _calibration(sources: list[ResolvedSource], results: list[ConceptResult]) -> pd.DataFrame:
    rows = []
    for s in sources:
        row = {
            "source": s.id,
            "capacity_kw": s.capacity_kw,
            "temperature_c": s.temperature_c,
            "available_mwh_per_a": s.available_mwh,
            "published_mwh_per_a": s.published_mwh_per_a,
            "available_over_published": s.available_mwh / s.published_mwh_per_a if s.published_mwh_per_a else None,
            "published_note": s.published_note,
        }
        for r in results:
            used = [u for u in r.figures["units"] if u["unit"] == s.id]
            row[f"used_mwh[{r.name}]"] = used[0]["excess_heat_mwh"] if used else 0.0
        rows.append(row)
    return pd.DataFrame(rows)


def run_concepts(scn: EnergyScenario, *, plan: PlanLike | None = None) -> ConceptStudy:
    """Run the reference and every concept of a scenario and compare them.

    Parameters
    ----------
    scn
        A validated concept scenario.
    plan
        The plan of the scenario's network when it names one (``network.plan``): a :class:`heatmap.plan.Plan`
        of the scenario :func:`heatmap.energy.concept_network.read_plan_scenario` reads
        (``heatmap.plan.plan_from_scenario(read_plan_scenario(scn))``; ``heatmap concepts`` does this).

    Returns
    -------
    ConceptStudy
        Each concept's dispatch and figures, the comparison, units, impact and calibration tables.
    """
    from heatmap.energy.impact import regional_impact

    if (scn.network.plan is None) != (plan is None):
        raise ScenarioError(
            "network.plan names a plan scenario: pass its plan (plan=)"
            if plan is None
            else "a plan was passed but the scenario names no network.plan"
        )
    network = planned_network(scn, plan) if plan is not None else None
    heat_loss = heat_loss_coefficient(scn, network)
    year = year_inputs(scn, heat_loss_coefficient_w_per_k=heat_loss["used_w_per_k"])
    losses_mwh = float(year.losses_kw.sum() / 1000)
    heat_loss["losses_mwh_per_a"] = losses_mwh
    if heat_loss["planned_w_per_k"] is not None:  # losses are linear in UA: the planned pipes' part of them
        heat_loss["planned_losses_mwh_per_a"] = losses_mwh * heat_loss["planned_w_per_k"] / heat_loss["used_w_per_k"]
        if scn.network.plan_losses == "add":  # a concept without the planned network has the estimate's losses
            used = heat_loss["used_w_per_k"]
            year.losses_without_plan_kw = year.losses_kw * (heat_loss["estimate_w_per_k"] / used if used > 0 else 0.0)
        heat_loss["concepts_without_the_plan"] = (
            "estimate alone (they do not use the planned connection)"
            if scn.network.plan_losses == "add"
            else "planned (the plan is the whole network)"
        )
    links = source_links(scn, network, year.index) if network is not None else {}
    fuels = read_fuels(scn.path(scn.fuels_csv), scn.fuel_prices_eur_per_mwh)
    _check_fuels(scn, fuels)
    sources = resolve_sources(scn, year.index)
    reference = Concept(
        name=REFERENCE_NAME, description="all boilers, no excess heat", boilers=[b.id for b in scn.boilers]
    )
    results = [
        run_concept(scn, c, year, sources, fuels, network=network, links=links) for c in [reference, *scn.concepts]
    ]
    comparison = _comparison(results)
    impact = regional_impact(results[0], results[1:], fuels=fuels)
    study = ConceptStudy(
        scenario=scn,
        year=year,
        sources=sources,
        fuels=fuels,
        results=results,
        comparison=comparison,
        units=_units_table(results),
        impact=impact,
        calibration=_calibration(sources, results[1:]),
        network=network,
        heat_loss=heat_loss,
        links=links,
    )
    logger.info("Compared %d concepts against the reference", len(scn.concepts))
    return study


def concepts_summary(study: ConceptStudy) -> dict[str, Any]:
    """Everything a reader needs to judge the study: inputs, labels of synthetic data, results, assumptions."""
    from heatmap.demand.profiles import degree_hours

    scn, year = study.scenario, study.year
    base_c = scn.demand.base_temperature_c
    worst = max(abs(r.figures["max_balance_residual_kw"]) / max(year.demand_kw.max(), 1.0) for r in study.results)
    return {
        "heatmap_version": __version__,
        "created_utc": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "scenario": scn.name,
        "scenario_file": scn.file,
        "year": {
            "hours": len(year.index),
            "outdoor_temperature_file": scn.path(scn.outdoor_temperature.csv),
            "outdoor_min_c": float(year.outdoor_c.min()),
            "outdoor_mean_c": float(year.outdoor_c.mean()),
            f"heating_degree_days_{base_c:g}c": float(
                degree_hours(year.outdoor_c, base_temperature_c=base_c).sum() / 24
            ),
            "degree_day_base_c": base_c,
            "supply_temperature_range_c": [float(year.supply_c.min()), float(year.supply_c.max())],
            "demand_mwh": float(year.demand_kw.sum() / 1000),
            "demand_peak_kw": float(year.demand_kw.max()),
            "network_losses_mwh": float(year.losses_kw.sum() / 1000),
            "heat_loss_coefficient": study.heat_loss,
            "electricity_price_mean_eur_per_mwh": float(year.price_eur_per_mwh.mean()),
            "notes": {
                "demand": scn.demand.note,
                "network": scn.network.note,
                "electricity": scn.electricity.note,
            },
        },
        "sources": [
            {
                "id": s.id,
                "kind": s.kind,
                "capacity_kw": s.capacity_kw,
                "temperature_c": s.temperature_c,
                "available_mwh_per_a": s.available_mwh,
                "heat_price_eur_per_mwh": s.heat_price_eur_per_mwh,
                "hx_cost_eur_per_kw": s.hx_cost_eur_per_kw,
                "heat_pump": s.heat_pump,
                "value_origins": s.origins,
                "location": s.location,
            }
            for s in study.sources
        ],
        "calibration": study.calibration.to_dict(orient="records"),
        "comparison": study.comparison.to_dict(orient="records"),
        "impact": study.impact.to_dict(orient="records"),
        "concepts": [
            {
                "name": r.name,
                "description": r.description,
                "figures": r.figures,
                "investments": r.investments,
                "annualised_investment_eur": r.annualised_investment_eur,
                "co2_t": r.co2_t,
                "electricity_co2_t": r.electricity_co2_t,
                "total_cost_eur": r.total_cost_eur,
                "delivered_mwh": r.delivered_mwh,
                "costs_comparable": r.costs_comparable,
                "uses_planned_network": r.uses_plan,
                "pumping_electricity_mwh": r.pumping_mwh,
                "pumping_cost_eur": r.pumping_cost_eur,
                "losses_mwh": r.figures["losses_mwh"],
                "planned_network_losses_mwh": r.planned_losses_mwh,
                "losses_cost_eur": r.losses_cost_eur,
                "losses_cost_note": "in the operating cost (each hour's losses at its average production cost)",
                "preheat": {
                    u["unit"]: {"preheat_mwh": u["preheat_mwh"], "preheat_hours_h": u["preheat_hours_h"]}
                    for u in r.figures["units"]
                    if u["kind"] == "excess_heat"
                },
                "network_bounds": r.network_bounds,
                "lp": {"status": r.dispatch.status, "build_s": r.dispatch.build_s, "solve_s": r.dispatch.solve_s},
            }
            for r in study.results
        ],
        "checks": {
            "max_hourly_balance_residual_relative": worst,
            "balance_holds": worst < 1e-6,
            "concepts_with_unserved_heat": [r.name for r in study.results if not r.costs_comparable],
            "unserved_heat_note": (
                "concepts leaving heat unserved are cheaper only by not delivering: their total cost, cost of heat "
                "and savings are not compared (NaN)"
            ),
            "sources_never_usable": {r.name: r.unusable_sources for r in study.results if r.unusable_sources},
        },
        "network": (
            {
                **network_summary(study.network, float(year.demand_kw.sum() / 1000)),
                "linked_sources": [link.summary() for link in study.links.values()],
                "hour_agreement": hour_agreement(study.network, study.links, study.results),
                "hour_agreement_rule": AGREEMENT_RULE,
                "costs": {
                    **network_costs(study.network),
                    "pumping_rule": PUMPING_RULE,
                    "investment_item": "network connection",
                    "counted_in": [r.name for r in study.results if r.uses_plan],
                    "rule": "a concept whose sources include a source of the plan (same id) uses the planned network",
                },
            }
            if study.network is not None
            else None
        ),
        "preheat_rule": (
            "a source without a heat pump in the concept, colder than the supply temperature + network.approach_k "
            "but hotter than the return temperature + approach, preheats: at most f·(demand + losses) with "
            "f = (T_source − approach − T_return)/(T_supply − T_return), the rest lifted by other producers in "
            "series; storage charging does not raise that cap"
        ),
        "files": list(output_names(study)),
        "fuels": study.fuels.reset_index().to_dict(orient="records"),
        "assumptions": assumptions(scn),
    }


def format_comparison(comparison: pd.DataFrame) -> str:
    """Render the comparison as a text table (one column per concept) for the command line."""
    labels = {
        "excess_heat_share_pct": "Excess heat share (%)",
        "excess_heat_gwh": "Excess heat used (GWh/a)",
        "heat_pump_heat_gwh": "Heat-pump heat (GWh/a)",
        "electric_boiler_heat_gwh": "Electric-boiler heat (GWh/a)",
        "boiler_heat_gwh": "Boiler heat (GWh/a)",
        "storage_cycles": "Storage cycles (1/a)",
        "electricity_gwh": "Electricity (GWh/a)",
        "fuel_gwh": "Fuel (GWh/a)",
        "investment_meur": "Investment (M€)",
        "investment_network_connection_meur": "  of which network connection (M€)",
        "pumping_electricity_mwh": "Network pumping (MWh/a)",
        "losses_gwh": "Network losses (GWh/a)",
        "total_cost_meur_per_a": "Total cost (M€/a)",
        "cost_of_heat_eur_per_mwh": "Cost of heat (€/MWh delivered)",
        "co2_kt_per_a": "CO₂ (kt/a)",
        "unserved_mwh": "Unserved heat (MWh/a)",
    }
    table = comparison.set_index("concept")[list(labels)].rename(columns=labels).T
    return table.to_string(float_format=lambda v: f"{v:,.1f}")


STOP_COLOURS = {"unavailable": "#bdbdbd", "too cold": "#4575b4", "preheats only": "#abd9e9"}
"""Colours of the reasons a source gives less than it has (:data:`STOP_REASONS`) in the dispatch plots."""


def _stack(ax: Any, x: Any, parts: pd.DataFrame, *, labels: dict[str, str], colours: dict[str, str]) -> None:
    """Stack the columns of ``parts`` that give anything over ``x``; none where every unit gave nothing all year."""
    cols = [c for c in parts.columns if parts[c].max() > 1e-6]
    if cols:
        ax.stackplot(
            x,
            [parts[c].to_numpy() for c in cols],
            labels=[_wrapped(labels.get(c, c)) for c in cols],
            colors=[colours.get(c, "#999999") for c in cols],
            alpha=0.9,
        )


def plot_dispatch(r: ConceptResult, year: Year, path: Path, *, labels: dict[str, str], colours: dict[str, str]) -> None:
    """Draw the concept's heat production over the year into a PNG, daily means stacked by unit.

    Below it, per excess-heat source, the share of each day's hours it could not give its heat and why
    (:func:`stop_hours`).
    """
    from matplotlib.figure import Figure

    d = r.dispatch
    daily = d.heat_kw.set_index(year.index).resample("D").mean() / 1000
    dis = d.discharge_kw.sum(axis=1).to_numpy()
    if len(d.storages):
        daily["storage discharge"] = pd.Series(dis, index=year.index).resample("D").mean() / 1000
    need = pd.Series((year.demand_kw + year.losses_kw) / 1000, index=year.index).resample("D").mean()
    stops = {sid: m for sid, m in r.stops.items() if any(v.any() for v in m.values())}
    fig = Figure(figsize=(13, 5.5 + 0.45 * len(stops)), layout="constrained")
    axes = fig.subplots(
        1 + bool(stops), 1, sharex=True, squeeze=False, height_ratios=[5] + ([0.45 * len(stops)] if stops else [])
    )[:, 0]
    ax = axes[0]
    _stack(ax, daily.index, daily, labels=labels, colours=colours)
    label = "demand + network losses" + (" (production above it charges the storage)" if len(d.storages) else "")
    ax.plot(need.index, need, color="black", lw=1.2, label=_wrapped(label))
    ax.set_title(f"Heat production over the year, daily means — {r.name}")
    ax.set_ylabel("Heat (MW)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.grid(alpha=0.3)
    if stops:
        strip = axes[1]
        for row, masks in enumerate(stops.values()):
            bottom = np.zeros(len(daily))
            for reason in STOP_REASONS:
                share = pd.Series(masks[reason].astype(float), index=year.index).resample("D").mean().to_numpy()
                strip.bar(
                    daily.index, share * 0.8, bottom=row + bottom, width=1.0, color=STOP_COLOURS[reason],
                    label=reason if row == 0 else None,
                )  # fmt: skip
                bottom += share * 0.8
        strip.set_yticks(np.arange(len(stops)) + 0.4, [_wrapped(labels.get(s, s)) for s in stops], fontsize=7)
        strip.set_ylim(0, len(stops))
        strip.set_title("Hours a source could not give its heat (share of each day), and why", fontsize=9)
        strip.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
    axes[-1].set_xlabel("Day of the year")
    fig.savefig(path, dpi=110)


def plot_duration(r: ConceptResult, year: Year, path: Path, *, labels: dict[str, str], colours: dict[str, str]) -> None:
    """Draw the heat-load duration curve with each unit's share (smoothed over 48 sorted hours)."""
    from matplotlib.figure import Figure

    smooth_h = 48
    need = (year.demand_kw + year.losses_kw) / 1000
    order = np.argsort(-need, kind="stable")
    d = r.dispatch
    parts = d.heat_kw.copy() / 1000
    if len(d.storages):
        parts["storage discharge"] = d.discharge_kw.sum(axis=1).to_numpy() / 1000
    parts = parts.iloc[order].rolling(smooth_h, min_periods=1, center=True).mean()
    hours = np.arange(1, len(need) + 1)
    fig = Figure(figsize=(13, 5.5), layout="constrained")
    ax = fig.add_subplot()
    _stack(ax, hours, parts, labels=labels, colours=colours)
    if len(d.storages):
        charge = pd.Series(d.charge_kw.sum(axis=1).to_numpy()[order] / 1000)
        charge = charge.rolling(smooth_h, min_periods=1, center=True).mean()
        ax.fill_between(hours, -charge.to_numpy(), 0, color="grey", alpha=0.6, label="storage charging (below 0)")
    ax.plot(hours, need[order], color="black", lw=1.5, label="demand + network losses")
    ax.axhline(0, color="black", lw=0.5)
    ax.set_title(f"Heat-load duration curve and who covers it — {r.name}")
    ax.set_ylabel("Heat (MW)")
    ax.set_xlabel(f"Hours of the year, sorted from the highest load (shares averaged over {smooth_h} sorted hours)")
    ax.set_xlim(0, len(need))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=110)


def _wrapped(text: str, width: int = 36) -> str:
    """Break a long label into lines for a legend."""
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) or text


OVERVIEW = (
    ("cost_of_heat_eur_per_mwh", "Cost of heat (€/MWh delivered)"),
    ("excess_heat_share_pct", "Excess-heat share (%)"),
    ("co2_kt_per_a", "CO₂ (kt/a)"),
)
"""The comparison's columns the overview chart shows side by side."""


def plot_overview(comparison: pd.DataFrame, path: Path) -> None:
    """Draw the concepts side by side: cost of heat, excess-heat share and CO₂, one bar per concept, into a PNG.

    A concept that leaves heat unserved has no cost of heat (NaN in the comparison): its bar is missing and marked.
    """
    from matplotlib.figure import Figure

    names = comparison.concept.tolist()
    fig = Figure(figsize=(11, 1.6 + 0.5 * len(names) * len(OVERVIEW) / 2), layout="constrained")
    axes = fig.subplots(1, len(OVERVIEW), sharey=True)
    y = np.arange(len(names))[::-1]
    for ax, (col, title) in zip(axes, OVERVIEW, strict=True):
        values = comparison[col].to_numpy(float)
        colour = ["#969696" if n == REFERENCE_NAME else "#2c7fb8" for n in names]
        ax.barh(y, np.nan_to_num(values), color=colour)
        for yi, v in zip(y, values, strict=True):
            ax.annotate(
                "not comparable (heat unserved)" if np.isnan(v) else f"{v:,.1f}",
                (0 if np.isnan(v) else v, yi), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8,
            )  # fmt: skip
        ax.set_title(title, fontsize=10)
        ax.margins(x=0.25)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, names, fontsize=9)
    fig.suptitle("The concepts side by side (grey: the reference, boilers only)", fontsize=11)
    fig.savefig(path, dpi=110)


def output_names(study: ConceptStudy) -> tuple[str, ...]:
    """Every file ``write_concepts`` writes (the GeoJSON of the network's layers aside: README.txt lists them)."""
    from heatmap.io.exports import README

    names = [
        "comparison.csv", "units.csv", "impact.csv", "calibration.csv", "summary.json", "overview.png", "report.html",
        README,
    ]  # fmt: skip
    for r in study.results:
        slug = concept_slug(r.name)
        names += [f"dispatch_{slug}.csv", f"dispatch_{slug}.png", f"duration_{slug}.png"]
    if study.network is not None:
        from heatmap.io.outputs import plan_file_names

        names += ["map.html", *(f"network/{name}" for name in plan_file_names(study.network.plan))]
    if len(set(names)) != len(names):
        raise ScenarioError("concept names must differ in more than punctuation (their file names collide)")
    return tuple(names)


def write_concept_files(study: ConceptStudy, folder: Path, *, matches: dict[str, Any] | None = None) -> None:
    """Write the study's files (:func:`output_names`) into an existing folder (not atomically: see write_concepts).

    ``report.html`` is rendered from the files written (``summary.json``, the network's ``network/summary.json`` and
    the plots), so it states what they hold; ``matches``, the summary of the study's matches, adds their ranking.
    """
    import json

    from heatmap.energy.concept_network import write_network_outputs
    from heatmap.io.outputs import plan_layers, write_json
    from heatmap.io.tables import write_csv
    from heatmap.maps import report

    write_csv(study.comparison, folder / "comparison.csv", float_format="%.10g")
    write_csv(study.units, folder / "units.csv", float_format="%.10g")
    write_csv(study.impact, folder / "impact.csv", float_format="%.4f")
    write_csv(study.calibration, folder / "calibration.csv", float_format="%.4f")
    labels, colours = unit_labels(study.scenario), unit_colours(study.scenario)
    for r in study.results:
        slug = concept_slug(r.name)
        d = r.dispatch
        table = pd.DataFrame(
            {
                "time": study.year.index.strftime("%Y-%m-%dT%H:%M"),
                "outdoor_c": study.year.outdoor_c,
                "supply_c": study.year.supply_c,
                "electricity_price_eur_per_mwh": study.year.price_eur_per_mwh,
                "demand_kw": d.demand_kw,
                "losses_kw": d.losses_kw,
            }
        )
        for c in d.heat_kw.columns:
            table[f"{c}_kw"] = d.heat_kw[c].to_numpy()
        for c in d.charge_kw.columns:
            table[f"{c}_charge_kw"] = d.charge_kw[c].to_numpy()
            table[f"{c}_discharge_kw"] = d.discharge_kw[c].to_numpy()
            table[f"{c}_content_kwh"] = d.content_kwh[c].to_numpy()
        table["unserved_kw"] = d.unserved_kw
        write_csv(table, folder / f"dispatch_{slug}.csv", float_format="%.3f")
        plot_dispatch(r, study.year, folder / f"dispatch_{slug}.png", labels=labels, colours=colours)
        plot_duration(r, study.year, folder / f"duration_{slug}.png", labels=labels, colours=colours)
    plot_overview(study.comparison, folder / "overview.png")
    if study.network is not None:
        write_network_outputs(study, folder, colours=colours, labels=labels)
    write_json(concepts_summary(study), folder / "summary.json")
    network = None
    if study.network is not None:
        plan = study.network.plan
        network = report.plan_context(
            json.loads((folder / "network" / "summary.json").read_text(encoding="utf-8")),
            plan_layers(plan),
            getattr(getattr(plan, "operation", None), "hourly", None),
        )
    slugs = {r.name: concept_slug(r.name) for r in study.results}
    html = report.concepts_report_html(
        json.loads((folder / "summary.json").read_text(encoding="utf-8")),
        images={
            "overview": folder / "overview.png",
            "dispatch": {name: folder / f"dispatch_{slug}.png" for name, slug in slugs.items()},
            "duration": {name: folder / f"duration_{slug}.png" for name, slug in slugs.items()},
        },
        colours=colours,
        labels=labels,
        network=network,
        matches=matches,
    )
    (folder / "report.html").write_text(html, encoding="utf-8")


def concepts_inputs(study: ConceptStudy) -> list[Path]:
    """Return the run's input files: the scenario file and every file it (and its planned network) names."""
    from heatmap.io.output_folder import input_paths

    scn = study.scenario
    inputs = [p for p in (scn.file, *input_paths(scn)) if p is not None]
    if study.network is not None:
        inputs += input_paths(study.network.plan.scenario)
    return inputs


def write_concepts(study: ConceptStudy, out_dir: Path) -> dict[str, Path]:
    """Write the study atomically into ``out_dir`` (see :func:`output_names`).

    The scenario file and every file it names are the run's inputs: none may lie in ``out_dir``
    (:func:`heatmap.io.output_folder.check_output_folder`).
    """
    from heatmap.io.output_folder import write_atomically

    written = write_atomically(
        out_dir,
        output_names(study),
        lambda tmp: write_concept_files(study, tmp),
        inputs=concepts_inputs(study),
        title=f"heatmap concepts, scenario {study.scenario.name}",
    )
    logger.info("Wrote %d files to %s", len(written), out_dir)
    return written


def concepts_report(study: ConceptStudy, written: dict[str, Path]) -> str:
    """Render what the command prints: the comparison, the regional impact and the files written."""
    impact = study.impact.set_index("concept")
    lines = [
        f"Scenario: {study.scenario.name}",
        f"Demand {study.year.demand_kw.sum() / 1e6:,.1f} GWh/a + network losses "
        f"{study.year.losses_kw.sum() / 1e6:,.1f} GWh/a; peak {study.year.demand_kw.max() / 1000:,.1f} MW",
        *_network_lines(study),
        "",
        format_comparison(study.comparison),
        "",
        "Regional impact against the reference (boilers only):",
        impact[
            ["excess_heat_used_gwh", "fuel_displaced_gwh", "peat_displaced_gwh", "peat_cut_pct",
             "co2_avoided_kt_per_a", "cost_saved_meur_per_a"]
        ].rename(
            columns={
                "excess_heat_used_gwh": "excess heat GWh/a",
                "fuel_displaced_gwh": "fuel displaced GWh/a",
                "peat_displaced_gwh": "peat displaced GWh/a",
                "peat_cut_pct": "peat cut %",
                "co2_avoided_kt_per_a": "CO₂ avoided kt/a",
                "cost_saved_meur_per_a": "saved M€/a",
            }
        ).to_string(float_format=lambda v: f"{v:,.1f}"),
        *(
            f"warning: {r.name} leaves {r.unserved_mwh:,.1f} MWh/a of demand unserved (units too small); its total "
            "cost, cost of heat and savings are not compared (NaN)"
            for r in study.results
            if not r.costs_comparable
        ),
        *(
            f"warning: in {r.name}, {', '.join(r.unusable_sources)} can feed in no hour "
            "(no hotter than the return temperature + approach: it cannot even preheat; no heat pump in this concept)"
            for r in study.results
            if r.unusable_sources
        ),
        "",
        "Written:",
        *(f"  {p}" for p in written.values()),
    ]  # fmt: skip
    return "\n".join(lines)


def _network_lines(study: ConceptStudy) -> list[str]:
    """Return the report's network lines: the heat-loss coefficient used and the planned network's figures."""
    h = study.heat_loss
    if study.network is None:
        return [f"Network heat-loss coefficient {h['used_w_per_k']:,.0f} W/K (estimate; no network.plan)"]
    plan = study.network.plan
    f = plan.figures
    assert study.scenario.network.plan is not None  # run_concepts: a planned network only with network.plan
    parts = {"estimate": h["estimate_w_per_k"], "planned": h["planned_w_per_k"]}
    return [
        f"Network heat-loss coefficient {h['used_w_per_k']:,.0f} W/K: {h['rule']}; "
        + ", ".join(f"{k} {v:,.0f} W/K" for k, v in parts.items()),
        f"Planned network ({study.scenario.network.plan.name}): {f['route_length_m'] / 1000:,.2f} km of route, "
        f"capex {f['capex_eur'] / 1e6:,.2f} M€, losses {study.network.design_losses_kw:,.0f} kW at the design case, "
        f"checks {'ok' if plan.ok else 'FAIL'}; sink {study.network.sink_id or '–'}",
        *_agreement_lines(study),
    ]


def _agreement_lines(study: ConceptStudy) -> list[str]:
    """Return the report's line on how the dispatch and the network's simulated hours agree (none without hours)."""
    assert study.network is not None  # _network_lines asks only a study with a planned network
    rows = hour_agreement(study.network, study.links, study.results)
    if not rows:
        return []
    worst = max(rows, key=lambda r: abs(r["difference_kw"]))
    hours = sorted({r["hour"] for r in rows})
    return [
        f"One hour, one answer: in the network's {len(hours)} simulated hours each source's simulated heat and the "
        f"dispatch's (+ the plan's other consumers) differ by at most {abs(worst['difference_kw']):,.0f} kW "
        f"({abs(worst['difference_share']):.2%}; {worst['source']}, {worst['hour']})"
    ]
