"""The conditions of a measurement and the one line that says when they make it doubtful."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from real_runner.conditions import BUSY_RUNQ_MS_PER_S, Conditions, ConditionsProbe, measurement_note, self_and_children

QUIET = Conditions(loadavg_1m=0.3, cpus=2, runq_wait_ms_per_s=4.0, seconds=10.0)
LOADED = Conditions(loadavg_1m=7.2, cpus=2, runq_wait_ms_per_s=40.0, seconds=10.0)
WAITING = Conditions(loadavg_1m=None, cpus=2, runq_wait_ms_per_s=310.0, seconds=10.0)


def test_a_load_above_one_per_cpu_or_a_tenth_of_the_time_waiting_for_a_cpu_is_busy():
    assert not QUIET.busy and LOADED.busy and WAITING.busy


def test_a_measurement_near_its_prediction_on_a_quiet_machine_needs_no_comment():
    assert measurement_note(QUIET, 2.6, 3.1) is None and measurement_note(QUIET) is None


def test_far_off_on_a_busy_machine_blames_the_other_processes_with_the_figures():
    line = measurement_note(LOADED, 2.60, 15.50)
    assert line.startswith("measured 15.50 ms is 5.96x the predicted 2.60 ms; the machine was busy")
    assert "load average 7.2 on 2 CPUs, 40 ms/s waiting for a CPU" in line and "quiet machine" in line


def test_far_off_on_a_quiet_machine_blames_the_profile():
    line = measurement_note(QUIET, 2.0, 0.5)
    assert "0.25x the predicted" in line and "the profile likely does not describe this machine" in line


def test_a_busy_machine_is_said_even_when_the_figures_agree():
    assert measurement_note(WAITING, 2.0, 2.1).startswith("the machine was busy (310 ms/s waiting for a CPU)")


def test_the_probe_sees_processes_kept_waiting_for_a_cpu_by_more_spinners_than_cpus():
    n = 2 * len(os.sched_getaffinity(0)) + 1
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        probe = ConditionsProbe(lambda: [p.pid for p in spinners]).start()
        time.sleep(0.5)
        got = probe.stop()
    finally:
        for p in spinners:
            p.kill()
            p.wait()
    assert got.cpus == len(os.sched_getaffinity(0)) and got.seconds >= 0.5
    if got.runq_wait_ms_per_s is None:
        pytest.skip("this kernel exposes no /proc/PID/task/*/schedstat")
    assert got.runq_wait_ms_per_s is not None and got.runq_wait_ms_per_s > BUSY_RUNQ_MS_PER_S and got.busy
    assert set(got.to_json()) == {"loadavg_1m", "cpus", "runq_wait_ms_per_s", "seconds", "busy"}


def test_the_default_probe_watches_this_process_and_its_worker_processes():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        assert {os.getpid(), child.pid} <= set(self_and_children())
    finally:
        child.kill()
        child.wait()


def test_a_load_the_measurement_makes_itself_is_not_a_busy_machine():
    own = Conditions(loadavg_1m=2.4, cpus=2, runq_wait_ms_per_s=3.0, seconds=45.0)  # two workers and a dispatcher
    assert not own.busy and measurement_note(own) is None
