"""Interference: fitting the busy-cores model and planning exactly under it."""

from __future__ import annotations

import math
from functools import lru_cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from packrat_sim.interference import (
    corun_profile,
    fit_interference,
    latency_under_interference,
    optimize_with_interference,
)
from packrat_sim.optimizer import OptimizerError, OptimizerOptions
from packrat_sim.plan import Instance, Plan
from packrat_sim.profile import Cell, Interference, Profile, ProfileError, builtin_profile


def profile_of(table, interference):
    cells = tuple(Cell(threads=t, batch=b, mean_ms=v, min_ms=v, max_ms=v) for (t, b), v in table.items())
    return Profile(model="t", cells=cells, interference=interference)


def brute_force_under_interference(profile, batch, cores, exact):
    """Every multiset of profiled cells covering the batch, judged by the co-run model."""
    items = sorted((c.threads, c.batch, c.mean_ms) for c in profile.cells if c.threads <= cores)
    s = profile.interference.slowdown

    @lru_cache(maxsize=None)
    def multisets(i, t_left, b_left):
        if b_left == 0:
            return [()]
        if i == len(items):
            return []
        t, b, _ = items[i]
        out = list(multisets(i + 1, t_left, b_left))
        k = 1
        while k * t <= t_left and k * b <= b_left:
            out += [m + (items[i],) * k for m in multisets(i + 1, t_left - k * t, b_left - k * b)]
            k += 1
        return out

    best = math.inf
    for m in multisets(0, cores, batch):
        busy = sum(t for t, _, _ in m)
        if exact and busy != cores:
            continue
        best = min(best, max(lat * s(busy - t) for t, _, lat in m))
    return best


@st.composite
def problems(draw):
    T, B = draw(st.integers(1, 5)), draw(st.integers(1, 6))
    cells = draw(st.dictionaries(st.tuples(st.integers(1, T), st.integers(1, B)), st.floats(0.5, 50), min_size=1, max_size=T * B))
    points = draw(st.lists(st.floats(1.0, 3.0), min_size=1, max_size=4))
    interference = Interference(points=tuple((k + 1, s) for k, s in enumerate(sorted(points))))
    profile = profile_of(cells, interference)
    return profile, draw(st.integers(1, B)), draw(st.integers(1, profile.max_threads)), draw(st.booleans())


@settings(max_examples=250, deadline=None)
@given(problems())
def test_planning_under_interference_matches_brute_force(problem):
    profile, batch, cores, exact = problem
    expected = brute_force_under_interference(profile, batch, cores, exact)
    options = OptimizerOptions(exact_cores=exact)
    try:
        result = optimize_with_interference(profile, batch, cores, options)
    except OptimizerError:
        assert expected == math.inf
        return
    assert result.plan.predicted_ms == pytest.approx(expected, rel=1e-12)
    assert latency_under_interference(result.plan, profile) == pytest.approx(expected, rel=1e-12)
    assert result.isolated_under_interference_ms >= result.plan.predicted_ms * (1 - 1e-12)


def test_interference_can_change_the_best_plan():
    # alone, two 1-thread instances win; beside each other they slow down 2x
    profile = profile_of({(1, 1): 10.0, (2, 2): 15.0}, Interference(points=((1, 2.0),)))
    result = optimize_with_interference(profile, 2, 2)
    assert result.isolated_plan.describe() == "2 x 1t x 1" and result.isolated_plan.predicted_ms == 10.0
    assert result.isolated_under_interference_ms == 20.0
    assert result.plan.describe() == "1 x 2t x 2" and result.plan.predicted_ms == 15.0
    assert result.gain == pytest.approx(20.0 / 15.0)


def test_planning_without_an_interference_model_says_so():
    with pytest.raises(OptimizerError, match="has no interference model"):
        optimize_with_interference(builtin_profile("cnn-16", max_batch=8), 8, 16)


def test_the_corun_profile_scales_each_cell_by_the_slowdown_of_the_other_cores():
    profile = profile_of({(1, 1): 10.0, (3, 1): 4.0}, Interference(points=((2, 1.5),)))
    scaled = corun_profile(profile, 3)
    assert scaled.latency(1, 1) == pytest.approx(15.0)
    assert scaled.latency(3, 1) == pytest.approx(4.0)


def test_a_fit_takes_medians_per_core_count_and_reports_its_error():
    model = fit_interference([(0, 1.0), (1, 1.1), (1, 1.3), (1, 1.2), (3, 1.6)])
    assert model.points == ((1, 1.2), (3, 1.6))
    assert model.slowdown(2) == pytest.approx(1.4)
    assert 0 < model.fit_error < 0.1


def test_a_fit_without_co_run_observations_is_rejected():
    with pytest.raises(ProfileError, match="at least one other busy core"):
        fit_interference([(0, 1.0)])
    with pytest.raises(ProfileError, match="slowdown must be a finite number"):
        fit_interference([(1, float("nan"))])


def test_latency_under_interference_uses_the_threads_the_plan_keeps_busy():
    profile = profile_of({(1, 1): 10.0}, Interference(points=((1, 1.5), (2, 2.0))))
    plan = Plan((Instance(1, 1), Instance(1, 1)), batch=2, cores=4)
    assert latency_under_interference(plan, profile) == pytest.approx(15.0)
