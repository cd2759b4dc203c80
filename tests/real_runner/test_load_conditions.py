"""`run --load` records what the machine was doing while it served, through the library's one
way to measure under watch (``real_runner.conditions.watched``): the probe is started before
the serving and stopped after it, and the report's ``conditions`` carry its note. No worker
runs: the serving returns a canned history and the probe reports what it is told."""

from __future__ import annotations

import json

from checker.history import History, Operation
from real_runner import conditions as conditions_mod
from real_runner import load as load_mod
from real_runner.conditions import measurement_note
from tests.conditions_fakes import BUSY, probe_class

ARGS = ("run", "--model", "tiny-mlp", "--load", "closed:2@1s", "--cores", "1", "--profile", "builtin:cnn-2", "--json")


def _served() -> dict:
    history = History([Operation(0, {"op": "infer", "batch": k, "size": 2}, {"epoch": 0, "digest": f"d{k}", "attempts": 1},
                                 10 * k, 10 * k + 5) for k in range(2)], model="serving")
    return {"model": "tiny-mlp", "batches_sent": 2, "batches_answered": 2, "batches_failed": 0, "answered_twice": 0,
            "requests_sent": 4, "requests_answered": 4, "batch_latency_ms": None, "epochs": 1,
            "final_plan": "1 x 1t x 2", "reconfigurations": [], "switches": [], "faults": [],
            "request_latency_ms": None, "policy": "packrat", "initial_plan": "1 x 1t x 2", "decisions": [],
            "reconfigure_errors": [], "idle_skipped_s": 0.0, "history": history, "runtime": None}


def test_a_load_served_on_a_busy_machine_reports_the_busy_note_seen_around_the_serving(cli, monkeypatch):
    events: list[str] = []

    def serve_load(*args, **kwargs):
        events.append("served")
        return _served()

    monkeypatch.setattr(conditions_mod, "ConditionsProbe", probe_class(BUSY, events))
    monkeypatch.setattr(load_mod, "serve_load", serve_load)
    code, out, err = cli(*ARGS)
    assert code == 0, err
    assert events == ["probe started", "served", "probe stopped"]
    assert json.loads(out)["conditions"] == dict(BUSY.to_json(), note=measurement_note(BUSY))
