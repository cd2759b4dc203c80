"""OpenMP wait policy of the runner's workers: default spin vs passive vs bounded spin.

Starts, side by side, one pool per policy (``real_runner.topology.OMP_POLICIES``; the
policy is in the environment each worker is spawned with) for the fat plan (1 x T
threads) and for 2 x T/2 threads, batch ``--batch`` of ``--model``. Then two phases,
each ``--rounds`` rounds in which every pool runs one batch, in an order rotated each
round (only one pool runs at a time):

* calm: nothing else runs (besides whatever shares the machine);
* loaded: ``--hogs`` busy-loop processes (default: T) compete for the same cores.

Prints the median batch latency per plan, policy and phase, and each policy's ratio to
the default. The runner's default policy (``DEFAULT_OMP_POLICY``) is chosen from these
figures (docs/results.md).

    PYTHONPATH=. python3 benchmarks/omp_wait_policy.py [--model tiny-cnn] [--batch 8] [--rounds 30] [--cores T]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _hog(stop_at: float) -> None:
    x = 0
    while time.time() < stop_at:
        x += 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny-cnn")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--cores", type=int, default=None)
    ap.add_argument("--hogs", type=int, default=None)
    args = ap.parse_args(argv)

    import numpy as np

    from packrat_sim.plan import Instance, Plan
    from real_runner import topology as topo_mod
    from real_runner.executor import InstancePool, start_side_by_side
    from real_runner.models import make_inputs

    topo = topo_mod.detect()
    T = args.cores or topo.logical
    plans = {"fat": Plan((Instance(T, args.batch),), args.batch, T)}
    if T >= 2 and args.batch >= 2:
        half = args.batch // 2
        plans[f"2 x {T // 2}t"] = Plan((Instance(T // 2, half), Instance(T // 2, args.batch - half)), args.batch, T)
    policies = list(topo_mod.OMP_POLICIES)
    keys = [(p, name) for p in policies for name in plans]
    pools = {k: InstancePool(args.model, plans[k[1]], topology=topo, allow_oversubscribe=True, omp_policy=k[0])
             for k in keys}
    print(f"omp_wait_policy: {args.model} batch {args.batch} on {T} cores ({topo.describe()}), "
          f"{args.rounds} rounds per phase", flush=True)
    try:
        start_side_by_side(pools.values())
        inputs = make_inputs(args.model, args.batch, 2)
        results: dict = {}
        for phase in ("calm", "loaded"):
            hogs = []
            if phase == "loaded":
                ctx = mp.get_context("spawn")
                stop_at = time.time() + 3600
                for _ in range(args.hogs or T):
                    h = ctx.Process(target=_hog, args=(stop_at,), daemon=True)
                    h.start()
                    hogs.append(h)
                time.sleep(0.5)
            try:
                samples = {k: [] for k in keys}
                for r in range(args.rounds):
                    order = keys[r % len(keys):] + keys[: r % len(keys)]
                    for k in order:
                        samples[k].append(pools[k].run(inputs, copy=False)[1])
            finally:
                for h in hogs:
                    h.terminate()
                for h in hogs:
                    h.join(5)
            for k in keys:
                results[(phase, *k)] = float(np.median(samples[k]))
        print(f"{'phase':7s} {'plan':10s} " + " ".join(f"{p:>16s}" for p in policies))
        for phase in ("calm", "loaded"):
            for name in plans:
                base = results[(phase, "default", name)]
                cells = [f"{results[(phase, p, name)]:8.3f} ms x{results[(phase, p, name)] / base:4.2f}" for p in policies]
                print(f"{phase:7s} {name:10s} " + " ".join(f"{c:>16s}" for c in cells), flush=True)
    finally:
        for pool in pools.values():
            pool.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
