"""Demand and heat density for a whole region, partitioned on Dask.

The region's buildings (hundreds of thousands to millions) are read as partitions of a dask-geopandas
frame, from GeoParquet where possible (columnar: only the columns the demand model needs are read). On each
partition, in parallel, :func:`heatmap.demand.estimate_building_demand` estimates every building's demand
and :func:`heatmap.density.heat_density_from_buildings` sums it on the grid; since that grid is aligned to
multiples of the cell size, each partition's cells carry global indices and the partitions' sparse cell
sums add up to the region's raster. Potential areas are then found on the whole raster, in one process.

The result is the same as the single-process path up to the order of floating-point additions (a test
checks equality to 1e-9 relative on a sample).

The work runs on a ``distributed`` local cluster (one worker process per core) unless the address of a Dask
scheduler is given.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import dask_geopandas
import geopandas as gpd
import numpy as np
import pandas as pd
from rasterio.transform import from_origin

from heatmap.demand import estimate_building_demand
from heatmap.density import HeatDensity, heat_density_from_buildings
from heatmap.scenario import Demand

logger = logging.getLogger(__name__)

BUILDING_COLUMNS = ["id", "building", "building:levels", "height", "start_date", "amenity", "shop", "office", "name"]
"""Columns the demand model reads (those present are loaded)."""
ROWS_PER_PARTITION = 100_000
"""Buildings per partition when a GeoDataFrame is partitioned here."""


@contextlib.contextmanager
def dask_client(scheduler: str | None = None) -> Iterator[object]:
    """Connect a ``distributed`` client to the scheduler at ``scheduler``, or to a new local cluster.

    Parameters
    ----------
    scheduler
        Address such as ``tcp://10.0.0.5:8786``; ``None`` starts a local cluster of one worker process per
        core (one thread each: the work holds the GIL in places).
    """
    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with LocalCluster(processes=True, threads_per_worker=1, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            logger.info("Dask local cluster with %d workers", len(cluster.workers))
            yield client


def read_buildings(path: str | Path) -> dask_geopandas.GeoDataFrame:
    """Read a region's buildings as partitions: GeoParquet column by column, other formats through pyogrio.

    Parameters
    ----------
    path
        GeoParquet (``.parquet``), or any file :func:`geopandas.read_file` reads.

    Returns
    -------
    dask_geopandas.GeoDataFrame
    """
    path = Path(path)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        present = set(pq.read_schema(path).names)
        columns = [c for c in BUILDING_COLUMNS if c in present] + ["geometry"]
        frame = dask_geopandas.read_parquet(path, columns=columns)
    else:
        gdf = gpd.read_file(path, engine="pyogrio")
        frame = dask_geopandas.from_geopandas(gdf, chunksize=ROWS_PER_PARTITION)
    logger.info("Buildings %s in %d partitions", path, frame.npartitions)
    return frame


def _partition_cells(part: gpd.GeoDataFrame, settings: Demand, cell_size_m: float) -> pd.DataFrame:
    """Estimate one partition's demand and sum it per grid cell (global cell indices)."""
    columns = {"ix": np.int64, "iy": np.int64, "demand_mwh": float, "floor_area_m2": float}
    empty = pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})
    if part.empty:
        return empty
    buildings = estimate_building_demand(part, settings)
    if buildings.empty:
        return empty
    density = heat_density_from_buildings(buildings, cell_size_m=cell_size_m)
    rows, cols = np.nonzero((density.demand_mwh > 0) | (density.floor_area_m2 > 0))
    ix0 = round(density.transform.c / cell_size_m)
    iy_top = round(density.transform.f / cell_size_m) - 1
    return pd.DataFrame(
        {
            "ix": ix0 + cols,
            "iy": iy_top - rows,
            "demand_mwh": density.demand_mwh[rows, cols],
            "floor_area_m2": density.floor_area_m2[rows, cols],
        }
    )


def heat_density_of_region(
    buildings: dask_geopandas.GeoDataFrame | gpd.GeoDataFrame,
    settings: Demand,
    *,
    cell_size_m: float = 100.0,
) -> HeatDensity:
    """Estimate the demand of a region's buildings and sum it on a grid, partition by partition on Dask.

    Call it inside :func:`dask_client` (or with any active ``distributed`` client); without one Dask's
    default scheduler runs the partitions.

    Parameters
    ----------
    buildings
        Building footprints with OSM tags (see :func:`heatmap.demand.estimate_building_demand`), in a metric
        CRS; a GeoDataFrame is split into partitions of :data:`ROWS_PER_PARTITION`.
    settings
        The demand settings.
    cell_size_m
        Cell size of the grid.

    Returns
    -------
    HeatDensity
    """
    if isinstance(buildings, gpd.GeoDataFrame):
        buildings = dask_geopandas.from_geopandas(buildings, chunksize=ROWS_PER_PARTITION)
    crs = buildings.crs
    meta = _partition_cells(buildings._meta, settings, cell_size_m)
    cells = buildings.map_partitions(_partition_cells, settings, cell_size_m, meta=meta).compute()
    totals = cells.groupby(["ix", "iy"], sort=False)[["demand_mwh", "floor_area_m2"]].sum()
    ix = totals.index.get_level_values("ix").to_numpy()
    iy = totals.index.get_level_values("iy").to_numpy()
    ix0, iy1 = int(ix.min()), int(iy.max())
    shape = (iy1 - int(iy.min()) + 1, int(ix.max()) - ix0 + 1)
    demand = np.zeros(shape)
    floor = np.zeros(shape)
    demand[iy1 - iy, ix - ix0] = totals.demand_mwh.to_numpy()
    floor[iy1 - iy, ix - ix0] = totals.floor_area_m2.to_numpy()
    density = HeatDensity(
        demand_mwh=demand,
        floor_area_m2=floor,
        transform=from_origin(ix0 * cell_size_m, (iy1 + 1) * cell_size_m, cell_size_m, cell_size_m),
        crs=crs,
        cell_size_m=float(cell_size_m),
        has_floor_area=True,
    )
    logger.info(
        "Region heat density from %d partitions: %.1f GWh/a on %d × %d cells",
        buildings.npartitions,
        density.total_demand_mwh / 1000,
        *shape,
    )
    return density
