"""Soak: serve a stepping load for a long time while workers are killed (issue 29, item 15).

``packrat run --load`` for ``--minutes`` (default 10) on a closed loop whose batch size steps
between 2 and 8 every ``--step-s`` seconds (so the policy switches, by whatever kind of
switch suffices), one serving worker SIGKILLed every ``--kill-every-s`` seconds, the RSS of
the serving process and of every worker sampled every ``--sample-s`` seconds while the load is
served (VmRSS from /proc: cheap, unlike smaps; sampling stops when serving ends, before the
history is read back from its spool and checked). Prints, and exits 1 when one fails:

* requests lost (sent - answered) and answered twice: both 0;
* the history's verdict under the ``serving`` model: OK;
* the RSS of every process, the serving process included, after the warm-up (the first
  ``--warmup-s`` seconds; a replacement worker's own first ``--warmup-s``): max / min within
  ``--rss-tolerance`` (default 1.10). The serving process spools the history to disk as it
  is produced (``real_runner.serving_log``), so its memory does not grow with the run's
  length; its growth per 10,000 history operations is reported too.

Usage::

    .venv/bin/python benchmarks/soak.py [--minutes 10] [--profile tiny.json] [--json]
    .venv/bin/python benchmarks/soak.py --minutes 1        # what CI runs (tests/real_runner/test_soak_script.py)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def rss_kb(pid: int) -> int | None:
    """VmRSS of ``pid`` in KiB (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def step_load(seconds: float, step_s: float) -> str:
    """A closed loop alternating batches of 2 and 8 every ``step_s`` for ``seconds`` in all."""
    steps, t, k = [], 0.0, 0
    while t < seconds - 1e-9:
        d = min(step_s, seconds - t)
        steps.append(f"{2 if k % 2 == 0 else 8}@{d:g}s")
        t, k = t + d, k + 1
    return "closed:" + ",".join(steps)


class Sampler:
    """Kills a serving worker every ``kill_every_s`` and samples RSS every ``sample_s`` (a daemon
    thread started by :meth:`hook`, stopped by :meth:`stop`). ``samples``: (seconds since
    start, pid, role, KiB); ``kills``: (seconds, pid)."""

    def __init__(self, kill_every_s: float, sample_s: float) -> None:
        self.kill_every_s, self.sample_s = kill_every_s, sample_s
        self.samples: list[tuple[float, int, str, int]] = []
        self.kills: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._t0 = time.monotonic()

    def hook(self, rt) -> None:
        """``runtime_hook`` of ``real_runner.load.run_load``: start sampling ``rt``."""
        self._t0 = time.monotonic()
        threading.Thread(target=self._loop, args=(rt,), daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self, rt) -> None:
        next_kill = self.kill_every_s
        while not self._stop.wait(self.sample_s) and not rt.closed:  # closed: serving is over
            now = time.monotonic() - self._t0
            self._sample(rt, now)
            if self.kill_every_s > 0 and now >= next_kill:
                next_kill += self.kill_every_s
                self._kill(rt, now)

    def _sample(self, rt, now: float) -> None:
        for pid, role in [(os.getpid(), "server")] + [(p, "worker") for p in _pids(rt)]:
            kb = rss_kb(pid)
            if kb is not None:
                self.samples.append((now, pid, role, kb))

    def _kill(self, rt, now: float) -> None:
        pids = _pids(rt)
        if pids:
            try:
                os.kill(pids[0], signal.SIGKILL)
                self.kills.append((now, pids[0]))
            except ProcessLookupError:
                pass


def _pids(rt) -> list[int]:
    try:
        return list(rt.pids)
    except Exception:  # the runtime is closing
        return []


def rss_growth(samples, warmup_s: float) -> list[dict]:
    """Per process: first and last sample time, first, last, min and max RSS (KiB) after its
    own warm-up (``warmup_s`` after its first sample), and max / min; processes with fewer
    than 3 samples after their warm-up are left out. Pure."""
    by_pid: dict[int, list[tuple[float, str, int]]] = {}
    for t, pid, role, kb in samples:
        by_pid.setdefault(pid, []).append((t, role, kb))
    out = []
    for pid, rows in by_pid.items():
        start = rows[0][0] + warmup_s
        kept = [r for r in rows if r[0] >= start]
        if len(kept) < 3:
            continue
        kbs = [kb for _, _, kb in kept]
        out.append({"pid": pid, "role": rows[0][1], "from_s": kept[0][0], "to_s": kept[-1][0],
                    "first_kb": kbs[0], "last_kb": kbs[-1], "min_kb": min(kbs), "max_kb": max(kbs),
                    "ratio": max(kbs) / min(kbs)})
    return out


def rss_failures(growth: list[dict], tolerance: float) -> list[str]:
    """One line per process of ``growth`` (:func:`rss_growth`) whose RSS grew beyond
    ``tolerance`` (max / min) after its warm-up, and one when the serving process has no
    judged samples (too short a run for its warm-up). Pure."""
    failures = [] if any(g["role"] == "server" for g in growth) else [
        "the serving process has no RSS sample after its warm-up"]
    return failures + [f"{g['role']} {g['pid']} RSS grew {g['ratio']:.2f}x after its warm-up" for g in growth
                       if g["ratio"] > tolerance]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--step-s", type=float, default=20.0)
    ap.add_argument("--kill-every-s", type=float, default=60.0)
    ap.add_argument("--sample-s", type=float, default=5.0)
    ap.add_argument("--warmup-s", type=float, default=60.0)
    ap.add_argument("--rss-tolerance", type=float, default=1.10)
    ap.add_argument("--model", default="tiny-cnn")
    ap.add_argument("--cores", type=int, default=None)
    ap.add_argument("--profile", default=None, help="profile FILE or builtin:NAME (default: a quick one, measured first)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from packrat_sim.sweep import load_profile_spec
    from real_runner.load import LoadRequest, prepare_load, run_load

    seconds = args.minutes * 60.0
    setup = prepare_load(LoadRequest(model=args.model, load=step_load(seconds, args.step_s), cores=args.cores))
    sampler = Sampler(args.kill_every_s, args.sample_s)
    profile = load_profile_spec(args.profile) if args.profile else None
    try:
        result = run_load(setup, profile, check=True, runtime_hook=sampler.hook)
    finally:
        sampler.stop()
    rep = result.report
    growth = rss_growth(sampler.samples, args.warmup_s)
    server = [g for g in growth if g["role"] == "server"]
    ops = rep["history_operations"]
    summary = {
        "seconds": seconds, "load": setup.request.load, "kills": len(sampler.kills),
        "switches": [s["kind"] for s in rep["switches"]], "requests_sent": rep["requests_sent"],
        "requests_lost": rep["requests_sent"] - rep["requests_answered"], "answered_twice": rep["answered_twice"],
        "verdict": rep["check"]["verdict"], "history_operations": ops, "rss": growth,
        "server_kb_per_10k_operations": (None if not server or not ops else
                                         (server[0]["last_kb"] - server[0]["first_kb"]) * 1e4 / ops),
        "server_samples": [(t, kb) for t, _, role, kb in sampler.samples if role == "server"],
    }
    failures = []
    if summary["requests_lost"] or summary["answered_twice"]:
        failures.append(f"{summary['requests_lost']} requests lost, {summary['answered_twice']} answered twice")
    if summary["verdict"] != "ok":
        failures.append(f"history verdict {summary['verdict']}")
    failures += rss_failures(growth, args.rss_tolerance)
    summary["failures"] = failures
    _print(summary, args.json)
    return 1 if failures else 0


def _print(summary: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, indent=1))
        return
    print(f"soak     {summary['seconds']:.0f} s of {summary['load'][:60]}..., {summary['kills']} worker(s) killed, "
          f"{len(summary['switches'])} switch(es) ({', '.join(sorted(set(summary['switches']))) or 'none'})")
    print(f"requests sent {summary['requests_sent']}, lost {summary['requests_lost']}, answered twice "
          f"{summary['answered_twice']}; history {summary['history_operations']} operations: "
          f"{summary['verdict'].upper()}")
    for g in summary["rss"]:
        print(f"rss      {g['role']:<6} {g['pid']:>7}: {g['min_kb'] / 1024:7.1f} .. {g['max_kb'] / 1024:7.1f} MiB "
              f"({g['ratio']:.3f}x; first {g['first_kb'] / 1024:.1f}, last {g['last_kb'] / 1024:.1f}) "
              f"from {g['from_s']:.0f} s to {g['to_s']:.0f} s")
    if summary["server_kb_per_10k_operations"] is not None:
        print(f"server   {summary['server_kb_per_10k_operations'] / 1024:+.2f} MiB per 10,000 history operations "
              "(last - first sample after the warm-up; the history is spooled to disk)")
    print("PASS" if not summary["failures"] else "FAIL: " + "; ".join(summary["failures"]))


if __name__ == "__main__":
    sys.exit(main())
