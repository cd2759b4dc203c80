"""Plans as configurations of the serving stacks people already run.

Pure text generation; every export says what it cannot express.

* ``run-cpu``: launch commands for PyTorch's ``python -m torch.backends.xeon.run_cpu``,
  one per instance. A homogeneous plan without pinned cores uses
  ``--ninstances N --rank R --ncores-per-instance T`` (the launcher assigns core ranges);
  otherwise each instance gets ``--ninstances 1 --ncores-per-instance t --core-list ...``
  (the plan's pinned cores, or consecutive core ids in plan order). The launcher sets
  OMP_NUM_THREADS to the cores per instance. The sub-batch is passed to the user's
  script as ``--batch-size b``; splitting a client batch across instances is the job of
  the user's dispatcher, which run_cpu does not provide.
* ``torchserve``: ``config.properties`` entries. TorchServe runs identical workers and
  its launcher pins each of W workers to its own cores (``--ncores-per-instance t`` in
  ``cpu_launcher_args``), so only homogeneous plans map exactly. For a heterogeneous plan
  the caller passes the best homogeneous plan (the homogeneous optimum priced by the same
  predictor, :func:`packrat_sim.predictor.homogeneous_optimum`): that plan is exported,
  and the limitations say how much slower it is predicted to be than the heterogeneous
  optimum. Without one (no homogeneous plan exists) the plan is approximated (W = number
  of instances, t = fewest threads, batchSize = largest sub-batch) and the difference is
  listed. TorchServe batches requests per worker (batchSize / maxBatchDelay); it does not
  split one client batch.
* ``json``: the plan file (``packrat.plan/1``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from packrat_sim import validate
from packrat_sim.errors import PackratError
from packrat_sim.plan import Plan, dumps_plan

EXPORT_FORMATS = ("run-cpu", "torchserve", "json")


class ExportError(PackratError):
    """Unknown export format or unusable arguments; names the value."""


@dataclass(frozen=True)
class Export:
    """An export's text and the parts of the plan it could not express (may be empty)."""

    format: str
    text: str
    limitations: tuple[str, ...] = ()


def _core_lists(plan: Plan) -> list[list[int]]:
    """Cores of each instance in plan order: pinned ones, else consecutive ids from 0."""
    if all(i.cores for i in plan.instances):
        return [list(i.cores) for i in plan.instances]
    lists, next_core = [], 0
    for inst in plan.instances:
        lists.append(list(range(next_core, next_core + inst.threads)))
        next_core += inst.threads
    return lists


def export_run_cpu(plan: Plan, script: str = "serve.py") -> Export:
    """Shell lines that start every instance of ``plan`` with run_cpu (see module doc)."""
    if not script or any(c in script for c in "\n\r"):
        raise ExportError(f"script must be a single-line command, got {script!r}")
    lines = [
        f"# Packrat plan: {plan.describe()} (batch {plan.batch} on {plan.cores} cores)",
        "# each line starts one instance; your script serves the sub-batch given by --batch-size",
    ]
    homogeneous = len(plan.groups()) == 1
    pinned = all(i.cores for i in plan.instances)
    launcher = "python -m torch.backends.xeon.run_cpu"
    if homogeneous and not pinned:
        n, t, b = plan.groups()[0]
        lines.extend(
            f"{launcher} --ninstances {n} --rank {rank} --ncores-per-instance {t} {script} --batch-size {b} &"
            for rank in range(n)
        )
    else:
        for inst, cores in zip(plan.instances, _core_lists(plan)):
            core_list = ",".join(str(c) for c in cores)
            lines.append(
                f"{launcher} --ninstances 1 --ncores-per-instance {inst.threads} --core-list {core_list} "
                f"{script} --batch-size {inst.batch} &"
            )
    lines.append("wait")
    limitations = ("run_cpu starts the instances; splitting each batch of "
                   f"{plan.batch} into the sub-batches is left to your dispatcher",)
    return Export("run-cpu", "\n".join(lines) + "\n", limitations)


def _homogeneous_note(plan: Plan, homogeneous: Plan) -> str:
    """The limitation line of exporting ``homogeneous`` for the heterogeneous ``plan``."""
    fast, slow = plan.predicted_ms, homogeneous.predicted_ms
    if fast is None or slow is None:
        raise ExportError("the heterogeneous plan and its homogeneous alternative must both be priced")
    return (f"TorchServe has no heterogeneous workers: exported the best homogeneous plan {homogeneous.describe()} "
            f"(predicted {slow:.2f} ms), {slow / fast:.2f}x the predicted latency of the heterogeneous optimum "
            f"{plan.describe()} ({fast:.2f} ms)")


def export_torchserve(plan: Plan, model: str = "model", max_batch_delay_ms: int = 5, *,
                      homogeneous: Plan | None = None) -> Export:
    """``config.properties`` entries realising ``plan`` as closely as TorchServe allows:
    ``homogeneous`` (priced, for the same batch) instead of a heterogeneous ``plan`` when
    given (module doc). ExportError for a bad model name, delay, or an alternative that is
    not homogeneous, not for the plan's batch, or not priced."""
    if not model or any(c in model for c in '"\n\r\\'):
        raise ExportError(f"model name must be plain text, got {model!r}")
    validate.nonnegative_int(max_batch_delay_ms, "max_batch_delay_ms", error=ExportError)
    if homogeneous is not None and len(plan.groups()) > 1:
        if len(homogeneous.groups()) != 1 or homogeneous.batch != plan.batch:
            raise ExportError(f"{homogeneous.describe()} is not a homogeneous plan for batch {plan.batch}")
        note = _homogeneous_note(plan, homogeneous)
        exported = _torchserve_properties(homogeneous, model, max_batch_delay_ms)
        return Export("torchserve", exported.text, (note,) + exported.limitations)
    return _torchserve_properties(plan, model, max_batch_delay_ms)


def _torchserve_properties(plan: Plan, model: str, max_batch_delay_ms: int) -> Export:
    """:func:`export_torchserve` of ``plan`` itself (a heterogeneous one approximated)."""
    groups = plan.groups()
    workers = len(plan.instances)
    batch_size = max(i.batch for i in plan.instances)
    threads = min(i.threads for i in plan.instances)
    limitations = [
        "TorchServe batches requests per worker (batchSize / maxBatchDelay); it does not split one "
        f"client batch of {plan.batch} across workers",
    ]
    if len(groups) > 1:
        limitations.insert(
            0,
            "TorchServe has no heterogeneous workers: the plan "
            f"{plan.describe()} is approximated by {workers} identical workers with batchSize {batch_size} "
            f"and {threads} cores each",
        )
    model_config = {
        model: {
            "1.0": {
                "defaultVersion": True,
                "marName": f"{model}.mar",
                "minWorkers": workers,
                "maxWorkers": workers,
                "batchSize": batch_size,
                "maxBatchDelay": max_batch_delay_ms,
                "responseTimeout": 120,
            }
        }
    }
    lines = [
        f"# Packrat plan: {plan.describe()} (batch {plan.batch} on {plan.cores} cores)",
        "cpu_launcher_enable=true",
        f"cpu_launcher_args=--ncores-per-instance {threads}",
        f"default_workers_per_model={workers}",
        "load_models=ALL",
        "models=" + json.dumps(model_config, separators=(",", ":")),
    ]
    return Export("torchserve", "\n".join(lines) + "\n", tuple(limitations))


def export_plan(plan: Plan, fmt: str, *, script: str = "serve.py", model: str = "model",
                homogeneous: Plan | None = None) -> Export:
    """Dispatch on ``fmt`` (one of EXPORT_FORMATS); ``homogeneous``: the best homogeneous
    plan, which TorchServe exports in place of a heterogeneous ``plan`` (ignored otherwise)."""
    if fmt == "run-cpu":
        return export_run_cpu(plan, script)
    if fmt == "torchserve":
        return export_torchserve(plan, model, homogeneous=homogeneous)
    if fmt == "json":
        return Export("json", dumps_plan(plan))
    raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
