"""Properties with expectations (checker.explore.properties): always, sometimes and eventually,
judged by the strategies that can (bfs and exhaustive for every kind, dfs for always and
sometimes), reported per property; the reconfiguration protocol's properties; a variant that
loses a batch, which linearizability alone passes and ``eventually`` catches."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
from hypothesis import assume, given, settings

from checker.actors import Actor, Send, System, SystemState
from checker.explore import OK, UNKNOWN, VIOLATION, Violation, explore
from checker.explore.properties import (
    COUNTEREXAMPLE,
    HELD,
    NEVER_REACHED,
    UNJUDGED,
    WITNESSED,
    Property,
    PropertyError,
    always,
    eventually,
    sometimes,
)
from checker.protocols import Protocol, build
from tests.checker.explore_helpers import everything, random_protocol, random_system_args

REFERENCE_SCHEDULES = 5_000  # exhaustive search's budget in the random-system property


def outcomes(result) -> dict[str, tuple[str, int | None]]:
    """Property name -> (outcome, depth of its witness or counterexample)."""
    return {p.name: (p.outcome, p.depth) for p in result.properties}


def violation_of(result) -> Violation:
    """The result's counterexample (there must be one)."""
    assert result.violation is not None
    return result.violation


def runs_to_the_end(protocol, path) -> tuple[list[SystemState], SystemState]:
    """The states along ``path`` from the initial state (all of them) and the last one."""
    system = protocol.system
    states = [system.initial()]
    for ev in path:
        states.append(system.step(states[-1], ev).state)
    return states, states[-1]


# --------------------------------------------------------------------------------------------
# the value


@pytest.mark.parametrize("name, expectation, predicate, word", [
    ("p", "usually", lambda s, x: True, "'usually'"),
    ("", "always", lambda s, x: True, "non-empty name"),
    ("p", "always", 3, "callable"),
])
def test_a_malformed_property_is_an_error_naming_the_bad_value(name, expectation, predicate, word):
    with pytest.raises(PropertyError, match=word):
        Property(name, expectation, predicate)


# --------------------------------------------------------------------------------------------
# the reconfiguration protocol's properties


def test_the_correct_protocol_completes_a_reconfiguration_and_answers_every_batch_under_bfs_and_exhaustive():
    for strategy, witness_depth in (("bfs", 6), ("exhaustive", 14)):
        result = explore("reconfig", strategy)
        assert result.verdict is OK
        assert outcomes(result) == {"a reconfiguration completes": (WITNESSED, witness_depth),
                                    "every accepted batch is answered": (HELD, None)}
    # the witness reaches a state where the operator's reconfigure has returned
    witness = explore("reconfig", "bfs").properties[0].path
    protocol = build("reconfig")
    _, end = runs_to_the_end(protocol, witness)
    assert protocol.system.last_state_of(end, "operator")[0] == 1


def test_dfs_and_dpor_leave_eventually_unknown_with_the_strategies_that_judge_it_and_keep_their_verdict():
    for strategy in ("dfs", "dpor"):
        result = explore("reconfig", strategy)
        assert result.verdict is OK
        answered = result.properties[1]
        assert answered.outcome == UNJUDGED and "use bfs or exhaustive" in answered.reason
        assert result.properties[0].outcome == WITNESSED


def test_a_lost_request_under_a_drop_fault_is_excused_by_the_eventually_property():
    result = explore("reconfig", "bfs", params={"drops": 1, "batches": 1})
    assert result.verdict is OK
    assert outcomes(result)["every accepted batch is answered"] == (HELD, None)


def test_without_reconfigurations_the_protocol_declares_no_reconfiguration_witness():
    result = explore("reconfig", "bfs", params={"reconfigures": 0})
    assert result.verdict is OK and [p.name for p in result.properties] == ["every accepted batch is answered"]


# --------------------------------------------------------------------------------------------
# drop-batch: lost without violating linearizability


def test_linearizability_alone_passes_the_protocol_that_loses_a_batch():
    protocol = replace(build("reconfig", "drop-batch"), invariants=(), properties=())
    for strategy in ("dfs", "bfs", "exhaustive"):
        result = everything(protocol, strategy)
        assert result.verdict is OK and result.distinct_histories == 7
    # some complete schedule ends with an accepted batch unanswered: a pending operation
    histories = everything(protocol, "dfs").histories
    assert any(len(ops[-1]) == 2 for record in histories for ops in record if ops)


@pytest.mark.parametrize("strategy, depth", [("bfs", 10), ("exhaustive", 14)])
def test_the_eventually_property_catches_the_protocol_that_loses_a_batch(strategy, depth):
    protocol = replace(build("reconfig", "drop-batch"), invariants=())  # linearizability and properties only
    result = explore(protocol, strategy)
    assert result.verdict is VIOLATION
    v = violation_of(result)
    assert (v.kind, v.name) == ("eventually", "every accepted batch is answered")
    assert len(v.schedule) == depth and outcomes(result)["every accepted batch is answered"][0] == COUNTEREXAMPLE
    states, end = runs_to_the_end(protocol, v.schedule)
    assert not protocol.system.enabled(end)  # a complete schedule ...
    assert not any(protocol.properties[1].holds(protocol.system, s) for s in states)  # ... on which it never held
    assert any(op.ret is None for op in v.history.operations)  # the lost batch: pending, so linearizable


def test_the_cli_reports_each_property_in_text_and_json(cli):
    code, out, _ = cli("explore", "--protocol", "reconfig", "--strategy", "bfs")
    assert code == 0
    assert 'property   sometimes "a reconfiguration completes": witnessed (schedule of 6 steps)' in out
    assert 'property   eventually "every accepted batch is answered": held' in out
    code, out, _ = cli("explore", "--protocol", "reconfig", "--strategy", "bfs", "--json")
    import json

    obj = json.loads(out)
    assert [(p["expectation"], p["outcome"], p["depth"]) for p in obj["properties"]] == [
        ("sometimes", "witnessed", 6), ("eventually", "held", None)]
    assert len(obj["properties"][0]["path"]) == 6


# --------------------------------------------------------------------------------------------
# always and sometimes


def _not_reconfigured(system, state) -> bool:
    return system.last_state_of(state, "operator")[0] == 0


def _mixed_epochs(system, state) -> bool:
    return bool(system.last_state_of(state, "dispatcher").mixed)


def with_properties(*properties: Property) -> Protocol:
    return replace(build("reconfig"), properties=properties)


def test_an_always_counterexample_is_a_shortest_path_under_bfs_and_a_shrunk_one_under_dfs():
    protocol = with_properties(always("the operator never reconfigures", _not_reconfigured))
    bfs = explore(protocol, "bfs")
    dfs = explore(protocol, "dfs")
    for result in (bfs, dfs):
        assert result.verdict is VIOLATION and violation_of(result).kind == "always"
        _, end = runs_to_the_end(protocol, violation_of(result).schedule)
        assert not _not_reconfigured(protocol.system, end)
    assert len(violation_of(bfs).schedule) == 6 <= len(violation_of(dfs).schedule) <= len(violation_of(dfs).found)


def test_a_sometimes_property_no_state_satisfies_is_reported_vacuous_by_a_complete_search():
    protocol = with_properties(sometimes("a batch runs in two epochs", _mixed_epochs))
    for strategy in ("bfs", "dfs", "exhaustive"):
        result = explore(protocol, strategy)
        assert result.verdict is VIOLATION and result.violation is None
        assert outcomes(result) == {"a batch runs in two epochs": (NEVER_REACHED, None)}
        assert "never reached" in result.reason and "vacuous" in result.reason
    dpor = explore(protocol, "dpor")  # it visits some states only: it cannot say
    assert dpor.verdict is OK and dpor.properties[0].outcome == UNJUDGED
    cut = explore(protocol, "bfs", depth=5)
    assert cut.verdict is UNKNOWN and cut.properties[0].outcome == UNJUDGED


def test_the_cli_exits_1_on_a_vacuous_property(cli, monkeypatch):
    import checker.protocols.reconfig as reconfig

    monkeypatch.setattr(reconfig, "RECONFIGURATION_COMPLETES", sometimes("a batch runs in two epochs", _mixed_epochs))
    code, out, _ = cli("explore", "--protocol", "reconfig", "--strategy", "dfs")
    assert code == 1
    assert 'verdict    VIOLATION: sometimes property "a batch runs in two epochs" is never reached' in out


# --------------------------------------------------------------------------------------------
# eventually under state caching: the pending properties belong to the cached node


@dataclass(frozen=True)
class Sender(Actor):
    def on_start(self):
        return 0, [Send("node", "x"), Send("node", "y")]

    def on_msg(self, state, src, msg):
        return state, []


@dataclass(frozen=True)
class Collector(Actor):
    def on_start(self):
        return frozenset(), []

    def on_msg(self, state, src, msg):
        return state | {msg}, []


def _x_before_y(system, state) -> bool:
    return system.state_of(state, "node") == frozenset({"x"})


def diamond() -> Protocol:
    """x then y, or y then x, to one node: both orders reach one terminal state; "x arrived
    first" holds on the way on one path only."""
    system = System([("sender", Sender()), ("node", Collector())])
    return Protocol("diamond", "x-y", (), system, "register",
                    properties=(eventually("x arrives before y", _x_before_y),))


def test_a_state_reached_again_with_an_eventually_property_still_pending_is_explored_again():
    for strategy in ("bfs", "exhaustive"):
        result = explore(diamond(), strategy)
        assert result.verdict is VIOLATION and violation_of(result).kind == "eventually"
        assert [ev.msg for ev in violation_of(result).schedule] == ["y", "x"]
    bfs = explore(diamond(), "bfs")
    assert bfs.states == 4 and bfs.transitions == 4  # the joined terminal state is a new node once
    assert explore(diamond(), "dfs").properties[0].outcome == UNJUDGED


# --------------------------------------------------------------------------------------------
# pseudo-random systems: bfs's property outcomes are exhaustive's (eventually) and dfs's (the others)


def _node_values(system, state):
    return [s[1] for name, s in zip(system.names, state.actors) if name.startswith("n") and type(s) is tuple]


def _some_node_holds_one(system, state) -> bool:
    return 1 in _node_values(system, state)


def _no_node_holds_two(system, state) -> bool:
    return 2 not in _node_values(system, state)


RANDOM_PROPERTIES = (
    eventually("a node holds 1", _some_node_holds_one),
    sometimes("a node holds 1 (sometimes)", _some_node_holds_one),
    always("no node holds 2 (always)", _no_node_holds_two),
)


@settings(max_examples=20, deadline=None)
@given(**random_system_args(faults=[{}, {"drops": 1}, {"duplicates": 1}], nodes=2, commuting=False))
def test_bfs_judges_properties_as_exhaustive_search_and_plain_dfs_do_on_random_systems(seed, nodes, clients, ttl,
                                                                                       network, faults):
    protocol = replace(random_protocol(seed, nodes, clients, ttl, network, faults), invariants=(),
                       properties=RANDOM_PROPERTIES)
    exhaustive = everything(protocol, "exhaustive", max_schedules=REFERENCE_SCHEDULES)
    assume(exhaustive.complete)
    dfs = everything(protocol, "dfs", symmetry=False, sleep_sets=False)
    bfs = everything(protocol, "bfs")
    assert bfs.complete and bfs.histories == exhaustive.histories
    assert [p.outcome for p in bfs.properties] == [p.outcome for p in exhaustive.properties]
    assert [p.outcome for p in bfs.properties[1:]] == [p.outcome for p in dfs.properties[1:]]
    for mine, theirs in zip(bfs.properties, exhaustive.properties):  # bfs's paths are never longer
        assert mine.depth is None or mine.depth <= theirs.depth
    ev = bfs.properties[0]
    if ev.outcome == COUNTEREXAMPLE:
        states, end = runs_to_the_end(protocol, ev.path)
        assert not protocol.system.enabled(end)
        assert not any(_some_node_holds_one(protocol.system, s) for s in states)


def test_a_random_walk_that_ends_with_a_batch_unanswered_is_an_eventually_counterexample():
    protocol = replace(build("reconfig", "drop-batch"), invariants=())
    result = explore(protocol, "random", seed=0, max_schedules=300)
    assert result.verdict is VIOLATION and violation_of(result).kind == "eventually"
    _, end = runs_to_the_end(protocol, violation_of(result).schedule)
    assert not protocol.system.enabled(end)
    correct = explore("reconfig", "random", seed=0, max_schedules=300)  # never "held": walks are samples
    assert correct.verdict is UNKNOWN and correct.properties[1].outcome == UNJUDGED


def test_a_predicate_that_raises_is_an_error_naming_the_property():
    def broken(system, state):
        raise KeyError("nope")

    with pytest.raises(PropertyError, match="property 'fragile': its predicate raised KeyError"):
        explore(with_properties(sometimes("fragile", broken)), "bfs")


def test_replaying_an_eventually_counterexample_reproduces_it():
    from checker.explore import replay

    protocol = replace(build("reconfig", "drop-batch"), invariants=())
    v = violation_of(explore(protocol, "bfs"))
    rr = replay(protocol, v.schedule)
    assert rr.violation[:2] == ("eventually", "every accepted batch is answered") and rr.terminal
    assert replay(protocol, v.schedule[:-1]).violation is None  # cut short, the schedule is not complete


def test_replaying_an_always_counterexample_reproduces_it_and_the_correct_path_breaks_nothing():
    from checker.explore import replay

    protocol = with_properties(always("the operator never reconfigures", _not_reconfigured))
    v = violation_of(explore(protocol, "bfs"))
    assert replay(protocol, v.schedule).violation[:2] == ("always", "the operator never reconfigures")
    assert replay(protocol, v.schedule[:-1]).violation is None
