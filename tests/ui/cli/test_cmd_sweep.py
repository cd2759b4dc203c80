"""`packrat sweep`: table, report and summary; resuming; exit 2 on bad grids, 1 when runs failed."""

from __future__ import annotations

import json

import pytest

AXES = ["--axis", "profile=builtin:cnn-4", "--axis", "cores=4",
        "--axis", "workload=poisson:rate=100..300/100,duration=1s,max_batch=8", "--axis", "policy=packrat,fat"]


def test_sweep_writes_the_table_the_report_and_prints_the_best_policy_per_cell(cli, tmp_path):
    out = tmp_path / "s"
    code, stdout, err = cli("sweep", *AXES, "--out", str(out), "--engine", "serial")
    assert code == 0, err
    assert "6 runs: 6 ran now (0 failed)" in stdout and "best policy per cell" in stdout
    assert {p.name for p in out.iterdir()} >= {"results.csv", "grid.json", "report.html"}
    html = (out / "report.html").read_text()
    assert "Latency vs offered load" in html and "Best plan per cell" in html


def test_sweep_json_is_one_object_and_a_rerun_skips_every_finished_run(cli, tmp_path):
    out = str(tmp_path / "s")
    code, stdout, err = cli("sweep", *AXES, "--out", out, "--engine", "local", "--workers", "2", "--json")
    assert code == 0, err
    first = json.loads(stdout)
    assert first["ran"] == 6 and first["skipped"] == 0 and first["engine"] == "local" and first["workers"] == 2
    assert len(first["best"]) == 3 and first["best"][0]["best_policy"] in ("packrat", "fat")
    code, stdout, err = cli("sweep", *AXES, "--out", out, "--engine", "serial", "--json")
    again = json.loads(stdout)
    assert code == 0 and again["ran"] == 0 and again["skipped"] == 6 and again["best"] == first["best"]


def test_sweep_reads_a_toml_grid_file(cli, tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text('profile = "builtin:cnn-4"\ncores = 4\nworkload = "closed:batch=8,requests=64"\npolicy = ["fat", "thin"]\nseed = "0..1"\n')
    code, stdout, err = cli("sweep", str(grid), "--out", str(tmp_path / "s"), "--engine", "serial", "--json")
    assert code == 0, err
    assert json.loads(stdout)["ran"] == 4


def test_sweep_progress_shows_runs_done_and_an_eta(cli, tmp_path):
    code, _, err = cli("sweep", *AXES, "--out", str(tmp_path / "s"), "--engine", "serial", "--progress")
    assert code == 0
    assert "sweep: 6/6 runs" in err and "ETA" in err


def test_failed_runs_exit_1_with_their_rows_written(cli, tmp_path):
    out = tmp_path / "s"
    code, stdout, err = cli("sweep", "--axis", "profile=builtin:cnn-4", "--axis", "cores=4,64",
                            "--axis", "workload=poisson:rate=100,duration=1s", "--axis", "policy=fat",
                            "--out", str(out), "--engine", "serial")
    assert code == 1
    assert "1 run(s) failed" in err
    assert (out / "results.csv").read_text().count("\n") == 3


@pytest.mark.parametrize(
    "args, message",
    [
        (["--axis", "colour=red"], "unknown axis 'colour'"),
        ([], "empty grid"),
        (["--axis", "profile=builtin:cnn-4", "--axis", "cores=4", "--axis", "workload="], "empty grid: axis 'workload'"),
        (["--axis", "profile=builtin:cnn-4", "--axis", "cores=4", "--axis", "workload=poisson:rate=1..200000,duration=1s"],
         "pass --yes"),
        (["--axis", "profile=builtin:nope-4", "--axis", "cores=4", "--axis", "workload=poisson:rate=1,duration=1s"], "nope"),
        ([*AXES, "--engine", "warp"], "--engine must be one of"),
        (["no-such-grid.toml"], "cannot read grid 'no-such-grid.toml'"),
        ([*AXES, "--workers", "0"], "--workers must be a positive integer"),
        ([*AXES, "--ray-address", "auto"], "--ray-address needs --engine ray"),
    ],
)
def test_bad_input_exits_2_with_one_line_naming_it(cli, tmp_path, args, message):
    code, stdout, err = cli("sweep", *args, "--out", str(tmp_path / "s"))
    assert code == 2, err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_grid_over_100k_runs_needs_yes_and_is_not_started_without_it(cli, tmp_path):
    code, _, err = cli("sweep", "--axis", "profile=builtin:cnn-4", "--axis", "cores=4", "--axis",
                       "workload=poisson:rate=1,duration=1s", "--axis", "seed=0..100000", "--out", str(tmp_path / "s"))
    assert code == 2 and "300,003 runs" in err
    assert not (tmp_path / "s").exists()
