"""Streamlit plumbing shared by the dashboard pages: the current profile, widget state
that survives page switches, part detection boxes, long work with progress.

Results and choices live in ``st.session_state`` so they persist for the session.
"""

from __future__ import annotations

from typing import Any, Iterator

import streamlit as st

from ui.dashboard_data import PartStatus, find_part

DEFAULT_BUILTIN = "transformer-16"
PROFILE_KEY = "profile"
PROFILE_ORIGIN_KEY = "profile_origin"
_KEPT = "_kept_widget_keys"


# ----------------------------------------------------------------- navigation


def use_app_navigation() -> None:
    """Make sure the run goes through ``app.py``'s ``st.navigation``.

    Streamlit treats a ``pages/`` folder beside the main script as the old multipage
    mode until ``st.navigation`` has been called once in the server process; a first
    request for ``/planner`` would then run ``pages/planner.py`` alone, without
    ``app.py``. Called first by ``app.py`` and by every page: if that mode is still on,
    switch it off and rerun, so the same URL resolves through ``app.py``'s pages.
    (AppTest resets that mode before every run; there the page just goes on, since a
    rerun would drop the click being tested.)
    """
    try:
        from streamlit import config
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # pragma: no cover - a Streamlit without the flag has no such mode
        return
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        if not config.get_option("global.appTest"):
            st.rerun()


# --------------------------------------------------------------- widget state


def init(key: str, default: Any) -> str:
    """Give widget ``key`` a default the first time and keep its value across pages.

    Widgets are then created with ``key=key`` and no ``value=`` (no double default).
    Streamlit drops the state of widgets a page does not draw; :func:`keep_widgets`
    (called by ``app.py`` on every run) re-assigns the kept keys to stop that.
    """
    if key not in st.session_state:
        st.session_state[key] = default
    kept = st.session_state.setdefault(_KEPT, set())
    kept.add(key)
    return key


def clamp(key: str, lo: int | float, hi: int | float) -> None:
    """Keep a numeric widget value inside [lo, hi] before the widget is drawn."""
    v = st.session_state.get(key)
    if isinstance(v, (int, float)):
        st.session_state[key] = min(max(v, lo), hi)


def keep_widgets() -> None:
    """Documented Streamlit idiom: re-assign kept widget keys so a page switch keeps them."""
    for key in list(st.session_state.get(_KEPT, ())):
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


# -------------------------------------------------------------------- profile


@st.cache_resource(show_spinner=False)
def builtin(name: str):
    """A built-in (synthetic) profile, built once per server."""
    from packrat_sim.profile import builtin_profile

    return builtin_profile(name)


def current_profile():
    """The profile every page works on; a synthetic built-in until the user picks one."""
    if PROFILE_KEY not in st.session_state:
        st.session_state[PROFILE_KEY] = builtin(DEFAULT_BUILTIN)
        st.session_state[PROFILE_ORIGIN_KEY] = f"built-in {DEFAULT_BUILTIN} (default)"
    return st.session_state[PROFILE_KEY]


#: Results computed from the current profile (dropped when it changes).
PROFILE_BOUND = ("plan", "plan_obj", "sweep", "certificate", "sim")


def set_profile(profile, origin: str) -> None:
    """Make ``profile`` current; results computed from the old one are dropped."""
    st.session_state[PROFILE_KEY] = profile
    st.session_state[PROFILE_ORIGIN_KEY] = origin
    for name in PROFILE_BOUND:
        st.session_state.pop(f"result.{name}", None)


def profile_origin() -> str:
    current_profile()
    return st.session_state.get(PROFILE_ORIGIN_KEY, "")


def profile_banner(profile) -> None:
    """Name the current profile; a synthetic one gets a visible warning box."""
    st.caption(f"Profile: **{profile.label()}** - {profile_origin()}")
    if profile.synthetic:
        st.warning(
            f"SYNTHETIC profile `{profile.model}`: latencies come from a formula, not a measurement. "
            f"{profile.source}",
            icon=":material/science:",
        )


# ----------------------------------------------------------------- results


def result(name: str, default: Any = None) -> Any:
    """A result kept for the session (dropped when the profile changes)."""
    return st.session_state.get(f"result.{name}", default)


def store(name: str, value: Any) -> Any:
    st.session_state[f"result.{name}"] = value
    return value


# ------------------------------------------------------------------- parts


def need_part(key: str) -> PartStatus:
    """Find part ``key``; when it is not usable say so plainly in an info (or warning) box."""
    status = find_part(key)
    if not status.ok:
        if status.state == "broken":
            st.warning(status.message(), icon=":material/construction:")
        else:
            st.info(status.message(), icon=":material/hourglass_empty:")
    return status


# -------------------------------------------------------------- long work


class Progress:
    """A progress bar with a Cancel button, for long work in this script run.

    Clicking Cancel makes Streamlit rerun the script, which stops this run at its next
    Streamlit call (the next :meth:`update`); the caller sees the click on that rerun
    (:func:`was_cancelled`) and keeps no result. Work running in worker processes is
    stopped by the library's own clean-up when the exception unwinds through it.
    """

    def __init__(self, label: str, cancel_key: str) -> None:
        self.label = label
        self.box = st.empty()
        with self.box.container():
            st.button("Cancel", key=cancel_key, icon=":material/cancel:")
            self.bar = st.progress(0.0, text=f"{label}: starting")

    def update(self, fraction: float, text: str) -> None:
        self.bar.progress(min(max(float(fraction), 0.0), 1.0), text=f"{self.label}: {text}")

    def close(self) -> None:
        self.box.empty()


def run_with_progress(label: str, steps: Iterator[tuple[float, str]], *, cancel_key: str) -> tuple[bool, Any]:
    """Drive a generator yielding ``(fraction, text)`` (its ``return`` value is the result)
    under a :class:`Progress`. Returns ``(True, result)``."""
    prog = Progress(label, cancel_key)
    try:
        while True:
            frac, text = next(steps)
            prog.update(frac, text)
    except StopIteration as stop:
        prog.close()
        return True, stop.value
    except Exception:
        prog.close()
        raise


def run_in_background(label: str, fn, *, budget_s: float | None, cancel_key: str) -> Any:
    """Run ``fn()`` (pure library work, no Streamlit calls) in a worker thread while this run
    shows a progress bar (elapsed time against ``budget_s``, the work's own time limit) and a
    Cancel button. Returns ``fn``'s result or raises its exception. On Cancel the script
    run stops at once and the result is discarded (the thread ends within its budget).
    """
    import threading
    import time

    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the script thread below
            box["error"] = exc

    thread = threading.Thread(target=work, name=f"packrat-ui {label}", daemon=True)
    prog = Progress(label, cancel_key)
    start = time.monotonic()
    thread.start()
    while thread.is_alive():
        thread.join(0.2)
        elapsed = time.monotonic() - start
        if budget_s:
            prog.update(min(elapsed / budget_s, 0.99), f"{elapsed:.1f} s of at most {budget_s:g} s")
        else:
            prog.update(0.0, f"{elapsed:.1f} s")
    prog.close()
    if "error" in box:
        raise box["error"]
    return box.get("value")


def was_cancelled(cancel_key: str) -> bool:
    return bool(st.session_state.get(cancel_key))


def show_error(title: str, exc: BaseException | str) -> None:
    """An error box with a one-line message; the page keeps working."""
    msg = exc if isinstance(exc, str) else " ".join(str(exc).split()) or type(exc).__name__
    st.error(f"{title}: {msg}", icon=":material/error:")
