"""Set-up files stay consistent (environment.yml lists what pyproject.toml requires); the wheel plans on its own."""

import json
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
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
    assert block[1] == "bash scripts/setup.sh --with-browser --with-qgis --with-postgis && .venv/bin/python -m pytest"
    ci = (ROOT / ".ci" / "run").read_text()
    assert (
        "bash scripts/setup.sh --with-browser --with-qgis --with-postgis\n" in ci and ".venv/bin/python -m pytest" in ci
    )


def _run(cmd, **kwargs):
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kwargs)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))}\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.mark.slow
def test_wheel_installed_outside_the_checkout_plans_the_bundled_scenario(tmp_path):
    """Build the wheel, install it into a fresh venv and plan the bundled scenario from the installed data."""
    uv = Path(sys.executable).with_name("uv")
    assert uv.is_file(), "scripts/setup.sh installs uv into .venv"
    dist = tmp_path / "dist"
    _run([uv, "build", "--wheel", "--out-dir", dist, ROOT], cwd=ROOT)
    (wheel,) = dist.glob("heatmap-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    expected = {
        "heatmap/data/pipes_en253.csv",
        "heatmap/data/helsinki_centre.osm.pbf",
        "heatmap/data/scenarios/helsinki_centre.yaml",
        "heatmap/data/scenarios/helsinki_centre_sources.geojson",
        "heatmap/layer_definitions/pipes.yaml",
        "heatmap/_assets/node_modules/leaflet/dist/leaflet.js",
        "heatmap/_assets/node_modules/leaflet/dist/leaflet.css",
        "heatmap/_assets/node_modules/leaflet/dist/images/marker-icon.png",
    }
    assert expected <= names, expected - names
    assert {f"heatmap/layer_definitions/{p.name}" for p in (ROOT / "layers").glob("*.yaml")} <= names
    assert {f"heatmap/data/{p.name}" for p in (ROOT / "data").glob("*.csv")} <= names

    # The same dependency versions as this environment (from uv's cache), the wheel's own files outside the checkout.
    freeze = _run([uv, "pip", "freeze", "--python", sys.executable]).stdout.splitlines()
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("\n".join(line for line in freeze if not line.lower().startswith(("heatmap", "-e "))))
    venv = tmp_path / "venv"
    _run([uv, "venv", "-q", "--python", sys.executable, venv])
    python = venv / "bin" / "python"
    _run([uv, "pip", "install", "-q", "--python", python, "-c", constraints, wheel])
    where = _run(
        [python, "-c", "from heatmap import settings as s; print(s.data_dir); print(s.layers_dir)"], cwd=tmp_path
    )
    data_dir, layers_dir = (Path(line) for line in where.stdout.splitlines())
    for folder in (data_dir, layers_dir):
        assert venv in folder.parents and ROOT not in folder.parents, folder
    out = tmp_path / "out"
    proc = subprocess.run(
        [venv / "bin" / "heatmap", "plan", data_dir / "scenarios" / "helsinki_centre.yaml", "--out", out],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Status:   ok" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "ok" and summary["counts"]["consumers_connected"] > 100
    assert "L.Icon.Default" in (out / "map.html").read_text() and (out / "plan.gpkg").stat().st_size > 0
