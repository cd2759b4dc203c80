"""Sampling strategies: seeded random walks and PCT (incomplete: never OK).

Every walk is a real schedule from the initial state, so what a walk shows stands: a broken
invariant or ``always`` property, a ``sometimes`` witness, and an ``eventually`` counterexample
(a walk that ends where nothing is enabled, on which the property never held). They judge no
property kind completely (``held`` and ``never reached`` stay unknown)."""

from __future__ import annotations

import random
from collections.abc import Callable

from checker.actors import Event, Outcome, System, SystemState
from checker.explore.harness import Run
from checker.explore.tree import after, oldest_first

__all__ = ["pct", "random_walks"]


def _walk(run: Run, init: SystemState, choose: Callable[[SystemState], Event | None],
          stepped: Callable[[Event, Outcome, list[Event]], None] | None = None) -> tuple[SystemState, list[Event]]:
    """One schedule from ``init``, visiting every state: ``choose(state)`` gives the next event
    (None: nothing is enabled), ``stepped(event, outcome, path)`` sees each step once it is
    counted and on ``path`` (``path[-1]`` is ``event``), before its state is visited. Stops there
    or at the depth bound; returns the last state and the path (the caller finishes the
    schedule). A walk that ends where no event is enabled with an ``eventually`` property that
    never held on it is that property's counterexample."""
    system, props = run.system, run.props
    state = init
    run.visit(state, ())
    pending = props.start(state) if props.eventually else frozenset()
    path: list[Event] = []
    while run.depth is None or len(path) < run.depth:
        ev = choose(state)
        if ev is None:
            break
        out = system.step(state, ev)
        state = out.state
        run.transitions += 1
        run.tick()
        path.append(ev)
        if stepped is not None:
            stepped(ev, out, path)
        run.visit(state, path)
        pending = props.advance(pending, state)
    if pending and not system.enabled(state):
        run.end_path(pending, path)
    return state, path


def random_walks(run: Run, seed: int) -> None:
    """``random``: seeded random walks, each step uniform among the enabled events."""
    system = run.system
    rng = random.Random(seed)
    init = system.initial()

    def choose(state: SystemState) -> Event | None:
        evs = system.enabled(state)
        return evs[rng.randrange(len(evs))] if evs else None

    while True:
        state, path = _walk(run, init, choose)
        run.finish(state, path, system.terminal(state))


def pct(run: Run, seed: int, bug_depth: int) -> None:
    """PCT runs until the budget is spent; sets ``run.pct_bound``.

    The "threads" are channels (sender, receiver): each gets a random priority when its first
    message appears; at every step the highest-priority channel with a message delivers its
    oldest one; at ``bug_depth - 1`` random steps the running channel drops below all others.
    """
    system = run.system
    rng = random.Random(seed)
    start = system.start()
    init = start.state
    start_order = after(system, (), start)
    k = run.depth if run.depth is not None else _default_length(run, system, start)
    channels: set = set()
    d = bug_depth
    # the walk in progress: messages in flight (oldest first), channel priorities, change points
    order, priority, step_no = start_order, {}, 0
    changes: list[int] = []

    def choose(state: SystemState) -> Event | None:
        nonlocal step_no
        evs = oldest_first(system, state, order)
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

    def stepped(ev: Event, out: Outcome, path: list[Event]) -> None:
        nonlocal order
        order = after(system, order, out)

    while True:
        order, priority, step_no = start_order, {}, 0
        changes = sorted(rng.sample(range(1, k + 1), min(d - 1, k)))
        state, path = _walk(run, init, choose, stepped)
        run.pct_bound = 1.0 / (max(1, len(channels)) * k ** (d - 1))
        run.finish(state, path, system.terminal(state))
        if run.depth is None and len(path) > k:
            k = len(path)


def _default_length(run: Run, system: System, start) -> int:
    """Length of the oldest-first schedule: PCT's estimate of the steps k (updated as runs go)."""
    state, order, steps = start.state, after(system, (), start), 0
    while steps < 100_000:
        evs = oldest_first(system, state, order)
        if not evs:
            break
        out = system.step(state, evs[0])
        order = after(system, order, out)
        state = out.state
        steps += 1
        run.tick()
    return max(1, steps)
