"""The command line end to end: the bundled scenario, and bad input answered with exit code 2."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
import yaml
from conftest import BUNDLED_SCENARIO, run_cli, write_scenario

from heatmap.io.exports import GEOJSON_FOLDER, README
from heatmap.io.output_folder import MARKER
from heatmap.io.outputs import GPKG_LAYERS, OUTPUT_FILES, TABLE_FILES, format_summary


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """The installed console script in a fresh process, as a user runs it."""
    out = tmp_path_factory.mktemp("cli")
    exe = Path(sys.executable).with_name("heatmap")
    proc = subprocess.run(
        [str(exe), "plan", str(BUNDLED_SCENARIO), "--out", str(out)], capture_output=True, text=True, timeout=300
    )
    return proc, out


def test_bundled_scenario_end_to_end(cli_run):
    proc, out = cli_run
    assert proc.returncode == 0, proc.stderr
    for name in OUTPUT_FILES:
        assert (out / name).stat().st_size > 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*OUTPUT_FILES, *TABLE_FILES, MARKER, README, GEOJSON_FOLDER]
    )
    assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")) == []
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "ok" and summary["violations"] == [] and summary["failed_checks"] == []
    assert "Heat delivered" in proc.stdout and "LCOH" in proc.stdout and str(out / "map.html") in proc.stdout
    assert "Checks: all hold" in proc.stdout
    # One screen: status, key figures, exclusions, checks; the assumptions go to summary.json and -v.
    assert len(proc.stdout.splitlines()) <= 30, proc.stdout
    assert "temperatures.supply_c" not in proc.stdout
    verbose = format_summary(summary, assumptions=True)
    assert "temperatures.supply_c = 85.0  [scenario]" in verbose
    assert "economics.om_fraction_per_a = 0.01  [default]" in verbose


def test_summary_is_complete_and_consistent(cli_run):
    _, out = cli_run
    s = json.loads((out / "summary.json").read_text())
    f = s["figures"]
    pipes = gpd.read_file(out / "plan.gpkg", layer="pipes")
    consumers = gpd.read_file(out / "plan.gpkg", layer="consumers")
    assert f["capex_eur"] == pytest.approx(pipes.cost_eur.sum(), rel=1e-9)
    assert f["heat_delivered_mwh_per_a"] == pytest.approx(consumers.annual_demand_mwh[consumers.connected].sum())
    assert f["route_length_m"] == pytest.approx(pipes.length_m[pipes.circuit == "supply"].sum())
    assert 0 < f["heat_losses_share"] < 0.2 and f["lcoh_eur_per_mwh"] > 0
    assert s["energy_balance"]["residual_relative"] <= 1e-3
    keys = {a["key"] for a in s["assumptions"]}
    assert {
        "temperatures.ground_c",
        "limits.max_pressure_gradient_pa_per_m",
        "network.cost_column",
        "economics.discount_rate",
        "demand.full_load_hours_h",
    } <= keys
    assert (
        s["counts"]["consumers_connected"] + sum(len(v) for v in s["excluded_consumers"].values())
        >= s["counts"]["consumers"]
    )


def test_geopackage_layers_crs_and_columns(cli_run):
    _, out = cli_run
    gpkg = out / "plan.gpkg"
    assert [name for name, _ in pyogrio.list_layers(gpkg)][: len(GPKG_LAYERS)] == list(GPKG_LAYERS)
    expected = {
        "sources": {"source_id", "capacity_kw", "t_supply_c", "q_supplied_kw", "mdot_kg_per_s", "pump_lift_bar"},
        "consumers": {
            "consumer_id",
            "annual_demand_mwh",
            "peak_load_kw",
            "connected",
            "service_length_m",
            "service_cost_eur",
            "dp_bar",
            "t_supply_c",
            "demand_method",
        },
        "pipes": {
            "pipe_id",
            "circuit",
            "dn",
            "length_m",
            "mdot_kg_per_s",
            "v_m_per_s",
            "dp_bar",
            "r_pa_per_m",
            "t_in_c",
            "t_out_c",
            "q_loss_kw",
            "cost_eur",
        },
        "junctions": {"junction_id", "circuit", "p_bar", "t_c"},
        "streets": {"edge_id", "name", "highway", "length_m", "in_plan"},
    }
    for layer, cols in expected.items():
        gdf = gpd.read_file(gpkg, layer=layer)
        assert gdf.crs.to_epsg() == 3067, layer
        assert cols <= set(gdf.columns), (layer, cols - set(gdf.columns))
        assert len(gdf) > 0 and gdf.geometry.is_valid.all()
    pipes = gpd.read_file(gpkg, layer="pipes")
    assert set(pipes.circuit) == {"supply", "return"}
    assert pipes.groupby("circuit").size()["supply"] == pipes.groupby("circuit").size()["return"]
    supply = pipes[pipes.circuit == "supply"]
    assert (supply.t_out_c < supply.t_in_c).all()  # supply pipes cool along their flow
    assert pipes.geometry.length.values == pytest.approx(pipes.length_m.clip(lower=1).values, rel=1e-6, abs=1.0)


def test_qgis_styles_are_embedded(cli_run):
    import sqlite3

    _, out = cli_run
    with sqlite3.connect(out / "plan.gpkg") as db:
        rows = db.execute(
            "select f_table_name, f_geometry_column, f_table_schema, useAsDefault from layer_styles"
        ).fetchall()
    assert {r[0] for r in rows} == set(GPKG_LAYERS)
    assert all(r[1] == "geom" and r[2] == "" and r[3] for r in rows)


def sources_file(tmp_path, rows):
    import pandas as pd

    path = tmp_path / "sources.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    "case",
    ["missing_file", "unknown_key", "duplicate_ids", "outside", "negative", "no_crs", "invalid_geometry", "kelvin"],
)
def test_bad_input_exits_2_with_a_clear_message_and_no_output(tmp_path, case):
    from shapely.geometry import Point, Polygon

    out = tmp_path / "out"
    good = {"id": ["S1"], "lon": [24.9382], "lat": [60.1652], "capacity_kw": [90000]}
    consumers = tmp_path / "consumers.gpkg"
    if case == "missing_file":
        scn, expect = write_scenario(tmp_path, sources__path=str(tmp_path / "nope.csv")), "nope.csv: file not found"
    elif case == "unknown_key":
        scn, expect = write_scenario(tmp_path, limits__max_velocity=2), "did you mean 'limits.max_velocity_m_per_s'"
    elif case == "duplicate_ids":
        rows = {k: v * 2 for k, v in good.items()}
        scn = write_scenario(tmp_path, sources__path=str(sources_file(tmp_path, rows)))
        expect = "duplicate ids S1"
    elif case == "outside":
        rows = dict(good, lon=[25.2])
        scn = write_scenario(tmp_path, sources__path=str(sources_file(tmp_path, rows)))
        expect = "sources S1 lie outside"
    elif case == "kelvin":
        rows = dict(good, t_supply_c=[358.15])
        scn = write_scenario(tmp_path, sources__path=str(sources_file(tmp_path, rows)))
        expect = "give °C, not kelvin"
    else:
        geom = {
            "negative": Point(385800, 6672000),
            "no_crs": Point(385800, 6672000),
            "invalid_geometry": Polygon([(385800, 6672000), (385810, 6672010), (385810, 6672000), (385800, 6672010)]),
        }[case]
        demand = -5.0 if case == "negative" else 50.0
        gdf = gpd.GeoDataFrame(
            {"id": ["B1", "B2"], "annual_demand_mwh": [100.0, demand]},
            geometry=[Point(385700, 6671900), geom],
            crs=None if case == "no_crs" else 3067,
        )
        if case == "invalid_geometry":
            gdf = gdf.set_geometry([Point(385700, 6671900).buffer(5), geom])
        gdf.to_file(consumers, engine="pyogrio")
        scn = write_scenario(tmp_path, consumers__osm_buildings=False, consumers__path=str(consumers))
        expect = {
            "negative": "negative for features B2",
            "no_crs": "has no CRS",
            "invalid_geometry": "features B2 have invalid geometry",
        }[case]
    proc = run_cli("plan", scn, "--out", out)
    assert proc.returncode == 2, proc.stderr
    assert expect in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists() or not any(out.iterdir())


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = run_cli("plan", BUNDLED_SCENARIO, "--out", blocker / "out")
    assert proc.returncode == 2 and "cannot write to the output folder" in proc.stderr
    assert f"{blocker} is not a folder" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("tiles", "why"),
    [
        ("not a url", "it lacks {z}, {x}, {y}"),
        ("ftp://t/{z}/{x}/{y}.png", "not an http(s) URL"),
        ("https://t/{z}/{x}.png", "lacks {y}"),
    ],
)
def test_a_tile_url_that_is_no_template_is_refused_before_planning(tmp_path, tiles, why):
    proc = run_cli("plan", BUNDLED_SCENARIO, "--out", tmp_path / "out", "--tiles", tiles)
    assert proc.returncode == 2 and "Invalid value for '--tiles'" in proc.output and why in proc.output, proc.output
    assert "Traceback" not in proc.output and not (tmp_path / "out").exists()


def test_failing_checks_write_nothing_unless_partial(tmp_path):
    scn = write_scenario(
        tmp_path,
        limits__min_consumer_dp_bar=5.0,
        network__max_pump_lift_bar=1.0,
        network__initial_pump_lift_bar=1.0,
        limits__max_resize_rounds=1,
    )
    out = tmp_path / "out"
    proc = run_cli("plan", scn, "--out", out, "-q", "-v")
    assert proc.returncode == 3 and "error: checks fail (consumer_dp)" in proc.stderr and "--partial" in proc.stderr
    assert re.search(r"consumer_dp +\S+: Δp -?\d+\.\d\d bar < 5 bar", proc.stderr), proc.stderr
    assert "raise network.max_pump_lift_bar (now 1 bar)" in proc.stderr
    assert "Assumptions" in proc.stderr and "limits.min_consumer_dp_bar = 5.0  [scenario]" in proc.stderr
    assert not out.exists()
    proc = run_cli("plan", scn, "--out", out, "--partial", "-q")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "summary.json").read_text())["status"] == "partial: checks failed"


def test_previous_results_survive_a_failed_run(tmp_path, cli_run):
    _, good_out = cli_run
    out = tmp_path / "out"
    shutil.copytree(good_out, out)
    before = (out / "summary.json").read_bytes()
    proc = run_cli("plan", write_scenario(tmp_path, temperatures__supply_c=400), "--out", out)
    assert proc.returncode == 2
    assert (out / "summary.json").read_bytes() == before


@pytest.mark.browser
def test_bundled_map_opens_offline_with_every_feature_drawn(browser, cli_run, tmp_path):
    from conftest import assert_offline, open_map

    from heatmap.maps.layers import load_layer_specs

    _, out = cli_run
    specs = load_layer_specs()
    written = {name for name, _ in pyogrio.list_layers(out / "plan.gpkg")}
    gpkg = {
        name: gpd.read_file(out / "plan.gpkg", layer=name) for name, s in specs.items() if s.web_map and name in written
    }
    # one line per trench (supply and return), the connected consumers (the others are in left_out), the
    # candidate routes the plan does not use (its pipes lie on the others)
    gpkg["pipes"] = gpkg["pipes"].drop_duplicates("edge_id")
    gpkg["consumers"] = gpkg["consumers"][gpkg["consumers"].connected]
    gpkg["streets"] = gpkg["streets"][~gpkg["streets"].in_plan]
    expected = sum(len(frame) for frame in gpkg.values())
    context, page, errors, requests = open_map(browser, out / "map.html", screenshot=tmp_path / "map.png")
    try:
        assert page.locator(".leaflet-overlay-pane path.leaflet-interactive").count() == expected
        pipes = page.locator(".leaflet-heatmap-pipes-pane path.leaflet-interactive")
        pipes.nth(pipes.count() // 2).dispatch_event("click")
        popup = page.locator(".leaflet-popup-content")
        popup.wait_for()
        assert "DN" in popup.inner_text() and "kg/s" in popup.inner_text()
        assert errors == []
        assert_offline(requests)
    finally:
        context.close()


def test_inline_consumers_with_their_own_minimum_supply_temperature(tmp_path):
    """A consumer asking for more than the network supplies is reported by id; one asking less passes."""
    rows = [
        {"id": "hotel", "lon": 24.9425, "lat": 60.1680, "annual_demand_mwh": 800.0, "min_supply_c": 84.99},
        {"id": "school", "lon": 24.9460, "lat": 60.1700, "annual_demand_mwh": 400.0, "peak_load_kw": 300.0},
    ]
    scn = write_scenario(
        tmp_path, consumers__osm_buildings=False, consumers__inline=rows, consumers__min_annual_demand_mwh=0
    )
    out = tmp_path / "out"
    proc = run_cli("plan", scn, "--out", out, "--partial", "-q")
    assert proc.returncode == 0, proc.stderr
    s = json.loads((out / "summary.json").read_text())
    assert [(v["check"], v["element"]) for v in s["violations"]] == [("consumer_supply_temperature", "hotel")]
    assert s["violations"][0]["limit"] == pytest.approx(84.99)
    c = gpd.read_file(out / "plan.gpkg", layer="consumers").set_index("consumer_id")
    assert c.loc["school", "peak_load_kw"] == 300.0 and c.loc["hotel", "peak_load_kw"] == pytest.approx(400.0)
    assert c.loc["school", "min_supply_c"] == 75.0  # the scenario's default


def test_resize_rounds_upsize_an_undersized_network(tmp_path, monkeypatch):
    """Start every pipe at DN20: the simulate–check–resize loop must upsize until the limits hold."""
    from heatmap import plan as plan_module
    from heatmap.scenario import scenario_from_file

    monkeypatch.setattr(plan_module.sizing, "size_pipes", lambda mdot, catalogue, **_: np.full(len(mdot), 20))
    rows = [{"id": f"C{i}", "lon": 24.940 + 0.001 * i, "lat": 60.1690, "annual_demand_mwh": 600.0} for i in range(6)]
    scn = scenario_from_file(
        write_scenario(tmp_path, consumers__osm_buildings=False, consumers__inline=rows, limits__max_resize_rounds=15)
    )
    result = plan_module.plan_from_scenario(scn)
    assert result.ok, result.violations
    assert {"velocity", "pressure_gradient"} & set(result.rounds[0]["checks_failed"]) and len(result.rounds) > 2
    assert result.rounds[-1]["violations"] == 0
    supply = result.pipes[result.pipes.circuit == "supply"]
    assert supply.dn.max() > 20
    assert (supply.v_m_per_s <= scn.limits.max_velocity_m_per_s).all()
    assert (supply.r_pa_per_m <= scn.limits.max_pressure_gradient_pa_per_m).all()


def test_same_scenario_gives_identical_attributes_and_summary(cli_run, tmp_path):
    """A second run in a process with another hash seed writes the same attributes, geometries and summary."""
    import os

    _, first = cli_run
    second = tmp_path / "second"
    env = dict(os.environ, PYTHONHASHSEED="12345")
    exe = Path(sys.executable).with_name("heatmap")
    proc = subprocess.run(
        [str(exe), "plan", str(BUNDLED_SCENARIO), "--out", str(second), "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    for layer in GPKG_LAYERS:
        a = pyogrio.read_dataframe(first / "plan.gpkg", layer=layer)
        b = pyogrio.read_dataframe(second / "plan.gpkg", layer=layer)
        assert a.drop(columns="geometry").equals(b.drop(columns="geometry")), layer
        assert (a.geometry.to_wkb() == b.geometry.to_wkb()).all(), layer
    s1, s2 = (json.loads((d / "summary.json").read_text()) for d in (first, second))
    assert s1.pop("created_utc") != "" and s2.pop("created_utc") != ""
    # the design's solve times are measurements, like the creation time (everything it found is the same)
    assert s1["network_design"].pop("time_s").keys() == s2["network_design"].pop("time_s").keys()
    assert s1 == s2


@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT", "SIGTERM"])
def test_interrupted_run_leaves_previous_results_intact(cli_run, tmp_path, how):
    """Kill a run while it writes its outputs: the previous results stay byte for byte, and the next run cleans up."""
    import signal
    import time

    _, good_out = cli_run
    out = tmp_path / "out"
    exe = Path(sys.executable).with_name("heatmap")

    def temporaries():
        return list(tmp_path.glob(".out.heatmap-*"))

    # On a loaded machine the run may finish writing before the signal lands (exit 0): that attempt did not
    # test an interruption, so it is made again with the previous results put back (at most three times).
    for _attempt in range(3):
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(good_out, out)
        before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
        proc = subprocess.Popen(
            [str(exe), "plan", str(BUNDLED_SCENARIO), "--out", str(out), "-q"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 120
        while not temporaries() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        assert proc.poll() is None, "the run ended before it began writing: " + proc.communicate()[1]
        proc.send_signal(getattr(signal, how))
        _, stderr = proc.communicate(timeout=60)
        if proc.returncode != 0:
            break
    assert proc.returncode == {"SIGKILL": -9, "SIGINT": 130, "SIGTERM": 143}[how], stderr
    if how != "SIGKILL":
        what = "interrupted" if how == "SIGINT" else "terminated"
        assert f"{what}: nothing was written; earlier results are unchanged" in stderr and "Traceback" not in stderr
        assert not temporaries()
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    if how == "SIGKILL":  # the killed run's temporary folder is cleared by the next run
        assert temporaries()
        assert run_cli("plan", BUNDLED_SCENARIO, "--out", out, "-q").returncode == 0
        assert not temporaries()


@pytest.fixture(scope="module")
def small_town(tmp_path_factory):
    from heatmap.io import synthetic

    folder = tmp_path_factory.mktemp("town")
    synthetic.write_synthetic_scenario(synthetic.synthetic_town(200, seed=5), folder)
    return folder


def town_scenario(town, tmp_path, **changes):
    """The small town's scenario with changes (``section__key``), its data files referred to absolutely."""
    data = yaml.safe_load((town / "scenario.yaml").read_text())
    for section in ("streets", "sources", "consumers"):
        data[section]["path"] = str(town / data[section]["path"])
    for key, value in changes.items():
        section, name = key.split("__")
        data.setdefault(section, {})[name] = value
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def edited_consumers(town, tmp_path, edit, name="consumers.gpkg"):
    gdf = gpd.read_file(town / "consumers.gpkg")
    gdf = edit(gdf)
    path = tmp_path / name
    if path.suffix == ".csv":
        gdf.drop(columns="geometry").to_csv(path, index=False)
    else:
        gdf.to_file(path, engine="pyogrio")
    return path


@pytest.mark.parametrize(
    "case",
    [
        "unreadable",
        "wrong_format",
        "geographic_crs",
        "empty_geometry",
        "non_numeric_demand",
        "source_far_from_streets",
        "no_consumer_reachable",
        "dangling_osm_refs_only",
    ],
)
def test_more_bad_input_on_a_town_exits_2_naming_what_to_fix(small_town, tmp_path, case):
    out = tmp_path / "out"
    if case == "unreadable":
        bad = tmp_path / "consumers.gpkg"
        bad.write_bytes(b"this is not a GeoPackage")
        scn, expect = town_scenario(small_town, tmp_path, consumers__path=str(bad)), "consumers.gpkg"
    elif case == "wrong_format":
        bad = tmp_path / "consumers.xlsx"
        bad.write_bytes(b"PK\x03\x04")
        scn, expect = town_scenario(small_town, tmp_path, consumers__path=str(bad)), "consumers.xlsx"
    elif case == "geographic_crs":
        scn, expect = town_scenario(small_town, tmp_path, study_area__crs="EPSG:4326"), "is geographic"
    elif case == "empty_geometry":
        path = edited_consumers(small_town, tmp_path, lambda g: g.assign(geometry=[None, *g.geometry[1:]]))
        scn, expect = town_scenario(small_town, tmp_path, consumers__path=str(path)), "B000"
    elif case == "non_numeric_demand":
        path = edited_consumers(
            small_town, tmp_path, lambda g: g.assign(annual_demand_mwh=["lots", *g.annual_demand_mwh[1:]])
        )
        scn, expect = town_scenario(small_town, tmp_path, consumers__path=str(path)), "B000"
    elif case == "source_far_from_streets":
        src = gpd.read_file(small_town / "sources.geojson").to_crs(3067)
        src["geometry"] = shapely.affinity.translate(src.geometry.iloc[0], 0, -600)
        path = tmp_path / "sources.gpkg"
        src.to_file(path, engine="pyogrio")
        lon, lat = src.to_crs(4326).geometry.iloc[0].coords[0]
        scn = town_scenario(
            small_town, tmp_path, sources__path=str(path), study_area__bbox=[lon - 0.1, lat - 0.1, lon + 0.1, lat + 0.1]
        )
        expect = "S1 are farther than 150 m"
    elif case == "no_consumer_reachable":
        # The plant stands by a short street of its own, not connected to the town's streets.
        streets, centre = street_island(small_town, tmp_path)
        src = gpd.read_file(small_town / "sources.geojson").to_crs(3067)
        src["geometry"] = [shapely.Point(centre.x, centre.y + 5)]
        path = tmp_path / "sources.gpkg"
        src.to_file(path, engine="pyogrio")
        scn = town_scenario(small_town, tmp_path, streets__path=str(streets), sources__path=str(path))
        expect = "no consumer can be reached"
    else:
        osm = tmp_path / "streets.osm"
        osm.write_text(
            '<?xml version="1.0"?><osm version="0.6"><way id="1"><nd ref="1"/><nd ref="2"/>'
            '<tag k="highway" v="residential"/></way></osm>'
        )
        scn = town_scenario(small_town, tmp_path, streets__source="xml", streets__path=str(osm))
        expect = "streets.osm"
    proc = run_cli("plan", scn, "--out", out)
    assert proc.returncode == 2, proc.stderr + proc.stdout
    assert expect in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists() or not any(out.iterdir())


def street_island(town, tmp_path):
    """The town's streets plus a 20 m street, connected to nothing, 300 m south of the town's streets."""
    import osmnx as ox
    import shapely
    from pyproj import Transformer

    G = ox.load_graphml(town / "streets.graphml")
    to_m = Transformer.from_crs(4326, 3067, always_xy=True)
    xy = np.array([to_m.transform(d["x"], d["y"]) for _, d in G.nodes(data=True)])
    centre = shapely.Point(xy[:, 0].mean(), xy[:, 1].min() - 300)
    to_deg = Transformer.from_crs(3067, 4326, always_xy=True)
    for node, dx in ((-1, -10.0), (-2, 10.0)):
        lon, lat = to_deg.transform(centre.x + dx, centre.y)
        G.add_node(node, x=lon, y=lat)
    for a, b in ((-1, -2), (-2, -1)):
        G.add_edge(a, b, osmid=-1, highway="residential", length=20.0, oneway=False, reversed=a == -2)
    path = tmp_path / "streets.graphml"
    ox.save_graphml(G, path)
    return path, centre


def test_consumers_cut_off_from_the_sources_are_reported_by_id(small_town, tmp_path):
    streets, centre = street_island(small_town, tmp_path)
    cut = gpd.read_file(small_town / "consumers.gpkg").iloc[[0]].assign(id="ISLAND")
    cut["geometry"] = [shapely.Point(centre.x, centre.y + 8).buffer(3, cap_style="square")]
    path = edited_consumers(small_town, tmp_path, lambda g: pd.concat([g, cut], ignore_index=True))
    out = tmp_path / "out"
    scn = town_scenario(small_town, tmp_path, consumers__path=str(path), streets__path=str(streets))
    proc = run_cli("plan", scn, "--out", out, "-q")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["excluded_consumers"]["no_path_to_source"] == ["ISLAND"]
    # the summary says how far the nearest street a source reaches is: beyond the longest service pipe
    assert summary["nearest_reachable_street_m"]["ISLAND"] > 150
