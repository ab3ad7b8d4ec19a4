"""Issue 19: every bad input answered, nothing lost, the newer commands too.

Texts that a spreadsheet would run as formulas, symlink loops and FIFOs given as paths, a full stdout, a
SIGTERM during the imports and a huge value quoted in a message.
"""

import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import run_cli, write_scenario

from heatmap.io.tables import csv_safe_text, write_csv

HEATMAP = Path(__file__).parents[1] / "heatmap"
KIP_MATCHES = Path(__file__).parent / "data" / "matching_scenario.yaml"
FORMULAS = ['=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tTAB", "\r=1+1"]


# ------------------------------------------------------------------------------ CSV formula injection ---
def test_csv_text_that_starts_a_formula_is_escaped_and_numbers_stay_numbers(tmp_path):
    frame = pd.DataFrame(
        {
            "name": [*FORMULAS, "-12.5", "plain"],
            "value": [-1.5, -2.0, 3.0, -4.0, 5.0, 6.0, -7.0, 8.0],
            "count": [-1, 2, 3, 4, 5, 6, 7, 8],
            "=header": ["a"] * 8,
        }
    )
    path = tmp_path / "t.csv"
    write_csv(frame, path, float_format="%.3f")
    text = path.read_bytes().decode("utf-8")
    assert "\n'\r=1+1," in text  # pandas leaves a carriage return unquoted: the file, not a reader, is checked
    with path.open(newline="", encoding="utf-8") as f:
        header, *rows = list(csv.reader(f.read().replace("'\r", "'").splitlines()))
    assert header == ["name", "value", "count", "'=header"]
    assert [r[0] for r in rows] == [*("'" + f for f in FORMULAS[:-1]), "'=1+1", "-12.5", "plain"]
    # numbers, negative ones too, are written as numbers, not escaped
    assert [r[1] for r in rows] == ["-1.500", "-2.000", "3.000", "-4.000", "5.000", "6.000", "-7.000", "8.000"]
    assert [r[2] for r in rows] == ["-1", "2", "3", "4", "5", "6", "7", "8"]
    assert frame.name.iloc[0] == FORMULAS[0]  # the caller's table is not changed
    assert csv_safe_text(-3) == -3 and csv_safe_text("-3e5") == "-3e5" and csv_safe_text(None) is None


def test_every_csv_writer_goes_through_the_escaping_helper():
    """No module of heatmap writes a CSV but heatmap.io.tables.write_csv."""
    writers = [
        f"{path.relative_to(HEATMAP)}:{n}"
        for path in HEATMAP.rglob("*.py")
        if path.name != "tables.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\.to_csv\(|csv\.writer|DictWriter", line)
    ]
    assert writers == []


def test_matches_csv_escapes_ids_that_start_a_formula(tmp_path):
    data = yaml.safe_load(KIP_MATCHES.read_text(encoding="utf-8"))
    here = KIP_MATCHES.parent
    data["outdoor_temperature"]["csv"] = str((here / data["outdoor_temperature"]["csv"]).resolve())
    data["plants_csv"] = str((here / data["plants_csv"]).resolve())
    data.pop("plan", None)
    data["sinks"][-1]["id"] = "-port"  # an id may start with a minus (the formula -port+1 in a spreadsheet)
    data["sources"][-1]["id"] = "-cooling-1"
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = run_cli("matches", path, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "out" / "matches.csv")
    assert "'-port" in set(table.sink_id)
    assert "'-cooling-1" in set(table.source_id)
    text_cells = table.select_dtypes(include="object").to_numpy().ravel()
    assert not [c for c in text_cells if isinstance(c, str) and c[:1] in "=+-@\t\r"]
    assert pd.api.types.is_float_dtype(table.eur_per_mwh)


# ------------------------------------------------------------------------------- loops, FIFOs, devices ---
def _heatmap(*args, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run the command line in its own process: a FIFO that hangs is caught by the timeout, not the test run."""
    command = [str(Path(sys.executable).with_name("heatmap")), *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def _matching_scenario(folder: Path, change=lambda d: None) -> Path:
    data = yaml.safe_load(KIP_MATCHES.read_text(encoding="utf-8"))
    here = KIP_MATCHES.parent
    data["outdoor_temperature"]["csv"] = str((here / data["outdoor_temperature"]["csv"]).resolve())
    data["plants_csv"] = str((here / data["plants_csv"]).resolve())
    data.pop("plan", None)
    change(data)
    path = folder / "matching.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _loop(folder: Path) -> Path:
    path = folder / "loop.yaml"
    path.symlink_to(path.name)
    return path


def _fifo(folder: Path) -> Path:
    path = folder / "nobody_writes.yaml"
    os.mkfifo(path)
    return path


PATH_CASES = {
    "plan: scenario a link loop": lambda d: (["plan", _loop(d)], ["loop.yaml", "loop of symbolic links"]),
    "plan: scenario a FIFO": lambda d: (["plan", _fifo(d)], ["nobody_writes.yaml", "FIFO"]),
    "plan: consumers a FIFO": lambda d: (
        ["plan", write_scenario(d, consumers__osm_buildings=False, consumers__path=str(_fifo(d)))],
        ["nobody_writes.yaml", "FIFO", "'consumers.path'"],
    ),
    "plan: sources a link loop": lambda d: (
        ["plan", write_scenario(d, sources__path=str(_loop(d)))],
        ["loop.yaml", "loop of symbolic links", "'sources.path'"],
    ),
    "plan: catalogue a device": lambda d: (
        ["plan", write_scenario(d, network__catalogue="/dev/zero")],
        ["/dev/zero", "device", "'network.catalogue'"],
    ),
    "plan: --out a link loop": lambda d: (
        ["plan", write_scenario(d), "--out-loop"],
        ["loop of symbolic links", "--out"],
    ),
    "matches: scenario a FIFO": lambda d: (["matches", _fifo(d)], ["nobody_writes.yaml", "FIFO"]),
    "matches: plants a FIFO": lambda d: (
        ["matches", _matching_scenario(d, lambda m: m.update(plants_csv=str(_fifo(d))))],
        ["nobody_writes.yaml", "FIFO"],
    ),
    "matches: temperatures a link loop": lambda d: (
        ["matches", _matching_scenario(d, lambda m: m["outdoor_temperature"].update(csv=str(_loop(d))))],
        ["loop.yaml", "loop of symbolic links"],
    ),
    "matches: --out a link loop": lambda d: (["matches", _matching_scenario(d), "--out-loop"], ["--out"]),
    "concepts: scenario a link loop": lambda d: (["concepts", _loop(d)], ["loop.yaml", "loop of symbolic links"]),
    "study: study a FIFO": lambda d: (["study", _fifo(d)], ["nobody_writes.yaml", "FIFO"]),
    "demand: buildings a FIFO": lambda d: (["demand", _fifo(d)], ["nobody_writes.yaml", "FIFO", "BUILDINGS"]),
}


@pytest.mark.parametrize("case", sorted(PATH_CASES))
def test_a_link_loop_fifo_or_device_is_refused_at_once(case, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    args, words = PATH_CASES[case](folder)
    out = tmp_path / "out"
    if args[-1] == "--out-loop":
        args = args[:-1]
        out = tmp_path / "out_loop"
        out.symlink_to(out.name)
    started = time.monotonic()
    proc = _heatmap(*args, "--out", out, "-q")
    assert proc.returncode == 2, proc.stderr
    assert time.monotonic() - started < 30
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    for word in words:
        assert word in proc.stderr, (word, proc.stderr)
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------- stdout, SIGTERM ---
def test_schema_to_a_full_disk_is_answered_without_a_traceback():
    with open("/dev/full", "w") as full:
        command = [str(Path(sys.executable).with_name("heatmap")), "schema"]
        proc = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: cannot write the schema to standard output (No space left on device)")
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr


def test_a_sigterm_during_the_imports_is_answered(tmp_path):
    """SIGTERM while a command still imports its modules (before any _answer_errors): exit 143 with a word."""
    code = (
        "import os, signal, sys\n"
        "class Kill:\n"  # sends SIGTERM to this process as the plan command imports its first module
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'heatmap.io.output_folder':\n"
        "            os.kill(os.getpid(), signal.SIGTERM)\n"
        "        return None\n"
        "sys.meta_path.insert(0, Kill())\n"
        "from heatmap.cli import main\n"
        f"main(['plan', {str(write_scenario(tmp_path))!r}, '--out', {str(tmp_path / 'out')!r}])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 143, (proc.returncode, proc.stderr)
    assert proc.stderr.startswith("terminated: ") and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------- a huge value quoted ---
def test_a_huge_value_is_quoted_cut_and_refused_in_seconds(tmp_path):
    """A 10 MB text where a number belongs (what a YAML alias bomb in a text field gives): a short message."""
    path = write_scenario(tmp_path, temperatures__supply_c="x" * 10_000_000)
    started = time.monotonic()
    result = run_cli("plan", path, "--out", tmp_path / "out", "-q")
    assert time.monotonic() - started < 10
    assert result.exit_code == 2, result.stderr[:500]
    assert "'temperatures.supply_c'" in result.stderr and " characters)\n" in result.stderr
    assert len(result.stderr) < 5000, len(result.stderr)
    assert not (tmp_path / "out").exists()


# ------------------------------------------------- the rest of issue 19: wrong results, messages, fall-backs ---
STUDY = Path(__file__).parents[1] / "data" / "scenarios" / "kip.yaml"


def _study(folder: Path, edit=lambda text: text) -> Path:
    """The bundled KIP study with its data paths made absolute, its text changed by ``edit``."""
    text = STUDY.read_text(encoding="utf-8").replace("../kip/", f"{STUDY.parents[1] / 'kip'}/")
    path = folder / "study.yaml"
    path.write_text(edit(text), encoding="utf-8")
    return path


def _concepts_with_plan(folder: Path, change_plan) -> Path:
    """The KIP study's concepts as a concept scenario whose network.plan is its network, changed by ``change_plan``."""
    from kip_derived import derived_data

    network = derived_data("network")
    change_plan(network)
    plan_path = folder / "network.yaml"
    plan_path.write_text(yaml.safe_dump(network, allow_unicode=True, sort_keys=False), encoding="utf-8")
    concepts = derived_data("concepts")
    concepts["network"]["plan"] = str(plan_path)
    path = folder / "concepts.yaml"
    path.write_text(yaml.safe_dump(concepts, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _concepts(folder: Path, change) -> Path:
    """The KIP study's concepts as a concept scenario without a planned network, changed by ``change(data)``."""
    from kip_derived import derived_data

    data = derived_data("concepts")
    for key in ("plan", "plan_losses", "sink"):
        data["network"].pop(key)
    change(data)
    path = folder / "concepts.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _source(sid: str, **values):
    """Change the concept scenario's source ``sid``."""
    return lambda data: next(s for s in data["sources"] if s["id"] == sid).update(values)


HEAT_PUMP = {"capacity_kw": 5000, "eta": 0.5, "cost_eur_per_kw": 700}


def _hours_csv(folder: Path, start: str, rows: int, column: str = "t_out_c", value: float = 5.0) -> Path:
    """An hourly CSV of ``rows`` hours from ``start`` (a time column and one value column)."""
    path = folder / f"hours_{rows}.csv"
    times = pd.date_range(start, periods=rows, freq="h").strftime("%Y-%m-%dT%H:%M")
    pd.DataFrame({"time": times, column: value}).to_csv(path, index=False)
    return path


def _shuffled(path: Path) -> Path:
    """The hourly CSV with its second and third hour swapped."""
    lines = path.read_text().splitlines()
    lines[2], lines[3] = lines[3], lines[2]
    path.write_text("\n".join(lines) + "\n")
    return path


def _temperatures(data: dict, path: Path) -> None:
    data["outdoor_temperature"]["csv"] = str(path)


PBF = Path(__file__).parents[1] / "data" / "helsinki_centre.osm.pbf"


PARK_X0, PARK_Y0 = 313_000.0, 7_084_000.0  # in EPSG:3067 near Kokkola
PARK_SITES = {"PLANT": (0, 0), "A": (150, 0), "B": (300, 0), "C": (300, 200)}


def _park(folder: Path, no_go, *, drawn: bool = True) -> Path:
    """A park without streets (a plant, three consumers, a drawn pipe rack, site links) with ``no_go`` polygons."""
    import geopandas as gpd
    from pyproj import Transformer
    from shapely.geometry import LineString

    to_lonlat = Transformer.from_crs(3067, 4326, always_xy=True).transform
    rack = [(0, 0), (0, 80), (300, 80), (300, 200)]
    line = LineString([(PARK_X0 + x, PARK_Y0 + y) for x, y in rack])
    gpd.GeoDataFrame({"surface": ["pipe_rack"]}, geometry=[line], crs=3067).to_file(folder / "links.gpkg")
    gpd.GeoDataFrame(geometry=no_go, crs=3067).to_file(folder / "no_go.gpkg")
    rows = [{"id": "PLANT", "capacity_kw": 8000, "t_supply_c": 90}]
    consumers = [{"id": k, "annual_demand_mwh": 4000} for k in ("A", "B", "C")]
    for row in rows + consumers:
        row["lon"], row["lat"] = to_lonlat(PARK_X0 + PARK_SITES[row["id"]][0], PARK_Y0 + PARK_SITES[row["id"]][1])
    links = {"no_go_path": "no_go.gpkg", "site_to_site": True} | ({"path": "links.gpkg"} if drawn else {})
    scenario = {
        "name": "Park without streets",
        "streets": {"source": "none", "max_service_length_m": 30},
        "links": links,
        "sources": {"inline": rows},
        "consumers": {"inline": consumers},
        "temperatures": {"supply_c": 90, "return_c": 50, "ground_c": 8, "min_consumer_supply_c": 70},
    }
    path = folder / "park.yaml"
    path.write_text(yaml.safe_dump(scenario), encoding="utf-8")
    return path


def _around_every_site():
    from shapely.geometry import box

    return [box(PARK_X0 - 50, PARK_Y0 - 50, PARK_X0 + 350, PARK_Y0 + 250)]


def _bow_tie():
    from shapely.geometry import Polygon, box

    x, y = PARK_X0 + 180, PARK_Y0 - 40
    return [
        box(PARK_X0 + 500, PARK_Y0, PARK_X0 + 510, PARK_Y0 + 10),
        Polygon([(x, y), (x + 80, y + 80), (x + 80, y), (x, y + 80)]),
    ]


def _catalogue(folder: Path, dn: int, column: str, value: str) -> Path:
    """The bundled pipe catalogue with the cell of ``dn`` and ``column`` replaced by ``value``."""
    lines = (Path(__file__).parents[1] / "data" / "pipes_en253.csv").read_text(encoding="utf-8").splitlines()
    col = lines[0].split(",").index(column)
    for i, line in enumerate(lines):
        parts = line.split(",")
        if parts[0] == str(dn):
            lines[i] = ",".join([*parts[:col], value, *parts[col + 1 :]])
    path = folder / "pipes.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _kip_network(folder: Path, **consumers) -> Path:
    """The KIP study's network as a plan scenario, with the ``consumers`` settings given."""
    from kip_derived import derived_data

    data = derived_data("network")
    data["consumers"].update(consumers)
    path = folder / "network.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _web_mercator(data: dict) -> None:
    data["study_area"]["crs"] = "EPSG:3857"


def _crs(crs: str):
    return lambda m: m["settings"].update(crs=crs)


DISTORTS = "EPSG:3857 distorts lengths by 127% at the study area"
# Each case: (folder) -> (command without --out, words the message must hold)
MORE_CASES = {
    # 1: a working CRS not true to scale, one check for every command
    "matches: crs EPSG:3857 in Finland": lambda d: (
        ["matches", _matching_scenario(d, _crs("EPSG:3857"))],
        ["matching.yaml: 'settings.crs' " + DISTORTS, "give EPSG:3067"],
    ),
    "matches: crs in degrees": lambda d: (
        ["matches", _matching_scenario(d, _crs("EPSG:4326"))],
        ["matching.yaml, line", "'settings.crs' is 'EPSG:4326', which is geographic"],
    ),
    "matches: crs unknown": lambda d: (
        ["matches", _matching_scenario(d, _crs("EPSG:999999"))],
        ["'settings.crs' is 'EPSG:999999', which pyproj does not know"],
    ),
    "matches: crs in feet": lambda d: (
        ["matches", _matching_scenario(d, _crs("EPSG:2263"))],
        ["'settings.crs' is 'EPSG:2263', whose unit is US survey foot"],
    ),
    **{
        f"{command}: a study's crs EPSG:3857": lambda d, command=command: (
            [command, _study(d, lambda t: t.replace("crs: EPSG:3067", "crs: EPSG:3857"))],
            ["study.yaml: 'crs' " + DISTORTS, "give EPSG:3067"],
        )
        for command in ("plan", "concepts", "matches", "study")
    },
    "study: crs in degrees": lambda d: (
        ["study", _study(d, lambda t: t.replace("crs: EPSG:3067", "crs: EPSG:4326"))],
        ["study.yaml, line 11: 'crs' is 'EPSG:4326', which is geographic"],
    ),
    # 2: a heat pump that would never lift: its source is as hot as the hottest supply or hotter
    "concepts: a heat pump on a source hotter than the supply": lambda d: (
        ["concepts", _concepts(d, _source("electrolyser_heat", temperature_c=120))],
        [
            "concepts.yaml: sources[electrolyser_heat].heat_pump: the source's heat at 120 °C is not below",
            "the network's hottest supply temperature (115 °C, the heating curve's max_c)",
            "leave out heat_pump",
        ],
    ),
    "concepts: a heat pump on a preset source hotter than the supply": lambda d: (
        ["concepts", _concepts(d, _source("boliden_roaster_steam", heat_pump=HEAT_PUMP))],
        [
            "sources[boliden_roaster_steam].heat_pump: the source's heat at 180 °C is not below",
            "its preset's, roaster_steam",
        ],
    ),
    "study: a heat pump on a source as hot as the supply": lambda d: (
        [
            "study",
            _study(
                d,
                lambda t: t.replace(
                    "    heat_pump: {capacity_kw: 7000", "    temperature_c: 115\n    heat_pump: {capacity_kw: 7000"
                ),
            ),
        ],
        ["study.yaml (concepts of the study)", "sources[electrolyser_heat].heat_pump: the source's heat at 115 °C"],
    ),
    # 3: an hourly file that is not the hours of the year
    "demand: 8784 hours for a year that is no leap year": lambda d: (
        ["demand", PBF, "--temperatures", _hours_csv(d, "2023-01-01", 8784)],
        [
            "hours_8784.csv: outdoor-temperature file holds 8784 rows, from 2023-01-01 00:00 to 2024-01-01 23:00",
            "2023 has 8760 hours, 1 January 00:00 to 31 December 23:00",
            "8784 rows are a leap year's hours, and 2023 is no leap year",
        ],
    ),
    "demand: a year of hours from July": lambda d: (
        ["demand", PBF, "--temperatures", _hours_csv(d, "2023-07-01", 8760)],
        ["holds 8760 rows, from 2023-07-01 00:00 to 2024-06-29 23:00", "one calendar year"],
    ),
    "demand: hours out of order": lambda d: (
        ["demand", PBF, "--temperatures", _shuffled(_hours_csv(d, "2023-01-01", 8760))],
        ["hours_8760.csv: line 3 is not one hour after line 2"],
    ),
    "matches: 8784 hours of temperature for 2023": lambda d: (
        ["matches", _matching_scenario(d, lambda m: _temperatures(m, _hours_csv(d, "2023-01-01", 8784)))],
        [
            "hours_8784.csv: outdoor-temperature file holds 8784 rows",
            "from 2023-01-01 00:00 to 2023-12-31 23:00 (8760 rows)",
            "2023 is no leap year",
        ],
    ),
    "matches: a temperature year of 2021 for 2023": lambda d: (
        ["matches", _matching_scenario(d, lambda m: _temperatures(m, _hours_csv(d, "2021-01-01", 8760)))],
        ["hours_8760.csv: line 2 has time 2021-01-01 00:00 where 2023-01-01 00:00 is expected"],
    ),
    "concepts: 8784 hours of temperature for 2023": lambda d: (
        ["concepts", _concepts(d, lambda c: _temperatures(c, _hours_csv(d, "2023-01-01", 8784)))],
        ["hours_8784.csv: outdoor-temperature file holds 8784 rows", "2023 is no leap year"],
    ),
    "concepts: a leap year's 8784 hours for 2024": lambda d: (
        [
            "concepts",
            _concepts(d, lambda c: c.update(year=2024) or _temperatures(c, _hours_csv(d, "2024-01-01", 8784))),
        ],
        ["holds 8784 rows", "from 2024-01-01 00:00 to 2024-12-31 23:00 (8760 rows, without 29 February)"],
    ),
    # 4: no-go areas named where they are the cause
    "plan: a no-go area around every site": lambda d: (
        ["plan", _park(d, _around_every_site(), drawn=False)],
        [
            "no_go.gpkg: the no-go areas ('links.no_go_path') leave out all 6 candidate links (drawn and site-to-site)",
            "4 of the 4 sites lie inside a no-go polygon (PLANT, A, B, C)",
        ],
    ),
    "plan: a no-go area around every site and the drawn links": lambda d: (
        ["plan", _park(d, _around_every_site())],
        ["no_go.gpkg: the no-go areas ('links.no_go_path') leave out all", "sites lie inside a no-go polygon"],
    ),
    "plan: a no-go polygon crossing itself": lambda d: (
        ["plan", _park(d, _bow_tie())],
        [
            "no_go.gpkg: feature 2 (Self-intersection[313220 7084000]) of the no-go areas is not a valid geometry",
            "Fix Geometries",
        ],
    ),
    # 5: a catalogue cell that is no number is refused, not taken for a DN not offered
    "plan: a catalogue cost n/a": lambda d: (
        ["plan", write_scenario(d, network__catalogue=str(_catalogue(d, 65, "cost_eur_per_m", "n/a")))],
        [
            "pipes.csv, line 7: 'cost_eur_per_m' is not a number (got 'n/a') for DN 65",
            "leave the cell empty where the DN is not offered",
        ],
    ),
    "plan: a catalogue heat-loss coefficient -": lambda d: (
        ["plan", write_scenario(d, network__catalogue=str(_catalogue(d, 200, "u_w_per_mk_series2", "-")))],
        ["pipes.csv, line 12: 'u_w_per_mk_series2' is not a number (got '-') for DN 200"],
    ),
    "matches: a catalogue cost N/A": lambda d: (
        [
            "matches",
            _matching_scenario(
                d, lambda m: m["settings"].update(catalogue=str(_catalogue(d, 100, "cost_eur_per_m", "N/A")))
            ),
        ],
        ["pipes.csv, line 9: 'cost_eur_per_m' is not a number (got 'N/A') for DN 100"],
    ),
    # 6: a site profile of a consumer the plan left out says why
    "plan: a site profile of a consumer below the minimum demand": lambda d: (
        ["plan", _kip_network(d, min_annual_demand_mwh=1000)],
        [
            "kip_site_profiles.csv: columns kip_h2_electrolyser name consumers left out of the plan by "
            "'consumers.min_annual_demand_mwh' (their annual demand is below it)",
            "lower that minimum",
        ],
    ),
    "plan: a site profile of a consumer below the minimum peak load": lambda d: (
        ["plan", _kip_network(d, min_peak_load_kw=550)],
        ["columns kip_h2_electrolyser name consumers left out of the plan by 'consumers.min_peak_load_kw'"],
    ),
    # 7: a study file that is not there is not called "no study"
    "study: a study file that does not exist": lambda d: (
        ["study", d / "nowhere.yaml"],
        ["nowhere.yaml: study file not found"],
    ),
    "concepts: its plan's crs EPSG:3857": lambda d: (
        ["concepts", _concepts_with_plan(d, _web_mercator)],
        ["network.plan (", "network.yaml): 'study_area.crs' " + DISTORTS, "or leave 'study_area.crs' out"],
    ),
}


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def earlier_output(tmp_path_factory) -> Path:
    """A folder holding an earlier run's output (a matching run: a few seconds, written by the tool itself)."""
    folder = tmp_path_factory.mktemp("earlier")
    out = folder / "out"
    result = run_cli("matches", _matching_scenario(folder), "--out", out, "-q")
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("case", sorted(MORE_CASES))
def test_wrong_results_and_misleading_messages_are_answered(case, tmp_path, earlier_output):
    """Each case: exit code 2, a message naming the file, key or feature, no traceback, the earlier output kept."""
    import shutil

    folder = tmp_path / "in"
    folder.mkdir()
    args, words = MORE_CASES[case](folder)
    out = tmp_path / "out"
    shutil.copytree(earlier_output, out)
    before = folder_bytes(out)
    started = time.monotonic()
    result = run_cli(*args, "--out", out, "-q")
    message = result.stderr
    assert result.exit_code == 2, message + result.stdout
    assert time.monotonic() - started < 60
    for word in words:
        assert word in message, (word, message)
    assert "Traceback" not in message and message.startswith("error: "), message
    assert folder_bytes(out) == before


def test_one_check_of_the_working_crs_for_every_command():
    """Only heatmap.io.crs measures a CRS's scale; plan, matches and a study's crs all call it."""
    measuring = [
        str(path.relative_to(HEATMAP))
        for path in HEATMAP.rglob("*.py")
        if "get_factors" in path.read_text(encoding="utf-8")
    ]
    assert measuring == ["io/crs.py"]
    callers = {
        str(path.relative_to(HEATMAP))
        for path in HEATMAP.rglob("*.py")
        if re.search(r"\bcheck_scale\(", path.read_text(encoding="utf-8"))
    }
    assert callers == {"io/crs.py", "io/inputs.py", "energy/matching.py", "study.py"}


def test_a_leap_years_hours_and_a_series_with_offsets_are_one_year(tmp_path):
    from heatmap.demand.profiles import read_outdoor_temperature

    assert len(read_outdoor_temperature(_hours_csv(tmp_path, "2024-01-01", 8784))) == 8784
    local = pd.date_range("2023-01-01", periods=8760, freq="h", tz="Europe/Helsinki")  # +02:00, summer +03:00
    path = tmp_path / "local.csv"
    pd.DataFrame({"time": local.strftime("%Y-%m-%dT%H:%M:%S%z"), "t_out_c": 1.0}).to_csv(path, index=False)
    assert len(read_outdoor_temperature(path)) == 8760


def test_unreadable_building_levels_are_named_in_the_terminal_and_in_the_summary(tmp_path, monkeypatch, caplog):
    """Issue 19: OSM floor tags that are no positive number fall back to the type's default, but never silently."""
    import json

    from heatmap.io import streets

    read = streets.buildings_from_pbf
    bad = {"-3": None, "abc": None, "12 m": None}

    def with_bad_levels(path):
        b = read(path)
        rows = b.index[b["building:levels"].isna() & b.get("height", pd.Series(index=b.index)).isna()][:3]
        for row, value in zip(rows, bad, strict=True):
            b.loc[row, "building:levels"] = value
            bad[value] = str(b.loc[row, "id"])
        return b

    monkeypatch.setattr(streets, "buildings_from_pbf", with_bad_levels)
    out = tmp_path / "out"
    result = run_cli("plan", write_scenario(tmp_path), "--out", out)
    assert result.exit_code == 0, result.output
    fallback = json.loads((out / "summary.json").read_text(encoding="utf-8"))["fallbacks"]["unreadable_floors"]
    assert fallback["count"] == 3 and sorted(fallback["ids"]) == sorted(bad.values())
    assert "not a positive number" in fallback["rule"]
    assert "  unreadable floors 3: building:levels or height that is not a positive number" in result.stdout
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]  # the log on stderr
    warning = next(w for w in warned if "not a positive number" in w)
    assert warning.startswith("3 buildings with building:levels or height that is not a positive number")
    for value, building in bad.items():
        assert f"{building} (building:levels {value!r} ignored)" in warning


# --------------------------------------------- every path-valued setting: a loop, a FIFO, a folder, a device ---
def _filepath_keys(model) -> set[str]:
    """The path-valued settings of a schema (its FilePath fields, lists as ``[]``), found by walking its types."""
    import types
    import typing

    from pydantic import BaseModel

    from heatmap.scenario import _to_path

    def is_path(annotation, metadata) -> bool:
        return annotation is Path and any(getattr(m, "func", None) is _to_path for m in metadata)

    def walk(annotation, key: str, metadata, seen: set) -> set[str]:
        if is_path(annotation, metadata):
            return {key}
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if origin is typing.Annotated:
            return walk(args[0], key, args[1:], seen)
        if origin in (typing.Union, types.UnionType):
            return set().union(*(walk(a, key, metadata, seen) for a in args))
        if origin is list:
            return walk(args[0], key + "[]", (), seen)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel) and (annotation, key) not in seen:
            seen.add((annotation, key))
            prefix = key + "." if key else ""
            return set().union(
                set(), *(walk(f.annotation, prefix + n, f.metadata, seen) for n, f in annotation.model_fields.items())
            )
        return set()

    return walk(model, "", (), set())


def _bundled_plan_data() -> dict:
    return yaml.safe_load(write_scenario(Path(tempfile.mkdtemp())).read_text(encoding="utf-8"))


def _derived(part: str) -> dict:
    from kip_derived import derived_data

    return derived_data(part)


def _matching_data() -> dict:
    return yaml.safe_load(_matching_scenario(Path(tempfile.mkdtemp())).read_text(encoding="utf-8"))


def _study_data() -> dict:
    return yaml.safe_load(_study(Path(tempfile.mkdtemp())).read_text(encoding="utf-8"))


def _put(data: dict, key: str, value) -> None:
    """Set ``data``'s setting ``key`` (dotted, ``name[0]`` for a list item) to ``value``."""
    node = data
    *parents, last = key.split(".")
    for part in parents:
        name, _, index = part.partition("[")
        node = node.setdefault(name, {})
        if index:
            node = node[int(index.rstrip("]"))]
    node[last] = value


def _hourly(value) -> dict:
    return {"csv": value, "column": "x"}


# (command, base data, the setting as the message names it, how to give the path: data, path -> None)
PATH_SETTINGS = {
    "plan": [
        *(
            (_bundled_plan_data, key, lambda d, p, key=key: _put(d, key, p))
            for key in (
                "streets.path",
                "sources.path",
                "network.catalogue",
                "links.path",
                "links.no_go_path",
                "demand.specific_demand_table",
                "demand.building_types_table",
                "demand.dhw_table",
                "demand.landuse_types_table",
                "demand.floors_table",
                "demand.statistics_table",
            )
        ),
        (
            _bundled_plan_data,
            "consumers.path",
            lambda d, p: d["consumers"].update(osm_buildings=False, path=p),
        ),
        (
            lambda: _derived("network"),
            "operation.outdoor_temperature.csv",
            lambda d, p: _put(d, "operation.outdoor_temperature.csv", p),
        ),
        (lambda: _derived("network"), "operation.site_profiles", lambda d, p: _put(d, "operation.site_profiles", p)),
    ],
    "concepts": [
        *(
            (lambda: _derived("concepts"), key, lambda d, p, key=key: _put(d, key, p))
            for key in (
                "outdoor_temperature.csv",
                "electricity.price.csv",
                "fuels_csv",
                "presets_csv",
                "plants_csv",
                "network.plan",
            )
        ),
        (
            lambda: _derived("concepts"),
            "demand.profile.csv",
            lambda d, p: d["demand"].update(annual_mwh=None, profile=_hourly(p)),
        ),
        (
            lambda: _derived("concepts"),
            "sources[0].availability.csv",
            lambda d, p: d["sources"][0].update(availability=_hourly(p)),
        ),
    ],
    "matches": [
        *(
            (_matching_data, key, lambda d, p, key=key: _put(d, key, p))
            for key in ("outdoor_temperature.csv", "plants_csv", "presets_csv", "settings.catalogue")
        ),
        (_matching_data, "candidate_links.path", lambda d, p: d.update(candidate_links={"path": p})),
        (
            _matching_data,
            "sinks[0].profile.csv",
            lambda d, p: d["sinks"][0].update(annual_mwh=None, shape="flat", profile=_hourly(p)),
        ),
        (_matching_data, "sources[0].availability.csv", lambda d, p: d["sources"][0].update(availability=_hourly(p))),
    ],
    "study": [
        *(
            (_study_data, key, lambda d, p, key=key: _put(d, key, p))
            for key in (
                "plants_csv",
                "year.outdoor_temperature.csv",
                "year.electricity_price.csv",
                "year.site_profiles",
            )
        ),
        (_study_data, "sources[0].availability.csv", lambda d, p: d["sources"][0].update(availability=_hourly(p))),
        (_study_data, "links.path", lambda d, p: d["network"]["links"].update(path=p)),  # the network's, derived
    ],
}
SCHEMAS = {
    "plan": "heatmap.scenario.Scenario",
    "concepts": "heatmap.energy.energy_scenario.EnergyScenario",
    "matches": "heatmap.energy.matching.MatchScenario",
    "study": "heatmap.study.Study",
}


def _special(folder: Path, kind: str) -> tuple[str, str]:
    """A path that is no file to read (relative to ``folder`` for the loop) and the words saying what it is."""
    if kind == "a link loop":
        (folder / "loop.csv").symlink_to("loop.csv")
        return "loop.csv", "is a loop of symbolic links"
    if kind == "a FIFO":
        os.mkfifo(folder / "fifo.csv")
        return str(folder / "fifo.csv"), "is a FIFO (named pipe), not a file"
    if kind == "a folder":
        (folder / "folder.csv").mkdir()
        return str(folder / "folder.csv"), "is a folder, not a file"
    return "/dev/full", "is a device, not a file"


def test_every_path_valued_setting_of_every_schema_is_in_the_battery():
    import importlib

    for command, schema in SCHEMAS.items():
        module, name = schema.rsplit(".", 1)
        keys = {k.replace("[]", "[0]") for k in _filepath_keys(getattr(importlib.import_module(module), name))}
        tried = {key for _, key, _ in PATH_SETTINGS[command]}
        assert keys <= tried, (command, keys - tried)


@pytest.mark.parametrize("kind", ["a link loop", "a FIFO", "a folder", "/dev/full"])
@pytest.mark.parametrize(
    ("command", "index"), [(c, i) for c, settings in PATH_SETTINGS.items() for i in range(len(settings))]
)
def test_every_path_valued_setting_refuses_what_is_no_file(command, index, kind, tmp_path):
    """Each path-valued setting of each command given a loop, a FIFO, a folder or a device: exit 2 at once."""
    import signal

    base, key, give = PATH_SETTINGS[command][index]
    folder = tmp_path / "in"
    folder.mkdir()
    path, words = _special(folder, kind)
    data = base()
    give(data, path)
    scenario = folder / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")

    def hang(signum, frame):
        raise TimeoutError(f"{command} {key} = {kind}: no answer within 30 s (a FIFO read?)")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(30)
    try:
        result = run_cli(command, scenario, "--out", tmp_path / "out", "-q")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    message = result.stderr
    assert result.exit_code == 2, message + result.stdout
    assert message.startswith("error: ") and "Traceback" not in message, message
    assert f"'{key}' " in message, (key, message)  # the setting as the file writes it, and nothing else told
    assert "must be a number or a list" not in message, message
    assert words in message and Path(path).name in message, (words, message)
    assert not (tmp_path / "out").exists()


# (command line with {} where the path goes, the argument as the message names it)
PATH_ARGUMENTS = {
    "plan SCENARIO": (lambda good: ["plan", "{}", "--out", "{out}"], None),
    "plan --out": (lambda good: ["plan", good["plan"], "--out", "{}"], "--out"),
    "concepts SCENARIO": (lambda good: ["concepts", "{}", "--out", "{out}"], None),
    "concepts --out": (lambda good: ["concepts", good["concepts"], "--out", "{}"], "--out"),
    "matches SCENARIO": (lambda good: ["matches", "{}", "--out", "{out}"], None),
    "matches --out": (lambda good: ["matches", good["matches"], "--out", "{}"], "--out"),
    "study STUDY": (lambda good: ["study", "{}", "--out", "{out}"], None),
    "study --out": (lambda good: ["study", good["study"], "--out", "{}"], "--out"),
    "demand BUILDINGS": (lambda good: ["demand", "{}", "--out", "{out}"], "BUILDINGS"),
    "demand --scenario": (lambda good: ["demand", PBF, "--scenario", "{}", "--out", "{out}"], None),
    "demand --temperatures": (lambda good: ["demand", PBF, "--temperatures", "{}", "--out", "{out}"], "--temperatures"),
    "demand --out": (lambda good: ["demand", PBF, "--out", "{}"], "--out"),
}


@pytest.mark.parametrize(
    ("argument", "kind"),
    [
        (argument, kind)
        for argument in sorted(PATH_ARGUMENTS)
        for kind in ("a link loop", "a FIFO", "a folder", "/dev/full")
        if not (kind == "a folder" and argument.endswith("--out"))  # a new or empty folder is what --out takes
    ],
)
def test_every_path_argument_refuses_what_is_no_file(argument, kind, tmp_path):
    """Each path argument of each command given a loop, a FIFO, a folder (not --out) or a device: exit 2 at once."""
    import signal

    command, named = PATH_ARGUMENTS[argument]
    folder = tmp_path / "in"
    folder.mkdir()
    good = {"plan": write_scenario(folder), "concepts": _concepts(folder, lambda c: None),
            "matches": _matching_scenario(folder), "study": _study(folder)}  # fmt: skip
    path, words = _special(folder, kind)
    path = str(folder / path)
    args = [str(a).format(path, out=tmp_path / "out") for a in command(good)]

    def hang(signum, frame):
        raise TimeoutError(f"{argument} = {kind}: no answer within 30 s")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(30)
    try:
        result = run_cli(*args, "-q")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    message = result.stderr
    assert result.exit_code == 2, message + result.stdout
    assert message.startswith("error: ") and "Traceback" not in message, message
    assert Path(path).name in message, message
    if argument.endswith("--out") and kind != "a link loop":
        assert "exists and is not a folder; choose another --out" in message, message
    else:
        assert words.split(",")[0].replace("is a folder, not a file", "is a folder") in message, message
    if named is not None:
        assert named in message, message
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------- inputs found by fuzzing the commands ---
def test_the_same_plan_given_twice_to_compare_is_refused(tmp_path):
    from conftest import BUNDLED_SCENARIO

    result = run_cli("compare", BUNDLED_SCENARIO, BUNDLED_SCENARIO.parent / ".." / "scenarios" / BUNDLED_SCENARIO.name,
                     "--out", tmp_path / "out")  # fmt: skip
    assert result.exit_code == 2 and "given twice (also as" in result.output, result.output
    assert not (tmp_path / "out").exists()


def test_matching_settings_with_the_shortest_route_above_the_longest_are_refused():
    from heatmap.energy.matching import MatchingSettings

    with pytest.raises(ValueError, match=r"min_route_length_m \(20000 m\) is above max_route_length_m \(10000 m\)"):
        MatchingSettings(min_route_length_m=20_000, max_route_length_m=10_000)


@pytest.mark.parametrize("field", ["capacity_kw"])
def test_a_capacity_of_watts_given_as_kilowatts_is_refused_in_scenarios(field):
    from heatmap.energy.energy_scenario import Boiler
    from heatmap.scenario import MAX_CAPACITY_KW

    with pytest.raises(ValueError, match="less than or equal to 10000000"):
        Boiler(id="b", fuel="wood_chips", efficiency=0.9, **{field: 1e30})
    assert Boiler(id="b", fuel="wood_chips", efficiency=0.9, **{field: MAX_CAPACITY_KW}).capacity_kw == 1e7


def test_a_csv_header_naming_a_column_twice_is_refused(tmp_path):
    from heatmap._errors import InputDataError
    from heatmap.io.tables import read_csv_table

    path = tmp_path / "profiles.csv"
    path.write_text("# site profiles\ntime,keliber,umicore,keliber\n2023-01-01 00:00,1,2,3\n")
    with pytest.raises(InputDataError, match=r"profiles.csv: the header names columns keliber more than once"):
        read_csv_table(path, required=("time",), what="site profiles file")


@pytest.fixture(scope="module")
def buildings_gpkg(tmp_path_factory):
    from heatmap.io.synthetic import synthetic_region_buildings

    folder = tmp_path_factory.mktemp("buildings")
    gdf = synthetic_region_buildings(200, seed=3, n_towns=1)
    path = folder / "two_layers.gpkg"
    gdf.iloc[:0].to_file(path, layer="aaa_empty", engine="pyogrio")
    gdf.to_file(path, layer="buildings", engine="pyogrio")
    lying = folder / "lying.gpkg"  # metres labelled as degrees
    gdf.set_crs(4326, allow_override=True).to_file(lying, engine="pyogrio")
    return path, lying


def test_demand_on_a_file_of_several_layers_needs_layer(buildings_gpkg, tmp_path):
    path, _ = buildings_gpkg
    refused = run_cli("demand", path, "--out", tmp_path / "a", "-q")
    assert refused.exit_code == 2 and "holds 2 layers (aaa_empty, buildings); name the one to read with --layer" in (
        refused.output
    ), refused.output
    assert not (tmp_path / "a").exists()
    missing = run_cli("demand", path, "--out", tmp_path / "b", "-q", "--layer", "nope")
    assert missing.exit_code == 2 and "has no layer 'nope' (layers: aaa_empty, buildings)" in missing.output
    read = run_cli("demand", path, "--out", tmp_path / "c", "-q", "--layer", "buildings")
    assert read.exit_code == 0, read.output
    summary = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert summary["buildings"]["heated"] > 150, summary["buildings"]


def test_metres_labelled_as_degrees_are_refused_naming_the_crs(buildings_gpkg, tmp_path):
    _, lying = buildings_gpkg
    result = run_cli("demand", lying, "--out", tmp_path / "o", "-q")
    assert result.exit_code == 2 and "are not degrees, yet the layer's CRS is EPSG:4326" in result.output, result.output


def test_demand_takes_a_study_as_its_scenario(buildings_gpkg, tmp_path):
    from heatmap import settings

    path, _ = buildings_gpkg
    study = settings.data_dir / "scenarios" / "kip.yaml"
    result = run_cli("demand", path, "--layer", "buildings", "--scenario", study, "--out", tmp_path / "o", "--json")
    assert result.exit_code == 0, result.output
    assignments = {a["key"]: a for a in json.loads(result.output)["assumptions"]}
    assert assignments["demand.degree_days"]["value"] > 0
