"""The optimizer's user constraints: a cap on instances, cores per socket, a minimum sub-batch."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from packrat_sim.optimizer import (
    OptimizerError,
    OptimizerOptions,
    PlanTable,
    brute_force,
    constrained_plan,
    optimize,
    socket_capacities,
)
from packrat_sim.profile import builtin_profile
from tests.optimizer_helpers import profile_of, random_profiles


@st.composite
def constrained_problems(draw):
    """A random profile (missing cells, tied latencies) and a problem with user constraints."""
    profile, B = draw(random_profiles(7, 9))
    options = OptimizerOptions(
        exact_cores=draw(st.booleans()),
        homogeneous=draw(st.sampled_from([False, False, False, True])),
        min_batch=draw(st.sampled_from([1, 1, 2])),
        max_instances=draw(st.none() | st.integers(1, 5)),
        cores_per_socket=draw(st.none() | st.integers(1, 5)),
    )
    return profile, draw(st.integers(1, B)), draw(st.integers(1, profile.max_threads)), options


def packs(threads: list[int], caps: tuple[int, ...], exact: bool) -> bool:
    """Whether the instances fit the sockets (exhaustive; tiny inputs)."""
    import itertools

    for where in itertools.product(range(len(caps)), repeat=len(threads)):
        loads = [sum(t for t, k in zip(threads, where) if k == s) for s in range(len(caps))]
        if all(load <= cap for load, cap in zip(loads, caps)) and (not exact or loads == list(caps)):
            return True
    return False


@settings(max_examples=400, deadline=None)
@given(constrained_problems())
def test_the_constrained_dp_finds_the_brute_force_optimum(problem):
    profile, batch, cores, options = problem
    expected, _ = brute_force(profile, batch, cores, options)
    if math.isinf(expected):
        with pytest.raises(OptimizerError, match="cannot be covered"):
            optimize(profile, batch, cores, options)
        return
    plan = optimize(profile, batch, cores, options)
    assert plan.predicted_ms == expected
    assert plan.predicted_ms == max(profile.latency(i.threads, i.batch) for i in plan.instances)
    assert sum(i.batch for i in plan.instances) == batch
    assert all(i.batch >= options.min_batch for i in plan.instances)
    if options.max_instances is not None:
        assert len(plan.instances) <= options.max_instances
    if len(plan.instances) <= 6:
        caps = socket_capacities(cores, options.cores_per_socket)
        assert packs([i.threads for i in plan.instances], caps, options.exact_cores)


def test_the_default_options_set_no_user_constraint_and_keep_the_threshold_sweep():
    options = OptimizerOptions()
    assert options.max_instances is None and options.cores_per_socket is None and not options.constrained
    profile = builtin_profile("cnn-16", max_batch=256)
    assert optimize(profile, 256, 16) == PlanTable(profile, 16, 256).plan(16, 256)


def test_a_cap_on_instances_trades_latency_for_fewer_instances():
    profile = builtin_profile("transformer-64", max_batch=1024)
    free = optimize(profile, 1024, 64)
    capped = optimize(profile, 1024, 64, OptimizerOptions(max_instances=4))
    assert len(free.instances) == 8 and len(capped.instances) <= 4
    assert capped.predicted_ms > free.predicted_ms
    assert capped.threads_used == 64 and sum(i.batch for i in capped.instances) == 1024


def test_among_optimal_plans_the_constrained_dp_uses_the_fewest_instances():
    profile = profile_of({(1, 1): 2.0, (2, 2): 2.0, (1, 2): 9.0})
    plan = optimize(profile, 2, 2, OptimizerOptions(max_instances=5))
    assert plan.groups() == [(1, 2, 2)]


def test_cores_per_socket_packs_instances_into_sockets_not_merely_caps_their_threads():
    # 5 + 5 + 6 fits 16 cores and each instance fits a socket of 8, but not two sockets of 8
    profile = profile_of({(5, 1): 1.0, (6, 1): 1.0, (4, 1): 3.0, (8, 1): 4.0, (16, 3): 50.0})
    unconstrained = optimize(profile, 3, 16)
    assert unconstrained.predicted_ms == 1.0
    plan = optimize(profile, 3, 16, OptimizerOptions(cores_per_socket=8))
    assert plan.predicted_ms == 4.0  # 8 + 4 + 4: every socket full, no instance spans two
    assert sorted(i.threads for i in plan.instances) == [4, 4, 8]


def test_with_idle_cores_a_socket_may_be_left_partly_empty():
    profile = profile_of({(6, 1): 1.0, (16, 2): 50.0})
    plan = optimize(profile, 2, 16, OptimizerOptions(exact_cores=False, cores_per_socket=8))
    assert plan.groups() == [(2, 6, 1)]  # two cores idle on each socket
    with pytest.raises(OptimizerError, match="cannot be covered on exactly 16 cores"):
        optimize(profile, 2, 16, OptimizerOptions(cores_per_socket=8))


def test_an_instance_never_gets_more_threads_than_a_socket_has_cores():
    profile = builtin_profile("cnn-64", max_batch=1024)
    plan = optimize(profile, 1024, 64, OptimizerOptions(max_instances=2, cores_per_socket=32))
    assert all(i.threads <= 32 for i in plan.instances) and len(plan.instances) == 2


def test_the_last_socket_holds_the_cores_left_over():
    assert socket_capacities(40, 16) == (16, 16, 8)
    assert socket_capacities(48, 16) == (16, 16, 16)
    assert socket_capacities(12, 16) == (12,)
    assert socket_capacities(12, None) == (12,)


def test_identical_instances_must_also_fill_the_sockets_exactly():
    profile = profile_of({(3, 1): 1.0, (2, 1): 2.0, (6, 3): 50.0})
    # 2 x 3 threads = 6 cores, but sockets of 4 + 2 cannot hold two 3-thread instances
    plan = optimize(profile, 3, 6, OptimizerOptions(homogeneous=True, cores_per_socket=4))
    assert plan.groups() == [(3, 2, 1)]
    with pytest.raises(OptimizerError, match="at most 2 instances"):
        optimize(profile, 3, 6, OptimizerOptions(homogeneous=True, cores_per_socket=4, max_instances=2))


def test_a_minimum_sub_batch_applies_under_the_new_constraints_too():
    profile = profile_of({(1, 1): 1.0, (1, 2): 2.0, (2, 4): 6.0})
    plan = optimize(profile, 4, 2, OptimizerOptions(min_batch=2, max_instances=2))
    assert plan.groups() == [(2, 1, 2)]


def test_the_infeasibility_message_names_the_constraints():
    profile = profile_of({(1, 1): 1.0, (3, 3): 9.0})
    with pytest.raises(OptimizerError, match=r"at most 2 instances.*sockets of \[1, 1, 1\] cores"):
        optimize(profile, 3, 3, OptimizerOptions(max_instances=2, cores_per_socket=1))


def test_a_plan_table_refuses_the_constraints_it_cannot_honour():
    profile = profile_of({(1, 1): 1.0})
    with pytest.raises(OptimizerError, match="use optimize"):
        PlanTable(profile, 1, 1, OptimizerOptions(max_instances=1))
    with pytest.raises(OptimizerError, match="use optimize"):
        PlanTable(profile, 1, 1, OptimizerOptions(cores_per_socket=1))


@pytest.mark.parametrize("name", ["max_instances", "cores_per_socket"])
@pytest.mark.parametrize("value", [0, -1, True, 2.5])
def test_a_constraint_that_is_not_a_positive_integer_is_rejected_by_name(name, value):
    with pytest.raises(OptimizerError, match=f"{name} must be a positive integer, got {value!r}"):
        OptimizerOptions(**{name: value})


def test_the_constrained_dp_is_callable_directly_and_agrees_with_optimize():
    profile = builtin_profile("cnn-16", max_batch=256)
    options = OptimizerOptions(cores_per_socket=8, max_instances=6)
    assert constrained_plan(profile, 256, 16, options) == optimize(profile, 256, 16, options)
