"""Candidate graph: the streets plus a service connection from every consumer and source.

Each terminal (a consumer footprint or point, a source point) is connected to its nearest street segment
by the shortest line from the terminal's geometry (a footprint's wall, not its centre) to the segment.
The segment is split at the foot point, so the connection joins the street where it meets it. Terminals
farther than ``max_service_length_m`` from every street are unreachable and reported by id.

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
from shapely.ops import substring

from heatmap._errors import RoutingError

logger = logging.getLogger(__name__)

MIN_PIPE_LENGTH_M = 1.0
"""Shortest pipe modelled: a terminal lying on its street still gets a service pipe this long."""
SNAP_TOLERANCE_M = 0.5
"""A foot point this close to a segment's end joins that end instead of splitting the segment."""


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
        ``service_length_m``, ``reachable``.
    """

    edges: gpd.GeoDataFrame
    nodes: gpd.GeoDataFrame
    terminals: pd.DataFrame


def build_candidates(
    streets: gpd.GeoDataFrame,
    sources: gpd.GeoDataFrame,
    consumers: gpd.GeoDataFrame,
    *,
    max_service_length_m: float,
) -> CandidateNetwork:
    """Connect sources and consumers to the street network.

    Parameters
    ----------
    streets
        Output of :func:`heatmap.streets.street_edges`.
    sources
        Sources with ``source_id`` (points), in the streets' CRS.
    consumers
        Consumers with ``consumer_id`` (points or footprints), in the streets' CRS.
    max_service_length_m
        Longest service connection allowed.

    Returns
    -------
    CandidateNetwork
    """
    if streets.crs != sources.crs or streets.crs != consumers.crs:
        raise ValueError("streets, sources and consumers must share one CRS")
    crs = streets.crs
    terminals = pd.DataFrame(
        {
            "terminal_id": np.concatenate([sources.source_id.to_numpy(), consumers.consumer_id.to_numpy()]),
            "role": ["source"] * len(sources) + ["consumer"] * len(consumers),
        }
    )
    geoms = np.concatenate([sources.geometry.values, consumers.geometry.values])
    tree = shapely.STRtree(streets.geometry.values)
    (term_idx, edge_idx), dist = tree.query_nearest(geoms, return_distance=True, all_matches=False)
    nearest_edge = np.full(len(geoms), -1)
    nearest_edge[term_idx] = edge_idx
    distance = np.full(len(geoms), np.inf)
    distance[term_idx] = dist
    reachable = distance <= max_service_length_m
    terminals["service_length_m"] = np.where(reachable, np.maximum(distance, MIN_PIPE_LENGTH_M), np.nan)
    terminals["reachable"] = reachable

    idx = np.flatnonzero(reachable)
    street_geoms = streets.geometry.values
    service_lines = shapely.shortest_line(geoms[idx], street_geoms[nearest_edge[idx]])
    entry = shapely.get_point(service_lines, 0)
    foot = shapely.get_point(service_lines, 1)
    # A footprint overlapping its street connects from its interior point; a point lying on the street gets a
    # stub of MIN_PIPE_LENGTH_M, so every service pipe has a drawable geometry.
    on_street = shapely.distance(entry, foot) < 1e-6
    entry[on_street] = shapely.point_on_surface(geoms[idx][on_street])
    still = on_street & (shapely.distance(entry, foot) < 1e-6)
    entry[still] = shapely.points(shapely.get_coordinates(foot[still]) + [MIN_PIPE_LENGTH_M, 0.0])
    pos = shapely.line_locate_point(street_geoms[nearest_edge[idx]], foot)

    # Street node ids → 0..n-1; then foot nodes; then terminal nodes.
    street_node_ids = pd.Index(pd.unique(np.concatenate([streets.u.to_numpy(), streets.v.to_numpy()])))
    su = street_node_ids.get_indexer(streets.u)
    sv = street_node_ids.get_indexer(streets.v)
    node_xy = np.full((len(street_node_ids), 2), np.nan)
    starts = shapely.get_coordinates(shapely.get_point(street_geoms, 0))
    ends = shapely.get_coordinates(shapely.get_point(street_geoms, -1))
    node_xy[su] = starts
    node_xy[sv] = ends

    lengths = streets.length_m.to_numpy()
    at_start = pos <= SNAP_TOLERANCE_M
    at_end = pos >= lengths[nearest_edge[idx]] - SNAP_TOLERANCE_M
    splits = pd.DataFrame({"edge": nearest_edge[idx], "pos": np.round(pos, 3), "k": np.arange(len(idx))})
    inner = splits[~at_start & ~at_end]
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
    for edge, group in unique_splits.groupby("edge", sort=False):
        cuts = np.concatenate([[0.0], group.pos.to_numpy(), [lengths[edge]]])
        nodes = np.concatenate([[su[edge]], group.node.to_numpy(), [sv[edge]]])
        line = street_geoms[edge]
        pieces_u.append(nodes[:-1])
        pieces_v.append(nodes[1:])
        pieces_geom.append(np.array([substring(line, a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]))
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
        },
        geometry=np.concatenate(pieces_geom),
        crs=crs,
    )

    # Terminal nodes and their service edges.
    n_nodes = n_street + len(unique_splits)
    term_node = np.full(len(geoms), -1, dtype=np.int64)
    term_node[idx] = n_nodes + np.arange(len(idx))
    terminals["node"] = term_node
    service_geom = shapely.linestrings(
        np.stack([shapely.get_coordinates(entry), shapely.get_coordinates(foot)], axis=1)
    )
    service_part = gpd.GeoDataFrame(
        {
            "u": term_node[idx],
            "v": foot_node,
            "kind": "service",
            "street_edge_id": streets.edge_id.to_numpy()[nearest_edge[idx]],
            "terminal_id": terminals.terminal_id.to_numpy()[idx],
            "name": "",
            "highway": "",
        },
        geometry=service_geom,
        crs=crs,
    )
    edges = pd.concat([street_part, service_part], ignore_index=True)
    edges["length_m"] = np.maximum(edges.geometry.length.to_numpy(), MIN_PIPE_LENGTH_M)
    edges = edges[edges.u != edges.v].reset_index(drop=True)
    edges.insert(0, "edge_id", np.arange(len(edges)))

    xy = np.concatenate([node_xy, split_xy, shapely.get_coordinates(entry)])
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


def candidate_graph(edges: pd.DataFrame) -> nx.Graph:
    """Build the undirected candidate graph; of parallel edges the shortest is kept.

    Parameters
    ----------
    edges
        :attr:`CandidateNetwork.edges`.

    Returns
    -------
    networkx.Graph
        Edge attributes ``edge_id`` and ``length_m``.
    """
    if len(edges) == 0:
        raise RoutingError("the candidate graph has no edges")
    a = np.minimum(edges.u.to_numpy(), edges.v.to_numpy())
    b = np.maximum(edges.u.to_numpy(), edges.v.to_numpy())
    table = pd.DataFrame({"a": a, "b": b, "edge_id": edges.edge_id.to_numpy(), "length_m": edges.length_m.to_numpy()})
    table = table.sort_values("length_m", kind="stable").drop_duplicates(["a", "b"])
    G = nx.from_pandas_edgelist(table, "a", "b", edge_attr=["edge_id", "length_m"])
    logger.info("Candidate graph: %d nodes, %d edges", G.number_of_nodes(), G.number_of_edges())
    return G
