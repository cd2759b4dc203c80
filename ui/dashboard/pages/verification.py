"""Verification page: the schedule explorer on the reconfiguration protocol (with a
counterexample stepper and a state-space browser), and history checks (with a linearization view)."""

from __future__ import annotations

import hashlib
import html
import json

import streamlit as st

from checker import explore as explore_mod
from checker import history as hist_mod
from checker import linearizability as lin
from checker import visualize
from checker.models import MODELS, ModelError
from checker.protocols import PROTOCOLS, build
from ui.dashboard import charts as charts
from ui.dashboard import data as data
from ui.dashboard import state as state
from ui.dashboard import statespace as statespace
from ui.cli.check import DEFAULT_MODELS, CheckOptions
from ui.dashboard.help import MODEL_HELP, STRATEGY_HELP, table_help

MODEL_AUTO = "from the history"
FORMATS = ("auto", "json", "jepsen", "porcupine-kv")
SECTIONS = ("Schedule explorer", "History checker")
SEEDED = ("random", "pct")  # the strategies that use the seed
CHECK_TIMEOUT_S = CheckOptions.timeout  # `packrat check`'s default time limit

#: The page's parameters as they appear in the URL (widget key -> type).
URL_KEYS = {"verify.section": str, "explore.protocol": str, "explore.variant": str, "explore.strategy": str,
            "explore.max_schedules": int, "explore.max_time": float, "explore.seed": int,
            "verify.format": str, "verify.model": str, "verify.timeout": float}


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


# --------------------------------------------------------------------- explorer


def explorer_section() -> tuple[str, str, dict]:
    """The explorer's form and result; returns the protocol it picked ``(name, variant, params)``."""
    st.subheader("Schedule explorer")
    st.caption("Runs a protocol as actors over the schedules a strategy reaches, checks its invariants on every "
               "state and every history for linearizability, and shows a counterexample step by step. The "
               "exploration runs in its own process: Cancel stops it at once.")
    state.readme("strategy")
    names = list(PROTOCOLS)
    c1, c2, c3 = st.columns(3)
    state.init("explore.protocol", "reconfig" if "reconfig" in names else names[0])
    if st.session_state["explore.protocol"] not in names:
        st.session_state["explore.protocol"] = names[0]
    name = c1.selectbox("Protocol", names, key="explore.protocol")
    spec = PROTOCOLS[name]
    variants = list(spec.variants)
    if st.session_state.get("explore.variant") not in variants:
        st.session_state["explore.variant"] = spec.default_variant
    state.init("explore.variant", spec.default_variant)
    variant = c2.selectbox("Variant", variants, key="explore.variant",
                           format_func=lambda v: v + ("  (buggy)" if spec.variants[v][1] else ""))
    state.init("explore.strategy", "dpor")
    if st.session_state["explore.strategy"] not in explore_mod.STRATEGIES:
        st.session_state["explore.strategy"] = "dpor"
    strategy = c3.selectbox("Strategy", explore_mod.STRATEGIES, key="explore.strategy",
                            help=table_help(STRATEGY_HELP, "strategy"))
    st.caption(f"{name}/{variant}: {spec.variants[variant][0]}. Strategy {strategy}: "
               f"{STRATEGY_HELP.get(strategy, '')}.")
    c1, c2, c3 = st.columns(3)
    state.init("explore.max_schedules", 2000)
    max_schedules = int(c1.number_input("Max schedules", min_value=1, max_value=10**7, step=100,
                                        key="explore.max_schedules"))
    state.init("explore.max_time", 30.0)
    max_time = float(c2.number_input("Max time (s)", min_value=0.5, max_value=3600.0, key="explore.max_time"))
    state.init("explore.seed", 0)
    seed = int(c3.number_input("Seed (random, pct)", min_value=0, max_value=2**31 - 1, step=1, key="explore.seed"))
    params = {}
    defaults = spec.params_for(variant)
    # the protocol's parameters live in the URL too (a shared link reopens replicas=5 as 5)
    pkeys = {f"explore.p.{name}.{p}": type(d) for p, d in defaults.items()}
    state.from_url(pkeys)
    with st.expander("Protocol parameters"):
        cols = st.columns(4)
        for k, (pname, default) in enumerate(sorted(defaults.items())):
            with cols[k % 4]:
                params[pname] = _param_widget(pname, default, f"explore.p.{name}.{pname}")
    state.drop_url("explore.p.", pkeys)
    state.to_url(pkeys)
    state.cli_box(data.cli_explore(name, variant, strategy, max_schedules, max_time, seed, params, defaults))
    # what a result is keyed to: any change hides it until Explore runs again
    changed = {k: v for k, v in sorted(params.items()) if defaults.get(k) != v}
    inputs = {"protocol": name, "variant": variant, "strategy": strategy, "max schedules": max_schedules,
              "max time (s)": max_time, "seed": seed if strategy in SEEDED else "-",
              "parameters": ", ".join(f"{k}={v}" for k, v in changed.items()) or "defaults"}

    def run() -> dict:
        build(name, variant, **params)  # a bad parameter is reported here, before a process starts
        result = state.run_job(
            f"Exploring {name}/{variant} with {strategy}", "explore_job",
            dict(protocol=name, variant=variant, params=params, strategy=strategy, max_schedules=max_schedules,
                 max_time=max_time, seed=seed),
            budget_s=max_time, cancel_key="explore.btn.cancel")
        return {"protocol": (name, variant, params), "result": result}

    kept = state.job_result("explore", st.button("Explore", key="explore.btn.run", type="primary"), run,
                            inputs=inputs, action="Explore", errors=(ValueError,), failure="Cannot explore",
                            cancel_key="explore.btn.cancel",
                            cancelled="Exploration cancelled: its process was stopped; no result kept.")
    if kept:
        show_exploration(kept)
    return name, variant, params


def show_exploration(kept: dict) -> None:
    name, variant, params = kept["protocol"]
    protocol = build(name, variant, **params)
    r = kept["result"]
    head = (f"{protocol.label()} with {r.strategy}: {data.plural(r.schedules, 'schedule')}, "
            f"{data.plural(r.states, 'state')}, {data.plural(r.distinct_histories, 'distinct history', 'distinct histories')}, "
            f"{r.elapsed_s:.2f} s")
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
    show_counterexample(protocol, r, v, kept)


def show_counterexample(protocol, r, v, kept: dict) -> None:
    """The counterexample stepper: one delivery at a time, each actor's state before and after,
    the breaking step marked on the message sequence diagram, and the replay file."""
    st.markdown(f"### Counterexample: {data.violation_title(v)}")
    st.caption(f"{v.message}. Shrunk from {data.plural(len(v.found), 'step')} to {len(v.schedule)}.")
    # the replay (and its linearizability checks) once per exploration, not on every step-slider move
    cx = state.memo(kept, "stepper", lambda: data.counterexample_steps(protocol, v.schedule))
    breaking = cx["breaking_step"]
    steps = cx["steps"]
    n = len(steps)
    key = "explore.step"
    ident = (protocol.label(), r.strategy, len(v.schedule))
    if st.session_state.get("explore.step_for") != ident:
        st.session_state["explore.step_for"] = ident
        st.session_state[key] = breaking or 1
    state.clamp(key, 1, max(n, 1))
    if n > 1:
        step_no = st.slider("Step through the schedule", min_value=1, max_value=n, key=key,
                            help="One delivery (or fault) at a time; the breaking step is marked on the diagram.")
    else:
        step_no = 1
    cur = steps[step_no - 1]
    mark = " - **this step breaks the property**" if breaking == step_no else ""
    st.markdown(f"**Step {step_no} of {n}**: `{cur['event']}`{mark}")
    if breaking:
        st.caption(f"The property breaks at step {breaking} of {n}.")
    st.button("Open in the state-space browser at this step", key="explore.btn.browse", icon=":material/explore:",
              on_click=statespace.jump, args=(protocol, v.schedule[:step_no], f"step {step_no} of the counterexample"),
              help="The State-space browser below opens at the state after this step: take other events from there.")
    st.dataframe(data.actor_state_rows(cur), hide_index=True, key="explore.states",
                 column_config={"before": st.column_config.TextColumn(width="large"),
                                "after": st.column_config.TextColumn(width="large")})
    if cur["records"]:
        st.caption("History records of this step: " + "; ".join(cur["records"]))
    for b in cur["broken"]:
        st.error(f"Broken after this step: {b}")
    actors = data.schedule_actors(protocol.system.names, v.schedule)
    st.plotly_chart(charts.sequence_diagram(actors, data.schedule_messages(v.schedule, breaking),
                                            title="Counterexample as a message sequence (shaded: current step)",
                                            current=step_no),
                    key="explore.msc")
    st.code("\n".join(v.explanation), language=None)
    if v.check is not None:
        ops, _ = state.memo(kept, "ops", lambda: data.history_ops(v.history, v.check, v.check.model))
        unit = state.memo(kept, "unit", lambda: data.time_scale(v.history)[0])
        st.plotly_chart(charts.history_chart(ops, title="Its history; [n] = linearization order", unit=unit),
                        key="explore.history")
    replay = explore_mod.replay_json(protocol, v.schedule, v, r.strategy, r.seed)
    fname = f"explore-{protocol.name}-{protocol.variant}.replay.json"
    c1, c2 = st.columns([1, 2])
    c1.download_button("Download the replay file (packrat.replay/1)", json.dumps(replay, indent=1),
                       file_name=fname, mime="application/json", key="explore.dl.replay", on_click="ignore")
    with c2:
        st.code(f"packrat explore --replay {fname}", language="bash")


# ---------------------------------------------------------------- history check


def _history_source() -> tuple[str, str, str] | None:
    """(name, text, identity) of the history to check: an upload, or a run handed over by the
    Simulator. The identity changes with any new input."""
    incoming = st.session_state.get("verify.incoming")
    up = st.file_uploader(f"History file: packrat JSON, Jepsen log (EDN) or Porcupine kv log (at most "
                          f"{data.HISTORY_UPLOAD_MB} MB)", type=["json", "edn", "log", "txt", "clj"],
                          key="verify.up.history", max_upload_size=data.HISTORY_UPLOAD_MB)
    if up is not None:
        raw = up.getvalue()
        ident = f"upload:{up.name}:{hashlib.sha256(raw).hexdigest()}"
        try:
            return up.name, raw.decode("utf-8-sig"), ident
        except UnicodeDecodeError as exc:
            st.session_state.pop("result.check", None)
            state.show_error(f"Cannot read {up.name}", f"not UTF-8 text (byte {exc.start})")
            return None
    if incoming:
        c1, c2 = st.columns([4, 1])
        c1.info(f"Ready to check: the {incoming['name']}'s history (from the Simulator page).")
        if c2.button("Forget it", key="verify.btn.forget"):
            st.session_state.pop("verify.incoming", None)
            st.session_state.pop("result.check", None)
            st.rerun()
        ident = f"incoming:{hashlib.sha256(incoming['text'].encode()).hexdigest()}"
        return incoming["name"], incoming["text"], ident
    return None


def history_section() -> None:
    st.subheader("Check a history")
    state.readme("model")
    source = _history_source()
    c1, c2, c3 = st.columns(3)
    state.init("verify.format", "auto")
    fmt = c1.selectbox("Format", FORMATS, key="verify.format")
    state.init("verify.model", MODEL_AUTO)
    model_choice = c2.selectbox("Model", [MODEL_AUTO, *MODELS], key="verify.model",
                                help=table_help(MODEL_HELP, "model"))
    if model_choice in MODEL_HELP:
        c2.caption(MODEL_HELP[model_choice])
    state.init("verify.timeout", CHECK_TIMEOUT_S)
    timeout = c3.number_input("Time limit (s)", min_value=0.1, max_value=3600.0, key="verify.timeout")
    # any new input (another file, format, model or limit) clears the old verdict
    inputs = (source[2] if source else None, fmt, model_choice, float(timeout))
    kept = state.result("check")
    if kept and kept.get("inputs") != inputs:
        st.session_state.pop("result.check", None)
    if source is None:
        st.caption("Upload a history, or simulate a run and hand its history over from the Simulator page.")
    else:
        state.cli_box(data.cli_check(source[0], fmt, None if model_choice == MODEL_AUTO else model_choice,
                                     float(timeout)))
    clicked = st.button("Check linearizability", key="verify.btn.check", type="primary", disabled=source is None)
    if clicked and source is not None:  # (disabled without a source: never clicked then)
        name, text, _ = source
        st.session_state.pop("result.check", None)
        try:
            resolved = hist_mod.detect_format(text) if fmt == "auto" else fmt
            history = hist_mod.parse_history(text, resolved)
            model = model_choice if model_choice != MODEL_AUTO else (history.model or DEFAULT_MODELS.get(resolved))
            if model is None:
                raise ModelError("the history names no model; pick one in the Model box")
            result = state.run_job(
                f"Checking {data.plural(len(history), 'operation')} against {model}", "check_job",
                dict(history=history, model=model, timeout=float(timeout)),
                budget_s=float(timeout), cancel_key="verify.btn.cancel")
        except (hist_mod.HistoryError, ModelError, ValueError) as exc:
            state.show_error(f"Cannot check {name}", exc)
        else:
            state.store("check", {"name": name, "history": history, "result": result, "model": model,
                                  "format": resolved, "inputs": inputs})
    elif state.was_cancelled("verify.btn.cancel"):
        st.warning("Check cancelled: its process was stopped; no verdict kept.")
    kept = state.result("check")
    if kept:
        show_check(kept)


def _first_failure_banner(page: str, text: str) -> str:
    """The HTML report with a line naming the partition that failed first, after <body>."""
    banner = (f'<p style="padding:6px 10px;background:#fdecea;border-left:4px solid #c62828">'
              f"{html.escape(text)}</p>")
    i = page.find("<body")
    if i < 0:
        return banner + page
    j = page.find(">", i) + 1
    return page[:j] + banner + page[j:]


def _report(kept: dict, first_line: str) -> str:
    """checker.visualize's HTML report of the kept check, with the first-failure line."""
    page = visualize.render_html(kept["history"], kept["result"], kept["model"], title=f"packrat check {kept['name']}")
    return _first_failure_banner(page, first_line) if first_line else page


def show_check(kept: dict) -> None:
    res, history, model = kept["result"], kept["history"], kept["model"]
    head = (f"{kept['name']}: {data.plural(res.operations, 'operation')}, "
            f"{data.plural(len(res.partitions), 'partition')}, model {model}, {res.elapsed_s:.3f} s")
    if res.ok:
        st.success(f"LINEARIZABLE: {head}", icon=":material/verified:")
    elif res.illegal:
        st.error(f"NOT LINEARIZABLE: {head}", icon=":material/gpp_bad:")
    else:
        st.warning(f"UNKNOWN ({res.reason or 'no verdict'}): {head}; a timeout is never OK.")
    first = res.first_failed
    first_line = ""
    if first is not None:
        first_line = (f"Failed first: partition {data.partition_label(first)} "
                      f"(operation {first.blocked} cannot be linearized).")
        st.markdown(f"**{first_line}**")
    st.code("\n".join(lin.explain(res, history, model)), language=None)

    parts = list(res.partitions)
    if len(parts) > 1:
        st.dataframe([{"partition": data.partition_label(p), "verdict": p.outcome.upper(),
                       "operations": len(p.operations), "linearized": len(p.linearization),
                       "blocked operation": p.blocked, "failed first": "yes" if p is first else "",
                       "time (s)": p.elapsed_s} for p in parts],
                     hide_index=True, key="verify.partitions",
                     column_config={"time (s)": st.column_config.NumberColumn(format="%.4f")})

    st.markdown("#### Linearization")
    labels = [data.partition_label(p) for p in parts]
    default = labels[parts.index(first)] if first is not None else labels[0]
    if st.session_state.get("verify.partition") not in labels:
        st.session_state["verify.partition"] = default
    c1, c2, c3 = st.columns([2, 2, 1])
    chosen = c1.selectbox("Partition", labels, key="verify.partition")
    part = parts[labels.index(chosen)]
    order = list(part.linearization)
    prefix = len(order)
    if len(order) > 1:
        pkey = "verify.prefix"
        if st.session_state.get("verify.prefix_for") != (chosen, len(order)):
            st.session_state["verify.prefix_for"] = (chosen, len(order))
            st.session_state[pkey] = len(order)
        prefix = c2.slider("Partial linearization: first operations", min_value=1, max_value=len(order), key=pkey,
                           help="Pick a prefix of the (partial) linearization found; hover a diamond to see the "
                                "model state after that operation.")
    zoomable = any(True for p in parts if p.blocked is not None and p.result.value != "ok")
    zoom = c3.checkbox("Zoom to the violation", value=zoomable, key="verify.zoom", disabled=not zoomable)
    # what does not depend on the widgets is computed once per verdict, not on every rerun
    ops, note = state.memo(kept, "ops", lambda: data.history_ops(history, res, model))
    unit = state.memo(kept, "unit", lambda: data.time_scale(history)[0])
    cause = visualize.blocking_cause(history, part, model)
    if cause:
        st.markdown(f"**Cause:** {data.md_escape(cause)}")
    points = data.linearization_points(history, model, order[:prefix], ops)
    fig = charts.history_chart(ops, unit=unit, points=points,
                               zoom=data.violation_zoom(ops) if zoom and zoomable else None)
    st.plotly_chart(fig, key="verify.history_chart")
    if note:
        st.caption(note)
    st.caption("Diamonds: each operation's linearization point (the earliest instant consistent with the order); "
               "hover one for the model state there. Red: the operation that cannot be linearized.")
    show_states(history, part, model, order[:prefix])
    page = state.memo(kept, "html", lambda: _report(kept, first_line))
    with st.expander("Full report (checker.visualize)"):
        st.iframe(page, height=600)  # checker.visualize escapes every value of the history
    c1, c2 = st.columns(2)
    c1.download_button("Download the HTML report", page, file_name="check.html", mime="text/html",
                       key="verify.dl.html", on_click="ignore")
    c2.download_button("Download the verdict (JSON)", json.dumps(res.to_json(history, model), indent=1),
                       file_name="check.json", mime="application/json", key="verify.dl.json", on_click="ignore")


def show_states(history, part, model: str, order: list[int]) -> None:
    """The model states along the (partial) linearization shown, as Porcupine lists them
    (``checker.visualize.state_rows``: the blocked operation last when the whole prefix is shown)."""
    rows = state_rows_memo(history, part, model, tuple(order))
    st.markdown(f"##### Model states along the linearization ({data.plural(len(order), 'operation')})")
    st.dataframe(rows, hide_index=True, key="verify.states",
                 column_config={k: st.column_config.TextColumn(width="medium") for k in ("state before", "state after")})


def state_rows_memo(history, part, model: str, order: tuple[int, ...]) -> list[dict]:
    """``visualize.state_rows`` once per (check, partition, prefix) of the kept verdict."""
    kept = state.result("check") or {}
    key = f"states:{part.key!r}:{len(order)}"  # ``order`` is a prefix of the partition's linearization
    return state.memo(kept, key, lambda: visualize.state_rows(history, part, model, order))


def main() -> None:
    state.use_app_navigation()
    st.title("Verification")
    state.from_url(URL_KEYS)
    state.init("verify.section", SECTIONS[0])
    if st.session_state["verify.section"] not in SECTIONS:
        st.session_state["verify.section"] = SECTIONS[0]
    section = st.radio("Section", SECTIONS, key="verify.section", horizontal=True, label_visibility="collapsed")
    if section == SECTIONS[0]:
        statespace.browser_section(*explorer_section())
    else:
        history_section()
    state.to_url(URL_KEYS)


main()
