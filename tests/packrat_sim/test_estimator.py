"""Packrat's batch-size estimator: EWMA, power-of-two rounding, mode of a window, change-only decisions."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from packrat_sim.estimator import (
    Decision,
    EstimatorConfig,
    EstimatorError,
    EstimatorState,
    initial_state,
    pow2_floor,
    replay,
    step,
)


def test_pow2_floor_rounds_down_to_a_power_of_two_and_small_values_to_one():
    assert [pow2_floor(x) for x in (0, 0.4, 1, 1.9, 2, 3, 4, 7.99, 8, 1000)] == [1, 1, 1, 1, 2, 2, 4, 4, 8, 512]


def test_no_decision_is_made_until_the_window_is_full():
    cfg = EstimatorConfig(alpha=1.0, window=3)
    decisions = replay(cfg, 64, [20, 20])
    assert [d.mode for d in decisions] == [None, None]
    assert not any(d.reconfigure for d in decisions)
    assert all(d.batch == 64 for d in decisions)


def test_a_steady_queue_depth_reconfigures_once_to_its_power_of_two_floor():
    cfg = EstimatorConfig(alpha=1.0, window=3)
    decisions = replay(cfg, 64, [20] * 6)
    assert [d.reconfigure for d in decisions] == [False, False, True, False, False, False]
    assert [d.batch for d in decisions] == [64, 64, 16, 16, 16, 16]


def test_the_ewma_weighs_the_newest_observation_by_alpha():
    cfg = EstimatorConfig(alpha=0.25, window=1)
    state = initial_state(cfg, 1)
    state, _ = step(cfg, state, 8)
    assert state.ewma == 8.0
    state, d = step(cfg, state, 40)
    assert state.ewma == pytest.approx(0.25 * 40 + 0.75 * 8)  # 16
    assert d.estimate == 16


def test_the_mode_of_the_window_ignores_a_single_outlier():
    cfg = EstimatorConfig(alpha=1.0, window=5)
    decisions = replay(cfg, 8, [8, 8, 60, 8, 8, 8])
    assert [d.estimate for d in decisions] == [8, 8, 32, 8, 8, 8]
    assert not any(d.reconfigure for d in decisions)


def test_a_tie_in_the_window_keeps_the_current_batch_size():
    cfg = EstimatorConfig(alpha=1.0, window=4)
    decisions = replay(cfg, 4, [4, 4, 16, 16])
    assert decisions[-1].mode == 4 and not decisions[-1].reconfigure


def test_a_tie_without_the_current_batch_size_picks_the_most_recent_estimate():
    cfg = EstimatorConfig(alpha=1.0, window=4)
    decisions = replay(cfg, 64, [2, 2, 16, 16])
    assert decisions[-1].mode == 16 and decisions[-1].reconfigure


def test_estimates_are_clamped_to_the_power_of_two_bounds():
    cfg = EstimatorConfig(alpha=1.0, window=1, min_batch=3, max_batch=48)
    assert (cfg.lower, cfg.upper) == (4, 32)
    assert [d.estimate for d in replay(cfg, 8, [0, 1000, 9])] == [4, 32, 8]


def test_a_step_is_pure_the_same_state_and_observation_give_the_same_result():
    cfg = EstimatorConfig()
    state = EstimatorState(current=8, ewma=3.0, recent=(2, 2, 4))
    assert step(cfg, state, 12) == step(cfg, state, 12)
    assert state == EstimatorState(current=8, ewma=3.0, recent=(2, 2, 4))


@pytest.mark.parametrize(
    "kwargs, named",
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": 1.5}, "alpha"),
        ({"window": 0}, "window"),
        ({"interval_ms": 0}, "interval_ms"),
        ({"interval_ms": math.inf}, "interval_ms"),
        ({"min_batch": 5, "max_batch": 7}, "no power of two"),
    ],
)
def test_a_bad_configuration_is_an_error_naming_the_value(kwargs, named):
    with pytest.raises(EstimatorError, match=named):
        EstimatorConfig(**kwargs)


@pytest.mark.parametrize("depth", [-1, math.nan, math.inf, "3"])
def test_a_bad_observation_is_an_error(depth):
    cfg = EstimatorConfig()
    with pytest.raises(EstimatorError, match="queue depth"):
        step(cfg, initial_state(cfg, 1), depth)


@settings(max_examples=200, deadline=None)
@given(
    depths=st.lists(st.floats(min_value=0, max_value=5000, allow_nan=False), min_size=1, max_size=40),
    alpha=st.floats(min_value=0.01, max_value=1.0),
    window=st.integers(1, 6),
    start=st.sampled_from([1, 2, 4, 8, 16, 32, 64]),
)
def test_decisions_are_powers_of_two_in_bounds_and_reconfigure_exactly_when_the_batch_changes(depths, alpha, window, start):
    cfg = EstimatorConfig(alpha=alpha, window=window, max_batch=64)
    state = initial_state(cfg, start)
    for depth in depths:
        previous = state.current
        state, d = step(cfg, state, depth)
        assert isinstance(d, Decision)
        assert d.estimate & (d.estimate - 1) == 0 and 1 <= d.estimate <= 64
        assert d.reconfigure == (d.batch != previous)
        assert state.current == d.batch
        assert len(state.recent) <= window


def test_idle_steps_jump_gives_what_stepping_an_empty_queue_gives():
    from packrat_sim.estimator import idle_steps, settled

    cfg = EstimatorConfig(alpha=0.2, window=3)
    state = initial_state(cfg, 1)
    for depth in (40, 9) + (0,) * 20:
        state, _ = step(cfg, state, depth)
    assert settled(cfg, state)
    slow = state
    for _ in range(25):
        slow, decision = step(cfg, slow, 0)
        assert not decision.reconfigure
    fast = idle_steps(cfg, state, 25)
    assert (fast.current, fast.recent) == (slow.current, slow.recent)
    assert fast.ewma == pytest.approx(slow.ewma, rel=1e-9)
    assert idle_steps(cfg, state, 10**300).ewma == 0.0  # any number of ticks, at once


def test_idle_steps_refuses_a_state_that_is_still_moving():
    from packrat_sim.estimator import EstimatorError, idle_steps, settled

    cfg = EstimatorConfig(alpha=0.5, window=2)
    state, _ = step(cfg, initial_state(cfg, 1), 32)
    assert not settled(cfg, state)
    with pytest.raises(EstimatorError, match="settled"):
        idle_steps(cfg, state, 3)
