"""Streamlit plumbing shared by the dashboard pages: the current profile, widget state
that survives page switches and lives in the URL, long work in a child process with live
progress and a Cancel button that stops it.

Results and choices live in ``st.session_state`` so they persist for the session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from ui.dashboard.jobs import Job

DEFAULT_BUILTIN = "transformer-16"
PROFILE_KEY = "profile"
PROFILE_ORIGIN_KEY = "profile_origin"
PROFILE_BUILTIN_KEY = "profile_builtin"
PROFILE_PARAM = "profile"
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

    Then :func:`keep_widgets`: a page run alone (AppTest's ``switch_page`` runs the page
    script without ``app.py``) keeps the other pages' inputs too, as ``app.py`` does.
    """
    try:
        from streamlit import config
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # pragma: no cover - a Streamlit without the flag has no such mode
        keep_widgets()
        return
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        if not config.get_option("global.appTest"):
            st.rerun()
    keep_widgets()


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


def clamp(key: str, lo: float, hi: float) -> None:
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
        st.session_state[PROFILE_BUILTIN_KEY] = DEFAULT_BUILTIN
    return st.session_state[PROFILE_KEY]


#: Results computed from the current profile (dropped when it changes).
PROFILE_BOUND = ("plan", "plan_obj", "sweep", "certificate", "sim")


def set_profile(profile, origin: str, builtin_name: str | None = None) -> None:
    """Make ``profile`` current; results computed from the old one are dropped.
    ``builtin_name``: the built-in it is (then the URL can name it), else None."""
    st.session_state[PROFILE_KEY] = profile
    st.session_state[PROFILE_ORIGIN_KEY] = origin
    st.session_state[PROFILE_BUILTIN_KEY] = builtin_name
    for name in PROFILE_BOUND:
        st.session_state.pop(f"result.{name}", None)


def profile_param() -> str | None:
    """The profile as the CLI names it (``builtin:NAME``), or None for an uploaded or measured one."""
    current_profile()
    name = st.session_state.get(PROFILE_BUILTIN_KEY)
    return f"builtin:{name}" if name else None


def profile_from_url() -> None:
    """Adopt ``?profile=builtin:NAME`` from the URL (once per distinct value), so a shared link
    or a reload shows the same profile. An unknown name is reported, not fatal."""
    from packrat_sim.profile import BUILTIN_NAMES

    raw = st.query_params.get(PROFILE_PARAM)
    applied = st.session_state.setdefault(_URL_APPLIED, {})
    if raw is None or applied.get(PROFILE_PARAM) == raw:
        return
    applied[PROFILE_PARAM] = raw
    name = raw.removeprefix("builtin:")
    if name not in BUILTIN_NAMES:
        st.warning(f"The link names profile {raw!r}, which is not a built-in ({', '.join(BUILTIN_NAMES)}); "
                   "showing the current profile instead.")
        return
    if profile_param() != raw:
        set_profile(builtin(name), f"built-in {name} (from the link)", name)


def publish_profile() -> None:
    """Write the current profile into the URL when the URL can name it."""
    raw = profile_param()
    applied = st.session_state.setdefault(_URL_APPLIED, {})
    if raw is None:
        if PROFILE_PARAM in st.query_params:
            del st.query_params[PROFILE_PARAM]
        applied.pop(PROFILE_PARAM, None)
        return
    if st.query_params.get(PROFILE_PARAM) != raw:
        st.query_params[PROFILE_PARAM] = raw
    applied[PROFILE_PARAM] = raw


def profile_origin() -> str:
    current_profile()
    return st.session_state.get(PROFILE_ORIGIN_KEY, "")


IN_USE_KEY = "_profile_in_use"


def forget_profile_in_use() -> None:
    """Called by ``app.py`` before each page runs: a page that works on another profile than
    the current one says so again (:func:`use_profile_here`) on every run."""
    st.session_state.pop(IN_USE_KEY, None)


def use_profile_here(label: str, origin: str) -> None:
    """This page works on a profile other than the current one (e.g. measured on the spot by
    the Hardware page): the sidebar names ``label`` (and ``origin``) as the profile in use."""
    st.session_state[IN_USE_KEY] = (label, origin)


def profile_in_use() -> tuple[str, str] | None:
    """(label, origin) of the profile the page just drawn declared with :func:`use_profile_here`;
    None when it works on the current profile."""
    return st.session_state.get(IN_USE_KEY)


def sidebar() -> None:
    """The sidebar under the pages' list: the toolkit, and the profile in use: the one the page
    just drawn declared (:func:`use_profile_here`, the other pages' current one named beside
    it), else the current profile (the page may just have chosen it: draw this after the page)."""
    profile = current_profile()
    here = profile_in_use()
    with st.sidebar:
        st.markdown("### Packrat toolkit")
        st.caption("Latency-optimal multi-instance DNN serving on CPU servers.")
        st.markdown(f"**Profile:** {here[0] if here else profile.label()}")
        st.caption(here[1] if here else profile_origin())
        if here:
            st.caption(f"The other pages use the current profile, {profile.label()}.")
        elif profile.synthetic:
            st.caption(":orange[synthetic: a formula, not a measurement]")


def profile_page(title: str, url_keys: dict[str, type], readme_kind: str):
    """Start a page that works on the current profile: the app's navigation, the ``title``, the
    values the URL gives for ``url_keys`` (see :func:`from_url`), the profile's banner and the
    README section on ``readme_kind``. Returns the current profile."""
    use_app_navigation()
    st.title(title)
    from_url(url_keys)
    profile = current_profile()
    profile_banner(profile)
    readme(readme_kind)
    return profile


def profile_banner(profile) -> None:
    """Name the current profile; a synthetic one gets a visible warning box."""
    st.caption(f"Profile: **{profile.label()}** - {profile_origin()}")
    if profile.synthetic:
        st.warning(
            f"SYNTHETIC profile `{profile.model}`: latencies come from a formula, not a measurement. "
            f"{profile.source}",
            icon=":material/science:",
        )


# ------------------------------------------------------------------ the URL

_URL_APPLIED = "_url_applied"


def _parse(raw: str, kind: type):
    if kind is bool:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(raw)
    if kind is list:
        return [x for x in raw.split(",") if x]
    return kind(raw)


def _show(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else repr(value)
    return str(value)


def from_url(keys: dict[str, type]) -> None:
    """Before a page draws its widgets: adopt the values the URL gives for ``keys``
    (widget key -> type: int, float, bool, str, list). A value is adopted once per distinct
    URL value, so later widget changes win; a malformed value is ignored."""
    applied = st.session_state.setdefault(_URL_APPLIED, {})
    for key, kind in keys.items():
        raw = st.query_params.get(key)
        if raw is None or applied.get(key) == raw:
            continue
        applied[key] = raw
        try:
            st.session_state[key] = _parse(raw, kind)
        except ValueError:
            continue


def drop_url(prefix: str, keep) -> None:
    """Remove the URL's ``prefix*`` parameters that are not in ``keep`` (another protocol's
    parameters, say), so a shared link carries only the inputs the page uses."""
    for key in [k for k in st.query_params if k.startswith(prefix) and k not in keep]:
        del st.query_params[key]


def to_url(keys: dict[str, type]) -> None:
    """After a page drew its widgets: write their values into the URL (``?key=value``), so a
    reload or a shared link shows the same plan or run."""
    applied = st.session_state.setdefault(_URL_APPLIED, {})
    for key in keys:
        if key not in st.session_state:
            continue
        raw = _show(st.session_state[key])
        if st.query_params.get(key) != raw:
            st.query_params[key] = raw
        applied[key] = raw


# ----------------------------------------------------------------- results


def result(name: str, default: Any = None) -> Any:
    """A result kept for the session (dropped when the profile changes)."""
    return st.session_state.get(f"result.{name}", default)


def store(name: str, value: Any, inputs: dict | None = None) -> Any:
    """Keep ``value`` as the result ``name``; ``inputs``: the form's inputs that produced it
    (input label -> value), which :func:`fresh_result` compares with the form's inputs now."""
    st.session_state[f"result.{name}"] = value
    if inputs is None:
        st.session_state.pop(f"result.{name}.inputs", None)
    else:
        st.session_state[f"result.{name}.inputs"] = dict(inputs)
    return value


def stale_inputs(was: dict | None, now: dict) -> list[str]:
    """``label: old -> new`` for each input of ``now`` that differs from ``was`` (every input
    when ``was`` is None: a result kept without its inputs is never taken as current)."""
    if was is None:
        return [f"{k}: ? -> {_show(v)}" for k, v in now.items()]
    keys = list(now) + [k for k in was if k not in now]
    return [f"{k}: {_show(was.get(k, '-'))} -> {_show(now.get(k, '-'))}" for k in keys if was.get(k) != now.get(k)]


def fresh_result(name: str, inputs: dict, action: str) -> Any:
    """The kept result ``name`` when it was computed from exactly ``inputs`` (the form as it is
    now), else None. A result kept for other inputs is not drawn: an OUT OF DATE warning says
    which inputs changed (was -> now) and that ``action`` (the button's label) computes the
    form's inputs. The old result stays kept: putting the inputs back shows it again."""
    value = result(name)
    if value is None:
        return None
    changed = stale_inputs(st.session_state.get(f"result.{name}.inputs"), inputs)
    if not changed:
        return value
    st.warning(f"**OUT OF DATE: the last result is hidden.** It was computed for other inputs than the form's "
               f"({'; '.join(changed)}). Press **{action}** to compute these inputs; putting the inputs back shows "
               "it again.", icon=":material/update:")
    return None


def memo(kept: dict, key: str, make) -> Any:
    """``make()`` computed once per kept result (a dict from :func:`result`) and reused by
    every later rerun that draws it; a new result (a new dict) starts afresh."""
    cache = kept.setdefault("_memo", {})
    if key not in cache:
        cache[key] = make()
    return cache[key]


# -------------------------------------------------------------- long work


class Progress:
    """A progress bar with a Cancel button, for long work in this script run.

    Clicking Cancel makes Streamlit rerun the script, which stops this run at its next
    Streamlit call (the next :meth:`update`); the caller sees the click on that rerun
    (:func:`was_cancelled`) and keeps no result. :func:`run_job` kills its child process
    when that happens.
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


def run_job(label: str, target: str, kwargs: dict, *, cancel_key: str, budget_s: float | None = None) -> Any:
    """Run ``target(progress, **kwargs)`` (a function of :mod:`ui.dashboard.jobs`) in a child
    process while this run shows its live progress (the work's own counters when it sends
    them, else the clock against ``budget_s``) and a Cancel button.

    Returns the result or raises the work's exception. Cancel (or leaving the page) makes
    Streamlit stop this run at its next progress update; the ``finally`` below then
    terminates the child, so no CPU keeps working for a result nobody will see.
    """
    job = Job(f"ui.dashboard.jobs:{target}", kwargs)
    prog = Progress(label, cancel_key)
    job.start()
    st.session_state["_job_pid"] = job.pid
    try:
        while not job.poll(0.25):
            frac, text = job.snapshot.describe(budget_s)
            prog.update(frac, text)
        value = job.result()
    finally:
        job.cancel()
    prog.close()
    return value


def was_cancelled(cancel_key: str) -> bool:
    return bool(st.session_state.get(cancel_key))


def job_result(name: str, pressed: bool, run: Callable[[], Any], *, inputs: dict, action: str,
               errors: tuple[type[Exception], ...], failure: str, cancel_key: str, cancelled: str) -> Any:
    """The result ``name`` a page keeps from a job its button (labelled ``action``) starts, for
    the form's ``inputs``. When ``pressed``: keep what ``run()`` returns (it calls :func:`run_job`
    with ``cancel_key``) with ``inputs``, or show an error box titled ``failure`` for an exception
    in ``errors`` (keeping the result from before). Otherwise, when Cancel stopped the last run:
    the ``cancelled`` warning. Returns the kept result when it is for ``inputs`` (None: none, or
    one for other inputs: :func:`fresh_result` says so)."""
    if pressed:
        try:
            value = run()
        except errors as exc:
            show_error(failure, exc)
        else:
            store(name, value, inputs)
    elif was_cancelled(cancel_key):
        st.warning(cancelled)
    return fresh_result(name, inputs, action)


def show_error(title: str, exc: BaseException | str) -> None:
    """An error box with a one-line message; the page keeps working."""
    msg = exc if isinstance(exc, str) else " ".join(str(exc).split()) or type(exc).__name__
    st.error(f"{title}: {msg}", icon=":material/error:")


def cli_box(command: str, missing: list[str] | tuple = (), notes: list[str] | tuple = ()) -> None:
    """The equivalent ``packrat`` command of a form, in a code box with a copy button.
    ``missing``: inputs of the form the command cannot carry (then it does not reproduce the
    page: a warning says so); ``notes``: what the reader must supply (e.g. a profile file)."""
    st.caption("Equivalent command (copy button on the right):")
    st.code(command, language="bash")
    if missing:
        st.warning("This command does NOT reproduce the page: the command line cannot express "
                   + "; ".join(missing) + ".", icon=":material/warning:")
    for n in notes:
        st.caption(f"Note: {n}.")


def readme(kind: str) -> None:
    """An expander holding the README section that explains ``kind`` (read from this checkout)."""
    from ui.dashboard.help import SECTIONS, readme_section

    title = SECTIONS[kind]
    text = readme_section(title)
    if text:
        with st.expander(f"README: {title}"):
            st.markdown(text)
