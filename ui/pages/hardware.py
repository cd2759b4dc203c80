"""Hardware page: run a plan on this machine beside the fat instance; predicted vs measured."""

from __future__ import annotations

import os
import platform

import streamlit as st

from ui import dashboard_charts as charts
from ui import dashboard_data as data
from ui import dashboard_state as state


def machine_section():
    """Show this machine; returns its Topology (or None when the real runner is missing)."""
    status = data.find_part("topology")
    topo = status.module.detect() if status.ok else None
    c1, c2, c3 = st.columns(3)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    c1.metric("CPUs usable here", topo.logical if topo else usable)
    c2.metric("Physical cores", topo.physical if topo else "?")
    c3.metric("Sockets", len(topo.sockets) if topo else "?")
    st.caption(topo.describe() if topo else platform.platform())
    return topo


def run_steps(prof_mod, executor, model: str, batch: int, cores: int, iterations: int, with_thin: bool, current):
    """Generator for :func:`state.run_with_progress`: profile (unless the current profile is a
    measurement of this model), optimize, run plan and fat interleaved, then thin."""
    from packrat_sim import plan as plans
    from packrat_sim.optimizer import optimize

    if current is not None:
        profile, origin = current, "the current profile (measured)"
        yield 0.3, "using the current measured profile"
    else:
        yield 0.02, f"measuring a quick profile of {model} (threads 1..{cores}, batches up to {batch})"
        profile = prof_mod.quick_profile(model, batch, cores, progress=False)
        origin = "a quick profile measured now"
    yield 0.35, "optimizing"
    best = optimize(profile, batch, cores)
    yield 0.4, f"running {best.describe()} and the fat instance, interleaved ({iterations} iterations each)"
    comp = executor.compare_with_fat(model, best, iterations, cores=cores)
    rows = [
        {"label": f"plan {best.describe()}", "predicted_ms": best.predicted_ms, "measured_ms": comp.plan.median_ms,
         "measured_p90_ms": comp.plan.p90_ms, "cores": str([list(c) for c in comp.plan.cores])},
        {"label": f"fat 1 x {cores}t x {batch}", "predicted_ms": profile.predict(cores, batch),
         "measured_ms": comp.fat.median_ms, "measured_p90_ms": comp.fat.p90_ms,
         "cores": str([list(c) for c in comp.fat.cores])},
    ]
    if with_thin:
        thin = plans.thin(batch, cores)
        yield 0.8, f"running thin {thin.describe()}"
        res = executor.run_plan(model, thin, iterations)
        rows.append({"label": f"thin {thin.describe()}", "predicted_ms": plans.plan_latency(thin, profile.predict),
                     "measured_ms": res.median_ms, "measured_p90_ms": res.p90_ms,
                     "cores": str([list(c) for c in res.cores])})
    yield 1.0, "done"
    return {"rows": rows, "model": model, "batch": batch, "cores": cores, "iterations": iterations,
            "origin": origin, "speedup": comp.speedup, "outputs_match": comp.outputs_match,
            "max_abs_diff": comp.max_abs_diff, "plan": best.describe()}


def run_section(topo) -> None:
    st.subheader("Run a plan on this machine")
    statuses = [state.need_part(k) for k in ("executor", "profiler", "models")]
    if not all(x.ok for x in statuses) or topo is None:
        return
    executor, prof_mod, models = (x.module for x in statuses)
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
    if st.button("Run on this machine", key="hw.btn.run", type="primary"):
        try:
            _, kept = state.run_with_progress(
                f"Running {model}", run_steps(prof_mod, executor, model, batch, cores, iterations, with_thin, current),
                cancel_key="hw.btn.cancel")
        except (ValueError, RuntimeError) as exc:
            state.show_error(f"Running {model} failed", exc)
        else:
            state.store("hardware", kept)
    elif state.was_cancelled("hw.btn.cancel"):
        st.warning("Run cancelled; no result kept.")
    kept = state.result("hardware")
    if kept:
        show_run(kept)


def show_run(kept: dict) -> None:
    rows = kept["rows"]
    st.markdown(f"**{kept['model']}**, batch {kept['batch']} on {kept['cores']} cores, {kept['iterations']} "
                f"iterations each; plan from {kept['origin']}.")
    cols = st.columns(len(rows))
    for c, r in zip(cols, rows):
        c.metric(r["label"], data.fmt_ms(r["measured_ms"]), delta=f"predicted {data.fmt_ms(r['predicted_ms'])}",
                 delta_color="off", delta_arrow="off")
    match = "outputs match the fat instance's" if kept["outputs_match"] else "OUTPUTS DIFFER from the fat instance's"
    line = f"Measured speedup of the plan over fat: {kept['speedup']:.2f}x; {match} (max |diff| {kept['max_abs_diff']:.2e})."
    (st.success if kept["outputs_match"] else st.error)(line)
    st.plotly_chart(charts.predicted_vs_measured(rows), key="hw.pvm")
    st.dataframe(rows, hide_index=True, key="hw.table")


def bench_steps(bench, model: str, batches: list[int], cores: int, iterations: int):
    """Generator for :func:`state.run_with_progress`: one `run_bench` per batch size."""
    rows = []
    for k, b in enumerate(batches):
        yield k / len(batches), f"batch {b}: measuring fat, thin, the plan and the oracle's plans, interleaved"
        rows += bench.run_bench(model, [b], cores=cores, iterations=iterations)["batches"]
    yield 1.0, "done"
    return {"model": model, "cores": cores, "iterations": iterations, "rows": rows}


def bench_section(topo) -> None:
    st.subheader("Benchmark: fat vs thin vs plan vs exhaustive oracle")
    status = state.need_part("bench")
    if not status.ok or topo is None:
        return
    models = data.find_part("models")
    names = list(models.module.known_models()) if models.ok else ["tiny-cnn"]
    c1, c2, c3 = st.columns(3)
    state.init("hw.bench.model", names[0])
    model = c1.selectbox("Model", names, key="hw.bench.model")
    state.init("hw.bench.batches", "1,2,4")
    text = c2.text_input("Batch sizes", key="hw.bench.batches")
    state.init("hw.bench.iterations", 3)
    iterations = int(c3.number_input("Rounds", min_value=1, max_value=100, step=1, key="hw.bench.iterations"))
    if st.button("Run the benchmark", key="hw.btn.bench"):
        try:
            batches = [int(x) for x in text.replace(" ", "").split(",") if x]
            if not batches or min(batches) < 1:
                raise ValueError(f"batch sizes must be positive integers, got {text!r}")
            _, kept = state.run_with_progress(
                f"Benchmarking {model}", bench_steps(status.module, model, batches, topo.logical, iterations),
                cancel_key="hw.btn.bench.cancel")
        except (ValueError, RuntimeError) as exc:
            state.show_error(f"Benchmarking {model} failed", exc)
        else:
            state.store("bench", kept)
    kept = state.result("bench")
    if kept:
        rows = [{"batch": r["batch"], "fat_ms": r["fat_ms"], "thin_ms": r["thin_ms"], "plan": r["optimizer"],
                 "plan_ms": r["optimizer_ms"], "oracle best": r["oracle_best"], "oracle_ms": r["oracle_ms"],
                 "speedup vs fat": r["speedup_optimizer_vs_fat"], "regret %": r["regret_pct"],
                 "predicted_ms": r["optimizer_predicted_ms"]} for r in kept["rows"]]
        st.markdown(f"**{kept['model']}** on {kept['cores']} cores, {kept['iterations']} interleaved rounds per plan.")
        st.dataframe(rows, hide_index=True, key="hw.bench.table")
        st.plotly_chart(charts.predicted_vs_measured(
            [{"label": f"plan, batch {r['batch']}", "predicted_ms": r["predicted_ms"], "measured_ms": r["plan_ms"]}
             for r in rows]), key="hw.bench.pvm")


def main() -> None:
    state.use_app_navigation()
    st.title("Hardware")
    st.markdown("Runs real model instances (PyTorch, random weights, no downloads) pinned to this machine's cores.")
    topo = machine_section()
    run_section(topo)
    st.divider()
    bench_section(topo)


main()
