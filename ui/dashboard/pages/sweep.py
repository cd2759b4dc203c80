"""Sweep page: a small grid (profile x cores x workload x policy x seed) on the local engine,
with progress, the latency-vs-load chart, the table and downloads (`packrat sweep` for big grids)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace

import streamlit as st

from packrat_sim import simulator
from packrat_sim import sweep as sw
from packrat_sim.engines import LocalEngine, available_cpus
from ui.dashboard import data as data
from ui.dashboard import jobs as jobs
from ui.dashboard import state as state
from ui.reports import sweep as sweep_report

MAX_RUNS = 2000  # a dashboard sweep stays small; the CLI has no such cap

#: The page's parameters as they appear in the URL (widget key -> type).
URL_KEYS = {"sweep.profile": str, "sweep.workload": str, "sweep.cores": str, "sweep.policies": list,
            "sweep.seeds": str, "sweep.workers": int, "sweep.isolated": bool}


def grid_editor() -> list[str]:
    """The grid inputs; returns them as ``NAME=V1,V2`` axis strings (as for ``--axis``)."""
    c1, c2 = st.columns([1, 3])
    state.init("sweep.profile", default_profile())
    profile = c1.text_input("Profiles (comma-separated)", key="sweep.profile",
                            help="builtin:NAME (cnn-T, transformer-T), an uploaded profile (above), or profile "
                                 "JSON files under the directory `packrat ui --data-dir DIR` names.")
    state.init("sweep.workload", "poisson:rate=50..400/50,duration=2s,max_batch=16")
    workload = c2.text_input("Workloads (ladders allowed: rate=50..800/50)", key="sweep.workload",
                             help="Workload specs as for `packrat simulate --workload`; a comma before KIND: starts "
                                  "another workload. LO..HI/STEP in an option makes a ladder.")
    c1, c2, c3, c4 = st.columns([1, 2, 1, 1])  # policies: room for all their chips (none clipped)
    state.init("sweep.cores", "8")
    cores = c1.text_input("Cores", key="sweep.cores", help="e.g. 8 or 4,8,16 or 4..16/4")
    state.init("sweep.policies", ["packrat", "fat", "thin"])
    policies = c2.multiselect("Policies", list(simulator.POLICIES), key="sweep.policies")
    state.init("sweep.seeds", "0..1")
    seeds = c3.text_input("Seeds", key="sweep.seeds", help="e.g. 0..4 or 1,2,3")
    state.init("sweep.workers", min(2, available_cpus()))
    state.clamp("sweep.workers", 1, available_cpus())
    c4.number_input("Worker processes", min_value=1, max_value=available_cpus(), step=1, key="sweep.workers")
    state.init("sweep.isolated", False)
    st.checkbox("Ignore the profiles' co-run models (isolated)", key="sweep.isolated",
                help="By default a profile with a co-run model is simulated with it (calibrated).")
    return [f"profile={profile}", f"cores={cores}", f"workload={workload}",
            f"policy={','.join(policies)}", f"seed={seeds}"]


def deprecations(workloads) -> list[str]:
    """The deprecation notes of a grid's workload specs (each spec's first ladder value), each once."""
    from packrat_sim.workload import parse_workload_noting

    notes: list[str] = []
    for spec in workloads:
        notes += parse_workload_noting(sw.expand_workload(spec)[0])[1]
    return list(dict.fromkeys(notes))


def default_profile() -> str:
    """The profile a new grid starts with: the current profile (Profiles page) when the CLI can
    name it (a built-in), else ``builtin:cnn-8``."""
    return state.profile_param() or "builtin:cnn-8"


def upload_profile() -> None:
    """An uploader for profile JSON files: each is saved into this session's directory (one of
    the places the page reads files from) and its path is shown, to put in Profiles."""
    up = st.file_uploader(f"Upload a profile JSON to sweep (at most {data.PROFILE_UPLOAD_MB} MB)", type=["json"],
                          key="sweep.upload", max_upload_size=data.PROFILE_UPLOAD_MB)
    if up is None:
        return
    from packrat_sim.files import write_file

    name = os.path.basename(up.name)
    target = os.path.join(out_dir(), "uploads", name if name not in ("", ".", "..") else "profile.json")
    if st.session_state.get("sweep.uploaded") != (up.file_id, target):  # once per file, not on every rerun
        os.makedirs(os.path.dirname(target), exist_ok=True)
        write_file(target, up.getvalue(), "uploaded profile")
        st.session_state["sweep.uploaded"] = (up.file_id, target)
    st.caption(f"Uploaded: put `{target}` in Profiles.")


def session_dir() -> str | None:
    """This session's sweep directory, or None until a sweep or an upload needs one."""
    return st.session_state.get("sweep.out")


def out_dir() -> str:
    """This session's sweep directory (runs already in it are skipped when the grid is re-run),
    made on first use: merely opening the page leaves nothing in the temporary folder."""
    if "sweep.out" not in st.session_state:
        st.session_state["sweep.out"] = tempfile.mkdtemp(prefix="packrat-sweep-")
    return st.session_state["sweep.out"]


CANCEL_KEY = "sweep.cancel"
CANCELLED = ("Sweep cancelled: its worker processes were stopped. The runs finished before Cancel are kept in the "
             "session's directory; running the grid again skips them.")


def run(grid: sw.Grid, inputs: dict) -> None:
    """Run the grid on the local engine with a progress bar and a Cancel button; stores the
    result (keyed to ``inputs``). Cancel reruns the page, which stops this run at its next
    progress update: the engine then kills its workers (``LocalEngine.map`` and ``close``)."""
    prog = state.Progress("Sweep", CANCEL_KEY)

    def progress(p: sw.Progress) -> None:
        eta = "" if p.eta_s is None else f", ETA {p.eta_s:.0f} s"
        failed = f" ({p.failed} failed)" if p.failed else ""
        prog.update(p.done / p.total if p.total else 1.0, f"{p.done}/{p.total} runs{failed}{eta}")

    # workers fork from the job server; without the app as their main they start at once
    try:
        with jobs.without_main(), LocalEngine(int(st.session_state["sweep.workers"])) as engine:
            result = sw.run_sweep(grid, out_dir(), engine, progress=progress)
    except sw.SweepError:
        prog.close()
        raise
    prog.close()
    st.progress(1.0, text=f"{len(result.rows)} runs: {result.ran} ran now, {result.skipped} already done, "
                          f"{result.failed} failed, {result.elapsed_s:.1f} s")
    state.store("sweep.result", result, inputs)


def show(result: sw.SweepResult) -> None:
    rows = list(result.rows)
    ok = [r for r in rows if r["status"] == "ok"]
    c1, c2, c3 = st.columns(3)
    c1.metric("Runs", len(rows))
    c2.metric("Failed", len(rows) - len(ok))
    c3.metric("Wall time (s)", f"{result.elapsed_s:.1f}")
    show_corun(rows)
    figures = sweep_report.capacity_figures(rows)
    for k, (_, fig) in enumerate(figures):
        st.plotly_chart(fig, key=f"sweep.capacity.{k}")
    if not figures:
        st.info("No run has an offered load (closed loops only): no latency-vs-load chart.")
    best = sw.best_per_cell(rows)
    if best:
        st.subheader("Best policy per cell (lowest median p99 over seeds)")
        st.dataframe(best, hide_index=True, key="sweep.best")
    st.subheader("All runs")
    st.dataframe(rows, hide_index=True, key="sweep.table")
    failed = [r for r in rows if r["status"] != "ok"]
    if failed:
        st.warning(f"{len(failed)} run(s) failed; first: {failed[0]['error']}", icon=":material/warning:")
    csv_path = os.path.join(out_dir(), sw.RESULTS_CSV)
    c1, c2 = st.columns(2)
    with open(csv_path, "rb") as fh:
        c1.download_button("Download the table (CSV)", fh.read(), file_name="sweep-results.csv", mime="text/csv",
                           key="sweep.download.csv")
    c2.download_button("Download the report (HTML)", sweep_report.to_html(rows), file_name="sweep-report.html",
                       mime="text/html", key="sweep.download.html")


def show_corun(rows: list[dict]) -> None:
    """How each profile's runs were priced (calibrated / isolated / none) and the no-co-run
    line when multi-instance plans ran without co-run data."""
    modes: dict[str, set] = {}
    for r in rows:
        if r.get("corun"):
            modes.setdefault(r["profile"], set()).add(r["corun"])
    if modes:
        st.caption("Co-run: " + "; ".join(f"{p}: {', '.join(sorted(m))}" for p, m in modes.items())
                   + " (calibrated: with the profile's co-run model).")
    for note in sw.corun_notes(rows):
        st.warning(note, icon=":material/warning:")


def main() -> None:
    state.use_app_navigation()
    st.title("Sweep")
    state.from_url(URL_KEYS)
    st.markdown("Simulates every combination of the grid below on this machine's process pool and plots request "
                "latency against offered load per policy: the capacity curve to plan with. Re-running skips the runs "
                "already done. Bigger grids, and Ray clusters: `packrat sweep` (see docs/scale.md).")
    upload_profile()
    axes = grid_editor()
    try:
        grid = replace(sw.load_grid(None, axes), isolated=bool(st.session_state["sweep.isolated"]))
        size = grid.size()
    except sw.SweepError as exc:
        st.error(str(exc), icon=":material/error:")
        state.to_url(URL_KEYS)
        return
    state.to_url(URL_KEYS)
    for note in deprecations(grid.workloads):
        st.warning(f"Deprecated spelling: {note}", icon=":material/warning:")
    refused = data.refused_server_file(grid.profiles, grid.workloads, data.data_dirs(session_dir()))
    if refused:
        st.error(f"Not run: {refused}.", icon=":material/error:")
        return
    st.caption(f"{size:,} runs; output in {session_dir() or 'a new temporary directory (made when the sweep runs)'}")
    state.cli_box(data.cli_sweep(axes, grid.isolated, int(st.session_state["sweep.workers"])))
    # what the result is keyed to (the worker count changes no number): any change hides it
    inputs = {a.partition("=")[0]: a.partition("=")[2] for a in axes} | {"isolated": grid.isolated}
    if size > MAX_RUNS:
        st.warning(f"{size:,} runs is more than the dashboard runs ({MAX_RUNS:,}); use `packrat sweep`.",
                   icon=":material/warning:")
    elif st.button("Run the sweep", type="primary", key="sweep.run"):
        try:
            run(grid, inputs)
        except sw.SweepError as exc:
            st.error(str(exc), icon=":material/error:")
    elif state.was_cancelled(CANCEL_KEY):
        st.warning(CANCELLED, icon=":material/cancel:")
    result = state.fresh_result("sweep.result", inputs, "Run the sweep")
    if result is not None:
        show(result)


main()
