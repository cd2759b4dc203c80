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
worker and keeps everything written so far. One process at a time measures into an
``out``: a second one is refused at once (ProfilingError naming the first's pid), so two
runs never each keep only their own cells.

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

Progress (:class:`ProfilingProgress`, drawn by :class:`packrat_sim.progress.ProgressBar`)
goes to stderr, only when it is a terminal or ``progress`` is True. The whole job is
declared up front (the cells, their pool starts and the co-run sweep's first pass; a second
pass is added when it runs), so the ETA covers the co-run sweep too.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from packrat_sim import spec as grammar
from packrat_sim import validate
from packrat_sim.errors import PackratError
from packrat_sim.files import OutputPathError, output_lock
from packrat_sim.interference import fit_interference
from packrat_sim.profile import Cell, Interference, Profile, ProfileError, read_profile, write_profile
from packrat_sim.progress import ProgressBar
from real_runner import topology as topo_mod
from real_runner.models import ModelCatalogError, get_spec, make_inputs, require_batch_memory

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


class ProfilingError(PackratError):
    """Bad profiler input (grid, repeats); names the value."""


# ----------------------------------------------------------------------- parsing


def parse_int_list(spec: str, what: str) -> list[int]:
    """``"1-4"``, ``"1,2,4"``, ``"1-2,8"`` -> sorted distinct positive ints; ProfilingError otherwise.

    The grammar is :func:`packrat_sim.spec.parse_int_list` (its sorted, de-duplicated dialect)."""
    return grammar.parse_int_list(spec, what, sort_unique=True, error=ProfilingError)


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


def cell_units(t: int, b: int, warmup: int, repeats: int) -> float:
    """The work of measuring cell (t threads, b sub-batch), in one-thread sample-batches:
    (warm-up + timed batches) x b / t. An estimate for the ETA only. Pure."""
    return (max(warmup, 1) + repeats) * b / t


def corun_units(levels: Sequence[int], batches_per_pool: int, probe_b: int) -> float:
    """The work of one co-run pass in the units of :func:`cell_units`: every level runs
    ``batches_per_pool`` batches whose instances each run ``probe_b`` on one thread, side by
    side. Pure."""
    return float(len(levels) * batches_per_pool * probe_b)


def start_weight(processes: int, cpus: int) -> float:
    """The cost of starting ``processes`` worker processes side by side on ``cpus`` CPUs, in
    starts of one (a start is mostly CPU-bound imports): max(1, processes / cpus). Pure."""
    return max(1.0, processes / max(cpus, 1))


def _time_left(left: float, done: float, spent_s: float) -> float | None:
    """Seconds for ``left`` more work at the pace of ``done`` work in ``spent_s`` (0 when
    nothing is left; None before any pace is known). Pure."""
    if left <= 1e-9:
        return 0.0
    if done <= 0 or spent_s <= 0:
        return None
    return left * spent_s / done


class ProfilingProgress:
    """Where a profiling job stands and how long the rest takes, drawn on ``stream``
    (stderr) by :class:`packrat_sim.progress.ProgressBar`; nothing unless ``enabled``.

    The job is compute (``total_units``, see :func:`cell_units`, :func:`corun_units`) and
    pool starts (``starts``, see :func:`start_weight`); its steps are the cells
    (``total_cells``) and the co-run runs (``runs``, one per pool timed). The ETA covers
    the whole job: compute left at the seconds per unit measured so far plus starts left
    at the seconds per start measured so far (None until each kind left has been seen
    once). :meth:`expect` adds work found later (or withdraws an over-estimate)."""

    def __init__(self, total_units: float, total_cells: int, enabled: bool, stream=None, label: str = "", *,
                 starts: float = 0.0, runs: int = 0) -> None:
        self.enabled = enabled
        self.total_units, self.total_cells = float(total_units), total_cells
        self.total_starts, self.total_runs = float(starts), runs
        self.units = self.busy_s = self.starts = self.start_s = 0.0
        self.cells = self.runs = 0
        self._bar = ProgressBar(label.strip() or "profile", total_cells + runs, enabled=enabled, stream=stream,
                                external_eta=True)

    def eta_s(self) -> float | None:
        """Seconds left for the whole job (None until a pace is known for what is left)."""
        compute = _time_left(self.total_units - self.units, self.units, self.busy_s)
        starts = _time_left(self.total_starts - self.starts, self.starts, self.start_s)
        return None if compute is None or starts is None else compute + starts

    def expect(self, *, units: float = 0.0, starts: float = 0.0, runs: int = 0) -> None:
        """Add work to the job (negative ``units``: withdraw an over-estimate)."""
        self.total_units = max(self.units, self.total_units + units)
        self.total_starts += starts
        self.total_runs += runs

    def started(self, what: str, seconds: float, weight: float = 1.0) -> None:
        """A group of pools started in ``seconds`` (``weight`` starts, see :func:`start_weight`)."""
        self.starts += weight
        self.start_s += seconds
        self._draw(what)

    def update(self, what: str, units: float = 0.0, busy_s: float = 0.0, done: bool = False,
               ran: bool = False) -> None:
        """Now doing ``what``; ``units`` of compute took ``busy_s`` seconds; a cell is
        ``done`` or a co-run run ``ran``."""
        self.units += units
        self.busy_s += busy_s
        self.cells += int(done)
        self.runs += int(ran)
        self._draw(what)

    def _draw(self, what: str) -> None:
        corun = f", {self.runs}/{self.total_runs} co-run runs" if self.total_runs else ""
        self._bar.update(completed=self.cells + self.runs, total=self.total_cells + self.total_runs,
                         text=f"{self.cells}/{self.total_cells} cells{corun}: {what}", eta_s=self.eta_s())

    def finish(self) -> None:
        """Close the bar (the line stays on a terminal)."""
        self._bar.close()


# ---------------------------------------------------------------------- profiler


@dataclass(frozen=True)
class ProfilingSettings:
    """What one profiling run measures and how (validated by :func:`measure_profile`):
    the grid, the timing of a cell (warm-up, repeats, ``min_seconds`` of timing, at most
    ``max_samples``, over ``replicas`` pools) and the runner's options (seed, jit)."""

    model: str
    threads: tuple[int, ...]
    batches: tuple[int, ...]
    repeats: int
    warmup: int
    min_seconds: float
    max_samples: int
    replicas: int
    seed: int
    jit: bool


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
        validate.positive_int(b, "batches", error=ProfilingError, expected="positive integers")
    for name, v, lo in (("repeats", repeats, 1), ("warmup", warmup, 0)):
        validate.integer(v, name, low=lo, error=ProfilingError)
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


def _check_out_dir(out: str | None) -> None:
    """ProfilingError naming ``out`` when its directory does not exist (checked before any work)."""
    if out is None:
        return
    directory = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(directory):
        raise ProfilingError(f"cannot write {out!r}: the directory {directory!r} does not exist")


def plan_cells(threads: Sequence[int], batches: Sequence[int],
               done: Collection[tuple[int, int]]) -> dict[int, list[int]]:
    """The cells still to measure, by thread count: {t: [b, ...]} in grid order (threads,
    then batches), leaving out the (t, b) in ``done``; thread counts with nothing left are
    absent. Pure."""
    rows: dict[int, list[int]] = {}
    for t in threads:
        for b in batches:
            if (t, b) not in done:
                rows.setdefault(t, []).append(b)
    return rows


def cell_from_samples(t: int, b: int, got: PoolSamples) -> tuple[Cell, dict[str, str]]:
    """Cell (t, b) from one instance's timed batches (``got``): every compute sample kept
    (ms, at least 1e-6), its conditions and median dispatch cost as context; plus the meta
    entry that flags its outliers (``outliers.t{t}.b{b}``; none when there are none). Pure."""
    samples = [w[0] for w in got.worker_ms]
    flagged = flag_outliers(samples)
    notes = {}
    if flagged:  # kept: contended samples are what real runs see
        notes[f"outliers.t{t}.b{b}"] = json.dumps({"flagged_ms": [round(samples[i], 4) for i in flagged], "kept": True})
    context = list(got.context) + [("dispatch_ms", round(float(np.median(got.dispatch_ms)), 4))]
    return Cell.from_samples(t, b, [max(round(x, 6), 1e-6) for x in samples], context=context), notes


@dataclass
class _Job:
    """The running state of one :func:`measure_profile` call: the profile being built (the
    existing file's cells, dispatch costs, interference and meta kept) and what was measured
    now. Mutable; owned by measure_profile and its steps."""

    settings: ProfilingSettings
    topo: topo_mod.Topology
    old: Profile | None
    cells: dict[tuple[int, int], Cell] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)
    dispatch: dict[tuple[int, int], float] = field(default_factory=dict)
    interference: Interference | None = None
    runtime: str = ""
    machine_extra: dict[str, str] = field(default_factory=dict)
    measured: list[tuple[int, int]] = field(default_factory=list)
    cell_dispatch: dict[int, list[float]] = field(default_factory=dict)

    @classmethod
    def resume(cls, settings: ProfilingSettings, topo: topo_mod.Topology, old: Profile | None) -> _Job:
        """A job that starts from ``old`` (the existing file's profile; None: from nothing)."""
        if old is None:
            return cls(settings, topo, None)
        meta = dict(old.meta)
        return cls(settings, topo, old, cells={(c.threads, c.batch): c for c in old.cells}, meta=meta,
                   dispatch={(k, bb): ms for k, bb, ms in old.dispatch}, interference=old.interference,
                   runtime=meta.get("runner.runtime", ""))

    def note_runtime(self, pool) -> None:
        """Record the runtime and thread settings of the first pool that started (once)."""
        if not self.runtime:
            self.runtime = pool.runtime
            self.machine_extra.update(_worker_settings(pool))

    def record_cell(self, t: int, b: int, got: PoolSamples) -> Cell:
        """Keep cell (t, b) timed as ``got`` (outliers flagged in meta) and recompute the
        dispatch cost of one instance per sub-batch (median over the cells of that b)."""
        cell, notes = cell_from_samples(t, b, got)
        self.meta.update(notes)
        self.cells[(t, b)] = cell
        self.cell_dispatch.setdefault(b, []).append(float(np.median(got.dispatch_ms)))
        self.measured.append((t, b))
        for bb, ds in self.cell_dispatch.items():
            self.dispatch[(1, bb)] = round(float(np.median(ds)), 4)
        return cell

    def snapshot(self, complete: bool) -> Profile:
        """The profile as it stands (``runner.complete`` says whether the run finished)."""
        s, topo, runtime = self.settings, self.topo, self.runtime
        m = dict(self.meta)
        m.update({
            "runner.runtime": runtime or "eager",
            "runner.jit": str(bool(s.jit)).lower(),
            "runner.seed": str(s.seed),
            "runner.input_shape": "x".join(map(str, get_spec(s.model).input_shape)),
            "runner.warmup": str(s.warmup),
            "runner.repeats": str(s.repeats),
            "runner.min_seconds": str(s.min_seconds),
            "runner.replicas": str(s.replicas),
            "runner.requested_threads": ",".join(map(str, s.threads)),
            "runner.requested_batches": ",".join(map(str, s.batches)),
            "runner.complete": str(complete).lower(),
        })
        machine = topo.machine(**self.machine_extra) if self.machine_extra or self.old is None else self.old.machine
        pools = "a one-instance pool" if s.replicas == 1 else f"{s.replicas} one-instance pools (processes), samples pooled,"
        return Profile(
            model=s.model,
            cells=tuple(self.cells.values()),
            machine=machine,
            statistic="median",
            synthetic=False,
            source=(
                f"measured on this machine by packrat profile ({topo.describe()}; {runtime or 'eager'}; "
                f"warm-up {s.warmup}, >= {s.repeats} repeats per cell, each cell timed through {pools} "
                "as the runner runs it, every sample kept)"
            ),
            interference=self.interference,
            meta=tuple(sorted(m.items())),
            dispatch=tuple((k, bb, ms) for (k, bb), ms in sorted(self.dispatch.items())),
        )


def _plan_progress(job: _Job, rows: dict[int, list[int]], need_interference: bool, enabled: bool,
                   stream) -> tuple[ProfilingProgress, int]:
    """The progress of the whole job, declared up front: the cells of ``rows`` and their
    pool starts, and (``need_interference``) the co-run sweep's first pass, sized with the
    probe sub-batch the cells measured so far suggest. Returns it and that probe estimate."""
    s, cpus = job.settings, job.topo.logical
    todo = {(t, b) for t, row in rows.items() for b in row}
    prog = ProfilingProgress(sum(cell_units(t, b, s.warmup, s.repeats) for t, b in todo), len(todo), enabled,
                             stream, label=f"{s.model} ", starts=len(rows) * start_weight(s.replicas, cpus))
    probe = probe_batch(job.cells, s.batches, pending=todo)
    if need_interference:
        levels = co_run_levels(min(cpus, MAX_CORUN))
        prog.expect(units=corun_units(levels, corun_batches(s.repeats), probe),
                    starts=start_weight(sum(levels), cpus), runs=len(levels))
    return prog, probe


def _start_row_pools(job: _Job, t: int, row: Sequence[int], prog: ProfilingProgress) -> list:
    """Start the ``replicas`` pools that time thread count ``t``: one t-thread instance on
    the CPUs the topology gives it, sized for the largest sub-batch of ``row`` (smaller
    ones run through the same worker and buffers: InstancePool.run(rows=b))."""
    from packrat_sim.plan import Instance, Plan
    from real_runner.executor import WorkerError

    s = job.settings
    cores = tuple(topo_mod.assign_cores([t], job.topo, allow_span=True)[0])
    prog.update(f"t={t}: starting its pool")
    t0 = time.monotonic()
    try:
        pools = _start_pools(s.model, [Plan((Instance(t, max(row), cores),), max(row), t)] * s.replicas,
                             job.topo, s.seed, s.jit, s.warmup)
    except WorkerError as exc:
        raise ProfilingWorkerError(str(exc)) from None
    prog.started(f"t={t}: pool started", time.monotonic() - t0, start_weight(s.replicas, job.topo.logical))
    return pools


def _time_cell(pools: Sequence, s: ProfilingSettings, b: int) -> PoolSamples:
    """Time sub-batch ``b`` on each pool, one after the other, never at the same time
    (each warmed up for this size first), as one PoolSamples."""
    inputs = make_inputs(s.model, b, s.seed + 2)
    parts = []
    for pool in pools:
        if s.warmup > 0:  # warm this sub-batch size (the pool warmed up only the largest)
            time_pool(pool, inputs, s.warmup, rows=b)
        parts.append(time_pool(pool, inputs, -(-s.repeats // s.replicas), s.min_seconds / s.replicas,
                               max(1, s.max_samples // s.replicas), rows=b))
    return merge_samples(parts)


def _measure_isolated(job: _Job, rows: dict[int, list[int]], prog: ProfilingProgress, out: str | None,
                      on_cell: Callable[[Cell, int, int], None] | None) -> None:
    """Measure the cells of ``rows`` into ``job``, one thread count's pools at a time; after
    each cell the profile so far is written to ``out`` (atomically), then ``on_cell(cell,
    index, total)`` is called. An exception stops the pools; what was written stays."""
    s, index, total = job.settings, 0, sum(len(row) for row in rows.values())
    for t, row in rows.items():
        pools = _start_row_pools(job, t, row, prog)
        try:
            job.note_runtime(pools[0])
            for b in row:
                prog.update(f"t={t} b={b}")
                t0 = time.perf_counter()
                got = _time_cell(pools, s, b)
                busy = time.perf_counter() - t0
                cell = job.record_cell(t, b, got)
                if out is not None:
                    write_profile(job.snapshot(complete=False), out)
                prog.update(f"t={t} b={b}", units=cell_units(t, b, s.warmup, s.repeats), busy_s=busy, done=True)
                if on_cell is not None:
                    on_cell(cell, index, total)
                index += 1
        finally:
            for pool in pools:
                pool.close()


def _measure_corun(job: _Job, prog: ProfilingProgress, planned_probe: int) -> None:
    """Run the co-run sweep (module docstring) into ``job``: its interference model, the
    dispatch costs of k instances, and the raw ratios and probe in meta."""
    from real_runner.executor import WorkerError

    prog.update("co-run sweep")
    try:
        interf, raw, probe, points = _interference(job.settings, job.topo, job.cells, prog, planned_probe)
    except WorkerError as exc:
        raise ProfilingWorkerError(str(exc)) from None
    job.interference = interf
    job.dispatch.update(points)
    job.meta["interference.raw"] = json.dumps(raw)
    job.meta["interference.probe"] = probe


def _write_final(job: _Job, out: str | None, need_interference: bool) -> Profile:
    """The complete profile; written to ``out`` unless that file already holds it all."""
    final = job.snapshot(complete=True)
    was_complete = job.old is not None and dict(job.old.meta).get("runner.complete") == "true"
    if out is not None and (job.measured or need_interference or not was_complete):
        write_profile(final, out)
    return final


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

    Steps: validate the grid; resume from ``out`` when it exists; plan the missing cells;
    measure them (written to ``out`` after each); run the co-run sweep unless the profile
    has one or ``interference`` is False; write the complete profile. ``replicas`` >= 1:
    each thread count's cells are timed in that many pools (separate worker processes),
    their samples pooled, so a cell is not one process's luck (on shared VMs the same cell
    differs by up to 2x between processes). ``progress``: a bar on ``stream`` (stderr) whose
    ETA covers the whole job (default: when ``stream`` is a terminal)."""
    validate.positive_int(replicas, "replicas", error=ProfilingError)
    t_begin = time.monotonic()
    topo = topology or topo_mod.detect()
    threads, batches = _validate(model, threads, batches, repeats, warmup, topo)
    settings = ProfilingSettings(model, tuple(threads), tuple(batches), repeats, warmup, min_seconds,
                                 max(max_samples, repeats), replicas, seed, jit)
    stream = stream or sys.stderr
    enabled = progress if progress is not None else bool(getattr(stream, "isatty", lambda: False)())
    _check_out_dir(out)
    with _holding(out):  # two processes measuring into one file would each keep only its own cells
        old = _load_partial(out, model, topo, jit) if out is not None and os.path.exists(out) else None
        job = _Job.resume(settings, topo, old)
        rows = plan_cells(threads, batches, job.cells)
        resumed = tuple((t, b) for t in threads for b in batches if (t, b) in job.cells)
        need_interference = interference and job.interference is None
        prog, planned_probe = _plan_progress(job, rows, need_interference, enabled, stream)
        try:
            _measure_isolated(job, rows, prog, out, on_cell)
            if need_interference:
                _measure_corun(job, prog, planned_probe)
        finally:
            prog.finish()
        return ProfilingResult(
            profile=_write_final(job, out, need_interference),
            measured=tuple(job.measured),
            resumed=resumed,
            interference_measured=need_interference,
            elapsed_s=time.monotonic() - t_begin,
            out=out,
        )


@contextlib.contextmanager
def _holding(out: str | None) -> Iterator[None]:
    """Hold ``out`` for this measurement (``packrat_sim.files.output_lock``): another process
    measuring into the same file is refused at once, naming this one's pid (ProfilingError),
    instead of both resuming from the same file and each writing only its own cells."""
    with contextlib.ExitStack() as stack:
        if out is not None:
            try:
                stack.enter_context(output_lock(out, "--out"))
            except OutputPathError as exc:
                raise ProfilingError(str(exc)) from None
        yield


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


def corun_batches(repeats: int) -> int:
    """Batches each co-run pool runs in the first pass: max(repeats, 5). Pure."""
    return max(repeats, 5)


def probe_batch(cells: Mapping[tuple[int, int], Cell], batches: Sequence[int],
                pending: Collection[tuple[int, int]] = ()) -> int:
    """The co-run probe's sub-batch: the largest of ``batches`` (ascending) whose t=1 cell
    has a median <= PROBE_MAX_MS, a t=1 cell still ``pending`` counting as fast (the
    up-front estimate); the first batch when none is. Pure."""
    probe_b = batches[0]
    for b in batches:
        c = cells.get((1, b))
        if (1, b) in pending or (c is not None and c.stat("median") <= PROBE_MAX_MS):
            probe_b = max(probe_b, b)
    return probe_b


def _corun_round(s: ProfilingSettings, topo: topo_mod.Topology, levels: Sequence[int], probe_b: int,
                 cores: Sequence[Sequence[int]], n: int, prog: ProfilingProgress) -> dict[int, PoolSamples]:
    """One co-run pass: a pool of k one-thread instances (each on its own CPU, sub-batch
    ``probe_b``) per level k, all started side by side, each timed for ``n`` batches one
    after the other as the runner runs them. Returns {k: PoolSamples}."""
    from packrat_sim.plan import Instance, Plan

    plans = [Plan(tuple(Instance(1, probe_b, (cores[i][0],)) for i in range(k)), k * probe_b, max(k, 1))
             for k in levels]
    t0 = time.monotonic()
    pools = _start_pools(s.model, plans, topo, s.seed, s.jit, s.warmup)
    prog.started("co-run sweep: pools started", time.monotonic() - t0, start_weight(sum(levels), topo.logical))
    try:
        inputs = {k: make_inputs(s.model, k * probe_b, s.seed + 2) for k in levels}
        got = {}
        for k, pool in zip(levels, pools):
            what = f"co-run sweep: {k} instance(s) side by side"
            prog.update(what)
            t1 = time.perf_counter()
            got[k] = time_pool(pool, inputs[k], n)
            prog.update(what, units=n * probe_b, busy_s=time.perf_counter() - t1, ran=True)
        return got
    finally:
        for pool in pools:
            pool.close()


def _half_medians(xs: Sequence[float]) -> list[float]:
    """Medians of the first and second half of ``xs`` (one median when there are < 4)."""
    if len(xs) < 4:
        return [float(np.median(xs))]
    h = len(xs) // 2
    return [float(np.median(xs[:h])), float(np.median(xs[h:]))]


def round_ratios(got: Mapping[int, PoolSamples], base_ms: float) -> tuple[list[list[float]], list[tuple[int, float]]]:
    """What one co-run pass ({k: samples}) says, against the isolated median ``base_ms``:
    raw rows ``[k - 1, slowest / base, typical instance / base]`` and the observations
    ``(k - 1, slowdown)`` of the slowest instance over the first and the second half of
    the batches (k = 1 is the baseline and gives none). Pure."""
    raw: list[list[float]] = []
    observations: list[tuple[int, float]] = []
    for k, ps in got.items():
        if k == 1:
            continue
        slowest = [max(w) for w in ps.worker_ms]
        per_instance = [float(np.median([w[i] for w in ps.worker_ms])) for i in range(k)]
        raw.append([k - 1, round(float(np.median(slowest)) / base_ms, 4),
                    round(float(np.median(per_instance)) / base_ms, 4)])
        observations += [(k - 1, m / base_ms) for m in _half_medians(slowest)]
    return raw, observations


def _interference(s: ProfilingSettings, topo: topo_mod.Topology, cells: Mapping[tuple[int, int], Cell],
                  prog: ProfilingProgress, planned_probe: int):
    """Co-run sweep through pools (module doc): the busy-cores slowdown model, the raw
    ratios, a description of the probe, and dispatch points {(k, k * probe_b): ms}.
    ``planned_probe``: the probe the progress was sized with (corrected here)."""
    probe_b = probe_batch(cells, s.batches)
    max_k = min(topo.logical, MAX_CORUN)
    levels = co_run_levels(max_k)
    cores = topo_mod.assign_cores([1] * max_k, topo)
    n = corun_batches(s.repeats)
    prog.expect(units=corun_units(levels, n, probe_b) - corun_units(levels, n, planned_probe))
    observations: list[tuple[int, float]] = []
    raw: list = []
    dispatch: dict[tuple[int, int], list[float]] = {}
    base = None
    fitted = None
    rounds = 0
    for rounds in (1, 2):  # a second pass, pooled with the first, when the fit is poor
        if rounds == 2:
            prog.expect(units=corun_units(levels, 2 * n, probe_b), starts=start_weight(sum(levels), topo.logical),
                        runs=len(levels))
        got = _corun_round(s, topo, levels, probe_b, cores, n * rounds, prog)
        for k, ps in got.items():
            dispatch.setdefault((k, k * probe_b), []).extend(ps.dispatch_ms)
        if base is None:
            base = float(np.median([w[0] for w in got[1].worker_ms]))
        more_raw, more_obs = round_ratios(got, base)
        raw += more_raw
        observations += more_obs
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
    points = tuple((k, max(1.0, round(slow, 4))) for k, slow in fitted.points)
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
    "ModelCatalogError",
    "PoolSamples",
    "ProfilingError",
    "ProfilingResult",
    "ProfilingProgress",
    "ProfilingSettings",
    "ProfilingWorkerError",
    "cell_from_samples",
    "cell_units",
    "co_run_levels",
    "corun_batches",
    "corun_units",
    "flag_outliers",
    "measure_profile",
    "merge_samples",
    "parse_int_list",
    "plan_cells",
    "powers_of_two_upto",
    "probe_batch",
    "profile_model",
    "quick_profile",
    "round_ratios",
    "start_weight",
]
