"""The SimPy serving model: event sequences, queueing theory, reconfiguration safety, determinism."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from packrat_sim.estimator import EstimatorConfig
from packrat_sim.metrics import in_system
from packrat_sim.plan import Instance, Plan, fat, thin
from packrat_sim.policy import SwitchModel
from packrat_sim.profile import Cell, Interference, Profile, builtin_profile
from packrat_sim.simulator import (
    HISTORY_SCHEMA,
    Comparison,
    SimConfig,
    SimulationError,
    compare_plans,
    simulate,
    split_batch,
)
from packrat_sim.switching import switch_kind
from packrat_sim.workload import Batching, Closed, Poisson, Trace, WorkloadError

ROOT = Path(__file__).resolve().parents[2]


def deterministic_profile(latencies: dict[tuple[int, int], float], **kwargs) -> Profile:
    """A profile whose every cell has a single sample, so service times are exact."""
    cells = tuple(Cell.from_samples(t, b, [ms]) for (t, b), ms in latencies.items())
    return Profile(model="tiny", cells=cells, **kwargs)


def events(result) -> list[tuple[str, float]]:
    return [(e["event"], e["t_ms"]) for e in result.timeline()]


TINY = deterministic_profile({(1, 1): 10.0, (1, 2): 16.0})


# ----------------------------------------------------------- tiny scenarios


def test_the_dispatcher_batches_like_torchserve_up_to_max_batch_or_max_delay():
    # arrivals at 0, 1, 2, 30 ms; batches of at most 2 within 5 ms; L[1,1] = 10, L[1,2] = 16
    wl = Trace((0.0, 1.0, 2.0, 30.0), batching=Batching(max_batch=2, max_delay_ms=5.0))
    r = simulate(TINY, 1, wl, "fat")
    assert events(r) == [
        ("dispatch", 1.0),  # request 1 fills the batch at 1 ms
        ("complete", 17.0),
        ("dispatch", 22.0),  # request 2 waited; the server was free at 17, the window closes at 17 + 5
        ("complete", 32.0),
        ("dispatch", 37.0),  # request 3 arrives while busy; alone, it waits out the 5 ms window
        ("complete", 47.0),
    ]
    assert r.records.batch.tolist() == [0, 0, 1, 2]
    assert r.records.completion_ms.tolist() == [17.0, 17.0, 32.0, 47.0]


def test_a_closed_loop_serves_client_batches_whole_and_first_come_first_served():
    r = simulate(TINY, 1, Closed(batch=2, requests=6, clients=2), "fat")
    assert events(r) == [
        ("submit", 0.0),
        ("submit", 0.0),
        ("dispatch", 0.0),
        ("complete", 16.0),
        ("submit", 16.0),  # client 1 resubmits as soon as it is answered
        ("dispatch", 16.0),  # client 2's batch, queued since 0
        ("complete", 32.0),
        ("dispatch", 32.0),
        ("complete", 48.0),
    ]
    assert r.stats.request_latency.max_ms == 32.0
    assert r.stats.throughput_per_s == pytest.approx(6 / 0.048)


def test_a_think_time_delays_the_next_submission_of_a_closed_loop_client():
    r = simulate(TINY, 1, Closed(batch=1, requests=2, think_ms=5.0), "fat")
    assert events(r) == [("submit", 0.0), ("dispatch", 0.0), ("complete", 10.0), ("submit", 15.0), ("dispatch", 15.0), ("complete", 25.0)]


def test_a_batch_is_answered_when_its_slowest_sub_batch_finishes():
    profile = deterministic_profile({(1, 1): 10.0, (1, 2): 16.0, (2, 1): 7.0, (2, 2): 12.0, (2, 3): 20.0})
    plan = Plan((Instance(2, 3), Instance(1, 1)), batch=4, cores=3)
    r = simulate(profile, 3, Closed(batch=4, requests=4), plan)
    assert r.stats.batch_latency.max_ms == 20.0  # max(L[2,3], L[1,1])
    assert r.stats.busy_core_ms == pytest.approx(2 * 20.0 + 1 * 10.0)


def test_a_smaller_batch_is_split_over_the_plan_in_proportion_to_its_sub_batches():
    plan = Plan((Instance(1, 4), Instance(1, 2), Instance(1, 2)), batch=8, cores=3)
    assert split_batch(plan, 8) == (4, 2, 2)
    assert split_batch(plan, 4) == (2, 1, 1)
    assert split_batch(plan, 5) == (3, 1, 1)  # quotas 2.5, 1.25, 1.25: the largest remainder gets the spare
    assert split_batch(plan, 3) == (1, 1, 1)  # quotas 1.5, .75, .75
    assert split_batch(plan, 1) == (1, 0, 0)  # an instance may idle for a batch


@settings(max_examples=200, deadline=None)
@given(subs=st.lists(st.integers(1, 16), min_size=1, max_size=6), n=st.integers(1, 200))
def test_every_split_covers_the_batch_exactly(subs, n):
    plan = Plan(tuple(Instance(1, b) for b in subs), batch=sum(subs), cores=len(subs))
    sizes = split_batch(plan, n)
    assert sum(sizes) == n and len(sizes) == len(subs) and min(sizes) >= 0


def test_a_cell_the_profile_lacks_is_predicted_never_zero():
    profile = deterministic_profile({(1, 1): 10.0, (1, 4): 28.0})
    r = simulate(profile, 1, Closed(batch=3, requests=3), fat(3, 1))
    assert r.predicted_cells == ((1, 3),)
    assert r.stats.batch_latency.max_ms == pytest.approx(profile.predict(1, 3)) == pytest.approx(22.0)


def test_service_times_are_drawn_from_the_profiles_samples():
    profile = Profile(model="noisy", cells=(Cell.from_samples(1, 1, [10.0, 20.0, 30.0]),))
    r = simulate(profile, 1, Closed(batch=1, requests=600), "fat", seed=5)
    service = r.records.batch_completion_ms - r.records.batch_dispatch_ms
    values, counts = np.unique(np.round(service, 9), return_counts=True)
    assert values.tolist() == [10.0, 20.0, 30.0]
    assert counts.min() > 150  # roughly uniform over the samples


def test_interference_slows_instances_by_the_profiles_model_of_the_busy_cores_beside_them():
    lat = {(1, 1): 10.0, (1, 2): 18.0}
    alone = deterministic_profile(lat)
    crowded = deterministic_profile(lat, interference=Interference(points=((1, 1.5), (3, 2.0))))
    plan = thin(4, 4)  # 4 single-thread instances: each has 3 busy cores beside it
    quiet = simulate(alone, 4, Closed(batch=4, requests=4), plan)
    busy = simulate(crowded, 4, Closed(batch=4, requests=4), plan)
    assert quiet.stats.batch_latency.max_ms == 10.0
    assert busy.stats.batch_latency.max_ms == pytest.approx(20.0)
    single = simulate(crowded, 4, Closed(batch=1, requests=1), plan)  # one busy instance: no neighbours
    assert single.stats.batch_latency.max_ms == 10.0


# ------------------------------------------------------------ queueing theory


def test_an_md1_queue_has_the_mean_wait_of_its_closed_form_within_two_percent():
    # Poisson arrivals at 70/s, deterministic 10 ms service, one server: rho = 0.7
    profile = deterministic_profile({(1, 1): 10.0})
    r = simulate(profile, 1, Poisson(70.0, 3000.0, Batching(max_batch=1, max_delay_ms=0.0)), "fat", seed=0)
    rho, service = 0.7, 10.0
    expected_wait = rho * service / (2 * (1 - rho))  # Pollaczek-Khinchine for M/D/1
    assert r.stats.requests > 200_000
    assert r.stats.queueing_delay.mean_ms == pytest.approx(expected_wait, rel=0.02)
    assert r.stats.utilisation == pytest.approx(rho, rel=0.02)


def test_littles_law_holds_on_a_long_run():
    profile = builtin_profile("cnn-4", max_batch=16)
    r = simulate(profile, 4, Poisson(150.0, 400.0, Batching(16, 5.0)), "thin", seed=2)
    rec = r.records
    grid = np.linspace(rec.arrival_ms.min(), rec.completion_ms.max(), 100_001)
    mean_number = in_system(rec.arrival_ms, rec.completion_ms, grid).mean()  # L, sampled in time
    arrival_rate = r.stats.throughput_per_s / 1000.0  # lambda, per ms
    assert mean_number == pytest.approx(arrival_rate * r.stats.request_latency.mean_ms, rel=0.02)  # L = lambda W


# ------------------------------------------------------------ reconfiguration


LOAD_STEPS = "steps:20/s@10s,400/s@10s,20/s@20s,max_batch=16"
# no warm standby: a plan with more instances than the live ones respawns, so this load makes every kind
#: The switch costs these tests pin their event times to (the defaults are measured and may move).
PINNED = {"reroute_ms": 0.1, "retarget_ms": 20.0, "first_batch_factor": 1.5}
FAST_ESTIMATOR = SimConfig(estimator=EstimatorConfig(alpha=0.5, window=3, interval_ms=200.0), start_ms=300.0,
                           switch=SwitchModel(standby=0, **PINNED))


@pytest.fixture(scope="module")
def under_load():
    return simulate(builtin_profile("cnn-4", max_batch=16), 4, LOAD_STEPS, "packrat-ewma", seed=3, config=FAST_ESTIMATOR)


def test_a_changing_load_makes_packrat_reconfigure(under_load):
    r = under_load
    assert r.adaptive
    assert len(r.reconfigurations) >= 2
    assert len(r.plans) == len(r.reconfigurations) + 1
    assert {rc.to_batch for rc in r.reconfigurations} >= {1, 16}
    assert {rc.kind for rc in r.reconfigurations} == {"re-route", "retarget", "respawn"}
    for rc in r.reconfigurations:  # the kind is the one rule's, with the model's standby
        assert rc.kind == switch_kind(rc.from_plan, rc.to_plan, 0) and rc.restarted == (rc.kind == "respawn")


def test_reconfiguration_under_load_answers_every_accepted_batch_exactly_once(under_load):
    rec = under_load.records
    n = rec.arrival_ms.size
    assert n == under_load.stats.requests > 1000
    # every request is in exactly one batch, and batches partition the requests in order
    assert np.array_equal(np.bincount(rec.batch, minlength=rec.batch_size.size), rec.batch_size)
    assert rec.batch_first.tolist() == np.concatenate(([0], np.cumsum(rec.batch_size)[:-1])).tolist()
    assert rec.batch_size.sum() == n
    # every batch is answered once, after it started, and no request waits forever
    assert np.all(rec.batch_completion_ms > rec.batch_dispatch_ms)
    assert np.all(rec.dispatch_ms >= rec.arrival_ms) and np.all(rec.completion_ms > rec.dispatch_ms)
    history = under_load.history()
    infers = [op for op in history["operations"] if op["input"]["op"] == "infer"]
    assert sorted(op["input"]["batch"] for op in infers) == list(range(rec.batch_size.size))
    assert all(op["ret"] is not None for op in history["operations"])


def test_each_batch_runs_whole_in_the_epoch_that_was_current_when_it_was_dispatched(under_load):
    rec = under_load.records
    switches = [0.0] + [rc.switch_ms for rc in under_load.reconfigurations]
    for k in range(rec.batch_size.size):
        e = int(rec.batch_epoch[k])
        t = rec.batch_dispatch_ms[k]
        assert switches[e] <= t
        if e + 1 < len(switches):
            assert t <= switches[e + 1]
        sizes = split_batch(under_load.plans[e], int(rec.batch_size[k]))  # all its sub-batches: plan of epoch e
        assert sum(sizes) == rec.batch_size[k]


def test_old_instances_drain_their_work_before_they_stop(under_load):
    rec = under_load.records
    for rc in under_load.reconfigurations:
        held = rec.batch_completion_ms[rec.batch_epoch == rc.from_epoch]
        assert rc.drained_ms >= held.max() if held.size else True
        if rc.kind == "retarget":  # the same workers: they drain, then retarget, then routing switches
            assert rc.switch_ms >= rc.drained_ms >= rc.call_ms
        else:
            assert rc.drained_ms >= rc.call_ms and rc.switch_ms >= rc.call_ms


def test_each_kind_of_switch_takes_its_modelled_time_before_routing_switches(under_load):
    profile = builtin_profile("cnn-4", max_batch=16)
    for rc in under_load.reconfigurations:
        assert rc.pause_ms == {"re-route": 0.1, "retarget": 20.0, "respawn": 0.0}[rc.kind]
        if rc.kind == "respawn":  # new processes start and warm up beside the old ones
            slowest_warmup = max(profile.predict(i.threads, i.batch) for i in rc.to_plan.instances)
            assert rc.switch_ms - rc.call_ms >= FAST_ESTIMATOR.start_ms + 2 * slowest_warmup - 1e-6
        elif rc.kind == "retarget":
            assert rc.switch_ms == pytest.approx(rc.drained_ms + 20.0)
        else:
            assert rc.switch_ms == pytest.approx(rc.call_ms + 0.1)


def test_the_timeline_shows_each_reconfiguration_as_decide_switch_drain(under_load):
    kinds = [(e["event"], e["t_ms"]) for e in under_load.timeline() if e["event"] in ("reconfigure", "switch", "drained")]
    assert len(kinds) == 3 * len(under_load.reconfigurations)
    for rc, start in zip(under_load.reconfigurations, range(0, len(kinds), 3)):
        assert [k for k, _ in sorted(kinds[start:start + 3], key=lambda x: ("reconfigure", "switch", "drained").index(x[0]))] == ["reconfigure", "switch", "drained"]
        assert ("reconfigure", rc.call_ms) in kinds and ("switch", rc.switch_ms) in kinds


def test_the_history_is_in_the_checkers_json_format_with_integer_times_and_one_epoch_per_batch(under_load):
    h = under_load.history()
    assert h["schema"] == HISTORY_SCHEMA and h["model"] == "serving"
    json.dumps(h)
    reconfs = [op for op in h["operations"] if op["input"]["op"] == "reconfigure"]
    assert [op["output"]["epoch"] for op in reconfs] == list(range(1, len(under_load.reconfigurations) + 1))
    by_client: dict[int, list[tuple[int, int]]] = {}
    for op in h["operations"]:
        assert isinstance(op["call"], int) and isinstance(op["ret"], int) and op["call"] <= op["ret"]
        if op["input"]["op"] == "infer":
            assert set(op["output"]) == {"epoch", "digest"}
        by_client.setdefault(op["client"], []).append((op["call"], op["ret"]))
    for intervals in by_client.values():  # a client never has two operations outstanding
        intervals.sort()
        assert all(prev[1] < nxt[0] for prev, nxt in zip(intervals, intervals[1:]))


def test_the_history_under_reconfiguration_is_linearizable_for_the_serving_model(under_load):
    linearizability = pytest.importorskip("checker.linearizability")
    history_mod = pytest.importorskip("checker.history")
    history = history_mod.history_from_json(under_load.history())
    verdict = linearizability.check(history, "serving", timeout=60)
    assert str(verdict.result) == "ok", verdict


# --------------------------------------------------------- API and determinism


def test_the_same_seed_gives_the_same_run_and_another_seed_another():
    profile = builtin_profile("cnn-4", max_batch=16)
    a = simulate(profile, 4, LOAD_STEPS, "packrat-ewma", seed=11, config=FAST_ESTIMATOR)
    b = simulate(profile, 4, LOAD_STEPS, "packrat-ewma", seed=11, config=FAST_ESTIMATOR)
    c = simulate(profile, 4, LOAD_STEPS, "packrat-ewma", seed=12, config=FAST_ESTIMATOR)
    assert a.history() == b.history()
    assert a.to_json() == b.to_json()
    assert np.array_equal(a.records.completion_ms, b.records.completion_ms)
    assert not np.array_equal(a.records.arrival_ms, c.records.arrival_ms)


def test_fast_forwarding_the_dispatcher_changes_nothing_but_speed():
    profile = builtin_profile("cnn-4", max_batch=16)
    slow = SimConfig(estimator=FAST_ESTIMATOR.estimator, start_ms=FAST_ESTIMATOR.start_ms, switch=FAST_ESTIMATOR.switch,
                     fast_forward=False)
    for policy in ("packrat", "packrat-ewma", "thin"):
        a = simulate(profile, 4, LOAD_STEPS, policy, seed=5, config=FAST_ESTIMATOR)
        b = simulate(profile, 4, LOAD_STEPS, policy, seed=5, config=slow)
        assert a.history() == b.history()
        assert a.timeline() == b.timeline()
        assert a.estimates == b.estimates


def test_compare_plans_runs_packrat_fat_and_thin_on_the_same_arrivals():
    profile = builtin_profile("cnn-4", max_batch=16)
    cmp = compare_plans(profile, 4, "poisson:rate=100/s,duration=20s,max_batch=16", seed=1)
    assert isinstance(cmp, Comparison)
    assert [r.name for r in cmp.results] == ["packrat", "fat", "thin"]
    arrivals = [r.records.arrival_ms for r in cmp.results]
    assert all(np.array_equal(arrivals[0], a) for a in arrivals[1:])
    assert cmp.result("fat").plan == fat(16, 4)
    assert cmp.result("thin").plan == thin(16, 4)
    assert cmp.synthetic and "[synthetic]" in cmp.profile
    obj = cmp.to_json()
    json.dumps(obj)
    assert obj["results"][0]["stats"]["request_latency"]["p99_ms"] > 0


def test_on_a_closed_loop_packrat_is_the_optimizers_plan_for_the_client_batch():
    profile = builtin_profile("cnn-16", max_batch=64)
    cmp = compare_plans(profile, 16, "closed:batch=64,requests=640", seed=0)
    packrat, fat_r = cmp.result("packrat"), cmp.result("fat")
    assert not packrat.adaptive and packrat.reconfigurations == ()
    assert packrat.plan.batch == 64 and packrat.plan.predicted_ms is not None
    assert packrat.stats.batch_latency.mean_ms < fat_r.stats.batch_latency.mean_ms


def test_a_plan_needing_threads_the_profile_never_measured_is_refused():
    profile = deterministic_profile({(1, 1): 10.0, (2, 1): 6.0})
    with pytest.raises(SimulationError, match="needs 4-thread instances .* threads 1..2"):
        simulate(profile, 4, Closed(batch=1, requests=1), "fat")


@pytest.mark.parametrize(
    "kwargs, named",
    [
        ({"cores": 0}, "cores must be a positive integer"),
        ({"policy": "fastest"}, "unknown policy 'fastest'"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"workload": "poisson:rate=0.001/s,duration=1s"}, "produced no requests"),
    ],
)
def test_bad_simulation_inputs_are_errors_naming_the_value(kwargs, named):
    args = {"cores": 1, "workload": "closed:batch=1,requests=2", "policy": "fat", "seed": 0, **kwargs}
    with pytest.raises(SimulationError, match=named):
        simulate(TINY, args["cores"], args["workload"], args["policy"], seed=args["seed"])


def test_a_malformed_workload_spec_reaches_the_caller_as_a_workload_error():
    with pytest.raises(WorkloadError):
        simulate(TINY, 1, "poisson:rate=-1/s,duration=1s", "fat")


def test_bad_configuration_values_are_errors():
    with pytest.raises(SimulationError, match="start_ms"):
        SimConfig(start_ms=-1)
    with pytest.raises(SimulationError, match="observe"):
        SimConfig(observe="everything")


def test_the_per_request_csv_has_one_row_per_request():
    r = simulate(TINY, 1, Trace((0.0, 1.0, 2.0)), "fat")
    lines = r.requests_csv().strip().splitlines()
    assert lines[0] == "request,arrival_ms,dispatch_ms,completion_ms,latency_ms,queue_ms,batch,epoch"
    assert len(lines) == 4


def test_the_simulator_modules_import_nothing_outside_packrat_sim():
    for name in ("simulator", "workload", "estimator", "metrics"):
        tree = ast.parse((ROOT / "packrat_sim" / f"{name}.py").read_text())
        roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        roots |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not roots & {"checker", "real_runner", "ui", "torch"}, name


# ------------------------------------------------- the packrat policy (issue 15)

from packrat_sim.policy import PolicyConfig  # noqa: E402


def _tiny_profile():
    """2 cores, no noise: 1t: b1 10 ms, b2 20 ms; 2t: b1 6 ms, b2 11 ms (as in test_policy)."""
    cells = {(1, 1): 10.0, (1, 2): 20.0, (2, 1): 6.0, (2, 2): 11.0}
    return Profile(model="tiny", cells=tuple(Cell.from_samples(t, b, [ms]) for (t, b), ms in cells.items()))


# single requests every 100 ms for 1 s, then pairs every 100 ms: batches of 1, then of 2
SCRIPT = Trace(tuple([float(t) for t in range(0, 1000, 100)] + [float(t) for t in range(1000, 3000, 100) for _ in range(2)]),
               batching=Batching(max_batch=2, max_delay_ms=0.0))
SCRIPT_POLICY = PolicyConfig(window_ms=500.0, payback_ms=1e9)


@pytest.fixture(scope="module")
def scripted_switch():
    """The 1 x 2t -> 2 x 1t switch with no warm standby: a respawn (new processes)."""
    cfg = SimConfig(start_ms=500.0, warmup_iterations=2, policy=SCRIPT_POLICY, switch=SwitchModel(standby=0, **PINNED))
    return simulate(_tiny_profile(), 2, SCRIPT, "packrat", config=cfg)


@pytest.fixture(scope="module")
def scripted_retarget():
    """The same switch with the default warm standby (one worker per core): a retarget."""
    return simulate(_tiny_profile(), 2, SCRIPT, "packrat", config=SimConfig(policy=SCRIPT_POLICY, switch=SwitchModel(**PINNED)))


def test_the_packrat_policy_starts_with_the_plan_for_the_first_formed_batch(scripted_switch):
    assert scripted_switch.plan.describe() == "1 x 2t x 1"


def test_the_policy_switches_at_the_second_confirming_decision_and_says_why(scripted_switch):
    (rc,) = scripted_switch.reconfigurations
    assert (rc.call_ms, rc.to_plan.describe(), rc.kind, rc.restarted) == (1800.0, "2 x 1t x 1", "respawn", True)
    assert "expected latency 11.0 -> 10.0 ms" in rc.reason and rc.gain_ms == pytest.approx(1.0) and rc.cost_ms > 0
    events = [e for e in scripted_switch.timeline() if e["event"] == "reconfigure"]
    assert events[0]["reason"] == rc.reason


def test_a_respawn_slows_the_serving_instances_as_measured_in_start_up_then_warm_up(scripted_switch):
    # old plan 1 x 2t on 2 cores. Start-up (500 ms): two starting processes -> oversubscription
    # (2 + 2) / 2 = 2 -> 1 + 1.7 * (2 - 1) * 2 = 4.4x. Warm-up: all 4 threads live -> 2 * 1.1 = 2.2x,
    # lasting 2 iterations of the new 10 ms cell at 2.2x = 44 ms. Then the new plan alone: 10 ms.
    rec = scripted_switch.records
    svc = dict(zip(rec.batch_dispatch_ms.tolist(), (rec.batch_completion_ms - rec.batch_dispatch_ms).tolist()))
    assert svc[1800.0] == pytest.approx(11.0)  # dispatched at the decision, before the new processes exist
    assert [svc[t] for t in (1900.0, 2000.0, 2100.0, 2200.0)] == pytest.approx([11.0 * 4.4] * 4)
    assert svc[2300.0] == pytest.approx(11.0 * 2.2)
    (rc,) = scripted_switch.reconfigurations
    assert rc.switch_ms == pytest.approx(1800.0 + 500.0 + 2 * 10.0 * 2.2)
    assert [svc[t] for t in (2400.0, 2500.0, 2900.0)] == pytest.approx([10.0] * 3)


def test_a_respawn_serves_on_the_old_plan_until_the_new_processes_are_warm(scripted_switch):
    # the old plan serves every pair until 2344 (start-up 500 ms, warm-up 44 ms), slowed as above;
    # it holds no work then (its last batch ended at 2324.2): drained at the switch
    window = [(e, round(t, 6)) for e, t in events(scripted_switch) if 1800.0 <= t <= 2410.0]
    assert window == [
        ("reconfigure", 1800.0), ("dispatch", 1800.0), ("complete", 1811.0),
        ("dispatch", 1900.0), ("complete", 1948.4), ("dispatch", 2000.0), ("complete", 2048.4),
        ("dispatch", 2100.0), ("complete", 2148.4), ("dispatch", 2200.0), ("complete", 2248.4),
        ("dispatch", 2300.0), ("complete", 2324.2), ("drained", 2344.0), ("switch", 2344.0),
        ("dispatch", 2400.0), ("complete", 2410.0),
    ]
    (rc,) = scripted_switch.reconfigurations
    assert (rc.kind, rc.pause_ms, rc.restarted) == ("respawn", 0.0, True)


def test_a_retarget_drains_pauses_then_serves_its_first_batch_slower(scripted_retarget):
    # the decision follows the pair dispatched at 1800 on 1 x 2t (11 ms); routing holds while it
    # drains (1811), the workers retarget for 20 ms (switch at 1831), the next pair (1900) runs on
    # 2 x 1t 1.5x slower than its 10 ms, and every later one at 10 ms
    (rc,) = scripted_retarget.reconfigurations
    assert (rc.kind, rc.restarted, rc.pause_ms, rc.cost_ms) == ("retarget", False, 20.0, pytest.approx(25.0))
    window = [(e, round(t, 6)) for e, t in events(scripted_retarget) if 1800.0 <= t <= 2010.0]
    assert window == ([
        ("reconfigure", 1800.0), ("dispatch", 1800.0), ("complete", 1811.0), ("drained", 1811.0),
        ("switch", 1831.0), ("dispatch", 1900.0), ("complete", 1915.0), ("dispatch", 2000.0), ("complete", 2010.0),
    ])
    (decision,) = [e for e in scripted_retarget.timeline() if e["event"] == "reconfigure"]
    assert decision["kind"] == "retarget" and rc.to_json()["kind"] == "retarget" and rc.to_json()["pause_ms"] == 20.0


def test_a_re_route_switches_at_once_while_the_same_workers_finish_their_batch():
    # 2 cores; the plans for batches 4 and 2 are both 2 x 1t (a re-route), the plan for 1 is 1 x 2t
    # (a retarget). The estimator sees 2 requests in service at 100 ms (-> batch 2: re-route,
    # routing moves 0.1 ms later, the batch in service finishes at 105), then none (-> batch 1:
    # a retarget of idle workers, 20 ms); the request of 250 runs on 1 x 2t, 1.5 x 9 ms.
    profile = deterministic_profile({(1, 1): 10.0, (1, 2): 16.0, (1, 4): 30.0, (2, 1): 9.0, (2, 2): 15.0, (2, 4): 28.0})
    cfg = SimConfig(estimator=EstimatorConfig(alpha=1.0, window=1, interval_ms=100.0, max_batch=4), initial_batch=4,
                    switch=SwitchModel(**PINNED))
    r = simulate(profile, 2, Trace((95.0, 95.0, 250.0), batching=Batching(max_batch=4, max_delay_ms=0.0)),
                 "packrat-ewma", config=cfg)
    assert [p.describe() for p in r.plans] == ["2 x 1t x 2", "2 x 1t x 1", "1 x 2t x 1"]
    assert [(rc.kind, rc.pause_ms) for rc in r.reconfigurations] == [("re-route", 0.1), ("retarget", 20.0)]
    assert [(e, round(t, 6)) for e, t in events(r)] == ([
        ("dispatch", 95.0), ("reconfigure", 100.0), ("switch", 100.1), ("complete", 105.0), ("drained", 105.0),
        ("drained", 200.1), ("reconfigure", 200.1), ("switch", 220.1),  # idle workers: drained at the call
        ("dispatch", 250.0), ("complete", 263.5),
    ])


def test_the_old_estimator_stays_available_as_packrat_ewma():
    profile = builtin_profile("cnn-4", max_batch=16)
    r = simulate(profile, 4, LOAD_STEPS, "packrat-ewma", seed=3, config=FAST_ESTIMATOR)
    assert r.name == "packrat-ewma" and r.adaptive and len(r.reconfigurations) >= 2
    assert all(rc.reason == "" for rc in r.reconfigurations)


IDLE_SCRIPT = """
import sys
from packrat_sim.profile import builtin_profile
from packrat_sim.simulator import simulate
from packrat_sim.workload import Trace
policy = sys.argv[1]
profile = builtin_profile("cnn-4", max_batch=16)
assert simulate(profile, 4, Trace((0.0, 1.0, 2.0, 1e300, 1e300)), policy).stats.requests == 5
assert simulate(profile, 4, "poisson:rate=1/h,duration=10000000s", policy, seed=1).stats.requests > 2000
assert simulate(profile, 4, "steps:50/s@5s,0/s@1000000s,50/s@5s", policy, seed=1).stats.span_s > 1e6
"""


@pytest.mark.parametrize("policy", ["packrat", "packrat-ewma", "fat"])
def test_idle_time_costs_nothing_a_gap_of_1e300_ms_returns_at_once(policy):
    """A 1e300 ms gap, ~2,800 requests an hour apart, a 10^6 s idle step: each run must
    return (in a child process, so a hang fails the test; the bound is generous)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", IDLE_SCRIPT, policy], check=True, cwd=root, timeout=120)


def test_compare_plans_accepts_the_policy_to_compare():
    profile = builtin_profile("cnn-4", max_batch=16)
    cmp = compare_plans(profile, 4, "poisson:rate=100/s,duration=5s,max_batch=16", seed=1,
                        policies=("packrat-ewma", "fat"))
    assert [r.name for r in cmp.results] == ["packrat-ewma", "fat"]
    with pytest.raises(SimulationError, match="unknown policy 'greedy'"):
        simulate(profile, 4, "poisson:rate=100/s,duration=5s,max_batch=16", "greedy")


@pytest.mark.skipif("dispatch" not in getattr(Profile, "__dataclass_fields__", {}), reason="profile without dispatch cost")
def test_the_profiles_measured_dispatch_cost_is_added_to_every_batch():
    plain = _tiny_profile()
    costly = Profile(model="tiny", cells=plain.cells, dispatch=((1, 1, 3.0), (1, 2, 3.0), (2, 1, 3.0), (2, 2, 3.0)))
    wl = Trace((0.0, 100.0, 200.0), batching=Batching(max_batch=2, max_delay_ms=0.0))
    fat_plan = fat(1, 2)
    a = simulate(plain, 2, wl, fat_plan)
    b = simulate(costly, 2, wl, fat_plan)
    assert (b.records.batch_completion_ms - a.records.batch_completion_ms).tolist() == pytest.approx([3.0] * 3)
