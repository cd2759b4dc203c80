"""Planning and certifying under a co-run model at scale (issue 32), against isolated planning.

For the synthetic ``cnn-T+interference`` profile (T = 256, B = 4096 by default), with idle
cores allowed, prints side by side in one run (medians of ``--repeats`` runs):

* the isolated plan: ``best_plan`` without the co-run model (the DP on the isolated profile);
* the calibrated plan: ``best_plan`` under the model (branch and bound over the busy-thread
  count U, ``packrat_sim.interference.best_busy_plan``), and how many U it solved;
* its certificate: ``certify_under_interference`` (Z3 queries asked, and those the density
  bound refuted without Z3);
* the ratio (calibrated plan + certificate) / isolated plan. Issue 32's target: <= 3.

The same for the model extended with a curve per thread count (every cell scaled by its own
factor, the costliest form). ``--before`` also times the former search (one full DP per U,
``plan_every_busy_count``) and the former certificate (one Z3 query per U, none skipped),
once each since they are slow (about 40 s each at T = 256), and checks both searches return
the same plan.

    .venv/bin/python benchmarks/corun_planning.py [--cores 256] [--batch 4096] [--repeats 3] [--before]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import packrat_sim.interference as interference  # noqa: E402
from benchmarks.interference import with_thread_curves  # noqa: E402
from checker.allocation import (  # noqa: E402
    Result,
    _instance_caps,
    _problem,
    _query_total_below,
    certify_under_interference,
)
from packrat_sim.optimizer import OptimizerOptions  # noqa: E402
from packrat_sim.plan import Plan  # noqa: E402
from packrat_sim.predictor import Predictor, best_plan  # noqa: E402
from packrat_sim.profile import Profile, builtin_profile  # noqa: E402

R = TypeVar("R")
TARGET = 3.0
TIMEOUT_S = 600.0


def timed(fn: Callable[[], R], repeats: int) -> tuple[float, R]:
    """Median wall time (s) of ``repeats`` calls of ``fn`` and its last result."""
    times = []
    result = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result  # type: ignore[return-value]


def counting_solved(run: Callable[[], R]) -> tuple[R, int]:
    """``run()`` and how many busy counts the co-run search solved meanwhile."""
    solved: list[int] = []
    real = interference._busy_plan

    def counted(*args, **kwargs):
        solved.append(args[2])
        return real(*args, **kwargs)

    interference._busy_plan = counted
    try:
        return run(), len(solved)
    finally:
        interference._busy_plan = real


def former_certificate(profile: Profile, batch: int, cores: int, plan: Plan, options: OptimizerOptions) -> str:
    """The certificate as it was before issue 32: one Z3 query per busy count U (and cap k) on
    ``corun_profile(profile, U)``, none skipped. Returns the verdict ("optimal", ...)."""
    latency = Predictor(profile).plan_ms(plan)
    assert latency is not None
    deadline = time.perf_counter() + TIMEOUT_S
    exact = replace(options, exact_cores=True)
    for busy in [cores] if options.exact_cores else range(1, cores + 1):
        scaled = interference.corun_profile(profile, busy)
        for k, cost in _instance_caps(profile, batch, cores, options):
            sub = _problem(scaled, batch, busy, replace(exact, max_instances=k))
            status = _query_total_below(sub, cost, latency, deadline).status
            if status != "unsat":
                return "not_optimal" if status == "sat" else "unknown"
    return "optimal"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before", action="store_true", help="also time the former search and certificate (slow)")
    args = parser.parse_args()
    T, B = args.cores, args.batch
    base = builtin_profile(f"cnn-{T}+interference", max_batch=B)
    options = OptimizerOptions(exact_cores=False)
    print(f"T={T} B={B}, idle cores allowed, medians of {args.repeats} runs (seconds)")
    ok = True
    for label, profile in (("busy-cores", base), ("by-threads", with_thread_curves(base))):
        iso_s, iso = timed(lambda: best_plan(Predictor(profile, interference=False), B, T, options),  # noqa: B023
                           args.repeats)
        plan_s, (plan, solved) = timed(
            lambda: counting_solved(lambda: best_plan(Predictor(profile), B, T, options)), args.repeats  # noqa: B023
        )
        cert_s, cert = timed(lambda: certify_under_interference(profile, B, T, plan, options, TIMEOUT_S),  # noqa: B023
                             args.repeats)
        ratio = (plan_s + cert_s) / iso_s
        ok = ok and ratio <= TARGET and cert.result is Result.OPTIMAL
        print(f"{label}:")
        print(f"  isolated plan     {iso_s:8.3f}   {iso.describe()} {iso.predicted_ms:.2f} ms (isolated)")
        print(f"  calibrated plan   {plan_s:8.3f}   {plan.describe()} {plan.predicted_ms:.2f} ms, "
              f"U = {plan.threads_used}; {solved} of {T} busy counts solved")
        print(f"  certificate       {cert_s:8.3f}   {cert.result.value}: {cert.stats.queries} Z3 queries, "
              f"{cert.stats.bounded} refuted by the density bound")
        print(f"  (plan + certificate) / isolated plan = {ratio:.2f}x   (target <= {TARGET:g}x)")
        if args.before:
            old_s, old = timed(lambda: interference.plan_every_busy_count(profile, B, T, options), 1)  # noqa: B023
            same = old is not None and old[0].instances == plan.instances and old[0].predicted_ms == plan.predicted_ms
            old_cert_s, verdict = timed(lambda: former_certificate(profile, B, T, plan, options), 1)  # noqa: B023
            ok = ok and same and verdict == "optimal"
            print(f"  before: plan      {old_s:8.3f}   (one DP per busy count; same plan: {same})")
            print(f"  before: certify   {old_cert_s:8.3f}   ({verdict}, one Z3 query per busy count)")
            print(f"  before: (plan + certificate) / isolated plan = {(old_s + old_cert_s) / iso_s:.1f}x")
    print("target met" if ok else "TARGET MISSED")


if __name__ == "__main__":
    main()
