"""Nothing lost, nothing mixed: the output folder holds one complete run, and a failed write changes nothing.

Also the summary on the command line: units on every violation, what to change, and missing figures.
"""

import dataclasses
import errno
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import threading

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import yaml
from conftest import BUNDLED_SCENARIO, run_cli
from test_cli import write_scenario

from heatmap._errors import OutputError
from heatmap.io import output_folder, outputs, synthetic
from heatmap.io.exports import GEOJSON_FOLDER, README
from heatmap.io.output_folder import MARKER, check_output_folder, write_atomically
from heatmap.io.outputs import TABLE_FILES, format_summary, format_violation


def snapshot(folder):
    """Every entry of a folder with its bytes (the marker too; a folder as its entries)."""
    return {p.name: p.read_bytes() if p.is_file() else snapshot(p) for p in sorted(folder.iterdir())}


def writer(files):
    def write(tmp):
        for name, text in files.items():
            (tmp / name).write_text(text)

    return write


def leftovers(out):
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.heatmap-"))


def dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# --- one run per folder, swapped in whole ---------------------------------------------------------------


def test_a_run_replaces_the_whole_folder(tmp_path):
    out = tmp_path / "out"
    write_atomically(out, ("a.txt", "profile.csv"), writer({"a.txt": "first", "profile.csv": "old profile"}))
    assert json.loads((out / MARKER).read_text())["files"] == [README, "a.txt", "profile.csv"]
    (out / "a.txt.aux.xml").write_text("<PAMDataset/>")  # what GDAL or QGIS may leave beside a file they read
    written = write_atomically(out, ("a.txt",), writer({"a.txt": "second"}))
    assert written == {"a.txt": out / "a.txt"}
    assert sorted(p.name for p in out.iterdir()) == [MARKER, README, "a.txt"]  # the earlier run's profile is gone
    assert (out / "a.txt").read_text() == "second"
    assert json.loads((out / MARKER).read_text())["files"] == [README, "a.txt"]
    assert leftovers(out) == []
    assert oct(out.stat().st_mode & 0o777) == oct(0o777 & ~_umask())  # not mkdtemp's private 0o700


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_stale_heat_profile_does_not_stay_beside_a_new_demand_summary(tmp_path):
    buildings = tmp_path / "buildings.parquet"
    synthetic.synthetic_region_buildings(300, seed=2, n_towns=1).to_parquet(buildings)
    temperatures = tmp_path / "t_out.csv"
    time = pd.date_range("2023-01-01", periods=8760, freq="h")
    pd.DataFrame({"time": time, "t_out_c": 5.0 - 15.0 * np.cos(2 * np.pi * time.dayofyear / 365)}).to_csv(
        temperatures, index=False
    )
    out = tmp_path / "out"
    assert run_cli("demand", buildings, "--out", out, "--temperatures", temperatures, "-q").returncode == 0
    assert (out / "heat_profile.csv").is_file()
    proc = run_cli("demand", buildings, "--out", out, "-q")
    assert proc.returncode == 0, proc.stderr
    assert not (out / "heat_profile.csv").exists()
    assert "profile" not in json.loads((out / "summary.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [MARKER, README, "buildings.csv", "demand.gpkg", "geojson", "heat_density.tif", "heat_density.qml"]
        + ["left_out_buildings.csv", "map.html", "report.html", "summary.json"]
    )


# --- folders that are refused (exit 2, naming the path, before any work) --------------------------------


@pytest.mark.parametrize(
    "case", ["user_file", "extra_file_in_our_folder", "folder_named_like_an_output", "out_is_a_file", "bad_marker"]
)
def test_folder_heatmap_did_not_write_is_refused(tmp_path, case):
    out = tmp_path / "out"
    if case == "out_is_a_file":
        out.write_text("my notes")
        expect = f"the output folder {out} exists and is not a folder"
    else:
        out.mkdir()
        if case == "user_file":
            (out / "summary.json").write_text('{"type": "FeatureCollection", "features": []}')  # the user's own
            expect = "holds files heatmap did not write (summary.json)"
        elif case == "bad_marker":
            (out / MARKER).write_text("not json")
            expect = f"unreadable marker {out / MARKER}"
        else:
            write_atomically(out, ("summary.json",), writer({"summary.json": "{}"}))
            if case == "extra_file_in_our_folder":
                (out / "plan.qgz").write_text("a QGIS project saved beside the results")
                expect = "holds files heatmap did not write (plan.qgz)"
            else:
                (out / "plan.gpkg").mkdir()
                expect = "holds files heatmap did not write (plan.gpkg)"
    before = snapshot(out) if out.is_dir() else out.read_bytes()
    with pytest.raises(OutputError, match="choose another --out"):
        check_output_folder(out)
    proc = run_cli("plan", BUNDLED_SCENARIO, "--out", out)
    assert proc.returncode == 2 and expect in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert (snapshot(out) if out.is_dir() else out.read_bytes()) == before


@pytest.mark.parametrize("which", ["scenario", "sources", "demand_buildings", "demand_temperatures"])
def test_output_folder_holding_an_input_is_refused(tmp_path, which):
    out = tmp_path / "results"
    out.mkdir()
    if which in ("scenario", "sources"):
        sources = BUNDLED_SCENARIO.parent / "helsinki_centre_sources.geojson"
        if which == "sources":
            (out / "sources.geojson").write_bytes(sources.read_bytes())
            scn = write_scenario(tmp_path, sources__path=str(out / "sources.geojson"))
            culprit = out / "sources.geojson"
        else:
            scn = write_scenario(tmp_path, sources__path=str(sources))
            culprit = out / "scenario.yaml"
            scn = scn.rename(culprit)
        proc = run_cli("plan", scn, "--out", out)
    else:
        buildings = tmp_path / "b.parquet"
        synthetic.synthetic_region_buildings(50, seed=1, n_towns=1).to_parquet(buildings)
        args = [buildings, "--out", out]
        if which == "demand_buildings":
            culprit = buildings.rename(out / "b.parquet")
            args[0] = culprit
        else:
            culprit = out / "t.csv"
            culprit.write_text("time,t_out_c\n")
            args += ["--temperatures", culprit]
        proc = run_cli("demand", *args)
    assert proc.returncode == 2, proc.stderr
    assert f"the output folder {out} holds {culprit}, an input of this run" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == [culprit.name]


def test_current_folder_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OutputError, match="is the current folder or holds it"):
        check_output_folder(".")
    with pytest.raises(OutputError, match="is the current folder or holds it"):
        check_output_folder(tmp_path.parent)


def test_path_too_long_for_sqlite_is_refused_before_planning(tmp_path):
    # The limit is SQLite's own: a GeoPackage path one character longer does not open.
    deep = tmp_path / ("d" * 200) / ("e" * 200)
    deep.mkdir(parents=True)
    for length, opens in ((output_folder.SQLITE_MAX_PATH, True), (output_folder.SQLITE_MAX_PATH + 1, False)):
        path = deep / ("f" * (length - len(str(deep)) - 1))
        assert len(str(path)) == length
        try:
            sqlite3.connect(f"{path.as_uri()}?mode=rwc", uri=True).execute("create table t (a)").connection.close()
            assert opens, f"SQLite opened a path of {length} characters"
        except sqlite3.OperationalError:
            assert not opens, f"SQLite did not open a path of {length} characters"
    out = deep / ("o" * (output_folder.SQLITE_MAX_PATH - len(str(deep)) - 20))
    proc = run_cli("plan", BUNDLED_SCENARIO, "--out", out)
    assert proc.returncode == 2 and f"the output folder {out} is too deep" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


def test_a_long_folder_name_is_checked_where_its_geopackage_lands_too(tmp_path):
    """A name above 100 characters is shortened for the temporary folder: the GeoPackage was written there and then
    landed at a path SQLite cannot open (549 characters: Python's sqlite3 'unable to open database file')."""
    deep = tmp_path / ("d" * 200) / ("e" * 80)
    deep.mkdir(parents=True)
    name = "n" * (output_folder.SQLITE_MAX_PATH - len(str(deep)) - len("/") - len("/xxxxxxxxxxxxxxxxxxxx/demand.gpkg"))
    assert 120 < len(name) < 255  # shortened in the temporary folder's name (its path is shorter); a valid name
    output_folder.check_output_folder(deep / name)  # lands at the limit exactly: fine
    with pytest.raises(OutputError, match=r"is too deep: its GeoPackage would be at a path of 505 characters"):
        output_folder.check_output_folder(deep / (name + "n"))


# --- writing errors: exit 2 naming the path, the previous results intact --------------------------------


def enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "summary.json")


def gdal_commit_failed(*args, **kwargs):
    # What GDAL reports when the disk fills while a GeoPackage is written (measured on a 300 kB tmpfs).
    raise pyogrio.errors.DataSourceError("Failed to commit transaction")


@pytest.mark.parametrize("failure", ["disk_full", "geopackage_disk_full"])
def test_disk_full_exits_2_naming_the_folder_and_keeps_the_previous_results(tmp_path, monkeypatch, failure):
    buildings = tmp_path / "b.parquet"
    synthetic.synthetic_region_buildings(200, seed=3, n_towns=1).to_parquet(buildings)
    out = tmp_path / "out"
    assert run_cli("demand", buildings, "--out", out, "-q").returncode == 0
    before = snapshot(out)
    if failure == "disk_full":
        monkeypatch.setattr("heatmap.demand.job.write_json", enospc)
    else:
        monkeypatch.setattr(gpd.GeoDataFrame, "to_file", gdal_commit_failed)
    proc = run_cli("demand", buildings, "--out", out)
    assert proc.returncode == 2, proc.stderr
    assert f"cannot write the results to {out}" in proc.stderr and "Traceback" not in proc.stderr
    expect = "No space left on device" if failure == "disk_full" else "Failed to commit transaction"
    assert expect in proc.stderr and "MB free on its disk" in proc.stderr
    assert "the previous results are unchanged" in proc.stderr
    assert snapshot(out) == before and leftovers(out) == []


def test_failing_swap_puts_the_previous_results_back(tmp_path, monkeypatch):
    out = tmp_path / "out"
    write_atomically(out, ("a.txt",), writer({"a.txt": "first"}))
    before = snapshot(out)
    real_rename = os.rename

    def rename(src, dst):
        if str(src).startswith(str(tmp_path / ".out.heatmap-tmp-")):
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), str(src))
        real_rename(src, dst)

    monkeypatch.setattr(output_folder.os, "rename", rename)
    with pytest.raises(OutputError, match=f"cannot put the results in place at {out}"):
        write_atomically(out, ("a.txt",), writer({"a.txt": "second"}))
    assert snapshot(out) == before and leftovers(out) == []


# --- a killed run, recovered by the next one ------------------------------------------------------------


def test_next_run_puts_back_results_a_run_killed_mid_swap_had_moved_aside(tmp_path):
    out = tmp_path / "out"
    write_atomically(out, ("a.txt",), writer({"a.txt": "previous"}))
    before = snapshot(out)
    pid = dead_pid()
    out.rename(tmp_path / f".out.heatmap-old-{pid}-0a1b2c3d")  # killed between the two renames
    (tmp_path / f".out.heatmap-tmp-{pid}-x8y9z0ab").mkdir()
    (tmp_path / f".out.heatmap-tmp-{pid}-x8y9z0ab" / "a.txt").write_text("new, never swapped in")

    def fails(tmp):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    with pytest.raises(OutputError, match="previous results are unchanged"):
        write_atomically(out, ("a.txt",), fails)
    assert snapshot(out) == before and leftovers(out) == []


def test_next_run_removes_the_previous_results_a_killed_run_had_not_yet_deleted(tmp_path):
    out = tmp_path / "out"
    write_atomically(out, ("a.txt",), writer({"a.txt": "new"}))
    old = tmp_path / f".out.heatmap-old-{dead_pid()}-0a1b2c3d"
    old.mkdir()
    (old / "a.txt").write_text("previous")
    alive = tmp_path / f".out.heatmap-tmp-{os.getppid()}-0a1b2c3d"  # a run still going: left alone
    alive.mkdir()
    write_atomically(out, ("a.txt",), writer({"a.txt": "newer"}))
    assert (out / "a.txt").read_text() == "newer" and leftovers(out) == [alive.name]


def test_signal_during_the_swap_is_handled_after_it(tmp_path, monkeypatch):
    out = tmp_path / "out"
    write_atomically(out, ("a.txt",), writer({"a.txt": "first"}))
    real_swap = output_folder._swap

    def swap_while_interrupted(tmp, dest):
        os.kill(os.getpid(), signal.SIGINT)  # held until the swap is complete
        real_swap(tmp, dest)

    monkeypatch.setattr(output_folder, "_swap", swap_while_interrupted)
    with pytest.raises(KeyboardInterrupt) as info:
        write_atomically(out, ("a.txt",), writer({"a.txt": "second"}))
    assert info.value.written_to == out
    assert (out / "a.txt").read_text() == "second" and leftovers(out) == []


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_swallowed_during_the_run_still_keeps_the_previous_results(tmp_path, signum, code, capsys):
    """An interrupt raised where Python discards it (a weakref callback while plots are drawn) stops the run."""
    from heatmap import cli
    from heatmap._errors import clear_stops

    out = tmp_path / "out"
    write_atomically(out, ("a.txt",), writer({"a.txt": "first"}))

    def swallowed(tmp):
        try:
            os.kill(os.getpid(), signum)  # the command line's handler raises here ...
            signal.pthread_kill(threading.main_thread().ident, 0)  # (a syscall: the handler has run)
        except KeyboardInterrupt:
            pass  # ... and something discards it, as Python does in a weakref callback
        writer({"a.txt": "second"})(tmp)

    clear_stops()
    with pytest.raises(SystemExit) as info, cli._answer_errors():
        write_atomically(out, ("a.txt",), swallowed)
    clear_stops()
    assert info.value.code == code
    assert "nothing was written" in capsys.readouterr().err
    assert (out / "a.txt").read_text() == "first" and leftovers(out) == []


# --- the summary: units, what to change, missing figures ------------------------------------------------


@pytest.mark.parametrize(
    ("row", "expect"),
    [
        (("source_capacity", "S1", 24280.4, 6000.0), "S1: 24,280 kW > capacity 6,000 kW"),
        (("velocity", "supply pipe of edge 7", 2.4281, 1.5), "supply pipe of edge 7: 2.43 m/s > 1.5 m/s"),
        (("pressure_gradient", "return pipe of edge 3", 312.4, 200.0), "return pipe of edge 3: 312 Pa/m > 200 Pa/m"),
        (("consumer_dp", "B12", 0.314, 0.5), "B12: Δp 0.31 bar < 0.5 bar"),
        (("consumer_supply_temperature", "B3", 68.24, 75.0), "B3: supply 68.2 °C < minimum 75 °C"),
        (("energy_balance", "network", 0.0032, 0.001), "network: residual 3.2e-03 > tolerance 1.0e-03"),
        (("converged", "network of source S2", 0.0, 1.0), "network of source S2: the simulation did not converge"),
        (("velocity", "supply pipe of edge 9", float("nan"), 1.5), "supply pipe of edge 9: – > 1.5 m/s"),
        (("consumer_dp", "B1", None, None), "B1: Δp – < –"),
    ],
)
def test_every_violation_reads_with_its_unit(row, expect):
    assert format_violation(dict(zip(("check", "element", "value", "limit"), row, strict=True))) == expect


def _summary(plan, **changes):
    return outputs.plan_summary(dataclasses.replace(plan, **changes))


def test_many_violations_fit_one_screen_and_say_how_many_are_not_printed(bundled_plan):
    rows = [("velocity", f"supply pipe of edge {i}", 1.6 + i / 100, 1.5) for i in range(40)]
    rows += [("source_capacity", "S1", 24280.0, 6000.0)]
    violations = pd.DataFrame(rows, columns=["check", "element", "value", "limit"])
    summary = _summary(bundled_plan, violations=violations)
    assert summary["failed_checks"] == ["source_capacity", "velocity"]
    text = format_summary(summary)
    assert len(text.splitlines()) <= 30, text
    assert "Checks: 41 violated (source_capacity 1, velocity 40)" in text
    assert "S1: 24,280 kW > capacity 6,000 kW" in text
    assert "supply pipe of edge 39: 1.99 m/s > 1.5 m/s" in text  # the worst first
    assert "… and 36 more (every one in summary.json)" in text
    assert "raise capacity_kw in the sources file" in text and "limits.max_velocity_m_per_s" in text
    assert "Assumptions" not in text and "Assumptions" in format_summary(summary, assumptions=True)


def advice(plan, violations, rounds):
    """What the summary says to change, as one line."""
    return " ".join(" ".join(outputs.what_to_change(_summary(plan, violations=violations, rounds=rounds))).split())


def test_a_source_too_small_is_not_blamed_on_resizing_rounds(bundled_plan):
    columns = ["check", "element", "value", "limit"]
    violations = pd.DataFrame([("source_capacity", "S1", 24280.0, 6000.0)], columns=columns)
    many_rounds = [{"round": i} for i in range(bundled_plan.scenario.limits.max_resize_rounds + 1)]
    text = advice(bundled_plan, violations, many_rounds)
    assert "capacity" in text and "round" not in text
    violations = pd.DataFrame([("velocity", "supply pipe of edge 1", 2.0, 1.5)], columns=columns)
    text = advice(bundled_plan, violations, many_rounds)
    assert f"the {len(many_rounds) - 1} resizing rounds ran out: raise limits.max_resize_rounds" in text
    text = advice(bundled_plan, violations, many_rounds[:2])
    assert "round" not in text and "largest pipe of the catalogue is too small" in text
    # The pump-lift trim after the last round is not a resizing round.
    trimmed = [*many_rounds[:-1], {"round": len(many_rounds) - 1, "action": "pump lift trimmed"}]
    text = advice(bundled_plan, violations, trimmed)
    assert "round" not in text


@pytest.mark.parametrize("missing", [float("nan"), None, float("inf")])
def test_missing_figures_print_as_a_dash_and_write_as_null(bundled_plan, tmp_path, missing):
    """A run whose figures could not be computed (no load, no convergence) reports them; it does not crash."""
    violations = pd.DataFrame(
        [("converged", "network of source S1", 0.0, 1.0), ("consumer_dp", "B1", np.nan, 0.5)],
        columns=["check", "element", "value", "limit"],
    )
    plan = dataclasses.replace(
        bundled_plan,
        figures=dict.fromkeys(bundled_plan.figures, missing),
        energy_balance=dict.fromkeys(bundled_plan.energy_balance, missing),
        violations=violations,
        consumers=bundled_plan.consumers.assign(q_design_kw=np.nan),
    )
    summary = outputs.plan_summary(plan, partial=True)
    json.dumps(summary, allow_nan=False)
    assert summary["figures"]["capex_eur"] is None and summary["design_load_kw"] is None
    text = format_summary(summary, assumptions=True)
    for label in ("Route length", "Heat delivered", "Heat losses", "Pumping", "Capex", "LCOH", "NPV"):
        (line,) = [ln for ln in text.splitlines() if ln.startswith(label)]
        assert line.split()[-1] == "–", line
    assert "B1: Δp – < 0.5 bar" in text and "did not converge" in text
    written = outputs.write_plan(plan, tmp_path / "out", partial=True)
    s = json.loads(written["summary.json"].read_text(), parse_constant=lambda c: pytest.fail(f"summary holds {c}"))
    assert s["status"] == "partial: checks failed" and s["figures"]["npv_eur"] is None


# --- a partial plan is marked in every file -------------------------------------------------------------


@pytest.fixture(scope="module")
def partial_run(tmp_path_factory):
    """The bundled scenario with sources far too small, written with --partial."""
    folder = tmp_path_factory.mktemp("partial")
    sources = gpd.read_file(BUNDLED_SCENARIO.parent / "helsinki_centre_sources.geojson").assign(capacity_kw=1000.0)
    sources.to_file(folder / "sources.geojson", engine="pyogrio")
    data = yaml.safe_load(BUNDLED_SCENARIO.read_text())
    data["streets"]["path"] = str((BUNDLED_SCENARIO.parent / data["streets"]["path"]).resolve())
    data["sources"]["path"] = str(folder / "sources.geojson")
    (folder / "scenario.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    out = folder / "out"
    without = run_cli("plan", folder / "scenario.yaml", "--out", out)
    proc = run_cli("plan", folder / "scenario.yaml", "--out", out, "--partial")
    return without, proc, out


def test_tiny_sources_fail_with_a_message_that_names_the_capacity(partial_run):
    without, _, _ = partial_run
    assert without.returncode == 3
    err = without.stderr
    assert "error: checks fail (source_capacity); nothing was written" in err
    assert "S1: " in err and "kW > capacity 1,000 kW" in err
    assert "raise capacity_kw in the sources file" in err and "round" not in err
    assert len(err.splitlines()) <= 30, err


def test_partial_plan_is_marked_in_the_geopackage_and_the_summary(partial_run):
    _, proc, out = partial_run
    assert proc.returncode == 0, proc.stderr
    assert "Status:   partial: checks failed" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "partial: checks failed" and summary["failed_checks"] == ["source_capacity"]
    assert run_metadata(out / "plan.gpkg") == {
        "heatmap_version": summary["heatmap_version"],
        "heatmap_scenario": summary["scenario"],
        "heatmap_status": "partial",
        "heatmap_failed_checks": "source_capacity",
        "heatmap_assumptions": json.dumps(summary["assumptions"], ensure_ascii=False),
    }
    info = pyogrio.read_info(out / "plan.gpkg", layer="sources")
    assert json.loads(info["dataset_metadata"]["GPKG_METADATA_ITEM_1"])["heatmap_status"] == "partial"  # GDAL sees it
    assert "PARTIAL plan: checks failed: source_capacity" in info["layer_metadata"]["DESCRIPTION"]
    assert set(gpd.read_file(out / "plan.gpkg", layer="sources").status) == {"partial"}
    pyogrio.list_layers(out / "plan.gpkg")
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [MARKER, README, GEOJSON_FOLDER, "plan.gpkg", "map.html", "report.html", "summary.json", *TABLE_FILES]
    )


def run_metadata(gpkg):
    """The run's metadata in the GeoPackage metadata extension (scope: the whole GeoPackage)."""
    with sqlite3.connect(gpkg) as db:
        rows = db.execute(
            "select m.metadata from gpkg_metadata m join gpkg_metadata_reference r on r.md_file_id = m.id "
            "where r.reference_scope = 'geopackage' and m.md_standard_uri = ? and m.mime_type = 'application/json'",
            (outputs.GPKG_METADATA_URI,),
        ).fetchall()
        query = "select table_name from gpkg_extensions where extension_name = 'gpkg_metadata'"
        extensions = {r[0] for r in db.execute(query)}
    assert extensions == {"gpkg_metadata", "gpkg_metadata_reference"}
    (row,) = rows
    return json.loads(row[0])


def test_a_complete_plan_is_marked_ok(bundled_outputs):
    assert run_metadata(bundled_outputs / "plan.gpkg")["heatmap_status"] == "ok"
    info = pyogrio.read_info(bundled_outputs / "plan.gpkg", layer="sources")
    assert "PARTIAL" not in info["layer_metadata"]["DESCRIPTION"]
    assert set(gpd.read_file(bundled_outputs / "plan.gpkg", layer="sources").status) == {"ok"}
    assert '"banner": ""' in (bundled_outputs / "map.html").read_text()  # no banner on a complete plan


@pytest.mark.browser
def test_partial_plan_map_shows_a_banner_with_the_failed_checks(browser, partial_run, tmp_path):
    from conftest import assert_offline, open_map

    _, _, out = partial_run
    context, page, errors, requests = open_map(browser, out / "map.html", screenshot=tmp_path / "partial.png")
    try:
        banner = page.locator(".heatmap-banner")
        assert banner.count() == 1 and banner.is_visible()
        assert "Partial plan" in banner.inner_text() and "source_capacity" in banner.inner_text()
        box, title = banner.bounding_box(), page.locator(".heatmap-title").bounding_box()
        assert box["y"] >= title["y"] + title["height"]  # under the title, not hiding it
        assert errors == []
        assert_offline(requests)
    finally:
        context.close()


def test_missing_is_not_a_number():
    assert outputs._number(math.nan, ".1f") == "–" and outputs._number("abc", ".1f") == "–"
    assert outputs._number(-0.001, ".2f", "bar") == "0.00 bar"
