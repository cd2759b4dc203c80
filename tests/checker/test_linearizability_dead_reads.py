"""Dead reads (issue 32, item 4): the search leaves a configuration at once when the read whose
return comes first needs a value the model says cannot follow the current state without an
operation that resets, and none is left to run before that read (kv: appends only extend a value,
a put resets it). Sound: the same verdicts as the search without it, the same linearization on
linearizable histories, and agreement with brute force; fewer steps where appends race."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checker.history import UNKNOWN_OUTPUT, History, Operation, parse_porcupine_kv
from checker.linearizability import ILLEGAL, OK, check
from checker.models import get_model, kv_model
from tests.checker.test_linearizability import brute_force, small_histories

WITHOUT = replace(kv_model(), resets=None, reaches=None)


def _appends(rng: random.Random, keys: str = "a", clients: int = 5, ops: int = 40, corrupt: bool = False) -> History:
    """An append-heavy kv history from a linearizable store (each operation atomic at a random
    instant inside its interval), many appends racing; with ``corrupt``, one late get returns
    its value with two appended pieces swapped (or a piece too many)."""
    free = [rng.random() for _ in range(clients)]
    planned = []
    for k in range(ops):
        c = min(range(clients), key=free.__getitem__)
        call, dur = free[c], rng.expovariate(1.0) + 0.01
        free[c] = call + dur + rng.expovariate(2.0)
        kind = rng.choice(["get", "append", "append", "append", "put"] if rng.random() < 0.2 else
                          ["get", "append", "append"])
        planned.append((call + rng.random() * dur, call, call + dur, c, kind, rng.choice(keys), f"<{k}>"))
    planned.sort()
    store: dict[str, str] = {}
    history = []
    bad = max((k for k, row in enumerate(planned) if row[4] == "get"), default=-1) if corrupt else -1
    for k, (_, call, ret, c, kind, key, value) in enumerate(planned):
        if kind == "get":
            got = store.get(key, "")
            if k == bad:
                pieces = got.split("><")
                got = "<x>" + got if len(pieces) < 2 else "><".join(pieces[1:2] + pieces[:1] + pieces[2:])
            history.append(Operation(c, {"op": "get", "key": key}, got, call, ret))
        else:
            store[key] = value if kind == "put" else store.get(key, "") + value
            history.append(Operation(c, {"op": kind, "key": key, "value": value}, None, call, ret))
    return History(history)


def _evidence(result) -> list:
    return [(p.key, p.result, p.linearization, p.state) for p in result.partitions]


def _replays(ops, linearization) -> bool:
    """Whether the operations of ``linearization`` (history indices), in that order, are each
    legal in the kv model from the empty value."""
    mdl, state = get_model("kv"), ""
    for i in linearization:
        inp, out = mdl.compile(ops[i].input, UNKNOWN_OUTPUT if ops[i].ret is None else ops[i].output)
        legal, state = mdl.step(state, inp, out)
        if not legal:
            return False
    return True


@pytest.mark.parametrize("corrupt", [False, True])
def test_dropping_dead_reads_keeps_the_verdict_and_the_linearization_of_the_search_without_it(corrupt):
    rng = random.Random(f"dead-reads-{corrupt}")
    fewer = 0
    verdicts = set()
    for _ in range(300):
        h = _appends(rng, keys="ab", clients=rng.randint(2, 7), ops=rng.randint(5, 40), corrupt=corrupt)
        fast, slow = check(h, "kv", all_partitions=True), check(h, WITHOUT, all_partitions=True)
        assert fast.result is slow.result, h.operations
        verdicts.add(fast.result)
        assert fast.steps <= slow.steps
        fewer += fast.steps < slow.steps
        if fast.result is OK:
            assert _evidence(fast) == _evidence(slow)
        for p in fast.partitions:  # an ILLEGAL partition's longest prefix is still linearizable
            assert _replays(h.operations, p.linearization)
    assert fewer > 50 and (verdicts == {OK} if not corrupt else ILLEGAL in verdicts)


def test_racing_appends_take_far_fewer_steps_and_a_put_left_to_run_turns_the_rule_off():
    rng = random.Random("dead-reads-race")
    h = _appends(rng, keys="a", clients=12, ops=120)
    fast, slow = check(h, "kv"), check(h, WITHOUT)
    assert fast.result is slow.result is OK and fast.steps * 2 < slow.steps
    # a read of "x" after an append of "y": dead unless a put can still run first
    read_late = [Operation(0, {"op": "append", "key": "k", "value": "y"}, None, 0, 1),
                 Operation(1, {"op": "get", "key": "k"}, "x", 2, 3)]
    put_first = read_late + [Operation(2, {"op": "put", "key": "k", "value": "x"}, None, 0, 2.5)]
    assert check(History(read_late), "kv").result is ILLEGAL
    assert check(History(put_first), "kv").result is OK


def test_a_porcupine_format_log_of_racing_appends_gets_its_verdict_with_and_without_dead_reads():
    log = "\n".join(f"{{:process {c}, :type :invoke, :f :append, :key \"1\", :value \"x {c} 0 y\"}}" for c in range(4))
    log += "\n" + "\n".join(f"{{:process {c}, :type :ok, :f :append, :key \"1\", :value \"x {c} 0 y\"}}"
                            for c in range(4))
    log += "\n{:process 9, :type :invoke, :f :get, :key \"1\", :value nil}"
    order = "".join(f"x {c} 0 y" for c in (2, 0, 3, 1))
    ok = parse_porcupine_kv(log + f'\n{{:process 9, :type :ok, :f :get, :key "1", :value "{order}"}}\n')
    bad = parse_porcupine_kv(log + '\n{:process 9, :type :ok, :f :get, :key "1", :value "x 2 0 yx 2 0 y"}\n')
    for h, verdict in ((ok, OK), (bad, ILLEGAL)):
        assert check(h, "kv").result is check(h, WITHOUT).result is verdict


def _append_heavy_ops():
    """(input, output) pairs of one key, appends twice as likely as gets or puts."""
    keys = st.just("a")
    gets = st.builds(lambda v: ({"op": "get", "key": "a"}, v), st.sampled_from(["", "x", "y", "xy", "yx", "xx", "xyx"]))
    apps = st.builds(lambda v: ({"op": "append", "key": "a", "value": v}, None), st.sampled_from(["x", "y"]))
    puts = st.builds(lambda k, v: ({"op": "put", "key": k, "value": v}, None), keys, st.sampled_from(["x", "xy"]))
    return st.one_of(gets, apps, apps, puts)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=small_histories("kv", max_ops=9, inputs=_append_heavy_ops(), clients=4))
def test_append_heavy_histories_get_the_verdict_of_brute_force(ops):
    assert check(History(ops), "kv").ok == brute_force(ops, "kv"), ops
