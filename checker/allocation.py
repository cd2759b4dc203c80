"""Z3 certificates: prove an allocation optimal, or find the optimum independently of the DP.

The problem is the optimizer's (DESIGN.md, packrat_sim/optimizer.py): choose instances,
each a *profiled* cell s = (t_s threads, b_s sub-batch) of latency L[s] ms (a missing cell
is not an instance shape), so that the sub-batches sum to the batch B and the threads to
the cores T (``exact_cores``) or to at most T (idle cores allowed); the latency of an
allocation is max L[s] over its instances. User constraints, with the optimizer's meaning
(``OptimizerOptions``): ``min_batch`` (b_s >= it), ``max_threads_per_instance`` (t_s <= it),
``max_instances`` (at most that many instances), ``homogeneous`` (one shape only) and
``cores_per_socket`` (the T cores are sockets of c cores, plus one socket of T mod c cores
when c does not divide T; every instance lies inside one socket, so the instances must
bin-pack into the sockets, every socket full with ``exact_cores``).

Encoding (this module re-derives all of it from the profile; it never calls the DP):

* **The bound becomes the set of allowed shapes.** "Is there an allocation of latency
  < lambda?" keeps only the shapes with L[s] < lambda; the max disappears, and with it
  every if-chain over the profile: the query is a pure linear integer feasibility problem.
* **Runs of thread counts, aggregated (exact):** for one sub-batch b, the allowed thread
  counts split into maximal runs lo..hi of consecutive integers. m instances of sub-batch
  b whose threads each lie in lo..hi can use exactly the totals m*lo .. m*hi (every
  integer in between: split tau as evenly as possible, each part stays in lo..hi), so
  one pair of integers (m, tau) per run and socket k replaces all the run's shapes:

      m[r, k] >= 0,  lo_r * m[r, k] <= tau[r, k] <= min(hi_r, cap_k) * m[r, k]
      sum_{r,k} m[r, k] * b_r == B
      sum_r tau[r, k] == cap_k  for each socket k   (<= cap_k with idle cores)
      sum_{r,k} m[r, k] <= max_instances             (if set)
      batch(k) >= batch(k + 1) for sockets of equal cores  (symmetry breaking: sound,
                                                            equal sockets can be renumbered)

  (tau is dropped when lo == hi.) A model maps back to instances by splitting each
  tau[r, k] into m[r, k] near-equal thread counts. Homogeneous mode needs one shape for
  all instances, so it keeps one count per shape (each shape its own run) plus
  sum_s [count_s > 0] <= 1. The size is O(runs x sockets), independent of B and of the
  latency values; on smooth profiles a sub-batch has one to a few runs, so T=64 or 128
  with B=1024 is a problem of about 20 variables, decided in milliseconds. (One count
  per shape, the obvious encoding, has ~500-1000 variables there and takes seconds to
  refute; explicit upper bounds on the counts made it ten times slower still.)
* **Dominance pruning, idle cores only (provably safe):** if (t, b) and (t', b) are both
  allowed with t' < t, any allocation using (t, b) stays valid after using (t', b)
  instead: same sub-batch and instance count, fewer threads on the same socket, latency
  still under the bound, still one shape if it was. So per sub-batch only the allowed
  shape with the fewest threads is kept. With exact cores no shape is pruned (fewer
  threads would break sum t == T).

Under a co-run model (:func:`certify_under_interference`) there is one such query per
busy-thread count U (and instance cap); a query that the *density bound* proves
unsatisfiable (no shape dense enough for B on U threads is below the bound; the function
says why this is a proof) is not sent to Z3 and is counted in ``stats.bounded``.

``certify`` asks one query: is there an allocation of latency < the plan's latency?
UNSAT is a proof that the plan is optimal (OPTIMAL); SAT gives a strictly better
allocation (NOT_OPTIMAL, with the witness plan); Z3 ``unknown`` (timeout, resource limit)
is UNKNOWN, never OPTIMAL. ``optimum`` bisects over the sorted distinct latencies of the
usable shapes with queries "latency <= level?" (each a fresh, independent solver; a SAT
answer lowers the upper end to the latency of the model found), so it needs about
log2(distinct latencies) + 1 queries. Latencies are compared as the same floats the
profile holds, so ties are exact: an allocation as fast as the plan does not refute it.

This is the only module of the project that imports z3. Results are frozen values.
"""

from __future__ import annotations

import bisect
import enum
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cache

import z3

from packrat_sim import validate
from packrat_sim.errors import PackratError
from packrat_sim.optimizer import OptimizerOptions, socket_capacities
from packrat_sim.plan import Instance, Plan
from packrat_sim.profile import Profile

DEFAULT_TIMEOUT_S = 60.0
_TIMEOUT_EXPECTED = "a finite number of seconds > 0"  # what a Z3 time limit must be

Shape = tuple[int, int, float]  # (threads, batch, latency_ms)


class CertifyError(PackratError):
    """Bad input to the checker (a plan invalid for the problem, a bad timeout); names the value."""


class Result(enum.Enum):
    """Verdict of a certificate or an optimum search.

    ``certify`` returns OPTIMAL, NOT_OPTIMAL or UNKNOWN; ``optimum`` returns OPTIMAL,
    INFEASIBLE (no allocation satisfies the constraints; proved) or UNKNOWN.
    """

    OPTIMAL = "optimal"
    NOT_OPTIMAL = "not_optimal"
    UNKNOWN = "unknown"
    INFEASIBLE = "infeasible"


@dataclass(frozen=True)
class EncodingStats:
    """Size of the encoding and the work done.

    ``usable_shapes``: profiled cells usable as instances under the options;
    ``shapes``: shape variables of the largest query after the bound and the dominance
    pruning; ``pruned``: shapes dropped as dominated in that query; ``variables`` and
    ``constraints``: of that query; ``sockets``: number of sockets; ``queries``: solver
    calls made; ``solver_s``: seconds spent inside Z3's check(); ``bounded``: queries
    refuted by a sound bound without calling Z3 (:func:`certify_under_interference`).
    """

    usable_shapes: int = 0
    shapes: int = 0
    pruned: int = 0
    variables: int = 0
    constraints: int = 0
    sockets: int = 1
    queries: int = 0
    solver_s: float = 0.0
    bounded: int = 0

    def to_json(self) -> dict:
        """Every field by name, in declaration order (all plain numbers)."""
        return asdict(self)


def plan_json(plan: Plan | None) -> dict | None:
    """A plan as its packrat.plan/1 JSON object plus ``"groups"`` (count, threads, batch)."""
    if plan is None:
        return None
    out = plan.to_json()
    out["groups"] = [list(g) for g in plan.groups()]
    return out


@dataclass(frozen=True)
class Certificate:
    """Outcome of :func:`certify`.

    * ``plan``: the plan certified, with ``predicted_ms`` = its latency in this profile;
    * ``latency_ms``: that latency (ms) = ``bound_ms``, the bound whose strict
      improvement Z3 refuted (OPTIMAL: no allocation has latency < bound_ms);
    * ``witness``: for NOT_OPTIMAL, a valid allocation with latency < bound_ms, else None;
    * ``elapsed_s``: wall time of the whole certification (s); ``timeout_s``: the limit;
    * ``reason``: Z3's reason for UNKNOWN ("timeout", "canceled", ...), else "".
    """

    result: Result
    plan: Plan
    latency_ms: float
    bound_ms: float
    witness: Plan | None
    elapsed_s: float
    timeout_s: float
    stats: EncodingStats
    reason: str = ""

    @property
    def optimal(self) -> bool:
        return self.result is Result.OPTIMAL

    def to_json(self) -> dict:
        return _outcome_json(
            self,
            bound_ms=self.bound_ms,
            witness=plan_json(self.witness),
            witness_ms=None if self.witness is None else self.witness.predicted_ms,
        )


@dataclass(frozen=True)
class Optimum:
    """Outcome of :func:`optimum` (found by Z3 alone).

    * OPTIMAL: ``plan`` is optimal and ``latency_ms`` == ``lower_bound_ms``;
    * INFEASIBLE: no allocation exists; ``plan`` and ``latency_ms`` are None;
    * UNKNOWN: the time ran out; ``plan`` / ``latency_ms`` are the best allocation found
      so far (or None), and every allocation takes >= ``lower_bound_ms`` (the smallest
      latency not yet refuted; None when not even one allocation was found).
    Times in seconds, latencies in ms.
    """

    result: Result
    plan: Plan | None
    latency_ms: float | None
    lower_bound_ms: float | None
    elapsed_s: float
    timeout_s: float
    stats: EncodingStats
    reason: str = ""

    def to_json(self) -> dict:
        return _outcome_json(self, lower_bound_ms=self.lower_bound_ms)


def _outcome_json(outcome: Certificate | Optimum, **between: object) -> dict:
    """The JSON object of a :class:`Certificate` or an :class:`Optimum`: its result, plan and
    latency, then the fields ``between`` (in their order), then its times, reason and encoding."""
    return {
        "result": outcome.result.value,
        "plan": plan_json(outcome.plan),
        "latency_ms": outcome.latency_ms,
        **between,
        "elapsed_s": outcome.elapsed_s,
        "timeout_s": outcome.timeout_s,
        "reason": outcome.reason,
        "encoding": outcome.stats.to_json(),
    }


# ----------------------------------------------------------------- the problem


@dataclass(frozen=True)
class _Problem:
    batch: int
    cores: int
    exact: bool
    caps: tuple[int, ...]
    max_instances: int | None
    homogeneous: bool
    shapes: tuple[Shape, ...]  # usable shapes, sorted by (latency, threads, batch)


sockets_of = socket_capacities  # cores of each socket, as the optimizer splits them (OptimizerOptions)


def _problem(profile: Profile, batch: int, cores: int, options: OptimizerOptions) -> _Problem:
    validate.positive_int(batch, "batch", error=CertifyError)
    validate.positive_int(cores, "cores", error=CertifyError)
    caps = sockets_of(cores, options.cores_per_socket)
    t_max = max(caps)
    if options.max_threads_per_instance is not None:
        t_max = min(t_max, options.max_threads_per_instance)
    try:
        cells = profile.items(options.statistic)
    except ValueError as exc:
        raise CertifyError(str(exc)) from None
    shapes = sorted(
        ((t, b, lat) for t, b, lat in cells if t <= t_max and options.min_batch <= b <= batch),
        key=lambda s: (s[2], s[0], s[1]),
    )
    return _Problem(
        batch=batch,
        cores=cores,
        exact=options.exact_cores,
        caps=caps,
        max_instances=options.max_instances,
        homogeneous=options.homogeneous,
        shapes=tuple(shapes),
    )


# --------------------------------------------------------------- the encoding


def _new_solver(timeout_ms: int) -> z3.Solver:
    """A fresh solver with a time limit (ms). The plain SMT core (no tactic preamble):
    the queries are small linear integer problems, and it starts about 3x faster."""
    solver = z3.SimpleSolver()
    solver.set("timeout", timeout_ms)
    return solver


def _prune(problem: _Problem, allowed: Sequence[Shape]) -> list[Shape]:
    """Dominance pruning (module doc): with idle cores, per sub-batch keep only the
    allowed shape with the fewest threads. Exact cores: nothing is pruned."""
    if problem.exact:
        return list(allowed)
    fewest: dict[int, Shape] = {}
    for s in allowed:
        if s[1] not in fewest or s[0] < fewest[s[1]][0]:
            fewest[s[1]] = s
    return sorted(fewest.values(), key=lambda s: (s[2], s[0], s[1]))


@dataclass(frozen=True)
class _Answer:
    status: str  # "sat" | "unsat" | "unknown"
    instances: tuple[Instance, ...]
    reason: str
    shapes: int = 0
    pruned: int = 0
    variables: int = 0
    constraints: int = 0
    solver_s: float = 0.0


def thread_runs(shapes: Sequence[Shape]) -> list[tuple[int, int, int]]:
    """The shapes as maximal runs (batch, lo, hi): every t in lo..hi is a shape with that
    sub-batch, and lo - 1, hi + 1 are not. Sorted by (batch, lo)."""
    by_batch: dict[int, list[int]] = {}
    for t, b, _ in shapes:
        by_batch.setdefault(b, []).append(t)
    runs = []
    for b in sorted(by_batch):
        ts = sorted(set(by_batch[b]))
        lo = prev = ts[0]
        for t in ts[1:]:
            if t != prev + 1:
                runs.append((b, lo, prev))
                lo = t
            prev = t
        runs.append((b, lo, prev))
    return runs


def _split(total: int, count: int) -> list[int]:
    """``count`` integers summing to ``total`` that differ by at most one."""
    q, r = divmod(total, count)
    return [q + 1] * r + [q] * (count - r)


def _query(problem: _Problem, allowed: Sequence[Shape], deadline: float) -> _Answer:
    """Is there an allocation using only the ``allowed`` shapes? One fresh solver, run
    encoding (module doc); per-shape counts in homogeneous mode."""
    shapes = _prune(problem, allowed)
    pruned = len(allowed) - len(shapes)
    remaining = deadline - time.perf_counter()
    if remaining <= 0:
        return _Answer("unknown", (), "timeout", len(shapes), pruned)
    solver = _new_solver(max(1, int(remaining * 1000)))
    B, caps = problem.batch, problem.caps
    # groups: (batch, lo, hi, socket, m, tau): m instances of sub-batch ``batch`` on the
    # socket, each with threads in lo..hi, tau threads in total (tau None: tau = m * lo)
    groups: list[tuple[int, int, int, int, z3.ArithRef, z3.ArithRef | None]] = []
    units = [(b, t, t) for t, b, _ in shapes] if problem.homogeneous else thread_runs(shapes)
    for b, lo, hi in units:
        for k, cap in enumerate(caps):
            top = min(hi, cap)
            if lo > top:
                continue
            m = z3.Int(f"m_{b}b_{lo}to{top}t_s{k}")
            solver.add(m >= 0)
            tau = None
            if top > lo:
                tau = z3.Int(f"tau_{b}b_{lo}to{top}t_s{k}")
                solver.add(tau >= lo * m, tau <= top * m)
            groups.append((b, lo, top, k, m, tau))
    variables = sum(1 if g[5] is None else 2 for g in groups)

    def threads(g):
        return g[4] * g[1] if g[5] is None else g[5]

    def total(terms):
        return z3.Sum(terms) if terms else z3.IntVal(0)

    solver.add(total([g[4] * g[0] for g in groups]) == B)
    socket_batch = []
    for k, cap in enumerate(caps):
        used = total([threads(g) for g in groups if g[3] == k])
        solver.add(used == cap if problem.exact else used <= cap)
        socket_batch.append(total([g[4] * g[0] for g in groups if g[3] == k]))
    for k in range(len(caps) - 1):
        if caps[k] == caps[k + 1]:
            solver.add(socket_batch[k] >= socket_batch[k + 1])
    if problem.max_instances is not None:
        solver.add(total([g[4] for g in groups]) <= problem.max_instances)
    if problem.homogeneous:
        per_shape: dict[tuple[int, int], list] = {}
        for g in groups:
            per_shape.setdefault((g[0], g[1]), []).append(g[4])
        solver.add(total([z3.If(z3.Sum(ms) > 0, 1, 0) for ms in per_shape.values()]) <= 1)
    constraints = len(solver.assertions())
    t0 = time.perf_counter()
    status = solver.check()
    solver_s = time.perf_counter() - t0
    sizes = (len(shapes), pruned, variables, constraints, solver_s)
    if status == z3.sat:
        model = solver.model()
        instances: list[Instance] = []
        for b, lo, _, _, m, tau in groups:
            count = model.eval(m, model_completion=True).as_long()
            if count:
                spent = count * lo if tau is None else model.eval(tau, model_completion=True).as_long()
                instances.extend(Instance(t, b) for t in _split(spent, count))
        return _Answer("sat", tuple(instances), "", *sizes)
    if status == z3.unsat:
        return _Answer("unsat", (), "", *sizes)
    return _Answer("unknown", (), solver.reason_unknown() or "unknown", *sizes)


def _stats(problem: _Problem, answers: Sequence[_Answer], bounded: int = 0) -> EncodingStats:
    big = max(answers, key=lambda a: a.variables, default=None)
    return EncodingStats(
        usable_shapes=len(problem.shapes),
        shapes=big.shapes if big else 0,
        pruned=big.pruned if big else 0,
        variables=big.variables if big else 0,
        constraints=big.constraints if big else 0,
        sockets=len(problem.caps),
        queries=sum(1 for a in answers if a.constraints),
        solver_s=sum(a.solver_s for a in answers),
        bounded=bounded,
    )


def _latency_of(instances: Sequence[Instance], profile: Profile, statistic: str | None) -> float:
    """The latency (ms) of ``instances`` run side by side: their slowest profiled cell.
    CertifyError naming an instance whose cell the profile lacks (the encodings use profiled
    cells only, so this is not reached)."""
    latencies = []
    for i in instances:
        ms = profile.latency(i.threads, i.batch, statistic)
        if ms is None:
            raise CertifyError(f"instance {i.threads}t x {i.batch} is not a profiled cell of {profile.model!r}")
        latencies.append(ms)
    return max(latencies)


# ---------------------------------------------------------- plan validation


def pack_into_sockets(threads: Sequence[int], caps: Sequence[int]) -> tuple[int, ...] | None:
    """A socket index per instance so that the threads on each socket fit its cores
    (``caps``), or None when no packing exists. Exact: first-fit decreasing, and when
    that fails a search over placements with memoisation (sockets with the same free
    room are interchangeable, so only one of them is tried)."""
    order = sorted(range(len(threads)), key=lambda i: -threads[i])
    sizes = [threads[i] for i in order]

    def unsort(found: Sequence[int]) -> tuple[int, ...]:
        where = [0] * len(threads)
        for pos, i in enumerate(order):
            where[i] = found[pos]
        return tuple(where)

    free = list(caps)
    greedy = []
    for size in sizes:
        k = next((k for k, room in enumerate(free) if room >= size), None)
        if k is None:
            break
        free[k] -= size
        greedy.append(k)
    else:
        return unsort(greedy)

    @cache
    def place(i: int, free: tuple[int, ...]) -> tuple[int, ...] | None:
        if i == len(sizes):
            return ()
        tried = set()
        for k, room in enumerate(free):
            if room >= sizes[i] and room not in tried:
                tried.add(room)
                rest = place(i + 1, free[:k] + (room - sizes[i],) + free[k + 1 :])
                if rest is not None:
                    return (k,) + rest
        return None

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, len(sizes) + 200))
    try:
        found = place(0, tuple(caps))
    finally:
        sys.setrecursionlimit(limit)
    return None if found is None else unsort(found)


def _validate_plan(profile: Profile, problem: _Problem, plan: Plan, options: OptimizerOptions) -> float:
    """The plan's latency (ms) in the profile; CertifyError naming what makes it invalid."""
    if not isinstance(plan, Plan):
        raise CertifyError(f"plan must be a Plan, got {type(plan).__name__}")
    if plan.batch != problem.batch:
        raise CertifyError(f"the plan serves a batch of {plan.batch}, not {problem.batch}")
    if plan.cores != problem.cores:
        raise CertifyError(f"the plan is for {plan.cores} cores, not {problem.cores}")
    used = plan.threads_used
    if problem.exact and used != problem.cores:
        raise CertifyError(
            f"the plan uses {used} of {problem.cores} cores, but exact cores are required "
            "(allow idle cores to certify it)"
        )
    usable = {(t, b) for t, b, _ in problem.shapes}
    for inst in plan.instances:
        if profile.cell(inst.threads, inst.batch) is None:
            raise CertifyError(
                f"instance {inst.threads}t x {inst.batch} is not a profiled cell of {profile.model!r}"
            )
        if (inst.threads, inst.batch) not in usable:
            why = (
                f"sub-batch below min_batch={options.min_batch}"
                if inst.batch < options.min_batch
                else f"more threads than an instance may have ({max(problem.caps)} cores per socket"
                + (
                    f", max_threads_per_instance={options.max_threads_per_instance})"
                    if options.max_threads_per_instance is not None
                    else ")"
                )
            )
            raise CertifyError(f"instance {inst.threads}t x {inst.batch} violates the options: {why}")
    if problem.max_instances is not None and len(plan.instances) > problem.max_instances:
        raise CertifyError(
            f"the plan has {len(plan.instances)} instances, more than max_instances={problem.max_instances}"
        )
    if problem.homogeneous and len({(i.threads, i.batch) for i in plan.instances}) > 1:
        raise CertifyError(f"the plan {plan.describe()} is not homogeneous")
    if len(problem.caps) > 1 and pack_into_sockets([i.threads for i in plan.instances], problem.caps) is None:
        raise CertifyError(
            f"the instances of {plan.describe()} cannot be packed into sockets of "
            f"{list(problem.caps)} cores without one spanning two sockets"
        )
    return _latency_of(plan.instances, profile, options.statistic)


# ---------------------------------------------------------------- public API


def certify(
    profile: Profile,
    batch: int,
    cores: int,
    plan: Plan,
    options: OptimizerOptions | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Certificate:
    """Prove ``plan`` optimal for (``batch`` inputs, ``cores`` cores) under ``options``, or refute it.

    One Z3 query (module doc): is there an allocation of the usable profiled shapes with
    latency < the plan's latency (ms, the profile's ``options.statistic``)? UNSAT:
    OPTIMAL. SAT: NOT_OPTIMAL with ``witness``, a valid plan of strictly lower latency.
    Z3 unknown or the ``timeout_s`` limit (seconds, > 0) reached: UNKNOWN, never OPTIMAL.
    Raises CertifyError when the plan is not valid for the problem (wrong batch or cores,
    an instance that is not a profiled cell, a violated option), naming the problem.
    """
    start, options, timeout_s, problem, latency = _begin(profile, batch, cores, plan, options, timeout_s)
    plan = plan.with_prediction(latency)
    allowed = [s for s in problem.shapes if s[2] < latency]
    answer = _query(problem, allowed, start + timeout_s)
    witness = None
    if answer.status == "sat":
        result = Result.NOT_OPTIMAL
        witness = Plan(answer.instances, batch, cores, _latency_of(answer.instances, profile, options.statistic))
    elif answer.status == "unsat":
        result = Result.OPTIMAL
    else:
        result = Result.UNKNOWN
    return _certificate(result, plan, witness, start, timeout_s, problem, [answer])


def certify_with_dispatch(
    profile: Profile,
    batch: int,
    cores: int,
    plan: Plan,
    options: OptimizerOptions | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Certificate:
    """Prove ``plan`` optimal for the full predictor objective ``dispatch(k, B) + max L``
    (packrat_sim.predictor, no interference), or refute it; without measured dispatch
    costs this is :func:`certify`.

    ``Profile.dispatch_ms`` is non-decreasing in the instance count k, so the best total
    is min over k of dispatch(k, B) + (best compute with at most k instances). One query per
    k = 1 .. min(cores, batch, max_instances): is there an allocation of at most k instances
    with dispatch(k, B) + compute < latency? All UNSAT: OPTIMAL (any plan with k' instances
    and a lower total would satisfy query k'); a SAT answer with k' <= k instances has total
    <= dispatch(k, B) + compute < latency: NOT_OPTIMAL with that witness. Unknown or the
    time limit: UNKNOWN, never OPTIMAL.
    """
    from dataclasses import replace

    if not profile.dispatch:
        return certify(profile, batch, cores, plan, options, timeout_s)
    start, options, timeout_s, problem, compute = _begin(profile, batch, cores, plan, options, timeout_s)
    latency = profile.dispatch_ms(len(plan.instances), batch) + compute
    plan = plan.with_prediction(latency)
    answers: list[_Answer] = []
    result, witness = Result.OPTIMAL, None
    for k, cost in _instance_caps(profile, batch, cores, options):
        sub = _problem(profile, batch, cores, replace(options, max_instances=k))
        answer = _query_total_below(sub, cost, latency, start + timeout_s)
        answers.append(answer)
        if answer.status == "sat":
            found = answer.instances
            total = profile.dispatch_ms(len(found), batch) + _latency_of(found, profile, options.statistic)
            result, witness = Result.NOT_OPTIMAL, Plan(found, batch, cores, total)
            break
        if answer.status != "unsat":
            result = Result.UNKNOWN
            break
    return _certificate(result, plan, witness, start, timeout_s, problem, answers)


def _instance_caps(profile: Profile, batch: int, cores: int, options: OptimizerOptions) -> list[tuple[int | None, float]]:
    """The instance caps k to query, each with its dispatch cost dispatch(k, B) in ms: with
    measured dispatch costs (non-decreasing in k) every k = 1 .. min(cores, batch,
    max_instances); without, only the options' own cap, at cost 0. Pure."""
    if not profile.dispatch:
        return [(options.max_instances, 0.0)]
    top = min(cores, batch) if options.max_instances is None else min(cores, batch, options.max_instances)
    return [(k, profile.dispatch_ms(k, batch)) for k in range(1, top + 1)]


def _query_total_below(sub: _Problem, cost: float, latency: float, deadline: float) -> _Answer:
    """Is there an allocation of ``sub`` with ``cost + compute < latency``? Summed in the
    plan's own order (dispatch + compute), never ``compute < latency - cost``: that
    subtraction can round the plan's own shape in (4.0 + 0.7152 - 4.0 > 0.7152)."""
    return _query(sub, [s for s in sub.shapes if cost + s[2] < latency], deadline)


def _begin(profile: Profile, batch: int, cores: int, plan: Plan, options: OptimizerOptions | None,
           timeout_s: float) -> tuple[float, OptimizerOptions, float, _Problem, float]:
    """Shared start of :func:`certify` and :func:`certify_with_dispatch`: the start time,
    the options, the checked timeout, the problem and the plan's compute latency (ms;
    CertifyError when the plan is not valid for the problem)."""
    start, options, timeout_s = _start(options, timeout_s)
    problem = _problem(profile, batch, cores, options)
    return start, options, timeout_s, problem, _validate_plan(profile, problem, plan, options)


def _start(options: OptimizerOptions | None, timeout_s: float) -> tuple[float, OptimizerOptions, float]:
    """Shared start of every query: the start time (``time.perf_counter()``), the options
    (the default ones for None) and the timeout checked to be > 0 s (CertifyError naming it)."""
    start = time.perf_counter()
    timeout_s = validate.positive_float(timeout_s, "timeout", error=CertifyError, expected=_TIMEOUT_EXPECTED)
    return start, options or OptimizerOptions(), timeout_s


def _certificate(result: Result, plan: Plan, witness: Plan | None, start: float, timeout_s: float,
                 problem: _Problem, answers: Sequence[_Answer], bounded: int = 0) -> Certificate:
    """A Certificate for ``plan`` (whose ``predicted_ms`` is the refuted bound)."""
    return Certificate(
        result=result,
        plan=plan,
        latency_ms=plan.require_prediction(),
        bound_ms=plan.require_prediction(),
        witness=witness,
        elapsed_s=time.perf_counter() - start,
        timeout_s=timeout_s,
        stats=_stats(problem, answers, bounded),
        reason=answers[-1].reason if answers else "",
    )


def optimum(
    profile: Profile,
    batch: int,
    cores: int,
    options: OptimizerOptions | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Optimum:
    """The optimal allocation found by Z3 alone (no DP): bisection over the sorted distinct
    latencies of the usable shapes with independent feasibility queries (module doc).

    Returns OPTIMAL with the plan and its latency (ms), INFEASIBLE when no allocation
    satisfies the constraints, or UNKNOWN when Z3 gave up or ``timeout_s`` (seconds, > 0,
    for the whole search) ran out, with the best plan found and the proved lower bound.
    """
    start, options, timeout_s = _start(options, timeout_s)
    problem = _problem(profile, batch, cores, options)
    deadline = start + timeout_s
    levels = sorted({s[2] for s in problem.shapes})
    answers: list[_Answer] = []

    def done(result: Result, best: tuple[Instance, ...] | None, lower: float | None, reason: str = "") -> Optimum:
        plan = latency = None
        if best:
            latency = _latency_of(best, profile, options.statistic)
            plan = Plan(best, batch, cores, latency)
        return Optimum(result, plan, latency, lower, time.perf_counter() - start, timeout_s, _stats(problem, answers), reason)

    def ask(level_index: int) -> _Answer:
        answer = _query(problem, [s for s in problem.shapes if s[2] <= levels[level_index]], deadline)
        answers.append(answer)
        return answer

    if not levels:
        answers.append(_query(problem, [], deadline))
        if answers[-1].status == "unknown":
            return done(Result.UNKNOWN, None, None, answers[-1].reason)
        return done(Result.INFEASIBLE, None, None)
    first = ask(len(levels) - 1)
    if first.status == "unknown":
        return done(Result.UNKNOWN, None, None, first.reason)
    if first.status == "unsat":
        return done(Result.INFEASIBLE, None, None)
    best = first.instances
    lo = -1  # levels[lo] is proved infeasible (-1: nothing proved)
    hi = levels.index(_latency_of(best, profile, options.statistic))  # levels[hi] is feasible
    while hi - lo > 1:
        mid = (lo + hi) // 2
        answer = ask(mid)
        if answer.status == "sat":
            best = answer.instances
            hi = levels.index(_latency_of(best, profile, options.statistic))
        elif answer.status == "unsat":
            lo = mid
        else:
            return done(Result.UNKNOWN, best, levels[lo + 1], answer.reason)
    return done(Result.OPTIMAL, best, levels[hi])


def certify_under_interference(
    profile: Profile,
    batch: int,
    cores: int,
    plan: Plan,
    options: OptimizerOptions | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Certificate:
    """Prove ``plan`` optimal under the profile's interference model, or refute it.

    Objective (the one predictor, packrat_sim.predictor): ``dispatch(k, B) + max_j
    L[t_j, b_j] * s_t(U - t_j)`` for a plan of k instances keeping U threads busy (dispatch 0
    without measured dispatch costs; ``s_t`` the curve of t threads or the base curve,
    ``Interference.slowdown_in_plan``). With U fixed every factor depends on the instance's
    own t only, so for each busy count U (U = cores with exact cores, every U in 1..cores
    with idle cores allowed) and each instance cap k (only k = the largest without dispatch
    costs; dispatch is non-decreasing in k, as in :func:`certify_with_dispatch`) the query
    is the one of :func:`certify` on the profile scaled cell by cell by s_t(U - t)
    (the cells of ``corun_profile``, the same floats) with exactly U threads and at most k
    instances: is there one with dispatch(k, B) + compute below the plan's total? All
    UNSAT: OPTIMAL; a SAT answer gives the witness (NOT_OPTIMAL); any unknown or the
    ``timeout_s`` limit: UNKNOWN, never OPTIMAL. Sockets (``cores_per_socket``) are supported
    with exact cores only.

    **Queries the density bound refutes are not sent to Z3** (``stats.bounded`` counts them).
    An allocation of query (U, k) has sub-batches b_j summing to B and threads t_j summing to
    exactly U, so one of its instances has b_j * U >= B * t_j (were every b_j * U < B * t_j,
    the sums would give B * U < B * U), and every instance of it satisfies dispatch(k, B) +
    L[t_j, b_j] * s_t(U - t_j) < the plan's total. So when no usable shape (t, b) of at most
    U threads with b * U >= B * t has dispatch(k, B) + its scaled latency below the total,
    query (U, k) is unsatisfiable: a proof by integer arithmetic on the same floats the query
    compares (the least scaled latency of those shapes, :func:`_density_bounds`, plus the
    dispatch cost, rounded as the query rounds it: x -> dispatch + x and x -> x * s are
    monotone in floating point). It assumes nothing of the co-run curves (any positive
    factors, monotone in U or not) and drops the constraints it does not need (instance cap,
    sockets, one shape), which only weakens it. Where the optimal plan is made of its densest
    cells (the built-in profiles) the bound refutes every query, the plan's own busy count
    included (the plan's latency is the bound there, and nothing is strictly below it): the
    certificate is the bound alone. Z3 decides the queries it leaves open (a batch the
    densest cells cannot tile, a plan beaten by a faster allocation).
    """
    from dataclasses import replace

    from packrat_sim.interference import slowdown_table
    from packrat_sim.predictor import Predictor

    start, options, timeout_s = _start(options, timeout_s)
    if profile.interference is None:
        raise CertifyError(f"the profile of {profile.model!r} has no interference model")
    if options.cores_per_socket is not None and not options.exact_cores:
        raise CertifyError("certifying under interference with cores_per_socket needs exact cores")
    problem = _problem(profile, batch, cores, options)
    _validate_plan(profile, problem, plan, options)
    total = Predictor(profile).plan_ms  # the one predictor: dispatch + slowest instance x slowdown
    latency = total(plan)
    if latency is None:  # not reached: _validate_plan accepts profiled, usable cells only
        raise CertifyError(f"the predictor cannot price the plan {plan.describe()}")
    plan = plan.with_prediction(latency)
    caps = _instance_caps(profile, batch, cores, options)
    busy_counts = [cores] if options.exact_cores else list(range(1, cores + 1))
    factors = slowdown_table(profile.interference, {s[0] for s in problem.shapes}, cores)
    bound = _density_bounds(problem.shapes, factors, batch, cores)
    answers: list[_Answer] = []
    bounded = 0
    witness = None
    result = Result.OPTIMAL
    for busy in busy_counts:
        status = "unsat"
        scaled: _Problem | None = None
        for k, cost in caps:
            if not cost + bound[busy] < latency:
                bounded += 1  # unsatisfiable by the density bound (docstring)
                continue
            if scaled is None:
                scaled = _scaled_problem(problem, factors, busy, options)
            answer = _query_total_below(replace(scaled, max_instances=k), cost, latency, start + timeout_s)
            answers.append(answer)
            status = answer.status
            if status != "unsat":
                break
        if status == "sat":
            result = Result.NOT_OPTIMAL
            found = Plan(answers[-1].instances, batch, cores)
            witness = found.with_prediction(total(found))
            break
        if status != "unsat":
            result = Result.UNKNOWN
            break
    return _certificate(result, plan, witness, start, timeout_s, problem, answers, bounded)


def _scaled_problem(problem: _Problem, factors: dict, busy: int, options: OptimizerOptions) -> _Problem:
    """The problem of exactly ``busy`` threads on the cells scaled for ``busy``: what
    ``_problem(corun_profile(profile, busy), batch, busy, exact options)`` builds, without
    building the profile. The shapes of at most ``busy`` threads (and within the sockets and
    ``max_threads_per_instance``) with latency x ``slowdown_in_plan(t, busy)`` (``factors``,
    the same floats ``corun_profile`` multiplies by), ranked by (latency, threads, batch)."""
    caps = sockets_of(busy, options.cores_per_socket)
    t_max = max(caps)
    if options.max_threads_per_instance is not None:
        t_max = min(t_max, options.max_threads_per_instance)
    shapes = sorted(
        ((t, b, float(lat * factors[t][busy])) for t, b, lat in problem.shapes if t <= t_max),
        key=lambda s: (s[2], s[0], s[1]),
    )
    return _Problem(batch=problem.batch, cores=busy, exact=True, caps=caps, max_instances=problem.max_instances,
                    homogeneous=problem.homogeneous, shapes=tuple(shapes))


def _density_bounds(shapes: Sequence[Shape], factors: dict, batch: int, cores: int) -> list[float]:
    """``bound[U]`` (U = 0..cores): the least scaled latency ``L[t, b] * s_t(U - t)`` over the
    ``shapes`` with t <= U and b * U >= batch * t (inf when there is none): the density bound
    of :func:`certify_under_interference`. Per thread count, the least latency of the shapes
    with at least a given sub-batch (a suffix minimum), times the factor: the minimum of the
    scaled latencies themselves, since x -> x * s is monotone for s > 0 in floating point."""
    by_threads: dict[int, list[tuple[int, float]]] = {}
    for t, b, lat in shapes:
        by_threads.setdefault(t, []).append((b, lat))
    bound = [math.inf] * (cores + 1)
    for t, cells in by_threads.items():
        if t > cores:
            continue
        cells.sort()
        sizes = [b for b, _ in cells]
        suffix = [math.inf] * (len(cells) + 1)
        for i in range(len(cells) - 1, -1, -1):
            suffix[i] = min(suffix[i + 1], cells[i][1])
        f = factors[t]
        for busy in range(t, cores + 1):
            least = suffix[bisect.bisect_left(sizes, -(-batch * t // busy))]
            if least < math.inf:
                bound[busy] = min(bound[busy], float(least * f[busy]))
    return bound
