"""The online policy: decisions at known times for scripted sequences of formed batches."""

from __future__ import annotations

import pytest

from packrat_sim import policy as pol
from packrat_sim.plan import Instance, Plan
from packrat_sim.profile import Cell, Profile

# A 2-core profile without noise (one sample per cell: draws are deterministic):
#   1 thread:  batch 1 -> 10 ms, batch 2 -> 20 ms
#   2 threads: batch 1 ->  6 ms, batch 2 -> 11 ms
# Candidates for max_batch 2: the plan for B=1 is 1 x 2t x 1 (6 ms), for B=2 it is 2 x 1t x 1 (10 ms).
CELLS = {(1, 1): 10.0, (1, 2): 20.0, (2, 1): 6.0, (2, 2): 11.0}
ONE_FAT = Plan((Instance(2, 1),), 1, 2)
TWO_THIN = Plan((Instance(1, 1), Instance(1, 1)), 2, 2)
FREE = pol.SwitchModel(start_ms=0.0, warmup_iterations=0)  # switching costs nothing: only the rule decides


def tiny_profile() -> Profile:
    return Profile(model="tiny", cells=tuple(Cell.from_samples(t, b, [ms]) for (t, b), ms in CELLS.items()))


@pytest.fixture(scope="module")
def catalog() -> pol.PlanCatalog:
    return pol.PlanCatalog(tiny_profile(), 2, 2)


def config(**kw) -> pol.PolicyConfig:
    base = dict(window_ms=500.0, decide_every_ms=250.0, min_batches=4, confirmations=2, max_batch=2)
    base.update(kw)
    return pol.PolicyConfig(**base)


def every_100ms(sizes_at, until_ms: int, backlog=lambda t: 0):
    return [(float(t), sizes_at(t), backlog(t)) for t in range(0, until_ms + 1, 100)]


def test_the_catalog_holds_the_optimal_plan_for_every_batch_size_once(catalog):
    assert [p.describe() for p in catalog.plans] == [ONE_FAT.describe(), TWO_THIN.describe()]
    assert catalog.best_for == {1: 0, 2: 1}


def test_expected_latency_of_a_batch_waits_for_the_slowest_instance(catalog):
    assert catalog.cost(0, 1) == 6.0 and catalog.cost(0, 2) == 11.0
    assert catalog.cost(1, 1) == 10.0  # one thin instance idles, the other takes the request
    assert catalog.cost(1, 2) == 10.0


def test_expected_max_of_independent_draws_is_exact():
    import numpy as np

    # X uniform on {1, 3}, Y = 2: max is 2 or 3 with equal chance
    assert pol.expected_max([np.array([1.0, 3.0]), np.array([2.0])]) == pytest.approx(2.5)
    # two fair coins on {0, 1}: max is 0 with probability 1/4
    assert pol.expected_max([np.array([0.0, 1.0]), np.array([0.0, 1.0])]) == pytest.approx(0.75)
    assert pol.expected_max([np.array([4.0])]) == 4.0


def test_a_step_up_then_down_reconfigures_at_the_second_confirming_decision(catalog):
    # sizes 1 until 900 ms, 2 from 1000 to 2900 ms, 1 again from 3000 ms
    def size(t):
        return 2 if 1000 <= t < 3000 else 1

    decisions = pol.replay(config(), catalog, 0, every_100ms(size, 4000), FREE)
    times = [d.t_ms for d in decisions]
    # first decision once 4 batches are in the window (t=300), then every >= 250 ms at a batch
    assert times[:6] == [300.0, 600.0, 900.0, 1200.0, 1500.0, 1800.0]
    switches = [(d.t_ms, d.plan) for d in decisions if d.reconfigure]
    # at 1500 the window (1000, 1500] holds only batches of 2: the thin plan wins once; at 1800 twice
    assert switches == [(1800.0, 1), (3600.0, 0)]
    by_time = {d.t_ms: d for d in decisions}
    assert by_time[1500.0].reason == "current plan loses 1/2"
    assert by_time[1800.0].objective_ms == pytest.approx((11.0, 10.0))
    assert by_time[1800.0].gain_ms == pytest.approx(1.0)
    assert "expected latency 11.0 -> 10.0 ms" in by_time[1800.0].reason


def test_a_mixed_window_is_weighted_by_requests(catalog):
    # window (700, 1200]: two batches of 1 and three of 2 -> J(fat) = (2*6 + 3*2*11) / 8 = 9.75 < 10
    state = pol.initial_state(0)
    for t, n, b in every_100ms(lambda t: 2 if t >= 1000 else 1, 1200):
        state = pol.observe(config(), state, t, n, b)
    assert pol.histogram(state) == {1: 2, 2: 3}
    assert catalog.objective(0, pol.histogram(state)) == pytest.approx(9.75)
    assert catalog.objective(1, pol.histogram(state)) == pytest.approx(10.0)


def test_a_single_losing_decision_never_switches(catalog):
    decisions = pol.replay(config(confirmations=3), catalog, 0, every_100ms(lambda t: 2, 1000), FREE)
    assert [(d.t_ms, d.reconfigure) for d in decisions] == [(300.0, False), (600.0, False), (900.0, True)]


def test_a_gain_that_does_not_repay_the_switch_is_refused(catalog):
    costly = pol.SwitchModel(start_ms=4000.0, startup_sensitivity=1.7, standby=0)  # no warm worker: respawn
    decisions = pol.replay(config(payback_ms=1000.0), catalog, 0, every_100ms(lambda t: 2, 2000), costly)
    assert not any(d.reconfigure for d in decisions)
    assert decisions[-1].reason == "gain does not repay the switch"
    assert decisions[-1].kind == "respawn" and decisions[-1].cost_ms > 1000
    # the same sequence with a long enough payback horizon switches
    patient = pol.replay(config(payback_ms=1e7), catalog, 0, every_100ms(lambda t: 2, 2000), costly)
    assert [d.t_ms for d in patient if d.reconfigure] == [600.0]


def test_a_backlog_of_a_full_batch_switches_to_the_highest_throughput_plan(catalog):
    # batches of 1 favour the fat plan, but a backlog >= max_batch means overload
    decisions = pol.replay(config(), catalog, 0, every_100ms(lambda t: 1, 1000, backlog=lambda t: 2 if t >= 400 else 0), FREE)
    switches = [d for d in decisions if d.reconfigure]
    assert [(d.t_ms, d.plan, d.mode) for d in switches] == [(900.0, 1, "overload")]
    assert "overload: backlog 2 >= 2" in switches[0].reason


def test_no_decision_while_a_switch_is_in_progress(catalog):
    decisions = pol.replay(config(payback_ms=1e7), catalog, 0, every_100ms(lambda t: 2, 3000), pol.SwitchModel(),
                           restart_ms=1000.0)
    switches = [d for d in decisions if d.reconfigure]
    assert [d.t_ms for d in switches] == [600.0]
    assert not [d for d in decisions if 600.0 < d.t_ms < 1600.0]  # observing, not deciding, until it serves
    assert [d.t_ms for d in decisions if d.t_ms >= 1600.0][0] == 1600.0


def test_the_first_plan_is_the_plan_for_the_first_formed_batch(catalog):
    assert pol.first_plan(catalog, 1) == 0  # 6 ms vs 10 ms: only the fat plan is near the best
    assert pol.first_plan(catalog, 2) == 1  # 10 vs 11 ms: both near, the thin plan has the higher throughput
    assert pol.first_plan(catalog, 99) == 1  # clamped to max_batch
    assert pol.first_batch_size([5.0, 6.0, 14.0, 16.0, 40.0], 8, 10.0) == 3
    assert pol.first_batch_size([5.0, 6.0, 14.0, 16.0, 40.0], 2, 10.0) == 2


def test_policy_specs_and_overrides_parse_or_name_the_bad_part():
    assert pol.parse_policy("packrat") == ("packrat", ())
    assert pol.parse_policy("packrat:window_ms=1000,overload=false") == ("packrat", ("window_ms=1000", "overload=false"))
    assert pol.parse_policy("packrat-ewma") == ("packrat-ewma", ())
    cfg = pol.parse_overrides(["window_ms=1000", "overload=false", "confirmations=3"])
    assert (cfg.window_ms, cfg.overload, cfg.confirmations) == (1000.0, False, 3)
    with pytest.raises(pol.PolicyError, match="unknown policy 'greedy'"):
        pol.parse_policy("greedy")
    with pytest.raises(pol.PolicyError, match="'nope=1'"):
        pol.parse_overrides(["nope=1"])
    with pytest.raises(pol.PolicyError, match="'abc' is not a int"):
        pol.parse_overrides(["confirmations=abc"])
    with pytest.raises(pol.PolicyError, match="confirmations must be an integer >= 1"):
        pol.PolicyConfig(confirmations=0)
    with pytest.raises(pol.PolicyError, match="takes no options"):
        pol.parse_policy("packrat-ewma:window_ms=3")


def test_the_switch_model_prices_start_up_and_warm_up_as_measured():
    sw = pol.SwitchModel()
    # 2 x 1t serving on 2 cores, one instance starting: oversubscription 3/2
    assert sw.startup_factor(1, 1.5) == pytest.approx(1.85)
    # 1 x 2t serving, two starting: oversubscription 2 -> 1 + 1.7 * 1 * 2
    assert sw.startup_factor(2, 2.0) == pytest.approx(4.4)
    assert sw.startup_factor(16, 2.0) == sw.startup_factor(2, 2.0)  # capped at the measured range
    assert sw.startup_factor(4, 1.0) == 1.0  # spare cores: no slowdown
    assert sw.warmup_factor(2.0) == pytest.approx(2.2)
    assert sw.penalty_ms(ONE_FAT, ONE_FAT, 2, 5.0) > 0


def test_the_real_runners_chunked_execution_prices_a_batch_as_runs_of_the_plans_size():
    chunked = pol.PlanCatalog(tiny_profile(), 2, 2, execution="chunks")
    assert chunked.cost(0, 2) == 2 * 6.0  # two runs of the batch-1 plan
    assert chunked.cost(1, 1) == 10.0  # one run of the batch-2 plan, padded
    with pytest.raises(pol.PolicyError, match="execution"):
        pol.PlanCatalog(tiny_profile(), 2, 2, execution="whatever")


# ------------------------------------------------- kinds of switch and their prices (issue 28)

from packrat_sim.switching import RESPAWN, REROUTE, RETARGET, switch_kind  # noqa: E402


def test_the_switch_model_asks_the_one_rule_for_the_kind_with_one_warm_worker_per_core_by_default():
    sw = pol.SwitchModel()
    assert sw.standby_workers(ONE_FAT, 2) == 1 and sw.standby_workers(TWO_THIN, 2) == 0
    assert sw.kind(ONE_FAT, TWO_THIN, 2) == RETARGET  # the second instance comes from the standby worker
    assert sw.kind(TWO_THIN, ONE_FAT, 2) == RETARGET  # one worker retargets, the other parks
    assert sw.kind(ONE_FAT, Plan((Instance(2, 2),), 2, 2), 2) == REROUTE  # same threads, new split
    assert pol.SwitchModel(standby=0).kind(ONE_FAT, TWO_THIN, 2) == RESPAWN  # explicit: no warm worker
    for old, new in ((ONE_FAT, TWO_THIN), (TWO_THIN, ONE_FAT), (ONE_FAT, ONE_FAT)):
        for standby in (0, 1, 2):
            assert pol.SwitchModel(standby=standby).kind(old, new, 2) == switch_kind(old, new, standby)


def test_each_kind_is_priced_cheapest_first_for_the_same_pair():
    sw = pol.SwitchModel(reroute_ms=0.1, retarget_ms=20.0, first_batch_factor=1.5)
    # the new plan's batch takes 10 ms: a re-route 0.1 ms; a retarget 20 ms + half of a 10 ms
    # first batch; a respawn the start-up model (serving 1 x 2t beside two starting: 4.4x for 4 s)
    prices = [sw.price_ms(kind, ONE_FAT, TWO_THIN, 2, 10.0) for kind in (REROUTE, RETARGET, RESPAWN)]
    assert prices[:2] == pytest.approx([0.1, 25.0])
    assert prices[2] == pytest.approx(sw.penalty_ms(ONE_FAT, TWO_THIN, 2, 10.0)) and prices[2] > 4000 * 3.4
    assert prices == sorted(prices)
    assert [sw.pause_ms(k) for k in (REROUTE, RETARGET, RESPAWN)] == [0.1, 20.0, 0.0]
    with pytest.raises(pol.PolicyError, match="switch kind must be one of .*, got 'restart'"):
        sw.price_ms("restart", ONE_FAT, TWO_THIN, 2, 10.0)
    with pytest.raises(pol.PolicyError, match="first_batch_factor"):
        pol.SwitchModel(first_batch_factor=0.5)
    with pytest.raises(pol.PolicyError, match="standby"):
        pol.SwitchModel(standby=-1)


@pytest.mark.parametrize("standby", [None, 0, 1])
def test_the_kind_the_policy_prices_is_the_kind_switch_kind_gives_for_every_pair_of_plans(standby):
    from packrat_sim.profile import builtin_profile

    cat = pol.PlanCatalog(builtin_profile("cnn-4", max_batch=16), 4, 16)
    sw = pol.SwitchModel(standby=standby)
    for i, a in enumerate(cat.plans):
        warm = 4 - len(a.instances) if standby is None else standby
        for j, b in enumerate(cat.plans):
            kind, price = cat.switch_cost(i, j, sw)
            assert kind == switch_kind(a, b, warm)
            assert price == sw.price_ms(kind, a, b, 4, cat.cost(j, b.batch)) == cat.switch_penalty_ms(i, j, sw)


def test_every_decision_carries_the_kind_of_its_switch_and_its_json_shows_it(catalog):
    decisions = pol.replay(config(), catalog, 0, every_100ms(lambda t: 2 if 1000 <= t < 3000 else 1, 4000))
    switches = [d for d in decisions if d.reconfigure]
    assert [(d.t_ms, d.plan, d.kind) for d in switches] == [(1800.0, 1, RETARGET), (3600.0, 0, RETARGET)]
    sw = pol.SwitchModel()  # priced by the default (measured) model: retarget_ms + the first batch's extra
    assert switches[0].cost_ms == pytest.approx(sw.retarget_ms + (sw.first_batch_factor - 1) * 10.0)  # 2 x 1t: 10 ms
    assert all(d.kind is None for d in decisions if d.reason == "current plan is best")
    assert switches[0].to_json(catalog)["kind"] == "retarget"


def test_a_near_tie_goes_to_the_plan_with_more_capacity(catalog):
    # batches of 1: the fat plan's J is 6 ms, the thin one's 10 ms; with min_gain 0.7 both are
    # within noise of the best, and the thin plan (more requests per ms on full batches) keeps serving
    state = pol.initial_state(1)
    for t, n, b in every_100ms(lambda t: 1, 300):
        state = pol.observe(config(min_gain=0.7), state, t, n, b)
    _, d = pol.decide(config(min_gain=0.7), catalog, state, 300.0)
    assert (d.plan, d.reconfigure, d.reason) == (1, False, "current plan is best")
    _, d = pol.decide(config(min_gain=0.03), catalog, state, 300.0)
    assert d.reason == "current plan loses 1/2"


def test_the_current_plan_must_lose_twice_in_a_row_whichever_candidate_leads():
    # 3 cores: the current plan 1 x 2t + 1 x 1t loses to 1 x 3t on batches of 1 (8 -> 7 ms),
    # then to 3 x 1t on batches of 3 (18 -> 8 ms): the second loss switches, to the last leader
    cells = {(1, 1): 8.0, (1, 2): 12.0, (1, 4): 17.0, (2, 1): 8.0, (2, 2): 18.0, (2, 4): 26.0,
             (3, 1): 7.0, (3, 2): 10.0, (3, 4): 30.0}
    cat = pol.PlanCatalog(Profile(model="tiny3", cells=tuple(Cell.from_samples(t, b, [ms]) for (t, b), ms in cells.items())),
                          3, 4)
    assert [p.describe() for p in cat.plans][:3] == ["1 x 3t x 1", "1 x 2t x 1 + 1 x 1t x 1", "3 x 1t x 1"]
    cfg = config(max_batch=4, capacity_floor=0.0)
    decisions = pol.replay(cfg, cat, 1, every_100ms(lambda t: 1 if t < 400 else 3, 600))
    assert [(d.t_ms, d.plan, d.reason[:26]) for d in decisions] == [
        (300.0, 1, "current plan loses 1/2"), (600.0, 2, "batches formed in the last")]
