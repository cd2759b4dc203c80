"""Simulator speed: simulated requests per second, each policy on its own, beside a plain SimPy M/D/1 loop.

For each load (``--rate``, requests/s; default 400 and 40) it draws about ``--requests``
Poisson arrivals (default one million) once, then simulates them on the synthetic
``cnn-16`` profile with 16 cores under each policy -- ``packrat`` (the adaptive policy:
its per-batch observations and decisions), ``fat`` and ``thin`` (static plans) -- and
runs a plain SimPy M/D/1 loop over the same arrival times, side by side (each measured
``--repeat`` times, interleaved; the best run counts). Each policy is reported on its own:
an average over policies would hide the adaptive one behind the static ones.

The M/D/1 loop is the textbook one: an arrival process that puts each request into a
``simpy.Store`` at its arrival time and a server process that takes them in order and
holds each for a fixed service time (half the mean inter-arrival time: utilisation 0.5).
It does one request per service and keeps no statistics beyond each request's latency.
For reference it also times a leaner single-process loop (no queue: the server waits for
the next arrival itself), which does about a quarter of the work per request.

Targets (issue 32): the adaptive policy at least 1,000,000 simulated requests/s at 400
requests/s, and at least the M/D/1 loop's rate at 40 requests/s (mostly one-request
batches, the slowest case). Wall time covers the whole ``simulate`` call (event loop and
vectorised statistics; the arrivals are drawn beforehand, as for the M/D/1 loop); CPU
seconds are printed too: a busy machine lowers the wall rate, less so the CPU rate.

    .venv/bin/python benchmarks/sim_speed.py [--requests N] [--rate R[,R...]] [--repeat K] [--seed S]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import numpy as np
import simpy

from packrat_sim.profile import builtin_profile
from packrat_sim.simulator import simulate
from packrat_sim.workload import Batching, Poisson, arrival_times_ms

ADAPTIVE_TARGET_PER_S = 1_000_000.0  # at 400 requests/s
POLICIES = ("packrat", "fat", "thin")


def md1_store(arrivals_ms: list[float], service_ms: float) -> int:
    """The plain SimPy M/D/1 loop: arrival process -> Store -> one server, fixed service time.
    Returns the number of requests served."""
    env = simpy.Environment()
    queue = simpy.Store(env)
    latency: list[float] = []

    def arrive():
        for a in arrivals_ms:
            yield env.timeout(a - env.now)
            queue.put(a)

    def serve():
        while True:
            a = yield queue.get()
            yield env.timeout(service_ms)
            latency.append(env.now - a)

    env.process(arrive())
    env.process(serve())
    env.run()
    return len(latency)


def md1_lean(arrivals_ms: list[float], service_ms: float) -> int:
    """The leanest SimPy M/D/1 loop: one process, which waits for the next arrival when
    idle and holds each request for the service time (no queue object)."""
    env = simpy.Environment()
    latency: list[float] = []

    def serve():
        for a in arrivals_ms:
            if a > env.now:
                yield env.timeout(a - env.now)
            yield env.timeout(service_ms)
            latency.append(env.now - a)

    env.process(serve())
    env.run()
    return len(latency)


def timed(fn: Callable[[], int]) -> tuple[int, float, float]:
    """(requests, wall s, CPU s) of one call."""
    t0, c0 = time.perf_counter(), time.process_time()
    n = fn()
    return n, time.perf_counter() - t0, time.process_time() - c0


def measure(rate: float, requests: int, seed: int, repeat: int) -> dict[str, dict]:
    """Best-of-``repeat`` (requests, wall, CPU, extra) per contender, runs interleaved."""
    profile = builtin_profile("cnn-16", max_batch=64)
    workload = Poisson(rate, requests / rate, Batching(max_batch=64, max_delay_ms=10.0))
    arrivals = arrival_times_ms(workload, np.random.default_rng([seed, 0]))  # what simulate draws for this seed
    service_ms = 0.5 * 1000.0 / rate
    print(f"workload: {workload.to_spec()} on cnn-16 [synthetic], 16 cores, seed {seed}; "
          f"{arrivals.size:,} requests; M/D/1 service {service_ms:g} ms (utilisation 0.5); best of {repeat}")
    best: dict[str, dict] = {}
    extra: dict[str, str] = {}

    def sim(policy: str) -> Callable[[], int]:
        def run() -> int:
            result = simulate(profile, 16, workload, policy, seed=seed, arrivals_ms=arrivals)
            extra[policy] = (f"{result.stats.batches:>8,} batches, "
                             f"{len(result.reconfigurations):>3} reconfigurations")
            return result.stats.requests
        return run

    contenders: dict[str, Callable[[], int]] = {p: sim(p) for p in POLICIES}
    contenders["M/D/1 loop"] = lambda: md1_store(arrivals.tolist(), service_ms)
    contenders["lean loop"] = lambda: md1_lean(arrivals.tolist(), service_ms)
    for _ in range(repeat):
        for name, fn in contenders.items():
            n, wall, cpu = timed(fn)
            old = best.get(name)
            best[name] = {"n": n, "wall": min(wall, old["wall"]) if old else wall,
                          "cpu": min(cpu, old["cpu"]) if old else cpu}
    for name, b in best.items():
        b["extra"] = extra.get(name, "")
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000, help="requests to simulate per load (about)")
    parser.add_argument("--rate", default="400,40", help="Poisson arrival rates, requests/s, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each contender; the best counts")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        rates = [float(x) for x in args.rate.split(",") if x.strip()]
    except ValueError:
        parser.error(f"--rate: expected numbers separated by commas, got {args.rate!r}")
    if args.requests < 1 or not rates or min(rates) <= 0 or args.repeat < 1:
        parser.error("--requests, --rate and --repeat must be positive")

    for rate in rates:
        best = measure(rate, args.requests, args.seed, args.repeat)
        for name, b in best.items():
            print(f"  {name:10s} {b['n']:>9,} requests {b['extra']:36s}: {b['wall']:6.2f} s wall "
                  f"({b['cpu']:6.2f} s CPU): {b['n'] / b['wall']:>11,.0f} requests/s "
                  f"({b['n'] / b['cpu']:>11,.0f} per CPU second)")
        a, loop, lean = best["packrat"], best["M/D/1 loop"], best["lean loop"]
        print(f"  adaptive (packrat) / 1,000,000 requests/s target (at 400 requests/s): "
              f"{a['n'] / a['wall'] / ADAPTIVE_TARGET_PER_S:.2f}x wall, {a['n'] / a['cpu'] / ADAPTIVE_TARGET_PER_S:.2f}x CPU")
        print(f"  adaptive (packrat) / M/D/1 loop of the same requests (target >= 1 at 40 requests/s): "
              f"{(a['n'] / a['wall']) / (loop['n'] / loop['wall']):.2f}x wall, "
              f"{(a['n'] / a['cpu']) / (loop['n'] / loop['cpu']):.2f}x CPU "
              f"(lean loop: {(a['n'] / a['cpu']) / (lean['n'] / lean['cpu']):.2f}x CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
