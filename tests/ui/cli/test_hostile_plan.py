"""Hostile input to `packrat plan` / `verify`: huge batches, duplicate keys, unsafe --out targets.

Each case runs `packrat` in a child under a memory cap (tests/hostile_helpers.py), so a
runaway allocation fails the test instead of the machine, and asserts exit 2 with one
line and no traceback.
"""

from __future__ import annotations

import json
import os
import stat

import pytest

from tests.hostile_helpers import assert_bad_input, char_device, run_packrat

PLAN = ["plan", "--profile", "builtin:cnn-16", "--cores", "16"]
SMALL_LIMIT = {"PACKRAT_MAX_MEMORY_MB": "256"}


def test_a_batch_whose_dp_table_exceeds_the_memory_limit_is_refused_before_allocating():
    # plan --batch 10000000 took 2.7 GB and 19 s; scaled down: the 17 x 65537 table (~30 MB)
    # of the largest batch cnn-16 can cover, under a 16 MB limit
    out = run_packrat(*PLAN, "--batch", "65536", env={"PACKRAT_MAX_MEMORY_MB": "16"}, memory_mb=1536)
    assert_bad_input(out, "PACKRAT_MAX_MEMORY_MB", "batch=65536", "16.0 MiB")


def test_a_billion_batch_is_refused_in_bounded_memory_and_time():
    out = run_packrat(*PLAN, "--batch", "1000000000", env={"PACKRAT_MAX_MEMORY_MB": None}, memory_mb=1536,
                      timeout_s=60)
    assert_bad_input(out, "1000000000")


def test_the_optimizer_library_refuses_too(monkeypatch):
    from packrat_sim.optimizer import OptimizerError, optimize
    from packrat_sim.profile import builtin_profile

    monkeypatch.setenv("PACKRAT_MAX_MEMORY_MB", "16")
    with pytest.raises(OptimizerError, match="PACKRAT_MAX_MEMORY_MB"):
        optimize(builtin_profile("cnn-16"), 65536, 16)


def test_raising_the_limit_lets_the_same_request_through():
    out = run_packrat(*PLAN, "--batch", "4096", "--json", env={"PACKRAT_MAX_MEMORY_MB": "4096"}, memory_mb=2048)
    assert out.code == 0, out.stderr
    assert json.loads(out.stdout)["batch"] == 4096


def test_a_bad_memory_limit_variable_is_refused_naming_it():
    out = run_packrat(*PLAN, "--batch", "64", env={"PACKRAT_MAX_MEMORY_MB": "lots"})
    assert_bad_input(out, "PACKRAT_MAX_MEMORY_MB='lots'")


def _plan_json(**over) -> str:
    obj = {"schema": "packrat.plan/1", "batch": 64, "cores": 16,
           "instances": [{"threads": 16, "batch": 64, "cores": []}], "predicted_ms": 1.0}
    obj.update(over)
    return json.dumps(obj)


def test_a_plan_file_with_a_duplicate_key_is_refused_naming_the_key(tmp_path):
    text = _plan_json()[:-1] + ', "instances": []}'  # a second, empty "instances"
    path = tmp_path / "dup.json"
    path.write_text(text)
    out = run_packrat("verify", "--profile", "builtin:cnn-16", "--batch", "64", "--cores", "16", "--plan", str(path))
    assert_bad_input(out, "duplicate key 'instances'")


def test_a_duplicate_key_inside_an_instance_is_refused_too():
    from packrat_sim.plan import PlanError, loads_plan

    with pytest.raises(PlanError, match="duplicate key 'threads'"):
        loads_plan(_plan_json(instances=[{"threads": 16, "batch": 64}]).replace('"threads": 16', '"threads": 16, "threads": 1'))


@pytest.mark.parametrize("kind", ["device", "fifo", "symlink", "directory", "missing-parent"])
def test_plan_out_refuses_unsafe_targets_and_leaves_them_alone(tmp_path, kind):
    real = tmp_path / "real.json"
    real.write_text("keep")
    target = {
        "device": char_device(tmp_path) if kind == "device" else None,
        "fifo": str(tmp_path / "pipe"),
        "symlink": str(tmp_path / "link.json"),
        "directory": str(tmp_path),
        "missing-parent": str(tmp_path / "nope" / "p.json"),
    }[kind]
    if kind == "fifo":
        os.mkfifo(target)
    if kind == "symlink":
        os.symlink(real, target)
    out = run_packrat(*PLAN, "--batch", "64", "--out", target, timeout_s=60)
    line = assert_bad_input(out)
    assert {"device": "character device", "fifo": "FIFO", "symlink": "symbolic link", "directory": "directory",
            "missing-parent": "does not exist"}[kind] in line
    assert real.read_text() == "keep"
    if kind == "device":
        assert stat.S_ISCHR(os.lstat(target).st_mode)
    assert not (tmp_path / "nope").exists()
    assert [n for n in os.listdir(tmp_path) if n.startswith(".packrat-tmp-")] == []


def test_plan_out_writes_atomically_with_the_umasks_mode(tmp_path, cli):
    target = tmp_path / "p.json"
    old = os.umask(0o022)
    try:
        code, _, err = cli(*PLAN, "--batch", "64", "--out", str(target))
    finally:
        os.umask(old)
    assert code == 0, err
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644
    assert json.loads(target.read_text())["batch"] == 64
