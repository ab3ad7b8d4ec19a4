"""Tests of the offline web map (heatmap.maps.webmap): HTML content, assets, and rendering in Chromium."""

from __future__ import annotations

import math
import re
from html import escape
from pathlib import Path
from urllib.parse import urlparse

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from conftest import LOCAL_SCHEMES, artefact, assert_offline, open_map
from shapely.geometry import LineString, Point, box

from heatmap import plan, settings
from heatmap._errors import OutputError
from heatmap.maps import webmap
from heatmap.maps.layers import load_layer_specs

X0, Y0 = 385_800.0, 6_672_000.0  # central Helsinki in EPSG:3067
CRS = "EPSG:3067"


# --- synthetic layers -------------------------------------------------------------------------------


def make_layers(consumer_points: bool = False, seed: int = 1) -> dict[str, gpd.GeoDataFrame]:
    """Small layers with the schemas of the pipeline's outputs, some values missing."""
    rng = np.random.default_rng(seed)

    sources = gpd.GeoDataFrame(
        {
            "source_id": ["S1", "S2"],
            "name": ["Data centre <Kamppi>", "Bakery {waste heat}"],
            "capacity_kw": [5000.0, 800.0],
            "t_supply_c": [80.0, np.nan],
            "q_supplied_kw": [3120.4, 512.0],
            "mdot_kg_per_s": [18.6, 3.05],
            "pump_lift_bar": [2.345, np.nan],
        },
        geometry=[Point(X0, Y0), Point(X0 + 900, Y0 + 450)],
        crs=CRS,
    )

    n_cons = 30
    cx = X0 + rng.uniform(-500, 1200, n_cons)
    cy = Y0 + rng.uniform(-400, 800, n_cons)
    geometry = (
        [Point(x, y) for x, y in zip(cx, cy, strict=True)]
        if consumer_points
        else [box(x - 12, y - 9, x + 12, y + 9) for x, y in zip(cx, cy, strict=True)]
    )
    connected = np.arange(n_cons) % 5 != 0
    consumers = gpd.GeoDataFrame(
        {
            "consumer_id": [f"C{i:03d}" for i in range(n_cons)],
            "name": [None if i % 7 == 0 else f"Building {i}" for i in range(n_cons)],
            "building_type": rng.choice(["residential", "office", "school"], n_cons),
            "annual_demand_mwh": np.r_[[np.nan, 50, 300, 800, 2000, 4000], rng.uniform(20, 3000, n_cons - 6)],
            "peak_load_kw": rng.uniform(10, 900, n_cons),
            "connected": connected,
            "service_length_m": np.where(connected, rng.uniform(5, 60, n_cons), np.nan),
            "service_cost_eur": np.where(connected, rng.uniform(2000, 30000, n_cons), np.nan),
            "dp_bar": np.where(connected, rng.uniform(0.5, 1.5, n_cons), np.nan),
            "t_supply_c": np.where(connected, rng.uniform(74, 80, n_cons), np.nan),
        },
        geometry=geometry,
        crs=CRS,
    )

    n_pipes = 30  # per circuit
    px = X0 + np.linspace(0, 900, n_pipes + 1)
    py = Y0 + 450 * np.sin(np.linspace(0, math.pi / 2, n_pipes + 1))
    dn = rng.choice([25, 40, 65, 100, 150, 250], n_pipes)
    rows, geoms = [], []
    for circuit, offset in (("supply", 0.0), ("return", 4.0)):
        for i in range(n_pipes):
            geoms.append(LineString([(px[i], py[i] + offset), (px[i + 1], py[i + 1] + offset)]))
            mdot = np.nan if i == 3 else 18.0 * (1 - i / n_pipes) + 0.2
            rows.append(
                {
                    "pipe_id": f"{circuit[0].upper()}{i:03d}",
                    "edge_id": i,
                    "source_id": "S1" if i < 20 else "S2",
                    "circuit": circuit,
                    "kind": "service" if i % 6 == 5 else "street",
                    "dn": int(dn[i]),
                    "length_m": float(np.hypot(px[i + 1] - px[i], py[i + 1] - py[i])),
                    "mdot_kg_per_s": mdot,
                    "v_m_per_s": np.nan if i == 3 else 0.4 + i / 50,
                    "r_pa_per_m": 55.0 + i,
                    "dp_bar": 0.0123 * i,
                    "t_in_c": 80.0 - 0.1 * i if circuit == "supply" else 45.0,
                    "t_out_c": 79.9 - 0.1 * i if circuit == "supply" else 44.9,
                    "q_loss_kw": 0.52,
                    "cost_eur": 1234.5 * (i + 1),
                }
            )
    pipes = gpd.GeoDataFrame(rows, geometry=geoms, crs=CRS)

    n_streets = 50
    sx = X0 - 600 + 60 * (np.arange(n_streets) % 25)
    sy = Y0 - 500 + np.where(np.arange(n_streets) < 25, 0.0, 1400.0)
    streets = gpd.GeoDataFrame(
        {
            "edge_id": np.arange(n_streets),
            "name": [None if i % 4 == 0 else f"Katu {i}" for i in range(n_streets)],
            "highway": rng.choice(["residential", "primary", "service"], n_streets),
            "length_m": np.full(n_streets, 60.0),
            "in_plan": np.arange(n_streets) % 3 == 0,
        },
        geometry=[
            LineString([(x, y), (x + 60, y + 20 * (i % 3))]) if i % 2 else LineString([(x, y), (x, y + 700)])
            for i, (x, y) in enumerate(zip(sx, sy, strict=True))
        ],
        crs=CRS,
    )

    junctions = gpd.GeoDataFrame(
        {
            "junction_id": ["J1", "J2"],
            "circuit": ["supply", "return"],
            "p_bar": [6.0, 3.0],
            "t_c": [80.0, 45.0],
        },
        geometry=[Point(X0, Y0), Point(X0 + 5, Y0)],
        crs=CRS,
    )
    return {
        "sources": sources,
        "consumers": consumers,
        "pipes": pipes,
        "streets": streets,
        "junctions": junctions,
    }


def web_feature_count(layers: dict[str, gpd.GeoDataFrame]) -> int:
    """Features the map draws: one per row, but one per trench (``edge_id``) of a layer drawn in pairs."""
    specs = load_layer_specs()
    count = 0
    for name, frame in layers.items():
        if name in specs and specs[name].web_map:
            pair = specs[name].pair
            count += frame[pair.key].nunique() if pair and pair.key in frame else len(frame)
    return count


@pytest.fixture(scope="module")
def layers() -> dict[str, gpd.GeoDataFrame]:
    return make_layers()


@pytest.fixture(scope="module")
def map_file(tmp_path_factory: pytest.TempPathFactory, layers: dict[str, gpd.GeoDataFrame]) -> Path:
    path = tmp_path_factory.mktemp("webmap") / "map.html"
    return webmap.write_map(layers, path, title="Test network <Helsinki>")


@pytest.fixture(scope="module")
def map_html(map_file: Path) -> str:
    return map_file.read_text(encoding="utf-8")


def unescape_js(text: str) -> str:
    """Undo the \\uXXXX escapes of JSON embedded in the page (non-ASCII text, <, >, &)."""
    text = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)
    return text.replace("\\/", "/")


@pytest.fixture(scope="module")
def map_text(map_html: str) -> str:
    return unescape_js(map_html)


# --- HTML content -----------------------------------------------------------------------------------


def test_writes_file_and_logs(tmp_path: Path, layers, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "sub" / "map.html"
    with caplog.at_level("INFO", logger="heatmap.maps.webmap"):
        assert webmap.write_map(layers, path, title="Plan {{ v2 }} {% x %} {#") == path
    assert path.is_file()
    assert "<title>Plan {{ v2 }} {% x %} {#</title>" in path.read_text(encoding="utf-8")
    infos = [r for r in caplog.records if r.name == "heatmap.maps.webmap" and r.levelname == "INFO"]
    assert len(infos) == 1
    assert "streets 50" in infos[0].getMessage() and "junctions" not in infos[0].getMessage()


def test_banner_only_when_asked_and_escaped(tmp_path: Path, layers, map_text: str) -> None:
    assert '"banner": ""' in map_text
    banner = "Partial plan: checks fail (<b>velocity</b>, {{ x }})"
    text = unescape_js(webmap.write_map(layers, tmp_path / "map.html", title="T", banner=banner).read_text())
    assert '"banner": "Partial plan: checks fail (&lt;b&gt;velocity&lt;/b&gt;, {{ x }})"' in text


def test_no_external_assets(map_html: str) -> None:
    assert not re.search(r"<script\b[^>]*\bsrc\s*=", map_html, re.I)
    assert not re.search(r"<link\b[^>]*\bhref\s*=", map_html, re.I)
    assert not re.search(r"@import|url\(\s*['\"]?(?:https?:)?//", map_html, re.I)
    for lib in ("jquery", "bootstrap", "font-awesome", "fontawesome", "awesome-markers", "cdn."):
        assert lib not in map_html.lower()
    # The only absolute URLs left are Leaflet's own: its attribution link and the SVG namespace.
    urls = set(re.findall(r"https?://[^\s\"'<>()]+", map_html))
    assert urls <= {"https://leafletjs.com", "http://www.w3.org/2000/svg"}, urls
    assert 'version="1.9.4"' in map_html  # Leaflet inlined from node_modules
    assert "url(images/" not in map_html and "data:image/png;base64," in map_html


def test_title_attribution_and_legend(map_text: str) -> None:
    map_html = map_text
    assert "<title>Test network &lt;Helsinki&gt;</title>" in map_html
    assert "© OpenStreetMap contributors" in map_html
    specs = load_layer_specs()
    for name in ("sources", "consumers", "pipes", "streets"):
        for _, label in specs[name].legend:
            assert escape(label) in map_html, label
    assert "Junctions" not in map_html
    assert "one line per trench: supply and return in its popup" in map_html  # not a dashed return any more
    assert "circuit: return" not in map_html
    assert map_html.count("no data / other") == 1  # one consumer without annual demand


def test_popups_have_labels_units_and_formatted_values(map_text: str) -> None:
    map_html = map_text
    for text in (
        "Annual heat demand",
        "Supply temperature arriving at the building",
        "Pressure gradient",
        "Used by the plan",
        "3,120 kW",  # q_supplied_kw, 0 decimals with a thousands separator
        "18.60 kg/s",
        "2.35 bar",
        "2,469 €",  # cost_eur of a trench: its supply and return pipe (1,234.5 € each) added up
        "Cost (supply + return)",
        "80.0 °C",
    ):
        assert text in map_html, text
    data = map_html.split("</body>")[1]  # the map's script (Leaflet itself is in the head)
    assert not re.search(r"[:,\[]\s*-?(?:NaN|Infinity)\b", data)  # not valid JSON
    assert '"nan"' not in data.lower() and '"none"' not in data.lower()
    assert "–" in map_html  # missing values
    # HTML in values is escaped; braces (Jinja syntax to folium) are kept
    assert "Data centre &lt;Kamppi&gt;" in map_html and "<Kamppi>" not in map_html
    assert "Bakery {waste heat}" in map_html


def test_missing_assets_raise_output_error(tmp_path: Path, layers, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "web_assets_dir", tmp_path / "nothing_here")
    with pytest.raises(OutputError, match=r"npm ci --prefix heatmap/_assets"):
        webmap.write_map(layers, tmp_path / "map.html", title="T")
    assert not (tmp_path / "map.html").exists()


def test_tiles_url_is_the_only_remote_reference(tmp_path: Path, layers, map_html: str) -> None:
    url = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    html = webmap.write_map(layers, tmp_path / "map.html", title="T", tiles=url).read_text(encoding="utf-8")
    assert url in html and "L.tileLayer(" in html
    assert "L.tileLayer(" not in map_html  # the default map: no base map, nothing to fetch
    for text in (html, map_html):  # the same panels either way
        assert '"colorBy": "<b>Colour pipes by</b>' in unescape_js(text)
        assert '"legend": "<summary>Legend</summary>' in unescape_js(text)
    assert not re.search(r"<script\b[^>]*\bsrc\s*=|<link\b[^>]*\bhref\s*=", html, re.I)


def test_only_web_map_layers_and_unknown_layers_skipped(tmp_path: Path, layers) -> None:
    extra = dict(layers, buildings=layers["consumers"])
    html = webmap.write_map(extra, tmp_path / "map.html", title="T").read_text(encoding="utf-8")
    assert html.count("L.geoJson(") == 4
    assert html.count('{"type":"Feature",') == web_feature_count(layers)


def test_empty_and_missing_geometries(tmp_path: Path) -> None:
    layers = make_layers()
    layers["consumers"].loc[0, "geometry"] = None
    layers["sources"] = layers["sources"].iloc[0:0]
    html = webmap.write_map(layers, tmp_path / "map.html", title="T").read_text(encoding="utf-8")
    assert html.count("L.geoJson(") == 3
    assert html.count('{"type":"Feature",') == web_feature_count(layers) - 1


def test_coordinates_rounded(map_html: str) -> None:
    coords = re.findall(r"\[(\d+\.\d+),\s*(\d+\.\d+)\]", map_html)
    assert len(coords) > 200
    assert all(len(c.split(".")[1]) <= 6 for pair in coords for c in pair)


# --- browser ----------------------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.parametrize("consumer_points", [False, True], ids=["footprints", "points"])
def test_map_renders_offline_in_chromium(browser, tmp_path: Path, consumer_points: bool) -> None:
    layers = make_layers(consumer_points=consumer_points)
    path = webmap.write_map(layers, tmp_path / "map.html", title="Heat network — test")
    shot = artefact(f"synthetic_map_{'points' if consumer_points else 'footprints'}.png")
    context, page, errors, requests = open_map(browser, path, screenshot=shot)
    try:
        n_drawn = page.locator(".leaflet-overlay-pane path.leaflet-interactive").count()
        assert n_drawn == web_feature_count(layers)
        assert page.locator(".heatmap-legend").is_visible()
        assert page.locator(".leaflet-control-layers-overlays label").count() == 4
        assert "OpenStreetMap contributors" in page.locator(".leaflet-control-attribution").inner_text()

        # Click the first source (top layer): its popup shows labelled values with units.
        page.locator(".leaflet-heatmap-sources-pane path.leaflet-interactive").first.click()
        popup = page.locator(".leaflet-popup-content")
        popup.wait_for()
        text = popup.inner_text()
        assert "Capacity" in text and "5,000 kW" in text and "Supply temperature" in text

        # A street below the other layers stays clickable through the panes above it.
        page.keyboard.press("Escape")
        street = page.locator(".leaflet-heatmap-streets-pane path.leaflet-interactive").nth(1)
        street.click(force=True)
        page.wait_for_function(
            "document.querySelector('.leaflet-popup-content')"
            " && document.querySelector('.leaflet-popup-content').innerText.includes('OSM highway')"
        )

        assert errors == []
        assert requests, "no request recorded"
        for url in requests:
            parsed = urlparse(url)
            assert parsed.scheme in LOCAL_SCHEMES, url
            assert parsed.netloc in ("", "localhost"), url
    finally:
        context.close()


@pytest.mark.browser
def test_layer_toggle_keeps_order(browser, map_file: Path, layers) -> None:
    context, page, errors, _ = open_map(browser, map_file)
    try:
        label = page.locator(".leaflet-control-layers-overlays label", has_text="Candidate routes")
        label.locator("input").uncheck()
        n_streets = len(layers["streets"])
        assert page.locator(".leaflet-overlay-pane path.leaflet-interactive").count() == (
            web_feature_count(layers) - n_streets
        )
        label.locator("input").check()
        specs = load_layer_specs()
        bottom_up = sorted(["streets", "pipes", "consumers", "sources"], key=lambda n: specs[n].draw_order)
        assert bottom_up == ["streets", "pipes", "consumers", "sources"]  # buildings above pipes: a click finds them
        z = page.evaluate(
            "names => names.map("
            "n => +getComputedStyle(document.querySelector('.leaflet-heatmap-' + n + '-pane')).zIndex)",
            bottom_up,
        )
        assert z == sorted(z) and len(set(z)) == 4
        assert errors == []
    finally:
        context.close()


def test_nan_only_columns_and_numeric_formatting() -> None:
    spec = load_layer_specs()["pipes"]
    pf = next(p for p in spec.popup if p.field == "dp_bar")
    out = webmap._popup_values(pd.Series([np.nan, -0.0001, 1234.5678, None]), pf)
    assert list(out) == ["–", "0.000 bar", "1,234.568 bar", "–"]
    dn = next(p for p in spec.popup if p.field == "dn")
    assert list(webmap._popup_values(pd.Series([100, 250]), dn)) == ["100", "250"]
    conn = next(p for p in load_layer_specs()["consumers"].popup if p.field == "connected")
    assert list(webmap._popup_values(pd.Series([True, False, None], dtype=object), conn)) == [
        "yes",
        "no",
        "–",
    ]


# --- the plan's map: panels, clicks, key figures (the bundled Helsinki plan and the KIP park plan) ------------

KIP_SCENARIO = settings.data_dir / "scenarios" / "kip.yaml"
VIEWPORTS = [(800, 600), (1280, 800)]

# Every visible control (title and key figures, layers, colour switch, legend, zoom, scale, attribution).
PANELS_JS = """() => Array.from(document.querySelectorAll('.leaflet-control'))
    .filter(e => e.offsetWidth > 0 && e.offsetHeight > 0)
    .map(e => { const r = e.getBoundingClientRect();
        return {name: e.className, l: r.left, t: r.top, r: r.right, b: r.bottom}; })"""

# Every drawn feature: its pane, its size on screen and a point where a click reaches it (null if none).
FEATURES_JS = """() => { const map = Object.values(window).find(v => v instanceof L.Map), out = [];
    map.eachLayer(l => { if (!l.feature || !l._path) return;
        const p = l._path, m = p.getScreenCTM(), n = p.getTotalLength(), pts = [], bb = p.getBBox();
        pts.push({x: bb.x + bb.width / 2, y: bb.y + bb.height / 2});
        for (let i = 0; i <= 20; i++) pts.push(p.getPointAtLength(n * i / 20));
        let hit = null; const cover = new Set();
        for (const q of pts) {
            const s = new DOMPoint(q.x, q.y).matrixTransform(m), e = document.elementFromPoint(s.x, s.y);
            if (e === p) { hit = [s.x, s.y]; break; }
            const pane = e && e.closest('.leaflet-pane'), control = e && e.closest('.leaflet-control');
            cover.add(control ? 'control' : pane && pane.className.includes('heatmap-') ?
                pane.className.match(/heatmap-([a-z_]+)-pane/)[1] : 'other'); }
        const r = p.getBoundingClientRect(), pr = l.feature.properties;
        out.push({pane: l.options.pane.replace('heatmap-', ''), size: Math.max(r.width, r.height), hit: hit,
            cover: Array.from(cover),
            centre: [(r.left + r.right) / 2, (r.top + r.bottom) / 2],
            id: pr.consumer_id || pr.source_id || pr.edge_id || pr['pipe_id|supply'] || pr.pipe_id || ''}); });
    return out; }"""


def overlaps(a: dict, b: dict) -> bool:
    return a["l"] < b["r"] and b["l"] < a["r"] and a["t"] < b["b"] and b["t"] < a["b"]


def assert_panels_apart(page, width: int, height: int) -> list[dict]:
    """Assert that no two controls overlap and that every one lies inside the map; return them."""
    panels = page.evaluate(PANELS_JS)
    assert len(panels) >= 5
    for i, a in enumerate(panels):
        assert a["l"] >= 0 and a["t"] >= 0 and a["r"] <= width and a["b"] <= height, a
        for b in panels[i + 1 :]:
            assert not overlaps(a, b), (a, b)
    return panels


@pytest.fixture(scope="module")
def kip_outputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The KIP park plan (the KIP study's network), planned as `heatmap plan data/scenarios/kip.yaml` does."""
    from conftest import run_cli

    out = tmp_path_factory.mktemp("kip") / "out"
    proc = run_cli("plan", KIP_SCENARIO, "--out", out, "-q")
    assert proc.returncode == 0, proc.output
    return out


@pytest.fixture(params=["helsinki", "kip"])
def plan_out(request: pytest.FixtureRequest) -> tuple[str, Path]:
    """The output folder of the bundled Helsinki plan and of the KIP park plan."""
    name = request.param
    return name, request.getfixturevalue("bundled_outputs" if name == "helsinki" else "kip_outputs")


def open_details(page) -> None:
    """Unfold every panel (key figures, what they rest on, glossary, legend) and let them lay out."""
    page.evaluate("() => document.querySelectorAll('.heatmap-panel details').forEach(d => { d.open = true; })")
    page.wait_for_timeout(100)  # the toggle events are asynchronous


@pytest.mark.browser
@pytest.mark.parametrize("viewport", VIEWPORTS, ids=lambda v: f"{v[0]}x{v[1]}")
def test_plan_map_panels_never_cover_each_other_or_the_buildings(browser, plan_out, viewport) -> None:
    name, out = plan_out
    width, height = viewport
    shot = artefact(f"plan_map_{name}_{width}x{height}.png")
    context, page, errors, requests = open_map(browser, out / "map.html", screenshot=shot, viewport=viewport)
    try:
        print(f"screenshot: {shot}")
        panels = assert_panels_apart(page, width, height)
        # the view is fitted into the room the panels leave: no source or building drawn under one
        features = page.evaluate(FEATURES_JS)
        for f in features:
            if f["pane"] in ("sources", "consumers", "left_out"):
                x, y = f["centre"]
                covering = [p for p in panels if p["l"] <= x <= p["r"] and p["t"] <= y <= p["b"]]
                assert not covering, (f, covering)
        # small screens start with the key figures and the legend folded; every panel unfolded, none overlaps
        small = width < 1000 or height < 700
        assert page.locator(".heatmap-figures").evaluate("d => d.open") is (not small)
        open_details(page)
        page.screenshot(path=str(artefact(f"plan_map_{name}_{width}x{height}_unfolded.png")))
        assert_panels_apart(page, width, height)
        assert errors == []
        assert_offline(requests)
    finally:
        context.close()


@pytest.mark.browser
def test_plan_map_every_feature_can_be_clicked_and_its_popup_is_never_covered(browser, plan_out) -> None:
    name, out = plan_out
    width, height = 800, 600
    context, page, errors, _ = open_map(browser, out / "map.html", viewport=(width, height))
    try:
        features = page.evaluate(FEATURES_JS)
        panes = {f["pane"] for f in features}
        assert {"sources", "consumers", "pipes"} <= panes
        layer_names = page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
        layer_names = [n.strip() for n in layer_names]
        words = {
            "sources": "heat sources",
            "consumers": "connected consumers",
            "pipes": "pipes",
            "left_out": "not connected",
            "streets": "candidate routes",
        }
        above = {
            "streets": {"pipes", "left_out", "consumers", "sources"},
            "pipes": {"pipes", "left_out", "consumers", "sources"},
        }
        for pane in panes:
            big = [f for f in features if f["pane"] == pane and f["size"] >= 20]
            missed = [f for f in big if not f["hit"]]
            # a source or building of 20 px or more always; a line always, but where another pipe or a building lies
            # on it at this zoom (a candidate route along the other carriageway of a street the plan uses; a short
            # trench between a junction and a building): never under a panel
            if pane in ("sources", "consumers", "left_out"):
                assert not missed, missed
            else:
                assert all(set(f["cover"]) <= above[pane] for f in missed), missed
                assert len(missed) <= max(1, 0.02 * len(big)), missed
        # a click on a source or consumer opens its own popup (not a pipe's): every one of them on the park plan
        targets = [f for f in features if f["hit"] and f["pane"] in ("sources", "consumers")]
        targets = targets if name == "kip" else targets[:3] + [min(targets, key=lambda f: f["hit"][0] + f["hit"][1])]
        for pane in panes - {"sources", "consumers"}:  # and one feature of every other layer
            targets.append(next(f for f in features if f["pane"] == pane and f["hit"]))
        for target in targets:
            page.reload()  # the view as it opens (a popup moved clear of the panels pans the map)
            page.wait_for_selector("[data-heatmap-ready]")
            hit = next(f for f in page.evaluate(FEATURES_JS) if f["id"] == target["id"] and f["pane"] == target["pane"])
            assert hit["hit"] == target["hit"], target
            page.mouse.click(*hit["hit"])
            popup = page.locator(".leaflet-popup")
            popup.wait_for()
            caption = page.locator(".leaflet-popup-content .caption").inner_text()
            assert caption in layer_names and words[target["pane"]] in caption.lower(), (target, caption)
            assert str(target["id"]) in page.locator(".leaflet-popup-content").inner_text()
            if target["pane"] == "pipes":  # one trench, both circuits
                head = page.locator(".leaflet-popup-content tr.head").inner_text()
                assert "Supply" in head and "Return" in head
            box = popup.bounding_box()
            rect = {"l": box["x"], "t": box["y"], "r": box["x"] + box["width"], "b": box["y"] + box["height"]}
            assert rect["l"] >= 0 and rect["t"] >= 0 and rect["r"] <= width and rect["b"] <= height, rect
            for panel in page.evaluate(PANELS_JS):
                assert not overlaps(rect, panel), (target, panel)
            page.locator(".leaflet-popup-close-button").click()
            page.locator(".leaflet-popup").wait_for(state="detached")
        page.screenshot(path=str(artefact(f"plan_map_{name}_after_clicks.png")))
        assert errors == []
    finally:
        context.close()


@pytest.mark.browser
def test_pipes_coloured_by_network_or_dn(browser, bundled_outputs: Path) -> None:
    pipes = gpd.read_file(bundled_outputs / "plan.gpkg", layer="pipes")
    assert pipes.source_id.nunique() == 2  # the bundled plan: two networks, one per source
    context, page, errors, _ = open_map(browser, bundled_outputs / "map.html")
    try:
        strokes = (
            "() => Array.from(document.querySelectorAll('.leaflet-heatmap-pipes-pane path'))"
            ".map(p => p.getAttribute('stroke'))"
        )
        by_dn = set(page.evaluate(strokes))
        assert by_dn <= {c for c, _ in load_layer_specs()["pipes"].legend}
        page.locator(".heatmap-colorby input[value=alt]").check()
        by_network = set(page.evaluate(strokes))
        assert by_network == set(webmap._QUALITATIVE[:2])
        open_details(page)
        assert page.locator(".heatmap-legend .heatmap-alt").is_visible()
        assert not page.locator(".heatmap-legend .heatmap-main").is_visible()
        assert "S1: Excess-heat plant (illustrative)" in page.locator(".heatmap-legend").inner_text()
        page.screenshot(path=str(artefact("plan_map_helsinki_by_network.png")))
        page.locator(".heatmap-colorby input[value=main]").check()
        assert set(page.evaluate(strokes)) == by_dn
        assert errors == []
    finally:
        context.close()


@pytest.mark.browser
def test_sources_labelled_with_name_role_company_and_heat(browser, plan_out) -> None:
    _, out = plan_out
    sources = gpd.read_file(out / "plan.gpkg", layer="sources")
    context, page, errors, _ = open_map(browser, out / "map.html")
    try:
        labels = page.locator(".heatmap-label").all_inner_texts()
        assert len(labels) == len(sources)
        for s in sources.itertuples():
            label = next(t for t in labels if t.startswith(s.name))
            assert s.role.replace("_", " ") in label and s.company in label
            assert f"{s.heat_mwh_per_a:,.0f} MWh/a" in label
        assert errors == []
    finally:
        context.close()


def test_sources_heat_over_the_year_adds_up(plan_out) -> None:
    """Without a year: each network's consumers' demand + its losses; with one: the heat fed in over the year."""
    import json

    name, out = plan_out
    s = json.loads((out / "summary.json").read_text())
    heat = gpd.read_file(out / "plan.gpkg", layer="sources").heat_mwh_per_a
    f = s["figures"]
    if name == "helsinki":
        total = f["heat_delivered_mwh_per_a"] + f["heat_losses_mwh_per_a"]
    else:
        total = s["operation"]["totals_mwh_per_a"]["fed_in_by_sources_mwh"]
    assert heat.sum() == pytest.approx(total, rel=1e-9)


def test_left_out_layer_names_every_building_not_connected_with_why(plan_out) -> None:
    import json

    import pyogrio

    name, out = plan_out
    s = json.loads((out / "summary.json").read_text())
    gpkg = out / "plan.gpkg"
    left = gpd.read_file(gpkg, layer="left_out")
    consumers = gpd.read_file(gpkg, layer="consumers")
    assert pyogrio.read_info(gpkg, layer="left_out")["crs"] == "EPSG:3067"
    excluded = {str(i): key for key, ids in s["excluded_consumers"].items() for i in ids}
    assert sorted(left.consumer_id) == sorted(excluded)  # every one listed in summary.json, no other
    assert (left.reason_key == left.consumer_id.map(excluded)).all()
    reasons = {c.value for c in load_layer_specs()["left_out"].color.classes}
    assert set(left.reason) <= reasons and all(len(str(w)) > 10 for w in left.why)
    assert not set(left.consumer_id) & set(consumers.consumer_id[consumers.connected])
    if name == "helsinki":  # the bundled plan: 385 connected, 89 left out (27 too small, 62 with no heat demand)
        assert left.reason.value_counts().to_dict() == {"no_heat_demand": 62, "too_small": 27}
        # an OSM building=yes said in words (its popup read "Building type yes")
        assert "yes" not in set(left.building_type) and (left.building_type == plan.UNTAGGED_USE).sum() > 0
        assert not left.geometry.is_empty.any() and left.geom_type.isin(["Polygon", "MultiPolygon"]).all()
    # the legend lists the reasons the layer holds, no other
    page = unescape_js((out / "map.html").read_text(encoding="utf-8"))
    for category in load_layer_specs()["left_out"].color.classes:
        assert (escape(category.label) in page) == (category.value in set(left.reason)), category.label
    panel = dict(webmap.plan_panel(s).rows)
    assert (
        panel["Consumers connected"] == f"{consumers.connected.sum():,d} of {consumers.connected.sum() + len(left):,d}"
    )
    # the terminal says the same: of every consumer and building given, not of those left after the first filters
    from heatmap.io.outputs import format_summary

    assert s["counts"]["consumers_given"] == consumers.connected.sum() + len(left)
    line = next(x for x in format_summary(s).splitlines() if x.startswith("Consumers connected"))
    assert line.split()[-3:] == [f"{consumers.connected.sum():,d}", "of", f"{s['counts']['consumers_given']:,d}"]


def test_key_figures_come_from_the_summary_with_the_prices_they_rest_on(plan_out) -> None:
    import json

    _, out = plan_out
    s = json.loads((out / "summary.json").read_text())
    f = s["figures"]
    panel = webmap.plan_panel(s)
    rows = dict(panel.rows)
    assert rows["Status"] == "ok: every check holds"
    assert rows["Capex (investment)"] == f"{f['capex_eur'] / 1e6:,.2f} M€"
    assert rows["LCOH (cost of heat)"] == f"{f['lcoh_eur_per_mwh']:,.1f} €/MWh"
    assert rows["NPV (over the lifetime)"] == f"{f['npv_eur'] / 1e6:,.2f} M€"
    assert rows["Heat delivered"] == f"{f['heat_delivered_mwh_per_a']:,.0f} MWh/a"
    assert rows["Heat losses"].endswith(f"({100 * f['heat_losses_share']:.1f} %)")
    rests_on = next(n for n in panel.notes if n.startswith("NPV and LCOH rest on"))
    for o in s["economics"]["price_origins"]["npv_eur"] + s["economics"]["price_origins"]["lcoh_eur_per_mwh"]:
        assert f"{o['key']} = " in rests_on
    assert panel.alerts == ()
    html_text = (out / "map.html").read_text(encoding="utf-8")
    assert unescape_js(json.dumps(rows["Capex (investment)"])[1:-1]) in unescape_js(html_text)


def test_partial_plan_key_figures_name_the_failed_checks() -> None:
    summary = {
        "status": "partial: checks failed",
        "failed_checks": ["velocity", "consumer_dp"],
        "violations": [{"check": "velocity"}, {"check": "velocity"}, {"check": "consumer_dp"}],
        "counts": {"consumers": 3, "consumers_connected": 2, "consumers_given": 4},
        "excluded_consumers": {"below_min_annual_demand": ["a"], "no_path_to_source": ["b"]},
        "figures": {"capex_eur": float("nan")},
    }
    panel = webmap.plan_panel(summary)
    assert panel.alerts == ("Checks that fail: velocity (2), consumer_dp (1) (each violation in summary.json)",)
    rows = dict(panel.rows)
    assert rows["Consumers connected"] == "2 of 4" and rows["Capex (investment)"] == "–"
