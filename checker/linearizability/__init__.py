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

The package, one concern per module (each imports only those above it in this list):

- :mod:`~checker.linearizability.result`: the values a check returns (:class:`Verdict`,
  :class:`PartitionResult`, :class:`CheckResult`) and :func:`describe`;
- :mod:`~checker.linearizability.reaper`: freeing large search caches off the verdict's path;
- :mod:`~checker.linearizability.search`: the WGL search over one partition (the algorithm, and
  its reductions, are described there);
- :mod:`~checker.linearizability.partition`: partitions as search tasks, and the interleaver that
  runs their searches round-robin under the limits;
- :mod:`~checker.linearizability.workers`: the worker processes of ``jobs > 1``;
- :mod:`~checker.linearizability.api`: :func:`check` itself (and its concurrency design);
- :mod:`~checker.linearizability.evidence`: :func:`trace` and :func:`explain`.

This module is the facade: import from here. Memory is measured by :mod:`packrat_sim.limits`.
To change :data:`ESCALATE_AFTER_S` for :func:`check`, set it on :mod:`checker.linearizability.api`.
"""

from checker.linearizability.api import DEFAULT_MEMORY_FRACTION, ESCALATE_AFTER_S, check, default_max_memory
from checker.linearizability.evidence import Step, explain, trace
from checker.linearizability.result import (
    ILLEGAL,
    NOT_NEEDED,
    OK,
    UNKNOWN,
    CheckResult,
    PartitionResult,
    Verdict,
    describe,
)
from packrat_sim.limits import current_rss
from packrat_sim.limits import physical_memory_bytes as total_memory

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
    "total_memory",
    "trace",
]
