"""Soundness of IRed, DPIRed and DPLiViola: on every shipped protocol and variant (with and
without small fault budgets) and on pseudo-random actor systems, each finds exactly the distinct
histories (DPLiViola: per key) and the violated properties that plain stateful DFS finds."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings

from checker.protocols import build
from tests.checker.explore_helpers import (
    REDUCED_SECONDS,
    everything,
    plain_dfs,
    random_protocol,
    random_system_args,
)
from tests.checker.test_explore_reductions import instances, per_key

# label -> (strategy, explore's switches, compared per key)
IRED_RUNS = {
    "stateful ired": ("ired", {}, False),
    "stateful dpired": ("dpired", {}, False),
    "stateless dpired": ("dpired", {"state_cache": False}, False),
    "stateful dpliviola": ("dpliviola", {}, True),
}


def assert_like_plain_dfs(protocol, reference, label: str, strategy: str, switches: dict, keyed: bool) -> None:
    """``strategy`` with ``switches`` over ``protocol`` completes and finds what ``reference``
    (plain DFS) found: the same distinct histories (``keyed``: the same per-key projections) and
    the same violated properties."""
    run = everything(protocol, strategy, max_time=REDUCED_SECONDS, **switches)
    assert run.complete, label
    if keyed:
        assert per_key(protocol, run.histories) == per_key(protocol, reference.histories), label
    else:
        assert run.histories == reference.histories, label
    assert run.violations == reference.violations, label


@pytest.mark.parametrize("name, variant, params", list(instances()))
def test_ired_dpired_and_dpliviola_find_the_histories_and_violations_of_plain_dfs(name, variant, params):
    protocol = build(name, variant, **params)
    reference = everything(protocol, "dfs", symmetry=False, sleep_sets=False)
    assert reference.complete
    for label, (strategy, switches, keyed) in IRED_RUNS.items():
        if protocol.system.faults.any and "state_cache" in switches:
            continue  # (stateless DPOR with faults is the slow part: reliable only)
        assert_like_plain_dfs(protocol, reference, label, strategy, switches, keyed)


@settings(max_examples=60, deadline=None)
@given(**random_system_args())
def test_ired_dpired_and_dpliviola_find_the_histories_and_violations_of_plain_dfs_on_random_systems(
        seed, nodes, clients, ttl, network, faults, commuting):
    protocol = random_protocol(seed, nodes, clients, ttl, network, faults, commuting)
    reference = plain_dfs(protocol)
    assume(reference.complete)
    for label, (strategy, switches, keyed) in IRED_RUNS.items():
        if faults and "state_cache" in switches:
            continue  # (stateless DPOR with faults is the slow part)
        assert_like_plain_dfs(protocol, reference, label, strategy, switches, keyed)
