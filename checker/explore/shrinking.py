"""Shrinking a violating schedule: shortest violating prefix, then delta debugging (ddmin)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from checker.actors import ActorError, Event
from checker.explore.harness import ExploreError, Found
from checker.explore.properties import ALWAYS, EVENTUALLY
from checker.explore.replay import replay
from checker.linearizability import check

__all__ = ["shrink"]


def _violates(protocol, events: Sequence[Event], target: Found, timeout: float | None) -> int | None:
    """Length of the shortest prefix of ``events`` that shows ``target``'s violation, or None
    (also None when ``events`` is not a valid schedule)."""
    if target.kind in (ALWAYS, EVENTUALLY):
        return _property_violates(protocol, events, target)
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


def _property_violates(protocol, events: Sequence[Event], target: Found) -> int | None:
    """:func:`_violates` for a property's counterexample: an ``always`` property's, the
    shortest prefix ending in a state where it does not hold; an ``eventually`` property's, all
    of ``events`` when they form a complete schedule (nothing enabled at its end) on which the
    property never held. None otherwise (also for an invalid schedule)."""
    system = protocol.system
    prop = next((p for p in protocol.properties if p.name == target.name and p.expectation == target.kind), None)
    if prop is None:
        return None
    state = system.initial()
    always = target.kind == ALWAYS
    for i in range(len(events) + 1):
        if i:
            try:
                state = system.step(state, events[i - 1]).state
            except ActorError:
                return None
        if prop.holds(system, state) != always:  # always: broken here; eventually: held here
            return i if always else None
    return None if always or system.enabled(state) else len(events)


def shrink(protocol, schedule: Sequence[Event], target: Found | None = None, *,
           timeout: float | None = 10.0, max_tests: int = 3000,
           deadline: float | None = None) -> tuple[Event, ...]:
    """A short schedule that still shows the violation of ``schedule`` (same invariant, or a
    non-linearizable history): the shortest violating prefix, then delta debugging (ddmin) over
    the deliveries, keeping only valid schedules. ``target`` defaults to the first violation
    that replaying ``schedule`` shows. ``deadline`` (a ``time.perf_counter()`` value): stop
    shrinking then and return the shortest violating schedule found so far."""
    events = tuple(schedule)
    if target is None:
        rr = replay(protocol, events)
        if rr.violation is None:
            raise ExploreError("the schedule shows no violation; nothing to shrink")
        target = Found(rr.violation[0], rr.violation[1], rr.violation[2], events, quiescent=rr.violation[3])
    tests = [0]
    cache: dict[tuple, int | None] = {}

    def test(evs: tuple) -> int | None:
        if evs in cache:
            return cache[evs]
        if deadline is not None and time.perf_counter() >= deadline:
            tests[0] = max_tests  # out of time: no more tests
            return None
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
        while lo < hi and tests[0] < max_tests:
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
