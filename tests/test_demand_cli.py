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


@pytest.fixture(scope="module")
def bundled_demand(tmp_path_factory):
    out = tmp_path_factory.mktemp("demand")
    temperatures = out.parent / "t_out.csv"
    days = np.arange(365)
    daily = 5.0 - 15.0 * np.cos(2 * np.pi * (days - 15) / 365)
    time = pd.date_range("2023-01-01", periods=8760, freq="h")
    pd.DataFrame({"time": time, "t_out_c": np.repeat(daily, 24)}).to_csv(temperatures, index=False)
    proc = run_cli("demand", PBF, "--out", out, "--temperatures", temperatures, "-q")
    assert proc.returncode == 0, proc.stderr
    return out


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


@pytest.mark.browser
def test_demand_map_opens_offline_with_raster_areas_and_legend(browser, bundled_demand, tmp_path):
    from conftest import assert_offline, open_map

    from heatmap.maps.layers import load_layer_specs

    out = bundled_demand
    n_features = len(gpd.read_file(out / "demand.gpkg", layer="buildings")) + len(
        gpd.read_file(out / "demand.gpkg", layer="potential_areas")
    )
    context, page, errors, requests = open_map(browser, out / "map.html", screenshot=tmp_path / "demand.png")
    try:
        assert page.locator(".leaflet-overlay-pane path.leaflet-interactive").count() == n_features
        image = page.locator("img.heatmap-image")
        assert image.count() == 1 and image.evaluate("img => img.complete && img.naturalWidth > 0")
        legend = page.locator(".leaflet-control").all_inner_texts()
        for _, label in load_layer_specs()["heat_density"].legend:
            assert any(label in text for text in legend), label
        assert not errors, errors
        assert_offline(requests)
    finally:
        context.close()


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
