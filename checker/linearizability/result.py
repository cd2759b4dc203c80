"""The values a check returns: :class:`Verdict`, :class:`PartitionResult`, :class:`CheckResult`.

Pure data (frozen dataclasses) and their JSON form; :func:`describe` words an operation the way
its model does. Nothing here searches or does I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from checker.history import UNKNOWN_OUTPUT, History, Operation
from checker.models import Model, get_model

__all__ = ["ILLEGAL", "NOT_NEEDED", "OK", "UNKNOWN", "CheckResult", "PartitionResult", "Verdict", "describe"]


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
        details = [_partition_details(part, history, mdl) for part in self.partitions
                   if part.needed and (part.result is not Verdict.OK or linearizations)]
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
            "partition_results": [_partition_summary(p) for p in self.partitions],
            "details": details,
        }


def _partition_summary(part: PartitionResult) -> dict[str, Any]:
    """One entry of ``partition_results`` in :meth:`CheckResult.to_json` (pure)."""
    return {
        "key": _json_key(part.key),
        "result": part.outcome,
        "operations": len(part.operations),
        "elapsed_s": round(part.elapsed_s, 6),
        "finished_s": None if part.finished_s is None else round(part.finished_s, 6),
    }


def _partition_details(part: PartitionResult, history: History | None, mdl: Model | None) -> dict[str, Any]:
    """One entry of ``details`` in :meth:`CheckResult.to_json`: the evidence of one partition, with
    its final state described when ``mdl`` is given, and its blocked operation too when ``history``
    is (pure apart from the model's describe functions)."""
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
            d["blocked_operation"] = describe(mdl, history[part.blocked])
    return d


def _json_key(key: Hashable) -> Any:
    """A partition key as JSON: scalars as they are, anything else as its ``repr`` (pure)."""
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
