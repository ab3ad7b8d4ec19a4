"""No-go polygons (``links.no_go_path``: buildings, tanks, process areas) that pipes must keep out of.

Each polygon is tested on its own, shrunk by :data:`NO_GO_TOLERANCE_M`: a line along an edge touches it. Streets,
links (:func:`heatmap.network.links.avoid`) and service pipes (:func:`heatmap.network.candidates.build_candidates`)
are kept out the same way.
"""

from __future__ import annotations

import numpy as np
import shapely

NO_GO_TOLERANCE_M = 0.01
"""A line enters a no-go polygon where it comes more than this inside it: a line along an edge touches it, even
with the edge's coordinates rounded (a layer drawn in degrees) or shared by two polygons side by side."""


class NoGoAreas:
    """No-go polygons, each tested on its own (two side by side do not swallow the street along their shared edge).

    Parameters
    ----------
    polygons
        The polygons' geometry (any CRS in metres).
    tolerance_m
        How far inside a polygon a line must come to enter it.
    """

    def __init__(self, polygons: np.ndarray, *, tolerance_m: float = NO_GO_TOLERANCE_M) -> None:
        shrunk = shapely.buffer(shapely.make_valid(np.asarray(polygons)), -tolerance_m)
        self.zones = shrunk[~shapely.is_empty(shrunk)]
        self.tree = shapely.STRtree(self.zones)

    def enters(self, lines: np.ndarray, *, from_inside: bool = False) -> np.ndarray:
        """Whether each line enters a polygon (by more than the tolerance, :data:`NO_GO_TOLERANCE_M` by default).

        With ``from_inside`` a line that starts or ends inside a polygon (a pipe from a site in a process area) may
        cross that polygon's edge once for each such end: it enters it where it comes back after leaving, or runs
        inside it from one end to the other.
        """
        out = np.zeros(len(lines), dtype=bool)
        li, zi = self.tree.query(lines, predicate="intersects")
        if not len(li):
            return out
        bad = np.ones(len(li), dtype=bool)
        if from_inside:
            zone = self.zones[zi]
            inside = sum(shapely.within(shapely.get_point(lines[li], i), zone).astype(int) for i in (0, -1))
            own = inside > 0
            pieces = shapely.get_num_geometries(shapely.intersection(lines[li[own]], zone[own]))
            bad[own] = pieces != inside[own]  # one piece from each end inside, out to the edge
        out[li[bad]] = True
        return out
