"""Benchmark: a whole study end to end — the KIP park network, its year per concept on it, and the matches.

Usage: python benchmarks/bench_study.py [--runs 3] [--study data/scenarios/kip.yaml]

Each run is a fresh Python process doing what ``heatmap study`` does: import, read the study, plan the network
(pandapipes, its hours of operation), run every concept's 8760-hour dispatch on it (HiGHS), rank and plan the
matches, and write every file (CSV, plots, GeoPackages, maps) atomically. It prints the median, min and max of
each part and of the whole, and the process's peak memory (maximum resident set size).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from bench_plan import print_stages, run_child

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, resource, sys, tempfile, time
from pathlib import Path
t0 = time.perf_counter()
from heatmap.study import read_study
from heatmap.study_job import run_study, study_inputs, study_parts, write_study
import heatmap.plan, heatmap.energy.concepts, heatmap.energy.matches_job
timings = {"imports": time.perf_counter() - t0}
t = time.perf_counter()
study = read_study(sys.argv[1])
parts = study_parts(study)
inputs = study_inputs(study, parts)
timings["read"] = time.perf_counter() - t
run = run_study(study, parts)
timings.update(run.timings_s)
t = time.perf_counter()
with tempfile.TemporaryDirectory() as tmp:
    written = write_study(run, Path(tmp) / "out", inputs=inputs)
timings["outputs"] = time.perf_counter() - t
print(json.dumps({"timings": timings, "files": len(written),
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--study", default=str(ROOT / "data" / "scenarios" / "kip.yaml"))
    args = parser.parse_args()
    runs = [run_child(CHILD, args.study) for _ in range(args.runs)]
    print(f"Study {args.study}: {runs[0]['files']} files, {args.runs} runs")
    print_stages(runs)
    mem = [r["peak_rss_mb"] for r in runs]
    print(f"{'peak memory':<18}{statistics.median(mem):>10.0f} MB")


if __name__ == "__main__":
    main()
