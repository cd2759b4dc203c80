"""`packrat explore` from the shell's point of view: verdicts as exit codes, one JSON object with
--json, replay files that reproduce the counterexample, one-line errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ui.cli.app import main


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["explore", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_correct_protocol_explored_exhaustively_exits_0_and_says_ok(capsys):
    code, out, err = run(capsys, "--protocol", "reconfig", "--variant", "correct", "--strategy", "dpor")
    assert code == 0 and err == ""
    assert "verdict    OK: every schedule explored" in out and "8 schedules" in out


def test_a_buggy_variant_exits_1_with_the_schedule_the_history_and_why(capsys, tmp_path):
    replay_file = tmp_path / "bug.json"
    code, out, _ = run(capsys, "--protocol", "reconfig", "--variant", "ack-before-switch", "--out-replay", replay_file)
    assert code == 1
    assert 'VIOLATION of "linearizable (serving)"' in out
    assert "controller -> operator: reconfigured(1)" in out  # a step of the schedule
    assert "infer(batch 1, size 4) -> epoch 0" in out  # the history
    assert "cannot be linearized" in out  # why
    assert f"packrat explore --replay {replay_file}" in out and replay_file.exists()


def test_without_out_replay_the_replay_file_goes_to_a_temporary_directory_named_on_stderr(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "--protocol", "reconfig", "--variant", "stop-before-drain")
    assert code == 1 and list(tmp_path.iterdir()) == []  # nothing in the working directory
    written = Path(err.split("wrote the replay file ", 1)[1].split()[0])
    assert written.exists() and written.parent.name.startswith("packrat-explore-") and str(written) in out
    written.unlink()
    written.parent.rmdir()


def test_the_reductions_can_be_switched_off_for_comparison(capsys):
    base = ["--protocol", "register", "--param", "replicas=2", "--json"]
    counts = {}
    static = ["--no-state-cache", "--no-local-commutation"]
    for flags in ([], ["--no-state-cache"], static, [*static, "--coarse-clients"], ["--no-symmetry"]):
        code, out, _ = run(capsys, *base, *flags)
        obj = json.loads(out)
        assert code == 0 and obj["distinct_histories"] == 7
        assert obj["reductions"]["local_commutation"] == ("--no-local-commutation" not in flags)
        counts[tuple(flags)] = obj["schedules"]
    assert counts[(*static, "--coarse-clients")] == 480 and counts[tuple(static)] == 184
    assert counts[()] < counts[("--no-state-cache",)] == 65
    dfs = {}
    for flags in ([], ["--no-sleep-sets"]):
        code, out, _ = run(capsys, *base, "--strategy", "dfs", *flags)
        obj = json.loads(out)
        assert code == 0 and obj["reductions"]["sleep_sets"] == (not flags)
        dfs[tuple(flags)] = (obj["states"], obj["transitions"])
    assert dfs[()][0] == dfs[("--no-sleep-sets",)][0] and dfs[()][1] < dfs[("--no-sleep-sets",)][1]


@pytest.mark.parametrize("params", [["clients=1000"], ["batches=1000000000"]], ids=["clients", "batches"])
def test_huge_parameters_are_refused_at_once_with_one_line(capsys, params):
    start = time.perf_counter()
    args = ["--protocol", "reconfig", "--max-time", "2"] + [a for p in params for a in ("--param", p)]
    code, out, err = run(capsys, *args)
    assert code == 2 and ("must be at most 1000" in err or "the limit is 64" in err)
    assert len(err.strip().splitlines()) == 1
    assert time.perf_counter() - start < 30  # refused before anything is built (loose bound)


def test_a_register_with_a_hundred_thousand_replicas_is_refused(capsys):
    code, out, err = run(capsys, "--protocol", "register", "--param", "replicas=100000")
    assert code == 2 and "replicas must be at most 1000" in err
    code, out, err = run(capsys, "--protocol", "register", "--param", "replicas=200")
    assert code == 2 and "the limit is 64" in err and len(err.strip().splitlines()) == 1


def test_a_replay_file_with_huge_parameters_is_refused(capsys, tmp_path):
    bad = tmp_path / "huge.json"
    for clients in (1e9, 10**9):
        bad.write_text(json.dumps({"schema": "packrat.replay/1", "protocol": "reconfig", "variant": "correct",
                                   "params": {"clients": clients}, "deliveries": []}))
        code, out, err = run(capsys, "--replay", bad)
        assert code == 2 and "clients must be" in err and len(err.strip().splitlines()) == 1


def test_a_binary_replay_file_exits_2_with_one_line(capsys, tmp_path):
    bad = tmp_path / "binary.json"
    bad.write_bytes(bytes(range(256)) * 4)
    code, out, err = run(capsys, "--replay", bad)
    assert code == 2 and "is not UTF-8 text" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_replay_whose_recorded_violation_does_not_recur_exits_3_not_1(capsys, tmp_path):
    # issue 31: a violation that recurs (exit 1) and one that does not must not share a code
    replay_file = tmp_path / "bug.json"
    run(capsys, "--protocol", "reconfig", "--variant", "switch-before-ready", "--out-replay", replay_file)
    code, out, _ = run(capsys, "--replay", replay_file)
    assert code == 1 and "reproduces the recorded violation" in out
    obj = json.loads(replay_file.read_text())
    obj["variant"] = "correct"  # the same schedule cannot break the correct variant
    obj["deliveries"] = []
    replay_file.write_text(json.dumps(obj))
    code, out, _ = run(capsys, "--replay", replay_file)
    assert code == 3 and "NOT REPRODUCED" in out and "does NOT reproduce the recorded violation" in out
    assert "nothing else broke" in out
    code, out, _ = run(capsys, "--replay", replay_file, "--json")
    assert code == 3 and json.loads(out)["reproduces_recorded"] is False


def test_a_replay_where_another_violation_occurs_exits_1_and_names_both(capsys, tmp_path):
    replay_file = tmp_path / "bug.json"
    run(capsys, "--protocol", "reconfig", "--variant", "switch-before-ready", "--out-replay", replay_file)
    obj = json.loads(replay_file.read_text())
    obj["violation"]["name"] = "some other property"
    replay_file.write_text(json.dumps(obj))
    code, out, _ = run(capsys, "--replay", replay_file)
    assert code == 1 and 'the recorded violation "some other property" did not occur, but' in out


def test_explore_help_says_which_replay_outcome_exits_1_and_which_exits_3(capsys):
    code, out, _ = run(capsys, "--help")
    text = " ".join(out.split())
    assert code == 0
    assert "With --replay FILE: 1 when the violation the file records recurs" in text
    assert "3 when it does not recur and nothing else breaks" in text


def test_json_is_one_object_with_the_counts_and_the_counterexample(capsys, tmp_path):
    code, out, err = run(capsys, "--protocol", "register", "--variant", "erroneous", "--json",
                         "--out-replay", tmp_path / "r.json")
    assert code == 1 and err == ""
    obj = json.loads(out)
    assert obj["verdict"] == "VIOLATION" and obj["strategy"] == "dpor" and obj["model"] == "register"
    assert {"schedules", "states", "distinct_histories", "elapsed_s", "first_violation_at"} <= set(obj)
    v = obj["violation"]
    assert v["kind"] == "linearizability" and v["schedule"] and v["history"]["schema"] == "packrat.history/1"
    assert obj["replay_file"] == str(tmp_path / "r.json")


def test_a_replay_reproduces_the_counterexample_step_by_step(capsys, tmp_path):
    replay_file = tmp_path / "bug.json"
    run(capsys, "--protocol", "reconfig", "--variant", "switch-before-ready", "--out-replay", replay_file)
    code, out, _ = run(capsys, "--replay", replay_file)
    assert code == 1
    assert "1. " in out and "history" in out
    assert "! no instance receives work before it is ready" in out
    assert 'reproduces the recorded violation "no instance receives work before it is ready"' in out
    code, out, _ = run(capsys, "--replay", replay_file, "--json")
    obj = json.loads(out)
    assert obj["verdict"] == "VIOLATION" and obj["reproduces_recorded"] is True and obj["steps"]


def test_a_budget_hit_exits_3(capsys):
    code, out, _ = run(capsys, "--protocol", "reconfig", "--strategy", "dfs", "--max-schedules", "2")
    assert code == 3 and "UNKNOWN: schedule budget of 2 spent" in out


def test_a_random_walk_that_finds_nothing_exits_3_because_it_is_not_exhaustive(capsys):
    code, out, _ = run(capsys, "--protocol", "reconfig", "--strategy", "random", "--max-schedules", "20", "--seed", "3")
    assert code == 3 and "random is not exhaustive" in out


def test_pct_reports_its_probability_bound(capsys):
    code, out, _ = run(capsys, "--protocol", "reconfig", "--strategy", "pct", "--max-schedules", "5", "--json")
    assert code == 3 and json.loads(out)["pct_bound"] > 0


def test_protocol_parameters_are_passed_with_param(capsys):
    code, out, _ = run(capsys, "--protocol", "register", "--variant", "abd", "--param", "replicas=2",
                       "--strategy", "dfs", "--json")
    obj = json.loads(out)
    assert code == 0 and obj["params"]["replicas"] == 2


def test_list_shows_protocols_variants_and_strategies(capsys):
    code, out, _ = run(capsys, "--list")
    assert code == 0 and "ack-before-switch" in out and "erroneous" in out and "keyaware" in out


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--protocol", "paxos"], "unknown protocol 'paxos'"),
        (["--protocol", "reconfig", "--variant", "fast"], "unknown variant 'fast' of protocol reconfig"),
        (["--protocol", "reconfig", "--strategy", "bogus"], "unknown strategy 'bogus'"),
        (["--protocol", "reconfig", "--param", "replicas"], "--param expects NAME=VALUE, not 'replicas'"),
        (["--protocol", "reconfig", "--param", "clients=x"], "parameter clients must be an integer, not 'x'"),
        (["--protocol", "reconfig", "--max-schedules", "0"], "max_schedules must be an integer >= 1, not 0"),
        (["--strategy", "dfs"], "--protocol is required"),
        (["--replay", "/nonexistent/replay.json"], "cannot read replay file"),
        (["--max-schedules", "x", "--protocol", "reconfig"], "Invalid value for '--max-schedules'"),
        (["--protocol", "reconfig", "--strategy", "random", "--max-time", "inf"], "max_time must be a positive, finite number"),
        (["--protocol", "reconfig", "--param", "drops=-1"], "fault budget drops must be a non-negative integer, not -1"),
    ],
)
def test_bad_input_exits_2_with_one_line_naming_the_value(capsys, args, fragment):
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert fragment in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_replay_file_that_is_not_json_exits_2(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    code, out, err = run(capsys, "--replay", bad)
    assert code == 2 and "is not valid JSON" in err


def test_a_replay_file_with_a_variant_that_is_not_a_string_exits_2(capsys, tmp_path):
    code, out, err = run(capsys, "--protocol", "reconfig", "--variant", "ack-before-switch",
                         "--out-replay", tmp_path / "r.json")
    assert code == 1
    obj = json.loads((tmp_path / "r.json").read_text())
    obj["variant"] = [1]
    (tmp_path / "r.json").write_text(json.dumps(obj))
    code, out, err = run(capsys, "--replay", tmp_path / "r.json")
    assert code == 2 and "unknown variant [1]" in err and "Traceback" not in err


def test_a_negative_split_after_is_bad_input_naming_it(cli):
    code, out, err = cli("explore", "--protocol", "register", "--strategy", "dfs", "--workers", "2",
                         "--split-after", "-1")
    assert code == 2 and "--split-after must be a number of seconds >= 0, got -1.0" in err
