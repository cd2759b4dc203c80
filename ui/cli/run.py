"""`packrat run`: run a batch with a plan on this machine's cores, beside the fat instance;
with ``--load``, serve a changing load with online reconfiguration (``real_runner.load``).

The verb parses options, calls the library and prints; the helpers below each do one of
those. Library errors of bad input (PackratError) reach the entry point, which prints
them as one line with exit code 2; a worker that fails exits 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import typer

from ui.cli.common import WORKLOAD_HELP, BadInput, emit_json, fail, load_model_profile, note, output_file_arg, warn_other_machine

#: Where `packrat run --load` is described (named by the --help texts).
LOAD_DOCS = 'README.md, "Online reconfiguration under a changing load"'


# ------------------------------------------------------------------ --batch with --plan


@dataclass(frozen=True)
class BatchRun:
    """A validated ``packrat run --batch``: ``model`` runs batches of ``batch`` inputs on
    ``cores`` CPUs of ``topology``, ``iterations`` timed batches after ``warmup`` untimed
    runs per worker; ``fat``: measure the fat instance beside the plan."""

    model: str
    batch: int
    cores: int
    iterations: int
    warmup: int
    jit: bool
    allow_oversubscribe: bool
    fat: bool
    topology: Any


def _check_batch_options(batch: int | None, plan_spec: str | None, history_path: str | None,
                         check_history: bool, policy: str) -> tuple[int, str]:
    """(--batch, --plan) when both are given and no --load-only option is; BadInput naming
    the option otherwise."""
    if history_path is not None or check_history:
        raise BadInput("--history and --check apply to --load")
    if policy != "packrat":
        raise BadInput("--policy applies to --load")
    if batch is None:
        raise BadInput("missing option --batch (or use --load SPEC)")
    if plan_spec is None:
        raise BadInput("missing option --plan (a plan FILE or 'auto'; or use --load SPEC)")
    return batch, plan_spec


def _batch_run(model: str, batch: int, cores: int | None, iterations: int, warmup: int, *, jit: bool,
               allow_oversubscribe: bool, fat: bool) -> BatchRun:
    """Validate the numbers of a batch run (model and batch memory first, before any
    worker) and detect the topology; BadInput or a library error naming the value."""
    from real_runner.models import get_spec, require_batch_memory
    from real_runner.topology import detect, format_cpus

    get_spec(model)
    require_batch_memory(model, batch)  # before a quick profile or any worker
    if batch < 1:
        raise BadInput(f"--batch must be a positive integer, got {batch}")
    if iterations < 1:
        raise BadInput(f"--iterations must be a positive integer, got {iterations}")
    if warmup < 0:
        raise BadInput(f"--warmup must be >= 0, got {warmup}")
    topo = detect()
    n_cores = topo.logical if cores is None else cores
    if n_cores < 1:
        raise BadInput(f"--cores must be a positive integer, got {n_cores}")
    if n_cores > topo.logical and not allow_oversubscribe:
        raise BadInput(
            f"--cores {n_cores} is beyond the {topo.logical} CPUs this process may use ({format_cpus(topo.ids)}); "
            "use fewer cores or --allow-oversubscribe"
        )
    return BatchRun(model, batch, n_cores, iterations, warmup, jit, allow_oversubscribe, fat, topo)


def _auto_plan(run: BatchRun, profile_spec: str | None, progress: bool | None):
    """(the optimal plan for (batch, cores), its profile): from --profile, or from a quick
    profile measured now (noted on stderr with how to keep a careful one)."""
    from packrat_sim.optimizer import OptimizerOptions, optimize
    from real_runner.profiling import powers_of_two_upto, quick_profile

    model, batch, cores = run.model, run.batch, run.cores
    if profile_spec is not None:
        from packrat_sim.plan import PlanOrigin

        profile = load_model_profile(profile_spec, model, planning=True)
        warn_other_machine(PlanOrigin.of(profile), f"--profile {profile_spec}", run.topology)
    else:
        bs = ",".join(map(str, powers_of_two_upto(batch)))
        note(
            f"no --profile: measuring a quick profile of {model} (threads 1-{cores}, batches {bs}, 3 repeats); "
            f"for a careful, reusable one run `packrat profile --model {model} --threads 1-{cores} "
            f"--batches {bs} --out {model}.json` and pass --profile {model}.json"
        )
        profile = quick_profile(model, batch, cores, topology=run.topology, progress=progress, jit=run.jit)
    if profile.interference is not None:  # calibrated by default, as `packrat plan`
        from packrat_sim.interference import optimize_with_interference

        return optimize_with_interference(profile, batch, cores, OptimizerOptions()).plan, profile
    return optimize(profile, batch, cores, OptimizerOptions()), profile


def _read_plan(path: str, run: BatchRun):
    """The plan in the packrat.plan/1 file ``path``; BadInput naming the file when it is
    not a plan, is for another batch size, or was made from a measured profile of another
    model than ``run.model`` (naming both models). A plan made from a profile of another
    machine is warned about in one line on stderr, one made from a synthetic profile noted.
    A file written before plans recorded their origin is taken as it is. ProfileError when
    the file cannot be read."""
    from packrat_sim.plan import PlanError, loads_plan
    from packrat_sim.profile import read_text

    text = read_text(path, "plan")
    try:
        plan = loads_plan(text)
    except PlanError as exc:
        raise BadInput(f"plan {path}: {exc}") from None
    if plan.batch != run.batch:
        raise BadInput(f"the plan {path} is for a batch of {plan.batch}, not --batch {run.batch}")
    origin = plan.origin
    if origin is not None:
        if origin.synthetic:
            note(f"the plan {path} was made from the SYNTHETIC profile {origin.model}: its prediction is not a "
                 f"measurement of {run.model}")
        elif origin.model != run.model:
            raise BadInput(f"the plan {path} was made from a profile of {origin.model!r}, not of --model "
                           f"{run.model!r}: plan {run.model} from a profile of {run.model} (packrat plan --out)")
        warn_other_machine(origin, f"the plan {path}", run.topology)
    return plan


def _choose_plan(run: BatchRun, plan_spec: str, profile_spec: str | None, progress: bool | None):
    """(plan, profile or None): 'auto' plans (see :func:`_auto_plan`), else the plan file;
    the plan is pinned to the topology before any worker starts (TopologyError if it does
    not fit). A quick profile whose worker fails exits 1."""
    from real_runner.profiling import ProfilingWorkerError
    from real_runner.topology import pin_plan

    if profile_spec is not None and plan_spec != "auto":
        raise BadInput("--profile only applies to --plan auto")
    profile = None
    try:
        if plan_spec == "auto":
            plan, profile = _auto_plan(run, profile_spec, progress)
        else:
            plan = _read_plan(plan_spec, run)
        pin_plan(plan, run.topology, allow_oversubscribe=run.allow_oversubscribe)  # validate before any worker starts
    except ProfilingWorkerError as exc:
        fail(str(exc), code=1)
    return plan, profile


def _measure(run: BatchRun, plan):
    """(the plan's RunResult, the Comparison with the fat instance or None): ``iterations``
    timed batches each, interleaved. A worker that fails exits 1."""
    from real_runner.executor import WorkerError, compare_with_fat, run_plan

    opts = dict(topology=run.topology, allow_oversubscribe=run.allow_oversubscribe, jit=run.jit, warmup=run.warmup)
    try:
        if not run.fat:
            return run_plan(run.model, plan, run.iterations, **opts), None
        comp = compare_with_fat(run.model, plan, run.iterations, cores=run.cores, **opts)
        return comp.plan, comp
    except WorkerError as exc:
        fail(str(exc), code=1)


def _batch_report(run: BatchRun, plan_spec: str, plan, profile, res, comp) -> dict:
    """The JSON object of ``packrat run --batch --json`` (keys in the order printed)."""
    return {
        "model": run.model,
        "batch": run.batch,
        "cores": run.cores,
        "iterations": run.iterations,
        "topology": run.topology.describe(),
        "plan_source": "auto" if plan_spec == "auto" else plan_spec,
        "profile": None if profile is None else {
            "model": profile.model, "synthetic": profile.synthetic, "source": profile.source,
        },
        "groups": [list(g) for g in res.plan.groups()],
        "predicted_ms": plan.predicted_ms,
        "plan": res.to_json(),
        "fat": None if comp is None else comp.fat.to_json(),
        "speedup_vs_fat": None if comp is None else comp.speedup,
        "outputs_match": None if comp is None else comp.outputs_match,
        "max_abs_diff": None if comp is None else comp.max_abs_diff,
        "output_scale": None if comp is None else comp.output_scale,
        "runtime": res.runtime,
        "notes": _corun_notes(profile, plan),
    }


def _corun_notes(profile, plan) -> list[str]:
    """The no-co-run line when ``plan`` (more than one instance) was priced from a profile
    without a co-run model; [] otherwise (a plan file without a profile says nothing)."""
    from packrat_sim.predictor import corun

    return [] if profile is None else corun(profile).notes([plan])


def _fmt_stats(r: dict) -> str:
    """One line of a run's statistics (ms): median, p90 and the number of samples."""
    return f"median {r['median_ms']:9.2f} ms   p90 {r['p90_ms']:9.2f} ms   (n={len(r['samples_ms'])})"


def _print_batch_report(run: BatchRun, report: dict, plan, res, comp) -> None:
    """The text form of ``packrat run --batch`` on stdout."""
    typer.echo(f"model     {run.model}, batch {run.batch}, {run.cores} cores: {run.topology.describe()}")
    pred = f", predicted {plan.predicted_ms:.2f} ms" if plan.predicted_ms else ""
    typer.echo(f"plan      {res.plan.describe()}  (count x threads x sub-batch{pred})")
    for line in report["notes"]:
        typer.echo(f"note      {line}")
    typer.echo(f"          cores per instance: {[list(c) for c in res.cores]}")
    if report["conditions"]["note"]:
        typer.echo(f"note      {report['conditions']['note']}")
    typer.echo(f"measured  plan {_fmt_stats(report['plan'])}")
    if comp is not None:
        typer.echo(f"measured  fat  {_fmt_stats(report['fat'])}   ({comp.fat.plan.describe()})")
        how = (f"{comp.speedup:.2f}x faster than" if comp.speedup >= 1
               else f"{1 / comp.speedup:.2f}x slower than")
        typer.echo(
            f"          plan is {how} the fat instance "
            f"(medians, measured interleaved in this run); outputs "
            f"{'match' if comp.outputs_match else 'DIFFER'} (max |diff| {comp.max_abs_diff:.2e})"
        )
    typer.echo(f"samples   plan {[round(x, 2) for x in res.samples_ms]}")
    if comp is not None:
        typer.echo(f"          fat  {[round(x, 2) for x in comp.fat.samples_ms]}")


# ------------------------------------------------------------------------------ --load


def _ms(x: float | None) -> str:
    """A duration in ms for the text output ("-" when unknown)."""
    return "-" if x is None else f"{x:.1f} ms"


def _reconfiguration_lines(r: dict) -> list[str]:
    """The text lines of one reconfiguration record of a load report."""
    if not r["ok"]:
        return [f"reconfig at {r['at_s']:.1f}s {r['from_plan']} -> {r['to_plan']}: ABORTED ({r['error']})"]
    lat = " ".join(f"{k} {r['latency_' + k]['median_ms']:.1f}ms" if r["latency_" + k] else f"{k} -"
                   for k in ("before", "during", "after"))
    lines = [f"reconfig at {r['at_s']:.1f}s epoch {r['from_epoch']}->{r['to_epoch']} "
             f"{r['from_plan']} -> {r['to_plan']}: {r['reconfigure_ms']:.0f} ms to switch, "
             f"{r['drain_ms']:.0f} ms to drain; median batch latency {lat}"]
    if r.get("trigger", "").startswith("policy: "):
        lines.append(f"         why: {r['trigger'][len('policy: '):]}")
    if r.get("error"):  # switched, but a worker could not be replaced then (the batch fault rule retries)
        lines.append(f"         error during the switch: {r['error']}")
    return lines


def _switch_line(w: dict) -> str:
    """The text line of one switch: kind, priced and measured cost, the first new batch, and
    the p99 of the batches in its window against the steady state after it."""
    window, steady = w.get("latency_window"), w.get("latency_steady")
    p99 = "" if not window or not steady else (
        f"; window p99 {window['p99_ms']:.1f} ms vs steady {steady['p99_ms']:.1f} ms ({w['p99_ratio']:.2f}x)")
    pause = "" if w.get("priced_pause_ms") is None else f" (its pause {_ms(w['priced_pause_ms'])})"
    return (f"switch   at {w['at_s']:.1f}s {w['kind']}: {w['from_plan']} -> {w['to_plan']}: priced {_ms(w['priced_ms'])}"
            f"{pause}, measured {_ms(w['measured_ms'])} (decision to the first new batch), first new batch "
            f"{_ms(w['first_batch_ms'])}{p99}")


def _latency_line(lat: dict | None) -> str:
    """The request latency percentiles of a load report, one line."""
    if not lat:
        return "requests latency -  (no request answered)"
    return (f"requests latency p50 {lat['median_ms']:.1f} ms, p90 {lat['p90_ms']:.1f} ms, "
            f"p99 {lat['p99_ms']:.1f} ms, max {lat['max_ms']:.1f} ms  (n={lat['n']})")


def _print_load_report(out: dict) -> None:
    """The text form of ``packrat run --load`` on stdout, from its JSON object ``out``."""
    typer.echo(f"served   {out['model']} on {out['cores']} cores, load {out['load']} ({out['load_kind']} loop), "
               f"policy {out['policy']}")
    if out.get("initial_plan"):
        typer.echo(f"start    {out['initial_plan']} (plan for the first formed batch)")
    if out.get("idle_skipped_s"):
        typer.echo(f"idle     {out['idle_skipped_s']:.3g} s of idle time skipped (the clock jumped)")
    typer.echo(f"batches  sent {out['batches_sent']}, answered {out['batches_answered']}, failed "
               f"{out['batches_failed']}; requests sent {out['requests_sent']}, answered {out['requests_answered']}")
    typer.echo(_latency_line(out.get("request_latency_ms")))
    for line in out.get("notes", ()):
        typer.echo(f"note     {line}")
    if (out.get("conditions") or {}).get("note"):
        typer.echo(f"note     {out['conditions']['note']}")
    for r in out["reconfigurations"]:
        for line in _reconfiguration_lines(r):
            typer.echo(line)
    for w in out.get("switches", []):
        typer.echo(_switch_line(w))
    learned = out.get("switch_prices_ms")
    if learned and learned.get("learned_from"):
        typer.echo(f"prices   learned from {learned['learned_from']} switch(es) on this machine: "
                   f"re-route {learned['re-route']:.2f} ms, retarget {learned['retarget']:.2f} ms")
    if out.get("history_file"):
        typer.echo(f"history  {out['history_file']} ({out['history_operations']} operations)")
    if "check" in out:
        typer.echo(f"check    serving model: {out['check']['verdict'].upper()}")


def _run_load(*, model: str, load_spec: str, cores: int | None, profile_spec: str | None,
              history_path: str | None, check_history: bool, as_json: bool, warmup: int,
              progress: bool | None, policy: str) -> None:
    """``packrat run --load``: validate (the --history path first, then the request; a bad
    policy is named with --policy), resolve --profile, serve (real_runner.load.run_load),
    print. Exit 1 when a worker fails or the history is illegal, 3 when its check is unknown."""
    from packrat_sim.policy import PolicyError
    from real_runner.executor import WorkerError
    from real_runner.load import LoadRequest, prepare_load, run_load

    output_file_arg(history_path, "--history")  # before any work, not after the whole run
    try:
        setup = prepare_load(LoadRequest(model=model, load=load_spec, cores=cores, policy=policy, warmup=warmup))
    except PolicyError as exc:
        raise BadInput(f"--policy: {exc}") from None
    profile = None if profile_spec is None else load_model_profile(profile_spec, model, planning=True)
    try:
        result = run_load(setup, profile, history_path=history_path, check=check_history, progress=progress,
                          on_note=note)
    except WorkerError as exc:
        fail(str(exc), code=1)
    if as_json:
        emit_json(result.report)
    else:
        _print_load_report(result.report)
    if result.report.get("history_error"):  # the run is reported above; only its history is lost
        fail(f"the load was served, but {result.report['history_error']}")
    if result.verdict == "illegal":
        raise typer.Exit(1)
    if result.verdict == "unknown":
        raise typer.Exit(3)


# ------------------------------------------------------------------------------- verb


def register(app: typer.Typer) -> None:
    """Add the ``run`` verb to ``app``."""

    @app.command("run")
    def run_cmd(
        model: str = typer.Option(..., "--model", help="Catalog model (tiny-mlp, tiny-cnn, resnet50, bert-base, gpt2)."),
        batch: int | None = typer.Option(None, "--batch", help="Batch size B (required unless --load)."),
        plan_spec: str | None = typer.Option(None, "--plan", help="A packrat.plan/1 JSON file, or 'auto' (optimal plan for this machine's profile); required unless --load."),
        iterations: int = typer.Option(10, "--iterations", help="Timed batches for the plan and for the fat instance (interleaved)."),
        cores: int | None = typer.Option(None, "--cores", help="Cores T for the plan and the fat instance (default: every allowed CPU)."),
        profile_spec: str | None = typer.Option(None, "--profile", help="With --plan auto: profile FILE to plan from (default: measure a quick one now)."),
        allow_oversubscribe: bool = typer.Option(False, "--allow-oversubscribe", help="Run a plan that needs more cores than this process may use (instances share CPUs)."),
        no_fat: bool = typer.Option(False, "--no-fat", help="Do not measure the fat instance beside the plan."),
        warmup: int = typer.Option(2, "--warmup", help="Untimed warm-up runs in every worker."),
        jit: bool = typer.Option(False, "--jit", help="Trace and freeze the model with TorchScript."),
        progress: bool | None = typer.Option(None, "--progress/--no-progress", help="Progress of a quick profile on stderr (default: only on a terminal)."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object and nothing else."),
        load_spec: str | None = typer.Option(None, "--load", help=f"Serve a changing load with online reconfiguration (see {LOAD_DOCS}); the same spec means the same load in `packrat simulate`. {WORKLOAD_HELP}"),
        history_path: str | None = typer.Option(None, "--history", help="With --load: write the packrat.history/1 log to FILE."),
        check_history: bool = typer.Option(False, "--check", help="With --load: check the history with the serving model (exit 1 if not linearizable)."),
        policy: str = typer.Option("packrat", "--policy", help="With --load: packrat[:KEY=VALUE,...] (the policy `packrat simulate` uses, e.g. packrat:payback_ms=5000,confirmations=3; keys in README.md, \"The policy\") or packrat-ewma (the paper's estimator)."),
    ) -> None:
        """Run batches of B inputs with a plan in pinned worker processes; report measured latency
        (median, p90, all samples) and the fat instance measured in the same run. With --load,
        serve a changing load and reconfigure online (see README.md, "Online reconfiguration
        under a changing load")."""
        if load_spec is not None:
            if batch is not None or plan_spec is not None:
                raise BadInput("--load picks batch sizes and plans itself; drop --batch and --plan")
            _run_load(model=model, load_spec=load_spec, cores=cores, profile_spec=profile_spec,
                      history_path=history_path, check_history=check_history, as_json=as_json,
                      warmup=warmup, progress=progress, policy=policy)
            return
        batch, plan_spec = _check_batch_options(batch, plan_spec, history_path, check_history, policy)
        run = _batch_run(model, batch, cores, iterations, warmup, jit=jit, allow_oversubscribe=allow_oversubscribe,
                         fat=not no_fat)
        plan, profile = _choose_plan(run, plan_spec, profile_spec, progress)
        from real_runner.conditions import conditions_report, watched

        (res, comp), conditions = watched(lambda: _measure(run, plan))
        report = _batch_report(run, plan_spec, plan, profile, res, comp)
        report["conditions"] = conditions_report(conditions, plan.predicted_ms, res.median_ms)
        if as_json:
            emit_json(report)
        else:
            _print_batch_report(run, report, plan, res, comp)
        if comp is not None and not comp.outputs_match:
            if not as_json:
                typer.echo("packrat: error: the plan's outputs differ from the fat instance's", err=True)
            raise typer.Exit(1)
