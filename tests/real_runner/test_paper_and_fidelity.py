"""benchmarks/paper.py runs with only torch/numpy/typer (no simpy, z3, streamlit), and the
fidelity report puts the error beside the measured noise floor (issue 14)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from real_runner.bench import BenchError, interleaved_schedule, measure_fidelity, noise_floor_pct
from tests.real_runner.rr_helpers import runs_with_imports_blocked
from ui.cli.app import main

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import paper  # noqa: E402


def test_the_paper_benchmark_imports_nothing_beyond_torch_numpy_and_typer():
    ok, err = runs_with_imports_blocked(("simpy", "z3", "streamlit", "plotly"), """
        sys.argv = ['paper.py', '--help']
        import runpy
        from packrat_sim.predictor import Predictor, best_plan
        from real_runner.profiling import measure_profile
        from real_runner.executor import compare_with_fat
        runpy.run_path('benchmarks/paper.py', run_name='not_main')
        print('ok')
    """)
    assert ok, err


def test_paper_batches_parse_as_lists_or_power_of_two_ranges_and_threads_default_to_powers_and_t():
    assert paper.parse_list("1-64", "--batches") == [1, 2, 4, 8, 16, 32, 64]
    assert paper.parse_list("3,1,3", "--batches") == [1, 3]
    assert paper.default_threads(12) == [1, 2, 4, 8, 12]
    with pytest.raises(SystemExit):
        paper.parse_list("0", "--batches")


def test_the_paper_table_lists_measured_rows_and_names_what_was_not_measured():
    row = {"model": "gpt2", "batch": 8, "plan": "2 x 8t x 4", "fat_ms": 40.0, "plan_ms": 20.0, "speedup": 2.0,
           "predicted_speedup": 1.8}
    md = paper.to_markdown([row], ["gpt2 batch 64: not measured (time budget)"], 16, "16 CPUs", "bounded")
    assert "| gpt2 | 8 | 2 x 8t x 4 | 40.00 | 20.00 | 2.00x | 1.80x |" in md
    assert "Not measured:" in md and "gpt2 batch 64" in md


def test_the_noise_floor_is_the_drift_between_two_time_windows():
    assert noise_floor_pct([10, 10, 12, 12]) == pytest.approx(100 * 2 / 11)
    assert noise_floor_pct([1.0, 2.0, 3.0]) is None


def test_batch_order_rotates_one_batch_per_plan_per_round():
    assert interleaved_schedule(2, 3) == [(0, True), (1, True), (1, True), (0, True), (0, True), (1, True)]


def test_block_order_runs_each_plans_batches_back_to_back_after_one_untimed_batch():
    order = interleaved_schedule(2, 4, block=2)
    assert order == [(0, False), (0, True), (0, True), (1, False), (1, True), (1, True),
                     (1, False), (1, True), (1, True), (0, False), (0, True), (0, True)]
    assert all(sum(1 for j, timed in interleaved_schedule(3, 7, block=3) if j == p and timed) == 7 for p in range(3))


def test_bad_fidelity_input_is_refused_before_any_worker_starts():
    from packrat_sim.profile import builtin_profile

    with pytest.raises(BenchError, match="passes"):
        measure_fidelity("tiny-mlp", [1], passes=0, profile=builtin_profile("cnn-2"))
    with pytest.raises(BenchError, match="batches"):
        measure_fidelity("tiny-mlp", [0], profile=builtin_profile("cnn-2"))
    with pytest.raises(BenchError, match="unknown order 'random'"):
        measure_fidelity("tiny-mlp", [1], order="random", profile=builtin_profile("cnn-2"))


def test_the_fidelity_verb_rejects_bad_input_with_one_line(capsys):
    for args in (["--model", "nope"], ["--model", "tiny-mlp", "--passes", "0"], ["--model", "tiny-mlp", "--batches", "x"],
                 ["--model", "tiny-mlp", "--order", "random"]):
        code = main(["fidelity", *args])
        out, err = capsys.readouterr()
        assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.slow
def test_fidelity_measures_every_plan_with_its_error_and_noise_floor_side_by_side(capsys, tmp_path):
    from packrat_sim.profile import Cell, Profile

    cells = tuple(Cell.from_samples(t, b, [0.5 * b / t + 0.2]) for t in (1, 2) for b in (1, 2))
    profile = Profile(model="tiny-mlp", cells=cells, statistic="median", dispatch=((1, 1, 0.1),))
    path = tmp_path / "p.json"
    path.write_text(json.dumps(profile.to_json()))
    code = main(["fidelity", "--model", "tiny-mlp", "--batches", "2", "--cores", "1", "--profile", str(path),
                 "--passes", "2", "--iterations", "3", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(out)
    assert report["rows"] and all(r["measured_ms"] > 0 and r["noise_pct"] >= 0 for r in report["rows"])
    assert all(len(r["pass_medians_ms"]) == 2 and r["samples"] == 12 and len(r["pool_medians_ms"]) == 2 for r in report["rows"])
    assert report["median_abs_error_pct"] is not None and report["median_noise_pct"] is not None
