"""Measure a model's latency profile L[t, b] on this machine, and its co-run interference.

Isolated sweep (:func:`profile_model`): every cell (t threads, b sub-batch) is timed
through the same path the runner uses: a one-instance :class:`real_runner.executor.InstancePool`
(t threads pinned to the CPUs the topology gives a t-thread instance, physical cores first,
the workers' OpenMP wait policy, shared-memory inputs, pipe messages). The pools of one
thread count start side by side; each is warmed up, then run ``repeats`` batches (more,
up to ``max_samples``, until ``min_seconds`` have been spent). A cell's samples are the
worker's compute times of those batches (cold calls after a pipe wait included); the
end-to-end time minus the compute is the dispatch cost, stored per (instances=1, b).
Every sample is kept: outliers (further than max(3 scaled MADs, 20 %) from the median)
are only flagged in meta (``outliers.t{t}.b{b}``), never re-measured, because real runs
see contended samples too. Each cell records the conditions it was measured in
(``context``: 1-minute load average, run-queue wait per batch from /proc/PID/task/*/schedstat,
dispatch cost). The profile's statistic is the median.

Resumable and loss-free: with ``out``, the profile is written atomically after every
cell. Running again with the same ``out`` reads it and measures only the missing cells
(same model, machine and runtime, else ProfileError); a file that does not parse is a
ProfileError that names it, and is left untouched. An exception or Ctrl-C stops the
worker and keeps everything written so far.

Co-run sweep (``interference=True``, the default): for k = 1, 2, 4, ..., the allowed CPUs
(at most MAX_CORUN), a pool of k one-thread instances, each on its own CPU with the probe
sub-batch (the largest profiled b whose t=1 median is <= 500 ms), runs batches as the
runner does. The slowdown beside (k - 1) other busy cores is the median over batches of
the *slowest* instance's compute over the k = 1 median: a batch ends with its straggler,
and the predictor prices a plan as its slowest instance x slowdown, so the factor must
carry the straggler's share too (the typical instance's ratio underestimates every
multi-instance plan). It is fitted on the medians of the first and second half of the
batches (packrat_sim.interference.fit_interference; RMS relative error between them and
the fit stored as ``fit_error``); when that error is above 10 % the sweep runs once more
with twice the batches and is refitted on both passes. The same pools give the dispatch
cost for (k, k x probe) inputs. Slowdowns below 1 (noise) are stored as 1; raw ratios
(other cores, slowest, typical instance) in meta ``interference.raw``.

Progress (a bar with an ETA) goes to stderr, only when it is a terminal or ``progress``
is True.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from packrat_sim.interference import fit_interference
from packrat_sim.profile import Cell, Interference, Profile, ProfileError, read_profile, write_profile
from real_runner import topology as topo_mod
from real_runner.models import ModelError, get_spec, make_inputs, require_batch_memory

DEFAULT_BATCHES = (1, 2, 4, 8)
DEFAULT_REPEATS = 5
DEFAULT_WARMUP = 1
DEFAULT_MIN_SECONDS = 0.2
DEFAULT_MAX_SAMPLES = 50
OUTLIER_MADS = 3.0
OUTLIER_REL = 0.2
PROBE_MAX_MS = 500.0
REFIT_ERROR = 0.10  # re-measure the co-run sweep once when its fit error is above this
MAX_CORUN = 32  # the interference sweep co-runs at most this many instances


class ProfilingError(ValueError):
    """Bad profiler input (grid, repeats); names the value."""


# ----------------------------------------------------------------------- parsing


def parse_int_list(spec: str, what: str) -> list[int]:
    """``"1-4"``, ``"1,2,4"``, ``"1-2,8"`` -> sorted distinct positive ints; ProfilingError otherwise."""
    out: set[int] = set()
    text = str(spec).strip()
    if not text:
        raise ProfilingError(f"{what} must be a list like 1,2,4 or a range like 1-8, got {spec!r}")
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part:
                lo_s, hi_s = part.split("-", 1)
                lo, hi = int(lo_s), int(hi_s)
                if lo > hi:
                    raise ValueError
                values = range(lo, hi + 1)
            else:
                values = [int(part)]
        except ValueError:
            raise ProfilingError(f"{what} must be a list like 1,2,4 or a range like 1-8, got {spec!r}") from None
        for v in values:
            if v < 1:
                raise ProfilingError(f"{what} must be positive integers, got {v} in {spec!r}")
            out.add(v)
    return sorted(out)


def powers_of_two_upto(batch: int) -> list[int]:
    return [1 << i for i in range(batch.bit_length()) if (1 << i) <= batch]


# ---------------------------------------------------------------------- outliers


def flag_outliers(samples: Sequence[float], mads: float = OUTLIER_MADS, rel: float = OUTLIER_REL) -> list[int]:
    """Indices of samples further than max(``mads`` scaled MADs, ``rel`` x median) from
    the median (fewer than 3 samples: none)."""
    xs = np.asarray(samples, dtype=float)
    if len(xs) < 3:
        return []
    med = float(np.median(xs))
    mad = 1.4826 * float(np.median(np.abs(xs - med)))
    limit = max(mads * mad, rel * med)
    return [i for i, x in enumerate(xs) if abs(x - med) > limit]


# ------------------------------------------------------------- pool measurement


def read_loadavg() -> float | None:
    """The 1-minute load average from /proc/loadavg (None where unavailable)."""
    try:
        with open("/proc/loadavg", encoding="ascii") as fh:
            return float(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def read_runq_wait_ns(pid: int) -> int | None:
    """Nanoseconds process ``pid`` has spent runnable but waiting for a CPU, summed over
    its threads (/proc/PID/task/*/schedstat, second field; None where unavailable)."""
    total, seen = 0, False
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat", encoding="ascii") as fh:
                total += int(fh.read().split()[1])
                seen = True
        except (OSError, ValueError, IndexError):
            continue
    return total if seen else None


@dataclass(frozen=True)
class PoolSamples:
    """What timing a pool measured: per batch, end-to-end ms and each worker's compute ms,
    plus the conditions (load average, run-queue wait per batch)."""

    end_to_end_ms: tuple[float, ...]
    worker_ms: tuple[tuple[float, ...], ...]  # per batch, per instance
    context: tuple[tuple[str, float], ...]

    @property
    def dispatch_ms(self) -> list[float]:
        """Per batch: end to end minus the slowest worker's compute (>= 0)."""
        return [max(0.0, e - max(w)) for e, w in zip(self.end_to_end_ms, self.worker_ms)]


def merge_samples(parts: Sequence[PoolSamples]) -> PoolSamples:
    """The samples of several pools timed one after the other, as one PoolSamples: batches
    concatenated in order; load average averaged, run-queue wait the largest. Pure."""
    context: dict[str, list[float]] = {}
    for part in parts:
        for key, value in part.context:
            context.setdefault(key, []).append(value)
    merged = [(k, round(max(v), 4) if k == "runq_wait_ms_per_batch" else round(sum(v) / len(v), 3))
              for k, v in context.items()]
    return PoolSamples(tuple(x for p in parts for x in p.end_to_end_ms), tuple(w for p in parts for w in p.worker_ms),
                       tuple(merged))


def time_pool(pool, inputs, n: int, min_seconds: float = 0.0, max_n: int | None = None,
              rows: int | None = None) -> PoolSamples:
    """Run ``pool`` on ``inputs`` at least ``n`` times (more, up to ``max_n``, until
    ``min_seconds`` have passed), exactly as the runner does; keep every sample."""
    max_n = max(n, max_n or n)
    load0 = read_loadavg()
    wait0 = {pid: read_runq_wait_ns(pid) for pid in pool.pids}
    e2e: list[float] = []
    work: list[tuple[float, ...]] = []
    t_start = time.perf_counter()
    while len(e2e) < n or (time.perf_counter() - t_start < min_seconds and len(e2e) < max_n):
        _, ms = pool.run(inputs, copy=False, rows=rows)
        e2e.append(ms)
        work.append(tuple(pool.last_worker_ms))
    context = []
    load1 = read_loadavg()
    if load0 is not None and load1 is not None:
        context.append(("loadavg_1m", round((load0 + load1) / 2, 3)))
    waits = []
    for pid, w0 in wait0.items():
        w1 = read_runq_wait_ns(pid)
        if w0 is not None and w1 is not None:
            waits.append((w1 - w0) / 1e6 / len(e2e))
    if waits:
        context.append(("runq_wait_ms_per_batch", round(max(waits), 4)))
    return PoolSamples(tuple(e2e), tuple(work), tuple(context))


def _start_pools(model: str, plans: Sequence, topo, seed: int, jit: bool, warmup: int) -> list:
    """Start one InstancePool per plan, side by side (imports overlap); all or none."""
    from real_runner.executor import InstancePool, start_side_by_side

    return start_side_by_side([InstancePool(model, p, topology=topo, allow_oversubscribe=True, allow_span=True,
                                            seed=seed, jit=jit, warmup=max(warmup, 1) + 1) for p in plans])


class ProfilingWorkerError(RuntimeError):
    """A profiling worker failed or died; what was measured before is kept."""


# ---------------------------------------------------------------------- progress


class Progress:
    """A one-line progress bar with an ETA on ``stream`` (stderr). Disabled unless
    ``enabled``; on a non-terminal stream it prints one line per update."""

    def __init__(self, total_units: float, total_cells: int, enabled: bool, stream=None, label: str = "") -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.total_units = max(total_units, 1e-9)
        self.total_cells = total_cells
        self.units = 0.0
        self.cells = 0
        self.busy_s = 0.0
        self.t0 = time.monotonic()
        self.label = label
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    @staticmethod
    def _fmt(seconds: float) -> str:
        seconds = int(round(seconds))
        return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"

    def eta_s(self) -> float | None:
        if self.units <= 0 or self.busy_s <= 0:
            return None
        return (self.total_units - self.units) * self.busy_s / self.units

    def update(self, what: str, units: float = 0.0, busy_s: float = 0.0, done: bool = False) -> None:
        self.units += units
        self.busy_s += busy_s
        if done:
            self.cells += 1
        if not self.enabled:
            return
        frac = min(1.0, self.units / self.total_units)
        width = 24
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        eta = self.eta_s()
        line = (
            f"{self.label}[{bar}] {self.cells}/{self.total_cells} cells  {what}  "
            f"{self._fmt(time.monotonic() - self.t0)} elapsed, ETA {'?' if eta is None else self._fmt(eta)}"
        )
        if self.tty:
            self.stream.write("\r\x1b[2K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


# ---------------------------------------------------------------------- profiler


@dataclass(frozen=True)
class ProfilingResult:
    """What one profiling run did: the full profile (old and new cells) and what was measured."""

    profile: Profile
    measured: tuple[tuple[int, int], ...]
    resumed: tuple[tuple[int, int], ...]
    interference_measured: bool
    elapsed_s: float
    out: str | None = None


def _validate(model: str, threads, batches, repeats: int, warmup: int, topo: topo_mod.Topology) -> tuple[list[int], list[int]]:
    get_spec(model)
    if threads is None:
        threads = list(range(1, topo.logical + 1))
    threads = sorted(set(threads))
    batches = sorted(set(DEFAULT_BATCHES if batches is None else batches))
    if not threads:
        raise ProfilingError("threads must name at least one thread count")
    if not batches:
        raise ProfilingError("batches must name at least one batch size")
    topo_mod.check_threads(threads, topo, "threads")
    for b in batches:
        if isinstance(b, bool) or not isinstance(b, int) or b < 1:
            raise ProfilingError(f"batches must be positive integers, got {b!r}")
    for name, v, lo in (("repeats", repeats, 1), ("warmup", warmup, 0)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ProfilingError(f"{name} must be an integer >= {lo}, got {v!r}")
    require_batch_memory(model, max(batches), ProfilingError)
    return threads, batches


def _load_partial(out: str, model: str, topo: topo_mod.Topology, jit: bool) -> Profile:
    try:
        prof = read_profile(out)
    except ProfileError as exc:
        raise ProfileError(
            f"cannot resume from {out}: it is not a readable profile ({exc}); "
            "move it away (nothing was changed) or choose another --out"
        ) from None
    if prof.model != model:
        raise ProfileError(f"cannot resume: {out} holds a profile of {prof.model!r}, not {model!r}; choose another --out")
    if prof.synthetic:
        raise ProfileError(f"cannot resume: {out} holds a synthetic profile; choose another --out")
    m = prof.machine
    if (m.cpu_model, m.logical_cores) != (topo.cpu_model, topo.logical):
        raise ProfileError(
            f"cannot resume: {out} was measured on {m.cpu_model or '?'} with {m.logical_cores} CPUs, "
            f"this process has {topo.cpu_model or '?'} with {topo.logical}; choose another --out"
        )
    meta = dict(prof.meta)
    if meta.get("runner.jit", "false") != str(bool(jit)).lower():
        raise ProfileError(
            f"cannot resume: {out} was measured with jit={meta.get('runner.jit')}, this run has jit={str(bool(jit)).lower()}"
        )
    return prof


def measure_profile(
    model: str,
    threads: Sequence[int] | None = None,
    batches: Sequence[int] | None = DEFAULT_BATCHES,
    repeats: int = DEFAULT_REPEATS,
    *,
    warmup: int = DEFAULT_WARMUP,
    out: str | None = None,
    interference: bool = True,
    progress: bool | None = None,
    stream=None,
    topology: topo_mod.Topology | None = None,
    seed: int = 0,
    jit: bool = False,
    min_seconds: float = DEFAULT_MIN_SECONDS,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    on_cell: Callable[[Cell, int, int], None] | None = None,
    replicas: int = 1,
) -> ProfilingResult:
    """Profile ``model`` on this machine (see the module docstring); the full result.

    ``replicas`` >= 1: each thread count's cells are timed in that many pools (separate
    worker processes), their samples pooled, so a cell is not one process's luck (on
    shared VMs the same cell differs by up to 2x between processes)."""
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        raise ProfilingError(f"replicas must be a positive integer, got {replicas!r}")
    t_begin = time.monotonic()
    topo = topology or topo_mod.detect()
    threads, batches = _validate(model, threads, batches, repeats, warmup, topo)
    max_samples = max(max_samples, repeats)
    stream = stream or sys.stderr
    enabled = progress if progress is not None else bool(getattr(stream, "isatty", lambda: False)())

    if out is not None:
        directory = os.path.dirname(os.path.abspath(out))
        if not os.path.isdir(directory):
            raise ProfilingError(f"cannot write {out!r}: the directory {directory!r} does not exist")
    old: Profile | None = None
    if out is not None and os.path.exists(out):
        old = _load_partial(out, model, topo, jit)
    cells: dict[tuple[int, int], Cell] = {} if old is None else {(c.threads, c.batch): c for c in old.cells}
    meta: dict[str, str] = {} if old is None else dict(old.meta)
    interf = None if old is None else old.interference
    todo = [(t, b) for t in threads for b in batches if (t, b) not in cells]
    resumed = tuple(k for k in ((t, b) for t in threads for b in batches) if k in cells)
    need_interference = interference and interf is None
    spec = get_spec(model)

    units = {k: (max(warmup, 1) + repeats) * k[1] / k[0] for k in todo}
    prog = Progress(sum(units.values()) or 1.0, len(todo), enabled, stream, label=f"{model} ")
    machine_extra: dict[str, str] = {}
    runtime = meta.get("runner.runtime", "")

    def snapshot(complete: bool) -> Profile:
        m = dict(meta)
        m.update({
            "runner.runtime": runtime or "eager",
            "runner.jit": str(bool(jit)).lower(),
            "runner.seed": str(seed),
            "runner.input_shape": "x".join(map(str, spec.input_shape)),
            "runner.warmup": str(warmup),
            "runner.repeats": str(repeats),
            "runner.min_seconds": str(min_seconds),
            "runner.replicas": str(replicas),
            "runner.requested_threads": ",".join(map(str, threads)),
            "runner.requested_batches": ",".join(map(str, batches)),
            "runner.complete": str(complete).lower(),
        })
        machine = topo.machine(**machine_extra) if machine_extra or old is None else old.machine
        return Profile(
            model=model,
            cells=tuple(cells.values()),
            machine=machine,
            statistic="median",
            synthetic=False,
            source=(
                f"measured on this machine by packrat profile ({topo.describe()}; {runtime or 'eager'}; "
                f"warm-up {warmup}, >= {repeats} repeats per cell, each cell timed through "
                f"{'a one-instance pool' if replicas == 1 else f'{replicas} one-instance pools (processes), samples pooled,'} "
                f"as the runner runs it, every sample kept)"
            ),
            interference=interf,
            meta=tuple(sorted(m.items())),
            dispatch=tuple((k, bb, ms) for (k, bb), ms in sorted(dispatch.items())),
        )

    measured: list[tuple[int, int]] = []
    dispatch: dict[tuple[int, int], float] = {} if old is None else {(k, bb): ms for k, bb, ms in old.dispatch}
    cell_dispatch: dict[int, list[float]] = {}
    rows: dict[int, list[int]] = {}
    for t, b in todo:
        rows.setdefault(t, []).append(b)
    try:
        from packrat_sim.plan import Instance, Plan
        from real_runner.executor import WorkerError

        idx = 0
        for t, row in rows.items():
            cores = tuple(topo_mod.assign_cores([t], topo, allow_span=True)[0])
            prog.update(f"t={t}: starting its pool")
            # one pool per thread count, sized for its largest sub-batch; smaller ones run
            # through the same worker and buffers (InstancePool.run(rows=b))
            try:
                pools = _start_pools(model, [Plan((Instance(t, max(row), cores),), max(row), t)] * replicas,
                                     topo, seed, jit, warmup)
            except WorkerError as exc:
                raise ProfilingWorkerError(str(exc)) from None
            try:
                for b in row:
                    if not runtime:
                        runtime = pools[0].runtime
                        machine_extra.update(_worker_settings(pools[0]))
                    prog.update(f"t={t} b={b}")
                    t0 = time.perf_counter()
                    inputs = make_inputs(model, b, seed + 2)
                    parts = []
                    for pool in pools:  # one after the other, never at the same time
                        if warmup > 0:  # warm this sub-batch size (the pool warmed up only the largest)
                            time_pool(pool, inputs, warmup, rows=b)
                        parts.append(time_pool(pool, inputs, -(-repeats // replicas), min_seconds / replicas,
                                               max(1, max_samples // replicas), rows=b))
                    got = merge_samples(parts)
                    busy = time.perf_counter() - t0
                    samples = [w[0] for w in got.worker_ms]
                    flagged = flag_outliers(samples)
                    if flagged:  # kept: contended samples are what real runs see
                        meta[f"outliers.t{t}.b{b}"] = json.dumps({
                            "flagged_ms": [round(samples[i], 4) for i in flagged], "kept": True,
                        })
                    context = list(got.context) + [("dispatch_ms", round(float(np.median(got.dispatch_ms)), 4))]
                    cell = Cell.from_samples(t, b, [max(round(x, 6), 1e-6) for x in samples], context=context)
                    cells[(t, b)] = cell
                    cell_dispatch.setdefault(b, []).append(float(np.median(got.dispatch_ms)))
                    measured.append((t, b))
                    for bb, ds in cell_dispatch.items():
                        dispatch[(1, bb)] = round(float(np.median(ds)), 4)
                    if out is not None:
                        write_profile(snapshot(complete=False), out)
                    prog.update(f"t={t} b={b}", units=units[(t, b)], busy_s=busy, done=True)
                    if on_cell is not None:
                        on_cell(cell, idx, len(todo))
                    idx += 1
            finally:
                for pool in pools:
                    pool.close()
        if need_interference:
            prog.update("co-run sweep")
            try:
                interf, raw, probe, points = _interference(model, topo, cells, batches, warmup, repeats, seed, jit)
            except WorkerError as exc:
                raise ProfilingWorkerError(str(exc)) from None
            dispatch.update(points)
            meta["interference.raw"] = json.dumps(raw)
            meta["interference.probe"] = probe
    finally:
        prog.finish()
    final = snapshot(complete=True)
    was_complete = old is not None and dict(old.meta).get("runner.complete") == "true"
    if out is not None and (measured or need_interference or not was_complete):
        write_profile(final, out)
    return ProfilingResult(
        profile=final,
        measured=tuple(measured),
        resumed=resumed,
        interference_measured=need_interference,
        elapsed_s=time.monotonic() - t_begin,
        out=out,
    )


def _worker_settings(pool) -> dict[str, str]:
    """The thread settings a pool's workers run with (recorded in the profile's machine)."""
    policy = getattr(pool, "omp_policy", "")
    out = dict(getattr(pool, "worker_settings", {}))
    out["omp_wait_policy"] = policy
    env = ",".join(f"{k}={v}" for k, v in topo_mod.OMP_POLICIES.get(policy, {}).items())
    if env:
        out["omp_env"] = env
    return out


def co_run_levels(max_instances: int) -> list[int]:
    """Instance counts of the interference sweep: 1, 2, the powers of two, and the maximum."""
    levels = {1, max_instances}
    if max_instances >= 2:
        levels.add(2)
    k = 4
    while k < max_instances:
        levels.add(k)
        k *= 2
    return sorted(levels)


def _corun_round(model, topo, levels, probe_b, cores, warmup, n, seed, jit):
    """One co-run pass: a pool of k one-thread instances (each on its own CPU, sub-batch
    ``probe_b``) per level k, all started side by side, measured one after the other as
    the runner runs them. Returns {k: PoolSamples}."""
    from packrat_sim.plan import Instance, Plan

    plans = [Plan(tuple(Instance(1, probe_b, (cores[i][0],)) for i in range(k)), k * probe_b, max(k, 1))
             for k in levels]
    pools = _start_pools(model, plans, topo, seed, jit, warmup)
    try:
        inputs = {k: make_inputs(model, k * probe_b, seed + 2) for k in levels}
        return {k: time_pool(pool, inputs[k], n) for k, pool in zip(levels, pools)}
    finally:
        for pool in pools:
            pool.close()


def _half_medians(xs: Sequence[float]) -> list[float]:
    """Medians of the first and second half of ``xs`` (one median when there are < 4)."""
    if len(xs) < 4:
        return [float(np.median(xs))]
    h = len(xs) // 2
    return [float(np.median(xs[:h])), float(np.median(xs[h:]))]


def _interference(model, topo, cells, batches, warmup, repeats, seed, jit):
    """Co-run sweep through pools (module doc): the busy-cores slowdown model, the raw
    ratios, a description of the probe, and dispatch points {(k, k * probe_b): ms}."""
    probe_b = batches[0]
    for b in batches:
        c = cells.get((1, b))
        if c is not None and c.stat("median") <= PROBE_MAX_MS:
            probe_b = max(probe_b, b)
    max_k = min(topo.logical, MAX_CORUN)
    levels = co_run_levels(max_k)
    cores = topo_mod.assign_cores([1] * max_k, topo)
    n = max(repeats, 5)
    observations: list[tuple[int, float]] = []
    raw: list = []
    dispatch: dict[tuple[int, int], list[float]] = {}
    base = None
    fitted = None
    rounds = 0
    for rounds in (1, 2):  # a second pass, pooled with the first, when the fit is poor
        got = _corun_round(model, topo, levels, probe_b, cores, warmup, n * rounds, seed, jit)
        for k, ps in got.items():
            dispatch.setdefault((k, k * probe_b), []).extend(ps.dispatch_ms)
        if base is None:
            base = float(np.median([w[0] for w in got[1].worker_ms]))
        for k, ps in got.items():
            if k == 1:
                continue
            slowest = [max(w) for w in ps.worker_ms]
            per_instance = [float(np.median([w[i] for w in ps.worker_ms])) for i in range(k)]
            raw.append([k - 1, round(float(np.median(slowest)) / base, 4), round(float(np.median(per_instance)) / base, 4)])
            observations += [(k - 1, m / base) for m in _half_medians(slowest)]
        if not observations:
            break
        fitted = fit_interference(observations)
        if fitted.fit_error is None or fitted.fit_error <= REFIT_ERROR:
            break
    points_d = {key: round(float(np.median(v)), 4) for key, v in dispatch.items()}
    probe = (
        f"t=1 b={probe_b}, {n} batches per pool, co-run through pools of k one-thread instances on CPUs "
        f"{[c[0] for c in cores]}, isolated median {base:.3f} ms, {rounds} pass(es)"
    )
    if fitted is None:  # a single usable CPU: nothing can run beside the probe
        return Interference(points=()), raw, probe, points_d
    points = tuple((k, max(1.0, round(s, 4))) for k, s in fitted.points)
    return Interference(points=points, fit_error=fitted.fit_error), raw, probe, points_d


def profile_model(
    model: str,
    threads: Sequence[int] | None = None,
    batches: Sequence[int] | None = DEFAULT_BATCHES,
    repeats: int = DEFAULT_REPEATS,
    **kwargs,
) -> Profile:
    """Profile ``model`` for ``threads`` x ``batches`` (threads default: 1..allowed CPUs) and
    return the :class:`Profile`. Keyword options as :func:`measure_profile` (``out``,
    ``interference``, ``warmup``, ``progress``, ``on_cell``, ...)."""
    return measure_profile(model, threads, batches, repeats, **kwargs).profile


def quick_profile(model: str, batch: int, cores: int, **kwargs) -> Profile:
    """The cells a plan for (batch, cores) needs, measured quickly: threads 1..cores,
    batches the powers of two up to ``batch``, 3 repeats."""
    kwargs.setdefault("repeats", 3)
    kwargs.setdefault("min_seconds", 0.1)
    return profile_model(model, list(range(1, cores + 1)), powers_of_two_upto(batch), **kwargs)


__all__ = [
    "DEFAULT_BATCHES",
    "DEFAULT_REPEATS",
    "ModelError",
    "PoolSamples",
    "ProfilingError",
    "ProfilingResult",
    "ProfilingWorkerError",
    "Progress",
    "co_run_levels",
    "flag_outliers",
    "measure_profile",
    "merge_samples",
    "parse_int_list",
    "powers_of_two_upto",
    "profile_model",
    "quick_profile",
]
