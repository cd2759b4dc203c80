"""Sleep sets in stateful DFS (checker.explore.tree.sleep_dfs): the same states as plain DFS, so
the same histories and violations, on pseudo-random actor systems of every network and fault
kind; and the conditional independence it relies on (local_commutation), case by case."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from checker.actors import Actor, Event, Faults, Invariant, Invoke, Return, Send, System
from checker.explore.tree import local_commutation
from checker.protocols import Protocol
from tests.checker.explore_helpers import everything


def _h(*key) -> int:
    return zlib.crc32(repr(key).encode())


@dataclass(frozen=True)
class Node(Actor):
    """A pseudo-random server. State ``(epoch, value)``; a message ``(ttl, tag)`` may send up to
    two more (with ``ttl - 1``). The epoch only grows, and a tag below ``epoch - 1`` is ignored
    from then on (a monotone :meth:`Actor.ignores`, as the explorer requires)."""

    seed: int
    peers: tuple[str, ...]

    def on_start(self):
        return (0, 0), []

    def ignores(self, state, src, msg):
        return msg[1] < state[0] - 1

    def on_msg(self, state, src, msg):
        if self.ignores(state, src, msg):
            return state, []
        epoch, value = state
        ttl, tag = msg
        h = _h(self.seed, state, src, msg)
        sends = []
        if ttl > 0:
            for k in range(h % 3):
                sends.append(Send(self.peers[(h >> (3 + k)) % len(self.peers)], (ttl - 1, (h >> (9 + k)) % 3)))
        return (epoch + (h % 4 == 0), (value + tag + (h >> 5)) % 3), sends


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


def random_protocol(seed: int, nodes: int, clients: int, ttl: int, network: str, faults: dict) -> Protocol:
    names = tuple(f"n{k}" for k in range(nodes))
    callers = tuple(f"c{k}" for k in range(clients))
    actors = [(c, Caller(seed + 7 * k, names, ttl)) for k, c in enumerate(callers)]
    actors += [(n, Node(seed + 13 * k, names + callers)) for k, n in enumerate(names)]
    system = System(actors, network=network, faults=Faults(**faults))
    return Protocol("random", str(seed), (("seed", seed),), system, "register",
                    invariants=(Invariant("no node holds 2", _small_values),))


def dfs(protocol, **switches):
    """Plain or sleep-set DFS without symmetry, every schedule (a budget that these small systems
    stay well within; a run that hits it is skipped by the property)."""
    return everything(protocol, "dfs", symmetry=False, max_time=20, **switches)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6), nodes=st.integers(1, 3), clients=st.integers(1, 2), ttl=st.integers(1, 2),
       network=st.sampled_from(["unordered", "fifo"]),
       faults=st.sampled_from([{}, {"drops": 1}, {"duplicates": 1}, {"crashes": 1}, {"crashes": 1, "restarts": 1}]))
def test_sleep_sets_visit_exactly_the_states_of_plain_dfs_on_random_systems(seed, nodes, clients, ttl, network, faults):
    protocol = random_protocol(seed, nodes, clients, ttl, network, faults)
    plain = dfs(protocol, sleep_sets=False)
    assume(plain.complete)
    slept = dfs(protocol)
    assert slept.complete
    assert slept.states == plain.states
    assert slept.histories == plain.histories
    assert slept.violations == plain.violations
    assert slept.transitions <= plain.transitions


def test_sleep_sets_cut_transitions_of_random_systems_by_half_or_more_somewhere():
    # not a tight bound: the point is that the reduction happens at all on these systems
    plain = dfs(random_protocol(11, 3, 2, 2, "unordered", {}), sleep_sets=False)
    slept = dfs(random_protocol(11, 3, 2, 2, "unordered", {}))
    assert plain.complete and slept.states == plain.states
    assert slept.transitions * 2 <= plain.transitions


# ---------------------------------------------------------------------------------------------
# local commutation: two deliveries to one actor


@dataclass(frozen=True)
class Cell(Actor):
    """("add", n) adds; ("set", n) overwrites; ("ask",) answers the value; ("done", c) records
    the end of client c's operation; a message ("late",) is ignored once the value is over 5."""

    def on_start(self):
        return 0, []

    def ignores(self, state, src, msg):
        return msg == ("late",) and state > 5

    def on_msg(self, state, src, msg):
        if msg[0] == "add":
            return state + msg[1], []
        if msg[0] == "set":
            return msg[1], []
        if msg[0] == "ask":
            return state, [Send(src, ("value", state))]
        if msg[0] == "done":
            return state, [Return(None, client=msg[1])]
        return state, []


def deliver(msg, src="x") -> Event:
    return Event("deliver", src, "cell", msg)


def test_two_additions_commute_and_two_overwrites_with_different_values_do_not():
    assert local_commutation(Cell(), 0, deliver(("add", 1)), deliver(("add", 2))) == (3, ())
    assert local_commutation(Cell(), 0, deliver(("set", 1)), deliver(("set", 2))) is None
    assert local_commutation(Cell(), 0, deliver(("set", 4)), deliver(("set", 4))) == (4, ())


def test_a_read_and_a_write_commute_only_when_the_answers_they_differ_in_are_discarded():
    # the answer sent depends on the order: they commute exactly when its receiver discards both
    commutation = local_commutation(Cell(), 0, deliver(("ask",), src="c"), deliver(("add", 1)))
    assert commutation is not None and commutation[0] == 1
    assert sorted(commutation[1]) == [("c", ("value", 0)), ("c", ("value", 1))]


def test_a_delivery_that_makes_the_other_ignored_does_not_commute():
    assert local_commutation(Cell(), 5, deliver(("add", 1)), deliver(("late",))) is None


def test_history_commands_commute_only_in_the_same_sequence_either_way():
    # one Return recorded in either order: the same history
    assert local_commutation(Cell(), 0, deliver(("done", "c0")), deliver(("add", 1))) == (1, ())
    # two different clients' Returns swap places: the record differs (conservatively, no)
    assert local_commutation(Cell(), 0, deliver(("done", "c0")), deliver(("done", "c1"))) is None
