"""Route the network: the tree of candidate edges joining the consumers to the sources at least cost.

Algorithm
---------
1. **Supply areas.** Every node of the candidate graph is given to the source nearest along the streets
   (one multi-source Dijkstra run, scipy ``csgraph.dijkstra(min_only=True)``): the network-distance Voronoi
   partition. Each source feeds the consumers of its own area through a network of its own, as district
   heating plants feed their neighbourhoods. The area's shortest-path tree lies inside the area, so every
   area is connected.
   With ``network.supply_areas: shared`` the area is instead the connected piece of the graph: its sources
   feed one network together, rooted at the first (the largest, holding the pressure).
2. **Route per area.** In each area, a minimum Steiner tree joins the source and the area's consumers,
   found with Mehlhorn's algorithm on scipy's sparse graphs (:func:`steiner_edges`: a minimum spanning tree
   over the terminals' shortest-path Voronoi regions, expanded to paths; at most twice the optimum; the tree
   of networkx ``steiner_tree(method="mehlhorn")`` where shortest paths are unique).

Edge cost is the trench length times the edge's cost factor (1 along streets; pipe racks, crossings and
open ground have their own, see :mod:`heatmap.network.links`), so each tree minimises the route's cost at a uniform
price per metre of street trench. Pipe
sizes, and so the DN-dependent price, are only known after routing; an exact economic design (MILP, on the
roadmap) will weigh both at once. Source capacity does not steer the areas; the hydraulic checks report a
source loaded beyond its capacity.

Consumers in a component of the candidate graph holding no source cannot be reached and are reported
by id.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components, dijkstra

from heatmap._errors import RoutingError

logger = logging.getLogger(__name__)


@dataclass
class RoutedTree:
    """The routed network as a set of trees, each oriented away from its source.

    Attributes
    ----------
    edges : pandas.DataFrame
        One row per tree edge: ``edge_id`` (candidate edge), ``from_node``, ``to_node`` (flow direction at
        design), ``depth`` and ``tree`` (index of the connected network it belongs to).
    root_of_tree : dict
        Tree index → node of its source.
    unreachable : list of str
        Consumer ids with no path to any source.
    """

    edges: pd.DataFrame
    root_of_tree: dict[int, int]
    unreachable: list[str]

    @property
    def tree_of_node(self) -> pd.Series:
        """The tree each routed node belongs to, its source's node (the root) included."""
        roots = pd.Series(list(self.root_of_tree), index=list(self.root_of_tree.values()))
        return pd.concat([pd.Series(self.edges.tree.to_numpy(), index=self.edges.to_node.to_numpy()), roots])


def route_network(
    G: nx.Graph,
    source_nodes: dict[str, int],
    consumer_nodes: dict[str, int],
    *,
    shared: bool = False,
) -> RoutedTree:
    """Find the least-cost tree joining every reachable consumer to a source.

    Parameters
    ----------
    G
        The candidate graph (edge attributes ``edge_id``, ``length_m``, ``weight_m``).
    source_nodes
        Source id → graph node. With ``shared``, the first listed source of each connected piece is the root
        of its network (the one holding the pressure).
    consumer_nodes
        Consumer id → graph node (unreachable consumers left out).
    shared
        One network per connected piece of the graph, joining all its sources and consumers, instead of a
        supply area (and network) per source.

    Returns
    -------
    RoutedTree
        Each tree oriented away from its root source; with ``shared`` the other sources of a tree are nodes
        of it.
    """
    if not source_nodes:
        raise RoutingError("no heat source could be connected to the street network")
    nodes = np.array(list(G.nodes))
    position = pd.Series(np.arange(len(nodes)), index=nodes)
    adjacency = nx.to_scipy_sparse_array(G, nodelist=nodes.tolist(), weight="weight_m", format="csr")
    distance, _, nearest = dijkstra(
        adjacency,
        directed=False,
        indices=position[sorted(set(source_nodes.values()))].to_numpy(),
        min_only=True,
        return_predecessors=True,
    )
    # Supply area of every node: the graph node of its nearest source (shared: of the first source of its
    # piece of the graph), -1 where no source can be reached.
    area_of: pd.Series = pd.Series(np.where(nearest >= 0, nodes[np.maximum(nearest, 0)], -1), index=nodes)
    if shared:
        _, piece = connected_components(adjacency, directed=False)
        lead: dict[int, int] = {}
        for n in source_nodes.values():
            lead.setdefault(int(piece[position[n]]), n)
        area_of = pd.Series([lead.get(int(p), -1) for p in piece], index=nodes)
    consumer_area = area_of.reindex(list(consumer_nodes.values())).fillna(-1).astype(np.int64)
    unreachable = [cid for cid, area in zip(consumer_nodes, consumer_area, strict=True) if area < 0]
    if len(unreachable) == len(consumer_nodes):
        raise RoutingError(
            "no consumer can be reached from any source along the streets; check that the sources lie "
            "on the same street network as the consumers"
        )

    # One Steiner tree per supply area holding a consumer: the edges inside the areas, the consumers and the sources
    # leading those areas as terminals (the areas share no edge, so one run joins each area's terminals apart).
    table = nx.to_pandas_edgelist(G, source="a", target="b")
    a, b = position[table.a].to_numpy(), position[table.b].to_numpy()
    area = area_of.to_numpy()
    inside = (area[a] == area[b]) & (a != b)
    src_area = area_of.reindex(sorted(set(source_nodes.values())))
    served = set(consumer_area[consumer_area >= 0].tolist())
    terminals = np.concatenate(
        [
            position[consumer_area.index[consumer_area.to_numpy() >= 0]].to_numpy(),
            position[src_area.index[src_area.isin(served).to_numpy()]].to_numpy(),
        ]
    )
    ta, tb = steiner_edges(len(nodes), a[inside], b[inside], table.weight_m.to_numpy(float)[inside], terminals)
    ta, tb = nodes[ta], nodes[tb]
    order = np.lexsort((tb, ta, area_of.reindex(ta).to_numpy()))  # by area, as the areas are listed
    T: nx.Graph[int] = nx.Graph()
    T.add_edges_from((int(u), int(v), G.edges[u, v]) for u, v in zip(ta[order], tb[order], strict=True))

    rows = []
    root_of_tree: dict[int, int] = {}
    for tree_idx, comp in enumerate(nx.connected_components(T)):
        (root,) = (n for n in comp if src_area.get(n) == n)  # the source that leads its area
        root_of_tree[tree_idx] = root
        depth = nx.single_source_shortest_path_length(T.subgraph(comp), root)
        for parent, child in nx.bfs_edges(T.subgraph(comp), root):
            rows.append((T.edges[parent, child]["edge_id"], parent, child, depth[child], tree_idx))
    edges = pd.DataFrame(rows, columns=["edge_id", "from_node", "to_node", "depth", "tree"])
    length = sum(d["length_m"] for _, _, d in T.edges(data=True))
    logger.info(
        "Routed %d consumers over %d edges (%.2f km) in %d network(s); %d unreachable",
        len(consumer_nodes) - len(unreachable),
        len(edges),
        length / 1000,
        len(root_of_tree),
        len(unreachable),
    )
    return RoutedTree(edges=edges, root_of_tree=root_of_tree, unreachable=sorted(unreachable))


def steiner_edges(
    n: int, a: np.ndarray, b: np.ndarray, weight: np.ndarray, terminals: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Join the terminals of each connected piece of a graph by Mehlhorn's minimum Steiner tree.

    Mehlhorn (1988), on scipy's sparse graphs: one multi-source Dijkstra run from all terminals gives each node its
    nearest terminal (the shortest-path Voronoi regions); each edge between two regions offers those terminals a
    path (nearest terminal → edge → nearest terminal); a minimum spanning tree of the cheapest offer per pair of
    terminals (Kruskal, ties by the pair) picks the paths, and each is laid back along the shortest-path forest.
    The paths of the spanning tree are shortest paths between their terminals (an offer beaten by a shorter path
    through other regions is not in the spanning tree), so where shortest paths are unique this is the tree of
    networkx's ``steiner_tree(method="mehlhorn")``; the union of the paths is a tree (the regions' shortest-path
    trees joined by one edge per spanning-tree edge) whose leaves are terminals, at most twice the optimum.

    Parameters
    ----------
    n
        Number of nodes (``0 … n-1``).
    a, b
        Each edge's end nodes (no parallel edges).
    weight
        Each edge's weight (non-negative).
    terminals
        The nodes to join.

    Returns
    -------
    tuple of numpy.ndarray
        The ends of the tree's edges (each pair once, one tree per piece of the graph holding two terminals or more).
    """
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    weight = np.asarray(weight, dtype=float)
    terminals = np.unique(np.asarray(terminals, dtype=np.int64))
    none = np.zeros(0, dtype=np.int64)
    if len(terminals) < 2:
        return none, none
    graph = sp.csr_matrix((weight, (a, b)), shape=(n, n))
    dist, pred, nearest = dijkstra(graph, directed=False, indices=terminals, min_only=True, return_predecessors=True)
    # each edge between two regions: the path its two terminals are offered, nearest terminal → edge → nearest
    sa, sb = nearest[a], nearest[b]
    cross = np.flatnonzero((sa >= 0) & (sb >= 0) & (sa != sb))
    offer = dist[a[cross]] + weight[cross] + dist[b[cross]]
    lo, hi = np.minimum(sa[cross], sb[cross]), np.maximum(sa[cross], sb[cross])
    order = np.lexsort((cross, offer, hi, lo))  # by pair, the cheapest offer (then the first edge) first
    first = np.ones(len(order), dtype=bool)
    first[1:] = (lo[order][1:] != lo[order][:-1]) | (hi[order][1:] != hi[order][:-1])
    best = order[first]
    best = best[np.lexsort((hi[best], lo[best], offer[best]))]  # Kruskal's order: by offer, ties by the pair
    root = list(range(n))  # union-find over the terminals (by node)

    def find(x: int) -> int:
        while root[x] != x:
            root[x] = root[root[x]]
            x = root[x]
        return x

    chosen = []
    for i, u, v in zip(best.tolist(), lo[best].tolist(), hi[best].tolist(), strict=True):
        ru, rv = find(u), find(v)
        if ru != rv:
            root[ru] = rv
            chosen.append(i)
    edge = cross[np.asarray(chosen, dtype=np.int64)]
    # lay each chosen path back: the edge, and from both its ends up the shortest-path forest to their terminals
    on_path = np.zeros(n, dtype=bool)
    frontier = np.unique(np.concatenate([a[edge], b[edge]]))
    up_from, up_to = [], []
    while len(frontier):
        frontier = np.unique(frontier[~on_path[frontier]])
        on_path[frontier] = True
        p = pred[frontier]
        frontier, p = frontier[p >= 0], p[p >= 0]
        up_from.append(frontier)
        up_to.append(p)
        frontier = p
    return np.concatenate([a[edge], *up_to]), np.concatenate([b[edge], *up_from])


def downstream_totals(edges: pd.DataFrame, node_load_kw: pd.Series) -> pd.DataFrame:
    """Sum the consumers and their peak loads downstream of every tree edge.

    Parameters
    ----------
    edges
        Oriented tree edges with ``from_node``, ``to_node`` and ``depth`` (:attr:`RoutedTree.edges`).
    node_load_kw
        Peak load per graph node (consumer nodes only).

    Returns
    -------
    pandas.DataFrame
        Indexed like ``edges``: ``n_consumers`` and ``peak_load_kw`` downstream of each edge.
    """
    e = edges
    load = node_load_kw.groupby(level=0).sum().reindex(e.to_node).fillna(0.0).to_numpy()
    count = node_load_kw.groupby(level=0).size().reindex(e.to_node).fillna(0).to_numpy().astype(np.int64)
    parent = parent_edge(e)
    for level in reversed(_levels(e)):  # deepest edges first: each level adds its subtree totals to its parents
        has_parent = level[parent[level] >= 0]
        np.add.at(load, parent[has_parent], load[has_parent])
        np.add.at(count, parent[has_parent], count[has_parent])
    return pd.DataFrame({"n_consumers": count, "peak_load_kw": load}, index=e.index)


def _levels(edges: pd.DataFrame) -> list[np.ndarray]:
    """Edge positions grouped by depth, shallowest first."""
    depth = edges.depth.to_numpy()
    order = np.argsort(depth, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(depth[order])) + 1)


def parent_edge(edges: pd.DataFrame) -> np.ndarray:
    """Position of each tree edge's upstream edge (``-1`` for edges leaving a source).

    Parameters
    ----------
    edges
        Oriented tree edges with ``from_node`` and ``to_node`` (see :class:`heatmap.network.routing.RoutedTree`).

    Returns
    -------
    numpy.ndarray
    """
    return pd.Index(edges.to_node.to_numpy()).get_indexer(pd.Index(edges.from_node.to_numpy()))


def path_totals(edges: pd.DataFrame, per_edge: np.ndarray) -> np.ndarray:
    """Sum a per-edge quantity along the path from the source to (and including) each edge.

    Parameters
    ----------
    edges
        Oriented tree edges with ``from_node``, ``to_node`` and ``depth``.
    per_edge
        The quantity per edge (e.g. pressure drop in bar).

    Returns
    -------
    numpy.ndarray
        The total from the source to each edge's downstream end.
    """
    parent = parent_edge(edges)
    total = np.asarray(per_edge, dtype=float).copy()
    for level in _levels(edges):  # one vectorised step per tree level, sources outwards
        p = parent[level]
        total[level] += np.where(p >= 0, total[np.maximum(p, 0)], 0.0)
    return total


def upstream_mask(edges: pd.DataFrame, start: np.ndarray) -> np.ndarray:
    """Mark the edges on the paths from the sources to the ``start`` edges (positions), both included."""
    parent = parent_edge(edges)
    mark = np.zeros(len(edges), dtype=bool)
    frontier = np.unique(np.asarray(start, dtype=np.int64))
    while len(frontier):
        frontier = frontier[~mark[frontier]]
        mark[frontier] = True
        frontier = np.unique(parent[frontier])
        frontier = frontier[frontier >= 0]
    return mark
