"""Latency statistics: one definition shared by the simulator, the real runner and the dashboard.

Pure functions over numpy arrays. Units: every ``*_ms`` is milliseconds, ``*_s`` seconds,
throughput is requests per second, utilisation a fraction of the cores' time (0..1).

Definitions (per request i, per batch k):

* request latency   = completion_i - arrival_i  (arrival: when the request reached the
  server; for a closed loop, when its client submitted the batch)
* queueing delay    = dispatch_i - arrival_i    (time before its batch started)
* batch latency     = completion_k - dispatch_k (service time of the whole batch: the
  slowest of its sub-batches)
* span              = last completion - first arrival
* throughput        = requests / span
* utilisation       = busy core-time / (cores * span)

Percentiles use numpy's default (linear interpolation between order statistics). An
empty set of values gives ``count = 0`` and NaN statistics (``null`` in JSON), never 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from packrat_sim.errors import PackratError


class MetricsError(PackratError):
    """Inconsistent or invalid measurements; the message names the value."""


def _array(values: object, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float).reshape(-1)
    if arr.size and not np.all(np.isfinite(arr)):
        k = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise MetricsError(f"{what}[{k}] = {arr[k]!r} is not finite")
    return arr


def _num(x: float) -> float | None:
    return None if not math.isfinite(x) else float(x)


@dataclass(frozen=True)
class LatencyStats:
    """Summary of a set of durations in ms: count, mean, min, p50, p90, p99, max."""

    count: int
    mean_ms: float
    min_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    def to_json(self) -> dict:
        """``count``, then every statistic (ms) in field order, None where it is not finite."""
        return {"count": self.count, **{f.name: _num(getattr(self, f.name)) for f in fields(self)[1:]}}


def latency_stats(values_ms: object) -> LatencyStats:
    """Statistics of durations in ms (finite, >= 0). Empty input: count 0, NaN statistics."""
    arr = _array(values_ms, "latency")
    if arr.size == 0:
        nan = float("nan")
        return LatencyStats(0, nan, nan, nan, nan, nan, nan)
    if arr.min() < 0:
        k = int(np.argmin(arr))
        raise MetricsError(f"latency[{k}] = {arr[k]!r} ms is negative")
    p50, p90, p99 = np.percentile(arr, [50.0, 90.0, 99.0])
    return LatencyStats(
        count=int(arr.size),
        mean_ms=float(arr.mean()),
        min_ms=float(arr.min()),
        p50_ms=float(p50),
        p90_ms=float(p90),
        p99_ms=float(p99),
        max_ms=float(arr.max()),
    )


def span_ms(arrival_ms: object, completion_ms: object) -> float:
    """Last completion minus first arrival (ms); 0 for no requests."""
    a = _array(arrival_ms, "arrival_ms")
    c = _array(completion_ms, "completion_ms")
    if a.size == 0:
        return 0.0
    return float(c.max() - a.min())


def throughput_per_s(requests: int, span: float) -> float:
    """Requests per second over a span in ms (NaN for an empty span)."""
    if span <= 0:
        return float("nan")
    return requests / (span / 1000.0)


def utilisation(busy_core_ms: float, cores: int, span: float) -> float:
    """Busy core-time (core-ms) over the cores' time ``cores * span`` (NaN for an empty span)."""
    if cores < 1:
        raise MetricsError(f"cores must be >= 1, got {cores!r}")
    if busy_core_ms < 0:
        raise MetricsError(f"busy core-time {busy_core_ms!r} ms is negative")
    if span <= 0:
        return float("nan")
    return busy_core_ms / (cores * span)


def in_system(arrival_ms: object, completion_ms: object, at_ms: object) -> np.ndarray:
    """Number of requests in the system (arrived, not yet completed) at each time of ``at_ms``.

    A request counts at its arrival instant and no longer at its completion instant.
    """
    a = np.sort(_array(arrival_ms, "arrival_ms"))
    c = np.sort(_array(completion_ms, "completion_ms"))
    t = _array(at_ms, "at_ms")
    return np.searchsorted(a, t, side="right") - np.searchsorted(c, t, side="right")


def mean_in_system(arrival_ms: object, completion_ms: object) -> float:
    """Time-average number of requests in the system over the span (Little's L)."""
    a = _array(arrival_ms, "arrival_ms")
    c = _array(completion_ms, "completion_ms")
    span = span_ms(a, c)
    if span <= 0:
        return float("nan")
    return float((c - a).sum() / span)


@dataclass(frozen=True)
class ServingStats:
    """The statistics of one serving run (simulated or real); see the module docstring."""

    requests: int
    batches: int
    span_s: float
    throughput_per_s: float
    mean_batch_size: float
    request_latency: LatencyStats
    batch_latency: LatencyStats
    queueing_delay: LatencyStats
    utilisation: float
    busy_core_ms: float

    def to_json(self) -> dict:
        return {
            "requests": self.requests,
            "batches": self.batches,
            "span_s": _num(self.span_s),
            "throughput_per_s": _num(self.throughput_per_s),
            "mean_batch_size": _num(self.mean_batch_size),
            "request_latency": self.request_latency.to_json(),
            "batch_latency": self.batch_latency.to_json(),
            "queueing_delay": self.queueing_delay.to_json(),
            "utilisation": _num(self.utilisation),
            "busy_core_ms": _num(self.busy_core_ms),
        }


def serving_stats(
    *,
    arrival_ms: object,
    dispatch_ms: object,
    completion_ms: object,
    batch_dispatch_ms: object,
    batch_completion_ms: object,
    busy_core_ms: float,
    cores: int,
) -> ServingStats:
    """Statistics of a run from per-request and per-batch times (all ms, equal lengths per kind).

    Per request: ``arrival_ms <= dispatch_ms <= completion_ms``; per batch:
    ``batch_dispatch_ms <= batch_completion_ms``. ``busy_core_ms``: core-ms the instances
    spent computing. Raises MetricsError on inconsistent input.
    """
    a = _array(arrival_ms, "arrival_ms")
    d = _array(dispatch_ms, "dispatch_ms")
    c = _array(completion_ms, "completion_ms")
    bd = _array(batch_dispatch_ms, "batch_dispatch_ms")
    bc = _array(batch_completion_ms, "batch_completion_ms")
    if not (a.size == d.size == c.size):
        raise MetricsError(f"per-request arrays differ in length: {a.size}, {d.size}, {c.size}")
    if bd.size != bc.size:
        raise MetricsError(f"per-batch arrays differ in length: {bd.size}, {bc.size}")
    tol = 1e-9
    if a.size and (np.any(d < a - tol) or np.any(c < d - tol)):
        k = int(np.flatnonzero((d < a - tol) | (c < d - tol))[0])
        raise MetricsError(f"request {k}: need arrival <= dispatch <= completion, got {a[k]}, {d[k]}, {c[k]} ms")
    span = span_ms(a, c)
    return ServingStats(
        requests=int(a.size),
        batches=int(bd.size),
        span_s=span / 1000.0,
        throughput_per_s=throughput_per_s(int(a.size), span),
        mean_batch_size=(a.size / bd.size) if bd.size else float("nan"),
        request_latency=latency_stats(np.maximum(c - a, 0.0)),
        batch_latency=latency_stats(np.maximum(bc - bd, 0.0)),
        queueing_delay=latency_stats(np.maximum(d - a, 0.0)),
        utilisation=utilisation(busy_core_ms, cores, span),
        busy_core_ms=float(busy_core_ms),
    )
