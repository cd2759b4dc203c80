"""`run_bench` watches the machine while it measures: its report carries ``conditions`` with
the one busy-machine (or far-off-prediction) line as ``note``. No worker runs: the interleaved
measurement is replaced by fixed samples and the probe by one that reports what it is told."""

from __future__ import annotations

import pytest

import real_runner.bench as bench_mod
from packrat_sim.predictor import Predictor
from packrat_sim.profile import builtin_profile
from tests.conditions_fakes import BUSY, QUIET, FakeProbe
from real_runner.topology import LogicalCpu, Topology

PROFILE = builtin_profile("cnn-4", max_batch=8)
FOUR_CPUS = Topology(tuple(LogicalCpu(0, i, i) for i in range(4)), "test CPU")


@pytest.fixture
def events(monkeypatch):
    """Every plan measures its prediction (1 ms without one), batch 4's five times it; returns
    the log of probe and measurement events."""
    log: list[str] = []
    factor = {4: 5.0}
    predictor = Predictor(PROFILE)

    def run_interleaved(model, plans, batch, rounds, topo, seed, warmup, block=1):
        log.append(f"measured batch {batch}")
        return [[factor.get(batch, 1.0) * (predictor.plan_ms(p) or 1.0)] * rounds for p in plans]

    monkeypatch.setattr(bench_mod, "_run_interleaved", run_interleaved)
    return log


def _bench(batches, probe=None):
    return bench_mod.run_bench("tiny-cnn", batches, cores=4, iterations=3, profile=PROFILE, topology=FOUR_CPUS,
                               probe=probe)


def test_a_bench_on_a_busy_machine_carries_the_busy_note_in_its_conditions(events):
    rep = _bench([1], FakeProbe(BUSY, events))
    conditions = rep["conditions"]
    assert conditions == dict(BUSY.to_json(), note=conditions["note"])
    assert conditions["busy"] is True
    assert conditions["note"].startswith("the machine was busy (load average 9.0 on 2 CPUs")


def test_the_probe_watches_the_whole_measurement(events):
    _bench([1, 2], FakeProbe(QUIET, events))
    assert events == ["probe started", "measured batch 1", "measured batch 2", "probe stopped"]


def test_the_note_names_the_batch_furthest_off_its_prediction(events):
    rep = _bench([1, 4], FakeProbe(QUIET, events))
    far = rep["batches"][1]
    note = rep["conditions"]["note"]
    assert f"measured {far['optimizer_ms']:.2f} ms is 5.00x the predicted {far['optimizer_predicted_ms']:.2f} ms" in note
    assert "on a quiet machine" in note


def test_a_quiet_bench_close_to_its_predictions_has_no_note(events):
    assert _bench([1, 2], FakeProbe(QUIET, events))["conditions"]["note"] is None


def test_without_a_probe_the_bench_watches_this_machine_itself(events):
    conditions = _bench([1])["conditions"]
    assert conditions["cpus"] >= 1 and conditions["seconds"] > 0
    assert set(conditions) == {"loadavg_1m", "cpus", "runq_wait_ms_per_s", "seconds", "busy", "note"}


def test_conditions_without_any_prediction_judge_the_machine_alone():
    rows = [{"batch": 1, "optimizer_ms": 3.0, "optimizer_predicted_ms": None}]
    assert bench_mod.conditions_json(QUIET, rows)["note"] is None
    assert bench_mod.conditions_json(BUSY, rows)["note"].startswith("the machine was busy")
