"""Adaptive packrat vs fat vs thin vs the best static plan in hindsight (issue 15's matrix, issue 28's targets).

Simulated, 16 cores, builtin transformer-16 and cnn-16, 5 seeds (common random numbers:
every policy of a seed sees the same arrivals). Workloads: the demo's steps, steps with
20 s phases, Poisson 50 / 200 / 800 req/s for 30 s, diurnal (base 20/s, peak 500/s,
period 30 s, 60 s). The static candidates are the optimizer's plans for every batch size
1..max_batch plus fat and thin; "best static" is the candidate with the lowest p99 (mean
over the seeds), chosen in hindsight per cell. Every figure is a mean over the seeds of
request-latency percentiles (ms); ratios are adaptive / best static. Switches are priced
and modelled by kind (``SwitchModel``: re-route, retarget of warm workers, respawn); with
the default warm standby every switch here is a re-route or a retarget. ``reconf`` is the
mean number of reconfigurations per run, ``changes`` the load changes between phases of
5 s or longer (``kinds``: how many of each kind, over all seeds).

Targets (issue 28): the policy reconfigures at each sustained load change (``reconf`` >=
``changes``); adaptive p99 <= 0.95x best static on the step loads, <= 1.0x on the others;
adaptive p50 <= 1.0x. Cells that miss are marked, not hidden. ``--phases`` prints, for
each step load, the best static plan of each phase alone (Poisson at that rate): where one
plan is best in every phase, no schedule of switches can beat it by much.

Usage::

    .venv/bin/python benchmarks/adaptive.py [--quick] [--seeds N] [--json] [--phases]
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
    ("demo steps", "steps:60/s@4s,400/s@4s,60/s@4s,max_batch=64,max_delay=10ms"),
    ("steps 20s", "steps:60/s@20s,400/s@20s,60/s@20s,max_batch=64,max_delay=10ms"),
    ("poisson 50", "poisson:rate=50/s,duration=30s"),
    ("poisson 200", "poisson:rate=200/s,duration=30s"),
    ("poisson 800", "poisson:rate=800/s,duration=30s"),
    ("diurnal", "diurnal:base=20/s,peak=500/s,period=30s,duration=60s"),
)
CORES = 16
#: A phase this long or longer is a sustained load (issue 28).
SUSTAINED_S = 5.0


def sustained_changes(wl) -> int:
    """Load changes between two consecutive steps that both last >= SUSTAINED_S (0 for
    workloads without steps)."""
    steps = getattr(wl, "steps", ())
    return sum(1 for a, b in zip(steps, steps[1:])
               if a.rate_per_s != b.rate_per_s and min(a.duration_s, b.duration_s) >= SUSTAINED_S)


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
    kinds: dict[str, int] = {}
    names = ["packrat", "fat", "thin"] + ["static:" + label for label in statics]
    for seed in seeds:  # one comparison per seed: every policy sees the same arrivals
        # (the config's policy options only matter to "packrat"; static runs ignore them)
        cmp = compare_plans(profile, CORES, wl, seed=seed, config=config,
                            policies=("packrat", "fat", "thin", *statics.values()))
        for name, r in zip(names, cmp.results):
            acc.setdefault(name, []).append(_pcts(r))
        reconfigs.append(len(cmp.results[0].reconfigurations))
        for rc in cmp.results[0].reconfigurations:
            kinds[rc.kind] = kinds.get(rc.kind, 0) + 1
    mean = {k: tuple(float(x) for x in np.mean(np.asarray(v), axis=0)) for k, v in acc.items()}
    best = min((k for k in mean if k.startswith("static:")), key=lambda k: mean[k][2])
    return {"profile": profile_name, "workload": spec, "seeds": seeds, "candidates": len(statics),
            "adaptive": mean["packrat"], "fat": mean["fat"], "thin": mean["thin"],
            "best_static": mean[best], "best_static_plan": best[len("static:"):],
            "reconfigurations": float(np.mean(reconfigs)), "kinds": kinds,
            "sustained_changes": sustained_changes(wl)}


def verdict(cell: dict) -> list[str]:
    """The issue 28 targets this cell misses (empty: all met)."""
    a, b = cell["adaptive"], cell["best_static"]
    step_load = "steps" in cell["workload"].split(":", 1)[0]
    p99_target = 0.95 if step_load else 1.0
    miss = []
    if cell["reconfigurations"] < cell["sustained_changes"]:
        miss.append(f"reconf<{cell['sustained_changes']}")
    if a[2] > p99_target * b[2]:
        miss.append(f"p99>{p99_target:.2f}x best")
    if a[0] > b[0]:
        miss.append("p50>1.00x best")
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
            + f"  [changes {c['sustained_changes']}; kinds {', '.join(f'{k} {n}' for k, n in c['kinds'].items()) or '-'}]"
        )
    met = sum(1 for c in cells if not verdict(c))
    lines.append(f"targets met in {met} of {len(cells)} cells")
    return "\n".join(lines)


def _mean_p99s(profile, load: str, statics: dict, seeds: list[int]) -> dict[str, float]:
    """Mean p99 (ms) over ``seeds`` of each static plan of ``statics`` ({label: plan}) on ``load``."""
    import numpy as np

    from packrat_sim.simulator import compare_plans

    runs = [compare_plans(profile, CORES, load, seed=s, policies=tuple(statics.values())) for s in seeds]
    return {k: float(np.mean([c.results[j].stats.request_latency.p99_ms for c in runs])) for j, k in enumerate(statics)}


def phase_bests(seeds: list[int]) -> list[str]:
    """For each step load: the best static plan (lowest mean p99 over ``seeds``) of each
    distinct phase alone, a Poisson load at that rate for that long, and the p99 there of
    the plan best over the whole step load. Lines to print."""
    from packrat_sim import plan as plans
    from packrat_sim.policy import PlanCatalog
    from packrat_sim.profile import builtin_profile
    from packrat_sim.workload import load_workload

    lines = []
    for prof in PROFILES:
        profile = builtin_profile(prof)
        for name, spec in WORKLOADS:
            wl = load_workload(spec)
            if not getattr(wl, "steps", ()):
                continue
            B, b = wl.max_batch, wl.batching
            statics = {p.describe(): p for p in PlanCatalog(profile, CORES, B).plans}
            statics.setdefault(plans.fat(B, CORES).describe(), plans.fat(B, CORES))
            statics.setdefault(plans.thin(B, CORES).describe(), plans.thin(B, CORES))
            whole = _mean_p99s(profile, spec, statics, seeds)
            overall = min(whole, key=lambda k: whole[k])
            parts = []
            for step in dict.fromkeys((st.rate_per_s, st.duration_s) for st in wl.steps):
                alone = _mean_p99s(profile, f"poisson:rate={step[0]:g}/s,duration={step[1]:g}s,max_batch={B},"
                                   f"max_delay={b.max_delay_ms:g}ms", statics, seeds)
                best = min(alone, key=lambda k: alone[k])
                parts.append(f"{step[0]:g}/s: {best} p99 {alone[best]:.1f} ({overall}: {alone[overall]:.1f})")
            lines.append(f"{prof} {name} (best static {overall}, p99 {whole[overall]:.1f}): " + "; ".join(parts))
    return lines


#: Targets of issue 28 on a 2-core machine (ms; slowdown of any batch served meanwhile).
REROUTE_TARGET_MS = 1.0
RETARGET_TARGET_MS = 50.0
SLOWDOWN_TARGET = 2.0


def reconfig_pairs(cores: int) -> list[tuple[str, object, object, int | None]]:
    """(label, old plan, new plan, standby or None for the default) per measured pair:
    re-routes (a new split of the same workers, and a larger batch), retargets (2 x 1t <->
    1 x 2t through the standby the pool keeps), and a respawn (no standby)."""
    from packrat_sim.plan import Instance, Plan, fat, thin

    even = thin(8, cores)
    sizes = [i.batch for i in even.instances]
    sizes[0], sizes[-1] = sizes[0] - 1, sizes[-1] + 1  # the same workers, one input moved
    uneven = Plan(tuple(Instance(i.threads, b) for i, b in zip(even.instances, sizes)), 8, cores)
    return [
        ("re-route, new split", thin(8, cores), uneven, None),
        ("re-route, batch 8 -> 16", thin(8, cores), thin(16, cores), None),
        ("retarget, thin <-> fat", thin(8, cores), fat(8, cores), None),
        ("retarget, fat <-> thin", fat(8, cores), thin(8, cores), None),
        ("respawn, no standby", fat(8, cores), thin(8, cores), 0),
    ]


def _target_line(kind: str, d: dict, noise: float | None) -> str:
    """How one direction's medians compare with issue 28's targets (ratios: figure / target),
    beside the noise floor (the new plan's steady p99 / median: how slow a batch gets anyway)."""
    slow = d["max_slowdown"]
    worst = d["worst_slowdown"]
    tail = (f"slowdown of batches served meanwhile: median of worst {slow:.2f}x, worst {worst:.2f}x"
            if slow is not None else "no batch served meanwhile")
    if noise is not None:
        tail += f" (steady p99 alone: {noise:.2f}x the median)"
    if kind == "re-route":
        head = f"measured/target {d['measured_ms'] / REROUTE_TARGET_MS:.2f} (< 1 ms)"
    elif kind == "retarget":
        head = f"measured/target {d['measured_ms'] / RETARGET_TARGET_MS:.2f} (< 50 ms)"
        if worst is not None:
            tail += f"; worst/target {worst / SLOWDOWN_TARGET:.2f} (<= 2x)"
    else:
        head = "no target"
    return f"    {head}; {tail}"


def _priced(kind: str, old, new, cores: int, batch_ms: float | None) -> float | None:
    """SwitchModel's price (its current defaults) of this switch, the new plan's batch taking
    its measured steady median."""
    from packrat_sim.policy import SwitchModel

    if batch_ms is None or "/" in kind:
        return None
    return SwitchModel().price_ms(kind, old, new, cores, batch_ms)


def measure_reconfig(repeats: int) -> None:
    """Real, this machine, tiny-cnn: each kind of switch (re-route, retarget, respawn) for a
    few plan pairs, both ways where the pool allows, through the serving runtime: decision ->
    first batch served by the new configuration, the in-place part, the slowdown of the
    batches served meanwhile, RSS per warm worker; ratios against issue 28's targets."""
    import os

    from real_runner.serving import measure_switch_cost

    cores = len(os.sched_getaffinity(0))
    if cores < 2:
        print("--measure-reconfig needs at least 2 allowed CPUs (the pairs switch between 1 and 2 instances)")
        return
    memory = []
    print(f"switch costs: tiny-cnn, {cores} cores, {repeats} repeats each way, medians (ms)")
    for label, old, new, standby in reconfig_pairs(cores):
        r = measure_switch_cost("tiny-cnn", old, new, standby=standby, repeats=repeats,
                                on_progress=lambda m: print("  " + m, file=sys.stderr, flush=True))
        memory.append(r["memory"])
        print(f"{label}: {r['old_plan']} <-> {r['new_plan']}, batches of {r['batch']}, standby {r['standby']}, "
              f"steady " + ", ".join(f"{p} {ms:.2f} ms" for p, ms in r["steady_ms"].items() if ms))
        for way, d in r["directions"].items():
            kind = "/".join(d["kinds"])
            a, b = (old, new) if way == "old->new" else (new, old)
            priced = _priced(kind, a, b, cores, r["steady_ms"].get(b.describe()))
            steady, p99 = r["steady_ms"].get(b.describe()), r["steady_p99_ms"].get(b.describe())
            print(f"  {way} {kind}: measured {d['measured_ms']:.2f} ms (decision -> first new batch, the batch in "
                  f"flight excluded; raw {d['decision_to_first_batch_ms']:.2f} ms), in place {d['commit_ms']:.2f} ms, "
                  f"first new batch {d['first_batch_ms']:.2f} ms"
                  + (f" ({d['first_batch_ms'] / steady:.2f}x steady)" if steady else "")
                  + ("" if priced is None else f"; SwitchModel prices {priced:.2f} ms "
                     f"(measured/priced {d['measured_ms'] / priced:.2f})"))
            print(_target_line(kind, d, None if not (p99 and steady) else p99 / steady))
    rss = [m["rss_kb"] for m in memory if m["rss_kb"]]
    pss = [m["pss_kb"] for m in memory if m["pss_kb"]]
    parked = [m["parked_rss_kb"] for m in memory if m["parked_rss_kb"]]
    if rss:
        print(f"memory per warm worker: RSS {sorted(rss)[len(rss) // 2] / 1024:.0f} MiB, PSS "
              f"{sorted(pss)[len(pss) // 2] / 1024:.0f} MiB"
              + (f"; parked (standby) RSS {sorted(parked)[len(parked) // 2] / 1024:.0f} MiB" if parked else ""))


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
    ap.add_argument("--phases", action="store_true", help="the best static plan of each phase of the step loads")
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
    if args.phases:
        print(f"best static plan per phase of the step loads (simulated, {CORES} cores, {n} seeds, mean p99 ms)")
        print("\n".join(phase_bests(seeds)))
        return 0
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
