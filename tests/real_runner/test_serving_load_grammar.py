"""`run --load` reads the one workload grammar with the meaning it has in `simulate` (issue 31 item 2)."""

from __future__ import annotations

import math

import pytest

from packrat_sim.plan import fat, thin
from packrat_sim.workload import WorkloadDeprecation
from real_runner.serving import LoadError, parse_load, serve_load
from tests.real_runner.rr_helpers import needs_two_cpus


def test_closed_steps_are_the_runners_batch_size_steps_with_the_specs_clients_and_think():
    load = parse_load("closed:8@20s,32@500ms,clients=3,think=20ms")
    assert (load.kind, load.steps, load.clients, load.think_s) == ("closed", ((8, 20.0), (32, 0.5)), 3, 0.02)
    assert load.requests is None


def test_a_closed_loop_of_a_request_count_is_served_until_that_count_not_for_a_fixed_time():
    load = parse_load("closed:batch=8,requests=1000,clients=2")
    assert (load.kind, load.requests, load.clients, load.max_batch) == ("closed", 1000, 2, 8)
    assert load.steps == ((8, math.inf),)


def test_arguments_replace_the_specs_clients_and_think():
    load = parse_load("closed:8@1s,clients=3", clients=1, think_s=0.5)
    assert (load.clients, load.think_s) == (1, 0.5)


def test_an_open_step_load_is_single_requests_at_rates():
    load = parse_load("steps:50/s@1s,400/s@1s")
    assert load.kind == "open" and load.duration_s == 2.0


def test_the_old_closed_form_still_serves_the_same_load_with_a_deprecation():
    with pytest.warns(WorkloadDeprecation, match="closed:8@20s,32@20s"):
        assert parse_load("8:20s,32:20s") == parse_load("closed:8@20s,32@20s")


@pytest.mark.parametrize("bad", ["closed:8/s@2s", "steps:8@", "poisson:rate=0/s,duration=1s"])
def test_a_load_the_grammar_refuses_is_a_load_error_naming_the_spec(bad):
    with pytest.raises(LoadError, match="load '"):
        parse_load(bad)


@needs_two_cpus
def test_a_served_request_count_loop_sends_exactly_that_many_requests_the_last_batch_smaller():
    report = serve_load("tiny-cnn", parse_load("closed:batch=4,requests=30,clients=2"),
                        lambda b: thin(b, 2) if b <= 4 else fat(b, 2), window_s=1.0)
    assert report["requests_sent"] == report["requests_answered"] == 30
    assert report["batches_sent"] == 8 and report["answered_twice"] == 0
