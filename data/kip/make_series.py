"""Rebuild the synthetic hourly series of the KIP scenario (outdoor temperature, electricity price).

Run from the repository root: ``.venv/bin/python data/kip/make_series.py``. The rules are in
:mod:`heatmap.demand.climate`; the inputs are ``kokkola_monthly_normals.csv`` and the settings below. The same inputs
and seeds always give the same files (a test checks the bundled files against a rebuild).
"""

from pathlib import Path

import pandas as pd

from heatmap.demand.climate import price_year, temperature_year

HERE = Path(__file__).resolve().parent
YEAR = 2023
TEMPERATURE_SEED = 1
PRICE = {"mean_eur_per_mwh": 60.0, "seasonal": 0.25, "peak": 0.15, "noise_std_eur_per_mwh": 25.0, "seed": 2}
"""Mean price for heat pumps and electric boilers, estimate: spot price plus network fee and electricity tax
(Finnish area spot prices were 44-47 EUR/MWh in 2018-19, 72 in 2021, 154 in 2022; shared reference README)."""


def temperature() -> pd.Series:
    """Build the synthetic Kokkola temperature year."""
    normals = pd.read_csv(HERE / "kokkola_monthly_normals.csv", comment="#")
    return temperature_year(
        normals.t_mean_c.tolist(),
        daily_std_k=normals.daily_std_k.tolist(),
        diurnal_range_k=normals.diurnal_range_k.tolist(),
        year=YEAR,
        seed=TEMPERATURE_SEED,
    )


def price() -> pd.Series:
    """Build the synthetic electricity price year."""
    return price_year(year=YEAR, **PRICE)


def write(folder: Path = HERE) -> None:
    """Write both series as CSV (time, value)."""
    header_t = (
        "# SYNTHETIC hourly outdoor temperature for Kokkola, built by heatmap.demand.climate.temperature_year from\n"
        "# kokkola_monthly_normals.csv (see data/kip/README.md). Not measured data.\n"
    )
    header_p = (
        "# SYNTHETIC hourly electricity price (EUR/MWh) built by heatmap.demand.climate.price_year\n"
        "# (see data/kip/README.md). Not market data.\n"
    )
    for series, name, header in (
        (temperature(), "kokkola_temperature_synthetic.csv", header_t),
        (price(), "electricity_price_synthetic.csv", header_p),
    ):
        text = header + series.rename_axis("time").reset_index().to_csv(index=False, date_format="%Y-%m-%dT%H:%M")
        (folder / name).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write()
