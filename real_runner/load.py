"""Serving a changing load end to end: the library behind ``packrat run --load``.

Two steps, so that a caller can resolve a profile in between:

1. :func:`prepare_load` validates a :class:`LoadRequest` (model, load spec and its memory,
   estimator, policy, cores) and returns a :class:`LoadSetup`; it starts nothing.
2. :func:`run_load` plans per batch size from a profile (or measures a quick one), builds
   the policy's plan catalog, serves the load with :func:`real_runner.serving.serve_load`,
   writes the history and checks it with the ``serving`` model; it returns a
   :class:`LoadRunResult` whose ``report`` is the JSON object ``packrat run --load --json``
   prints (``switches``: one object per switch with its ``kind`` -- re-route, retarget or
   respawn --, ``priced_ms`` and ``measured_ms``; ``switch_prices_ms``: the re-route and
   retarget prices learned from this run's own switches, which the policy priced its later
   switches with; ``request_latency_ms``: percentiles of
   every request, closed loops included; ``conditions``: the load average and run-queue wait
   while serving, with ``note``, one line when the machine was busy, else None).

Switches reuse warm workers: besides the first plan's workers, ``cores - instances`` warm
workers wait parked (the standby), so every plan on these cores is reached by a re-route or
a retarget (:func:`real_runner.executor.default_standby`).

The load is the one workload grammar of :mod:`packrat_sim.workload` (that of ``packrat
simulate``, with the same meaning, see :func:`real_runner.serving.parse_load`): a closed loop
is spelled with batch sizes (``closed:8@20s,32@20s``: a client submits a batch of 8 inputs,
waits for the answer, submits the next, for 20 s, then batches of 32;
``closed:batch=8,requests=1000`` stops after 1000 requests), an open loop with rates
(``poisson:rate=200/s,duration=10s``, ``steps:50/s@5s,400/s@5s``: single requests aggregated
into batches by the dispatcher). The old closed-loop form ``8:20s,32:20s`` still reads, with a
deprecation warning.

Bad input raises library errors (:class:`~packrat_sim.errors.PackratError` subclasses:
ModelCatalogError, LoadError, EstimatorError, PolicyError, TopologyError, OptimizerError);
a worker that fails raises :class:`~real_runner.executor.WorkerError`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from checker.history import History, write_history
from packrat_sim.files import OutputPathError
from packrat_sim.estimator import EstimatorConfig
from packrat_sim.optimizer import OptimizerOptions, optimize
from packrat_sim.plan import Plan, parse_compact
from packrat_sim.policy import PlanCatalog, PolicyConfig, PolicyError, load_overrides, parse_overrides, parse_policy
from packrat_sim.predictor import corun
from packrat_sim.profile import Profile
from real_runner.conditions import conditions_report, watched
from real_runner.models import get_spec, require_batch_memory
from real_runner.serving import LoadError, LoadSpec, ServingInterrupted, parse_load, serve_load, signal_name
from real_runner.topology import Topology, TopologyError, detect, format_cpus

#: The policies that can steer a load (the others, fat and thin, never reconfigure).
ADAPTIVE_POLICIES = ("packrat", "packrat-ewma")
#: Seconds a history check may take before its verdict is "unknown".
CHECK_TIMEOUT_S = 60


@dataclass(frozen=True)
class LoadRequest:
    """What to serve: ``model`` (catalog name) under ``load`` (a :func:`parse_load` spec) on
    ``cores`` CPUs (None: every CPU this process may use), steered by ``policy``
    (``packrat[:KEY=VALUE,...]`` or ``packrat-ewma``). ``clients``: closed-loop clients
    (None: the spec's ``clients=``, default 1);
    ``warmup``: untimed runs per worker; ``alpha``, ``window``, ``interval_ms`` (ms): the
    ``packrat-ewma`` estimator's parameters."""

    model: str
    load: str
    cores: int | None = None
    policy: str = "packrat"
    clients: int | None = None
    warmup: int = 1
    interval_ms: float = 250.0
    alpha: float = 0.5
    window: int = 4


@dataclass(frozen=True)
class LoadSetup:
    """A validated :class:`LoadRequest`: the parsed load, the estimator's configuration,
    the ``packrat`` policy's configuration (None for ``packrat-ewma``), the topology of
    this machine and the number of cores to serve on (1 <= cores <= topology.logical)."""

    request: LoadRequest
    load: LoadSpec
    estimator: EstimatorConfig
    policy: PolicyConfig | None
    topology: Topology
    cores: int


@dataclass(frozen=True)
class LoadRunResult:
    """What serving a load produced: ``report`` (the JSON object of ``packrat run --load``:
    model, load, load_kind, cores, profile, the counts, latencies, reconfigurations and switches of
    :func:`real_runner.serving.serve_load`, history_file when written, history_operations,
    and check when checked), the ``history`` itself, and the check's ``verdict`` ("ok",
    "illegal", "unknown"; None when not checked)."""

    report: dict[str, Any]
    history: History
    verdict: str | None = None


def parse_load_policy(policy: str, max_batch: int, *, closed: bool = False) -> PolicyConfig | None:
    """``policy`` -> the ``packrat`` policy's configuration capped at ``max_batch`` (None for
    ``packrat-ewma``). PolicyError for an unknown or non-adaptive policy or a bad option.

    ``closed``: the load is a closed loop. Its clients wait for their answers, so no plan
    can be overrun by a surge, and the policy's ``capacity_floor`` (which keeps an open
    loop on plans that survive a surge it has not seen yet) defaults to 0 there: the plan
    for small batches is a candidate again when the batches shrink. An explicit
    ``capacity_floor=`` in ``policy`` still wins."""
    name, overrides = parse_policy(policy)
    if name not in ADAPTIVE_POLICIES:
        raise PolicyError(f"--policy {policy!r}: --load needs an adaptive policy (packrat or packrat-ewma)")
    if name != "packrat":
        return None
    return parse_overrides(load_overrides(overrides, closed=closed) + (f"max_batch={max_batch}",))


def serving_cores(cores: int | None, topology: Topology) -> int:
    """The cores to serve on: ``cores``, or every CPU of ``topology`` when None.
    TopologyError naming the value unless 1 <= cores <= topology.logical."""
    count = topology.logical if cores is None else cores
    if count < 1 or count > topology.logical:
        raise TopologyError(f"--cores {count} must be between 1 and the {topology.logical} CPUs this process may use "
                            f"({format_cpus(topology.ids)})")
    return count


def prepare_load(request: LoadRequest) -> LoadSetup:
    """Validate ``request`` before any work: the model exists, the load parses and its
    largest batch fits the memory limit, the estimator and the policy are valid, the cores
    fit this machine (detected here). Starts no worker.

    Raises ModelCatalogError, LoadError (the load or its memory), EstimatorError,
    PolicyError (the policy: the caller may prefix it with the option's name), then
    TopologyError (cores), in that order of checking.
    """
    get_spec(request.model)
    load = parse_load(request.load, clients=request.clients)
    require_batch_memory(request.model, load.max_batch, LoadError)  # before a quick profile or a worker
    estimator = EstimatorConfig(alpha=request.alpha, window=request.window, interval_ms=request.interval_ms,
                                max_batch=load.max_batch)
    policy = parse_load_policy(request.policy, load.max_batch, closed=load.kind == "closed")
    topology = detect()
    return LoadSetup(request, load, estimator, policy, topology, serving_cores(request.cores, topology))


def make_planner(profile: Profile, cores: int) -> Callable[[int], Plan]:
    """batch -> the optimizer's plan for (batch, cores) on ``profile`` (memoised; the
    planner raises OptimizerError when no plan exists for that batch)."""
    cache: dict[int, Plan] = {}

    def planner(batch: int) -> Plan:
        if batch not in cache:
            cache[batch] = optimize(profile, batch, cores, OptimizerOptions())
        return cache[batch]

    return planner


def measure_quick_profile(setup: LoadSetup, *, progress: bool | None = None,
                          on_note: Callable[[str], None] = lambda message: None) -> Profile:
    """A quick profile of the model on ``setup.cores`` cores, for batches up to the
    estimator's upper bound (powers of two); ``on_note`` is told first what is measured.
    Starts worker processes (minutes for a large model)."""
    from real_runner.profiling import powers_of_two_upto, quick_profile

    model, cores = setup.request.model, setup.cores
    top = max(setup.estimator.upper, 1)
    batches = ",".join(map(str, powers_of_two_upto(top)))
    on_note(f"no --profile: measuring a quick profile of {model} first, to plan every batch size of the load "
            f"from (threads 1-{cores}, batches {batches}; this can take minutes); to skip it next time, run "
            f"`packrat profile --model {model} --threads 1-{cores} --batches {batches} --out {model}.json` once "
            f"and pass --profile {model}.json")
    return quick_profile(model, top, cores, topology=setup.topology, progress=progress)


def write_load_history(history: History, path: str, *, incomplete: str | None = None) -> None:
    """Write a load's ``history`` to ``path`` (``packrat.history/1``, through
    ``packrat_sim.files``: atomic, no symlink followed). ``incomplete``: why the run was cut
    short; the file then says so in two more top-level keys, ``"incomplete": true`` and
    ``"incomplete_reason"`` (readers of the format ignore keys they do not know, and the
    operations still in flight are pending ones, which a linearizability check accepts).
    Raises OutputPathError naming the path."""
    extra = None if incomplete is None else {"incomplete": True, "incomplete_reason": incomplete}
    write_history(history, path, extra=extra)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised as an exception while :func:`run_load` runs, so that serving stops
    through its ``finally`` blocks (workers stopped, history kept) instead of dying at once."""

    signum = signal.SIGTERM


def _raise_terminated(signum, frame) -> None:
    raise _Terminated()


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """While active (main thread, SIGTERM at its default action), SIGTERM raises
    :class:`_Terminated`; afterwards the default action comes back and a SIGTERM that
    ended the block is re-delivered, so the process still dies of it."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, _raise_terminated)
    terminated = False
    try:
        yield
    except KeyboardInterrupt as exc:
        if getattr(exc, "signum", None) != signal.SIGTERM:
            raise
        terminated = True
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if terminated:
        sys.stdout.flush()
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGTERM)
        raise SystemExit(128 + signal.SIGTERM)  # pragma: no cover - the signal above ends the process


def _keeps_history_when_interrupted(run: Callable[..., LoadRunResult]) -> Callable[..., LoadRunResult]:
    """:func:`run_load`'s interruption rule. Ctrl-C (SIGINT) or SIGTERM while the load is
    served stops serving cleanly (:class:`~real_runner.serving.ServingInterrupted`); the
    operations recorded so far (those in flight pending) are written to ``history_path``
    marked incomplete (:func:`write_load_history`) and ``on_note`` says so; interrupted
    before serving began (workers starting), an empty history marked incomplete is
    written; interrupted while the finished history is checked, the file written is kept.
    Then the interruption goes on: ``KeyboardInterrupt`` for SIGINT, death by SIGTERM for
    SIGTERM."""

    @functools.wraps(run)
    def wrapped(setup: LoadSetup, profile: Profile | None = None, *, history_path: str | None = None,
                **kwargs: Any) -> LoadRunResult:
        before = _identity(history_path)
        with _sigterm_unwinds():
            try:
                return run(setup, profile, history_path=history_path, **kwargs)
            except ServingInterrupted as exc:
                _keep_interrupted_history(exc.report.get("history"), exc.signum, history_path, kwargs.get("on_note"))
                raise
            except KeyboardInterrupt as exc:
                if _identity(history_path) == before:  # before serving began: nothing was recorded
                    _keep_interrupted_history(History([], model="serving"), getattr(exc, "signum", signal.SIGINT),
                                              history_path, kwargs.get("on_note"))
                raise  # (after the history was written, during its check: the file is complete)

    return wrapped


def _identity(path: str | None) -> tuple[int, int, int] | None:
    """(device, inode, mtime) of ``path``, None when absent: a write (a rename) changes it."""
    try:
        st = os.lstat(path) if path else None
    except OSError:
        return None
    return None if st is None else (st.st_dev, st.st_ino, st.st_mtime_ns)


def _keep_interrupted_history(history: History | None, signum: int, history_path: str | None,
                              on_note: Callable[[str], None] | None) -> None:
    """Write the history of an interrupted load (when a path was given) and say so."""
    if not history_path or history is None:
        return
    name = signal_name(signum)
    pending = sum(1 for op in history if op.ret is None)
    reason = (f"interrupted by {name}; {len(history)} operations recorded until then, "
              f"{pending} of them still in flight (pending)")
    try:
        write_load_history(history, history_path, incomplete=reason)
    except OutputPathError as err:
        message = f"{name}: the history could not be written: {err}"
    else:
        message = f"{name}: wrote the {len(history)} operations recorded so far to {history_path} (marked incomplete)"
    if on_note is not None:
        on_note(message)


@_keeps_history_when_interrupted
def run_load(setup: LoadSetup, profile: Profile | None = None, *, history_path: str | None = None,
             check: bool = False, progress: bool | None = None,
             on_note: Callable[[str], None] = lambda message: None,
             runtime_hook: Callable | None = None) -> LoadRunResult:
    """Serve ``setup``'s load with plans from ``profile`` (None: measure a quick one, see
    :func:`measure_quick_profile`), write the history to ``history_path`` (when given) and,
    with ``check``, judge it with the ``serving`` model (timeout CHECK_TIMEOUT_S).
    ``runtime_hook(runtime)`` runs once the serving runtime is up (faults, sampling:
    ``benchmarks/soak.py``).

    Raises OptimizerError (no plan for a batch of 1 on these cores), PolicyError (no plan
    catalog), WorkerError (a worker failed); blocks for the load's duration. A history that
    cannot be written is named in ``report["history_error"]`` (the run is not lost).
    Interrupted by Ctrl-C or SIGTERM while serving, the history recorded so far is written
    marked incomplete before the interruption goes on (:func:`_keeps_history_when_interrupted`).
    """
    if profile is None:
        profile = measure_quick_profile(setup, progress=progress, on_note=on_note)
    planner = make_planner(profile, setup.cores)
    planner(1)  # a profile with no plan at all fails here, before any worker starts
    catalog = None
    if setup.policy is not None:
        catalog = PlanCatalog(profile, setup.cores, setup.load.max_batch, error=PolicyError, execution="chunks")
    served, conditions = watched(lambda: serve_load(
        setup.request.model, setup.load, planner, estimator=setup.estimator, topology=setup.topology,
        warmup=setup.request.warmup, catalog=catalog, policy=setup.policy, cores=setup.cores,
        runtime_hook=runtime_hook))
    history = served.pop("history")
    served.pop("runtime")
    report = {"model": setup.request.model, "load": setup.request.load, "load_kind": setup.load.kind,
              "cores": setup.cores,
              "profile": {"model": profile.model, "synthetic": profile.synthetic, "source": profile.source},
              **served}
    report["notes"] = corun(profile).notes(parse_compact(text) for text in _served_plans(report))
    report["conditions"] = conditions_report(conditions)
    return _record_history(report, history, history_path, check)


def _served_plans(report: dict[str, Any]) -> list[str]:
    """The plans (compact form) a load report shows served: the first and each switch's target."""
    plans = [report.get("initial_plan")] + [r.get("to_plan") for r in report.get("reconfigurations", ())]
    return [p for p in plans if p]


def _record_history(report: dict[str, Any], history: History, history_path: str | None,
                    check: bool) -> LoadRunResult:
    """Write ``history`` to ``history_path`` (when given), check it (with ``check``) and
    add ``history_file``, ``history_operations`` and ``check`` to ``report`` (in place).

    A history that cannot be written (a full disk) does not lose the run: ``report`` gets
    ``history_error`` (one line naming the file and why) instead of ``history_file``, and
    the check still runs on the history in memory."""
    if history_path:
        try:
            write_load_history(history, history_path)
            report["history_file"] = history_path
        except OutputPathError as exc:
            report["history_error"] = str(exc)
    report["history_operations"] = len(history)
    verdict = None
    if check:
        from checker import check as check_history

        res = check_history(history, "serving", timeout=CHECK_TIMEOUT_S)
        verdict = res.result.value
        report["check"] = {"verdict": verdict, "operations": res.operations, "reason": res.reason}
    return LoadRunResult(report, history, verdict)


__all__ = [
    "ADAPTIVE_POLICIES",
    "CHECK_TIMEOUT_S",
    "LoadRequest",
    "LoadRunResult",
    "LoadSetup",
    "make_planner",
    "measure_quick_profile",
    "parse_load_policy",
    "prepare_load",
    "run_load",
    "serving_cores",
    "write_load_history",
]
