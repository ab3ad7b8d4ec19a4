"""Synthetic towns for benchmarks and tests: streets, buildings and heat sources, seeded and reproducible.

The town is a street grid with irregular block sizes (grid lines 70–130 m apart), every junction moved by up
to ``jitter_m`` and a share of street segments missing (``drop_share``; buildings on streets cut off from the
source become unreachable, as in real data). Along both sides of every street stand rectangular footprints
(12–18 m wide, 9–16 m deep, 6–10 m from the centreline, 1–8 storeys by type; where footprints of
crossing streets would overlap at a corner only one is kept). Building types are drawn with
the shares of :data:`TYPE_SHARES`; annual demand = footprint × floors × the Finnish specific demand of the
type (1970s era) + hot water, like a municipal building register export. Heat sources (one per
:data:`CONSUMERS_PER_SOURCE` buildings unless told) stand inside blocks spread evenly over the town, each on a
short access street, and share the town's total undiversified peak load as their capacity.

:func:`synthetic_town` makes the data; :func:`write_synthetic_scenario` writes it with a scenario file that
``heatmap plan`` runs offline.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import osmnx as ox
import pandas as pd
import shapely
import yaml
from pyproj import Transformer

from heatmap import settings

logger = logging.getLogger(__name__)

TYPE_SHARES = {"detached": 0.55, "row": 0.15, "apartment_block": 0.18, "retail": 0.04, "office": 0.05, "school": 0.03}
"""Share of each building type in a synthetic town."""
FLOORS = {
    "detached": (1, 2),
    "row": (1, 2),
    "apartment_block": (3, 8),
    "retail": (1, 2),
    "office": (2, 6),
    "school": (2, 3),
}
"""Range of storeys by type (inclusive)."""
CRS = "EPSG:3067"
BUILDINGS_PER_SIDE_M = 20.0
"""Spacing of buildings along a street side."""
CONSUMERS_PER_SOURCE = 2500
"""Default number of buildings per heat source: about 40 MW of design load, within one DN600 main."""


@dataclass
class SyntheticTown:
    """A generated town: an osmnx street graph (EPSG:4326), consumer footprints and sources (EPSG:3067)."""

    streets: nx.MultiDiGraph
    consumers: gpd.GeoDataFrame
    sources: gpd.GeoDataFrame


def _grid_lines(n: int, rng: np.random.Generator) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(rng.uniform(70, 130, n - 1))])


@dataclass(frozen=True)
class _Grid:
    """A jittered street grid and the building footprints that fit along its streets."""

    node_x: np.ndarray
    node_y: np.ndarray
    idx: np.ndarray  # node number by grid position
    u: np.ndarray  # street segments kept: their end nodes and lengths
    v: np.ndarray
    length: np.ndarray
    candidates: np.ndarray  # footprints (shapely polygons)
    free: np.ndarray  # footprints overlapping none before them


def _grid(side: int, rng: np.random.Generator, *, jitter_m: float, drop_share: float, x0: float, y0: float) -> _Grid:
    xs, ys = _grid_lines(side, rng), _grid_lines(side, rng)
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    node_x = (gx + rng.uniform(-jitter_m, jitter_m, gx.shape)).ravel() + x0
    node_y = (gy + rng.uniform(-jitter_m, jitter_m, gy.shape)).ravel() + y0
    idx = np.arange(side * side).reshape(side, side)
    u = np.concatenate([idx[:-1, :].ravel(), idx[:, :-1].ravel()])
    v = np.concatenate([idx[1:, :].ravel(), idx[:, 1:].ravel()])
    keep = rng.random(len(u)) >= drop_share
    u, v = u[keep], v[keep]

    # Buildings along both sides of every street segment.
    ax, ay, bx, by = node_x[u], node_y[u], node_x[v], node_y[v]
    length = np.hypot(bx - ax, by - ay)
    per_side = np.maximum(((length - 30.0) // BUILDINGS_PER_SIDE_M).astype(int), 0)
    seg = np.repeat(np.arange(len(u)), 2 * per_side)
    k = np.concatenate([np.tile(np.arange(n), 2) for n in per_side]) if len(per_side) else np.array([], int)
    side_sign = np.concatenate([np.repeat([1.0, -1.0], n) for n in per_side]) if len(per_side) else np.array([])
    along = 15.0 + BUILDINGS_PER_SIDE_M * (k + 0.5)
    tx, ty = (bx - ax)[seg] / length[seg], (by - ay)[seg] / length[seg]
    nx_, ny_ = -ty * side_sign, tx * side_sign
    width = rng.uniform(12, BUILDINGS_PER_SIDE_M - 2, len(seg))  # 2 m gap between neighbours
    depth = rng.uniform(9, 16, len(seg))
    setback = rng.uniform(6, 10, len(seg))
    cx = ax[seg] + tx * along + nx_ * (setback + depth / 2)
    cy = ay[seg] + ty * along + ny_ * (setback + depth / 2)
    corners = np.stack(
        [
            np.stack(
                [cx + sx * tx * width / 2 + sy * nx_ * depth / 2, cy + sx * ty * width / 2 + sy * ny_ * depth / 2],
                axis=-1,
            )
            for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))
        ],
        axis=1,
    )
    # Near junctions the footprints of crossing streets can overlap: keep the first of each overlapping pair.
    candidates = np.asarray(shapely.polygons(corners))
    left, right = shapely.STRtree(candidates).query(candidates, predicate="overlaps")
    free = np.setdiff1d(np.arange(len(candidates)), right[left < right])
    return _Grid(node_x, node_y, idx, u, v, length, candidates, free)


def synthetic_town(
    n_consumers: int,
    *,
    seed: int = 0,
    n_sources: int | None = None,
    jitter_m: float = 12.0,
    drop_share: float = 0.06,
    origin_lonlat: tuple[float, float] = (23.05, 63.80),
) -> SyntheticTown:
    """Generate a town with ``n_consumers`` buildings.

    Parameters
    ----------
    n_consumers
        Number of buildings (consumers).
    seed
        Seed of the random generator: the same seed gives the same town.
    n_sources
        Heat sources, spread evenly over the town; default ``ceil(n_consumers / CONSUMERS_PER_SOURCE)``.
    jitter_m
        Largest displacement of a street junction from its grid position.
    drop_share
        Share of street segments left out.
    origin_lonlat
        South-west corner of the town in degrees (default: south of Kokkola).

    Returns
    -------
    SyntheticTown
    """
    if n_consumers < 1:
        raise ValueError("n_consumers must be at least 1")
    if n_sources is not None and n_sources < 1:
        raise ValueError("n_sources must be at least 1")
    if not 0.0 <= drop_share < 1.0:
        raise ValueError("drop_share must be at least 0 and below 1")
    rng = np.random.default_rng(seed)
    # About 5 buildings fit along a street segment and a square grid of side s has 2 s (s - 1) segments:
    # take a grid with room for a quarter more buildings than asked, then draw the buildings from it.
    side = max(3, int(np.ceil(np.sqrt(1.25 * n_consumers / 5 / 2))) + 1)
    x0, y0 = Transformer.from_crs("EPSG:4326", CRS, always_xy=True).transform(*origin_lonlat)
    grid = _grid(side, rng, jitter_m=jitter_m, drop_share=drop_share, x0=x0, y0=y0)
    while len(grid.free) < n_consumers:  # the streets left out left too little room: one grid line more each way
        side += 1
        grid = _grid(side, rng, jitter_m=jitter_m, drop_share=drop_share, x0=x0, y0=y0)
    node_x, node_y, idx, u, v, length = grid.node_x, grid.node_y, grid.idx, grid.u, grid.v, grid.length
    candidates, free = grid.candidates, grid.free
    footprints = candidates[np.sort(rng.choice(free, n_consumers, replace=False))]

    types = rng.choice(list(TYPE_SHARES), n_consumers, p=list(TYPE_SHARES.values()))
    lo = np.array([FLOORS[t][0] for t in types])
    hi = np.array([FLOORS[t][1] for t in types])
    floors = rng.integers(lo, hi + 1)
    table = pd.read_csv(settings.data_dir / "specific_heat_demand_fi.csv", comment="#", index_col="era")
    dhw = pd.read_csv(settings.data_dir / "dhw_fi.csv", comment="#", index_col="demand_type").dhw_kwh_per_m2
    specific = table.loc["1970s"].reindex(types).to_numpy() + dhw.reindex(types).to_numpy()
    floor_area = shapely.area(footprints) * floors
    annual = floor_area * specific / 1000
    width_digits = len(str(n_consumers))
    consumers = gpd.GeoDataFrame(
        {
            "id": [f"B{i:0{width_digits}d}" for i in range(n_consumers)],
            "building_type": types,
            "floors": floors,
            "floor_area_m2": floor_area,
            "annual_demand_mwh": annual,
        },
        geometry=footprints,
        crs=CRS,
    )

    # Sources inside blocks next to junctions of an even k × k sub-grid, on short access streets.
    if n_sources is None:
        n_sources = int(np.ceil(n_consumers / CONSUMERS_PER_SOURCE))
    n_sub = int(np.ceil(np.sqrt(n_sources)))
    at = ((np.arange(n_sub) + 0.5) * (side - 1) / n_sub).astype(int)
    slots = idx[np.ix_(at, at)].ravel()
    junction = slots[np.linspace(0, len(slots) - 1, n_sources).round().astype(int)]
    access_x, access_y = node_x[junction] + 20.0, node_y[junction] + 20.0
    src_x, src_y = node_x[junction] + 35.0, node_y[junction] + 35.0
    total_peak_kw = annual.sum() * 1000 / 2000
    sources = gpd.GeoDataFrame(
        {
            "id": [f"S{i + 1}" for i in range(n_sources)],
            "name": [f"Plant {i + 1}" for i in range(n_sources)],
            "capacity_kw": np.full(n_sources, np.ceil(total_peak_kw / n_sources / 1000) * 1000),
            "t_supply_c": 85.0,
        },
        geometry=shapely.points(src_x, src_y),
        crs=CRS,
    )

    # The street graph, in EPSG:4326 like a graph osmnx downloads.
    to_deg = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    lon, lat = to_deg.transform(np.concatenate([node_x, access_x]), np.concatenate([node_y, access_y]))
    G: nx.MultiDiGraph[int] = nx.MultiDiGraph(crs="EPSG:4326")
    n_nodes = side * side
    G.add_nodes_from((i, {"x": float(lon[i]), "y": float(lat[i])}) for i in range(n_nodes + n_sources))
    su = np.concatenate([u, junction])
    sv = np.concatenate([v, n_nodes + np.arange(n_sources)])
    slen = np.concatenate([length, np.full(n_sources, np.hypot(20.0, 20.0))])
    highway = np.where(rng.random(len(su)) < 0.15, "secondary", "residential")
    for a, b, le, hw, osmid in zip(
        su.tolist(), sv.tolist(), slen.tolist(), highway.tolist(), range(len(su)), strict=True
    ):
        attrs = {"osmid": osmid, "highway": hw, "length": le, "oneway": False, "reversed": False}
        G.add_edge(a, b, **attrs)
        G.add_edge(b, a, **{**attrs, "reversed": True})
    logger.info(
        "Synthetic town (seed %d): %d consumers, %.0f MWh/a, %d street segments, %d sources",
        seed,
        n_consumers,
        annual.sum(),
        len(u),
        n_sources,
    )
    return SyntheticTown(G, consumers, sources)


def write_synthetic_scenario(town: SyntheticTown, folder: Path, *, name: str = "Synthetic town") -> Path:
    """Write a synthetic town's streets (GraphML), consumers (GPKG), sources (GeoJSON) and a scenario.

    Parameters
    ----------
    town
        Output of :func:`synthetic_town`.
    folder
        Folder to write into (created if missing).
    name
        The scenario's name.

    Returns
    -------
    pathlib.Path
        The scenario file.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ox.save_graphml(town.streets, folder / "streets.graphml")
    town.consumers.to_file(folder / "consumers.gpkg", engine="pyogrio")
    town.sources.to_crs(4326).to_file(folder / "sources.geojson", engine="pyogrio")
    scenario = {
        "name": name,
        "streets": {"source": "graphml", "path": "streets.graphml"},
        "sources": {"path": "sources.geojson"},
        "consumers": {"path": "consumers.gpkg"},
        "temperatures": {"supply_c": 85, "return_c": 45, "ground_c": 8, "min_consumer_supply_c": 70},
        "limits": {"max_velocity_m_per_s": 2.0, "max_pressure_gradient_pa_per_m": 200},
    }
    path = folder / "scenario.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False), encoding="utf-8")
    logger.info("Wrote synthetic scenario %s", path)
    return path


OSM_BUILDING_TAG = {
    "detached": "detached",
    "row": "terrace",
    "apartment_block": "apartments",
    "retail": "retail",
    "office": "office",
    "school": "school",
}
"""OSM ``building`` value written for each synthetic building type."""
CENTRE_SHARES = {"detached": 0.10, "row": 0.10, "apartment_block": 0.55, "retail": 0.10, "office": 0.12, "school": 0.03}
"""Type shares within one standard deviation of a town centre; farther out :data:`TYPE_SHARES` apply."""


def synthetic_region_buildings(n_buildings: int, *, seed: int = 0, n_towns: int | None = None) -> gpd.GeoDataFrame:
    """Generate a region's building footprints with OSM-like tags, clustered in towns of unequal size.

    Town sizes follow Zipf's rule (the k-th largest holds 1/k of the largest's buildings); each town's
    buildings scatter around its centre (normal, standard deviation 15 m × √buildings), apartment blocks,
    shops and offices near the centre (:data:`CENTRE_SHARES`), detached houses outside. Footprints are
    rectangles sized by type; ``building:levels`` is missing for 10 % and ``start_date`` (1900–2022) for
    20 % of the buildings, so the demand model's defaults are exercised. Footprints may overlap (no street
    layout here): use :func:`synthetic_town` where streets matter.

    Parameters
    ----------
    n_buildings
        Number of buildings.
    seed
        Seed of the random generator.
    n_towns
        Number of towns; default about one per 20,000 buildings (at least one).

    Returns
    -------
    geopandas.GeoDataFrame
        ``id``, ``building``, ``building:levels``, ``start_date`` and footprints in EPSG:3067.
    """
    if n_buildings < 1:
        raise ValueError("n_buildings must be at least 1")
    rng = np.random.default_rng(seed)
    n_towns = n_towns or max(1, round(n_buildings / 20_000))
    weights = 1.0 / np.arange(1, n_towns + 1)
    town = np.sort(rng.choice(n_towns, n_buildings, p=weights / weights.sum()))
    count = np.bincount(town, minlength=n_towns)
    side_m = 4000.0 * np.sqrt(n_towns)
    x0, y0 = 300_000.0, 7_000_000.0  # central Finland in EPSG:3067
    centre = np.column_stack([x0 + rng.uniform(0, side_m, n_towns), y0 + rng.uniform(0, side_m, n_towns)])
    spread = 15.0 * np.sqrt(np.maximum(count, 1))
    offset = rng.normal(size=(n_buildings, 2))
    xy = centre[town] + offset * spread[town, None]
    central = np.hypot(*offset.T) < 1.0
    kinds = list(TYPE_SHARES)
    kind = np.where(
        central,
        rng.choice(kinds, n_buildings, p=[CENTRE_SHARES[k] for k in kinds]),
        rng.choice(kinds, n_buildings, p=[TYPE_SHARES[k] for k in kinds]),
    )
    big = np.isin(kind, ["apartment_block", "office", "school", "retail"])
    width = np.where(big, rng.uniform(10, 16, n_buildings), rng.uniform(8, 12, n_buildings))
    length = np.where(big, rng.uniform(15, 35, n_buildings), rng.uniform(9, 14, n_buildings))
    lo = np.array([FLOORS[k][0] for k in kind])
    hi = np.array([FLOORS[k][1] for k in kind])
    levels = rng.integers(lo, hi + 1).astype(object)
    levels[rng.random(n_buildings) < 0.10] = None
    year = rng.integers(1900, 2023, n_buildings).astype(str).astype(object)
    year[rng.random(n_buildings) < 0.20] = None
    footprints = shapely.box(xy[:, 0], xy[:, 1], xy[:, 0] + length, xy[:, 1] + width)
    digits = len(str(n_buildings))
    out = gpd.GeoDataFrame(
        {
            "id": [f"R{i:0{digits}d}" for i in range(n_buildings)],
            "building": [OSM_BUILDING_TAG[k] for k in kind],
            "building:levels": levels,
            "start_date": year,
        },
        geometry=footprints,
        crs=CRS,
    )
    logger.info("Synthetic region (seed %d): %d buildings in %d towns", seed, n_buildings, n_towns)
    return out
