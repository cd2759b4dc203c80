"""Hold predictions against measurements: measured plans vs the predictor, isolated and calibrated.

For each measured run (a plan and its measured batch latency in ms) the predictor prices the
plan twice: *isolated* (``Predictor`` without the co-run model: the published Packrat
assumption) and *calibrated* (with the profile's co-run model; None when the profile has
none). The error of a prediction is ``(predicted - measured) / measured`` in %, negative when
the prediction is optimistic. A run whose cells the profile lacks is listed as unpriced with
the reason, never dropped.

Measured runs come from Packrat's multi-instance CSVs (read by :mod:`packrat_sim.corun`; a run
measures the plan ``k x t x b`` by its slowest present instance; solo rows are not runs; a
1-instance fat run is a plan too) or from this toolkit's bench report (``packrat bench --out
DIR`` writes ``DIR/report.json``, schema ``packrat.bench/1``: each measured plan's median batch
latency, re-priced here with the given profile).

Pure functions: text, objects and profiles in, values out; errors are :class:`FidelityError`
naming the value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from packrat_sim import validate
from packrat_sim.corun import CorunFile, read_corun_csv
from packrat_sim.errors import PackratError
from packrat_sim.inputs import loads_json
from packrat_sim.plan import Instance, Plan, PlanError
from packrat_sim.predictor import Predictor
from packrat_sim.profile import Profile, ProfileError

BENCH_SCHEMA = "packrat.bench/1"
#: An error (in %) below minus this counts as optimistic; smaller ones are rounding, not a bias.
OPTIMISTIC_TOLERANCE_PCT = 1e-9


class FidelityError(PackratError):
    """A measured-runs file is invalid for a fidelity comparison; the message names the value."""


@dataclass(frozen=True)
class MeasuredRun:
    """A plan and its measured batch latency (ms); ``where`` it was read (file and line or
    field); ``note`` a caveat (e.g. rows missing: the slowest present instance is a lower bound)."""

    plan: Plan
    measured_ms: float
    where: str
    note: str = ""


def _error_pct(predicted: float | None, measured: float) -> float | None:
    """100 * (predicted - measured) / measured; None without a prediction."""
    return None if predicted is None else 100.0 * (predicted - measured) / measured


@dataclass(frozen=True)
class FidelityRow:
    """One priced run: its isolated and calibrated predictions (ms; calibrated None without a
    co-run model)."""

    run: MeasuredRun
    isolated_ms: float
    calibrated_ms: float | None

    @property
    def isolated_error_pct(self) -> float:
        """(isolated - measured) / measured in %; negative: optimistic."""
        return 100.0 * (self.isolated_ms - self.run.measured_ms) / self.run.measured_ms

    @property
    def calibrated_error_pct(self) -> float | None:
        """(calibrated - measured) / measured in %; None without a co-run model."""
        return _error_pct(self.calibrated_ms, self.run.measured_ms)


@dataclass(frozen=True)
class ErrorSummary:
    """Errors of one predictor over the priced runs: median and max |error| in %, and how
    many predictions were optimistic (below the measurement)."""

    runs: int
    median_abs_pct: float
    max_abs_pct: float
    optimistic: int

    @classmethod
    def of(cls, errors: Sequence[float]) -> ErrorSummary | None:
        """The summary of ``errors`` (in %), None when there are none."""
        if not errors:
            return None
        mags = [abs(e) for e in errors]
        return cls(len(errors), float(np.median(mags)), max(mags), sum(1 for e in errors if e < -OPTIMISTIC_TOLERANCE_PCT))

    def to_json(self) -> dict:
        return {"runs": self.runs, "median_abs_error_pct": self.median_abs_pct,
                "max_abs_error_pct": self.max_abs_pct, "optimistic": self.optimistic}


@dataclass(frozen=True)
class Unpriced:
    """A measured run the profile cannot price, and why."""

    run: MeasuredRun
    reason: str


@dataclass(frozen=True)
class FidelityReport:
    """Every run priced or listed as unpriced, and the error summaries of both predictors
    (``calibrated`` None when the profile has no co-run model or nothing was priced)."""

    rows: tuple[FidelityRow, ...]
    unpriced: tuple[Unpriced, ...]
    isolated: ErrorSummary | None
    calibrated: ErrorSummary | None
    has_model: bool

    def to_json(self) -> dict:
        """The report as one JSON-able object (rows, unpriced, both summaries)."""
        def run_json(run: MeasuredRun) -> dict:
            return {"plan": run.plan.describe(), "groups": [list(g) for g in run.plan.groups()],
                    "batch": run.plan.batch, "cores": run.plan.cores, "measured_ms": run.measured_ms,
                    "where": run.where, "note": run.note}

        return {
            "rows": [dict(run_json(r.run), isolated_ms=r.isolated_ms, isolated_error_pct=r.isolated_error_pct,
                          calibrated_ms=r.calibrated_ms, calibrated_error_pct=r.calibrated_error_pct)
                     for r in self.rows],
            "unpriced": [dict(run_json(u.run), reason=u.reason) for u in self.unpriced],
            "isolated": None if self.isolated is None else self.isolated.to_json(),
            "calibrated": None if self.calibrated is None else self.calibrated.to_json(),
            "co_run_model": self.has_model,
        }


def compare(profile: Profile, runs: Sequence[MeasuredRun]) -> FidelityReport:
    """Price every run with ``profile`` (isolated, and calibrated when it has a co-run model)
    on its profiled cells, and summarise the errors. Pure."""
    isolated = Predictor(profile, interference=False)
    calibrated = Predictor(profile) if profile.interference is not None else None
    rows, unpriced = [], []
    for run in runs:
        ms = isolated.plan_ms(run.plan)
        if ms is None:
            missing = sorted({(i.threads, i.batch) for i in run.plan.instances if isolated.cell_ms(i.threads, i.batch) is None})
            unpriced.append(Unpriced(run, "the profile lacks cell(s) " + ", ".join(f"{t}t x {b}" for t, b in missing)))
            continue
        rows.append(FidelityRow(run, ms, None if calibrated is None else calibrated.plan_ms(run.plan)))
    cal = [r.calibrated_error_pct for r in rows if r.calibrated_error_pct is not None]
    return FidelityReport(tuple(rows), tuple(unpriced), ErrorSummary.of([r.isolated_error_pct for r in rows]),
                          ErrorSummary.of(cal), calibrated is not None)


# ---------------------------------------------------------------- measured runs


def runs_from_corun(files: Sequence[CorunFile]) -> list[MeasuredRun]:
    """The measured plans of co-run files: one per run (k x t x b, measured by its slowest
    present instance; a partial run says so in ``note``). Solo rows are not runs. Pure."""
    out = []
    for f in files:
        for run in f.runs:
            note = "" if run.complete else (f"{len(run.rows)} of {run.instances} rows present: the slowest present "
                                            "instance is a lower bound")
            out.append(MeasuredRun(run.plan(), run.measured_ms, f"{f.source or 'CSV'} line {run.slowest.line}", note))
    return out


def runs_from_bench_report(obj: object, source: str = "bench report") -> list[MeasuredRun]:
    """The measured plans of a ``packrat.bench/1`` report object: every plan of every batch,
    measured by its median batch latency. Pure; FidelityError naming the field."""
    if not isinstance(obj, Mapping) or obj.get("schema") != BENCH_SCHEMA:
        schema = obj.get("schema") if isinstance(obj, Mapping) else type(obj).__name__
        raise FidelityError(f"{source}: not a bench report (schema {schema!r:.60}; this version reads {BENCH_SCHEMA!r}, "
                            "as `packrat bench --out DIR` writes to DIR/report.json)")
    cores = validate.positive_int(obj.get("cores"), f"{source}: cores", error=FidelityError)
    batches = obj.get("batches")
    if not isinstance(batches, list):
        raise FidelityError(f"{source}: 'batches' must be a list, got {batches!r:.60}")
    out = []
    for i, row in enumerate(batches):
        plans = row.get("plans") if isinstance(row, Mapping) else None
        if not isinstance(plans, list):
            raise FidelityError(f"{source}: batches[{i}].plans must be a list, got {plans!r:.60}")
        for j, entry in enumerate(plans):
            out.append(_bench_run(entry, row.get("batch"), cores, f"{source} batches[{i}].plans[{j}]"))
    return out


def _bench_run(entry: object, batch: object, cores: int, where: str) -> MeasuredRun:
    """One plan entry of a bench report -> MeasuredRun; FidelityError naming ``where``."""
    if not isinstance(entry, Mapping):
        raise FidelityError(f"{where} must be an object, got {entry!r:.60}")
    groups = entry.get("groups")
    if not isinstance(groups, list) or not all(isinstance(g, list) and len(g) == 3 for g in groups):
        raise FidelityError(f"{where}.groups must be a list of [count, threads, batch], got {groups!r:.60}")
    measured = validate.positive_float(entry.get("median_ms"), f"{where}.median_ms", error=FidelityError)
    try:
        b = validate.positive_int(batch, f"{where}: batch", error=FidelityError)
        inst = [Instance(t, sub) for n, t, sub in groups
                for _ in range(validate.positive_int(n, f"{where}: count", error=FidelityError))]
        plan = Plan(tuple(inst), b, cores)
    except PlanError as exc:
        raise FidelityError(f"{where}: {exc}") from None
    return MeasuredRun(plan, measured, where)


def read_measured(text: str, *, source: str, profile: Profile,
                  series: Sequence[tuple[str, str]] = ()) -> tuple[list[MeasuredRun], CorunFile | None]:
    """The measured runs of ``text``: a bench report (JSON, first non-blank character ``{``) or
    a Packrat multi-instance CSV, whose series is chosen by ``series`` selectors and must agree
    with the profile's (``series.*`` meta of an imported profile). Returns (runs, the co-run
    file read or None). Pure; FidelityError / CorunError naming the value."""
    if text.lstrip().startswith("{"):
        obj = loads_json(text, "the bench report JSON", error=lambda m: FidelityError(f"{source}: {m}"))
        return runs_from_bench_report(obj, source), None
    profile_series = {k[len("series."):]: v for k, v in profile.meta if k.startswith("series.")}
    try:
        corun = read_corun_csv(text, source=source, series=series, profile_series=profile_series)
    except ProfileError as exc:
        raise FidelityError(f"{source}: {exc}") from None
    return runs_from_corun([corun]), corun
