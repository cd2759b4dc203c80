"""Issue 30 item 6 and item 8's toolbar and axis style (AppTest): one verdict per hardware
measurement, the sidebar names the profile the page works on, the app ships its Streamlit
config (no Deploy button) and its axis-text style."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DASHBOARD = Path(__file__).resolve().parents[3] / "ui" / "dashboard"


def test_a_clean_run_is_a_success_and_a_suspect_one_a_single_warning_not_both():
    from ui.dashboard.data import run_verdict

    run = {"speedup": 2.11, "outputs_match": True, "max_abs_diff": 1e-7}
    level, text = run_verdict(run, [])
    assert level == "success" and text.startswith("Measured speedup of the plan over fat: 2.11x")
    level, text = run_verdict(run, ["plan measured 3.0x faster than fat, more than the 2 cores could give."])
    assert level == "warning" and "2.11x" in text and "NOT TRUSTED" in text and "more than the 2 cores" in text
    level, text = run_verdict(dict(run, outputs_match=False), [])
    assert level == "error" and "OUTPUTS DIFFER" in text


@pytest.fixture
def implausible(monkeypatch):
    """The runner faked: the plan measured 1335x faster than fat on 2 cores."""
    monkeypatch.setenv("PACKRAT_UI_JOBS", "thread")  # fakes live in this process only
    from packrat_sim import plan as plans
    from packrat_sim.profile import Cell, Profile
    from real_runner import executor, profiling

    cells = tuple(Cell.from_samples(t, b, [b * 4.0 / t + 2.0 * t]) for t in (1, 2) for b in (1, 2, 4))
    prof = Profile(model="tiny-mlp", cells=cells, source="fake measurement", meta=(("runner.seed", "0"),))
    monkeypatch.setattr(profiling, "quick_profile", lambda *a, **k: prof)

    def compare_with_fat(model, plan, iterations=10, *, cores=None, **kw):
        def res(p, xs):
            return executor.RunResult(model=model, plan=p, cores=((0,),) * len(p.instances),
                                      stats=executor.Stats(tuple(xs)))
        return executor.Comparison(plan=res(plan, [0.4, 0.43, 0.45]), fat=res(plans.fat(4, 2), [560.0, 574.0, 590.0]),
                                   max_abs_diff=0.0, outputs_match=True)

    monkeypatch.setattr(executor, "compare_with_fat", compare_with_fat)
    monkeypatch.setattr(executor, "run_plan", lambda *a, **k: None)


def test_an_implausible_measurement_gets_one_warning_verdict_and_no_green_box(open_page, implausible):
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs 2 usable CPUs")
    at = open_page("hardware")
    at.selectbox(key="hw.model").set_value("tiny-mlp")
    at.number_input(key="hw.batch").set_value(4)
    at.number_input(key="hw.cores").set_value(2)
    at.button(key="hw.btn.run").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert not [s.value for s in at.success]  # it said "Measured speedup 1335.71x" in green beside the warning
    verdicts = [w.value for w in at.warning if "Measured speedup of the plan over fat" in w.value]
    assert len(verdicts) == 1 and "NOT TRUSTED" in verdicts[0] and "could give" in verdicts[0]
    assert not [w.value for w in at.warning if "could give" in w.value and w.value not in verdicts]


def _app_script(page: str):
    """app.py's frame around one page (AppTest's switch_page runs a page without app.py)."""
    import runpy

    from ui.dashboard import state

    state.forget_profile_in_use()
    runpy.run_path(page, run_name="__page__")
    state.sidebar()


def test_the_sidebar_names_the_quick_profile_the_hardware_page_measures_not_the_current_one():
    pytest.importorskip("plotly")
    from streamlit.testing.v1 import AppTest

    from packrat_sim.profile import builtin_profile

    at = AppTest.from_function(_app_script, default_timeout=120, args=(str(DASHBOARD / "pages" / "hardware.py"),))
    at.session_state["hw.model"] = "tiny-mlp"
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    sidebar = [m.value for m in at.sidebar.markdown]
    assert "**Profile:** tiny-mlp (quick profile)" in sidebar, sidebar  # it said transformer-16 [synthetic]
    current = builtin_profile("transformer-16").label()
    assert any(f"The other pages use the current profile, {current}." == c.value for c in at.sidebar.caption)


def test_the_app_adds_its_axis_text_style_to_every_page(app):
    from ui.dashboard import charts

    styles = [e.proto.body for e in app.get("html")]
    assert any(charts.AXIS_TEXT_CSS in s for s in styles), styles


def test_the_apps_streamlit_config_hides_the_deploy_button():
    """Streamlit reads ui/dashboard/.streamlit/config.toml beside the app script (wherever
    `packrat ui` starts); `streamlit config show` run there reads it as the project's config."""
    pytest.importorskip("streamlit")
    out = subprocess.run([sys.executable, "-m", "streamlit", "config", "show"], cwd=DASHBOARD,
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert 'toolbarMode = "viewer"' in out
