"""One latency predictor and one candidate set for every consumer (planner, Z3, simulator, CLI, UI).

The predicted latency of a plan with k instances serving a batch of B on a profile is

    dispatch_ms(k, B) + max_j  L[t_j, b_j] * s(U - t_j)

where ``L`` is the cell's latency (the profile's statistic, or one chosen), ``s`` the
profile's co-run slowdown (1 without an interference model, or when ``interference`` is
off) and U the threads the plan keeps busy. ``dispatch_ms`` is the measured cost of
splitting the batch over k pooled workers and gathering the results (0 for profiles
without dispatch measurements, e.g. schema /1 files and the builtin synthetic ones).

**Candidate cells.** Which (t, b) may be an instance is a single choice, made once:

* ``"profiled"`` (default): only the cells the profile measured;
* ``"interpolated"``: every (t, b) with t <= min(T, profiled threads) and b <= B, priced by
  ``Profile.predict`` where not measured (:func:`candidate_profile` materialises them).

The optimizer and Z3 search exactly this set, and the baselines are priced on it: a plan
or baseline whose cell is not a candidate is not priced at all (``None``). Because the
baselines are built from candidate cells under the same options, the optimum found by the
DP (or certified by Z3) is never beaten by a baseline (issue 14 / issue 19: the thin
baseline priced on interpolated cells the DP never saw beat the "optimal" plan).

Pure functions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from packrat_sim.errors import PackratError
from packrat_sim.optimizer import OptimizerError, OptimizerOptions, optimize
from packrat_sim.plan import Instance, Plan, PlanError, fat, split_evenly, thin
from packrat_sim.profile import Cell, Profile, ProfileError

CANDIDATES = ("profiled", "interpolated")
# interpolated candidate sets are materialised as cells; refuse sets larger than this
MAX_CANDIDATE_CELLS = 2_000_000


class PredictorError(PackratError):
    """Bad predictor input (unknown candidate set, a set too large); names the value."""


def check_candidates(candidates: str) -> str:
    """``candidates`` if it is one of CANDIDATES, else PredictorError naming it."""
    if candidates not in CANDIDATES:
        raise PredictorError(f"unknown candidate set {candidates!r}; choose one of {', '.join(CANDIDATES)}")
    return candidates


def candidate_profile(profile: Profile, cores: int, batch: int, candidates: str = "profiled") -> Profile:
    """The profile whose cells are exactly the candidate instance shapes for (cores, batch).

    ``"profiled"``: ``profile`` itself. ``"interpolated"``: the measured cells plus, for
    every t in 1..min(cores, profile.max_threads) and b in 1..batch not measured, a cell
    whose every statistic is ``profile.predict(t, b)`` (no samples; meta ``candidates``
    says so). PredictorError when that would exceed MAX_CANDIDATE_CELLS cells.
    """
    check_candidates(candidates)
    if candidates == "profiled":
        return profile
    t_max = min(int(cores), profile.max_threads)
    size = t_max * int(batch)
    if size > MAX_CANDIDATE_CELLS:
        raise PredictorError(
            f"interpolated candidates for {t_max} threads x batch {batch} are {size} cells, above the "
            f"limit of {MAX_CANDIDATE_CELLS}; use the profiled candidates or a smaller batch"
        )
    cells = list(profile.cells)
    for t in range(1, t_max + 1):
        for b in range(1, int(batch) + 1):
            if profile.cell(t, b) is None:
                v = profile.predict(t, b)
                cells.append(Cell(threads=t, batch=b, mean_ms=v, min_ms=v, max_ms=v, median_ms=v, p90_ms=v))
    meta = dict(profile.meta)
    meta["candidates"] = "interpolated"
    # every statistic of an interpolated cell is the prediction of the profile's statistic
    return replace(profile, cells=tuple(cells), meta=tuple(sorted(meta.items())))


@dataclass(frozen=True)
class Predictor:
    """The latency model over one candidate profile (see the module doc).

    ``profile`` should come from :func:`candidate_profile`; ``statistic`` None reads the
    profile's own; ``interference`` applies the profile's co-run model when it has one.
    """

    profile: Profile
    statistic: str | None = None
    interference: bool = True

    def cell_ms(self, threads: int, batch: int) -> float | None:
        """Isolated latency (ms) of a candidate cell, None when (threads, batch) is not one."""
        return self.profile.latency(threads, batch, self.statistic)

    def slowdown(self, threads: int, busy: int) -> float:
        """Co-run slowdown (>= 0 factor) of a ``threads``-thread instance in a plan keeping ``busy`` busy."""
        model = self.profile.interference
        if not self.interference or model is None:
            return 1.0
        return model.slowdown(busy - threads)

    def compute_ms(self, plan: Plan) -> float | None:
        """max_j L[t_j, b_j] * s(U - t_j) in ms; None if an instance is not a candidate cell."""
        busy = plan.threads_used
        worst = 0.0
        for inst in plan.instances:
            v = self.cell_ms(inst.threads, inst.batch)
            if v is None:
                return None
            worst = max(worst, v * self.slowdown(inst.threads, busy))
        return worst

    def dispatch_ms(self, plan: Plan) -> float:
        """Measured dispatch cost (ms) for the plan's instance count and batch (0 if unmeasured)."""
        return self.profile.dispatch_ms(len(plan.instances), plan.batch)

    def plan_ms(self, plan: Plan) -> float | None:
        """Predicted batch latency (ms) = dispatch + compute; None if a cell is not a candidate."""
        compute = self.compute_ms(plan)
        return None if compute is None else self.dispatch_ms(plan) + compute

    def priced(self, plan: Plan) -> Plan:
        """``plan`` with ``predicted_ms`` = :meth:`plan_ms`; PredictorError if not priceable."""
        ms = self.plan_ms(plan)
        if ms is None:
            missing = [f"{i.threads}t x {i.batch}" for i in plan.instances if self.cell_ms(i.threads, i.batch) is None]
            raise PredictorError(f"plan {plan.describe()} uses cells that are not candidates: {', '.join(sorted(set(missing)))}")
        return plan.with_prediction(ms)


@dataclass(frozen=True)
class Baseline:
    """A baseline plan priced by the predictor: ``plan``/``ms`` None when it cannot run under
    the options on the candidate cells (``note`` says why); ``note`` also says when the
    baseline is not the textbook form (e.g. thin over profiled sub-batches)."""

    name: str
    plan: Plan | None
    ms: float | None
    note: str = ""

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "groups": None if self.plan is None else [list(g) for g in self.plan.groups()],
            "ms": self.ms,
            "note": self.note,
        }


def _admissible(plan: Plan, cores: int, options: OptimizerOptions, predictor: Predictor) -> str:
    """Why ``plan`` is outside the search space of (options, candidates); '' when inside."""
    if options.exact_cores and plan.threads_used != cores:
        return f"uses {plan.threads_used} of {cores} cores, and exact cores are required"
    missing = sorted({(i.threads, i.batch) for i in plan.instances if predictor.cell_ms(i.threads, i.batch) is None})
    if missing:
        return "needs cells that are not candidates: " + ", ".join(f"{t}t x {b}" for t, b in missing)
    if any(i.batch < options.min_batch for i in plan.instances):
        return f"has sub-batches below {options.min_batch}"
    cap = options.max_threads_per_instance
    if cap is not None and any(i.threads > cap for i in plan.instances):
        return f"has instances above {cap} threads"
    if options.max_instances is not None and len(plan.instances) > options.max_instances:
        return f"has more than {options.max_instances} instances"
    if options.homogeneous and len({(i.threads, i.batch) for i in plan.instances}) > 1:
        return "is not homogeneous"
    if options.cores_per_socket is not None and any(i.threads > options.cores_per_socket for i in plan.instances):
        return f"has an instance spanning sockets of {options.cores_per_socket} cores"
    return ""


def baselines(predictor: Predictor, batch: int, cores: int, options: OptimizerOptions | None = None) -> dict[str, Baseline]:
    """The fat and thin baselines of (batch, cores), priced by ``predictor`` on its candidates.

    * fat: one instance of ``cores`` threads on the whole batch, when that cell is a
      candidate and the options allow it, else unavailable;
    * thin: ``min(cores, batch)`` one-thread instances sharing the batch evenly, when all
      its cells are candidates and the options allow it; otherwise the fastest plan of
      one-thread instances over the candidate cells under the same options (found by the
      optimizer, so it is never faster than the optimum), noted as such.
    Pure; never raises for an infeasible baseline (it is reported unavailable).
    """
    options = options or OptimizerOptions()
    out: dict[str, Baseline] = {}
    big = fat(batch, cores)
    why = _admissible(big, cores, options, predictor)
    out["fat"] = Baseline("fat", None, None, f"unavailable: {why}") if why else Baseline("fat", big, predictor.plan_ms(big))
    small = thin(batch, cores)
    why = _admissible(small, cores, options, predictor)
    if not why:
        out["thin"] = Baseline("thin", small, predictor.plan_ms(small))
        return out
    one = replace(options, max_threads_per_instance=1, homogeneous=False)
    try:
        found = best_plan(predictor, batch, cores, one)
    except (OptimizerError, PredictorError, PlanError, ProfileError) as exc:
        out["thin"] = Baseline("thin", None, None, f"unavailable: the even split {why}; no 1-thread plan: {exc}")
        return out
    out["thin"] = Baseline("thin", found, found.predicted_ms,
                           f"even split {why}; fastest 1-thread plan over the candidate cells instead")
    return out


def best_plan(predictor: Predictor, batch: int, cores: int, options: OptimizerOptions | None = None) -> Plan:
    """The plan of least predicted latency over the predictor's candidate cells.

    Without interference and dispatch cost this is the optimizer's exact optimum. With an
    interference model (and ``predictor.interference``) it is ``optimize_with_interference``
    (exact for the static model). With measured dispatch costs, the planner compares the
    best plans with at most k instances for every k up to the unconstrained optimum's count
    (dispatch cost grows with k while the compute optimum shrinks), so the result minimises
    dispatch + compute exactly. ``predicted_ms`` is :meth:`Predictor.plan_ms`.
    Raises OptimizerError when no plan exists.
    """
    options = options or OptimizerOptions()
    if options.statistic is None and predictor.statistic is not None:
        options = replace(options, statistic=predictor.statistic)
    profile = predictor.profile

    def solve(opts: OptimizerOptions) -> Plan:
        if predictor.interference and profile.interference is not None:
            from packrat_sim.interference import optimize_with_interference

            return optimize_with_interference(profile, batch, cores, opts).plan
        return optimize(profile, batch, cores, opts)

    best = predictor.priced(solve(options))
    if profile.dispatch and len(best.instances) > 1:
        cap = len(best.instances) if options.max_instances is None else min(options.max_instances, len(best.instances))
        for k in range(1, cap):
            try:
                cand = predictor.priced(solve(replace(options, max_instances=k)))
            except OptimizerError:
                continue
            if cand.require_prediction() < best.require_prediction():
                best = cand
    return best


def price_baselines(profile: Profile, batch: int, cores: int, options: OptimizerOptions | None = None, *,
                    candidates: str = "profiled", interference: bool = False) -> tuple[Plan, dict[str, Baseline]]:
    """Convenience for the faces: the best plan and the fat / thin baselines, all priced by
    one :class:`Predictor` over one candidate set (see the module doc). Raises
    OptimizerError / PredictorError for an infeasible or too large problem."""
    options = options or OptimizerOptions()
    predictor = Predictor(candidate_profile(profile, cores, batch, candidates), options.statistic, interference)
    best = best_plan(predictor, batch, cores, options)
    return best, baselines(predictor, batch, cores, options)


__all__ = [
    "CANDIDATES",
    "Baseline",
    "Instance",
    "Predictor",
    "PredictorError",
    "baselines",
    "best_plan",
    "candidate_profile",
    "check_candidates",
    "price_baselines",
    "split_evenly",
]
