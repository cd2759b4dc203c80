"""Actor systems: pure handlers, network semantics, fault budgets, and the history they record."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checker.actors import (
    Actor,
    ActorError,
    Envelope,
    Event,
    Faults,
    Invoke,
    Return,
    Send,
    System,
    event_from_json,
    event_to_json,
)
from checker.protocols import build
from tests.checker.actor_helpers import Counter, Pinger, Replier, Requester


@dataclass(frozen=True)
class Talker(Actor):
    """Sends ``count`` numbered messages to ``dst`` at start and remembers what it receives."""

    dst: str = ""
    count: int = 0

    def on_start(self):
        return (), [Send(self.dst, ("n", i)) for i in range(self.count)]

    def on_msg(self, state, src, msg):
        return state + (msg[1],), []


def ping_system(clients: int = 2, **kwargs) -> System:
    return System([(f"c{i}", Pinger()) for i in range(clients)] + [("server", Counter())], **kwargs)


def deliver(src: str, dst: str, msg) -> Event:
    return Event("deliver", src, dst, msg)


def test_a_system_starts_every_actor_and_puts_their_messages_in_flight():
    system = ping_system()
    state = system.initial()
    assert system.names == ("c0", "c1", "server") and system.clients == ("c0", "c1")
    assert sorted(system.in_flight(state)) == [Envelope("c0", "server", ("ping",)), Envelope("c1", "server", ("ping",))]
    assert [e.describe() for e in system.enabled(state)] == ["c0 -> server: ping()", "c1 -> server: ping()"]


def test_an_unordered_network_may_deliver_any_message_in_flight_and_the_receiver_answers():
    system = ping_system()
    state = system.initial()
    out = system.step(state, deliver("c1", "server", ("ping",)))
    assert out.sent == (Envelope("server", "c1", ("pong", 1)),)
    assert system.state_of(out.state, "server") == 1
    assert {e.describe() for e in system.enabled(out.state)} == {"c0 -> server: ping()", "server -> c1: pong(1)"}


def test_stepping_is_pure_the_old_state_is_unchanged_and_equal_states_are_equal_values():
    system = ping_system()
    state = system.initial()
    before = hash(state)
    a = system.step(state, deliver("c0", "server", ("ping",))).state
    b = system.step(state, deliver("c0", "server", ("ping",))).state
    assert hash(state) == before and system.state_of(state, "server") == 0
    assert a == b and hash(a) == hash(b)


def test_a_fifo_network_delivers_each_channel_in_the_order_it_was_sent():
    system = System([("a", Talker("b", 3)), ("b", Talker())], network="fifo")
    state = system.initial()
    assert [e.msg for e in system.enabled(state)] == [("n", 0)]
    state = system.run([deliver("a", "b", ("n", 0)), deliver("a", "b", ("n", 1)), deliver("a", "b", ("n", 2))])
    assert system.state_of(state, "b") == (0, 1, 2)
    with pytest.raises(ActorError, match="not enabled"):
        system.run([deliver("a", "b", ("n", 1))])


def test_the_same_messages_on_an_unordered_network_arrive_in_any_order():
    system = System([("a", Talker("b", 3)), ("b", Talker())])
    state = system.run([deliver("a", "b", ("n", 2)), deliver("a", "b", ("n", 0)), deliver("a", "b", ("n", 1))])
    assert system.state_of(state, "b") == (2, 0, 1) and system.terminal(state)


def test_an_event_that_is_not_enabled_is_refused_with_its_description():
    system = ping_system()
    with pytest.raises(ActorError, match=r"server -> c0: pong\(1\) is not enabled"):
        system.step(system.initial(), deliver("server", "c0", ("pong", 1)))
    with pytest.raises(ActorError, match="no actor named 'nobody'"):
        system.step(system.initial(), deliver("c0", "nobody", ("ping",)))


def test_equal_messages_are_copies_each_delivered_once():
    @dataclass(frozen=True)
    class Twice(Actor):
        def on_start(self):
            return 0, [Send("b", ("n", 7)), Send("b", ("n", 7))]

        def on_msg(self, state, src, msg):
            return state, []

    system = System([("a", Twice()), ("b", Talker())])
    state = system.initial()
    assert list(system.in_flight(state)) == [Envelope("a", "b", ("n", 7))] * 2
    assert len(system.enabled(state)) == 1
    state = system.run([deliver("a", "b", ("n", 7))] * 2)
    assert system.state_of(state, "b") == (7, 7) and system.terminal(state)


def test_a_drop_loses_the_message_and_spends_the_drop_budget():
    system = ping_system(faults=Faults(drops=1))
    state = system.initial()
    kinds = [e.kind for e in system.enabled(state)]
    assert kinds.count("drop") == 2
    state = system.step(state, Event("drop", "c0", "server", ("ping",))).state
    assert state.used == (1, 0, 0, 0)
    assert all(e.kind == "deliver" for e in system.enabled(state))
    with pytest.raises(ActorError, match="drop budget"):
        system.step(state, Event("drop", "c1", "server", ("ping",)))


def test_a_duplicate_delivers_the_message_and_leaves_it_in_flight():
    system = ping_system(faults=Faults(duplicates=1))
    state = system.step(system.initial(), Event("duplicate", "c0", "server", ("ping",))).state
    assert system.state_of(state, "server") == 1
    assert Envelope("c0", "server", ("ping",)) in list(system.in_flight(state))
    assert state.used == (0, 1, 0, 0)


def test_a_crashed_actor_receives_nothing_until_it_restarts_with_a_fresh_state():
    system = ping_system(faults=Faults(crashes=1, restarts=1))
    state = system.run([deliver("c0", "server", ("ping",))])
    assert system.state_of(state, "server") == 1
    state = system.step(state, Event("crash", None, "server")).state
    assert system.crashed(state, "server")
    assert all(e.dst != "server" or e.kind == "restart" for e in system.enabled(state))
    state = system.step(state, Event("restart", None, "server")).state
    assert system.state_of(state, "server") == 0 and not system.crashed(state, "server")


def test_clients_are_the_harness_and_never_crash():
    system = ping_system(faults=Faults(crashes=1))
    assert [e.dst for e in system.enabled(system.initial()) if e.kind == "crash"] == ["server"]
    with pytest.raises(ActorError, match="clients do not crash"):
        system.step(system.initial(), Event("crash", None, "c0"))


def test_invocations_and_returns_form_a_history_in_real_time_order():
    system = ping_system()
    state = system.run([
        deliver("c0", "server", ("ping",)),
        deliver("server", "c0", ("pong", 1)),
        deliver("c1", "server", ("ping",)),
        deliver("server", "c1", ("pong", 2)),
    ])
    history = system.history(state, "register")
    assert [(op.client, op.output) for op in history] == [("c0", 1), ("c1", 2)]
    # both were called at the start, so they overlap although c0 returned first
    a, b = history.operations
    assert a.call < b.ret and b.call < a.ret and history.model == "register"


def test_a_pending_operation_stays_pending_in_the_history():
    system = ping_system(clients=1)
    history = system.history(system.initial())
    assert len(history) == 1 and history[0].ret is None and history[0].input == {"op": "read"}


@dataclass(frozen=True)
class Impatient(Actor):
    is_client = True

    def on_start(self):
        return 0, [Invoke({"op": "read"}), Invoke({"op": "read"})]

    def on_msg(self, state, src, msg):
        return state, []


@dataclass(frozen=True)
class Impostor(Actor):
    def on_start(self):
        return 0, [Return(1)]

    def on_msg(self, state, src, msg):
        return state, []


@dataclass(frozen=True)
class Sloppy(Actor):
    def on_start(self):
        return [], []

    def on_msg(self, state, src, msg):
        return state, []


def test_a_client_that_invokes_while_an_operation_is_outstanding_is_an_error():
    with pytest.raises(ActorError, match="client 'x' invokes .* outstanding"):
        System([("x", Impatient())]).initial()


def test_an_actor_that_is_not_a_client_cannot_record_history():
    with pytest.raises(ActorError, match="'x' emits Return but is not a client"):
        System([("x", Impostor())]).initial()


def test_an_unhashable_state_is_an_error_naming_the_actor():
    with pytest.raises(ActorError, match="actor 'x'.*unhashable state"):
        System([("x", Sloppy())]).initial()


def test_a_system_rejects_duplicate_names_unknown_networks_and_negative_budgets():
    with pytest.raises(ActorError, match="'a' is used twice"):
        System([("a", Counter()), ("a", Counter())])
    with pytest.raises(ActorError, match="unknown network 'lossy'"):
        System([("a", Counter())], network="lossy")
    with pytest.raises(ActorError, match="drops must be a non-negative integer, not -1"):
        Faults(drops=-1)


def test_events_round_trip_through_json_with_tuples_as_lists():
    event = deliver("w0", "p0", ("write", 0, 0, (1, 0), None))
    obj = event_to_json(event)
    assert obj == {"kind": "deliver", "src": "w0", "dst": "p0", "msg": ["write", 0, 0, [1, 0], None]}
    assert event_from_json(json.loads(json.dumps(obj))) == event
    assert event_from_json({"kind": "crash", "dst": "p0"}) == Event("crash", None, "p0")
    with pytest.raises(ActorError, match="unknown event kind 'teleport'"):
        event_from_json({"kind": "teleport", "dst": "p0"})


def test_a_reply_the_receiver_ignores_forever_is_discarded_instead_of_scheduled():
    system = build("register", "erroneous").system
    state = system.initial()
    # r0's first read returns on the first answer; the other replicas' answers can never matter
    state = system.run([deliver("r0", "p0", ("read", 0, 0)), deliver("r0", "p1", ("read", 0, 0))], state)
    out = system.step(state, deliver("p0", "r0", ("value", 0, 0, (0, -1), None)))
    assert Envelope("p1", "r0", ("value", 0, 0, (0, -1), None)) in out.ignored
    assert all(not (e.src == "p1" and e.dst == "r0") for e in system.in_flight(out.state))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(min_value=0, max_value=10_000))
def test_history_times_say_a_returned_before_b_was_called_exactly_when_it_did(seed):
    """Walk a random schedule, note the position of every invoke and return, and compare."""
    system = build("register", "abd", replicas=2, readers=2, reads=1).system
    rng = random.Random(seed)
    out = system.start()
    state, position, events = out.state, 0, []
    for client, kind, _ in out.records:
        events.append((client, kind, position))
    while system.enabled(state) and position < 60:
        position += 1
        out = system.step(state, rng.choice(system.enabled(state)))
        state = out.state
        events += [(client, kind, position) for client, kind, _ in out.records]
    # the k-th invoke / return of each client, with the step at which it happened
    calls, rets = {}, {}
    for client, kind, pos in events:
        table = calls if kind == "invoke" else rets
        table.setdefault(client, []).append(pos)
    history = system.history(state)
    seen: dict = {}
    ops = []
    for op in sorted(history.operations, key=lambda o: o.call):
        k = seen.get(op.client, 0)
        seen[op.client] = k + 1
        ops.append((op, calls[op.client][k], rets.get(op.client, [None] * 9)[k] if op.ret is not None else None))
    for a, _, a_ret in ops:
        for b, b_call, _ in ops:
            if a is b or a.ret is None:
                continue
            returned_first = a_ret < b_call or (a_ret == b_call and a.client == b.client)
            assert (a.ret < b.call) == returned_first


def test_a_message_reads_as_a_call_and_its_tuple_arguments_as_values():
    assert Event("deliver", "controller", "dispatcher", ("switch", 1, ("i1.0",))).describe() == \
        "controller -> dispatcher: switch(1, ('i1.0',))"


# ---------------------------------------------------------------------------------------------
# symmetry, enabled events with ids, calls recorded on a client's behalf


def test_interchangeable_replicas_share_one_canonical_state_and_the_renaming_is_a_bijection():
    from checker.protocols import build

    system = build("register", "majority", replicas=3).system
    assert system.symmetry == (("p0", "p1", "p2"),)
    start = system.initial()
    a = system.step(start, next(e for e in system.enabled(start) if e.dst == "p0")).state
    b = system.step(start, next(e for e in system.enabled(start) if e.dst == "p2")).state
    assert a != b
    ca, ma = system.canonical(a)
    cb, mb = system.canonical(b)
    assert ca == cb
    assert system.rename_state(a, ma) == ca and sorted(ma.values()) == sorted(ma)


def test_a_symmetry_group_must_name_equal_non_client_actors():
    import pytest

    from checker.actors import ActorError

    @dataclass(frozen=True)
    class Node(Actor):
        weight: int = 0

        def on_start(self):
            return 0, []

        def on_msg(self, state, src, msg):
            return state, []

    with pytest.raises(ActorError, match="'b' is not configured like 'a'"):
        System([("a", Node(1)), ("b", Node(2))], symmetry=[("a", "b")])
    with pytest.raises(ActorError, match="names 'z', which is not an actor"):
        System([("a", Node()), ("b", Node())], symmetry=[("a", "z")])
    assert System([("a", Node()), ("b", Node())], symmetry=[("a", "b")]).symmetry == (("a", "b"),)


def test_enabled_ids_is_the_one_definition_of_what_can_happen_next():
    from checker.protocols import build

    system = build("register", "majority", replicas=2, drops=1).system
    state = system.initial()
    pending = {i: env for i, env in enumerate(system.in_flight(state))}
    pairs = system.enabled_ids(state, pending)
    assert [ev for _, ev in pairs] == sorted(system.enabled(state), key=[ev for _, ev in pairs].index)
    assert {pid for pid, ev in pairs if ev.kind == "drop"} == {("drop", i) for i in pending}


def test_a_server_may_record_a_call_on_a_clients_behalf():
    caller = Requester(("req",), on_reply=lambda reply: [Return(reply[1])])
    srv = Replier(on_request=lambda client: [Invoke({"op": "read"}, client=client), Send(client, ("ok", None))])
    system = System([("c", caller), ("srv", srv)])
    state = system.run([Event("deliver", "c", "srv", ("req",)), Event("deliver", "srv", "c", ("ok", None))])
    (op,) = system.history(state).operations
    assert op.client == "c" and op.input == {"op": "read"} and op.output is None and op.ret is not None
