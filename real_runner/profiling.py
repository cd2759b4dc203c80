"""Measure a model's latency profile L[t, b] on this machine, and its co-run interference.

Isolated sweep (:func:`profile_model`): one ``spawn`` worker process builds the model
once; for every cell (t threads, b sub-batch) it pins all its threads to the t CPUs
the topology gives a t-thread instance (physical cores first), sets
``torch.set_num_threads(t)``, warms up (``warmup`` runs, at least one), then times
``repeats`` runs (more, up to ``max_samples``, until ``min_seconds`` have been spent, so
millisecond models get enough samples). Each cell records its samples; the profile's
statistic is the median. Outliers (further than max(3 scaled MADs, 20 %) from the
median) are flagged and re-measured, up to two rounds; what was replaced is recorded in
the profile's meta (``outliers.t{t}.b{b}``).

Resumable and loss-free: with ``out``, the profile is written atomically after every
cell. Running again with the same ``out`` reads it and measures only the missing cells
(same model, machine and runtime, else ProfileError); a file that does not parse is a
ProfileError that names it, and is left untouched. An exception or Ctrl-C stops the
worker and keeps everything written so far.

Interference sweep (``interference=True``): k = 1, 2, ... instances of one thread each,
every one pinned to its own CPU, run the probe cell (t=1, the largest profiled batch
whose isolated median is <= 500 ms) at the same time; each keeps running until all have
their samples, so every sample is taken under the full load. The slowdown beside
``(k - 1)`` other busy cores is the median over instances of their median latency,
divided by the median of the k = 1 run of the same sweep (packrat_sim.interference.
fit_interference, whose RMS relative error over the per-instance medians is stored as
the model's ``fit_error``). Stored as the profile's :class:`Interference` (slowdowns
below 1, i.e. noise, are stored as 1; raw values in meta ``interference.raw``).

Progress (a bar with an ETA) goes to stderr, only when it is a terminal or ``progress``
is True.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import wait as wait_any
from typing import Callable, Sequence

import numpy as np

from packrat_sim.interference import fit_interference
from packrat_sim.profile import Cell, Interference, Profile, ProfileError, read_profile, write_profile
from real_runner import topology as topo_mod
from real_runner.models import ModelError, build_model, get_spec, make_inputs

DEFAULT_BATCHES = (1, 2, 4, 8)
DEFAULT_REPEATS = 5
DEFAULT_WARMUP = 1
DEFAULT_MIN_SECONDS = 0.2
DEFAULT_MAX_SAMPLES = 50
OUTLIER_MADS = 3.0
OUTLIER_REL = 0.2
OUTLIER_ROUNDS = 2
PROBE_MAX_MS = 500.0
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


# ------------------------------------------------------------------------ worker


def _profiler_worker(conn, model: str, seed: int, jit: bool, go, stop) -> None:
    """Profiling worker main loop (spawned process)."""
    try:
        cores = sorted(os.sched_getaffinity(0))
        topo_mod.start_worker(cores, 1)
        import torch

        built = build_model(model, seed=seed, jit=jit)
        conn.send(("hello", topo_mod.thread_settings(), built.runtime))
        while True:
            msg = conn.recv()
            if msg[0] == "stop":
                return
            _, t, b, cores, warmup, n, min_s, max_n = msg[:8]
            topo_mod.pin_process(cores)
            torch.set_num_threads(t)
            x = make_inputs(model, b, seed + 1)
            with torch.inference_mode():
                t_warm = time.perf_counter()
                for _ in range(warmup):
                    built(x)
                if msg[0] == "measure":
                    samples: list[float] = []
                    t_start = time.perf_counter()
                    while len(samples) < n or (
                        time.perf_counter() - t_start < min_s and len(samples) < max_n
                    ):
                        t0 = time.perf_counter()
                        built(x)
                        samples.append((time.perf_counter() - t0) * 1e3)
                    conn.send(("samples", samples, time.perf_counter() - t_warm))
                elif msg[0] == "corun":
                    conn.send(("ready",))
                    go.wait()
                    samples = []
                    sent = False
                    while not (sent and stop.is_set()):
                        t0 = time.perf_counter()
                        built(x)
                        if not sent:
                            samples.append((time.perf_counter() - t0) * 1e3)
                            if len(samples) >= n:
                                conn.send(("samples", samples, 0.0))
                                sent = True
                    conn.send(("stopped",))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        return
    except BaseException as exc:
        try:
            conn.send(("error", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
        except Exception:
            pass


class _Workers:
    """Profiling workers sharing one pair of co-run events; always shut down on exit."""

    def __init__(self, model: str, seed: int, jit: bool) -> None:
        self.ctx = mp.get_context("spawn")
        self.model, self.seed, self.jit = model, seed, jit
        self.go, self.stop = self.ctx.Event(), self.ctx.Event()
        self.procs: list = []
        self.conns: list = []
        self.hello: list = []

    def spawn(self, count: int) -> None:
        new = []
        with topo_mod.ignoring_sigint():
            for _ in range(count):
                parent, child = self.ctx.Pipe()
                p = self.ctx.Process(
                    target=_profiler_worker, args=(child, self.model, self.seed, self.jit, self.go, self.stop),
                    daemon=True, name=f"packrat-profile-{self.model}",
                )
                p.start()
                child.close()
                self.procs.append(p)
                self.conns.append(parent)
                new.append(len(self.procs) - 1)
        self.hello.extend(self.receive(new, "hello"))

    def receive(self, which: Sequence[int], kind: str) -> list:
        pending = {self.conns[i]: i for i in which}
        sentinels = {self.procs[i].sentinel: i for i in which}
        got = {}
        while pending:
            for r in wait_any(list(pending) + list(sentinels)):
                if r in pending:
                    i = pending.pop(r)
                    try:
                        msg = r.recv()
                    except (EOFError, OSError):
                        self.procs[i].join(5.0)
                        raise ProfilingWorkerError(
                            f"profiling worker exited with code {self.procs[i].exitcode} (out of memory, or killed)"
                        ) from None
                    if msg[0] == "error":
                        raise ProfilingWorkerError(f"profiling worker failed: {msg[1]}")
                    if msg[0] != kind:
                        raise ProfilingWorkerError(f"profiling worker answered {msg[0]!r}, expected {kind!r}")
                    got[i] = msg
                elif r in sentinels:
                    i = sentinels.pop(r)
                    if self.conns[i] in pending and not self.conns[i].poll():
                        raise ProfilingWorkerError(
                            f"profiling worker exited with code {self.procs[i].exitcode} "
                            "(out of memory, or killed)"
                        )
        return [got[i] for i in which]

    def measure(self, t: int, b: int, cores, warmup: int, n: int, min_s: float, max_n: int) -> tuple[list[float], float]:
        self.conns[0].send(("measure", t, b, tuple(cores), warmup, n, min_s, max_n))
        msg = self.receive([0], "samples")[0]
        return list(msg[1]), float(msg[2])

    def corun(self, k: int, b: int, cores: Sequence[tuple[int, ...]], warmup: int, n: int) -> list[list[float]]:
        self.go.clear()
        self.stop.clear()
        which = list(range(k))
        for i in which:
            self.conns[i].send(("corun", 1, b, tuple(cores[i]), warmup, n, 0.0, n))
        self.receive(which, "ready")
        self.go.set()
        samples = [list(m[1]) for m in self.receive(which, "samples")]
        self.stop.set()
        self.receive(which, "stopped")
        return samples

    def close(self) -> None:
        from real_runner.executor import _shutdown

        _shutdown(self.procs, self.conns)


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
    interference: bool = False,
    progress: bool | None = None,
    stream=None,
    topology: topo_mod.Topology | None = None,
    seed: int = 0,
    jit: bool = False,
    min_seconds: float = DEFAULT_MIN_SECONDS,
    max_samples: int = DEFAULT_MAX_SAMPLES,
    on_cell: Callable[[Cell, int, int], None] | None = None,
) -> ProfilingResult:
    """Profile ``model`` on this machine (see the module docstring); the full result."""
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
                f"warm-up {warmup}, >= {repeats} repeats per cell, each cell in a worker pinned to its cores)"
            ),
            interference=interf,
            meta=tuple(sorted(m.items())),
        )

    measured: list[tuple[int, int]] = []
    workers = _Workers(model, seed, jit) if (todo or need_interference) else None
    try:
        if workers is not None:
            # Every worker the run needs starts now, side by side (their imports overlap).
            prog.update("starting workers" if need_interference else "starting worker")
            workers.spawn(min(topo.logical, MAX_CORUN) if need_interference else 1)
            settings, runtime = workers.hello[0][1], workers.hello[0][2]
            machine_extra.update(settings)
        for idx, (t, b) in enumerate(todo):
            cores = topo_mod.assign_cores([t], topo, allow_span=True)[0]
            prog.update(f"t={t} b={b}")
            samples, busy = workers.measure(t, b, cores, max(warmup, 1), repeats, min_seconds, max_samples)
            flagged: list[float] = []
            remeasured = 0
            for _ in range(OUTLIER_ROUNDS):
                bad = flag_outliers(samples)
                if not bad:
                    break
                flagged.extend(samples[i] for i in bad)
                bad_set = set(bad)
                keep = [s for i, s in enumerate(samples) if i not in bad_set]
                more, extra_s = workers.measure(t, b, cores, 0, len(bad), 0.0, len(bad))
                busy += extra_s
                remeasured += len(bad)
                samples = keep + more
            if flagged:
                meta[f"outliers.t{t}.b{b}"] = json.dumps({
                    "flagged_ms": [round(x, 4) for x in flagged],
                    "remeasured": remeasured,
                    "still_flagged": len(flag_outliers(samples)),
                })
            cell = Cell.from_samples(t, b, [round(s, 6) for s in samples])
            cells[(t, b)] = cell
            measured.append((t, b))
            if out is not None:
                write_profile(snapshot(complete=False), out)
            prog.update(f"t={t} b={b}", units=units[(t, b)], busy_s=busy, done=True)
            if on_cell is not None:
                on_cell(cell, idx, len(todo))
        if need_interference:
            prog.update("interference sweep")
            interf, raw, probe = _interference(workers, topo, cells, batches, warmup, repeats)
            meta["interference.raw"] = json.dumps(raw)
            meta["interference.probe"] = probe
    finally:
        if workers is not None:
            workers.close()
        prog.finish()
    final = snapshot(complete=True)
    if out is not None and (measured or need_interference or old is None):
        write_profile(final, out)
    return ProfilingResult(
        profile=final,
        measured=tuple(measured),
        resumed=resumed,
        interference_measured=need_interference,
        elapsed_s=time.monotonic() - t_begin,
        out=out,
    )


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


def _interference(workers: _Workers, topo, cells, batches, warmup, repeats) -> tuple[Interference, list, str]:
    probe_b = batches[0]
    for b in batches:
        c = cells.get((1, b))
        if c is not None and c.stat("median") <= PROBE_MAX_MS:
            probe_b = max(probe_b, b)
    max_k = min(topo.logical, MAX_CORUN)
    levels = co_run_levels(max_k)
    if max_k > len(workers.procs):
        workers.spawn(max_k - len(workers.procs))
    cores = topo_mod.assign_cores([1] * max_k, topo)
    n = max(repeats, 5)
    base = None
    raw, observations = [], []
    for k in levels:
        samples = workers.corun(k, probe_b, cores, max(warmup, 1), n)
        medians = [float(np.median(s)) for s in samples]
        med = float(np.median(medians))
        if k == 1:
            base = med
            continue
        raw.append([k - 1, round(med / base, 4)])
        observations += [(k - 1, m / base) for m in medians]
    probe = f"t=1 b={probe_b}, {n} samples per instance, instances on CPUs {[c[0] for c in cores]}, isolated median {base:.3f} ms"
    if not observations:  # a single usable CPU: nothing can run beside the probe
        return Interference(points=()), raw, probe
    fitted = fit_interference(observations)  # medians per core count + RMS relative fit error
    points = tuple((k, max(1.0, round(s, 4))) for k, s in fitted.points)
    return Interference(points=points, fit_error=fitted.fit_error), raw, probe


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
    "DEFAULT_BATCHES", "DEFAULT_REPEATS", "ModelError", "Progress", "ProfilingError", "ProfilingResult",
    "ProfilingWorkerError", "co_run_levels", "flag_outliers", "measure_profile", "parse_int_list",
    "powers_of_two_upto", "profile_model", "quick_profile",
]
