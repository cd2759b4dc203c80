"""Conditional independence of two deliveries to one actor: :func:`local_commutation` decides
whether they commute in the state at hand, :class:`Commutations` memoises it for a search. Both
sleep-set searches (``dfs``'s :func:`~checker.explore.tree.sleep_dfs` and the DPOR family's
sleep sets) use it; switched off by :attr:`Reductions.local_commutation
<checker.explore.harness.Reductions>`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable
from typing import Any

from checker.actors import Actor, Event, Invoke, Return, Send, System, SystemState

__all__ = ["MEMO_LIMIT", "Commutations", "local_commutation"]

MEMO_LIMIT = 1_000_000  # entries of each of a search's memos (cleared when full)


def _local_result(actor: Actor, state: Any, first: Event, second: Event) -> tuple | None:
    """Receiver ``actor`` in ``state`` takes ``first`` then ``second``: its final state, what it
    sent (sorted) and what it recorded (in order), or None when ``second`` is then ignored
    (discarded), a command is not a Send, Invoke or Return, or a step fails (callers treat None
    as "may not commute")."""
    if first.src is None or second.src is None:  # (deliveries only: a fault event has no sender)
        return None
    try:
        s1, c1 = actor.on_msg(state, first.src, first.msg)
        if actor.ignores(s1, second.src, second.msg):
            return None
        s2, c2 = actor.on_msg(s1, second.src, second.msg)
        sends = []
        records = []
        for cmd in (*c1, *c2):
            kind = type(cmd)
            if kind is Send:
                sends.append((cmd.dst, cmd.msg))
            elif kind is Invoke:
                records.append(("invoke", cmd.client, repr(cmd.input)))
            elif kind is Return:
                records.append(("return", cmd.client, repr(cmd.output)))
            else:
                return None
        sends.sort(key=repr)
        return s2, sends, records
    except Exception:  # (the search's own step reports it, with the actor's name)
        return None


def local_commutation(actor: Actor, state: Any, u: Event, v: Event) -> tuple | None:
    """When two deliveries to one actor, in ``state``, may commute in the whole system (on an
    unordered network): None when they may not; else ``(final state, messages)``, and they
    commute exactly when every one of ``messages`` (``(receiver, message)``, sent in one order
    and not the other) is discarded by its receiver (:meth:`Actor.ignores`: the receiver in the
    final state, any other in its unchanged state).

    In either order the second delivery must stay enabled, the actor must end in the same
    state and record the same history commands in the same order. What peers discard depends
    only on their own unchanged states, and :meth:`Actor.ignores` is monotone, so the two orders
    leave the same network when the messages sent differ only by discarded ones."""
    first = _local_result(actor, state, u, v)
    if first is None:
        return None
    second = _local_result(actor, state, v, u)
    if second is None or first[0] != second[0] or first[2] != second[2]:
        return None
    if first[1] == second[1]:
        return first[0], ()
    a, b = Counter(first[1]), Counter(second[1])
    return first[0], tuple((a - b) + (b - a))


class Commutations:
    """:func:`local_commutation` of deliveries to the actors of ``system``, memoised per
    (receiver index, its state, the two events' keys). The keys name the events (a search's
    event ids, or the events themselves). :func:`local_commutation` is symmetric, so a caller
    may pass the pair in either order (one fixed order saves memo entries). At most
    :data:`MEMO_LIMIT` entries (cleared when full)."""

    __slots__ = ("actors", "memo", "system")

    def __init__(self, system: System):
        self.system = system
        self.actors = system.actors
        self.memo: dict = {}

    def in_state(self, state: SystemState, a: Hashable, b: Hashable, u: Event, v: Event, discards: bool) -> bool:
        """Deliveries ``u`` (key ``a``) and ``v`` (key ``b``) to one actor, both enabled in the
        system state ``state``, commute there: :func:`local_commutation` holds and nothing is
        sent in one order only, or (``discards``) everything that is is discarded by its
        receiver."""
        di = self.system.index[u.dst]
        c = self(di, state.actors[di], a, b, u, v)
        return c is not None and (not c[1] or (discards and self._discarded(state, di, c)))

    def _discarded(self, state: SystemState, di: int, commutation: tuple) -> bool:
        """Every message of a :func:`local_commutation` at actor number ``di`` is discarded by
        its receiver (the actor itself in its final state, any other in ``state``)."""
        system = self.system
        final, messages = commutation
        src = system.names[di]
        for dst, msg in messages:
            k = system.index[dst]
            if k != di and system.crashed(state, dst):
                return False  # (a crashed actor discards nothing)
            try:
                if not self.actors[k].ignores(final if k == di else state.actors[k], src, msg):
                    return False
            except Exception:  # (the search's own step reports it)
                return False
        return True

    def __call__(self, di: int, state: Any, a: Hashable, b: Hashable, u: Event, v: Event) -> tuple | None:
        """``local_commutation`` of ``u`` (key ``a``) and ``v`` (key ``b``), both delivered to
        actor number ``di`` in its state ``state``."""
        key = (di, state, a, b)
        memo = self.memo
        c = memo.get(key, _UNKNOWN)
        if c is _UNKNOWN:
            if len(memo) > MEMO_LIMIT:
                memo.clear()
            c = memo[key] = local_commutation(self.actors[di], state, u, v)
        return c


_UNKNOWN = object()
