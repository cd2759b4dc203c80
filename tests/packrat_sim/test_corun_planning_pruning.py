"""Issue 32: planning under a co-run model by branch and bound over the busy-thread count U
(``best_busy_plan``) returns exactly what one full DP per U (``plan_every_busy_count``) returns,
on random profiles and random co-run models, odd ones included (slowdowns below 1, curves that
fall as cores get busy, a curve per thread count)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import packrat_sim.interference as interference
from packrat_sim.interference import (
    best_busy_plan,
    busy_bounds,
    optimize_with_interference,
    plan_every_busy_count,
    slowdown_table,
)
from packrat_sim.optimizer import OptimizerError, OptimizerOptions, PlanTable, cell_plan, profile_items
from packrat_sim.profile import Cell, Interference, Profile, ThreadCurve, builtin_profile
from tests.interference_helpers import dense_profiles, every_plan, price, random_models


def pruned(profile, batch, cores, opts):
    """``best_busy_plan``, None where it raises (a batch the cores cannot cover: the full
    search finds no plan there either)."""
    try:
        return best_busy_plan(profile, batch, cores, opts)
    except OptimizerError:
        return None


def assert_same(found, reference):
    """The pruned search and the full one agree on the plan (instances in order), its latency
    (the same float) and its busy-thread count."""
    if reference is None:
        assert found is None
        return
    assert found is not None
    (plan, busy), (ref_plan, ref_busy) = found, reference
    assert plan.instances == ref_plan.instances
    assert plan.predicted_ms == ref_plan.predicted_ms
    assert busy == ref_busy


@st.composite
def options(draw, cores: int, batch: int):
    """Idle cores or not, and now and then a user constraint the full search also serves."""
    exact = draw(st.booleans())
    kind = draw(st.sampled_from(["plain", "plain", "plain", "homogeneous", "max_instances", "min_batch", "max_threads"]))
    if kind == "homogeneous":
        return OptimizerOptions(exact_cores=exact, homogeneous=True)
    if kind == "max_instances":
        return OptimizerOptions(exact_cores=exact, max_instances=draw(st.integers(1, 4)))
    if kind == "min_batch":
        return OptimizerOptions(exact_cores=exact, min_batch=draw(st.integers(1, max(1, batch))))
    if kind == "max_threads":
        return OptimizerOptions(exact_cores=exact, max_threads_per_instance=draw(st.integers(1, cores)))
    return OptimizerOptions(exact_cores=exact)


@settings(max_examples=300, deadline=None)
@given(dense_profiles(6, 8), st.data())
def test_the_pruned_search_returns_the_full_searchs_plan_on_random_profiles_and_models(drawn, data):
    profile, B = drawn
    profile = replace(profile, interference=data.draw(random_models(profile.max_threads)))
    cores = data.draw(st.integers(1, profile.max_threads))
    batch = data.draw(st.integers(1, B))
    opts = data.draw(options(cores, batch))
    assert_same(pruned(profile, batch, cores, opts), plan_every_busy_count(profile, batch, cores, opts))


def seeded_problem(seed: int):
    """A larger random problem than brute force can check: T in 4..16 threads, up to 9
    sub-batch sizes (powers of two or any), a smooth latency with noise or none at all, and a
    co-run model that may be steep, fall below 1, zigzag, or have a curve per thread count."""
    rng = np.random.default_rng(seed)
    T = int(rng.integers(4, 17))
    if rng.random() < 0.5:
        sizes = sorted({1 << int(i) for i in rng.integers(0, 7, size=6)})
    else:
        sizes = sorted({int(x) for x in rng.integers(1, 65, size=int(rng.integers(2, 10)))})
    smooth = rng.random() < 0.6
    cells = []
    for t in range(1, T + 1):
        for b in sizes:
            if rng.random() < 0.15:
                continue  # a missing cell
            ms = 1.0 + 5.0 * b ** 0.9 * (0.1 + 0.9 / t) if smooth else 1.0
            ms *= float(np.exp(rng.normal(0.0, 0.05 if smooth else 0.8)))
            cells.append(Cell(threads=t, batch=b, mean_ms=ms, min_ms=ms, max_ms=ms))

    def curve():
        ks = sorted({int(k) for k in rng.integers(1, T + 1, size=int(rng.integers(1, 5)))})
        kind = rng.integers(0, 3)
        if kind == 0:  # rising
            return tuple((k, 1.0 + float(s)) for k, s in zip(ks, np.sort(rng.uniform(0, 2, len(ks)))))
        if kind == 1:  # any value in 0.6..3: falling, zigzag, below 1
            return tuple((k, float(s)) for k, s in zip(ks, rng.uniform(0.6, 3.0, len(ks))))
        return tuple((k, float(s)) for k, s in zip(ks, rng.choice([1.0, 1.5, 2.0], len(ks))))

    own = sorted({int(t) for t in rng.integers(1, T + 1, size=int(rng.integers(0, T + 1)))})
    model = Interference(points=curve(), curves=tuple(ThreadCurve(t, curve()) for t in own))
    profile = Profile(model="seeded", cells=tuple(cells), interference=model)
    batch = int(rng.integers(1, 4 * max(sizes) + 1))
    return profile, batch, T


@pytest.mark.parametrize("seed", range(60))
def test_the_pruned_search_matches_the_full_search_on_seeded_larger_problems(seed):
    profile, batch, cores = seeded_problem(seed)
    for opts in (OptimizerOptions(exact_cores=False), OptimizerOptions(exact_cores=True),
                 OptimizerOptions(exact_cores=False, max_instances=3)):
        assert_same(pruned(profile, batch, cores, opts), plan_every_busy_count(profile, batch, cores, opts))


@pytest.mark.parametrize("seed", range(0, 60, 3))
def test_the_planners_answer_is_the_full_searchs_including_errors(seed):
    profile, batch, cores = seeded_problem(seed)
    opts = OptimizerOptions(exact_cores=False)
    reference = plan_every_busy_count(profile, batch, cores, opts)
    try:
        result = optimize_with_interference(profile, batch, cores, opts)
    except OptimizerError:
        assert reference is None
        return
    assert reference is not None
    assert result.plan.instances == reference[0].instances and result.busy_cores == reference[1]
    assert result.plan.predicted_ms == reference[0].predicted_ms and result.plan.cores == cores


# ------------------------------------------------------------------------- the bound


@settings(max_examples=200, deadline=None)
@given(dense_profiles(5, 6), st.data())
def test_the_density_bound_is_below_every_plan_with_that_many_busy_threads(drawn, data):
    profile, B = drawn
    profile = replace(profile, interference=data.draw(random_models(profile.max_threads)))
    cores = data.draw(st.integers(1, profile.max_threads))
    batch = data.draw(st.integers(1, B))
    items = profile_items(profile, cores, batch, OptimizerOptions())
    lb = busy_bounds(items, slowdown_table(profile.interference, {t for t, _, _ in items}, cores), batch, cores)
    best: dict[int, float] = {}
    for plan in every_plan(profile, batch, cores, exact=False):
        u = plan.threads_used
        best[u] = min(best.get(u, math.inf), price(plan, profile))
    for u in range(1, cores + 1):
        if u in best:
            assert lb[u] <= best[u]
        # some plans are made of their densest cells: then the bound is their latency, exactly
        if math.isinf(lb[u]):
            assert u not in best


@settings(max_examples=100, deadline=None)
@given(random_models(12), st.integers(1, 12))
def test_the_slowdown_table_holds_the_very_floats_of_slowdown_in_plan(model, cores):
    table = slowdown_table(model, range(1, cores + 1), cores)
    for t in range(1, cores + 1):
        assert all(math.isnan(x) for x in table[t][:t])
        assert [float(x) for x in table[t][t:]] == [model.slowdown_in_plan(t, u) for u in range(t, cores + 1)]


# ------------------------------------------------------------------- the one-cell sweep


@settings(max_examples=200, deadline=None)
@given(dense_profiles(5, 7), st.data())
def test_the_one_cell_sweep_returns_the_full_tables_plan_and_honours_its_limit(drawn, data):
    profile, B = drawn
    cores = data.draw(st.integers(1, profile.max_threads))
    batch = data.draw(st.integers(1, B))
    opts = OptimizerOptions(exact_cores=True)
    items = profile_items(profile, cores, batch, opts)
    table = PlanTable(profile, cores, batch, opts)
    found = cell_plan(items, cores, batch)
    if math.isinf(table.latency_ms(cores, batch)):
        assert found is None
        return
    expected = table.plan(cores, batch)
    assert found is not None and found.instances == expected.instances and found.predicted_ms == expected.predicted_ms
    ms = expected.predicted_ms
    assert cell_plan(items, cores, batch, ms) is not None
    assert cell_plan(items, cores, batch, ms, inclusive=False) is None
    assert cell_plan(items, cores, batch, math.nextafter(ms, 0.0)) is None


# ------------------------------------------------------------------------- how much is pruned


def test_on_the_built_in_profiles_one_busy_count_is_solved(monkeypatch):
    calls = []
    real = interference._busy_plan

    def counted(*args, **kwargs):
        calls.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(interference, "_busy_plan", counted)
    for name in ("cnn-32+interference", "transformer-32+interference"):
        calls.clear()
        profile = builtin_profile(name, max_batch=512)
        opts = OptimizerOptions(exact_cores=False)
        found = best_busy_plan(profile, 512, 32, opts)
        assert found is not None and len(calls) == 1 and calls == [found[1]]
        assert_same(found, plan_every_busy_count(profile, 512, 32, opts))


def test_an_odd_model_where_fewer_busy_threads_win_is_still_planned_exactly():
    # beside more than 2 other busy cores everything runs 5x slower: two 1-thread instances
    # (U = 2) beat four (U = 4), though four halve the sub-batches
    cells = {(1, 1): 10.0, (1, 2): 12.0, (1, 4): 30.0, (4, 4): 100.0}
    profile = Profile(model="odd", cells=tuple(Cell(t, b, v, v, v) for (t, b), v in cells.items()),
                      interference=Interference(points=((1, 1.0), (2, 5.0), (3, 5.0), (4, 0.5))))
    opts = OptimizerOptions(exact_cores=False)
    found = best_busy_plan(profile, 4, 4, opts)
    assert found is not None and found[0].describe() == "2 x 1t x 2" and found[1] == 2
    assert_same(found, plan_every_busy_count(profile, 4, 4, opts))


# ------------------------------------------------------- the calibrated table of every batch


@settings(max_examples=150, deadline=None)
@given(dense_profiles(5, 8), st.data())
def test_the_calibrated_table_holds_the_planners_plan_for_every_batch(drawn, data):
    from packrat_sim.interference import CoRunPlanTable

    profile, B = drawn
    profile = replace(profile, interference=data.draw(random_models(profile.max_threads)))
    cores = data.draw(st.integers(1, profile.max_threads))
    kind = data.draw(st.sampled_from(["plain", "min_batch", "max_threads"]))
    opts = OptimizerOptions(
        exact_cores=data.draw(st.booleans()),
        min_batch=data.draw(st.integers(1, B)) if kind == "min_batch" else 1,
        max_threads_per_instance=data.draw(st.integers(1, cores)) if kind == "max_threads" else None,
    )
    table = CoRunPlanTable(profile, cores, B, opts)
    for b in range(1, B + 1):
        try:
            expected = optimize_with_interference(profile, b, cores, opts)
        except OptimizerError:
            assert math.isinf(table.latency_ms(cores, b))
            with pytest.raises(OptimizerError, match="cannot be covered"):
                table.plan(cores, b)
            continue
        plan = table.plan(cores, b)
        assert plan.instances == expected.plan.instances and plan.cores == cores
        assert plan.predicted_ms == expected.plan.predicted_ms == table.latency_ms(cores, b)
        assert table.busy_cores(b) == expected.busy_cores


@pytest.mark.parametrize("seed", range(0, 60, 4))
def test_the_calibrated_table_matches_the_planner_on_seeded_larger_problems(seed):
    from packrat_sim.interference import CoRunPlanTable

    profile, batch, cores = seeded_problem(seed)
    opts = OptimizerOptions(exact_cores=False)
    table = CoRunPlanTable(profile, cores, batch, opts)
    for b in range(1, batch + 1):
        found = pruned(profile, b, cores, opts)
        if found is None:
            assert math.isinf(table.latency_ms(cores, b))
        else:
            assert table.plan(cores, b).instances == found[0].instances
            assert table.latency_ms(cores, b) == found[0].predicted_ms and table.busy_cores(b) == found[1]


def test_the_calibrated_table_answers_only_its_own_cores():
    from packrat_sim.interference import CoRunPlanTable

    profile = builtin_profile("cnn-8+interference", max_batch=16)
    table = CoRunPlanTable(profile, 8, 16, OptimizerOptions(exact_cores=False))
    with pytest.raises(OptimizerError, match="outside this calibrated table"):
        table.latency_ms(4, 16)
    with pytest.raises(OptimizerError, match="outside this calibrated table"):
        table.plan(8, 17)
    with pytest.raises(OptimizerError, match="use optimize_with_interference"):
        CoRunPlanTable(profile, 8, 16, OptimizerOptions(homogeneous=True))
