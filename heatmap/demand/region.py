"""Demand and heat density for a whole region, partitioned on Dask.

The region's buildings (hundreds of thousands to millions) are read as partitions of a dask-geopandas
frame, from GeoParquet where possible (columnar: only the columns the demand model needs are read), or from an
OSM PBF (with the land use around each building, as in one process). On each partition, in parallel,
:func:`heatmap.demand.buildings.estimate_demand` estimates every building's demand and
:func:`heatmap.demand.density.building_cells` sums it per grid cell; since the grid is aligned to multiples of the
cell size, each partition's cell sums carry global indices, and the region's raster is built from all of them by
:func:`heatmap.demand.density.heat_density_from_cells`, as the single-process path is. The partitions' demand reports
(buildings left out and why, defaults used, sums per type) add up to the region's. Potential areas are then found
on the whole raster, in one process.

The demand rule works building by building, so the result is the same as the single-process path up to the
order of floating-point additions (tests check equality to 1e-9 relative on a sample and on the bundled OSM file).

The work runs on a ``distributed`` local cluster (one worker process per core) unless the address of a Dask
scheduler is given.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dask_geopandas
import geopandas as gpd
import numpy as np
import pandas as pd

from heatmap._errors import OfflineError
from heatmap._kept import Warned, kept_warnings, log_again
from heatmap.demand.buildings import MAX_EXAMPLES, DemandReport, estimate_demand, footprint_keys
from heatmap.demand.density import HeatDensity, building_cells, heat_density_from_cells
from heatmap.scenario import Demand

logger = logging.getLogger(__name__)

BUILDING_COLUMNS = [
    "id",
    "building",
    "building:levels",
    "height",
    "start_date",
    "amenity",
    "shop",
    "office",
    "name",
    "landuse",
    "inside_building",
]
"""Columns the demand model reads (those present are loaded)."""
ROWS_PER_PARTITION = 100_000
"""Buildings per partition when a GeoDataFrame is partitioned here."""
SCHEDULER_TIMEOUT_S = 5.0
"""Seconds to wait for a named Dask scheduler before giving up."""
KEPT_MALLOC_DEFAULTS = ("MALLOC_TRIM_THRESHOLD_",)
"""Variables Dask would set for a local cluster's worker processes that :func:`dask_client` leaves unset."""


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, *, n_workers: int | None = None) -> Iterator[object]:
    """Connect a ``distributed`` client to the scheduler at ``scheduler``, or to a new local cluster.

    Parameters
    ----------
    scheduler
        Address such as ``tcp://10.0.0.5:8786``; ``None`` starts a local cluster of one worker process per
        core (one thread each: the work holds the GIL in places).
    n_workers
        Worker processes of the local cluster (default one per core); not for a named scheduler.

    Notes
    -----
    The local cluster's workers keep the C library's own rule for returning freed memory to the system: Dask
    sets a fixed trim threshold of 64 KiB (``MALLOC_TRIM_THRESHOLD_``, :data:`KEPT_MALLOC_DEFAULTS`), with which
    every freed array above it goes back to the system and the next one is faulted in anew; a variant of the KIP
    ensemble took 22 % longer with it (median of 11, ``benchmarks/bench_ensemble.py``). Its one-thread settings
    for numerical libraries are kept (one worker per core).
    """
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=f"{SCHEDULER_TIMEOUT_S:g}s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise OfflineError(
                f"cannot reach the Dask scheduler at {scheduler} within {SCHEDULER_TIMEOUT_S:g} s "
                f"({type(exc).__name__}); check the address (e.g. tcp://host:8786) and that the scheduler runs, "
                f"or leave out --scheduler to run on a local cluster"
            ) from exc
        with client:
            yield client
        return
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
    for name in KEPT_MALLOC_DEFAULTS:
        environ.pop(name, None)
    with (
        dask.config.set({"distributed.nanny.pre-spawn-environ": environ}),
        LocalCluster(processes=True, threads_per_worker=1, n_workers=n_workers, dashboard_address=None) as cluster,
    ):
        with Client(cluster) as client:
            logger.info("Dask local cluster with %d workers", len(cluster.workers))
            yield client


def read_buildings(
    path: str | Path, *, extra_columns: tuple[str, ...] = (), layer: str | None = None
) -> dask_geopandas.GeoDataFrame:
    """Read a region's buildings as partitions: GeoParquet column by column, other formats through pyogrio.

    Parameters
    ----------
    path
        GeoParquet (``.parquet``), an OSM PBF (``.pbf``, read by :func:`heatmap.io.streets.buildings_from_pbf`), or
        any file :func:`geopandas.read_file` reads.
    extra_columns
        Columns read besides :data:`BUILDING_COLUMNS` where present (e.g. ``demand.metered_column``).
    layer
        The layer to read from a file of several (other formats).

    Returns
    -------
    dask_geopandas.GeoDataFrame
    """
    path = Path(path)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        present = set(pq.read_schema(path).names)
        columns = [c for c in dict.fromkeys([*BUILDING_COLUMNS, *extra_columns]) if c in present] + ["geometry"]
        frame = dask_geopandas.read_parquet(path, columns=columns)
    elif path.name.endswith(".pbf"):
        from heatmap.io.streets import buildings_from_pbf

        gdf = buildings_from_pbf(path)
        frame = dask_geopandas.from_geopandas(
            gdf[[c for c in BUILDING_COLUMNS if c in gdf] + ["geometry"]],
            chunksize=ROWS_PER_PARTITION,  # OSM: no meters
        )
    else:
        gdf = gpd.read_file(path, layer=layer, engine="pyogrio")
        frame = dask_geopandas.from_geopandas(gdf, chunksize=ROWS_PER_PARTITION)
    logger.info("Buildings %s in %d partitions", path, frame.npartitions)
    return frame


@dataclass(frozen=True)
class _Partition:
    """What one partition gives (:func:`_partition_result`)."""

    cells: pd.DataFrame
    """Its sums per grid cell (global cell indices)."""
    report: DemandReport
    keys: np.ndarray
    """Each row's footprint key (:func:`heatmap.demand.buildings.footprint_keys`, 0 without a footprint): the
    region finds the footprints given twice across partitions."""
    warned: Warned
    """What its estimate warned of (:func:`heatmap._kept.kept_warnings`), to be shown where the results gather."""


def _partition_result(part: gpd.GeoDataFrame, settings: Demand, cell_size_m: float) -> _Partition:
    """Estimate one partition's demand and sum it on the grid."""
    if part.empty:
        return _Partition(_EMPTY_CELLS, DemandReport(), np.zeros(0, dtype=np.uint64), Warned())
    present = part.geometry.notna().to_numpy() & ~part.geometry.is_empty.to_numpy()
    keys = np.where(present, footprint_keys(part.geometry), np.uint64(0))
    with kept_warnings() as warned:
        est = estimate_demand(part, settings)
    if est.buildings.empty:
        return _Partition(_EMPTY_CELLS, est.report, keys, warned)
    cells = building_cells(est.buildings, cell_size_m=cell_size_m).groupby(["ix", "iy"], as_index=False).sum()
    return _Partition(cells, est.report, keys, warned)


def _warn_of_footprints_across(keys: list[np.ndarray]) -> None:
    """Log the rows whose footprint another partition holds too (each partition warns of its own duplicates)."""
    part = np.repeat(np.arange(len(keys)), [len(k) for k in keys])
    table = pd.DataFrame({"key": np.concatenate(keys) if keys else np.zeros(0, np.uint64), "part": part})
    table = table[table.key != 0]
    first_part = table.groupby("key").part.transform("min")
    across = table.index[(table.part > first_part).to_numpy()].to_numpy()
    if len(across):
        rows = ", ".join(str(i + 1) for i in across[:MAX_EXAMPLES])
        more = f" and {len(across) - MAX_EXAMPLES} more" if len(across) > MAX_EXAMPLES else ""
        logger.warning(
            "%d buildings have the footprint of a building earlier in the layer, so their demand counts twice (a "
            "layer merged from two sources?): rows %s%s",
            len(across), rows, more,
        )  # fmt: skip


_EMPTY_CELLS = pd.DataFrame(
    {
        "ix": pd.Series(dtype=np.int64),
        "iy": pd.Series(dtype=np.int64),
        "annual_demand_mwh": pd.Series(dtype=float),
        "floor_area_m2": pd.Series(dtype=float),
    }
)


def demand_of_region(
    buildings: dask_geopandas.GeoDataFrame | gpd.GeoDataFrame,
    settings: Demand,
    *,
    cell_size_m: float = 100.0,
) -> tuple[HeatDensity, DemandReport]:
    """Estimate the demand of a region's buildings and sum it on a grid, partition by partition on Dask.

    Call it inside :func:`dask_client` (or with any active ``distributed`` client); without one Dask's
    default scheduler runs the partitions.

    Parameters
    ----------
    buildings
        Building footprints with OSM tags (see :func:`heatmap.demand.buildings.estimate_demand`), in a metric CRS; a
        GeoDataFrame is split into partitions of :data:`ROWS_PER_PARTITION`.
    settings
        The demand settings.
    cell_size_m
        Cell size of the grid.

    Returns
    -------
    HeatDensity
        The region's raster.
    DemandReport
        The partitions' reports added up.
    """
    import dask

    if isinstance(buildings, gpd.GeoDataFrame):
        buildings = dask_geopandas.from_geopandas(buildings, chunksize=ROWS_PER_PARTITION)
    tasks = [dask.delayed(_partition_result)(part, settings, cell_size_m) for part in buildings.to_delayed()]
    results: tuple[_Partition, ...] = dask.compute(*tasks)
    for r in results:
        log_again(logger, r.warned)
    cells = pd.concat([r.cells for r in results], ignore_index=True) if results else _EMPTY_CELLS
    report = DemandReport.merge([r.report for r in results])
    _warn_of_footprints_across([r.keys for r in results])
    density = heat_density_from_cells(cells, crs=buildings.crs, cell_size_m=cell_size_m, where="region buildings")
    logger.info(
        "Region heat density from %d partitions: %.1f GWh/a on %d × %d cells (%d buildings, %d heated)",
        buildings.npartitions,
        density.total_demand_mwh / 1000,
        *density.shape,
        report.buildings_read,
        report.heated,
    )
    return density, report


def heat_density_of_region(
    buildings: dask_geopandas.GeoDataFrame | gpd.GeoDataFrame,
    settings: Demand,
    *,
    cell_size_m: float = 100.0,
) -> HeatDensity:
    """Estimate the demand of a region's buildings and sum it on a grid (:func:`demand_of_region`'s raster).

    Parameters
    ----------
    buildings, settings, cell_size_m
        As for :func:`demand_of_region`.

    Returns
    -------
    HeatDensity
    """
    return demand_of_region(buildings, settings, cell_size_m=cell_size_m)[0]
