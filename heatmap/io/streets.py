"""Street networks from OpenStreetMap: live with osmnx, or offline from a PBF, an ``.osm`` XML or a GraphML.

All readers return an osmnx-style ``MultiDiGraph``; :func:`street_edges` turns it into one undirected row
per street segment in the plan's metric CRS, the input of the candidate graph.

Live downloads use osmnx's own response cache in ``settings.cache_dir / "osmnx"``; with no network they fail
within ``settings.osm_timeout_s`` with an :class:`~heatmap._errors.OfflineError` that names the cache and
the offline alternatives.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import networkx as nx
import numpy as np
import osmnx as ox
import pandas as pd
import shapely
from pyproj import CRS

from heatmap import settings
from heatmap._errors import OfflineError, StreetDataError

if TYPE_CHECKING:
    import pyrosm

logger = logging.getLogger(__name__)

XML_EXCLUDED_HIGHWAYS = frozenset(
    {
        "proposed",
        "construction",
        "abandoned",
        "platform",
        "raceway",
        "elevator",
        "steps",
        "corridor",
        "bus_stop",
    }
)
"""``highway`` values that never carry pipes when reading an ``.osm`` XML file."""

TUNNELS_KEPT = frozenset({"no", "building_passage"})
"""OSM ``tunnel`` values of ways that carry pipes like any street: none, or a passage through a building at ground
level. A way in a road tunnel (``tunnel=yes``, below ground: central Helsinki's service tunnels run under the blocks and
beside the streets) is no trench route; the readers leave such ways out unless asked to keep them."""


def in_tunnel(value: object) -> bool:
    """Return whether an OSM ``tunnel`` value marks a tunnel (a list, of a street merged from several ways: all do)."""
    values = value if isinstance(value, list) else [value]
    return all(isinstance(v, str) and v not in TUNNELS_KEPT for v in values)


def without_tunnels(G: nx.MultiDiGraph, *, where: str) -> nx.MultiDiGraph:
    """Return the street graph without its edges in tunnels (:func:`in_tunnel`) and the nodes left without an edge.

    How many OSM ways were left out is in ``G.graph["tunnel_ways_left_out"]``; ``where`` (the file or the download)
    names the street data in the error raised where every street is in a tunnel.
    """
    tunnels = [(u, v, k, d.get("osmid")) for u, v, k, d in G.edges(keys=True, data=True) if in_tunnel(d.get("tunnel"))]
    if tunnels and len(tunnels) == G.number_of_edges():
        raise _all_in_tunnels(where)
    G = G.copy()
    G.remove_edges_from([(u, v, k) for u, v, k, _ in tunnels])
    G.remove_nodes_from([n for n in list(G.nodes) if G.degree(n) == 0])
    ways = {w for *_, osmid in tunnels for w in (osmid if isinstance(osmid, list) else [osmid])}
    G.graph["tunnel_ways_left_out"] = G.graph.get("tunnel_ways_left_out", 0) + len(ways)
    if ways:
        logger.info("Left out %d OSM ways in tunnels (%d street edges)", len(ways), len(tunnels))
    return G


def _all_in_tunnels(where: str) -> StreetDataError:
    return StreetDataError(f"{where}: every street lies in a tunnel; keep them with 'streets.tunnels: include'")


def graph_from_pbf(path: Path, *, network_type: str, keep_tunnels: bool = False) -> nx.MultiDiGraph:
    """Read the street graph of an OSM PBF file with pyrosm.

    Parameters
    ----------
    path
        The ``.osm.pbf`` file.
    network_type
        pyrosm's network type (``driving``, ``driving+service``, ``walking``, ``cycling``, ``all``).
    keep_tunnels
        Keep the ways in tunnels (:func:`in_tunnel`); left out by default, before pyrosm joins the ways into
        streets (so a street partly in a tunnel keeps its part above ground). How many were left out is in
        ``G.graph["tunnel_ways_left_out"]``.

    Returns
    -------
    networkx.MultiDiGraph
        An osmnx-compatible graph in EPSG:4326.
    """
    import pyrosm

    with _reading_pbf(path):
        nodes, edges = _open_pbf(path).get_network(nodes=True, network_type=network_type)
    if edges is None or len(edges) == 0:
        raise StreetDataError(f"{path}: holds no streets of network type '{network_type}'")
    tunnel = edges["tunnel"].map(in_tunnel).to_numpy(bool) if "tunnel" in edges and not keep_tunnels else None
    if tunnel is not None and tunnel.all():
        raise _all_in_tunnels(f"{path} (network type '{network_type}')")
    kept = edges if tunnel is None else edges[~tunnel]
    G = pyrosm.OSM.to_graph(nodes, kept, graph_type="networkx", osmnx_compatible=True, retain_all=True)
    G.graph["tunnel_ways_left_out"] = 0 if tunnel is None else int(edges.id[tunnel].nunique())
    if tunnel is not None and tunnel.any():
        logger.info("Left out %d OSM ways in tunnels from %s", G.graph["tunnel_ways_left_out"], path)
    logger.info("Read %d street nodes, %d edges from %s", G.number_of_nodes(), G.number_of_edges(), path)
    return G


@contextlib.contextmanager
def _reading_pbf(path: Path) -> Iterator[None]:
    """Turn what pyrosm raises on a file that is not (complete) OSM PBF into a :class:`StreetDataError` naming it."""
    pbf_error, decode_error = _pbf_errors()
    try:
        yield
    except StreetDataError:
        raise
    except (KeyError, ValueError, RuntimeError, pbf_error, decode_error) as exc:  # pyrosm's on broken data
        if isinstance(exc, pbf_error):
            reason = "it does not follow the OSM PBF format"
        elif isinstance(exc, decode_error):
            reason = f"its data is corrupt: {str(exc).splitlines()[0]}"
        else:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StreetDataError(
            f"{path}: not a readable OSM PBF file ({reason}); check that the file is complete (a download may have "
            f"been cut off) and in the PBF format (.osm XML goes with 'streets.source: xml')"
        ) from exc


def _pbf_errors() -> tuple[type[Exception], ...]:
    """Exceptions pyrosm raises on a file that is not (complete) OSM PBF: its own, and protobuf's decode error."""
    from google.protobuf.message import Error as ProtobufError
    from pyrosm.exceptions import PBFException

    return PBFException, ProtobufError


def _open_pbf(path: Path) -> pyrosm.OSM:
    import pyrosm

    if not Path(path).is_file():
        raise StreetDataError(f"{path}: OSM PBF file not found")
    try:
        return pyrosm.OSM(str(path))
    except (OSError, ValueError, RuntimeError) as exc:
        raise StreetDataError(f"{path}: not a readable OSM PBF file ({exc})") from exc


def buildings_from_pbf(path: Path) -> gpd.GeoDataFrame:
    """Read the building footprints of an OSM PBF file with pyrosm, with the land use around each.

    Parameters
    ----------
    path
        The ``.osm.pbf`` file.

    Returns
    -------
    geopandas.GeoDataFrame
        Polygon footprints with their OSM tags, an ``id`` column (``way/123`` or ``relation/45``), ``landuse``:
        that of the smallest OSM ``landuse`` polygon of the same file holding the building's representative point,
        else the building's own ``landuse`` tag (see :func:`landuse_from_pbf`), and ``inside_building``: the id of
        another building whose footprint holds this one's (:func:`containing_building`; the demand rule counts
        its floor area once, :mod:`heatmap.demand.buildings`); EPSG:4326.
    """
    with _reading_pbf(path):
        osm = _open_pbf(path)
        b = osm.get_buildings()
    if b is None or len(b) == 0:
        raise StreetDataError(f"{path}: holds no buildings")
    b = b[b.geometry.geom_type.isin(["Polygon", "MultiPolygon"]) & b.geometry.is_valid].copy()
    b["id"] = b["osm_type"].astype(str) + "/" + b["id"].astype(str)
    b = b.drop_duplicates("id").set_crs("EPSG:4326", allow_override=True).reset_index(drop=True)
    around = landuse_around(b, landuse_from_pbf(path, osm=osm))
    own = b["landuse"] if "landuse" in b else pd.Series(None, index=b.index, dtype=object)
    b["landuse"] = around.where(around.notna(), own)
    b["inside_building"] = containing_building(b)
    logger.info(
        "Read %d buildings from %s (%d within a landuse polygon, %d inside another building)",
        len(b), path, int(around.notna().sum()), int(b.inside_building.notna().sum()),
    )  # fmt: skip
    return b


NESTED_SHARE = 0.95
"""A footprint at least this share of which lies in another, larger building's footprint is inside that building."""


def containing_building(buildings: gpd.GeoDataFrame) -> pd.Series:
    """Find, for each footprint, the building it lies inside: the smallest other footprint holding its area.

    OSM maps some buildings twice: a dome and a tower drawn inside the church, a shop's multipolygon inside the
    department store around it, a faculty inside the main building. Such a footprint is inside another where at
    least :data:`NESTED_SHARE` of its area lies in the other's and the other is larger (of two equal footprints, the
    later one in the frame is inside the earlier). Areas are compared in the buildings' UTM zone.

    Parameters
    ----------
    buildings
        Footprints with an ``id`` column: in degrees (EPSG:4326; compared in their UTM zone) or a metric CRS.

    Returns
    -------
    pandas.Series
        The containing building's ``id`` (None where there is none), indexed like ``buildings``.
    """
    found = np.full(len(buildings), None, dtype=object)
    if buildings.empty:
        return pd.Series(found, index=buildings.index, dtype=object)
    geographic = buildings.crs is not None and not buildings.crs.is_projected
    metric = buildings.to_crs(buildings.estimate_utm_crs()) if geographic else buildings
    geoms = np.asarray(metric.geometry.values, dtype=object)
    area = shapely.area(geoms)
    inner, outer = shapely.STRtree(geoms).query(shapely.point_on_surface(geoms), predicate="within")
    larger = (area[outer] > area[inner]) | ((area[outer] == area[inner]) & (outer < inner))
    inner, outer = inner[larger], outer[larger]
    shared = shapely.area(shapely.intersection(geoms[inner], geoms[outer]))
    held = shared >= NESTED_SHARE * area[inner]
    inner, outer = inner[held], outer[held]
    smallest = pd.DataFrame({"inner": inner, "outer": outer, "area": area[outer]}).sort_values("area", kind="stable")
    first = smallest.drop_duplicates("inner")
    found[first.inner.to_numpy()] = buildings["id"].astype(str).to_numpy()[first.outer.to_numpy()]
    logger.info("Found %d of %d building footprints inside another", len(first), len(buildings))
    return pd.Series(found, index=buildings.index, dtype=object)


def landuse_from_pbf(path: Path, *, osm: pyrosm.OSM | None = None) -> gpd.GeoDataFrame:
    """Read the ``landuse`` polygons of an OSM PBF file with pyrosm.

    Parameters
    ----------
    path
        The ``.osm.pbf`` file.
    osm
        An open ``pyrosm.OSM`` of ``path`` (read again if not given).

    Returns
    -------
    geopandas.GeoDataFrame
        ``landuse`` (the tag's value) and valid polygon geometry, EPSG:4326; empty if the file holds none.
    """
    with _reading_pbf(path):
        osm = osm if osm is not None else _open_pbf(path)
        lu = osm.get_landuse()
    empty = gpd.GeoDataFrame({"landuse": pd.Series(dtype=object)}, geometry=[], crs="EPSG:4326")
    if lu is None or len(lu) == 0 or "landuse" not in lu:
        logger.info("No landuse polygons in %s", path)
        return empty
    lu = lu[lu.geometry.geom_type.isin(["Polygon", "MultiPolygon"]) & lu.geometry.is_valid & lu["landuse"].notna()]
    out = gpd.GeoDataFrame({"landuse": lu["landuse"].astype(str).to_numpy()}, geometry=lu.geometry.values, crs=4326)
    logger.info("Read %d landuse polygons from %s", len(out), path)
    return out


def landuse_around(buildings: gpd.GeoDataFrame, landuse: gpd.GeoDataFrame) -> pd.Series:
    """Find the ``landuse`` of the smallest polygon holding each building's representative point (NaN outside all).

    Parameters
    ----------
    buildings
        Footprints (any CRS).
    landuse
        Polygons with a ``landuse`` column (any CRS; projected to the buildings' CRS).

    Returns
    -------
    pandas.Series
        Indexed like ``buildings``.
    """
    out = pd.Series(None, index=buildings.index, dtype=object)
    if landuse.empty or buildings.empty:
        return out
    landuse = landuse.to_crs(buildings.crs)
    points = gpd.GeoDataFrame(geometry=buildings.geometry.representative_point().values, crs=buildings.crs)
    size = shapely.area(np.asarray(landuse.geometry.values, dtype=object))  # only compared with each other
    hits = points.sjoin(landuse.assign(_size=size), how="inner", predicate="within")
    if hits.empty:
        return out
    smallest = hits.sort_values("_size", kind="stable").groupby(level=0)["landuse"].first()
    out.iloc[smallest.index.to_numpy()] = smallest.to_numpy()  # points are numbered by position
    return out


def _clean_osm_xml(path: Path, out: Path) -> int:
    """Keep only highway ways whose node references all exist; return the number of ways kept."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise StreetDataError(f"{path}: not a readable OSM XML file ({exc})") from exc
    node_ids = {n.get("id") for n in root.iter("node")}
    kept = dropped_refs = 0
    for way in list(root.findall("way")):
        tags = {t.get("k"): t.get("v") for t in way.findall("tag")}
        if "highway" not in tags or tags["highway"] in XML_EXCLUDED_HIGHWAYS:
            root.remove(way)
            continue
        for nd in way.findall("nd"):
            if nd.get("ref") not in node_ids:
                way.remove(nd)
                dropped_refs += 1
        if len(way.findall("nd")) < 2:
            root.remove(way)
            continue
        kept += 1
    for rel in list(root.findall("relation")):
        root.remove(rel)
    if dropped_refs:
        logger.warning("%s: dropped %d references to nodes missing from the file", path, dropped_refs)
    ET.ElementTree(root).write(out, encoding="utf-8", xml_declaration=True)
    return kept


def graph_from_xml(path: Path, *, keep_tunnels: bool = False) -> nx.MultiDiGraph:
    """Read the street graph of an ``.osm`` XML file with osmnx.

    Ways without a ``highway`` tag (or with one of :data:`XML_EXCLUDED_HIGHWAYS`) are dropped first, and so
    are references to nodes missing from the file (common in clipped extracts, where osmnx would fail).

    Parameters
    ----------
    path
        The ``.osm`` file.
    keep_tunnels
        Keep the ways in tunnels (:func:`in_tunnel`); left out by default (:func:`without_tunnels`).

    Returns
    -------
    networkx.MultiDiGraph
        An osmnx graph in EPSG:4326.
    """
    if not Path(path).is_file():
        raise StreetDataError(f"{path}: OSM XML file not found")
    with tempfile.TemporaryDirectory() as tmp:
        clean = Path(tmp) / "streets.osm"
        if _clean_osm_xml(Path(path), clean) == 0:
            raise StreetDataError(f"{path}: holds no street (highway) ways")
        G = ox.graph_from_xml(clean, simplify=False, retain_all=True)
    logger.info("Read %d street nodes, %d edges from %s", G.number_of_nodes(), G.number_of_edges(), path)
    return G if keep_tunnels else without_tunnels(G, where=str(path))


def graph_from_graphml(path: Path, *, keep_tunnels: bool = False) -> nx.MultiDiGraph:
    """Read a street graph saved by osmnx as GraphML.

    Parameters
    ----------
    path
        The ``.graphml`` file.
    keep_tunnels
        Keep the ways in tunnels (:func:`in_tunnel`); left out by default (:func:`without_tunnels`; an edge merged
        from several ways where all are in tunnels).

    Returns
    -------
    networkx.MultiDiGraph
    """
    if not Path(path).is_file():
        raise StreetDataError(f"{path}: GraphML file not found")
    try:
        G = ox.load_graphml(path, graph_dtypes={"tunnel_ways_left_out": int}, edge_dtypes={"tunnel": _listed})
    except (ET.ParseError, KeyError, ValueError, nx.NetworkXError) as exc:
        raise StreetDataError(f"{path}: not an osmnx GraphML file ({exc})") from exc
    logger.info("Read %d street nodes, %d edges from %s", G.number_of_nodes(), G.number_of_edges(), path)
    return G if keep_tunnels else without_tunnels(G, where=str(path))


def _listed(text: str) -> str | list[str | None]:
    """Read an edge's ``tunnel`` back from GraphML: a list osmnx leaves as text (``"['yes', nan]"``) as a list."""
    if not (text.startswith("[") and text.endswith("]")):
        return text
    return [None if v == "nan" else v for v in (part.strip().strip("'\"") for part in text[1:-1].split(","))]


@contextlib.contextmanager
def _osmnx_settings() -> Iterator[None]:
    """Use heatmap's cache, timeout and quiet console in osmnx for the block; restore the caller's after."""
    ours = {
        "use_cache": True,
        "cache_folder": str(Path(settings.cache_dir) / "osmnx"),
        "requests_timeout": settings.osm_timeout_s,
        "overpass_rate_limit": False,
        "log_console": False,
    }
    theirs = {name: getattr(ox.settings, name) for name in ours}
    for name, value in ours.items():
        setattr(ox.settings, name, value)
    try:
        yield
    finally:
        for name, value in theirs.items():
            setattr(ox.settings, name, value)


def graph_from_osm_live(
    *,
    place: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    polygon: shapely.Polygon | shapely.MultiPolygon | None = None,
    network_type: str,
    keep_tunnels: bool = False,
) -> nx.MultiDiGraph:
    """Download a street graph with osmnx (cached), failing fast when offline.

    Parameters
    ----------
    place
        A place name to geocode (``"Kokkola, Finland"``).
    bbox
        ``(west, south, east, north)`` in degrees.
    polygon
        A shapely polygon in EPSG:4326.
    network_type
        osmnx network type.
    keep_tunnels
        Keep the ways in tunnels (:func:`in_tunnel`); left out by default (:func:`without_tunnels`).

    Returns
    -------
    networkx.MultiDiGraph
    """
    import requests

    nt = {"driving": "drive", "driving+service": "drive_service", "walking": "walk", "cycling": "bike"}.get(
        network_type, network_type
    )
    cache = Path(settings.cache_dir) / "osmnx"
    with _osmnx_settings():
        try:
            if place is not None:
                G = ox.graph_from_place(place, network_type=nt, simplify=False, retain_all=True)
            elif bbox is not None:
                G = ox.graph_from_bbox(bbox, network_type=nt, simplify=False, retain_all=True)
            elif polygon is not None:
                G = ox.graph_from_polygon(polygon, network_type=nt, simplify=False, retain_all=True)
            else:
                raise ValueError("graph_from_osm_live needs a place, a bbox or a polygon")
        except (requests.exceptions.RequestException, ConnectionError, TimeoutError) as exc:
            raise OfflineError(
                f"cannot download OpenStreetMap data ({type(exc).__name__}); no network or the server is down. "
                f"Earlier downloads are cached in {cache}. Work offline with "
                f"'streets.source: pbf' (an OSM PBF extract), 'xml' (.osm) or 'graphml'."
            ) from exc
        except ValueError as exc:  # osmnx: geocoding found nothing, or the area holds no streets
            raise StreetDataError(f"OpenStreetMap returned no usable streets: {exc}") from exc
    logger.info("Downloaded %d street nodes, %d edges", G.number_of_nodes(), G.number_of_edges())
    return G if keep_tunnels else without_tunnels(G, where="the OpenStreetMap download")


_EDGE_FIELDS = ("osmid", "name", "highway")
"""The street attributes :func:`street_edges` keeps."""


def _undirected_edges(G: nx.MultiDiGraph) -> gpd.GeoDataFrame | None:
    """Return ``graph_to_gdfs(osmnx.convert.to_undirected(G))``'s rows in its order, in bulk (``None``: not here).

    The same edges, ends, attributes (:data:`_EDGE_FIELDS`) and geometries in the same order as osmnx's conversion,
    which walks every edge in Python (1.8 s of a 50,000-building town's 3.4 s load). As osmnx does: every edge gets
    a geometry (a straight line where it has none); the two directions of a street under one key become one edge,
    the later one's attributes over the earlier one's; of two edges between the same nodes with the same ``osmid``
    and the same line (either way round) the first stays; the edges are listed node by node in the graph's order,
    each from its end listed first, then by when the pair of nodes was first joined, then by key; two directions
    under one key with different lines are two streets (osmnx gives the earlier a new key, so it comes after the
    other keys of its direction). Where that happens twice between the same nodes it returns ``None`` (osmnx's order
    then is that of a Python set).
    ``tests/test_streets.py`` compares both on real and synthetic streets.
    """
    e = ox.graph_to_gdfs(G, nodes=False, fill_edge_geometry=True)  # in G's edge order
    u, v, key = (e.index.get_level_values(i).to_numpy() for i in range(3))
    order = pd.Series(np.arange(G.number_of_nodes()), index=pd.Index(list(G.nodes)))
    pu, pv = order.reindex(u).to_numpy(), order.reindex(v).to_numpy()
    first = pu <= pv
    pairs = pd.DataFrame({"a": np.where(first, pu, pv), "b": np.where(first, pv, pu), "key": key})
    lines = e.geometry.to_numpy()
    same = shapely.equals_exact
    # the two directions under one key: one edge, unless their lines differ
    twin = pairs.duplicated(keep=False).to_numpy()
    later = pairs.duplicated(keep="first").to_numpy()
    i1, i2 = np.flatnonzero(twin & ~later), np.flatnonzero(twin & later)  # the earlier and the later of each twin
    if len(i1) != len(i2):
        return None
    i2 = i2[pd.MultiIndex.from_frame(pairs.iloc[i2]).get_indexer(pd.MultiIndex.from_frame(pairs.iloc[i1]))]
    step = np.arange(len(e), dtype=float)  # where each edge comes in G's edge order
    apart = ~(same(lines[i1], lines[i2], 0) | same(lines[i1], shapely.reverse(lines[i2]), 0))
    if apart.any():  # two streets, not two directions: osmnx gives the earlier a new key, after its direction's others
        moved = i1[apart]
        if pd.DataFrame({"a": pairs.a.to_numpy()[moved], "b": pairs.b.to_numpy()[moved]}).duplicated().any():
            return None  # several between the same nodes: osmnx's order among them is that of a set
        last = pd.Series(step).groupby([pu, pv]).transform("max").to_numpy()
        step[moved] = last[moved] + 0.5
        i1, i2 = i1[~apart], i2[~apart]
    data = {name: e[name].to_numpy(dtype=object).copy() if name in e else np.full(len(e), np.nan, dtype=object)
            for name in _EDGE_FIELDS}  # fmt: skip
    for j1, j2 in zip(i1.tolist(), i2.tolist(), strict=True):  # the later one's attributes, where it has them
        attrs = G.edges[u[j2], v[j2], key[j2]]
        for name in _EDGE_FIELDS:
            if name in attrs:
                data[name][j1] = attrs[name]
    lines = lines.copy()
    lines[i1] = lines[i2]
    keep = np.ones(len(e), dtype=bool)
    keep[i2] = False
    # pairs of nodes first joined when, and each edge's key first seen when (G's edge order)
    joined = pd.Series(step).groupby([pairs.a, pairs.b]).transform("min").to_numpy()
    rows = pd.DataFrame({"a": pairs.a, "b": pairs.b, "joined": joined, "step": step})[keep]
    rows = rows.sort_values(["a", "joined", "step"], kind="stable")
    # the same osmid and line as an earlier edge between the same nodes: a duplicate, dropped
    idx = rows.index.to_numpy()
    drop = np.zeros(len(idx), dtype=bool)
    shared = np.flatnonzero(rows.duplicated(["a", "b"], keep=False).to_numpy())  # nodes joined by several edges
    for group in pd.Series(shared).groupby([rows.a.to_numpy()[shared], rows.b.to_numpy()[shared]], sort=False):
        g = group[1].to_numpy()
        ids = [frozenset(o) if isinstance(o, list) else o for o in data["osmid"][idx[g]].tolist()]
        for x in range(len(g)):
            for y in range(x + 1, len(g)):
                gx, gy = lines[idx[g[x]]], lines[idx[g[y]]]
                if not drop[g[x]] and ids[x] == ids[y] and (same(gx, gy, 0) or same(gx, shapely.reverse(gy), 0)):
                    drop[g[y]] = True
    idx = idx[~drop]
    nodes = order.index.to_numpy()  # the node ids (their own dtype)
    return gpd.GeoDataFrame(
        {
            "u": nodes[pairs.a.to_numpy()[idx]],
            "v": nodes[pairs.b.to_numpy()[idx]],
            **{name: data[name][idx] for name in _EDGE_FIELDS},
        },
        geometry=lines[idx],
        crs=e.crs,
    )


def street_edges(G: nx.MultiDiGraph, crs: CRS) -> gpd.GeoDataFrame:
    """Turn a street graph into one undirected, simplified row per street segment in a metric CRS.

    Parameters
    ----------
    G
        An osmnx-style street graph.
    crs
        The plan's metric CRS.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``edge_id``, ``u``, ``v`` (street node ids), ``osmid``, ``name``, ``highway``, ``length_m``,
        geometry (LineString); ``attrs["tunnel_ways_left_out"]``: the OSM ways in tunnels the reader left out.
    """
    if G.number_of_edges() == 0:
        raise StreetDataError("the street data holds no streets")
    tunnel_ways_left_out = int(G.graph.get("tunnel_ways_left_out", 0))
    try:
        G = ox.simplify_graph(G)
    except ox._errors.GraphSimplificationError:
        pass  # already simplified (GraphML saved by osmnx)
    G = ox.project_graph(G, to_crs=crs)
    edges = _undirected_edges(G)
    if edges is None:  # streets osmnx re-keys first: its own conversion
        edges = ox.graph_to_gdfs(ox.convert.to_undirected(G), nodes=False, fill_edge_geometry=True).reset_index()

    def text(col: str) -> pd.Series:
        # a street merged from several: its values sorted (osmnx lists them in a Python set's order, which for
        # texts changes from run to run) and joined by ";"
        if col not in edges:
            return pd.Series("", index=edges.index)
        return edges[col].map(
            lambda v: ";".join(sorted(map(str, v))) if isinstance(v, list) else ("" if pd.isna(v) else str(v))
        )

    out = gpd.GeoDataFrame(
        {
            "u": edges["u"].to_numpy(),
            "v": edges["v"].to_numpy(),
            "osmid": text("osmid"),
            "name": text("name"),
            "highway": text("highway"),
            "length_m": edges.geometry.length.to_numpy(),
        },
        geometry=edges.geometry.values,
        crs=crs,
    )
    out = out[(out.u != out.v) & (out.length_m > 0)].reset_index(drop=True)
    out.insert(0, "edge_id", np.arange(len(out)))
    out.attrs["tunnel_ways_left_out"] = tunnel_ways_left_out
    logger.info("Street network: %d segments, %.1f km", len(out), out.length_m.sum() / 1000)
    return out
