"""Hostile histories and replay files (issue 29, items 6, 8, 10, 11, 12): a damaged Jepsen line is
an error naming it (or, under --lenient, a counted warning), kv keys keep their JSON type, history
JSON is strict, replay files are strict and read safely."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from checker.history import HistoryError, parse_history, parse_jepsen, parse_json, parse_porcupine_kv
from checker.linearizability import check

FIXTURES = Path(__file__).parent / "fixtures"
STALE = (FIXTURES / "stale-read-illegal.log").read_text()  # the :ok :read 1 on line 6 is the stale read


def damaged(text: str, line_no: int, old: str, new: str) -> str:
    lines = text.split("\n")
    assert old in lines[line_no - 1]
    lines[line_no - 1] = lines[line_no - 1].replace(old, new, 1)
    return "\n".join(lines)


def test_the_undamaged_log_is_illegal():
    assert check(parse_jepsen(STALE), "cas-register").illegal


# ------------------------------------------------------------------------------ item 6: Jepsen


@pytest.mark.parametrize("old, new", [
    ("jepsen.util", "jepsen.utix"),  # one byte of the marker changed: today the read went pending, ILLEGAL -> OK
    ("jepsen.util", "jepsenXutil"),
    (" - ", " = "),
    (" - ", " -- "),
    ("util - ", "util -"),
    ("INFO  jepsen.util - ", ""),  # the whole prefix lost
    ("2\t:ok", "2X:ok"),  # the process glued to the type
    ("2\t:ok", ":2\t:ok"),
    ("\t:ok", "\t:oX"),  # the type damaged
    ("\t:read", "\t:reaX"),  # the function damaged
])
def test_a_damaged_event_line_is_an_error_naming_its_line(old, new):
    text = damaged(STALE, 6, old, new)
    with pytest.raises(HistoryError, match=r"^line 6: "):
        parse_jepsen(text)


def test_two_events_on_one_line_are_an_error():
    lines = STALE.split("\n")
    lines[4:6] = [lines[4] + " " + lines[5]]  # a lost line break: the :ok :read would be ignored trailing text
    with pytest.raises(HistoryError, match="line 5: .*more than one event"):
        parse_jepsen("\n".join(lines))


def test_lenient_leaves_a_damaged_line_out_and_counts_it():
    text = damaged(STALE, 6, "jepsen.util", "jepsen.utix")
    from checker.history import LineReport

    report = LineReport()
    history = parse_jepsen(text, lenient=True, report=report)
    assert [n for n, _ in report.skipped] == [6] and "line 6" in report.skipped[0][1]
    assert report.events == [1, 2, 3, 4, 5]
    assert len(history.pending) == 1  # the read whose answer was lost


def test_other_loggers_nemesis_and_free_text_are_still_ignored():
    text = "\n".join([
        "INFO  jepsen.core - Running test",
        "INFO  jepsen.util - :nemesis\t:info\t:start\tnil",
        "INFO  jepsen.util - Sleeping 5 seconds",
        "INFO  jepsen.util - 0\t:invoke\t:read\tnil",
        "INFO  jepsen.util - 0\t:ok\t:read\tnil",
        "INFO  jepsen.core - {:valid? true, :type :ok, :f :read}",
        "",
    ])
    from checker.history import LineReport

    report = LineReport()
    assert len(parse_jepsen(text, report=report)) == 1
    assert report.events == [4, 5] and report.skipped == []


def test_a_nemesis_line_hiding_a_client_event_is_an_error():
    text = "INFO  jepsen.util - 0 :invoke :read nil\nINFO  jepsen.util - :nemesis 0 :ok :read nil\n"
    with pytest.raises(HistoryError, match="line 2"):
        parse_jepsen(text)


def test_line_numbers_count_newlines_only():
    """A form feed or U+2028 inside a line does not start a new one (str.splitlines would)."""
    text = "INFO  jepsen.util - 0 :invoke :read nil\f\nINFO  jepsen.util - 0 :ok :read 1x\n"
    with pytest.raises(HistoryError, match="^line 2: .*malformed value"):
        parse_jepsen(text)


# ------------------------------------------------------------------------ Porcupine kv (item 6)


def test_a_kv_line_that_does_not_parse_is_an_error_or_under_lenient_counted():
    text = (FIXTURES / "kv-ok.txt").read_text()
    bad = damaged(text, 2, ":type", ":typo")
    with pytest.raises(HistoryError, match="^line 2: .*no :type"):
        parse_porcupine_kv(bad)
    from checker.history import LineReport

    report = LineReport()
    history = parse_porcupine_kv(damaged(text, 21, ":type", ":typo"), lenient=True, report=report)
    assert [n for n, _ in report.skipped] == [21] and report.events == list(range(1, 21)) and len(history) == 10


# --------------------------------------------------------------------------- item 8: kv key types


def kv_history(put_key, get_key) -> str:
    return json.dumps({"model": "kv", "operations": [
        {"client": 0, "input": {"op": "put", "key": put_key, "value": "x"}, "output": None, "call": 0, "ret": 1},
        {"client": 1, "input": {"op": "get", "key": get_key}, "output": "x", "call": 2, "ret": 3},
    ]})


@pytest.mark.parametrize("put_key, get_key", [(1, 1.0), (1, True), (1.0, True), ("1", 1), (0, False), (None, "null")])
def test_kv_keys_keep_their_json_type(put_key, get_key):
    """Today 1, 1.0 and true were one key: the get read the put's value and the history passed."""
    result = check(parse_json(kv_history(put_key, get_key)), "kv")
    assert result.illegal
    assert len(result.partitions) == 2


@pytest.mark.parametrize("key", [1, 1.0, True, "1", None])
def test_the_same_key_is_one_partition(key):
    result = check(parse_json(kv_history(key, key)), "kv")
    assert result.ok and len(result.partitions) == 1


def test_typed_keys_print_as_written():
    from checker.models import kv_key

    assert repr(kv_key(True)) == "True" and kv_key(True) != kv_key(1) and kv_key(1.0) != kv_key(1)
    assert kv_key("a") == "a" and kv_key(3) == 3


WRITE = ('{"model": "register", "operations": [{"client": 0, "input": {"op": "write", "value": VALUE}, '
         '"output": null, "call": 0, "ret": 1}]}')


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_a_json_history_with_nan_or_infinity_is_refused(constant):
    text = WRITE.replace("VALUE", constant)
    with pytest.raises(HistoryError, match="not valid JSON"):
        parse_json(text)


# ----------------------------------------------------------------------------- item 11: depth


def test_history_values_nested_500_deep_are_one_clean_error():
    text = WRITE.replace("VALUE", "[" * 500 + "1" + "]" * 500)
    with pytest.raises(HistoryError, match="nested too deeply"):
        parse_history(text)


def test_a_history_with_a_huge_integer_is_one_clean_error():
    with pytest.raises(HistoryError, match="5,000 digits"):
        parse_json('{"operations": [{"client": 0, "input": 1, "output": null, "call": ' + "1" * 5000 + ', "ret": null}]}')


# --------------------------------------------------------------------------------- replay files


def _replay_obj(**over) -> dict:
    obj = {"schema": "packrat.replay/1", "protocol": "reconfig", "variant": "correct",
           "params": {"clients": 1}, "deliveries": []}
    obj.update(over)
    return obj


def read(tmp_path, text: str):
    from checker.explore import read_replay

    path = tmp_path / "r.json"
    path.write_text(text)
    return read_replay(path)


def test_a_plain_replay_file_reads(tmp_path):
    protocol, schedule, _ = read(tmp_path, json.dumps(_replay_obj()))
    assert protocol.name == "reconfig" and schedule == ()


@pytest.mark.parametrize("text, fragment", [
    ('{"schema": "packrat.replay/1", "protocol": "reconfig", "protocol": "register", "deliveries": []}',
     "duplicate key 'protocol'"),  # item 10
    (json.dumps(_replay_obj(params={"clients": 1})).replace('"clients": 1', '"clients": ' + "1" * 5000), "5,000 digits"),
    (json.dumps(_replay_obj(deliveries=[json.loads("[" * 300 + "]" * 300)])), "nested too deeply"),
    (json.dumps(_replay_obj(params={"name": "x"})), "holds 'name'"),
    (json.dumps(_replay_obj(params={"variant": "correct"})), "holds 'variant'"),
    (json.dumps(_replay_obj()).replace('"clients": 1', '"clients": NaN'), "NaN"),
])
def test_hostile_replay_files_are_one_explore_error(tmp_path, text, fragment):
    from checker.explore import ExploreError

    with pytest.raises(ExploreError, match=fragment) as info:
        read(tmp_path, text)
    assert "r.json" in str(info.value)


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_a_replay_path_that_is_a_device_or_fifo_is_refused_without_reading(tmp_path, kind):
    from checker.explore import ExploreError, read_replay

    from tests.packrat_sim.test_inputs import deadline

    path = "/dev/zero"
    if kind == "fifo":
        path = str(tmp_path / "r.json")
        os.mkfifo(path)
    with deadline(), pytest.raises(ExploreError, match="not a regular file"):
        read_replay(path)


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_a_history_path_that_is_a_device_or_fifo_is_refused_without_reading(tmp_path, kind):
    from checker.history import read_history

    from tests.packrat_sim.test_inputs import deadline

    path = "/dev/zero"
    if kind == "fifo":
        path = str(tmp_path / "h.log")
        os.mkfifo(path)
    with deadline(), pytest.raises(HistoryError, match="not a regular file"):
        read_history(path)
