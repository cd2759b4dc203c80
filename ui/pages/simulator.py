"""Simulator page: a workload against Packrat (adaptive) and the fat / thin baselines, in SimPy."""

from __future__ import annotations

import json

import streamlit as st

from ui import dashboard_charts as charts
from ui import dashboard_data as data
from ui import dashboard_state as state

KINDS = {
    "poisson": "Poisson arrivals",
    "steps": "Step load",
    "diurnal": "Diurnal (sinusoidal) load",
    "closed": "Closed loop, fixed batch",
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
        for i, (k, label, v) in enumerate((("batch", "Batch", 64), ("requests", "Requests", 2000),
                                           ("clients", "Clients", 1), ("think_ms", "Think (ms)", 0))):
            state.init(f"sim.c_{k}", v)
            f[k] = cols[i].number_input(label, min_value=0 if k == "think_ms" else 1, max_value=10**6, step=1,
                                        key=f"sim.c_{k}")
    else:
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


def run_simulation(sim, profile, cores: int, spec: str, seed: int, policies: list, config):
    """Generator for :func:`state.run_with_progress`: one policy at a time (same arrivals)."""
    results = []
    for k, name in enumerate(policies):
        yield k / len(policies), f"simulating {name} ({k + 1}/{len(policies)})"
        policy = name if name in sim.POLICIES else state.result("plan_obj")
        comp = sim.compare_plans(profile, cores, spec, seed=seed, config=config, policies=[policy])
        results.append(comp.results[0])
    yield 1.0, "done"
    return results


def show_results(kept: dict) -> None:
    results = kept["results"]
    st.subheader("Results")
    st.caption(f"{kept['description']} on {kept['cores']} cores, seed {kept['seed']}; profile {kept['profile']}.")
    rows = data.sim_rows(results)
    st.dataframe(rows, hide_index=True, key="sim.table",
                 column_config={k: st.column_config.NumberColumn(format="%.2f")
                                for k in ("throughput req/s", "mean batch", "p50 ms", "p90 ms", "p99 ms",
                                          "batch p50 ms", "utilisation")})
    cols = st.columns(len(results))
    for c, r in zip(cols, results):
        c.metric(f"{r.name}: p99 latency", data.fmt_ms(r.stats.request_latency.p99_ms),
                 delta=f"{r.stats.throughput_per_s:.1f} req/s, util {r.stats.utilisation:.0%}", delta_color="off", delta_arrow="off")
    st.plotly_chart(charts.latency_cdf({r.name: data.cdf_points(data.request_latencies(r)) for r in results},
                                       title="Request latency CDF (arrival to answer)"), key="sim.cdf")

    st.markdown("#### Per-instance timeline")
    names = [r.name for r in results]
    if st.session_state.get("sim.gantt_policy") not in names:
        st.session_state["sim.gantt_policy"] = "packrat" if "packrat" in names else names[0]
    state.init("sim.gantt_policy", names[0])
    c1, c2, c3 = st.columns(3)
    name = c1.selectbox("Run", names, key="sim.gantt_policy")
    res = results[names.index(name)]
    span_ms = float(res.records.batch_completion_ms.max()) if res.records.batch_size.size else 1.0
    first = res.reconfigurations[0].call_ms if res.reconfigurations else 0.0
    state.init("sim.window_start", max(0.0, first - 200.0) / 1000.0)
    state.init("sim.window_len", 2.0)
    state.clamp("sim.window_start", 0.0, span_ms / 1000.0)
    start_s = c2.number_input("Window start (s)", min_value=0.0, max_value=span_ms / 1000.0, key="sim.window_start")
    len_s = c3.number_input("Window length (s)", min_value=0.05, max_value=600.0, key="sim.window_len")
    spans, marks = data.sim_gantt(res, start_s * 1000.0, (start_s + len_s) * 1000.0)
    st.plotly_chart(charts.gantt(spans, marks, title=f"{name}: instances over time (red: reconfigurations)"),
                    key="sim.gantt")
    if res.reconfigurations:
        st.caption(f"{len(res.reconfigurations)} reconfigurations; the first at {first / 1000:.2f} s.")
        st.dataframe([rc.to_json() | {"to_plan_json": None} for rc in res.reconfigurations][:200],
                     hide_index=True, key="sim.reconfigs",
                     column_order=("from_epoch", "to_epoch", "from_plan", "to_plan", "call_ms", "switch_ms",
                                   "drained_ms", "duration_ms", "restarted"))
    c1, c2 = st.columns(2)
    c1.download_button(f"Download {name} history (packrat.history/1)", json.dumps(res.history()),
                       file_name=f"sim-{name}.history.json", mime="application/json", key="sim.dl.history")
    if c2.button(f"Check {name}'s history on the Verification page", key="sim.btn.tocheck"):
        st.session_state["verify.incoming"] = {"name": f"simulated {name} run", "text": json.dumps(res.history())}
        st.switch_page("pages/verification.py")


def main() -> None:
    state.use_app_navigation()
    st.title("Simulator")
    statuses = [state.need_part(k) for k in ("simulator", "workload")]
    if not all(x.ok for x in statuses):
        return
    sim, wl_mod = (x.module for x in statuses)
    profile = state.current_profile()
    state.profile_banner(profile)

    c1, c2 = st.columns(2)
    state.init("sim.cores", min(16, profile.max_threads))
    state.clamp("sim.cores", 1, profile.max_threads)
    cores = int(c1.number_input("Cores T", min_value=1, max_value=profile.max_threads, step=1, key="sim.cores"))
    state.init("sim.seed", 0)
    seed = int(c2.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, key="sim.seed"))
    spec = editor()
    try:
        workload = wl_mod.parse_workload(spec)
    except ValueError as exc:
        state.show_error("Bad workload", exc)
        workload = None
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
                              help="packrat: optimizer + batch-size estimator + online reconfiguration; "
                                   "fat / thin: static baselines for the workload's max batch.")
    with st.expander("Reconfiguration model"):
        state.init("sim.start_ms", 500.0)
        st.number_input("Instance start-up (ms)", min_value=0.0, max_value=60000.0, key="sim.start_ms")
        state.init("sim.warmup", 2)
        st.number_input("Warm-up inferences", min_value=0, max_value=100, step=1, key="sim.warmup")

    if st.button("Simulate", key="sim.btn.run", type="primary", disabled=workload is None or not policies):
        from packrat_sim.plan import Plan

        if plan_report:
            state.store("plan_obj", Plan.from_json(plan_report["plan"]))
        try:
            config = sim.SimConfig(start_ms=float(st.session_state["sim.start_ms"]),
                                   warmup_iterations=int(st.session_state["sim.warmup"]))
            _, results = state.run_with_progress(
                "Simulating", run_simulation(sim, profile, cores, spec, seed, policies, config),
                cancel_key="sim.btn.cancel")
        except ValueError as exc:
            state.show_error("The simulation cannot run", exc)
        else:
            state.store("sim", {"results": results, "cores": cores, "seed": seed, "spec": spec,
                                "description": wl_mod.describe(workload), "profile": profile.label()})
    elif state.was_cancelled("sim.btn.cancel"):
        st.warning("Simulation cancelled; no result kept.")
    kept = state.result("sim")
    if kept:
        show_results(kept)
    else:
        st.info("Set a workload and press Simulate.")


main()
