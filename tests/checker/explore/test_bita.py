"""Bita (``--strategy bita``): ordering goals counted by hand on tiny systems, the seeded bugs
found within a small budget, the same schedules for the same seed, and never an OK."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from checker.actors import Actor, Event, Send, System
from checker.explore import OK, UNKNOWN, ExploreError, Reductions, explore
from checker.explore.bita import bita, reordered
from checker.explore.harness import Run, Stop
from checker.protocols import PROTOCOLS, Protocol
from tests.checker.actor_helpers import Echo, Pinger


def pings(clients: int) -> Protocol:
    """``clients`` clients ping one stateless server at start and read its pong."""
    actors = [(f"c{i}", Pinger()) for i in range(clients)] + [("server", Echo())]
    return Protocol("pings", "default", (), System(actors), "register")


@dataclass(frozen=True)
class Asker(Actor):
    """Pings every server at start and counts the pongs (their replies: blocking receives)."""

    servers: tuple[str, ...] = ("s0", "s1")

    def on_start(self):
        return 0, [Send(s, ("ping",)) for s in self.servers]

    def on_msg(self, state, src, msg):
        return state + 1, []


def fan_out() -> Protocol:
    """One actor asks two servers; the two replies reach it in either order."""
    return Protocol("fan-out", "default", (), System([("asker", Asker()), ("s0", Echo()), ("s1", Echo())]),
                    "register")


def coverage(protocol, criterion: str, schedules: int):
    return explore(protocol, "bita", bita_criterion=criterion, max_schedules=schedules, seed=3).coverage


# ---------------------------------------------------------------------------------------------
# goals counted by hand


def test_one_schedule_of_three_pings_finds_both_orders_of_every_pair_and_covers_half():
    # the server receives three pings sent at start, in some order x, y, z: no ping is caused by
    # another, so each of the 3 pairs gives 2 goals (pr: 6), of which the schedule took 3; pcr
    # relates the consecutive pairs only (x, y) and (y, z): 4 goals, 2 taken; every pong reaches
    # its own client (one receive each: no pair), and no ping is a reply: pbr finds no goal
    pr = coverage(pings(3), "pr", 1)
    assert (pr.goals, pr.covered, pr.aimed) == (6, 3, 0)
    pcr = coverage(pings(3), "pcr", 1)
    assert (pcr.goals, pcr.covered, pcr.aimed) == (4, 2, 0)
    pbr = coverage(pings(3), "pbr", 1)
    assert (pbr.goals, pbr.covered) == (0, 0) and pbr.fraction is None


def test_aiming_at_the_uncovered_goals_covers_every_order_of_three_pings():
    # pr, after x y z: targets (y, x), (z, x), (z, y); the schedule for (y, x) is y x z, the one
    # for (z, x) is z x y, which also takes (z, y): 2 schedules aimed, both reached, 6 of 6
    pr = coverage(pings(3), "pr", 20)
    assert (pr.goals, pr.covered, pr.aimed, pr.reached) == (6, 6, 2, 2)
    # pcr, after x y z: targets (y, x), (z, y); y x z takes (y, x) and finds (x, z) with its
    # reverse (z, x); x z y takes (z, y); y z x takes (z, x): 3 aimed, 6 of 6
    pcr = coverage(pings(3), "pcr", 20)
    assert (pcr.goals, pcr.covered, pcr.aimed, pcr.reached) == (6, 6, 3, 3)
    assert pcr.fraction == 1.0 and len(pcr.covered_goals) == 6


def test_blocking_receives_are_the_replies_an_actor_waits_for():
    # the asker's two pongs answer its own pings (blocking) and can come in either order: pbr
    # has the same 2 goals as pr; one schedule covers one, the next aims at the other
    one = coverage(fan_out(), "pbr", 1)
    assert (one.goals, one.covered) == (2, 1)
    full = coverage(fan_out(), "pbr", 10)
    assert (full.goals, full.covered, full.aimed, full.reached) == (2, 2, 1, 1)
    assert {tuple(g) for g in full.covered_goals} == {
        ("s0 -> asker: pong(None)", "s1 -> asker: pong(None)"),
        ("s1 -> asker: pong(None)", "s0 -> asker: pong(None)"),
    }
    assert coverage(fan_out(), "pr", 10).goals == 2


def test_a_message_caused_by_an_earlier_receive_gives_no_goal():
    # one client: its pong is caused by its ping, and the client receives nothing else
    assert coverage(pings(1), "pr", 10).goals == 0


def test_the_schedule_aimed_at_a_goal_swaps_the_pair_and_keeps_what_the_later_receive_depends_on():
    a, b, c, d, e = (Event("deliver", "x", name, ("m",)) for name in "abcde")
    # swap positions 1 and 3; step 2 is in the causal past of step 3's message, step 4 is not
    assert reordered([a, b, c, d, e], 1, 3, 1 << 2) == [a, c, d, b, e]


# ---------------------------------------------------------------------------------------------
# bugs, seeds, verdicts


@pytest.mark.parametrize("criterion", ["pr", "pcr", "pbr"])
def test_bita_finds_every_seeded_bug_of_the_shipped_protocols_within_a_small_budget(criterion):
    for spec in PROTOCOLS.values():
        for variant in spec.buggy_variants:
            result = explore(spec.name, "bita", variant=variant, bita_criterion=criterion, seed=0,
                             max_schedules=300, shrink_counterexample=False)
            assert result.violated, (spec.name, variant, criterion)


class _Recording(Run):
    """A run that keeps every schedule it finishes."""

    def __init__(self, protocol, schedules: int):
        super().__init__(protocol, schedules, None, None, 10.0, True, Reductions())
        self.paths: list[tuple] = []

    def finish(self, state, path, terminal):
        self.paths.append(tuple(path))
        super().finish(state, path, terminal)


def _schedules(seed: int) -> list[tuple]:
    from checker.protocols import build

    run = _Recording(build("reconfig", "correct", clients=2), 40)
    with pytest.raises(Stop):
        bita(run, seed, "pcr")
    return run.paths


def test_the_same_seed_gives_the_same_schedules():
    first = _schedules(5)
    assert len(first) == 40 and first == _schedules(5)
    assert first != _schedules(6)


def test_bita_never_says_ok_even_when_every_goal_is_covered():
    result = explore(pings(3), "bita", max_schedules=50)
    assert result.coverage.covered == result.coverage.goals == 6
    assert result.verdict == UNKNOWN and not result.complete and result.verdict != OK
    assert "bita is not exhaustive" in result.reason and result.seed == 0
    correct = explore("reconfig", "bita", variant="correct", max_schedules=200)
    assert correct.verdict == UNKNOWN and correct.coverage.covered >= 1


def test_the_result_reports_the_coverage_in_json():
    obj = explore(fan_out(), "bita", bita_criterion="pbr", max_schedules=5).to_json()
    assert obj["coverage"]["criterion"] == "pbr"
    assert (obj["coverage"]["goals"], obj["coverage"]["covered"], obj["coverage"]["coverage"]) == (2, 2, 1.0)
    assert explore(fan_out(), "random", max_schedules=5).to_json()["coverage"] is None


def test_a_bad_criterion_is_an_error_naming_it():
    with pytest.raises(ExploreError, match="bita criterion must be one of pr, pcr, pbr, not 'prc'"):
        explore("reconfig", "bita", bita_criterion="prc")


@dataclass(frozen=True)
class TwoPings(Actor):
    """Sends two pings to ``server`` at start, on one channel."""

    def on_start(self):
        return 0, [Send("server", ("ping", 1)), Send("server", ("ping", 2))]

    def on_msg(self, state, src, msg):
        return state + 1, []


def test_two_messages_of_one_channel_can_be_swapped_only_on_an_unordered_network():
    def two_pings(network: str) -> Protocol:
        return Protocol("two-pings", network, (), System([("c", TwoPings()), ("server", Echo())], network=network),
                        "register")

    # the server's two pings give both orders as goals; the client's two pongs are equal messages
    assert coverage(two_pings("unordered"), "pr", 10).goals == 2
    assert coverage(two_pings("fifo"), "pr", 10).goals == 0
