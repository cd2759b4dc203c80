"""`packrat fidelity`: predicted vs measured latency per plan.

``--model``: thin over :func:`real_runner.bench.measure_fidelity` (measures now, with the
noise floor). ``--profile P --measured FILE``: thin over :mod:`packrat_sim.fidelity` (reads
measured runs, prices them isolated and calibrated; ``--html`` via ui/reports/fidelity.py).
Exit codes: 0 measured / compared (the verdict is the table), 1 a worker failed, 2 bad input.
"""

from __future__ import annotations

import typer

from ui.cli.common import (
    OUTPUT_RULE,
    BadInput,
    emit_json,
    fail,
    load_model_profile,
    load_profile_arg,
    note,
    output_file_arg,
    write_output,
)


def format_fidelity(report: dict) -> str:
    """The human-readable table of a fidelity report."""
    lines = [
        f"fidelity  {report['model']} on {report['cores']} cores ({report['topology']}), "
        f"{report.get('replicas', 1)} pool(s) per plan x {report['passes']} pass(es) x {report['iterations']} batches "
        f"({report.get('order', 'batch')} order)",
        f"{'batch':>5}  {'plan':28s} {'predicted':>10} {'measured':>10} {'error %':>8} {'noise %':>8}  roles",
    ]
    for r in report["rows"]:
        pred = "-" if r["predicted_ms"] is None else f"{r['predicted_ms']:.3f}"
        err = "-" if r["error_pct"] is None else f"{r['error_pct']:+.1f}"
        noise = "-" if r["noise_pct"] is None else f"{r['noise_pct']:.1f}"
        lines.append(
            f"{r['batch']:>5}  {r['plan']:28s} {pred:>10} {r['measured_ms']:>10.3f} {err:>8} {noise:>8}  "
            + ",".join(r["roles"])
        )

    def pct(x):
        return "-" if x is None else f"{x:.1f}%"

    lines.append(
        f"summary   median |error| {pct(report['median_abs_error_pct'])} (max {pct(report['max_abs_error_pct'])}); "
        f"measured noise floor median {pct(report['median_noise_pct'])} (max {pct(report['max_noise_pct'])}); "
        f"load average {report['loadavg_1m']}"
    )
    lines.append("          an error within the noise floor is as close as this machine lets a prediction be")
    return "\n".join(lines)


MEASURED_HELP = (
    "With --profile: compare the profile's predictions with measured runs instead of measuring: Packrat's "
    "multi-instance CSV (each run k x t x b measured by its slowest instance; series chosen as for the import) "
    "or a bench report (`packrat bench --out DIR` writes DIR/report.json; a DIR is read as DIR/report.json)."
)


def register(app: typer.Typer) -> None:
    @app.command("fidelity")
    def fidelity_cmd(
        model: str | None = typer.Option(None, "--model", help="Catalog model to measure now (tiny-mlp, tiny-cnn, resnet50, bert-base, gpt2); exclusive with --measured."),
        batches: str = typer.Option("1,2,4,8", "--batches", help="Batch sizes, e.g. 1,2,4,8."),
        cores: int | None = typer.Option(None, "--cores", help="Cores T (default: every allowed CPU)."),
        profile_spec: str | None = typer.Option(None, "--profile", help="Profile FILE to plan and predict from (default: measure a quick one now, with the co-run sweep)."),
        measured: str | None = typer.Option(None, "--measured", help=MEASURED_HELP),
        series: list[str] = typer.Option([], "--series", help="With --measured CSV: keep the series whose COLUMN matches GLOB (repeatable; default: the profile's series)."),
        html_out: str | None = typer.Option(None, "--html", help="With --measured: write a page plotting predicted against measured latency (log-log, 1:1 line). " + OUTPUT_RULE),
        passes: int = typer.Option(3, "--passes", help="Measurement passes; the spread of their medians is the noise floor."),
        iterations: int = typer.Option(10, "--iterations", help="Batches per plan per pass."),
        order: str = typer.Option("block", "--order", help="block: each plan runs its batches of a pass back to back, as a deployed pool does (default); batch: one batch per plan in turn, so every batch follows another plan's (measures the cold cost of switching pools)."),
        interference: bool = typer.Option(True, "--interference/--no-interference", help="With a quick profile: measure the co-run sweep (default on)."),
        replicas: int = typer.Option(2, "--replicas", help="Pools (worker processes) per plan, and per profiled thread count with a quick profile: the latency is judged across processes, not one process's luck."),
        seed: int = typer.Option(0, "--seed", help="Seed of the model weights and inputs."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object and nothing else."),
    ) -> None:
        """Predicted vs measured batch latency. With --model: of the plan and the fat and thin
        baselines at each batch size, measured now in interleaved passes, with the error and the
        measured noise floor side by side. With --profile P --measured FILE: of every measured
        run of FILE, predicted from the isolated profile and with its co-run model."""
        if model is not None and measured is not None:
            raise BadInput("--model measures now and --measured reads measurements: give one of them, not both")
        if measured is not None:
            if profile_spec is None:
                raise BadInput("--measured needs --profile FILE (the profile whose predictions are compared)")
            _measured(profile_spec, measured, series, html_out, as_json)
            return
        if model is None:
            raise BadInput("give --model NAME (measure now) or --profile FILE --measured FILE (compare measurements)")
        if series or html_out is not None:
            raise BadInput("--series and --html only apply to --measured")
        _live(model, batches, cores, profile_spec, passes, iterations, order, interference, replicas, seed, as_json)


def _live(model, batches, cores, profile_spec, passes, iterations, order, interference, replicas, seed, as_json) -> None:
    """`fidelity --model`: measure the plan and the baselines now (real_runner.bench.measure_fidelity)."""
    from real_runner.bench import measure_fidelity
    from real_runner.executor import WorkerError
    from real_runner.models import get_spec
    from real_runner.profiling import ProfilingWorkerError, parse_int_list

    get_spec(model)  # library errors (PackratError, naming the value) reach the entry point: exit 2
    bs = parse_int_list(batches, "--batches")
    profile = None if profile_spec is None else load_model_profile(profile_spec, model, planning=True)
    try:
        report = measure_fidelity(model, bs, cores=cores, profile=profile, passes=passes, iterations=iterations,
                                  seed=seed, interference=interference, order=order, replicas=replicas, on_progress=None if as_json else note)
    except (WorkerError, ProfilingWorkerError) as exc:
        fail(str(exc), code=1)
    except ValueError as exc:  # a bench / optimizer / predictor error naming the value
        raise BadInput(str(exc)) from None
    if as_json:
        emit_json(report)
    else:
        typer.echo(format_fidelity(report))


def _measured(profile_spec: str, measured: str, series: list[str], html_out: str | None, as_json: bool) -> None:
    """`fidelity --profile P --measured FILE`: price every measured run of FILE with P (isolated
    and calibrated), print the table (or one JSON object), and write the page with --html."""
    import os

    from packrat_sim.fidelity import compare, read_measured
    from packrat_sim.profile import parse_series_selectors, read_text

    output_file_arg(html_out, "--html")  # before any work
    profile = load_profile_arg(profile_spec)
    path = os.path.join(measured, "report.json") if os.path.isdir(measured) else measured
    text = read_text(path, "--measured file")
    runs, _ = read_measured(text, source=os.path.basename(path), profile=profile, series=parse_series_selectors(series))
    report = dict(compare(profile, runs).to_json(), profile=profile_spec, model=profile.model, measured=path)
    if html_out is not None:
        from ui.reports.fidelity import to_html

        write_output(html_out, to_html(report, title=f"packrat fidelity: {profile.model}"), "--html")
        report["html"] = html_out
    if as_json:
        emit_json(report)
    else:
        typer.echo(format_measured(report))


def format_measured(report: dict) -> str:
    """The human-readable table of a ``fidelity --measured`` report: one line per run, the
    unpriced runs, and the summary of both predictors."""
    lines = [
        f"fidelity  {report['model']} ({report['profile']}) vs measured {report['measured']}: "
        f"{len(report['rows'])} run(s) priced, {len(report['unpriced'])} unpriced"
        + ("" if report["co_run_model"] else "; the profile has no co-run model (no calibrated prediction)"),
        f"{'plan':24s} {'measured':>10} {'isolated':>10} {'error %':>8} {'calibrated':>10} {'error %':>8}  where",
    ]
    for r in report["rows"]:
        cal = "-" if r["calibrated_ms"] is None else f"{r['calibrated_ms']:.3f}"
        cal_err = "-" if r["calibrated_error_pct"] is None else f"{round(r['calibrated_error_pct'], 1) + 0.0:+.1f}"
        lines.append(f"{r['plan']:24s} {r['measured_ms']:>10.3f} {r['isolated_ms']:>10.3f} {round(r['isolated_error_pct'], 1) + 0.0:>+8.1f} "
                     f"{cal:>10} {cal_err:>8}  {r['where']}" + (f" ({r['note']})" if r["note"] else ""))
    lines += [f"unpriced  {u['plan']} ({u['where']}): {u['reason']}" for u in report["unpriced"]]

    def summary(name: str, s: dict | None) -> str:
        if s is None:
            return f"{name} -"
        return (f"{name} median |error| {s['median_abs_error_pct']:.1f}% (max {s['max_abs_error_pct']:.1f}%), "
                f"{s['optimistic']} of {s['runs']} optimistic")

    lines.append(f"summary   {summary('isolated', report['isolated'])}; {summary('calibrated', report['calibrated'])}")
    if report.get("html"):
        lines.append(f"wrote {report['html']}")
    return "\n".join(lines)
