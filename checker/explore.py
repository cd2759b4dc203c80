"""Schedule exploration: run a protocol's actors over many schedules and judge every history.

``explore(protocol, strategy)`` walks the schedules (orders of message deliveries, and faults
where budgets allow) that the protocol's :class:`~checker.actors.System` can take. On every state
it checks the protocol's invariants; where a schedule ends it checks the quiescent invariants and
the history against the protocol's sequential model (:func:`checker.linearizability.check`),
once per distinct history. The first violation stops the search; its schedule is shrunk (prefix
cut, then delta debugging over the delivery list, keeping a valid schedule that still violates the
same property) and returned with its history and the checker's explanation.

Strategies (:data:`STRATEGIES`):

``dfs``
    exhaustive depth-first search over states, pruning states already seen (the visited set holds the states
    themselves, compared by value: a hash collision can never prune a new state).
    A *schedule* is a path of the search: it ends at a terminal state, at the depth bound, or
    where it joins a state already explored.
``exhaustive``
    every schedule, without pruning (what DS2 calls exhaustive exploration).
``dpor``
    stateless dynamic partial-order reduction (Flanagan and Godefroid, POPL 2005) with sleep
    sets. Each message is a process; two deliveries are dependent when they go to the same actor,
    or to two clients (a client may invoke or return an operation, and the history's real-time
    order depends on the order of those events); faults are dependent with everything. The
    relation depends only on the messages, never on the state, as DPOR requires. Happens-before
    includes creation (a message is received after it was sent); a message that a step discards
    (:meth:`~checker.actors.Actor.ignores`) races with that step. Backtrack candidates asleep at
    the race's state are skipped (they cannot reverse the race). At least one schedule per
    Mazurkiewicz trace.
``transdpor``
    DPOR exploiting the transitivity of the actor dependency (Tasharofi et al., FORTE 2012, as
    DS2 implements it): for races between deliveries to the same actor, at most one backtrack
    point (the smallest candidate) is added to a state while one of its branches is explored.
    Races through the history (two clients) are not transitive and keep DPOR's rule.
``keyaware``
    TransDPOR with DS2's key-aware dependency ("LiViola"): deliveries to the same actor commute
    when their messages touch different keys (:meth:`~checker.actors.Actor.key_of`), or when both
    only read (:meth:`~checker.actors.Actor.read_only`; unordered networks). Distinct histories
    are then distinct per key (the models judge keys independently).
``random``
    seeded random walks: each step picks uniformly among enabled events.
``pct``
    probabilistic concurrency testing (Burckhardt et al., ASPLOS 2010) with channels (sender,
    receiver) as threads: each channel gets a random priority when its first message appears, and
    the highest-priority channel delivers its oldest message; at ``bug_depth - 1`` random steps
    the running channel drops below all others. PCT's guarantee, a bug of depth d found by one run
    with probability at least ``1 / (n k^(d-1))`` (n threads, k steps), is reported as
    :attr:`ExploreResult.pct_bound` with n the channels seen and k the longest schedule seen.
``delay-bounded``
    delay bounding (Emmi, Qadeer, Rakamaric, POPL 2011) over the deterministic oldest-message-first
    scheduler: every schedule that deviates from it by at most ``delay_bound`` delays (taking the
    i-th oldest message costs i delays). Complete (and able to say OK) when the bound never cut a
    choice.

Verdicts: ``OK`` only when a complete strategy finished within its budgets and every history was
judged linearizable; ``VIOLATION`` with the (shrunk) counterexample; ``UNKNOWN`` otherwise (a budget
hit, an incomplete strategy, a history the checker could not decide in time). A budget hit is
never OK.

Everything is a pure function of its inputs and an explicit seed; results are values.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Hashable, Sequence

from checker.actors import (
    Actor, ActorError, Envelope, Event, System, SystemState, event_from_json, event_to_json, history_of,
)
from checker.history import History
from checker.linearizability import check, explain

__all__ = [
    "COMPLETE_STRATEGIES",
    "OK",
    "REPLAY_SCHEMA",
    "STRATEGIES",
    "UNKNOWN",
    "VIOLATION",
    "ExploreError",
    "ExploreResult",
    "ReplayResult",
    "ReplayStep",
    "Violation",
    "explore",
    "key_projection",
    "read_replay",
    "replay",
    "replay_json",
    "shrink",
    "write_replay",
]

STRATEGIES = ("dfs", "exhaustive", "dpor", "transdpor", "keyaware", "random", "pct", "delay-bounded")
COMPLETE_STRATEGIES = frozenset({"dfs", "exhaustive", "dpor", "transdpor", "keyaware"})
OK, VIOLATION, UNKNOWN = "OK", "VIOLATION", "UNKNOWN"
REPLAY_SCHEMA = "packrat.replay/1"
DEFAULT_INCOMPLETE_SCHEDULES = 1000


class ExploreError(ValueError):
    """A bad strategy, budget, schedule or replay file; the message names the bad value."""


# --------------------------------------------------------------------------------------------
# Result values


@dataclass(frozen=True)
class Violation:
    """A property that one schedule breaks.

    ``kind``: ``"invariant"`` (``name`` is the invariant's) or ``"linearizability"`` (``name`` is
    ``"linearizable (<model>)"``). ``schedule``: the shrunk schedule, replayable from the initial
    state; ``found``: the schedule as the search found it. ``history``: the history of the shrunk
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
class ExploreResult:
    """What an exploration found (see the module docstring for the verdicts).

    ``schedules``: schedules explored; ``states``: distinct states seen;
    ``transitions``: steps taken; ``distinct_histories``: distinct histories judged (after
    de-duplication); ``first_violation_at``: index (1-based) of the schedule that first violated;
    ``complete``: the strategy covered every behaviour (within ``depth``); ``reason``: why the
    verdict is not OK, in words; ``pct_bound``: PCT's per-run probability bound (pct only);
    ``histories``: the distinct history records (only when asked with ``collect_histories``).
    """

    verdict: str
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

    @property
    def ok(self) -> bool:
        return self.verdict == OK

    @property
    def violated(self) -> bool:
        return self.verdict == VIOLATION

    @property
    def schedules_per_s(self) -> float:
        return self.schedules / self.elapsed_s if self.elapsed_s > 0 else float("inf")

    def to_json(self) -> dict:
        return {
            "verdict": self.verdict,
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
            "violation": None if self.violation is None else self.violation.to_json(),
        }


# --------------------------------------------------------------------------------------------
# Shared machinery of one run


class _Stop(Exception):
    """Raised inside a search to unwind it (violation found or budget spent)."""


@dataclass
class _Found:
    kind: str
    name: str
    message: str
    path: tuple[Event, ...]
    quiescent: bool = False


class _Run:
    def __init__(self, protocol, max_schedules, max_time, depth, check_timeout, stop_on_violation):
        self.protocol = protocol
        self.system: System = protocol.system
        self.always = tuple(inv for inv in protocol.invariants if not inv.quiescent)
        self.quiescent = tuple(inv for inv in protocol.invariants if inv.quiescent)
        self.max_schedules = max_schedules
        self.deadline = None if max_time is None else time.perf_counter() + max_time
        self.depth = depth
        self.check_timeout = check_timeout
        self.stop_on_violation = stop_on_violation
        self.schedules = 0
        self.transitions = 0
        self.seen: set[SystemState] = set()  # the states themselves: exact, no hash collisions
        self.checked: dict[Hashable, Any] = {}
        self.unknown_histories = 0
        self.found: _Found | None = None
        self.first_violation_at: int | None = None
        self.budget_hit = ""
        self.cut = False  # a path was cut by the depth bound
        self.pct_bound: float | None = None
        self.delay_cut = False  # delay-bounded: the bound cut some choice
        self._tick = 0

    # budgets --------------------------------------------------------------------------------

    def check_budget(self) -> None:
        if self.max_schedules is not None and self.schedules >= self.max_schedules:
            self.budget_hit = f"schedule budget of {self.max_schedules} spent"
            raise _Stop
        self._tick += 1
        if self.deadline is not None and (self._tick & 63) == 0 and time.perf_counter() >= self.deadline:
            self.budget_hit = "time budget spent"
            raise _Stop

    # states ---------------------------------------------------------------------------------

    def visit(self, state: SystemState, path: Sequence[Event]) -> bool:
        """Record ``state``; on a new one check the invariants, and the quiescent ones where no
        message can be delivered (:meth:`System.terminal`; fault events may still be enabled
        there, so a schedule need not end at such a state). True when the state is new."""
        if state in self.seen:
            return False
        self.seen.add(state)
        for inv in self.always:
            problem = inv.check(self.system, state)
            if problem is not None:
                # the schedule in progress ends here (it is the next schedule's index)
                self._violation(_Found("invariant", inv.name, problem, tuple(path)), in_progress=True)
                return True
        if self.quiescent and self.system.terminal(state):
            for inv in self.quiescent:
                problem = inv.check(self.system, state)
                if problem is not None:
                    self._violation(_Found("invariant", inv.name, problem, tuple(path), quiescent=True),
                                    in_progress=True)
                    return True
        return True

    def finish(self, state: SystemState, path: Sequence[Event], terminal: bool) -> None:
        """A schedule ends at ``state`` (terminal, or cut by the depth bound); ``state`` was
        visited (its invariants checked). Judges its history."""
        self.schedules += 1
        if not terminal:
            self.cut = True
        self.judge(state, path)
        self.check_budget()

    def judge(self, state: SystemState, path: Sequence[Event]) -> None:
        key = state.history
        if key in self.checked:
            return
        result = check(self.protocol.history(state), self.protocol.model, timeout=self.check_timeout)
        self.checked[key] = result
        if result.illegal:
            self._violation(
                _Found("linearizability", f"linearizable ({self.protocol.model})",
                       f"the history is not linearizable under the {self.protocol.model} model", tuple(path))
            )
        elif result.unknown:
            self.unknown_histories += 1

    def _violation(self, found: _Found, in_progress: bool = False) -> None:
        if self.found is None:
            self.found = found
            self.first_violation_at = self.schedules + (1 if in_progress else 0)
        if self.stop_on_violation:
            if in_progress:
                self.schedules += 1
            raise _Stop


# --------------------------------------------------------------------------------------------
# Stateful DFS, and stateless tree searches (exhaustive, delay-bounded)


def _tree(run: _Run, choices: Callable[[SystemState, Any], list], root_aux: Any,
          advance: Callable[[Any, Event, Any, int], Any], *, prune: bool = False) -> None:
    """Depth-first search over schedules. ``choices(state, aux)`` lists the events to try from a
    state; ``advance(aux, event, outcome, choice index)`` gives the child's aux.

    With ``prune`` (stateful DFS) a step into a state already seen ends its schedule there, and
    a schedule ends terminal exactly where no event is enabled; without it (stateless) every
    path is followed, and a schedule ends terminal where no message can be delivered
    (:meth:`System.terminal`)."""
    system = run.system

    def terminal(state: SystemState, evs: list) -> bool:
        return not evs if prune else system.terminal(state)

    init = system.initial()
    run.visit(init, ())
    path: list[Event] = []
    evs = choices(init, root_aux)
    if not evs:
        run.finish(init, path, terminal(init, evs))
        return
    stack: list[list] = [[init, root_aux, evs, 0]]
    while stack:
        frame = stack[-1]
        state, aux, evs, idx = frame
        if idx == len(evs):
            stack.pop()
            if path:
                path.pop()
            continue
        frame[3] = idx + 1
        ev = evs[idx]
        out = system.step(state, ev)
        run.transitions += 1
        path.append(ev)
        if not run.visit(out.state, path) and prune:
            run.schedules += 1  # joins a state already explored
            run.check_budget()
            path.pop()
            continue
        child_aux = advance(aux, ev, out, idx)
        nevs = choices(out.state, child_aux)
        if not nevs or (run.depth is not None and len(path) >= run.depth):
            run.finish(out.state, path, terminal(out.state, nevs))
            path.pop()
            continue
        stack.append([out.state, child_aux, nevs, 0])


def _exhaustive(run: _Run, prune: bool = False) -> None:
    """Every event enabled in every state: ``exhaustive``, or with ``prune`` stateful ``dfs``."""
    system = run.system
    _tree(run, lambda s, aux: system.enabled(s), None, lambda aux, ev, out, i: None, prune=prune)


def _after(system: System, order: tuple[Envelope, ...], out) -> tuple[Envelope, ...]:
    """The messages in flight after a step, oldest first: the old order plus what was sent,
    reconciled with what the new state holds (identical copies are interchangeable)."""
    counts: dict = {}
    for env in system.in_flight(out.state):
        counts[env] = counts.get(env, 0) + 1
    kept = []
    for env in (*order, *out.sent):
        c = counts.get(env, 0)
        if c:
            kept.append(env)
            counts[env] = c - 1
    return tuple(kept)


def _oldest_first(system: System, state: SystemState, order: tuple[Envelope, ...]) -> list[Event]:
    deliverable = set(system.deliverable(state))
    seen: list[Envelope] = []
    for env in order:
        if env in deliverable and env not in seen:
            seen.append(env)
    return [Event("deliver", e.src, e.dst, e.msg) for e in seen]


def _delay_bounded(run: _Run, bound: int) -> None:
    system = run.system

    def choices(state, aux):
        order, used = aux
        evs = _oldest_first(system, state, order)
        allowed = bound - used + 1
        if len(evs) > allowed:
            run.delay_cut = True
            evs = evs[:allowed]
        return evs

    def advance(aux, ev, out, idx):
        order, used = aux
        return _after(system, order, out), used + idx

    _tree(run, choices, (_after(system, (), system.start()), 0), advance)


# --------------------------------------------------------------------------------------------
# Random walk and PCT


def _walk(run: _Run, init: SystemState, choose: Callable[[SystemState], Event | None],
          stepped: Callable[[Any], None] | None = None) -> tuple[SystemState, list[Event]]:
    """One schedule from ``init``, visiting every state: ``choose(state)`` gives the next event
    (None: nothing is enabled), ``stepped(outcome)`` sees each step. Stops there or at the depth
    bound; returns the last state and the path (the caller finishes the schedule)."""
    system = run.system
    state = init
    run.visit(state, ())
    path: list[Event] = []
    while run.depth is None or len(path) < run.depth:
        ev = choose(state)
        if ev is None:
            break
        out = system.step(state, ev)
        if stepped is not None:
            stepped(out)
        state = out.state
        run.transitions += 1
        path.append(ev)
        run.visit(state, path)
    return state, path


def _random(run: _Run, seed: int) -> None:
    system = run.system
    rng = random.Random(seed)
    init = system.initial()

    def choose(state: SystemState) -> Event | None:
        evs = system.enabled(state)
        return evs[rng.randrange(len(evs))] if evs else None

    while True:
        state, path = _walk(run, init, choose)
        run.finish(state, path, system.terminal(state))


def _pct(run: _Run, seed: int, bug_depth: int) -> None:
    """PCT runs until the budget is spent; sets ``run.pct_bound``.

    The "threads" are channels (sender, receiver): each gets a random priority when its first
    message appears; at every step the highest-priority channel with a message delivers its
    oldest one; at ``bug_depth - 1`` random steps the running channel drops below all others.
    """
    system = run.system
    rng = random.Random(seed)
    start = system.start()
    init = start.state
    start_order = _after(system, (), start)
    k = run.depth if run.depth is not None else _default_length(system, start)
    channels: set = set()
    d = bug_depth
    # the walk in progress: messages in flight (oldest first), channel priorities, change points
    order, priority, changes, step_no = start_order, {}, [], 0

    def choose(state: SystemState) -> Event | None:
        nonlocal step_no
        evs = _oldest_first(system, state, order)
        if not evs:
            return None
        step_no += 1
        first: dict = {}
        for ev in evs:
            ch = (ev.src, ev.dst)
            if ch not in first:
                first[ch] = ev
                if ch not in priority:
                    priority[ch] = d + rng.random()
                    channels.add(ch)
        top = max(first, key=priority.__getitem__)
        if step_no in changes:
            priority[top] = d - 1 - changes.index(step_no) + rng.random() * 1e-9
            top = max(first, key=priority.__getitem__)
        return first[top]

    def stepped(out) -> None:
        nonlocal order
        order = _after(system, order, out)

    while True:
        order, priority, step_no = start_order, {}, 0
        changes = sorted(rng.sample(range(1, k + 1), min(d - 1, k)))
        state, path = _walk(run, init, choose, stepped)
        run.pct_bound = 1.0 / (max(1, len(channels)) * k ** (d - 1))
        run.finish(state, path, system.terminal(state))
        if run.depth is None and len(path) > k:
            k = len(path)


def _default_length(system: System, start) -> int:
    """Length of the oldest-first schedule: PCT's estimate of the steps k (updated as runs go)."""
    state, order, steps = start.state, _after(system, (), start), 0
    while steps < 100_000:
        evs = _oldest_first(system, state, order)
        if not evs:
            break
        out = system.step(state, evs[0])
        order = _after(system, order, out)
        state = out.state
        steps += 1
    return max(1, steps)


# --------------------------------------------------------------------------------------------
# DPOR family


def _forget(pending: dict, ignored: Sequence[Envelope]) -> list:
    """Remove one pending id per discarded envelope (the newest copy first); returns the ids."""
    gone = []
    for env in ignored:
        for mid in reversed(list(pending)):
            if pending[mid] == env:
                del pending[mid]
                gone.append(mid)
                break
    return gone


class _T:
    """A transition's dependency-relevant facts (static: they depend on the message, never on
    the state it is delivered in). ``client``: the receiver is a client, so the delivery may
    invoke or return an operation; ``ro``: the receiver promised it never changes its state."""

    __slots__ = ("pid", "dst", "key", "client", "ro", "fault", "creator", "mid", "hb")

    def __init__(self, pid, dst, key, client, ro, fault, creator, mid):
        self.pid = pid
        self.dst = dst
        self.key = key
        self.client = client
        self.ro = ro
        self.fault = fault
        self.creator = creator
        self.mid = mid
        self.hb = 0


def _transitive(a: _T, b: _T) -> bool:
    """The race lies within one class of the actor dependency (same receiver, same key, no
    read-only exception, no fault), where dependency is an equivalence (transitive)."""
    return a.dst == b.dst and a.key == b.key and not (a.fault or b.fault or a.ro or b.ro)


def _dependent(a: _T, b: _T, keyed: bool) -> bool:
    """The dependency relation: faults with everything; deliveries to the same actor (key-aware:
    unless their keys differ or both only read); deliveries to two clients (each may invoke or
    return an operation, and the history's real-time order depends on their order)."""
    if a.fault or b.fault:
        return True
    if a.dst == b.dst:
        if not keyed or a.key is None or b.key is None:
            return True
        return a.key == b.key and not (a.ro and b.ro)
    return a.client and b.client


class _Frame:
    __slots__ = ("state", "pending", "enabled", "order", "backtrack", "done", "frozen", "infos", "sleep")

    def __init__(self, state, pending):
        self.state = state
        self.pending = pending  # dict mid -> Envelope, in creation order
        self.enabled: list = []
        self.order: dict = {}
        self.backtrack: set = set()
        self.done: set = set()
        self.frozen = False
        self.infos: dict = {}
        self.sleep: set = set()


def _dpor(run: _Run, trans: bool, keyed: bool) -> None:
    system = run.system
    faults = system.faults
    # actors that may discard messages (Actor.ignores) get no key refinement: a step at any key
    # may make a message at another key ignorable, which disables it
    ignoring = [type(a).ignores is not Actor.ignores for a in system.actors]

    def event_of(frame: _Frame, pid) -> Event:
        if pid[0] == "crash" or pid[0] == "restart":
            return Event(pid[0], None, pid[1], None)
        if pid[0] in ("drop", "duplicate"):
            env = frame.pending[pid[1]]
            return Event(pid[0], env.src, env.dst, env.msg)
        env = frame.pending[pid]
        return Event("deliver", env.src, env.dst, env.msg)

    def info(frame: _Frame, pid) -> _T:
        t = frame.infos.get(pid)
        if t is not None:
            return t
        if isinstance(pid[0], str):  # a fault
            mid = pid[1] if pid[0] in ("drop", "duplicate") else None
            creator = mid[0] if mid is not None else -1
            dst = pid[1] if mid is None else frame.pending[mid].dst
            t = _T(pid, dst, None, False, False, True, creator, mid)
        else:
            t = delivery_info(pid, frame.pending[pid])
        frame.infos[pid] = t
        return t

    def delivery_info(mid, env: Envelope) -> _T:
        di = system.index[env.dst]
        actor = system.actors[di]
        key = None
        ro = False
        if keyed and not system.fifo and not actor.is_client and not ignoring[di]:
            # (on a fifo network a message enables the next one of its channel, whatever
            # their keys, so there is no refinement there)
            key = actor.key_of(env.msg)
            ro = bool(actor.read_only(env.msg))
        return _T(mid, env.dst, key, actor.is_client, ro, False, mid[0], mid)

    def compute_enabled(frame: _Frame) -> None:
        state = frame.state
        crashed = {n for n in system.names if faults.crashes and system.crashed(state, n)}
        if system.fifo:
            heads: dict = {}
            for mid, env in frame.pending.items():  # creation order
                ch = (env.src, env.dst)
                if ch not in heads:
                    heads[ch] = mid
            deliverable = [mid for mid in heads.values() if frame.pending[mid].dst not in crashed]
        else:
            deliverable = [mid for mid, env in frame.pending.items() if env.dst not in crashed]
        enabled: list = list(deliverable)
        if faults.any:
            drops, dups, crashes, restarts = state.used
            if drops < faults.drops:
                enabled += [("drop", mid) for mid in deliverable]
            if dups < faults.duplicates:
                enabled += [("duplicate", mid) for mid in deliverable]
            if crashes < faults.crashes:
                enabled += [("crash", n) for n, a in zip(system.names, system.actors) if not a.is_client and n not in crashed]
            if restarts < faults.restarts:
                enabled += [("restart", n) for n in system.names if n in crashed]
        frame.enabled = enabled
        frame.order = {pid: i for i, pid in enumerate(enabled)}

    frames: list[_Frame] = []
    trace: list[_T] = []
    path: list[Event] = []
    dups = faults.duplicates > 0

    def hb_to(t: _T) -> int:
        """Bitmask of trace indices that happen before process ``t.pid``'s next transition."""
        mask = 0
        c = t.creator
        if c is not None and c >= 0:
            mask |= trace[c].hb | (1 << c)
        if t.mid is not None and dups:
            for j, u in enumerate(trace):
                if u.mid == t.mid:
                    mask |= u.hb | (1 << j)
        return mask

    def races(frame: _Frame, gone: Sequence[tuple] = ()) -> None:
        """Add backtrack points for the races of every pending message (and of the messages the
        last step discarded: it disabled them, so they race with it)."""
        n = len(trace)
        if n == 0:
            return
        pids = [(p, None) for p in frame.enabled]
        if system.fifo or faults.crashes:  # pending but not enabled messages race too
            seen = set(frame.enabled)
            pids += [(mid, None) for mid in frame.pending if mid not in seen]
        pids += list(gone)
        for p, tp in pids:
            if tp is None:
                tp = info(frame, p)
            mask = hb_to(tp)
            for i in range(n - 1, -1, -1):
                if (mask >> i) & 1:
                    continue
                ti = trace[i]
                if not _dependent(ti, tp, keyed):
                    continue
                pre = frames[i]
                # candidates at pre(i) that lead to p: p itself, or a later transition that
                # happens before p; asleep ones are explored elsewhere and cannot reverse the race
                E = []
                if p in pre.order and p not in pre.sleep:
                    E.append(p)
                for j in range(i + 1, n):
                    if (mask >> j) & 1:
                        q = trace[j].pid
                        if q in pre.order and q not in E and q not in pre.sleep:
                            E.append(q)
                if E:
                    if trans and _transitive(ti, tp):
                        q = min(E, key=pre.order.__getitem__)
                        if q not in pre.backtrack and not pre.frozen:
                            pre.backtrack.add(q)
                            pre.frozen = True
                    elif pre.backtrack.isdisjoint(E):
                        pre.backtrack.add(p if p in E else min(E, key=pre.order.__getitem__))
                else:
                    pre.backtrack.update(q for q in pre.enabled if q not in pre.sleep)
                break

    def open_frame(frame: _Frame, gone: Sequence[tuple] = (), parent: _Frame | None = None, taken=None) -> bool:
        """Process a new frame: races, terminal check. True when it has transitions to explore.

        Transitions that the last step disabled (a delivery for the drop of the same message, a
        fault whose budget it spent, a message it discarded, one to an actor it crashed) race
        with it: they are race-checked here as if still pending (FG05's disabled processes)."""
        compute_enabled(frame)
        if parent is not None:
            gone = list(gone) + [(q, info(parent, q)) for q in parent.enabled if q != taken and q not in frame.order]
        races(frame, gone)
        if not frame.enabled or (run.depth is not None and len(path) >= run.depth):
            run.finish(frame.state, path, not frame.enabled or system.terminal(frame.state))
            return False
        awake = [p for p in frame.enabled if p not in frame.sleep]
        if not awake:
            return False  # sleep-set blocked: every continuation is explored elsewhere
        if not frame.backtrack:
            frame.backtrack.add(awake[0])
        return True

    start = system.start()
    init = start.state
    pending0 = {(-1, k): env for k, env in enumerate(start.sent)}
    _forget(pending0, start.ignored)
    root = _Frame(init, pending0)
    run.visit(init, ())
    if not open_frame(root):
        return
    frames.append(root)
    while frames:
        top = frames[-1]
        todo = [p for p in top.backtrack if p not in top.done and p not in top.sleep]
        if not todo:
            frames.pop()
            if trace:
                trace.pop()
                path.pop()
            if frames:
                frames[-1].frozen = False
            continue
        p = min(todo, key=top.order.__getitem__)  # backtrack points are always enabled here
        explored_before = list(top.done)
        top.done.add(p)
        t = info(top, p)
        ev = event_of(top, p)
        out = system.step(top.state, ev)
        run.transitions += 1
        n = len(trace)
        # happens-before of the new trace entry
        hb = 0
        if t.creator is not None and t.creator >= 0:
            hb |= trace[t.creator].hb | (1 << t.creator)
        for k in range(n):
            if not (hb >> k) & 1 and _dependent(trace[k], t, keyed):
                hb |= trace[k].hb | (1 << k)
        t.hb = hb
        trace.append(t)
        path.append(ev)
        pending = dict(top.pending)
        kind = ev.kind
        if kind in ("deliver", "drop"):
            del pending[p if kind == "deliver" else p[1]]
        for k, env in enumerate(out.sent):
            pending[(n, k)] = env
        gone: list = []
        if out.ignored:
            # messages discarded as soon as sent race with this step too: in another order
            # their receiver would have taken them (those in flight before are disabled
            # transitions, handled by open_frame)
            for mid in _forget(pending, out.ignored):
                if mid not in top.pending:
                    gone.append((mid, delivery_info(mid, out.sent[mid[1]])))
        child = _Frame(out.state, pending)
        # sleep sets: what was explored (or asleep) here and commutes with p stays asleep
        for q in (*top.sleep, *explored_before):
            if q != p and q in top.order and not _dependent(info(top, q), t, keyed):
                child.sleep.add(q)
        run.visit(out.state, path)
        if open_frame(child, gone, top, p):
            frames.append(child)
        else:
            trace.pop()
            path.pop()
            top.frozen = False


# --------------------------------------------------------------------------------------------
# Shrinking


def _violates(protocol, events: Sequence[Event], target: _Found, timeout: float | None) -> int | None:
    """Length of the shortest prefix of ``events`` that shows ``target``'s violation, or None
    (also None when ``events`` is not a valid schedule)."""
    system = protocol.system
    always = [inv for inv in protocol.invariants if inv.name == target.name and not inv.quiescent]
    state = system.initial()
    if target.kind == "invariant" and not target.quiescent:
        for inv in always:
            if inv.check(system, state) is not None:
                return 0
    for i, ev in enumerate(events):
        try:
            state = system.step(state, ev).state
        except ActorError:
            return None
        if target.kind == "invariant" and not target.quiescent:
            for inv in always:
                if inv.check(system, state) is not None:
                    return i + 1
    if target.kind == "invariant":
        if target.quiescent and system.terminal(state):
            for inv in protocol.invariants:
                if inv.quiescent and inv.name == target.name and inv.check(system, state) is not None:
                    return len(events)
        return None
    result = check(protocol.history(state), protocol.model, timeout=timeout)
    return len(events) if result.illegal else None


def shrink(protocol, schedule: Sequence[Event], target: _Found | None = None, *,
           timeout: float | None = 10.0, max_tests: int = 3000) -> tuple[Event, ...]:
    """A short schedule that still shows the violation of ``schedule`` (same invariant, or a
    non-linearizable history): the shortest violating prefix, then delta debugging (ddmin) over
    the deliveries, keeping only valid schedules. ``target`` defaults to the first violation
    that replaying ``schedule`` shows."""
    events = tuple(schedule)
    if target is None:
        rr = replay(protocol, events)
        if rr.violation is None:
            raise ExploreError("the schedule shows no violation; nothing to shrink")
        target = _Found(rr.violation[0], rr.violation[1], rr.violation[2], events, quiescent=rr.violation[3])
    tests = [0]
    cache: dict[tuple, int | None] = {}

    def test(evs: tuple) -> int | None:
        if evs in cache:
            return cache[evs]
        tests[0] += 1
        r = _violates(protocol, evs, target, timeout)
        cache[evs] = r
        return r

    n = test(events)
    if n is None:
        return events
    events = events[:n]
    if target.kind == "linearizability":
        # prefix-closed: find the shortest prefix whose history is already illegal
        lo, hi = 0, len(events)
        while lo < hi:
            mid = (lo + hi) // 2
            if test(events[:mid]) is not None:
                hi = mid
            else:
                lo = mid + 1
        events = events[:hi]
    # ddmin over the delivery list
    granularity = 2
    while len(events) >= 2 and tests[0] < max_tests:
        size = math.ceil(len(events) / granularity)
        chunks = [events[i:i + size] for i in range(0, len(events), size)]
        reduced = False
        for i in range(len(chunks)):
            candidate = tuple(e for j, c in enumerate(chunks) if j != i for e in c)
            r = test(candidate)
            if r is not None:
                events = candidate[:r]
                granularity = max(granularity - 1, 2)
                reduced = True
                break
            if tests[0] >= max_tests:
                break
        if not reduced:
            if granularity >= len(events):
                break
            granularity = min(len(events), granularity * 2)
    return events


# --------------------------------------------------------------------------------------------
# Replay


@dataclass(frozen=True)
class ReplayStep:
    """One replayed event: the history records it produced and the invariants broken after it."""

    index: int
    event: Event
    records: tuple
    broken: tuple[str, ...]


@dataclass(frozen=True)
class ReplayResult:
    """A replayed schedule: its steps, the final history and the checker's result on it, and the
    first violation shown, as ``(kind, name, message, quiescent)`` (None when none)."""

    protocol: Any
    steps: tuple[ReplayStep, ...]
    initial_records: tuple
    state: SystemState
    history: History
    check: Any
    violation: tuple | None
    terminal: bool

    @property
    def verdict(self) -> str:
        if self.violation is not None:
            return VIOLATION
        return OK if self.check.ok else UNKNOWN


def replay(protocol, schedule: Sequence[Event], *, timeout: float | None = 10.0) -> ReplayResult:
    """Carry out ``schedule`` step by step from the initial state, checking invariants after each
    step, quiescent invariants at the end if nothing is left to deliver, and the final history.
    Raises ExploreError naming the first event that is not enabled."""
    system = protocol.system
    start = system.start()
    state = start.state
    steps = []
    violation = None
    for inv in protocol.invariants:
        problem = None if inv.quiescent else inv.check(system, state)
        if problem is not None:
            violation = ("invariant", inv.name, problem, False)
            break
    for i, ev in enumerate(schedule):
        try:
            out = system.step(state, ev)
        except ActorError as exc:
            raise ExploreError(f"step {i + 1} ({ev.describe()}) cannot be replayed: {exc}") from None
        state = out.state
        broken = []
        for inv in protocol.invariants:
            if inv.quiescent:
                continue
            problem = inv.check(system, state)
            if problem is not None:
                broken.append(f"{inv.name}: {problem}")
                if violation is None:
                    violation = ("invariant", inv.name, problem, False)
        steps.append(ReplayStep(i + 1, ev, out.records, tuple(broken)))
    terminal = system.terminal(state)
    if terminal and violation is None:
        for inv in protocol.invariants:
            if inv.quiescent:
                problem = inv.check(system, state)
                if problem is not None:
                    violation = ("invariant", inv.name, problem, True)
                    break
    history = protocol.history(state)
    result = check(history, protocol.model, timeout=timeout)
    if violation is None and result.illegal:
        violation = ("linearizability", f"linearizable ({protocol.model})",
                     f"the history is not linearizable under the {protocol.model} model", False)
    return ReplayResult(protocol, tuple(steps), start.records, state, history, result, violation, terminal)


def replay_json(protocol, schedule: Sequence[Event], violation: Violation | None = None,
                strategy: str | None = None, seed: int | None = None) -> dict:
    """The replay file's JSON object (``packrat.replay/1``)."""
    obj: dict[str, Any] = {
        "schema": REPLAY_SCHEMA,
        "protocol": protocol.name,
        "variant": protocol.variant,
        "params": dict(protocol.params),
        "strategy": strategy,
        "seed": seed,
        "deliveries": [event_to_json(e) for e in schedule],
    }
    if violation is not None:
        obj["violation"] = {"kind": violation.kind, "name": violation.name, "message": violation.message}
        obj["history"] = violation.history.to_json()
    return obj


def write_replay(path: str | Path, protocol, schedule: Sequence[Event], violation: Violation | None = None,
                 strategy: str | None = None, seed: int | None = None) -> Path:
    """Write a replay file; returns its path."""
    path = Path(path)
    path.write_text(json.dumps(replay_json(protocol, schedule, violation, strategy, seed), indent=1) + "\n")
    return path


def read_replay(path: str | Path):
    """Read a replay file: ``(protocol, schedule, file object)``. Raises ExploreError naming the
    problem (missing file, bad JSON, unknown schema, protocol or event)."""
    from checker.protocols import ProtocolError, build

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ExploreError(f"cannot read replay file {str(path)!r}: {exc.strerror or exc}") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExploreError(f"replay file {str(path)!r} is not valid JSON: line {exc.lineno}: {exc.msg}") from None
    if not isinstance(obj, dict):
        raise ExploreError(f"replay file {str(path)!r} must hold a JSON object")
    if obj.get("schema") != REPLAY_SCHEMA:
        raise ExploreError(f"replay file {str(path)!r} has schema {obj.get('schema')!r}; this version reads {REPLAY_SCHEMA!r}")
    params = obj.get("params") or {}
    if not isinstance(params, dict):
        raise ExploreError(f"replay file {str(path)!r}: \"params\" must be an object, not {params!r}")
    try:
        protocol = build(obj.get("protocol"), obj.get("variant"), **params)
    except ProtocolError as exc:
        raise ExploreError(f"replay file {str(path)!r}: {exc}") from None
    raw = obj.get("deliveries")
    if not isinstance(raw, list):
        raise ExploreError(f"replay file {str(path)!r} has no \"deliveries\" list")
    schedule = []
    for i, item in enumerate(raw):
        try:
            schedule.append(event_from_json(item))
        except ActorError as exc:
            raise ExploreError(f"replay file {str(path)!r}: delivery {i + 1}: {exc}") from None
    return protocol, tuple(schedule), obj


# --------------------------------------------------------------------------------------------
# Entry point


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


def explore(
    protocol,
    strategy: str = "dpor",
    *,
    variant: str | None = None,
    params: dict | None = None,
    max_schedules: int | None = None,
    max_time: float | None = None,
    depth: int | None = None,
    seed: int = 0,
    delay_bound: int = 3,
    bug_depth: int = 3,
    check_timeout: float | None = 10.0,
    shrink_counterexample: bool = True,
    collect_histories: bool = False,
    stop_on_violation: bool = True,
) -> ExploreResult:
    """Explore ``protocol`` (a :class:`~checker.protocols.Protocol`, or a registered name built
    with ``variant`` and ``params``) with ``strategy`` (one of :data:`STRATEGIES`).

    Budgets: ``max_schedules``, ``max_time`` (seconds), ``depth`` (steps per schedule; a cut
    schedule makes the verdict UNKNOWN, and the DPOR family sees no races beyond the cut, so it
    may miss a violation within the depth that ``dfs`` or ``exhaustive`` would find). random and
    pct without a budget get ``max_schedules=1000``. ``seed`` drives random and pct; ``delay_bound`` is delay-bounded's K;
    ``bug_depth`` is PCT's d. ``check_timeout``: seconds per history check. Raises ExploreError
    (or ProtocolError) naming a bad argument.
    """
    from checker.protocols import Protocol, build

    if isinstance(protocol, str):
        protocol = build(protocol, variant, **(params or {}))
    elif not isinstance(protocol, Protocol):
        raise ExploreError(f"protocol must be a Protocol or a registered name, not {protocol!r}")
    elif variant is not None or params:
        raise ExploreError("variant and params apply only when the protocol is given by name")
    if strategy not in STRATEGIES:
        raise ExploreError(f"unknown strategy {strategy!r} (expected one of {', '.join(STRATEGIES)})")
    for name, value in (("max_schedules", max_schedules), ("depth", depth)):
        if value is not None:
            _require_int(name, value, 1, "an integer >= 1")
    if max_time is not None and (isinstance(max_time, bool) or not isinstance(max_time, (int, float))
                                 or not 0 < max_time < math.inf):
        raise ExploreError(f"max_time must be a positive, finite number of seconds, not {max_time!r}")
    _require_int("delay_bound", delay_bound, 0, "a non-negative integer")
    _require_int("bug_depth", bug_depth, 1, "a positive integer")
    if strategy in ("pct", "delay-bounded") and protocol.system.faults.any:
        raise ExploreError(f"strategy {strategy} schedules deliveries only and injects no faults; use random, dfs or dpor")
    _require_int("seed", seed, None, "an integer")
    if strategy in ("random", "pct") and max_schedules is None and max_time is None:
        max_schedules = DEFAULT_INCOMPLETE_SCHEDULES

    run = _Run(protocol, max_schedules, max_time, depth, check_timeout, stop_on_violation)
    start = time.perf_counter()
    try:
        if strategy == "dfs":
            _exhaustive(run, prune=True)
        elif strategy == "exhaustive":
            _exhaustive(run)
        elif strategy == "dpor":
            _dpor(run, trans=False, keyed=False)
        elif strategy == "transdpor":
            _dpor(run, trans=True, keyed=False)
        elif strategy == "keyaware":
            _dpor(run, trans=True, keyed=True)
        elif strategy == "random":
            _random(run, seed)
        elif strategy == "pct":
            _pct(run, seed, bug_depth)
        else:
            _delay_bounded(run, delay_bound)
    except _Stop:
        pass
    elapsed = time.perf_counter() - start

    complete = (strategy not in ("random", "pct") and not run.budget_hit and not run.cut and not run.delay_cut
                and (run.found is None or not stop_on_violation))
    violation = None
    if run.found is not None:
        verdict = VIOLATION
        violation = _make_violation(protocol, run.found, check_timeout, shrink_counterexample)
        reason = violation.message
    elif complete and run.unknown_histories == 0:
        verdict, reason = OK, ""
    else:
        verdict = UNKNOWN
        if strategy in ("random", "pct"):
            reason = f"{strategy} is not exhaustive: no violation in {run.schedules} schedules"
        elif run.budget_hit:
            reason = f"{run.budget_hit} before the search completed; no violation in {run.schedules} schedules"
        elif run.delay_cut:
            reason = f"no violation within {delay_bound} delays ({run.schedules} schedules); larger delays not explored"
        elif run.cut:
            reason = f"schedules were cut at depth {depth}; no violation in {run.schedules} schedules"
        else:
            reason = f"{run.unknown_histories} histories could not be judged within {check_timeout} s each"
    return ExploreResult(
        verdict=verdict,
        protocol=protocol.name,
        variant=protocol.variant,
        params=protocol.params,
        strategy=strategy,
        schedules=run.schedules,
        states=len(run.seen),
        transitions=run.transitions,
        distinct_histories=len(run.checked),
        elapsed_s=elapsed,
        complete=complete,
        reason=reason,
        first_violation_at=run.first_violation_at,
        violation=violation,
        unknown_histories=run.unknown_histories,
        seed=seed if strategy in ("random", "pct") else None,
        pct_bound=run.pct_bound,
        histories=frozenset(run.checked) if collect_histories else None,
    )


def _require_int(name: str, value: Any, low: int | None, expected: str) -> None:
    """Raise ExploreError unless ``value`` is an int (not a bool) of at least ``low``."""
    if isinstance(value, bool) or not isinstance(value, int) or (low is not None and value < low):
        raise ExploreError(f"{name} must be {expected}, not {value!r}")


def _make_violation(protocol, found: _Found, timeout: float | None, do_shrink: bool) -> Violation:
    schedule = shrink(protocol, found.path, found, timeout=timeout) if do_shrink else found.path
    rr = replay(protocol, schedule, timeout=timeout)
    explanation: tuple[str, ...]
    message = found.message
    if found.kind == "linearizability":
        explanation = tuple(explain(rr.check, rr.history, protocol.model))
    else:
        # the shrunk schedule may word the same invariant's breach differently
        if rr.violation is not None and rr.violation[1] == found.name:
            message = rr.violation[2]
        explanation = (f"invariant violated: {found.name}", message)
    return Violation(
        kind=found.kind,
        name=found.name,
        message=message,
        schedule=tuple(schedule),
        found=found.path,
        history=rr.history,
        explanation=explanation,
        check=rr.check,
        quiescent=found.quiescent,
    )
