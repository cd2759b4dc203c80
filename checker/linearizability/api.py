""":func:`check`: decide whether a history is linearizable, as one call.

The steps: validate the limits; compile the history into one task per partition
(:mod:`checker.linearizability.partition`); interleave their searches in this process; with
``jobs > 1``, share the partitions still undecided after :data:`ESCALATE_AFTER_S` seconds with
worker processes (:mod:`checker.linearizability.workers`); assemble the :class:`CheckResult`.

Concurrency. Each partition's search is a resumable generator run ``SLICE`` (1024) steps at a
time; partitions run round-robin in one process, so an easy ILLEGAL partition is found even behind
a hard one, and the deadline, the memory bound and cancellation are checked between slices (the
verdict returns within a few milliseconds of the deadline; a large search cache is then freed by a
background thread, since freeing tens of millions of entries takes seconds, and the cyclic garbage
collector is paused during the search for the same reason: :mod:`checker.linearizability.reaper`).
With ``jobs > 1``, partitions still undecided after :data:`ESCALATE_AFTER_S` seconds are dealt to
``jobs`` shares: this process keeps one (and its progress) and worker processes take the others.
The choice was measured (``benchmarks/check_parallel.py``, 2-CPU VM): a worker costs 0.1-0.3 s to
start (about 1 s on a loaded machine), while most histories, the 10k-operation partitioned kv
benchmark included, are decided in-process in 0.1-0.4 s, and on those processes only add their
start-up cost (with a 0.25 s threshold, jobs=2 was 3x slower than jobs=1 on it under load);
interleaving in one process gives the stop-at-first-ILLEGAL gain at no cost, and processes are
kept for partitions that stay undecided long enough to repay their start.

Small histories (the explorer checks one per schedule) first take a quick path that runs the
Interleaver's first two rounds itself, outside the collector pause and the escalation, and hands
the Interleaver, searches running, to the general path when a search needs more than one slice
(see :func:`_decide_quick`); both give the same verdict and evidence
(``tests/checker/test_linearizability_fast_paths.py``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from checker.history import History, Operation
from checker.linearizability.partition import (
    MEMORY_EVERY,
    SLICE,
    Interleaver,
    Outcome,
    StepFailed,
    Task,
    compile_partitions,
    make_task,
    step_error,
)
from checker.linearizability.reaper import collector_paused
from checker.linearizability.result import CheckResult, PartitionResult, Verdict
from checker.linearizability.workers import deal, decide_in_processes
from checker.models import MODELS, Model, ModelError, NondeterministicModel, get_model
from packrat_sim import validate
from packrat_sim.limits import DEFAULT_FRACTION, format_bytes, physical_memory_bytes

__all__ = ["DEFAULT_MEMORY_FRACTION", "ESCALATE_AFTER_S", "check", "default_max_memory", "validate_limits"]

#: With ``jobs > 1``, partitions are interleaved in this process first; those still undecided after
#: this many seconds are shared with worker processes (see the module docstring, "Concurrency").
#: :func:`check` reads it from this module (``checker.linearizability.api``) on every call.
ESCALATE_AFTER_S = 1.0

#: Histories of at most this many operations try the quick path first (see :func:`_decide_quick`).
QUICK_MAX_OPS = 32

#: Fraction of :func:`packrat_sim.limits.physical_memory_bytes` (the machine's memory, or the
#: cgroup's limit when lower) that a check may use by default (``max_memory=None``).
DEFAULT_MEMORY_FRACTION = DEFAULT_FRACTION


def default_max_memory() -> int | None:
    """The default memory bound in bytes: :data:`DEFAULT_MEMORY_FRACTION` of
    :func:`packrat_sim.limits.physical_memory_bytes`, or None when that is unknown."""
    total = physical_memory_bytes()
    return None if total is None else int(total * DEFAULT_MEMORY_FRACTION)


def _is_number(value: Any) -> bool:
    """An int or a float, and not a bool (pure)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def validate_limits(timeout: Any, max_steps: Any, jobs: Any, max_memory: Any) -> None:
    """Raise ``ValueError`` naming the first limit of :func:`check` that is out of range."""
    if timeout is not None and not (_is_number(timeout) and math.isfinite(timeout) and timeout >= 0):
        raise ValueError(f"timeout must be a finite number of seconds >= 0 (or None), not {timeout!r}")
    if max_steps is not None and (not validate.is_integer(max_steps) or max_steps < 0):
        raise ValueError(f"max_steps must be an integer >= 0 (or None), not {max_steps!r}")
    if not validate.is_integer(jobs) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, not {jobs!r}")
    if max_memory is not None and not (_is_number(max_memory) and max_memory > 0):
        raise ValueError(f"max_memory must be a number of bytes > 0 (or None: the default), not {max_memory!r}")


@dataclass(frozen=True)
class _Settings:
    """One call's validated settings; times are this process's ``perf_counter`` seconds."""

    start: float
    deadline: float | None
    timeout: float | None
    max_steps: int | None
    max_memory: float | None
    jobs: int
    all_partitions: bool
    cancel: Any


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
    every ``SLICE`` search steps), ``max_steps`` (search steps over all partitions),
    ``max_memory`` (bytes of resident memory the search may add to the process, measured every
    ``MEMORY_EVERY`` slices from the first such measurement; with workers, every process gets an
    equal share; None: :func:`default_max_memory`, half of RAM), and ``cancel`` (an object whose
    ``is_set()`` becomes true, such as a ``threading.Event``).

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
    validate_limits(timeout, max_steps, jobs, max_memory)
    history, mdl = _history_and_model(history, model)
    run = _Settings(start=start, deadline=None if timeout is None else start + float(timeout), timeout=timeout,
                    max_steps=max_steps, max_memory=default_max_memory() if max_memory is None else max_memory,
                    jobs=jobs, all_partitions=all_partitions, cancel=cancel)
    ops = history.operations
    tasks = [make_task(mdl, key, rows) for key, rows in compile_partitions(ops, mdl).items()]
    outcomes = [Outcome() for _ in tasks]
    inter = _interleaver(mdl, tasks, outcomes, run)
    stop = _decide_quick(mdl, ops, inter, run)
    if stop is not None:
        return _assemble(mdl, ops, tasks, outcomes, stop, run, 1, "in-process")
    stop, workers_used, mode = _decide(mdl, ops, tasks, outcomes, run, inter)
    return _assemble(mdl, ops, tasks, outcomes, stop, run, workers_used, mode)


def _history_and_model(history: History | Iterable[Operation],
                       model: Model | NondeterministicModel | str | None) -> tuple[History, Model]:
    """``history`` as a :class:`History` (validated) and the model to check it against."""
    if not isinstance(history, History):
        history = History(history)
    if model is None:
        if history.model is None:
            raise ModelError("the history names no model; pass one (register, cas-register, kv or serving)")
        model = history.model
    return history, get_model(model)


def _interleaver(mdl: Model, tasks: list[Task], outcomes: list[Outcome], run: _Settings) -> Interleaver:
    """A fresh :class:`Interleaver` over every task, filling ``outcomes``, with ``run``'s limits."""
    return Interleaver(tasks, outcomes, mdl, start=run.start, deadline=run.deadline, max_steps=run.max_steps,
                       max_memory=run.max_memory, all_partitions=run.all_partitions, cancel=run.cancel)


def _is_quick(ops: Sequence[Operation], tasks: Sequence[Task], run: _Settings) -> bool:
    """Whether the quick path applies: at most :data:`QUICK_MAX_OPS` operations, at most half of
    :data:`MEMORY_EVERY` partitions (so its two rounds take no memory measurement) and no step
    budget (pure)."""
    return len(ops) <= QUICK_MAX_OPS and 2 * len(tasks) <= MEMORY_EVERY and run.max_steps is None


def _decide_quick(mdl: Model, ops: Sequence[Operation], inter: Interleaver, run: _Settings) -> str | None:
    """The quick path for small histories (see :func:`_is_quick`; the explorer checks one per
    schedule): ``inter``'s first two rounds by :meth:`Interleaver.turn` (one starts every search,
    the next runs a slice of :data:`SLICE` steps of each still undecided), outside the collector
    pause and the escalation of :func:`_decide`. ``inter`` must be fresh. Returns why it stopped
    (``"done"``, ``"illegal"``, or a limit's reason, as :meth:`Interleaver.run` would), with
    ``inter.outcomes`` filled; None when the quick path does not apply (``inter`` untouched) or a
    search needs more than one slice: ``inter`` then goes on in :func:`_decide`, its searches,
    outcomes and rotation kept, as if it had run there from the start. Raises ModelError when the
    model fails on an operation."""
    if not _is_quick(ops, inter.tasks, run):
        return None
    try:
        for _ in range(2):
            for _ in range(len(inter.active)):
                stop = inter.turn(SLICE)
                if stop is not None:
                    return stop
    except StepFailed as exc:
        assert inter.failed_task is not None
        raise step_error(mdl, inter.tasks[inter.failed_task], ops, exc) from None
    return None if inter.active else "done"


def _decide(mdl: Model, ops: Sequence[Operation], tasks: list[Task], outcomes: list[Outcome], run: _Settings,
            inter: Interleaver) -> tuple[str, int, str]:
    """Run the partitions' searches with ``inter`` (over ``tasks``, filling ``outcomes``; fresh, or
    as :func:`_decide_quick` left it). Returns (why it stopped, processes that searched,
    ``"in-process"`` or ``"processes"``). Raises ModelError when the model fails on an operation."""
    model_name = mdl.name if MODELS.get(mdl.name) is mdl else None
    can_fork = run.jobs > 1 and len(tasks) > 1 and run.max_steps is None and model_name in MODELS
    with collector_paused():
        try:
            stop = inter.run(until=run.start + ESCALATE_AFTER_S if can_fork else None)
            if stop == "paused" and len(inter.active) > 1:
                assert model_name is not None
                return (*_escalate(model_name, inter, tasks, outcomes, run), "processes")
            if stop == "paused":
                stop = inter.run()
        except StepFailed as exc:
            assert inter.failed_task is not None
            raise step_error(mdl, tasks[inter.failed_task], ops, exc) from None
    return stop, 1, "in-process"


def _escalate(model_name: str, inter: Interleaver, tasks: list[Task], outcomes: list[Outcome],
              run: _Settings) -> tuple[str, int]:
    """Deal the undecided partitions to ``run.jobs`` shares: ``inter`` keeps the first (and its
    progress), worker processes decide the others. Returns (why it stopped, processes used)."""
    undecided = sorted(inter.active)
    workers_used = min(run.jobs, len(undecided))
    bins = [[undecided[k] for k in b] for b in deal([len(tasks[i].searched) for i in undecided], workers_used)]
    inter.drop(keep=bins[0])
    stop = decide_in_processes(
        model_name, [[(i, tasks[i]) for i in b] for b in bins[1:]], outcomes, local=inter, start=run.start,
        deadline=run.deadline, max_memory=run.max_memory, all_partitions=run.all_partitions, cancel=run.cancel,
    )
    return stop, workers_used


def _partition_results(mdl: Model, tasks: Sequence[Task], outcomes: Sequence[Outcome],
                       stopped_early: bool) -> tuple[PartitionResult, ...]:
    """Each partition's :class:`PartitionResult` (undecided ones UNKNOWN; with ``stopped_early``,
    at the first ILLEGAL, those are also not needed)."""
    results = []
    for task, out in zip(tasks, outcomes):
        decided = out.result in (Verdict.OK, Verdict.ILLEGAL)
        results.append(PartitionResult(
            key=task.key,
            result=out.result if decided and out.result is not None else Verdict.UNKNOWN,
            operations=task.indices,
            linearization=out.linearization,
            blocked=out.blocked,
            state=mdl.init() if out.state is None else out.state,
            steps=out.steps,
            elapsed_s=out.elapsed_s,
            needed=decided or not stopped_early,
            finished_s=out.finished_s if decided else None,
        ))
    return tuple(results)


def _unknown_reason(stop: str, run: _Settings) -> str:
    """Why the check gave UNKNOWN, in words, from the drivers' stop reason."""
    if stop == "deadline":
        return f"timed out after {run.timeout:g} s" if run.timeout is not None else "timed out"
    if stop == "budget":
        return f"step budget of {run.max_steps} exhausted"
    if stop == "memory":
        bound = format_bytes(run.max_memory or 0, compact=True)
        return f"memory bound of {bound} reached (the search's cache grew too large)"
    return {"cancelled": "cancelled", "worker failed": "a worker process failed"}.get(stop, f"stopped ({stop})")


def _assemble(mdl: Model, ops: Sequence[Operation], tasks: Sequence[Task], outcomes: Sequence[Outcome],
              stop: str, run: _Settings, jobs: int, mode: str) -> CheckResult:
    """The :class:`CheckResult`: ILLEGAL if a partition is, else UNKNOWN if one is undecided, else OK.
    The first failure is the partition found ILLEGAL first in time (wherever it was found)."""
    illegal_at = [(o.finished_s or 0.0, i) for i, o in enumerate(outcomes) if o.result is Verdict.ILLEGAL]
    first_failure = min(illegal_at)[1] if illegal_at else None
    results = _partition_results(mdl, tasks, outcomes, first_failure is not None and not run.all_partitions)
    verdicts = {p.result for p in results}
    if Verdict.ILLEGAL in verdicts:
        verdict, reason = Verdict.ILLEGAL, ""
    elif Verdict.UNKNOWN in verdicts:
        verdict, reason = Verdict.UNKNOWN, _unknown_reason(stop, run)
    else:
        verdict, reason = Verdict.OK, ""
    return CheckResult(
        result=verdict,
        model=mdl.name,
        operations=len(ops),
        partitions=results,
        elapsed_s=time.perf_counter() - run.start,
        steps=sum(p.steps for p in results),
        reason=reason,
        first_failure=first_failure,
        jobs=jobs,
        mode=mode,
    )
