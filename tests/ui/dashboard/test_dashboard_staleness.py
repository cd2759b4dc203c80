"""Issue 30 item 1: every result is keyed to the inputs that produced it. When the form changes,
the old result is hidden (never drawn beside the new inputs) and an OUT OF DATE warning says
which inputs changed; putting the inputs back shows it again."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def jobs_in_threads(monkeypatch):
    """Jobs in a thread of this process (no child to spawn and import): the numbers are the
    same, the tests faster (Cancel, which needs the child process, is tested elsewhere)."""
    monkeypatch.setenv("PACKRAT_UI_JOBS", "thread")


def out_of_date(at) -> list[str]:
    return [w.value for w in at.warning if w.value.startswith("**OUT OF DATE")]


def test_explorer_hides_the_old_violation_when_the_variant_changes(open_page):
    at = open_page("verification")
    at.selectbox(key="explore.variant").set_value("ack-before-switch").run()
    at.button(key="explore.btn.run").click().run()
    assert any(e.value.startswith("VIOLATION") for e in at.error)
    assert "explore.msc" in [c.key for c in at.get("plotly_chart")]

    at.selectbox(key="explore.variant").set_value("correct").run()
    assert not at.exception
    # the verdict, the counterexample and its replay file belong to the other variant: all gone
    assert not [e.value for e in at.error]
    assert not at.get("plotly_chart") and not at.metric
    assert "explore.dl.replay" not in [b.key for b in at.get("download_button")]
    (warning,) = out_of_date(at)
    assert "variant: ack-before-switch -> correct" in warning and "Explore" in warning
    # a protocol parameter counts as an input too
    at.selectbox(key="explore.variant").set_value("ack-before-switch").run()
    assert any(e.value.startswith("VIOLATION") for e in at.error) and not out_of_date(at)
    at.number_input(key="explore.p.reconfig.clients").set_value(2).run()
    assert not at.error and "parameters: defaults -> clients=2" in out_of_date(at)[0]


def test_simulator_hides_the_old_results_when_seed_or_workload_change(open_page, h):
    at = open_page("simulator")
    at.radio(key="sim.kind").set_value("closed").run()
    at.number_input(key="sim.c_requests").set_value(320).run()
    at.button(key="sim.btn.run").click().run()
    h.no_errors(at)
    assert "packrat: p99 latency" in h.metrics(at)

    at.number_input(key="sim.seed").set_value(1).run()
    assert not at.metric and not at.dataframe and not at.get("plotly_chart")
    assert "seed: 0 -> 1" in out_of_date(at)[0]
    at.number_input(key="sim.c_requests").set_value(640).run()
    (warning,) = out_of_date(at)
    assert "seed: 0 -> 1" in warning and "requests=320" in warning and "requests=640" in warning
    # the same inputs again: the kept result is current again
    at.number_input(key="sim.seed").set_value(0).run()
    at.number_input(key="sim.c_requests").set_value(320).run()
    assert not out_of_date(at) and "packrat: p99 latency" in h.metrics(at)
    # start-up and warm-up of the reconfiguration model are inputs too
    at.number_input(key="sim.warmup").set_value(0).run()
    assert not at.metric and "warm-up: 2 -> 0" in out_of_date(at)[0]


@pytest.mark.slow
def test_sweep_hides_the_old_grid_when_the_cores_change(open_page, h):
    at = h.small_sweep(open_page("sweep"), cores="2", workload="poisson:rate=100,duration=1s,max_batch=8",
                       policies=("fat",))
    at.number_input(key="sweep.workers").set_value(1)
    at.run()
    at.button(key="sweep.run").click().run()
    h.no_errors(at)
    assert h.frame(at, "p99_ms")["cores"].tolist() == [2]

    at.text_input(key="sweep.cores").set_value("4").run()
    assert not at.dataframe and not at.metric
    assert "cores: 2 -> 4" in out_of_date(at)[0] and "Run the sweep" in out_of_date(at)[0]
    # the worker count changes no number: it does not make the result stale
    at.text_input(key="sweep.cores").set_value("2").run()
    at.number_input(key="sweep.workers").set_value(2).run()
    assert not out_of_date(at) and h.frame(at, "p99_ms")["cores"].tolist() == [2]


def test_hardware_hides_a_run_of_other_inputs(open_page, monkeypatch):
    monkeypatch.setenv("PACKRAT_UI_JOBS", "thread")  # the fake lives in this process only
    from ui.dashboard import jobs

    def fake_steps(model, batch, cores, iterations, with_thin, current=None):
        yield 0.5, "measuring"
        row = {"label": "plan 1 x 1t x 1", "groups": [[1, 1, batch]], "predicted_ms": 2.0, "measured_ms": 2.1,
               "measured_p90_ms": 2.2, "samples_ms": [2.0, 2.1, 2.2], "cores": "[[0]]"}
        return {"rows": [row], "model": model, "batch": batch, "cores": cores, "iterations": iterations,
                "origin": "a fake", "speedup": 1.0, "outputs_match": True, "max_abs_diff": 0.0, "plan": "1 x 1t x 1"}

    monkeypatch.setattr(jobs, "hardware_steps", fake_steps)
    at = open_page("hardware")
    at.number_input(key="hw.cores").set_value(1).run()
    at.button(key="hw.btn.run").click().run()
    assert "plan 1 x 1t x 1" in [m.label for m in at.metric]
    at.number_input(key="hw.batch").set_value(16).run()
    assert "plan 1 x 1t x 1" not in [m.label for m in at.metric]
    assert "batch: 8 -> 16" in out_of_date(at)[0]
