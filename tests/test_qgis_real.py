"""Every GeoPackage and GeoTIFF heatmap writes, opened in real QGIS (Debian's ``python3-qgis``, headless).

The files of ``heatmap plan`` (the bundled Helsinki plan), ``heatmap demand`` (the bundled Helsinki PBF) and ``heatmap
study`` (the KIP study: its network with a year of operation, the concepts, the matches with their planned network
and the pairs' straight lines; ``heatmap concepts`` and ``heatmap matches`` write the same files) are loaded by
``tests/qgis_check.py`` under ``/usr/bin/python3`` with ``QT_QPA_PLATFORM=offscreen``, each layer with the default
style QGIS finds for it (as when a user drags the file into QGIS), and the QGIS project stored in each GeoPackage is
opened. Asserted against the layer definitions (``layers/*.yaml``): renderer and class count, labels, scale-dependent
visibility of the junctions, an alias for every column, the layer's title and abstract (scenario and assumptions),
the project's layers, order and ticks (junctions unticked); each layer and each file (a GeoPackage: its project's
map) is rendered to a PNG kept in ``tests/artefacts/qgis/`` (git-ignored).

QGIS missing is a failure, not a skip: ``bash scripts/setup.sh --with-qgis`` installs it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from conftest import run_cli

from heatmap import settings
from heatmap.demand.job import BUILDINGS_DESCRIPTION
from heatmap.maps.layers import load_layer_specs
from heatmap.maps.qgis_style import field_aliases, label_expression

SYSTEM_PYTHON = Path("/usr/bin/python3")
CHECK_SCRIPT = Path(__file__).with_name("qgis_check.py")
ARTEFACTS = Path(__file__).with_name("artefacts") / "qgis"
INSTALL_HINT = (
    "QGIS is missing: the QGIS tests need Debian's python3-qgis for the system Python. Install it with "
    "`bash scripts/setup.sh --with-browser --with-qgis` (or `sudo apt-get install python3-qgis`)."
)
RENDERERS = {"single": "singleSymbol", "graduated": "graduatedSymbol", "categorized": "categorizedSymbol"}
# The layer definition of each layer name written (demand.gpkg's buildings look like a plan's consumers).
DEFINITION: dict[str, str] = {}  # a layer written under another definition's name (none now)
# Probes of the heat-density colours: inside each class, on a bound (inclusive) and far above the last one.
RASTER_PROBES = [1.0, 50.0, 50.5, 149.0, 200.0, 333.0, 999.0, 1000.0, 1e6]


def _qgis_python() -> Path:
    if not SYSTEM_PYTHON.is_file():
        pytest.fail(INSTALL_HINT + f" ({SYSTEM_PYTHON} does not exist)")
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import qgis.core; print(qgis.core.Qgis.QGIS_VERSION)"],
        capture_output=True,
        text=True,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        timeout=120,
    )
    if probe.returncode != 0:
        pytest.fail(INSTALL_HINT + f" (import qgis.core: {probe.stderr.strip()[-300:]})")
    return SYSTEM_PYTHON


@pytest.fixture(scope="module")
def written(bundled_outputs: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The output folders of plan, demand and study."""
    base = tmp_path_factory.mktemp("qgis_real")
    demand = run_cli("demand", settings.data_dir / "helsinki_centre.osm.pbf", "--out", base / "demand", "-q")
    assert demand.exit_code == 0, demand.output
    study = run_cli("study", settings.data_dir / "scenarios" / "kip.yaml", "--out", base / "kip_study", "-q")
    assert study.exit_code == 0, study.output
    links = _plan_with_drawn_lines(bundled_outputs, base)
    return {"plan": bundled_outputs, "demand": base / "demand", "study": base / "kip_study", "links": links}


def _plan_with_drawn_lines(bundled_outputs: Path, base: Path) -> Path:
    """The bundled plan again with drawn lines (an existing pipe, a forbidden street, an unused line) and a no-go area:
    its GeoPackage has the layers drawn_lines and no_go_areas too."""
    import yaml
    from shapely.geometry import LineString
    from shapely.ops import substring

    pipes = gpd.read_file(bundled_outputs / "plan.gpkg", layer="pipes")
    street = pipes[(pipes.circuit == "supply") & (pipes.kind == "street")].sort_values("length_m")
    longest, short = street.iloc[-1], street.iloc[len(street) // 2]
    x, y = longest.geometry.interpolate(0.5, normalized=True).coords[0]
    lines = gpd.GeoDataFrame(
        {"status": ["existing", "forbidden", "candidate"], "dn": [int(longest.dn), None, None]},
        geometry=[
            substring(longest.geometry, 0.2, 0.8, normalized=True),
            short.geometry,
            LineString([(x + 40, y + 40), (x + 70, y + 40)]),
        ],
        crs=pipes.crs,
    )
    lines.to_file(base / "drawn.gpkg", engine="pyogrio")
    left = gpd.read_file(bundled_outputs / "plan.gpkg", layer="left_out")
    gpd.GeoDataFrame(geometry=[left.geometry.iloc[0].centroid.buffer(8.0)], crs=pipes.crs).to_file(
        base / "no_go.gpkg", engine="pyogrio"
    )
    scenario = settings.data_dir / "scenarios" / "helsinki_centre.yaml"
    data = yaml.safe_load(scenario.read_text())
    data["streets"]["path"] = str((scenario.parent / data["streets"]["path"]).resolve())
    data["sources"]["path"] = str(scenario.parent / data["sources"]["path"])
    data["links"] = {"path": str(base / "drawn.gpkg"), "no_go_path": str(base / "no_go.gpkg")}
    (base / "links.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    plan = run_cli("plan", base / "links.yaml", "--out", base / "links", "-q")
    assert plan.exit_code == 0, plan.output
    return base / "links"


@pytest.fixture(scope="module")
def qgis_report(written: dict[str, Path]) -> dict:
    """What QGIS makes of every GeoPackage and GeoTIFF written (see tests/qgis_check.py); PNGs in ARTEFACTS."""
    python = _qgis_python()
    files = [
        {"path": str(p), "name": f"{key}/{p.relative_to(folder).as_posix()}"}
        for key, folder in written.items()
        for p in sorted(folder.rglob("*"))
        if p.suffix in (".gpkg", ".tif")
    ]
    if ARTEFACTS.exists():
        shutil.rmtree(ARTEFACTS)
    ARTEFACTS.mkdir(parents=True)
    request = {"files": files, "png_dir": str(ARTEFACTS), "size": [900, 700], "raster_probes": RASTER_PROBES}
    run = subprocess.run(
        [python, CHECK_SCRIPT],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        timeout=600,
    )
    assert run.returncode == 0 and run.stdout.strip(), f"QGIS check failed ({run.returncode}): {run.stderr[-2000:]}"
    report = json.loads(run.stdout)
    (ARTEFACTS / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
    print(f"\nQGIS {report['qgis_version']}: {len(files)} files, PNGs and report.json in {ARTEFACTS}")
    return report


def _layers(report: dict, name: str) -> list[tuple[str, str, dict]]:
    """(file, layer, what QGIS found) of every layer of that name."""
    return [(f, n, layer) for f, v in report["files"].items() for n, layer in v["layers"].items() if n == name]


def test_every_file_written_is_opened_and_every_layer_styled(qgis_report: dict, written: dict[str, Path]) -> None:
    # every GeoPackage and GeoTIFF of the three runs is in the report (the check opens each file found)
    on_disk = {p for folder in written.values() for p in folder.rglob("*") if p.suffix in (".gpkg", ".tif")}
    assert {Path(v["path"]) for v in qgis_report["files"].values()} == on_disk
    # the files each command writes: plan.gpkg; demand.gpkg + heat_density.tif; the study's network, matches, pairs
    assert set(qgis_report["files"]) == {
        "plan/plan.gpkg",
        "demand/demand.gpkg",
        "demand/heat_density.tif",
        "study/network/plan.gpkg",
        "study/matches/matches.gpkg",
        "study/matches/network/plan.gpkg",
        "study/matches/network/pair_lines.gpkg",
        "links/plan.gpkg",
    }
    import sqlite3

    for path, found in qgis_report["files"].items():
        if path.endswith(".gpkg"):
            with contextlib.closing(sqlite3.connect(found["path"])) as con:
                tables = {t for (t,) in con.execute("SELECT table_name FROM gpkg_contents WHERE data_type='features'")}
            assert set(found["layers"]) == tables, path
        assert found["render"]["errors"] == [], path
        for name, layer in found["layers"].items():
            assert layer["valid"] and layer["style_loaded"], (path, name, layer["style_message"])
            assert layer["render"]["errors"] == [], (path, name)


def written_spec(specs: dict, found: dict, name: str):
    """The definition a layer was written with: heatmap demand's layers take their class bounds from their data
    (heatmap.maps.classes.data_classes, the same as its web map)."""
    from heatmap.maps.classes import data_classes

    spec = specs[DEFINITION.get(name, name)]
    file = Path(found["path"])
    if file.name == "demand.gpkg" and spec.color.kind == "graduated":
        return data_classes(spec, gpd.read_file(file, layer=name)[spec.color.field])
    if file.name == "heat_density.tif":
        import rasterio

        with rasterio.open(file) as src:
            band = src.read(1, masked=True).compressed()
        return data_classes(spec, band[np.isfinite(band) & (band > 0)])
    return spec


def test_vector_renderers_classes_and_aliases_follow_the_definitions(qgis_report: dict) -> None:
    specs = load_layer_specs()
    seen = set()
    for path, found in qgis_report["files"].items():
        for name, layer in found["layers"].items():
            if layer["kind"] != "vector":
                continue
            spec = written_spec(specs, found, name)
            seen.add(name)
            rule = spec.color
            assert layer["renderer"] == RENDERERS[rule.kind], (path, name)
            expected = [name] if rule.kind == "single" else [c.label for c in rule.classes]  # one symbol
            if rule.kind == "categorized":
                expected.append("Other")  # the "all other values" category
            assert layer["classes"] == expected, (path, name)
            assert layer["renderer_field"] == (rule.field if rule.kind != "single" else None), (path, name)
            # a plain alias for every column, the one heatmap writes (popup label and unit, or from the name)
            aliases = layer["aliases"]
            assert set(aliases) == set(layer["fields"]) and all(aliases.values()), (path, name)
            fields = dict.fromkeys(f for f in layer["fields"])
            assert aliases == field_aliases(spec, fields), (path, name)
            assert all(alias != column for column, alias in aliases.items() if len(column) > 1), (path, name)
            if layer["features"]:
                drawn = layer["render"]["drawn_share"]
                assert drawn > 0 or spec.max_scale_denominator is not None, (path, name)
    assert seen >= {"sources", "consumers", "pipes", "junctions", "streets", "pipes_by_hour", "matches", "pair_lines",
                    "buildings", "potential_areas"}  # fmt: skip


def test_labels_on_sources_and_large_consumers_only(qgis_report: dict) -> None:
    specs = load_layer_specs()
    for _, name, layer in [*_layers(qgis_report, "sources"), *_layers(qgis_report, "consumers")]:
        assert layer["labels_enabled"], name
        fields = dict.fromkeys(layer["fields"])
        assert layer["label_expression"] == label_expression(specs[name], fields)
    for _, _, layer in _layers(qgis_report, "consumers"):
        assert layer["label_expression"].startswith('CASE WHEN "annual_demand_mwh" >= 2500 THEN')
    for name in ("pipes", "junctions", "streets", "pipes_by_hour", "matches", "pair_lines", "potential_areas"):
        for path, _, layer in _layers(qgis_report, name):
            assert not layer["labels_enabled"], (path, name)


def test_each_geopackage_holds_a_project_with_its_layers_in_draw_order_and_junctions_unticked(
    qgis_report: dict,
) -> None:
    """The project QGIS lists in the GeoPackage (Browser panel; Project → Open From → GeoPackage) opens every layer.

    Its layers come from the GeoPackage itself (relative paths: valid wherever the folder is moved), with their
    styles, in the definitions' draw order (top first), the junctions and the pipes by hour (every hour at once)
    unticked and every other layer ticked.
    """
    specs = load_layer_specs()
    for path, found in qgis_report["files"].items():
        if not path.endswith(".gpkg"):
            continue
        stem = Path(path).stem
        assert found["projects"] == [stem] and found["project_read"], path
        assert found["project_crs"] == "EPSG:3067", path
        tree = found["project_layers"]
        assert sorted(n["table"] for n in tree) == sorted(found["layers"]), path
        for node in tree:
            table = node["table"]
            spec = specs[DEFINITION.get(table, table)]
            assert node["valid"] and node["same_file"], (path, node)
            assert node["renderer"] == found["layers"][table]["renderer"], (path, node)
            assert node["name"] == spec.title, (path, node)
            assert node["checked"] == spec.visible_by_default, (path, node)
            assert node["checked"] == (table not in ("junctions", "pipes_by_hour")), (path, node)
        orders = [specs[DEFINITION.get(n["table"], n["table"])].draw_order for n in tree]
        assert orders == sorted(orders, reverse=True), path
        assert found["render"]["drawn_share"] > 0.003, path  # the project's map is drawn
    helsinki = qgis_report["files"]["plan/plan.gpkg"]
    assert [n["table"] for n in helsinki["project_layers"]] == [
        "junctions",
        "sources",
        "consumers",
        "left_out",
        "pipes",
        "streets",
    ]
    drawn = qgis_report["files"]["links/plan.gpkg"]  # the drawn lines above the routes, the no-go areas below them
    tables = [n["table"] for n in drawn["project_layers"]]
    assert tables[tables.index("pipes") :] == ["pipes", "drawn_lines", "streets", "no_go_areas"]
    assert drawn["layers"]["drawn_lines"]["features"] == 3 and drawn["layers"]["no_go_areas"]["features"] == 1


def test_junctions_are_hidden_at_the_networks_scale(qgis_report: dict) -> None:
    """QGIS draws the junctions only zoomed in to 1:2,500: at the scale a whole network is seen, none."""
    found = _layers(qgis_report, "junctions")
    assert len(found) == 4  # the Helsinki plan (also with drawn lines), the KIP network, the matches' network
    for path, _, layer in found:
        assert layer["scale_based_visibility"] and layer["minimum_scale"] == 2500, path
        assert layer["features"] > 0
        whole = qgis_report["files"][path]["render"]
        if whole["scale"] > 2500:
            assert layer["render"]["drawn_share"] == 0, path
    helsinki = qgis_report["files"]["plan/plan.gpkg"]
    junctions = helsinki["layers"]["junctions"]
    assert junctions["features"] > 1000 and junctions["render"]["scale"] > 2500  # hidden on the plan's full view
    assert helsinki["render"]["drawn_share"] > 0.05  # the rest of the plan is drawn


def test_layer_titles_and_abstracts_carry_the_scenario_and_assumptions(qgis_report: dict) -> None:
    specs = load_layer_specs()
    for path, found in qgis_report["files"].items():
        for name, layer in found["layers"].items():
            spec = specs[DEFINITION.get(name, name)]
            if layer["kind"] != "vector":
                continue
            assert layer["title"] == spec.title, (path, name)
            description = BUILDINGS_DESCRIPTION if name == "buildings" else spec.description
            assert description and description in layer["abstract"], (path, name)
            if name == "pair_lines":
                continue  # the pairs' lines: the scenario is in plan.gpkg beside them
            assert "Scenario: " in layer["abstract"] and "Assumptions: " in layer["abstract"], (path, name)
    for path, _, layer in _layers(qgis_report, "pipes"):
        if path == "plan/plan.gpkg":
            assert "Scenario: Helsinki" in layer["abstract"] and "temperatures.supply_c = " in layer["abstract"]
    for _, _, layer in _layers(qgis_report, "matches"):
        assert "settings.detour_factor = " in layer["abstract"]


def test_heat_density_raster_is_coloured_by_its_classes(qgis_report: dict) -> None:
    (found,) = _layers(qgis_report, "heat_density")
    path, _, layer = found
    spec = written_spec(load_layer_specs(), qgis_report["files"][path], "heat_density")
    assert layer["renderer"] == "singlebandpseudocolor", layer["style_message"]
    assert layer["classes"] == [c.label for c in spec.color.classes]
    assert layer["opacity"] == pytest.approx(spec.fill_opacity)
    import pandas as pd

    expected = spec.colors_for(pd.Series(RASTER_PROBES))
    assert [layer["colors"][repr(v)] for v in RASTER_PROBES] == list(expected)
    assert layer["render"]["drawn_share"] > 0.05  # drawn in colour over a good part of its extent, not grey
    assert Path(qgis_report["files"][path]["path"]).with_name("heat_density.qml").is_file()


def test_pngs_are_kept_as_artefacts(qgis_report: dict) -> None:
    pngs = sorted(ARTEFACTS.glob("*.png"))
    layers = sum(len(v["layers"]) for v in qgis_report["files"].values())
    assert len(pngs) == layers + len(qgis_report["files"])
    assert all(p.stat().st_size > 1000 for p in pngs)
