"""Candidate graph: the streets plus a service connection from every consumer and source.

Street geometry is oriented to run from each segment's ``u`` to its ``v`` first, so split points, lengths
along a street and drawn pipes agree with the graph. Each terminal (a consumer footprint or point, a source
point) is connected to a street segment it can reach a source through, by the shortest line from the
terminal's geometry (a footprint's wall, not its centre) to the segment. The segment is split at the foot
point, so the connection joins the street where it meets it. Terminals farther than
``max_service_length_m`` from every such street are unreachable and reported by id with the distance. Given the
buildings' footprints, a service pipe keeps out of the other buildings where a street in reach lets it.

Invariants (tested): every edge's geometry starts at its ``u`` node and ends at its ``v`` node, and its
``length_m`` is its geometry's length.

The result is a table of candidate edges (``kind`` ``street`` or ``service``) with integer node ids, from
which :func:`candidate_graph` builds an undirected :class:`networkx.Graph` weighted by length.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely

from heatmap._errors import RoutingError
from heatmap.network.no_go import NoGoAreas

logger = logging.getLogger(__name__)

MIN_PIPE_LENGTH_M = 1.0
"""A terminal lying on its street joins it this far along (every service pipe is drawable)."""
BUILDING_TOLERANCE_M = 0.5
"""A service pipe crosses another building where it comes more than this inside its footprint (OSM footprints of
neighbours overlap by a few decimetres)."""
SNAP_TOLERANCE_M = 0.5
"""A foot point this close to a segment's end joins that end instead of splitting the segment, and this close to the
foot point before it on the segment, that point."""


@dataclass
class CandidateNetwork:
    """Candidate edges and terminals with their graph nodes.

    Attributes
    ----------
    edges : geopandas.GeoDataFrame
        ``edge_id``, ``u``, ``v`` (int node ids), ``kind`` (street/service), ``street_edge_id``,
        ``terminal_id``, ``name``, ``highway``, ``length_m``, geometry.
    nodes : geopandas.GeoDataFrame
        ``node_id``, geometry (points), indexed by node id.
    terminals : pandas.DataFrame
        ``terminal_id``, ``role`` (source/consumer), ``node`` (graph node, -1 if unreachable),
        ``service_length_m``, ``reachable``, ``nearest_street_m`` (to any street),
        ``reachable_street_m`` (to the nearest street a source can be reached through), ``service_in_no_go``
        (every such street in reach lies across a no-go polygon) and ``service_through_building`` (its service pipe
        runs through another building: no street clear of them is in reach within the detour allowed).
    """

    edges: gpd.GeoDataFrame
    nodes: gpd.GeoDataFrame
    terminals: pd.DataFrame


def _joined_splits(splits: pd.DataFrame) -> pd.DataFrame:
    """Join foot points along one street segment that lie within :data:`SNAP_TOLERANCE_M` of the one before.

    Each such run of points (``edge``, ``pos`` along it) takes its first point's position, so the street is not cut
    into pieces of millimetres between two buildings' connections (pipes a GIS would show as noise).
    """
    ordered = splits.sort_values(["edge", "pos"], kind="stable")
    edge, pos = ordered.edge.to_numpy(), ordered.pos.to_numpy()
    starts = np.r_[True, (edge[1:] != edge[:-1]) | (np.diff(pos) > SNAP_TOLERANCE_M)]
    first = np.maximum.accumulate(np.where(starts, np.arange(len(pos)), 0))
    return ordered.assign(pos=pos[first]).loc[splits.index]


def orient_streets(streets: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Reverse every street geometry that runs from its ``v`` to its ``u``.

    Street graphs made undirected (``osmnx.convert.to_undirected``) keep each edge's geometry in one stored
    orientation, which often runs v→u. The node a geometry end belongs to is found from the data alone: a
    node's position is the end point that all its edges share. Where a node touches a single edge, its
    position follows from the edge's other node; an isolated segment (or pair of parallel segments) is
    oriented as its first segment is stored.

    Parameters
    ----------
    streets
        Street segments with ``u``, ``v`` and LineString geometry.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy whose geometry starts at ``u`` and ends at ``v``.
    """
    geoms = streets.geometry.values
    ends = np.stack([shapely.get_coordinates(shapely.get_point(geoms, i)) for i in (0, -1)], axis=1)  # (n, 2 ends, 2)
    keys = np.round(ends, 3)
    # Long table: every (node, end point) pairing an edge allows; a node's position is the end point that
    # occurs most often among its edges' ends (all its edges share it).
    node = np.concatenate([streets.u.to_numpy(), streets.u.to_numpy(), streets.v.to_numpy(), streets.v.to_numpy()])
    pts = np.concatenate([keys[:, 0], keys[:, 1], keys[:, 0], keys[:, 1]])
    table = pd.DataFrame({"node": node, "x": pts[:, 0], "y": pts[:, 1]})
    counts = table.value_counts(["node", "x", "y"]).rename("count").reset_index()
    counts = counts.sort_values(["node", "count"], ascending=[True, False], kind="stable")
    first = counts.drop_duplicates("node")
    second = counts[counts.duplicated("node")].drop_duplicates("node").set_index("node")["count"]
    decided = first[first["count"].to_numpy() > second.reindex(first.node).fillna(0).to_numpy()]
    pos = pd.DataFrame({"x": decided.x.to_numpy(), "y": decided.y.to_numpy()}, index=decided.node.to_numpy())
    u, v = streets.u.to_numpy(), streets.v.to_numpy()
    while True:  # a node of one edge (or of parallel edges only) takes its position from the edge's other node
        pu, pv = pos.reindex(u).to_numpy(), pos.reindex(v).to_numpy()
        known_u, known_v = ~np.isnan(pu[:, 0]), ~np.isnan(pv[:, 0])
        u_first = np.all(keys[:, 0] == pu, axis=1)
        v_last = np.all(keys[:, 1] == pv, axis=1)
        learn_v = known_u & ~known_v
        learn_u = known_v & ~known_u
        if not (learn_u.any() or learn_v.any()):
            open_edges = np.flatnonzero(~known_u & ~known_v)
            if not len(open_edges):
                break
            learn = pd.DataFrame(keys[open_edges, 0], index=u[open_edges], columns=["x", "y"])  # u at the start
        else:
            other_v = np.where(u_first[:, None], keys[:, 1], keys[:, 0])[learn_v]
            other_u = np.where(v_last[:, None], keys[:, 0], keys[:, 1])[learn_u]
            learn = pd.DataFrame(np.concatenate([other_v, other_u]), columns=["x", "y"])
            learn.index = np.concatenate([v[learn_v], u[learn_u]])
        pos = pd.concat([pos, learn[~learn.index.duplicated()]])
    pu = pos.reindex(u).to_numpy()
    flip = ~np.all(keys[:, 0] == pu, axis=1)
    out = streets.copy()
    out.geometry = np.where(flip, shapely.reverse(geoms), geoms)
    logger.info(
        "Oriented street geometry: %d of %d segments reversed to run from u to v", int(flip.sum()), len(streets)
    )
    return out


def _components(streets: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Return the connected piece of every street segment and the total street length of each piece."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    ids = pd.Index(pd.unique(np.concatenate([streets.u.to_numpy(), streets.v.to_numpy()])))
    a, b = ids.get_indexer(streets.u), ids.get_indexer(streets.v)
    adj = coo_matrix((np.ones(len(a)), (a, b)), shape=(len(ids), len(ids)))
    _, label = connected_components(adj, directed=False)
    piece = label[a]
    return piece, np.bincount(piece, weights=streets.length_m.to_numpy())


def _nearest(
    geoms: np.ndarray, street_geoms: np.ndarray, allowed: np.ndarray, tree: shapely.STRtree | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return the nearest allowed street segment of every geometry and its distance (-1, inf where none).

    ``tree`` may hold the allowed segments' geometry already (in the order of ``allowed``'s true entries).
    """
    nearest = np.full(len(geoms), -1)
    distance = np.full(len(geoms), np.inf)
    allowed_idx = np.flatnonzero(allowed)
    if len(geoms) and len(allowed_idx):
        tree = tree or shapely.STRtree(street_geoms[allowed_idx])
        (g, e), d = tree.query_nearest(geoms, return_distance=True, all_matches=False)
        nearest[g] = allowed_idx[e]
        distance[g] = d
    return nearest, distance


def _clear(
    geoms: np.ndarray,
    street_geoms: np.ndarray,
    allowed: np.ndarray,
    max_m: np.ndarray,
    zones: list[NoGoAreas],
    tree: shapely.STRtree,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the nearest allowed segment within ``max_m`` (per geometry) a service pipe reaches entering no ``zones``.

    As :func:`_nearest` (-1, inf where none); ``tree`` holds every segment's geometry.
    """
    nearest = np.full(len(geoms), -1)
    distance = np.full(len(geoms), np.inf)
    g, e = tree.query(geoms, predicate="dwithin", distance=max_m)
    g, e = g[allowed[e]], e[allowed[e]]
    lines = shapely.shortest_line(geoms[g], street_geoms[e])
    clear = ~np.any([z.enters(lines, from_inside=True) for z in zones], axis=0)
    g, e = g[clear], e[clear]
    pick = pd.DataFrame({"g": g, "e": e, "d": shapely.distance(geoms[g], street_geoms[e])})
    pick = pick.sort_values(["g", "d"], kind="stable").drop_duplicates("g")
    nearest[pick.g.to_numpy()] = pick.e.to_numpy()
    distance[pick.g.to_numpy()] = pick.d.to_numpy()
    return nearest, distance


def cut_line(line: shapely.LineString, cuts: np.ndarray) -> np.ndarray:
    """Cut a line at increasing distances along it (the first 0, the last its length): the pieces between them.

    Each piece is what :func:`shapely.ops.substring` returns for its two distances, vertex for vertex: its
    ends interpolated on the line, between them every vertex whose distance along the line (summed segment by
    segment, as substring sums them) lies strictly between the two.
    """
    xy = shapely.get_coordinates(line)
    step = np.diff(xy, axis=0)
    along = np.concatenate([[0.0], np.cumsum((step[:, 0] ** 2 + step[:, 1] ** 2) ** 0.5)])[:-1]  # each segment's start
    ends = shapely.get_coordinates(shapely.line_interpolate_point(line, cuts))
    lo = np.searchsorted(along, cuts[:-1], side="right")  # first vertex beyond a piece's start
    hi = np.searchsorted(along, cuts[1:], side="left")  # first vertex at or beyond its end
    parts = [np.concatenate([ends[i : i + 1], xy[lo[i] : hi[i]], ends[i + 1 : i + 2]]) for i in range(len(lo))]
    sizes = [len(p) for p in parts]
    return np.asarray(shapely.linestrings(np.concatenate(parts), indices=np.repeat(np.arange(len(parts)), sizes)))


def build_candidates(
    streets: gpd.GeoDataFrame,
    sources: gpd.GeoDataFrame,
    consumers: gpd.GeoDataFrame,
    *,
    max_service_length_m: float,
    no_go: gpd.GeoDataFrame | None = None,
    buildings: np.ndarray | None = None,
    detour_m: float = np.inf,
) -> CandidateNetwork:
    """Connect sources and consumers to the street network.

    Street geometry is first oriented to run from each segment's ``u`` to its ``v``
    (:func:`orient_streets`). A source connects to the nearest segment, within ``max_service_length_m``, of
    the connected piece of the street graph with the most street length in its reach (a plant joins the
    town's streets, not a cut-off stub beside it). A consumer connects to the nearest segment, within
    ``max_service_length_m``, of a piece holding a source: a consumer is left unreachable only when no such
    segment is in reach, and ``reachable_street_m`` says how far the nearest one is. With ``no_go`` polygons a
    service pipe joins the nearest such segment it reaches without entering one (touching is fine; a site lying
    inside a polygon may leave it); where every segment in reach lies across a no-go area the terminal is
    unreachable with ``service_in_no_go`` true. With ``buildings`` a service pipe likewise joins the nearest
    segment it reaches without crossing a building other than its own (more than :data:`BUILDING_TOLERANCE_M`
    inside it), where that is at most ``detour_m`` farther than the nearest; where none is, it joins the nearest,
    through the building (as through its basement), with ``service_through_building`` true.

    Parameters
    ----------
    streets
        Output of :func:`heatmap.io.streets.street_edges` (or any segments with ``edge_id``, ``u``, ``v``,
        ``name``, ``highway``, ``length_m``).
    sources
        Sources with ``source_id`` (points), in the streets' CRS.
    consumers
        Consumers with ``consumer_id`` (points or footprints), in the streets' CRS.
    max_service_length_m
        Longest service connection allowed.
    no_go
        Polygons no service pipe may enter (``links.no_go_path``: buildings, tanks, process areas), in the
        streets' CRS, or ``None``.
    buildings
        Building footprints (polygons, the consumers' own among them) that service pipes keep out of where a
        street in reach lets them, in the streets' CRS, or ``None``.
    detour_m
        How much longer than the nearest a service pipe may be to keep out of ``buildings`` (by default, any
        length within ``max_service_length_m``).

    Returns
    -------
    CandidateNetwork
    """
    if streets.crs != sources.crs or streets.crs != consumers.crs:
        raise ValueError("streets, sources and consumers must share one CRS")
    crs = streets.crs
    streets = orient_streets(streets)
    terminals = pd.DataFrame(
        {
            "terminal_id": np.concatenate([sources.source_id.to_numpy(), consumers.consumer_id.to_numpy()]),
            "role": ["source"] * len(sources) + ["consumer"] * len(consumers),
        }
    )
    street_geoms = streets.geometry.values
    piece, piece_length_m = _components(streets)
    src_geoms = sources.geometry.values
    con_geoms = consumers.geometry.values

    # Sources: the longest piece of street in reach, then its nearest segment (clear of buildings first).
    every = np.ones(len(streets), dtype=bool)
    tree = shapely.STRtree(street_geoms)
    zones = NoGoAreas(no_go.geometry.values) if no_go is not None and len(no_go) else None
    around = None if buildings is None or not len(buildings) else NoGoAreas(buildings, tolerance_m=BUILDING_TOLERANCE_M)
    blocked = np.zeros(len(sources) + len(consumers), dtype=bool)  # every street in reach across a no-go area
    through = np.zeros(len(sources) + len(consumers), dtype=bool)  # no street clear of buildings within the detour
    pairs_src, pairs_edge = tree.query(src_geoms, predicate="dwithin", distance=max_service_length_m)
    if zones is not None:
        clear = ~zones.enters(shapely.shortest_line(src_geoms[pairs_src], street_geoms[pairs_edge]), from_inside=True)
        blocked[pairs_src] = True
        blocked[pairs_src[clear]] = False
        pairs_src, pairs_edge = pairs_src[clear], pairs_edge[clear]
    src_edge = np.full(len(sources), -1)
    src_dist = np.full(len(sources), np.inf)
    if len(pairs_src):
        d = shapely.distance(src_geoms[pairs_src], street_geoms[pairs_edge])
        across = np.zeros(len(pairs_src), dtype=bool)
        if around is not None:
            lines = shapely.shortest_line(src_geoms[pairs_src], street_geoms[pairs_edge])
            across = around.enters(lines, from_inside=True)
        pick = pd.DataFrame(
            {"s": pairs_src, "e": pairs_edge, "d": d, "len": -piece_length_m[piece[pairs_edge]], "across": across}
        )
        pick = pick[pick.len == pick.groupby("s").len.transform("min")]  # the longest piece in reach
        pick["across"] |= pick.d > pick.groupby("s").d.transform("min") + detour_m  # not worth the detour
        pick = pick.sort_values(["s", "across", "d"], kind="stable").drop_duplicates("s")
        src_edge[pick.s.to_numpy()] = pick.e.to_numpy()
        src_dist[pick.s.to_numpy()] = pick.d.to_numpy()
        through[pick.s.to_numpy()] = pick.across.to_numpy()
    any_edge, nearest_any = _nearest(np.concatenate([src_geoms, con_geoms]), street_geoms, every, tree)
    src_dist[src_edge < 0] = nearest_any[: len(sources)][src_edge < 0]

    # Consumers: the nearest segment of a piece that holds a source (usually every piece: no second search).
    allowed = np.isin(piece, np.unique(piece[src_edge[src_edge >= 0]]))
    if allowed.all():
        con_edge, con_dist = any_edge[len(sources) :].copy(), nearest_any[len(sources) :].copy()
    else:
        con_edge, con_dist = _nearest(con_geoms, street_geoms, allowed)
    kept_out: list[NoGoAreas] = []
    for avoid, strict in ((zones, True), (around, False)):  # no-go areas, then other buildings
        if avoid is None:
            continue
        kept_out.append(avoid)
        near = np.flatnonzero((con_edge >= 0) & (con_dist <= max_service_length_m))
        lines = shapely.shortest_line(con_geoms[near], street_geoms[con_edge[near]])
        across = near[avoid.enters(lines, from_inside=True)]
        limit = np.full(len(across), max_service_length_m)
        if not strict:
            limit = np.minimum(limit, con_dist[across] + detour_m)
        clear_edge, clear_dist = _clear(con_geoms[across], street_geoms, allowed, limit, kept_out, tree)
        found = clear_edge >= 0
        if strict:  # none clear: unreachable, at the distance of the nearest
            con_edge[across] = clear_edge
            con_dist[across] = np.where(found, clear_dist, con_dist[across])
            blocked[len(sources) + across[~found]] = True
        else:  # none clear: through the building to the nearest
            con_edge[across[found]] = clear_edge[found]
            con_dist[across[found]] = clear_dist[found]
            through[len(sources) + across[~found]] = True

    nearest_edge = np.concatenate([src_edge, con_edge])
    distance = np.concatenate([src_dist, con_dist])
    geoms = np.concatenate([src_geoms, con_geoms])
    reachable = (nearest_edge >= 0) & (distance <= max_service_length_m)
    terminals["service_length_m"] = np.nan  # set from the service pipe's geometry below
    terminals["reachable"] = reachable
    terminals["nearest_street_m"] = nearest_any
    terminals["reachable_street_m"] = distance
    terminals["service_in_no_go"] = blocked
    terminals["service_through_building"] = through & reachable

    idx = np.flatnonzero(reachable)
    service_lines = shapely.shortest_line(geoms[idx], street_geoms[nearest_edge[idx]])
    entry = shapely.get_point(service_lines, 0)
    foot = shapely.get_point(service_lines, 1)
    # A footprint overlapping its street connects from its interior point; a point lying on the street joins
    # it MIN_PIPE_LENGTH_M along the street, so every service pipe has a drawable geometry.
    on_street = shapely.distance(entry, foot) < 1e-6
    entry[on_street] = shapely.point_on_surface(geoms[idx][on_street])
    still = on_street & (shapely.distance(entry, foot) < 1e-6)
    line = street_geoms[nearest_edge[idx][still]]
    at, length = shapely.line_locate_point(line, foot[still]), shapely.length(line)
    along = np.where(at + MIN_PIPE_LENGTH_M <= length, at + MIN_PIPE_LENGTH_M, np.maximum(at - MIN_PIPE_LENGTH_M, 0))
    foot[still] = shapely.line_interpolate_point(line, along)
    pos = shapely.line_locate_point(street_geoms[nearest_edge[idx]], foot)

    # Street node ids → 0..n-1; then foot nodes; then terminal nodes.
    street_node_ids = pd.Index(pd.unique(np.concatenate([streets.u.to_numpy(), streets.v.to_numpy()])))
    su = street_node_ids.get_indexer(streets.u)
    sv = street_node_ids.get_indexer(streets.v)
    node_xy = np.full((len(street_node_ids), 2), np.nan)
    node_xy[su] = shapely.get_coordinates(shapely.get_point(street_geoms, 0))
    node_xy[sv] = shapely.get_coordinates(shapely.get_point(street_geoms, -1))

    lengths = shapely.length(street_geoms)
    surface = streets["surface"].to_numpy() if "surface" in streets else np.full(len(streets), "street", dtype=object)
    cost_factor = streets["cost_factor"].to_numpy(float) if "cost_factor" in streets else np.ones(len(streets))
    existing_dn = streets["existing_dn"].to_numpy(float) if "existing_dn" in streets else np.full(len(streets), np.nan)
    at_start = pos <= SNAP_TOLERANCE_M
    at_end = pos >= lengths[nearest_edge[idx]] - SNAP_TOLERANCE_M
    splits = pd.DataFrame({"edge": nearest_edge[idx], "pos": np.round(pos, 3), "k": np.arange(len(idx))})
    inner = _joined_splits(splits[~at_start & ~at_end])
    unique_splits = inner.drop_duplicates(["edge", "pos"]).sort_values(["edge", "pos"]).reset_index(drop=True)
    n_street = len(street_node_ids)
    unique_splits["node"] = n_street + np.arange(len(unique_splits))
    foot_node = np.empty(len(idx), dtype=np.int64)
    foot_node[at_start] = su[nearest_edge[idx][at_start]]
    foot_node[at_end & ~at_start] = sv[nearest_edge[idx][at_end & ~at_start]]
    merged = inner.merge(unique_splits[["edge", "pos", "node"]], on=["edge", "pos"], how="left")
    foot_node[merged.k.to_numpy()] = merged.node.to_numpy()
    split_xy = shapely.get_coordinates(
        shapely.line_interpolate_point(street_geoms[unique_splits.edge.to_numpy()], unique_splits.pos.to_numpy())
    ).reshape(-1, 2)

    # Street edges: unsplit ones as they are; split ones cut into pieces between consecutive foot points.
    split_edges = set(unique_splits.edge)
    keep = ~np.isin(np.arange(len(streets)), list(split_edges))
    pieces_u, pieces_v, pieces_geom, pieces_src = (
        [su[keep]],
        [sv[keep]],
        [street_geoms[keep]],
        [np.flatnonzero(keep)],
    )
    s_edge, s_pos, s_node = (unique_splits[c].to_numpy() for c in ("edge", "pos", "node"))
    bounds = np.r_[np.flatnonzero(np.diff(s_edge, prepend=-1) != 0), len(s_edge)]  # each split edge's splits
    for first, last in zip(bounds[:-1], bounds[1:], strict=True):
        edge = s_edge[first]
        cuts = np.concatenate([[0.0], s_pos[first:last], [lengths[edge]]])
        nodes = np.concatenate([[su[edge]], s_node[first:last], [sv[edge]]])
        pieces_u.append(nodes[:-1])
        pieces_v.append(nodes[1:])
        pieces_geom.append(cut_line(street_geoms[edge], cuts))
        pieces_src.append(np.full(len(cuts) - 1, edge))
    street_src = np.concatenate(pieces_src)
    street_part = gpd.GeoDataFrame(
        {
            "u": np.concatenate(pieces_u),
            "v": np.concatenate(pieces_v),
            "kind": "street",
            "street_edge_id": streets.edge_id.to_numpy()[street_src],
            "terminal_id": None,
            "name": streets.name.to_numpy()[street_src],
            "highway": streets.highway.to_numpy()[street_src],
            "surface": surface[street_src],
            "cost_factor": cost_factor[street_src],
            "existing_dn": existing_dn[street_src],
        },
        geometry=np.concatenate(pieces_geom),
        crs=crs,
    )

    # Terminal nodes and their service edges.
    n_nodes = n_street + len(unique_splits)
    term_node = np.full(len(geoms), -1, dtype=np.int64)
    term_node[idx] = n_nodes + np.arange(len(idx))
    terminals["node"] = term_node
    # The service pipe ends exactly at the node it joins (a foot point snapped to a segment's end included).
    street_xy = np.concatenate([node_xy, split_xy])
    service_geom = shapely.linestrings(np.stack([shapely.get_coordinates(entry), street_xy[foot_node]], axis=1))
    service_part = gpd.GeoDataFrame(
        {
            "u": term_node[idx],
            "v": foot_node,
            "kind": "service",
            "street_edge_id": streets.edge_id.to_numpy()[nearest_edge[idx]],
            "terminal_id": terminals.terminal_id.to_numpy()[idx],
            "name": "",
            "highway": "",
            "surface": "service",
            "cost_factor": cost_factor[nearest_edge[idx]],  # laid like the route it joins
            "existing_dn": np.nan,  # a new pipe
        },
        geometry=service_geom,
        crs=crs,
    )
    edges = pd.concat([street_part, service_part], ignore_index=True)
    edges["length_m"] = edges.geometry.length.to_numpy()
    edges = edges[edges.u != edges.v].reset_index(drop=True)
    edges.insert(0, "edge_id", np.arange(len(edges)))
    terminals.loc[idx, "service_length_m"] = shapely.length(service_geom)

    xy = np.concatenate([street_xy, shapely.get_coordinates(entry)])
    nodes = gpd.GeoDataFrame({"node_id": np.arange(len(xy))}, geometry=shapely.points(xy), crs=crs)
    unreachable = terminals.loc[~terminals.reachable, "terminal_id"].tolist()
    logger.info(
        "Candidate graph: %d edges (%d service), %d nodes; %d of %d terminals farther than %.0f m from a street",
        len(edges),
        len(service_part),
        len(nodes),
        len(unreachable),
        len(terminals),
        max_service_length_m,
    )
    return CandidateNetwork(edges=gpd.GeoDataFrame(edges, crs=crs), nodes=nodes, terminals=terminals)


EXISTING_WEIGHT = 1e-3
"""Routing weight of an existing pipe per metre, relative to a new one on the same surface (not 0: of two ways
along existing pipes the shorter is taken)."""


def candidate_graph(edges: pd.DataFrame) -> nx.Graph:
    """Build the undirected candidate graph; of parallel edges the cheapest is kept.

    Parameters
    ----------
    edges
        :attr:`CandidateNetwork.edges`.

    Returns
    -------
    networkx.Graph
        Edge attributes ``edge_id``, ``length_m`` and ``weight_m`` (length × the edge's cost factor: the
        length of street trench that costs as much; where a pipe lies already, :data:`EXISTING_WEIGHT` × that: the
        trench is there, so a Steiner tree takes the existing network first).
    """
    if len(edges) == 0:
        raise RoutingError("the candidate graph has no edges")
    a = np.minimum(edges.u.to_numpy(), edges.v.to_numpy())
    b = np.maximum(edges.u.to_numpy(), edges.v.to_numpy())
    factor = edges.cost_factor.to_numpy(float) if "cost_factor" in edges else np.ones(len(edges))
    if "existing_dn" in edges:
        factor = np.where(edges.existing_dn.notna().to_numpy(), EXISTING_WEIGHT * factor, factor)
    table = pd.DataFrame(
        {
            "a": a,
            "b": b,
            "edge_id": edges.edge_id.to_numpy(),
            "length_m": edges.length_m.to_numpy(),
            "weight_m": edges.length_m.to_numpy() * factor,
        }
    )
    table = table.sort_values("weight_m", kind="stable").drop_duplicates(["a", "b"])
    G = nx.from_pandas_edgelist(table, "a", "b", edge_attr=["edge_id", "length_m", "weight_m"])
    logger.info("Candidate graph: %d nodes, %d edges", G.number_of_nodes(), G.number_of_edges())
    return G
