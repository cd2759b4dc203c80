"""A self-contained HTML page explaining a check: no CDN, no scripts, works offline.

``render_html(history, result, model)`` draws each client's operations on a time axis (one row per
client; the axis is compressed to the order of events, so short and long gaps look alike), colours
each operation by its role in the evidence, and lists, per partition, the linearization found (OK)
or the longest linearizable prefix and the operation that cannot follow it (ILLEGAL), with the model
state before and after every operation. Hovering an operation shows its details (SVG titles).

Colours: green, linearized (the number above it is its position in its partition's order); red,
the operation that cannot be linearized; grey, left out of a partial linearization; dashed border,
pending (never returned); the bar of a pending operation runs to the right edge.

Large histories are cut to ``max_operations`` around the first failure (or from the start), and
tables to ``max_rows`` rows; the page says what was left out.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from checker.history import UNKNOWN_OUTPUT, History, Operation
from checker.linearizability import CheckResult, PartitionResult, Verdict, describe, explain, trace
from checker.models import Model, NondeterministicModel, get_model

__all__ = ["blocking_cause", "render_html", "state_rows", "write_html"]

#: Bounds of the search for the states a history's operations can reach (:func:`blocking_cause`).
CAUSE_MAX_STATES = 256
CAUSE_MAX_STEPS = 20_000

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#1d2330;background:#fff}
h1{font-size:20px;margin:0 0 8px}h2{font-size:16px;margin:28px 0 8px}
.badge{display:inline-block;padding:2px 10px;border-radius:4px;color:#fff;font-weight:600}
.ok{background:#2e7d32}.illegal{background:#c62828}.unknown{background:#8d6e00}
pre.summary{background:#f5f6f8;padding:10px;border-radius:4px;overflow-x:auto}
.scroll{overflow-x:auto;border:1px solid #dde1e6;border-radius:4px;padding:4px}
svg text{font:11px monospace;fill:#1d2330}
svg .client{font-weight:600}
svg rect.op{stroke:#37474f;stroke-width:1}
svg rect.lin{fill:#a5d6a7}svg rect.blocked{fill:#ef9a9a;stroke:#b71c1c;stroke-width:2}
svg rect.out{fill:#e0e0e0}svg rect.unk{fill:#fff3c4}svg rect.pending{stroke-dasharray:4 3}
svg text.pos{fill:#1b5e20;font-size:10px}
svg line.axis{stroke:#b0bec5}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #dde1e6;padding:3px 8px;text-align:left;font-family:monospace;font-size:12px}
th{background:#f5f6f8}tr.bad td{background:#ffebee}
.legend span{display:inline-block;margin-right:14px}
.sw{display:inline-block;width:14px;height:10px;border:1px solid #37474f;margin-right:4px;vertical-align:middle}
.note{color:#5f6b7a}
"""

_ROW_H = 30
_BAR_H = 18
_DX = 14
_LEFT = 90
_TOP = 24


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _interval(op: Operation) -> str:
    """``[call, ret]`` of ``op`` (``pending`` for a missing return)."""
    return f"[{op.call!r}, {'pending' if op.ret is None else repr(op.ret)}]"


def _compiled(mdl: Model, op: Operation) -> tuple[Any, Any]:
    """The model's (input, output) of ``op``; a pending operation's output is unknown."""
    return mdl.compile(op.input, UNKNOWN_OUTPUT if op.ret is None else op.output)


def _reachable(history: History, part: PartitionResult, mdl: Model, max_states: int,
               max_steps: int) -> tuple[list[Any], bool]:
    """States the partition's operations (all but the blocked one, in any order) reach from the
    model's initial state, breadth first, and whether the search finished within ``max_states``
    distinct states and ``max_steps`` model steps (False: the list is a part of them)."""
    moves = list({repr(c): c for c in (_compiled(mdl, history[i]) for i in part.operations
                                        if i != part.blocked)}.values())
    seen, frontier, steps = [mdl.init()], [mdl.init()], 0
    while frontier:
        nxt = []
        for state in frontier:
            for inp, out in moves:
                steps += 1
                if steps > max_steps:
                    return seen, False
                legal, after = mdl.step(state, inp, out)
                if legal and after not in seen:
                    if len(seen) >= max_states:
                        return seen, False
                    seen.append(after)
                    nxt.append(after)
        frontier = nxt
    return seen, True


def blocking_cause(history: History, part: PartitionResult, model: Model | NondeterministicModel | str,
                   *, max_states: int = CAUSE_MAX_STATES, max_steps: int = CAUSE_MAX_STEPS) -> str | None:
    """Why the operation ``part.blocked`` cannot be linearized, in one sentence (None unless
    ``part`` is ILLEGAL with a blocked operation). Pure; at most ``max_steps`` model steps.

    Either no order of the partition's other operations reaches a state in which it is legal
    (a read then returned a value never written: "read() -> 3 ... never written"), or such
    states exist (named) but the real-time order of the operations never lets it run in one."""
    if part.result is not Verdict.ILLEGAL or part.blocked is None:
        return None
    mdl = get_model(model)
    op = history[part.blocked]
    what, (inp, out) = describe(mdl, op), _compiled(mdl, op)
    states, complete = _reachable(history, part, mdl, max_states, max_steps)
    legal_in = [s for s in states if mdl.step(s, inp, out)[0]]
    if not legal_in:
        seen = ", ".join(mdl.describe_state(s) for s in states[:8]) + (", ..." if len(states) > 8 else "")
        scope = "" if complete else f"of the first {len(states)} "
        where = f"legal in none {scope}of the states the other operations reach ({seen})"
        if mdl.read_only is not None and mdl.read_only(op.input, UNKNOWN_OUTPUT if op.ret is None else op.output):
            return f"operation {part.blocked} ({what}) returned a value never written: it is {where}."
        return f"operation {part.blocked} ({what}) is {where}: no operation produced what it saw."
    wanted = ", ".join(mdl.describe_state(s) for s in legal_in[:4]) + (", ..." if len(legal_in) > 4 else "")
    return (f"operation {part.blocked} ({what}) is legal only in state {wanted}, which other operations reach, "
            f"but not during its interval {_interval(op)} in any order that respects real time: it saw a stale "
            "or out-of-order state.")


def state_rows(history: History, part: PartitionResult, model: Model | NondeterministicModel | str,
               order: list[int] | tuple[int, ...] | None = None) -> list[dict[str, Any]]:
    """The model states along a linearization, one row per operation (as Porcupine shows them):
    position, history index, client, operation, state before, state after. ``order``: the
    operations replayed (default: ``part.linearization``); when it is the whole linearization of
    an ILLEGAL partition, a last row names the blocked operation and the state it cannot follow.
    Pure (replays through :func:`checker.linearizability.trace`)."""
    mdl = get_model(model)
    order = tuple(part.linearization if order is None else order)
    rows: list[dict[str, Any]] = [
        {"#": str(k + 1), "op": s.index, "client": str(history[s.index].client), "operation": s.description,
         "state before": s.before, "state after": s.after if s.legal else "illegal"}
        for k, s in enumerate(trace(history, mdl, order))]
    if part.result is not Verdict.OK and part.blocked is not None and order == tuple(part.linearization):
        op = history[part.blocked]
        rows.append({"#": "\u2717", "op": part.blocked, "client": str(op.client), "operation": describe(mdl, op),
                     "state before": mdl.describe_state(part.state), "state after": "cannot be linearized here"})
    return rows


def _select(history: History, result: CheckResult, max_operations: int) -> tuple[list[int], str]:
    n = len(history)
    order = sorted(range(n), key=lambda i: (history[i].call, i))
    if n <= max_operations:
        return order, ""
    centre = 0
    first = result.first_failed
    candidates = ([first] if first is not None else []) + list(result.partitions)
    for part in candidates:
        if part.result is Verdict.ILLEGAL and part.blocked is not None:
            centre = order.index(part.blocked)
            break
    lo = max(0, min(centre - max_operations // 2, n - max_operations))
    chosen = order[lo:lo + max_operations]
    return chosen, (
        f"Showing {len(chosen)} of {n} operations (call order {lo} to {lo + len(chosen) - 1}"
        f"{', around the first failure' if centre else ''})."
    )


def _roles(result: CheckResult) -> tuple[dict[int, str], dict[int, tuple[PartitionResult, int]]]:
    role: dict[int, str] = {}
    position: dict[int, tuple[PartitionResult, int]] = {}
    for part in result.partitions:
        default = "unk" if part.result is Verdict.UNKNOWN else "out"
        for i in part.operations:
            role[i] = default
        for k, i in enumerate(part.linearization):
            role[i] = "lin"
            position[i] = (part, k + 1)
        if part.result is not Verdict.OK and part.blocked is not None:
            role[part.blocked] = "blocked"
        if part.result is Verdict.OK:
            for i in part.operations:
                if role[i] == "out":
                    role[i] = "dropped"  # pending operations that did not take effect
    return role, position


def _timeline(history: History, chosen: list[int], role: dict[int, str],
              position: dict[int, tuple[PartitionResult, int]], states: dict[int, tuple[str, str]],
              model: Model, partitioned: bool) -> str:
    if not chosen:
        return "<p class='note'>No operations.</p>"
    times = sorted({t for i in chosen for t in (history[i].call, history[i].ret) if t is not None})
    rank = {t: k for k, t in enumerate(times)}
    end_x = _LEFT + (len(times) + 1) * _DX
    clients = list(dict.fromkeys(history[i].client for i in sorted(chosen)))
    row = {c: k for k, c in enumerate(clients)}
    width = end_x + 20
    height = _TOP + len(clients) * _ROW_H + 10
    parts = [f"<svg width='{width}' height='{height}' role='img' aria-label='operations by client over time'>"]
    for c, k in row.items():
        y = _TOP + k * _ROW_H
        parts.append(f"<line class='axis' x1='{_LEFT}' y1='{y + _BAR_H // 2}' x2='{end_x}' y2='{y + _BAR_H // 2}'/>")
        parts.append(f"<text class='client' x='6' y='{y + 13}'>client {_e(c)}</text>")
    for i in chosen:
        op = history[i]
        y = _TOP + row[op.client] * _ROW_H
        x0 = _LEFT + rank[op.call] * _DX
        x1 = end_x if op.ret is None else _LEFT + rank[op.ret] * _DX + _DX // 2
        w = max(6, x1 - x0)
        r = role.get(i, "out")
        cls = "op " + ("out" if r == "dropped" else r) + (" pending" if op.ret is None else "")
        desc = describe(model, op)
        tip = [f"operation {i}, client {op.client}", desc,
               f"call {op.call!r}, return {'never (pending)' if op.ret is None else repr(op.ret)}"]
        if i in position:
            part, pos = position[i]
            where = f" in partition {part.key!r}" if partitioned else ""
            tip.append(f"linearized #{pos}{where}")
            if i in states:
                tip.append(f"state {states[i][0]} -> {states[i][1]}")
        elif r == "blocked":
            tip.append("cannot be linearized after the longest prefix")
        elif r == "dropped":
            tip.append("pending, did not take effect in this linearization")
        elif r == "out":
            tip.append("not in the longest linearizable prefix")
        parts.append(
            f"<g><title>{_e(chr(10).join(tip))}</title>"
            f"<rect class='{cls}' x='{x0}' y='{y}' width='{w}' height='{_BAR_H}' rx='3'/>"
        )
        max_chars = max(0, (w - 6) // 7)
        if max_chars >= 3:
            label = desc if len(desc) <= max_chars else desc[: max_chars - 1] + "\u2026"
            parts.append(f"<text x='{x0 + 3}' y='{y + 13}'>{_e(label)}</text>")
        parts.append("</g>")
        if i in position:
            parts.append(f"<text class='pos' x='{x0}' y='{y - 2}'>{position[i][1]}</text>")
    parts.append("</svg>")
    return "".join(parts)


def _partition_table(history: History, part: PartitionResult, model: Model, max_rows: int,
                     partitioned: bool) -> str:
    steps = trace(history, model, part.linearization)
    head = f"Partition {_e(repr(part.key))}" if partitioned else "Linearization"
    verdict = part.result.value
    out = [f"<h2>{head} <span class='badge {verdict}'>{verdict.upper()}</span></h2>"]
    n_lin, total = len(part.linearization), len(part.operations)
    if part.result is Verdict.OK:
        out.append(f"<p>A linearization of {n_lin} operations ({total} in this partition; pending "
                   "operations that did not take effect are left out).</p>")
        shown = steps[:max_rows]
        skipped_front = 0
    else:
        label = "longest linearizable prefix" if part.result is Verdict.ILLEGAL else "prefix explored"
        out.append(f"<p>The {label}: {n_lin} of {total} operations.</p>")
        why = blocking_cause(history, part, model)
        if why:
            out.append(f"<p class='cause'><b>Cause:</b> {_e(why)}</p>")
        shown = steps[-max_rows:] if max_rows else []
        skipped_front = len(steps) - len(shown)
    out.append("<table><tr><th>#</th><th>op</th><th>client</th><th>operation</th><th>state before</th>"
               "<th>state after</th></tr>")
    if skipped_front:
        out.append(f"<tr><td colspan='6' class='note'>\u2026 {skipped_front} earlier operations</td></tr>")
    first = skipped_front + 1
    for k, s in enumerate(shown):
        op = history[s.index]
        out.append(f"<tr><td>{first + k}</td><td>{s.index}</td><td>{_e(op.client)}</td><td>{_e(s.description)}</td>"
                   f"<td>{_e(s.before)}</td><td>{_e(s.after)}</td></tr>")
    if part.result is Verdict.OK and len(steps) > len(shown):
        out.append(f"<tr><td colspan='6' class='note'>\u2026 {len(steps) - len(shown)} more operations</td></tr>")
    if part.result is not Verdict.OK and part.blocked is not None:
        op = history[part.blocked]
        state = model.describe_state(part.state)
        out.append(
            f"<tr class='bad'><td>\u2717</td><td>{part.blocked}</td><td>{_e(op.client)}</td>"
            f"<td>{_e(describe(model, op))}</td><td>{_e(state)}</td><td>cannot be linearized here</td></tr>"
        )
    out.append("</table>")
    return "".join(out)


def render_html(
    history: History,
    result: CheckResult,
    model: Model | NondeterministicModel | str | None = None,
    *,
    title: str = "packrat check",
    max_operations: int = 1500,
    max_rows: int = 200,
    max_partitions: int = 20,
) -> str:
    """The HTML page for ``result`` (a check of ``history`` against ``model``) as a string.

    The page references nothing outside itself. ``model`` defaults to ``result.model``.
    """
    mdl = get_model(model if model is not None else result.model)
    partitioned = not (len(result.partitions) == 1 and result.partitions[0].key is None)
    chosen, cut_note = _select(history, result, max_operations)
    role, position = _roles(result)
    chosen_set = set(chosen)

    # Partitions shown in detail: the first failure, other failures, then unknown, then OK ones;
    # partitions left undecided because another failed first ("not needed") are only listed.
    first = result.first_failed
    ordered = sorted(result.partitions, key=lambda p: (
        p is not first, {Verdict.ILLEGAL: 0, Verdict.UNKNOWN: 1, Verdict.OK: 2}[p.result], not p.needed))
    detailed = [p for p in ordered if p.needed][:max_partitions]
    states: dict[int, tuple[str, str]] = {}
    for part in detailed:
        if any(i in chosen_set for i in part.linearization):
            for s in trace(history, mdl, part.linearization):
                states[s.index] = (s.before, s.after)

    verdict = result.result.value
    body = [
        f"<h1>{_e(title)} <span class='badge {verdict}'>{verdict.upper()}</span></h1>",
        f"<pre class='summary'>{_e(chr(10).join(explain(result, history, mdl)))}</pre>",
        "<h2>Operations by client</h2>",
        "<p class='legend'><span><i class='sw' style='background:#a5d6a7'></i>linearized (number: position)</span>"
        "<span><i class='sw' style='background:#ef9a9a'></i>cannot be linearized</span>"
        "<span><i class='sw' style='background:#e0e0e0'></i>not linearized</span>"
        "<span><i class='sw' style='background:#fff3c4'></i>not decided (unknown)</span>"
        "<span><i class='sw' style='border-style:dashed'></i>pending</span></p>",
    ]
    if cut_note:
        body.append(f"<p class='note'>{_e(cut_note)}</p>")
    body.append(f"<div class='scroll'>{_timeline(history, chosen, role, position, states, mdl, partitioned)}</div>")
    if partitioned:
        body.append("<h2>Partitions</h2>")
        if first is not None:
            n_skipped = sum(1 for p in result.partitions if not p.needed)
            when = "" if first.finished_s is None else f", {first.finished_s:.3f} s into the check"
            skipped = (f"; the check stopped there, {n_skipped} partition{'s' if n_skipped != 1 else ''} "
                       "not needed" if n_skipped else "")
            body.append(f"<p class='first-failure'>Partition <b>{_e(repr(first.key))}</b> failed first{_e(when)}"
                        f"{_e(skipped)}.</p>")
        body.append("<table><tr><th>key</th><th>verdict</th><th>operations</th>"
                    "<th>linearized</th><th>time (s)</th><th>decided at (s)</th></tr>")
        for part in ordered:
            is_first = part is first
            row_cls = " class='bad'" if is_first else ""
            outcome = part.outcome + (" (failed first)" if is_first else "")
            at = "" if part.finished_s is None else f"{part.finished_s:.4f}"
            body.append(f"<tr{row_cls}><td>{_e(repr(part.key))}</td><td>{_e(outcome)}</td>"
                        f"<td>{len(part.operations)}</td>"
                        f"<td>{len(part.linearization)}</td><td>{part.elapsed_s:.4f}</td><td>{at}</td></tr>")
        body.append("</table>")
    body.extend(_partition_table(history, part, mdl, max_rows, partitioned) for part in detailed)
    if len(ordered) > len(detailed):
        body.append(f"<p class='note'>{len(ordered) - len(detailed)} more partitions not shown in detail.</p>")
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)}: {verdict}</title><style>{_CSS}</style></head><body>"
        + "".join(body)
        + "</body></html>\n"
    )


def write_html(path: str | Path, history: History, result: CheckResult,
               model: Model | NondeterministicModel | str | None = None, **kwargs: Any) -> Path:
    """Write :func:`render_html` to ``path``; returns the path."""
    path = Path(path)
    from packrat_sim.files import write_text  # atomic; refuses symlinks, devices, missing directories

    path = write_text(path, render_html(history, result, model, **kwargs), "HTML report")
    return path
