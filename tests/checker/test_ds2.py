"""DS2's distributed-register benchmark (register variants ``ds2`` and ``ds2-erroneous``): our
exhaustive search reproduces DS2's published schedule counts, our DPOR needs far fewer, and the
reduced searches find every distinct history the exhaustive one finds."""

from __future__ import annotations

from math import factorial

import pytest

from checker.explore import explore
from checker.protocols import build
from tests.checker.explore_helpers import everything as explore_all


def everything(variant, strategy, **kw):
    """Every schedule of ``strategy`` over the register ``variant``, with its distinct histories."""
    return explore_all("register", strategy, variant=variant, **kw)


def reachable_states(system):
    """Every state reachable from the initial one (breadth first)."""
    seen = {system.initial()}
    frontier = list(seen)
    while frontier:
        nxt = []
        for state in frontier:
            for event in system.enabled(state):
                child = system.step(state, event).state
                if child not in seen:
                    seen.add(child)
                    nxt.append(child)
        frontier = nxt
    return seen


def test_the_correct_variant_has_two_agents_and_the_erroneous_one_three_by_default():
    assert dict(build("register", "ds2").params)["replicas"] == 2
    assert dict(build("register", "ds2-erroneous").params)["replicas"] == 3
    names = build("register", "ds2-erroneous").system.names
    assert names == ("c0", "c1", "c2", "register1", "register2", "register3")


def test_exhaustive_search_on_ds2_gives_ds2s_4200_schedules_three_independent_chains_of_3_4_3_deliveries():
    result = everything("ds2", "exhaustive")
    assert result.ok and result.complete
    assert result.schedules == 4200 == factorial(10) // (factorial(3) * factorial(4) * factorial(3))
    assert result.distinct_histories == 44


def test_exhaustive_search_on_ds2_erroneous_gives_ds2s_252_schedules():
    result = everything("ds2-erroneous", "exhaustive")
    assert result.violated and result.complete and result.violations
    # the write's request, then two independent replica-write/ack pairs (6 orders), and two
    # one-step reads placed among those 7 deliveries
    assert result.schedules == 252 == 6 * factorial(7) // factorial(5)


def test_no_answer_to_a_client_is_ever_a_scheduled_delivery():
    for variant in ("ds2", "ds2-erroneous"):
        system = build("register", variant).system
        for state in reachable_states(system):
            assert all(event.dst.startswith("register") for event in system.enabled(state)), variant


def test_every_complete_schedule_of_ds2_answers_every_operation():
    protocol = build("register", "ds2")
    system = protocol.system
    finals = [s for s in reachable_states(system) if not system.enabled(s)]
    assert finals
    for state in finals:
        history = protocol.history(state)
        assert len(history.operations) == 3
        # a read whose majority never agrees stays pending; the write always returns
        assert all(op.ret is not None for op in history.operations if op.input["op"] == "write")


def test_dpor_proves_ds2_in_112_schedules_where_ds2s_dpor_needs_2984():
    result = everything("ds2", "dpor")
    assert result.ok and result.complete
    assert result.schedules == 112  # the bound: at most 536
    assert result.histories == everything("ds2", "exhaustive").histories
    # with static independence only: 285 (a second replica ack at the leader, which changes
    # nothing once the first completed the write, is then reordered with the first)
    assert everything("ds2", "dpor", local_commutation=False).schedules == 285


def test_dpor_reaches_the_erroneous_registers_stale_read_at_schedule_6():
    result = explore("register", "dpor", variant="ds2-erroneous")
    assert result.violated and result.violation.kind == "linearizability"
    assert result.first_violation_at == 6  # the issue's bound: at most 8; DS2's DPOR: 20
    static = explore("register", "dpor", variant="ds2-erroneous", local_commutation=False)
    assert static.first_violation_at == 9  # it also swaps the two acks at the leader, which commute there
    ops = result.violation.history.operations
    write = next(op for op in ops if op.input["op"] == "write")
    # a read that started after the write returned still sees the initial value
    assert write.ret is not None
    assert any(op.input["op"] == "read" and op.output is None and op.call > write.ret for op in ops)


@pytest.mark.parametrize("variant", ["ds2", "ds2-erroneous"])
@pytest.mark.parametrize("strategy", ["dpor", "transdpor", "keyaware"])
def test_every_reduced_search_finds_the_distinct_histories_and_violations_of_exhaustive_search(variant, strategy):
    reference = everything(variant, "exhaustive")
    reduced = everything(variant, strategy)
    assert reduced.complete
    assert reduced.histories == reference.histories
    assert reduced.violations == reference.violations
    assert reduced.schedules < reference.schedules


def test_keyaware_finds_all_44_distinct_histories_of_ds2_in_fewer_schedules_than_dpor():
    result = everything("ds2", "keyaware")
    assert result.ok and result.distinct_histories == 44 and len(result.histories) == 44
    assert result.schedules == 62 < everything("ds2", "dpor").schedules  # DS2's LiViola: 88, 12 of 44
    assert everything("ds2", "keyaware", local_commutation=False).schedules == 132


@pytest.mark.parametrize("variant, params", [("ds2", {}), ("ds2-erroneous", {"writers": 2, "reads": 1})],
                         ids=["ds2", "ds2-erroneous-two-writes"])
def test_deliveries_to_one_agent_with_different_keys_or_both_read_only_commute_in_every_reachable_state(variant, params):
    system = build("register", variant, **params).system
    checked = 0
    for state in reachable_states(system):
        events = system.enabled(state)
        for i, a in enumerate(events):
            for b in events[i + 1:]:
                if a.dst != b.dst:
                    continue
                agent = system.actors[system.index[a.dst]]
                ka, kb = agent.key_of(a.msg), agent.key_of(b.msg)
                if ka is None or kb is None:
                    continue
                if ka == kb and not (agent.read_only(a.msg) and agent.read_only(b.msg)):
                    continue
                ab = system.step(system.step(state, a).state, b).state
                ba = system.step(system.step(state, b).state, a).state
                assert ab == ba, (a.describe(), b.describe())
                checked += 1
    assert checked > 0


@pytest.mark.parametrize("variant", ["ds2", "ds2-erroneous"])
def test_a_read_only_delivery_leaves_the_agents_state_unchanged(variant):
    system = build("register", variant).system
    for state in reachable_states(system):
        for event in system.enabled(state):
            i = system.index[event.dst]
            if system.actors[i].read_only(event.msg):
                assert system.step(state, event).state.actors[i] == state.actors[i], event.describe()


@pytest.mark.parametrize("variant", ["ds2", "ds2-erroneous"])
def test_a_single_agent_answers_every_operation_at_once_and_is_linearizable(variant):
    result = everything(variant, "exhaustive", params={"replicas": 1})
    assert result.ok and result.complete
    assert result.schedules == 6  # the three requests in any order, nothing else scheduled
