"""Deciding a history's partitions in worker processes (the ``jobs > 1`` path of ``check()``).

:func:`checker.linearizability.check` first interleaves every partition's search in its own
process; when partitions are still undecided after ``ESCALATE_AFTER_S`` seconds and ``jobs > 1``,
it deals them into ``jobs`` shares (:func:`deal`), keeps the first (with its progress) and hands the
others to :func:`decide_in_processes`. Why this shape (measured on a 2-CPU VM, see
``benchmarks/check_parallel.py``): starting a worker costs 0.1-0.3 s (a fresh interpreter
importing the checker; about 1 s on a loaded machine), while most histories, even the
10k-operation partitioned kv benchmark, are decided in-process in 0.1-0.4 s. Processes only pay
off for partitions that take longer than their start-up, so only those are shared out.

Workers are started by the one process spawner, :func:`packrat_sim.engines.spawn.spawn_worker`
(also used by ``packrat check DIR`` to check whole files in workers), and run
:func:`worker_main`.

Workers are spawned: each is a fresh ``python`` interpreter started with :mod:`subprocess` (no
``fork`` of a process that may hold threads, such as the dashboard), talking to the parent over
two pipes with :class:`multiprocessing.connection.Connection`. ``multiprocessing``'s own
``spawn`` method is not used because it re-runs the caller's ``__main__`` module in every worker
(the ``packrat`` script's imports, or a user's script without a ``__main__`` guard, which then
fails); a worker needs only the checker. Workers receive their partitions compiled (the model
is resolved by name in the worker, so only the built-in models go to workers), and run the same
interleaved search over their share (partitions are dealt largest first to the least loaded
worker). Each decided partition is reported at once over a pipe. The parent stops every worker
(``terminate``, then ``kill``) as soon as one partition is ILLEGAL (unless ``all_partitions``), at
the deadline (workers stop themselves at it and report their evidence; the parent waits at most
``GRACE_S`` more), on cancellation, and when it is interrupted (Ctrl-C): no worker outlives the
call. Workers run in their own session and ignore SIGINT (the parent handles it and stops them), and
exit by themselves if the parent dies.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection, wait
from typing import Any, cast

from checker.linearizability.partition import Interleaver, Outcome, StepFailed, Task
from checker.linearizability.result import Verdict
from checker.models import get_model
from packrat_sim.engines.spawn import ParentGone, spawn_worker, stop_workers

__all__ = ["GRACE_S", "POLL_S", "WORKER_TARGET", "deal", "decide_in_processes", "worker_main"]

#: Seconds the parent waits past the deadline for workers to report their evidence.
GRACE_S = 0.3
#: Seconds between the parent's checks of cancellation while it waits for workers.
POLL_S = 0.05
#: The worker's entry point, as :func:`~packrat_sim.engines.spawn.spawn_worker` names it.
WORKER_TARGET = "checker.linearizability.workers:worker_main"

#: Why a check stopped, most telling first, when several workers stopped for different reasons.
_REASONS = ("memory", "deadline", "cancelled", "worker failed")


def deal(sizes: Sequence[int], workers: int) -> list[list[int]]:
    """Deal items (by index) to ``workers`` bins, largest first to the least loaded bin (LPT).

    Pure; returns ``workers`` lists of indices (some empty when there are fewer items)."""
    bins: list[list[int]] = [[] for _ in range(workers)]
    load = [0] * workers
    for i in sorted(range(len(sizes)), key=lambda i: (-sizes[i], i)):
        b = min(range(workers), key=lambda k: (load[k], k))
        bins[b].append(i)
        load[b] += sizes[i] + 1
    return bins


def worker_main(inbox: Connection, conn: Connection) -> None:
    """Worker process: receive (model name, items, seconds to the deadline, memory bound, parent
    pid) and decide ``items`` ``[(task_id, Task)]`` (partitions already compiled by the parent:
    one pickle keeps shared values, such as the models' frozen-value tags, identical).

    Sends ``("part", task_id, result, linearization, blocked, state, steps, elapsed_s)`` for each
    partition when it is decided (and for the undecided ones at the end), then ``("end", reason)``;
    or ``("error", message)`` when the model fails on an operation."""
    import gc

    gc.disable()  # as in check(): no cycles, and no full collections over a large cache
    start = time.perf_counter()
    model_name, items, deadline_in_s, max_memory, parent_pid = inbox.recv()
    inbox.close()
    mdl = get_model(model_name)
    tasks = [task for _, task in items]
    outcomes = [Outcome() for _ in tasks]

    def send(k: int) -> None:
        o = outcomes[k]
        assert o.result is not None
        try:
            conn.send(("part", items[k][0], o.result.value, o.linearization, o.blocked, o.state, o.steps,
                       o.elapsed_s))
        except Exception:  # an unpicklable state: the evidence stays, the state is left out
            conn.send(("part", items[k][0], o.result.value, o.linearization, o.blocked, None, o.steps, o.elapsed_s))

    deadline = None if deadline_in_s is None else start + deadline_in_s
    inter = Interleaver(tasks, outcomes, mdl, start=start, deadline=deadline, max_steps=None,
                        max_memory=max_memory, all_partitions=True, cancel=ParentGone(parent_pid),
                        on_decided=send)
    try:
        reason = inter.run()
    except StepFailed as exc:
        conn.send(("error", f"model {mdl.name!r} failed on an operation: {exc.error}"))
        return
    for k, o in enumerate(outcomes):
        if o.result is Verdict.UNKNOWN:
            send(k)
    conn.send(("end", reason))
    conn.close()


def _start_workers(model_name: str, bins: Sequence[Sequence[tuple[int, Task]]], deadline: float | None,
                   share: float | None, procs: list[subprocess.Popen],
                   readers: dict[Connection, subprocess.Popen]) -> None:
    """Start one worker per bin (see :func:`worker_main` for what it receives), adding each to
    ``procs`` and its reader to ``readers`` as soon as it runs (so the caller can stop it)."""
    for b in bins:
        remaining = None if deadline is None else max(0.0, deadline - time.perf_counter())
        proc, reader, _ = spawn_worker(WORKER_TARGET, (model_name, list(b), remaining, share, os.getpid()))
        procs.append(proc)
        readers[reader] = proc


def _receive(reader: Connection, readers: dict[Connection, subprocess.Popen], outcomes: list[Outcome],
             reasons: list[str], start: float) -> Outcome | None:
    """Read one message of a worker: fill the outcome it reports (and return it), or note why the
    worker ended (in ``reasons``, dropping it from ``readers``) and return None."""
    try:
        msg = reader.recv()
    except (EOFError, OSError):
        readers.pop(reader)
        reasons.append("worker failed")
        return None
    if msg[0] == "part":
        _, tid, res, lin, blocked, state, steps, elapsed = msg
        o = outcomes[tid]
        o.result, o.linearization, o.blocked, o.state = Verdict(res), tuple(lin), blocked, state
        o.steps, o.elapsed_s = steps, o.elapsed_s + elapsed
        if o.result is not Verdict.UNKNOWN:
            o.finished_s = time.perf_counter() - start
        return o
    readers.pop(reader)
    if msg[0] != "end":
        reasons.append("worker failed")
    elif msg[1] != "done":
        reasons.append(msg[1])
    return None


def _run_local(local: Interleaver, reasons: list[str]) -> str:
    """Give this process's own share one poll interval; returns the interleaver's stop reason
    (noting in ``reasons`` why it ended, when that is neither done, paused nor ILLEGAL)."""
    why = local.run(until=time.perf_counter() + POLL_S / 2)
    if why not in ("illegal", "paused", "done"):
        reasons.append(why)
    return why


def decide_in_processes(
    model_name: str,
    bins: Sequence[Sequence[tuple[int, Task]]],
    outcomes: list[Outcome],
    *,
    local: Interleaver | None,
    start: float,
    deadline: float | None,
    max_memory: float | None,
    all_partitions: bool,
    cancel: Any = None,
) -> str:
    """Decide the partitions of ``bins`` (one worker each; items ``(task index, task)``) in worker
    processes, while ``local`` (this process's interleaver, or None) goes
    on with its own partitions between polls of the workers.

    Fills ``outcomes[task index]`` (``finished_s`` measured from ``start``, this process's
    ``perf_counter``; ``deadline`` on the same clock). ``max_memory`` (bytes) is shared equally
    between the workers and ``local``. Returns why it stopped: ``"done"``, ``"illegal"`` (the first
    ILLEGAL, when not ``all_partitions``), ``"deadline"``, ``"memory"``, ``"cancelled"`` or
    ``"worker failed"``. Every worker has exited when it returns or raises.
    """
    bins = [b for b in bins if b]
    share = None if max_memory is None else max_memory / (len(bins) + (local is not None))
    if local is not None:
        local.max_memory = share
    procs: list[subprocess.Popen] = []
    readers: dict[Connection, subprocess.Popen] = {}
    reasons: list[str] = []
    local_busy = local is not None and bool(local.active)
    try:
        _start_workers(model_name, bins, deadline, share, procs, readers)
        while readers or local_busy:
            if cancel is not None and cancel.is_set():
                if local is not None:
                    local.stop()
                return "cancelled"
            now = time.perf_counter()
            if deadline is not None and now >= deadline + GRACE_S:
                return "deadline"
            wait_s = POLL_S if deadline is None else min(POLL_S, max(0.0, deadline + GRACE_S - now))
            if local_busy:
                assert local is not None
                why = _run_local(local, reasons)
                if why == "illegal":
                    return "illegal"
                local_busy = why == "paused"
                wait_s = 0.0
            for ready in wait(list(readers), timeout=wait_s) if readers else ():
                o = _receive(cast(Connection, ready), readers, outcomes, reasons, start)
                if o is not None and o.result is Verdict.ILLEGAL and not all_partitions:
                    if local is not None:
                        local.drop()
                    return "illegal"
        return next((why for why in _REASONS if why in reasons), "done")
    finally:
        stop_workers(procs)
        for r in readers:
            r.close()
