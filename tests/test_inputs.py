import geopandas as gpd
import pandas as pd
import pytest
from pyproj import CRS
from shapely.geometry import Point, Polygon

from heatmap import inputs
from heatmap._errors import InputDataError


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
    with pytest.raises(InputDataError, match=r"c.csv: features far cannot be placed in EPSG:3067"):
        inputs.prepare_consumers(raw, crs=CRS.from_epsg(3067), full_load_hours_h=2000, default_min_supply_c=70)


def test_geopackage_in_another_crs_is_read(tmp_path):
    path = tmp_path / "s.gpkg"
    gpd.GeoDataFrame({"id": ["S1"], "capacity_kw": [5000.0]}, geometry=[Point(23.05, 63.86)], crs=4326).to_crs(
        3857
    ).to_file(path, layer="plants")
    raw = inputs.read_features(path, id_column="id", what="sources")
    s = inputs.prepare_sources(raw, crs=CRS.from_epsg(3067), default_t_supply_c=85)
    assert s.t_supply_c.iloc[0] == 85 and s.crs.to_epsg() == 3067


@pytest.mark.parametrize(
    "rows,match",
    [
        ({"id": [1, 1], "lon": [23, 23], "lat": [63, 63], "annual_demand_mwh": [1, 2]}, r"duplicate ids 1"),
        ({"id": [1, 2], "lon": [23, 23], "lat": [63, 63], "annual_demand_mwh": [1, -2]}, r"negative for features 2"),
        (
            {"id": [1, 2], "lon": [23, 23], "lat": [63, 63], "annual_demand_mwh": [1, "lots"]},
            r"not a number for features 2",
        ),
        ({"id": [1], "x": [23], "y": [63], "annual_demand_mwh": [1]}, r"needs 'lon' and 'lat'"),
        ({"id": [1], "lon": [230], "lat": [63], "annual_demand_mwh": [1]}, r"rows 2 have no valid lon/lat"),
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
    with pytest.raises(InputDataError, match="mixes points and polygons"):
        inputs.read_features(path2, id_column="id", what="consumers", allowed_geometry=("Point", "Polygon"))


def test_kelvin_source_temperature_is_caught(tmp_path):
    path = write_csv(tmp_path, {"id": ["S"], "lon": [23], "lat": [63], "capacity_kw": [10], "t_supply_c": [358.15]})
    raw = inputs.read_features(path, id_column="id", what="sources")
    with pytest.raises(InputDataError, match="give °C, not kelvin"):
        inputs.prepare_sources(raw, crs=CRS.from_epsg(3067), default_t_supply_c=80)
