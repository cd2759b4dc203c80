"""Tree searches: stateful DFS, stateless exhaustive search, delay bounding."""

from __future__ import annotations

from typing import Any, Callable

from checker.actors import Envelope, Event, System, SystemState
from checker.explore.harness import Run

__all__ = ["after", "delay_bounded", "dfs", "exhaustive", "oldest_first"]


def _tree(run: Run, choices: Callable[[SystemState, Any], list], root_aux: Any,
          advance: Callable[[Any, Event, Any, int], Any], *, prune: bool = False) -> None:
    """Depth-first search over schedules. ``choices(state, aux)`` lists the events to try from a
    state; ``advance(aux, event, outcome, choice index)`` gives the child's aux.

    With ``prune`` (stateful DFS) a step into a state already seen (with symmetry: a state of an
    orbit already seen) ends its schedule there, and a schedule ends terminal exactly where no
    event is enabled; without it (stateless) every path is followed, and a schedule ends terminal
    where no message can be delivered (:meth:`System.terminal`)."""
    system = run.system
    step, tick, visit = system.step, run.tick, run.visit  # locals: the loop below is the hot path

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
        out = step(state, ev)
        run.transitions += 1
        tick()
        path.append(ev)
        if not visit(out.state, path) and prune:
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


def exhaustive(run: Run) -> None:
    """``exhaustive``: every event enabled in every state, every schedule (DS2's exhaustive)."""
    system = run.system
    _tree(run, lambda s, aux: system.enabled(s), None, lambda aux, ev, out, i: None)


def dfs(run: Run) -> None:
    """``dfs``: stateful depth-first search, pruning states (orbits) already seen."""
    system = run.system
    _tree(run, lambda s, aux: system.enabled(s), None, lambda aux, ev, out, i: None, prune=True)


def after(system: System, order: tuple[Envelope, ...], out) -> tuple[Envelope, ...]:
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


def oldest_first(system: System, state: SystemState, order: tuple[Envelope, ...]) -> list[Event]:
    """The deliverable messages of ``state``, oldest first (one per distinct message)."""
    deliverable = set(system.deliverable(state))
    seen: list[Envelope] = []
    for env in order:
        if env in deliverable and env not in seen:
            seen.append(env)
    return [Event("deliver", e.src, e.dst, e.msg) for e in seen]


def delay_bounded(run: Run, bound: int) -> None:
    """``delay-bounded``: every schedule within ``bound`` delays of oldest-message-first."""
    system = run.system

    def choices(state, aux):
        order, used = aux
        evs = oldest_first(system, state, order)
        allowed = bound - used + 1
        if len(evs) > allowed:
            run.delay_cut = True
            evs = evs[:allowed]
        return evs

    def advance(aux, ev, out, idx):
        order, used = aux
        return after(system, order, out), used + idx

    _tree(run, choices, (after(system, (), system.start()), 0), advance)
