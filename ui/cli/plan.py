"""`packrat plan`: the optimal configuration for a profile, batch and cores."""

from __future__ import annotations

import typer

from ui.cli.common import OUTPUT_RULE, BadInput, corun_fields, emit_json, load_profile_arg, note, output_file_arg, profile_line, write_output


def plan_report(profile, batch: int, cores: int, options, *, candidates: str = "profiled",
                isolated: bool = False) -> dict:
    """Optimal plan plus the fat and thin baselines, as one JSON-ready dict.

    Plan and baselines are priced by one ``packrat_sim.predictor.Predictor`` over one
    candidate set (``candidates``: ``profiled`` or ``interpolated`` cells), so a baseline
    never beats the plan. A baseline that cannot run on the candidate cells under the
    options has ``*_ms`` None and a ``*_note`` saying why (or how it was adapted).
    Calibrated by default: with a co-run model (unless ``isolated``) everything is planned
    and priced under it, and ``interference`` says what the isolated plan really costs.
    ``corun`` ("calibrated" | "isolated" | "none"), ``corun_model`` and ``notes`` (the
    no-co-run line when it applies) say which (see ``packrat_sim.predictor.corun``).
    """
    cand = _candidate_profile(profile, batch, cores, candidates)
    return priced_report(profile, cand, batch, cores, options, candidates, isolated)


def priced_report(profile, cand, batch: int, cores: int, options, candidates: str, isolated: bool) -> dict:
    """:func:`plan_report` over ``cand``, the candidate profile of ``profile``."""
    from packrat_sim.predictor import corun

    co = corun(profile, isolated)
    report = _report(profile, cand, batch, cores, options, candidates, False)
    if co.calibrated:
        report = _with_interference(report, profile, cand, batch, cores, options, candidates)
    return with_corun(with_origin(report, profile), co)


def with_origin(report: dict, profile) -> dict:
    """``report`` whose ``plan`` (the plan file's object) records what it was made from:
    the profile's model, its digest and the machine it describes (``PlanOrigin``), so that
    `plan --out`, `--export json` and the dashboard's download write them and `run` can
    refuse the plan for another model."""
    from packrat_sim.plan import Plan, PlanOrigin

    return dict(report, plan=Plan.from_json(report["plan"]).with_origin(PlanOrigin.of(profile)).to_json())


def with_corun(report: dict, co) -> dict:
    """``report`` with ``corun``, ``corun_model`` and ``notes`` (the no-co-run line when the
    plan or a baseline has more than one instance and no co-run model prices it)."""
    priced = [report.get("groups"), report.get("fat_groups"), report.get("thin_groups")]
    multi = any(groups and sum(g[0] for g in groups) > 1 for groups in priced)
    return dict(report, **corun_fields(co, co.notes_if(multi)))


def _candidate_profile(profile, batch: int, cores: int, candidates: str):
    """``packrat_sim.predictor.candidate_profile`` (a PackratError naming the value when it
    refuses). Built once per command: materialising interpolated candidates is the costly step."""
    from packrat_sim.predictor import candidate_profile

    return candidate_profile(profile, cores, batch, candidates)


def _report(profile, cand, batch: int, cores: int, options, candidates: str, interference: bool) -> dict:
    """:func:`plan_report` over ``cand``, the candidate profile of ``profile``."""
    from packrat_sim.predictor import price_baselines

    # ``cand`` is already the candidate set: "profiled" keeps it as it is
    best, base = price_baselines(cand, batch, cores, options, interference=interference)
    fat, thin = base["fat"], base["thin"]

    def ratio(ms):
        return None if ms is None else ms / best.predicted_ms

    return {
        "batch": batch,
        "cores": cores,
        "groups": [list(g) for g in best.groups()],
        "predicted_ms": best.predicted_ms,
        "dispatch_ms": cand.dispatch_ms(len(best.instances), batch),
        "fat_ms": fat.ms,
        "thin_ms": thin.ms,
        "speedup_vs_fat": ratio(fat.ms),
        "speedup_vs_thin": ratio(thin.ms),
        "fat_note": fat.note,
        "thin_note": thin.note,
        # kept for readers of older reports: baselines are now priced only on candidate cells
        "fat_interpolated": False,
        "thin_interpolated": False,
        "fat_groups": None if fat.plan is None else [list(g) for g in fat.plan.groups()],
        "thin_groups": None if thin.plan is None else [list(g) for g in thin.plan.groups()],
        "candidates": candidates,
        "profile": profile.model,
        "synthetic": profile.synthetic,
        "statistic": options.statistic or profile.statistic,
        "exact_cores": options.exact_cores,
        "homogeneous": options.homogeneous,
        "plan": best.to_json(),
    }


def _compact(groups) -> str:
    return " + ".join(f"{n} x {t}t x {b}" for n, t, b in groups)


def _baseline_line(name: str, r: dict) -> str:
    ms, note_ = r[f"{name}_ms"], r.get(f"{name}_note", "")
    if ms is None:
        return f"{name:<9} {'-':<30} {'n/a':>10}      ({note_})"
    line = f"{name:<9} {_compact(r[f'{name}_groups']):<30} {ms:10.2f} ms   plan is {r[f'speedup_vs_{name}']:.2f}x faster"
    return line + (f"   ({note_})" if note_ else "")


def format_plan_report(r: dict, profile) -> str:
    """Human-readable form of :func:`plan_report`."""
    rule = "exactly" if r["exact_cores"] else "at most"
    lines = [
        profile_line(profile),
        f"problem   batch {r['batch']} on {rule} {r['cores']} cores, latency = {r['statistic']} of each cell"
        + (", homogeneous only" if r["homogeneous"] else ""),
        f"plan      {_compact(r['groups']):<30} {r['predicted_ms']:10.2f} ms   (count x threads x sub-batch)",
        _baseline_line("fat", r),
        _baseline_line("thin", r),
    ]
    if r.get("dispatch_ms"):
        lines.append(f"dispatch  {r['dispatch_ms']:.3f} ms of the plan's prediction is the measured dispatch cost")
    if r.get("candidates") == "interpolated":
        lines.append("cells     candidates include interpolated cells (not measured); plan and baselines share them")
    if r.get("corun_model"):
        lines.insert(2, f"co-run    {_corun_line(r)}")
    if profile.synthetic:
        lines.append("note      SYNTHETIC profile: figures come from a formula, not a measurement")
    lines += [f"note      {n}" for n in r.get("notes", ())]
    return "\n".join(lines)


def _corun_line(r: dict) -> str:
    """The one line saying how the report was priced (``CoRun.describe``)."""
    from packrat_sim.predictor import CoRun

    return CoRun.from_json(r["corun_model"]).describe()


def _with_interference(report: dict, profile, cand, batch: int, cores: int, options, candidates: str) -> dict:
    """The report priced under the profile's interference model (when it has one), plus
    what the isolated plan would really cost under the same model. ``cand``: the candidate
    profile the report was priced on."""
    from packrat_sim.plan import Plan
    from packrat_sim.predictor import Predictor

    if profile.interference is None:
        return dict(report, interference=None)
    aware = _report(profile, cand, batch, cores, options, candidates, True)
    isolated = Plan.from_json(report["plan"])
    under = Predictor(cand, options.statistic, True).plan_ms(isolated)
    busy = Plan.from_json(aware["plan"]).threads_used
    return dict(
        aware,
        interference={
            "model": profile.interference.to_json(),
            "busy_cores": busy,
            "isolated_groups": report["groups"],
            "isolated_predicted_ms": report["predicted_ms"],
            "isolated_under_interference_ms": under,
            "gain": under / aware["predicted_ms"],
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


def _print_export(plan, fmt: str, as_json: bool, homogeneous=None) -> None:
    """Print ``plan`` exported as ``fmt`` (``homogeneous``: the best homogeneous plan, which
    TorchServe runs instead of a heterogeneous one); limitations go to stderr (or into the JSON)."""
    from packrat_sim.export import export_plan

    exported = export_plan(plan, fmt, homogeneous=homogeneous)  # ExportError (a PackratError) names a bad format
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
        exact_cores: bool = typer.Option(False, "--exact-cores", help="Use exactly T threads in total (Packrat's rule); by default plans may leave cores idle, which is never slower."),
        allow_idle: bool = typer.Option(False, "--allow-idle", hidden=True, help="Accepted for compatibility: idle cores are allowed by default."),
        candidates: str = typer.Option("profiled", "--candidates", help="Instance shapes the planner and the baselines may use: profiled (measured cells only) or interpolated (every threads x sub-batch, unmeasured ones interpolated)."),
        homogeneous: bool = typer.Option(False, "--homogeneous", help="Only k identical instances."),
        min_batch: int = typer.Option(1, "--min-batch", help="Smallest sub-batch an instance may get."),
        statistic: str | None = typer.Option(None, "--statistic", help="Cell statistic used as latency: min, median, mean, p90, max (default: the profile's, mean)."),
        out: str | None = typer.Option(None, "--out", help="Also write the plan file (packrat.plan/1 JSON) here. " + OUTPUT_RULE),
        isolated: bool = typer.Option(False, "--isolated", help="Ignore the profile's co-run model: plan and price from the isolated profile (by default a profile with a co-run model is planned and priced with it)."),
        interference: bool = typer.Option(False, "--interference", help="Plan under the profile's co-run model (the default when it has one; without one, say so and plan from the isolated profile)."),
        export: str | None = typer.Option(None, "--export", help="Print the plan for another stack instead: run-cpu (torch.backends.xeon.run_cpu lines), torchserve (config.properties), json (plan file)."),
        certify: bool = typer.Option(False, "--certify", help="Also prove the plan optimal with Z3 (as `packrat verify`); exit 1 if Z3 finds a faster allocation, 3 if it runs out of time."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object and nothing else."),
    ) -> None:
        """Print the latency-optimal configuration (count x threads x sub-batch), its predicted
        latency, and its speedup over the fat (1 x T threads) and thin (T x 1 thread) baselines."""
        from packrat_sim import validate
        from packrat_sim.optimizer import OptimizerError, OptimizerOptions
        from packrat_sim.plan import Plan, dumps_plan
        from packrat_sim.predictor import PredictorError, check_candidates

        output_file_arg(out, "--out")  # before any work
        prof = load_profile_arg(profile)
        if exact_cores and allow_idle:
            raise BadInput("--exact-cores and --allow-idle contradict each other; give one")
        validate.positive_int(batch, "--batch", error=BadInput)
        validate.positive_int(cores, "--cores", error=BadInput)
        try:
            check_candidates(candidates)
            options = OptimizerOptions(
                exact_cores=exact_cores, homogeneous=homogeneous, min_batch=min_batch, statistic=statistic
            )
            if statistic is not None:
                prof.with_statistic(statistic)
        except (OptimizerError, PredictorError, ValueError) as exc:
            raise BadInput(str(exc).replace("candidate set", "--candidates")) from None
        if certify and export is not None:
            raise BadInput("--certify cannot be combined with --export (an export prints only the plan)")
        if isolated and interference:
            raise BadInput("--isolated and --interference contradict each other; give one")
        cand = _candidate_profile(prof, batch, cores, candidates)
        report = priced_report(prof, cand, batch, cores, options, candidates, isolated)
        if interference and prof.interference is None:
            report["interference"] = None  # asked for, and there is none: said so below
        cert = None
        if certify:
            from ui.cli.verify import DEFAULT_TIMEOUT_S, certify_plan

            cert = certify_plan(cand, batch, cores, Plan.from_json(report["plan"]), options, DEFAULT_TIMEOUT_S,
                                interference=report["corun"] == "calibrated")
            report["certificate"] = cert.to_json()
        if export is not None:
            from packrat_sim.predictor import export_alternative

            best = Plan.from_json(report["plan"])
            alternative = export_alternative(best, export, cand, batch, cores, options,
                                             calibrated=report["corun"] == "calibrated")
            _print_export(best, export, as_json, alternative)
            return
        if out:
            try:
                write_output(out, dumps_plan(Plan.from_json(report["plan"])), "--out")
            except OSError as exc:
                raise BadInput(f"cannot write plan file {out!r}: {exc.strerror}") from None
        if as_json:
            emit_json(report)
        else:
            typer.echo(format_plan_report(report, prof))
            if "interference" in report:
                typer.echo(format_interference(report))
            if cert is not None:
                from ui.cli.verify import certificate_lines

                typer.echo("\n".join(certificate_lines(cert)))
            if out:
                typer.echo(f"wrote     {out}")
        if cert is not None:
            from ui.cli.verify import exit_code

            raise typer.Exit(exit_code(cert))
