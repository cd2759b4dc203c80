"""Dispatch overhead of the executor's worker pool against calling the model in-process.

For each model, on the same inputs, the same cores and the same thread count, this
script interleaves (in one run, alternating which goes first):

* in-process: ``model(x)`` under ``torch.inference_mode()`` in this process, pinned to
  the cores and with ``torch.set_num_threads(T)``;
* pool: ``InstancePool(model, fat(B, T)).run(x)``: copy into shared memory, a control
  message to the worker, the same model call there, the copy of the outputs back.

It prints both medians, their ratio (pool / in-process; 1.00 means no overhead) and the
dispatch overhead in ms twice: end-to-end pool minus in-process, and end-to-end pool
minus the worker's own compute time (the latter does not depend on run-to-run noise of
the model itself). Usage::

    .venv/bin/python benchmarks/runner_overhead.py [--models tiny-cnn,resnet50] [--batch 8]
        [--threads T] [--iterations N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_ITERATIONS = {"tiny-mlp": 200, "tiny-cnn": 100}


def measure(model: str, batch: int, threads: int, iterations: int) -> dict:
    import torch

    from packrat_sim.plan import fat
    from real_runner.executor import InstancePool
    from real_runner.models import build_model, make_inputs
    from real_runner.topology import assign_cores, detect, pin_process

    topo = detect()
    cores = assign_cores([threads], topo, allow_span=True)[0]
    pin_process(cores)
    torch.set_num_threads(threads)
    built = build_model(model)
    x = make_inputs(model, batch, seed=2)
    inproc, pooled, compute = [], [], []
    with InstancePool(model, fat(batch, threads), topology=topo, warmup=2) as pool:
        with torch.inference_mode():
            for _ in range(2):
                built(x)
        pool.run(x)
        for it in range(iterations):
            for which in (("in", "pool") if it % 2 == 0 else ("pool", "in")):
                if which == "in":
                    t0 = time.perf_counter()
                    with torch.inference_mode():
                        built(x)
                    inproc.append((time.perf_counter() - t0) * 1e3)
                else:
                    _, ms = pool.run(x)
                    pooled.append(ms)
                    compute.append(pool.last_worker_ms[0])
    pin_process(topo.ids)
    med_in, med_pool = statistics.median(inproc), statistics.median(pooled)
    return {
        "model": model, "batch": batch, "threads": threads, "cores": cores, "iterations": iterations,
        "inproc_ms": med_in, "pool_ms": med_pool, "ratio": med_pool / med_in,
        "overhead_ms": med_pool - med_in,
        "dispatch_ms": statistics.median(p - c for p, c in zip(pooled, compute)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="tiny-cnn,resnet50")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=0, help="default: every allowed CPU")
    ap.add_argument("--iterations", type=int, default=0, help="default: 100 for tiny models, 5 for the others")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    threads = args.threads or len(os.sched_getaffinity(0))
    print(f"pool dispatch vs in-process call, batch {args.batch}, {threads} thread(s), medians of interleaved runs")
    print(f"{'model':<10} {'n':>4} {'in-process ms':>14} {'pool ms':>10} {'ratio':>7} {'pool-inproc ms':>15} {'pool-compute ms':>16}")
    for model in [m.strip() for m in args.models.split(",") if m.strip()]:
        n = args.iterations or DEFAULT_ITERATIONS.get(model, 5)
        r = measure(model, args.batch, threads, n)
        print(
            f"{model:<10} {n:>4} {r['inproc_ms']:>14.3f} {r['pool_ms']:>10.3f} {r['ratio']:>6.2f}x "
            f"{r['overhead_ms']:>15.3f} {r['dispatch_ms']:>16.3f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
