"""Run a plan on real cores: a pool of worker processes, one per plan instance.

:class:`InstancePool` starts one ``spawn`` worker per instance of a plan. Each worker
pins itself to its CPUs, sets ``torch.set_num_threads(t)``, builds the model once (same
seed, hence the same weights, in every worker) and warms it up on its sub-batch.

Data path (no large tensor is ever pickled): the pool owns one shared-memory input
tensor ``[B, *input_shape]`` and one shared-memory output tensor ``[B, ...]``, handed
to every worker once at start-up (torch shares their storage by file descriptor).
Instance ``j`` owns the rows ``[start_j, start_j + b_j)``: the dispatcher copies a batch
into the input buffer, sends each worker a few-byte ``("run", seq)`` message, the worker
runs the model on its rows and writes its output to the same rows of the output buffer,
so outputs come back in input order. Only control messages cross the pipes
(``InstancePool.control_bytes`` counts them).

Latency of a batch is end to end: from the copy of the inputs into shared memory to the
copy of the outputs out of it, after every worker has answered.

Switching plans in place (issue 28): a pool keeps its warm processes across plans. Each
``("run", seq, a, b)`` names the rows, so the split of a batch is the dispatcher's alone.
:meth:`InstancePool.prepare` + :meth:`InstancePool.commit` move the pool to another plan by
the kind :func:`packrat_sim.switching.switch_kind` gives: **re-route** (same thread counts:
new rows, no message, no process changes), **retarget** (a worker gets
``("retarget", seq, threads, cores, ...)``: every thread of it moves to the new CPUs, main
thread first so OpenMP threads started later inherit them, then ``torch.set_num_threads``,
which the next batch's parallel regions use (each batch's answer says
``torch.get_num_threads()``); it answers with that count and the CPU set of each of its
threads (``retarget_warmup`` > 0 adds warm-up inferences of one input first, so the OpenMP
team exists when it answers: measured, it costs ~1.5 ms and does not make the first batch
faster on tiny-cnn, hence off by default); workers the plan does
not need **park**: one thread, CPU set widened to the pool's, blocked on their pipe, so they
hold no core and burn no CPU time, ready to be retargeted; workers it needs beyond the live
ones come from that warm **standby**, ``standby`` of them started parked with the pool) and
**respawn** (new processes, started set to their instance while the old configuration
serves, only when live plus standby workers are too few). The shared buffers have
``capacity`` rows (a switch to a larger batch grows and re-shares them). A worker that dies
during a switch or a batch is replaced (:meth:`InstancePool.recover`): a parked worker
retargeted into its place, else a new process.

Shutdown: :meth:`InstancePool.close` (also on ``with`` exit, on an exception, on
KeyboardInterrupt, and at interpreter exit through a finalizer) asks every worker to
stop, then terminates and finally kills the ones that do not. Workers ignore SIGINT
(a terminal Ctrl-C reaches the whole process group; the parent shuts them down) and
exit by themselves when the parent dies (pipe closed, or parent pid changed).
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import time
import traceback
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import wait as wait_any
from typing import Any, Literal

import numpy as np

from packrat_sim import validate
from packrat_sim.engines.spawn import process_context, start_process
from packrat_sim.errors import PackratError
from packrat_sim.plan import Instance, Plan, PlanError
from packrat_sim.plan import fat as fat_plan
from packrat_sim.switching import REROUTE, RESPAWN, RETARGET, switch_kind
from real_runner import topology as topo_mod
from real_runner.models import ModelCatalogError, build_model, get_spec, make_inputs, require_batch_memory


class WorkerError(RuntimeError):
    """A worker process failed (exception in the model, crash, or start-up timeout)."""


class ExecutorError(PackratError):
    """Bad executor input (batch shape, plan vs model); names the value."""


#: The answers that carry the number of the request they answer.
_ANSWERS = ("done", "retargeted", "parked", "buffered")


# ------------------------------------------------------------------------- worker


def _send(conn, msg) -> int:
    data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
    conn.send_bytes(data)
    return len(data)


def _recv(conn):
    return pickle.loads(conn.recv_bytes())


class _Worker:
    """The worker process's side of a pool (runs in the spawned process): the model, the
    shared buffers and the message loop. Messages in (all a few bytes, except the buffers):

    * ``("run", seq, a, b)``: the model on input rows [a, b), written to the same output
      rows; answers ``("done", seq, t0_ns, t1_ns, threads)``, ``threads`` being
      ``torch.get_num_threads()`` for that batch;
    * ``("retarget", seq, threads, cores, rows, iterations)``: every thread moved to
      ``cores`` and ``threads`` intra-op threads (:func:`topology.retarget_process`), then
      ``iterations`` warm-up inferences of ``rows`` seeded inputs (own tensors, never the
      shared buffers), so that the OpenMP team has its new size before the next batch;
      answers ``("retargeted", seq, report, t0_ns, t1_ns)``;
    * ``("park", seq, cpus)``: one thread and every thread's CPU set widened to ``cpus``
      (the pool's): a parked worker is assigned no core; answers ``("parked", seq, report)``;
    * ``("buffers", seq, input, output)``: new shared buffers; answers ``("buffered", seq)``;
    * ``("stop",)``.

    ``report``: ``{"pid", "threads": torch.get_num_threads(), "cpus": {thread id: CPUs}}``
    read back after the change (``/proc/self/task/*/status``).
    """

    def __init__(self, conn, model: str, built, seed: int) -> None:
        self.conn, self.model, self.built, self.seed = conn, model, built, seed
        self.inp: Any = None  # the shared buffers (torch tensors)
        self.out: Any = None
        self._samples: dict[int, object] = {}

    def warm(self, rows: int, iterations: int):
        """``iterations`` inferences of ``rows`` seeded inputs (cached per size); the last output."""
        import torch

        x = self._samples.get(rows)
        if x is None:
            x = self._samples[rows] = make_inputs(self.model, rows, self.seed + 1)
        y = None
        with torch.inference_mode():
            for _ in range(iterations):
                y = self.built(x)
        return y

    @staticmethod
    def report() -> dict:
        import torch

        return {"pid": os.getpid(), "threads": torch.get_num_threads(),
                "cpus": {tid: list(c) for tid, c in topo_mod.thread_cpus().items()}}

    def handle(self, msg) -> bool:
        """Answer one message (see the class docstring); False on ``stop``."""
        kind = msg[0]
        if kind == "run":
            self._run(*msg[1:])
        elif kind == "retarget":
            _, seq, threads, cores, rows, iterations = msg
            t0 = time.perf_counter_ns()
            topo_mod.retarget_process(cores, threads)
            if iterations:
                self.warm(rows, iterations)
                topo_mod.pin_process(cores)  # (threads it started inherit the set; cheap to make sure)
            _send(self.conn, ("retargeted", seq, self.report(), t0, time.perf_counter_ns()))
        elif kind == "park":
            topo_mod.retarget_process(msg[2], 1)
            _send(self.conn, ("parked", msg[1], self.report()))
        elif kind == "buffers":
            self.inp, self.out = msg[2], msg[3]
            _send(self.conn, ("buffered", msg[1]))
        return kind != "stop"

    def _run(self, seq: int, a: int, b: int) -> None:
        import torch

        t0 = time.perf_counter_ns()
        with torch.inference_mode():
            self.out[a:b].copy_(self.built(self.inp[a:b]))
        t1 = time.perf_counter_ns()
        _send(self.conn, ("done", seq, t0, t1, torch.get_num_threads()))


def _pool_worker(conn, model: str, threads: int, cores: tuple[int, ...], rows: int, seed: int, jit: bool,
                 warmup: int) -> None:
    """Worker main (runs in the spawned process): pin, build the model, take the buffers
    (``("buffers", 0, input, output or None)``), warm up on ``rows`` inputs, say ready, then
    answer messages until ``stop`` or until the parent is gone."""
    try:
        topo_mod.start_worker(cores, threads)
        built = build_model(model, seed=seed, jit=jit)
        worker = _Worker(conn, model, built, seed)
        _, _, worker.inp, worker.out = conn.recv()
        y = worker.warm(rows, max(1, warmup))
        _send(conn, ("ready", tuple(y.shape[1:]), str(y.dtype).replace("torch.", ""), built.runtime,
                     topo_mod.thread_settings(), worker.report()))
        if worker.out is None:
            worker.out = conn.recv()[1]  # ("output", out): the first workers learn the shape for the pool
        while worker.handle(conn.recv()):
            pass
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        return
    except BaseException as exc:  # report, then exit
        with contextlib.suppress(Exception):
            _send(conn, ("error", f"{type(exc).__name__}: {exc}", traceback.format_exc()))


# --------------------------------------------------------------------------- pool


def _shutdown(procs: list, conns: list, timeout: float = 5.0) -> None:
    """Stop workers politely, then terminate, then kill; close pipes. Idempotent."""
    for c in conns:
        with contextlib.suppress(Exception):
            _send(c, ("stop",))
    deadline = time.monotonic() + timeout
    for p in procs:
        with contextlib.suppress(Exception):
            p.join(max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(2.0)
        if p.is_alive():
            p.kill()
            p.join(2.0)
    for c in conns:
        with contextlib.suppress(Exception):
            c.close()


@dataclass(frozen=True)
class Stats:
    """Summary of latency samples in ms."""

    samples_ms: tuple[float, ...]

    @property
    def median_ms(self) -> float:
        return float(np.median(self.samples_ms))

    @property
    def p90_ms(self) -> float:
        return float(np.percentile(self.samples_ms, 90))

    @property
    def min_ms(self) -> float:
        return float(min(self.samples_ms))

    @property
    def max_ms(self) -> float:
        return float(max(self.samples_ms))

    @property
    def mean_ms(self) -> float:
        return float(np.mean(self.samples_ms))

    def to_json(self) -> dict:
        return {
            "median_ms": self.median_ms, "p90_ms": self.p90_ms, "mean_ms": self.mean_ms,
            "min_ms": self.min_ms, "max_ms": self.max_ms, "samples_ms": list(self.samples_ms),
        }


# ------------------------------------------------------------------ switching


@dataclass(frozen=True)
class WorkerSlot:
    """What one worker process of a pool is set to: ``threads`` intra-op threads on the CPUs
    ``cores``. ``parked``: it serves no instance (warm standby: model built, blocked on its
    pipe, one thread, its CPU set widened to the whole pool's, so no core is its own)."""

    threads: int
    cores: tuple[int, ...]
    parked: bool = False


def assign_workers(slots: Sequence[WorkerSlot | None], live: Sequence[int],
                   targets: Sequence[tuple[int, tuple[int, ...] | None]]) -> tuple[tuple[int | None, ...], tuple[int, ...]]:
    """Which worker serves each target instance, and which live workers park. Pure.

    ``slots``: every worker of a pool by index (None: gone); ``live``: the workers serving
    now; ``targets``: ``(threads, cores)`` per new instance (cores None: the worker keeps its
    own). Each target takes, by preference: a live worker already set so; a live worker with
    its thread count; any other live worker; a parked worker; else None (a new process).
    The live workers left over park. Ties: the order of ``live``, then the lowest index."""
    free_live = list(live)
    parked = [i for i, s in enumerate(slots) if s is not None and s.parked and i not in live]
    out: list[int | None] = [None] * len(targets)
    rules = (
        (free_live, lambda s, t, c: s.threads == t and (c is None or s.cores == c)),
        (free_live, lambda s, t, c: s.threads == t),
        (free_live, lambda s, t, c: True),
        (parked, lambda s, t, c: True),
    )
    for candidates, fits in rules:
        for j, (t, c) in enumerate(targets):
            if out[j] is None:
                i = next((i for i in candidates if fits(slots[i], t, c)), None)
                if i is not None:
                    out[j] = i
                    candidates.remove(i)
    return tuple(out), tuple(free_live)


@dataclass(frozen=True)
class SwitchPlan:
    """A switch prepared by :meth:`InstancePool.prepare`, not yet applied. ``kind``: what
    :func:`packrat_sim.switching.switch_kind` says it is; ``plan`` with ``cores`` and
    ``rows`` ([start, stop) of the shared buffers) per instance, in plan order; ``assign``:
    the worker (index) of each instance; ``retarget``: workers to change in place (another
    thread count or CPU set, or taken from the standby); ``park``: live workers the plan
    does not need; ``spawned``: processes started for it (already warm)."""

    kind: str
    plan: Plan
    cores: tuple[tuple[int, ...], ...]
    rows: tuple[tuple[int, int], ...]
    assign: tuple[int, ...]
    retarget: tuple[int, ...] = ()
    park: tuple[int, ...] = ()
    spawned: tuple[int, ...] = ()

    @property
    def executed_kind(self) -> str:
        """The kind these moves are: respawn when a process was started for it, retarget
        when a worker changes in place or parks, else re-route (no process changes)."""
        if self.spawned:
            return RESPAWN
        return RETARGET if self.retarget or self.park else REROUTE


@dataclass(frozen=True)
class SwitchReport:
    """What :meth:`InstancePool.commit` did, by pid. ``kind``: the kind executed
    (:attr:`SwitchPlan.executed_kind`); ``pids``: the live workers afterwards (plan order);
    ``retargeted`` (changed in place, ``unparked`` ones included), ``parked``, ``spawned``;
    ``workers``: what each changed worker reported back (pid, threads, CPUs of every
    thread); ``recovered``: workers that died during the switch and what replaced them;
    ``commit_ms``: the in-place part, from the first message to the last answer (ms)."""

    kind: str
    pids: tuple[int, ...]
    retargeted: tuple[int, ...] = ()
    parked: tuple[int, ...] = ()
    unparked: tuple[int, ...] = ()
    spawned: tuple[int, ...] = ()
    workers: tuple[dict, ...] = ()
    recovered: tuple[dict, ...] = ()
    commit_ms: float = 0.0

    def to_json(self) -> dict:
        return {"kind": self.kind, "pids": list(self.pids), "retargeted": list(self.retargeted),
                "parked": list(self.parked), "unparked": list(self.unparked), "spawned": list(self.spawned),
                "recovered": [dict(r) for r in self.recovered], "commit_ms": self.commit_ms}


def _rows_of(plan: Plan) -> tuple[tuple[int, int], ...]:
    """[start, stop) of every instance's sub-batch in the shared buffers, plan order."""
    starts = np.cumsum([0] + [i.batch for i in plan.instances]).tolist()
    return tuple((int(a), int(b)) for a, b in zip(starts[:-1], starts[1:]))


def _memory_kb(pid: int) -> dict[str, int | None]:
    """Resident (``VmRSS``) and proportional (``Pss``: shared pages split between the
    processes that map them) memory of process ``pid`` in KiB; None where /proc does not say."""
    out: dict[str, int | None] = {"rss_kb": None, "pss_kb": None}
    for path, key, name in ((f"/proc/{pid}/status", "VmRSS:", "rss_kb"), (f"/proc/{pid}/smaps_rollup", "Pss:", "pss_kb")):
        with contextlib.suppress(OSError, ValueError, IndexError):
            with open(path, encoding="ascii") as fh:
                line = next((x for x in fh if x.startswith(key)), None)
            out[name] = None if line is None else int(line.split()[1])
    return out


def default_standby(cores: int, plan: Plan) -> int:
    """The default size of the warm standby beside ``plan``'s workers on ``cores`` cores:
    ``cores - instances`` (at least 0). A plan has at most one instance per core, so live
    plus standby workers then serve every plan of these cores with no new process: every
    switch is a re-route or a retarget."""
    return max(0, int(cores) - len(plan.instances))


class InstancePool:
    """Worker processes serving one plan of one catalog model (see the module docstring).

    ``plan`` is a :class:`Plan`; its instances are pinned with :func:`topology.pin_plan`
    unless they already name their cores. ``capacity`` (default: the plan's batch): rows of
    the shared buffers, so that a switch to a plan for up to that many inputs needs no new
    buffers (a larger one grows them). ``standby``: warm workers started parked beside the
    plan's (model built), from which a switch takes the workers it needs beyond the live
    ones. ``retarget_warmup``: warm-up inferences (of one input) a worker runs after a
    retarget, before it answers (0, the default: none; its next batch starts any OpenMP
    thread it lacks, which inherits the new CPU set). Switch with
    :meth:`prepare` + :meth:`commit` (or :meth:`apply`). Use as a context manager, or call
    :meth:`start` and :meth:`close`.
    """

    def __init__(
        self,
        model: str,
        plan: Plan,
        *,
        topology: topo_mod.Topology | None = None,
        allow_oversubscribe: bool = False,
        allow_span: bool = False,
        seed: int = 0,
        jit: bool = False,
        warmup: int = 2,
        start_timeout: float = 600.0,
        omp_policy: str | None = None,
        capacity: int | None = None,
        standby: int = 0,
        retarget_warmup: int = 0,
    ) -> None:
        self.spec = get_spec(model)
        try:
            self.omp_policy = topo_mod.omp_policy(omp_policy)
        except ValueError as exc:
            raise ExecutorError(str(exc)) from None
        self.model = model
        self.topology = topology or topo_mod.detect()
        self.allow_oversubscribe, self.allow_span = allow_oversubscribe, allow_span
        self.plan, self.cores = topo_mod.pin_plan(
            plan, self.topology, allow_oversubscribe=allow_oversubscribe, allow_span=allow_span
        )
        self.batch = plan.batch
        rows = plan.batch if capacity is None else validate.positive_int(capacity, "capacity", error=ExecutorError)
        self.capacity = max(plan.batch, rows)
        self.standby_target = validate.nonnegative_int(standby, "standby workers", error=ExecutorError)
        self.retarget_warmup = validate.nonnegative_int(retarget_warmup, "retarget_warmup", error=ExecutorError)
        self.seed, self.jit, self.warmup, self.start_timeout = seed, jit, warmup, start_timeout
        self.rows = list(_rows_of(self.plan))
        self._procs: list = []
        self._conns: list = []
        self._slots: list[WorkerSlot | None] = []  # by worker index; None: gone
        self._assign: list[int] = []  # the worker of each plan instance
        self._failed: set[int] = set()
        self._ctx: Any = None
        self._seq = 0
        self.control_bytes = 0
        self.runtime = ""
        self._finalizer: weakref.finalize | None = None
        self._inp: Any = None  # the shared buffers (torch tensors), [capacity, ...]
        self._out: Any = None
        self.last_worker_ms: tuple[float, ...] = ()
        self.last_threads: tuple[int, ...] = ()  # torch threads each worker reported for the last batch
        self.worker_settings: dict[str, str] = {}  # torch / OpenMP settings the workers report
        self.worker_reports: dict[int, dict] = {}  # pid -> its last report (threads, CPUs of every thread)

    # ---- lifecycle
    @property
    def pids(self) -> list[int]:
        """The pids of the serving workers, plan order."""
        return [self._procs[i].pid for i in self._assign]

    @property
    def standby_pids(self) -> list[int]:
        """The pids of the parked (warm standby) workers."""
        return [self._procs[i].pid for i in self._parked()]

    @property
    def standby(self) -> int:
        """How many warm workers wait parked."""
        return len(self._parked())

    @property
    def started(self) -> bool:
        return bool(self._procs)

    def _parked(self) -> list[int]:
        return [i for i, s in enumerate(self._slots) if s is not None and s.parked and i not in self._failed]

    def start(self) -> InstancePool:
        """Start the workers and wait until every one has built and warmed up its model."""
        with self._closed_on_error():
            self.launch()
            self.wait_ready()
        return self

    @contextlib.contextmanager
    def _closed_on_error(self) -> Iterator[None]:
        """Close the pool (stop every worker) when the block raises anything, then re-raise."""
        try:
            yield
        except BaseException:
            self.close()
            raise

    def launch(self) -> InstancePool:
        """Spawn the workers (the plan's, then ``standby`` parked ones) without waiting for
        them (see :meth:`wait_ready`); lets several pools build their models side by side."""
        import torch

        if self._procs:
            return self
        self._ctx = process_context("spawn")
        dtype = torch.int64 if self.spec.input_dtype == "int64" else torch.float32
        self._inp = torch.zeros((self.capacity, *self.spec.input_shape), dtype=dtype).share_memory_()
        self._finalizer = weakref.finalize(self, _shutdown, self._procs, self._conns)
        with self._closed_on_error():
            for inst, cores, (a, b) in zip(self.plan.instances, self.cores, self.rows):
                self._assign.append(self._spawn(WorkerSlot(inst.threads, tuple(cores)), b - a))
            for _ in range(self.standby_target):
                self._spawn(WorkerSlot(1, self.topology.ids, parked=True), 1)
        return self

    def _spawn(self, slot: WorkerSlot, rows: int) -> int:
        """Start one worker set to ``slot`` (warm-up on ``rows`` inputs) through the one
        spawner and hand it the shared buffers; its index. Not waited for."""
        ctx = self._ctx or process_context("spawn")
        parent, child = ctx.Pipe()
        with topo_mod.ignoring_sigint(), topo_mod.worker_environment(self.omp_policy):
            p = start_process(
                ctx, _pool_worker,
                (child, self.model, slot.threads, tuple(slot.cores), max(1, rows), self.seed, self.jit, self.warmup),
                daemon=True, name=f"packrat-{self.model}-{slot.threads}t",
            )
        child.close()
        self._procs.append(p)
        self._conns.append(parent)
        self._slots.append(slot)
        parent.send(("buffers", 0, self._inp, self._out))
        return len(self._procs) - 1

    def wait_ready(self) -> InstancePool:
        """Wait for every worker's model (WorkerError on failure or after ``start_timeout``)."""
        import torch

        if self._out is not None:
            return self
        with self._closed_on_error():
            everyone = list(range(len(self._procs)))
            ready = self._gather("ready", timeout=self.start_timeout, indices=everyone)
            shapes = {(m[1], m[2]) for m in ready}
            if len(shapes) != 1:
                raise WorkerError(f"workers disagree on the output shape: {sorted(shapes)}")
            (shape, dt), = shapes
            self.runtime = ready[0][3]
            self.worker_settings = dict(ready[0][4])
            self._note(m[5] for m in ready)
            self._out = torch.zeros((self.capacity, *shape), dtype=getattr(torch, dt)).share_memory_()
            for i in everyone:
                self._conns[i].send(("output", self._out))
        return self

    def _await_spawned(self, indices: Sequence[int], timeout: float) -> None:
        """Wait until the workers ``indices``, started after the pool, are warm (WorkerError)."""
        self._note(m[5] for m in self._gather("ready", timeout=timeout, indices=indices))

    def _note(self, reports) -> None:
        for r in reports:
            self.worker_reports[r["pid"]] = r

    def _retire(self, indices: Sequence[int]) -> None:
        """Stop the workers ``indices`` now (killed: they are dead, failed or unwanted) and forget them."""
        for i in indices:
            self._slots[i] = None
            p = self._procs[i]
            if p.is_alive():
                p.kill()
            p.join(2.0)
            with contextlib.suppress(Exception):
                self._conns[i].close()

    def close(self) -> None:
        """Stop every worker (idempotent); the pool cannot run afterwards."""
        if self._finalizer is not None:
            self._finalizer()  # runs _shutdown once
        self._out = None

    def __enter__(self) -> InstancePool:
        return self.start()

    def __exit__(self, *exc) -> Literal[False]:
        self.close()
        return False

    def worker_memory(self) -> list[dict]:
        """Memory of every worker still running: ``{"pid", "parked", "threads", "rss_kb",
        "pss_kb"}`` (KiB, from /proc; ``pss_kb`` splits shared pages between processes)."""
        return [{"pid": self._procs[i].pid, "parked": s.parked, "threads": s.threads, **_memory_kb(self._procs[i].pid)}
                for i, s in enumerate(self._slots) if s is not None and self._procs[i].is_alive()]

    # ---- answers from workers
    def _read(self, i: int, kind: str, seq: int | None) -> tuple[Any, str | None]:
        """The next message of worker ``i``: (message, None), (None, None) for a stale answer
        (to a request older than ``seq``), or (None, error text) when it died, failed or
        answered something else than ``kind``."""
        try:
            msg = _recv(self._conns[i])
        except (EOFError, OSError):
            self._procs[i].join(5.0)
            return None, f"worker {i} of {self.model} died (exit code {self._procs[i].exitcode})"
        if msg[0] == "error":
            slot = self._slots[i]
            return None, f"worker {i} ({slot.threads if slot else '?'} threads) failed: {msg[1]}"
        if seq is not None and msg[0] in _ANSWERS and msg[1] < seq:
            return None, None  # stale: the answer to a batch abandoned when another worker died
        if msg[0] != kind or (seq is not None and msg[1] != seq):
            return None, f"worker {i} answered {msg[0]!r}, expected {kind!r}"
        return msg, None

    def _collect(self, indices: Sequence[int], kinds: str | dict[int, str], seq: int | None = None,
                 timeout: float | None = None) -> tuple[dict[int, Any], dict[int, str]]:
        """One answer from each worker of ``indices``: ({index: message}, {index: error}).
        ``kinds``: the answer expected (one for all, or per index); with ``seq``, stale
        answers are skipped. Never raises for a worker: death, failure, a wrong answer or no
        answer within ``timeout`` (s) is an error text, and the worker is marked failed."""
        pending = {self._conns[i]: i for i in indices}
        sentinels = {self._procs[i].sentinel: i for i in indices}
        got: dict[int, Any] = {}
        failed: dict[int, str] = {}
        deadline = None if timeout is None else time.monotonic() + timeout
        while pending:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = wait_any(list(pending) + list(sentinels), left)
            if not ready:
                for i in pending.values():
                    failed[i] = f"{len(pending)} worker(s) of {self.model} did not answer within {timeout:.0f} s"
                break
            for r in ready:
                if r in pending:
                    i = pending[r]
                    msg, error = self._read(i, kinds if isinstance(kinds, str) else kinds[i], seq)
                    if msg is None and error is None:
                        continue
                    del pending[r]
                    if error is None:
                        got[i] = msg
                    else:
                        failed[i] = error
                elif r in sentinels:
                    i = sentinels.pop(r)
                    if self._conns[i] in pending and not self._conns[i].poll():
                        del pending[self._conns[i]]
                        failed[i] = f"worker {i} of {self.model} died (exit code {self._procs[i].exitcode})"
        self._failed.update(failed)
        return got, failed

    def _gather(self, kind: str, timeout: float | None = None, seq: int | None = None,
                indices: Sequence[int] | None = None) -> list:
        """One message of ``kind`` from every worker of ``indices`` (default: the serving
        ones), in that order; WorkerError naming the first that fails, dies or (with
        ``timeout``) does not answer in time."""
        indices = list(self._assign if indices is None else indices)
        got, failed = self._collect(indices, kind, seq, timeout)
        for i in indices:
            if i in failed:
                raise WorkerError(failed[i])
        return [got[i] for i in indices]

    def _post(self, i: int, msg) -> bool:
        """Send a control message to worker ``i``; False (and marked failed) when its pipe is broken."""
        try:
            self.control_bytes += _send(self._conns[i], msg)
        except OSError:
            self._failed.add(i)
            return False
        return True

    # ---- dispatch
    def input_buffer(self):
        """The shared input tensor ``[capacity, ...]``: fill its first B rows in place and call
        :meth:`run` with ``inputs=None`` to skip the copy."""
        return self._inp

    def _require_running(self) -> None:
        if self._out is None:
            raise ExecutorError("the pool is not running (use `with InstancePool(...) as pool`)")

    def run(self, inputs=None, *, copy: bool = True, rows: int | None = None):
        """Run one batch; returns ``(outputs, latency_ms)``. ``inputs`` is ``[B, *input_shape]``
        (None: use what is in :meth:`input_buffer`). Outputs are a fresh tensor in input
        order (``copy=False``: a view of the shared output buffer, overwritten by the next run).
        ``rows`` (one-instance pools only, 1..B): run a smaller batch of that many inputs
        through the same path (the profiler times every sub-batch of a thread count with one pool)."""
        self._require_running()
        n = self.batch if rows is None else rows
        if rows is not None and (len(self.plan.instances) != 1 or not validate.is_integer(rows)
                                 or not 1 <= rows <= self.batch):
            raise ExecutorError(f"rows={rows!r} needs a one-instance pool and 1 <= rows <= {self.batch}")
        t0 = time.perf_counter()
        if inputs is not None:
            shape = tuple(inputs.shape)
            if shape != (n, *self._inp.shape[1:]):
                raise ExecutorError(
                    f"batch of shape {list(shape)} does not match the pool's {[n, *self._inp.shape[1:]]} "
                    f"(plan batch {self.batch}, {self.model} input {list(self.spec.input_shape)})"
                )
            _copy_single_threaded(self._inp[:n], inputs)
        self._seq += 1
        for i, (a, b) in zip(self._assign, [(0, n)] if rows is not None else self.rows):
            if not self._post(i, ("run", self._seq, a, b)):  # (a broken pipe: the worker died while idle)
                self._procs[i].join(5.0)
                raise WorkerError(f"worker {i} of {self.model} died (exit code {self._procs[i].exitcode})")
        done = self._gather("done", seq=self._seq)
        out = _clone_single_threaded(self._out[:n]) if copy else self._out[:n]
        latency_ms = (time.perf_counter() - t0) * 1e3
        self.last_worker_ms = tuple((m[3] - m[2]) / 1e6 for m in done)
        self.last_threads = tuple(m[4] for m in done)
        return out, latency_ms

    # ---- switching (re-route, retarget, respawn)
    def kind_of(self, plan: Plan) -> str:
        """The kind of switch from the current plan to ``plan`` with this pool's standby:
        :func:`packrat_sim.switching.switch_kind`, the rule the policy prices."""
        return switch_kind(self.plan, plan, self.standby)

    def prepare(self, plan: Plan, *, timeout: float | None = None) -> SwitchPlan:
        """Prepare the switch to ``plan`` without touching a serving worker: its kind, the
        cores and rows of the new instances and the worker of each (:func:`assign_workers`;
        a re-route keeps every worker's cores, the others pin ``plan`` afresh with
        :func:`topology.pin_plan`). For a respawn the new processes are started now, set to
        their instance, and waited for (``timeout`` s, default ``start_timeout``) while the
        current configuration keeps serving. TopologyError for a plan that does not fit;
        WorkerError when a new process fails (the ones started are stopped)."""
        self._require_running()
        kind = switch_kind(self.plan, plan, self.standby)
        if kind == REROUTE:
            new = Plan(tuple(Instance(i.threads, i.batch) for i in plan.instances), plan.batch, plan.cores,
                       plan.predicted_ms)
            targets: list[tuple[int, tuple[int, ...] | None]] = [(i.threads, None) for i in new.instances]
        else:
            new, pinned = topo_mod.pin_plan(plan, self.topology, allow_oversubscribe=self.allow_oversubscribe,
                                            allow_span=self.allow_span)
            targets = [(i.threads, tuple(c)) for i, c in zip(new.instances, pinned)]
        chosen, park = assign_workers(self._slots, self._assign, targets)
        assign, spawned = self._spawn_for(new, targets, chosen, timeout)
        cores = [c if c is not None else self._cores_of(w) for (_, c), w in zip(targets, assign)]
        new, cores, assign = self._pinned(new, cores, assign)
        retarget = tuple(w for w, i, c in zip(assign, new.instances, cores)
                         if w not in spawned and self._slots[w] != WorkerSlot(i.threads, tuple(c)))
        return SwitchPlan(kind, new, tuple(tuple(c) for c in cores), _rows_of(new), tuple(assign), retarget, park,
                          spawned)

    def _cores_of(self, i: int) -> tuple[int, ...]:
        slot = self._slots[i]
        return () if slot is None else slot.cores

    def _spawn_for(self, plan: Plan, targets, chosen, timeout: float | None) -> tuple[list[int], tuple[int, ...]]:
        """Start a process for every instance no warm worker serves (``chosen`` None), set to
        its target; wait for them. (the worker of every instance, the new indices)."""
        assign, new = list(chosen), []
        try:
            for j, (inst, (threads, cores)) in enumerate(zip(plan.instances, targets)):
                if assign[j] is None:
                    assign[j] = self._spawn(WorkerSlot(threads, tuple(cores)), inst.batch)
                    new.append(assign[j])
            if new:
                self._await_spawned(new, self.start_timeout if timeout is None else timeout)
        except BaseException:
            self._retire(new)
            raise
        return assign, tuple(new)

    def _pinned(self, plan: Plan, cores: list, assign: list[int]) -> tuple[Plan, list, list[int]]:
        """A re-routed plan with its workers' cores filled in (Plan re-sorts its instances:
        read the cores and workers back in that order); unchanged when already pinned or
        oversubscribed."""
        if any(i.cores for i in plan.instances) or plan.threads_used > self.topology.logical:
            return plan, cores, assign
        try:
            pinned = Plan(tuple(Instance(i.threads, i.batch, tuple(c)) for i, c in zip(plan.instances, cores)),
                          plan.batch, plan.cores, plan.predicted_ms)
        except PlanError:  # shared cores: leave it unpinned
            return plan, cores, assign
        worker = {(i.threads, i.batch, tuple(c)): w for i, c, w in zip(plan.instances, cores, assign)}
        return pinned, [i.cores for i in pinned.instances], [worker[(i.threads, i.batch, i.cores)] for i in pinned.instances]

    def commit(self, switch: SwitchPlan, hook: Callable | None = None) -> SwitchReport:
        """Apply a prepared switch; call it between batches (none in flight: a runtime drains
        first). Grows the shared buffers when the new batch exceeds the capacity, sends each
        ``retarget`` worker its thread count and CPUs and each ``park`` worker to the
        standby, waits for their answers, and from then on runs the new plan (a re-route
        sends nothing). A worker that dies meanwhile is replaced (:meth:`recover`) and listed
        in ``recovered``; WorkerError only when no replacement could start. ``hook(pool,
        switch)`` runs right after the messages are sent (tests kill a worker there)."""
        self._require_running()
        t0 = time.perf_counter()
        self._grow(switch.plan.batch)
        self._seq += 1
        kinds, unparked = self._send_moves(switch, self._seq)
        if hook is not None:
            hook(self, switch)
        got, _ = self._collect(list(kinds), kinds, seq=self._seq, timeout=self.start_timeout)
        self._note(msg[2] for msg in got.values())
        pid = {i: self._procs[i].pid for i in kinds}
        self.plan, self.batch, self.rows = switch.plan, switch.plan.batch, list(switch.rows)
        self.cores, self._assign = [tuple(c) for c in switch.cores], list(switch.assign)
        recovered = self.recover()
        return SwitchReport(
            kind=switch.executed_kind, pids=tuple(self.pids),
            retargeted=tuple(pid[i] for i in switch.retarget if i in got),
            parked=tuple(pid[i] for i in kinds if kinds[i] == "parked" and i in got),
            unparked=tuple(pid[i] for i in switch.retarget if i in got and i in unparked),
            spawned=tuple(self._procs[i].pid for i in switch.spawned),
            workers=tuple(got[i][2] for i in sorted(got)), recovered=tuple(recovered),
            commit_ms=(time.perf_counter() - t0) * 1e3,
        )

    def _send_moves(self, switch: SwitchPlan, seq: int) -> tuple[dict[int, str], set[int]]:
        """Send the retarget and park messages of ``switch`` (numbered ``seq``) and set the
        slots they ask for: ({worker: the answer expected} for the messages sent, the
        workers taken from the standby)."""
        kinds: dict[int, str] = {}
        unparked: set[int] = set()
        for j, w in enumerate(switch.assign):
            if w in switch.retarget:
                inst, cores = switch.plan.instances[j], tuple(switch.cores[j])
                slot = self._slots[w]
                if slot is not None and slot.parked:
                    unparked.add(w)
                if self._post(w, ("retarget", seq, inst.threads, cores, 1, self.retarget_warmup)):
                    kinds[w] = "retargeted"
                self._slots[w] = WorkerSlot(inst.threads, cores)
        for w in self._to_park(switch):
            if self._post(w, ("park", seq, self.topology.ids)):
                kinds[w] = "parked"
            self._slots[w] = WorkerSlot(1, self.topology.ids, parked=True)
        return kinds, unparked

    def _to_park(self, switch: SwitchPlan) -> list[int]:
        """``switch.park`` and any other live worker the new plan does not use (a fault's
        replacement made after the switch was prepared), so that none is left holding cores."""
        stray = [i for i, s in enumerate(self._slots)
                 if s is not None and not s.parked and i not in switch.assign and i not in switch.park]
        return [*switch.park, *stray]

    def apply(self, plan: Plan, *, timeout: float | None = None, hook: Callable | None = None) -> SwitchReport:
        """:meth:`prepare` then :meth:`commit`: switch to ``plan`` between two batches."""
        return self.commit(self.prepare(plan, timeout=timeout), hook)

    def _grow(self, batch: int) -> None:
        """Shared buffers of ``batch`` rows when the capacity is smaller, handed to every
        worker (a few ms: each re-maps them); workers that fail are marked failed."""
        import torch

        if batch <= self.capacity:
            return
        inp = torch.zeros((batch, *self._inp.shape[1:]), dtype=self._inp.dtype).share_memory_()
        out = torch.zeros((batch, *self._out.shape[1:]), dtype=self._out.dtype).share_memory_()
        self._seq += 1
        alive = [i for i, s in enumerate(self._slots) if s is not None and i not in self._failed]
        sent = []
        for i in alive:
            try:
                self._conns[i].send(("buffers", self._seq, inp, out))
                sent.append(i)
            except OSError:
                self._failed.add(i)
        self._inp, self._out, self.capacity = inp, out, batch
        self._collect(sent, "buffered", seq=self._seq, timeout=self.start_timeout)

    def recover(self) -> list[dict]:
        """Replace every serving worker that failed or died: a parked worker retargeted into
        its place when the standby has one, else a new process with the same threads and
        CPUs; forget failed parked ones. One record per replacement: ``{"pid", "replacement",
        "how": "retarget" | "respawn", "ms"}``. WorkerError when a new process fails to start."""
        out = [self._replace(j) for j, w in enumerate(self._assign)
               if w in self._failed or not self._procs[w].is_alive()]
        self._retire([i for i, s in enumerate(self._slots)
                      if s is not None and s.parked and (i in self._failed or not self._procs[i].is_alive())])
        return out

    def _replace(self, j: int) -> dict:
        """Put a live worker in place of the failed worker of instance ``j`` (see :meth:`recover`)."""
        t0 = time.perf_counter()
        old = self._assign[j]
        pid = self._procs[old].pid
        self._retire([old])
        inst = self.plan.instances[j]
        slot = WorkerSlot(inst.threads, tuple(self.cores[j]))
        how = RETARGET
        for p in self._parked():
            self._seq += 1
            if self._post(p, ("retarget", self._seq, slot.threads, slot.cores, 1, self.retarget_warmup)):
                got, _ = self._collect([p], "retargeted", seq=self._seq, timeout=self.start_timeout)
                if p in got:
                    self._note([got[p][2]])
                    break
            self._retire([p])
        else:
            how, p = RESPAWN, self._spawn(slot, inst.batch)
            try:
                self._await_spawned([p], self.start_timeout)
            except BaseException:
                self._retire([p])
                raise
        self._slots[p], self._assign[j] = slot, p
        return {"pid": pid, "replacement": self._procs[p].pid, "how": how, "ms": (time.perf_counter() - t0) * 1e3}


def start_side_by_side(pools: Sequence[InstancePool]) -> list[InstancePool]:
    """Start ``pools`` side by side: launch every one (their model builds overlap), then
    wait for each to be ready; on any failure close them all and re-raise."""
    pools = list(pools)
    try:
        for pool in pools:
            pool.launch()
        for pool in pools:
            pool.wait_ready()
    except BaseException:
        for pool in pools:
            pool.close()
        raise
    return pools


def _copy_single_threaded(dst, src) -> None:
    """``dst[...] = src`` on the dispatcher's own thread. torch's ``copy_`` would use the
    process's intra-op OpenMP threads, whose spinning steals the workers' cores (measured:
    fat B=8 7.72 -> 4.06 ms on a 2-core VM); numpy's copy is a plain memcpy on this thread."""
    src = src.detach()
    if src.dtype != dst.dtype or not src.is_contiguous():
        src = src.to(dst.dtype).contiguous()
    try:
        np.copyto(dst.numpy(), src.numpy())
    except TypeError:  # a dtype numpy lacks (bfloat16): torch's copy
        dst.copy_(src)


def _clone_single_threaded(t):
    """A fresh copy of the CPU tensor ``t``, made on the dispatcher's own thread."""
    import torch

    try:
        return torch.from_numpy(t.numpy().copy())
    except TypeError:  # a dtype numpy lacks (bfloat16)
        return t.clone()


# ---------------------------------------------------------------------- run API


@dataclass(frozen=True)
class RunResult:
    """Measured batch latencies of one plan (ms, end to end, one sample per iteration)."""

    model: str
    plan: Plan
    cores: tuple[tuple[int, ...], ...]
    stats: Stats
    runtime: str = "eager"
    worker_ms: tuple[tuple[float, ...], ...] = ()  # per iteration, per instance: compute time

    @property
    def samples_ms(self) -> tuple[float, ...]:
        return self.stats.samples_ms

    @property
    def median_ms(self) -> float:
        return self.stats.median_ms

    @property
    def p90_ms(self) -> float:
        return self.stats.p90_ms

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "groups": [list(g) for g in self.plan.groups()],
            "describe": self.plan.describe(),
            "plan": self.plan.to_json(),
            "cores": [list(c) for c in self.cores],
            "runtime": self.runtime,
            **self.stats.to_json(),
        }


@dataclass(frozen=True)
class Comparison:
    """A plan and the fat instance measured in the same run, interleaved."""

    plan: RunResult
    fat: RunResult
    max_abs_diff: float  # between the plan's and the fat run's outputs on the same batch
    outputs_match: bool
    output_scale: float = 0.0  # max |output| of the fat run (0 would mean nothing was computed)

    @property
    def speedup(self) -> float:
        """Fat median over plan median (> 1: the plan is faster)."""
        return self.fat.median_ms / self.plan.median_ms

    def to_json(self) -> dict:
        return {
            "plan": self.plan.to_json(),
            "fat": self.fat.to_json(),
            "speedup_vs_fat": self.speedup,
            "outputs_match": self.outputs_match,
            "max_abs_diff": self.max_abs_diff,
            "output_scale": self.output_scale,
        }


def _result(pool: InstancePool, samples: list[float], worker: list) -> RunResult:
    return RunResult(
        model=pool.model, plan=pool.plan, cores=tuple(tuple(c) for c in pool.cores),
        stats=Stats(tuple(samples)), runtime=pool.runtime, worker_ms=tuple(worker),
    )


def run_plan(
    model: str,
    plan: Plan,
    iterations: int = 10,
    *,
    topology: topo_mod.Topology | None = None,
    allow_oversubscribe: bool = False,
    seed: int = 0,
    jit: bool = False,
    warmup: int = 2,
) -> RunResult:
    """Start a pool for ``plan``, run ``iterations`` batches of seeded inputs, stop it."""
    validate.positive_int(iterations, "iterations", error=ExecutorError)
    require_batch_memory(model, plan.batch, ExecutorError)
    inputs = make_inputs(model, plan.batch, seed + 2)
    with InstancePool(model, plan, topology=topology, allow_oversubscribe=allow_oversubscribe,
                      seed=seed, jit=jit, warmup=warmup) as pool:
        samples, worker = [], []
        for _ in range(iterations):
            _, ms = pool.run(inputs)
            samples.append(ms)
            worker.append(pool.last_worker_ms)
        return _result(pool, samples, worker)


def outputs_close(a, b) -> tuple[bool, float]:
    """Whether two output tensors agree up to float reordering (different thread counts
    and sub-batches sum in different orders): |a - b| <= 1e-4 + 1e-3 |b| elementwise
    relative to the output's scale. Returns (ok, max |a - b|)."""
    import torch

    a, b = a.double(), b.double()
    diff = (a - b).abs()
    scale = float(b.abs().max()) or 1.0
    ok = bool(torch.all(diff <= 1e-4 * scale + 1e-3 * b.abs()))
    return ok, float(diff.max())


def compare_with_fat(
    model: str,
    plan: Plan,
    iterations: int = 10,
    *,
    cores: int | None = None,
    topology: topo_mod.Topology | None = None,
    allow_oversubscribe: bool = False,
    seed: int = 0,
    jit: bool = False,
    warmup: int = 2,
) -> Comparison:
    """Run ``plan`` and the fat instance (one instance, ``cores`` threads, default
    ``plan.cores``, on the whole batch) on the same inputs, interleaved (plan first on
    even iterations, fat first on odd ones), with both pools started side by side but
    never running at the same time. Also checks that both give the same outputs."""
    validate.positive_int(iterations, "iterations", error=ExecutorError)
    require_batch_memory(model, plan.batch, ExecutorError)
    topo = topology or topo_mod.detect()
    fat_cores = cores or min(plan.cores, topo.logical)
    fat = fat_plan(plan.batch, fat_cores)
    inputs = make_inputs(model, plan.batch, seed + 2)
    p_pool = InstancePool(model, plan, topology=topo, allow_oversubscribe=allow_oversubscribe,
                          seed=seed, jit=jit, warmup=warmup)
    f_pool = InstancePool(model, fat, topology=topo, allow_oversubscribe=allow_oversubscribe,
                          allow_span=True, seed=seed, jit=jit, warmup=warmup)
    start_side_by_side([p_pool, f_pool])
    with p_pool, f_pool:
        samples: dict[str, list[float]] = {"plan": [], "fat": []}
        worker: dict[str, list] = {"plan": [], "fat": []}
        outs = {}
        pools = {"plan": p_pool, "fat": f_pool}
        for it in range(iterations):
            for name in (("plan", "fat") if it % 2 == 0 else ("fat", "plan")):
                out, ms = pools[name].run(inputs)
                samples[name].append(ms)
                worker[name].append(pools[name].last_worker_ms)
                outs[name] = out
        ok, diff = outputs_close(outs["plan"], outs["fat"])
        scale = float(outs["fat"].abs().max())
        ok = ok and math.isfinite(scale)
        return Comparison(
            plan=_result(p_pool, samples["plan"], worker["plan"]),
            fat=_result(f_pool, samples["fat"], worker["fat"]),
            max_abs_diff=diff,
            outputs_match=ok,
            output_scale=scale,
        )


def split_outputs_match_fat(model: str, plan: Plan, *, seed: int = 0, topology=None) -> tuple[bool, float]:
    """Run one batch through ``plan`` and through the fat instance; (allclose, max |diff|)."""
    comp = compare_with_fat(model, plan, 1, topology=topology, seed=seed, warmup=1)
    return comp.outputs_match, comp.max_abs_diff


__all__ = [
    "Comparison", "ExecutorError", "Instance", "InstancePool", "ModelCatalogError", "RunResult", "Stats",
    "SwitchPlan", "SwitchReport", "WorkerError", "WorkerSlot", "assign_workers", "compare_with_fat",
    "default_standby", "outputs_close", "run_plan", "split_outputs_match_fat", "start_side_by_side",
]
