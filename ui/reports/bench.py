"""Render a `packrat bench` report (real_runner.bench.run_bench's dict) as Markdown and as a
self-contained plotly HTML page."""

from __future__ import annotations

import re

# The Markdown-active characters (CommonMark + GFM tables) inside a line; escaping each one
# makes a string render as its literal text (no links, emphasis, HTML tags, table cells or
# headings). Backslash escapes are valid for every ASCII punctuation character.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-!|<>&~])")


def md_escape(text) -> str:
    """``text`` as literal Markdown: line breaks and control characters become spaces and
    every Markdown-active punctuation character is backslash-escaped. Pure."""
    flat = "".join(" " if (ord(c) < 32 or ord(c) == 127) else c for c in str(text))
    return _MD_SPECIAL.sub(r"\\\1", flat)


def _f(x, fmt="{:.2f}") -> str:
    return "-" if x is None else fmt.format(x)


def prediction_name(report: dict) -> str:
    """The name of the report's one prediction per plan (``calibrated`` or ``isolated``; a
    report written before it was named: ``calibrated`` when its co-run mode says so)."""
    return report.get("prediction") or ("calibrated" if report.get("corun") == "calibrated" else "isolated")


def prediction_line(report: dict) -> str:
    """One sentence naming the prediction every table of the report uses."""
    means = report.get("prediction_means")
    return (f"Predictions: {prediction_name(report)}" + (f" ({means})" if means else "")
            + ", one per plan, the same in every table; error % = (predicted - measured) / measured.")


def to_markdown(report: dict) -> str:
    name = prediction_name(report)
    lines = [
        f"# packrat bench: {report['model']} on {report['cores']} cores",
        "",
        f"{md_escape(report['topology'])}; {report['iterations']} interleaved rounds per plan; profile "
        f"{'SYNTHETIC ' if report['profile']['synthetic'] else ''}"
        f"{md_escape(report['profile']['source'] or report['profile']['model'])}.",
        "",
        md_escape(prediction_line(report)),
        "",
        "| batch | fat ms | thin ms | optimizer | opt ms | oracle best | oracle ms | opt speedup vs fat | regret % "
        f"| opt predicted ms ({name}) | opt error % ({name}) |",
        "|---:|---:|---:|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    lines.extend(
        f"| {r['batch']} | {_f(r['fat_ms'])} | {_f(r['thin_ms'])} | {r['optimizer']} | {_f(r['optimizer_ms'])} "
        f"| {r['oracle_best']} | {_f(r['oracle_ms'])} | {_f(r['speedup_optimizer_vs_fat'])} "
        f"| {_f(r['regret_pct'], '{:.1f}')} | {_f(r.get('optimizer_predicted_ms'))} "
        f"| {_f(r['optimizer_prediction_error_pct'], '{:.1f}')} |"
        for r in report["batches"]
    )
    aware = [r for r in report["batches"] if "interference_aware" in r]
    if aware:
        lines += ["", "## Isolated-profile plan vs interference-aware plan", "",
                  "| batch | isolated plan | ms | regret % | interference-aware plan | ms | regret % |",
                  "|---:|---|---:|---:|---|---:|---:|"]
        for r in aware:
            lines.append(
                f"| {r['batch']} | {r['optimizer']} | {_f(r['optimizer_ms'])} | {_f(r['regret_pct'], '{:.1f}')} "
                f"| {r['interference_aware']} | {_f(r['interference_aware_ms'])} | {_f(r['interference_aware_regret_pct'], '{:.1f}')} |"
            )
    lines += ["", "## Every plan", ""]
    for r in report["batches"]:
        lines += [f"### batch {r['batch']}" + ("" if r["oracle_complete"] else " (oracle truncated)"), "",
                  f"| plan | roles | median ms | p90 ms | speedup vs fat | predicted ms ({name}) | error % ({name}) |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for p in sorted(r["plans"], key=lambda p: p["median_ms"]):
            lines.append(f"| {p['describe']} | {', '.join(p['roles'])} | {_f(p['median_ms'])} | {_f(p['p90_ms'])} "
                         f"| {_f(p['speedup_vs_fat'])} | {_f(p['predicted_ms'])} | {_f(p['prediction_error_pct'], '{:.1f}')} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def to_html(report: dict) -> str:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    bs = [str(r["batch"]) for r in report["batches"]]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("median batch latency (ms)",
                                                                    f"predicted ({prediction_name(report)}) vs measured (ms)"))
    for name, key in (("fat", "fat_ms"), ("thin", "thin_ms"), ("optimizer", "optimizer_ms"), ("oracle best", "oracle_ms")):
        fig.add_trace(go.Bar(name=name, x=bs, y=[r[key] for r in report["batches"]]), row=1, col=1)
    xs, ys, texts = [], [], []
    for r in report["batches"]:
        for p in r["plans"]:
            if p["predicted_ms"] is not None:
                xs.append(p["predicted_ms"])
                ys.append(p["median_ms"])
                texts.append(f"B={r['batch']}: {p['describe']}")
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", text=texts, name="plans"), row=1, col=2)
    if xs:
        hi = max(xs + ys)
        fig.add_trace(go.Scatter(x=[0, hi], y=[0, hi], mode="lines", name="y = x", line={"dash": "dot"}), row=1, col=2)
    fig.update_layout(barmode="group", title=f"packrat bench: {report['model']} on {report['cores']} cores")
    body = fig.to_html(full_html=False, include_plotlyjs=True)
    import html

    md = html.escape(to_markdown(report))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>packrat bench {html.escape(report['model'])}"
            f"</title></head><body>{body}<pre>{md}</pre></body></html>\n")
