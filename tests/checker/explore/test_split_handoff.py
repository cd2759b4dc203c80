"""A DPOR-family search split where it stands: the first slice's open backtrack points (and
the state cache it built) go to the workers instead of a restart from the initial state."""

from __future__ import annotations

import multiprocessing
from collections import Counter

import pytest

from checker.explore import OK, VIOLATION, Reductions, explore, replay
from checker.explore.harness import Run
from checker.explore.split import (
    Options,
    ProtocolRef,
    dpor_search,
    dpor_slice,
    explore_split,
    export_entries,
    handoff_split,
    import_entries,
    SHARE_MIN_TRANSITIONS,
    merge,
    worth_sharing,
)
from checker.protocols import PROTOCOLS
from packrat_sim.engines import LocalEngine, SerialEngine

# every shipped protocol and variant but abd (15 s or more in one process: benchmarks/explore_split.py)
VARIANTS = [(name, variant) for name, spec in PROTOCOLS.items() for variant in spec.variants if variant != "abd"]
STATELESS = Options(reductions=Reductions(symmetry=False, state_cache=False))


class MapOnly:
    """An engine without ``feed`` (as the Ray one): the hand-off runs in rounds."""

    name = "map-only"
    workers = 1

    def map(self, fn, tasks, retries=1):
        return SerialEngine().map(fn, tasks, retries)


def handed_off(ref: ProtocolRef, steps: int, job_seconds: float | None, options: Options = Options(),
               engine=None):
    """The merged result of a hand-off after ``steps`` steps of the first slice, its jobs run in
    this process (``job_seconds=0``: every job hands its stack back after 64 steps; ``engine``:
    the serial one, whose ``feed`` takes jobs as they come, by default)."""
    parts, failures, jobs, _ = handoff_split(ref, "dpor", engine or SerialEngine(), options, seconds=None,
                                             steps=steps, job_seconds=job_seconds)
    assert not failures
    return merge(ref.build(), "dpor", parts, seed=None, elapsed_s=0.0, options=options, shrink=False), jobs


@pytest.mark.parametrize("name, variant", VARIANTS)
@pytest.mark.parametrize("steps, job_seconds, engine", [(3, None, None), (40, None, None), (10, 0.0, None),
                                                      (10, 0.0, MapOnly())])
def test_a_handed_off_search_has_the_verdict_and_histories_of_one_process(name, variant, steps, job_seconds,
                                                                          engine):
    single = explore(name, "dpor", variant=variant, collect_histories=True, shrink_counterexample=False)
    result, _ = handed_off(ProtocolRef(name, variant), steps, job_seconds, engine=engine)
    assert result.verdict == single.verdict
    if single.verdict is OK:
        assert result.histories == single.histories


@pytest.mark.parametrize("name, variant, params", [("register", "majority", (("reads", 1), ("replicas", 3))),
                                                   ("reconfig", "correct", ())])
@pytest.mark.parametrize("steps, job_seconds", [(0, None), (3, 0.0), (20, None), (100, 0.0)])
@pytest.mark.parametrize("engine", [SerialEngine(), MapOnly()], ids=["fed", "rounds"])
def test_the_hand_off_explores_every_schedule_of_one_process_exactly_once(monkeypatch, name, variant, params, steps,
                                                                         job_seconds, engine):
    ended: list = []
    finish = Run.finish

    def record(run, state, path, terminal):
        ended.append(tuple(path))
        return finish(run, state, path, terminal)

    monkeypatch.setattr(Run, "finish", record)
    ref = ProtocolRef(name, variant, params)
    dpor_slice(ref.build(), "dpor", STATELESS, None)
    single = Counter(ended)
    ended.clear()
    handed_off(ref, steps, job_seconds, STATELESS, engine)
    split = Counter(ended)
    assert max(split.values()) == 1 and set(split) == set(single)


def test_the_workers_resume_the_search_instead_of_redoing_the_first_slice():
    ref = ProtocolRef("register", "majority")
    single = explore("register", "dpor", variant="majority")
    result, jobs = handed_off(ref, 200, None)
    assert jobs > 1 and result.verdict is OK
    # a restart from the initial state (the old split) explored several times the schedules
    assert result.schedules <= 1.2 * single.schedules


def test_a_violation_found_by_a_worker_is_shrunk_and_replays_from_the_initial_state():
    split = handed_off(ProtocolRef("register", "erroneous"), 5, 0.0)[0]
    assert split.verdict is VIOLATION and split.violation is not None
    assert not replay(ProtocolRef("register", "erroneous").build(), split.violation.schedule).check.ok


def test_explore_split_resumes_a_dpor_search_longer_than_its_first_slice_over_two_processes():
    single = explore("register", "dpor", variant="majority", collect_histories=True)
    with LocalEngine(2) as engine:
        split = explore_split("register", "dpor", engine, variant="majority", workers=2, split_after_s=1e-9)
    assert split.jobs > 1 and split.frontier_depth is None
    assert split.result.verdict is OK and split.result.histories == single.histories


def _rekeyed_in_this_process(records) -> tuple[int, int, int]:
    """In a spawned process: import ``records`` into a fresh search, and count those that
    re-key to a state this process's own complete search has in its cache (with the same
    summary, renamed), and the states whose envelopes rebuild the same network."""
    ref = ProtocolRef("register", "majority")
    own, _ = dpor_slice(ref.build(), "dpor", Options(), None)
    fresh = dpor_search(Run(ref.build(), None, None, None, 10.0, True), "dpor")
    imported = import_entries(fresh, records)
    same = sum(1 for key, entry in fresh.table.items()
               if key in own.table and own.table[key].summary == entry.summary)
    system = own.system
    rebuilt = sum(1 for (_, envs, _, _), _, _ in records if tuple(system.in_flight(
        own.run.system.initial()._replace(network=system.network_of(envs)))) == envs)
    return imported, same, rebuilt


def test_state_cache_entries_exported_here_rekey_to_the_same_states_in_a_spawned_process():
    ref = ProtocolRef("register", "majority")  # symmetric: processes may pick other representatives
    search, _ = dpor_slice(ref.build(), "dpor", Options(), None)
    records = export_entries(search, list(search.table))
    assert len(records) == len(search.table) > 100
    with multiprocessing.get_context("spawn").Pool(1) as pool:  # a fresh interpreter: another hash seed
        imported, same, rebuilt = pool.apply(_rekeyed_in_this_process, (records,))
    assert imported == same == rebuilt == len(records)


def test_a_split_done_within_its_first_slice_reports_the_properties_one_process_does():
    single = explore("reconfig", "dpor")
    split = explore_split("reconfig", "dpor", SerialEngine(), workers=2)
    assert split.jobs == 0 and single.properties
    assert [(p.name, p.outcome) for p in split.result.properties] == [(p.name, p.outcome) for p in single.properties]


def test_an_engine_that_takes_work_as_it_comes_gets_the_jobs_in_one_round_and_another_in_several():
    ref = ProtocolRef("register", "majority")
    fed = handoff_split(ref, "dpor", SerialEngine(), Options(), seconds=None, steps=10, job_seconds=0.0)
    rounds = handoff_split(ref, "dpor", MapOnly(), Options(), seconds=None, steps=10, job_seconds=0.0)
    assert fed[2] > 10 and fed[3] == 1
    assert rounds[2] > 10 and rounds[3] > 1


def test_a_closed_state_records_the_transitions_its_exploration_took():
    search, part = dpor_slice(ProtocolRef("register", "majority").build(), "dpor", Options(), None)
    works = [entry.work for entry in search.table.values()]
    assert max(works) == part.transitions  # the initial state: the whole search
    assert min(works) >= 1  # (a state with nothing to explore is never entered)


def test_only_the_entries_of_states_with_big_subtrees_are_shared():
    search, _ = dpor_slice(ProtocolRef("register", "majority").build(), "dpor", Options(), None)
    shared = worth_sharing(search.table, list(search.table))
    assert 0 < len(shared) < len(search.table) / 2
    assert all(search.table[key].work >= SHARE_MIN_TRANSITIONS for key in shared)
    assert all(search.table[key].work < SHARE_MIN_TRANSITIONS for key in set(search.table) - set(shared))


def test_a_worker_keeps_its_cache_out_of_the_collectors_sight_between_jobs_of_one_search():
    with LocalEngine(1) as engine:
        outcomes = sorted(engine.map(_freeze_counts, ["a", "a", "b"]), key=lambda o: o.index)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    (a0, a1), (a2, a3), (b0, b1) = (o.value for o in outcomes)
    assert a0 == 0 and a1 > 0  # frozen after the job
    assert a2 > 0 and a3 > 0  # the next job of the same search finds it still frozen
    assert b0 == 0 and b1 > 0  # a new search releases the last one's first


def _freeze_counts(search: str) -> tuple[int, int]:
    """In a worker: the objects frozen when a hand-off job of search ``search`` has found its
    shared cache, and after the job."""
    import gc

    from checker.explore.split import Handoff, Job, _shared, run_handoff

    ref = ProtocolRef("register", "majority")
    first = dpor_slice(ref.build(), "dpor", Options(), None, steps=0)[0].frames[0].enabled[0]
    handoff = Handoff((), (frozenset(),), (frozenset(),), frozenset(), (first,))
    job = Job(1, ref, "dpor", Options(), search=search, handoff=handoff, store="", seconds=None)
    _shared(job)
    opened = gc.get_freeze_count()
    run_handoff(job)
    return opened, gc.get_freeze_count()


def test_the_dpor_family_splits_after_a_second_and_dfs_after_five_unless_told(monkeypatch):
    from checker.explore import split

    seen = []
    monkeypatch.setattr(split, "_handed_off", lambda ref, strategy, engine, options, seconds, *a: seen.append(seconds))
    monkeypatch.setattr(split, "first_slice", lambda built, strategy, options, seconds, shrink: seen.append(seconds))
    monkeypatch.setattr(split, "auto_depth", lambda *a: (_ for _ in ()).throw(split.SplitError("stop here")))
    explore_split("reconfig", "dpor", SerialEngine())
    explore_split("reconfig", "dpor", SerialEngine(), split_after_s=3.0)
    with pytest.raises(split.SplitError, match="stop here"):
        explore_split("reconfig", "dfs", SerialEngine())
    assert seen == [split.SPLIT_AFTER_S, 3.0, split.SUBTREE_SPLIT_AFTER_S] == [1.0, 3.0, 5.0]


def test_a_job_run_in_the_callers_process_leaves_what_is_frozen_there_alone():
    import gc

    from checker.explore.split import Job, _shared

    gc.freeze()  # as the checker's reaper does while a big cache waits to be freed
    try:
        assert gc.get_freeze_count() > 0
        _shared(Job(1, ProtocolRef("register", "majority"), "dpor", Options(), search="a search of its own"))
        assert gc.get_freeze_count() > 0  # (unfreezing empties it; objects freed meanwhile only lower it)
    finally:
        gc.unfreeze()
