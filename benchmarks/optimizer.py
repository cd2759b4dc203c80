"""Optimizer speed: the vectorised threshold sweep vs Packrat's direct four-loop recurrence.

Prints, on the same profile in the same run, the table-building time of both for
T=16/B=1024 and their ratio (target >= 100x), then our time alone for T=64/B=1024 and
T=256/B=4096 (target < 2 s). Medians of repeats; synthetic builtin profiles.

    .venv/bin/python benchmarks/optimizer.py [--repeats N] [--skip-direct]
"""

from __future__ import annotations

import argparse
import statistics
import time

from packrat_sim.optimizer import OptimizerOptions, PlanTable, direct_table
from packrat_sim.profile import builtin_profile


def timed(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs, in seconds."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-direct", action="store_true", help="skip the slow four-loop reference")
    args = parser.parse_args()

    for mode, exact in (("exact cores", True), ("idle cores allowed", False)):
        options = OptimizerOptions(exact_cores=exact)
        print(f"-- {mode}")
        profile = builtin_profile("cnn-16", max_batch=1024)
        ours = timed(lambda: PlanTable(profile, 16, 1024, options), args.repeats)
        line = f"T=16  B=1024  sweep {ours * 1e3:9.1f} ms"
        if not args.skip_direct:
            direct = timed(lambda: direct_table(profile, 16, 1024, options), 1)
            line += f"   direct four-loop {direct:7.2f} s   ratio {direct / ours:8.0f}x (target >= 100x)"
        print(line, flush=True)
        for T, B in ((64, 1024), (256, 4096)):
            profile = builtin_profile(f"cnn-{T}", max_batch=B)
            ours = timed(lambda: PlanTable(profile, T, B, options), args.repeats)
            target = "  (target < 2 s)" if T == 256 else ""
            print(f"T={T:<3} B={B:<5} sweep {ours * 1e3:9.1f} ms{target}", flush=True)


if __name__ == "__main__":
    main()
