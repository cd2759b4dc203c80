"""Z3 certificates: the checker proves DP plans optimal, refutes worse ones, and finds the
optimum on its own, in agreement with the DP and the brute force."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from checker import allocation
from checker.allocation import (
    Certificate,
    CertifyError,
    Optimum,
    Result,
    certify,
    optimum,
    pack_into_sockets,
    sockets_of,
    thread_runs,
)
from packrat_sim.optimizer import (
    OptimizerError,
    OptimizerOptions,
    brute_force,
    optimize,
    socket_capacities,
)
from packrat_sim.plan import Instance, Plan, fat
from packrat_sim.profile import Interference, Profile, builtin_profile
from tests.optimizer_helpers import profile_of, random_profiles


@st.composite
def problems(draw, constrained: bool = False):
    """A random small profile with missing cells and tied latencies, a problem on it, and
    options (the user constraints too when ``constrained``)."""
    profile, B = draw(random_profiles(7, 9))
    cores = draw(st.integers(1, profile.max_threads))
    batch = draw(st.integers(1, B))
    options = OptimizerOptions(exact_cores=draw(st.booleans()))
    if constrained:
        options = OptimizerOptions(
            exact_cores=options.exact_cores,
            homogeneous=draw(st.sampled_from([False, False, False, True])),
            min_batch=draw(st.sampled_from([1, 1, 2])),
            max_instances=draw(st.none() | st.integers(1, 5)),
            cores_per_socket=draw(st.none() | st.integers(1, 5)),
            max_threads_per_instance=draw(st.sampled_from([None, None, 3])),
        )
    return profile, batch, cores, options


def dp_latency(profile, batch, cores, options) -> float:
    try:
        return optimize(profile, batch, cores, options).predicted_ms
    except OptimizerError:
        return math.inf


def assert_valid(plan: Plan, profile: Profile, batch: int, cores: int, options: OptimizerOptions) -> None:
    """A plan satisfies every rule of the problem (checked without the checker's helpers)."""
    assert plan.batch == batch and plan.cores == cores
    assert sum(i.batch for i in plan.instances) == batch
    used = sum(i.threads for i in plan.instances)
    assert used == cores if options.exact_cores else used <= cores
    assert all(profile.cell(i.threads, i.batch) is not None for i in plan.instances)
    assert all(i.batch >= options.min_batch for i in plan.instances)
    if options.max_instances is not None:
        assert len(plan.instances) <= options.max_instances
    if options.homogeneous:
        assert len(set((i.threads, i.batch) for i in plan.instances)) == 1
    caps = socket_capacities(cores, options.cores_per_socket)
    assert pack_into_sockets([i.threads for i in plan.instances], caps) is not None
    assert plan.predicted_ms == max(profile.latency(i.threads, i.batch) for i in plan.instances)


# ------------------------------------------------------------ agreement with the DP


@settings(max_examples=300, deadline=None)
@given(problems())
def test_z3_alone_finds_the_same_optimal_latency_as_the_dp_and_certifies_the_dp_plan(problem):
    profile, batch, cores, options = problem
    expected = dp_latency(profile, batch, cores, options)
    found = optimum(profile, batch, cores, options)
    if math.isinf(expected):
        assert found.result is Result.INFEASIBLE and found.plan is None
    else:
        assert found.result is Result.OPTIMAL
        assert found.latency_ms == expected == found.lower_bound_ms
        assert_valid(found.plan, profile, batch, cores, options)
        assert_certified(profile, batch, cores, options)


def assert_certified(profile, batch, cores, options) -> None:
    plan = optimize(profile, batch, cores, options)
    cert = certify(profile, batch, cores, plan, options)
    assert cert.result is Result.OPTIMAL and cert.optimal and cert.witness is None
    assert cert.bound_ms == cert.latency_ms == plan.predicted_ms


@settings(max_examples=300, deadline=None)
@given(problems(constrained=True))
def test_z3_and_the_dp_agree_under_sockets_instance_caps_and_minimum_sub_batches(problem):
    profile, batch, cores, options = problem
    expected = dp_latency(profile, batch, cores, options)
    assert expected == brute_force(profile, batch, cores, options)[0]
    found = optimum(profile, batch, cores, options)
    if math.isinf(expected):
        assert found.result is Result.INFEASIBLE
    else:
        assert found.result is Result.OPTIMAL and found.latency_ms == expected
        assert_valid(found.plan, profile, batch, cores, options)
        assert_certified(profile, batch, cores, options)


@settings(max_examples=150, deadline=None)
@given(problems())
def test_a_plan_optimal_only_among_identical_instances_is_refuted_exactly_when_a_mixed_plan_beats_it(problem):
    profile, batch, cores, options = problem
    try:
        identical = optimize(profile, batch, cores, OptimizerOptions(exact_cores=options.exact_cores, homogeneous=True))
    except OptimizerError:
        assume(False)
    best = dp_latency(profile, batch, cores, options)
    cert = certify(profile, batch, cores, identical, options)
    if best < identical.predicted_ms:
        assert cert.result is Result.NOT_OPTIMAL
        assert cert.witness.predicted_ms < cert.bound_ms == identical.predicted_ms
        assert_valid(cert.witness, profile, batch, cores, options)
    else:
        assert cert.result is Result.OPTIMAL and cert.witness is None


# --------------------------------------------------------------- worse plans, ties


def test_the_fat_plan_is_refuted_with_a_valid_and_strictly_faster_witness():
    profile = builtin_profile("cnn-16", max_batch=256)
    plan = fat(256, 16)
    cert = certify(profile, 256, 16, plan)
    assert isinstance(cert, Certificate)
    assert cert.result is Result.NOT_OPTIMAL and not cert.optimal
    assert cert.bound_ms == profile.latency(16, 256)
    assert cert.witness.predicted_ms < cert.bound_ms
    assert_valid(cert.witness, profile, 256, 16, OptimizerOptions())
    assert certify(profile, 256, 16, cert.witness).result in (Result.OPTIMAL, Result.NOT_OPTIMAL)


def test_a_dp_plan_made_worse_by_moving_one_input_is_refuted():
    profile = profile_of({(1, 1): 1.0, (1, 2): 2.0, (1, 3): 3.0})
    balanced = Plan((Instance(1, 2), Instance(1, 2)), batch=4, cores=2)
    skewed = Plan((Instance(1, 3), Instance(1, 1)), batch=4, cores=2)
    assert certify(profile, 4, 2, balanced).result is Result.OPTIMAL
    cert = certify(profile, 4, 2, skewed)
    assert cert.result is Result.NOT_OPTIMAL
    assert cert.witness == balanced and cert.witness.predicted_ms == 2.0 < cert.bound_ms == 3.0


def test_a_plan_that_ties_the_optimum_with_other_instances_is_still_optimal():
    profile = profile_of({(1, 2): 5.0, (2, 4): 5.0, (2, 2): 4.0, (1, 4): 9.0})
    dp = optimize(profile, 4, 2)
    tie = Plan((Instance(2, 4),), batch=4, cores=2)
    assert dp.predicted_ms == 5.0 and dp != tie
    assert certify(profile, 4, 2, tie).result is Result.OPTIMAL
    assert certify(profile, 4, 2, dp).result is Result.OPTIMAL


def test_missing_cells_are_never_used_by_the_witness():
    # (2, 4) is not profiled: the only faster allocation is two 1-thread instances
    profile = profile_of({(1, 2): 3.0, (2, 2): 1.0, (1, 4): 9.0})
    cert = certify(profile, 4, 2, Plan((Instance(1, 2), Instance(1, 2)), 4, 2))
    assert cert.result is Result.OPTIMAL
    idle = OptimizerOptions(exact_cores=False)
    cert = certify(profile, 4, 2, Plan((Instance(1, 4),), 4, 2), idle)
    assert cert.result is Result.NOT_OPTIMAL and cert.witness.groups() == [(2, 1, 2)]


# ----------------------------------------------------------------------- UNKNOWN


def test_a_time_limit_that_runs_out_gives_unknown_never_optimal():
    profile = builtin_profile("cnn-16", max_batch=256)
    plan = optimize(profile, 256, 16)
    cert = certify(profile, 256, 16, plan, timeout_s=1e-9)
    assert cert.result is Result.UNKNOWN and not cert.optimal
    assert cert.reason == "timeout" and cert.witness is None
    found = optimum(profile, 256, 16, timeout_s=1e-9)
    assert found.result is Result.UNKNOWN and found.plan is None


@pytest.fixture
def exhausted_solver(monkeypatch):
    """Every Z3 solver the checker makes gives up at once (resource limit 1): unknown."""
    make = allocation._new_solver

    def limited(timeout_ms):
        solver = make(timeout_ms)
        solver.set("rlimit", 1)
        return solver

    monkeypatch.setattr(allocation, "_new_solver", limited)


def test_a_solver_that_answers_unknown_makes_the_certificate_unknown(exhausted_solver):
    profile = builtin_profile("transformer-16", max_batch=256)
    plan = optimize(profile, 256, 16)
    cert = certify(profile, 256, 16, plan)
    assert cert.result is Result.UNKNOWN and cert.reason and cert.witness is None
    assert cert.to_json()["result"] == "unknown"


def test_a_solver_that_answers_unknown_makes_the_optimum_search_unknown(exhausted_solver):
    found = optimum(builtin_profile("transformer-16", max_batch=256), 256, 16)
    assert isinstance(found, Optimum)
    assert found.result is Result.UNKNOWN and found.plan is None and found.latency_ms is None


def test_an_optimum_search_cut_short_keeps_the_best_plan_found_and_a_true_lower_bound(monkeypatch):
    profile = builtin_profile("cnn-16", max_batch=256)
    make, calls = allocation._new_solver, []

    def second_call_gives_up(timeout_ms):
        solver = make(timeout_ms)
        calls.append(1)
        if len(calls) >= 2:
            solver.set("rlimit", 1)
        return solver

    monkeypatch.setattr(allocation, "_new_solver", second_call_gives_up)
    found = optimum(profile, 256, 16)
    best = optimize(profile, 256, 16).predicted_ms
    assert found.result is Result.UNKNOWN
    assert found.plan is not None and found.latency_ms >= best >= found.lower_bound_ms


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "plan, options, fragment",
    [
        (Plan((Instance(1, 4),), 4, 2), OptimizerOptions(), "uses 1 of 2 cores"),
        (Plan((Instance(1, 4),), 4, 1), OptimizerOptions(), "is for 1 cores, not 2"),
        (Plan((Instance(2, 2), Instance(1, 1)), 3, 3), OptimizerOptions(exact_cores=False), "batch of 3, not 4"),
        (Plan((Instance(1, 1), Instance(1, 3)), 4, 2), OptimizerOptions(), "1t x 3 is not a profiled cell"),
        (Plan((Instance(1, 2), Instance(1, 2)), 4, 2), OptimizerOptions(max_instances=1), "more than max_instances=1"),
        (Plan((Instance(1, 2), Instance(1, 2)), 4, 2), OptimizerOptions(min_batch=3), "below min_batch=3"),
        (Plan((Instance(2, 4),), 4, 2), OptimizerOptions(cores_per_socket=1), "more threads than an instance may have"),
    ],
)
def test_a_plan_invalid_for_the_problem_is_rejected_naming_the_problem(plan, options, fragment):
    profile = profile_of({(1, 1): 1.0, (1, 2): 2.0, (2, 4): 3.0, (2, 2): 2.0})
    with pytest.raises(CertifyError, match=fragment):
        certify(profile, 4, 2, plan, options)


def test_a_plan_whose_instances_cannot_be_packed_into_the_sockets_is_rejected():
    # 5 + 5 + 6 threads = 16 cores, each instance fits a socket of 8, but no two fit together
    profile = profile_of({(5, 1): 1.0, (6, 1): 1.0, (8, 1): 2.0, (8, 2): 3.0})
    plan = Plan((Instance(5, 1), Instance(5, 1), Instance(6, 1)), 3, 16)
    with pytest.raises(CertifyError, match=r"cannot be packed into sockets of \[8, 8\] cores"):
        certify(profile, 3, 16, plan, OptimizerOptions(exact_cores=False, cores_per_socket=8))
    assert certify(profile, 3, 16, plan, OptimizerOptions(exact_cores=False)).result is Result.OPTIMAL


@pytest.mark.parametrize("timeout", [0, -1.0, math.inf, math.nan, "5"])
def test_a_timeout_that_is_not_a_positive_number_of_seconds_is_rejected(timeout):
    profile = profile_of({(1, 1): 1.0})
    with pytest.raises(CertifyError, match="timeout must be"):
        certify(profile, 1, 1, Plan((Instance(1, 1),), 1, 1), timeout_s=timeout)
    with pytest.raises(CertifyError, match="timeout must be"):
        optimum(profile, 1, 1, timeout_s=timeout)


# ------------------------------------------------------- encoding and semantics


def test_sockets_are_full_sockets_of_the_given_size_plus_one_holding_the_rest():
    assert sockets_of(40, 16) == (16, 16, 8) == socket_capacities(40, 16)
    assert sockets_of(32, 16) == (16, 16) == socket_capacities(32, 16)
    assert sockets_of(8, 16) == (8,) == socket_capacities(8, 16)
    assert sockets_of(8, None) == (8,) == socket_capacities(8, None)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 6), max_size=6), st.lists(st.integers(1, 8), min_size=1, max_size=4))
def test_packing_into_sockets_succeeds_exactly_when_some_assignment_fits(threads, caps):
    import itertools

    exists = any(
        all(sum(t for t, k in zip(threads, where) if k == s) <= cap for s, cap in enumerate(caps))
        for where in itertools.product(range(len(caps)), repeat=len(threads))
    )
    found = pack_into_sockets(threads, caps)
    assert (found is not None) == exists
    if found is not None:
        for s, cap in enumerate(caps):
            assert sum(t for t, k in zip(threads, found) if k == s) <= cap


def test_thread_runs_group_consecutive_thread_counts_per_sub_batch():
    shapes = [(1, 4, 1.0), (2, 4, 1.0), (3, 4, 1.0), (5, 4, 1.0), (2, 8, 1.0)]
    assert thread_runs(shapes) == [(4, 1, 3), (4, 5, 5), (8, 2, 2)]


def test_with_idle_cores_only_the_fewest_threads_per_sub_batch_are_encoded():
    profile = builtin_profile("cnn-64", max_batch=1024)
    plan = optimize(profile, 1024, 64, OptimizerOptions(exact_cores=False))
    cert = certify(profile, 1024, 64, plan, OptimizerOptions(exact_cores=False))
    assert cert.result is Result.OPTIMAL
    assert cert.stats.shapes <= len(profile.batches) and cert.stats.pruned > 0
    assert cert.stats.queries == 1


@pytest.mark.parametrize("name", ["cnn-64", "transformer-64"])
def test_the_dp_plans_for_64_cores_and_a_batch_of_1024_are_certified_optimal(name):
    profile = builtin_profile(name, max_batch=1024)
    for options in (OptimizerOptions(), OptimizerOptions(max_instances=4), OptimizerOptions(cores_per_socket=16)):
        cert = certify(profile, 1024, 64, optimize(profile, 1024, 64, options), options, timeout_s=60)
        assert cert.result is Result.OPTIMAL, (options, cert)
        assert cert.stats.variables < 200  # run aggregation keeps the encoding small


def test_certificates_serialise_to_json_with_the_contract_fields():
    profile = builtin_profile("cnn-16", max_batch=64)
    obj = certify(profile, 64, 16, fat(64, 16)).to_json()
    assert obj["result"] == "not_optimal"
    assert {"result", "plan", "elapsed_s", "witness", "bound_ms", "encoding"} <= set(obj)
    assert Plan.from_json(obj["witness"]).batch == 64 and obj["plan"]["groups"] == [[1, 16, 64]]


# ------------------------------------------------------------- under interference


def _interference_problem():
    cells = {(1, 1): 10.0, (2, 2): 15.0, (2, 1): 9.0, (1, 2): 19.0}
    return profile_of(cells, model="corun", interference=Interference(points=((1, 2.0),)))


def test_the_interference_aware_plan_is_certified_under_interference():
    from checker.allocation import Result, certify_under_interference
    from packrat_sim.interference import optimize_with_interference
    from packrat_sim.optimizer import OptimizerOptions

    profile = _interference_problem()
    for exact in (True, False):
        options = OptimizerOptions(exact_cores=exact)
        aware = optimize_with_interference(profile, 2, 2, options)
        cert = certify_under_interference(profile, 2, 2, aware.plan, options)
        assert cert.result is Result.OPTIMAL and cert.latency_ms == aware.plan.predicted_ms


def test_the_isolated_plan_is_refuted_under_interference_with_a_faster_witness():
    from checker.allocation import Result, certify, certify_under_interference
    from packrat_sim.interference import latency_under_interference
    from packrat_sim.optimizer import optimize

    profile = _interference_problem()
    isolated = optimize(profile, 2, 2)
    assert certify(profile, 2, 2, isolated).result is Result.OPTIMAL
    cert = certify_under_interference(profile, 2, 2, isolated)
    assert cert.result is Result.NOT_OPTIMAL
    assert latency_under_interference(cert.witness, profile) < cert.bound_ms == 20.0


def test_certifying_under_interference_needs_a_model():
    import pytest

    from checker.allocation import CertifyError, certify_under_interference
    from packrat_sim.optimizer import optimize
    from packrat_sim.profile import builtin_profile

    profile = builtin_profile("cnn-16", max_batch=8)
    with pytest.raises(CertifyError, match="no interference model"):
        certify_under_interference(profile, 8, 16, optimize(profile, 8, 16))


@st.composite
def corun_problems(draw):
    """A random small profile with a random co-run slowdown, a batch, cores and exact_cores."""
    profile, B = draw(random_profiles(5, 6, st.sampled_from([2.0, 3.0, 5.0]) | st.floats(0.5, 50)))
    slow = sorted(draw(st.lists(st.floats(1.0, 3.0), min_size=1, max_size=3)))
    interference = Interference(points=tuple((k + 1, s) for k, s in enumerate(slow)))
    profile = dataclasses.replace(profile, model="r", interference=interference)
    return profile, draw(st.integers(1, B)), draw(st.integers(1, profile.max_threads)), draw(st.booleans())


@settings(max_examples=120, deadline=None)
@given(corun_problems())
def test_z3_certifies_every_interference_aware_dp_plan_on_random_profiles(problem):
    from checker.allocation import Result, certify_under_interference
    from packrat_sim.interference import optimize_with_interference
    from packrat_sim.optimizer import OptimizerError, OptimizerOptions

    profile, batch, cores, exact = problem
    options = OptimizerOptions(exact_cores=exact)
    try:
        aware = optimize_with_interference(profile, batch, cores, options)
    except OptimizerError:
        return
    assert certify_under_interference(profile, batch, cores, aware.plan, options).result is Result.OPTIMAL


# ---- issue 14: Z3 certifies the predictor's objective (dispatch cost + slowest instance)


def _dispatch_profile():
    from packrat_sim.profile import Cell

    cells = (Cell(1, 1, 10.0, 10.0, 10.0), Cell(1, 2, 12.0, 12.0, 12.0), Cell(2, 2, 11.0, 11.0, 11.0))
    return Profile(model="m", cells=cells, dispatch=((1, 2, 0.5), (2, 2, 3.0)))


def test_with_dispatch_cost_the_fewer_instance_plan_the_planner_picks_is_certified_optimal():
    from checker.allocation import certify_with_dispatch
    from packrat_sim.predictor import Predictor, best_plan

    profile = _dispatch_profile()
    options = OptimizerOptions(exact_cores=False)
    best = best_plan(Predictor(profile), 2, 2, options)
    assert best.describe() == "1 x 2t x 2"
    cert = certify_with_dispatch(profile, 2, 2, best, options, timeout_s=30)
    assert cert.result is Result.OPTIMAL and cert.latency_ms == pytest.approx(11.5)


def test_with_dispatch_cost_the_compute_only_optimum_is_refuted_with_a_cheaper_total():
    from checker.allocation import certify_with_dispatch

    profile = _dispatch_profile()
    two = Plan((Instance(1, 1), Instance(1, 1)), 2, 2)  # compute 10 ms, but 3 ms dispatch
    cert = certify_with_dispatch(profile, 2, 2, two, OptimizerOptions(exact_cores=False), timeout_s=30)
    assert cert.result is Result.NOT_OPTIMAL and cert.witness.predicted_ms < 13.0
    assert cert.latency_ms == pytest.approx(13.0)


def test_under_interference_z3_certifies_the_total_with_dispatch_cost_that_the_planner_minimises():
    from dataclasses import replace

    from checker.allocation import certify_under_interference
    from packrat_sim.predictor import Predictor, best_plan
    from packrat_sim.profile import Interference

    profile = replace(_dispatch_profile(), interference=Interference(points=((1, 1.05),)))
    options = OptimizerOptions(exact_cores=False)
    best = best_plan(Predictor(profile), 2, 2, options)
    assert best.describe() == "1 x 2t x 2"  # two 1-thread instances: 10 x 1.05 + 3 ms dispatch
    cert = certify_under_interference(profile, 2, 2, best, options, timeout_s=30)
    assert cert.result is Result.OPTIMAL and cert.latency_ms == pytest.approx(11.5)
    two = Plan((Instance(1, 1), Instance(1, 1)), 2, 2)
    cert = certify_under_interference(profile, 2, 2, two, options, timeout_s=30)
    assert cert.result is Result.NOT_OPTIMAL and cert.latency_ms == pytest.approx(13.5)
    assert cert.witness.predicted_ms == pytest.approx(Predictor(profile).plan_ms(cert.witness))


@settings(max_examples=60, deadline=None)
@given(corun_problems(), st.lists(st.floats(0.0, 5.0), min_size=1, max_size=4))
def test_z3_certifies_the_planners_plan_under_interference_and_dispatch_cost_on_random_profiles(problem, costs):
    from dataclasses import replace

    from checker.allocation import certify_under_interference
    from packrat_sim.optimizer import OptimizerError
    from packrat_sim.predictor import Predictor, best_plan

    profile, batch, cores, exact = problem
    dispatch = tuple((k + 1, batch, c) for k, c in enumerate(sorted(costs)))
    profile = replace(profile, dispatch=dispatch)
    options = OptimizerOptions(exact_cores=exact)
    try:
        best = best_plan(Predictor(profile), batch, cores, options)
    except OptimizerError:
        return
    assert certify_under_interference(profile, batch, cores, best, options).result is Result.OPTIMAL


def test_a_plan_is_never_refuted_by_itself_when_subtracting_its_dispatch_cost_would_round_up():
    # 4.0 + 0.7152 - 4.0 == 0.7152000000000003: a bound computed by subtraction let the plan's
    # own shape in, and Z3 "refuted" the plan with itself
    from dataclasses import replace

    from checker.allocation import certify_under_interference, certify_with_dispatch
    from packrat_sim.profile import Cell, Interference

    profile = Profile(model="r", cells=(Cell(1, 1, 0.7152, 0.7152, 0.7152),), dispatch=((1, 1, 4.0),))
    one = Plan((Instance(1, 1),), 1, 1)
    options = OptimizerOptions(exact_cores=False)
    assert certify_with_dispatch(profile, 1, 1, one, options).result is Result.OPTIMAL
    aware = replace(profile, interference=Interference(points=((1, 1.0),)))
    assert certify_under_interference(aware, 1, 1, one, options).result is Result.OPTIMAL


# ---- issue 27: Z3 under per-thread-count co-run curves, against brute force


@st.composite
def extended_corun_problems(draw):
    """A random small profile with a random model of base and per-thread-count curves,
    dispatch costs (non-decreasing in k) or none, a batch, cores and options: idle cores
    allowed or not, and sockets (exact cores only, as the planner and certifier require)."""
    from tests.interference_helpers import dense_profiles, random_models

    profile, B = draw(dense_profiles(5, 6))
    batch, cores = draw(st.integers(1, B)), draw(st.integers(1, profile.max_threads))
    costs = sorted(draw(st.lists(st.sampled_from([0.0, 1.0]) | st.floats(0.0, 5.0), max_size=4)))
    profile = dataclasses.replace(profile, model="r", interference=draw(random_models(profile.max_threads)),
                                  dispatch=tuple((k + 1, batch, c) for k, c in enumerate(costs)))
    exact = draw(st.booleans())
    per_socket = draw(st.none() | st.integers(1, cores)) if exact else None
    return profile, batch, cores, OptimizerOptions(exact_cores=exact, cores_per_socket=per_socket)


@settings(max_examples=100, deadline=None)
@given(extended_corun_problems(), st.data())
def test_under_per_thread_curves_z3_certifies_exactly_the_plans_brute_force_finds_optimal(problem, data):
    from checker.allocation import certify_under_interference
    from packrat_sim.predictor import Predictor, best_plan
    from tests.interference_helpers import every_plan, price

    profile, batch, cores, options = problem
    caps = sockets_of(cores, options.cores_per_socket)
    plans = [p for p in every_plan(profile, batch, cores, options.exact_cores)
             if pack_into_sockets([i.threads for i in p.instances], caps) is not None]
    if not plans:
        with pytest.raises(OptimizerError):
            best_plan(Predictor(profile), batch, cores, options)
        return
    best_ms = min(price(p, profile) for p in plans)
    best = best_plan(Predictor(profile), batch, cores, options)
    assert best.predicted_ms == best_ms  # the DP: the same floats as the brute force
    cert = certify_under_interference(profile, batch, cores, best, options)
    assert cert.result is Result.OPTIMAL and cert.latency_ms == best_ms
    other = data.draw(st.sampled_from(plans))
    cert = certify_under_interference(profile, batch, cores, other, options)
    assert cert.latency_ms == price(other, profile)
    if price(other, profile) == best_ms:
        assert cert.result is Result.OPTIMAL
    else:
        assert cert.result is Result.NOT_OPTIMAL
        witness = cert.witness
        assert witness.predicted_ms == price(witness, profile) < cert.latency_ms
        assert sum(i.batch for i in witness.instances) == batch and witness.threads_used <= cores
