"""`packrat profile`: measure a model's latency profile, or import / export one."""

from __future__ import annotations

import typer

from ui.cli.common import OUTPUT_RULE, BadInput, emit_json, fail, load_profile_arg, note, output_file_arg, write_output


CORUN_HELP = (
    "With --import-packrat: a multi-instance CSV of the same machine (repeatable) to fit the co-run "
    "slowdown model on; slowdown of a run = its slowest instance's latency(avg) / isolated L[t,b], beside "
    "(k-1) x t other busy cores. Rows of one run share series, intraop_threads, batch_size (and instances). "
    "With an instances column: ids 1..k and id 0 a solo run (a check, not an instance) when some run has id k; "
    "else 1..k without id 0; else 0..k-1 when every run is complete; else refused as ambiguous. Missing rows: "
    "accepted, the slowest present instance. Without it: one run per series, threads and batch, ids 0..k-1 or "
    "1..k, k = rows; a gap is refused. A 1-instance (fat) run is a check, not fitted. Verbatim repeated rows "
    "are read once; two different rows for one instance id are refused. topology=interleave is its own series."
)


def _write(profile, out: str) -> None:
    """Write the profile to ``out`` (JSON, or the tidy CSV for a .csv) unless another packrat
    process is measuring into that file (refused naming it: the measurement would overwrite
    this file with its own cells at its next one)."""
    from packrat_sim.files import OutputPathError, output_lock
    from packrat_sim.profile import dumps_profile

    try:
        with output_lock(out, "--out"):
            write_output(out, profile.to_csv() if out.lower().endswith(".csv") else dumps_profile(profile), "--out")
    except OutputPathError as exc:
        raise BadInput(str(exc)) from None


def _summary(profile) -> dict:
    return {
        "model": profile.model,
        "synthetic": profile.synthetic,
        "source": profile.source,
        "cells": len(profile.cells),
        "threads": list(profile.threads),
        "batches": list(profile.batches),
        "meta": dict(profile.meta),
    }


def _measure(model, threads, batches, repeats, warmup, interference, jit, progress, out, as_json) -> None:
    """`profile --model`: measure on this machine with the real runner, then print the
    summary (one JSON object with ``as_json``, else a table of the cells)."""
    result = _run_measure(model, threads, batches, repeats, warmup, interference, jit, progress, out)
    if as_json:
        emit_json(_measured_summary(result, out))
    else:
        _print_measured(result, out)


def _run_measure(model, threads, batches, repeats, warmup, interference, jit, progress, out):
    """The ``ProfilingResult`` of measuring ``model`` into ``out`` (progress on stderr when
    asked or on a terminal). Bad input is BadInput (exit 2); a failed worker exits 1 (the
    cells measured before are kept); Ctrl-C notes what is kept and goes on up."""
    from packrat_sim.profile import ProfileError
    from real_runner.models import ModelCatalogError, get_spec
    from real_runner.profiling import (
        DEFAULT_BATCHES,
        DEFAULT_REPEATS,
        DEFAULT_WARMUP,
        ProfilingError,
        ProfilingWorkerError,
        measure_profile,
        parse_int_list,
    )
    from real_runner.topology import TopologyError, detect

    try:
        get_spec(model)
        if out.lower().endswith(".csv"):
            raise ProfilingError(
                f"--model writes a profile JSON, not {out!r}; export it afterwards with --from FILE --out X.csv"
            )
        topo = detect()
        threads_l = parse_int_list(threads, "--threads") if threads is not None else None
        batches_l = parse_int_list(batches, "--batches") if batches is not None else list(DEFAULT_BATCHES)
        result = measure_profile(
            model, threads_l, batches_l,
            DEFAULT_REPEATS if repeats is None else repeats,
            warmup=DEFAULT_WARMUP if warmup is None else warmup,
            out=out, interference=interference, progress=progress, topology=topo, jit=jit,
        )
    except (ModelCatalogError, ProfilingError, TopologyError, ProfileError) as exc:
        raise BadInput(str(exc)) from None
    except OSError as exc:
        raise BadInput(f"cannot write {out!r}: {exc.strerror or exc}") from None
    except ProfilingWorkerError as exc:
        fail(f"{exc}; the cells measured before are kept in {out}, run the same command to resume", code=1)
    except KeyboardInterrupt:
        import os

        kept = "nothing was measured yet" if not os.path.exists(out) else f"the cells measured so far are kept in {out}"
        note(f"interrupted; {kept}; run the same command to resume")
        raise
    return result


def _measured_summary(result, out: str) -> dict:
    """The ``--json`` object of a measurement: the profile's summary, what was measured or
    kept, interference, dispatch, machine, and per-cell statistics."""
    prof = result.profile
    return dict(
        _summary(prof), out=out,
        measured=[list(k) for k in result.measured],
        resumed=[list(k) for k in result.resumed],
        interference=None if prof.interference is None else prof.interference.to_json(),
        interference_measured=result.interference_measured,
        dispatch=[list(p) for p in prof.dispatch],
        statistic=prof.statistic,
        machine=prof.machine.to_json(),
        elapsed_s=round(result.elapsed_s, 3),
        cell_stats=[
            {"threads": c.threads, "batch": c.batch, "median_ms": c.median_ms, "p90_ms": c.p90_ms,
             "min_ms": c.min_ms, "max_ms": c.max_ms, "n": len(c.samples_ms)}
            for c in prof.cells
        ],
    )


def _print_measured(result, out: str) -> None:
    """The human summary of a measurement: what was written, a table of the cells (new or
    resumed, outliers flagged), the interference and the dispatch costs."""
    prof = result.profile
    typer.echo(
        f"wrote {out}: {prof.label()} on {prof.machine.cpu_model or 'this machine'}, "
        f"measured {len(result.measured)} cell(s), kept {len(result.resumed)} from the existing file, "
        f"{result.elapsed_s:.1f} s"
    )
    typer.echo(f"  {'threads':>7} {'batch':>5} {'median ms':>10} {'p90 ms':>10} {'n':>4}  note")
    new = set(result.measured)
    meta = dict(prof.meta)
    for c in prof.cells:
        outliers = meta.get(f"outliers.t{c.threads}.b{c.batch}")
        how = ("new" if (c.threads, c.batch) in new else "resumed") + (", outliers flagged (kept)" if outliers else "")
        typer.echo(f"  {c.threads:>7} {c.batch:>5} {c.median_ms:>10.3f} {c.p90_ms:>10.3f} {len(c.samples_ms):>4}  {how}")
    if prof.interference is not None:
        pts = ", ".join(f"{k} busy: x{s:.2f}" for k, s in prof.interference.points) or "none"
        typer.echo(f"  interference (slowdown beside other busy cores): {pts}")
    if prof.dispatch:
        pts = ", ".join(f"{k} inst x {b}: {ms:.3f} ms" for k, b, ms in prof.dispatch)
        typer.echo(f"  dispatch cost (pool overhead beyond compute): {pts}")


def profile_cmd(
    model: str | None = typer.Option(None, "--model", help="Model to measure on this machine (tiny-mlp, tiny-cnn, resnet50, bert-base, gpt2). Resumable: the same --out measures only missing cells."),
    import_packrat: str | None = typer.Option(None, "--import-packrat", help="Import one of Packrat's published profile CSVs."),
    series: list[str] = typer.Option([], "--series", help="With --import-packrat: keep the series whose COLUMN matches GLOB (repeatable), e.g. benchmark=*_script; chooses the --corun files' series too."),
    corun: list[str] = typer.Option([], "--corun", help=CORUN_HELP),
    name: str | None = typer.Option(None, "--name", help="With --import-packrat: model name to record (default: the benchmark column)."),
    export: str | None = typer.Option(None, "--from", help="Re-export an existing profile (FILE or builtin:NAME) to --out (.json or .csv)."),
    threads: str | None = typer.Option(None, "--threads", help="With --model: thread counts, e.g. 1-16 or 1,2,4."),
    batches: str | None = typer.Option(None, "--batches", help="With --model: sub-batch sizes, e.g. 1,2,4,8."),
    repeats: int | None = typer.Option(None, "--repeats", help="With --model: timed repeats per cell (default 5; more for millisecond cells)."),
    warmup: int | None = typer.Option(None, "--warmup", help="With --model: untimed warm-up runs per cell (default 1)."),
    interference: bool | None = typer.Option(None, "--interference/--no-interference", help="With --model: also measure co-run slowdowns and dispatch costs through pools of k one-thread instances (default: on; --no-interference skips it)."),
    jit: bool = typer.Option(False, "--jit", help="With --model: trace and freeze the model with TorchScript (recorded in the profile)."),
    progress: bool | None = typer.Option(None, "--progress/--no-progress", help="Progress bar with ETA on stderr (default: only on a terminal)."),
    out: str = typer.Option(..., "--out", help="Where to write the profile (.json; .csv writes the tidy CSV export). " + OUTPUT_RULE),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON summary object and nothing else."),
    engine: str = typer.Option("local", "--engine", help="With --model: local (this machine) or ray (one profile per machine type of the cluster, written to --out DIR/<machine>.json)."),
    ray_address: str | None = typer.Option(None, "--ray-address", help="With --engine ray: auto or HOST:PORT (default: a local Ray instance)."),
) -> None:
    """Measure, import or export a latency profile L[t, b] (milliseconds per sub-batch)."""
    output_file_arg(out, "--out")  # before any work
    chosen = [x for x in (model, import_packrat, export) if x is not None]
    if len(chosen) != 1:
        raise BadInput("give exactly one of --model NAME, --import-packrat CSV or --from PROFILE")
    if series and import_packrat is None:
        raise BadInput("--series only applies to --import-packrat")
    if corun and import_packrat is None:
        raise BadInput("--corun only applies to --import-packrat (the co-run runs are priced against the imported profile)")
    if model is not None:
        if series or name:
            raise BadInput("--series and --name only apply to --import-packrat")
        if engine != "local" or ray_address is not None:
            _measure_fleet(model, threads, batches, repeats, warmup, interference, jit, engine, ray_address, out, as_json)
            return
        _measure(model, threads, batches, repeats, warmup, interference is not False, jit, progress, out, as_json)
        return
    if any(x is not None for x in (threads, batches, repeats, warmup, interference)) or jit:
        raise BadInput("--threads, --batches, --repeats, --warmup, --[no-]interference and --jit only apply to --model")
    if import_packrat is not None:
        prof, extra = _import_packrat(import_packrat, series, name)
        if corun:
            prof, extra["corun"] = _calibrate(prof, corun, series)
    else:
        assert export is not None  # exactly one of --model, --import-packrat, --from was given
        prof, extra = load_profile_arg(export), {}
    _write(prof, out)
    _print_written(prof, out, extra, as_json)


def register(app: typer.Typer) -> None:
    """Add the ``profile`` verb to the CLI."""
    app.command("profile")(profile_cmd)


def _measure_fleet(model, threads, batches, repeats, warmup, interference, jit, engine, ray_address, out,
                   as_json) -> None:
    """`profile --model --engine ray`: one profile per machine type of the cluster."""
    from ui.cli.engine import run_fleet_profile

    if engine != "ray" or jit:
        raise BadInput("--engine must be local or ray (and --jit is not available on ray)")
    code = run_fleet_profile(model, threads, batches, repeats, warmup, interference is True, out,
                             ray_address, as_json)
    if code:
        raise typer.Exit(code)


def _import_packrat(path: str, series: list[str], name: str | None):
    """`profile --import-packrat CSV`: the imported profile and what the import found
    (series in the file, repeated rows merged); BadInput names the file."""
    from packrat_sim.profile import ProfileError, import_packrat_csv, parse_series_selectors, read_text

    try:
        selectors = parse_series_selectors(series)
        text = read_text(path, "CSV")
        result = import_packrat_csv(text, series=selectors, model=name, source=f"Packrat CSV {path}")
    except ProfileError as exc:
        raise BadInput(f"{path}: {exc}") from None
    return result.profile, {"series_in_file": len(result.series), "merged_duplicate_rows": result.merged_duplicates}


def _print_written(prof, out: str, extra: dict, as_json: bool) -> None:
    """The summary of an imported or exported profile: one JSON object, or a few lines."""
    summary = dict(_summary(prof), out=out, **extra)
    if as_json:
        emit_json(summary)
    else:
        typer.echo(
            f"wrote {out}: {prof.label()}, {summary['cells']} cells, threads "
            f"{summary['threads'][0]}..{summary['threads'][-1]}, batches {summary['batches']}"
        )
        for k, v in prof.meta:
            if k.startswith("series."):
                typer.echo(f"  series {k[len('series.'):]} = {v}")
        if extra.get("merged_duplicate_rows"):
            typer.echo(f"  merged {extra['merged_duplicate_rows']} repeated rows of the same cell (mean of their averages)")
        if "corun" in extra:
            for line in _corun_lines(extra["corun"]):
                typer.echo("  " + line)


def _calibrate(profile, paths: list[str], series: list[str]):
    """`--corun`: read each co-run CSV (series chosen by the same selectors, agreeing with the
    profile's), fit the profile's co-run model on their runs; returns (the calibrated profile,
    the JSON-able account of what was read and fitted). BadInput names the file."""
    from packrat_sim.corun import calibrate, read_corun_csv
    from packrat_sim.profile import ProfileError, parse_series_selectors, read_text

    chosen = {k[len("series."):]: v for k, v in profile.meta if k.startswith("series.")}
    files = []
    for path in paths:
        try:
            files.append(read_corun_csv(read_text(path, "--corun CSV"), source=path,
                                        series=parse_series_selectors(series), profile_series=chosen))
        except ProfileError as exc:
            raise BadInput(f"{path}: {exc}") from None
    try:
        result = calibrate(profile, files)
    except ProfileError as exc:
        raise BadInput(f"--corun: {exc}") from None
    return result.profile, _corun_account(files, result)


def _corun_account(files, result) -> dict:
    """The ``corun`` object of the summary: per file its runs, k values, skipped rows by
    reason; the checks, the unpriced runs and the fitted model."""
    from packrat_sim.corun import check_summary

    def skipped(f) -> dict:
        out: dict[str, list[int]] = {}
        for s in f.skipped:
            out.setdefault(s.reason, []).append(s.line)
        return out

    ev = result.evidence
    return {
        "files": [{"source": f.source, "series": dict(f.series), "numbering": f.numbering,
                   "runs": len(f.runs), "instances": sorted({r.instances for r in f.runs}),
                   "rows": sum(len(r.rows) for r in f.runs), "solo_rows": sum(len(r.solo) for r in f.runs),
                   "partial_runs": [r.describe() for r in f.runs if not r.complete],
                   "skipped": skipped(f)} for f in files],
        "observations": [{"threads": o.threads, "batch": o.batch, "instances": o.instances,
                          "other_busy_cores": o.other_busy_cores, "slowdown": o.slowdown,
                          "source": o.source, "line": o.source_row} for o in ev.observations],
        "solo_check": check_summary(ev.checks, "solo"), "fat_check": check_summary(ev.checks, "fat"),
        "unpriced_runs": [f"{r.describe()} ({r.source} line {r.line})" for r in ev.unpriced],
        "interference": result.profile.interference.to_json(),
    }


def _corun_lines(account: dict) -> list[str]:
    """The human lines of the ``corun`` account (what was read, skipped, checked and fitted)."""
    lines = []
    for f in account["files"]:
        lines.append(f"co-run {f['source']}: {f['runs']} run(s) of k = {','.join(map(str, f['instances']))}, "
                     f"{f['rows']} instance row(s), {f['solo_rows']} solo row(s); instance ids {f['numbering']}")
        lines += [f"  partial run {p}: measured by its slowest present instance" for p in f["partial_runs"]]
        lines += [f"  skipped {len(at)} row(s): {why}; line(s) {_some(at)}" for why, at in f["skipped"].items()]
    for key in ("solo_check", "fat_check"):
        if account[key]:
            lines.append(f"{key.replace('_', ' ')}: {account[key]}")
    lines += [f"unpriced (the profile lacks its cell): {u}" for u in account["unpriced_runs"]]
    model = account["interference"]
    pts = ", ".join(f"{k}: x{s:.3f}" for k, s in model["points"])
    lines.append(f"co-run model (other busy cores: slowdown of the slowest instance): {pts}; "
                 f"fit error {100 * model.get('fit_error', 0.0):.1f}% RMS over {len(account['observations'])} run(s)")
    return lines


def _some(lines: list[int], shown: int = 8) -> str:
    """``2, 3, 5`` or ``2, 3, ... (40 in all)``: the first ``shown`` line numbers."""
    head = ", ".join(map(str, lines[:shown]))
    return head if len(lines) <= shown else f"{head}, ... ({len(lines)} in all)"
