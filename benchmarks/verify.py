"""Certification time of Z3 (checker.allocation) on the built-in profiles, B = 1024.

For T = 16, 64, 128 cores and the cnn / transformer families (synthetic profiles), prints
the DP plan and its time, the time to certify it (one Z3 query), the time Z3 alone needs
to find the optimum (bisection, no DP), the verdicts, and the ratio certify / DP measured
in the same run. Also the same with user constraints at T = 64 (cores per socket, a cap
on instances). The target of issue 6 is T=64/B=1024 certified in under 5 s.

Run: .venv/bin/python benchmarks/verify.py
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from checker.allocation import Result, certify, optimum  # noqa: E402
from packrat_sim.optimizer import OptimizerOptions, optimize  # noqa: E402
from packrat_sim.plan import fat  # noqa: E402
from packrat_sim.profile import builtin_profile  # noqa: E402

BATCH = 1024
TIMEOUT_S = 120.0
TARGET_S = 5.0


def row(name: str, cores: int, options: OptimizerOptions, label: str) -> bool:
    profile = builtin_profile(f"{name}-{cores}", max_batch=BATCH)
    t0 = time.perf_counter()
    plan = optimize(profile, BATCH, cores, options)
    dp_s = time.perf_counter() - t0
    cert = certify(profile, BATCH, cores, plan, options, timeout_s=TIMEOUT_S)
    found = optimum(profile, BATCH, cores, options, timeout_s=TIMEOUT_S)
    agree = found.result is Result.OPTIMAL and found.latency_ms == plan.predicted_ms
    refuted = certify(profile, BATCH, cores, fat(BATCH, cores), OptimizerOptions(), timeout_s=TIMEOUT_S)
    print(
        f"{profile.label():<27} T={cores:<4} {label:<22} {plan.describe():<28} {plan.predicted_ms:9.2f} ms  "
        f"DP {dp_s:7.3f} s  certify {cert.elapsed_s:6.3f} s {cert.result.name:<11} "
        f"({cert.stats.variables:>3} vars)  optimum {found.elapsed_s:6.3f} s {'agrees' if agree else 'DISAGREES'} "
        f"({found.stats.queries} queries)  fat {refuted.result.name} in {refuted.elapsed_s:.3f} s  "
        f"certify/DP {cert.elapsed_s / max(dp_s, 1e-9):6.2f}x",
        flush=True,
    )
    return cert.result is Result.OPTIMAL and agree and (cores != 64 or cert.elapsed_s < TARGET_S)


def main() -> int:
    print(f"Z3 certification, batch B={BATCH}; profiles are SYNTHETIC (formula, not measurements)")
    ok = True
    for cores in (16, 64, 128):
        for name in ("cnn", "transformer"):
            ok &= row(name, cores, OptimizerOptions(), "exact cores")
            ok &= row(name, cores, OptimizerOptions(exact_cores=False), "idle cores allowed")
    for name in ("cnn", "transformer"):
        ok &= row(name, 64, OptimizerOptions(cores_per_socket=16), "4 sockets of 16")
        ok &= row(name, 64, OptimizerOptions(max_instances=4), "at most 4 instances")
        ok &= row(name, 64, OptimizerOptions(cores_per_socket=32, max_instances=3), "2 sockets, <= 3 inst.")
    print(f"all certified OPTIMAL, Z3's own optimum equal to the DP's, T=64 under {TARGET_S:g} s: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
