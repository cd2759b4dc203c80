"""Pure data helpers of the dashboard: no streamlit, no plotly (unit-testable).

The dashboard pages call the library's public functions; what is left for this module
is shaping their results into rows a chart or a table can draw, and finding out at run
time which parts of the toolkit have landed (:func:`find_part`), so that a page for a
part that is missing says so instead of faking it, and lights up once it lands.
"""

from __future__ import annotations

import csv
import importlib
import math
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Iterable, Sequence

# ---------------------------------------------------------------- parts registry


@dataclass(frozen=True)
class Part:
    """One part of the toolkit a page depends on.

    ``module`` is imported at run time; ``needs`` are attribute names it must provide
    (its public API as the page calls it). ``what`` says, for the "not landed yet"
    message, what the page will do with it.
    """

    key: str
    title: str
    issue: int
    module: str
    needs: tuple[str, ...]
    what: str


PARTS: dict[str, Part] = {
    p.key: p
    for p in (
        Part("allocation", "Z3 plan certificate", 6, "checker.allocation", ("certify",),
             "certify the plan optimal with Z3 (checker.allocation.certify) and show the verdict and time"),
        Part("simulator", "SimPy serving simulator", 5, "packrat_sim.simulator", ("compare_plans", "SimConfig", "POLICIES"),
             "simulate a workload against Packrat and the baselines (packrat_sim.simulator.compare_plans) and draw "
             "latency CDFs, the per-instance timeline, throughput and utilisation"),
        Part("workload", "workload shapes", 5, "packrat_sim.workload", ("parse_workload", "describe"),
             "parse the workload spec (packrat_sim.workload.parse_workload)"),
        Part("linearizability", "linearizability checker", 7, "checker.linearizability", ("check", "explain"),
             "check an uploaded history (checker.linearizability.check) and draw its linearization"),
        Part("history", "history formats", 7, "checker.history", ("parse_history", "detect_format", "HistoryError"),
             "read JSON / Jepsen / Porcupine-kv histories (checker.history.parse_history)"),
        Part("visualize", "history report", 7, "checker.visualize", ("render_html",),
             "render the history and its linearization as an HTML report (checker.visualize.render_html)"),
        Part("explore", "schedule explorer", 8, "checker.explore", ("explore",),
             "explore the schedules of a reconfiguration protocol variant (checker.explore) "
             "and draw a counterexample as a message sequence diagram"),
        Part("interference", "interference-aware planner", 3, "packrat_sim.interference",
             ("optimize_with_interference",),
             "plan under the profile's interference model (packrat_sim.interference.optimize_with_interference)"),
        Part("export", "plan export", 0, "packrat_sim.export", ("export_plan", "EXPORT_FORMATS"),
             "export the plan as run_cpu launch commands or a TorchServe config (packrat_sim.export)"),
        Part("profiler", "real-machine profiler", 3, "real_runner.profiling", ("measure_profile", "parse_int_list"),
             "measure L[t, b] of a model on this machine (real_runner.profiling.measure_profile)"),
        Part("topology", "machine topology", 3, "real_runner.topology", ("detect",),
             "show this machine's CPUs, cores and sockets (real_runner.topology.detect)"),
        Part("models", "model catalog", 3, "real_runner.models", ("known_models", "get_spec"),
             "list the models this machine can build (real_runner.models.known_models)"),
        Part("executor", "real executor", 3, "real_runner.executor", ("compare_with_fat", "run_plan"),
             "run a plan beside the fat instance on this machine (real_runner.executor.compare_with_fat)"),
        Part("bench", "hardware benchmark", 4, "real_runner.bench", ("run_bench",),
             "benchmark fat vs thin vs plan vs the exhaustive oracle on this machine (real_runner.bench)"),
    )
}


@dataclass(frozen=True)
class PartStatus:
    """Outcome of :func:`find_part`: the module when usable, else why not."""

    part: Part
    module: ModuleType | None
    state: str  # "ok" | "missing" | "incomplete" | "broken"
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.module is not None

    def message(self) -> str:
        """One plain sentence for an ``st.info`` / ``st.warning`` box."""
        p = self.part
        where = f"`{p.module.replace('.', '/')}.py`" + (f" (issue {p.issue})" if p.issue else "")
        if self.state == "ok":
            return f"{p.title}: {where} is available."
        if self.state == "missing":
            return (
                f"The {p.title} has not landed yet: {where} does not exist in this checkout. "
                f"Once it lands this page will {p.what}."
            )
        if self.state == "incomplete":
            return (
                f"The {p.title} ({where}) is present but does not provide {self.detail} yet; "
                f"once it does, this page will {p.what}."
            )
        return f"The {p.title} ({where}) failed to import: {self.detail}"


def find_part(key: str) -> PartStatus:
    """Import the part ``key`` of :data:`PARTS` now and check its API; never raises.

    Checked on every call (imports are cached by Python), so a page lights up as soon
    as the module lands (a server restart picks up a module that failed before).
    """
    part = PARTS[key]
    try:
        module = importlib.import_module(part.module)
    except ModuleNotFoundError as exc:
        if exc.name and (part.module == exc.name or part.module.startswith(exc.name + ".")):
            return PartStatus(part, None, "missing")
        return PartStatus(part, None, "broken", f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # a module being written may not import yet
        return PartStatus(part, None, "broken", f"{type(exc).__name__}: {exc}")
    lacking = [n for n in part.needs if not hasattr(module, n)]
    if lacking:
        return PartStatus(part, None, "incomplete", ", ".join(f"`{n}`" for n in lacking))
    return PartStatus(part, module, "ok")


# ------------------------------------------------------------------ profiles


def profile_summary(profile) -> dict:
    """Headline facts of a profile, for the Profiles page."""
    m = profile.machine
    return {
        "model": profile.model,
        "label": profile.label(),
        "synthetic": profile.synthetic,
        "source": profile.source,
        "cells": len(profile.cells),
        "threads": list(profile.threads),
        "batches": list(profile.batches),
        "statistic": profile.statistic,
        "machine": m.cpu_model or "unknown machine",
        "logical_cores": m.logical_cores,
        "interference": profile.interference is not None,
    }


def latency_grid(profile, statistic: str | None = None) -> tuple[list[int], list[int], list[list[float | None]]]:
    """(threads, batches, z) with ``z[i][j]`` = L[threads[i], batches[j]] in ms, None where unprofiled."""
    threads, batches = list(profile.threads), list(profile.batches)
    z = [[profile.latency(t, b, statistic) for b in batches] for t in threads]
    return threads, batches, z


def scaling_series(profile, batch: int, statistic: str | None = None) -> dict:
    """Latency vs threads at one batch, with the ideal linear scaling from the smallest thread count.

    Ideal: L[t0, b] * t0 / t (perfect intra-op parallelism). ``speedup`` is L[t0, b] / L[t, b].
    """
    pts = [(t, profile.latency(t, batch, statistic)) for t in profile.threads]
    pts = [(t, y) for t, y in pts if y is not None]
    if not pts:
        return {"batch": batch, "threads": [], "latency_ms": [], "ideal_ms": [], "speedup": []}
    t0, y0 = pts[0]
    return {
        "batch": batch,
        "threads": [t for t, _ in pts],
        "latency_ms": [y for _, y in pts],
        "ideal_ms": [y0 * t0 / t for t, _ in pts],
        "speedup": [y0 / y for _, y in pts],
    }


def interference_series(interference, max_cores: int) -> dict:
    """Measured points and the interpolated slowdown curve 0..max_cores of an Interference."""
    xs = list(range(0, max(1, max_cores) + 1))
    return {
        "points": [(int(k), float(s)) for k, s in interference.points],
        "cores": xs,
        "slowdown": [interference.slowdown(k) for k in xs],
    }


def packrat_series(text: str) -> list[dict[str, str]]:
    """The series (values of Packrat's series columns) present in a Packrat CSV, sorted.

    A cheap header-level scan so the page can offer a choice; the import itself and
    all validation is ``packrat_sim.profile.import_packrat_csv``. Returns [] when the
    text is not a CSV with a header.
    """
    from packrat_sim.profile import PACKRAT_SERIES_COLUMNS

    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        rows = list(csv.reader(text.splitlines()))
    except csv.Error:
        return []
    if not rows:
        return []
    names = [h.strip().lower() for h in rows[0]]
    cols = [(c, names.index(c)) for c in PACKRAT_SERIES_COLUMNS if c in names]
    seen = set()
    for row in rows[1:]:
        if not row or all(not x.strip() for x in row) or len(row) < len(names):
            continue
        seen.add(tuple((c, row[i].strip()) for c, i in cols))
    return [dict(k) for k in sorted(seen)]


def _glob_escape(value: str) -> str:
    return "".join(f"[{ch}]" if ch in "*?[" else ch for ch in value)


def series_selectors(series: dict[str, str]) -> list[tuple[str, str]]:
    """Selectors for ``import_packrat_csv(series=...)`` matching exactly this series."""
    return [(c, _glob_escape(v)) for c, v in series.items()]


def series_label(series: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in series.items()) or "(single series)"


# ------------------------------------------------------------------- planner


def compact(groups: Iterable[Sequence[int]]) -> str:
    """Packrat's compact form ``count x threads t x sub-batch`` joined with ``+``."""
    return " + ".join(f"{n} x {t}t x {b}" for n, t, b in groups)


def _socket_of_each(threads: list[int], caps: tuple[int, ...]) -> list[int]:
    """A socket per instance so that each socket's instances fit its cores (exact packing
    from checker.allocation when available, else first-fit decreasing)."""
    try:
        from checker.allocation import pack_into_sockets

        found = pack_into_sockets(threads, caps)
        if found is not None:
            return list(found)
    except ImportError:
        pass
    free, out = list(caps), [0] * len(threads)
    for i in sorted(range(len(threads)), key=lambda i: -threads[i]):
        k = next((k for k, room in enumerate(free) if room >= threads[i]), max(range(len(free)), key=free.__getitem__))
        free[k] -= threads[i]
        out[i] = k
    return out


def core_layout(plan_json: dict, cores_per_socket: int | None = None) -> list[int | None]:
    """For each core 0..cores-1, the index of the instance drawn on it (None: idle).

    Uses the instances' pinned ``cores`` when the plan has them. Otherwise the instances
    are laid out contiguously in plan order, inside their socket when ``cores_per_socket``
    splits the cores into sockets (the optimizer's ``socket_capacities``): the drawing
    the page labels as such.
    """
    from packrat_sim.optimizer import socket_capacities

    cores = int(plan_json["cores"])
    owner: list[int | None] = [None] * cores
    instances = plan_json["instances"]
    if instances and all(inst.get("cores") for inst in instances):
        for k, inst in enumerate(instances):
            for c in inst["cores"]:
                if 0 <= c < cores:
                    owner[c] = k
        return owner
    caps = socket_capacities(cores, cores_per_socket)
    threads = [int(inst["threads"]) for inst in instances]
    socket = _socket_of_each(threads, caps) if len(caps) > 1 else [0] * len(threads)
    starts = [sum(caps[:k]) for k in range(len(caps))]
    nxt = list(starts)
    for k, t in enumerate(threads):
        s = socket[k]
        for _ in range(t):
            if nxt[s] < cores:
                owner[nxt[s]] = k
                nxt[s] += 1
    return owner


def batch_sweep(profile, cores: int, batches: Sequence[int], options) -> list[dict]:
    """The optimal plan, fat and thin latency for each batch size on ``cores`` cores.

    One ``PlanTable`` answers every batch when the options allow it (heterogeneous,
    unconstrained); otherwise ``optimize`` runs per batch. Rows of infeasible batches
    carry ``plan_ms=None`` and the optimizer's reason.
    """
    from packrat_sim import plan as plans
    from packrat_sim.optimizer import OptimizerError, PlanTable, optimize
    from packrat_sim.plan import PlanError
    from packrat_sim.profile import ProfileError

    batches = sorted({int(b) for b in batches if int(b) >= 1})
    if not batches:
        return []
    table = None
    if not options.homogeneous and not options.constrained:
        table = PlanTable(profile, cores, max(batches), options)
    rows = []
    for b in batches:
        row: dict[str, Any] = {"batch": b}
        try:
            best = table.plan(cores, b) if table is not None else optimize(profile, b, cores, options)
            row.update(plan=best.describe(), groups=[list(g) for g in best.groups()], plan_ms=best.predicted_ms,
                       instances=len(best.instances))
        except (OptimizerError, PlanError, ProfileError) as exc:
            row.update(plan=None, groups=None, plan_ms=None, instances=0, reason=str(exc))
        try:
            row["fat_ms"] = plans.plan_latency(plans.fat(b, cores), profile.predict)
            row["thin_ms"] = plans.plan_latency(plans.thin(b, cores), profile.predict)
        except (PlanError, ProfileError):
            row["fat_ms"] = row["thin_ms"] = None
        ok = row["plan_ms"] is not None and row["fat_ms"] is not None
        row["speedup_vs_fat"] = row["fat_ms"] / row["plan_ms"] if ok else None
        rows.append(row)
    return rows


def powers_of_two(upto: int) -> list[int]:
    """1, 2, 4, ... up to ``upto`` inclusive."""
    out, b = [], 1
    while b <= upto:
        out.append(b)
        b *= 2
    return out


def fmt_ms(x: float | None) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.2f} ms"


# ----------------------------------------------------------------- simulator


def workload_spec(kind: str, f: dict) -> str:
    """The workload spec string (packrat_sim.workload grammar) of the editor's fields.

    ``kind``: closed | poisson | steps | diurnal | spec (``f["spec"]`` verbatim). Open loops
    take ``max_batch`` and ``max_delay_ms``. Pure; validation is ``parse_workload``'s.
    """
    def num(x) -> str:
        return f"{float(x):g}"

    if kind == "spec":
        return str(f.get("spec", "")).strip()
    if kind == "closed":
        items = [f"batch={int(f['batch'])}", f"requests={int(f['requests'])}", f"clients={int(f.get('clients', 1))}"]
        if f.get("think_ms"):
            items.append(f"think={num(f['think_ms'])}ms")
        return "closed:" + ",".join(items)
    tail = [f"max_batch={int(f.get('max_batch', 64))}", f"max_delay={num(f.get('max_delay_ms', 10))}ms"]
    if kind == "poisson":
        return f"poisson:rate={num(f['rate'])}/s,duration={num(f['duration_s'])}s," + ",".join(tail)
    if kind == "steps":
        steps = [s.strip() for s in str(f.get("steps", "")).split(",") if s.strip()]
        return "steps:" + ",".join(steps + tail)
    if kind == "diurnal":
        return (f"diurnal:base={num(f['base'])}/s,peak={num(f['peak'])}/s,period={num(f['period_s'])}s,"
                f"duration={num(f['duration_s'])}s," + ",".join(tail))
    raise ValueError(f"unknown workload kind {kind!r}")


def cdf_points(values, max_points: int = 600) -> list[float]:
    """At most ``max_points`` quantiles of ``values`` (sorted), enough to draw an empirical CDF."""
    import numpy as np

    xs = np.sort(np.asarray(values, dtype=float))
    if xs.size <= max_points:
        return xs.tolist()
    q = np.linspace(0.0, 1.0, max_points)
    return np.quantile(xs, q).tolist()


def sim_rows(results) -> list[dict]:
    """One summary row per SimResult (``packrat_sim.simulator``), latencies in ms."""
    rows = []
    for r in results:
        s = r.stats
        rows.append({
            "policy": r.name,
            "initial plan": r.plan.describe(),
            "requests": s.requests,
            "batches": s.batches,
            "throughput req/s": s.throughput_per_s,
            "mean batch": s.mean_batch_size,
            "p50 ms": s.request_latency.p50_ms,
            "p90 ms": s.request_latency.p90_ms,
            "p99 ms": s.request_latency.p99_ms,
            "batch p50 ms": s.batch_latency.p50_ms,
            "utilisation": s.utilisation,
            "reconfigurations": len(r.reconfigurations),
        })
    return rows


def request_latencies(result):
    """Per-request latency (completion - arrival, ms) of a SimResult."""
    rec = result.records
    return (rec.completion_ms - rec.arrival_ms).tolist()


def sim_gantt(result, t0_ms: float, t1_ms: float, max_bars: int = 2500) -> tuple[list[dict], list[dict]]:
    """Per-instance timeline of a SimResult in the window [t0, t1] ms.

    Lanes are ``e<epoch> #<j> <t>t`` (instance j of the epoch's plan). Each batch
    dispatched in the window gives one bar per instance that got a share of it, from the
    dispatch to the batch's completion (sub-batches start together; the batch ends with
    its slowest instance). A restarting reconfiguration adds the new instances' start-up
    and warm-up bar (decision to routing switch). Marks: reconfigure (decision) and switch.
    """
    from packrat_sim.simulator import split_batch

    rec = result.records
    spans: list[dict] = []
    marks: list[dict] = []
    for rc in result.reconfigurations:
        for t, what in ((rc.call_ms, f"reconfigure -> e{rc.to_epoch} ({rc.to_plan.describe()})"),
                        (rc.switch_ms, f"switch to e{rc.to_epoch}")):
            if t0_ms <= t <= t1_ms:
                marks.append({"t": t, "label": what})
        if rc.restarted and rc.switch_ms >= t0_ms and rc.call_ms <= t1_ms:
            for j, inst in enumerate(rc.to_plan.instances):
                spans.append({"lane": f"e{rc.to_epoch} #{j} {inst.threads}t", "start": rc.call_ms, "end": rc.switch_ms,
                              "group": "start + warm-up", "label": f"instance #{j} of epoch {rc.to_epoch} starting"})
    for k in range(rec.batch_size.size):
        d, c = float(rec.batch_dispatch_ms[k]), float(rec.batch_completion_ms[k])
        if c < t0_ms or d > t1_ms:
            continue
        e = int(rec.batch_epoch[k])
        plan = result.plans[e]
        n = int(rec.batch_size[k])
        for j, (inst, share) in enumerate(zip(plan.instances, split_batch(plan, n))):
            if share == 0:
                continue
            spans.append({"lane": f"e{e} #{j} {inst.threads}t", "start": d, "end": c, "group": f"epoch {e}",
                          "label": f"batch {k}: {share} of {n} requests on instance #{j} ({inst.threads} threads)"})
        if len(spans) >= max_bars:
            break
    return spans, marks


# -------------------------------------------------------------- verification


def history_ops(history, result, model_name: str, max_ops: int = 300) -> tuple[list[dict], str]:
    """Operations of a checked history for the chart, with their role in the evidence.

    Each row: client, call, ret (a pending operation runs to the end of the history), label
    (the model's description), order (position in its partition's linearization, or None),
    role: ``linearized`` | ``blocked`` (cannot be linearized) | ``left out`` | ``pending``.
    Long histories are cut to ``max_ops`` operations around the first blocked one; the
    second value says what was cut ("" if nothing).
    """
    from checker.history import UNKNOWN_OUTPUT
    from checker.models import get_model

    mdl = get_model(model_name)
    order: dict[int, int] = {}
    blocked: set[int] = set()
    for part in result.partitions:
        for pos, i in enumerate(part.linearization):
            order[i] = pos + 1
        if part.blocked is not None and part.result.value != "ok":
            blocked.add(part.blocked)
    ops = list(history.operations)
    n = len(ops)
    times = [o.ret for o in ops if o.ret is not None] + [o.call for o in ops] or [0]
    end = max(times) + max(1, (max(times) - min(times)) * 0.1)  # pending operations run past the end
    lo, hi = 0, n
    note = ""
    if n > max_ops:
        ordered = sorted(range(n), key=lambda i: (ops[i].call, i))
        centre = ordered.index(min(blocked)) if blocked else 0
        lo = max(0, min(centre - max_ops // 2, n - max_ops))
        hi = lo + max_ops
        keep = ordered[lo:hi]
        note = f"showing {max_ops} of {n} operations (by call time, around the first failure)"
    else:
        keep = list(range(n))
    rows = []
    for i in keep:
        op = ops[i]
        out = UNKNOWN_OUTPUT if op.ret is None else op.output
        try:
            label = mdl.describe_operation(op.input, out)
        except Exception:
            label = f"{op.input!r} -> {out!r}"
        role = ("blocked" if i in blocked else "linearized" if i in order
                else "pending" if op.ret is None else "left out")
        rows.append({"index": i, "client": op.client, "call": op.call, "ret": end if op.ret is None else op.ret,
                     "label": label, "order": order.get(i), "role": role})
    return rows, note


EVENT_COLORS = {"deliver": "#333333", "drop": "#E45756", "duplicate": "#F58518", "crash": "#B279A2",
                "restart": "#54A24B"}


def schedule_messages(schedule) -> list[dict]:
    """Arrows of a message sequence diagram for an explorer schedule (``checker.actors.Event``s):
    deliveries, drops and duplicates go from ``src`` to ``dst``; a crash or restart is a
    self-arrow on the actor."""
    out = []
    for k, ev in enumerate(schedule):
        text = ev.describe()
        label = text.split(": ", 1)[1] if ev.kind == "deliver" and ": " in text else text
        src = ev.src if ev.src is not None else ev.dst
        out.append({"step": k + 1, "src": src, "dst": ev.dst, "label": f"{k + 1}. {label}",
                    "kind": ev.kind, "color": EVENT_COLORS.get(ev.kind, "#333333")})
    return out


def schedule_actors(names, schedule) -> list[str]:
    """The system's actors that take part in ``schedule``, in the system's order (others left out)."""
    used = {ev.dst for ev in schedule} | {ev.src for ev in schedule if ev.src is not None}
    return [n for n in names if n in used] + sorted(used - set(names))
