"""What every engine shares: the :class:`Engine` interface, :class:`Outcome`, and task calling.

An engine runs many independent, picklable tasks and hands back their outcomes as they finish::

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

Engines hold workers between calls of ``map``; use them as context managers (or call
``close()``), which stops every worker process they started. Everything here is pure
except :func:`available_cpus` (reads this process's CPU affinity).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from packrat_sim import validate
from packrat_sim.errors import PackratError

__all__ = ["Engine", "EngineError", "Outcome", "available_cpus", "call_task", "check_retries", "describe_exception"]


class EngineError(PackratError, RuntimeError):
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


class Engine(Protocol):
    """The interface of every engine (serial, local process pool, Ray).

    ``name``: the engine's name (``"serial"``, ``"local"``, ``"ray"``); ``workers``: how many
    tasks it runs at once. ``map`` yields one :class:`Outcome` per task in completion order
    with the failure semantics of the module docstring; ``close`` stops every worker the
    engine started (idempotent); the engine is its own context manager.
    """

    name: str
    workers: int

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any], retries: int = 1) -> Iterator[Outcome]:
        """One outcome per task of ``tasks``, as they finish."""
        ...

    def close(self) -> None:
        """Stop every worker this engine started."""
        ...

    def __enter__(self) -> Engine:
        ...

    def __exit__(self, *exc: object) -> None:
        ...


def describe_exception(exc: BaseException) -> str:
    """``"Type: message"`` on one line (the form every engine reports task errors in). Pure."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def call_task(fn: Callable[[Any], Any], task: Any) -> tuple[bool, Any]:
    """``(True, fn(task))``, or ``(False, "Type: message")`` when it raises: a task's error
    is its result (every engine runs its tasks through this)."""
    try:
        return True, fn(task)
    except Exception as exc:
        return False, describe_exception(exc)


def check_retries(retries: object) -> int:
    """``retries`` itself when it is an integer >= 0 (how many times a task whose worker died
    is started again); EngineError naming the value otherwise. Pure."""
    return validate.nonnegative_int(retries, "retries", error=EngineError)


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)
