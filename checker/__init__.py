"""Verification: linearizability of histories (and, in other modules, plan certificates and
protocol exploration).

The facade for checking a history::

    from checker import History, Operation, check, read_history
    result = check(read_history("run.history.json"), "serving", timeout=10)
    result.result  # Verdict.OK / ILLEGAL / UNKNOWN
"""

from checker.history import UNKNOWN_OUTPUT, History, HistoryError, Operation, read_history, write_history
from checker.linearizability import ILLEGAL, OK, UNKNOWN, CheckResult, Verdict, check, explain
from checker.models import MODELS, Model, ModelError, NondeterministicModel

__all__ = [
    "ILLEGAL",
    "MODELS",
    "OK",
    "UNKNOWN",
    "UNKNOWN_OUTPUT",
    "CheckResult",
    "History",
    "HistoryError",
    "Model",
    "ModelError",
    "NondeterministicModel",
    "Operation",
    "Verdict",
    "check",
    "explain",
    "read_history",
    "write_history",
]
