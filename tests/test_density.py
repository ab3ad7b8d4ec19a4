import math
import shutil
import subprocess

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import rasterio
import rasterio.io
import shapely
import yaml
from rasterio.errors import RasterioIOError
from rasterio.transform import Affine
from shapely.geometry import Point, box

from heatmap import settings
from heatmap._errors import InputDataError, OutputError, ScenarioError
from heatmap.demand import density
from heatmap.demand.density import HeatDensity, heat_density_from_buildings, potential_areas, write_heat_density_tif

CRS = "EPSG:3067"
X0, Y0 = 385_000.0, 6_672_000.0  # a corner of the 100 m grid in central Helsinki


def from_origin(west, north, xsize, ysize):
    """rasterio.transform.from_origin without its Affine-multiplication deprecation warning."""
    return Affine(xsize, 0.0, west, 0.0, -ysize, north)


def buildings(rows, crs=CRS, **columns):
    """GeoDataFrame from (geometry, annual_demand_mwh) rows plus extra columns."""
    geoms, demand = zip(*rows, strict=True)
    return gpd.GeoDataFrame({"annual_demand_mwh": demand, **columns}, geometry=list(geoms), crs=crs)


# --- heat_density_from_buildings ------------------------------------------------------------------------------------


def test_each_building_goes_to_the_cell_of_its_representative_point():
    b = buildings(
        [
            (Point(X0 + 50, Y0 + 50), 100.0),  # cell (col 0, row of Y0)
            (box(X0 + 10, Y0 + 10, X0 + 90, Y0 + 40), 50.0),  # same cell
            (box(X0 + 150, Y0 + 20, X0 + 190, Y0 + 80), 30.0),  # the cell east of it
            # an L-shaped footprint whose centroid lies outside it: its point on the surface is inside the L,
            # in the cell north of the first
            (shapely.union_all([box(X0, Y0 + 100, X0 + 10, Y0 + 200), box(X0, Y0 + 190, X0 + 100, Y0 + 200)]), 7.0),
        ],
        floor_area_m2=[1000.0, 500.0, 300.0, 70.0],
    )
    d = heat_density_from_buildings(b)
    assert d.shape == (2, 2) and d.cell_size_m == 100.0 and d.cell_area_ha == 1.0 and d.has_floor_area
    assert d.transform == from_origin(X0, Y0 + 200, 100, 100)
    np.testing.assert_array_equal(d.demand_mwh, [[7.0, 0.0], [150.0, 30.0]])
    np.testing.assert_array_equal(d.floor_area_m2, [[70.0, 0.0], [1500.0, 300.0]])
    np.testing.assert_array_equal(d.density_mwh_per_ha, d.demand_mwh)  # 1 ha cells
    assert d.crs == pyproj.CRS(CRS)


def test_cell_edges_and_cell_size():
    # a point on a cell corner belongs to the cell to its north-east (a cell holds its west and south edges)
    b = buildings([(Point(X0 + 200, Y0 + 100), 40.0), (Point(X0 + 399.999, Y0 + 199.999), 1.0)])
    d = heat_density_from_buildings(b)
    assert d.transform == from_origin(X0 + 200, Y0 + 200, 100, 100)
    np.testing.assert_array_equal(d.demand_mwh, [[40.0, 1.0]])
    assert not d.has_floor_area and not d.floor_area_m2.any()

    coarse = heat_density_from_buildings(b, cell_size_m=500.0)
    assert coarse.cell_area_ha == 25.0
    np.testing.assert_allclose(coarse.density_mwh_per_ha, [[41.0 / 25.0]])
    assert coarse.transform.c % 500 == 0 and coarse.transform.f % 500 == 0


def test_total_is_conserved_and_rasters_of_neighbouring_towns_line_up():
    rng = np.random.default_rng(7)
    n = 20_000
    xy = rng.uniform([X0 + 3.7, Y0 - 4321.0], [X0 + 5000.0, Y0 + 1234.5], size=(n, 2))
    demand = rng.gamma(2.0, 50.0, n)
    b = gpd.GeoDataFrame({"annual_demand_mwh": demand}, geometry=gpd.points_from_xy(*xy.T), crs=CRS)
    d = heat_density_from_buildings(b)
    assert d.total_demand_mwh == pytest.approx(demand.sum(), rel=1e-9)
    east = heat_density_from_buildings(b.set_geometry(b.geometry.translate(7000.0, 0.0)))
    for t in (d.transform, east.transform):
        assert t.c % 100 == 0 and t.f % 100 == 0  # origins on the same 100 m grid
    np.testing.assert_allclose(east.demand_mwh, d.demand_mwh)  # same cells, shifted by 70 columns


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (buildings([(Point(24.9, 60.2), 1.0)], crs="EPSG:4326"), "geographic CRS EPSG:4326.*to_crs"),
        (buildings([(Point(0, 0), 1.0)], crs=None), "no CRS"),
        (buildings([(Point(0, 0), 1.0)], crs="EPSG:2263"), "US survey foot.*CRS in metres"),
        (buildings([(Point(0, 0), 1.0)]).rename(columns={"annual_demand_mwh": "demand"}), "no 'annual_demand_mwh'"),
        (buildings([(Point(0, 0), 1.0), (Point(1, 1), -2.0)], id=["a", "b"]), "1 buildings .*negative.*b"),
        (buildings([(Point(0, 0), float("nan"))], consumer_id=["x"]), "missing.*'annual_demand_mwh' \\(x\\)"),
        (buildings([(Point(0, 0), 1.0)], floor_area_m2=[None]), "'floor_area_m2'"),
        (buildings([(None, 1.0)]), "no geometry"),
        (buildings([(shapely.LineString([(0, 0), (1, 1)]), 1.0)]), "LineString.*points or \\(multi\\)polygon"),
        (buildings([(Point(0, 0), 1.0), (Point(1e9, 1e9), 1.0)]), "cells of 100 m; check the CRS"),
        (buildings([(Point(0, 0), 1.0)]).iloc[:0], "no buildings"),
    ],
)
def test_bad_buildings_are_named(frame, match):
    with pytest.raises(InputDataError, match=match):
        heat_density_from_buildings(frame)


def test_bad_arguments():
    with pytest.raises(InputDataError, match="must be a GeoDataFrame"):
        heat_density_from_buildings([Point(0, 0)])
    with pytest.raises(ValueError, match="cell_size_m must be a positive"):
        heat_density_from_buildings(buildings([(Point(0, 0), 1.0)]), cell_size_m=0)


# --- GeoTIFF --------------------------------------------------------------------------------------------------------


@pytest.fixture
def wide_density():
    """A 10 m grid wider than one 256-cell tile: 300 × 40 cells."""
    rng = np.random.default_rng(3)
    demand = np.where(rng.random((40, 300)) < 0.3, rng.gamma(2.0, 3.0, (40, 300)), 0.0)
    return HeatDensity(demand, np.zeros_like(demand), from_origin(X0, Y0, 10, 10), pyproj.CRS(CRS), 10.0)


def test_geotiff_round_trip(wide_density, tmp_path):
    path = write_heat_density_tif(wide_density, tmp_path / "heat_density.tif")
    assert path == tmp_path / "heat_density.tif" and sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    with rasterio.open(path) as src:
        assert src.crs.to_epsg() == 3067
        assert src.transform == wide_density.transform and (src.height, src.width) == (40, 300)
        assert src.dtypes == ("float32",) and src.nodata == 0.0
        assert src.compression.value == "DEFLATE"
        assert src.profile["tiled"] and src.block_shapes == [(256, 256)]
        assert src.descriptions == ("heat density (MWh/ha/a)",)
        assert src.units == ("MWh/ha/a",) and src.tags(1)["units"] == "MWh/ha/a"
        assert float(src.tags()["total_demand_mwh"]) == pytest.approx(wide_density.total_demand_mwh)
        values = src.read(1, masked=True)
    cell_area_ha = 10 * 10 / 10_000
    assert values.mask.sum() == (wide_density.demand_mwh == 0).sum()  # no demand = nodata
    total = float(values.sum(dtype=np.float64)) * cell_area_ha
    assert total == pytest.approx(wide_density.total_demand_mwh, rel=1e-6)
    np.testing.assert_allclose(values.filled(0), wide_density.density_mwh_per_ha, rtol=1e-6)

    gdalinfo = shutil.which("gdalinfo")
    if gdalinfo is not None:  # the GDAL command line is optional on these machines
        info = subprocess.run([gdalinfo, str(path)], capture_output=True, text=True, check=True).stdout
        assert "Block=256x256" in info and "COMPRESSION=DEFLATE" in info and "NoData Value=0" in info
        assert "heat density (MWh/ha/a)" in info and "3067" in info


def test_geotiff_is_written_atomically(wide_density, tmp_path, monkeypatch):
    with pytest.raises(OutputError, match="folder .*missing.* does not exist"):
        write_heat_density_tif(wide_density, tmp_path / "missing" / "heat.tif")

    target = tmp_path / "heat.tif"
    target.write_bytes(b"the previous map")

    def disk_full(self, *args, **kwargs):
        raise RasterioIOError("No space left on device")

    monkeypatch.setattr(rasterio.io.DatasetWriter, "write", disk_full)
    with pytest.raises(OutputError, match=r"heat.tif \(No space left on device\)"):
        write_heat_density_tif(wide_density, target)
    assert target.read_bytes() == b"the previous map"  # untouched
    assert [p.name for p in tmp_path.iterdir()] == ["heat.tif"]  # no temporary file left


# --- potential areas ------------------------------------------------------------------------------------------------


def hand_grid(*, with_floor_area=True):
    """10 × 12 cells of 100 m (1 ha) by hand.

    A: a 5 × 5 block of 1,300 MWh/ha (15,000 m² floor each) plus one cell of exactly 333 MWh/ha (5,000 m²) on
    its east edge: 26 cells, 32,833 MWh. Beside A's south-east corner a 300 MWh/ha cell (too sparse), and a
    400 MWh/ha cell touching A only diagonally (D: its own area). B: a separate 2 × 2 block of 400 MWh/ha.
    """
    demand = np.zeros((10, 12))
    floor = np.zeros((10, 12))
    demand[1:6, 1:6], floor[1:6, 1:6] = 1300.0, 15_000.0
    demand[3, 6], floor[3, 6] = 333.0, 5_000.0
    demand[5, 6] = 300.0
    demand[6, 6] = 400.0  # D
    demand[7:9, 9:11] = 400.0  # B
    return HeatDensity(
        demand,
        floor if with_floor_area else np.zeros_like(floor),
        from_origin(X0, Y0, 100, 100),
        pyproj.CRS(CRS),
        100.0,
        has_floor_area=with_floor_area,
    )


def test_potential_areas_of_a_hand_built_grid():
    grid = hand_grid()
    areas = potential_areas(grid)  # defaults: cells ≥ 333 MWh/ha, areas ≥ 30 GWh/a
    assert list(areas.columns) == [*density.AREA_COLUMNS, "geometry"] and areas.crs == pyproj.CRS(CRS)
    assert len(areas) == 1
    a = areas.iloc[0]
    assert a.area_id == 1 and a.n_cells == 26 and a.area_ha == 26.0
    assert a.annual_demand_gwh == pytest.approx(32.833, rel=1e-12)
    assert a.mean_density_mwh_per_ha == pytest.approx(32_833 / 26)
    assert a.floor_area_m2 == 380_000.0
    # the dissolved cells: the 5 × 5 block and the cell east of its middle row, one polygon
    expected = shapely.union(box(X0 + 100, Y0 - 600, X0 + 600, Y0 - 100), box(X0 + 600, Y0 - 400, X0 + 700, Y0 - 300))
    assert a.geometry.geom_type == "Polygon" and a.geometry.equals(expected)

    # lower area threshold: B (1.6 GWh/a) and the diagonal cell D (0.4 GWh/a) become areas of their own
    areas = potential_areas(grid, min_area_demand_gwh_per_a=0.4)
    assert areas.area_id.tolist() == [1, 2, 3]
    assert areas.annual_demand_gwh.tolist() == pytest.approx([32.833, 1.6, 0.4])
    assert areas.n_cells.tolist() == [26, 4, 1] and areas.area_ha.tolist() == [26.0, 4.0, 1.0]
    assert areas.geometry.iloc[1].equals(box(X0 + 900, Y0 - 900, X0 + 1100, Y0 - 700))
    assert areas.geometry.iloc[2].equals(box(X0 + 600, Y0 - 700, X0 + 700, Y0 - 600))
    assert areas.geometry.area.sum() == pytest.approx(31 * 10_000) and areas.union_all().area == pytest.approx(31e4)
    assert len(potential_areas(grid, min_area_demand_gwh_per_a=1.0)) == 2

    # a stricter cell threshold drops the 333 MWh/ha cell; a laxer one adds the 300 MWh/ha cell to A
    assert potential_areas(grid, min_cell_density_mwh_per_ha=333.5).n_cells.tolist() == [25]
    lax = potential_areas(grid, min_cell_density_mwh_per_ha=300.0, min_area_demand_gwh_per_a=0.4)
    assert lax.n_cells.tolist() == [28, 4]  # the 300 cell joins A and links D to it through an edge
    assert lax.annual_demand_gwh.iloc[0] == pytest.approx(32.833 + 0.3 + 0.4)

    none = potential_areas(grid, min_cell_density_mwh_per_ha=1400.0)
    assert none.empty and list(none.columns) == [*density.AREA_COLUMNS, "geometry"] and none.crs == grid.crs


def test_equal_demand_areas_are_numbered_north_then_west():
    demand = np.zeros((5, 5))
    demand[3, 0] = demand[0, 3] = demand[0, 1] = 500.0
    grid = HeatDensity(demand, np.zeros_like(demand), from_origin(X0, Y0, 100, 100), pyproj.CRS(CRS), 100.0)
    areas = potential_areas(grid, min_area_demand_gwh_per_a=0.0)
    centres = [(g.centroid.x - X0, Y0 - g.centroid.y) for g in areas.geometry]
    assert areas.area_id.tolist() == [1, 2, 3] and centres == [(150, 50), (350, 50), (50, 350)]


def test_distribution_cost_of_an_area_by_hand():
    a = potential_areas(hand_grid()).iloc[0]
    land_m2 = 26 * 10_000
    e = 380_000 / land_m2  # plot ratio 1.4615
    w = 61.8 * e**-0.15  # effective width, m (Persson & Werner 2011)
    trench_m = land_m2 / w  # 4,453.6 m
    lhd = 32_833 * 3.6 / trench_m  # 26.54 GJ/m
    d_a = 0.0486 * math.log(lhd) + 0.0007  # 0.160 m
    capex = trench_m * (439 + 4073 * d_a)
    crf = 0.03 * 1.03**30 / (1.03**30 - 1)  # 30 years at 3 %
    assert a.plot_ratio == pytest.approx(e)
    assert a.trench_length_m == pytest.approx(trench_m)
    assert a.linear_heat_density_gj_per_m == pytest.approx(lhd)
    assert a.pipe_diameter_m == pytest.approx(d_a)
    assert a.distribution_capex_eur == pytest.approx(capex) and capex == pytest.approx(4_858_182, abs=1)
    assert a.distribution_cost_eur_per_mwh == pytest.approx(capex * crf / 32_833)
    assert a.distribution_cost_eur_per_mwh == pytest.approx(7.549, abs=1e-3)

    eu = potential_areas(hand_grid(), cost_c1_eur_per_m=212.0, cost_c2_eur_per_m2=4464.0, discount_rate=0.0)
    assert eu.distribution_capex_eur.iloc[0] == pytest.approx(trench_m * (212 + 4464 * d_a))
    assert eu.distribution_cost_eur_per_mwh.iloc[0] == pytest.approx(trench_m * (212 + 4464 * d_a) / 30 / 32_833)


def test_minimum_pipe_diameter_below_1_5_gj_per_m():
    # one hectare of 20 MWh/a and 500 m² floor (plot ratio 0.05): w = 96.8 m, 103 m of trench, 0.70 GJ/m
    grid = HeatDensity(
        np.array([[20.0]]), np.array([[500.0]]), from_origin(X0, Y0, 100, 100), pyproj.CRS(CRS), 100.0, True
    )
    a = potential_areas(grid, min_cell_density_mwh_per_ha=0, min_area_demand_gwh_per_a=0).iloc[0]
    trench_m = 10_000 / (61.8 * 0.05**-0.15)
    assert a.linear_heat_density_gj_per_m == pytest.approx(20 * 3.6 / trench_m) and a.linear_heat_density_gj_per_m < 1.5
    assert a.pipe_diameter_m == 0.02
    assert a.distribution_capex_eur == pytest.approx(trench_m * (439 + 4073 * 0.02))


def test_costs_are_not_invented_without_floor_area():
    areas = potential_areas(hand_grid(with_floor_area=False), min_area_demand_gwh_per_a=0.4)
    assert areas.annual_demand_gwh.tolist() == pytest.approx([32.833, 1.6, 0.4])
    cost_columns = density.AREA_COLUMNS[density.AREA_COLUMNS.index("floor_area_m2") :]
    assert areas[cost_columns].isna().all().all()
    # with floor area, an area whose cells have none (B and D here) gets no cost either
    areas = potential_areas(hand_grid(), min_area_demand_gwh_per_a=0.4)
    assert areas.distribution_capex_eur.notna().tolist() == [True, False, False]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_cell_density_mwh_per_ha": -1}, "min_cell_density_mwh_per_ha must be a finite number ≥ 0"),
        ({"cost_c2_eur_per_m2": float("nan")}, "cost_c2_eur_per_m2"),
        ({"lifetime_a": 0}, "lifetime_a must be at least 1"),
    ],
)
def test_potential_areas_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        potential_areas(hand_grid(), **kwargs)


# --- real data, scenario and layer definitions ----------------------------------------------------------------------


def test_real_osm_buildings_of_central_helsinki(bundled_scenario):
    from heatmap.demand import buildings as demand
    from heatmap.io import streets

    osm = streets.buildings_from_pbf(settings.data_dir / "helsinki_centre.osm.pbf").to_crs(CRS)
    b = demand.estimate_building_demand(osm, bundled_scenario.demand)
    d = heat_density_from_buildings(b)
    assert d.total_demand_mwh == pytest.approx(b.annual_demand_mwh.sum(), rel=1e-9)
    assert d.floor_area_m2.sum() == pytest.approx(b.floor_area_m2.sum(), rel=1e-9)
    occupied = d.density_mwh_per_ha[d.demand_mwh > 0]
    # city blocks of 4–8 storeys: a few thousand MWh/ha typical (Hotmaps shows ~1,000–5,000 MWh/ha in Helsinki's
    # centre); the densest cell takes a whole large block by its representative point
    assert 1_000 < np.median(occupied) < 5_000
    assert 5_000 < occupied.max() < 40_000
    areas = potential_areas(d)
    assert len(areas) >= 1 and areas.annual_demand_gwh.sum() <= d.total_demand_mwh / 1000
    assert areas.distribution_cost_eur_per_mwh.between(0.5, 50).all()


def test_density_scenario_section():
    from heatmap.scenario import Density, scenario_from_dict

    path = settings.data_dir / "scenarios" / "helsinki_centre.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    scn = scenario_from_dict({**data, "density": {"cell_size_m": 250}}, base_dir=path.parent)
    assert scn.density == Density(cell_size_m=250.0)
    rows = {r["key"]: r for r in scn.assumptions()}
    assert rows["density.cell_size_m"]["source"] == "scenario"
    assert rows["density.cost_c1_eur_per_m"]["value"] == 439.0 and "Finland" in rows["density.cost_c1_eur_per_m"]["doc"]
    with pytest.raises(ScenarioError, match="'density.cell_size_m' is 0.0; it must be at least 1"):
        scenario_from_dict({**data, "density": {"cell_size_m": 0}}, base_dir=path.parent)
    with pytest.raises(ScenarioError, match="did you mean 'density.min_area_demand_gwh_per_a'"):
        scenario_from_dict({**data, "density": {"min_area_demand_gwh": 10}}, base_dir=path.parent)


def test_potential_areas_layer_definition_matches_the_columns():
    from heatmap.maps.layers import load_layer_specs

    spec = load_layer_specs()["potential_areas"]
    assert spec.geometry == "polygon" and spec.color.field == "annual_demand_gwh"
    assert {p.field for p in spec.popup} <= set(density.AREA_COLUMNS)
    areas = potential_areas(hand_grid(), min_area_demand_gwh_per_a=0.4)
    assert spec.colors_for(areas[spec.color.field]).tolist() == ["#f2f0f7"] * 3
