"""`packrat demo`: the whole pipeline on this machine with small built-in inputs, in minutes.

Each step is a function that prints its section and returns a short status; later
issues add steps (certificate, simulation, real run, history checks).
"""

from __future__ import annotations

import time

import typer

DEMO_PROFILE = "transformer-16"
DEMO_CORES = 16
DEMO_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def _demo_table(profile_name: str, cores: int):
    """The demo's profile, planning options (the CLI's default: idle cores allowed), one DP
    table for every demo batch and its build time in seconds."""
    from packrat_sim.optimizer import OptimizerOptions, PlanTable
    from packrat_sim.profile import builtin_profile

    profile = builtin_profile(profile_name)
    options = OptimizerOptions(exact_cores=False)
    t0 = time.perf_counter()
    table = PlanTable(profile, cores, max(DEMO_BATCHES), options)
    return profile, options, table, time.perf_counter() - t0


def step_plan_table(profile_name: str = DEMO_PROFILE, cores: int = DEMO_CORES) -> str:
    """Plan every demo batch size from one DP table; print the table with fat/thin speedups,
    the baselines priced by the same predictor over the same candidate cells as the plan."""
    from packrat_sim.predictor import Predictor, baselines, corun

    profile, options, table, build_s = _demo_table(profile_name, cores)
    predictor = Predictor(profile)
    typer.echo(f"== plan: {profile.label()} on {cores} cores (one DP table, built in {build_s * 1e3:.1f} ms, idle cores allowed)")
    typer.echo(f"   {profile.source}")
    typer.echo(f"   {'batch':>5}  {'optimal plan (count x threads x sub-batch)':<44} {'ms':>8} {'vs fat':>7} {'vs thin':>8}")

    def vs(ms, best_ms):
        return "n/a" if ms is None else f"{ms / best_ms:.2f}x"

    multi = False
    for b in DEMO_BATCHES:
        best = table.plan(cores, b)
        base = baselines(predictor, b, cores, options)
        multi = multi or len(best.instances) > 1
        typer.echo(f"   {b:>5}  {best.describe():<44} {best.predicted_ms:8.2f} "
                   f"{vs(base['fat'].ms, best.predicted_ms):>7} {vs(base['thin'].ms, best.predicted_ms):>8}")
    for line in corun(profile).notes_if(multi):
        typer.echo(f"   note: {line}")
    return "ok"


def step_certify(profile_name: str = DEMO_PROFILE, cores: int = DEMO_CORES) -> str:
    """Prove each plan of the table optimal with Z3 (independently of the DP)."""
    from checker.allocation import certify

    profile, options, table, _ = _demo_table(profile_name, cores)
    typer.echo("== certify: Z3 proves each plan optimal (no allocation of the profiled shapes is faster)")
    verdicts = []
    for b in DEMO_BATCHES:
        cert = certify(profile, b, cores, table.plan(cores, b), options, timeout_s=30)
        verdicts.append(cert.result.value)
        typer.echo(f"   batch {b:>4}  {cert.plan.describe():<30} {cert.result.value.upper():<12} {cert.elapsed_s * 1e3:7.1f} ms")
    return "ok" if all(v == "optimal" for v in verdicts) else "not all optimal"


# Packrat's own setting (a fixed batch, closed loop), then a changing open-loop load
# that makes the estimator reconfigure online.
DEMO_WORKLOADS = ("closed:batch=64,requests=3200", "steps:60/s@4s,400/s@4s,60/s@4s,max_batch=64,max_delay=10ms")


def step_simulate(profile_name: str = DEMO_PROFILE, cores: int = DEMO_CORES) -> str:
    """Simulate Packrat's plan (adaptive under a changing load) against fat and thin."""
    from packrat_sim.predictor import corun
    from packrat_sim.profile import builtin_profile
    from packrat_sim.simulator import compare_plans
    from ui.cli.simulate import format_comparison

    profile = builtin_profile(profile_name)
    verdicts = []
    for spec in DEMO_WORKLOADS:
        typer.echo(f"== simulate: {spec} (seed 1)")
        comparison = compare_plans(profile, cores, spec, seed=1)
        typer.echo(format_comparison(comparison))
        for line in corun(profile).notes(p for r in comparison.results for p in r.plans):
            typer.echo(f"   note: {line}")
        if comparison.results[0].adaptive:
            line, ok = adaptive_verdict(comparison)
            typer.echo(line)
            verdicts.append(ok)
        typer.echo("")
    return "ok" if all(verdicts) else "adaptive packrat lost to a static plan"


def adaptive_verdict(comparison) -> tuple[str, bool]:
    """One line: adaptive packrat against every static plan of the comparison on request
    latency p50/p90/p99 (wins, ties within 1%, or loses), and whether it never loses."""
    adaptive, *statics = comparison.results
    words, ok = [], True
    for other in statics:
        parts = []
        for q in ("p50", "p90", "p99"):
            a = getattr(adaptive.stats.request_latency, f"{q}_ms")
            b = getattr(other.stats.request_latency, f"{q}_ms")
            how = "ties" if abs(a - b) <= 0.01 * b else ("wins" if a < b else "loses")
            ok = ok and how != "loses"
            parts.append(f"{q} {a:.1f} vs {b:.1f} ms {how}")
        words.append(f"vs {other.name}: " + ", ".join(parts))
    return "   adaptive packrat " + "; ".join(words), ok


def step_check_simulated_history(profile_name: str = DEMO_PROFILE, cores: int = DEMO_CORES) -> str:
    """Check the simulator's history under online reconfiguration against the `serving` model."""
    from checker import check, explain
    from checker.history import history_from_json
    from packrat_sim.profile import builtin_profile
    from packrat_sim.simulator import simulate

    result = simulate(builtin_profile(profile_name), cores, DEMO_WORKLOADS[1], "packrat", seed=1)
    history = history_from_json(result.history())
    verdict = check(history, "serving", timeout=60)
    typer.echo(
        f"== check: simulated history ({len(history.operations)} operations, "
        f"{len(result.reconfigurations)} reconfigurations) against the serving model"
    )
    for line in explain(verdict, history, "serving")[:3]:
        typer.echo(f"   {line}")
    return "ok" if verdict.ok else verdict.result.value


DEMO_MODEL = "tiny-cnn"
DEMO_REAL_BATCH = 8


def step_real_run() -> str:
    """On this machine: profile tiny-cnn, plan for its cores, run the plan beside fat."""
    import os

    from packrat_sim.optimizer import optimize
    from packrat_sim.predictor import corun
    from real_runner import compare_with_fat, quick_profile
    from real_runner.conditions import measurement_note, watched

    cores = len(os.sched_getaffinity(0))
    typer.echo(f"== real run: {DEMO_MODEL}, batch {DEMO_REAL_BATCH}, on this machine's {cores} cores")
    t0 = time.perf_counter()
    profile = quick_profile(DEMO_MODEL, DEMO_REAL_BATCH, cores)
    typer.echo(f"   profiled {len(profile.cells)} cells in {time.perf_counter() - t0:.1f} s (median of repeats, pinned workers)")
    plan = optimize(profile, DEMO_REAL_BATCH, cores)
    result, conditions = watched(lambda: compare_with_fat(DEMO_MODEL, plan, iterations=10, cores=cores))
    typer.echo(f"   plan {plan.describe():<24} predicted {plan.predicted_ms:8.2f} ms   measured median {result.plan.median_ms:8.2f} ms")
    for line in corun(profile).notes([plan]):
        typer.echo(f"   note: {line}")
    busy = measurement_note(conditions, plan.predicted_ms, result.plan.median_ms)
    if busy:
        typer.echo(f"   note: {busy}")
    typer.echo(f"   fat  {f'1 x {cores}t x {DEMO_REAL_BATCH}':<24} {'':>18}   measured median {result.fat.median_ms:8.2f} ms")
    typer.echo(f"   measured speedup over fat {result.speedup:.2f}x (interleaved in one run; outputs match: {result.outputs_match})")
    return "ok" if result.outputs_match else "outputs differ"


def step_reconfigure_online() -> str:
    """On this machine: serve tiny-cnn batches of 4 then 8, reconfigure online between the two
    load steps (new instances started beside the old ones, routing switched, old drained),
    and check the recorded history with the `serving` model."""
    import os
    import threading

    from checker import check, explain
    from packrat_sim.plan import fat, thin
    from real_runner.serving import ServingRuntime

    cores = len(os.sched_getaffinity(0))
    first, second = thin(4, cores), fat(8, cores)
    typer.echo(f"== reconfigure online: {DEMO_MODEL}, load step batch 4 -> 8, plan {first.describe()} -> {second.describe()}")
    with ServingRuntime(DEMO_MODEL, first) as rt:
        for _ in range(10):
            rt.infer(4)
        done = threading.Event()

        def load() -> None:  # keep serving while the controller reconfigures
            while not done.is_set():
                rt.infer(8, client=1)

        loader = threading.Thread(target=load)
        loader.start()
        t0 = time.perf_counter()
        epoch = rt.reconfigure(second, trigger="demo")
        switch_s = time.perf_counter() - t0
        kind = rt.reconfigurations[-1].kind if rt.reconfigurations else "switch"
        for _ in range(10):
            rt.infer(8)
        done.set()
        loader.join()
        history = rt.history()
        served = len(rt.batches) if hasattr(rt, "batches") else len(history.operations)
    verdict = check(history, "serving", timeout=60)
    typer.echo(f"   reconfigure returned epoch {epoch} after {switch_s * 1000:.1f} ms ({kind}, under load)")
    typer.echo(f"   {served} batches served, history of {len(history.operations)} operations:")
    for line in explain(verdict, history, "serving")[:2]:
        typer.echo(f"   {line}")
    return "ok" if verdict.ok else verdict.result.value


DEMO_EXPLORATIONS = (("correct", "OK"), ("ack-before-switch", "VIOLATION"))


def step_explore() -> str:
    """Explore every schedule of the reconfiguration protocol as actors with DPOR: the correct
    variant must pass exhaustively, the buggy ack-before-switch must be caught, shrunk, and its
    replay file must reproduce it. "ok" only when both come out as expected."""
    import tempfile
    from pathlib import Path

    from checker.explore import explore, read_replay, replay, write_replay
    from checker.protocols import build
    from ui.cli.explore import format_result

    statuses = []
    for variant, expected in DEMO_EXPLORATIONS:
        protocol = build("reconfig", variant)
        typer.echo(f"== explore: {protocol.label()} with DPOR (expect {expected})")
        result = explore(protocol, "dpor", max_time=120)
        reproduced = True
        replay_note = ""
        if result.violation is not None:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "demo.replay.json"
                write_replay(path, protocol, result.violation.schedule, result.violation, "dpor", 0)
                again = replay(*read_replay(path)[:2])
                reproduced = again.violation is not None and again.violation[1] == result.violation.name
            replay_note = f"replay file round trip: {'reproduces' if reproduced else 'does NOT reproduce'} the violation"
        for line in format_result(result, protocol, None).splitlines():
            typer.echo(f"   {line}")
        if replay_note:
            typer.echo(f"   {replay_note}")
        statuses.append(result.verdict_word == expected and reproduced)
        typer.echo("")
    return "ok" if all(statuses) else "unexpected verdict"


STEPS = (step_plan_table, step_certify, step_simulate, step_check_simulated_history, step_real_run,
         step_reconfigure_online, step_explore)


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo_cmd() -> None:
        """Run the whole pipeline on small built-in inputs and print each step's result.

        Exit code 0 when every step succeeded, 1 when a step reported a negative result."""
        t0 = time.perf_counter()
        statuses = []
        for step in STEPS:
            statuses.append((step.__name__[len("step_"):], step()))
            typer.echo("")
        typer.echo("summary   " + "  ".join(f"{name}: {status}" for name, status in statuses))
        typer.echo(f"demo finished in {time.perf_counter() - t0:.1f} s")
        if any(status != "ok" for _, status in statuses):
            raise typer.Exit(1)
