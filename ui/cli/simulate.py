"""`packrat simulate`: the optimizer's plan, the fat and the thin plan under one workload.

    packrat simulate --profile FILE|builtin:NAME --cores T --workload SPEC [--seed S] [--json] [--out DIR]
                     [--policy packrat[:KEY=VALUE,...]|packrat-ewma]

Prints, side by side, request latency p50/p90/p99/max, batch latency, throughput,
queueing delay, core utilisation and reconfigurations. ``--json`` prints the same as
one object. ``--out DIR`` also writes, per plan, ``NAME-requests.csv`` (per-request
records), ``NAME-timeline.json`` and ``NAME-history.json`` (``packrat.history/1``), and
``summary.json``, as one set (``packrat_sim.files.write_files``: every file is written before
any replaces the old one, so a full disk leaves the old set, never half of a new one). The
workload grammar is documented in ``packrat_sim/workload.py``. Bad input exits 2 with one
line naming the bad value; so does a set that cannot be written after the simulation, once
the results are printed.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import replace

import typer

from ui.cli.common import WORKLOAD_HELP, BadInput, corun_fields, emit_json, fail, load_profile_arg, output_dir_arg, print_corun

def _sim_config(policy, start_ms: float | None, warmup: int | None):
    """The SimConfig of the command line: the policy's options (None: its defaults) and the
    reconfiguration model's --start-ms / --warmup (None: the library's defaults). BadInput
    naming a negative or non-finite value."""
    from packrat_sim import validate
    from packrat_sim.simulator import SimConfig

    config = SimConfig(policy=policy)
    if start_ms is not None:
        config = replace(config, start_ms=validate.nonnegative_float(start_ms, "--start-ms", error=BadInput))
    if warmup is not None:
        config = replace(config, warmup_iterations=validate.nonnegative_int(warmup, "--warmup", error=BadInput))
    return config


def register(app: typer.Typer) -> None:
    """Add the ``simulate`` verb to the CLI."""
    app.command(
        "simulate",
        help="Simulate the optimizer's plan (with online reconfiguration), the fat and the thin plan under a workload.",
    )(simulate_command)


def simulate_command(
    profile: str = typer.Option(..., "--profile", help="Profile JSON file or builtin:NAME (e.g. builtin:cnn-16)."),
    cores: int = typer.Option(..., "--cores", help="Cores T of the server."),
    workload: str = typer.Option(..., "--workload", help=WORKLOAD_HELP),
    seed: int = typer.Option(0, "--seed", help="Seed of arrivals and service-time draws."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    out: str | None = typer.Option(None, "--out", help="Directory for per-request CSV, timeline and history JSON (created if its parent exists; files replaced atomically)."),
    policy: str = typer.Option(
        "packrat", "--policy",
        help="Adaptive policy: packrat[:KEY=VALUE,...] (e.g. packrat:payback_ms=5000,confirmations=3; keys in "
             "README.md, \"The policy\") or packrat-ewma (the paper's queue-depth estimator).",
    ),
    isolated: bool = typer.Option(False, "--isolated", help="Ignore the profile's co-run model: service times from the isolated profile (by default a profile with a co-run model slows each instance by it)."),
    start_ms: float | None = typer.Option(None, "--start-ms", help="Reconfiguration model: ms to start a new instance and build its model before its warm-up (default: the measured start-up of SwitchModel, README.md \"The policy\")."),
    warmup: int | None = typer.Option(None, "--warmup", help="Reconfiguration model: warm-up inferences of a new instance before it is ready (default 2)."),
) -> int:
    from packrat_sim import validate
    from packrat_sim.policy import PolicyError, load_overrides, parse_overrides, parse_policy
    from packrat_sim.simulator import compare_plans
    from packrat_sim.workload import CLOSED_LOOPS, WorkloadError, load_workload

    try:
        policy_name, overrides = parse_policy(policy)
        if policy_name not in ("packrat", "packrat-ewma"):
            raise PolicyError(f"--policy {policy!r}: fat and thin are always simulated; choose packrat or packrat-ewma")
        parse_overrides(overrides)  # a bad option is named before anything else is read
    except PolicyError as exc:
        raise BadInput(f"--policy: {exc}") from None
    prof = load_profile_arg(profile)
    validate.positive_int(cores, "--cores", error=BadInput)
    validate.nonnegative_int(seed, "--seed", error=BadInput)
    output_dir_arg(out, "--out")  # before simulating: parent exists, not a symlink or a file
    _check_out_files(out, (policy_name, "fat", "thin"))  # and no symlink, FIFO or directory in a file's place
    try:
        wl = load_workload(workload)
    except WorkloadError as exc:
        raise BadInput(f"--workload: {exc}") from None
    closed = isinstance(wl, CLOSED_LOOPS)
    config = _sim_config(parse_overrides(load_overrides(overrides, closed=closed)) if overrides else None,
                         start_ms, warmup)
    from packrat_sim.predictor import corun, priced_profile

    co = corun(prof, isolated)
    # a library error (a PackratError naming the value) reaches the entry point: exit 2
    comparison = compare_plans(priced_profile(prof, co), cores, wl, seed=seed, config=config,
                               policies=(policy_name, "fat", "thin"))
    written, write_error = _write_out(comparison, out) if out is not None else ([], None)
    notes = co.notes(p for r in comparison.results for p in r.plans)
    if json_out:
        obj = dict(comparison.to_json(), **corun_fields(co, notes))
        if out is not None:
            obj["files"] = written
        emit_json(obj)
    else:
        print(format_comparison(comparison))
        print_corun(co.describe(), notes)
        if written:
            print(f"wrote {len(written)} files to {out}")
    if write_error is not None:  # the results are printed above; the files are not
        fail(f"the simulation ran, but {write_error}")
    return 0


def _out_names(names) -> list[str]:
    """The files ``--out`` gets for results named ``names`` (summary.json first)."""
    return ["summary.json", *(f"{n}-{kind}" for n in names for kind in ("requests.csv", "timeline.json", "history.json"))]


def _check_out_files(out: str | None, names) -> None:
    """BadInput naming the first file of the ``--out`` set that cannot be written (checked
    before simulating; the directory itself is :func:`output_dir_arg`'s)."""
    if out is None or not os.path.isdir(out):
        return
    from packrat_sim.files import OutputPathError, check_output_path

    try:
        for name in _out_names(names):
            check_output_path(os.path.join(out, name), "--out file")
    except OutputPathError as exc:
        raise BadInput(str(exc)) from None


def _write_out(comparison, out: str) -> tuple[list[str], str | None]:
    """Write summary.json and, per result, requests CSV, timeline and history JSON, as one
    set (all or none: ``packrat_sim.files.write_files``); (paths written, None), or ([],
    the one-line reason) when the set could not be written."""
    from packrat_sim.files import OutputPathError, write_files

    try:
        output_dir_arg(out, "--out", create=True)
    except BadInput as exc:
        return [], str(exc)
    items = {"summary.json": json.dumps(_finite(comparison.to_json()), indent=1) + "\n"}
    for r in comparison.results:
        items[f"{r.name}-requests.csv"] = r.requests_csv()
        items[f"{r.name}-timeline.json"] = json.dumps(_finite(r.timeline_json())) + "\n"
        items[f"{r.name}-history.json"] = json.dumps(r.history()) + "\n"
    try:
        return [str(p) for p in write_files(out, items, "--out")], None
    except OutputPathError as exc:
        return [], str(exc)


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _fmt(x: float | None, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:,.{digits}f}"


def format_comparison(comparison) -> str:
    """The side-by-side table printed by `packrat simulate` (plain text)."""
    results = comparison.results
    lines = [
        f"simulate: {comparison.profile} on {comparison.cores} cores, seed {comparison.seed}",
        f"workload: {comparison.workload_description}  [{comparison.workload}]",
    ]
    if comparison.synthetic:
        lines.append(f"NOTE: synthetic profile, not a measurement ({comparison.source})")

    def plan_cell(r) -> str:
        if r.adaptive:
            return f"adaptive, {len(r.plans)} epoch(s)"
        return r.plan.describe()

    rows: list[tuple[str, list[str]]] = [
        ("plan", [plan_cell(r) for r in results]),
        ("requests", [f"{r.stats.requests:,}" for r in results]),
        ("request latency p50 ms", [_fmt(r.stats.request_latency.p50_ms) for r in results]),
        ("request latency p90 ms", [_fmt(r.stats.request_latency.p90_ms) for r in results]),
        ("request latency p99 ms", [_fmt(r.stats.request_latency.p99_ms) for r in results]),
        ("request latency max ms", [_fmt(r.stats.request_latency.max_ms) for r in results]),
        ("batch latency p50 ms", [_fmt(r.stats.batch_latency.p50_ms) for r in results]),
        ("batch latency p99 ms", [_fmt(r.stats.batch_latency.p99_ms) for r in results]),
        ("mean batch size", [_fmt(r.stats.mean_batch_size) for r in results]),
        ("throughput req/s", [_fmt(r.stats.throughput_per_s) for r in results]),
        ("queueing delay mean ms", [_fmt(r.stats.queueing_delay.mean_ms) for r in results]),
        ("queueing delay p99 ms", [_fmt(r.stats.queueing_delay.p99_ms) for r in results]),
        ("core utilisation %", [_fmt(100.0 * r.stats.utilisation) for r in results]),
        ("reconfigurations", [str(len(r.reconfigurations)) for r in results]),
    ]
    label_w = max(len(k) for k, _ in rows)
    widths = [max(len(r.name), *(len(v[i]) for _, v in rows)) for i, r in enumerate(results)]
    header = " " * label_w + "  " + "  ".join(r.name.rjust(w) for r, w in zip(results, widths))
    lines += ["", header]
    for label, values in rows:
        lines.append(label.ljust(label_w) + "  " + "  ".join(v.rjust(w) for v, w in zip(values, widths)))
    for r in results:
        if r.adaptive:
            lines.append("")
            lines.append(f"{r.name}: starts with {r.plan.describe()} (batch {r.plan.batch})")
            shown = r.reconfigurations[:8]
            for rc in shown:
                lines.extend(format_reconfiguration(rc))
            if len(r.reconfigurations) > len(shown):
                lines.append(f"  ... {len(r.reconfigurations) - len(shown)} more (see --json or --out)")
            if r.decisions and not r.reconfigurations:
                lines.extend(format_no_reconfiguration(r.decision_summary()))
        if r.predicted_cells:
            lines.append(
                f"{r.name}: {len(r.predicted_cells)} (threads, sub-batch) cells not in the profile were predicted "
                "by interpolation"
            )
    return "\n".join(lines)


#: What the priced cost of each kind of switch stands for (``SwitchModel.price_ms``).
SWITCH_COST_MEANING = {
    "re-route": "a routing change, same workers",
    "retarget": "a pause to retarget warm workers in place, then a slower first batch",
    "respawn": "slowed serving while new processes start and warm up",
}


def format_reconfiguration(rc) -> list[str]:
    """Lines explaining one reconfiguration: when, to what, its kind, why, predicted gain, cost."""
    lines = [
        f"  {rc.call_ms / 1000.0:9.3f} s  {rc.from_plan.describe()} -> {rc.to_plan.describe()}"
        f"  ({rc.kind}, switched after {rc.switch_ms - rc.call_ms:.1f} ms)"
    ]
    if rc.reason:
        lines.append(f"               why: {rc.reason}")
        lines.append(
            f"               predicted gain {rc.gain_ms:.1f} ms per "
            f"{'full batch' if rc.reason.startswith('overload') else 'request'}; modelled cost "
            f"{rc.cost_ms:.1f} ms ({SWITCH_COST_MEANING.get(rc.kind, rc.kind)})"
        )
    return lines


def format_no_reconfiguration(summary: dict) -> list[str]:
    """Why the policy kept its first plan (the library's words, indented for the report)."""
    from packrat_sim.simulator import explain_no_reconfiguration

    return [f"  {line}" for line in explain_no_reconfiguration(summary)]
