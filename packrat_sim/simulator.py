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
* **Service time** of a batch: the slowest instance's time plus the profile's measured
  dispatch cost (``Profile.dispatch_ms``; 0 when not measured). An instance with t
  threads on a sub-batch of b takes a draw from the profile's samples of cell (t, b)
  (uniform over the samples: the empirical distribution), times the profile's
  interference slowdown for the other busy cores beside it, times the slowdown of
  sharing the cores while another epoch starts up or warms up (``SwitchModel``).
  A cell the profile lacks is ``Profile.predict(t, b)`` (interpolation, never zero) times a
  noise factor drawn from the nearest measured cell's samples (sample / statistic); cells
  with no samples (imported summaries) are deterministic at the profile's statistic.
  Slowdowns are evaluated when a batch is dispatched and held for its duration. All draws
  come from tables precomputed per (plan, batch size) in vectorised blocks, so the event
  loop only looks values up (at most one SimPy event per batch, none per request;
  per-request latencies are computed vectorised at the end).
* **Policy + reconfiguration** (policy ``"packrat"`` on open-loop workloads): the policy
  of :mod:`packrat_sim.policy` (shared with the real runner) sees every batch the
  dispatcher forms (its size and the backlog left) and decides, only then, whether to
  move to another of the optimizer's plans; it starts with the plan for the first formed
  batch. ``"packrat-ewma"`` is the paper's estimator (:mod:`packrat_sim.estimator`):
  every ``EstimatorConfig.interval_ms`` it observes the queue depth (requests in the
  system by default, or only the queued ones with ``SimConfig.observe = "waiting"``) and
  plans for a power-of-two batch size; while the server is idle and the estimator has
  settled, its ticks up to the next arrival are skipped in one step. Either way idle
  time costs nothing. A new plan is deployed by the kind of switch the runner performs
  (:meth:`~packrat_sim.policy.SwitchModel.kind`, the one rule of
  :mod:`packrat_sim.switching`), costed by the :class:`~packrat_sim.policy.SwitchModel`:
  a **re-route** (same thread counts) switches routing ``reroute_ms`` later, the
  in-flight batch finishing on the same workers; a **retarget** (warm workers change
  threads and cores in place) holds routing while the in-flight batch drains, pauses
  ``retarget_ms``, switches, and its first batch runs ``first_batch_factor`` times
  slower; a **respawn** (new processes) follows DESIGN.md's protocol with measured
  costs: (1) start the new instances beside the old ones: ``start_ms`` of start-up,
  each new instance one busy core (the serving instances slow down as measured), then
  ``warmup_iterations`` inferences of its sub-batch on the shared cores
  (oversubscribed); (2) when all are ready, (3) switch routing in one step
  (``reconfigure`` returns; every later batch is split by the new plan); (4) the old
  instances finish the batch they hold, then stop and release their cores. The
  dispatcher's cap stays the workload's ``max_batch`` (TorchServe's ``batchSize``); a
  batch larger than the plan's B is split in the same proportions. Static policies
  (``"fat"``, ``"thin"``, a given :class:`~packrat_sim.plan.Plan`) never reconfigure; on
  closed-loop workloads both packrat policies run the optimizer's plan for the client batch.

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
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import cast

import numpy as np
import simpy

from packrat_sim import estimator as est
from packrat_sim import limits
from packrat_sim import policy as pol
from packrat_sim import validate
from packrat_sim.errors import PackratError
from packrat_sim.metrics import ServingStats, serving_stats
from packrat_sim.optimizer import OptimizerError, OptimizerOptions, PlanTable, optimize
from packrat_sim.plan import Plan, fat, plan_latency, thin
from packrat_sim.policy import ServiceModel
from packrat_sim.policy import split_batch as split_batch  # re-exported (ui/dashboard/data.py imports it from here)
from packrat_sim.profile import Profile
from packrat_sim.switching import REROUTE, RESPAWN, RETARGET
from packrat_sim.workload import (
    CLOSED_LOOPS,
    MAX_EXPECTED_REQUESTS,
    Closed,
    ClosedSteps,
    Workload,
    arrival_times_ms,
    describe,
    load_workload,
)
import contextlib

HISTORY_SCHEMA = "packrat.history/1"
TIMELINE_SCHEMA = "packrat.timeline/1"
POLICIES = ("packrat", "fat", "thin")  # compared by default; "packrat-ewma" is the paper's estimator
ALL_POLICIES = ("packrat", "packrat-ewma", "fat", "thin")
OBSERVATIONS = ("in_system", "waiting")
CONTROLLER_CLIENT = 0  # client id of reconfigure operations in the history


class SimulationError(PackratError):
    """A simulation cannot run as asked (bad plan, profile or workload); names the value."""


@dataclass(frozen=True)
class SimConfig:
    """Knobs of the model (all times in ms).

    * ``policy``: parameters of the ``packrat`` policy (:class:`~packrat_sim.policy.PolicyConfig`;
      None: defaults, ``max_batch`` = the workload's).
    * ``estimator``: the batch-size estimator of the ``packrat-ewma`` policy (None: defaults
      with ``max_batch`` = the workload's max batch). Its ``max_batch`` is capped at the
      workload's.
    * ``start_ms``: time to start a new instance and build its model, before warm-up
      (default: measured, see :class:`~packrat_sim.policy.SwitchModel`).
    * ``warmup_iterations``: inferences of its sub-batch a new instance runs before ready.
    * ``switch``: the rest of the reconfiguration cost model (:class:`~packrat_sim.policy.SwitchModel`:
      the re-route and retarget pauses, the retarget's first-batch slowdown, the warm
      standby that decides the kind, a respawn's slowdowns of the serving instances during
      start-up and warm-up); None: the defaults with ``start_ms`` and ``warmup_iterations``
      from here.
    * ``initial_batch``: batch size the ``packrat-ewma`` policy starts with (None: the
      largest the estimator allows). The ``packrat`` policy starts with the plan for the
      first formed batch.
    * ``optimizer``: options of the optimizer that plans each batch size.
    * ``observe``: what the estimator sees as queue depth: ``"in_system"`` (queued or in
      service) or ``"waiting"`` (queued only).
    * ``fast_forward``: an exact speed-up of open loops: the dispatcher dispatches without
      a SimPy event while its next dispatch comes before every scheduled event (nothing
      can observe the state in between). False: one SimPy event per batch.
    """

    estimator: est.EstimatorConfig | None = None
    start_ms: float = pol.SwitchModel.start_ms
    warmup_iterations: int = 2
    policy: pol.PolicyConfig | None = None
    switch: pol.SwitchModel | None = None
    initial_batch: int | None = None
    optimizer: OptimizerOptions = field(default_factory=OptimizerOptions)
    observe: str = "in_system"
    fast_forward: bool = True

    def __post_init__(self) -> None:
        validate.nonnegative_float(self.start_ms, "start_ms", error=SimulationError)
        validate.nonnegative_int(self.warmup_iterations, "warmup_iterations", error=SimulationError)
        validate.one_of(self.observe, "observe", OBSERVATIONS, error=SimulationError)
        if self.policy is not None and not isinstance(self.policy, pol.PolicyConfig):
            raise SimulationError(f"policy must be a PolicyConfig, got {self.policy!r:.80}")
        if self.switch is not None and not isinstance(self.switch, pol.SwitchModel):
            raise SimulationError(f"switch must be a SwitchModel, got {self.switch!r:.80}")
        if self.initial_batch is not None:
            validate.positive_int(self.initial_batch, "initial_batch", error=SimulationError)

    def switch_model(self) -> pol.SwitchModel:
        """The reconfiguration cost model of this configuration."""
        if self.switch is not None:
            return replace(self.switch, start_ms=self.start_ms, warmup_iterations=self.warmup_iterations)
        return pol.SwitchModel(start_ms=self.start_ms, warmup_iterations=self.warmup_iterations)


# ----------------------------------------------------------- service-time model


class _ServiceModel(ServiceModel):
    """:class:`~packrat_sim.policy.ServiceModel` raising SimulationError (shared with the policy,
    so the simulator and the policy price a cell the same way)."""

    def __init__(self, profile: Profile):
        super().__init__(profile, SimulationError)


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

    __slots__ = ("ar", "base", "block", "busy", "core", "dispatch", "lens", "pool", "pos", "slow0", "svc", "threads")

    def __init__(self, threads, base, pool, lens, slow0, busy, dispatch=0.0) -> None:
        self.threads = threads  # (k,) float: threads of the instances with work
        self.base = base  # (k,) base latency ms
        self.pool = pool  # (k, m) noise factors, padded
        self.lens = lens  # (k,) number of factors per instance
        self.slow0 = slow0  # (k,) interference slowdown within the plan alone
        self.busy = busy  # total threads with work
        self.dispatch = dispatch  # ms the server spends dispatching the batch (profile's measurement)
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
            active = pol.active_cells(self.plan, n)
            cells = [self.model.cell(t, b) for t, b in active]
            m = max(len(f) for _, f in cells)
            pool = np.ones((len(cells), m))
            for j, (_, f) in enumerate(cells):
                pool[j, : len(f)] = f
            threads = np.array([t for t, _ in active], dtype=float)
            busy = int(sum(t for t, _ in active))
            slow0 = np.array([self.model.slowdown(busy - t, t) for t, _ in active])
            e = _Entry(
                threads,
                np.array([base for base, _ in cells]),
                pool,
                np.array([len(f) for _, f in cells], dtype=float),
                slow0,
                busy,
                pol.dispatch_cost_ms(self.model.profile, self.plan, n),
            )
            self._entries[n] = e
        return e

    def _refill(self, e: _Entry) -> None:
        u = self.rng.random((e.block, len(e.threads)))
        idx = (u * e.lens).astype(np.intp)
        s = e.pool[e.ar, idx] * (e.base * e.slow0)
        e.svc = (s.max(axis=1) + e.dispatch).tolist()
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

    def draw_shared(self, n: int, other_busy: int, factor) -> tuple[float, float]:
        """As :meth:`draw`, beside ``other_busy`` busy cores of other epochs, each instance
        slowed by ``factor(threads)`` (>= 1; a number or one per instance: sharing the cores
        during another epoch's start-up or warm-up; see :meth:`_Run._shared`): service times
        scale by it, core-time does not."""
        e = self.entry(n)
        u = self.rng.random(len(e.threads))
        f = e.pool[e.ar, (u * e.lens).astype(np.intp)]
        slow = np.array([self.model.slowdown(e.busy - int(t) + other_busy, int(t)) for t in e.threads])
        s = f * e.base * slow
        shared = s * factor(e.threads)
        return float(shared.max()) + e.dispatch, float(s @ e.threads)


# --------------------------------------------------------------------- results


@dataclass(frozen=True)
class Reconfiguration:
    """One reconfiguration (times in ms): decided at ``call_ms``, routing switched at
    ``switch_ms`` (``reconfigure`` returned), the old epoch's work drained at ``drained_ms``
    (after the switch for a respawn; before it for a retarget, whose workers drain and then
    retarget in place). ``kind``: ``re-route``, ``retarget`` or ``respawn``
    (:mod:`packrat_sim.switching`); ``pause_ms``: the modelled pause of that kind
    (:meth:`SwitchModel.pause_ms`); ``restarted``: new processes were started (a respawn).
    ``reason``, ``gain_ms``, ``cost_ms``: the policy's explanation (why; predicted gain in
    request-weighted expected latency, ms per request; the priced loss of that kind, ms);
    empty / 0 for the ``packrat-ewma`` estimator."""

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
    reason: str = ""
    gain_ms: float = 0.0
    cost_ms: float = 0.0
    kind: str = RESPAWN
    pause_ms: float = 0.0

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
            "kind": self.kind,
            "pause_ms": self.pause_ms,
            "reason": self.reason,
            "predicted_gain_ms": self.gain_ms,
            "switch_cost_ms": self.cost_ms,
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
    decisions: tuple = ()  # every decision of the packrat policy (pol.Decision), in time order
    catalog_plans: tuple[Plan, ...] = ()  # the packrat policy's candidates: Decision.plan indexes them

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
            "policy_decisions": self.decision_summary(),
            "decisions": [dict(d.to_json(), plan_describe=self.catalog_plans[d.plan].describe())
                          for d in self.decisions],
        }

    def decision_summary(self) -> dict:
        """How many decisions the packrat policy took, by outcome (reason), and the largest
        predicted gain it refused (ms per request, with the kind of switch and its price)."""
        by: dict[str, int] = {}
        refused = None
        for d in self.decisions:
            key = "switch" if d.reconfigure else d.reason
            by[key] = by.get(key, 0) + 1
            if not d.reconfigure and d.gain_ms > 0 and (refused is None or d.gain_ms > refused["gain_ms"]):
                refused = {"t_ms": d.t_ms, "gain_ms": d.gain_ms, "cost_ms": d.cost_ms, "kind": d.kind, "reason": d.reason}
        return {"count": len(self.decisions), "by_outcome": by, "largest_refused_gain": refused}

    def no_reconfiguration_reasons(self) -> list[str]:
        """Why the policy kept its first plan, in words (empty when it reconfigured or took no
        decision): :func:`explain_no_reconfiguration` of :meth:`decision_summary`."""
        if self.reconfigurations or not self.decisions:
            return []
        return explain_no_reconfiguration(self.decision_summary())

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
        ops: list[tuple[int, int, dict]] = [
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
            for rc in self.reconfigurations
        ]
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


def explain_no_reconfiguration(summary: dict) -> list[str]:
    """Why an adaptive policy kept its first plan, from :meth:`SimResult.decision_summary`: its
    decisions by outcome, most frequent first ("111 decisions (46 x gain below min_gain, ...)"),
    then the largest predicted gain it refused and why. Pure; shared by the CLI and the dashboard."""
    parts = ", ".join(f"{n} x {why}" for why, n in sorted(summary["by_outcome"].items(), key=lambda x: -x[1]))
    lines = [f"no reconfiguration: {summary['count']} decisions ({parts})"]
    ref = summary["largest_refused_gain"]
    if ref:
        lines.append(
            f"largest refused gain {ref['gain_ms']:.1f} ms per request at {ref['t_ms'] / 1000:.1f} s "
            f"({ref['reason']}; modelled cost {ref['cost_ms']:.1f} ms, a {ref.get('kind') or 'switch'})"
        )
    return lines


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
        lane = next((j for j, ret in enumerate(last_ret) if ret < c), len(last_ret))
        if lane == len(last_ret):
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
        """Every field by name, in order; the results as their summaries (:meth:`SimResult.to_json`)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["results"] = [r.to_json() for r in self.results]
        return out


# ------------------------------------------------------------------ the model


class _Group:
    """The instances of one epoch (mutable state of a running simulation).

    ``launch_ms``: its processes were started (start-up: one busy core per instance);
    ``start_ms``: start-up done, warm-up begins (all its threads live); ``ready_ms``: warm;
    ``first_factor``: the slowdown of its next batch (> 1 only for a retarget's first)."""

    __slots__ = (
        "epoch",
        "first_factor",
        "free_ms",
        "last_n",
        "launch_ms",
        "plan",
        "procs",
        "ready_ms",
        "sampler",
        "start_ms",
        "stop_ms",
        "threads",
    )

    def __init__(self, epoch: int, plan: Plan, sampler: _PlanSampler, start_ms: float, ready_ms: float,
                 launch_ms: float | None = None):
        self.epoch = epoch
        self.plan = plan
        self.sampler = sampler
        self.threads = plan.threads_used  # cached: read on every batch while epochs overlap
        self.procs = len(plan.instances)
        self.launch_ms = start_ms if launch_ms is None else launch_ms
        self.start_ms = start_ms
        self.ready_ms = ready_ms
        self.stop_ms = math.inf
        self.free_ms = ready_ms
        self.last_n = 0
        self.first_factor = 1.0  # slowdown of its next batch (a retarget's first batch; then 1)

    @property
    def cap(self) -> int:
        """The batch size this epoch was planned for."""
        return self.plan.batch


Policy = str | Plan


class _Run:
    """One simulation run: SimPy processes over precomputed tables. Use :func:`simulate`."""

    # set by run(): the SimPy environment, the live epochs, the one routing takes, the dispatcher
    env: simpy.Environment
    groups: list[_Group]
    current: _Group
    dispatcher: simpy.Process
    dispatch_done: bool
    next_index: int  # open loops: the first arrival not yet dispatched
    arr_list: list[float]  # open loops: the arrival times (ms)
    # closed loops: batches waiting, the dispatcher's wake-up, batches in service, requests left
    fifo: collections.deque
    wakeup: simpy.Event | None
    in_flight: int
    closed_remaining: int
    closed_next_id: int

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
        catalog: pol.PlanCatalog | None = None,
        policy_config: pol.PolicyConfig | None = None,
    ):
        self.profile = profile
        self.cores = cores
        self.workload = workload
        self.table = table
        self.est_config = est_config
        self.config = config
        self.switch = config.switch_model()
        self.rng = rng
        self.model = _ServiceModel(profile)  # its own: reports the cells this run predicted
        self.catalog = catalog
        self.policy_config = policy_config
        self.arrivals = arrivals_ms
        self.samplers: dict[Plan, _PlanSampler] = {}
        self.feasible = feasible  # batch sizes the packrat-ewma policy can plan for, ascending
        # records, one (call, dispatch, service, size, epoch, first request) per batch
        self.batches: list[tuple[float, float, float, int, int, int]] = []
        self.busy_core_ms = 0.0
        self.control: list[tuple[float, int, int, dict]] = []
        self.reconfigs: list[Reconfiguration] = []
        self.estimates: list[tuple[float, int, int, int]] = []
        self.decisions: list[pol.Decision] = []  # every decision of the packrat policy
        self.plans: list[Plan] = [plan]  # plans[0]: the initial plan
        if catalog is not None:
            start = catalog.index(plan)
            if start is None:  # not reached: the policy's first plan is one of its catalog
                raise SimulationError(f"the initial plan {plan.describe()} is not in the policy's catalog")
            self.pstate = pol.initial_state(start)

    def sampler(self, plan: Plan) -> _PlanSampler:
        s = self.samplers.get(plan)
        if s is None:
            check_plan_cells(self.profile, plan)
            s = self.samplers[plan] = _PlanSampler(plan, self.model, self.rng)
        return s

    # ---- core state helpers
    def _shared(self, g: _Group, now: float):
        """(busy threads of other live epochs, per-instance slowdown function) at ``now``,
        following the :class:`~packrat_sim.policy.SwitchModel`: epochs starting up count one
        busy core per instance, warming or serving epochs all their threads."""
        other = 0
        live = g.threads
        starting = False
        warming = False
        for h in self.groups:
            if h is g or not (h.launch_ms <= now < h.stop_ms):
                continue
            if now < h.start_ms:
                live += h.procs
                starting = True
                continue
            live += h.threads
            if now < h.ready_ms:
                other += h.threads
                warming = True
            elif h.free_ms > now:
                other += h.sampler.entry(h.last_n).busy if h.last_n else 0
        if now < g.start_ms:  # g itself starting up: cannot serve (never asked)
            starting = True
        elif now < g.ready_ms:
            warming = True
        oversub = live / self.cores
        sw = self.switch
        if warming or (oversub > 1.0 and not starting):
            f = sw.warmup_factor(oversub) if warming else max(1.0, oversub)
            return other, (lambda threads, f=f: f)
        if starting:
            return other, (lambda threads, o=oversub: np.array([sw.startup_factor(int(t), o) for t in threads]))
        return other, (lambda threads: 1.0)

    def _serve(self, g: _Group, first: int, n: int, call: float, now: float) -> float:
        """Dispatch a batch of n requests to group g at ``now``; returns its service time (ms)."""
        if len(self.groups) > 1:
            self.groups = [h for h in self.groups if h.stop_ms > now or h is g]
        if len(self.groups) == 1:
            svc, core = g.sampler.draw(n)
        else:
            other, factor = self._shared(g, now)
            svc, core = g.sampler.draw_shared(n, other, factor)
        if g.first_factor != 1.0:  # the first batch after a retarget
            svc, g.first_factor = svc * g.first_factor, 1.0
        g.free_ms = now + svc
        g.last_n = n
        self.busy_core_ms += core
        self.batches.append((call, now, svc, n, g.epoch, first))
        return svc

    # ---- processes
    def _dispatch_open(self):
        """Dispatcher for open-loop arrivals (TorchServe batching, see module doc)."""
        env = self.env
        wl = self.workload
        if isinstance(wl, CLOSED_LOOPS):  # not reached: run() starts this dispatcher for open loops only
            raise SimulationError("the open-loop dispatcher started on a closed loop (internal error)")
        arr = self.arr_list
        n_total = len(arr)
        delay = wl.batching.max_delay_ms
        cap = wl.batching.max_batch
        serve = self._serve
        peek = env.peek
        fast_forward = self.config.fast_forward
        catalog = self.catalog  # None unless the packrat policy decides
        pcfg = self.policy_config
        due = pol.decision_due
        formed: list[tuple[float, int]] = []  # batches formed since the policy last saw one (see _decide)
        clock = 0.0  # the dispatcher's own time: env.now, or later after a fast-forward
        i = 0
        while i < n_total:
            g = self.current
            now = env.now
            now = max(now, clock)
            t0 = max(now, g.free_ms)
            a = arr[i]
            t0 = max(t0, a)
            last = i + cap - 1
            td = t0 + delay
            if last < n_total:
                a = arr[last]
                if a < td:
                    td = max(t0, a)
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
            j = bisect.bisect_right(arr, td, i, min(n_total, i + cap))
            n = j - i
            serve(g, i, n, td, td)
            i = j
            self.next_index = j
            if catalog is not None:
                # The policy sees every formed batch; while no decision is due (a switch in
                # progress, or the last decision too recent) the batches wait in `formed` and
                # reach it, all at once, right before the next decision: the same state then.
                formed.append((td, n))
                if due(pcfg, self.pstate, td):  # type: ignore[arg-type]  # set with the catalog
                    backlog = bisect.bisect_right(arr, td, j) - j if j < n_total else 0
                    switch = self._decide(td, formed, backlog)
                    formed = []
                    if switch is not None:
                        if td > env.now:
                            yield env.timeout(td - env.now)  # no interrupt possible: no switch in flight
                        env.process(self._reconfigure_plan(catalog.plans[switch.plan], switch))
        if formed:  # the last batches (the last one took the last request), so the final state saw every one
            self.pstate = pol.observe_many(pcfg, self.pstate, formed, 0)  # type: ignore[arg-type]
        self.dispatch_done = True

    def _decide(self, t: float, formed: list[tuple[float, int]], backlog: int) -> pol.Decision | None:
        """Feed the formed batches ``(t_ms, size)`` (the last at ``t``, ``backlog`` requests
        waiting after it) to the policy, which decides at ``t``; its decision if it decides to
        reconfigure. The same as observing each batch as it forms and offering a decision
        after each: decide does nothing while :func:`~packrat_sim.policy.decision_due` is
        false, and observations commute with :func:`~packrat_sim.policy.switched`."""
        cfg, cat = self.policy_config, self.catalog
        if cfg is None or cat is None:  # not reached: _policy_setup gives both or neither
            raise SimulationError("a policy decision in a run without the packrat policy (internal error)")
        self.pstate = pol.observe_many(cfg, self.pstate, formed, backlog)
        self.pstate, d = pol.decide(cfg, cat, self.pstate, t, self.switch)
        if d is None:
            return None
        n = formed[-1][1]
        self.estimates.append((t, backlog, n, cat.plans[d.plan].batch))
        self.decisions.append(d)
        return d if d.reconfigure else None

    def _submit(self, size: int):
        """A client's batch of ``size`` requests joins the queue now; the event its answer triggers."""
        first = self.closed_next_id
        self.closed_next_id += size
        done = self.env.event()
        self.fifo.append((self.env.now, first, size, done))
        self._wake_dispatcher()
        return done

    def _wake_dispatcher(self) -> None:
        if self.wakeup is not None and not self.wakeup.triggered:
            self.wakeup.succeed()

    def _client(self):
        """A closed-loop client of a request count: submit a batch, wait for its answer, think, repeat."""
        wl = cast(Closed, self.workload)  # clients exist for closed loops only
        while self.closed_remaining > 0:
            size = min(wl.batch, self.closed_remaining)
            self.closed_remaining -= size
            yield self._submit(size)
            if wl.think_ms:
                yield self.env.timeout(wl.think_ms)

    def _stepped_client(self):
        """A closed-loop client of a :class:`~packrat_sim.workload.ClosedSteps` load: submit a
        batch of the step in progress, wait for its answer, think, repeat until the last step
        ends. SimulationError once the clients submitted more than MAX_EXPECTED_REQUESTS."""
        wl = cast(ClosedSteps, self.workload)
        size = wl.batch_at(self.env.now / 1000.0)
        while size is not None:
            if self.closed_next_id + size > MAX_EXPECTED_REQUESTS:
                raise SimulationError(f"the closed loop {wl.to_spec()} submitted more than {MAX_EXPECTED_REQUESTS} "
                                      "requests (memory): shorten its steps")
            yield self._submit(size)
            if wl.think_ms:
                yield self.env.timeout(wl.think_ms)
            size = wl.batch_at(self.env.now / 1000.0)
        self.clients_left -= 1
        self._wake_dispatcher()

    def _clients_done(self) -> bool:
        """No closed-loop client will submit another batch."""
        if isinstance(self.workload, Closed):
            return self.closed_remaining == 0
        return self.clients_left == 0

    def _wait_until(self, t: float):
        """Process step: wait until ``t`` ms; a routing switch interrupting the wait is absorbed."""
        while self.env.now < t:
            with contextlib.suppress(simpy.Interrupt):
                yield self.env.timeout(t - self.env.now)

    def _dispatch_closed(self):
        """Dispatcher for closed loops: client batches whole, first come first served, each
        on the current epoch once it is free. With the packrat policy (stepped closed loops),
        the policy sees every batch as it is dispatched (its size and the requests queued
        behind it) and may switch plans, as for open loops."""
        env = self.env
        formed: list[tuple[float, int]] = []
        while True:
            if not self.fifo:
                if self._clients_done() and self.in_flight == 0:
                    break
                self.wakeup = env.event()
                with contextlib.suppress(simpy.Interrupt):
                    yield self.wakeup
                self.wakeup = None
                continue
            g = self.current
            if g.free_ms > env.now:
                yield from self._wait_until(min(g.free_ms, env.now + 1e9))
                continue  # the epoch may have switched meanwhile
            submit, first, size, done = self.fifo.popleft()
            self.in_flight += 1
            svc = self._serve(g, first, size, submit, env.now)
            if self.catalog is not None:
                formed = self._closed_decision(formed, env.now, size)
            yield from self._wait_until(env.now + svc)
            self.in_flight -= 1
            done.succeed()
        self.dispatch_done = True

    def _closed_decision(self, formed: list[tuple[float, int]], t: float, size: int) -> list[tuple[float, int]]:
        """Show the policy the batch of ``size`` dispatched at ``t``; when a decision
        is due, decide (backlog: the requests queued behind it) and start a switch it asks for.
        Returns the batches it has not seen yet."""
        formed.append((t, size))
        if not pol.decision_due(self.policy_config, self.pstate, t):  # type: ignore[arg-type]  # set with the catalog
            return formed
        switch = self._decide(t, formed, sum(item[2] for item in self.fifo))
        if switch is not None:
            self.env.process(self._reconfigure_plan(self.catalog.plans[switch.plan], switch))  # type: ignore[union-attr]
        return []

    def _idle_until(self, now: float) -> float | None:
        """Next arrival time if nothing is queued or in service at ``now``, else None."""
        if any(h.free_ms > now and h.stop_ms > now for h in self.groups):
            return None
        nxt = self.next_index
        if nxt >= len(self.arr_list) or self.arr_list[nxt] <= now:
            return None
        return self.arr_list[nxt]

    def _estimate(self):
        """The paper's estimator loop (policy ``packrat-ewma``): observe the queue every
        interval, reconfigure on a change. While the server is idle and the estimator has
        settled, the ticks up to the next arrival are skipped in one jump (their outcome is
        known: :func:`~packrat_sim.estimator.idle_steps`), so idle time costs nothing."""
        env = self.env
        cfg, table = self.est_config, self.table
        if cfg is None or table is None:  # not reached: run() starts the estimator with both
            raise SimulationError("the estimator loop started without its configuration (internal error)")
        state = est.initial_state(cfg, self.current.cap)
        arr = self.arr_list
        while not self.dispatch_done:
            yield env.timeout(cfg.interval_ms)
            if self.dispatch_done:
                break
            nxt = self._idle_until(env.now)
            if nxt is not None and est.settled(cfg, state) and self._feasible(cfg.lower) == self.current.cap:
                k = int((nxt - env.now) // cfg.interval_ms)
                if k >= 2:
                    state = est.idle_steps(cfg, state, k - 1)
                    yield env.timeout((k - 1) * cfg.interval_ms)
                    continue
            depth = bisect.bisect_right(arr, env.now) - self.next_index
            if self.config.observe == "in_system":
                depth += sum(h.last_n for h in self.groups if h.free_ms > env.now and h.stop_ms > env.now)
            state, decision = est.step(cfg, state, depth)
            self.estimates.append((env.now, depth, decision.estimate, decision.batch))
            if decision.reconfigure:
                target = self._feasible(decision.batch)
                if target != self.current.cap:
                    yield from self._reconfigure(table.plan(self.cores, target))
                state = replace(state, current=self.current.cap)

    def _feasible(self, batch: int) -> int:
        """The batch size to plan for: ``batch`` if a plan exists, else the nearest feasible
        one above (or, failing that, below)."""
        ok = self.feasible
        above = [b for b in ok if b >= batch]
        return above[0] if above else ok[-1]

    def _reconfigure_plan(self, new_plan: Plan, decision: pol.Decision):
        """Process: run a policy decision through the protocol, then resume decisions."""
        yield from self._reconfigure(new_plan, decision)
        self.pstate = pol.switched(self.pstate)

    def _reconfigure(self, new_plan: Plan, decision: pol.Decision | None = None):
        """DESIGN.md's protocol, by the kind of switch (:meth:`SwitchModel.kind`, the rule the
        runner follows): a re-route or a retarget reuses the warm workers in place
        (:meth:`_in_place`); a respawn starts new processes beside the old ones
        (:meth:`_respawn`). Records the reconfiguration; returns (as a process) at the switch."""
        env = self.env
        old = self.current
        call = env.now
        epoch = old.epoch + 1
        seq = len(self.control)
        kind = self.switch.kind(old.plan, new_plan, self.cores)
        info = {"event": "reconfigure", "epoch": epoch, "batch": new_plan.batch, "plan": new_plan.describe(),
                "kind": kind}
        if decision is not None:
            info.update(reason=decision.reason, mode=decision.mode, gain_ms=decision.gain_ms, cost_ms=decision.cost_ms)
        self.control.append((call, 3, seq, info))
        if kind == RESPAWN:
            new, drained = yield from self._respawn(old, new_plan, epoch)
            switch = env.now
        else:
            new, switch, drained = self._in_place(old, new_plan, epoch, kind)
        self.plans.append(new_plan)
        self.control.append((switch, 4, seq + 1, {"event": "switch", "epoch": epoch}))
        self.control.append((drained, 1, seq + 2, {"event": "drained", "epoch": old.epoch}))
        self.reconfigs.append(Reconfiguration(
            old.epoch, epoch, old.cap, new_plan.batch, old.plan, new_plan, call, switch, drained, kind == RESPAWN,
            "" if decision is None else decision.reason, 0.0 if decision is None else decision.gain_ms,
            0.0 if decision is None else decision.cost_ms, kind=kind, pause_ms=self.switch.pause_ms(kind)))
        if self.dispatcher.is_alive and self.dispatcher is not env.active_process:
            self.dispatcher.interrupt("switch")
        if switch > env.now:
            yield env.timeout(switch - env.now)  # the switch is in progress until then

    def _in_place(self, old: _Group, new_plan: Plan, epoch: int, kind: str) -> tuple[_Group, float, float]:
        """A re-route or a retarget at ``env.now``: (new group, switch ms, drained ms).

        Routing moves to the new epoch now; its first batch can start at the switch. A
        re-route switches ``reroute_ms`` after the call, the old epoch's in-flight batch
        finishing on the same workers meanwhile. A retarget holds routing while that batch
        drains, then the workers retarget for ``retarget_ms`` (the switch) and the first
        batch on the new configuration runs ``first_batch_factor`` times slower."""
        call = self.env.now
        drained = max(call, old.free_ms)
        switch = (call if kind == REROUTE else drained) + self.switch.pause_ms(kind)
        new = _Group(epoch, new_plan, self.sampler(new_plan), call, call)
        new.free_ms = max(switch, drained)
        if kind == RETARGET:
            new.first_factor = self.switch.first_batch_factor
        old.stop_ms = drained
        self.groups = [h for h in self.groups if h is not old] + [new]
        self.current = new
        return new, switch, drained

    def _respawn(self, old: _Group, new_plan: Plan, epoch: int):
        """Process: a respawn, costed by the :class:`~packrat_sim.policy.SwitchModel`:
        ``start_ms`` of start-up (one busy core per new instance) beside the serving old
        instances, then the warm-up iterations on the shared cores; at its end routing
        switches (``env.now``) and the old instances drain. Returns (new group, drained ms)."""
        env = self.env
        sw = self.switch
        new = _Group(epoch, new_plan, self.sampler(new_plan), env.now + sw.start_ms, math.inf, launch_ms=env.now)
        new.free_ms = math.inf
        self.groups.append(new)
        if sw.start_ms > 0:
            yield env.timeout(sw.start_ms)
        other, factor = self._shared(new, env.now)
        warm_each = []
        for inst in new_plan.instances:
            base, _ = self.model.cell(inst.threads, inst.batch)
            f = float(np.max(factor(np.array([inst.threads]))))
            warm_each.append(base * self.model.slowdown(new.threads - inst.threads + other, inst.threads) * f)
            self.busy_core_ms += self.config.warmup_iterations * base * inst.threads
        warm = self.config.warmup_iterations * max(warm_each)
        if warm > 0:
            yield env.timeout(warm)
        new.ready_ms = env.now
        new.free_ms = env.now
        drained = max(env.now, old.free_ms)
        old.stop_ms = drained
        self.current = new
        return new, drained

    # ---- run
    def run(self) -> None:
        self.env = simpy.Environment()
        plan = self.plans[0]
        first = _Group(0, plan, self.sampler(plan), 0.0, 0.0)
        self.current = first
        self.groups = [first]
        self.dispatch_done = False
        self.next_index = 0
        if isinstance(self.workload, CLOSED_LOOPS):
            self.fifo = collections.deque()
            self.wakeup = None
            self.in_flight = 0
            self.closed_remaining = self.workload.requests if isinstance(self.workload, Closed) else 0
            self.clients_left = self.workload.clients
            self.closed_next_id = 0
            self.dispatcher = self.env.process(self._dispatch_closed())
            client = self._client if isinstance(self.workload, Closed) else self._stepped_client
            for _ in range(self.workload.clients):
                self.env.process(client())
        else:
            if self.arrivals is None:  # not reached: simulate() draws the arrivals of an open loop
                raise SimulationError("an open-loop run without arrival times (internal error)")
            self.arr_list = self.arrivals.tolist()
            self.dispatcher = self.env.process(self._dispatch_open())
            if self.table is not None and self.catalog is None:
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
        arrival = call[batch_of] if isinstance(self.workload, CLOSED_LOOPS) else self.arrivals
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


def _draw_arrivals(workload: Workload, seed: int) -> np.ndarray | None:
    """Open-loop arrival times of ``seed`` (stream ``[seed, 0]``); None for a closed loop."""
    if isinstance(workload, CLOSED_LOOPS):
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
    profile: Profile, cores: int, workload: Workload, policy: Policy, config: SimConfig,
    arrivals_ms: np.ndarray | None = None,
):
    """(name, initial plan, plan table or None, estimator config or None, feasible batches,
    policy catalog or None, policy config or None)."""
    B = workload.max_batch
    static: tuple[None, None, list[int], None, None] = (None, None, [], None, None)
    if isinstance(policy, Plan):
        if policy.cores > cores:
            raise SimulationError(f"the plan uses {policy.cores} cores but only {cores} are simulated")
        return ("plan", _predicted(profile, policy)) + static
    if policy == "fat":
        return ("fat", _predicted(profile, fat(B, cores))) + static
    if policy == "thin":
        return ("thin", _predicted(profile, thin(B, cores))) + static
    if policy not in ALL_POLICIES:
        raise SimulationError(f"unknown policy {policy!r}; choose one of {', '.join(ALL_POLICIES)} or pass a Plan")
    if isinstance(workload, Closed) or (isinstance(workload, ClosedSteps) and policy != "packrat"):
        try:
            return (policy, optimize(profile, B, cores, config.optimizer)) + static
        except OptimizerError as exc:
            raise SimulationError(str(exc)) from None
    if policy == "packrat":
        closed = isinstance(workload, ClosedSteps)
        try:
            base = config.policy or pol.parse_overrides(pol.load_overrides((), closed=closed))
            pcfg = replace(base, max_batch=B)
            catalog = pol.PlanCatalog(profile, cores, B, config.optimizer, error=SimulationError)
        except pol.PolicyError as exc:
            raise SimulationError(str(exc)) from None
        if isinstance(workload, ClosedSteps):
            n1 = workload.steps[0].batch
        else:
            b = workload.batching
            n1 = pol.first_batch_size(arrivals_ms, b.max_batch, b.max_delay_ms) if arrivals_ms is not None else B
        first = catalog.plans[pol.first_plan(catalog, n1, pcfg.first_slack)]
        check_plan_cells(profile, first)
        return "packrat", first, catalog.table, None, [], catalog, pcfg
    try:
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
    return "packrat-ewma", table.plan(cores, initial), table, ecfg, feasible, None, None


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

    ``policy``: ``"packrat"`` (the online policy of :mod:`packrat_sim.policy`),
    ``"packrat-ewma"`` (the paper's queue-depth estimator, :mod:`packrat_sim.estimator`),
    ``"fat"``, ``"thin"`` (static baselines for the workload's max batch) or a :class:`Plan`
    (static). On a closed loop of a request count (:class:`~packrat_sim.workload.Closed`) both
    packrat policies run the optimizer's plan for the batch; on a stepped closed loop
    (:class:`~packrat_sim.workload.ClosedSteps`) ``packrat`` adapts as on open loops (its
    ``capacity_floor`` defaults to 0 there: :func:`~packrat_sim.policy.load_overrides`) and
    ``packrat-ewma`` runs the optimizer's plan for the largest batch.
    ``arrivals_ms``: open-loop arrival times to use instead of drawing them (sorted ms;
    :func:`compare_plans` passes the same ones to every policy). Deterministic for a seed.
    Raises SimulationError / WorkloadError naming the bad value.
    """
    cores = validate.positive_int(cores, "cores", error=SimulationError, numpy=True)
    seed = validate.nonnegative_int(seed, "seed", error=SimulationError, numpy=True)
    config = config or SimConfig()
    wl = load_workload(workload)
    limits.require(limits.dp_table_bytes(cores, wl.max_batch),
                   f"simulating max_batch={wl.max_batch} on {cores} cores (the plan table)", error=SimulationError)
    if arrivals_ms is None:
        arrivals_ms = _draw_arrivals(wl, seed)
    if arrivals_ms is not None:
        arrivals_ms = np.asarray(arrivals_ms, dtype=float)
        if arrivals_ms.size == 0:
            raise SimulationError(f"the workload {wl.to_spec()} produced no requests (seed {seed})")
        if np.any(np.diff(arrivals_ms) < 0) or arrivals_ms[0] < 0 or not np.all(np.isfinite(arrivals_ms)):
            raise SimulationError("arrival times must be finite, >= 0 and sorted")
    name, plan, table, ecfg, feasible, catalog, pcfg = _policy_setup(profile, cores, wl, policy, config, arrivals_ms)
    run = _Run(profile, cores, wl, plan, table, ecfg, config, arrivals_ms, np.random.default_rng([seed, 1]), feasible,
               catalog, pcfg)
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
        closed_loop=isinstance(wl, CLOSED_LOOPS),
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
        decisions=tuple(run.decisions),
        catalog_plans=() if catalog is None else tuple(catalog.plans),
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
    cores = validate.positive_int(cores, "cores", error=SimulationError, numpy=True)
    seed = validate.nonnegative_int(seed, "seed", error=SimulationError, numpy=True)
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
