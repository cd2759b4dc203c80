"""Issue 31, item 6: `packrat bench` gives one prediction per plan, named, and every table of
its report (the summary, the per-plan table, the interference-aware row, the CLI text) shows
that same prediction. No worker runs: the interleaved measurement is replaced by fixed samples."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

import real_runner.bench as bench_mod
from packrat_sim.predictor import Predictor
from packrat_sim.profile import builtin_profile
from real_runner.topology import LogicalCpu, Topology

# a profile whose prediction differs from the isolated one in both ways that matter: a measured
# dispatch cost (large beside a batch of 1) and a co-run model
PROFILE = replace(builtin_profile("cnn-4+interference", max_batch=8),
                  dispatch=((1, 1, 3.0), (1, 8, 3.0), (2, 2, 4.0), (2, 8, 4.0), (4, 4, 5.0), (4, 8, 5.0)))
FOUR_CPUS = Topology(tuple(LogicalCpu(0, i, i) for i in range(4)), "test CPU")


@pytest.fixture
def fake_measurements(monkeypatch):
    """Every plan measures 1.3x its isolated latency (deterministic, no worker process)."""

    def run_interleaved(model, plans, batch, rounds, topo, seed, warmup, block=1):
        iso = Predictor(PROFILE, interference=False)
        return [[1.3 * iso.estimate_ms(p) + 0.01 * i for i in range(rounds)] for p in plans]

    monkeypatch.setattr(bench_mod, "_run_interleaved", run_interleaved)


def _report():
    return bench_mod.run_bench("tiny-cnn", [1, 4], cores=4, iterations=3, profile=PROFILE, topology=FOUR_CPUS)


def _entry(row, role):
    (entry,) = [p for p in row["plans"] if role in p["roles"]]
    return entry


def test_every_figure_the_report_gives_for_a_plan_is_its_one_named_prediction(fake_measurements):
    rep = _report()
    assert rep["prediction"] == "calibrated" and "co-run slowdown" in rep["prediction_means"]
    predictor = Predictor(PROFILE)  # calibrated: dispatch + slowest instance x co-run slowdown
    for row in rep["batches"]:
        for entry in row["plans"]:
            # one prediction per plan: no second (isolated, undispatched) figure beside it
            assert [k for k in entry if "predict" in k] == ["predicted_ms", "prediction_error_pct"]
        opt = _entry(row, "optimizer")
        assert row["optimizer_predicted_ms"] == opt["predicted_ms"]
        assert row["optimizer_prediction_error_pct"] == opt["prediction_error_pct"]
        assert opt["predicted_ms"] == pytest.approx(predictor.plan_ms(bench_mod._shape(
            bench_mod.optimize(PROFILE, row["batch"], 4, bench_mod.OptimizerOptions(exact_cores=False)))))
        aware = _entry(row, "interference-aware")
        assert row["interference_aware_predicted_ms"] == aware["predicted_ms"]
        assert {k for k in row if "predict" in k} == {
            "optimizer_predicted_ms", "optimizer_prediction_error_pct", "interference_aware_predicted_ms",
            "median_abs_prediction_error_pct"}


def test_an_isolated_bench_names_its_prediction_isolated(fake_measurements):
    rep = bench_mod.run_bench("tiny-cnn", [2], cores=4, iterations=3, profile=PROFILE, topology=FOUR_CPUS,
                              isolated=True)
    assert rep["prediction"] == "isolated"
    row = rep["batches"][0]
    assert row["optimizer_predicted_ms"] == _entry(row, "optimizer")["predicted_ms"]


def test_the_markdown_summary_and_the_per_plan_table_agree_and_name_the_prediction(fake_measurements):
    from ui.reports.bench import to_markdown

    rep = _report()
    md = to_markdown(rep)
    assert "Predictions: calibrated" in md
    assert "opt error % (calibrated)" in md and "error % (calibrated) |" in md
    for row in rep["batches"]:
        summary = [line for line in md.splitlines() if line.startswith(f"| {row['batch']} |")]
        opt = _entry(row, "optimizer")
        per_plan = [line for line in md.splitlines() if line.startswith(f"| {opt['describe']} |")
                    and "optimizer" in line]
        err = f"{opt['prediction_error_pct']:.1f}"
        assert summary and summary[0].rstrip(" |").endswith(err)
        assert any(line.rstrip(" |").endswith(err) for line in per_plan)


def test_the_cli_text_names_the_prediction_beside_the_optimizer(cli, fake_measurements, monkeypatch, tmp_path):
    import real_runner.topology as topo_mod

    monkeypatch.setattr(topo_mod, "detect", lambda *a, **k: FOUR_CPUS)
    profile_file = tmp_path / "p.json"
    profile_file.write_text(json.dumps(replace(PROFILE, model="tiny-cnn", synthetic=False).to_json()))
    code, out, err = cli("bench", "--model", "tiny-cnn", "--batches", "1", "--cores", "4", "--iterations", "3",
                         "--profile", str(profile_file))
    assert code == 0, err
    (line,) = [ln for ln in out.splitlines() if "optimizer predicted" in ln]
    assert re.search(r"optimizer predicted \(calibrated\) [\d.]+ ms, error [+-][\d.]+%", line)
    assert "calibrated prediction |error| median" in out
    assert "co-run: predictions calibrated (measured dispatch + the slowest instance's L[t, b] x its co-run " \
           "slowdown)" in out
