"""Calibrated by default (issue 27): every verb that prices a multi-instance plan says how.

On a profile without a co-run model each one prints the one no-co-run line
(``packrat_sim.predictor.NO_CORUN_NOTE``), in text and in ``--json``'s ``notes``; on a
profile with one each says it is calibrated; ``--isolated`` ignores the model and says so.
"""

from __future__ import annotations

import json

import pytest

from packrat_sim.predictor import ISOLATED_NOTE, NO_CORUN_NOTE
from tests.real_runner.rr_helpers import needs_two_cpus

ISOLATED = "builtin:cnn-4"
CALIBRATED = "builtin:cnn-4+interference"
WORKLOAD = "poisson:rate=100,duration=1s,max_batch=8"


def _verbs(profile: str, tmp_path) -> dict[str, list[str]]:
    """The argv of every verb that prices a multi-instance plan, on ``profile`` (bench apart)."""
    return {
        "plan": ["plan", "--profile", profile, "--batch", "8", "--cores", "4"],
        "verify": ["verify", "--profile", profile, "--batch", "8", "--cores", "4"],
        "predict": ["predict", "--profile", profile, "--plan", "2x2x4"],
        "simulate": ["simulate", "--profile", profile, "--cores", "4", "--workload", WORKLOAD],
        "sweep": ["sweep", "--axis", f"profile={profile}", "--axis", "cores=4", "--axis", f"workload={WORKLOAD}",
                  "--axis", "policy=thin", "--engine", "serial", "--out", str(tmp_path / "sweep")],
    }


VERBS = ("plan", "verify", "predict", "simulate", "sweep")


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_on_an_isolated_profile_prints_the_no_corun_line(cli, tmp_path, verb):
    code, out, err = cli(*_verbs(ISOLATED, tmp_path)[verb])
    assert code == 0, err
    assert (out + err).count(NO_CORUN_NOTE) == 1, out + err


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_on_an_isolated_profile_lists_the_no_corun_line_in_its_json_notes(cli, tmp_path, verb):
    code, out, err = cli(*_verbs(ISOLATED, tmp_path)[verb], "--json")
    assert code == 0, err
    notes = json.loads(out)["notes"]
    assert len(notes) == 1 and notes[0].startswith(NO_CORUN_NOTE)


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_on_a_profile_with_a_corun_model_says_it_is_calibrated(cli, tmp_path, verb):
    code, out, err = cli(*_verbs(CALIBRATED, tmp_path)[verb])
    assert code == 0, err
    assert "calibrated" in out and NO_CORUN_NOTE not in out + err and ISOLATED_NOTE not in out + err


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_on_a_profile_with_a_corun_model_reports_calibrated_in_its_json(cli, tmp_path, verb):
    code, out, err = cli(*_verbs(CALIBRATED, tmp_path)[verb], "--json")
    assert code == 0, err
    obj = json.loads(out)
    assert obj["notes"] == []
    assert obj["corun"] == ({CALIBRATED: "calibrated"} if verb == "sweep" else "calibrated")


@pytest.mark.parametrize("verb", ("plan", "verify", "simulate", "sweep"))
def test_isolated_ignores_the_corun_model_and_says_so_in_one_line(cli, tmp_path, verb):
    code, out, err = cli(*_verbs(CALIBRATED, tmp_path)[verb], "--isolated")
    assert code == 0, err
    assert (out + err).count(ISOLATED_NOTE) == 1 and "calibrated" not in out


def test_a_single_instance_plan_does_not_get_the_no_corun_line(cli):
    code, out, err = cli("predict", "--profile", ISOLATED, "--plan", "1x4x8")
    assert code == 0, err
    assert NO_CORUN_NOTE not in out + err
    code, out, err = cli("plan", "--profile", ISOLATED, "--batch", "1", "--cores", "1", "--json")
    assert code == 0 and json.loads(out)["notes"] == [] and json.loads(out)["corun"] == "none"


def test_plan_calibrated_by_default_is_the_plan_interference_gave(cli):
    code, default, err = cli("plan", "--profile", "builtin:transformer-16+interference", "--batch", "64", "--cores", "16", "--json")
    assert code == 0, err
    code, opted, err = cli("plan", "--profile", "builtin:transformer-16+interference", "--batch", "64", "--cores", "16",
                           "--interference", "--json")
    assert code == 0, err
    assert json.loads(default) == json.loads(opted)
    code, isolated, err = cli("plan", "--profile", "builtin:transformer-16+interference", "--batch", "64", "--cores", "16",
                              "--isolated", "--json")
    assert json.loads(isolated)["groups"] == [[4, 4, 16]] and json.loads(isolated)["corun"] == "isolated"
    assert json.loads(default)["interference"]["isolated_groups"] == [[4, 4, 16]]


def test_isolated_and_interference_together_are_refused(cli):
    code, out, err = cli("plan", "--profile", CALIBRATED, "--batch", "8", "--cores", "4", "--isolated", "--interference")
    assert code == 2 and "--isolated and --interference" in err and out == ""


@needs_two_cpus
def test_bench_on_an_isolated_profile_prints_the_no_corun_line(cli):
    code, out, err = cli("bench", "--model", "tiny-cnn", "--batches", "2", "--cores", "2", "--iterations", "1",
                         "--max-plans", "2", "--profile", "builtin:cnn-2")
    assert code == 0, err
    assert (out + err).count(NO_CORUN_NOTE) == 1


@pytest.mark.slow
@needs_two_cpus
def test_bench_on_a_profile_with_a_corun_model_predicts_calibrated(cli):
    code, out, err = cli("bench", "--model", "tiny-cnn", "--batches", "2", "--cores", "2", "--iterations", "1",
                         "--max-plans", "2", "--profile", "builtin:cnn-2+interference", "--json")
    assert code == 0, err
    rep = json.loads(out)
    assert rep["corun"] == "calibrated" and rep["notes"] == []
    assert rep["prediction"] == "calibrated" and "co-run slowdown" in rep["prediction_means"]
    row = rep["batches"][0]
    (entry,) = [p for p in row["plans"] if "optimizer" in p["roles"]]
    assert row["optimizer_predicted_ms"] == entry["predicted_ms"]


@needs_two_cpus
def test_run_with_an_auto_plan_from_an_isolated_profile_prints_the_no_corun_line(cli):
    # builtin:cnn-2's optimum for batch 8 on 2 cores runs two instances
    code, out, err = cli("run", "--model", "tiny-cnn", "--batch", "8", "--cores", "2", "--iterations", "1",
                         "--plan", "auto", "--profile", "builtin:cnn-2")
    assert code == 0, err
    assert (out + err).count(NO_CORUN_NOTE) == 1, out + err


def test_the_demo_plan_table_and_simulation_say_they_have_no_corun_data(capsys):
    from ui.cli.demo import step_plan_table

    assert step_plan_table() == "ok"
    assert capsys.readouterr().out.count(NO_CORUN_NOTE) == 1


@needs_two_cpus
def test_run_load_from_an_isolated_profile_serving_a_multi_instance_plan_prints_the_no_corun_line(cli):
    # builtin:cnn-2 serves a closed loop of batch 4 on 2 cores with two instances
    code, out, err = cli("run", "--model", "tiny-cnn", "--load", "closed:4@1s", "--cores", "2", "--profile", "builtin:cnn-2")
    assert code == 0, err
    assert (out + err).count(NO_CORUN_NOTE) == 1, out + err
    code, out, err = cli("run", "--model", "tiny-cnn", "--load", "closed:4@1s", "--cores", "2", "--profile", "builtin:cnn-2",
                         "--json")
    assert code == 0, err
    assert json.loads(out)["notes"] == [NO_CORUN_NOTE]
