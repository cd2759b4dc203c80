"""Issue 19's dashboard defects, each as an AppTest (defect 3, Cancel, is in
test_dashboard_jobs.py; defect 6, the Hardware page, in test_app_hardware.py; the browser-only
parts of 7, the /profiles URL and the local favicon, in test_browser.py)."""

from __future__ import annotations

import pytest

from ui.dashboard import charts as charts
from ui.dashboard import data as data


def ms(text: str) -> float:
    return float(text.split()[0])


STALE = [
    {"client": 0, "input": {"op": "write", "value": 1}, "output": None, "call": 0, "ret": 10},
    {"client": 1, "input": {"op": "read"}, "output": 1, "call": 5, "ret": 15},
    {"client": 0, "input": {"op": "write", "value": 2}, "output": None, "call": 20, "ret": 30},
    {"client": 1, "input": {"op": "read"}, "output": 1, "call": 31, "ret": 40},
]


def _planner_on_cnn64(app, h):
    app.selectbox(key="profiles.builtin").set_value("cnn-64").run()
    app.button(key="profiles.btn.builtin").click().run()
    at = h.goto(app, "planner")
    at.number_input(key="planner.batch").set_value(1024).run()
    at.number_input(key="planner.cores").set_value(48).run()
    return at


def _never_beaten(at, h) -> None:
    m = h.metrics(at)
    plan = ms(m["Plan latency"])
    for label in ("Fat (1 instance x T threads)", "Thin (min(T, B) x 1 thread)"):
        if m[label] != "n/a":
            assert plan <= ms(m[label]) + 1e-9, (label, m)
    bars = h.chart(at, "planner.bars")["data"][0]["y"]
    assert all(b is None or bars[2] <= b + 1e-9 for b in bars[:2]), bars


@pytest.mark.slow
def test_defect1_a_baseline_never_beats_the_certified_plan_on_screen(app, h):
    at = _planner_on_cnn64(app, h)
    h.no_errors(at)
    _never_beaten(at, h)
    # with idle cores allowed and sockets of 32 cores, and Z3's certificate
    at.checkbox(key="planner.allow_idle").check().run()
    at.number_input(key="planner.cores_per_socket").set_value(32).run()
    h.no_errors(at)
    _never_beaten(at, h)
    at.number_input(key="planner.z3_timeout").set_value(120.0).run()
    at.button(key="planner.btn.certify").click().run()
    h.no_errors(at)
    verdicts = [s.value for s in at.success if s.value.startswith("OPTIMAL")]
    if verdicts:  # an OPTIMAL plan must not lose to a baseline on screen
        _never_beaten(at, h)
    else:
        assert any(w.value.startswith("UNKNOWN") for w in at.warning), "Z3 must say OPTIMAL or UNKNOWN here"


@pytest.fixture
def stale_checked(verify, h):
    """The History checker after checking the stale-read history (NOT LINEARIZABLE)."""
    verify.file_uploader(key="verify.up.history").upload("stale.json", h.history(STALE), "application/json").run()
    verify.button(key="verify.btn.check").click().run()
    return verify


def test_defect2_new_input_clears_the_old_verdict(stale_checked, h):
    at = stale_checked
    assert any(e.value.startswith("NOT LINEARIZABLE: stale.json") for e in at.error)
    assert "verify.dl.html" in [b.key for b in at.get("download_button")]
    # a new (malformed) upload: the old verdict, chart and download go at once...
    at.file_uploader(key="verify.up.history").set_value(("junk.json", b"{not json", "application/json")).run()
    assert not any("NOT LINEARIZABLE" in e.value for e in at.error)
    assert "verify.history_chart" not in [c.key for c in at.get("plotly_chart")]
    assert "verify.dl.html" not in [b.key for b in at.get("download_button")]
    # ...and checking it shows only its own error
    at.button(key="verify.btn.check").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert errors and all(e.startswith("Cannot check junk.json") for e in errors), errors
    assert "verify.dl.html" not in [b.key for b in at.get("download_button")]


def test_defect2_another_model_clears_the_old_verdict(stale_checked, h):
    at = stale_checked
    assert any(e.value.startswith("NOT LINEARIZABLE") for e in at.error)
    at.selectbox(key="verify.model").set_value("cas-register").run()
    assert not any(e.value.startswith("NOT LINEARIZABLE") for e in at.error)


def test_defect4_core_map_squares_never_overlap_and_colours_match_their_labels():
    owner = [k // 2 for k in range(64)]  # 32 instances of 2 cores, 32 cores per socket (one row each)
    instances = [{"threads": 2, "batch": 8}] * 32
    fig = charts.core_map(owner, instances, per_row=32)
    shapes = fig.layout.shapes
    assert len(shapes) == 64
    for c in range(63):
        a, b = shapes[c], shapes[c + 1]
        if a.y0 == b.y0:  # same row: this square ends before the next begins
            assert a.x1 < b.x0
    labels = fig.data[0]
    for c, sh in enumerate(shapes):
        assert sh.x0 < labels.x[c] < sh.x1 and sh.y0 < labels.y[c] < sh.y1  # the label sits on its own square
        assert sh.fillcolor == charts.instance_color(owner[c])
        assert f"instance #{owner[c]} " in labels.hovertext[c]
    assert len({charts.instance_color(k) for k in range(48)}) == 48  # no colour repeats beyond 10


def test_defect4_core_map_of_a_planner_plan_with_sockets(open_page, h):
    at = open_page("planner")
    at.number_input(key="planner.batch").set_value(64).run()
    at.number_input(key="planner.cores_per_socket").set_value(8).run()
    h.no_errors(at)
    fig = h.chart(at, "planner.coremap")
    shapes = fig["layout"]["shapes"]
    assert len(shapes) == 16 and all(s["x1"] - s["x0"] < 1 for s in shapes)


def test_defect5_the_sidebar_names_the_profile_the_page_just_chose(app):
    app.selectbox(key="profiles.builtin").set_value("cnn-16").run()
    app.button(key="profiles.btn.builtin").click().run()
    sidebar = [m.value for m in app.sidebar.markdown]
    assert "**Profile:** cnn-16 [synthetic]" in sidebar, sidebar


def test_defect7_arrows_readable_in_both_themes_and_counterexample_heading():
    for kind, color in data.EVENT_COLORS.items():
        assert data.contrast_ratio(color, "#FFFFFF") >= 3.0, kind
        assert data.contrast_ratio(color, "#0E1117") >= 3.0, kind

    class V:
        kind, name = "linearizability", "linearizable (serving)"

    assert data.violation_title(V) == "the history is not linearizable under the serving model"


def test_defect7_wording_plurals_speedups_and_friendly_number_errors():
    assert data.plural(1, "core") == "1 core" and data.plural(2, "core") == "2 cores"
    assert data.fmt_speedup(1.25) == "plan is 1.25x faster"
    assert data.fmt_speedup(0.79) == "plan is 1.27x slower"
    assert data.fmt_speedup(1.0) == "plan has the same latency"
    with pytest.raises(ValueError, match="'x' is not a positive integer"):
        data.parse_int_list("1,x", "batch sizes")
    assert data.parse_int_list("1-3, 8", "b") == [1, 2, 3, 8]


def test_defect7_check_the_simulated_history_opens_the_history_checker(open_page, h):
    at = open_page("simulator")
    at.radio(key="sim.kind").set_value("closed").run()
    at.number_input(key="sim.c_requests").set_value(128).run()
    at.button(key="sim.btn.run").click().run()
    at.button(key="sim.btn.tocheck").click().run()
    h.goto(at, "verification")
    assert at.radio(key="verify.section").value == "History checker"
    assert "verify.btn.check" in [b.key for b in at.button]


def test_defect7_the_app_icon_is_a_local_file(h):
    """The favicon was a Material icon name, drawn from a font fetched from the internet."""
    icon = h.ROOT / "ui" / "dashboard" / "favicon.png"
    assert icon.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "page_icon=str(FAVICON)" in h.APP.read_text()


def test_defect8_log_axes_have_numbers_and_history_times_have_a_unit(open_page, h):
    at = open_page("planner")
    sweep = h.chart(at, "planner.sweep")["layout"]["yaxis"]
    assert sweep["type"] == "log" and len(sweep["tickvals"]) >= 3 and len(sweep["ticktext"]) >= 3
    curves = charts.scaling_curves([{"batch": 1, "threads": [1, 2], "latency_ms": [3.0, 2.0], "ideal_ms": [3.0, 1.5]}])
    assert len(curves.layout.yaxis.tickvals) >= 3
    assert charts.log_ticks([397.7, 401.7])  # a narrow range still gets numbers


def test_defect8_simulated_history_in_ms_with_call_and_return_in_the_hover(open_page, h):
    at = open_page("simulator")
    at.radio(key="sim.kind").set_value("closed").run()
    at.number_input(key="sim.c_requests").set_value(128).run()
    at.number_input(key="sim.c_clients").set_value(3).run()
    at.button(key="sim.btn.run").click().run()
    at.button(key="sim.btn.tocheck").click().run()
    at = h.goto(at, "verification")
    at.button(key="verify.btn.check").click().run()
    h.no_errors(at)
    fig = h.chart(at, "verify.history_chart")
    assert fig["layout"]["xaxis"]["title"]["text"] == "time (ms since the first call)"
    bars = fig["data"][0]
    assert max(bars["base"]) < 1e6  # ms, not 0.2B..1.4B ns
    assert "call %{customdata[2]" in bars["hovertemplate"] and "return %{customdata[3]}" in bars["hovertemplate"]
    lanes = fig["layout"]["yaxis"]["categoryarray"]
    assert lanes == sorted(lanes, key=float)
