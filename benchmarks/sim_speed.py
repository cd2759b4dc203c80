"""Simulator speed: simulated requests per second of wall time (target >= 100,000/s).

Simulates about ``--requests`` Poisson requests (default one million) on the synthetic
``cnn-16`` profile with 16 cores under each policy (packrat with its estimator and online
reconfiguration, fat, thin), and prints, per policy and overall, requests simulated per
second of wall time and the ratio to the 100,000/s target. The wall time covers the whole
``simulate`` call (arrivals, event loop, vectorised per-request statistics). The load
(``--rate``, requests/s) sets the mean batch size: the default 400/s gives batches of
about ten; a light load such as ``--rate 40`` makes most batches single requests, the
slowest case (one SimPy event per batch).

    .venv/bin/python benchmarks/sim_speed.py [--requests N] [--rate R] [--seed S]
"""

from __future__ import annotations

import argparse
import sys
import time

from packrat_sim.profile import builtin_profile
from packrat_sim.simulator import simulate
from packrat_sim.workload import Batching, Poisson

TARGET_PER_S = 100_000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000, help="requests to simulate per policy (about)")
    parser.add_argument("--rate", type=float, default=400.0, help="Poisson arrival rate, requests/s")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.requests < 1 or args.rate <= 0:
        parser.error("--requests and --rate must be positive")

    profile = builtin_profile("cnn-16", max_batch=64)
    workload = Poisson(args.rate, args.requests / args.rate, Batching(max_batch=64, max_delay_ms=10.0))
    print(f"workload: {workload.to_spec()} on cnn-16 [synthetic], 16 cores, seed {args.seed}")
    total_requests = 0
    total_wall = 0.0
    total_cpu = 0.0
    for policy in ("packrat", "fat", "thin"):
        t0, c0 = time.perf_counter(), time.process_time()
        result = simulate(profile, 16, workload, policy, seed=args.seed)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        n = result.stats.requests
        total_requests += n
        total_wall += wall
        total_cpu += cpu
        print(
            f"{policy:8s} {n:>9,} requests in {result.stats.batches:>8,} batches, "
            f"{len(result.reconfigurations):>3} reconfigurations: {wall:6.2f} s wall ({cpu:6.2f} s CPU), "
            f"{n / wall:>11,.0f} simulated requests/s"
        )
    rate = total_requests / total_wall
    print(f"overall: {rate:,.0f} simulated requests per second of wall time "
          f"({total_requests / total_cpu:,.0f} per CPU second; a busy machine lowers the first); "
          f"ratio to the {TARGET_PER_S:,.0f}/s target: {rate / TARGET_PER_S:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
