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
* an alias for every column: the popup label with its unit (``Length [m]``), else the definition's
  ``aliases``, else one from the column's name and unit suffix (``reachable_street_m`` → ``Reachable street
  [m]``); numeric display precision, a display expression and an HTML map tip with the popup fields
  formatted like the web map's popups;
* labels where the definition has ``labels`` (a field, its fallback, optionally only from a minimum value
  of another field), and scale-dependent visibility where it has ``max_scale_denominator``.

Beside the styles, :func:`write_layer_styles` stores a QGIS project named after the GeoPackage in its
``qgis_projects`` table (as QGIS does with *Project → Save To → GeoPackage*): every styled layer by a path
relative to the GeoPackage, in the definitions' draw order, ticked per ``visible_by_default``.
:func:`write_raster_style` writes a raster's style as the ``.qml`` file QGIS loads beside it. What QGIS 3.22
makes of all this is tested in real QGIS (``tests/test_qgis_real.py``).
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
            # QGIS' minScale is the largest scale denominator (most zoomed out) at which the layer is drawn
            "hasScaleBasedVisibilityFlag": "0" if spec.max_scale_denominator is None else "1",
            "maxScale": "0",
            "minScale": "100000000" if spec.max_scale_denominator is None else _number(spec.max_scale_denominator),
            "readOnly": "0",
            "labelsEnabled": "1" if label_expression(spec, fields) else "0",
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
    labels = label_expression(spec, fields)
    if labels:
        root.append(_labeling(spec, labels, symbol_type))
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
    for name, alias in field_aliases(spec, fields).items():
        ET.SubElement(aliases, "alias", {"field": name, "name": alias})
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


#: Units of the column-name suffixes heatmap uses (units in names), longest first where they overlap.
UNIT_SUFFIXES = {
    "mwh_per_ha_per_a": "MWh/ha/a",
    "mwh_per_ha": "MWh/ha",
    "eur_per_mwh": "€/MWh",
    "eur_per_kw": "€/kW",
    "eur_per_m": "€/m",
    "eur_per_a": "€/a",
    "mwh_per_a": "MWh/a",
    "gwh_per_a": "GWh/a",
    "gj_per_m": "GJ/m/a",
    "kg_per_s": "kg/s",
    "m_per_s": "m/s",
    "pa_per_m": "Pa/m",
    "kwh_per_m2": "kWh/m²",
    "m2": "m²",
    "mm": "mm",
    "kw": "kW",
    "mw": "MW",
    "kwh": "kWh",
    "mwh": "MWh",
    "gwh": "GWh",
    "eur": "€",
    "bar": "bar",
    "ha": "ha",
    "km": "km",
    "m": "m",
    "c": "°C",
    "k": "K",
    "h": "h",
    "s": "s",
    "a": "a",
    "t": "t",
    "pct": "%",
}
#: Plain words for the abbreviations in column names.
_WORDS = {
    "id": "id",
    "t": "temperature",
    "q": "heat",
    "dp": "differential pressure",
    "mdot": "mass flow",
    "v": "velocity",
    "dn": "DN",
    "npv": "NPV",
    "lcoh": "LCOH",
    "co2": "CO₂",
    "osm": "OSM",
    "dhw": "hot water",
    "cop": "COP",
    "fid": "feature id",
    "n": "number of",
    "p": "pressure",
    "d": "diameter",
    "om": "O&M",
    "hx": "heat exchanger",
    "min": "minimum",
    "eur": "€",
}


def plain_alias(column: str) -> str:
    """Return a plain alias of a column by its name and unit suffix (``reachable_street_m``: ``Reachable street [m]``).

    Parameters
    ----------
    column
        The column's name (heatmap names carry their unit: ``length_m``, ``q_kw``, ``t_supply_c``).

    Returns
    -------
    str
        The words of the name, abbreviations spelt out, with the unit in brackets.
    """
    words = [w for w in column.lower().split("_") if w]
    unit = None
    for suffix, text in UNIT_SUFFIXES.items():
        parts = suffix.split("_")
        if len(words) >= len(parts) and words[-len(parts) :] == parts:
            words, unit = words[: -len(parts)], text
            break
    if not words:  # the name is a unit only (``eur_per_mwh``)
        return {"€/MWh": "Cost [€/MWh]", "Pa/m": "Pressure gradient [Pa/m]"}.get(unit or "", column)
    text = " ".join(_WORDS.get(w, w) for w in words)
    text = text[0].upper() + text[1:]
    return field_alias(text, unit)


def field_aliases(spec: LayerSpec, fields: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return every column's alias: its popup label and unit, else the definition's ``aliases``, else a plain one.

    Parameters
    ----------
    spec
        The layer's definition.
    fields
        The layer's columns (without the geometry column), if known; else the popup fields and the definition's
        aliases only.

    Returns
    -------
    dict
        Column → alias, in the layer's column order.
    """
    popup = {pf.field: field_alias(pf.label, pf.unit) for pf in spec.popup}
    names = list(fields) if fields is not None else list(dict.fromkeys([*popup, *spec.aliases]))
    return {name: popup.get(name) or spec.aliases.get(name) or plain_alias(name) for name in names}


def label_expression(spec: LayerSpec, fields: Mapping[str, str] | None = None) -> str | None:
    """Return the QGIS expression of the layer's label text, ``None`` where the layer has no labels.

    The text is the label field (its fallback where the field is empty or missing); with a ``min_field`` only
    features whose value is at least ``min_value`` get one (the expression is ``NULL`` for the others, and QGIS
    draws no label for ``NULL``). Without the columns the rule names, the layer gets no labels.
    """
    rule = spec.labels
    if rule is None:
        return None
    names = [name for name in (rule.field, rule.fallback) if name is not None and (fields is None or name in fields)]
    if not names:
        return None
    texts = [f"nullif(trim(to_string({_field(name)})), '')" for name in names]
    text = texts[0] if len(texts) == 1 else f"coalesce({', '.join(texts)})"
    if rule.min_field is None:
        return text
    if (fields is not None and rule.min_field not in fields) or rule.min_value is None:
        return None
    return f"CASE WHEN {_field(rule.min_field)} >= {_number(rule.min_value)} THEN {text} END"


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


# --- labels -------------------------------------------------------------------------------------------


def _labeling(spec: LayerSpec, expression: str, symbol_type: str) -> ET.Element:
    """Build the ``labeling`` element: the expression's text in a haloed sans-serif, placed around points."""
    rule = spec.labels
    assert rule is not None  # label_expression returned an expression
    labeling = ET.Element("labeling", {"type": "simple"})
    settings = ET.SubElement(labeling, "settings", {"calloutType": "simple"})
    text_style = ET.SubElement(
        settings,
        "text-style",
        {
            "fieldName": expression,
            "isExpression": "1",
            "fontFamily": "Sans Serif",
            "fontSize": _number(rule.size_pt),
            "fontSizeUnit": "Point",
            "fontWeight": "50",
            "fontItalic": "0",
            "fontUnderline": "0",
            "fontStrikeout": "0",
            "fontKerning": "1",
            "fontLetterSpacing": "0",
            "fontWordSpacing": "0",
            "namedStyle": "Regular",
            "textColor": _rgba(rule.color, 1.0),
            "textOpacity": "1",
            "blendMode": "0",
            "multilineHeight": "1",
            "allowHtml": "0",
            "capitalization": "0",
            "previewBkgrdColor": "255,255,255,255",
            "useSubstitutions": "0",
            "legendString": "Aa",
            "textOrientation": "horizontal",
        },
    )
    ET.SubElement(
        text_style,
        "text-buffer",
        {
            "bufferDraw": "1",
            "bufferSize": "1",
            "bufferSizeUnits": "MM",
            "bufferSizeMapUnitScale": _UNIT_SCALE,
            "bufferColor": _rgba(rule.buffer_color, 1.0),
            "bufferOpacity": "0.8",
            "bufferNoFill": "1",
            "bufferJoinStyle": "128",
            "bufferBlendMode": "0",
        },
    )
    ET.SubElement(
        settings,
        "text-format",
        {
            "wrapChar": "",
            "autoWrapLength": "28",  # characters: long plant names wrap
            "useMaxLineLengthForAutoWrap": "1",
            "multilineAlign": "0",
            "addDirectionSymbol": "0",
            "formatNumbers": "0",
            "decimals": "3",
            "plussign": "0",
            "reverseDirectionSymbol": "0",
            "placeDirectionSymbol": "0",
            "leftDirectionSymbol": "<",
            "rightDirectionSymbol": ">",
        },
    )
    # QGIS placements: 0 around a point, 1 over a polygon's centroid, 2 parallel to a line
    placement = {"marker": "0", "fill": "1", "line": "2"}[symbol_type]
    ET.SubElement(
        settings,
        "placement",
        {
            "placement": placement,
            "dist": "1",
            "distUnits": "MM",
            "distMapUnitScale": _UNIT_SCALE,
            "offsetType": "0",
            "priority": "7" if rule.min_field is None else "5",
            "placementFlags": "10",
            "centroidWhole": "0",
            "centroidInside": "1",
            "fitInPolygonOnly": "0",
            "quadOffset": "4",
            "xOffset": "0",
            "yOffset": "0",
            "offsetUnits": "MM",
            "labelOffsetMapUnitScale": _UNIT_SCALE,
            "rotationAngle": "0",
            "repeatDistance": "0",
            "repeatDistanceUnits": "MM",
            "maxCurvedCharAngleIn": "25",
            "maxCurvedCharAngleOut": "-25",
            "layerType": {"marker": "PointGeometry", "fill": "PolygonGeometry", "line": "LineGeometry"}[symbol_type],
            "overrunDistance": "0",
            "overrunDistanceUnit": "MM",
            "lineAnchorPercent": "0.5",
            "lineAnchorType": "0",
            "lineAnchorClipping": "0",
            "geometryGenerator": "",
            "geometryGeneratorEnabled": "0",
            "geometryGeneratorType": "PointGeometry",
            "polygonPlacementFlags": "2",
            "preserveRotation": "1",
        },
    )
    ET.SubElement(
        settings,
        "rendering",
        {
            "drawLabels": "1",
            "obstacle": "1",
            "obstacleFactor": "1",
            "obstacleType": "1",
            "upsidedownLabels": "0",
            "scaleVisibility": "0",
            "scaleMin": "0",
            "scaleMax": "0",
            "fontLimitPixelSize": "0",
            "fontMinPixelSize": "3",
            "fontMaxPixelSize": "10000",
            "displayAll": "0",
            "limitNumLabels": "0",
            "maxNumLabels": "2000",
            "minFeatureSize": "0",
            "labelPerPart": "0",
            "mergeLines": "0",
            "zIndex": "1" if rule.min_field is None else "0",
            "unplacedVisibility": "0",
        },
    )
    ET.SubElement(settings, "dd_properties").extend(list(_data_defined({})))
    return labeling


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


# --- raster -------------------------------------------------------------------------------------------


def raster_qml(spec: LayerSpec) -> str:
    """Return the QGIS style (QML) of a single-band raster coloured by a graduated layer definition.

    A singleband pseudocolour renderer with a discrete colour ramp: each class's inclusive upper bound is a
    ramp item (the last ``inf``), so a cell takes the colour of the first class whose bound it does not
    exceed, as in the web map's image. Cells holding the raster's nodata value stay transparent; the layer's
    opacity is the definition's ``fill_opacity``.

    Parameters
    ----------
    spec
        A ``raster`` layer definition with a graduated colour rule.

    Returns
    -------
    str
        The QML document.

    Raises
    ------
    ValueError
        If the definition is not a graduated raster one or its bounds do not rise.
    """
    rule = spec.color
    if spec.geometry != "raster" or rule.kind != "graduated" or not rule.classes:
        raise ValueError(f"layer {spec.name!r} is no raster with graduated classes")
    root = ET.Element(
        "qgis",
        {
            "version": QGIS_VERSION,
            "styleCategories": "Symbology|Rendering|LayerConfiguration",
            "hasScaleBasedVisibilityFlag": "0",
            "maxScale": "0",
            "minScale": "100000000",
        },
    )
    flags = ET.SubElement(root, "flags")
    for flag, value in (("Identifiable", "1"), ("Removable", "1"), ("Searchable", "1"), ("Private", "0")):
        ET.SubElement(flags, flag).text = value
    pipe = ET.SubElement(root, "pipe")
    provider = ET.SubElement(pipe, "provider")
    ET.SubElement(
        provider,
        "resampling",
        {
            "enabled": "false",
            "maxOversampling": "2",
            "zoomedInResamplingMethod": "nearestNeighbour",
            "zoomedOutResamplingMethod": "nearestNeighbour",
        },
    )
    bounds = [float(cls.upper) if cls.upper is not None else math.nan for cls in rule.classes]
    if any(not b > a for a, b in zip([-math.inf, *bounds], bounds, strict=False)):
        raise ValueError(f"layer {spec.name!r}: the classes' upper bounds must rise")
    finite = [b for b in bounds if math.isfinite(b)]
    renderer = ET.SubElement(
        pipe,
        "rasterrenderer",
        {
            "type": "singlebandpseudocolor",
            "band": "1",
            "opacity": _number(spec.fill_opacity),
            "alphaBand": "-1",
            "nodataColor": "",
            "classificationMin": "0",
            "classificationMax": _number(max(finite) if finite else 1.0),
        },
    )
    ET.SubElement(renderer, "rasterTransparency")
    origin = ET.SubElement(renderer, "minMaxOrigin")
    for tag, text in (
        ("limits", "None"),
        ("extent", "WholeRaster"),
        ("statAccuracy", "Estimated"),
        ("cumulativeCutLower", "0.02"),
        ("cumulativeCutUpper", "0.98"),
        ("stdDevFactor", "2"),
    ):
        ET.SubElement(origin, tag).text = text
    shader = ET.SubElement(renderer, "rastershader")
    ramp = ET.SubElement(
        shader,
        "colorrampshader",
        {
            "colorRampType": "DISCRETE",
            "classificationMode": "1",
            "clip": "0",
            "minimumValue": "0",
            "maximumValue": _number(max(finite) if finite else 1.0),
            "labelPrecision": "0",
        },
    )
    for cls, upper in zip(rule.classes, bounds, strict=True):
        ET.SubElement(ramp, "item", {"alpha": "255", "value": _number(upper), "label": cls.label, "color": cls.color})
    ET.SubElement(pipe, "brightnesscontrast", {"brightness": "0", "contrast": "0", "gamma": "1"})
    ET.SubElement(
        pipe,
        "huesaturation",
        {"saturation": "0", "grayscaleMode": "0", "invertColors": "0", "colorizeOn": "0", "colorizeStrength": "100"},
    )
    ET.SubElement(pipe, "rasterresampler", {"maxOversampling": "2"})
    ET.SubElement(pipe, "resamplingStage").text = "resamplingFilter"
    ET.SubElement(root, "blendMode").text = "0"
    ET.indent(root, space="  ")
    return _DOCTYPE + "\n" + ET.tostring(root, encoding="unicode")


def raster_style_path(raster_path: Path) -> Path:
    """Return where QGIS looks for a raster file's default style: ``<name>.qml`` beside it (``x.tif`` → ``x.qml``)."""
    raster_path = Path(raster_path)
    return raster_path.with_name(raster_path.stem + ".qml")


def write_raster_style(raster_path: Path, spec: LayerSpec) -> Path:
    """Write a raster file's QGIS style beside it (:func:`raster_style_path`), which QGIS loads as its default.

    Parameters
    ----------
    raster_path
        The raster (e.g. ``heat_density.tif``); its folder must exist.
    spec
        The raster's layer definition (:func:`raster_qml`).

    Returns
    -------
    pathlib.Path
        The style written.

    Raises
    ------
    OutputError
        If the style cannot be built or written.
    """
    path = raster_style_path(raster_path)
    try:
        path.write_text(raster_qml(spec), encoding="utf-8")
    except (OSError, ValueError) as exc:
        raise OutputError(f"cannot write the QGIS style {path} ({exc})") from exc
    logger.info("Wrote the QGIS style of %s to %s", Path(raster_path).name, path)
    return path


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
            project = _project(con, gpkg_path, specs)
            with con:
                _write_project(con, gpkg_path.stem, project)
    except sqlite3.Error as exc:
        raise OutputError(f"cannot write QGIS styles into {gpkg_path} ({exc}); is it a GeoPackage?") from exc
    logger.info(
        "Embedded default QGIS styles of %d layers (%s) and the project %r in %s",
        len(rows), ", ".join(rows), gpkg_path.stem, gpkg_path,
    )  # fmt: skip


# --- QGIS project in the GeoPackage -------------------------------------------------------------------

#: QGIS version written into the project: the oldest the project is made for (a newer one makes QGIS warn).
PROJECT_VERSION = "3.22.0-Białowieża"
_CREATE_QGIS_PROJECTS = "CREATE TABLE IF NOT EXISTS qgis_projects (name TEXT PRIMARY KEY, metadata BLOB, content BLOB)"
_MAP_LAYER_GEOMETRY = {"0": "Point", "1": "Line", "2": "Polygon"}


def project_qgs(
    gpkg_name: str,
    layers: list[tuple[str, str, str, bool]],
    crs: tuple[str, str],
    *,
    title: str,
) -> str:
    """Return a QGIS project (``.qgs`` XML) showing a GeoPackage's layers with their styles.

    Parameters
    ----------
    gpkg_name
        The GeoPackage's file name; layer sources are relative to it (``./plan.gpkg|layername=pipes``), so the
        project works wherever the folder is moved.
    layers
        ``(table, layer name, QML, visible)`` per layer, top of the layer tree first; ``visible`` is the layer's
        tick in the layer tree.
    crs
        ``(authority id, WKT)`` of the project and the layers, e.g. ``("EPSG:3067", "PROJCS[...]")``.
    title
        The project's title.

    Returns
    -------
    str
        The project document.
    """
    root = ET.Element("qgis", {"projectname": title, "version": PROJECT_VERSION})
    ET.SubElement(root, "homePath", {"path": ""})
    ET.SubElement(root, "title").text = title
    ET.SubElement(root, "projectCrs").append(_srs(crs))
    tree = ET.SubElement(root, "layer-tree-group")
    ET.SubElement(tree, "customproperties")
    order = ET.SubElement(root, "layerorder")
    project_layers = ET.SubElement(root, "projectlayers")
    for table, name, qml, visible in layers:
        source = f"./{gpkg_name}|layername={table}"
        layer_id = f"{table}_heatmap"
        node = ET.SubElement(
            tree,
            "layer-tree-layer",
            {
                "name": name,
                "id": layer_id,
                "source": source,
                "providerKey": "ogr",
                "checked": "Qt::Checked" if visible else "Qt::Unchecked",
                "expanded": "0",
            },
        )
        ET.SubElement(node, "customproperties")
        ET.SubElement(order, "layer", {"id": layer_id})
        style = ET.fromstring(qml.split("\n", 1)[1] if qml.startswith("<!DOCTYPE") else qml)
        attrs = {k: v for k, v in style.attrib.items() if k not in ("version", "styleCategories")}
        geometry = _MAP_LAYER_GEOMETRY.get(style.findtext("layerGeometryType") or "", "Unknown")
        layer = ET.SubElement(project_layers, "maplayer", {"type": "vector", "geometry": geometry, **attrs})
        ET.SubElement(layer, "id").text = layer_id
        ET.SubElement(layer, "datasource").text = source
        ET.SubElement(layer, "layername").text = name
        ET.SubElement(layer, "srs").append(_srs(crs))
        ET.SubElement(layer, "provider", {"encoding": "UTF-8"}).text = "ogr"
        layer.extend(list(style))
    properties = ET.SubElement(root, "properties")
    paths = ET.SubElement(properties, "Paths")
    ET.SubElement(paths, "Absolute", {"type": "bool"}).text = "false"
    srs = ET.SubElement(properties, "SpatialRefSys")  # QGIS 3.22 reads projectCrs only with this flag
    ET.SubElement(srs, "ProjectionsEnabled", {"type": "int"}).text = "1"
    ET.indent(root, space="  ")
    return _DOCTYPE + "\n" + ET.tostring(root, encoding="unicode")


def _srs(crs: tuple[str, str]) -> ET.Element:
    element = ET.Element("spatialrefsys", {"nativeFormat": "Wkt"})
    ET.SubElement(element, "wkt").text = crs[1]
    ET.SubElement(element, "authid").text = crs[0]
    return element


def _project(con: sqlite3.Connection, gpkg_path: Path, specs: Mapping[str, LayerSpec]) -> str:
    """Build the project of every layer with a default style in the GeoPackage, in the definitions' draw order."""
    query = (
        "SELECT s.f_table_name, s.styleQML, c.identifier, r.organization, r.organization_coordsys_id, r.definition "
        "FROM layer_styles s JOIN gpkg_contents c ON lower(c.table_name) = lower(s.f_table_name) "
        "LEFT JOIN gpkg_spatial_ref_sys r ON r.srs_id = c.srs_id WHERE s.useAsDefault ORDER BY s.f_table_name"
    )
    found = list(con.execute(query))
    crs = ("", "")
    layers = []
    for table, qml, identifier, organization, code, wkt in found:
        spec = specs.get(table)
        if organization and code is not None and crs == ("", ""):
            crs = (f"{str(organization).upper()}:{code}", str(wkt or ""))
        visible = spec.visible_by_default if spec is not None else True
        order = spec.draw_order if spec is not None else 0.0
        layers.append((-order, table, spec.title if spec is not None else identifier or table, qml, visible))
    layers.sort()
    return project_qgs(
        gpkg_path.name, [(t, n, q, v) for _, t, n, q, v in layers], crs, title=f"{gpkg_path.stem} (heatmap)"
    )


def _write_project(con: sqlite3.Connection, name: str, qgs: str) -> None:
    """Store the project as QGIS does: a zipped ``.qgz``, hex-encoded, in the ``qgis_projects`` table."""
    import io
    import json
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{name}.qgs", qgs)
    metadata = json.dumps({"last_modified_time": "", "last_modified_user": "heatmap"})
    con.execute(_CREATE_QGIS_PROJECTS)
    con.execute("DELETE FROM qgis_projects WHERE name = ?", (name,))
    con.execute("INSERT INTO qgis_projects VALUES (?, ?, ?)", (name, metadata, buffer.getvalue().hex()))


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
        fields = {row[1]: str(row[2] or "") for row in con.execute(f"PRAGMA table_info({quoted})") if row[1] != column}
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
