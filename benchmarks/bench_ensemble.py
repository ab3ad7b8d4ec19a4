"""Benchmark: an ensemble of the bundled KIP study on a local Dask cluster, against a single run's work.

Usage: python benchmarks/bench_ensemble.py [--variants 100] [--workers 2] [--vary data/scenarios/kip_vary.yaml]

Two fresh Python processes:

- the single run: import, read the study, then the work one variant does — plan the network and run every
  concept's year on it (what ``heatmap study`` does but the matches) — timed twice: the first run in the process
  (it pays the set-up: the first planning's compilation and caches) and a second, warm one (the same work again),
  its wall time and its processor time (its threads' and child processes' included: a single run spreads its
  work over the cores, the bound beside the plan, where an ensemble's worker has one core to itself);
- the ensemble: the local cluster ``heatmap ensemble`` starts (:func:`heatmap.demand.region.dask_client`) with
  ``--workers`` worker processes (one thread each), the first ``--variants``
  variants of the vary file's Latin hypercube sample run as Dask tasks (:func:`heatmap.ensemble_job.run_ensemble`).

It prints the ensemble's wall time (cluster start apart), the per-variant time — wall time × workers ÷ variants,
the machine time one variant costs — and its ratio to the single run's work, the variants whose network was reused,
the failed ones, the peak memory (maximum resident set size) of the client and of each worker, and the load average
of the machine before and after (the machine may be shared: a load above the number of cores slows every figure).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from bench_plan import run_child

ROOT = Path(__file__).resolve().parent.parent

SINGLE = """
import json, resource, sys, time
t0 = time.perf_counter()
from heatmap.study import read_study
from heatmap.study_job import study_parts
from heatmap.plan import plan_from_scenario
from heatmap.energy.concepts import run_concepts
imports = time.perf_counter() - t0
def cpu_s():  # processor time of this process, its threads and its finished child processes
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
study = read_study(sys.argv[1])
runs, cpu = [], []
for _ in range(2):
    t, c = time.perf_counter(), cpu_s()
    parts = study_parts(study)
    plan = plan_from_scenario(parts.plan)
    run_concepts(parts.concepts, plan=plan)
    runs.append(time.perf_counter() - t)
    cpu.append(cpu_s() - c)
print(json.dumps({"imports_s": imports, "first_s": runs[0], "warm_s": runs[1], "warm_cpu_s": cpu[1],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

ENSEMBLE = """
import json, resource, sys, time
from heatmap.study import read_study
from heatmap.ensemble_job import make_variants, read_vary, run_ensemble
from heatmap.demand.region import dask_client
study = read_study(sys.argv[1])
vary = read_vary(sys.argv[2], study)
variants = make_variants(vary, study)[: int(sys.argv[3])]
t = time.perf_counter()
with dask_client(n_workers=int(sys.argv[4])) as client:  # the local cluster of ``heatmap ensemble``
    start = time.perf_counter() - t
    t = time.perf_counter()
    ens = run_ensemble(study, vary, variants, client=client)
    wall = time.perf_counter() - t
    worker_mb = sorted(client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024).values())
ok = [r for r in ens.results if r.error is None]
print(json.dumps({"cluster_start_s": start, "wall_s_ensemble": wall, "variants": len(variants),
                  "finished": len(ok), "failed": [[r.id, r.error] for r in ens.results if r.error is not None],
                  "reused": sum(r.network_reused for r in ok), "task_s": [r.time_s for r in ens.results],
                  "workers": ens.workers, "worker_peak_rss_mb": worker_mb,
                  "client_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--study", default=str(ROOT / "data" / "scenarios" / "kip.yaml"))
    parser.add_argument("--vary", default=str(ROOT / "data" / "scenarios" / "kip_vary.yaml"))
    args = parser.parse_args()
    load_before = os.getloadavg()
    single = run_child(SINGLE, args.study)
    ens = run_child(ENSEMBLE, args.study, args.vary, str(args.variants), str(args.workers))
    load_after = os.getloadavg()
    n, w = ens["variants"], ens["workers"]
    per_variant = ens["wall_s_ensemble"] * w / n
    tasks = sorted(ens["task_s"])
    print(f"Ensemble of {args.study}: {n} variants of {args.vary} on {w} local workers ({os.cpu_count()} cores)")
    print(f"  load average before {load_before[0]:.1f}, after {load_after[0]:.1f} (1 min)")
    print(f"single run: imports {single['imports_s']:.1f} s, first run {single['first_s']:.1f} s, "
          f"warm run {single['warm_s']:.1f} s ({single['warm_cpu_s']:.1f} s of processor time), "
          f"peak memory {single['peak_rss_mb']:.0f} MB")  # fmt: skip
    print(f"ensemble:   cluster start {ens['cluster_start_s']:.1f} s, wall {ens['wall_s_ensemble']:.1f} s "
          f"({ens['finished']} finished, {len(ens['failed'])} failed, network reused in {ens['reused']})")  # fmt: skip
    print(f"  per variant (wall × workers ÷ variants) {per_variant:.2f} s = {per_variant / single['first_s']:.2f}× "
          f"the first single run, {per_variant / single['warm_s']:.2f}× the warm one, "
          f"{per_variant / single['warm_cpu_s']:.2f}× the warm one's processor time")  # fmt: skip
    median = tasks[len(tasks) // 2]
    print(f"  task time per variant: median {median:.2f} s, min {tasks[0]:.2f} s, max {tasks[-1]:.2f} s")
    print(f"  peak memory: client {ens['client_peak_rss_mb']:.0f} MB, workers "
          f"{', '.join(f'{m:.0f}' for m in ens['worker_peak_rss_mb'])} MB")  # fmt: skip
    for vid, error in ens["failed"][:5]:
        print(f"  variant {vid} failed: {error}")


if __name__ == "__main__":
    main()
