"""`run --load --history` when things go wrong after or during the serving (issue 29, items 3
and 4): a history that cannot be written loses no report (exit 2, the report printed), and
Ctrl-C or SIGTERM writes the operations recorded so far, marked incomplete, checkable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from checker import check, read_history
from checker.history import History, Operation
from checker.linearizability import Verdict
from real_runner import load as load_mod
from real_runner.serving import ServingInterrupted
from tests.disk_full_helpers import fill_disk

REPO = Path(__file__).resolve().parents[2]
ARGS = ("run", "--model", "tiny-mlp", "--load", "closed:2@1s", "--cores", "1", "--profile", "builtin:cnn-2")


def _history(pending: bool = False) -> History:
    ops = [Operation(c, {"op": "infer", "batch": k, "size": 2}, {"epoch": 0, "digest": f"d{k}", "attempts": 1},
                     10 * k + c, 10 * k + c + 5) for k in range(3) for c in range(2)]
    if pending:
        ops.append(Operation(0, {"op": "infer", "batch": 9, "size": 2}, None, 100, None))
    return History(ops, model="serving")


def _served(history: History) -> dict:
    answered = sum(1 for op in history if op.ret is not None)
    return {"model": "tiny-mlp", "batches_sent": len(history), "batches_answered": answered, "batches_failed": 0,
            "answered_twice": 0, "requests_sent": 2 * len(history), "requests_answered": 2 * answered,
            "batch_latency_ms": None, "epochs": 1, "final_plan": "1 x 1t x 2", "reconfigurations": [],
            "switches": [], "faults": [], "request_latency_ms": None, "policy": "packrat",
            "initial_plan": "1 x 1t x 2", "decisions": [], "reconfigure_errors": [], "idle_skipped_s": 0.0,
            "history": history, "runtime": None}


@pytest.fixture
def no_workers(monkeypatch):
    """run_load serves a canned history instead of starting workers; ``interrupt(signum)``
    makes the next serve end as an interrupted one."""
    state: dict = {}

    def serve_load(*args, **kwargs):
        if "signum" in state:
            raise ServingInterrupted(state["signum"], _served(_history(pending=True)))
        return _served(_history())

    monkeypatch.setattr(load_mod, "serve_load", serve_load)
    return lambda signum: state.update(signum=signum)


# ---- item 3: a history that cannot be written does not lose the run


def test_a_full_disk_keeps_the_report_names_the_history_and_exits_2(cli, tmp_path, monkeypatch, no_workers):
    fill_disk(monkeypatch, tmp_path)
    hist = tmp_path / "h.json"
    code, out, err = cli(*ARGS, "--history", str(hist), "--check")
    assert code == 2 and "Traceback" not in err
    assert "batches  sent 6, answered 6" in out and "check    serving model: OK" in out
    errors = [line for line in err.splitlines() if line.startswith("packrat: error:")]
    assert len(errors) == 1 and str(hist) in errors[0] and "no space left" in errors[0]
    assert not hist.exists() and os.listdir(tmp_path) == []


def test_the_json_report_says_which_history_was_not_written(cli, tmp_path, monkeypatch, no_workers):
    fill_disk(monkeypatch, tmp_path)
    code, out, err = cli(*ARGS, "--history", str(tmp_path / "h.json"), "--json")
    report = json.loads(out)
    assert code == 2 and "no space left" in report["history_error"] and "history_file" not in report
    assert report["history_operations"] == 6


# ---- item 4: an interrupted load writes what was recorded, marked incomplete


def test_ctrl_c_while_serving_writes_the_recorded_history_marked_incomplete(cli, tmp_path, no_workers):
    no_workers(signal.SIGINT)
    hist = tmp_path / "h.json"
    code, out, err = cli(*ARGS, "--history", str(hist))
    assert code == 130 and "Traceback" not in err
    assert "SIGINT: wrote the 7 operations recorded so far" in err and "marked incomplete" in err
    obj = json.loads(hist.read_text())
    assert obj["incomplete"] is True and "SIGINT" in obj["incomplete_reason"] and "1 of them" in obj["incomplete_reason"]
    history = read_history(hist)  # today's reader takes it as it is
    assert len(history) == 7 and len(history.pending) == 1
    assert check(history, "serving").result is Verdict.OK


def test_write_load_history_marks_only_an_incomplete_history(tmp_path):
    load_mod.write_load_history(_history(), str(tmp_path / "full.json"))
    assert "incomplete" not in json.loads((tmp_path / "full.json").read_text())
    load_mod.write_load_history(_history(True), str(tmp_path / "cut.json"), incomplete="interrupted by SIGTERM")
    assert json.loads((tmp_path / "cut.json").read_text())["incomplete_reason"] == "interrupted by SIGTERM"


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def test_an_interruption_before_serving_began_leaves_an_empty_incomplete_history(cli, tmp_path, monkeypatch):
    def serve_load(*args, **kwargs):
        raise KeyboardInterrupt  # while the workers start

    monkeypatch.setattr(load_mod, "serve_load", serve_load)
    hist = tmp_path / "h.json"
    code, _, err = cli(*ARGS, "--history", str(hist))
    assert code == 130 and "SIGINT: wrote the 0 operations" in err
    assert json.loads(hist.read_text())["incomplete"] is True and len(read_history(hist)) == 0


@pytest.mark.slow
def test_sigterm_during_a_real_load_keeps_a_checkable_incomplete_history(tmp_path):
    hist = tmp_path / "h.json"
    proc = subprocess.Popen([sys.executable, "-m", "ui.cli.app", "run", "--model", "tiny-mlp", "--load", "closed:1@300s",
                             "--cores", "1", "--profile", "builtin:cnn-2", "--warmup", "0", "--history", str(hist)],
                            cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(_children(proc.pid)) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)  # the resource tracker, then the worker
        time.sleep(4)  # the worker warms up, then serves (earlier, the history is empty: still written)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert "Traceback" not in err, err[-3000:]
    assert proc.returncode == -signal.SIGTERM, err[-2000:]
    obj = json.loads(hist.read_text())
    assert obj["incomplete"] is True and "SIGTERM" in obj["incomplete_reason"]
    assert check(read_history(hist), "serving").result is Verdict.OK
