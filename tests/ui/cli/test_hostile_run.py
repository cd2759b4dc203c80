"""Hostile input to `packrat run`: billion-sized batches and loads, a --history path that
cannot be written (refused before any work, not after the whole run)."""

from __future__ import annotations

import json
import os

import pytest

from tests.hostile_helpers import assert_bad_input, run_packrat

pytest.importorskip("torch")


def test_a_history_path_in_a_missing_directory_is_refused_before_the_run(tmp_path):
    # with a 10-minute load, only a refusal before the run finishes within the time limit
    missing = tmp_path / "nonexist"
    out = run_packrat("run", "--model", "tiny-mlp", "--load", "closed:8@600s", "--cores", "1",
                      "--history", str(missing / "h.json"), timeout_s=120)
    assert_bad_input(out, str(missing), "does not exist")


@pytest.mark.parametrize("kind", ["fifo", "symlink", "directory"])
def test_a_history_target_that_is_not_a_regular_file_is_refused_before_the_run(tmp_path, kind):
    target = tmp_path / "h.json"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "symlink":
        target.symlink_to(tmp_path / "elsewhere.json")
    else:
        target.mkdir()
    out = run_packrat("run", "--model", "tiny-mlp", "--load", "closed:8@600s", "--cores", "1",
                      "--history", str(target), timeout_s=120)
    assert_bad_input(out, str(target))
    assert not (tmp_path / "elsewhere.json").exists()


def test_a_billion_batch_closed_load_is_refused_by_the_memory_limit():
    # `run --load 1000000000:2s` was killed by the kernel at 23-24 GB
    out = run_packrat("run", "--model", "tiny-mlp", "--load", "closed:1000000000@2s", "--cores", "1", timeout_s=120)
    assert_bad_input(out, "PACKRAT_MAX_MEMORY_MB")


def test_a_billion_batch_with_plan_auto_is_refused_by_the_memory_limit():
    # `run --batch 1000000000` reached 15 GB
    out = run_packrat("run", "--model", "tiny-mlp", "--batch", "1000000000", "--plan", "auto", "--cores", "1",
                      timeout_s=120)
    assert_bad_input(out, "PACKRAT_MAX_MEMORY_MB")


def test_a_plan_file_for_a_huge_batch_is_refused_before_inputs_are_made(tmp_path):
    plan = tmp_path / "big.json"
    plan.write_text(json.dumps({"schema": "packrat.plan/1", "batch": 50_000_000, "cores": 1,
                                "instances": [{"threads": 1, "batch": 50_000_000, "cores": []}]}))
    out = run_packrat("run", "--model", "tiny-cnn", "--batch", "50000000", "--plan", str(plan), "--cores", "1",
                      "--no-fat", env={"PACKRAT_MAX_MEMORY_MB": "512"}, timeout_s=120)
    assert_bad_input(out, "PACKRAT_MAX_MEMORY_MB")


def test_the_runner_library_refuses_too(monkeypatch):
    from packrat_sim.plan import Instance, Plan
    from real_runner.executor import ExecutorError, run_plan

    monkeypatch.setenv("PACKRAT_MAX_MEMORY_MB", "64")
    big = Plan((Instance(1, 10_000_000),), 10_000_000, 1)
    with pytest.raises(ExecutorError, match="PACKRAT_MAX_MEMORY_MB"):
        run_plan("tiny-cnn", big, 1)
