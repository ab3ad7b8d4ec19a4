"""The synthetic town generator: seeded, sized as asked, valid geometry, plannable."""

import networkx as nx
import numpy as np
import pytest
import shapely

from heatmap.io import synthetic
from heatmap.scenario import scenario_from_file


@pytest.fixture(scope="module")
def town():
    return synthetic.synthetic_town(1000, seed=7, n_sources=2)


def test_same_seed_same_town_other_seed_other_town(town):
    again = synthetic.synthetic_town(1000, seed=7, n_sources=2)
    other = synthetic.synthetic_town(1000, seed=8, n_sources=2)
    assert town.consumers.drop(columns="geometry").equals(again.consumers.drop(columns="geometry"))
    assert shapely.equals_exact(town.consumers.geometry.values, again.consumers.geometry.values, 0).all()
    assert nx.utils.graphs_equal(town.streets, again.streets)
    assert not np.allclose(town.consumers.annual_demand_mwh, other.consumers.annual_demand_mwh)


def test_counts_ids_and_types(town):
    c = town.consumers
    assert len(c) == 1000 and c.id.is_unique and len(town.sources) == 2
    assert set(c.building_type) <= set(synthetic.TYPE_SHARES)
    # Type shares follow TYPE_SHARES within sampling noise (binomial sd of 1000 draws is under 0.016).
    shares = c.building_type.value_counts(normalize=True)
    for kind, share in synthetic.TYPE_SHARES.items():
        assert shares.get(kind, 0) == pytest.approx(share, abs=0.05)
    for kind, (lo, hi) in synthetic.FLOORS.items():
        floors = c.floors[c.building_type == kind]
        assert floors.between(lo, hi).all()


def test_geometry_valid_metric_and_not_overlapping(town):
    c = town.consumers
    assert c.crs.to_epsg() == 3067 and town.sources.crs.to_epsg() == 3067
    assert c.geometry.is_valid.all() and (c.geometry.geom_type == "Polygon").all()
    assert c.geometry.area.between(12 * 9 * 0.999, 18 * 16 * 1.001).all()
    left, right = c.sindex.query(c.geometry, predicate="overlaps")
    assert len(left) == 0
    # Demand = floor area × specific demand: between the lowest and highest rate of the table (kWh/m²/a).
    rate = c.annual_demand_mwh * 1000 / c.floor_area_m2
    assert rate.between(50, 400).all()
    assert np.allclose(c.floor_area_m2, c.geometry.area * c.floors)


def test_street_graph_irregular_with_gaps_and_sources_connected(town):
    G = town.streets
    assert G.graph["crs"] == "EPSG:4326"
    lengths = np.array([d["length"] for _, _, d in G.edges(data=True)])
    assert lengths.min() > 28 and lengths.std() > 5  # jittered, not a perfect grid (28 m: access streets)
    # Some segments are dropped: fewer undirected edges than a full grid of the same size.
    side = int(round(np.sqrt(G.number_of_nodes() - 2)))
    assert G.number_of_edges() / 2 < 2 * side * (side - 1) + 2
    U = G.to_undirected()
    sources_in_largest = max(nx.connected_components(U), key=len)
    assert {n for n in G.nodes if n >= side * side} <= sources_in_largest


def test_written_scenario_is_valid(tmp_path, town):
    path = synthetic.write_synthetic_scenario(town, tmp_path / "town")
    scn = scenario_from_file(path)
    assert scn.streets.source == "graphml" and scn.consumers.path.is_file() and scn.sources.path.is_file()


def test_rejects_empty_town():
    with pytest.raises(ValueError, match="at least 1"):
        synthetic.synthetic_town(0)


@pytest.mark.parametrize("drop_share", [0.3, 0.6])
def test_many_streets_left_out_still_hold_every_building(drop_share):
    # The grid is sized for the default share of streets left out; with more left out it grows until the
    # buildings fit (it once raised "this is a bug" for 800 consumers with 30 % left out).
    town = synthetic.synthetic_town(800, seed=3, drop_share=drop_share)
    c = town.consumers
    assert len(c) == 800 and c.id.is_unique
    left, right = c.sindex.query(c.geometry, predicate="overlaps")
    assert len(left) == 0
    side = int(round(np.sqrt(town.streets.number_of_nodes() - len(town.sources))))
    full_grid = 2 * side * (side - 1)
    kept = town.streets.number_of_edges() / 2 - len(town.sources)
    assert kept / full_grid == pytest.approx(1 - drop_share, abs=0.06)


@pytest.mark.parametrize("drop_share", [-0.1, 1.0])
def test_rejects_share_of_streets_left_out_outside_0_to_1(drop_share):
    with pytest.raises(ValueError, match="drop_share"):
        synthetic.synthetic_town(10, drop_share=drop_share)
