"""Latency statistics shared by the simulator, the runner and the dashboard."""

from __future__ import annotations

import math

import numpy as np
import pytest

from packrat_sim.metrics import (
    MetricsError,
    in_system,
    latency_stats,
    mean_in_system,
    serving_stats,
    span_ms,
    throughput_per_s,
    utilisation,
)


def test_latency_statistics_of_one_to_a_hundred_are_the_textbook_values():
    s = latency_stats(np.arange(1, 101))
    assert s.count == 100
    assert s.mean_ms == 50.5
    assert s.min_ms == 1 and s.max_ms == 100
    assert s.p50_ms == pytest.approx(50.5)
    assert s.p90_ms == pytest.approx(90.1)
    assert s.p99_ms == pytest.approx(99.01)


def test_no_values_give_a_count_of_zero_and_null_statistics_never_zero():
    s = latency_stats([])
    assert s.count == 0
    assert math.isnan(s.p99_ms)
    assert s.to_json() == {"count": 0, "mean_ms": None, "min_ms": None, "p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None}


@pytest.mark.parametrize("bad, named", [([1.0, -2.0], "negative"), ([1.0, math.nan], "not finite")])
def test_negative_or_non_finite_latencies_are_errors(bad, named):
    with pytest.raises(MetricsError, match=named):
        latency_stats(bad)


def test_throughput_and_utilisation_are_per_second_and_per_core_time():
    assert throughput_per_s(50, 2000.0) == 25.0
    assert utilisation(busy_core_ms=3000.0, cores=4, span=1000.0) == 0.75
    assert math.isnan(throughput_per_s(0, 0.0))
    with pytest.raises(MetricsError, match="cores"):
        utilisation(1.0, 0, 1.0)


def test_serving_statistics_of_a_hand_made_run():
    # two batches: requests 0,1 dispatched at 10, done at 30; request 2 dispatched at 30, done at 40
    stats = serving_stats(
        arrival_ms=[0.0, 10.0, 20.0],
        dispatch_ms=[10.0, 10.0, 30.0],
        completion_ms=[30.0, 30.0, 40.0],
        batch_dispatch_ms=[10.0, 30.0],
        batch_completion_ms=[30.0, 40.0],
        busy_core_ms=60.0,
        cores=2,
    )
    assert stats.requests == 3 and stats.batches == 2
    assert stats.span_s == 0.04
    assert stats.throughput_per_s == pytest.approx(75.0)
    assert stats.mean_batch_size == 1.5
    assert stats.request_latency.max_ms == 30.0
    assert stats.request_latency.mean_ms == pytest.approx((30 + 20 + 20) / 3)
    assert stats.queueing_delay.mean_ms == pytest.approx((10 + 0 + 10) / 3)
    assert stats.batch_latency.mean_ms == 15.0
    assert stats.utilisation == pytest.approx(60.0 / (2 * 40.0))
    assert stats.to_json()["request_latency"]["p50_ms"] == 20.0


def test_a_request_completing_before_its_dispatch_is_rejected():
    with pytest.raises(MetricsError, match="request 0"):
        serving_stats(
            arrival_ms=[0.0], dispatch_ms=[5.0], completion_ms=[4.0],
            batch_dispatch_ms=[5.0], batch_completion_ms=[4.0], busy_core_ms=1.0, cores=1,
        )


def test_arrays_of_different_lengths_are_rejected():
    with pytest.raises(MetricsError, match="differ in length"):
        serving_stats(
            arrival_ms=[0.0, 1.0], dispatch_ms=[5.0], completion_ms=[6.0],
            batch_dispatch_ms=[5.0], batch_completion_ms=[6.0], busy_core_ms=1.0, cores=1,
        )


def test_the_number_in_system_counts_arrived_and_not_yet_completed_requests():
    arrival = [0.0, 1.0, 2.0]
    completion = [3.0, 3.0, 5.0]
    assert in_system(arrival, completion, [0.0, 1.5, 2.0, 3.0, 4.9, 5.0]).tolist() == [1, 2, 3, 1, 1, 0]
    assert span_ms(arrival, completion) == 5.0
    assert mean_in_system(arrival, completion) == pytest.approx((3 + 2 + 3) / 5)
