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
    assert rows["economics.interest_rate"]["value"] == 0.03


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
        ({"temperatures__return_c": 90}, r"must be below 'temperatures.supply_c'"),
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


def test_bundled_scenario_is_valid(bundled_scenario):
    assert bundled_scenario.streets.path.is_file()
    assert bundled_scenario.consumers.osm_buildings
