"""`packrat plan` and `packrat profile` from the shell's point of view."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from packrat_sim.plan import loads_plan
from packrat_sim.profile import read_profile
from ui.cli.app import main

FIXTURES = Path(__file__).parents[2] / "packrat_sim" / "fixtures"


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_plan_prints_the_compact_plan_latency_and_speedups(capsys):
    code, out, err = run(capsys, "plan", "--profile", "builtin:transformer-16", "--batch", "64", "--cores", "16")
    assert code == 0, err
    assert "4 x 4t x 16" in out and "faster" in out and "SYNTHETIC" in out


def test_plan_json_is_one_object_with_the_contract_fields(capsys):
    code, out, err = run(capsys, "plan", "--profile", "builtin:cnn-16", "--batch", "64", "--cores", "16", "--json")
    assert code == 0 and err == ""
    obj = json.loads(out)
    assert {"batch", "cores", "groups", "predicted_ms", "fat_ms", "thin_ms"} <= set(obj)
    assert obj["batch"] == 64 and obj["cores"] == 16 and obj["synthetic"] is True
    assert sum(n * b for n, _, b in obj["groups"]) == 64
    assert obj["fat_ms"] >= obj["predicted_ms"] and obj["thin_ms"] >= obj["predicted_ms"]


def test_plan_out_writes_a_plan_file_that_reads_back(capsys, tmp_path):
    out_file = tmp_path / "plan.json"
    code, _, _ = run(capsys, "plan", "--profile", "builtin:cnn-16", "--batch", "8", "--cores", "16", "--out", str(out_file))
    assert code == 0
    assert loads_plan(out_file.read_text()).batch == 8


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--batch", "0", "--cores", "16"], "batch must be a positive integer, got 0"),
        (["--batch", "8", "--cores", "0"], "cores must be a positive integer, got 0"),
        (["--batch", "8", "--cores", "32"], "cores=32 is beyond the profiled threads"),
        (["--batch", "3", "--cores", "16", "--min-batch", "2"], "batch 3 cannot be covered"),
        (["--batch", "x", "--cores", "16"], "Invalid value for '--batch'"),
        (["--batch", "8", "--cores", "16", "--statistic", "p99"], "unknown statistic 'p99'"),
    ],
)
def test_plan_bad_input_exits_2_with_one_line_naming_the_value(capsys, args, fragment):
    code, out, err = run(capsys, "plan", "--profile", "builtin:cnn-16", *args)
    assert code == 2 and out == ""
    assert fragment in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_plan_names_a_missing_or_corrupt_profile_file(capsys, tmp_path):
    code, _, err = run(capsys, "plan", "--profile", str(tmp_path / "none.json"), "--batch", "1", "--cores", "1")
    assert code == 2 and "does not exist" in err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = run(capsys, "plan", "--profile", str(bad), "--batch", "1", "--cores", "1")
    assert code == 2 and "not valid JSON" in err


def test_profile_import_lists_series_when_the_choice_is_ambiguous(capsys, tmp_path):
    csv = FIXTURES / "packrat_resnet_8core.csv"
    code, _, err = run(capsys, "profile", "--import-packrat", str(csv), "--out", str(tmp_path / "p.json"))
    assert code == 2 and "4 series remain" in err and "benchmark=resnet_manual_eager" in err
    assert not (tmp_path / "p.json").exists()


def test_profile_import_with_series_writes_a_profile_that_plans(capsys, tmp_path):
    csv, out_file = FIXTURES / "packrat_resnet_8core.csv", tmp_path / "p.json"
    code, out, err = run(
        capsys, "profile", "--import-packrat", str(csv), "--series", "benchmark=*_script",
        "--series", "topology=sequential", "--out", str(out_file),
    )
    assert code == 0, err
    assert read_profile(str(out_file)).model == "resnet_manual_script"
    code, out, err = run(capsys, "plan", "--profile", str(out_file), "--batch", "16", "--cores", "8", "--json")
    assert code == 0 and json.loads(out)["synthetic"] is False


def test_profile_exports_a_builtin_to_csv(capsys, tmp_path):
    out_file = tmp_path / "p.csv"
    code, _, _ = run(capsys, "profile", "--from", "builtin:cnn-16", "--out", str(out_file))
    assert code == 0
    assert out_file.read_text().startswith("threads,batch,n,min_ms")


def test_profile_needs_exactly_one_source(capsys, tmp_path):
    code, _, err = run(capsys, "profile", "--out", str(tmp_path / "x.json"))
    assert code == 2 and "exactly one of" in err


def test_unknown_verbs_and_options_are_usage_errors(capsys):
    assert run(capsys, "frobnicate")[0] == 2
    assert run(capsys, "plan", "--nope")[0] == 2


def test_plan_export_prints_run_cpu_lines_and_notes_limitations_on_stderr(capsys):
    code, out, err = run(capsys, "plan", "--profile", "builtin:transformer-16", "--batch", "64", "--cores", "16", "--export", "run-cpu")
    assert code == 0
    assert out.count("torch.backends.xeon.run_cpu") == 4 and "packrat: note:" in err


def test_plan_export_json_mode_is_one_object(capsys):
    code, out, _ = run(capsys, "plan", "--profile", "builtin:cnn-16", "--batch", "8", "--cores", "16", "--export", "torchserve", "--json")
    obj = json.loads(out)
    assert code == 0 and obj["format"] == "torchserve" and "cpu_launcher_enable=true" in obj["text"]


def test_torchserve_gets_the_homogeneous_optimum_of_a_heterogeneous_plan_priced_against_it(capsys):
    code, out, _ = run(capsys, "plan", "--profile", "builtin:transformer-16", "--batch", "40", "--cores", "16",
                       "--export", "torchserve", "--json")
    obj = json.loads(out)
    assert code == 0 and "cpu_launcher_args=--ncores-per-instance 3" in obj["text"]
    assert obj["limitations"][0].startswith("TorchServe has no heterogeneous workers: exported the best homogeneous "
                                            "plan 5 x 3t x 8 (predicted 62.83 ms), 1.00x the predicted latency of "
                                            "the heterogeneous optimum 2 x 6t x 16 + 1 x 4t x 8 (62.78 ms)")


def test_plan_export_rejects_an_unknown_format(capsys):
    code, _, err = run(capsys, "plan", "--profile", "builtin:cnn-16", "--batch", "8", "--cores", "16", "--export", "yaml")
    assert code == 2 and "unknown export format 'yaml'" in err


def test_plan_with_interference_reports_what_the_isolated_plan_really_costs(capsys):
    code, out, _ = run(capsys, "plan", "--profile", "builtin:transformer-16+interference", "--batch", "64", "--cores", "16", "--interference", "--json")
    obj = json.loads(out)
    assert code == 0
    info = obj["interference"]
    assert info["isolated_groups"] == [[4, 4, 16]]
    assert info["isolated_under_interference_ms"] > info["isolated_predicted_ms"]
    assert obj["predicted_ms"] <= info["isolated_under_interference_ms"]
    assert obj["thin_ms"] >= obj["predicted_ms"] and obj["fat_ms"] >= obj["predicted_ms"]


def test_plan_with_interference_but_no_model_says_so_and_plans_as_before(capsys):
    code, out, _ = run(capsys, "plan", "--profile", "builtin:transformer-16", "--batch", "64", "--cores", "16", "--interference")
    assert code == 0 and "no interference model" in out and "4 x 4t x 16" in out


# ---- issue 18.6: hostile numbers give one line and exit 2, never a traceback or a warning


def _one_line_exit_2(code, out, err):
    assert code == 2 and out == "" and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("batch", ["1000000000", "1e20", "100000000000000000000000"])
def test_plan_with_an_absurd_batch_exits_2_with_one_line(capsys, batch):
    _one_line_exit_2(*run(capsys, "plan", "--profile", "builtin:cnn-16", "--batch", batch, "--cores", "16"))


def test_plan_refuses_a_dp_table_above_the_limit_and_says_how_to_raise_it(capsys, monkeypatch):
    monkeypatch.setenv("PACKRAT_MAX_MEMORY_MB", "1")
    code, out, err = run(capsys, "plan", "--profile", "builtin:cnn-16", "--batch", "4096", "--cores", "16")
    _one_line_exit_2(code, out, err)
    assert "PACKRAT_MAX_MEMORY_MB" in err


def _profile_json(tmp_path, edit) -> str:
    from packrat_sim.profile import builtin_profile

    obj = builtin_profile("cnn-4+interference", max_batch=8).to_json()
    edit(obj)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(obj))
    return str(path)


def test_plan_under_an_interference_slowdown_of_1e308_exits_2_with_one_line(capsys, tmp_path):
    def huge(obj):
        obj["interference"]["points"] = [[1, 1e308]]

    path = _profile_json(tmp_path, huge)
    code, out, err = run(capsys, "plan", "--profile", path, "--batch", "8", "--cores", "4", "--interference")
    _one_line_exit_2(code, out, err)
    assert "slowdown" in err


def test_a_profile_whose_samples_are_all_1e308_exits_2_without_a_numpy_warning(capsys, tmp_path):
    import warnings

    def huge(obj):
        for c in obj["cells"]:
            c["samples_ms"] = [1e308] * 5
            for k in ("min_ms", "median_ms", "mean_ms", "p90_ms", "max_ms"):
                c.pop(k, None)

    path = _profile_json(tmp_path, huge)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code, out, err = run(capsys, "plan", "--profile", path, "--batch", "8", "--cores", "4")
    _one_line_exit_2(code, out, err)
    assert "1e+308" in err


def test_plan_allows_idle_cores_by_default_and_exact_cores_keeps_packrats_rule(capsys):
    args = ["plan", "--profile", "builtin:cnn-16", "--batch", "1", "--cores", "16", "--json"]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    idle = json.loads(out)
    code, out, err = run(capsys, *args, "--exact-cores")
    exact = json.loads(out)
    assert not idle["exact_cores"] and exact["exact_cores"]
    assert idle["predicted_ms"] <= exact["predicted_ms"]
    assert sum(t * n for n, t, _ in exact["groups"]) == 16


def test_plan_baselines_never_beat_the_plan_on_cnn64_batch_1024_48_cores(capsys):
    code, out, err = run(capsys, "plan", "--profile", "builtin:cnn-64", "--batch", "1024", "--cores", "48", "--json")
    obj = json.loads(out)
    assert code == 0, err
    assert obj["thin_ms"] >= obj["predicted_ms"] and obj["fat_ms"] >= obj["predicted_ms"]
    assert "1-thread plan" in obj["thin_note"]


def test_plan_rejects_an_unknown_candidate_set_with_one_line(capsys):
    code, out, err = run(capsys, "plan", "--profile", "builtin:cnn-16", "--batch", "8", "--cores", "4", "--candidates", "all")
    _one_line_exit_2(code, out, err)
    assert "--candidates" in err and "'all'" in err
