"""Workloads: the spec grammar, its dataclasses, arrival processes and trace replay."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from packrat_sim.workload import (
    Batching,
    Closed,
    Diurnal,
    Poisson,
    Step,
    Steps,
    Trace,
    TraceFile,
    WorkloadError,
    arrival_times_ms,
    describe,
    load_workload,
    parse_duration_ms,
    parse_rate_per_s,
    parse_trace_csv,
    parse_workload,
    read_trace,
)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ------------------------------------------------------------------ grammar


def test_a_poisson_spec_parses_into_rate_per_second_and_duration_in_seconds():
    w = parse_workload("poisson:rate=40/s,duration=60s")
    assert w == Poisson(rate_per_s=40.0, duration_s=60.0)
    assert w.batching == Batching(max_batch=64, max_delay_ms=10.0)


def test_units_of_rates_and_durations_are_converted():
    assert parse_rate_per_s("2/ms") == 2000.0
    assert parse_rate_per_s("120/min") == 2.0
    assert parse_rate_per_s("7") == 7.0
    assert parse_duration_ms("250ms") == 250.0
    assert parse_duration_ms("1.5") == 1500.0
    assert parse_duration_ms("2min") == 120_000.0
    assert parse_duration_ms("10us") == pytest.approx(0.01)


def test_batching_options_follow_torchserve_batch_size_and_max_delay():
    w = parse_workload("poisson:rate=100,duration=10s,max_batch=16,max_delay=5ms")
    assert w.batching == Batching(max_batch=16, max_delay_ms=5.0)
    assert w.max_batch == 16


def test_a_closed_spec_takes_requests_or_batches():
    assert parse_workload("closed:batch=64,requests=1000") == Closed(batch=64, requests=1000)
    assert parse_workload("closed:batch=8,batches=3,clients=2,think=5ms") == Closed(8, 24, 2, 5.0)


def test_a_closed_workload_splits_its_requests_into_full_batches_and_a_remainder():
    assert Closed(batch=64, requests=150).batch_sizes() == [64, 64, 22]
    assert Closed(batch=4, requests=8).batch_sizes() == [4, 4]


def test_a_steps_spec_lists_rate_at_duration_items():
    w = parse_workload("steps:8/s@20s,32/s@20s,8/s@500ms,max_batch=32")
    assert w == Steps((Step(8.0, 20.0), Step(32.0, 20.0), Step(8.0, 0.5)), Batching(32, 10.0))
    assert w.duration_s == 40.5


def test_a_diurnal_spec_parses_base_peak_period_and_duration():
    w = parse_workload("diurnal:base=20/s,peak=200/s,period=60s,duration=120s")
    assert w == Diurnal(20.0, 200.0, 60.0, 120.0)
    assert w.rate_at(0.0) == pytest.approx(20.0)
    assert w.rate_at(30.0) == pytest.approx(200.0)


def test_a_trace_spec_names_a_file_bare_or_with_path_and_is_not_read_when_parsed():
    assert parse_workload("trace:/nowhere/a.csv,unit=ms") == TraceFile("/nowhere/a.csv", "ms")
    assert parse_workload("trace:path=/nowhere/a.csv") == TraceFile("/nowhere/a.csv", "s")


@pytest.mark.parametrize(
    "spec",
    [
        "poisson:rate=40/s,duration=60s",
        "poisson:rate=0.5/s,duration=0.1s,max_batch=3,max_delay=0.25ms",
        "closed:batch=64,requests=1000,clients=3,think=2.5ms",
        "steps:8/s@20s,0/s@1.5s,32/s@20s,max_delay=0ms",
        "diurnal:base=0/s,peak=200/s,period=60s,duration=120s,max_batch=8",
        "trace:/tmp/x.csv,unit=ms,max_batch=4",
    ],
)
def test_the_canonical_spec_of_a_workload_parses_back_to_the_same_workload(spec):
    w = parse_workload(spec)
    assert parse_workload(w.to_spec()) == w


@settings(max_examples=60, deadline=None)
@given(
    rate=st.floats(min_value=1e-3, max_value=1e4, allow_nan=False),
    duration=st.floats(min_value=1e-3, max_value=1e3, allow_nan=False),
    max_batch=st.integers(1, 4096),
    delay=st.floats(min_value=0, max_value=1e4, allow_nan=False),
)
def test_any_poisson_workload_round_trips_through_its_spec(rate, duration, max_batch, delay):
    w = Poisson(rate, duration, Batching(max_batch, delay))
    assert parse_workload(w.to_spec()) == w


@pytest.mark.parametrize(
    "spec, named",
    [
        ("", "empty"),
        ("uniform:rate=3", "must start with one of"),
        ("poisson", "must start with one of"),
        ("poisson:rate=40/s", "needs duration"),
        ("poisson:rate=-3/s,duration=60s", "'-3/s' is negative"),
        ("poisson:rate=0/s,duration=60s", "must be > 0"),
        ("poisson:rate=40/s,duration=0s", "'0s' must be > 0"),
        ("poisson:rate=40/s,duration=60parsecs", "'60parsecs' is not a duration"),
        ("poisson:rate=fast,duration=60s", "'fast' is not a rate"),
        ("poisson:rate=40/s,duration=60s,speed=3", "unknown option 'speed'"),
        ("poisson:rate=40/s,rate=4/s,duration=60s", "'rate' is given twice"),
        ("poisson:rate=40/s,duration=60s,", "empty item"),
        ("poisson:rate=40/s,duration=60s,max_batch=0", "max_batch must be a positive integer, got '0'"),
        ("poisson:rate=40/s,duration=60s,max_batch=2.5", "got '2.5'"),
        ("poisson:rate=40/s,duration=60s,max_delay=-1ms", "'-1ms' is negative"),
        ("closed:batch=64", "exactly one of requests=N, batches=N or duration=D"),
        ("closed:requests=10", "needs batch"),
        ("closed:batch=-2,requests=10", "got '-2'"),
        ("steps:8/s@20s,32", "step '32' must be RATE@DURATION"),
        ("steps:8/s@0s", "must be > 0"),
        ("steps:0/s@10s", "no requests"),
        ("steps:max_batch=4", "at least one RATE@DURATION"),
        ("diurnal:base=50/s,peak=10/s,period=60s,duration=60s", "peak (10.0/s) must be >= base"),
        ("trace:", "needs a file path"),
        ("trace:a.csv,unit=hours", "trace unit 'hours'"),
    ],
)
def test_a_malformed_spec_is_a_workload_error_naming_the_bad_part(spec, named):
    with pytest.raises(WorkloadError, match=None) as err:
        parse_workload(spec)
    assert named in str(err.value)
    assert isinstance(err.value, ValueError)


def test_a_workload_error_is_raised_for_huge_workloads_instead_of_exhausting_memory():
    with pytest.raises(WorkloadError, match="more than"):
        parse_workload("poisson:rate=1e9/s,duration=1h")


def test_every_kind_has_a_one_line_description():
    for spec in ("poisson:rate=4,duration=1s", "closed:batch=2,requests=3", "steps:1/s@1s", "diurnal:base=1,peak=2,period=1s,duration=1s"):
        text = describe(parse_workload(spec))
        assert text and "\n" not in text


# ---------------------------------------------------------------- arrivals


def test_poisson_arrivals_are_sorted_inside_the_duration_and_about_rate_times_duration():
    t = arrival_times_ms(Poisson(200.0, 50.0), rng(1))
    assert np.all(np.diff(t) >= 0)
    assert t.min() >= 0 and t.max() < 50_000.0
    assert abs(t.size - 10_000) < 4 * 100  # 4 sigma of Poisson(10000)


def test_poisson_interarrival_times_are_exponential_with_mean_one_over_rate():
    t = arrival_times_ms(Poisson(100.0, 1000.0), rng(2))
    gaps = np.diff(t)
    assert gaps.mean() == pytest.approx(10.0, rel=0.02)
    assert gaps.std() == pytest.approx(10.0, rel=0.03)  # exponential: std == mean


def test_the_same_generator_seed_gives_the_same_arrivals_and_another_seed_others():
    w = parse_workload("steps:50/s@2s,500/s@2s")
    a = arrival_times_ms(w, rng(7))
    b = arrival_times_ms(w, rng(7))
    c = arrival_times_ms(w, rng(8))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_arrivals_never_touch_the_global_numpy_random_state():
    before = np.random.get_state()[1].copy()
    arrival_times_ms(parse_workload("diurnal:base=1,peak=100,period=2s,duration=4s"), rng(0))
    assert np.array_equal(np.random.get_state()[1], before)


def test_step_arrivals_follow_each_step_rate_in_its_own_interval():
    t = arrival_times_ms(parse_workload("steps:100/s@10s,1000/s@10s,0/s@5s,100/s@10s"), rng(3))
    counts = [np.count_nonzero((t >= lo) & (t < hi)) for lo, hi in ((0, 1e4), (1e4, 2e4), (2e4, 2.5e4), (2.5e4, 3.5e4))]
    assert abs(counts[0] - 1000) < 130
    assert abs(counts[1] - 10_000) < 400
    assert counts[2] == 0
    assert abs(counts[3] - 1000) < 130


def test_diurnal_arrivals_are_denser_at_the_peak_than_at_the_base():
    w = Diurnal(base_per_s=10.0, peak_per_s=1000.0, period_s=20.0, duration_s=20.0)
    t = arrival_times_ms(w, rng(4)) / 1000.0
    near_base = np.count_nonzero(t < 2.0)
    near_peak = np.count_nonzero((t >= 9.0) & (t < 11.0))
    expected_total = (10.0 + 1000.0) / 2 * 20.0
    assert near_peak > 5 * near_base
    assert abs(t.size - expected_total) < 4 * np.sqrt(expected_total)


def test_a_closed_workload_has_no_open_loop_arrivals():
    with pytest.raises(WorkloadError, match="closed-loop"):
        arrival_times_ms(Closed(4, 8), rng())


# ------------------------------------------------------------------- traces


def test_a_trace_without_header_is_one_timestamp_per_line_in_seconds():
    assert parse_trace_csv("0\n0.5\n0.5\n2\n").tolist() == [0.0, 500.0, 500.0, 2000.0]


def test_a_trace_with_a_header_uses_the_named_timestamp_column_and_unit():
    text = "request,timestamp\n1,10\n2,12.5\n"
    assert parse_trace_csv(text, unit="ms").tolist() == [10.0, 12.5]


def test_unsorted_trace_timestamps_are_an_error_naming_the_line():
    with pytest.raises(WorkloadError, match=r"line 3: timestamps are not sorted \(1.0 comes after 2.0\)"):
        parse_trace_csv("0\n2\n1\n")


def test_negative_trace_timestamps_are_an_error_naming_the_line():
    with pytest.raises(WorkloadError, match="line 2: timestamp -1.0 is negative"):
        parse_trace_csv("arrival\n-1\n3\n")


@pytest.mark.parametrize(
    "text, named",
    [("", "empty"), ("arrival\n", "header but no arrivals"), ("0\nsoon\n", "line 2: 'soon' is not a timestamp"), ("0\nnan\n", "not finite")],
)
def test_a_broken_trace_is_an_error_naming_what_is_wrong(text, named):
    with pytest.raises(WorkloadError, match=named):
        parse_trace_csv(text)


def test_a_trace_file_is_read_when_the_workload_is_loaded(tmp_path):
    path = tmp_path / "arrivals.csv"
    path.write_text("t\n0.001\n0.002\n0.010\n")
    w = load_workload(f"trace:{path},max_batch=2")
    assert isinstance(w, Trace)
    assert w.timestamps_ms == pytest.approx((1.0, 2.0, 10.0))
    assert w.batching.max_batch == 2
    assert arrival_times_ms(w, rng()).tolist() == pytest.approx([1.0, 2.0, 10.0])


def test_a_missing_or_unreadable_trace_file_is_a_workload_error(tmp_path):
    with pytest.raises(WorkloadError, match="does not exist"):
        read_trace(str(tmp_path / "missing.csv"))
    with pytest.raises(WorkloadError, match="is a directory"):
        read_trace(str(tmp_path))


def test_an_inline_trace_validates_its_timestamps():
    with pytest.raises(WorkloadError, match="not sorted"):
        Trace((0.0, 5.0, 4.0))
    with pytest.raises(WorkloadError, match="no arrivals"):
        Trace(())
