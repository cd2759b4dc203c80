"""Histories: operations, validation, and the json / jepsen / porcupine-kv formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checker.history import (
    SCHEMA,
    UNKNOWN_OUTPUT,
    History,
    HistoryError,
    Operation,
    detect_format,
    parse_history,
    parse_jepsen,
    parse_json,
    parse_porcupine_kv,
    read_history,
    to_json,
    write_history,
)

FIXTURES = Path(__file__).parent / "fixtures"


def W(client, value, call, ret):
    return Operation(client, {"op": "write", "value": value}, None, call, ret)


def R(client, value, call, ret):
    return Operation(client, {"op": "read"}, value, call, ret)


# --------------------------------------------------------------------------------------------
# Operation and History


def test_an_operation_without_a_return_is_pending():
    assert R(0, None, 1, None).pending
    assert not R(0, None, 1, 2).pending


def test_an_operation_may_return_at_the_instant_it_is_called():
    assert R(0, 1, 5, 5).ret == 5


def test_an_operation_cannot_return_before_its_call():
    with pytest.raises(HistoryError, match="returns at 3 before its call at 7"):
        R(0, 1, 7, 3)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "3", None, True])
def test_an_operation_needs_a_finite_numeric_call_time(bad):
    with pytest.raises(HistoryError, match="call time"):
        Operation(0, {"op": "read"}, None, bad, 10)


@pytest.mark.parametrize("bad", [1.5, None, [1], True])
def test_a_client_is_an_integer_or_a_string(bad):
    with pytest.raises(HistoryError, match="client"):
        Operation(bad, {"op": "read"}, None, 0, 1)


def test_a_client_never_has_two_operations_outstanding():
    with pytest.raises(HistoryError, match="two operations outstanding"):
        History([W(0, 1, 0, 10), R(0, 1, 5, 12)])


def test_intervals_are_closed_so_a_client_cannot_call_at_the_instant_it_returned():
    with pytest.raises(HistoryError, match="two operations outstanding"):
        History([W(0, 1, 0, 10), R(0, 1, 10, 12)])
    assert len(History([W(0, 1, 0, 10), R(0, 1, 11, 12)])) == 2


def test_a_pending_operation_must_be_its_clients_last():
    with pytest.raises(HistoryError, match="pending operation must be the client's last"):
        History([W(0, 1, 0, None), R(0, 1, 5, 6)])


def test_different_clients_may_overlap_freely():
    h = History([W(0, 1, 0, 10), R(1, 1, 5, 12), R(2, None, 0, None)])
    assert h.clients == (0, 1, 2)
    assert h.pending == (2,)


def test_a_history_holds_only_operations():
    with pytest.raises(HistoryError, match="not an Operation"):
        History([("client", 0)])


# --------------------------------------------------------------------------------------------
# JSON


def test_json_round_trips_through_write_and_read(tmp_path):
    h = History(
        [
            W(0, 1, 0, 10),
            R(1, UNKNOWN_OUTPUT, 2, 4),
            Operation("controller", {"op": "reconfigure", "plan": {"batch": 8}}, {"epoch": 1}, 3, 9),
            R(2, None, 5, None),
        ],
        model="serving",
    )
    path = write_history(h, tmp_path / "h.json")
    back = read_history(path)
    assert back == h
    assert back[1].output is UNKNOWN_OUTPUT
    obj = json.loads(path.read_text())
    assert obj["schema"] == SCHEMA and obj["model"] == "serving"
    assert obj["operations"][1] == {"client": 1, "input": {"op": "read"}, "output": None,
                                    "output_unknown": True, "call": 2, "ret": 4}


def test_to_json_lets_the_caller_name_the_model():
    assert to_json(History([W(0, 1, 0, 1)]), model="register")["model"] == "register"
    assert "model" not in to_json(History([W(0, 1, 0, 1)]))


def test_a_file_with_just_operations_is_accepted():
    h = parse_json('{"operations": [{"client": 0, "input": {"op": "read"}, "output": null, "call": 0, "ret": 1}]}')
    assert len(h) == 1 and h.model is None


def test_an_unknown_schema_is_rejected_by_name():
    with pytest.raises(HistoryError, match="unknown history schema 'packrat.history/2'"):
        parse_json('{"schema": "packrat.history/2", "operations": []}')


@pytest.mark.parametrize(
    "text, message",
    [
        ("{", "not valid JSON: line 1 column 2"),
        ("[1, 2]", "must be a JSON object"),
        ('{"ops": []}', 'no "operations"'),
        ('{"operations": {}}', '"operations" must be a list'),
        ('{"operations": [3]}', "operation 0 must be an object"),
        ('{"operations": [{"client": 0, "input": 1, "call": 0}]}', "operation 0 has no 'ret'"),
        ('{"operations": [{"client": 0, "input": 1, "call": 5, "ret": 1}]}', "operation 0: .*before its call"),
        ('{"model": 3, "operations": []}', '"model" must be a string'),
        ("[" * 100000, "not valid JSON"),
    ],
)
def test_malformed_json_histories_name_the_problem(text, message):
    with pytest.raises(HistoryError, match=message):
        parse_json(text)


def test_reading_a_missing_file_is_a_history_error(tmp_path):
    with pytest.raises(HistoryError, match="cannot read history"):
        read_history(tmp_path / "missing.json")


def test_reading_a_binary_file_is_a_history_error(tmp_path):
    path = tmp_path / "bin.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(HistoryError, match="not UTF-8"):
        read_history(path)


# --------------------------------------------------------------------------------------------
# Jepsen


def jepsen(*lines: str) -> str:
    return "".join(f"INFO  jepsen.util - {line}\n" for line in lines)


def test_a_jepsen_ok_completes_the_open_call():
    h = parse_jepsen(jepsen("0\t:invoke\t:write\t3", "1\t:invoke\t:read\tnil", "0\t:ok\t:write\t3",
                            "1\t:ok\t:read\t3", "1 :invoke :cas [3 4]", "1 :ok :cas [3 4]"))
    assert [op.input for op in h] == [{"op": "write", "value": 3}, {"op": "read"},
                                      {"op": "cas", "from": 3, "to": 4}]
    assert [op.output for op in h] == [None, 3, True]
    assert [(op.call, op.ret) for op in h] == [(1, 3), (2, 4), (5, 6)]


def test_a_failed_jepsen_cas_is_a_cas_that_returned_false():
    (op,) = parse_jepsen(jepsen("2 :invoke :cas [1 2]", "2 :fail :cas [1 2]"))
    assert op.input == {"op": "cas", "from": 1, "to": 2} and op.output is False and not op.pending


def test_a_failed_jepsen_write_did_not_happen_and_is_dropped():
    h = parse_jepsen(jepsen("2 :invoke :write 1", "2 :fail :write 1", "2 :invoke :read nil", "2 :ok :read nil"))
    assert [op.input["op"] for op in h] == ["read"]


def test_a_timed_out_jepsen_read_completes_with_an_unknown_value():
    (op,) = parse_jepsen(jepsen("4 :invoke :read nil", "4 :fail :read :timed-out"))
    assert op.output is UNKNOWN_OUTPUT and not op.pending


def test_an_info_leaves_the_call_pending_forever():
    (op,) = parse_jepsen(jepsen("4 :invoke :write 2", "4 :info :write :timed-out"))
    assert op.pending and op.input == {"op": "write", "value": 2}


def test_a_process_that_crashed_never_invokes_again():
    with pytest.raises(HistoryError, match="line 3: .*after an indeterminate"):
        parse_jepsen(jepsen("4 :invoke :write 2", "4 :info :write :timed-out", "4 :invoke :read nil"))


def test_an_invocation_left_open_at_the_end_is_pending():
    (op,) = parse_jepsen(jepsen("7 :invoke :cas [1 2]"))
    assert op.pending


def test_jepsen_fields_may_be_separated_by_any_whitespace_and_followed_by_extra_fields():
    h = parse_jepsen(jepsen("3    :invoke \t :cas\t\t[ 1   2 ]", "3 :ok :cas [1 2] \t:hint 7"))
    assert h[0].input == {"op": "cas", "from": 1, "to": 2} and h[0].output is True


def test_jepsen_lines_of_other_loggers_nemesis_and_free_text_are_ignored():
    text = (
        "2024-05-02 10:00:00,001{GMT}\tINFO\t[main] jepsen.core - Running test\n"
        "INFO  jepsen.util - :nemesis\t:info\t:start\tnil\n"
        "WARN  jepsen.util - waiting for the cluster to converge\n"
        "\n"
        "2024-05-02 10:00:00,002{GMT}\tINFO\t[jepsen worker 0] jepsen.util - 0\t:invoke\t:read\tnil\n"
        "INFO  jepsen.util - 0\t:ok\t:read\tnil\n"
    )
    (op,) = parse_jepsen(text)
    assert op.client == 0 and op.output is None


@pytest.mark.parametrize(
    "line, message",
    [
        ("3 :invoke :read", "line 2: .*malformed Jepsen event"),
        ("3 :invoke :cas [1 2", "line 2: .*malformed Jepsen event"),
        ("3 :okay :read 1", "line 2: .*unknown event type ':okay'"),
        ("3 :invoke :incr 1", "line 2: .*unknown function ':incr'"),
        ("3 :invoke :write [1 2]", "line 2: .*a write needs nil or an integer"),
        ("3 :invoke :cas 4", "line 2: .*a cas needs \\[FROM TO\\]"),
        ("3 :invoke :write banana", "line 2: .*malformed value 'banana'"),
        ("x :invoke :read nil", "line 2: .*process 'x' is not an integer"),
        ("3 :ok :read 1", "line 2: .*completion for process 3 without a call"),
    ],
)
def test_a_malformed_jepsen_event_names_its_line_and_text(line, message):
    text = jepsen("0 :invoke :read nil", line)
    with pytest.raises(HistoryError, match=message) as info:
        parse_jepsen(text)
    assert line.split()[0] in str(info.value)


def test_a_completion_must_match_the_invoked_function():
    with pytest.raises(HistoryError, match="line 2: .*completion of :write for process 1, which invoked :read"):
        parse_jepsen(jepsen("1 :invoke :read nil", "1 :ok :write 1"))


def test_a_text_without_jepsen_events_is_rejected():
    with pytest.raises(HistoryError, match="no Jepsen client events"):
        parse_jepsen("INFO jepsen.core - nothing happened\n")


# --------------------------------------------------------------------------------------------
# Porcupine key-value logs


def test_porcupine_kv_events_become_get_put_append_operations():
    text = (
        '{:process 0, :type :invoke, :f :put, :key "k", :value "x 0 0 y"}\n'
        '{:process 0, :type :ok, :f :put, :key "k", :value "x 0 0 y"}\n'
        '{:process 1, :type :invoke, :f :get, :key "k", :value nil}\n'
        '{:process 1 :type :ok :f :get :key "k" :value "x 0 0 y"}\n'
        '{:process 1, :type :invoke, :f :append, :key "k", :value "z"}\n'
    )
    h = parse_porcupine_kv(text)
    assert [op.input for op in h] == [
        {"op": "put", "key": "k", "value": "x 0 0 y"},
        {"op": "get", "key": "k"},
        {"op": "append", "key": "k", "value": "z"},
    ]
    assert h[1].output == "x 0 0 y" and h[2].pending


def test_edn_string_escapes_are_decoded():
    h = parse_porcupine_kv('{:process 0, :type :invoke, :f :put, :key "a", :value "q\\"\\t\\\\\\u00e9"}\n')
    assert h[0].input["value"] == 'q"\t\\\u00e9'


def test_a_nil_get_result_reads_as_the_empty_string():
    h = parse_porcupine_kv('{:process 0, :type :invoke, :f :get, :key "a", :value nil}\n'
                           '{:process 0, :type :ok, :f :get, :key "a", :value nil}\n')
    assert h[0].output == ""


@pytest.mark.parametrize(
    "line, message",
    [
        ('{:process 0, :type :ok, :f :get, :key "a", :value "x}', "unterminated string"),
        ("not edn", "expected an EDN map"),
        ('{:process 0, :type :ok}', "no :f"),
        ('{:process "0", :type :invoke, :f :get, :key "a", :value nil}', ":process must be an integer"),
        ('{:process 0, :type :done, :f :get, :key "a", :value nil}', "unknown :type"),
        ('{:process 0, :type :invoke, :f :cas, :key "a", :value nil}', "unknown :f"),
        ('{:process 0, :type :invoke, :f :put, :key "a", :value nil}', "needs a string :value"),
        ('{:process 0, :type :invoke, :f :get, :value nil}', "no :key"),
        ('{:process 0, :type :invoke, :f :get, :key "a", :value nil} trailing', "unexpected text after the map"),
        ('{:process 0, :process 1}', "duplicate key :process"),
        ('{"process" 0}', "is not a keyword"),
        ('{:process 0, :type :invoke, :f :get, :key [1 2], :value nil}', "unsupported value"),
    ],
)
def test_a_malformed_porcupine_kv_line_names_its_line_and_text(line, message):
    text = '{:process 9, :type :invoke, :f :get, :key "z", :value nil}\n' + line + "\n"
    with pytest.raises(HistoryError, match=f"line 2: .*{message}"):
        parse_porcupine_kv(text)


# --------------------------------------------------------------------------------------------
# Format detection and dispatch


@pytest.mark.parametrize(
    "name, fmt",
    [("register-ok.json", "json"), ("cas-pending-ok.log", "jepsen"), ("kv-ok.txt", "porcupine-kv")],
)
def test_the_format_is_detected_from_the_content(name, fmt):
    assert detect_format((FIXTURES / name).read_text()) == fmt


def test_an_unrecognisable_text_asks_for_a_format():
    with pytest.raises(HistoryError, match="pass --format"):
        detect_format("hello\nworld\n")


def test_an_unknown_format_is_rejected_by_name():
    with pytest.raises(HistoryError, match="unknown history format 'csv'"):
        parse_history("{}", "csv")
    with pytest.raises(HistoryError, match="unknown history format 'csv'"):
        read_history(FIXTURES / "register-ok.json", "csv")


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*-bad.*")), ids=lambda p: p.name)
def test_bad_fixtures_are_rejected_with_a_history_error(path):
    with pytest.raises(HistoryError):
        read_history(path)


@pytest.mark.parametrize("path", sorted(p for p in FIXTURES.iterdir() if "-bad." not in p.name), ids=lambda p: p.name)
def test_good_fixtures_parse(path):
    assert len(read_history(path)) > 0


# --------------------------------------------------------------------------------------------
# Fuzzing: arbitrary input never raises anything but HistoryError

_JEPSEN_WORDS = st.sampled_from(
    ["INFO", "jepsen.util", "-", "0", "12", "-3", ":invoke", ":ok", ":fail", ":info", ":read", ":write",
     ":cas", "nil", "[1", "2]", "[1 2]", ":timed-out", ":nemesis", "\t", "  ", "99999999999999999999999999999999999"]
)
_EDN_WORDS = st.sampled_from(
    ["{", "}", ":process", ":type", ":f", ":key", ":value", ":invoke", ":ok", ":get", ":put", ":append",
     '"a"', '"x\\"', '"\\u12"', "nil", "0", "1", ",", " ", "[", "]", "true", '"', "\\"]
)


def _only_history_errors(parse, text):
    try:
        parse(text)
    except HistoryError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes_any_parser(text):
    for fmt in (None, "json", "jepsen", "porcupine-kv"):
        _only_history_errors(lambda t: parse_history(t, fmt), text)


@settings(max_examples=120, deadline=None)
@given(st.lists(st.lists(_JEPSEN_WORDS, max_size=6).map(" ".join), max_size=6).map("\n".join))
def test_jepsen_like_text_never_crashes_the_parser(text):
    _only_history_errors(parse_jepsen, text)


@settings(max_examples=120, deadline=None)
@given(st.lists(st.lists(_EDN_WORDS, max_size=12).map(" ".join), max_size=4).map("\n".join))
def test_edn_like_text_never_crashes_the_parser(text):
    _only_history_errors(parse_porcupine_kv, text)


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=True) | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["client", "input", "output", "call", "ret", "schema", "model", "operations",
                         "output_unknown", "op"]), inner, max_size=5),
    max_leaves=8,
)


@settings(max_examples=120, deadline=None)
@given(_JSON_VALUES)
def test_json_like_documents_never_crash_the_parser(value):
    _only_history_errors(parse_json, json.dumps(value))


# --------------------------------------------------------------------------------------------
# Hostile input (issue 18): logs that end like real Jepsen logs, duplicate JSON keys

JEPSEN_EVENTS = ("INFO  jepsen.util - 0\t:invoke\t:write\t1\n"
                 "INFO  jepsen.util - 0\t:ok\t:write\t1\n"
                 "INFO  jepsen.util - 1\t:invoke\t:read\tnil\n"
                 "INFO  jepsen.util - 1\t:ok\t:read\t1\n")


@pytest.mark.parametrize("ending", [
    "\n",
    "\n\n",
    "INFO  jepsen.core - Run complete, writing\n",
    "INFO  jepsen.core - Run complete, writing\n\n",
])
def test_a_jepsen_log_is_detected_whatever_its_last_line(ending):
    text = "INFO  jepsen.core - Running test with config\n" + JEPSEN_EVENTS + ending
    assert detect_format(text) == "jepsen"
    assert len(parse_history(text)) == 2


def test_a_history_with_a_duplicate_operations_key_is_rejected_naming_the_key():
    row = {"client": 0, "input": {"op": "read"}, "output": 5, "call": 0, "ret": 1}
    text = ('{"schema": "packrat.history/1", "model": "register", "operations": [%s], "operations": []}'
            % json.dumps(row))
    with pytest.raises(HistoryError, match="duplicate key 'operations'"):
        parse_json(text)


def test_a_duplicate_key_inside_an_operation_is_rejected_too():
    text = ('{"model": "register", "operations": [{"client": 0, "input": {"op": "read"}, "output": 5, '
            '"output": null, "call": 0, "ret": 1}]}')
    with pytest.raises(HistoryError, match="duplicate key 'output'"):
        parse_json(text)
