"""`packrat explore --strategy ired | dpired | dpliviola`: listed in --help, proves DS2's register
(exit 0) and catches its erroneous variant (exit 1)."""

from __future__ import annotations

import json

import pytest

from ui.cli.app import main


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["explore", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_explore_help_lists_ired_dpired_and_dpliviola(capsys):
    code, out, _ = run(capsys, "--help")
    text = " ".join(out.split())
    assert code == 0
    assert all(f"| {name} |" in text for name in ("ired", "dpired", "dpliviola"))


@pytest.mark.parametrize("strategy, schedules", [("ired", 112), ("dpired", 112), ("dpliviola", 62)])
def test_ds2s_register_is_proved_and_its_erroneous_variant_caught(capsys, tmp_path, strategy, schedules):
    code, out, err = run(capsys, "--protocol", "register", "--variant", "ds2", "--strategy", strategy, "--json")
    assert code == 0 and err == ""
    obj = json.loads(out)
    assert obj["verdict"] == "OK" and obj["strategy"] == strategy and obj["schedules"] == schedules
    code, out, _ = run(capsys, "--protocol", "register", "--variant", "ds2-erroneous", "--strategy", strategy,
                       "--out-replay", tmp_path / "bug.json")
    assert code == 1 and (tmp_path / "bug.json").exists()
