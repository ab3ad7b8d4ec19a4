"""Candidate links where there are no streets: drawn lines, site-to-site lines, cost factors, no-go areas."""

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, Point, box

from heatmap._errors import InputDataError
from heatmap.network import candidates, links, routing
from heatmap.network.no_go import NoGoAreas

CRS = "EPSG:3067"
FACTORS = {"street": 1.0, "open_terrain": 0.8, "pipe_rack": 1.5, "road_crossing": 3.0, "rail_crossing": 4.0}


def lines(rows):
    return gpd.GeoDataFrame(
        {"surface": [s for s, _ in rows], "feature": range(1, len(rows) + 1)},
        geometry=[LineString(c) for _, c in rows],
        crs=CRS,
    )


def test_drawn_lines_are_split_at_their_crossings():
    drawn = lines([("pipe_rack", [(0, 0), (100, 0)]), ("open_terrain", [(50, -50), (50, 50)])])
    seg = links.combine(
        None, [links.drawn_links(drawn, cost_factors=FACTORS, default_surface="open_terrain")], snap_m=1
    )
    assert len(seg) == 4 and seg.length_m.sum() == pytest.approx(200)
    G = nx.Graph(list(zip(seg.u, seg.v, strict=True)))
    assert max(dict(G.degree).values()) == 4  # the crossing joins all four pieces
    assert sorted(seg.cost_factor) == [0.8, 0.8, 1.5, 1.5]


def test_link_ends_near_each_other_and_near_a_street_node_join():
    drawn = lines([("pipe_rack", [(0.4, 0), (100, 0)]), ("pipe_rack", [(100.3, 0.2), (100, 80)])])
    street = gpd.GeoDataFrame(
        {"edge_id": [0], "u": ["n1"], "v": ["n2"], "name": "Main", "highway": "primary", "length_m": [300.0]},
        geometry=[LineString([(0, -300), (0, 0)])],
        crs=CRS,
    )
    seg = links.combine(street, [links.drawn_links(drawn, cost_factors=FACTORS, default_surface="pipe_rack")], snap_m=1)
    G = nx.Graph(list(zip(seg.u, seg.v, strict=True)))
    assert nx.is_connected(G) and "n2" in G
    # Moved onto the node they join: drawn from node to node, as long as drawn.
    np.testing.assert_allclose(seg.length_m, seg.geometry.length)
    assert seg.loc[seg.surface == "street", "cost_factor"].tolist() == [1.0]


def test_route_goes_round_a_no_go_area_on_the_drawn_pipe_rack():
    # Plant at (0, 0), consumer at (200, 0), a tank farm between them; the rack runs round it.
    no_go = gpd.GeoDataFrame(geometry=[box(50, -40, 150, 40)], crs=CRS)
    sites = gpd.GeoDataFrame(geometry=[Point(0, 0), Point(200, 0)], crs=CRS)
    straight = links.site_links(sites, max_length_m=500, neighbours=3, cost_factor=0.8, surface="open_terrain")
    assert len(straight) == 1
    straight = links.avoid(straight, no_go)
    assert straight.empty  # the straight line crosses the tank farm
    rack = links.drawn_links(
        lines([("pipe_rack", [(0, 0), (0, 60), (200, 60), (200, 0)])]), cost_factors=FACTORS, default_surface="x"
    )
    seg = links.combine(None, [links.avoid(rack, no_go), straight], snap_m=1)
    src = gpd.GeoDataFrame({"source_id": ["S"]}, geometry=[Point(0, -2)], crs=CRS)
    cons = gpd.GeoDataFrame({"consumer_id": ["C"]}, geometry=[Point(200, -2)], crs=CRS)
    cand = candidates.build_candidates(seg, src, cons, max_service_length_m=50)
    t = cand.terminals.set_index("terminal_id").node
    tree = routing.route_network(candidates.candidate_graph(cand.edges), {"S": t["S"]}, {"C": t["C"]})
    used = cand.edges.set_index("edge_id").loc[tree.edges.edge_id]
    assert used[used.kind == "street"].length_m.sum() == pytest.approx(320)
    assert (used[used.kind == "street"].cost_factor == 1.5).all()
    route = shapely.union_all(used.geometry.values)
    assert not route.intersects(no_go.geometry[0].buffer(-1e-6))


def test_the_cheaper_of_two_routes_wins_by_cost_not_length():
    # 100 m across a rail line (factor 4) against 180 m of open terrain (0.8) round it: 400 vs 144.
    drawn = lines(
        [
            ("rail_crossing", [(0, 0), (100, 0)]),
            ("open_terrain", [(0, 0), (50, 77.46), (100, 0)]),
        ]
    )
    seg = links.combine(None, [links.drawn_links(drawn, cost_factors=FACTORS, default_surface="x")], snap_m=1)
    src = gpd.GeoDataFrame({"source_id": ["S"]}, geometry=[Point(-1, 0)], crs=CRS)
    cons = gpd.GeoDataFrame({"consumer_id": ["C"]}, geometry=[Point(101, 0)], crs=CRS)
    cand = candidates.build_candidates(seg, src, cons, max_service_length_m=5)
    t = cand.terminals.set_index("terminal_id").node
    tree = routing.route_network(candidates.candidate_graph(cand.edges), {"S": t["S"]}, {"C": t["C"]})
    used = cand.edges.set_index("edge_id").loc[tree.edges.edge_id]
    assert set(used[used.kind == "street"].surface) == {"open_terrain"}


def test_unknown_surface_and_wrong_geometry_are_named(tmp_path):
    with pytest.raises(InputDataError, match=r"features 2 have surface tunnel; known surfaces: street"):
        links.drawn_links(
            lines([("pipe_rack", [(0, 0), (1, 0)]), ("tunnel", [(0, 0), (0, 1)])]),
            cost_factors=FACTORS,
            default_surface="pipe_rack",
        )
    path = tmp_path / "links.gpkg"
    gpd.GeoDataFrame(geometry=[LineString([(0, 0), (1, 1)]), box(0, 0, 1, 1)], crs=CRS).to_file(path)
    with pytest.raises(InputDataError, match=r"links.gpkg: features 2 are not LineString"):
        links.read_lines(path, layer=None, crs=CRS, what="candidate links")
    with pytest.raises(InputDataError, match="not found"):
        links.read_lines(tmp_path / "none.gpkg", layer=None, crs=CRS, what="candidate links")
    drawn = gpd.GeoDataFrame({"surface": ["street", "lava"]}, geometry=[LineString([(0, 0), (1, 0)])] * 2, crs=CRS)
    drawn.to_file(tmp_path / "surface.geojson")
    read = links.read_lines(tmp_path / "surface.geojson", layer=None, crs=CRS, what="candidate links")
    with pytest.raises(InputDataError, match=r"surface.geojson: features 2 have surface lava; known surfaces"):
        links.drawn_links(read, cost_factors=FACTORS, default_surface="street")


def test_empty_and_one_point_lines_are_named_as_such(tmp_path):
    path = tmp_path / "links.geojson"
    path.write_text(
        '{"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "EPSG:3067"}}, "features": ['
        '{"type": "Feature", "properties": {}, "geometry": {"type": "LineString", "coordinates": [[0, 0], [5, 0]]}},'
        '{"type": "Feature", "properties": {}, "geometry": {"type": "LineString", "coordinates": []}}]}'
    )
    with pytest.raises(InputDataError, match=r"links.geojson: features 2 of the candidate links have no geometry"):
        links.read_lines(path, layer=None, crs=CRS, what="candidate links")
    path.write_text(path.read_text().replace('"coordinates": []', '"coordinates": [[3, 3], [3, 3]]'))
    with pytest.raises(InputDataError, match=r"feature 2 \(Too few points.*a line needs two distinct points: repair"):
        links.read_lines(path, layer=None, crs=CRS, what="candidate links")


def test_ends_within_reach_join_through_a_chain_and_streets_take_their_factor():
    # Three lines whose ends lie 0.8 m apart in a row (A–B, B–C within 1 m; A–C 1.6 m): one node.
    drawn = lines(
        [
            ("pipe_rack", [(0, 0), (-100, 0)]),
            ("pipe_rack", [(0.8, 0), (0.8, 100)]),
            ("pipe_rack", [(1.6, 0), (100, 0)]),
        ]
    )
    seg = links.combine(None, [links.drawn_links(drawn, cost_factors=FACTORS, default_surface="x")], snap_m=1)
    ends = set(seg.u) | set(seg.v)
    assert len(ends) == 4  # the shared junction and three far ends
    street = gpd.GeoDataFrame(
        {"edge_id": [0], "u": ["n1"], "v": ["n2"], "name": "", "highway": "", "length_m": [50.0]},
        geometry=[LineString([(0, -50), (0, -100)])],
        crs=CRS,
    )
    seg = links.combine(street, [], snap_m=1, street_cost_factor=1.3)
    assert seg.cost_factor.tolist() == [1.3]


def test_site_links_reach_at_most_the_nearest_sites_within_the_longest_link():
    sites = gpd.GeoDataFrame(geometry=[Point(x, 0) for x in (0, 100, 200, 300, 1000)], crs=CRS)
    out = links.site_links(sites, max_length_m=250, neighbours=2, cost_factor=0.6, surface="open_terrain")
    lengths = sorted(out.geometry.length.round(6))
    # each site to its two nearest within 250 m; the site 700 m away has none
    assert lengths == [100, 100, 100, 200, 200]
    assert (out.geometry.length <= 250).all()


def test_a_source_walled_in_by_a_no_go_area_is_refused_with_what_to_draw(tmp_path):
    """A ring drawn round a plant short of every street: its service pipe would cross it, so the plan says so."""
    import yaml

    from heatmap.io import synthetic
    from heatmap.plan import plan_from_scenario
    from heatmap.scenario import scenario_from_file

    town = synthetic.synthetic_town(40, seed=3)
    path = synthetic.write_synthetic_scenario(town, tmp_path)
    base = plan_from_scenario(scenario_from_file(path))
    plant = base.sources.geometry.iloc[0]
    reach = base.streets.geometry.distance(plant).min()  # no street within it: the ring leaves every street be
    ring = plant.buffer(0.8 * reach).difference(plant.buffer(0.3 * reach))
    gpd.GeoDataFrame(geometry=[ring], crs=base.crs).to_file(tmp_path / "no_go.gpkg")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["links"] = {"no_go_path": str(tmp_path / "no_go.gpkg")}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    refused = r"sources S1: every street within \d+ m \('streets.max_service_length_m'\) lies across a no-go area"
    with pytest.raises(InputDataError, match=refused + r".*draw a link out of the area \('links.path'\)"):
        plan_from_scenario(scenario_from_file(path))


def test_no_go_polygons_side_by_side_or_rounded_leave_the_street_along_their_edge():
    """Two blocks side by side sharing an edge that a street runs along, and a block whose edge is a rounding error
    off the street: the street touches them and stays (the union of the two had swallowed it)."""
    street = gpd.GeoDataFrame({"edge_id": [0, 1]}, geometry=[LineString([(0, 0), (100, 0)])] * 2, crs=CRS)
    pair = gpd.GeoDataFrame(geometry=[box(0, 0, 100, 50), box(0, -50, 100, 0)], crs=CRS)
    assert len(links.avoid(street, pair, from_inside=False)) == 2
    rounded = gpd.GeoDataFrame(geometry=[box(0, -1e-7, 100, 50)], crs=CRS)
    assert len(links.avoid(street, rounded, from_inside=False)) == 2
    inside = gpd.GeoDataFrame(geometry=[box(40, -0.5, 60, 50)], crs=CRS)  # the street runs 20 m inside it
    assert len(links.avoid(street, inside, from_inside=False)) == 0


def test_a_line_from_inside_a_no_go_polygon_may_leave_it_once_but_not_come_back():
    """A pipe from a plant inside its process area leaves it; one that leaves and crosses back through an arm of the
    same area enters it; a street may not start inside one at all."""
    area = shapely.union_all([box(0, 0, 20, 20), box(20, 0, 60, 5)])  # a yard and an arm along y 0–5
    zones = NoGoAreas(np.array([area]))
    out = LineString([(10, 10), (10, 40)])  # north, out of the yard
    back = LineString([(10, 10), (40, 30), (40, -10)])  # out, then south across the arm
    assert zones.enters(np.array([out, back]), from_inside=True).tolist() == [False, True]
    assert zones.enters(np.array([out]), from_inside=False).tolist() == [True]


def test_no_go_areas_named_where_they_leave_no_route(tmp_path):
    """One polygon over every street of a town: the plan said 'no candidate routes: give streets…'."""
    import yaml

    from heatmap.io import synthetic
    from heatmap.plan import plan_from_scenario
    from heatmap.scenario import scenario_from_file

    town = synthetic.synthetic_town(40, seed=3)
    path = synthetic.write_synthetic_scenario(town, tmp_path)
    base = plan_from_scenario(scenario_from_file(path))
    cover = box(*base.streets.total_bounds).buffer(10)
    gpd.GeoDataFrame(geometry=[cover], crs=base.crs).to_file(tmp_path / "no_go.gpkg")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["links"] = {"no_go_path": str(tmp_path / "no_go.gpkg")}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    refused = r"no_go\.gpkg: the no-go areas \('links.no_go_path'\) leave out all \d+ street segments, so no route"
    with pytest.raises(InputDataError, match=refused):
        plan_from_scenario(scenario_from_file(path))


def test_a_site_cut_off_by_a_no_go_ring_names_the_no_go_areas(tmp_path):
    """A ring round consumer C of the park leaves out every link to it: C then lies beyond the routes, and the
    message says the no-go areas left links out (it spoke only of coordinates, CRS and link lengths)."""
    from test_bad_input_more import PARK_X0, PARK_Y0, _park

    from heatmap.plan import plan_from_scenario
    from heatmap.scenario import scenario_from_file

    c = Point(PARK_X0 + 300, PARK_Y0 + 200)
    path = _park(tmp_path, [c.buffer(12).difference(c.buffer(6))])
    with pytest.raises(InputDataError, match=r"consumers C lie outside .*the no-go areas 'links.no_go_path' left out"):
        plan_from_scenario(scenario_from_file(path))


def test_a_line_between_two_sites_of_one_no_go_polygon_must_leave_it():
    """Both ends inside one area: a line running inside it from end to end enters it; one that leaves and comes back
    in to its other end crosses the edge once for each end."""
    area = shapely.Polygon([(0, 0), (100, 0), (100, 60), (60, 60), (60, 20), (40, 20), (40, 60), (0, 60)])  # a U
    zones = NoGoAreas(np.array([area]))
    through = LineString([(20, 10), (80, 10)])  # along the bottom of the U, inside
    over = LineString([(20, 40), (20, 80), (80, 80), (80, 40)])  # out of one arm, over the gap, into the other
    assert zones.enters(np.array([through, over]), from_inside=True).tolist() == [True, False]


def test_an_existing_pipe_drawn_mid_street_joins_the_street_where_it_lies():
    # A street a–b–c (two segments of 100 m) and a side street at b; an existing DN150 pipe drawn 1 m off the
    # centre line from 40 m to 160 m: it ends in the middle of both segments and passes the junction b.
    street = gpd.GeoDataFrame(
        {"edge_id": [0, 1, 2], "u": ["a", "b", "b"], "v": ["b", "c", "d"], "name": "", "highway": "",
         "length_m": [100.0, 100.0, 80.0]},
        geometry=[LineString([(0, 0), (100, 0)]), LineString([(100, 0), (200, 0)]), LineString([(100, 0), (100, 80)])],
        crs=CRS,
    )  # fmt: skip
    pipe = lines([("street", [(40, 1), (160, 1)])]).assign(status="existing", dn=150)
    seg = links.combine(street, [links.drawn_links(pipe, cost_factors=FACTORS, default_surface="street")], snap_m=2)
    np.testing.assert_allclose(seg.length_m, seg.geometry.length)
    on_pipe = seg[seg.existing_dn.notna()]
    assert len(on_pipe) == 2 and (on_pipe.existing_dn == 150).all()
    assert on_pipe.length_m.sum() == pytest.approx(120, abs=0.1)
    G = nx.MultiGraph(list(zip(seg.u, seg.v, strict=True)))
    assert nx.is_connected(G) and "b" in set(on_pipe.u) | set(on_pipe.v)  # it joins the junction it passes
    # the streets are split at the pipe's ends; where the pipe lies no street segment is left beside it
    streets_left = seg[seg.link_feature.isna()]
    assert streets_left.length_m.sum() == pytest.approx(40 + 40 + 80, abs=0.1)
    ends = shapely.points([(40, 0), (160, 0)])
    for end in ends:  # each pipe end is a node of the streets
        assert (shapely.distance(shapely.get_point(streets_left.geometry.values, 0), end) < 1e-6).any() or (
            shapely.distance(shapely.get_point(streets_left.geometry.values, -1), end) < 1e-6
        ).any()
    # drawn without a surface it is laid in the street it replaces (its upgrade priced as a street trench); drawn
    # with one (a pipe rack beside the street) it keeps its own
    bare = pipe.drop(columns="surface")
    seg = links.combine(
        street, [links.drawn_links(bare, cost_factors=FACTORS, default_surface="open_terrain")], snap_m=2
    )
    assert (seg.surface[seg.existing_dn.notna()] == "street").all() and (
        seg.cost_factor[seg.existing_dn.notna()] == 1
    ).all()
    rack = pipe.assign(surface="pipe_rack")
    seg = links.combine(
        street, [links.drawn_links(rack, cost_factors=FACTORS, default_surface="open_terrain")], snap_m=2
    )
    assert (seg.cost_factor[seg.existing_dn.notna()] == FACTORS["pipe_rack"]).all()
    # a candidate (not existing) line drawn there is not joined so: only an existing network is matched to streets
    new = lines([("street", [(40, 1), (160, 1)])])
    seg = links.combine(street, [links.drawn_links(new, cost_factors=FACTORS, default_surface="street")], snap_m=2)
    assert len(seg[seg.link_feature.isna()]) == 3 and seg[seg.link_feature.notna()].u.tolist() == ["link:0"]
