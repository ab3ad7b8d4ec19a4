"""Rebuild the synthetic hourly series of the KIP scenario (outdoor temperature, electricity price).

Run from the repository root: ``.venv/bin/python data/kip/make_series.py``. The rules are in
:mod:`heatmap.demand.climate`; the inputs are ``kokkola_monthly_normals.csv`` and the settings below. The same inputs
and seeds always give the same files (a test checks the bundled files against a rebuild).
"""

from pathlib import Path

import numpy as np
import pandas as pd

from heatmap.demand.climate import price_year, temperature_year
from heatmap.demand.profiles import hourly_load_kw

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


ELECTROLYSER_SALE = {"sale_kw": 4000.0, "price_quantile": 0.4}
"""The hypothetical electrolyser site's sale (ESTIMATES): the electrolyser runs in the hours when electricity is
cheapest (at or below the year's 40th price percentile) and then sells 4,000 kW of its waste heat (20 MW electric
input x ~25 % heat x ~80 % recovered) to the network, less what its buildings draw."""


def site_profiles() -> pd.DataFrame:
    """Build the hourly net heat (kW; + buys, - sells) of the study's sites that name a profile.

    The sites' figures come from the study (data/scenarios/kip.yaml): a site of shape degree_hours draws its annual
    heat by heating degree-hours with the year's hot-water share flat, one of shape flat its annual / 8760 h; the
    network's sink (the town behind its connection point) draws its demand up to its design load, the connection's
    capacity (the rest comes from the town's own plants); the electrolyser sells as ELECTROLYSER_SALE says.
    """
    from heatmap.study import read_study

    study = read_study(HERE.parent / "scenarios" / "kip.yaml")
    y = study.year
    t_out = temperature().to_numpy()
    p = price()
    columns = {}
    for c in study.consumers:
        if not c.profile:
            continue
        if c.shape == "flat":
            load = np.full(len(t_out), c.annual_demand_mwh * 1000 / len(t_out))
        else:
            load = hourly_load_kw(
                c.annual_demand_mwh * (1 - y.hot_water_share),
                c.annual_demand_mwh * y.hot_water_share,
                t_out,
                base_temperature_c=y.base_temperature_c,
            )
        if c.id == study.network.sink:
            load = load.clip(max=c.peak_load_kw)
        if c.t_feed_in_c is not None:
            runs = (p <= p.quantile(ELECTROLYSER_SALE["price_quantile"])).to_numpy()
            load = load - ELECTROLYSER_SALE["sale_kw"] * runs
        columns[c.id] = load
    return pd.DataFrame(columns, index=p.index).round(1)


def write(folder: Path = HERE) -> None:
    """Write the series as CSV (time, values): temperature, electricity price, the prosumer's net heat."""
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
    header_s = (
        "# SYNTHETIC hourly net heat (kW; + buys, - sells) of the sites of data/scenarios/kip.yaml that name a\n"
        "# profile, built by data/kip/make_series.py from the study's figures (estimates) and the synthetic\n"
        "# temperature and price. Not measured.\n"
    )
    text = header_s + site_profiles().rename_axis("time").reset_index().to_csv(
        index=False, date_format="%Y-%m-%dT%H:%M"
    )
    (folder / "kip_site_profiles.csv").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write()
