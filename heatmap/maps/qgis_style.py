"""QGIS styles for the output GeoPackage, embedded in its ``layer_styles`` table.

QGIS looks for a default style of every GeoPackage layer it opens in the table ``layer_styles`` (the
table QGIS itself fills with *Save as default → Datasource database*). This module writes one QML style
per layer into that table, built only from the declarative layer definitions of :mod:`heatmap.maps.layers`,
so a layer looks the same in QGIS as in the web map:

* colour: single symbol, graduated symbol (the definition's inclusive upper bounds) or categorized
  symbol (plus an "all other values" category in the definition's ``unmatched_color``);
* points are circle markers ``2 * radius_px`` pixels across, polygons simple fills, lines simple
  lines; fill and stroke opacities are the colours' alpha;
* a line width scaled by a field becomes a data-defined ``outlineWidth`` (``scale_linear`` up to the
  layer's maximum of the field), a dash rule a data-defined ``customDash`` (null, i.e. solid, for
  values without a pattern);
* field aliases with units (``Length [m]``), numeric display precision, a display expression and an
  HTML map tip with the popup fields formatted like the web map's popups.
"""

from __future__ import annotations

import html
import logging
import math
import re
import sqlite3
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path

from heatmap import __version__
from heatmap._errors import OutputError
from heatmap.maps.layers import LayerSpec, PopupField, load_layer_specs

logger = logging.getLogger(__name__)

#: QGIS version written into the QML (the format is read by QGIS 3.16 and later).
QGIS_VERSION = "3.28.0-Firenze"

#: Style categories the QML defines.
STYLE_CATEGORIES = "Symbology|Fields|Forms|MapTips|Rendering|LayerConfiguration"

#: Geometry types a layer may hold, by the symbol type that draws them.
GEOMETRY_SYMBOLS = {
    "Point": "marker",
    "MultiPoint": "marker",
    "LineString": "line",
    "MultiLineString": "line",
    "Polygon": "fill",
    "MultiPolygon": "fill",
}

# Symbol types each geometry kind of a layer definition allows.
_ALLOWED_SYMBOLS = {
    "point": {"marker"},
    "line": {"line"},
    "polygon": {"fill"},
    "polygon_or_point": {"fill", "marker"},
}
# The geometry type an empty layer is styled for (it holds no geometry to tell).
_EMPTY_LAYER_GEOMETRY = {
    "point": "Point",
    "line": "LineString",
    "polygon": "Polygon",
    "polygon_or_point": "Polygon",
}
_LAYER_GEOMETRY_TYPE = {"marker": "0", "line": "1", "fill": "2"}
_GPKG_GEOMETRY_SYMBOLS = {
    "POINT": "marker",
    "MULTIPOINT": "marker",
    "LINESTRING": "line",
    "MULTILINESTRING": "line",
    "POLYGON": "fill",
    "MULTIPOLYGON": "fill",
}
_NUMERIC_TYPES = ("INT", "REAL", "FLOAT", "DOUBLE", "NUMERIC", "DECIMAL", "MEDIUMINT", "TINYINT")
_MISSING = "–"
_DOCTYPE = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>"
_UNIT_SCALE = "3x:0,0,0,0,0,0"
_NUMBER_LOCALE = "en"  # thousands separator "," and decimal point ".", as in the web map

_CREATE_LAYER_STYLES = (
    'CREATE TABLE IF NOT EXISTS "layer_styles" ( "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, '
    '"f_table_catalog" TEXT(256), "f_table_schema" TEXT(256), "f_table_name" TEXT(256), '
    '"f_geometry_column" TEXT(256), "styleName" TEXT(30), "styleQML" TEXT, "styleSLD" TEXT, '
    '"useAsDefault" BOOLEAN, "description" TEXT, "owner" TEXT(30), "ui" TEXT(30), '
    "\"update_time\" DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))"
)
_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ','now')"


# --- QML ----------------------------------------------------------------------------------------------


def qml_for(spec: LayerSpec, geometry_type: str, *, fields: Mapping[str, str] | None = None) -> str:
    """Return the QGIS style (QML document) of one layer.

    Parameters
    ----------
    spec
        The layer's definition (see :func:`heatmap.maps.layers.load_layer_specs`).
    geometry_type
        The geometry type the layer holds: ``"Point"``, ``"MultiPoint"``, ``"LineString"``,
        ``"MultiLineString"``, ``"Polygon"`` or ``"MultiPolygon"``.
    fields
        The layer's columns and their declared GeoPackage types (``"INTEGER"``, ``"REAL"``,
        ``"TEXT"``, ``"BOOLEAN"``, ...), if known. Popup fields the layer lacks are then left out of the
        map tip, booleans are shown as yes/no and only numeric columns get a display precision.

    Returns
    -------
    str
        The QML document (``<!DOCTYPE qgis ...>``).

    Raises
    ------
    ValueError
        If ``geometry_type`` is unknown or does not fit the definition's geometry, or a colour or a
        class of the definition cannot be expressed in QGIS.
    """
    symbol_type = GEOMETRY_SYMBOLS.get(geometry_type)
    if symbol_type is None:
        allowed = ", ".join(GEOMETRY_SYMBOLS)
        raise ValueError(f"unknown geometry type {geometry_type!r}; expected one of {allowed}")
    if symbol_type not in _ALLOWED_SYMBOLS.get(spec.geometry, set()):
        raise ValueError(f"layer {spec.name!r} is defined as {spec.geometry!r} but holds {geometry_type}")

    root = ET.Element(
        "qgis",
        {
            "version": QGIS_VERSION,
            "styleCategories": STYLE_CATEGORIES,
            "hasScaleBasedVisibilityFlag": "0",
            "maxScale": "0",
            "minScale": "100000000",
            "readOnly": "0",
            "labelsEnabled": "0",
            "symbologyReferenceScale": "-1",
            "simplifyAlgorithm": "0",
            "simplifyDrawingHints": "0" if symbol_type == "marker" else "1",
            "simplifyDrawingTol": "1",
            "simplifyLocal": "1",
            "simplifyMaxScale": "1",
        },
    )
    flags = ET.SubElement(root, "flags")
    for flag, value in (("Identifiable", "1"), ("Removable", "1"), ("Searchable", "1"), ("Private", "0")):
        ET.SubElement(flags, flag).text = value
    root.append(_renderer(spec, symbol_type))
    ET.SubElement(root, "blendMode").text = "0"
    ET.SubElement(root, "featureBlendMode").text = "0"
    ET.SubElement(root, "layerOpacity").text = "1"  # the opacities are the colours' alpha
    ET.SubElement(root, "legend", {"type": "default-vector", "showLabelLegend": "0"})

    popup = [pf for pf in spec.popup if fields is None or pf.field in fields]
    field_config = ET.SubElement(root, "fieldConfiguration")
    for pf in popup:
        if pf.decimals is not None and (fields is None or _is_numeric(fields[pf.field])):
            field_el = ET.SubElement(field_config, "field", {"name": pf.field, "configurationFlags": "None"})
            widget = ET.SubElement(field_el, "editWidget", {"type": "Range"})
            config = ET.SubElement(widget, "config")
            config.append(
                _option_map(
                    {
                        "AllowNull": ("bool", "true"),
                        "Precision": ("int", str(pf.decimals)),
                        "Step": ("double", _number(10.0**-pf.decimals)),
                        "Style": ("QString", "SpinBox"),
                    }
                )
            )
    aliases = ET.SubElement(root, "aliases")
    for pf in spec.popup:
        ET.SubElement(aliases, "alias", {"field": pf.field, "name": field_alias(pf.label, pf.unit)})
    if popup:
        first = popup[0]
        value = _value_expression(first, _type_of(fields, first.field), html_text=False)
        preview = f"{_string(first.label + ' ')} || {value}"
    else:
        preview = _string(spec.title)
    ET.SubElement(root, "previewExpression").text = preview
    ET.SubElement(root, "mapTip").text = map_tip(spec, fields=fields)
    ET.SubElement(root, "layerGeometryType").text = _LAYER_GEOMETRY_TYPE[symbol_type]

    ET.indent(root, space="  ")
    return _DOCTYPE + "\n" + ET.tostring(root, encoding="unicode")


def field_alias(label: str, unit: str | None) -> str:
    """Return a field's alias: its popup label with the unit in brackets, e.g. ``"Length [m]"``."""
    return f"{label} [{unit}]" if unit else label


def map_tip(spec: LayerSpec, *, fields: Mapping[str, str] | None = None) -> str:
    """Return the layer's HTML map tip: its title and a table of its popup fields.

    Parameters
    ----------
    spec
        The layer's definition.
    fields
        The layer's columns and declared types, if known (see :func:`qml_for`).

    Returns
    -------
    str
        A QGIS map tip template; each value is a ``[% expression %]`` that formats the field like the
        web map's popup (decimals, thousands separator, unit, ``–`` if missing).
    """
    rows = []
    for pf in spec.popup:
        if fields is not None and pf.field not in fields:
            continue
        value = _value_expression(pf, _type_of(fields, pf.field))
        label = html.escape(pf.label)
        rows.append(f'<tr><th align="left">{label}</th><td align="right">[% {value} %]</td></tr>')
    return (
        f'<div style="font-family: sans-serif;"><b>{html.escape(spec.title)}</b>\n'
        + "<table>\n"
        + "\n".join(rows)
        + "\n</table></div>"
    )


def _value_expression(pf: PopupField, declared_type: str | None, *, html_text: bool = True) -> str:
    """Return the QGIS expression of a popup field's formatted text (``–`` if missing, HTML-escaped)."""
    name = _field(pf.field)
    unit = _string(f" {pf.unit}") if pf.unit else None
    if declared_type is not None and declared_type.upper().startswith("BOOL"):
        return f"CASE WHEN {name} IS NULL THEN {_string(_MISSING)} WHEN {name} THEN 'yes' ELSE 'no' END"
    if pf.decimals is not None:
        # round() + 0 turns a -0 into 0, as in the web map ("0.000 bar", not "-0.000 bar").
        text = f"format_number(round({name}, {pf.decimals}) + 0, {pf.decimals}, {_string(_NUMBER_LOCALE)})"
    elif html_text:
        text = f"replace(to_string({name}), array('&', '<', '>'), array('&amp;', '&lt;', '&gt;'))"
    else:
        text = f"to_string({name})"
    if unit:
        text = f"{text} || {unit}"
    return f"coalesce({text}, {_string(_MISSING)})"


# --- renderer -----------------------------------------------------------------------------------------


def _renderer(spec: LayerSpec, symbol_type: str) -> ET.Element:
    """Build the ``renderer-v2`` element of the layer's colour rule."""
    rule = spec.color
    common = {"symbollevels": "0", "forceraster": "0", "enableorderby": "0", "referencescale": "-1"}
    if rule.kind == "single":
        renderer = ET.Element("renderer-v2", {"type": "singleSymbol", **common})
        symbols = ET.SubElement(renderer, "symbols")
        symbols.append(_symbol(spec, symbol_type, "0", rule.color or spec.unmatched_color))
    elif rule.kind == "graduated":
        if not rule.field or not rule.classes:
            raise ValueError(f"layer {spec.name!r}: a graduated colour rule needs a field and classes")
        renderer = ET.Element(
            "renderer-v2",
            {"type": "graduatedSymbol", "attr": rule.field, "graduatedMethod": "GraduatedColor", **common},
        )
        ranges = ET.SubElement(renderer, "ranges")
        symbols = ET.SubElement(renderer, "symbols")
        lower = -math.inf
        for i, cls in enumerate(rule.classes):
            if cls.upper is None or not cls.upper > lower:
                raise ValueError(
                    f"layer {spec.name!r}: graduated class {cls.label!r} needs an upper bound above {lower}"
                )
            upper = float(cls.upper)
            attrs = {"lower": _number(lower), "upper": _number(upper), "symbol": str(i)}
            ET.SubElement(ranges, "range", {**attrs, "label": cls.label, "render": "true"})
            symbols.append(_symbol(spec, symbol_type, str(i), cls.color))
            lower = upper
        method = ET.SubElement(renderer, "classificationMethod", {"id": "Custom"})
        ET.SubElement(method, "symmetricMode", {"enabled": "0", "symmetrypoint": "0", "astride": "0"})
        label_format = {"format": "%1 - %2", "labelprecision": "4", "trimtrailingzeroes": "1"}
        ET.SubElement(method, "labelFormat", label_format)
        ET.SubElement(ET.SubElement(method, "parameters"), "Option")
        ET.SubElement(method, "extraInformation")
    else:
        if not rule.field or not rule.classes:
            raise ValueError(f"layer {spec.name!r}: a categorized colour rule needs a field and categories")
        renderer = ET.Element("renderer-v2", {"type": "categorizedSymbol", "attr": rule.field, **common})
        categories = ET.SubElement(renderer, "categories")
        symbols = ET.SubElement(renderer, "symbols")
        entries = [(cls.value, cls.label, cls.color) for cls in rule.classes]
        entries.append(("", "Other", spec.unmatched_color))  # QGIS' "all other values" (empty value)
        for i, (value, label, color) in enumerate(entries):
            attrs = {"value": "" if value is None else str(value), "label": label, "symbol": str(i)}
            ET.SubElement(categories, "category", {**attrs, "render": "true", "type": "string"})
            symbols.append(_symbol(spec, symbol_type, str(i), color))
    ET.SubElement(renderer, "rotation")
    ET.SubElement(renderer, "sizescale")
    return renderer


def _symbol(spec: LayerSpec, symbol_type: str, name: str, color: str) -> ET.Element:
    """One QGIS symbol (one symbol layer) in ``color``."""
    symbol = ET.Element(
        "symbol", {"type": symbol_type, "name": name, "alpha": "1", "clip_to_extent": "1", "force_rhr": "0"}
    )
    symbol.append(_data_defined({}))
    stroke_px = spec.width.constant_px if spec.width.constant_px is not None else spec.width.min_px
    defined: dict[str, str] = {}
    if symbol_type == "line":
        layer_class = "SimpleLine"
        props = {
            "line_color": _rgba(color, spec.opacity),
            "line_style": "solid",
            "line_width": _number(stroke_px),
            "line_width_unit": "Pixel",
            "width_map_unit_scale": _UNIT_SCALE,
            "capstyle": "round",
            "joinstyle": "round",
            "use_custom_dash": "0",
            "customdash": "5;2",
            "customdash_unit": "Pixel",
            "customdash_map_unit_scale": _UNIT_SCALE,
            "offset": "0",
            "offset_unit": "Pixel",
            "offset_map_unit_scale": _UNIT_SCALE,
            "draw_inside_polygon": "0",
            "ring_filter": "0",
            "align_dash_pattern": "0",
            "tweak_dash_pattern_on_corners": "0",
        }
        if spec.width.field:
            defined["outlineWidth"] = width_expression(spec)
        if spec.dash is not None:
            defined["customDash"] = dash_expression(spec)
    elif symbol_type == "marker":
        layer_class = "SimpleMarker"
        props = {
            "name": "circle",
            "color": _rgba(color, spec.fill_opacity),
            "outline_color": _rgba(spec.stroke_color, spec.opacity),
            "outline_style": "solid",
            "outline_width": _number(stroke_px),
            "outline_width_unit": "Pixel",
            "outline_width_map_unit_scale": _UNIT_SCALE,
            "size": _number(2 * spec.radius_px),
            "size_unit": "Pixel",
            "size_map_unit_scale": _UNIT_SCALE,
            "scale_method": "diameter",
            "angle": "0",
            "offset": "0,0",
            "offset_unit": "Pixel",
            "offset_map_unit_scale": _UNIT_SCALE,
            "horizontal_anchor_point": "1",
            "vertical_anchor_point": "1",
            "joinstyle": "round",
            "cap_style": "round",
        }
    else:
        layer_class = "SimpleFill"
        props = {
            "color": _rgba(color, spec.fill_opacity),
            "style": "solid",
            "outline_color": _rgba(spec.stroke_color, spec.opacity),
            "outline_style": "solid",
            "outline_width": _number(stroke_px),
            "outline_width_unit": "Pixel",
            "border_width_map_unit_scale": _UNIT_SCALE,
            "joinstyle": "round",
            "offset": "0,0",
            "offset_unit": "Pixel",
            "offset_map_unit_scale": _UNIT_SCALE,
        }
    layer = ET.SubElement(symbol, "layer", {"class": layer_class, "enabled": "1", "locked": "0", "pass": "0"})
    layer.append(_option_map({key: ("QString", value) for key, value in sorted(props.items())}))
    layer.append(_data_defined(defined))
    return symbol


def width_expression(spec: LayerSpec) -> str:
    """Return the QGIS expression of a line width scaled by a field (``None`` values get ``min_px``).

    Like the web map, the width grows linearly with the field's absolute value from ``min_px`` at 0 to
    ``max_px`` at the layer's largest absolute value.
    """
    w = spec.width
    if not w.field:
        raise ValueError(f"layer {spec.name!r} has no width field")
    value = f"abs({_field(w.field)})"
    top = f"maximum({value})"
    lo, hi = _number(w.min_px), _number(w.max_px)
    return f"CASE WHEN {top} > 0 THEN scale_linear(coalesce({value}, 0), 0, {top}, {lo}, {hi}) ELSE {lo} END"


def dash_expression(spec: LayerSpec) -> str:
    """Return the QGIS expression of the dash pattern by field value (``NULL``, i.e. solid, otherwise).

    The definition's SVG dash arrays (``"6 4"``) become QGIS custom dash patterns (``"6;4"``, pixels).
    """
    if spec.dash is None:
        raise ValueError(f"layer {spec.name!r} has no dash rule")
    cases = " ".join(
        f"WHEN {_field(spec.dash.field)} = {_string(value)} THEN {_string(_qgis_dash(pattern))}"
        for value, pattern in spec.dash.values.items()
    )
    return f"CASE {cases} END"


def _qgis_dash(pattern: str) -> str:
    parts = [p for p in re.split(r"[\s,]+", str(pattern).strip()) if p]
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        numbers = []
    if not numbers or any(n < 0 or not math.isfinite(n) for n in numbers):
        raise ValueError(f"invalid dash pattern {pattern!r}; expected numbers such as '6 4'")
    if len(numbers) % 2:
        numbers *= 2  # SVG repeats an odd list to make it even
    return ";".join(_number(n) for n in numbers)


# --- XML and expression helpers -----------------------------------------------------------------------


def _option_map(values: Mapping[str, tuple[str, str]]) -> ET.Element:
    """``<Option type="Map">`` with one typed ``<Option>`` per item."""
    option = ET.Element("Option", {"type": "Map"})
    for key, (kind, value) in values.items():
        ET.SubElement(option, "Option", {"name": key, "type": kind, "value": value})
    return option


def _data_defined(expressions: Mapping[str, str]) -> ET.Element:
    """``<data_defined_properties>`` with one active expression-based property per item."""
    element = ET.Element("data_defined_properties")
    collection = ET.SubElement(element, "Option", {"type": "Map"})
    ET.SubElement(collection, "Option", {"name": "name", "type": "QString", "value": ""})
    if expressions:
        properties = ET.SubElement(collection, "Option", {"name": "properties", "type": "Map"})
        for key, expression in expressions.items():
            prop = ET.SubElement(properties, "Option", {"name": key, "type": "Map"})
            ET.SubElement(prop, "Option", {"name": "active", "type": "bool", "value": "true"})
            ET.SubElement(prop, "Option", {"name": "expression", "type": "QString", "value": expression})
            ET.SubElement(prop, "Option", {"name": "type", "type": "int", "value": "3"})  # expression
    else:
        ET.SubElement(collection, "Option", {"name": "properties"})
    ET.SubElement(collection, "Option", {"name": "type", "type": "QString", "value": "collection"})
    return element


def _rgba(color: str, alpha: float) -> str:
    """``"#rrggbb"`` (or ``#rgb``, ``#rrggbbaa``) and an opacity as QGIS' ``"r,g,b,a"``."""
    text = str(color).strip().lstrip("#")
    if len(text) in (3, 4):
        text = "".join(ch * 2 for ch in text)
    if len(text) not in (6, 8) or not re.fullmatch(r"[0-9a-fA-F]+", text):
        raise ValueError(f"invalid colour {color!r}; expected a hex colour such as '#3182bd'")
    r, g, b = (int(text[i : i + 2], 16) for i in (0, 2, 4))
    a = (int(text[6:8], 16) / 255 if len(text) == 8 else 1.0) * min(max(float(alpha), 0.0), 1.0)
    return f"{r},{g},{b},{round(a * 255)}"


def _number(value: float) -> str:
    """Format a number as QGIS writes it: ``inf``/``-inf``, integers without ``.0``."""
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _field(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def _type_of(fields: Mapping[str, str] | None, name: str) -> str | None:
    return None if fields is None else fields.get(name)


def _is_numeric(declared_type: str) -> bool:
    upper = declared_type.upper()
    return any(t in upper for t in _NUMERIC_TYPES)


# --- GeoPackage ---------------------------------------------------------------------------------------


def write_layer_styles(
    gpkg_path: Path,
    geometry_types: Mapping[str, str],
    *,
    specs: Mapping[str, LayerSpec] | None = None,
) -> None:
    """Embed each layer's QGIS style in the GeoPackage as its default style.

    Creates the ``layer_styles`` table as QGIS does (if absent), registers it in ``gpkg_contents`` as
    an attributes table, and writes one default style (``useAsDefault = 1``, style name = layer name)
    per layer. A style of the same name for the same layer is replaced; other styles of the layer stay
    but are no longer the default.

    Parameters
    ----------
    gpkg_path
        The GeoPackage holding the layers.
    geometry_types
        Layer name → the geometry type written (``"Point"``, ``"LineString"``, ``"MultiPolygon"``, ...).
    specs
        Layer name → definition; default :func:`heatmap.maps.layers.load_layer_specs`.

    Raises
    ------
    OutputError
        If the GeoPackage is missing or unreadable, a layer is not in it, has no definition or holds a
        geometry its definition does not allow.
    """
    gpkg_path = Path(gpkg_path)
    if not gpkg_path.is_file():
        raise OutputError(f"GeoPackage {gpkg_path} does not exist; write the layers before their QGIS styles")
    specs = load_layer_specs() if specs is None else specs
    try:
        with closing(sqlite3.connect(f"{gpkg_path.resolve().as_uri()}?mode=rw", uri=True)) as con:
            rows = _style_rows(con, gpkg_path, geometry_types, specs)
            with con:
                _write_rows(con, rows)
    except sqlite3.Error as exc:
        raise OutputError(f"cannot write QGIS styles into {gpkg_path} ({exc}); is it a GeoPackage?") from exc
    logger.info("Embedded default QGIS styles of %d layers (%s) in %s", len(rows), ", ".join(rows), gpkg_path)


def _style_rows(
    con: sqlite3.Connection,
    gpkg_path: Path,
    geometry_types: Mapping[str, str],
    specs: Mapping[str, LayerSpec],
) -> dict[str, tuple[str, str, str]]:
    """Layer name → (geometry column, QML, description), checked against the GeoPackage."""
    query = "SELECT table_name, column_name, geometry_type_name FROM gpkg_geometry_columns"
    columns = {table.lower(): (table, column, gtype) for table, column, gtype in con.execute(query)}
    rows = {}
    for name, geometry_type in geometry_types.items():
        found = columns.get(name.lower())
        if found is None:
            available = ", ".join(sorted(t for t, _, _ in columns.values())) or "none"
            raise OutputError(f"layer {name!r} is not in {gpkg_path} (its layers: {available})")
        table, column, gpkg_type = found
        spec = specs.get(name)
        if spec is None:
            raise OutputError(f"no layer definition for {name!r}; add layers/{name}.yaml")
        stored = _GPKG_GEOMETRY_SYMBOLS.get(str(gpkg_type).upper())
        if stored is not None and stored != GEOMETRY_SYMBOLS.get(geometry_type, stored):
            raise OutputError(f"layer {name!r} in {gpkg_path} holds {gpkg_type}, not {geometry_type}")
        quoted = '"' + table.replace('"', '""') + '"'
        allowed = _ALLOWED_SYMBOLS.get(spec.geometry, set())
        if GEOMETRY_SYMBOLS.get(geometry_type) not in allowed and stored is None:
            if con.execute(f"SELECT 1 FROM {quoted} LIMIT 1").fetchone() is None:
                geometry_type = _EMPTY_LAYER_GEOMETRY.get(spec.geometry, geometry_type)
                logger.debug("Layer %s is empty; styling it for %s", name, geometry_type)
        fields = {row[1]: str(row[2] or "") for row in con.execute(f"PRAGMA table_info({quoted})")}
        try:
            qml = qml_for(spec, geometry_type, fields=fields)
        except ValueError as exc:
            raise OutputError(f"cannot style layer {name!r} of {gpkg_path}: {exc}") from exc
        description = f"{spec.title} (heatmap {__version__}, from layers/{spec.name}.yaml)"
        rows[table] = (column, qml, description)
    return rows


def _write_rows(con: sqlite3.Connection, rows: Mapping[str, tuple[str, str, str]]) -> None:
    con.execute(_CREATE_LAYER_STYLES)
    con.execute(
        "INSERT INTO gpkg_contents (table_name, data_type, identifier, description, last_change) "
        f"SELECT 'layer_styles', 'attributes', 'layer_styles', '', {_NOW} "
        "WHERE NOT EXISTS (SELECT 1 FROM gpkg_contents WHERE lower(table_name) = 'layer_styles')"
    )
    where = "f_table_catalog = '' AND f_table_schema = '' AND f_table_name = ? AND f_geometry_column = ?"
    for table, (column, qml, description) in rows.items():
        con.execute(f"DELETE FROM layer_styles WHERE {where} AND styleName = ?", (table, column, table))
        con.execute(f"UPDATE layer_styles SET useAsDefault = 0 WHERE {where}", (table, column))
        con.execute(
            "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, f_geometry_column, "
            "styleName, styleQML, styleSLD, useAsDefault, description, owner, ui, update_time) "
            f"VALUES ('', '', ?, ?, ?, ?, '', 1, ?, '', NULL, {_NOW})",
            (table, column, table, qml, description),
        )
