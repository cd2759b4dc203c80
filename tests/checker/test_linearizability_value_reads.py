"""The checker's kv speed-ups (issue 32, item 4): value reads (the scan tries only the reads whose
value is the current state), the kv model's compile fast path and the one-pass preparation of the
partitions agree with the slow paths they stand in for."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from checker.history import UNKNOWN_OUTPUT, History, HistoryError, Operation, parse_porcupine_kv
from checker.linearizability import ILLEGAL, OK, check, search
from checker.linearizability.result import CheckResult
from checker.models import NOT_A_READ, Model, ModelError, get_model, kv_model
from checker.models import _kv_compile, _kv_compile_checked
from tests.checker.history_helpers import random_history
from tests.reader_fuzz_helpers import HISTORY_FIXTURES, mutate


def _op(rng: random.Random, model: str, values: list) -> tuple[dict, object]:
    """A random (input, output) of ``model``, read-heavy over a few values (a read's output is
    sometimes unknown; a cas sometimes fails)."""
    v = rng.choice(values)
    if model == "kv":
        key = rng.choice("ab")
        kind = rng.choice(["get", "get", "get", "put", "append"])
        if kind == "get":
            return {"op": "get", "key": key}, rng.choice([v, v + v, "", UNKNOWN_OUTPUT])
        return {"op": kind, "key": key, "value": v}, None
    kind = rng.choice(["read", "read", "write"] + (["cas"] if model == "cas-register" else []))
    if kind == "read":
        return {"op": "read"}, rng.choice([v, None, UNKNOWN_OUTPUT])
    if kind == "write":
        return {"op": "write", "value": v}, None
    return {"op": "cas", "from": v, "to": rng.choice(values)}, rng.choice([True, False])


def _history(rng: random.Random, model: str, values: list) -> History:
    """Up to 14 operations of up to 4 clients with many overlaps; a client's last operation is
    sometimes pending."""
    return random_history(rng, lambda: _op(rng, model, values), clients=4, first_call=3, max_ops=14, go_on=0.85,
                          pending_one_in=9, longest=5)


def _evidence(result: CheckResult) -> tuple:
    """Everything a result says apart from times and step counts."""
    return (result.result, result.first_failure, result.reason,
            [(p.key, p.result, p.operations, p.linearization, p.blocked, p.state, p.needed)
             for p in result.partitions])


@pytest.mark.parametrize("model,values", [("kv", ["x", "y", "xy"]), ("register", [1, 2, 1.0]),
                                          ("cas-register", [1, 2, None])])
def test_value_reads_give_the_verdict_and_evidence_of_stepping_over_every_read(model, values, monkeypatch):
    monkeypatch.setattr(search, "VALUE_READS_MIN", 1)  # value lists for every partition with a read
    rng = random.Random(f"value-reads-{model}")
    fast = replace(get_model(model), resets=None, reaches=None)  # (dead reads: their own test file)
    slow = replace(fast, read_value=None)
    verdicts, fewer = set(), 0
    for _ in range(400):
        h = _history(rng, model, values)
        with_values, without = check(h, fast, all_partitions=True), check(h, slow, all_partitions=True)
        assert _evidence(with_values) == _evidence(without), h.operations
        assert with_values.steps <= without.steps
        fewer += with_values.steps < without.steps
        verdicts.add(with_values.result)
    assert verdicts == {OK, ILLEGAL} and fewer > 0


def test_a_long_kv_partition_checks_the_same_with_and_without_value_reads():
    """One key, 8 clients, 300 operations from a linearizable store, then a read of a value never
    written: the searches that skip reads agree on both verdicts and their evidence."""
    rng = random.Random("value-reads-long")
    ops, store, t = [], "", 0
    for k in range(300):
        client, kind = k % 8, rng.choice(["get", "get", "append", "put"])
        if kind == "get":
            ops.append(Operation(client, {"op": "get", "key": "k"}, store, t, t + 9))
        else:
            store = f"v{k}" if kind == "put" else store + f"v{k}"
            ops.append(Operation(client, {"op": kind, "key": "k", "value": f"v{k}"}, None, t, t + 9))
        t += 2
    bad = ops + [Operation(9, {"op": "get", "key": "k"}, "never", t + 20, t + 21)]
    for h, verdict in ((History(ops), OK), (History(bad), ILLEGAL)):
        fast = check(h, replace(kv_model(), resets=None, reaches=None))
        slow = check(h, replace(kv_model(), read_value=None, resets=None, reaches=None))
        assert fast.result is verdict and _evidence(fast) == _evidence(slow)
        assert fast.steps < slow.steps


def test_read_value_names_the_one_state_a_read_can_be_legal_in():
    kv, reg, cas = get_model("kv"), get_model("register"), get_model("cas-register")

    def value(mdl: Model, inp: object, out: object) -> object:
        assert mdl.read_value is not None
        return mdl.read_value(*mdl.compile(inp, out))

    assert value(kv, {"op": "get", "key": "a"}, "xy") == "xy"
    assert value(kv, {"op": "get", "key": "a"}, None) == ""  # a nil get reads ""
    assert value(kv, {"op": "get", "key": "a"}, UNKNOWN_OUTPUT) is NOT_A_READ
    assert value(kv, {"op": "append", "key": "a", "value": "x"}, None) is NOT_A_READ
    assert value(reg, {"op": "read"}, None) is None
    assert value(reg, {"op": "read"}, [1, 2]) == value(reg, {"op": "read"}, [1, 2])
    assert value(cas, {"op": "cas", "from": 1, "to": 2}, False) is NOT_A_READ


_HOSTILE_INPUTS = [
    {"op": "get", "key": "a"}, {"op": "get", "key": 1}, {"op": "get", "key": True}, {"op": "get", "key": None},
    {"op": "get", "key": 1.5}, {"op": "get", "key": float("nan")}, {"op": "get", "key": ["a"]}, {"op": "get"},
    {"op": "put", "key": "a", "value": "x"}, {"op": "append", "key": "a", "value": "x"},
    {"op": "put", "key": "a", "value": 3}, {"op": "put", "key": "a"}, {"op": "append", "key": "a", "value": None},
    {"op": "cas", "key": "a"}, {"key": "a"}, {"op": None, "key": "a"}, "get", None, ["get", "a"],
    {"op": "get", "key": "a", "extra": 1}, {"op": "put", "key": 7, "value": "x"},
]
_HOSTILE_OUTPUTS = [None, "", "x", 3, True, ["x"], UNKNOWN_OUTPUT, type("S", (str,), {})("x")]


def _compiled_or_error(fn, inp: object, out: object) -> tuple:
    """(``"ok"``, what ``fn`` returns) or (``"error"``, its ValueError's message)."""
    try:
        return "ok", fn(inp, out)
    except ValueError as exc:
        return "error", str(exc)


def test_the_kv_compile_fast_path_agrees_with_the_checked_path_on_hostile_inputs():
    for inp in _HOSTILE_INPUTS:
        for out in _HOSTILE_OUTPUTS:
            assert _compiled_or_error(_kv_compile, inp, out) == _compiled_or_error(_kv_compile_checked, inp, out), \
                (inp, out)


def test_the_kv_compile_fast_path_agrees_with_the_checked_path_on_fuzzed_kv_logs():
    rng = random.Random("kv-compile-fuzz")
    seeds = [(HISTORY_FIXTURES / n).read_bytes() for n in ("kv-ok.txt", "kv-lost-append-illegal.txt")]
    compared = 0
    for _ in range(150):
        data = mutate(rng, rng.choice(seeds), is_json=False)
        try:
            history = parse_porcupine_kv(data.decode("utf-8", "replace"), lenient=True)
        except HistoryError:
            continue
        for op in history:
            out = UNKNOWN_OUTPUT if op.ret is None else op.output
            fast, checked = _compiled_or_error(_kv_compile, op.input, out), _compiled_or_error(_kv_compile_checked, op.input, out)
            assert fast == checked, op
            compared += 1
    assert compared > 100


def test_a_model_whose_read_only_fails_on_an_operation_is_a_model_error_naming_it():
    def read_only(inp: object, out: object) -> bool:
        if inp == "bad":
            raise KeyError("no such op")
        return False

    mdl = Model(name="picky", init=lambda: None, step=lambda s, i, o: (True, s), read_only=read_only)
    ops = [Operation(0, "fine", None, 0, 1), Operation(1, "bad", None, 0, 1)]
    with pytest.raises(ModelError, match=r"operation 1 \(client 1, input 'bad'\): KeyError"):
        check(History(ops), mdl)
