"""The explorer: exact schedule counts on small systems, soundness of the reductions, budgets,
verdicts as values, shrinking and replay."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from checker.actors import Actor, Event, Faults, Invariant, Send, System, all_operations_return
from checker.explore import (
    OK,
    STRATEGIES,
    UNKNOWN,
    VIOLATION,
    ExploreError,
    explore,
    key_projection,
    read_replay,
    replay,
    shrink,
    write_replay,
)
from checker.protocols import Protocol, build
from tests.checker.actor_helpers import Echo, Pinger


def ping(clients: int = 2, **system_args) -> Protocol:
    """n clients ping one stateless server; the register stays None, so every history is fine."""
    actors = [(f"c{i}", Pinger()) for i in range(clients)] + [("server", Echo())]
    return Protocol("ping", "default", (("clients", clients),), System(actors, **system_args), "register")


# ---------------------------------------------------------------------------------------------
# exact counts


def test_two_pings_have_six_schedules_nine_states_and_four_mazurkiewicz_traces():
    # two chains (ping then pong) interleave in C(4, 2) = 6 ways through 3 x 3 = 9 states; the
    # server's order of the pings (2) times the clients' order of the pongs (2) gives 4 traces
    assert explore(ping(), "exhaustive").schedules == 6
    dfs = explore(ping(), "dfs", sleep_sets=False)
    assert (dfs.states, dfs.schedules, dfs.transitions) == (9, 5, 12)
    # with sleep sets every step here commutes with every other (the two pings at the stateless
    # server too): one transition into each state, and one join
    slept = explore(ping(), "dfs")
    assert (slept.states, slept.schedules, slept.transitions) == (9, 4, 9)
    # stateless DPOR: one schedule per trace; stateful DPOR also joins a state already explored
    assert explore(ping(), "dpor", state_cache=False, local_commutation=False).schedules == 4
    assert explore(ping(), "dpor", local_commutation=False).schedules == 3
    # the stateless server's two pings commute where they are taken: one order of them is enough
    assert explore(ping(), "dpor", state_cache=False).schedules == 2
    assert explore(ping(), "dpor").schedules == 2


def test_three_pings_have_ninety_schedules_and_thirty_six_traces():
    # 6! / (2! 2! 2!) = 90 interleavings; 3! server orders x 3! pong orders = 36 traces
    assert explore(ping(3), "exhaustive").schedules == 90
    assert explore(ping(3), "dfs").states == 27
    for strategy in ("dpor", "transdpor", "keyaware"):
        assert explore(ping(3), strategy, state_cache=False, local_commutation=False).schedules == 36
        assert explore(ping(3), strategy, local_commutation=False).schedules == 11
        # one server order of the commuting pings, times the 3! orders of the clients' pongs
        assert explore(ping(3), strategy, state_cache=False).schedules == 6
        assert explore(ping(3), strategy).schedules == 6


def test_a_fifo_network_has_the_same_counts_when_every_channel_carries_one_message():
    assert explore(ping(network="fifo"), "exhaustive").schedules == 6
    assert explore(ping(network="fifo"), "dpor", state_cache=False).schedules == 4


def test_the_reconfiguration_protocol_has_pinned_state_and_schedule_counts():
    correct = build("reconfig", "correct")
    dfs = explore(correct, "dfs", sleep_sets=False)
    assert (dfs.verdict, dfs.states, dfs.schedules, dfs.transitions, dfs.distinct_histories) == (OK, 170, 153, 317, 5)
    # sleep sets: the same states, and 174 transitions rather than 317 (169 of them into new states)
    slept = explore(correct, "dfs")
    assert (slept.verdict, slept.states, slept.schedules, slept.transitions, slept.distinct_histories) == \
        (OK, 170, 39, 174, 5)
    assert explore(correct, "exhaustive").schedules == 16065
    assert explore(correct, "dpor", state_cache=False, local_commutation=False).schedules == 13
    assert explore(correct, "dpor", state_cache=False).schedules == 8


def test_the_two_replica_register_has_pinned_state_and_schedule_counts():
    majority = build("register", "majority", replicas=2)
    dfs = explore(majority, "dfs", symmetry=False)
    assert (dfs.verdict, dfs.states, dfs.distinct_histories) == (OK, 379, 7)
    # the two replicas are interchangeable: 206 orbits of the 379 states
    assert explore(majority, "dfs").states == 206
    # the coarse client relation gave 480 schedules; the finer one (a call and a return are the
    # only pair of history events whose order matters) 184
    assert explore(majority, "dpor", state_cache=False, coarse_clients=True, local_commutation=False).schedules == 480
    assert explore(majority, "dpor", state_cache=False, local_commutation=False).schedules == 184
    # and two deliveries to one actor that commute where they are taken need only one order: 65
    assert explore(majority, "dpor", state_cache=False).schedules == 65


# ---------------------------------------------------------------------------------------------
# soundness of the reductions

SMALL = [
    ("register", "erroneous", {"replicas": 2}),
    ("register", "majority", {"replicas": 2}),
    ("register", "erroneous", {"replicas": 2, "network": "fifo"}),
    ("register", "erroneous", {"replicas": 2, "readers": 2, "reads": 1}),
    ("reconfig", "correct", {}),
    ("reconfig", "ack-before-switch", {}),
    ("reconfig", "correct", {"clients": 2, "batches": 1}),
    ("reconfig", "switch-before-ready", {"clients": 2, "batches": 1}),
    ("reconfig", "stop-before-drain", {"clients": 2, "batches": 1}),
]


def _all_histories(protocol, strategy):
    return explore(protocol, strategy, collect_histories=True, stop_on_violation=False, shrink_counterexample=False)


@pytest.mark.parametrize("name, variant, params", SMALL, ids=lambda x: str(x))
def test_dpor_and_its_refinements_find_the_same_verdict_and_histories_as_dfs(name, variant, params):
    protocol = build(name, variant, **params)
    reference = _all_histories(protocol, "dfs")
    assert reference.complete
    for strategy in ("dpor", "transdpor"):
        reduced = _all_histories(protocol, strategy)
        assert reduced.verdict == reference.verdict, strategy
        assert reduced.histories == reference.histories, strategy
    # key-aware reduction judges keys independently: compare the histories key by key
    keyaware = _all_histories(protocol, "keyaware")
    assert keyaware.verdict == reference.verdict
    per_key = lambda hs: {part for h in hs for part in key_projection(protocol, h)}  # noqa: E731
    assert per_key(keyaware.histories) == per_key(reference.histories)


def test_key_aware_reduction_commutes_receives_on_different_keys_and_stays_sound():
    protocol = build("register", "erroneous", replicas=2, keys=2, writes=2, reads=2)
    reference = _all_histories(protocol, "dfs")
    dpor = _all_histories(protocol, "dpor")
    keyaware = _all_histories(protocol, "keyaware")
    assert keyaware.schedules < dpor.schedules
    per_key = lambda hs: {part for h in hs for part in key_projection(protocol, h)}  # noqa: E731
    assert per_key(keyaware.histories) == per_key(reference.histories) == per_key(dpor.histories)


def test_dpor_explores_faults_soundly():
    protocol = ping(faults=Faults(drops=1, duplicates=1))
    reference = _all_histories(protocol, "dfs")
    for strategy in ("dpor", "transdpor", "keyaware"):
        reduced = _all_histories(protocol, strategy)
        assert reduced.histories == reference.histories and reduced.schedules < explore(protocol, "exhaustive").schedules


def test_dpor_finds_every_bug_that_dfs_finds():
    for variant in ("switch-before-ready", "stop-before-drain", "per-instance-switch", "ack-before-switch"):
        dfs = explore("reconfig", "dfs", variant=variant, shrink_counterexample=False)
        dpor = explore("reconfig", "dpor", variant=variant, shrink_counterexample=False)
        assert dfs.violated and dpor.violated and dpor.violation.name == dfs.violation.name, variant


# ---------------------------------------------------------------------------------------------
# verdicts and budgets


def test_a_complete_strategy_on_a_correct_protocol_says_ok_and_reports_what_it_explored():
    result = explore("reconfig", "dpor")
    assert result.ok and result.complete and result.violation is None and result.reason == ""
    assert result.schedules > 0 and result.states > 0 and result.distinct_histories > 0
    json.dumps(result.to_json())  # one JSON-ready object


def test_a_schedule_budget_hit_is_unknown_never_ok():
    result = explore("reconfig", "dfs", max_schedules=3)
    assert result.verdict == UNKNOWN and not result.complete
    assert result.schedules == 3 and "schedule budget of 3 spent" in result.reason


def test_a_time_budget_hit_is_unknown_never_ok():
    result = explore("register", "exhaustive", variant="abd", max_time=0.2)
    assert result.verdict == UNKNOWN and "time budget spent" in result.reason


def test_a_depth_bound_that_cuts_schedules_is_unknown():
    result = explore("reconfig", "dfs", depth=5)
    assert result.verdict == UNKNOWN and "depth 5" in result.reason


@pytest.mark.parametrize("strategy", ["random", "pct"])
def test_sampling_strategies_never_say_ok(strategy):
    result = explore("reconfig", strategy, max_schedules=50)
    assert result.verdict == UNKNOWN and f"{strategy} is not exhaustive" in result.reason


def test_delay_bounding_is_complete_when_the_bound_never_cuts_a_choice():
    assert explore(ping(), "delay-bounded", delay_bound=5).ok
    cut = explore("reconfig", "delay-bounded", delay_bound=1)
    assert cut.verdict == UNKNOWN and "within 1 delays" in cut.reason


def test_a_seed_fixes_a_random_walk_and_pct():
    for strategy in ("random", "pct"):
        a = explore("register", strategy, variant="erroneous", seed=11, max_schedules=500)
        b = explore("register", strategy, variant="erroneous", seed=11, max_schedules=500)
        assert a.verdict == b.verdict and a.first_violation_at == b.first_violation_at
        if a.violated:
            assert a.violation.found == b.violation.found


def test_pct_reports_its_probability_bound():
    result = explore("reconfig", "pct", variant="correct", max_schedules=20, bug_depth=2, depth=40)
    # one change point: 1 / (n k) with n channels and k = 40 steps
    assert result.pct_bound is not None and 0 < result.pct_bound <= 1 / 40


def test_every_strategy_finds_the_ack_before_switch_bug_within_a_small_budget():
    for strategy in STRATEGIES:
        result = explore("reconfig", strategy, variant="ack-before-switch", max_schedules=20_000, seed=1)
        assert result.violated, strategy
        assert result.violation.kind == "linearizability" and result.first_violation_at >= 1


def test_bad_arguments_are_errors_naming_the_value():
    with pytest.raises(ExploreError, match="unknown strategy 'bogus'"):
        explore("reconfig", "bogus")
    with pytest.raises(ExploreError, match="max_schedules must be an integer >= 1, not 0"):
        explore("reconfig", "dfs", max_schedules=0)
    with pytest.raises(ExploreError, match="max_time must be a positive, finite number of seconds, not -1"):
        explore("reconfig", "dfs", max_time=-1)
    with pytest.raises(ExploreError, match="injects no faults"):
        explore(ping(faults=Faults(drops=1)), "pct")


# ---------------------------------------------------------------------------------------------
# counterexamples


def test_a_counterexample_is_shrunk_to_a_valid_schedule_that_still_violates():
    result = explore("reconfig", "dfs", variant="per-instance-switch")
    v = result.violation
    assert len(v.schedule) < len(v.found)
    again = replay(build("reconfig", "per-instance-switch"), v.schedule)
    assert again.violation is not None and again.violation[1] == v.name


def test_a_shrunk_counterexample_is_one_minimal():
    protocol = build("reconfig", "ack-before-switch")
    v = explore(protocol, "dfs").violation
    for i in range(len(v.schedule)):
        shorter = v.schedule[:i] + v.schedule[i + 1:]
        try:
            rr = replay(protocol, shorter)
        except ExploreError:
            continue  # not a valid schedule any more
        assert rr.violation is None


def test_shrink_needs_a_schedule_that_violates():
    protocol = build("reconfig", "correct")
    with pytest.raises(ExploreError, match="shows no violation"):
        shrink(protocol, [])


def test_a_violation_carries_the_history_and_why_it_is_not_linearizable():
    v = explore("register", "dpor", variant="erroneous").violation
    assert v.kind == "linearizability" and v.name == "linearizable (register)"
    assert v.check.illegal and any("cannot be linearized" in line for line in v.explanation)
    assert v.history.model == "register"


def test_a_replay_file_reproduces_the_counterexample_step_by_step(tmp_path):
    protocol = build("reconfig", "stop-before-drain", clients=2, batches=1)
    v = explore(protocol, "dpor").violation
    path = write_replay(tmp_path / "bug.json", protocol, v.schedule, v, strategy="dpor")
    loaded, schedule, obj = read_replay(path)
    assert obj["schema"] == "packrat.replay/1" and obj["violation"]["name"] == v.name
    assert (loaded.name, loaded.variant, loaded.params) == (protocol.name, protocol.variant, protocol.params)
    rr = replay(loaded, schedule)
    assert rr.verdict == VIOLATION and rr.violation[1] == v.name
    assert [s.event for s in rr.steps] == list(v.schedule)
    assert rr.history == v.history


def test_a_replay_file_with_an_impossible_delivery_is_refused_naming_the_step(tmp_path):
    protocol = build("reconfig", "correct")
    path = write_replay(tmp_path / "bad.json", protocol, [Event("deliver", "controller", "c0", ("result", 9, (0,), "x"))])
    loaded, schedule, _ = read_replay(path)
    with pytest.raises(ExploreError, match="step 1 .* cannot be replayed"):
        replay(loaded, schedule)


def test_reading_a_replay_file_names_what_is_wrong(tmp_path):
    with pytest.raises(ExploreError, match="cannot read replay file"):
        read_replay(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "other/1"}')
    with pytest.raises(ExploreError, match="schema 'other/1'"):
        read_replay(bad)
    bad.write_text('{"schema": "packrat.replay/1", "protocol": "paxos", "deliveries": []}')
    with pytest.raises(ExploreError, match="unknown protocol 'paxos'"):
        read_replay(bad)


# ---------------------------------------------------------------------------------------------
# regressions: states are told apart by value, quiescent checks survive fault budgets


@dataclass(frozen=True)
class Sender(Actor):
    message: str

    def on_start(self):
        return 0, ([Send("s", (self.message,))] if self.message else [])

    def on_msg(self, state, src, msg):
        return state, [Send(src, ("pong",))]


@dataclass(frozen=True)
class OrderServer(Actor):
    """Ends in -1 (a before b) or -2 (b before a), states whose hashes are equal in CPython;
    only the -2 branch is bad once the ping from z is answered."""

    def on_start(self):
        return (), []

    def on_msg(self, state, src, msg):
        if msg[0] in ("a", "b"):
            seen = state + (msg[0],)
            if len(seen) < 2:
                return seen, []
            return (-1 if seen[0] == "a" else -2), [Send("z", ("ping",))]
        if msg[0] == "pong":
            return ("bad" if state == -2 else "ok"), []
        return state, []


def _b_before_a(system, state):
    return "b was delivered before a" if system.state_of(state, "s") == "bad" else None


@pytest.mark.parametrize("strategy", ["dfs", "exhaustive", "dpor", "transdpor", "keyaware"])
def test_two_states_with_equal_hashes_are_still_two_states(strategy):
    assert hash(-1) == hash(-2)
    system = System([("x", Sender("a")), ("y", Sender("b")), ("z", Sender("")), ("s", OrderServer())])
    protocol = Protocol("order", "v", (), system, "register", (Invariant("a first", _b_before_a),))
    result = explore(protocol, strategy)
    assert result.violated and result.violation.message == "b was delivered before a"


@dataclass(frozen=True)
class Swallower(Actor):
    def on_start(self):
        return 0, []

    def on_msg(self, state, src, msg):
        return state + 1, []  # never answers


@pytest.mark.parametrize("faults", [Faults(), Faults(crashes=1), Faults(crashes=1, restarts=1), Faults(drops=1)],
                         ids=["none", "crash", "crash-restart", "drop"])
@pytest.mark.parametrize("strategy", ["dfs", "exhaustive", "dpor", "random"])
def test_a_quiescent_invariant_is_checked_where_nothing_can_be_delivered_even_when_faults_remain(strategy, faults):
    system = System([("c", Pinger()), ("server", Swallower())], faults=faults)
    protocol = Protocol("swallow", "v", (), system, "register",
                        (Invariant("every operation returns", all_operations_return, quiescent=True),))
    result = explore(protocol, strategy, max_schedules=200)
    assert result.violated and result.violation.name == "every operation returns"
