"""The profiler measures real cells in a pinned worker, loses nothing, and resumes."""

from __future__ import annotations

import io
import json

import pytest
from rr_helpers import ALLOWED, needs_two_cpus

from packrat_sim.profile import ProfileError, read_profile
from real_runner.profiling import (
    ProfilingError,
    ProfilingProgress as Progress,
    co_run_levels,
    flag_outliers,
    measure_profile,
    parse_int_list,
    powers_of_two_upto,
)
from real_runner.topology import TopologyError

THREADS = [1, 2] if len(ALLOWED) >= 2 else [1]


class Stop(Exception):
    pass


@pytest.fixture(scope="module")
def interrupted_then_resumed(tmp_path_factory):
    """Profile tiny-mlp, fail after the second cell, then run the same command again with
    one more batch size and the interference sweep."""
    out = str(tmp_path_factory.mktemp("prof") / "tiny.json")
    seen = []

    def stop_after_two(cell, index, total):
        seen.append((cell.threads, cell.batch))
        if index == 1:
            raise Stop

    with pytest.raises(Stop):
        measure_profile("tiny-mlp", THREADS, [1, 2], 3, out=out, min_seconds=0.02, on_cell=stop_after_two,
                        interference=False)
    partial = read_profile(out)
    resumed = measure_profile("tiny-mlp", THREADS, [1, 2, 4], 3, out=out, min_seconds=0.02, interference=True)
    return out, seen, partial, resumed


def test_an_error_midway_keeps_every_cell_measured_before_it(interrupted_then_resumed):
    _, seen, partial, _ = interrupted_then_resumed
    assert seen == [(1, 1), (1, 2)]
    assert [(c.threads, c.batch) for c in partial.cells] == seen
    assert dict(partial.meta)["runner.complete"] == "false"


def test_running_again_measures_only_the_missing_cells(interrupted_then_resumed):
    out, _, partial, resumed = interrupted_then_resumed
    expected = {(t, b) for t in THREADS for b in (1, 2, 4)}
    assert set(resumed.resumed) == {(1, 1), (1, 2)}
    assert set(resumed.measured) == expected - {(1, 1), (1, 2)}
    final = read_profile(out)
    assert {(c.threads, c.batch) for c in final.cells} == expected
    assert final.cell(1, 1).samples_ms == partial.cell(1, 1).samples_ms  # kept as measured


def test_a_measured_profile_records_samples_medians_and_the_machine(interrupted_then_resumed):
    out, _, _, _ = interrupted_then_resumed
    prof = read_profile(out)
    assert prof.statistic == "median" and not prof.synthetic and prof.model == "tiny-mlp"
    for c in prof.cells:
        assert len(c.samples_ms) >= 3 and c.min_ms <= c.median_ms <= c.max_ms
    m = prof.machine.to_json()
    assert m["logical_cores"] == len(ALLOWED) and m["torch_version"].startswith("2.")
    assert m["parallel_backend"] and m["interop_threads"] == "1"
    assert dict(prof.meta)["runner.runtime"] == "eager" and dict(prof.meta)["runner.complete"] == "true"


def test_a_corrupted_partial_profile_is_refused_and_left_untouched(tmp_path):
    out = tmp_path / "broken.json"
    out.write_text('{"schema": "packrat.profile/1", "model": "tiny-mlp", "cells": [{"threads": 1')
    with pytest.raises(ProfileError, match="cannot resume from .*broken.json: it is not a readable profile"):
        measure_profile("tiny-mlp", [1], [1], 3, out=str(out), interference=False)
    assert out.read_text().endswith('"threads": 1')


def test_resuming_into_a_profile_of_another_model_is_refused(interrupted_then_resumed):
    out = interrupted_then_resumed[0]
    with pytest.raises(ProfileError, match="holds a profile of 'tiny-mlp', not 'tiny-cnn'"):
        measure_profile("tiny-cnn", [1], [1], 3, out=out, interference=False)


@needs_two_cpus
def test_the_interference_sweep_stores_a_slowdown_beside_other_busy_cores(interrupted_then_resumed):
    out, _, _, resumed = interrupted_then_resumed
    interf = read_profile(out).interference
    assert interf is not None and interf.points[0][0] == 1 and interf.slowdown(1) >= 1.0
    assert interf.fit_error is not None and interf.fit_error >= 0.0
    assert resumed.interference_measured
    meta = dict(resumed.profile.meta)
    assert "t=1 b=" in meta["interference.probe"] and json.loads(meta["interference.raw"])[0][0] == 1


def test_threads_beyond_the_allowed_cpus_are_refused_before_measuring():
    with pytest.raises(TopologyError, match=f"threads {len(ALLOWED) + 1} is beyond"):
        measure_profile("tiny-mlp", [len(ALLOWED) + 1], [1], 3, interference=False)


def test_grids_parse_from_lists_and_ranges():
    assert parse_int_list("1-3,8", "--threads") == [1, 2, 3, 8]
    assert powers_of_two_upto(12) == [1, 2, 4, 8]
    for bad in ("0", "x", "3-1", ""):
        with pytest.raises(ProfilingError):
            parse_int_list(bad, "--batches")


def test_outliers_are_far_from_the_median_in_robust_units():
    assert flag_outliers([10.0, 10.2, 9.9, 10.1, 25.0]) == [4]
    assert flag_outliers([10.0, 11.0, 12.0, 10.5]) == []  # within 20 % of the median
    assert flag_outliers([1.0, 100.0]) == []  # too few samples to judge


def test_the_co_run_sweep_covers_one_two_powers_of_two_and_the_maximum():
    assert co_run_levels(1) == [1]
    assert co_run_levels(2) == [1, 2]
    assert co_run_levels(12) == [1, 2, 4, 8, 12]


def test_progress_is_silent_unless_enabled_and_gives_an_eta_once_work_is_done():
    quiet = io.StringIO()
    Progress(10, 2, enabled=False, stream=quiet).update("t=1 b=1", units=5, busy_s=1.0, done=True)
    assert quiet.getvalue() == ""
    loud = io.StringIO()
    p = Progress(10, 2, enabled=True, stream=loud)
    p.update("t=1 b=1", units=5, busy_s=2.0, done=True)
    assert "1/2 cells" in loud.getvalue() and "ETA 2s" in loud.getvalue() and p.eta_s() == pytest.approx(2.0)


def test_cells_are_timed_through_pools_with_every_sample_kept_and_their_conditions(interrupted_then_resumed):
    out, _, _, _ = interrupted_then_resumed
    prof = read_profile(out)
    for c in prof.cells:
        ctx = dict(c.context)
        assert ctx["dispatch_ms"] >= 0.0 and "loadavg_1m" in ctx
    assert {(k, b) for k, b, _ in prof.dispatch} >= {(1, 1), (1, 2), (1, 4)}
    assert prof.machine.to_json()["omp_wait_policy"] in ("default", "passive", "bounded")
    assert not any(k.startswith("outliers.") and '"remeasured"' in v for k, v in prof.meta)


@needs_two_cpus
def test_the_co_run_sweep_also_measures_the_dispatch_cost_of_several_instances(interrupted_then_resumed):
    prof = read_profile(interrupted_then_resumed[0])
    assert any(k >= 2 for k, _, _ in prof.dispatch)


def test_a_profile_killed_after_its_last_cell_is_finished_by_a_rerun(tmp_path):
    # issue 18.10: every cell written but "complete": false (killed before the final write)
    from packrat_sim.profile import Cell, Profile, write_profile
    from real_runner.topology import detect

    out = str(tmp_path / "killed.json")
    topo = detect()
    cell = Cell.from_samples(1, 1, [1.0, 1.1, 0.9])
    killed = Profile(model="tiny-mlp", cells=(cell,), machine=topo.machine(), statistic="median",
                     meta=(("runner.complete", "false"), ("runner.jit", "false")))
    write_profile(killed, out)
    result = measure_profile("tiny-mlp", [1], [1], 3, out=out, interference=False)
    assert result.measured == () and result.resumed == ((1, 1),)
    again = read_profile(out)
    assert dict(again.meta)["runner.complete"] == "true" and again.cell(1, 1).samples_ms == (1.0, 1.1, 0.9)


def test_replica_pools_pool_their_samples_into_one_cell_and_say_so(tmp_path):
    result = measure_profile("tiny-mlp", [1], [1, 2], 4, interference=False, replicas=2, min_seconds=0.0)
    cells = {(c.threads, c.batch): c for c in result.profile.cells}
    assert set(cells) == {(1, 1), (1, 2)} and all(len(c.samples_ms) == 4 for c in cells.values())
    assert dict(result.profile.meta)["runner.replicas"] == "2" and "2 one-instance pools" in result.profile.source
    with pytest.raises(ProfilingError, match="replicas must be a positive integer, got 0"):
        measure_profile("tiny-mlp", [1], [1], 3, interference=False, replicas=0)


def test_merged_pool_samples_keep_every_batch_in_order_and_the_worst_run_queue_wait():
    from real_runner.profiling import PoolSamples, merge_samples

    a = PoolSamples((1.0, 2.0), ((0.5,), (1.5,)), (("loadavg_1m", 1.0), ("runq_wait_ms_per_batch", 0.1)))
    b = PoolSamples((3.0,), ((2.5,),), (("loadavg_1m", 2.0), ("runq_wait_ms_per_batch", 0.3)))
    m = merge_samples([a, b])
    assert m.end_to_end_ms == (1.0, 2.0, 3.0) and m.worker_ms == ((0.5,), (1.5,), (2.5,))
    assert dict(m.context) == {"loadavg_1m": 1.5, "runq_wait_ms_per_batch": 0.3}
