"""Bita: coverage-guided scheduling of actor programs (incomplete: never OK).

Tasharofi, Pradel, Lin, Johnson, "Bita: Coverage-guided, automatic testing of actor programs"
(ASE 2013). A *receive* is the delivery of a message to an actor, named by the message, its
sender and its receiver (a :class:`~checker.actors.Event` of kind ``deliver``; a duplicate
delivery is a receive of the same name). An *ordering goal* ``(a, b)`` asks for a schedule in
which one actor receives ``a`` before ``b``. Which pairs of one actor's receives make goals is
the *criterion* (:data:`CRITERIA`):

``pr`` (pair of receives)
    any two receives of one actor.
``pcr`` (pair of consecutive receives)
    two receives of one actor with no other receive of that actor between them.
``pbr`` (pair of blocking receives)
    two receives of one actor of which at least one is *blocking*, with no blocking receive of
    that actor between them. In the paper's Scala actors a blocking receive is one the actor
    waits in (a reply it blocked for). Our actors never block: a receive is blocking when it is
    the *reply to a request the receiver made*. Requests and replies are told apart along the
    chains of handlers: a message an actor sends to the actor whose request it is handling
    (directly, or by way of replies to its own requests) is a reply; any other is a request.
    So a client's answer, a replica's acknowledgement and an instance's ``done`` or ``ready``
    are blocking; the request that starts a chain is not.

Goals are found as schedules run, as Bita's algorithm 1 finds them in a feasible schedule: two
receives ``p`` before ``q`` of one actor that the criterion relates give the goals ``(p, q)``
and ``(q, p)`` when ``q``'s message was not caused by ``p`` (``p`` is not in the causal past of
the send of ``q``: happens-before along deliveries and sends, as vector clocks; on a FIFO
network two messages of one channel also keep their order). Pairs that must happen in one order
give no goal (Bita's must-happen-before). A goal is *covered* once a schedule takes it (the
criterion relating the pair there too); the coverage reported is covered / goals found
(:class:`~checker.explore.harness.Coverage`).

The search (:func:`bita`): the first schedule is a seeded random walk. Then, while a goal
``(q, p)`` found uncovered is left, one schedule aims at it (Bita's algorithm 2): the prefix of
the schedule that found it up to ``p``, the events between ``p`` and ``q`` that ``q``'s message
depends on, ``q``, ``p``, then the rest of that schedule in its order. A planned event is taken
at the first step where it is enabled (the earliest such in the plan); where none is, the step
is random (seeded), and once the plan is spent the walk goes on at random to the end. When no uncovered goal is
left, seeded random walks look for new receives (and so new goals) until the budget is spent.
Every schedule is a real one from the initial state, so what it shows stands (as for ``random``:
invariants, ``always`` and ``eventually`` counterexamples, ``sometimes`` witnesses); it is a
bug-finding heuristic, never a proof. Everything is a function of the protocol and the seed.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence
from typing import NamedTuple

from checker.actors import Envelope, Event, Outcome, SystemState
from checker.explore.harness import Coverage, ExploreError, Run
from checker.explore.walks import _walk

__all__ = ["CRITERIA", "DEFAULT_CRITERION", "GoalTracker", "bita", "check_criterion", "reordered"]

CRITERIA = ("pr", "pcr", "pbr")
DEFAULT_CRITERION = "pr"

Goal = tuple[Event, Event]  # (the receive first, the receive then), at one actor


def check_criterion(criterion: object) -> str:
    """``criterion`` if it is one of :data:`CRITERIA`; ExploreError naming it otherwise."""
    if not isinstance(criterion, str) or criterion not in CRITERIA:
        raise ExploreError(f"bita criterion must be one of {', '.join(CRITERIA)}, not {criterion!r}")
    return criterion


class Receive(NamedTuple):
    """One receive of a schedule: its step index, its name (a ``deliver`` event), the causal
    past of its message's send (a bit set over step indices) and whether it is blocking."""

    step: int
    label: Event
    past: int
    blocking: bool


class _Causality:
    """Happens-before and request/reply chains along one schedule (see the module docstring).

    Each message copy in flight carries the clock of its send (a bit set of the steps in its
    causal past) and its request chain (the actors waiting for a reply, the last one on top)."""

    def __init__(self, start: Outcome) -> None:
        self.in_flight: dict[Envelope, deque[tuple[int, tuple[str, ...]]]] = {}
        self.clock: dict[str, int] = {}
        for env in start.sent:
            self._send(env, 0, ())
        self._discard(start.ignored)

    def _send(self, env: Envelope, clock: int, context: tuple[str, ...]) -> None:
        """A message sent in a handler whose request chain is ``context``: a reply when it goes
        to the actor on top of the chain, else a request (the sender goes on top)."""
        chain = context if context and context[-1] == env.dst else (*context, env.src)
        self.in_flight.setdefault(env, deque()).append((clock, chain))

    def _take(self, env: Envelope, keep: bool = False) -> tuple[int, tuple[str, ...]]:
        copies = self.in_flight.get(env)
        if not copies:
            return 0, ()
        return copies[0] if keep else copies.popleft()

    def _discard(self, envs: Sequence[Envelope]) -> None:
        for env in envs:
            self._take(env)

    def step(self, k: int, ev: Event, out: Outcome) -> Receive | None:
        """Account for step ``k`` (``ev``, which gave ``out``); the receive it is, if any."""
        received: Receive | None = None
        context: tuple[str, ...] = ()
        clock = self.clock.get(ev.dst, 0) | (1 << k)
        if ev.kind in ("deliver", "duplicate", "drop"):
            env = Envelope(ev.src, ev.dst, ev.msg)  # type: ignore[arg-type]
            past, chain = self._take(env, keep=ev.kind == "duplicate")
            if ev.kind == "drop":
                return None
            blocking = bool(chain) and chain[-1] == ev.dst
            context = chain[:-1] if blocking else chain
            clock |= past
            received = Receive(k, Event("deliver", ev.src, ev.dst, ev.msg), past, blocking)
        self.clock[ev.dst] = clock
        for env in out.sent:
            self._send(env, clock, context)
        self._discard(out.ignored)
        return received


class GoalTracker:
    """Bita's ordering goals over a whole exploration (one per run; ``run.coverage``).

    :meth:`begin` starts a schedule, :meth:`receive` feeds each of its receives (with the
    schedule's path, whose events it keeps for the goals it finds uncovered), :meth:`next_target`
    gives the next uncovered goal to aim at, :meth:`result` the :class:`Coverage` so far."""

    def __init__(self, criterion: str, fifo: bool) -> None:
        self.criterion = check_criterion(criterion)
        self.fifo = fifo
        self.goals: dict[Goal, None] = {}  # (an ordered set: the order they were found)
        self.taken: set[Goal] = set()  # every related pair some schedule took, goal or not
        self.covered = 0
        self.aimed = 0
        self.reached = 0
        self._queued: set[Goal] = set()
        self._targets: deque[tuple[Goal, list[Event], int, int, int]] = deque()
        self._by_actor: dict[str, list[Receive]] = {}

    def begin(self) -> None:
        """A new schedule starts (its receives are paired only among themselves)."""
        self._by_actor = {}

    def receive(self, rec: Receive, path: list[Event]) -> None:
        """Pair ``rec`` with the earlier receives of its actor in this schedule (``path``: the
        schedule's events, still growing; kept by reference for the goals it finds)."""
        prior = self._by_actor.setdefault(rec.label.dst, [])
        for p in self._related(prior, rec):
            if p.label == rec.label:
                continue
            self._take((p.label, rec.label))
            if not self._swappable(p, rec):
                continue
            self._add_goal((p.label, rec.label))
            swapped = (rec.label, p.label)
            self._add_goal(swapped)
            if swapped not in self.taken and swapped not in self._queued:
                self._queued.add(swapped)
                self._targets.append((swapped, path, p.step, rec.step, rec.past))
        prior.append(rec)

    def _related(self, prior: list[Receive], rec: Receive) -> list[Receive]:
        """The earlier receives of one actor that the criterion pairs with ``rec``."""
        if self.criterion == "pr":
            return prior
        if self.criterion == "pcr":
            return prior[-1:]
        last = next((i for i in range(len(prior) - 1, -1, -1) if prior[i].blocking), None)
        if last is None:
            return prior if rec.blocking else []
        return prior[last:] if rec.blocking else [prior[last]]

    def _swappable(self, p: Receive, q: Receive) -> bool:
        """Whether ``q`` could have been received before ``p``: ``q``'s message was not caused
        by ``p`` (nor, on a FIFO network, sent after ``p``'s on the same channel)."""
        if (q.past >> p.step) & 1:
            return False
        return not (self.fifo and p.label.src == q.label.src)

    def _take(self, goal: Goal) -> None:
        if goal not in self.taken:
            self.taken.add(goal)
            if goal in self.goals:
                self.covered += 1

    def _add_goal(self, goal: Goal) -> None:
        if goal not in self.goals:
            self.goals[goal] = None
            if goal in self.taken:
                self.covered += 1

    def next_target(self) -> tuple[Goal, list[Event]] | None:
        """The oldest goal found uncovered that is still uncovered, with the plan that aims at
        it (:func:`reordered`); None when none is left."""
        while self._targets:
            goal, path, p, q, past = self._targets.popleft()
            if goal not in self.taken:
                self.aimed += 1
                return goal, reordered(path, p, q, past)
        return None

    def hit(self, goal: Goal) -> None:
        """The schedule aimed at ``goal`` has ended: count it reached when it took the goal."""
        if goal in self.taken:
            self.reached += 1

    def result(self) -> Coverage:
        """The coverage so far (the covered goals described, in the order they were found)."""
        covered = tuple((a.describe(), b.describe()) for a, b in self.goals if (a, b) in self.taken)
        return Coverage(self.criterion, len(self.goals), self.covered, self.aimed, self.reached, covered)


def reordered(path: Sequence[Event], p: int, q: int, past: int) -> list[Event]:
    """Bita's schedule for receiving ``path[q]`` before ``path[p]`` (``p < q``, one receiver,
    ``p`` not in ``past``, the causal past of ``q``'s message): ``path[:p]``, the events between
    ``p`` and ``q`` that ``past`` holds, ``path[q]``, ``path[p]``, then the rest in order."""
    between = [k for k in range(p + 1, q) if (past >> k) & 1]
    rest = [k for k in range(p + 1, len(path)) if k != q and not (past >> k) & 1]
    return [*path[:p], *(path[k] for k in between), path[q], path[p], *(path[k] for k in rest)]


def _next_event(enabled: list[Event], plan: list[Event], rng: random.Random) -> Event:
    """The earliest event of ``plan`` enabled now (removed from the plan), else a random one
    (the plan is kept: what it holds may become enabled later)."""
    if plan:
        now = set(enabled)
        for i, ev in enumerate(plan):
            if ev in now:
                del plan[i]
                return ev
    return enabled[rng.randrange(len(enabled))]


def _guided_walk(run: Run, start: Outcome, plan: list[Event], rng: random.Random,
                 tracker: GoalTracker) -> tuple[SystemState, list[Event]]:
    """One schedule from the initial state following ``plan`` (see :func:`_next_event`), then
    at random to its end (or the depth bound), visiting every state and feeding every receive
    to ``tracker`` (:func:`~checker.explore.walks._walk`). Returns the last state and the path
    (the caller finishes the schedule)."""
    system = run.system
    causality = _Causality(start)
    tracker.begin()

    def choose(state: SystemState) -> Event | None:
        enabled = system.enabled(state)
        return _next_event(enabled, plan, rng) if enabled else None

    def stepped(ev: Event, out: Outcome, path: list[Event]) -> None:
        received = causality.step(len(path) - 1, ev, out)
        if received is not None:
            tracker.receive(received, path)

    return _walk(run, start.state, choose, stepped)


def bita(run: Run, seed: int, criterion: str = DEFAULT_CRITERION) -> None:
    """``bita``: coverage-guided schedules (see the module docstring) until the budget is
    spent; the goals found and covered are in ``run.coverage`` (a :class:`GoalTracker`)."""
    system = run.system
    rng = random.Random(seed)
    tracker = run.coverage = GoalTracker(criterion, system.fifo)
    start = system.start()
    while True:
        target = tracker.next_target()
        plan = [] if target is None else target[1]
        state, path = _guided_walk(run, start, plan, rng, tracker)
        if target is not None:
            tracker.hit(target[0])
        run.finish(state, path, system.terminal(state))
