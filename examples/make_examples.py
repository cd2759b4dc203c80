"""Re-make the measured and generated example files of ``examples/`` (see examples/README.md).

    .venv/bin/python examples/make_examples.py            # all of them (about 2 minutes, 2+ CPUs)
    .venv/bin/python examples/make_examples.py --only trace,history

Every file is made by this toolkit, small (a few KB):

* ``tiny-cnn-latency.csv``: tiny-cnn measured on this machine in Packrat's published
  single-instance CSV format, two series (``benchmark`` = ``tiny_cnn_eager`` and
  ``tiny_cnn_script``, the TorchScript model): one row per (threads, batch), latency(min/avg/max)
  in ms over 20 timed batches of a pool of one pinned instance (its compute time, as the
  profiler times a cell), the quietest of 3 rounds in the same pool;
* ``tiny-cnn-corun.csv``: the same model in Packrat's multi-instance CSV format (an
  ``instances`` column, ids 1..k): k one-thread instances co-running, each on its own core and
  its own sub-batch, one row per instance (the quietest of 3 rounds, by the slowest instance);
* ``trace.csv``: arrival times (ms) of a bursty open-loop load drawn by the workload module
  (``steps:20/s@2s,150/s@1s,20/s@2s``, seed 7);
* ``histories/serving.history.json``: the history (packrat.history/1, model ``serving``) of
  a simulated adaptive run on builtin:cnn-4 (4 cores, a load step that makes it reconfigure
  twice), one operation per line.

The Jepsen log, the key-value history and the sweep grid are written by hand (their formats:
README.md, "Checking histories" and "Sweeps").
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

PACKRAT_COLUMNS = ["benchmark", "topology", "pinning", "source", "allocator", "instance_id", "interop_threads",
                   "intraop_threads", "batch_size", "latency(min)", "latency(avg)", "latency(max)", "flops"]
SERIES = {"tiny_cnn_eager": False, "tiny_cnn_script": True}  # benchmark -> TorchScript
THREADS = (1, 2)
BATCHES = (1, 2, 4, 8)
ITERATIONS = 20
ROUNDS = 3


def _stats(xs) -> list[str]:
    return [f"{min(xs):.4f}", f"{sum(xs) / len(xs):.4f}", f"{max(xs):.4f}"]


def _measure(plan, jit: bool) -> list[list[float]]:
    """Per instance of ``plan``: its compute times (ms) over ITERATIONS timed batches, from the
    quietest of ROUNDS rounds (the round whose slowest instance has the lowest mean; one pool,
    so a co-tenant's burst on a shared VM spoils one round, not the cell)."""
    from real_runner.executor import InstancePool
    from real_runner.models import make_inputs

    inputs = make_inputs("tiny-cnn", plan.batch, 2)
    rounds = []
    with InstancePool("tiny-cnn", plan, jit=jit, warmup=3) as pool:
        for _ in range(ROUNDS):
            times = []
            for _ in range(ITERATIONS):
                pool.run(inputs)
                times.append(pool.last_worker_ms)
            rounds.append([list(col) for col in zip(*times)])
    return min(rounds, key=lambda per_instance: max(sum(xs) / len(xs) for xs in per_instance))


def make_latency_and_corun() -> None:
    from packrat_sim.plan import Instance, Plan

    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("make_examples.py: the co-run example needs 2 CPUs")
    single, multi = io.StringIO(), io.StringIO()
    w1, w2 = csv.writer(single, lineterminator="\n"), csv.writer(multi, lineterminator="\n")
    w1.writerow(PACKRAT_COLUMNS)
    w2.writerow(PACKRAT_COLUMNS[:5] + ["instances"] + PACKRAT_COLUMNS[5:])
    for bench, jit in SERIES.items():
        series = [bench, "sequential", "affinity", "torch", "default"]
        for t in THREADS:
            for b in BATCHES:
                (times,) = _measure(Plan((Instance(t, b),), b, t), jit)
                w1.writerow(series + ["1", "1", str(t), str(b), *_stats(times), "0.0"])
                print(f"{bench}: 1 x {t}t x {b}", file=sys.stderr)
        k = 2
        for b in BATCHES:
            per_instance = _measure(Plan(tuple(Instance(1, b) for _ in range(k)), k * b, k), jit)
            for i, times in enumerate(per_instance, 1):
                w2.writerow(series + [str(k), str(i), "1", "1", str(b), *_stats(times), "0.0"])
            print(f"{bench}: {k} x 1t x {b} co-running", file=sys.stderr)
    (HERE / "tiny-cnn-latency.csv").write_text(single.getvalue())
    (HERE / "tiny-cnn-corun.csv").write_text(multi.getvalue())


def make_trace() -> None:
    import numpy as np

    from packrat_sim.workload import arrival_times_ms, parse_workload

    ts = arrival_times_ms(parse_workload("steps:20/s@2s,150/s@1s,20/s@2s"), np.random.default_rng(7))
    (HERE / "trace.csv").write_text("arrival_ms\n" + "".join(f"{t:.1f}\n" for t in ts))


def make_history() -> None:
    from packrat_sim.profile import builtin_profile
    from packrat_sim.simulator import simulate

    history = simulate(builtin_profile("cnn-4"), 4, "steps:10/s@1s,200/s@0.5s,max_batch=8", seed=2).history()
    ops = ",\n".join("  " + json.dumps(op) for op in history["operations"])  # one operation per line
    head = json.dumps({k: v for k, v in history.items() if k != "operations"})[:-1]
    (HERE / "histories").mkdir(exist_ok=True)
    (HERE / "histories" / "serving.history.json").write_text(f'{head}, "operations": [\n{ops}\n]}}\n')


STEPS = {"latency": make_latency_and_corun, "trace": make_trace, "history": make_history}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(STEPS), help=f"comma-separated subset of {', '.join(STEPS)}")
    args = parser.parse_args(argv)
    for name in args.only.split(","):
        if name not in STEPS:
            parser.error(f"unknown step {name!r}; choose from {', '.join(STEPS)}")
        STEPS[name]()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
