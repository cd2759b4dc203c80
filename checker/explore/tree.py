"""Tree searches: stateful DFS, stateless exhaustive search, delay bounding."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from checker.actors import Envelope, Event, System, SystemState
from checker.explore.commute import MEMO_LIMIT, Commutations
from checker.explore.dpor import check_effects, dependent, event_facts
from checker.explore.harness import Run

__all__ = ["after", "delay_bounded", "dfs", "exhaustive", "oldest_first", "sleep_dfs"]


def _tree(run: Run, choices: Callable[[SystemState, Any], list], root_aux: Any,
          advance: Callable[[Any, Event, Any, int], Any], *, prune: bool = False,
          ends: Callable[[Any, list], None] | None = None) -> None:
    """Depth-first search over schedules. ``choices(state, aux)`` lists the events to try from a
    state; ``advance(aux, event, outcome, choice index)`` gives the child's aux; ``ends(aux,
    path)`` (optional) is told of every schedule that ends where ``choices`` is empty, before
    :meth:`Run.finish` judges it.

    With ``prune`` (stateful DFS) a step into a state already seen (with symmetry: a state of an
    orbit already seen) ends its schedule there, and a schedule ends terminal exactly where no
    event is enabled; without it (stateless) every path is followed, and a schedule ends terminal
    where no message can be delivered (:meth:`System.terminal`)."""
    system = run.system
    step, tick, visit = system.step, run.tick, run.visit  # locals: the loop below is the hot path

    def terminal(state: SystemState, evs: list) -> bool:
        return not evs if prune else system.terminal(state)

    def take(state: SystemState, aux: Any, evs: list, idx: int, path: list) -> tuple | None:
        ev = evs[idx]
        out = step(state, ev)
        run.transitions += 1
        tick()
        path.append(ev)
        if not visit(out.state, path) and prune:
            run.schedules += 1  # joins a state already explored
            run.check_budget()
            return None
        child_aux = advance(aux, ev, out, idx)
        nevs = choices(out.state, child_aux)
        if not nevs or (run.depth is not None and len(path) >= run.depth):
            if ends is not None and not nevs:
                ends(child_aux, path)
            run.finish(out.state, path, terminal(out.state, nevs))
            return None
        return out.state, child_aux, nevs

    init = system.initial()
    run.visit(init, ())
    evs = choices(init, root_aux)
    if not evs:
        if ends is not None:
            ends(root_aux, [])
        run.finish(init, [], terminal(init, evs))
        return
    _walk([init, root_aux, evs, 0], take)


def _walk(root: list, take: Callable[[SystemState, Any, list, int, list], tuple | None]) -> None:
    """The depth-first loop of the tree searches, over frames ``[state, aux, events, next
    index]`` from ``root``. ``take(state, aux, events, idx, path)`` takes ``events[idx]`` from
    ``state`` and appends the event to ``path`` (the events from the root); it returns the
    child's ``(state, aux, events)`` to descend into, or None where the schedule ends there
    (the walk then drops the event from ``path``)."""
    path: list[Event] = []
    stack: list[list] = [root]
    while stack:
        frame = stack[-1]
        state, aux, evs, idx = frame
        if idx == len(evs):
            stack.pop()
            if path:
                path.pop()
            continue
        frame[3] = idx + 1
        child = take(state, aux, evs, idx, path)
        if child is None:
            path.pop()
        else:
            stack.append([*child, 0])


def exhaustive(run: Run) -> None:
    """``exhaustive``: every event enabled in every state, every schedule (DS2's exhaustive).

    Complete for every property kind: it visits every reachable state (``always``,
    ``sometimes``) and follows every path, carrying the set of ``eventually`` properties that
    have not held yet on it (its aux), so a schedule that ends where nothing is enabled with
    one still pending is its counterexample."""
    system, props = run.system, run.props
    if not props.eventually:
        _tree(run, lambda s, aux: system.enabled(s), None, lambda aux, ev, out, i: None)
        return
    _tree(run, lambda s, aux: system.enabled(s), props.start(system.initial()),
          lambda aux, ev, out, i: props.advance(aux, out.state),
          ends=lambda aux, path: run.end_path(aux, path) if aux else None)


def dfs(run: Run) -> None:
    """``dfs``: stateful depth-first search, pruning states (orbits) already seen; with sleep
    sets (:attr:`Reductions.sleep_sets`, no depth bound) see :func:`sleep_dfs`.

    Complete for ``always`` and ``sometimes`` properties (it visits every reachable state, with
    or without sleep sets), not for ``eventually``: a state it prunes was reached before by
    another path, on which the property may already have held (use ``bfs``, which keeps the
    pending properties in its visited key, or ``exhaustive``)."""
    if run.reductions.sleep_sets and run.depth is None:
        sleep_dfs(run)
        return
    system = run.system
    _tree(run, lambda s, aux: system.enabled(s), None, lambda aux, ev, out, i: None, prune=True)


def sleep_dfs(run: Run) -> None:
    """Stateful DFS with sleep sets and Godefroid's state-caching correction ("Partial-order
    methods for the verification of concurrent systems", LNCS 1032): it visits exactly the
    states (orbits) plain stateful DFS visits, so it finds the same terminal histories and
    invariant violations, and skips most transitions into states already seen.

    After exploring ``t`` from a state, ``t`` falls asleep there; a child keeps asleep the
    events that commute with the step taken, in the state it was taken from: deliveries to
    different actors unless one may invoke and the other return (the finer client relation of
    :func:`~checker.explore.dpor.delivery_facts`, never the key-aware one), and, on an
    unordered network, deliveries to the same actor that commute there
    (:func:`~checker.explore.commute.local_commutation`, unless :attr:`Reductions.local_commutation`
    is off; a conditional independence: Godefroid and Pirottin, CAV 1993); faults commute with
    nothing.
    Every visited state keeps the intersection of the sleep sets it was reached with (with
    symmetry: renamed into its orbit representative's names); reached again with an event awake
    that was asleep at every earlier visit, the search explores that event from it. Every
    reachable state is then visited (a minimal unvisited path from some visit leads, through
    the events asleep or explored earlier there, to a cycle of strictly earlier explorations).

    A schedule ends at a terminal state, or where the search has nothing new to explore (a
    state already seen, or every enabled event asleep)."""
    system = run.system
    stored: dict = {}  # visited state (representative) -> the intersection of its sleep sets, named
    take = _sleep_take(run, stored)
    init = system.initial()
    key = run.key(init)
    run.visit(init, (), key)
    stored[key] = _EMPTY
    evs = system.enabled_event_ids(init)
    if not evs:
        run.finish(init, [], True)
        return
    _walk([init, _EMPTY, evs, 0], take)


_EMPTY: frozenset = frozenset()


def _sleep_take(run: Run, stored: dict) -> Callable[[SystemState, frozenset, list, int, list], tuple | None]:
    """:func:`sleep_dfs`'s step for :func:`_walk`: ``take(state, sleep, event ids, idx, path)``
    takes event ``ids[idx]`` from ``state`` (asleep there: ``sleep``) and returns the child's
    ``(state, sleep set, event ids to explore)``, or None where the schedule ends. ``stored``:
    visited state (representative) -> the intersection of the sleep sets it was reached with
    (in the representative's names); updated as the search goes."""
    system = run.system
    step_id, tick, seen, visit = system.step_id, run.tick, run.seen, run.visit  # (the hot path)
    canonical = system.canonical if run.symmetric else None
    enabled_ids, event_of, renamed = system.enabled_event_ids, system.event_of, system.renamed_event_id
    fact, asleep_after = _sleep_rule(run)
    named = _sleep_namer(system)
    empty = _EMPTY

    def take(state: SystemState, sleep: frozenset, evs: list, idx: int, path: list) -> tuple | None:
        ti = evs[idx]
        ev = event_of(ti)
        out = step_id(state, ti)
        run.transitions += 1
        tick()
        if out.records:
            check_effects(fact(ti), ev, out.records)
        path.append(ev)
        child_sleep = asleep_after(state, (*sleep, *evs[:idx]), ti) if (sleep or idx) else empty
        child = out.state
        key, mapping = canonical(child) if canonical else (child, None)
        if key not in seen:
            stored[key] = named(child_sleep, mapping)
            visit(child, path, key)
            todo = enabled_ids(child)
            if not todo:
                run.finish(child, path, True)
                return None
            if child_sleep:
                todo = [i for i in todo if i not in child_sleep]
        else:
            old = stored.get(key, empty)  # (a state seen by an earlier search: fully explored)
            todo = []
            if old:
                now = named(child_sleep, mapping)
                extra = old - now
                if extra:
                    stored[key] = old & now
                    todo = [i for i in enabled_ids(child) if renamed(i, mapping) in extra]
        if not todo:  # joins a state already explored, or every enabled event is asleep
            run.schedules += 1
            run.check_budget()
            return None
        return child, child_sleep, todo

    return take


def _sleep_rule(run: Run) -> tuple[Callable[[int], Any], Callable[[SystemState, Any, int], frozenset]]:
    """:func:`sleep_dfs`'s sleep-set propagation, as ``(fact, asleep_after)``: ``fact(i)``, the
    static dependency facts of event id ``i`` (memoised); ``asleep_after(state, candidates,
    ti)``, the candidates (event ids asleep or explored at ``state``) that commute with event
    ``ti`` there: statically (the finer client relation), or by local commutation where
    :attr:`Reductions.local_commutation` is on and the network unordered; a fault commutes with
    nothing."""
    system = run.system
    coarse = run.reductions.coarse_clients
    event_of = system.event_of
    local_ok = run.reductions.local_commutation and not system.fifo
    facts: dict[int, Any] = {}  # event id -> its static dependency facts
    commutes = Commutations(system)
    empty = _EMPTY

    def fact(i: int):
        t = facts.get(i)
        if t is None:
            t = facts[i] = event_facts(system, event_of(i), False)
        return t

    def asleep_after(state: SystemState, candidates, ti: int) -> frozenset:
        """The candidates (events asleep or explored at ``state``) that commute with ``ti`` there."""
        tf = fact(ti)
        if tf.fault:
            return empty
        keep = []
        for u in candidates:
            uf = fact(u)
            if not dependent(uf, tf, False, coarse):
                keep.append(u)
            elif local_ok and uf.dst == tf.dst and not uf.fault:
                a, b = (u, ti) if u < ti else (ti, u)
                if commutes.in_state(state, a, b, event_of(a), event_of(b), True):
                    keep.append(u)
        return frozenset(keep)

    return fact, asleep_after


def _sleep_namer(system: System) -> Callable[[frozenset, Any], frozenset]:
    """``named(sleep, mapping)``: the sleep set ``sleep`` (event ids) renamed by ``mapping`` (one
    of the system's renamings; None or empty for none), memoised (at most :data:`MEMO_LIMIT`
    entries, cleared when full)."""
    renamed = system.renamed_event_id
    names: dict = {}  # (sleep set, id of a renaming: one of the system's few) -> renamed

    def named(sleep: frozenset, mapping: Any) -> frozenset:
        if not mapping or not sleep:
            return sleep
        key = (sleep, id(mapping))
        out = names.get(key)
        if out is None:
            if len(names) > MEMO_LIMIT:
                names.clear()
            out = names[key] = frozenset([renamed(i, mapping) for i in sleep])
        return out

    return named


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
    """``delay-bounded``: every schedule within ``bound`` delays of oldest-message-first. It
    visits only the states of those schedules, so it judges no property kind completely (what
    it finds stands; the rest is reported unknown)."""
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
