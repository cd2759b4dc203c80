"""One load grammar (issue 31 item 2): a closed loop is spelled with batch sizes, an open loop
with rates, and the old spellings still read, each with a deprecation naming the new one."""

from __future__ import annotations

import warnings

import pytest

from packrat_sim.errors import PackratDeprecation
from packrat_sim.workload import (
    Closed,
    ClosedStep,
    ClosedSteps,
    Steps,
    WorkloadDeprecation,
    WorkloadError,
    describe,
    parse_workload,
    parse_workload_noting,
)


def parse_quietly(spec: str):
    """Parse ``spec``; fail the test on any warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return parse_workload(spec)


def test_closed_steps_are_batch_sizes_for_durations_with_clients_and_think():
    wl = parse_quietly("closed:8@20s,32@500ms,8@1min,clients=3,think=5ms")
    assert wl == ClosedSteps((ClosedStep(8, 20.0), ClosedStep(32, 0.5), ClosedStep(8, 60.0)), clients=3, think_ms=5.0)
    assert wl.max_batch == 32 and wl.duration_s == pytest.approx(80.5)
    assert parse_quietly(wl.to_spec()) == wl


def test_a_closed_loop_of_one_batch_size_for_a_duration_is_a_one_step_closed_loop():
    assert parse_quietly("closed:batch=8,duration=20s") == ClosedSteps((ClosedStep(8, 20.0),))


def test_a_closed_loop_of_a_request_count_keeps_its_meaning():
    assert parse_quietly("closed:batch=64,requests=1000") == Closed(batch=64, requests=1000)


def test_the_batch_of_a_closed_step_loop_is_the_step_in_progress_and_none_after_the_last():
    wl = parse_quietly("closed:8@2s,32@1s")
    assert [wl.batch_at(t) for t in (0.0, 1.999, 2.0, 2.999, 3.0, 99.0)] == [8, 8, 32, 32, None, None]


def test_an_open_step_load_with_units_reads_without_a_warning():
    wl = parse_quietly("steps:8/s@20s,32/s@20s")
    assert isinstance(wl, Steps) and [s.rate_per_s for s in wl.steps] == [8.0, 32.0]


@pytest.mark.parametrize("spec, part", [
    ("closed:8/s@20s", "is a rate"),
    ("closed:8@20s,batch=8", "drop batch="),
    ("closed:8@20s,requests=100", "drop requests="),
    ("closed:batch=8,requests=100,duration=2s", "exactly one of"),
    ("closed:0@2s", "batch size of step"),
    ("closed:8@0s", "duration of step"),
    ("closed:8", "BATCH@DURATION"),
    ("closed:2.5@1s", "batch size of step"),
])
def test_a_bad_closed_loop_is_refused_naming_the_bad_part(spec, part):
    with pytest.raises(WorkloadError, match=part):
        parse_workload(spec)


def test_the_old_closed_loop_form_reads_as_the_new_one_with_a_deprecation_naming_it():
    with pytest.warns(WorkloadDeprecation, match=r"write 'closed:8@20s,32@20s'"):
        old = parse_workload("8:20s,32:20s")
    assert old == parse_quietly("closed:8@20s,32@20s")


def test_a_bare_step_rate_reads_as_per_second_with_one_deprecation_for_the_spec():
    wl, notes = parse_workload_noting("steps:8@20s,32/s@20s,4@1s")
    assert wl == parse_quietly("steps:8/s@20s,32/s@20s,4/s@1s")
    assert len(notes) == 1 and "steps:8/s@20s,4/s@1s" in notes[0]


def test_workload_deprecations_are_packrat_deprecations_that_python_shows_by_default():
    assert issubclass(WorkloadDeprecation, PackratDeprecation) and issubclass(PackratDeprecation, FutureWarning)


def test_a_new_spelling_has_no_deprecation_notes():
    assert parse_workload_noting("closed:8@1s")[1] == ()


def test_a_closed_step_loop_is_described_in_words():
    assert describe(parse_quietly("closed:8@20s,32@10s,clients=2")) == (
        "closed loop: 2 client(s), batches of 8 for 20 s, batches of 32 for 10 s")
