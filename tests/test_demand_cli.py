"""``heatmap demand`` end to end: the bundled OSM buildings, a region on Dask, bad input."""

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import rasterio
from conftest import run_cli

from heatmap import settings
from heatmap.io import synthetic

PBF = settings.data_dir / "helsinki_centre.osm.pbf"


def test_buildings_raster_areas_and_summary_agree(bundled_demand):
    out = bundled_demand
    summary = json.loads((out / "summary.json").read_text())
    layers = [name for name, _ in pyogrio.list_layers(out / "demand.gpkg")]
    assert layers == ["buildings", "potential_areas", "layer_styles"]  # QGIS styles embedded
    b = gpd.read_file(out / "demand.gpkg", layer="buildings")
    assert b.crs.to_epsg() == 3067 and len(b) == summary["buildings"]["heated"]
    assert {"annual_demand_mwh", "space_heat_mwh", "dhw_mwh", "peak_load_kw", "demand_method"} <= set(b.columns)
    with rasterio.open(out / "heat_density.tif") as tif:
        assert tif.crs.to_epsg() == 3067 and tif.nodata == 0 and tif.compression.name == "deflate"
        cell_ha = tif.res[0] * tif.res[1] / 10_000
        total_mwh = tif.read(1).astype(float).sum() * cell_ha
    assert total_mwh == pytest.approx(b.annual_demand_mwh.sum(), rel=1e-6)
    assert summary["annual_demand_gwh"] == pytest.approx(b.annual_demand_mwh.sum() / 1000)
    areas = gpd.read_file(out / "demand.gpkg", layer="potential_areas")
    assert len(areas) == summary["potential_areas"]["count"] >= 1
    assert (areas.annual_demand_gwh >= 30).all() and (areas.distribution_capex_eur > 0).all()
    # The hourly profile sums to the buildings' annual demand.
    profile = pd.read_csv(out / "heat_profile.csv")
    assert len(profile) == 8760 and profile.load_kw.sum() / 1000 == pytest.approx(b.annual_demand_mwh.sum(), rel=1e-3)
    keys = {row["key"] for row in summary["assumptions"]}
    assert {"demand.degree_days", "density.min_cell_density_mwh_per_ha", "density.cell_size_m"} <= keys


def test_region_on_dask_gives_the_single_process_raster(tmp_path):
    path = tmp_path / "region.parquet"
    synthetic.synthetic_region_buildings(3000, seed=4, n_towns=2).to_parquet(path)
    rasters = []
    for extra in ([], ["--dask"]):
        out = tmp_path / ("dask" if extra else "single")
        proc = run_cli("demand", path, "--out", out, "-q", *extra)
        assert proc.returncode == 0, proc.stderr
        with rasterio.open(out / "heat_density.tif") as tif:
            rasters.append((tif.transform, tif.read(1)))
    assert rasters[0][0] == rasters[1][0]
    np.testing.assert_allclose(rasters[0][1], rasters[1][1], rtol=1e-6)
    assert [n for n, _ in pyogrio.list_layers(tmp_path / "dask" / "demand.gpkg")] == ["potential_areas", "layer_styles"]


@pytest.mark.parametrize("case", ["missing", "geographic_crs", "temperatures_in_kelvin"])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, case):
    out = tmp_path / "out"
    args = [PBF, "--out", out]
    if case == "missing":
        args[0], expect = tmp_path / "nope.gpkg", "nope.gpkg"
    elif case == "geographic_crs":
        scn = tmp_path / "s.yaml"
        scn.write_text("study_area: {crs: 'EPSG:4326'}\n")
        args += ["--scenario", scn]
        expect = "is geographic"
    else:
        t = tmp_path / "t.csv"
        pd.DataFrame({"time": pd.date_range("2023", periods=8760, freq="h"), "t_out_c": 270.0}).to_csv(t, index=False)
        args += ["--temperatures", t]
        expect = "not kelvin"
    proc = run_cli("demand", *args)
    assert proc.returncode == 2 and expect in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists() or not any(out.iterdir())


def _cells_and_classes(out):
    """The cells with demand of the GeoTIFF (row, col, corners in EPSG:4326) and the classes the map shows."""
    from pyproj import Transformer

    from heatmap.maps.classes import data_classes
    from heatmap.maps.layers import load_layer_specs

    with rasterio.open(out / "heat_density.tif") as tif:
        values, t, crs = tif.read(1).astype(float), tif.transform, tif.crs
    rows, cols = np.nonzero(values > 0)
    to_wgs84 = Transformer.from_crs(crs.to_wkt(), "EPSG:4326", always_xy=True)
    corners = {}
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        xy = [(t.c + (c + dc) * t.a, t.f + (r + dr) * t.e) for dc, dr in ((0, 0), (1, 0), (1, 1), (0, 1))]
        lon, lat = to_wgs84.transform(*zip(*xy, strict=True))
        corners[f"{r}, {c}"] = [[la, lo] for la, lo in zip(lat, lon, strict=True)]
    spec = data_classes(load_layer_specs()["heat_density"], values[values > 0])
    return corners, spec


@pytest.mark.browser
def test_demand_map_opens_offline_with_cells_areas_and_legend(browser, bundled_demand, tmp_path):
    from conftest import assert_offline, open_map

    out = bundled_demand
    corners, spec = _cells_and_classes(out)
    n_features = (
        len(gpd.read_file(out / "demand.gpkg", layer="buildings"))
        + len(gpd.read_file(out / "demand.gpkg", layer="potential_areas"))
        + len(corners)
    )
    context, page, errors, requests = open_map(browser, out / "map.html", screenshot=tmp_path / "demand.png")
    try:
        assert page.locator(".leaflet-overlay-pane path.leaflet-interactive").count() == n_features
        assert page.locator("img.heatmap-image").count() == 0  # the cells are drawn one by one
        legend = page.locator(".leaflet-control").all_inner_texts()
        for _, label in spec.legend:  # the classes from the data, in the map's legend
            assert any(label in text for text in legend), label
        assert not errors, errors
        assert_offline(requests)
    finally:
        context.close()


_DRAWN_CELLS = """(args) => {
    const map = Object.entries(window).find(([k, v]) => k.startsWith("map_") && v instanceof L.Map)[1];
    // A view set without animation: every layer is projected at once (the page's own fit may still be zooming).
    map.setView(map.getCenter(), 17, {animate: false, reset: true});
    const z = args.zoom;  // pixels of this zoom, unrounded: what Leaflet draws, before it rounds to screen pixels
    const px = (ll) => { const p = map.project(L.latLng(ll), z); return [p.x, p.y]; };
    const flat = (a) => (a.lat !== undefined ? [a] : a.flatMap(flat));
    const cells = {}, areas = [];
    map.eachLayer((layer) => {
        const p = layer.feature && layer.feature.properties;
        if (!p || !layer.getLatLngs) return;
        if (p.cell !== undefined) {
            const onScreen = layer._rings[0].map((pt) => [pt.x, pt.y]);
            const truthOnScreen = args.corners[p.cell].map((c) => {
                const pt = map.latLngToLayerPoint(L.latLng(c[0], c[1])); return [pt.x, pt.y];
            });
            cells[p.cell] = {
                drawn: flat(layer.getLatLngs()).map(px), truth: args.corners[p.cell].map(px),
                on_screen: onScreen, truth_on_screen: truthOnScreen,
            };
        } else if (p.area_id !== undefined) {
            areas.push(flat(layer.getLatLngs()).map(px));
        }
    });
    return {cells: cells, areas: areas};
}"""


def _nearest(points, to):
    return np.linalg.norm(np.asarray(points)[:, None, :] - np.asarray(to)[None, :, :], axis=2).min(axis=1)


@pytest.mark.browser
def test_each_cell_is_drawn_on_its_true_corners_and_the_areas_on_the_cells(browser, bundled_demand):
    """A cell's drawn corners are its GeoTIFF corners transformed (EPSG:3067 → Web Mercator), within 10 cm."""
    from conftest import open_map

    corners, _ = _cells_and_classes(bundled_demand)
    zoom = 20
    lat = np.mean([c[0][0] for c in corners.values()])
    metres_per_px = 2 * np.pi * 6378137 * np.cos(np.radians(lat)) / (256 * 2**zoom)
    context, page, errors, _ = open_map(browser, bundled_demand / "map.html")
    try:
        found = page.evaluate(_DRAWN_CELLS, {"corners": corners, "zoom": zoom})
    finally:
        context.close()
    assert set(found["cells"]) == set(corners)
    grid = []
    for cell in found["cells"].values():
        assert len(cell["drawn"]) == 4  # a square's four corners, each a true corner transformed
        assert _nearest(cell["truth"], cell["drawn"]).max() * metres_per_px < 0.1, cell
        assert _nearest(cell["drawn"], cell["truth"]).max() * metres_per_px < 0.1, cell
        # as drawn on the screen (Leaflet rounds to whole pixels)
        assert _nearest(cell["truth_on_screen"], cell["on_screen"]).max() <= 1.5, cell
        grid += cell["drawn"]
    # EPSG:3067's grid is turned against Web Mercator's axes in Helsinki (about 1.7°): the cells are drawn turned.
    first = np.array(next(iter(found["cells"].values()))["drawn"])
    edges = np.degrees(np.arctan2(*(np.roll(first, -1, axis=0) - first).T[::-1])) % 90
    assert (np.minimum(edges, 90 - edges) > 0.5).all()
    # The potential areas run along the cells' edges: each of their vertices is a drawn cell corner.
    vertices = [v for area in found["areas"] for v in area]
    assert len(vertices) >= 4
    assert _nearest(vertices, grid).max() * metres_per_px < 0.1
    assert not errors, errors


def test_map_classes_come_from_the_data_in_one_ramp_per_theme(bundled_demand):
    from heatmap.maps.layers import load_layer_specs

    corners, spec = _cells_and_classes(bundled_demand)
    with rasterio.open(bundled_demand / "heat_density.tif") as tif:
        values = tif.read(1)[tif.read(1) > 0]
    uppers = [c.upper for c in spec.color.classes]
    assert uppers == sorted(uppers) and np.isinf(uppers[-1]) and len(uppers) == 5
    counts = np.bincount(np.searchsorted(uppers, values, side="left"), minlength=len(uppers))
    assert (counts > 0).all() and counts.max() <= 2 * counts.min() + 2  # quantiles: about as many cells each
    ramps = {name: {c.color for c in load_layer_specs()[name].color.classes} for name in
             ("heat_density", "potential_areas", "buildings")}  # fmt: skip
    assert {c.color for c in spec.color.classes} <= ramps["heat_density"]
    assert not (ramps["heat_density"] & ramps["potential_areas"] or ramps["heat_density"] & ramps["buildings"])
    assert not ramps["buildings"] & ramps["potential_areas"]


def test_demand_prints_one_screen_and_json_with_json(bundled_demand, tmp_path):
    proc = run_cli("demand", PBF, "--out", tmp_path / "screen")
    assert proc.returncode == 0, proc.output
    lines = proc.stdout.strip().splitlines()
    assert 10 <= len(lines) <= 25, proc.stdout
    assert "WARNING" not in proc.output and "Traceback" not in proc.output
    summary = json.loads((tmp_path / "screen" / "summary.json").read_text())
    assert f"{summary['annual_demand_gwh']:,.1f} GWh/a" in proc.stdout
    assert f"{summary['buildings']['heated']:,d} heated of {summary['buildings']['buildings_read']:,d}" in proc.stdout
    assert "the documented defaults" in proc.stdout  # the former warning, now a line of the summary
    proc = run_cli("demand", PBF, "--out", tmp_path / "json", "--json")
    assert proc.returncode == 0, proc.output
    printed = json.loads(proc.stdout)
    written = json.loads((tmp_path / "json" / "summary.json").read_text())
    printed.pop("created_utc"), written.pop("created_utc")
    assert printed == written


def test_demand_tables_say_where_each_building_is(bundled_demand):
    from export_checks import (
        assert_geojson_matches_gpkg,
        assert_no_formula_cells,
        assert_readme_lists_exactly_the_files,
    )

    left_out = pd.read_csv(bundled_demand / "left_out_buildings.csv")
    assert {"consumer_id", "reason", "lon_deg", "lat_deg", "wkt"} <= set(left_out.columns)
    shapes = gpd.GeoSeries.from_wkt(left_out.wkt, crs=4326).to_crs(3067)
    points = gpd.GeoSeries(gpd.points_from_xy(left_out.lon_deg, left_out.lat_deg), crs=4326).to_crs(3067)
    assert shapes.notna().all() and (points.distance(shapes, align=False) < 0.05).all()
    buildings = gpd.read_file(bundled_demand / "demand.gpkg", layer="buildings")
    table = pd.read_csv(bundled_demand / "buildings.csv")
    assert table.consumer_id.tolist() == buildings.consumer_id.tolist()
    assert not set(left_out.consumer_id) & set(table.consumer_id)
    assert assert_geojson_matches_gpkg(bundled_demand) == 2
    assert_readme_lists_exactly_the_files(bundled_demand)
    assert assert_no_formula_cells(bundled_demand) > 1000


def test_summary_reports_left_out_defaults_and_published_figures(bundled_demand):
    summary = json.loads((bundled_demand / "summary.json").read_text())
    b = summary["buildings"]
    left_out = pd.read_csv(bundled_demand / "left_out_buildings.csv")
    assert b["buildings_read"] == b["heated"] + len(left_out) == 474
    assert left_out.reason.value_counts().to_dict() == {k: v for k, v in b["left_out"].items() if v}
    assert set(left_out.reason) <= set(b["left_out_reasons"]) and left_out.consumer_id.is_unique
    assert set(b["defaulted_share"]) == {"type", "era", "floors"}
    assert all(0 <= v <= 1 for v in b["defaulted_share"].values())
    plaus = {r["demand_type"]: r for r in summary["plausibility"]}
    assert "detached" in plaus and plaus["detached"]["reference_mean_heat_mwh_per_building"] == pytest.approx(24.3)
    assert "Statistics Finland" in plaus["detached"]["reference_source"]
    assert summary["demand_settings_from"].startswith("the documented defaults")
    keys = {row["key"] for row in summary["assumptions"]}
    assert {"demand.detached_max_footprint_m2", "demand.min_heated_footprint_m2", "demand.max_floors"} <= keys


def test_bundled_osm_file_on_dask_gives_the_single_process_totals(bundled_demand, tmp_path):
    proc = run_cli("demand", PBF, "--out", tmp_path / "dask", "--dask", "-q")
    assert proc.returncode == 0, proc.stderr  # was KeyError 'id'
    single = json.loads((bundled_demand / "summary.json").read_text())
    parted = json.loads((tmp_path / "dask" / "summary.json").read_text())
    assert parted["annual_demand_gwh"] == pytest.approx(single["annual_demand_gwh"], rel=1e-9)
    for key in ("buildings_read", "heated", "left_out", "type_from", "floors_from", "era_from"):
        assert parted["buildings"][key] == single["buildings"][key], key
    assert not (tmp_path / "dask" / "left_out_buildings.csv").exists()


def _temperatures(path, time):
    daily = 5.0 - 15.0 * np.cos(2 * np.pi * (np.arange(len(time)) / 24 - 15) / 365)
    pd.DataFrame({"time": time, "t_out_c": daily}).to_csv(path, index=False)
    return path


def test_temperatures_with_utc_offsets_are_converted(tmp_path, bundled_demand):
    local = pd.date_range("2023-01-01", periods=8760, freq="h", tz="Europe/Helsinki")  # +02:00, summer +03:00
    text = local.strftime("%Y-%m-%dT%H:%M:%S%z").str.replace(r"(\d\d)(\d\d)$", r"\1:\2", regex=True)
    assert {"+02:00", "+03:00"} <= set(text.str[-6:])
    t = _temperatures(tmp_path / "t.csv", text)
    proc = run_cli("demand", PBF, "--out", tmp_path / "out", "--temperatures", t, "-q")
    assert proc.returncode == 0, proc.stderr
    profile = pd.read_csv(tmp_path / "out" / "heat_profile.csv")
    times = pd.to_datetime(profile.time)
    assert len(profile) == 8760 and str(times.dt.tz) == "UTC" and times.iloc[0] == pd.Timestamp("2022-12-31T22:00Z")
    summary = json.loads((bundled_demand / "summary.json").read_text())
    assert profile.load_kw.sum() / 1e6 == pytest.approx(summary["annual_demand_gwh"], rel=1e-3)


def test_temperatures_with_some_offsets_missing_are_refused(tmp_path):
    text = pd.Series(pd.date_range("2023-01-01", periods=8760, freq="h").strftime("%Y-%m-%dT%H:%M:%S"))
    text[5:] = text[5:] + "+02:00"
    t = _temperatures(tmp_path / "t.csv", text)
    proc = run_cli("demand", PBF, "--out", tmp_path / "out", "--temperatures", t)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "t.csv: some times carry a UTC offset" in proc.stderr and "lines 2, 3, 4, 5, 6 do not" in proc.stderr


def test_unreachable_scheduler_is_named_and_exits_2(tmp_path):
    proc = run_cli("demand", PBF, "--out", tmp_path / "out", "--scheduler", "tcp://127.0.0.1:9")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9 within 5 s" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_grid_of_too_many_cells_is_drawn_as_one_image(tmp_path, monkeypatch):
    from heatmap.demand import density
    from heatmap.demand.job import demand_map, write_demand_map
    from heatmap.scenario import scenario_from_dict

    monkeypatch.setattr(density, "MAX_MAP_CELLS", 100)  # the bundled buildings fill 134 cells
    result = demand_map(PBF, scenario_from_dict({}, base_dir=tmp_path, for_plan=False))
    write_demand_map(result, tmp_path / "out")
    html = (tmp_path / "out" / "map.html").read_text(encoding="utf-8")
    assert html.count("L.imageOverlay(") == 1 and '"cell":' not in html
    assert html.count("L.geoJson(") == 2  # the potential areas and the buildings


def test_dask_run_prints_its_screen_without_the_cluster_log(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).with_name("heatmap")
    args = [str(exe), "demand", str(PBF), "--out", str(tmp_path / "out"), "--dask"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "INFO" not in proc.stderr and "distributed" not in proc.stderr, proc.stderr
    assert 8 <= len(proc.stdout.splitlines()) <= 25 and "potential areas" in proc.stdout
