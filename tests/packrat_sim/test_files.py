"""packrat_sim.files: the safe writer every output goes through."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from packrat_sim.files import (
    TEMP_PREFIX,
    OutputBusyError,
    OutputPathError,
    check_output_path,
    open_regular,
    output_lock,
    prepare_output_dir,
    remove_stale_temps,
    write_file,
    write_files,
    write_json,
    write_text,
)

REPO = Path(__file__).resolve().parents[2]


def temps(directory: Path) -> list[str]:
    return [n for n in os.listdir(directory) if n.startswith(TEMP_PREFIX)]


def test_a_new_file_is_written_with_the_umasks_mode_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_text(tmp_path / "a.json", "{}\n")
    finally:
        os.umask(old)
    assert path.read_text() == "{}\n"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert temps(tmp_path) == []


def test_replacing_a_file_keeps_its_mode_and_replaces_its_content(tmp_path):
    target = tmp_path / "plan.json"
    target.write_text("old")
    os.chmod(target, 0o640)
    write_json(target, {"a": 1})
    assert target.read_text() == '{\n "a": 1\n}\n'
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640


def test_the_write_is_a_rename_so_the_inode_changes(tmp_path):
    target = tmp_path / "x.txt"
    target.write_text("old")
    before = os.stat(target).st_ino
    other = open(target)  # a reader holding the old file still sees the old content
    write_text(target, "new")
    assert os.stat(target).st_ino != before
    assert other.read() == "old"
    other.close()


def test_a_directory_target_is_refused(tmp_path):
    with pytest.raises(OutputPathError, match="is a directory"):
        write_text(tmp_path, "x")


def test_a_fifo_target_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OutputPathError, match="FIFO"):
        write_text(fifo, "x")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_device_node_target_is_refused_and_left_alone():
    with pytest.raises(OutputPathError, match="character device"):
        check_output_path("/dev/null")  # validated without writing: safe even if broken
    with pytest.raises(OutputPathError, match="character device"):
        write_text("/dev/null", "x")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_symlink_target_is_refused_with_a_line_saying_so(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("keep")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    with pytest.raises(OutputPathError, match="symbolic link"):
        write_text(link, "new")
    assert real.read_text() == "keep" and link.is_symlink()


def test_a_dangling_symlink_is_refused_too(tmp_path):
    link = tmp_path / "dangling"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(OutputPathError, match="symbolic link"):
        write_text(link, "x")
    assert not (tmp_path / "nowhere").exists()


def test_a_symlink_is_followed_only_when_asked(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    write_text(link, "new", follow_symlinks=True)
    assert link.is_symlink() and real.read_text() == "new"


def test_a_missing_parent_directory_is_refused_naming_it(tmp_path):
    missing = tmp_path / "no" / "such"
    with pytest.raises(OutputPathError, match="does not exist; create it first") as err:
        write_text(missing / "h.json", "x")
    assert str(missing) in str(err.value)
    assert not missing.exists()


def test_check_output_path_validates_without_writing(tmp_path):
    assert check_output_path(tmp_path / "new.json") == str(tmp_path / "new.json")
    assert not (tmp_path / "new.json").exists()
    with pytest.raises(OutputPathError):
        check_output_path("/nonexist/h.json", "--history")


def test_the_error_is_one_line_and_an_oserror_and_a_valueerror(tmp_path):
    with pytest.raises(OutputPathError) as err:
        write_text(tmp_path / "a\nb" / "c", "x")
    assert isinstance(err.value, OSError) and isinstance(err.value, ValueError)
    assert "\n" not in str(err.value).replace("a\\nb", "")


def test_an_exception_while_writing_leaves_no_temp_file_and_the_old_content(tmp_path):
    target = tmp_path / "big.csv"
    target.write_text("old")

    def writer(fh):
        fh.write(b"partial")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_file(target, writer)
    assert target.read_text() == "old"
    assert temps(tmp_path) == []


def test_keyboard_interrupt_while_writing_leaves_no_temp_file(tmp_path):
    def writer(fh):
        fh.write(b"x")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_file(tmp_path / "o.json", writer)
    assert temps(tmp_path) == [] and not (tmp_path / "o.json").exists()


def _run_child(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
                          capture_output=True, text=True, timeout=60)


def test_sigterm_during_a_write_removes_the_temp_file_and_the_process_dies_of_it(tmp_path):
    target = tmp_path / "profile.json"
    target.write_text("old")
    proc = _run_child(f"""
        import os, signal
        from packrat_sim.files import write_file
        def writer(fh):
            fh.write(b"half")
            os.kill(os.getpid(), signal.SIGTERM)
            fh.write(b"never")
        write_file({str(target)!r}, writer)
        print("survived")
    """, tmp_path)
    assert proc.returncode == -signal.SIGTERM, proc.stderr
    assert "survived" not in proc.stdout
    assert target.read_text() == "old"
    assert temps(tmp_path) == []


def test_a_temp_file_left_by_sigkill_is_removed_by_the_next_write_of_that_target(tmp_path):
    target = tmp_path / "history.json"
    proc = _run_child(f"""
        import os, signal
        from packrat_sim.files import write_file
        def writer(fh):
            fh.write(b"half")
            fh.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        write_file({str(target)!r}, writer)
    """, tmp_path)
    assert proc.returncode == -signal.SIGKILL
    left = temps(tmp_path)
    assert len(left) == 1 and left[0].endswith(".history.json")
    write_text(target, "done")
    assert temps(tmp_path) == [] and target.read_text() == "done"


def test_temp_files_of_live_processes_and_of_other_targets_are_kept(tmp_path):
    mine = tmp_path / f"{TEMP_PREFIX}{os.getppid()}-abcd.t.json"  # parent: alive
    mine.write_text("x")
    other = tmp_path / f"{TEMP_PREFIX}999999999-abcd.other.json"
    other.write_text("x")
    assert remove_stale_temps(tmp_path, "t.json") == []
    assert mine.exists() and other.exists()
    assert remove_stale_temps(tmp_path, "other.json") == [str(other)]


def test_an_output_directory_is_created_when_its_parent_exists(tmp_path):
    d = prepare_output_dir(tmp_path / "report")
    assert os.path.isdir(d)
    assert prepare_output_dir(d) == d  # an existing directory is fine


def test_an_output_directory_is_refused_when_its_parent_is_missing_or_it_is_a_file(tmp_path):
    with pytest.raises(OutputPathError, match="does not exist"):
        prepare_output_dir(tmp_path / "a" / "b")
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(OutputPathError, match="not a directory"):
        prepare_output_dir(f)
    link = tmp_path / "ln"
    link.symlink_to(tmp_path)
    with pytest.raises(OutputPathError, match="symbolic link"):
        prepare_output_dir(link)


# ------------------------------------------------------------- sets, appends and locks (issue 29)

def test_a_set_of_files_is_written_all_or_nothing_on_a_full_disk(tmp_path, monkeypatch):
    from tests.disk_full_helpers import fill_disk

    (tmp_path / "b.json").write_text("old b")
    fill_disk(monkeypatch, tmp_path, after=2)  # the third file of the set finds the disk full
    with pytest.raises(OutputPathError) as err:
        write_files(tmp_path, {"a.json": "A", "b.json": "B", "c.json": "C", "d.json": "D"}, "--out")
    message = str(err.value)
    assert "c.json" in message and "no space left" in message and "none of the 4 files" in message
    assert sorted(os.listdir(tmp_path)) == ["b.json"] and (tmp_path / "b.json").read_text() == "old b"


def test_a_set_of_files_is_written_and_a_bad_member_is_refused_before_any_write(tmp_path):
    paths = write_files(tmp_path, [("x.csv", "1\n"), ("y.json", b"{}")])
    assert [p.name for p in paths] == ["x.csv", "y.json"] and (tmp_path / "y.json").read_text() == "{}"
    os.symlink(tmp_path / "x.csv", tmp_path / "z.json")
    with pytest.raises(OutputPathError, match="symbolic link"):
        write_files(tmp_path, {"x.csv": "new", "z.json": "new"})
    assert (tmp_path / "x.csv").read_text() == "1\n" and temps(tmp_path) == []
    with pytest.raises(OutputPathError, match="plain file name"):
        write_files(tmp_path, {"../escape": "x"})


def test_open_regular_appends_and_reads_but_follows_no_symlink_and_waits_on_no_fifo(tmp_path):
    target = tmp_path / "t.csv"
    with open_regular(target, "a", "table") as fh:
        fh.write("a\n")
    with open_regular(target, "r", "table") as fh:
        assert fh.read() == "a\n"
    assert open_regular(tmp_path / "missing.csv", "r") is None
    victim = tmp_path / "victim"
    victim.write_text("keep")
    os.symlink(victim, tmp_path / "link.csv")
    for mode in ("a", "r"):
        with pytest.raises(OutputPathError, match="symbolic link"):
            open_regular(tmp_path / "link.csv", mode, "table")
    os.mkfifo(tmp_path / "fifo.csv")
    for mode in ("a", "r"):  # a plain open() would block here
        with pytest.raises(OutputPathError, match="FIFO"):
            open_regular(tmp_path / "fifo.csv", mode, "table")
    assert victim.read_text() == "keep"


_HOLD = """
import sys, time
from packrat_sim.files import output_lock
with output_lock(sys.argv[1], "target"):
    print("held", flush=True)
    time.sleep(60)
"""


def hold_lock(path) -> subprocess.Popen:
    """A child process holding ``output_lock(path)`` (kill it when done)."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(path)], cwd=REPO, stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_writer_of_a_target_is_refused_naming_the_first_until_it_dies(tmp_path):
    target = tmp_path / "p.json"
    holder = hold_lock(target)
    try:
        with pytest.raises(OutputBusyError, match=f"pid {holder.pid}"):
            with output_lock(target, "--out"):
                pass
    finally:
        holder.kill()
        holder.wait()
    with output_lock(target, "--out") as lock:  # a killed holder's lock is free
        with output_lock(target, "--out"):  # the same thread may nest it
            assert os.path.exists(lock)
    assert not os.path.exists(lock) and os.listdir(tmp_path) == []


def test_another_thread_of_this_process_is_refused_too(tmp_path):
    import threading

    errors = []
    with output_lock(tmp_path, "sweep output directory"):
        t = threading.Thread(target=lambda: errors.append(pytest.raises(OutputBusyError, output_lock(tmp_path).__enter__)))
        t.start()
        t.join()
    assert len(errors) == 1
