"""`packrat bench`: fat vs thin vs the optimizer's plan vs every plan the machine allows."""

from __future__ import annotations

import json

import typer

from ui.cli.common import BadInput, emit_json, fail, load_model_profile, note, output_dir_arg, print_corun, warn_other_machine


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench_cmd(
        model: str = typer.Option(..., "--model", help="Catalog model (tiny-mlp, tiny-cnn, resnet50, bert-base, gpt2)."),
        batches: str = typer.Option(..., "--batches", help="Batch sizes, e.g. 1,2,4,8."),
        out: str | None = typer.Option(None, "--out", help="Directory for report.json, report.md and report.html (created if its parent exists; files replaced atomically)."),
        iterations: int = typer.Option(5, "--iterations", help="Interleaved rounds (one batch per plan per round)."),
        cores: int | None = typer.Option(None, "--cores", help="Cores T (default: every allowed CPU)."),
        profile_spec: str | None = typer.Option(None, "--profile", help="Profile FILE to plan and predict from (default: measure a quick one now)."),
        max_plans: int = typer.Option(24, "--max-plans", help="Cap on the exhaustive oracle's plans per batch size."),
        interference: bool = typer.Option(False, "--interference", help="Also measure co-run interference in the quick profile (a --profile with a co-run model is used with it by default) and bench the interference-aware plan beside the isolated one."),
        isolated: bool = typer.Option(False, "--isolated", help="Ignore the profile's co-run model: predict every plan from the isolated profile."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object and nothing else."),
    ) -> None:
        """Measure, interleaved, the fat instance, the thin one, the optimizer's plan and every other
        feasible plan at each batch size; report speedup over fat, regret vs the oracle's best, and
        predicted vs measured error."""
        from packrat_sim import validate
        from real_runner.bench import run_bench
        from real_runner.executor import WorkerError
        from real_runner.models import get_spec
        from real_runner.profiling import parse_int_list

        # library errors (PackratError, naming the value) reach the entry point: exit 2
        get_spec(model)
        bs = parse_int_list(batches, "--batches")
        validate.positive_int(iterations, "--iterations", error=BadInput)
        validate.positive_int(max_plans, "--max-plans", error=BadInput)
        profile = None
        if profile_spec is not None:
            profile = load_model_profile(profile_spec, model)
            from packrat_sim.plan import PlanOrigin
            from real_runner.topology import detect

            warn_other_machine(PlanOrigin.of(profile), f"--profile {profile_spec}", detect())
        output_dir_arg(out, "--out")  # before measuring: parent exists, not a symlink or a file
        try:
            report = run_bench(model, bs, cores=cores, iterations=iterations, profile=profile, max_plans=max_plans,
                               on_progress=note, interference=interference, isolated=isolated)
        except WorkerError as exc:
            fail(str(exc), code=1)
        unwritten = _write_reports(report, out) if out is not None else None
        if as_json:
            emit_json(report)
        else:
            _print_text(report, out if unwritten is None else None)
        if unwritten is not None:
            fail(unwritten)


def _write_reports(report: dict, out: str) -> str | None:
    """Write report.json, report.md and report.html into ``out`` as one set (all or none:
    ``packrat_sim.files.write_files``); None, or the one-line reason none was written."""
    from packrat_sim.files import OutputPathError, write_files
    from ui.reports.bench import to_html, to_markdown

    try:
        output_dir_arg(out, "--out", create=True)
        report["out"] = out
        write_files(out, {"report.json": json.dumps(report, indent=1) + "\n", "report.md": to_markdown(report),
                          "report.html": to_html(report)}, "--out")
    except (BadInput, OutputPathError) as exc:
        report.pop("out", None)
        return f"the measurements above are kept, but the reports were not written: {exc}"
    return None


def _print_text(report: dict, out: str | None) -> None:
    """The text form of ``packrat bench`` (``out``: where the reports were written, or None)."""
    name = report["prediction"]
    for r in report["batches"]:
        typer.echo(
            f"batch {r['batch']:4d}: fat {r['fat_ms']:8.2f} ms  thin {r['thin_ms']:8.2f} ms  "
            f"optimizer {r['optimizer']} {r['optimizer_ms']:8.2f} ms ({r['speedup_optimizer_vs_fat']:.2f}x fat)  "
            f"oracle {r['oracle_best']} {r['oracle_ms']:8.2f} ms  regret {r['regret_pct']:.1f}%"
        )
        if r.get("optimizer_predicted_ms") is not None:
            typer.echo(
                f"           optimizer predicted ({name}) {r['optimizer_predicted_ms']:.2f} ms, "
                f"error {r['optimizer_prediction_error_pct']:+.1f}%"
            )
        if r.get("median_abs_prediction_error_pct") is not None:
            noise = r.get("median_noise_pct")
            typer.echo(
                f"           {name} prediction |error| median {r['median_abs_prediction_error_pct']:.1f}% over "
                f"the {len(r['plans'])} plans, measured noise floor median {'-' if noise is None else f'{noise:.1f}%'}"
            )
        if "interference_aware" in r:
            typer.echo(
                f"           interference-aware {r['interference_aware']} {r['interference_aware_ms']:8.2f} ms  "
                f"regret {r['interference_aware_regret_pct']:.1f}%"
            )
    _print_corun(report)
    if out is not None:
        typer.echo(f"wrote {out}/report.json, report.md, report.html")
    if report["conditions"].get("note"):
        note(f"note: {report['conditions']['note']}")


def _print_corun(report: dict) -> None:
    """The line naming the one prediction per plan the bench used, and the no-co-run line
    when it applies."""
    from packrat_sim.predictor import CoRun

    print_corun(f"predictions {report['prediction']} ({report['prediction_means']}); "
                f"{CoRun.from_json(report['corun_model']).describe()}", report["notes"])


