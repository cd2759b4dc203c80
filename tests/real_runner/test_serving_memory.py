"""The serving runtime's memory does not grow with the batches it answers (issue 29, item
15): the history goes to a spool on disk, so what stays in memory is what is in flight; the
history, the report and the batch records read back from it are what they were."""

from __future__ import annotations

import gc

from checker import check
from checker.history import Operation
from checker.linearizability import Verdict
from packrat_sim.plan import fat, thin
from real_runner.serving import BatchRecord, ServingRuntime, summarize
from tests.real_runner.rr_helpers import needs_two_cpus

pytestmark = needs_two_cpus


def _records_alive() -> int:
    """Batch records and history operations alive in this process."""
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) in (BatchRecord, Operation))


def _serve(rt: ServingRuntime, batches: int) -> None:
    for k in range(batches):
        rt.infer(1 + k % 2, client=k % 2)


def test_the_runtime_keeps_no_record_in_memory_per_batch_it_answered():
    with ServingRuntime("tiny-mlp", thin(2, 2), standby=0, max_batch=2) as rt:
        _serve(rt, 20)
        before = _records_alive()
        _serve(rt, 300)
        after = _records_alive()
        assert after <= before, f"{after - before} batch records or operations more after 300 more batches"
        assert len(rt.formed) == 320 and rt.formed[319:] and rt.formed.kept <= 4096


def test_the_history_read_back_holds_every_batch_and_reconfigure_in_order():
    with ServingRuntime("tiny-mlp", thin(2, 2), standby=0, max_batch=2) as rt:
        _serve(rt, 30)
        rt.reconfigure(fat(2, 2))
        _serve(rt, 30)
    history = rt.history()
    infers = [op for op in history if op.input["op"] == "infer"]
    assert [op.input["batch"] for op in infers] == list(range(60))
    assert [op.output["epoch"] for op in infers] == [0] * 30 + [1] * 30
    assert [op.input["op"] for op in history].count("reconfigure") == 1
    assert check(history, "serving").result is Verdict.OK
    assert [(b.id, b.size, b.epoch) for b in rt.batches] == [(k, 1 + k % 2, k // 30) for k in range(60)]
    report = summarize(rt)
    assert report["batches_sent"] == report["batches_answered"] == 60 and report["answered_twice"] == 0
    assert report["requests_answered"] == 90 and report["batch_latency_ms"]["n"] == 60
    assert len(report["switches"]) == 1
