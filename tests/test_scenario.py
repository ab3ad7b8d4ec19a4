from pathlib import Path

import pytest

from heatmap._errors import ScenarioError
from heatmap.scenario import scenario_from_dict, scenario_from_file

MINIMAL = {"streets": {"source": "pbf", "path": "x.pbf"}, "sources": {"path": "s.csv"}, "consumers": {"path": "c.csv"}}


def build(**changes):
    data = {k: dict(v) for k, v in MINIMAL.items()}
    for key, value in changes.items():
        section, name = key.split("__")
        data.setdefault(section, {})[name] = value
    return scenario_from_dict(data, base_dir=Path("/base"))


def test_defaults_are_reported_with_their_origin():
    scn = build(temperatures__supply_c=90)
    rows = {r["key"]: r for r in scn.assumptions()}
    assert rows["temperatures.supply_c"]["value"] == 90.0 and rows["temperatures.supply_c"]["source"] == "scenario"
    assert rows["temperatures.return_c"]["source"] == "default" and rows["temperatures.return_c"]["doc"]
    assert all(r["doc"] for r in rows.values())
    assert rows["economics.discount_rate"]["value"] == 0.03


def test_relative_paths_resolve_against_the_scenario_folder():
    scn = build()
    assert scn.streets.path == Path("/base/x.pbf")
    assert scn.network.catalogue.name == "pipes_en253.csv" and scn.network.catalogue.is_file()


@pytest.mark.parametrize(
    "changes,match",
    [
        ({"temperatures__suply_c": 80}, r"unknown key 'temperatures.suply_c'; did you mean 'temperatures.supply_c'"),
        ({"limits__max_velocity_m_per_s": "fast"}, r"'limits.max_velocity_m_per_s' must be a number, got 'fast'"),
        ({"temperatures__supply_c": 353.15}, r"at most 150 \(°C expected, not kelvin\)"),
        ({"network__simultaneity": "max"}, r"allowed: winter, thermos, none"),
        ({"temperatures__return_c": 90}, r"must be at least 5 K below 'temperatures.supply_c'"),
        ({"streets__source": "place"}, r"'streets.source: place' needs 'streets.place'"),
        ({"study_area__bbox": [25, 60, 24, 61]}, r"west < east"),
        ({"economics__lifetime_a": 2.5}, r"must be a whole number"),
    ],
)
def test_invalid_settings_name_the_key_and_what_is_allowed(changes, match):
    with pytest.raises(ScenarioError, match=match):
        build(**changes)


def test_unknown_top_level_key_suggests():
    with pytest.raises(ScenarioError, match="did you mean 'consumers'"):
        scenario_from_dict({**MINIMAL, "consumer": {}}, base_dir=Path("."))


def test_scenario_file_errors_name_the_file(tmp_path):
    with pytest.raises(ScenarioError, match="does not exist"):
        scenario_from_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ScenarioError, match=r"bad.yaml: not valid YAML"):
        scenario_from_file(bad)
    bad.write_text(
        "temperatures:\n  ground: 5\n" + "sources: {path: s.csv}\nconsumers: {path: c.csv}\nstreets: {path: x.pbf}\n"
    )
    with pytest.raises(
        ScenarioError,
        match=r"bad.yaml, line 2: unknown key 'temperatures.ground'; did you mean "
        r"'temperatures.ground_c'",
    ):
        scenario_from_file(bad)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        (
            {"consumers__inline": [{"id": "X1", "lon": 24.94, "lat": 60.17, "annual_demand_mwh": 100}]},
            r"'consumers.path' and 'consumers.inline' are given: give one of them",
        ),
        (
            {"sources__inline": [{"id": "S9", "lon": 24.94, "lat": 60.17, "capacity_kw": 500}]},
            r"'sources.path' and 'sources.inline' are given: give one of them",
        ),
        ({"consumers__osm_buildings": True}, r"'consumers.path' and 'consumers.osm_buildings' are given"),
    ],
)
def test_two_inputs_of_one_kind_are_refused_not_one_silently_dropped(changes, match):
    with pytest.raises(ScenarioError, match=match):
        build(**changes)


def test_an_empty_scenario_file_is_named(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(
        ScenarioError, match=r"empty.yaml: a scenario must be a mapping of keys to values, got an empty"
    ):
        scenario_from_file(empty)


def test_bundled_scenario_is_valid(bundled_scenario):
    assert bundled_scenario.streets.path.is_file()
    assert bundled_scenario.consumers.osm_buildings


def test_new_named_settings_have_the_former_constants_as_defaults():
    rows = {r["key"]: r for r in build().assumptions()}
    assert rows["network.local_loss_factor"]["value"] == 1.1
    assert rows["network.pump_lift_margin_bar"]["value"] == 0.05
    assert rows["limits.energy_balance_tolerance"]["value"] == 1e-3
    assert (
        rows["consumers.min_peak_load_kw"]["value"] == 1.0
        and "below_min_peak_load" in (rows["consumers.min_peak_load_kw"]["doc"])
    )
    assert rows["sources.columns.t_supply_c"]["value"] == "t_supply_c"
    scn = build(sources__columns={"t_supply_c": "supply_temperature_c"})
    rows = {r["key"]: r for r in scn.assumptions()}
    assert rows["sources.columns.t_supply_c"] == {
        "key": "sources.columns.t_supply_c",
        "value": "supply_temperature_c",
        "source": "scenario",
        "doc": rows["sources.columns.t_supply_c"]["doc"],
    }
    assert rows["sources.columns.capacity_kw"]["source"] == "default"


def test_assumptions_list_only_settings_that_apply():
    graphml = {**MINIMAL, "streets": {"source": "graphml", "path": "s.graphml"}}
    keys = {r["key"] for r in scenario_from_dict(graphml, base_dir=Path("/base")).assumptions()}
    assert "streets.network_type" not in keys and "streets.path" in keys and "streets.place" not in keys
    inline = {
        **MINIMAL,
        "consumers": {"inline": [{"id": 1, "lon": 24.9, "lat": 60.2, "annual_demand_mwh": 100}]},
    }
    keys = {r["key"] for r in scenario_from_dict(inline, base_dir=Path("/base")).assumptions()}
    assert "consumers.inline" in keys and "sources.path" in keys
    assert not {"consumers.path", "consumers.layer", "consumers.id_column", "consumers.columns.peak_load_kw"} & keys
    place = {**MINIMAL, "streets": {"source": "place", "place": "Kokkola, Finland"}}
    keys = {r["key"] for r in scenario_from_dict(place, base_dir=Path("/base")).assumptions()}
    assert {"streets.place", "streets.network_type"} <= keys and "streets.path" not in keys


@pytest.mark.parametrize(
    "streets,match",
    [
        ({"source": "xml"}, r"'streets.source: xml' needs 'streets.path'"),
        ({"source": "graphml", "path": "s.graphml", "network_type": "all"}, r"'streets.network_type' does not apply"),
        ({"source": "pbf", "path": "x.pbf", "plac": "x"}, r"unknown key 'streets.plac'"),
        ({"source": "tiles"}, r"'streets.source' is 'tiles'; allowed: pbf, xml, graphml, place, bbox, polygon"),
        ({"source": "bbox"}, r"'streets.source: bbox' needs 'study_area.bbox'"),
        ({"source": "polygon"}, r"'streets.source: polygon' needs 'streets.path'"),
        ({"path": "x.pbf", "max_service_length_m": float("nan")}, r"'streets.max_service_length_m' is nan"),
    ],
)
def test_each_street_source_has_its_own_keys(streets, match):
    with pytest.raises(ScenarioError, match=match):
        scenario_from_dict({**MINIMAL, "streets": streets}, base_dir=Path("/base"))


@pytest.mark.parametrize(
    "changes,match",
    [
        ({"limits__max_velocity_m_per_s": float("nan")}, r"'limits.max_velocity_m_per_s' is nan; it must be a finite"),
        ({"network__max_pump_lift_bar": float("inf")}, r"'network.max_pump_lift_bar' is inf"),
        ({"study_area__crs": "EPSG:99999"}, r"'study_area.crs' is 'EPSG:99999', which pyproj does not know"),
        ({"study_area__crs": "EPSG:4326"}, r"which is geographic"),
        ({"study_area__bbox": [24.9, float("nan"), 25.0, 60.2]}, r"'study_area.bbox' must be .* finite"),
        ({"network__insulation_series": 4}, r"'network.insulation_series' is 4; allowed: 1, 2, 3"),
        ({"consumers__min_peak_load_kw": -1}, r"'consumers.min_peak_load_kw' is -1.0; it must be at least 0"),
        ({"network__local_loss_factor": 0.9}, r"'network.local_loss_factor' is 0.9; it must be at least 1"),
        (
            {"consumers__osm_buildings": True, "consumers__path": None, "consumers__columns": {"name": "x"}},
            r"'consumers.columns' applies to a file, and the scenario gives no 'consumers.path'",
        ),
    ],
)
def test_non_finite_and_unknown_values_are_refused(changes, match):
    with pytest.raises(ScenarioError, match=match):
        build(**changes)


def test_inline_rows_are_typed():
    rows = [{"id": "S1", "lon": "abc", "lat": 60.2, "capacity_kw": 100}]
    with pytest.raises(ScenarioError, match=r"'sources.inline\[0\].lon' must be a number, got 'abc'"):
        scenario_from_dict({**MINIMAL, "sources": {"inline": rows}}, base_dir=Path("/base"))
    rows = [{"id": "C1", "lon": 24.9, "lat": 60.2, "annual_demand_mwh": 10, "peak_kw": 5}]
    with pytest.raises(
        ScenarioError,
        match=r"unknown key 'consumers.inline\[0\].peak_kw'; did you mean "
        r"'consumers.inline\[0\].peak_load_kw'",
    ):
        scenario_from_dict({**MINIMAL, "consumers": {"inline": rows}}, base_dir=Path("/base"))


def test_file_errors_name_the_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\ntemperatures:\n  supply_c: 80\nstreets: {path: x.pbf}\nsources: {path: s.csv}\n"
        "consumers: {path: c.csv}\ntemperatures:\n  supply_c: 90\n"
    )
    with pytest.raises(ScenarioError, match=r"bad.yaml, line 7: key 'temperatures' is given twice \(lines 2 and 7\)"):
        scenario_from_file(bad)
    bad.write_text(
        "streets: {path: x.pbf}\nsources:\n  inline:\n    - {id: S1, lon: 24.9, lat: 60.2, capacity_kw: 1}\n"
        "    - {id: S2, lon: 24.9, lat: 60.2, capacity_kw: .inf}\nconsumers: {path: c.csv}\n"
    )
    with pytest.raises(ScenarioError, match=r"bad.yaml, line 5: 'sources.inline\[1\].capacity_kw' is inf"):
        scenario_from_file(bad)
    bad.write_text(
        "streets: {path: x.pbf}\nsources: {path: s.csv}\nconsumers: {path: c.csv}\nnetwork: {simultaneity: max}\n"
    )
    with pytest.raises(ScenarioError, match=r"bad.yaml, line 4: 'network.simultaneity' is 'max'"):
        scenario_from_file(bad)
    with pytest.raises(ScenarioError, match=r"is a folder; give the scenario's YAML file"):
        scenario_from_file(tmp_path)


def test_inline_rows_remember_their_line(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        "streets: {path: x.pbf}\nsources:\n  inline:\n    - {id: S1, lon: 24.9, lat: 60.2, capacity_kw: 1}\n"
        "    - id: 7\n      lon: 24.9\n      lat: 60.2\n      capacity_kw: 2\nconsumers: {path: c.csv}\n"
    )
    scn = scenario_from_file(path)
    assert [r._line for r in scn.sources.inline] == [4, 5] and scn.sources.inline[1].id == "7"
    assert scn.path == path.resolve() and "sources.inline" in scn.given


def test_scenarios_are_frozen():
    from pydantic import ValidationError

    scn = build()
    with pytest.raises(ValidationError):
        scn.temperatures.supply_c = 10


def test_json_schema_describes_every_setting():
    from heatmap.scenario import json_schema

    schema = json_schema()
    assert schema["additionalProperties"] is False
    temps = schema["$defs"]["Temperatures"]["properties"]
    assert (
        temps["supply_c"]["maximum"] == 150 and temps["supply_c"]["x-unit"] == "°C" and temps["supply_c"]["description"]
    )
    streets = schema["properties"]["streets"]["anyOf"][0]
    sources = {"pbf", "xml", "graphml", "place", "bbox", "polygon", "lines", "none"}
    assert set(streets["discriminator"]["mapping"]) == sources
    assert "network_type" not in schema["$defs"]["GraphmlStreets"]["properties"]
    assert schema["$defs"]["PlaceStreets"]["required"] == ["place"]
    assert schema["$defs"]["Network"]["properties"]["simultaneity"]["enum"] == ["winter", "thermos", "none"]


def test_bundled_scenario_validates_against_the_printed_schema(bundled_scenario):
    """`heatmap schema` prints JSON that a JSON-Schema validator accepts the bundled scenario with."""
    import json

    import jsonschema
    import yaml
    from click.testing import CliRunner
    from conftest import BUNDLED_SCENARIO

    from heatmap.cli import main

    result = CliRunner().invoke(main, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert list(validator.iter_errors(yaml.safe_load(BUNDLED_SCENARIO.read_text()))) == []
    errors = list(validator.iter_errors({"temperatures": {"suply_c": 80}, "network": {"simultaneity": "max"}}))
    assert len(errors) == 2


@pytest.mark.parametrize("kind", ["study", "concepts", "matches"])
def test_each_kind_of_scenario_file_validates_against_its_printed_schema(kind):
    """`heatmap schema --kind`: the bundled study and the files of each command pass their kind's schema."""
    import json

    import jsonschema
    import yaml
    from click.testing import CliRunner
    from kip_derived import derived

    from heatmap import settings
    from heatmap.cli import main

    result = CliRunner().invoke(main, ["schema", "--kind", kind])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    files = {
        "study": [settings.data_dir / "scenarios" / "kip.yaml"],
        "concepts": [derived("concepts")],
        "matches": [derived("matches"), Path(__file__).parent / "data" / "matching_scenario.yaml"],
    }[kind]
    for path in files:
        assert [e.message for e in validator.iter_errors(yaml.safe_load(path.read_text()))] == [], path
    plan = yaml.safe_load((settings.data_dir / "scenarios" / "helsinki_centre.yaml").read_text())
    assert list(validator.iter_errors(plan)), "a plan scenario is not a file of this kind"
    assert schema["description"].startswith("A heatmap")


def test_the_default_street_source_is_reported_as_default():
    data = {**MINIMAL, "streets": {"path": "x.pbf"}}
    rows = {r["key"]: r for r in scenario_from_dict(data, base_dir=Path("/base")).assumptions()}
    assert rows["streets.source"]["value"] == "pbf" and rows["streets.source"]["source"] == "default"
    assert rows["streets.path"]["source"] == "scenario"
    rows = {r["key"]: r for r in build(streets__source="pbf").assumptions()}
    assert rows["streets.source"]["source"] == "scenario"
