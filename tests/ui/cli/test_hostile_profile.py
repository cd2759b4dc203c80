"""Hostile --out targets and sizes for `packrat profile`."""

from __future__ import annotations

import os
import stat

import pytest

from tests.hostile_helpers import assert_bad_input, char_device, run_packrat

EXPORT = ["profile", "--from", "builtin:cnn-16"]


def test_out_dev_null_is_refused_and_the_device_stays_a_device(tmp_path):
    dev = char_device(tmp_path)  # /dev/null, or a private node of it when running as root
    out = run_packrat(*EXPORT, "--out", dev)
    assert_bad_input(out, dev, "character device")
    assert stat.S_ISCHR(os.lstat(dev).st_mode)


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_out_fifo_is_refused_without_blocking(tmp_path, suffix):
    fifo = tmp_path / f"pipe{suffix}"
    os.mkfifo(fifo)
    out = run_packrat(*EXPORT, "--out", str(fifo), timeout_s=60)
    assert_bad_input(out, "FIFO")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_out_symlink_is_refused_and_its_target_untouched(tmp_path, suffix):
    real = tmp_path / f"real{suffix}"
    real.write_text("keep")
    link = tmp_path / f"link{suffix}"
    link.symlink_to(real)
    out = run_packrat(*EXPORT, "--out", str(link))
    assert_bad_input(out, "symbolic link")
    assert real.read_text() == "keep" and link.is_symlink()


def test_out_in_a_missing_directory_is_refused_naming_it(tmp_path):
    out = run_packrat(*EXPORT, "--out", str(tmp_path / "no" / "p.json"))
    assert_bad_input(out, str(tmp_path / "no"), "does not exist")
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_profile_files_get_the_umasks_mode_and_leave_no_temp_file(tmp_path, cli, suffix):
    target = tmp_path / f"p{suffix}"
    old = os.umask(0o027)
    try:
        code, _, err = cli(*EXPORT, "--out", str(target))
    finally:
        os.umask(old)
    assert code == 0, err
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
    assert [n for n in os.listdir(tmp_path) if n.startswith(".")] == []


def test_measuring_into_a_missing_directory_is_refused_before_measuring(tmp_path):
    pytest.importorskip("torch")
    out = run_packrat("profile", "--model", "tiny-mlp", "--threads", "1", "--batches", "1", "--repeats", "1000",
                      "--out", str(tmp_path / "no" / "p.json"), timeout_s=120)
    assert_bad_input(out, "does not exist")


def test_measuring_a_billion_batch_is_refused_by_the_memory_limit(tmp_path):
    pytest.importorskip("torch")
    out = run_packrat("profile", "--model", "tiny-cnn", "--threads", "1", "--batches", "1000000000",
                      "--out", str(tmp_path / "p.json"), timeout_s=120)
    assert_bad_input(out, "PACKRAT_MAX_MEMORY_MB")
    assert not (tmp_path / "p.json").exists()
