"""Industrial excess-heat sources: presets, availability over the year, heat-pump COP, producers for the dispatch.

A source has a temperature level, a capacity (kW of heat it can give), an availability over the year (a
constant factor, 12 monthly factors, or an 8760-hour CSV), a price of its heat (€/MWh) and a cost of the
recovery equipment (heat exchanger, €/kW). A source hot enough for the network's supply temperature in an
hour feeds directly; a colder one needs a heat pump whose COP follows the lift (Carnot × η)::

    COP = min(η · T_hot / (T_hot − T_cold), max_cop)   (kelvin; T_hot the supply, T_cold the source)

The cap ``max_cop`` (:data:`heatmap.energy.energy_scenario.MAX_COP` by default) keeps the Carnot rule from
promising what no machine gives at small lifts (η 0.5 gives COP 17 at a 10 K lift).

The pump's heat output is the source heat plus its electricity: per MWh delivered, ``1 − 1/COP`` MWh come
from the source and ``1/COP`` MWh of electricity are bought at the hour's price.
"""

from __future__ import annotations

import logging
from pathlib import Path

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


def availability_hourly(availability, index: pd.DatetimeIndex, *, base_dir: Path) -> np.ndarray:
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
    approach_k: float,
    electricity_price_eur_per_mwh: np.ndarray,
    heat_pump: dict | None = None,
) -> tuple[Producer, np.ndarray]:
    """Build the dispatch's view of an excess-heat source, direct or through a heat pump, hour by hour.

    Parameters
    ----------
    name
        Unit name.
    capacity_kw, temperature_c, availability, heat_price_eur_per_mwh
        The source: heat it can give at full availability, its temperature, hourly availability factor and
        the price of its heat.
    supply_c
        The network's supply temperature in each hour.
    approach_k
        Temperature difference a heat exchanger needs: the source feeds directly in hours where
        ``temperature_c ≥ supply_c + approach_k``.
    electricity_price_eur_per_mwh
        Hourly electricity price (for the heat pump).
    heat_pump
        ``None`` (no heat pump), or ``{"capacity_kw", "eta", "om_eur_per_mwh", "max_cop"}`` (``max_cop``
        default :data:`MAX_COP`): lifts the source's heat in the hours it is too cold to feed directly.

    Returns
    -------
    (Producer, numpy.ndarray)
        The producer and the hourly COP (``inf`` in direct hours, ``nan`` where it cannot run).
    """
    T = len(supply_c)
    avail_kw = capacity_kw * np.asarray(availability, dtype=float)
    direct = temperature_c >= np.asarray(supply_c) + approach_k
    max_kw = np.where(direct, avail_kw, 0.0)
    cost = np.full(T, float(heat_price_eur_per_mwh))
    elec = np.zeros(T)
    share = np.where(direct, 1.0, 0.0)
    cop_h = np.where(direct, np.inf, np.nan)
    kind = "excess_heat"
    nominal = capacity_kw
    if heat_pump is not None:
        ceiling = heat_pump.get("max_cop", MAX_COP)
        c = cop(supply_c, temperature_c, eta=heat_pump["eta"], max_cop=ceiling)
        lift = ~direct & (c > 1.0)
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
    producer = Producer(
        name=name,
        kind=kind,
        capacity_kw=nominal,
        max_kw=max_kw,
        cost_eur_per_mwh=cost,
        electricity_mwh_per_mwh=elec,
        excess_share=share,
    )
    logger.info(
        "Source %s: %.0f kW at %.0f °C, %.0f MWh/a available, direct in %d h%s",
        name, capacity_kw, temperature_c, avail_kw.sum() / 1000, int(direct.sum()),
        "" if heat_pump is None else f", heat pump in {int(lift.sum())} h",
    )  # fmt: skip
    return producer, cop_h
