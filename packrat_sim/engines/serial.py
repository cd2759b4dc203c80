"""The serial engine: every task in this process, one after the other (the reference engine)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from packrat_sim.engines.base import Outcome, call_task, check_retries

__all__ = ["SerialEngine"]


class SerialEngine:
    """Runs every task in this process, in order. Same outcomes as the other engines
    (a task cannot 'die' here: an exception is a failed outcome). For tests and tiny runs."""

    name = "serial"
    workers = 1

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any], retries: int = 1) -> Iterator[Outcome]:
        """Yield the outcome of ``fn(task)`` for each task, in order (``retries`` is checked,
        and has nothing to do here)."""
        check_retries(retries)
        for i, task in enumerate(tasks):
            ok, payload = call_task(fn, task)
            yield Outcome(i, True, payload, "", 1) if ok else Outcome(i, False, None, payload, 1)

    def feed(self, fn: Callable[[Any], Any], tasks: list[Any], retries: int = 1) -> Iterator[Outcome]:
        """:meth:`map` over a list the consumer may append to while it iterates; the appended
        tasks run after the others, in order (see ``LocalEngine.feed``)."""
        return self.map(fn, tasks, retries)

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> SerialEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
