"""The hardware benchmark: the exhaustive oracle's plans and one real interleaved run."""

from __future__ import annotations

import pytest

from packrat_sim.plan import fat, thin
from packrat_sim.profile import builtin_profile
from real_runner.bench import BenchError, feasible_plans, run_bench
from tests.real_runner.rr_helpers import needs_two_cpus


def test_the_oracle_on_two_cores_holds_every_split_of_the_batch():
    plans, complete = feasible_plans(8, 2)
    assert complete
    assert sorted(p.describe() for p in plans) == sorted([
        "1 x 1t x 8", "1 x 2t x 8", "2 x 1t x 4",
        "1 x 1t x 7 + 1 x 1t x 1", "1 x 1t x 6 + 1 x 1t x 2", "1 x 1t x 5 + 1 x 1t x 3",
    ])
    assert fat(8, 2) in plans and thin(8, 2) in plans


def test_the_oracle_includes_heterogeneous_plans_and_never_repeats_one():
    plans, complete = feasible_plans(4, 3)
    assert complete and len(plans) == len(set(plans))
    assert any(len({(i.threads, i.batch) for i in p.instances}) > 1 for p in plans)
    assert all(p.batch == 4 and p.threads_used <= 3 for p in plans)


def test_the_oracle_says_when_its_cap_cut_it():
    plans, complete = feasible_plans(64, 8, max_plans=10)
    assert len(plans) == 10 and not complete


def test_a_batch_of_one_has_no_split():
    plans, _ = feasible_plans(1, 2)
    assert sorted(p.describe() for p in plans) == ["1 x 1t x 1", "1 x 2t x 1"]


@pytest.mark.parametrize("kwargs", [{"batches": []}, {"batches": [0]}, {"batches": [2], "iterations": 0},
                                    {"batches": [2], "cores": 999}])
def test_bad_bench_input_is_rejected(kwargs):
    with pytest.raises(BenchError):
        run_bench("tiny-mlp", profile=builtin_profile("cnn-2"), **kwargs)


@pytest.mark.slow
@needs_two_cpus
def test_a_real_bench_measures_fat_thin_optimizer_and_the_oracle_interleaved():
    rep = run_bench("tiny-mlp", [2], cores=2, iterations=2, profile=builtin_profile("cnn-2"), warmup=1)
    (row,) = rep["batches"]
    assert {p["describe"] for p in row["plans"]} == {"1 x 1t x 2", "1 x 2t x 2", "2 x 1t x 1"}
    assert all(len(p["samples_ms"]) == 2 and p["median_ms"] > 0 for p in row["plans"])
    assert row["oracle_ms"] == min(p["median_ms"] for p in row["plans"])
    assert row["regret_pct"] >= 0
    assert row["speedup_optimizer_vs_fat"] == pytest.approx(row["fat_ms"] / row["optimizer_ms"])
    roles = {r for p in row["plans"] for r in p["roles"]}
    assert {"fat", "thin", "optimizer"} <= roles
    assert all(p["predicted_ms"] is not None for p in row["plans"])


@pytest.mark.slow
@needs_two_cpus
def test_with_an_interference_model_the_bench_reports_the_aware_plan_beside_the_isolated_one():
    from ui.reports.bench import to_markdown

    rep = run_bench("tiny-mlp", [2], cores=2, iterations=2, profile=builtin_profile("cnn-2+interference"), warmup=1)
    (row,) = rep["batches"]
    roles = {r for p in row["plans"] for r in p["roles"]}
    assert "interference-aware" in roles
    assert row["interference_aware_regret_pct"] >= 0 and row["interference_aware_ms"] > 0
    (aware,) = [p for p in row["plans"] if "interference-aware" in p["roles"]]
    assert row["interference_aware_predicted_ms"] == aware["predicted_ms"] and rep["prediction"] == "calibrated"
    assert "interference-aware plan" in to_markdown(rep)
