"""Planner page: the optimal plan for a batch on T cores, drawn; baselines; sweep; Z3 certificate."""

from __future__ import annotations

import streamlit as st

from checker import allocation
from packrat_sim import export
from packrat_sim.interference import optimize_with_interference
from packrat_sim.errors import PackratError
from packrat_sim.optimizer import OptimizerError, OptimizerOptions
from packrat_sim.plan import Plan, dumps_plan
from packrat_sim.predictor import CoRun, export_alternative
from packrat_sim.profile import STATISTICS, ProfileError
from ui.dashboard import charts as charts
from ui.dashboard import data as data
from ui.dashboard import state as state
from ui.cli.plan import plan_report
from ui.dashboard.help import PLAN_HELP

MAX_BATCH = 1 << 16

#: The page's parameters as they appear in the URL (widget key -> type).
URL_KEYS = {"planner.batch": int, "planner.cores": int, "planner.allow_idle": bool, "planner.homogeneous": bool,
            "planner.min_batch": int, "planner.statistic": str, "planner.max_instances": int,
            "planner.cores_per_socket": int, "planner.sweep_max": int, "planner.isolated": bool,
            "planner.z3_timeout": float, "planner.export_format": str}


def options_form(profile) -> tuple[OptimizerOptions | None, str]:
    usable = [x for x in STATISTICS if all(getattr(c, f"{x}_ms") is not None for c in profile.cells)]
    if st.session_state.get("planner.statistic") not in usable:
        st.session_state["planner.statistic"] = profile.statistic if profile.statistic in usable else usable[0]
    with st.expander("Optimizer options", expanded=False):
        c1, c2, c3 = st.columns(3)
        state.init("planner.allow_idle", True)  # `packrat plan`'s default
        c1.checkbox("Allow idle cores", key="planner.allow_idle",
                    help="On by default, as in `packrat plan`: a plan may leave cores idle, which is never slower. "
                         "Off: Packrat's rule, exactly T threads (`--exact-cores`).")
        state.init("planner.homogeneous", False)
        c1.checkbox("Homogeneous (k identical instances)", key="planner.homogeneous")
        state.init("planner.min_batch", 1)
        c2.number_input("Smallest sub-batch", min_value=1, max_value=MAX_BATCH, step=1, key="planner.min_batch")
        state.init("planner.statistic", profile.statistic)
        c2.selectbox("Cell statistic used as latency", usable, key="planner.statistic")
        state.init("planner.max_instances", 0)
        c3.number_input("At most this many instances (0: no cap)", min_value=0, max_value=4096, step=1,
                        key="planner.max_instances")
        state.init("planner.cores_per_socket", 0)
        c3.number_input("Cores per socket (0: one socket)", min_value=0, max_value=4096, step=1,
                        key="planner.cores_per_socket")
    ss = st.session_state
    stat = ss["planner.statistic"]
    try:
        options = OptimizerOptions(
            exact_cores=not ss["planner.allow_idle"],
            homogeneous=ss["planner.homogeneous"],
            min_batch=int(ss["planner.min_batch"]),
            statistic=stat,
            max_instances=int(ss["planner.max_instances"]) or None,
            cores_per_socket=int(ss["planner.cores_per_socket"]) or None,
        )
    except OptimizerError as exc:
        state.show_error("Bad optimizer options", exc)
        return None, stat
    return options, stat


def show_plan(report: dict, cores_per_socket: int | None) -> None:
    st.subheader("Optimal plan")
    st.markdown(f"#### `{data.compact(report['groups'])}`")
    st.caption("count x threads t x sub-batch; the batch latency is the slowest instance's.")
    c1, c2, c3 = st.columns(3)
    c1.metric("Plan latency", data.fmt_ms(report["predicted_ms"]), help=PLAN_HELP["plan"])
    for col, name, label in ((c2, "fat", "Fat (1 instance x T threads)"), (c3, "thin", "Thin (min(T, B) x 1 thread)")):
        ms, note = report[f"{name}_ms"], report.get(f"{name}_note")
        # a baseline the candidate cells rule out: "n/a" and why (as `packrat plan` says), never a bare n/a
        col.metric(label, data.fmt_ms(ms), help=PLAN_HELP[name],
                   delta=None if ms is None else data.fmt_speedup(report[f"speedup_vs_{name}"]),
                   delta_color="off", delta_arrow="off")
        if note:
            col.caption(f"{'n/a: ' if ms is None else ''}{note}")
    notes = []
    if report["fat_interpolated"]:
        notes.append("the fat cell was not profiled (interpolated)")
    if report["thin_interpolated"]:
        notes.append("thin cells were not profiled (interpolated)")
    if notes:
        st.caption("Note: " + "; ".join(notes) + ".")

    left, right = st.columns([3, 2])
    plan_json = report["plan"]
    owner = data.core_layout(plan_json, cores_per_socket)
    left.plotly_chart(charts.core_map(owner, plan_json["instances"], per_row=cores_per_socket), key="planner.coremap")
    left.caption("Instances drawn on contiguous cores in plan order, each inside one socket (one row per socket "
                 "when sockets are set); the real runner pins them by the machine's topology.")
    right.plotly_chart(charts.baseline_bars(report["fat_ms"], report["thin_ms"], report["predicted_ms"],
                                            notes=(report.get("fat_note"), report.get("thin_note"), None)),
                       key="planner.bars")
    st.download_button("Download plan JSON (packrat.plan/1)", dumps_plan(Plan.from_json(plan_json)),
                       file_name=f"plan-b{report['batch']}-t{report['cores']}.json", mime="application/json",
                       key="planner.dl.plan")


def show_corun(profile, report: dict, statistic: str) -> None:
    """How the plans are priced (calibrated / isolated / none), the no-co-run line when it
    applies, and every priced plan isolated and calibrated side by side."""
    co = CoRun.from_json(report["corun_model"])
    st.caption(f"Co-run: {co.describe()}.")
    for note in report.get("notes", ()):
        st.warning(note, icon=":material/warning:")
    rows = data.corun_table(profile, report, statistic)
    st.dataframe(rows, hide_index=True, key="planner.corun_table",
                 column_config={k: st.column_config.NumberColumn(format="%.2f") for k in ("isolated ms", "calibrated ms")})
    st.caption("Isolated: the profile's cells alone. Calibrated: each instance times the co-run slowdown beside the "
               "plan's other busy cores (the profile's co-run model; empty without one).")


def show_interference(profile, report: dict, options: OptimizerOptions) -> None:
    """The plan under the profile's interference model, beside the isolated plan."""
    if profile.interference is None or report.get("corun") != "calibrated":
        return
    st.subheader("Under interference")
    try:
        ip = optimize_with_interference(profile, report["batch"], report["cores"], options)
    except (OptimizerError, ProfileError) as exc:
        state.show_error("No plan under interference", exc)
        return
    c1, c2, c3 = st.columns(3)
    c1.metric("Interference-aware plan", data.fmt_ms(ip.plan.predicted_ms), delta=ip.plan.describe(),
              delta_color="off", delta_arrow="off")
    c2.metric("Isolated plan under interference", data.fmt_ms(ip.isolated_under_interference_ms),
              delta=ip.isolated_plan.describe(), delta_color="off", delta_arrow="off")
    c3.metric("Gain of planning for interference", f"{ip.gain:.2f}x")
    st.caption(f"The profile's interference model slows an instance down beside other busy cores; the aware "
               f"plan keeps {data.plural(ip.busy_cores, 'core')} busy.")


def show_export(profile, report: dict, options: OptimizerOptions) -> None:
    """The plan exported in the chosen format, as ``packrat plan --export`` prints it (TorchServe
    gets the best homogeneous plan in place of a heterogeneous one: ``export_alternative``)."""
    exp = export
    with st.expander("Export the plan (run_cpu launcher, TorchServe)"):
        state.init("planner.export_format", exp.EXPORT_FORMATS[0])
        fmt = st.selectbox("Format", exp.EXPORT_FORMATS, key="planner.export_format")
        try:
            best = Plan.from_json(report["plan"])
            # the page plans over the profiled cells: the profile is its own candidate set
            alternative = export_alternative(best, fmt, profile, report["batch"], report["cores"], options,
                                             calibrated=report["corun"] == "calibrated")
            out = exp.export_plan(best, fmt, homogeneous=alternative)
        except ValueError as exc:
            state.show_error("Cannot export", exc)
            return
        st.code(out.text, language="bash" if fmt == "run-cpu" else None)
        for note in out.limitations:
            st.caption(f"Limitation: {note}")


def show_sweep(profile, cores: int, batch: int, options: OptimizerOptions, isolated: bool = False) -> None:
    st.subheader("Best plan across batch sizes")
    top = max(data.powers_of_two(max(profile.batches)) + [batch])
    choices = data.powers_of_two(max(top, 1))
    state.init("planner.sweep_max", 256 if 256 in choices else choices[-1])
    if st.session_state["planner.sweep_max"] not in choices:
        st.session_state["planner.sweep_max"] = choices[-1]
    upto = st.select_slider("Batches 1, 2, 4, ... up to", choices, key="planner.sweep_max")
    batches = sorted(set(data.powers_of_two(upto)) | ({batch} if batch <= upto else set()))
    try:
        rows = data.batch_sweep(profile, cores, batches, options, isolated=isolated)
    except (OptimizerError, ProfileError) as exc:
        state.show_error("Cannot sweep the batch sizes", exc)
        return
    state.store("sweep", rows)
    st.plotly_chart(charts.sweep_chart(rows), key="planner.sweep")
    st.dataframe(
        [{"batch": r["batch"], "optimal plan": r["plan"] or "infeasible",
          "plan ms": r["plan_ms"], "fat ms": r["fat_ms"], "thin ms": r["thin_ms"],
          "speedup vs fat": r["speedup_vs_fat"],
          "baselines": "; ".join(f"{k}: {r[k + '_note']}" for k in ("fat", "thin") if r.get(k + "_note"))}
         for r in rows],
        hide_index=True, key="planner.sweep_table",
        column_config={k: st.column_config.NumberColumn(format="%.2f")
                       for k in ("plan ms", "fat ms", "thin ms", "speedup vs fat")},
    )


def show_certificate(profile, report: dict, options: OptimizerOptions, isolated: bool) -> None:
    st.subheader("Certificate (Z3)")
    state.init("planner.z3_timeout", float(allocation.DEFAULT_TIMEOUT_S))  # `packrat verify`'s default
    c1, c2 = st.columns([1, 3])
    c1.number_input("Z3 time limit (s)", min_value=0.5, max_value=600.0, step=5.0, key="planner.z3_timeout")
    calibrated = report.get("corun") == "calibrated"
    cmd, notes = data.cli_verify(state.profile_param(), report["batch"], report["cores"], options,
                                 float(st.session_state["planner.z3_timeout"]), isolated)
    state.cli_box(cmd, notes=notes)
    ident = (report["batch"], report["cores"], repr(options), tuple(map(tuple, report["groups"])), calibrated)
    if c2.button("Certify this plan with Z3", key="planner.btn.certify", type="primary"):
        plan = Plan.from_json(report["plan"])
        timeout_s = float(st.session_state["planner.z3_timeout"])
        try:
            cert = state.run_job("Certifying with Z3", "certify_job",
                                 dict(profile=profile, batch=report["batch"], cores=report["cores"], plan=plan,
                                      options=options, timeout_s=timeout_s, interference=calibrated),
                                 cancel_key="planner.btn.certify_cancel", budget_s=timeout_s)
        except (ValueError, OptimizerError, allocation.CertifyError) as exc:
            state.show_error("Z3 could not check this plan", exc)
            return
        state.store("certificate", (ident, cert.to_json()))
    elif state.was_cancelled("planner.btn.certify_cancel"):
        st.warning("Certification cancelled (Z3's process was stopped).")
    kept = state.result("certificate")
    if not kept or kept[0] != ident:
        st.caption("Z3 re-derives the problem from the profile (it never calls the DP) and asks whether any "
                   "allocation is strictly faster than the plan; none means the plan is optimal.")
        return
    cert = kept[1]
    verdict = cert["result"]
    enc = cert.get("encoding", {})
    detail = (f"{cert['elapsed_s']:.3f} s, {enc.get('shapes', '?')} shapes, {enc.get('variables', '?')} variables, "
              f"{enc.get('queries', '?')} query")
    if verdict == "optimal":
        st.success(f"OPTIMAL: Z3 proved that no allocation is faster than {cert['latency_ms']:.2f} ms ({detail}).",
                   icon=":material/verified:")
    elif verdict == "not_optimal":
        w = cert.get("witness") or {}
        st.error(f"NOT OPTIMAL: Z3 found {data.compact(w.get('groups', []))} at {cert['witness_ms']:.2f} ms, "
                 f"faster than the plan's {cert['latency_ms']:.2f} ms ({detail}).")
    else:
        st.warning(f"UNKNOWN: Z3 gave up ({cert.get('reason') or 'timeout'}) after {cert['elapsed_s']:.3f} s; "
                   "this is not a proof.")


def main() -> None:
    profile = state.profile_page("Planner", URL_KEYS, "plan")
    c1, c2 = st.columns(2)
    state.init("planner.batch", 64)
    c1.number_input("Batch size B (inputs)", min_value=1, max_value=MAX_BATCH, step=1, key="planner.batch")
    state.init("planner.cores", min(16, profile.max_threads))
    state.clamp("planner.cores", 1, profile.max_threads)
    c2.number_input(f"Cores T (profile goes up to {profile.max_threads})", min_value=1,
                    max_value=profile.max_threads, step=1, key="planner.cores")
    batch, cores = int(st.session_state["planner.batch"]), int(st.session_state["planner.cores"])
    state.init("planner.isolated", False)
    if profile.interference is not None:
        st.checkbox("Ignore the co-run model (isolated)", key="planner.isolated",
                    help="By default a profile with a co-run model is planned and priced with it (calibrated).")
    isolated = bool(st.session_state["planner.isolated"]) and profile.interference is not None
    options, stat = options_form(profile)
    if options is None:
        return
    try:
        prof = profile.with_statistic(stat)
        report = plan_report(prof, batch, cores, options, isolated=isolated)
    except PackratError as exc:  # BadInput or a library error naming the bad value
        state.show_error(f"No plan for batch {batch} on {data.plural(cores, 'core')}", exc)
        state.to_url(URL_KEYS)
        return
    state.store("plan", report)
    cmd, missing, notes = data.cli_plan(state.profile_param(), batch, cores, options, isolated)
    state.cli_box(cmd, missing, notes)
    show_plan(report, options.cores_per_socket)
    show_corun(prof, report, stat)
    show_export(prof, report, options)
    show_certificate(prof, report, options, isolated)
    show_interference(prof, report, options)
    st.divider()
    show_sweep(prof, cores, batch, options, isolated)
    state.to_url(URL_KEYS)


main()
