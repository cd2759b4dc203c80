"""Every writer goes through packrat_sim.files: history, HTML report, profile, replay, and the
`check --html` / `simulate --out` / `bench --out` outputs refuse unsafe targets."""

from __future__ import annotations

import os
import stat

import pytest

from packrat_sim.files import TEMP_PREFIX, OutputPathError
from tests.hostile_helpers import assert_bad_input, char_device, run_packrat

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
REGISTER_OK = os.path.join(ROOT, "tests", "checker", "fixtures", "register-ok.json")


def _history():
    from checker.history import History, Operation

    return History([Operation(0, {"op": "write", "value": 1}, None, 0, 10),
                    Operation(1, {"op": "read"}, 1, 5, 15)], model="register")


def _write_history(path):
    from checker.history import write_history

    return write_history(_history(), path)


def _write_html(path):
    from checker.linearizability import check
    from checker.visualize import write_html

    h = _history()
    return write_html(path, h, check(h, "register"), "register")


def _write_profile(path):
    from packrat_sim.profile import builtin_profile, write_profile

    return write_profile(builtin_profile("cnn-16"), str(path))


def _write_replay(path):
    from checker.explore import write_replay
    from checker.protocols import build

    protocol = build("reconfig", "correct", clients=1, batches=1)
    return write_replay(path, protocol, [])


WRITERS = {"history": _write_history, "html": _write_html, "profile": _write_profile, "replay": _write_replay}


@pytest.fixture(params=sorted(WRITERS))
def writer(request):
    return WRITERS[request.param]


def _temps(d):
    return [n for n in os.listdir(d) if n.startswith(TEMP_PREFIX) or n.startswith(".profile-")]


def test_each_writer_refuses_a_fifo(writer, tmp_path):
    fifo = tmp_path / "out"
    os.mkfifo(fifo)
    with pytest.raises(OutputPathError, match="FIFO"):
        writer(fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and _temps(tmp_path) == []


def test_each_writer_refuses_a_symlink(writer, tmp_path):
    real = tmp_path / "real"
    real.write_text("keep")
    (tmp_path / "ln").symlink_to(real)
    with pytest.raises(OutputPathError, match="symbolic link"):
        writer(tmp_path / "ln")
    assert real.read_text() == "keep"


def test_each_writer_refuses_a_missing_parent(writer, tmp_path):
    with pytest.raises(OutputPathError, match="does not exist"):
        writer(tmp_path / "no" / "out")
    assert not (tmp_path / "no").exists()


def test_each_writer_writes_atomically_with_the_umasks_mode(writer, tmp_path):
    target = tmp_path / "out"
    target.write_text("old")
    os.chmod(target, 0o600)
    writer(target)  # an existing file keeps its mode
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600 and target.read_text() != "old"
    old = os.umask(0o022)
    try:
        writer(tmp_path / "new")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "new").st_mode) == 0o644
    assert _temps(tmp_path) == []


def test_check_html_into_a_missing_directory_is_refused_before_checking(tmp_path):
    out = run_packrat("check", REGISTER_OK, "--html", str(tmp_path / "no" / "r.html"))
    assert_bad_input(out, str(tmp_path / "no"), "does not exist")


def test_check_html_onto_a_device_is_refused(tmp_path):
    dev = char_device(tmp_path)
    out = run_packrat("check", REGISTER_OK, "--html", dev)
    assert_bad_input(out, "character device")
    assert stat.S_ISCHR(os.lstat(dev).st_mode)
