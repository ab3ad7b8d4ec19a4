"""The candidate graph: street geometry oriented to its nodes, terminals snapped to streets a source reaches."""

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString, Point

from heatmap.network import candidates

CRS = "EPSG:3067"


def streets(rows):
    """Street segments from (u, v, coordinates) rows; coordinates may run either way."""
    lines = [LineString(c) for _, _, c in rows]
    return gpd.GeoDataFrame(
        {
            "edge_id": range(len(rows)),
            "u": [u for u, _, _ in rows],
            "v": [v for _, v, _ in rows],
            "name": "",
            "highway": "",
            "length_m": [ln.length for ln in lines],
        },
        geometry=lines,
        crs=CRS,
    )


def assert_edges_run_from_u_to_v(cand):
    xy = shapely.get_coordinates(cand.nodes.geometry.values)
    g = cand.edges.geometry.values
    start = shapely.get_coordinates(shapely.get_point(g, 0))
    end = shapely.get_coordinates(shapely.get_point(g, -1))
    assert np.abs(start - xy[cand.edges.u]).max() < 1e-3
    assert np.abs(end - xy[cand.edges.v]).max() < 1e-3
    np.testing.assert_allclose(cand.edges.length_m, cand.edges.geometry.length)


# A bent street A–B–C–D whose middle and last segments are stored the wrong way round (v→u), as
# osmnx.convert.to_undirected leaves them, plus a dead end B–E stored v→u.
REVERSED = [
    ("A", "B", [(0, 0), (50, 0)]),
    ("B", "C", [(50, 80), (50, 30), (50, 0)]),
    ("C", "D", [(120, 80), (50, 80)]),
    ("B", "E", [(90, -40), (50, 0)]),
]


def test_reversed_street_geometry_is_oriented_to_its_nodes():
    s = candidates.orient_streets(streets(REVERSED))
    start = shapely.get_coordinates(shapely.get_point(s.geometry.values, 0))
    assert start.tolist() == [[0, 0], [50, 0], [50, 80], [50, 0]]
    # Lengths unchanged, shapes only reversed.
    np.testing.assert_allclose(s.geometry.length, streets(REVERSED).length_m)


def test_splits_and_service_pipes_on_a_reversed_street_join_where_they_are_drawn():
    src = gpd.GeoDataFrame({"source_id": ["S"]}, geometry=[Point(-10, 0)], crs=CRS)
    # H1 beside the reversed B–C segment at y = 60 (20 m from C, 60 m from B), H2 beside C–D at x = 100.
    cons = gpd.GeoDataFrame({"consumer_id": ["H1", "H2"]}, geometry=[Point(60, 60), Point(100, 95)], crs=CRS)
    cand = candidates.build_candidates(streets(REVERSED), src, cons, max_service_length_m=50)
    assert_edges_run_from_u_to_v(cand)
    t = cand.terminals.set_index("terminal_id")
    assert t.loc["H1", "service_length_m"] == pytest.approx(10)
    assert t.loc["H2", "service_length_m"] == pytest.approx(15)
    # The foot point of H1 lies 60 m along B→C from B (not mirrored to 20 m).
    nodes = cand.nodes.geometry
    service = cand.edges[cand.edges.terminal_id == "H1"].iloc[0]
    assert (nodes[service.v].x, nodes[service.v].y) == pytest.approx((50, 60))
    pieces = cand.edges[(cand.edges.kind == "street") & (cand.edges.street_edge_id == 1)]
    assert sorted(pieces.length_m.round(6)) == [20, 60]


def test_consumer_joins_the_street_a_source_can_reach_not_a_nearer_cut_off_one():
    rows = [
        ("A", "B", [(0, 0), (200, 0)]),  # the street of the source
        ("X", "Y", [(90, 30), (110, 30)]),  # a cut-off stub (a parking lane)
    ]
    src = gpd.GeoDataFrame({"source_id": ["S"]}, geometry=[Point(0, -5)], crs=CRS)
    cons = gpd.GeoDataFrame(
        {"consumer_id": ["near_stub", "only_stub"]}, geometry=[Point(100, 35), Point(100, 200)], crs=CRS
    )
    cand = candidates.build_candidates(streets(rows), src, cons, max_service_length_m=60)
    t = cand.terminals.set_index("terminal_id")
    # 5 m from the stub, 35 m from the source's street: it joins the source's street.
    assert t.loc["near_stub", "reachable"] and t.loc["near_stub", "service_length_m"] == pytest.approx(35)
    assert t.loc["near_stub", "nearest_street_m"] == pytest.approx(5)
    # Nothing a source reaches within 60 m: unreachable, with the distance to the nearest reachable street.
    assert not t.loc["only_stub", "reachable"]
    assert t.loc["only_stub", "reachable_street_m"] == pytest.approx(200)
    assert t.loc["only_stub", "nearest_street_m"] == pytest.approx(170)


def test_source_joins_the_longest_street_piece_in_reach():
    rows = [
        ("A", "B", [(0, 0), (1000, 0)]),  # the town's streets
        ("X", "Y", [(0, 30), (20, 30)]),  # a short stub nearer the plant
    ]
    src = gpd.GeoDataFrame({"source_id": ["S"]}, geometry=[Point(10, 35)], crs=CRS)
    cons = gpd.GeoDataFrame({"consumer_id": ["H"]}, geometry=[Point(500, 10)], crs=CRS)
    cand = candidates.build_candidates(streets(rows), src, cons, max_service_length_m=100)
    t = cand.terminals.set_index("terminal_id")
    assert t.loc["S", "service_length_m"] == pytest.approx(35)
    assert t.loc["H", "reachable"]


def test_foot_points_a_few_centimetres_apart_join_one_junction():
    """Two buildings' connections 1 mm and 30 cm apart cut the street into pieces of millimetres (pipes a GIS shows as
    noise): the bundled plan had 14 street pipes under 0.5 m, the shortest 1 mm. Points within SNAP_TOLERANCE_M of the
    one before join it; points farther apart still split the street where they are."""
    rows = [("A", "B", [(0, 0), (100, 0)])]
    src = gpd.GeoDataFrame({"source_id": ["S"]}, geometry=[Point(0, -10)], crs=CRS)
    xs = [40.0, 40.001, 40.3, 60.0, 60.6]
    cons = gpd.GeoDataFrame(
        {"consumer_id": [f"H{i}" for i in range(len(xs))]}, geometry=[Point(x, 12) for x in xs], crs=CRS
    )
    cand = candidates.build_candidates(streets(rows), src, cons, max_service_length_m=50)
    assert_edges_run_from_u_to_v(cand)
    street = cand.edges[cand.edges.kind == "street"]
    assert sorted(street.length_m.round(3)) == [0.6, 20.0, 39.4, 40.0]
    service = cand.edges[cand.edges.kind == "service"].set_index("terminal_id")
    assert service.v["H0"] == service.v["H1"] == service.v["H2"] != service.v["H3"] != service.v["H4"]
    # a joined service pipe runs to the junction it shares (0.3 m along the street at most)
    assert service.length_m["H2"] == pytest.approx(np.hypot(0.3, 12))


def test_orientation_of_parallel_and_isolated_segments_is_consistent():
    rows = [
        ("P", "Q", [(0, 0), (10, 0)]),
        ("P", "Q", [(10, 0), (5, 5), (0, 0)]),  # parallel, stored the other way round
        ("M", "N", [(50, 50), (60, 50)]),  # isolated
    ]
    s = candidates.orient_streets(streets(rows))
    start = shapely.get_coordinates(shapely.get_point(s.geometry.values, 0))
    assert start[0].tolist() == start[1].tolist()
    assert start[2].tolist() == [50, 50]


def test_orientation_keeps_every_column():
    s = streets(REVERSED)
    out = candidates.orient_streets(s)
    pd.testing.assert_frame_equal(pd.DataFrame(out.drop(columns="geometry")), pd.DataFrame(s.drop(columns="geometry")))


def test_a_steiner_tree_takes_the_existing_pipe_first():
    # Source 0 and consumer 2: a 100 m street 0–1–2 and, beside it, a 150 m existing pipe 0–3–2. The existing pipe
    # weighs almost nothing (the trench is there), so the Steiner route runs along it although it is longer.
    from heatmap.network import routing

    edges = pd.DataFrame(
        {
            "edge_id": [0, 1, 2, 3],
            "u": [0, 1, 0, 3],
            "v": [1, 2, 3, 2],
            "length_m": [50.0, 50.0, 75.0, 75.0],
            "cost_factor": [1.0, 1.0, 0.6, 0.6],
            "existing_dn": [np.nan, np.nan, 100.0, 100.0],
        }
    )
    G = candidates.candidate_graph(edges)
    assert G.edges[0, 3]["weight_m"] == pytest.approx(75.0 * 0.6 * candidates.EXISTING_WEIGHT)
    assert G.edges[0, 1]["weight_m"] == pytest.approx(50.0)
    tree = routing.route_network(G, {"S": 0}, {"C": 2})
    assert set(tree.edges.edge_id) == {2, 3}


def test_a_line_is_cut_as_shapely_substring_cuts_it_vertex_for_vertex():
    """The streets' pieces between connection points are substring's, bit for bit, on random lines of every
    scale, with cuts anywhere and cuts exactly at a vertex; together they make up the line."""
    from shapely.ops import substring

    rng = np.random.default_rng(7)
    for _ in range(400):
        n = int(rng.integers(3, 25))
        xy = np.cumsum(rng.normal(size=(n, 2)) * rng.choice([0.01, 1.0, 100.0]), axis=0)
        line = LineString(xy)
        length = line.length
        vertex_at = np.cumsum(np.hypot(*np.diff(xy, axis=0).T))[:-1]
        inner = np.r_[np.round(rng.uniform(0, length, int(rng.integers(1, 6))), 3), rng.choice(vertex_at, 1)]
        inner = np.unique(inner[(inner > 0) & (inner < length)])
        cuts = np.r_[0.0, inner, length]
        pieces = candidates.cut_line(line, cuts)
        expected = [substring(line, a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
        assert [p.wkb for p in pieces] == [e.wkb for e in expected]
        assert shapely.length(pieces).sum() == pytest.approx(length, rel=1e-9)


def test_a_service_pipe_goes_round_no_go_areas_to_the_next_street_or_is_left_out():
    """Service pipes obey the no-go polygons as streets and links do: the next street in reach, else unreachable."""
    from shapely.geometry import box

    rows = [
        ("A", "B", [(0, 0), (300, 0)]),  # the main street, south
        ("B", "C", [(300, 0), (300, 100)]),  # a side street, east
    ]
    src = gpd.GeoDataFrame({"source_id": ["S", "FENCED"]}, geometry=[Point(0, -5), Point(150, -30)], crs=CRS)
    cons = gpd.GeoDataFrame(
        {"consumer_id": ["east", "walled", "inside", "touching"]},
        geometry=[Point(260, 30), Point(100, 60), Point(50, 25), Point(200, 20)],
        crs=CRS,
    )
    no_go = gpd.GeoDataFrame(
        geometry=[
            box(250, 5, 270, 25),  # a tank between "east" and the main street: it joins the side street
            box(80, 10, 120, 40),  # a hall between "walled" and the main street; the side street is out of reach
            box(40, 15, 60, 35),  # a process area "inside" stands in: it may leave it
            box(200, 0, 210, 10),  # touches the street and "touching"'s service pipe: touching is fine
            box(140, -40, 160, -20),  # a fenced source: its own area, then across another to the street
            box(130, -15, 170, -5),
        ],
        crs=CRS,
    )
    plain = candidates.build_candidates(streets(rows), src.iloc[:1], cons, max_service_length_m=80)
    cand = candidates.build_candidates(streets(rows), src, cons, max_service_length_m=80, no_go=no_go)
    t = cand.terminals.set_index("terminal_id")
    assert plain.terminals.set_index("terminal_id").loc["east", "service_length_m"] == pytest.approx(30)
    assert t.loc["east", "reachable"] and t.loc["east", "service_length_m"] == pytest.approx(40)
    assert not t.loc["walled", "reachable"] and t.loc["walled", "service_in_no_go"]
    assert t.loc["inside", "reachable"] and t.loc["inside", "service_length_m"] == pytest.approx(25)
    assert t.loc["touching", "reachable"] and t.loc["touching", "service_length_m"] == pytest.approx(20)
    assert not t.loc["FENCED", "reachable"] and t.loc["FENCED", "service_in_no_go"]
    assert not t.service_in_no_go[t.reachable].any()
    # Invariant: no service pipe enters a polygon its own site does not lie in.
    service = cand.edges[cand.edges.kind == "service"]
    for terminal, line in zip(service.terminal_id, service.geometry, strict=True):
        site = src.set_index("source_id").geometry.get(terminal, cons.set_index("consumer_id").geometry.get(terminal))
        for zone in no_go.geometry:
            assert zone.contains(site) or not line.intersects(zone) or line.touches(zone), (terminal, zone)
    assert_edges_run_from_u_to_v(cand)


def test_a_service_pipe_goes_round_other_buildings_where_a_street_in_reach_lets_it():
    """Footprints: the nearest street clear of other buildings; none in reach: through one, and flagged."""
    from shapely.geometry import box

    rows = [
        ("A", "B", [(0, 0), (300, 0)]),  # the main street, south
        ("B", "C", [(300, 0), (300, 100)]),  # a side street, east
    ]
    src = gpd.GeoDataFrame({"source_id": ["S"]}, geometry=[Point(0, -5)], crs=CRS)
    fronts = [box(240, 2, 280, 20), box(80, 2, 120, 20)]  # street-front buildings, left out (no demand)
    own = [box(250, 25, 270, 40), box(90, 25, 110, 40), box(150, 10, 170, 20)]
    cons = gpd.GeoDataFrame({"consumer_id": ["yard_east", "yard_west", "front"]}, geometry=own, crs=CRS)
    # a neighbour overlapping "front" by 0.3 m (OSM footprints side by side): not a crossing
    neighbour = box(140, 0.5, 150.3, 20)
    buildings = np.array([*own, *fronts, neighbour], dtype=object)
    plain = candidates.build_candidates(streets(rows), src, cons, max_service_length_m=60)
    cand = candidates.build_candidates(streets(rows), src, cons, max_service_length_m=60, buildings=buildings)
    p = plain.terminals.set_index("terminal_id")
    t = cand.terminals.set_index("terminal_id")
    # behind a front building, the side street 30 m east is in reach: round it, not 25 m through
    assert p.loc["yard_east", "service_length_m"] == pytest.approx(25)
    assert t.loc["yard_east", "service_length_m"] == pytest.approx(30)
    assert not t.loc["yard_east", "service_through_building"]
    # no street in reach clear of the front building: through it, flagged, still connected
    assert t.loc["yard_west", "reachable"] and t.loc["yard_west", "service_through_building"]
    assert t.loc["yard_west", "service_length_m"] == pytest.approx(25)
    assert not t.loc["front", "service_through_building"] and t.loc["front", "service_length_m"] == pytest.approx(10)
    assert not plain.terminals.service_through_building.any()
    # a detour longer than allowed: through the front building instead
    short = candidates.build_candidates(
        streets(rows), src, cons, max_service_length_m=60, buildings=buildings, detour_m=3
    ).terminals.set_index("terminal_id")
    assert short.loc["yard_east", "service_through_building"] and short.loc["yard_east", "service_length_m"] == 25
    # Invariant: a service pipe not flagged enters no building but its own (by more than the tolerance).
    zones = shapely.buffer(buildings, -candidates.BUILDING_TOLERANCE_M)
    service = cand.edges[cand.edges.kind == "service"]
    for terminal, line in zip(service.terminal_id, service.geometry, strict=True):
        if t.loc[terminal, "service_through_building"]:
            continue
        site = cons.set_index("consumer_id").geometry.get(terminal)
        crossed = [z for z, b in zip(zones, buildings, strict=True) if b is not site and line.intersects(z)]
        assert not crossed, terminal
    assert_edges_run_from_u_to_v(cand)
