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
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import Any, Hashable, Iterable, Sequence

from checker.history import UNKNOWN_OUTPUT, History, Operation
from checker.models import Model, ModelError, NondeterministicModel, get_model

__all__ = [
    "ILLEGAL",
    "OK",
    "UNKNOWN",
    "CheckResult",
    "PartitionResult",
    "Step",
    "Verdict",
    "check",
    "describe",
    "explain",
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


@dataclass(frozen=True)
class PartitionResult:
    """The verdict for one partition (one key of ``model.partition``; ``key`` None when unpartitioned).

    ``operations``: history indices of the partition's operations, in call order.
    ``linearization``: history indices in linearization order: for OK a complete linearization
    (every completed operation, plus the pending ones that took effect); otherwise the longest
    linearizable prefix found. ``blocked``: for ILLEGAL, the history index of the operation that
    cannot be linearized after that prefix (the earliest-returning operation left out); for UNKNOWN,
    the same as far as the search got. ``state``: the model state after ``linearization``.
    """

    key: Hashable
    result: Verdict
    operations: tuple[int, ...]
    linearization: tuple[int, ...]
    blocked: int | None
    state: Any
    steps: int
    elapsed_s: float


@dataclass(frozen=True)
class CheckResult:
    """The verdict on a whole history, with per-partition evidence (see :func:`check`)."""

    result: Verdict
    model: str
    operations: int
    partitions: tuple[PartitionResult, ...]
    elapsed_s: float
    steps: int
    reason: str = ""

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

    def to_json(self, history: History | None = None, model: Model | str | None = None,
                linearizations: bool = False) -> dict:
        """A JSON-ready summary: result, model, operations, partitions (a count), elapsed_s, steps,
        reason, and ``details`` for every partition that is not OK (with ``linearizations=True``,
        for all of them). With ``history`` and ``model`` given, operations are also described."""
        mdl = get_model(model) if model is not None else None
        details = []
        for part in self.partitions:
            if part.result is Verdict.OK and not linearizations:
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
        return {
            "result": self.result.value,
            "model": self.model,
            "operations": self.operations,
            "partitions": len(self.partitions),
            "elapsed_s": round(self.elapsed_s, 6),
            "steps": self.steps,
            "reason": self.reason,
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


def check(
    history: History | Iterable[Operation],
    model: Model | NondeterministicModel | str | None = None,
    *,
    timeout: float | None = None,
    max_steps: int | None = None,
) -> CheckResult:
    """Check ``history`` for linearizability against ``model``.

    ``model``: a :class:`~checker.models.Model`, a nondeterministic model, or a name from
    :data:`~checker.models.MODELS`; None uses ``history.model``. ``timeout`` (seconds, wall clock)
    and ``max_steps`` (search steps over all partitions) bound the work; running out gives
    UNKNOWN, never OK. Partitions are checked in order of first appearance, each to completion
    unless time runs out, so an ILLEGAL verdict carries evidence for every partition checked.

    Raises :class:`~checker.models.ModelError` when the model is unknown or missing, or an
    operation does not fit it (naming the operation), and
    :class:`~checker.history.HistoryError` when ``history`` is a sequence that does not validate.
    """
    start = time.perf_counter()
    if not isinstance(history, History):
        history = History(history)
    if model is None:
        if history.model is None:
            raise ModelError("the history names no model; pass one (register, cas-register, kv or serving)")
        model = history.model
    mdl = get_model(model)
    deadline = None if timeout is None else start + max(0.0, float(timeout))

    ops = history.operations
    compile_op = mdl.compile
    partition = mdl.partition
    read_only = mdl.read_only
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

    results: list[PartitionResult] = []
    total_steps = 0
    verdict = Verdict.OK
    reason = ""
    for key, indices in parts.items():
        indices.sort(key=lambda i: (ops[i].call, i))
        p_start = time.perf_counter()
        if read_only is None:
            searched, ro_flags = indices, [False] * len(indices)
        else:
            searched = [i for i in indices
                        if not (ops[i].ret is None and read_only(ops[i].input, UNKNOWN_OUTPUT))]
            ro_flags = [ops[i].ret is not None and bool(read_only(ops[i].input, ops[i].output))
                        for i in searched]
        budget = None if max_steps is None else max(0, max_steps - total_steps)
        try:
            res, lin, blocked, state, steps = _search(
                mdl.step,
                mdl.init(),
                [ops[i].call for i in searched],
                [ops[i].ret for i in searched],
                [compiled[i][0] for i in searched],
                [compiled[i][1] for i in searched],
                ro_flags,
                deadline,
                budget,
            )
        except _StepFailed as exc:
            i = searched[exc.local]
            raise ModelError(
                f"operation {i} (client {ops[i].client!r}, input {_brief(ops[i].input)}): "
                f"model {mdl.name!r} failed on it: {exc.error}"
            ) from None
        total_steps += steps
        if res is Verdict.ILLEGAL:
            verdict = Verdict.ILLEGAL
        elif res is Verdict.UNKNOWN and verdict is Verdict.OK:
            verdict = Verdict.UNKNOWN
            reason = (
                f"timed out after {timeout:g} s"
                if deadline is not None and time.perf_counter() >= deadline
                else f"step budget of {max_steps} exhausted"
            )
        results.append(
            PartitionResult(
                key=key,
                result=res,
                operations=tuple(indices),
                linearization=tuple(searched[j] for j in lin),
                blocked=None if blocked is None else searched[blocked],
                state=state,
                steps=steps,
                elapsed_s=time.perf_counter() - p_start,
            )
        )
        if res is Verdict.UNKNOWN:
            # Out of time or budget: the remaining partitions are unknown too.
            for key2, idx2 in list(parts.items())[len(results):]:
                idx2.sort(key=lambda i: (ops[i].call, i))
                results.append(PartitionResult(key2, Verdict.UNKNOWN, tuple(idx2), (), None, mdl.init(), 0, 0.0))
            break
    if verdict is Verdict.ILLEGAL:
        reason = ""
    return CheckResult(
        result=verdict,
        model=mdl.name,
        operations=len(ops),
        partitions=tuple(results),
        elapsed_s=time.perf_counter() - start,
        steps=total_steps,
        reason=reason,
    )


def _brief(value: Any, limit: int = 80) -> str:
    s = repr(value)
    return s if len(s) <= limit else s[: limit - 3] + "..."


class _StepFailed(Exception):
    def __init__(self, local: int, error: BaseException) -> None:
        super().__init__(local, error)
        self.local = local
        self.error = error


_CHECK_EVERY = 1024  # search steps between deadline checks (a power of two)
_SCAN, _WALK = -2, -1  # search phases; a phase >= 0 is the pending phase (its value: a rank bound)


def _search(
    step,
    state: Any,
    call_t: Sequence[float],
    ret_t: Sequence[float | None],
    inputs: Sequence[Any],
    outputs: Sequence[Any],
    read_only: Sequence[bool],
    deadline: float | None,
    budget: int | None,
) -> tuple[Verdict, list[int], int | None, Any, int]:
    """WGL search over one partition.

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
    if (deadline is not None and time.perf_counter() >= deadline) or budget == 0:
        return Verdict.UNKNOWN, [], None, state, 0

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
    limit = budget if budget is not None else -1
    entry = nxt[head]
    phase = _SCAN
    first_ret = tail
    try:
        while True:
            steps += 1
            if not steps & (_CHECK_EVERY - 1) or steps == limit:
                if steps == limit or (deadline is not None and time.perf_counter() >= deadline):
                    if len(stack) > best_len:
                        best = [s[0] for s in stack]
                        best_state = state
                        blocked = None
                    return Verdict.UNKNOWN, best, blocked, best_state, steps
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
