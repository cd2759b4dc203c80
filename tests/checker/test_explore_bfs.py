"""Breadth-first search (checker.explore.bfs): the states, transitions, schedules, histories and
violations of plain stateful DFS, on the shipped protocols and on pseudo-random actor systems;
and a first counterexample that is a shortest one, unshrunk, of the depth that a depth-bounded
exhaustive search shows to be the least."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import assume, given, settings

from checker.explore import OK, UNKNOWN, VIOLATION, explore, replay
from checker.protocols import PROTOCOLS, build
from tests.checker.explore_helpers import ONE_FAULT_BUDGETS, REDUCED_SECONDS, everything, plain_dfs, random_protocol, random_system_args

SMALL = {"register": {"replicas": 2, "reads": 1}, "reconfig": {"clients": 1, "batches": 1}}
BIG_VARIANTS = ("ds2", "ds2-erroneous", "abd")  # larger state spaces: covered by the random systems


def shipped():
    for name, spec in PROTOCOLS.items():
        for variant in spec.variants:
            if variant in BIG_VARIANTS:
                continue
            params = dict(SMALL[name])
            if variant == "per-instance-switch":
                params["instances"] = 2
            yield pytest.param(name, variant, params, id=f"{name}-{variant}")


def counts(result) -> tuple:
    return result.states, result.transitions, result.schedules, result.distinct_histories


def safety(result) -> frozenset:
    """The invariant and linearizability violations (not the properties', which only some
    strategies judge)."""
    return frozenset(v for v in result.violations if v[0] in ("invariant", "linearizability"))


@pytest.mark.parametrize("name, variant, params", list(shipped()))
def test_bfs_takes_the_states_transitions_and_schedules_of_plain_dfs_on_every_shipped_protocol(name, variant, params):
    protocol = replace(build(name, variant, **params), properties=())  # (no pending properties in the nodes)
    reference = plain_dfs(protocol)
    bfs = everything(protocol, "bfs", symmetry=False)
    assert reference.complete and bfs.complete
    assert counts(bfs) == counts(reference)
    assert bfs.histories == reference.histories and bfs.violations == reference.violations
    assert bfs.verdict == reference.verdict


@pytest.mark.parametrize("name, variant, params", list(shipped()))
def test_bfs_with_properties_and_symmetry_keeps_the_histories_and_violations_of_plain_dfs(name, variant, params):
    protocol = build(name, variant, **params)
    reference = plain_dfs(protocol)
    bfs = everything(protocol, "bfs")
    assert bfs.complete and bfs.histories == reference.histories
    assert safety(bfs) == safety(reference)


@settings(max_examples=25, deadline=None)
@given(**random_system_args(faults=ONE_FAULT_BUDGETS, commuting=False))
def test_bfs_visits_exactly_what_plain_dfs_visits_on_random_systems(seed, nodes, clients, ttl, network, faults):
    protocol = random_protocol(seed, nodes, clients, ttl, network, faults)
    reference = plain_dfs(protocol)
    assume(reference.complete)
    bfs = everything(protocol, "bfs", max_time=REDUCED_SECONDS)
    assert bfs.complete
    assert counts(bfs) == counts(reference)
    assert bfs.histories == reference.histories and bfs.violations == reference.violations


# variant -> (bfs's counterexample depth, plain dfs's shrunk one, the violated property)
SHORTEST = {
    "switch-before-ready": (4, 8, "no instance receives work before it is ready"),
    "stop-before-drain": (7, 11, "no instance is stopped while it holds work"),
    "per-instance-switch": (11, 17, "all sub-batches of one batch run in one epoch"),
    "ack-before-switch": (12, 12, "linearizable (serving)"),
    "drop-batch": (10, 14, "every batch is answered exactly once"),
}


@pytest.mark.parametrize("variant", list(SHORTEST))
def test_bfs_finds_a_counterexample_no_longer_than_dfs_shrinks_to_and_never_shrinks_it(variant):
    depth, dfs_depth, name = SHORTEST[variant]
    bfs = explore("reconfig", "bfs", variant=variant)
    dfs = explore("reconfig", "dfs", variant=variant)
    assert bfs.violation is not None and dfs.violation is not None
    assert bfs.verdict is VIOLATION and bfs.violation.name == dfs.violation.name == name
    assert len(bfs.violation.schedule) == len(bfs.violation.found) == depth  # as found: no shrinking
    assert bfs.to_json()["counterexample_depth"] == depth
    assert len(dfs.violation.schedule) == dfs_depth >= depth
    replayed = replay(build("reconfig", variant), bfs.violation.schedule).violation
    assert replayed is not None and replayed[1] == name


@pytest.mark.parametrize("variant", ["switch-before-ready", "stop-before-drain", "ack-before-switch", "drop-batch"])
def test_no_schedule_shorter_than_bfss_counterexample_shows_a_violation(variant):
    # exhaustive search up to a depth bound follows every schedule of that length: the true minimum
    depth = SHORTEST[variant][0]
    protocol = build("reconfig", variant)
    shorter = explore(protocol, "exhaustive", depth=depth - 1, shrink_counterexample=False)
    as_long = explore(protocol, "exhaustive", depth=depth, shrink_counterexample=False)
    assert shorter.verdict is UNKNOWN and shorter.violation is None
    assert as_long.verdict is VIOLATION and as_long.violation is not None and len(as_long.violation.found) == depth


def test_bfs_judges_histories_as_it_goes_so_a_non_linearizable_register_is_caught_in_5_steps_not_8():
    bfs = explore("register", "bfs", variant="erroneous")
    dfs = explore("register", "dfs", variant="erroneous")
    assert bfs.violation is not None and dfs.violation is not None
    assert bfs.violation.kind == dfs.violation.kind == "linearizability"
    assert len(bfs.violation.schedule) == 5 and (len(dfs.violation.schedule), len(dfs.violation.found)) == (8, 13)
    shorter = explore("register", "exhaustive", variant="erroneous", depth=4, shrink_counterexample=False)
    assert shorter.violation is None  # no schedule of 4 steps shows it: 5 is the least


def test_bfs_proves_the_correct_reconfiguration_protocol_with_pinned_counts():
    result = explore("reconfig", "bfs")
    assert result.verdict is OK and result.complete
    assert (result.states, result.transitions, result.schedules, result.distinct_histories) == (170, 317, 153, 5)


def test_bfs_within_a_depth_bound_is_unknown_and_says_the_schedules_were_cut():
    result = explore("reconfig", "bfs", depth=5)
    assert result.verdict is UNKNOWN and not result.complete
    assert "cut at depth 5" in result.reason


def test_the_cli_reports_bfss_counterexample_as_a_shortest_one(cli, tmp_path):
    code, out, _ = cli("explore", "--protocol", "reconfig", "--variant", "switch-before-ready", "--strategy", "bfs",
                       "--out-replay", str(tmp_path / "r.json"))
    assert code == 1
    assert "schedule   4 deliveries (bfs: a shortest counterexample, not shrunk)" in out
