"""Calibrated by default on the dashboard (issue 27, AppTest): the planner, simulator and sweep
pages say how they price plans, show isolated and calibrated side by side, and warn in one
line when the profile has no co-run data."""

from __future__ import annotations

from dataclasses import replace

import pytest

from packrat_sim.optimizer import OptimizerOptions
from packrat_sim.predictor import ISOLATED_NOTE, NO_CORUN_NOTE, Predictor
from packrat_sim.profile import Interference, builtin_profile, dumps_profile

MODEL = Interference(points=((1, 1.05), (8, 1.6), (15, 2.2)), fit_error=0.04)


def _corun_profile():
    return replace(builtin_profile("cnn-16"), synthetic=False, model="cnn-corun", interference=MODEL)


def _use(app, h, profile, page: str):
    """Upload ``profile`` on the Profiles page, then open ``page``."""
    app.radio(key="profiles.source").set_value("Profile file (JSON)").run()
    app.file_uploader(key="profiles.up.json").upload("p.json", dumps_profile(profile).encode(), "application/json").run()
    return h.goto(app, page)


def _warnings(at) -> list[str]:
    return [w.value for w in at.warning]


def test_the_planner_warns_that_a_profile_without_corun_data_prices_multi_instance_plans_isolated(open_page, h):
    at = open_page("planner")
    h.no_errors(at)
    assert sum(w.startswith(NO_CORUN_NOTE) for w in _warnings(at)) == 1
    assert "Co-run: isolated: the profile has no co-run data" in h.texts(at)
    table = h.frame(at, "calibrated ms")
    assert list(table["plan"]) == ["plan", "fat", "thin"] and table["calibrated ms"].isna().all()


def test_the_planner_plans_with_the_corun_model_by_default_and_shows_isolated_beside_calibrated(app, h):
    prof = _corun_profile()
    at = _use(app, h, prof, "planner")
    h.no_errors(at)
    assert not any(NO_CORUN_NOTE in w for w in _warnings(at))
    assert "Co-run: calibrated: latencies include the profile's co-run model, fit error 4.0%" in h.texts(at)
    from packrat_sim.predictor import best_plan

    best = best_plan(Predictor(prof, "mean"), 64, 16, OptimizerOptions(exact_cores=False, statistic="mean"))
    assert h.metrics(at)["Plan latency"] == f"{best.predicted_ms:.2f} ms"
    table = h.frame(at, "calibrated ms")
    assert "isolated-profile plan" in list(table["plan"])
    row = table[table["plan"] == "plan"].iloc[0]
    assert row["calibrated ms"] == pytest.approx(best.predicted_ms)
    assert row["isolated ms"] == pytest.approx(Predictor(prof, "mean", interference=False).plan_ms(best))


def test_the_planner_ignores_the_corun_model_when_asked_and_says_so(app, h):
    at = _use(app, h, _corun_profile(), "planner")
    at.checkbox(key="planner.isolated").check().run()
    h.no_errors(at)
    assert sum(w.startswith(ISOLATED_NOTE) for w in _warnings(at)) == 1
    assert "--isolated" in h.texts(at)
    from packrat_sim.optimizer import optimize

    iso = optimize(builtin_profile("cnn-16"), 64, 16, OptimizerOptions(exact_cores=False, statistic="mean"))
    assert h.metrics(at)["Plan latency"] == f"{iso.predicted_ms:.2f} ms"


def test_the_simulator_warns_without_corun_data_and_says_calibrated_with_it(open_page, app, h):
    at = open_page("simulator")
    at.radio(key="sim.kind").set_value("closed").run()
    at.number_input(key="sim.c_requests").set_value(128).run()
    at.button(key="sim.btn.run").click().run()
    h.no_errors(at)
    assert sum(w.startswith(NO_CORUN_NOTE) for w in _warnings(at)) == 1

    at = _use(app, h, _corun_profile(), "simulator")
    at.radio(key="sim.kind").set_value("closed").run()
    at.number_input(key="sim.c_requests").set_value(128).run()
    at.button(key="sim.btn.run").click().run()
    h.no_errors(at)
    assert "Co-run: calibrated" in h.texts(at) and not any(NO_CORUN_NOTE in w for w in _warnings(at))


@pytest.mark.slow
def test_the_sweep_page_names_the_profiles_run_without_corun_data(open_page, h):
    at = h.small_sweep(open_page("sweep"), profile="builtin:cnn-4,builtin:cnn-4+interference",
                       workload="poisson:rate=100,duration=1s,max_batch=8", policies=("thin",))
    at.run()
    at.button(key="sweep.run").click().run()
    h.no_errors(at)
    assert [w for w in _warnings(at) if NO_CORUN_NOTE in w] == [f"{NO_CORUN_NOTE} (builtin:cnn-4)"]
    assert "builtin:cnn-4+interference: calibrated" in h.texts(at)
