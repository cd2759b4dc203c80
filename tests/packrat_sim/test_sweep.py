"""Sweeps: grids and ladders, one deterministic row per run, resumable output, failures kept apart."""

from __future__ import annotations

import csv
import json
import os

import pytest

from packrat_sim import sweep as sw
from packrat_sim.engines import LocalEngine, SerialEngine

WORKLOAD = "poisson:rate=100..300/100,duration=1s,max_batch=8"
AXES = ["profile=builtin:cnn-4", "cores=4", f"workload={WORKLOAD}", "policy=packrat,fat", "seed=0,1"]


def small_grid(*extra: str) -> sw.Grid:
    return sw.load_grid(None, [*AXES, *extra])


# ---- ladders and grids


def test_a_ladder_runs_from_low_to_high_inclusive_by_its_step():
    assert sw.ladder_values("50..800/50") == [str(x) for x in range(50, 801, 50)]
    assert sw.ladder_values("0..3") == ["0", "1", "2", "3"]
    assert sw.ladder_values("0.5..1.5/0.5") == ["0.5", "1", "1.5"]
    assert sw.ladder_values("50..150/50/s") == ["50/s", "100/s", "150/s"]
    assert sw.ladder_values("100/s") is None


@pytest.mark.parametrize("bad, why", [("5..1", "below"), ("1..5/0", "step"), ("0..1e9/1", "points")])
def test_a_bad_ladder_is_rejected_naming_it(bad, why):
    with pytest.raises(sw.SweepError, match=why):
        sw.ladder_values(bad)


def test_ladders_in_a_workload_spec_multiply_and_keep_the_other_options():
    specs = sw.expand_workload("poisson:rate=50..150/50,duration=1..2,max_batch=8")
    assert len(specs) == 6 == sw.workload_count("poisson:rate=50..150/50,duration=1..2,max_batch=8")
    assert specs[0] == "poisson:rate=50,duration=1,max_batch=8"
    assert specs[-1] == "poisson:rate=150,duration=2,max_batch=8"


def test_axis_strings_keep_the_commas_of_workload_specs():
    name, values = sw.parse_axis("workload=poisson:rate=1,duration=2s,closed:batch=8,requests=64")
    assert name == "workload" and values == ["poisson:rate=1,duration=2s", "closed:batch=8,requests=64"]
    assert sw.parse_axis("seeds=0,1,2") == ("seed", ["0", "1", "2"])


def test_policy_values_keep_their_option_items_and_are_validated():
    name, values = sw.parse_axis("policy=fat,packrat:window_ms=1000,confirmations=3,packrat-ewma")
    assert values == ["fat", "packrat:window_ms=1000,confirmations=3", "packrat-ewma"]
    assert sw.load_grid(None, [*AXES[:3], "policy=" + ",".join(values)]).policies == tuple(values)
    with pytest.raises(sw.SweepError, match="axis 'policy'"):
        sw.load_grid(None, [*AXES[:3], "policy=packrat:no_such_option=1"])


def test_a_policy_with_options_runs_with_them():
    task = lambda pol: sw.RunTask.of(sw.RunParams("builtin:cnn-4", 4, "steps:50/s@3s,400/s@3s,max_batch=8", pol, 0),
                                     sw.load_profile_spec("builtin:cnn-4"))
    plain = sw.run_one(task("packrat"))
    tuned = sw.run_one(task("packrat:confirmations=1,payback_ms=100000000"))
    assert plain["status"] == tuned["status"] == "ok" and tuned["policy"].startswith("packrat:")
    assert (plain["p99_ms"], plain["reconfigurations"]) != (tuned["p99_ms"], tuned["reconfigurations"])


def test_grid_size_counts_ladders_without_expanding_them():
    grid = small_grid()
    assert grid.size() == 1 * 1 * 3 * 2 * 2 == len(list(sw.expand(grid)))
    assert sw.load_grid(None, [*AXES[:3], "seed=0..99999"]).size() == 3 * 3 * 100_000


def test_grids_read_from_toml_and_json_files_are_the_same(tmp_path):
    toml = tmp_path / "g.toml"
    toml.write_text('profile = "builtin:cnn-4"\ncores = [4]\nworkload = ["%s"]\npolicy = ["packrat", "fat"]\nseed = "0..1"\n' % WORKLOAD)
    js = tmp_path / "g.json"
    js.write_text(json.dumps({"grid": {"profile": ["builtin:cnn-4"], "cores": 4, "workload": WORKLOAD,
                                       "policy": ["packrat", "fat"], "seed": [0, 1]}}))
    assert sw.load_grid(str(toml)) == sw.load_grid(str(js)) == small_grid()


def test_an_axis_given_as_a_string_replaces_the_files_axis(tmp_path):
    js = tmp_path / "g.json"
    js.write_text(json.dumps({"profile": "builtin:cnn-4", "cores": 4, "workload": WORKLOAD, "seed": [0, 1, 2]}))
    assert sw.load_grid(str(js), ["seed=7"]).seeds == (7,)


def test_missing_axes_default_to_every_policy_and_seed_zero():
    grid = sw.load_grid(None, AXES[:3])
    from packrat_sim.simulator import POLICIES

    assert grid.policies == tuple(POLICIES) and grid.seeds == (0,)


@pytest.mark.parametrize(
    "axes, message",
    [
        (["colour=red", *AXES], "unknown axis 'colour'"),
        (AXES[:2], "no 'workload' axis"),
        ([*AXES[:4], "seed="], "empty grid: axis 'seed'"),
        ([*AXES[:3], "policy=greedy"], "unknown policy 'greedy'"),
        (["profile=builtin:cnn-4", "cores=four", f"workload={WORKLOAD}"], "'four' is not an integer"),
        (["profile=builtin:cnn-4", "cores=4", "workload=poisson:speed=3"], "unknown option 'speed'"),
        ([], "empty grid"),
    ],
)
def test_bad_grids_are_rejected_naming_the_bad_value(axes, message):
    with pytest.raises(sw.SweepError, match=message):
        sw.load_grid(None, axes)


def test_run_ids_are_distinct_per_run_and_change_with_any_parameter():
    runs = list(sw.expand(small_grid()))
    assert len({r.run_id for r in runs}) == len(runs)
    base = sw.RunParams("builtin:cnn-4", 4, "poisson:rate=1,duration=1s", "fat", 0)
    from dataclasses import replace

    variants = [replace(base, profile="builtin:cnn-8"), replace(base, cores=8), replace(base, workload="poisson:rate=2,duration=1s"),
                replace(base, policy="thin"), replace(base, seed=1)]
    assert len({v.run_id for v in variants} | {base.run_id}) == 6
    assert base.run_id == sw.RunParams("builtin:cnn-4", 4, "poisson:rate=1,duration=1s", "fat", 0).run_id


# ---- rows


def test_a_row_carries_the_parameters_latency_throughput_utilisation_and_reconfigurations():
    params = sw.RunParams("builtin:cnn-4", 4, "poisson:rate=200,duration=1s,max_batch=8", "packrat", 3)
    row = sw.run_one(sw.RunTask.of(params, sw.load_profile_spec("builtin:cnn-4")))
    assert set(row) == set(sw.COLUMNS)
    assert row["status"] == "ok" and row["offered_per_s"] == 200.0 and row["seed"] == 3
    assert 0 < row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"] <= row["max_ms"]
    assert row["throughput_per_s"] > 0 and 0 < row["utilisation"] <= 1 and row["reconfigurations"] >= 0
    assert row["requests"] > 0 and row["plan"]


def test_a_run_the_simulator_rejects_is_a_failed_row_naming_why():
    params = sw.RunParams("builtin:cnn-4", 64, "poisson:rate=100,duration=1s", "fat", 0)
    row = sw.run_one(sw.RunTask.of(params, sw.load_profile_spec("builtin:cnn-4")))
    assert row["status"] == "failed" and row["error"] and row["p99_ms"] is None


def test_the_same_grid_gives_the_same_rows_on_the_serial_and_the_local_engine(tmp_path):
    grid = small_grid()
    serial = sw.run_sweep(grid, str(tmp_path / "serial"), SerialEngine())
    with LocalEngine(2) as engine:
        local = sw.run_sweep(grid, str(tmp_path / "local"), engine)
    assert serial.rows == local.rows and len(serial.rows) == grid.size()
    assert (tmp_path / "serial" / "results.csv").read_text() == (tmp_path / "local" / "results.csv").read_text()


def test_the_table_is_tidy_csv_in_grid_order_and_reads_back_equal(tmp_path):
    grid = small_grid()
    result = sw.run_sweep(grid, str(tmp_path), SerialEngine())
    with open(tmp_path / "results.csv", newline="") as fh:
        lines = list(csv.DictReader(fh))
    assert list(lines[0]) == list(sw.COLUMNS)
    assert [line["run_id"] for line in lines] == [p.run_id for p in sw.expand(grid, sw.grid_digests(grid))]
    assert sw.read_rows(str(tmp_path / "results.csv")) == list(result.rows)
    assert json.loads((tmp_path / "grid.json").read_text())["seed"] == [0, 1]


def test_parquet_is_written_beside_the_csv_when_pyarrow_imports(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    sw.run_sweep(small_grid(), str(tmp_path), SerialEngine())
    table = pq.read_table(tmp_path / "results.parquet")
    assert table.num_rows == small_grid().size() and table.column_names == list(sw.COLUMNS)


class CountingEngine(SerialEngine):
    def __init__(self):
        self.tasks = 0

    def map(self, fn, tasks, retries=1):
        self.tasks += len(tasks)
        return super().map(fn, tasks, retries)


def test_a_rerun_into_the_same_directory_skips_the_rows_already_there(tmp_path):
    first = CountingEngine()
    sw.run_sweep(sw.load_grid(None, [*AXES[:4], "seed=0"]), str(tmp_path), first)
    second = CountingEngine()
    result = sw.run_sweep(small_grid(), str(tmp_path), second)
    assert first.tasks == 6 and second.tasks == 6 and result.skipped == 6 and result.ran == 6
    assert len(result.rows) == 12


def test_an_interrupted_sweep_keeps_the_rows_it_wrote_and_a_truncated_line_is_ignored(tmp_path):
    grid = small_grid()
    calls = []

    def stop_after_five(progress):
        calls.append(progress.done)
        if progress.done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sw.run_sweep(grid, str(tmp_path), SerialEngine(), progress=stop_after_five)
    assert len(sw.read_rows(str(tmp_path / "results.csv"))) == 5
    with open(tmp_path / "results.csv", "a") as fh:
        fh.write("deadbeef,builtin:cnn-4,4,half a li")  # killed mid-write
    engine = CountingEngine()
    result = sw.run_sweep(grid, str(tmp_path), engine)
    assert engine.tasks == grid.size() - 5 and len(result.rows) == grid.size()
    assert all(r["status"] == "ok" for r in result.rows)


def test_failed_runs_get_a_row_the_rest_finishes_and_a_rerun_retries_only_them(tmp_path):
    grid = sw.load_grid(None, ["profile=builtin:cnn-4", "cores=4,64", "workload=poisson:rate=100,duration=1s", "policy=fat", "seed=0"])
    result = sw.run_sweep(grid, str(tmp_path), SerialEngine())
    assert [r["status"] for r in result.rows] == ["ok", "failed"] and result.failed == 1
    engine = CountingEngine()
    again = sw.run_sweep(grid, str(tmp_path), engine)
    assert engine.tasks == 1 and len(again.rows) == 2


def test_a_dead_worker_gives_a_failed_row_after_one_retry_and_the_others_finish(tmp_path):
    class DyingEngine(SerialEngine):  # an engine reporting what LocalEngine reports for a twice-dead worker
        def map(self, fn, tasks, retries=1):
            from packrat_sim.engines import Outcome

            for o in super().map(fn, tasks, retries):
                yield o if o.index != 2 else Outcome(2, False, None, "worker died (signal 9) on each of 2 attempt(s)", 2)

    result = sw.run_sweep(small_grid(), str(tmp_path), DyingEngine())
    statuses = [r["status"] for r in result.rows]
    assert statuses.count("failed") == 1 and statuses[2] == "failed" and "worker died" in result.rows[2]["error"]


def test_progress_reports_every_run_with_an_eta(tmp_path):
    seen = []
    sw.run_sweep(small_grid(), str(tmp_path), SerialEngine(), progress=seen.append)
    assert [p.done for p in seen] == list(range(13)) and seen[0].eta_s is None and seen[-1].eta_s == 0.0
    assert sw.eta_s(1, 3, 2.0) == 4.0


def test_an_output_path_that_is_a_file_is_rejected(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(sw.SweepError, match="not a directory"):
        sw.run_sweep(small_grid(), str(f), SerialEngine())


# ---- summaries


def _row(workload, policy, seed, p99, load=100.0):
    return {"status": "ok", "profile": "p", "cores": 4, "workload": workload, "policy": policy, "seed": seed,
            "p99_ms": p99, "p50_ms": p99 / 2, "offered_per_s": load, "plan": f"plan-{policy}"}


def test_the_best_plan_per_cell_is_the_lowest_median_p99_over_seeds():
    rows = [_row("w", "fat", 0, 10.0), _row("w", "fat", 1, 50.0), _row("w", "fat", 2, 60.0),
            _row("w", "thin", 0, 40.0), _row("w", "thin", 1, 41.0), _row("w", "thin", 2, 42.0)]
    (best,) = sw.best_per_cell(rows)
    assert best["best_policy"] == "thin" and best["best_p99_ms"] == 41.0
    assert best["runner_up"] == "fat" and best["runner_up_p99_ms"] == 50.0 and best["plan"] == "plan-thin"


def test_the_best_plan_per_cell_lists_workloads_by_offered_load_numerically_not_as_text():
    rows = [_row(f"poisson:rate={r}", "fat", 0, 10.0, float(r)) for r in (100, 150, 200, 50)]
    rows.append({**_row("closed:batch=8", "fat", 0, 10.0), "offered_per_s": float("nan")})
    order = [b["workload"] for b in sw.best_per_cell(rows)]
    assert order == ["poisson:rate=50", "poisson:rate=100", "poisson:rate=150", "poisson:rate=200", "closed:batch=8"]


def test_capacity_curves_are_sorted_by_load_per_policy_and_skip_failed_rows():
    rows = [_row("a", "fat", 0, 30.0, 300.0), _row("b", "fat", 0, 10.0, 100.0),
            {**_row("c", "fat", 0, 99.0, 200.0), "status": "failed"}]
    assert sw.capacity_curves(rows) == {("p", 4, "fat"): [(100.0, 10.0), (300.0, 30.0)]}


def test_offered_load_is_the_mean_arrival_rate():
    from packrat_sim.workload import parse_workload

    assert sw.offered_per_s(parse_workload("steps:100/s@10s,300/s@10s")) == 200.0
    assert sw.offered_per_s(parse_workload("diurnal:base=20/s,peak=200/s,period=60s,duration=120s")) == 110.0
    assert sw.offered_per_s(parse_workload("closed:batch=8,requests=64")) != sw.offered_per_s(parse_workload("closed:batch=8,requests=64"))


def test_a_sweep_output_directory_under_a_missing_parent_is_refused_naming_it(tmp_path):
    from packrat_sim.sweep import SweepError, prepare_out_dir

    with pytest.raises(SweepError, match="does not exist"):
        prepare_out_dir(str(tmp_path / "missing" / "out"))
    prepare_out_dir(str(tmp_path / "out"))
    assert (tmp_path / "out").is_dir()


# ---- issue 27: calibrated by default, isolated on request, and the no-co-run line


def _thin_row(spec: str, isolated: bool = False) -> dict:
    params = sw.RunParams(spec, 4, "poisson:rate=100,duration=1s,max_batch=8", "thin", 0, isolated)
    return sw.run_one(sw.RunTask.of(params, sw.load_profile_spec(spec)))


def test_a_row_says_how_its_run_was_priced():
    assert _thin_row("builtin:cnn-4")["corun"] == "none"
    assert _thin_row("builtin:cnn-4+interference")["corun"] == "calibrated"
    assert _thin_row("builtin:cnn-4+interference", isolated=True)["corun"] == "isolated"


def test_a_calibrated_run_is_slower_than_the_same_run_isolated_and_predicts_so():
    cal, iso = _thin_row("builtin:cnn-4+interference"), _thin_row("builtin:cnn-4+interference", isolated=True)
    assert cal["p50_ms"] > iso["p50_ms"] and cal["predicted_ms"] > iso["predicted_ms"]
    assert iso["predicted_ms"] == pytest.approx(_thin_row("builtin:cnn-4")["predicted_ms"])


def test_isolated_runs_have_their_own_run_ids_and_calibrated_ones_keep_theirs():
    base = sw.RunParams("builtin:cnn-4", 4, "poisson:rate=1,duration=1s", "fat", 0)
    from dataclasses import replace

    assert replace(base, isolated=True).run_id != base.run_id
    import hashlib

    before = json.dumps(["builtin:cnn-4", 4, "poisson:rate=1,duration=1s", "fat", 0])  # the key before co-run models
    assert base.run_id == hashlib.sha1(before.encode()).hexdigest()[:16]
    grid = replace(small_grid(), isolated=True)
    assert all(p.isolated for p in sw.expand(grid)) and grid.to_json()["isolated"] is True
    assert "isolated" not in small_grid().to_json()


def test_corun_notes_name_the_profiles_whose_multi_instance_runs_had_no_corun_data():
    from packrat_sim.predictor import ISOLATED_NOTE, NO_CORUN_NOTE

    rows = [_thin_row("builtin:cnn-4"), _thin_row("builtin:cnn-4+interference"),
            _thin_row("builtin:cnn-4+interference", isolated=True)]
    assert sw.corun_notes(rows) == [f"{NO_CORUN_NOTE} (builtin:cnn-4)", f"{ISOLATED_NOTE} (builtin:cnn-4+interference)"]
    fat = dict(rows[0], plan="1 x 4t x 8", reconfigurations=0)
    assert sw.corun_notes([fat]) == []
