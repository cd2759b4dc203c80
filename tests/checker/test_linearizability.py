"""The WGL checker: agreement with a brute-force checker, evidence, partitions, pending
operations, timeouts and budgets, fixtures with known verdicts."""

from __future__ import annotations

import functools
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checker.history import UNKNOWN_OUTPUT, History, Operation, read_history
from checker.linearizability import ILLEGAL, OK, UNKNOWN, CheckResult, Verdict, check, explain, trace
from checker.models import MODELS, NondeterministicModel

FIXTURES = Path(__file__).parent / "fixtures"

# --------------------------------------------------------------------------------------------
# An independent brute-force checker: every order of the operations that respects real time,
# with each pending operation either placed somewhere after its call or left out. The
# sequential specs below are written from scratch over whole-history states (no partitions).


def _spec_register(state, inp, out, cas: bool):
    op = inp["op"]
    if op == "read":
        return [state] if out is UNKNOWN_OUTPUT or out == state else []
    if op == "write":
        return [inp["value"]]
    if not cas:
        return []
    held = state == inp["from"]
    if out is UNKNOWN_OUTPUT:
        return [inp["to"] if held else state]
    if held and out is True:
        return [inp["to"]]
    if not held and out is False:
        return [state]
    return []


def _spec_kv(state, inp, out):
    store = dict(state)
    current = store.get(inp["key"], "")
    if inp["op"] == "get":
        return [state] if out is UNKNOWN_OUTPUT or out == current else []
    store[inp["key"]] = inp["value"] if inp["op"] == "put" else current + inp["value"]
    return [tuple(sorted(store.items()))]


def _spec_serving(state, inp, out, epochs_seen):
    if inp["op"] == "infer":
        if out is UNKNOWN_OUTPUT:
            return [state]
        reported = set(out.get("epochs", [])) | ({out["epoch"]} if "epoch" in out else set())
        return [state] if reported == {state} else []
    if out is UNKNOWN_OUTPUT:  # any later epoch; only the next one and those observed can matter
        return sorted({state + 1} | {e for e in epochs_seen if e > state})
    return [out["epoch"]] if out["epoch"] > state else []


SPECS = {
    "register": (None, lambda s, i, o, _: _spec_register(s, i, o, cas=False)),
    "cas-register": (None, lambda s, i, o, _: _spec_register(s, i, o, cas=True)),
    "kv": ((), lambda s, i, o, _: _spec_kv(s, i, o)),
    "serving": (0, _spec_serving),
}


def brute_force(ops: list[Operation], model: str) -> bool:
    """True when some real-time-respecting order of all completed operations and any subset of
    pending ones is legal for the model: a DFS over orders, remembering only the (set of placed
    operations, state) pairs that failed."""
    init, spec = SPECS[model]
    n = len(ops)
    completed = [i for i in range(n) if ops[i].ret is not None]
    epochs = set()
    for o in ops:
        if model == "serving" and o.ret is not None and isinstance(o.output, dict):
            epochs |= set(o.output.get("epochs", [])) | ({o.output["epoch"]} if "epoch" in o.output else set())

    failed: set = set()

    def dfs(done: frozenset, state) -> bool:
        if all(i in done for i in completed):
            return True
        if (done, state) in failed:
            return False
        for j in range(n):
            if j in done:
                continue
            if any(i not in done and ops[i].ret < ops[j].call for i in completed):
                continue  # an operation that returned before j was called must come first
            out = UNKNOWN_OUTPUT if ops[j].ret is None else ops[j].output
            for nxt in spec(state, ops[j].input, out, epochs):
                if dfs(done | {j}, nxt):
                    return True
        failed.add((done, state))
        return False

    return dfs(frozenset(), init)


# --------------------------------------------------------------------------------------------
# Random small histories


@functools.cache
def _inputs(model: str):
    """(input, output) pairs for ``model`` (built once: strategy construction is costly)."""
    values = st.sampled_from([None, 1, 2])
    if model in ("register", "cas-register"):
        reads = st.tuples(st.just({"op": "read"}), values)
        writes = st.builds(lambda v: ({"op": "write", "value": v}, None), values)
        if model == "register":
            return st.one_of(reads, writes)
        cas = st.builds(lambda a, b, ok: ({"op": "cas", "from": a, "to": b}, ok), values, values, st.booleans())
        return st.one_of(reads, writes, cas)
    if model == "kv":
        keys = st.sampled_from(["a", "b"])
        strings = st.sampled_from(["", "x", "y", "xy", "yx"])
        gets = st.builds(lambda k, v: ({"op": "get", "key": k}, v), keys, strings)
        puts = st.builds(lambda k, v: ({"op": "put", "key": k, "value": v}, None), keys, st.sampled_from(["x", "y"]))
        apps = st.builds(lambda k, v: ({"op": "append", "key": k, "value": v}, None), keys, st.sampled_from(["x", "y"]))
        return st.one_of(gets, puts, apps)
    epochs = st.integers(0, 3)
    infers = st.builds(lambda e, b: ({"op": "infer", "batch": b, "size": 4}, {"epoch": e, "digest": "d"}),
                       epochs, st.integers(0, 9))
    split = st.builds(lambda a, b: ({"op": "infer", "batch": 0, "size": 4}, {"epochs": [a, b]}), epochs, epochs)
    reconfs = st.builds(lambda e: ({"op": "reconfigure", "plan": {}}, {"epoch": e}), epochs)
    return st.one_of(infers, infers, reconfs, split)


@st.composite
def small_histories(draw, model: str, max_ops: int = 7, inputs=None, clients: int = 3):
    """Up to ``max_ops`` operations from up to ``clients`` clients, on a small time line (many
    overlaps and equal times), the last operation of a client sometimes pending; the (input,
    output) pairs from ``inputs`` (a strategy; default: :func:`_inputs` of ``model``)."""
    ops = []
    for client in range(draw(st.integers(1, clients))):
        t = draw(st.integers(0, 4))
        for _ in range(draw(st.integers(0, 3))):
            if len(ops) >= max_ops:
                break
            inp, out = draw(_inputs(model) if inputs is None else inputs)
            call = t + draw(st.integers(0, 2))
            if draw(st.integers(0, 5)) == 0:
                ops.append(Operation(client, inp, out, call, None))
                break
            ret = call + draw(st.integers(0, 4))
            ops.append(Operation(client, inp, out, call, ret))
            t = ret + 1
    return ops


def _agree(ops, model):
    result = check(History(ops), model)
    assert result.result is not UNKNOWN
    expected = brute_force(ops, model)
    assert result.ok == expected, f"checker said {result.result}, brute force said {expected} for {ops}"
    if result.ok:
        _assert_valid_linearizations(History(ops), result, model)
    return expected


AGREEMENT = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("model", ["register", "cas-register", "kv", "serving"])  # kv: across partitions
@AGREEMENT
@given(data=st.data())
def test_the_checker_agrees_with_brute_force_on_random_histories_of_the_model(model, data):
    _agree(data.draw(small_histories(model), label="ops"), model)


def _random_input(rng: random.Random, model: str):
    v = rng.choice([None, 1, 2])
    if model in ("register", "cas-register"):
        kinds = ["read", "write"] + (["cas"] if model == "cas-register" else [])
        kind = rng.choice(kinds)
        if kind == "read":
            return {"op": "read"}, v
        if kind == "write":
            return {"op": "write", "value": v}, None
        return {"op": "cas", "from": v, "to": rng.choice([None, 1, 2])}, rng.choice([True, False])
    if model == "kv":
        key, kind = rng.choice("ab"), rng.choice(["get", "put", "append"])
        if kind == "get":
            return {"op": "get", "key": key}, rng.choice(["", "x", "y", "xy", "yx"])
        return {"op": kind, "key": key, "value": rng.choice("xy")}, None
    e = rng.randrange(4)
    kind = rng.choice(["infer", "infer", "reconfigure", "split"])
    if kind == "infer":
        return {"op": "infer", "batch": rng.randrange(9), "size": 4}, {"epoch": e, "digest": "d"}
    if kind == "split":
        return {"op": "infer", "batch": 0, "size": 4}, {"epochs": [e, rng.randrange(4)]}
    return {"op": "reconfigure", "plan": {}}, {"epoch": e}


def random_small_history(rng: random.Random, model: str, max_ops: int = 7) -> list[Operation]:
    """The same shape as ``small_histories``, from a seeded ``random.Random``."""
    ops = []
    for client in range(rng.randint(1, 3)):
        t = rng.randint(0, 4)
        for _ in range(rng.randint(0, 3)):
            if len(ops) >= max_ops:
                break
            inp, out = _random_input(rng, model)
            call = t + rng.randint(0, 2)
            if rng.randint(0, 5) == 0:
                ops.append(Operation(client, inp, out, call, None))
                break
            ret = call + rng.randint(0, 4)
            ops.append(Operation(client, inp, out, call, ret))
            t = ret + 1
    return ops


@pytest.mark.parametrize("model", ["register", "cas-register", "kv", "serving"])
def test_the_checker_agrees_with_brute_force_on_seeded_random_histories_with_both_verdicts(model):
    """Agreement with brute force on a thousand seeded random histories per model, where both
    verdicts are common (each at least a sixth of the outcomes), so agreement means something."""
    rng = random.Random(f"verdicts-{model}")
    outcomes = [_agree(random_small_history(rng, model), model) for _ in range(1000)]
    assert 1 / 6 <= sum(outcomes) / len(outcomes) <= 5 / 6


def _assert_valid_linearizations(history: History, result: CheckResult, model) -> None:
    """Every OK partition's linearization contains all its completed operations, respects real
    time, and replays legally."""
    for part in result.partitions:
        lin = part.linearization
        assert len(set(lin)) == len(lin)
        assert {i for i in part.operations if history[i].ret is not None} <= set(lin)
        pos = {i: k for k, i in enumerate(lin)}
        for a in lin:
            for b in lin:
                if history[a].ret is not None and history[a].ret < history[b].call:
                    assert pos[a] < pos[b]
        assert all(step.legal for step in trace(history, model, lin))


# --------------------------------------------------------------------------------------------
# Hand-made cases


def W(c, v, call, ret):
    return Operation(c, {"op": "write", "value": v}, None, call, ret)


def R(c, v, call, ret):
    return Operation(c, {"op": "read"}, v, call, ret)


def test_a_stale_read_after_a_write_is_illegal():
    h = History([W(0, 1, 0, 1), W(1, 2, 2, 3), R(2, 1, 4, 5)])
    result = check(h, "register")
    assert result.result is ILLEGAL
    (part,) = result.failures
    assert part.blocked == 2
    assert part.linearization == (0, 1)


def test_a_read_concurrent_with_a_write_may_see_either_value():
    assert check(History([W(0, 1, 0, 10), R(1, None, 2, 3)]), "register").ok
    assert check(History([W(0, 1, 0, 10), R(1, 1, 2, 3)]), "register").ok


def test_operations_that_touch_at_one_instant_are_concurrent():
    # Closed intervals: the write returns at 5 and the read is called at 5, so it may precede.
    assert check(History([W(0, 1, 0, 5), R(1, None, 5, 6)]), "register").ok
    assert not check(History([W(0, 1, 0, 5), R(1, None, 6, 7)]), "register").ok


def test_porcupines_register_examples():
    ok = History([W(0, 100, 0, 100), R(1, 100, 25, 75), R(2, None, 30, 60)])
    bad = History([W(0, 200, 0, 100), R(1, 200, 10, 30), R(2, None, 40, 90)])
    assert check(ok, "register").ok
    assert check(bad, "register").illegal


def test_zero_duration_operations_are_fine():
    h = History([W(0, 100, 0, 100), R(1, 100, 25, 75), R(2, None, 30, 30), R(3, None, 30, 30)])
    assert check(h, "register").ok


def test_a_pending_write_may_take_effect_late():
    h = History([W(0, 1, 0, 1), W(1, 2, 2, None), R(0, 1, 3, 4), R(0, 2, 5, 6), R(2, 2, 7, 8)])
    result = check(h, "register")
    assert result.ok
    assert result.partitions[0].linearization == (0, 2, 1, 3, 4)


def test_a_pending_write_may_never_take_effect():
    h = History([W(0, 1, 0, 1), W(1, 2, 2, None), R(0, 1, 3, 4)])
    result = check(h, "register")
    assert result.ok and 1 not in result.partitions[0].linearization


def test_a_pending_write_cannot_take_effect_before_it_was_called():
    h = History([W(0, 1, 0, 1), R(0, 2, 2, 3), W(1, 2, 4, None)])
    assert check(h, "register").illegal


def test_a_pending_write_takes_effect_at_most_once():
    h = History([W(1, 2, 0, None), W(0, 1, 1, 2), R(0, 2, 3, 4), W(0, 3, 5, 6), R(0, 2, 7, 8)])
    assert check(h, "register").illegal


def test_identical_pending_operations_can_both_take_effect():
    h = History([W(1, 2, 0, None), W(2, 2, 0, None), W(0, 1, 1, 2), R(0, 2, 3, 4), W(0, 3, 5, 6),
                 R(0, 2, 7, 8)])
    assert check(h, "register").ok


def test_a_history_of_only_pending_operations_is_linearizable():
    result = check(History([W(0, 1, 0, None), R(1, 5, 0, None)]), "register")
    assert result.ok and result.partitions[0].linearization == ()


def test_an_empty_history_is_linearizable():
    result = check(History([], model="kv"))
    assert result.ok and result.partitions == () and result.operations == 0


def test_the_model_defaults_to_the_one_the_history_names():
    assert check(History([R(0, None, 0, 1)], model="register")).ok


def test_a_list_of_operations_is_validated_into_a_history():
    assert check([R(0, None, 0, 1)], "register").ok


def test_checking_without_a_model_is_a_model_error():
    from checker.models import ModelError

    with pytest.raises(ModelError, match="names no model"):
        check(History([R(0, None, 0, 1)]))


def _one_stale_partition():
    return History([
        Operation(0, {"op": "put", "key": "a", "value": "x"}, None, 0, 1),
        Operation(0, {"op": "get", "key": "a"}, "", 2, 3),  # stale: illegal in partition a
        Operation(1, {"op": "put", "key": "b", "value": "y"}, None, 0, 1),
        Operation(1, {"op": "get", "key": "b"}, "y", 2, 3),
    ])


def test_the_first_illegal_partition_ends_the_check_and_the_rest_are_not_needed_never_ok():
    result = check(_one_stale_partition(), "kv")
    assert result.illegal
    assert result.first_failed.key == "a" and result.first_failed.blocked == 1
    by_key = {p.key: p for p in result.partitions}
    assert by_key["b"].outcome == "not needed" and by_key["b"].result is UNKNOWN
    assert result.counts == {"ok": 0, "illegal": 1, "unknown": 0, "not needed": 1}


def test_one_illegal_partition_makes_the_history_illegal_and_others_keep_their_evidence():
    result = check(_one_stale_partition(), "kv", all_partitions=True)
    assert result.illegal
    by_key = {p.key: p for p in result.partitions}
    assert by_key["a"].result is ILLEGAL and by_key["a"].blocked == 1
    assert by_key["b"].result is OK and by_key["b"].linearization == (2, 3)
    assert [p.key for p in result.failures] == ["a"]


def test_a_long_sequential_history_is_checked_without_recursion_limits():
    ops = []
    for k in range(20000):
        ops.append(W(0, k, 4 * k, 4 * k + 1))
        ops.append(R(1, k, 4 * k + 2, 4 * k + 3))
    assert check(History(ops), "register").ok


# --------------------------------------------------------------------------------------------
# Timeouts and budgets: never OK


def _hard_illegal_history(n=22):
    """n concurrent writes, then a read of a value nobody wrote: proving it illegal means trying
    every order of the writes (about n * 2**n configurations)."""
    ops = [W(c, c, 0, 100) for c in range(n)]
    ops.append(R(n, 999, 101, 102))
    return History(ops, model="register")


def test_a_timeout_gives_unknown_never_ok():
    result = check(_hard_illegal_history(), timeout=0.2)
    assert result.result is UNKNOWN
    assert "timed out after 0.2 s" in result.reason
    assert result.elapsed_s < 10


def test_a_step_budget_gives_unknown_even_for_a_linearizable_history():
    h = History([W(c, c, 0, 100) for c in range(6)] + [R(9, 5, 101, 102)])
    assert check(h, "register").ok
    result = check(h, "register", max_steps=3)
    assert result.result is UNKNOWN and "budget" in result.reason


def test_an_illegal_partition_found_before_the_timeout_stays_illegal():
    ops = [Operation(0, {"op": "put", "key": "a", "value": "x"}, None, 0, 1),
           Operation(0, {"op": "get", "key": "a"}, "", 2, 3)]
    ops += [Operation(10 + c, {"op": "put", "key": "b", "value": str(c)}, None, 0, 100) for c in range(22)]
    ops.append(Operation(99, {"op": "get", "key": "b"}, "none", 101, 102))
    result = check(History(ops), "kv", timeout=0.3)
    assert result.result is ILLEGAL
    assert [p.result for p in result.partitions] == [ILLEGAL, UNKNOWN]


def test_a_zero_timeout_is_unknown_for_any_nontrivial_history():
    assert check(History([W(0, 1, 0, 1)]), "register", timeout=0).result is UNKNOWN


# --------------------------------------------------------------------------------------------
# Evidence and explanations


def test_an_illegal_result_explains_the_operation_and_the_longest_prefix():
    h = History([W(0, 1, 0, 1), W(1, 2, 2, 3), R(2, 1, 4, 5)])
    result = check(h, "register")
    lines = explain(result, h)
    assert lines[0].startswith("ILLEGAL: the history is not linearizable (register, 3 operations, 1 partition")
    assert "operation 2 (client 2, read() -> 1, [4, 5]) cannot be linearized" in lines[1]
    assert "longest linearizable prefix: 2 of 3 operations, ending in state 2" in lines[2]
    assert any("write(2)  (1 -> 2)" in line for line in lines)


def test_an_ok_result_explains_itself_in_one_line():
    h = History([W(0, 1, 0, 1)])
    assert explain(check(h, "register"), h) == [explain(check(h, "register"), h)[0]]


def test_the_json_summary_names_the_result_operations_partitions_and_time():
    h = History([W(0, 1, 0, 1), R(1, 2, 2, 3)])
    obj = check(h, "register").to_json(h, "register")
    assert obj["result"] == "illegal" and obj["operations"] == 2 and obj["partitions"] == 1
    assert isinstance(obj["elapsed_s"], float)
    (detail,) = obj["details"]
    assert detail["blocked"] == 1 and detail["blocked_operation"] == "read() -> 2" and detail["state"] == "1"


def test_trace_replays_a_linearization_with_states_before_and_after():
    h = History([W(0, 1, 0, 1), R(1, 1, 2, 3), R(1, 5, 4, 5)])
    steps = trace(h, "register", [0, 1, 2])
    assert [(s.before, s.after, s.legal) for s in steps] == [("nil", "1", True), ("1", "1", True), ("1", "1", False)]


def test_verdicts_read_as_words():
    assert str(Verdict.OK) == "ok" and Verdict("illegal") is ILLEGAL


# --------------------------------------------------------------------------------------------
# Fixtures with known verdicts


def _expected(path: Path) -> Verdict:
    return OK if "-ok." in path.name else ILLEGAL


@pytest.mark.parametrize("path", sorted(p for p in FIXTURES.iterdir() if "-bad." not in p.name),
                         ids=lambda p: p.name)
def test_fixtures_have_their_known_verdicts(path):
    h = read_history(path)
    model = h.model or {".log": "cas-register", ".txt": "kv"}[path.suffix]
    result = check(h, model, timeout=30)
    assert result.result is _expected(path)
    if result.ok:
        _assert_valid_linearizations(h, result, model)


# --------------------------------------------------------------------------------------------
# A nondeterministic model against its own brute force


def _lossy():
    def step(state, inp, out):
        if inp["op"] == "write":
            return {state, inp["value"]}
        return {state} if out is UNKNOWN_OUTPUT or out == state else set()

    return NondeterministicModel("lossy", init=lambda: [None], step=step)


def _brute_lossy(ops):
    n = len(ops)
    completed = [i for i in range(n) if ops[i].ret is not None]

    failed = set()

    def dfs(done, state):
        if all(i in done for i in completed):
            return True
        if (done, state) in failed:
            return False
        for j in range(n):
            if j in done or any(i not in done and ops[i].ret < ops[j].call for i in completed):
                continue
            out = UNKNOWN_OUTPUT if ops[j].ret is None else ops[j].output
            for nxt in _lossy().step(state, ops[j].input, out):
                if dfs(done | {j}, nxt):
                    return True
        failed.add((done, state))
        return False

    return dfs(frozenset(), None)


@settings(max_examples=200, deadline=None)
@given(small_histories("register", max_ops=6))
def test_a_nondeterministic_model_agrees_with_brute_force(ops):
    assert check(History(ops), _lossy()).ok == _brute_lossy(ops)


def test_the_builtin_models_are_the_ones_checked_here():
    assert set(SPECS) == set(MODELS)
