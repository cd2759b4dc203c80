"""Engines: run many independent, picklable tasks and hand back their outcomes as they finish.

An engine is a small object with one method that matters::

    engine.map(fn, tasks, retries=1) -> iterator of Outcome   (in completion order)

``fn`` must be a module-level function (pickled by reference) and every task picklable;
``fn(task)`` runs once per task in some worker. Each outcome says which task it belongs to
(``index`` into ``tasks``), whether it succeeded (``ok``), its value or a one-line error,
and how many attempts it took.

Failure semantics (shared by every engine, the Ray one in ``packrat_sim/engines/ray.py`` included):

* ``fn`` raising an exception is a **result**, not a crash: the outcome has ``ok=False``
  and ``error="ExceptionType: message"``. It is not retried (the tasks this toolkit sends
  are deterministic: a second try would fail the same way).
* A **worker that dies** while holding a task (killed, segfault, ``os._exit``, out of
  memory) loses only that task: it is retried ``retries`` times (default once) on a fresh
  worker, then reported with ``ok=False`` and an error naming the exit code. Every other
  task still runs.

Engines here: :class:`SerialEngine` (in this process, one task after the other; the
reference) and :class:`LocalEngine` (a pool of worker processes on this machine, the
default of ``packrat sweep``). Nothing in this module imports ray.

Engines hold workers between calls of ``map``; use them as context managers (or call
``close()``), which stops every worker process they started.
"""

from __future__ import annotations

import collections
import contextlib
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any

#: Modules a local worker imports before its first task (forkserver preload), so a fresh
#: worker is ready in milliseconds instead of re-importing numpy and simpy.
PRELOAD = ("numpy", "simpy", "packrat_sim.simulator")


class EngineError(RuntimeError):
    """An engine cannot be created or used as asked (bad worker count, closed engine)."""


@dataclass(frozen=True)
class Outcome:
    """What became of task ``index``: ``value`` if ``ok``, else a one-line ``error``.

    ``attempts``: how many times the task was started (> 1 only after a worker died).
    """

    index: int
    ok: bool
    value: Any = None
    error: str = ""
    attempts: int = 1


def describe_exception(exc: BaseException) -> str:
    """``"Type: message"`` on one line (the form every engine reports task errors in)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def call_task(fn: Callable[[Any], Any], task: Any) -> tuple[bool, Any]:
    """``(True, fn(task))``, or ``(False, "Type: message")`` when it raises: a task's error
    is its result (every engine runs its tasks through this)."""
    try:
        return True, fn(task)
    except Exception as exc:
        return False, describe_exception(exc)


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


def _check_retries(retries: object) -> int:
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise EngineError(f"retries must be an integer >= 0, got {retries!r}")
    return retries


class SerialEngine:
    """Runs every task in this process, in order. Same outcomes as the other engines
    (a task cannot 'die' here: an exception is a failed outcome). For tests and tiny runs."""

    name = "serial"
    workers = 1

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any], retries: int = 1) -> Iterator[Outcome]:
        """Yield the outcome of ``fn(task)`` for each task, in order."""
        _check_retries(retries)
        for i, task in enumerate(tasks):
            ok, payload = call_task(fn, task)
            yield Outcome(i, True, payload, "", 1) if ok else Outcome(i, False, None, payload, 1)

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> SerialEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _worker_main(conn) -> None:
    """Loop of a local worker process: receive ``(index, fn, task)``, send back
    ``(index, ok, value_or_error)``; ``None`` ends the loop. SIGINT is left to the parent,
    which stops the workers itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
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
        except Exception as exc:  # the value itself could not be pickled
            conn.send((index, False, f"cannot send the result back: {describe_exception(exc)}"))


class _Worker:
    __slots__ = ("conn", "jobs", "process")

    def __init__(self, process, conn):
        self.process = process
        self.conn = conn
        # (task index, attempt) sent to it, in order: the first is running, the rest wait
        # in its pipe (so it never idles waiting for the parent)
        self.jobs: collections.deque[tuple[int, int]] = collections.deque()


@contextlib.contextmanager
def _main_without_fake_path():
    """While starting a worker, hide ``__main__.__file__`` when it names no file (``python -``
    reads ``<stdin>``; an embedded interpreter): multiprocessing would make the worker re-run
    that path and it would die before its first task. Workers never need the caller's main."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path is None or getattr(main, "__spec__", None) is not None or os.path.isfile(path):
        yield
        return
    del main.__file__
    try:
        yield
    finally:
        main.__file__ = path


def _default_context():
    """forkserver (workers forked from a clean, single-threaded server that preloaded
    :data:`PRELOAD`) where the platform has it, else spawn. Never plain fork: the caller
    may be a multi-threaded program (the dashboard)."""
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(list(PRELOAD))
        return ctx
    return multiprocessing.get_context("spawn")


class LocalEngine:
    """A pool of ``workers`` processes on this machine (default: the CPUs this process may use).

    Workers start on the first ``map`` and are reused by later ones; ``close()`` (or leaving
    the ``with`` block) stops them. Each worker runs one task at a time and has up to
    ``prefetch - 1`` more waiting in its pipe (so it does not idle between tasks); when a
    worker dies, the task it was running counts an attempt (retried, see the module
    docstring) and the ones waiting behind it are re-queued as they were.
    """

    name = "local"

    def __init__(self, workers: int | None = None, *, start_method: str | None = None, prefetch: int = 2):
        if workers is None:
            workers = available_cpus()
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise EngineError(f"workers must be a positive integer, got {workers!r}")
        self.workers = workers
        if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 1:
            raise EngineError(f"prefetch must be a positive integer, got {prefetch!r}")
        self.prefetch = prefetch
        if start_method is None:
            self._ctx = _default_context()
        else:
            if start_method not in multiprocessing.get_all_start_methods():
                raise EngineError(
                    f"start method {start_method!r} is not available here; "
                    f"choose one of {', '.join(multiprocessing.get_all_start_methods())}"
                )
            self._ctx = multiprocessing.get_context(start_method)
        self._pool: list[_Worker] = []
        self._closed = False

    # ---- workers
    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(target=_worker_main, args=(child,), daemon=True, name="packrat-worker")
        with _main_without_fake_path():
            process.start()
        child.close()
        return _Worker(process, parent)

    def _ensure_pool(self, n: int) -> None:
        self._pool = [w for w in self._pool if w.process.is_alive()]
        while len(self._pool) < n:
            self._pool.append(self._spawn())

    def _retire(self, worker: _Worker) -> None:
        try:
            worker.conn.close()
        except OSError:  # pragma: no cover
            pass
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
        if self._closed:
            raise EngineError("this engine is closed")
        retries = _check_retries(retries)
        tasks = list(tasks)
        if not tasks:
            return
        self._ensure_pool(min(self.workers, len(tasks)))
        pending: collections.deque[tuple[int, int]] = collections.deque((i, 1) for i in range(len(tasks)))
        remaining = len(tasks)
        finished = False
        try:
            while remaining:
                for depth in range(1, self.prefetch + 1):  # first one task per worker, then more
                    for w in list(self._pool):
                        if len(w.jobs) < depth and pending:
                            job = pending.popleft()
                            try:
                                w.conn.send((job[0], fn, tasks[job[0]]))
                            except (BrokenPipeError, EOFError, OSError):
                                pending.appendleft(job)  # its death is handled through its sentinel
                                continue
                            except Exception as exc:  # the task (or fn) cannot be pickled: its result
                                remaining -= 1
                                yield Outcome(job[0], False, None, f"cannot send the task: {describe_exception(exc)}",
                                              job[1])
                                continue
                            w.jobs.append(job)
                busy = [w for w in self._pool if w.jobs]
                if not busy:  # pragma: no cover - every worker retired at once
                    self._ensure_pool(min(self.workers, len(pending)))
                    continue
                handles = {}
                for w in busy:
                    handles[w.conn] = w
                    handles[w.process.sentinel] = w
                for ready in wait(list(handles)):
                    w = handles[ready]
                    if w not in self._pool:  # already retired through its other handle
                        continue
                    for outcome in self._collect(w, retries, pending):
                        remaining -= 1
                        yield outcome
            finished = True
        finally:
            if not finished:
                for w in [w for w in self._pool if w.jobs]:
                    w.process.kill()
                    self._retire(w)

    def _collect(self, w: _Worker, retries: int, pending) -> list[Outcome]:
        """Outcomes of the replies ``w`` has sent; if it died, the outcome of the job it was
        running (none when that job was re-queued for another attempt)."""
        out: list[Outcome] = []
        try:
            while w.jobs and w.conn.poll():
                _, ok, payload = w.conn.recv()
                index, attempt = w.jobs.popleft()
                out.append(Outcome(index, True, payload, "", attempt) if ok else Outcome(index, False, None, payload, attempt))
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
            try:
                w.conn.send(None)
            except (BrokenPipeError, EOFError, OSError):
                pass
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
            try:
                self.close()
            except Exception:
                pass


ENGINES = ("local", "serial")


def make_engine(name: str, workers: int | None = None) -> SerialEngine | LocalEngine:
    """``"local"`` (process pool of ``workers``) or ``"serial"`` (this process).
    The Ray engine lives in ``packrat_sim/engines/ray.py`` (the only module that imports ray)."""
    if name == "local":
        return LocalEngine(workers)
    if name == "serial":
        return SerialEngine()
    raise EngineError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)} (or ray, from the CLI)")
