"""Schedule exploration: how many schedules each strategy needs, per protocol variant.

For every variant of every protocol (defaults of ``checker.protocols``) and every strategy, one
run that keeps going after the first violation (no shrinking) reports: the schedule in which the
first violation was seen, the schedules to completion (``>N`` when the per-run budget ran out),
the distinct states, schedules per second, and the verdict (``OK`` only for a complete search).
Then the register models (DS2's benchmark as variants ``ds2`` / ``ds2-erroneous``, and ours) under
each strategy and reduction switch, with DS2's published figures beside ours. Then, per buggy
reconfiguration variant, the counterexample bfs finds (a shortest one, as found) beside dfs's
shrunk one: their lengths and the time of each to its counterexample (dfs's includes shrinking),
as the ratio bfs / dfs of medians of ``--repeats`` runs side by side.

    .venv/bin/python benchmarks/explore.py [--budget SECONDS] [--walk N] [--quick] [--ds2-only]
        [--shortest-only] [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
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
                    f"{fmt_rate(r):>9}  {r.verdict_word}",
                    flush=True,
                )
    print(
        "\nfirst bug: index of the first schedule that broke an invariant or gave a non-linearizable "
        "history ('-': none); schedules: to completion ('>N': the per-run budget of "
        f"{budget:g} s ran out; '(N)': random/pct walks done, at most {walk} within the same time budget; "
        "delay-bounded: all schedules "
        "within its bound of 3 delays)."
    )


# DS2's published figures (Al-Mahfoudh, Stutsman, Gopalakrishnan): its distributed register with
# one write and two reads, correct and erroneous: exhaustive schedules, DS2's own DPOR, and its
# key-aware LiViola scheduler ("12 of 44": LiViola's rule, unlisted message types get fresh keys,
# finds 12 of the 44 distinct histories of this model). "-": not published.
DS2_PUBLISHED = {
    ("ds2", "exhaustive", "schedules"): "4,200",
    ("ds2-erroneous", "exhaustive", "schedules"): "252",
    ("ds2", "dpor", "schedules"): "2,984",
    ("ds2-erroneous", "dpor", "first"): "20",
    ("ds2", "keyaware", "schedules"): "88",
    ("ds2", "keyaware", "histories"): "12 of 44",
    ("ds2", "ired", "schedules"): "2,906",  # DS2 Docs/benchmarks.results/final.results.micro.org
    ("ds2-erroneous", "random", "first"): "missed",
}

# (label, explore keywords): the strategies and reductions compared on each model
CONFIGS = (
    ("exhaustive", dict(strategy="exhaustive")),
    ("dfs, no symmetry, no sleep sets", dict(strategy="dfs", symmetry=False, sleep_sets=False)),
    ("dfs, no sleep sets", dict(strategy="dfs", sleep_sets=False)),
    ("dfs, no symmetry", dict(strategy="dfs", symmetry=False)),
    ("dfs, static", dict(strategy="dfs", local_commutation=False)),
    ("dfs", dict(strategy="dfs")),
    ("dpor stateless, coarse, static", dict(strategy="dpor", state_cache=False, coarse_clients=True,
                                            local_commutation=False)),
    ("dpor stateless, static", dict(strategy="dpor", state_cache=False, local_commutation=False)),
    ("dpor stateless", dict(strategy="dpor", state_cache=False)),
    ("dpor, static", dict(strategy="dpor", local_commutation=False)),
    ("dpor", dict(strategy="dpor")),
    ("transdpor", dict(strategy="transdpor")),
    ("keyaware, static", dict(strategy="keyaware", local_commutation=False)),
    ("keyaware", dict(strategy="keyaware")),
    *((s, dict(strategy=s)) for s in ("ired", "dpired", "dpliviola")),  # DS2's IRed, DPIRed, DPLiViola (sound)
    ("random", dict(strategy="random")),
)


def _run(variant: str, params: dict, budget: float, walk: int, stop: bool, **kw):
    strategy = kw.pop("strategy")
    extra = dict(max_schedules=walk, seed=0) if strategy in SAMPLING else {}
    return explore("register", strategy, variant=variant, params=params, max_time=budget,
                   stop_on_violation=stop, shrink_counterexample=False, **extra, **kw)


def model_table(title: str, variant: str, params: dict, budget: float, walk: int, published: bool) -> None:
    """One model: per configuration, schedules to completion (and states, distinct histories,
    seconds), and the index of the first violating schedule (a separate run that stops there)."""
    print(f"\n== {title}")
    head = (f"{'configuration':<32} {'schedules':>10} {'states':>8} {'transitions':>11} {'histories':>9} "
            f"{'first bug':>9} {'s':>6}")
    if published:
        head += f"  {'DS2 schedules':>13} {'DS2 hist.':>9} {'DS2 first':>9}"
    print(head)
    for label, kw in CONFIGS:
        full = _run(variant, params, budget, walk, False, **dict(kw))
        first = _run(variant, params, budget, walk, True, **dict(kw))
        total = f"{full.schedules:,}" if full.complete else (
            f"({full.schedules:,})" if kw["strategy"] in SAMPLING else f">{full.schedules:,}")
        bug = f"{first.first_violation_at:,}" if first.first_violation_at is not None else "-"
        line = (f"{label:<32} {total:>10} {full.states:>8,} {full.transitions:>11,} {full.distinct_histories:>9} "
                f"{bug:>9} {full.elapsed_s:>6.1f}")
        if published:  # beside the strategy's row with every reduction on (its label is the strategy)
            s = kw["strategy"] if label == kw["strategy"] else None
            line += (f"  {DS2_PUBLISHED.get((variant, s, 'schedules'), '-'):>13}"
                     f" {DS2_PUBLISHED.get((variant, s, 'histories'), '-'):>9}"
                     f" {DS2_PUBLISHED.get((variant, s, 'first'), '-'):>9}")
        print(line, flush=True)


def ds2_table(budget: float, walk: int) -> None:
    model_table("DS2's register (variant ds2: 2 agents, leader register1, 1 write + 2 reads)",
                "ds2", {}, budget, walk, True)
    model_table("DS2's erroneous register (variant ds2-erroneous: 3 agents, 1 write + 2 reads)",
                "ds2-erroneous", {}, budget, walk, True)
    model_table("our majority register, 3 replicas, 1 write + 2 reads", "majority", {}, budget, walk, False)
    model_table("our erroneous register, 3 replicas", "erroneous", {}, budget, walk, False)
    model_table("ABD register, 3 replicas", "abd", {}, budget, walk, False)
    print(
        "\nschedules: to completion ('>N': the budget of "
        f"{budget:g} s ran out; '(N)': random walks done, at most {walk:,}); states: distinct states seen "
        "(orbits under symmetry); transitions: steps taken (sleep sets cut these, never states); "
        "histories: distinct histories judged; first bug: index of the first "
        "schedule that broke an invariant or gave a non-linearizable history, in a run that stops there; "
        "s: seconds of the full run. A schedule of a stateful search (dfs, dpor with its state cache) "
        "ends at a terminal state, where it joins a state already explored, or (dfs) where every "
        "enabled event is asleep. Configurations: every reduction on unless named: 'no symmetry', 'no "
        "sleep sets', 'stateless' (no state cache), 'coarse' (coarse client dependency), 'static' (sleep "
        "sets keep only statically independent events: --no-local-commutation). DS2's columns are its "
        "paper's figures. The ds2 variants schedule what DS2 schedules: the clients' requests and the "
        "messages between agents; the answer to a client is recorded by the agent that gives it, not "
        "scheduled. So exhaustive search reproduces DS2's counts: 4,200 = 10!/(3! 4! 3!) (three "
        "independent chains of 3, 4 and 3 deliveries) and 252 = 6 * 7!/5! (the write's request, two "
        "replica-write/ack pairs, two one-step reads)."
    )


def _median_time(protocol, strategy: str, repeats: int):
    """The last of ``repeats`` runs of ``strategy`` (stopping at its first violation, shrunk
    unless bfs) and the median of their wall times in seconds."""
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = explore(protocol, strategy)
        times.append(time.perf_counter() - t0)
    return result, statistics.median(times)


def shortest_table(repeats: int) -> None:
    """bfs's counterexample beside dfs's shrunk one, per buggy variant of every protocol
    (defaults; DS2's register, much larger, left out)."""
    print(f"\n== shortest counterexamples: bfs (as found) vs dfs (shrunk), default parameters, median of {repeats}")
    print(f"{'variant':<30} {'bfs len':>8} {'dfs len':>8} {'dfs found':>10} {'bfs ms':>9} {'dfs ms':>9} {'bfs/dfs':>8}")
    cases = [(spec.name, v) for spec in PROTOCOLS.values() for v in spec.buggy_variants if v != "ds2-erroneous"]
    for name, variant in cases:
        protocol = build(name, variant)
        bfs, t_bfs = _median_time(protocol, "bfs", repeats)
        dfs, t_dfs = _median_time(protocol, "dfs", repeats)
        label = f"{name}/{variant}"
        if bfs.violation is None or dfs.violation is None:
            print(f"{label:<30} (no counterexample: bfs {bfs.verdict_word}, dfs {dfs.verdict_word})")
            continue
        print(f"{label:<30} {len(bfs.violation.schedule):>8} {len(dfs.violation.schedule):>8} "
              f"{len(dfs.violation.found):>10} {t_bfs * 1e3:>9.1f} {t_dfs * 1e3:>9.1f} {t_bfs / t_dfs:>8.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=6.0, help="seconds per exploration (default 6)")
    parser.add_argument("--walk", type=int, default=100_000, help="random/pct walks per run (default 100000)")
    parser.add_argument("--quick", action="store_true", help="1 s budgets and 2,000 walks (a smoke run)")
    parser.add_argument("--ds2-only", action="store_true", help="only the register tables (DS2's figures beside ours)")
    parser.add_argument("--shortest-only", action="store_true", help="only the bfs vs dfs counterexample table")
    parser.add_argument("--repeats", type=int, default=5, help="runs per cell of the counterexample table (default 5)")
    parser.add_argument("--bug-table", action="store_true",
                        help="only the bug-finding table: every strategy on every variant (benchmarks/explore_bugs.py)")
    args = parser.parse_args()
    if args.bug_table:
        from benchmarks.explore_bugs import main as bug_table

        bug_table([], quick=args.quick)
        return
    if args.quick:
        args.budget, args.walk = 1.0, 2_000
    start = time.perf_counter()
    if args.shortest_only:
        shortest_table(args.repeats)
        print(f"\n(total {time.perf_counter() - start:.0f} s)")
        return
    if not args.ds2_only:
        protocol_tables(args.budget, args.walk, STRATEGIES)
    ds2_table(args.budget, args.walk)
    if not args.ds2_only:
        shortest_table(args.repeats)
    print(f"\n(total {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
