"""Helpers shared by the explorer's tests."""

from __future__ import annotations

from checker.explore import explore


def everything(protocol, strategy: str = "dfs", **kw):
    """Every schedule of ``strategy`` over ``protocol`` (a Protocol, or a registered name with
    ``variant``/``params``): no early stop, no shrinking, with its distinct histories and the
    properties it found violated."""
    return explore(protocol, strategy, collect_histories=True, stop_on_violation=False,
                   shrink_counterexample=False, **kw)
