"""Fidelity: measured runs priced isolated and calibrated, with errors computed by hand."""

from __future__ import annotations

import json

import pytest

from packrat_sim.fidelity import FidelityError, compare, read_measured, runs_from_bench_report
from packrat_sim.profile import Cell, Interference, Profile

# s(1) = 1.1 (interpolated from s(0) = 1), s(2) = 1.2, held beyond
MODEL = Interference(points=((2, 1.2),))
HEADER = "benchmark,topology,instance_id,intraop_threads,batch_size,latency(min),latency(avg),latency(max)"
MEASURED_CSV = "\n".join([
    HEADER,
    "m,sequential,1,1,10,100,104,108",  # run A: 2 x 1t x 10, slowest 110
    "m,sequential,2,1,10,105,110,115",
    "m,sequential,1,2,10,70,80,90",  # run B: 2 x 2t x 10, slowest 80
    "m,sequential,2,2,10,70,75,80",
    "m,sequential,1,2,20,120,125,130",  # run C: fat 1 x 2t x 20, 125
    "m,sequential,1,4,40,50,50,50",  # run D: fat 1 x 4t x 40, the profile lacks the cell
]) + "\n"


def cell(t, b, ms):
    return Cell(threads=t, batch=b, mean_ms=ms, min_ms=ms, max_ms=ms)


def hand_profile(model=MODEL):
    return Profile(model="m", cells=(cell(1, 10, 100.0), cell(2, 10, 60.0), cell(2, 20, 100.0)), interference=model)


def test_measured_runs_are_priced_isolated_and_calibrated_with_hand_computed_errors():
    profile = hand_profile()
    runs, corun = read_measured(MEASURED_CSV, source="m.csv", profile=profile)
    report = compare(profile, runs)
    assert [r.run.plan.describe() for r in report.rows] == ["2 x 1t x 10", "2 x 2t x 10", "1 x 2t x 20"]
    got = [(r.run.measured_ms, r.isolated_ms, r.isolated_error_pct, r.calibrated_ms, r.calibrated_error_pct)
           for r in report.rows]
    assert got[0] == pytest.approx((110.0, 100.0, -100 / 11, 110.0, 0.0))  # (100 - 110) / 110; 100 x s(1)
    assert got[1] == pytest.approx((80.0, 60.0, -25.0, 72.0, -10.0))  # 60 x s(2) = 72
    assert got[2] == pytest.approx((125.0, 100.0, -20.0, 100.0, -20.0))  # alone: no other busy core
    assert report.isolated.median_abs_pct == pytest.approx(20.0) and report.isolated.max_abs_pct == pytest.approx(25.0)
    assert report.isolated.optimistic == 3
    assert report.calibrated.median_abs_pct == pytest.approx(10.0) and report.calibrated.max_abs_pct == pytest.approx(20.0)
    assert report.calibrated.optimistic == 2


def test_runs_whose_cells_the_profile_lacks_are_listed_as_unpriced_not_dropped():
    profile = hand_profile()
    report = compare(profile, read_measured(MEASURED_CSV, source="m.csv", profile=profile)[0])
    (u,) = report.unpriced
    assert u.run.plan.describe() == "1 x 4t x 40" and u.reason == "the profile lacks cell(s) 4t x 40"
    assert u.run.where == "m.csv line 7"
    assert report.to_json()["unpriced"][0]["reason"] == u.reason


def test_without_a_co_run_model_there_is_no_calibrated_prediction():
    profile = hand_profile(model=None)
    report = compare(profile, read_measured(MEASURED_CSV, source="m.csv", profile=profile)[0])
    assert report.calibrated is None and not report.has_model
    assert all(r.calibrated_ms is None and r.calibrated_error_pct is None for r in report.rows)
    assert report.to_json()["calibrated"] is None


def test_a_partial_run_is_measured_by_its_slowest_present_instance_and_says_so():
    text = "instances,instance_id,intraop_threads,batch_size,latency(avg)\n4,1,1,10,120\n4,4,1,10,130\n"
    runs, _ = read_measured(text, source="p.csv", profile=hand_profile())
    (run,) = runs
    assert run.plan.describe() == "4 x 1t x 10" and run.measured_ms == 130.0
    assert "2 of 4 rows present" in run.note and "lower bound" in run.note


def bench_report():
    return {"schema": "packrat.bench/1", "model": "m", "cores": 4, "batches": [
        {"batch": 20, "plans": [{"describe": "2 x 1t x 10", "groups": [[2, 1, 10]], "median_ms": 110.0},
                                {"describe": "1 x 2t x 20", "groups": [[1, 2, 20]], "median_ms": 125.0}]},
    ]}


def test_a_bench_report_is_re_priced_with_the_given_profile():
    runs, corun = read_measured(json.dumps(bench_report()), source="report.json", profile=hand_profile())
    report = compare(hand_profile(), runs)
    assert corun is None and [r.run.plan.cores for r in report.rows] == [4, 4]
    errors = [e for r in report.rows for e in (r.isolated_error_pct, r.calibrated_error_pct)]
    assert errors == pytest.approx([-100 / 11, 0.0, -20.0, -20.0])
    assert report.rows[0].run.where == "report.json batches[0].plans[0]"


@pytest.mark.parametrize("mutate, fragment", [
    (lambda r: r.update(schema="packrat.fidelity/1"), "not a bench report (schema 'packrat.fidelity/1'"),
    (lambda r: r["batches"][0]["plans"][0].update(median_ms=-1), "batches[0].plans[0].median_ms"),
    (lambda r: r["batches"][0]["plans"][0].update(groups=[[2, 1]]), "batches[0].plans[0].groups"),
    (lambda r: r["batches"][0]["plans"][0].update(groups=[[3, 1, 10]]), "batches[0].plans[0]: sub-batches sum to 30"),
])
def test_a_malformed_bench_report_is_refused_naming_the_field(mutate, fragment):
    report = bench_report()
    mutate(report)
    with pytest.raises(FidelityError) as err:
        runs_from_bench_report(report, "report.json")
    assert fragment in str(err.value)


def test_a_measured_csv_of_another_series_than_the_profile_s_is_refused_naming_both():
    profile = Profile(model="m", cells=(cell(1, 10, 100.0),), meta=(("series.topology", "interleave"),))
    with pytest.raises(FidelityError, match=r"m.csv: .*topology=sequential does not match the profile's series topology=interleave"):
        read_measured(MEASURED_CSV, source="m.csv", profile=profile)
