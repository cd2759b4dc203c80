"""The serving runtime: online reconfiguration under load, worker kills, aborted starts, history."""

from __future__ import annotations

import json
import os
import signal
import threading

import pytest

from checker import check, read_history, write_history
from checker.linearizability import Verdict
from packrat_sim.estimator import EstimatorConfig
from packrat_sim.plan import Instance, Plan, fat, thin
from real_runner.executor import WorkerError
from real_runner.serving import LoadError, ServingRuntime, parse_load, serve_load
from tests.real_runner.rr_helpers import needs_two_cpus

pytestmark = needs_two_cpus


def small_planner(batch: int):
    """Thin for small batches, fat for large ones: two different plans on 2 cores."""
    return thin(batch, 2) if batch <= 4 else fat(batch, 2)


def test_a_closed_loop_schedule_parses_into_batch_size_steps():
    load = parse_load("closed:8@20s,32@500ms,8@1min")
    assert load.kind == "closed"
    assert load.steps == ((8, 20.0), (32, 0.5), (8, 60.0))
    assert load.duration_s == pytest.approx(80.5)
    assert load.max_batch == 32
    assert parse_load("closed:8@1s", clients=3, think_s=0.5) == parse_load("closed:8@1s", 3, 0.5)
    assert parse_load("closed:8@1s", clients=3, think_s=0.5).think_s == 0.5


def test_an_open_loop_workload_spec_is_accepted_as_a_load():
    load = parse_load("poisson:rate=100/s,duration=2s")
    assert load.kind == "open" and load.duration_s == 2.0


@pytest.mark.parametrize("bad", ["closed:0@2s", "x:2s", "8:-1s", "closed:8@0s", "nonsense"])
def test_a_bad_load_spec_is_rejected_naming_it(bad):
    with pytest.raises(LoadError):
        parse_load(bad)


def test_a_step_in_the_load_reconfigures_online_and_every_batch_is_answered_once(tmp_path):
    cfg = EstimatorConfig(alpha=1.0, window=2, interval_ms=100.0, max_batch=64)
    report = serve_load("tiny-cnn", parse_load("closed:4@1500ms,16@10s", think_s=0.02), small_planner, estimator=cfg, window_s=1.0)
    assert report["batches_sent"] == report["batches_answered"] > 0
    assert report["requests_sent"] == report["requests_answered"]
    assert report["answered_twice"] == 0 and report["batches_failed"] == 0
    ok = [r for r in report["reconfigurations"] if r["ok"]]
    assert ok, report["reconfigurations"]
    first = ok[0]
    assert (first["from_plan"], first["to_plan"]) == ("2 x 1t x 2", "1 x 2t x 16")
    assert first["reconfigure_ms"] > 0 and first["drain_ms"] >= 0
    assert first["kind"] == "retarget" and first["oversubscribed_threads"] == 0  # warm workers, in place
    switch = report["switches"][0]
    assert switch["kind"] == "retarget" and switch["measured_ms"] > 0 and switch["priced_ms"] is None
    assert len(switch["retargeted"]) == 1 and len(switch["parked"]) == 1 and switch["spawned"] == []
    assert report["request_latency_ms"]["n"] == report["requests_answered"]  # closed loop: one per input
    hist = report["history"]
    assert check(hist, "serving").result is Verdict.OK
    epochs = {op.output["epoch"] for op in hist if op.input["op"] == "infer"}
    assert {0, 1} <= epochs
    path = write_history(hist, tmp_path / "h.json")
    assert json.loads(path.read_text())["schema"] == "packrat.history/1"
    assert check(read_history(path), "serving").result is Verdict.OK


@pytest.fixture(scope="module")
def runtime():
    kill = {}

    def hook(epoch, pool, batch_id, attempt):
        if batch_id == kill.get("batch") and attempt == 1:
            threading.Timer(0.005, os.kill, (pool.pids[0], signal.SIGKILL)).start()

    rt = ServingRuntime("tiny-cnn", thin(8, 2), dispatch_hook=hook, standby=0)
    rt.kill = kill
    with rt:
        yield rt


def test_a_worker_killed_mid_batch_is_replaced_and_the_batch_answered_exactly_once(runtime):
    runtime.infer(8)
    before = len(runtime.faults)
    # the victim is named before it is submitted (the hook reads it at dispatch), and it is 32
    # runs of the pool's batch of 8, so the kill 5 ms after dispatch lands while it runs
    runtime.kill["batch"] = runtime._next_id
    rec, done = runtime.submit(256, client=1)
    assert done.wait(120)
    assert rec.error is None and rec.attempts == 2
    assert len(runtime.faults) == before + 1 and "died" in runtime.faults[-1]["error"]
    assert runtime.infer(8)["epoch"] == 0  # the replacement keeps serving the same epoch
    ops = [op for op in runtime.history() if op.input["op"] == "infer" and op.input["batch"] == rec.id]
    assert len(ops) == 1 and ops[0].output["attempts"] == 2
    assert check(runtime.history(), "serving").result is Verdict.OK


def test_a_respawn_whose_process_fails_to_start_aborts_and_the_old_epoch_keeps_serving(runtime):
    epoch, plan, pids = runtime.epoch, runtime.plan, runtime.pids
    three = Plan((Instance(1, 3), Instance(1, 3), Instance(1, 2)), 8, 3)  # one worker more than there are
    assert runtime.pool.kind_of(three) == "respawn"
    with pytest.raises(WorkerError):
        runtime.reconfigure(three, start_timeout=0.01)
    assert runtime.pids == pids and runtime.standby == 0
    assert runtime.epoch == epoch and runtime.plan == plan
    assert runtime.reconfigurations[-1].ok is False and runtime.reconfigurations[-1].error
    assert runtime.infer(4)["epoch"] == epoch
    hist = runtime.history()
    assert not [op for op in hist if op.input["op"] == "reconfigure"]  # it never took effect
    assert all(op.ret is not None for op in hist)  # no request vanished
    assert check(hist, "serving").result is Verdict.OK


def test_a_manual_reconfigure_moves_to_the_next_epoch_and_later_batches_run_there(runtime):
    pids = set(runtime.pids)
    e = runtime.reconfigure(fat(8, 2))
    assert e == runtime.epoch and runtime.plan == fat(8, 2)
    assert runtime.reconfigurations[-1].kind == "retarget" and set(runtime.pids) < pids  # a warm worker, in place
    assert runtime.standby == 1  # the other one parked
    assert runtime.infer(20)["epoch"] == e  # 20 inputs on a pool of 8: three runs, one epoch
    assert check(runtime.history(), "serving").result is Verdict.OK


@pytest.mark.slow
def test_under_churn_every_batch_is_answered_exactly_once_and_the_history_is_linearizable():
    from real_runner.serving import churn

    rep = churn("tiny-mlp", [thin(4, 2), fat(4, 2), fat(2, 2)], reconfigurations=3, kills=2)
    assert rep["batches_sent"] == rep["batches_answered"] and rep["batches_failed"] == 0
    assert rep["answered_twice"] == 0
    assert rep["epochs"] == 4 and len(rep["faults"]) == 2 and rep["retried_batches"] == 2
    assert rep["verdict"] == "ok"


@pytest.mark.slow
def test_open_loop_poisson_requests_are_aggregated_into_batches_and_all_answered():
    load = parse_load("poisson:rate=200/s,duration=2s,max_batch=16")
    report = serve_load("tiny-mlp", load, lambda b: thin(b, 2) if b > 1 else fat(1, 2))
    assert report["batches_sent"] == report["batches_answered"] > 0
    assert report["requests_sent"] == report["requests_answered"] == report["request_latency_ms"]["n"]
    assert check(report["history"], "serving").result is Verdict.OK


# ------------------------------------------------------- the packrat policy, idle time


class _FakeRuntime:
    """Stands in for ServingRuntime in the open-loop generator: records each batch."""

    def __init__(self):
        self.backlog = 0
        self.batches = []

    def infer(self, size, client=0):
        self.batches.append((size, self.backlog))
        return {"epoch": 0}


def test_an_idle_gap_of_1e300_ms_in_an_open_loop_trace_is_skipped_not_waited(tmp_path):
    import time

    from real_runner.serving import _open_loop

    trace = tmp_path / "gap.csv"
    trace.write_text("0\n0\n1\n1e300\n1e300\n")
    load = parse_load(f"trace:{trace},unit=ms")
    rt, lat, skipped = _FakeRuntime(), [], []
    done = threading.Event()
    th = threading.Thread(target=lambda: (_open_loop(rt, load, time.monotonic(), threading.Event(), 0, lat, skipped),
                                          done.set()), daemon=True)
    th.start()
    assert done.wait(60), "the open loop waited for the gap instead of skipping it"
    assert sum(n for n, _ in rt.batches) == 5 and len(lat) == 5
    assert sum(skipped) == pytest.approx(1e297, rel=1e-6)  # seconds
    assert max(lat) < 60_000  # latencies do not include the skipped idle time


@pytest.mark.slow
def test_serve_load_with_the_packrat_policy_starts_with_the_plan_for_the_first_batch():
    from packrat_sim.policy import PlanCatalog, first_plan
    from packrat_sim.profile import builtin_profile

    catalog = PlanCatalog(builtin_profile("cnn-2"), 2, 4, execution="chunks")
    load = parse_load("closed:4@1s")
    report = serve_load("tiny-mlp", load, small_planner, catalog=catalog, warmup=1)
    assert report["policy"] == "packrat"
    assert report["initial_plan"] == catalog.plans[first_plan(catalog, 4)].describe()
    assert report["batches_sent"] == report["batches_answered"] > 0
    assert report["idle_skipped_s"] == 0.0
    assert check(report["history"], "serving").result is Verdict.OK
