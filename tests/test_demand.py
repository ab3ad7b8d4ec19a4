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
