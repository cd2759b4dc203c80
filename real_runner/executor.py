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

Shutdown: :meth:`InstancePool.close` (also on ``with`` exit, on an exception, on
KeyboardInterrupt, and at interpreter exit through a finalizer) asks every worker to
stop, then terminates and finally kills the ones that do not. Workers ignore SIGINT
(a terminal Ctrl-C reaches the whole process group; the parent shuts them down) and
exit by themselves when the parent dies (pipe closed, or parent pid changed).
"""

from __future__ import annotations

import contextlib
import math
import pickle
import time
import traceback
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import wait as wait_any
from typing import Literal

import numpy as np

from packrat_sim import validate
from packrat_sim.engines.spawn import process_context, start_process
from packrat_sim.errors import PackratError
from packrat_sim.plan import Instance, Plan
from packrat_sim.plan import fat as fat_plan
from real_runner import topology as topo_mod
from real_runner.models import ModelCatalogError, build_model, get_spec, make_inputs, require_batch_memory


class WorkerError(RuntimeError):
    """A worker process failed (exception in the model, crash, or start-up timeout)."""


class ExecutorError(PackratError):
    """Bad executor input (batch shape, plan vs model); names the value."""


# ------------------------------------------------------------------------- worker


def _send(conn, msg) -> int:
    data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
    conn.send_bytes(data)
    return len(data)


def _recv(conn):
    return pickle.loads(conn.recv_bytes())


def _pool_worker(conn, model: str, threads: int, cores: tuple[int, ...], start: int, stop: int,
                 seed: int, jit: bool, warmup: int) -> None:
    """Worker main loop (runs in the spawned process)."""
    try:
        topo_mod.start_worker(cores, threads)
        import torch

        built = build_model(model, seed=seed, jit=jit)
        buffers = conn.recv()  # ("buffers", input) sent with torch's shared-memory pickler
        inp = buffers[1]
        mine = inp[start:stop]
        with torch.inference_mode():
            sample = make_inputs(model, stop - start, seed + 1)
            y = built(sample)
            for _ in range(max(0, warmup - 1)):
                built(sample)
        _send(conn, ("ready", tuple(y.shape[1:]), str(y.dtype).replace("torch.", ""), built.runtime,
                     topo_mod.thread_settings()))
        msg = conn.recv()  # ("output", out)
        out_rows = msg[1][start:stop]
        while True:
            msg = _recv(conn)
            if msg[0] == "stop":
                break
            if msg[0] == "run":
                n = msg[2] if len(msg) > 2 else stop - start  # ("run", seq, n): the first n rows only
                t0 = time.perf_counter_ns()
                with torch.inference_mode():
                    out_rows[:n].copy_(built(mine[:n]))
                t1 = time.perf_counter_ns()
                _send(conn, ("done", msg[1], t0, t1))
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


class InstancePool:
    """Worker processes serving one plan of one catalog model (see the module docstring).

    ``plan`` is a :class:`Plan`; its instances are pinned with :func:`topology.pin_plan`
    unless they already name their cores. Use as a context manager, or call
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
    ) -> None:
        self.spec = get_spec(model)
        try:
            self.omp_policy = topo_mod.omp_policy(omp_policy)
        except ValueError as exc:
            raise ExecutorError(str(exc)) from None
        self.model = model
        self.topology = topology or topo_mod.detect()
        self.plan, self.cores = topo_mod.pin_plan(
            plan, self.topology, allow_oversubscribe=allow_oversubscribe, allow_span=allow_span
        )
        self.batch = plan.batch
        self.seed, self.jit, self.warmup, self.start_timeout = seed, jit, warmup, start_timeout
        starts = np.cumsum([0] + [i.batch for i in self.plan.instances]).tolist()
        self.rows = [(int(a), int(b)) for a, b in zip(starts[:-1], starts[1:])]
        self._procs: list = []
        self._conns: list = []
        self._seq = 0
        self.control_bytes = 0
        self.runtime = ""
        self._finalizer: weakref.finalize | None = None
        self._inp = self._out = None
        self.last_worker_ms: tuple[float, ...] = ()
        self.worker_settings: dict[str, str] = {}  # torch / OpenMP settings the workers report

    # ---- lifecycle
    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    @property
    def started(self) -> bool:
        return bool(self._procs)

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
        """Spawn the workers without waiting for them (see :meth:`wait_ready`); lets several
        pools build their models side by side."""
        import torch

        if self._procs:
            return self
        ctx = process_context("spawn")
        dtype = torch.int64 if self.spec.input_dtype == "int64" else torch.float32
        self._inp = torch.zeros((self.batch, *self.spec.input_shape), dtype=dtype).share_memory_()
        procs, conns = self._procs, self._conns
        self._finalizer = weakref.finalize(self, _shutdown, procs, conns)
        with self._closed_on_error():
            with topo_mod.ignoring_sigint(), topo_mod.worker_environment(self.omp_policy):
                for inst, cores, (a, b) in zip(self.plan.instances, self.cores, self.rows):
                    parent, child = ctx.Pipe()
                    p = start_process(
                        ctx, _pool_worker,
                        (child, self.model, inst.threads, tuple(cores), a, b, self.seed, self.jit, self.warmup),
                        daemon=True, name=f"packrat-{self.model}-{inst.threads}t-{inst.batch}b",
                    )
                    child.close()
                    procs.append(p)
                    conns.append(parent)
            for c in conns:
                c.send(("buffers", self._inp))
        return self

    def wait_ready(self) -> InstancePool:
        """Wait for every worker's model (WorkerError on failure or after ``start_timeout``)."""
        import torch

        if self._out is not None:
            return self
        with self._closed_on_error():
            ready = self._gather("ready", timeout=self.start_timeout)
            shapes = {(m[1], m[2]) for m in ready}
            if len(shapes) != 1:
                raise WorkerError(f"workers disagree on the output shape: {sorted(shapes)}")
            (shape, dt), = shapes
            self.runtime = ready[0][3]
            self.worker_settings = dict(ready[0][4]) if len(ready[0]) > 4 else {}
            self._out = torch.zeros((self.batch, *shape), dtype=getattr(torch, dt)).share_memory_()
            for c in self._conns:
                c.send(("output", self._out))
        return self

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

    # ---- dispatch
    def _gather(self, kind: str, timeout: float | None = None, seq: int | None = None) -> list:
        """One message of ``kind`` from every worker (in worker order); WorkerError if one
        fails, dies or (with ``timeout``) does not answer in time."""
        pending = {c: i for i, c in enumerate(self._conns)}
        sentinels = {p.sentinel: i for i, p in enumerate(self._procs)}
        got: list = [None] * len(self._conns)
        deadline = None if timeout is None else time.monotonic() + timeout
        while pending:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = wait_any(list(pending) + list(sentinels), left)
            if not ready:
                raise WorkerError(f"{len(pending)} worker(s) of {self.model} did not answer within {timeout:.0f} s")
            for r in ready:
                if r in pending:
                    i = pending.pop(r)
                    try:
                        msg = _recv(r)
                    except (EOFError, OSError):
                        self._procs[i].join(5.0)
                        raise WorkerError(
                            f"worker {i} of {self.model} died (exit code {self._procs[i].exitcode})"
                        ) from None
                    if msg[0] == "error":
                        raise WorkerError(f"worker {i} ({self.plan.instances[i].threads} threads) failed: {msg[1]}")
                    if msg[0] != kind or (seq is not None and msg[1] != seq):
                        raise WorkerError(f"worker {i} answered {msg[0]!r}, expected {kind!r}")
                    got[i] = msg
                elif r in sentinels:
                    i = sentinels.pop(r)
                    if self._conns[i] in pending and not self._conns[i].poll():
                        raise WorkerError(
                            f"worker {i} of {self.model} died (exit code {self._procs[i].exitcode})"
                        )
        return got

    def input_buffer(self):
        """The shared input tensor ``[B, ...]``: fill it in place and call :meth:`run` with
        ``inputs=None`` to skip the copy."""
        return self._inp

    def run(self, inputs=None, *, copy: bool = True, rows: int | None = None):
        """Run one batch; returns ``(outputs, latency_ms)``. ``inputs`` is ``[B, *input_shape]``
        (None: use what is in :meth:`input_buffer`). Outputs are a fresh tensor in input
        order (``copy=False``: a view of the shared output buffer, overwritten by the next run).
        ``rows`` (one-instance pools only, 1..B): run a smaller batch of that many inputs
        through the same path (the profiler times every sub-batch of a thread count with one pool)."""
        if self._out is None:
            raise ExecutorError("the pool is not running (use `with InstancePool(...) as pool`)")
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
        msg = ("run", self._seq) if rows is None else ("run", self._seq, n)
        for i, c in enumerate(self._conns):
            try:
                self.control_bytes += _send(c, msg)
            except OSError:  # (a broken pipe: the worker died while idle)
                self._procs[i].join(5.0)
                raise WorkerError(f"worker {i} of {self.model} died (exit code {self._procs[i].exitcode})") from None
        done = self._gather("done", seq=self._seq)
        out = _clone_single_threaded(self._out[:n]) if copy else self._out[:n]
        latency_ms = (time.perf_counter() - t0) * 1e3
        self.last_worker_ms = tuple((m[3] - m[2]) / 1e6 for m in done)
        return out, latency_ms


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
    "WorkerError", "compare_with_fat", "outputs_close", "run_plan", "split_outputs_match_fat", "start_side_by_side",
]
