"""`packrat check`: verdicts as exit codes, one JSON object with --json, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from checker.history import History, Operation, write_history
from ui.cli import main

FIXTURES = Path(__file__).parent.parent / "checker" / "fixtures"


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
