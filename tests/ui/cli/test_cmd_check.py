"""`packrat check`: verdicts as exit codes, one JSON object with --json, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from checker.history import History, Operation, write_history
from ui.cli.app import main

FIXTURES = Path(__file__).parents[2] / "checker" / "fixtures"


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["check", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_linearizable_history_exits_0_and_says_ok(capsys):
    code, out, err = run(capsys, FIXTURES / "register-ok.json")
    assert code == 0
    assert out.startswith("OK: the history is linearizable (register, 3 operations, 1 partition")
    assert err == ""


def test_an_illegal_history_exits_1_and_names_the_operation_and_the_longest_prefix(capsys):
    code, out, _ = run(capsys, FIXTURES / "stale-read-illegal.log", "--format", "jepsen")
    assert code == 1
    assert out.startswith("ILLEGAL: the history is not linearizable (cas-register, 3 operations, 1 partition")
    assert "operation 2 (client 2, read() -> 1, [5, 6]) cannot be linearized" in out
    assert "longest linearizable prefix: 2 of 3 operations" in out


def test_a_timeout_exits_3_with_unknown(capsys, tmp_path):
    ops = [Operation(c, {"op": "write", "value": c}, None, 0, 100) for c in range(22)]
    ops.append(Operation(99, {"op": "read"}, 999, 101, 102))
    path = write_history(History(ops, model="register"), tmp_path / "hard.json")
    code, out, _ = run(capsys, path, "--timeout", "0.2")
    assert code == 3
    assert out.startswith("UNKNOWN: no verdict") and "timed out after 0.2 s" in out


def test_json_output_is_exactly_one_object_with_the_verdict(capsys):
    code, out, err = run(capsys, FIXTURES / "kv-lost-append-illegal.txt", "--json")
    assert code == 1 and err == ""
    assert out.count("\n") == 1
    obj = json.loads(out)
    assert obj["result"] == "illegal"
    assert obj["operations"] == 5 and obj["partitions"] == 2
    assert isinstance(obj["elapsed_s"], float)
    assert obj["model"] == "kv" and obj["format"] == "porcupine-kv"
    (detail,) = obj["details"]
    assert detail["key"] == "a" and detail["blocked_operation"] == "get('a') -> 'x'"


@pytest.mark.parametrize(
    "name, model, code",
    [
        ("register-ok.json", "register", 0),
        ("serving-reconfigure-ok.json", "serving", 0),
        ("serving-stale-epoch-illegal.json", "serving", 1),
        ("cas-pending-ok.log", "cas-register", 0),
        ("kv-ok.txt", "kv", 0),
    ],
)
def test_the_default_model_comes_from_the_file_or_its_format(capsys, name, model, code):
    c, out, _ = run(capsys, FIXTURES / name, "--json")
    assert c == code and json.loads(out)["model"] == model


def test_the_model_can_be_chosen(capsys):
    code, out, _ = run(capsys, FIXTURES / "stale-read-illegal.log", "--model", "register", "--json")
    assert code == 1 and json.loads(out)["model"] == "register"


def test_html_writes_a_self_contained_page(capsys, tmp_path):
    page = tmp_path / "check.html"
    code, out, _ = run(capsys, FIXTURES / "serving-split-batch-illegal.json", "--html", page)
    assert code == 1 and f"wrote {page}" in out
    text = page.read_text()
    assert "http://" not in text and "https://" not in text and "infer(batch 1, size 4)" in text


def test_html_with_json_reports_the_page_in_the_object(capsys, tmp_path):
    page = tmp_path / "check.html"
    code, out, _ = run(capsys, FIXTURES / "register-ok.json", "--html", page, "--json")
    assert code == 0 and json.loads(out)["html"] == str(page) and page.exists()


def _assert_one_line_error(code, out, err, *fragments):
    assert code == 2
    assert out == ""
    assert err.startswith("packrat: error: ") and err.count("\n") == 1
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err


def test_an_unparseable_line_exits_2_naming_the_line_number_and_text(capsys):
    code, out, err = run(capsys, FIXTURES / "unterminated-cas-bad.log", "--json")
    _assert_one_line_error(code, out, err, "line 3", ":cas", "[1 2", "malformed Jepsen event")


def test_a_return_without_a_call_exits_2(capsys):
    _assert_one_line_error(*run(capsys, FIXTURES / "return-without-call-bad.log"), "line 3", "without a call")


def test_two_calls_outstanding_for_a_client_exit_2(capsys):
    _assert_one_line_error(*run(capsys, FIXTURES / "two-outstanding-bad.log"), "two operations outstanding")
    _assert_one_line_error(*run(capsys, FIXTURES / "overlapping-client-bad.json"), "two operations outstanding")


def test_an_unknown_schema_exits_2(capsys):
    _assert_one_line_error(*run(capsys, FIXTURES / "unknown-schema-bad.json"), "unknown history schema")


def test_an_unknown_model_exits_2(capsys):
    _assert_one_line_error(*run(capsys, FIXTURES / "register-ok.json", "--model", "queue"), "unknown --model 'queue'")


def test_an_unknown_format_exits_2(capsys):
    _assert_one_line_error(*run(capsys, FIXTURES / "register-ok.json", "--format", "csv"), "unknown --format 'csv'")


def test_a_missing_file_exits_2(capsys, tmp_path):
    _assert_one_line_error(*run(capsys, tmp_path / "nope.json"), "cannot read history", "nope.json")


def test_a_history_without_a_model_asks_for_one(capsys, tmp_path):
    path = write_history(History([Operation(0, {"op": "read"}, None, 0, 1)]), tmp_path / "h.json")
    _assert_one_line_error(*run(capsys, path), "names no model", "--model")


def test_operations_that_do_not_fit_the_model_exit_2(capsys):
    _assert_one_line_error(*run(capsys, FIXTURES / "register-ok.json", "--model", "kv"),
                           "operation 0", "kv model has no operation 'write'")


def test_a_negative_timeout_exits_2(capsys):
    _assert_one_line_error(*run(capsys, FIXTURES / "register-ok.json", "--timeout", "-1"), "--timeout")


def test_a_file_in_the_wrong_format_exits_2(capsys):
    _assert_one_line_error(*run(capsys, FIXTURES / "register-ok.json", "--format", "jepsen"), "no Jepsen client events")


def test_check_is_listed_in_the_help(capsys):
    assert main(["--help"]) == 0
    assert "check" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------
# Many histories at once, limits, and workers (issues 16 and 18)

import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402


def _campaign(tmp_path: Path) -> Path:
    """A directory of histories: two linearizable, one illegal, one malformed, one binary."""
    d = tmp_path / "campaign"
    d.mkdir()
    for name in ("register-ok.json", "kv-ok.txt", "stale-read-illegal.log"):
        (d / name).write_bytes((FIXTURES / name).read_bytes())
    (d / "broken.json").write_text('{"operations": [')
    (d / "binary.log").write_bytes(b"\xff\xfe\x00garbage")
    return d


def test_a_directory_is_checked_file_by_file_with_one_line_each_and_a_summary(capsys, tmp_path):
    code, out, err = run(capsys, _campaign(tmp_path))
    assert code == 1  # the worst verdict: one history is illegal
    lines = out.splitlines()
    assert len(lines) == 6
    by_file = {Path(line.split()[1].rstrip(":")).name: line.split()[0] for line in lines[:5]}
    assert by_file == {"binary.log": "ERROR", "broken.json": "ERROR", "kv-ok.txt": "OK",
                       "register-ok.json": "OK", "stale-read-illegal.log": "ILLEGAL"}
    assert "not valid JSON" in out and "not UTF-8" in out
    assert lines[-1].startswith("5 histories: 2 ok, 1 illegal, 0 unknown, 2 unreadable; slowest ")
    assert "Traceback" not in out + err


def test_json_gives_one_object_per_file(capsys, tmp_path):
    code, out, _ = run(capsys, _campaign(tmp_path), "--json")
    objs = [json.loads(line) for line in out.splitlines()]
    assert len(objs) == 5 and code == 1
    results = {Path(o["history"]).name: o["result"] for o in objs}
    assert results["stale-read-illegal.log"] == "illegal" and results["broken.json"] == "error"
    illegal = next(o for o in objs if o["result"] == "illegal")
    assert illegal["first_failure"] is None and illegal["partition_results"][0]["result"] == "illegal"


def test_globs_and_several_paths_are_accepted_and_only_linearizable_ones_exit_0(capsys):
    code, out, _ = run(capsys, FIXTURES / "*-ok.json", FIXTURES / "kv-ok.txt")
    assert code == 0
    assert out.splitlines()[-1].startswith("4 histories: 4 ok, 0 illegal, 0 unknown, 0 unreadable")


def test_exit_2_only_when_no_history_could_be_read(capsys, tmp_path):
    d = tmp_path / "bad"
    d.mkdir()
    (d / "a.json").write_text("{")
    (d / "b.log").write_text("hello\n")
    code, out, err = run(capsys, d)
    assert code == 2
    assert out.count("ERROR") == 2 and err == "packrat: error: none of the 2 histories could be checked\n"


def test_an_unknown_history_among_others_exits_3(capsys, tmp_path):
    ops = [Operation(c, {"op": "write", "value": c}, None, 0, 100) for c in range(24)]
    ops.append(Operation(99, {"op": "read"}, 999, 101, 102))
    write_history(History(ops, model="register"), tmp_path / "hard.json")
    (tmp_path / "ok.json").write_bytes((FIXTURES / "register-ok.json").read_bytes())
    code, out, _ = run(capsys, tmp_path, "--timeout", "0.3")
    assert code == 3 and "timed out after 0.3 s" in out


@pytest.mark.parametrize("args, fragment", [
    (("--jobs", "0"), "--jobs must be at least 1, not 0"),
    (("--jobs", "-3"), "--jobs must be at least 1, not -3"),
    (("--timeout", "nan"), "--timeout must be a finite number"),
    (("--timeout", "inf"), "--timeout must be a finite number"),
    (("--timeout", "-1"), "--timeout must be a finite number"),
    (("--max-memory", "lots"), "--max-memory 'lots' is not a size"),
    (("--max-memory", "-5G"), "--max-memory '-5G' is not a size"),
    (("--max-memory", "100"), "below 1 MiB"),
])
def test_bad_limits_exit_2_with_one_line(capsys, args, fragment):
    _assert_one_line_error(*run(capsys, FIXTURES / "register-ok.json", *args), fragment)
    _assert_one_line_error(*run(capsys, FIXTURES, *args), fragment)


def test_a_memory_bound_gives_unknown_with_exit_3(capsys, tmp_path):
    ops = [Operation(c, {"op": "append", "key": "k", "value": f"v{c} "}, None, 0, 100) for c in range(24)]
    ops.append(Operation(99, {"op": "get", "key": "k"}, "nope", 101, 102))
    path = write_history(History(ops, model="kv"), tmp_path / "hard.json")
    code, out, _ = run(capsys, path, "--max-memory", "1M", "--timeout", "120", "--json")
    obj = json.loads(out)
    assert code == 3 and obj["result"] == "unknown" and "memory bound of 1 MiB reached" in obj["reason"]


def test_all_partitions_reports_every_partitions_verdict(capsys):
    code, out, _ = run(capsys, FIXTURES / "kv-lost-append-illegal.txt", "--json", "--all-partitions")
    obj = json.loads(out)
    assert code == 1 and obj["first_failure"] == "a"
    assert {p["key"]: p["result"] for p in obj["partition_results"]} == {"a": "illegal", "b": "ok"}


def _hard_kv(path: Path) -> Path:
    ops = []
    for k, key in enumerate(("h1", "h2", "h3")):
        ops += [Operation(100 * k + c, {"op": "put", "key": key, "value": str(c)}, None, 0, 100) for c in range(26)]
        ops.append(Operation(100 * k + 99, {"op": "get", "key": key}, "none", 101, 102))
    return write_history(History(ops, model="kv"), path)


def _children_of(pid: int) -> set[int]:
    out = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.add(int(name))
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
def test_ctrl_c_during_a_parallel_check_leaves_no_worker_behind(tmp_path):
    path = _hard_kv(tmp_path / "hard.json")
    exe = Path(sys.executable).with_name("packrat")
    proc = subprocess.Popen([str(exe), "check", str(path), "--jobs", "3", "--timeout", "120"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        workers: set[int] = set()
        deadline = time.monotonic() + 30
        while len(workers) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
            workers = _children_of(proc.pid)
        assert len(workers) == 2, "the check never started its two workers (it checks a third share itself)"
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert "Traceback" not in err.decode()
    time.sleep(0.2)
    assert not [pid for pid in workers if _alive(pid)]


def test_files_left_after_the_in_process_start_are_checked_by_workers_with_the_same_verdicts(
        capsys, tmp_path, monkeypatch):
    import ui.cli.check as cmd

    campaign = _campaign(tmp_path)
    code1, out1, _ = run(capsys, campaign, "--jobs", "1", "--json")
    monkeypatch.setattr(cmd, "POOL_AFTER_S", 0.0)  # every file goes to the workers
    before = _children_of(os.getpid())
    code2, out2, _ = run(capsys, campaign, "--jobs", "2", "--json")
    assert code1 == code2 == 1
    first = [(o["history"], o["result"]) for o in map(json.loads, out1.splitlines())]
    second = [(o["history"], o["result"]) for o in map(json.loads, out2.splitlines())]
    assert first == second and len(first) == 5
    assert _children_of(os.getpid()) <= before
