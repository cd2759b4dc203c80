"""The state-space browser's library (checker.explore.browse): stepping, back, counterexamples."""

from __future__ import annotations

import ast
import dataclasses
import random

import pytest

from checker.explore import ExploreError, browse, explore, replay
from checker.explore.properties import always
from checker.protocols import PROTOCOLS, build

INITIAL_EVENTS = ["c0 -> dispatcher: infer(0, 4)", "operator -> controller: reconfigure(0)"]


def labels(view: browse.StateView) -> list[str]:
    return [c.label for c in view.enabled]


def random_path(protocol, seed: int, steps: int) -> tuple[int, ...]:
    """A path of at most ``steps`` events picked with ``random.Random(seed)``."""
    rng = random.Random(seed)
    path: tuple[int, ...] = ()
    for _ in range(steps):
        enabled = browse.view(protocol, path).enabled
        if not enabled:
            break
        path = browse.forward(protocol, path, rng.randrange(len(enabled)))
    return path


def test_the_initial_state_of_reconfig_enables_the_first_request_and_the_reconfigure():
    view = browse.view(build("reconfig"), ())
    assert labels(view) == INITIAL_EVENTS
    assert [c.index for c in view.enabled] == [0, 1]
    assert view.path == () and view.events == () and not view.terminal
    assert [(ch.src, ch.dst, ch.messages) for ch in view.network] == [
        ("c0", "dispatcher", ("infer(0, 4)",)), ("operator", "controller", ("reconfigure(0)",))]


def test_faults_the_budgets_allow_are_enabled_after_the_deliveries():
    view = browse.view(build("reconfig", drops=1, crashes=1), ())
    assert labels(view) == INITIAL_EVENTS + [f"drop {e}" for e in INITIAL_EVENTS] + [
        "crash dispatcher", "crash controller", "crash i0.0", "crash i1.0"]


def test_a_crash_shows_the_actor_crashed_with_its_state_at_the_crash():
    protocol = build("reconfig", crashes=1)
    path = (labels(browse.view(protocol, ())).index("crash dispatcher"),)
    dispatcher = {a.name: a for a in browse.view(protocol, path).actors}["dispatcher"]
    assert dispatcher.crashed and dispatcher.fields[0][0] == "crashed"
    assert dict(dispatcher.fields)["routing"] == "(('i0.0', 0),)"
    assert "crash dispatcher" not in labels(browse.view(protocol, path))  # the budget is spent


def test_taking_an_event_gives_its_successor_and_marks_the_fields_it_changed():
    protocol = build("reconfig")
    path = browse.forward(protocol, (), 0)
    view = browse.view(protocol, path)
    assert path == (0,) and [e.describe() for e in view.events] == INITIAL_EVENTS[:1]
    assert view.state == protocol.system.step(protocol.system.initial(), view.events[0]).state
    actors = {a.name: a for a in view.actors}
    assert actors["dispatcher"].changed == ("pending", "outstanding")
    assert dict(actors["dispatcher"].fields)["pending"] == "((0, 'c0', 4, 1, ()),)"
    assert all(not a.changed for name, a in actors.items() if name != "dispatcher")
    assert labels(view) == ["dispatcher -> i0.0: run(0, 0, 0, 4)", "operator -> controller: reconfigure(0)"]


@pytest.mark.parametrize("seed", range(5))
def test_stepping_then_back_returns_the_same_state(seed):
    protocol = build("reconfig", clients=2, drops=1, duplicates=1)
    path = random_path(protocol, seed, 12)
    assert len(path) >= 6
    for k in range(len(path)):
        here = browse.view(protocol, path[:k])
        after = browse.view(protocol, browse.forward(protocol, path[:k], path[k]))
        assert after.state != here.state
        back = browse.view(protocol, browse.back(after.path))
        assert back.path == here.path and back.state == here.state and back.actors == here.actors
        assert labels(back) == labels(here)
    assert browse.back(()) == ()


def test_a_path_replays_deterministically_from_its_text():
    protocol = build("reconfig", clients=2)
    path = random_path(protocol, 7, 10)
    text = browse.path_text(path)
    assert browse.parse_path(text) == path and browse.parse_path(f" {text} ") == path
    again = build("reconfig", clients=2)  # a fresh system (its own message ids) reaches the same state
    assert browse.view(again, browse.parse_path(text)).state == browse.view(protocol, path).state
    assert browse.path_text(()) == "" and browse.parse_path("") == ()


@pytest.mark.parametrize("text", ["0.x", "1..2", "-1", "0,1", "1.2 .3", "٣"])
def test_a_path_that_is_not_dot_separated_indices_is_refused_naming_it(text):
    with pytest.raises(ExploreError, match="path must be"):
        browse.parse_path(text)


def test_an_index_no_event_has_is_refused_naming_its_step():
    protocol = build("reconfig")
    with pytest.raises(ExploreError, match=r"step 2's event index must be an integer in 0\.\.1, got 5"):
        browse.view(protocol, (0, 5))
    with pytest.raises(ExploreError, match="step 1's event index"):
        browse.forward(protocol, (), 2)
    with pytest.raises(ExploreError, match=f"at most {browse.MAX_PATH}"):
        browse.path_states(protocol, (0,) * (browse.MAX_PATH + 1))


def test_a_final_state_enables_nothing_and_a_step_beyond_it_is_refused():
    protocol = build("reconfig", reconfigures=0, batches=1)
    path = random_path(protocol, 0, 50)
    view = browse.view(protocol, path)
    assert view.enabled == () and view.terminal
    assert view.judgement("every accepted batch is answered").status == browse.HOLDS
    with pytest.raises(ExploreError, match=f"step {len(path) + 1}: no event is enabled"):
        browse.forward(protocol, path, 0)


def test_a_fifo_channel_lists_its_messages_in_delivery_order_and_enables_only_the_oldest():
    protocol = build("reconfig", clients=2, network="fifo")
    first = browse.view(protocol, ())
    c1_first = (labels(first).index("c1 -> dispatcher: infer(2, 4)"),)
    then_c0 = browse.forward(protocol, c1_first, labels(browse.view(protocol, c1_first)).index(INITIAL_EVENTS[0]))
    view = browse.view(protocol, then_c0)
    assert {(ch.src, ch.dst): ch.messages for ch in view.network}[("dispatcher", "i0.0")] == (
        "run(2, 0, 0, 4)", "run(0, 0, 0, 4)")
    assert "dispatcher -> i0.0: run(2, 0, 0, 4)" in labels(view)
    assert "dispatcher -> i0.0: run(0, 0, 0, 4)" not in labels(view)


def test_actor_states_are_shown_in_full_one_field_per_row():
    protocol = build("reconfig", clients=4, instances=4)
    path = random_path(protocol, 3, 20)
    state = browse.view(protocol, path).state
    for actor in browse.view(protocol, path).actors:
        value = protocol.system.last_state_of(state, actor.name)
        for name, text in actor.fields:
            field = getattr(value, name) if dataclasses.is_dataclass(value) else value[int(name.strip("[]"))]
            if not isinstance(field, (str, frozenset)):
                assert ast.literal_eval(text) == field  # nothing cut, nothing lost
    dispatcher = {a.name: a for a in browse.view(protocol, path).actors}["dispatcher"]
    assert [f for f, _ in dispatcher.fields] == ["routing", "pending", "outstanding", "retiring", "mixed", "answered"]


def test_show_sorts_sets_and_quotes_strings_only_inside_containers():
    assert browse.show("ready") == "ready"
    assert browse.show(frozenset({"b", "a"})) == "{'a', 'b'}"
    assert browse.show(("x",)) == "('x',)" and browse.show(frozenset()) == "{}"


def _counterexamples():
    for name, spec in PROTOCOLS.items():
        for variant in spec.buggy_variants:
            yield name, variant


JUDGEMENT_KIND = {"invariant": "invariant", "linearizability": "linearizability", "always": "always",
                  "eventually": "eventually"}


@pytest.mark.parametrize(("name", "variant"), list(_counterexamples()))
def test_a_counterexample_path_reaches_the_violating_state_and_reports_the_violated_property(name, variant):
    result = explore(name, "dfs", variant=variant, max_time=60.0)
    v = result.violation
    assert v is not None, (name, variant)
    protocol = build(name, variant)
    path = browse.path_of_schedule(protocol, v.schedule)
    view = browse.view(protocol, path)
    assert len(path) == len(v.schedule) and view.events == v.schedule
    assert view.state == replay(protocol, v.schedule).state
    kind = "quiescent invariant" if v.kind == "invariant" and v.quiescent else JUDGEMENT_KIND[v.kind]
    judged = view.judgement(v.name, kind)
    assert judged.status == browse.FAILS and judged in view.failing
    if v.kind == "invariant":
        assert judged.detail == v.message
    for k in range(len(v.schedule)):  # any step of it opens on the way there
        assert browse.path_of_schedule(protocol, v.schedule[:k]) == path[:k]
    assert not browse.view(protocol, ()).failing


def test_drop_batch_fails_its_eventually_property_only_where_the_schedule_completes():
    protocol = build("reconfig", "drop-batch")
    v = explore(protocol, "bfs").violation
    path = browse.path_of_schedule(protocol, v.schedule)
    end = browse.view(protocol, path)
    assert end.terminal and end.judgement("every accepted batch is answered").status == browse.FAILS
    before = browse.view(protocol, path[:-1])
    assert before.judgement("every accepted batch is answered").status == browse.NOT_YET
    assert end.judgement("linearizable (serving)").status == browse.HOLDS  # a pending operation is linearizable


def test_a_sometimes_property_is_witnessed_where_it_holds():
    protocol = build("reconfig")
    witness = explore(protocol, "bfs").properties[0]
    assert witness.name == "a reconfiguration completes" and witness.path
    path = browse.path_of_schedule(protocol, witness.path)
    assert browse.view(protocol, path).judgement(witness.name).status == browse.HOLDS
    assert browse.view(protocol, path[:-1]).judgement(witness.name).status == browse.NOT_YET


def test_an_always_property_fails_where_it_is_false_and_stays_failed_on_the_path():
    base = build("reconfig")
    protocol = dataclasses.replace(base, properties=(always(
        "the dispatcher holds no request", lambda system, s: not system.last_state_of(s, "dispatcher").pending),))
    assert browse.view(protocol, (0,)).judgement("the dispatcher holds no request").status == browse.FAILS
    path = random_path(protocol, 0, 60)
    states = browse.path_states(protocol, path)
    first = next(k for k, s in enumerate(states) if protocol.system.last_state_of(s, "dispatcher").pending)
    assert not protocol.system.last_state_of(states[-1], "dispatcher").pending  # true again at the end
    later = browse.view(protocol, path).judgement("the dispatcher holds no request")
    assert later.status == browse.FAILS and f"at step {first} of this path" in later.detail


def test_a_schedule_event_that_is_not_enabled_is_refused_naming_its_step():
    protocol = build("reconfig")
    first = browse.view(protocol, ()).enabled[0].event
    with pytest.raises(ExploreError, match=r"step 2 \(c0 -> dispatcher: infer\(0, 4\)\) is not enabled"):
        browse.path_of_schedule(protocol, (first, first))
