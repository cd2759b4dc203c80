"""`packrat sweep`: simulate every combination of a grid and tabulate the results.

    packrat sweep [GRID.toml|GRID.json] [--axis NAME=V1,V2,... ...] [--out DIR]
                  [--engine local|ray|serial] [--workers N] [--ray-address auto|HOST:PORT]
                  [--yes] [--progress/--no-progress] [--json]

Axes: profile, cores, workload (ladders like ``poisson:rate=50..800/50,duration=10s``),
policy, seed; grammar in ``packrat_sim/sweep.py``. Writes ``DIR/results.csv`` (one row per
run), ``results.parquet`` (when pyarrow imports), ``grid.json`` and ``report.html``
(capacity curves and the best plan per cell). Re-running with the same ``--out`` skips
the runs already there (an edited profile file runs again). Every output file is checked
before any run (a symlink, FIFO, device or directory in its place is refused), and one
sweep at a time writes a directory (a second is refused naming the first's pid). Exit 0
when every run succeeded, 1 when some failed (their rows say why; the rest finished), 2 on
bad input (unknown axis, empty grid, more than 100,000 runs without ``--yes``, an
unreachable Ray address, a busy or unusable ``--out``) and when a file cannot be written
after the runs (a full disk): the summary is printed all the same, then one line naming
what was not written.
"""

from __future__ import annotations

import contextlib
import os
import sys

import typer

from ui.cli.common import EXIT_BAD_INPUT, BadInput, emit_json, note, print_corun, print_error
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


def _sweep_bar(total: int, enabled: bool):
    """The sweep's progress line on stderr (:class:`packrat_sim.progress.ProgressBar`) and the
    ``run_sweep`` callback that feeds it a ``sweep.Progress``: runs done, failures, the
    sweep's own ETA."""
    from packrat_sim.progress import ProgressBar

    bar = ProgressBar("sweep:", total, enabled=enabled, unit="runs", external_eta=True)

    def show(p) -> None:
        bar.update(completed=p.done, total=p.total, text=f"({p.failed} failed)" if p.failed else "", eta_s=p.eta_s)

    return bar, show


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
    isolated: bool = typer.Option(False, "--isolated", help="Ignore the profiles' co-run models (by default a profile with one is simulated with it); isolated runs are kept apart from calibrated ones in --out."),
) -> int:
    """Run the grid (see the module docstring); exit 0, 1 when some runs failed, 2 on bad input."""
    from dataclasses import replace

    from packrat_sim import sweep as sw

    g, total, profiles = _load_grid(grid, axis, yes, out)
    g = replace(g, isolated=isolated)
    if show_progress is None:
        show_progress = sys.stderr.isatty()
    with contextlib.ExitStack() as held:
        try:  # held until the report is written: a second sweep into --out is refused, never mixed in
            held.enter_context(sw.sweep_lock(out))
        except sw.SweepError as exc:
            raise BadInput(str(exc)) from None
        result = _run(g, out, total, profiles, engine, workers, ray_address, show_progress)
        report, report_errors = _report(result.rows, out)
    files = [*result.files, *report]
    errors = [*result.errors, *report_errors]
    failures = [r for r in result.rows if r["status"] != "ok"]
    modes = _corun_modes(profiles, isolated)
    notes = sw.corun_notes(result.rows)
    if json_out:
        emit_json(dict(_summary(result, total, out, files, failures), corun=modes, notes=notes, write_errors=errors))
    else:
        _print_summary(result, total, out, files)
        print_corun("; ".join(f"{spec}: {mode}" for spec, mode in modes.items()), notes)
    if failures:
        note(f"{len(failures)} run(s) failed; first: {failures[0]['error']}")
    if errors:  # the runs are done and summarised above; what could not be kept is named here
        sys.stdout.flush()
        print_error(f"the sweep ran, but {'; '.join(errors)}")
        return EXIT_BAD_INPUT
    return 1 if failures else 0


def _run(g, out: str, total: int, profiles: dict, engine: str, workers: int | None, ray_address: str | None,
         show_progress: bool):
    """Start the engine, run the sweep with a progress bar, stop the engine; the SweepResult."""
    from packrat_sim import sweep as sw

    eng = make_engine(engine, workers, ray_address)
    try:
        if show_progress:
            note(f"sweep: {total:,} runs on the {eng.name} engine ({eng.workers} worker(s)), output in {out}")
        bar, show = _sweep_bar(total, show_progress)
        with bar:
            return sw.run_sweep(g, out, eng, progress=show if show_progress else None, profiles=profiles)
    except sw.SweepError as exc:
        raise BadInput(str(exc)) from None
    finally:
        eng.close()


def _load_grid(grid: str | None, axis: list[str] | None, yes: bool, out: str):
    """The grid, its number of runs and its profiles ({spec: Profile}), loaded before any
    engine starts, and the output directory prepared; BadInput names what is wrong."""
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
        sw.prepare_out_dir(out)
    except sw.SweepError as exc:
        raise BadInput(str(exc)) from None
    return g, total, profiles


def _corun_modes(profiles: dict, isolated: bool) -> dict[str, str]:
    """{profile spec: "calibrated" | "isolated" | "none"} (``packrat_sim.predictor.corun``)."""
    from packrat_sim.predictor import corun

    return {spec: corun(profile, isolated).mode for spec, profile in profiles.items()}


def _report(rows, out: str) -> tuple[list[str], list[str]]:
    """(``[OUT/report.html]`` once written, []); nothing written (with a note) when plotly is
    missing; ([], [why]) when the page cannot be written (a full disk)."""
    from packrat_sim.files import OutputPathError
    from packrat_sim.sweep import REPORT_HTML

    try:
        from ui.reports.sweep import write_report
    except ImportError:
        note("plotly is not installed: no report.html (pip install -e '.[ui]')")
        return [], []
    try:
        return [write_report(rows, os.path.join(out, REPORT_HTML))], []
    except OutputPathError as exc:
        return [], [str(exc)]


def _summary(result, total: int, out: str, files: list[str], failures: list[dict]) -> dict:
    """The ``--json`` object of a finished sweep."""
    from packrat_sim import sweep as sw

    return {
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


def _print_summary(result, total: int, out: str, files: list[str]) -> None:
    """The human summary on stdout: counts, files written, the best policy per cell (20 at most)."""
    from packrat_sim import sweep as sw

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
