"""A state-space browser's logic (Stateright's Explorer, as pure functions): walk a protocol's
state space one event at a time.

A *path* is a tuple of event indices: from the initial state, index ``k`` picks the ``k``-th
event of :meth:`~checker.actors.System.enabled` (deliveries first, in a deterministic order,
then the faults the protocol's budgets still allow). Since enabledness and stepping are pure and
deterministic, the path alone names a state: a page keeps just the path (in its session and its
URL, as text: :func:`path_text`, :func:`parse_path`) and rebuilds everything from it.

:func:`view` replays a path and describes where it leads (:class:`StateView`): each actor's
state one field per row (:class:`ActorView`, values in full, never cut), the messages in flight
per channel (:class:`Channel`), the enabled events with readable labels (:class:`Choice`), and
how every invariant, property and the linearizability of the history so far stand there
(:class:`Judgement`). :func:`forward` and :func:`back` extend and shorten a path;
:func:`path_of_schedule` turns a schedule (an explorer counterexample's
:attr:`~checker.explore.Violation.schedule`, or any prefix of it) into the path that reaches the
same state, so a counterexample can be opened at any of its steps. Bad paths and indices are an
:class:`~checker.explore.ExploreError` naming the step and the value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from checker.actors import Event, SystemState
from checker.explore.harness import ExploreError
from checker.explore.properties import ALWAYS, EVENTUALLY, SOMETIMES, never_holds
from checker.linearizability import check
from packrat_sim import validate

__all__ = [
    "FAILS", "HOLDS", "MAX_PATH", "NOT_JUDGED", "NOT_YET", "UNKNOWN", "ActorView", "Channel", "Choice", "Judgement",
    "StateView", "back", "enabled_events", "forward", "parse_path", "path_of_schedule", "path_states", "path_text",
    "successor", "view",
]

MAX_PATH = 10_000  # steps in a path (a path comes from a URL: bound the replay it asks for)
CHECK_TIMEOUT_S = 5.0  # the linearizability check of the history so far

# how a check stands at a state (Judgement.status)
HOLDS, FAILS, NOT_YET, NOT_JUDGED, UNKNOWN = "holds", "fails", "not yet", "not judged here", "unknown"


@dataclass(frozen=True)
class Choice:
    """An event enabled in a state: its ``index`` in the path, the ``event`` and its ``label``."""

    index: int
    event: Event
    label: str


@dataclass(frozen=True)
class ActorView:
    """One actor's state as rows: ``fields`` are ``(field, value text)`` pairs (a dataclass state
    by field name, a tuple state by position ``[i]``, anything else as one ``state`` row);
    ``changed``: the fields the path's last event changed; ``kind``: the actor's class name."""

    name: str
    kind: str
    crashed: bool
    fields: tuple[tuple[str, str], ...]
    changed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Channel:
    """The messages in flight from ``src`` to ``dst`` (one entry per copy; on a FIFO network in
    the order they will be delivered)."""

    src: str
    dst: str
    messages: tuple[str, ...]


@dataclass(frozen=True)
class Judgement:
    """How one check stands at a state: ``kind`` is ``invariant``, ``quiescent invariant``,
    ``always``, ``sometimes``, ``eventually`` or ``linearizability``; ``name`` is the name the
    explorer gives it (a :class:`~checker.explore.Violation` of it has that ``name``);
    ``status`` one of :data:`HOLDS`, :data:`FAILS`, :data:`NOT_YET`, :data:`NOT_JUDGED`,
    :data:`UNKNOWN`; ``detail`` says why, in words."""

    name: str
    kind: str
    status: str
    detail: str = ""


@dataclass(frozen=True)
class StateView:
    """Where a path leads: the ``path`` and its ``events``, the ``state``, each actor
    (:class:`ActorView`), the ``network`` per channel, the ``enabled`` events, the
    ``judgements``, the history ``records`` the last event made, and whether the state is
    ``terminal`` (nothing left to deliver; fault events may still be enabled)."""

    protocol: Any
    path: tuple[int, ...]
    events: tuple[Event, ...]
    state: SystemState
    actors: tuple[ActorView, ...]
    network: tuple[Channel, ...]
    enabled: tuple[Choice, ...]
    judgements: tuple[Judgement, ...]
    records: tuple[str, ...]
    terminal: bool

    @property
    def failing(self) -> tuple[Judgement, ...]:
        """The judgements that fail at this state."""
        return tuple(j for j in self.judgements if j.status == FAILS)

    def judgement(self, name: str, kind: str | None = None) -> Judgement:
        """The judgement named ``name`` (of ``kind``, when given); ExploreError when none."""
        for j in self.judgements:
            if j.name == name and (kind is None or j.kind == kind):
                return j
        raise ExploreError(f"no check named {name!r} at this state")


# ------------------------------------------------------------------------------ paths


def path_text(path: Sequence[int]) -> str:
    """A path as text, its indices joined by ``.`` (``""`` for the initial state)."""
    return ".".join(str(int(i)) for i in path)


def parse_path(text: str) -> tuple[int, ...]:
    """The path :func:`path_text` wrote (surrounding spaces ignored); ExploreError naming the
    text when it is not dot-separated non-negative integers, or longer than :data:`MAX_PATH`."""
    if not isinstance(text, str):
        raise ExploreError(validate.message("path", "text of dot-separated event indices", text))
    text = text.strip()
    if not text:
        return ()
    parts = text.split(".")
    if len(parts) > MAX_PATH or not all(p.isascii() and p.isdigit() for p in parts):
        brief = text if len(text) <= 80 else text[:77] + "..."
        raise ExploreError(validate.message("path", f"at most {MAX_PATH} dot-separated event indices such as 0.2.1",
                                            brief))
    return tuple(int(p) for p in parts)


def enabled_events(protocol, state: SystemState) -> tuple[Choice, ...]:
    """The events enabled in ``state``, in the order a path indexes them, with labels
    (:meth:`~checker.actors.Event.describe`: ``c0 -> dispatcher: infer(0, 4)``, ``drop ...``,
    ``crash i0.0``)."""
    return tuple(Choice(i, ev, ev.describe()) for i, ev in enumerate(protocol.system.enabled(state)))


def successor(protocol, state: SystemState, index: int, step: int = 1) -> SystemState:
    """The state after the ``index``-th enabled event of ``state``; ExploreError naming the
    index (as the path's ``step``-th) when no such event is enabled."""
    events = protocol.system.enabled(state)
    if not events:
        raise ExploreError(f"step {step}: no event is enabled (the state is final), so index {index!r} leads nowhere")
    validate.integer(index, f"step {step}'s event index", low=0, high=len(events) - 1, error=ExploreError)
    return protocol.system.step(state, events[index]).state


def path_states(protocol, path: Sequence[int]) -> tuple[SystemState, ...]:
    """Every state along ``path``, the initial one first (``len(path) + 1`` states);
    ExploreError naming the first step that is not enabled or a path longer than
    :data:`MAX_PATH`."""
    if len(path) > MAX_PATH:
        raise ExploreError(f"a path has at most {MAX_PATH} steps, not {len(path)}")
    states = [protocol.system.initial()]
    for step, index in enumerate(path, 1):
        states.append(successor(protocol, states[-1], index, step))
    return tuple(states)


def forward(protocol, path: Sequence[int], index: int) -> tuple[int, ...]:
    """``path`` extended by the ``index``-th enabled event of its last state (checked)."""
    successor(protocol, path_states(protocol, path)[-1], index, len(path) + 1)
    return (*path, index)


def back(path: Sequence[int]) -> tuple[int, ...]:
    """``path`` without its last step (the initial state's path stays empty)."""
    return tuple(path[:-1])


def path_of_schedule(protocol, schedule: Iterable[Event]) -> tuple[int, ...]:
    """The path that takes the events of ``schedule`` in order (a counterexample's schedule or a
    prefix of it); ExploreError naming the first event that is not enabled where it is taken."""
    system = protocol.system
    state = system.initial()
    path = []
    for step, event in enumerate(schedule, 1):
        events = system.enabled(state)
        if event not in events:
            raise ExploreError(f"step {step} ({_describe(event)}) is not enabled in the state the schedule reaches")
        path.append(events.index(event))
        state = system.step(state, event).state
    return tuple(path)


def _describe(event: Any) -> str:
    return event.describe() if isinstance(event, Event) else repr(event)


# ----------------------------------------------------------------------------- a state


def view(protocol, path: Sequence[int], *, timeout: float | None = CHECK_TIMEOUT_S) -> StateView:
    """The :class:`StateView` of the state ``path`` leads to (see the module docstring);
    ``timeout``: seconds for the linearizability check of the history so far (UNKNOWN past
    it). ExploreError names a step of ``path`` that is not enabled."""
    path = tuple(path)
    states = path_states(protocol, path)
    system, state = protocol.system, states[-1]
    events = tuple(system.enabled(before)[i] for before, i in zip(states, path))
    records: tuple = system.step(states[-2], events[-1]).records if path else ()
    before = states[-2] if path else None
    return StateView(
        protocol=protocol,
        path=path,
        events=events,
        state=state,
        actors=tuple(actor_view(protocol, state, name, before) for name in system.names),
        network=network(protocol, state),
        enabled=enabled_events(protocol, state),
        judgements=judge(protocol, states, timeout),
        records=tuple(_record_text(r) for r in records),
        terminal=system.terminal(state),
    )


def _record_text(record: tuple) -> str:
    """A history record ``(client, "invoke"|"return", value)`` as ``c0 invoke {...}``."""
    client, what, value = record
    return f"{client} {what} {value}"


def actor_view(protocol, state: SystemState, name: str, before: SystemState | None = None) -> ActorView:
    """Actor ``name``'s state in ``state`` as rows; with ``before`` (the previous state), the
    fields that differ from there are ``changed``."""
    system = protocol.system
    actor = system.actors[system.index[name]]
    crashed = system.crashed(state, name)
    fields = _fields(system.last_state_of(state, name))
    if crashed:
        fields = (("crashed", "yes: it receives nothing until it restarts; its state at the crash:"), *fields)
    changed: tuple[str, ...] = ()
    if before is not None:
        old = dict(actor_view(protocol, before, name).fields)
        changed = tuple(f for f, text in fields if old.get(f) != text)
    return ActorView(name, type(actor).__name__, crashed, fields, changed)


def _fields(value: Any) -> tuple[tuple[str, str], ...]:
    """``(field, text)`` rows of an actor state: a dataclass by field, a named tuple by name, a
    tuple by position, anything else as one ``state`` row."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return tuple((f.name, show(getattr(value, f.name))) for f in dataclasses.fields(value))
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return tuple((f, show(v)) for f, v in zip(value._fields, value))
    if isinstance(value, tuple) and value:
        return tuple((f"[{i}]", show(v)) for i, v in enumerate(value))
    return (("state", show(value)),)


def show(value: Any, top: bool = True) -> str:
    """A value in full as a person reads it: a string as itself at the top (quoted inside
    containers), sets sorted as ``{a, b}``, tuples as ``(a, b)``, dataclasses as
    ``Name(field=value, ...)``, anything else as ``repr``. Never cut."""
    if isinstance(value, str):
        return value if top else repr(value)
    if isinstance(value, (frozenset, set)):
        return "{" + ", ".join(sorted(show(v, False) for v in value)) + "}"
    if isinstance(value, (tuple, list)) and not hasattr(value, "_fields"):
        items = [show(v, False) for v in value]
        inner = ", ".join(items) + ("," if isinstance(value, tuple) and len(items) == 1 else "")
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{show(k, False)}: {show(v, False)}" for k, v in value.items()) + "}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        args = ", ".join(f"{f.name}={show(getattr(value, f.name), False)}" for f in dataclasses.fields(value))
        return f"{type(value).__name__}({args})"
    return repr(value)


def network(protocol, state: SystemState) -> tuple[Channel, ...]:
    """The messages in flight in ``state``, per channel ``(src, dst)`` in the system's order
    (channels sorted by sender and receiver)."""
    channels: dict[tuple[str, str], list[str]] = {}
    for env in protocol.system.in_flight(state):
        text = Event("deliver", env.src, env.dst, env.msg).describe().partition(": ")[2]
        channels.setdefault((env.src, env.dst), []).append(text)
    return tuple(Channel(src, dst, tuple(msgs)) for (src, dst), msgs in sorted(channels.items()))


# ------------------------------------------------------------------------------ checks


def judge(protocol, states: Sequence[SystemState], timeout: float | None = CHECK_TIMEOUT_S) -> tuple[Judgement, ...]:
    """How the protocol's invariants, its properties and the linearizability of the history so
    far stand at the last of ``states`` (a path's states, the initial one first), named as the
    explorer names them (see :class:`Judgement`)."""
    system = protocol.system
    terminal = system.terminal(states[-1])
    out = [_invariant(inv, system, states, terminal) for inv in protocol.invariants]
    out += [_property(p, system, states, terminal) for p in getattr(protocol, "properties", ())]
    out.append(_linearizable(protocol, states[-1], timeout))
    return tuple(out)


def _invariant(inv, system, states: Sequence[SystemState], terminal: bool) -> Judgement:
    """An invariant at the last state: broken there, broken at an earlier step of the path (the
    explorer stops there), or holding; a quiescent one only where nothing is left to deliver."""
    if inv.quiescent:
        if not terminal:
            return Judgement(inv.name, "quiescent invariant", NOT_JUDGED,
                             "checked only where nothing is left to deliver")
        problem = inv.check(system, states[-1])
        return Judgement(inv.name, "quiescent invariant", HOLDS if problem is None else FAILS, problem or "")
    problem = inv.check(system, states[-1])
    if problem is not None:
        return Judgement(inv.name, "invariant", FAILS, problem)
    for step, s in enumerate(states[:-1]):
        problem = inv.check(system, s)
        if problem is not None:
            return Judgement(inv.name, "invariant", FAILS, f"broken at step {step} of this path ({_step_name(step)}): {problem}")
    return Judgement(inv.name, "invariant", HOLDS)


def _property(prop, system, states: Sequence[SystemState], terminal: bool) -> Judgement:
    """A property with an expectation at the last state of a path (see
    :mod:`checker.explore.properties`): ``always`` fails where it is false on the path;
    ``sometimes`` holds where it is witnessed (else not yet); ``eventually`` holds once it held
    on the path, fails on a complete path where it never held, and is not yet judged before."""
    held = [prop.holds(system, s) for s in states]
    kind = prop.expectation
    if kind == ALWAYS:
        if all(held):
            return Judgement(prop.name, kind, HOLDS)
        first = held.index(False)
        where = "in this state" if not held[-1] else f"at step {first} of this path ({_step_name(first)})"
        return Judgement(prop.name, kind, FAILS, f'"{prop.name}" does not hold {where}')
    if kind == SOMETIMES:
        if held[-1]:
            return Judgement(prop.name, kind, HOLDS, "witnessed in this state")
        return Judgement(prop.name, kind, NOT_YET, "does not hold in this state (it must hold in some reachable one)")
    if any(held):
        return Judgement(prop.name, kind, HOLDS, "held on this path" + (" (in this state)" if held[-1] else ""))
    if terminal:
        return Judgement(prop.name, EVENTUALLY, FAILS, never_holds(prop.name))
    return Judgement(prop.name, kind, NOT_YET, "has not held on this path yet; judged where the schedule completes")


def _step_name(step: int) -> str:
    return "the initial state" if step == 0 else f"after event {step}"


def _linearizable(protocol, state: SystemState, timeout: float | None) -> Judgement:
    """The history recorded so far checked against the protocol's model (a history that is not
    linearizable stays so whatever happens next)."""
    name = f"linearizable ({protocol.model})"
    result = check(protocol.history(state), protocol.model, timeout=timeout)
    if result.ok:
        return Judgement(name, "linearizability", HOLDS, "the history so far is linearizable")
    if result.illegal:
        return Judgement(name, "linearizability", FAILS,
                         f"the history so far is not linearizable under the {protocol.model} model")
    return Judgement(name, "linearizability", UNKNOWN, result.reason or "no verdict within the time limit")
