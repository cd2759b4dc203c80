"""The policy's fast paths (issue 32, item 2) take exactly the decisions of the plain rule.

``ref_*`` below is the rule as it was written before the speed-ups (a pure, straightforward
computation: the window filtered anew on every observation, the histogram rebuilt, every
candidate's objective summed with :meth:`PlanCatalog.objective`, the switch priced on every
decision). Seeded random batch sequences drive it and the fast :func:`observe` / :func:`decide`
/ :func:`observe_many` side by side; states and :class:`Decision` objects must be equal --
floats compared with ``==``, so a last-bit difference (which could flip a ``min_gain`` near
tie) fails.
"""

from __future__ import annotations

import math
import random
import runpy
from dataclasses import replace

import numpy as np
import pytest

from packrat_sim import policy as pol
from packrat_sim import validate
from packrat_sim.profile import Cell, Profile, builtin_profile
from packrat_sim.switching import REROUTE

# ------------------------------------------------------------------ the reference rule


def ref_observe(config, state, t_ms, size, backlog=0):
    t = pol._num(t_ms, "t_ms")  # the module's number check, unchanged
    n = validate.integer(size, "batch size", low=1, error=pol.PolicyError, numpy=True)
    validate.integer(backlog, "backlog", low=0, error=pol.PolicyError, numpy=True)
    lo = t - config.window_ms
    recent = tuple(x for x in state.recent if x[0] > lo) + ((t, n),)
    return replace(state, recent=recent, backlog=int(backlog), _checked=None)


def ref_histogram(state):
    h = {}
    for _, n in state.recent:
        h[n] = h.get(n, 0) + 1
    return h


def ref_best(config, catalog, state):
    cur = state.current
    if config.overload and state.backlog >= config.max_batch:
        best = max(range(len(catalog.plans)), key=lambda i: (catalog.throughput(i), -i))
        return "overload", best, (catalog.max_batch / catalog.throughput(cur),
                                  catalog.max_batch / catalog.throughput(best))
    hist = ref_histogram(state)
    top = max(catalog.throughput(i) for i in range(len(catalog.plans)))
    eligible = [i for i in range(len(catalog.plans))
                if i == cur or catalog.throughput(i) >= config.capacity_floor * top]
    scores = {i: catalog.objective(i, hist) for i in eligible}
    least = min(scores.values())
    near = [i for i in eligible if scores[i] <= least * (1.0 + config.min_gain)]
    best = max(near, key=lambda i: (catalog.throughput(i), -scores[i], -i))
    return "latency", best, (scores[cur], scores[best])


def ref_switch_cost(catalog, i_from, i_to, switch):
    a, b = catalog.plans[i_from], catalog.plans[i_to]
    kind = switch.kind(a, b, catalog.cores)
    return kind, switch.price_ms(kind, a, b, catalog.cores, catalog.cost(i_to, b.batch))


def ref_decide(config, catalog, state, t_ms, switch=pol.SwitchModel()):
    if state.switching:
        return state, None
    if state.last_decision_ms is not None and t_ms - state.last_decision_ms < config.decide_every_ms:
        return state, None
    lo = t_ms - config.window_ms
    recent = tuple(x for x in state.recent if x[0] > lo)
    if len(recent) < config.min_batches:
        return replace(state, recent=recent, _checked=None), None
    state = replace(state, recent=recent, last_decision_ms=t_ms, _checked=None)
    cur = state.current
    mode, best, objective = ref_best(config, catalog, state)
    gain = objective[0] - objective[1]
    if best == cur:
        return (replace(state, leader=None, streak=0),
                pol.Decision(t_ms, cur, False, "current plan is best", mode, objective, 0.0, 0.0))
    kind, cost = ref_switch_cost(catalog, cur, best, switch)
    refused = ("gain below min_gain" if gain < config.min_gain * objective[0] else
               "gain does not repay the switch" if gain * config.payback_ms < objective[0] * cost else None)
    if refused is not None:
        return replace(state, leader=best, streak=0), pol.Decision(t_ms, cur, False, refused, mode, objective, gain,
                                                                   cost, kind)
    streak = state.streak + 1
    if streak < config.confirmations:
        return (replace(state, leader=best, streak=streak),
                pol.Decision(t_ms, cur, False, f"current plan loses {streak}/{config.confirmations}", mode,
                             objective, gain, cost, kind))
    if mode == "overload":
        reason = (f"overload: backlog {state.backlog} >= {config.max_batch}; highest-throughput plan "
                  f"({catalog.throughput(best) * 1000:.0f} vs {catalog.throughput(cur) * 1000:.0f} req/s on full batches)")
    else:
        sizes = sorted(ref_histogram(state))
        reason = (f"batches formed in the last {config.window_ms / 1000:g} s: sizes {sizes[0]}..{sizes[-1]} "
                  f"({len(state.recent)} batches); expected latency {objective[0]:.1f} -> {objective[1]:.1f} ms")
    state = replace(state, current=best, leader=None, streak=0, switching=kind != REROUTE)
    return state, pol.Decision(t_ms, best, True, reason, mode, objective, gain, cost, kind)


# ------------------------------------------------------------------ catalogs and sequences


def _profile(model: str, cells: dict) -> Profile:
    return Profile(model=model, cells=tuple(Cell.from_samples(t, b, list(ms)) for (t, b), ms in cells.items()))


def _catalogs() -> dict:
    tiny = _profile("tiny", {(1, 1): [10.0], (1, 2): [20.0], (2, 1): [6.0], (2, 2): [11.0]})
    # every plan of a batch of 2 takes exactly 10 ms: objectives tie exactly, throughput decides
    tie = _profile("tie", {(1, 1): [10.0], (1, 2): [20.0], (2, 1): [6.0], (2, 2): [10.0]})
    noisy = _profile("noisy3", {(1, 1): [8.0, 8.4, 9.1], (1, 2): [12.0, 12.5], (1, 4): [17.0, 18.2, 17.5],
                                (2, 1): [8.0, 7.7], (2, 2): [18.0, 18.6], (2, 4): [26.0, 25.1],
                                (3, 1): [7.0, 7.3], (3, 2): [10.0, 10.4], (3, 4): [30.0, 29.0]})
    return {
        "tiny": (pol.PlanCatalog(tiny, 2, 2), 2),
        "tie": (pol.PlanCatalog(tie, 2, 2), 2),
        "noisy3": (pol.PlanCatalog(noisy, 3, 4), 4),
        "noisy3-chunks": (pol.PlanCatalog(noisy, 3, 4, execution="chunks"), 4),
        "cnn-4": (pol.PlanCatalog(builtin_profile("cnn-4", max_batch=16), 4, 16), 16),
        "cnn-16": (pol.PlanCatalog(builtin_profile("cnn-16", max_batch=64), 16, 64), 64),
    }


CATALOGS = _catalogs()


def random_config(rng: random.Random, max_batch: int) -> pol.PolicyConfig:
    return pol.PolicyConfig(
        window_ms=rng.choice([100.0, 500.0, 2000.0, 3000.0]),
        decide_every_ms=rng.choice([0.0, 50.0, 250.0]),
        min_batches=rng.choice([1, 2, 4, 6]),
        confirmations=rng.choice([1, 2, 3]),
        payback_ms=rng.choice([10.0, 1000.0, 10000.0, 1e7]),
        min_gain=rng.choice([0.0, 1e-12, 0.001, 0.03, 0.2, 0.7]),
        capacity_floor=rng.choice([0.0, 0.5, 0.9, 1.0]),
        overload=rng.random() < 0.8,
        max_batch=max_batch,
    )


def random_switch(rng: random.Random) -> pol.SwitchModel:
    return pol.SwitchModel(standby=rng.choice([None, None, 0, 1, 2]), start_ms=rng.choice([0.0, 4000.0]),
                           retarget_ms=rng.choice([0.0, 2.0, 50.0]))


def random_batches(rng: random.Random, max_batch: int, count: int):
    """(t_ms, size, backlog): load regimes that change every few dozen batches, gaps from
    bursts (equal times) to idle seconds, backlogs that now and then reach max_batch."""
    t = rng.choice([0.0, 0.5, 1000.0])
    out = []
    while len(out) < count:
        lo = rng.randint(1, max_batch)
        hi = rng.randint(lo, max_batch)
        gap = rng.choice([0.0, 1.0, 10.0, 40.0, 300.0])
        overload = rng.random() < 0.2
        for _ in range(rng.randint(5, 60)):
            t += rng.choice([0.0, gap * rng.random(), gap, 2500.0 if rng.random() < 0.02 else gap])
            backlog = rng.randint(max_batch, 3 * max_batch) if overload else rng.choice([0, 0, 1, max_batch // 2])
            out.append((t, rng.randint(lo, hi), backlog))
    return out[:count]


def drive(rng: random.Random, catalog, config, switch, batches, *, hand_edits: bool):
    """Run the reference and the fast rule side by side (each batch observed, then a decision
    offered, as the real runner and the simulator's old loop did, now and then at a later
    time; a retarget or respawn finishing a random number of batches later); assert equal
    states and decisions."""
    start = rng.randrange(len(catalog.plans))
    ref, new = pol.initial_state(start), pol.initial_state(start)
    pending = None
    decisions = 0
    for k, (t, n, backlog) in enumerate(batches):
        if pending is not None and k >= pending:
            ref, new, pending = pol.switched(ref), pol.switched(new), None
        if hand_edits and rng.random() < 0.03:  # what the real runner does after a failed switch
            other = rng.randrange(len(catalog.plans))
            ref, new = replace(ref, current=other), replace(new, current=other)
        if hand_edits and rng.random() < 0.02:  # a window built by hand (the fast path must notice)
            kept = tuple(x for x in new.recent if rng.random() < 0.8)
            ref, new = replace(ref, recent=kept), replace(new, recent=kept)
        ref = ref_observe(config, ref, t, n, backlog)
        new = pol.observe(config, new, t, n, backlog)
        assert new == ref
        at = t + (rng.choice([1.0, 300.0, 2500.0]) if rng.random() < 0.1 else 0.0)  # now and then a later offer
        ref, d_ref = ref_decide(config, catalog, ref, at, switch)
        new, d_new = pol.decide(config, catalog, new, at, switch)
        assert d_new == d_ref
        assert new == ref
        if d_new is not None:
            decisions += 1
            assert pol.histogram(new) == ref_histogram(ref)
            assert list(pol.histogram(new)) == list(ref_histogram(ref))  # the same order: the sums' order
            if d_new.reconfigure and new.switching:
                pending = k + rng.choice([1, 1, 3, 20])
    return decisions


@pytest.mark.parametrize("name", sorted(CATALOGS))
@pytest.mark.parametrize("seed", range(6))
def test_the_fast_rule_takes_the_reference_decisions_on_random_batch_sequences(name, seed):
    catalog, max_batch = CATALOGS[name]
    rng = random.Random(f"{name}/{seed}")
    total = 0
    for _ in range(4):
        config = random_config(rng, max_batch)
        total += drive(rng, catalog, config, random_switch(rng), random_batches(rng, max_batch, 300),
                       hand_edits=seed % 2 == 1)
    assert total > 0


@pytest.mark.parametrize("seed", range(4))
def test_out_of_order_times_and_sizes_above_max_batch_take_the_plain_path_with_the_same_result(seed):
    catalog, max_batch = CATALOGS["cnn-4"]
    rng = random.Random(seed)
    config = random_config(rng, max_batch)
    batches = [(max(0.0, t + rng.choice([0.0, 0.0, 0.0, -30.0])), n + (rng.random() < 0.05) * max_batch, b)
               for t, n, b in random_batches(rng, max_batch, 300)]
    drive(rng, catalog, config, pol.SwitchModel(), batches, hand_edits=True)


# ------------------------------------------------------------------ the simulator's way: observe_many


@pytest.mark.parametrize("seed", range(8))
def test_observations_kept_aside_until_a_decision_is_due_give_the_same_states_and_decisions(seed):
    """The simulator observes formed batches only when :func:`decision_due` says a decision
    would look at them, all at once with :func:`observe_many`."""
    name = sorted(CATALOGS)[seed % len(CATALOGS)]
    catalog, max_batch = CATALOGS[name]
    rng = random.Random(100 + seed)
    config, switch = random_config(rng, max_batch), random_switch(rng)
    start = rng.randrange(len(catalog.plans))
    ref, new = pol.initial_state(start), pol.initial_state(start)
    aside: list = []
    pending = None
    for k, (t, n, backlog) in enumerate(random_batches(rng, max_batch, 800)):
        if pending is not None and k >= pending:  # switched() commutes with the observations kept aside
            ref, new, pending = pol.switched(ref), pol.switched(new), None
        ref = ref_observe(config, ref, t, n, backlog)
        ref, d_ref = ref_decide(config, catalog, ref, t, switch)
        aside.append((t, n))
        if not pol.decision_due(config, new, t):
            assert d_ref is None
            continue
        new = pol.observe_many(config, new, aside, backlog)
        aside = []
        new, d_new = pol.decide(config, catalog, new, t, switch)
        assert (new, d_new) == (ref, d_ref)
        if d_new is not None and d_new.reconfigure and new.switching:
            pending = k + rng.choice([1, 5, 30])
    assert pol.observe_many(config, new, aside, backlog) == ref  # the batches still aside, handed over


def test_observe_many_is_observe_for_each_batch_including_errors():
    config = pol.PolicyConfig(window_ms=100.0)
    state = pol.observe(config, pol.initial_state(0), 5.0, 1)
    batches = [(10.0, 2), (10.0, 3), (150.0, 1), (160.0, 4)]
    folded = state
    for t, n in batches:
        folded = pol.observe(config, folded, t, n, 7)
    assert pol.observe_many(config, state, batches, 7) == folded
    assert pol.observe_many(config, state, tuple(batches), 7) == folded
    assert pol.observe_many(config, state, [], 7) is state
    backwards = [(10.0, 2), (3.0, 1)]  # out of time order: observed one by one, as observe would
    assert pol.observe_many(config, state, backwards, 0) == pol.observe(config, pol.observe(config, state, 10.0, 2), 3.0, 1)
    for bad, message in (([(10.0, 0)], "batch size must be an integer >= 1, got 0"),
                         ([(10.0, 2), (math.nan, 1)], "t_ms must be a finite number, got nan"),
                         ([(10.0, True)], "batch size must be an integer >= 1, got True")):
        with pytest.raises(pol.PolicyError, match=message):
            pol.observe_many(config, state, bad, 0)
    with pytest.raises(pol.PolicyError, match="backlog must be an integer >= 0, got -1"):
        pol.observe_many(config, state, batches, -1)


def test_decision_due_is_exactly_when_decide_looks_at_the_window():
    catalog, _ = CATALOGS["tiny"]
    config = pol.PolicyConfig(window_ms=500.0, decide_every_ms=250.0, min_batches=1, max_batch=2)
    state = pol.observe(config, pol.initial_state(0), 0.0, 1)
    assert pol.decision_due(config, state, 0.0)
    state, d = pol.decide(config, catalog, state, 0.0)
    assert d is not None
    assert not pol.decision_due(config, state, 249.9) and pol.decision_due(config, state, 250.0)
    assert pol.decide(config, catalog, state, 249.9) == (state, None)
    assert not pol.decision_due(config, replace(state, switching=True), 900.0)


def test_the_simulator_keeping_batches_aside_decides_as_observing_every_batch(monkeypatch):
    """A run where every formed batch reaches the policy at once (decision_due always true:
    one observation and one decide call per batch, the loop as it was) and the normal run
    agree on every decision, switch and statistic."""
    from packrat_sim import simulator as sim
    from packrat_sim.workload import Batching, Step, Steps

    profile = builtin_profile("cnn-4", max_batch=16)
    wl = Steps((Step(50, 4), Step(1500, 3), Step(30, 4), Step(3000, 2), Step(200, 3)), Batching(max_batch=16))
    eager = pol.PolicyConfig(min_gain=0.0, confirmations=1, capacity_floor=0.0, payback_ms=1e7)
    kinds = []
    for cfg in (None, sim.SimConfig(policy=eager, switch=pol.SwitchModel(standby=0, start_ms=300.0)),
                sim.SimConfig(policy=replace(eager, decide_every_ms=50.0), switch=pol.SwitchModel(start_ms=300.0))):
        normal = sim.simulate(profile, 4, wl, "packrat", seed=5, config=cfg)
        with monkeypatch.context() as m:
            m.setattr(pol, "decision_due", lambda config, state, t_ms: True)
            every = sim.simulate(profile, 4, wl, "packrat", seed=5, config=cfg)
        assert normal.decisions == every.decisions and len(normal.decisions) > 20
        assert normal.reconfigurations == every.reconfigurations
        assert repr(normal.stats) == repr(every.stats)
        kinds += [r.kind for r in normal.reconfigurations]
    assert len(kinds) >= 5 and "respawn" in kinds  # observations go on during a seconds-long respawn


# ------------------------------------------------------------------ exactness of the objective


def test_objectives_are_the_reference_floats_in_the_histograms_order():
    """The reference sums in the histogram's order (first appearance in the window), and a
    float sum depends on its order; the fast scoring follows it, so every permutation of a
    histogram gets its own reference's floats, last bits included."""
    catalog, max_batch = CATALOGS["cnn-16"]
    rng = random.Random(7)
    plans = tuple(range(len(catalog.plans)))
    differing = 0
    for _ in range(60):
        sizes = rng.sample(range(1, max_batch + 1), rng.choice([1, 2, 3, 5, 6, 7, 12, 20, 40]))
        counts = {n: rng.randint(1, 300) for n in sizes}
        orders = [list(sizes), list(reversed(sizes)), rng.sample(sizes, len(sizes))]
        results = []
        for order in orders:
            hist = {n: counts[n] for n in order}
            ref = [catalog.objective(i, hist) for i in plans]
            got = catalog.objectives(plans, hist)
            assert [x.hex() for x in got] == [x.hex() for x in ref]
            results.append(ref)
        differing += results[0] != results[1] or results[0] != results[2]
    assert differing > 0  # the order matters somewhere: a running sum in another order would differ


def test_near_ties_go_the_same_way_when_scores_tie_exactly():
    catalog, _ = CATALOGS["tie"]  # batches of 2: both plans take exactly 10 ms
    for min_gain in (0.0, 0.03):
        config = pol.PolicyConfig(window_ms=500.0, decide_every_ms=0.0, min_batches=1, max_batch=2, min_gain=min_gain)
        for start in (0, 1):
            state = pol.observe(config, pol.initial_state(start), 0.0, 2)
            ref = ref_observe(config, pol.initial_state(start), 0.0, 2)
            assert pol.decide(config, catalog, state, 0.0) == ref_decide(config, catalog, ref, 0.0)
            _, d = pol.decide(config, catalog, state, 0.0)
            assert d.objective_ms[0] == d.objective_ms[1] == 10.0 or d.reconfigure is False


def test_objectives_fall_back_to_the_plain_loop_outside_the_matrix():
    catalog, max_batch = CATALOGS["cnn-4"]
    hist = {max_batch + 3: 2, 1: 5}
    assert catalog.objectives([0, 1], hist) == [catalog.objective(0, hist), catalog.objective(1, hist)]
    assert catalog.objectives([], {1: 1}) == []
    with pytest.raises(ZeroDivisionError):
        catalog.objectives([0], {})


# ------------------------------------------------------------------ the pieces


def test_states_and_decisions_built_fast_are_the_dataclasses_own():
    recent = ((1.0, 2), (3.0, 4))
    fast = pol._state(pol.PolicyState, 2, recent, 5, 1, 1, 3.0, True, recent)
    slow = pol.PolicyState(2, recent, 5, 1, 1, 3.0, True, recent)
    assert fast == slow and vars(fast) == vars(slow) and repr(fast) == repr(slow) and hash(fast) == hash(slow)
    with pytest.raises(AttributeError):
        fast.current = 3  # type: ignore[misc]  # still frozen
    d = pol._decision(1.0, 2, True, "why", "latency", (2.0, 1.0), 1.0, 0.5, "retarget")
    assert d == pol.Decision(1.0, 2, True, "why", "latency", (2.0, 1.0), 1.0, 0.5, "retarget")
    assert vars(d) == vars(pol.Decision(1.0, 2, True, "why", "latency", (2.0, 1.0), 1.0, 0.5, "retarget"))


def test_the_cache_field_is_not_part_of_the_states_value():
    config = pol.PolicyConfig()
    state = pol.observe(config, pol.initial_state(0), 1.0, 2)
    assert state._checked is state.recent
    by_hand = pol.PolicyState(0, state.recent)
    assert by_hand == state and hash(by_hand) == hash(state) and "_checked" not in repr(state)
    assert pol.observe(config, by_hand, 2.0, 3) == pol.observe(config, state, 2.0, 3)
    # a window that is not in time order is never taken for a sorted one
    unsorted = pol.PolicyState(0, ((5.0, 1), (1.0, 2), (6.0, 1)))
    assert pol.observe(config, unsorted, 2001.5, 1) == ref_observe(config, unsorted, 2001.5, 1)


def test_observations_are_still_checked():
    config = pol.PolicyConfig()
    state = pol.initial_state(0)
    for args, message in (((-1.0, 1), "t_ms must be >= 0, got -1.0"), ((math.inf, 1), "t_ms must be a finite"),
                          ((math.nan, 1), "t_ms"), ((1.0, 0), "batch size"), ((1.0, True), "batch size"),
                          ((1.0, 2.0), "batch size"), ((1.0, 1, -1), "backlog"), ((1.0, 1, 1.5), "backlog")):
        with pytest.raises(pol.PolicyError, match=message):
            pol.observe(config, state, *args)
    # numpy scalars and ints are accepted as before, stored as float / int
    s = pol.observe(config, state, np.float64(2.0), np.int64(3), np.int32(1))
    assert s.recent == ((2.0, 3),) and type(s.recent[0][1]) is int and type(s.backlog) is int
    assert pol.observe(config, state, 2, 3) == ref_observe(config, state, 2, 3)


def test_switch_prices_are_memoised_per_equal_model():
    catalog, _ = CATALOGS["cnn-4"]
    a, b = pol.SwitchModel(), pol.SwitchModel(standby=0)
    n = len(catalog.plans)
    for sw in (a, b, replace(a), a):
        for i in range(n):
            for j in range(n):
                assert catalog.switch_cost(i, j, sw) == ref_switch_cost(catalog, i, j, sw)

    class Doubled(pol.SwitchModel):
        def price_ms(self, kind, old, new, cores, warm_batch_ms):
            return 2 * super().price_ms(kind, old, new, cores, warm_batch_ms)

    doubled = Doubled()
    assert catalog.switch_cost(0, 1, doubled)[1] == 2 * catalog.switch_cost(0, 1, a)[1]


def test_the_speed_benchmark_reports_each_policy_and_the_md1_loop(capsys):
    bench = runpy.run_path("benchmarks/sim_speed.py", run_name="not_main")
    assert bench["main"](["--requests", "3000", "--rate", "400,40", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    for name in ("packrat", "fat", "thin", "M/D/1 loop", "lean loop"):
        assert out.count(f"  {name} ") == 2
    assert "overall" not in out
    assert out.count("1,000,000 requests/s target") == 2 and out.count("M/D/1 loop of the same requests") == 2


def test_with_a_corun_model_the_catalog_holds_the_plans_optimal_under_it():
    from packrat_sim.interference import optimize_with_interference
    from packrat_sim.optimizer import OptimizerOptions, optimize
    from packrat_sim.policy import PlanCatalog
    from packrat_sim.profile import builtin_profile

    profile = builtin_profile("cnn-16+interference")
    catalog = PlanCatalog(profile, 16, 32)
    for b in (1, 8, 32):
        calibrated = optimize_with_interference(profile, b, 16, OptimizerOptions()).plan
        assert catalog.plans[catalog.best_for[b]].instances == calibrated.instances
    isolated = {optimize(profile, b, 16).instances for b in range(1, 33)}
    assert {p.instances for p in catalog.plans} != isolated  # the co-run model changes the candidates
