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


ELECTROLYSER = {"annual_demand_mwh": 1500.0, "hot_water_share": 0.2, "sale_kw": 4000.0, "price_quantile": 0.4}
"""The hypothetical electrolyser site of kip_network.yaml (ESTIMATES): its buildings draw 1,500 MWh/a (degree-hours,
base 17 C, 20 % flat hot water); the electrolyser runs in the hours when electricity is cheapest (at or below the
year's 40th price percentile) and then sells 4,000 kW of its waste heat (20 MW electric input x ~25 % heat x ~80 %
recovered) to the network, less what its buildings draw."""


TOWN = {"annual_mwh": 360000.0, "hot_water_share": 0.2, "connection_kw": 11000.0}
"""The town's district heating as seen from the park's connection point (ESTIMATES, as kip.yaml's demand): the
town draws its hourly demand (360 GWh/a by degree-hours, 20 % flat hot water) up to the connection's 11,000 kW;
the rest comes from the town's own plants."""
PROCESS_MWH = {"keliber": 15000.0, "umicore": 8000.0}
"""Process heat users of kip_network.yaml (ESTIMATES): a flat load, annual / 8760 h."""


def site_profiles() -> pd.DataFrame:
    """Build the hourly net heat (kW; + buys, - sells) of the park's sites that do not follow degree-hours."""
    t_out = temperature().to_numpy()

    def degree_hour_load(annual_mwh: float, hot_water_share: float):
        return hourly_load_kw(
            annual_mwh * (1 - hot_water_share), annual_mwh * hot_water_share, t_out, base_temperature_c=17.0
        )

    e = ELECTROLYSER
    p = price()
    runs = (p <= p.quantile(e["price_quantile"])).to_numpy()
    own = degree_hour_load(e["annual_demand_mwh"], e["hot_water_share"])
    town = degree_hour_load(TOWN["annual_mwh"], TOWN["hot_water_share"]).clip(max=TOWN["connection_kw"])
    columns = {"town_dh": town} | {k: np.full(len(t_out), v * 1000 / len(t_out)) for k, v in PROCESS_MWH.items()}
    columns["kip_h2_electrolyser"] = own - e["sale_kw"] * runs
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
        "# SYNTHETIC hourly net heat (kW; + buys, - sells) of the sites of kip_network.yaml that do not follow\n"
        "# degree-hours, built by data/kip/make_series.py (TOWN, PROCESS_MWH, ELECTROLYSER: estimates) from the\n"
        "# synthetic temperature and price. Not measured.\n"
    )
    text = header_s + site_profiles().rename_axis("time").reset_index().to_csv(
        index=False, date_format="%Y-%m-%dT%H:%M"
    )
    (folder / "kip_site_profiles.csv").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    write()
