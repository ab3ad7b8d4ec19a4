"""The bad-input battery: each bad file or setting → exit code 2, a message naming the culprit, no traceback,
and the previous output folder byte for byte as it was.

Each case builds its bad input in a fresh folder and returns the command line and the words the message must
hold. The cases follow issue 10 (items 1, 2, 4, 7, 8, 9, 10, 15) and issue 8 (items 4 and 10).
"""

import math
import shutil
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from conftest import write_scenario as scenario
from shapely.geometry import Point

from heatmap import settings

PBF = settings.data_dir / "helsinki_centre.osm.pbf"
GOOD_SOURCE = {"id": ["S1"], "lon": [24.9382], "lat": [60.1652], "capacity_kw": [90000]}


def csv(folder: Path, rows: dict, name: str = "sources.csv") -> Path:
    path = folder / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def consumers_gpkg(folder: Path, name: str = "consumers.gpkg", **columns) -> Path:
    data = {"id": ["B1", "B2"], "annual_demand_mwh": [100.0, 50.0], **columns}
    gdf = gpd.GeoDataFrame(data, geometry=[Point(385700, 6671900), Point(385800, 6672000)], crs=3067)
    path = folder / name
    gdf.to_file(path, engine="pyogrio")
    return path


def plan(scn: Path) -> list:
    return ["plan", scn]


def catalogue(folder: Path, edit) -> Path:
    text = (settings.data_dir / "pipes_en253.csv").read_text().splitlines()
    path = folder / "pipes.csv"
    path.write_text("\n".join(edit(text)) + "\n")
    return path


def replace_field(line: str, index: int, value: str) -> str:
    parts = line.split(",")
    parts[index] = value
    return ",".join(parts)


# Each case: (folder) -> (command without --out, words the message must hold)
CASES = {
    # issue 10.1: NaN and infinity in settings and columns; huge values
    "nan_velocity_limit": lambda d: (
        plan(scenario(d, limits__max_velocity_m_per_s=math.nan)),
        ["'limits.max_velocity_m_per_s' is nan", "finite"],
    ),
    "inf_pump_lift": lambda d: (
        plan(scenario(d, network__max_pump_lift_bar=math.inf)),
        ["'network.max_pump_lift_bar' is inf", "finite"],
    ),
    "huge_pump_lift": lambda d: (
        plan(scenario(d, network__max_pump_lift_bar=1e12)),
        ["'network.max_pump_lift_bar' is 1000000000000.0; it must be at most 100"],
    ),
    "nan_supply_temperature": lambda d: (
        plan(scenario(d, temperatures__supply_c=math.nan)),
        ["'temperatures.supply_c' is nan"],
    ),
    "inf_source_capacity_column": lambda d: (
        plan(scenario(d, sources__path=str(csv(d, {**GOOD_SOURCE, "capacity_kw": ["inf"]})))),
        ["sources.csv, line 2: 'capacity_kw' is infinite for features S1"],
    ),
    "inf_inline_capacity": lambda d: (
        plan(
            scenario(
                d,
                sources__path=None,
                sources__inline=[{"id": "S1", "lon": 24.9382, "lat": 60.1652, "capacity_kw": math.inf}],
            )
        ),
        ["'sources.inline[0].capacity_kw' is inf", "line "],
    ),
    "nan_consumer_demand_column": lambda d: (
        plan(
            scenario(
                d,
                consumers__osm_buildings=False,
                consumers__path=str(consumers_gpkg(d, annual_demand_mwh=[100.0, math.inf])),
            )
        ),
        ["consumers.gpkg, feature 2: 'annual_demand_mwh' is infinite for features B2"],
    ),
    # issue 10.2: a working CRS that is not true to scale at the study area
    "web_mercator_in_finland": lambda d: (
        plan(scenario(d, study_area__crs="EPSG:3857")),
        ["'study_area.crs' EPSG:3857 distorts lengths by", "EPSG:3067"],
    ),
    "crs_in_feet": lambda d: (
        plan(scenario(d, study_area__crs="EPSG:2263")),
        ["'study_area.crs' is 'EPSG:2263', whose unit is", "metres"],
    ),
    # issue 10.4: a key given twice
    "duplicate_yaml_key": lambda d: (
        plan(scenario(d, "temperatures:\n  supply_c: 90\n")),
        ["scenario.yaml, line", "key 'temperatures' is given twice (lines"],
    ),
    # issue 10.7: study area and inline rows
    "unknown_crs": lambda d: (
        plan(scenario(d, study_area__crs="EPSG:99999")),
        ["'study_area.crs' is 'EPSG:99999', which pyproj does not know"],
    ),
    "nan_in_bbox": lambda d: (
        plan(scenario(d, study_area__bbox=[24.92, math.nan, 24.96, 60.18])),
        ["'study_area.bbox' must be [west, south, east, north]", "nan"],
    ),
    "inline_lon_text": lambda d: (
        plan(
            scenario(
                d,
                sources__path=None,
                sources__inline=[{"id": "S1", "lon": "abc", "lat": 60.1652, "capacity_kw": 9000}],
            )
        ),
        ["'sources.inline[0].lon' must be a number, got 'abc'", "line "],
    ),
    # issue 10.8: the pipe catalogue
    "empty_catalogue": lambda d: (
        plan(scenario(d, network__catalogue=str(catalogue(d, lambda t: [])))),
        ["pipes.csv is empty"],
    ),
    "catalogue_cost_text": lambda d: (
        plan(
            scenario(
                d, network__catalogue=str(catalogue(d, lambda t: [t[0], replace_field(t[1], 10, "cheap")] + t[2:]))
            )
        ),
        ["pipes.csv, line 2: 'cost_eur_per_m' is not a number (got 'cheap')"],
    ),
    "catalogue_negative_diameter": lambda d: (
        plan(
            scenario(
                d, network__catalogue=str(catalogue(d, lambda t: t[:3] + [replace_field(t[3], 3, "-37.2")] + t[4:]))
            )
        ),
        ["pipes.csv, line 4: 'd_inner_mm' must be positive"],
    ),
    # issue 10.9: street files that are not (complete) OSM PBF
    "truncated_pbf": lambda d: (
        plan(
            scenario(
                d,
                streets__path=str(_truncated_pbf(d)),
                consumers__osm_buildings=False,
                consumers__path=str(consumers_gpkg(d)),
            )
        ),
        ["cut.osm.pbf: not a readable OSM PBF file"],
    ),
    "text_as_pbf": lambda d: (
        plan(
            scenario(
                d,
                streets__path=str(_text_file(d, "streets.osm.pbf")),
                consumers__osm_buildings=False,
                consumers__path=str(consumers_gpkg(d)),
            )
        ),
        ["streets.osm.pbf: not a readable OSM PBF file", "does not follow the OSM PBF format"],
    ),
    # issue 10.10: demand settings
    "nan_cell_size": lambda d: (
        ["demand", PBF, "--scenario", scenario(d, density__cell_size_m=math.nan)],
        ["'density.cell_size_m' is nan"],
    ),
    # issue 10.15: messages say what exists; file line numbers everywhere
    "buildings_without_id": lambda d: (
        ["demand", _buildings_without_id(d)],
        ["buildings.gpkg: id column 'id' is missing; give the file an 'id' column"],
    ),
    "scenario_is_a_folder": lambda d: (plan(d), ["is a folder; give the scenario's YAML file"]),
    "consumer_csv_line_number": lambda d: (
        plan(
            scenario(
                d,
                consumers__osm_buildings=False,
                consumers__path=str(
                    csv(
                        d,
                        {
                            "id": ["a", "b"],
                            "lon": [24.94, 24.94],
                            "lat": [60.168, 60.169],
                            "annual_demand_mwh": [10, -1],
                        },
                        name="consumers.csv",
                    )
                ),
            )
        ),
        ["consumers.csv, line 3: 'annual_demand_mwh' is negative for features b"],
    ),
    "scenario_line_number": lambda d: (
        plan(scenario(d, limits__max_velocity_m_per_s="fast")),
        ["scenario.yaml, line", "'limits.max_velocity_m_per_s' must be a number, got 'fast'"],
    ),
    "missing_input_file": lambda d: (
        plan(scenario(d, sources__path=str(d / "nope.csv"))),
        ["nope.csv: file not found; check 'sources.path'"],
    ),
    # issue 8.4: columns named otherwise, layers
    "source_column_named_otherwise": lambda d: (
        plan(scenario(d, sources__path=str(csv(d, {**GOOD_SOURCE, "supply_temperature_c": [75]})))),
        ["'supply_temperature_c' looks like 't_supply_c'", "sources.columns: {t_supply_c: supply_temperature_c}"],
    ),
    "consumer_peak_kw": lambda d: (
        plan(scenario(d, consumers__osm_buildings=False, consumers__path=str(consumers_gpkg(d, peak_kw=[50.0, 20.0])))),
        ["'peak_kw' looks like 'peak_load_kw'", "consumers.columns: {peak_load_kw: peak_kw}"],
    ),
    "mapped_column_missing": lambda d: (
        plan(scenario(d, sources__columns={"t_supply_c": "flow_temperature"})),
        ["column 'flow_temperature' (mapped by 'sources.columns.t_supply_c') is not in the file"],
    ),
    "unknown_column_field": lambda d: (
        plan(scenario(d, sources__columns={"t_supply": "x"})),
        ["unknown key 'sources.columns.t_supply'; did you mean 'sources.columns.t_supply_c'?"],
    ),
    "two_layer_sources": lambda d: (
        plan(scenario(d, sources__path=str(_two_layers(d)))),
        ["holds 2 layers (plants, boilers); name the one to read with 'sources.layer'"],
    ),
    "missing_layer": lambda d: (
        plan(scenario(d, sources__path=str(_two_layers(d)), sources__layer="plant")),
        ["has no layer 'plant' (layers: plants, boilers); check 'sources.layer'"],
    ),
    # issue 8.10: the schema's messages
    "unknown_key": lambda d: (
        plan(scenario(d, temperatures__suply_c=80)),
        ["unknown key 'temperatures.suply_c'; did you mean 'temperatures.supply_c'?"],
    ),
    "key_of_another_street_source": lambda d: (
        plan(scenario(d, streets__source="graphml")),
        ["'streets.network_type' does not apply to 'streets.source: graphml'"],
    ),
    "place_without_name": lambda d: (
        plan(scenario(d, streets__source="place", streets__path=None, streets__network_type=None)),
        ["'streets.source: place' needs 'streets.place'"],
    ),
    "wrong_choice": lambda d: (
        plan(scenario(d, network__simultaneity="max")),
        ["'network.simultaneity' is 'max'; allowed: winter, thermos, none"],
    ),
    "kelvin_setting": lambda d: (
        plan(scenario(d, temperatures__supply_c=358.15)),
        ["at most 150 (°C expected, not kelvin)"],
    ),
}


def _truncated_pbf(folder: Path) -> Path:
    path = folder / "cut.osm.pbf"
    path.write_bytes(PBF.read_bytes()[:50_000])
    return path


def _text_file(folder: Path, name: str) -> Path:
    path = folder / name
    path.write_text("<osm>not a PBF</osm>\n")
    return path


def _buildings_without_id(folder: Path) -> Path:
    path = folder / "buildings.gpkg"
    gpd.GeoDataFrame({"building": ["yes"]}, geometry=[Point(385800, 6672000).buffer(10)], crs=3067).to_file(path)
    return path


def _two_layers(folder: Path) -> Path:
    path = folder / "sources.gpkg"
    gdf = gpd.GeoDataFrame({"id": ["S1"], "capacity_kw": [9000.0]}, geometry=[Point(24.9382, 60.1652)], crs=4326)
    gdf.to_file(path, layer="plants")
    gdf.to_file(path, layer="boilers")
    return path


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def earlier_output(tmp_path_factory) -> Path:
    """A folder holding an earlier run's output (a small demand map: cheap, and written by the tool itself)."""
    out = tmp_path_factory.mktemp("earlier") / "out"
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("heatmap")), "demand", str(PBF), "--out", str(out), "-q"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert any(out.iterdir())
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_answered_and_nothing_is_lost(case, tmp_path, earlier_output):
    from click.testing import CliRunner

    from heatmap.cli import main

    folder = tmp_path / "in"
    folder.mkdir()
    args, words = CASES[case](folder)
    out = tmp_path / "out"
    shutil.copytree(earlier_output, out)
    before = folder_bytes(out)
    result = CliRunner().invoke(main, [str(a) for a in [*args, "--out", out, "-q"]], catch_exceptions=False)
    message = result.stderr
    assert result.exit_code == 2, message + result.stdout
    for word in words:
        assert word in message, (word, message)
    assert "Traceback" not in message and message.startswith("error: ")
    assert folder_bytes(out) == before


def test_a_scenario_error_is_answered_before_the_heavy_imports(tmp_path):
    """A user error in the scenario must not wait for osmnx, pandapipes or geopandas to load."""
    bad = scenario(tmp_path, temperatures__suply_c=80)
    code = (
        "import sys\n"
        "from heatmap.cli import main\n"
        "try:\n"
        f"    main(['plan', {str(bad)!r}, '--out', {str(tmp_path / 'out')!r}])\n"
        "except SystemExit as exc:\n"
        "    heavy = sorted(m for m in ('osmnx', 'pandapipes', 'geopandas', 'pyrosm') if m in sys.modules)\n"
        "    print(exc.code, heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "2 []", proc.stdout + proc.stderr
    assert "did you mean 'temperatures.supply_c'" in proc.stderr
