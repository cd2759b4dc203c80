"""benchmarks/real16.py (issue 27, item 6): the 16-core run of isolated vs calibrated predictions,
prepared. Its --quick path runs here end to end, stops on its budget and resumes; its table,
plans and results section are checked on fixed data; it imports nothing beyond torch/numpy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from packrat_sim.profile import builtin_profile

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "real16.py"
sys.path.insert(0, str(ROOT / "benchmarks"))
import real16  # noqa: E402

from rr_helpers import needs_two_cpus, runs_with_imports_blocked  # noqa: E402


def run_script(*args: str, timeout: float = 400) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


# --------------------------------------------------------------------------- pure parts


def test_help_starts_with_the_16_core_command_and_its_duration():
    proc = run_script("--help", timeout=60)
    assert proc.returncode == 0, proc.stderr
    head = proc.stdout[:600]
    assert real16.COMMAND_16 in head and "minutes" in head and "--quick" in head
    assert "--model resnet50 --cores 16 --out real16-out --write-results" in real16.COMMAND_16


def test_the_script_imports_nothing_beyond_torch_and_numpy():
    ok, err = runs_with_imports_blocked(("simpy", "z3", "streamlit", "plotly", "typer"), """
        import runpy
        runpy.run_path('benchmarks/real16.py', run_name='not_main')
        from real_runner.bench import measure_fidelity
        from real_runner.profiling import measure_profile
        print('ok')
    """)
    assert ok, err


def test_lists_threads_and_the_profile_grid():
    assert real16.parse_list("1-256", "--batches") == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    assert real16.parse_list("64,8,256", "--plan-batches") == [8, 64, 256]
    assert real16.default_threads(16) == [1, 2, 4, 8, 16]
    assert real16.default_threads(12) == [1, 2, 4, 8, 12]
    for bad in ("0", "x", "", "8-2"):
        with pytest.raises(real16.Real16Error):
            real16.parse_list(bad, "--batches")
    rows = real16.profile_rows([1, 2, 16], real16.powers_upto(256), 32)
    assert rows == {1: [1, 2, 4, 8, 16, 32], 2: [1, 2, 4, 8, 16, 32, 64], 16: real16.powers_upto(256)}
    assert real16.profile_rows([1], [1, 64], 0) == {1: [1, 64]}  # 0: the full grid


def test_options_default_to_the_16_core_run_and_quick_fits_a_small_machine():
    parser = real16.build_parser()
    full = real16.resolve_config(parser.parse_args([]), allowed_cpus=16)
    assert (full["model"], full["cores"], full["plan_batches"], full["threads"]) == ("resnet50", 16, [8, 64, 256],
                                                                                     [1, 2, 4, 8, 16])
    assert full["batches"] == real16.powers_upto(256) and full["max_per_thread"] == 16  # each thread's share of 256
    rows = real16.profile_rows(full["threads"], full["batches"], full["max_per_thread"])
    assert rows[1] == [1, 2, 4, 8, 16] and rows[16] == real16.powers_upto(256)
    est = real16.rough_estimate_s(full, rows, 16)
    assert set(est) == {"profile", "corun", "measure"} and all(v > 0 for v in est.values())
    quick = real16.resolve_config(parser.parse_args(["--quick"]), allowed_cpus=2)
    assert (quick["model"], quick["cores"], quick["plan_batches"]) == ("tiny-cnn", 2, [2, 8])
    assert real16.resolve_config(parser.parse_args(["--quick"]), allowed_cpus=1)["cores"] == 1
    with pytest.raises(real16.Real16Error, match="--quick"):
        real16.resolve_config(parser.parse_args([]), allowed_cpus=2)  # 16 cores asked, 2 here
    with pytest.raises(real16.Real16Error, match="beyond"):
        real16.resolve_config(parser.parse_args(["--cores", "4", "--threads", "8"]), allowed_cpus=16)


def _planned(tmp_path: Path):
    """A synthetic 16-core profile with a co-run model, planned for 8, 64 and 256."""
    profile = builtin_profile("cnn-16+interference", max_batch=256)
    config = real16.resolve_config(real16.build_parser().parse_args([]), allowed_cpus=16)
    state = real16.State(str(tmp_path))
    plans = real16.step_plan(state, config, profile, lambda msg: None)
    return profile, config, state, plans


def test_plans_price_every_plan_both_ways_and_a_rerun_keeps_the_written_plans(tmp_path):
    profile, config, state, plans = _planned(tmp_path)
    for B in (8, 64, 256):
        entry = plans["batches"][str(B)]
        roles = [r for p in entry["plans"] for r in p["roles"]]
        assert sorted(roles) == sorted(real16.ROLE_ORDER)
        for p in entry["plans"]:
            assert p["predicted_isolated_ms"] > 0 and p["predicted_calibrated_ms"] >= p["predicted_isolated_ms"]
    said = []
    assert real16.step_plan(state, config, profile, said.append) == json.loads(Path(state.plans_path).read_text())
    assert "skipped" in said[0]


def _fake_run(entry: dict, which: str, scale: float) -> dict:
    """What measure_fidelity returns for one run, with measured = calibrated prediction x scale."""
    wanted = {"calibrated": {"calibrated plan", "fat", "thin"}, "isolated": {"plan", "fat", "thin"}}[which]
    rows = []
    for p in entry["plans"]:
        roles = set(p["roles"]) & wanted
        if roles:
            names = sorted("packrat" if r in ("plan", "calibrated plan") else r for r in roles)
            rows.append({"plan": p["plan"], "roles": sorted(set(names)),
                         "measured_ms": p["predicted_calibrated_ms"] * scale, "noise_pct": 2.0})
    return {"rows": rows, "topology": "16 CPUs"}


def test_the_table_has_one_row_per_batch_and_plan_with_errors_and_speedups(tmp_path):
    profile, config, state, plans = _planned(tmp_path)
    runs = {}
    for key, B, which in real16.needed_runs(plans):
        runs[key] = _fake_run(plans["batches"][str(B)], which, 1.0)
    measured = {"runs": runs}
    rows, missing = real16.table_rows(config, profile, plans, measured)
    assert not missing
    assert {r["batch"] for r in rows} == {8, 64, 256}
    for r in rows:
        assert r["error_calibrated_pct"] == pytest.approx(0.0)
        assert r["speedup_measured"] == pytest.approx(r["speedup_predicted_calibrated"])
        if r["instances"] > 1:
            assert r["error_isolated_pct"] < 0  # the isolated prediction is optimistic under co-run slowdown
    md = real16.to_markdown(config, {"topology": "16 CPUs"}, profile, plans, measured)
    assert "| batch | plan | roles | predicted isolated ms | predicted calibrated ms | measured ms |" in md
    assert sum(1 for line in md.splitlines() if line.startswith("| 256 |")) == len(plans["batches"]["256"]["plans"])
    assert "multi-instance plans: isolated median |error|" in md and "calibrated median |error| 0.0%" in md
    # nothing measured yet: every plan is listed as not measured, never invented
    rows, missing = real16.table_rows(config, profile, plans, {"runs": {}})
    assert all(r["measured_ms"] is None for r in rows) and len(missing) == len(rows)


def test_results_are_written_between_the_markers_and_nowhere_else(tmp_path):
    doc = tmp_path / "results.md"
    doc.write_text(f"# Results\n\nbefore\n\n{real16.BEGIN}\nNo 16-core run has been recorded yet.\n{real16.END}\n\nafter\n")
    real16.write_results(str(doc), "| table |", "Measured in 1 invocation(s).")
    text = doc.read_text()
    assert text.startswith("# Results\n\nbefore\n\n") and text.endswith("\n\nafter\n")
    assert "| table |" in text and "No 16-core run" not in text
    real16.write_results(str(doc), "| table 2 |", "again")
    again = doc.read_text()
    assert again.count(real16.BEGIN) == 1 and "| table |" not in again and "| table 2 |" in again
    fresh = tmp_path / "fresh.md"
    fresh.write_text("# Results\n")
    real16.write_results(str(fresh), "| t |", "w")
    assert real16.BEGIN in fresh.read_text() and "benchmarks/real16.py" in fresh.read_text()


def test_a_quick_run_refuses_to_write_the_16_core_section_and_bad_options_exit_2(tmp_path):
    proc = run_script("--quick", "--write-results", "--out", str(tmp_path / "q"), timeout=60)
    assert proc.returncode == 2 and "--results" in proc.stderr
    proc = run_script("--report-only", "--out", str(tmp_path / "nothing"), timeout=60)
    assert proc.returncode == 2 and "holds no planned run" in proc.stderr


# --------------------------------------------------------------------------- the real path


@pytest.mark.slow
@needs_two_cpus
def test_quick_runs_the_whole_path_stops_on_its_budget_and_resumes(tmp_path):
    out = tmp_path / "state"
    doc = tmp_path / "results.md"
    doc.write_text(f"# Results\n\n{real16.BEGIN}\nNo 16-core run has been recorded yet.\n{real16.END}\n")
    # 1: a budget that runs out after the first profile cell: saved, exit 0, says what is left
    first = run_script("--quick", "--out", str(out), "--budget-s", "0.01")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "left" in first.stdout and "rerun the same command" in first.stdout
    cells = json.loads((out / "profile.json").read_text())["cells"]
    assert 1 <= len(cells) < 8
    # 2: the same command resumes the profile and runs every step to the end
    second = run_script("--quick", "--out", str(out), "--write-results", "--results", str(doc))
    assert second.returncode == 0, second.stdout + second.stderr
    assert "of 8, then the co-run sweep" in second.stdout and "8 cell(s) to measure" not in second.stdout
    assert "real16: all steps done" in second.stdout
    table = (out / "table.md").read_text()
    for B in (2, 8):
        rows = [line for line in table.splitlines() if line.startswith(f"| {B} |")]
        roles = {r.strip() for line in rows for r in line.split("|")[3].split(",")}
        assert roles == {"plan", "calibrated plan", "fat", "thin"}, table
        assert all(line.split("|")[6].strip() != "-" for line in rows), table  # every plan measured
    assert "a --quick path check, not a 16-core figure" in table
    assert table.strip() in doc.read_text()
    measured = json.loads((out / "measured.json").read_text())["runs"]
    assert {"2/calibrated", "8/calibrated"} <= set(measured)
    # 3: a rerun skips every finished step (the profile is not touched) and prints the same table
    profile_bytes = (out / "profile.json").read_bytes()
    third = run_script("--quick", "--out", str(out))
    assert third.returncode == 0, third.stdout + third.stderr
    assert "[1/4] profile: done" in third.stdout and "skipped" in third.stdout
    assert "measure: " in third.stdout and "done, skipped" in third.stdout
    assert (out / "profile.json").read_bytes() == profile_bytes
    assert table.strip() in third.stdout
    sessions = json.loads((out / "run.json").read_text())["sessions"]
    assert [bool(s["left"]) for s in sessions] == [True, False, False]
    # the table can be rewritten from the files alone (e.g. from a 16-core machine's output)
    report = run_script("--report-only", "--out", str(out), timeout=120)
    assert report.returncode == 0 and table.strip() in report.stdout
    # other options on the same state directory are refused, naming them
    other = run_script("--quick", "--out", str(out), "--plan-batches", "4")
    assert other.returncode == 2 and "plan_batches" in other.stderr
