"""Schedule exploration split over workers (any engine of ``packrat_sim.engines`` or ``packrat_sim/engines/ray.py``).

Two ways to divide :func:`checker.explore.explore`'s work:

* **Walks** (``random``, ``pct``): independent given their seeds. The split runs ``jobs``
  walk batches, batch k with seed ``seed + k`` and its share of ``max_schedules`` (the
  first ``max_schedules % jobs`` batches get one more). The merged result is, by
  construction, the one a single process gets running the same batches one after the other
  (:func:`walk_jobs` + :func:`run_job` in a loop): schedules and transitions summed,
  distinct histories unioned, the first violation the lowest batch's. (It is *not* the
  single ``explore(seed=S, max_schedules=M)`` run: one seed drives one random stream.)
* **Subtrees** (``dfs``, ``exhaustive``, ``dpor``, ``transdpor``, ``keyaware``): the driver
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

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from checker.actors import Event, Outcome, SystemState
from checker.explore.harness import Reductions
from packrat_sim import validate
from packrat_sim.errors import PackratError

WALK_STRATEGIES = frozenset({"random", "pct"})
SUBTREE_STRATEGIES = frozenset({"dfs", "exhaustive", "dpor", "transdpor", "keyaware"})
SPLIT_STRATEGIES = WALK_STRATEGIES | SUBTREE_STRATEGIES
MAX_FRONTIER_DEPTH = 16
#: Seconds a subtree split first explores in this process, whole: a search done by then
#: (complete, or a violation found) is answered as is, never split. Splitting pays only on
#: long searches: subtrees lose the pruning one search shares across them (DPOR's races,
#: the visited states), and each worker pays its start-up.
SPLIT_AFTER_S = 5.0


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
    split_after_s: float = SPLIT_AFTER_S,
) -> SplitResult:
    """Explore ``protocol`` (registry name) with ``strategy`` split over ``engine``'s workers.

    Walks: ``jobs`` batches (default 4 per worker) sharing ``max_schedules`` (default 1000).
    Subtrees: first the whole search in this process for ``split_after_s`` seconds
    (:func:`first_slice`; 0: split at once): done by then, it is the answer (``jobs`` 0), else
    the frontier at ``frontier_depth`` (default: :func:`auto_depth`). ``progress(done,
    total)`` is called as jobs finish. A job whose worker died twice, or that raised, makes the
    verdict UNKNOWN (never OK) unless another job found a violation.
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
