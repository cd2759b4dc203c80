"""Linearizability checking: Wing-Gong search with Lowe's memoisation and P-compositionality.

``check(history, model)`` decides whether the history is linearizable with respect to the
sequential ``model`` (see :mod:`checker.models`) and returns a :class:`CheckResult`:

- ``OK``: every partition has a linearization (evidence: one per partition);
- ``ILLEGAL``: some partition has none (evidence: the operation that cannot be linearized and the
  longest linearizable prefix found, per partition);
- ``UNKNOWN``: the timeout or step budget ran out first. A timeout is never OK, but an ILLEGAL
  partition found before it is still a definite ILLEGAL.

Semantics. Operations occupy closed intervals ``[call, ret]``: ``a`` must precede ``b`` in a
linearization exactly when ``a.ret < b.call``; operations whose intervals touch are concurrent. A
pending operation (``ret is None``) may be linearized at any point after its call, with an unknown
output, or not at all. A linearization is a sequence of all completed operations and some pending
ones that respects that order and is legal for the model from ``model.init()``.

Algorithm (Wing & Gong, with Lowe's improvements, as in Porcupine). Per partition, call and return
events are sorted into a doubly linked list (calls before returns at equal times). The search walks
the list from its head: a call whose operation is legal in the current state is linearized (its
call and return entries are lifted out of the list, and the search restarts at the head); reaching
a return entry means that operation should already have been linearized, so the search backtracks
(pops the last linearized operation, unlifts it and tries the next candidate after it). A cache of
(linearized set, model state) pairs prunes every configuration already explored. The search is
iterative (no recursion limit). The linearized set is a Python int bitset, stored compactly as
``(m, r, p)``: the completed operations with the ``m`` earliest returns are all linearized, ``r``
holds the bits of later completed ones relative to ``m``, and ``p`` those of pending ones, so cache
keys stay small on long histories. Pending operations that cannot change the state
(``model.read_only``) are dropped before the search; completed read-only operations that are
legal are linearized greedily; configurations that only add pending operations to one already
explored are pruned (subsumption); and identical pending operations are used in call order.

Concurrency. Each partition's search is a resumable generator (:func:`_search_gen`) run
``_SLICE`` (1024) steps at a time; :func:`check` runs the partitions round-robin in one process,
so an easy ILLEGAL partition is found even behind a hard one, and the deadline, the memory bound
and cancellation are checked between slices (the verdict returns within a few milliseconds of
the deadline; a large search cache is then freed by a background thread, since freeing tens of
millions of entries takes seconds, and the cyclic garbage collector is paused during the search
for the same reason). With ``jobs > 1``, partitions still undecided after
:data:`ESCALATE_AFTER_S` seconds are dealt to ``jobs`` shares: this process keeps one (and its
progress) and worker processes take the others (:mod:`checker.parallel_check`). The choice was
measured (``benchmarks/check_parallel.py``, 2-CPU VM): a worker costs 0.1-0.3 s to start (about
1 s on a loaded machine), while most histories, the 10k-operation partitioned kv benchmark
included, are decided in-process in 0.1-0.4 s, and on those processes only add their start-up
cost (with a 0.25 s threshold, jobs=2 was 3x slower than jobs=1 on it under load); interleaving in one process gives the stop-at-first-ILLEGAL gain at no cost, and
processes are kept for partitions that stay undecided long enough to repay their start.
"""

from __future__ import annotations

import enum
import functools
import gc
import math
import os
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Generator, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from checker.history import UNKNOWN_OUTPUT, History, Operation
from checker.models import MODELS, Model, ModelError, NondeterministicModel, get_model

__all__ = [
    "DEFAULT_MEMORY_FRACTION",
    "ESCALATE_AFTER_S",
    "ILLEGAL",
    "NOT_NEEDED",
    "OK",
    "UNKNOWN",
    "CheckResult",
    "PartitionResult",
    "Step",
    "Verdict",
    "check",
    "current_rss",
    "default_max_memory",
    "describe",
    "explain",
    "format_bytes",
    "total_memory",
    "trace",
]


class Verdict(str, enum.Enum):
    """The outcome of a check. Its value is the lower-case word used in JSON output."""

    OK = "ok"
    ILLEGAL = "illegal"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value


OK, ILLEGAL, UNKNOWN = Verdict.OK, Verdict.ILLEGAL, Verdict.UNKNOWN


#: Outcome words of a partition (``PartitionResult.outcome``).
NOT_NEEDED = "not needed"

#: Search steps per slice: the interleaved driver runs each partition's search this many steps at
#: a time, and checks the deadline, the memory bound and cancellation between slices.
_SLICE = 1024
#: Slices between two memory measurements (reading the resident set size costs a system call).
_MEMORY_EVERY = 16
#: With ``jobs > 1``, partitions are interleaved in this process first; those still undecided after
#: this many seconds are shared with worker processes (see the module docstring, "Concurrency").
ESCALATE_AFTER_S = 1.0


@dataclass(frozen=True)
class PartitionResult:
    """The verdict for one partition (one key of ``model.partition``; ``key`` None when unpartitioned).

    ``operations``: history indices of the partition's operations, in call order.
    ``linearization``: history indices in linearization order: for OK a complete linearization
    (every completed operation, plus the pending ones that took effect); otherwise the longest
    linearizable prefix found. ``blocked``: for ILLEGAL, the history index of the operation that
    cannot be linearized after that prefix (the earliest-returning operation left out); for UNKNOWN,
    the same as far as the search got. ``state``: the model state after ``linearization``.
    ``steps``/``elapsed_s``: search steps and seconds spent on this partition (its own slices).
    ``needed``: False when the check stopped at another partition's ILLEGAL before deciding this
    one (its ``result`` is then UNKNOWN, never OK). ``finished_s``: seconds from the start of the
    check to this partition's verdict (None when undecided).
    """

    key: Hashable
    result: Verdict
    operations: tuple[int, ...]
    linearization: tuple[int, ...]
    blocked: int | None
    state: Any
    steps: int
    elapsed_s: float
    needed: bool = True
    finished_s: float | None = None

    @property
    def outcome(self) -> str:
        """``"ok"``, ``"illegal"``, ``"unknown"`` or ``"not needed"`` (see :data:`NOT_NEEDED`)."""
        return self.result.value if self.needed else NOT_NEEDED

    @property
    def decided(self) -> bool:
        """True when the search reached OK or ILLEGAL for this partition."""
        return self.result is not Verdict.UNKNOWN


@dataclass(frozen=True)
class CheckResult:
    """The verdict on a whole history, with per-partition evidence (see :func:`check`).

    ``partitions`` are in order of first appearance in the history. ``first_failure``: the index
    in ``partitions`` of the partition found ILLEGAL first (None when none is). ``jobs``: processes
    that searched, this one included (1: everything ran in this process). ``mode``:
    ``"in-process"`` or ``"processes"`` (some partitions went to worker processes).
    """

    result: Verdict
    model: str
    operations: int
    partitions: tuple[PartitionResult, ...]
    elapsed_s: float
    steps: int
    reason: str = ""
    first_failure: int | None = None
    jobs: int = 1
    mode: str = "in-process"

    @property
    def ok(self) -> bool:
        return self.result is Verdict.OK

    @property
    def illegal(self) -> bool:
        return self.result is Verdict.ILLEGAL

    @property
    def unknown(self) -> bool:
        return self.result is Verdict.UNKNOWN

    @property
    def failures(self) -> tuple[PartitionResult, ...]:
        """The ILLEGAL partitions."""
        return tuple(p for p in self.partitions if p.result is Verdict.ILLEGAL)

    @property
    def first_failed(self) -> PartitionResult | None:
        """The partition found ILLEGAL first, or None."""
        return None if self.first_failure is None else self.partitions[self.first_failure]

    @property
    def counts(self) -> dict[str, int]:
        """Partitions per outcome: ``{"ok": n, "illegal": n, "unknown": n, "not needed": n}``."""
        out = {"ok": 0, "illegal": 0, "unknown": 0, NOT_NEEDED: 0}
        for p in self.partitions:
            out[p.outcome] += 1
        return out

    def to_json(self, history: History | None = None, model: Model | str | None = None,
                linearizations: bool = False) -> dict:
        """A JSON-ready summary: result, model, operations, partitions (a count), elapsed_s, steps,
        reason, ``first_failure`` (the key of the partition found ILLEGAL first, or null),
        ``partition_results`` (every partition's key, outcome (ok / illegal / unknown /
        not needed), operations, elapsed_s and finished_s), and ``details`` for every needed
        partition that is not OK (with ``linearizations=True``, for all of them). With ``history``
        and ``model`` given, operations are also described."""
        mdl = get_model(model) if model is not None else None
        details = []
        for part in self.partitions:
            if (part.result is Verdict.OK and not linearizations) or not part.needed:
                continue
            d: dict[str, Any] = {
                "key": _json_key(part.key),
                "result": part.result.value,
                "operations": len(part.operations),
                "linearization": list(part.linearization),
                "blocked": part.blocked,
                "elapsed_s": round(part.elapsed_s, 6),
            }
            if mdl is not None:
                d["state"] = mdl.describe_state(part.state)
                if history is not None and part.blocked is not None:
                    op = history[part.blocked]
                    d["blocked_operation"] = describe(mdl, op)
            details.append(d)
        first = self.first_failed
        return {
            "result": self.result.value,
            "model": self.model,
            "operations": self.operations,
            "partitions": len(self.partitions),
            "elapsed_s": round(self.elapsed_s, 6),
            "steps": self.steps,
            "reason": self.reason,
            "jobs": self.jobs,
            "mode": self.mode,
            "first_failure": None if first is None else _json_key(first.key),
            "partition_counts": self.counts,
            "partition_results": [
                {
                    "key": _json_key(p.key),
                    "result": p.outcome,
                    "operations": len(p.operations),
                    "elapsed_s": round(p.elapsed_s, 6),
                    "finished_s": None if p.finished_s is None else round(p.finished_s, 6),
                }
                for p in self.partitions
            ],
            "details": details,
        }


def _json_key(key: Hashable) -> Any:
    if key is None or isinstance(key, (str, int, float, bool)):
        return key
    return repr(key)


def describe(model: Model, op: Operation) -> str:
    """The model's description of ``op`` (a pending operation with an unknown output)."""
    out = UNKNOWN_OUTPUT if op.ret is None else op.output
    try:
        return model.describe_operation(op.input, out)
    except Exception:  # describing must never break reporting
        return f"{op.input!r} -> {out!r}"


# --------------------------------------------------------------------------------------------
# Limits


@functools.lru_cache(maxsize=1)
def total_memory() -> int | None:
    """Physical memory of this machine in bytes (the cgroup limit when lower), or None if unknown."""
    total = None
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as fh:
                text = fh.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < (1 << 60):
            total = int(text) if total is None else min(total, int(text))
    return total


#: Fraction of :func:`total_memory` that a check may use by default (``max_memory=None``).
DEFAULT_MEMORY_FRACTION = 0.5


def default_max_memory() -> int | None:
    """The default memory bound: :data:`DEFAULT_MEMORY_FRACTION` of :func:`total_memory`."""
    total = total_memory()
    return None if total is None else int(total * DEFAULT_MEMORY_FRACTION)


def _page_size() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4096


_PAGE = _page_size()


def current_rss() -> int:
    """Resident memory of this process in bytes (Linux: now; elsewhere: the peak so far)."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def format_bytes(n: float) -> str:
    """``n`` bytes as text with a binary unit (``512 MiB``, ``1.5 GiB``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit in ("B", "KiB", "MiB") or n == int(n) else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _validate_limits(timeout: Any, max_steps: Any, jobs: Any, max_memory: Any) -> None:
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) \
                or timeout < 0:
            raise ValueError(f"timeout must be a finite number of seconds >= 0 (or None), not {timeout!r}")
    if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 0):
        raise ValueError(f"max_steps must be an integer >= 0 (or None), not {max_steps!r}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, not {jobs!r}")
    if max_memory is not None and (isinstance(max_memory, bool) or not isinstance(max_memory, (int, float))
                                   or not max_memory > 0):
        raise ValueError(f"max_memory must be a number of bytes > 0 (or None: the default), not {max_memory!r}")


# --------------------------------------------------------------------------------------------
# Partitions as search tasks


@dataclass
class _Task:
    """One partition prepared for the search (see :func:`_make_tasks`)."""

    key: Hashable
    indices: tuple[int, ...]  # all its operations (history indices), in call order
    searched: list[int]  # those searched (pending read-only operations dropped)
    call_t: list
    ret_t: list
    inputs: list
    outputs: list
    read_only: list[bool]

    def search(self, step, init) -> Generator:
        return _search_gen(step, init, self.call_t, self.ret_t, self.inputs, self.outputs, self.read_only)


def _compile_partitions(ops: Sequence[Operation], mdl: Model) -> tuple[dict[Hashable, list[int]], list]:
    """Compile every operation and group history indices by partition key (first appearance)."""
    compile_op, partition = mdl.compile, mdl.partition
    parts: dict[Hashable, list[int]] = {}
    compiled: list[tuple[Any, Any]] = []
    for i, op in enumerate(ops):
        out = UNKNOWN_OUTPUT if op.ret is None else op.output
        try:
            compiled.append(compile_op(op.input, out))
            key = partition(op.input) if partition is not None else None
            hash(key)
        except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
            msg = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            raise ModelError(f"operation {i} (client {op.client!r}, input {_brief(op.input)}): {msg}") from None
        parts.setdefault(key, []).append(i)
    return parts, compiled


def _make_task(mdl: Model, key: Hashable, indices: list[int], ops, compiled) -> _Task:
    """The search task of one partition: ``ops``/``compiled`` are indexable by history index."""
    indices = sorted(indices, key=lambda i: (ops[i].call, i))
    read_only = mdl.read_only
    if read_only is None:
        searched, ro_flags = indices, [False] * len(indices)
    else:
        searched = [i for i in indices if not (ops[i].ret is None and read_only(ops[i].input, UNKNOWN_OUTPUT))]
        ro_flags = [ops[i].ret is not None and bool(read_only(ops[i].input, ops[i].output)) for i in searched]
    return _Task(
        key=key,
        indices=tuple(indices),
        searched=searched,
        call_t=[ops[i].call for i in searched],
        ret_t=[ops[i].ret for i in searched],
        inputs=[compiled[i][0] for i in searched],
        outputs=[compiled[i][1] for i in searched],
        read_only=ro_flags,
    )


@dataclass
class _Outcome:
    """What the drivers learn about one partition (mutable while the check runs)."""

    result: Verdict | None = None  # None: not decided (yet)
    linearization: tuple[int, ...] = ()
    blocked: int | None = None
    state: Any = None
    steps: int = 0
    elapsed_s: float = 0.0
    finished_s: float | None = None
    needed: bool = True


class _Stop(Exception):
    """Thrown into a search generator to end it with UNKNOWN and its evidence so far."""


class _StepFailed(Exception):
    def __init__(self, local: int, error: BaseException) -> None:
        super().__init__(local, error)
        self.local = local
        self.error = error


def _step_error(mdl: Model, task: _Task, ops, exc: _StepFailed) -> ModelError:
    i = task.searched[exc.local]
    return ModelError(
        f"operation {i} (client {ops[i].client!r}, input {_brief(ops[i].input)}): "
        f"model {mdl.name!r} failed on it: {exc.error}"
    )


class _Interleaver:
    """Round-robin over the partitions' searches in this process, ``_SLICE`` steps at a time.

    ``run()`` returns why it stopped: ``"done"`` (every partition decided), ``"illegal"`` (one was
    ILLEGAL and ``all_partitions`` is False), ``"paused"`` (``until`` reached; call ``run`` again
    to continue, or ``drop`` the undecided ones), or the reason for UNKNOWN (deadline, step
    budget, memory bound, cancelled), after which the undecided searches carry their evidence so
    far. Raises :class:`_StepFailed` (with ``failed_task`` set) when the model fails on an operation.
    """

    def __init__(self, tasks: Sequence[_Task], outcomes: Sequence[_Outcome], mdl: Model, *, start: float,
                 deadline: float | None, max_steps: int | None, max_memory: float | None,
                 all_partitions: bool, cancel: Any = None, which: Sequence[int] | None = None,
                 on_decided: Any = None) -> None:
        self.tasks, self.outcomes, self.mdl = tasks, outcomes, mdl
        self.start, self.deadline, self.max_steps, self.max_memory = start, deadline, max_steps, max_memory
        self.all_partitions, self.cancel, self.on_decided = all_partitions, cancel, on_decided
        self.active: deque[int] = deque(range(len(tasks)) if which is None else which)
        self.gens: dict[int, Generator] = {}
        self.total_steps = 0
        self.slices = 0
        self.first_failure: int | None = None
        self.failed_task: int | None = None
        self.rss_base: int | None = None

    def _finish(self, i: int, value: tuple) -> None:
        res, lin, blocked, state, steps = value
        task, out = self.tasks[i], self.outcomes[i]
        self.total_steps += steps - out.steps
        out.result, out.steps, out.state = res, steps, state
        out.linearization = tuple(task.searched[j] for j in lin)
        out.blocked = None if blocked is None else task.searched[blocked]
        if res is not Verdict.UNKNOWN:
            out.finished_s = time.perf_counter() - self.start
            if res is Verdict.ILLEGAL and self.first_failure is None:
                self.first_failure = i
            if self.on_decided is not None:
                self.on_decided(i)

    def _limit_reason(self, now: float) -> str | None:
        if self.deadline is not None and now >= self.deadline:
            return "deadline"
        if self.cancel is not None and self.cancel.is_set():
            return "cancelled"
        if self.max_memory is not None and self.slices and self.slices % _MEMORY_EVERY == 0:
            rss = current_rss()
            if self.rss_base is None:
                self.rss_base = rss  # searches decided within _MEMORY_EVERY slices never pay for this
            elif rss - self.rss_base > self.max_memory:
                return "memory"
        return None

    def run(self, until: float | None = None) -> str:
        active, gens, tasks, outcomes = self.active, self.gens, self.tasks, self.outcomes
        step, init = self.mdl.step, self.mdl.init
        reason = self._limit_reason(time.perf_counter())
        if reason is not None:
            self.stop()
            return reason
        while active:
            i = active[0]
            out = outcomes[i]
            t0 = time.perf_counter()
            quota = _SLICE
            if self.max_steps is not None:
                quota = min(quota, self.max_steps - self.total_steps)
                if quota <= 0:
                    self.stop()
                    return "budget"
            try:
                gen = gens.get(i)
                if gen is None:
                    gen = gens[i] = tasks[i].search(step, init())
                    done = next(gen)
                    out.state = init()
                else:
                    done = gen.send(quota)
            except StopIteration as fin:
                active.popleft()
                gens.pop(i, None)
                out.elapsed_s += time.perf_counter() - t0
                self._finish(i, fin.value)
                if out.result is Verdict.ILLEGAL and not self.all_partitions:
                    self.drop()
                    return "illegal"
            except _StepFailed:
                self.failed_task = i
                raise
            else:
                self.total_steps += done - out.steps
                out.steps = done
                active.rotate(-1)
                out.elapsed_s += time.perf_counter() - t0
            self.slices += 1
            now = time.perf_counter()
            reason = self._limit_reason(now)
            if reason is not None:
                self.stop()
                return reason
            if until is not None and now >= until and active:
                return "paused"
        return "done"

    def stop(self) -> None:
        """End every undecided search now with UNKNOWN and its evidence so far."""
        while self.active:
            i = self.active.popleft()
            gen = self.gens.pop(i, None)
            if gen is None:
                self.outcomes[i].result = Verdict.UNKNOWN
                continue
            try:
                gen.throw(_Stop)
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
                try:
                    gen.throw(_Stop)
                except StopIteration:
                    pass
        return dropped


# --------------------------------------------------------------------------------------------
# The check


def check(
    history: History | Iterable[Operation],
    model: Model | NondeterministicModel | str | None = None,
    *,
    timeout: float | None = None,
    max_steps: int | None = None,
    jobs: int = 1,
    all_partitions: bool = False,
    max_memory: float | None = None,
    cancel: Any = None,
) -> CheckResult:
    """Check ``history`` for linearizability against ``model``.

    ``model``: a :class:`~checker.models.Model`, a nondeterministic model, or a name from
    :data:`~checker.models.MODELS`; None uses ``history.model``.

    Limits (running out of any gives UNKNOWN, never OK): ``timeout`` (seconds of wall clock, >= 0,
    finite; the verdict returns within about ``timeout`` + 0.1 s, since the deadline is checked
    every ``_SLICE`` search steps), ``max_steps`` (search steps over all partitions),
    ``max_memory`` (bytes of resident memory the search may add to the process, measured every
    ``_MEMORY_EVERY`` slices from the first such measurement; with workers, every process gets an
    equal share; None: :func:`default_max_memory`, half of RAM), and ``cancel`` (an object whose ``is_set()``
    becomes true, such as a ``threading.Event``).

    Partitions are decided concurrently: interleaved round-robin in this process (``jobs=1``, the
    default), and with ``jobs > 1`` those still undecided after :data:`ESCALATE_AFTER_S` seconds
    move to up to ``jobs`` worker processes (only for the built-in models, whose names the workers
    resolve, and without ``max_steps``). The first ILLEGAL partition ends the check; partitions not
    decided by then are reported with ``needed=False`` (outcome "not needed"). With
    ``all_partitions=True`` every partition is decided (unless a limit runs out).

    Raises :class:`~checker.models.ModelError` when the model is unknown or missing, or an
    operation does not fit it (naming the operation), :class:`~checker.history.HistoryError` when
    ``history`` is a sequence that does not validate, and ``ValueError`` for a bad limit.
    """
    start = time.perf_counter()
    _validate_limits(timeout, max_steps, jobs, max_memory)
    if not isinstance(history, History):
        history = History(history)
    if model is None:
        if history.model is None:
            raise ModelError("the history names no model; pass one (register, cas-register, kv or serving)")
        model = history.model
    mdl = get_model(model)
    model_name = mdl.name if MODELS.get(mdl.name) is mdl else None
    deadline = None if timeout is None else start + float(timeout)
    if max_memory is None:
        max_memory = default_max_memory()

    ops = history.operations
    parts, compiled = _compile_partitions(ops, mdl)
    tasks = [_make_task(mdl, key, idx, ops, compiled) for key, idx in parts.items()]
    outcomes = [_Outcome() for _ in tasks]
    inter = _Interleaver(tasks, outcomes, mdl, start=start, deadline=deadline, max_steps=max_steps,
                         max_memory=max_memory, all_partitions=all_partitions, cancel=cancel)
    can_fork = jobs > 1 and len(tasks) > 1 and max_steps is None and model_name in MODELS
    workers_used = 1
    mode = "in-process"
    gc_was_enabled = gc.isenabled()
    gc.disable()  # the search builds no cycles; a full collection over a large cache takes seconds
    try:
        stop = inter.run(until=start + ESCALATE_AFTER_S if can_fork else None)
        if stop == "paused":
            if len(inter.active) > 1:
                from checker.parallel_check import deal, decide_in_processes

                undecided = sorted(inter.active)
                workers_used = min(jobs, len(undecided))
                bins = [[undecided[k] for k in b]
                        for b in deal([len(tasks[i].searched) for i in undecided], workers_used)]
                # This process keeps the first share (and its progress); the others go to workers.
                inter.drop(keep=bins[0])
                mode = "processes"
                stop = decide_in_processes(
                    model_name, [[(i, tasks[i]) for i in b] for b in bins[1:]],
                    outcomes, local=inter, start=start, deadline=deadline, max_memory=max_memory,
                    all_partitions=all_partitions, cancel=cancel,
                )
            else:
                stop = inter.run()
    except _StepFailed as exc:
        raise _step_error(mdl, tasks[inter.failed_task], ops, exc) from None
    finally:
        # While large caches wait for the reaper, leave what the search allocated (those caches
        # included) in the permanent generation without a collection (O(1); see _reap): a
        # young-generation collection over millions of cache entries would delay the verdict.
        # With nothing buried (every small check) the collector is left as it was.
        with _reaper_lock:
            if _buried:
                gc.freeze()
        if gc_was_enabled:
            gc.enable()
    # The first failure in time (this process's clock), wherever it was found.
    illegal_at = [(o.finished_s or 0.0, i) for i, o in enumerate(outcomes) if o.result is Verdict.ILLEGAL]
    first_failure = min(illegal_at)[1] if illegal_at else None
    return _assemble(mdl, ops, tasks, outcomes, stop, first_failure, start, timeout, max_steps, max_memory,
                     workers_used, mode, all_partitions)


def _assemble(mdl: Model, ops, tasks, outcomes, stop: str, first_failure: int | None, start: float,
              timeout, max_steps, max_memory, jobs: int, mode: str, all_partitions: bool) -> CheckResult:
    results = []
    stopped_early = first_failure is not None and not all_partitions
    for task, out in zip(tasks, outcomes):
        decided = out.result in (Verdict.OK, Verdict.ILLEGAL)
        results.append(PartitionResult(
            key=task.key,
            result=out.result if decided else Verdict.UNKNOWN,
            operations=task.indices,
            linearization=out.linearization,
            blocked=out.blocked,
            state=mdl.init() if out.state is None else out.state,
            steps=out.steps,
            elapsed_s=out.elapsed_s,
            needed=decided or not stopped_early,
            finished_s=out.finished_s if decided else None,
        ))
    verdicts = {p.result for p in results}
    if Verdict.ILLEGAL in verdicts:
        verdict, reason = Verdict.ILLEGAL, ""
    elif Verdict.UNKNOWN in verdicts:
        verdict = Verdict.UNKNOWN
        reason = {
            "deadline": f"timed out after {timeout:g} s" if timeout is not None else "timed out",
            "budget": f"step budget of {max_steps} exhausted",
            "memory": f"memory bound of {format_bytes(max_memory or 0)} reached (the search's cache grew too large)",
            "cancelled": "cancelled",
            "worker failed": "a worker process failed",
        }.get(stop, f"stopped ({stop})")
    else:
        verdict, reason = Verdict.OK, ""
    return CheckResult(
        result=verdict,
        model=mdl.name,
        operations=len(ops),
        partitions=tuple(results),
        elapsed_s=time.perf_counter() - start,
        steps=sum(p.steps for p in results),
        reason=reason,
        first_failure=first_failure,
        jobs=jobs,
        mode=mode,
    )


def _brief(value: Any, limit: int = 80) -> str:
    s = repr(value)
    return s if len(s) <= limit else s[: limit - 3] + "..."


#: A search cache with more entries than this is freed by a background thread after the search
#: ends (freeing tens of millions of entries takes seconds, which would delay the verdict).
_BURY_OVER = 50_000
_graveyard: queue.SimpleQueue[tuple[set, dict]] = queue.SimpleQueue()
_reaper_lock = threading.Lock()
_reaper: threading.Thread | None = None


_buried = 0  # caches handed to the reaper and not freed yet


def _reap() -> None:
    """Free buried caches a little at a time (a Python loop, so other threads keep running).

    While caches are buried, :func:`check` leaves the objects it allocated in the garbage
    collector's permanent generation (``gc.freeze``), so no collection, not even the one at
    interpreter exit, walks millions of cache entries; the last cache freed unfreezes them."""
    global _buried
    while True:
        seen, seen_p = _graveyard.get()
        pop, popitem = seen.pop, seen_p.popitem
        while seen:
            pop()
        while seen_p:
            popitem()
        del seen, seen_p, pop, popitem
        with _reaper_lock:
            _buried -= 1
            if not _buried:
                gc.unfreeze()


def _bury(seen: set, seen_p: dict) -> None:
    """Hand a large search cache to the background reaper instead of freeing it now."""
    global _reaper, _buried
    if len(seen) + len(seen_p) <= _BURY_OVER:
        return
    with _reaper_lock:
        _buried += 1
    _graveyard.put((seen, seen_p))
    with _reaper_lock:
        if _reaper is None or not _reaper.is_alive():
            _reaper = threading.Thread(target=_reap, name="packrat-check-reaper", daemon=True)
            _reaper.start()


_SCAN, _WALK = -2, -1  # search phases; a phase >= 0 is the pending phase (its value: a rank bound)


def _search_gen(
    step,
    state: Any,
    call_t: Sequence[float],
    ret_t: Sequence[float | None],
    inputs: Sequence[Any],
    outputs: Sequence[Any],
    read_only: Sequence[bool],
) -> Generator[int, int, tuple[Verdict, list[int], int | None, Any, int]]:
    """WGL search over one partition, as a resumable generator (so partitions can be interleaved).

    Protocol: ``next(gen)`` sets the search up and yields 0 (or returns at once when there is
    nothing to search); then ``gen.send(quota)`` runs at most ``quota`` (>= 1) more search steps
    and yields the total steps taken so far, until the search ends and returns (StopIteration's
    value). ``gen.throw(_Stop)`` at a yield ends the search with UNKNOWN and the evidence found so
    far. The search is pure apart from calling ``step``; one step is one candidate tried.

    Returns (verdict, linearization or longest prefix as local indices, blocked operation (local
    index) or None, state after the prefix, steps taken).

    The candidates for the next operation are the calls that precede the first remaining return
    event. In each configuration they are tried in three phases: (scan) a read-only completed
    candidate that is legal is linearized at once and, should that fail, the configuration fails
    (it could be moved to the front of any linearization that follows); (walk) the other completed
    candidates, in event order; (pending) pending candidates, in call order, so configurations that
    use few pending operations are explored before those that use many. Two reductions keep
    pending operations from multiplying the search:

    - subsumption: a configuration (completed set C, pending set P, state s) is pruned when
      (C, P', s) with P' a subset of P was reached before (everything that can follow the latter
      can follow the former);
    - symmetry: of pending operations with identical inputs, a later-called one is only linearized
      after every earlier-called one is (an earlier one can always stand in for a later one).
    """
    n = len(call_t)
    completed = [j for j in range(n) if ret_t[j] is not None]
    pending = [j for j in range(n) if ret_t[j] is None]
    n_completed = len(completed)
    if n_completed == 0:
        return Verdict.OK, [], None, state, 0

    # Completed operations are numbered by return order (the bitset's base m advances along it);
    # pending ones get their own bits.
    cidx = [-1] * n
    for k, j in enumerate(sorted(completed, key=lambda j: (ret_t[j], j))):
        cidx[j] = k
    pending.sort(key=lambda j: (call_t[j], j))
    pbit = [0] * n
    twin = [0] * n  # bit of the previous pending operation with the same input, or 0
    last_of: dict = {}
    for k, j in enumerate(pending):
        pbit[j] = 1 << k
        try:
            prev = last_of.get(inputs[j])
            last_of[inputs[j]] = j
        except TypeError:  # unhashable compiled input: no symmetry reduction
            prev = None
        if prev is not None:
            twin[j] = pbit[prev]
    ro = [bool(read_only[j]) and ret_t[j] is not None for j in range(n)]

    # Event list of completed operations: call node j, return node n + j, head 2n, tail 2n + 1.
    # Pending calls form their own list: head 2n + 2, tail 2n + 3. rank: position in time order.
    events = [(call_t[j], 0, j) for j in range(n)]
    events += [(ret_t[j], 1, n + j) for j in completed]
    events.sort()
    head, tail, phead, ptail = 2 * n, 2 * n + 1, 2 * n + 2, 2 * n + 3
    size = 2 * n + 4
    nxt = [0] * size
    prv = [0] * size
    rank = [0] * size
    for k, (_, _, node) in enumerate(events):
        rank[node] = k
    rank[tail] = rank[ptail] = len(events)
    last = head
    lastp = phead
    for _, _, node in events:
        if node < n and ret_t[node] is None:
            nxt[lastp] = node
            prv[node] = lastp
            lastp = node
        else:
            nxt[last] = node
            prv[node] = last
            last = node
    nxt[last] = tail
    prv[tail] = last
    nxt[lastp] = ptail
    prv[ptail] = lastp

    has_pending = bool(pending)
    seen: set = set()
    seen_add = seen.add
    seen_p: dict = {}
    stack: list[tuple] = []
    push, pop = stack.append, stack.pop
    m = r = p = 0
    best: list[int] = []
    best_len = -1
    best_state = state
    blocked = None
    common = 0  # best[:common] == the first `common` operations on the stack
    steps = 0
    entry = nxt[head]
    phase = _SCAN
    first_ret = tail
    try:
        stop_at = yield 0
    except _Stop:
        return Verdict.UNKNOWN, [], None, state, 0
    try:
        while True:
            if steps == stop_at:
                try:
                    stop_at = steps + (yield steps)
                except _Stop:
                    if len(stack) > best_len:
                        best = [s[0] for s in stack]
                        best_state = state
                        blocked = None
                    _bury(seen, seen_p)
                    return Verdict.UNKNOWN, best, blocked, best_state, steps
            steps += 1
            if phase == _SCAN:
                if entry >= n:
                    phase = _WALK
                    entry = nxt[head]
                    continue
                if not ro[entry]:
                    entry = nxt[entry]
                    continue
                legal, new_state = step(state, inputs[entry], outputs[entry])
                if not legal:
                    entry = nxt[entry]
                    continue
            elif phase == _WALK:
                if entry >= n:
                    first_ret = entry
                    phase = rank[entry]
                    entry = nxt[phead]
                    continue
                if ro[entry]:  # illegal here: the scan found no legal read-only candidate
                    entry = nxt[entry]
                    continue
                legal, new_state = step(state, inputs[entry], outputs[entry])
                if not legal:
                    entry = nxt[entry]
                    continue
            elif rank[entry] < phase:
                tw = twin[entry]
                if tw and not p & tw:
                    entry = nxt[entry]
                    continue
                legal, new_state = step(state, inputs[entry], outputs[entry])
                if not legal:
                    entry = nxt[entry]
                    continue
            else:
                legal = False
            if legal:
                c = cidx[entry]
                if c >= 0:
                    if c == m:
                        nr = r | 1
                        t = (~nr & (nr + 1)).bit_length() - 1
                        nm = m + t
                        nr >>= t
                    else:
                        nm = m
                        nr = r | (1 << (c - m))
                    np_ = p
                else:
                    nm, nr, np_ = m, r, p | pbit[entry]
                if has_pending:
                    key = (nm, nr, new_state)
                    seen_list = seen_p.get(key)
                    if seen_list is None:
                        seen_p[key] = [np_]
                        fresh = True
                    else:
                        for q in seen_list:
                            if q | np_ == np_:
                                fresh = False
                                break
                        else:
                            seen_list[:] = [q for q in seen_list if q | np_ != q]
                            seen_list.append(np_)
                            fresh = True
                else:
                    before = len(seen)
                    seen_add((nm, nr, new_state))
                    fresh = len(seen) != before
                if fresh:
                    depth = len(stack)
                    if common == depth and depth < best_len and best[depth] == entry:
                        common += 1
                    push((entry, state, m, r, p, phase, first_ret))
                    state, m, r, p = new_state, nm, nr, np_
                    a, b = prv[entry], nxt[entry]
                    nxt[a] = b
                    prv[b] = a
                    if c >= 0:
                        rn = entry + n
                        a, b = prv[rn], nxt[rn]
                        nxt[a] = b
                        prv[b] = a
                        if m == n_completed:
                            _bury(seen, seen_p)
                            return Verdict.OK, [s[0] for s in stack], None, state, steps
                    entry = nxt[head]
                    phase = _SCAN
                    continue
                if phase != _SCAN:
                    entry = nxt[entry]
                    continue
                # A legal read-only candidate leads to a configuration already explored: this
                # configuration fails too.
            # Backtrack: every candidate failed. Pop through forced (scan) choices as well.
            while True:
                depth = len(stack)
                if depth > best_len:
                    del best[common:]
                    best.extend([s[0] for s in stack[common:]])
                    best_len = common = depth
                    best_state = state
                    node = nxt[head]
                    while node < n:
                        node = nxt[node]
                    blocked = node - n if node != tail else None
                if not depth:
                    _bury(seen, seen_p)
                    return Verdict.ILLEGAL, best, blocked, best_state, steps
                node, state, m, r, p, phase, first_ret = pop()
                if common >= depth:
                    common = depth - 1
                if cidx[node] >= 0:
                    rn = node + n
                    nxt[prv[rn]] = rn
                    prv[nxt[rn]] = rn
                nxt[prv[node]] = node
                prv[nxt[node]] = node
                if phase != _SCAN:
                    break
            entry = nxt[node]
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        raise _StepFailed(entry, exc) from None


# --------------------------------------------------------------------------------------------
# Evidence: replaying a (partial) linearization, and explanations


@dataclass(frozen=True)
class Step:
    """One operation of a replayed linearization: history index, description, states around it."""

    index: int
    description: str
    before: str
    after: str
    legal: bool


def trace(history: History, model: Model | NondeterministicModel | str | None, order: Sequence[int]) -> list[Step]:
    """Replay the operations ``order`` (history indices) through ``model`` from its initial state.

    Pending operations are applied with an unknown output. Stops after the first illegal step
    (which is included, with ``legal=False``).
    """
    mdl = get_model(model if model is not None else history.model)
    state = mdl.init()
    steps = []
    for i in order:
        op = history[i]
        out = UNKNOWN_OUTPUT if op.ret is None else op.output
        inp, cout = mdl.compile(op.input, out)
        legal, nxt = mdl.step(state, inp, cout)
        steps.append(Step(i, describe(mdl, op), mdl.describe_state(state), mdl.describe_state(nxt), legal))
        if not legal:
            break
        state = nxt
    return steps


def _interval(op: Operation) -> str:
    return f"[{op.call!r}, {'pending' if op.ret is None else repr(op.ret)}]"


def explain(result: CheckResult, history: History, model: Model | NondeterministicModel | str | None = None,
            max_steps: int = 10) -> list[str]:
    """Lines a person can read: the verdict, and for each partition that is not OK the operation
    that cannot be linearized, the state there, and the tail of the longest linearizable prefix."""
    mdl = get_model(model if model is not None else result.model)
    n_parts = len(result.partitions)
    head = {
        Verdict.OK: "OK: the history is linearizable",
        Verdict.ILLEGAL: "ILLEGAL: the history is not linearizable",
        Verdict.UNKNOWN: "UNKNOWN: no verdict",
    }[result.result]
    lines = [
        f"{head} ({result.model}, {result.operations} operations, {n_parts} "
        f"partition{'s' if n_parts != 1 else ''}, {result.elapsed_s:.3f} s)"
    ]
    if result.reason:
        lines.append(f"  {result.reason}")
    first = result.first_failed
    not_needed = sum(1 for p in result.partitions if not p.needed)
    if first is not None and not_needed:
        label = "the history" if first.key is None else f"partition {first.key!r}"
        lines.append(f"  {label} failed first; {not_needed} other partition{'s' if not_needed != 1 else ''} "
                     "not needed (stopped at the first failure)")
    for part in result.partitions:
        if part.result is Verdict.OK:
            continue
        if part.result is Verdict.UNKNOWN and not part.linearization and part.blocked is None:
            continue
        label = "" if part.key is None else f"partition {part.key!r}: "
        total = len(part.operations)
        if part.result is Verdict.ILLEGAL:
            if part.blocked is not None:
                op = history[part.blocked]
                lines.append(
                    f"  {label}operation {part.blocked} (client {op.client!r}, {describe(mdl, op)}, "
                    f"{_interval(op)}) cannot be linearized"
                )
            else:
                lines.append(f"  {label}not linearizable")
        else:
            lines.append(f"  {label}search stopped")
        lines.append(
            f"    longest linearizable prefix: {len(part.linearization)} of {total} operations, "
            f"ending in state {mdl.describe_state(part.state)}"
        )
        steps = trace(history, mdl, part.linearization)
        shown = steps[-max_steps:] if max_steps else []
        if len(steps) > len(shown):
            lines.append(f"      ... {len(steps) - len(shown)} earlier operations")
        for s in shown:
            op = history[s.index]
            lines.append(f"      {s.index} client {op.client!r}: {s.description}  ({s.before} -> {s.after})")
    return lines
