"""Engines: outcomes per task, task errors as results, a dead worker's task retried once."""

from __future__ import annotations

import os

import pytest

from packrat_sim.engines import EngineError, LocalEngine, Outcome, SerialEngine, make_engine


def square(x):
    return x * x


def fail_on_three(x):
    if x == 3:
        raise ValueError(f"three is bad: {x}")
    return x


def die_once(arg):
    """Kill the worker on the first attempt at this task (a marker file remembers), then succeed."""
    marker, value = arg
    if marker is not None and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(9)
    return value


def always_die(x):
    if x == "die":
        os._exit(7)
    return x


def by_index(outcomes):
    return sorted(outcomes, key=lambda o: o.index)


@pytest.fixture(scope="module")
def pool():
    with LocalEngine(2) as engine:
        yield engine


def test_local_engine_returns_one_outcome_per_task_with_the_right_values(pool):
    outcomes = by_index(pool.map(square, list(range(25))))
    assert [o.index for o in outcomes] == list(range(25))
    assert all(o.ok and o.attempts == 1 for o in outcomes)
    assert [o.value for o in outcomes] == [x * x for x in range(25)]


def test_a_task_that_raises_is_a_failed_outcome_and_the_others_still_finish(pool):
    outcomes = by_index(pool.map(fail_on_three, list(range(6))))
    bad = outcomes[3]
    assert not bad.ok and bad.error == "ValueError: three is bad: 3" and bad.attempts == 1
    assert [o.value for o in outcomes if o.ok] == [0, 1, 2, 4, 5]


def test_a_worker_that_dies_once_has_its_task_retried_on_a_fresh_worker(pool, tmp_path):
    tasks = [(None, 0), (str(tmp_path / "marker"), 1), (None, 2), (None, 3)]
    outcomes = by_index(pool.map(die_once, tasks))
    assert [o.value for o in outcomes] == [0, 1, 2, 3]
    assert outcomes[1].ok and outcomes[1].attempts == 2
    assert all(o.attempts == 1 for i, o in enumerate(outcomes) if i != 1)


def test_a_task_whose_worker_always_dies_is_reported_failed_after_one_retry(pool):
    outcomes = by_index(pool.map(always_die, ["a", "die", "b", "c"]))
    dead = outcomes[1]
    assert not dead.ok and dead.attempts == 2 and "worker died (exit code 7)" in dead.error
    assert [o.value for o in outcomes if o.ok] == ["a", "b", "c"]


def test_with_no_retries_a_dead_worker_fails_its_task_at_once(pool):
    outcomes = by_index(pool.map(always_die, ["die", "x"], retries=0))
    assert outcomes[0].attempts == 1 and not outcomes[0].ok and outcomes[1].value == "x"


def test_the_engine_is_reusable_after_the_consumer_stops_early(pool):
    it = pool.map(square, list(range(50)))
    next(it)
    it.close()
    assert sorted(o.value for o in pool.map(square, [1, 2, 3])) == [1, 4, 9]


def test_serial_and_local_engines_give_the_same_outcomes(pool):
    tasks = list(range(10))
    serial = by_index(SerialEngine().map(fail_on_three, tasks))
    local = by_index(pool.map(fail_on_three, tasks))
    assert serial == local


def test_close_stops_every_worker_process():
    engine = LocalEngine(2)
    assert sorted(o.value for o in engine.map(square, [1, 2, 3, 4])) == [1, 4, 9, 16]
    processes = [w.process for w in engine._pool]
    assert processes and all(p.is_alive() for p in processes)
    engine.close()
    assert not any(p.is_alive() for p in processes)
    with pytest.raises(EngineError, match="closed"):
        list(engine.map(square, [1]))


def test_bad_worker_counts_and_engine_names_are_rejected_by_value():
    with pytest.raises(EngineError, match="got 0"):
        LocalEngine(0)
    with pytest.raises(EngineError, match="'warp'"):
        make_engine("warp")
    with pytest.raises(EngineError, match="retries"):
        list(SerialEngine().map(square, [1], retries=-1))


def test_an_empty_task_list_gives_no_outcomes_and_starts_no_worker():
    engine = LocalEngine(2)
    assert list(engine.map(square, [])) == []
    assert engine._pool == []
    engine.close()


def test_outcome_is_a_value():
    assert Outcome(1, True, 4) == Outcome(1, True, 4, "", 1)


def test_tasks_waiting_behind_a_dead_workers_task_are_requeued_without_losing_an_attempt():
    with LocalEngine(1, prefetch=3) as engine:
        outcomes = by_index(engine.map(always_die, ["a", "die", "b", "c"]))
    assert [(o.value, o.attempts) for o in outcomes if o.ok] == [("a", 1), ("b", 1), ("c", 1)]
    assert not outcomes[1].ok and outcomes[1].attempts == 2


def test_only_ui_ray_engine_imports_ray():
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    importers = []
    for package in ("packrat_sim", "checker", "real_runner", "ui"):
        for path in (root / package).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                    [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
                if any(n == "ray" or n.startswith("ray.") for n in names):
                    importers.append(path.relative_to(root).as_posix())
    assert sorted(set(importers)) == ["packrat_sim/engines/ray.py"]


def test_a_script_read_from_stdin_can_use_the_local_engine():
    import subprocess
    import sys

    script = ("from packrat_sim.engines import LocalEngine\n"
              "with LocalEngine(2) as e:\n"
              "    print(sorted(o.value for o in e.map(abs, [-1, -2, -3])))\n")
    done = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[1, 2, 3]", done.stderr[-2000:]


def test_a_task_that_cannot_be_pickled_is_a_failed_outcome(pool):
    import threading

    outcomes = by_index(pool.map(square, [2, threading.Lock(), 3]))
    assert [o.value for o in outcomes if o.ok] == [4, 9]
    assert not outcomes[1].ok and "cannot send the task" in outcomes[1].error


def sleep_then(arg):
    """Sleep ``arg[0]`` seconds, then return ``arg[1]``."""
    import time

    time.sleep(arg[0])
    return arg[1]


@pytest.mark.parametrize("engine", ["serial", "local"])
def test_feed_runs_the_tasks_the_consumer_appends_while_it_iterates(pool, engine):
    eng = SerialEngine() if engine == "serial" else pool
    tasks = [1, 2]
    seen = []
    for outcome in eng.feed(square, tasks):
        seen.append((outcome.index, outcome.value))
        if outcome.value < 1000:
            tasks.append(outcome.value + 1)  # even after the last outcome so far: it still runs
    assert sorted(v for _, v in seen) == sorted(x * x for x in tasks)
    assert all(tasks[i] ** 2 == v for i, v in seen) and len(tasks) > 4


def test_a_task_fed_to_the_local_engine_starts_without_waiting_for_the_slow_ones(pool):
    tasks = [(1.5, "slow"), (0.0, "quick")]
    order = []
    for outcome in pool.feed(sleep_then, tasks):
        order.append(outcome.value)
        if outcome.value == "quick":
            tasks.append((0.0, "fed"))  # a worker is free: it runs now, not after "slow"
    assert order == ["quick", "fed", "slow"]


def test_feeding_an_empty_list_gives_no_outcomes(pool):
    assert list(pool.feed(square, [])) == [] and list(SerialEngine().feed(square, [])) == []
