"""The real 16-core run (issue 27, item 6): isolated vs calibrated predictions of real plans, measured.

The 16-core run, one command (about 5-8 minutes for resnet50; stops itself at --budget-s and
a rerun of the same command continues where it stopped):

    PYTHONPATH=. python3 benchmarks/real16.py --model resnet50 --cores 16 --out real16-out --write-results

On a small machine (2 cores, tiny-cnn, batches 2 and 8; under 3 minutes): ``--quick``.

Why: on real 16-core servers, isolated-profile predictions of multi-instance plans are a
median 22% optimistic; calibrated ones (the co-run model fitted on a k x 1-thread sweep of
the same machine, model and allocator) should be within about 5%. This script measures
that on one real model (``transformers`` ResNet-50 or BERT-base from its config, random
weights, nothing downloaded), in four steps, each resumable from files in ``--out DIR``:

1. profile: ``real_runner.profiling.measure_profile`` with the co-run sweep, written to
   ``DIR/profile.json`` after every cell. Grid: threads ``--threads`` (default the powers of
   two up to T, and T), sub-batches ``--batches`` (default the powers of two up to the
   largest planned batch), only cells with b <= ``--max-per-thread`` x t (default 16 = 256 / 16,
   each thread's share of the largest batch; 0: the full grid): a larger cell only serves plans
   that give an instance more than its share of the batch, and one-thread cells of 64-256
   images would take most of the budget. One call per thread count (each resumes the same
   file), then one call that adds the co-run sweep;
2. plan: for each batch B of ``--plan-batches`` (default 8, 64, 256) on T cores, the plan of
   the isolated profile (``packrat_sim.predictor.best_plan`` without the co-run model: the
   published Packrat), the calibrated plan (with it: ``optimize_with_interference``), and the
   fat and thin baselines; each priced both ways (dispatch + slowest instance, x the co-run
   slowdown when calibrated). Written to ``DIR/plans.json``;
3. measure: ``real_runner.bench.measure_fidelity`` (plans' pools side by side, passes of
   back-to-back batches, plans rotated each pass): once with the calibrated profile (the
   calibrated plan, fat and thin) and, when the isolated plan is none of those, once with
   the isolated profile (the isolated plan, fat and thin again, so its speedup over fat is
   measured in its own run). Each run is saved to ``DIR/measured.json`` as it completes;
4. report: per batch and plan, the isolated and calibrated predictions, the measured
   median, both errors ((predicted - measured) / measured: negative is optimistic), the
   measured noise floor, and the speedup over fat predicted (both ways) and measured;
   printed, written to ``DIR/table.md``, and with ``--write-results`` put between the
   ``<!-- real16:begin -->`` and ``<!-- real16:end -->`` markers of ``docs/results.md``.

Budget: ``--budget-s`` (default 480) is checked between steps, after every profile cell and
before each measurement run (a run that its estimate says would not fit is left for the
rerun, unless this invocation has done nothing yet). When it runs out the script saves what
it has, prints what is left and exits 0; running the same command again skips every
finished step (``DIR/run.json`` records the options, and a rerun with other options is
refused). ``--report-only`` writes the table from ``DIR`` without measuring anything (no
torch needed), e.g. here, from the files a 16-core machine produced.

Dependencies: python3, torch, transformers, numpy and this repository on PYTHONPATH (no
simpy, z3, streamlit or plotly is imported on this path).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import replace

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from packrat_sim.errors import PackratError  # noqa: E402
from packrat_sim.files import write_json, write_text  # noqa: E402
from packrat_sim.optimizer import OptimizerError, OptimizerOptions  # noqa: E402
from packrat_sim.plan import Instance, Plan  # noqa: E402
from packrat_sim.predictor import Predictor, baselines, best_plan  # noqa: E402
from packrat_sim.profile import Profile, read_profile  # noqa: E402
from packrat_sim.spec import parse_int_list  # noqa: E402

COMMAND_16 = "PYTHONPATH=. python3 benchmarks/real16.py --model resnet50 --cores 16 --out real16-out --write-results"
EXPECTED_16 = "about 5-8 minutes for resnet50 on 16 cores (stops at --budget-s 480; rerun the same command to finish)"
BEGIN, END = "<!-- real16:begin -->", "<!-- real16:end -->"
PLAN_BATCHES = (8, 64, 256)
QUICK_MODEL, QUICK_PLAN_BATCHES = "tiny-cnn", (2, 8)
# Rough single-core cost of one item (ms) for the up-front estimate, before anything is
# measured; refined from the profile's cells as soon as there are some.
MS_PER_ITEM = {"tiny-mlp": 0.1, "tiny-cnn": 1.0, "resnet50": 80.0, "bert-base": 100.0, "gpt2": 100.0,
               "inception-v3": 100.0}
ROLE_ORDER = ("plan", "calibrated plan", "fat", "thin")
CONFIG_KEYS = ("model", "cores", "threads", "batches", "max_per_thread", "plan_batches", "repeats", "passes",
               "iterations", "replicas", "seed")


class OutOfBudget(Exception):
    """The --budget-s ran out; what was measured is saved."""


class Real16Error(PackratError):
    """Bad input to the script; the message names the value."""


# ----------------------------------------------------------------------------- options


def parse_list(text: str, what: str) -> list[int]:
    """``1,2,4`` or ``1-64`` (the powers of two in the range) -> sorted distinct positive ints
    (:func:`packrat_sim.spec.parse_int_list`); Real16Error naming ``what`` otherwise."""
    return parse_int_list(text, what, sort_unique=True, powers_of_two=True, error=Real16Error)


def default_threads(cores: int) -> list[int]:
    """The powers of two up to ``cores``, and ``cores`` itself."""
    return sorted({1 << i for i in range(cores.bit_length()) if (1 << i) <= cores} | {cores})


def powers_upto(n: int) -> list[int]:
    return [1 << i for i in range(n.bit_length()) if (1 << i) <= n]


def profile_rows(threads, batches, max_per_thread: int) -> dict[int, list[int]]:
    """The profile grid: {t: [b, ...]}, b <= max_per_thread x t (0: every b). Pure."""
    return {t: [b for b in batches if max_per_thread <= 0 or b <= max_per_thread * t] or [min(batches)]
            for t in threads}


def build_parser() -> argparse.ArgumentParser:
    usage = (f"the 16-core run, {EXPECTED_16}:\n\n    {COMMAND_16}\n\n"
             "       here (2 cores, tiny-cnn, batches 2 and 8, under 3 minutes): add --quick\n\n"
             "       benchmarks/real16.py [--quick] [--model M] [--cores T] [--out DIR] [--budget-s S] "
             "[--write-results] [options]")
    ap = argparse.ArgumentParser(prog="benchmarks/real16.py", usage=usage, description=__doc__.split("\n\n", 1)[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 4)[4])
    ap.add_argument("--model", default=None, help="catalog model (default resnet50; --quick: tiny-cnn)")
    ap.add_argument("--cores", type=int, default=None, help="cores T (default 16; --quick: min(2, allowed CPUs))")
    ap.add_argument("--threads", default=None, help="profiled thread counts (default: powers of two up to T, and T)")
    ap.add_argument("--batches", default=None, help="profiled sub-batches (default: powers of two up to the largest plan batch)")
    ap.add_argument("--max-per-thread", type=int, default=16,
                    help="profile cell (t, b) only when b <= this x t (default 16; 0: the full grid)")
    ap.add_argument("--plan-batches", default=None, help="batches to plan and measure (default 8,64,256; --quick: 2,8)")
    ap.add_argument("--repeats", type=int, default=3, help="timed batches per profile cell, at least (default 3)")
    ap.add_argument("--passes", type=int, default=2, help="measurement passes per run (default 2)")
    ap.add_argument("--iterations", type=int, default=None, help="timed batches per plan per pass (default 3)")
    ap.add_argument("--replicas", type=int, default=1, help="worker processes per plan and per profile row (default 1)")
    ap.add_argument("--budget-s", type=float, default=480.0, help="seconds for this invocation, all told (default 480)")
    ap.add_argument("--out", default=None, help="state directory (default real16-out; --quick: real16-quick-out)")
    ap.add_argument("--seed", type=int, default=0, help="weights and inputs seed (default 0)")
    ap.add_argument("--quick", action="store_true", help="the same path on a small machine, in under 3 minutes")
    ap.add_argument("--report-only", action="store_true", help="only write the table from --out DIR (measures nothing)")
    ap.add_argument("--write-results", action="store_true", help="put the table between the markers of --results")
    ap.add_argument("--results", default=None, help="the results file (default docs/results.md; a --quick run must name one)")
    return ap


def resolve_config(args, allowed_cpus: int) -> dict:
    """The run's options (CONFIG_KEYS) from the command line, --quick defaults applied."""
    quick = args.quick
    model = args.model or (QUICK_MODEL if quick else "resnet50")
    cores = args.cores if args.cores is not None else (min(2, allowed_cpus) if quick else 16)
    if cores < 1:
        raise Real16Error(f"--cores must be at least 1, got {cores}")
    if cores > allowed_cpus:
        raise Real16Error(f"--cores {cores}: this process may use only {allowed_cpus} CPUs"
                          + ("" if quick else "; on a small machine run --quick"))
    plan_batches = parse_list(args.plan_batches, "--plan-batches") if args.plan_batches else list(
        QUICK_PLAN_BATCHES if quick else PLAN_BATCHES)
    threads = parse_list(args.threads, "--threads") if args.threads else default_threads(cores)
    if max(threads) > cores:
        raise Real16Error(f"--threads {threads} go beyond --cores {cores}")
    batches = parse_list(args.batches, "--batches") if args.batches else powers_upto(max(plan_batches))
    for name in ("repeats", "passes", "replicas"):
        if getattr(args, name) < 1:
            raise Real16Error(f"--{name} must be at least 1, got {getattr(args, name)}")
    iterations = args.iterations if args.iterations is not None else 3
    if iterations < 1:
        raise Real16Error(f"--iterations must be at least 1, got {iterations}")
    if args.max_per_thread < 0:
        raise Real16Error(f"--max-per-thread must be >= 0, got {args.max_per_thread}")
    return {"model": model, "cores": cores, "threads": threads, "batches": batches,
            "max_per_thread": args.max_per_thread, "plan_batches": plan_batches, "repeats": args.repeats,
            "passes": args.passes, "iterations": iterations, "replicas": args.replicas, "seed": args.seed,
            "quick": quick}


# ----------------------------------------------------------------------------- state


class State:
    """The files of ``--out DIR``: run.json (options, sessions), profile.json, plans.json,
    measured.json, table.md. Every write is atomic (packrat_sim.files)."""

    def __init__(self, out: str):
        self.out = out
        self.run_path = os.path.join(out, "run.json")
        self.profile_path = os.path.join(out, "profile.json")
        self.plans_path = os.path.join(out, "plans.json")
        self.measured_path = os.path.join(out, "measured.json")
        self.table_path = os.path.join(out, "table.md")

    def read(self, path: str, default):
        if not os.path.exists(path):
            return default
        with open(path, encoding="utf-8") as fh:
            try:
                return json.load(fh)
            except json.JSONDecodeError as exc:
                raise Real16Error(f"{path} is not valid JSON ({exc}); move it away to start that step again") from None

    def run(self) -> dict | None:
        return self.read(self.run_path, None)

    def measured(self) -> dict:
        return self.read(self.measured_path, {"schema": "packrat.real16.measured/1", "runs": {}})


def open_state(out: str, config: dict, topology: str) -> tuple[State, dict]:
    """The state directory, created or resumed; Real16Error when it holds a run of other options."""
    os.makedirs(out, exist_ok=True)
    state = State(out)
    run = state.run()
    if run is None:
        run = {"schema": "packrat.real16.run/1", "config": config, "topology": topology, "sessions": []}
        write_json(state.run_path, run, "run file")
        return state, run
    old = run.get("config", {})
    diff = [k for k in CONFIG_KEYS if old.get(k) != config.get(k)]
    if diff:
        raise Real16Error(f"{out} holds a run with other options ({', '.join(f'{k}={old.get(k)!r}' for k in diff)}, "
                          f"this one has {', '.join(f'{k}={config.get(k)!r}' for k in diff)}); "
                          "rerun with the same options or choose another --out")
    return state, run


# ----------------------------------------------------------------------------- budget


class Budget:
    """Seconds left of --budget-s, and whether this invocation has done any work yet."""

    def __init__(self, seconds: float):
        self.start = time.monotonic()
        self.seconds = float(seconds)
        self.worked = False

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self) -> float:
        return self.seconds - self.elapsed()

    def allows(self, estimate_s: float) -> bool:
        """Whether a step estimated at ``estimate_s`` should start now (always, before any work)."""
        return not self.worked or estimate_s <= self.left()


class CostModel:
    """Rough latency of a cell before it is measured: MS_PER_ITEM x b / t^0.85, scaled by the
    median ratio measured / rough over the cells measured so far. For estimates only."""

    def __init__(self, model: str, profile: Profile | None = None):
        self.item_ms = MS_PER_ITEM.get(model, 50.0)
        self.scale = 1.0
        if profile is not None and profile.cells:
            ratios = [c.stat("median") / self.rough(c.threads, c.batch) for c in profile.cells]
            self.scale = statistics.median(ratios)

    def rough(self, t: int, b: int) -> float:
        return self.item_ms * b / t ** 0.85

    def ms(self, t: int, b: int) -> float:
        return self.rough(t, b) * self.scale

    def start_s(self, model: str) -> float:
        """Seconds to start a set of pools (imports and model build, side by side)."""
        return 4.0 if model.startswith("tiny") else 20.0


def rough_estimate_s(config: dict, rows: dict[int, list[int]], cpus: int) -> dict[str, float]:
    """Seconds each step should take before anything is measured (CostModel's rough cost):
    ``profile`` (every cell: warm-up + repeats; each row's pool start and its two warm-up
    batches of the row's largest sub-batch), ``corun`` (one pass of the sweep) and
    ``measure`` (the calibrated runs; the isolated runs, when needed, about as much again:
    three plans per run, each priced as the fat instance). Pure."""
    from real_runner.profiling import co_run_levels, corun_batches

    model, cost = config["model"], CostModel(config["model"])
    profile = sum((1 + config["repeats"]) * cost.ms(t, b) / 1e3 + 0.1 for t, row in rows.items() for b in row)
    profile += sum(cost.start_s(model) / 2 + 2 * cost.ms(t, max(row)) / 1e3 for t, row in rows.items())
    t1 = rows[min(rows)]
    probe = max([b for b in t1 if cost.ms(min(rows), b) <= 500.0] or [t1[0]])
    corun = len(co_run_levels(min(cpus, 32))) * corun_batches(config["repeats"]) * cost.ms(1, probe) / 1e3
    per_pool = config["passes"] * (config["iterations"] + 1) + 2
    measure = sum(3 * config["replicas"] * per_pool * cost.ms(config["cores"], B) / 1e3 + cost.start_s(model)
                  for B in config["plan_batches"])
    return {"profile": profile, "corun": corun + cost.start_s(model), "measure": measure}


# ----------------------------------------------------------------------------- step 1


def profile_missing(state: State, rows: dict[int, list[int]]) -> tuple[Profile | None, list[tuple[int, int]], bool]:
    """(the profile so far, the grid cells it lacks, whether it has its co-run model)."""
    if not os.path.exists(state.profile_path):
        return None, [(t, b) for t, row in rows.items() for b in row], False
    prof = read_profile(state.profile_path)
    missing = [(t, b) for t, row in rows.items() for b in row if prof.cell(t, b) is None]
    return prof, missing, prof.interference is not None


def step_profile(state: State, config: dict, topo, budget: Budget, say) -> Profile:
    """Step 1: the complete profile; OutOfBudget when the budget stopped it (what was
    measured is in profile.json)."""
    rows = profile_rows(config["threads"], config["batches"], config["max_per_thread"])
    prof, missing, has_corun = profile_missing(state, rows)
    if prof is not None and not missing and has_corun:
        say(f"[1/4] profile: done ({state.profile_path}, {len(prof.cells)} cells, co-run model), skipped")
        return prof
    from real_runner.profiling import co_run_levels, corun_batches, measure_profile

    model, cost = config["model"], CostModel(config["model"], prof)
    say(f"[1/4] profile: {len(missing)} cell(s) to measure of {sum(len(r) for r in rows.values())}"
        + ("" if has_corun else ", then the co-run sweep"))

    def on_cell(cell, index, total):
        say(f"      t={cell.threads:<2} b={cell.batch:<4} median {cell.median_ms:9.2f} ms   "
            f"[{budget.elapsed():5.0f} s]")
        budget.worked = True
        if budget.left() <= 0:
            raise OutOfBudget(f"profile stopped after cell t={cell.threads} b={cell.batch}")

    common = dict(out=state.profile_path, topology=topo, seed=config["seed"], replicas=config["replicas"],
                  progress=False, on_cell=on_cell)
    for t, row in rows.items():
        todo = [b for b in row if (t, b) in set(missing)]
        if not todo:
            continue
        if budget.worked and budget.left() <= 0:
            raise OutOfBudget(f"profile: thread counts from t={t} not measured")
        measure_profile(model, [t], row, config["repeats"], interference=False, **common)
        budget.worked = True
    prof, missing, has_corun = profile_missing(state, rows)
    if prof is None or missing:  # pragma: no cover - measure_profile raises rather than skip a cell
        raise Real16Error(f"the profile lacks cells {missing} after measuring them")
    if not has_corun:
        cost = CostModel(model, prof)
        t1 = rows[min(rows)]
        probe = max([b for b in t1 if (prof.latency(1, b) or 0.0) <= 500.0] or [t1[0]])
        levels = co_run_levels(min(topo.logical, 32))
        est = 2 * len(levels) * corun_batches(config["repeats"]) * cost.ms(1, probe) / 1e3 + cost.start_s(model)
        if not budget.allows(est):
            raise OutOfBudget(f"co-run sweep not measured (estimated {est:.0f} s, {budget.left():.0f} s left)")
        say(f"      co-run sweep: k = {levels} one-thread instances side by side (estimated {est:.0f} s)")
        t0 = time.monotonic()
        prof = measure_profile(model, [min(rows)], t1, config["repeats"], interference=True, **common).profile
        budget.worked = True
        model_pts = prof.interference.points if prof.interference else ()
        say(f"      co-run model: slowdown beside n other busy cores {list(model_pts)} "
            f"({time.monotonic() - t0:.0f} s)")
    return prof


# ----------------------------------------------------------------------------- step 2


def plan_from_describe(text: str, batch: int, cores: int) -> Plan:
    """``2 x 4t x 16 + 1 x 8t x 32`` (Plan.describe) -> the Plan. Pure."""
    instances = []
    for group in text.split("+"):
        n, t, b = (x.strip() for x in group.split("x"))
        instances += [Instance(int(t.rstrip("t")), int(b))] * int(n)
    return Plan(tuple(instances), batch, cores)


def predictors(profile: Profile) -> tuple[Predictor, Predictor]:
    """(isolated, calibrated): one predictor without and one with the profile's co-run model."""
    return Predictor(profile, interference=False), Predictor(profile, interference=True)


def price(plan: Plan, iso: Predictor, cal: Predictor) -> dict:
    return {"plan": plan.describe(), "instances": len(plan.instances), "threads_used": plan.threads_used,
            "predicted_isolated_ms": iso.plan_ms(plan), "predicted_calibrated_ms": cal.plan_ms(plan)}


def step_plan(state: State, config: dict, profile: Profile, say) -> dict:
    """Step 2: the plans of every batch, priced both ways; written to plans.json (kept on a
    rerun, so the measurements always refer to the plans that were written)."""
    old = state.read(state.plans_path, None)
    if old is not None and sorted(old.get("batches", {}), key=int) == sorted(map(str, config["plan_batches"]), key=int):
        say(f"[2/4] plan: done ({state.plans_path}), skipped")
        return old
    T = config["cores"]
    options = OptimizerOptions(exact_cores=False)
    iso, cal = predictors(profile)
    out: dict = {"schema": "packrat.real16.plans/1", "cores": T, "batches": {}}
    for B in config["plan_batches"]:
        try:
            chosen = {"plan": best_plan(iso, B, T, options), "calibrated plan": best_plan(cal, B, T, options)}
        except OptimizerError as exc:
            out["batches"][str(B)] = {"error": str(exc)}
            say(f"[2/4] plan: batch {B}: no plan ({exc})")
            continue
        for name, base in baselines(cal, B, T, options).items():
            if base.plan is not None:
                chosen[name] = base.plan
        shapes: dict[str, dict] = {}
        for role in ROLE_ORDER:
            if role in chosen:
                key = chosen[role].describe()
                shapes.setdefault(key, {**price(chosen[role], iso, cal), "roles": []})["roles"].append(role)
        out["batches"][str(B)] = {"plans": list(shapes.values()),
                                  "roles": {role: p.describe() for role, p in chosen.items()}}
        say(f"[2/4] plan: batch {B:>4}: plan {chosen['plan'].describe()}   calibrated {chosen['calibrated plan'].describe()}")
    write_json(state.plans_path, out, "plans file")
    return out


# ----------------------------------------------------------------------------- step 3


def run_estimate_s(entry: dict, kinds: list[str], config: dict, cost: CostModel) -> float:
    """Seconds a measurement run of the plans ``kinds`` (roles) should take: each plan's
    calibrated prediction x its batches (passes x (iterations + 1) per pool, plus warm-up),
    plus starting the pools."""
    per_pool = config["passes"] * (config["iterations"] + 1) + 2
    ms = 0.0
    for p in entry["plans"]:
        if set(p["roles"]) & set(kinds):
            ms += config["replicas"] * per_pool * (p["predicted_calibrated_ms"] or 0.0)
    return 1.3 * ms / 1e3 + cost.start_s(config["model"])


def needed_runs(plans: dict) -> list[tuple[str, int, str]]:
    """(key, batch, which) of every measurement run: first the calibrated run of every batch,
    then the isolated run of each batch whose isolated plan is not among the calibrated run's plans."""
    first, second = [], []
    for b, entry in plans["batches"].items():
        if "plans" not in entry:
            continue
        first.append((f"{b}/calibrated", int(b), "calibrated"))
        roles = entry["roles"]
        if roles["plan"] not in {roles.get(r) for r in ("calibrated plan", "fat", "thin")}:
            second.append((f"{b}/isolated", int(b), "isolated"))
    return first + second


def step_measure(state: State, config: dict, profile: Profile, plans: dict, topo, budget: Budget, say) -> list[str]:
    """Step 3: every run of needed_runs not in measured.json, saved as each completes.
    Returns the runs left undone (budget)."""
    measured = state.measured()
    runs = needed_runs(plans)
    todo = [r for r in runs if r[0] not in measured["runs"]]
    say(f"[3/4] measure: {len(runs)} run(s), {len(runs) - len(todo)} done" + ("" if todo else ", skipped"))
    if not todo:
        return []
    from real_runner.bench import measure_fidelity

    cost = CostModel(config["model"], profile)
    isolated_profile = replace(profile, interference=None)
    left = []
    for key, B, which in todo:
        entry = plans["batches"][str(B)]
        kinds = ["calibrated plan" if which == "calibrated" else "plan", "fat", "thin"]
        est = run_estimate_s(entry, kinds, config, cost)
        if not budget.allows(est):
            left.append(f"{key} (estimated {est:.0f} s, {budget.left():.0f} s left)")
            continue
        say(f"      run {key}: estimated {est:.0f} s   [{budget.elapsed():5.0f} s]")
        t0 = time.monotonic()
        result = measure_fidelity(config["model"], [B], cores=config["cores"],
                                  profile=profile if which == "calibrated" else isolated_profile,
                                  passes=config["passes"], iterations=config["iterations"], seed=config["seed"],
                                  topology=topo, replicas=config["replicas"],
                                  on_progress=lambda msg: say(f"      {msg}"))
        budget.worked = True
        result["wall_s"] = time.monotonic() - t0
        result["which"] = which
        measured["runs"][key] = result
        write_json(state.measured_path, measured, "measurements file")
        for r in result["rows"]:
            say(f"        {r['plan']:<28} ({', '.join(r['roles'])}) measured {r['measured_ms']:9.2f} ms")
    return left


# ----------------------------------------------------------------------------- step 4


def _pct(x) -> str:
    return "-" if x is None else f"{x:+.1f}%"


def _ms(x) -> str:
    return "-" if x is None else (f"{x:.1f}" if x >= 100 else f"{x:.2f}" if x >= 1 else f"{x:.3f}")


def _x(x) -> str:
    return "-" if x is None else f"{x:.2f}x"


def _err(pred, meas):
    return None if pred is None or not meas else 100.0 * (pred - meas) / meas


def table_rows(config: dict, profile: Profile, plans: dict, measured: dict) -> tuple[list[dict], list[str]]:
    """One row per (batch, distinct plan): predictions both ways, the measured median (from
    the run that measured it; the isolated plan from its own run), errors, noise, speedups
    over fat (predicted both ways; measured against the fat of the same run). And the list
    of what was not measured. Pure (given the files)."""
    T = config["cores"]
    iso, cal = predictors(profile)
    rows, missing = [], []
    for B in config["plan_batches"]:
        entry = plans["batches"].get(str(B))
        if entry is None or "plans" not in entry:
            missing.append(f"batch {B}: " + ("not planned" if entry is None else entry["error"]))
            continue
        runs = {which: measured["runs"].get(f"{B}/{which}") for which in ("calibrated", "isolated")}
        fat_desc = entry["roles"].get("fat")
        fat_pred: dict[str, float | None] = {"iso": None, "cal": None}
        if fat_desc:
            fat_plan = plan_from_describe(fat_desc, B, T)
            fat_pred = {"iso": iso.plan_ms(fat_plan), "cal": cal.plan_ms(fat_plan)}
        for p in entry["plans"]:
            source = "isolated" if p["roles"] == ["plan"] else "calibrated"
            run = runs[source]
            got = None if run is None else next((r for r in run["rows"] if r["plan"] == p["plan"]), None)
            fat_meas = None if run is None else next((r["measured_ms"] for r in run["rows"] if "fat" in r["roles"]), None)
            meas = None if got is None else got["measured_ms"]
            if got is None:
                missing.append(f"batch {B}: {p['plan']} ({', '.join(p['roles'])}) not measured"
                               + ("" if run is None else f" (the {source} run measured other plans)"))
            pi, pc = p["predicted_isolated_ms"], p["predicted_calibrated_ms"]
            rows.append({
                "batch": B, "plan": p["plan"], "roles": p["roles"], "instances": p["instances"], "run": source,
                "predicted_isolated_ms": pi, "predicted_calibrated_ms": pc, "measured_ms": meas,
                "error_isolated_pct": _err(pi, meas), "error_calibrated_pct": _err(pc, meas),
                "noise_pct": None if got is None else got.get("noise_pct"),
                "speedup_predicted_isolated": None if not (fat_pred["iso"] and pi) else fat_pred["iso"] / pi,
                "speedup_predicted_calibrated": None if not (fat_pred["cal"] and pc) else fat_pred["cal"] / pc,
                "speedup_measured": None if not (fat_meas and meas) else fat_meas / meas,
            })
    return rows, missing


def summary(rows: list[dict]) -> list[str]:
    """Median / max |error| of both predictions over the multi-instance plans and over all."""
    out = []
    for label, sel in (("multi-instance plans", [r for r in rows if r["instances"] > 1]), ("all plans", rows)):
        lines = []
        for name, key in (("isolated", "error_isolated_pct"), ("calibrated", "error_calibrated_pct")):
            errs = [r[key] for r in sel if r[key] is not None]
            if errs:
                optimistic = sum(e < 0 for e in errs)
                lines.append(f"{name} median |error| {statistics.median(abs(e) for e in errs):.1f}% "
                             f"(median {statistics.median(errs):+.1f}%, max |error| {max(abs(e) for e in errs):.1f}%, "
                             f"optimistic in {optimistic} of {len(errs)})")
        if lines:
            out.append(f"- {label}: " + "; ".join(lines))
    noise = [r["noise_pct"] for r in rows if r["noise_pct"] is not None]
    if noise:
        out.append(f"- measured noise floor: median {statistics.median(noise):.1f}%, max {max(noise):.1f}%")
    return out


def to_markdown(config: dict, run: dict, profile: Profile, plans: dict, measured: dict) -> str:
    rows, missing = table_rows(config, profile, plans, measured)
    model = profile.interference
    points = getattr(model, "points", ()) or ()
    pts = ", ".join(f"{k}: {s:.3f}" for k, s in points) if points else "none"
    fit_error = getattr(model, "fit_error", None)
    fit = "" if fit_error is None else f", fit error {100 * fit_error:.1f}%"
    machine = profile.machine
    extra = dict(getattr(machine, "extra", ()) or ())
    grid = ("all sub-batches" if config["max_per_thread"] <= 0
            else f"only b <= {config['max_per_thread']} x t")
    head = [
        f"{config['model']} on T = {config['cores']} cores: {run.get('topology', '?')}; torch "
        f"{getattr(machine, 'torch_version', '') or '?'}"
        + (f", OpenMP wait policy {extra['omp_wait_policy']}" if extra.get("omp_wait_policy") else "")
        + ("; a --quick path check, not a 16-core figure" if config.get("quick") else ""),
        "",
        f"profile: {len(profile.cells)} cells (threads {config['threads']}, sub-batches {config['batches']}, "
        f"{grid}); co-run slowdown of the slowest instance beside n other busy "
        f"cores (n: slowdown) {pts}{fit}",
        "",
        f"measured with real_runner.bench.measure_fidelity: {config['passes']} passes x {config['iterations']} "
        f"back-to-back batches per plan, {config['replicas']} pool(s) per plan, seed {config['seed']}; "
        "error = (predicted - measured) / measured, negative = optimistic; speedup = fat / plan "
        "(measured: the fat of the same run)",
        "",
        "| batch | plan | roles | predicted isolated ms | predicted calibrated ms | measured ms | isolated error "
        "| calibrated error | noise floor | speedup predicted isolated | speedup predicted calibrated | speedup measured |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    head.extend("| " + " | ".join([
            str(r["batch"]), r["plan"], ", ".join(r["roles"]), _ms(r["predicted_isolated_ms"]),
            _ms(r["predicted_calibrated_ms"]), _ms(r["measured_ms"]), _pct(r["error_isolated_pct"]),
            _pct(r["error_calibrated_pct"]), "-" if r["noise_pct"] is None else f"{r['noise_pct']:.1f}%",
            _x(r["speedup_predicted_isolated"]), _x(r["speedup_predicted_calibrated"]), _x(r["speedup_measured"]),
        ]) + " |" for r in rows)
    body = summary(rows)
    repeats = _fat_repeats(config, measured)
    if repeats:
        body.append("- fat measured in both runs of a batch (run-to-run difference): " + "; ".join(repeats))
    if body:
        head += [""] + body
    if missing:
        head += ["", "Not measured (rerun the same command to continue):"] + [f"- {m}" for m in missing]
    return "\n".join(head)


def _fat_repeats(config: dict, measured: dict) -> list[str]:
    out = []
    for B in config["plan_batches"]:
        a, b = (measured["runs"].get(f"{B}/{w}") for w in ("calibrated", "isolated"))
        if a and b:
            fa = next((r["measured_ms"] for r in a["rows"] if "fat" in r["roles"]), None)
            fb = next((r["measured_ms"] for r in b["rows"] if "fat" in r["roles"]), None)
            if fa and fb:
                out.append(f"batch {B}: {_ms(fa)} vs {_ms(fb)} ms ({100 * (fb - fa) / fa:+.1f}%)")
    return out


def write_results(path: str, table: str, wall: str) -> None:
    """Replace the text between BEGIN and END in ``path`` (appending a section with the
    markers when there are none)."""
    text = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
    block = f"{BEGIN}\n{wall}\n\n{table}\n{END}"
    if BEGIN in text and END in text and text.index(BEGIN) < text.index(END):
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + section_intro() + "\n" + block + "\n"
    write_text(path, text, "results file")


def section_intro() -> str:
    return (
        "## The real 16-core run: isolated vs calibrated predictions (`benchmarks/real16.py`)\n\n"
        "One real model (ResNet-50 from its `transformers` config, random weights) profiled with its\n"
        "co-run sweep on a 16-core machine, batches 8, 64 and 256 planned from the isolated profile and\n"
        "with the co-run model, and the plan, the calibrated plan, fat and thin measured; predicted vs\n"
        "measured below (the script writes between the markers). To run it (about 5-8 minutes,\n"
        "resumable):\n\n"
        f"```\n{COMMAND_16}\n```\n"
    )


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    say = lambda msg: print(msg, flush=True)  # noqa: E731
    try:
        return _main(args, say)
    except (Real16Error, PackratError) as exc:
        print(f"real16: {exc}", file=sys.stderr)
        return 2


def _main(args, say) -> int:
    budget = Budget(args.budget_s)
    if args.write_results and args.quick and args.results is None:
        raise Real16Error("a --quick run is not the 16-core figure: name --results FILE to write its table elsewhere")
    results = args.results or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                           "docs", "results.md")
    out = args.out or ("real16-quick-out" if args.quick else "real16-out")
    if args.report_only:
        state = State(out)
        run = state.run()
        if run is None or not os.path.exists(state.profile_path) or not os.path.exists(state.plans_path):
            raise Real16Error(f"{out} holds no planned run (run.json, profile.json, plans.json); run the steps first")
        config = run["config"]
        return _report(state, config, run, read_profile(state.profile_path), state.read(state.plans_path, {}), args, results, [], say, budget)

    from real_runner import topology as topo_mod

    topo = topo_mod.detect()
    config = resolve_config(args, topo.logical)
    state, run = open_state(out, config, topo.describe())
    rows = profile_rows(config["threads"], config["batches"], config["max_per_thread"])
    cost = CostModel(config["model"])
    n_cells = sum(len(r) for r in rows.values())
    est = rough_estimate_s(config, rows, topo.logical)
    say(f"real16: {config['model']} on {config['cores']} cores ({topo.describe()}), OpenMP wait policy "
        f"{topo_mod.omp_policy()}; state in {out}; budget {args.budget_s:.0f} s")
    say(f"  planned: {n_cells} profile cells (" + ", ".join(f"t={t}: b<={max(r)}" for t, r in rows.items())
        + f"), the co-run sweep, plans for batches {config['plan_batches']}, up to "
        f"{2 * len(config['plan_batches'])} measurement runs; rough estimate (from ~{cost.item_ms:g} ms per item "
        f"per core, before anything is measured): profile {est['profile']:.0f} s, co-run sweep {est['corun']:.0f} s, "
        f"measurement {est['measure']:.0f}-{2 * est['measure']:.0f} s")
    left: list[str] = []
    profile: Profile | None = None
    plans: dict | None = None
    try:
        profile = step_profile(state, config, topo, budget, say)
        plans = step_plan(state, config, profile, say)
        left = step_measure(state, config, profile, plans, topo, budget, say)
    except OutOfBudget as exc:
        left = [str(exc)]
    except KeyboardInterrupt:
        left = ["interrupted: the steps finished so far are saved"]
        say("real16: interrupted; rerun the same command to continue")
    if profile is None:
        profile = profile_missing(state, rows)[0]
    if plans is None and os.path.exists(state.plans_path):
        plans = state.read(state.plans_path, None)
    return _report(state, config, run, profile, plans, args, results, left, say, budget)


def _report(state, config, run, profile, plans, args, results, left, say, budget) -> int:
    session = {"at": time.strftime("%Y-%m-%d %H:%M:%S"), "elapsed_s": round(budget.elapsed(), 1), "left": left,
               "report_only": bool(args.report_only)}
    if not args.report_only:
        run.setdefault("sessions", []).append(session)
        write_json(state.run_path, run, "run file")
    if profile is None or not plans:
        say(f"real16: stopped after {budget.elapsed():.0f} s before anything could be planned; left: "
            + "; ".join(left) + f"\nrerun the same command to continue (state in {state.out})")
        return 0
    table = to_markdown(config, run, profile, plans, state.measured())
    write_text(state.table_path, table + "\n", "table")
    say("[4/4] report\n")
    say(table)
    sessions = run.get("sessions", [])
    wall = (f"Measured in {len(sessions)} invocation(s) of `benchmarks/real16.py`, "
            f"{sum(s.get('elapsed_s', 0) for s in sessions):.0f} s in all.")
    if args.write_results:
        write_results(results, table, wall)
        say(f"\nwrote the table between the real16 markers of {results}")
    say(f"\nreal16: {budget.elapsed():.0f} s this invocation")
    if left:
        say("left for a rerun of the same command: " + "; ".join(left))
    else:
        say("real16: all steps done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
