"""`packrat plan`: the optimal configuration for a profile, batch and cores."""

from __future__ import annotations

from typing import Optional

import typer

from ui._common import BadInput, emit_json, load_profile_arg, note


def plan_report(profile, batch: int, cores: int, options) -> dict:
    """Optimal plan plus the fat and thin baselines, as one JSON-ready dict.

    Baseline latencies use the profile's predictor (measured where profiled); the
    ``*_interpolated`` flags say when a baseline cell was not measured.
    """
    from packrat_sim import plan as plans
    from packrat_sim.optimizer import OptimizerError, optimize
    from packrat_sim.plan import PlanError
    from packrat_sim.profile import ProfileError

    try:
        best = optimize(profile, batch, cores, options)
        fat, thin = plans.fat(batch, cores), plans.thin(batch, cores)
        fat_ms = plans.plan_latency(fat, profile.predict)
        thin_ms = plans.plan_latency(thin, profile.predict)
    except (OptimizerError, PlanError, ProfileError) as exc:
        raise BadInput(str(exc)) from None

    def measured(p) -> bool:
        return all(profile.cell(i.threads, i.batch) is not None for i in p.instances)

    return {
        "batch": batch,
        "cores": cores,
        "groups": [list(g) for g in best.groups()],
        "predicted_ms": best.predicted_ms,
        "fat_ms": fat_ms,
        "thin_ms": thin_ms,
        "speedup_vs_fat": fat_ms / best.predicted_ms,
        "speedup_vs_thin": thin_ms / best.predicted_ms,
        "fat_interpolated": not measured(fat),
        "thin_interpolated": not measured(thin),
        "fat_groups": [list(g) for g in fat.groups()],
        "thin_groups": [list(g) for g in thin.groups()],
        "profile": profile.model,
        "synthetic": profile.synthetic,
        "statistic": options.statistic or profile.statistic,
        "exact_cores": options.exact_cores,
        "homogeneous": options.homogeneous,
        "plan": best.to_json(),
    }


def _compact(groups) -> str:
    return " + ".join(f"{n} x {t}t x {b}" for n, t, b in groups)


def format_plan_report(r: dict, profile) -> str:
    """Human-readable form of :func:`plan_report`."""
    rule = "exactly" if r["exact_cores"] else "at most"
    lines = [
        f"profile   {profile.label()}" + (f"  ({profile.source})" if profile.synthetic else ""),
        f"problem   batch {r['batch']} on {rule} {r['cores']} cores, latency = {r['statistic']} of each cell"
        + (", homogeneous only" if r["homogeneous"] else ""),
        f"plan      {_compact(r['groups']):<30} {r['predicted_ms']:10.2f} ms   (count x threads x sub-batch)",
        f"fat       {_compact(r['fat_groups']):<30} {r['fat_ms']:10.2f} ms   plan is {r['speedup_vs_fat']:.2f}x faster"
        + ("   [fat cell interpolated]" if r["fat_interpolated"] else ""),
        f"thin      {_compact(r['thin_groups']):<30} {r['thin_ms']:10.2f} ms   plan is {r['speedup_vs_thin']:.2f}x faster"
        + ("   [thin cells interpolated]" if r["thin_interpolated"] else ""),
    ]
    if profile.synthetic:
        lines.append("note      SYNTHETIC profile: figures come from a formula, not a measurement")
    return "\n".join(lines)


def _with_interference(report: dict, profile, batch: int, cores: int, options) -> dict:
    """Replace the report's plan by the interference-aware one (when the profile has a
    model) and record what the isolated plan would really cost under the same model."""
    from packrat_sim import plan as plans
    from packrat_sim.interference import latency_under_interference, optimize_with_interference
    from packrat_sim.optimizer import OptimizerError

    if profile.interference is None:
        return dict(report, interference=None)
    try:
        result = optimize_with_interference(profile, batch, cores, options)
    except OptimizerError as exc:
        raise BadInput(str(exc)) from None
    best = result.plan
    fat_ms = latency_under_interference(plans.fat(batch, cores), profile)
    thin_ms = latency_under_interference(plans.thin(batch, cores), profile)
    return dict(
        report,
        groups=[list(g) for g in best.groups()],
        predicted_ms=best.predicted_ms,
        fat_ms=fat_ms,
        thin_ms=thin_ms,
        speedup_vs_fat=fat_ms / best.predicted_ms,
        speedup_vs_thin=thin_ms / best.predicted_ms,
        plan=best.to_json(),
        interference={
            "model": profile.interference.to_json(),
            "busy_cores": result.busy_cores,
            "isolated_groups": [list(g) for g in result.isolated_plan.groups()],
            "isolated_predicted_ms": result.isolated_plan.predicted_ms,
            "isolated_under_interference_ms": result.isolated_under_interference_ms,
            "gain": result.gain,
        },
    )


def format_interference(report: dict) -> str:
    """Human-readable interference section of a plan report."""
    info = report.get("interference")
    if info is None:
        return "note      the profile has no interference model: planned from isolated profiles as above"
    return "\n".join([
        "interf.   all latencies above include the profile's interference model (co-run slowdowns)",
        f"isolated  {_compact(info['isolated_groups']):<30} {info['isolated_predicted_ms']:10.2f} ms alone, "
        f"{info['isolated_under_interference_ms']:.2f} ms under interference (aware plan {info['gain']:.2f}x faster)",
    ])


def _print_export(plan, fmt: str, as_json: bool) -> None:
    """Print ``plan`` exported as ``fmt``; limitations go to stderr (or into the JSON)."""
    from packrat_sim.export import ExportError, export_plan

    try:
        exported = export_plan(plan, fmt)
    except ExportError as exc:
        raise BadInput(str(exc)) from None
    if as_json:
        emit_json({"format": exported.format, "text": exported.text, "limitations": list(exported.limitations)})
        return
    typer.echo(exported.text, nl=False)
    for limitation in exported.limitations:
        note(f"note: {limitation}")


def register(app: typer.Typer) -> None:
    @app.command("plan")
    def plan_cmd(
        profile: str = typer.Option(..., "--profile", help="Profile JSON file, or builtin:NAME (cnn-16, cnn-64, transformer-16, transformer-64)."),
        batch: int = typer.Option(..., "--batch", help="Batch size B to serve (inputs)."),
        cores: int = typer.Option(..., "--cores", help="Cores T available."),
        allow_idle: bool = typer.Option(False, "--allow-idle", help="Allow plans that leave cores idle (default: exactly T threads, Packrat's rule)."),
        homogeneous: bool = typer.Option(False, "--homogeneous", help="Only k identical instances."),
        min_batch: int = typer.Option(1, "--min-batch", help="Smallest sub-batch an instance may get."),
        statistic: Optional[str] = typer.Option(None, "--statistic", help="Cell statistic used as latency: min, median, mean, p90, max (default: the profile's, mean)."),
        out: Optional[str] = typer.Option(None, "--out", help="Also write the plan file (packrat.plan/1 JSON) here."),
        interference: bool = typer.Option(False, "--interference", help="Plan under the profile's measured interference model (co-running instances slow each other down)."),
        export: Optional[str] = typer.Option(None, "--export", help="Print the plan for another stack instead: run-cpu (torch.backends.xeon.run_cpu lines), torchserve (config.properties), json (plan file)."),
        certify: bool = typer.Option(False, "--certify", help="Also prove the plan optimal with Z3 (as `packrat verify`); exit 1 if Z3 finds a faster allocation, 3 if it runs out of time."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object and nothing else."),
    ) -> None:
        """Print the latency-optimal configuration (count x threads x sub-batch), its predicted
        latency, and its speedup over the fat (1 x T threads) and thin (T x 1 thread) baselines."""
        from packrat_sim.optimizer import OptimizerError, OptimizerOptions
        from packrat_sim.plan import dumps_plan, Plan

        prof = load_profile_arg(profile)
        try:
            options = OptimizerOptions(
                exact_cores=not allow_idle, homogeneous=homogeneous, min_batch=min_batch, statistic=statistic
            )
            if statistic is not None:
                prof.with_statistic(statistic)
        except (OptimizerError, ValueError) as exc:
            raise BadInput(str(exc)) from None
        if certify and export is not None:
            raise BadInput("--certify cannot be combined with --export (an export prints only the plan)")
        report = plan_report(prof, batch, cores, options)
        if interference:
            report = _with_interference(report, prof, batch, cores, options)
        cert = None
        if certify:
            from ui.cmd_verify import DEFAULT_TIMEOUT_S, certify_plan

            under = interference and report.get("interference") is not None
            cert = certify_plan(prof, batch, cores, Plan.from_json(report["plan"]), options, DEFAULT_TIMEOUT_S,
                                interference=under)
            report["certificate"] = cert.to_json()
        if export is not None:
            _print_export(Plan.from_json(report["plan"]), export, as_json)
            return
        if out:
            try:
                with open(out, "w", encoding="utf-8") as fh:
                    fh.write(dumps_plan(Plan.from_json(report["plan"])))
            except OSError as exc:
                raise BadInput(f"cannot write plan file {out!r}: {exc.strerror}") from None
        if as_json:
            emit_json(report)
        else:
            typer.echo(format_plan_report(report, prof))
            if interference:
                typer.echo(format_interference(report))
            if cert is not None:
                from ui.cmd_verify import certificate_lines

                typer.echo("\n".join(certificate_lines(cert)))
            if out:
                typer.echo(f"wrote     {out}")
        if cert is not None:
            from ui.cmd_verify import exit_code

            raise typer.Exit(exit_code(cert))
