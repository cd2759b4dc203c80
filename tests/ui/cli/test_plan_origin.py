"""Issue 31, item 3: plan files know their model. `packrat plan` records the profile's model,
its digest and the machine it describes; `run` refuses a plan made for another model (exit 2,
naming both) and warns in one line for another machine; `bench --profile` warns likewise."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from packrat_sim.plan import loads_plan
from packrat_sim.predictor import corun
from packrat_sim.profile import Machine, builtin_profile, read_profile, write_profile
from real_runner.topology import detect

HERE = detect()


def measured_profile(tmp_path, model: str, *, cpu: str = HERE.cpu_model, logical: int = HERE.logical,
                     name: str = "p.json") -> str:
    """A profile file that reads as measured (not synthetic) for ``model`` on the machine ``cpu``."""
    prof = replace(builtin_profile("cnn-2", max_batch=8), model=model, synthetic=False, source="measured",
                   machine=Machine(cpu_model=cpu, logical_cores=logical, physical_cores=logical, sockets=1))
    path = tmp_path / name
    write_profile(prof, str(path))
    return str(path)


def test_plan_out_records_the_model_the_profile_digest_and_the_machine(cli, tmp_path):
    from packrat_sim.plan import profile_digest

    prof = measured_profile(tmp_path, "bert-base", cpu="Xeon Gold 6338", logical=64)
    out = tmp_path / "plan.json"
    code, _, err = cli("plan", "--profile", prof, "--batch", "8", "--cores", "2", "--out", str(out))
    assert code == 0, err
    obj = json.loads(out.read_text())
    assert obj["model"] == "bert-base" and obj["synthetic"] is False
    assert obj["profile_digest"] == profile_digest(read_profile(prof))
    assert obj["machine"] == {"cpu_model": "Xeon Gold 6338", "logical_cores": 64}
    code, exported, _ = cli("plan", "--profile", prof, "--batch", "8", "--cores", "2", "--export", "json")
    assert code == 0 and loads_plan(exported).origin == loads_plan(out.read_text()).origin
    code, text, _ = cli("plan", "--profile", prof, "--batch", "8", "--cores", "2", "--json")
    assert code == 0 and json.loads(text)["plan"]["model"] == "bert-base"


def test_run_refuses_a_plan_made_for_another_model_with_exit_2_naming_both(cli, tmp_path):
    prof = measured_profile(tmp_path, "bert-base")
    plan = tmp_path / "bert-plan.json"
    assert cli("plan", "--profile", prof, "--batch", "8", "--cores", "1", "--out", str(plan))[0] == 0
    code, out, err = cli("run", "--model", "tiny-cnn", "--batch", "8", "--cores", "1", "--plan", str(plan))
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "'bert-base'" in err and "--model 'tiny-cnn'" in err and str(plan) in err


def test_a_plan_of_the_model_from_another_machine_is_warned_about_in_one_line(tmp_path, capsys):
    from ui.cli.app import main
    from ui.cli.run import _batch_run, _read_plan

    prof = measured_profile(tmp_path, "tiny-cnn", cpu="Some Other CPU", logical=HERE.logical + 62)
    plan = tmp_path / "plan.json"
    assert main(["plan", "--profile", prof, "--batch", "4", "--cores", "1", "--out", str(plan)]) in (0, None)
    capsys.readouterr()
    run = _batch_run("tiny-cnn", 4, 1, 1, 0, jit=False, allow_oversubscribe=False, fat=False)
    assert _read_plan(str(plan), run).batch == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("packrat: warning: the plan ")
    assert f"describes Some Other CPU, {HERE.logical + 62} logical CPUs, not this machine" in err


def test_a_plan_of_the_model_from_this_machine_and_an_old_plan_file_pass_silently(tmp_path, capsys):
    from ui.cli.app import main
    from ui.cli.run import _batch_run, _read_plan

    prof = measured_profile(tmp_path, "tiny-cnn")
    plan = tmp_path / "plan.json"
    assert main(["plan", "--profile", prof, "--batch", "4", "--cores", "1", "--out", str(plan)]) in (0, None)
    capsys.readouterr()
    run = _batch_run("tiny-cnn", 4, 1, 1, 0, jit=False, allow_oversubscribe=False, fat=False)
    assert _read_plan(str(plan), run).origin.model == "tiny-cnn"
    old = json.loads(plan.read_text())
    for key in ("model", "synthetic", "profile_digest", "machine"):
        del old[key]
    plan.write_text(json.dumps(old))
    assert _read_plan(str(plan), run).origin is None
    assert capsys.readouterr().err == ""


def test_a_plan_from_a_synthetic_profile_runs_any_model_and_says_so(tmp_path, capsys):
    from ui.cli.app import main
    from ui.cli.run import _batch_run, _read_plan

    plan = tmp_path / "plan.json"
    assert main(["plan", "--profile", "builtin:cnn-1", "--batch", "4", "--cores", "1", "--out", str(plan)]) in (0, None)
    capsys.readouterr()
    run = _batch_run("tiny-mlp", 4, 1, 1, 0, jit=False, allow_oversubscribe=False, fat=False)
    assert _read_plan(str(plan), run).origin.synthetic
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "SYNTHETIC profile cnn-1" in err and "tiny-mlp" in err


@pytest.mark.parametrize("other, warned", [(True, True), (False, False)])
def test_bench_warns_in_one_line_for_a_profile_of_another_machine(cli, tmp_path, monkeypatch, other, warned):
    import real_runner.bench as bench_mod

    prof = measured_profile(tmp_path, "tiny-cnn", cpu="Some Other CPU" if other else HERE.cpu_model)

    def fake_bench(model, batches, *, profile, **kwargs):
        co = corun(profile)
        return {"model": model, "cores": 1, "batches": [], "corun": co.mode, "corun_model": co.to_json(),
                "notes": [], "prediction": bench_mod.prediction_name(co), "prediction_means": bench_mod.prediction_means(co),
                "conditions": {"note": None}}

    monkeypatch.setattr(bench_mod, "run_bench", fake_bench)
    code, _, err = cli("bench", "--model", "tiny-cnn", "--batches", "1", "--profile", prof)
    assert code == 0, err
    lines = [line for line in err.splitlines() if "warning" in line]
    if warned:
        assert len(lines) == 1 and "describes Some Other CPU" in lines[0] and "not this machine" in lines[0]
    else:
        assert lines == []
