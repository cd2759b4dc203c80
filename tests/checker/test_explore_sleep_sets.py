"""Sleep sets in stateful DFS (checker.explore.tree.sleep_dfs): the same states as plain DFS, so
the same histories and violations, on pseudo-random actor systems of every network and fault
kind; and the conditional independence it relies on (local_commutation), case by case."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import assume, given, settings

from checker.actors import Actor, Event, Return, Send
from checker.explore.commute import local_commutation
from tests.checker.explore_helpers import ONE_FAULT_BUDGETS, REDUCED_SECONDS, everything, plain_dfs, random_protocol, random_system_args


def sleep_dfs(protocol):
    """Sleep-set DFS without symmetry, every schedule."""
    return everything(protocol, "dfs", symmetry=False, max_time=REDUCED_SECONDS)


@settings(max_examples=60, deadline=None)
@given(**random_system_args(faults=ONE_FAULT_BUDGETS))
def test_sleep_sets_visit_exactly_the_states_of_plain_dfs_on_random_systems(seed, nodes, clients, ttl, network, faults,
                                                                            commuting):
    protocol = random_protocol(seed, nodes, clients, ttl, network, faults, commuting)
    plain = plain_dfs(protocol)
    assume(plain.complete)
    slept = sleep_dfs(protocol)
    assert slept.complete
    assert slept.states == plain.states
    assert slept.histories == plain.histories
    assert slept.violations == plain.violations
    assert slept.transitions <= plain.transitions


def test_sleep_sets_cut_transitions_of_random_systems_by_half_or_more_somewhere():
    # not a tight bound: the point is that the reduction happens at all on these systems
    plain = plain_dfs(random_protocol(11, 3, 2, 2, "unordered", {}))
    slept = sleep_dfs(random_protocol(11, 3, 2, 2, "unordered", {}))
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
