"""Properties with expectations (Stateright's ``always``, ``sometimes``, ``eventually``).

A :class:`Property` is a frozen value: a name, an expectation and a predicate over the global
state, ``predicate(system, state) -> bool``. Protocols declare them
(:attr:`checker.protocols.Protocol.properties`) beside their invariants; the explorer judges each
one and reports a :class:`PropertyResult` per property in
:attr:`checker.explore.ExploreResult.properties`.

``always``
    holds in every reachable state. Outcome ``held``, or ``counterexample``: a path to a state
    where it does not hold (a violation: it stops the search like a broken invariant).
``sometimes``
    holds in at least one reachable state. Outcome ``witnessed`` with a path to such a state, or,
    after a search that visited every reachable state, ``never reached``: the model is vacuous
    for it (a negative verdict, with no schedule to show).
``eventually``
    holds at some state of every complete schedule (a path from the initial state to a terminal
    state, where no event is enabled). Outcome ``held``, or ``counterexample``: a complete
    schedule on which it never held (a violation). Paths that never end (a cycle of the state
    graph) and paths cut by a depth bound are not judged; like Stateright, the explorer checks
    ``eventually`` on terminating schedules only.

Which strategies judge which kind completely is the strategy table's business
(:data:`checker.explore.PROPERTY_STRATEGIES`); a witness or counterexample any strategy finds is
a real path, but ``held`` and ``never reached`` need a complete search by a strategy that judges
the kind, and are ``unknown`` otherwise (with the reason).

Predicates must be pure functions of the state; with symmetry they must not tell
interchangeable actors apart (the search keeps one state per orbit).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from checker.actors import Event, System, SystemState, event_to_json
from packrat_sim.errors import PackratError

__all__ = [
    "ALWAYS", "COUNTEREXAMPLE", "EVENTUALLY", "EXPECTATIONS", "HELD", "NEVER_REACHED", "SOMETIMES", "UNJUDGED",
    "WITNESSED", "Property", "PropertyError", "PropertyResult", "PropertyTracker", "always", "eventually",
    "sometimes",
]

ALWAYS, SOMETIMES, EVENTUALLY = "always", "sometimes", "eventually"
EXPECTATIONS = (ALWAYS, SOMETIMES, EVENTUALLY)

# outcomes
HELD, COUNTEREXAMPLE, WITNESSED, NEVER_REACHED, UNJUDGED = "held", "counterexample", "witnessed", "never reached", "unknown"


class PropertyError(PackratError):
    """A malformed property (unknown expectation, empty name, predicate not callable); the
    message names the bad value."""


@dataclass(frozen=True)
class Property:
    """A named predicate over global states with an expectation (one of :data:`EXPECTATIONS`).
    ``predicate(system, state)`` is truthy where the property holds."""

    name: str
    expectation: str
    predicate: Callable[[System, SystemState], Any]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise PropertyError(f"a property needs a non-empty name, not {self.name!r}")
        if self.expectation not in EXPECTATIONS:
            raise PropertyError(f"property {self.name!r}: unknown expectation {self.expectation!r} "
                                f"(expected one of {', '.join(EXPECTATIONS)})")
        if not callable(self.predicate):
            raise PropertyError(f"property {self.name!r}: the predicate must be callable, not {self.predicate!r}")

    def holds(self, system: System, state: SystemState) -> bool:
        """Whether the property holds in ``state``; a predicate that raises is a
        PropertyError naming the property."""
        try:
            return bool(self.predicate(system, state))
        except Exception as exc:
            raise PropertyError(f"property {self.name!r}: its predicate raised {type(exc).__name__}: {exc}") from exc


def does_not_hold(name: str) -> str:
    """How the explorer, replay and the browser word an ``always`` property broken in a state."""
    return f'"{name}" does not hold in this state'


def never_holds(name: str) -> str:
    """How they word an ``eventually`` property that never held on a complete schedule."""
    return f'"{name}" never holds on this complete schedule'


def always(name: str, predicate: Callable[[System, SystemState], Any]) -> Property:
    return Property(name, ALWAYS, predicate)


def sometimes(name: str, predicate: Callable[[System, SystemState], Any]) -> Property:
    return Property(name, SOMETIMES, predicate)


def eventually(name: str, predicate: Callable[[System, SystemState], Any]) -> Property:
    return Property(name, EVENTUALLY, predicate)


@dataclass(frozen=True)
class PropertyResult:
    """How one property fared: ``outcome`` (``held``, ``counterexample``, ``witnessed``,
    ``never reached`` or ``unknown``); ``path``: the counterexample or witness schedule from the
    initial state (empty otherwise; its length is its depth); ``reason``: why the outcome is
    ``unknown`` or ``never reached``, in words."""

    name: str
    expectation: str
    outcome: str
    path: tuple[Event, ...] = ()
    reason: str = ""

    @property
    def failed(self) -> bool:
        """A definitive negative outcome (a counterexample, or a sometimes never reached)."""
        return self.outcome in (COUNTEREXAMPLE, NEVER_REACHED)

    @property
    def depth(self) -> int | None:
        return len(self.path) if self.outcome in (COUNTEREXAMPLE, WITNESSED) else None

    def describe(self) -> str:
        """One line: ``<expectation> "<name>": <outcome>`` and the depth or reason."""
        text = f'{self.expectation} "{self.name}": {self.outcome}'
        if self.depth is not None:
            text += f" (schedule of {self.depth} steps)"
        return text + (f": {self.reason}" if self.reason else "")

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "expectation": self.expectation,
            "outcome": self.outcome,
            "depth": self.depth,
            "path": [dict(event_to_json(e), text=e.describe()) for e in self.path],
            "reason": self.reason,
        }


class PropertyTracker:
    """The mutable property bookkeeping of one exploration (held by the explorer's run).

    State properties (``always``, ``sometimes``) are evaluated on every newly visited state by
    :meth:`see` until decided. ``eventually`` properties are tracked along paths as *pending
    sets* (frozensets of indexes into :attr:`eventually` of the properties that have not held
    yet on the path): :meth:`start` at the initial state, :meth:`advance` after each step,
    :meth:`end` where a complete schedule ends. A search that caches states must keep the
    pending set in its cache key (two paths to one state with different pending sets have
    different futures for the property)."""

    def __init__(self, system: System, properties: Sequence[Property]):
        self.system = system
        self.properties = tuple(properties)
        self.watching = [p for p in self.properties if p.expectation != EVENTUALLY]  # undecided state properties
        self.eventually = tuple(p for p in self.properties if p.expectation == EVENTUALLY)
        self.decided: dict[int, tuple[str, tuple[Event, ...]]] = {}  # id(property) -> (outcome, path)

    def see(self, state: SystemState, path: Sequence[Event]) -> Property | None:
        """Evaluate the undecided state properties at a newly visited ``state`` (reached by
        ``path``): record a sometimes property's witness, and return the first always property
        that does not hold here (its counterexample recorded), else None."""
        broken = None
        for p in list(self.watching):
            holds = p.holds(self.system, state)
            if p.expectation == SOMETIMES and holds:
                self._decide(p, WITNESSED, path)
            elif p.expectation == ALWAYS and not holds:
                self._decide(p, COUNTEREXAMPLE, path)
                broken = broken or p
        return broken

    def start(self, state: SystemState) -> frozenset:
        """The pending set at the initial ``state``: the eventually properties not holding there."""
        return frozenset(i for i, p in enumerate(self.eventually) if not p.holds(self.system, state))

    def advance(self, pending: frozenset, state: SystemState) -> frozenset:
        """The pending set after a step into ``state``: ``pending`` less those holding there."""
        if not pending:
            return pending
        done = [i for i in pending if self.eventually[i].holds(self.system, state)]
        return pending.difference(done) if done else pending

    def holding(self, state: SystemState) -> frozenset:
        """The indexes of the eventually properties that hold in ``state`` (for searches that
        memoise it per state: ``advance(pending, state) == pending - holding(state)``)."""
        return frozenset(i for i, p in enumerate(self.eventually) if p.holds(self.system, state))

    def end(self, pending: frozenset, path: Sequence[Event]) -> Property | None:
        """A complete schedule ``path`` ends with ``pending`` unmet: record a counterexample for
        each of those properties still undecided; return the first one (in declaration order) or
        None when nothing is pending."""
        first = None
        for i in sorted(pending):
            p = self.eventually[i]
            if id(p) not in self.decided:
                self._decide(p, COUNTEREXAMPLE, path)
            first = first or p
        return first

    def _decide(self, p: Property, outcome: str, path: Sequence[Event]) -> None:
        self.decided[id(p)] = (outcome, tuple(path))
        if p in self.watching:
            self.watching.remove(p)

    def results(self, strategy: str, complete: bool, incomplete_reason: str,
                judges: Mapping[str, frozenset]) -> tuple[PropertyResult, ...]:
        """One :class:`PropertyResult` per property, in declaration order. A recorded
        counterexample or witness stands whatever the search; otherwise ``held`` (always,
        eventually) or ``never reached`` (sometimes) when the search was ``complete`` and
        ``strategy`` is in ``judges[expectation]``, else ``unknown`` with the reason."""
        out = []
        for p in self.properties:
            decided = self.decided.get(id(p))
            if decided is not None:
                out.append(PropertyResult(p.name, p.expectation, decided[0], decided[1]))
            elif strategy not in judges.get(p.expectation, frozenset()):
                why = (f"{strategy} does not judge {p.expectation} properties completely; use "
                       f"{' or '.join(sorted(judges.get(p.expectation, ())))}")
                out.append(PropertyResult(p.name, p.expectation, UNJUDGED, reason=why))
            elif not complete:
                out.append(PropertyResult(p.name, p.expectation, UNJUDGED, reason=incomplete_reason))
            elif p.expectation == SOMETIMES:
                out.append(PropertyResult(p.name, p.expectation, NEVER_REACHED,
                                          reason="no reachable state satisfies it (the model is vacuous for it)"))
            else:
                out.append(PropertyResult(p.name, p.expectation, HELD))
        return tuple(out)
