"""Hourly heat-load profiles from annual demand and an outdoor-temperature series (degree-hour method).

Space heat follows the heating degree-hours: the share of the year's space heat falling in hour ``h`` is
``max(0, T_base − T_h) / Σ max(0, T_base − T)``; domestic hot water is a flat base load of ``annual / hours``.
A building's profile therefore sums to its annual demand, and in the coldest hour it reaches
``space × (T_base − T_min) / Σ degree-hours + hot water / hours``: with ``T_min`` the design temperature and
the series' degree-hours equal to ``24 h ×`` the scenario's degree days, that is exactly the
``design_temperature`` peak rule of :mod:`heatmap.demand`.

The outdoor temperature comes from a CSV file with columns ``time`` and ``t_out_c``, one row per hour of a
year (8760 or 8784 rows), e.g. an FMI observation series of the nearest station. Times are either all local
without an offset (``2023-01-01T00:00``) or all with their UTC offset (``2023-01-01T00:00+02:00``, ``…Z``); with
offsets they are converted to UTC, so a series in Finnish time that changes from ``+02:00`` to ``+03:00`` for
summer time stays one row per hour.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from heatmap._errors import InputDataError

logger = logging.getLogger(__name__)


def read_outdoor_temperature(path: str | Path) -> pd.Series:
    """Read an hourly outdoor-temperature series of one year.

    Parameters
    ----------
    path
        CSV with columns ``time`` (ISO timestamps) and ``t_out_c`` (°C).

    Returns
    -------
    pandas.Series
        ``t_out_c`` indexed by time.
    """
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"{path}: outdoor-temperature file not found")
    try:
        table = pd.read_csv(path, comment="#")
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputDataError(f"{path}: cannot be read as CSV ({exc})") from exc
    missing = {"time", "t_out_c"} - set(table.columns)
    if missing:
        raise InputDataError(f"{path}: columns {', '.join(sorted(missing))} missing; give time and t_out_c (°C)")
    text = table["time"].astype(str).str.strip()
    offset = text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True)
    if offset.any() and not offset.all():
        rows = ", ".join(str(i + 2) for i in np.flatnonzero(~offset)[:10])  # +2: header line, 1-based
        raise InputDataError(
            f"{path}: some times carry a UTC offset (e.g. +02:00) and lines {rows} do not; give every time with "
            f"its offset, or none"
        )
    time = pd.to_datetime(text, errors="coerce", utc=bool(offset.all()))
    t_out = pd.to_numeric(table["t_out_c"], errors="coerce")
    bad = time.isna() | t_out.isna()
    if bad.any():
        rows = ", ".join(str(i + 2) for i in np.flatnonzero(bad)[:10])  # +2: header line, 1-based
        raise InputDataError(f"{path}: lines {rows} have no valid time or t_out_c; fill the gaps")
    if len(t_out) not in (8760, 8784) or not (time.diff().dropna() == pd.Timedelta(hours=1)).all():
        raise InputDataError(f"{path}: give one row per hour of one year (8760 or 8784 rows, hourly, in order)")
    if not t_out.between(-70, 50).all():
        raise InputDataError(f"{path}: t_out_c outside −70…50 °C; give °C, not kelvin or °F")
    series = pd.Series(t_out.to_numpy(dtype=float), index=pd.DatetimeIndex(time), name="t_out_c")
    logger.info("Read %d hours of outdoor temperature from %s (min %.1f °C)", len(series), path, series.min())
    return series


def degree_hours(outdoor_c: np.ndarray, *, base_temperature_c: float) -> np.ndarray:
    """Heating degree-hours of each hour, ``max(0, T_base − T_h)`` (K·h)."""
    return np.maximum(base_temperature_c - np.asarray(outdoor_c, dtype=float), 0.0)


def hourly_load_kw(
    space_heat_mwh: float | np.ndarray,
    dhw_mwh: float | np.ndarray,
    outdoor_c: np.ndarray,
    *,
    base_temperature_c: float,
) -> np.ndarray:
    """Hourly heat load of one building, of several, or of a total.

    Parameters
    ----------
    space_heat_mwh, dhw_mwh
        Annual space heat and hot water (MWh/a): scalars, or arrays of one value per building.
    outdoor_c
        Hourly outdoor temperature over a year (°C).
    base_temperature_c
        Base temperature of the degree-hours.

    Returns
    -------
    numpy.ndarray
        kW per hour: shape ``(hours,)`` for scalars, ``(buildings, hours)`` for arrays (8 bytes × buildings
        × hours: sum the buildings first where only the total is wanted).
    """
    dh = degree_hours(outdoor_c, base_temperature_c=base_temperature_c)
    total_dh = dh.sum()
    if total_dh <= 0:
        raise InputDataError(
            f"the outdoor temperature never falls below the base temperature {base_temperature_c:g} °C"
        )
    space = np.asarray(space_heat_mwh, dtype=float)[..., None]
    hot_water = np.asarray(dhw_mwh, dtype=float)[..., None]
    load = 1000.0 * (space * dh / total_dh + hot_water / len(dh))
    logger.info("Hourly load over %d hours: %.0f MWh, peak %.0f kW", len(dh), load.sum() / 1000, load.sum(axis=0).max())
    return load
