"""The HTML page of `packrat fidelity --measured`: predicted against measured batch latency.

One plotly scatter on log-log axes: x the measured latency, y the predicted one, the isolated
predictions and the calibrated ones as two series, and the 1:1 line (points below it are
optimistic predictions). The input is :meth:`packrat_sim.fidelity.FidelityReport.to_json`,
extended by the CLI with ``profile`` and ``measured`` (names). Pure functions build the
figure and the page; :func:`write_report` is the only I/O. The page is self-contained
(plotly.js inlined), so it opens offline.
"""

from __future__ import annotations

import html
from collections.abc import Mapping

import plotly.graph_objects as go

from packrat_sim import files

_SERIES = (("isolated", "isolated_ms", "#d62728"), ("calibrated", "calibrated_ms", "#1f77b4"))


def fidelity_figure(report: Mapping) -> go.Figure:
    """Predicted (y) against measured (x) latency, ms, log-log: one series per predictor that
    priced a run, and the 1:1 line over the range of every plotted value."""
    fig = go.Figure()
    values: list[float] = []
    for name, key, colour in _SERIES:
        rows = [r for r in report["rows"] if r.get(key) is not None]
        if not rows:
            continue
        xs, ys = [r["measured_ms"] for r in rows], [r[key] for r in rows]
        values += xs + ys
        texts = [f"{r['plan']} ({r['where']}): error {100 * (r[key] - r['measured_ms']) / r['measured_ms']:+.1f}%"
                 for r in rows]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name=f"{name} prediction", text=texts,
                                 marker={"color": colour, "size": 9}))
    if values:
        lo, hi = min(values) / 1.1, max(values) * 1.1
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="1:1 (predicted = measured)",
                                 line={"color": "#555", "dash": "dot"}))
    fig.update_layout(xaxis_title="measured batch latency (ms)", yaxis_title="predicted batch latency (ms)",
                      xaxis_type="log", yaxis_type="log", template="plotly_white", height=560,
                      title="Predicted vs measured (below the line: optimistic)")
    return fig


def _summary_line(name: str, summary: Mapping | None) -> str:
    """One sentence on a predictor's errors, or that it priced nothing."""
    if summary is None:
        return f"{name}: no prediction"
    return (f"{name}: median |error| {summary['median_abs_error_pct']:.1f}%, max {summary['max_abs_error_pct']:.1f}%, "
            f"{summary['optimistic']} of {summary['runs']} optimistic")


def to_html(report: Mapping, *, title: str = "Packrat fidelity") -> str:
    """The whole page as one HTML string: the summary, the figure, and the unpriced runs."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>profile {html.escape(str(report.get('profile', '')))}; measured {html.escape(str(report.get('measured', '')))}; "
        f"{len(report['rows'])} run(s) priced, {len(report['unpriced'])} unpriced.</p>",
        f"<p>{html.escape(_summary_line('isolated', report['isolated']))}<br>"
        f"{html.escape(_summary_line('calibrated', report['calibrated']))}</p>",
    ]
    if report["rows"]:
        parts.append(fidelity_figure(report).to_html(full_html=False, include_plotlyjs=True))
    else:
        parts.append("<p>No run could be priced.</p>")
    if report["unpriced"]:
        parts.append("<h2>Unpriced runs</h2><ul>")
        parts += [f"<li>{html.escape(u['plan'])} ({html.escape(u['where'])}): {html.escape(u['reason'])}</li>"
                  for u in report["unpriced"]]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(report: Mapping, path: str, *, title: str = "Packrat fidelity") -> str:
    """Write :func:`to_html` to ``path`` through the safe writer (atomically); returns the path."""
    files.write_text(path, to_html(report, title=title), "fidelity report")
    return path
