"""Issue 32: the Z3 certificate under a co-run model skips only the queries the density bound
proves unsatisfiable, and asks the others on the same scaled shapes as before."""

from __future__ import annotations

import dataclasses
import math
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checker.allocation import (
    Result,
    _density_bounds,
    _instance_caps,
    _problem,
    _query_total_below,
    _scaled_problem,
    certify_under_interference,
)
from packrat_sim.interference import busy_bounds, corun_profile, optimize_with_interference, slowdown_table
from packrat_sim.optimizer import OptimizerOptions, profile_items
from packrat_sim.predictor import Predictor
from packrat_sim.profile import Cell, Interference, Profile, builtin_profile
from tests.interference_helpers import dense_profiles, every_plan, random_models


@st.composite
def corun_problems(draw):
    """A random small profile with a random (often odd) co-run model, dispatch costs or none,
    a batch, cores and options (idle cores, or exact cores with or without sockets)."""
    profile, B = draw(dense_profiles(5, 6))
    batch, cores = draw(st.integers(1, B)), draw(st.integers(1, profile.max_threads))
    costs = sorted(draw(st.lists(st.sampled_from([0.0, 1.0]) | st.floats(0.0, 5.0), max_size=3)))
    profile = dataclasses.replace(profile, interference=draw(random_models(profile.max_threads)),
                                  dispatch=tuple((k + 1, batch, c) for k, c in enumerate(costs)))
    exact = draw(st.booleans())
    per_socket = draw(st.none() | st.integers(1, cores)) if exact else None
    mtpi = draw(st.none() | st.integers(1, cores))
    return profile, batch, cores, OptimizerOptions(exact_cores=exact, cores_per_socket=per_socket,
                                                   max_threads_per_instance=mtpi)


@settings(max_examples=150, deadline=None)
@given(corun_problems(), st.data())
def test_every_query_the_bound_skips_is_unsatisfiable_when_z3_is_asked(problem, data):
    profile, batch, cores, options = problem
    plans = list(every_plan(profile, batch, cores, options.exact_cores))
    if not plans:
        return
    plan = data.draw(st.sampled_from(plans))
    latency = Predictor(profile).plan_ms(plan)
    base = _problem(profile, batch, cores, options)
    factors = slowdown_table(profile.interference, {s[0] for s in base.shapes}, cores)
    bound = _density_bounds(base.shapes, factors, batch, cores)
    deadline = time.perf_counter() + 60
    for busy in [cores] if options.exact_cores else range(1, cores + 1):
        scaled = _scaled_problem(base, factors, busy, options)
        for k, cost in _instance_caps(profile, batch, cores, options):
            if not cost + bound[busy] < latency:
                sub = dataclasses.replace(scaled, max_instances=k)
                assert _query_total_below(sub, cost, latency, deadline).status == "unsat"


@settings(max_examples=150, deadline=None)
@given(corun_problems(), st.data())
def test_the_scaled_problem_is_the_one_the_corun_profile_gives(problem, data):
    profile, batch, cores, options = problem
    busy = cores if options.exact_cores else data.draw(st.integers(1, cores))
    base = _problem(profile, batch, cores, options)
    factors = slowdown_table(profile.interference, {s[0] for s in base.shapes}, cores)
    ours = _scaled_problem(base, factors, busy, options)
    theirs = _problem(corun_profile(profile, busy), batch, busy, dataclasses.replace(options, exact_cores=True))
    assert ours == theirs  # the same shapes, the same floats, in the same order


@settings(max_examples=150, deadline=None)
@given(dense_profiles(6, 8), st.data())
def test_the_checkers_bound_and_the_planners_are_the_same_floats(drawn, data):
    profile, B = drawn
    model = data.draw(random_models(profile.max_threads))
    cores, batch = data.draw(st.integers(1, profile.max_threads)), data.draw(st.integers(1, B))
    items = profile_items(profile, cores, batch, OptimizerOptions())
    factors = slowdown_table(model, {t for t, _, _ in items}, cores)
    assert list(busy_bounds(items, factors, batch, cores)) == _density_bounds(items, factors, batch, cores)


@settings(max_examples=150, deadline=None)
@given(dense_profiles(5, 6), st.data())
def test_the_checkers_bound_is_below_every_allocation_of_that_many_busy_threads(drawn, data):
    profile, B = drawn
    profile = dataclasses.replace(profile, interference=data.draw(random_models(profile.max_threads)))
    cores, batch = data.draw(st.integers(1, profile.max_threads)), data.draw(st.integers(1, B))
    base = _problem(profile, batch, cores, OptimizerOptions(exact_cores=False))
    factors = slowdown_table(profile.interference, {s[0] for s in base.shapes}, cores)
    bound = _density_bounds(base.shapes, factors, batch, cores)
    compute = Predictor(profile).compute_ms
    for plan in every_plan(profile, batch, cores, exact=False):
        assert bound[plan.threads_used] <= compute(plan)


def test_on_a_built_in_profile_the_bound_refutes_every_busy_count_and_the_plan_is_optimal():
    profile = builtin_profile("cnn-64+interference", max_batch=1024)
    options = OptimizerOptions(exact_cores=False)
    plan = optimize_with_interference(profile, 1024, 64, options).plan
    cert = certify_under_interference(profile, 1024, 64, plan, options)
    assert cert.result is Result.OPTIMAL and cert.stats.bounded == 64 and cert.stats.queries == 0
    assert cert.to_json()["encoding"]["bounded"] == 64


def test_where_the_bound_leaves_a_busy_count_open_z3_decides_it():
    # batch 3 on 2 busy cores: the densest shape (1t x 2, density 2 >= 3/2) bounds U = 2 at
    # 6 x 1.5 = 9 ms, below the plan's 12 ms (its 1t x 1 takes 8 x 1.5), so the bound cannot
    # refute U = 2: Z3 shows that nothing beats the plan there
    cells = {(1, 1): 8.0, (1, 2): 6.0, (1, 3): 100.0, (2, 3): 20.0}
    profile = Profile(model="open", cells=tuple(Cell(t, b, v, v, v) for (t, b), v in cells.items()),
                      interference=Interference(points=((1, 1.5),)))
    options = OptimizerOptions(exact_cores=False)
    plan = optimize_with_interference(profile, 3, 2, options).plan
    assert sorted((i.threads, i.batch) for i in plan.instances) == [(1, 1), (1, 2)] and plan.predicted_ms == 12.0
    cert = certify_under_interference(profile, 3, 2, plan, options)
    assert cert.result is Result.OPTIMAL and cert.stats.queries == 1 and cert.stats.bounded == 1


@pytest.mark.parametrize("name", ["cnn-32+interference", "transformer-32+interference"])
def test_a_plan_beaten_under_the_model_is_still_refuted_with_a_witness(name):
    from packrat_sim.optimizer import optimize

    profile = builtin_profile(name, max_batch=256)
    options = OptimizerOptions(exact_cores=False)
    isolated = optimize(profile, 256, 32, options)
    cert = certify_under_interference(profile, 256, 32, isolated, options)
    aware = optimize_with_interference(profile, 256, 32, options).plan
    if aware.predicted_ms < Predictor(profile).plan_ms(isolated):
        assert cert.result is Result.NOT_OPTIMAL and cert.witness.predicted_ms < cert.bound_ms
    else:
        assert cert.result is Result.OPTIMAL
    assert math.isfinite(cert.bound_ms)
