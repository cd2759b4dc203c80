"""Hostile input files through the CLI (issue 29, items 6, 10, 11, 12): damaged Jepsen lines and
--lenient, devices and FIFOs as inputs, huge integers, deep nesting, lone surrogates and non-text
grids: each is one `packrat: error:` line and exit 2 (or, under --lenient, a counted warning)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.hostile_helpers import assert_bad_input, run_packrat

FIXTURES = Path(__file__).parents[2] / "checker" / "fixtures"


def one_line_error(code: int, out: str, err: str, *fragments: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("packrat: error: "), lines
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


def damaged_log(tmp_path) -> Path:
    """The stale-read log with one byte of the stale read's (line 6) marker changed."""
    lines = (FIXTURES / "stale-read-illegal.log").read_text().split("\n")
    lines[5] = lines[5].replace("jepsen.util", "jepsen.utiX")
    path = tmp_path / "damaged.log"
    path.write_text("\n".join(lines))
    return path


# ---------------------------------------------------------------------------- item 6: --lenient


def test_a_damaged_jepsen_line_is_an_error_naming_the_line(cli, tmp_path):
    """Today the line was skipped: its read became pending and ILLEGAL turned into OK (exit 0)."""
    one_line_error(*cli("check", str(damaged_log(tmp_path)), "--format", "jepsen"), "line 6", "jepsen.util")


def test_lenient_skips_the_line_with_a_warning_giving_the_count(cli, tmp_path):
    code, out, err = cli("check", str(damaged_log(tmp_path)), "--lenient")
    assert code == 0 and out.startswith("OK")
    assert err.count("\n") == 1 and err.startswith("packrat: warning: ") and "--lenient skipped 1 line " in err
    assert "line 6" in err
    code, out, err = cli("check", str(damaged_log(tmp_path)), "--lenient", "--json")
    obj = json.loads(out)
    assert obj["skipped_lines"] == 1 and obj["skipped"][0]["line"] == 6


def test_lenient_in_a_batch_says_so_on_the_files_line(cli, tmp_path):
    damaged_log(tmp_path)
    (tmp_path / "ok.log").write_bytes((FIXTURES / "stale-read-illegal.log").read_bytes())
    code, out, _ = cli("check", str(tmp_path), "--lenient", "--jobs", "1")
    by_name = {Path(ln.split()[1]).name: ln for ln in out.splitlines()[:2]}
    assert "--lenient skipped 1 malformed line" in by_name["damaged.log"]
    assert "skipped" not in by_name["ok.log"] and code == 1


# ------------------------------------------------------------------- item 12: devices and FIFOs


@pytest.mark.parametrize("argv, what", [
    (["check", "/dev/zero"], "history"),
    (["explore", "--replay", "/dev/zero"], "replay file"),
    (["plan", "--profile", "/dev/zero", "--batch", "8", "--cores", "4"], "profile"),
    (["simulate", "--profile", "builtin:cnn-4", "--cores", "4", "--workload", "trace:/dev/zero"], "trace file"),
    (["sweep", "/dev/zero", "--out", "OUT"], "grid"),
    (["predict", "--profile", "builtin:cnn-4", "--plan-file", "/dev/zero"], "plan file"),
])
def test_dev_zero_as_an_input_is_refused_at_once(tmp_path, argv, what):
    """Today these read /dev/zero until MemoryError (a traceback; here under a memory cap)."""
    argv = [str(tmp_path / "sweep") if a == "OUT" else a for a in argv]
    out = run_packrat(*argv, memory_mb=2048, timeout_s=60)
    assert_bad_input(out, f"cannot read {what} '/dev/zero'", "character device")
    assert out.elapsed_s < 30


@pytest.mark.parametrize("argv", [["check", "FIFO"], ["explore", "--replay", "FIFO"]])
def test_a_fifo_as_an_input_is_refused_without_blocking(tmp_path, argv):
    """Today `check` and `explore --replay` blocked forever opening the FIFO."""
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    out = run_packrat(*[str(fifo) if a == "FIFO" else a for a in argv], timeout_s=45)
    assert_bad_input(out, "FIFO")


# ------------------------------------------------------------------------- item 11: one line each


def _profile_obj() -> dict:
    from packrat_sim.profile import builtin_profile

    return builtin_profile("cnn-4", max_batch=8).to_json()


@pytest.mark.parametrize("argv", [
    ["plan", "--profile", "P", "--batch", "8", "--cores", "4"],
    ["verify", "--profile", "P", "--batch", "8", "--cores", "4"],
    ["simulate", "--profile", "P", "--cores", "4", "--workload", "closed:batch=8,requests=8"],
    ["profile", "--from", "P", "--out", "OUT"],
    ["plan", "--profile", "P", "--batch", "8", "--cores", "4", "--out", "OUT"],
])
def test_a_lone_surrogate_in_the_model_name_is_one_error_line(tmp_path, argv):
    """Today the profile loaded and printing its name raised UnicodeEncodeError."""
    obj = _profile_obj()
    obj["model"] = "net\ud800"
    profile = tmp_path / "p.json"
    profile.write_text(json.dumps(obj))  # json.dumps writes the surrogate as the escape \ud800
    argv = [str(profile) if a == "P" else str(tmp_path / "out.json") if a == "OUT" else a for a in argv]
    assert_bad_input(run_packrat(*argv), "lone surrogate")
    assert not (tmp_path / "out.json").exists()


def test_huge_integers_are_one_error_line_in_every_json_reader(cli, tmp_path):
    big = "7" * 5000
    profile = tmp_path / "p.json"
    profile.write_text(json.dumps(_profile_obj()).replace('"threads": 1', f'"threads": {big}', 1))
    one_line_error(*cli("plan", "--profile", str(profile), "--batch", "8", "--cores", "4"), "5,000 digits")
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"schema": "packrat.plan/1", "batch": 4, "cores": 4, "instances": [
        {"threads": 4, "batch": 4, "cores": []}], "predicted_ms": 1.0}).replace('"cores": 4', f'"cores": {big}'))
    one_line_error(*cli("predict", "--profile", "builtin:cnn-4", "--plan-file", str(plan)), "5,000 digits")
    one_line_error(*cli("verify", "--profile", "builtin:cnn-4", "--batch", "4", "--cores", "4", "--plan", str(plan)),
                   "5,000 digits")
    grid = tmp_path / "grid.json"
    grid.write_text('{"profile": ["builtin:cnn-4"], "cores": [' + big + '], "workload": ["closed:batch=1"]}')
    one_line_error(*cli("sweep", str(grid), "--out", str(tmp_path / "s")), "5,000 digits")
    replay = tmp_path / "r.json"
    replay.write_text('{"schema": "packrat.replay/1", "protocol": "reconfig", "params": {"clients": ' + big
                      + '}, "deliveries": []}')
    one_line_error(*cli("explore", "--replay", str(replay)), "5,000 digits")


HISTORY = ('{"model": "register", "operations": [{"client": 0, "input": {"op": "write", "value": VALUE}, '
           '"output": null, "call": 0, "ret": 1}]}')


def test_deep_nesting_is_one_error_line(cli, tmp_path):
    history = tmp_path / "h.json"
    history.write_text(HISTORY.replace("VALUE", "[" * 500 + "]" * 500))
    one_line_error(*cli("check", str(history)), "nested too deeply")
    replay = tmp_path / "r.json"
    replay.write_text('{"schema": "packrat.replay/1", "protocol": "reconfig", "deliveries": ['
                      + '{"a": ' * 400 + "1" + "}" * 400 + "]}")
    one_line_error(*cli("explore", "--replay", str(replay)), "nested too deeply")


@pytest.mark.parametrize("key", ["name", "variant"])
def test_replay_params_holding_name_or_variant_are_one_error_line(cli, tmp_path, key):
    replay = tmp_path / "r.json"
    replay.write_text(json.dumps({"schema": "packrat.replay/1", "protocol": "reconfig", "params": {key: "x"},
                                  "deliveries": []}))
    one_line_error(*cli("explore", "--replay", str(replay)), f"holds '{key}'")


@pytest.mark.parametrize("data, fragment", [(b"profile = ['builtin:cnn-4']\ncores = [\xff]\n", "not UTF-8 text"),
                                            (b"profile = ['builtin:cnn-4']\ncores = [4]\x00\n", "NUL")])
def test_a_grid_that_is_not_text_is_one_error_line(cli, tmp_path, data, fragment):
    grid = tmp_path / "grid.toml"
    grid.write_bytes(data)
    one_line_error(*cli("sweep", str(grid), "--out", str(tmp_path / "s")), fragment)


def test_duplicate_keys_in_a_json_grid_and_a_replay_file_are_refused(cli, tmp_path):
    grid = tmp_path / "grid.json"
    grid.write_text('{"profile": ["builtin:cnn-4"], "cores": [4], "workload": ["closed:batch=1"], "cores": [8]}')
    one_line_error(*cli("sweep", str(grid), "--out", str(tmp_path / "s")), "duplicate key 'cores'")
    replay = tmp_path / "r.json"
    replay.write_text('{"schema": "packrat.replay/1", "protocol": "reconfig", "deliveries": [], "deliveries": []}')
    one_line_error(*cli("explore", "--replay", str(replay)), "duplicate key 'deliveries'")
