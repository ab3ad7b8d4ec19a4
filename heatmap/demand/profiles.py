"""Hourly heat-load profiles from annual demand and an outdoor-temperature series (degree-hour method).

Space heat follows the heating degree-hours: the share of the year's space heat falling in hour ``h`` is
``max(0, T_base − T_h) / Σ max(0, T_base − T)``; domestic hot water is a flat base load of ``annual / hours``.
A building's profile therefore sums to its annual demand, and in the coldest hour it reaches
``space × (T_base − T_min) / Σ degree-hours + hot water / hours``: with ``T_min`` the design temperature and
the series' degree-hours equal to ``24 h ×`` the scenario's degree days, that is exactly the
``design_temperature`` peak rule of :mod:`heatmap.demand.buildings`.

The outdoor temperature comes from a CSV file with columns ``time`` and ``t_out_c``, one row per hour of a
year (8760 or 8784 rows), e.g. an FMI observation series of the nearest station. Times are either all local
without an offset (``2023-01-01T00:00``) or all with their UTC offset (``2023-01-01T00:00+02:00``, ``…Z``); with
offsets they are converted to UTC, so a series in Finnish time that changes from ``+02:00`` to ``+03:00`` for
summer time stays one row per hour.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from heatmap._errors import InputDataError
from heatmap.io.tables import csv_file_lines, read_csv_table

logger = logging.getLogger(__name__)


def _shown_lines(lines: np.ndarray, limit: int = 10) -> str:
    more = f" and {len(lines) - limit} more" if len(lines) > limit else ""
    return f"line{'s' if len(lines) > 1 else ''} {', '.join(map(str, lines[:limit]))}{more}"


def read_hourly(
    path: str | Path,
    column: str,
    index: pd.DatetimeIndex | None = None,
    *,
    lower: float,
    upper: float,
    what: str = "hourly series",
    hint: str = "",
) -> pd.Series:
    """Read one column of an hourly CSV (columns ``time`` and ``column``; ``#`` lines are comments).

    See :func:`read_hourly_table` for the parameters and the errors.

    Returns
    -------
    pandas.Series
        The values, indexed by time (``index`` where given).
    """
    table = read_hourly_table(path, [column], index, lower=lower, upper=upper, what=what, hint=hint)
    return table[column]


def read_hourly_table(
    path: str | Path,
    columns: Sequence[str],
    index: pd.DatetimeIndex | None = None,
    *,
    lower: float,
    upper: float,
    what: str = "hourly series",
    hint: str = "",
) -> pd.DataFrame:
    """Read columns of an hourly CSV (a ``time`` column and ``columns``; ``#`` lines are comments), in one pass.

    Errors name the file, its line numbers and what to fix.

    Parameters
    ----------
    path
        The CSV file.
    columns
        The columns holding the values.
    index
        The hours the series must hold, in order (e.g. :func:`heatmap.demand.climate.year_index`); times with a UTC
        offset are taken in the offset of the first row (a Finnish series changing from ``+02:00`` to
        ``+03:00`` for summer time is read in standard time). ``None``: any one year of hours (8760 or 8784
        rows, hourly, in order); times with offsets are converted to UTC.
    lower, upper
        The range every value must lie in.
    what
        What the file holds, for messages.
    hint
        Appended to the message on values out of range (e.g. the unit expected).

    Returns
    -------
    pandas.DataFrame
        The values, indexed by time (``index`` where given).
    """
    path = Path(path)
    named = ", ".join(columns)
    table = read_csv_table(path, required=("time", *columns), what=f"{what} file", hint=f"; give time and {named}")
    lines = csv_file_lines(path, len(table))
    text = table["time"].astype(str).str.strip()
    offset = text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True).to_numpy()
    if offset.any() and not offset.all():
        raise InputDataError(
            f"{path}: some times carry a UTC offset (e.g. +02:00) and {_shown_lines(lines[~offset])} do not; "
            f"give every time with its offset, or none"
        )
    time = pd.to_datetime(text, errors="coerce", utc=bool(offset.all()))
    values = table[list(columns)].apply(pd.to_numeric, errors="coerce")
    for column in columns:
        bad = (time.isna() | values[column].isna()).to_numpy()
        if bad.any():
            raise InputDataError(f"{path}: {_shown_lines(lines[bad])} have no valid time or {column}; fill the gaps")
        out = ((values[column] < lower) | (values[column] > upper)).to_numpy()
        if out.any():
            raise InputDataError(f"{path}: {column} outside {lower:g}…{upper:g} on {_shown_lines(lines[out])}{hint}")
    times = pd.DatetimeIndex(time)
    if index is None:
        if len(values) not in (8760, 8784) or not (times[1:] - times[:-1] == pd.Timedelta(hours=1)).all():
            raise InputDataError(f"{path}: give one row per hour of one year (8760 or 8784 rows, hourly, in order)")
    else:
        if offset.all():
            times = times.tz_convert(pd.Timestamp(text.iloc[0]).tz).tz_localize(None)
        if len(times) != len(index):
            raise InputDataError(
                f"{path}: {len(times)} rows; give one row per hour from {index[0]:%Y-%m-%d %H:%M} to "
                f"{index[-1]:%Y-%m-%d %H:%M} ({len(index)} rows)"
            )
        wrong = np.flatnonzero(times != index)
        if len(wrong):
            k = wrong[0]
            raise InputDataError(
                f"{path}: line {lines[k]} has time {times[k]:%Y-%m-%d %H:%M} where {index[k]:%Y-%m-%d %H:%M} is "
                f"expected; give the hours of {index[0].year} in order ({len(wrong)} rows differ)"
            )
    out = pd.DataFrame(values.to_numpy(dtype=float), index=times if index is None else index, columns=list(columns))
    logger.info(
        "Read %d hours of %s from %s (means %s)", len(out), named, path, ", ".join(f"{m:.4g}" for m in out.mean())
    )
    return out


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
    return read_hourly(
        path, "t_out_c", lower=-70, upper=50, what="outdoor-temperature", hint="; give °C, not kelvin or °F"
    )


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
