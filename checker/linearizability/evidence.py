"""Evidence a person can read: replaying a (partial) linearization, and explaining a verdict.

:func:`trace` replays history operations through a model step by step; :func:`explain` turns a
:class:`~checker.linearizability.result.CheckResult` into lines of text (the verdict, and for each
partition that is not OK the operation that cannot be linearized and the tail of the longest
linearizable prefix). Pure: both return values and print nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from checker.history import UNKNOWN_OUTPUT, History, Operation
from checker.linearizability.result import CheckResult, PartitionResult, Verdict, describe
from checker.models import Model, NondeterministicModel, get_model

__all__ = ["Step", "explain", "trace"]


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
    mdl = get_model(model if model is not None else cast(str, history.model))  # None: get_model names it
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
    """``[call, ret]`` of ``op`` as text (``pending`` for a missing return)."""
    return f"[{op.call!r}, {'pending' if op.ret is None else repr(op.ret)}]"


_HEADS = {
    Verdict.OK: "OK: the history is linearizable",
    Verdict.ILLEGAL: "ILLEGAL: the history is not linearizable",
    Verdict.UNKNOWN: "UNKNOWN: no verdict",
}


def _summary_lines(result: CheckResult) -> list[str]:
    """The verdict line, the reason, and which partition failed first (when others were not needed)."""
    n_parts = len(result.partitions)
    lines = [
        f"{_HEADS[result.result]} ({result.model}, {result.operations} operations, {n_parts} "
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
    return lines


def _partition_lines(part: PartitionResult, history: History, mdl: Model, max_steps: int) -> list[str]:
    """The explanation of one partition that is not OK: what blocked it, its longest linearizable
    prefix and the last ``max_steps`` operations of that prefix replayed."""
    label = "" if part.key is None else f"partition {part.key!r}: "
    lines = []
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
        f"    longest linearizable prefix: {len(part.linearization)} of {len(part.operations)} operations, "
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


def explain(result: CheckResult, history: History, model: Model | NondeterministicModel | str | None = None,
            max_steps: int = 10) -> list[str]:
    """Lines a person can read: the verdict, and for each partition that is not OK the operation
    that cannot be linearized, the state there, and the tail of the longest linearizable prefix
    (at most ``max_steps`` operations of it; 0: none). ``model`` None: the one ``result`` names."""
    mdl = get_model(model if model is not None else result.model)
    lines = _summary_lines(result)
    for part in result.partitions:
        if part.result is Verdict.OK:
            continue
        if part.result is Verdict.UNKNOWN and not part.linearization and part.blocked is None:
            continue
        lines.extend(_partition_lines(part, history, mdl, max_steps))
    return lines
