"""Benchmark: the 8760-hour least-cost dispatch with 10 units, and the KIP concepts end to end.

Usage: python benchmarks/bench_dispatch.py [--runs 3] [--solvers simplex ipm] [--no-kip]

Dispatch case: the bundled KIP year (synthetic Kokkola temperature and electricity price, 360 GWh/a demand by
degree-hours, network losses from UA = 55 kW/K) served by 10 units: 4 excess-heat sources (two of them through
heat pumps), 3 fuel boilers, 1 electric boiler and 2 storages — 8760 × (6 + 3·2 + 1) ≈ 114,000 variables. Each
run is a fresh Python process; it prints the LP's build and solve times and the process's peak memory (maximum
resident set size). The KIP case runs ``heatmap concepts data/scenarios/kip.yaml`` (5 LPs, CSVs, 10 plots).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_plan import run_child

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
import numpy as np
from heatmap import settings
from heatmap.demand.climate import network_losses_kw, supply_temperature_c
from heatmap.energy.dispatch import Producer, Storage, solve_dispatch, dispatch_figures
from heatmap.demand.climate import year_index
from heatmap.energy.excess_heat import source_producer
from heatmap.demand.profiles import read_hourly
from heatmap.demand.profiles import hourly_load_kw
imports = time.perf_counter() - t0
solver = sys.argv[1]
kip = settings.data_dir / "kip"
T = 8760
hours = year_index(2023)
t_out = read_hourly(kip / "kokkola_temperature_synthetic.csv", "t_out_c", hours, lower=-70, upper=50).to_numpy()
price_csv = kip / "electricity_price_synthetic.csv"
price = read_hourly(price_csv, "price_eur_per_mwh", hours, lower=-500, upper=5000).to_numpy()
supply = supply_temperature_c(t_out, max_c=115, min_c=75, outdoor_at_max_c=-29, outdoor_at_min_c=10)
demand = hourly_load_kw(288_000, 72_000, t_out, base_temperature_c=17)
losses = network_losses_kw(supply, return_c=45, ground_c=5, heat_loss_coefficient_w_per_k=55_000)
common = dict(supply_c=supply, return_c=45, need_kw=demand + losses, approach_k=5, electricity_price_eur_per_mwh=price)
src = [
    source_producer("acid", capacity_kw=15_020, temperature_c=105, availability=np.full(T, 0.95),
                    heat_price_eur_per_mwh=10, **common)[0],
    source_producer("steam", capacity_kw=38_450, temperature_c=180, availability=np.full(T, 0.95),
                    heat_price_eur_per_mwh=35, **common)[0],
    source_producer("electrolyser", capacity_kw=5_000, temperature_c=60, availability=np.full(T, 0.9),
                    heat_price_eur_per_mwh=0, heat_pump={"capacity_kw": 7_000, "eta": 0.5}, **common)[0],
    source_producer("cooling", capacity_kw=8_000, temperature_c=30, availability=np.full(T, 0.9),
                    heat_price_eur_per_mwh=5, heat_pump={"capacity_kw": 10_000, "eta": 0.5}, **common)[0],
]
def boiler(name, cap, cost):
    return Producer(name, "boiler", cap, np.full(T, cap), np.full(T, cost), fuel_mwh_per_mwh=1.1, fuel=name)
units = src + [boiler("peat", 70_000, 66.0), boiler("wood", 40_000, 33.7), boiler("oil", 60_000, 110.0),
               Producer("eboiler", "electric_boiler", 30_000, np.full(T, 30_000.0), price / 0.99, 1 / 0.99)]
storages = [Storage("tank", 1_500_000, 50_000, 50_000, standing_loss_per_h=0.0005, wear_eur_per_mwh=0.1),
            Storage("buffer", 200_000, 20_000, 20_000, standing_loss_per_h=0.001, wear_eur_per_mwh=0.1)]
r = solve_dispatch(demand, losses, units, storages, solver=solver)
f = dispatch_figures(r)
print(json.dumps({"imports_s": imports, "build_s": r.build_s, "solve_s": r.solve_s,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "units": len(units) + len(storages), "objective_eur": r.objective_eur,
                  "max_residual_kw": f["max_balance_residual_kw"], "status": r.status}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--solvers", nargs="+", default=["simplex", "ipm"])
    parser.add_argument("--no-kip", action="store_true", help="skip the KIP end-to-end runs")
    args = parser.parse_args()
    for solver in args.solvers:
        runs = [run_child(CHILD, solver) for _ in range(args.runs)]
        r0 = runs[0]
        print(f"\n8760-h dispatch, {r0['units']} units, HiGHS {solver}, {args.runs} runs (median / min / max):")
        for key in ("build_s", "solve_s", "wall_s", "peak_rss_mb"):
            v = [r[key] for r in runs]
            print(f"  {key:<12}{statistics.median(v):>10.3f}{min(v):>10.3f}{max(v):>10.3f}")
        print(
            f"  status {r0['status']}, cost {r0['objective_eur'] / 1e6:.3f} M€, "
            f"balance residual {r0['max_residual_kw']:.2e} kW"
        )
    if args.no_kip:
        return
    walls = []
    exe = Path(sys.executable).with_name("heatmap")
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            subprocess.run(
                [str(exe), "concepts", str(ROOT / "data/scenarios/kip.yaml"), "--out", out, "-q"],
                check=True,
                capture_output=True,
            )
            walls.append(time.perf_counter() - t0)
    print(
        f"\nKIP concepts end to end (heatmap concepts, fresh process), {args.runs} runs: "
        f"median {statistics.median(walls):.2f} s,"
        f" min {min(walls):.2f} s, max {max(walls):.2f} s"
    )


if __name__ == "__main__":
    main()
