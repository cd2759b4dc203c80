"""Hardware page: run a plan on this machine beside the fat instance; predicted vs measured."""

from __future__ import annotations

import streamlit as st

from real_runner import models, topology
from ui.dashboard import charts as charts
from ui.dashboard import data as data
from ui.dashboard import state as state


def machine_section():
    """Show this machine; returns its Topology."""
    topo = topology.detect()
    c1, c2, c3 = st.columns(3)
    c1.metric("CPUs usable here", topo.logical)
    c2.metric("Physical cores", topo.physical)
    c3.metric("Sockets", len(topo.sockets))
    st.caption(topo.describe())
    return topo


def run_section(topo) -> None:
    st.subheader("Run a plan on this machine")
    names = list(models.known_models())
    c1, c2, c3, c4 = st.columns(4)
    state.init("hw.model", names[0])
    model = c1.selectbox("Model", names, key="hw.model",
                         format_func=lambda n: n + (" (slow)" if models.get_spec(n).slow else ""))
    state.init("hw.batch", 8)
    batch = int(c2.number_input("Batch B", min_value=1, max_value=4096, step=1, key="hw.batch"))
    state.init("hw.cores", topo.logical)
    state.clamp("hw.cores", 1, topo.logical)
    cores = int(c3.number_input("Cores T", min_value=1, max_value=topo.logical, step=1, key="hw.cores"))
    state.init("hw.iterations", 5)
    iterations = int(c4.number_input("Iterations", min_value=1, max_value=1000, step=1, key="hw.iterations"))
    state.init("hw.thin", True)
    with_thin = st.checkbox("Also run the thin plan", key="hw.thin")

    profile = state.current_profile()
    current = None
    if (not profile.synthetic and profile.model == model and profile.max_threads >= cores
            and dict(profile.meta).get("runner.seed") is not None):
        current = profile
        st.caption(f"The plan comes from the current profile, a measurement of {model} on a real machine.")
    else:
        st.caption(f"The plan comes from a quick profile of {model} measured now (threads 1..{cores}, "
                   f"batches 1, 2, 4, ... up to {batch}); measure a fuller one on the Profiles page to reuse it.")
        state.use_profile_here(f"{model} (quick profile)", f"measured on the spot by this page's run: threads "
                                                          f"1..{cores}, batches up to {batch}")

    def run() -> dict:
        return state.run_job(
            f"Running {model}", "steps_job",
            dict(steps="ui.dashboard.jobs:hardware_steps",
                 kwargs=dict(model=model, batch=batch, cores=cores, iterations=iterations, with_thin=with_thin,
                             current=current)),
            cancel_key="hw.btn.cancel")

    inputs = {"model": model, "batch": batch, "cores": cores, "iterations": iterations, "thin": with_thin,
              "plan from": current.label() if current is not None else "a quick profile measured now"}
    kept = state.job_result("hardware", st.button("Run on this machine", key="hw.btn.run", type="primary"), run,
                            inputs=inputs, action="Run on this machine", errors=(ValueError, RuntimeError), failure=f"Running {model} failed",
                            cancel_key="hw.btn.cancel",
                            cancelled="Run cancelled (its processes were stopped); no result kept.")
    if kept:
        show_run(kept)


def show_run(kept: dict) -> None:
    rows = kept["rows"]
    st.markdown(f"**{kept['model']}**, batch {kept['batch']} on {data.plural(kept['cores'], 'core')}, "
                f"{data.plural(kept['iterations'], 'iteration')} each; plan from {kept['origin']}.")
    cols = st.columns(len(rows))
    for c, r in zip(cols, rows):
        c.metric(r["label"], data.fmt_ms(r["measured_ms"]), delta=f"predicted {data.fmt_ms(r['predicted_ms'])}",
                 delta_color="off", delta_arrow="off")
    if rows[0]["label"].startswith("plan = thin"):
        st.caption("The plan is the thin configuration itself: it is measured once, not twice.")
    level, text = data.run_verdict(kept, data.measurement_warnings(rows, kept["cores"]))
    {"success": st.success, "warning": st.warning, "error": st.error}[level](text)
    st.plotly_chart(charts.predicted_vs_measured(rows), key="hw.pvm")
    st.dataframe([{k: v for k, v in r.items() if k not in ("samples_ms", "groups")} for r in rows],
                 hide_index=True, key="hw.table",
                 column_config={k: st.column_config.NumberColumn(format="%.3f")
                                for k in ("predicted_ms", "measured_ms", "measured_p90_ms")})


def bench_section(topo) -> None:
    st.subheader("Benchmark: fat vs thin vs plan vs exhaustive oracle")
    names = list(models.known_models())
    c1, c2, c3 = st.columns(3)
    state.init("hw.bench.model", names[0])
    model = c1.selectbox("Model", names, key="hw.bench.model")
    state.init("hw.bench.batches", "1,2,4")
    text = c2.text_input("Batch sizes", key="hw.bench.batches")
    state.init("hw.bench.iterations", 3)
    iterations = int(c3.number_input("Rounds", min_value=1, max_value=100, step=1, key="hw.bench.iterations"))

    def run() -> dict:
        batches = data.parse_int_list(text, "batch sizes")
        return state.run_job(
            f"Benchmarking {model}", "steps_job",
            dict(steps="ui.dashboard.jobs:bench_steps",
                 kwargs=dict(model=model, batches=batches, cores=topo.logical, iterations=iterations)),
            cancel_key="hw.btn.bench.cancel")

    inputs = {"model": model, "batch sizes": text, "rounds": iterations, "cores": topo.logical}
    kept = state.job_result("bench", st.button("Run the benchmark", key="hw.btn.bench"), run,
                            inputs=inputs, action="Run the benchmark", errors=(ValueError, RuntimeError), failure=f"Benchmarking {model} failed",
                            cancel_key="hw.btn.bench.cancel",
                            cancelled="Benchmark cancelled (its processes were stopped); no result kept.")
    if kept:
        rows = [{"batch": r["batch"], "fat_ms": r["fat_ms"], "thin_ms": r["thin_ms"], "plan": r["optimizer"],
                 "plan_ms": r["optimizer_ms"], "oracle best": r["oracle_best"], "oracle_ms": r["oracle_ms"],
                 "speedup vs fat": r["speedup_optimizer_vs_fat"], "regret %": r["regret_pct"],
                 "predicted_ms": r["optimizer_predicted_ms"]} for r in kept["rows"]]
        st.markdown(f"**{kept['model']}** on {data.plural(kept['cores'], 'core')}, "
                    f"{data.plural(kept['iterations'], 'interleaved round')} per plan.")
        for w in data.bench_warnings(rows, kept["cores"]):
            st.warning(w, icon=":material/warning:")
        for n in data.bench_notes(kept):
            st.warning(n, icon=":material/warning:")
        st.dataframe(rows, hide_index=True, key="hw.bench.table",
                     column_config={k: st.column_config.NumberColumn(format="%.2f")
                                    for k in ("fat_ms", "thin_ms", "plan_ms", "oracle_ms", "speedup vs fat",
                                              "regret %", "predicted_ms")})
        st.plotly_chart(charts.predicted_vs_measured(
            [{"label": f"plan, batch {r['batch']}", "predicted_ms": r["predicted_ms"], "measured_ms": r["plan_ms"]}
             for r in rows]), key="hw.bench.pvm")


def main() -> None:
    state.use_app_navigation()
    st.title("Hardware")
    st.markdown("Runs real model instances (PyTorch, random weights, no downloads) pinned to this machine's cores, "
                "in separate processes that Cancel stops.")
    state.readme("hardware")
    topo = machine_section()
    run_section(topo)
    st.divider()
    bench_section(topo)


main()
