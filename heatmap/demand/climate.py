"""Hourly series of a year built by documented rules: outdoor temperature and electricity price (synthetic).

Where no measured hourly series can be bundled, these give a year with the right monthly means and a
plausible day-to-day and diurnal variation. They are labelled synthetic wherever they are used.

Outdoor temperature (:func:`temperature_year`)
    1. Daily means interpolated periodically (linear in day of year) between the monthly normals placed at
       mid-month.
    2. Plus a day-to-day weather anomaly: an AR(1) process (lag-one correlation ``persistence``) scaled to the
       month's standard deviation of daily means, from a seeded random generator (the same seed gives the
       same year).
    3. Plus a diurnal cycle: a cosine of half the month's diurnal range, minimum at 05:00, maximum at 17:00.
    4. Each month shifted so its mean equals the normal exactly.

Electricity price (:func:`price_year`)
    ``mean × (1 + seasonal · cos(2π (day − 15) / 365) + daily shape) + noise``: winter dearer than summer,
    a morning and an evening peak, and an AR(1) noise of a given standard deviation (seeded), floored at a
    minimum price. Scaled so its mean equals ``mean_eur_per_mwh``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)


def year_index(year: int) -> pd.DatetimeIndex:
    """Return the 8760 hours of ``year`` (local standard time; the 29th of February dropped in leap years)."""
    index = pd.date_range(
        f"{year}-01-01", periods=8784 if pd.Timestamp(year, 12, 31).dayofyear == 366 else 8760, freq="h"
    )
    return index[~((index.month == 2) & (index.day == 29))]


def _ar1(rng: np.random.Generator, n: int, persistence: float) -> np.ndarray:
    noise = rng.standard_normal(n)
    out = np.empty(n)
    out[0] = noise[0]
    scale = np.sqrt(1.0 - persistence**2)
    for i in range(1, n):  # n = 365 days (or 8760 hours for the price): cheap
        out[i] = persistence * out[i - 1] + scale * noise[i]
    return out


def temperature_year(
    monthly_mean_c: list[float],
    *,
    daily_std_k: list[float],
    diurnal_range_k: list[float],
    year: int = 2023,
    persistence: float = 0.8,
    seed: int = 1,
) -> pd.Series:
    """Build a synthetic hourly outdoor temperature year whose monthly means equal the given normals.

    Parameters
    ----------
    monthly_mean_c
        12 monthly mean temperatures (°C), January first.
    daily_std_k
        12 standard deviations of the daily mean about its monthly normal (K).
    diurnal_range_k
        12 mean differences between the daily maximum and minimum (K).
    year
        Calendar year of the time stamps.
    persistence
        Lag-one correlation of the day-to-day anomaly.
    seed
        Seed of the random generator.

    Returns
    -------
    pandas.Series
        ``t_out_c`` over the 8760 hours of ``year``.
    """
    for name, v in (
        ("monthly_mean_c", monthly_mean_c),
        ("daily_std_k", daily_std_k),
        ("diurnal_range_k", diurnal_range_k),
    ):
        if len(v) != 12:
            raise ValueError(f"{name}: give 12 monthly values")
    index = year_index(year)
    days = pd.date_range(f"{year}-01-01", periods=365, freq="D")
    doy = np.arange(365) + 0.5
    mid = np.array(
        [(pd.Timestamp(year, m, 1).dayofyear - 1) + pd.Timestamp(year, m, 1).days_in_month / 2 for m in range(1, 13)]
    )
    mean = np.asarray(monthly_mean_c, dtype=float)
    daily = np.interp(doy, np.concatenate([mid - 365, mid, mid + 365]), np.tile(mean, 3))
    month = days.month.to_numpy() - 1
    rng = np.random.default_rng(seed)
    daily = daily + _ar1(rng, 365, persistence) * np.asarray(daily_std_k, dtype=float)[month]
    hour_month = index.month.to_numpy() - 1
    day_of_hour = np.minimum(index.dayofyear.to_numpy() - 1, 364)
    hour = index.hour.to_numpy()
    diurnal = -0.5 * np.asarray(diurnal_range_k, dtype=float)[hour_month] * np.cos(2 * np.pi * (hour - 5) / 24.0)
    t = daily[day_of_hour] + diurnal
    for m in range(12):
        sel = hour_month == m
        t[sel] += mean[m] - t[sel].mean()
    series = pd.Series(np.round(t, 2), index=index, name="t_out_c")
    logger.info(
        "Synthetic temperature year %d: mean %.1f °C, min %.1f °C, max %.1f °C",
        year,
        series.mean(),
        series.min(),
        series.max(),
    )
    return series


def price_year(
    *,
    mean_eur_per_mwh: float,
    seasonal: float = 0.25,
    peak: float = 0.15,
    noise_std_eur_per_mwh: float = 25.0,
    persistence: float = 0.95,
    floor_eur_per_mwh: float = -5.0,
    year: int = 2023,
    seed: int = 2,
) -> pd.Series:
    """Build a synthetic hourly electricity price year (€/MWh) with a given mean.

    Parameters
    ----------
    mean_eur_per_mwh
        Mean price over the year.
    seasonal
        Relative amplitude of the seasonal cosine (dearest mid-January).
    peak
        Relative height of the morning (08:00) and evening (18:00) peaks.
    noise_std_eur_per_mwh, persistence
        Standard deviation and lag-one correlation of the hourly AR(1) noise.
    floor_eur_per_mwh
        Lowest price.
    year, seed
        Calendar year and random seed.

    Returns
    -------
    pandas.Series
        ``price_eur_per_mwh`` over the 8760 hours of ``year``.
    """
    index = year_index(year)
    day = index.dayofyear.to_numpy()
    hour = index.hour.to_numpy()
    shape = (
        1.0
        + seasonal * np.cos(2 * np.pi * (day - 15) / 365.0)
        + peak * (np.exp(-0.5 * ((hour - 8) / 1.5) ** 2) + np.exp(-0.5 * ((hour - 18) / 2.0) ** 2))
        - 0.1 * peak * (hour < 5)
    )
    price = mean_eur_per_mwh * shape + noise_std_eur_per_mwh * _ar1(
        np.random.default_rng(seed), len(index), persistence
    )
    for _ in range(20):  # shift the hours above the floor until the mean holds (converges in a few rounds)
        price = np.maximum(price, floor_eur_per_mwh)
        above = price > floor_eur_per_mwh
        gap = mean_eur_per_mwh * len(price) - price.sum()
        if abs(gap) < 1e-6 * len(price):
            break
        price[above] += gap / above.sum()
    series = pd.Series(np.round(price, 2), index=index, name="price_eur_per_mwh")
    logger.info(
        "Synthetic price year %d: mean %.1f €/MWh, min %.1f, max %.1f", year, series.mean(), series.min(), series.max()
    )
    return series


def supply_temperature_c(
    outdoor_c: np.ndarray, *, max_c: float, min_c: float, outdoor_at_max_c: float, outdoor_at_min_c: float
) -> np.ndarray:
    """Return the network's supply temperature following the outdoor temperature (a linear heating curve).

    ``max_c`` at or below ``outdoor_at_max_c``, ``min_c`` at or above ``outdoor_at_min_c``, linear between.

    Examples
    --------
    >>> supply_temperature_c(np.array([-30.0, -10.0, 15.0]), max_c=115, min_c=75, outdoor_at_max_c=-30,
    ...                      outdoor_at_min_c=10).tolist()
    [115.0, 95.0, 75.0]
    """
    return np.interp(np.asarray(outdoor_c, dtype=float), [outdoor_at_max_c, outdoor_at_min_c], [max_c, min_c])


def network_losses_kw(
    supply_c: np.ndarray, *, return_c: float, ground_c: float, heat_loss_coefficient_w_per_k: float
) -> np.ndarray:
    """Hourly heat loss of a network: ``UA · ((T_supply + T_return) / 2 − T_ground)``, in kW.

    Examples
    --------
    >>> network_losses_kw(np.array([85.0]), return_c=45, ground_c=5, heat_loss_coefficient_w_per_k=50_000).tolist()
    [3000.0]
    """
    mean = (np.asarray(supply_c, dtype=float) + return_c) / 2.0
    return np.maximum(mean - ground_c, 0.0) * heat_loss_coefficient_w_per_k / 1000.0
