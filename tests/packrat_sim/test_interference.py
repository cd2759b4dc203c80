"""Interference: fitting the busy-cores model and planning exactly under it."""

from __future__ import annotations

import math
from dataclasses import replace
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
from packrat_sim.predictor import Predictor, best_plan
from packrat_sim.profile import Cell, Interference, Profile, ProfileError, ThreadCurve, builtin_profile
from tests.interference_helpers import dense_profiles, every_plan, price, random_models


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


# ------------------------------------------- per-thread-count curves (issue 27, item 2)


@st.composite
def extended_problems(draw, with_dispatch: bool = False):
    """A random small profile with a random model of base and per-thread-count curves, a
    batch, cores, exact_cores, and (``with_dispatch``) dispatch costs non-decreasing in k."""
    profile, B = draw(dense_profiles(5, 6))
    profile = replace(profile, interference=draw(random_models(profile.max_threads)))
    batch = draw(st.integers(1, B))
    if with_dispatch:
        costs = sorted(draw(st.lists(st.sampled_from([0.0, 1.0]) | st.floats(0.0, 5.0), min_size=1, max_size=4)))
        profile = replace(profile, dispatch=tuple((k + 1, batch, c) for k, c in enumerate(costs)))
    return profile, batch, draw(st.integers(1, profile.max_threads)), draw(st.booleans())


def brute_force_optimum(profile, batch, cores, exact):
    """The least objective (tests/interference_helpers.price) over every plan; inf for none."""
    return min((price(p, profile) for p in every_plan(profile, batch, cores, exact)), default=math.inf)


@settings(max_examples=250, deadline=None)
@given(extended_problems())
def test_planning_under_per_thread_curves_matches_brute_force_with_and_without_idle_cores(problem):
    profile, batch, cores, exact = problem
    expected = brute_force_optimum(profile, batch, cores, exact)
    try:
        result = optimize_with_interference(profile, batch, cores, OptimizerOptions(exact_cores=exact))
    except OptimizerError:
        assert expected == math.inf
        return
    assert result.plan.predicted_ms == expected  # the same floats, not merely close
    assert price(result.plan, profile) == expected == Predictor(profile).plan_ms(result.plan)
    assert latency_under_interference(result.plan, profile) == expected


@settings(max_examples=150, deadline=None)
@given(extended_problems(with_dispatch=True))
def test_the_planner_with_dispatch_cost_matches_brute_force_under_per_thread_curves(problem):
    profile, batch, cores, exact = problem
    expected = brute_force_optimum(profile, batch, cores, exact)
    try:
        best = best_plan(Predictor(profile), batch, cores, OptimizerOptions(exact_cores=exact))
    except OptimizerError:
        assert expected == math.inf
        return
    assert best.predicted_ms == expected == price(best, profile)


def test_each_thread_count_is_scaled_by_its_own_curve_and_others_by_the_base():
    model = Interference(points=((2, 1.5),), curves=(ThreadCurve(1, ((2, 3.0),)),))
    profile = profile_of({(1, 1): 10.0, (2, 1): 4.0, (3, 1): 2.0}, model)
    scaled = corun_profile(profile, 3)
    assert scaled.latency(1, 1) == 30.0  # 1 thread beside 2 others: its own curve, 3x
    assert scaled.latency(2, 1) == pytest.approx(4.0 * 1.25)  # 2 threads beside 1: the base, halfway
    assert Predictor(profile).slowdown(1, 3) == 3.0 and Predictor(profile).slowdown(2, 3) == 1.25


def test_per_thread_curves_can_change_the_best_plan():
    # the base says 1-thread co-runs are cheap, but 1-thread instances measured 2x slower together
    cells = {(1, 1): 10.0, (2, 2): 15.0}
    base = profile_of(cells, Interference(points=((1, 1.1),)))
    curved = profile_of(cells, Interference(points=((1, 1.1),), curves=(ThreadCurve(1, ((1, 2.0),)),)))
    assert optimize_with_interference(base, 2, 2).plan.describe() == "2 x 1t x 1"
    assert optimize_with_interference(curved, 2, 2).plan.describe() == "1 x 2t x 2"


# ---------------------------------------------------------------------------- the fit


def known(t, other):
    """A known per-thread-count model: 1-thread instances barely slow down, 2 and 4 threads a lot."""
    return {1: 1.0 + 0.01 * other, 2: 1.0 + 0.08 * other, 4: 1.0 + 0.05 * other}[t]


def known_sweep(threads=(1, 2, 4), cores=16):
    """Noise-free k x t sweeps (k = 2 .. cores // t) of the known model: (t, other, slowdown)."""
    return [(t, (k - 1) * t, known(t, (k - 1) * t)) for t in threads for k in range(2, cores // t + 1)]


def test_the_fit_recovers_a_known_per_thread_count_model_exactly():
    model = fit_interference(known_sweep())
    # 4 threads lie between 1 and 2 at every core count both measured: the median, the base curve
    assert model.form == "busy-cores-by-threads" and [c.threads for c in model.curves] == [1, 2]
    for t, other, s in known_sweep():
        assert model.slowdown(other, t) == pytest.approx(s, rel=1e-12)
    assert model.fit_error == pytest.approx(0.0, abs=1e-12)
    assert all(c.fit_error == pytest.approx(0.0, abs=1e-12) for c in model.curves)
    assert model.base_fit_error > 0.05  # one curve for all thread counts misses by far


def test_a_sweep_of_one_thread_count_fits_todays_busy_cores_model():
    sweep = known_sweep(threads=(1,))
    model = fit_interference(sweep)
    assert model == fit_interference([(other, s) for _, other, s in sweep])
    assert model.form == "busy-cores" and model.curves == () and model.base_fit_error is None
    assert model.to_json().keys() == {"form", "points", "fit_error"}


def test_beside_curves_the_base_never_gets_faster_as_more_cores_are_busy():
    # 1-thread runs leave every core count busy, 4-thread runs only multiples of 4: the pooled
    # medians zigzag (1.08 -> 1.14 at 4 others, back to 1.10 at 5); the base is their running max
    sweep = [(1, k, 1.0 + 0.02 * k) for k in range(1, 16)] + [(4, k, 1.0 + 0.05 * k) for k in (4, 8, 12)]
    model = fit_interference(sweep)
    assert [c.threads for c in model.curves] == [1, 4]
    base = [model.slowdown(k, threads=2) for k in range(16)]
    assert base == sorted(base) and base[5] == pytest.approx(1.14) and base[13] == pytest.approx(1.42)
    assert model.fit_error == pytest.approx(0.0, abs=1e-12) and model.base_fit_error > 0.01


def test_a_thread_count_the_base_curve_already_fits_gets_no_curve_of_its_own():
    # 2-thread co-runs follow the 1-thread curve within half a point: the simplest form wins
    sweep = [(1, k, 1.0 + 0.02 * k) for k in range(1, 9)] + [(2, k, (1.0 + 0.02 * k) * 1.004) for k in (2, 4, 6)]
    model = fit_interference(sweep)
    assert model.curves == () and model.fit_error < 0.01
    exact = fit_interference(sweep, tolerance=0.0)  # any gain counts: both get a curve, and the fit is exact
    assert [c.threads for c in exact.curves] == [1, 2] and exact.fit_error == pytest.approx(0.0, abs=1e-12)


@settings(max_examples=150, deadline=None)
@given(random_models(8), st.lists(st.tuples(st.integers(1, 8), st.integers(0, 16)), min_size=1, max_size=30))
def test_with_no_tolerance_the_fit_reproduces_noise_free_data_of_any_model(truth, cells):
    observations = [(t, k, truth.slowdown(k, t)) for t, k in cells]
    if not any(k > 0 for _, k, _ in observations):
        return
    model = fit_interference(observations, tolerance=0.0)
    # the same (t, k) always has the same slowdown here, so every observation is hit
    assert model.fit_error == pytest.approx(0.0, abs=1e-12)
    for t, k, s in observations:
        assert model.slowdown(k, t) == pytest.approx(s, rel=1e-12)


def test_an_observation_of_another_shape_or_value_is_rejected_naming_it():
    with pytest.raises(ProfileError, match=r"an observation must be .* got \(1,\)"):
        fit_interference([(1,)])
    with pytest.raises(ProfileError, match="threads must be a positive integer, got 0"):
        fit_interference([(0, 1, 1.2)])
    with pytest.raises(ProfileError, match="tolerance must be a finite number >= 0, got -1"):
        fit_interference([(1, 1.2)], tolerance=-1)


# ------------------------------------------------------------------------ the file


def test_a_busy_cores_model_written_today_loads_and_writes_back_unchanged():
    old = {"form": "busy-cores", "points": [[1, 1.1], [3, 1.5]], "fit_error": 0.02}
    model = Interference.from_json(old)
    assert model.to_json() == old and model.curves == () and model.slowdown(2, threads=7) == pytest.approx(1.3)


def test_a_model_with_curves_round_trips_under_its_own_form():
    model = fit_interference(known_sweep())
    text = model.to_json()
    assert text["form"] == "busy-cores-by-threads" and [c["threads"] for c in text["curves"]] == [1, 2]
    assert Interference.from_json(text) == model


@pytest.mark.parametrize("obj, fragment", [
    ({"form": "busy-cores", "points": [[1, 1.1]], "curves": []}, "form 'busy-cores' has no curves"),
    ({"form": "busy-cores-by-threads", "points": [[1, 1.1]]}, "needs at least one curve"),
    ({"form": "busy-cores-by-threads", "points": [], "curves": [{"threads": 0, "points": [[1, 2.0]]}]},
     "interference curve threads must be a positive integer, got 0"),
    ({"form": "busy-cores-by-threads", "points": [], "curves": [{"threads": 2, "points": []}]},
     "curve of 2 threads has no points"),
    ({"form": "busy-cores-by-threads", "points": [],
      "curves": [{"threads": 2, "points": [[1, 2.0]]}, {"threads": 2, "points": [[1, 3.0]]}]},
     r"curves of increasing thread counts, got \[2, 2\]"),
    ({"form": "busy-cores-by-threads", "points": [], "curves": [{"threads": 2, "points": [[1, -2.0]]}]},
     "interference slowdown must be a number"),
    ({"form": "busy-cores", "points": [[1, 1.1]], "fit_error": "low"}, "fit_error must be a finite number >= 0"),
])
def test_a_bad_model_in_a_file_is_rejected_naming_the_value(obj, fragment):
    with pytest.raises(ProfileError, match=fragment):
        Interference.from_json(obj)


def test_the_policy_and_the_simulator_price_per_thread_curves_as_the_predictor_does():
    from packrat_sim.plan import Instance, Plan
    from packrat_sim.policy import ServiceModel, batch_cost
    from packrat_sim.simulator import simulate

    model = Interference(points=((2, 1.5),), curves=(ThreadCurve(1, ((2, 3.0),)),))
    profile = profile_of({(1, 1): 10.0, (2, 1): 4.0, (1, 2): 12.0}, model)
    plan = Plan((Instance(1, 1), Instance(2, 1)), 2, 3)
    predicted = Predictor(profile).compute_ms(plan)
    assert predicted == 30.0  # 1 thread beside 2 others: 3x on its own curve (2 threads beside 1: 1.25x)
    assert batch_cost(ServiceModel(profile), plan, 2) == pytest.approx(predicted)
    result = simulate(profile, 3, "closed:batch=2,requests=4", plan, seed=0)
    assert result.stats.batch_latency.p50_ms == pytest.approx(predicted)
