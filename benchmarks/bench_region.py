"""Benchmark: demand + heat-density raster + potential areas for synthetic regions, single process and on Dask.

Usage: python benchmarks/bench_region.py [--sizes 10000 100000 1000000] [--runs 3] [--modes single dask]

The regions (heatmap.io.synthetic.synthetic_region_buildings, seed 0) are written once as GeoParquet. Each run
is a fresh Python process that reads the file, estimates every building's demand, sums it on the 100 m grid
and finds the potential areas; it prints each stage's time. Peak memory: the process's maximum resident set
size, and on Dask also the largest worker's (the workers are separate processes on a local cluster of one
worker per core).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from bench_plan import print_stages, run_child

CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
import geopandas as gpd
from heatmap.demand import density
from heatmap.scenario import scenario_from_dict
times = {"imports": time.perf_counter() - t0}
path, mode = sys.argv[1], sys.argv[2]
scn = scenario_from_dict({}, base_dir=".", for_plan=False)  # the default demand and density settings
t = time.perf_counter()
worker_mb = 0.0
if mode == "single":
    from heatmap.demand.buildings import estimate_building_demand
    buildings = gpd.read_parquet(path)
    times["read"] = time.perf_counter() - t; t = time.perf_counter()
    est = estimate_building_demand(buildings, scn.demand)
    times["demand"] = time.perf_counter() - t; t = time.perf_counter()
    grid = density.heat_density_from_buildings(est, cell_size_m=scn.density.cell_size_m)
    times["raster"] = time.perf_counter() - t; t = time.perf_counter()
else:
    from heatmap.demand import region
    with region.dask_client() as client:
        times["cluster start"] = time.perf_counter() - t; t = time.perf_counter()
        frame = region.read_buildings(path)
        grid = region.heat_density_of_region(frame, scn.demand, cell_size_m=scn.density.cell_size_m)
        times["demand + raster"] = time.perf_counter() - t; t = time.perf_counter()
        worker_mb = max(client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024).values())
d = scn.density
areas = density.potential_areas(grid, min_cell_density_mwh_per_ha=d.min_cell_density_mwh_per_ha,
                                min_area_demand_gwh_per_a=d.min_area_demand_gwh_per_a,
                                cost_c1_eur_per_m=d.cost_c1_eur_per_m, cost_c2_eur_per_m2=d.cost_c2_eur_per_m2)
times["areas"] = time.perf_counter() - t
print(json.dumps({"timings": times, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "worker_peak_rss_mb": worker_mb, "total_gwh": grid.total_demand_mwh / 1000,
                  "areas": len(areas)}))
"""


def report(name: str, runs: list[dict]) -> None:
    r0 = runs[0]
    print(f"\n{name}: {r0['total_gwh']:,.1f} GWh/a, {r0['areas']} potential areas, {len(runs)} runs")
    print_stages(runs)
    line = f"peak memory: {statistics.median(r['peak_rss_mb'] for r in runs):,.0f} MB (median, main process)"
    if r0["worker_peak_rss_mb"]:
        line += f", largest worker {statistics.median(r['worker_peak_rss_mb'] for r in runs):,.0f} MB"
    print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="*", type=int, default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modes", nargs="*", default=["single", "dask"], choices=["single", "dask"])
    args = parser.parse_args()
    from heatmap.io.synthetic import synthetic_region_buildings

    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            path = Path(tmp) / f"region_{n}.parquet"
            synthetic_region_buildings(n, seed=0).to_parquet(path)
            for mode in args.modes:
                runs = [run_child(CHILD, str(path), mode) for _ in range(args.runs)]
                report(f"synthetic region, {n:,} buildings, {mode}", runs)


if __name__ == "__main__":
    main()
