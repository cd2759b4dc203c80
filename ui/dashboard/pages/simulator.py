"""Simulator page: a workload against Packrat (adaptive) and the fat / thin baselines, in SimPy."""

from __future__ import annotations

import functools
import json

import streamlit as st

from packrat_sim import simulator as sim
from packrat_sim import workload as wl_mod
from packrat_sim.predictor import corun, priced_profile
from ui.dashboard import charts as charts
from ui.dashboard import data as data
from ui.dashboard import state as state
from ui.dashboard.help import POLICY_HELP, TIMELINE_HELP, table_help

#: The page's parameters as they appear in the URL (widget key -> type).
URL_KEYS = {"sim.cores": int, "sim.seed": int, "sim.kind": str, "sim.rate": float, "sim.duration": float,
            "sim.steps": str, "sim.base": float, "sim.peak": float, "sim.period_s": float,
            "sim.duration_s": float, "sim.c_batch": int, "sim.c_steps": str, "sim.c_requests": int, "sim.c_clients": int,
            "sim.c_think_ms": int, "sim.spec": str, "sim.max_batch": int, "sim.max_delay": float,
            "sim.policies": list, "sim.start_ms": float, "sim.warmup": int, "sim.isolated": bool,
            "sim.gantt_policy": str, "sim.window_start": float, "sim.window_len": float}

KINDS = {
    "poisson": "Poisson arrivals",
    "steps": "Step load",
    "diurnal": "Diurnal (sinusoidal) load",
    "closed": "Closed loop, request count",
    "closed_steps": "Closed loop, stepped batches",
    "spec": "Spec text",
}


def editor() -> str:
    """The workload editor; returns the spec string it describes."""
    state.init("sim.kind", "steps")
    kind = st.radio("Workload", list(KINDS), format_func=KINDS.get, key="sim.kind", horizontal=True)
    f: dict = {}
    cols = st.columns(4)
    if kind == "poisson":
        state.init("sim.rate", 300.0)
        f["rate"] = cols[0].number_input("Rate (req/s)", min_value=0.1, max_value=1e5, key="sim.rate")
        state.init("sim.duration", 20.0)
        f["duration_s"] = cols[1].number_input("Duration (s)", min_value=0.1, max_value=3600.0, key="sim.duration")
    elif kind == "steps":
        state.init("sim.steps", "100/s@10s,600/s@10s,100/s@10s")
        f["steps"] = cols[0].text_input("Steps RATE@DURATION, ...", key="sim.steps",
                                        help="e.g. 100/s@10s,600/s@10s: 100 req/s for 10 s, then 600 req/s.")
    elif kind == "diurnal":
        for i, (k, label, v) in enumerate((("base", "Base (req/s)", 50.0), ("peak", "Peak (req/s)", 600.0),
                                           ("period_s", "Period (s)", 20.0), ("duration_s", "Duration (s)", 40.0))):
            state.init(f"sim.{k}", v)
            f[k] = cols[i].number_input(label, min_value=0.0, max_value=1e5, key=f"sim.{k}")
    elif kind == "closed":
        for i, (k, label, v) in enumerate((("batch", "Batch", 64), ("requests", "Requests", 2000))):
            state.init(f"sim.c_{k}", v)
            f[k] = cols[i].number_input(label, min_value=1, max_value=10**6, step=1, key=f"sim.c_{k}")
    elif kind == "closed_steps":
        state.init("sim.c_steps", "8@10s,32@10s,8@10s")
        f["steps"] = cols[0].text_input("Steps BATCH@DURATION, ...", key="sim.c_steps",
                                        help="e.g. 8@10s,32@10s: batches of 8 for 10 s, then batches of 32.")
    if kind in ("closed", "closed_steps"):
        for i, (k, label, v) in ((2, ("clients", "Clients", 1)), (3, ("think_ms", "Think (ms)", 0))):
            state.init(f"sim.c_{k}", v)
            f[k] = cols[i].number_input(label, min_value=0 if k == "think_ms" else 1, max_value=10**6, step=1,
                                        key=f"sim.c_{k}")
    elif kind == "spec":
        state.init("sim.spec", "poisson:rate=300/s,duration=20s")
        f["spec"] = st.text_input("Workload spec (as for `packrat simulate --workload`)", key="sim.spec")
    if kind in ("poisson", "steps", "diurnal"):
        state.init("sim.max_batch", 64)
        f["max_batch"] = cols[2 if kind != "diurnal" else 0].number_input(
            "Max batch", min_value=1, max_value=4096, step=1, key="sim.max_batch")
        state.init("sim.max_delay", 10.0)
        f["max_delay_ms"] = cols[3 if kind != "diurnal" else 1].number_input(
            "Max batching delay (ms)", min_value=0.0, max_value=10000.0, key="sim.max_delay")
    return data.workload_spec(kind, f)


def _html(fig) -> bytes:
    """A chart as a self-contained HTML page (plotly.js inlined: opens offline)."""
    return fig.to_html(include_plotlyjs=True, full_html=True).encode()


def show_results(kept: dict) -> None:
    results = kept["results"]
    st.subheader("Results")
    st.caption(f"{kept['description']} on {data.plural(kept['cores'], 'core')}, seed {kept['seed']}; "
               f"profile {kept['profile']}.")
    show_corun(kept)
    rows = data.sim_rows(results)
    st.dataframe(rows, hide_index=True, key="sim.table",
                 column_config={k: st.column_config.NumberColumn(format="%.2f")
                                for k in ("throughput req/s", "mean batch", "p50 ms", "p90 ms", "p99 ms",
                                          "batch p50 ms", "utilisation")})
    cols = st.columns(len(results))
    for c, r in zip(cols, results):
        c.metric(f"{r.name}: p99 latency", data.fmt_ms(r.stats.request_latency.p99_ms), help=POLICY_HELP.get(r.name),
                 delta=f"{r.stats.throughput_per_s:.1f} req/s, util {r.stats.utilisation:.0%}", delta_color="off", delta_arrow="off")
    # the per-request data of the runs is reshaped once per result, not on every rerun of the page
    points = state.memo(kept, "cdf", lambda: {r.name: data.cdf_points(data.request_latencies(r)) for r in results})
    cdf = charts.latency_cdf(points, title="Request latency CDF (arrival to answer)")
    st.plotly_chart(cdf, key="sim.cdf")

    names = [r.name for r in results]
    if st.session_state.get("sim.gantt_policy") not in names:
        st.session_state["sim.gantt_policy"] = "packrat" if "packrat" in names else names[0]
    state.init("sim.gantt_policy", names[0])
    name = st.selectbox("Run shown over time", names, key="sim.gantt_policy", help=POLICY_HELP.get(names[0]))
    res = results[names.index(name)]

    st.markdown("#### Over time")
    series = state.memo(kept, f"series:{name}", lambda: data.sim_time_series(res))
    ts = charts.time_series(series, series["marks"],
                            title=f"{name}: latency, throughput and queue length (dashed: reconfigurations)")
    st.plotly_chart(ts, key="sim.timeseries")
    st.caption(" ".join(f"**{k}**: {TIMELINE_HELP[k]}." for k in ("latency", "throughput", "queue"))
               + f" Bins of {series['bin_s']:.3g} s.")

    st.markdown("#### Per-instance timeline")
    c2, c3 = st.columns(2)
    span_ms = float(res.records.batch_completion_ms.max()) if res.records.batch_size.size else 1.0
    first = res.reconfigurations[0].call_ms if res.reconfigurations else 0.0
    state.init("sim.window_start", max(0.0, first - 200.0) / 1000.0)
    state.init("sim.window_len", 2.0)
    state.clamp("sim.window_start", 0.0, span_ms / 1000.0)
    start_s = c2.number_input("Window start (s)", min_value=0.0, max_value=span_ms / 1000.0, key="sim.window_start")
    len_s = c3.number_input("Window length (s)", min_value=0.05, max_value=600.0, key="sim.window_len")
    spans, marks = data.sim_gantt(res, start_s * 1000.0, (start_s + len_s) * 1000.0)
    gantt = charts.gantt(spans, marks, title=f"{name}: instances over time (red: reconfigure, dashed; switch, solid)")
    st.plotly_chart(gantt, key="sim.gantt")
    st.caption(" ".join(f"**{k}**: {TIMELINE_HELP[k]}." for k in ("epoch", "start + warm-up", "reconfigure", "switch"))
               + " Hover a red label for the new plan and the time.")
    why_not = res.no_reconfiguration_reasons()
    if why_not:  # the CLI's words for why the policy kept its first plan
        st.info(f"{name}: " + "\n\n".join(why_not), icon=":material/info:")
    if res.reconfigurations:
        st.caption(f"{data.plural(len(res.reconfigurations), 'reconfiguration')}; the first at {first / 1000:.2f} s.")
        st.dataframe([rc.to_json() | {"to_plan_json": None} for rc in res.reconfigurations][:200],
                     hide_index=True, key="sim.reconfigs",
                     column_order=("from_epoch", "to_epoch", "from_plan", "to_plan", "call_ms", "switch_ms",
                                   "drained_ms", "duration_ms", "restarted"),
                     column_config={k: st.column_config.NumberColumn(format="%.2f")
                                    for k in ("call_ms", "switch_ms", "drained_ms", "duration_ms")})

    st.markdown("#### Downloads")
    d = st.columns(4)
    d[0].download_button("Summary JSON (all runs)", json.dumps([r.to_json() for r in results], indent=1),
                         file_name="sim-summary.json", mime="application/json", key="sim.dl.summary", on_click="ignore")
    d[1].download_button("Summary CSV (all runs)", data.rows_csv(rows), file_name="sim-summary.csv",
                         mime="text/csv", key="sim.dl.summary_csv", on_click="ignore")
    d[2].download_button(f"{name}: per-request CSV", res.requests_csv, file_name=f"sim-{name}.requests.csv",
                         mime="text/csv", key="sim.dl.requests", on_click="ignore")
    d[3].download_button(f"{name}: time series CSV", data.series_csv(series), file_name=f"sim-{name}.series.csv",
                         mime="text/csv", key="sim.dl.series", on_click="ignore")
    d = st.columns(4)
    d[0].download_button(f"{name}: timeline JSON", lambda: json.dumps(res.timeline_json()),
                         file_name=f"sim-{name}.timeline.json", mime="application/json", key="sim.dl.timeline",
                         on_click="ignore")
    for col, (label, fig, fname) in zip(d[1:], (("CDF chart (HTML)", cdf, "sim-cdf.html"),
                                                ("Time series chart (HTML)", ts, f"sim-{name}-series.html"),
                                                ("Timeline chart (HTML)", gantt, f"sim-{name}-timeline.html"))):
        col.download_button(label, functools.partial(_html, fig), file_name=fname, mime="text/html",
                            key=f"sim.dl.{fname}", on_click="ignore")
    st.caption("PNG of any chart: the camera button of the chart's toolbar. HTML charts open offline.")
    c1, c2 = st.columns(2)
    c1.download_button(f"Download {name} history (packrat.history/1)", json.dumps(res.history()),
                       file_name=f"sim-{name}.history.json", mime="application/json", key="sim.dl.history",
                       on_click="ignore")
    if c2.button(f"Check {name}'s history on the Verification page", key="sim.btn.tocheck"):
        st.session_state["verify.incoming"] = {"name": f"simulated {name} run", "text": json.dumps(res.history())}
        st.session_state["verify.section"] = "History checker"
        st.session_state.pop("result.check", None)
        st.switch_page("pages/verification.py")


def show_corun(kept: dict) -> None:
    """How service times were priced (calibrated / isolated / none) and the no-co-run line
    when a multi-instance plan ran without co-run data."""
    co = kept.get("corun")
    if co is None:
        return
    st.caption(f"Co-run: {co.describe()}.")
    for note in co.notes(p for r in kept["results"] for p in r.plans):
        st.warning(note, icon=":material/warning:")


def save_and_compare(kept: dict | None) -> None:
    """Keep named runs for the session and compare them side by side. ``kept``: the result
    shown above (None when there is none, or it is out of date: then nothing to save), while
    the saved runs, each labelled with its own inputs, stay comparable."""
    saved: dict = st.session_state.setdefault("sim.saved", {})
    if kept is None and not saved:
        return
    st.markdown("#### Compare saved runs")
    state.init("sim.compare", [])
    if kept is not None:
        c1, c2 = st.columns([3, 1])
        default = f"run {len(saved) + 1}: {kept['spec'][:40]}"
        label = c1.text_input("Save this result as", value=default, key="sim.save_name")
        if c2.button("Save run", key="sim.btn.save"):
            name = label.strip() or default
            saved[name] = kept
            st.session_state["sim.compare"] = [n for n in st.session_state["sim.compare"] if n != name] + [name]
            st.success(f"Saved {name!r}.")
    if not saved:
        st.caption("Save runs (different workloads, seeds or cores) to compare them here.")
        return
    st.session_state["sim.compare"] = [n for n in st.session_state["sim.compare"] if n in saved]
    chosen = st.multiselect("Runs to compare", list(saved), key="sim.compare")
    table: list[dict] = []
    for run in chosen:
        k = saved[run]
        table.extend({"run": run, "cores": k["cores"], "seed": k["seed"], "workload": k["spec"], **r}
                     for r in data.sim_rows(k["results"]))
    if table:
        st.dataframe(table, hide_index=True, key="sim.compare_table",
                     column_config={c: st.column_config.NumberColumn(format="%.2f")
                                    for c in ("throughput req/s", "mean batch", "p50 ms", "p90 ms", "p99 ms",
                                              "batch p50 ms", "utilisation")})
        bars = [{"run": f"{t['run']} / {t['policy']}", "p99 ms": t["p99 ms"]} for t in table]
        st.plotly_chart(charts.compare_bars(bars, "p99 ms", "p99 request latency per saved run and policy"),
                        key="sim.compare_chart")
        st.download_button("Comparison CSV", data.rows_csv(table), file_name="sim-compare.csv", mime="text/csv",
                           key="sim.dl.compare", on_click="ignore")


def main() -> None:
    profile = state.profile_page("Simulator", URL_KEYS, "policy")

    c1, c2 = st.columns(2)
    state.init("sim.cores", min(16, profile.max_threads))
    state.clamp("sim.cores", 1, profile.max_threads)
    cores = int(c1.number_input("Cores T", min_value=1, max_value=profile.max_threads, step=1, key="sim.cores"))
    state.init("sim.seed", 0)
    seed = int(c2.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, key="sim.seed"))
    spec = editor()
    try:
        workload, deprecated = wl_mod.parse_workload_noting(spec)
    except ValueError as exc:
        state.show_error("Bad workload", exc)
        workload, deprecated = None, ()
    for note in deprecated:
        st.warning(f"Deprecated spelling: {note}", icon="⚠️")
    if workload is not None:
        st.caption(f"`{spec}`: {wl_mod.describe(workload)}")

    options = list(sim.POLICIES)
    plan_report = state.result("plan")
    if plan_report:
        options.append("planner's plan")
    state.init("sim.policies", list(sim.POLICIES))
    if not set(st.session_state["sim.policies"]) <= set(options):
        st.session_state["sim.policies"] = [p for p in st.session_state["sim.policies"] if p in options]
    policies = st.multiselect("Policies (same arrivals for all)", options, key="sim.policies",
                              help=table_help({k: v for k, v in POLICY_HELP.items() if k in options}, "policy"))
    state.init("sim.isolated", False)
    if profile.interference is not None:
        st.checkbox("Ignore the co-run model (isolated)", key="sim.isolated",
                    help="By default a profile with a co-run model slows each instance by it (calibrated).")
    co = corun(profile, bool(st.session_state["sim.isolated"]))
    with st.expander("Reconfiguration model"):
        state.init("sim.start_ms", float(sim.SimConfig().start_ms))  # the library's (and the CLI's) defaults
        st.number_input("Instance start-up (ms)", min_value=0.0, max_value=60000.0, key="sim.start_ms")
        state.init("sim.warmup", int(sim.SimConfig().warmup_iterations))
        st.number_input("Warm-up inferences", min_value=0, max_value=100, step=1, key="sim.warmup")
    start_ms, warmup = float(st.session_state["sim.start_ms"]), int(st.session_state["sim.warmup"])
    if workload is not None:
        cmd, missing, notes = data.cli_simulate(state.profile_param(), cores, spec, seed, co.mode == "isolated",
                                                start_ms=start_ms, warmup=warmup)
        if "planner's plan" in policies:
            missing.append("the planner's plan as a policy")
        state.cli_box(cmd, missing, notes)

    plan = None
    if plan_report and "planner's plan" in policies:
        from packrat_sim.plan import Plan

        plan = Plan.from_json(plan_report["plan"])
    # what the results below are keyed to: any change hides them until Simulate runs again
    inputs = {"profile": profile.label(), "co-run": co.mode, "cores": cores, "workload": spec, "seed": seed,
              "policies": ", ".join(policies), "start-up (ms)": start_ms, "warm-up": warmup,
              "planner's plan": plan.describe() if plan is not None else "-"}
    clicked = st.button("Simulate", key="sim.btn.run", type="primary", disabled=workload is None or not policies)
    if clicked and workload is not None:  # (disabled without a workload: never clicked then)
        try:
            config = sim.SimConfig(start_ms=start_ms, warmup_iterations=warmup)
            results = state.run_job(
                "Simulating", "steps_job",
                dict(steps="ui.dashboard.jobs:simulate_steps",
                     kwargs=dict(profile=priced_profile(profile, co), cores=cores, spec=spec, seed=seed,
                                 policies=list(policies),
                                 config=config, plan=plan)),
                cancel_key="sim.btn.cancel")
        except ValueError as exc:
            state.show_error("The simulation cannot run", exc)
        else:
            state.store("sim", {"results": results, "cores": cores, "seed": seed, "spec": spec,
                                "description": wl_mod.describe(workload), "profile": profile.label(), "corun": co},
                        inputs)
    elif state.was_cancelled("sim.btn.cancel"):
        st.warning("Simulation cancelled (its process was stopped); no result kept.")
    kept = state.fresh_result("sim", inputs, "Simulate")
    if kept:
        show_results(kept)
    elif state.result("sim") is None:
        st.info("Set a workload and press Simulate.")
    save_and_compare(kept)
    state.to_url(URL_KEYS)

main()
