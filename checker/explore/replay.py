"""Replay files (``packrat.replay/1``): write, read, and carry out a schedule step by step."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checker.actors import ActorError, Event, SystemState, event_from_json, event_to_json
from checker.explore.harness import OK, UNKNOWN, VIOLATION, ExploreError, Violation
from checker.explore.properties import does_not_hold, never_holds
from checker.history import History
from checker.linearizability import Verdict, check
from checker.linearizability.partition import brief

__all__ = ["REPLAY_SCHEMA", "ReplayResult", "ReplayStep", "read_replay", "replay", "replay_json", "write_replay"]

REPLAY_SCHEMA = "packrat.replay/1"
MAX_REPLAY_BYTES = 64 * 1024 * 1024  # a replay file is a schedule: a few kB in practice


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
    def verdict(self) -> Verdict:
        if self.violation is not None:
            return VIOLATION
        return OK if self.check.ok else UNKNOWN


def replay(protocol, schedule: Sequence[Event], *, timeout: float | None = 10.0) -> ReplayResult:
    """Carry out ``schedule`` step by step from the initial state, checking invariants after each
    step, quiescent invariants at the end if nothing is left to deliver, the protocol's
    ``always`` and ``eventually`` properties (:func:`property_violation`), and the final history.
    Raises ExploreError naming the first event that is not enabled."""
    system = protocol.system
    start = system.start()
    state = start.state
    visited = [state]  # every state of the path, for the properties
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
        visited.append(state)
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
    if violation is None:
        violation = property_violation(protocol, visited, terminal)
    history = protocol.history(state)
    result = check(history, protocol.model, timeout=timeout)
    if violation is None and result.illegal:
        violation = ("linearizability", f"linearizable ({protocol.model})",
                     f"the history is not linearizable under the {protocol.model} model", False)
    return ReplayResult(protocol, tuple(steps), start.records, state, history, result, violation, terminal)


def property_violation(protocol, states: Sequence[Any], terminal: bool) -> tuple | None:
    """The first property of ``protocol`` the replayed path breaks, as the explorer words it:
    an ``always`` property false in one of ``states`` (the path's states, the initial one
    first), or, on a ``terminal`` path, an ``eventually`` property false in every one of them;
    None otherwise (``sometimes`` properties are judged over a whole search, not one path)."""
    system = protocol.system
    props = tuple(getattr(protocol, "properties", ()))
    for p in props:
        if p.expectation == "always" and not all(p.holds(system, s) for s in states):
            return ("always", p.name, does_not_hold(p.name), False)
    for p in props:
        if terminal and p.expectation == "eventually" and not any(p.holds(system, s) for s in states):
            return ("eventually", p.name, never_holds(p.name), True)
    return None


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
    from packrat_sim.files import write_text  # atomic; refuses symlinks, devices, missing directories

    return write_text(path, json.dumps(replay_json(protocol, schedule, violation, strategy, seed), indent=1) + "\n",
                      "replay file")


def read_replay(path: str | Path):
    """Read a replay file: ``(protocol, schedule, file object)``. Raises ExploreError naming the
    problem (missing file, not a regular file, larger than ``MAX_REPLAY_BYTES``, not UTF-8, bad or
    duplicate-keyed JSON, unknown schema, protocol, parameter or event). The file is read through
    packrat_sim.inputs (no device or FIFO, bounded) and its JSON strictly (no duplicate key, NaN,
    integer of thousands of digits, deep nesting or lone surrogate)."""
    from checker.protocols import ProtocolError, build
    from packrat_sim import inputs

    name = str(path)
    text = inputs.read_text(path, "replay file", error=ExploreError, limit=MAX_REPLAY_BYTES)
    try:
        obj = inputs.loads_json(text, "the replay file", error=ExploreError)
    except ExploreError as exc:
        raise ExploreError(f"replay file {name!r} is {exc}") from None
    if not isinstance(obj, dict):
        raise ExploreError(f"replay file {name!r} must hold a JSON object")
    if obj.get("schema") != REPLAY_SCHEMA:
        raise ExploreError(f"replay file {name!r} has schema {brief(obj.get('schema'))}; this version reads {REPLAY_SCHEMA!r}")
    params = obj.get("params") or {}
    if not isinstance(params, dict):
        raise ExploreError(f"replay file {name!r}: \"params\" must be an object, not {brief(params)}")
    for key in ("name", "variant"):
        if key in params:  # they are the file's "protocol" and "variant", never parameters
            raise ExploreError(f"replay file {name!r}: \"params\" holds {key!r}, which is not a protocol parameter "
                               f"(the protocol and its variant are the file's \"protocol\" and \"variant\")")
    try:
        protocol = build(obj.get("protocol"), obj.get("variant"), **params)
    except ProtocolError as exc:
        raise ExploreError(f"replay file {name!r}: {exc}") from None
    raw = obj.get("deliveries")
    if not isinstance(raw, list):
        raise ExploreError(f"replay file {name!r} has no \"deliveries\" list")
    schedule = []
    for i, item in enumerate(raw):
        try:
            schedule.append(event_from_json(item))
        except ActorError as exc:
            raise ExploreError(f"replay file {name!r}: delivery {i + 1}: {exc}") from None
    return protocol, tuple(schedule), obj
