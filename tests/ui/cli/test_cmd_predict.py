"""`packrat predict`: the latency of a plan the user writes, isolated and calibrated side by side;
bad plans exit 2 with one line naming the value."""

from __future__ import annotations

import json

import pytest

from packrat_sim.plan import Instance, Plan, dumps_plan
from packrat_sim.profile import builtin_profile, dumps_profile


def test_predict_prints_each_group_and_the_batch_isolated_and_calibrated(cli):
    code, out, err = cli("predict", "--profile", "builtin:cnn-16+interference", "--plan", "2x4x16+4x2x8")
    assert code == 0, err
    assert "2 x 4t x 16 + 4 x 2t x 8" in out and "calibrated" in out
    rows = [line for line in out.splitlines() if line.startswith(("2 x 4t x 16 ", "4 x 2t x 8 "))]
    assert len(rows) == 2 and all(len(r.split()) == 8 for r in rows)  # group, isolated, slowdown, calibrated
    batch = next(line for line in out.splitlines() if line.startswith("batch "))
    iso, cal = (float(x) for x in batch.split()[1:3])
    assert cal > iso


def test_predict_json_matches_the_predictor_cell_by_cell(cli):
    prof = builtin_profile("cnn-16+interference")
    code, out, err = cli("predict", "--profile", "builtin:cnn-16+interference", "--plan", "2 x 4 x 16 + 4X2X8", "--json")
    assert code == 0, err
    obj = json.loads(out)
    assert obj["plan"] == "2 x 4t x 16 + 4 x 2t x 8" and obj["batch"] == 64 and obj["cores"] == 16
    group = obj["groups"][0]
    assert (group["count"], group["threads"], group["batch"]) == (2, 4, 16)
    assert group["isolated_ms"] == pytest.approx(prof.latency(4, 16))
    assert group["calibrated_ms"] == pytest.approx(prof.latency(4, 16) * prof.interference.slowdown(12))
    assert obj["calibrated_ms"] == pytest.approx(max(g["calibrated_ms"] for g in obj["groups"]))
    assert obj["predicted_ms"] == obj["calibrated_ms"] and obj["corun"] == "calibrated"
    assert obj["dispatch_ms"] is None  # the builtin profiles measure no dispatch


def test_predict_without_a_corun_model_has_no_calibrated_column_and_says_so(cli):
    code, out, err = cli("predict", "--profile", "builtin:cnn-16", "--plan", "2x4x16+4x2x8", "--json")
    obj = json.loads(out)
    assert code == 0 and obj["calibrated_ms"] is None and obj["predicted_ms"] == obj["isolated_ms"]
    assert obj["corun"] == "none" and len(obj["notes"]) == 1


def test_predict_adds_the_measured_dispatch_cost_to_the_batch(cli, tmp_path):
    obj = builtin_profile("cnn-4", max_batch=8).to_json()
    obj["schema"] = "packrat.profile/2"
    obj["dispatch"] = [[1, 8, 0.5], [2, 8, 1.5]]
    path = tmp_path / "p.json"
    path.write_text(json.dumps(obj))
    code, out, err = cli("predict", "--profile", str(path), "--plan", "2x2x4", "--json")
    assert code == 0, err
    got = json.loads(out)
    assert got["dispatch_ms"] == pytest.approx(1.5)
    assert got["isolated_ms"] == pytest.approx(1.5 + got["groups"][0]["isolated_ms"])
    code, out, err = cli("predict", "--profile", str(path), "--plan", "2x2x4")
    assert "dispatch (measured)" in out


def test_predict_reads_a_plan_file_and_cores_can_widen_it(cli, tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text(dumps_plan(Plan((Instance(4, 32), Instance(4, 32)), 64, 8)))
    code, out, err = cli("predict", "--profile", "builtin:cnn-16", "--plan-file", str(plan), "--json")
    assert code == 0, err
    assert json.loads(out)["cores"] == 8
    code, out, err = cli("predict", "--profile", "builtin:cnn-16", "--plan-file", str(plan), "--cores", "16", "--json")
    assert code == 0 and json.loads(out)["cores"] == 16


def test_predict_cores_default_to_the_machine_the_profile_describes(cli):
    code, out, err = cli("predict", "--profile", "builtin:cnn-16", "--plan", "1x8x64", "--json")
    assert code == 0 and json.loads(out)["cores"] == 16


def _one_line_exit_2(code, out, err):
    assert code == 2 and out == "" and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("argv, named", [
    (["--plan", "4x8x16"], "needs 32 threads but only 16 cores"),
    (["--plan", "2x4x16", "--cores", "4"], "needs 8 threads but only 4 cores"),
    (["--plan", "2x4x16+4x2x7"], "no cell 2 x 7"),
    (["--plan", "1x32x64", "--cores", "64"], "no cell 32 x 64"),
    (["--plan", "2x4x16+4x2"], "plan group '4x2'"),
    (["--plan", "2x4x16+ax2x8"], "plan group 'ax2x8'"),
    (["--plan", "0x4x16"], "plan group '0x4x16': count"),
    (["--plan", ""], "at least one group"),
    (["--plan", "2x4x16", "--cores", "0"], "--cores"),
])
def test_predict_refuses_a_bad_plan_naming_the_value(cli, argv, named):
    code, out, err = cli("predict", "--profile", "builtin:cnn-16", *argv)
    _one_line_exit_2(code, out, err)
    assert named in err


def test_predict_needs_exactly_one_plan(cli, tmp_path):
    _one_line_exit_2(*cli("predict", "--profile", "builtin:cnn-16"))
    code, out, err = cli("predict", "--profile", "builtin:cnn-16", "--plan", "1x1x1", "--plan-file", "x.json")
    _one_line_exit_2(code, out, err)
    assert "exactly one of --plan" in err


def test_predict_names_a_bad_plan_file(cli, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    code, out, err = cli("predict", "--profile", "builtin:cnn-16", "--plan-file", str(bad))
    _one_line_exit_2(code, out, err)
    assert "bad.json" in err
    plan = tmp_path / "plan.json"
    plan.write_text(dumps_plan(Plan((Instance(4, 32), Instance(4, 32)), 64, 8)))
    code, out, err = cli("predict", "--profile", "builtin:cnn-16", "--plan-file", str(plan), "--cores", "4")
    _one_line_exit_2(code, out, err)
    assert "--plan-file" in err and "only 4 cores" in err


def test_predict_on_a_profile_file_with_a_fitted_model_names_its_fit_error(cli, tmp_path):
    from dataclasses import replace

    from packrat_sim.profile import Interference

    prof = builtin_profile("cnn-4", max_batch=8)
    prof = replace(prof, synthetic=False, interference=Interference(points=((1, 1.1), (3, 1.3)), fit_error=0.031))
    path = tmp_path / "p.json"
    path.write_text(dumps_profile(prof))
    code, out, err = cli("predict", "--profile", str(path), "--plan", "2x2x4")
    assert code == 0, err
    assert "calibrated" in out and "fit error 3.1%" in out


def test_predict_is_listed_after_plan_as_the_cli_contract_orders_the_verbs():
    from ui.cli.app import VERB_MODULES

    assert VERB_MODULES.index("ui.cli.predict") == VERB_MODULES.index("ui.cli.plan") + 1
