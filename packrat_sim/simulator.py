"""SimPy model of Packrat serving: dispatcher, instances, estimator, online reconfiguration.

What is modelled (times are SimPy time in float **milliseconds**):

* **Dispatcher.** Open-loop workloads: single requests queue up; when the current epoch's
  instances are free, the dispatcher forms a batch TorchServe-style (waits for the first
  request, then collects up to the cap or until ``max_delay_ms`` passed; requests already
  queued are taken at once; see :class:`~packrat_sim.workload.Batching`). Closed-loop
  workloads: each client batch is served whole, first come first served.
* **Instances.** The batch is split over the epoch's plan proportionally to the plan's
  sub-batches (:func:`split_batch`, largest remainder); all sub-batches start together and
  the batch is answered when the slowest finishes (Packrat's batch latency = max_j L[t_j, b_j]).
  Batches of one epoch are served one after the other.
* **Service time** of an instance with t threads on a sub-batch of b: a draw from the
  profile's samples of cell (t, b) (uniform over the samples: the empirical distribution),
  times the profile's interference slowdown for the other busy cores beside it, times the
  oversubscription factor ``live threads / cores`` while old and new instances overlap.
  A cell the profile lacks is ``Profile.predict(t, b)`` (interpolation, never zero) times a
  noise factor drawn from the nearest measured cell's samples (sample / statistic); cells
  with no samples (imported summaries) are deterministic at the profile's statistic.
  Slowdowns are evaluated when a batch is dispatched and held for its duration. All draws
  come from tables precomputed per (plan, batch size) in vectorised blocks, so the event
  loop only looks values up (at most one SimPy event per batch, none per request;
  per-request latencies are computed vectorised at the end).
* **Estimator + reconfiguration** (policy ``"packrat"`` on open-loop workloads): every
  ``EstimatorConfig.interval_ms`` the estimator (:mod:`packrat_sim.estimator`) observes the
  queue depth; when it decides on a new batch size B, the optimizer's plan for (cores, B)
  is deployed by DESIGN.md's protocol: (1) start the new instances beside the old ones
  (they take ``start_ms`` plus ``warmup_iterations`` inferences of their sub-batch,
  slowed by sharing the cores); (2) when all are ready, (3) switch routing in one step
  (``reconfigure`` returns; every later batch is split by the new plan); (4) the old
  instances finish the batch they hold, then stop and release their cores. The
  dispatcher's cap stays the workload's ``max_batch`` (TorchServe's ``batchSize``); a
  batch larger than the plan's B is split in the same proportions. The estimator
  observes the number of requests in the system (queued or in service) by default, or
  only the queued ones (``SimConfig.observe = "waiting"``). A new plan with the same
  thread counts as the old only re-routes (instant switch, no restart). Static policies
  (``"fat"``, ``"thin"``, a given :class:`~packrat_sim.plan.Plan`) never reconfigure; on
  closed-loop workloads ``"packrat"`` is the optimizer's plan for the client batch.

The run emits its history in DESIGN.md's JSON format (``packrat.history/1``, model
``serving``; times in integer simulated nanoseconds): one ``infer`` per batch (call: the
batch's submission, i.e. its dispatch for open loops and the client's submit for closed
loops; return: its completion) and one ``reconfigure`` per reconfiguration (call: the
decision; return: the routing switch). The epoch starts at 0.

Deterministic for a given seed: arrivals come from ``default_rng([seed, 0])`` (shared by
the plans of a :func:`compare_plans`, common random numbers) and service draws from
``default_rng([seed, 1])``. No global state; building a result has no side effects.
"""

from __future__ import annotations

import bisect
import collections
import csv
import hashlib
import io
import math
from dataclasses import dataclass, field, replace
from typing import Sequence, Union

import numpy as np
import simpy

from packrat_sim import estimator as est
from packrat_sim.metrics import ServingStats, serving_stats
from packrat_sim.optimizer import OptimizerError, OptimizerOptions, PlanTable, optimize
from packrat_sim.plan import Plan, fat, plan_latency, thin
from packrat_sim.profile import Profile, ProfileError
from packrat_sim.workload import (
    Closed,
    Workload,
    arrival_times_ms,
    describe,
    load_workload,
)

HISTORY_SCHEMA = "packrat.history/1"
TIMELINE_SCHEMA = "packrat.timeline/1"
POLICIES = ("packrat", "fat", "thin")
OBSERVATIONS = ("in_system", "waiting")
CONTROLLER_CLIENT = 0  # client id of reconfigure operations in the history


class SimulationError(ValueError):
    """A simulation cannot run as asked (bad plan, profile or workload); names the value."""


@dataclass(frozen=True)
class SimConfig:
    """Knobs of the model (all times in ms).

    * ``estimator``: the batch-size estimator of the ``packrat`` policy (None: defaults
      with ``max_batch`` = the workload's max batch). Its ``max_batch`` is capped at the
      workload's.
    * ``start_ms``: time to start a new instance and build its model, before warm-up.
    * ``warmup_iterations``: inferences of its sub-batch a new instance runs before ready.
    * ``initial_batch``: batch size the ``packrat`` policy starts with (None: the largest
      the estimator allows).
    * ``optimizer``: options of the optimizer that plans each batch size.
    * ``observe``: what the estimator sees as queue depth: ``"in_system"`` (queued or in
      service) or ``"waiting"`` (queued only).
    * ``fast_forward``: an exact speed-up of open loops: the dispatcher dispatches without
      a SimPy event while its next dispatch comes before every scheduled event (nothing
      can observe the state in between). False: one SimPy event per batch.
    """

    estimator: est.EstimatorConfig | None = None
    start_ms: float = 500.0
    warmup_iterations: int = 2
    initial_batch: int | None = None
    optimizer: OptimizerOptions = field(default_factory=OptimizerOptions)
    observe: str = "in_system"
    fast_forward: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.start_ms, (int, float)) or not math.isfinite(self.start_ms) or self.start_ms < 0:
            raise SimulationError(f"start_ms must be a finite number >= 0, got {self.start_ms!r}")
        w = self.warmup_iterations
        if isinstance(w, bool) or not isinstance(w, int) or w < 0:
            raise SimulationError(f"warmup_iterations must be an integer >= 0, got {w!r}")
        if self.observe not in OBSERVATIONS:
            raise SimulationError(f"observe must be one of {', '.join(OBSERVATIONS)}, got {self.observe!r}")
        b = self.initial_batch
        if b is not None and (isinstance(b, bool) or not isinstance(b, int) or b < 1):
            raise SimulationError(f"initial_batch must be a positive integer, got {b!r}")


# --------------------------------------------------------------- batch splitting


def split_batch(plan: Plan, n: int) -> tuple[int, ...]:
    """Split a batch of ``n`` requests over ``plan.instances`` (same order).

    Proportional to the instances' configured sub-batches, largest remainder (ties: the
    earlier instance): sizes sum to ``n``; ``n == plan.batch`` gives the plan's own
    sub-batches; an instance may get 0 (it idles for this batch).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise SimulationError(f"batch size must be a positive integer, got {n!r}")
    conf = [i.batch for i in plan.instances]
    total = plan.batch
    if n == total:
        return tuple(conf)
    floors = [n * b // total for b in conf]
    rest = n - sum(floors)
    order = sorted(range(len(conf)), key=lambda j: (-((n * conf[j]) % total), j))
    for j in order[:rest]:
        floors[j] += 1
    return tuple(floors)


# ----------------------------------------------------------- service-time model


class _ServiceModel:
    """Base latency (ms) and relative noise factors per cell (t, b); built lazily, then looked up.

    Measured cell: base = the profile's statistic, factors = samples / base (so a draw is
    exactly one of the samples). Missing cell: base = ``Profile.predict``, factors borrowed
    from the nearest measured cell (nearest thread count, then nearest batch in log scale;
    ties: the smaller). No samples: factors = [1.0].
    """

    def __init__(self, profile: Profile):
        self.profile = profile
        self._cells: dict[tuple[int, int], tuple[float, np.ndarray]] = {}
        self.predicted: set[tuple[int, int]] = set()
        rows: dict[int, list[int]] = {}
        for c in profile.cells:
            rows.setdefault(c.threads, []).append(c.batch)
        self._rows = {t: sorted(bs) for t, bs in rows.items()}
        self._threads = sorted(rows)
        interference = profile.interference
        self._slowdown = (lambda k: 1.0) if interference is None else interference.slowdown
        self._slow_cache: dict[int, float] = {}

    def slowdown(self, other_busy_cores: int) -> float:
        """Interference slowdown (>= 0, 1 without a model) beside that many busy cores."""
        s = self._slow_cache.get(other_busy_cores)
        if s is None:
            s = float(self._slowdown(int(other_busy_cores)))
            if not math.isfinite(s) or s <= 0:
                raise SimulationError(f"interference slowdown at {other_busy_cores} busy cores is {s!r}")
            self._slow_cache[other_busy_cores] = s
        return s

    def _factors(self, t: int, b: int) -> np.ndarray:
        cell = self.profile.cell(t, b)
        if cell is None:
            tn = min(self._threads, key=lambda x: (abs(x - t), x))
            bn = min(self._rows[tn], key=lambda x: (abs(math.log(x) - math.log(b)), x))
            cell = self.profile.cell(tn, bn)
        stat = cell.stat(self.profile.statistic)
        if not cell.samples_ms:
            return np.ones(1)
        return np.asarray(cell.samples_ms, dtype=float) / stat

    def cell(self, t: int, b: int) -> tuple[float, np.ndarray]:
        """(base_ms, factors) of instance (t threads, sub-batch b)."""
        key = (t, b)
        got = self._cells.get(key)
        if got is None:
            measured = self.profile.latency(t, b)
            if measured is None:
                try:
                    base = float(self.profile.predict(t, b))
                except ProfileError as exc:
                    raise SimulationError(f"cannot predict cell threads={t} batch={b}: {exc}") from None
                self.predicted.add(key)
            else:
                base = float(measured)
            if not math.isfinite(base) or base <= 0:
                raise SimulationError(f"latency of cell threads={t} batch={b} is {base!r} ms (need > 0)")
            got = (base, self._factors(t, b))
            self._cells[key] = got
        return got


def check_plan_cells(profile: Profile, plan: Plan) -> None:
    """Raise SimulationError unless every instance's thread count is within the profiled range.

    A profile that lacks every cell of a thread count the plan needs can only be
    extrapolated, not interpolated (``Profile.predict`` would return a guess); the
    simulator refuses that. Missing batches inside a profiled thread row are predicted.
    """
    rows = profile.threads
    for inst in plan.instances:
        if inst.threads < rows[0] or inst.threads > rows[-1]:
            raise SimulationError(
                f"the plan needs {inst.threads}-thread instances but the profile of {profile.model!r} "
                f"has cells only for threads {rows[0]}..{rows[-1]}; profile up to {inst.threads} threads"
            )


class _Entry:
    """Precomputed sampling data of one (plan, batch size n): only instances with work."""

    __slots__ = ("threads", "base", "pool", "lens", "slow0", "busy", "svc", "core", "pos", "block", "ar")

    def __init__(self, threads, base, pool, lens, slow0, busy):
        self.threads = threads  # (k,) float: threads of the instances with work
        self.base = base  # (k,) base latency ms
        self.pool = pool  # (k, m) noise factors, padded
        self.lens = lens  # (k,) number of factors per instance
        self.slow0 = slow0  # (k,) interference slowdown within the plan alone
        self.busy = busy  # total threads with work
        self.svc: list[float] = []
        self.core: list[float] = []
        self.pos = 0
        self.block = 16
        self.ar = np.arange(len(threads))


class _PlanSampler:
    """Draws (batch service ms, busy core-ms) for batches of a plan; blocks drawn vectorised."""

    MAX_BLOCK = 4096

    def __init__(self, plan: Plan, model: _ServiceModel, rng: np.random.Generator):
        self.plan = plan
        self.model = model
        self.rng = rng
        self._entries: dict[int, _Entry] = {}

    def entry(self, n: int) -> _Entry:
        e = self._entries.get(n)
        if e is None:
            sizes = split_batch(self.plan, n)
            active = [(inst.threads, b) for inst, b in zip(self.plan.instances, sizes) if b > 0]
            cells = [self.model.cell(t, b) for t, b in active]
            m = max(len(f) for _, f in cells)
            pool = np.ones((len(cells), m))
            for j, (_, f) in enumerate(cells):
                pool[j, : len(f)] = f
            threads = np.array([t for t, _ in active], dtype=float)
            busy = int(sum(t for t, _ in active))
            slow0 = np.array([self.model.slowdown(busy - t) for t, _ in active])
            e = _Entry(
                threads,
                np.array([base for base, _ in cells]),
                pool,
                np.array([len(f) for _, f in cells], dtype=float),
                slow0,
                busy,
            )
            self._entries[n] = e
        return e

    def _refill(self, e: _Entry) -> None:
        u = self.rng.random((e.block, len(e.threads)))
        idx = (u * e.lens).astype(np.intp)
        s = e.pool[e.ar, idx] * (e.base * e.slow0)
        e.svc = s.max(axis=1).tolist()
        e.core = (s @ e.threads).tolist()
        e.pos = 0
        e.block = min(2 * e.block, self.MAX_BLOCK)

    def draw(self, n: int) -> tuple[float, float]:
        """(service ms, core-ms) of a batch of n with only this plan's instances running."""
        e = self._entries.get(n) or self.entry(n)
        if e.pos >= len(e.svc):
            self._refill(e)
        k = e.pos
        e.pos = k + 1
        return e.svc[k], e.core[k]

    def draw_shared(self, n: int, other_busy: int, oversub: float) -> tuple[float, float]:
        """As :meth:`draw`, beside ``other_busy`` busy cores of other epochs, with the cores
        oversubscribed by ``oversub`` (>= 1): service times scale by it, core-time does not."""
        e = self.entry(n)
        u = self.rng.random(len(e.threads))
        f = e.pool[e.ar, (u * e.lens).astype(np.intp)]
        slow = np.array([self.model.slowdown(e.busy - int(t) + other_busy) for t in e.threads])
        s = f * e.base * slow * oversub
        return float(s.max()), float(s @ e.threads) / oversub


# --------------------------------------------------------------------- results


@dataclass(frozen=True)
class Reconfiguration:
    """One reconfiguration (times in ms): decided at ``call_ms``, routing switched at
    ``switch_ms`` (``reconfigure`` returned), old instances stopped at ``drained_ms``.
    ``restarted``: False when the new plan reused the old instances (re-route only)."""

    from_epoch: int
    to_epoch: int
    from_batch: int
    to_batch: int
    from_plan: Plan
    to_plan: Plan
    call_ms: float
    switch_ms: float
    drained_ms: float
    restarted: bool

    def to_json(self) -> dict:
        return {
            "from_epoch": self.from_epoch,
            "to_epoch": self.to_epoch,
            "from_batch": self.from_batch,
            "to_batch": self.to_batch,
            "from_plan": self.from_plan.describe(),
            "to_plan": self.to_plan.describe(),
            "to_plan_json": self.to_plan.to_json(),
            "call_ms": self.call_ms,
            "switch_ms": self.switch_ms,
            "drained_ms": self.drained_ms,
            "duration_ms": self.switch_ms - self.call_ms,
            "restarted": self.restarted,
        }


@dataclass(frozen=True, eq=False)
class Records:
    """Per-request and per-batch records of a run (numpy arrays, ms).

    Requests are numbered in arrival order (closed loops: submission order); request i
    belongs to batch ``batch[i]``; batches are numbered in dispatch order. For a closed
    loop ``arrival_ms`` is the submission time of the request's client batch.
    """

    arrival_ms: np.ndarray
    dispatch_ms: np.ndarray
    completion_ms: np.ndarray
    batch: np.ndarray
    batch_call_ms: np.ndarray
    batch_dispatch_ms: np.ndarray
    batch_completion_ms: np.ndarray
    batch_size: np.ndarray
    batch_epoch: np.ndarray
    batch_first: np.ndarray

    @property
    def epoch(self) -> np.ndarray:
        """Epoch of each request (that of its batch)."""
        return self.batch_epoch[self.batch]


@dataclass(frozen=True, eq=False)
class SimResult:
    """Outcome of one simulated run. ``plans[e]`` is the plan of epoch e."""

    name: str
    adaptive: bool
    closed_loop: bool
    profile: str
    synthetic: bool
    cores: int
    workload: str
    seed: int
    plans: tuple[Plan, ...]
    stats: ServingStats
    reconfigurations: tuple[Reconfiguration, ...]
    estimates: tuple[tuple[float, int, int, int], ...]
    predicted_cells: tuple[tuple[int, int], ...]
    records: Records
    control: tuple[tuple[float, int, int, dict], ...]

    @property
    def plan(self) -> Plan:
        """The plan the run started with."""
        return self.plans[0]

    def to_json(self) -> dict:
        """Summary (no per-request records) as a plain JSON-able dict."""
        return {
            "name": self.name,
            "adaptive": self.adaptive,
            "closed_loop": self.closed_loop,
            "profile": self.profile,
            "synthetic": self.synthetic,
            "cores": self.cores,
            "workload": self.workload,
            "seed": self.seed,
            "plan": self.plan.describe(),
            "plan_json": self.plan.to_json(),
            "predicted_ms": self.plan.predicted_ms,
            "epochs": len(self.plans),
            "stats": self.stats.to_json(),
            "reconfigurations": [r.to_json() for r in self.reconfigurations],
            "predicted_cells": [list(c) for c in self.predicted_cells],
        }

    # ---- timeline
    def timeline(self) -> list[dict]:
        """Every event in time order, as dicts ``{"t_ms", "event", ...}``.

        Events: ``submit`` (closed loops), ``dispatch`` and ``complete`` per batch,
        ``reconfigure`` (decision), ``switch`` (routing moved to the new epoch),
        ``drained`` (old instances stopped). Equal times are ordered complete, drained,
        submit, reconfigure, switch, dispatch, then by sequence.
        """
        r = self.records
        keyed: list[tuple[float, int, int, dict]] = list(self.control)
        closed = self.closed_loop
        for k in range(r.batch_size.size):
            size = int(r.batch_size[k])
            epoch = int(r.batch_epoch[k])
            if closed:
                keyed.append((float(r.batch_call_ms[k]), 2, k, {"event": "submit", "batch": k, "size": size}))
            keyed.append((float(r.batch_dispatch_ms[k]), 5, k, {"event": "dispatch", "batch": k, "size": size, "epoch": epoch}))
            keyed.append((float(r.batch_completion_ms[k]), 0, k, {"event": "complete", "batch": k, "epoch": epoch}))
        keyed.sort(key=lambda x: (x[0], x[1], x[2]))
        return [{"t_ms": t, **d} for t, _, _, d in keyed]

    def timeline_json(self) -> dict:
        return {
            "schema": TIMELINE_SCHEMA,
            "name": self.name,
            "events": self.timeline(),
            "estimates": [
                {"t_ms": t, "queue_depth": d, "estimate": e, "batch": b} for t, d, e, b in self.estimates
            ],
        }

    # ---- history
    def history(self) -> dict:
        """The run as a ``packrat.history/1`` JSON object (model ``serving``, times in ns)."""
        r = self.records
        call_ns = _to_ns(r.batch_call_ms)
        ret_ns = _to_ns(r.batch_completion_ms)
        ops: list[tuple[int, int, dict]] = []
        for rc in self.reconfigurations:
            ops.append(
                (
                    _ns(rc.call_ms),
                    -1,
                    {
                        "client": CONTROLLER_CLIENT,
                        "input": {"op": "reconfigure", "plan": rc.to_plan.to_json()},
                        "output": {"epoch": rc.to_epoch},
                        "call": _ns(rc.call_ms),
                        "ret": _ns(rc.switch_ms),
                    },
                )
            )
        lanes = _assign_lanes(call_ns, ret_ns)
        for k in range(call_ns.size):
            first, size = int(r.batch_first[k]), int(r.batch_size[k])
            ops.append(
                (
                    int(call_ns[k]),
                    k,
                    {
                        "client": int(lanes[k]),
                        "input": {"op": "infer", "batch": k, "size": size},
                        "output": {"epoch": int(r.batch_epoch[k]), "digest": batch_digest(first, size)},
                        "call": int(call_ns[k]),
                        "ret": int(ret_ns[k]),
                    },
                )
            )
        ops.sort(key=lambda x: (x[0], x[1]))
        return {"schema": HISTORY_SCHEMA, "model": "serving", "operations": [op for _, _, op in ops]}

    # ---- per-request records
    def requests_csv(self) -> str:
        """Per-request CSV: request, arrival/dispatch/completion/latency/queue (ms), batch, epoch."""
        r = self.records
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["request", "arrival_ms", "dispatch_ms", "completion_ms", "latency_ms", "queue_ms", "batch", "epoch"])
        epoch = r.epoch
        for i in range(r.arrival_ms.size):
            a, d, c = float(r.arrival_ms[i]), float(r.dispatch_ms[i]), float(r.completion_ms[i])
            w.writerow([i, repr(a), repr(d), repr(c), repr(c - a), repr(d - a), int(r.batch[i]), int(epoch[i])])
        return buf.getvalue()


def batch_digest(first_request: int, size: int) -> str:
    """Deterministic stand-in for the digest of a batch's outputs (its request ids)."""
    return hashlib.blake2b(f"{first_request}:{size}".encode(), digest_size=8).hexdigest()


def _ns(ms: float) -> int:
    return int(round(ms * 1e6))


def _to_ns(ms: np.ndarray) -> np.ndarray:
    return np.rint(np.asarray(ms, dtype=float) * 1e6).astype(np.int64)


def _assign_lanes(call_ns: np.ndarray, ret_ns: np.ndarray) -> list[int]:
    """Client ids (>= 1) such that one client's operations never overlap (closed intervals):
    each batch takes the lowest id whose previous operation returned strictly before its call."""
    order = np.lexsort((np.arange(call_ns.size), call_ns))
    lanes = [0] * call_ns.size
    last_ret: list[int] = []
    for k in order.tolist():
        c = int(call_ns[k])
        for lane, ret in enumerate(last_ret):
            if ret < c:
                break
        else:
            lane = len(last_ret)
            last_ret.append(0)
        last_ret[lane] = int(ret_ns[k])
        lanes[k] = lane + 1
    return lanes


@dataclass(frozen=True, eq=False)
class Comparison:
    """Several policies simulated on the same workload, seed and profile."""

    profile: str
    synthetic: bool
    source: str
    cores: int
    workload: str
    workload_description: str
    seed: int
    results: tuple[SimResult, ...]

    def result(self, name: str) -> SimResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(f"no result named {name!r}; have {[r.name for r in self.results]}")

    def to_json(self) -> dict:
        return {
            "profile": self.profile,
            "synthetic": self.synthetic,
            "source": self.source,
            "cores": self.cores,
            "workload": self.workload,
            "workload_description": self.workload_description,
            "seed": self.seed,
            "results": [r.to_json() for r in self.results],
        }


# ------------------------------------------------------------------ the model


class _Group:
    """The instances of one epoch (mutable state of a running simulation)."""

    __slots__ = ("epoch", "plan", "sampler", "threads", "start_ms", "ready_ms", "stop_ms", "free_ms", "last_n")

    def __init__(self, epoch: int, plan: Plan, sampler: _PlanSampler, start_ms: float, ready_ms: float):
        self.epoch = epoch
        self.plan = plan
        self.sampler = sampler
        self.threads = plan.threads_used  # cached: read on every batch while epochs overlap
        self.start_ms = start_ms
        self.ready_ms = ready_ms
        self.stop_ms = math.inf
        self.free_ms = ready_ms
        self.last_n = 0

    @property
    def cap(self) -> int:
        """The batch size this epoch was planned for."""
        return self.plan.batch


Policy = Union[str, Plan]


class _Run:
    """One simulation run: SimPy processes over precomputed tables. Use :func:`simulate`."""

    def __init__(
        self,
        profile: Profile,
        cores: int,
        workload: Workload,
        plan: Plan,
        table: PlanTable | None,
        est_config: est.EstimatorConfig | None,
        config: SimConfig,
        arrivals_ms: np.ndarray | None,
        rng: np.random.Generator,
        feasible: list[int],
    ):
        self.profile = profile
        self.cores = cores
        self.workload = workload
        self.table = table
        self.est_config = est_config
        self.config = config
        self.rng = rng
        self.model = _ServiceModel(profile)
        self.arrivals = arrivals_ms
        self.samplers: dict[Plan, _PlanSampler] = {}
        self.feasible = feasible  # batch sizes the packrat policy can plan for, ascending
        # records, one (call, dispatch, service, size, epoch, first request) per batch
        self.batches: list[tuple[float, float, float, int, int, int]] = []
        self.busy_core_ms = 0.0
        self.control: list[tuple[float, int, int, dict]] = []
        self.reconfigs: list[Reconfiguration] = []
        self.estimates: list[tuple[float, int, int, int]] = []
        self.plans: list[Plan] = [plan]  # plans[0]: the initial plan

    def sampler(self, plan: Plan) -> _PlanSampler:
        s = self.samplers.get(plan)
        if s is None:
            check_plan_cells(self.profile, plan)
            s = self.samplers[plan] = _PlanSampler(plan, self.model, self.rng)
        return s

    # ---- core state helpers
    def _shared(self, g: _Group, now: float) -> tuple[int, float]:
        """(busy threads of other live epochs, oversubscription factor) at ``now``."""
        other = 0
        live = g.threads
        for h in self.groups:
            if h is g or not (h.start_ms <= now < h.stop_ms):
                continue
            live += h.threads
            if now < h.ready_ms:
                other += h.threads
            elif h.free_ms > now:
                other += h.sampler.entry(h.last_n).busy if h.last_n else 0
        return other, max(1.0, live / self.cores)

    def _serve(self, g: _Group, first: int, n: int, call: float, now: float) -> float:
        """Dispatch a batch of n requests to group g at ``now``; returns its service time (ms)."""
        if len(self.groups) > 1:
            self.groups = [h for h in self.groups if h.stop_ms > now or h is g]
        if len(self.groups) == 1:
            svc, core = g.sampler.draw(n)
        else:
            other, oversub = self._shared(g, now)
            svc, core = g.sampler.draw_shared(n, other, oversub)
        g.free_ms = now + svc
        g.last_n = n
        self.busy_core_ms += core
        self.batches.append((call, now, svc, n, g.epoch, first))
        return svc

    # ---- processes
    def _dispatch_open(self):
        """Dispatcher for open-loop arrivals (TorchServe batching, see module doc)."""
        env = self.env
        arr = self.arr_list
        n_total = len(arr)
        delay = self.workload.batching.max_delay_ms
        cap = self.workload.batching.max_batch
        serve = self._serve
        peek = env.peek
        fast_forward = self.config.fast_forward
        clock = 0.0  # the dispatcher's own time: env.now, or later after a fast-forward
        i = 0
        while i < n_total:
            g = self.current
            now = env.now
            if clock > now:
                now = clock
            t0 = g.free_ms if g.free_ms > now else now
            a = arr[i]
            if a > t0:
                t0 = a
            last = i + cap - 1
            td = t0 + delay
            if last < n_total:
                a = arr[last]
                if a < td:
                    td = a if a > t0 else t0
            if td > now:
                if fast_forward and td < peek():
                    # Nothing else is scheduled before td, so no process can observe or
                    # change the state in between: dispatch at td without a SimPy event.
                    clock = td
                else:
                    try:
                        yield env.timeout(td - env.now)
                    except simpy.Interrupt:
                        continue  # routing switched: form this batch for the new epoch
                    clock = td
                    if g is not self.current:
                        continue
            j = bisect.bisect_right(arr, td, i, i + cap if i + cap < n_total else n_total)
            serve(g, i, j - i, td, td)
            i = j
            self.next_index = j
        self.dispatch_done = True

    def _client(self):
        """A closed-loop client: submit a batch, wait for its answer, think, repeat."""
        env = self.env
        wl: Closed = self.workload  # type: ignore[assignment]
        while self.closed_remaining > 0:
            size = min(wl.batch, self.closed_remaining)
            self.closed_remaining -= size
            first = self.closed_next_id
            self.closed_next_id += size
            done = env.event()
            self.fifo.append((env.now, first, size, done))
            if self.wakeup is not None and not self.wakeup.triggered:
                self.wakeup.succeed()
            yield done
            if wl.think_ms:
                yield env.timeout(wl.think_ms)

    def _dispatch_closed(self):
        """Dispatcher for closed loops: client batches whole, first come first served."""
        env = self.env
        while True:
            if not self.fifo:
                if self.closed_remaining == 0 and self.in_flight == 0:
                    break
                self.wakeup = env.event()
                yield self.wakeup
                self.wakeup = None
                continue
            submit, first, size, done = self.fifo.popleft()
            g = self.current
            self.in_flight += 1
            svc = self._serve(g, first, size, submit, env.now)
            yield env.timeout(svc)
            self.in_flight -= 1
            done.succeed()
        self.dispatch_done = True

    def _estimate(self):
        """Packrat's estimator loop: observe the queue every interval, reconfigure on a change."""
        env = self.env
        cfg = self.est_config
        state = est.initial_state(cfg, self.current.cap)
        arr = self.arr_list
        while not self.dispatch_done:
            yield env.timeout(cfg.interval_ms)
            if self.dispatch_done:
                break
            depth = bisect.bisect_right(arr, env.now) - self.next_index
            if self.config.observe == "in_system":
                depth += sum(h.last_n for h in self.groups if h.free_ms > env.now and h.stop_ms > env.now)
            state, decision = est.step(cfg, state, depth)
            self.estimates.append((env.now, depth, decision.estimate, decision.batch))
            if decision.reconfigure:
                target = self._feasible(decision.batch)
                if target != self.current.cap:
                    yield from self._reconfigure(target)
                state = replace(state, current=self.current.cap)

    def _feasible(self, batch: int) -> int:
        """The batch size to plan for: ``batch`` if a plan exists, else the nearest feasible
        one above (or, failing that, below)."""
        ok = self.feasible
        above = [b for b in ok if b >= batch]
        return above[0] if above else ok[-1]

    def _reconfigure(self, batch: int):
        """DESIGN.md's protocol: start new beside old, wait ready, switch, drain old."""
        env = self.env
        old = self.current
        new_plan = self.table.plan(self.cores, batch)
        call = env.now
        epoch = old.epoch + 1
        seq = len(self.control)
        self.control.append((call, 3, seq, {"event": "reconfigure", "epoch": epoch, "batch": batch, "plan": new_plan.describe()}))
        sampler = self.sampler(new_plan)
        same = sorted(i.threads for i in new_plan.instances) == sorted(i.threads for i in old.plan.instances)
        if same:
            new = _Group(epoch, new_plan, sampler, old.start_ms, call)
            new.free_ms = old.free_ms
            new.last_n = old.last_n
            old.stop_ms = call
            self.groups = [h for h in self.groups if h is not old] + [new]
            drained = call
        else:
            new = _Group(epoch, new_plan, sampler, call, math.inf)
            new.free_ms = math.inf
            self.groups.append(new)
            other, oversub = self._shared(new, call)
            warm_each = []
            for inst in new_plan.instances:
                base, _ = self.model.cell(inst.threads, inst.batch)
                warm_each.append(base * self.model.slowdown(new.threads - inst.threads + other) * oversub)
                self.busy_core_ms += self.config.warmup_iterations * base * inst.threads
            warm = self.config.start_ms + self.config.warmup_iterations * max(warm_each)
            yield env.timeout(warm)
            new.ready_ms = env.now
            new.free_ms = env.now
            drained = max(env.now, old.free_ms)
            old.stop_ms = drained
        switch = env.now
        self.current = new
        self.plans.append(new_plan)
        self.control.append((switch, 4, seq + 1, {"event": "switch", "epoch": epoch}))
        self.control.append((drained, 1, seq + 2, {"event": "drained", "epoch": old.epoch}))
        self.reconfigs.append(
            Reconfiguration(old.epoch, epoch, old.cap, batch, old.plan, new_plan, call, switch, drained, not same)
        )
        if self.dispatcher.is_alive and self.dispatcher is not env.active_process:
            self.dispatcher.interrupt("switch")

    # ---- run
    def run(self) -> None:
        self.env = simpy.Environment()
        plan = self.plans[0]
        first = _Group(0, plan, self.sampler(plan), 0.0, 0.0)
        self.current = first
        self.groups = [first]
        self.dispatch_done = False
        self.next_index = 0
        if isinstance(self.workload, Closed):
            self.fifo: collections.deque = collections.deque()
            self.wakeup = None
            self.in_flight = 0
            self.closed_remaining = self.workload.requests
            self.closed_next_id = 0
            self.dispatcher = self.env.process(self._dispatch_closed())
            for _ in range(self.workload.clients):
                self.env.process(self._client())
        else:
            self.arr_list = self.arrivals.tolist()
            self.dispatcher = self.env.process(self._dispatch_open())
            if self.table is not None:
                self.env.process(self._estimate())
        self.env.run()
        if not self.dispatcher.triggered:
            raise SimulationError("the simulation stopped with requests still unserved (internal error)")

    def records(self) -> Records:
        table = np.asarray(self.batches, dtype=float).reshape(-1, 6)
        call, dispatch, service = table[:, 0].copy(), table[:, 1].copy(), table[:, 2]
        size = table[:, 3].astype(np.int64)
        epoch = table[:, 4].astype(np.int64)
        first = table[:, 5].astype(np.int64)
        completion = dispatch + service
        order = np.argsort(first, kind="stable")  # request order (closed loops may dispatch out of id order)
        batch_of = np.repeat(order, size[order])
        if isinstance(self.workload, Closed):
            arrival = call[batch_of]
        else:
            arrival = self.arrivals
        return Records(
            arrival_ms=np.asarray(arrival, dtype=float),
            dispatch_ms=dispatch[batch_of],
            completion_ms=completion[batch_of],
            batch=batch_of,
            batch_call_ms=call,
            batch_dispatch_ms=dispatch,
            batch_completion_ms=completion,
            batch_size=size,
            batch_epoch=epoch,
            batch_first=first,
        )


# ------------------------------------------------------------------ public API


def _check_cores(cores: object) -> int:
    if isinstance(cores, bool) or not isinstance(cores, (int, np.integer)) or cores < 1:
        raise SimulationError(f"cores must be a positive integer, got {cores!r}")
    return int(cores)


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SimulationError(f"seed must be an integer >= 0, got {seed!r}")
    return int(seed)


def _draw_arrivals(workload: Workload, seed: int) -> np.ndarray | None:
    """Open-loop arrival times of ``seed`` (stream ``[seed, 0]``); None for a closed loop."""
    if isinstance(workload, Closed):
        return None
    return arrival_times_ms(workload, np.random.default_rng([seed, 0]))


def _predicted(profile: Profile, plan: Plan) -> Plan:
    """``plan`` with ``predicted_ms`` filled from the profile (measured or predicted cells),
    unless it has one; SimulationError if its thread counts are outside the profile."""
    check_plan_cells(profile, plan)
    if plan.predicted_ms is not None:
        return plan
    return plan.with_prediction(plan_latency(plan, profile.predict))


def _policy_setup(
    profile: Profile, cores: int, workload: Workload, policy: Policy, config: SimConfig
) -> tuple[str, Plan, PlanTable | None, est.EstimatorConfig | None, list[int]]:
    """(name, initial plan, plan table or None, estimator config or None, feasible batches)."""
    B = workload.max_batch
    if isinstance(policy, Plan):
        if policy.cores > cores:
            raise SimulationError(f"the plan uses {policy.cores} cores but only {cores} are simulated")
        return "plan", _predicted(profile, policy), None, None, []
    if policy == "fat":
        return "fat", _predicted(profile, fat(B, cores)), None, None, []
    if policy == "thin":
        return "thin", _predicted(profile, thin(B, cores)), None, None, []
    if policy != "packrat":
        raise SimulationError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)} or pass a Plan")
    try:
        if isinstance(workload, Closed):
            return "packrat", optimize(profile, B, cores, config.optimizer), None, None, []
        ecfg = config.estimator or est.EstimatorConfig(max_batch=B)
        if ecfg.max_batch > B:
            ecfg = replace(ecfg, max_batch=B)
        upper = ecfg.upper
        table = PlanTable(profile, cores, upper, config.optimizer)
    except (OptimizerError, est.EstimatorError) as exc:
        raise SimulationError(str(exc)) from None
    feasible = [b for b in range(ecfg.lower, upper + 1) if (b & (b - 1)) == 0 and math.isfinite(table.latency_ms(cores, b))]
    if not feasible:
        raise SimulationError(
            f"the profile of {profile.model!r} has no plan on {cores} cores for any batch size "
            f"{ecfg.lower}..{upper} (its cells cannot cover them)"
        )
    initial = config.initial_batch or feasible[-1]
    if initial > upper or not math.isfinite(table.latency_ms(cores, initial)):
        raise SimulationError(f"initial_batch={initial} has no plan (feasible: {feasible})")
    return "packrat", table.plan(cores, initial), table, ecfg, feasible


def simulate(
    profile: Profile,
    cores: int,
    workload: Workload | str,
    policy: Policy = "packrat",
    *,
    seed: int = 0,
    config: SimConfig | None = None,
    arrivals_ms: np.ndarray | None = None,
) -> SimResult:
    """Simulate serving ``workload`` on ``cores`` cores under ``policy``.

    ``policy``: ``"packrat"`` (optimizer + estimator + online reconfiguration), ``"fat"``,
    ``"thin"`` (static baselines for the workload's max batch) or a :class:`Plan` (static).
    ``arrivals_ms``: open-loop arrival times to use instead of drawing them (sorted ms;
    :func:`compare_plans` passes the same ones to every policy). Deterministic for a seed.
    Raises SimulationError / WorkloadError naming the bad value.
    """
    cores = _check_cores(cores)
    seed = _check_seed(seed)
    config = config or SimConfig()
    wl = load_workload(workload)
    if arrivals_ms is None:
        arrivals_ms = _draw_arrivals(wl, seed)
    if arrivals_ms is not None:
        arrivals_ms = np.asarray(arrivals_ms, dtype=float)
        if arrivals_ms.size == 0:
            raise SimulationError(f"the workload {wl.to_spec()} produced no requests (seed {seed})")
        if np.any(np.diff(arrivals_ms) < 0) or arrivals_ms[0] < 0 or not np.all(np.isfinite(arrivals_ms)):
            raise SimulationError("arrival times must be finite, >= 0 and sorted")
    name, plan, table, ecfg, feasible = _policy_setup(profile, cores, wl, policy, config)
    run = _Run(profile, cores, wl, plan, table, ecfg, config, arrivals_ms, np.random.default_rng([seed, 1]), feasible)
    run.run()
    records = run.records()
    stats = serving_stats(
        arrival_ms=records.arrival_ms,
        dispatch_ms=records.dispatch_ms,
        completion_ms=records.completion_ms,
        batch_dispatch_ms=records.batch_dispatch_ms,
        batch_completion_ms=records.batch_completion_ms,
        busy_core_ms=run.busy_core_ms,
        cores=cores,
    )
    return SimResult(
        name=name,
        adaptive=table is not None,
        closed_loop=isinstance(wl, Closed),
        profile=profile.label(),
        synthetic=profile.synthetic,
        cores=cores,
        workload=wl.to_spec(),
        seed=seed,
        plans=tuple(run.plans),
        stats=stats,
        reconfigurations=tuple(run.reconfigs),
        estimates=tuple(run.estimates),
        predicted_cells=tuple(sorted(run.model.predicted)),
        records=records,
        control=tuple(run.control),
    )


def compare_plans(
    profile: Profile,
    cores: int,
    workload: Workload | str,
    seed: int = 0,
    config: SimConfig | None = None,
    policies: Sequence[Policy] = POLICIES,
) -> Comparison:
    """Simulate the optimizer's policy, the fat and the thin plan on the same arrivals.

    Every policy sees the same arrival times (common random numbers) and its own service
    draws from the same seed. Returns a :class:`Comparison` (``results`` in ``policies`` order).
    """
    cores = _check_cores(cores)
    seed = _check_seed(seed)
    wl = load_workload(workload)
    arrivals = _draw_arrivals(wl, seed)
    results = tuple(
        simulate(profile, cores, wl, p, seed=seed, config=config, arrivals_ms=arrivals) for p in policies
    )
    return Comparison(
        profile=profile.label(),
        synthetic=profile.synthetic,
        source=profile.source,
        cores=cores,
        workload=wl.to_spec(),
        workload_description=describe(wl),
        seed=seed,
        results=results,
    )
