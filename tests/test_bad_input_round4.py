"""Bad and doubtful input found by the fourth round of fuzzing: each answered with a located message or a warning."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import kip_study_file as _study_file

from heatmap._errors import ScenarioError

STUDY = Path(__file__).parents[1] / "data" / "scenarios" / "kip.yaml"


def _boiler_fuel(data, fuel):
    data["boilers"][0]["fuel"] = fuel


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda d: d["economics"].update(fuel_prices_eur_per_mwh={"peat": 30}), "economics.fuel_prices_eur_per_mwh"),
        (lambda d: _boiler_fuel(d, "woodchips"), "boilers[0].fuel"),
    ],
    ids=["fuel price", "boiler fuel"],
)
def test_a_study_fuel_not_in_the_fuel_table_is_refused_when_the_study_is_read(tmp_path, edit, key):
    """It was refused only when the concepts ran, after the network was planned (every ensemble variant failed)."""
    from heatmap.study import read_study

    path = _study_file(tmp_path, edit)
    with pytest.raises(ScenarioError, match="not in the fuel table") as err:
        read_study(path)
    message = str(err.value)
    assert message.startswith(f"{path}, line ") and key in message and "known: milled_peat, sod_peat" in message


def test_an_ensemble_shows_each_warning_once_whatever_ran_it(tmp_path):
    """The study's warning was printed by every check of the vary file and by every variant (bare, from the Dask
    workers); each variant's warnings now come back with its result and the command shows each distinct one once."""
    study = _study_file(tmp_path, lambda d: d["year"].update(electricity_co2_t_per_mwh=5))
    vary = tmp_path / "vary.yaml"
    vary.write_text(
        yaml.safe_dump(
            {
                "method": "grid",
                "inputs": [
                    {"path": "year.electricity_co2_t_per_mwh", "values": [5]},
                    {"path": "economics.co2_price_eur_per_t", "values": [80, 90]},
                ],
            }
        )
    )
    exe = Path(sys.executable).with_name("heatmap")
    args = [exe, "ensemble", study, "--vary", vary, "--out", tmp_path / "out", "--workers", "2"]
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "2 finished, 0 failed" in proc.stdout
    warned = [line for line in proc.stderr.splitlines() if "electricity_co2_t_per_mwh is 5 t/MWh" in line]
    assert len(warned) == 1 and warned[0].startswith("WARNING heatmap.study: "), proc.stderr


def test_a_variant_keeps_its_warnings_for_the_process_that_gathers_the_results(caplog):
    from heatmap.ensemble_job import Variant, run_variant
    from heatmap.study import read_study

    study = read_study(STUDY)
    with caplog.at_level("WARNING", logger="heatmap"):
        result = run_variant(study, Variant(1, {"year.electricity_co2_t_per_mwh": 5.0}))
    assert result.error is None
    kept = result.warned.messages
    assert [w for w in kept if "electricity_co2_t_per_mwh is 5 t/MWh" in w] == [kept[0]]
    # kept, and still logged in this process as before
    assert any("is 5 t/MWh" in r.getMessage() for r in caplog.records)
    assert run_variant(study, Variant(2, {"year.electricity_co2_t_per_mwh": 0.1})).warned.messages == []


def test_drawn_links_beside_streets_from_a_line_file_are_numbered_apart(bundled_plan, tmp_path):
    """Street lines and drawn links were both numbered from link:0 (nodes) and feature 1: a drawn line 50 km away
    became a 10 m pipe between two street junctions, and feature 1 was 'used' for the street file's feature 1."""
    import json

    import geopandas as gpd
    from conftest import run_cli
    from shapely.geometry import LineString

    bundled_plan.streets[["name", "geometry"]].to_file(tmp_path / "centre_lines.gpkg", engine="pyogrio")
    c = bundled_plan.consumers
    c[["consumer_id", "annual_demand_mwh", "peak_load_kw", "geometry"]].rename(columns={"consumer_id": "id"}).to_file(
        tmp_path / "buildings.gpkg", engine="pyogrio"
    )
    x0, y0, x1, y1 = bundled_plan.streets.total_bounds
    far = [LineString([(x0 + 50_000 + 30 * i, y0), (x0 + 50_010 + 30 * i, y0)]) for i in range(6)]
    # and one along a street of the town (a layer of lines all far away is refused: another place, or CRS)
    gpd.GeoDataFrame(
        {"surface": ["open_terrain"] * 7}, geometry=[*far, bundled_plan.streets.geometry.iloc[0]], crs=bundled_plan.crs
    ).to_file(tmp_path / "drawn.gpkg", engine="pyogrio")
    bundled = STUDY.parent / "helsinki_centre.yaml"
    data = yaml.safe_load(bundled.read_text())
    data["streets"] = {"source": "lines", "path": str(tmp_path / "centre_lines.gpkg"), "max_service_length_m": 150}
    data["sources"]["path"] = str(bundled.parent / data["sources"]["path"])
    data["consumers"] = {"path": str(tmp_path / "buildings.gpkg")}
    data["links"] = {"path": str(tmp_path / "drawn.gpkg")}
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    proc = run_cli("plan", tmp_path / "plan.yaml", "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.output
    pipes = gpd.read_file(tmp_path / "out" / "plan.gpkg", layer="pipes")
    px0, py0, px1, py1 = pipes.total_bounds
    assert x0 - 200 <= px0 and px1 <= x1 + 200 and y0 - 200 <= py0 and py1 <= y1 + 200  # no pipe out of town
    routes = gpd.read_file(tmp_path / "out" / "plan.gpkg", layer="streets")
    assert routes.link_feature[routes.surface == "street"].isna().all()
    drawn = json.loads((tmp_path / "out" / "summary.json").read_text())["drawn_links"]
    assert [d["status"] for d in drawn][:6] == ["not used"] * 6, drawn
    assert all(d["used_m"] <= d["length_m"] + 1e-6 for d in drawn)


def test_a_line_layer_of_metres_in_a_geojson_without_a_crs_is_refused_by_feature(tmp_path):
    """GeoJSON means degrees: a QGIS export of EPSG:3067 lines without a 'crs' member ended in a GEOS traceback."""
    from pyproj import CRS

    from heatmap._errors import InputDataError
    from heatmap.network import links

    path = tmp_path / "streets.geojson"
    path.write_text(
        '{"type": "FeatureCollection", "features": ['
        '{"type": "Feature", "properties": {}, "geometry": {"type": "LineString", "coordinates": [[24.9, 60.1], '
        "[24.91, 60.1]]}},"
        '{"type": "Feature", "properties": {}, "geometry": {"type": "LineString", "coordinates": [[385000, '
        "6672000], [385400, 6672000]]}}]}"
    )
    with pytest.raises(InputDataError, match=r"streets.geojson, feature 2: coordinates such as \(385000, 6.672e\+06\) "
                       r"are not degrees"):  # fmt: skip
        links.read_lines(path, layer=None, crs=CRS.from_epsg(3067), what="street lines")


def test_one_number_varied_under_its_unit_id_and_its_name_is_refused(tmp_path):
    """Both passed the check of repeated paths; the second was applied and the first credited with its effect."""
    from heatmap.ensemble_job import read_vary
    from heatmap.study import read_study

    vary = tmp_path / "vary.yaml"
    vary.write_text(
        yaml.safe_dump(
            {
                "method": "lhs",
                "samples": 3,
                "seed": 1,
                "inputs": [
                    {"path": "sources.boliden_acid_heat.availability", "range": [0.6, 0.7]},
                    {
                        "path": "sources.Boliden Kokkola, sulphuric-acid plant heat.availability",
                        "name": "by_name",
                        "range": [0.85, 0.95],
                    },
                ],
            }
        )
    )
    study = read_study(STUDY)
    with pytest.raises(ScenarioError, match=r"inputs\[by_name\]: .* is the number inputs\[sources.boliden_acid_heat."):
        read_vary(vary, study)
    ok = yaml.safe_load(vary.read_text())
    ok["inputs"][1]["path"] = "sources.Boliden Kokkola, sulphuric-acid plant heat.capacity_kw"
    ok["inputs"][1]["range"] = [1000, 2000]
    vary.write_text(yaml.safe_dump(ok))
    assert len(read_vary(vary, study).inputs) == 2  # the unit by name, another number: fine


def _numeric_fields(model, prefix="", seen=frozenset()):
    """Every field of ``model`` and the models within it that takes a number: (dotted path, its bounds)."""
    import typing

    from pydantic import BaseModel

    if model in seen:
        return []
    out = []
    for key, field in model.model_fields.items():
        stack, numbers, inner, models = [field.annotation], False, set(), []
        while stack:
            a = stack.pop()
            if typing.get_origin(a) is typing.Annotated:
                inner |= {type(m).__name__ for f in a.__metadata__ for m in [f, *getattr(f, "metadata", [])]}
            if a in (float, int):
                numbers = True
            elif isinstance(a, type) and issubclass(a, BaseModel):
                models.append(a)
            else:
                stack.extend(typing.get_args(a))
        if numbers:
            out.append((prefix + key, {type(m).__name__ for m in field.metadata} | inner))
        for m in models:
            out += _numeric_fields(m, f"{prefix}{key}.", seen | {model})
    return out


CHECKED_ELSEWHERE = {"inputs.values", "inputs.range", "inputs.scale", "study_area.bbox"}
"""A vary file's values (the study checks each end) and a bounding box (its own validator)."""


def test_every_number_of_every_schema_is_bounded_both_ways():
    """The study's storages, prices, costs and energies had no upper bound: 1e300 MWh of storage ran to 2.5e297 M€."""
    from heatmap.energy.energy_scenario import EnergyScenario
    from heatmap.energy.matching import MatchScenario
    from heatmap.ensemble_job import VaryFile
    from heatmap.scenario import Scenario
    from heatmap.study import Study

    for root in (Study, EnergyScenario, MatchScenario, VaryFile, Scenario):
        fields = _numeric_fields(root)
        assert len(fields) >= (5 if root is VaryFile else 20), root
        bounded = {p for p, b in fields if b & {"Ge", "Gt"} and b & {"Le", "Lt"}}
        open_ended = [p for p, _ in fields if p not in bounded | CHECKED_ELSEWHERE]
        assert not open_ended, (root.__name__, open_ended)


def test_a_storage_of_1e300_mwh_is_refused_at_its_line(tmp_path):
    from heatmap.study import read_study

    path = _study_file(tmp_path, lambda d: d["storages"][0].update(capacity_mwh=1e300))
    refused = r"line \d+: 'storages\[0\]\.capacity_mwh' is 1e\+300; it must be at most 1e\+08"
    with pytest.raises(ScenarioError, match=refused):
        read_study(path)


def test_a_drawn_ring_is_left_out_for_what_it_is_and_a_site_in_a_no_go_area_is_warned_of(
    bundled_plan, tmp_path, caplog
):
    """A closed ring was 'left out: it enters a no-go area' with no no-go file; a consumer inside a no-go polygon was
    piped through it without a word."""
    import json

    import geopandas as gpd
    from conftest import run_cli
    from shapely.geometry import LineString, box

    x0, y0, x1, y1 = bundled_plan.streets.total_bounds
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    ring = LineString([(cx, cy), (cx + 200, cy), (cx + 200, cy + 200), (cx, cy + 200), (cx, cy)])
    gpd.GeoDataFrame({"surface": ["street"]}, geometry=[ring], crs=bundled_plan.crs).to_file(
        tmp_path / "drawn.gpkg", engine="pyogrio"
    )
    inside = bundled_plan.consumers[bundled_plan.consumers.connected].iloc[0]
    zone = box(*inside.geometry.buffer(3).bounds)
    gpd.GeoDataFrame(geometry=[zone], crs=bundled_plan.crs).to_file(tmp_path / "no_go.gpkg", engine="pyogrio")
    bundled = STUDY.parent / "helsinki_centre.yaml"
    data = yaml.safe_load(bundled.read_text())
    data["streets"]["path"] = str((bundled.parent / data["streets"]["path"]).resolve())
    data["sources"]["path"] = str(bundled.parent / data["sources"]["path"])
    data["links"] = {"path": str(tmp_path / "drawn.gpkg"), "no_go_path": str(tmp_path / "no_go.gpkg")}
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    with caplog.at_level("WARNING", logger="heatmap"):
        proc = run_cli("plan", tmp_path / "plan.yaml", "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.output
    drawn = json.loads((tmp_path / "out" / "summary.json").read_text())["drawn_links"]
    assert [(d["status"], d["why"][:25]) for d in drawn] == [("left out", "its ends meet at one node")]
    warned = [r.getMessage() for r in caplog.records if "inside a no-go polygon" in r.getMessage()]
    assert len(warned) == 1 and f"({inside.consumer_id})" in warned[0] and "no_go.gpkg" in warned[0], warned


def test_a_building_tag_the_types_table_does_not_list_is_counted_in_the_report_and_on_the_screen(tmp_path):
    """building=spaceship (or a typo of garage) was heated as a dwelling with a word only in buildings.csv."""
    import json

    from conftest import run_cli

    from heatmap.demand.buildings import DemandReport, estimate_demand
    from heatmap.io import streets
    from heatmap.scenario import scenario_from_dict

    b = streets.buildings_from_pbf(STUDY.parents[1] / "helsinki_centre.osm.pbf").to_crs(3067)
    b = b[b.geometry.area > 200].copy()
    b.loc[b.index[:5], "building"] = "spaceship"
    b.loc[b.index[5:7], "building"] = "garge"
    settings = scenario_from_dict({}, base_dir=tmp_path, for_plan=False).demand
    report = estimate_demand(b, settings).report
    assert report.unlisted_tags["spaceship"] == 5 and report.unlisted_tags["garge"] == 2
    twice = DemandReport.merge([report, report])
    assert twice.unlisted_tags["spaceship"] == 10  # partitions add up
    b.to_file(tmp_path / "b.gpkg", engine="pyogrio")
    proc = run_cli("demand", tmp_path / "b.gpkg", "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.output
    line = next(x for x in proc.stdout.splitlines() if x.strip().startswith("unlisted tags"))
    assert "building=spaceship 5, " in line and "garge 2" in line, line  # most frequent first
    unlisted = json.loads((tmp_path / "out" / "summary.json").read_text())["buildings"]["unlisted_building_tags"]
    assert list(unlisted)[0] == "spaceship" and unlisted["garge"] == 2


def test_rows_ending_in_a_delimiter_are_read_as_written_and_rows_with_more_values_refused_by_line(tmp_path):
    """pandas took the first column of such rows as the index: 'time 72.72 is not written year first'."""
    from heatmap._errors import InputDataError
    from heatmap.demand.profiles import read_hourly
    from heatmap.io.tables import read_csv_rows

    index = pd.date_range("2023-01-01", periods=8760, freq="h")
    trailing = tmp_path / "price.csv"
    trailing.write_text(
        "time,price_eur_per_mwh\n" + "".join(f"{t:%Y-%m-%dT%H:%M},{i % 97}.5,\n" for i, t in enumerate(index))
    )
    price = read_hourly(trailing, "price_eur_per_mwh", index, lower=-500, upper=5000, what="electricity-price")
    assert price.iloc[:3].tolist() == [0.5, 1.5, 2.5] and len(price) == 8760
    two = tmp_path / "two.csv"
    two.write_text("id,lon,lat\nA,24.9,60.1,,\n")  # two empty cells past the header's columns
    assert read_csv_rows(two).to_dict("list") == {"id": ["A"], "lon": [24.9], "lat": [60.1]}
    extra = tmp_path / "extra.csv"
    extra.write_text("id,lon,lat\nA,24.9,60.1,\nB,24.9,60.2,7\n")
    with pytest.raises(InputDataError, match=r"extra.csv, line 3: 4 values where the header names 3 columns"):
        read_csv_rows(extra)


def test_whole_number_settings_are_recorded_as_run_and_the_year_is_not_varied(tmp_path):
    """variants.csv recorded lifetime_a 20.4 where the variant ran 20; year.year passed the check and failed later."""
    from heatmap.ensemble_job import make_variants, read_vary
    from heatmap.study import read_study

    study = read_study(STUDY)
    vary = tmp_path / "vary.yaml"
    inputs = [
        {"path": "economics.lifetime_a", "values": [20.4, 25.6]},
        {"path": "economics.discount_rate", "values": [0.04]},
    ]
    vary.write_text(yaml.safe_dump({"method": "grid", "inputs": inputs}))
    variants = make_variants(read_vary(vary, study), study)
    assert [v.values["economics.lifetime_a"] for v in variants] == [20.0, 26.0]
    assert [v.values["economics.discount_rate"] for v in variants] == [0.04, 0.04]
    vary.write_text(yaml.safe_dump({"method": "grid", "inputs": [{"path": "year.year", "values": [2023, 2024]}]}))
    with pytest.raises(
        ScenarioError, match="year.year cannot be varied: the study's hourly files hold the hours of one"
    ):
        read_vary(vary, study)


def test_drawn_lines_as_qgis_writes_them_surface_case_blank_dn_without_status_and_two_dns_on_one_stretch(caplog):
    import geopandas as gpd
    from shapely.geometry import LineString

    from heatmap._errors import InputDataError
    from heatmap.network import links

    factors = {s: float(i + 1) for i, s in enumerate(links.SURFACES)}
    lines = gpd.GeoDataFrame(
        {
            "feature": [1, 2, 3],
            "surface": ["Street", " pipe rack ", ""],  # capitals, a space for the underscore, a blank cell
            "status": ["", "", None],
            "dn": [100, None, None],
        },
        geometry=[LineString([(0, 0), (100, 0)]), LineString([(0, 50), (100, 50)]), LineString([(0, 90), (100, 90)])],
        crs=3067,
    )
    lines.attrs["where"] = "links.gpkg"
    with caplog.at_level("WARNING", logger="heatmap"):
        out = links.drawn_links(lines, cost_factors=factors, default_surface="open_terrain")
    assert out.sort_values("link_feature").surface.tolist() == ["street", "pipe_rack", "open_terrain"]
    assert out.existing_dn.isna().all()  # the dn of a line that is no existing pipe: not an existing pipe
    assert any("features 1 give a dn but not status existing" in r.getMessage() for r in caplog.records)
    twice = gpd.GeoDataFrame(
        {"feature": [1, 2], "status": ["existing", "existing"], "dn": [100, 200]},
        geometry=[LineString([(0, 0), (100, 0)]), LineString([(0, 0), (100, 0)])],
        crs=3067,
    )
    twice.attrs["where"] = "links.gpkg"
    with pytest.raises(InputDataError, match="features 1 and 2 lay existing pipes of DN 100 and DN 200 along the same"):
        links.drawn_links(twice, cost_factors=factors, default_surface="street")


def test_small_messages_name_what_to_fix(tmp_path):
    """A decimal comma, 15-minute prices, an empty DN cell, a 'DN' column and an empty street layer."""
    import geopandas as gpd
    from pyproj import CRS
    from shapely.geometry import LineString

    from heatmap._errors import InputDataError
    from heatmap.demand.profiles import read_hourly
    from heatmap.network import links

    csv = tmp_path / "consumers.csv"
    csv.write_text('id,lon,lat,annual_demand_mwh\nA,"24,93","60,17",100\n')
    with pytest.raises(InputDataError, match=r"line 2: no valid lon/lat .* \(a decimal comma, as in 24,93\? write"):
        inputs_read(csv)
    index = pd.date_range("2023-01-01", periods=8760, freq="h")
    quarter = tmp_path / "price.csv"
    times = pd.date_range("2023-01-01", periods=4 * 8760, freq="15min")
    quarter.write_text("time,price\n" + "".join(f"{t:%Y-%m-%dT%H:%M},50\n" for t in times))
    with pytest.raises(InputDataError, match="look like 15-minute values .*: average each hour's four"):
        read_hourly(quarter, "price", index, lower=-500, upper=5000, what="electricity-price")
    line = LineString([(0, 0), (100, 0)])
    for dn, shown in ((None, "got an empty cell"), (" ", "got an empty cell")):
        path = tmp_path / "existing.gpkg"
        gpd.GeoDataFrame({"Status": ["existing"], "DN": [dn]}, geometry=[line], crs=3067).to_file(path)
        drawn = links.read_lines(path, layer=None, crs=CRS.from_epsg(3067), what="candidate links")
        with pytest.raises(InputDataError, match=f"feature.? 1: an existing pipe needs its 'dn'.*\\({shown}\\)"):
            links.existing_dns(drawn)  # 'Status' and 'DN' read as status and dn
    gpd.GeoDataFrame({"Status": ["existing"], "DN": [100]}, geometry=[line], crs=3067).to_file(path)
    drawn = links.read_lines(path, layer=None, crs=CRS.from_epsg(3067), what="candidate links")
    assert links.existing_dns(drawn).tolist() == [100.0]


def inputs_read(path):
    from heatmap.io import inputs

    return inputs.read_features(path, id_column="id", what="consumers")


def test_an_empty_street_layer_and_an_id_of_a_source_and_a_consumer_name_their_files(tmp_path):
    import geopandas as gpd
    from conftest import run_cli
    from shapely.geometry import LineString

    streets = tmp_path / "streets.gpkg"
    gpd.GeoDataFrame({"name": ["a"]}, geometry=[LineString([(385000, 6672200), (385400, 6672200)])], crs=3067).iloc[
        :0
    ].to_file(streets)
    scenario = {
        "streets": {"source": "lines", "path": str(streets)},
        "sources": {"inline": [{"id": "S1", "lon": 24.93, "lat": 60.17, "capacity_kw": 5000}]},
        "consumers": {"inline": [{"id": "S1", "lon": 24.931, "lat": 60.171, "annual_demand_mwh": 100}]},
    }
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(scenario))
    proc = run_cli("plan", path, "--out", tmp_path / "out")
    assert proc.returncode == 2 and "streets.gpkg: the layer of street lines holds no lines" in proc.output
    gpd.GeoDataFrame({"name": ["a"]}, geometry=[LineString([(385000, 6672200), (385400, 6672200)])], crs=3067).to_file(
        streets
    )
    proc = run_cli("plan", path, "--out", tmp_path / "out")
    assert proc.returncode == 2, proc.output
    assert "ids S1 name both a source (scenario 'sources.inline') and a consumer (scenario 'consumers.inline')" in (
        proc.output
    )


def test_a_drawn_layer_empty_or_of_another_place_and_streets_of_another_place_are_refused(bundled_plan, tmp_path):
    """An empty drawn layer was taken silently, a drawn layer 140 km away gave a plan with every line unused (its
    existing pipes dropped), and streets of another place were reported as the consumers lying outside them."""
    import geopandas as gpd
    from conftest import run_cli
    from shapely import affinity

    bundled = STUDY.parent / "helsinki_centre.yaml"
    data = yaml.safe_load(bundled.read_text())
    data["streets"]["path"] = str((bundled.parent / data["streets"]["path"]).resolve())
    data["sources"]["path"] = str(bundled.parent / data["sources"]["path"])
    out = tmp_path / "out"
    trunk = bundled_plan.pipes.geometry[bundled_plan.pipes.design_load_kw.idxmax()]
    lines = gpd.GeoDataFrame({"status": ["existing"], "dn": [200]}, geometry=[trunk], crs=bundled_plan.crs)
    cases = {
        "empty": (lines.iloc[:0], "the layer of candidate links holds no lines ('links.path')"),
        "far": (
            lines.set_geometry([affinity.translate(trunk, 140_000)]),
            "none of its 1 lines ('links.path') comes within 1000 m",
        ),
    }
    for name, (layer, message) in cases.items():
        layer.to_file(tmp_path / f"{name}.gpkg", engine="pyogrio")
        data["links"] = {"path": str(tmp_path / f"{name}.gpkg")}
        (tmp_path / "plan.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
        proc = run_cli("plan", tmp_path / "plan.yaml", "--out", out)
        assert proc.returncode == 2 and f"{name}.gpkg: " in proc.output and message in proc.output, proc.output
        assert "Traceback" not in proc.output and not out.exists()
    streets = bundled_plan.streets[["name", "geometry"]].copy()
    streets.geometry = streets.geometry.translate(0, 140_000)
    streets.to_file(tmp_path / "elsewhere.gpkg", engine="pyogrio")
    data.pop("links")
    data["streets"] = {"source": "lines", "path": str(tmp_path / "elsewhere.gpkg")}
    data["consumers"] = {"path": str(tmp_path / "buildings.gpkg")}
    c = bundled_plan.consumers[["consumer_id", "annual_demand_mwh", "peak_load_kw", "geometry"]]
    c.rename(columns={"consumer_id": "id"}).to_file(tmp_path / "buildings.gpkg", engine="pyogrio")
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    proc = run_cli("plan", tmp_path / "plan.yaml", "--out", out)
    assert (
        proc.returncode == 2
        and "'streets.path' " in proc.output
        and "elsewhere.gpkg: no source and no " in (proc.output)
    ), proc.output
    assert not out.exists()


@pytest.mark.parametrize("cell_m", [1, 10_000])
def test_a_raster_cell_of_a_metre_or_of_ten_kilometres_is_warned_of(tmp_path, caplog, cell_m):
    from heatmap.demand.job import demand_map
    from heatmap.scenario import scenario_from_dict

    scn = scenario_from_dict({"density": {"cell_size_m": cell_m}}, base_dir=tmp_path, for_plan=False)
    with caplog.at_level("WARNING", logger="heatmap"):
        demand_map(STUDY.parents[1] / "helsinki_centre.osm.pbf", scn)
    assert any(f"density.cell_size_m is {cell_m:g} m" in r.getMessage() for r in caplog.records)


def test_a_free_linear_design_cost_is_warned_of(tmp_path, caplog):
    from heatmap.scenario import scenario_from_dict

    data = {
        "streets": {"path": "x.pbf"},
        "sources": {"path": "s.csv"},
        "consumers": {"path": "c.csv"},
        "design": {"cost": "linear", "trench_eur_per_m": 0, "pipe_eur_per_kw_m": 0},
    }
    with caplog.at_level("WARNING", logger="heatmap"):
        scenario_from_dict(data, base_dir=tmp_path)
    assert any("every route costs the design nothing" in r.getMessage() for r in caplog.records)


def test_a_dask_workers_warnings_are_shown_by_the_command_once_with_their_logger(tmp_path):
    """A worker printed the partition's warning bare ('3 buildings have the footprint …', no level or logger)."""
    import subprocess
    import sys

    import geopandas as gpd

    from heatmap.io import streets

    b = streets.buildings_from_pbf(STUDY.parents[1] / "helsinki_centre.osm.pbf")
    b = pd.concat([b, b.iloc[:3]], ignore_index=True).assign(id=lambda d: [f"x{i}" for i in range(len(d))])
    gpd.GeoDataFrame(b, crs=4326).to_file(tmp_path / "dup.gpkg")
    exe = Path(sys.executable).with_name("heatmap")
    args = [str(exe), "demand", str(tmp_path / "dup.gpkg"), "--dask", "--out", str(tmp_path / "out")]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    said = [line for line in proc.stderr.splitlines() if "have the footprint of another one" in line]
    assert len(said) == 1 and said[0].startswith("WARNING heatmap.demand.region: 3 buildings"), proc.stderr


def test_heat_the_sources_could_not_give_is_not_sold():
    """A partial plan with 108,233 of 120,163 MWh unserved counted all of it as sold: NPV above the feasible plan's."""
    from heatmap.economics import TradeMoney, annuity_factor, key_figures
    from heatmap.scenario import Economics

    econ = Economics()
    edges = pd.DataFrame({"length_m": [1000.0], "cost_eur": [1e6]})
    consumers = pd.DataFrame({"annual_demand_mwh": [100_000.0]})
    pipes = pd.DataFrame({"q_loss_kw": [100.0]})
    sources = pd.DataFrame({"pump_power_kw": [10.0]})
    year = TradeMoney(4e6, 0.0, None, 1e6, 100_000.0, 0.0)
    full = key_figures(edges, consumers, pipes, sources, econ, year=year, losses_mwh_per_a=500.0)
    short = key_figures(edges, consumers, pipes, sources, econ, year=year, losses_mwh_per_a=500.0,
                        unserved_mwh_per_a=75_000.0)  # fmt: skip
    assert full["heat_sold_mwh_per_a"] == 100_000 and short["heat_sold_mwh_per_a"] == 25_000
    assert short["heat_delivered_mwh_per_a"] == 25_000 and short["heat_unserved_mwh_per_a"] == 75_000
    assert short["revenue_eur_per_a"] == pytest.approx(1e6)  # a quarter of the consumers' 4 M€ for a quarter served
    af = annuity_factor(econ.discount_rate, econ.lifetime_a)
    running = full["om_cost_eur_per_a"] + full["pumping_cost_eur_per_a"] + 1e6
    assert short["npv_eur"] == pytest.approx(-1e6 + (1e6 - running) / af)
    assert short["npv_eur"] < full["npv_eur"]


def test_a_pipe_to_a_second_source_is_shared_by_every_consumer_so_the_shares_add_up():
    """A pipe carrying no consumer's load was paid by no one: the capex shares were 9.7 % short of the capex."""
    from heatmap.economics import consumer_shares
    from heatmap.scenario import Economics

    # source at 0; 0→1 trunk; A at 2 and B at 3 off node 1; 1→4 to a second source, carrying no consumer's load
    edges = pd.DataFrame(
        {"edge_id": [0, 1, 2, 3], "from_node": [0, 1, 1, 1], "to_node": [1, 2, 3, 4], "depth": [1, 2, 2, 2],
         "cost_eur": [100.0, 10.0, 20.0, 50.0]}
    )  # fmt: skip
    consumers = pd.DataFrame(
        {"consumer_id": ["A", "B"], "node": [2, 3], "peak_load_kw": [100.0, 300.0], "annual_demand_mwh": [200.0, 600.0]}
    )
    loss_kw = pd.Series([4.0, 1.0, 1.0, 2.0], index=[0, 1, 2, 3])
    figures = {"heat_losses_mwh_per_a": 80.0, "annuity_factor": 0.1, "pumping_cost_eur_per_a": 40.0,
               "pumping_energy_mwh_per_a": 0.8, "heat_purchase_cost_eur_per_a": 1000.0}  # fmt: skip
    shares = consumer_shares(edges, loss_kw, consumers, figures, Economics())
    assert shares.capex_share_eur.to_dict() == pytest.approx({"A": 10 + 25 + 12.5, "B": 20 + 75 + 37.5})
    assert shares.capex_share_eur.sum() == pytest.approx(edges.cost_eur.sum())
    assert shares.loss_share_mwh_per_a.sum() == pytest.approx(80.0)
    assert shares.pumping_share_mwh_per_a.sum() == pytest.approx(0.8)
    assert shares.pumping_share_eur_per_a.sum() == pytest.approx(40.0)


def test_a_prosumer_feeding_in_just_above_the_return_fails_its_hour_not_the_command():
    """pandapipes raised its own UserWarning ('direction change in circulation pump'): a traceback with exit 1."""
    import copy

    from kip_derived import derived

    from heatmap.plan import plan_from_scenario
    from heatmap.scenario import scenario_from_dict

    path = derived("network")
    data = copy.deepcopy(yaml.safe_load(path.read_text()))
    seller = next(c for c in data["consumers"]["inline"] if c["id"] == "kip_h2_electrolyser")
    seller["t_feed_in_c"] = 47.0  # the return is 45 °C
    plan = plan_from_scenario(scenario_from_dict(data, base_dir=path.parent, path=path))
    assert not plan.ok
    failed = plan.violations[plan.violations.check == "converged"]
    assert len(failed) and set(failed.hour) == {"summer, least load; prosumers sell most"}


def test_a_site_profile_of_an_excluded_consumer_says_so(tmp_path):
    from heatmap._errors import InputDataError
    from heatmap.energy.trade import read_site_profiles

    index = pd.date_range("2023-01-01", periods=8760, freq="h")
    path = tmp_path / "profiles.csv"
    pd.DataFrame({"time": index.strftime("%Y-%m-%dT%H:%M"), "keliber": 100.0}).to_csv(path, index=False)
    sites = pd.DataFrame({"consumer_id": ["port"], "annual_demand_mwh": [100.0]})
    with pytest.raises(InputDataError, match="columns keliber name consumers excluded from the plan by 'connect: ex"):
        read_site_profiles(path, index, sites, left_out={"excluded": ["keliber"]})


def test_a_concept_leaving_heat_unserved_claims_no_fuel_or_co2_saved():
    """A concept of one source and no boiler left 41,455 MWh/a unserved and claimed all the reference's fuel."""
    from types import SimpleNamespace

    from heatmap.energy.impact import regional_impact

    fuels = pd.DataFrame({"code": ["2121", "1"]}, index=["milled_peat", "wood_chips"])

    def concept(name, peat_mwh, co2_t, served):
        figures = {"fuel_mwh_by_fuel": {"milled_peat": peat_mwh}, "excess_heat_mwh": 1000.0, "electricity_mwh": 0.0}
        return SimpleNamespace(name=name, figures=figures, co2_t=co2_t, total_cost_eur=1e6, costs_comparable=served)

    reference = concept("Reference", 60_000.0, 20_000.0, True)
    table = regional_impact(
        reference, [concept("Short", 0.0, 0.0, False), concept("Full", 30_000.0, 10_000.0, True)], fuels=fuels
    ).set_index("concept")
    short, full = table.loc["Short"], table.loc["Full"]
    assert np.isnan([short.fuel_displaced_gwh, short.co2_avoided_kt_per_a, short.peat_cut_pct]).all()
    assert not short.peat_goal_met and short.excess_heat_used_gwh == 1.0
    assert full.fuel_displaced_gwh == 30.0 and full.co2_avoided_kt_per_a == 10.0 and full.peat_goal_met


def test_plans_of_one_name_are_told_apart_by_their_folders():
    from heatmap.io.compare import FinishedPlan, apart

    def plan(name, folder):
        return FinishedPlan(name, Path("/out") / folder, {}, None, None)

    named = [p.name for p in apart([plan("tiny", "tiny"), plan("tiny", "tiny_2"), plan("town", "town")])]
    assert named == ["tiny (tiny)", "tiny (tiny_2)", "town"]


@pytest.mark.parametrize(
    ("edit", "told"),
    [
        (
            lambda d: d["year"].update(electricity_price=1e300),
            "'year.electricity_price' is 1e+300; it must be at most 5000",
        ),
        (lambda d: d["sources"][0].update(availability=1.2), "'sources[0].availability' is 1.2; it must be at most 1"),
    ],
    ids=["price", "availability"],
)
def test_a_bounded_number_in_a_union_is_told_by_its_key_and_bound_alone(tmp_path, edit, told):
    """Bounding them showed pydantic's member name and every member's complaint ('.constrained-float' … 'or …')."""
    from heatmap.study import read_study

    with pytest.raises(ScenarioError) as err:
        read_study(_study_file(tmp_path, edit))
    message = str(err.value)
    assert message.endswith(told) and "constrained" not in message and " or " not in message, message


@pytest.mark.parametrize(("annual_mwh", "check"), [(0.5, "consumer_supply_temperature"), (0.005, "converged")])
def test_a_consumer_too_small_for_its_pipes_is_named_as_the_cause(tmp_path, annual_mwh, check):
    """A consumer of 0.25 kW (or 2.5 W) at the far end of a town: its own pipes cool its supply below its minimum (or
    pandapipes finds no state). The advice was about supply temperatures and pumps; now it names the consumer."""
    import json

    import geopandas as gpd
    from conftest import run_cli

    from heatmap.io import synthetic

    path = synthetic.write_synthetic_scenario(synthetic.synthetic_town(200, seed=3), tmp_path)
    consumers = gpd.read_file(tmp_path / "consumers.gpkg")
    far = consumers.geometry.distance(consumers.geometry.union_all().centroid).idxmax()
    consumers.loc[far, "annual_demand_mwh"] = annual_mwh
    consumers.to_file(tmp_path / "consumers.gpkg")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["consumers"].update(min_annual_demand_mwh=0, min_peak_load_kw=0)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    proc = run_cli("plan", path, "--out", tmp_path / "out", "--partial")
    name = str(consumers.id[far])
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert check in {v["check"] for v in summary["violations"]}, summary["violations"]
    assert [c["consumer_id"] for c in summary["cold_consumers"]] == [name]
    cold = summary["cold_consumers"][0]
    assert cold["own_pipes_cooling_k"] >= 0.5 * cold["margin_k"] > 0
    advice = " ".join(proc.output.split())
    assert f"1 consumers draw too little to keep warm the pipes that feed them alone: {name} (" in advice
    assert "raise consumers.min_peak_load_kw" in advice


def test_a_consumer_of_no_demand_is_listed_as_such(tmp_path):
    """annual_demand_mwh 0 with both minimums 0: it was left out without a reason ('not connected', in no list)."""
    import json

    import geopandas as gpd
    from conftest import run_cli

    from heatmap.io import synthetic

    path = synthetic.write_synthetic_scenario(synthetic.synthetic_town(40, seed=3), tmp_path)
    consumers = gpd.read_file(tmp_path / "consumers.gpkg")
    consumers.loc[0, "annual_demand_mwh"] = 0.0
    consumers.to_file(tmp_path / "consumers.gpkg")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["consumers"].update(min_annual_demand_mwh=0, min_peak_load_kw=0)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    proc = run_cli("plan", path, "--out", tmp_path / "out")
    assert proc.returncode == 0, proc.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["excluded_consumers"]["zero_demand"] == [str(consumers.id[0])]
    left = gpd.read_file(tmp_path / "out" / "plan.gpkg", layer="left_out").set_index("consumer_id")
    assert left.reason[str(consumers.id[0])] == "no_heat_demand"
    assert "zero demand 1" in proc.output
