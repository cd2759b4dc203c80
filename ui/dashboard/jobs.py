"""Long dashboard work (exploring, checking, measuring, benchmarks, simulations) in a
child process that Cancel really stops.

No streamlit here: :class:`Job` starts ``target(progress, **kwargs)`` in a child process,
hands its progress snapshots and its result (or exception) back through a queue, and
:meth:`Job.cancel` terminates the child (SIGTERM, then SIGKILL), so a cancelled
exploration stops using a CPU at once instead of running to the end of its budget.
``ui.dashboard.state.run_job`` draws it with a progress bar and a Cancel button.

The child is forked from a warm job server (multiprocessing's forkserver, through
``packrat_sim.engines.spawn.process_context``) that imported :data:`PRELOAD` once: a job
starts in milliseconds instead of paying a fresh interpreter and the libraries' imports
(seconds) every time, and each job is still its own process that Cancel kills. ``app.py``
starts the server with the app (:func:`warm`). Where the platform has no forkserver, jobs
are spawned as before.

The targets below are module-level functions (a spawn child imports them by name). Each
takes ``progress`` first: a callable taking keyword counters (``schedules``, ``states``,
``cells``, ``fraction``, ``text``, ...), sent a few times per second at most.

Setting ``PACKRAT_UI_JOBS=thread`` runs the target in a thread of this process instead
(tests that replace library functions with fakes need that; a thread cannot be
cancelled, so the dashboard itself always uses processes).
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import pickle
import queue
import signal
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, is_dataclass
from multiprocessing.process import BaseProcess
from typing import Any

from packrat_sim.engines.spawn import process_context, start_process, watch_parent

MODE_ENV = "PACKRAT_UI_JOBS"
MIN_INTERVAL_S = 0.2  # at most ~5 progress snapshots a second cross the queue

#: What the warm job server imports once, before its first job (the local engine's workers,
#: which fork from the same server, are among them): the libraries every job target calls.
PRELOAD = ("numpy", "simpy", "packrat_sim.simulator", "packrat_sim.engines.local", "packrat_sim.optimizer",
           "packrat_sim.predictor", "checker.explore", "checker.protocols", "checker.history",
           "checker.linearizability", "checker.allocation", "ui.dashboard.jobs")


@contextlib.contextmanager
def without_main() -> Iterator[None]:
    """While starting a job (or the job server): ``__main__`` is a bare module. A child of
    multiprocessing re-runs the starter's ``__main__`` from its file, and in a Streamlit run
    that is ``app.py``: every job would run the whole app (in bare mode, without a session)
    before its own work. The targets live in this module; a job never needs the app's main."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def job_context():
    """The multiprocessing context jobs start in: the warm forkserver (spawn where the
    platform has none)."""
    return process_context(None, PRELOAD)


def warm() -> bool:
    """Start the job server now (and its imports, in the background), so the first job does
    not wait for them; True when there is one (a forkserver), False on spawn-only platforms
    and in a child process (a worker that re-ran the app as its main starts no server)."""
    import multiprocessing

    if multiprocessing.parent_process() is not None or getattr(multiprocessing.current_process(), "_inheriting", False):
        return False  # a child (or one still bootstrapping: it may be re-running the app as its main)
    ctx = job_context()
    if ctx.get_start_method() != "forkserver":
        return False
    from multiprocessing import forkserver

    with without_main():
        forkserver.ensure_running()
    return True


class JobFailed(RuntimeError):
    """The child died without a result (killed, crashed); the message says how."""


@dataclass
class Snapshot:
    """The latest progress of a job: counters as sent by the target, and the wall clock."""

    counters: dict = field(default_factory=dict)
    elapsed_s: float = 0.0
    live: bool = False  # True once the target sent at least one snapshot

    def describe(self, budget_s: float | None = None) -> tuple[float, str]:
        """(fraction 0..1, one line) for a progress bar. Counters win over the clock."""
        c = self.counters
        parts = []
        for name, label in (("schedules", "schedules"), ("states", "states"),
                            ("distinct_histories", "distinct histories"), ("histories", "histories"),
                            ("cells", "cells"), ("operations", "operations"), ("steps", "steps")):
            if name in c and c[name] is not None:
                total = c.get(f"{name}_total") or (c.get("total") if name == "cells" else None)
                parts.append(f"{c[name]:,}" + (f"/{total:,}" if total else "") + f" {label}")
        if c.get("text"):
            parts.insert(0, str(c["text"]))
        parts.append(f"{self.elapsed_s:.1f} s" + (f" of at most {budget_s:g} s" if budget_s else ""))
        if c.get("fraction") is not None:
            frac = float(c["fraction"])
        elif c.get("total") and c.get("cells") is not None:
            frac = c["cells"] / c["total"]
        elif budget_s:
            frac = min(self.elapsed_s / budget_s, 0.99)
        else:
            frac = 0.0
        return min(max(frac, 0.0), 1.0), ", ".join(parts)


def _plain(snapshot: Any) -> dict:
    """A progress snapshot as a plain dict (it may come as a dict, a dataclass or a namedtuple)."""
    if isinstance(snapshot, dict):
        return dict(snapshot)
    if is_dataclass(snapshot) and not isinstance(snapshot, type):
        return asdict(snapshot)
    if hasattr(snapshot, "_asdict"):
        return dict(snapshot._asdict())
    if hasattr(snapshot, "to_json"):
        return dict(snapshot.to_json())
    return {"text": str(snapshot)}


def _resolve(target: str) -> Callable:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _picklable(exc: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return JobFailed(f"{type(exc).__name__}: {exc}")


def _child(target: str, kwargs: dict, q, parent: int | None = None) -> None:
    """Body of the worker: run the target, send snapshots, then ("done", value) or ("error", exc).
    ``parent``: the dashboard's pid (process mode), watched so an orphaned job stops itself
    (exit code 1, the spawner's parent-death rule)."""
    if parent is not None:
        os.setpgrp()  # its own process group: Cancel stops the workers it starts too
        # the dashboard, as multiprocessing knows it (forked from the job server, this
        # process's direct parent is the server, which outlives the dashboard's runs)
        watch_parent(None, exit_code=1)
    last = [0.0]

    def progress(snapshot: Any = None, **counters) -> None:
        now = time.monotonic()
        if now - last[0] < MIN_INTERVAL_S and not counters.get("force"):
            return
        last[0] = now
        data = _plain(snapshot) if snapshot is not None else {}
        data.update({k: v for k, v in counters.items() if k != "force"})
        q.put(("progress", data))

    try:
        value = _resolve(target)(progress, **kwargs)
    except BaseException as exc:  # handed to the dashboard, which shows it
        q.put(("error", _picklable(exc)))
    else:
        q.put(("done", value))


class Job:
    """One piece of work in a child process. Not thread-safe; one owner polls it.

    ``target``: ``"module:function"``; the function is called as ``function(progress, **kwargs)``.
    """

    def __init__(self, target: str, kwargs: dict | None = None) -> None:
        self.target = target
        self.kwargs = dict(kwargs or {})
        self.mode = os.environ.get(MODE_ENV, "process")
        self.snapshot = Snapshot()
        self._started = 0.0
        self._proc: BaseProcess | None = None
        self._thread: threading.Thread | None = None
        self._q: Any = None  # a queue.Queue (thread mode) or a multiprocessing queue
        self._outcome: tuple[str, Any] | None = None

    # ---- life cycle
    def start(self) -> Job:
        self._started = time.monotonic()
        if self.mode == "thread":
            self._q = queue.Queue()
            self._thread = threading.Thread(target=_child, args=(self.target, self.kwargs, self._q, None), daemon=True,
                                            name=f"packrat-ui {self.target}")
            self._thread.start()
        else:
            ctx = job_context()
            self._q = ctx.Queue()
            # not a daemon: the work may start worker processes of its own (the profiler, the
            # executor); watch_parent ends it if the dashboard dies without cancelling it
            with without_main():
                self._proc = start_process(ctx, _child, (self.target, self.kwargs, self._q, os.getpid()),
                                           name=f"packrat-ui {self.target}")
        return self

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def alive(self) -> bool:
        if self._proc is not None:
            return self._proc.is_alive()
        return self._thread is not None and self._thread.is_alive()

    def poll(self, timeout_s: float = 0.25) -> bool:
        """Wait up to ``timeout_s`` for news; True once the job has finished (result or error)."""
        if self._outcome is not None:
            return True
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            try:
                kind, payload = self._q.get(timeout=max(left, 0.001))
            except queue.Empty:
                break
            if kind == "progress":
                self.snapshot.counters = payload
                self.snapshot.live = True
            else:
                self._outcome = (kind, payload)
                break
            if left <= 0:
                break
        self.snapshot.elapsed_s = time.monotonic() - self._started
        if self._outcome is None and not self.alive():
            try:  # the result may have arrived just before the child exited
                kind, payload = self._q.get(timeout=0.5)
                if kind != "progress":
                    self._outcome = (kind, payload)
            except queue.Empty:
                pass
            if self._outcome is None:
                code = self._proc.exitcode if self._proc is not None else None
                self._outcome = ("error", JobFailed(f"the worker process stopped without a result (exit code {code})"))
        return self._outcome is not None

    def result(self) -> Any:
        """The target's return value; raises its exception. Call after :meth:`poll` said done."""
        if self._outcome is None:
            raise JobFailed("the job has not finished")
        kind, payload = self._outcome
        self.cancel()  # reap the process
        if kind == "error":
            raise payload
        return payload

    def _signal(self, sig: int) -> None:
        """Send ``sig`` to the job's process group (the child and any workers it started)."""
        if self._proc is None or self._proc.pid is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, sig)

    def cancel(self) -> None:
        """Stop the child now (SIGTERM, then SIGKILL after 2 s); idempotent. A thread job
        cannot be stopped: its result is simply dropped."""
        p = self._proc
        if p is None:
            return
        if p.is_alive():
            self._signal(signal.SIGTERM)
            p.join(2.0)
            if p.is_alive():
                self._signal(signal.SIGKILL)
                p.join(2.0)
        else:
            p.join(0.1)
        self._signal(signal.SIGKILL)  # workers the job left behind in its group
        if self._q is not None:
            self._q.cancel_join_thread()


# ------------------------------------------------------------------------- targets


def accepts_progress(fn: Callable) -> bool:
    """Whether ``fn`` takes a ``progress`` keyword (the explorer's live snapshots)."""
    try:
        return "progress" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def probe_job(progress) -> dict:
    """What a job process finds when it starts (for the tests and for diagnosing a slow start):
    its pid and its parent's (the job server's, when forked from it), which of :data:`PRELOAD`
    were imported before it ran, and the file of the main module it ran first (None: none)."""
    return {"pid": os.getpid(), "ppid": os.getppid(), "preloaded": [m for m in PRELOAD if m in sys.modules],
            "main_file": getattr(sys.modules.get("__main__"), "__file__", None)}


def explore_job(progress, *, protocol: str, variant: str, params: dict, strategy: str, max_schedules: int,
                max_time: float, seed: int):
    """Build the protocol and explore it; the explorer's snapshots go to ``progress``
    when its ``explore`` takes a ``progress`` callback (else the dashboard shows a clock)."""
    from checker.explore import explore
    from checker.protocols import build

    proto = build(protocol, variant, **params)
    extra: dict[str, Any] = {"progress": lambda snap: progress(snap)} if accepts_progress(explore) else {}
    return explore(proto, strategy, max_schedules=max_schedules, max_time=max_time, seed=seed, **extra)


def certify_job(progress, *, profile, batch: int, cores: int, plan, options, timeout_s: float,
                interference: bool = False):
    """Ask Z3 whether any allocation beats ``plan``, as `packrat verify` does: the predictor's
    objective (checker.allocation.certify_with_dispatch: measured dispatch cost + slowest
    instance); with ``interference``, certify_under_interference (the calibrated objective)."""
    from checker.allocation import certify_under_interference, certify_with_dispatch

    progress(text="asking Z3 whether any allocation is faster than this plan", force=True)
    if interference:
        return certify_under_interference(profile, batch, cores, plan, options, timeout_s=timeout_s)
    return certify_with_dispatch(profile, batch, cores, plan, options, timeout_s=timeout_s)


def check_job(progress, *, history, model: str, timeout: float):
    """Check ``history`` (a checker.history.History) for linearizability under ``model``."""
    from checker.linearizability import check

    progress(operations=len(history), text=f"checking against {model}", force=True)
    return check(history, model, timeout=timeout)


def measure_job(progress, *, model: str, threads: list, batches: list, repeats: int, interference: bool):
    """Measure a profile on this machine, one progress snapshot per measured cell."""
    from real_runner.profiling import measure_profile

    def on_cell(cell, idx, total):
        tail = "; then the interference sweep" if interference and idx + 1 == total else ""
        progress(cells=idx + 1, total=total, force=True,
                 text=f"t={cell.threads} b={cell.batch}: {cell.mean_ms:.3f} ms{tail}")

    return measure_profile(model, threads, batches, repeats, interference=interference, progress=False,
                           on_cell=on_cell, min_seconds=0.05)


def steps_job(progress, *, steps: str, kwargs: dict):
    """Drive a generator function ``steps`` (``"module:function"``) yielding ``(fraction, text)``
    and returning the result."""
    gen = _resolve(steps)(**kwargs)
    try:
        while True:
            frac, text = next(gen)
            progress(fraction=frac, text=text, force=True)
    except StopIteration as stop:
        return stop.value


# ----------------------------------------------------- step generators (steps_job)


def simulate_steps(profile, cores: int, spec: str, seed: int, policies: list, config, plan=None):
    """One policy at a time (same arrivals); ``plan`` stands for the "planner's plan" policy."""
    from packrat_sim import simulator as sim

    results = []
    for k, name in enumerate(policies):
        yield k / len(policies), f"simulating {name} ({k + 1}/{len(policies)})"
        policy = name if name in sim.POLICIES else plan
        comp = sim.compare_plans(profile, cores, spec, seed=seed, config=config, policies=[policy])
        results.append(comp.results[0])
    yield 1.0, "done"
    return results


def hardware_steps(model: str, batch: int, cores: int, iterations: int, with_thin: bool, current=None):
    """Profile (unless ``current`` is a measurement of this model), optimize, run plan and fat
    interleaved, then thin (skipped when thin is the plan itself: one configuration, named once).
    ``conditions``: what the machine was doing while plan and fat ran
    (``real_runner.conditions.conditions_report`` with the plan's predicted and measured ms, as
    ``packrat run`` records it)."""
    from packrat_sim.optimizer import OptimizerOptions
    from packrat_sim.predictor import Predictor, baselines, best_plan
    from real_runner import executor, profiling
    from real_runner.conditions import conditions_report, watched

    if current is not None:
        profile, origin = current, "the current profile (measured)"
        yield 0.3, "using the current measured profile"
    else:
        yield 0.02, f"measuring a quick profile of {model} (threads 1..{cores}, batches up to {batch})"
        profile = profiling.quick_profile(model, batch, cores, progress=False)
        origin = "a quick profile measured now"
    yield 0.35, "optimizing"
    # planned and priced as `packrat plan` does: one predictor (dispatch + slowest instance),
    # idle cores allowed, the baselines over the same candidate cells
    predictor, options = Predictor(profile), OptimizerOptions(exact_cores=False)
    best = best_plan(predictor, batch, cores, options)
    base = baselines(predictor, batch, cores, options)
    yield 0.4, f"running {best.describe()} and the fat instance, interleaved ({iterations} iterations each)"
    comp, conditions = watched(lambda: executor.compare_with_fat(model, best, iterations, cores=cores))

    def row(label, plan, predicted, res):
        samples = [float(x) for x in res.samples_ms]
        return {"label": label, "groups": [list(g) for g in plan.groups()], "predicted_ms": predicted,
                "measured_ms": res.median_ms, "measured_p90_ms": res.p90_ms, "samples_ms": samples,
                "cores": str([list(c) for c in res.cores])}

    fat = comp.fat.plan
    rows = [row(f"plan {best.describe()}", best, best.predicted_ms, comp.plan),
            row(f"fat {fat.describe()}", fat, predictor.plan_ms(fat), comp.fat)]
    thin = base["thin"].plan  # the thin baseline as priced (the even split, or the fastest 1-thread plan)
    if with_thin and thin is not None:
        if thin.groups() == best.groups():
            rows[0]["label"] = f"plan = thin {best.describe()}"
        else:
            yield 0.8, f"running thin {thin.describe()}"
            res = executor.run_plan(model, thin, iterations)
            rows.append(row(f"thin {thin.describe()}", thin, base["thin"].ms, res))
    yield 1.0, "done"
    return {"rows": rows, "model": model, "batch": batch, "cores": cores, "iterations": iterations,
            "origin": origin, "speedup": comp.speedup, "outputs_match": comp.outputs_match,
            "max_abs_diff": comp.max_abs_diff, "plan": best.describe(),
            "conditions": conditions_report(conditions, best.predicted_ms, comp.plan.median_ms)}


def bench_steps(model: str, batches: list, cores: int, iterations: int):
    """One ``real_runner.bench.run_bench`` per batch size; ``rows``: their batch rows,
    ``conditions``: their reports' ``conditions``, one per batch size in the same order."""
    from real_runner import bench

    rows, conditions = [], []
    for k, b in enumerate(batches):
        yield k / len(batches), f"batch {b}: measuring fat, thin, the plan and the oracle's plans, interleaved"
        report = bench.run_bench(model, [b], cores=cores, iterations=iterations)
        rows += report["batches"]
        conditions.append(report["conditions"])
    yield 1.0, "done"
    return {"model": model, "cores": cores, "iterations": iterations, "rows": rows, "conditions": conditions}
