"""The engine flags wired into `packrat check` and `packrat explore` (issue 20): the same
verdicts as the in-process paths, whichever engine judged or explored."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ui.cli.app import main

FIXTURES = Path(__file__).resolve().parents[2] / "checker" / "fixtures"


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main([*map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def _campaign(tmp_path: Path) -> Path:
    for name in ("register-ok.json", "register-stale-read-illegal.json", "serving-reconfigure-ok.json",
                 "serving-stale-epoch-illegal.json", "unknown-schema-bad.json"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    return tmp_path


def _verdicts(out: str) -> list[tuple[str, str]]:
    return sorted((Path(o["history"]).name, o["result"]) for o in map(json.loads, out.splitlines()))


def test_checking_a_directory_on_an_engine_gives_the_in_process_verdicts(capsys, tmp_path):
    campaign = _campaign(tmp_path)
    code1, out1, _ = run(capsys, "check", campaign, "--json")
    code2, out2, _ = run(capsys, "check", campaign, "--json", "--engine", "serial")
    assert code1 == code2 == 1  # two illegal histories
    assert _verdicts(out1) == _verdicts(out2)
    assert ("register-stale-read-illegal.json", "illegal") in _verdicts(out2)
    assert ("unknown-schema-bad.json", "error") in _verdicts(out2)


def test_an_unknown_engine_is_refused_with_one_line(capsys, tmp_path):
    code, out, err = run(capsys, "check", _campaign(tmp_path), "--engine", "spark")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "spark" in err


def test_exploring_on_two_local_workers_proves_the_correct_protocol(capsys):
    code, out, _ = run(capsys, "explore", "--protocol", "reconfig", "--variant", "correct", "--strategy", "dpor",
                       "--workers", "2", "--engine", "local")
    assert code == 0
    assert "OK" in out


def test_exploring_on_two_local_workers_still_finds_the_bug(capsys, tmp_path):
    code, out, _ = run(capsys, "explore", "--protocol", "reconfig", "--variant", "ack-before-switch",
                       "--strategy", "dpor", "--workers", "2", "--engine", "local",
                       "--out-replay", tmp_path / "bug.json")
    assert code == 1
    assert "VIOLATION" in out and (tmp_path / "bug.json").exists()
