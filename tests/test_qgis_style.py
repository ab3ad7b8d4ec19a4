from __future__ import annotations

import logging
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import LineString, MultiPolygon, Point, box

from heatmap._errors import OutputError
from heatmap.maps import qgis_style
from heatmap.maps.layers import load_layer_specs

CRS = "EPSG:3067"
X0, Y0 = 385_000.0, 6_672_000.0
QGIS_COLUMNS = [
    "id",
    "f_table_catalog",
    "f_table_schema",
    "f_table_name",
    "f_geometry_column",
    "styleName",
    "styleQML",
    "styleSLD",
    "useAsDefault",
    "description",
    "owner",
    "ui",
    "update_time",
]


def _layers() -> dict[str, gpd.GeoDataFrame]:
    """A tiny plan with the output schemas (consumers as polygons, one of them a MultiPolygon)."""
    sources = gpd.GeoDataFrame(
        {
            "source_id": ["S1"],
            "name": ["Data centre <Kamppi>"],
            "capacity_kw": [5000.0],
            "t_supply_c": [80.0],
            "q_supplied_kw": [3120.4],
            "mdot_kg_per_s": [18.6],
            "pump_lift_bar": [2.35],
        },
        geometry=[Point(X0, Y0)],
        crs=CRS,
    )
    consumers = gpd.GeoDataFrame(
        {
            "consumer_id": ["C1", "C2", "C3"],
            "name": ["School", "Flats", None],
            "building_type": ["school", "residential", "office"],
            "annual_demand_mwh": [80.0, 1200.0, np.nan],
            "peak_load_kw": [40.0, 500.0, 900.0],
            "connected": [True, True, False],
            "service_length_m": [12.5, 20.0, np.nan],
            "service_cost_eur": [1234.0, 2000.0, np.nan],
            "dp_bar": [0.8, 0.6, np.nan],
            "t_supply_c": [79.5, 78.9, np.nan],
        },
        geometry=[
            box(X0 + 100, Y0 + 50, X0 + 130, Y0 + 80),
            MultiPolygon([box(X0 + 200, Y0 - 60, X0 + 240, Y0 - 20), box(X0 + 250, Y0 - 60, X0 + 270, Y0)]),
            box(X0 + 300, Y0 + 50, X0 + 330, Y0 + 90),
        ],
        crs=CRS,
    )
    pipes = gpd.GeoDataFrame(
        {
            "pipe_id": ["P1s", "P1r", "P2s", "P2r"],
            "circuit": ["supply", "return", "supply", "return"],
            "kind": ["main", "main", "service", "service"],
            "dn": [100, 100, 25, 25],
            "length_m": [110.0, 110.0, 60.0, 60.0],
            "mdot_kg_per_s": [18.6, -18.6, 2.1, -2.1],
            "v_m_per_s": [1.8, 1.8, 0.9, 0.9],
            "r_pa_per_m": [120.0, 118.0, 80.0, 79.0],
            "dp_bar": [0.13, 0.13, 0.05, 0.05],
            "t_in_c": [80.0, 45.2, 79.8, 45.0],
            "t_out_c": [79.8, 45.0, 79.5, 44.9],
            "q_loss_kw": [1.2, 0.6, 0.4, 0.2],
            "cost_eur": [88000.0, 88000.0, 21000.0, 21000.0],
        },
        geometry=[
            LineString([(X0, Y0), (X0 + 110, Y0)]),
            LineString([(X0 + 110, Y0 - 5), (X0, Y0 - 5)]),
            LineString([(X0 + 110, Y0), (X0 + 110, Y0 + 50)]),
            LineString([(X0 + 115, Y0 + 50), (X0 + 115, Y0)]),
        ],
        crs=CRS,
    )
    streets = gpd.GeoDataFrame(
        {
            "edge_id": [1, 2],
            "name": ["Mannerheimintie", None],
            "highway": ["primary", "residential"],
            "length_m": [110.0, 200.0],
            "in_plan": [True, False],
        },
        geometry=[LineString([(X0, Y0), (X0 + 110, Y0)]), LineString([(X0 + 110, Y0), (X0 + 310, Y0)])],
        crs=CRS,
    )
    junctions = gpd.GeoDataFrame(
        {
            "junction_id": [1, 2],
            "circuit": ["supply", "return"],
            "node_id": [10, 10],
            "p_bar": [6.0, 3.5],
            "t_c": [80.0, 45.0],
        },
        geometry=[Point(X0 + 110, Y0), Point(X0 + 110, Y0 - 5)],
        crs=CRS,
    )
    return {
        "sources": sources,
        "consumers": consumers,
        "pipes": pipes,
        "streets": streets,
        "junctions": junctions,
    }


GEOMETRY_TYPES = {
    "sources": "Point",
    "consumers": "MultiPolygon",
    "pipes": "LineString",
    "streets": "LineString",
    "junctions": "Point",
}


def _write_gpkg(path: Path, layers: dict[str, gpd.GeoDataFrame]) -> Path:
    for name, gdf in layers.items():
        gdf.to_file(path, layer=name, driver="GPKG", engine="pyogrio", dataset_options={"VERSION": "1.3"})
    return path


@pytest.fixture()
def gpkg(tmp_path: Path) -> Path:
    return _write_gpkg(tmp_path / "plan.gpkg", _layers())


def _rows(path: Path) -> list[dict]:
    with sqlite3.connect(path) as con:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute("SELECT * FROM layer_styles ORDER BY f_table_name")]


def _qml(path: Path, layer: str) -> ET.Element:
    (row,) = [r for r in _rows(path) if r["f_table_name"] == layer]
    assert row["styleQML"].startswith("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>")
    return ET.fromstring(row["styleQML"])


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    return ",".join(str(int(h[i : i + 2], 16)) for i in (0, 2, 4)) + f",{round(alpha * 255)}"


def _symbol_colors(root: ET.Element, key: str) -> list[str]:
    out = []
    for symbol in root.find("renderer-v2/symbols"):
        props = {o.get("name"): o.get("value") for o in symbol.find("layer/Option")}
        out.append(props[key])
    return out


def test_table_and_one_default_row_per_layer(gpkg: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="heatmap.maps.qgis_style"):
        qgis_style.write_layer_styles(gpkg, GEOMETRY_TYPES)
    infos = [r for r in caplog.records if r.name == "heatmap.maps.qgis_style" and r.levelno == logging.INFO]
    assert len(infos) == 1 and "5 layers" in infos[0].getMessage()

    with sqlite3.connect(gpkg) as con:
        columns = [r[1] for r in con.execute("PRAGMA table_info(layer_styles)")]
        contents = con.execute(
            "SELECT data_type, identifier FROM gpkg_contents WHERE table_name = 'layer_styles'"
        ).fetchall()
        geometry_columns = dict(con.execute("SELECT table_name, column_name FROM gpkg_geometry_columns"))
    assert columns == QGIS_COLUMNS
    assert contents == [("attributes", "layer_styles")]

    rows = _rows(gpkg)
    assert sorted(r["f_table_name"] for r in rows) == sorted(GEOMETRY_TYPES)
    for row in rows:
        assert row["f_table_catalog"] == "" and row["f_table_schema"] == ""
        assert row["f_geometry_column"] == geometry_columns[row["f_table_name"]]
        assert row["useAsDefault"] == 1
        assert row["styleName"] == row["f_table_name"]
        assert row["update_time"]
        ET.fromstring(row["styleQML"])  # well-formed


def test_renderers_follow_the_layer_definitions(gpkg: Path) -> None:
    qgis_style.write_layer_styles(gpkg, GEOMETRY_TYPES)
    specs = load_layer_specs()

    pipes = _qml(gpkg, "pipes")
    assert pipes.get("version").startswith("3.28")
    spec = specs["pipes"]
    renderer = pipes.find("renderer-v2")
    assert renderer.get("type") == "graduatedSymbol" and renderer.get("attr") == "dn"
    ranges = renderer.findall("ranges/range")
    assert len(ranges) == len(spec.color.classes)
    assert [float(r.get("upper")) for r in ranges] == [c.upper for c in spec.color.classes]
    assert [float(r.get("lower")) for r in ranges[1:]] == [c.upper for c in spec.color.classes[:-1]]
    assert [r.get("label") for r in ranges] == [c.label for c in spec.color.classes]
    symbols = renderer.findall("symbols/symbol")
    assert [s.get("type") for s in symbols] == ["line"] * len(ranges)
    assert [s.find("layer").get("class") for s in symbols] == ["SimpleLine"] * len(ranges)
    assert _symbol_colors(pipes, "line_color") == [_rgba(c.color, spec.opacity) for c in spec.color.classes]

    consumers = _qml(gpkg, "consumers")
    spec = specs["consumers"]
    renderer = consumers.find("renderer-v2")
    assert renderer.get("type") == "graduatedSymbol" and renderer.get("attr") == "annual_demand_mwh"
    assert len(renderer.findall("ranges/range")) == len(spec.color.classes)
    assert {s.find("layer").get("class") for s in renderer.findall("symbols/symbol")} == {"SimpleFill"}
    fills = [_rgba(c.color, spec.fill_opacity) for c in spec.color.classes]
    assert _symbol_colors(consumers, "color") == fills
    assert set(_symbol_colors(consumers, "outline_color")) == {_rgba(spec.stroke_color, spec.opacity)}
    assert consumers.findtext("layerGeometryType") == "2"

    junctions = _qml(gpkg, "junctions")
    spec = specs["junctions"]
    renderer = junctions.find("renderer-v2")
    assert renderer.get("type") == "categorizedSymbol" and renderer.get("attr") == "circuit"
    categories = renderer.findall("categories/category")
    # one category per class, then QGIS' "all other values" (empty value) in the unmatched colour
    assert [c.get("value") for c in categories] == [c.value for c in spec.color.classes] + [""]
    assert [c.get("label") for c in categories] == [c.label for c in spec.color.classes] + ["Other"]
    colors = [c.color for c in spec.color.classes] + [spec.unmatched_color]
    assert _symbol_colors(junctions, "color") == [_rgba(c, spec.fill_opacity) for c in colors]
    assert set(_symbol_colors(junctions, "size")) == {f"{2 * spec.radius_px:g}"}
    assert set(_symbol_colors(junctions, "size_unit")) == {"Pixel"}
    assert set(_symbol_colors(junctions, "name")) == {"circle"}

    sources = _qml(gpkg, "sources")
    spec = specs["sources"]
    assert sources.find("renderer-v2").get("type") == "singleSymbol"
    assert sources.find("renderer-v2/symbols/symbol").get("type") == "marker"
    assert _symbol_colors(sources, "color") == [_rgba(spec.color.color, spec.fill_opacity)]

    streets = _qml(gpkg, "streets")
    spec = specs["streets"]
    assert streets.find("renderer-v2").get("type") == "singleSymbol"
    assert _symbol_colors(streets, "line_color") == [_rgba(spec.color.color, spec.opacity)]
    assert _symbol_colors(streets, "line_width") == [f"{spec.width.constant_px:g}"]


def _data_defined(symbol: ET.Element) -> dict[str, str]:
    props = symbol.find("layer/data_defined_properties/Option/Option[@name='properties']")
    out = {}
    for prop in props:
        values = {o.get("name"): o.get("value") for o in prop}
        assert values["active"] == "true" and values["type"] == "3"
        out[prop.get("name")] = values["expression"]
    return out


def test_pipe_width_and_dash_are_data_defined(gpkg: Path) -> None:
    qgis_style.write_layer_styles(gpkg, GEOMETRY_TYPES)
    spec = load_layer_specs()["pipes"]
    for symbol in _qml(gpkg, "pipes").findall("renderer-v2/symbols/symbol"):
        defined = _data_defined(symbol)
        width = defined["outlineWidth"]
        assert "scale_linear(" in width and f'"{spec.width.field}"' in width
        assert f"{spec.width.min_px:g}" in width and f"{spec.width.max_px:g}" in width
        assert defined["customDash"] == "CASE WHEN \"circuit\" = 'return' THEN '6;4' END"
    streets = _qml(gpkg, "streets").find("renderer-v2/symbols/symbol")
    assert _data_defined_names(streets) == set()


def _data_defined_names(symbol: ET.Element) -> set[str]:
    props = symbol.find("layer/data_defined_properties/Option/Option[@name='properties']")
    return {p.get("name") for p in props}


def test_aliases_map_tip_and_display_expression(gpkg: Path) -> None:
    qgis_style.write_layer_styles(gpkg, GEOMETRY_TYPES)
    specs = load_layer_specs()
    pipes = _qml(gpkg, "pipes")
    aliases = {a.get("field"): a.get("name") for a in pipes.findall("aliases/alias")}
    assert aliases["length_m"] == "Length [m]"
    assert aliases["cost_eur"] == "Cost [€]"
    assert aliases["pipe_id"] == "Pipe"
    with sqlite3.connect(gpkg) as con:  # every column but the geometry has an alias: popup, name or definition
        columns = [r[1] for r in con.execute("PRAGMA table_info(pipes)") if r[1] != "geom"]
    assert list(aliases) == columns and all(aliases.values())
    assert {pf.field for pf in specs["pipes"].popup if pf.field in columns} < set(aliases)
    assert aliases["fid"] == "Feature id"

    tip = pipes.findtext("mapTip")
    assert specs["pipes"].title in tip
    assert "Pressure gradient" in tip
    assert "format_number(round(\"length_m\", 1) + 0, 1, 'en') || ' m'" in tip
    assert pipes.findtext("previewExpression").startswith("'Pipe ' || ")

    consumers = _qml(gpkg, "consumers")
    tip = consumers.findtext("mapTip")
    assert "WHEN \"connected\" THEN 'yes' ELSE 'no'" in tip  # a boolean column
    aliases = {a.get("field"): a.get("name") for a in consumers.findall("aliases/alias")}
    assert aliases["t_supply_c"] == "Supply temperature arriving at the building [°C]"
    widgets = {f.get("name"): f.find("editWidget") for f in consumers.findall("fieldConfiguration/field")}
    precision = widgets["annual_demand_mwh"].find("config/Option/Option[@name='Precision']")
    assert widgets["annual_demand_mwh"].get("type") == "Range" and precision.get("value") == "1"
    assert "name" not in widgets  # text columns keep their default widget


def test_writing_twice_keeps_one_row_per_layer_and_file_reads_back(gpkg: Path) -> None:
    qgis_style.write_layer_styles(gpkg, GEOMETRY_TYPES)
    first = {r["f_table_name"]: r["id"] for r in _rows(gpkg)}
    qgis_style.write_layer_styles(gpkg, {"pipes": "LineString"})
    qgis_style.write_layer_styles(gpkg, GEOMETRY_TYPES)
    rows = _rows(gpkg)
    assert sorted(r["f_table_name"] for r in rows) == sorted(GEOMETRY_TYPES)
    assert all(r["useAsDefault"] == 1 for r in rows)
    assert {r["f_table_name"]: r["id"] for r in rows}.keys() == first.keys()
    with sqlite3.connect(gpkg) as con:
        query = "SELECT count(*) FROM gpkg_contents WHERE table_name = 'layer_styles'"
        assert con.execute(query).fetchone() == (1,)

    import pyogrio

    listed = {name for name, _ in pyogrio.list_layers(gpkg)}
    assert set(GEOMETRY_TYPES) | {"layer_styles"} == listed
    original = _layers()
    for name in GEOMETRY_TYPES:
        back = gpd.read_file(gpkg, layer=name, engine="pyogrio")
        assert len(back) == len(original[name])
        assert back.crs == CRS
        assert list(back.columns[:-1]) == list(original[name].columns[:-1])
    styles = gpd.read_file(gpkg, layer="layer_styles", engine="pyogrio")
    assert len(styles) == len(GEOMETRY_TYPES)


def test_other_styles_are_kept_but_not_default(gpkg: Path) -> None:
    qgis_style.write_layer_styles(gpkg, GEOMETRY_TYPES)
    with sqlite3.connect(gpkg) as con:
        con.execute(
            "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, f_geometry_column, "
            "styleName, styleQML, useAsDefault) VALUES ('', '', 'pipes', 'geom', 'mine', '<qgis/>', 1)"
        )
    qgis_style.write_layer_styles(gpkg, {"pipes": "LineString"})
    pipes = {r["styleName"]: r["useAsDefault"] for r in _rows(gpkg) if r["f_table_name"] == "pipes"}
    assert pipes == {"mine": 0, "pipes": 1}


def test_point_consumers_get_marker_symbols(tmp_path: Path) -> None:
    layers = _layers()
    consumers = layers["consumers"].copy()
    consumers["geometry"] = consumers.geometry.centroid
    path = _write_gpkg(tmp_path / "points.gpkg", {"consumers": consumers})
    qgis_style.write_layer_styles(path, {"consumers": "Point"})
    root = _qml(path, "consumers")
    assert {s.get("type") for s in root.findall("renderer-v2/symbols/symbol")} == {"marker"}
    assert root.findtext("layerGeometryType") == "0"


def test_empty_layer_is_styled_by_its_definition(tmp_path: Path) -> None:
    empty = _layers()["pipes"].iloc[:0]
    path = _write_gpkg(tmp_path / "empty.gpkg", {"pipes": empty})
    qgis_style.write_layer_styles(path, {"pipes": "Point"})  # what a writer may guess for no features
    root = _qml(path, "pipes")
    assert {s.get("type") for s in root.findall("renderer-v2/symbols/symbol")} == {"line"}


def test_qml_for_rejects_wrong_geometry() -> None:
    specs = load_layer_specs()
    with pytest.raises(ValueError, match="defined as 'line'"):
        qgis_style.qml_for(specs["pipes"], "Point")
    with pytest.raises(ValueError, match="unknown geometry type"):
        qgis_style.qml_for(specs["pipes"], "Curve")
    ET.fromstring(qgis_style.qml_for(specs["consumers"], "Polygon"))


def test_errors(tmp_path: Path, gpkg: Path) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        qgis_style.write_layer_styles(tmp_path / "missing.gpkg", GEOMETRY_TYPES)
    with pytest.raises(OutputError, match=r"layer 'heat' is not in .*plan\.gpkg"):
        qgis_style.write_layer_styles(gpkg, {"heat": "Point"})
    with pytest.raises(OutputError, match="holds POINT, not LineString"):
        qgis_style.write_layer_styles(gpkg, {"sources": "LineString"})
    specs = {k: v for k, v in load_layer_specs().items() if k != "streets"}
    with pytest.raises(OutputError, match=r"no layer definition for 'streets'"):
        qgis_style.write_layer_styles(gpkg, GEOMETRY_TYPES, specs=specs)
    not_a_gpkg = tmp_path / "notes.gpkg"
    not_a_gpkg.write_text("not a database", encoding="utf-8")
    with pytest.raises(OutputError, match="is it a GeoPackage"):
        qgis_style.write_layer_styles(not_a_gpkg, GEOMETRY_TYPES)
    with sqlite3.connect(gpkg) as con:  # failed calls wrote nothing
        assert not con.execute("SELECT 1 FROM sqlite_master WHERE name = 'layer_styles'").fetchall()


def test_plain_aliases_spell_out_names_and_units() -> None:
    assert qgis_style.plain_alias("reachable_street_m") == "Reachable street [m]"
    assert qgis_style.plain_alias("annual_cost_share_eur_per_a") == "Annual cost share [€/a]"
    assert qgis_style.plain_alias("t_feed_in_c") == "Temperature feed in [°C]"
    assert qgis_style.plain_alias("service_v_own_peak_m_per_s") == "Service velocity own peak [m/s]"
    assert qgis_style.plain_alias("n_cells") == "Number of cells"
    assert qgis_style.plain_alias("eur_per_mwh") == "Cost [€/MWh]"
    assert qgis_style.plain_alias("osmid") == "Osmid"
    streets = load_layer_specs()["streets"]  # the definition's aliases come before the name's
    assert qgis_style.field_aliases(streets, {"u": "INTEGER", "osmid": "TEXT", "length_m": "REAL"}) == {
        "u": "From node (OSM)",
        "osmid": "OSM way id",
        "length_m": "Length [m]",
    }


def test_labels_for_sources_and_large_consumers(gpkg: Path) -> None:
    qgis_style.write_layer_styles(gpkg, GEOMETRY_TYPES)
    specs = load_layer_specs()
    for name in ("sources", "consumers"):
        root = _qml(gpkg, name)
        assert root.get("labelsEnabled") == "1"
        text = root.find("labeling/settings/text-style")
        assert text.get("isExpression") == "1"
        assert text.get("fieldName") == qgis_style.label_expression(specs[name], None)
    consumers = _qml(gpkg, "consumers").find("labeling/settings/text-style").get("fieldName")
    assert consumers.startswith('CASE WHEN "annual_demand_mwh" >= 2500 THEN coalesce(')
    for name in ("pipes", "junctions", "streets"):
        root = _qml(gpkg, name)
        assert root.get("labelsEnabled") == "0" and root.find("labeling") is None
    # no label without the columns it names
    assert qgis_style.label_expression(specs["consumers"], {"name": "TEXT"}) is None
    assert qgis_style.label_expression(specs["sources"], {"capacity_kw": "REAL"}) is None
    assert qgis_style.label_expression(specs["sources"], {"source_id": "TEXT"}) == (
        "nullif(trim(to_string(\"source_id\")), '')"
    )


def test_junctions_are_drawn_only_zoomed_in(gpkg: Path) -> None:
    qgis_style.write_layer_styles(gpkg, GEOMETRY_TYPES)
    junctions = _qml(gpkg, "junctions")
    assert junctions.get("hasScaleBasedVisibilityFlag") == "1" and junctions.get("minScale") == "2500"
    pipes = _qml(gpkg, "pipes")
    assert pipes.get("hasScaleBasedVisibilityFlag") == "0"


def test_raster_style_follows_the_classes(tmp_path: Path) -> None:
    spec = load_layer_specs()["heat_density"]
    path = qgis_style.write_raster_style(tmp_path / "heat_density.tif", spec)
    assert path == tmp_path / "heat_density.qml"  # where QGIS looks for a file's default style
    root = ET.fromstring(path.read_text(encoding="utf-8"))
    renderer = root.find("pipe/rasterrenderer")
    assert renderer.get("type") == "singlebandpseudocolor" and float(renderer.get("opacity")) == spec.fill_opacity
    ramp = renderer.find("rastershader/colorrampshader")
    assert ramp.get("colorRampType") == "DISCRETE"
    items = [(i.get("value"), i.get("color"), i.get("label")) for i in ramp.findall("item")]
    assert (
        items == [(qgis_style._number(c.upper), c.color, c.label) for c in spec.color.classes] and items[-1][0] == "inf"
    )
    with pytest.raises(ValueError, match="no raster with graduated classes"):
        qgis_style.raster_qml(load_layer_specs()["pipes"])
    with pytest.raises(OutputError, match="cannot write the QGIS style"):
        qgis_style.write_raster_style(tmp_path / "missing" / "x.tif", spec)


def _project(gpkg: Path) -> ET.Element:
    import io
    import zipfile

    with sqlite3.connect(gpkg) as con:
        rows = con.execute("SELECT name, content FROM qgis_projects").fetchall()
    assert [name for name, _ in rows] == [gpkg.stem]
    with zipfile.ZipFile(io.BytesIO(bytes.fromhex(rows[0][1]))) as archive:
        assert archive.namelist() == [f"{gpkg.stem}.qgs"]
        text = archive.read(f"{gpkg.stem}.qgs").decode("utf-8")
    assert text.startswith("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>")
    return ET.fromstring(text.split("\n", 1)[1])


def test_project_in_the_geopackage_lists_every_styled_layer(gpkg: Path) -> None:
    qgis_style.write_layer_styles(gpkg, {"pipes": "LineString"})
    qgis_style.write_layer_styles(gpkg, GEOMETRY_TYPES)  # again, all layers: one project, replaced
    root = _project(gpkg)
    specs = load_layer_specs()
    nodes = root.findall("layer-tree-group/layer-tree-layer")
    tables = [n.get("source").split("layername=")[1] for n in nodes]
    assert tables == sorted(GEOMETRY_TYPES, key=lambda t: -specs[t].draw_order)  # top of the tree first
    assert {n.get("source").split("|")[0] for n in nodes} == {"./plan.gpkg"}  # relative to the GeoPackage
    assert root.findtext("properties/Paths/Absolute") == "false"
    checked = {t: n.get("checked") for t, n in zip(tables, nodes, strict=True)}
    assert checked.pop("junctions") == "Qt::Unchecked" and set(checked.values()) == {"Qt::Checked"}
    assert [n.get("name") for n in nodes] == [specs[t].title for t in tables]
    assert root.findtext("projectCrs/spatialrefsys/authid") == "EPSG:3067"
    layers = {m.findtext("id"): m for m in root.findall("projectlayers/maplayer")}
    pipes = layers[next(n.get("id") for n in nodes if n.get("source").endswith("=pipes"))]
    assert pipes.findtext("datasource") == "./plan.gpkg|layername=pipes" and pipes.get("geometry") == "Line"
    assert pipes.find("renderer-v2").get("type") == "graduatedSymbol"  # the layer's style, in the project
    assert [o.get("id") for o in root.findall("layerorder/layer")] == [n.get("id") for n in nodes]


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ("labels: {field: name, size: 9}\n", "unexpected keyword argument 'size'"),
        ("max_scale_denominator: 0\n", "max_scale_denominator must be a scale denominator above 0"),
        ("max_scale_denominator: near\n", "could not convert string to float"),
    ],
)
def test_bad_qgis_keys_of_a_layer_definition_name_the_file(tmp_path: Path, extra: str, match: str) -> None:
    from heatmap._errors import ScenarioError

    text = (Path(__file__).parents[1] / "layers" / "sources.yaml").read_text(encoding="utf-8")
    text = "\n".join(line for line in text.splitlines() if not line.startswith(("labels:", "max_scale")))
    (tmp_path / "sources.yaml").write_text(text + "\n" + extra, encoding="utf-8")
    with pytest.raises(ScenarioError, match=f"sources.yaml: invalid layer definition .*{match}"):
        load_layer_specs(tmp_path)
