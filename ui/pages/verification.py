"""Verification page: the schedule explorer on the reconfiguration protocol, and history checks."""

from __future__ import annotations

import json

import streamlit as st
import streamlit.components.v1 as components

from ui import dashboard_charts as charts
from ui import dashboard_data as data
from ui import dashboard_state as state

MODEL_AUTO = "from the history"
FORMATS = ("auto", "json", "jepsen", "porcupine-kv")


def _param_widget(name: str, default, key: str):
    state.init(key, default)
    if isinstance(st.session_state[key], bool) != isinstance(default, bool) or \
            type(st.session_state[key]) is not type(default):
        st.session_state[key] = default
    if isinstance(default, bool):
        return st.checkbox(name, key=key)
    if isinstance(default, int):
        return int(st.number_input(name, min_value=0, max_value=64, step=1, key=key))
    if name == "network":
        if st.session_state[key] not in ("unordered", "fifo"):
            st.session_state[key] = default
        return st.selectbox(name, ("unordered", "fifo"), key=key)
    return st.text_input(name, key=key)


def explorer_section() -> None:
    st.subheader("Schedule explorer")
    st.caption("Runs a protocol as actors over the schedules a strategy reaches, checks its invariants on every "
               "state and every history for linearizability, and shows a counterexample as a message sequence "
               "diagram.")
    status = state.need_part("explore")
    if not status.ok:
        return
    explore_mod = status.module
    from checker.protocols import PROTOCOLS, build

    names = list(PROTOCOLS)
    c1, c2, c3 = st.columns(3)
    state.init("explore.protocol", "reconfig" if "reconfig" in names else names[0])
    name = c1.selectbox("Protocol", names, key="explore.protocol")
    spec = PROTOCOLS[name]
    variants = list(spec.variants)
    if st.session_state.get("explore.variant") not in variants:
        st.session_state["explore.variant"] = spec.default_variant
    state.init("explore.variant", spec.default_variant)
    variant = c2.selectbox("Variant", variants, key="explore.variant",
                           format_func=lambda v: v + ("  (buggy)" if spec.variants[v][1] else ""))
    state.init("explore.strategy", "dpor")
    strategy = c3.selectbox("Strategy", explore_mod.STRATEGIES, key="explore.strategy")
    st.caption(f"{name}/{variant}: {spec.variants[variant][0]}.")
    c1, c2, c3 = st.columns(3)
    state.init("explore.max_schedules", 2000)
    max_schedules = int(c1.number_input("Max schedules", min_value=1, max_value=10**7, step=100,
                                        key="explore.max_schedules"))
    state.init("explore.max_time", 30.0)
    max_time = float(c2.number_input("Max time (s)", min_value=0.5, max_value=3600.0, key="explore.max_time"))
    state.init("explore.seed", 0)
    seed = int(c3.number_input("Seed (random, pct)", min_value=0, max_value=2**31 - 1, step=1, key="explore.seed"))
    params = {}
    with st.expander("Protocol parameters"):
        cols = st.columns(4)
        for k, (pname, default) in enumerate(sorted(spec.params_for(variant).items())):
            with cols[k % 4]:
                params[pname] = _param_widget(pname, default, f"explore.p.{name}.{pname}")

    if st.button("Explore", key="explore.btn.run", type="primary"):
        try:
            protocol = build(name, variant, **params)
            result = state.run_in_background(
                f"Exploring {protocol.label()} with {strategy}",
                lambda: explore_mod.explore(protocol, strategy, max_schedules=max_schedules, max_time=max_time,
                                            seed=seed),
                budget_s=max_time, cancel_key="explore.btn.cancel")
        except ValueError as exc:
            state.show_error("Cannot explore", exc)
        else:
            state.store("explore", {"protocol": protocol, "result": result})
    elif state.was_cancelled("explore.btn.cancel"):
        st.warning("Exploration cancelled; no result kept.")
    kept = state.result("explore")
    if kept:
        show_exploration(kept, explore_mod)


def show_exploration(kept: dict, explore_mod) -> None:
    protocol, r = kept["protocol"], kept["result"]
    head = (f"{protocol.label()} with {r.strategy}: {r.schedules} schedules, {r.states} states, "
            f"{r.distinct_histories} distinct histories, {r.elapsed_s:.2f} s")
    if r.ok:
        st.success(f"OK: every schedule is correct ({head}).", icon=":material/verified:")
    elif r.violated:
        st.error(f"VIOLATION found at schedule {r.first_violation_at}: {r.reason} ({head}).",
                 icon=":material/bug_report:")
    else:
        st.warning(f"UNKNOWN: {r.reason} ({head}). A budget hit is never OK.")
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Schedules", r.schedules)
    c2.metric("States", r.states)
    c3.metric("Distinct histories", r.distinct_histories)
    c4.metric("Schedules / s", f"{r.schedules_per_s:.0f}" if r.elapsed_s > 0 else "n/a")
    v = r.violation
    if v is None:
        return
    st.markdown(f"**Counterexample** ({v.kind}: {v.name}), shrunk from {len(v.found)} to {len(v.schedule)} steps:")
    msgs = data.schedule_messages(v.schedule)
    actors = data.schedule_actors(protocol.system.names, v.schedule)
    st.plotly_chart(charts.sequence_diagram(actors, msgs, title="Counterexample as a message sequence"),
                    key="explore.msc")
    st.code("\n".join(v.explanation), language=None)
    if v.check is not None:
        ops, note = data.history_ops(v.history, v.check, v.check.model)
        st.plotly_chart(charts.history_chart(ops, title="Its history; [n] = linearization order"),
                        key="explore.history")
    replay = explore_mod.replay_json(protocol, v.schedule, v, r.strategy, r.seed)
    st.download_button("Download the replay file (packrat.replay/1)", json.dumps(replay, indent=1),
                       file_name=f"{protocol.name}-{protocol.variant}.replay.json", mime="application/json",
                       key="explore.dl.replay")


def _history_source() -> tuple[str, str] | None:
    """(name, text) of the history to check: an upload, or a run handed over by the Simulator."""
    incoming = st.session_state.get("verify.incoming")
    up = st.file_uploader("History file: packrat JSON, Jepsen log (EDN) or Porcupine kv log",
                          type=["json", "edn", "log", "txt", "clj"], key="verify.up.history")
    if up is not None:
        try:
            return up.name, up.getvalue().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            state.show_error(f"Cannot read {up.name}", f"not UTF-8 text (byte {exc.start})")
            return None
    if incoming:
        c1, c2 = st.columns([4, 1])
        c1.info(f"Ready to check: the {incoming['name']}'s history (from the Simulator page).")
        if c2.button("Forget it", key="verify.btn.forget"):
            st.session_state.pop("verify.incoming", None)
            st.rerun()
        return incoming["name"], incoming["text"]
    return None


def history_section() -> None:
    st.subheader("Check a history")
    statuses = [state.need_part(k) for k in ("history", "linearizability")]
    if not all(s.ok for s in statuses):
        return
    hist_mod, lin = (s.module for s in statuses)
    from checker.models import MODELS, ModelError

    from ui.cmd_check import DEFAULT_MODELS

    source = _history_source()
    c1, c2, c3 = st.columns(3)
    state.init("verify.format", "auto")
    fmt = c1.selectbox("Format", FORMATS, key="verify.format")
    state.init("verify.model", MODEL_AUTO)
    model_choice = c2.selectbox("Model", [MODEL_AUTO, *MODELS], key="verify.model",
                                help="serving: DESIGN.md's reconfiguration spec; register / cas-register / kv: "
                                     "Jepsen and Porcupine classics.")
    state.init("verify.timeout", 30.0)
    timeout = c3.number_input("Time limit (s)", min_value=0.1, max_value=3600.0, key="verify.timeout")
    if source is None:
        st.caption("Upload a history, or simulate a run and hand its history over from the Simulator page.")
    if st.button("Check linearizability", key="verify.btn.check", type="primary", disabled=source is None):
        name, text = source
        try:
            resolved = hist_mod.detect_format(text) if fmt == "auto" else fmt
            history = hist_mod.parse_history(text, resolved)
            model = model_choice if model_choice != MODEL_AUTO else (history.model or DEFAULT_MODELS.get(resolved))
            if model is None:
                raise ModelError("the history names no model; pick one in the Model box")
            result = state.run_in_background(
                f"Checking {len(history)} operations against {model}",
                lambda: lin.check(history, model, timeout=float(timeout)),
                budget_s=float(timeout), cancel_key="verify.btn.cancel")
        except (hist_mod.HistoryError, ModelError, ValueError) as exc:
            state.show_error(f"Cannot check {name}", exc)
        else:
            state.store("check", {"name": name, "history": history, "result": result, "model": model, "format": resolved})
    elif state.was_cancelled("verify.btn.cancel"):
        st.warning("Check cancelled; no verdict kept.")
    kept = state.result("check")
    if kept:
        show_check(kept, lin)


def show_check(kept: dict, lin) -> None:
    res, history, model = kept["result"], kept["history"], kept["model"]
    head = (f"{kept['name']}: {res.operations} operations, {len(res.partitions)} partition(s), "
            f"model {model}, {res.elapsed_s:.3f} s")
    if res.ok:
        st.success(f"LINEARIZABLE: {head}", icon=":material/verified:")
    elif res.illegal:
        st.error(f"NOT LINEARIZABLE: {head}", icon=":material/gpp_bad:")
    else:
        st.warning(f"UNKNOWN ({res.reason or 'no verdict'}): {head}; a timeout is never OK.")
    st.code("\n".join(lin.explain(res, history, model)), language=None)
    ops, note = data.history_ops(history, res, model)
    st.plotly_chart(charts.history_chart(ops), key="verify.history_chart")
    if note:
        st.caption(note)
    status = data.find_part("visualize")
    if status.ok:
        page = status.module.render_html(history, res, model, title=f"packrat check {kept['name']}")
        with st.expander("Full report (checker.visualize)"):
            components.html(page, height=600, scrolling=True)
        st.download_button("Download the HTML report", page, file_name="check.html", mime="text/html",
                           key="verify.dl.html")


def main() -> None:
    state.use_app_navigation()
    st.title("Verification")
    tab_explore, tab_hist = st.tabs(["Schedule explorer", "History checker"])
    with tab_explore:
        explorer_section()
    with tab_hist:
        history_section()


main()
