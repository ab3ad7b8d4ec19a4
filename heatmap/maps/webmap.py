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
from collections.abc import Mapping, Sequence
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


class _MapDecorations(MacroElement):
    """The map's title, warning banner, data attribution and legend (plain HTML/CSS, no external asset)."""

    _template = Template(
        """
        {% macro header(this, kwargs) %}
        <style>
            .leaflet-container { background: #f4f3ef; font: 13px/1.4 "Helvetica Neue", Arial, Helvetica,
                sans-serif; }
            .leaflet-overlay-pane .leaflet-pane > svg { pointer-events: none; }
            .heatmap-title { position: absolute; top: 10px; left: 50%; transform: translateX(-50%);
                z-index: 1000; max-width: 55%; padding: 6px 14px; border-radius: 5px;
                background: rgba(255, 255, 255, 0.92); box-shadow: 0 1px 5px rgba(0, 0, 0, 0.4);
                font-size: 16px; font-weight: bold; text-align: center; pointer-events: none; }
            .heatmap-legend { padding: 8px 10px; border-radius: 5px; background: rgba(255, 255, 255, 0.92);
                box-shadow: 0 1px 5px rgba(0, 0, 0, 0.4); font-size: 12px; line-height: 1.3;
                max-height: calc(100vh - 140px); max-width: 320px; overflow-y: auto; }
            .heatmap-legend summary { cursor: pointer; font-weight: bold; font-size: 13px; }
            .heatmap-legend details[open] summary { margin-bottom: 4px; }
            .heatmap-legend h4 { margin: 6px 0 3px; font-size: 12px; }
            .heatmap-legend .row { display: flex; align-items: center; gap: 6px; margin: 1px 0; }
            .heatmap-legend svg { flex: none; }
            .heatmap-popup th { text-align: left; font-weight: 600; padding: 1px 10px 1px 0; }
            .heatmap-popup td { white-space: nowrap; padding: 1px 0; }
            .heatmap-banner { position: absolute; top: 48px; left: 50%; transform: translateX(-50%);
                z-index: 1000; max-width: 60%; padding: 6px 14px; border-radius: 5px; background: #b2182b;
                color: #ffffff; box-shadow: 0 1px 5px rgba(0, 0, 0, 0.4); font-size: 14px; font-weight: bold;
                text-align: center; pointer-events: none; }
        </style>
        {% endmacro %}

        {% macro script(this, kwargs) %}
        (function (map) {
            var title = L.DomUtil.create("div", "heatmap-title", map.getContainer());
            title.innerHTML = {{ this.title_html|tojson }};
            {%- if this.banner_html %}
            var banner = L.DomUtil.create("div", "heatmap-banner", map.getContainer());
            banner.setAttribute("role", "alert");
            banner.innerHTML = {{ this.banner_html|tojson }};
            var placeBanner = function () {  // just under the title, however many lines it wraps to
                banner.style.top = (title.offsetTop + title.offsetHeight + 6) + "px";
            };
            placeBanner();
            map.on("resize", placeBanner);
            {%- endif %}
            map.attributionControl.addAttribution({{ this.attribution|tojson }});
            {%- if this.legend_html %}
            var legend = L.control({position: "bottomright"});
            legend.onAdd = function () {
                var div = L.DomUtil.create("div", "heatmap-legend");
                div.innerHTML = {{ this.legend_html|tojson }};
                L.DomEvent.disableClickPropagation(div);
                L.DomEvent.disableScrollPropagation(div);
                return div;
            };
            legend.addTo(map);
            {%- endif %}
        })({{ this._parent.get_name() }});
        {% endmacro %}
        """
    )

    def __init__(self, title_html: str, attribution: str, legend_html: str, banner_html: str = "") -> None:
        super().__init__()
        self._name = "MapDecorations"
        self.title_html = title_html
        self.banner_html = banner_html
        self.attribution = attribution
        self.legend_html = legend_html


@dataclass(frozen=True)
class ImageLayer:
    """A raster drawn as an image: its layer definition, a PNG in Web Mercator and its bounds in degrees.

    See :func:`heatmap.demand.density.density_image`.
    """

    spec: LayerSpec
    png: bytes
    bounds: list[list[float]]


_NO_FEATURES = gpd.GeoDataFrame(geometry=[], crs=4326)


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
            drawn.append((name, specs[name], frame))

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
        _geojson_layer(spec, frame, pane).add_to(group)
        group.add_to(fmap)

    folium.LayerControl(collapsed=False, position="topright").add_to(fmap)
    fmap.add_child(
        _MapDecorations(
            title_html=_no_jinja(html.escape(title)),
            attribution=_no_jinja(attribution),
            legend_html=_no_jinja(_legend_html([(i.spec.name, i.spec, _NO_FEATURES) for i in images] + drawn)),
            banner_html=_no_jinja(html.escape(banner)) if banner else "",
        )
    )
    if bounds is not None:
        # Leave room for the title (and the banner) at the top.
        top = 100 if banner else 60
        fmap.fit_bounds(bounds, padding_top_left=(20, top), padding_bottom_right=(20, 20), max_zoom=18)

    text = root.render()
    _check_offline(text)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write the web map {path}: {exc}") from exc

    counts = ", ".join(f"{name} {len(frame)}" for name, _, frame in drawn) or "no features"
    logger.info(
        "Wrote web map %s (%.0f kB, %s): %s",
        path,
        len(text.encode("utf-8")) / 1024,
        "offline" if not tiles else "tiles online",
        counts,
    )
    return path


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


def _geojson_layer(spec: LayerSpec, frame: gpd.GeoDataFrame, pane: str) -> folium.GeoJson:
    """Build the layer: pre-computed style and popup properties, a style function reading them."""
    n = len(frame)
    # colors_for needs a series of the frame's length even for a single colour.
    color_values = _field(frame, spec.color.field)
    colors = spec.colors_for(pd.Series(np.nan, index=frame.index) if color_values is None else color_values)
    widths = np.round(spec.widths_for(_field(frame, spec.width.field), n), 2)
    dashes = spec.dashes_for(_field(frame, spec.dash.field) if spec.dash else None, n)

    is_line = spec.geometry == "line"
    const: dict[str, Any] = {"opacity": spec.opacity, "lineCap": "round", "lineJoin": "round", "pane": pane}
    if is_line:
        const.update(fill=False)
    else:
        const.update(color=spec.stroke_color, fill=True, fillOpacity=spec.fill_opacity)
    props = pd.DataFrame(index=frame.index)
    per_feature: dict[str, str] = {}
    for key, values, prop in (
        ("color" if is_line else "fillColor", colors, _STYLE_PROPS["color"]),
        ("weight", widths, _STYLE_PROPS["weight"]),
        ("dashArray", dashes, _STYLE_PROPS["dash"]),
    ):
        constant = _constant(values)
        if constant is _VARIES:
            props[prop] = values
            per_feature[key] = prop
        else:
            const[key] = constant

    fields = [pf for pf in spec.popup if pf.field in frame.columns]
    for pf in fields:
        props[pf.field] = _popup_values(frame[pf.field], pf)

    marker = folium.CircleMarker(radius=spec.radius_px)
    marker.options["pane"] = pane
    layer = folium.GeoJson(
        {"type": "FeatureCollection", "features": []},  # the features follow in _LayerData
        name=spec.title,
        control=False,
        marker=marker,
        pane=pane,
        style=_style_function(const, per_feature),
    )
    popup = _popup_function([pf.field for pf in fields], [html.escape(pf.label) for pf in fields])
    layer.add_child(_LayerData(_features_json(frame, props), popup))
    return layer


def _features_json(frame: gpd.GeoDataFrame, props: pd.DataFrame) -> str:
    """Serialize the features as compact GeoJSON that is safe inside an HTML ``<script>``."""
    geometry = shapely.to_geojson(frame.geometry.to_numpy())
    if len(props.columns):
        records = props.to_json(orient="records", lines=True, force_ascii=False).rstrip("\n").split("\n")
    else:
        records = ["{}"] * len(frame)
    if len(records) != len(geometry):  # cannot happen: to_json escapes newlines in values
        raise RuntimeError("web map: feature properties and geometries do not line up")
    pairs = zip(geometry, records, strict=True)
    body = ",".join(f'{{"type":"Feature","geometry":{g},"properties":{p}}}' for g, p in pairs)
    return _script_safe('{"type":"FeatureCollection","features":[' + body + "]}")


def _popup_function(fields: list[str], labels: list[str]) -> str | None:
    """Return a Leaflet popup function showing the pre-formatted ``fields`` under their (HTML) labels."""
    if not fields:
        return None
    return (
        "function (layer) { var p = layer.feature.properties, "
        f"f = {_js_literal(fields)}, l = {_js_literal(labels)}, "
        f"missing = {_js_literal(_MISSING)}, rows = []; "
        "for (var i = 0; i < f.length; i++) { var v = p[f[i]]; "
        'rows.push("<tr><th>" + l[i] + "</th><td>" + (v == null ? missing : v) + "</td></tr>"); } '
        'return "<table>" + rows.join("") + "</table>"; }'
    )


class _LayerData(Element):
    """Add a GeoJson layer's features and popups in a plain script.

    folium would embed the data with indented JSON and then parse the whole script, data included,
    as a Jinja template; for tens of thousands of features writing it directly is smaller and faster.
    """

    def __init__(self, features_json: str, popup_js: str | None) -> None:
        super().__init__()
        self._name = "LayerData"
        self._features_json = features_json
        self._popup_js = popup_js

    def render(self, **kwargs: Any) -> str:
        root = self.get_root()
        assert self._parent is not None and isinstance(root, Figure)  # rendered inside its layer, in the map
        layer = self._parent.get_name()
        text = f"{layer}.addData({self._features_json});"
        if self._popup_js:
            text += f'\n{layer}.bindPopup({self._popup_js}, {{maxWidth: 420, className: "heatmap-popup"}});'
        root.script.add_child(_RawElement(text), name=self.get_name())
        return ""


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


def _style_function(const: dict[str, Any], per_feature: dict[str, str]) -> JsCode:
    """Return a Leaflet style function: the layer's constant style plus the features' style properties."""
    assign = "".join(f" s.{key} = p[{json.dumps(prop)}];" for key, prop in per_feature.items())
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
        out[ok] = [_format_scalar(v, pf.decimals, unit) for v in arr[ok]]
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


def _legend_html(drawn: list[tuple[str, LayerSpec, gpd.GeoDataFrame]]) -> str:
    """Build the legend of every drawn layer, topmost first, as HTML from the layer definitions."""
    parts = []
    for _, spec, frame in reversed(drawn):
        kind = _swatch_kind(spec, frame)
        entries = spec.legend
        rows = []
        if spec.color.kind != "single":
            parts.append(f"<h4>{html.escape(spec.title)}</h4>")
        for color, label in entries:
            rows.append(_legend_row(_swatch(kind, spec, color), label))
        if spec.color.kind != "single" and spec.unmatched_color not in {c for c, _ in entries}:
            values = _field(frame, spec.color.field)
            if values is not None and (spec.colors_for(values) == spec.unmatched_color).any():
                rows.append(_legend_row(_swatch(kind, spec, spec.unmatched_color), _NO_CLASS_LABEL))
        if kind == "line" and spec.dash is not None:
            for value, pattern in spec.dash.values.items():
                swatch = _swatch("line", spec, "#555555", dash=pattern, px=2.0)
                rows.append(_legend_row(swatch, f"{spec.dash.field}: {value}"))
        if kind == "line" and spec.width.field is not None:
            label = next((pf.label for pf in spec.popup if pf.field == spec.width.field), spec.width.field)
            swatch = '<svg width="28" height="14"><polygon points="2,8 26,3 26,11 2,9" fill="#555555"/></svg>'
            rows.append(_legend_row(swatch, f"line width: {label.lower()}"))
        parts.extend(rows)
    return f"<details open><summary>Legend</summary>{''.join(parts)}</details>" if parts else ""


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
