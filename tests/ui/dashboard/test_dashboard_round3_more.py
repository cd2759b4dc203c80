"""Issue 30 (dashboard round 3), items 7 and 9: the Sweep page's profile default, its policy
colours, its best-plan ordering and temporary directory; the Simulator's why-no-reconfiguration."""

from __future__ import annotations

import tempfile

import pytest


pytest.importorskip("plotly")


def _row(rate: int, policy: str, p99: float) -> dict:
    return {"status": "ok", "profile": "p", "cores": 4, "workload": f"poisson:rate={rate}", "policy": policy,
            "seed": 0, "p99_ms": p99, "p50_ms": p99 / 2, "offered_per_s": float(rate), "plan": f"plan-{policy}"}


def test_the_sweep_report_lists_the_best_plan_per_cell_by_offered_load_not_as_text():
    from ui.reports import sweep as sweep_report

    rows = [_row(r, p, 10.0 + r / 10) for r in (100, 150, 200, 50) for p in ("fat", "thin")]
    table = sweep_report.best_table_figure(rows)
    assert table is not None
    workloads = table.data[0].cells.values[2]
    assert list(workloads) == ["poisson:rate=50", "poisson:rate=100", "poisson:rate=150", "poisson:rate=200"]


def test_each_policy_has_the_same_colour_on_the_sweep_charts_as_on_the_planner_and_simulator_charts():
    from ui.dashboard import charts
    from ui.reports import sweep as sweep_report

    rows = [_row(r, p, 10.0 + r / 10) for r in (50, 100) for p in ("packrat", "fat", "thin")]
    ((_, fig),) = sweep_report.capacity_figures(rows)
    sweep_colour = {t.name.split()[0]: t.line.color for t in fig.data}
    planner = charts.sweep_chart([{"batch": 1, "fat_ms": 1.0, "thin_ms": 2.0, "plan_ms": 0.5}])
    planner_colour = {t.name: t.line.color for t in planner.data}
    cdf = charts.latency_cdf({"packrat": [1.0], "fat": [2.0], "thin": [3.0]})
    simulator_colour = {t.name: t.line.color for t in cdf.data}
    assert sweep_colour["fat"] == planner_colour["fat"] == simulator_colour["fat"] == charts.POLICY_COLORS["fat"]
    assert sweep_colour["thin"] == planner_colour["thin"] == simulator_colour["thin"] == charts.POLICY_COLORS["thin"]
    assert sweep_colour["packrat"] == planner_colour["optimal plan"] == simulator_colour["packrat"]
    assert len(set(charts.POLICY_COLORS.values())) == len(charts.POLICY_COLORS)


def test_the_sweep_page_starts_its_grid_from_the_builtin_profile_chosen_on_the_profiles_page(open_page, h):
    at = open_page("profiles")
    at.selectbox(key="profiles.builtin").set_value("cnn-16").run()
    at.button(key="profiles.btn.builtin").click().run()
    h.goto(at, "sweep")
    assert at.text_input(key="sweep.profile").value == "builtin:cnn-16"


def test_the_sweep_page_falls_back_to_cnn_8_when_the_current_profile_is_not_a_builtin(open_page, h):
    at = open_page("profiles")
    at.session_state["profile_builtin"] = None  # what an uploaded or measured profile leaves
    h.goto(at, "sweep")
    assert at.text_input(key="sweep.profile").value == "builtin:cnn-8"


def test_the_sweep_policies_chooser_gets_two_fifths_of_its_row_so_no_policy_chip_is_clipped(open_page):
    at = open_page("sweep")
    (column,) = [c for c in at.columns if any(getattr(w, "key", None) == "sweep.policies" for w in c.children.values())]
    assert column.weight >= 0.4
    assert at.multiselect(key="sweep.policies").value == ["packrat", "fat", "thin"]


def test_a_running_sweep_shows_a_cancel_button_beside_its_progress(open_page, monkeypatch, tmp_path):
    from packrat_sim import sweep as sw

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the session directory the run makes

    def stop_midway(grid, out, engine, progress=None):
        raise RuntimeError("stopped mid-sweep by the test")  # the page as it stands while the grid runs

    monkeypatch.setattr(sw, "run_sweep", stop_midway)
    at = open_page("sweep")
    at.text_input(key="sweep.seeds").set_value("0")
    at.button(key="sweep.run").click().run()
    assert "stopped mid-sweep by the test" in str(at.exception[0].message)
    assert [b.label for b in at.button if b.key == "sweep.cancel"] == ["Cancel"]


def test_after_cancel_the_sweep_page_says_the_sweep_was_cancelled_and_keeps_no_result(open_page, h):
    at = open_page("sweep")
    at.session_state["sweep.cancel"] = True  # the rerun that a click on Cancel starts
    at.run()
    assert any(w.value.startswith("Sweep cancelled: its worker processes were stopped") for w in at.warning)
    assert not at.get("metric")


def test_opening_the_sweep_page_leaves_no_packrat_sweep_directory_in_the_temporary_folder(open_page, h, tmp_path,
                                                                                         monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    at = open_page("sweep")
    at.text_input(key="sweep.seeds").set_value("0").run()
    h.no_errors(at)
    assert list(tmp_path.glob("packrat-sweep-*")) == []
    assert "output in a new temporary directory" in h.texts(at)


def test_the_simulator_says_in_the_clis_words_why_packrat_kept_its_first_plan(open_page, h):
    from packrat_sim.profile import builtin_profile
    from packrat_sim.simulator import SimConfig, compare_plans

    at = open_page("simulator")
    at.radio(key="sim.kind").set_value("poisson").run()
    at.number_input(key="sim.duration").set_value(2.0).run()
    at.button(key="sim.btn.run").click().run()
    h.no_errors(at)
    shown = [str(e.value) for e in at.info if str(e.value).startswith("packrat: no reconfiguration: ")]
    assert len(shown) == 1, [str(e.value) for e in at.info]
    comp = compare_plans(builtin_profile("transformer-16"), 16, "poisson:rate=300/s,duration=2s", seed=0,
                         config=SimConfig())
    packrat = comp.results[0]
    assert not packrat.reconfigurations and packrat.decisions
    why = packrat.no_reconfiguration_reasons()
    assert why[0].startswith(f"no reconfiguration: {len(packrat.decisions)} decisions (")
    assert shown[0] == "packrat: " + "\n\n".join(why)
