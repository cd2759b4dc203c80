"""Pure data helpers of the dashboard: no streamlit, no plotly (unit-testable).

The dashboard pages call the library's public functions (imported directly: a renamed
function fails the tests); what is left for this module is shaping their results into
rows a chart or a table can draw, and small pure formatting rules (units, plurals,
speedups) shared by every page.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Sequence
from typing import Any

# ------------------------------------------------------------------ inputs

#: Upload limits (MB), shown by each uploader and enforced by Streamlit: a profile or a
#: profile CSV is kilobytes to a few MB; a history of 100,000 operations is about 10 MB.
PROFILE_UPLOAD_MB = 16
HISTORY_UPLOAD_MB = 64
#: The environment variable that carries ``packrat ui --data-dir DIR`` to the pages: the one
#: directory (besides uploads) the Sweep page may read profiles and trace files from.
DATA_DIR_ENV = "PACKRAT_UI_DATA_DIR"


def data_dirs(session_dir: str | None) -> list[str]:
    """The real paths the Sweep page may read files under: the session's own directory (its
    uploads; None: not made yet, so no uploads) and the ``--data-dir`` the dashboard was
    started with (if any)."""
    roots = [] if session_dir is None else [os.path.realpath(session_dir)]
    given = os.environ.get(DATA_DIR_ENV)
    if given:
        roots.append(os.path.realpath(given))
    return roots


def _inside(path: str, roots: Sequence[str]) -> bool:
    """``path``, links resolved, lies under one of ``roots`` (real paths)."""
    real = os.path.realpath(path)
    return any(os.path.commonpath([real, root]) == root for root in roots)


def _trace_path(spec: str) -> str | None:
    """The file a ``trace:`` workload spec names (the library's parser), "" when the spec does
    not parse (refused by the caller: nothing under a root is named), None for other kinds."""
    from packrat_sim.errors import PackratError
    from packrat_sim.workload import TraceFile, parse_workload

    if spec.partition(":")[0].strip() != "trace":
        return None
    try:
        wl = parse_workload(spec)
    except PackratError:
        return ""
    return wl.path if isinstance(wl, TraceFile) else None


def refused_server_file(profiles: Sequence[str], workloads: Sequence[str], roots: Sequence[str]) -> str | None:
    """Why the Sweep page must not read one of the files a grid names (the first one), or
    None: every profile is ``builtin:...`` or a file under ``roots`` (links resolved), and
    every ``trace:`` workload's file is under ``roots``. Reads no file."""
    where = " or ".join(repr(r) for r in roots) or "the session's uploads (none yet)"
    for spec in profiles:
        if not spec.startswith("builtin:") and not _inside(spec, roots):
            return (f"profile {spec!r} is not a built-in profile, an upload, or a file under {where}: start the "
                    "dashboard with `packrat ui --data-dir DIR` to read profiles from DIR")
    for spec in workloads:
        path = _trace_path(spec)
        if path is not None and (not path or not _inside(path, roots)):
            return (f"trace file {path!r} is not an upload or a file under {where}: start the dashboard with "
                    "`packrat ui --data-dir DIR` to read traces from DIR")
    return None

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
    xs = list(range(max(1, max_cores) + 1))
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

    text = text.removeprefix("\ufeff")
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
    from checker.allocation import pack_into_sockets

    found = pack_into_sockets(threads, caps)
    if found is not None:
        return list(found)
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


def batch_sweep(profile, cores: int, batches: Sequence[int], options, isolated: bool = False) -> list[dict]:
    """The optimal plan, fat and thin latency for each batch size on ``cores`` cores.

    Everything is priced as the planner prices its plan (``ui.cli.plan.plan_report``): one
    ``packrat_sim.predictor.Predictor`` over the profiled cells, plan and baselines alike,
    so a baseline never beats the plan; a baseline the options rule out has ``*_ms`` None
    and a ``*_note`` saying why. Calibrated by default: with a co-run model (unless
    ``isolated``) plans are planned and priced under it. One ``PlanTable`` answers every
    batch when the options allow it and the pricing is isolated without dispatch costs;
    otherwise the planner runs per batch. Rows of infeasible batches carry
    ``plan_ms=None`` and the optimizer's reason.
    """
    from packrat_sim.optimizer import OptimizerError, PlanTable
    from packrat_sim.plan import PlanError
    from packrat_sim.predictor import Predictor, PredictorError, baselines, best_plan, corun
    from packrat_sim.profile import ProfileError

    batches = sorted({int(b) for b in batches if int(b) >= 1})
    if not batches:
        return []
    calibrated = corun(profile, isolated).calibrated
    predictor = Predictor(profile, options.statistic, interference=calibrated)
    table = None
    if not calibrated and not options.homogeneous and not options.constrained and not profile.dispatch:
        table = PlanTable(profile, cores, max(batches), options)
    rows = []
    for b in batches:
        row: dict[str, Any] = {"batch": b}
        try:
            best = table.plan(cores, b) if table is not None else best_plan(predictor, b, cores, options)
            row.update(plan=best.describe(), groups=[list(g) for g in best.groups()], plan_ms=best.predicted_ms,
                       instances=len(best.instances))
        except (OptimizerError, PlanError, ProfileError, PredictorError) as exc:
            row.update(plan=None, groups=None, plan_ms=None, instances=0, reason=str(exc))
        base = baselines(predictor, b, cores, options)
        for name in ("fat", "thin"):
            row[f"{name}_ms"], row[f"{name}_note"] = base[name].ms, base[name].note
        ok = row["plan_ms"] is not None and row["fat_ms"] is not None
        row["speedup_vs_fat"] = row["fat_ms"] / row["plan_ms"] if ok else None
        rows.append(row)
    return rows


def corun_table(profile, report: dict, statistic: str | None = None) -> list[dict]:
    """Isolated and calibrated latency side by side of every plan a planner report prices:
    the plan, the isolated-profile plan (when the report was planned under a co-run model
    and chose another), fat and thin. ``calibrated ms`` is None without a co-run model.
    Priced by ``packrat_sim.predictor.Predictor``; rows whose plan is unavailable are left out."""
    from packrat_sim.plan import Instance, Plan
    from packrat_sim.predictor import Predictor

    alone = Predictor(profile, statistic, interference=False)
    cal = Predictor(profile, statistic, interference=True) if profile.interference is not None else None
    info = report.get("interference") or {}
    named = [("plan", report["groups"]), ("isolated-profile plan", info.get("isolated_groups")),
             ("fat", report.get("fat_groups")), ("thin", report.get("thin_groups"))]
    rows = []
    for name, groups in named:
        if not groups or (name == "isolated-profile plan" and groups == report["groups"]):
            continue
        plan = Plan(tuple(Instance(t, b) for n, t, b in groups for _ in range(n)), report["batch"], report["cores"])
        rows.append({"plan": name, "configuration": compact(groups), "isolated ms": alone.plan_ms(plan),
                     "calibrated ms": None if cal is None else cal.plan_ms(plan)})
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

    ``kind``: closed (a request count) | closed_steps (batch sizes stepping over time,
    ``f["steps"]`` as ``B@DURATION, ...``) | poisson | steps | diurnal | spec (``f["spec"]``
    verbatim). Open loops take ``max_batch`` and ``max_delay_ms``; closed loops ``clients``
    and ``think_ms``. Pure; validation is ``parse_workload``'s.
    """
    def num(x) -> str:
        return f"{float(x):g}"

    if kind == "spec":
        return str(f.get("spec", "")).strip()
    if kind in ("closed", "closed_steps"):
        if kind == "closed":
            items = [f"batch={int(f['batch'])}", f"requests={int(f['requests'])}"]
        else:
            items = [s.strip() for s in str(f.get("steps", "")).split(",") if s.strip()]
        items.append(f"clients={int(f.get('clients', 1))}")
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
    and warm-up bar (decision to routing switch). Marks: reconfigure (decision) and switch,
    each {"t", "kind", "short" (its label on the chart), "label" (in full, for the hover)}.
    """
    from packrat_sim.simulator import split_batch

    rec = result.records
    spans: list[dict] = []
    marks: list[dict] = []
    for rc in result.reconfigurations:
        for t, kind, short, what in (
                (rc.call_ms, "reconfigure", f"reconfigure -> e{rc.to_epoch}",
                 f"reconfigure -> e{rc.to_epoch} ({rc.to_plan.describe()}) at {rc.call_ms:.1f} ms"),
                (rc.switch_ms, "switch", f"switch to e{rc.to_epoch}",
                 f"switch to e{rc.to_epoch} at {rc.switch_ms:.1f} ms")):
            if t0_ms <= t <= t1_ms:
                marks.append({"t": t, "label": what, "short": short, "kind": kind})
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
    scale, t0 = time_scale(history)[1:]
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
        ret = end if op.ret is None else op.ret
        rows.append({"index": i, "client": op.client, "call": (op.call - t0) * scale, "ret": (ret - t0) * scale,
                     "label": label, "order": order.get(i), "role": role})
    return rows, note


NS_SPAN = 100_000  # a history spanning at least this many time units is taken to be in ns


def time_scale(history) -> tuple[str, float, float]:
    """(unit, factor, origin) to show a history's times: histories of real and simulated runs
    are in ns and are shown in ms since the first call; small logical clocks (explored
    schedules) are shown as they are, in "history time units"."""
    times = [o.call for o in history.operations] + [o.ret for o in history.operations if o.ret is not None]
    if not times:
        return "", 1.0, 0.0
    lo, hi = min(times), max(times)
    if hi - lo >= NS_SPAN:
        return "ms since the first call", 1e-6, float(lo)
    return "", 1.0, 0.0


def partition_label(part) -> str:
    """A partition's key as a person reads it (``all operations`` for the single partition)."""
    return "all operations" if part.key in (None, (), "") else f"key {part.key!r}"


def linearization_points(history, model_name: str, order: Sequence[int], rows: Sequence[dict]) -> list[dict]:
    """The earliest consistent linearization point of each operation of ``order`` (history
    indices, in linearization order): ``max(call, previous point)``, never after its return;
    with the model state after it (``checker.linearizability.trace``). Times scaled like
    ``rows`` (:func:`history_ops`); operations not drawn in ``rows`` are skipped."""
    from checker.linearizability import trace

    drawn = {r["index"]: r for r in rows}
    steps = trace(history, model_name, list(order))
    out, t = [], -math.inf
    for pos, step in enumerate(steps):
        r = drawn.get(step.index)
        if r is None:
            continue
        t = max(t, r["call"])
        t = min(t, r["ret"])
        out.append({"t": t, "client": r["client"], "order": pos + 1, "label": step.description,
                    "state": step.after if step.legal else f"ILLEGAL here (state before: {step.before})",
                    "legal": step.legal})
    return out


def violation_zoom(rows: Sequence[dict]) -> tuple[float, float] | None:
    """An x range around the first blocked operation (its interval and as much again on both
    sides, so the operations it overlaps are visible); None when nothing is blocked."""
    blocked = [r for r in rows if r["role"] == "blocked"]
    if not blocked:
        return None
    b = min(blocked, key=lambda r: r["call"])
    width = max(b["ret"] - b["call"], 1e-9)
    near = [r for r in rows if r["ret"] >= b["call"] - width and r["call"] <= b["ret"] + width]
    lo = min(r["call"] for r in near)
    hi = max(r["ret"] for r in near)
    pad = (hi - lo) * 0.1 or width
    return lo - pad, hi + pad


#: Arrow colours of the message sequence diagram: mid-tones with a contrast of at least 3:1
#: against both Streamlit's light (#FFFFFF) and dark (#0E1117) backgrounds.
EVENT_COLORS = {"deliver": "#4C8BF5", "drop": "#E45756", "duplicate": "#D9730D", "crash": "#B279A2",
                "restart": "#54A24B"}


def contrast_ratio(fg: str, bg: str) -> float:
    """WCAG contrast ratio of two ``#RRGGBB`` colours (1..21)."""
    def lum(hex_: str) -> float:
        rgb = [int(hex_.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4)]
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    a, b = sorted((lum(fg), lum(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def schedule_messages(schedule, breaking_step: int | None = None) -> list[dict]:
    """Arrows of a message sequence diagram for an explorer schedule (``checker.actors.Event``s):
    deliveries, drops and duplicates go from ``src`` to ``dst``; a crash or restart is a
    self-arrow on the actor. ``breaking_step`` (1-based) is marked ``breaks``."""
    out = []
    for k, ev in enumerate(schedule):
        text = ev.describe()
        label = text.split(": ", 1)[1] if ev.kind == "deliver" and ": " in text else text
        src = ev.src if ev.src is not None else ev.dst
        out.append({"step": k + 1, "src": src, "dst": ev.dst, "label": f"{k + 1}. {label}",
                    "kind": ev.kind, "color": EVENT_COLORS.get(ev.kind, EVENT_COLORS["deliver"]),
                    "breaks": breaking_step == k + 1})
    return out


def schedule_actors(names, schedule) -> list[str]:
    """The system's actors that take part in ``schedule``, in the system's order (others left out)."""
    used = {ev.dst for ev in schedule} | {ev.src for ev in schedule if ev.src is not None}
    return [n for n in names if n in used] + sorted(used - set(names))


# ------------------------------------------------------ counterexample stepper


def _brief(value: Any, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def counterexample_steps(protocol, schedule, timeout: float | None = 10.0) -> dict:
    """Replay ``schedule`` from the protocol's initial state one event at a time (pure).

    Returns {"actors": names, "initial": {actor: state}, "steps": [{"step", "event", "actor",
    "before": {actor: state}, "after": {actor: state}, "changed": [actors], "records",
    "broken": [invariant: message], "fields": {actor: :func:`state_changes`}}], "breaking_step":
    the first step after which an invariant is broken, else the first step after which the
    history is not linearizable (None when neither)}. States are shown whole, as ``repr``.
    """
    from checker.linearizability import check

    system = protocol.system
    state = system.start().state
    names = list(system.names)

    def states(s) -> dict:
        return {n: repr(system.state_of(s, n)) for n in names}  # whole: a cut state hides what changed

    steps = []
    breaking = None
    cur = states(state)
    initial = dict(cur)
    for i, ev in enumerate(schedule):
        out = system.step(prev := state, ev)
        state = out.state
        nxt = states(state)
        broken = []
        for inv in protocol.invariants:
            if inv.quiescent and not (i + 1 == len(schedule) and system.terminal(state)):
                continue
            problem = inv.check(system, state)
            if problem is not None:
                broken.append(f"{inv.name}: {problem}")
        if broken and breaking is None:
            breaking = i + 1
        steps.append({"step": i + 1, "event": ev.describe(), "actor": ev.dst, "before": cur, "after": nxt,
                      "changed": [n for n in names if cur[n] != nxt[n]],
                      "fields": {n: state_changes(system.state_of(prev, n), system.state_of(state, n)) for n in names},
                      "records": [_brief(r, 120) for r in out.records], "broken": broken,
                      "history": protocol.history(state)})
        cur = nxt
    if breaking is None:  # the first prefix whose history is not linearizable
        for s in steps:
            if check(s["history"], protocol.model, timeout=timeout).illegal:
                breaking = s["step"]
                break
    for s in steps:
        s.pop("history")
    return {"actors": names, "initial": initial, "steps": steps, "breaking_step": breaking}


def state_changes(before: Any, after: Any) -> str:
    """What changed between two states of an actor, in short: ``field: old -> new`` for each
    field of a dataclass state that changed, ``[i]: old -> new`` for each item of a tuple of the
    same length (``; ``-separated), the whole values for any other state, "" when equal. Pure."""
    import dataclasses

    if before == after:
        return ""
    if dataclasses.is_dataclass(before) and type(before) is type(after):
        pairs = [(f.name, getattr(before, f.name), getattr(after, f.name)) for f in dataclasses.fields(before)]
    elif isinstance(before, tuple) and isinstance(after, tuple) and len(before) == len(after):
        pairs = [(f"[{i}]", a, b) for i, (a, b) in enumerate(zip(before, after))]
    else:
        return f"{before!r} -> {after!r}"
    return "; ".join(f"{name}: {a!r} -> {b!r}" for name, a, b in pairs if a != b)


def actor_state_rows(step: dict) -> list[dict]:
    """Table rows of one stepper step: each actor, what changed in its state (field by field:
    readable where the whole state is too wide for its cell), and its whole state before and after."""
    fields = step.get("fields", {})
    return [{"actor": a, "changed": "yes" if a in step["changed"] else "", "what changed": fields.get(a, ""),
             "before": step["before"][a], "after": step["after"][a]} for a in step["before"]]


def violation_title(violation) -> str:
    """The heading of a counterexample, in words (an invariant's name, or "the history is not
    linearizable under the <model> model"), never the raw property name."""
    if violation.kind == "linearizability":
        model = violation.name.partition("(")[2].rstrip(")") or "its"
        return f"the history is not linearizable under the {model} model"
    return f"invariant {violation.name!r} is broken"


# ------------------------------------------------------------ simulator series


def sim_time_series(result, bin_s: float | None = None) -> dict:
    """Latency, throughput and queue length of a SimResult over time (pure).

    Bins of ``bin_s`` seconds (default: the run cut into ~100 bins, at least 10 ms):
    ``p50_ms`` / ``p99_ms``: latency of the requests completed in the bin (None when
    none); ``throughput_per_s``: requests completed per second in the bin. ``queue``:
    requests arrived and not yet dispatched, exactly, at every arrival and dispatch
    (``queue_t_s``). ``marks``: reconfiguration decisions and switches (``t_s``, ``label``).
    """
    import numpy as np

    rec = result.records
    arr = np.asarray(rec.arrival_ms, dtype=float)
    disp = np.asarray(rec.dispatch_ms, dtype=float)
    comp = np.asarray(rec.completion_ms, dtype=float)
    end_ms = float(comp.max()) if comp.size else 1.0
    if bin_s is None:
        bin_s = max(end_ms / 1000.0 / 100.0, 0.01)
    if not bin_s > 0:
        raise ValueError(f"bin_s must be positive, not {bin_s!r}")
    nbins = max(1, int(math.ceil(end_ms / 1000.0 / bin_s)))
    edges = np.arange(nbins + 1) * bin_s * 1000.0
    idx = np.clip(np.searchsorted(edges, comp, side="right") - 1, 0, nbins - 1)
    lat = comp - arr
    p50, p99, thr = [], [], []
    for k in range(nbins):
        sel = lat[idx == k]
        p50.append(float(np.percentile(sel, 50)) if sel.size else None)
        p99.append(float(np.percentile(sel, 99)) if sel.size else None)
        thr.append(sel.size / bin_s)
    ev_t = np.concatenate([arr, disp])
    ev_d = np.concatenate([np.ones(arr.size), -np.ones(disp.size)])
    order = np.lexsort((-ev_d, ev_t))
    q = np.cumsum(ev_d[order])
    t_sorted = ev_t[order]
    last = np.append(t_sorted[1:] != t_sorted[:-1], True)  # one point per instant, after all its events
    q, t_sorted = q[last], t_sorted[last]
    marks = []
    for rc in result.reconfigurations:
        marks.append({"t_s": rc.call_ms / 1000.0, "label": f"reconfigure -> e{rc.to_epoch} ({rc.to_plan.describe()})"})
        marks.append({"t_s": rc.switch_ms / 1000.0, "label": f"switch to e{rc.to_epoch}"})
    return {"t_s": ((edges[:-1] + edges[1:]) / 2000.0).tolist(), "bin_s": bin_s, "p50_ms": p50, "p99_ms": p99,
            "throughput_per_s": thr, "queue_t_s": (t_sorted / 1000.0).tolist(), "queue": q.astype(int).tolist(),
            "marks": marks}


def series_csv(series: dict) -> str:
    """The binned time series as CSV (t_s, p50_ms, p99_ms, throughput_per_s)."""
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["t_s", "p50_ms", "p99_ms", "throughput_per_s"])
    for row in zip(series["t_s"], series["p50_ms"], series["p99_ms"], series["throughput_per_s"]):
        w.writerow(["" if v is None else f"{v:.6g}" for v in row])
    return buf.getvalue()


def rows_csv(rows: Sequence[dict]) -> str:
    """Rows of dicts as CSV (columns of the first row)."""
    import io

    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n", extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return buf.getvalue()


# ------------------------------------------------------------------ hardware


def noise_ms(samples: Sequence[float]) -> float:
    """The measured noise of repeated samples: their interquartile range (ms), 0 for < 2 samples."""
    import numpy as np

    xs = np.asarray([float(x) for x in samples], dtype=float)
    if xs.size < 2:
        return 0.0
    q1, q3 = np.percentile(xs, [25, 75])
    return float(q3 - q1)


def measurement_warnings(rows: Sequence[dict], cores: int) -> list[str]:
    """Warnings about implausible measurements of one hardware run (pure).

    ``rows``: {"label", "groups", "predicted_ms", "measured_ms", "samples_ms"}. Warns when two
    rows are the same configuration yet their medians differ by more than the measured noise
    (3 x the larger IQR, and 10 %); when one configuration is more than ``cores`` times
    faster than another (no split of T cores can do that); and when a measurement is more
    than 3x off its prediction.
    """
    out = []
    for i, a in enumerate(rows):
        for b in rows[i + 1:]:
            if a.get("groups") and a.get("groups") == b.get("groups"):
                gap = abs(a["measured_ms"] - b["measured_ms"])
                noise = 3 * max(noise_ms(a.get("samples_ms", ())), noise_ms(b.get("samples_ms", ())))
                if gap > max(noise, 0.1 * min(a["measured_ms"], b["measured_ms"])):
                    out.append(f"{a['label']} and {b['label']} are the same configuration, yet measured "
                               f"{a['measured_ms']:.2f} vs {b['measured_ms']:.2f} ms, beyond the measured noise "
                               f"(IQR x 3 = {noise:.2f} ms): repeats disagree; rerun with more iterations.")
    ms = [r for r in rows if (r.get("measured_ms") or 0) > 0]
    if len(ms) >= 2:
        fast = min(ms, key=lambda r: r["measured_ms"])
        slow = max(ms, key=lambda r: r["measured_ms"])
        ratio = slow["measured_ms"] / fast["measured_ms"]
        if ratio > max(cores, 1):
            out.append(f"{fast['label']} measured {ratio:.1f}x faster than {slow['label']}, more than the "
                       f"{plural(cores, 'core')} could give: the measurement is implausible (a busy machine?).")
    for r in ms:
        p = r.get("predicted_ms")
        if p and p > 0 and not (1 / 3 <= r["measured_ms"] / p <= 3):
            out.append(f"{r['label']}: measured {r['measured_ms']:.2f} ms vs predicted {p:.2f} ms (more than 3x off); "
                       "the profile may not describe this machine now.")
    return out


def bench_warnings(rows: Sequence[dict], cores: int) -> list[str]:
    """Warnings about benchmark rows (from ``real_runner.bench``): a speedup over fat larger
    than the core count is implausible."""
    out = []
    for r in rows:
        s = r.get("speedup vs fat")
        if s is not None and s > max(cores, 1):
            out.append(f"batch {r['batch']}: the plan measured {s:.2f}x faster than fat on "
                       f"{plural(cores, 'core')}, which no split of the cores can give: the measurement is implausible.")
    return out


def bench_notes(kept: dict) -> list[str]:
    """The measurement notes of a dashboard benchmark (pure). ``kept``: ``jobs.bench_steps``'
    result, whose ``rows`` (one per batch size) and ``conditions`` (each run's
    ``real_runner.bench.run_bench`` ``report["conditions"]``, one per batch size, same order)
    line up. Returns ``batch B: <note>`` for each batch whose conditions carry a note (the
    library's wording: the machine was busy, or the plan was far off its prediction); [] when
    none does or ``kept`` has no conditions."""
    return [f"batch {r['batch']}: {c['note']}" for r, c in zip(kept["rows"], kept.get("conditions") or [])
            if c.get("note")]


# ------------------------------------------------------------------- wording


def plural(n: float, word: str, many: str | None = None) -> str:
    """``1 core``, ``2 cores``."""
    return f"{n:g} {word if n == 1 else (many or word + 's')}" if isinstance(n, float) else \
        f"{n} {word if n == 1 else (many or word + 's')}"


def fmt_speedup(ratio: float | None, what: str = "plan") -> str:
    """``plan is 1.23x faster`` / ``plan is 1.26x slower`` / ``same latency`` (ratio = baseline / plan)."""
    if ratio is None or not math.isfinite(ratio) or ratio <= 0:
        return "n/a"
    if abs(ratio - 1.0) < 0.005:
        return f"{what} has the same latency"
    if ratio > 1:
        return f"{what} is {ratio:.2f}x faster"
    return f"{what} is {1 / ratio:.2f}x slower"


def parse_int_list(text: str, what: str) -> list[int]:
    """Positive integers from ``"1,2,4"`` or ``"1-4"``, in the order written (repeats kept,
    empty items skipped); ValueError naming the bad item. The grammar is
    :func:`packrat_sim.spec.parse_int_list` (its ordered dialect)."""
    from packrat_sim.spec import parse_int_list as parse

    return parse(text, what, sort_unique=False, error=ValueError)


# --------------------------------------------------------------- CLI commands


def _q(value: Any) -> str:
    import shlex

    return shlex.quote(str(value))


def _num(x: float) -> str:
    """A number as the command line should carry it: no trailing ``.0``, every digit kept."""
    return f"{float(x):.15g}"


def _profile_flag(profile_arg: str | None, notes: list[str]) -> str:
    if profile_arg is None:
        notes.append("the current profile is not a built-in: save it (Profiles page) and pass its file as PROFILE.json")
    return f"--profile {_q(profile_arg or 'PROFILE.json')}"


def _plan_flags(options) -> list[str]:
    """The optimizer options as `packrat plan` / `packrat verify` take them (their defaults:
    idle cores allowed, any instances, sub-batches of 1 and up)."""
    out = []
    if options.exact_cores:
        out.append("--exact-cores")
    if options.homogeneous:
        out.append("--homogeneous")
    if options.min_batch != 1:
        out.append(f"--min-batch {options.min_batch}")
    if options.statistic:
        out.append(f"--statistic {options.statistic}")
    return out


def cli_plan(profile_arg: str | None, batch: int, cores: int, options,
             isolated: bool = False) -> tuple[str, list[str], list[str]]:
    """The ``packrat plan`` command of the planner's form: (command, inputs it cannot express,
    notes). Every option the page sets is in it, the CLI's defaults left out."""
    notes: list[str] = []
    cmd = ["packrat plan", _profile_flag(profile_arg, notes), f"--batch {batch}", f"--cores {cores}",
           *_plan_flags(options)]
    if isolated:
        cmd.append("--isolated")
    missing = []
    if options.max_instances:
        missing.append(f"at most {options.max_instances} instances (`packrat plan` has no flag; `packrat verify` has "
                       "--max-instances)")
    if options.cores_per_socket:
        missing.append(f"{options.cores_per_socket} cores per socket (`packrat plan` has no flag; `packrat verify` has "
                       "--cores-per-socket)")
    return " ".join(cmd), missing, notes


def cli_verify(profile_arg: str | None, batch: int, cores: int, options, timeout_s: float,
               isolated: bool = False) -> tuple[str, list[str]]:
    """The ``packrat verify`` command of the planner's Z3 certificate: (command, notes). It
    certifies the optimizer's plan of the same problem, as the page does."""
    notes: list[str] = []
    cmd = ["packrat verify", _profile_flag(profile_arg, notes), f"--batch {batch}", f"--cores {cores}",
           *_plan_flags(options)]
    if options.max_instances:
        cmd.append(f"--max-instances {options.max_instances}")
    if options.cores_per_socket:
        cmd.append(f"--cores-per-socket {options.cores_per_socket}")
    if isolated:
        cmd.append("--isolated")
    cmd.append(f"--timeout {_num(timeout_s)}")
    return " ".join(cmd), notes


def cli_simulate(profile_arg: str | None, cores: int, spec: str, seed: int, isolated: bool = False, *,
                 start_ms: float | None = None, warmup: int | None = None) -> tuple[str, list[str], list[str]]:
    """The ``packrat simulate`` command of the Simulator's form: (command, inputs it cannot
    express, notes). ``start_ms`` / ``warmup``: the reconfiguration model's start-up and
    warm-up; a value other than the library's default goes in as ``--start-ms`` / ``--warmup``."""
    from packrat_sim.simulator import SimConfig

    notes: list[str] = []
    cmd = ["packrat simulate", _profile_flag(profile_arg, notes), f"--cores {cores}", f"--workload {_q(spec)}",
           f"--seed {seed}"]
    if isolated:
        cmd.append("--isolated")
    default = SimConfig()
    for value, dflt, flag in ((start_ms, default.start_ms, "--start-ms"), (warmup, default.warmup_iterations, "--warmup")):
        if value is not None and float(value) != float(dflt):
            cmd.append(f"{flag} {_num(value)}")
    return " ".join(cmd), [], notes


def cli_sweep(axes: Sequence[str], isolated: bool, workers: int) -> str:
    """The ``packrat sweep`` command of the Sweep page's grid."""
    cmd = ["packrat sweep", *(f"--axis {_q(a)}" for a in axes)]
    if isolated:
        cmd.append("--isolated")
    cmd.append(f"--workers {workers}")
    return " ".join(cmd)


def cli_explore(protocol: str, variant: str, strategy: str, max_schedules: int, max_time: float, seed: int,
                params: dict, defaults: dict) -> str:
    cmd = [f"packrat explore --protocol {_q(protocol)} --variant {_q(variant)} --strategy {strategy}",
           f"--max-schedules {max_schedules} --max-time {max_time:g}"]
    if strategy in ("random", "pct"):
        cmd.append(f"--seed {seed}")
    for k, v in sorted(params.items()):
        if defaults.get(k) != v:
            cmd.append(f"--param {_q(f'{k}={str(v).lower() if isinstance(v, bool) else v}')}")
    return " ".join(cmd)


def cli_check(name: str, fmt: str, model: str | None, timeout: float) -> str:
    cmd = [f"packrat check {_q(name)}"]
    if model:
        cmd.append(f"--model {model}")
    if fmt != "auto":
        cmd.append(f"--format {fmt}")
    cmd.append(f"--timeout {timeout:g} --html report.html")
    return " ".join(cmd)


_MD_SPECIAL = frozenset("\\`*_{}[]()#+-.!$|<>~")


def md_escape(text: str) -> str:
    """``text`` with every Markdown (and Streamlit math ``$``) character backslash-escaped, so
    values from a history or a model (``read() -> 3``, ``$x``) show as written."""
    return "".join("\\" + c if c in _MD_SPECIAL else c for c in text)


def busy_note(kept: dict) -> list[str]:
    """The busy-machine reason of one hardware run (pure): ``kept["conditions"]``
    (``jobs.hardware_steps``' ``real_runner.conditions.conditions_report``) as ``[note + "."]``
    (the library's words, closed as a sentence) when it says the machine was busy; [] on a
    quiet machine or a run without conditions. (A quiet machine's far-off prediction is
    :func:`measurement_warnings`' own reason, per row.)"""
    c = kept.get("conditions") or {}
    note = c.get("note")
    return [f"{note}."] if c.get("busy") and note else []


def run_verdict(kept: dict, warnings: Sequence[str]) -> tuple[str, str]:
    """One verdict for one hardware run (pure): ``(level, text)`` with level ``"success"``,
    ``"warning"`` or ``"error"``. ``kept``: the run ({"speedup", "outputs_match", "max_abs_diff"},
    optionally "conditions"); ``warnings``: :func:`measurement_warnings` of its rows. Outputs
    that differ are an error; a measurement with warnings, or on a busy machine
    (:func:`busy_note`, the library's wording), is NOT TRUSTED (its speedup quoted with the
    reasons, in the same box); only a clean run states its speedup as a result."""
    head = f"Measured speedup of the plan over fat: {kept['speedup']:.2f}x ({fmt_speedup(kept['speedup'])})"
    diff = f"max |diff| {kept['max_abs_diff']:.2e}"
    if not kept["outputs_match"]:
        return "error", f"{head}, but the OUTPUTS DIFFER from the fat instance's ({diff}): the plan's results are wrong."
    warnings = [*warnings, *busy_note(kept)]
    if warnings:
        return "warning", (f"{head}: NOT TRUSTED, the measurement looks wrong. " + " ".join(warnings)
                           + f" Outputs match the fat instance's ({diff}).")
    return "success", f"{head}; outputs match the fat instance's ({diff})."
