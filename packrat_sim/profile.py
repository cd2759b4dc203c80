"""Latency profiles L[t, b]: samples, statistics, interference, file formats, predictor.

A :class:`Profile` holds, for each measured cell (t threads, b sub-batch), the latency
samples of one model instance running alone, in milliseconds, and their statistics
(min / median / mean / p90 / max). Cells imported from Packrat's published CSVs carry
only min / mean / max. The optimizer reads one statistic per cell (``mean`` by
default: Packrat's ``latency(avg)``).

Everything here is pure except the ``read_*`` / ``write_*`` functions at the bottom.
Every error a user can cause is a :class:`ProfileError` naming the bad value.

File format (JSON, versioned)::

    {"schema": "packrat.profile/1", "model": "resnet50", "synthetic": false,
     "source": "...", "machine": {...}, "statistic": "mean",
     "cells": [{"threads": 1, "batch": 1, "samples_ms": [...], "min_ms": ..,
                "median_ms": .., "mean_ms": .., "p90_ms": .., "max_ms": ..}],
     "interference": null | {"form": "busy-cores", "points": [[0, 1.0], [4, 1.1]]}
                     | {"form": "busy-cores-by-threads", "points": [...], "curves":
                        [{"threads": 4, "points": [[4, 1.2]], "fit_error": 0.01}]},
     "meta": {...}}
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import io
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np

from packrat_sim import inputs, validate
from packrat_sim.errors import PackratError
from packrat_sim.files import write_text
from packrat_sim.inputs import loads_json

SCHEMA = "packrat.profile/2"
READABLE_SCHEMAS = ("packrat.profile/1", SCHEMA)  # /1 files load with the defaults of /2
STATISTICS = ("min", "median", "mean", "p90", "max")


class ProfileError(PackratError):
    """A profile, or a file meant to hold one, is invalid; the message names the value."""


# --------------------------------------------------------------------------- cells


MAX_LATENCY_MS = 1e12  # about 31 years: anything larger is a corrupt file, and sums of it overflow
MAX_SLOWDOWN = 1e6  # co-run slowdown factor; larger is a corrupt file (and overflows when applied)


def _check_latency(value: float | str, what: str) -> float:
    """``value`` (a number, or its text in a CSV) as a latency in (0, MAX_LATENCY_MS] ms;
    else ProfileError naming ``what`` and the value."""
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ProfileError(f"{what} must be a number, got {value!r:.60}") from None
    if not math.isfinite(x) or x <= 0.0 or x > MAX_LATENCY_MS:
        raise ProfileError(f"{what} must be a finite latency in (0, {MAX_LATENCY_MS:g}] ms, got {value!r:.60}")
    return x


def _check_count(value: object, what: str) -> int:
    """``value`` as an int >= 1 (a float with an integer value, as files hold, counts as that
    integer); else ProfileError ``{what} must be a positive integer, got {value!r}``."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return validate.positive_int(value, what, error=ProfileError, numpy=True)


@dataclass(frozen=True)
class Cell:
    """One profiled cell: instance with ``threads`` intra-op threads on a sub-batch of ``batch``.

    Latencies are milliseconds. ``samples_ms`` may be empty (imported summary data);
    then ``median_ms`` / ``p90_ms`` may be None. Invariant: min <= mean <= max and
    min <= median <= p90 <= max where present.
    """

    threads: int
    batch: int
    mean_ms: float
    min_ms: float
    max_ms: float
    median_ms: float | None = None
    p90_ms: float | None = None
    samples_ms: tuple[float, ...] = ()
    # conditions while the cell was measured, e.g. (("loadavg_1m", 1.9), ("runq_wait_ms", 0.4));
    # informative only (schema /2), never used by the predictor
    context: tuple[tuple[str, float], ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        where = f"cell threads={self.threads} batch={self.batch}"
        _check_count(self.threads, f"threads of {where}")
        _check_count(self.batch, f"batch of {where}")
        for name in ("mean_ms", "min_ms", "max_ms"):
            _check_latency(getattr(self, name), f"{name} of {where}")
        for name in ("median_ms", "p90_ms"):
            if getattr(self, name) is not None:
                _check_latency(getattr(self, name), f"{name} of {where}")
        for s in self.samples_ms:
            _check_latency(s, f"sample of {where}")
        tol = 1e-9 * max(1.0, self.max_ms)
        ordered = [self.min_ms, self.mean_ms, self.max_ms]
        if not (ordered[0] <= ordered[1] + tol and ordered[1] <= ordered[2] + tol):
            raise ProfileError(
                f"{where}: need min <= mean <= max, got {self.min_ms} / {self.mean_ms} / {self.max_ms} ms"
            )

    @classmethod
    def from_samples(cls, threads: int, batch: int, samples_ms: Sequence[float],
                     context: Sequence[tuple[str, float]] = ()) -> Cell:
        """Build a cell whose statistics are computed from ``samples_ms`` (>= 1 sample)."""
        where = f"cell threads={threads} batch={batch}"
        xs = tuple(_check_latency(s, f"sample of {where}") for s in samples_ms)
        if not xs:
            raise ProfileError(f"{where} has no samples")
        arr = np.asarray(xs, dtype=float)
        return cls(
            threads=threads,
            batch=batch,
            mean_ms=float(arr.mean()),
            min_ms=float(arr.min()),
            max_ms=float(arr.max()),
            median_ms=float(np.median(arr)),
            p90_ms=float(np.percentile(arr, 90)),
            samples_ms=xs,
            context=tuple((str(k), float(v)) for k, v in context),
        )

    def stat(self, statistic: str) -> float:
        """The cell's value of ``statistic`` (one of STATISTICS), in ms."""
        if statistic not in STATISTICS:
            raise ProfileError(f"unknown statistic {statistic!r}; choose one of {', '.join(STATISTICS)}")
        value = getattr(self, f"{statistic}_ms")
        if value is None:
            raise ProfileError(
                f"cell threads={self.threads} batch={self.batch} has no {statistic} "
                "(imported summary data has only min, mean and max)"
            )
        return float(value)


# ------------------------------------------------------------------ interference

INTERFERENCE_FORMS = ("busy-cores", "busy-cores-by-threads")
Points = tuple[tuple[int, float], ...]  # (other busy cores, slowdown), cores increasing


def _check_points(points: Points) -> None:
    """ProfileError unless ``points`` are [cores, slowdown] pairs with cores increasing
    integers >= 0 and slowdowns numbers in (0, MAX_SLOWDOWN]. Pure."""
    last = -1
    for point in points:
        if len(point) != 2:
            raise ProfileError(f"interference point must be [cores, slowdown], got {point!r}")
        k, s = point
        if not validate.is_integer(k, numpy=True) or k < 0 or k <= last:
            raise ProfileError(f"interference cores must be increasing integers >= 0, got {k!r}")
        if not validate.is_number(s) or not math.isfinite(s) or not 0 < s <= MAX_SLOWDOWN:
            raise ProfileError(f"interference slowdown must be a number in (0, {MAX_SLOWDOWN:g}], got {s!r:.60}")
        last = k


def _check_fit_error(value: object, what: str) -> None:
    """ProfileError unless ``value`` is None or a finite number >= 0 (an RMS relative error)."""
    if value is not None:
        validate.nonnegative_float(value, what, error=ProfileError)


def _interpolate(points: Points, other_busy_cores: int) -> float:
    """The piecewise-linear curve through (0, 1) and ``points`` at ``other_busy_cores``, held
    constant beyond the last point; 1 with no other busy core or no point. Pure."""
    if other_busy_cores <= 0 or not points:
        return 1.0
    xs = [k for k, _ in points]
    ys = [s for _, s in points]
    if xs[0] != 0:
        xs, ys = [0] + xs, [1.0] + ys
    return float(np.interp(other_busy_cores, xs, ys))


def _points_json(points: Points) -> list[list]:
    return [[int(k), float(s)] for k, s in points]


def _points_from_json(points: object, what: str) -> Points:
    """``[[cores, slowdown], ...]`` read from JSON (validated by the caller's constructor)."""
    if not isinstance(points, list):
        raise ProfileError(f"{what} must be a list, got {points!r}")
    pts = []
    for p in points:
        if not isinstance(p, list) or len(p) != 2:
            raise ProfileError(f"interference point must be [cores, slowdown], got {p!r}")
        pts.append((p[0], p[1]))
    return tuple(pts)


@dataclass(frozen=True)
class ThreadCurve:
    """The co-run slowdown of instances of exactly ``threads`` threads: ``points`` as in
    :class:`Interference` (other busy cores, slowdown), and the RMS relative error of the fit
    over that thread count's observations (``fit_error``, None when not fitted)."""

    threads: int
    points: Points
    fit_error: float | None = None

    def __post_init__(self) -> None:
        validate.positive_int(self.threads, "interference curve threads", error=ProfileError, numpy=True)
        if not self.points:
            raise ProfileError(f"the interference curve of {self.threads} threads has no points")
        _check_points(self.points)
        _check_fit_error(self.fit_error, f"the fit error of the {self.threads}-thread interference curve")

    def to_json(self) -> dict:
        out: dict = {"threads": int(self.threads), "points": _points_json(self.points)}
        if self.fit_error is not None:
            out["fit_error"] = self.fit_error
        return out

    @classmethod
    def from_json(cls, obj: object) -> ThreadCurve:
        if not isinstance(obj, Mapping):
            raise ProfileError(f"an interference curve must be an object, got {obj!r}")
        threads = validate.positive_int(obj.get("threads"), "interference curve threads", error=ProfileError)
        return cls(threads=threads, points=_points_from_json(obj.get("points"), "interference curve points"),
                   fit_error=obj.get("fit_error"))


@dataclass(frozen=True)
class Interference:
    """Slowdown of an instance as a function of what runs beside it (packrat_sim/interference.py
    has the model, its fit and why planning under it is exact).

    ``points`` (the *base* curve) are (other_busy_cores, slowdown) pairs, sorted by cores;
    between points the slowdown is linearly interpolated, beyond the last point it is held
    constant, and with no other busy core it is 1. ``curves`` optionally give instances of one
    thread count their own curve of the same kind; a thread count without one uses the base.
    An instance of t threads beside k other busy cores takes ``L[t, b] * slowdown(k, t)``.

    ``form`` is ``"busy-cores"`` (base curve only: the meaning profiles always had) or
    ``"busy-cores-by-threads"`` (with curves; set automatically when ``curves`` is given, so
    an older reader rejects the file instead of silently ignoring the curves). ``fit_error``:
    RMS relative error of the whole model over its observations; ``base_fit_error``: that of
    the base curve alone (kept when curves were fitted, to show what they gained).
    """

    points: Points
    form: str = "busy-cores"
    fit_error: float | None = None
    curves: tuple[ThreadCurve, ...] = ()
    base_fit_error: float | None = None

    def __post_init__(self) -> None:
        if self.form not in INTERFERENCE_FORMS:
            raise ProfileError(f"unknown interference form {self.form!r}; known: {', '.join(INTERFERENCE_FORMS)}")
        _check_points(self.points)
        _check_fit_error(self.fit_error, "interference fit_error")
        _check_fit_error(self.base_fit_error, "interference base_fit_error")
        threads = [c.threads for c in self.curves]
        if any(not isinstance(c, ThreadCurve) for c in self.curves) or threads != sorted(set(threads)):
            raise ProfileError(f"interference curves must be curves of increasing thread counts, got {threads!r}")
        if self.curves and self.form == "busy-cores":
            object.__setattr__(self, "form", "busy-cores-by-threads")
        if not self.curves and self.form == "busy-cores-by-threads":
            raise ProfileError("interference form 'busy-cores-by-threads' needs at least one curve")

    @cached_property
    def _by_threads(self) -> dict[int, Points]:
        return {int(c.threads): c.points for c in self.curves}

    def slowdown(self, other_busy_cores: int, threads: int | None = None) -> float:
        """Multiplicative slowdown (> 0) of an instance of ``threads`` threads beside
        ``other_busy_cores`` busy cores: its thread count's curve, else the base curve
        (``threads`` None: the base curve)."""
        return _interpolate(self._by_threads.get(threads, self.points) if threads is not None else self.points,
                            other_busy_cores)

    def slowdown_in_plan(self, threads: int, busy: int) -> float:
        """Slowdown of a ``threads``-thread instance in a plan keeping ``busy`` threads busy in
        all: ``slowdown(busy - threads, threads)``. Every consumer prices through this one
        expression (predictor, planner, Z3), so they compute the same floats."""
        return self.slowdown(busy - threads, threads)

    def to_json(self) -> dict:
        out: dict = {"form": self.form, "points": _points_json(self.points)}
        if self.fit_error is not None:
            out["fit_error"] = self.fit_error
        if self.curves:
            out["curves"] = [c.to_json() for c in self.curves]
        if self.base_fit_error is not None:
            out["base_fit_error"] = self.base_fit_error
        return out

    @classmethod
    def from_json(cls, obj: object) -> Interference:
        if not isinstance(obj, Mapping):
            raise ProfileError(f"interference must be an object, got {obj!r}")
        form = obj.get("form", "busy-cores")
        curves = obj.get("curves", [])
        if form == "busy-cores" and "curves" in obj:
            raise ProfileError("interference form 'busy-cores' has no curves; "
                               "per-thread-count curves need form 'busy-cores-by-threads'")
        if not isinstance(curves, list):
            raise ProfileError(f"interference.curves must be a list, got {curves!r}")
        return cls(points=_points_from_json(obj.get("points"), "interference.points"), form=form,
                   fit_error=obj.get("fit_error"), curves=tuple(ThreadCurve.from_json(c) for c in curves),
                   base_fit_error=obj.get("base_fit_error"))


# ----------------------------------------------------------------------- profile


@dataclass(frozen=True)
class Machine:
    """Where a profile was measured. Unknown fields are empty / 0."""

    cpu_model: str = ""
    logical_cores: int = 0
    physical_cores: int = 0
    sockets: int = 0
    torch_version: str = ""
    extra: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict:
        out = {
            "cpu_model": self.cpu_model,
            "logical_cores": self.logical_cores,
            "physical_cores": self.physical_cores,
            "sockets": self.sockets,
            "torch_version": self.torch_version,
        }
        out.update(dict(self.extra))
        return out

    @classmethod
    def from_json(cls, obj: object) -> Machine:
        if obj is None:
            return cls()
        if not isinstance(obj, Mapping):
            raise ProfileError(f"machine must be an object, got {obj!r}")
        known = {"cpu_model", "logical_cores", "physical_cores", "sockets", "torch_version"}
        ints = {}
        for key in ("logical_cores", "physical_cores", "sockets"):
            ints[key] = validate.nonnegative_int(obj.get(key, 0), f"machine.{key}", error=ProfileError)
        extra = tuple(sorted((str(k), str(v)) for k, v in obj.items() if k not in known))
        return cls(
            cpu_model=str(obj.get("cpu_model", "")),
            torch_version=str(obj.get("torch_version", "")),
            extra=extra,
            **ints,
        )


@dataclass(frozen=True)
class Profile:
    """A model's latency profile on one machine (see the module docstring).

    ``cells`` are kept sorted by (threads, batch) and unique. ``synthetic`` marks
    profiles made by a formula rather than measured; every output that uses one says so.
    """

    model: str
    cells: tuple[Cell, ...]
    machine: Machine = field(default_factory=Machine)
    statistic: str = "mean"
    synthetic: bool = False
    source: str = ""
    interference: Interference | None = None
    meta: tuple[tuple[str, str], ...] = ()
    # measured dispatch cost: (instances, batch, ms) = time the runner spends splitting a
    # batch of ``batch`` over ``instances`` pooled workers and gathering the outputs, beyond
    # the slowest instance's compute (schema /2; empty: no dispatch cost, as in /1 files)
    dispatch: tuple[tuple[int, int, float], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise ProfileError(f"profile model must be a non-empty string, got {self.model!r}")
        if self.statistic not in STATISTICS:
            raise ProfileError(f"unknown statistic {self.statistic!r}; choose one of {', '.join(STATISTICS)}")
        if not self.cells:
            raise ProfileError(f"profile of {self.model!r} has no cells")
        cells = tuple(sorted(self.cells, key=lambda c: (c.threads, c.batch)))
        for a, b in zip(cells, cells[1:]):
            if (a.threads, a.batch) == (b.threads, b.batch):
                raise ProfileError(f"duplicate cell threads={a.threads} batch={a.batch}")
        object.__setattr__(self, "cells", cells)
        for c in cells:
            c.stat(self.statistic)  # every cell must carry the statistic the optimizer reads
        object.__setattr__(self, "_index", {(c.threads, c.batch): c for c in cells})
        object.__setattr__(self, "dispatch", _check_dispatch(self.dispatch))

    # ---- grid
    @property
    def threads(self) -> tuple[int, ...]:
        """Sorted distinct thread counts that have at least one cell."""
        return tuple(sorted({c.threads for c in self.cells}))

    @property
    def batches(self) -> tuple[int, ...]:
        """Sorted distinct sub-batch sizes that have at least one cell."""
        return tuple(sorted({c.batch for c in self.cells}))

    @property
    def max_threads(self) -> int:
        return max(c.threads for c in self.cells)

    def cell(self, threads: int, batch: int) -> Cell | None:
        """The measured cell (threads, batch), or None when it was not profiled."""
        return self._index.get((threads, batch))  # type: ignore[attr-defined]

    def latency(self, threads: int, batch: int, statistic: str | None = None) -> float | None:
        """Measured latency (ms) of the cell, or None when it was not profiled."""
        c = self.cell(threads, batch)
        return None if c is None else c.stat(statistic or self.statistic)

    def items(self, statistic: str | None = None) -> list[tuple[int, int, float]]:
        """All profiled cells as (threads, batch, latency_ms), sorted by (threads, batch)."""
        st = statistic or self.statistic
        return [(c.threads, c.batch, c.stat(st)) for c in self.cells]

    def with_statistic(self, statistic: str) -> Profile:
        """The same profile read through another statistic (validated for every cell)."""
        return replace(self, statistic=statistic)

    def label(self) -> str:
        """Human label, e.g. ``resnet50 [synthetic]``."""
        return f"{self.model} [synthetic]" if self.synthetic else self.model

    def dispatch_ms(self, instances: int, batch: int) -> float:
        """Dispatch cost (ms, >= 0) of serving ``batch`` inputs with ``instances`` pooled
        instances: 0 without measurements; else the measured points, interpolated linearly
        in the batch, made non-decreasing in the instance count (running maximum), then
        interpolated linearly in the instance count; held constant beyond the measured
        range (never extrapolated). Pure."""
        _check_count(instances, "instances")
        _check_count(batch, "batch")
        if not self.dispatch:
            return 0.0
        by_k: dict[int, list[tuple[int, float]]] = {}
        for k, b, ms in self.dispatch:
            by_k.setdefault(k, []).append((b, ms))

        def in_batch(k: int) -> float:
            row = sorted(by_k[k])
            return float(np.interp(batch, [b for b, _ in row], [m for _, m in row]))

        ks = sorted(by_k)
        # never decreasing in the instance count (more workers never dispatch faster; it
        # also makes "dispatch + compute" certifiable per instance count, see checker.allocation)
        vals = np.maximum.accumulate([in_batch(k) for k in ks])
        return float(np.interp(instances, ks, vals))

    # ---- predictor for cells the profile lacks
    def predict(self, threads: int, batch: int) -> float:
        """Latency (ms) of (threads, batch): measured if profiled, else interpolated.

        Predictor for missing cells, documented and never silently zero:
        1. at a profiled thread count, linear interpolation in batch between the two
           nearest profiled batches (latency is close to affine in batch); below the
           smallest profiled batch, scale that cell down proportionally but not below
           half of it; above the largest, extrapolate proportionally to batch;
        2. at an unprofiled thread count, the batch estimate of the two nearest profiled
           thread counts is interpolated linearly in 1/threads (Amdahl-like); beyond
           the profiled range the nearest thread count is used.
        Raises ProfileError for non-positive arguments.
        """
        _check_count(threads, "threads")
        _check_count(batch, "batch")
        exact = self.latency(threads, batch)
        if exact is not None:
            return exact
        rows = self.__dict__.get("_threads_sorted")
        if rows is None:
            rows = self.threads
            object.__setattr__(self, "_threads_sorted", rows)
        if threads in rows:
            return self._predict_in_batch(threads, batch)
        lower = [t for t in rows if t < threads]
        upper = [t for t in rows if t > threads]
        if not lower:
            return self._predict_in_batch(upper[0], batch)
        if not upper:
            return self._predict_in_batch(lower[-1], batch)
        t0, t1 = lower[-1], upper[0]
        y0, y1 = self._predict_in_batch(t0, batch), self._predict_in_batch(t1, batch)
        w = (1.0 / threads - 1.0 / t1) / (1.0 / t0 - 1.0 / t1)
        return float(w * y0 + (1.0 - w) * y1)

    def _predict_in_batch(self, threads: int, batch: int) -> float:
        rows = self.__dict__.get("_rows")
        if rows is None:  # built once per profile (cells are immutable)
            rows = {}
            for c in self.cells:  # sorted by (threads, batch)
                rows.setdefault(c.threads, ([], []))
                rows[c.threads][0].append(c.batch)
                rows[c.threads][1].append(c.stat(self.statistic))
            object.__setattr__(self, "_rows", rows)
        bs, ys = rows[threads]
        if batch <= bs[0]:
            return float(max(ys[0] * batch / bs[0], 0.5 * ys[0]))
        if batch >= bs[-1]:
            if len(bs) == 1:
                return float(ys[-1] * batch / bs[-1])
            slope = (ys[-1] - ys[-2]) / (bs[-1] - bs[-2])
            return float(max(ys[-1] + slope * (batch - bs[-1]), ys[-1] * batch / bs[-1] * 0.5))
        return float(np.interp(batch, bs, ys))

    # ---- JSON
    def to_json(self) -> dict:
        """The versioned JSON object of this profile (see module docstring)."""
        cells = []
        for c in self.cells:
            d: dict = {"threads": c.threads, "batch": c.batch}
            if c.samples_ms:
                d["samples_ms"] = list(c.samples_ms)
            if c.context:
                d["context"] = dict(c.context)
            for st in STATISTICS:
                v = getattr(c, f"{st}_ms")
                if v is not None:
                    d[f"{st}_ms"] = v
            cells.append(d)
        return {
            "schema": SCHEMA,
            "model": self.model,
            "synthetic": self.synthetic,
            "source": self.source,
            "machine": self.machine.to_json(),
            "statistic": self.statistic,
            "threads": list(self.threads),
            "batches": list(self.batches),
            "cells": cells,
            "interference": None if self.interference is None else self.interference.to_json(),
            "dispatch": [[k, b, ms] for k, b, ms in self.dispatch],
            "meta": dict(self.meta),
        }

    @classmethod
    def from_json(cls, obj: object) -> Profile:
        """Parse a profile JSON object; raises ProfileError naming the bad field."""
        if not isinstance(obj, Mapping):
            raise ProfileError(f"a profile must be a JSON object, got {type(obj).__name__}")
        schema = obj.get("schema")
        if schema not in READABLE_SCHEMAS:
            raise ProfileError(
                f"unknown profile schema {schema!r:.60}; this version reads {', '.join(map(repr, READABLE_SCHEMAS))}"
            )
        dispatch = obj.get("dispatch") or []
        if not isinstance(dispatch, list) or not all(isinstance(p, list) and len(p) == 3 for p in dispatch):
            raise ProfileError(f"'dispatch' must be a list of [instances, batch, ms], got {dispatch!r:.60}")
        raw_cells = obj.get("cells")
        if not isinstance(raw_cells, list):
            raise ProfileError(f"profile 'cells' must be a list, got {raw_cells!r:.60}")
        cells = [_cell_from_json(i, c) for i, c in enumerate(raw_cells)]
        synthetic = obj.get("synthetic", False)
        if not isinstance(synthetic, bool):
            raise ProfileError(f"'synthetic' must be true or false, got {synthetic!r}")
        meta = obj.get("meta") or {}
        if not isinstance(meta, Mapping):
            raise ProfileError(f"'meta' must be an object, got {meta!r:.60}")
        interference = obj.get("interference")
        model = obj.get("model")
        if not isinstance(model, str) or not model:
            raise ProfileError(f"profile 'model' must be a non-empty string, got {model!r:.60}")
        statistic = obj.get("statistic", "mean")
        if statistic not in STATISTICS:
            raise ProfileError(f"unknown statistic {statistic!r:.40}; choose one of {', '.join(STATISTICS)}")
        return cls(
            model=model,
            cells=tuple(cells),
            machine=Machine.from_json(obj.get("machine")),
            statistic=statistic,
            synthetic=synthetic,
            source=str(obj.get("source", "")),
            interference=None if interference is None else Interference.from_json(interference),
            meta=tuple(sorted((str(k), str(v)) for k, v in meta.items())),
            dispatch=tuple(tuple(p) for p in dispatch),
        )

    # ---- CSV export
    def to_csv(self) -> str:
        """Tidy CSV: one row per cell, ``threads,batch,n,min_ms,median_ms,mean_ms,p90_ms,max_ms``."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["threads", "batch", "n"] + [f"{s}_ms" for s in STATISTICS])
        for c in self.cells:
            row: list[object] = [c.threads, c.batch, len(c.samples_ms)]
            for st in STATISTICS:
                v = getattr(c, f"{st}_ms")
                row.append("" if v is None else repr(float(v)))
            w.writerow(row)
        return buf.getvalue()


def _check_dispatch(points: Iterable) -> tuple[tuple[int, int, float], ...]:
    """Validated, sorted dispatch points (instances >= 1, batch >= 1, 0 <= ms <= MAX_LATENCY_MS)."""
    out = {}
    for p in points:
        if len(p) != 3:
            raise ProfileError(f"a dispatch point must be [instances, batch, ms], got {p!r:.60}")
        k = _check_count(p[0], "dispatch instances")
        b = _check_count(p[1], "dispatch batch")
        ms = p[2]
        if not validate.is_number(ms) or not (0.0 <= ms <= MAX_LATENCY_MS):
            raise ProfileError(f"dispatch cost must be a number of ms in [0, {MAX_LATENCY_MS:g}], got {ms!r:.60}")
        if (k, b) in out:
            raise ProfileError(f"duplicate dispatch point instances={k} batch={b}")
        out[(k, b)] = float(ms)
    return tuple((k, b, ms) for (k, b), ms in sorted(out.items()))


def _cell_from_json(index: int, obj: object) -> Cell:
    where = f"cells[{index}]"
    if not isinstance(obj, Mapping):
        raise ProfileError(f"{where} must be an object, got {obj!r:.60}")
    t = _check_count(obj.get("threads"), f"{where}.threads")
    b = _check_count(obj.get("batch"), f"{where}.batch")
    samples = obj.get("samples_ms") or []
    if not isinstance(samples, list):
        raise ProfileError(f"{where}.samples_ms must be a list, got {samples!r:.60}")
    context = obj.get("context") or {}
    if not isinstance(context, Mapping) or not all(
        validate.is_number(v) and math.isfinite(v) for v in context.values()
    ):
        raise ProfileError(f"{where}.context must be an object of finite numbers, got {context!r:.60}")
    try:
        if samples:
            return Cell.from_samples(t, b, samples, context=tuple(sorted(context.items())))
        stats: dict[str, Any] = {}  # keyword arguments of Cell: its *_ms fields
        for st in STATISTICS:
            v = obj.get(f"{st}_ms")
            if v is not None:
                stats[f"{st}_ms"] = _check_latency(v, f"{where}.{st}_ms")
        if "mean_ms" not in stats:
            raise ProfileError(f"{where} (threads={t} batch={b}) has neither samples_ms nor mean_ms")
        stats.setdefault("min_ms", stats["mean_ms"])
        stats.setdefault("max_ms", stats["mean_ms"])
        return Cell(threads=t, batch=b, **stats)
    except ProfileError as exc:
        raise ProfileError(f"{where}: {exc}") from None


# ------------------------------------------------------------ Packrat CSV import

PACKRAT_THREADS = "intraop_threads"
PACKRAT_BATCH = "batch_size"
PACKRAT_AVG = "latency(avg)"
PACKRAT_MIN = "latency(min)"
PACKRAT_MAX = "latency(max)"
# Columns that tell series apart (never averaged across), where present.
PACKRAT_SERIES_COLUMNS = (
    "benchmark", "topology", "pinning", "source", "allocator", "interop_threads", "instance_id",
)


@dataclass(frozen=True)
class PackratImport:
    """Result of parsing a Packrat CSV: the chosen series' profile and every series seen."""

    profile: Profile
    series: tuple[tuple[tuple[str, str], ...], ...]
    chosen: tuple[tuple[str, str], ...]
    merged_duplicates: int


def parse_series_selectors(selectors: Iterable[str]) -> list[tuple[str, str]]:
    """Parse ``COLUMN=GLOB`` strings; raises ProfileError naming a malformed one."""
    out = []
    for s in selectors:
        if "=" not in s or not s.split("=", 1)[0].strip():
            raise ProfileError(f"--series must look like COLUMN=GLOB (e.g. benchmark=*_script), got {s!r}")
        col, glob = s.split("=", 1)
        out.append((col.strip(), glob.strip()))
    return out


def format_series(key: tuple[tuple[str, str], ...]) -> str:
    return ",".join(f"{k}={v}" for k, v in key) or "(single series)"


#: One parsed row of a Packrat CSV: (min, avg, max) latency in ms, min <= avg <= max.
_LatencyRow = tuple[float, float, float]
#: A series: the (column, value) pairs of the series columns present, in PACKRAT_SERIES_COLUMNS order.
SeriesKey = tuple[tuple[str, str], ...]


def import_packrat_csv(
    text: str,
    *,
    series: Sequence[tuple[str, str]] = (),
    model: str | None = None,
    source: str = "",
) -> PackratImport:
    """Parse a Packrat profile CSV (header-named columns) into a Profile of one series.

    Required columns: ``intraop_threads``, ``batch_size``, ``latency(avg)``; optional:
    ``latency(min)``, ``latency(max)`` and the series columns (``benchmark``, ``topology``,
    ``pinning``, ``source``, ``allocator``, ``interop_threads``, ``instance_id``). Rows are
    grouped by the values of the series columns present; ``series`` selects with
    (column, glob) pairs (fnmatch). Exactly one series must remain, else ProfileError
    listing them. Rows repeating a cell inside one series are merged: mean of the
    averages, min of the mins, max of the maxes (counted in ``merged_duplicates``).
    Pure; raises ProfileError (line number and text) on any bad row.

    Steps: :func:`packrat_header` (find the columns by name), :func:`_packrat_groups`
    (parse the rows, grouped by series and cell), :func:`choose_series` (apply ``series``),
    :func:`_packrat_profile` (build the Profile).
    """
    reader = packrat_csv_reader(text)
    header, names = packrat_header(reader)
    col = {n: i for i, n in enumerate(names)}
    selectors = list(series)
    for c, _ in selectors:
        if c.lower() not in col:
            raise ProfileError(f"--series column {c!r} is not in the CSV (columns: {', '.join(names)})")
    series_cols = [c for c in PACKRAT_SERIES_COLUMNS if c in col]
    groups = _packrat_groups(reader, col, len(names), series_cols)
    all_series = tuple(sorted(groups))
    key = choose_series(all_series, selectors)
    profile, merged = _packrat_profile(key, groups[key], model=model, source=source)
    return PackratImport(profile=profile, series=all_series, chosen=key, merged_duplicates=merged)


def packrat_csv_reader(text: str) -> Iterator[list[str]]:
    """A ``csv.reader`` over the text of a Packrat CSV (a byte-order mark dropped). Lines end at
    ``\n``, ``\r\n`` or ``\r`` only (not at the other characters ``str.splitlines`` breaks at,
    which would split a row in two), and ``reader.line_num`` is the physical line number."""
    return csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))


def packrat_header(reader: Iterator[list[str]]) -> tuple[list[str], list[str]]:
    """Read the header line of a Packrat CSV from ``reader`` (consumed by one line).

    Returns (the header as written, its names stripped and lower-cased). Raises
    ProfileError when the file is empty or unreadable, repeats a column name, or lacks
    one of ``intraop_threads``, ``batch_size``, ``latency(avg)`` (naming them).
    """
    try:
        header = next(reader)
    except StopIteration:
        raise ProfileError("the CSV is empty (expected a header with intraop_threads, batch_size, latency(avg))") from None
    except csv.Error as exc:
        raise ProfileError(f"line 1: unreadable CSV header: {exc}") from None
    names = [h.strip().lower() for h in header]
    dupes = sorted({n for n in names if names.count(n) > 1 and n})
    if dupes:
        raise ProfileError(f"the CSV header repeats column(s) {', '.join(dupes)}")
    missing = [c for c in (PACKRAT_THREADS, PACKRAT_BATCH, PACKRAT_AVG) if c not in names]
    if missing:
        raise ProfileError(
            f"the CSV lacks column(s) {', '.join(missing)} (header: {','.join(header)[:200]})"
        )
    return header, names


def _packrat_groups(
    reader: Iterator[list[str]], col: Mapping[str, int], width: int, series_cols: Sequence[str],
) -> dict[SeriesKey, dict[tuple[int, int], list[_LatencyRow]]]:
    """Parse the data rows left in ``reader`` (line 2 on): series -> (threads, batch) -> rows.

    ``col`` maps a lower-cased column name to its index, ``width`` is the header's number
    of columns, ``series_cols`` the series columns present. Blank lines are skipped.
    Raises ProfileError naming the line on a short or bad row, on unreadable CSV, and
    when no data row remains.
    """
    groups: dict[SeriesKey, dict[tuple[int, int], list[_LatencyRow]]] = {}
    for lineno, row in packrat_data_rows(reader, width):
        t, b, latencies = packrat_row(row, col, f"line {lineno}")
        key = tuple((c, row[col[c]].strip()) for c in series_cols)
        groups.setdefault(key, {}).setdefault((t, b), []).append(latencies)
    if not groups:
        raise ProfileError("the CSV has a header but no data rows")
    return groups


def packrat_data_rows(reader: Iterator[list[str]], width: int,
                      error: type[ProfileError] = ProfileError) -> Iterator[tuple[int, list[str]]]:
    """The data rows left in a Packrat CSV ``reader`` (line 2 on) as (line number, fields),
    blank lines skipped. Raises ``error`` naming the line on a row with another number of
    fields than the header's ``width`` (an extra field would shift the columns), and on
    unreadable CSV. Shared by the profile and the co-run readers."""
    try:
        for count, row in enumerate(reader, start=2):
            lineno = getattr(reader, "line_num", count)
            if not row or all(not x.strip() for x in row):
                continue
            if len(row) != width:
                raise error(f"line {lineno}: expected {width} fields (as the header), got {len(row)}: "
                            f"{','.join(row)[:200]!r}")
            yield lineno, row
    except csv.Error as exc:
        raise error(f"unreadable CSV: {exc}") from None


def packrat_row(row: Sequence[str], col: Mapping[str, int], where: str) -> tuple[int, int, _LatencyRow]:
    """One data row -> (threads, batch, (min, avg, max) ms). Pure.

    A missing or empty ``latency(min)`` / ``latency(max)`` is the average. Raises
    ProfileError prefixed with ``where`` (the line) naming the bad column and value.
    """
    def field_(name: str) -> str:
        return row[col[name]].strip()

    t = _parse_int(field_(PACKRAT_THREADS), f"{where}: {PACKRAT_THREADS}")
    b = _parse_int(field_(PACKRAT_BATCH), f"{where}: {PACKRAT_BATCH}")
    avg = _check_latency(field_(PACKRAT_AVG) or "missing", f"{where}: {PACKRAT_AVG}")
    lo = _check_latency(field_(PACKRAT_MIN), f"{where}: {PACKRAT_MIN}") if PACKRAT_MIN in col and field_(PACKRAT_MIN) else avg
    hi = _check_latency(field_(PACKRAT_MAX), f"{where}: {PACKRAT_MAX}") if PACKRAT_MAX in col and field_(PACKRAT_MAX) else avg
    if not (lo <= avg * (1 + 1e-9) and avg <= hi * (1 + 1e-9)):
        raise ProfileError(f"{where}: need latency(min) <= latency(avg) <= latency(max), got {lo} / {avg} / {hi}")
    return t, b, (lo, avg, hi)


def choose_series(all_series: Sequence[SeriesKey], selectors: Sequence[tuple[str, str]]) -> SeriesKey:
    """The one series of ``all_series`` (sorted) whose values match every (column, glob) selector.

    Pure. Raises ProfileError listing the series when none matches or several remain.
    """
    chosen = [
        k for k in all_series
        if all(fnmatch.fnmatchcase(dict(k).get(c.lower(), ""), g) for c, g in selectors)
    ]
    if not chosen:
        raise ProfileError(
            "no series matches " + " ".join(f"{c}={g}" for c, g in selectors)
            + "; series in the file: " + "; ".join(format_series(k) for k in all_series)
        )
    if len(chosen) > 1:
        raise ProfileError(
            f"{len(chosen)} series remain, choose one with --series COLUMN=GLOB: "
            + "; ".join(format_series(k) for k in chosen)
        )
    return chosen[0]


def _packrat_profile(
    key: SeriesKey, cells_rows: Mapping[tuple[int, int], Sequence[_LatencyRow]], *, model: str | None, source: str,
) -> tuple[Profile, int]:
    """The Profile of one series: one cell per (threads, batch), repeated rows merged.

    Merging: mean of the averages, min of the mins, max of the maxes. The model is
    ``model``, else the series' ``benchmark``, else ``packrat-import``; meta records the
    series values. Pure; returns (profile, number of rows merged away).
    """
    merged = 0
    cells = []
    for (t, b), rows in sorted(cells_rows.items()):
        merged += len(rows) - 1
        cells.append(
            Cell(
                threads=t,
                batch=b,
                mean_ms=float(np.mean([r[1] for r in rows])),
                min_ms=min(r[0] for r in rows),
                max_ms=max(r[2] for r in rows),
            )
        )
    name = model or dict(key).get("benchmark") or "packrat-import"
    meta = [(f"series.{k}", v) for k, v in key]
    meta.append(("imported_from", "packrat-csv"))
    if merged:
        meta.append(("merged_duplicate_rows", str(merged)))
    profile = Profile(
        model=name,
        cells=tuple(cells),
        statistic="mean",
        synthetic=False,
        source=source or "Packrat CSV import",
        meta=tuple(meta),
    )
    return profile, merged


def _parse_int(text: str, what: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise ProfileError(f"{what} must be a positive integer, got {text!r}") from None
    if not math.isfinite(value) or not value.is_integer() or value < 1:
        raise ProfileError(f"{what} must be a positive integer, got {text!r}")
    return int(value)


# --------------------------------------------------------------- builtin profiles


@dataclass(frozen=True)
class SyntheticFamily:
    """Parameters of the synthetic latency model (all times in ms).

    ``L(t, b) = fixed + item * b**gamma * (serial + (1 - serial) / t) + sync * log2(t) * (1 + b / (b + 8))``

    * ``fixed``: per-call framework overhead, not parallelised;
    * ``item * b**gamma``: compute of a sub-batch on one thread (gamma < 1: larger
      batches are more efficient per item);
    * ``serial``: Amdahl fraction of that compute that threads cannot split;
    * ``sync``: OpenMP barrier / memory-phase cost growing with log2 of the threads.
    Diminishing returns in threads make several thin instances beat one fat one.
    """

    name: str
    fixed: float
    item: float
    gamma: float
    serial: float
    sync: float

    def latency(self, t: int, b: int) -> float:
        return (
            self.fixed
            + self.item * b ** self.gamma * (self.serial + (1.0 - self.serial) / t)
            + self.sync * math.log2(t) * (1.0 + b / (b + 8.0))
        )


FAMILIES = {
    "cnn": SyntheticFamily("cnn", fixed=1.5, item=22.0, gamma=0.93, serial=0.06, sync=0.9),
    "transformer": SyntheticFamily("transformer", fixed=3.0, item=30.0, gamma=0.80, serial=0.03, sync=1.6),
}
BUILTIN_NAMES = ("cnn-16", "cnn-64", "transformer-16", "transformer-64")
BUILTIN_MAX_BATCH = 4096
BUILTIN_SAMPLES = 7


def builtin_profile(name: str, *, max_batch: int = BUILTIN_MAX_BATCH, seed: int = 0) -> Profile:
    """A synthetic, clearly labelled profile ``FAMILY-T`` (e.g. ``cnn-16``, ``transformer-64``).

    Threads 1..T, batches the powers of two up to ``max_batch``; each cell has
    ``BUILTIN_SAMPLES`` samples drawn (seeded, deterministic) around the family's
    latency model with 3% log-normal noise. Any T in 1..1024 is accepted, the four
    ``BUILTIN_NAMES`` are the documented ones. A ``+interference`` suffix (e.g.
    ``cnn-16+interference``) adds a synthetic busy-cores slowdown model (1.06 beside T/4
    other busy cores, 1.18 beside T/2, 1.40 beside T-1). Pure.
    """
    base, plus, suffix = name.partition("+")
    family_name, _, cores = base.rpartition("-")
    family = FAMILIES.get(family_name)
    if family is None or not cores.isdigit() or not 1 <= int(cores) <= 1024 or (plus and suffix != "interference"):
        raise ProfileError(
            f"unknown builtin profile {name!r}; known: {', '.join(BUILTIN_NAMES)} "
            f"(any FAMILY-T with FAMILY in {', '.join(FAMILIES)} and T in 1..1024; "
            "append +interference for a synthetic co-run slowdown model)"
        )
    if max_batch < 1:
        raise ProfileError(f"max_batch must be >= 1, got {max_batch}")
    T = int(cores)
    rng = np.random.default_rng([seed, T, sorted(FAMILIES).index(family_name)])
    batches = [1 << i for i in range(max_batch.bit_length()) if (1 << i) <= max_batch]
    cells = []
    for t in range(1, T + 1):
        for b in batches:
            base_ms = family.latency(t, b)
            samples = base_ms * np.exp(rng.normal(0.0, 0.03, BUILTIN_SAMPLES))
            cells.append(Cell.from_samples(t, b, [float(round(s, 6)) for s in samples]))
    interference = None
    if plus:
        # synthetic memory-bandwidth contention: +6% beside a quarter of the cores busy,
        # +18% beside half, +40% beside all others
        pts = sorted({(max(1, T // 4), 1.06), (max(1, T // 2), 1.18), (max(1, T - 1), 1.40)})
        interference = Interference(points=tuple(dict(pts).items()))
    return Profile(
        model=f"{family_name}-{T}",
        interference=interference,
        cells=tuple(cells),
        machine=Machine(cpu_model=f"synthetic {T}-core server", logical_cores=T, physical_cores=T, sockets=1),
        statistic="mean",
        synthetic=True,
        source=(
            f"SYNTHETIC: parametric {family_name} latency model "
            f"(fixed={family.fixed}, item={family.item}, gamma={family.gamma}, "
            f"serial={family.serial}, sync={family.sync}), seed={seed}; not a measurement"
        ),
        meta=(("builtin", name),),
    )


# ----------------------------------------------------------------------- file I/O


def loads_profile(text: str) -> Profile:
    """Parse profile JSON text strictly (packrat_sim.inputs.loads_json: no duplicate key, NaN,
    Infinity, integer of thousands of digits, deep nesting or lone surrogate). Raises
    ProfileError for any malformed input."""
    obj = loads_json(text, "the profile JSON (e.g. two schema versions)", error=ProfileError)
    return Profile.from_json(obj)


def dumps_profile(profile: Profile) -> str:
    """The profile as pretty JSON text ending with a newline."""
    return json.dumps(profile.to_json(), indent=1) + "\n"


def profile_digest(profile: Profile) -> str:
    """A stable digest of a profile's content: the first 16 hex digits of the SHA-256 of its
    canonical JSON (``profile.to_json()`` with sorted keys, no spaces, ASCII). Writing a
    profile and reading it back gives the same digest; any change to a cell, the co-run model,
    the machine or the metadata gives another. What a plan file records of its profile and
    what keys a sweep's runs. Pure."""
    text = json.dumps(profile.to_json(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_text(path: str, what: str = "file") -> str:
    """Read a UTF-8 text file through packrat_sim.inputs (a regular file only, bounded, strict
    UTF-8, no NUL); raises ProfileError naming the path on any problem."""
    return inputs.read_text(path, what, error=ProfileError)


def read_profile(path: str) -> Profile:
    """Read a profile JSON file. Raises ProfileError naming the path and the problem."""
    text = read_text(path, "profile")
    try:
        return loads_profile(text)
    except ProfileError as exc:
        raise ProfileError(f"{path}: {exc}") from None


def write_profile(profile: Profile, path: str) -> None:
    """Write ``profile`` as JSON to ``path`` through packrat_sim.files (atomic, no symlink or
    device followed, missing directory refused: OutputPathError, an OSError)."""
    write_text(path, dumps_profile(profile), "profile")
