"""IRed and DPIRed (``--strategy ired`` / ``dpired``): the enabler rule picks the first receive
of a race's creation chain, the counts are pinned on DS2's register benchmark and on small
pseudo-random systems where the rule changes the search, and a subtree split agrees with one
process."""

from __future__ import annotations

import pytest

from checker.actors import Event
from checker.explore import OK, explore
from checker.explore.dpor import Facts
from checker.explore.harness import Run
from checker.explore.ired import IRed
from checker.explore.split import SUBTREE_STRATEGIES, explore_split
from checker.protocols import build
from packrat_sim.engines import SerialEngine
from tests.checker.explore_helpers import everything, plain_dfs, random_protocol


def step(pid, creator: int) -> Facts:
    """The facts of a delivery of process ``pid`` to actor ``a`` whose message was sent by trace
    entry ``creator`` (-1: in flight from the initial state)."""
    return Facts(pid, Event("deliver", "b", "a", pid), "a", None, False, False, False, False, creator)


def search_with_trace(*trace: Facts) -> IRed:
    """An IRed search (of any protocol: only its trace is read) whose trace is ``trace``."""
    search = IRed(Run(build("reconfig", "correct"), None, None, None, None, False), True, False)
    search.trace = list(trace)
    return search


def test_the_backtrack_point_is_the_first_receive_of_the_chain_that_sent_the_racing_message():
    # entry 1 (in flight at frames[0]) sent (1, 0); its delivery (entry 2) sent (2, 0), which races with entry 0
    search = search_with_trace(step((-1, 0), -1), step((-1, 1), -1), step((1, 0), 1))
    racing = step((2, 0), 2)
    assert search.enabler(None, [(-1, 2), (-1, 1)], racing, 0) == (-1, 1)


def test_the_racing_receive_itself_is_chosen_when_it_was_already_in_flight_in_the_racing_state():
    search = search_with_trace(step((-1, 0), -1), step((-1, 1), -1))
    racing = step((-1, 2), -1)
    assert search.enabler(None, [(-1, 1), (-1, 2)], racing, 0) == (-1, 2)


def test_the_default_choice_stands_when_the_chains_first_receive_is_not_a_candidate():
    # asleep or disabled in the racing state: not among the candidates
    search = search_with_trace(step((-1, 0), -1), step((-1, 1), -1), step((1, 0), 1))
    assert search.enabler(None, [(-1, 2)], step((2, 0), 2), 0) is None
    # the chain starts with a message the racing step itself sent: never enabled before it
    search = search_with_trace(step((-1, 0), -1), step((0, 0), 0), step((1, 0), 1))
    assert search.enabler(None, [(-1, 2)], step((2, 0), 2), 0) is None


@pytest.mark.parametrize("strategy", ["ired", "dpired"])
def test_ds2s_register_is_proved_with_all_44_histories_in_112_schedules_where_ds2s_ired_needs_2906(strategy):
    result = everything("register", strategy, variant="ds2")
    assert result.ok and result.complete
    assert result.schedules == 112 and result.distinct_histories == 44
    assert result.histories == everything("register", "exhaustive", variant="ds2").histories
    assert everything("register", strategy, variant="ds2", local_commutation=False).schedules == 285


@pytest.mark.parametrize("strategy", ["ired", "dpired"])
def test_ds2s_erroneous_register_breaks_at_schedule_6_and_keeps_every_history_of_exhaustive_search(strategy):
    first = explore("register", strategy, variant="ds2-erroneous", shrink_counterexample=False)
    assert first.violated and first.violation.kind == "linearizability"
    assert first.first_violation_at == 6
    full = everything("register", strategy, variant="ds2-erroneous")
    reference = everything("register", "exhaustive", variant="ds2-erroneous")
    assert full.complete and full.schedules == 54
    assert full.histories == reference.histories and full.violations == reference.violations


# small systems where the rule changes which backtrack point stateful DPOR takes: (system, counts
# of dpor, dpired, transdpor, ired). The rule is a different choice, not always a better one.
RULE_CHANGES = [
    ((513701, 1, 2, 2, "fifo", {}, False), (12, 11, 12, 11)),
    ((216757, 1, 2, 1, "unordered", {}, True), (33, 32, 33, 32)),
    ((601659, 1, 2, 2, "unordered", {}, False), (46, 47, 46, 47)),
]


@pytest.mark.parametrize("system, counts", RULE_CHANGES, ids=["fifo-fewer", "unordered-fewer", "unordered-more"])
def test_the_enabler_rule_changes_the_schedules_of_small_systems_and_keeps_their_histories(system, counts):
    protocol = random_protocol(*system)
    reference = plain_dfs(protocol)
    runs = {s: everything(protocol, s) for s in ("dpor", "dpired", "transdpor", "ired")}
    assert tuple(r.schedules for r in runs.values()) == counts
    for label, run in runs.items():
        assert run.histories == reference.histories and run.violations == reference.violations, label


@pytest.mark.parametrize("strategy", ["ired", "dpired", "dpliviola"])
def test_a_subtree_split_of_the_new_dpor_strategies_has_the_verdict_and_histories_of_one_process(strategy):
    assert strategy in SUBTREE_STRATEGIES
    single = explore("register", strategy, variant="ds2", collect_histories=True, stop_on_violation=False,
                     shrink_counterexample=False)
    split = explore_split("register", strategy, SerialEngine(), variant="ds2", workers=2, frontier_depth=2,
                          shrink=False, split_after_s=0)
    assert split.jobs >= 1
    assert single.verdict is OK and split.result.verdict is OK
    assert split.result.histories == single.histories
