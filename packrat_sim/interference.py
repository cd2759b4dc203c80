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
(U = T with exact cores, U = 1..T with idle cores allowed). The Z3 certifier
(checker/allocation.py) asks its per-U queries on the same scaled cells, and the predictor
prices with the same ``Interference.slowdown_in_plan``, so all three compute the same
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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from packrat_sim import validate
from packrat_sim.optimizer import OptimizerError, OptimizerOptions, optimize
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
    """An interference-aware plan and the isolated-profile plan judged by the same model."""

    plan: Plan  # predicted_ms is the latency under interference
    isolated_plan: Plan  # predicted_ms is its isolated-profile prediction
    isolated_under_interference_ms: float
    busy_cores: int

    @property
    def gain(self) -> float:
        """How much faster the aware plan is than the isolated one, both under interference."""
        return self.isolated_under_interference_ms / self.plan.require_prediction()


def optimize_with_interference(
    profile: Profile, batch: int, cores: int, options: OptimizerOptions | None = None
) -> InterferencePlan:
    """The plan minimising latency under the profile's interference model (module doc).

    Same options as the isolated optimizer; ties between busy-core counts go to fewer
    cores. Raises OptimizerError without an interference model or without a plan.
    """
    options = options or OptimizerOptions()
    _require_model(profile)
    if options.cores_per_socket is not None and not options.exact_cores:
        raise OptimizerError("planning under interference with cores_per_socket needs exact cores")
    isolated = optimize(profile, batch, cores, options)
    candidates = [cores] if options.exact_cores else list(range(1, cores + 1))
    exact = replace(options, exact_cores=True)
    best: Plan | None = None
    best_busy = 0
    for busy in candidates:
        try:
            plan = optimize(corun_profile(profile, busy), batch, busy, exact)
        except OptimizerError:
            continue  # nothing covers the batch with exactly `busy` threads
        if best is None or plan.require_prediction() < best.require_prediction():
            best, best_busy = plan, busy
    if best is None:
        raise OptimizerError(f"batch {batch} cannot be covered on {cores} cores under interference")
    final = Plan(best.instances, batch, cores, predicted_ms=best.predicted_ms)
    return InterferencePlan(
        plan=final,
        isolated_plan=isolated,
        isolated_under_interference_ms=latency_under_interference(isolated, profile),
        busy_cores=best_busy,
    )
