"""`packrat fidelity`: predicted vs measured latency per plan, with the measured noise floor.

Thin verb over :func:`real_runner.bench.measure_fidelity`. Exit codes: 0 measured (the
verdict is the table: error beside noise floor), 1 a worker failed, 2 bad input.
"""

from __future__ import annotations

import typer

from ui.cli.common import BadInput, emit_json, fail, load_model_profile, note


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


def register(app: typer.Typer) -> None:
    @app.command("fidelity")
    def fidelity_cmd(
        model: str = typer.Option(..., "--model", help="Catalog model (tiny-mlp, tiny-cnn, resnet50, bert-base, gpt2)."),
        batches: str = typer.Option("1,2,4,8", "--batches", help="Batch sizes, e.g. 1,2,4,8."),
        cores: int | None = typer.Option(None, "--cores", help="Cores T (default: every allowed CPU)."),
        profile_spec: str | None = typer.Option(None, "--profile", help="Profile FILE to plan and predict from (default: measure a quick one now, with the co-run sweep)."),
        passes: int = typer.Option(3, "--passes", help="Measurement passes; the spread of their medians is the noise floor."),
        iterations: int = typer.Option(10, "--iterations", help="Batches per plan per pass."),
        order: str = typer.Option("block", "--order", help="block: each plan runs its batches of a pass back to back, as a deployed pool does (default); batch: one batch per plan in turn, so every batch follows another plan's (measures the cold cost of switching pools)."),
        interference: bool = typer.Option(True, "--interference/--no-interference", help="With a quick profile: measure the co-run sweep (default on)."),
        replicas: int = typer.Option(2, "--replicas", help="Pools (worker processes) per plan, and per profiled thread count with a quick profile: the latency is judged across processes, not one process's luck."),
        seed: int = typer.Option(0, "--seed", help="Seed of the model weights and inputs."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object and nothing else."),
    ) -> None:
        """Predicted vs measured batch latency of the plan and the fat and thin baselines at each
        batch size, measured in interleaved passes, with the error and the measured noise floor
        side by side."""
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
