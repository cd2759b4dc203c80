"""Packrat's batch-size estimator: which batch size does the load produce right now?

Shared by the simulator and the real runner, so it is pure: a frozen
:class:`EstimatorConfig`, a frozen :class:`EstimatorState`, and :func:`step`, which
takes one observation of the queue depth and returns the next state and a
:class:`Decision`. The driver calls :func:`step` once every ``config.interval_ms``
milliseconds with the number of requests waiting in the queue at that moment.

One step:

1. ``ewma = alpha * depth + (1 - alpha) * ewma`` (the first observation initialises it);
2. the estimate is ``ewma`` rounded *down* to a power of two, clamped to
   [``min_batch``, ``max_batch``] (both rounded to powers of two inward);
3. the estimate joins the last ``window`` estimates;
4. once ``window`` estimates exist, their mode is the proposed batch size (ties: the
   current batch size if it is among the most frequent, else the most recent of them);
5. reconfigure only when the mode differs from the current batch size; the state then
   records the new batch size as current (the driver is expected to apply it).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace

from packrat_sim import validate
from packrat_sim.errors import PackratError


class EstimatorError(PackratError):
    """Bad estimator configuration or observation; the message names the value."""


def pow2_floor(x: float) -> int:
    """Largest power of two <= ``x`` (1 for x < 2). ``x`` must be finite and >= 0."""
    validate.nonnegative_float(x, "the value to round to a power of two", error=EstimatorError)
    if x < 2:
        return 1
    return 1 << (int(x).bit_length() - 1)


def _pow2_ceil(n: int) -> int:
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


@dataclass(frozen=True)
class EstimatorConfig:
    """Parameters of the estimator.

    * ``alpha``: EWMA weight of the newest observation, in (0, 1];
    * ``window``: n, the number of recent estimates whose mode is taken (>= 1);
    * ``interval_ms``: how often the driver observes the queue and calls :func:`step` (> 0 ms);
    * ``min_batch`` / ``max_batch``: bounds of the estimate (rounded inward to powers of two).

    The defaults (alpha 0.2, a window of 10, every 500 ms: about 5 s to follow a lasting
    change) were chosen in simulation: on the built-in profiles, shorter memories flap
    between neighbouring batch sizes and pay a restart each time.
    """

    alpha: float = 0.2
    window: int = 10
    interval_ms: float = 500.0
    min_batch: int = 1
    max_batch: int = 64

    def __post_init__(self) -> None:
        validate.finite(self.alpha, "alpha", above=0, high=1, error=EstimatorError, expected="in (0, 1]")
        for name in ("window", "min_batch", "max_batch"):
            validate.positive_int(getattr(self, name), name, error=EstimatorError)
        validate.positive_float(self.interval_ms, "interval_ms", error=EstimatorError)
        if self.lower > self.upper:
            raise EstimatorError(
                f"no power of two lies in [min_batch={self.min_batch}, max_batch={self.max_batch}]"
            )

    @property
    def lower(self) -> int:
        """Smallest estimate: the smallest power of two >= min_batch."""
        return _pow2_ceil(self.min_batch)

    @property
    def upper(self) -> int:
        """Largest estimate: the largest power of two <= max_batch."""
        return pow2_floor(self.max_batch)


@dataclass(frozen=True)
class EstimatorState:
    """``current``: the batch size configured now; ``ewma``: smoothed queue depth (None
    before the first observation); ``recent``: the last estimates, oldest first."""

    current: int
    ewma: float | None = None
    recent: tuple[int, ...] = ()


@dataclass(frozen=True)
class Decision:
    """Outcome of one step. ``estimate``: this observation's power-of-two estimate;
    ``mode``: mode of the window (None until the window is full); ``batch``: the batch
    size to run with from now on; ``reconfigure``: True iff ``batch`` changed."""

    estimate: int
    mode: int | None
    batch: int
    reconfigure: bool


def initial_state(config: EstimatorConfig, current: int) -> EstimatorState:
    """State before any observation, with ``current`` the batch size configured at start."""
    validate.positive_int(current, "current batch", error=EstimatorError)
    return EstimatorState(current=current)


def _mode(values: tuple[int, ...], current: int) -> int:
    first = values[0]
    if values.count(first) == len(values):
        return first  # the common case: a steady estimate
    counts = Counter(values)
    top = max(counts.values())
    if counts.get(current, 0) == top:
        return current
    for v in reversed(values):
        if counts[v] == top:
            return v
    raise AssertionError("unreachable: the window is not empty")


def step(config: EstimatorConfig, state: EstimatorState, queue_depth: float) -> tuple[EstimatorState, Decision]:
    """One observation of the queue depth (requests waiting, >= 0) -> (next state, decision).

    Pure; see the module docstring for the rule. Raises EstimatorError for a negative or
    non-finite depth.
    """
    depth = validate.nonnegative_float(queue_depth, "queue depth", error=EstimatorError)
    ewma = depth if state.ewma is None else config.alpha * depth + (1.0 - config.alpha) * state.ewma
    estimate = min(max(pow2_floor(ewma), config.lower), config.upper)
    recent = (state.recent + (estimate,))[-config.window:]
    if len(recent) < config.window:
        return EstimatorState(state.current, ewma, recent), Decision(estimate, None, state.current, False)
    mode = _mode(recent, state.current)
    changed = mode != state.current
    return (
        EstimatorState(current=mode, ewma=ewma, recent=recent),
        Decision(estimate, mode, mode, changed),
    )


def settled(config: EstimatorConfig, state: EstimatorState) -> bool:
    """True when observations of an empty queue can no longer change the estimate: the
    window is full of the lowest estimate and the EWMA already rounds to it (it only
    decreases on depth 0). Then :func:`idle_steps` gives the outcome of any number of
    idle observations at once."""
    return (
        state.ewma is not None
        and len(state.recent) == config.window
        and all(e == config.lower for e in state.recent)
        and min(max(pow2_floor(state.ewma), config.lower), config.upper) == config.lower
    )


def idle_steps(config: EstimatorConfig, state: EstimatorState, k: int) -> EstimatorState:
    """The state after ``k`` observations of an empty queue from a :func:`settled` state,
    in O(1) for any ``k`` (the EWMA decays by ``(1 - alpha) ** k``; the window and the
    current batch size stay). EstimatorError if the state is not settled or k < 0."""
    validate.nonnegative_int(k, "k", error=EstimatorError)
    if state.ewma is None or not settled(config, state):  # settled() implies an EWMA; None is for mypy
        raise EstimatorError("idle_steps needs a settled state (see settled())")
    decay = 0.0 if config.alpha == 1 else math.exp(k * math.log1p(-config.alpha)) if k < 10**9 else 0.0
    return replace(state, ewma=state.ewma * decay)


def replay(config: EstimatorConfig, current: int, depths: Iterable[float]) -> list[Decision]:
    """Decisions for a sequence of observations (one per interval), starting at ``current``."""
    state = initial_state(config, current)
    out = []
    for depth in depths:
        state, decision = step(config, state, depth)
        out.append(decision)
    return out
