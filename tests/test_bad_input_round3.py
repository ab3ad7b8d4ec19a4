"""Bad and doubtful input found by the third round of fuzzing: each answered with a located message or a warning."""

from __future__ import annotations

import contextlib
import logging
import signal
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import kip_study_file as _study_file
from conftest import run_cli
from shapely.geometry import LineString, Point, box

from heatmap._errors import InputDataError, OutputError, ScenarioError
from heatmap.io import inputs

STUDY = Path(__file__).parents[1] / "data" / "scenarios" / "kip.yaml"


def _read_study(path: Path):
    from heatmap.study import read_study

    return read_study(path)


# --- the output folder and signals -------------------------------------------------------------------


def test_an_output_folder_name_longer_than_the_file_system_allows_is_refused(tmp_path):
    from heatmap.io.output_folder import check_output_folder

    with pytest.raises(OutputError, match=r"folder name of 300 bytes .* longer than the file system allows \(255\)"):
        check_output_folder(tmp_path / ("b" * 300) / "x")


def test_ctrl_c_outside_the_guarded_blocks_exits_130_with_a_word(tmp_path, monkeypatch):
    """Ctrl-C while the heavy modules load (between the checks and the work) is answered as elsewhere (not Aborted!)."""
    from heatmap import cli

    entered = []

    @contextlib.contextmanager
    def interrupted_on_second_entry():
        entered.append(1)
        if len(entered) == 2:
            raise KeyboardInterrupt
        yield

    monkeypatch.setattr(cli, "long_lived_imports", interrupted_on_second_entry)
    scenario = Path(__file__).parents[1] / "data" / "scenarios" / "helsinki_centre.yaml"
    result = run_cli("plan", scenario, "--out", tmp_path / "out")
    assert result.exit_code == 130
    assert "interrupted: the output folder holds the earlier results" in result.output
    assert "Aborted" not in result.output and not (tmp_path / "out").exists()


# --- scenario files ----------------------------------------------------------------------------------------


def test_numbers_with_an_exponent_read_as_yaml_1_2_reads_them():
    from heatmap.scenario import _load_yaml

    data, _ = _load_yaml("a: 8e1\nb: 1.502e4\nc: 1e-300\nd: '8e1'\ne: 80\nf: 1.0e+12\n")
    assert data == {"a": 80.0, "b": 15020.0, "c": 1e-300, "d": "8e1", "e": 80, "f": 1e12}


def test_an_unknown_building_type_in_floors_by_type_is_refused_at_its_line(tmp_path):
    from heatmap.scenario import scenario_from_file

    path = tmp_path / "s.yaml"
    path.write_text("name: x\ndemand:\n  floors_by_type:\n    apartmentblock: 5\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"s\.yaml, line 4: 'demand.floors_by_type' names 'apartmentblock'.*"
                                            r"allowed: apartment_block, care"):  # fmt: skip
        scenario_from_file(path, for_plan=False)


def test_a_study_consumer_whose_demand_its_peak_cannot_give_is_refused_at_its_line(tmp_path):
    def edit(data):
        port = next(c for c in data["consumers"] if c.get("peak_load_kw") and not c.get("profile"))
        port["annual_demand_mwh"] = port["peak_load_kw"] * 8.76 * 4

    with pytest.raises(ScenarioError, match=r"study\.yaml, line \d+: 'consumers\[\d\]' annual_demand_mwh .* is more "
                                            r"than peak_load_kw .* can give in a year"):  # fmt: skip
        _read_study(_study_file(tmp_path, edit))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c.__setitem__(1, {**c[1], "name": c[0]["name"] + "!"}), "differ only in punctuation or case"),
        (lambda c: c.__setitem__(1, {**c[1], "name": "Reference (boilers only)"}), "is reserved for the reference"),
        (lambda c: c.__setitem__(1, {**c[1], "name": "x" * 121}), "at most 120 characters"),
    ],
    ids=["names that make one file name", "the reference's name", "a name too long for a file name"],
)
def test_concept_names_that_cannot_name_their_files_are_refused_at_their_line(tmp_path, edit, message):
    with pytest.raises(ScenarioError, match=rf"study\.yaml, line \d+: 'concepts.*{message}"):
        _read_study(_study_file(tmp_path, lambda data: edit(data["concepts"])))


def test_an_id_with_letters_outside_a_to_z_is_refused_in_words(tmp_path):
    def edit(data):
        data["boilers"][0]["id"] = "turvekattila_pää"

    with pytest.raises(ScenarioError, match=r"'turvekattila_pää'; an id may use only the letters A–Z and a–z"):
        _read_study(_study_file(tmp_path, edit))


def test_a_plants_file_with_a_coordinate_that_is_no_number_is_refused_at_its_line(tmp_path):
    from heatmap.io.inputs import read_table

    path = tmp_path / "plants.csv"
    path.write_text("name,lat,lon\nA,63.84,23.05\nB,63°51′N,23.1\n", encoding="utf-8")
    with pytest.raises(InputDataError, match=r"plants\.csv, line 3: lat '63°51′N' is not a number; give decimal deg"):
        read_table(path, ["lat", "lon"], index="name", what="plants file", numeric=["lat", "lon"])


# --- consumers ---------------------------------------------------------------------------------------------------


def _consumers(tmp_path: Path, **columns) -> gpd.GeoDataFrame:
    n = len(next(iter(columns.values())))
    frame = gpd.GeoDataFrame(
        columns, geometry=columns.pop("geometry", [Point(385000 + 50 * i, 6672000) for i in range(n)]), crs=3067
    )
    path = tmp_path / "consumers.gpkg"
    frame.to_file(path)
    return inputs.read_features(path, id_column="id", what="consumers", allowed_geometry=("Point",))


def _prepare(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return inputs.prepare_consumers(gdf, crs=gdf.crs, full_load_hours_h=2000, default_min_supply_c=70)


@pytest.mark.parametrize("blank", ["", "   "])
def test_a_blank_consumer_id_is_refused_at_its_feature(tmp_path, blank):
    with pytest.raises(InputDataError, match=r"consumers\.gpkg, feature 2: consumers without 'id'"):
        _consumers(tmp_path, id=["A", blank], annual_demand_mwh=[100.0, 100.0])


def test_ids_that_differ_only_in_spaces_around_them_are_one_id(tmp_path):
    with pytest.raises(InputDataError, match=r"features 1, 2: duplicate ids B1"):
        _consumers(tmp_path, id=["B1", "B1 "], annual_demand_mwh=[100.0, 100.0])


def test_a_peak_below_the_mean_load_is_refused_and_one_far_above_it_warned_of(tmp_path, caplog):
    gdf = _consumers(tmp_path, id=["A", "B"], annual_demand_mwh=[1198.0, 100.0], peak_load_kw=[41.0, 50.0])
    with pytest.raises(InputDataError, match=r"feature 1: peak_load_kw of consumers A is below their mean load .* "
                                             r"41 kW for 1,198 MWh/a, a mean of 136\.7"):  # fmt: skip
        _prepare(gdf)
    gdf = _consumers(tmp_path, id=["A", "B"], annual_demand_mwh=[30.0, 100.0], peak_load_kw=[20000.0, 50.0])
    with caplog.at_level(logging.WARNING, logger="heatmap.io.inputs"):
        out = _prepare(gdf)
    assert "feature 1: consumers A have fewer than 500 full-load hours" in caplog.text
    assert out.peak_load_kw.tolist() == [20000.0, 50.0]  # warned of, kept


def test_consumers_all_at_one_point_are_refused_and_a_shared_site_is_warned_of(tmp_path, caplog):
    one = [Point(385000, 6672000)] * 3
    gdf = _consumers(tmp_path, id=["A", "B", "C"], annual_demand_mwh=[100.0] * 3, geometry=one)
    with pytest.raises(InputDataError, match=r"all 3 consumers lie at one point \(385000\.0, 6672000\.0 in EPSG:3067"):
        _prepare(gdf)
    two = [Point(385000, 6672000), Point(385000.2, 6672000), Point(385100, 6672000)]
    gdf = _consumers(tmp_path, id=["A", "B", "C"], annual_demand_mwh=[100.0] * 3, geometry=two)
    with caplog.at_level(logging.WARNING, logger="heatmap.io.inputs"):
        assert len(_prepare(gdf)) == 3
    assert "2 consumers share a site with another (closer than 0.5 m: A, B)" in caplog.text


# --- line layers -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("setting", ["streets.layer", "links.layer", "links.no_go_layer"])
def test_a_line_file_of_several_layers_needs_its_layer_named(tmp_path, setting):
    from pyproj import CRS

    from heatmap.network import links

    path = tmp_path / "lines.gpkg"
    polygons = setting == "links.no_go_layer"
    shape = box(0, 0, 10, 10) if polygons else LineString([(0, 0), (10, 0)])
    for layer in ("drawn", "draft"):
        gpd.GeoDataFrame(geometry=[shape], crs=3067).to_file(path, layer=layer)
    allowed = ("Polygon",) if polygons else ("LineString",)
    message = rf"holds 2 layers \(drawn, draft\); name the one to read with '{setting}'"
    with pytest.raises(InputDataError, match=message):
        links.read_lines(path, layer=None, crs=CRS(3067), what="lines", allowed=allowed, layer_setting=setting)
    assert len(links.read_lines(path, layer="draft", crs=CRS(3067), what="lines", allowed=allowed)) == 1


def test_no_go_areas_keep_the_streets_out_too_without_any_links(tmp_path):
    """A no-go polygon over a street: the plan routes round it (before, the no-go file was not even read)."""
    from heatmap.io import synthetic
    from heatmap.plan import plan_from_scenario
    from heatmap.scenario import scenario_from_file

    town = synthetic.synthetic_town(40, seed=3)
    path = synthetic.write_synthetic_scenario(town, tmp_path)
    base = plan_from_scenario(scenario_from_file(path))
    pipes = base.pipes[base.pipes.kind == "street"] if "kind" in base.pipes else base.pipes
    # a small zone on the middle of the longest street pipe: the base plan crosses it
    longest = pipes.geometry.length.idxmax()
    zone = pipes.geometry[longest].interpolate(0.5, normalized=True).buffer(3.0)
    gpd.GeoDataFrame(geometry=[zone], crs=base.pipes.crs).to_file(tmp_path / "no_go.gpkg")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["links"] = {"no_go_path": str(tmp_path / "no_go.gpkg")}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    plan = plan_from_scenario(scenario_from_file(path))
    assert base.pipes.geometry.intersects(zone).any()
    assert not plan.pipes.geometry.intersects(zone).any()
    assert plan.ok


# --- hourly files ---------------------------------------------------------------------------------------------


def test_a_day_first_time_is_refused_not_read_month_first(tmp_path):
    from heatmap.demand.profiles import read_hourly_table

    times = pd.date_range("2023-01-01", periods=8760, freq="h")
    path = tmp_path / "t.csv"
    pd.DataFrame({"time": times.strftime("%d.%m.%Y %H:%M"), "t_out_c": 0.0}).to_csv(path, index=False)
    with pytest.raises(InputDataError, match=r"t\.csv: line 2: time '01\.01\.2023 00:00' is not written year first"):
        read_hourly_table(path, ["t_out_c"], lower=-60, upper=60, what="temperature")
    pd.DataFrame({"time": times.strftime("%Y/%m/%d %H:%M"), "t_out_c": 0.0}).to_csv(path, index=False)
    assert len(read_hourly_table(path, ["t_out_c"], lower=-60, upper=60, what="temperature")) == 8760


# --- buildings ----------------------------------------------------------------------------------------------------


def test_doubtful_buildings_are_warned_of_with_their_ids(caplog):
    from heatmap.demand.buildings import estimate_demand
    from heatmap.scenario import Demand

    squares = [box(385000 + 40 * i, 6672000, 385020 + 40 * i, 6672020) for i in range(12)]
    b = gpd.GeoDataFrame(
        {"id": [f"b{i}" for i in range(13)], "building": "apartments", "start_date": ["1970"] * 12 + ["2087"]},
        geometry=[*squares, squares[0]],  # the last: the first's footprint again
        crs=3067,
    )
    with caplog.at_level(logging.WARNING, logger="heatmap.demand.buildings"):
        estimate_demand(b, Demand())
    assert "1 buildings have the footprint of another one, so their demand counts twice" in caplog.text
    assert "b12 (400 m²)" in caplog.text
    assert "1 buildings have a start_date after" in caplog.text and "b12 (2087)" in caplog.text
    caplog.clear()
    tiny = b.iloc[:12].set_geometry(b.geometry.iloc[:12].scale(0.01, 0.01))
    with caplog.at_level(logging.WARNING, logger="heatmap.demand.buildings"):
        estimate_demand(tiny, Demand())
    assert "median footprint is 0.04 m² (below 10 m²)" in caplog.text


def test_the_stop_noted_is_cleared_by_each_command():
    from heatmap._errors import clear_stops, note_stop, stop_noted

    note_stop(signal.SIGINT)
    assert stop_noted() == signal.SIGINT
    run_cli("schema")
    assert stop_noted() is None
    clear_stops()


# --- the study ----------------------------------------------------------------------------------------------------


def _set_temperatures(key, value):
    return lambda data: data["temperatures"].__setitem__(key, value)


def _set_consumer(uid, key, value):
    return lambda data: next(c for c in data["consumers"] if c["id"] == uid).__setitem__(key, value)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_set_temperatures("min_consumer_supply_c", 120), r"min_consumer_supply_c \(120 °C\) is above .*max_c \(115"),
        (_set_consumer("umicore", "t_supply_c", 130), r"consumers umicore \(130 °C\) need a supply above"),
        (_set_consumer("port", "annual_demand_mwh", 0), r"'consumers\[3\]' annual_demand_mwh is 0, and a sink"),
    ],
    ids=["consumers' minimum above the curve", "a consumer hotter than the curve", "a sink without demand"],
)
def test_a_study_asking_what_its_network_cannot_give_is_refused_before_it_runs(tmp_path, edit, message):
    with pytest.raises(ScenarioError, match=message):
        _read_study(_study_file(tmp_path, edit))


def test_a_network_source_made_too_cold_by_the_approach_is_refused_naming_the_approach(tmp_path):
    from heatmap.study import plan_data

    study = _read_study(_study_file(tmp_path, _set_temperatures("approach_k", 50)))
    message = r"boliden_acid_heat heats the network's water to at most 55 °C \(its preset's temperature 105 °C less "
    with pytest.raises(ScenarioError, match=message + r"temperatures.approach_k 50 K\)"):
        plan_data(study)


def test_a_site_profile_of_nothing_is_refused_and_one_off_the_stated_demand_warned_of(tmp_path, caplog):
    from heatmap.study import plan_data

    table = pd.read_csv(STUDY.parents[1] / "kip" / "kip_site_profiles.csv", comment="#")
    for factor, name in ((0.5, "half.csv"), (0.0, "zero.csv")):
        table.assign(keliber=table.keliber * factor).to_csv(tmp_path / name, index=False)

    def profiles(name):
        return lambda data: data["year"].__setitem__("site_profiles", str(tmp_path / name))

    study = _read_study(_study_file(tmp_path, profiles("half.csv")))
    with caplog.at_level(logging.WARNING, logger="heatmap.study"):
        plan_data(study)
    assert "half.csv: column keliber buys 7,499.87 MWh" in caplog.text
    assert "states annual_demand_mwh 15,000" in caplog.text
    assert "column town_dh" not in caplog.text  # the sink's profile is its connection, not its stated demand
    study = _read_study(_study_file(tmp_path, profiles("zero.csv")))
    with pytest.raises(ScenarioError, match=r"zero\.csv: column keliber is 0 in every hour, so consumer keliber"):
        plan_data(study)


def test_prices_and_factors_a_thousand_times_off_are_warned_of(tmp_path, caplog):
    def edit(data):
        data["year"]["electricity_co2_t_per_mwh"] = 70
        data["economics"]["fuel_prices_eur_per_mwh"] = {"wood_chips": 0.027}

    with caplog.at_level(logging.WARNING, logger="heatmap.study"):
        _read_study(_study_file(tmp_path, edit))
    assert "year.electricity_co2_t_per_mwh is 70 t/MWh" in caplog.text
    assert "economics.fuel_prices_eur_per_mwh.wood_chips is 0.027 €/MWh" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="heatmap.study"):
        _read_study(_study_file(tmp_path, lambda data: None))
    assert caplog.text == ""  # the bundled study: nothing to warn of


def test_an_outdoor_temperature_never_below_the_base_names_its_file(tmp_path):
    from heatmap.demand.profiles import hourly_load_kw, read_hourly

    path = tmp_path / "t.csv"
    times = pd.date_range("2023-01-01", periods=8760, freq="h").strftime("%Y-%m-%dT%H:%M")
    pd.DataFrame({"time": times, "t_out_c": 20.0}).to_csv(path, index=False)
    warm = read_hourly(path, "t_out_c", lower=-70, upper=50)

    with pytest.raises(InputDataError, match=r"t\.csv \(column t_out_c\): the outdoor temperature never falls below "
                                             r"the base temperature 17 °C .* check the file's unit"):  # fmt: skip
        hourly_load_kw(1.0, 0.0, warm, base_temperature_c=17)


def test_a_scheduler_nothing_listens_at_is_refused_before_the_study_is_read(tmp_path):
    """Before, the study and its variants were checked first (25–30 s) and only then the scheduler."""
    result = run_cli("ensemble", tmp_path / "no_study.yaml", "--vary", tmp_path / "no_vary.yaml", "--out",
                     tmp_path / "out", "--scheduler", "tcp://127.0.0.1:9", "-q")  # fmt: skip
    assert result.returncode == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9 within 5 s" in result.output


def test_a_heat_pump_that_can_never_lift_and_a_concept_asking_for_none_are_warned_of(tmp_path, caplog):
    from heatmap.energy.excess_heat import source_producer

    supply, price = np.array([70.0, 90.0, 110.0]), np.full(3, 40.0)
    with caplog.at_level(logging.WARNING, logger="heatmap.energy.excess_heat"):
        producer, _ = source_producer(
            "cooling", capacity_kw=1000, temperature_c=30, availability=np.ones(3), heat_price_eur_per_mwh=5,
            supply_c=supply, return_c=50, need_kw=np.full(3, 1e6), approach_k=5, electricity_price_eur_per_mwh=price,
            heat_pump={"capacity_kw": 5000, "eta": 0.02},
        )  # fmt: skip
    best_cop = 0.02 * (70 + 273.15) / (70 - 30)  # η × Carnot at the lowest supply: 0.17
    assert f"source cooling: its heat pump's COP (η 0.02) is at most {best_cop:.2f} in the hours" in caplog.text
    assert producer.max_kw.tolist() == [0, 0, 0]  # never used, as said

    def no_pumps(data):
        data["concepts"][0]["heat_pumps"] = True
        for s in data["sources"]:
            s.pop("heat_pump", None)

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="heatmap.energy.energy_scenario"):
        from heatmap.study import energy_scenario

        energy_scenario(_read_study(_study_file(tmp_path, no_pumps)))
    assert f"concept {yaml.safe_load(STUDY.read_text())['concepts'][0]['name']!r}: heat_pumps: true, but none" in (
        caplog.text
    )


def test_a_source_that_cannot_have_delivered_its_published_heat_is_warned_of(tmp_path, caplog):
    from heatmap.demand.climate import year_index
    from heatmap.energy.concepts import resolve_sources
    from heatmap.study import energy_scenario

    def inflate(data):
        source = next(s for s in data["sources"] if s.get("published_mwh_per_a"))
        source["published_mwh_per_a"] = 900_000

    for edit, expected in ((inflate, True), (lambda data: None, False)):
        scn = energy_scenario(_read_study(_study_file(tmp_path, edit)))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="heatmap.energy.concepts"):
            sources = resolve_sources(scn, year_index(scn.year))
        warned = [s for s in sources if f"source {s.id}: capacity × availability gives" in caplog.text]
        assert bool(warned) == expected
        for s in warned:
            share = 100 * s.available_mwh / s.published_mwh_per_a  # the share the message states
            assert f"{share:.0f} % of the 900,000 MWh/a it is published to deliver" in caplog.text
