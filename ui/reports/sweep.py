"""The HTML page of a sweep: plotly charts over the rows of ``packrat_sim.sweep``.

* **Capacity curves**: request latency (p99 solid, p50 dotted) vs offered load, one colour
  per policy (the dashboard's, :data:`ui.dashboard.charts.POLICY_COLORS`), one chart per (profile, cores): the curve users plan capacity with.
* **Best plan per cell**: for each (profile, cores, workload), the policy with the lowest
  median p99 over its seeds, the runner-up and the starting plan, as a table.

Pure functions build the figures (tested on their JSON); :func:`write_report` is the only
I/O. The page is self-contained (plotly.js inlined once), so it opens offline.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

import plotly.graph_objects as go

from packrat_sim import files
from packrat_sim.sweep import best_per_cell, capacity_curves
from ui.dashboard.charts import policy_color



def capacity_figures(rows: Sequence[Mapping]) -> list[tuple[str, go.Figure]]:
    """One (title, figure) per (profile, cores): p99 and p50 vs offered load per policy.
    Empty when no row has an offered load (closed loops only)."""
    p99 = capacity_curves(rows, "p99_ms")
    p50 = capacity_curves(rows, "p50_ms")
    groups: dict[tuple[str, int], list[str]] = {}
    for profile, cores, policy in p99:
        groups.setdefault((profile, cores), []).append(policy)
    out = []
    for (profile, cores), policies in groups.items():
        fig = go.Figure()
        for k, policy in enumerate(policies):
            colour = policy_color(policy, k)  # the colour every dashboard page gives this policy
            pts = p99[(profile, cores, policy)]
            fig.add_trace(go.Scatter(x=[x for x, _ in pts], y=[y for _, y in pts], mode="lines+markers",
                                     name=f"{policy} p99", line={"color": colour}))
            pts50 = p50.get((profile, cores, policy), [])
            fig.add_trace(go.Scatter(x=[x for x, _ in pts50], y=[y for _, y in pts50], mode="lines",
                                     name=f"{policy} p50", line={"color": colour, "dash": "dot"}))
        title = f"Latency vs offered load: {profile} on {cores} cores"
        fig.update_layout(title=title, xaxis_title="offered load (req/s)", yaxis_title="request latency (ms)",
                          yaxis_type="log", template="plotly_white", height=420)
        out.append((title, fig))
    return out


def best_table_figure(rows: Sequence[Mapping]) -> go.Figure | None:
    """The best-plan-per-cell table as a plotly Table (None when no row is ok)."""
    best = best_per_cell(rows, "p99_ms")
    if not best:
        return None

    def num(x) -> str:
        return "-" if x is None or not math.isfinite(x) else f"{x:,.1f}"

    cols = {
        "profile": [b["profile"] for b in best],
        "cores": [b["cores"] for b in best],
        "workload": [b["workload"] for b in best],
        "best policy": [b["best_policy"] for b in best],
        "p99 ms": [num(b["best_p99_ms"]) for b in best],
        "runner-up": [b["runner_up"] or "-" for b in best],
        "runner-up p99 ms": [num(b["runner_up_p99_ms"]) for b in best],
        "starting plan": [b["plan"] or "-" for b in best],
    }
    fig = go.Figure(go.Table(header={"values": list(cols)}, cells={"values": list(cols.values()), "align": "left"}))
    fig.update_layout(title="Best plan per cell (lowest median p99 over seeds)", height=max(300, 60 + 24 * len(best)))
    return fig


def to_html(rows: Sequence[Mapping], *, title: str = "Packrat sweep") -> str:
    """The whole page as one HTML string."""
    ok = sum(1 for r in rows if r.get("status") == "ok")
    failed = len(rows) - ok
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{len(rows)} runs: {ok} ok, {failed} failed. Latency is simulated request latency "
        "(arrival to completion); offered load is the workload's mean arrival rate.</p>",
    ]
    first = True
    for _, fig in capacity_figures(rows):
        parts.append(fig.to_html(full_html=False, include_plotlyjs=first))
        first = False
    table = best_table_figure(rows)
    if table is not None:
        parts.append(table.to_html(full_html=False, include_plotlyjs=first))
        first = False
    if first:
        parts.append("<p>No successful runs to chart.</p>")
    failures = [r for r in rows if r.get("status") != "ok"][:50]
    if failures:
        parts.append("<h2>Failed runs</h2><ul>")
        parts += [f"<li>{html.escape(str(r['workload']))} / {html.escape(str(r['policy']))} / seed {r['seed']}: "
                  f"{html.escape(str(r.get('error') or ''))}</li>" for r in failures]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(rows: Sequence[Mapping], path: str, *, title: str = "Packrat sweep") -> str:
    """Write :func:`to_html` to ``path`` (atomically); returns the path."""
    files.write_text(path, to_html(rows, title=title), "sweep report")
    return path
