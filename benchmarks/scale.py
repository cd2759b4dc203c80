"""Scale-out engines: a 200-run simulation sweep on the local process pool and on Ray.

Prints, measured side by side in one run (medians of ``--repeats`` interleaved repeats):

* local engine, 2 workers vs 1 worker on the same 200-run sweep (target >= 1.7x);
* Ray engine (a local instance with 2 CPUs) vs the local engine with 2 workers (target:
  Ray within 1.3x, i.e. ray_time / local_time <= 1.3); Ray's start-up is timed separately
  and not included;
* per-task overhead: trivial tasks (``abs``) per second on each engine (Ray: one Ray task
  per task, and the default chunking);
* whether every engine produced exactly the same rows (they must);
* exploration of the 3-replica majority register (``register``/``majority``, default
  parameters) split over the local engine with 2 workers vs 1 worker (target >= 1.5x), for
  ``dfs``, ``dpor`` and ``random`` (``--walks`` schedules), beside the plain single-process
  ``explore`` (the split's own overhead: frontier, duplicated subtrees, process hops).

Each sweep runs into a fresh temporary directory (so nothing is skipped) with engines
whose workers are already started (pool / instance start-up is reported on its own line).
The grid: builtin cnn-16 on 16 cores, Poisson load 40..800 req/s in steps of 40 (20
loads), policies packrat and fat, seeds 0..4: 200 runs of ``--duration`` seconds each.

    .venv/bin/python benchmarks/scale.py [--repeats 3] [--duration 2] [--no-ray] [--no-sweep] [--no-explore]

The machine's load average is printed: on a shared machine the ratios are noisy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

from packrat_sim import sweep as sw
from packrat_sim.engines import LocalEngine

TARGET_LOCAL = 1.7
TARGET_RAY = 1.3


def grid(duration_s: float) -> sw.Grid:
    return sw.load_grid(None, [
        "profile=builtin:cnn-16", "cores=16", f"workload=poisson:rate=40..800/40,duration={duration_s:g}s,max_batch=32",
        "policy=packrat,fat", "seed=0..4",
    ])


def timed_sweep(g: sw.Grid, engine) -> tuple[float, tuple]:
    with tempfile.TemporaryDirectory(prefix="packrat-scale-") as out:
        t0 = time.perf_counter()
        result = sw.run_sweep(g, out, engine)
        return time.perf_counter() - t0, result.rows


def tasks_per_s(engine, n: int) -> float:
    t0 = time.perf_counter()
    count = sum(1 for o in engine.map(abs, list(range(n))) if o.ok)
    return count / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--duration", type=float, default=2.0, help="simulated seconds per run")
    parser.add_argument("--trivial", type=int, default=2000, help="trivial tasks for the overhead figure")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray engine")
    parser.add_argument("--no-sweep", action="store_true", help="skip the sweep figures")
    parser.add_argument("--no-explore", action="store_true", help="skip the exploration figures")
    parser.add_argument("--walks", type=int, default=4000, help="schedules of the random-walk split")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.duration <= 0:
        parser.error("--repeats and --duration must be positive")
    status = 0
    if not args.no_sweep:
        status = sweep_figures(args)
    if not args.no_explore:
        explore_figures(args)
    return status


def explore_figures(args) -> None:
    """Exploration split: single-process explore vs the split on 1 and on 2 local workers."""
    from checker.explore import explore
    from checker.explore.split import explore_split

    params = {"replicas": 3}
    print(f"exploration: register/majority {params}, load average {os.getloadavg()[0]:.2f}")
    with LocalEngine(1) as one, LocalEngine(2) as two:
        list(one.map(abs, [0]))
        list(two.map(abs, [0, 1]))
        for strategy, kw in (("dfs", {}), ("dpor", {}), ("random", {"max_schedules": args.walks})):
            times: dict[str, list[float]] = {"single": [], "split-1": [], "split-2": []}
            verdicts, histories = set(), set()
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                r = explore("register", strategy, variant="majority", params=params, **kw)
                times["single"].append(time.perf_counter() - t0)
                verdicts.add(("single", r.verdict_word))
                for name, engine in (("split-1", one), ("split-2", two)):
                    t0 = time.perf_counter()
                    sp = explore_split("register", strategy, engine, variant="majority", params=params, workers=2, **kw)
                    times[name].append(time.perf_counter() - t0)
                    verdicts.add((name, sp.result.verdict_word))
                    histories.add(sp.result.distinct_histories)
            med = {k: statistics.median(v) for k, v in times.items()}
            print(f"  {strategy:6s} ({sp.jobs} jobs" + (f", frontier depth {sp.frontier_depth}" if sp.frontier_depth else "")
                  + f"): single {med['single']:.2f} s, split on 1 worker {med['split-1']:.2f} s, on 2 workers "
                  f"{med['split-2']:.2f} s; 2 vs 1 worker {med['split-1'] / med['split-2']:.2f}x (target >= 1.5x), "
                  f"2 workers vs single process {med['single'] / med['split-2']:.2f}x; verdicts {sorted(verdicts)}; "
                  f"distinct histories {sorted(histories)}")


def sweep_figures(args) -> int:
    """The sweep figures (see the module docstring); 1 if the engines' rows differ."""
    g = grid(args.duration)
    print(f"grid: {g.size()} runs ({g.workloads[0]}, policies {','.join(g.policies)}, seeds 0..4); "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")

    t0 = time.perf_counter()
    one = LocalEngine(1)
    two = LocalEngine(2)
    list(one.map(abs, [0]))
    list(two.map(abs, [0, 1]))
    print(f"local pool start-up (1 + 2 workers): {time.perf_counter() - t0:.2f} s")
    ray_engine = None
    if not args.no_ray:
        try:
            from packrat_sim.engines.ray import RayEngine, RayEngineError

            ray_engine = RayEngine(num_cpus=2)
            list(ray_engine.map(abs, [0, 1]))  # workers up
            print(f"ray start-up (local instance, 2 CPUs): {ray_engine.startup_s:.2f} s (not counted below)")
        except (ImportError, RayEngineError) as exc:
            print(f"ray: skipped ({exc})")
            ray_engine = None

    times: dict[str, list[float]] = {"local-1": [], "local-2": [], "ray": []}
    rows: dict[str, tuple] = {}
    try:
        for k in range(args.repeats):
            for name, engine in (("local-1", one), ("local-2", two), ("ray", ray_engine)):
                if engine is None:
                    continue
                dt, r = timed_sweep(g, engine)
                times[name].append(dt)
                rows.setdefault(name, r)
                print(f"  repeat {k + 1}: {name:8s} {dt:6.2f} s", flush=True)
        med = {k: statistics.median(v) for k, v in times.items() if v}
        print(f"sweep of {g.size()} runs, median wall time: " + ", ".join(f"{k} {v:.2f} s" for k, v in med.items()))
        speedup = med["local-1"] / med["local-2"]
        print(f"local engine, 2 workers vs 1: {speedup:.2f}x faster (target >= {TARGET_LOCAL}x: "
              f"{'met' if speedup >= TARGET_LOCAL else 'NOT met'})")
        if "ray" in med:
            ratio = med["ray"] / med["local-2"]
            print(f"ray engine vs local engine (2 workers each): ray takes {ratio:.2f}x the local time "
                  f"(target <= {TARGET_RAY}x: {'met' if ratio <= TARGET_RAY else 'NOT met'})")
        line = f"trivial tasks per second: local-2 {tasks_per_s(two, args.trivial):,.0f}/s"
        if ray_engine is not None:
            chunked = tasks_per_s(ray_engine, args.trivial)
            ray_engine.chunk_size = 1
            single = tasks_per_s(ray_engine, min(args.trivial, 1000))
            ray_engine.chunk_size = None
            line += (f", ray one Ray task per task {single:,.0f}/s ({1000.0 / single:.2f} ms each), "
                     f"ray chunked (default) {chunked:,.0f}/s")
        print(line)
        same = all(r == rows["local-1"] for r in rows.values())
        print(f"rows identical across engines ({', '.join(rows)}): {'yes' if same else 'NO'}")
        return 0 if same else 1
    finally:
        one.close()
        two.close()
        if ray_engine is not None:
            ray_engine.close()


if __name__ == "__main__":
    sys.exit(main())
