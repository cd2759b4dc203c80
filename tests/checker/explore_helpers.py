"""Helpers shared by the explorer's tests: exploring everything, and pseudo-random actor systems
(for properties that compare a reduced search with plain DFS)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from hypothesis import strategies as st

from checker.actors import Actor, Faults, Invariant, Invoke, Return, Send, System
from checker.explore import explore
from checker.protocols import Protocol


def everything(protocol, strategy: str = "dfs", **kw):
    """Every schedule of ``strategy`` over ``protocol`` (a Protocol, or a registered name with
    ``variant``/``params``): no early stop, no shrinking, with its distinct histories and the
    properties it found violated."""
    return explore(protocol, strategy, collect_histories=True, stop_on_violation=False,
                   shrink_counterexample=False, **kw)


REFERENCE_SCHEDULES = 20_000  # plain DFS's budget in the random-system properties
REDUCED_SECONDS = 120  # a reduced search's budget there: generous, never reached on these systems
# the DPOR family's configurations compared with plain DFS: label -> (strategy, explore's switches)
DPOR_RUNS = {
    "stateful dpor": ("dpor", {}),
    "stateful dpor, no symmetry": ("dpor", {"symmetry": False}),
    "stateful dpor, static independence": ("dpor", {"local_commutation": False}),
    "stateless dpor": ("dpor", {"state_cache": False}),
    "stateful transdpor": ("transdpor", {}),
    "stateful keyaware": ("keyaware", {}),
}
# the fault budgets of the random systems (``random_protocol``'s ``faults``)
FAULT_BUDGETS = ({}, {"drops": 1}, {"duplicates": 1}, {"drops": 1, "duplicates": 1}, {"crashes": 1},
                 {"crashes": 1, "restarts": 1})
# the same, one kind of fault at a time
ONE_FAULT_BUDGETS = tuple(b for b in FAULT_BUDGETS if len(b) < 2 or "restarts" in b)


def plain_dfs(protocol):
    """Plain stateful DFS (no symmetry, no sleep sets) over every schedule, or at most
    :data:`REFERENCE_SCHEDULES`: a budget in schedules rather than seconds, so that which systems a
    property skips (``assume(reference.complete)``) does not depend on the machine's load."""
    return everything(protocol, "dfs", symmetry=False, sleep_sets=False, max_schedules=REFERENCE_SCHEDULES)


def _h(*key) -> int:
    return zlib.crc32(repr(key).encode())


@dataclass(frozen=True)
class Node(Actor):
    """A pseudo-random server. State ``(epoch, value)``; a message ``(ttl, tag)`` may send up to
    two more (with ``ttl - 1``). The epoch only grows, and a tag below ``epoch - 1`` is ignored
    from then on (a monotone :meth:`Actor.ignores`, as the explorer requires). ``commuting``:
    about half the messages (by a hash of the message alone) add to the epoch and the value and
    send what the message alone decides, so that two of them commute unless the first makes the
    node ignore the second (the conditional independence that sleep sets exploit)."""

    seed: int
    peers: tuple[str, ...]
    commuting: bool = False

    def on_start(self):
        return (0, 0), []

    def ignores(self, state, src, msg):
        return msg[1] < state[0] - 1

    def on_msg(self, state, src, msg):
        if self.ignores(state, src, msg):
            return state, []
        epoch, value = state
        ttl, tag = msg
        if self.commuting and _h(self.seed, src, msg) % 2 == 0:
            h = _h(self.seed, src, msg, "commuting")
            return (epoch + (h % 4 == 0), (value + tag) % 3), self._sends(h, ttl)
        h = _h(self.seed, state, src, msg)
        return (epoch + (h % 4 == 0), (value + tag + (h >> 5)) % 3), self._sends(h, ttl)

    def _sends(self, h: int, ttl: int) -> list:
        """Up to two messages (by the hash ``h``) with one less time to live."""
        if ttl <= 0:
            return []
        return [Send(self.peers[(h >> (3 + k)) % len(self.peers)], (ttl - 1, (h >> (9 + k)) % 3)) for k in range(h % 3)]


@dataclass(frozen=True)
class Caller(Actor):
    """A pseudo-random client of two operations (a write of 1 or a read, each sent to a node):
    an answer may end the outstanding one (a read returns None or 1, so some histories are not
    linearizable) and start the next."""

    is_client = True
    seed: int
    peers: tuple[str, ...]
    ttl: int

    def _start(self, i: int) -> list:
        op = {"op": "write", "value": 1} if (self.seed + i) % 2 == 0 else {"op": "read"}
        return [Invoke(op), Send(self.peers[_h(self.seed, i) % len(self.peers)], (self.ttl, i % 3))]

    def on_start(self):
        return (0, True), self._start(0)

    def on_msg(self, state, src, msg):
        i, outstanding = state
        h = _h(self.seed, state, src, msg)
        if not outstanding or h % 3 == 0:
            return state, []
        out = None if (self.seed + i) % 2 == 0 else (None, 1, 1)[h % 3]
        if i == 0:
            return (1, True), [Return(out), *self._start(1)]
        return (2, False), [Return(out)]


def _small_values(system, state):
    """An invariant some systems break (a node's value 2), so violation sets are compared too."""
    return "a node holds 2" if any(type(s) is tuple and s[1:] == (2,) for s in state.actors) else None


def random_protocol(seed: int, nodes: int, clients: int, ttl: int, network: str, faults: dict,
                    commuting: bool = False) -> Protocol:
    """A pseudo-random system of ``nodes`` servers (:class:`Node`) and ``clients`` clients
    (:class:`Caller`), with a register history and an invariant that some systems break."""
    names = tuple(f"n{k}" for k in range(nodes))
    callers = tuple(f"c{k}" for k in range(clients))
    actors = [(c, Caller(seed + 7 * k, names, ttl)) for k, c in enumerate(callers)]
    actors += [(n, Node(seed + 13 * k, names + callers, commuting)) for k, n in enumerate(names)]
    system = System(actors, network=network, faults=Faults(**faults))
    return Protocol("random", str(seed), (("seed", seed),), system, "register",
                    invariants=(Invariant("no node holds 2", _small_values),))


def random_system_args(faults=FAULT_BUDGETS, nodes: int = 3, commuting: bool = True) -> dict:
    """:func:`random_protocol`'s arguments as hypothesis strategies, for ``@given(**...)``: a seed,
    1..``nodes`` servers, 1-2 clients, ttl 1-2, an unordered or FIFO network, a fault budget
    from ``faults`` and (with ``commuting``) whether deliveries to a node may commute."""
    args = dict(seed=st.integers(0, 10**6), nodes=st.integers(1, nodes), clients=st.integers(1, 2),
                ttl=st.integers(1, 2), network=st.sampled_from(["unordered", "fifo"]), faults=st.sampled_from(faults))
    return dict(args, commuting=st.booleans()) if commuting else args
