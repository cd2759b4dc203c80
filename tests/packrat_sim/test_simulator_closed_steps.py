"""Stepped closed loops in the simulator (issue 31 item 2): `closed:8@20s,...` means here what
it means in `run --load`: clients submit batches of the step in progress until the last step
ends, and the packrat policy adapts to the steps."""

from __future__ import annotations

import numpy as np
import pytest

from packrat_sim import simulator
from packrat_sim.profile import builtin_profile
from packrat_sim.simulator import SimulationError, simulate
from packrat_sim.workload import parse_workload

PROFILE = builtin_profile("cnn-8")
STEPS = "closed:2@5s,32@5s,2@5s"


def test_every_batch_has_the_size_of_the_step_in_progress_when_it_was_submitted():
    wl = parse_workload(STEPS)
    r = simulate(PROFILE, 8, wl, "fat", seed=1)
    calls, sizes = r.records.batch_call_ms, r.records.batch_size
    assert [wl.batch_at(t / 1000.0) for t in calls] == sizes.tolist()
    assert calls.max() < 15_000.0 and {2, 32} == set(sizes.tolist())


def test_a_stepped_closed_loop_of_two_clients_keeps_two_batches_in_the_system():
    r = simulate(PROFILE, 8, parse_workload("closed:4@2s,clients=2"), "fat", seed=1)
    calls = np.sort(r.records.batch_call_ms)
    assert calls[0] == calls[1] == 0.0 and r.stats.requests == 4 * len(calls)


def test_the_packrat_policy_switches_after_the_step_up_and_again_after_the_step_down():
    r = simulate(PROFILE, 8, parse_workload(STEPS), "packrat", seed=1)
    assert r.adaptive and r.closed_loop
    calls = [c.call_ms for c in r.reconfigurations]
    assert any(5_000 < t < 10_000 for t in calls) and any(10_000 < t < 15_000 for t in calls)
    assert len(r.plans) == 3 and r.plans[0] == r.plans[2] != r.plans[1]  # there and back


def test_an_explicit_capacity_floor_wins_over_the_closed_loop_default():
    from packrat_sim.policy import parse_overrides

    kept = simulate(PROFILE, 8, parse_workload(STEPS), "packrat", seed=1,
                    config=simulator.SimConfig(policy=parse_overrides(["capacity_floor=1"])))
    switched_back = simulate(PROFILE, 8, parse_workload(STEPS), "packrat", seed=1)
    assert len(switched_back.plans) == 3 and len(kept.plans) == 2  # the small batches' plan is below the floor


def test_packrat_ewma_serves_a_stepped_closed_loop_with_the_plan_for_its_largest_batch():
    r = simulate(PROFILE, 8, parse_workload(STEPS), "packrat-ewma", seed=1)
    assert not r.reconfigurations and r.plans[0].batch == 32


def test_a_stepped_closed_loop_that_would_submit_too_many_requests_is_refused(monkeypatch):
    monkeypatch.setattr(simulator, "MAX_EXPECTED_REQUESTS", 500)
    with pytest.raises(SimulationError, match="submitted more than 500 requests"):
        simulate(PROFILE, 8, parse_workload("closed:8@10s"), "fat", seed=1)
