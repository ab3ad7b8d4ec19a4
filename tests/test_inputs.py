import geopandas as gpd
import pandas as pd
import pytest
from pyproj import CRS
from shapely.geometry import Point, Polygon

from heatmap._errors import InputDataError
from heatmap.io import inputs


def write_csv(tmp_path, rows, name="c.csv"):
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_metric_crs_is_tm35fin_in_finland_else_utm():
    assert inputs.metric_crs_for(23.05, 63.86).to_epsg() == 3067
    assert inputs.metric_crs_for(10.2, 56.15).to_epsg() == 32632  # Aarhus
    assert inputs.metric_crs_for(-70.6, -33.4).to_epsg() == 32719  # Santiago


def test_csv_consumers_in_degrees_are_projected_and_peak_derived(tmp_path):
    path = write_csv(
        tmp_path,
        {
            "id": [1, 2],
            "lon": [23.05, 23.06],
            "lat": [63.86, 63.87],
            "annual_demand_mwh": [200.0, 100.0],
            "peak_load_kw": [None, 80.0],
        },
    )
    raw = inputs.read_features(path, id_column="id", what="consumers")
    c = inputs.prepare_consumers(raw, crs=CRS.from_epsg(3067), full_load_hours_h=2000, default_min_supply_c=70)
    assert c.crs.to_epsg() == 3067 and c.geometry.x.between(3e5, 4e5).all()
    assert c.peak_load_kw.tolist() == [100.0, 80.0]
    assert "2000 full-load hours" in c.demand_method.iloc[0] and c.consumer_id.tolist() == ["1", "2"]


def test_features_the_metric_crs_cannot_hold_are_named(tmp_path):
    # Found by hypothesis: a point on the equator projects to infinity in the Finnish TM35FIN.
    path = write_csv(
        tmp_path,
        {"id": ["near", "far"], "lon": [23.05, -54.0], "lat": [63.86, 0.0], "annual_demand_mwh": [200.0, 100.0]},
    )
    raw = inputs.read_features(path, id_column="id", what="consumers")
    with pytest.raises(InputDataError, match=r"c.csv, line 3: features far cannot be placed in EPSG:3067"):
        inputs.prepare_consumers(raw, crs=CRS.from_epsg(3067), full_load_hours_h=2000, default_min_supply_c=70)


def test_geopackage_in_another_crs_is_read(tmp_path):
    path = tmp_path / "s.gpkg"
    gpd.GeoDataFrame({"id": ["S1"], "capacity_kw": [5000.0]}, geometry=[Point(23.05, 63.86)], crs=4326).to_crs(
        3857
    ).to_file(path, layer="plants")
    raw = inputs.read_features(path, id_column="id", what="sources")
    s = inputs.prepare_sources(raw, crs=CRS.from_epsg(3067), default_t_supply_c=85)
    assert s.t_supply_c.iloc[0] == 85 and s.crs.to_epsg() == 3067


def test_a_source_without_its_supply_temperature_among_others_is_warned_of(tmp_path, caplog):
    path = write_csv(tmp_path, {"id": ["S1", "S2"], "lon": [23.05, 23.06], "lat": [63.86, 63.86],
                                "capacity_kw": [5000.0, 3000.0], "t_supply_c": [95.0, None]})  # fmt: skip
    raw = inputs.read_features(path, id_column="id", what="sources")
    with caplog.at_level("WARNING", logger="heatmap.io.inputs"):
        s = inputs.prepare_sources(raw, crs=CRS.from_epsg(3067), default_t_supply_c=85)
    assert s.t_supply_c.tolist() == [95.0, 85.0]
    assert "line 3: sources S2 give no 't_supply_c'; they supply at temperatures.supply_c, 85 °C" in caplog.text
    caplog.clear()
    path = write_csv(tmp_path, {"id": ["S1"], "lon": [23.05], "lat": [63.86], "capacity_kw": [5000.0]})
    raw = inputs.read_features(path, id_column="id", what="sources")
    with caplog.at_level("WARNING", logger="heatmap.io.inputs"):
        inputs.prepare_sources(raw, crs=CRS.from_epsg(3067), default_t_supply_c=85)
    assert "t_supply_c" not in caplog.text  # no column at all: every source at the setting, as documented


@pytest.mark.parametrize(
    "rows,match",
    [
        ({"id": [1, 1], "lon": [23, 23], "lat": [63, 63], "annual_demand_mwh": [1, 2]}, r"lines 2, 3: duplicate ids 1"),
        (
            {"id": [1, 2], "lon": [23, 23], "lat": [63, 63], "annual_demand_mwh": [1, -2]},
            r"line 3: 'annual_demand_mwh' is negative for features 2",
        ),
        (
            {"id": [1, 2], "lon": [23, 23], "lat": [63, 63], "annual_demand_mwh": [1, "lots"]},
            r"line 3: 'annual_demand_mwh' is not a number for features 2",
        ),
        (
            {"id": [1, 2], "lon": [23, 23], "lat": [63, 63], "annual_demand_mwh": [1, "inf"]},
            r"line 3: 'annual_demand_mwh' is infinite for features 2",
        ),
        (
            {"id": [1, 2], "lon": [23, 23], "lat": [63, 63], "annual_demand_mwh": [1, 5e9]},
            r"line 3: 'annual_demand_mwh' of features 2 is above the plausible 1e\+06",
        ),
        (
            {"id": [1, None], "lon": [23, 23], "lat": [63, 63], "annual_demand_mwh": [1, 2]},
            r"line 3: consumers without",
        ),
        ({"id": [1], "x": [23], "y": [63], "annual_demand_mwh": [1]}, r"needs 'lon' and 'lat'"),
        ({"id": [1], "lon": [230], "lat": [63], "annual_demand_mwh": [1]}, r"line 2: no valid lon/lat"),
        ({"key": [1], "lon": [23], "lat": [63], "annual_demand_mwh": [1]}, r"id column 'id' is missing"),
        ({"id": [1], "lon": [23], "lat": [63]}, r"column 'annual_demand_mwh' is missing"),
    ],
)
def test_bad_consumer_rows_are_named(tmp_path, rows, match):
    path = write_csv(tmp_path, rows)
    with pytest.raises(InputDataError, match=match) as info:
        raw = inputs.read_features(path, id_column="id", what="consumers")
        inputs.prepare_consumers(raw, crs=CRS.from_epsg(3067), full_load_hours_h=2000, default_min_supply_c=70)
    assert str(path) in str(info.value)


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_missing_file_wrong_format_and_no_crs(tmp_path):
    with pytest.raises(InputDataError, match="file not found"):
        inputs.read_features(tmp_path / "nope.gpkg", id_column="id", what="consumers")
    (tmp_path / "x.xlsx").write_text("x")
    with pytest.raises(InputDataError, match="unsupported format '.xlsx'"):
        inputs.read_features(tmp_path / "x.xlsx", id_column="id", what="consumers")
    (tmp_path / "broken.gpkg").write_text("not a geopackage")
    with pytest.raises(InputDataError, match="cannot be read as gpkg"):
        inputs.read_features(tmp_path / "broken.gpkg", id_column="id", what="consumers")
    nocrs = tmp_path / "nocrs.shp"
    gpd.GeoDataFrame({"id": ["a"]}, geometry=[Point(1, 2)]).to_file(nocrs)
    with pytest.raises(InputDataError, match="has no CRS"):
        inputs.read_features(nocrs, id_column="id", what="consumers")


def test_invalid_and_mixed_geometries(tmp_path):
    bowtie = Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])
    path = tmp_path / "c.gpkg"
    gpd.GeoDataFrame(
        {"id": ["ok", "bow"], "annual_demand_mwh": [1, 1]}, geometry=[Point(0, 0).buffer(5), bowtie], crs=3067
    ).to_file(path)
    with pytest.raises(InputDataError, match=r"features bow have invalid geometry \(Self-intersection"):
        inputs.read_features(path, id_column="id", what="consumers", allowed_geometry=("Point", "Polygon"))
    path2 = tmp_path / "m.gpkg"
    gpd.GeoDataFrame({"id": ["p", "q"]}, geometry=[Point(0, 0), Point(0, 0).buffer(5)], crs=3067).to_file(path2)
    with pytest.raises(
        InputDataError,
        match=r"feature 1: points among polygons; give every feature as a point or every one as a footprint",
    ):
        inputs.read_features(path2, id_column="id", what="consumers", allowed_geometry=("Point", "Polygon"))


def test_kelvin_source_temperature_is_caught(tmp_path):
    path = write_csv(tmp_path, {"id": ["S"], "lon": [23], "lat": [63], "capacity_kw": [10], "t_supply_c": [358.15]})
    raw = inputs.read_features(path, id_column="id", what="sources")
    with pytest.raises(InputDataError, match="give °C, not kelvin"):
        inputs.prepare_sources(raw, crs=CRS.from_epsg(3067), default_t_supply_c=80)


def test_csv_line_numbers_count_blank_lines(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("id,lon,lat,annual_demand_mwh\n\na,23,63,1\n\n\nb,23,63,-1\n")
    raw = inputs.read_features(path, id_column="id", what="consumers")
    with pytest.raises(InputDataError, match=r"c.csv, line 6: 'annual_demand_mwh' is negative for features b"):
        inputs.prepare_consumers(raw, crs=CRS.from_epsg(3067), full_load_hours_h=2000, default_min_supply_c=70)


def test_vector_files_name_feature_numbers(tmp_path):
    path = tmp_path / "c.gpkg"
    gpd.GeoDataFrame(
        {"id": ["a", "b", "c"], "annual_demand_mwh": [1.0, 2.0, float("inf")]},
        geometry=[Point(23, 63)] * 3,
        crs=4326,
    ).to_file(path)
    raw = inputs.read_features(path, id_column="id", what="consumers")
    with pytest.raises(InputDataError, match=r"c.gpkg, feature 3: 'annual_demand_mwh' is infinite for features c"):
        inputs.prepare_consumers(raw, crs=CRS.from_epsg(3067), full_load_hours_h=2000, default_min_supply_c=70)


SOURCES = {"id": ["S1"], "lon": [23.05], "lat": [63.86]}


@pytest.mark.parametrize(
    "extra,match",
    [
        (
            {"capacity_kw": [5000], "supply_temperature_c": [75]},
            r"'supply_temperature_c' looks like 't_supply_c'.*"
            r"'sources.columns: \{t_supply_c: supply_temperature_c\}'",
        ),
        ({"capacity": [5000]}, r"'capacity' looks like 'capacity_kw'.*sources.columns: \{capacity_kw: capacity\}"),
        ({"capacity_mw": [5]}, r"'capacity_mw' looks like 'capacity_kw' in another unit \(mw, not kw\)"),
        ({"capacity_kw": [float("inf")]}, r"line 2: 'capacity_kw' is infinite for features S1"),
        ({"capacity_kw": [0]}, r"line 2: 'capacity_kw' must be positive for sources S1"),
    ],
)
def test_source_columns_that_resemble_a_field_are_refused(tmp_path, extra, match):
    raw = inputs.read_features(write_csv(tmp_path, {**SOURCES, **extra}), id_column="id", what="sources")
    with pytest.raises(InputDataError, match=match):
        inputs.prepare_sources(raw, crs=CRS.from_epsg(3067), default_t_supply_c=85)


def test_column_mapping_feeds_the_fields_and_is_recorded(tmp_path):
    path = write_csv(tmp_path, {**SOURCES, "kw": [5000], "supply_temperature_c": [75], "plant": ["KIP"]})
    raw = inputs.read_features(path, id_column="id", what="sources")
    mapping = {"capacity_kw": "kw", "t_supply_c": "supply_temperature_c", "name": "plant"}
    s = inputs.prepare_sources(raw, crs=CRS.from_epsg(3067), default_t_supply_c=85, columns=mapping)
    assert s.t_supply_c.tolist() == [75.0] and s.capacity_kw.tolist() == [5000.0] and s.name.tolist() == ["KIP"]
    assert s.attrs["columns"] == {"id": "id", **mapping}
    with pytest.raises(InputDataError, match=r"column 'tsup' \(mapped by 'sources.columns.t_supply_c'\) is not"):
        inputs.prepare_sources(raw, crs=CRS.from_epsg(3067), default_t_supply_c=85, columns={"t_supply_c": "tsup"})
    c = write_csv(tmp_path, {**SOURCES, "annual_demand_mwh": [100], "peak_kw": [80]}, name="c.csv")
    raw = inputs.read_features(c, id_column="id", what="consumers")
    with pytest.raises(InputDataError, match=r"'peak_kw' looks like 'peak_load_kw'"):
        inputs.prepare_consumers(raw, crs=CRS.from_epsg(3067), full_load_hours_h=2000, default_min_supply_c=70)
    out = inputs.prepare_consumers(
        raw,
        crs=CRS.from_epsg(3067),
        full_load_hours_h=2000,
        default_min_supply_c=70,
        columns={"peak_load_kw": "peak_kw"},
    )
    assert out.peak_load_kw.tolist() == [80.0] and out.attrs["columns"]["peak_load_kw"] == "peak_kw"


def test_layers_of_a_geopackage(tmp_path):
    path = tmp_path / "two.gpkg"
    gdf = gpd.GeoDataFrame({"id": ["S1"], "capacity_kw": [5000.0]}, geometry=[Point(23.05, 63.86)], crs=4326)
    gdf.to_file(path, layer="plants")
    gdf.to_file(path, layer="boilers")
    with pytest.raises(
        InputDataError,
        match=r"holds 2 layers \(plants, boilers\); name the one to read with "
        r"'sources.layer'",
    ):
        inputs.read_features(path, id_column="id", what="sources")
    with pytest.raises(
        InputDataError, match=r"has no layer 'plant' \(layers: plants, boilers\); check 'sources.layer'"
    ):
        inputs.read_features(path, id_column="id", what="sources", layer="plant")
    assert len(inputs.read_features(path, id_column="id", what="sources", layer="boilers")) == 1


def test_id_column_message_names_a_key_that_exists(tmp_path):
    path = tmp_path / "b.gpkg"
    gpd.GeoDataFrame({"osm_id": ["a"]}, geometry=[Point(0, 0).buffer(5)], crs=3067).to_file(path)
    with pytest.raises(InputDataError) as info:
        inputs.read_features(path, id_column="id", what="buildings", allowed_geometry=("Polygon",))
    assert "buildings.id_column" not in str(info.value) and "give the file an 'id' column" in str(info.value)
    with pytest.raises(InputDataError, match="name it with 'consumers.id_column'"):
        inputs.read_features(path, id_column="id", what="consumers", allowed_geometry=("Polygon",))
    with pytest.raises(InputDataError, match="is a folder, not a file; check 'consumers.path'"):
        inputs.read_features(tmp_path, id_column="id", what="consumers")


@pytest.mark.parametrize(
    "crs,ok",
    [("EPSG:3067", True), ("EPSG:32634", True), ("EPSG:3857", False), ("EPSG:32633", True), ("EPSG:32610", False)],
)
def test_working_crs_must_be_true_to_scale_at_the_study_area(crs, ok):
    # Kokkola: TM35FIN and UTM 34N/33N are within 1 % of true scale; Web Mercator errs by ~127 %, UTM 10N is
    # another continent
    if ok:
        assert inputs.metric_crs_for(23.13, 63.84, given=crs).to_string() == crs
    else:
        with pytest.raises(InputDataError, match=rf"'study_area.crs' {crs} distorts lengths"):
            inputs.metric_crs_for(23.13, 63.84, given=crs)


def test_a_latin1_or_semicolon_csv_is_named_with_what_to_do(tmp_path):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("id,lon,lat,annual_demand_mwh\nA,24.94,60.17,100\nMäki,24.95,60.17,120\n".encode("latin-1"))
    with pytest.raises(
        InputDataError, match=r"latin.csv, line 3: not UTF-8 text \(byte 0xe4\); save the file as UTF-8"
    ):
        inputs.read_features(latin, id_column="id", what="consumers")
    semicolon = tmp_path / "semicolon.csv"
    semicolon.write_text("id;lon;lat;annual_demand_mwh\nA;24.94;60.17;100\n")
    with pytest.raises(InputDataError, match=r"semicolon.csv: the values are separated by semicolons \('id;lon;lat;"):
        inputs.read_features(semicolon, id_column="id", what="consumers")
