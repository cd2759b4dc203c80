"""Verification page (AppTest): the state-space browser below the schedule explorer."""

from __future__ import annotations

import pytest

INITIAL_EVENTS = ["c0 -> dispatcher: infer(0, 4)", "operator -> controller: reconfigure(0)"]


@pytest.fixture
def browser(open_page):
    """The Verification page, whose first section ends with the state-space browser."""
    return open_page("verification")


def event_buttons(at) -> list[str]:
    """The labels of the event buttons in the order of their indices (they sit in two columns)."""
    buttons = [b for b in at.button if b.key.startswith("browse.ev.")]
    return [b.label for b in sorted(buttons, key=lambda b: int(b.key.rsplit(".", 1)[1]))]


def actors(at, h) -> list[tuple]:
    """The actors table (the one with a "field" column) as (actor, field, value, changed) rows."""
    return [tuple(r) for r in h.frame(at, "field")[["actor", "field", "value", "changed"]].values]


def checks(at, h) -> dict[str, str]:
    """The checks table (the one with a "detail" column) as {"kind: name": status}."""
    return {f"{k}: {n}": s for n, k, s in h.frame(at, "detail")[["check", "kind", "status"]].values}


def url_path(at) -> str:
    value = at.query_params["browse.path"]
    return value[0] if isinstance(value, list) else value


def test_the_browser_opens_on_the_initial_state_with_its_enabled_events(browser, h):
    at = browser
    h.no_errors(at)
    assert "State-space browser" in [s.value for s in at.subheader]
    assert event_buttons(at) == INITIAL_EVENTS
    assert at.button(key="browse.btn.back").disabled and at.button(key="browse.btn.restart").disabled
    assert ("dispatcher", "routing", "(('i0.0', 0),)", "") in actors(at, h)
    net = h.frame(at, "in flight")
    assert list(net["messages"]) == ["infer(0, 4)", "reconfigure(0)"]
    assert checks(at, h)["linearizability: linearizable (serving)"] == "holds"
    assert "(the initial state)" in [c.value for c in at.code]


def test_clicking_an_event_takes_it_and_the_state_changes(browser, h):
    at = browser
    before = actors(at, h)
    at.button(key="browse.ev.0").click().run()
    h.no_errors(at)
    after = actors(at, h)
    assert after != before
    assert ("dispatcher", "pending", "((0, 'c0', 4, 1, ()),)", "yes") in after
    assert event_buttons(at) == ["dispatcher -> i0.0: run(0, 0, 0, 4)", INITIAL_EVENTS[1]]
    assert "1. c0 -> dispatcher: infer(0, 4)" in [c.value for c in at.code]
    assert url_path(at) == "0"  # the link keeps the path


def test_back_restores_the_state_and_restart_goes_to_the_initial_one(browser, h):
    at = browser
    initial = actors(at, h)
    at.button(key="browse.ev.0").click().run()
    one = (actors(at, h), event_buttons(at))
    at.button(key="browse.ev.0").click().run()
    assert (actors(at, h), event_buttons(at)) != one and url_path(at) == "0.0"
    at.button(key="browse.btn.back").click().run()
    h.no_errors(at)
    assert (actors(at, h), event_buttons(at)) == one and url_path(at) == "0"
    at.button(key="browse.btn.restart").click().run()
    assert [r[:3] for r in actors(at, h)] == [r[:3] for r in initial] and event_buttons(at) == INITIAL_EVENTS


def test_another_variant_starts_the_browser_from_its_initial_state(browser, h):
    at = browser
    at.button(key="browse.ev.0").click().run()
    at.selectbox(key="explore.variant").set_value("ack-before-switch").run()
    h.no_errors(at)
    assert event_buttons(at) == INITIAL_EVENTS and url_path(at) == ""


def test_a_link_with_a_path_opens_that_state_and_a_stale_one_is_reported(h):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(h.APP), default_timeout=180)
    at.query_params["browse.path"] = "0.0"
    at.switch_page("pages/verification.py").run()
    assert not at.exception
    assert "2. dispatcher -> i0.0: run(0, 0, 0, 4)" in at.code[-1].value
    stale = AppTest.from_file(str(h.APP), default_timeout=180)
    stale.query_params["browse.path"] = "0.7"
    stale.switch_page("pages/verification.py").run()
    assert any("step 2's event index must be an integer in 0..1, got 7" in e.value for e in stale.error)
    assert event_buttons(stale) == INITIAL_EVENTS


def test_a_counterexample_step_opens_in_the_browser(browser, h):
    from checker.explore import browse, explore
    from checker.protocols import build
    from ui.dashboard import data as data

    at = browser
    at.selectbox(key="explore.variant").set_value("switch-before-ready").run()
    at.button(key="explore.btn.run").click().run()
    assert not at.exception, [e.message for e in at.exception]
    protocol = build("reconfig", "switch-before-ready")
    v = explore("reconfig", "dpor", variant="switch-before-ready", max_schedules=2000, max_time=30.0).violation
    breaking = data.counterexample_steps(protocol, v.schedule)["breaking_step"]
    at.button(key="explore.btn.browse").click().run()  # the stepper opens on the breaking step
    path = browse.path_of_schedule(protocol, v.schedule[:breaking])
    assert url_path(at) == browse.path_text(path)
    assert f"Opened at step {breaking} of the counterexample." in [i.value for i in at.info]
    assert checks(at, h)[f"invariant: {v.name}"] == "fails"
    assert any(e.value.startswith(f"invariant {v.name!r} fails here") for e in at.error)
    # an earlier step: the property still holds there; taking the next event from there breaks it
    at.slider(key="explore.step").set_value(breaking - 1).run()
    at.button(key="explore.btn.browse").click().run()
    assert url_path(at) == browse.path_text(path[:-1]) and checks(at, h)[f"invariant: {v.name}"] == "holds"
    at.button(key=f"browse.ev.{path[-1]}").click().run()
    assert url_path(at) == browse.path_text(path) and checks(at, h)[f"invariant: {v.name}"] == "fails"


def test_faults_the_budgets_allow_get_buttons_too(browser, h):
    at = browser
    at.number_input(key="explore.p.reconfig.drops").set_value(1).run()
    h.no_errors(at)
    assert event_buttons(at) == INITIAL_EVENTS + [f"drop {e}" for e in INITIAL_EVENTS]
    at.button(key="browse.ev.2").click().run()  # drop the client's request
    assert h.frame(at, "in flight")["messages"].tolist() == ["reconfigure(0)"]
    assert event_buttons(at) == INITIAL_EVENTS[1:]  # the one drop of the budget is spent
