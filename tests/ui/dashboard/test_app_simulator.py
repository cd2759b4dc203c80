"""Simulator page (AppTest): workload editor, results against the simulator itself, charts."""

from __future__ import annotations

import pytest

from packrat_sim.profile import builtin_profile

DEFAULT_SPEC = "steps:100/s@10s,600/s@10s,100/s@10s,max_batch=64,max_delay=10ms"


@pytest.fixture
def sim_page(open_page):
    return open_page("simulator")


def expected(spec: str, cores: int = 16, seed: int = 0, **config):
    from packrat_sim.simulator import SimConfig, compare_plans

    return compare_plans(builtin_profile("transformer-16"), cores, spec, seed=seed, config=SimConfig(**config))


def test_editor_builds_the_spec_and_describes_it(sim_page, h):
    at = sim_page
    h.no_errors(at)
    assert f"`{DEFAULT_SPEC}`" in h.texts(at)
    at.radio(key="sim.kind").set_value("poisson").run()
    at.number_input(key="sim.rate").set_value(250.0).run()
    h.no_errors(at)
    assert "Poisson 250 req/s for 20 s" in h.texts(at)


def test_simulate_matches_the_simulator_and_draws_cdf_and_timeline(sim_page, h):
    at = sim_page
    at.number_input(key="sim.start_ms").set_value(500.0)  # fast start-up: this load reconfigures
    at.button(key="sim.btn.run").click().run()
    h.no_errors(at)
    comp = expected(DEFAULT_SPEC, start_ms=500.0)
    assert comp.results[0].reconfigurations
    m = h.metrics(at)
    for r in comp.results:
        assert m[f"{r.name}: p99 latency"] == f"{r.stats.request_latency.p99_ms:.2f} ms"
    table = h.frame(at, "policy")
    assert list(table["policy"]) == ["packrat", "fat", "thin"]
    assert list(table["requests"]) == [r.stats.requests for r in comp.results]
    assert list(table["reconfigurations"]) == [len(r.reconfigurations) for r in comp.results]
    assert table["throughput req/s"][0] == pytest.approx(comp.results[0].stats.throughput_per_s)

    cdf = h.chart(at, "sim.cdf")["data"]
    assert [d["name"] for d in cdf] == ["packrat", "fat", "thin"]
    rec = comp.results[1].records
    lat = sorted((rec.completion_ms - rec.arrival_ms).tolist())
    assert cdf[1]["x"][0] == pytest.approx(lat[0]) and cdf[1]["x"][-1] == pytest.approx(lat[-1])
    assert cdf[1]["y"][-1] == pytest.approx(1.0)

    gantt = h.chart(at, "sim.gantt")
    assert gantt["data"], "the timeline draws bars"
    first = comp.results[0].reconfigurations[0]
    lines = [s for s in gantt["layout"].get("shapes", []) if s.get("type") == "line"]
    assert any(s["x0"] == pytest.approx(first.call_ms) for s in lines)
    assert any(s["x0"] == pytest.approx(first.switch_ms) for s in lines)
    assert all(d["orientation"] == "h" for d in gantt["data"])

    # results persist across page switches
    h.goto(at, "planner")
    h.goto(at, "simulator")
    assert h.metrics(at)["fat: p99 latency"] == f"{comp.results[1].stats.request_latency.p99_ms:.2f} ms"


def test_closed_loop_and_a_subset_of_policies(sim_page, h):
    at = sim_page
    at.radio(key="sim.kind").set_value("closed").run()
    at.number_input(key="sim.c_requests").set_value(640).run()
    at.multiselect(key="sim.policies").set_value(["packrat", "fat"]).run()
    at.button(key="sim.btn.run").click().run()
    h.no_errors(at)
    comp = expected("closed:batch=64,requests=640,clients=1")
    table = h.frame(at, "policy")
    assert list(table["policy"]) == ["packrat", "fat"]
    assert list(table["initial plan"]) == [comp.results[0].plan.describe(), comp.results[1].plan.describe()]
    assert table["p50 ms"][0] == pytest.approx(comp.results[0].stats.request_latency.p50_ms)


def test_a_bad_workload_shows_an_error_and_disables_simulate(sim_page, h):
    at = sim_page
    at.radio(key="sim.kind").set_value("spec").run()
    at.text_input(key="sim.spec").set_value("poisson:rate=abc").run()
    assert not at.exception
    assert any(e.value.startswith("Bad workload") for e in at.error)
    assert at.button(key="sim.btn.run").disabled
    at.text_input(key="sim.spec").set_value("poisson:rate=200/s,duration=5s").run()
    h.no_errors(at)
    assert not at.button(key="sim.btn.run").disabled


def test_hand_the_simulated_history_to_the_checker(sim_page, h):
    at = sim_page
    at.radio(key="sim.kind").set_value("poisson").run()
    at.number_input(key="sim.duration").set_value(4.0).run()
    at.button(key="sim.btn.run").click().run()
    at.button(key="sim.btn.tocheck").click().run()
    h.no_errors(at)
    assert at.title[0].value == "Verification"
    h.goto(at, "verification")  # AppTest keeps its own page: follow the switch
    assert any("simulated packrat run" in i.value for i in at.info)
    at.button(key="verify.btn.check").click().run()
    h.no_errors(at)
    assert any(s.value.startswith("LINEARIZABLE") and "model serving" in s.value for s in at.success)
