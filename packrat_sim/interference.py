"""Interference between co-running instances: the model, its fit, and planning under it (exact).

**Model** (``Interference``, packrat_sim/profile.py). An instance of t threads in a plan
that keeps U threads busy in all takes ``L[t, b] * s_t(U - t)``: ``s_t`` is the curve of
its own thread count when the profile has one (``curves``, form ``busy-cores-by-threads``),
else the base curve ``s`` (``points``). Every curve is piecewise linear in the *other* busy
cores, 1 beside none, held constant beyond its last point. Form ``busy-cores`` (no
curves) is exactly the model profiles always had. The model is static: all instances of
a plan are taken to run side by side for the whole batch (conservative: an instance that
finishes early frees its cores, which the model ignores).

**Exactness.** With exactly U busy threads an instance's factor ``s_t(U - t)`` depends only
on its own t (U fixed), so a plan with U busy threads has latency max_j L'[t_j, b_j] on
the profile scaled cell by cell, ``L'[t, b] = L[t, b] * s_t(U - t)``: the Packrat problem on
L' with exactly U threads, which the DP solves exactly. The optimum is the best over U
(U = T with exact cores, U = 1..T with idle cores allowed). It is found without a DP per U
(issue 32, :func:`best_busy_plan`): the *density bound* (:func:`busy_bounds`) gives every U
a lower bound in one pass (some instance of a plan of U threads has b / t >= B / U, so the
plan is at least as slow as the fastest scaled cell that dense), the U are solved in
increasing order of their bound by a DP on the one cell (U, B) stopped early, and the search
ends when the bound cannot beat the best plan found; it assumes nothing of the curves and
returns the plan of the DP per U (:func:`plan_every_busy_count`, kept as the reference).
The Z3 certifier (checker/allocation.py) asks its per-U queries on the same scaled cells
(skipping those the same bound, derived there on its own, proves unsatisfiable), and the
predictor prices with the same ``Interference.slowdown_in_plan``, so all three compute the same
floats. Any form whose factor is a function of (t, U) keeps this argument; per-thread-count
curves are such a form. A dispatch cost (non-decreasing in the instance count k) adds one
more outer minimum, over caps on k, in the planner (``predictor.best_plan``) and Z3 alike.

**Placement is a series, not a term of the model.** A socket-aware slowdown (busy cores
on the instance's own socket vs the other socket) is not a function of (t, U): two
instances of one shape in one plan can sit on sockets of different load (2 sockets of 4
cores, 3 x 2t: one socket holds two of them, the other one), so no table scaled per U
prices the plan, and the DP per U would be wrong. Exactness could only come back by
fixing the busy count of every socket and confining instances to sockets: a DP per
socket per busy vector and a split of the batch between sockets, (c + 1)^n vectors for n
sockets of c cores (2 x 33^2 tables at T = 64 instead of 64), and as many Z3 queries.
The data do not ask for it: in the authors' 16-core k x 1-thread sweep (sequential
placement, cores filled in order, the second socket from k = 9) every instance of a run
is slowed alike, within 1.1%, wherever it sits: at k = 10..16 the mean slowdown of the
instances on the first eight cores and of those beyond them differ by at most 0.2%; at
k = 10 instances 9-10, with one busy neighbour on their side, ran 1.13x like the others,
and instances 1-8 went from 1.05x (k = 8) to 1.13x when those two started on the other
side. A busy core counts the same on either side: the total U is the variable.
Placement stays what it is in the data: ``topology=sequential`` and
``topology=interleave`` are separate series (profiles and co-run files), each calibrated
on its own (packed plans were 37% slower than predicted, the same plans spread 21%: one
model cannot serve both).

**What data fits which part** (:func:`fit_interference`). The base curve: every
observation, the median slowdown per other-core count (a k x 1-thread sweep is enough;
made non-decreasing when thread counts disagree, see the function). A thread count's own
curve: co-runs of instances of that many threads (observations keep their t), kept only
when it lowers that thread count's RMS relative error by more than ``CURVE_TOLERANCE``
below the base curve's: the simplest form that fits. Errors (RMS of ``(observed - model)
/ model``) are stored: the model's, each curve's, and the base curve's alone when curves
were kept.

Pure functions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from packrat_sim import validate
from packrat_sim.optimizer import (
    Item,
    OptimizerError,
    OptimizerOptions,
    _check_problem,
    _check_size,
    _infeasible_message,
    cell_plan,
    check_problem,
    optimize,
    profile_items,
    sweep_row,
    walk_back,
)
from packrat_sim.plan import Plan
from packrat_sim.profile import Cell, Interference, Points, Profile, ProfileError, ThreadCurve

#: A thread count gets its own curve only when that lowers its RMS relative fit error by
#: more than this (one percentage point: about the spread between the instances of one run).
CURVE_TOLERANCE = 0.01

#: An observation: (other_busy_cores, slowdown), or (threads, other_busy_cores, slowdown).
Observation = tuple[int, float] | tuple[int, int, float]
_Obs = tuple[int | None, int, float]  # (threads or None, other busy cores, slowdown), validated


def _observation(raw: Sequence) -> _Obs:
    """One observation validated: (threads or None, other busy cores, slowdown); ProfileError
    naming a bad value or shape."""
    if len(raw) not in (2, 3):
        raise ProfileError(f"an observation must be (other cores, slowdown) or (threads, other cores, slowdown), "
                           f"got {tuple(raw)!r}")
    threads = None if len(raw) == 2 else validate.positive_int(raw[0], "threads", error=ProfileError, numpy=True)
    cores = validate.nonnegative_int(raw[-2], "other busy cores", error=ProfileError, numpy=True)
    return threads, cores, validate.positive_float(raw[-1], "a slowdown", error=ProfileError)


def _median_points(obs: Iterable[_Obs]) -> Points:
    """The median slowdown per other-core count > 0 (a point at 0 is 1 by definition)."""
    by_k: dict[int, list[float]] = {}
    for _, k, s in obs:
        by_k.setdefault(k, []).append(s)
    return tuple((k, float(np.median(v))) for k, v in sorted(by_k.items()) if k > 0)


def _rms(obs: Sequence[_Obs], model: Interference) -> float:
    """RMS of the relative residuals ``(observed - model) / model`` of ``obs`` (0 for none)."""
    residuals = [(s - (m := model.slowdown(k, t))) / m for t, k, s in obs]
    return float(np.sqrt(np.mean(np.square(residuals)))) if residuals else 0.0


def _thread_curves(obs: Sequence[_Obs], base: Interference, tolerance: float) -> tuple[ThreadCurve, ...]:
    """Per known thread count with co-run observations, its median curve, kept when it lowers
    that thread count's RMS relative error by more than ``tolerance`` below ``base``'s."""
    curves = []
    for t in sorted({t for t, _, _ in obs if t is not None}):
        mine = [o for o in obs if o[0] == t]
        points = _median_points(mine)
        if not points:
            continue
        own = _rms(mine, Interference(points=points))
        if _rms(mine, base) - own > tolerance:
            curves.append(ThreadCurve(threads=t, points=points, fit_error=own))
    return tuple(curves)


def fit_interference(observations: Iterable[Observation], *, tolerance: float = CURVE_TOLERANCE) -> Interference:
    """Fit the co-run model (module doc) to ``observations``: (other_busy_cores, slowdown)
    pairs, or (threads, other_busy_cores, slowdown) triples (the instance's own t), mixed
    freely (a pair only informs the base curve).

    The base curve is the median slowdown at each observed core count over every
    observation (a point at 0 other cores is forced to 1.0), linear in between. A thread
    count gets its own curve (its observations' medians) when that lowers its RMS relative
    error by more than ``tolerance`` (a fraction, >= 0); with one thread count the base
    already is its curve, and when no thread count needs one the model is exactly that
    base (form ``busy-cores``). When some do, the pooled medians mix thread counts that
    behave differently, each measured at its own core counts (k x t runs leave (k - 1) t
    others), and zigzag; the base, which then serves only the thread counts without a
    curve, is made non-decreasing (each point raised to the largest at fewer cores: never
    faster beside more busy cores, and conservative for the unmeasured), and the curves
    are chosen against it. ``fit_error`` is the RMS of the relative residuals of every
    observation under the model; each curve's over its own; ``base_fit_error`` the base
    curve's alone, when curves were kept. Pure; ProfileError on empty or invalid input.
    """
    tolerance = validate.nonnegative_float(tolerance, "tolerance", error=ProfileError)
    obs = [_observation(o) for o in observations]
    pooled = _median_points(obs)
    if not pooled:
        raise ProfileError("interference needs observations with at least one other busy core")
    pooled_model = Interference(points=pooled)
    if not _thread_curves(obs, pooled_model, tolerance):
        return replace(pooled_model, fit_error=_rms(obs, pooled_model))
    base = Interference(points=_non_decreasing(pooled))
    curves = _thread_curves(obs, base, tolerance)
    if not curves:
        return replace(base, fit_error=_rms(obs, base))
    model = Interference(points=base.points, curves=curves)
    return replace(model, fit_error=_rms(obs, model), base_fit_error=_rms(obs, base))


def _non_decreasing(points: Points) -> Points:
    """``points`` with each slowdown raised to the largest one at fewer cores (running max)."""
    out, top = [], 0.0
    for k, s in points:
        top = max(top, s)
        out.append((k, top))
    return tuple(out)


def _scale_cell(cell: Cell, factor: float) -> Cell:
    def f(x):
        return None if x is None else x * factor

    return Cell(
        threads=cell.threads,
        batch=cell.batch,
        mean_ms=cell.mean_ms * factor,
        min_ms=cell.min_ms * factor,
        max_ms=cell.max_ms * factor,
        median_ms=f(cell.median_ms),
        p90_ms=f(cell.p90_ms),
        samples_ms=tuple(s * factor for s in cell.samples_ms),
    )


def corun_profile(profile: Profile, busy: int) -> Profile:
    """The profile as seen inside a plan keeping ``busy`` threads busy: every cell with
    t <= busy scaled by ``s_t(busy - t)`` (``Interference.slowdown_in_plan``, the predictor's
    factor; cells with more threads cannot run there and are left as they are; the
    optimizer never uses them for ``busy`` cores). Pure."""
    model = _require_model(profile)
    factor = {t: model.slowdown_in_plan(t, busy) for t in profile.threads if t <= busy}
    cells = tuple(_scale_cell(c, factor[c.threads]) if c.threads <= busy else c for c in profile.cells)
    return replace(profile, cells=cells, interference=None)


def _require_model(profile: Profile) -> Interference:
    if profile.interference is None:
        raise OptimizerError(
            f"the profile of {profile.model!r} has no interference model; measure one with "
            "`packrat profile --model NAME --interference`"
        )
    return profile.interference


def latency_under_interference(plan: Plan, profile: Profile) -> float:
    """Predicted batch latency (ms) of ``plan`` under the profile's interference model:
    max over instances of predict(t, b) * s_t(U - t), U = threads the plan keeps busy."""
    model = _require_model(profile)
    busy = plan.threads_used
    return max(profile.predict(i.threads, i.batch) * model.slowdown_in_plan(i.threads, busy) for i in plan.instances)


@dataclass(frozen=True)
class InterferencePlan:
    """An interference-aware plan and the isolated-profile plan judged by the same model.

    The isolated plan is found (by the isolated optimizer, same options) only when asked
    for: the planners that want the aware plan alone do not pay for a second search."""

    plan: Plan  # predicted_ms is the latency under interference
    busy_cores: int
    profile: Profile = field(repr=False, compare=False)
    batch: int = field(repr=False, compare=False)
    cores: int = field(repr=False, compare=False)
    options: OptimizerOptions = field(repr=False, compare=False)

    @cached_property
    def isolated_plan(self) -> Plan:
        """The isolated optimizer's plan; predicted_ms is its isolated-profile prediction."""
        return optimize(self.profile, self.batch, self.cores, self.options)

    @cached_property
    def isolated_under_interference_ms(self) -> float:
        """What :attr:`isolated_plan` takes under the co-run model (ms)."""
        return latency_under_interference(self.isolated_plan, self.profile)

    @property
    def gain(self) -> float:
        """How much faster the aware plan is than the isolated one, both under interference."""
        return self.isolated_under_interference_ms / self.plan.require_prediction()


def slowdown_table(model: Interference, threads: Iterable[int], cores: int) -> dict[int, np.ndarray]:
    """For each thread count t in ``threads`` (t <= ``cores``), the array ``f`` with
    ``f[U] = model.slowdown_in_plan(t, U)`` for U = t..cores (nan below t): the factor of a
    t-thread instance in a plan keeping U threads busy, the very floats every consumer
    multiplies by. A thread count without a curve of its own reads the base curve, so the
    base is evaluated once (``cores`` calls) and shared; each own curve adds its own calls."""
    own = {c.threads for c in model.curves}
    base: list[float] | None = None
    out: dict[int, np.ndarray] = {}
    for t in sorted(set(threads)):
        if t > cores:
            continue
        f = np.full(cores + 1, np.nan)
        if t in own:
            f[t:] = [model.slowdown(k, t) for k in range(cores - t + 1)]
        else:
            if base is None:
                base = [model.slowdown(k) for k in range(cores)]
            f[t:] = base[: cores - t + 1]
        out[t] = f
    return out


def busy_bounds(items: Sequence[Item], factors: dict[int, np.ndarray], batch: int, cores: int) -> np.ndarray:
    """``lb[U]`` for U = 0..cores: a lower bound on the latency of every plan of ``items``
    (isolated (threads, batch, latency) cells) serving ``batch`` with exactly U busy threads
    under the co-run factors ``factors`` (:func:`slowdown_table`); inf when no such plan exists.

    The bound (the *density bound*): ``lb[U]`` = min over items (t, b) with t <= U and
    b * U >= batch * t of ``latency * s_t(U - t)``. Sound for every model, whatever the shape
    of its curves (any positive factors, monotone in U or not): a plan with sub-batches b_j
    summing to ``batch`` and threads t_j summing to U has an instance with
    b_j * U >= batch * t_j (if every b_j * U < batch * t_j, summing gives batch * U < batch * U),
    and the plan's latency is at least that instance's scaled latency, which is at least the
    minimum. It is exact in floats: the minimum is taken over the unscaled latencies of a
    thread count and multiplied by its factor once (x -> x * f is monotone for f > 0 under
    rounding), so ``lb[U]`` is the scaled latency of a real cell and equals the optimum when
    the optimal plan is made of its densest cells (as on the built-in profiles)."""
    lb = np.full(cores + 1, np.inf)
    by_threads: dict[int, list[tuple[int, float]]] = {}
    for t, b, latency in items:
        if t <= cores:
            by_threads.setdefault(t, []).append((b, latency))
    busy = np.arange(cores + 1, dtype=np.int64)
    for t, cells in by_threads.items():
        cells.sort()
        sizes = np.array([b for b, _ in cells], dtype=np.int64)
        suffix = np.append(np.minimum.accumulate(np.array([x for _, x in cells])[::-1])[::-1], np.inf)
        need = -(-int(batch) * t // busy[t:])  # the least sub-batch of density >= batch / U
        cand = suffix[np.searchsorted(sizes, need, side="left")] * factors[t][t:]
        np.minimum(lb[t:], cand, out=lb[t:])
    return lb


def _busy_plan(profile: Profile, batch: int, busy: int, options: OptimizerOptions,
               scaled_items: Sequence[Item] | None, limit: float, inclusive: bool) -> Plan | None:
    """The optimal plan with exactly ``busy`` threads on the profile scaled for ``busy``, or
    None when there is none or it is worse than ``limit`` (equal counts as worse unless
    ``inclusive``). ``scaled_items``: the scaled cells, for the early-stopping one-cell
    sweep; None for the options it does not serve (homogeneous, max_instances, sockets),
    which run the optimizer on ``corun_profile`` as the full search does."""
    if scaled_items is not None:
        return cell_plan(scaled_items, busy, batch, limit, inclusive=inclusive)
    try:
        plan = optimize(corun_profile(profile, busy), batch, busy, replace(options, exact_cores=True))
    except OptimizerError:
        return None  # nothing covers the batch with exactly `busy` threads
    ms = plan.require_prediction()
    return plan if ms < limit or (ms == limit and inclusive) else None


def _scaled(items: Sequence[Item], factors: dict[int, np.ndarray], busy: int) -> list[Item]:
    """The items of at most ``busy`` threads scaled for a plan keeping ``busy`` busy, ranked
    as :func:`profile_items` ranks the cells of ``corun_profile(profile, busy)``: the same floats
    (cell latency x ``slowdown_in_plan``) in the same order."""
    scaled = [(t, b, float(latency * factors[t][busy])) for t, b, latency in items if t <= busy]
    scaled.sort(key=lambda it: (it[2], it[0], it[1]))
    return scaled


def best_busy_plan(profile: Profile, batch: int, cores: int, options: OptimizerOptions) -> tuple[Plan, int] | None:
    """The plan of least latency under the profile's co-run model and its busy-thread count
    U, or None when no plan exists; OptimizerError, as :func:`optimize` raises it, for a
    batch or cores invalid for the profile, an uncoverable batch or tables too large (module doc: the optimum over U of the DP with exactly U
    threads on the cells scaled for U; ties go to fewer busy threads). Exact, and the same
    plan as :func:`plan_every_busy_count`, the DP for every U.

    With idle cores allowed it is a best-first branch and bound over U instead of one DP per
    U: :func:`busy_bounds` gives every U a lower bound in one vectorised pass; the U are
    solved in increasing (bound, U) order, each by :func:`packrat_sim.optimizer.cell_plan`
    (the one cell (U, batch), its sweep stopped as soon as the cell is reached or the items
    grow worse than the best plan so far), and the search ends at the first U whose bound
    cannot beat the best (value, U) found: every later U is bounded at least as high. No
    property of the curves is assumed (the bound holds for any positive factors), so odd or
    non-monotone models are searched exactly too, only with less pruning. On the built-in
    profiles the bound of the optimal U is its optimum, and one U is solved.
    Homogeneous plans, ``max_instances`` and sockets solve each U with the optimizer on
    ``corun_profile``; the bound prunes them alike (it ignores those constraints, so it
    still bounds from below).
    """
    model = _require_model(profile)
    check_problem(profile, batch, cores, options)
    fast = not options.homogeneous and not options.constrained
    items = profile_items(profile, cores, batch, options)
    factors = slowdown_table(model, {t for t, _, _ in items}, cores)
    if options.exact_cores:
        plan = _busy_plan(profile, batch, cores, options, _scaled(items, factors, cores) if fast else None,
                          math.inf, True)
        return None if plan is None else (plan, cores)
    lb = busy_bounds(items, factors, batch, cores)
    order = sorted((u for u in range(1, cores + 1) if math.isfinite(lb[u])), key=lambda u: (lb[u], u))
    best: Plan | None = None
    best_ms, best_busy = math.inf, 0
    for busy in order:
        if lb[busy] > best_ms or (lb[busy] == best_ms and busy > best_busy):
            break
        plan = _busy_plan(profile, batch, busy, options, _scaled(items, factors, busy) if fast else None,
                          best_ms, busy < best_busy)
        if plan is not None:
            best, best_ms, best_busy = plan, plan.require_prediction(), busy
    return None if best is None else (best, best_busy)


def plan_every_busy_count(profile: Profile, batch: int, cores: int,
                          options: OptimizerOptions) -> tuple[Plan, int] | None:
    """The reference search :func:`best_busy_plan` must agree with: one full DP per busy
    count U (U = cores with exact cores, U = 1..cores with idle cores allowed) on
    ``corun_profile(profile, U)``, the best plan kept (ties: the first, fewer threads).
    Slow (a table per U: 40 s at T=256, B=4096); for tests and benchmarks."""
    _require_model(profile)
    exact = replace(options, exact_cores=True)
    best: Plan | None = None
    best_busy = 0
    for busy in [cores] if options.exact_cores else range(1, cores + 1):
        try:
            plan = optimize(corun_profile(profile, busy), batch, busy, exact)
        except OptimizerError:
            continue  # nothing covers the batch with exactly `busy` threads
        if best is None or plan.require_prediction() < best.require_prediction():
            best, best_busy = plan, busy
    return None if best is None else (best, best_busy)


def optimize_with_interference(
    profile: Profile, batch: int, cores: int, options: OptimizerOptions | None = None
) -> InterferencePlan:
    """The plan minimising latency under the profile's interference model (module doc;
    :func:`best_busy_plan`).

    Same options as the isolated optimizer, and the same errors for a bad or uncoverable
    problem; ties between busy-core counts go to fewer cores. Raises OptimizerError without
    an interference model or without a plan.
    """
    options = options or OptimizerOptions()
    _require_model(profile)
    if options.cores_per_socket is not None and not options.exact_cores:
        raise OptimizerError("planning under interference with cores_per_socket needs exact cores")
    found = best_busy_plan(profile, batch, cores, options)  # OptimizerError for a bad or uncoverable problem
    if found is None:
        optimize(profile, batch, cores, options)  # the same cells cover nothing: the isolated optimizer's error
        raise OptimizerError(f"batch {batch} cannot be covered on {cores} cores under interference")
    best, busy = found
    final = Plan(best.instances, batch, cores, predicted_ms=best.predicted_ms)
    return InterferencePlan(plan=final, busy_cores=busy, profile=profile, batch=batch, cores=cores, options=options)


class CoRunPlanTable:
    """The calibrated optimum (under the profile's co-run model, as
    :func:`optimize_with_interference` plans) for every batch 1..``batch`` on ``cores`` cores,
    with :class:`packrat_sim.optimizer.PlanTable`'s interface for that row:
    ``latency_ms(cores, b)`` (inf where no plan exists) and ``plan(cores, b)``, which returns
    exactly the plan ``optimize_with_interference(profile, b, cores, options).plan`` returns.
    For the adaptive policy's plan catalog, whose candidates are the best plan of each batch.

    Built by one threshold sweep per busy-thread count U (cores only with exact cores, else
    U = cores down to 1) over the cells scaled for U, each on a table only as wide as the
    largest batch U can still win: the density bound of :func:`busy_bounds`, per batch,
    skips the batches (and the U) whose bound cannot beat the best plan of a larger U so far
    (a tie goes to the smaller U, as in the planner). A batch's plan in a wider table is
    the plan of the table of that batch (items of larger sub-batches never reach its cells).
    Cheap at the policy's sizes (T = 16, batch 64: milliseconds); at T = 256 and batch
    4096 every U still needs its bound row and many a sweep, so it costs seconds.
    Instances are immutable after construction.
    """

    def __init__(self, profile: Profile, cores: int, batch: int, options: OptimizerOptions | None = None):
        options = options or OptimizerOptions()
        model = _require_model(profile)
        _check_problem(profile, batch, cores)
        if options.homogeneous or options.constrained:
            raise OptimizerError("CoRunPlanTable is for heterogeneous plans without max_instances or "
                                 "cores_per_socket; use optimize_with_interference()")
        _check_size(profile, batch, cores, cores, coverage=False)  # infeasible cells read as inf
        self.profile, self.cores, self.batch, self.options = profile, int(cores), int(batch), options
        items = profile_items(profile, cores, batch, options)
        factors = slowdown_table(model, {t for t, _, _ in items}, cores)
        best = np.full(self.batch + 1, np.inf)
        busy_of = np.zeros(self.batch + 1, dtype=np.int64)
        tables: dict[int, tuple[np.ndarray, list[Item]]] = {}
        for busy in [self.cores] if options.exact_cores else range(self.cores, 0, -1):
            bound = _row_bounds(items, factors, busy, self.batch)
            need = np.flatnonzero((bound[1:] <= best[1:]) & np.isfinite(bound[1:])) + 1  # a smaller U wins a tie
            if len(need) == 0:
                continue
            width = int(need[-1])
            scaled = [it for it in _scaled(items, factors, busy) if it[1] <= width]
            targets = np.zeros(width + 1, dtype=bool)
            targets[need] = True
            row, choice = sweep_row(scaled, busy, width, targets, float(best[need].max()))
            win = np.flatnonzero(row[1:] <= best[1 : width + 1]) + 1
            win = win[np.isfinite(row[win])]
            if len(win):
                best[win] = row[win]
                busy_of[win] = busy
                tables[busy] = (choice, scaled)
        used = set(busy_of[1:].tolist())
        self._tables = {u: tables[u] for u in used if u in tables}  # only the tables some batch reads
        self._best, self._busy = best, busy_of

    def latency_ms(self, cores: int, batch: int) -> float:
        """The calibrated optimal latency (ms) of ``batch`` on this table's cores; inf when none."""
        self._check_bounds(cores, batch)
        return float(self._best[batch])

    def busy_cores(self, batch: int) -> int:
        """The threads the optimal plan of ``batch`` keeps busy (0 when there is none)."""
        self._check_bounds(self.cores, batch)
        return int(self._busy[batch])

    def _check_bounds(self, cores: int, batch: int) -> None:
        if cores != self.cores or not 1 <= batch <= self.batch:
            raise OptimizerError(f"(cores={cores}, batch={batch}) is outside this calibrated table "
                                 f"(cores = {self.cores}, batch <= {self.batch})")

    def plan(self, cores: int, batch: int) -> Plan:
        """The calibrated optimal plan of ``batch`` on ``cores`` (this table's cores), with
        ``predicted_ms`` its latency under the co-run model; OptimizerError when none exists."""
        self._check_bounds(cores, batch)
        if not math.isfinite(self._best[batch]):
            raise OptimizerError(_infeasible_message(self.profile, cores, batch, self.options))
        busy = int(self._busy[batch])
        choice, items = self._tables[busy]
        return Plan(walk_back(choice, items, busy, batch), batch, self.cores, predicted_ms=float(self._best[batch]))


def _row_bounds(items: Sequence[Item], factors: dict[int, np.ndarray], busy: int, batch: int) -> np.ndarray:
    """``bound[b]`` for b = 0..batch: the density bound of :func:`busy_bounds` for exactly
    ``busy`` busy threads and every batch b at once (inf where no plan of ``busy`` threads
    can serve b; bound[0] is inf, unused)."""
    bound = np.full(batch + 1, np.inf)
    by_threads: dict[int, list[tuple[int, float]]] = {}
    for t, b, latency in items:
        if t <= busy:
            by_threads.setdefault(t, []).append((b, latency))
    sizes_needed = np.arange(batch + 1, dtype=np.int64)
    for t, cells in by_threads.items():
        cells.sort()
        sizes = np.array([b for b, _ in cells], dtype=np.int64)
        suffix = np.append(np.minimum.accumulate(np.array([x for _, x in cells])[::-1])[::-1], np.inf)
        least = suffix[np.searchsorted(sizes, -(-sizes_needed * t // busy), side="left")]
        np.minimum(bound, least * factors[t][busy], out=bound)
    bound[0] = np.inf
    return bound
