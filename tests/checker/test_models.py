"""Sequential models: register, cas-register, kv, serving, and nondeterministic models."""

from __future__ import annotations

import pytest

from checker.history import UNKNOWN_OUTPUT, History, Operation
from checker.linearizability import ILLEGAL, OK, check
from checker.models import (
    MODELS,
    Model,
    ModelError,
    NondeterministicModel,
    freeze,
    get_model,
    serving_model,
)


def run(model, inp, out, state=None):
    """Compile and apply one operation to ``state`` (default: the model's initial state)."""
    mdl = get_model(model)
    cin, cout = mdl.compile(inp, out)
    return mdl.step(mdl.init() if state is None else state, cin, cout)


def op(client, inp, out, call, ret):
    return Operation(client, inp, out, call, ret)


# --------------------------------------------------------------------------------------------
# register / cas-register


def test_a_register_starts_at_nil():
    assert run("register", {"op": "read"}, None) == (True, None)
    assert run("register", {"op": "read"}, 0)[0] is False


def test_a_write_sets_the_register_and_a_read_must_return_it():
    legal, state = run("register", {"op": "write", "value": 7}, None)
    assert legal and run("register", {"op": "read"}, 7, state)[0]
    assert not run("register", {"op": "read"}, 8, state)[0]


def test_a_read_with_an_unknown_output_is_legal_in_every_state():
    assert run("register", {"op": "read"}, UNKNOWN_OUTPUT, freeze(5)) == (True, 5)


def test_true_is_not_the_same_register_value_as_one():
    _, state = run("register", {"op": "write", "value": 1}, None)
    assert not run("register", {"op": "read"}, True, state)[0]


def test_structured_register_values_compare_by_value():
    _, state = run("register", {"op": "write", "value": {"a": [1, 2]}}, None)
    assert run("register", {"op": "read"}, {"a": [1, 2]}, state)[0]
    assert not run("register", {"op": "read"}, {"a": [2, 1]}, state)[0]


def test_a_cas_succeeds_exactly_when_the_register_holds_from():
    _, state = run("cas-register", {"op": "write", "value": 1}, None)
    assert run("cas-register", {"op": "cas", "from": 1, "to": 2}, True, state) == (True, 2)
    assert run("cas-register", {"op": "cas", "from": 1, "to": 2}, False, state)[0] is False
    assert run("cas-register", {"op": "cas", "from": 3, "to": 2}, False, state) == (True, 1)
    assert run("cas-register", {"op": "cas", "from": 3, "to": 2}, True, state)[0] is False


def test_a_cas_with_an_unknown_outcome_takes_effect_if_it_can():
    _, state = run("cas-register", {"op": "write", "value": 1}, None)
    assert run("cas-register", {"op": "cas", "from": 1, "to": 2}, UNKNOWN_OUTPUT, state) == (True, 2)
    assert run("cas-register", {"op": "cas", "from": 5, "to": 2}, UNKNOWN_OUTPUT, state) == (True, 1)


def test_the_plain_register_has_no_cas_and_says_which_model_does():
    with pytest.raises(ValueError, match="no operation 'cas'.*cas-register"):
        run("register", {"op": "cas", "from": 1, "to": 2}, True)


@pytest.mark.parametrize(
    "inp, out, message",
    [
        ({"op": "write"}, None, 'has no "value"'),
        ({"op": "cas", "from": 1}, True, 'needs "from" and "to"'),
        ({"op": "cas", "from": 1, "to": 2}, "yes", "returns true or false"),
        ("read", None, 'expected an object with "op"'),
        ({"op": "delete"}, None, "no operation 'delete'"),
    ],
)
def test_malformed_register_operations_are_rejected(inp, out, message):
    with pytest.raises(ValueError, match=message):
        run("cas-register", inp, out)


def test_a_history_that_does_not_fit_its_model_is_a_model_error_naming_the_operation():
    h = History([op(0, {"op": "write", "value": 1}, None, 0, 1), op(3, {"op": "incr"}, None, 2, 3)])
    with pytest.raises(ModelError, match="operation 1 \\(client 3.*no operation 'incr'"):
        check(h, "register")


# --------------------------------------------------------------------------------------------
# kv


def test_kv_get_put_append_follow_porcupines_semantics():
    assert run("kv", {"op": "get", "key": "k"}, "") == (True, "")
    assert run("kv", {"op": "get", "key": "k"}, None) == (True, "")  # null reads as ""
    assert run("kv", {"op": "put", "key": "k", "value": "x"}, None, "old") == (True, "x")
    assert run("kv", {"op": "append", "key": "k", "value": "y"}, None, "x") == (True, "xy")
    assert not run("kv", {"op": "get", "key": "k"}, "x", "xy")[0]


def test_kv_is_partitioned_by_key():
    kv = MODELS["kv"]
    assert kv.partition({"op": "get", "key": "a"}) == "a"
    h = History([
        op(0, {"op": "put", "key": "a", "value": "1"}, None, 0, 1),
        op(1, {"op": "put", "key": "b", "value": "2"}, None, 0, 1),
        op(0, {"op": "get", "key": "b"}, "2", 2, 3),
    ])
    result = check(h, "kv")
    assert result.result is OK
    assert {p.key: p.operations for p in result.partitions} == {"a": (0,), "b": (1, 2)}


@pytest.mark.parametrize(
    "inp, out, message",
    [
        ({"op": "get"}, "", 'has no "key"'),
        ({"op": "put", "key": "a", "value": 3}, None, 'needs a string "value"'),
        ({"op": "get", "key": "a"}, 5, "returns a string"),
        ({"op": "get", "key": ["a"]}, "", "cannot be a partition key"),
    ],
)
def test_malformed_kv_operations_are_rejected(inp, out, message):
    with pytest.raises(ValueError, match=message):
        run("kv", inp, out)


# --------------------------------------------------------------------------------------------
# serving (DESIGN.md's reconfiguration spec)

CTL = "controller"


def reconfigure(epoch, call, ret, client=CTL):
    return op(client, {"op": "reconfigure", "plan": {"batch": 8}}, None if epoch is None else {"epoch": epoch}, call, ret)


def infer(client, batch, epoch, call, ret, **extra):
    out = None if epoch is None else {"epoch": epoch, "digest": f"d{batch}", **extra}
    return op(client, {"op": "infer", "batch": batch, "size": 8}, out, call, ret)


def verdict(*ops):
    return check(History(ops), "serving").result


def test_a_reconfigure_moves_the_epoch_and_later_batches_see_it():
    assert verdict(infer(0, 1, 0, 0, 1), reconfigure(1, 2, 3), infer(0, 2, 1, 4, 5),
                   reconfigure(2, 6, 7), infer(1, 3, 2, 8, 9)) is OK


def test_a_stale_epoch_after_a_reconfigure_returned_is_illegal():
    assert verdict(reconfigure(1, 0, 10), infer(0, 1, 0, 11, 20)) is ILLEGAL


def test_a_batch_concurrent_with_a_reconfigure_may_run_in_either_epoch():
    assert verdict(reconfigure(1, 0, 10), infer(0, 1, 0, 5, 15)) is OK
    assert verdict(reconfigure(1, 0, 10), infer(0, 1, 1, 5, 15)) is OK


def test_a_batch_cannot_see_an_epoch_before_its_reconfigure_started():
    assert verdict(infer(0, 1, 1, 0, 5), reconfigure(1, 6, 10)) is ILLEGAL


def test_a_batch_reporting_two_epochs_is_illegal():
    bad = op(0, {"op": "infer", "batch": 1, "size": 8}, {"epochs": [0, 1], "digest": "x"}, 5, 25)
    assert verdict(reconfigure(1, 0, 30), bad) is ILLEGAL


def test_a_batch_whose_sub_batches_agree_on_one_epoch_is_fine():
    good = op(0, {"op": "infer", "batch": 1, "size": 8}, {"epochs": [1, 1, 1], "digest": "x"}, 31, 40)
    assert verdict(reconfigure(1, 0, 30), good) is OK


def test_a_reconfigure_must_move_the_epoch_forward():
    assert verdict(reconfigure(1, 0, 1), reconfigure(1, 2, 3)) is ILLEGAL
    assert verdict(reconfigure(0, 0, 1)) is ILLEGAL


def test_a_reconfigure_may_skip_epochs():
    assert verdict(reconfigure(3, 0, 1), infer(0, 1, 3, 2, 3)) is OK


def test_a_pending_reconfigure_may_or_may_not_have_moved_the_epoch():
    assert verdict(reconfigure(None, 0, None), infer(0, 1, 0, 5, 6)) is OK
    assert verdict(reconfigure(None, 0, None), infer(0, 1, 1, 5, 6)) is OK
    assert verdict(reconfigure(None, 0, None), infer(0, 1, 4, 5, 6)) is OK  # epochs may skip
    # Once a batch has seen the new epoch, later batches cannot go back.
    assert verdict(reconfigure(None, 0, None), infer(0, 1, 1, 5, 6), infer(0, 2, 0, 7, 8)) is ILLEGAL


def test_after_a_pending_reconfigure_a_completed_one_needs_a_higher_epoch_than_any_seen():
    assert verdict(reconfigure(None, 0, None, client="c1"), infer(0, 1, 2, 5, 6), reconfigure(2, 7, 8)) is ILLEGAL
    assert verdict(reconfigure(None, 0, None, client="c1"), infer(0, 1, 2, 5, 6), reconfigure(3, 7, 8)) is OK


def test_the_serving_model_can_start_at_another_epoch():
    h = History([infer(0, 1, 5, 0, 1)])
    assert check(h, serving_model(initial_epoch=5)).result is OK
    assert check(h, "serving").result is ILLEGAL


@pytest.mark.parametrize(
    "inp, out, message",
    [
        ({"op": "infer", "batch": 1}, {"digest": "x"}, 'returns {"epoch": e'),
        ({"op": "infer", "batch": 1}, {"epochs": []}, "non-empty list"),
        ({"op": "infer", "batch": 1}, {"epoch": "1"}, "integer epoch"),
        ({"op": "reconfigure", "plan": {}}, {"epochs": [1]}, 'returns {"epoch": e}'),
        ({"op": "train"}, None, "no operation 'train'"),
    ],
)
def test_malformed_serving_operations_are_rejected(inp, out, message):
    with pytest.raises(ValueError, match=message):
        run("serving", inp, out)


def test_serving_operations_and_states_read_well():
    serving = MODELS["serving"]
    assert serving.describe_operation({"op": "infer", "batch": 4, "size": 8}, {"epoch": 2}) == \
        "infer(batch 4, size 8) -> epoch 2"
    assert serving.describe_operation({"op": "infer", "batch": 4, "size": 8}, {"epochs": [1, 2]}) == \
        "infer(batch 4, size 8) -> epochs 1, 2"
    assert serving.describe_operation({"op": "reconfigure", "plan": {}}, {"epoch": 3}) == "reconfigure() -> epoch 3"
    assert serving.describe_state((2, True)) == "epoch 2"
    assert "pending reconfigure" in serving.describe_state((3, False))


# --------------------------------------------------------------------------------------------
# Descriptions, model lookup, nondeterminism


def test_register_and_kv_operations_read_well():
    reg, kv = MODELS["cas-register"], MODELS["kv"]
    assert reg.describe_operation({"op": "read"}, None) == "read() -> nil"
    assert reg.describe_operation({"op": "read"}, UNKNOWN_OUTPUT) == "read() -> ?"
    assert reg.describe_operation({"op": "write", "value": 3}, None) == "write(3)"
    assert reg.describe_operation({"op": "cas", "from": 1, "to": 2}, False) == "cas(1, 2) -> fail"
    assert reg.describe_state(freeze(None)) == "nil"
    assert kv.describe_operation({"op": "get", "key": "a"}, "xy") == "get('a') -> 'xy'"
    assert kv.describe_operation({"op": "append", "key": "a", "value": "y"}, None) == "append('a', 'y')"


def test_an_unknown_model_name_is_a_model_error():
    with pytest.raises(ModelError, match="unknown model 'queue'"):
        get_model("queue")


def test_the_builtin_models_are_register_cas_register_kv_and_serving():
    assert set(MODELS) == {"register", "cas-register", "kv", "serving"}
    assert all(isinstance(m, Model) for m in MODELS.values())


def test_freeze_makes_json_values_hashable_and_keeps_types_apart():
    assert freeze([1, {"a": None}]) == freeze([1, {"a": None}])
    assert hash(freeze({"a": [1]}))
    assert freeze(True) != freeze(1)
    assert freeze([1]) != freeze({1: None})
    with pytest.raises(ValueError, match="unhashable"):
        freeze({1, 2})


def _lossy_register() -> NondeterministicModel:
    """A register whose writes may be lost: a write leaves either the new or the old value."""

    def step(state, inp, out):
        if inp["op"] == "write":
            return {state, inp["value"]}
        return {state} if out is UNKNOWN_OUTPUT or out == state else set()

    return NondeterministicModel(name="lossy-register", init=lambda: [None], step=step)


def test_a_nondeterministic_model_is_checked_over_sets_of_states():
    lossy = _lossy_register()
    lost = History([op(0, {"op": "write", "value": 1}, None, 0, 1), op(1, {"op": "read"}, None, 2, 3)])
    assert check(lost, lossy).result is OK
    assert check(lost, "register").result is ILLEGAL
    impossible = History([op(0, {"op": "write", "value": 1}, None, 0, 1), op(1, {"op": "read"}, 2, 2, 3)])
    assert check(impossible, lossy).result is ILLEGAL


def test_a_nondeterministic_model_becomes_a_deterministic_one_over_frozensets():
    model = _lossy_register().to_model()
    assert model.init() == frozenset({None})
    assert model.step(frozenset({None}), {"op": "write", "value": 1}, None) == (True, frozenset({None, 1}))
    assert model.step(frozenset({None, 1}), {"op": "read"}, 1) == (True, frozenset({1}))
    assert model.step(frozenset({None}), {"op": "read"}, 1) == (False, frozenset())
    assert model.describe_state(frozenset({None, 1})) == "{1, None}"


def test_a_model_that_fails_on_an_operation_is_a_model_error_naming_it():
    def step(state, inp, out):
        return True, state["missing"]  # TypeError: None is not subscriptable

    broken = Model(name="broken", init=lambda: None, step=step)
    with pytest.raises(ModelError, match="operation 0 \\(client 0.*model 'broken' failed on it"):
        check(History([op(0, {"op": "x"}, None, 0, 1)]), broken)
