"""Industrial excess-heat sources: presets, availability over the year, heat-pump COP, producers for the dispatch.

A source has a temperature level, a capacity (kW of heat it can give), an availability over the year (a
constant factor, 12 monthly factors, or an 8760-hour CSV), a price of its heat (€/MWh) and a cost of the
recovery equipment (heat exchanger, €/kW). A source hot enough for the network's supply temperature in an
hour feeds directly; one colder than that but hotter than the return temperature preheats the network's flow
(boilers lift it the rest, :func:`source_producer`); with a heat pump its COP follows the lift (Carnot × η)::

    COP = min(η · T_hot / (T_hot − T_cold), max_cop)   (kelvin; T_hot the supply, T_cold the source)

The cap ``max_cop`` (:data:`heatmap.energy.energy_scenario.MAX_COP` by default) keeps the Carnot rule from
promising what no machine gives at small lifts (η 0.5 gives COP 17 at a 10 K lift).

The pump's heat output is the source heat plus its electricity: per MWh delivered, ``1 − 1/COP`` MWh come
from the source and ``1/COP`` MWh of electricity are bought at the hour's price.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from heatmap import settings
from heatmap._errors import ScenarioError
from heatmap.demand.profiles import read_hourly
from heatmap.energy.dispatch import Producer
from heatmap.energy.energy_scenario import MAX_COP
from heatmap.io.inputs import read_table

logger = logging.getLogger(__name__)

KELVIN = 273.15
PRESETS_CSV = settings.data_dir / "excess_heat_presets.csv"
PRESET_COLUMNS = (
    "kind",
    "temperature_c",
    "availability",
    "heat_price_eur_per_mwh",
    "hx_cost_eur_per_kw",
    "heat_share_of_electric_input",
    "status",
    "source",
)


def cop(
    t_hot_c: float | np.ndarray, t_cold_c: float | np.ndarray, *, eta: float, max_cop: float = MAX_COP
) -> np.ndarray:
    """Coefficient of performance of a heat pump lifting heat from ``t_cold_c`` to ``t_hot_c``.

    ``COP = min(η · T_hot / (T_hot − T_cold), max_cop)`` in kelvin; where ``T_hot ≤ T_cold`` no lift is needed
    and the COP is infinite (no heat pump runs).

    Parameters
    ----------
    t_hot_c, t_cold_c
        Temperature delivered and temperature of the heat source (°C).
    eta
        Share of the Carnot COP reached, in (0, 1].
    max_cop
        Ceiling of the COP, above 1 (default :data:`heatmap.energy.energy_scenario.MAX_COP`; ``numpy.inf``: none).

    Examples
    --------
    >>> round(float(cop(80.0, 30.0, eta=0.5)), 3)
    3.531
    >>> round(float(cop(70.0, 60.0, eta=0.5, max_cop=np.inf)), 2), float(cop(70.0, 60.0, eta=0.5, max_cop=6.5))
    (17.16, 6.5)
    """
    if not 0 < eta <= 1:
        raise ScenarioError(f"heat-pump efficiency η (share of the Carnot COP) must be in (0, 1], not {eta}")
    if not max_cop > 1:
        raise ScenarioError(f"heat-pump COP ceiling max_cop must exceed 1, not {max_cop}")
    hot = np.asarray(t_hot_c, dtype=float) + KELVIN
    lift = hot - (np.asarray(t_cold_c, dtype=float) + KELVIN)
    with np.errstate(divide="ignore"):
        carnot = eta * hot / np.where(lift > 0, lift, 1.0)
    return np.where(lift > 0, np.minimum(carnot, max_cop), np.inf)


def read_presets(path: str | Path = PRESETS_CSV) -> pd.DataFrame:
    """Read the table of typical values per kind of excess-heat source (indexed by ``kind``).

    Parameters
    ----------
    path
        CSV with the columns of :data:`PRESET_COLUMNS` (``#`` lines are comments).
    """
    return read_table(path, PRESET_COLUMNS[1:], index="kind", what="excess-heat preset table")


def availability_hourly(
    availability: float | list[float] | tuple[float, ...] | Mapping[str, Any],
    index: pd.DatetimeIndex,
    *,
    base_dir: Path,
) -> np.ndarray:
    """Hourly availability factor (0…1) of a source.

    Parameters
    ----------
    availability
        A number (constant factor), a list of 12 monthly factors (January first), or a mapping
        ``{"csv": path, "column": name}`` of an hourly CSV with a ``time`` column holding the hours of
        ``index`` in order (:func:`heatmap.demand.profiles.read_hourly`).
    index
        The hours of the year.
    base_dir
        Folder relative CSV paths start from.
    """
    if isinstance(availability, int | float):
        return np.full(len(index), float(availability))
    if isinstance(availability, list | tuple):
        return np.asarray(availability, dtype=float)[index.month.to_numpy() - 1]
    path = Path(availability["csv"])
    path = path if path.is_absolute() else base_dir / path
    column = availability.get("column", "factor")
    return read_hourly(path, column, index, lower=0.0, upper=1.0, what="availability").to_numpy()


def source_producer(
    name: str,
    *,
    capacity_kw: float,
    temperature_c: float,
    availability: np.ndarray,
    heat_price_eur_per_mwh: float,
    supply_c: np.ndarray,
    return_c: float,
    need_kw: np.ndarray,
    approach_k: float,
    electricity_price_eur_per_mwh: np.ndarray,
    heat_pump: dict | None = None,
    taken_kw: np.ndarray | None = None,
    connection_kw: float | None = None,
    fixed_kw: np.ndarray | None = None,
) -> tuple[Producer, np.ndarray]:
    """Build the dispatch's view of an excess-heat source, direct, preheating or through a heat pump, hour by hour.

    The heat the source has for the study in hour ``t`` is ``capacity_kw × availability_t − taken_kw_t`` (at least
    0; ``taken_kw`` is what other users of the source take from it, e.g. the planned network's other consumers).
    Without a heat pump, with ``T_use = temperature_c − approach_k``:

    - ``T_use ≥ T_supply,t``: it feeds **directly**, up to that heat;
    - ``T_return < T_use < T_supply,t``: it **preheats** — it heats the network's whole flow from the return
      temperature up to ``T_use`` and other producers (boilers, electric boilers: a booster in series) lift it
      the rest of the way, so it gives at most the share
      ``f_t = (T_use − T_return) / (T_supply,t − T_return)`` of the hour's heat need ``need_kw`` (demand +
      network losses). Storage charging does not raise this cap: the cap is the flow to the consumers and the
      losses, the tank's charge is not counted;
    - ``T_use ≤ T_return``: it cannot feed (0).

    With a heat pump it feeds directly where hot enough and the heat pump lifts it in every other hour (the
    preheat rule does not apply). ``connection_kw`` caps the heat output in every hour (the capacity of the
    connection that carries it to the study's network).

    Parameters
    ----------
    name
        Unit name.
    capacity_kw, temperature_c, availability, heat_price_eur_per_mwh
        The source: heat it can give at full availability, its temperature, hourly availability factor and
        the price of its heat.
    supply_c
        The network's supply temperature in each hour (°C).
    return_c
        The network's return temperature (°C), below every supply temperature.
    need_kw
        The heat the network needs in each hour (demand + losses, kW): the preheating cap is ``f_t × need_kw``.
    approach_k
        Temperature difference a heat exchanger needs: the source feeds directly in hours where
        ``temperature_c ≥ supply_c + approach_k``.
    electricity_price_eur_per_mwh
        Hourly electricity price (for the heat pump).
    heat_pump
        ``None`` (no heat pump), or ``{"capacity_kw", "eta", "om_eur_per_mwh", "max_cop"}`` (``max_cop``
        default :data:`MAX_COP`): lifts the source's heat in the hours it is too cold to feed directly.
    taken_kw
        Heat other users take from the source in each hour (kW); ``None``: nobody else.
    connection_kw
        Largest heat output in any hour (kW); ``None``: no such limit.
    fixed_kw
        The heat it delivers in each hour, fixed (kW): what a planned network's year of operation sends the study
        from it (its own heat, a booster's lift not counted). It must lie within what the rules above allow (to
        0.5 kW and 0.1 %); the dispatch then holds it (lower bound = upper bound). ``None``: the dispatch chooses.

    Returns
    -------
    (Producer, numpy.ndarray)
        The producer (``preheat_hours`` marks the hours it preheats, ``too_cold_hours`` those it cannot feed) and
        the hourly COP (``inf`` in direct and preheat hours, ``nan`` where it cannot run).
    """
    T = len(supply_c)
    supply = np.asarray(supply_c, dtype=float)
    need = np.broadcast_to(np.asarray(need_kw, dtype=float), (T,))
    if np.any(supply <= return_c):
        raise ScenarioError(
            f"source {name}: the return temperature {return_c:g} °C must be below every supply temperature"
        )
    taken = np.zeros(T) if taken_kw is None else np.asarray(taken_kw, dtype=float)
    avail_kw = np.clip(capacity_kw * np.asarray(availability, dtype=float) - taken, 0.0, None)
    usable_c = temperature_c - approach_k
    direct = usable_c >= supply
    preheat = np.zeros(T, dtype=bool)
    max_kw = np.where(direct, avail_kw, 0.0)
    cost = np.full(T, float(heat_price_eur_per_mwh))
    elec = np.zeros(T)
    share = np.where(direct, 1.0, 0.0)
    cop_h = np.where(direct, np.inf, np.nan)
    kind = "excess_heat"
    nominal = capacity_kw
    if heat_pump is None:
        preheat = ~direct & (usable_c > return_c)
        f = (usable_c - return_c) / (supply - return_c)
        max_kw = np.where(preheat, np.minimum(avail_kw, f * need), max_kw)
        share = np.where(preheat, 1.0, share)
        cop_h = np.where(preheat, np.inf, cop_h)
    else:
        ceiling = heat_pump.get("max_cop", MAX_COP)
        c = cop(supply_c, temperature_c, eta=heat_pump["eta"], max_cop=ceiling)
        lift = ~direct & (c > 1.0)
        if (~direct).any() and not lift.any():
            logger.warning(
                "source %s: its heat pump's COP (η %g) is at most %.2f in the hours it would lift the heat, so it is "
                "never used (it would take more electricity than it gives heat); check eta, a share of the Carnot "
                "COP (0.4–0.6 is usual)",
                name, heat_pump["eta"], float(np.max(np.where(direct, 0.0, c))),
            )  # fmt: skip
        cop_h = np.where(lift, c, cop_h)
        c_safe = np.where(lift, c, 2.0)
        from_source = 1.0 - 1.0 / c_safe
        max_kw = np.where(lift, np.minimum(heat_pump["capacity_kw"], avail_kw / from_source), max_kw)
        cost = np.where(
            lift,
            heat_price_eur_per_mwh * from_source
            + np.asarray(electricity_price_eur_per_mwh) / c_safe
            + heat_pump.get("om_eur_per_mwh", 0.0),
            cost,
        )
        elec = np.where(lift, 1.0 / c_safe, 0.0)
        share = np.where(lift, from_source, share)
        kind = "excess_heat_heat_pump"
        nominal = max(capacity_kw if direct.any() else 0.0, heat_pump["capacity_kw"])
    if connection_kw is not None:
        max_kw = np.minimum(max_kw, float(connection_kw))
    min_kw: np.ndarray | float = 0.0
    if fixed_kw is not None:
        fixed = np.broadcast_to(np.asarray(fixed_kw, dtype=float), (T,))
        over = fixed - max_kw > np.maximum(0.5, 1e-3 * fixed)
        if over.any():
            h = int(np.flatnonzero(over)[0])
            raise ScenarioError(
                f"source {name}: the planned network sends the study {fixed[h]:,.0f} kW from it in hour {h}, more "
                f"than the {max_kw[h]:,.0f} kW it has then (capacity × availability less what others take, or its "
                f"preheating share); check its capacity and availability against the plan's"
            )
        max_kw = min_kw = np.clip(fixed, 0.0, None)
    producer = Producer(
        name=name,
        kind=kind,
        capacity_kw=nominal,
        max_kw=max_kw,
        cost_eur_per_mwh=cost,
        electricity_mwh_per_mwh=elec,
        excess_share=share,
        preheat_hours=preheat,
        min_kw=min_kw,
        too_cold_hours=np.isnan(cop_h),
        # the flow it preheats must be lifted by others (not where a planned network fixes its heat)
        preheat_share=np.where(preheat, f, 0.0) if heat_pump is None and fixed_kw is None and preheat.any() else None,
    )
    logger.info(
        "Source %s: %.0f kW at %.0f °C, %.0f MWh/a available, direct in %d h%s%s",
        name, capacity_kw, temperature_c, avail_kw.sum() / 1000, int(direct.sum()),
        f", preheats in {int(preheat.sum())} h" if heat_pump is None else f", heat pump in {int(lift.sum())} h",
        "" if connection_kw is None else f", at most {connection_kw:.0f} kW through its connection",
    )  # fmt: skip
    return producer, cop_h
