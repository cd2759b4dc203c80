"""The local engine: a pool of worker processes on this machine (the default of ``packrat sweep``).

Workers are :mod:`multiprocessing` processes started through :mod:`packrat_sim.engines.spawn`
(forked from a forkserver that preloaded :data:`PRELOAD`, so a fresh worker is ready in
milliseconds), under its parent-death rule. Failure semantics: see
:mod:`packrat_sim.engines.base`.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from packrat_sim import validate
from packrat_sim.engines.base import EngineError, Outcome, available_cpus, call_task, check_retries, describe_exception
from packrat_sim.engines.spawn import process_context, start_process, watch_parent

__all__ = ["PRELOAD", "LocalEngine"]

#: Modules a local worker imports before its first task (forkserver preload), so a fresh
#: worker is ready in milliseconds instead of re-importing numpy, simpy and this engine.
PRELOAD = ("numpy", "simpy", "packrat_sim.simulator", "packrat_sim.engines.local")

# (task index, attempt number): attempt 1 is the first start of the task
_Job = tuple[int, int]


def _worker_main(conn: Connection) -> None:
    """Loop of a local worker process: receive ``(index, fn, task)``, send back
    ``(index, ok, value_or_error)``; ``None`` (or the pipe closing) ends the loop. SIGINT is
    left to the parent, which stops the workers itself; the worker ends quietly when the
    process that created it (the engine's owner, not the forkserver) is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watch_parent()
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        index, fn, task = msg
        reply = (index, *call_task(fn, task))
        try:
            conn.send(reply)
        except (BrokenPipeError, EOFError, ConnectionResetError):  # the parent is gone
            return
        except Exception as exc:  # the value itself could not be pickled
            conn.send((index, False, f"cannot send the result back: {describe_exception(exc)}"))


class _Worker:
    __slots__ = ("conn", "jobs", "process")

    def __init__(self, process: BaseProcess, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        # (task index, attempt) sent to it, in order: the first is running, the rest wait
        # in its pipe (so it never idles waiting for the parent)
        self.jobs: collections.deque[_Job] = collections.deque()


def _outcome(index: int, ok: bool, payload: Any, attempt: int) -> Outcome:
    """The outcome of a reply: ``payload`` is the value when ``ok``, else the error. Pure."""
    return Outcome(index, True, payload, "", attempt) if ok else Outcome(index, False, None, payload, attempt)


def _positive(what: str, value: object) -> int:
    """``value`` when it is an integer >= 1; EngineError naming it otherwise. Pure."""
    return validate.positive_int(value, what, error=EngineError)


class LocalEngine:
    """A pool of ``workers`` processes on this machine (default: the CPUs this process may use).

    Workers start on the first ``map`` and are reused by later ones; ``close()`` (or leaving
    the ``with`` block) stops them. Each worker runs one task at a time and has up to
    ``prefetch - 1`` more waiting in its pipe (so it does not idle between tasks); when a
    worker dies, the task it was running counts an attempt (retried, see
    :mod:`packrat_sim.engines.base`) and the ones waiting behind it are re-queued as they were.
    ``start_method``: a :mod:`multiprocessing` start method (default: forkserver, else spawn).
    """

    name = "local"

    def __init__(self, workers: int | None = None, *, start_method: str | None = None, prefetch: int = 2):
        self.workers = _positive("workers", available_cpus() if workers is None else workers)
        self.prefetch = _positive("prefetch", prefetch)
        try:
            self._ctx = process_context(start_method, PRELOAD)
        except ValueError as exc:
            raise EngineError(str(exc)) from None
        self._pool: list[_Worker] = []
        self._closed = False

    # ---- workers
    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe(duplex=True)
        process = start_process(self._ctx, _worker_main, (child,), name="packrat-worker", daemon=True)
        child.close()
        return _Worker(process, parent)

    def _ensure_pool(self, n: int) -> None:
        self._pool = [w for w in self._pool if w.process.is_alive()]
        while len(self._pool) < n:
            self._pool.append(self._spawn())

    def _retire(self, worker: _Worker) -> None:
        with contextlib.suppress(OSError):  # pragma: no cover
            worker.conn.close()
        worker.process.join(timeout=1.0)
        if worker.process.is_alive():  # pragma: no cover - a stuck worker
            worker.process.kill()
            worker.process.join(timeout=1.0)
        if worker in self._pool:
            self._pool.remove(worker)

    # ---- the engine interface
    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any], retries: int = 1) -> Iterator[Outcome]:
        """Yield an :class:`Outcome` per task as tasks finish (completion order).

        Stopping the iteration early (or an exception in the consumer, Ctrl-C included)
        stops the workers that still hold tasks; the engine can be used again afterwards.
        """
        return self._run(fn, list(tasks), retries, growing=False)

    def feed(self, fn: Callable[[Any], Any], tasks: list[Any], retries: int = 1) -> Iterator[Outcome]:
        """:meth:`map` over a list the consumer may append to while it iterates (for work that
        brings more work): a task appended before the consumer asks for the next outcome is
        sent as soon as a worker has room, without waiting for the others to finish; the
        iteration ends when every task, appended ones included, has its outcome."""
        return self._run(fn, tasks, retries, growing=True)

    def _run(self, fn: Callable[[Any], Any], tasks: list[Any], retries: int, growing: bool) -> Iterator[Outcome]:
        if self._closed:
            raise EngineError("this engine is closed")
        retries = check_retries(retries)
        if not tasks:
            return
        self._ensure_pool(self.workers if growing else min(self.workers, len(tasks)))
        pending: collections.deque[_Job] = collections.deque((i, 1) for i in range(len(tasks)))
        remaining = known = len(tasks)
        finished = False
        try:
            while remaining:
                for outcome in itertools.chain(self._feed(fn, tasks, pending), self._await_replies(retries, pending)):
                    remaining -= 1
                    yield outcome
                    if len(tasks) > known:  # (only a growing list grows)
                        pending.extend((i, 1) for i in range(known, len(tasks)))
                        remaining, known = remaining + len(tasks) - known, len(tasks)
            finished = True
        finally:
            if not finished:
                for w in [w for w in self._pool if w.jobs]:
                    w.process.kill()
                    self._retire(w)

    def _feed(self, fn: Callable[[Any], Any], tasks: list[Any], pending: collections.deque[_Job]) -> Iterator[Outcome]:
        """Send ``pending`` jobs to the workers, first one per worker, then up to ``prefetch``
        each. Yields the failed outcome of a task (or ``fn``) that cannot be pickled."""
        for depth in range(1, self.prefetch + 1):
            for w in list(self._pool):
                if len(w.jobs) < depth and pending:
                    job = pending.popleft()
                    try:
                        w.conn.send((job[0], fn, tasks[job[0]]))
                    except (BrokenPipeError, EOFError, OSError):
                        pending.appendleft(job)  # its death is handled through its sentinel
                        continue
                    except Exception as exc:  # the task (or fn) cannot be pickled: its result
                        yield Outcome(job[0], False, None, f"cannot send the task: {describe_exception(exc)}", job[1])
                        continue
                    w.jobs.append(job)

    def _await_replies(self, retries: int, pending: collections.deque[_Job]) -> Iterator[Outcome]:
        """Wait until a busy worker replies or dies; yield the outcomes that brings."""
        busy = [w for w in self._pool if w.jobs]
        if not busy:  # pragma: no cover - every worker retired at once
            self._ensure_pool(min(self.workers, len(pending)))
            return
        handles: dict[Any, _Worker] = {}
        for w in busy:
            handles[w.conn] = w
            handles[w.process.sentinel] = w
        for ready in wait(list(handles)):
            w = handles[ready]
            if w not in self._pool:  # already retired through its other handle
                continue
            yield from self._collect(w, retries, pending)

    def _collect(self, w: _Worker, retries: int, pending: collections.deque[_Job]) -> list[Outcome]:
        """Outcomes of the replies ``w`` has sent; if it died, the outcome of the job it was
        running (none when that job was re-queued for another attempt)."""
        out: list[Outcome] = []
        try:
            while w.jobs and w.conn.poll():
                _, ok, payload = w.conn.recv()
                index, attempt = w.jobs.popleft()
                out.append(_outcome(index, ok, payload, attempt))
        except (EOFError, OSError):
            pass
        if w.process.is_alive():
            return out
        # the worker died: the first job was running, the others had not started
        w.process.join(timeout=5.0)
        code = w.process.exitcode
        jobs = list(w.jobs)
        w.jobs.clear()
        self._retire(w)
        if not jobs:
            return out
        (index, attempt), waiting = jobs[0], jobs[1:]
        pending.extendleft(reversed(waiting))
        if attempt <= retries:
            pending.append((index, attempt + 1))
        else:
            how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            out.append(Outcome(index, False, None, f"worker died ({how}) on each of {attempt} attempt(s)", attempt))
        if pending:
            self._pool.append(self._spawn())
        return out

    def close(self) -> None:
        """Stop every worker (politely, then by force after a second). Idempotent."""
        self._closed = True
        for w in list(self._pool):
            with contextlib.suppress(BrokenPipeError, EOFError, OSError):
                w.conn.send(None)
        deadline = time.monotonic() + 1.0
        for w in list(self._pool):
            w.process.join(timeout=max(0.0, deadline - time.monotonic()))
            if w.process.is_alive():
                w.process.kill()
            self._retire(w)
        self._pool = []

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort at interpreter exit
        if not getattr(self, "_closed", True) and sys is not None:
            with contextlib.suppress(Exception):
                self.close()
