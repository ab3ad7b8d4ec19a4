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
from conftest import LOCAL_SCHEMES, open_map
from shapely.geometry import LineString, Point, box

from heatmap import settings
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
    specs = load_layer_specs()
    return sum(len(frame) for name, frame in layers.items() if name in specs and specs[name].web_map)


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
    assert '"heatmap-banner", map.getContainer()' not in map_text
    banner = "Partial plan: checks fail (<b>velocity</b>, {{ x }})"
    text = unescape_js(webmap.write_map(layers, tmp_path / "map.html", title="T", banner=banner).read_text())
    assert '"heatmap-banner", map.getContainer()' in text
    assert "Partial plan: checks fail (&lt;b&gt;velocity&lt;/b&gt;, &#123;&#123; x &#125;&#125;)" in text


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
    assert "circuit: return" in map_html
    assert map_html.count("no data / other") == 1  # one consumer without annual demand


def test_popups_have_labels_units_and_formatted_values(map_text: str) -> None:
    map_html = map_text
    for text in (
        "Annual demand",
        "Supply temperature at consumer",
        "Pressure gradient",
        "Used by the plan",
        "3,120 kW",  # q_supplied_kw, 0 decimals with a thousands separator
        "18.60 kg/s",
        "2.35 bar",
        "1,234 €",
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


def test_tiles_url_is_the_only_remote_reference(tmp_path: Path, layers) -> None:
    url = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    html = webmap.write_map(layers, tmp_path / "map.html", title="T", tiles=url).read_text(encoding="utf-8")
    assert url in html
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
    shot = Path("/tmp/webmap_check.png") if not consumer_points else tmp_path / "shot.png"
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
        assert bottom_up == ["streets", "consumers", "pipes", "sources"]
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
