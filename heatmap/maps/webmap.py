"""Interactive web map (one self-contained HTML file) of a planned heat network.

The map is drawn with folium/Leaflet, but unlike folium's default output it needs no internet: every
asset folium would load from a CDN (Leaflet, jQuery, Bootstrap, Font Awesome, awesome-markers) is
dropped, and the one library the map needs, Leaflet, is inlined from the npm package installed in
:data:`heatmap.settings.web_assets_dir` (``npm ci --prefix heatmap/_assets``), its images embedded as
``data:`` URIs. Without a tile URL the map shows only the vector layers; with one it adds the tiles
(and then needs the internet only for them).

Every layer's look (colours, widths, dashes, popup fields, legend) comes from its declarative
definition in ``layers/`` (:mod:`heatmap.maps.layers`), the same one the QGIS styles are made from.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import folium
import folium.raster_layers
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, Figure, MacroElement
from folium.template import Template
from folium.utilities import JsCode

from heatmap import settings
from heatmap._errors import OutputError
from heatmap.maps.layers import LayerSpec, PopupField, load_layer_specs

logger = logging.getLogger(__name__)

#: Decimals kept of the WGS84 coordinates (1e-6 degrees is about 0.1 m).
_COORD_DECIMALS = 6
#: What a popup shows for a missing value.
_MISSING = "–"
#: Legend label of the features that fall in no class of their layer (drawn in ``unmatched_color``).
_NO_CLASS_LABEL = "no data / other"
#: Hidden per-feature style properties (read by the layer's JavaScript style function).
_STYLE_PROPS = {"color": "_color", "weight": "_weight", "dash": "_dash"}
_MAP_MAX_ZOOM = 22
#: Colours of a categorical second colouring (ColorBrewer Dark2), assigned in order of the sorted values.
_QUALITATIVE = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666")

_NPM_HINT = "run `npm ci --prefix heatmap/_assets` (needs Node.js and npm) to install Leaflet"
# Anything in the page that would make the browser fetch a script, stylesheet, font or image.
_EXTERNAL_ASSET = re.compile(
    r"""<script\b[^>]*\bsrc\s*=|<link\b[^>]*\bhref\s*=|@import\b|url\(\s*['"]?(?:https?:)?//""",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _Assets:
    """Leaflet's JavaScript and CSS (with embedded images), ready to inline."""

    js: str
    css: str
    icons: dict[str, str]


class _OfflineMap(folium.Map):
    """A folium map that links no CDN asset (Leaflet is inlined separately)."""

    default_js: list[tuple[str, str]] = []
    default_css: list[tuple[str, str]] = []


class _RawElement(Element):
    """An element whose text is written as is (not parsed as a Jinja template)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self._text = text

    def render(self, **kwargs: Any) -> str:
        return self._text


class _OverlayPanes(MacroElement):
    """One Leaflet pane per layer inside the overlay pane, so the drawing order survives toggling."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function (map) {
            var overlay = map.getPane("overlayPane");
            {%- for name, z in this.panes %}
            map.createPane({{ name|tojson }}, overlay).style.zIndex = {{ z }};
            {%- endfor %}
        })({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self, panes: list[tuple[str, int]]) -> None:
        super().__init__()
        self._name = "OverlayPanes"
        self.panes = panes


_CHROME_CSS = """
.leaflet-container { background: #f4f3ef; font: 13px/1.4 "Helvetica Neue", Arial, Helvetica, sans-serif; }
.leaflet-overlay-pane .leaflet-pane > svg { pointer-events: none; }
.heatmap-panel { padding: 6px 10px; border-radius: 5px; background: rgba(255, 255, 255, 0.94);
    box-shadow: 0 1px 5px rgba(0, 0, 0, 0.4); font-size: 12px; line-height: 1.35; overflow-y: auto;
    box-sizing: border-box; max-width: 400px; }
.heatmap-panel summary { cursor: pointer; font-weight: bold; font-size: 13px; }
.heatmap-panel .heatmap-notes summary { font-size: 12px; font-weight: 600; }
.heatmap-panel details { margin-top: 4px; }
.heatmap-panel details[open] > summary { margin-bottom: 4px; }
.heatmap-title { font-size: 15px; font-weight: bold; }
.heatmap-banner { margin-top: 4px; padding: 4px 8px; border-radius: 4px; background: #b2182b; color: #ffffff;
    font-weight: bold; }
.heatmap-figures table { border-collapse: collapse; }
.heatmap-figures th { text-align: left; font-weight: 600; padding: 1px 10px 1px 0; vertical-align: top; }
.heatmap-figures td { padding: 1px 0; }
.heatmap-figures .note { color: #444444; margin: 4px 0 0; }
.heatmap-figures .alert { color: #b2182b; font-weight: bold; margin: 4px 0 0; }
.heatmap-glossary dt { font-weight: 600; margin-top: 3px; }
.heatmap-glossary dd { margin: 0 0 0 8px; }
.heatmap-legend h4 { margin: 6px 0 3px; font-size: 12px; }
.heatmap-legend .row { display: flex; align-items: center; gap: 6px; margin: 1px 0; }
.heatmap-legend svg { flex: none; }
.heatmap-colorby label { display: block; }
.heatmap-alt { display: none; }
.heatmap-mode-alt .heatmap-alt { display: block; }
.heatmap-mode-alt .heatmap-main { display: none; }
.heatmap-popup .leaflet-popup-content { max-height: 55vh; overflow-y: auto; margin: 10px 14px; font-size: 12px;
    line-height: 1.35; }
.heatmap-popup .caption { font-weight: bold; font-size: 13px; margin-bottom: 3px; }
.heatmap-popup th { text-align: left; font-weight: 600; padding: 1px 10px 1px 0; vertical-align: top;
    max-width: 190px; }
.heatmap-popup td { padding: 1px 8px 1px 0; vertical-align: top; min-width: 60px; max-width: 260px; }
.heatmap-popup tr.head th { font-weight: bold; border-bottom: 1px solid #cccccc; }
.heatmap-label { font-size: 11px; line-height: 1.25; padding: 2px 5px; background: rgba(255, 255, 255, 0.85);
    white-space: normal; width: max-content; max-width: 220px; }
.leaflet-control-layers { font-size: 12px; line-height: 1.35; box-sizing: border-box; }
.leaflet-control-layers label { margin: 1px 0; }
"""

# The map's panels: every one a Leaflet control, so the corners stack them without overlap; their widths and
# heights follow the map's size; the view is fitted into the room they leave; a popup is moved clear of them.
_CHROME_JS = """
(function (map, cfg) {
    var container = map.getContainer();
    var small = map.getSize().x < 1000 || map.getSize().y < 700;
    var make = function (tag, cls, parent, content) {
        var e = L.DomUtil.create(tag, cls, parent);
        if (content != null) e.innerHTML = content;
        return e;
    };
    var control = function (position, build) {
        var c = L.control({position: position});
        c.onAdd = function () {
            var div = build();
            L.DomEvent.disableClickPropagation(div);
            L.DomEvent.disableScrollPropagation(div);
            return div;
        };
        c.addTo(map);
        return c;
    };
    var info = control("topleft", function () {
        var div = make("div", "heatmap-panel heatmap-info");
        make("div", "heatmap-title", div, cfg.title);
        if (cfg.banner) make("div", "heatmap-banner", div, cfg.banner).setAttribute("role", "alert");
        if (cfg.figures) make("details", "heatmap-figures", div, cfg.figures).open = !small;
        if (cfg.glossary) make("details", "heatmap-glossary", div, cfg.glossary);
        return div;
    });
    if (cfg.colorBy) {
        control("topright", function () {
            var div = make("div", "heatmap-panel heatmap-colorby", null, cfg.colorBy);
            div.addEventListener("change", function (e) {
                var alt = e.target.value === "alt";
                window.heatmapColorMode = alt ? "alt" : "main";
                container.classList.toggle("heatmap-mode-alt", alt);
                (window.heatmapRestyle || []).forEach(function (layer) { layer.resetStyle(); });
            });
            return div;
        });
    }
    if (cfg.legend) {
        control("bottomright", function () {
            var div = make("div", "heatmap-panel heatmap-legend");
            make("details", "", div, cfg.legend).open = !small;
            return div;
        });
    }
    map.attributionControl.addAttribution(cfg.attribution);

    var box = function (e) {
        var r = e.getBoundingClientRect(), c = container.getBoundingClientRect();
        return {l: r.left - c.left, t: r.top - c.top, r: r.right - c.left, b: r.bottom - c.top};
    };
    var corner = function (v, h) { return box(container.querySelector(".leaflet-" + v + ".leaflet-" + h)); };
    var panels = function () {
        return Array.prototype.filter.call(container.querySelectorAll(".leaflet-control"), function (e) {
            return e.offsetWidth > 0 && e.offsetHeight > 0;
        }).map(box);
    };
    var overlap = function (a, b) { return a.l < b.r && b.l < a.r && a.t < b.b && b.t < a.b; };
    var layout = function () {
        var size = map.getSize(), width = Math.min(Math.max(size.x / 2 - 30, 120), 400) + "px";
        container.querySelectorAll(".heatmap-panel, .leaflet-control-layers").forEach(function (e) {
            e.style.maxWidth = width;
        });
        var panel = info.getContainer();
        panel.style.maxHeight = Math.max(size.y - box(panel).t - (size.y - corner("bottom", "left").t) - 10, 60) + "px";
        var legend = container.querySelector(".heatmap-legend");
        if (legend) {
            legend.style.maxHeight = Math.max(box(legend).b - corner("top", "right").b - 10, 40) + "px";
        }
    };
    // Fit the data into the largest free rectangle the panels leave (whichever gives the closest zoom); the
    // sources' labels, drawn to the right of each source, need room on that side.
    var fit = function () {
        if (!cfg.bounds) return;
        var size = map.getSize(), W = size.x, H = size.y;
        var tl = corner("top", "left"), tr = corner("top", "right");
        var bl = corner("bottom", "left"), br = corner("bottom", "right");
        var label = 0;
        container.querySelectorAll(".heatmap-label").forEach(function (e) {
            label = Math.max(label, e.offsetWidth + 14);
        });
        var rects = [
            [0, Math.max(tl.b, tr.b), W, Math.min(bl.t, br.t)],
            [Math.max(tl.r, bl.r), 0, Math.min(tr.l, br.l), H],
            [0, tl.b, Math.min(tr.l, br.l), bl.t],
            [Math.max(tl.r, bl.r), tr.b, W, br.t]
        ];
        var best = null;
        rects.forEach(function (q) {
            var pad = {tl: [q[0] + 10, q[1] + 10], br: [W - q[2] + 10 + label, H - q[3] + 10]};
            if (q[2] - q[0] - label < 80 || q[3] - q[1] < 80) return;
            var z = map.getBoundsZoom(cfg.bounds, false, L.point(pad.tl[0] + pad.br[0], pad.tl[1] + pad.br[1]));
            if (best === null || z > best.z) best = {z: z, pad: pad};
        });
        var pad = best ? best.pad : {tl: [10, 10], br: [10, 10]};
        map.fitBounds(cfg.bounds, {paddingTopLeft: pad.tl, paddingBottomRight: pad.br, maxZoom: 18, animate: false});
    };
    // Move an open popup clear of every panel (the smallest shift of the map that does it); with no room left,
    // fold the panels and try again.
    var clear = function (popup) {
        var pe = popup.getElement();
        if (!pe) return;
        for (var round = 0; round < 2; round++) {
            var size = map.getSize(), W = size.x, H = size.y, r = box(pe), boxes = panels();
            var xs = [0, 6 - r.l, W - 6 - r.r], ys = [0, 6 - r.t, H - 6 - r.b];
            boxes.forEach(function (p) {
                xs.push(p.r + 6 - r.l, p.l - 6 - r.r);
                ys.push(p.b + 6 - r.t, p.t - 6 - r.b);
            });
            var best = null;
            xs.forEach(function (dx) {
                ys.forEach(function (dy) {
                    var s = {l: r.l + dx, t: r.t + dy, r: r.r + dx, b: r.b + dy};
                    if (s.l < 2 || s.t < 2 || s.r > W - 2 || s.b > H - 2) return;
                    if (boxes.some(function (p) { return overlap(p, s); })) return;
                    var d = Math.abs(dx) + Math.abs(dy);
                    if (best === null || d < best[2]) best = [dx, dy, d];
                });
            });
            if (best !== null) {
                if (best[2] > 0) map.panBy([-best[0], -best[1]], {animate: false});
                return;
            }
            container.querySelectorAll(".heatmap-panel details[open]").forEach(function (d) { d.open = false; });
            layout();
        }
    };
    container.querySelectorAll(".heatmap-panel details").forEach(function (d) {
        d.addEventListener("toggle", layout);
    });
    map.on("resize", layout);
    map.on("popupopen", function (e) { clear(e.popup); });
    // A label that overlaps another one goes to the left of its feature.
    var declutter = function () {
        var placed = [];
        map.eachLayer(function (layer) {
            var tip = layer.getTooltip && layer.getTooltip();
            if (!tip || !tip.options.permanent || !tip.getElement()) return;
            if (placed.some(function (b) { return overlap(b, box(tip.getElement())); })) {
                tip.options.direction = "left";
                tip.options.offset = [-10, 0];
                tip.update();
            }
            placed.push(box(tip.getElement()));
        });
    };
    layout();
    fit();
    declutter();
    container.setAttribute("data-heatmap-ready", "1");
})(%(map)s, %(cfg)s);
"""


class _MapChrome(Element):
    """The map's title, key figures, glossary, banner, legend and colour switch, laid out so none covers another.

    Written as a plain script after the map's own (not parsed as a Jinja template).
    """

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self._name = "MapChrome"
        self._config = config

    def render(self, **kwargs: Any) -> str:
        root = self.get_root()
        assert self._parent is not None and isinstance(root, Figure)  # rendered inside the map, in its figure
        text = _CHROME_JS % {"map": self._parent.get_name(), "cfg": _js_literal(self._config)}  # no other %
        root.script.add_child(_RawElement(text), name=self.get_name())
        return ""


@dataclass(frozen=True)
class ImageLayer:
    """A raster drawn as an image: its layer definition, a PNG in Web Mercator and its bounds in degrees.

    See :func:`heatmap.demand.density.density_image`.
    """

    spec: LayerSpec
    png: bytes
    bounds: list[list[float]]


_NO_FEATURES = gpd.GeoDataFrame(geometry=[], crs=4326)


@dataclass(frozen=True)
class MapPanel:
    """Key figures shown under the map's title: rows of (label, value), notes, alerts and a glossary (plain text)."""

    rows: tuple[tuple[str, str], ...]
    notes: tuple[str, ...] = ()
    alerts: tuple[str, ...] = ()
    glossary: tuple[tuple[str, str], ...] = ()


PLAN_GLOSSARY = (
    (
        "Supply and return",
        "Hot water flows out to the buildings in the supply pipe and back, cooled, in the return "
        "pipe; both lie in one trench.",
    ),
    ("DN", "Nominal diameter of a pipe in millimetres (EN 253 pre-insulated pipe series)."),
    ("Service pipe", "A building's or a heat source's own connection pipe from the street to its wall."),
    (
        "Trunk",
        "The pipes several buildings share, from the heat sources to the buildings' own service pipes; each "
        "building's share of them is by the peak load it draws through them.",
    ),
    ("Mass flow", "How much water passes per second (kg/s); line width on the map."),
    ("Pressure gradient", "Pressure lost by friction per metre of pipe (Pa/m); limited so pumping stays cheap."),
    (
        "Pressure difference at a building",
        "Supply minus return pressure left at the building (bar); it needs a "
        "minimum for its substation to draw its heat.",
    ),
    ("Heat losses", "Heat the pipes lose to the ground over the year (MWh/a), as a share of the heat fed in."),
    ("Design peak", "The coldest-day load every pipe is sized and checked for."),
    ("Capex", "Investment in the pipes and trenches (€)."),
    (
        "LCOH",
        "Levelised cost of heat: the network's yearly costs (annualised investment, operation, pumping, heat "
        "bought) per MWh delivered (€/MWh).",
    ),
    ("NPV", "Net present value: revenue minus costs over the lifetime, discounted to today (€); positive pays off."),
    ("MWh/a, kW", "Energy per year (megawatt-hours per year); power (kilowatts)."),
    (
        "Not connected",
        "Buildings the plan leaves out, each with the reason in its popup: too small (below the demand "
        "threshold), no heat demand, too far from a route, no route to a source, not economic, excluded.",
    ),
)
"""The terms of a plan's map, explained in plain words (shown folded under the key figures)."""


def plan_panel(summary: Mapping[str, Any]) -> MapPanel:
    """Return the key figures of a plan's summary (:func:`heatmap.io.outputs.plan_summary`) for its map.

    Status, consumers connected of all the plan considered, heat delivered, losses, capex, LCOH and NPV with the
    settings (prices, rates) they rest on, and the checks a partial plan fails. Only figures of the summary.
    """
    f = summary.get("figures") or {}
    counts = summary.get("counts") or {}
    connected = counts.get("consumers_connected")
    total = counts.get("consumers_given")
    status = str(summary.get("status", _MISSING))
    rows = [
        ("Status", "ok: every check holds" if status == "ok" else status),
        ("Consumers connected", f"{_num(connected, ',.0f')} of {_num(total, ',.0f')}"),
        ("Heat delivered", _num(f.get("heat_delivered_mwh_per_a"), ",.0f", "MWh/a")),
        (
            "Heat losses",
            _num(f.get("heat_losses_mwh_per_a"), ",.0f", "MWh/a")
            + (
                f" ({_num(100 * f['heat_losses_share'], '.1f', '%')})" if _is_number(f.get("heat_losses_share")) else ""
            ),
        ),
        ("Route length", _num(_scale(f.get("route_length_m"), 1e-3), ",.2f", "km")),
        ("Capex (investment)", _num(_scale(f.get("capex_eur"), 1e-6), ",.2f", "M€")),
        ("LCOH (cost of heat)", _num(f.get("lcoh_eur_per_mwh"), ",.1f", "€/MWh")),
        ("NPV (over the lifetime)", _num(_scale(f.get("npv_eur"), 1e-6), ",.2f", "M€")),
        ("Revenue", _num(_scale(f.get("revenue_eur_per_a"), 1e-6), ",.2f", "M€/a")),
        ("Heat bought", _num(_scale(f.get("heat_purchase_cost_eur_per_a"), 1e-6), ",.2f", "M€/a")),
    ]
    money = summary.get("economics") or {}
    origins = money.get("price_origins") or {}
    rests_on: dict[str, str] = {}
    for figure in ("npv_eur", "lcoh_eur_per_mwh"):
        for o in origins.get(figure) or []:
            rests_on.setdefault(str(o.get("key")), f"{o.get('key')} = {_value(o.get('value'))} ({o.get('source')})")
    notes = []
    if rests_on:
        notes.append("NPV and LCOH rest on: " + "; ".join(rests_on.values()) + ".")
    if money.get("basis"):
        notes.append(f"Revenue and heat bought: {money['basis']}.")
    notes += [str(n) for n in money.get("notes") or []]
    notes.append("Every figure, assumption and the ids of the buildings left out: summary.json.")
    alerts = []
    failed = summary.get("failed_checks") or []
    if failed:
        per_check: dict[str, int] = {}
        for v in summary.get("violations") or []:
            per_check[str(v.get("check"))] = per_check.get(str(v.get("check")), 0) + 1
        alerts.append(
            "Checks that fail: "
            + ", ".join(f"{c} ({per_check[c]:,d})" if c in per_check else str(c) for c in failed)
            + " (each violation in summary.json)"
        )
    return MapPanel(rows=tuple(rows), notes=tuple(notes), alerts=tuple(alerts), glossary=PLAN_GLOSSARY)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)


def _scale(value: Any, factor: float) -> Any:
    return value * factor if _is_number(value) else None


def _num(value: Any, fmt: str, unit: str = "") -> str:
    if not _is_number(value):
        return _MISSING
    text = format(value, fmt)
    return f"{text} {unit}".rstrip() if unit != "%" else text + " %"


def _value(value: Any) -> str:
    return format(value, ",.6g") if _is_number(value) else str(value)


def _panel_html(panel: MapPanel) -> str:
    """Render the key figures as the content of a ``<details>`` element."""
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in panel.rows)
    alerts = "".join(f'<p class="alert">{html.escape(a)}</p>' for a in panel.alerts)
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in panel.notes)
    if notes:
        notes = f'<details class="heatmap-notes"><summary>What these rest on</summary>{notes}</details>'
    return f"<summary>Key figures</summary>{alerts}<table>{rows}</table>{notes}"


def _glossary_html(glossary: Sequence[tuple[str, str]]) -> str:
    """Render the glossary as the content of a ``<details>`` element."""
    items = "".join(f"<dt>{html.escape(t)}</dt><dd>{html.escape(d)}</dd>" for t, d in glossary)
    return f"<summary>Glossary</summary><dl>{items}</dl>"


def write_map(
    layers: Mapping[str, gpd.GeoDataFrame],
    path: Path,
    *,
    specs: Mapping[str, LayerSpec] | None = None,
    title: str,
    attribution: str = "© OpenStreetMap contributors",
    tiles: str | None = None,
    images: Sequence[ImageLayer] = (),
    banner: str | None = None,
    panel: MapPanel | None = None,
) -> Path:
    """Write an interactive map of the output layers as one HTML file that works offline.

    Only the layers whose definition has ``web_map: true`` are drawn, each in its own feature group
    (switchable in the layer control), streets at the bottom, then pipes, consumers and sources on
    top. Each feature has a popup with the definition's fields (label, value with unit); the legend
    lists every drawn layer's classes.

    Parameters
    ----------
    layers
        Layer name → layer, in any projected or geographic CRS (reprojected to WGS84 here).
    path
        The HTML file to write (its folder is created if needed).
    specs
        Layer name → definition; default :func:`heatmap.maps.layers.load_layer_specs`.
    title
        Title shown on the map and in the browser tab.
    attribution
        Data attribution shown in the corner of the map (HTML allowed).
    tiles
        Optional tile URL template (``https://…/{z}/{x}/{y}.png``) or a folium/xyzservices provider
        name for a base map; the only thing the map then loads from the internet. ``None`` draws
        the vector layers on a plain background.
    images
        Rasters drawn as images below the vector layers (e.g. the heat density), each with its legend.
    banner
        A warning shown in red under the title (e.g. that the plan is partial and which checks fail).
    panel
        Key figures and a glossary shown under the title (folded on small screens); see :func:`plan_panel`.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    heatmap._errors.OutputError
        If the Leaflet assets are not installed or the file cannot be written.
    ValueError
        If a drawn layer has no CRS.
    """
    path = Path(path)
    specs = load_layer_specs() if specs is None else specs
    assets = _load_assets(Path(settings.web_assets_dir))

    drawn: list[tuple[str, LayerSpec, gpd.GeoDataFrame]] = []
    for name in _draw_order(layers, specs):
        frame = _to_wgs84(name, layers[name])
        if len(frame):
            drawn.append((name, specs[name], _paired(specs[name], frame)))
    alt_colors = {name: _alt_colors(spec, frame, layers) for name, spec, frame in drawn if spec.color_by}

    bounds = _bounds([frame for _, _, frame in drawn], [image.bounds for image in images])
    center: list[float] = (
        [0.0, 0.0] if bounds is None else np.asarray(np.round(np.mean(bounds, axis=0), _COORD_DECIMALS)).tolist()
    )
    fmap = _OfflineMap(
        location=center,
        zoom_start=2 if bounds is None else 14,
        tiles=None,
        control_scale=True,
        maxZoom=_MAP_MAX_ZOOM,
        # Without tiles, fractional zoom fits the data snugly; tiles look sharp only at whole zooms.
        zoomSnap=1 if tiles else 0.25,
        zoomDelta=1 if tiles else 0.5,
    )
    root = fmap.get_root()
    assert isinstance(root, Figure)  # folium puts every map in a figure
    root.title = html.escape(title)
    root.header.add_child(_RawElement(f"<style>\n{assets.css}\n</style>"), name="leaflet_css")
    root.header.add_child(_RawElement(f"<script>\n{assets.js}\n</script>"), name="leaflet_js")
    root.header.add_child(_RawElement(_icon_script(assets.icons)), name="leaflet_icons")

    if tiles:
        folium.TileLayer(tiles=tiles, attr=attribution, name="Base map", max_zoom=_MAP_MAX_ZOOM).add_to(fmap)
    panes = [(_pane_name(name), 400 + 10 * i) for i, (name, _, _) in enumerate(drawn)]
    image_panes = [(_pane_name(image.spec.name), 300 + 10 * i) for i, image in enumerate(images)]
    fmap.add_child(_OverlayPanes(image_panes + panes))
    if images:  # cells stay crisp squares when zoomed in
        root.header.add_child(_RawElement("<style>.heatmap-image { image-rendering: pixelated; }</style>"))
    for image, (pane, _) in zip(images, image_panes, strict=True):
        group = folium.FeatureGroup(name=_no_jinja(html.escape(image.spec.title)), show=True)
        folium.raster_layers.ImageOverlay(
            image="data:image/png;base64," + base64.b64encode(image.png).decode("ascii"),
            bounds=image.bounds,
            pane=pane,
            interactive=False,
            className="heatmap-image",
        ).add_to(group)
        group.add_to(fmap)

    for (_, spec, frame), (pane, _) in zip(drawn, panes, strict=True):
        group = folium.FeatureGroup(name=_no_jinja(html.escape(spec.title)), show=True)
        _geojson_layer(spec, frame, pane, alt_colors.get(spec.name) or None).add_to(group)
        group.add_to(fmap)

    folium.LayerControl(collapsed=False, position="topright").add_to(fmap)
    root.header.add_child(_RawElement(f"<style>{_CHROME_CSS}</style>"), name="heatmap_css")
    alt = [spec for name, spec, _ in drawn if alt_colors.get(name)]
    fmap.add_child(
        _MapChrome(
            {
                "title": html.escape(title),
                "banner": html.escape(banner) if banner else "",
                "attribution": attribution,
                "figures": _panel_html(panel) if panel else "",
                "glossary": _glossary_html(panel.glossary) if panel and panel.glossary else "",
                "legend": _legend_html([(i.spec.name, i.spec, _NO_FEATURES) for i in images] + drawn, alt_colors),
                "colorBy": _color_by_html(alt[0]) if alt else "",
                "bounds": bounds,
            }
        )
    )

    text = root.render()
    _check_offline(text)  # the page; the features' JSON escapes "<" (_script_safe): it cannot load anything
    data = {e.get_name(): e for e in _descendants(fmap) if isinstance(e, _LayerData)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        size = _write_page(text, path, data)
    except OSError as exc:
        raise OutputError(f"cannot write the web map {path}: {exc}") from exc

    counts = ", ".join(f"{name} {len(frame)}" for name, _, frame in drawn) or "no features"
    logger.info(
        "Wrote web map %s (%.0f kB, %s): %s",
        path,
        size / 1024,
        "offline" if not tiles else "tiles online",
        counts,
    )
    return path


def _descendants(element: Element) -> Iterator[Element]:
    """Every element below ``element`` in folium's tree."""
    for child in element._children.values():
        yield child
        yield from _descendants(child)


# --- assets -----------------------------------------------------------------------------------------


def _load_assets(folder: Path) -> _Assets:
    """Read Leaflet from the npm folder, with the CSS images embedded as ``data:`` URIs."""
    dist = folder / "leaflet" / "dist"
    js_path, css_path = dist / "leaflet.js", dist / "leaflet.css"
    if not (js_path.is_file() and css_path.is_file()):
        raise OutputError(f"the web-map assets are missing ({js_path} not found); {_NPM_HINT}")
    images = dist / "images"

    def data_uri(name: str) -> str:
        image = images / name
        if not image.is_file():
            raise OutputError(f"the web-map asset {image} is missing; {_NPM_HINT}")
        return "data:image/png;base64," + base64.b64encode(image.read_bytes()).decode("ascii")

    try:
        js = js_path.read_text(encoding="utf-8")
        css = css_path.read_text(encoding="utf-8")
        css = re.sub(
            r"""url\(\s*(['"]?)images/([\w.-]+)\1\s*\)""",
            lambda m: f'url("{data_uri(m.group(2))}")',
            css,
        )
        icons = {
            "iconUrl": data_uri("marker-icon.png"),
            "iconRetinaUrl": data_uri("marker-icon-2x.png"),
            "shadowUrl": data_uri("marker-shadow.png"),
        }
    except (OSError, UnicodeDecodeError) as exc:
        raise OutputError(f"cannot read the web-map assets in {dist}: {exc}; {_NPM_HINT}") from exc
    # The source map is not shipped in the page; "</script" would end the inline script early.
    js = re.sub(r"^//# sourceMappingURL=.*$", "", js, flags=re.MULTILINE)
    js = re.sub(r"</(script)", r"<\\/\1", js, flags=re.IGNORECASE)
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.DOTALL)  # comments (with bug-tracker links)
    return _Assets(js=js, css=css.replace("</", "<\\/"), icons=icons)


def _icon_script(icons: dict[str, str]) -> str:
    """Point Leaflet's default marker icon at the embedded images (no path detection, no fetch)."""
    options = json.dumps(icons)
    return f'<script>\nL.Icon.Default.imagePath = "";\nL.Icon.Default.mergeOptions({options});\n</script>'


def _check_offline(text: str) -> None:
    """Raise if the page would load any script, stylesheet, font or image from elsewhere."""
    found = _EXTERNAL_ASSET.search(text)
    if found:
        near = text[max(found.start() - 60, 0) : found.end() + 80]
        raise OutputError(f"internal error: the web map would load an external asset near {near!r}")


# --- layers -----------------------------------------------------------------------------------------


def _draw_order(layers: Mapping[str, gpd.GeoDataFrame], specs: Mapping[str, LayerSpec]) -> list[str]:
    """Names of the layers to draw, bottom first."""
    names = []
    for name in layers:
        spec = specs.get(name)
        if spec is None:
            logger.debug("Web map: layer %r has no definition in layers/, not drawn", name)
        elif spec.web_map:
            names.append(name)
    return sorted(names, key=lambda n: (specs[n].draw_order, n))


def _to_wgs84(name: str, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Drop missing and empty geometries, reproject to WGS84 and round the coordinates."""
    geom = frame.geometry
    keep = ~(geom.isna() | geom.is_empty).to_numpy()
    if not keep.all():
        logger.debug("Web map: layer %r has %d features without geometry, not drawn", name, (~keep).sum())
        frame = frame.loc[keep]
    if frame.crs is None:
        raise ValueError(f"web map layer {name!r} has no CRS; set one (for example EPSG:3067) before mapping")
    frame = frame.to_crs(4326)
    geometry = frame.geometry.to_numpy()
    rounded = shapely.transform(geometry, lambda xy: np.round(xy, _COORD_DECIMALS), include_z=False)
    finite = np.isfinite(shapely.bounds(rounded)).all(axis=1)
    if not finite.all():
        logger.warning("Web map: %d features of layer %r lie outside WGS84, not drawn", (~finite).sum(), name)
    frame = frame.set_geometry(gpd.GeoSeries(rounded, index=frame.index, crs=frame.crs))
    return frame.loc[finite]


def _bounds(frames: list[gpd.GeoDataFrame], extra: Sequence[list[list[float]]] = ()) -> list[list[float]] | None:
    """``[[south, west], [north, east]]`` of all frames and ``extra`` bounds, or ``None`` if there is nothing."""
    b = [f.total_bounds for f in frames] + [[w, s, e, n] for (s, w), (n, e) in extra]
    if not b:
        return None
    a = np.array(b, dtype=float)
    return [[float(a[:, 1].min()), float(a[:, 0].min())], [float(a[:, 3].max()), float(a[:, 2].max())]]


def _pane_name(layer: str) -> str:
    return "heatmap-" + re.sub(r"[^a-z0-9_-]+", "-", layer.lower())


def _field(frame: pd.DataFrame, name: str | None) -> pd.Series | None:
    """Return the column ``name`` of ``frame``: all missing if the frame lacks it, ``None`` if no field."""
    if name is None:
        return None
    if name not in frame.columns:
        logger.debug("Web map: style field %r missing, its features get the default style", name)
        return pd.Series(np.nan, index=frame.index, dtype=float)
    return frame[name]


def _geojson_layer(
    spec: LayerSpec, frame: gpd.GeoDataFrame, pane: str, alt: list[tuple[str, str, str]] | None = None
) -> folium.GeoJson:
    """Build the layer: pre-computed style and popup properties, a style function reading them.

    ``alt`` (value, colour, label) colours the features by ``spec.color_by`` when the map's switch says so.
    """
    n = len(frame)
    # colors_for needs a series of the frame's length even for a single colour.
    color_values = _field(frame, spec.color.field)
    colors = spec.colors_for(pd.Series(np.nan, index=frame.index) if color_values is None else color_values)
    widths = np.round(spec.widths_for(_field(frame, spec.width.field), n), 2)
    paired = frame.attrs.get("paired")
    dash = spec.dash_rule(paired=paired)
    dashes = spec.dashes_for(_field(frame, dash.field) if dash else None, n, dash)

    is_line = spec.geometry == "line"
    color_key = "color" if is_line else "fillColor"
    const: dict[str, Any] = {"opacity": spec.opacity, "lineCap": "round", "lineJoin": "round", "pane": pane}
    if is_line:
        const.update(fill=False)
    else:
        const.update(color=spec.stroke_color, fill=True, fillOpacity=spec.fill_opacity)
    # each feature's properties, in order: a column of values, or a popup field formatted when written
    props: dict[str, np.ndarray | PopupField] = {}
    per_feature: dict[str, str] = {}
    for key, values, prop in (
        (color_key, colors, _STYLE_PROPS["color"]),
        ("weight", widths, _STYLE_PROPS["weight"]),
        ("dashArray", dashes, _STYLE_PROPS["dash"]),
    ):
        constant = _constant(values)
        if constant is _VARIES:
            props[prop] = np.asarray(values)
            per_feature[key] = prop
        else:
            const[key] = constant

    rows: list[tuple[str, list[str]]] = []
    for pf in spec.popup:
        if paired and pf.field == spec.pair.by:  # type: ignore[union-attr]  # paired only with a pair rule
            continue
        label = html.escape(pf.label)
        if pf.field in frame.columns:
            props[pf.field] = pf
            if paired and pf.field in spec.pair.sum:  # type: ignore[union-attr]
                label += html.escape(f" ({' + '.join(paired)})")
            rows.append((label, [pf.field]))
        elif paired and all(f"{pf.field}|{v}" in frame.columns for v in paired):
            for v in paired:
                props[f"{pf.field}|{v}"] = pf
            rows.append((label, [f"{pf.field}|{v}" for v in paired]))
    alt_style: str | None = None
    if alt is not None and spec.color_by is not None and spec.color_by.field in frame.columns:
        values = frame[spec.color_by.field].astype(str)
        props["_color2"] = values.map({v: c for v, c, _ in alt}).to_numpy()
        alt_style = color_key
        if spec.color_by.field not in {pf.field for pf in spec.popup}:
            props["_network"] = values.map({v: html.escape(lab) for v, _, lab in alt}).to_numpy()
            rows.append((html.escape(spec.color_by.label[:1].upper() + spec.color_by.label[1:]), ["_network"]))
    if spec.label:
        props["_label"] = _label_values(spec, frame)
    if spec.radius_field is not None and spec.radius_field in frame.columns and not is_line:
        props["_radius"] = pd.to_numeric(frame[spec.radius_field], errors="coerce").fillna(spec.radius_px).to_numpy()
        per_feature["radius"] = "_radius"  # a circle marker takes its radius from its style

    marker = folium.CircleMarker(radius=spec.radius_px)
    marker.options["pane"] = pane
    layer = folium.GeoJson(
        {"type": "FeatureCollection", "features": []},  # the features follow in _LayerData
        name=spec.title,
        control=False,
        marker=marker,
        pane=pane,
        style=_style_function(const, per_feature, alt_style),
    )
    head = [html.escape(v.capitalize()) for v in paired] if paired else []
    popup = _popup_function(rows, caption=html.escape(spec.title), head=head)
    layer.add_child(_LayerData(frame, props, popup, restyle=alt_style is not None, labels=bool(spec.label)))
    return layer


def _label_values(spec: LayerSpec, frame: gpd.GeoDataFrame) -> np.ndarray:
    """Each feature's permanent label: the first label field in bold, the others on a line below (missing left out)."""
    texts = []
    for pf in spec.label:
        if pf.field not in frame.columns:
            continue
        text = pd.Series(_popup_values(frame[pf.field], pf), index=frame.index, dtype=object)
        if not pd.api.types.is_numeric_dtype(frame[pf.field].dtype):
            text = text.str.replace("_", " ", regex=False)
        texts.append(text.where(text != _MISSING, "").tolist())
    out = []
    for values in zip(*texts, strict=True):
        head, rest = (values[0], [v for v in values[1:] if v]) if values else ("", [])
        out.append("<br>".join(filter(None, [f"<b>{head}</b>" if head else "", " · ".join(rest)])))
    return np.array(out if texts else [""] * len(frame), dtype=object)


def _paired(spec: LayerSpec, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Merge the features that share ``spec.pair.key`` into one (see :class:`heatmap.maps.layers.PairRule`).

    A field equal within every pair keeps its name; a ``sum`` field is added up; any other field becomes one
    column per value of ``by`` (``field|value``), the style fields also keep their name (the largest magnitude
    for numbers, else the first). The first value of ``by`` in ``order`` gives the geometry. The values of ``by``
    in their order are in ``attrs["paired"]``.
    """
    rule = spec.pair
    if rule is None or rule.key not in frame.columns or rule.by not in frame.columns or frame.empty:
        return frame
    by = frame[rule.by].astype(str)
    present = set(by)
    order = [v for v in rule.order if v in present] + sorted(present - set(rule.order))
    frame = frame.assign(_rank=by.map({v: i for i, v in enumerate(order)}).to_numpy(), _by=by.to_numpy())
    frame = frame.sort_values([rule.key, "_rank"], kind="stable").drop_duplicates([rule.key, "_by"])
    groups = frame.groupby(rule.key, sort=False)
    geometry = frame.geometry.name
    merged = frame.drop_duplicates(rule.key).set_index(rule.key)[[geometry]]
    style_fields = {spec.color.field, spec.width.field, spec.color_by.field if spec.color_by else None}
    wanted = dict.fromkeys([*(pf.field for pf in spec.popup), *(f for f in style_fields if f)])
    for f in wanted:
        if f not in frame.columns or f in (rule.key, rule.by):
            continue
        if f in rule.sum:
            merged[f] = groups[f].sum(min_count=1)
            continue
        if groups[f].nunique(dropna=False).max() <= 1:
            merged[f] = groups[f].first()
            continue
        for v in order:
            merged[f"{f}|{v}"] = frame[frame._by == v].set_index(rule.key)[f].reindex(merged.index)
        if f in style_fields:
            numeric = pd.api.types.is_numeric_dtype(frame[f].dtype)
            merged[f] = frame[f].abs().groupby(frame[rule.key]).max() if numeric else groups[f].first()
    out = gpd.GeoDataFrame(merged.reset_index(), geometry=geometry, crs=frame.crs)
    out.attrs["paired"] = order
    return out


def _alt_colors(
    spec: LayerSpec, frame: gpd.GeoDataFrame, layers: Mapping[str, gpd.GeoDataFrame]
) -> list[tuple[str, str, str]]:
    """Return ``(value, colour, label)`` of each value of the layer's second colouring, in sorted order."""
    rule = spec.color_by
    if rule is None or rule.field not in frame.columns:
        return []
    names: dict[str, str] = {}
    if rule.names_from:
        layer, _, field = rule.names_from.partition(".")
        other = layers.get(layer)
        if other is not None and rule.field in other.columns and field in other.columns:
            names = {str(k): str(v) for k, v in zip(other[rule.field], other[field], strict=True) if pd.notna(v)}
    values = sorted({str(v) for v in frame[rule.field] if pd.notna(v)})
    return [
        (v, (rule.colors or {}).get(v, _QUALITATIVE[i % len(_QUALITATIVE)]), f"{v}: {names[v]}" if v in names else v)
        for i, v in enumerate(values)
    ]


FEATURES_PER_CHUNK = 20_000
"""Features serialised at once when a layer is written (:func:`_features_json`): its memory, not the layer's."""


def _features_json(frame: gpd.GeoDataFrame, props: Mapping[str, np.ndarray | PopupField]) -> Iterator[str]:
    """Serialize the features as compact GeoJSON that is safe inside an HTML ``<script>``, in pieces.

    ``props`` gives each property: a column of values, or a popup field whose column of ``frame`` is formatted
    (:func:`_popup_values`) chunk by chunk, as the geometries and the JSON text are.
    """
    yield '{"type":"FeatureCollection","features":['
    for start in range(0, len(frame), FEATURES_PER_CHUNK):
        part = frame.iloc[start : start + FEATURES_PER_CHUNK]
        geometry = shapely.to_geojson(part.geometry.to_numpy())
        table = pd.DataFrame(
            {
                name: _popup_values(part[name], p) if isinstance(p, PopupField) else p[start : start + len(part)]
                for name, p in props.items()
            },
            index=part.index,
        )
        if len(table.columns):
            records = table.to_json(orient="records", lines=True, force_ascii=False).rstrip("\n").split("\n")
        else:
            records = ["{}"] * len(part)
        if len(records) != len(geometry):  # cannot happen: to_json escapes newlines in values
            raise RuntimeError("web map: feature properties and geometries do not line up")
        pairs = zip(geometry, records, strict=True)
        body = ",".join(f'{{"type":"Feature","geometry":{g},"properties":{p}}}' for g, p in pairs)
        yield _script_safe(("," if start else "") + body)
    yield "]}"


_POPUP_JS = (
    "function (layer) { var p = layer.feature.properties, rows = %(rows)s, head = %(head)s, caption = %(caption)s, "
    "missing = %(missing)s, n = Math.max(head.length, 1), out = [], i, j, k, v, cells; "
    "if (head.length) { cells = ''; for (j = 0; j < head.length; j++) cells += '<th>' + head[j] + '</th>'; "
    "out.push('<tr class=\"head\"><th></th>' + cells + '</tr>'); } "
    "for (i = 0; i < rows.length; i++) { k = rows[i][1]; cells = ''; "
    "if (k.length === 1) { v = p[k[0]]; cells = '<td colspan=\"' + n + '\">' + (v == null ? missing : v) + '</td>'; } "
    "else { for (j = 0; j < k.length; j++) { v = p[k[j]]; cells += '<td>' + (v == null ? missing : v) + '</td>'; } } "
    "out.push('<tr><th>' + rows[i][0] + '</th>' + cells + '</tr>'); } "
    "return '<div class=\"caption\">' + caption + '</div><table>' + out.join('') + '</table>'; }"
)


def _popup_function(rows: list[tuple[str, list[str]]], *, caption: str, head: list[str]) -> str | None:
    """Return a Leaflet popup function: a caption, then each row's (HTML) label and pre-formatted values.

    A row of one property spans the table; a row of several shows them in the columns named by ``head``.
    """
    if not rows:
        return None
    values = {"rows": rows, "head": head, "caption": caption, "missing": _MISSING}
    return _POPUP_JS % {k: _js_literal(v) for k, v in values.items()}


class _LayerData(Element):
    """Add a GeoJson layer's features and popups in a plain script.

    folium would embed the data with indented JSON and then parse the whole script, data included,
    as a Jinja template. Instead the page holds a placeholder (:data:`_DATA_MARK`) that :func:`write_map`
    replaces by the features written in pieces (:func:`_features_json`), one layer after the other: a map of
    hundreds of thousands of features is never held as a whole in memory.
    """

    def __init__(
        self,
        frame: gpd.GeoDataFrame,
        props: Mapping[str, np.ndarray | PopupField],
        popup_js: str | None,
        *,
        restyle: bool = False,
        labels: bool = False,
    ) -> None:
        super().__init__()
        self._name = "LayerData"
        self.frame = frame
        self.props = props
        self._popup_js = popup_js
        self._restyle = restyle
        self._labels = labels

    def render(self, **kwargs: Any) -> str:
        root = self.get_root()
        assert self._parent is not None and isinstance(root, Figure)  # rendered inside its layer, in the map
        layer = self._parent.get_name()
        text = f"{layer}.addData({_DATA_MARK % self.get_name()});"
        if self._popup_js:
            text += (
                f'\n{layer}.bindPopup({self._popup_js}, {{maxWidth: 460, autoPan: false, className: "heatmap-popup"}});'
            )
        if self._restyle:  # the colour switch restyles it
            text += f"\n(window.heatmapRestyle = window.heatmapRestyle || []).push({layer});"
        if self._labels:
            text += (
                f"\n{layer}.eachLayer(function (f) {{ var t = f.feature.properties._label; if (t) "
                'f.bindTooltip(t, {permanent: true, direction: "right", offset: [10, 0], '
                'className: "heatmap-label"}); });'
            )
        root.script.add_child(_RawElement(text), name=self.get_name())
        return ""


_DATA_MARK = "/*heatmap-layer-data:%s*/"
"""The placeholder of a layer's features in the rendered page (a JavaScript comment: no data can hold one)."""
_DATA_MARK_RE = re.compile(r"/\*heatmap-layer-data:([\w-]+)\*/")


def _write_page(text: str, path: Path, data: Mapping[str, _LayerData]) -> int:
    """Write the rendered page with each layer's features in place of its placeholder; return the bytes written."""
    with path.open("w", encoding="utf-8", newline="") as f:
        pieces = _DATA_MARK_RE.split(text)  # text, name, text, name, …, text
        for i, piece in enumerate(pieces):
            f.writelines([piece] if i % 2 == 0 else _features_json(data[piece].frame, data[piece].props))
    return path.stat().st_size


class _Varies:
    """Marker of a style value that differs between features."""


_VARIES = _Varies()


def _constant(values: np.ndarray) -> Any:
    """Return the single value shared by all ``values`` (``None`` if empty), or ``_VARIES``."""
    unique = pd.unique(pd.Series(values, dtype=object))
    if len(unique) > 1:
        return _VARIES
    value = unique[0] if len(unique) else None
    return value.item() if isinstance(value, np.generic) else value


def _style_function(const: dict[str, Any], per_feature: dict[str, str], alt: str | None = None) -> JsCode:
    """Return a Leaflet style function: the layer's constant style plus the features' style properties.

    With ``alt`` (the style key to set), the map's colour switch in "alt" mode colours by ``_color2``.
    """
    assign = "".join(f" s.{key} = p[{json.dumps(prop)}];" for key, prop in per_feature.items())
    if alt:
        assign += f' if (window.heatmapColorMode === "alt" && p._color2) s.{alt} = p._color2;'
    head = "function (feature) { var p = feature.properties || {}; "
    return JsCode(f"{head}var s = {_js_literal(const)};{assign} return s; }}")


def _js_literal(value: Any) -> str:
    """Return ``value`` as JSON that is safe inside an HTML ``<script>``."""
    return _script_safe(json.dumps(value, ensure_ascii=False, allow_nan=False))


def _script_safe(json_text: str) -> str:
    """Escape the characters of JSON text that could end or confuse an inline ``<script>``."""
    for char, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        json_text = json_text.replace(char, escaped)
    return json_text


def _no_jinja(text: str) -> str:
    """Escape ``{`` as an HTML entity: folium re-parses rendered scripts as Jinja templates."""
    return text.replace("{", "&#123;").replace("}", "&#125;")


# --- popups -----------------------------------------------------------------------------------------


def _popup_values(values: pd.Series, pf: PopupField) -> np.ndarray:
    """Format one popup field as HTML-safe strings: decimals, thousands separators, unit, "–" if missing."""
    out = np.full(len(values), _MISSING, dtype=object)
    unit = f" {pf.unit}" if pf.unit else ""
    if pd.api.types.is_bool_dtype(values.dtype):
        arr = values.to_numpy(dtype=object)
        ok = ~pd.isna(arr)
        out[ok] = np.where(arr[ok].astype(bool), "yes", "no")
    elif pd.api.types.is_numeric_dtype(values.dtype):
        num = values.to_numpy(dtype=float, na_value=np.nan)
        ok = np.isfinite(num)
        out[ok] = _format_numbers(num[ok], pf.decimals, unit)
    else:
        arr = values.to_numpy(dtype=object)
        ok = ~pd.isna(arr)
        present = arr[ok].tolist()
        texts = {v: html.escape(v) + unit for v in {v for v in present if type(v) is str}}  # each text once
        out[ok] = [texts[v] if type(v) is str else _format_scalar(v, pf.decimals, unit) for v in present]
    return out


def _format_numbers(num: np.ndarray, decimals: int | None, unit: str) -> list[str]:
    """Format finite numbers with ``decimals`` (and thousands separators), or as short as exact."""
    if decimals is None:
        integral = (num == np.round(num)).tolist()
        pairs = zip(num.tolist(), integral, strict=True)
        return [f"{v:.0f}{unit}" if i else f"{v:g}{unit}" for v, i in pairs]
    fmt = f"{{:,.{decimals}f}}{unit}"
    text = list(map(fmt.format, (num + 0.0).tolist()))  # + 0.0 turns -0.0 into 0.0
    for k in np.flatnonzero((num < 0) & (num > -(10.0**-decimals))):  # small negatives that show as "-0.00"
        if not text[k].removesuffix(unit).strip("-0.,"):
            text[k] = text[k][1:]
    return text


def _format_scalar(value: Any, decimals: int | None, unit: str) -> str:
    """Format one value of a column of mixed types."""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, float, np.integer, np.floating)):
        if not np.isfinite(value):
            return _MISSING
        return _format_numbers(np.array([value], dtype=float), decimals, unit)[0]
    return html.escape(str(value)) + unit


# --- legend -----------------------------------------------------------------------------------------


def _legend_html(
    drawn: list[tuple[str, LayerSpec, gpd.GeoDataFrame]], alt_colors: Mapping[str, list[tuple[str, str, str]]]
) -> str:
    """Build the legend of every drawn layer, topmost first, as HTML from the layer definitions.

    Returns the content of a ``<details>`` element (its summary first), or "" when there is nothing to show.
    A layer with a second colouring (``alt_colors``) gets both, each shown while the map's switch selects it; a
    layer coloured by category lists the categories it holds.
    """
    parts = []
    for name, spec, frame in reversed(drawn):
        kind = _swatch_kind(spec, frame)
        entries = spec.legend
        values = _field(frame, spec.color.field)
        if spec.color.kind == "categorized" and values is not None:  # the categories the layer holds
            present = set(values.astype(str))
            entries = [e for e, c in zip(entries, spec.color.classes, strict=True) if c.value in present]
        rows = []
        if spec.color.kind != "single":
            rows.append(f"<h4>{html.escape(spec.title)}</h4>")
        for color, label in entries:
            rows.append(_legend_row(_swatch(kind, spec, color), label))
        if spec.color.kind != "single" and spec.unmatched_color not in {c for c, _ in entries}:
            if values is not None and (spec.colors_for(values) == spec.unmatched_color).any():
                rows.append(_legend_row(_swatch(kind, spec, spec.unmatched_color), _NO_CLASS_LABEL))
        alt = alt_colors.get(name)
        if alt and spec.color_by is not None:
            alt_rows = [f"<h4>{html.escape(spec.title.split(' (')[0])} by {html.escape(spec.color_by.label)}</h4>"]
            alt_rows += [_legend_row(_swatch(kind, spec, color), label) for _, color, label in alt]
            rows = [
                f'<div class="heatmap-main">{"".join(rows)}</div>',
                f'<div class="heatmap-alt">{"".join(alt_rows)}</div>',
            ]
        paired = frame.attrs.get("paired")
        dash = spec.dash_rule(paired=paired)
        shown = _field(frame, dash.field) if kind == "line" and dash is not None else None
        if dash is not None and shown is not None:  # the patterns of the values the layer holds
            for value, pattern in dash.values.items():
                if (shown.astype(str) == value).any():
                    swatch = _swatch("line", spec, "#555555", dash=pattern, px=2.0)
                    rows.append(_legend_row(swatch, dash.label(value)))
        if kind == "line" and paired:
            swatch = _swatch("line", spec, "#555555", px=3.0)
            rows.append(_legend_row(swatch, f"one line per trench: {' and '.join(paired)} in its popup"))
        if kind == "line" and spec.width.field is not None:
            label = next((pf.label for pf in spec.popup if pf.field == spec.width.field), spec.width.field)
            swatch = '<svg width="28" height="14"><polygon points="2,8 26,3 26,11 2,9" fill="#555555"/></svg>'
            rows.append(_legend_row(swatch, f"line width: {label.lower()}"))
        parts.extend(rows)
    return f"<summary>Legend</summary>{''.join(parts)}" if parts else ""


def _color_by_html(spec: LayerSpec) -> str:
    """Render the switch between a layer's two colourings (radio buttons)."""
    assert spec.color_by is not None  # called for such layers only
    rule = spec.color_by
    return (
        f"<b>Colour {html.escape(spec.title.split(' (')[0].lower())} by</b>"
        '<label><input type="radio" name="heatmap-colorby" value="main" checked> '
        f"{html.escape(rule.main_label)}</label>"
        f'<label><input type="radio" name="heatmap-colorby" value="alt"> {html.escape(rule.label)}</label>'
    )


def _legend_row(swatch: str, label: str) -> str:
    return f'<div class="row">{swatch}<span>{html.escape(label)}</span></div>'


def _swatch_kind(spec: LayerSpec, frame: gpd.GeoDataFrame) -> str:
    if spec.geometry == "raster":
        return "polygon"
    if spec.geometry == "line":
        return "line"
    if spec.geometry == "point":
        return "point"
    types = set(frame.geom_type.unique())
    return "polygon" if types & {"Polygon", "MultiPolygon"} else "point"


def _swatch(kind: str, spec: LayerSpec, color: str, dash: str | None = None, px: float | None = None) -> str:
    """Draw one legend entry as a small SVG, the way the map draws the features."""
    c = html.escape(color, quote=True)
    stroke = html.escape(spec.stroke_color, quote=True)
    if kind == "line":
        if px is not None:
            w = px
        elif spec.width.field is not None:
            w = 4.0
        else:
            w = max(spec.width.constant_px or spec.width.min_px, 2.0)
        dash_attr = f' stroke-dasharray="{html.escape(dash, quote=True)}"' if dash else ""
        return (
            f'<svg width="28" height="14"><line x1="2" y1="7" x2="26" y2="7" stroke="{c}" '
            f'stroke-width="{w:g}" stroke-opacity="{max(spec.opacity, 0.6):g}"{dash_attr}/></svg>'
        )
    if kind == "point":
        r = min(spec.radius_px, 6.0)
        return (
            f'<svg width="28" height="14"><circle cx="14" cy="7" r="{r:g}" fill="{c}" '
            f'fill-opacity="{spec.fill_opacity:g}" stroke="{stroke}" stroke-width="1"/></svg>'
        )
    return (
        f'<svg width="28" height="14"><rect x="6" y="1" width="16" height="12" fill="{c}" '
        f'fill-opacity="{spec.fill_opacity:g}" stroke="{stroke}" stroke-width="1"/></svg>'
    )
