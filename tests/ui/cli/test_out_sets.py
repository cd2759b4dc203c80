"""`simulate --out DIR` writes its set of files all or nothing (issue 29, item 5): on a full
disk the old set stays whole, the results are printed, one line names what was not written."""

from __future__ import annotations

import os

from tests.disk_full_helpers import fill_disk

ARGS = ("simulate", "--profile", "builtin:cnn-4", "--cores", "4", "--workload", "poisson:rate=50/s,duration=1s")


def test_a_full_disk_leaves_the_old_set_whole_and_names_what_was_not_written(cli, tmp_path, monkeypatch):
    out = tmp_path / "sim"
    code, _, err = cli(*ARGS, "--out", str(out))
    assert code == 0, err
    before = {name: (out / name).read_bytes() for name in os.listdir(out)}
    assert len(before) == 10
    fill_disk(monkeypatch, out, after=4)  # the fifth file of the new set finds the disk full
    code, stdout, err = cli(*ARGS, "--seed", "1", "--out", str(out))
    assert code == 2 and "Traceback" not in err
    assert "request latency p99 ms" in stdout and "wrote" not in stdout  # the results, printed all the same
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "no space left" in lines[0] and "none of the 10 files" in lines[0]
    assert {name: (out / name).read_bytes() for name in os.listdir(out)} == before


def test_a_symlink_in_the_set_is_refused_before_simulating(cli, tmp_path):
    out = tmp_path / "sim"
    out.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("keep")
    os.symlink(victim, out / "fat-history.json")
    code, stdout, err = cli(*ARGS, "--out", str(out))
    assert code == 2 and stdout == "" and "symbolic link" in err and "fat-history.json" in err
    assert victim.read_text() == "keep" and os.listdir(out) == ["fat-history.json"]
