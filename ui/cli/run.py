"""`packrat run`: run a batch with a plan on this machine's cores, beside the fat instance."""

from __future__ import annotations

import typer

from ui.cli.common import BadInput, emit_json, fail, load_model_profile, note


def _auto_plan(model: str, batch: int, cores: int, profile_spec: str | None, topo, progress, jit: bool):
    """The optimal plan for (batch, cores) from --profile, or from a quick profile measured now."""
    from packrat_sim.optimizer import OptimizerError, OptimizerOptions, optimize
    from real_runner.profiling import powers_of_two_upto, quick_profile

    if profile_spec is not None:
        profile = load_model_profile(profile_spec, model, planning=True)
    else:
        bs = ",".join(map(str, powers_of_two_upto(batch)))
        note(
            f"no --profile: measuring a quick profile of {model} (threads 1-{cores}, batches {bs}, 3 repeats); "
            f"for a careful, reusable one run `packrat profile --model {model} --threads 1-{cores} "
            f"--batches {bs} --out {model}.json` and pass --profile {model}.json"
        )
        profile = quick_profile(model, batch, cores, topology=topo, progress=progress, jit=jit)
    try:
        return optimize(profile, batch, cores, OptimizerOptions()), profile
    except OptimizerError as exc:
        raise BadInput(str(exc)) from None


def _read_plan(path: str, batch: int):
    from packrat_sim.plan import PlanError, loads_plan
    from packrat_sim.profile import ProfileError, read_text

    try:
        text = read_text(path, "plan")
    except ProfileError as exc:
        raise BadInput(str(exc)) from None
    try:
        plan = loads_plan(text)
    except PlanError as exc:
        raise BadInput(f"plan {path}: {exc}") from None
    if plan.batch != batch:
        raise BadInput(f"the plan {path} is for a batch of {plan.batch}, not --batch {batch}")
    return plan


def _fmt_stats(r: dict) -> str:
    return f"median {r['median_ms']:9.2f} ms   p90 {r['p90_ms']:9.2f} ms   (n={len(r['samples_ms'])})"


def register(app: typer.Typer) -> None:
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
        load_spec: str | None = typer.Option(None, "--load", help="Serve a changing load with online reconfiguration: 'B:DURATION,...' (closed loop, e.g. 8:20s,32:20s) or an open-loop workload (poisson:rate=200/s,duration=10s); see ui/cli/run_load.py."),
        history_path: str | None = typer.Option(None, "--history", help="With --load: write the packrat.history/1 log to FILE."),
        check_history: bool = typer.Option(False, "--check", help="With --load: check the history with the serving model (exit 1 if not linearizable)."),
        policy: str = typer.Option("packrat", "--policy", help="With --load: packrat[:KEY=VALUE,...] (the policy of packrat_sim.policy, shared with the simulator) or packrat-ewma (the paper's estimator)."),
    ) -> None:
        """Run batches of B inputs with a plan in pinned worker processes; report measured latency
        (median, p90, all samples) and the fat instance measured in the same run. With --load,
        serve a changing load and reconfigure online (see ui/cli/run_load.py)."""
        if load_spec is not None:
            if batch is not None or plan_spec is not None:
                raise BadInput("--load picks batch sizes and plans itself; drop --batch and --plan")
            from ui.cli.run_load import run_load

            run_load(model=model, load_spec=load_spec, cores=cores, profile_spec=profile_spec,
                     history_path=history_path, check_history=check_history, as_json=as_json,
                     warmup=warmup, progress=progress, policy=policy)
            return
        if history_path is not None or check_history:
            raise BadInput("--history and --check apply to --load")
        if policy != "packrat":
            raise BadInput("--policy applies to --load")
        if batch is None:
            raise BadInput("missing option --batch (or use --load SPEC)")
        if plan_spec is None:
            raise BadInput("missing option --plan (a plan FILE or 'auto'; or use --load SPEC)")
        from packrat_sim.plan import PlanError
        from packrat_sim.profile import ProfileError
        from real_runner.models import ModelError, get_spec, require_batch_memory
        from real_runner.profiling import ProfilingError, ProfilingWorkerError
        from real_runner.topology import TopologyError, detect, format_cpus, pin_plan

        try:
            get_spec(model)
            require_batch_memory(model, batch)  # before a quick profile or any worker
        except ModelError as exc:
            raise BadInput(str(exc)) from None
        if batch < 1:
            raise BadInput(f"--batch must be a positive integer, got {batch}")
        if iterations < 1:
            raise BadInput(f"--iterations must be a positive integer, got {iterations}")
        if warmup < 0:
            raise BadInput(f"--warmup must be >= 0, got {warmup}")
        topo = detect()
        T = topo.logical if cores is None else cores
        if T < 1:
            raise BadInput(f"--cores must be a positive integer, got {T}")
        if T > topo.logical and not allow_oversubscribe:
            raise BadInput(
                f"--cores {T} is beyond the {topo.logical} CPUs this process may use ({format_cpus(topo.ids)}); "
                "use fewer cores or --allow-oversubscribe"
            )
        if profile_spec is not None and plan_spec != "auto":
            raise BadInput("--profile only applies to --plan auto")

        profile = None
        try:
            if plan_spec == "auto":
                plan, profile = _auto_plan(model, batch, T, profile_spec, topo, progress, jit)
            else:
                plan = _read_plan(plan_spec, batch)
            pin_plan(plan, topo, allow_oversubscribe=allow_oversubscribe)  # validate before any worker starts
        except (TopologyError, PlanError, ProfileError, ProfilingError, ModelError) as exc:
            raise BadInput(str(exc)) from None
        except ProfilingWorkerError as exc:
            fail(str(exc), code=1)

        from real_runner.executor import ExecutorError, WorkerError, compare_with_fat, run_plan

        try:
            if no_fat:
                res = run_plan(model, plan, iterations, topology=topo, allow_oversubscribe=allow_oversubscribe,
                               jit=jit, warmup=warmup)
                comp = None
            else:
                comp = compare_with_fat(model, plan, iterations, cores=T, topology=topo,
                                        allow_oversubscribe=allow_oversubscribe, jit=jit, warmup=warmup)
                res = comp.plan
        except (TopologyError, PlanError, ExecutorError) as exc:
            raise BadInput(str(exc)) from None
        except WorkerError as exc:
            fail(str(exc), code=1)

        report = {
            "model": model,
            "batch": batch,
            "cores": T,
            "iterations": iterations,
            "topology": topo.describe(),
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
        }
        if as_json:
            emit_json(report)
        else:
            typer.echo(f"model     {model}, batch {batch}, {T} cores: {topo.describe()}")
            pred = f", predicted {plan.predicted_ms:.2f} ms" if plan.predicted_ms else ""
            typer.echo(f"plan      {res.plan.describe()}  (count x threads x sub-batch{pred})")
            typer.echo(f"          cores per instance: {[list(c) for c in res.cores]}")
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
        if comp is not None and not comp.outputs_match:
            if not as_json:
                typer.echo("packrat: error: the plan's outputs differ from the fat instance's", err=True)
            raise typer.Exit(1)
