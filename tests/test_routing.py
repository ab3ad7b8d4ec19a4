import itertools

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import LineString, Point

from heatmap._errors import RoutingError
from heatmap.network import candidates, routing

CRS = "EPSG:3067"


def street(coords_list):
    lines = [LineString(c) for c in coords_list]
    u = [f"{c[0]}" for c in coords_list]
    v = [f"{c[-1]}" for c in coords_list]
    return gpd.GeoDataFrame(
        {
            "edge_id": range(len(lines)),
            "u": u,
            "v": v,
            "osmid": "",
            "name": "",
            "highway": "",
            "length_m": [ln.length for ln in lines],
        },
        geometry=lines,
        crs=CRS,
    )


def test_service_connections_split_the_street_at_the_foot_point():
    streets = street([[(0, 0), (100, 0)]])
    src = gpd.GeoDataFrame({"source_id": ["S"]}, geometry=[Point(-5, 0)], crs=CRS)
    cons = gpd.GeoDataFrame(
        {"consumer_id": ["A", "B", "far"]}, geometry=[Point(30, 10), Point(70, -20), Point(50, 500)], crs=CRS
    )
    cand = candidates.build_candidates(streets, src, cons, max_service_length_m=150)
    t = cand.terminals.set_index("terminal_id")
    assert t.loc["far", "reachable"] == False  # noqa: E712
    assert t.loc["A", "service_length_m"] == pytest.approx(10)
    assert t.loc["B", "service_length_m"] == pytest.approx(20)
    st = cand.edges[cand.edges.kind == "street"]
    assert sorted(st.length_m.round(6)) == [30, 30, 40]  # street cut at x = 30 and x = 70
    assert st.length_m.sum() == pytest.approx(100)
    # the source beyond the street's end joins its end node: no split there
    s_edge = cand.edges[cand.edges.terminal_id == "S"].iloc[0]
    assert s_edge.length_m == pytest.approx(5)


def test_polygon_consumers_connect_from_their_wall():
    streets = street([[(0, 0), (100, 0)]])
    src = gpd.GeoDataFrame({"source_id": ["S"]}, geometry=[Point(0, 1)], crs=CRS)
    house = Point(50, 30).buffer(10, cap_style="square")  # wall at y = 20
    cons = gpd.GeoDataFrame({"consumer_id": ["H"]}, geometry=[house], crs=CRS)
    cand = candidates.build_candidates(streets, src, cons, max_service_length_m=150)
    assert cand.terminals.set_index("terminal_id").loc["H", "service_length_m"] == pytest.approx(20)


def grid_graph():
    # 3 x 3 grid with 100 m spacing; node = 3 * row + col
    G = nx.Graph()
    eid = 0
    for r in range(3):
        for c in range(3):
            n = 3 * r + c
            for m in ([n + 1] if c < 2 else []) + ([n + 3] if r < 2 else []):
                G.add_edge(n, m, edge_id=eid, length_m=100.0, weight_m=100.0)
                eid += 1
    return G


def test_steiner_route_is_a_minimal_tree_on_a_grid():
    G = grid_graph()
    tree = routing.route_network(G, {"S": 0}, {"A": 2, "B": 6, "C": 8})
    assert len(tree.edges) == 6  # optimum: 600 m (e.g. an L plus one branch)
    T = nx.Graph(list(zip(tree.edges.from_node, tree.edges.to_node, strict=True)))
    assert nx.is_tree(T) and {0, 2, 6, 8} <= set(T)
    assert tree.root_of_tree == {0: 0}


def test_unreachable_consumers_are_reported_by_id():
    G = grid_graph()
    G.add_edge(20, 21, edge_id=99, length_m=5.0, weight_m=5.0)
    tree = routing.route_network(G, {"S": 0}, {"A": 8, "island": 21})
    assert tree.unreachable == ["island"]
    with pytest.raises(RoutingError, match="no consumer can be reached"):
        routing.route_network(G, {"S": 0}, {"island": 21})


def test_two_sources_each_feed_their_nearest_consumers():
    G = nx.path_graph(10)
    nx.set_edge_attributes(G, 100.0, "length_m")
    nx.set_edge_attributes(G, 100.0, "weight_m")
    for i, (a, b) in enumerate(G.edges):
        G.edges[a, b]["edge_id"] = i
    tree = routing.route_network(G, {"S1": 0, "S2": 9}, {"A": 1, "B": 8})
    assert len(tree.edges) == 2 and len(tree.root_of_tree) == 2


def test_consumers_are_fed_from_the_source_nearest_along_the_streets():
    # A street 0-1-…-9 with a source at each end and a consumer at every inner node: one tree of 8 edges would
    # be as short, but each consumer belongs to its nearest source's supply area.
    G = nx.path_graph(10)
    nx.set_edge_attributes(G, 100.0, "length_m")
    nx.set_edge_attributes(G, 100.0, "weight_m")
    G.edges[4, 5]["length_m"] = 150.0  # the middle segment: 4 is nearer to 0, 5 nearer to 9
    for i, (a, b) in enumerate(G.edges):
        G.edges[a, b]["edge_id"] = i
    tree = routing.route_network(G, {"S1": 0, "S2": 9}, {f"C{n}": n for n in range(1, 9)})
    by_tree = tree.edges.groupby("tree").to_node.apply(set)
    served = {tree.root_of_tree[t]: nodes for t, nodes in by_tree.items()}
    assert served == {0: {1, 2, 3, 4}, 9: {5, 6, 7, 8}}
    assert 4 not in set(tree.edges.edge_id)  # the 4-5 segment (edge 4) is not built


def test_downstream_totals_sum_loads_along_the_tree():
    edges = pd.DataFrame(
        {"edge_id": [0, 1, 2], "from_node": [0, 1, 1], "to_node": [1, 2, 3], "depth": [1, 2, 2], "tree": 0}
    )
    down = routing.downstream_totals(edges, pd.Series([10.0, 20.0, 5.0], index=[2, 3, 1]))
    assert down.peak_load_kw.tolist() == [35.0, 10.0, 20.0]
    assert down.n_consumers.tolist() == [3, 1, 1]
    assert np.issubdtype(down.n_consumers.dtype, np.integer)


def random_graph(rng, n, *, integer):
    G = nx.gnm_random_graph(n, int(rng.integers(n, 3 * n)), seed=int(rng.integers(1 << 30)))
    for u, v in G.edges:
        G.edges[u, v]["w"] = float(rng.integers(1, 4)) if integer else float(rng.random() * 100)
    return G


def as_arrays(G):
    a, b = (np.array(x) for x in zip(*G.edges, strict=True))
    return a, b, np.array([G.edges[e]["w"] for e in G.edges])


def check_steiner_forest(G, terminals, ta, tb):
    """The edges form a forest of edges of G, one tree per piece holding terminals, whose leaves are terminals."""
    T = nx.Graph(list(zip(ta.tolist(), tb.tolist(), strict=True)))
    assert len(T.edges) == len(ta)  # each edge once
    assert all(G.has_edge(u, v) for u, v in T.edges)
    assert nx.is_forest(T)
    for piece in nx.connected_components(G):
        here = set(terminals) & piece
        if len(here) >= 2:
            assert any(here <= comp for comp in nx.connected_components(T))
    assert {n for n in T if T.degree(n) == 1} <= set(terminals)
    return sum(G.edges[u, v]["w"] for u, v in T.edges)


@pytest.mark.parametrize("seed", range(40))
def test_steiner_edges_is_networkx_mehlhorn_where_shortest_paths_are_unique(seed):
    from networkx.algorithms.approximation import steiner_tree

    rng = np.random.default_rng(seed)
    G = random_graph(rng, int(rng.integers(5, 80)), integer=False)
    G = G.subgraph(max(nx.connected_components(G), key=len)).copy()  # networkx needs a connected graph
    nodes = sorted(G)
    terminals = rng.choice(nodes, size=int(rng.integers(2, len(nodes) + 1)), replace=False).tolist()
    ta, tb = routing.steiner_edges(max(nodes) + 1, *as_arrays(G), np.array(terminals))
    weight = check_steiner_forest(G, terminals, ta, tb)
    reference = steiner_tree(G, terminals, weight="w", method="mehlhorn")
    assert {frozenset(e) for e in zip(ta.tolist(), tb.tolist(), strict=True)} == {frozenset(e) for e in reference.edges}
    assert weight == pytest.approx(reference.size(weight="w"), abs=1e-9)


def optimal_steiner_weight(G, terminals):
    """The least weight of a tree joining the terminals: the best spanning tree over every set of extra nodes."""
    others = [n for n in G if n not in set(terminals)]
    best = np.inf
    for k in range(len(others) + 1):
        for extra in itertools.combinations(others, k):
            H = G.subgraph([*terminals, *extra])
            if nx.is_connected(H):
                best = min(best, nx.minimum_spanning_tree(H, weight="w").size(weight="w"))
    return best


@pytest.mark.parametrize("seed", range(30))
def test_steiner_edges_is_within_twice_the_optimum_with_ties(seed):
    # small integer weights: many shortest paths tie, so the tree may differ from networkx's, but it is a tree
    # joining the terminals, its leaves terminals, at most twice the optimum
    rng = np.random.default_rng(seed)
    G = random_graph(rng, int(rng.integers(4, 11)), integer=True)
    G = G.subgraph(max(nx.connected_components(G), key=len)).copy()
    nodes = sorted(G)
    terminals = rng.choice(nodes, size=int(rng.integers(2, len(nodes) + 1)), replace=False).tolist()
    ta, tb = routing.steiner_edges(max(nodes) + 1, *as_arrays(G), np.array(terminals))
    weight = check_steiner_forest(G, terminals, ta, tb)
    assert optimal_steiner_weight(G, terminals) - 1e-9 <= weight <= 2 * optimal_steiner_weight(G, terminals) + 1e-9


def test_steiner_edges_joins_the_terminals_of_each_piece_apart():
    # two grids side by side, not joined: a tree in each, none across
    G = nx.union(grid_graph(), nx.relabel_nodes(grid_graph(), lambda n: n + 9))
    nx.set_edge_attributes(G, 1.0, "w")
    terminals = [0, 8, 9 + 2, 9 + 6, 9 + 4]
    ta, tb = routing.steiner_edges(len(G), *as_arrays(G), np.array(terminals))
    check_steiner_forest(G, terminals, ta, tb)
    assert len(ta) == 4 + 4  # 0 to 8 along the grid; the three of the other joined by two paths of 2
    assert ((ta < 9) == (tb < 9)).all()
    none = routing.steiner_edges(len(G), *as_arrays(G), np.array([3]))
    assert len(none[0]) == len(none[1]) == 0
