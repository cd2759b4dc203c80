"""The checker's quick path for small histories and the search's per-kind event lists: the same
verdicts and evidence as the general path (issue 32, item 4)."""

from __future__ import annotations

import random
import threading

import pytest

from checker.history import History, Operation
from checker.linearizability import ILLEGAL, OK, UNKNOWN, check
from checker.linearizability import api
from checker.linearizability.result import CheckResult
from checker.models import Model, ModelError, register_model
from tests.checker.history_helpers import random_history


def _input(rng: random.Random, model: str) -> tuple[dict, object]:
    """A random (input, output) of ``model`` over a few values, so both verdicts are common."""
    v = rng.choice([None, 1, 2])
    if model in ("register", "cas-register"):
        kind = rng.choice(["read", "write"] + (["cas"] if model == "cas-register" else []))
        if kind == "read":
            return {"op": "read"}, v
        if kind == "write":
            return {"op": "write", "value": v}, None
        return {"op": "cas", "from": v, "to": rng.choice([None, 1, 2])}, rng.choice([True, False])
    if model == "kv":
        key, kind = rng.choice("abc"), rng.choice(["get", "get", "put", "append"])
        if kind == "get":
            return {"op": "get", "key": key}, rng.choice(["", "x", "y", "xy", "yx"])
        return {"op": kind, "key": key, "value": rng.choice("xy")}, None
    e = rng.randrange(3)
    if rng.random() < 0.7:
        return {"op": "infer", "batch": rng.randrange(9), "size": 4}, {"epoch": e, "digest": "d"}
    return {"op": "reconfigure", "plan": {}}, {"epoch": e}


def _history(rng: random.Random, model: str, max_ops: int) -> History:
    """Up to ``max_ops`` operations of ``model`` from up to 5 clients on a short time line (many
    overlaps and equal times); a client's last operation is sometimes pending."""
    return random_history(rng, lambda: _input(rng, model), clients=5, first_call=4, max_ops=max_ops, go_on=0.8,
                          pending_one_in=7, longest=4)


def _evidence(result: CheckResult) -> tuple:
    """Everything a result says apart from its times."""
    return (result.result, result.operations, result.steps, result.first_failure, result.reason,
            [(p.key, p.result, p.operations, p.linearization, p.blocked, p.state, p.steps, p.needed)
             for p in result.partitions])


def _general(history: History, model, monkeypatch: pytest.MonkeyPatch, **kw) -> CheckResult:
    """``check`` with the quick path switched off."""
    with monkeypatch.context() as m:
        m.setattr(api, "QUICK_MAX_OPS", -1)
        return check(history, model, **kw)


@pytest.mark.parametrize("model", ["register", "cas-register", "kv", "serving"])
def test_the_quick_path_gives_the_general_paths_verdict_and_evidence_on_seeded_random_histories(model, monkeypatch):
    rng = random.Random(f"quick-{model}")
    verdicts = set()
    for _ in range(300):
        h = _history(rng, model, max_ops=rng.choice([4, 10, 32]))
        quick = check(h, model)
        assert _evidence(quick) == _evidence(_general(h, model, monkeypatch)), h.operations
        verdicts.add(quick.result)
    assert verdicts == {OK, ILLEGAL}


@pytest.mark.parametrize("all_partitions", [False, True])
def test_the_quick_path_keeps_the_first_illegal_partition_rule(all_partitions, monkeypatch):
    rng = random.Random("quick-partitions")
    for _ in range(200):
        h = _history(rng, "kv", max_ops=24)
        quick = check(h, "kv", all_partitions=all_partitions)
        assert _evidence(quick) == _evidence(_general(h, "kv", monkeypatch, all_partitions=all_partitions))


def test_a_search_longer_than_one_slice_falls_back_to_the_general_path_with_the_same_evidence(monkeypatch):
    rng = random.Random("quick-fallback")
    with monkeypatch.context() as m:
        m.setattr(api, "SLICE", 2)  # nearly every search needs more than one slice of the quick path
        for _ in range(100):
            h = _history(rng, "register", max_ops=12)
            assert _evidence(check(h, "register")) == _evidence(_general(h, "register", monkeypatch))


def _writes_then_a_bad_read(n: int) -> History:
    """n concurrent writes, then a read of a value nobody wrote: illegal, after about n * 2**n steps."""
    ops = [Operation(c, {"op": "write", "value": c}, None, 0, 100) for c in range(n)]
    return History(ops + [Operation(n, {"op": "read"}, 999, 101, 102)], model="register")


def test_a_small_history_too_hard_for_the_quick_path_is_still_decided():
    assert check(_writes_then_a_bad_read(10)).result is ILLEGAL


def test_a_small_history_still_times_out_as_unknown_never_ok():
    result = check(_writes_then_a_bad_read(22), timeout=0.2)
    assert result.result is UNKNOWN and "timed out" in result.reason


def test_a_zero_timeout_on_a_tiny_history_is_unknown():
    h = History([Operation(0, {"op": "write", "value": 1}, None, 0, 1)])
    assert check(h, "register", timeout=0).result is UNKNOWN


def test_a_cancelled_check_of_a_tiny_history_is_unknown():
    done = threading.Event()
    done.set()
    h = History([Operation(0, {"op": "write", "value": 1}, None, 0, 1)])
    result = check(h, "register", cancel=done)
    assert result.result is UNKNOWN and result.reason == "cancelled"


class _CancelledOnQuery:
    """A cancel object that becomes set on its ``n``-th ``is_set()`` query."""

    def __init__(self, n: int) -> None:
        self.left = n

    def is_set(self) -> bool:
        self.left -= 1
        return self.left <= 0


def test_an_illegal_partition_found_before_a_cancel_stays_illegal_and_the_rest_keep_their_evidence():
    ops = [Operation(0, {"op": "put", "key": "a", "value": "x"}, None, 0, 1),
           Operation(0, {"op": "get", "key": "a"}, "", 2, 3),
           Operation(1, {"op": "put", "key": "b", "value": "y"}, None, 0, 1),
           Operation(1, {"op": "get", "key": "b"}, "y", 2, 3)]
    # The quick path asks before each slice: start a, start b, search a (ILLEGAL), then cancelled.
    result = check(History(ops), "kv", all_partitions=True, cancel=_CancelledOnQuery(4))
    assert result.result is ILLEGAL
    assert [p.result for p in result.partitions] == [ILLEGAL, UNKNOWN]
    assert result.partitions[1].needed and result.partitions[1].operations == (2, 3)


def test_a_cancel_between_partitions_of_a_tiny_history_leaves_the_decided_ones_decided():
    ops = [Operation(0, {"op": "get", "key": "a"}, "", 0, 1), Operation(1, {"op": "get", "key": "b"}, "", 0, 1)]
    result = check(History(ops), "kv", cancel=_CancelledOnQuery(4))
    assert result.result is UNKNOWN and result.reason == "cancelled"
    assert [p.result for p in result.partitions] == [OK, UNKNOWN]


def test_a_step_budget_on_a_tiny_history_still_counts():
    h = History([Operation(c, {"op": "write", "value": c}, None, 0, 9) for c in range(3)])
    assert check(h, "register", max_steps=1).result is UNKNOWN
    assert check(h, "register").ok


def test_a_model_failing_on_an_operation_of_a_tiny_history_is_a_model_error_naming_it():
    def step(state, inp, out):
        raise ValueError("no such thing")

    broken = Model(name="broken", init=lambda: None, step=step)
    with pytest.raises(ModelError, match=r"operation 0 .*no such thing"):
        check(History([Operation(0, "x", None, 0, 1)]), broken)


def test_greedy_reads_in_a_row_are_linearized_without_losing_a_later_candidate():
    """Reads linearized one after another (each leaves the state as it was) let later calls
    become candidates: the read of 2 needs the write of 2 that is called after the first read
    returns."""
    ops = [Operation(0, {"op": "write", "value": 1}, None, 0, 1),
           Operation(1, {"op": "read"}, 1, 2, 3),
           Operation(2, {"op": "read"}, 1, 2, 5),
           Operation(0, {"op": "write", "value": 2}, None, 4, 6),
           Operation(1, {"op": "read"}, 2, 4, 7)]
    result = check(History(ops), register_model())
    assert result.ok and result.partitions[0].linearization == (0, 1, 2, 3, 4)
