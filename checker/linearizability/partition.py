"""Partitions as search tasks, and the interleaver that runs their searches round-robin.

P-compositionality: a history is linearizable when each of its partitions (the operations with one
key of ``model.partition``) is. :func:`compile_partitions` and :func:`make_task` turn a history into
one :class:`Task` per partition (compiled, with pending read-only operations dropped);
an :class:`Interleaver` runs the tasks' searches (:func:`checker.linearizability.search.search`)
``SLICE`` steps at a time, so an easy ILLEGAL partition is found even behind a hard one, and checks
the deadline, the step budget, the memory bound and cancellation between slices. What it learns
about each partition goes into its :class:`Outcome`. The worker processes
(:mod:`checker.linearizability.workers`) run the same interleaver over their share of the tasks.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable, Generator, Hashable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from checker.history import UNKNOWN_OUTPUT, Operation
from checker.linearizability.result import Verdict
from checker.linearizability.search import SearchOutcome, StepFailed, StepFn, Stop, search
from checker.models import NOT_A_READ, Model, ModelError
from packrat_sim.limits import current_rss

__all__ = [
    "MEMORY_EVERY",
    "SLICE",
    "Interleaver",
    "Outcome",
    "Row",
    "StepFailed",
    "Task",
    "brief",
    "compile_partitions",
    "make_task",
    "record_end",
    "step_error",
]

#: Search steps per slice: the interleaver runs each partition's search this many steps at a time,
#: and checks the deadline, the memory bound and cancellation between slices.
SLICE = 1024
#: Slices between two memory measurements (reading the resident set size costs a system call).
MEMORY_EVERY = 16

#: Errors of a model's compile/partition/step functions that name a bad operation (anything else
#: is a bug and propagates).
_MODEL_ERRORS = (ValueError, TypeError, KeyError, AttributeError, IndexError)


def brief(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters with ``...`` (pure)."""
    s = repr(value)
    return s if len(s) <= limit else s[: limit - 3] + "..."


#: One operation as :func:`compile_partitions` hands it to :func:`make_task`: (history index, call
#: time, return time or None, compiled input, compiled output, read-only, read value).
Row = tuple[int, Any, Any, Any, Any, bool, Any]

_CALL = itemgetter(1)


@dataclass
class Task:
    """One partition prepared for the search (see :func:`make_task`); picklable, so workers can
    receive it."""

    key: Hashable
    indices: tuple[int, ...]  # all its operations (history indices), in call order
    searched: list[int]  # those searched (pending read-only operations dropped)
    call_t: list
    ret_t: list
    inputs: list
    outputs: list
    read_only: list[bool]
    read_values: list | None = None  # the model's read_value per searched operation, if it has one
    resets: list[bool] | None = None  # the model's resets per searched operation, if it has reaches too

    def search(self, step: StepFn, init: Any, reaches: Callable[[Any, Any], bool] | None = None
               ) -> Generator[int, int, SearchOutcome]:
        """A fresh search over this partition from model state ``init`` (see :func:`search`;
        ``reaches``: the model's, used with ``resets``)."""
        return search(step, init, self.call_t, self.ret_t, self.inputs, self.outputs, self.read_only,
                      self.read_values, self.resets, reaches)


def compile_partitions(ops: Sequence[Operation], mdl: Model) -> dict[Hashable, list[Row]]:
    """Compile every operation and group them by partition key (in order of first appearance), as
    :data:`Row` s in history order: one pass, the model's ``compile``, ``partition``, ``read_only``
    and ``read_value`` each called once per operation (with ``UNKNOWN_OUTPUT`` as the output of a
    pending one). Raises :class:`~checker.models.ModelError` naming the first operation the model
    cannot compile (or place)."""
    compile_op, partition, read_only, read_value = mdl.compile, mdl.partition, mdl.read_only, mdl.read_value
    parts: dict[Hashable, list[Row]] = {}
    key: Hashable = None
    ro = False
    i = -1
    try:
        for i, op in enumerate(ops):
            ret = op.ret
            inp, out = op.input, UNKNOWN_OUTPUT if ret is None else op.output
            cin, cout = compile_op(inp, out)
            if partition is not None:
                key = partition(inp)
            if read_only is not None:
                ro = bool(read_only(inp, out))
            value = read_value(cin, cout) if ro and read_value is not None else NOT_A_READ
            row = (i, op.call, ret, cin, cout, ro, value)
            group = parts.get(key)  # hashes the key: an unhashable one is the operation's error
            if group is None:
                parts[key] = [row]
            else:
                group.append(row)
    except _MODEL_ERRORS as exc:
        op = ops[i]
        msg = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
        raise ModelError(f"operation {i} (client {op.client!r}, input {brief(op.input)}): {msg}") from None
    return parts


def make_task(mdl: Model, key: Hashable, rows: Sequence[Row]) -> Task:
    """The search task of one partition from its :data:`Row` s in history order (pure): sorted by
    call time (ties in history order), pending read-only operations dropped from the search."""
    rows = sorted(rows, key=_CALL)
    kept = [row for row in rows if row[2] is not None or not row[5]]
    columns = [list(c) for c in zip(*kept)] if kept else [[] for _ in range(7)]
    searched, call_t, ret_t, inputs, outputs, ro, values = columns
    resets = mdl.resets if mdl.read_value is not None and mdl.reaches is not None else None
    return Task(key=key, indices=tuple([row[0] for row in rows]), searched=searched, call_t=call_t, ret_t=ret_t,
                inputs=inputs, outputs=outputs, read_only=ro, read_values=values if mdl.read_value else None,
                resets=None if resets is None else [bool(resets(i)) for i in inputs])


@dataclass
class Outcome:
    """What the drivers learn about one partition (mutable while the check runs).

    History indices in ``linearization``/``blocked``; ``elapsed_s``: seconds of its own slices;
    ``finished_s``: seconds from the start of the check to its verdict."""

    result: Verdict | None = None  # None: not decided (yet)
    linearization: tuple[int, ...] = ()
    blocked: int | None = None
    state: Any = None
    steps: int = 0
    elapsed_s: float = 0.0
    finished_s: float | None = None
    needed: bool = True


def record_end(task: Task, out: Outcome, value: SearchOutcome, start: float) -> Verdict:
    """Record the end of ``task``'s search (its :data:`SearchOutcome` ``value``) in ``out``, local
    indices turned into history indices, ``finished_s`` measured from the ``perf_counter`` time
    ``start`` when decided. Returns the verdict."""
    res, lin, blocked, state, steps = value
    out.result, out.steps, out.state = res, steps, state
    searched = task.searched
    out.linearization = tuple([searched[j] for j in lin])
    out.blocked = None if blocked is None else searched[blocked]
    if res is not Verdict.UNKNOWN:
        out.finished_s = time.perf_counter() - start
    return res


def step_error(mdl: Model, task: Task, ops: Sequence[Operation], exc: StepFailed) -> ModelError:
    """The error to report when the model failed on an operation of ``task`` (naming it)."""
    i = task.searched[exc.local]
    return ModelError(
        f"operation {i} (client {ops[i].client!r}, input {brief(ops[i].input)}): "
        f"model {mdl.name!r} failed on it: {exc.error}"
    )


class Interleaver:
    """Round-robin over the partitions' searches in this process, :data:`SLICE` steps at a time.

    ``run()`` returns why it stopped: ``"done"`` (every partition decided), ``"illegal"`` (one was
    ILLEGAL and ``all_partitions`` is False), ``"paused"`` (``until`` reached; call ``run`` again
    to continue, or ``drop`` the undecided ones), or the reason for UNKNOWN (deadline, step
    budget, memory bound, cancelled), after which the undecided searches carry their evidence so
    far. Raises :class:`StepFailed` (with ``failed_task`` set) when the model fails on an operation.

    Times are ``time.perf_counter()`` seconds (``start``, ``deadline``); ``max_memory``: bytes of
    resident memory the searches may add (measured every :data:`MEMORY_EVERY` slices);
    ``cancel``: an object with ``is_set()``; ``which``: the task indices to run (default all);
    ``on_decided(i)``: called when task ``i`` reaches OK or ILLEGAL.
    """

    def __init__(self, tasks: Sequence[Task], outcomes: Sequence[Outcome], mdl: Model, *, start: float,
                 deadline: float | None, max_steps: int | None, max_memory: float | None,
                 all_partitions: bool, cancel: Any = None, which: Sequence[int] | None = None,
                 on_decided: Callable[[int], None] | None = None) -> None:
        self.tasks, self.outcomes, self.mdl = tasks, outcomes, mdl
        self.start, self.deadline, self.max_steps, self.max_memory = start, deadline, max_steps, max_memory
        self.all_partitions, self.cancel, self.on_decided = all_partitions, cancel, on_decided
        self.active: deque[int] = deque(range(len(tasks)) if which is None else which)
        self.gens: dict[int, Generator[int, int, SearchOutcome]] = {}
        self.total_steps = 0
        self.slices = 0
        self.first_failure: int | None = None
        self.failed_task: int | None = None
        self.rss_base: int | None = None

    def _finish(self, i: int, value: SearchOutcome) -> None:
        """Record the end of task ``i``'s search (local indices turned into history indices)."""
        out = self.outcomes[i]
        self.total_steps += value[4] - out.steps
        res = record_end(self.tasks[i], out, value, self.start)
        if res is not Verdict.UNKNOWN:
            if res is Verdict.ILLEGAL and self.first_failure is None:
                self.first_failure = i
            if self.on_decided is not None:
                self.on_decided(i)

    def _limit_reason(self, now: float) -> str | None:
        """Why the searches must stop now (deadline, cancelled, memory), or None."""
        if self.deadline is not None and now >= self.deadline:
            return "deadline"
        if self.cancel is not None and self.cancel.is_set():
            return "cancelled"
        if self.max_memory is not None and self.slices and self.slices % MEMORY_EVERY == 0:
            rss = current_rss()
            if self.rss_base is None:
                self.rss_base = rss  # searches decided within MEMORY_EVERY slices never pay for this
            elif rss - self.rss_base > self.max_memory:
                return "memory"
        return None

    def _slice(self, i: int, quota: int) -> bool:
        """Run one slice (at most ``quota`` steps) of task ``i``'s search, starting it on first use.
        Returns True when the search ended (its outcome recorded and ``i`` left the rotation)."""
        out = self.outcomes[i]
        t0 = time.perf_counter()
        try:
            gen = self.gens.get(i)
            if gen is None:
                gen = self.gens[i] = self.tasks[i].search(self.mdl.step, self.mdl.init(), self.mdl.reaches)
                done = next(gen)
                out.state = self.mdl.init()
            else:
                done = gen.send(quota)
        except StopIteration as fin:
            self.active.popleft()
            self.gens.pop(i, None)
            out.elapsed_s += time.perf_counter() - t0
            self._finish(i, fin.value)
            return True
        except StepFailed:
            self.failed_task = i
            raise
        self.total_steps += done - out.steps
        out.steps = done
        self.active.rotate(-1)
        out.elapsed_s += time.perf_counter() - t0
        return False

    def _halt(self, now: float) -> str | None:
        """When a limit has run out (see :meth:`_limit_reason`): :meth:`stop` the undecided searches
        and return its reason; else None."""
        reason = self._limit_reason(now)
        if reason is not None:
            self.stop()
        return reason

    def _turn_ends_check(self, quota: int) -> bool:
        """Run one slice (at most ``quota`` steps) of the next active search and count it. Returns
        True when it ended ILLEGAL and ``all_partitions`` is False: the other undecided searches are
        then dropped (see :meth:`drop`) and the slice is not counted."""
        i = self.active[0]
        if self._slice(i, quota) and self.outcomes[i].result is Verdict.ILLEGAL and not self.all_partitions:
            self.drop()
            return True
        self.slices += 1
        return False

    def run(self, until: float | None = None) -> str:
        """Run the active searches round-robin until they are decided, a limit runs out, or the
        ``perf_counter`` time ``until`` passes (see the class docstring for what it returns).
        Continues where earlier calls, or :meth:`turn` s, left the rotation."""
        reason = self._halt(time.perf_counter())
        if reason is not None:
            return reason
        while self.active:
            quota = SLICE
            if self.max_steps is not None:
                quota = min(quota, self.max_steps - self.total_steps)
                if quota <= 0:
                    self.stop()
                    return "budget"
            if self._turn_ends_check(quota):
                return "illegal"
            now = time.perf_counter()
            reason = self._halt(now)
            if reason is not None:
                return reason
            if until is not None and now >= until and self.active:
                return "paused"
        return "done"

    def turn(self, quota: int = SLICE) -> str | None:
        """One turn of the rotation for a driver that takes the turns itself (needs an active
        search; ignores ``max_steps``): check the limits, then run one slice (at most ``quota``
        steps) of the next search. Returns None to go on, else why to stop, as :meth:`run` would
        (a limit's reason, the undecided searches then stopped; ``"illegal"``, the others dropped).
        Turns followed by :meth:`run` check the limits and rotate exactly as :meth:`run` alone.
        Raises :class:`StepFailed` (with ``failed_task`` set) as :meth:`run` does."""
        reason = self._halt(time.perf_counter())
        if reason is not None:
            return reason
        return "illegal" if self._turn_ends_check(quota) else None

    def stop(self) -> None:
        """End every undecided search now with UNKNOWN and its evidence so far."""
        while self.active:
            i = self.active.popleft()
            gen = self.gens.pop(i, None)
            if gen is None:
                self.outcomes[i].result = Verdict.UNKNOWN
                continue
            try:
                gen.throw(Stop)
            except StopIteration as fin:
                self._finish(i, fin.value)

    def drop(self, keep: Sequence[int] = ()) -> list[int]:
        """Abandon every undecided search not in ``keep`` (their outcomes stay undecided); returns
        their indices."""
        kept = set(keep)
        dropped = [i for i in self.active if i not in kept]
        self.active = deque(i for i in self.active if i in kept)
        for i in dropped:
            gen = self.gens.pop(i, None)
            if gen is not None:
                with contextlib.suppress(StopIteration):
                    gen.throw(Stop)
        return dropped
