"""Shared fixtures: the bundled scenario planned once per test session."""

import os
from pathlib import Path
from urllib.parse import urlparse

import pytest
from hypothesis import settings as hypothesis_settings

from heatmap import settings

# In CI the property tests draw the same examples every run (a red CI then means a change broke something);
# elsewhere they explore new examples each run.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

BUNDLED_SCENARIO = settings.data_dir / "scenarios" / "helsinki_centre.yaml"


def write_scenario(folder: Path, extra_text: str = "", **changes) -> Path:
    """The bundled scenario with changes (``section__key``; ``None`` drops a key) and raw YAML appended.

    Its data files are referred to absolutely, so the scenario can be written into any folder.
    """
    import yaml

    data = yaml.safe_load(BUNDLED_SCENARIO.read_text())
    data["streets"]["path"] = str(settings.data_dir / "helsinki_centre.osm.pbf")
    data["sources"]["path"] = str(BUNDLED_SCENARIO.parent / "helsinki_centre_sources.geojson")
    for key, value in changes.items():
        section, name = key.split("__")
        if value is None:
            data[section].pop(name, None)
        else:
            data.setdefault(section, {})[name] = value
    path = folder / "scenario.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False) + extra_text)
    return path


def run_cli(*args):
    """Run the command line in this process (fast); the click result, with ``returncode`` as a process has."""
    from click.testing import CliRunner

    from heatmap.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    result.returncode = result.exit_code
    return result


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
    from heatmap.io.outputs import write_plan

    out = tmp_path_factory.mktemp("bundled")
    write_plan(bundled_plan, out)
    return out


KIP_STUDY = settings.data_dir / "scenarios" / "kip.yaml"


def kip_study_file(folder: Path, edit) -> Path:
    """Write the bundled KIP study into ``folder``, its data paths absolute, its mapping changed by ``edit``."""
    import yaml

    text = KIP_STUDY.read_text(encoding="utf-8").replace("../kip/", f"{KIP_STUDY.parents[1] / 'kip'}/")
    data = yaml.safe_load(text)
    edit(data)
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


MATCHING_SCENARIO = Path(__file__).parent / "data" / "matching_scenario.yaml"


@pytest.fixture(scope="session")
def kip_study_out(tmp_path_factory) -> tuple[Path, str]:
    """``heatmap study`` on the bundled KIP study, once per session: its output folder and what it printed."""
    out = tmp_path_factory.mktemp("kip_study") / "out"
    result = run_cli("study", KIP_STUDY, "--out", out)
    assert result.exit_code == 0, result.output
    return out, result.output


@pytest.fixture(scope="session")
def concepts_out(tmp_path_factory) -> Path:
    """``heatmap concepts`` on the bundled KIP study (its network planned with it), once per session."""
    out = tmp_path_factory.mktemp("concepts") / "out"
    proc = run_cli("concepts", KIP_STUDY, "--out", out, "-q")
    assert proc.returncode == 0, proc.output
    return out


@pytest.fixture(scope="session")
def matches_out(tmp_path_factory) -> Path:
    """``heatmap matches`` on the standalone matching scenario of the tests, once per session."""
    out = tmp_path_factory.mktemp("matches") / "out"
    proc = run_cli("matches", MATCHING_SCENARIO, "--out", out, "-q")
    assert proc.returncode == 0, proc.output
    return out


@pytest.fixture(scope="session")
def bundled_demand(tmp_path_factory) -> Path:
    """``heatmap demand`` on the bundled OSM extract with a year of outdoor temperature, once per session."""
    import numpy as np
    import pandas as pd

    out = tmp_path_factory.mktemp("demand")
    temperatures = out.parent / "t_out.csv"
    days = np.arange(365)
    daily = 5.0 - 15.0 * np.cos(2 * np.pi * (days - 15) / 365)
    time = pd.date_range("2023-01-01", periods=8760, freq="h")
    pd.DataFrame({"time": time, "t_out_c": np.repeat(daily, 24)}).to_csv(temperatures, index=False)
    proc = run_cli("demand", settings.data_dir / "helsinki_centre.osm.pbf", "--out", out, "--temperatures",
                   temperatures, "-q")  # fmt: skip
    assert proc.returncode == 0, proc.output
    return out


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
LOCAL_SCHEMES = {"file", "data", "blob", "about"}


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by playwright; ``None`` if it is missing (the tests then fail)."""
    if not CHROMIUM.is_file():
        yield None
        return
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        yield None
        return
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


ARTEFACTS = Path(__file__).parent / "artefacts"
"""Where the browser tests keep their screenshots (git-ignored; kept after the run for a look)."""


def artefact(name: str) -> Path:
    """Return the path of a test artefact (its folder created)."""
    ARTEFACTS.mkdir(exist_ok=True)
    return ARTEFACTS / name


def open_map(browser, path: Path, screenshot: Path | None = None, viewport: tuple[int, int] = (1280, 800)):
    """Open the map in a fresh context; return the page and what it logged and requested."""
    if browser is None:
        pytest.fail(
            f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium) "
            "and the playwright package (pip install playwright; no `playwright install` needed)"
        )
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda req: requests.append(req.url))
    page.goto(path.resolve().as_uri(), wait_until="load")
    page.wait_for_selector(".leaflet-overlay-pane path.leaflet-interactive")
    if page.locator(".heatmap-info").count():  # a map with its panels: laid out and fitted
        page.wait_for_selector("[data-heatmap-ready]")
    if screenshot is not None:
        page.screenshot(path=str(screenshot))
    return context, page, errors, requests


def assert_offline(requests: list[str]) -> None:
    """Assert that no request left the machine (only file:, data:, blob:, about: URLs)."""
    assert requests, "no request recorded"
    for url in requests:
        parsed = urlparse(url)
        assert parsed.scheme in LOCAL_SCHEMES and parsed.netloc in ("", "localhost"), url
