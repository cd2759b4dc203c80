"""Hardware benchmark: fat vs thin vs the optimizer's plan vs every plan the machine allows.

:func:`run_bench` returns plain data (the UI renders it). For each batch size B:

* the candidate plans are every configuration on T cores (:func:`feasible_plans`: a
  multiset of instances (t_j, b_j) with sum t_j <= T, sum b_j = B, every b_j >= 1;
  heterogeneous included, idle cores allowed), capped at ``max_plans`` (the fat, thin and
  optimizer plans are always kept; ``oracle_complete`` says whether the cap cut it);
* all their pools are started side by side, then measured interleaved: in round i every
  plan runs one batch, in an order rotated by i (A B C, B C A, ...), so drift and
  co-tenant noise hit every plan alike; only one pool runs at a time;
* reported: median per plan, speedup over fat (fat median / plan median), the oracle's
  best (the fastest measured plan), the optimizer plan's regret against it
  (optimizer median / best median - 1), and one prediction per plan against its
  measured median: the :class:`~packrat_sim.predictor.Predictor`'s (measured dispatch +
  the slowest instance's L[t, b], times its co-run slowdown when calibrated), named in the
  report's ``prediction`` (``calibrated`` or ``isolated``). Every figure the report gives
  for a plan (its table entry, the optimizer's and the interference-aware plan's summary)
  is that one prediction.

The report's ``conditions`` (:func:`conditions_json`) say what the machine was doing during
the benchmark (a :class:`~real_runner.conditions.ConditionsProbe` watches it from before the
quick profile to the last measurement) and carry ``note``, the one line when the machine was
busy or the optimizer's plan was far off its prediction.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from packrat_sim import validate
from packrat_sim.errors import PackratError
from packrat_sim.interference import optimize_with_interference
from packrat_sim.optimizer import OptimizerOptions, optimize
from packrat_sim.plan import Instance, Plan, plan_latency
from packrat_sim.plan import fat as fat_plan
from packrat_sim.plan import thin as thin_plan
from packrat_sim.predictor import Predictor, baselines, best_plan, corun, priced_profile
from real_runner import topology as topo_mod
from real_runner.conditions import Conditions, ConditionsProbe, conditions_report
from real_runner.executor import InstancePool, start_side_by_side
from real_runner.models import get_spec, make_inputs, require_batch_memory


class BenchError(PackratError):
    """Bad benchmark input; the message names the value."""


def _thread_partitions(T: int, max_parts: int):
    """Non-increasing tuples of positive thread counts with sum <= T."""
    def rec(left, largest, parts):
        if parts:
            yield tuple(parts)
        if len(parts) >= max_parts:
            return
        for t in range(min(left, largest), 0, -1):
            yield from rec(left - t, t, parts + [t])
    yield from rec(T, T, [])


def feasible_plans(batch: int, cores: int, max_plans: int = 200) -> tuple[list[Plan], bool]:
    """Every distinct plan for ``batch`` on ``cores`` cores (see the module docstring), up to
    ``max_plans``; returns (plans, complete)."""
    seen: set[Plan] = set()
    out: list[Plan] = []
    for threads in _thread_partitions(cores, batch):
        k = len(threads)
        for cut in itertools.combinations(range(1, batch), k - 1):
            sizes = [b - a for a, b in zip((0,) + cut, cut + (batch,))]
            plan = Plan(tuple(Instance(t, b) for t, b in zip(threads, sizes)), batch, cores)
            if plan not in seen:
                seen.add(plan)
                out.append(plan)
                if len(out) >= max_plans:
                    return out, False
    return out, True


def _median(xs) -> float:
    return float(np.median(xs))


def _shape(p: Plan) -> Plan:
    """``p`` without pinned cores or prediction: the key under which a bench names its plans."""
    return Plan(tuple(Instance(i.threads, i.batch) for i in p.instances), p.batch, p.cores)


def run_bench(model: str, batches: Sequence[int], *, cores: int | None = None, iterations: int = 5,
              profile=None, topology: topo_mod.Topology | None = None, max_plans: int = 24,
              seed: int = 0, warmup: int = 2, on_progress: Callable[[str], None] | None = None,
              interference: bool = False, isolated: bool = False, probe: ConditionsProbe | None = None) -> dict:
    """Benchmark ``model`` at each batch size of ``batches`` on ``cores`` cores (default: all
    allowed CPUs). ``profile``: a packrat_sim Profile to plan and predict from (default: a
    quick profile measured now, with its co-run interference sweep when ``interference``).
    Calibrated by default (``packrat_sim.predictor.corun``): when the profile has a co-run
    model (and not ``isolated``) every plan is predicted with it, and the interference-aware
    plan is measured too and reported beside the isolated-profile plan, each with its regret
    against the measured oracle. ``corun``/``corun_model`` say which prediction was used and
    ``notes`` holds the no-co-run line when multi-instance plans were predicted without co-run
    data. ``probe``: what watches the machine while it measures (default: a new
    :class:`~real_runner.conditions.ConditionsProbe` of this process and its workers); what it
    saw is the report's ``conditions`` (:func:`conditions_json`). Returns a JSON-able dict (see
    the module docstring)."""
    get_spec(model)
    batches = [int(b) for b in batches]
    if not batches or any(b < 1 for b in batches):
        raise BenchError(f"batches must be positive integers, got {batches!r}")
    validate.positive_int(iterations, "iterations", error=BenchError)
    probe = (probe or ConditionsProbe()).start()  # before the quick profile: it measures too
    topo, T, say, profile = _setup(model, batches, cores, topology, profile, interference, on_progress)
    co = corun(profile, isolated)
    profile = priced_profile(profile, co)  # without its co-run model unless calibrated
    t_begin = time.monotonic()
    rows: list[dict[str, Any]] = []
    predictor = Predictor(profile)  # dispatch cost + slowest instance x co-run slowdown (when calibrated)
    multi = False  # whether a multi-instance plan was predicted (the no-co-run line)
    for B in batches:
        opt = optimize(profile, B, T, OptimizerOptions(exact_cores=False))
        aware = None
        if co.calibrated and profile.interference is not None and profile.interference.points:
            aware = optimize_with_interference(profile, B, T, OptimizerOptions(exact_cores=False)).plan
        fat, thin = fat_plan(B, T), thin_plan(B, T)
        plans, complete = feasible_plans(B, T, max_plans=max_plans)
        named: dict[Plan, list[str]] = {}
        roles = [("fat", fat), ("thin", thin), ("optimizer", opt)] + ([("interference-aware", aware)] if aware else [])
        for role, p in roles:
            named.setdefault(_shape(p), []).append(role)
        for p in named:
            if p not in plans:
                plans.append(p)
        multi = multi or any(len(p.instances) > 1 for p in plans)
        say(f"batch {B}: starting {len(plans)} plans side by side")
        samples = _run_interleaved(model, plans, B, iterations, topo, seed, warmup)
        meds = [_median(s) for s in samples]
        fat_ms = meds[plans.index(_shape(fat))]
        best = int(np.argmin(meds))
        entries: list[dict[str, Any]] = []
        for p, s, m in zip(plans, samples, meds):
            pred = predictor.plan_ms(p)  # the plan's one prediction (see the module docstring)
            entries.append({
                "describe": p.describe(), "groups": [list(g) for g in p.groups()],
                "roles": sorted(named.get(p, [])),
                "median_ms": m, "min_ms": float(min(s)), "p90_ms": float(np.percentile(s, 90)), "samples_ms": s,
                "speedup_vs_fat": fat_ms / m, "predicted_ms": pred,
                "prediction_error_pct": _error_pct(pred, m),
                "noise_pct": noise_floor_pct(s),
            })
        opt_entry = entries[plans.index(_shape(opt))]
        opt_ms = opt_entry["median_ms"]
        thin_ms = meds[plans.index(_shape(thin))]
        aware_row = {}
        if aware is not None:
            aware_entry = entries[plans.index(_shape(aware))]
            aware_row = {
                "interference_aware": aware.describe(), "interference_aware_ms": aware_entry["median_ms"],
                "interference_aware_predicted_ms": aware_entry["predicted_ms"],
                "interference_aware_regret_pct": 100.0 * (aware_entry["median_ms"] / meds[best] - 1.0),
            }
        rows.append({**aware_row,
            "batch": B, "plans": entries, "oracle_complete": complete,
            "fat": fat.describe(), "thin": thin.describe(), "optimizer": opt.describe(),
            "oracle_best": plans[best].describe(),
            "fat_ms": fat_ms, "thin_ms": thin_ms, "optimizer_ms": opt_ms, "oracle_ms": meds[best],
            "optimizer_predicted_ms": opt_entry["predicted_ms"],
            "speedup_optimizer_vs_fat": fat_ms / opt_ms, "speedup_thin_vs_fat": fat_ms / thin_ms,
            "speedup_oracle_vs_fat": fat_ms / meds[best],
            "regret_pct": 100.0 * (opt_ms / meds[best] - 1.0),
            "optimizer_prediction_error_pct": opt_entry["prediction_error_pct"],
            "median_abs_prediction_error_pct": _median_or_none(
                [abs(e["prediction_error_pct"]) for e in entries if e["prediction_error_pct"] is not None]),
            "median_noise_pct": _median_or_none([e["noise_pct"] for e in entries if e["noise_pct"] is not None]),
        })
    return {
        "schema": "packrat.bench/1", "model": model, "cores": T, "topology": topo.describe(),
        "iterations": iterations,
        "profile": {"model": profile.model, "synthetic": profile.synthetic, "source": profile.source},
        "corun": co.mode, "corun_model": co.to_json(), "notes": co.notes_if(multi),
        "prediction": prediction_name(co), "prediction_means": prediction_means(co),
        "batches": rows, "elapsed_s": time.monotonic() - t_begin,
        "conditions": conditions_json(probe.stop(), rows),
    }


def conditions_json(conditions: Conditions, rows: Sequence[dict]) -> dict:
    """The bench report's ``conditions``: :func:`~real_runner.conditions.conditions_report`
    (``conditions.to_json()`` plus ``note``, a line or None) for the batch row of
    ``rows`` (:func:`run_bench`'s ``batches``) whose optimizer plan was furthest from its
    prediction (by |log(measured / predicted)|; rows without both figures are skipped), or
    on the conditions alone when no row has both. Pure."""
    pairs = [(r["optimizer_predicted_ms"], r["optimizer_ms"]) for r in rows
             if r.get("optimizer_predicted_ms") and r.get("optimizer_ms")]
    worst = max(pairs, key=lambda pm: abs(math.log(pm[1] / pm[0])), default=(None, None))
    return conditions_report(conditions, *worst)


def prediction_name(co) -> str:
    """The name of the bench's one prediction per plan: ``calibrated`` when it includes the
    profile's co-run model (``co``: a ``packrat_sim.predictor.CoRun``), else ``isolated``."""
    return "calibrated" if co.calibrated else "isolated"


def prediction_means(co) -> str:
    """What the bench's prediction of a plan is, in words (see :func:`prediction_name`)."""
    if co.calibrated:
        return "measured dispatch + the slowest instance's L[t, b] x its co-run slowdown"
    return "measured dispatch + the slowest instance's L[t, b] (no co-run slowdown)"


def _error_pct(predicted: float | None, measured: float) -> float | None:
    """(predicted - measured) / measured in %, None without a prediction."""
    return None if predicted is None else 100.0 * (predicted - measured) / measured


def interleaved_schedule(plans: int, rounds: int, block: int = 1) -> list[tuple[int, bool]]:
    """The order in which :func:`_run_interleaved` runs batches: ``(plan index, timed)`` pairs.

    Every plan gets exactly ``rounds`` timed batches. ``block`` = 1: round r is one batch per
    plan, starting at plan r mod ``plans`` (rotated order). ``block`` = n > 1: a plan's turn
    is one untimed batch (its pool sat idle while the others ran) then n timed batches back
    to back (fewer in the last turn); turn r starts at plan r mod ``plans``. Pure.
    """
    block = max(1, int(block))
    order: list[tuple[int, bool]] = []
    for r in range(-(-rounds // block)):
        n = min(block, rounds - r * block)
        for j in list(range(r % plans, plans)) + list(range(r % plans)):
            if block > 1:
                order.append((j, False))
            order += [(j, True)] * n
    return order


def _run_interleaved(model: str, plans: Sequence[Plan], batch: int, rounds: int, topo, seed: int,
                     warmup: int, block: int = 1) -> list[list[float]]:
    """Start one pool per plan side by side, then run the batches of
    :func:`interleaved_schedule` (``rounds`` timed batches per plan). Returns each plan's
    timed latencies (ms) in time order; closes every pool."""
    pools = start_side_by_side([InstancePool(model, p, topology=topo, allow_oversubscribe=True, allow_span=True,
                                             seed=seed, warmup=warmup) for p in plans])
    try:
        inputs = make_inputs(model, batch, seed + 2)
        samples: list[list[float]] = [[] for _ in plans]
        for j, timed in interleaved_schedule(len(plans), rounds, block):
            ms = pools[j].run(inputs)[1]
            if timed:
                samples[j].append(ms)
    finally:
        for pool in pools:
            pool.close()
    return samples


def _setup(model, batches, cores, topology, profile, interference, on_progress, replicas: int = 1):
    """Shared preamble of :func:`run_bench` and :func:`measure_fidelity`.

    Refuses a batch over the memory limit, resolves the topology and the core count T
    (1..logical CPUs; BenchError names a bad value) and, when ``profile`` is None,
    measures a quick one. Returns ``(topology, T, say, profile)``.
    """
    require_batch_memory(model, max(batches), BenchError)  # before a quick profile or any worker
    topo = topology or topo_mod.detect()
    T = topo.logical if cores is None else int(cores)
    if not 1 <= T <= topo.logical:
        raise BenchError(f"cores must be between 1 and {topo.logical}, got {cores!r}")
    say = on_progress or (lambda msg: None)
    if profile is None:
        from real_runner.profiling import quick_profile

        say(f"measuring a quick profile of {model} (threads 1-{T}, batches up to {max(batches)})")
        profile = quick_profile(model, max(batches), T, topology=topo, interference=interference, replicas=replicas)
    return topo, T, say, profile


def _median_or_none(xs):
    return float(np.median(xs)) if xs else None


def noise_floor_pct(samples: Sequence[float]) -> float | None:
    """Measured noise floor of one plan, in %: the difference between the medians of the
    first and second half of its (interleaved, time-ordered) samples over the overall
    median. None with fewer than 4 samples. A prediction cannot be judged more precisely
    than this: it is how much the same plan moves between two time windows."""
    if len(samples) < 4:
        return None
    h = len(samples) // 2
    return 100.0 * abs(_median(samples[:h]) - _median(samples[h:])) / _median(samples)


FIDELITY_ORDERS = ("block", "batch")  # see measure_fidelity


def measure_fidelity(model: str, batches: Sequence[int], *, cores: int | None = None, profile=None,
                     passes: int = 3, iterations: int = 10, seed: int = 0, warmup: int = 2,
                     topology: topo_mod.Topology | None = None, interference: bool = True,
                     order: str = "block", replicas: int = 2,
                     on_progress: Callable[[str], None] | None = None) -> dict:
    """Predicted vs measured batch latency of the plans Packrat would compare, with the
    measured noise floor beside the error (issue 14).

    For each batch B: the optimizer's plan (idle cores allowed) and the fat and thin
    baselines, as :func:`packrat_sim.predictor.baselines` prices them, all predicted by one
    :class:`~packrat_sim.predictor.Predictor` (dispatch cost + slowest instance x co-run
    slowdown). Their pools start side by side; then ``passes`` passes, each running every
    plan for ``iterations`` batches, the plans' order rotated each pass. ``order="block"``
    (default): a plan's ``iterations`` batches run back to back after one untimed batch, as
    a deployed pool serving a queue runs them (only one plan's pool is ever active, as in
    deployment; the profile's cells are timed the same way). ``order="batch"``: one batch
    per plan per round, rotated each round, so every batch follows another plan's batch
    (caches and idle workers cold: this measures the cost of switching pools, which no
    deployment pays). Each plan runs in ``replicas`` pools (separate worker processes; the
    quick profile times its cells the same way), because on shared VMs one process can be
    up to 2x slower than another for its whole life: a prediction is judged against the
    plan's latency across processes, not one process's luck. Reported per plan: predicted
    ms, measured median, the signed error in %, and the noise floor: the largest deviation
    of one pass's median in one pool from the overall median, in % (how far the same plan
    moves between time windows and processes here). ``profile``: plan and predict from it
    (default: a quick profile measured now, with the co-run sweep unless ``interference``
    is False). Returns a JSON-able dict.
    """
    get_spec(model)
    batches = [int(b) for b in batches]
    if not batches or any(b < 1 for b in batches):
        raise BenchError(f"batches must be positive integers, got {batches!r}")
    for name, v in (("passes", passes), ("iterations", iterations), ("replicas", replicas)):
        validate.positive_int(v, name, error=BenchError)
    if order not in FIDELITY_ORDERS:
        raise BenchError(f"unknown order {order!r}; choose one of {', '.join(FIDELITY_ORDERS)}")
    topo, T, say, profile = _setup(model, batches, cores, topology, profile, interference, on_progress, replicas)
    predictor = Predictor(profile)
    options = OptimizerOptions(exact_cores=False)
    t_begin = time.monotonic()
    rows: list[dict[str, Any]] = []
    for B in batches:
        named: dict[Plan, list[str]] = {}
        best = best_plan(predictor, B, T, options)
        named.setdefault(best.with_prediction(None), []).append("packrat")
        for name, base in baselines(predictor, B, T, options).items():
            if base.plan is not None:
                named.setdefault(base.plan.with_prediction(None), []).append(name)
        plans = list(named)
        say(f"batch {B}: {len(plans)} plan(s) in {replicas} pool(s) each, {passes} pass(es) of {iterations} "
            f"batches per pool ({order} order)")
        per_pool = _run_interleaved(model, [p for p in plans for _ in range(replicas)], B, passes * iterations, topo,
                                    seed, warmup, block=iterations if order == "block" else 1)
        for j, p in enumerate(plans):
            pools = per_pool[j * replicas:(j + 1) * replicas]
            alls = [x for pool in pools for x in pool]
            measured = _median(alls)
            pred = predictor.plan_ms(p)
            window_meds = [_median(pool[ps * iterations:(ps + 1) * iterations]) for pool in pools for ps in range(passes)]
            pass_meds = [_median([x for pool in pools for x in pool[ps * iterations:(ps + 1) * iterations]])
                         for ps in range(passes)]
            noise = (max(abs(m - measured) for m in window_meds) / measured * 100.0 if len(window_meds) > 1
                     else noise_floor_pct(alls))
            rows.append({
                "batch": B, "plan": p.describe(), "roles": named[p], "instances": len(p.instances),
                "predicted_ms": pred, "predicted_isolated_ms": plan_latency(p, profile.latency),
                "dispatch_ms": predictor.dispatch_ms(p),
                "measured_ms": measured, "pass_medians_ms": pass_meds, "samples": len(alls),
                "pool_medians_ms": [_median(pool) for pool in pools],
                "error_pct": None if pred is None else 100.0 * (pred - measured) / measured,
                "noise_pct": noise,
            })
    errs = [abs(r["error_pct"]) for r in rows if r["error_pct"] is not None]
    noises = [r["noise_pct"] for r in rows if r["noise_pct"] is not None]
    return {
        "schema": "packrat.fidelity/1", "model": model, "cores": T, "topology": topo.describe(),
        "passes": passes, "iterations": iterations, "order": order, "replicas": replicas,
        "profile": {"model": profile.model, "synthetic": profile.synthetic, "source": profile.source,
                    "interference": profile.interference is not None, "dispatch_points": len(profile.dispatch)},
        "rows": rows,
        "median_abs_error_pct": _median_or_none(errs), "max_abs_error_pct": max(errs) if errs else None,
        "median_noise_pct": _median_or_none(noises), "max_noise_pct": max(noises) if noises else None,
        "loadavg_1m": _loadavg(), "elapsed_s": time.monotonic() - t_begin,
    }


def _loadavg() -> float | None:
    from real_runner.profiling import read_loadavg

    return read_loadavg()


__all__ = ["FIDELITY_ORDERS", "BenchError", "conditions_json", "feasible_plans", "interleaved_schedule",
           "measure_fidelity", "noise_floor_pct", "prediction_means", "prediction_name", "run_bench"]
