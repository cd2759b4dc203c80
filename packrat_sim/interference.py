"""Interference between co-running instances: fitting the model, and planning under it.

Model (``Interference``, form ``busy-cores``, see packrat_sim/profile.py): an instance
with t threads running while the plan keeps U threads busy in total is slowed down by
``s(U - t)``, a piecewise-linear function of the *other* busy cores with s(0) = 1. Its
latency is ``L[t, b] * s(U - t)``. The model is static: all instances of a plan are
taken to run side by side for the whole batch (conservative: an instance that finishes
early frees its cores, which the model ignores).

Planning under the model is exact, not a re-ranking of isolated plans: with exactly U
busy threads every instance's slowdown depends only on its own t, so the optimum for
U is the Packrat optimum of the profile scaled cell by cell with ``s(U - t)``. With
exactly T cores (Packrat's rule) that is one table; with idle cores allowed the planner
takes the best over U = 1..T (one table per U).

Pure functions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

from packrat_sim import validate
from packrat_sim.optimizer import OptimizerError, OptimizerOptions, optimize
from packrat_sim.plan import Plan
from packrat_sim.profile import Cell, Interference, Profile, ProfileError


def fit_interference(observations: Iterable[tuple[int, float]]) -> Interference:
    """Fit the busy-cores model to co-run observations (other_busy_cores, slowdown).

    The fitted points are the median slowdown at each observed core count (a point at 0
    other cores is forced to 1.0); between them the model interpolates linearly. The
    fit error is the root mean square of the relative residuals of every observation,
    ``(observed - model) / model``. Raises ProfileError on empty or invalid input.
    """
    by_k: dict[int, list[float]] = {}
    for k, s in observations:
        cores = validate.nonnegative_int(k, "other busy cores", error=ProfileError, numpy=True)
        slowdown = validate.positive_float(s, "a slowdown", error=ProfileError)
        by_k.setdefault(cores, []).append(slowdown)
    if not any(k > 0 for k in by_k):
        raise ProfileError("interference needs observations with at least one other busy core")
    points = tuple((k, float(np.median(v))) for k, v in sorted(by_k.items()) if k > 0)
    model = Interference(points=points)
    residuals = [(s - model.slowdown(k)) / model.slowdown(k) for k, v in by_k.items() for s in v]
    fit_error = float(np.sqrt(np.mean(np.square(residuals))))
    return Interference(points=points, fit_error=fit_error)


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
    t <= busy scaled by ``s(busy - t)`` (cells with more threads cannot run there and
    are left as they are; the optimizer never uses them for ``busy`` cores)."""
    model = _require_model(profile)
    factor = {t: model.slowdown(busy - t) for t in profile.threads if t <= busy}
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
    max over instances of predict(t, b) * s(U - t), U = threads the plan keeps busy."""
    model = _require_model(profile)
    busy = plan.threads_used
    return max(profile.predict(i.threads, i.batch) * model.slowdown(busy - i.threads) for i in plan.instances)


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
