"""One predictor, one candidate set: plans and baselines priced alike (issue 14, issue 19 defect 1)."""

from __future__ import annotations

import json

import pytest

from checker.allocation import Result, certify
from packrat_sim import plan as plans
from packrat_sim.optimizer import OptimizerOptions
from packrat_sim.plan import Instance, Plan
from packrat_sim.predictor import (
    Predictor,
    PredictorError,
    baselines,
    best_plan,
    candidate_profile,
    price_baselines,
)
from packrat_sim.profile import Cell, Profile, builtin_profile, loads_profile

IDLE = OptimizerOptions(exact_cores=False)


def test_the_old_pricing_let_thin_beat_the_optimum_on_interpolated_cells():
    # the defect this module fixes: thin priced on cells the optimizer never considers
    p = builtin_profile("cnn-16", max_batch=64)
    best, _ = price_baselines(p, 7, 3, IDLE)
    assert plans.plan_latency(plans.thin(7, 3), p.predict) < best.predicted_ms


@pytest.mark.parametrize("candidates", ["profiled", "interpolated"])
@pytest.mark.parametrize("batch, cores", [(7, 3), (21, 8), (43, 16), (64, 16)])
def test_no_baseline_beats_the_best_plan_on_either_candidate_set(candidates, batch, cores):
    p = builtin_profile("cnn-16", max_batch=64)
    best, base = price_baselines(p, batch, cores, IDLE, candidates=candidates)
    for b in base.values():
        assert b.ms is None or b.ms >= best.predicted_ms, (b.name, b.ms, best.predicted_ms)


def test_cnn64_batch_1024_on_48_cores_with_sockets_of_32_no_baseline_beats_the_certified_optimum():
    # issue 19 defect 1: thin 397.72 ms beat the Z3-certified 500.56 ms plan
    p = builtin_profile("cnn-64")
    options = OptimizerOptions(exact_cores=False, cores_per_socket=32)
    best, base = price_baselines(p, 1024, 48, options)
    assert certify(p, 1024, 48, best, options, timeout_s=60).result is Result.OPTIMAL
    for b in base.values():
        assert b.ms is None or b.ms >= best.predicted_ms
    assert base["thin"].ms is not None and "1-thread plan" in base["thin"].note


@pytest.mark.slow
def test_cnn64_with_interpolated_candidates_prices_textbook_thin_and_still_never_beats_the_optimum():
    p = builtin_profile("cnn-64")
    best, base = price_baselines(p, 1024, 48, IDLE, candidates="interpolated")
    assert base["thin"].note == "" and base["thin"].plan == plans.thin(1024, 48)
    assert base["thin"].ms >= best.predicted_ms
    dense = candidate_profile(p, 48, 1024, "interpolated")
    assert certify(dense, 1024, 48, best, IDLE, timeout_s=60).result is Result.OPTIMAL


def test_fat_is_unavailable_when_its_cell_is_not_a_candidate():
    p = builtin_profile("cnn-4", max_batch=8)
    base = baselines(Predictor(p), 6, 4, IDLE)
    assert base["fat"].ms is None and "4t x 6" in base["fat"].note


def test_exact_cores_never_prices_a_thin_plan_that_leaves_cores_idle():
    p = builtin_profile("cnn-16", max_batch=64)
    base = baselines(Predictor(p), 8, 16, OptimizerOptions(exact_cores=True))
    assert base["thin"].plan is None or base["thin"].plan.threads_used == 16


def test_interpolated_candidates_hold_every_threads_by_batch_cell_up_to_the_problem():
    p = builtin_profile("cnn-4", max_batch=8)
    dense = candidate_profile(p, 3, 10, "interpolated")
    assert {(c.threads, c.batch) for c in dense.cells} >= {(t, b) for t in range(1, 4) for b in range(1, 11)}
    assert dense.latency(2, 5) == pytest.approx(p.predict(2, 5))
    assert dense.latency(2, 4) == p.latency(2, 4)


def test_a_candidate_set_that_is_too_large_or_unknown_is_refused_naming_it():
    p = builtin_profile("cnn-4", max_batch=8)
    with pytest.raises(PredictorError, match="limit"):
        candidate_profile(p, 4, 10**7, "interpolated")
    with pytest.raises(PredictorError, match="'dense'"):
        candidate_profile(p, 4, 8, "dense")


def _two_cell_profile(dispatch=()) -> Profile:
    cells = (Cell(1, 1, 10.0, 10.0, 10.0), Cell(1, 2, 12.0, 12.0, 12.0), Cell(2, 2, 11.0, 11.0, 11.0))
    return Profile(model="m", cells=cells, dispatch=dispatch)


def test_prediction_is_dispatch_plus_the_slowest_instance():
    p = _two_cell_profile(dispatch=((1, 2, 0.5), (2, 2, 3.0)))
    pred = Predictor(p)
    two = Plan((Instance(1, 1), Instance(1, 1)), 2, 2)
    assert pred.plan_ms(two) == pytest.approx(3.0 + 10.0)
    assert pred.plan_ms(Plan((Instance(2, 2),), 2, 2)) == pytest.approx(0.5 + 11.0)


def test_the_planner_trades_fewer_instances_for_less_dispatch_cost():
    # compute alone prefers 2 x 1t x 1 (10 ms); with 3 ms dispatch for two instances the
    # single 2-thread instance (11 + 0.5 ms) is faster
    assert best_plan(Predictor(_two_cell_profile()), 2, 2, IDLE).describe() == "2 x 1t x 1"
    p = _two_cell_profile(dispatch=((1, 2, 0.5), (2, 2, 3.0)))
    best = best_plan(Predictor(p), 2, 2, IDLE)
    assert best.describe() == "1 x 2t x 2" and best.predicted_ms == pytest.approx(11.5)


def test_dispatch_cost_interpolates_between_points_and_holds_beyond_them():
    p = _two_cell_profile(dispatch=((1, 1, 0.1), (1, 9, 0.9), (3, 1, 0.3), (3, 9, 2.1)))
    assert p.dispatch_ms(1, 5) == pytest.approx(0.5)
    assert p.dispatch_ms(2, 1) == pytest.approx(0.2)
    assert p.dispatch_ms(8, 100) == pytest.approx(2.1)
    assert _two_cell_profile().dispatch_ms(4, 4) == 0.0


def test_dispatch_and_cell_context_round_trip_and_old_schema_files_still_load():
    p = _two_cell_profile(dispatch=((2, 2, 0.25),))
    again = loads_profile(json.dumps(p.to_json()))
    assert again.dispatch == ((2, 2, 0.25),) and again.to_json()["schema"] == "packrat.profile/2"
    old = p.to_json()
    old["schema"] = "packrat.profile/1"
    del old["dispatch"]
    assert loads_profile(json.dumps(old)).dispatch == ()
    with_ctx = Cell.from_samples(1, 1, [1.0, 2.0], context=(("loadavg_1m", 1.5),))
    q = Profile(model="m", cells=(with_ctx,))
    assert loads_profile(json.dumps(q.to_json())).cells[0].context == (("loadavg_1m", 1.5),)


# ---- issue 27: one definition of "calibrated", the no-co-run line, pricing a written plan


def _with_model(name: str = "cnn-4", **meta):
    from dataclasses import replace

    from packrat_sim.profile import Interference

    prof = builtin_profile(name, max_batch=8)
    return replace(prof, synthetic=False, interference=Interference(points=((1, 1.1), (3, 1.3)), fit_error=0.02),
                   meta=tuple(sorted(meta.items())))


def test_a_profile_with_a_corun_model_is_calibrated_unless_asked_to_be_isolated():
    from packrat_sim.predictor import corun

    prof = _with_model(**{"interference.source": "r_corun.csv"})
    assert corun(prof).mode == "calibrated" and corun(prof).calibrated
    assert corun(prof, isolated=True).mode == "isolated"
    assert corun(builtin_profile("cnn-4")).mode == "none"
    assert corun(builtin_profile("cnn-4"), isolated=True).mode == "none"
    assert corun(prof).describe() == ("calibrated: latencies include the profile's co-run model "
                                      "(imported from r_corun.csv), fit error 2.0%")


def test_the_corun_source_says_where_the_model_came_from():
    from packrat_sim.predictor import corun_source

    assert corun_source(builtin_profile("cnn-4")) == ""
    assert corun_source(builtin_profile("cnn-4+interference")) == "synthetic"
    assert corun_source(_with_model(**{"interference.probe": "x"})) == "measured by the profiler's co-run sweep"


def test_the_no_corun_line_comes_only_with_a_multi_instance_plan_and_no_model():
    from packrat_sim.predictor import ISOLATED_NOTE, NO_CORUN_NOTE, corun

    fat, thin = plans.fat(8, 4), plans.thin(8, 4)
    none, iso, cal = corun(builtin_profile("cnn-4")), corun(_with_model(), True), corun(_with_model())
    assert none.notes([fat, None]) == [] and none.notes([fat, thin]) == [NO_CORUN_NOTE]
    assert iso.notes([thin]) == [ISOLATED_NOTE] and cal.notes([thin]) == []
    assert "20-40% optimistic" in NO_CORUN_NOTE and "no co-run data" in NO_CORUN_NOTE


def test_priced_profile_drops_the_model_unless_calibrated():
    from packrat_sim.predictor import corun, priced_profile

    prof = _with_model()
    assert priced_profile(prof, corun(prof)) is prof
    assert priced_profile(prof, corun(prof, isolated=True)).interference is None


def test_corun_json_round_trips_and_unknown_modes_are_refused():
    from packrat_sim.predictor import CoRun, corun

    co = corun(_with_model(**{"interference.source": "a.csv"}))
    assert CoRun.from_json(co.to_json()) == co
    with pytest.raises(PredictorError, match="'sometimes'"):
        CoRun("sometimes")


def test_price_plan_gives_isolated_and_calibrated_latency_per_group_and_for_the_batch():
    from packrat_sim.predictor import price_plan

    prof = _with_model()
    plan = Plan((Instance(2, 4), Instance(1, 2), Instance(1, 2)), 8, 4)
    price = price_plan(prof, plan)
    by_threads = {g.threads: g for g in price.groups}
    assert by_threads[2].isolated_ms == prof.latency(2, 4)
    assert by_threads[2].calibrated_ms == pytest.approx(prof.latency(2, 4) * prof.interference.slowdown(2))
    assert by_threads[1].count == 2 and by_threads[1].slowdown == pytest.approx(prof.interference.slowdown(3))
    assert price.calibrated_ms == pytest.approx(Predictor(prof).plan_ms(plan))
    assert price.isolated_ms == pytest.approx(Predictor(prof, interference=False).plan_ms(plan))
    assert price.predicted_ms == price.calibrated_ms and price.notes() == []


def test_price_plan_without_a_model_is_isolated_only_and_carries_the_no_corun_line():
    from packrat_sim.predictor import NO_CORUN_NOTE, price_plan

    price = price_plan(builtin_profile("cnn-4", max_batch=8), plans.thin(8, 4))
    assert price.calibrated_ms is None and price.predicted_ms == price.isolated_ms
    assert price.to_json()["notes"] == [NO_CORUN_NOTE] and price.to_json()["corun"] == "none"


def test_price_plan_names_every_cell_the_profile_lacks():
    from packrat_sim.predictor import price_plan

    plan = Plan((Instance(2, 3), Instance(1, 5)), 8, 4)
    with pytest.raises(PredictorError, match=r"no cell 1 x 5, 2 x 3 \(threads x sub-batch\)"):
        price_plan(builtin_profile("cnn-4", max_batch=8), plan)


def test_estimate_ms_interpolates_the_cells_the_profile_lacks():
    prof = builtin_profile("cnn-4", max_batch=8)
    plan = Plan((Instance(2, 3), Instance(1, 5)), 8, 4)
    assert Predictor(prof).plan_ms(plan) is None
    assert Predictor(prof).estimate_ms(plan) == pytest.approx(max(prof.predict(2, 3), prof.predict(1, 5)))
