"""Plotly figures of the dashboard, built by pure functions of plain data.

Each function takes lists / dicts (from :mod:`ui.dashboard_data` or the library) and
returns a ``plotly.graph_objects.Figure``; nothing here touches streamlit, so the
figures are unit-testable and the tests can read back what a chart draws.
"""

from __future__ import annotations

import math
from typing import Sequence

import plotly.graph_objects as go

PALETTE = (
    "#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#EECA3B", "#B279A2", "#FF9DA6",
    "#9D755D", "#BAB0AC", "#1F77B4", "#FF7F0E", "#2CA02C", "#D62728", "#9467BD", "#8C564B",
)
IDLE = "#E6E6E6"


def _layout(fig: go.Figure, title: str, x: str, y: str, **kw) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, x=0, xanchor="left", y=0.98, yanchor="top"), xaxis_title=x, yaxis_title=y,
        margin=dict(l=60, r=20, t=80, b=50),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1), **kw,
    )
    return fig


# ------------------------------------------------------------------ profiles


def profile_heatmap(threads: Sequence[int], batches: Sequence[int], z, title: str = "L[t, b] (ms)") -> go.Figure:
    """Heatmap of the latency grid: rows threads, columns batches (categorical), log colour scale."""
    logz = [[None if v is None else math.log10(v) for v in row] for row in z]
    text = [["" if v is None else f"{v:.3g}" for v in row] for row in z]
    finite = [v for row in logz for v in row if v is not None]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    ticks = [lo + (hi - lo) * k / 4 for k in range(5)]
    fig = go.Figure(
        go.Heatmap(
            z=logz,
            x=[str(b) for b in batches],
            y=[str(t) for t in threads],
            customdata=z,
            text=text,
            hovertemplate="threads %{y}, batch %{x}: %{customdata:.3f} ms<extra></extra>",
            colorscale="Viridis",
            colorbar=dict(title="ms", tickvals=ticks, ticktext=[f"{10 ** v:.3g}" for v in ticks]),
            name="latency",
        )
    )
    fig.update_xaxes(type="category")
    fig.update_yaxes(type="category")
    return _layout(fig, title, "sub-batch b", "threads t")


def scaling_curves(series: Sequence[dict], title: str = "Latency vs threads (dashed: ideal linear scaling)") -> go.Figure:
    """One solid line per batch (measured L[t, b]) and a dashed one (ideal L[t0, b] * t0 / t)."""
    fig = go.Figure()
    for k, s in enumerate(series):
        color = PALETTE[k % len(PALETTE)]
        fig.add_trace(go.Scatter(x=s["threads"], y=s["latency_ms"], mode="lines+markers", name=f"b={s['batch']}",
                                 line=dict(color=color), legendgroup=str(s["batch"])))
        fig.add_trace(go.Scatter(x=s["threads"], y=s["ideal_ms"], mode="lines", name=f"b={s['batch']} ideal",
                                 line=dict(color=color, dash="dash"), legendgroup=str(s["batch"]), showlegend=False))
    fig.update_yaxes(type="log", dtick=1)
    return _layout(fig, title, "threads t", "latency (ms, log)")


def interference_chart(series: dict, title: str = "Interference: slowdown beside busy cores") -> go.Figure:
    """Measured slowdown points and the interpolated curve the model uses."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=series["cores"], y=series["slowdown"], mode="lines", name="model (interpolated)"))
    pts = series["points"]
    fig.add_trace(go.Scatter(x=[k for k, _ in pts], y=[s for _, s in pts], mode="markers", name="measured",
                             marker=dict(size=9)))
    fig.add_hline(y=1.0, line=dict(color="gray", dash="dot"))
    return _layout(fig, title, "other busy cores", "slowdown (x isolated latency)")


# ------------------------------------------------------------------- planner


def core_map(owner: Sequence[int | None], instances: Sequence[dict], per_row: int | None = None,
             title: str = "Cores of the machine, coloured by instance") -> go.Figure:
    """One square per core; colour = instance, grey = idle; hover names instance, threads, sub-batch."""
    n = len(owner)
    per_row = per_row or (8 if n <= 32 else 16)
    xs, ys, colors, texts, hover = [], [], [], [], []
    for c, k in enumerate(owner):
        xs.append(c % per_row)
        ys.append(-(c // per_row))
        if k is None:
            colors.append(IDLE)
            texts.append(f"{c}")
            hover.append(f"core {c}: idle")
        else:
            inst = instances[k]
            colors.append(PALETTE[k % len(PALETTE)])
            texts.append(f"{c}<br>#{k}")
            hover.append(f"core {c}: instance #{k} ({inst['threads']} threads, sub-batch {inst['batch']})")
    fig = go.Figure(
        go.Scatter(
            x=xs, y=ys, mode="markers+text", text=texts, hovertext=hover, hoverinfo="text",
            marker=dict(symbol="square", size=44, color=colors, line=dict(color="white", width=2)),
            textfont=dict(size=10, color="black"), name="cores",
        )
    )
    rows = max(1, math.ceil(n / per_row))
    fig.update_xaxes(visible=False, range=[-0.7, per_row - 0.3])
    fig.update_yaxes(visible=False, range=[-(rows - 1) - 0.7, 0.7])
    fig.update_layout(title=title, height=90 + 60 * rows, margin=dict(l=10, r=10, t=40, b=10), showlegend=False)
    return fig


def baseline_bars(fat_ms: float, thin_ms: float, plan_ms: float, labels: Sequence[str] = ("fat", "thin", "plan"),
                  title: str = "Batch latency: fat vs thin vs optimal plan") -> go.Figure:
    """Three bars with their values printed on them."""
    ys = [fat_ms, thin_ms, plan_ms]
    fig = go.Figure(
        go.Bar(x=list(labels), y=ys, text=[f"{y:.2f} ms" for y in ys], textposition="auto",
               marker_color=[PALETTE[1], PALETTE[4], PALETTE[2]], name="latency")
    )
    return _layout(fig, title, "", "latency (ms)")


def sweep_chart(rows: Sequence[dict], title: str = "Best plan across batch sizes") -> go.Figure:
    """Latency vs batch of the optimal plan, fat and thin (log-log); hover names the plan."""
    xs = [r["batch"] for r in rows]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=xs, y=[r.get("fat_ms") for r in rows], mode="lines+markers", name="fat",
                             line=dict(color=PALETTE[1])))
    fig.add_trace(go.Scatter(x=xs, y=[r.get("thin_ms") for r in rows], mode="lines+markers", name="thin",
                             line=dict(color=PALETTE[4])))
    fig.add_trace(go.Scatter(x=xs, y=[r.get("plan_ms") for r in rows], mode="lines+markers", name="optimal plan",
                             line=dict(color=PALETTE[2], width=3),
                             hovertext=[r.get("plan") or "infeasible" for r in rows]))
    fig.update_xaxes(type="log", tickvals=xs, ticktext=[str(x) for x in xs])
    fig.update_yaxes(type="log", dtick=1)
    return _layout(fig, title, "batch B", "latency (ms, log)")


# ----------------------------------------------------------------- simulator


def latency_cdf(samples: dict[str, Sequence[float]], title: str = "Batch latency CDF") -> go.Figure:
    """Empirical CDF per named series of latencies (ms)."""
    fig = go.Figure()
    for k, (name, xs) in enumerate(samples.items()):
        xs = sorted(float(x) for x in xs)
        n = len(xs)
        fig.add_trace(go.Scatter(x=xs, y=[(i + 1) / n for i in range(n)], mode="lines", name=name,
                                 line=dict(color=PALETTE[k % len(PALETTE)], shape="hv")))
    return _layout(fig, title, "latency (ms)", "fraction")


def gantt(spans: Sequence[dict], marks: Sequence[dict] = (), title: str = "Per-instance timeline") -> go.Figure:
    """Horizontal bars: ``spans`` = [{"lane", "start", "end", "label", "group"}], ``marks`` = [{"t", "label"}]
    drawn as vertical lines (reconfigurations). Times in ms."""
    fig = go.Figure()
    groups: dict[str, list[dict]] = {}
    for s in spans:
        groups.setdefault(str(s.get("group", "")), []).append(s)
    for k, (g, ss) in enumerate(groups.items()):
        fig.add_trace(go.Bar(
            base=[s["start"] for s in ss], x=[s["end"] - s["start"] for s in ss], y=[str(s["lane"]) for s in ss],
            orientation="h", name=g or "work", marker_color=PALETTE[k % len(PALETTE)],
            hovertext=[s.get("label", "") for s in ss], hoverinfo="text",
        ))
    for m in marks:
        fig.add_vline(x=m["t"], line=dict(color="red", dash="dash"), annotation_text=m.get("label", "reconfigure"))
    fig.update_layout(barmode="overlay")
    fig.update_yaxes(type="category", autorange="reversed")
    return _layout(fig, title, "time (ms)", "instance")


# -------------------------------------------------------------- verification


def sequence_diagram(actors: Sequence[str], messages: Sequence[dict], title: str = "Message sequence") -> go.Figure:
    """Lifelines for ``actors`` and one arrow per message {"src", "dst", "label", "step"} (top to bottom)."""
    xi = {a: i for i, a in enumerate(actors)}
    n = max(1, len(messages))
    fig = go.Figure()
    for a, i in xi.items():
        fig.add_trace(go.Scatter(x=[i, i], y=[0.5, -(n + 0.5)], mode="lines", line=dict(color="gray", dash="dot"),
                                 showlegend=False, hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=list(xi.values()), y=[0.9] * len(xi), mode="text", text=[f"<b>{a}</b>" for a in xi],
                             showlegend=False, hoverinfo="skip"))
    lx, ly, lt = [], [], []
    for k, m in enumerate(messages):
        y = -(k + 0.5)
        x0, x1 = xi.get(m["src"], 0), xi.get(m["dst"], 0)
        if x0 == x1:
            x1 = x0 + 0.25
        fig.add_annotation(x=x1, y=y, ax=x0, ay=y, xref="x", yref="y", axref="x", ayref="y", showarrow=True,
                           arrowhead=3, arrowwidth=1.5, arrowcolor=m.get("color", "#333"))
        lx.append((x0 + x1) / 2)
        ly.append(y + 0.18)
        lt.append(str(m.get("label", "")))
    fig.add_trace(go.Scatter(x=lx, y=ly, mode="text", text=lt, showlegend=False, textfont=dict(size=10), name="messages"))
    fig.update_xaxes(visible=False, range=[-0.6, max(0, len(actors) - 1) + 0.6])
    fig.update_yaxes(visible=False)
    fig.update_layout(title=title, height=min(2400, 120 + 34 * n), margin=dict(l=10, r=10, t=40, b=10))
    return fig


ROLE_COLORS = {"linearized": "#A5D6A7", "blocked": "#EF5350", "left out": "#BDBDBD", "pending": "#FFF3C4"}


def history_chart(ops: Sequence[dict], title: str = "History: call..return per client; [n] = linearization order") -> go.Figure:
    """One lane per client; each operation a bar from call to return, coloured by its role
    (linearized / blocked = cannot be linearized / left out / pending) and labelled with its
    position in the linearization and its description."""
    fig = go.Figure()
    for role, color in ROLE_COLORS.items():
        sel = [o for o in ops if o.get("role") == role]
        if not sel:
            continue
        fig.add_trace(go.Bar(
            base=[o["call"] for o in sel], x=[max(o["ret"] - o["call"], 1e-9) for o in sel],
            y=[str(o["client"]) for o in sel], orientation="h", name=role, marker_color=color,
            marker_line=dict(color="#37474F", width=1),
            text=[(f"[{o['order']}] " if o.get("order") is not None else "") + str(o.get("label", "")) for o in sel],
            textposition="inside", insidetextanchor="start", hovertext=[f"op {o['index']}: {o.get('label', '')}" for o in sel],
        ))
    lanes = len({str(o["client"]) for o in ops})
    fig.update_layout(barmode="overlay", height=min(1600, 160 + 36 * lanes))
    fig.update_yaxes(type="category", autorange="reversed")
    return _layout(fig, title, "time", "client")


# ------------------------------------------------------------------ hardware


def predicted_vs_measured(rows: Sequence[dict], title: str = "Predicted vs measured latency") -> go.Figure:
    """Scatter of measured against predicted ms per configuration, with the y = x diagonal."""
    xs = [r["predicted_ms"] for r in rows]
    ys = [r["measured_ms"] for r in rows]
    lim = max([1.0] + [v for v in xs + ys if v is not None]) * 1.1
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, lim], y=[0, lim], mode="lines", name="predicted = measured",
                             line=dict(color="gray", dash="dot")))
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers+text", text=[r.get("label", "") for r in rows],
                             textposition="top center", name="configurations", marker=dict(size=10)))
    return _layout(fig, title, "predicted (ms)", "measured (ms)")
