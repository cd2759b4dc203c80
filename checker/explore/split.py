"""Schedule exploration split over workers (any engine of ``packrat_sim.engines`` or ``packrat_sim/engines/ray.py``).

Three ways to divide :func:`checker.explore.explore`'s work:

* **Walks** (``random``, ``pct``): independent given their seeds. The split runs ``jobs``
  walk batches, batch k with seed ``seed + k`` and its share of ``max_schedules`` (the
  first ``max_schedules % jobs`` batches get one more). The merged result is, by
  construction, the one a single process gets running the same batches one after the other
  (:func:`walk_jobs` + :func:`run_job` in a loop): schedules and transitions summed,
  distinct histories unioned, the first violation the lowest batch's. (It is *not* the
  single ``explore(seed=S, max_schedules=M)`` run: one seed drives one random stream.)
* **Hand-off** (the DPOR family: ``dpor``, ``transdpor``, ``keyaware``, ``ired``, ``dpired``,
  ``dpliviola``, after a first slice, :func:`handoff_split`): the search first runs whole in
  this process (:data:`SPLIT_AFTER_S`); a search done by then is the answer. Else the backtrack
  points still open on its stack are handed to the workers with the frames above them (the
  steps taken, sleep and backtrack sets), and each worker resumes the search exactly there
  (:func:`run_handoff`); a race with a step above the point adds a backtrack point there,
  which the worker reports and the driver hands out in the next round. A job that runs longer
  than :data:`JOB_SLICE_S` stops at rest and hands its own open points back. The state cache
  (stateful DPOR: each explored state's sleep set and summary) is shared: the driver's slice
  and every job write the entries they closed to a store that every worker reads before its
  next job (entries travel by value and are re-keyed where read: see ``export_entries``).
  Merged as below; verdict and distinct histories equal the single-process run's (tested on
  every shipped protocol and variant), and so does the set of schedules of a stateless search
  (every schedule once). ``states`` is the sum over jobs (a prefix's states count per job).
* **Subtrees** (``dfs``, ``exhaustive``, and the DPOR family with ``frontier_depth`` or
  ``split_after_s=0``): the driver
  walks the schedule tree to a frontier depth d (checking invariants on every state and
  judging the histories of schedules that end above d); each distinct frontier state's
  prefix becomes a job that runs the strategy from that state. Merged: schedules and
  transitions summed, distinct histories unioned, the first violation the one of the
  earliest prefix in the driver's (depth-first, enabled-event) order, shrunk and replayed
  from the initial state. Verdict and distinct histories equal the single-process run's
  (tested on every shipped protocol and variant). ``states`` is the sum over jobs: subtrees
  have their own visited sets, so a state reachable under two prefixes counts (and is
  explored) twice, except that ``dfs`` jobs running in the same worker process share the
  states explored completely by that process's earlier jobs (see ``_EXPLORED``), so one
  worker does about the single-process work and two workers only duplicate what both reach.

What travels to a job: the protocol by name, variant and parameters (rebuilt in the
worker), the prefix (a tuple of :class:`~checker.actors.Event`, small) or the seed, and
the options; what comes back: counts, the set of distinct history keys, and at most one
violation's path.

The subtree jobs run the explorer's own strategy functions (``STRATEGY_TABLE``) on a
:class:`~checker.explore.harness.Run` whose system starts at the frontier state
(:class:`_Rooted`), so the strategies' code is the single-process code.
"""

from __future__ import annotations

import gc
import itertools
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from checker.actors import Event, Outcome, SystemState
from checker.explore.harness import Reductions
from packrat_sim import validate
from packrat_sim.errors import PackratError

WALK_STRATEGIES = frozenset({"random", "pct"})
SUBTREE_STRATEGIES = frozenset({"dfs", "exhaustive", "dpor", "transdpor", "keyaware", "ired", "dpired", "dpliviola"})
SPLIT_STRATEGIES = WALK_STRATEGIES | SUBTREE_STRATEGIES
MAX_FRONTIER_DEPTH = 16
#: Seconds a DPOR-family split first explores in this process, whole (as the checker does before
#: it moves partitions to workers): a search done by then (complete, or a violation found) is
#: answered as is, never split. The hand-off resumes the search where it stands, so a second is
#: enough: on 2 cores every shipped protocol costs 0.9-1.05x one process's time and a 22 s
#: search 0.6x (benchmarks/explore_split.py).
SPLIT_AFTER_S = 1.0
#: Seconds a dfs or exhaustive split (subtrees below a frontier, each explored with its own
#: visited states) first explores in this process: the subtrees repeat what they share (the
#: ABD register: twice the schedules), which a search of a few seconds does not repay.
SUBTREE_SPLIT_AFTER_S = 5.0
#: Transitions a state's exploration must have taken for its cache entry to be shared with the
#: other workers: sharing an entry costs its writer and every reader a few microseconds (the
#: state travels by value and is re-keyed where read), which a state with a small subtree
#: does not repay (re-exploring it costs about what sharing it does, and the other workers
#: mostly never reach it); the entries that save work are those of states with big subtrees.
SHARE_MIN_TRANSITIONS = 16
#: Seconds a handed-out DPOR-family job explores before it stops at rest and hands the rest of
#: its subtree back (so that one big subtree does not leave the other workers idle).
JOB_SLICE_S = 1.0


class SplitError(PackratError):
    """A split cannot run as asked (strategy, depth, jobs); the message names the value."""


@dataclass(frozen=True)
class ProtocolRef:
    """A protocol by registry name, variant and parameters (picklable; rebuilt where used)."""

    name: str
    variant: str | None = None
    params: tuple[tuple[str, Any], ...] = ()

    def build(self):
        """The protocol, built once per process and reused: a system interns the messages of
        its states, so states of two builds of one protocol are equal only within one build."""
        from checker.protocols import build

        protocol = _BUILT.get(self)
        if protocol is None:
            if len(_BUILT) >= 16:
                _BUILT.clear()
            protocol = _BUILT[self] = build(self.name, self.variant, **dict(self.params))
        return protocol


_BUILT: dict[ProtocolRef, Any] = {}


@dataclass(frozen=True)
class Options:
    """The explorer options a split passes to every job (see :func:`checker.explore.explore`)."""

    check_timeout: float | None = 10.0
    max_time: float | None = None  # seconds, per job
    depth: int | None = None  # steps per schedule, counted from the initial state
    bug_depth: int = 3
    reductions: Reductions = Reductions()


@dataclass(frozen=True)
class Job:
    """One unit of work: a walk batch (``seed``, ``schedules``) or a subtree (``prefix``)."""

    order: int
    protocol: ProtocolRef
    strategy: str
    options: Options
    prefix: tuple[Event, ...] = ()
    seed: int = 0
    schedules: int = 0
    search: str = ""  # the id of the split this job belongs to (per-process sharing, dfs)
    handoff: Handoff | None = None  # DPOR-family backtrack points handed out (run_handoff)
    store: str = ""  # hand-off jobs: the directory of the search's shared state cache
    seconds: float | None = None  # hand-off jobs: stop at rest after this long, hand the rest back


@dataclass(frozen=True)
class JobResult:
    """What a job found. ``found``: (kind, name, message, path from the initial state,
    quiescent) of its first violation, or None."""

    order: int
    schedules: int
    transitions: int
    states: int
    histories: frozenset
    unknown_histories: int
    complete: bool
    budget_hit: str
    cut: bool
    found: tuple | None = None
    first_violation_at: int | None = None
    pct_bound: float | None = None
    elapsed_s: float = 0.0
    backtrack: tuple = ()  # hand-off jobs: (path, processes) added above the job's points
    unstarted: Handoff | None = None  # hand-off jobs stopped at rest: the points not started
    stack: tuple = ()  # hand-off jobs stopped at rest: their stack (see _stack_of), handed back


@dataclass(frozen=True)
class SplitResult:
    """The merged result (``result``: a :class:`~checker.explore.ExploreResult`), with the
    split's shape: jobs, frontier depth (subtrees), workers, and per-job failures."""

    result: Any
    jobs: int
    frontier_depth: int | None
    workers: int
    engine: str
    failures: tuple[str, ...] = ()


class _Rooted:
    """A :class:`~checker.actors.System` whose initial state is ``root`` (a frontier state):
    ``initial()`` and ``start()`` answer from there (``start().sent`` lists the messages in
    flight, as if just sent); everything else is the wrapped system's."""

    def __init__(self, system, root: SystemState):
        self._system = system
        self._root = root

    def initial(self) -> SystemState:
        return self._root

    def start(self) -> Outcome:
        return Outcome(self._root, (), tuple(self._system.in_flight(self._root)), ())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._system, name)


def _new_run(protocol, options: Options, depth: int | None):
    from checker.explore.harness import Run

    return Run(protocol, None, options.max_time, depth, options.check_timeout, True, options.reductions, None)


def _found(run, prefix: tuple[Event, ...]) -> tuple | None:
    f = run.found
    if f is None:
        return None
    return (f.kind, f.name, f.message, tuple(prefix) + tuple(f.path), f.quiescent)


def run_job(job: Job) -> JobResult:
    """Run one job (in any process). Pure apart from the clock: the same job gives the same
    counts, histories and violation."""
    from checker.explore import STRATEGY_TABLE, explore
    from checker.explore.harness import Stop, gc_paused

    t0 = time.perf_counter()
    o = job.options
    if job.strategy in WALK_STRATEGIES:
        r = explore(job.protocol.name, job.strategy, variant=job.protocol.variant, params=dict(job.protocol.params),
                    max_schedules=job.schedules, max_time=o.max_time, depth=o.depth, seed=job.seed,
                    bug_depth=o.bug_depth, check_timeout=o.check_timeout, shrink_counterexample=False,
                    collect_histories=True, **asdict(o.reductions))  # (explore's keywords are its fields)
        v = r.violation
        found = None if v is None else (v.kind, v.name, v.message, tuple(v.found), v.quiescent)
        return JobResult(job.order, r.schedules, r.transitions, r.states, frozenset(r.histories or ()),
                         r.unknown_histories, False, "", False, found, r.first_violation_at, r.pct_bound,
                         time.perf_counter() - t0)
    protocol = job.protocol.build()
    system = protocol.system
    state = system.initial()
    for ev in job.prefix:
        state = system.step(state, ev).state
    depth = None if o.depth is None else max(1, o.depth - len(job.prefix))
    run = _new_run(protocol, o, depth)
    run.system = _Rooted(system, state)
    shared = None
    if job.strategy == "dfs" and o.depth is None:  # see _explored
        shared = _explored(job)
        run.seen, run.checked = shared
    seen_before, checked_before = len(run.seen), frozenset(run.checked)
    try:
        with gc_paused():
            STRATEGY_TABLE[job.strategy](run, {"seed": 0, "bug_depth": o.bug_depth, "delay_bound": 0})
    except Stop:
        pass
    complete = not run.budget_hit and not run.cut
    if shared is not None and (run.found is not None or not complete):
        _EXPLORED.clear()  # a search that stopped early leaves states seen but not explored
    return JobResult(job.order, run.schedules, run.transitions, len(run.seen) - seen_before,
                     frozenset(run.checked) - checked_before, run.unknown_histories, complete, run.budget_hit,
                     run.cut, _found(run, job.prefix), run.first_violation_at, None, time.perf_counter() - t0)


# Per process: for ``dfs``, the states (and judged histories) of the subtrees this process
# already explored *completely and without a violation*. A later dfs job of the same search
# in the same process prunes at them, exactly as the single-process DFS prunes at states
# explored earlier (everything below them was explored, and nothing below them violates):
# verdict, violations and distinct histories are unchanged; counts depend on which jobs
# shared a process. Cleared whenever a search stops early. The DPOR family is not shared
# (stateful DPOR's cache needs its summaries, not just the states).
_EXPLORED: dict[tuple, tuple[set, dict]] = {}


def _explored(job: Job) -> tuple[set, dict]:
    key = (job.search, job.protocol, job.options)
    if key not in _EXPLORED:
        _EXPLORED.clear()  # one search at a time
        _EXPLORED[key] = (set(), {})
    return _EXPLORED[key]


# ------------------------------------------------------------------------ walks


def walk_jobs(protocol: ProtocolRef, strategy: str, *, jobs: int, seed: int, max_schedules: int,
              options: Options = Options()) -> list[Job]:
    """``jobs`` walk batches: seeds ``seed .. seed + jobs - 1``, ``max_schedules`` shared out."""
    if strategy not in WALK_STRATEGIES:
        raise SplitError(f"{strategy!r} is not split by seed (walk strategies: {', '.join(sorted(WALK_STRATEGIES))})")
    if jobs < 1 or max_schedules < jobs:
        raise SplitError(f"need 1 <= jobs <= max_schedules, got jobs={jobs}, max_schedules={max_schedules}")
    base, extra = divmod(max_schedules, jobs)
    return [Job(k, protocol, strategy, options, seed=seed + k, schedules=base + (1 if k < extra else 0))
            for k in range(jobs)]


# --------------------------------------------------------------------- subtrees


@dataclass
class Frontier:
    """The driver's part of a subtree split: prefixes to hand out, and what the driver's own
    walk above the frontier found (a :class:`JobResult` with order -1)."""

    depth: int
    prefixes: list[tuple[Event, ...]]
    above: JobResult


def frontier(protocol, strategy: str, depth: int, options: Options = Options()) -> Frontier:
    """Walk the schedule tree depth-first to ``depth`` (pure; no worker involved).

    Every state above the frontier has its invariants checked; a schedule that ends above it
    is judged; a frontier state reached twice (or an orbit, with symmetry) is handed out once
    (``exhaustive``: every path is handed out). A violation above the frontier ends the walk
    (no prefixes)."""
    from checker.explore.harness import Stop

    if strategy not in SUBTREE_STRATEGIES:
        raise SplitError(f"{strategy!r} is not split into subtrees ({', '.join(sorted(SUBTREE_STRATEGIES))})")
    validate.integer(depth, "frontier depth", low=1, high=MAX_FRONTIER_DEPTH, error=SplitError)
    t0 = time.perf_counter()
    system = protocol.system
    run = _new_run(protocol, options, None)
    prune = strategy != "exhaustive"
    prefixes: list[tuple[Event, ...]] = []
    handed: set = set()
    try:
        init = system.initial()
        run.visit(init, ())
        stack: list[tuple[SystemState, tuple[Event, ...]]] = [(init, ())]
        while stack:
            state, path = stack.pop()
            evs = system.enabled(state)
            limit = options.depth
            if not evs or (limit is not None and len(path) >= limit):
                run.finish(state, list(path), not evs if prune else system.terminal(state))
                continue
            if len(path) == depth:
                key = run.key(state)
                if prune and key in handed:
                    run.schedules += 1  # joins a subtree already handed out
                    continue
                handed.add(key)
                prefixes.append(path)
                continue
            children = []
            for ev in evs:
                out = system.step(state, ev)
                run.transitions += 1
                child = path + (ev,)
                if not run.visit(out.state, child) and prune and len(child) < depth:
                    run.schedules += 1  # joins a state already explored
                    continue
                children.append((out.state, child))
            stack.extend(reversed(children))  # depth-first, in enabled order
    except Stop:
        prefixes = []
    above = JobResult(-1, run.schedules, run.transitions, len(run.seen), frozenset(run.checked),
                      run.unknown_histories, not run.budget_hit, run.budget_hit, run.cut, _found(run, ()),
                      run.first_violation_at, None, time.perf_counter() - t0)
    return Frontier(depth, prefixes, above)


def auto_depth(protocol, strategy: str, workers: int, options: Options = Options(), *, per_worker: int = 8) -> Frontier:
    """The shallowest frontier with at least ``per_worker`` prefixes per worker (or the
    deepest tried, :data:`MAX_FRONTIER_DEPTH`, or the first that ends the search)."""
    want = per_worker * max(1, workers)
    for depth in range(1, MAX_FRONTIER_DEPTH):
        best = frontier(protocol, strategy, depth, options)
        if best.above.found is not None or not best.prefixes or len(best.prefixes) >= want:
            return best
    return frontier(protocol, strategy, MAX_FRONTIER_DEPTH, options)


# ------------------------------------------------------------------- DPOR hand-off
# A DPOR-family search split where it stands: the first slice runs the real search in this
# process (Dpor.begin, then Dpor.advance until the slice is spent); the backtrack points still
# open on its stack at that moment are handed to workers, each with the frames above it (the
# steps taken, sleep and backtrack sets) so a worker resumes exactly where the search would
# have. A worker explores its point's subtree; a race it finds with a step of the handed-over
# prefix adds a backtrack point *there*, which it reports instead of exploring: the driver hands
# it out in the next round (unless it was handed out already). Points of one frame are handed
# out in a total order, each with the points before it as "explored before" (its sleep set), as
# one process explores them one after the other (points a job did not start go back with the
# same "before", so the order stands). Workers keep their state cache and judged histories
# across the jobs of one search (see _Shared). Why this stays sound is an argument, not a
# proof (every point DPOR adds is explored by someone, under a sleep set of points ordered
# before it): the tests compare verdicts, distinct histories and, stateless, the very set of
# schedules with one process on every shipped protocol, with jobs stopped and handed back.

#: the DPOR-family strategies the hand-off resumes: (IRed's rule, TransDPOR's rule, key-aware)
DPOR_SEARCHES = {
    "dpor": (False, False, False), "transdpor": (False, True, False), "keyaware": (False, True, True),
    "ired": (True, True, False), "dpired": (True, False, False), "dpliviola": (True, False, True),
}


@dataclass(frozen=True)
class Handoff:
    """Open backtrack points of one frame of a DPOR-family search, as a job
    (:func:`run_handoff`): explore processes ``points``, one after the other, from the frame
    reached by the steps ``taken`` (process ids, from the initial state); ``sleep`` and
    ``backtrack``: per frame on the way (the last is the points' frame), the sets the search had
    there; ``before``: the processes explored or handed out at that frame before the first
    point (they, and the points explored before each point, fall asleep below it where they
    commute)."""

    taken: tuple
    sleep: tuple[frozenset, ...]
    backtrack: tuple[frozenset, ...]
    before: frozenset
    points: tuple


def dpor_search(run, strategy: str):
    """The search object (:class:`~checker.explore.dpor.Dpor`, or IRed's) of ``strategy``."""
    from checker.explore.dpor import Dpor
    from checker.explore.ired import IRed

    ired, trans, keyed = DPOR_SEARCHES[strategy]
    return (IRed if ired else Dpor)(run, trans, keyed)


def _replay_prefix(search, h: Handoff) -> list:
    """Rebuild the search's stack down to the point's frame by taking ``h.taken`` from the
    initial state, with the driver's sleep and backtrack sets on every frame; the frames are
    then entered in the state cache as on the stack. Returns what to restore in the cache after
    the job (:func:`_restore`)."""
    from checker.explore import ExploreError

    stateful, search.stateful = search.stateful, False  # a prefix state is never joined
    search.begin()
    frames = search.frames
    for k, pid in enumerate(h.taken):
        frames[k].sleep = set(h.sleep[k])
        search.expand(frames[k], pid)
        if len(frames) != k + 2:
            raise ExploreError(f"a handed-out prefix does not replay: step {k} ({pid!r}) leads nowhere")
    search.stateful = stateful
    saved = []
    for k, frame in enumerate(frames):
        frame.sleep, frame.backtrack, frame.frozen = set(h.sleep[k]), set(h.backtrack[k]), False
        if stateful:
            old = search.table.get(frame.key)
            saved.append((frame.key, old, None if old is None else old.sleep))
            search.enter(frame)
    return saved


def _restore(table: dict, saved: list) -> None:
    """Undo :func:`_replay_prefix`'s entries: the prefix states leave the stack."""
    for key, old, sleep in reversed(saved):
        if old is None:
            table.pop(key, None)
        else:
            old.open, old.sleep = False, sleep


@dataclass
class _Shared:
    """What a worker process keeps from job to job of one DPOR-family search: its state cache
    (a state fully explored by an earlier job is joined, with its summary, as in one process),
    the shards of the search's store it has read, and the histories it has judged (each
    distinct history is checked once per process, not once per job)."""

    table: dict = field(default_factory=dict)
    read: set = field(default_factory=set)
    checked: dict = field(default_factory=dict)


_SHARED: dict[tuple, _Shared] = {}


def _shared(job: Job) -> _Shared:
    key = (job.search, job.protocol, job.strategy, job.options)
    if key not in _SHARED:
        _SHARED.clear()  # one search at a time
        if _in_worker():
            gc.unfreeze()  # (the last search's cache, frozen by _keep, may go)
        _SHARED[key] = _Shared()
    return _SHARED[key]


def _keep() -> None:
    """In a worker process, move what it holds now (the shared cache above all) out of the
    cyclic collector's sight until the next search (:func:`_shared`): the collector would
    otherwise rescan the whole cache after every job, which costs milliseconds a job once it has
    grown (its entries hold no cycles; reference counting frees them)."""
    if _in_worker():
        gc.freeze()


def _in_worker() -> bool:
    """Whether this process was started by :mod:`multiprocessing` (a pool's worker): only there
    do jobs freeze and unfreeze the collector; a job run in the caller's process (the serial
    engine) leaves it, and what the checker's reaper froze, alone."""
    import multiprocessing

    return multiprocessing.parent_process() is not None


# ------------------------------------------------- the state cache shared between processes
# A state's cache entry (the sleep set it was explored with, and its summary: what was raced
# below it) is what lets another process join it; a visited mark alone would not (stateful DPOR
# races the summary against the trace). Entries travel by value: the state with its network as
# envelopes (interned message ids, and the representative of a symmetric orbit, differ from
# process to process), rebuilt and re-keyed (System.canonical) where they are read. The store is
# a directory of shards (pickles) in a private temporary directory: the driver writes the
# entries of its first slice, each worker a shard per job; a worker reads, before each job, the
# shards written since its last job. An engine whose workers cannot see the directory (Ray on
# other machines) just runs without it (each worker's own cache only).


def worth_sharing(table: dict, keys) -> list:
    """The ``keys`` whose states took at least :data:`SHARE_MIN_TRANSITIONS` transitions to
    explore (closed entries of ``table``, a DPOR search's state cache, record that)."""
    get = table.get
    return [key for key in keys if getattr(get(key), "work", 0) >= SHARE_MIN_TRANSITIONS]


def export_entries(search, keys) -> list:
    """The closed entries of ``keys`` in ``search``'s cache, by value:
    ``(actors, envelopes, history, used), sleep, summary``."""
    system, table = search.system, search.table
    networks: dict = {}  # network -> its envelopes (networks repeat from state to state)
    sets: dict = {}  # one object per distinct sleep set or summary (pickled once each)
    out = []
    for key in keys:
        entry = table.get(key)
        if entry is not None and not entry.open:
            envs = networks.get(key.network)
            if envs is None:
                envs = networks[key.network] = tuple(system.in_flight(key))
            sleep = sets.setdefault(entry.sleep, entry.sleep)
            summary = sets.setdefault(entry.summary, entry.summary)
            out.append(((key.actors, envs, key.history, key.used), sleep, summary))
    return out


def import_entries(search, records) -> int:
    """Add the entries ``records`` (:func:`export_entries`) to ``search``'s cache, re-keyed in
    this process, except for states it holds already; returns how many were added."""
    from checker.explore.dpor import closed_entry

    system, table = search.system, search.table
    added = 0
    for (actors, envs, history, used), sleep, summary in records:
        state = SystemState(actors, system.network_of(envs), history, used)
        key, mapping = system.canonical(state) if search.symmetric else (state, {})
        if key not in table:
            table[key] = closed_entry(search.renamed(sleep, mapping), search.renamed(summary, mapping))
            added += 1
    return added


def _read_store(search, store: str, read: set) -> None:
    """Import the shards of ``store`` that this process has not read (nothing when the
    directory is not there)."""
    import os
    import pickle

    try:
        names = sorted(n for n in os.listdir(store) if n.endswith(".shard") and n not in read)
    except OSError:
        return
    for name in names:
        read.add(name)
        with open(os.path.join(store, name), "rb") as f:
            import_entries(search, pickle.load(f))


def _write_store(store: str, records: list, read: set) -> None:
    """Write ``records`` as a new shard of ``store`` (atomically; nothing when the directory
    is not there or there is nothing to write); this process will not read it back."""
    import os
    import pickle

    if not records or not os.path.isdir(store):
        return
    name = f"{os.getpid()}-{uuid.uuid4().hex}.shard"
    tmp = os.path.join(store, name + ".part")
    with open(tmp, "wb") as f:
        pickle.dump(records, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, os.path.join(store, name))
    read.add(name)


def run_handoff(job: Job) -> JobResult:
    """Run one handed-out backtrack point (``job.handoff``) in any process, for at most
    ``job.seconds`` (then it stops at rest and hands back its stack: ``JobResult.stack``), and
    report the backtrack points its races add to the prefix frames (``JobResult.backtrack``:
    (path, processes) per frame). With a state cache it reads the search's store first and
    adds the entries it closed to it. Pure apart from the clock and the shared cache."""
    from checker.explore.harness import Stop, gc_paused

    t0 = time.perf_counter()
    h = job.handoff
    assert h is not None  # (a hand-off job)
    protocol = job.protocol.build()
    run = _new_run(protocol, job.options, job.options.depth)
    search = dpor_search(run, job.strategy)
    shared = _shared(job)
    table = search.table = shared.table if search.stateful else {}
    run.checked = shared.checked  # (histories judged by this process's earlier jobs are not judged again)
    judged = len(shared.checked)
    added: list = []
    stack: tuple = ()
    unstarted = None
    try:
        with gc_paused():
            if search.stateful and job.store:
                _read_store(search, job.store, shared.read)
            saved = _replay_prefix(search, h)
            known = len(table)
            added, stack, unstarted = _explore_points(search, h, None if job.seconds is None else t0 + job.seconds)
            fresh = _newest(table, known)
            _restore(table, saved)
            for frame in search.frames[len(h.taken) + 1:]:  # left on the stack: handed back, not explored here
                if frame.entry is not None and table.get(frame.key) is frame.entry:
                    del table[frame.key]
            if search.stateful and job.store:
                _write_store(job.store, export_entries(search, worth_sharing(table, fresh)), shared.read)
            _keep()
    except Stop:
        table.clear()  # states left open on the stack
    except BaseException:
        table.clear()
        raise
    complete = not run.budget_hit and not run.cut
    return JobResult(job.order, run.schedules, run.transitions, len(run.seen),
                     frozenset(_newest(shared.checked, judged)), run.unknown_histories, complete,
                     run.budget_hit, run.cut, _found(run, ()), run.first_violation_at, None,
                     time.perf_counter() - t0, backtrack=tuple(added), stack=stack,
                     unstarted=unstarted)


def _newest(table: dict, known: int) -> list:
    """The keys added to ``table`` after its first ``known`` (in insertion order; read from
    the end, so the cost is the number of new keys, not the table's size)."""
    return list(itertools.islice(reversed(table), len(table) - known))[::-1]


def _explore_points(search, h: Handoff, end: float | None) -> tuple[list, tuple, Handoff | None]:
    """Explore ``h.points`` one after the other from the replayed prefix's last frame, down to
    their ends or until the clock passes ``end`` (then the search stops at rest). Returns the
    backtrack points the races added to the prefix frames, as (path, processes), the stack left
    (:func:`_stack_of`: empty when done), and the points not started (None: none)."""
    frames = search.frames
    base = len(frames)
    before = [set(f.backtrack) for f in frames]
    top = frames[-1]
    top.done = set(h.before)
    advance, clock = search.advance, time.perf_counter
    left = list(h.points)
    n = 0
    while left and not (end is not None and n and clock() >= end):
        search.expand(top, left.pop(0))
        while len(frames) > base:
            n += 1
            if end is not None and not n & 63 and clock() >= end:
                break
            advance()
        if len(frames) > base:
            break
        n += 1
    added = [(h.taken[:k], frozenset(frames[k].backtrack - before[k])) for k in range(base)
             if frames[k].backtrack - before[k]]
    stack = _stack_of(search, base) if len(frames) > base else ()
    unstarted = replace(h, before=frozenset(h.before) | set(h.points[:len(h.points) - len(left)]),
                        points=tuple(left)) if left else None
    return added, stack, unstarted


@dataclass
class _Node:
    """A frame of the search as the driver knows it: its sleep and backtrack sets, what was
    explored or handed out there, and its enabled processes' order."""

    sleep: frozenset
    backtrack: set
    assigned: set
    order: dict


class _Tree:
    """The frames of a DPOR-family search at rest that have points to hand out, by path (the
    processes taken from the initial state): the driver's stack after its first slice, and the
    stacks that jobs stopped at rest hand back."""

    def __init__(self) -> None:
        self.nodes: dict[tuple, _Node] = {}

    def add(self, taken: Sequence, frames: Sequence[tuple], start: int) -> dict:
        """Record ``frames`` (``(sleep, backtrack, done, order)``, frame ``start`` first) of the
        stack reached by ``taken``; returns their open points (path -> processes)."""
        for k, (sleep, backtrack, done, order) in enumerate(frames, start):
            self.nodes[tuple(taken[:k])] = _Node(frozenset(sleep), set(backtrack), set(done), order)
        return {tuple(taken[:k]): set(f[1]) for k, f in enumerate(frames, start)}

    def jobs(self, points: dict, make: Callable[[Handoff], Job]) -> list[Job]:
        """Jobs for the new points of each frame (``points``: path -> processes): one per frame,
        deepest frame first, its points in enabled order after everything handed out there
        before; points asleep or handed out already are dropped."""
        out = []
        for path in sorted(points, key=len, reverse=True):
            node = self.nodes[path]
            fresh = sorted((p for p in points[path] if p in node.order and p not in node.assigned
                            and p not in node.sleep), key=node.order.__getitem__)
            if not fresh:
                continue
            node.backtrack |= set(fresh)
            above = [self.nodes[path[:k]] for k in range(len(path) + 1)]
            out.append(make(Handoff(path, tuple(n.sleep for n in above),
                                    tuple(frozenset(n.backtrack | n.assigned) for n in above),
                                    frozenset(node.assigned), tuple(fresh))))
            node.assigned.update(fresh)
        return out


def _stack_of(search, start: int) -> tuple[tuple, tuple]:
    """The search's stack at rest from frame ``start`` on: (the processes taken from the
    initial state, per frame ``(sleep, backtrack, done, order)``)."""
    frames = search.frames[start:]
    return (tuple(t.pid for t in search.trace),
            tuple((frozenset(f.sleep), frozenset(f.backtrack), frozenset(f.done), f.order) for f in frames))


def dpor_slice(built, strategy: str, options: Options, seconds: float | None, steps: int | None = None):
    """Run the DPOR-family ``strategy`` on ``built`` in this process for ``seconds`` (or
    ``steps`` steps of its loop, for tests): returns ``(search, part)``, the search at rest
    (its stack empty when it finished, or a violation or the budget stopped it: ``part.found``,
    ``part.budget_hit``) and what it found so far (a :class:`JobResult` with order -1)."""
    from checker.explore.harness import Stop, gc_paused

    t0 = time.perf_counter()
    run = _new_run(built, options, options.depth)
    search = dpor_search(run, strategy)
    end = None if seconds is None else t0 + seconds
    n = 0
    try:
        with gc_paused():
            search.begin()
            frames, advance, clock = search.frames, search.advance, time.perf_counter
            while frames:
                n += 1
                if (steps is not None and n > steps) or (end is not None and not n & 63 and clock() >= end):
                    break
                advance()
    except Stop:
        pass
    part = JobResult(-1, run.schedules, run.transitions, len(run.seen), frozenset(run.checked),
                     run.unknown_histories, not run.budget_hit and not run.cut, run.budget_hit, run.cut,
                     _found(run, ()), run.first_violation_at, None, time.perf_counter() - t0)
    return search, part


def handoff_split(ref: ProtocolRef, strategy: str, engine: Any, options: Options, *, seconds: float | None,
                  steps: int | None = None, progress: Callable[[int, int], None] | None = None,
                  job_seconds: float | None = JOB_SLICE_S, workers: int | None = None, tracker: list | None = None):
    """A DPOR-family search resumed over ``engine``'s workers after a first slice here
    (:func:`dpor_slice`): ``(parts, failures, jobs, rounds)``; the parts (the slice's, order
    -1, then one per job) merge into the result (:func:`merge`). Rounds: the open points of the
    stack, then the points the jobs of each round reported, until none is new; a round after a
    violation is not started. ``tracker``: a list the first slice's property tracker is
    appended to (its :meth:`~checker.explore.properties.PropertyTracker.results`)."""
    built = ref.build()
    search, above = dpor_slice(built, strategy, options, seconds, steps)
    if tracker is not None:
        tracker.append(search.run.props)
    parts: list[JobResult] = [above]
    failures: list[str] = []
    if not search.frames or above.found is not None or above.budget_hit:
        return parts, failures, 0, 0
    import shutil
    import tempfile

    store = tempfile.mkdtemp(prefix="packrat-explore-split-") if search.stateful else ""
    try:
        if store:
            _write_store(store, export_entries(search, worth_sharing(search.table, search.table)), set())
        jobs, rounds = _run_rounds(ref, strategy, engine, options, search, store, parts, failures, progress,
                                   job_seconds, workers or int(getattr(engine, "workers", 1) or 1))
    finally:
        if store:
            shutil.rmtree(store, ignore_errors=True)
    return parts, failures, jobs, rounds


def _run_rounds(ref: ProtocolRef, strategy: str, engine: Any, options: Options, search, store: str,
                parts: list, failures: list, progress: Callable[[int, int], None] | None,
                job_seconds: float | None, workers: int) -> tuple[int, int]:
    """:func:`handoff_split`'s jobs over ``engine``, from ``search`` at rest: appends to
    ``parts`` and ``failures``; returns (jobs, rounds). An engine that takes work as it comes
    (``feed``: the local and serial ones) gets new jobs whenever fewer than two per worker are
    outstanding (one round); another runs rounds, each waiting for all of its jobs."""
    ident = uuid.uuid4().hex
    count = [0]

    def make(h: Handoff) -> Job:
        count[0] += 1
        return Job(count[0], ref, strategy, options, search=ident, handoff=h, store=store, seconds=job_seconds)

    out = _Outcomes(make, parts, failures)
    out.report(out.tree.add(*_stack_of(search, 0), 0).items())
    want = 2 * workers
    todo = out.jobs(want)
    feed = getattr(engine, "feed", None)
    done = rounds = 0
    while todo:
        rounds += 1
        for outcome in (feed or engine.map)(run_handoff, todo):
            done += 1
            out.take(outcome, todo[outcome.index])
            if feed is not None and len(todo) - done < want:
                todo.extend(out.jobs(want - (len(todo) - done)))
            if progress is not None:
                progress(done, count[0])
        todo = [] if feed is not None else out.jobs(want)
    return count[0], rounds


class _Outcomes:
    """The driver's side of a hand-off: the frames with points to hand out (``tree``), what
    the jobs brought back since jobs were last made (points reported, points not started), and
    their parts and failures (appended to ``parts`` and ``failures``)."""

    def __init__(self, make: Callable[[Handoff], Job], parts: list, failures: list) -> None:
        self.tree = _Tree()
        self.make = make
        self.parts = parts
        self.failures = failures
        self.reported: dict = {}
        self.resumed: list[Job] = []
        self.stopped = False

    def report(self, points) -> None:
        """Add backtrack points to hand out: (path, processes) pairs."""
        for path, procs in points:
            self.reported.setdefault(path, set()).update(procs)

    def take(self, outcome, job: Job) -> None:
        """Record ``job``'s outcome: its part, the points of the stack it handed back and those
        its races added above it, and its points not started; or its failure. A failure or a
        violation stops the hand-out (:meth:`jobs` makes no more)."""
        if not outcome.ok:
            self.failures.append(f"job {job.order}: {outcome.error}")
            self.stopped = True
            return
        part = outcome.value
        self.parts.append(part)
        self.stopped = self.stopped or part.found is not None
        if part.stack:
            taken, frames = part.stack
            self.report(self.tree.add(taken, frames, len(taken) + 1 - len(frames)).items())
        self.report(part.backtrack)
        if part.unstarted is not None:  # handed out again as they were (their order stands)
            self.resumed.append(self.make(part.unstarted))

    def jobs(self, want: int) -> list[Job]:
        """Jobs for everything brought back since the last call, spread over ``want`` jobs where
        they can be (:func:`_spread`); none once the hand-out stopped."""
        todo = [] if self.stopped else self.resumed + self.tree.jobs(self.reported, self.make)
        self.reported, self.resumed = {}, []
        return _spread(todo, want, self.make)


def _spread(todo: list[Job], want: int, make: Callable[[Handoff], Job]) -> list[Job]:
    """Jobs with enough for every worker: a job of several points gives its later half to a
    new job (after the earlier half: the same order) until there are ``want`` jobs or no job
    has two points; jobs still short of that run with short slices (:data:`JOB_SLICE_S` / 8),
    so that the stacks come back soon, to be shared out."""
    todo = list(todo)
    while 0 < len(todo) < want:
        big = max(range(len(todo)), key=lambda i: len(todo[i].handoff.points))  # type: ignore[union-attr]
        h = todo[big].handoff
        assert h is not None  # (hand-off jobs)
        if len(h.points) < 2:
            return [replace(job, seconds=None if job.seconds is None else job.seconds / 8) for job in todo]
        k = len(h.points) // 2
        todo[big] = replace(todo[big], handoff=replace(h, points=h.points[:k]))
        todo.append(make(replace(h, before=h.before | set(h.points[:k]), points=h.points[k:])))
    return todo


# ------------------------------------------------------------------------- merge


def merge(protocol, strategy: str, parts: Sequence[JobResult], *, seed: int | None, elapsed_s: float,
          options: Options = Options(), failures: Sequence[str] = (), shrink: bool = True):
    """One :class:`~checker.explore.ExploreResult` from the parts (ordered by ``order``)."""
    from checker.explore import OK, UNKNOWN, VIOLATION, make_violation
    from checker.explore.harness import ExploreResult, Found

    parts = sorted(parts, key=lambda p: p.order)
    histories = frozenset().union(*(p.histories for p in parts)) if parts else frozenset()
    schedules = sum(p.schedules for p in parts)
    unknown = sum(p.unknown_histories for p in parts)
    first = next((p for p in parts if p.found is not None), None)
    violation = None
    first_at = None
    if first is not None:
        before = sum(p.schedules for p in parts if p.order < first.order)
        first_at = before + (first.first_violation_at or 1)
        assert first.found is not None  # (the first part that found something)
        kind, name, message, path, quiescent = first.found
        violation = make_violation(protocol, Found(kind, name, message, tuple(path), quiescent),
                                   options.check_timeout, shrink)
        verdict, reason = VIOLATION, violation.message
    else:
        complete = strategy in SUBTREE_STRATEGIES and not failures and all(p.complete for p in parts)
        if complete and unknown == 0:
            verdict, reason = OK, ""
        else:
            verdict = UNKNOWN
            if failures:
                reason = f"{len(failures)} job(s) failed: {failures[0]}"
            elif strategy in WALK_STRATEGIES:
                reason = f"{strategy} is not exhaustive: no violation in {schedules} schedules"
            elif any(p.budget_hit for p in parts):
                reason = next(p.budget_hit for p in parts if p.budget_hit) + f"; no violation in {schedules} schedules"
            elif any(p.cut for p in parts):
                reason = f"some schedules were cut; no violation in {schedules} schedules"
            else:
                reason = f"{unknown} histories could not be judged within {options.check_timeout} s each"
    return ExploreResult(
        verdict=verdict, protocol=protocol.name, variant=protocol.variant, params=protocol.params, strategy=strategy,
        schedules=schedules, states=sum(p.states for p in parts), transitions=sum(p.transitions for p in parts),
        distinct_histories=len(histories), elapsed_s=elapsed_s,
        complete=verdict is OK or (verdict is VIOLATION and strategy in SUBTREE_STRATEGIES), reason=reason,
        first_violation_at=first_at, violation=violation, unknown_histories=unknown,
        seed=seed if strategy in WALK_STRATEGIES else None,
        pct_bound=min((p.pct_bound for p in parts if p.pct_bound is not None), default=None),
        histories=histories,
        reductions=options.reductions,
    )


# ----------------------------------------------------------------------- driver


def first_slice(built, strategy: str, options: Options, seconds: float, shrink: bool):
    """The whole exploration of ``built`` in this process within ``seconds`` (or the options'
    own ``max_time`` when shorter), its distinct histories collected as a split collects
    them: its result when it finished (complete) or found a violation, else None (the slice
    ran out: split the search). Pure apart from the clock."""
    from checker.explore import explore

    r = options.reductions
    budget = seconds if options.max_time is None else min(seconds, options.max_time)
    result = explore(built, strategy, max_time=budget, depth=options.depth, bug_depth=options.bug_depth,
                     check_timeout=options.check_timeout, shrink_counterexample=shrink, symmetry=r.symmetry,
                     state_cache=r.state_cache, coarse_clients=r.coarse_clients, sleep_sets=r.sleep_sets,
                     local_commutation=r.local_commutation, collect_histories=True)
    return result if result.complete or result.violation is not None else None


def _handed_off(ref: ProtocolRef, strategy: str, engine: Any, options: Options, seconds: float, workers: int,
                shrink: bool, progress: Callable[[int, int], None] | None, t0: float) -> SplitResult:
    """:func:`explore_split` of a DPOR-family search: :func:`handoff_split`, merged."""
    from checker.explore import PROPERTY_STRATEGIES

    tracker: list = []
    parts, failures, count, _ = handoff_split(ref, strategy, engine, options, seconds=seconds, progress=progress,
                                              workers=workers, tracker=tracker)
    result = merge(ref.build(), strategy, parts, seed=None, elapsed_s=time.perf_counter() - t0, options=options,
                   failures=failures, shrink=shrink)
    # the properties as the first slice saw them (witnesses and counterexamples found there; the
    # DPOR family judges no property kind completely, so the rest are unknown, as in one process)
    result = replace(result, properties=tracker[0].results(strategy, result.complete, result.reason,
                                                           PROPERTY_STRATEGIES))
    return SplitResult(result, count, None, workers, getattr(engine, "name", type(engine).__name__), tuple(failures))


def explore_split(
    protocol: str,
    strategy: str,
    engine: Any,
    *,
    variant: str | None = None,
    params: dict | None = None,
    workers: int | None = None,
    frontier_depth: int | None = None,
    jobs: int | None = None,
    seed: int = 0,
    max_schedules: int | None = None,
    options: Options = Options(),
    shrink: bool = True,
    progress: Callable[[int, int], None] | None = None,
    split_after_s: float | None = None,
) -> SplitResult:
    """Explore ``protocol`` (registry name) with ``strategy`` split over ``engine``'s workers.

    Walks: ``jobs`` batches (default 4 per worker) sharing ``max_schedules`` (default 1000).
    The DPOR family (without ``frontier_depth``): :func:`handoff_split` after ``split_after_s``
    seconds (default :data:`SPLIT_AFTER_S`; 0: the subtree split below). Subtrees: first the
    whole search in this process for ``split_after_s`` seconds (default
    :data:`SUBTREE_SPLIT_AFTER_S`; :func:`first_slice`; 0: split at once): done by then, it is
    the answer (``jobs`` 0), else the frontier at ``frontier_depth`` (default:
    :func:`auto_depth`). ``progress(done, total)`` is called as jobs finish (a hand-off's total
    grows as jobs bring more). A job whose worker died twice, or that raised, makes the verdict
    UNKNOWN (never OK) unless another job found a violation.
    """
    from checker.explore import ExploreError

    t0 = time.perf_counter()
    if strategy not in SPLIT_STRATEGIES:
        raise SplitError(f"strategy {strategy!r} cannot be split (splittable: {', '.join(sorted(SPLIT_STRATEGIES))})")
    ref = ProtocolRef(protocol, variant, tuple(sorted((params or {}).items())))
    built = ref.build()
    workers = workers or int(getattr(engine, "workers", 1) or 1)
    depth_used = None
    above: list[JobResult] = []
    if strategy in WALK_STRATEGIES:
        total = 1000 if max_schedules is None else max_schedules
        todo = walk_jobs(ref, strategy, jobs=jobs or min(total, 4 * workers), seed=seed, max_schedules=total,
                         options=options)
    else:
        if max_schedules is not None:
            raise SplitError("a subtree split has no global schedule budget; use max_time (per job)")
        if options.depth is not None and frontier_depth is not None and frontier_depth >= options.depth:
            raise SplitError(f"frontier depth {frontier_depth} must be below the depth bound {options.depth}")
        if split_after_s is None:
            split_after_s = SPLIT_AFTER_S if strategy in DPOR_SEARCHES and frontier_depth is None \
                else SUBTREE_SPLIT_AFTER_S
        if strategy in DPOR_SEARCHES and split_after_s > 0 and frontier_depth is None:
            return _handed_off(ref, strategy, engine, options, split_after_s, workers, shrink, progress, t0)
        whole = first_slice(built, strategy, options, split_after_s, shrink) if split_after_s > 0 else None
        if whole is not None:
            return SplitResult(replace(whole, elapsed_s=time.perf_counter() - t0), 0, None, workers,
                               getattr(engine, "name", type(engine).__name__), ())
        try:
            fr = frontier(built, strategy, frontier_depth, options) if frontier_depth is not None else \
                auto_depth(built, strategy, workers, options)
        except ExploreError as exc:
            raise SplitError(str(exc)) from None
        depth_used = fr.depth
        above = [fr.above]
        search = uuid.uuid4().hex
        todo = [Job(k, ref, strategy, options, prefix=p, search=search) for k, p in enumerate(fr.prefixes)]
    parts: list[JobResult] = list(above)
    failures: list[str] = []
    for done, outcome in enumerate(engine.map(run_job, todo), 1):
        if outcome.ok:
            parts.append(outcome.value)
        else:
            failures.append(f"job {todo[outcome.index].order}: {outcome.error}")
        if progress is not None:
            progress(done, len(todo))
    result = merge(built, strategy, parts, seed=seed, elapsed_s=time.perf_counter() - t0, options=options,
                   failures=failures, shrink=shrink)
    return SplitResult(result, len(todo), depth_used, workers, getattr(engine, "name", type(engine).__name__),
                       tuple(failures))
