"""Hostile input to `packrat simulate`: a huge max_batch, huge workloads, unsafe --out targets."""

from __future__ import annotations

import os

import pytest

from tests.hostile_helpers import assert_bad_input, run_packrat

SIM = ["simulate", "--profile", "builtin:cnn-16", "--cores", "16"]


def test_a_billion_max_batch_is_refused_before_numpy_allocates():
    # `max_batch=1000000000` asked numpy for 68 GiB (traceback)
    out = run_packrat(*SIM, "--workload", "poisson:rate=100/s,duration=1s,max_batch=1000000000",
                      env={"PACKRAT_MAX_MEMORY_MB": None}, memory_mb=1536)
    assert_bad_input(out, "PACKRAT_MAX_MEMORY_MB")


def test_a_workload_with_more_requests_than_the_memory_limit_allows_is_refused():
    out = run_packrat(*SIM, "--workload", "poisson:rate=100000/s,duration=10s",
                      env={"PACKRAT_MAX_MEMORY_MB": "64"}, memory_mb=1536)
    assert_bad_input(out, "PACKRAT_MAX_MEMORY_MB", "requests")


def test_the_library_refuses_too_not_only_the_cli(monkeypatch):
    from packrat_sim.optimizer import OptimizerError
    from packrat_sim.profile import builtin_profile
    from packrat_sim.simulator import SimulationError, compare_plans
    from packrat_sim.workload import WorkloadError, load_workload

    monkeypatch.setenv("PACKRAT_MAX_MEMORY_MB", "64")
    with pytest.raises((SimulationError, OptimizerError, WorkloadError), match="PACKRAT_MAX_MEMORY_MB"):
        compare_plans(builtin_profile("cnn-16"), 16, load_workload("poisson:rate=10/s,duration=1s,max_batch=10000000"), seed=1)


@pytest.mark.parametrize("kind", ["file", "symlink", "missing-parent"])
def test_simulate_out_refuses_unusable_directories_before_simulating(tmp_path, kind):
    target = {"file": tmp_path / "f", "symlink": tmp_path / "ln", "missing-parent": tmp_path / "a" / "b"}[kind]
    if kind == "file":
        target.write_text("keep")
    if kind == "symlink":
        (tmp_path / "real").mkdir()
        target.symlink_to(tmp_path / "real")
    out = run_packrat(*SIM, "--workload", "poisson:rate=100/s,duration=2s", "--out", str(target))
    assert_bad_input(out, str(target) if kind != "missing-parent" else str(tmp_path / "a"))
    assert not (tmp_path / "a").exists()
    if kind == "symlink":
        assert os.listdir(tmp_path / "real") == []


def test_simulate_out_creates_the_directory_and_writes_through_the_safe_writer(tmp_path, cli):
    out_dir = tmp_path / "sim"
    code, _, err = cli(*SIM, "--workload", "poisson:rate=100/s,duration=1s", "--out", str(out_dir))
    assert code == 0, err
    names = sorted(os.listdir(out_dir))
    assert "summary.json" in names and not [n for n in names if n.startswith(".packrat-tmp-")]
    # a FIFO planted where a result file goes is refused, not blocked on
    os.unlink(out_dir / "summary.json")
    os.mkfifo(out_dir / "summary.json")
    code, _, err = cli(*SIM, "--workload", "poisson:rate=100/s,duration=1s", "--out", str(out_dir))
    assert code == 2 and "FIFO" in err
