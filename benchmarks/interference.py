"""Cost of planning under interference vs isolated planning, T=64 / B=1024.

Prints both planning times (median of repeats) and their ratio, for exact cores
(one table) and with idle cores allowed (one table per busy-core count), on the
synthetic ``cnn-64+interference`` profile, plus what the isolated plan really costs
under the interference model.

    .venv/bin/python benchmarks/interference.py [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import time

from packrat_sim.interference import optimize_with_interference
from packrat_sim.optimizer import OptimizerOptions, optimize
from packrat_sim.profile import builtin_profile


def timed(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    T, B = 64, 1024
    profile = builtin_profile(f"cnn-{T}+interference", max_batch=B)
    for label, exact in (("exact cores", True), ("idle cores allowed", False)):
        options = OptimizerOptions(exact_cores=exact)
        iso_s, _ = timed(lambda: optimize(profile, B, T, options), args.repeats)
        aware_s, result = timed(lambda: optimize_with_interference(profile, B, T, options), args.repeats)
        print(
            f"{label:<19} isolated {iso_s * 1e3:8.1f} ms   interference-aware {aware_s * 1e3:8.1f} ms   "
            f"ratio {aware_s / iso_s:6.1f}x   | isolated plan {result.isolated_plan.describe()} costs "
            f"{result.isolated_under_interference_ms:.1f} ms under interference, aware plan "
            f"{result.plan.describe()} {result.plan.predicted_ms:.1f} ms ({result.gain:.2f}x)"
        )


if __name__ == "__main__":
    main()
