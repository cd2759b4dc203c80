"""Plotly figures of the dashboard, built by pure functions of plain data.

Each function takes lists / dicts (from :mod:`ui.dashboard.data` or the library) and
returns a ``plotly.graph_objects.Figure``; nothing here touches streamlit, so the
figures are unit-testable and the tests can read back what a chart draws.
"""

from __future__ import annotations

import colorsys
import functools
import math
import re
from collections.abc import Sequence

import plotly.graph_objects as go

PALETTE = (
    "#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#EECA3B", "#B279A2", "#FF9DA6",
    "#9D755D", "#BAB0AC", "#1F77B4", "#FF7F0E", "#2CA02C", "#D62728", "#9467BD", "#8C564B",
)
IDLE = "#BDBDBD"

#: Axis text (tick labels and titles of every axis, colour bars) in the theme's own text colour
#: at this opacity: Streamlit draws it in a fixed grey that reads 3.7:1 on the light theme's
#: white (WCAG asks 4.5:1 for text). CSS, because the colour must follow the theme the viewer
#: picks in the browser, which the server does not know; app.py adds it to every page.
AXIS_TEXT_OPACITY = 0.8
AXIS_TEXT_CSS = (
    '.stPlotlyChart g[class^="x"][class$="tick"] text, .stPlotlyChart g[class^="y"][class$="tick"] text, '
    '.stPlotlyChart g[class^="g-x"][class$="title"] text, .stPlotlyChart g[class^="g-y"][class$="title"] text, '
    ".stPlotlyChart .colorbar text "
    f"{{fill: currentColor !important; fill-opacity: {AXIS_TEXT_OPACITY} !important;}}"
)

#: One colour per policy, the same on every page and report (the Planner's "plan" is packrat's).
POLICY_COLORS = {"packrat": PALETTE[0], "fat": PALETTE[1], "thin": PALETTE[2], "packrat-ewma": PALETTE[6]}


def policy_color(name: str, k: int = 0) -> str:
    """The colour of policy ``name`` (:data:`POLICY_COLORS`); any other series (a saved run, a
    pinned plan) gets the ``k``-th colour of :data:`PALETTE` after the policies' ones."""
    if name in POLICY_COLORS:
        return POLICY_COLORS[name]
    others = [c for c in PALETTE if c not in POLICY_COLORS.values()]
    return others[k % len(others)]


def _srgb_linear(c: int) -> float:
    x = c / 255
    return x / 12.92 if x <= 0.04045 else ((x + 0.055) / 1.055) ** 2.4


def luminance(hex_: str) -> float:
    """WCAG relative luminance (0..1) of a ``#RRGGBB`` colour."""
    r, g, b = (_srgb_linear(int(hex_[i:i + 2], 16)) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def lab(hex_: str) -> tuple[float, float, float]:
    """CIE L*a*b* (D65) of a ``#RRGGBB`` colour."""
    r, g, b = (_srgb_linear(int(hex_[i:i + 2], 16)) for i in (1, 3, 5))
    xyz = ((0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047, 0.2126 * r + 0.7152 * g + 0.0722 * b,
           (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883)
    fx, fy, fz = (t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116 for t in xyz)
    return 116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)


def color_difference(a: str, b: str) -> float:
    """CIE76 colour difference (Delta E) of two ``#RRGGBB`` colours: about 2.3 is just noticeable,
    above 10 two colours are told apart at a glance."""
    return math.dist(lab(a), lab(b))


@functools.lru_cache(maxsize=1)
def instance_colors(n: int = 64) -> tuple[str, ...]:
    """``n`` instance colours, each as different as it can be from all before it and from idle
    grey (greedy farthest point in L*a*b* over an HSL grid), starting with the first 9 colours of
    :data:`PALETTE` (its 10th is a grey, too close to idle). Every one is light enough for the
    core map's black labels (luminance >= 0.175: 4.5:1). Pure and deterministic."""
    cands = [f"#{round(r * 255):02X}{round(g * 255):02X}{round(b * 255):02X}"
             for h in range(36) for sat in (0.45, 0.65, 0.85) for light in (0.35, 0.45, 0.55, 0.65, 0.75, 0.85)
             for r, g, b in [colorsys.hls_to_rgb(h / 36, light, sat)]]
    cands = [c for c in cands if luminance(c) >= 0.175]
    chosen = list(PALETTE[:9])
    labs = {c: lab(c) for c in [*cands, *chosen, IDLE, "#FFFFFF"]}
    gap = {c: min(math.dist(labs[c], labs[o]) for o in [*chosen, IDLE, "#FFFFFF"]) for c in cands}
    while len(chosen) < n:
        pick = max(cands, key=lambda c: (gap[c], c))
        chosen.append(pick)
        for c in cands:
            gap[c] = min(gap[c], math.dist(labs[c], labs[pick]))
    return tuple(chosen[:n])


def instance_color(k: int) -> str:
    """A colour per instance index, distinct for any number of instances: the 64 of
    :func:`instance_colors` (told apart at a glance: Delta E above 15), then hues spread by the
    golden angle (distinct, though neighbours may look alike)."""
    table = instance_colors()
    if k < len(table):
        return table[k]
    j = k - len(table)
    hue = (j * 137.508) % 360.0
    light = 45 + 15 * ((j // 7) % 2)  # alternate lightness so neighbouring hues differ
    return f"hsl({hue:.1f},65%,{light}%)"


def log_ticks(values, min_ticks: int = 3) -> list[float]:
    """Tick values for a log axis over ``values`` (positive ones): 1-2-5 steps per decade
    (1-1.5-2-3-5-7 when the range is narrow), always at least ``min_ticks`` inside the range."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v)) and float(v) > 0]
    if not xs:
        return []
    lo, hi = min(xs), max(xs)
    for mantissas in ((1,), (1, 2, 5), (1, 1.5, 2, 3, 5, 7), (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 9)):
        ticks = []
        for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1):
            for m in mantissas:
                t = m * 10.0 ** e
                if lo * 0.999 <= t <= hi * 1.001:
                    ticks.append(float(f"{t:.6g}"))
        if len(ticks) >= min_ticks:
            return ticks
    # a very narrow range: evenly spaced ticks
    return [float(f"{lo + (hi - lo) * k / (min_ticks - 1):.4g}") for k in range(min_ticks)] if hi > lo else [lo]


def tick_text(t: float) -> str:
    return f"{t:g}" if t >= 0.01 else f"{t:.1e}"


def _log_y(fig: go.Figure, values) -> None:
    ticks = log_ticks(values)
    fig.update_yaxes(type="log", tickvals=ticks, ticktext=[tick_text(t) for t in ticks], showticklabels=True)


#: Legend beside the plot, right of it (outside the plot area): for figures whose space
#: above the plot holds text of its own (subplot titles, event labels), which a legend on
#: top would cover.
LEGEND_RIGHT = dict(orientation="v", yanchor="top", y=1.0, xanchor="left", x=1.02)
RIGHT_MARGIN = 170  # px for LEGEND_RIGHT's entries


def _layout(fig: go.Figure, title: str, x: str, y: str, *, legend_right: bool = False, top: int = 80,
            **kw) -> go.Figure:
    """Title top left, legend above the plot at the right (or, ``legend_right``, beside it), axes
    titled; ``top``: the top margin in px (title plus whatever a figure draws above its plot)."""
    legend = LEGEND_RIGHT if legend_right else dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1)
    fig.update_layout(
        # the title's top 10 px below the figure's top, however tall the figure (a fraction of
        # the height would push it down onto what a tall figure draws above its plot)
        title=dict(text=title, x=0, xanchor="left", y=1.0, yanchor="top", yref="container", pad=dict(t=10)),
        xaxis_title=x, yaxis_title=y,
        margin=dict(l=60, r=RIGHT_MARGIN if legend_right else 20, t=top, b=50),
        legend=legend, **kw,
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
                                 line=dict(color=color), legendgroup=str(s["batch"]),
                                 hovertemplate=f"batch {s['batch']}, %{{x}} threads: %{{y:.3f}} ms<extra></extra>"))
        fig.add_trace(go.Scatter(x=s["threads"], y=s["ideal_ms"], mode="lines", name=f"b={s['batch']} ideal",
                                 line=dict(color=color, dash="dash"), legendgroup=str(s["batch"]), showlegend=False,
                                 hovertemplate=(f"batch {s['batch']}, %{{x}} threads: %{{y:.3f}} ms if scaling were "
                                                "linear<extra></extra>")))
    _log_y(fig, [y for s in series for y in list(s["latency_ms"]) + list(s["ideal_ms"])])
    return _layout(fig, title, "threads t", "latency (ms, log)")


def interference_chart(series: dict, title: str = "Interference: slowdown beside busy cores") -> go.Figure:
    """Measured slowdown points and the interpolated curve the model uses."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=series["cores"], y=series["slowdown"], mode="lines", name="model (interpolated)",
                             hovertemplate="model: %{y:.3f}x beside %{x} busy cores<extra></extra>"))
    pts = series["points"]
    fig.add_trace(go.Scatter(x=[k for k, _ in pts], y=[s for _, s in pts], mode="markers", name="measured",
                             marker=dict(size=9), hovertemplate="measured: %{y:.3f}x beside %{x} busy cores<extra></extra>"))
    fig.add_hline(y=1.0, line=dict(color="gray", dash="dot"))
    return _layout(fig, title, "other busy cores", "slowdown (x isolated latency)")


# ------------------------------------------------------------------- planner


def core_map(owner: Sequence[int | None], instances: Sequence[dict], per_row: int | None = None,
             title: str = "Cores of the machine, coloured by instance") -> go.Figure:
    """One square per core (a shape in data units, so squares never overlap however many
    cores a row holds); colour = instance (distinct for any count), grey = idle; the label
    sits at the centre of its own square; hover names instance, threads, sub-batch."""
    n = len(owner)
    per_row = per_row or (8 if n <= 32 else 16)
    rows = max(1, math.ceil(n / per_row))
    xs, ys, texts, hover = [], [], [], []
    shapes = []
    small = per_row > 16
    for c, k in enumerate(owner):
        x, y = c % per_row, -(c // per_row)
        xs.append(x)
        ys.append(y)
        color = IDLE if k is None else instance_color(k)
        shapes.append(dict(type="rect", xref="x", yref="y", x0=x - 0.45, x1=x + 0.45, y0=y - 0.45, y1=y + 0.45,
                           fillcolor=color, line=dict(color="white", width=1), layer="below"))
        if k is None:
            texts.append("" if small else f"{c}")
            hover.append(f"core {c}: idle")
        else:
            inst = instances[k]
            texts.append(f"#{k}" if small else f"{c}<br>#{k}")
            hover.append(f"core {c}: instance #{k} ({inst['threads']} threads, sub-batch {inst['batch']})")
    fig = go.Figure(
        go.Scatter(
            x=xs, y=ys, mode="text", text=texts, hovertext=hover, hoverinfo="text",
            textfont=dict(size=8 if small else 10, color="black"), name="cores", showlegend=False,
        )
    )
    for k, inst in enumerate(instances):  # the legend: what each colour runs
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=instance_legend(k, inst),
                                 marker=dict(symbol="square", size=12, color=instance_color(k)), hoverinfo="skip"))
    legend_rows = math.ceil(len(instances) / LEGEND_PER_ROW)
    fig.update_xaxes(visible=False, range=[-0.6, per_row - 0.4], fixedrange=True)
    fig.update_yaxes(visible=False, range=[-(rows - 1) - 0.6, 0.6], fixedrange=True)
    fig.update_layout(title=title, height=90 + (60 if per_row <= 16 else 40) * rows + LEGEND_ROW_PX * legend_rows,
                      shapes=shapes, margin=dict(l=10, r=10, t=40, b=10 + LEGEND_ROW_PX * legend_rows),
                      showlegend=bool(instances),
                      legend=dict(orientation="h", yanchor="top", y=-0.02, xanchor="left", x=0, entrywidth=200))
    return fig


#: The core map's legend below the squares: entries per row (in a half-page column) and px per row.
LEGEND_PER_ROW, LEGEND_ROW_PX = 3, 22


def instance_legend(k: int, inst: dict) -> str:
    """The legend entry of instance ``k`` of a plan: its threads and sub-batch, with units."""
    return f"#{k}: {inst['threads']} thread{'s' if inst['threads'] != 1 else ''}, sub-batch {inst['batch']}"


def _wrap(text: str, width: int = 28) -> str:
    """``text`` broken into lines of about ``width`` characters (``<br>``), for chart labels."""
    import textwrap

    return "<br>".join(textwrap.wrap(text, width)) or text


def baseline_bars(fat_ms: float | None, thin_ms: float | None, plan_ms: float, labels: Sequence[str] = ("fat", "thin", "plan"),
                  title: str = "Batch latency: fat vs thin vs optimal plan",
                  notes: Sequence[str | None] = ()) -> go.Figure:
    """Three bars with their values printed on them. A bar with no value (None: the baseline
    cannot run on the candidate cells) keeps its place on the axis and says ``n/a`` and why
    (``notes``, the planner report's ``*_note``), instead of silently disappearing."""
    ys = [fat_ms, thin_ms, plan_ms]
    notes = list(notes) + [None] * (len(ys) - len(notes))
    fig = go.Figure(
        go.Bar(x=list(labels), y=ys, text=["" if y is None else f"{y:.2f} ms" for y in ys],
               textposition="auto", hovertemplate="%{x}: %{y:.2f} ms<extra></extra>",
               marker_color=[policy_color("fat"), policy_color("thin"), policy_color("packrat")], name="latency")
    )
    for x, y, note in zip(labels, ys, notes):
        if y is None:
            fig.add_annotation(x=x, y=0, xref="x", yref="y", yanchor="bottom", showarrow=False, align="center",
                               text="n/a" + (f":<br>{_wrap(note)}" if note else ""), font=dict(size=11))
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=list(labels))
    return _layout(fig, title, "", "latency (ms)")


def sweep_chart(rows: Sequence[dict], title: str = "Best plan across batch sizes") -> go.Figure:
    """Latency vs batch of the optimal plan, fat and thin (log-log); hover names the plan."""
    xs = [r["batch"] for r in rows]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=xs, y=[r.get("fat_ms") for r in rows], mode="lines+markers", name="fat",
                             line=dict(color=policy_color("fat")),
                             hovertemplate="fat, batch %{x}: %{y:.2f} ms<extra></extra>"))
    fig.add_trace(go.Scatter(x=xs, y=[r.get("thin_ms") for r in rows], mode="lines+markers", name="thin",
                             line=dict(color=policy_color("thin")),
                             hovertemplate="thin, batch %{x}: %{y:.2f} ms<extra></extra>"))
    fig.add_trace(go.Scatter(x=xs, y=[r.get("plan_ms") for r in rows], mode="lines+markers", name="optimal plan",
                             line=dict(color=policy_color("packrat"), width=3),
                             hovertext=[r.get("plan") or "infeasible" for r in rows],
                             hovertemplate="optimal plan %{hovertext}, batch %{x}: %{y:.2f} ms<extra></extra>"))
    fig.update_xaxes(type="log", tickvals=xs, ticktext=[str(x) for x in xs])
    _log_y(fig, [r.get(k) for r in rows for k in ("fat_ms", "thin_ms", "plan_ms")])
    return _layout(fig, title, "batch B", "latency (ms, log)")


# ----------------------------------------------------------------- simulator


def latency_cdf(samples: dict[str, Sequence[float]], title: str = "Batch latency CDF") -> go.Figure:
    """Empirical CDF per named series of latencies (ms)."""
    fig = go.Figure()
    for k, (name, xs) in enumerate(samples.items()):
        xs = sorted(float(x) for x in xs)
        n = len(xs)
        fig.add_trace(go.Scatter(x=xs, y=[(i + 1) / n for i in range(n)], mode="lines", name=name,
                                 line=dict(color=policy_color(name, k), shape="hv"),
                                 hovertemplate=f"{name}: %{{y:.1%}} of batches within %{{x:.2f}} ms<extra></extra>"))
    return _layout(fig, title, "latency (ms)", "fraction")


#: Event labels above a timeline: px per character (11 px font) and per row.
CHAR_PX, ROW_PX, MAX_ROWS = 6.6, 17, 4
ASSUMED_PLOT_PX = 900  # the narrowest plot width the labels are laid out for (a 1440 px page: ~1100)
LEFT_SLACK_PX = 50  # a label may reach this far into the left margin (above the lane names)


def label_rows(marks: Sequence[dict], x0: float, x1: float,
               plot_px: float = ASSUMED_PLOT_PX) -> list[tuple[int | None, str]]:
    """(row, side) of each mark's label: row 0 is right above the plot, side ``left`` or
    ``right`` of its line, so that no two labels of a row overlap. A ``reconfigure`` label goes
    left of its line and any other right of it (a reconfiguration's decision comes before its
    switch, so its two labels face away from each other), unless that would run past the start
    of the axis (by more than :data:`LEFT_SLACK_PX`) or the right margin. Widths are estimated for a plot ``plot_px`` wide over [x0, x1]; a label that
    fits no row of :data:`MAX_ROWS` gets row None (its line stays, its text is in the hover)."""
    per_px = (x1 - x0) / plot_px if x1 > x0 else 1.0
    taken: list[list[tuple[float, float]]] = [[] for _ in range(MAX_ROWS)]
    out: list[tuple[int | None, str]] = []
    for m in marks:
        width = (len(str(m.get("short", m.get("label", "")))) * CHAR_PX + 8) * per_px
        side = "left" if m.get("kind") == "reconfigure" else "right"
        if side == "left" and m["t"] - width < x0 - LEFT_SLACK_PX * per_px:
            side = "right"
        elif side == "right" and m["t"] + width > x1 + RIGHT_MARGIN * per_px:
            side = "left"
        lo, hi = (m["t"] - width, m["t"]) if side == "left" else (m["t"], m["t"] + width)
        row = next((r for r in range(MAX_ROWS) if all(hi <= a or lo >= b for a, b in taken[r])), None)
        if row is not None:
            taken[row].append((lo, hi))
        out.append((row, side))
    return out


def gantt(spans: Sequence[dict], marks: Sequence[dict] = (), title: str = "Per-instance timeline") -> go.Figure:
    """Horizontal bars: ``spans`` = [{"lane", "start", "end", "label", "group"}], ``marks`` = [{"t",
    "label", "short", "kind"}] drawn as vertical lines (reconfigurations: ``kind`` reconfigure or
    switch). Each line's ``short`` label sits above the plot area (never over the bars), in rows
    chosen by :func:`label_rows` so labels never overlap; hovering a label shows the full
    ``label``. The legend sits right of the plot, clear of the labels. Times in ms."""
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
    xs = [s["start"] for s in spans] + [s["end"] for s in spans] + [m["t"] for m in marks]
    x0, x1 = (min(xs), max(xs)) if xs else (0.0, 1.0)
    rows = label_rows(marks, x0, x1)
    for m, (row, side) in zip(marks, rows):
        fig.add_vline(x=m["t"], line=dict(color=BREAK_COLOR, dash="dash" if m.get("kind") == "reconfigure" else "solid",
                                          width=1.5))
        if row is None:
            continue
        left = side == "left"
        fig.add_annotation(x=m["t"], xref="x", y=1.0, yref="paper", yanchor="bottom", yshift=2 + row * ROW_PX,
                           xanchor="right" if left else "left", xshift=-2 if left else 2, showarrow=False,
                           text=str(m.get("short", m.get("label", ""))), hovertext=str(m.get("label", "")),
                           font=dict(size=11, color=BREAK_COLOR), name="mark")
    used = max((r for r, _ in rows if r is not None), default=-1) + 1
    fig.update_layout(barmode="overlay")
    fig.update_yaxes(type="category", autorange="reversed")
    fig.update_xaxes(range=[x0, x1] if x1 > x0 else None)
    return _layout(fig, title, "time (ms)", "instance", legend_right=True, top=50 + used * ROW_PX)


# -------------------------------------------------------------- verification


BREAK_COLOR = "#E4572E"


#: Message labels of a sequence diagram: px per character (10 px font, an over-estimate),
#: padding px, and the band they occupy above their arrow (in rows of the diagram).
MSG_CHAR_PX, MSG_PAD_PX = 6.2, 8
LABEL_BAND = (0.05, 0.4)


def label_extent(x: float, text: str, lane_px: float) -> tuple[float, float]:
    """The x extent (lane units) of a message label of ``text`` (HTML tags not counted) centred
    at ``x`` when lifelines are ``lane_px`` px apart."""
    half = (len(re.sub(r"<[^>]+>", "", text)) * MSG_CHAR_PX + MSG_PAD_PX) / 2 / lane_px
    return x - half, x + half


def lifeline(i: int, n: int, cuts: Sequence[tuple[float, float]]) -> tuple[list[float | None], list[float | None]]:
    """x, y of lifeline ``i`` from the actors' names (y 0.5) down past ``n`` messages, interrupted
    (a None point) over each (y0, y1) band of ``cuts``: where a message label is drawn across it."""
    xs: list[float | None] = [i]
    ys: list[float | None] = [0.5]
    for y0, y1 in sorted(cuts, reverse=True):  # top (largest y) first
        xs += [i, None, i]
        ys += [y1, None, y0]
    return xs + [i], ys + [-(n + 0.5)]


def sequence_diagram(actors: Sequence[str], messages: Sequence[dict], title: str = "Message sequence",
                     current: int | None = None, plot_px: float = ASSUMED_PLOT_PX) -> go.Figure:
    """Lifelines for ``actors`` and one arrow per message {"src", "dst", "label", "step", "color",
    "breaks"} (top to bottom). Arrow colours are mid-tones readable on light and dark themes;
    the step that breaks the property (``breaks``) is thick, red and says so; ``current``
    (a step number) gets a band behind it (the stepper's position). Each label is centred over
    its arrow, whole; a lifeline it crosses (:func:`label_extent`, for a plot at least
    ``plot_px`` wide) is interrupted behind it, so no label is drawn over a lifeline."""
    xi = {a: i for i, a in enumerate(actors)}
    n = max(1, len(messages))
    lane_px = plot_px / (max(0, len(actors) - 1) + 1.2)
    fig = go.Figure()
    lx, ly, lt = [], [], []
    cuts: dict[int, list[tuple[float, float]]] = {i: [] for i in xi.values()}
    shapes = []
    for k, m in enumerate(messages):
        y = -(k + 0.5)
        x0: float = xi.get(m["src"], 0)
        x1: float = xi.get(m["dst"], 0)
        if x0 == x1:
            x1 = x0 + 0.25
        breaks = bool(m.get("breaks"))
        color = BREAK_COLOR if breaks else m.get("color", "#8C8C8C")
        fig.add_annotation(x=x1, y=y, ax=x0, ay=y, xref="x", yref="y", axref="x", ayref="y", showarrow=True,
                           arrowhead=3, arrowwidth=3.5 if breaks else 2, arrowcolor=color)
        if current is not None and m.get("step") == current:
            shapes.append(dict(type="rect", xref="paper", yref="y", x0=0, x1=1, y0=y - 0.5, y1=y + 0.5,
                               fillcolor="rgba(76,139,245,0.18)", line=dict(width=0), layer="below"))
        text = str(m.get("label", "")) + ("  <b>(breaks here)</b>" if breaks else "")
        lo, hi = label_extent((x0 + x1) / 2, text, lane_px)
        for i in cuts:
            if lo < i < hi:
                cuts[i].append((y + LABEL_BAND[0], y + LABEL_BAND[1]))
        lx.append((x0 + x1) / 2)
        ly.append(y + sum(LABEL_BAND) / 2)
        lt.append(text)
    for i in xi.values():
        xs, ys = lifeline(i, n, cuts[i])
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="#8C8C8C", dash="dot"), connectgaps=False,
                                 showlegend=False, hoverinfo="skip", name=f"lifeline {i}"))
    fig.add_trace(go.Scatter(x=list(xi.values()), y=[0.9] * len(xi), mode="text", text=[f"<b>{a}</b>" for a in xi],
                             showlegend=False, hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=lx, y=ly, mode="text", text=lt, showlegend=False, textfont=dict(size=10), name="messages",
                             hoverinfo="text"))
    fig.update_xaxes(visible=False, range=[-0.6, max(0, len(actors) - 1) + 0.6])
    fig.update_yaxes(visible=False)
    fig.update_layout(title=title, height=min(2400, 120 + 34 * n), margin=dict(l=10, r=10, t=40, b=10), shapes=shapes)
    return fig


#: Linearization points sit this far below their lane's centre (in lanes; bars are 0.8 high).
POINT_OFFSET = 0.3
ROLE_COLORS = {"linearized": "#A5D6A7", "blocked": "#EF5350", "left out": "#BDBDBD", "pending": "#FFF3C4"}


def _lane_order(ops: Sequence[dict]) -> list[str]:
    """Client lanes sorted numerically when they are numbers, else by name."""
    names = {str(o["client"]) for o in ops}

    def key(c: str):
        try:
            return (0, float(c), c)
        except ValueError:
            return (1, 0.0, c)

    return sorted(names, key=key)


def history_chart(ops: Sequence[dict], title: str = "History: call..return per client; [n] = linearization order",
                  unit: str = "", points: Sequence[dict] = (), zoom: tuple[float, float] | None = None) -> go.Figure:
    """One lane per client (sorted); each operation a bar from call to return, coloured by its
    role (linearized / blocked = cannot be linearized / left out / pending) and labelled with
    its position in the linearization and its description. Times are as given in ``ops``
    (already scaled); ``unit`` names them on the axis and in the hover. ``points``: the
    linearization points [{"t", "client", "order", "label", "state"}] drawn as diamonds whose
    hover shows the model state there. ``zoom``: the x range to show first."""
    u = f" {unit}" if unit else ""
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
            textposition="inside", insidetextanchor="start",
            customdata=[[o["index"], o.get("label", ""), o["call"],
                         "pending (no return)" if o.get("role") == "pending" else f"{o['ret']:.6g}{u}", role]
                        for o in sel],
            hovertemplate=("op %{customdata[0]}: %{customdata[1]}<br>call %{customdata[2]:.6g}" + u
                           + "<br>return %{customdata[3]}<br>%{customdata[4]}<extra></extra>"),
        ))
    lanes = _lane_order(ops)
    if points:
        # on the lower edge of the bar, under its label: a diamond on the centre line covered
        # the label's first characters ("[" of "[1] write(1)"), the linearization point being
        # often the call itself. An overlaid numeric axis (y2) places them between the lanes'
        # categories; both axes share one range, so lane k is at k on each.
        row = {c: k for k, c in enumerate(lanes)}
        fig.add_trace(go.Scatter(
            x=[p["t"] for p in points], y=[row.get(str(p["client"]), 0) + POINT_OFFSET for p in points],
            yaxis="y2", mode="markers", name="linearization point",
            marker=dict(symbol="diamond", size=9, color="#1F3A93", line=dict(color="white", width=1)),
            customdata=[[p["order"], p["label"], p.get("state", ""), str(p["client"])] for p in points],
            hovertemplate=("[%{customdata[0]}] %{customdata[1]} (client %{customdata[3]})<br>takes effect at %{x:.6g}"
                           + u + "<br>model state after: %{customdata[2]}<extra></extra>"),
        ))
    span = [len(lanes) - 0.5, -0.5]  # top lane first
    fig.update_layout(barmode="overlay", height=min(1600, 160 + 36 * len(lanes)),
                      yaxis2=dict(overlaying="y", range=span, visible=False, fixedrange=True))
    # lanes do not zoom (zooming only the lanes would move them off their diamonds); time does
    fig.layout.yaxis.update(type="category", categoryorder="array", categoryarray=lanes, range=span, fixedrange=True)
    if zoom is not None:
        fig.update_xaxes(range=list(zoom))
    return _layout(fig, title, f"time ({unit})" if unit else "time", "client")


# ----------------------------------------------------------------- time series


def time_series(series: dict, marks: Sequence[dict] = (), title: str = "Over time") -> go.Figure:
    """Three stacked panels over the same time axis (s): request latency (p50 and p99 per
    bin, ms), throughput (requests answered per s) and queue length (requests waiting),
    with reconfigurations as vertical lines. ``series``: :func:`ui.dashboard.data.sim_time_series`."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=("request latency (ms)", "throughput (req/s)", "queue length (requests)"))
    t = series["t_s"]
    fig.add_trace(go.Scatter(x=t, y=series["p50_ms"], mode="lines", name="latency p50", line=dict(color=PALETTE[0]),
                             hovertemplate="latency p50 %{y:.2f} ms at %{x:.2f} s<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(x=t, y=series["p99_ms"], mode="lines", name="latency p99",
                             line=dict(color=PALETTE[3], dash="dot"),
                             hovertemplate="latency p99 %{y:.2f} ms at %{x:.2f} s<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(x=t, y=series["throughput_per_s"], mode="lines", name="throughput",
                             line=dict(color=PALETTE[2], shape="hv"),
                             hovertemplate="throughput %{y:.1f} req/s at %{x:.2f} s<extra></extra>"), row=2, col=1)
    fig.add_trace(go.Scatter(x=series["queue_t_s"], y=series["queue"], mode="lines", name="queue length",
                             line=dict(color=PALETTE[1], shape="hv"),
                             hovertemplate="queue %{y:.0f} requests at %{x:.2f} s<extra></extra>"), row=3, col=1)
    for m in marks:
        fig.add_vline(x=m["t_s"], line=dict(color=BREAK_COLOR, dash="dash", width=1))
    if marks:  # one legend entry for the reconfiguration lines
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name="reconfiguration", hoverinfo="skip",
                                 line=dict(color=BREAK_COLOR, dash="dash")), row=1, col=1)
    fig.update_xaxes(title_text="time (s)", row=3, col=1)
    fig.update_layout(height=640)
    # the legend goes beside the panels: on top it would cover the first panel's title
    return _layout(fig, title, "", "", legend_right=True)


def compare_bars(rows: Sequence[dict], metric: str, title: str) -> go.Figure:
    """One bar per saved run for ``metric`` (rows: {"run", metric})."""
    fig = go.Figure(go.Bar(x=[r["run"] for r in rows], y=[r.get(metric) for r in rows],
                           text=[f"{r.get(metric):.2f}" if r.get(metric) is not None else "n/a" for r in rows],
                           textposition="auto", marker_color=[instance_color(k) for k in range(len(rows))],
                           hovertemplate=f"%{{x}}: %{{y:.2f}} {metric}<extra></extra>"))
    return _layout(fig, title, "run", metric)


# ------------------------------------------------------------------ hardware


def predicted_vs_measured(rows: Sequence[dict], title: str = "Predicted vs measured latency") -> go.Figure:
    """Scatter of measured against predicted ms per configuration on log-log axes (small and
    large latencies both readable, nothing piled at 0), with the y = x diagonal."""
    pts = [r for r in rows if (r.get("predicted_ms") or 0) > 0 and (r.get("measured_ms") or 0) > 0]
    xs = [r["predicted_ms"] for r in pts]
    ys = [r["measured_ms"] for r in pts]
    vals = xs + ys or [1.0]
    lo, hi = min(vals) / 1.5, max(vals) * 1.5
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="predicted = measured",
                             line=dict(color="gray", dash="dot"), hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers+text", text=[r.get("label", "") for r in pts],
                             textposition="top center", name="configurations", marker=dict(size=10),
                             hovertemplate="%{text}<br>predicted %{x:.3g} ms<br>measured %{y:.3g} ms<extra></extra>"))
    ticks = log_ticks([lo, hi])
    fig.update_xaxes(type="log", range=[math.log10(lo), math.log10(hi)], tickvals=ticks,
                     ticktext=[tick_text(t) for t in ticks])
    fig.update_yaxes(type="log", range=[math.log10(lo), math.log10(hi)], tickvals=ticks,
                     ticktext=[tick_text(t) for t in ticks])
    return _layout(fig, title, "predicted (ms, log)", "measured (ms, log)")
