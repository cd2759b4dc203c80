"""Serving a changing load end to end: the library behind ``packrat run --load``.

Two steps, so that a caller can resolve a profile in between:

1. :func:`prepare_load` validates a :class:`LoadRequest` (model, load spec and its memory,
   estimator, policy, cores) and returns a :class:`LoadSetup`; it starts nothing.
2. :func:`run_load` plans per batch size from a profile (or measures a quick one), builds
   the policy's plan catalog, serves the load with :func:`real_runner.serving.serve_load`,
   writes the history and checks it with the ``serving`` model; it returns a
   :class:`LoadRunResult` whose ``report`` is the JSON object ``packrat run --load --json``
   prints (``switches``: one object per switch with its ``kind`` -- re-route, retarget or
   respawn --, ``priced_ms`` and ``measured_ms``; ``request_latency_ms``: percentiles of
   every request, closed loops included).

Switches reuse warm workers: besides the first plan's workers, ``cores - instances`` warm
workers wait parked (the standby), so every plan on these cores is reached by a re-route or
a retarget (:func:`real_runner.executor.default_standby`).

The load is :func:`real_runner.serving.parse_load`'s grammar: ``"B:DURATION,..."`` is a
closed loop (a client submits a batch of B inputs, waits for the answer, submits the next,
for DURATION, then moves to the next step; ``8:20s`` alone is a constant load), and any
open-loop workload with arrivals (``poisson:rate=200/s,duration=10s``,
``steps:50@5s,400@5s``) has single requests aggregated into batches by the dispatcher.

Bad input raises library errors (:class:`~packrat_sim.errors.PackratError` subclasses:
ModelCatalogError, LoadError, EstimatorError, PolicyError, TopologyError, OptimizerError);
a worker that fails raises :class:`~real_runner.executor.WorkerError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from checker.history import History
from packrat_sim.estimator import EstimatorConfig
from packrat_sim.optimizer import OptimizerOptions, optimize
from packrat_sim.plan import Plan, parse_compact
from packrat_sim.policy import PlanCatalog, PolicyConfig, PolicyError, parse_overrides, parse_policy
from packrat_sim.predictor import corun
from packrat_sim.profile import Profile
from real_runner.models import get_spec, require_batch_memory
from real_runner.serving import LoadError, LoadSpec, parse_load, serve_load
from real_runner.topology import Topology, TopologyError, detect, format_cpus

#: The policies that can steer a load (the others, fat and thin, never reconfigure).
ADAPTIVE_POLICIES = ("packrat", "packrat-ewma")
#: Seconds a history check may take before its verdict is "unknown".
CHECK_TIMEOUT_S = 60


@dataclass(frozen=True)
class LoadRequest:
    """What to serve: ``model`` (catalog name) under ``load`` (a :func:`parse_load` spec) on
    ``cores`` CPUs (None: every CPU this process may use), steered by ``policy``
    (``packrat[:KEY=VALUE,...]`` or ``packrat-ewma``). ``clients``: closed-loop clients;
    ``warmup``: untimed runs per worker; ``alpha``, ``window``, ``interval_ms`` (ms): the
    ``packrat-ewma`` estimator's parameters."""

    model: str
    load: str
    cores: int | None = None
    policy: str = "packrat"
    clients: int = 1
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


def parse_load_policy(policy: str, max_batch: int) -> PolicyConfig | None:
    """``policy`` -> the ``packrat`` policy's configuration capped at ``max_batch`` (None for
    ``packrat-ewma``). PolicyError for an unknown or non-adaptive policy or a bad option."""
    name, overrides = parse_policy(policy)
    if name not in ADAPTIVE_POLICIES:
        raise PolicyError(f"--policy {policy!r}: --load needs an adaptive policy (packrat or packrat-ewma)")
    if name != "packrat":
        return None
    return parse_overrides(overrides + (f"max_batch={max_batch}",))


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
    policy = parse_load_policy(request.policy, load.max_batch)
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
    on_note(f"no --profile: measuring a quick profile of {model} (threads 1-{cores}, batches "
            f"{','.join(map(str, powers_of_two_upto(top)))})")
    return quick_profile(model, top, cores, topology=setup.topology, progress=progress)


def run_load(setup: LoadSetup, profile: Profile | None = None, *, history_path: str | None = None,
             check: bool = False, progress: bool | None = None,
             on_note: Callable[[str], None] = lambda message: None) -> LoadRunResult:
    """Serve ``setup``'s load with plans from ``profile`` (None: measure a quick one, see
    :func:`measure_quick_profile`), write the history to ``history_path`` (when given) and,
    with ``check``, judge it with the ``serving`` model (timeout CHECK_TIMEOUT_S).

    Raises OptimizerError (no plan for a batch of 1 on these cores), PolicyError (no plan
    catalog), WorkerError (a worker failed); blocks for the load's duration.
    """
    if profile is None:
        profile = measure_quick_profile(setup, progress=progress, on_note=on_note)
    planner = make_planner(profile, setup.cores)
    planner(1)  # a profile with no plan at all fails here, before any worker starts
    catalog = None
    if setup.policy is not None:
        catalog = PlanCatalog(profile, setup.cores, setup.load.max_batch, error=PolicyError, execution="chunks")
    served = serve_load(setup.request.model, setup.load, planner, estimator=setup.estimator,
                        topology=setup.topology, warmup=setup.request.warmup, catalog=catalog, policy=setup.policy,
                        cores=setup.cores)
    history = served.pop("history")
    served.pop("runtime")
    report = {"model": setup.request.model, "load": setup.request.load, "load_kind": setup.load.kind,
              "cores": setup.cores,
              "profile": {"model": profile.model, "synthetic": profile.synthetic, "source": profile.source},
              **served}
    report["notes"] = corun(profile).notes(parse_compact(text) for text in _served_plans(report))
    return _record_history(report, history, history_path, check)


def _served_plans(report: dict[str, Any]) -> list[str]:
    """The plans (compact form) a load report shows served: the first and each switch's target."""
    plans = [report.get("initial_plan")] + [r.get("to_plan") for r in report.get("reconfigurations", ())]
    return [p for p in plans if p]


def _record_history(report: dict[str, Any], history: History, history_path: str | None,
                    check: bool) -> LoadRunResult:
    """Write ``history`` to ``history_path`` (when given), check it (with ``check``) and
    add ``history_file``, ``history_operations`` and ``check`` to ``report`` (in place)."""
    if history_path:
        from checker.history import write_history

        write_history(history, history_path)
        report["history_file"] = history_path
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
]
