import geopandas as gpd
import pytest
from shapely.geometry import box

from heatmap import demand, settings
from heatmap.scenario import Demand

SETTINGS = Demand(
    specific_demand_table=settings.data_dir / "specific_heat_demand_fi.csv",
    building_types_table=settings.data_dir / "osm_building_types.csv",
    dhw_table=settings.data_dir / "dhw_fi.csv",
    degree_days=4656.3,
    default_floors=3,
    default_type="apartment_block",
    default_era="1970s",
    full_load_hours_h=2000,
)


def test_demand_by_hand_from_the_table():
    b = gpd.GeoDataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "building": ["apartments", "yes", "retail", "shed"],
            "building:levels": ["4", None, None, None],
            "height": [None, "9.6", None, None],
            "start_date": ["1935", None, "2012", None],
            "shop": [None, None, "supermarket", None],
        },
        geometry=[box(0, 0, 20, 10), box(0, 0, 10, 10), box(0, 0, 30, 30), box(0, 0, 5, 5)],
        crs="EPSG:3067",
    )
    d = demand.estimate_building_demand(b, SETTINGS).set_index("consumer_id")
    assert "d" not in d.index  # shed: unheated
    dd = 4656.3 / 4233  # = 1.1
    # a: 200 m² × 4 floors, apartment block of the 1950s era (1921–1959): 99 kWh/m² + 30 DHW
    assert d.loc["a", "annual_demand_mwh"] == pytest.approx(800 * (99 * dd + 30) / 1000)
    # b: building=yes → default type; height 9.6 m / 3.2 m = 3 floors; default era 1970s (109)
    assert d.loc["b", "annual_demand_mwh"] == pytest.approx(300 * (109 * dd + 30) / 1000)
    assert "height" in d.loc["b", "demand_method"] and "default era" in d.loc["b", "demand_method"]
    # c: shop tag → retail, 2012 → 2010s (80), no DHW; default floors 3
    assert d.loc["c", "annual_demand_mwh"] == pytest.approx(2700 * 80 * dd / 1000)
    assert (d.peak_load_kw == d.annual_demand_mwh * 1000 / 2000).all()
    total_hand = (800 * (99 * dd + 30) + 300 * (109 * dd + 30) + 2700 * 80 * dd) / 1000
    assert d.annual_demand_mwh.sum() == pytest.approx(total_hand)


def test_era_bins():
    import pandas as pd

    years = pd.Series([1800, 1920, 1921, 1959, 1960, 1985, 2005, 2017, 2018, None], dtype=float)
    assert demand.era_of_year(years).tolist()[:9] == [
        "-1920",
        "-1920",
        "1950s",
        "1950s",
        "1970s",
        "1990s",
        "2000s",
        "2010s",
        "2018-",
    ]
    assert pd.isna(demand.era_of_year(years).iloc[9])


def daily_steps(daily_means_c):
    """An hourly series holding each day's mean for 24 hours (its degree-hours are 24 × its degree days)."""
    import numpy as np

    return np.repeat(np.asarray(daily_means_c, dtype=float), 24)


def test_hourly_profile_sums_to_annual_and_peaks_at_the_design_temperature_rule():
    import numpy as np

    from heatmap import profiles

    # A year of daily means: a cosine from −15 °C in winter to +17 °C in summer, one cold day at −29 °C.
    days = np.arange(365)
    means = 1.0 - 16.0 * np.cos(2 * np.pi * (days - 15) / 365)
    means[20] = -29.0
    outdoor = daily_steps(means)
    degree_days = np.maximum(17 - means, 0).sum()
    b = gpd.GeoDataFrame(
        {"id": ["a", "b"], "building": ["apartments", "retail"], "building:levels": ["4", "2"]},
        geometry=[box(0, 0, 20, 10), box(0, 0, 30, 30)],
        crs="EPSG:3067",
    )
    rule = SETTINGS.model_copy(
        update={"peak_method": "design_temperature", "degree_days": degree_days, "design_temperature_c": -29.0}
    )
    d = demand.estimate_building_demand(b, rule)
    assert np.allclose(d.space_heat_mwh + d.dhw_mwh, d.annual_demand_mwh)
    load = profiles.hourly_load_kw(d.space_heat_mwh.to_numpy(), d.dhw_mwh.to_numpy(), outdoor, base_temperature_c=17)
    assert load.shape == (2, 8760)
    assert load.sum(axis=1) / 1000 == pytest.approx(d.annual_demand_mwh.to_numpy(), rel=1e-3)
    assert load.max(axis=1) == pytest.approx(d.peak_load_kw.to_numpy(), rel=1e-9)
    assert load.argmax(axis=1).tolist() == [20 * 24, 20 * 24]  # the cold day
    # Hand calculation of the retail building's peak: 900 m² × 2 floors, retail of the default era 1970s
    # (163 kWh/m²a in the table), no hot water.
    space_b = 1800 * 163 * (degree_days / 4233) / 1000
    assert d.space_heat_mwh.iloc[1] == pytest.approx(space_b)
    assert d.peak_load_kw.iloc[1] == pytest.approx(space_b * 1000 * (17 + 29) / (24 * degree_days))


def test_metered_demand_is_kept_and_recorded():
    b = gpd.GeoDataFrame(
        {"id": ["a", "b"], "building": ["apartments", "apartments"], "metered_mwh": [123.0, None]},
        geometry=[box(0, 0, 20, 10), box(0, 0, 20, 10)],
        crs="EPSG:3067",
    )
    d = demand.estimate_building_demand(b, SETTINGS.model_copy(update={"metered_column": "metered_mwh"}))
    assert d.annual_demand_mwh.iloc[0] == pytest.approx(123.0)
    assert d.demand_method.iloc[0].startswith("metered (metered_mwh)")
    assert d.annual_demand_mwh.iloc[1] == pytest.approx(200 * 3 * (109 * 4656.3 / 4233 + 30) / 1000)
    assert "OSM footprint" in d.demand_method.iloc[1]


def test_outdoor_temperature_file_is_checked(tmp_path):
    import pandas as pd

    from heatmap import profiles
    from heatmap._errors import InputDataError

    time = pd.date_range("2023-01-01", periods=8760, freq="h")
    path = tmp_path / "t.csv"
    pd.DataFrame({"time": time, "t_out_c": 0.0}).to_csv(path, index=False)
    assert len(profiles.read_outdoor_temperature(path)) == 8760
    pd.DataFrame({"time": time[:100], "t_out_c": 0.0}).to_csv(path, index=False)
    with pytest.raises(InputDataError, match="one row per hour"):
        profiles.read_outdoor_temperature(path)
    pd.DataFrame({"time": time, "t_out_c": 273.15}).to_csv(path, index=False)
    with pytest.raises(InputDataError, match="not kelvin"):
        profiles.read_outdoor_temperature(path)
