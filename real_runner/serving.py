"""Online serving on real cores: a dispatcher over :class:`InstancePool`, the batch-size
estimator, DESIGN.md's reconfiguration protocol, fault recovery and the history log.

':class:`ServingRuntime` serves batches of a catalog model with one :class:`InstancePool`
whose warm workers every epoch reuses. Epoch e serves with plan P_e;
:meth:`ServingRuntime.reconfigure` switches by the cheapest kind that suffices
(:func:`packrat_sim.switching.switch_kind` with the pool's warm standby): **re-route**
(same thread counts: new rows per worker, no process changes), **retarget** (live workers
change their thread count and CPUs in place; unneeded ones park; extra ones come from the
warm standby) or **respawn** (new processes, only when live plus standby workers are too
few). DESIGN.md's protocol holds for every kind:

1. prepare P' (epoch e+1) beside the serving configuration: its cores and workers, and for
   a respawn the new processes, started and warmed up while epoch e keeps serving (the
   oversubscription, old threads + new threads - cores, is recorded);
2. since workers are shared between epochs, close the routing gate (batches submitted now
   wait) and let epoch e finish the batch it holds (a worker is never changed while it
   holds old-epoch work);
3. apply P' (retarget and park messages, answered by each worker with its thread count and
   the CPUs of its threads: the new configuration is ready), then switch routing to e+1 in
   one step and open the gate; ``reconfigure`` returns.

A respawn whose new process fails to start (worker error, start-up timeout) or a plan that
does not fit aborts the reconfiguration: routing never moved, the old epoch keeps serving,
and the record says ``"ok": false`` with the error. An aborted reconfigure never took
effect, so it is left out of the history (as Jepsen's ``:fail``). A worker that dies during
step 3 is replaced (a parked worker retargeted into its place, else a new process) before
routing switches: no batch runs meanwhile, so nothing is lost.

Each switch is recorded with its ``kind``, ``priced_ms`` (the policy decision's price of that
kind; for a manual reconfigure, ``pricer``'s, else None) and ``measured_ms``: from the
decision to the first batch served by the new configuration, not counting the batch epoch e
still held (a dispatcher that serves one batch at a time waits for it whatever the switch)
nor idle time before that first batch arrived (:meth:`ReconfigRecord.measured_ms`).

Dispatching: one dispatcher thread takes batches in submission order. A plan has a fixed
batch size (its B); a batch of S inputs runs as ceil(S / B) consecutive runs of the
same pool (the last one padded), so all of its sub-batches run in one epoch.

Faults (decision: **whole-batch retry on a fresh configuration of the same plan and
epoch**): when a worker dies or fails mid-batch (``WorkerError``), the dispatcher replaces
it (:meth:`InstancePool.recover`: a parked worker retargeted into its place, else a new
process with the same threads and CPUs) and re-runs the whole batch. The batch is answered
once, with ``"attempts": n`` in its output; the replacement keeps the epoch number (same
plan, and routing chose this epoch at dispatch). After ``max_attempts`` failures the batch
is answered with an error (the client sees it; its history operation stays pending, i.e.
"may or may not have happened"), never dropped.

History: every answered infer is an :class:`~checker.history.Operation` with the client id,
call/return in ``time.monotonic_ns()``, input ``{"op": "infer", "batch": id, "size": S}``
and output ``{"epoch": e, "digest": sha256(outputs)[:16], "attempts": n}``; every
successful reconfigure is ``{"op": "reconfigure", "plan": plan-json} -> {"epoch": e'}`` by
client ``"reconfigurer"``. The memory this takes does not grow with the run: each batch
answered (or failed) is written to a spool on disk as it is logged (an unlinked temporary file,
:class:`~real_runner.serving_log.RowSpool`), only the batches in flight and the reconfigures
stay in memory, and :meth:`ServingRuntime.history`, :attr:`ServingRuntime.batches` and
:func:`summarize` read the spool back (the history, whole, in memory: for after a run).

Load (:func:`serve_load`): a :class:`LoadSpec` is either closed loop (``"B:duration,..."``:
each of ``clients`` clients submits a batch of B inputs, waits for the answer, and submits
the next, for each step of the schedule) or open loop (any ``packrat_sim.workload`` spec
with arrivals, e.g. ``poisson:rate=200/s,duration=10s``: single requests arrive on their
own, a batcher takes everything queued, up to ``max_batch``, as one batch when the
previous batch was answered). The estimator observes the queue depth every
``interval_ms``: the number of requests the dispatcher found waiting when it last took a
batch (closed loop: the batch size B; open loop: the aggregated batch).
"""

from __future__ import annotations

import array
import contextlib
import hashlib
import itertools
import math
import queue
import signal
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from checker.history import History, Operation
from packrat_sim import policy as pol
from packrat_sim import validate
from packrat_sim.errors import PackratError
from packrat_sim.estimator import EstimatorConfig, initial_state, pow2_floor
from packrat_sim.estimator import step as estimator_step
from packrat_sim.plan import Plan
from packrat_sim.switching import REROUTE, RESPAWN, RETARGET, switch_kind
from real_runner import topology as topo_mod
from real_runner.executor import InstancePool, SwitchReport, WorkerError, default_standby
from real_runner.models import get_spec, make_inputs
from real_runner.serving_log import RecentWindow, RowSpool

RECONFIGURER = "reconfigurer"
#: Batches taken that :attr:`ServingRuntime.formed` keeps (the policy reads them every few ms).
FORMED_KEPT = 4096


class ServingError(RuntimeError):
    """A batch could not be answered (every attempt failed) or the runtime is closed."""


class LoadError(PackratError):
    """A load spec (or a batch submitted to the runtime) is invalid; the message names the bad part."""


class ServingInterrupted(KeyboardInterrupt):
    """Serving a load was interrupted: Ctrl-C, or a signal the caller turned into a
    ``KeyboardInterrupt`` with a ``signum`` attribute (``real_runner.load`` does so for
    SIGTERM). The runtime is closed; ``report`` is :func:`serve_load`'s report of what was
    served until then, its ``history`` holding the operations still in flight as pending
    (:meth:`ServingRuntime.history` with ``pending``); ``signum``: the signal."""

    def __init__(self, signum: int, report: dict) -> None:
        super().__init__(f"serving interrupted by {signal_name(signum)}")
        self.signum = signum
        self.report = report


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


# ------------------------------------------------------------------------ records


@dataclass
class BatchRecord:
    id: int
    client: Hashable
    size: int
    call_ns: int
    ret_ns: int | None = None
    epoch: int | None = None
    attempts: int = 0
    digest: str | None = None
    error: str | None = None

    @property
    def latency_ms(self) -> float | None:
        return None if self.ret_ns is None else (self.ret_ns - self.call_ns) / 1e6

    def row(self) -> list:
        """The record as one row of JSON scalars (:meth:`from_row` gives it back)."""
        return [self.id, self.client, self.size, self.call_ns, self.ret_ns, self.epoch, self.attempts,
                self.digest, self.error]

    @classmethod
    def from_row(cls, row: list) -> BatchRecord:
        """The record of a :meth:`row`."""
        return cls(*row)

    def operation(self, *, pending: bool = False) -> Operation:
        """The batch's infer operation in the ``serving`` history: answered, it returns its
        epoch, digest and attempts; failed (or, with ``pending``, not logged yet) it is pending."""
        inp = {"op": "infer", "batch": self.id, "size": self.size}
        if pending or self.error is not None or self.ret_ns is None:
            return Operation(self.client, inp, None, self.call_ns, None)
        return Operation(self.client, inp, {"epoch": self.epoch, "digest": self.digest, "attempts": self.attempts},
                         self.call_ns, self.ret_ns)


@dataclass(frozen=True)
class BatchColumns:
    """Every batch a runtime was given, one entry per batch in each column (numpy arrays):
    ``id``, ``size``, ``call_ns``, ``ret_ns`` (-1: not answered), ``attempts`` and ``failed``
    (given up with an error after ``attempts``). What the reports read, at 41 bytes a batch."""

    id: np.ndarray
    size: np.ndarray
    call_ns: np.ndarray
    ret_ns: np.ndarray
    attempts: np.ndarray
    failed: np.ndarray

    @property
    def answered(self) -> np.ndarray:
        """Mask of the batches answered (successfully)."""
        return self.ret_ns >= 0

    @property
    def latency_ms(self) -> np.ndarray:
        """Call to return (ms) of every batch (meaningless where not :attr:`answered`)."""
        return (self.ret_ns - self.call_ns) / 1e6

    @classmethod
    def from_rows(cls, rows: Iterable[list], n: int) -> BatchColumns:
        """The columns of at most ``n`` :meth:`BatchRecord.row` rows."""
        ints = np.empty((n, 5), dtype=np.int64)
        failed = np.zeros(n, dtype=bool)
        k = 0
        for k, r in enumerate(itertools.islice(rows, n), 1):
            ints[k - 1] = (r[0], r[2], r[3], -1 if r[4] is None else r[4], r[6])
            failed[k - 1] = r[8] is not None
        ids, sizes, calls, rets, attempts = ints[:k].T.copy()
        return cls(ids, sizes, calls, rets, attempts, failed[:k])


@dataclass
class ReconfigRecord:
    """One reconfiguration (times in ``time.monotonic_ns()``): called at ``call_ns`` (decided
    at ``decided_ns``, default the call), prepared at ``ready_ns``, the old epoch's batch
    drained at ``drained_ns``, applied at ``committed_ns`` (= ``closed_ns``: the old
    configuration's cores released), routing switched at ``switch_ns``; the first batch of
    the new epoch (its call, start and end). ``kind``: the switch executed;
    ``priced_ms``/``priced_kind``: what the policy (or ``pricer``) priced; ``priced_pause_ms``:
    the part of that price the switch's own pause makes (what ``measured_ms`` measures; the
    rest is the first new batch's modelled slowdown); ``report``: what the
    pool did (:class:`~real_runner.executor.SwitchReport`)."""

    from_epoch: int
    to_epoch: int | None
    from_plan: Plan
    to_plan: Plan
    call_ns: int
    ready_ns: int | None = None
    switch_ns: int | None = None
    drained_ns: int | None = None
    closed_ns: int | None = None
    ok: bool = False
    error: str | None = None
    trigger: str = "manual"
    oversubscribed_threads: int = 0
    kind: str = RESPAWN
    priced_ms: float | None = None
    priced_kind: str | None = None
    priced_pause_ms: float | None = None
    decided_ns: int | None = None
    committed_ns: int | None = None
    first_call_ns: int | None = None
    first_start_ns: int | None = None
    first_done_ns: int | None = None
    first_batch: int | None = None
    report: SwitchReport | None = None

    @property
    def measured_ms(self) -> float | None:
        """Decision to the first batch served by the new configuration (ms; None until it
        switched): decision -> switch, less the wait for the batch the old epoch still held
        (ready -> drained), plus the dispatcher's lag from the switch (or that batch's later
        arrival: idle time is not the switch's) to starting it."""
        if self.switch_ns is None:
            return None
        drain = 0 if self.ready_ns is None or self.drained_ns is None else self.drained_ns - self.ready_ns
        lag = 0
        if self.first_start_ns is not None and self.first_call_ns is not None:
            lag = max(0, self.first_start_ns - max(self.switch_ns, self.first_call_ns))
        return (self.switch_ns - (self.decided_ns or self.call_ns) - drain + lag) / 1e6

    def switch_json(self) -> dict:
        """The switch's own figures (ms): kind, priced and measured cost, the raw decision ->
        first new batch (drain and idle included), the in-place part, the first new batch's
        run time, and what the pool did (pids retargeted, parked, spawned, recovered)."""
        def dur(a, b):
            return None if a is None or b is None else (b - a) / 1e6

        report = {} if self.report is None else self.report.to_json()
        return {
            "kind": self.kind, "priced_ms": self.priced_ms, "measured_ms": self.measured_ms,
            "priced_kind": self.priced_kind, "priced_pause_ms": self.priced_pause_ms,
            "decision_to_first_batch_ms": dur(self.decided_ns or self.call_ns, self.first_start_ns),
            "commit_ms": report.get("commit_ms"), "first_batch_ms": dur(self.first_start_ns, self.first_done_ns),
            **{k: report.get(k, []) for k in ("retargeted", "parked", "unparked", "spawned", "recovered")},
        }

    def to_json(self, t0_ns: int) -> dict:
        def rel(ns):
            return None if ns is None else (ns - t0_ns) / 1e9

        def dur(a, b):
            return None if a is None or b is None else (b - a) / 1e6

        return {
            "ok": self.ok, "error": self.error, "trigger": self.trigger,
            "from_epoch": self.from_epoch, "to_epoch": self.to_epoch,
            "from_plan": self.from_plan.describe(), "to_plan": self.to_plan.describe(),
            "from_batch": self.from_plan.batch, "to_batch": self.to_plan.batch,
            "at_s": rel(self.call_ns), "switch_at_s": rel(self.switch_ns), "drained_at_s": rel(self.drained_ns),
            "start_to_ready_ms": dur(self.call_ns, self.ready_ns),
            "reconfigure_ms": dur(self.call_ns, self.switch_ns),
            "drain_ms": dur(self.ready_ns, self.drained_ns),
            "close_ms": dur(self.drained_ns, self.closed_ns),
            "overlap_ms": dur(self.call_ns, self.closed_ns or self.drained_ns),
            "oversubscribed_threads": self.oversubscribed_threads,
            **self.switch_json(),
        }


@dataclass
class _Epoch:
    number: int
    plan: Plan
    inflight: int = 0
    record: ReconfigRecord | None = None  # the switch that made it (None: epoch 0)


def _digest(out) -> str:
    return hashlib.sha256(out.contiguous().numpy().tobytes()).hexdigest()[:16]


# ------------------------------------------------------------------------ runtime


class ServingRuntime:
    """Serve ``model`` with ``plan`` (epoch 0), reconfigure online, log the history.

    ``start()`` starts the pool (the plan's workers and ``standby`` parked ones; default
    :func:`~real_runner.executor.default_standby` on this topology's CPUs) and the
    dispatcher; ``infer(size, client)`` blocks until the batch is answered and returns its
    output dict; ``reconfigure(plan)`` runs the protocol and returns the new epoch
    (``WorkerError`` / ``TopologyError`` when it aborted: the old epoch keeps serving).
    ``close()`` drains and stops everything. ``max_batch``: the largest plan batch expected
    (the shared buffers are sized for it). ``pricer(kind, old plan, new plan)``: the price
    (ms) of a manual reconfigure. ``dispatch_hook(epoch, pool, batch_id, attempt)`` runs
    right before a batch runs and ``switch_hook(pool, switch)`` right after a switch's
    messages are sent (tests kill workers there).
    """

    def __init__(self, model: str, plan: Plan, *, topology: topo_mod.Topology | None = None,
                 seed: int = 0, warmup: int = 1, start_timeout: float = 300.0, max_attempts: int = 3,
                 dispatch_hook: Callable | None = None, standby: int | None = None, max_batch: int | None = None,
                 retarget_warmup: int = 0, switch_hook: Callable | None = None,
                 pricer: Callable[[str, Plan, Plan], float | None] | None = None) -> None:
        get_spec(model)
        self.model = model
        self.topology = topology or topo_mod.detect()
        self.seed, self.warmup, self.start_timeout, self.max_attempts = seed, warmup, start_timeout, max_attempts
        self.dispatch_hook, self.switch_hook, self.pricer = dispatch_hook, switch_hook, pricer
        self.standby_target = default_standby(self.topology.logical, plan) if standby is None else standby
        self.max_batch, self.retarget_warmup = max_batch, retarget_warmup
        self._initial_plan = plan
        self._route = threading.Lock()
        self._drained = threading.Condition(self._route)  # in-flight counts and the routing gate
        self._gated = False  # a switch is being applied: dispatching waits
        self._reconf_lock = threading.Lock()
        self._log_lock = threading.Lock()
        self._workers_lock = threading.Lock()  # a switch being prepared vs a fault's replacement
        self._current: _Epoch | None = None
        self._pool: InstancePool | None = None
        self._queue: queue.Queue = queue.Queue()
        self._next_id = 0
        # the history, in memory that does not grow with the run: each batch answered (or
        # failed) is a row of the spool, a batch in flight a record here until then, and each
        # reconfigure that took effect an operation with the number of batches logged before it
        self._spool = RowSpool()
        self._inflight: dict[int, BatchRecord] = {}
        self._reconf_ops: list[tuple[int, Operation]] = []
        self.reconfigurations: list[ReconfigRecord] = []
        self.faults: list[dict] = []
        self._thread: threading.Thread | None = None
        self._closed = False
        self.t0_ns = time.monotonic_ns()
        self.last_depth = plan.batch
        self.backlog = 0  # requests a load generator still holds after forming the last batch
        # (ms since t0, batch size, backlog) per batch taken: the last FORMED_KEPT, indexed from the first
        self.formed = RecentWindow(FORMED_KEPT)

    # ---- lifecycle
    def start(self) -> ServingRuntime:
        plan = self._initial_plan
        self._pool = InstancePool(
            self.model, plan, topology=self.topology, allow_oversubscribe=True, seed=self.seed, warmup=self.warmup,
            start_timeout=self.start_timeout, capacity=max(plan.batch, self.max_batch or plan.batch),
            standby=self.standby_target, retarget_warmup=self.retarget_warmup,
        ).start()
        self._current = _Epoch(0, plan)
        self.t0_ns = time.monotonic_ns()
        self._thread = threading.Thread(target=self._dispatch_loop, name="packrat-dispatcher", daemon=True)
        self._thread.start()
        return self

    def __enter__(self) -> ServingRuntime:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called (serving is over or ending)."""
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join()
        if self._pool is not None:
            self._pool.close()

    def _started(self) -> _Epoch:
        """The current epoch; ServingError before :meth:`start`."""
        if self._current is None:
            raise ServingError("the runtime is not started")
        return self._current

    @property
    def pool(self) -> InstancePool:
        """The pool every epoch serves with (ServingError before :meth:`start`)."""
        self._started()
        assert self._pool is not None
        return self._pool

    @property
    def epoch(self) -> int:
        return self._started().number

    @property
    def plan(self) -> Plan:
        return self._started().plan

    @property
    def pids(self) -> list[int]:
        """Worker pids of the current epoch's instances (plan order)."""
        return self.pool.pids

    @property
    def standby(self) -> int:
        """Warm workers parked now (what a switch may take beyond the live ones)."""
        return self.pool.standby

    # ---- client side
    def submit(self, size: int, client: Hashable = 0) -> tuple[BatchRecord, threading.Event]:
        if self._closed:
            raise ServingError("the runtime is closed")
        validate.positive_int(size, "batch size", error=LoadError)
        if not (validate.is_integer(client) or isinstance(client, str)):
            raise LoadError(f"client must be an integer or a string, not {client!r}")
        done = threading.Event()
        with self._log_lock:
            rec = BatchRecord(self._next_id, client, size, time.monotonic_ns())
            self._next_id += 1
            self._inflight[rec.id] = rec
        self._queue.put((rec, done))
        return rec, done

    def infer(self, size: int, client: Hashable = 0) -> dict:
        """Submit a batch of ``size`` inputs and wait for its answer (ServingError if it failed)."""
        rec, done = self.submit(size, client)
        done.wait()
        if rec.error is not None:
            raise ServingError(f"batch {rec.id} failed after {rec.attempts} attempt(s): {rec.error}")
        return {"epoch": rec.epoch, "digest": rec.digest, "attempts": rec.attempts}

    # ---- dispatcher
    def _dispatch_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            rec, done = item
            try:
                self._serve(rec)
            except BaseException as exc:  # never lose a batch silently
                rec.error = rec.error or f"{type(exc).__name__}: {exc}"
            if rec.error is None:  # failed: the operation stays pending (no return)
                rec.ret_ns = time.monotonic_ns()
            with self._log_lock:
                self._spool.append(rec.row())
                del self._inflight[rec.id]
            done.set()

    def _enter(self, rec: BatchRecord) -> _Epoch:
        """The routing decision for batch ``rec``: one epoch for the whole batch, taken once
        the gate is open (a switch being applied holds new batches back); marks the new
        epoch's first batch."""
        with self._route:
            while self._gated:
                self._drained.wait()
            ep = self._started()
            ep.inflight += 1
            sw = ep.record
            if sw is not None and sw.first_batch is None:
                sw.first_batch, sw.first_call_ns, sw.first_start_ns = rec.id, rec.call_ns, time.monotonic_ns()
        return ep

    def _serve(self, rec: BatchRecord) -> None:
        self.last_depth = rec.size
        self.formed.append(((time.monotonic_ns() - self.t0_ns) / 1e6, rec.size,
                            self.backlog + sum(item[0].size for item in list(self._queue.queue) if item is not None)))
        ep = self._enter(rec)
        try:
            inputs = make_inputs(self.model, rec.size, self.seed + 1000 + rec.id)
            while True:
                rec.attempts += 1
                pool = self.pool
                try:
                    if self.dispatch_hook is not None:
                        self.dispatch_hook(ep.number, pool, rec.id, rec.attempts)
                    out = self._run_chunks(pool, inputs, ep.plan.batch)
                    rec.epoch, rec.digest = ep.number, _digest(out)
                    if ep.record is not None and ep.record.first_batch == rec.id:
                        ep.record.first_done_ns = time.monotonic_ns()
                    return
                except WorkerError as exc:
                    if not self._replace_after(rec, ep, pool, exc):
                        return
        finally:
            with self._route:
                ep.inflight -= 1
                self._drained.notify_all()

    def _replace_after(self, rec: BatchRecord, ep: _Epoch, pool: InstancePool, exc: WorkerError) -> bool:
        """Batch ``rec`` failed with ``exc``: record the fault and replace the failed workers
        (same plan, same epoch). True to retry the whole batch; False (``rec.error`` set)
        after ``max_attempts`` or when no replacement could start."""
        fault = {"batch": rec.id, "epoch": ep.number, "attempt": rec.attempts, "error": str(exc),
                 "at_s": (time.monotonic_ns() - self.t0_ns) / 1e9}
        self.faults.append(fault)
        if rec.attempts >= self.max_attempts:
            rec.error = str(exc)
            return False
        t = time.monotonic_ns()
        try:
            with self._workers_lock:
                fault["replacements"] = pool.recover()
        except Exception as exc2:  # noqa: BLE001
            rec.error = f"replacement worker failed to start: {exc2}"
            return False
        fault["replacement_ms"] = (time.monotonic_ns() - t) / 1e6
        return True

    @staticmethod
    def _run_chunks(pool: InstancePool, inputs, B: int):
        import torch

        S = inputs.shape[0]
        outs = []
        for a in range(0, S, B):
            chunk = inputs[a:a + B]
            n = chunk.shape[0]
            if n < B:
                pad = torch.zeros((B - n, *chunk.shape[1:]), dtype=chunk.dtype)
                chunk = torch.cat([chunk, pad])
            out, _ = pool.run(chunk)
            outs.append(out[:n])
        return torch.cat(outs)

    # ---- reconfiguration (DESIGN.md protocol, every kind of switch)
    def reconfigure(self, plan: Plan, *, trigger: str = "manual", start_timeout: float | None = None,
                    priced_ms: float | None = None, priced_kind: str | None = None,
                    decided_ns: int | None = None, priced_pause_ms: float | None = None) -> int:
        """Move to ``plan`` (epoch e+1) without stopping service, by the cheapest kind of
        switch (see the module docstring); returns the new epoch. ``priced_ms`` and
        ``priced_kind``: what the deciding policy priced (default: ``pricer``'s price of the
        kind, else None); ``priced_pause_ms``: the pause part of that price; ``decided_ns``: when it decided (``time.monotonic_ns()``, default
        now). When preparing fails (a new process does not start within ``start_timeout``
        s, a plan that does not fit) the reconfiguration is aborted (the old epoch keeps
        serving) and the error is re-raised."""
        with self._reconf_lock:
            old = self._started()
            pool = self.pool
            rec = ReconfigRecord(old.number, None, old.plan, plan, time.monotonic_ns(), trigger=trigger,
                                 kind=pool.kind_of(plan), priced_kind=priced_kind, decided_ns=decided_ns,
                                 priced_pause_ms=priced_pause_ms)
            rec.priced_ms = priced_ms if priced_ms is not None else self._price(rec.kind, old.plan, plan)
            self.reconfigurations.append(rec)
            try:  # 1. prepare beside the serving configuration (a respawn starts its processes here)
                with self._workers_lock:
                    prepared = pool.prepare(plan, timeout=start_timeout)
            except Exception as exc:
                rec.error = f"{type(exc).__name__}: {exc}"
                rec.drained_ns = time.monotonic_ns()
                raise
            rec.ready_ns = time.monotonic_ns()
            spawned = sum(prepared.plan.instances[j].threads for j, w in enumerate(prepared.assign)
                          if w in prepared.spawned)
            rec.oversubscribed_threads = max(0, old.plan.threads_used + spawned - self.topology.logical)
            self._hold(old)  # 2. gate closed, the old epoch's batch drained
            rec.drained_ns = time.monotonic_ns()
            try:  # 3. apply, then switch routing in one step
                rec.report = pool.commit(prepared, self.switch_hook)
            except WorkerError as exc:  # no replacement could start: the batch fault rule retries later
                rec.error = f"WorkerError: {exc}"
                self.faults.append({"switch_to_epoch": old.number + 1, "error": str(exc),
                                    "at_s": (time.monotonic_ns() - self.t0_ns) / 1e9})
            except BaseException as exc:
                self._abort_commit(old, plan, rec, exc)
                raise
            rec.committed_ns = rec.closed_ns = time.monotonic_ns()
            new = self._switch(old, plan, rec)
            self._note_recovered(rec)
        return new.number

    def _abort_commit(self, old: _Epoch, plan: Plan, rec: ReconfigRecord, exc: BaseException) -> None:
        """Any other failure while applying: when the pool already runs ``plan``, routing
        follows it (the new configuration serves); otherwise routing never moved, the gate
        reopens on the old epoch (run messages name their rows, so the old plan still
        computes correctly on workers a partial switch touched) and the record says why."""
        rec.error = f"{type(exc).__name__}: {exc}"
        rec.committed_ns = rec.closed_ns = time.monotonic_ns()
        if self.pool.plan == plan:
            self._switch(old, plan, rec)
        else:
            self._reopen()

    def _price(self, kind: str, old: Plan, new: Plan) -> float | None:
        """``pricer``'s price (ms) of a switch of ``kind`` old -> new; None without one."""
        if self.pricer is None:
            return None
        price = self.pricer(kind, old, new)
        return None if price is None else float(price)

    def _hold(self, old: _Epoch) -> None:
        """Close the routing gate (no new batch is dispatched) and wait until epoch ``old``
        holds no batch: its workers may then change. Interrupted, the gate reopens."""
        with self._route:
            self._gated = True
            try:
                while old.inflight:
                    self._drained.wait()
            except BaseException:
                self._gated = False
                self._drained.notify_all()
                raise

    def _reopen(self) -> None:
        """Open the routing gate on the current epoch (a switch that did not happen)."""
        with self._route:
            self._gated = False
            self._drained.notify_all()

    def _switch(self, old: _Epoch, plan: Plan, rec: ReconfigRecord) -> _Epoch:
        """Route to epoch old + 1 in one step, open the gate, log the reconfigure operation."""
        new = _Epoch(old.number + 1, plan, record=rec)
        with self._route:
            self._current = new
            self._gated = False
            rec.switch_ns = time.monotonic_ns()
            self._drained.notify_all()
        rec.to_epoch, rec.ok = new.number, True
        with self._log_lock:
            self._reconf_ops.append((len(self._spool), Operation(
                RECONFIGURER, {"op": "reconfigure", "plan": plan.to_json()}, {"epoch": new.number},
                rec.call_ns, rec.switch_ns)))
        return new

    def _note_recovered(self, rec: ReconfigRecord) -> None:
        """A worker replaced during the switch is a fault too (with its replacement)."""
        for r in () if rec.report is None else rec.report.recovered:
            self.faults.append({"switch_to_epoch": rec.to_epoch, "error": f"worker {r['pid']} died during a {rec.kind}",
                                "replacements": [r], "replacement_ms": r["ms"],
                                "at_s": ((rec.drained_ns or rec.call_ns) - self.t0_ns) / 1e9})

    # ---- history
    def history(self, *, pending: bool = False) -> History:
        """The ``serving`` history of every answered (or failed: pending) batch and every
        reconfigure that took effect. With ``pending`` (a run cut short), also each batch
        submitted but never answered and each reconfigure that neither took effect nor
        failed, as pending operations: they may or may not have happened."""
        with self._log_lock:
            logged, reconf, inflight = len(self._spool), list(self._reconf_ops), list(self._inflight.values())
            waiting = [r for r in self.reconfigurations if not r.ok and r.error is None] if pending else []
        ops = self._logged_operations(logged, reconf)
        if pending:
            ops += [b.operation(pending=True) for b in inflight]
            ops += [Operation(RECONFIGURER, {"op": "reconfigure", "plan": r.to_plan.to_json()}, None, r.call_ns, None)
                    for r in waiting]
        ops.sort(key=lambda o: (o.call, math.inf if o.ret is None else o.ret))
        return History(ops, model="serving")

    def _logged_operations(self, logged: int, reconf: list[tuple[int, Operation]]) -> list[Operation]:
        """The operations of the first ``logged`` batches of the spool and the reconfigures
        ``reconf`` (each after the number of batches logged before it), in logging order."""
        rows = self._spool.rows(logged)
        ops: list[Operation] = []
        n = 0
        for before, op in reconf:
            ops.extend(BatchRecord.from_row(r).operation() for r in itertools.islice(rows, before - n))
            n = before
            ops.append(op)
        ops.extend(BatchRecord.from_row(r).operation() for r in rows)
        return ops

    @property
    def batches(self) -> list[BatchRecord]:
        """Every batch submitted, in submission order: those answered or failed read back from
        the spool (copies), those in flight as they are now. Reads the whole spool: a report's
        figures come from :meth:`columns` instead."""
        with self._log_lock:
            logged, inflight = len(self._spool), list(self._inflight.values())
        recs = [BatchRecord.from_row(r) for r in self._spool.rows(logged)] + inflight
        recs.sort(key=lambda b: b.id)
        return recs

    def columns(self) -> BatchColumns:
        """:class:`BatchColumns` of every batch submitted (read back from the spool)."""
        with self._log_lock:
            logged, inflight = len(self._spool), [b.row() for b in self._inflight.values()]
        return BatchColumns.from_rows(itertools.chain(self._spool.rows(logged), inflight), logged + len(inflight))


# --------------------------------------------------------------------------- load


@dataclass(frozen=True)
class LoadSpec:
    """``kind`` "closed": ``steps`` of (batch size, seconds), ``clients`` clients each, and,
    for a closed loop of a request count, ``requests`` (its one step lasts until they were
    submitted: seconds ``inf``); ``kind`` "open": a ``packrat_sim.workload`` open-loop
    workload (``workload``)."""

    kind: str
    steps: tuple[tuple[int, float], ...] = ()
    clients: int = 1
    workload: Any = None  # a packrat_sim.workload open-loop workload (kind "open")
    think_s: float = 0.0  # closed loop: pause of a client between an answer and its next batch
    requests: int | None = None  # closed loop of a request count: how many, in all clients

    @property
    def duration_s(self) -> float:
        """Seconds the load lasts (``inf`` for a closed loop of a request count)."""
        if self.kind == "closed":
            return sum(d for _, d in self.steps)
        return float(getattr(self.workload, "duration_s", 0.0))

    @property
    def max_batch(self) -> int:
        if self.kind == "closed":
            return max(b for b, _ in self.steps)
        return int(self.workload.max_batch)


def parse_load(spec: str, clients: int | None = None, think_s: float | None = None) -> LoadSpec:
    """A load in the one workload grammar of :mod:`packrat_sim.workload` (the grammar of
    ``packrat simulate``, with the same meaning): a closed loop, spelled with batch sizes
    (``closed:8@20s,32@20s``: batches of 8 for 20 s, then of 32; ``closed:batch=8,requests=1000``:
    until 1000 requests were submitted, the last batch smaller if need be), or an open loop,
    spelled with rates (``poisson:rate=200/s,duration=10s``, ``steps:50/s@5s,400/s@5s``).
    ``clients`` and ``think_s``, when given, replace the spec's. The old closed-loop form
    ``8:20s,32:20s`` still reads, with a
    :class:`~packrat_sim.workload.WorkloadDeprecation` warning. LoadError naming the bad part."""
    from packrat_sim.workload import Closed, ClosedSteps, WorkloadError, parse_workload

    try:
        wl = parse_workload(spec)
    except WorkloadError as exc:
        raise LoadError(f"load {spec!r}: {exc}") from None
    if not isinstance(wl, (Closed, ClosedSteps)):
        return LoadSpec("open", workload=wl)
    n = wl.clients if clients is None else clients
    pause = wl.think_ms / 1000.0 if think_s is None else think_s
    if isinstance(wl, Closed):
        return LoadSpec("closed", ((wl.batch, math.inf),), clients=n, think_s=pause, requests=wl.requests)
    return LoadSpec("closed", tuple((s.batch, s.duration_s) for s in wl.steps), clients=n, think_s=pause)


class _Budget:
    """The requests a closed loop of a request count may still submit, shared by its client
    threads; unlimited (``None``) for a closed loop of steps."""

    def __init__(self, requests: int | None) -> None:
        self.left = requests
        self._lock = threading.Lock()

    def take(self, batch: int) -> int:
        """Up to ``batch`` requests (all of them when unlimited); 0 once the budget is spent."""
        if self.left is None:
            return batch
        with self._lock:
            n = min(batch, self.left)
            self.left -= n
            return n


def _closed_client(rt: ServingRuntime, client: int, steps, t0: float, stop: threading.Event,
                   think_s: float = 0.0, budget: _Budget | None = None) -> None:
    """One closed-loop client: step by step, submit a batch of the step's size, wait for its
    answer, think ``think_s``; until the steps' time is up or the shared ``budget`` is spent."""
    ends = np.cumsum([d for _, d in steps])
    budget = budget or _Budget(None)
    for (b, _), end in zip(steps, ends):
        while not stop.is_set() and time.monotonic() - t0 < end:
            n = budget.take(b)
            if n == 0:
                return
            try:
                rt.infer(n, client)
            except ServingError:
                return  # the failure is recorded; a pending op must be this client's last
            if think_s:
                time.sleep(think_s)


MAX_IDLE_S = 1.0  # open loop: an idle gap longer than this is skipped (the clock jumps)


def _open_loop(rt: ServingRuntime, load: LoadSpec, t0: float, stop: threading.Event, seed: int,
               request_latencies: array.array, skipped: list | None = None) -> None:
    """Replay the open-loop arrivals in real time. Idle time costs nothing: when nothing
    is in flight (the batch before was answered) and the next arrival is more than
    ``MAX_IDLE_S`` away, the schedule is shifted so that it arrives now (the skipped
    seconds are appended to ``skipped``); a trace with a gap of 1e300 ms runs at once."""
    from packrat_sim.workload import arrival_times_ms

    arrivals = arrival_times_ms(load.workload, np.random.default_rng(seed)) / 1000.0
    max_batch = load.workload.batching.max_batch
    i = 0
    n = len(arrivals)
    shift = 0.0  # seconds skipped so far
    while i < n and not stop.is_set():
        now = time.monotonic() - t0 + shift
        if arrivals[i] > now:
            gap = arrivals[i] - now
            if gap > MAX_IDLE_S:
                shift += gap
                if skipped is not None:
                    skipped.append(gap)
                continue
            time.sleep(min(gap, 0.05))
            continue
        j = i
        while j < n and arrivals[j] <= now and j - i < max_batch:
            j += 1
        k = j
        while k < n and arrivals[k] <= now and k - j < max_batch:
            k += 1
        rt.backlog = k - j  # still waiting after this batch (counted up to one more batch)
        try:
            rt.infer(j - i, 0)
        except ServingError:
            return
        done = time.monotonic() - t0 + shift
        request_latencies.extend((done - arrivals[i:j]) * 1000.0)  # 8 bytes a request: memory stays flat
        i = j


def serve_load(model: str, load: LoadSpec, planner: Callable[[int], Plan], *,
               estimator: EstimatorConfig | None = None, initial_batch: int | None = None,
               topology: topo_mod.Topology | None = None, seed: int = 0, warmup: int = 1,
               window_s: float = 3.0, runtime_hook: Callable | None = None,
               catalog: pol.PlanCatalog | None = None, policy: pol.PolicyConfig | None = None,
               switch: pol.SwitchModel | None = None, static: Plan | None = None, cores: int | None = None,
               standby: int | None = None) -> dict:
    """Serve ``load`` with online reconfiguration; returns a report (see :func:`summarize`)
    with ``"history"`` (a :class:`History`) and ``"runtime"`` (the closed runtime).

    With ``catalog`` (a :class:`~packrat_sim.policy.PlanCatalog` of the profile): the
    ``packrat`` policy of :mod:`packrat_sim.policy`, the same rule the simulator runs. It
    starts with the plan for the first batch the load forms, observes every batch taken
    (size and backlog) and decides at most every ``policy.decide_every_ms``, only when
    batches were formed since its last look (idle time costs nothing).

    Without it: the paper's estimator (``packrat-ewma``): ``planner(batch) -> Plan`` gives
    the plan for a batch size, the estimator is evaluated every ``estimator.interval_ms``
    on the last observed queue depth, and a reconfiguration runs only when its decision
    differs and the planned plan is a different plan. ``runtime_hook(runtime)`` runs
    once the runtime is up (faults).

    With ``static``: that plan serves the whole load, never reconfigured (the baseline
    that adaptive serving is compared with), with no standby.

    Switches reuse warm workers (re-route, retarget; respawn only when too few): ``standby``
    parked workers start beside the first plan (default
    :func:`~real_runner.executor.default_standby` for ``cores``, default the catalog's cores,
    else every CPU of ``topology``); the shared buffers hold ``load.max_batch`` rows."""
    if static is not None:
        return _serve_static(model, load, static, topology=topology, seed=seed, warmup=warmup, window_s=window_s)
    if catalog is not None:
        return _serve_with_policy(model, load, catalog, policy or pol.PolicyConfig(max_batch=load.max_batch),
                                  switch or pol.SwitchModel(), topology=topology, seed=seed, warmup=warmup,
                                  window_s=window_s, runtime_hook=runtime_hook,
                                  standby=standby, cores=cores or catalog.cores)
    first = load.steps[0][0] if load.kind == "closed" else 1
    cfg = estimator or EstimatorConfig(alpha=0.5, window=4, interval_ms=250.0, max_batch=load.max_batch)
    b0 = initial_batch or min(max(pow2_floor(first), cfg.lower), cfg.upper)
    plan0 = planner(b0)
    rt = ServingRuntime(model, plan0, topology=topology, seed=seed, warmup=warmup, max_batch=load.max_batch,
                        standby=_standby(standby, cores, plan0))
    errors: list = []

    def control(alive: Callable[[], bool]) -> None:
        state = initial_state(cfg, b0)
        while alive():
            time.sleep(cfg.interval_ms / 1000.0)
            state, decision = estimator_step(cfg, state, rt.last_depth)
            if decision.reconfigure:
                new_plan = planner(decision.batch)
                if new_plan == rt.plan:
                    continue
                if not _reconfigure(rt, new_plan, f"estimator: batch {decision.batch}", errors):
                    state = replace(state, current=rt.plan.batch)

    return _drive(rt, load, seed=seed, window_s=window_s, runtime_hook=runtime_hook, control=control,
                  policy="packrat-ewma",
                  estimator={"alpha": cfg.alpha, "window": cfg.window, "interval_ms": cfg.interval_ms},
                  reconfigure_errors=errors)


def _drive(rt: ServingRuntime, load: LoadSpec, *, seed: int, window_s: float, runtime_hook: Callable | None = None,
           control: Callable[[Callable[[], bool]], None] | None = None, **fields) -> dict:
    """Start ``rt``, run ``load`` through it and close it; the report of :func:`serve_load`.

    ``runtime_hook(rt)`` runs once the runtime is up; ``control(alive)`` steers while the
    load runs (``alive()``: a load thread still runs). The report is :func:`summarize`'s
    with ``request_latency_ms``, then ``fields`` (the policy's own keys, in order), then
    ``idle_skipped_s``, ``history`` and ``runtime``.

    Interrupted (``KeyboardInterrupt``, or a subclass with a ``signum`` such as the one
    ``real_runner.load`` raises on SIGTERM) while the load runs: the runtime is closed (the
    batches already queued are answered), then :class:`ServingInterrupted` carries the
    report of what was served, its history with the operations in flight pending."""
    rt.start()
    stop = threading.Event()
    req_lat = array.array("d")  # open loop: every request's latency (ms), compact
    skipped: list = []
    interrupted: KeyboardInterrupt | None = None
    try:
        if runtime_hook is not None:
            runtime_hook(rt)
        t0 = time.monotonic()
        if load.kind == "closed":
            budget = _Budget(load.requests)
            threads = [threading.Thread(target=_closed_client, args=(rt, c, load.steps, t0, stop, load.think_s, budget),
                                        daemon=True) for c in range(load.clients)]
        else:
            threads = [threading.Thread(target=_open_loop, args=(rt, load, t0, stop, seed, req_lat, skipped),
                                        daemon=True)]
        for t in threads:
            t.start()
        if control is not None:
            control(lambda: any(t.is_alive() for t in threads))
        for t in threads:
            t.join()
    except KeyboardInterrupt as exc:
        interrupted = exc
    finally:
        stop.set()
        rt.close()
    cols = rt.columns()  # the spool read back once, for the summary and the request latencies
    report = summarize(rt, window_s=window_s, cols=cols)
    report["request_latency_ms"] = _stats(req_lat) if req_lat else _request_stats(cols)
    report.update(fields)
    report["idle_skipped_s"] = float(sum(skipped))
    report["history"] = rt.history(pending=interrupted is not None)
    report["runtime"] = rt
    if interrupted is not None:
        raise ServingInterrupted(getattr(interrupted, "signum", signal.SIGINT), report) from interrupted
    return report


def _reconfigure(rt: ServingRuntime, plan: Plan, trigger: str, errors: list, **priced: Any) -> bool:
    """``rt.reconfigure`` (``priced``: its ``priced_ms``, ``priced_kind``, ``priced_pause_ms``, ``decided_ns``);
    False (the error appended to ``errors``) when it aborted: the old epoch keeps serving."""
    try:
        rt.reconfigure(plan, trigger=trigger, **priced)
    except Exception as exc:  # aborted: the old epoch keeps serving
        errors.append(str(exc))
        return False
    return True


def first_formed_batch(load: LoadSpec, seed: int = 0) -> int:
    """Size of the first batch ``load`` forms: the closed loop's first B, or the open
    loop's arrivals within ``max_delay`` of the first (same draw as :func:`serve_load`)."""
    if load.kind == "closed":
        return load.steps[0][0]
    from packrat_sim.workload import arrival_times_ms

    b = load.workload.batching
    arrivals = arrival_times_ms(load.workload, np.random.default_rng(seed))
    return pol.first_batch_size(arrivals, b.max_batch, b.max_delay_ms)


def _serve_static(model: str, load: LoadSpec, plan: Plan, *, topology, seed: int, warmup: int,
                  window_s: float) -> dict:
    """:func:`serve_load` with one plan for the whole load (see there)."""
    rt = ServingRuntime(model, plan, topology=topology, seed=seed, warmup=warmup, standby=0)
    return _drive(rt, load, seed=seed, window_s=window_s,
                  policy="static", initial_plan=plan.describe(), reconfigure_errors=[])


def _standby(standby: int | None, cores: int | None, plan: Plan) -> int | None:
    """The standby to start beside ``plan``: ``standby``, else the default for ``cores``
    (None: the runtime's default, every CPU of its topology)."""
    if standby is not None or cores is None:
        return standby
    return default_standby(cores, plan)


def catalog_pricer(catalog: pol.PlanCatalog, switch: pol.SwitchModel) -> Callable[[str, Plan, Plan], float | None]:
    """A ``pricer`` for :class:`ServingRuntime`: ``switch``'s price of a switch of a given
    kind old -> new on the catalog's cores (:meth:`SwitchModel.price_ms`), the new plan's
    batch taking its expected latency in the catalog; None for a plan not in the catalog."""
    def price(kind: str, old: Plan, new: Plan) -> float | None:
        i = catalog.index(new)
        if i is None:
            return None
        return switch.price_ms(kind, old, new, catalog.cores, catalog.cost(i, new.batch))

    return price


def _serve_with_policy(model: str, load: LoadSpec, catalog: pol.PlanCatalog, cfg: pol.PolicyConfig,
                       switch: pol.SwitchModel, *, topology, seed: int, warmup: int, window_s: float,
                       runtime_hook: Callable | None, standby: int | None = None, cores: int | None = None) -> dict:
    """:func:`serve_load` with the ``packrat`` policy (see there)."""
    cfg = replace(cfg, max_batch=min(cfg.max_batch, catalog.max_batch))
    start = pol.first_plan(catalog, first_formed_batch(load, seed), cfg.first_slack)
    plan0 = catalog.plans[start]
    rt = ServingRuntime(model, plan0, topology=topology, seed=seed, warmup=warmup,
                        max_batch=max(load.max_batch, max(p.batch for p in catalog.plans)),
                        standby=_standby(standby, cores, plan0), pricer=catalog_pricer(catalog, switch))
    errors: list = []
    decisions: list[dict] = []

    def control(alive: Callable[[], bool]) -> None:
        state = pol.initial_state(start)
        seen = 0
        while alive():
            time.sleep(max(cfg.decide_every_ms, 10.0) / 1000.0)
            formed = rt.formed[seen:]
            if not formed:
                continue  # nothing changed: no decision (idle costs nothing)
            seen += len(formed)
            state = pol.observe_many(cfg, state, [(t_ms, min(size, cfg.max_batch)) for t_ms, size, _ in formed],
                                     formed[-1][2])  # as the simulator observes: only the last backlog counts
            # the policy prices the kind the runner performs, as its switches cost so far, with the
            # warm standby there is now
            learned = learn_switch_costs(switch, rt.reconfigurations)
            state, d = pol.decide(cfg, catalog, state, formed[-1][0], replace(learned, standby=rt.standby))
            if d is None or not d.reconfigure:
                continue
            decided = time.monotonic_ns()
            decisions.append(d.to_json(catalog))
            pause = None if d.kind is None else learned.pause_ms(d.kind)
            if not _reconfigure(rt, catalog.plans[d.plan], f"policy: {d.reason}", errors, priced_ms=d.cost_ms,
                                priced_kind=d.kind, decided_ns=decided, priced_pause_ms=pause):
                idx = catalog.index(rt.plan)
                state = replace(state, current=start if idx is None else idx)
            state = pol.switched(state)

    report = _drive(rt, load, seed=seed, window_s=window_s, runtime_hook=runtime_hook, control=control,
                    policy="packrat", policy_config={k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
                    initial_plan=plan0.describe(), decisions=decisions, reconfigure_errors=errors)
    final = learn_switch_costs(switch, rt.reconfigurations)
    report["switch_prices_ms"] = {"re-route": final.reroute_ms, "retarget": final.retarget_ms,
                                  "learned_from": sum(1 for r in rt.reconfigurations if _measured(r))}
    return report


def _measured(rec: ReconfigRecord) -> bool:
    """Whether ``rec`` took effect and its first new batch has started (its cost is known)."""
    return rec.ok and rec.first_start_ns is not None and rec.measured_ms is not None


def learn_switch_costs(model: pol.SwitchModel, records: list[ReconfigRecord]) -> pol.SwitchModel:
    """``model`` with its re-route and retarget prices learned from the switches of
    ``records`` whose cost is known (:func:`_measured`; :meth:`~packrat_sim.policy.SwitchModel.learned`:
    the median of the latest of each kind); a kind never measured keeps ``model``'s price.
    Pure (reads the records)."""
    for kind in (REROUTE, RETARGET):
        model = model.learned(kind, [r.measured_ms for r in records
                                     if _measured(r) and r.kind == kind and r.measured_ms is not None])
    return model


def _stats(xs) -> dict | None:
    if not len(xs):
        return None
    a = np.frombuffer(xs, dtype=float) if isinstance(xs, array.array) else np.asarray(xs, dtype=float)
    return {"n": int(a.size), "median_ms": float(np.median(a)), "p90_ms": float(np.percentile(a, 90)),
            "p99_ms": float(np.percentile(a, 99)), "max_ms": float(a.max())}


def _request_stats(cols: BatchColumns) -> dict | None:
    """Request latency of a closed loop (ms) from the batches' columns: every request of a
    batch waits for its whole batch, so each answered batch counts once per input."""
    done = cols.answered
    if not done.any():
        return None
    return _stats(np.repeat(cols.latency_ms[done], cols.size[done]))


#: Seconds after a switch's decision whose batches make its window, and then the seconds of
#: steady state it is compared with (cut at the next switch's decision).
SWITCH_WINDOW_S = 1.0
STEADY_S = 4.0


def _switch_windows(recs: list[ReconfigRecord], ret_ns: np.ndarray, ms: np.ndarray, t0_ns: int) -> list[dict]:
    """One object per switch that took effect: :meth:`ReconfigRecord.switch_json` with when
    and what (``at_s``, plans, epochs, trigger), the batch latency of the batches answered in
    the ``SWITCH_WINDOW_S`` after its decision (``latency_window``) and in the ``STEADY_S``
    after that, before the next decision (``latency_steady``), and ``p99_ratio`` of the two.
    ``ret_ns``, ``ms``: when each answered batch returned and its latency."""
    ok = [r for r in recs if r.ok]
    starts = [r.decided_ns or r.call_ns for r in ok]
    out = []
    for k, r in enumerate(ok):
        t = starts[k]
        w_end = t + int(SWITCH_WINDOW_S * 1e9)
        s_end = min(w_end + int(STEADY_S * 1e9), starts[k + 1] if k + 1 < len(ok) else math.inf)
        window = _stats(ms[(t <= ret_ns) & (ret_ns < w_end)])
        steady = _stats(ms[(w_end <= ret_ns) & (ret_ns < s_end)])
        ratio = None if not window or not steady else window["p99_ms"] / steady["p99_ms"]
        out.append({**r.switch_json(), "at_s": (r.call_ns - t0_ns) / 1e9, "trigger": r.trigger,
                    "from_plan": r.from_plan.describe(), "to_plan": r.to_plan.describe(),
                    "from_epoch": r.from_epoch, "to_epoch": r.to_epoch,
                    "latency_window": window, "latency_steady": steady, "p99_ratio": ratio})
    return out


def summarize(rt: ServingRuntime, window_s: float = 3.0, cols: BatchColumns | None = None) -> dict:
    """Counts (batches sent / answered / failed / answered twice, the last from the history),
    faults, every reconfiguration with batch latency before (``window_s`` before its call),
    during (answered between call and switch) and after (``window_s`` after the switch),
    and every switch that took effect (:func:`_switch_windows`). ``cols``: the runtime's
    :meth:`~ServingRuntime.columns` when the caller has read them already (the spool is read
    back once)."""
    cols = rt.columns() if cols is None else cols
    done = cols.answered
    ret_ns, ms = cols.ret_ns[done], cols.latency_ms[done]
    w = int(window_s * 1e9)
    recs = []
    for r in rt.reconfigurations:
        j = r.to_json(rt.t0_ns)
        end = r.switch_ns or r.drained_ns or r.call_ns
        j["latency_before"] = _stats(ms[(r.call_ns - w <= ret_ns) & (ret_ns < r.call_ns)])
        j["latency_during"] = _stats(ms[(r.call_ns <= ret_ns) & (ret_ns <= end)])
        j["latency_after"] = _stats(ms[(end < ret_ns) & (ret_ns <= end + w)])
        recs.append(j)
    answers = cols.id[done]
    return {
        "model": rt.model,
        "batches_sent": int(cols.id.size),
        "batches_answered": int(done.sum()),
        "batches_failed": int(cols.failed.sum()),
        "answered_twice": int(answers.size - np.unique(answers).size),
        "requests_sent": int(cols.size.sum()),
        "requests_answered": int(cols.size[done].sum()),
        "batch_latency_ms": _stats(ms),
        "epochs": 1 + sum(1 for r in rt.reconfigurations if r.ok),
        "final_plan": rt.plan.describe(),
        "reconfigurations": recs,
        "switches": _switch_windows(rt.reconfigurations, ret_ns, ms, rt.t0_ns),
        "faults": list(rt.faults),
        "retried_batches": int((cols.attempts[done] > 1).sum()),
    }


def churn(model: str, plans: list[Plan], *, reconfigurations: int = 20, kills: int = 5, clients: int = 2,
          sizes: tuple[int, ...] = (1, 3, 8, 13), seed: int = 0, warmup: int = 1,
          on_progress: Callable[[str], None] | None = None) -> dict:
    """Stress the protocol: ``clients`` closed-loop clients submit batches (sizes cycling
    through ``sizes``) while the runtime reconfigures ``reconfigurations`` times, cycling
    through ``plans``, and ``kills`` workers are SIGKILLed mid-batch (spread over the run).
    Returns :func:`summarize`'s report plus the serving-model verdict of the history."""
    import os
    import signal

    from checker import check

    say = on_progress or (lambda m: None)
    armed = threading.Event()

    def hook(epoch, pool, batch_id, attempt):
        if armed.is_set() and attempt == 1:
            armed.clear()
            threading.Timer(0.005, lambda: _kill(pool)).start()

    def _kill(pool):
        with contextlib.suppress(ProcessLookupError, IndexError):
            os.kill(pool.pids[0], signal.SIGKILL)

    stop = threading.Event()

    def client(c: int) -> None:
        k = c
        while not stop.is_set():
            try:
                rt.infer(sizes[k % len(sizes)], c)
            except ServingError:
                return
            k += 1

    rt = ServingRuntime(model, plans[0], seed=seed, warmup=warmup, dispatch_hook=hook).start()
    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(clients)]
    try:
        for t in threads:
            t.start()
        every = max(1, reconfigurations // max(1, kills)) if kills else 0
        done_kills = 0
        for i in range(reconfigurations):
            if kills and done_kills < kills and i % every == 0:
                before = len(rt.faults)
                armed.set()
                deadline = time.monotonic() + 60
                while len(rt.faults) == before and time.monotonic() < deadline:
                    time.sleep(0.01)
                done_kills += len(rt.faults) > before
                say(f"kill {done_kills}: {rt.faults[-1]['error'] if rt.faults else '-'}")
            e = rt.reconfigure(plans[(i + 1) % len(plans)], trigger="churn")
            say(f"reconfiguration {i + 1}: epoch {e}, {rt.plan.describe()}")
            time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join(120)
        rt.close()
    report = summarize(rt)
    history = rt.history()
    report["kills_requested"] = kills
    report["verdict"] = check(history, "serving", timeout=120).result.value
    report["history"] = history
    return report


def _keep_submitting(rt: ServingRuntime, size: int, client: int, stop: threading.Event) -> None:
    """A closed-loop client: batches of ``size``, back to back, until ``stop`` (or the runtime closes)."""
    while not stop.is_set():
        try:
            rt.infer(size, client)
        except ServingError:
            return


def _run_switches(rt: ServingRuntime, plans: list[Plan], *, size: int, clients: int, settle_s: float) -> list[dict]:
    """Start ``rt``, keep ``clients`` closed-loop clients submitting batches of ``size``, and
    switch to each plan of ``plans`` in turn, ``settle_s`` apart (after a first ``settle_s``);
    close it. The memory of its workers, read once the clients stopped (see
    :meth:`InstancePool.worker_memory`: reading ``smaps_rollup`` walks a worker's address
    space under its memory lock, which would slow the batch it runs)."""
    stop = threading.Event()
    memory: list[dict] = []
    rt.start()
    threads = [threading.Thread(target=_keep_submitting, args=(rt, size, c, stop), daemon=True) for c in range(clients)]
    try:
        for t in threads:
            t.start()
        time.sleep(settle_s)
        for plan in plans:
            rt.reconfigure(plan, trigger="measure", decided_ns=time.monotonic_ns())
            time.sleep(settle_s)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
        if rt._pool is not None and rt._pool.started:
            memory = rt.pool.worker_memory()
        rt.close()
    return memory


def _epoch_spans(rt: ServingRuntime) -> list[tuple[Plan, int, int]]:
    """(plan, first ns, end ns) of every epoch of ``rt``: from its switch (the start for
    epoch 0) to the next decision (the last one: forever)."""
    ok = [r for r in rt.reconfigurations if r.ok]
    starts = [rt.t0_ns] + [r.switch_ns or r.call_ns for r in ok]
    ends = [r.decided_ns or r.call_ns for r in ok] + [2 ** 62]
    plans = [rt._initial_plan] + [r.to_plan for r in ok]
    return list(zip(plans, starts, ends))


def _switch_samples(rt: ServingRuntime, settle_ns: int) -> tuple[list[dict], dict[str, list[float]]]:
    """Per switch of ``rt``: its figures and (plan, latency ms) of every batch answered from
    its decision to the end of the first new batch; and the steady batch latencies per plan
    (batches of an epoch answered from ``settle_ns`` after its switch to the next decision)."""
    done = [(b.epoch, b.call_ns, b.ret_ns) for b in rt.batches if b.ret_ns is not None and b.epoch is not None]
    spans = _epoch_spans(rt)
    steady: dict[str, list[float]] = {}
    for e, (plan, start, end) in enumerate(spans):
        steady.setdefault(plan.describe(), []).extend(
            (ret - call) / 1e6 for ep, call, ret in done if ep == e and start + settle_ns <= ret < end)
    out = []
    for r in (r for r in rt.reconfigurations if r.ok):
        t, until = r.decided_ns or r.call_ns, r.first_done_ns or r.switch_ns or r.call_ns
        meanwhile = [(spans[ep][0].describe(), (ret - call) / 1e6) for ep, call, ret in done if t <= ret <= until]
        out.append({**r.switch_json(), "from_plan": r.from_plan.describe(), "to_plan": r.to_plan.describe(),
                    "meanwhile": meanwhile})
    return out, steady


def _median(xs) -> float | None:
    xs = [x for x in xs if x is not None]
    return float(np.median(xs)) if xs else None


def _direction_summary(switches: list[dict], steady_ms: dict[str, float | None]) -> dict:
    """Medians over the switches of one direction (ms): kind(s) executed, priced, measured,
    raw decision -> first new batch, in-place part, first new batch; and the slowdown of the
    batches served meanwhile against their plan's steady median (median of each switch's
    worst, and the worst of all)."""
    worst = []
    for s in switches:
        ratios = [ms / steady_ms[p] for p, ms in s["meanwhile"] if steady_ms.get(p)]
        worst.append(max(ratios) if ratios else None)
    return {
        "kinds": sorted({s["kind"] for s in switches}), "n": len(switches),
        **{k: _median(s[k] for s in switches)
           for k in ("priced_ms", "measured_ms", "decision_to_first_batch_ms", "commit_ms", "first_batch_ms")},
        "max_slowdown": _median(worst), "worst_slowdown": max((w for w in worst if w is not None), default=None),
    }


def measure_switch_cost(model: str, old_plan: Plan, new_plan: Plan, *, standby: int | None = None, repeats: int = 5,
                        settle_s: float = 1.0, clients: int = 1, topology: topo_mod.Topology | None = None,
                        seed: int = 0, retarget_warmup: int = 0, pricer: Callable | None = None,
                        on_progress: Callable[[str], None] | None = None) -> dict:
    """What a switch old -> new costs on this machine, measured through the serving runtime.

    A :class:`ServingRuntime` serves ``old_plan`` (``standby`` warm workers, default
    :func:`~real_runner.executor.default_standby` on the topology's CPUs) to ``clients``
    closed-loop clients submitting back-to-back batches of max(old batch, new batch), and
    switches old -> new -> old ... every ``settle_s`` seconds, ``repeats`` times each way. A
    respawn (the warm workers cannot serve ``new_plan``) needs fresh processes each time: one
    runtime per repeat, old -> new once. Per direction (:func:`_direction_summary`): the kind
    executed, ``measured_ms`` (decision -> first batch served by the new configuration, see
    :meth:`ReconfigRecord.measured_ms`), the raw decision -> first new batch, the in-place
    part, and the slowdown of the batches served meanwhile against their plan's steady state;
    ``steady_ms`` (median) and ``steady_p99_ms`` per plan (the noise floor a slowdown is read
    against); ``memory``: medians of RSS and PSS (KiB) per warm worker, parked
    ones apart. Wall-clock: run on a quiet machine."""
    topo = topology or topo_mod.detect()
    say = on_progress or (lambda m: None)
    size = max(old_plan.batch, new_plan.batch)
    standby_n = default_standby(topo.logical, old_plan) if standby is None else standby
    respawn = switch_kind(old_plan, new_plan, standby_n) == RESPAWN
    rounds = [[new_plan]] * repeats if respawn else [[new_plan, old_plan] * repeats]
    switches: list[dict] = []
    steady: dict[str, list[float]] = {}
    memory: list[dict] = []
    for k, plans in enumerate(rounds):
        rt = ServingRuntime(model, old_plan, topology=topo, seed=seed, warmup=1, standby=standby_n, max_batch=size,
                            retarget_warmup=retarget_warmup, pricer=pricer)
        memory.extend(_run_switches(rt, plans, size=size, clients=clients, settle_s=settle_s))
        got, st = _switch_samples(rt, int(min(0.3, settle_s / 3) * 1e9))
        switches.extend(got)
        for p, xs in st.items():
            steady.setdefault(p, []).extend(xs)
        say(f"{old_plan.describe()} <-> {new_plan.describe()}: round {k + 1}/{len(rounds)}, "
            + ", ".join(f"{s['kind']} {s['measured_ms']:.1f} ms" for s in got))
    steady_ms = {p: _median(xs) for p, xs in steady.items()}
    steady_p99 = {p: float(np.percentile(xs, 99)) if xs else None for p, xs in steady.items()}
    ways = {"old->new": [s for s in switches if s["to_plan"] == new_plan.describe()],
            "new->old": [] if respawn else [s for s in switches if s["to_plan"] == old_plan.describe()]}
    return {
        "model": model, "old_plan": old_plan.describe(), "new_plan": new_plan.describe(), "cores": topo.logical,
        "standby": standby_n, "repeats": repeats, "batch": size, "steady_ms": steady_ms, "steady_p99_ms": steady_p99,
        "directions": {w: _direction_summary(ss, steady_ms) for w, ss in ways.items() if ss},
        "memory": {"rss_kb": _median(m["rss_kb"] for m in memory), "pss_kb": _median(m["pss_kb"] for m in memory),
                   "parked_rss_kb": _median(m["rss_kb"] for m in memory if m["parked"]),
                   "parked_pss_kb": _median(m["pss_kb"] for m in memory if m["parked"])},
    }


__all__ = [
    "RECONFIGURER",
    "BatchColumns",
    "BatchRecord",
    "LoadError",
    "LoadSpec",
    "ReconfigRecord",
    "ServingError",
    "ServingRuntime",
    "catalog_pricer",
    "churn",
    "first_formed_batch",
    "measure_switch_cost",
    "parse_load",
    "serve_load",
    "summarize",
]
