"""Exploration split over workers: the same verdict and distinct histories as one process."""

from __future__ import annotations

import pytest

from checker.explore import OK, VIOLATION, explore, replay
from checker.explore.split import (
    Options,
    ProtocolRef,
    SplitError,
    explore_split,
    frontier,
    merge,
    run_job,
    walk_jobs,
)
from checker.protocols import PROTOCOLS
from packrat_sim.engines import LocalEngine, SerialEngine

SMALL = {"register": {"replicas": 3, "reads": 1}, "reconfig": {}}


def split_now(*args, **kwargs):
    """:func:`explore_split` that splits at once (no first slice in this process): these tests
    are about the split itself."""
    return explore_split(*args, split_after_s=0, **kwargs)
# every shipped protocol and variant, with dpor and (except abd, 8 s here) dfs
CASES = [(name, variant, strategy) for name, spec in PROTOCOLS.items() for variant in spec.variants
         for strategy in ("dfs", "dpor") if not (variant == "abd" and strategy == "dfs")]


@pytest.mark.slow
@pytest.mark.parametrize("name, variant, strategy", CASES)
def test_a_subtree_split_has_the_verdict_and_histories_of_the_single_process_run(name, variant, strategy):
    params = SMALL[name]
    single = explore(name, strategy, variant=variant, params=params, collect_histories=True, stop_on_violation=False,
                     shrink_counterexample=False)
    split = split_now(name, strategy, SerialEngine(), variant=variant, params=params, workers=2,
                          frontier_depth=2, shrink=False)
    assert split.jobs >= 1 and split.frontier_depth == 2
    assert split.result.verdict == single.verdict
    if single.verdict is OK:
        assert split.result.histories == single.histories
        assert split.result.distinct_histories == single.distinct_histories


def test_a_split_over_two_worker_processes_agrees_with_one_process():
    single = explore("register", "dfs", variant="majority", params=SMALL["register"], collect_histories=True)
    with LocalEngine(2) as engine:
        split = split_now("register", "dfs", engine, variant="majority", params=SMALL["register"])
    assert single.verdict is OK and split.result.verdict is OK
    assert split.result.histories == single.histories and split.workers == 2 and split.engine == "local"


def test_a_violation_found_in_a_subtree_is_shrunk_and_replays_from_the_initial_state():
    split = split_now("register", "dfs", SerialEngine(), variant="erroneous", frontier_depth=3)
    result = split.result
    assert result.verdict is VIOLATION and result.violation is not None
    protocol = ProtocolRef("register", "erroneous").build()
    assert not replay(protocol, result.violation.schedule).check.ok


def test_the_frontier_checks_the_states_above_it_and_hands_each_frontier_state_out_once():
    protocol = ProtocolRef("register", "majority", tuple(sorted(SMALL["register"].items()))).build()
    shallow, deeper = frontier(protocol, "dfs", 1), frontier(protocol, "dfs", 3)
    assert 1 <= len(shallow.prefixes) <= len(deeper.prefixes)
    assert all(len(p) == 3 for p in deeper.prefixes) and len(set(deeper.prefixes)) == len(deeper.prefixes)
    assert deeper.above.states >= shallow.above.states > 0 and deeper.above.found is None


def test_a_walk_split_equals_its_batches_run_one_after_the_other():
    ref = ProtocolRef("register", "erroneous")
    jobs = walk_jobs(ref, "random", jobs=4, seed=7, max_schedules=202)
    assert [j.seed for j in jobs] == [7, 8, 9, 10] and [j.schedules for j in jobs] == [51, 51, 50, 50]
    one_by_one = merge(ref.build(), "random", [run_job(j) for j in jobs], seed=7, elapsed_s=0.0)
    with LocalEngine(2) as engine:
        split = split_now("register", "random", engine, variant="erroneous", jobs=4,
                              seed=7, max_schedules=202).result
    assert split.verdict == one_by_one.verdict and split.histories == one_by_one.histories
    assert split.schedules == one_by_one.schedules and split.violation.schedule == one_by_one.violation.schedule


def test_walks_never_say_ok():
    split = split_now("register", "random", SerialEngine(), variant="majority", params=SMALL["register"],
                          max_schedules=40)
    assert split.result.verdict is not OK and "not exhaustive" in split.result.reason


def test_a_job_that_fails_makes_the_verdict_unknown_never_ok():
    class Failing(SerialEngine):
        def map(self, fn, tasks, retries=1):
            from packrat_sim.engines import Outcome

            for o in super().map(fn, tasks, retries):
                yield o if o.index else Outcome(0, False, None, "worker died (signal 9) on each of 2 attempt(s)", 2)

    split = split_now("register", "dfs", Failing(), variant="majority", params=SMALL["register"], frontier_depth=2)
    assert split.result.verdict is not OK and "worker died" in split.result.reason and split.failures


@pytest.mark.parametrize(
    "kwargs, message",
    [({"strategy": "delay-bounded"}, "cannot be split"), ({"strategy": "dfs", "frontier_depth": 0}, "frontier depth"),
     ({"strategy": "dfs", "max_schedules": 10}, "no global schedule budget")],
)
def test_bad_split_requests_are_rejected_naming_the_value(kwargs, message):
    with pytest.raises(SplitError, match=message):
        split_now("register", engine=SerialEngine(), variant="majority", params=SMALL["register"], **kwargs)


def test_a_search_done_within_the_first_slice_is_answered_by_this_process_without_a_split():
    single = explore("register", "dfs", variant="majority", params=SMALL["register"], collect_histories=True)
    split = explore_split("register", "dfs", SerialEngine(), variant="majority", params=SMALL["register"], workers=2)
    assert split.jobs == 0 and split.frontier_depth is None
    assert (split.result.verdict, split.result.schedules, split.result.states) == (single.verdict, single.schedules,
                                                                                  single.states)


def test_a_violation_found_within_the_first_slice_is_the_answer_shrunk_as_in_one_process():
    single = explore("reconfig", "dpor", variant="ack-before-switch")
    split = explore_split("reconfig", "dpor", SerialEngine(), variant="ack-before-switch", workers=2)
    assert split.jobs == 0 and split.result.verdict is VIOLATION
    assert split.result.violation.schedule == single.violation.schedule


def test_a_search_longer_than_the_first_slice_is_split():
    split = explore_split("register", "dfs", SerialEngine(), variant="majority", params=SMALL["register"], workers=2,
                          split_after_s=1e-9)
    assert split.jobs > 0 and split.result.verdict is OK
