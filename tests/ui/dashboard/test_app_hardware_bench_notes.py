"""Hardware page (AppTest): the benchmark shows the busy-machine note that
``real_runner.bench.run_bench`` records in its report's ``conditions``."""

from __future__ import annotations

import pytest

from real_runner.conditions import Conditions, measurement_note
from tests.conditions_fakes import BUSY, QUIET



def _row(b: int) -> dict:
    return {"batch": b, "fat_ms": 10.0 * b, "thin_ms": 6.0 * b, "optimizer": f"2 x 1t x {b}", "optimizer_ms": 5.0 * b,
            "oracle_best": f"2 x 1t x {b}", "oracle_ms": 5.0 * b, "speedup_optimizer_vs_fat": 2.0, "regret_pct": 0.0,
            "optimizer_predicted_ms": 5.0 * b}


def _conditions(c: Conditions) -> dict:
    return dict(c.to_json(), note=measurement_note(c))


@pytest.fixture
def bench_under(monkeypatch):
    """Factory: ``real_runner.bench.run_bench`` faked, the k-th batch size measured under the
    k-th given conditions; the page's job (``jobs.bench_steps``) is the real one."""
    monkeypatch.setenv("PACKRAT_UI_JOBS", "thread")  # the fake lives in this process only
    from real_runner import bench

    def under(*seen: Conditions) -> None:
        calls = iter(seen)

        def run_bench(model, batches, *, cores=None, iterations=5, **kw):
            return {"batches": [_row(b) for b in batches], "conditions": _conditions(next(calls))}

        monkeypatch.setattr(bench, "run_bench", run_bench)

    return under


def _run_bench(at, batches: str):
    at.text_input(key="hw.bench.batches").set_value(batches)
    at.button(key="hw.btn.bench").click().run()
    return at


def test_the_benchmark_shows_the_busy_machine_note_of_the_batch_measured_under_load(open_page, h, bench_under):
    bench_under(QUIET, BUSY)
    at = _run_bench(open_page("hardware"), "1,2")
    h.no_errors(at)
    warnings = [w.value for w in at.warning]
    assert warnings == [f"batch 2: {measurement_note(BUSY)}"]
    assert "the machine was busy (load average 9.0 on 2 CPUs" in warnings[0]


def test_a_benchmark_on_a_quiet_machine_shows_no_note(open_page, h, bench_under):
    bench_under(QUIET)
    at = _run_bench(open_page("hardware"), "1")
    h.no_errors(at)
    assert not at.warning
    assert list(h.frame(at, "regret %")["plan_ms"]) == pytest.approx([5.0])


def test_the_notes_are_the_library_wording_one_per_noted_batch():
    from ui.dashboard.data import bench_notes

    kept = {"rows": [_row(1), _row(2)], "conditions": [_conditions(BUSY), _conditions(QUIET)]}
    assert bench_notes(kept) == [f"batch 1: {measurement_note(BUSY)}"]
    assert bench_notes({"rows": [_row(1)]}) == []  # a result without conditions: nothing to say
