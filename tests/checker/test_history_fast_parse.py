"""The fast paths of the line-format parsers (issue 32, item 4) read exactly what the careful
parser reads: on seeded random canonical and near-canonical lines and logs, the fast reading of a
line is either declined (None) or identical to the careful one, and a whole parse gives the same
operations, the same report and the same errors as the careful parser alone. Also: an empty or
event-free log of a line format is an empty history, a text in no recognisable format is not."""

from __future__ import annotations

import gc
import random

import pytest

from checker import history as hist
from checker.history import HistoryError, LineReport, detect_format, parse_history, parse_jepsen, parse_porcupine_kv
from checker.linearizability import check

SEEDS = range(6)

# ---------------------------------------------------------------------------------------- kv lines

KV_KINDS = ("invoke", "ok", "fail", "info")
KV_FS = ("get", "put", "append")


def kv_value(rng: random.Random) -> str:
    if rng.random() < 0.8:
        return rng.choice(['""', '"x 0 0 y"', '"a, b"', '"é"'])
    return rng.choice(['nil', '"\\"q\\""', '"t\\tab"', '"\\u00e9"', '"x\\\\"'])


def kv_line(rng: random.Random, process: int | None = None, kind: str | None = None, f: str | None = None) -> str:
    """A canonical kv line (random fields unless given)."""
    process = rng.randrange(12) if process is None else process
    kind = rng.choice(KV_KINDS) if kind is None else kind
    f = rng.choice(KV_FS) if f is None else f
    key = rng.choice(['"0"', '"k"', '""', '"a, b"', '"x y"'])
    value = "nil" if kind == "invoke" and f == "get" else kv_value(rng)
    return f"{{:process {process}, :type :{kind}, :f :{f}, :key {key}, :value {value}}}"


KV_MUTATIONS = (
    lambda s, r: s.replace(", ", " "),
    lambda s, r: s.replace(", ", ","),
    lambda s, r: s + " ",
    lambda s, r: " " + s,
    lambda s, r: s + "\r",
    lambda s, r: s.replace(":process ", ":process +", 1),
    lambda s, r: s.replace(":process ", ":process 00", 1),
    lambda s, r: s.replace(":process ", ":process -", 1),
    lambda s, r: s.replace(":process ", ":process 1234567890123456789", 1),
    lambda s, r: s.replace(":process ", ":process \u0663", 1),
    lambda s, r: s.replace(":process ", ':process "', 1).replace(", :type", '", :type', 1),
    lambda s, r: s.replace(":key ", ":key 7 :ignored ", 1),
    lambda s, r: s.replace(':key "', ":key ", 1).replace('", :value', ", :value", 1),
    lambda s, r: s.replace(":value nil", ':value "v"'),
    lambda s, r: s.replace(':value "', ":value nil :v \"", 1),
    lambda s, r: s.replace(":type :", ":type :x", 1),
    lambda s, r: s.replace(":f :", ":f :cas", 1),
    lambda s, r: s.replace("}", ", :extra 1}"),
    lambda s, r: s.replace("}", ", :process 3}"),
    lambda s, r: s.replace(", :value", ", :value nil, :value"),
    lambda s, r: s[: r.randrange(len(s))],
    lambda s, r: s.replace('"', "", 1),
    lambda s, r: s.replace('"', '\\"', 1),
    lambda s, r: s.replace(":key ", ":value nil, :key ", 1).replace(", :value nil}", "}"),
    lambda s, r: s + " {:process 1}",
)


def near_kv_line(rng: random.Random) -> str:
    line = kv_line(rng)
    for _ in range(rng.choice((0, 0, 1, 1, 2))):
        line = rng.choice(KV_MUTATIONS)(line, rng)
    return line


def careful_kv(line: str):
    try:
        return hist._kv_line(hist._Where(1, line), line)
    except HistoryError as exc:
        return exc


@pytest.mark.parametrize("seed", SEEDS)
def test_the_fast_kv_reading_of_a_line_is_declined_or_identical_to_the_careful_one(seed):
    rng = random.Random(seed)
    taken = 0
    for _ in range(400):
        line = near_kv_line(rng)
        fast = hist._kv_fast(line)
        if fast is not None:
            taken += 1
            assert fast == careful_kv(line), line
    assert taken > 50  # the fast path is exercised


def test_the_fast_kv_reading_declines_what_the_careful_one_refuses():
    line = '{:process 0, :type :invoke, :f :put, :key "a", :value nil}'
    assert hist._kv_fast(line) is None and isinstance(careful_kv(line), HistoryError)


# ------------------------------------------------------------------------------------ jepsen lines

J_VALUES = ("nil", "0", "3", "-2", "[1 2]", "[0 -4]", ":timed-out")


def jepsen_line(rng: random.Random, process: int | None = None, kind: str | None = None, f: str | None = None) -> str:
    """A clean Jepsen event line as in Porcupine's etcd logs (random fields unless given)."""
    process = rng.randrange(8) if process is None else process
    kind = rng.choice(("invoke", "ok", "fail", "info")) if kind is None else kind
    f = rng.choice(("read", "write", "cas")) if f is None else f
    value = rng.choice(J_VALUES) if rng.random() < 0.05 else {
        "read": "nil" if kind == "invoke" else rng.choice(("nil", "3")),
        "write": "3", "cas": "[1 2]"}[f]
    if kind == "info":
        value = ":timed-out"
    sep = rng.choice(("\t", "\t", " "))
    return f"INFO  jepsen.util - {process}{sep}:{kind}{sep}:{f}{sep}{value}"


J_MUTATIONS = (
    lambda s, r: s.replace("INFO  ", "", 1),
    lambda s, r: s.replace("INFO", "WARN", 1),
    lambda s, r: s.replace("INFO  ", "12:00:01 INFO  ", 1),
    lambda s, r: s + "\t:hint 0",
    lambda s, r: s + " ",
    lambda s, r: s + "\r",
    lambda s, r: s + " 1 :ok :read 3",
    lambda s, r: s.replace(" - ", " - +", 1),
    lambda s, r: s.replace(" - ", " - 1234567890123456789", 1),
    lambda s, r: s.replace(" - ", " - \u0663", 1),
    lambda s, r: s.replace(" - ", " - :nemesis ", 1),
    lambda s, r: s.replace(" - ", " -- ", 1),
    lambda s, r: s.replace("jepsen.util", "jepsen.utix", 1),
    lambda s, r: s.replace(":ok", ":oX").replace(":invoke", ":invokX"),
    lambda s, r: s.replace(":read", ":reaX"),
    lambda s, r: s.replace("[1 2]", "[nil 2]"),
    lambda s, r: s.replace("[1 2]", "[ 1  2 ]"),
    lambda s, r: s.replace("[1 2]", "[1 :x]"),
    lambda s, r: s.replace("nil", "[1 2]"),
    lambda s, r: s.replace("nil", ":TIMED"),
    lambda s, r: s.replace("3", "007"),
    lambda s, r: s[: r.randrange(len(s))],
    lambda s, r: s.replace("\t", "  "),
)


def near_jepsen_line(rng: random.Random) -> str:
    line = jepsen_line(rng)
    for _ in range(rng.choice((0, 0, 1, 1, 2))):
        line = rng.choice(J_MUTATIONS)(line, rng)
    return line


@pytest.mark.parametrize("seed", SEEDS)
def test_the_fast_jepsen_reading_of_a_line_is_declined_or_identical_to_the_careful_one(seed):
    rng = random.Random(seed)
    taken = 0
    for _ in range(400):
        line = near_jepsen_line(rng)
        fast = hist._jepsen_fast(line)
        if fast is not None:
            taken += 1
            assert fast == hist._jepsen_line(1, line), line  # and the careful reading does not raise
    assert taken > 50


def test_the_fast_jepsen_reading_declines_a_value_that_does_not_fit():
    line = "INFO  jepsen.util - 0\t:invoke\t:cas\tnil"
    assert hist._jepsen_fast(line) is None
    with pytest.raises(HistoryError, match="a cas needs"):
        hist._jepsen_line(1, line)


# ------------------------------------------------------------------------- whole logs, both ways


def careful_only(monkeypatch) -> None:
    """Switch the fast paths off: every line is read the careful way."""
    monkeypatch.setattr(hist, "_kv_fast", lambda line: None)
    monkeypatch.setattr(hist, "_kv_canonical", lambda text: None)
    monkeypatch.setattr(hist, "_jepsen_fast", lambda line: None)


def outcome(parse, text: str, lenient: bool):
    report = LineReport()
    try:
        history = parse(text, lenient=lenient, report=report)
    except HistoryError as exc:
        return "error", str(exc), report.events, report.skipped
    return "ok", list(history), report.events, report.skipped


def random_log(rng: random.Random, line_of, near_line_of, mutate: float) -> str:
    """Events of a few processes, mostly following the invoke/complete protocol; a fraction
    ``mutate`` of the lines replaced by near-canonical ones, sometimes a blank line or CRLF."""
    lines, open_, crashed = [], {}, set()
    for _ in range(rng.randrange(1, 40)):
        p = rng.randrange(6)
        if p in crashed and rng.random() < 0.9:
            continue
        if rng.random() < mutate:
            lines.append(near_line_of(rng))
        elif rng.random() < 0.03:
            lines.append("")
        elif p in open_:
            f = open_.pop(p) if rng.random() < 0.99 else None
            kind = rng.choice(("ok", "ok", "ok", "ok", "fail", "info"))
            crashed.update([p] if kind == "info" else [])
            lines.append(line_of(rng, p, kind, f))
        else:
            open_[p] = f = rng.choice(("get", "put", "append") if line_of is kv_line else ("read", "write", "cas"))
            lines.append(line_of(rng, p, "invoke", f))
    sep = rng.choice(("\n", "\n", "\r\n"))
    return sep.join(lines) + rng.choice((sep, sep, ""))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fmt", ["porcupine-kv", "jepsen"])
def test_a_whole_log_parses_the_same_with_and_without_the_fast_paths(seed, fmt, monkeypatch):
    rng = random.Random(seed)
    parse = parse_porcupine_kv if fmt == "porcupine-kv" else parse_jepsen
    line_of, near = (kv_line, near_kv_line) if fmt == "porcupine-kv" else (jepsen_line, near_jepsen_line)
    logs = [random_log(rng, line_of, near, rng.choice((0.0, 0.0, 0.05, 0.3))) for _ in range(60)]
    runs = [(text, lenient) for text in logs for lenient in (False, True)]
    fast = [outcome(parse, text, lenient) for text, lenient in runs]
    careful_only(monkeypatch)
    careful = [outcome(parse, text, lenient) for text, lenient in runs]
    for (text, lenient), a, b in zip(runs, fast, careful):
        assert a == b, (text, lenient)
    assert sum(o[0] == "ok" and len(o[1]) > 0 for o in fast) > 10  # histories with operations are compared


def test_a_canonical_kv_log_is_read_whole_and_reports_every_line_as_an_event():
    text = ('{:process 0, :type :invoke, :f :put, :key "a", :value "x"}\n'
            '{:process 1, :type :invoke, :f :get, :key "a", :value nil}\r\n'
            '{:process 0, :type :ok, :f :put, :key "a", :value "x"}\n'
            '{:process 1, :type :ok, :f :get, :key "a", :value nil}')
    assert hist._kv_canonical(text) is not None
    report = LineReport()
    history = parse_porcupine_kv(text, report=report)
    assert report.events == [1, 2, 3, 4]
    assert [(op.client, op.input, op.output, op.call, op.ret) for op in history] == [
        (0, {"op": "put", "key": "a", "value": "x"}, None, 1, 3), (1, {"op": "get", "key": "a"}, "", 2, 4)]


def test_a_protocol_error_in_a_canonical_kv_log_is_named_by_the_careful_reading():
    text = ('{:process 0, :type :invoke, :f :get, :key "a", :value nil}\n'
            '{:process 0, :type :invoke, :f :get, :key "a", :value nil}\n')
    assert hist._kv_canonical(text) is None
    with pytest.raises(HistoryError, match="line 2: .*two operations outstanding"):
        parse_porcupine_kv(text)


def test_the_garbage_collector_is_enabled_again_after_a_parse_even_a_failed_one():
    parse_porcupine_kv('{:process 0, :type :invoke, :f :get, :key "a", :value nil}\n')
    with pytest.raises(HistoryError):
        parse_jepsen("INFO  jepsen.util - 0\t:invoke\t:cas\tnil\n")
    assert gc.isenabled()


# ------------------------------------------------------------------------------ empty histories


@pytest.mark.parametrize("fmt", ["jepsen", "porcupine-kv"])
@pytest.mark.parametrize("text", ["", "\n", "  \n\n"])
def test_a_blank_log_of_a_line_format_is_an_empty_linearizable_history(fmt, text):
    history = parse_history(text, fmt)
    assert len(history) == 0
    assert check(history, "cas-register" if fmt == "jepsen" else "kv").ok


def test_a_jepsen_log_with_only_nemesis_and_free_text_lines_is_an_empty_history():
    text = ("INFO  jepsen.core - Running test\n"
            "INFO  jepsen.util - :nemesis\t:info\t:start\tnil\n"
            "INFO  jepsen.util - Sleeping 5 seconds\n")
    assert len(parse_jepsen(text)) == 0


def test_a_text_without_any_jepsen_util_line_is_still_not_a_jepsen_log():
    with pytest.raises(HistoryError, match="no Jepsen client events"):
        parse_jepsen("INFO  jepsen.core - nothing happened\n")
    with pytest.raises(HistoryError, match="no Jepsen client events"):
        parse_history('{"operations": []}', "jepsen")


@pytest.mark.parametrize("fmt, line", [
    ("jepsen", "INFO  jepsen.util - 0\t:invoke\t:cas\tnil"),
    ("porcupine-kv", '{:process 0, :type :invoke, :f :put, :key "a", :value nil}'),
])
def test_a_log_whose_every_event_was_skipped_is_still_refused_under_lenient(fmt, line):
    with pytest.raises(HistoryError, match=r"1 line\(s\) skipped as malformed"):
        parse_history(line + "\n", fmt, lenient=True)


def test_an_empty_file_is_refused_by_auto_detection_with_the_way_to_check_it():
    for text in ("", " \n"):
        with pytest.raises(HistoryError, match="empty.*pass --format jepsen or porcupine-kv"):
            detect_format(text)
        with pytest.raises(HistoryError, match="empty"):
            parse_history(text)


def test_an_empty_json_history_is_still_malformed_json():
    with pytest.raises(HistoryError):
        parse_history("", "json")
