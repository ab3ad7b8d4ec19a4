"""Benchmark: plan scenarios end to end in fresh processes; print each stage's median time and peak memory.

Usage: python benchmarks/bench_plan.py [SCENARIO ...] [--synthetic N ...] [--operation] [--runs N]

With no argument it plans the bundled scenario. ``--synthetic 1000 10000 50000`` also plans synthetic towns of
that many consumers (heatmap.io.synthetic, seed 0), generated once into a temporary folder; ``--operation`` gives
them a year of operation (the KIP synthetic temperature year, every building by degree-hours: the hours that
matter simulated and the heat trade priced).

Each run is a new Python process (imports included), timed from process start to outputs written, as a
user running ``heatmap plan`` sees it. Peak memory is the process's maximum resident set size. The
"hydraulics total" row is pandapipes build and solve + checks over all simulation rounds, plus the resizing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "data" / "scenarios" / "helsinki_centre.yaml"

CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
from heatmap.cli import long_lived_imports  # as `heatmap plan` imports
with long_lived_imports():
    from heatmap.io.outputs import write_plan
    from heatmap.plan import plan_from_scenario
    from heatmap.scenario import scenario_from_file
t_import = time.perf_counter() - t0
plan = plan_from_scenario(scenario_from_file(sys.argv[1]))
t1 = time.perf_counter()
write_plan(plan, sys.argv[2])
timings = {"imports": t_import, **plan.timings_s, "outputs": time.perf_counter() - t1}
print(json.dumps({"timings": timings, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "consumers": int(plan.consumers.connected.sum()), "pipes": len(plan.pipes),
                  "rounds": len(plan.rounds), "violations": len(plan.violations)}))
"""


OPERATION = """
operation:
  year: 2023
  outdoor_temperature: {{csv: {csv}, column: t_out_c}}
  heat_price_eur_per_mwh: 50
  feed_in_price_eur_per_mwh: 20
"""


def run_child(code: str, *args: str) -> dict:
    """Run ``code`` in a fresh Python process; return the JSON it prints last, with ``wall_s`` added."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"benchmark run failed:\n{proc.stderr}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_s"] = wall
    return result


def print_stages(runs: list[dict], labels: dict[str, str] | None = None) -> None:
    """Print each stage's median, min and max over the runs, then the end-to-end time."""
    print(f"{'stage':<18}{'median s':>10}{'min s':>10}{'max s':>10}")
    for stage in runs[0]["timings"]:
        values = [r["timings"][stage] for r in runs]
        label = (labels or {}).get(stage, stage)
        print(f"{label:<18}{statistics.median(values):>10.3f}{min(values):>10.3f}{max(values):>10.3f}")
    walls = [r["wall_s"] for r in runs]
    print(
        f"{'end to end':<18}{statistics.median(walls):>10.3f}{min(walls):>10.3f}{max(walls):>10.3f}"
        "   (process start to outputs written)"
    )


def run_once(scenario: Path) -> dict:
    with tempfile.TemporaryDirectory() as out:
        return run_child(CHILD, str(scenario), out)


def report(name: str, runs: list[dict]) -> None:
    print(f"\n{name}: consumers connected {runs[0]['consumers']:,}, pipes {runs[0]['pipes']:,}, {len(runs)} runs")
    # "hydraulics" is build and solve + checks over all simulation rounds, plus the resizing.
    print_stages(runs, {"hydraulics": "hydraulics total"})
    print(f"peak memory: {statistics.median(r['peak_rss_mb'] for r in runs):,.0f} MB (median)")
    print(f"simulation rounds: {runs[0]['rounds']}, checks failed: {runs[0]['violations']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", type=Path)
    parser.add_argument("--synthetic", nargs="*", type=int, default=[], metavar="N")
    parser.add_argument("--operation", action="store_true", help="add a year of operation to the synthetic towns")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    scenarios = [(p.name, p) for p in args.scenarios] or ([] if args.synthetic else [(DEFAULT.name, DEFAULT)])
    with tempfile.TemporaryDirectory() as tmp:
        if args.synthetic:
            from heatmap.io.synthetic import synthetic_town, write_synthetic_scenario

            for n in args.synthetic:
                path = write_synthetic_scenario(synthetic_town(n, seed=0), Path(tmp) / f"town_{n}")
                if args.operation:
                    with path.open("a", encoding="utf-8") as f:
                        f.write(OPERATION.format(csv=ROOT / "data" / "kip" / "kokkola_temperature_synthetic.csv"))
                scenarios.append((f"synthetic town, {n:,} consumers" + (", operation" if args.operation else ""), path))
        for name, path in scenarios:
            report(name, [run_once(path) for _ in range(args.runs)])


if __name__ == "__main__":
    main()
