"""`packrat run` from the shell's point of view: real workers, one JSON object, exit 2 on bad input."""

from __future__ import annotations

import json
import os

import pytest

from packrat_sim.plan import Instance, Plan, dumps_plan
from packrat_sim.profile import Cell, Machine, Profile, write_profile
from ui.cli.app import main

ALLOWED = sorted(os.sched_getaffinity(0))
needs_two_cpus = pytest.mark.skipif(len(ALLOWED) < 2, reason="needs at least 2 allowed CPUs")


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def tiny_mlp_profile(path, model="tiny-mlp"):
    """A hand-made (not synthetic) profile in which two 1-thread instances beat one 2-thread one."""
    cells = [Cell.from_samples(t, b, [ms, ms * 1.01, ms * 0.99])
             for (t, b), ms in {(1, 1): 1.0, (1, 2): 1.8, (1, 4): 3.5, (2, 1): 0.9, (2, 2): 1.5, (2, 4): 2.9}.items()]
    write_profile(Profile(model=model, cells=tuple(cells), machine=Machine(cpu_model="test"), statistic="median"), str(path))
    return str(path)


@needs_two_cpus
def test_run_auto_plans_from_a_profile_and_reports_plan_and_fat_in_one_json_object(capsys, tmp_path):
    profile = tiny_mlp_profile(tmp_path / "p.json")
    code, out, err = run(capsys, "run", "--model", "tiny-mlp", "--batch", "4", "--plan", "auto",
                         "--profile", profile, "--cores", "2", "--iterations", "3", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["groups"] == [[2, 1, 2]] and report["predicted_ms"] == pytest.approx(1.8)
    assert len(report["plan"]["samples_ms"]) == 3 and len(report["fat"]["samples_ms"]) == 3
    assert report["fat"]["groups"] == [[1, 2, 4]] and report["outputs_match"] is True
    assert report["plan"]["median_ms"] > 0 and report["speedup_vs_fat"] > 0
    assert sorted(c for cs in report["plan"]["cores"] for c in cs) == ALLOWED[:2]
    conditions = report["conditions"]  # what the machine was doing, and the one line when it matters
    assert {"loadavg_1m", "runq_wait_ms_per_s", "busy", "note"} <= set(conditions) and conditions["cpus"] >= 2
    assert conditions["note"] is None or "busy" in conditions["note"] or "predicted 1.80 ms" in conditions["note"]


def test_run_with_a_plan_file_prints_the_measured_plan_and_the_fat_instance(capsys, tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text(dumps_plan(Plan((Instance(1, 3),), 3, 1)))
    code, out, err = run(capsys, "run", "--model", "tiny-mlp", "--batch", "3", "--plan", str(plan),
                         "--cores", "1", "--iterations", "2")
    assert code == 0, err
    assert "plan      1 x 1t x 3" in out and "measured  plan median" in out and "measured  fat  median" in out
    assert "outputs match" in out


def bad(tmp_path):
    too_many = len(ALLOWED) + 1
    big = tmp_path / "big.json"
    big.write_text(dumps_plan(Plan(tuple(Instance(1, 1) for _ in range(too_many)), too_many, too_many)))
    other = tmp_path / "other.json"
    other.write_text(dumps_plan(Plan((Instance(1, 2),), 2, 1)))
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    return {
        "unknown model": (["--model", "resnet51", "--batch", "4", "--plan", "auto"],
                          "unknown model 'resnet51'; known models: tiny-mlp, tiny-cnn, resnet50, bert-base, gpt2"),
        "batch 0": (["--model", "tiny-mlp", "--batch", "0", "--plan", "auto"], "--batch must be a positive integer, got 0"),
        "too many cores": (["--model", "tiny-mlp", "--batch", "4", "--plan", "auto", "--cores", str(too_many)],
                           f"--cores {too_many} is beyond the {len(ALLOWED)} CPUs this process may use"),
        "plan too big": (["--model", "tiny-mlp", "--batch", str(too_many), "--plan", str(big)],
                         f"the plan needs {too_many} cores but only {len(ALLOWED)} CPUs are allowed"),
        "plan batch": (["--model", "tiny-mlp", "--batch", "4", "--plan", str(other)], "is for a batch of 2, not --batch 4"),
        "broken plan": (["--model", "tiny-mlp", "--batch", "4", "--plan", str(broken)], "not valid JSON"),
        "missing plan": (["--model", "tiny-mlp", "--batch", "4", "--plan", str(tmp_path / "none.json")], "does not exist"),
        "iterations": (["--model", "tiny-mlp", "--batch", "4", "--plan", "auto", "--iterations", "0"],
                       "--iterations must be a positive integer, got 0"),
        "profile of another model": (
            ["--model", "tiny-mlp", "--batch", "4", "--plan", "auto", "--profile",
             tiny_mlp_profile(tmp_path / "cnn.json", model="tiny-cnn")],
            "is a profile of 'tiny-cnn', not of --model 'tiny-mlp'"),
    }


@pytest.mark.parametrize("case", ["unknown model", "batch 0", "too many cores", "plan too big", "plan batch",
                                  "broken plan", "missing plan", "iterations", "profile of another model"])
def test_run_bad_input_exits_2_with_one_line_naming_the_value(capsys, tmp_path, case):
    args, fragment = bad(tmp_path)[case]
    code, out, err = run(capsys, "run", *args)
    assert code == 2 and out == ""
    assert fragment in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.slow
def test_run_auto_without_a_profile_measures_a_quick_one_and_says_how_to_keep_it(capsys):
    code, out, err = run(capsys, "run", "--model", "tiny-mlp", "--batch", "2", "--plan", "auto", "--cores", "1",
                         "--iterations", "2", "--no-fat", "--json")
    assert code == 0, err
    assert "no --profile: measuring a quick profile" in err and "packrat profile --model tiny-mlp" in err
    report = json.loads(out)
    assert report["fat"] is None and report["profile"]["synthetic"] is False and len(report["plan"]["samples_ms"]) == 2


@pytest.mark.slow
def test_run_allow_oversubscribe_runs_a_plan_wider_than_the_machine(capsys, tmp_path):
    n = len(ALLOWED) + 1
    plan = tmp_path / "wide.json"
    plan.write_text(dumps_plan(Plan(tuple(Instance(1, 1) for _ in range(n)), n, n)))
    code, out, err = run(capsys, "run", "--model", "tiny-mlp", "--batch", str(n), "--plan", str(plan),
                         "--allow-oversubscribe", "--no-fat", "--iterations", "2", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert len(report["plan"]["cores"]) == n and {c for cs in report["plan"]["cores"] for c in cs} == set(ALLOWED)
