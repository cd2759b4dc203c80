"""The Packrat optimizer against brute force and the direct recurrence."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from packrat_sim.optimizer import (
    OptimizerError,
    OptimizerOptions,
    PlanTable,
    brute_force,
    direct_table,
    homogeneous_plan,
    optimize,
)
from packrat_sim.plan import plan_latency
from packrat_sim.profile import builtin_profile
from tests.optimizer_helpers import profile_of, random_profiles


@st.composite
def small_problems(draw):
    """A random profile with missing cells and (often) tied latencies, and a problem on it."""
    profile, B = draw(random_profiles(5, 8))
    cores = draw(st.integers(1, profile.max_threads))
    batch = draw(st.integers(1, B))
    exact = draw(st.booleans())
    return profile, batch, cores, OptimizerOptions(exact_cores=exact)


def assert_valid(plan, profile, batch, cores, options):
    assert plan.batch == batch and plan.cores == cores
    assert sum(i.batch for i in plan.instances) == batch
    used = sum(i.threads for i in plan.instances)
    assert used == cores if options.exact_cores else used <= cores
    assert all(profile.cell(i.threads, i.batch) is not None for i in plan.instances)
    assert plan_latency(plan, profile.latency) == plan.predicted_ms


@settings(max_examples=400, deadline=None)
@given(small_problems())
def test_the_sweep_finds_the_same_optimal_latency_as_brute_force(problem):
    profile, batch, cores, options = problem
    expected, _ = brute_force(profile, batch, cores, options)
    table = PlanTable(profile, cores, batch, options)
    assert table.latency_ms(cores, batch) == expected
    if math.isfinite(expected):
        assert_valid(table.plan(cores, batch), profile, batch, cores, options)
    else:
        with pytest.raises(OptimizerError, match="cannot be covered"):
            table.plan(cores, batch)


@settings(max_examples=150, deadline=None)
@given(small_problems())
def test_one_table_answers_every_smaller_problem_like_a_fresh_search(problem):
    profile, batch, cores, options = problem
    table = PlanTable(profile, cores, batch, options)
    for t in range(1, cores + 1):
        for b in range(1, batch + 1):
            assert table.latency_ms(t, b) == brute_force(profile, b, t, options)[0]


@settings(max_examples=200, deadline=None)
@given(small_problems())
def test_homogeneous_plans_match_brute_force_over_identical_instances(problem):
    profile, batch, cores, options = problem
    options = OptimizerOptions(exact_cores=options.exact_cores, homogeneous=True)
    expected, _ = brute_force(profile, batch, cores, options)
    if math.isfinite(expected):
        plan = homogeneous_plan(profile, batch, cores, options)
        assert plan.predicted_ms == expected and len(plan.groups()) == 1
        assert_valid(plan, profile, batch, cores, options)
    else:
        with pytest.raises(OptimizerError):
            homogeneous_plan(profile, batch, cores, options)


@pytest.mark.parametrize("exact", [True, False])
def test_the_sweep_matches_the_direct_four_loop_recurrence_on_a_builtin_profile(exact):
    profile = builtin_profile("transformer-16", max_batch=64)
    options = OptimizerOptions(exact_cores=exact)
    direct = np.array(direct_table(profile, 12, 40, options))
    table = PlanTable(profile, 12, 40, options)
    ours = table.latency[:, :]
    # row t = 0 and column b = 0 are the recurrence's base cases
    np.testing.assert_array_equal(ours[1:, 1:], direct[1:, 1:])


def test_idle_cores_never_make_a_plan_slower():
    profile = builtin_profile("cnn-16", max_batch=256)
    exact = PlanTable(profile, 16, 256, OptimizerOptions(exact_cores=True))
    idle = PlanTable(profile, 16, 256, OptimizerOptions(exact_cores=False))
    assert np.all(idle.latency[1:, 1:] <= exact.latency[1:, 1:])


def test_a_profile_slower_with_more_threads_can_leave_cores_idle_when_allowed():
    profile = profile_of({(1, 1): 5.0, (2, 1): 9.0})
    assert optimize(profile, 1, 2).describe() == "1 x 2t x 1"
    relaxed = optimize(profile, 1, 2, OptimizerOptions(exact_cores=False))
    assert relaxed.describe() == "1 x 1t x 1" and relaxed.predicted_ms == 5.0


def test_ties_are_broken_by_latency_then_fewer_threads_then_smaller_batch():
    # (1t, 2) and (2t, 1) + (2t, 1)... all 4.0: the (latency, threads, batch) order decides
    profile = profile_of({(1, 2): 4.0, (2, 2): 4.0, (1, 1): 4.0})
    plan = optimize(profile, 2, 2)
    assert plan.describe() == "2 x 1t x 1"
    assert plan == optimize(profile, 2, 2)  # deterministic


def test_missing_cells_are_never_used():
    profile = profile_of({(1, 1): 10.0, (2, 2): 3.0})
    assert optimize(profile, 2, 2).describe() == "1 x 2t x 2"
    with pytest.raises(OptimizerError, match=r"batch 3 cannot be covered on exactly 2 cores"):
        optimize(profile, 3, 2)


@pytest.mark.parametrize(
    "batch, cores, message",
    [(0, 4, "batch must be a positive integer, got 0"), (4, 0, "cores must be a positive integer, got 0"),
     (4, -1, "cores must be a positive integer"), (4, 17, "cores=17 is beyond the profiled threads")],
)
def test_bad_problems_name_the_bad_value(batch, cores, message):
    with pytest.raises(OptimizerError, match=message):
        optimize(builtin_profile("cnn-16", max_batch=8), batch, cores)


def test_options_reject_nonsense():
    with pytest.raises(OptimizerError, match="min_batch"):
        OptimizerOptions(min_batch=0)
    with pytest.raises(OptimizerError, match="max_threads_per_instance"):
        OptimizerOptions(max_threads_per_instance=0)


def test_min_batch_and_thread_cap_restrict_the_instance_shapes():
    profile = builtin_profile("cnn-16", max_batch=64)
    plan = optimize(profile, 64, 16, OptimizerOptions(min_batch=16))
    assert all(i.batch >= 16 for i in plan.instances)
    plan = optimize(profile, 64, 16, OptimizerOptions(max_threads_per_instance=2, min_batch=8))
    assert all(i.threads <= 2 and i.batch >= 8 for i in plan.instances)


def test_the_table_is_read_only():
    table = PlanTable(builtin_profile("cnn-16", max_batch=8), 4, 8)
    with pytest.raises(ValueError):
        table.latency[1, 1] = 0.0


def test_an_imported_published_style_profile_gives_the_brute_force_configuration():
    from pathlib import Path

    from packrat_sim.profile import import_packrat_csv

    text = (Path(__file__).parent / "fixtures" / "packrat_resnet_8core.csv").read_text()
    profile = import_packrat_csv(text, series=[("benchmark", "*eager"), ("topology", "sequential")]).profile
    for batch in (1, 2, 4, 8, 16):
        plan = optimize(profile, batch, 8)
        expected, _ = brute_force(profile, batch, 8)
        assert plan.predicted_ms == expected
        assert plan.predicted_ms <= profile.latency(8, batch)
