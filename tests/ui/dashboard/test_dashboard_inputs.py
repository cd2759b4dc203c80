"""What the dashboard reads: uploads capped at a size the pages say, and on the Sweep page only
built-in profiles, uploads, or files under the directory `packrat ui --data-dir` names."""

from __future__ import annotations

import os

import pytest

from ui.dashboard import data

def test_a_built_in_profile_or_a_file_under_a_root_may_be_read(tmp_path):
    (tmp_path / "p.json").write_text("{}")
    roots = [os.path.realpath(tmp_path)]
    assert data.refused_server_file(["builtin:cnn-8", str(tmp_path / "p.json")],
                                    [f"trace:{tmp_path}/t.csv,unit=ms", "poisson:rate=1/s,duration=1s"], roots) is None


@pytest.mark.parametrize("profiles, workloads, named", [
    (["/etc/passwd"], [], "profile '/etc/passwd' is not a built-in profile, an upload, or a file under"),
    (["builtin:cnn-4"], ["trace:/etc/hosts,unit=ms"], "trace file '/etc/hosts' is not an upload"),
    (["builtin:cnn-4"], ["trace:unit=ms"], "trace file ''"),
])
def test_a_file_outside_every_root_is_refused_naming_it_and_the_way_to_allow_it(tmp_path, profiles, workloads, named):
    why = data.refused_server_file(profiles, workloads, [os.path.realpath(tmp_path)])
    assert named in why and "packrat ui --data-dir DIR" in why


def test_a_link_under_a_root_that_leads_outside_it_is_refused(tmp_path):
    (tmp_path / "p.json").symlink_to("/etc/passwd")
    assert data.refused_server_file([str(tmp_path / "p.json")], [], [os.path.realpath(tmp_path)]) is not None


def test_the_data_dir_of_packrat_ui_joins_the_sessions_own_directory(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / "data"))
    assert data.data_dirs("/tmp") == [os.path.realpath("/tmp"), os.path.realpath(tmp_path / "data")]
    monkeypatch.delenv(data.DATA_DIR_ENV)
    assert data.data_dirs("/tmp") == [os.path.realpath("/tmp")]


def test_packrat_ui_caps_uploads_and_hands_its_data_dir_to_the_server(tmp_path, monkeypatch, capsys):
    from ui.cli import ui as cmd_ui
    from ui.cli.app import main

    cmd = cmd_ui.streamlit_command(8600)
    assert cmd[cmd.index("--server.maxUploadSize") + 1] == str(data.HISTORY_UPLOAD_MB)
    monkeypatch.setattr(cmd_ui, "exec_streamlit", lambda c: None)
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    assert main(["ui", "--port", str(cmd_ui.free_port()), "--data-dir", str(tmp_path)]) == 0
    assert os.environ.pop(data.DATA_DIR_ENV) == os.path.realpath(tmp_path)
    assert main(["ui", "--data-dir", str(tmp_path / "nope")]) == 2
    assert "is not a directory" in capsys.readouterr().err


@pytest.mark.slow
def test_the_sweep_page_refuses_a_server_path_outside_its_roots_and_offers_no_run(open_page, h):
    at = open_page("sweep")
    at.text_input(key="sweep.profile").set_value("/etc/passwd")
    at.run()
    errors = [e.value for e in at.error]
    assert any("profile '/etc/passwd' is not a built-in profile" in e for e in errors), errors
    assert not [b for b in at.button if b.key == "sweep.run"]
