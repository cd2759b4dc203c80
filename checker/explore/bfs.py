"""Breadth-first search (Stateright's BFS checker): the first counterexample is a shortest one.

``bfs`` explores the state graph level by level from the initial state, pruning states (orbits,
with symmetry) already seen, like plain stateful ``dfs`` (no sleep sets): it visits the same
states, takes the same transitions and counts the same schedules (a schedule ends at a terminal
state, at the depth bound, or where it joins a node already seen). Everything a step can show
is checked when the step is taken (the invariants and state properties of the new state, the
history of a step that records a return, the end of a complete schedule), and steps are taken in
order of depth, so the first violation found is on a path of the least depth that shows it: the
counterexample needs no shrinking, and its length is its depth.

Completeness: every reachable state is visited, so ``bfs`` judges ``always`` and ``sometimes``
properties completely, and invariants and linearizability as ``dfs`` does. It also judges
``eventually`` properties completely: a node of the search is a state *and* the set of
eventually properties that have not held yet on the path to it (:class:`PropertyTracker`), and
the visited set holds nodes, so a state reached again with a different pending set is explored
again (pruning by the state alone could hide a complete schedule on which a property never
held, where the first path to the state had already seen it hold).
"""

from __future__ import annotations

from collections import deque

from checker.actors import Event, SystemState
from checker.explore.harness import Run

__all__ = ["bfs"]

_EMPTY: frozenset = frozenset()
Node = tuple[SystemState, frozenset, tuple[Event, ...], list[Event]]  # state, pending, path, enabled


def bfs(run: Run) -> None:
    """``bfs``: breadth-first search over nodes (state, pending eventually properties); see the
    module docstring. Raises Stop (from the run) at the first violation or a spent budget."""
    system, props = run.system, run.props
    init = system.initial()
    key = run.key(init)
    run.visit(init, (), key)
    pending = props.start(init) if props.eventually else _EMPTY
    evs = system.enabled(init)
    if not evs:
        _complete(run, init, pending, ())
        return
    seen: set = {(key, pending)}
    holding: dict = {}  # state key -> the eventually properties that hold there (memo)
    queue: deque[Node] = deque([(init, pending, (), evs)])
    while queue:
        state, pending, path, evs = queue.popleft()
        for ev in evs:
            child = _step(run, state, pending, path, ev, seen, holding)
            if child is not None:
                queue.append(child)


def _step(run: Run, state: SystemState, pending: frozenset, path: tuple[Event, ...], ev: Event,
          seen: set, holding: dict) -> Node | None:
    """Take ``ev`` from the node ``(state, pending)`` reached by ``path``; check what the step
    shows; return the child node to expand later, or None where its schedule ends here (a node
    already ``seen``, a terminal state, the depth bound). ``holding``: state key -> the
    eventually properties holding there (filled as needed)."""
    system = run.system
    out = system.step(state, ev)
    run.transitions += 1
    run.tick()
    child, cpath = out.state, (*path, ev)
    key = run.key(child)
    new_state = run.visit(child, cpath, key)
    cpending = pending
    if pending:
        held = holding.get(key)
        if held is None:
            held = holding[key] = run.props.holding(child)
        cpending = pending - held if held else pending
    if run.props.eventually:  # nodes are (state, pending): a state seen before may be a new node
        node = (key, cpending)
        new_node = node not in seen
        if new_node:
            seen.add(node)
    else:
        new_node = new_state
    if not new_node:
        run.schedules += 1  # joins a node already explored
        run.check_budget()
        return None
    evs = system.enabled(child)
    if not evs:
        _complete(run, child, cpending, cpath)
        return None
    if new_state and any(record[1] == "return" for record in out.records):
        run.judge_prefix(child, cpath)  # (a call alone never makes a legal history illegal)
    if run.depth is not None and len(cpath) >= run.depth:
        run.finish(child, cpath, False)
        return None
    return child, cpending, cpath, evs


def _complete(run: Run, state: SystemState, pending: frozenset, path: tuple[Event, ...]) -> None:
    """A complete schedule ends at ``state`` (nothing enabled): its pending eventually
    properties are counterexamples, then its history is judged."""
    if pending:
        run.end_path(pending, path)
    run.finish(state, path, True)
