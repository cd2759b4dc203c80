"""Profiles page: pick, load, import or measure a latency profile L[t, b], and look at it."""

from __future__ import annotations

import os

import streamlit as st

from packrat_sim.profile import (
    BUILTIN_NAMES,
    STATISTICS,
    ProfileError,
    dumps_profile,
    import_packrat_csv,
    loads_profile,
)
from ui.dashboard import charts as charts
from ui.dashboard import data as data
from ui.dashboard import state as state

SOURCES = ("Built-in (synthetic)", "Profile file (JSON)", "Packrat CSV", "Measure on this machine")


def _decode(upload) -> str:
    try:
        return upload.getvalue().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{upload.name} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def builtin_source() -> None:
    state.init("profiles.builtin", state.DEFAULT_BUILTIN)
    st.selectbox("Built-in profile", BUILTIN_NAMES, key="profiles.builtin",
                 help="Synthetic profiles: a documented parametric latency model, not a measurement.")
    if st.button("Use this built-in profile", key="profiles.btn.builtin", type="primary"):
        name = st.session_state["profiles.builtin"]
        state.set_profile(state.builtin(name), f"built-in {name} (synthetic)", name)
        st.success(f"Loaded built-in profile {name} (synthetic).")


def file_source() -> None:
    up = st.file_uploader(f"Profile JSON (schema packrat.profile/1; at most {data.PROFILE_UPLOAD_MB} MB)", type=["json"],
                          key="profiles.up.json", max_upload_size=data.PROFILE_UPLOAD_MB)
    if up is None:
        return
    try:
        prof = loads_profile(_decode(up))
    except ProfileError as exc:
        state.show_error(f"Cannot load {up.name}", exc)
        return
    if st.session_state.get("profiles.applied") != up.file_id:
        state.set_profile(prof, f"file {up.name}")
        st.session_state["profiles.applied"] = up.file_id
    st.success(f"Loaded {up.name}: {prof.label()}, {len(prof.cells)} cells.")


def csv_source() -> None:
    st.caption("Packrat's published profile CSVs; columns are found by header name. "
               "A file holds several series (benchmark, topology, allocator, ...) that are never mixed.")
    up = st.file_uploader(f"Packrat CSV (at most {data.PROFILE_UPLOAD_MB} MB)", type=["csv"], key="profiles.up.csv",
                          max_upload_size=data.PROFILE_UPLOAD_MB)
    if up is None:
        return
    try:
        text = _decode(up)
    except ProfileError as exc:
        state.show_error(f"Cannot import {up.name}", exc)
        return
    series = data.packrat_series(text)
    labels = [data.series_label(s) for s in series]
    chosen = None
    if len(series) > 1:
        if st.session_state.get("profiles.series") not in labels:
            st.session_state.pop("profiles.series", None)
        label = st.selectbox(f"Series ({len(series)} in the file)", labels, key="profiles.series")
        chosen = series[labels.index(label)]
    elif series:
        st.caption(f"One series: {labels[0]}")
    name = st.text_input("Model name (default: the benchmark column)", key="profiles.csv_name")
    if st.button("Import this series", key="profiles.btn.csv", type="primary"):
        try:
            result = import_packrat_csv(
                text,
                series=data.series_selectors(chosen) if chosen else (),
                model=name.strip() or None,
                source=f"Packrat CSV {up.name}",
            )
        except ProfileError as exc:
            state.show_error(f"Cannot import {up.name}", exc)
            return
        prof = result.profile
        origin = f"Packrat CSV {up.name}" + (f" ({data.series_label(chosen)})" if chosen else "")
        state.set_profile(prof, origin)
        merged = f", merged {result.merged_duplicates} repeated rows" if result.merged_duplicates else ""
        st.success(f"Imported {prof.label()}: {len(prof.cells)} cells from {up.name}{merged}.")


def measure_source() -> None:
    from real_runner import models
    from real_runner import profiling as prof_mod

    names = list(models.known_models())
    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    c1, c2, c3, c4 = st.columns(4)
    state.init("profiles.m_model", names[0])
    model = c1.selectbox("Model", names, key="profiles.m_model",
                         format_func=lambda n: n + (" (slow)" if models.get_spec(n).slow else ""))
    state.init("profiles.m_threads", f"1-{min(4, ncpu)}")
    c2.text_input("Threads", key="profiles.m_threads", help="e.g. 1-4 or 1,2,4")
    state.init("profiles.m_batches", "1,2,4,8")
    c3.text_input("Sub-batches", key="profiles.m_batches", help="e.g. 1,2,4,8")
    state.init("profiles.m_repeats", 3)
    c4.number_input("Timed repeats per cell", min_value=1, max_value=1000, step=1, key="profiles.m_repeats")
    state.init("profiles.m_interference", False)
    st.checkbox("Also measure interference (co-running single-thread instances)", key="profiles.m_interference")
    st.caption(f"{models.get_spec(model).description}. Random weights, nothing downloaded; "
               f"{data.plural(ncpu, 'CPU')} usable here. Measuring runs in a separate process: Cancel stops it.")
    if st.button("Measure on this machine", key="profiles.btn.measure", type="primary"):
        ss = st.session_state
        try:
            threads = prof_mod.parse_int_list(ss["profiles.m_threads"], "threads")
            batches = prof_mod.parse_int_list(ss["profiles.m_batches"], "sub-batches")
        except ValueError as exc:
            state.show_error("Bad measurement grid", exc)
            return
        try:
            result = state.run_job(
                f"Measuring {model}", "measure_job",
                dict(model=model, threads=threads, batches=batches, repeats=int(ss["profiles.m_repeats"]),
                     interference=bool(ss["profiles.m_interference"])),
                cancel_key="profiles.btn.cancel")
        except (ValueError, RuntimeError) as exc:
            state.show_error(f"Measuring {model} failed", exc)
            return
        state.set_profile(result.profile, f"measured on this machine ({model}, {result.elapsed_s:.1f} s)")
        st.success(f"Measured {data.plural(len(result.measured), 'cell')} of {model} in {result.elapsed_s:.1f} s.")
    elif state.was_cancelled("profiles.btn.cancel"):
        st.warning("Measurement cancelled (its process was stopped); the current profile is unchanged.")


def show_profile(profile) -> None:
    s = data.profile_summary(profile)
    st.subheader(f"Current profile: {s['label']}")
    state.profile_banner(profile)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Cells", s["cells"])
    c2.metric("Threads", f"{s['threads'][0]}..{s['threads'][-1]}")
    c3.metric("Sub-batches", f"{s['batches'][0]}..{s['batches'][-1]}")
    c4.metric("Machine", s["machine"])

    usable = [x for x in STATISTICS if all(getattr(c, f"{x}_ms") is not None for c in profile.cells)]
    if st.session_state.get("profiles.statistic") not in usable:
        st.session_state["profiles.statistic"] = profile.statistic if profile.statistic in usable else usable[0]
    state.init("profiles.statistic", profile.statistic)
    stat = st.selectbox("Statistic drawn", usable, key="profiles.statistic")

    threads, batches, z = data.latency_grid(profile, stat)
    st.plotly_chart(charts.profile_heatmap(threads, batches, z, f"L[t, b], {stat} (ms)"), key="profiles.heatmap")

    default = [b for b in (1, 8, 64, 512) if b in batches] or batches[:3]
    kept = st.session_state.get("profiles.curve_batches")
    if kept is not None and not set(kept) <= set(batches):
        st.session_state["profiles.curve_batches"] = [b for b in kept if b in batches] or default
    state.init("profiles.curve_batches", default)
    chosen = st.multiselect("Batches for the scaling curves", batches, key="profiles.curve_batches")
    series = [data.scaling_series(profile, b, stat) for b in chosen]
    st.plotly_chart(charts.scaling_curves(series), key="profiles.scaling")
    if series:
        best = []
        for x in series:
            k = max(range(len(x["speedup"])), key=x["speedup"].__getitem__)
            best.append(f"b={x['batch']}: {x['speedup'][k]:.2f}x on {x['threads'][k]} threads")
        st.caption(f"Best speedup over {series[0]['threads'][0]} thread(s) (ideal: proportional to threads): "
                   + "; ".join(best))

    st.markdown("#### Interference")
    if profile.interference is not None:
        st.plotly_chart(charts.interference_chart(data.interference_series(profile.interference, max(threads))),
                        key="profiles.interference")
    else:
        st.info("This profile carries no interference measurement (slowdown of an instance beside busy cores). "
                "Measure one with *Measure on this machine* (interference box ticked) or "
                "`packrat profile --model NAME --interference`.")

    d1, d2 = st.columns(2)
    d1.download_button("Download profile JSON", dumps_profile(profile), file_name=f"{profile.model}.json",
                       mime="application/json", key="profiles.dl.json")
    d2.download_button("Download tidy CSV", profile.to_csv(), file_name=f"{profile.model}.csv",
                       mime="text/csv", key="profiles.dl.csv")
    with st.expander("All cells"):
        st.dataframe(
            [{"threads": c.threads, "batch": c.batch, "n": len(c.samples_ms),
              **{f"{x}_ms": getattr(c, f"{x}_ms") for x in STATISTICS}} for c in profile.cells],
            hide_index=True,
            column_config={f"{x}_ms": st.column_config.NumberColumn(format="%.3f") for x in STATISTICS},
        )


def main() -> None:
    state.use_app_navigation()
    st.title("Profiles")
    st.markdown("A profile is L[t, b]: the latency (ms) of one model instance with *t* intra-op threads on a "
                "sub-batch of *b* inputs, running alone on the machine. The planner works from it.")
    state.readme("profile")
    state.init("profiles.source", SOURCES[0])
    source = st.radio("Where the profile comes from", SOURCES, key="profiles.source", horizontal=True)
    {
        SOURCES[0]: builtin_source,
        SOURCES[1]: file_source,
        SOURCES[2]: csv_source,
        SOURCES[3]: measure_source,
    }[source]()
    st.divider()
    show_profile(state.current_profile())


main()
