"""Route the network: the tree of candidate edges joining the consumers to the sources at least cost.

Algorithm
---------
The route is a minimum Steiner tree on the candidate graph whose terminals are the consumers and the
sources. Several sources are joined to one virtual root by zero-cost edges, so each consumer is joined to
whichever source is cheapest to reach, and each source feeds a network of its own (a source is a leaf of the
candidate graph, so no tree path can pass through one). Source capacity does not steer the route; the
hydraulic checks report a source loaded beyond its capacity.

The Steiner tree is found with Mehlhorn's algorithm (networkx ``steiner_tree(method="mehlhorn")``: a
minimum spanning tree over the terminals' shortest-path Voronoi regions, expanded to paths; at most twice
the optimum), then non-terminal leaves are pruned.

Edge cost is the trench length, so the tree minimises the route's cost at a uniform price per metre. Pipe
sizes, and so the DN-dependent price, are only known after routing; an exact economic design (MILP, on the
roadmap) will weigh both at once.

Consumers in a component of the candidate graph holding no source cannot be reached and are reported
by id.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd
from networkx.algorithms.approximation import steiner_tree

from heatmap._errors import RoutingError

logger = logging.getLogger(__name__)

_ROOT = "__root__"


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


def route_network(
    G: nx.Graph,
    source_nodes: dict[str, int],
    consumer_nodes: dict[str, int],
) -> RoutedTree:
    """Find the least-length tree joining every reachable consumer to a source.

    Parameters
    ----------
    G
        The candidate graph (edge attributes ``edge_id``, ``length_m``).
    source_nodes
        Source id → graph node.
    consumer_nodes
        Consumer id → graph node (unreachable consumers left out).

    Returns
    -------
    RoutedTree
    """
    if not source_nodes:
        raise RoutingError("no heat source could be connected to the street network")
    source_set = set(source_nodes.values())
    component_of = {}
    for i, comp in enumerate(nx.connected_components(G)):
        for n in comp:
            component_of[n] = i
    fed = {component_of[n] for n in source_set}
    unreachable = [cid for cid, n in consumer_nodes.items() if component_of.get(n) not in fed]
    reach = {cid: n for cid, n in consumer_nodes.items() if component_of.get(n) in fed}
    if not reach:
        raise RoutingError(
            "no consumer can be reached from any source along the streets; check that the sources lie "
            "on the same street network as the consumers"
        )

    H = G.subgraph([n for n, c in component_of.items() if c in fed]).copy()
    H.add_edges_from((_ROOT, n, {"length_m": 0.0, "edge_id": -1}) for n in source_set)
    terminals = sorted(set(reach.values())) + [_ROOT]
    T = nx.Graph(steiner_tree(H, terminals, weight="length_m", method="mehlhorn"))
    T.remove_node(_ROOT)

    by_node = {n: sid for sid, n in source_nodes.items()}
    rows = []
    root_of_tree: dict[int, int] = {}
    for tree_idx, comp in enumerate(nx.connected_components(T)):
        (root,) = (n for n in comp if n in by_node)  # one source per tree (see the module docstring)
        root_of_tree[tree_idx] = root
        depth = nx.single_source_shortest_path_length(T.subgraph(comp), root)
        for parent, child in nx.bfs_edges(T.subgraph(comp), root):
            rows.append((T.edges[parent, child]["edge_id"], parent, child, depth[child], tree_idx))
    edges = pd.DataFrame(rows, columns=["edge_id", "from_node", "to_node", "depth", "tree"])
    length = sum(d["length_m"] for _, _, d in T.edges(data=True))
    logger.info(
        "Routed %d consumers over %d edges (%.2f km) in %d network(s); %d unreachable",
        len(reach),
        len(edges),
        length / 1000,
        len(root_of_tree),
        len(unreachable),
    )
    return RoutedTree(edges=edges, root_of_tree=root_of_tree, unreachable=sorted(unreachable))


def downstream_totals(tree: RoutedTree, node_load_kw: pd.Series) -> pd.DataFrame:
    """Sum the consumers and their peak loads downstream of every tree edge.

    Parameters
    ----------
    tree
        The routed, oriented tree.
    node_load_kw
        Peak load per graph node (consumer nodes only).

    Returns
    -------
    pandas.DataFrame
        Indexed like ``tree.edges``: ``n_consumers`` and ``peak_load_kw`` downstream of each edge.
    """
    e = tree.edges
    load = node_load_kw.groupby(level=0).sum()
    count = node_load_kw.groupby(level=0).size()
    sub_load = load.reindex(e.to_node).fillna(0.0).to_numpy()
    sub_count = count.reindex(e.to_node).fillna(0).to_numpy().astype(np.int64)
    position = {n: i for i, n in enumerate(e.to_node.to_numpy())}
    parent_edge = np.array([position.get(n, -1) for n in e.from_node.to_numpy()])
    # Deepest edges first: add each edge's subtree total to its parent edge.
    for i in np.argsort(-e.depth.to_numpy(), kind="stable"):
        p = parent_edge[i]
        if p >= 0:
            sub_load[p] += sub_load[i]
            sub_count[p] += sub_count[i]
    return pd.DataFrame({"n_consumers": sub_count, "peak_load_kw": sub_load}, index=e.index)
