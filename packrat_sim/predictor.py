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

**Calibrated by default** (issue 27). :func:`corun` is the one definition every face uses:
a profile with a co-run model is priced and planned with it (``"calibrated"``) unless the
caller asks for ``isolated``; a profile without one is ``"none"``, and every output that
prices a plan of more than one instance then says :data:`NO_CORUN_NOTE` in one line
(:meth:`CoRun.notes`). :func:`priced_profile` strips the model when it must not apply.

Pure functions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from packrat_sim.errors import PackratError
from packrat_sim.optimizer import OptimizerError, OptimizerOptions, optimize
from packrat_sim.plan import Instance, Plan, PlanError, fat, split_evenly, thin
from packrat_sim.profile import Cell, Profile, ProfileError

#: The one line every output that prices a plan of more than one instance prints when the
#: profile has no co-run model (issue 27: on the authors' 16-core co-run data, isolated
#: predictions of 72 multi-instance plans were a median 22% and up to 41% optimistic).
NO_CORUN_NOTE = ("no co-run data: multi-instance plans are priced from the isolated profile, and on real "
                 "servers isolated predictions of multi-instance plans were 20-40% optimistic")
#: The same warning when the profile has a co-run model and the caller asked to ignore it.
ISOLATED_NOTE = ("isolated: the profile's co-run model is ignored on request, and on real servers isolated "
                 "predictions of multi-instance plans were 20-40% optimistic")
CORUN_MODES = ("calibrated", "isolated", "none")

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
        """Co-run slowdown (> 0 factor) of a ``threads``-thread instance in a plan keeping ``busy``
        busy: ``s_t(busy - threads)``, its thread count's curve or the base one
        (``Interference.slowdown_in_plan``, the factor the planner and Z3 scale cells by)."""
        model = self.profile.interference
        if not self.interference or model is None:
            return 1.0
        return model.slowdown_in_plan(threads, busy)

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

    def estimate_ms(self, plan: Plan) -> float:
        """:meth:`plan_ms` with the cells that are not candidates interpolated
        (``Profile.predict``), as the simulator prices a plan it runs (ms). ProfileError when
        a cell cannot be predicted."""
        busy = plan.threads_used
        worst = 0.0
        for inst in plan.instances:
            v = self.cell_ms(inst.threads, inst.batch)
            if v is None:
                v = self.profile.predict(inst.threads, inst.batch)
            worst = max(worst, v * self.slowdown(inst.threads, busy))
        return self.dispatch_ms(plan) + worst

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
class CoRun:
    """How a face prices the plans of a profile: the one definition of "calibrated" (issue 27).

    ``mode``: ``"calibrated"`` (the profile's co-run model applies: the default whenever it
    has one), ``"isolated"`` (it has one, ignored on request) or ``"none"`` (it has none).
    ``source`` and ``fit_error`` (RMS relative error, a fraction) describe the model when
    there is one ("" / None when unknown). Build it with :func:`corun`.
    """

    mode: str
    source: str = ""
    fit_error: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in CORUN_MODES:
            raise PredictorError(f"unknown co-run mode {self.mode!r}; choose one of {', '.join(CORUN_MODES)}")

    @property
    def calibrated(self) -> bool:
        """True when latencies include the profile's co-run slowdown."""
        return self.mode == "calibrated"

    def describe(self) -> str:
        """One line saying how plans are priced (no trailing period)."""
        if self.mode == "none":
            return "isolated: the profile has no co-run data"
        model = "the profile's co-run model"
        if self.source:
            model += f" ({self.source})"
        if self.fit_error is not None:
            model += f", fit error {100.0 * self.fit_error:.1f}%"
        if self.calibrated:
            return f"calibrated: latencies include {model}"
        return f"isolated: {model} is ignored on request"

    def notes(self, plans: Iterable[Plan | None]) -> list[str]:
        """``[NO_CORUN_NOTE]`` (``[ISOLATED_NOTE]`` when the model is ignored on request) if
        the output prices a plan of more than one instance (among ``plans``; None entries are
        skipped) without co-run data; else []. Pure."""
        return self.notes_if(any(p is not None and len(p.instances) > 1 for p in plans))

    def notes_if(self, multi_instance: bool) -> list[str]:
        """:meth:`notes` for an output that says itself whether it prices a multi-instance plan."""
        if self.calibrated or not multi_instance:
            return []
        return [NO_CORUN_NOTE if self.mode == "none" else ISOLATED_NOTE]

    def to_json(self) -> dict:
        """``{"mode", "source", "fit_error"}`` (source and fit error None when unknown)."""
        return {"mode": self.mode, "source": self.source or None, "fit_error": self.fit_error}

    @classmethod
    def from_json(cls, obj: dict) -> CoRun:
        """The inverse of :meth:`to_json`."""
        return cls(obj["mode"], obj.get("source") or "", obj.get("fit_error"))


def corun_source(profile: Profile) -> str:
    """Where the profile's co-run model came from ("" without a model): the co-run CSVs it
    was imported from, the co-run sweep of ``packrat profile``, or a synthetic model."""
    if profile.interference is None:
        return ""
    meta = dict(profile.meta)
    if meta.get("interference.source"):
        return f"imported from {meta['interference.source']}"
    if "interference.probe" in meta or "interference.raw" in meta:
        return "measured by the profiler's co-run sweep"
    return "synthetic" if profile.synthetic else ""


def corun(profile: Profile, isolated: bool = False) -> CoRun:
    """How ``profile``'s plans are priced: calibrated when it has a co-run model (unless
    ``isolated``), isolated when it has one and ``isolated``, none without one. Pure."""
    model = profile.interference
    if model is None:
        return CoRun("none")
    return CoRun("isolated" if isolated else "calibrated", corun_source(profile), model.fit_error)


def priced_profile(profile: Profile, co: CoRun) -> Profile:
    """``profile`` as ``co`` prices it: unchanged when calibrated, without its co-run model
    otherwise (so every consumer, the simulator included, ignores it). Pure."""
    if co.calibrated or profile.interference is None:
        return profile
    return replace(profile, interference=None)


@dataclass(frozen=True)
class GroupPrice:
    """One group ``count x threads x batch`` of a priced plan: its isolated cell latency
    ``isolated_ms`` = L[t, b], the co-run slowdown s(U - t) beside the plan's other busy
    cores, and ``calibrated_ms`` = L[t, b] * s(U - t) (None without a co-run model). ms."""

    count: int
    threads: int
    batch: int
    isolated_ms: float
    slowdown: float
    calibrated_ms: float | None

    def to_json(self) -> dict:
        return {"count": self.count, "threads": self.threads, "batch": self.batch, "isolated_ms": self.isolated_ms,
                "slowdown": self.slowdown, "calibrated_ms": self.calibrated_ms}


@dataclass(frozen=True)
class PlanPrice:
    """A plan priced group by group (see :func:`price_plan`). ``isolated_ms`` and
    ``calibrated_ms`` are batch latencies: dispatch + the slowest group (``calibrated_ms``
    None without a co-run model); ``dispatch_ms`` is 0 where the profile measured none."""

    plan: Plan
    corun: CoRun
    groups: tuple[GroupPrice, ...]
    dispatch_ms: float
    isolated_ms: float
    calibrated_ms: float | None
    has_dispatch: bool = False

    @property
    def predicted_ms(self) -> float:
        """The prediction the toolkit uses: calibrated when it can be, else isolated."""
        return self.isolated_ms if self.calibrated_ms is None else self.calibrated_ms

    def notes(self) -> list[str]:
        """The no-co-run line when it applies (:meth:`CoRun.notes`)."""
        return self.corun.notes([self.plan])

    def to_json(self) -> dict:
        return {
            "plan": self.plan.describe(), "batch": self.plan.batch, "cores": self.plan.cores,
            "threads_used": self.plan.threads_used, "instances": len(self.plan.instances),
            "groups": [g.to_json() for g in self.groups],
            "dispatch_ms": self.dispatch_ms if self.has_dispatch else None,
            "isolated_ms": self.isolated_ms, "calibrated_ms": self.calibrated_ms, "predicted_ms": self.predicted_ms,
            "corun": self.corun.mode, "corun_model": self.corun.to_json(), "notes": self.notes(),
        }


def price_plan(profile: Profile, plan: Plan, *, isolated: bool = False, statistic: str | None = None) -> PlanPrice:
    """Price ``plan`` on ``profile`` group by group, isolated and (when the profile has a
    co-run model and not ``isolated``) calibrated, by :class:`Predictor`. Only measured
    cells price a plan: PredictorError naming every missing cell ``t x b`` otherwise. Pure."""
    co = corun(profile, isolated)
    alone = Predictor(profile, statistic, interference=False)
    calibrated = Predictor(profile, statistic, interference=True) if co.calibrated else None
    cells = {(t, b): alone.cell_ms(t, b) for _, t, b in plan.groups()}
    missing = [f"{t} x {b}" for (t, b), ms in sorted(cells.items()) if ms is None]
    if missing:
        raise PredictorError(f"the profile of {profile.model!r} has no cell {', '.join(missing)} (threads x sub-batch) "
                             f"for plan {plan.describe()}")
    busy = plan.threads_used
    groups = []
    for n, t, b in plan.groups():
        iso = float(cells[(t, b)] or 0.0)
        slow = 1.0 if calibrated is None else calibrated.slowdown(t, busy)
        groups.append(GroupPrice(n, t, b, iso, slow, None if calibrated is None else iso * slow))
    dispatch = alone.dispatch_ms(plan)
    cal = None if calibrated is None else max(g.calibrated_ms or 0.0 for g in groups) + dispatch
    return PlanPrice(plan, co, tuple(groups), dispatch, max(g.isolated_ms for g in groups) + dispatch, cal,
                     bool(profile.dispatch))


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


def homogeneous_optimum(predictor: Predictor, batch: int, cores: int,
                        options: OptimizerOptions | None = None) -> Plan | None:
    """The best plan of identical instances (what TorchServe can run) over the predictor's
    candidate cells, priced like :func:`best_plan` (the same co-run model and dispatch
    cost); None when no homogeneous plan covers ``batch`` on ``cores``."""
    try:
        return best_plan(predictor, batch, cores, replace(options or OptimizerOptions(), homogeneous=True))
    except OptimizerError:
        return None


def export_alternative(plan: Plan, fmt: str, candidates: Profile, batch: int, cores: int,
                       options: OptimizerOptions, *, calibrated: bool) -> Plan | None:
    """The plan an export in format ``fmt`` carries in place of ``plan`` (pure): for
    ``torchserve``, which runs identical workers only, the best homogeneous plan when ``plan``
    mixes instance sizes (:func:`homogeneous_optimum` over ``candidates``, priced like
    ``plan``: co-run model when ``calibrated``); None otherwise (``plan`` is exported as is).
    The CLI's ``--export`` and the dashboard's export both ask it."""
    if fmt != "torchserve" or len(plan.groups()) <= 1:
        return None
    return homogeneous_optimum(Predictor(candidates, options.statistic, calibrated), batch, cores, options)


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
    "CORUN_MODES",
    "ISOLATED_NOTE",
    "NO_CORUN_NOTE",
    "Baseline",
    "CoRun",
    "GroupPrice",
    "PlanPrice",
    "Instance",
    "Predictor",
    "PredictorError",
    "baselines",
    "best_plan",
    "candidate_profile",
    "check_candidates",
    "corun",
    "corun_source",
    "homogeneous_optimum",
    "price_baselines",
    "price_plan",
    "priced_profile",
    "split_evenly",
]
