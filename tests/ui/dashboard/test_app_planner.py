"""Planner page (AppTest): the optimal plan, its map, baselines, sweep and Z3 certificate."""

from __future__ import annotations

import pytest

from packrat_sim import plan as plans
from packrat_sim.optimizer import OptimizerOptions, PlanTable, optimize
from packrat_sim.profile import builtin_profile


IDLE_OK = OptimizerOptions(exact_cores=False)  # the page's default, as `packrat plan`'s


@pytest.fixture
def planner(open_page):
    return open_page("planner")


def test_default_plan_numbers_match_the_optimizer(planner, h):
    at = planner
    h.no_errors(at)
    prof = builtin_profile("transformer-16")
    best = optimize(prof, 64, 16, OptimizerOptions(exact_cores=False))  # idle cores allowed: `packrat plan`'s default
    fat_ms = plans.plan_latency(plans.fat(64, 16), prof.predict)
    thin_ms = plans.plan_latency(plans.thin(64, 16), prof.predict)
    assert f"`{best.describe()}`" in h.texts(at) and best.describe() == "4 x 4t x 16"
    m = h.metrics(at)
    assert m["Plan latency"] == f"{best.predicted_ms:.2f} ms"
    assert m["Fat (1 instance x T threads)"] == f"{fat_ms:.2f} ms"
    assert m["Thin (min(T, B) x 1 thread)"] == f"{thin_ms:.2f} ms"
    assert any("SYNTHETIC" in w.value for w in at.warning)
    bars = h.chart(at, "planner.bars")["data"][0]
    assert bars["x"] == ["fat", "thin", "plan"]
    assert bars["y"] == pytest.approx([fat_ms, thin_ms, best.predicted_ms])


def test_core_map_colours_every_core_by_its_instance(planner, h):
    data = h.chart(planner, "planner.coremap")["data"][0]
    assert len(data["x"]) == 16
    hover = data["hovertext"]
    # 4 instances of 4 threads: each instance owns 4 cores, no core idle
    for k in range(4):
        assert sum(f"instance #{k} (4 threads, sub-batch 16)" in t for t in hover) == 4
    assert not any("idle" in t for t in hover)


def test_change_batch_cores_and_options(planner, h):
    at = planner
    at.number_input(key="planner.batch").set_value(96).run()
    at.number_input(key="planner.cores").set_value(12).run()
    at.checkbox(key="planner.allow_idle").check().run()
    h.no_errors(at)
    prof = builtin_profile("transformer-16")
    best = optimize(prof, 96, 12, OptimizerOptions(exact_cores=False, statistic="mean"))
    assert f"`{best.describe()}`" in h.texts(at)
    assert h.metrics(at)["Plan latency"] == f"{best.predicted_ms:.2f} ms"
    hover = h.chart(at, "planner.coremap")["data"][0]["hovertext"]
    assert len(hover) == 12 and sum("idle" in t for t in hover) == 12 - best.threads_used

    at.checkbox(key="planner.homogeneous").check().run()
    h.no_errors(at)
    homo = optimize(prof, 96, 12, OptimizerOptions(exact_cores=False, homogeneous=True, statistic="mean"))
    assert f"`{homo.describe()}`" in h.texts(at)
    assert len({(i.threads, i.batch) for i in homo.instances}) == 1


def test_statistic_and_sockets_options(planner, h):
    at = planner
    at.selectbox(key="planner.statistic").set_value("p90").run()
    at.number_input(key="planner.cores_per_socket").set_value(8).run()
    h.no_errors(at)
    prof = builtin_profile("transformer-16").with_statistic("p90")
    best = optimize(prof, 64, 16, OptimizerOptions(exact_cores=False, statistic="p90", cores_per_socket=8))
    from ui.cli.plan import plan_report
    from ui.dashboard.data import fmt_ms

    assert h.metrics(at)["Plan latency"] == f"{best.predicted_ms:.2f} ms"
    report = plan_report(prof, 64, 16, OptimizerOptions(exact_cores=False, statistic="p90", cores_per_socket=8))
    # fat (16 threads) fits no socket of 8: the page says n/a rather than pricing an impossible plan
    assert h.metrics(at)["Fat (1 instance x T threads)"] == fmt_ms(report["fat_ms"])
    cm = h.chart(at, "planner.coremap")["data"][0]
    assert max(cm["x"]) == 7  # one row of 8 cores per socket
    owner = {}
    for text in cm["hovertext"]:
        core, rest = text.split(": ", 1)
        if rest.startswith("instance #"):
            owner.setdefault(rest.split()[1], set()).add(int(core.split()[1]) // 8)
    assert owner and all(len(sockets) == 1 for sockets in owner.values())


def test_an_impossible_problem_shows_an_error_and_the_page_recovers(planner, h):
    at = planner
    at.number_input(key="planner.batch").set_value(8).run()
    at.number_input(key="planner.min_batch").set_value(16).run()
    assert not at.exception
    assert any("No plan for batch 8 on 16 cores" in e.value for e in at.error)
    at.number_input(key="planner.min_batch").set_value(1).run()
    h.no_errors(at)
    assert h.metrics(at)["Plan latency"] == f"{optimize(builtin_profile('transformer-16'), 8, 16, IDLE_OK).predicted_ms:.2f} ms"


def test_sweep_draws_the_best_plan_for_every_batch(planner, h):
    at = planner
    at.select_slider(key="planner.sweep_max").set_value(128).run()
    h.no_errors(at)
    prof = builtin_profile("transformer-16")
    table = PlanTable(prof, 16, 128, OptimizerOptions(exact_cores=False, statistic="mean"))  # the CLI's default
    fig = h.chart(at, "planner.sweep")
    names = [d["name"] for d in fig["data"]]
    assert names == ["fat", "thin", "optimal plan"]
    opt = fig["data"][2]
    assert opt["x"] == [1, 2, 4, 8, 16, 32, 64, 128]
    assert opt["y"] == pytest.approx([table.latency_ms(16, b) for b in opt["x"]])
    assert opt["hovertext"][6] == table.plan(16, 64).describe()
    assert fig["layout"]["xaxis"]["type"] == "log"


def test_certify_the_plan_with_z3(planner, h):
    at = planner
    at.button(key="planner.btn.certify").click().run()
    h.no_errors(at)
    ok = [s.value for s in at.success if s.value.startswith("OPTIMAL")]
    assert ok and "82.85 ms" in ok[0]
    # the verdict persists across reruns and page switches for the same problem
    h.goto(at, "profiles")
    h.goto(at, "planner")
    assert any(s.value.startswith("OPTIMAL") for s in at.success)
    # ...and is not shown for another problem
    at.number_input(key="planner.batch").set_value(32).run()
    assert not any(s.value.startswith("OPTIMAL") for s in at.success)


def test_plan_is_downloadable_as_a_plan_file(planner):
    keys = [b.key for b in planner.get("download_button")]
    assert "planner.dl.plan" in keys


def test_planner_follows_the_profile_chosen_on_the_profiles_page(app, h):
    app.selectbox(key="profiles.builtin").set_value("cnn-16").run()
    app.button(key="profiles.btn.builtin").click().run()
    at = h.goto(app, "planner")
    best = optimize(builtin_profile("cnn-16"), 64, 16, IDLE_OK)
    assert h.metrics(at)["Plan latency"] == f"{best.predicted_ms:.2f} ms"
    assert "cnn-16 [synthetic]" in h.texts(at)


def test_plan_export_and_planning_under_interference(app, h):
    from dataclasses import replace

    from packrat_sim.interference import optimize_with_interference
    from packrat_sim.profile import Interference, dumps_profile

    prof = replace(builtin_profile("cnn-16"), synthetic=False, model="cnn-corun",
                   interference=Interference(points=((1, 1.05), (8, 1.6), (15, 2.2))))
    app.radio(key="profiles.source").set_value("Profile file (JSON)").run()
    app.file_uploader(key="profiles.up.json").upload("corun.json", dumps_profile(prof).encode(), "application/json").run()
    at = h.goto(app, "planner")
    ip = optimize_with_interference(prof, 64, 16, OptimizerOptions(exact_cores=False, statistic="mean"))
    m = h.metrics(at)
    assert m["Interference-aware plan"] == f"{ip.plan.predicted_ms:.2f} ms"
    assert m["Isolated plan under interference"] == f"{ip.isolated_under_interference_ms:.2f} ms"
    assert m["Gain of planning for interference"] == f"{ip.gain:.2f}x"
    at.selectbox(key="planner.export_format").set_value("run-cpu").run()
    h.no_errors(at)
    assert any("run_cpu" in c.value for c in at.code)


def test_the_torchserve_export_of_a_mixed_plan_is_the_clis_homogeneous_one(planner, h, cli):
    at = planner
    at.number_input(key="planner.batch").set_value(3).run()  # transformer-16, B=3, T=16: 1 x 6t + 2 x 5t
    at.selectbox(key="planner.export_format").set_value("torchserve").run()
    h.no_errors(at)
    code, out, _ = cli("plan", "--profile", "builtin:transformer-16", "--batch", "3", "--cores", "16",
                       "--export", "torchserve")
    assert code == 0
    assert out.startswith("# Packrat plan: 3 x 5t x 1")  # identical workers, not the mixed plan
    assert [c.value for c in at.code if "cpu_launcher" in c.value] == [out.rstrip("\n")]
