"""Set-up files stay consistent: environment.yml lists what pyproject.toml requires."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).parent.parent


def names(requirements):
    return {re.split(r"[<>=!~ \[]", r, maxsplit=1)[0].lower() for r in requirements}


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    required = names(project["dependencies"]) | names(project["optional-dependencies"]["test"])
    conda = names(
        d for d in yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"] if isinstance(d, str)
    ) - {"python", "nodejs"}
    assert conda == required


def test_every_dependency_has_a_lower_bound():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for req in project["dependencies"] + project["optional-dependencies"]["test"]:
        assert ">=" in req, req


def test_readme_starts_with_the_two_commands_ci_runs():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("```bash", 1)[1].split("```", 1)[0].strip().splitlines()
    assert block[0].startswith("bash scripts/setup.sh && .venv/bin/heatmap plan data/scenarios/")
    assert block[1] == "bash scripts/setup.sh --with-browser && .venv/bin/python -m pytest"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/setup.sh --with-browser" in ci and ".venv/bin/python -m pytest" in ci
