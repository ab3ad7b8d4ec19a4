"""heatmap compare: plans side by side in one table, chart, map and report, read back from each plan's folder."""

import json
import re

import pandas as pd
import pytest
import yaml
from conftest import BUNDLED_SCENARIO, assert_offline, open_map, run_cli


@pytest.fixture(scope="module")
def compared(bundled_outputs, tmp_path_factory):
    # the bundled plan as finished (its folder) against the same district routed as a Steiner tree (planned here)
    folder = tmp_path_factory.mktemp("compare")
    data = yaml.safe_load(BUNDLED_SCENARIO.read_text())
    for key in ("streets", "sources"):
        data[key]["path"] = str((BUNDLED_SCENARIO.parent / data[key]["path"]).resolve())
    data["name"] = "Steiner route"
    data["design"] = {"method": "steiner"}
    (folder / "steiner.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    out = folder / "out"
    proc = run_cli("compare", str(bundled_outputs), str(folder / "steiner.yaml"), "--out", str(out))
    return proc, out, bundled_outputs


def test_each_row_is_its_plan_as_its_folder_holds_it(compared):
    proc, out, bundled = compared
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out / "comparison.csv")
    assert table.scenario.tolist()[1] == "Steiner route" and len(table) == 2
    for row, folder in zip(table.itertuples(), (bundled, out / "steiner_route"), strict=True):
        s = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        f = s["figures"]
        assert row.scenario == s["scenario"] and row.status == s["status"]
        assert row.capex_meur == pytest.approx(f["capex_eur"] / 1e6, rel=1e-5)
        assert row.lcoh_eur_per_mwh == pytest.approx(f["lcoh_eur_per_mwh"], rel=1e-5)
        assert row.route_length_km == pytest.approx(f["route_length_m"] / 1000, rel=1e-5)
        assert row.consumers_connected == s["counts"]["consumers_connected"]
        assert row.design_method == s["network_design"]["method"]
    assert table.design_method.tolist() == ["heuristic", "steiner"]
    # the planned scenario is written whole beside the comparison; the folder read is left as it was
    assert (out / "steiner_route" / "plan.gpkg").is_file() and (out / "steiner_route" / "report.html").is_file()
    listed = (out / "README.txt").read_text(encoding="utf-8")
    for name in ("comparison.csv", "comparison.png", "map.html", "report.html"):
        assert name in listed
    assert (out / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Steiner route" in proc.stdout and "capex_meur" in proc.stdout


def test_the_report_and_the_map_show_every_plan_offline(compared, browser):
    _, out, _ = compared
    table = pd.read_csv(out / "comparison.csv")
    html = (out / "report.html").read_text(encoding="utf-8")
    assert all(name in html for name in table.scenario)
    assert f"{table.capex_meur[1]:,.2f}" in html
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", html)
    context, page, errors, requests = open_map(browser, out / "map.html")
    try:
        control = page.inner_text(".leaflet-control-layers")
        for name in table.scenario:
            assert f"{name}: route (pipes by DN)" in control and f"{name}: heat sources" in control
        assert not errors
        assert_offline(requests)
    finally:
        context.close()


def test_bad_items_are_refused_before_any_work(tmp_path, bundled_outputs):
    one = run_cli("compare", str(bundled_outputs), "--out", str(tmp_path / "out"))
    assert one.returncode == 2 and "at least two" in one.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_cli("compare", str(bundled_outputs), str(empty), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and f"{empty}: no summary.json here" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()
