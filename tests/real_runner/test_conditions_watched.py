"""One way to measure under watch (``real_runner.conditions.watched``) and one JSON for what was
seen (``conditions_report``). The probe is faked: it logs when it starts and stops and reports
what it is told; the measurement is a function that logs its call."""

from __future__ import annotations

import pytest

from real_runner import conditions as conditions_mod
from real_runner.conditions import conditions_report, measurement_note, watched
from tests.conditions_fakes import BUSY, QUIET, FakeProbe



def test_watched_starts_the_probe_before_the_measurement_and_stops_it_after():
    events: list[str] = []

    def measure() -> str:
        events.append("measured")
        return "result"

    result, seen = watched(measure, FakeProbe(BUSY, events))
    assert (result, seen) == ("result", BUSY)
    assert events == ["probe started", "measured", "probe stopped"]


def test_without_a_probe_watched_opens_the_library_probe_of_this_process(monkeypatch):
    events: list[str] = []
    monkeypatch.setattr(conditions_mod, "ConditionsProbe", lambda: FakeProbe(QUIET, events))
    assert watched(lambda: 7) == (7, QUIET)
    assert events == ["probe started", "probe stopped"]


def test_watched_on_this_machine_reports_real_conditions():
    result, seen = watched(lambda: sum(range(1000)))
    assert result == 499500 and seen.cpus >= 1 and seen.seconds > 0


def test_a_failed_measurement_raises_through_watched():
    def fails() -> None:
        raise RuntimeError("worker died")

    with pytest.raises(RuntimeError, match="worker died"):
        watched(fails, FakeProbe(QUIET, []))


def test_the_report_is_the_conditions_json_plus_the_note_with_or_without_a_prediction():
    assert conditions_report(BUSY) == dict(BUSY.to_json(), note=measurement_note(BUSY))
    assert conditions_report(QUIET) == dict(QUIET.to_json(), note=None)
    far = conditions_report(QUIET, 2.0, 9.0)
    assert far["note"] == measurement_note(QUIET, 2.0, 9.0) and "4.50x the predicted 2.00 ms" in far["note"]
    assert list(far) == ["loadavg_1m", "cpus", "runq_wait_ms_per_s", "seconds", "busy", "note"]
