"""The Verification page's state-space browser (Stateright's Explorer, as a page section).

It browses the protocol the Schedule explorer's pickers choose: from the initial state, one
button per enabled event steps to its successor; Back and Restart walk back. It shows each
actor's state one field per row, the messages in flight per channel, how every invariant,
property and the linearizability of the history so far stand, and the path taken. The
counterexample stepper's button opens it at any step of a counterexample (:func:`jump`).

Thin: :mod:`checker.explore.browse` does the work. The session and the URL keep only the path
(``browse.path``, event indices as text), so a reload or a shared link reopens the same state.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from checker.explore import ExploreError
from checker.explore import browse
from checker.protocols import ProtocolError, build
from ui.dashboard import state as state

PATH_KEY = "browse.path"  # the path as text (browse.path_text); also in the URL
FOR_KEY = "browse.for"  # the label of the protocol the path walks
VIEWS_KEY = "browse._views"  # (protocol label, path) -> StateView, this session's views (see _view)
MAX_VIEWS = 64
FROM_KEY = "browse.from"  # (note, path text) of the counterexample step the browser was opened at
URL_KEYS: dict[str, type] = {PATH_KEY: str}


def jump(protocol, schedule: Sequence, note: str) -> None:
    """Open the browser where ``schedule`` (a counterexample's first steps) leads; ``note`` says
    where from. A button's ``on_click``: it runs before the page is drawn again."""
    text = browse.path_text(browse.path_of_schedule(protocol, schedule))
    st.session_state[PATH_KEY] = text
    st.session_state[FOR_KEY] = protocol.label()
    st.session_state[FROM_KEY] = (note, text)


def _go(text: str) -> None:
    st.session_state[PATH_KEY] = text


def browser_section(name: str, variant: str, params: dict) -> None:
    """The section, on protocol ``name``/``variant`` with ``params`` (the explorer's pickers)."""
    st.subheader("State-space browser")
    st.caption("Walk the protocol chosen above one event at a time, as the explorer does: each button takes one "
               "enabled event (a delivery, or a fault the budgets allow). Back and Restart walk back; the "
               "counterexample stepper opens the browser at any step of a counterexample.")
    try:
        protocol = build(name, variant, **params)
    except ProtocolError as exc:
        state.show_error("Cannot browse", exc)
        return
    state.from_url(URL_KEYS)
    if st.session_state.setdefault(FOR_KEY, protocol.label()) != protocol.label():
        st.session_state[FOR_KEY] = protocol.label()  # another protocol: start from its initial state
        st.session_state[PATH_KEY] = ""
    view = _current_view(protocol)
    _controls(view)
    _show_state(view)
    state.to_url(URL_KEYS)


def _current_view(protocol) -> browse.StateView:
    """The view of the kept path; a path that does not replay (a stale link) is reported and
    replaced by the initial state."""
    text = st.session_state.setdefault(PATH_KEY, "")
    try:
        return _view(protocol, browse.parse_path(text))
    except ExploreError as exc:
        state.show_error("Cannot follow the path of the link; showing the initial state", exc)
        st.session_state[PATH_KEY] = ""
        return _view(protocol, ())


def _view(protocol, path: tuple[int, ...]) -> browse.StateView:
    """:func:`browse.view`, kept for this session by (protocol label, path): a rerun that moves
    neither (any other widget of the page) does not replay and re-judge the path again. At most
    :data:`MAX_VIEWS` views are kept, the oldest dropped first."""
    cache = st.session_state.setdefault(VIEWS_KEY, {})
    key = (protocol.label(), path)
    if key not in cache:
        if len(cache) >= MAX_VIEWS:
            cache.pop(next(iter(cache)))
        cache[key] = browse.view(protocol, path)
    return cache[key]


def _controls(view: browse.StateView) -> None:
    """The position, where it came from, Back, Restart and one button per enabled event."""
    path = view.path
    final = "" if view.enabled else " - no event is enabled (a final state)"
    st.markdown(f"**{view.protocol.label()}**, step {len(path)}{final}")
    came = st.session_state.get(FROM_KEY)
    if came and came[1] == browse.path_text(path):
        st.info(f"Opened at {came[0]}.")
    c1, c2, _ = st.columns([1, 1, 4])
    c1.button("Back", key="browse.btn.back", disabled=not path, on_click=_go,
              args=(browse.path_text(browse.back(path)),), icon=":material/undo:")
    c2.button("Restart", key="browse.btn.restart", disabled=not path, on_click=_go, args=("",),
              icon=":material/restart_alt:")
    for j in view.failing:
        st.error(f"{j.kind} {j.name!r} fails here: {j.detail}", icon=":material/bug_report:")
    if view.enabled:
        st.markdown(f"**Enabled events ({len(view.enabled)})**: click one to take it")
        cols = st.columns(2)
        for c in view.enabled:
            cols[c.index % 2].button(c.label, key=f"browse.ev.{c.index}", on_click=_go,
                                     args=(browse.path_text((*path, c.index)),), width="stretch")


def _show_state(view: browse.StateView) -> None:
    """The actors, the network, the checks and the path of ``view``."""
    if view.records:
        st.caption("History records of the last event: " + "; ".join(view.records))
    st.markdown("**Actors** (changed: by the last event)")
    st.dataframe([{"actor": a.name, "field": f, "value": text, "changed": "yes" if f in a.changed else ""}
                  for a in view.actors for f, text in a.fields],
                 hide_index=True, key="browse.actors",
                 column_config={"value": st.column_config.TextColumn(width="large")})
    st.markdown("**Network** (messages in flight, per channel)")
    if view.network:
        st.dataframe([{"from": ch.src, "to": ch.dst, "in flight": len(ch.messages), "messages": "; ".join(ch.messages)}
                      for ch in view.network], hide_index=True, key="browse.network",
                     column_config={"messages": st.column_config.TextColumn(width="large")})
    else:
        st.caption("Nothing in flight.")
    st.markdown("**Invariants and properties here**")
    st.dataframe([{"check": j.name, "kind": j.kind, "status": j.status, "detail": j.detail}
                  for j in view.judgements], hide_index=True, key="browse.checks",
                 column_config={"detail": st.column_config.TextColumn(width="large")})
    st.markdown(f"**Path** ({len(view.path)} events)")
    lines = [f"{k}. {ev.describe()}" for k, ev in enumerate(view.events, 1)]
    st.code("\n".join(lines) or "(the initial state)", language=None)
    st.caption(f"Event indices: {browse.path_text(view.path) or '(none)'} (the link keeps them).")
