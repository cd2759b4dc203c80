"""Deciding partitions concurrently: the interleaved and worker-process paths agree with brute
force, the first ILLEGAL partition ends the check, timeouts and the memory bound give UNKNOWN
(never OK) promptly, and no worker process outlives a check."""

from __future__ import annotations

import os
import random
import threading
import time

import pytest
from test_linearizability import brute_force, random_small_history

import checker.linearizability.api as check_api
from checker.history import History, Operation
from checker.linearizability import ILLEGAL, OK, UNKNOWN, check
from checker.linearizability.workers import deal


def _children() -> set[int]:
    """Pids of this process's live (not zombie) children."""
    me, out = os.getpid(), set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me and fields[0] != "Z" and not _is_stdlib_helper(name):
            out.add(int(name))
    return out


def _is_stdlib_helper(pid: str) -> bool:
    """multiprocessing's forkserver and resource tracker, started by earlier tests of the
    session (process pools), are long-lived helpers, not check workers."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return b"from multiprocessing." in fh.read()
    except OSError:
        return False


def _combined_kv_histories(seed: str, count: int):
    """``count`` random small kv histories, each in its own keys and clients, as one history;
    returns it and each sub-history's brute-force verdict (True: linearizable)."""
    rng = random.Random(seed)
    ops, expected = [], []
    for h in range(count):
        small = random_small_history(rng, "kv")
        expected.append(brute_force(small, "kv"))
        for op in small:
            inp = dict(op.input, key=f"{h}:{op.input['key']}")
            ops.append(Operation(h * 10 + op.client, inp, op.output, op.call, op.ret))
    return History(ops, model="kv"), expected


def _verdicts_by_history(result, count: int) -> list[bool]:
    legal = [True] * count
    for part in result.partitions:
        assert part.result is not UNKNOWN
        if part.result is ILLEGAL:
            legal[int(part.key.split(":")[0])] = False
    return legal


def test_the_interleaved_path_agrees_with_brute_force_partition_by_partition():
    history, expected = _combined_kv_histories("interleaved", 300)
    result = check(history, all_partitions=True)
    assert result.mode == "in-process"
    assert _verdicts_by_history(result, len(expected)) == expected
    assert 0 < sum(expected) < len(expected)  # both verdicts occur


def test_the_process_path_agrees_with_brute_force_partition_by_partition(monkeypatch):
    monkeypatch.setattr(check_api, "ESCALATE_AFTER_S", 0.0)  # hand every partition to the workers at once
    history, expected = _combined_kv_histories("processes", 300)
    result = check(history, jobs=2, all_partitions=True, timeout=120)
    assert result.mode == "processes" and result.jobs == 2
    assert _verdicts_by_history(result, len(expected)) == expected
    assert _children() == set()


def _hard_partition(key: str, client0: int, n: int = 22) -> list[Operation]:
    """n concurrent puts then a get of a value nobody put: about n * 2**n configurations."""
    ops = [Operation(client0 + c, {"op": "put", "key": key, "value": str(c)}, None, 0, 100) for c in range(n)]
    ops.append(Operation(client0 + 99, {"op": "get", "key": key}, "none", 101, 102))
    return ops


def _stale_partition(key: str, client: int) -> list[Operation]:
    return [Operation(client, {"op": "put", "key": key, "value": "x"}, None, 0, 1),
            Operation(client, {"op": "get", "key": key}, "", 2, 3)]


def test_an_easy_illegal_partition_after_a_hard_one_ends_the_check_and_the_hard_one_is_not_needed():
    history = History(_hard_partition("hard", 0) + _stale_partition("easy", 500))
    result = check(history, "kv", timeout=60)
    assert result.result is ILLEGAL
    assert result.first_failed.key == "easy"
    outcomes = {p.key: p.outcome for p in result.partitions}
    assert outcomes == {"hard": "not needed", "easy": "illegal"}
    assert result.to_json()["first_failure"] == "easy"


def test_the_first_illegal_partition_stops_every_worker(monkeypatch):
    monkeypatch.setattr(check_api, "ESCALATE_AFTER_S", 0.0)
    history = History(_hard_partition("h1", 0) + _hard_partition("h2", 200) + _stale_partition("easy", 500))
    result = check(history, "kv", jobs=2, timeout=60)
    assert result.result is ILLEGAL and result.mode == "processes"
    assert result.first_failed.key == "easy"
    assert {p.key: p.outcome for p in result.partitions}["h1"] in ("not needed", "illegal")
    assert _children() == set()


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_timeout_returns_unknown_promptly_in_both_paths(monkeypatch, jobs):
    monkeypatch.setattr(check_api, "ESCALATE_AFTER_S", 0.0)
    history = History(_hard_partition("h1", 0, 26) + _hard_partition("h2", 200, 26))
    t0 = time.monotonic()
    result = check(history, "kv", jobs=jobs, timeout=1.0)
    wall = time.monotonic() - t0
    assert result.result is UNKNOWN and "timed out after 1 s" in result.reason
    assert wall < 1.0 + 5  # generous: the machine may be loaded; the benchmark measures the overshoot
    assert all(p.outcome == "unknown" for p in result.partitions)
    assert _children() == set()


def test_the_memory_bound_gives_unknown_never_ok():
    history = History(_hard_partition("k", 0, 24))
    result = check(history, "kv", max_memory=1, timeout=60)
    assert result.result is UNKNOWN
    assert "memory bound of 1 B reached" in result.reason


def test_a_linearizable_history_within_the_memory_bound_is_still_ok():
    history = History(_stale_partition("a", 0)[:1])
    assert check(history, "kv", max_memory=1 << 30).result is OK


def test_cancelling_gives_unknown():
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    result = check(History(_hard_partition("k", 0, 26)), "kv", cancel=stop, timeout=60)
    assert result.result is UNKNOWN and result.reason == "cancelled"


@pytest.mark.parametrize("kwargs, fragment", [
    ({"timeout": float("nan")}, "timeout"),
    ({"timeout": float("inf")}, "timeout"),
    ({"timeout": -1}, "timeout"),
    ({"jobs": 0}, "jobs"),
    ({"jobs": -2}, "jobs"),
    ({"max_memory": 0}, "max_memory"),
    ({"max_memory": float("nan")}, "max_memory"),
])
def test_bad_limits_are_refused_naming_the_value(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        check(History(_stale_partition("a", 0)), "kv", **kwargs)


def test_partitions_are_dealt_largest_first_to_the_least_loaded_worker():
    assert deal([5, 1, 4, 2], 2) == [[0, 1], [2, 3]]  # loads 5+1 and 4+2
    assert deal([3], 3) == [[0], [], []]
