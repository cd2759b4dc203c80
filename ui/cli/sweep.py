"""`packrat sweep`: simulate every combination of a grid and tabulate the results.

    packrat sweep [GRID.toml|GRID.json] [--axis NAME=V1,V2,... ...] [--out DIR]
                  [--engine local|ray|serial] [--workers N] [--ray-address auto|HOST:PORT]
                  [--yes] [--progress/--no-progress] [--json]

Axes: profile, cores, workload (ladders like ``poisson:rate=50..800/50,duration=10s``),
policy, seed; grammar in ``packrat_sim/sweep.py``. Writes ``DIR/results.csv`` (one row per
run), ``results.parquet`` (when pyarrow imports), ``grid.json`` and ``report.html``
(capacity curves and the best plan per cell). Re-running with the same ``--out`` skips
the runs already there. Exit 0 when every run succeeded, 1 when some failed (their rows
say why; the rest finished), 2 on bad input (unknown axis, empty grid, more than 100,000
runs without ``--yes``, an unreachable Ray address).
"""

from __future__ import annotations

import os
import sys
import time

import typer

from ui.cli.common import BadInput, emit_json, note
from ui.cli.engine import make_engine


def register(app: typer.Typer) -> None:
    """Add the ``sweep`` verb to the CLI."""
    app.command(
        "sweep",
        help=(
            "Simulate every combination of profile x cores x workload x policy x seed of a grid "
            "(TOML/JSON file or --axis) on a process pool or Ray; writes a table and an HTML report."
        ),
    )(sweep_command)


def _fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def progress_line(p) -> str:
    """``sweep: 45/200 runs (1 failed), 12s elapsed, ETA 41s`` for a sweep.Progress."""
    failed = f" ({p.failed} failed)" if p.failed else ""
    return f"sweep: {p.done}/{p.total} runs{failed}, {_fmt_s(p.elapsed_s)} elapsed, ETA {_fmt_s(p.eta_s)}"


class _ProgressPrinter:
    """Progress on stderr: a redrawn line on a terminal, else a line every ~5 s."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def __call__(self, p) -> None:
        now = time.monotonic()
        final = p.done == p.total
        if self.tty:
            if final or now - self.last >= 0.2:
                width = 24
                filled = int(width * p.done / p.total) if p.total else width
                bar = "#" * filled + "-" * (width - filled)
                sys.stderr.write(f"\r[{bar}] {progress_line(p)}   ")
                if final:
                    sys.stderr.write("\n")
                sys.stderr.flush()
                self.last = now
        elif final or p.done == 0 or now - self.last >= 5.0:
            print(progress_line(p), file=sys.stderr, flush=True)
            self.last = now


def sweep_command(
    grid: str | None = typer.Argument(None, help="Grid file (.toml or .json) naming the axes' values."),
    axis: list[str] | None = typer.Option(
        None, "--axis", help="NAME=V1,V2,... (repeatable; replaces the file's axis). Axes: profile, cores, workload, policy, seed."
    ),
    out: str = typer.Option("sweep-results", "--out", help="Output directory (re-use it to resume)."),
    engine: str = typer.Option("local", "--engine", help="local (process pool, default), ray, or serial (this process)."),
    workers: int | None = typer.Option(None, "--workers", help="Worker processes (local; default: this machine's CPUs) or CPUs of a local Ray instance."),
    ray_address: str | None = typer.Option(None, "--ray-address", help="With --engine ray: auto (a running cluster) or HOST:PORT; default: start a local instance."),
    yes: bool = typer.Option(False, "--yes", help="Run grids of more than 100,000 runs."),
    show_progress: bool | None = typer.Option(None, "--progress/--no-progress", help="Progress with ETA on stderr (default: on a terminal)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON summary object on stdout."),
) -> int:
    from packrat_sim import sweep as sw

    if grid is None and not axis:
        raise BadInput("empty grid: give a grid file or --axis NAME=V1,V2,... (axes: profile, cores, workload, policy, seed)")
    try:
        g = sw.load_grid(grid, axis or ())
        total = g.size()
    except sw.SweepError as exc:
        raise BadInput(str(exc)) from None
    if total > sw.CONFIRM_ABOVE and not yes:
        raise BadInput(f"the grid has {total:,} runs (more than {sw.CONFIRM_ABOVE:,}); pass --yes to run it")
    try:  # fail fast, before starting any engine; the sweep reuses them
        profiles = {spec: sw.load_profile_spec(spec) for spec in g.profiles}
    except sw.SweepError as exc:
        raise BadInput(str(exc)) from None
    try:
        sw.prepare_out_dir(out)
    except sw.SweepError as exc:
        raise BadInput(str(exc)) from None
    if show_progress is None:
        show_progress = sys.stderr.isatty()
    eng = make_engine(engine, workers, ray_address)
    try:
        if show_progress:
            note(f"sweep: {total:,} runs on the {eng.name} engine ({eng.workers} worker(s)), output in {out}")
        result = sw.run_sweep(g, out, eng, progress=_ProgressPrinter() if show_progress else None,
                              profiles=profiles)
    except sw.SweepError as exc:
        raise BadInput(str(exc)) from None
    finally:
        eng.close()
    files = list(result.files)
    try:
        from ui.reports.sweep import write_report

        files.append(write_report(result.rows, os.path.join(out, "report.html")))
    except ImportError:
        note("plotly is not installed: no report.html (pip install -e '.[ui]')")
    failures = [r for r in result.rows if r["status"] != "ok"]
    if json_out:
        emit_json(
            {
                "runs": total,
                "ran": result.ran,
                "skipped": result.skipped,
                "failed": len(failures),
                "engine": result.engine,
                "workers": result.workers,
                "elapsed_s": result.elapsed_s,
                "out": out,
                "files": files,
                "best": sw.best_per_cell(result.rows),
                "errors": sorted({r["error"] for r in failures})[:10],
            }
        )
    else:
        print(
            f"sweep: {total:,} runs: {result.ran:,} ran now ({result.failed} failed), {result.skipped:,} already in {out}; "
            f"{result.elapsed_s:.1f} s on the {result.engine} engine ({result.workers} worker(s))"
        )
        for path in files:
            print(f"  wrote {path}")
        best = sw.best_per_cell(result.rows)
        if best:
            print("best policy per cell (median p99 over seeds):")
            for b in best[:20]:
                print(f"  {b['profile']} {b['cores']} cores {b['workload']}: {b['best_policy']} "
                      f"p99 {b['best_p99_ms']:,.1f} ms ({b['plan']})")
            if len(best) > 20:
                print(f"  ... {len(best) - 20} more cells in {os.path.join(out, 'report.html')}")
    if failures:
        note(f"{len(failures)} run(s) failed; first: {failures[0]['error']}")
        return 1
    return 0
