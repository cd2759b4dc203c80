"""Concurrent partitions, the first ILLEGAL, and many histories at once (issue 16), measured.

(a) A history shaped like Porcupine's 50-client kv test (50 clients, 10 keys, simulated store)
    whose first key "0" is a hard partition (26 concurrent appends and a read nobody could see) and
    with a few corrupted reads in other keys: time to ILLEGAL with the interleaved driver, against
    the old order (partitions one after another in order of appearance, emulated by checking each
    partition's sub-history in turn). Target: ILLEGAL in under 1 s.
(b) The 10k-operation partitioned kv history of ``benchmarks/check.py`` (and 100k): ``jobs=2``
    against ``jobs=1`` (medians of repeats), plus the worker-process path forced from the start,
    to show what processes cost on histories decided in about 0.1 s.
(c) 100 small histories in a directory: one ``packrat check DIR`` process (``--jobs 1``, and
    ``--jobs 2``, which hands the files left after 2 s to workers) against 100 separate
    ``packrat check FILE`` processes.

Run: ``.venv/bin/python benchmarks/check_parallel.py [--repeats 3] [--skip-c]``. Ratios are
measured side by side in one run; on a loaded machine, repeat.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from check import simulate  # noqa: E402

import checker.linearizability.api as check_api  # noqa: E402
from checker.history import History, Operation, write_history  # noqa: E402
from checker.linearizability import Verdict, check  # noqa: E402


def c50_bad(seed: int = 50, n_ops: int = 2000) -> History:
    """50 clients over 10 keys from a linearizable store, key "0" made hard, reads of three other
    keys corrupted."""
    base = simulate("kv", n_ops, clients=50, keys=10, seed=seed)
    rng = random.Random(seed)
    ops = list(base.operations)
    t_end = max(op.ret for op in ops)
    # Key "0" first (its first operation is the history's first), made hard: 26 concurrent appends
    # and a read of a value nobody appended.
    t0 = min(op.call for op in ops) - 1
    hard = [Operation(1000 + c, {"op": "append", "key": "0", "value": f"h{c} "}, None, t0 - 100, t0 - 50)
            for c in range(26)]
    hard.append(Operation(1099, {"op": "get", "key": "0"}, "never", t0 - 40, t0 - 30))
    corrupted = 0
    for i in rng.sample(range(len(ops)), len(ops)):
        op = ops[i]
        if op.input["op"] == "get" and op.input["key"] in ("3", "5", "7") and op.output and corrupted < 3:
            ops[i] = Operation(op.client, op.input, op.output + " corrupt", op.call, op.ret)
            corrupted += 1
    assert t_end > t0
    return History(hard + ops, model="kv")


def sequential_reference(history: History, timeout: float) -> tuple[str, float]:
    """The old order: each partition to the end, in order of appearance, until one is ILLEGAL."""
    t0 = time.perf_counter()
    by_key: dict = {}
    for op in history.operations:
        by_key.setdefault(op.input["key"], []).append(op)
    for ops in by_key.values():
        left = timeout - (time.perf_counter() - t0)
        if left <= 0:
            return "unknown", time.perf_counter() - t0
        r = check(History(ops), "kv", timeout=left)
        if r.result is Verdict.ILLEGAL:
            return "illegal", time.perf_counter() - t0
        if r.result is Verdict.UNKNOWN:
            return "unknown", time.perf_counter() - t0
    return "ok", time.perf_counter() - t0


def bench_a(timeout: float) -> None:
    h = c50_bad()
    print(f"(a) c50-bad-shaped kv history: {len(h)} operations, 10 keys, key '0' hard, 3 corrupted reads")
    for jobs in (1, 2):
        r = check(h, "kv", timeout=timeout, jobs=jobs)
        first = r.first_failed
        print(f"    interleaved, jobs={jobs}: {r.result.value.upper()} in {r.elapsed_s:.3f} s "
              f"(first failure: key {first.key if first else None!r}; {r.counts['not needed']} partitions "
              f"not needed; target < 1 s: {'met' if r.illegal and r.elapsed_s < 1 else 'NOT met'})")
    verdict, t = sequential_reference(h, timeout)
    print(f"    old order (one partition after another): {verdict.upper()} after {t:.3f} s")


def _median_check(h: History, jobs: int, repeats: int) -> tuple[float, str]:
    times, mode = [], ""
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = check(h, h.model, jobs=jobs, timeout=120)
        times.append(time.perf_counter() - t0)
        mode = r.mode
        assert r.ok, r.result
    return statistics.median(times), mode


def bench_b(repeats: int, sizes: list[int]) -> None:
    print(f"(b) partitioned kv (10 clients, 10 keys), median of {repeats}, wall time of check()")
    for n in sizes:
        h = simulate("kv", n, clients=10, keys=10, seed=n)
        t1, m1 = _median_check(h, 1, repeats)
        t2, m2 = _median_check(h, 2, repeats)
        saved = check_api.ESCALATE_AFTER_S
        check_api.ESCALATE_AFTER_S = 0.0
        try:
            tp, mp = _median_check(h, 2, repeats)
        finally:
            check_api.ESCALATE_AFTER_S = saved
        print(f"    {n:>7} ops: jobs=1 {t1:.3f} s ({m1}); jobs=2 {t2:.3f} s ({m2}), ratio {t1 / t2:.2f}x; "
              f"jobs=2 processes from the start {tp:.3f} s ({mp}), ratio {t1 / tp:.2f}x")


def bench_c(count: int = 100) -> None:
    exe = str(Path(sys.executable).with_name("packrat"))
    with tempfile.TemporaryDirectory() as d:
        for k in range(count):
            write_history(simulate("kv", 100, clients=5, keys=3, seed=k), Path(d) / f"h{k:03d}.json")
        t0 = time.perf_counter()
        one = subprocess.run([exe, "check", d, "--jobs", "1"], capture_output=True, text=True)
        t_one = time.perf_counter() - t0
        assert one.returncode == 0, one.stdout[-500:] + one.stderr
        t0 = time.perf_counter()
        pooled = subprocess.run([exe, "check", d, "--jobs", "2"], capture_output=True, text=True)
        t_pooled = time.perf_counter() - t0
        assert pooled.returncode == 0, pooled.stdout[-500:] + pooled.stderr
        t0 = time.perf_counter()
        for k in range(count):
            r = subprocess.run([exe, "check", str(Path(d) / f"h{k:03d}.json")], capture_output=True)
            assert r.returncode == 0
        t_many = time.perf_counter() - t0
    print(f"(c) {count} small kv histories: one `packrat check DIR --jobs 1` {t_one:.2f} s "
          f"(--jobs 2: {t_pooled:.2f} s); {count} separate "
          f"`packrat check FILE` {t_many:.2f} s; ratio {t_many / t_one:.1f}x "
          f"(start-up cost per process about {(t_many - t_one) / count * 1000:.0f} ms)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--skip-c", action="store_true", help="skip the 100-process comparison")
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    # (a) last: its old-order reference builds a large search cache, freed in the background
    # afterwards, which would slow whatever runs next.
    bench_b(args.repeats, [int(s) for s in args.sizes.split(",") if s])
    if not args.skip_c:
        bench_c()
    bench_a(args.timeout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
