"""The harness of one exploration: result values, budgets, progress, the visited-state set,
invariant and history checks (shared by every strategy module)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from checker.actors import Event, SystemState, event_to_json, history_of
from checker.explore.properties import PropertyResult, PropertyTracker, does_not_hold, never_holds
from checker.history import History
from checker.history import gc_paused as gc_paused  # re-exported: the explorer's modules take it from here
from checker.linearizability import Verdict, check
from packrat_sim import validate
from packrat_sim.errors import PackratError

__all__ = [
    "OK", "UNKNOWN", "VIOLATION", "Coverage", "ExploreError", "ExploreProgress", "ExploreResult", "Reductions",
    "Violation", "key_projection", "verdict_word",
]

# Verdicts are the checker's one verdict type: ILLEGAL is what the explorer calls a violation.
OK, VIOLATION, UNKNOWN = Verdict.OK, Verdict.ILLEGAL, Verdict.UNKNOWN
_WORDS = {Verdict.OK: "OK", Verdict.ILLEGAL: "VIOLATION", Verdict.UNKNOWN: "UNKNOWN"}


def verdict_word(verdict: Verdict) -> str:
    """The explorer's word for a verdict, as printed and in JSON: OK, VIOLATION or UNKNOWN."""
    return _WORDS[Verdict(verdict)]


class ExploreError(PackratError):
    """A bad strategy, budget, schedule or replay file; the message names the bad value."""


@dataclass(frozen=True)
class Reductions:
    """Which sound reductions a run uses (all on by default; each switch is for comparison).

    ``symmetry``: stateful searches identify states that differ by a permutation of actors the
    protocol declares interchangeable. ``state_cache``: the DPOR family prunes at states it has
    fully explored (stateful DPOR); off: stateless DPOR. ``coarse_clients``: the DPOR family
    (and dfs's sleep sets) treat any two history-recording deliveries as dependent (the old,
    coarser relation). ``sleep_sets``: ``dfs`` skips transitions that commute with one explored
    before (:func:`checker.explore.tree.sleep_dfs`; the same states, fewer transitions).
    ``local_commutation``: the sleep sets of ``dfs`` and of the DPOR family also keep asleep a
    delivery to the actor that the step taken delivers to, where the two commute in the state at
    hand (:mod:`checker.explore.commute`); off: only statically independent events."""

    symmetry: bool = True
    state_cache: bool = True
    coarse_clients: bool = False
    sleep_sets: bool = True
    local_commutation: bool = True


@dataclass(frozen=True)
class ExploreProgress:
    """A snapshot of a running exploration, for progress displays (see ``explore(progress=)``)."""

    schedules: int
    states: int
    transitions: int
    distinct_histories: int
    elapsed_s: float


@dataclass(frozen=True)
class Violation:
    """A property that one schedule breaks.

    ``kind``: ``"invariant"`` (``name`` is the invariant's), ``"linearizability"`` (``name`` is
    ``"linearizable (<model>)"``), or a property's expectation, ``"always"`` or ``"eventually"``
    (``name`` is the property's; :mod:`checker.explore.properties`). ``schedule``: the shrunk
    schedule (``bfs``: as found, a shortest one), replayable from the initial state; ``found``: the schedule as the search found it. ``history``: the history of the shrunk
    schedule; ``explanation``: lines saying why it is not linearizable (or what the invariant
    says). ``check``: the checker's result on that history (None if not checked).
    """

    kind: str
    name: str
    message: str
    schedule: tuple[Event, ...]
    found: tuple[Event, ...]
    history: History
    explanation: tuple[str, ...] = ()
    check: Any = None
    quiescent: bool = False

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "name": self.name,
            "message": self.message,
            "schedule": [dict(event_to_json(e), text=e.describe()) for e in self.schedule],
            "found_length": len(self.found),
            "history": self.history.to_json(),
            "explanation": list(self.explanation),
            "check": None if self.check is None else self.check.to_json(self.history, self.history.model),
        }


@dataclass(frozen=True)
class Coverage:
    """The ordering goals of a coverage-guided exploration (``bita``, :mod:`checker.explore.bita`).

    ``criterion``: ``pr``, ``pcr`` or ``pbr``; ``goals``: the ordering goals found (both orders
    of every pair of receives of one actor that the criterion relates and that a schedule showed
    to be swappable); ``covered``: the goals some schedule took; ``aimed``: schedules generated
    to cover one goal not yet covered; ``reached``: those of them that covered it;
    ``covered_goals``: the covered goals, each ``(first receive, then receive)`` as text, in the
    order they were found. ``fraction``: covered / goals (None when no goal was found)."""

    criterion: str
    goals: int
    covered: int
    aimed: int = 0
    reached: int = 0
    covered_goals: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @property
    def fraction(self) -> float | None:
        return self.covered / self.goals if self.goals else None

    def describe(self) -> str:
        """One line: the criterion, the goals covered of those found, the schedules aimed."""
        if not self.goals:
            return f"{self.criterion}: no ordering goal found (no two receives of one actor could be swapped)"
        return (f"{self.criterion}: {self.covered} of {self.goals} ordering goals covered ({100 * self.covered / self.goals:.1f}%); "
                f"{self.aimed} schedules aimed at an uncovered goal, {self.reached} reached it")

    def to_json(self) -> dict:
        return {
            "criterion": self.criterion,
            "goals": self.goals,
            "covered": self.covered,
            "coverage": None if self.fraction is None else round(self.fraction, 6),
            "aimed": self.aimed,
            "reached": self.reached,
            "covered_goals": [list(goal) for goal in self.covered_goals],
        }


@dataclass(frozen=True)
class ExploreResult:
    """What an exploration found.

    ``verdict``: a :class:`~checker.linearizability.Verdict`: OK only when a complete strategy
    finished within its budgets and every history was judged linearizable; ILLEGAL (the
    explorer's VIOLATION, see :func:`verdict_word`) with the shrunk counterexample; UNKNOWN
    otherwise. ``schedules``: schedules explored; ``states``: distinct states seen (orbits, with
    symmetry); ``transitions``: steps taken; ``distinct_histories``: distinct histories judged;
    ``first_violation_at``: index (1-based) of the schedule that first violated; ``complete``:
    the strategy covered every behaviour (within ``depth``); ``reason``: why the verdict is not
    OK, in words; ``pct_bound``: PCT's per-run probability bound (pct only); ``histories``: the
    distinct history records (only when asked with ``collect_histories``); ``reductions``: the
    reductions used; ``violated``: the ``(kind, name)`` of every property a schedule broke (only
    with ``collect_histories``; all of them when ``stop_on_violation`` is False).
    ``properties``: one :class:`~checker.explore.properties.PropertyResult` per property the
    protocol declares (held, counterexample, witnessed, never reached or unknown).
    ``coverage``: the ordering goals ``bita`` found and covered (:class:`Coverage`; None for the
    other strategies).
    """

    verdict: Verdict
    protocol: str
    variant: str
    params: tuple[tuple[str, Any], ...]
    strategy: str
    schedules: int
    states: int
    transitions: int
    distinct_histories: int
    elapsed_s: float
    complete: bool
    reason: str = ""
    first_violation_at: int | None = None
    violation: Violation | None = None
    unknown_histories: int = 0
    seed: int | None = None
    pct_bound: float | None = None
    histories: frozenset | None = field(default=None, repr=False, compare=False)
    reductions: Reductions = Reductions()
    violations: frozenset | None = field(default=None, repr=False, compare=False)
    properties: tuple[PropertyResult, ...] = ()
    coverage: Coverage | None = None

    @property
    def ok(self) -> bool:
        return self.verdict is OK

    @property
    def violated(self) -> bool:
        return self.verdict is VIOLATION

    @property
    def verdict_word(self) -> str:
        """``OK``, ``VIOLATION`` or ``UNKNOWN``."""
        return verdict_word(self.verdict)

    @property
    def schedules_per_s(self) -> float:
        return self.schedules / self.elapsed_s if self.elapsed_s > 0 else float("inf")

    def to_json(self) -> dict:
        return {
            "verdict": self.verdict_word,
            "protocol": self.protocol,
            "variant": self.variant,
            "params": dict(self.params),
            "strategy": self.strategy,
            "seed": self.seed,
            "complete": self.complete,
            "schedules": self.schedules,
            "states": self.states,
            "transitions": self.transitions,
            "distinct_histories": self.distinct_histories,
            "unknown_histories": self.unknown_histories,
            "elapsed_s": round(self.elapsed_s, 6),
            "schedules_per_s": round(self.schedules_per_s, 1) if self.elapsed_s > 0 else None,
            "first_violation_at": self.first_violation_at,
            "reason": self.reason,
            "pct_bound": self.pct_bound,
            "reductions": asdict(self.reductions),
            "violation": None if self.violation is None else self.violation.to_json(),
            "counterexample_depth": None if self.violation is None else len(self.violation.schedule),
            "properties": [p.to_json() for p in self.properties],
            "coverage": None if self.coverage is None else self.coverage.to_json(),
        }


# --------------------------------------------------------------------------------------------
# Shared machinery of one run


class Stop(Exception):
    """Raised inside a search to unwind it (violation found or budget spent)."""


@dataclass
class Found:
    kind: str
    name: str
    message: str
    path: tuple[Event, ...]
    quiescent: bool = False


PROGRESS_INTERVAL_S = 0.25


class Run:
    """The mutable bookkeeping of one exploration (never escapes :func:`explore`)."""

    def __init__(self, protocol, max_schedules, max_time, depth, check_timeout, stop_on_violation,
                 reductions: Reductions = Reductions(), progress: Callable[[ExploreProgress], None] | None = None):
        self.protocol = protocol
        self.system = protocol.system
        self.always = tuple(inv for inv in protocol.invariants if not inv.quiescent)
        self.quiescent = tuple(inv for inv in protocol.invariants if inv.quiescent)
        self.max_schedules = max_schedules
        self.started = time.perf_counter()
        self.deadline = None if max_time is None else self.started + max_time
        self.depth = depth
        self.check_timeout = check_timeout
        self.stop_on_violation = stop_on_violation
        self.reductions = reductions
        self.symmetric = reductions.symmetry and bool(self.system.symmetry)
        self.progress = progress
        self._last_progress = self.started
        self.schedules = 0
        self.transitions = 0
        self.seen: set[SystemState] = set()  # the states themselves: exact, no hash collisions
        self.checked: dict[Hashable, Any] = {}
        self.prefix_checked: dict[Hashable, Any] = {}  # histories judged where no schedule ended (bfs)
        self.unknown_histories = 0
        self.found: Found | None = None
        self.violated: set[tuple[str, str]] = set()
        self.first_violation_at: int | None = None
        self.budget_hit = ""
        self.cut = False  # a path was cut by the depth bound
        self.pct_bound: float | None = None
        self.delay_cut = False  # delay-bounded: the bound cut some choice
        self.coverage: Any = None  # bita: its goal tracker (a ``result()`` method gives the Coverage)
        self.props = PropertyTracker(self.system, getattr(protocol, "properties", ()))
        self.watching = self.props.watching  # (the undecided state properties: empty, nothing to do)
        self._tick = 0

    # budgets and progress -------------------------------------------------------------------

    def tick(self) -> None:
        """Called on every step of a search: every 32 calls, checks the time budget and reports
        progress. Raises Stop when the time is spent."""
        self._tick += 1
        if self._tick & 31:
            return
        now = time.perf_counter()
        if self.deadline is not None and now >= self.deadline:
            self.budget_hit = "time budget spent"
            raise Stop
        if self.progress is not None and now - self._last_progress >= PROGRESS_INTERVAL_S:
            self._last_progress = now
            self.progress(self.snapshot(now))

    def snapshot(self, now: float | None = None) -> ExploreProgress:
        now = time.perf_counter() if now is None else now
        return ExploreProgress(self.schedules, len(self.seen), self.transitions, len(self.checked), now - self.started)

    def check_budget(self) -> None:
        if self.max_schedules is not None and self.schedules >= self.max_schedules:
            self.budget_hit = f"schedule budget of {self.max_schedules} spent"
            raise Stop
        self.tick()

    def remaining(self) -> float | None:
        """Seconds left of the time budget (None: no time budget)."""
        return None if self.deadline is None else max(0.0, self.deadline - time.perf_counter())

    # states ---------------------------------------------------------------------------------

    def key(self, state: SystemState) -> SystemState:
        """The visited-set key of ``state``: its orbit's representative with symmetry."""
        return self.system.canonical(state)[0] if self.symmetric else state

    def visit(self, state: SystemState, path: Sequence[Event], key: SystemState | None = None) -> bool:
        """Record ``state``; on a new one check the invariants, and the quiescent ones where no
        message can be delivered (:meth:`System.terminal`; fault events may still be enabled
        there, so a schedule need not end at such a state). True when the state is new."""
        if key is None:  # inline (no method call per step when symmetry is off)
            key = self.system.canonical(state)[0] if self.symmetric else state
        if key in self.seen:
            return False
        self.seen.add(key)
        for inv in self.always:
            problem = inv.check(self.system, state)
            if problem is not None:
                # the schedule in progress ends here (it is the next schedule's index)
                self._violation(Found("invariant", inv.name, problem, tuple(path)), in_progress=True)
                return True
        if self.quiescent and self.system.terminal(state):
            for inv in self.quiescent:
                problem = inv.check(self.system, state)
                if problem is not None:
                    self._violation(Found("invariant", inv.name, problem, tuple(path), quiescent=True),
                                    in_progress=True)
                    return True
        if self.watching:
            broken = self.props.see(state, path)
            if broken is not None:
                self._violation(Found("always", broken.name, does_not_hold(broken.name),
                                      tuple(path)), in_progress=True)
        return True

    def end_path(self, pending: frozenset, path: Sequence[Event]) -> None:
        """A complete schedule (ending where no event is enabled) ends with the eventually
        properties ``pending`` (see :class:`PropertyTracker`) never having held on it: each is
        a counterexample; the first is a violation (call before :meth:`finish`)."""
        broken = self.props.end(pending, path)
        if broken is not None:
            self._violation(Found("eventually", broken.name,
                                  never_holds(broken.name), tuple(path)),
                            in_progress=True)

    def finish(self, state: SystemState, path: Sequence[Event], terminal: bool) -> None:
        """A schedule ends at ``state`` (terminal, or cut by the depth bound); ``state`` was
        visited (its invariants checked). Judges its history."""
        self.schedules += 1
        if not terminal:
            self.cut = True
        self.judge(state, path)
        self.check_budget()

    def judge(self, state: SystemState, path: Sequence[Event]) -> None:
        """Judge the history of ``state``, where the schedule ``path`` ends (once per distinct
        history; a verdict :meth:`judge_prefix` reached on it is reused)."""
        key = state.history
        if key in self.checked:
            return
        result = self.prefix_checked.pop(key, None)
        if result is None or result.unknown:
            result = self._check(state)
        self.checked[key] = result
        if result.illegal:
            self._violation(self._not_linearizable(path))
        elif result.unknown:
            self.unknown_histories += 1

    def judge_prefix(self, state: SystemState, path: Sequence[Event]) -> None:
        """Judge the history of ``state`` where no schedule ends (``bfs`` does it after every
        step that records a return, so that its first non-linearizable history is reached by a
        shortest path). Memoised apart from the schedules' distinct histories (they are not
        counted); an illegal one is a violation of the schedule in progress."""
        key = state.history
        if key in self.checked or key in self.prefix_checked:
            return
        result = self.prefix_checked[key] = self._check(state)
        if result.illegal:
            self._violation(self._not_linearizable(path), in_progress=True)

    def _check(self, state: SystemState):
        """The checker's result on ``state``'s history, within the time budget (Stop when it
        is spent)."""
        timeout = self.check_timeout
        left = self.remaining()
        if left is not None:
            if left <= 0:
                self.budget_hit = "time budget spent"
                raise Stop
            timeout = left if timeout is None else min(timeout, left)
        result = check(self.protocol.history(state), self.protocol.model, timeout=timeout)
        if result.unknown and self.deadline is not None and time.perf_counter() >= self.deadline:
            self.budget_hit = "time budget spent"
            raise Stop
        return result

    def _not_linearizable(self, path: Sequence[Event]) -> Found:
        model = self.protocol.model
        return Found("linearizability", f"linearizable ({model})",
                     f"the history is not linearizable under the {model} model", tuple(path))

    def _violation(self, found: Found, in_progress: bool = False) -> None:
        self.violated.add((found.kind, found.name))
        if self.found is None:
            self.found = found
            self.first_violation_at = self.schedules + (1 if in_progress else 0)
        if self.stop_on_violation:
            if in_progress:
                self.schedules += 1
            raise Stop


def require_int(name: str, value: Any, low: int | None, expected: str) -> None:
    """Raise ExploreError unless ``value`` is an int (not a bool) of at least ``low``."""
    if not validate.is_integer(value) or (low is not None and value < low):
        raise ExploreError(f"{name} must be {expected}, not {value!r}")


def require_seconds(name: str, value: Any) -> None:
    if value is not None and (not validate.is_number(value) or not 0 < value < math.inf):
        raise ExploreError(f"{name} must be a positive, finite number of seconds, not {value!r}")


def key_projection(protocol, record: tuple) -> frozenset:
    """A history record seen per key: for each key, its operations with the real-time order among
    them (what a P-compositional model judges). Used to compare key-aware reduction's histories."""
    if protocol.op_key is None:
        return frozenset({record})
    history = history_of(protocol.system.clients, record, protocol.model)
    by_key: dict = {}
    for op in history.operations:
        by_key.setdefault(protocol.op_key(op.input), []).append(op)
    out = set()
    for key, ops in by_key.items():
        inputs = [json.dumps(op.input, sort_keys=True) for op in ops]
        canon = []
        for a, a_input in zip(ops, inputs):
            before = tuple(sorted(
                (b.client, b_input) for b, b_input in zip(ops, inputs)
                if b.ret is not None and b.ret < a.call
            ))
            canon.append((a.client, a_input, json.dumps(a.output, sort_keys=True), a.ret is None, before))
        out.add((key, tuple(sorted(canon))))
    return frozenset(out)
