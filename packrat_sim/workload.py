"""Workloads: what arrives at the server, and when.

Two families:

* **closed loop** (:class:`Closed`, :class:`ClosedSteps`): ``clients`` clients each submit
  a batch of ``batch`` requests, wait for its answer, think for ``think_ms`` and submit the
  next: until ``requests`` requests were submitted (the last batch may be smaller), or, for
  :class:`ClosedSteps`, until the last step's time is up, each batch of the size of the step
  in progress when it is submitted. Batches are served whole: Packrat's fixed-batch setting.
* **open loop**: single requests arrive on their own (:class:`Poisson`, :class:`Steps`,
  :class:`Diurnal`, :class:`Trace`); the dispatcher aggregates them into batches of at
  most ``max_batch`` requests, waiting at most ``max_delay_ms`` for a batch to fill
  (TorchServe's ``batchSize`` / ``maxBatchDelay``, see :class:`Batching`).

Times: every ``*_ms`` value is milliseconds, every ``*_s`` value seconds, every rate
requests per second. Arrival times produced here are float milliseconds from 0.

Workload spec grammar: the one load grammar of ``packrat simulate --workload``, ``packrat
run --load``, ``packrat sweep``'s workloads and the dashboard. An open loop is spelled with
rates (``40/s``), a closed loop with batch sizes (``8``)::

    spec     := kind ":" item ("," item)*
    item     := key "=" value          (options; each key at most once)
              | rate "@" duration      (steps only: one step of the load shape; the rate
                                        carries its unit, 8/s, so it never reads as a batch)
              | count "@" duration     (closed only: one step of batch sizes)
              | path                   (trace only: the first item may be the bare file path)
    rate     := number ["/s" | "/ms" | "/min" | "/h"]   bare number (an option's value): per second
    duration := number ["s" | "ms" | "us" | "min" | "h"]  bare number: seconds
    count    := positive integer

    closed:batch=COUNT,requests=COUNT[,clients=COUNT][,think=DURATION]
        (batches=COUNT may replace requests=: requests = batches * batch;
         duration=DURATION may replace requests=: the batch size for that long)
    closed:COUNT@DURATION,COUNT@DURATION,...[,clients=COUNT][,think=DURATION]
        (batch sizes stepping over time: batches of 8 for 20 s, then of 32, ...)
    poisson:rate=RATE,duration=DURATION[,max_batch=COUNT][,max_delay=DURATION]
    steps:RATE@DURATION,RATE@DURATION,...[,max_batch=COUNT][,max_delay=DURATION]
    diurnal:base=RATE,peak=RATE,period=DURATION,duration=DURATION[,max_batch=..][,max_delay=..]
        rate(t) = base + (peak - base) * (1 - cos(2 pi t / period)) / 2
    trace:FILE[,unit=s|ms|us|ns][,max_batch=COUNT][,max_delay=DURATION]   (or path=FILE)

Examples: ``poisson:rate=40/s,duration=60s``, ``closed:batch=64,requests=1000``,
``closed:8@20s,32@20s,8@20s`` (closed loop: batches of 8 for 20 s, then of 32, then of 8),
``steps:8/s@20s,32/s@20s,8/s@20s`` (open loop: 8 req/s for 20 s, then 32 req/s, then 8 req/s),
``diurnal:base=20/s,peak=200/s,period=60s,duration=120s``, ``trace:arrivals.csv,unit=ms``.

Deprecated spellings (they still work in this release, each with a
:class:`WorkloadDeprecation` warning naming the new spelling; the next release refuses them):
a step rate without its unit (``steps:8@20s``, read as ``8/s@20s``) and ``run --load``'s old
closed-loop form ``8:20s,32:20s`` (read as ``closed:8@20s,32@20s``).

Defaults: ``max_batch=64``, ``max_delay=10ms``, ``clients=1``, ``think=0``, ``unit=s``.

Trace file: CSV of arrival timestamps, one request per row. Either a single column with
no header, or a header naming the column (``timestamp``, ``arrival``, ``time``,
``arrival_s``, ``arrival_ms``, ``t``; the first column otherwise). Timestamps must be
finite, non-negative and sorted (non-decreasing); violations raise WorkloadError naming
the line. They are converted to ms but not re-based (a trace may start after 0).

Everything is pure except :func:`read_trace` (reads a file). Randomness only comes from a
``numpy.random.Generator`` passed in; there is no global RNG.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from packrat_sim import inputs, limits
from packrat_sim import spec as grammar
from packrat_sim import validate
from packrat_sim.errors import PackratDeprecation, PackratError


class WorkloadError(PackratError):
    """A workload spec, value or trace file is invalid; the message names the bad part."""


class WorkloadDeprecation(PackratDeprecation):
    """An old workload spelling that still works in this release; the message names the new one."""


MAX_EXPECTED_REQUESTS = 50_000_000  # refuse workloads that would not fit in memory
DEFAULT_MAX_BATCH = 64
DEFAULT_MAX_DELAY_MS = 10.0

# ---------------------------------------------------------------------- values

_TRACE_UNITS_MS = {"s": 1000.0, "ms": 1.0, "us": 1e-3, "ns": 1e-6}


def parse_duration_ms(text: str, what: str = "duration") -> float:
    """``"60s"``, ``"500ms"``, ``"2min"``, ``"1.5"`` (seconds) -> milliseconds (finite, >= 0).

    The grammar is :func:`packrat_sim.spec.parse_duration_ms`'s; errors are WorkloadError."""
    return grammar.parse_duration_ms(text, what, error=WorkloadError)


def parse_duration_s(text: str, what: str = "duration") -> float:
    """As :func:`parse_duration_ms`, in seconds (``"500ms"`` -> 0.5)."""
    return grammar.parse_duration_s(text, what, error=WorkloadError)


def parse_rate_per_s(text: str, what: str = "rate") -> float:
    """``"40/s"``, ``"2/ms"``, ``"40"`` (per second) -> requests per second (finite, >= 0).

    The grammar is :func:`packrat_sim.spec.parse_rate_per_s`'s; errors are WorkloadError."""
    return grammar.parse_rate_per_s(text, what, error=WorkloadError)


def parse_count(text: str, what: str) -> int:
    """A positive integer written in decimal (``"64"``); WorkloadError otherwise."""
    return grammar.parse_count(text, what, error=WorkloadError)


def _fmt_num(x: float) -> str:
    return repr(float(x)) if not float(x).is_integer() else str(int(x))


def _fmt_ms(ms: float) -> str:
    return f"{_fmt_num(ms)}ms"


def _fmt_s(seconds: float) -> str:
    return f"{_fmt_num(seconds)}s"


def _fmt_rate(per_s: float) -> str:
    return f"{_fmt_num(per_s)}/s"


# ------------------------------------------------------------------ dataclasses


def _check_positive(value: object, what: str) -> float:
    """``value`` as a float > 0: WorkloadError ``{what} must be a finite number >= 0, got ...``
    unless it is a finite number >= 0, then ``{what} must be > 0, got ...`` for 0."""
    validate.nonnegative_float(value, what, error=WorkloadError)
    return validate.finite(value, what, above=0, error=WorkloadError, expected="> 0")


@dataclass(frozen=True)
class Batching:
    """How the dispatcher aggregates single requests (TorchServe ``batchSize`` / ``maxBatchDelay``).

    When the server can take a batch, the dispatcher waits for the first request, then
    collects requests until it holds ``max_batch`` of them or ``max_delay_ms`` passed since
    it started collecting, whichever comes first. Requests already queued are taken at once.
    """

    max_batch: int = DEFAULT_MAX_BATCH
    max_delay_ms: float = DEFAULT_MAX_DELAY_MS

    def __post_init__(self) -> None:
        validate.positive_int(self.max_batch, "max_batch", error=WorkloadError, numpy=True)
        validate.nonnegative_float(self.max_delay_ms, "max_delay", error=WorkloadError)

    def _spec_items(self) -> list[str]:
        out = []
        if self.max_batch != DEFAULT_MAX_BATCH:
            out.append(f"max_batch={self.max_batch}")
        if self.max_delay_ms != DEFAULT_MAX_DELAY_MS:
            out.append(f"max_delay={_fmt_ms(self.max_delay_ms)}")
        return out


class _OpenLoop:
    """What every open-loop workload shares: single requests that the dispatcher forms into
    batches as its ``batching`` says."""

    batching: Batching

    @property
    def max_batch(self) -> int:
        return self.batching.max_batch

    def _spec(self, kind: str, items: list[str]) -> str:
        """The workload's spec: ``kind:`` then ``items`` and the batching's own items, by commas."""
        return f"{kind}:" + ",".join(items + self.batching._spec_items())


@dataclass(frozen=True)
class Closed:
    """Closed loop with a fixed batch: ``clients`` clients, ``requests`` requests in total."""

    batch: int
    requests: int
    clients: int = 1
    think_ms: float = 0.0

    def __post_init__(self) -> None:
        validate.positive_int(self.batch, "batch", error=WorkloadError, numpy=True)
        validate.positive_int(self.requests, "requests", error=WorkloadError, numpy=True)
        validate.positive_int(self.clients, "clients", error=WorkloadError, numpy=True)
        validate.nonnegative_float(self.think_ms, "think", error=WorkloadError)
        if self.requests > MAX_EXPECTED_REQUESTS:
            raise WorkloadError(f"requests={self.requests} is more than {MAX_EXPECTED_REQUESTS} (memory)")
        _check_expected(self.requests)

    @property
    def max_batch(self) -> int:
        return self.batch

    def batch_sizes(self) -> list[int]:
        """Sizes of the batches in submission order: full batches, then the remainder."""
        full, rest = divmod(self.requests, self.batch)
        return [self.batch] * full + ([rest] if rest else [])

    def to_spec(self) -> str:
        items = [f"batch={self.batch}", f"requests={self.requests}"]
        if self.clients != 1:
            items.append(f"clients={self.clients}")
        if self.think_ms:
            items.append(f"think={_fmt_ms(self.think_ms)}")
        return "closed:" + ",".join(items)


@dataclass(frozen=True)
class ClosedStep:
    """One step of a :class:`ClosedSteps` load: batches of ``batch`` requests for ``duration_s`` seconds."""

    batch: int
    duration_s: float

    def __post_init__(self) -> None:
        validate.positive_int(self.batch, "step batch", error=WorkloadError, numpy=True)
        _check_positive(self.duration_s, "step duration")


@dataclass(frozen=True)
class ClosedSteps:
    """Closed loop whose batch size steps over time: ``clients`` clients each submit a batch
    of the size of the step in progress (at the submission time), wait for its answer, think
    for ``think_ms`` and go on until the last step ends; a batch in flight then is still
    answered. How many requests that makes depends on the server, so the simulator bounds it
    (:data:`MAX_EXPECTED_REQUESTS`)."""

    steps: tuple[ClosedStep, ...]
    clients: int = 1
    think_ms: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        if not self.steps:
            raise WorkloadError("a stepped closed loop needs at least one BATCH@DURATION step, e.g. closed:8@20s")
        validate.positive_int(self.clients, "clients", error=WorkloadError, numpy=True)
        validate.nonnegative_float(self.think_ms, "think", error=WorkloadError)

    @property
    def max_batch(self) -> int:
        return max(s.batch for s in self.steps)

    @property
    def duration_s(self) -> float:
        return float(sum(s.duration_s for s in self.steps))

    def batch_at(self, t_s: float) -> int | None:
        """The batch size of the step in progress at ``t_s`` seconds from the start; None
        from the end of the last step on."""
        end = 0.0
        for s in self.steps:
            end += s.duration_s
            if t_s < end:
                return s.batch
        return None

    def to_spec(self) -> str:
        items = [f"{s.batch}@{_fmt_s(s.duration_s)}" for s in self.steps]
        if self.clients != 1:
            items.append(f"clients={self.clients}")
        if self.think_ms:
            items.append(f"think={_fmt_ms(self.think_ms)}")
        return "closed:" + ",".join(items)


@dataclass(frozen=True)
class Poisson(_OpenLoop):
    """Poisson arrivals of single requests at ``rate_per_s`` for ``duration_s`` seconds."""

    rate_per_s: float
    duration_s: float
    batching: Batching = Batching()

    def __post_init__(self) -> None:
        _check_positive(self.rate_per_s, "rate")
        _check_positive(self.duration_s, "duration")
        _check_expected(self.rate_per_s * self.duration_s)

    def to_spec(self) -> str:
        items = [f"rate={_fmt_rate(self.rate_per_s)}", f"duration={_fmt_s(self.duration_s)}"]
        return self._spec("poisson", items)


@dataclass(frozen=True)
class Step:
    """One step of a step load: Poisson arrivals at ``rate_per_s`` for ``duration_s`` seconds."""

    rate_per_s: float
    duration_s: float

    def __post_init__(self) -> None:
        validate.nonnegative_float(self.rate_per_s, "step rate", error=WorkloadError)
        _check_positive(self.duration_s, "step duration")


@dataclass(frozen=True)
class Steps(_OpenLoop):
    """Piecewise-constant Poisson load: the steps one after the other (rates may be 0)."""

    steps: tuple[Step, ...]
    batching: Batching = Batching()

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        if not self.steps:
            raise WorkloadError("steps needs at least one RATE@DURATION step")
        if all(s.rate_per_s == 0 for s in self.steps):
            raise WorkloadError("every step has rate 0: the workload has no requests")
        _check_expected(sum(s.rate_per_s * s.duration_s for s in self.steps))

    @property
    def duration_s(self) -> float:
        return float(sum(s.duration_s for s in self.steps))

    def to_spec(self) -> str:
        items = [f"{_fmt_rate(s.rate_per_s)}@{_fmt_s(s.duration_s)}" for s in self.steps]
        return self._spec("steps", items)


@dataclass(frozen=True)
class Diurnal(_OpenLoop):
    """Sinusoidal Poisson load: ``base + (peak - base) * (1 - cos(2 pi t / period)) / 2`` req/s."""

    base_per_s: float
    peak_per_s: float
    period_s: float
    duration_s: float
    batching: Batching = Batching()

    def __post_init__(self) -> None:
        validate.nonnegative_float(self.base_per_s, "base", error=WorkloadError)
        _check_positive(self.peak_per_s, "peak")
        _check_positive(self.period_s, "period")
        _check_positive(self.duration_s, "duration")
        if self.peak_per_s < self.base_per_s:
            raise WorkloadError(f"peak ({self.peak_per_s}/s) must be >= base ({self.base_per_s}/s)")
        _check_expected(self.peak_per_s * self.duration_s)

    def rate_at(self, t_s: np.ndarray | float) -> np.ndarray | float:
        """Arrival rate (req/s) at time ``t_s`` (seconds)."""
        return self.base_per_s + (self.peak_per_s - self.base_per_s) * (1.0 - np.cos(2.0 * np.pi * np.asarray(t_s) / self.period_s)) / 2.0

    def to_spec(self) -> str:
        items = [
            f"base={_fmt_rate(self.base_per_s)}",
            f"peak={_fmt_rate(self.peak_per_s)}",
            f"period={_fmt_s(self.period_s)}",
            f"duration={_fmt_s(self.duration_s)}",
        ]
        return self._spec("diurnal", items)


@dataclass(frozen=True)
class Trace(_OpenLoop):
    """Replay of recorded arrival times (ms from 0, sorted, >= 0), one request each.

    ``source`` names where they came from (a path, or ``"inline"``). Build one from a
    file with :func:`read_trace`, from a spec with :func:`load_workload`, or directly.
    """

    timestamps_ms: tuple[float, ...]
    source: str = "inline"
    batching: Batching = Batching()
    unit: str = "ms"

    def __post_init__(self) -> None:
        ts = tuple(float(x) for x in self.timestamps_ms)
        object.__setattr__(self, "timestamps_ms", ts)
        if not ts:
            raise WorkloadError(f"trace {self.source!r} has no arrivals")
        _check_trace_values(ts, self.source)

    def to_spec(self) -> str:
        items = [self.source] + ([f"unit={self.unit}"] if self.unit != "s" else [])
        return self._spec("trace", items)


@dataclass(frozen=True)
class TraceFile(_OpenLoop):
    """A trace named by a spec, not read yet (parsing stays pure). ``unit``: s, ms, us or ns."""

    path: str
    unit: str = "s"
    batching: Batching = Batching()

    def __post_init__(self) -> None:
        if not self.path:
            raise WorkloadError("trace needs a file path (trace:FILE)")
        if self.unit not in _TRACE_UNITS_MS:
            raise WorkloadError(f"trace unit {self.unit!r} is not one of {', '.join(_TRACE_UNITS_MS)}")

    def to_spec(self) -> str:
        items = [self.path] + ([f"unit={self.unit}"] if self.unit != "s" else [])
        return self._spec("trace", items)


Workload = Closed | ClosedSteps | Poisson | Steps | Diurnal | Trace | TraceFile
CLOSED_LOOPS = (Closed, ClosedSteps)  # isinstance(workload, CLOSED_LOOPS): a closed loop


def _check_expected(expected: float) -> None:
    if expected > MAX_EXPECTED_REQUESTS:
        raise WorkloadError(
            f"the workload would produce about {expected:.3g} requests, more than {MAX_EXPECTED_REQUESTS}"
        )
    limits.require(limits.requests_bytes(expected), f"a workload of about {expected:.3g} requests", error=WorkloadError)


def _check_trace_values(ts: tuple[float, ...] | np.ndarray, source: str, lines: list[int] | None = None) -> None:
    arr = np.asarray(ts, dtype=float)

    def where(k: int) -> str:
        return f"line {lines[k]}" if lines else f"arrival #{k}"

    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise WorkloadError(f"trace {source}: {where(int(bad[0]))}: timestamp {float(arr[bad[0]])!r} is not finite")
    neg = np.flatnonzero(arr < 0)
    if neg.size:
        raise WorkloadError(f"trace {source}: {where(int(neg[0]))}: timestamp {float(arr[neg[0]])!r} is negative")
    down = np.flatnonzero(np.diff(arr) < 0)
    if down.size:
        k = int(down[0]) + 1
        raise WorkloadError(
            f"trace {source}: {where(k)}: timestamps are not sorted ({float(arr[k])!r} comes after {float(arr[k - 1])!r})"
        )


# ------------------------------------------------------------------- parsing

_KEYS = {
    "closed": ("batch", "requests", "batches", "duration", "clients", "think"),
    "poisson": ("rate", "duration", "max_batch", "max_delay"),
    "steps": ("max_batch", "max_delay"),
    "diurnal": ("base", "peak", "period", "duration", "max_batch", "max_delay"),
    "trace": ("path", "unit", "max_batch", "max_delay"),
}
_REQUIRED = {
    "poisson": ("rate", "duration"),
    "diurnal": ("base", "peak", "period", "duration"),
}


def parse_workload(spec: str) -> Workload:
    """Parse a workload spec (module docstring) into its frozen dataclass.

    Pure but for a :class:`WorkloadDeprecation` warning on a deprecated spelling: a
    ``trace:`` spec gives a :class:`TraceFile` (use :func:`load_workload` to read it).
    Raises WorkloadError naming the bad part of the spec.
    """
    old = _old_closed_form(spec)
    if old is not None:
        warnings.warn(f"load {spec!r} is the old closed-loop spelling; write {old!r} "
                      "(the same load: batches of B for each DURATION)", WorkloadDeprecation, stacklevel=2)
        spec = old
    kind, options, positional = grammar.parse_kind_spec(
        spec, "workload", _KEYS, example=_EXAMPLES["poisson"], leading_positional=("trace",), error=WorkloadError
    )
    for key in _REQUIRED.get(kind, ()):
        if key not in options:
            raise WorkloadError(f"{kind} workload needs {key}=...; e.g. {_EXAMPLES[kind]}")
    return _BUILDERS[kind](options, list(positional))


def parse_workload_noting(spec: str) -> tuple[Workload, tuple[str, ...]]:
    """:func:`parse_workload`, with its :class:`WorkloadDeprecation` warnings returned as
    messages (in order) instead of shown: for a caller that shows them itself (the dashboard).
    Raises WorkloadError as parse_workload does."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", WorkloadDeprecation)
        workload = parse_workload(spec)
    notes = tuple(str(w.message) for w in caught if issubclass(w.category, WorkloadDeprecation))
    return workload, notes


_OLD_CLOSED = re.compile(r"\s*\d[^:,]*:[^,]+(,\s*\d[^:,]*:[^,]+)*")


def _old_closed_form(spec: object) -> str | None:
    """``"8:20s,32:20s"`` (``run --load``'s old closed-loop form: B:DURATION steps) ->
    ``"closed:8@20s,32@20s"``; None for any other text. Pure."""
    if not isinstance(spec, str) or not _OLD_CLOSED.fullmatch(spec):
        return None
    return "closed:" + ",".join(item.strip().replace(":", "@", 1) for item in spec.split(","))


_EXAMPLES = {
    "closed": "closed:batch=64,requests=1000 or closed:8@20s,32@20s",
    "poisson": "poisson:rate=40/s,duration=60s",
    "steps": "steps:8/s@20s,32/s@20s,8/s@20s",
    "diurnal": "diurnal:base=20/s,peak=200/s,period=60s,duration=120s",
    "trace": "trace:arrivals.csv,unit=ms",
}


def _batching(options: dict[str, str]) -> Batching:
    max_batch = parse_count(options["max_batch"], "max_batch") if "max_batch" in options else DEFAULT_MAX_BATCH
    max_delay = (
        parse_duration_ms(options["max_delay"], "max_delay") if "max_delay" in options else DEFAULT_MAX_DELAY_MS
    )
    return Batching(max_batch=max_batch, max_delay_ms=max_delay)


def _no_positional(kind: str, positional: list[str]) -> None:
    if positional:
        raise WorkloadError(
            f"item {positional[0]!r} of the {kind} workload is not KEY=VALUE; e.g. {_EXAMPLES[kind]}"
        )


def _positive_duration_s(text: str, what: str) -> float:
    """A duration in seconds that must be > 0 (WorkloadError naming ``what`` otherwise)."""
    return grammar.parse_duration_s(text, what, positive=True, error=WorkloadError)


def _build_closed(options: dict[str, str], positional: list[str]) -> Closed | ClosedSteps:
    """``closed:`` options and bare items -> :class:`Closed` (batch= with requests=, batches=
    or duration=; a duration gives a one-step :class:`ClosedSteps`) or, from ``B@DURATION``
    items, :class:`ClosedSteps`. WorkloadError naming the bad part."""
    clients = parse_count(options["clients"], "clients") if "clients" in options else 1
    think = parse_duration_ms(options["think"], "think") if "think" in options else 0.0
    if positional:
        sized = [k for k in ("batch", "requests", "batches", "duration") if k in options]
        if sized:
            raise WorkloadError(f"closed workload: the steps {','.join(positional)} set the batch sizes and "
                                f"durations; drop {sized[0]}= (e.g. closed:8@20s,32@20s,clients=2)")
        return ClosedSteps(tuple(_closed_step(item) for item in positional), clients, think)
    if "batch" not in options:
        raise WorkloadError(f"closed workload needs batch=... or BATCH@DURATION steps; e.g. {_EXAMPLES['closed']}")
    batch = parse_count(options["batch"], "batch")
    given = [k for k in ("requests", "batches", "duration") if k in options]
    if len(given) != 1:
        raise WorkloadError("closed workload needs exactly one of requests=N, batches=N or duration=D"
                            + (f" (got {' and '.join(k + '=' for k in given)})" if given else ""))
    if "duration" in options:
        step = ClosedStep(batch, _positive_duration_s(options["duration"], "duration"))
        return ClosedSteps((step,), clients, think)
    if "requests" in options:
        requests = parse_count(options["requests"], "requests")
    else:
        requests = parse_count(options["batches"], "batches") * batch
    return Closed(batch=batch, requests=requests, clients=clients, think_ms=think)


def _closed_step(item: str) -> ClosedStep:
    """``"8@20s"`` -> ClosedStep(8, 20.0): a batch size (a count, never a rate) for a duration > 0."""
    batch, at, duration = item.partition("@")
    if not at:
        raise WorkloadError(f"closed-loop step {item!r} must be BATCH@DURATION, e.g. 8@20s")
    if "/" in batch:
        raise WorkloadError(f"closed-loop step {item!r}: {batch.strip()!r} is a rate, but a closed loop's steps are "
                            f"batch sizes (e.g. closed:8@20s); for an open loop at that rate write steps:{item.strip()}")
    return ClosedStep(parse_count(batch.strip(), f"batch size of step {item!r}"),
                      _positive_duration_s(duration, f"duration of step {item!r}"))


def _build_poisson(options: dict[str, str], positional: list[str]) -> Poisson:
    _no_positional("poisson", positional)
    rate = grammar.parse_rate_per_s(options["rate"], "rate", positive=True, error=WorkloadError)
    return Poisson(rate, _positive_duration_s(options["duration"], "duration"), _batching(options))


def _build_steps(options: dict[str, str], positional: list[str]) -> Steps:
    """``steps:`` RATE@DURATION items -> :class:`Steps`; a rate without its unit still reads
    as per second, with one :class:`WorkloadDeprecation` warning for the spec."""
    steps = []
    bare = []
    for item in positional:
        rate, at, duration = item.partition("@")
        if not at:
            raise WorkloadError(f"step {item!r} must be RATE@DURATION, e.g. 32/s@20s")
        if "/" not in rate:
            bare.append(f"{rate.strip()}/s@{duration.strip()}")
        steps.append(Step(parse_rate_per_s(rate, f"rate of step {item!r}"), _positive_duration_s(duration, f"duration of step {item!r}")))
    if bare:
        warnings.warn(f"steps: a step's rate needs its unit: write steps:{','.join(bare)} (a bare number is "
                      "read as requests per second; closed-loop batch sizes are closed:8@20s)",
                      WorkloadDeprecation, stacklevel=3)
    return Steps(tuple(steps), _batching(options))


def _build_diurnal(options: dict[str, str], positional: list[str]) -> Diurnal:
    _no_positional("diurnal", positional)
    return Diurnal(
        base_per_s=parse_rate_per_s(options["base"], "base"),
        peak_per_s=parse_rate_per_s(options["peak"], "peak"),
        period_s=_positive_duration_s(options["period"], "period"),
        duration_s=_positive_duration_s(options["duration"], "duration"),
        batching=_batching(options),
    )


def _build_trace(options: dict[str, str], positional: list[str]) -> TraceFile:
    if len(positional) > 1:
        raise WorkloadError(f"trace takes one file path, got {positional!r}")
    if positional and "path" in options:
        raise WorkloadError("trace file given twice (bare path and path=)")
    path = positional[0] if positional else options.get("path", "")
    if not path:
        raise WorkloadError(f"trace workload needs a file path; e.g. {_EXAMPLES['trace']}")
    unit = options.get("unit", "s").strip().lower()
    return TraceFile(path=path, unit=unit, batching=_batching(options))


_BUILDERS: dict[str, Callable[[dict[str, str], list[str]], Workload]] = {
    "closed": _build_closed,
    "poisson": _build_poisson,
    "steps": _build_steps,
    "diurnal": _build_diurnal,
    "trace": _build_trace,
}


# --------------------------------------------------------------------- traces

_TRACE_COLUMNS = ("timestamp", "arrival", "time", "arrival_s", "arrival_ms", "t", "ts")


def parse_trace_csv(text: str, *, unit: str = "s", source: str = "<text>") -> np.ndarray:
    """Arrival times in ms (float array) from CSV ``text`` (format in the module docstring).

    Raises WorkloadError naming the line for a non-number, a negative, non-finite or
    out-of-order timestamp, and for an empty trace.
    """
    if unit not in _TRACE_UNITS_MS:
        raise WorkloadError(f"trace unit {unit!r} is not one of {', '.join(_TRACE_UNITS_MS)}")
    text = text.removeprefix("\ufeff")
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise WorkloadError(f"trace {source}: unreadable CSV: {exc}") from None
    numbered = [(k + 1, r) for k, r in enumerate(rows) if r and any(c.strip() for c in r)]
    if not numbered:
        raise WorkloadError(f"trace {source} is empty (expected one arrival timestamp per line)")
    column = 0
    first_line, first = numbered[0]
    if not _is_number(first[0]):
        names = [c.strip().lower() for c in first]
        column = next((names.index(n) for n in _TRACE_COLUMNS if n in names), 0)
        numbered = numbered[1:]
        if not numbered:
            raise WorkloadError(f"trace {source} has a header but no arrivals")
    values = []
    lines = []
    for lineno, row in numbered:
        if column >= len(row):
            raise WorkloadError(f"trace {source}: line {lineno}: missing timestamp column {column + 1}")
        cell = row[column].strip()
        try:
            values.append(float(cell))
        except ValueError:
            raise WorkloadError(f"trace {source}: line {lineno}: {cell!r} is not a timestamp") from None
        lines.append(lineno)
    arr = np.asarray(values, dtype=float)
    _check_trace_values(arr, source, lines)
    if arr.size > MAX_EXPECTED_REQUESTS:
        raise WorkloadError(f"trace {source} has {arr.size} arrivals, more than {MAX_EXPECTED_REQUESTS}")
    return arr * _TRACE_UNITS_MS[unit]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_trace(path: str, *, unit: str = "s", batching: Batching = Batching()) -> Trace:
    """Read a trace CSV file into a :class:`Trace`; WorkloadError names the path and problem.
    Read through packrat_sim.inputs: a regular file only (``trace:/dev/zero`` or a FIFO is
    refused before it is opened), at most 256 MiB, UTF-8 text without NUL."""
    text = inputs.read_text(path, "trace file", error=WorkloadError)
    arr = parse_trace_csv(text, unit=unit, source=path)
    return Trace(timestamps_ms=tuple(arr.tolist()), source=path, batching=batching, unit=unit)


def load_workload(workload: Workload | str) -> Workload:
    """Parse a spec if given a string, and read a :class:`TraceFile`'s file.

    The result never needs a file again. Raises WorkloadError.
    """
    if isinstance(workload, str):
        workload = parse_workload(workload)
    if isinstance(workload, TraceFile):
        return read_trace(workload.path, unit=workload.unit, batching=workload.batching)
    if not isinstance(workload, (Closed, ClosedSteps, Poisson, Steps, Diurnal, Trace)):
        raise WorkloadError(f"not a workload: {workload!r:.80}")
    return workload


# ------------------------------------------------------------------- arrivals


def poisson_arrivals_ms(rate_per_s: float, duration_s: float, rng: np.random.Generator, offset_ms: float = 0.0) -> np.ndarray:
    """Homogeneous Poisson arrivals in [offset, offset + duration), sorted, in ms.

    Exact: the count is Poisson(rate * duration) and, given the count, the times are
    independent uniforms (the order-statistics property).
    """
    if rate_per_s <= 0:
        return np.empty(0)
    n = int(rng.poisson(rate_per_s * duration_s))
    times = np.sort(rng.random(n)) * (duration_s * 1000.0)
    return times + offset_ms


def arrival_times_ms(workload: Workload, rng: np.random.Generator) -> np.ndarray:
    """Sorted arrival times (ms, float64) of the single requests of an open-loop workload.

    ``rng`` is the only source of randomness (a trace uses none). A :class:`TraceFile`
    is read here (see :func:`load_workload`). Closed workloads have no arrival process
    (their arrivals depend on the server): WorkloadError.
    """
    if isinstance(workload, CLOSED_LOOPS):
        raise WorkloadError("a closed-loop workload has no open-loop arrival times")
    if isinstance(workload, TraceFile):
        workload = load_workload(workload)
    if isinstance(workload, Trace):
        return np.asarray(workload.timestamps_ms, dtype=float)
    if isinstance(workload, Poisson):
        return poisson_arrivals_ms(workload.rate_per_s, workload.duration_s, rng)
    if isinstance(workload, Steps):
        parts = []
        offset = 0.0
        for s in workload.steps:
            parts.append(poisson_arrivals_ms(s.rate_per_s, s.duration_s, rng, offset))
            offset += s.duration_s * 1000.0
        return np.concatenate(parts)
    if isinstance(workload, Diurnal):
        # Thinning (Lewis & Shedler): candidates at the peak rate, each kept with
        # probability rate(t) / peak. Exact for a bounded intensity.
        cand = poisson_arrivals_ms(workload.peak_per_s, workload.duration_s, rng)
        keep = rng.random(cand.size) * workload.peak_per_s < workload.rate_at(cand / 1000.0)
        return cand[keep]
    raise WorkloadError(f"not a workload: {workload!r:.80}")


def describe(workload: Workload) -> str:
    """One line for people, e.g. ``Poisson 40 req/s for 60 s, batches <= 64 within 10 ms``."""
    if isinstance(workload, Closed):
        think = f", think {workload.think_ms:g} ms" if workload.think_ms else ""
        return f"closed loop: {workload.clients} client(s), batches of {workload.batch}, {workload.requests} requests{think}"
    if isinstance(workload, ClosedSteps):
        think = f", think {workload.think_ms:g} ms" if workload.think_ms else ""
        steps = ", ".join(f"batches of {s.batch} for {s.duration_s:g} s" for s in workload.steps)
        return f"closed loop: {workload.clients} client(s), {steps}{think}"
    b = workload.batching
    tail = f"; batches <= {b.max_batch} within {b.max_delay_ms:g} ms"
    if isinstance(workload, Poisson):
        return f"Poisson {workload.rate_per_s:g} req/s for {workload.duration_s:g} s{tail}"
    if isinstance(workload, Steps):
        return "steps " + ", ".join(f"{s.rate_per_s:g} req/s for {s.duration_s:g} s" for s in workload.steps) + tail
    if isinstance(workload, Diurnal):
        return (
            f"diurnal {workload.base_per_s:g}..{workload.peak_per_s:g} req/s, period {workload.period_s:g} s, "
            f"for {workload.duration_s:g} s{tail}"
        )
    if isinstance(workload, Trace):
        return f"trace {workload.source} ({len(workload.timestamps_ms)} arrivals){tail}"
    return f"trace {workload.path} (unit {workload.unit}){tail}"


def to_spec(workload: Workload) -> str:
    """The canonical spec string of ``workload`` (``parse_workload`` reads it back)."""
    return workload.to_spec()
