"""Cost of planning under interference vs isolated planning, T=64 / B=1024.

Prints, for exact cores (one table) and with idle cores allowed (one table per busy-core
count), the planning times (median of repeats) of the isolated DP, of the DP under the
synthetic ``cnn-64+interference`` busy-cores model, and of the DP under the same model
extended with a curve of its own for every thread count (issue 27), with the ratios
aware / isolated and extended / busy-cores measured side by side in this run; plus what
the isolated plan really costs under each model.

    .venv/bin/python benchmarks/interference.py [--repeats N] [--cores T] [--batch B]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from packrat_sim.interference import optimize_with_interference
from packrat_sim.optimizer import OptimizerOptions, optimize
from packrat_sim.profile import Interference, Profile, ThreadCurve, builtin_profile

R = TypeVar("R")


def timed(fn: Callable[[], R], repeats: int) -> tuple[float, R]:
    """Median wall time (s) of ``repeats`` calls of ``fn`` and its last result."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def with_thread_curves(profile: Profile) -> Profile:
    """``profile`` whose busy-cores model gains a curve for every thread count: the base
    curve made 1% steeper per thread (wider instances suffer more), so every cell is scaled
    by its own factor."""
    model = profile.interference
    assert model is not None
    curves = tuple(
        ThreadCurve(t, tuple((k, 1.0 + (s - 1.0) * (1.0 + 0.01 * t)) for k, s in model.points))
        for t in profile.threads
    )
    return replace(profile, interference=Interference(points=model.points, curves=curves))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cores", type=int, default=64)
    parser.add_argument("--batch", type=int, default=1024)
    args = parser.parse_args()
    T, B = args.cores, args.batch
    base = builtin_profile(f"cnn-{T}+interference", max_batch=B)
    models = (("busy-cores", base), ("by-threads", with_thread_curves(base)))
    for label, exact in (("exact cores", True), ("idle cores allowed", False)):
        options = OptimizerOptions(exact_cores=exact)
        iso_s, _ = timed(lambda: optimize(base, B, T, options), args.repeats)  # noqa: B023 (called at once)
        print(f"{label}: isolated DP {iso_s * 1e3:.1f} ms")
        aware = {}
        for name, profile in models:
            aware[name], result = timed(lambda: optimize_with_interference(profile, B, T, options),  # noqa: B023
                                        args.repeats)
            print(
                f"  {name:<10} {aware[name] * 1e3:8.1f} ms ({aware[name] / iso_s:5.1f}x isolated)   "
                f"isolated plan {result.isolated_plan.describe()} costs {result.isolated_under_interference_ms:.1f} ms "
                f"under it, aware plan {result.plan.describe()} {result.plan.predicted_ms:.1f} ms ({result.gain:.2f}x)"
            )
        print(f"  by-threads / busy-cores: {aware['by-threads'] / aware['busy-cores']:.2f}x")


if __name__ == "__main__":
    main()
