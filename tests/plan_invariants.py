"""Invariants every plan must satisfy: the drawn network is the simulated one."""

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely

from heatmap.network.candidates import BUILDING_TOLERANCE_M

TOLERANCE_M = 1e-3


def assert_drawn_equals_simulated(plan) -> None:
    """Check a plan's pipes against its junctions, each other and its consumers.

    - every pipe's geometry starts at its from-junction and ends at its to-junction (within 1 mm);
    - every pipe's ``length_m`` is its geometry's length;
    - each source's supply pipes, matched end to end by their drawn coordinates, form one connected piece;
    - every connected consumer's service pipe ends at its building and at another pipe it joins.
    """
    pipes, junctions = plan.pipes, plan.junctions
    assert len(pipes) and pipes.crs == plan.crs
    np.testing.assert_allclose(pipes.length_m, pipes.geometry.length, rtol=1e-9, atol=1e-9)
    for circuit, part in pipes.groupby("circuit"):
        jxy = junctions[junctions.circuit == circuit].set_index("node_id").geometry
        start = shapely.get_coordinates(shapely.get_point(part.geometry.values, 0))
        end = shapely.get_coordinates(shapely.get_point(part.geometry.values, -1))
        from_xy = shapely.get_coordinates(jxy.reindex(part.from_node).values)
        to_xy = shapely.get_coordinates(jxy.reindex(part.to_node).values)
        assert np.abs(start - from_xy).max() < TOLERANCE_M, f"{circuit} pipes do not start at their from-junction"
        assert np.abs(end - to_xy).max() < TOLERANCE_M, f"{circuit} pipes do not end at their to-junction"

    supply = pipes[pipes.circuit == "supply"]
    for sid, part in supply.groupby("source_id"):
        G = nx.Graph()
        for g in part.geometry.values:
            xy = np.round(shapely.get_coordinates(g)[[0, -1]], 2)
            G.add_edge(tuple(xy[0]), tuple(xy[1]))
        assert nx.number_connected_components(G) == 1, f"the supply network of {sid} is drawn in pieces"

    ends = np.round(
        np.concatenate([shapely.get_coordinates(shapely.get_point(supply.geometry.values, i)) for i in (0, -1)]), 2
    )
    end_count = {}
    for xy in map(tuple, ends):
        end_count[xy] = end_count.get(xy, 0) + 1
    connected = plan.consumers[plan.consumers.connected].set_index("consumer_id")
    service = supply[supply.kind == "service"].dropna(subset=["consumer_id"]).set_index("consumer_id")
    assert set(service.index) == set(connected.index), "a connected consumer has no service pipe"
    building = connected.geometry.reindex(service.index).values
    inner = shapely.get_point(service.geometry.values, -1)  # supply: towards the building
    street = shapely.get_point(service.geometry.values, 0)
    assert shapely.distance(inner, building).max() < TOLERANCE_M, "a service pipe does not reach its building"
    street_xy = np.round(shapely.get_coordinates(street), 2)
    joined = np.array([end_count[tuple(xy)] >= 2 for xy in street_xy])
    assert joined.all(), f"service pipes of {list(service.index[~joined][:5])} join no other pipe"


def assert_service_pipes_keep_out_of_other_buildings(plan) -> set[str]:
    """Check that no service pipe crosses a building but its own unless its site is marked as having no way round.

    A site is marked (``service_through_building``) where no street clear of other buildings is in reach within the
    detour allowed (``streets.service_detour_m``); a pipe that starts inside a neighbour's footprint (the two overlap)
    only leaves it. Returns the crossing sites.
    """
    cons, left = plan.consumers, plan.left_out
    footprints = gpd.GeoDataFrame(pd.concat([cons[["consumer_id", "geometry"]], left[["consumer_id", "geometry"]]]))
    zones = shapely.buffer(footprints.geometry.to_numpy(), -BUILDING_TOLERANCE_M)
    flagged = {
        **cons.set_index("consumer_id").service_through_building.to_dict(),
        **plan.sources.set_index("source_id").service_through_building.to_dict(),
    }
    service = plan.pipes[(plan.pipes.kind == "service") & (plan.pipes.circuit == "supply")]
    site = service.consumer_id.fillna(service.source_id).to_numpy()
    lines = service.geometry.to_numpy()
    li, zi = shapely.STRtree(zones).query(lines, predicate="intersects")
    leaves = shapely.within(shapely.get_point(lines[li], 0), zones[zi]) | shapely.within(
        shapely.get_point(lines[li], -1), zones[zi]
    )
    others = footprints.consumer_id.to_numpy()[zi] != site[li]
    crossing = {str(s) for s in site[li[~leaves & others]]}
    marked = {k for k, v in flagged.items() if v}
    # every crossing is marked; every marked site that is connected crosses (a mark means there was no way round)
    assert crossing <= marked, sorted(crossing - marked)
    assert marked <= crossing | set(cons.consumer_id[~cons.connected]), sorted(marked - crossing)
    return crossing
