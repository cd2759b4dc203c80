"""Adaptive packrat vs fat vs thin vs the best static plan in hindsight (issue 15's matrix).

Simulated, 16 cores, builtin transformer-16 and cnn-16, 5 seeds (common random numbers:
every policy of a seed sees the same arrivals). Workloads: the demo's steps, steps with
20 s phases, Poisson 50 / 200 / 800 req/s for 30 s, diurnal (base 20/s, peak 500/s,
period 30 s, 60 s). The static candidates are the optimizer's plans for every batch size
1..max_batch plus fat and thin; "best static" is the candidate with the lowest p99 (mean
over the seeds), chosen in hindsight per cell. Every figure is a mean over the seeds of
request-latency percentiles (ms); ratios are adaptive / best static.

Targets (issue 15): adaptive p99 <= 1.10x best static and below fat and thin; adaptive
p50 <= 1.05x best static. Cells that miss are marked, not hidden.

Usage::

    .venv/bin/python benchmarks/adaptive.py [--quick] [--seeds N] [--json]
    .venv/bin/python benchmarks/adaptive.py --measure-reconfig [--repeats 5]   (real, tiny-cnn)
    .venv/bin/python benchmarks/adaptive.py --real [LOAD] [--repeats 3]       (real, tiny-cnn)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PROFILES = ("transformer-16", "cnn-16")
WORKLOADS = (
    ("demo steps", "steps:60@4s,400@4s,60@4s,max_batch=64,max_delay=10ms"),
    ("steps 20s", "steps:60@20s,400@20s,60@20s,max_batch=64,max_delay=10ms"),
    ("poisson 50", "poisson:rate=50/s,duration=30s"),
    ("poisson 200", "poisson:rate=200/s,duration=30s"),
    ("poisson 800", "poisson:rate=800/s,duration=30s"),
    ("diurnal", "diurnal:base=20/s,peak=500/s,period=30s,duration=60s"),
)
CORES = 16


def _pcts(result) -> tuple[float, float, float]:
    lat = result.stats.request_latency
    return lat.p50_ms, lat.p90_ms, lat.p99_ms


def run_cell(profile_name: str, spec: str, seeds: list[int], quick: bool, config=None) -> dict:
    """One cell of the matrix: mean percentiles per policy and the best static plan."""
    import numpy as np

    from packrat_sim import plan as plans
    from packrat_sim.policy import PlanCatalog
    from packrat_sim.profile import builtin_profile
    from packrat_sim.simulator import compare_plans
    from packrat_sim.workload import load_workload

    profile = builtin_profile(profile_name)
    wl = load_workload(spec)
    B = wl.max_batch
    catalog = PlanCatalog(profile, CORES, B)
    statics = {p.describe(): p for p in catalog.plans}
    statics.setdefault(plans.fat(B, CORES).describe(), plans.fat(B, CORES))
    statics.setdefault(plans.thin(B, CORES).describe(), plans.thin(B, CORES))
    if quick:  # every other candidate, plus fat and thin
        keep = list(statics)[::2] + [plans.fat(B, CORES).describe(), plans.thin(B, CORES).describe()]
        statics = {k: statics[k] for k in dict.fromkeys(keep)}
    acc: dict[str, list] = {}
    reconfigs = []
    names = ["packrat", "fat", "thin"] + ["static:" + label for label in statics]
    for seed in seeds:  # one comparison per seed: every policy sees the same arrivals
        # (the config's policy options only matter to "packrat"; static runs ignore them)
        cmp = compare_plans(profile, CORES, wl, seed=seed, config=config,
                            policies=("packrat", "fat", "thin", *statics.values()))
        for name, r in zip(names, cmp.results):
            acc.setdefault(name, []).append(_pcts(r))
        reconfigs.append(len(cmp.results[0].reconfigurations))
    mean = {k: tuple(float(x) for x in np.mean(np.asarray(v), axis=0)) for k, v in acc.items()}
    best = min((k for k in mean if k.startswith("static:")), key=lambda k: mean[k][2])
    return {"profile": profile_name, "workload": spec, "seeds": seeds, "candidates": len(statics),
            "adaptive": mean["packrat"], "fat": mean["fat"], "thin": mean["thin"],
            "best_static": mean[best], "best_static_plan": best[len("static:"):],
            "reconfigurations": float(np.mean(reconfigs))}


def verdict(cell: dict) -> list[str]:
    """The targets this cell misses (empty: all met)."""
    a, f, t, b = cell["adaptive"], cell["fat"], cell["thin"], cell["best_static"]
    miss = []
    if a[2] > 1.10 * b[2]:
        miss.append("p99>1.10x best")
    if a[2] >= f[2]:
        miss.append("p99>=fat")
    if a[2] >= t[2]:
        miss.append("p99>=thin")
    if a[0] > 1.05 * b[0]:
        miss.append("p50>1.05x best")
    return miss


def format_table(cells: list[dict]) -> str:
    head = (f"{'profile':<15} {'workload':<12} {'adaptive p50/p99':>17} {'fat p50/p99':>13} {'thin p50/p99':>13} "
            f"{'best static p50/p99':>20} {'p50 x':>6} {'p99 x':>6} {'reconf':>6}  best static plan / misses")
    lines = [head, "-" * len(head)]
    for c in cells:
        a, f, t, b = c["adaptive"], c["fat"], c["thin"], c["best_static"]
        miss = verdict(c)
        lines.append(
            f"{c['profile']:<15} {c['name']:<12} {a[0]:7.1f}/{a[2]:7.1f}  {f[0]:6.1f}/{f[2]:6.1f} {t[0]:6.1f}/{t[2]:6.1f} "
            f"{b[0]:11.1f}/{b[2]:7.1f} {a[0] / b[0]:6.2f} {a[2] / b[2]:6.2f} {c['reconfigurations']:6.1f}  "
            f"{c['best_static_plan']}" + (f"  MISS: {', '.join(miss)}" if miss else "  ok")
        )
    met = sum(1 for c in cells if not verdict(c))
    lines.append(f"targets met in {met} of {len(cells)} cells")
    return "\n".join(lines)


def measure_reconfig(repeats: int) -> None:
    """Real: what a reconfiguration costs the serving instances (tiny-cnn, this machine)."""
    import os

    from packrat_sim.plan import fat, thin
    from real_runner.serving import measure_reconfiguration_cost

    cores = len(os.sched_getaffinity(0))
    for old, new in ((thin(8, cores), fat(8, cores)), (fat(8, cores), thin(8, cores))):
        r = measure_reconfiguration_cost("tiny-cnn", old, new, repeats=repeats, warmup=10,
                                         on_progress=lambda m: print("  " + m, file=sys.stderr, flush=True))
        med, slow = r["old_batch_median_ms"], r["slowdown"]
        print(f"{r['old_plan']} serving while {r['new_plan']} starts ({cores} cores, {repeats} repeats, medians):")
        for ph in ("before", "startup", "warmup", "after"):
            print(f"  {ph:<8} old batch {med[ph]:7.2f} ms  x{slow[ph]:.2f}  ({r['old_batches'][ph]} batches)")
        print(f"  start-up {r['startup_ms']:.0f} ms, warm-up {r['warmup_ms']:.0f} ms "
              f"({r['warmup_iterations']} iterations of {r['new_batch_ms']:.1f} ms alone)")


REAL_LOAD = "steps:30/s@5s,150/s@5s,30/s@5s,max_batch=16,max_delay=5ms"


def real_run(load_spec: str, repeats: int) -> None:
    """Real, on this machine: tiny-cnn serving ``load_spec`` with adaptive packrat and with
    every static candidate (the catalog's plans for this machine's quick profile, plus fat
    and thin), interleaved over ``repeats`` rounds (order reversed every other round);
    prints request-latency medians of the per-run p50/p99 and the ratio adaptive / best static."""
    import os
    import statistics

    from packrat_sim import plan as plans
    from packrat_sim.policy import PlanCatalog
    from real_runner.profiling import quick_profile
    from real_runner.serving import parse_load, serve_load

    cores = len(os.sched_getaffinity(0))
    load = parse_load(load_spec)
    B = load.max_batch
    profile = quick_profile("tiny-cnn", B, cores)
    catalog = PlanCatalog(profile, cores, B, execution="chunks")
    statics = {p.describe(): p for p in catalog.plans}
    statics.setdefault(plans.fat(B, cores).describe(), plans.fat(B, cores))
    statics.setdefault(plans.thin(B, cores).describe(), plans.thin(B, cores))
    names = ["adaptive"] + list(statics)
    got: dict[str, list] = {n: [] for n in names}
    reconfs = []
    for r in range(repeats):
        order = names if r % 2 == 0 else names[::-1]
        for n in order:
            if n == "adaptive":
                rep = serve_load("tiny-cnn", load, lambda b: None, catalog=catalog)
                reconfs.append(len(rep["reconfigurations"]))
                print(f"  round {r + 1}: adaptive starts with {rep['initial_plan']}; decisions: "
                      + ("; ".join(f"{d['t_ms'] / 1000:.1f}s -> {d['plan_describe']} ({d['reason']})"
                                   for d in rep["decisions"]) or "none"), file=sys.stderr, flush=True)
            else:
                rep = serve_load("tiny-cnn", load, lambda b: None, static=statics[n])
            lat = rep["request_latency_ms"]
            got[n].append((lat["median_ms"], lat["p99_ms"]))
            print(f"  round {r + 1}: {n}: p50 {lat['median_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms",
                  file=sys.stderr, flush=True)
    med = {n: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v)) for n, v in got.items()}
    best = min(statics, key=lambda n: med[n][1])
    print(f"real: tiny-cnn on {cores} cores, load {load_spec}, {repeats} interleaved rounds (medians over rounds)")
    for n in names:
        print(f"  {n:<40} p50 {med[n][0]:7.1f} ms  p99 {med[n][1]:7.1f} ms")
    a = med["adaptive"]
    print(f"  adaptive / best static ({best}): p50 {a[0] / med[best][0]:.2f}x, p99 {a[1] / med[best][1]:.2f}x; "
          f"reconfigurations per adaptive run: {reconfs}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 seeds and half of the static candidates")
    ap.add_argument("--seeds", type=int, default=None, help="number of seeds (default 5, --quick 2)")
    ap.add_argument("--json", action="store_true", help="print the cells as JSON")
    ap.add_argument("--policy", default="packrat", help="packrat[:KEY=VALUE,...]: policy options to evaluate")
    ap.add_argument("--measure-reconfig", action="store_true", help="measure a real reconfiguration's cost instead")
    ap.add_argument("--repeats", type=int, default=5, help="with --measure-reconfig / --real: repeats")
    ap.add_argument("--real", nargs="?", const=REAL_LOAD, default=None, metavar="LOAD",
                    help=f"real run on this machine (tiny-cnn): adaptive vs every static plan (default load {REAL_LOAD})")
    args = ap.parse_args(argv)
    if args.measure_reconfig:
        measure_reconfig(args.repeats)
        return 0
    if args.real:
        real_run(args.real, args.repeats)
        return 0
    from packrat_sim.policy import parse_overrides, parse_policy
    from packrat_sim.simulator import SimConfig

    name, items = parse_policy(args.policy)
    if name != "packrat":
        ap.error("--policy: only packrat[:KEY=VALUE,...] is benchmarked here")
    config = SimConfig(policy=parse_overrides(items)) if items else None
    n = args.seeds or (2 if args.quick else 5)
    seeds = list(range(1, n + 1))
    cells = []
    t0 = time.perf_counter()
    for prof in PROFILES:
        for name, spec in WORKLOADS:
            c = run_cell(prof, spec, seeds, args.quick, config)
            c["name"] = name
            cells.append(c)
            print(f"  {prof} {name}: done ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(cells, indent=1))
    else:
        print(f"adaptive {args.policy} vs static plans: simulated, {CORES} cores, {n} seeds "
              "(means of per-seed percentiles, ms)")
        print(format_table(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
