"""`explore --workers 2` against one process, per shipped protocol and on one long search.

For every variant of every shipped protocol (defaults of ``checker.protocols``) with the default
strategy (``dpor``) and reductions, and for one long search (``--long``, default the
reconfiguration protocol with 2 clients, 2 instances and 4 batches:
``packrat explore --protocol reconfig --param clients=2 --param instances=2 --param batches=4``,
about 22 s in one process here), it runs the exploration in one process
(``checker.explore.explore``) and split over a local pool of 2 workers
(``checker.explore.split.explore_split``, ``--split-after`` seconds in this process first,
default the strategy's own as ``packrat explore --workers 2`` does; ``--strategy``, default
``dpor``, the CLI's), side by side, ``--repeats`` times each (alternating which
goes first), and prints the medians: wall time of each, the ratio split / one process (below 1:
the split is faster; the issue's targets: at most 1.5 on every shipped protocol, at most 1/1.5 =
0.67 on the long search), schedules, distinct histories, the jobs the split ran, and whether the
verdicts and the distinct histories are the same. The load average before and after is printed:
on a shared machine the ratios move with it.

    .venv/bin/python benchmarks/explore_split.py [--repeats N] [--split-after S] [--no-long]
        [--long PROTOCOL:VARIANT:K=V,...] [--only-long] [--strategy S]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from checker.explore import explore  # noqa: E402
from checker.explore.split import explore_split  # noqa: E402
from checker.protocols import PROTOCOLS  # noqa: E402
from packrat_sim.engines import LocalEngine  # noqa: E402

LONG = "reconfig::clients=2,instances=2,batches=4"
WORKERS = 2


def one_process(name: str, variant: str | None, params: dict, strategy: str):
    """(seconds, result) of the exploration in this process."""
    t0 = time.perf_counter()
    result = explore(name, strategy, variant=variant, params=params, collect_histories=True)
    return time.perf_counter() - t0, result


def split(name: str, variant: str | None, params: dict, split_after: float | None, strategy: str):
    """(seconds, SplitResult) of the exploration over a fresh local pool of 2 workers
    (the pool's start-up counts, as it does for ``packrat explore --workers 2``)."""
    t0 = time.perf_counter()
    with LocalEngine(WORKERS) as engine:
        result = explore_split(name, strategy, engine, variant=variant, params=params, workers=WORKERS,
                               split_after_s=split_after)
    return time.perf_counter() - t0, result


def measure(name: str, variant: str | None, params: dict, repeats: int, split_after: float | None,
            strategy: str = "dpor") -> dict:
    """Medians of ``repeats`` side-by-side runs, and the results of the last pair."""
    ones, splits = [], []
    one = two = None
    for k in range(repeats):
        if k % 2:
            s_two, two = split(name, variant, params, split_after, strategy)
            s_one, one = one_process(name, variant, params, strategy)
        else:
            s_one, one = one_process(name, variant, params, strategy)
            s_two, two = split(name, variant, params, split_after, strategy)
        ones.append(s_one)
        splits.append(s_two)
    assert one is not None and two is not None
    t_one, t_two = statistics.median(ones), statistics.median(splits)
    r = two.result
    return {"one_s": t_one, "split_s": t_two, "ratio": t_two / t_one, "one": one, "split": r, "jobs": two.jobs,
            "same": r.verdict == one.verdict and (r.histories == one.histories or one.verdict.name != "OK")}


def row(label: str, m: dict) -> str:
    one, two = m["one"], m["split"]
    return (f"{label:<34} {m['one_s']:>7.2f} {m['split_s']:>7.2f} {m['ratio']:>6.2f} {one.schedules:>8} "
            f"{two.schedules:>8} {one.distinct_histories:>5} {two.distinct_histories:>5} {m['jobs']:>5}  "
            f"{'yes' if m['same'] else 'NO'}")


HEADER = (f"{'protocol':<34} {'one s':>7} {'split s':>7} {'ratio':>6} {'sched1':>8} {'sched2':>8} "
          f"{'hist1':>5} {'hist2':>5} {'jobs':>5}  same verdict+histories")


def parse_long(text: str) -> tuple[str, str | None, dict]:
    """``PROTOCOL:VARIANT:K=V,...`` (variant and parameters optional)."""
    parts = text.split(":")
    params = {}
    for item in filter(None, (parts[2] if len(parts) > 2 else "").split(",")):
        key, _, value = item.partition("=")
        params[key] = int(value) if value.isdigit() else value
    return parts[0], (parts[1] or None) if len(parts) > 1 else None, params


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--split-after", type=float, default=None,
                    help="seconds in this process before splitting (default: the strategy's, as the CLI)")
    ap.add_argument("--long", default=LONG, help="the long search, PROTOCOL:VARIANT:K=V,...")
    ap.add_argument("--no-long", action="store_true", help="only the shipped protocols at their defaults")
    ap.add_argument("--only-long", action="store_true", help="only the long search")
    ap.add_argument("--strategy", default="dpor", help="the strategy of every search (default dpor, the CLI's)")
    args = ap.parse_args(argv)
    print(f"{os.cpu_count()} CPUs, load average before: {' '.join(open('/proc/loadavg').read().split()[:3])}; "
          f"{WORKERS} workers, --strategy {args.strategy}, --split-after "
          f"{'default' if args.split_after is None else f'{args.split_after:g} s'}, "
          f"medians of {args.repeats}")
    print(HEADER)
    worst = 0.0
    same = True
    if not args.only_long:
        for name, spec in PROTOCOLS.items():
            for variant in spec.variants:
                m = measure(name, variant, {}, args.repeats, args.split_after, args.strategy)
                worst, same = max(worst, m["ratio"]), same and m["same"]
                print(row(f"{name} {variant}", m), flush=True)
        print(f"worst ratio over the shipped protocols: {worst:.2f} (target: at most 1.5)")
    if not args.no_long:
        name, variant, params = parse_long(args.long)
        m = measure(name, variant, params, args.repeats, args.split_after, args.strategy)
        same = same and m["same"]
        print(row(f"long: {args.long}", m))
        print(f"long search: split / one process {m['ratio']:.2f}, a speed-up of {1 / m['ratio']:.2f}x "
              f"(target: at least 1.5x on a search of 20 s or more in one process; one process took {m['one_s']:.1f} s)")
    print(f"load average after: {' '.join(open('/proc/loadavg').read().split()[:3])}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
