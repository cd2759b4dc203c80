"""Workers of every pool end within 2 s of their parent's death, quietly (issue 29, item 13):
`explore --workers 2` and `sweep --workers 2` killed with SIGTERM or SIGKILL leave no worker
computing on, and nothing (no BrokenPipe traceback) on the terminal they shared."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXPLORE = ("explore", "--protocol", "register", "--strategy", "random", "--max-schedules", "100000000",
           "--param", "writes=3", "--param", "reads=3", "--workers", "2")


def _descendants(pid: int) -> list[int]:
    try:
        kids = [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return [k for kid in kids for k in (kid, *_descendants(kid))]


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _busy_workers(pid: int, deadline_s: float = 90) -> list[int]:
    """The pids of the processes ``pid`` started once two of them use CPU (the workers)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        procs = _descendants(pid)
        busy = []
        for p in procs:
            try:
                fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[11]) + int(fields[12]) > 20:  # utime + stime, in clock ticks
                busy.append(p)
        if len(busy) >= 2 and len(procs) >= 4:  # forkserver, resource tracker and the workers
            return procs
        time.sleep(0.2)
    pytest.fail(f"no two busy workers under pid {pid} within {deadline_s} s")


@pytest.mark.slow
@pytest.mark.parametrize("verb, sig", [("explore", signal.SIGTERM), ("explore", signal.SIGKILL), ("sweep", signal.SIGTERM)],
                         ids=["explore-SIGTERM", "explore-SIGKILL", "sweep-SIGTERM"])
def test_workers_end_quietly_within_2_s_of_their_parents_death(tmp_path, verb, sig):
    argv = EXPLORE if verb == "explore" else (
        "sweep", "--axis", "profile=builtin:cnn-16", "--axis", "cores=4,8",
        "--axis", "workload=poisson:rate=50..2000/50,duration=60s", "--out", str(tmp_path / "o"), "--workers", "2")
    proc = subprocess.Popen([sys.executable, "-m", "ui.cli.app", *argv], cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        procs = _busy_workers(proc.pid)
        os.kill(proc.pid, sig)
        proc.wait(timeout=30)
        dead_at = time.monotonic()
        while any(_running(p) for p in procs) and time.monotonic() - dead_at < 10:
            time.sleep(0.05)
        left = [p for p in procs if _running(p)]
        took = time.monotonic() - dead_at
        _, err = proc.communicate(timeout=30)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        for p in _descendants(proc.pid):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()
    assert not left and took <= 2.0, f"{left} still running {took:.1f} s after the parent died"
    assert "Traceback" not in err and "BrokenPipe" not in err, err[-3000:]
