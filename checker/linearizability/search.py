"""The WGL search over one partition, as a resumable generator (so partitions can be interleaved).

Algorithm (Wing & Gong, with Lowe's improvements, as in Porcupine). Call and return events are
sorted into a doubly linked list (calls before returns at equal times). The search walks the list
from its head: a call whose operation is legal in the current state is linearized (its call and
return entries are lifted out of the list, and the search restarts at the head); reaching a return
entry means that operation should already have been linearized, so the search backtracks (pops the
last linearized operation, unlifts it and tries the next candidate after it). A cache of
(linearized set, model state) pairs prunes every configuration already explored. The search is
iterative (no recursion limit).

The list is kept as four lists, one per kind of node (completed read-only calls, other completed
calls, returns, pending calls), each in time order: the candidates of a configuration are the calls
ranked before the first node of the return list, so the search never steps over a node that cannot
be one (on Porcupine's c50 kv logs a third of the steps did), and after a read-only operation is
linearized (the state unchanged) the scan goes on after it instead of from the head.

The linearized set is a Python int bitset, stored compactly as ``(m, r, p)``: the completed
operations with the ``m`` earliest returns are all linearized, ``r`` holds the bits of later
completed ones relative to ``m``, and ``p`` those of pending ones, so cache keys stay small on long
histories. Completed read-only operations that are legal are linearized greedily; configurations
that only add pending operations to one already explored are pruned (subsumption); and identical
pending operations are used in call order (symmetry). When the model names the one state each
read-only operation can be legal in (``Model.read_value``: a read of a register or a kv get with a
known result), completed reads are kept in one list per value and the scan of a configuration
walks only the list of its state (:class:`_Events`): the same exploration without the steps over
reads that cannot be legal (on Porcupine's c50 kv logs, 44% of the steps), and a configuration
whose state no read needs goes straight to the other candidates.

Dead reads. When the model also says which operations reset the state and which states can follow
one another without a reset (``Model.resets``/``reaches``; kv: a put resets, an append only extends
the value), a candidate is dropped as if illegal when the configuration it leads to is dead: the
operation whose return comes first is a read of a value that cannot follow the new state, and every
operation that resets and is called before that return is linearized already (it must precede every
operation called after it returned, so only those can run in between). On Porcupine's append-heavy
c50 logs this halves the search steps and a third of the check time; an ILLEGAL verdict's longest
prefix is still recorded as if the dropped configuration had been entered, with that read blocked.

Everything here is pure apart from calling the model's ``step`` (and handing a large cache to the
background reaper when a search ends); operations are numbered locally
(0..n-1, the order of the arrays passed in). This is the checker's hot path
(``benchmarks/check.py``): :func:`search`'s loop (:func:`_walk`) is one function that keeps what
it touches per step in local variables (a function call per backtrack cost 10% on
backtracking-heavy searches); the set-up, the cache and the longest-prefix record are separate
classes.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Hashable, Sequence
from typing import Any

from checker.linearizability.reaper import bury
from checker.linearizability.result import Verdict
from checker.models import NOT_A_READ

__all__ = ["SearchOutcome", "StepFailed", "StepFn", "Stop", "search"]

#: What a search returns: (verdict, linearization or longest prefix as local indices, blocked
#: operation (local index) or None, model state after that prefix, search steps taken).
SearchOutcome = tuple[Verdict, list[int], int | None, Any, int]

#: A model's step function: ``step(state, input, output) -> (legal, next state)``.
StepFn = Callable[[Any, Any, Any], tuple[bool, Any]]

#: Value lists (:class:`_Events`) are built for a partition with at least this many completed
#: read-only operations: with fewer, stepping over the illegal ones costs less than the lists (the
#: explorer's 2-4 operation checks were 5-10% slower with them).
VALUE_READS_MIN = 8

# Search phases of one configuration: read-only completed, other completed, and pending candidates.
_SCAN, _WALK, _PENDING = 0, 1, 2


class Stop(Exception):
    """Thrown into a search generator to end it with UNKNOWN and its evidence so far."""


class StepFailed(Exception):
    """The model raised ``error`` on the operation with local index ``local``."""

    def __init__(self, local: int, error: BaseException) -> None:
        super().__init__(local, error)
        self.local = local
        self.error = error


class _Operations:
    """Per-operation facts the search looks up (pure; built once per search).

    ``cidx[j]``: completed operation ``j``'s number in return order (-1 for pending ones);
    ``pbit[j]``: pending operation ``j``'s bit in ``p`` (0 for completed ones); ``twin[j]``: the bit
    of the previous pending operation with the same input, or 0 (symmetry reduction); ``ro[j]``:
    ``j`` is completed and read-only.
    """

    def __init__(self, call_t: Sequence[Any], ret_t: Sequence[Any], inputs: Sequence[Any],
                 read_only: Sequence[bool]) -> None:
        n = len(call_t)
        completed = [j for j in range(n) if ret_t[j] is not None]
        completed.sort(key=ret_t.__getitem__)  # stable: equal returns in index order
        self.n_completed = len(completed)
        self.cidx = cidx = [-1] * n
        for k, j in enumerate(completed):
            cidx[j] = k
        self.pbit = pbit = [0] * n
        self.twin = twin = [0] * n
        last_of: dict[Hashable, int] = {}
        pending = [j for j in range(n) if ret_t[j] is None] if len(completed) < n else []
        pending.sort(key=call_t.__getitem__)
        for k, j in enumerate(pending):
            pbit[j] = 1 << k
            try:
                prev = last_of.get(inputs[j])
                last_of[inputs[j]] = j
            except TypeError:  # unhashable compiled input: no symmetry reduction
                prev = None
            if prev is not None:
                twin[j] = pbit[prev]
        self.ro = [bool(read_only[j]) and ret_t[j] is not None for j in range(n)]


class _Events:
    """The event lists, as arrays of links (``nxt``, ``prv``) over node numbers, one list per kind
    of node so the search never walks over nodes that cannot be candidates.

    Operation ``j`` has call node ``j`` and, when completed, return node ``n + j``. Four lists, each
    in time order between its head and tail nodes: completed read-only calls (``rhead``/``rtail``,
    2n and 2n + 1), other completed calls (``whead``/``wtail``, 2n + 2 and 2n + 3), returns
    (``ehead``/``etail``, 2n + 4 and 2n + 5) and pending calls (``phead``/``ptail``, 2n + 6 and
    2n + 7). ``rank[node]``: the node's position in time order (calls before returns at equal
    times); every tail ranks after every event, so a call is a candidate exactly when its rank is
    below the rank of the first node of the return list.

    Value reads. When ``read_values`` gives every completed read-only operation a value (the one
    state it can be legal in, :data:`NOT_A_READ` for none), those calls are kept in one list per
    value instead (heads 2n + 8 + 2k, in ``rheads``: value -> head) and the read-only list stays
    empty: the scan of a configuration in state ``s`` walks ``rheads[s]`` only, the same legal reads
    in the same order, without stepping over the reads that cannot be legal. ``rheads`` is empty
    otherwise (one read-only operation without a value keeps them all in one list).
    """

    def __init__(self, call_t: Sequence[Any], ret_t: Sequence[Any], read_only: Sequence[bool],
                 read_values: Sequence[Any] | None = None) -> None:
        n = self.n = len(call_t)
        times = [*call_t, *ret_t]
        events = [node for node in range(2 * n) if times[node] is not None]
        # Node order breaks ties as wanted: calls (< n) before returns, each in index order.
        events.sort(key=times.__getitem__)
        rhead, whead, ehead, phead = 2 * n, 2 * n + 2, 2 * n + 4, 2 * n + 6
        self.rhead, self.whead, self.ehead, self.phead = rhead, whead, ehead, phead
        self.rheads = rheads = _value_heads(read_only, read_values, 2 * n + 8)
        size = 2 * n + 8 + 2 * len(rheads)
        self.nxt, self.prv, self.rank = nxt, prv, rank = [0] * size, [0] * size, [len(events)] * size
        last = {head: head for head in (rhead, whead, ehead, phead, *rheads.values())}  # each list's last node
        for k, node in enumerate(events):
            rank[node] = k
            if node >= n:
                head = ehead
            elif ret_t[node] is None:
                head = phead
            elif not read_only[node]:
                head = whead
            else:
                head = rheads[read_values[node]] if rheads else rhead  # type: ignore[index]
            nxt[last[head]], prv[node], last[head] = node, last[head], node
        for head, tail_node in last.items():
            nxt[tail_node], prv[head + 1] = head + 1, tail_node

    def first_return(self) -> int | None:
        """The local index of the operation whose return comes first in the list, or None."""
        node = self.nxt[self.ehead]
        return node - self.n if node != self.ehead + 1 else None


def _value_heads(read_only: Sequence[bool], read_values: Sequence[Any] | None, first: int) -> dict[Any, int]:
    """The head node of each read value's list (numbered from ``first``, two nodes per value), or
    an empty dict when ``read_values`` is None, a read-only operation has none, or there are fewer
    than :data:`VALUE_READS_MIN` read-only operations (pure)."""
    heads: dict[Any, int] = {}
    if read_values is None or sum(read_only) < VALUE_READS_MIN:
        return heads
    for value, ro in zip(read_values, read_only):
        if ro:
            if value is NOT_A_READ:
                return {}
            if value not in heads:
                heads[value] = first + 2 * len(heads)
    return heads


class _Seen:
    """Lowe's cache of explored configurations ``(m, r, p, state)`` of a search without pending
    operations (``p`` is always 0): a set of ``(m, r, state)``."""

    def __init__(self) -> None:
        self.configs: set[tuple[int, int, Any]] = set()

    def add(self, m: int, r: int, p: int, state: Any) -> bool:
        """Record the configuration; True when it was not seen before."""
        seen = self.configs
        before = len(seen)
        seen.add((m, r, state))
        return len(seen) != before

    def bury(self) -> None:
        """Hand the (possibly huge) cache to the background reaper (:func:`reaper.bury`)."""
        bury(self.configs)


class _SeenSubsuming:
    """The cache of a search with pending operations: it maps ``(m, r, state)`` to the pending sets
    reached with it, and :meth:`add` applies subsumption: a configuration is not fresh when one
    with a subset of its pending operations was reached before (everything that can follow the
    latter can follow the former)."""

    def __init__(self) -> None:
        self.configs: dict[tuple[int, int, Any], list[int]] = {}

    def add(self, m: int, r: int, p: int, state: Any) -> bool:
        """Record the configuration; True unless one with a subset of ``p`` was seen before."""
        key = (m, r, state)
        pendings = self.configs.get(key)
        if pendings is None:
            self.configs[key] = [p]
            return True
        for q in pendings:
            if q | p == p:
                return False
        pendings[:] = [q for q in pendings if q | p != q]
        pendings.append(p)
        return True

    def bury(self) -> None:
        """Hand the (possibly huge) cache to the background reaper (:func:`reaper.bury`)."""
        bury(self.configs)


class _Longest:
    """The longest linearizable prefix found so far (local indices), and what blocked it.

    ``best[:common]`` equals the first ``common`` operations on the search stack, so recording a
    new longest prefix copies only what changed since the last one.
    """

    def __init__(self, state: Any) -> None:
        self.best: list[int] = []
        self.length = -1
        self.common = 0
        self.state = state
        self.blocked: int | None = None

    def record(self, stack: list[tuple], state: Any, blocked: int | None) -> None:
        """The stack (``state`` after it) is longer than any prefix before: keep it."""
        depth = len(stack)
        del self.best[self.common:]
        self.best.extend([s[0] for s in stack[self.common:]])
        self.length = self.common = depth
        self.state = state
        self.blocked = blocked

    def record_one_more(self, stack: list[tuple], entry: int, state: Any, blocked: int) -> None:
        """The stack with ``entry`` linearized on top (``state`` after it; not pushed: it leads to
        a dead configuration, whose first-returning read ``blocked`` cannot follow) is longer
        than any prefix before: keep it."""
        self.record(stack, state, blocked)
        self.best.append(entry)
        self.length += 1


def search(step: StepFn, state: Any, call_t: Sequence[Any], ret_t: Sequence[Any], inputs: Sequence[Any],
           outputs: Sequence[Any], read_only: Sequence[bool], read_values: Sequence[Any] | None = None,
           resets: Sequence[bool] | None = None,
           reaches: Callable[[Any, Any], bool] | None = None) -> Generator[int, int, SearchOutcome]:
    """WGL search over one partition from model state ``state``.

    Protocol: ``next(gen)`` sets the search up and yields 0 (or returns at once when there is
    nothing to search); then ``gen.send(quota)`` runs at most ``quota`` (>= 1) more search steps
    and yields the total steps taken so far, until the search ends and returns (StopIteration's
    value, a :data:`SearchOutcome`). ``gen.throw(Stop)`` at a yield ends the search with UNKNOWN
    and the evidence found so far. One step is one candidate tried. Raises :class:`StepFailed` when
    the model's ``step`` raises on an operation.

    Operation ``j`` has interval ``[call_t[j], ret_t[j]]`` (``ret_t[j]`` None: pending), compiled
    ``inputs[j]``/``outputs[j]``, and ``read_only[j]`` when it cannot change the state.
    ``read_values[j]`` (optional, from the model's ``read_value``): the one state a read-only
    operation can be legal in (``step`` is still asked), or :data:`~checker.models.NOT_A_READ`;
    given for every read-only operation, it lets the scan skip the reads of other values (same
    verdict, evidence and order of exploration, fewer steps). ``resets[j]`` and ``reaches`` (optional,
    with ``read_values``; the model's, see :class:`~checker.models.Model`): a configuration whose
    first-returning operation is a read of a value that ``reaches`` says cannot follow its state,
    while every operation that resets and may run before that read is already linearized, is
    dead: a candidate leading to it counts as illegal (the same verdict, and on an OK verdict the
    same linearization; an ILLEGAL verdict's longest prefix may be shorter).

    The candidates for the next operation are the calls that precede the first remaining return
    event. In each configuration they are tried in three phases: (scan) a read-only completed
    candidate that is legal is linearized at once and, should that fail, the configuration fails
    (it could be moved to the front of any linearization that follows); (walk) the other completed
    candidates, in event order; (pending) pending candidates, in call order, so configurations that
    use few pending operations are explored before those that use many.
    """
    ops = _Operations(call_t, ret_t, inputs, read_only)
    if ops.n_completed == 0:
        return Verdict.OK, [], None, state, 0
    events = _Events(call_t, ret_t, ops.ro, read_values)
    dead = None if resets is None or reaches is None or read_values is None else \
        _DeadReads(events, ops.ro, read_values, resets, reaches)
    try:
        stop_at = yield 0
    except Stop:
        return Verdict.UNKNOWN, [], None, state, 0
    return (yield from _walk(step, state, ops, events, inputs, outputs, stop_at, dead))


class _DeadReads:
    """What the search needs to drop dead configurations (see :func:`search`; pure, built once):
    ``value[j]``: the state completed read ``j`` needs (:data:`NOT_A_READ` for other operations);
    ``resets[j]``; ``resets_before[k]``: how many operations that reset are called before the event
    of rank ``k`` (pending ones included); ``reaches``: the model's."""

    def __init__(self, events: _Events, ro: Sequence[bool], read_values: Sequence[Any], resets: Sequence[bool],
                 reaches: Callable[[Any, Any], bool]) -> None:
        n, rank = events.n, events.rank
        self.value = [read_values[j] if ro[j] else NOT_A_READ for j in range(n)]
        self.resets = resets
        self.reaches = reaches
        size = rank[events.ehead + 1]  # a tail's rank: the number of events
        before = [0] * (size + 1)
        for j in range(n):
            if resets[j]:
                before[rank[j] + 1] += 1
        for k in range(1, size + 1):
            before[k] += before[k - 1]
        self.resets_before = before


def _anything(state: Any, value: Any) -> bool:
    """A ``reaches`` that never rules anything out (the search without dead reads)."""
    return True


def _stopped(stack: list[tuple], state: Any, longest: _Longest, seen: _Seen | _SeenSubsuming,
             steps: int) -> SearchOutcome:
    """The outcome of a search stopped from outside (:class:`Stop`): UNKNOWN, with the longest
    prefix found (the stack, ``state`` after it, when that is the longest)."""
    if len(stack) > longest.length:
        longest.record(stack, state, None)
    seen.bury()
    return Verdict.UNKNOWN, longest.best, longest.blocked, longest.state, steps


def _bind(ops: _Operations, events: _Events, dead: _DeadReads | None, state: Any) -> tuple:
    """What :func:`_walk` binds to local variables before its loop (pure; a fresh cache and
    longest-prefix record). The cache: a set of (m, r, state) without pending operations (tested
    inline in the loop), else the subsuming dict; no reference cycles, so it is freed as soon as
    it is unused."""
    pending = any(ops.pbit)
    seen: _Seen | _SeenSubsuming = _SeenSubsuming() if pending else _Seen()
    resets, needs, resets_before, reaches = (None, [], [], _anything) if dead is None else \
        (dead.resets, dead.value, dead.resets_before, dead.reaches)
    return (len(ops.cidx), ops.n_completed, ops.twin, ops.cidx, ops.pbit, events.nxt, events.prv, events.rank,
            events.rhead, events.whead, events.ehead, events.phead, events.rheads.get if events.rheads else None,
            pending, seen, seen.add, seen.configs if isinstance(seen, _Seen) else None, _Longest(state),
            resets, needs, resets_before, reaches)


def _walk(step: StepFn, state: Any, ops: _Operations, events: _Events, inputs: Sequence[Any],
          outputs: Sequence[Any], stop_at: int, dead: _DeadReads | None = None) -> Generator[int, int, SearchOutcome]:
    """The search loop of :func:`search`, after its first yield (same protocol from there on):
    runs ``stop_at`` steps before yielding. The first inner loop tries the candidates of one
    configuration (with ``dead``, one leading to a dead configuration counts as illegal); leaving
    it means they all failed, and the second backtracks until a configuration has candidates left,
    recording the longest prefix on the way (one function: see the module docstring)."""
    (n, n_completed, twin, cidx, pbit, nxt, prv, rank, rhead, whead, ehead, phead, value_head, pending, seen, fresh,
     plain, longest, resets, needs, resets_before, reaches) = _bind(ops, events, dead, state)
    stack: list[tuple] = []
    push, pop = stack.append, stack.pop
    m = r = p = steps = done_resets = 0  # done_resets: operations that reset on the stack
    head = rhead if value_head is None else value_head(state)  # the scan walks the state's value list
    entry, phase = (nxt[whead], _WALK) if head is None else (nxt[head], _SCAN)
    bound, returns_end = rank[nxt[ehead]], 2 * n  # the first return's rank; return nodes are n .. 2n - 1
    try:
        while True:
            while True:
                if steps == stop_at:
                    try:
                        stop_at = steps + (yield steps)
                    except Stop:
                        return _stopped(stack, state, longest, seen, steps)
                steps += 1
                if rank[entry] >= bound:  # the end of this phase's candidates (called before the first return)
                    if phase == _SCAN:  # completed read-only candidates done: the other completed ones
                        phase, entry = _WALK, nxt[whead]
                    elif phase == _WALK and pending:  # then the pending ones
                        phase, entry = _PENDING, nxt[phead]
                    else:
                        break  # no candidate left
                    continue
                if phase == _PENDING:
                    tw = twin[entry]
                    if tw and not p & tw:
                        entry = nxt[entry]
                        continue
                legal, new_state = step(state, inputs[entry], outputs[entry])
                if not legal:
                    entry = nxt[entry]
                    continue
                if resets is not None:  # is the configuration it leads to dead? (``first``: its first return)
                    first = nxt[ehead] if nxt[ehead] != entry + n else nxt[entry + n]
                    need = needs[first - n] if first < returns_end else NOT_A_READ
                    if (need is not NOT_A_READ and need != new_state
                            and resets_before[rank[first]] == done_resets + resets[entry]
                            and not reaches(new_state, need)):
                        if len(stack) >= longest.length:  # the evidence: as if it had been entered
                            longest.record_one_more(stack, entry, new_state, first - n)
                        if phase == _SCAN:
                            break  # a legal read leads nowhere: this configuration fails too
                        entry = nxt[entry]
                        continue
                c = cidx[entry]
                if c < 0:
                    nm, nr, np_ = m, r, p | pbit[entry]
                elif c == m:  # the run of ones at the bottom of r joins the prefix m
                    nr = r | 1
                    t = (~nr & (nr + 1)).bit_length() - 1
                    nm, nr, np_ = m + t, nr >> t, p
                else:
                    nm, nr, np_ = m, r | (1 << (c - m)), p
                if plain is not None:  # _Seen.add inline (one hash of the key)
                    before = len(plain)
                    plain.add((nm, nr, new_state))
                    is_fresh = len(plain) != before
                else:
                    is_fresh = fresh(nm, nr, np_, new_state)
                if is_fresh:
                    depth = len(stack)
                    if longest.common == depth and depth < longest.length and longest.best[depth] == entry:
                        longest.common += 1
                    a, after = prv[entry], nxt[entry]  # lift the call node out of its list
                    nxt[a] = after
                    prv[after] = a
                    if c >= 0:  # and the return node of a completed operation
                        a, b = prv[entry + n], nxt[entry + n]
                        nxt[a] = b
                        prv[b] = a
                        push((entry, entry + n, state, m, r, p, phase))
                    else:
                        push((entry, None, state, m, r, p, phase))
                    state, m, r, p = new_state, nm, nr, np_
                    if m == n_completed:
                        seen.bury()
                        return Verdict.OK, [s[0] for s in stack], None, state, steps
                    bound = rank[nxt[ehead]]
                    if resets is not None and resets[entry]:
                        done_resets += 1
                    if phase == _SCAN:  # a read left the state as it was: the reads before it stay illegal
                        entry = after  # (and new ones, after a later first return, come after it)
                    else:
                        head = rhead if value_head is None else value_head(state)
                        entry, phase = (nxt[whead], _WALK) if head is None else (nxt[head], _SCAN)
                    continue
                if phase == _SCAN:  # a legal read leads to a configuration explored before: this one fails too
                    break
                entry = nxt[entry]
            while True:  # backtrack
                depth = len(stack)
                if depth > longest.length:
                    longest.record(stack, state, events.first_return())
                if not depth:
                    seen.bury()
                    return Verdict.ILLEGAL, longest.best, longest.blocked, longest.state, steps
                node, ret_node, state, m, r, p, phase = pop()
                if resets is not None and resets[node]:
                    done_resets -= 1
                if longest.common >= depth:
                    longest.common = depth - 1
                if ret_node is not None:  # unlift the return node first, then the call node
                    nxt[prv[ret_node]] = ret_node
                    prv[nxt[ret_node]] = ret_node
                nxt[prv[node]] = node
                prv[nxt[node]] = node
                if phase != _SCAN:
                    break
            entry, bound = nxt[node], rank[nxt[ehead]]
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        raise StepFailed(entry, exc) from None
