"""`packrat run --load SPEC`: serve a changing load with online reconfiguration.

Called by ``ui/cli/run.py`` when ``--load`` is given. The load is
``real_runner.serving.parse_load``'s grammar: ``"B:DURATION,B:DURATION,..."`` is a closed
loop (the client submits a batch of B inputs, waits for the answer, submits the next,
for DURATION, then moves to the next step; ``8:20s`` alone is a constant load), and any
open-loop ``packrat simulate`` workload with arrivals (``poisson:rate=200/s,duration=10s``,
``steps:50@5s,400@5s``) has single requests aggregated into batches by the dispatcher.
Plans come from the optimizer on ``--profile`` (or a quick profile measured now, up to
the largest batch of the load).
"""

from __future__ import annotations

import typer

from ui.cli.common import BadInput, emit_json, fail, load_model_profile, note, output_file_arg


def make_planner(profile, cores: int):
    """batch -> the optimizer's plan for (batch, cores) on ``profile`` (memoised)."""
    from packrat_sim.optimizer import OptimizerOptions, optimize

    cache: dict[int, object] = {}

    def planner(batch: int):
        if batch not in cache:
            cache[batch] = optimize(profile, batch, cores, OptimizerOptions())
        return cache[batch]

    return planner


def run_load(*, model: str, load_spec: str, cores: int | None, profile_spec: str | None,
             history_path: str | None, check_history: bool, as_json: bool, clients: int = 1,
             warmup: int = 1, interval_ms: float = 250.0, alpha: float = 0.5, window: int = 4,
             progress: bool | None = None, policy: str = "packrat") -> None:
    """`packrat run --load`: serve the load with the chosen policy (``packrat[:K=V,...]``,
    the policy of packrat_sim.policy, or ``packrat-ewma``, the paper's estimator)."""
    from packrat_sim.estimator import EstimatorConfig, EstimatorError
    from packrat_sim.optimizer import OptimizerError
    from packrat_sim.policy import PolicyError, parse_overrides, parse_policy
    from real_runner.models import ModelError, get_spec, require_batch_memory
    from real_runner.profiling import powers_of_two_upto
    from real_runner.serving import LoadError, parse_load
    from real_runner.topology import detect, format_cpus

    output_file_arg(history_path, "--history")  # before any work, not after the whole run
    try:
        get_spec(model)
        load = parse_load(load_spec, clients=clients)
        require_batch_memory(model, load.max_batch, LoadError)  # before a quick profile or a worker
        cfg = EstimatorConfig(alpha=alpha, window=window, interval_ms=interval_ms,
                              max_batch=load.max_batch)
        policy_name, overrides = parse_policy(policy)
        if policy_name not in ("packrat", "packrat-ewma"):
            raise PolicyError(f"--policy {policy!r}: --load needs an adaptive policy (packrat or packrat-ewma)")
        pcfg = parse_overrides(overrides + (f"max_batch={load.max_batch}",)) if policy_name == "packrat" else None
    except PolicyError as exc:
        raise BadInput(f"--policy: {exc}") from None
    except (ModelError, LoadError, EstimatorError) as exc:
        raise BadInput(str(exc)) from None
    topo = detect()
    T = topo.logical if cores is None else cores
    if T < 1 or T > topo.logical:
        raise BadInput(f"--cores {T} must be between 1 and the {topo.logical} CPUs this process may use "
                       f"({format_cpus(topo.ids)})")
    if profile_spec is not None:
        profile = load_model_profile(profile_spec, model, planning=True)
    else:
        from real_runner.profiling import quick_profile

        top = max(cfg.upper, 1)
        note(f"no --profile: measuring a quick profile of {model} (threads 1-{T}, batches "
             f"{','.join(map(str, powers_of_two_upto(top)))})")
        profile = quick_profile(model, top, T, topology=topo, progress=progress)
    planner = make_planner(profile, T)
    try:
        planner(1)
    except OptimizerError as exc:
        raise BadInput(str(exc)) from None

    from real_runner.executor import WorkerError
    from real_runner.serving import serve_load

    catalog = None
    if pcfg is not None:
        from packrat_sim.policy import PlanCatalog

        try:
            catalog = PlanCatalog(profile, T, load.max_batch, error=BadInput, execution="chunks")
        except PolicyError as exc:
            raise BadInput(str(exc)) from None
    try:
        report = serve_load(model, load, planner, estimator=cfg, topology=topo, warmup=warmup,
                            catalog=catalog, policy=pcfg)
    except OptimizerError as exc:
        raise BadInput(str(exc)) from None
    except WorkerError as exc:
        fail(str(exc), code=1)
    history = report.pop("history")
    report.pop("runtime")
    out = {"model": model, "load": load_spec, "load_kind": load.kind, "cores": T,
           "profile": {"model": profile.model, "synthetic": profile.synthetic, "source": profile.source},
           **report}
    if history_path:
        from checker.history import write_history

        write_history(history, history_path)
        out["history_file"] = history_path
    out["history_operations"] = len(history)
    verdict = None
    if check_history:
        from checker import check

        res = check(history, "serving", timeout=60)
        verdict = res.result.value
        out["check"] = {"verdict": verdict, "operations": res.operations, "reason": res.reason}
    if as_json:
        emit_json(out)
    else:
        typer.echo(f"served   {model} on {T} cores, load {load_spec} ({load.kind} loop), policy {out['policy']}")
        if out.get("initial_plan"):
            typer.echo(f"start    {out['initial_plan']} (plan for the first formed batch)")
        if out.get("idle_skipped_s"):
            typer.echo(f"idle     {out['idle_skipped_s']:.3g} s of idle time skipped (the clock jumped)")
        typer.echo(f"batches  sent {out['batches_sent']}, answered {out['batches_answered']}, failed "
                   f"{out['batches_failed']}; requests sent {out['requests_sent']}, answered {out['requests_answered']}")
        for r in out["reconfigurations"]:
            if not r["ok"]:
                typer.echo(f"reconfig at {r['at_s']:.1f}s {r['from_plan']} -> {r['to_plan']}: ABORTED ({r['error']})")
                continue
            lat = " ".join(f"{k} {r['latency_' + k]['median_ms']:.1f}ms" if r["latency_" + k] else f"{k} -"
                           for k in ("before", "during", "after"))
            typer.echo(f"reconfig at {r['at_s']:.1f}s epoch {r['from_epoch']}->{r['to_epoch']} "
                       f"{r['from_plan']} -> {r['to_plan']}: {r['reconfigure_ms']:.0f} ms to switch, "
                       f"{r['drain_ms']:.0f} ms to drain; median batch latency {lat}")
            if r.get("trigger", "").startswith("policy: "):
                typer.echo(f"         why: {r['trigger'][len('policy: '):]}")
        if history_path:
            typer.echo(f"history  {history_path} ({len(history)} operations)")
        if verdict is not None:
            typer.echo(f"check    serving model: {verdict.upper()}")
    if verdict == "illegal":
        raise typer.Exit(1)
    if verdict == "unknown":
        raise typer.Exit(3)
