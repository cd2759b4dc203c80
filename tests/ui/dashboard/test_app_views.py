"""Issue 19's new dashboard views (AppTest): counterexample stepper, linearization view,
simulator time series and saved-run comparison, parameters in the URL, the equivalent CLI
command, and help lines tied to the README."""

from __future__ import annotations

import json

import pytest

STALE = [
    {"client": 0, "input": {"op": "write", "value": 1}, "output": None, "call": 0, "ret": 10},
    {"client": 1, "input": {"op": "read"}, "output": 1, "call": 5, "ret": 15},
    {"client": 0, "input": {"op": "write", "value": 2}, "output": None, "call": 20, "ret": 30},
    {"client": 1, "input": {"op": "read"}, "output": 1, "call": 31, "ret": 40},
]


@pytest.mark.slow
def test_counterexample_stepper_walks_the_schedule_and_marks_the_breaking_step(open_page, h):
    from checker.explore import explore
    from checker.protocols import build
    from ui.dashboard import data as data

    at = open_page("verification")
    at.selectbox(key="explore.variant").set_value("switch-before-ready").run()
    at.button(key="explore.btn.run").click().run()
    assert not at.exception, [e.message for e in at.exception]
    ref = explore("reconfig", "dpor", variant="switch-before-ready", max_schedules=2000, max_time=30.0)
    cx = data.counterexample_steps(build("reconfig", "switch-before-ready"), ref.violation.schedule)
    n, breaking = len(cx["steps"]), cx["breaking_step"]
    assert breaking is not None and 1 <= breaking <= n
    assert any(m.value.startswith("### Counterexample: ") and "linearizable (serving)" not in m.value
               for m in at.markdown)
    # the stepper opens on the breaking step; the diagram marks it
    assert at.slider(key="explore.step").value == breaking
    assert f"**Step {breaking} of {n}**" in h.texts(at) and "this step breaks the property" in h.texts(at)
    labels = h.chart(at, "explore.msc")["data"][-1]["text"]
    assert [k + 1 for k, t in enumerate(labels) if "(breaks here)" in t] == [breaking]
    states = h.frame(at, "before")
    assert list(states["actor"]) == cx["actors"]
    # step back to the first delivery: that step's states, before and after
    at.slider(key="explore.step").set_value(1).run()
    first = cx["steps"][0]
    assert f"**Step 1 of {n}**: `{first['event']}`" in h.texts(at)
    states = h.frame(at, "before")
    assert list(states["after"]) == [first["after"][a] for a in cx["actors"]]
    assert any("packrat explore --replay explore-reconfig-switch-before-ready.replay.json" in c.value for c in at.code)


def test_linearization_view_points_partial_prefixes_zoom_and_first_failed_partition(open_page, h):
    at = open_page("verification")
    at.radio(key="verify.section").set_value("History checker").run()
    doc = {"schema": "packrat.history/1", "model": "register", "operations": STALE}
    at.file_uploader(key="verify.up.history").upload("stale.json", json.dumps(doc).encode(), "application/json").run()
    at.button(key="verify.btn.check").click().run()
    assert not at.exception
    assert "Failed first: partition all operations (operation 3 cannot be linearized)." in h.texts(at)
    fig = h.chart(at, "verify.history_chart")
    pts = next(d for d in fig["data"] if d["name"] == "linearization point")
    assert [c[0] for c in pts["customdata"]] == [1, 2, 3]  # the longest linearizable prefix
    assert "2" in str(pts["customdata"][2][2])  # the model state after write(2)
    assert all(call <= t for t, call in zip(pts["x"], [0, 5, 20]))
    assert fig["layout"]["xaxis"]["range"][0] > 0  # zoomed to the violation
    at.slider(key="verify.prefix").set_value(1).run()
    pts = next(d for d in h.chart(at, "verify.history_chart")["data"] if d["name"] == "linearization point")
    assert len(pts["x"]) == 1
    at.checkbox(key="verify.zoom").uncheck().run()
    assert "range" not in h.chart(at, "verify.history_chart")["layout"]["xaxis"]


@pytest.mark.slow
def test_simulator_time_series_downloads_and_saved_run_comparison(open_page, h):
    at = open_page("simulator")
    at.number_input(key="sim.start_ms").set_value(500.0)
    at.button(key="sim.btn.run").click().run()
    assert not at.exception
    fig = h.chart(at, "sim.timeseries")
    names = [d["name"] for d in fig["data"]]
    assert names[:4] == ["latency p50", "latency p99", "throughput", "queue length"] and "reconfiguration" in names
    vlines = [s for s in fig["layout"]["shapes"] if s.get("type") == "line"]
    assert vlines, "reconfigurations are marked"
    keys = [b.key for b in at.get("download_button")]
    for k in ("sim.dl.summary", "sim.dl.summary_csv", "sim.dl.requests", "sim.dl.series", "sim.dl.timeline",
              "sim.dl.history"):
        assert k in keys, k
    assert sum(k.endswith(".html") for k in keys) == 3
    at.text_input(key="sim.save_name").set_value("steps 16 cores").run()
    at.button(key="sim.btn.save").click().run()
    at.number_input(key="sim.cores").set_value(8).run()
    at.button(key="sim.btn.run").click().run()
    at.text_input(key="sim.save_name").set_value("steps 8 cores").run()
    at.button(key="sim.btn.save").click().run()
    table = h.frame(at, "run")
    assert set(table["run"]) == {"steps 16 cores", "steps 8 cores"} and set(table["cores"]) == {8, 16}
    assert len(h.chart(at, "sim.compare_chart")["data"][0]["x"]) == 6


def test_planner_parameters_come_from_and_go_to_the_url(h):
    from streamlit.testing.v1 import AppTest

    from packrat_sim.optimizer import OptimizerOptions, optimize
    from packrat_sim.profile import builtin_profile

    at = AppTest.from_file(str(h.APP), default_timeout=180)
    at.query_params["profile"] = "builtin:cnn-16"
    at.query_params["planner.batch"] = "96"
    at.query_params["planner.cores"] = "12"
    at.run()  # the app (profile from the URL), then the page (its parameters from the URL)
    at.switch_page("pages/planner.py").run()
    assert not at.exception
    best = optimize(builtin_profile("cnn-16"), 96, 12, OptimizerOptions(exact_cores=False))
    assert h.metrics(at)["Plan latency"] == f"{best.predicted_ms:.2f} ms"
    assert any("packrat plan --profile builtin:cnn-16 --batch 96 --cores 12" in c.value for c in at.code)
    at.number_input(key="planner.batch").set_value(32).run()
    assert at.query_params["planner.batch"] in ("32", ["32"])  # a reload or a shared link shows this plan
    assert at.query_params["profile"] in ("builtin:cnn-16", ["builtin:cnn-16"])


def test_equivalent_cli_commands_are_shown_beside_each_form(open_page):
    sim = open_page("simulator")
    assert any(c.value.startswith("packrat simulate --profile builtin:transformer-16 --cores 16 --workload ")
               for c in sim.code)
    ver = open_page("verification")
    assert any(c.value.startswith("packrat explore --protocol reconfig --variant correct --strategy dpor")
               for c in ver.code)


def test_every_strategy_model_and_policy_has_a_help_line_tied_to_the_readme(open_page):
    from checker.explore import STRATEGIES
    from checker.models import MODELS
    from packrat_sim.simulator import POLICIES
    from ui.dashboard import help as help_

    assert set(STRATEGIES) <= set(help_.STRATEGY_HELP)
    assert set(MODELS) <= set(help_.MODEL_HELP)
    assert set(POLICIES) <= set(help_.POLICY_HELP)
    for title in help_.SECTIONS.values():
        assert help_.readme_section(title), f"README has no section {title!r}"
    at = open_page("verification")
    assert "README: Exploring every schedule of a protocol" in [e.label for e in at.expander]
    assert "dynamic partial-order reduction" in at.selectbox(key="explore.strategy").help


def test_time_series_counts_the_queue_exactly_and_bins_latency_and_throughput():
    from packrat_sim.profile import builtin_profile
    from packrat_sim.simulator import compare_plans
    from ui.dashboard import data as data

    (res,) = compare_plans(builtin_profile("cnn-16"), 16, "poisson:rate=200/s,duration=2s,max_batch=16,max_delay=5ms",
                           seed=3, policies=["fat"]).results
    s = data.sim_time_series(res, bin_s=0.25)
    rec = res.records
    assert sum(x * 0.25 for x in s["throughput_per_s"]) == pytest.approx(rec.arrival_ms.size)
    assert min(s["queue"]) >= 0 and s["queue"][-1] == 0  # every request is dispatched in the end
    for t, q in list(zip(s["queue_t_s"], s["queue"]))[::37]:  # queue(t) = arrived - dispatched
        t_ms = t * 1000.0 * (1 + 1e-12)  # the instant itself, all its events included
        assert q == int((rec.arrival_ms <= t_ms).sum() - (rec.dispatch_ms <= t_ms).sum())
    done = [p for p in s["p99_ms"] if p is not None]
    assert done and max(done) <= float((rec.completion_ms - rec.arrival_ms).max()) + 1e-9
