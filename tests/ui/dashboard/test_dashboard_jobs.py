"""Long dashboard work runs in a child process that Cancel really stops (issue 19, defect 3)."""

from __future__ import annotations

import os
import time

import pytest

from checker.explore import ExploreError, explore
from ui.dashboard import jobs as jobs

BIG = dict(protocol="register", variant="abd", params={"replicas": 3}, strategy="exhaustive",
           max_schedules=10**7, max_time=120.0, seed=0)


def _gone(pid: int, within_s: float = 5.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.slow
def test_cancel_stops_an_exploration_at_once_instead_of_running_out_its_budget():
    job = jobs.Job("ui.dashboard.jobs:explore_job", BIG).start()
    try:
        pid = job.pid
        deadline = time.monotonic() + 60
        while _cpu_seconds(pid) < 1.0 and time.monotonic() < deadline:  # it is really exploring
            assert not job.poll(0.2), "a 120 s exploration of abd with 3 replicas cannot finish this fast"
        assert job.alive()
        assert jobs.accepts_progress(explore)  # the explorer's live snapshots reach the dashboard
        deadline = time.monotonic() + 60
        while not job.snapshot.live and time.monotonic() < deadline:
            assert not job.poll(0.2)
        assert job.snapshot.live and job.snapshot.counters.get("schedules", 0) > 0
        assert "schedules" in job.snapshot.describe(120.0)[1]
        frac, text = job.snapshot.describe(120.0)
        assert 0.0 <= frac < 1.0 and "of at most 120 s" in text
    finally:
        job.cancel()
    assert _gone(pid, within_s=3.0), "the exploring process survived Cancel"


@pytest.mark.slow
def test_a_page_run_stopped_by_cancel_kills_the_child(monkeypatch):
    """Streamlit stops a script run that sees a Cancel click by raising inside its next
    progress update; run_job's clean-up must then terminate the child."""
    from ui.dashboard import state as dashboard_state

    started = []

    class Recording(jobs.Job):
        def start(self):
            started.append(super().start())
            return started[-1]

    class StoppedByRerun(Exception):
        pass

    class FakeProgress:
        def __init__(self, *a, **k):
            self.calls = 0

        def update(self, frac, text):
            self.calls += 1
            if self.calls >= 3:
                raise StoppedByRerun  # what Streamlit raises when Cancel was clicked

        def close(self):
            pass

    monkeypatch.setattr(dashboard_state, "Job", Recording)
    monkeypatch.setattr(dashboard_state, "Progress", FakeProgress)
    monkeypatch.setattr(dashboard_state.st, "session_state", {})
    with pytest.raises(StoppedByRerun):
        dashboard_state.run_job("Exploring", "explore_job", BIG, cancel_key="k", budget_s=120.0)
    assert _gone(started[0].pid, within_s=3.0)


@pytest.mark.slow
def test_results_and_errors_come_back_from_the_child():
    from packrat_sim.profile import builtin_profile
    from packrat_sim.simulator import SimConfig

    kwargs = dict(profile=builtin_profile("cnn-16"), cores=16, spec="closed:batch=16,requests=64", seed=0,
                  policies=["fat"], config=SimConfig())
    job = jobs.Job("ui.dashboard.jobs:steps_job", dict(steps="ui.dashboard.jobs:simulate_steps", kwargs=kwargs))
    job.start()
    while not job.poll(0.2):
        pass
    (result,) = job.result()
    assert result.name == "fat" and result.stats.requests == 64
    assert job.snapshot.live and job.snapshot.counters == {"fraction": 1.0, "text": "done"}

    bad = jobs.Job("ui.dashboard.jobs:explore_job", dict(BIG, strategy="sideways")).start()
    while not bad.poll(0.2):
        pass
    with pytest.raises(ExploreError, match="sideways"):
        bad.result()


def test_a_child_that_dies_reports_how():
    job = jobs.Job("ui.dashboard.jobs:explore_job", BIG).start()
    os.kill(job.pid, 9)
    while not job.poll(0.2):
        pass
    with pytest.raises(jobs.JobFailed, match="exit code -9"):
        job.result()


def test_progress_lines_name_the_counters_then_the_clock():
    snap = jobs.Snapshot({"schedules": 1200, "states": 5400, "distinct_histories": 17}, 2.5, True)
    frac, text = snap.describe(10.0)
    assert text == "1,200 schedules, 5,400 states, 17 distinct histories, 2.5 s of at most 10 s"
    assert frac == pytest.approx(0.25)
    cells = jobs.Snapshot({"cells": 3, "total": 12, "text": "t=1 b=4: 2.000 ms"}, 1.0, True)
    assert cells.describe() == (0.25, "t=1 b=4: 2.000 ms, 3/12 cells, 1.0 s")
    assert jobs.Snapshot(elapsed_s=4.0).describe(None) == (0.0, "4.0 s")
