"""Hourly heat-load profiles from annual demand and an outdoor-temperature series (degree-hour method).

Space heat follows the heating degree-hours: the share of the year's space heat falling in hour ``h`` is
``max(0, T_base − T_h) / Σ max(0, T_base − T)``; domestic hot water is a flat base load of ``annual / hours``.
A building's profile therefore sums to its annual demand, and in the coldest hour it reaches
``space × (T_base − T_min) / Σ degree-hours + hot water / hours``: with ``T_min`` the design temperature and
the series' degree-hours equal to ``24 h ×`` the scenario's degree days, that is exactly the
``design_temperature`` peak rule of :mod:`heatmap.demand.buildings`.

The outdoor temperature comes from a CSV file with columns ``time`` and ``t_out_c``, one row per hour of a
calendar year (8760 rows, 8784 in a leap year), e.g. an FMI observation series of the nearest station. Times
are either all local without an offset (``2023-01-01T00:00``) or all with their UTC offset
(``2023-01-01T00:00+02:00``, ``…Z``); with offsets they are converted to UTC, so a series in Finnish time that
changes from ``+02:00`` to ``+03:00`` for summer time stays one row per hour.
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
        The values, indexed by time (``index`` where given); ``attrs["where"]`` names the file and column.
    """
    table = read_hourly_table(path, [column], index, lower=lower, upper=upper, what=what, hint=hint)
    series = table[column]
    series.attrs["where"] = f"{path} (column {column})"
    return series


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
        ``+03:00`` for summer time is read in standard time). ``None``: the hours of any one calendar year,
        from 1 January 00:00 (in the first row's offset), hourly and in order: 8760 rows, 8784 in a leap year
        (an 8784-row file of another year would run into the next year and is refused); times with offsets are
        converted to UTC.
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
    given = table["time"].notna().to_numpy() & (text != "").to_numpy()
    day_first = given & ~text.str.match(YEAR_FIRST, na=False).to_numpy()  # 01.02.2023: 1 February or 2 January?
    if day_first.any():
        k = int(np.flatnonzero(day_first)[0])
        raise InputDataError(
            f"{path}: line {lines[k]}: time {text.iloc[k]!r} is not written year first (ISO 8601); a day and month "
            f"before the year can be read either way round: write e.g. 2023-01-31T00:00 ({int(day_first.sum())} rows)"
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
        _check_one_year(path, times, lines, text, what=what)
    else:
        if offset.all():
            times = times.tz_convert(pd.Timestamp(text.iloc[0]).tz).tz_localize(None)
        if len(times) != len(index):
            leap_day = (index.month == 2) & (index.day == 29)
            dropped = pd.Timestamp(index[0].year, 12, 31).dayofyear == 366 and not leap_day.any()
            raise InputDataError(
                f"{path}: {what} file holds {len(times)} rows; give one row per hour from {index[0]:%Y-%m-%d %H:%M} "
                f"to {index[-1]:%Y-%m-%d %H:%M} ({len(index)} rows{', without 29 February' if dropped else ''})"
                f"{_leap_note(len(times), index[0].year)}"
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


YEAR_FIRST = r"^\d{4}[-/]\d{1,2}[-/]\d{1,2}(?:[T ]\d{1,2}(?::\d{2}){0,2}(?:\.\d+)?)?(?:Z|[+-]\d\d:?\d\d)?$"
"""How an hourly file's time must be written: year, month, day (ISO 8601 or with slashes), then the time of day."""


def hours_of_year(year: int) -> int:
    """Return the hours of a calendar year: 8784 in a leap year, else 8760."""
    return 8784 if pd.Timestamp(year, 12, 31).dayofyear == 366 else 8760


def _leap_note(rows: int, year: int) -> str:
    if rows == 8784 and hours_of_year(year) == 8760:
        return f"; 8784 rows are a leap year's hours, and {year} is no leap year"
    if rows in (4 * 8760, 4 * 8784):
        return "; these look like 15-minute values (as the Nordic day-ahead market prices): average each hour's four"
    return ""


def _check_one_year(path: Path, times: pd.DatetimeIndex, lines: np.ndarray, text: pd.Series, *, what: str) -> None:
    """Refuse times that are not the hours of one calendar year, hourly and in order (any year, in its own clock).

    Times with a UTC offset are judged in the offset of the first row (a Finnish series in ``+02:00`` starts at
    ``2023-01-01T00:00+02:00``). An 8784-row file of a year that is no leap year would run into the next year.
    """
    if len(times) < 2:
        raise InputDataError(f"{path}: {what} file holds {len(times)} rows; give one row per hour of one year")
    step = np.flatnonzero((times[1:] - times[:-1]) != pd.Timedelta(hours=1))
    if len(step):
        k = int(step[0]) + 1
        raise InputDataError(
            f"{path}: line {lines[k]} is not one hour after line {lines[k - 1]}; give one row per hour of one year, "
            f"in order ({len(step)} steps differ)"
        )
    clock = times.tz_convert(pd.Timestamp(text.iloc[0]).tz) if times.tz is not None else times
    year = clock[0].year
    expected = hours_of_year(year)
    if clock[0] != clock[0].normalize().replace(month=1, day=1) or len(times) != expected:
        raise InputDataError(
            f"{path}: {what} file holds {len(times)} rows, from {clock[0]:%Y-%m-%d %H:%M} to "
            f"{clock[-1]:%Y-%m-%d %H:%M}; give one row per hour of one calendar year: {year} has {expected} hours, "
            f"1 January 00:00 to 31 December 23:00{_leap_note(len(times), year)}"
        )


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


def degree_hours(outdoor_c: np.ndarray | pd.Series, *, base_temperature_c: float) -> np.ndarray:
    """Heating degree-hours of each hour, ``max(0, T_base − T_h)`` (K·h)."""
    return np.maximum(base_temperature_c - np.asarray(outdoor_c, dtype=float), 0.0)


def hourly_load_kw(
    space_heat_mwh: float | np.ndarray,
    dhw_mwh: float | np.ndarray,
    outdoor_c: np.ndarray | pd.Series,
    *,
    base_temperature_c: float,
) -> np.ndarray:
    """Hourly heat load of one building, of several, or of a total.

    Parameters
    ----------
    space_heat_mwh, dhw_mwh
        Annual space heat and hot water (MWh/a): scalars, or arrays of one value per building.
    outdoor_c
        Hourly outdoor temperature over a year (°C); a series of :func:`read_hourly` names its file in messages.
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
        where = getattr(outdoor_c, "attrs", {}).get("where", "")
        raise InputDataError(
            f"{f'{where}: ' if where else ''}the outdoor temperature never falls below the base temperature "
            f"{base_temperature_c:g} °C (base_temperature_c), so no hour needs space heat; check the file's unit "
            "(°C, not °F or kelvin), or give the demand shape: flat"
        )
    space = np.asarray(space_heat_mwh, dtype=float)[..., None]
    hot_water = np.asarray(dhw_mwh, dtype=float)[..., None]
    load = 1000.0 * (space * dh / total_dh + hot_water / len(dh))
    logger.info("Hourly load over %d hours: %.0f MWh, peak %.0f kW", len(dh), load.sum() / 1000, load.sum(axis=0).max())
    return load
