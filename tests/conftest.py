"""Shared fixtures: the bundled scenario planned once per test session."""

from pathlib import Path

import pytest

from heatmap import settings

BUNDLED_SCENARIO = settings.data_dir / "scenarios" / "helsinki_centre.yaml"


@pytest.fixture(scope="session")
def bundled_scenario():
    from heatmap.scenario import scenario_from_file

    return scenario_from_file(BUNDLED_SCENARIO)


@pytest.fixture(scope="session")
def bundled_plan(bundled_scenario):
    from heatmap.plan import plan_from_scenario

    return plan_from_scenario(bundled_scenario)


@pytest.fixture(scope="session")
def bundled_outputs(bundled_plan, tmp_path_factory) -> Path:
    from heatmap.outputs import write_plan

    out = tmp_path_factory.mktemp("bundled")
    write_plan(bundled_plan, out)
    return out
