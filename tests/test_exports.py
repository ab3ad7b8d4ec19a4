"""Exports for officials and GIS staff: tables with coordinates, pipe quantities, GeoJSON, README.txt."""

import json
import multiprocessing

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from export_checks import (
    assert_geojson_matches_gpkg,
    assert_no_formula_cells,
    assert_readme_lists_exactly_the_files,
    readme_entries,
)

from heatmap._errors import OutputError
from heatmap.io.exports import README, consumers_table, pipe_quantities, write_readme
from heatmap.io.tables import check_tidy, write_csv


def test_consumers_csv_has_one_row_per_consumer_with_its_place(bundled_outputs):
    consumers = gpd.read_file(bundled_outputs / "plan.gpkg", layer="consumers")
    table = pd.read_csv(bundled_outputs / "consumers.csv", dtype={"consumer_id": str})
    assert table.consumer_id.tolist() == consumers.consumer_id.tolist()
    assert {"lon_deg", "lat_deg", "wkt", "annual_demand_mwh", "connected"} <= set(table.columns)
    assert "geometry" not in table.columns
    geometry = gpd.GeoSeries.from_wkt(table.wkt, crs=4326).to_crs(consumers.crs)
    # the WKT is the consumer's geometry (coordinates rounded to 1e-7°, about 1 cm)
    assert (shapely.hausdorff_distance(geometry.to_numpy(), consumers.geometry.to_numpy()) < 0.05).all()
    points = gpd.GeoSeries(gpd.points_from_xy(table.lon_deg, table.lat_deg), crs=4326).to_crs(consumers.crs)
    assert (points.distance(consumers.geometry, align=False) < 0.05).all()  # a point inside each consumer
    np.testing.assert_allclose(table.annual_demand_mwh, consumers.annual_demand_mwh, rtol=1e-9)


def test_pipe_quantities_add_up_to_the_summary(bundled_outputs, bundled_plan):
    summary = json.loads((bundled_outputs / "summary.json").read_text())
    q = pd.read_csv(bundled_outputs / "pipe_quantities.csv")
    assert list(q.columns[:2]) == ["dn", "kind"] and not q.duplicated(["dn", "kind"]).any()
    by_dn = q.groupby("dn").route_length_m.sum()
    assert {f"DN{k}" for k in by_dn.index} == set(summary["route_length_by_dn_m"])
    for dn, length in by_dn.items():
        assert length == pytest.approx(summary["route_length_by_dn_m"][f"DN{dn}"], abs=0.1)
    assert q.route_length_m.sum() == pytest.approx(summary["figures"]["route_length_m"], abs=0.05)
    np.testing.assert_allclose(q.pipe_length_m, 2 * q.route_length_m, atol=0.011)  # supply and return
    pipes = bundled_plan.pipes
    assert q.n_pipes.sum() == len(pipes)
    assert q.cost_eur.sum() == pytest.approx(pipes.cost_eur.sum(), abs=0.01 * len(q))


def test_pipe_quantities_group_by_status_where_pipes_have_one(bundled_plan):
    pipes = bundled_plan.pipes.assign(status=np.where(bundled_plan.pipes.dn >= 100, "new", "existing"))
    q = pipe_quantities(pipes)
    assert list(q.columns[:3]) == ["dn", "kind", "status"]
    assert q.route_length_m.sum() == pytest.approx(pipes[pipes.circuit == "supply"].length_m.sum())
    assert set(q[q.dn >= 100].status) == {"new"}


def test_plan_folder_geojson_readme_and_safe_cells(bundled_outputs):
    assert assert_geojson_matches_gpkg(bundled_outputs) == 6
    assert_readme_lists_exactly_the_files(bundled_outputs)
    text = (bundled_outputs / README).read_text(encoding="utf-8")
    consumers = len(gpd.read_file(bundled_outputs / "plan.gpkg", layer="consumers"))
    assert f"layer consumers ({consumers:,d} features)" in text
    assert f"consumers.csv ({consumers:,d} rows)" in text
    assert assert_no_formula_cells(bundled_outputs) > 1000


def test_concepts_folder_with_its_network(concepts_out):
    assert (concepts_out / "network" / "consumers.csv").is_file()
    assert (concepts_out / "network" / "pipe_quantities.csv").is_file()
    assert assert_geojson_matches_gpkg(concepts_out) >= 5
    assert_readme_lists_exactly_the_files(concepts_out)
    assert assert_no_formula_cells(concepts_out) > 1000


def test_matches_folder(matches_out):
    assert assert_geojson_matches_gpkg(matches_out) >= 1
    assert_readme_lists_exactly_the_files(matches_out)
    assert assert_no_formula_cells(matches_out) > 10


def test_consumer_names_that_look_like_formulas_are_escaped(tmp_path):
    frame = gpd.GeoDataFrame(
        {"consumer_id": ["=1+2", "@SUM(A1)", "-12.5", "+x"], "annual_demand_mwh": [-1.0, 2.0, 3.0, 4.0]},
        geometry=gpd.points_from_xy([385000, 385100, 385200, 385300], [6672000] * 4),
        crs=3067,
    )
    write_csv(consumers_table(frame), tmp_path / "c.csv", float_format="%.3f")
    back = pd.read_csv(tmp_path / "c.csv", dtype=str)
    assert back.consumer_id.tolist() == ["'=1+2", "'@SUM(A1)", "-12.5", "'+x"]
    assert back.annual_demand_mwh.tolist()[0] == "-1.000"  # numbers stay numbers
    assert back.lat_deg.astype(float).between(60, 60.3).all()


def test_a_table_with_several_values_in_a_cell_is_refused(tmp_path):
    frame = pd.DataFrame({"id": ["a", "b"], "ids": [["x", "y"], []]})
    with pytest.raises(ValueError, match="column 'ids' of t.csv holds 2 cells of several values"):
        write_csv(frame, tmp_path / "t.csv", float_format="%.3f")
    assert not (tmp_path / "t.csv").exists()
    check_tidy(pd.DataFrame({"id": ["a"], "n": [1]}), "t.csv")  # one value a cell: accepted


def test_readme_lists_each_file_and_layer(tmp_path):
    gpd.GeoDataFrame({"consumer_id": ["a", "b"]}, geometry=gpd.points_from_xy([0, 1], [0, 1]), crs=3067).to_file(
        tmp_path / "plan.gpkg", layer="consumers"
    )
    (tmp_path / "summary.json").write_text("{}")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.png").write_bytes(b"")
    write_readme(tmp_path, title="test")
    assert set(readme_entries(tmp_path)) == {"README.txt", "plan.gpkg", "summary.json", "sub/x.png"}
    text = (tmp_path / README).read_text()
    assert "layer consumers (2 features): Heat consumers (annual demand)" in text


def test_readme_counts_are_the_geojson_features(bundled_outputs):
    import pyogrio

    text = (bundled_outputs / README).read_text(encoding="utf-8")
    files = sorted((bundled_outputs / "geojson").glob("*.geojson"))
    assert len(files) == 6
    for path in files:
        n = int(pyogrio.read_info(path)["features"])
        assert f"geojson/{path.name} ({n:,d} feature{'' if n == 1 else 's'})" in text
        assert n == len(json.loads(path.read_text(encoding="utf-8"))["features"])


@pytest.mark.parametrize("float_format", ["%.6g", "%.4f", "%.10g", "%.2f"])
@pytest.mark.parametrize("index", [False, True])
def test_csv_floats_are_written_as_pandas_formats_them(tmp_path, float_format, index):
    from heatmap.io.tables import csv_safe

    rng = np.random.default_rng(1)
    n = 60
    frame = pd.DataFrame(
        {
            "x_m": np.r_[np.nan, np.inf, -np.inf, -0.0, 0.0, 1e300, -1e-300, rng.normal(size=n - 7) * 1e5],
            "y_kw": np.r_[rng.normal(size=n // 2), [np.nan] * (n - n // 2)].astype(np.float32),
            "name": ["-3", "=x"] * (n // 2),
            "n": np.arange(n),
            "all_missing": np.nan,
        },
        index=pd.Index(rng.normal(size=n), name="at"),
    )
    write_csv(frame, tmp_path / "ours.csv", float_format=float_format, index=index)
    csv_safe(frame).to_csv(tmp_path / "pandas.csv", index=index, float_format=float_format)
    assert (tmp_path / "ours.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()
    single = pd.DataFrame({"v": [np.nan, 1.5, np.nan]})  # a row of one empty cell is written as ""
    write_csv(single, tmp_path / "ours.csv", float_format=float_format)
    assert (tmp_path / "ours.csv").read_text().splitlines() == ["v", '""', float_format % 1.5, '""']


def test_gpkg_layers_with_dates_and_categories_are_written_too(tmp_path):
    import pyogrio

    from heatmap.io.outputs import write_gpkg

    points = gpd.points_from_xy([385000.0, 385100.0], [6672000.0, 6672100.0])
    plain = gpd.GeoDataFrame(
        {"consumer_id": ["a", None], "annual_demand_mwh": [1.5, np.nan]}, geometry=points, crs=3067
    )
    other = plain.assign(
        building_type=pd.Categorical(["office", "detached"]), built=pd.to_datetime(["2001-02-03", "1999-12-31"])
    )
    write_gpkg({"consumers": plain, "sources": other}, tmp_path / "plan.gpkg")
    for layer, frame in (("consumers", plain), ("sources", other)):
        back = pyogrio.read_dataframe(tmp_path / "plan.gpkg", layer=layer)
        assert back.consumer_id.tolist() == ["a", None]
        np.testing.assert_array_equal(back.annual_demand_mwh, frame.annual_demand_mwh)
    back = pyogrio.read_dataframe(tmp_path / "plan.gpkg", layer="sources")
    assert back.building_type.tolist() == ["office", "detached"]
    assert pd.to_datetime(back.built).dt.strftime("%Y-%m-%d").tolist() == ["2001-02-03", "1999-12-31"]


def test_writing_the_gpkg_leaves_the_layers_as_they_were(tmp_path):
    from heatmap.io.outputs import write_gpkg

    square = shapely.box(385000.0, 6672000.0, 385010.0, 6672010.0)
    two = shapely.MultiPolygon([square, shapely.box(385020.0, 6672000.0, 385030.0, 6672010.0)])
    consumers = gpd.GeoDataFrame({"consumer_id": ["a", "b"]}, geometry=[square, two], crs=3067)
    points = gpd.GeoDataFrame({"source_id": ["s"]}, geometry=[shapely.Point(385000.0, 6672000.0)], crs=3067)
    before = consumers.geometry.copy()
    kinds = write_gpkg({"consumers": consumers, "sources": points}, tmp_path / "plan.gpkg")
    assert kinds == {"consumers": "MultiPolygon", "sources": "Point"}
    assert consumers.geom_type.tolist() == ["Polygon", "MultiPolygon"]  # promoted in the file only
    assert shapely.equals_exact(consumers.geometry.to_numpy(), before.to_numpy(), tolerance=0).all()
    back = gpd.read_file(tmp_path / "plan.gpkg", layer="consumers")
    assert back.geom_type.tolist() == ["MultiPolygon", "MultiPolygon"]


def test_geojson_written_beside_the_other_files_is_the_same_and_a_failure_leaves_nothing(
    bundled_plan, tmp_path, monkeypatch
):
    from heatmap.io import exports, forked, outputs

    outputs.write_plan(bundled_plan, tmp_path / "after")
    monkeypatch.setattr(forked, "MIN_PIPES", 0)  # the bundled plan is smaller than where it pays
    outputs.write_plan(bundled_plan, tmp_path / "beside")
    after, beside = tmp_path / "after", tmp_path / "beside"
    names = sorted(p.name for p in (after / "geojson").iterdir())
    assert names and names == sorted(p.name for p in (beside / "geojson").iterdir())
    for name in [f"geojson/{n}" for n in names] + ["README.txt", "consumers.csv"]:
        assert (after / name).read_bytes() == (beside / name).read_bytes(), name
    # a run failing after the GeoJSON started: the previous folder unchanged, no process or temporary folder left
    before = {p: p.read_bytes() for p in beside.rglob("*") if p.is_file()}

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs, "write_plan_tables", broken)
    with pytest.raises(OutputError, match="previous results are unchanged"):
        outputs.write_plan(bundled_plan, beside)
    assert {p: p.read_bytes() for p in beside.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["after", "beside"] and exports._PENDING == {}
    assert not [p.name for p in multiprocessing.active_children() if p.name.startswith("heatmap-")]


def test_work_is_dealt_out_largest_first_to_the_least_loaded():
    from heatmap.io import forked

    assert forked.deal_out({"a": 5, "b": 4, "c": 3, "d": 2}, 2) == [["a", "d"], ["b", "c"]]
    assert forked.deal_out({"a": 1, "b": 1}, 2) == [["a"], ["b"]]  # ties in the given order
    assert forked.deal_out({"x": 1}, 3) == [["x"]]
    assert forked.deal_out({}, 2) == []


def test_forked_processes_leave_what_they_inherit_out_of_the_collectors_passes():
    import gc

    from heatmap.io import forked

    assert not forked.why_not_fork()  # Linux, no heatmap thread left running by an earlier test
    gc.unfreeze()  # what a command run in this process froze (long_lived_imports)
    with forked.process_pool(1) as pool:
        frozen_in_child = pool.submit(gc.get_freeze_count).result()
    assert frozen_in_child >= len(gc.get_objects()) // 2  # the parent's objects, frozen in the child
    assert gc.get_freeze_count() == 0  # and not in this process


def test_a_command_imports_with_the_collector_paused_and_its_modules_frozen():
    import gc

    from heatmap.cli import long_lived_imports

    gc.unfreeze()
    try:
        with long_lived_imports():
            assert not gc.isenabled()
            made = [[i] for i in range(1000)]
        assert gc.isenabled() and gc.get_freeze_count() >= len(made)
        gc.unfreeze()
        with pytest.raises(ImportError), long_lived_imports():  # an import failing: the collector runs again
            import heatmap_no_such_module  # noqa: F401
        assert gc.isenabled()
    finally:
        gc.unfreeze()
        gc.enable()


def test_the_writer_waits_for_the_design_bound_only_after_the_layers_and_map(bundled_plan, tmp_path):
    import copy
    import pickle

    from heatmap.io import outputs

    design = dict(bundled_plan.design)
    seen: list[set[str]] = []

    def settle():
        (being_written,) = [p for p in tmp_path.iterdir() if "heatmap-tmp" in p.name]  # the output's temporary folder
        seen.append({p.name for p in being_written.iterdir()})
        return design

    plan = copy.copy(bundled_plan)
    plan._settle_design = settle
    assert not plan.design_known
    outputs.write_plan(plan, tmp_path / "out")
    assert len(seen) == 1 and {"plan.gpkg", "map.html", "consumers.csv"} <= seen[0]
    assert not {"report.html", "summary.json"} & seen[0]  # these show the bound: written once it is known
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert written["network_design"] == json.loads(json.dumps(outputs._jsonable(design)))
    assert plan.design_known and plan.design is design
    plan._settle_design = lambda: {**design, "pickled": True}  # a plan pickled takes its design along, settled
    back = pickle.loads(pickle.dumps(plan))
    assert plan.design_known and back.design_known and back.design == {**design, "pickled": True}


def test_a_forked_call_returns_its_result_or_raises_its_error():
    import signal
    import time

    from heatmap.io import forked

    assert not forked.why_not_fork()  # Linux, no heatmap thread left running by an earlier test
    big = np.arange(1_000_000)  # inherited by the process, not pickled; the answer is sent back
    assert forked.Call(np.sum, big).result() == big.sum()
    with pytest.raises(ZeroDivisionError):
        forked.Call(divmod, 1, 0).result()
    previous = signal.signal(signal.SIGTERM, lambda *_: print("the command's own clean-up"))  # as the CLI has
    try:
        slow = forked.Call(time.sleep, 60)
        time.sleep(0.2)
        slow.stop()  # ends it at once: the child does not run the command's handler
        with pytest.raises(RuntimeError, match="ended without a result"):
            slow.result()
    finally:
        signal.signal(signal.SIGTERM, previous)
