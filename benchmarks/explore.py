"""Schedule exploration: how many schedules each strategy needs, per protocol variant.

For every variant of every protocol (defaults of ``checker.protocols``) and every strategy, one
run that keeps going after the first violation (no shrinking) reports: the schedule in which the
first violation was seen, the schedules to completion (``>N`` when the per-run budget ran out),
the distinct states, schedules per second, and the verdict (``OK`` only for a complete search).
Then DS2's reference configuration (a register with one write and two reads; Al-Mahfoudh,
Stutsman, Gopalakrishnan) with DS2's published numbers beside ours.

    .venv/bin/python benchmarks/explore.py [--budget SECONDS] [--walk N] [--quick]

Our schedules are finer-grained than DS2's (each request and each reply between a client and a
replica is one delivery, and a client's history events order against every other client's), so
the absolute counts are not comparable one to one; the ratios between strategies are the point.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from checker.explore import STRATEGIES, explore  # noqa: E402
from checker.protocols import PROTOCOLS, build  # noqa: E402

SAMPLING = ("random", "pct")


def cell_run(protocol, strategy: str, budget: float, walk: int):
    kwargs = dict(max_time=budget, stop_on_violation=False, shrink_counterexample=False, seed=0)
    if strategy in SAMPLING:
        kwargs["max_schedules"] = walk
    return explore(protocol, strategy, **kwargs)


def fmt_first(r) -> str:
    if r.first_violation_at is not None:
        return str(r.first_violation_at)
    return "-"


def fmt_total(r) -> str:
    if r.strategy in SAMPLING:
        return f"({r.schedules})"
    return str(r.schedules) if r.complete else f">{r.schedules}"


def fmt_rate(r) -> str:
    return f"{r.schedules_per_s:,.0f}" if r.elapsed_s > 0 else "-"


def protocol_tables(budget: float, walk: int, strategies) -> None:
    for spec in PROTOCOLS.values():
        params = ", ".join(f"{k}={v}" for k, v in spec.defaults.items())
        print(f"\n== {spec.name} ({params})")
        print(f"{'variant':<22} {'strategy':<14} {'first bug':>10} {'schedules':>12} {'states':>9} {'sched/s':>9}  verdict")
        for variant in spec.variants:
            protocol = build(spec.name, variant)
            for strategy in strategies:
                r = cell_run(protocol, strategy, budget, walk)
                print(
                    f"{variant:<22} {strategy:<14} {fmt_first(r):>10} {fmt_total(r):>12} {r.states:>9} "
                    f"{fmt_rate(r):>9}  {r.verdict}",
                    flush=True,
                )
    print(
        "\nfirst bug: index of the first schedule that broke an invariant or gave a non-linearizable "
        "history ('-': none); schedules: to completion ('>N': the per-run budget of "
        f"{budget:g} s ran out; '(N)': random/pct walks done, at most {walk} within the same time budget; "
        "delay-bounded: all schedules "
        "within its bound of 3 delays)."
    )


def ds2_table(budget: float, walk: int) -> None:
    print("\n== DS2's reference: a replicated register, one write and two reads")
    print(f"{'measure':<58} {'DS2':>14} {'ours, 3 replicas':>18} {'ours, 2 replicas':>18}")

    def row(label: str, ds2: str, values) -> None:
        print(f"{label:<58} {ds2:>14} {values[0]:>18} {values[1]:>18}", flush=True)

    def total(variant: str, strategy: str, replicas: int) -> str:
        r = explore("register", strategy, variant=variant, params={"replicas": replicas}, max_time=budget,
                    stop_on_violation=False, shrink_counterexample=False)
        return f"{r.schedules:,}" if r.complete else f">{r.schedules:,}"

    def first(variant: str, strategy: str, replicas: int, **kw) -> str:
        r = explore("register", strategy, variant=variant, params={"replicas": replicas}, max_time=budget,
                    shrink_counterexample=False, **kw)
        return f"{r.first_violation_at:,}" if r.first_violation_at is not None else f"none in {r.schedules:,}"

    row("majority register: exhaustive, schedules to completion", "4,200",
        [total("majority", "exhaustive", n) for n in (3, 2)])
    row("majority register: stateful DFS, distinct states", "-",
        [f"{explore('register', 'dfs', variant='majority', params={'replicas': n}).states:,}" for n in (3, 2)])
    row("majority register: DPOR, schedules to completion", "-",
        [total("majority", "dpor", n) for n in (3, 2)])
    row("majority register: key-aware DPOR, schedules to completion", "88",
        [total("majority", "keyaware", n) for n in (3, 2)])
    row("erroneous register: DPOR, schedules to the first bug", "<= 20",
        [first("erroneous", "dpor", n) for n in (3, 2)])
    row("erroneous register: key-aware DPOR, schedules to first bug", "-",
        [first("erroneous", "keyaware", n) for n in (3, 2)])
    row(f"erroneous register: random walk of {walk:,} schedules (seed 0)", "missed",
        [first("erroneous", "random", n, max_schedules=walk, seed=0) for n in (3, 2)])
    seeds = 20
    found = sum(
        explore("register", "random", variant="erroneous", max_schedules=walk, seed=s, max_time=budget,
                shrink_counterexample=False).violated
        for s in range(seeds)
    )
    row(f"erroneous register: random walks finding it, of {seeds} seeds", "-", [f"{found}/{seeds}", ""])
    print(
        "DS2's counts come from its paper; ours from this run. A schedule here is one complete order "
        "of message deliveries (late replies that can no longer matter are discarded, not scheduled)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=6.0, help="seconds per exploration (default 6)")
    parser.add_argument("--walk", type=int, default=100_000, help="random/pct walks per run (default 100000)")
    parser.add_argument("--quick", action="store_true", help="1 s budgets and 2,000 walks (a smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.budget, args.walk = 1.0, 2_000
    start = time.perf_counter()
    protocol_tables(args.budget, args.walk, STRATEGIES)
    ds2_table(args.budget, args.walk)
    print(f"\n(total {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
