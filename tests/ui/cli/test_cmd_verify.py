"""`packrat verify` from the shell's point of view: verdicts, JSON, exit codes 0 / 1 / 2 / 3."""

from __future__ import annotations

import json

import pytest

from packrat_sim.optimizer import OptimizerOptions, optimize
from packrat_sim.plan import Instance, Plan, dumps_plan, fat
from packrat_sim.profile import Cell, Profile, builtin_profile, write_profile
from ui.cli.app import main

PROFILE = ["--profile", "builtin:cnn-16"]
PROBLEM = PROFILE + ["--batch", "256", "--cores", "16"]


def run(capsys, *args):
    code = main(["verify", *args])
    out, err = capsys.readouterr()
    return code, out, err


def write_plan(tmp_path, plan: Plan, name: str = "plan.json") -> str:
    path = tmp_path / name
    path.write_text(dumps_plan(plan))
    return str(path)


def test_verify_proves_the_optimizer_plan_optimal_and_exits_0(capsys):
    code, out, err = run(capsys, *PROBLEM)
    assert code == 0, err
    assert "OPTIMAL: Z3 proved" in out and "NOT_OPTIMAL" not in out
    expected = optimize(builtin_profile("cnn-16"), 256, 16)
    assert expected.describe() in out  # the compact form: count x threads x sub-batch
    assert "refuted" in out and "solving" in out and " s " in out


def test_verify_says_when_the_density_bound_proved_it_without_asking_z3(capsys):
    code, out, err = run(capsys, "--profile", "builtin:cnn-64+interference", "--batch", "256", "--cores", "64")
    assert code == 0, err
    assert "OPTIMAL: the density bound refuted every query, Z3 was not needed" in out
    assert "(Z3: 0 queries" in out and "64 queries refuted by the density bound without Z3" in out


def test_verify_labels_a_builtin_profile_as_synthetic(capsys):
    _, out, _ = run(capsys, *PROBLEM)
    assert "cnn-16 [synthetic]" in out and "SYNTHETIC profile" in out


def test_verify_json_is_one_object_with_result_plan_and_solving_time(capsys):
    code, out, err = run(capsys, *PROBLEM, "--json")
    assert code == 0 and err == ""
    obj = json.loads(out)
    assert obj["result"] == "optimal" and obj["witness"] is None
    assert obj["plan"]["batch"] == 256 and sum(n * b for n, _, b in obj["plan"]["groups"]) == 256
    assert obj["elapsed_s"] >= 0 and obj["bound_ms"] == obj["latency_ms"] and obj["synthetic"] is True


def test_verify_refutes_the_fat_plan_prints_the_better_allocation_and_exits_1(capsys, tmp_path):
    code, out, err = run(capsys, *PROBLEM, "--plan", write_plan(tmp_path, fat(256, 16)))
    assert code == 1, err
    assert "NOT_OPTIMAL" in out and "witness" in out and "1 x 16t x 256" in out


def test_verify_json_for_a_refuted_plan_carries_a_faster_valid_witness(capsys, tmp_path):
    code, out, _ = run(capsys, *PROBLEM, "--plan", write_plan(tmp_path, fat(256, 16)), "--json")
    obj = json.loads(out)
    assert code == 1 and obj["result"] == "not_optimal"
    witness = Plan.from_json(obj["witness"])
    assert witness.batch == 256 and witness.threads_used <= 16
    assert obj["witness_ms"] < obj["bound_ms"]


def test_verify_says_unknown_and_exits_3_when_the_time_limit_runs_out(capsys):
    code, out, err = run(capsys, *PROBLEM, "--timeout", "1e-9")
    assert code == 3, err
    assert "UNKNOWN" in out and "NOT certified" in out and "OPTIMAL:" not in out


def test_verify_json_reports_unknown_on_a_timeout(capsys):
    code, out, _ = run(capsys, *PROBLEM, "--timeout", "1e-9", "--json")
    assert code == 3 and json.loads(out)["result"] == "unknown"


def test_verify_honours_sockets_and_a_cap_on_instances(capsys):
    code, out, err = run(
        capsys, *PROFILE, "--batch", "256", "--cores", "16", "--cores-per-socket", "8", "--max-instances", "3", "--json"
    )
    assert code == 0, err
    obj = json.loads(out)
    assert obj["options"]["cores_per_socket"] == 8 and obj["encoding"]["sockets"] == 2
    assert sum(n for n, _, _ in obj["plan"]["groups"]) <= 3
    assert all(t <= 8 for _, t, _ in obj["plan"]["groups"])


def test_verify_with_idle_cores_certifies_a_plan_that_leaves_cores_idle(capsys, tmp_path):
    cells = {(1, 2): 1.0, (2, 2): 5.0, (4, 4): 9.0}
    profile = Profile(
        model="tiny",
        cells=tuple(Cell(threads=t, batch=b, mean_ms=v, min_ms=v, max_ms=v) for (t, b), v in cells.items()),
    )
    profile_file = tmp_path / "tiny.json"
    write_profile(profile, str(profile_file))
    two_cores = write_plan(tmp_path, Plan((Instance(1, 2), Instance(1, 2)), 4, 4))
    args = ["--profile", str(profile_file), "--batch", "4", "--cores", "4", "--plan", two_cores]
    code, _, err = run(capsys, *args, "--exact-cores")
    assert code == 2 and "uses 2 of 4 cores" in err
    code, out, err = run(capsys, *args)  # idle cores are allowed by default
    assert code == 0, err
    assert "OPTIMAL: Z3 proved" in out and "synthetic" not in out.lower()


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--batch", "0", "--cores", "16"], "--batch must be a positive integer, got 0"),
        (["--batch", "8", "--cores", "32"], "cores=32 is beyond the profiled threads"),
        (["--batch", "8", "--cores", "16", "--timeout", "0"], "--timeout must be a number of seconds > 0"),
        (["--batch", "8", "--cores", "16", "--max-instances", "0"], "--max-instances must be a positive integer"),
        (["--batch", "8", "--cores", "16", "--cores-per-socket", "-2"], "--cores-per-socket must be a positive integer"),
        (["--batch", "3", "--cores", "16", "--min-batch", "2"], "batch 3 cannot be covered"),
        (["--batch", "8", "--cores", "16", "--statistic", "p99"], "unknown statistic 'p99'"),
        (["--batch", "x", "--cores", "16"], "Invalid value for '--batch'"),
    ],
)
def test_verify_bad_input_exits_2_with_one_line_naming_the_value(capsys, extra, fragment):
    code, out, err = run(capsys, *PROFILE, *extra)
    assert code == 2 and out == ""
    assert fragment in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_verify_rejects_an_unknown_builtin_profile_with_exit_2(capsys):
    code, _, err = run(capsys, "--profile", "builtin:nope-16", "--batch", "8", "--cores", "16")
    assert code == 2 and "unknown builtin profile 'nope-16'" in err


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("{not json", "not valid JSON"),
        ('{"schema": "packrat.plan/9"}', "unknown plan schema"),
        (dumps_plan(fat(256, 8)), "is for 8 cores, not 16"),
        (dumps_plan(fat(128, 16)), "serves a batch of 128, not 256"),
        (dumps_plan(Plan((Instance(8, 256),), 256, 16)), "uses 8 of 16 cores"),
        (dumps_plan(Plan((Instance(15, 3), Instance(1, 253)), 256, 16)), "15t x 3 is not a profiled cell"),
    ],
)
def test_verify_a_plan_file_that_is_not_a_valid_plan_for_the_batch_and_cores_exits_2(capsys, tmp_path, content, fragment):
    path = tmp_path / "plan.json"
    path.write_text(content)
    code, out, err = run(capsys, *PROBLEM, "--plan", str(path), "--exact-cores")
    assert code == 2 and out == ""
    assert fragment in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_verify_a_missing_plan_file_exits_2_naming_it(capsys, tmp_path):
    missing = str(tmp_path / "nope.json")
    code, _, err = run(capsys, *PROBLEM, "--plan", missing)
    assert code == 2 and "nope.json" in err and "does not exist" in err


# ------------------------------------------------------------ packrat plan --certify


def test_plan_certify_adds_a_certificate_object_to_the_json_and_exits_0(capsys):
    code = main(["plan", *PROBLEM, "--certify", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    obj = json.loads(out)
    assert obj["certificate"]["result"] == "optimal"
    assert obj["certificate"]["latency_ms"] == obj["predicted_ms"]


def test_plan_certify_prints_the_verdict_under_the_plan(capsys):
    code = main(["plan", *PROBLEM, "--certify"])
    out, _ = capsys.readouterr()
    assert code == 0 and "OPTIMAL: Z3 proved" in out and out.index("plan ") < out.index("OPTIMAL")


def test_plan_without_certify_has_no_certificate(capsys):
    main(["plan", *PROBLEM, "--json"])
    assert "certificate" not in json.loads(capsys.readouterr().out)


def test_plan_certify_with_interference_certifies_the_interference_aware_plan(capsys):
    code = main(["plan", "--profile", "builtin:transformer-16+interference", "--batch", "64", "--cores", "16",
                 "--certify", "--interference", "--json"])
    obj = json.loads(capsys.readouterr().out)
    assert code == 0 and obj["certificate"]["result"] == "optimal"
    assert obj["certificate"]["latency_ms"] == obj["predicted_ms"]


def test_plan_certify_cannot_be_combined_with_export(capsys):
    code = main(["plan", *PROBLEM, "--certify", "--export", "json"])
    _, err = capsys.readouterr()
    assert code == 2 and "--certify" in err and len(err.strip().splitlines()) == 1


def test_verify_with_interference_certifies_the_interference_aware_plan(capsys):
    code = main(["verify", "--profile", "builtin:transformer-16+interference", "--batch", "64", "--cores", "16", "--interference", "--json"])
    obj = json.loads(capsys.readouterr().out)
    assert code == 0 and obj["result"] == "optimal"


def test_verify_with_interference_refutes_the_isolated_plan(capsys, tmp_path):
    plan_file = tmp_path / "iso.json"
    assert main(["plan", "--profile", "builtin:transformer-16+interference", "--batch", "64", "--cores", "16", "--isolated",
                 "--out", str(plan_file)]) == 0
    capsys.readouterr()
    code = main(["verify", "--profile", "builtin:transformer-16+interference", "--batch", "64", "--cores", "16",
                 "--interference", "--plan", str(plan_file), "--json"])
    obj = json.loads(capsys.readouterr().out)
    assert code == 1 and obj["result"] == "not_optimal" and obj["witness"] is not None


def test_verify_with_interference_needs_a_model(capsys):
    code = main(["verify", "--profile", "builtin:cnn-16", "--batch", "8", "--cores", "16", "--interference"])
    assert code == 2 and "no interference model" in capsys.readouterr().err


@pytest.mark.parametrize("batch", ["1e9", "1000000000"])
def test_verify_with_an_absurd_batch_exits_2_with_one_line(capsys, batch):
    code, out, err = run(capsys, "--profile", "builtin:cnn-16", "--batch", batch, "--cores", "16")
    assert code == 2 and out == "" and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
