"""`packrat profile`: measure a model's latency profile, or import / export one."""

from __future__ import annotations

from typing import List, Optional

import typer

from ui._common import BadInput, emit_json, load_profile_arg


def _write(profile, out: str) -> None:
    from packrat_sim.profile import write_profile

    try:
        if out.lower().endswith(".csv"):
            with open(out, "w", encoding="utf-8") as fh:
                fh.write(profile.to_csv())
        else:
            write_profile(profile, out)
    except OSError as exc:
        raise BadInput(f"cannot write {out!r}: {exc.strerror}") from None


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


def register(app: typer.Typer) -> None:
    @app.command("profile")
    def profile_cmd(
        model: Optional[str] = typer.Option(None, "--model", help="Model to measure on this machine (needs the real runner)."),
        import_packrat: Optional[str] = typer.Option(None, "--import-packrat", help="Import one of Packrat's published profile CSVs."),
        series: List[str] = typer.Option([], "--series", help="With --import-packrat: keep the series whose COLUMN matches GLOB (repeatable), e.g. benchmark=*_script."),
        name: Optional[str] = typer.Option(None, "--name", help="With --import-packrat: model name to record (default: the benchmark column)."),
        export: Optional[str] = typer.Option(None, "--from", help="Re-export an existing profile (FILE or builtin:NAME) to --out (.json or .csv)."),
        threads: Optional[str] = typer.Option(None, "--threads", help="With --model: thread counts, e.g. 1-16 or 1,2,4."),
        batches: Optional[str] = typer.Option(None, "--batches", help="With --model: sub-batch sizes, e.g. 1,2,4,8."),
        repeats: Optional[int] = typer.Option(None, "--repeats", help="With --model: timed repeats per cell."),
        interference: bool = typer.Option(False, "--interference", help="With --model: also measure co-run slowdowns."),
        out: str = typer.Option(..., "--out", help="Where to write the profile (.json; .csv writes the tidy CSV export)."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON summary object and nothing else."),
    ) -> None:
        """Measure, import or export a latency profile L[t, b] (milliseconds per sub-batch)."""
        from packrat_sim.profile import ProfileError, import_packrat_csv, parse_series_selectors, read_text

        chosen = [x for x in (model, import_packrat, export) if x is not None]
        if len(chosen) != 1:
            raise BadInput("give exactly one of --model NAME, --import-packrat CSV or --from PROFILE")
        if series and import_packrat is None:
            raise BadInput("--series only applies to --import-packrat")
        if model is not None:
            try:
                from real_runner import profiling  # noqa: F401  (built by the real-runner issue)
            except ModuleNotFoundError:
                raise BadInput(
                    f"measuring --model {model!r} needs the real runner (real_runner/profiling.py), "
                    "which this version does not have yet; use --import-packrat or builtin profiles"
                ) from None
            raise BadInput("the real runner's profiler is present but not wired into this verb yet")
        extra = {}
        if import_packrat is not None:
            try:
                selectors = parse_series_selectors(series)
                text = read_text(import_packrat, "CSV")
                result = import_packrat_csv(text, series=selectors, model=name, source=f"Packrat CSV {import_packrat}")
            except ProfileError as exc:
                raise BadInput(f"{import_packrat}: {exc}") from None
            prof = result.profile
            extra = {"series_in_file": len(result.series), "merged_duplicate_rows": result.merged_duplicates}
        else:
            prof = load_profile_arg(export)
        _write(prof, out)
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
