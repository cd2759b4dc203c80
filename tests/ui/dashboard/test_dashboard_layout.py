"""Issue 30 items 4 and 5: chart text never overlaps, and "n/a" always says why.

Item 4: the Simulator's time series keeps its legend beside the panels (on top it covered the
"request latency (ms)" title); the per-instance timeline puts its reconfiguration labels above
the plot area (not over the bars), in rows where no two overlap, its legend beside the plot.
Checked on the figures' layout values and, where /usr/bin/chromium exists, on the boxes the
browser draws (plotly.js in headless Chromium, no Playwright needed).

Item 5: a baseline the candidate cells rule out shows "n/a" and the CLI's reason, on the
metric and on the bar chart (the bar keeps its place and says why).
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess

import pytest

from ui.dashboard import charts, data

CHROMIUM = "/usr/bin/chromium"


def series(marks=()):
    t = [0.05 * k for k in range(1, 41)]
    return {"t_s": t, "bin_s": 0.05, "p50_ms": [10.0 + k % 7 for k in range(40)], "p99_ms": [30.0 + k % 5 for k in range(40)],
            "throughput_per_s": [100.0 + 10 * (k % 3) for k in range(40)], "queue_t_s": t, "queue": [k % 9 for k in range(40)],
            "marks": list(marks)}


def crowded_marks(n=4, gap=40.0, dur=12.0, first=300.0):
    """``n`` reconfigurations ``gap`` ms apart, each switching ``dur`` ms after its decision."""
    out = []
    for k in range(n):
        t = first + k * gap
        out.append({"t": t, "kind": "reconfigure", "short": f"reconfigure -> e{k + 1}",
                    "label": f"reconfigure -> e{k + 1} (2 x 8t x 32) at {t:.1f} ms"})
        out.append({"t": t + dur, "kind": "switch", "short": f"switch to e{k + 1}",
                    "label": f"switch to e{k + 1} at {t + dur:.1f} ms"})
    return out


def spans(t0=0.0, t1=1000.0):
    return [{"lane": f"e0 #{j} 4t", "start": s, "end": s + 15.0, "group": "epoch 0", "label": "batch"}
            for j in range(3) for s in range(int(t0), int(t1), 25)]


# ------------------------------------------------------------ layout values


def test_time_series_legend_sits_beside_the_panels_not_over_the_first_title():
    fig = charts.time_series(series(), [{"t_s": 1.0, "label": "x"}], title="packrat: latency")
    legend = fig.layout.legend
    assert legend.orientation == "v" and legend.x > 1 and legend.xanchor == "left"
    assert fig.layout.margin.r >= charts.RIGHT_MARGIN
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["request latency (ms)", "throughput (req/s)", "queue length (requests)"]


def test_timeline_labels_sit_above_the_plot_in_rows_that_do_not_overlap():
    marks = crowded_marks()
    fig = charts.gantt(spans(), marks)
    notes = list(fig.layout.annotations)
    assert len(notes) == len(marks)
    for a in notes:  # above the plot area, never over the bars
        assert a.yref == "paper" and a.y >= 1.0 and a.yanchor == "bottom"
    # the full label is in the hover; the chart shows the short one
    assert [a.text for a in notes] == [m["short"] for m in marks]
    assert [a.hovertext for a in notes] == [m["label"] for m in marks]
    # estimated extents of the labels of one row never overlap
    x0, x1 = fig.layout.xaxis.range
    per_px = (x1 - x0) / charts.ASSUMED_PLOT_PX
    rows: dict[float, list[tuple[float, float]]] = {}
    for a in notes:
        w = (len(a.text) * charts.CHAR_PX + 8) * per_px
        rows.setdefault(a.yshift, []).append((a.x - w, a.x) if a.xanchor == "right" else (a.x, a.x + w))
    for boxes in rows.values():
        boxes.sort()
        assert all(b[0] >= a[1] for a, b in zip(boxes, boxes[1:])), boxes
    assert len(rows) >= 2, "crowded labels need more than one row"
    assert fig.layout.margin.t >= 50 + len(rows) * charts.ROW_PX
    assert fig.layout.legend.x > 1  # the legend does not sit on the label rows


def test_a_label_at_the_start_of_the_window_turns_right():
    rows = charts.label_rows([{"t": 1.0, "kind": "reconfigure", "short": "reconfigure -> e1"}], 0.0, 1000.0)
    assert rows == [(0, "right")]


def test_the_simulator_page_draws_the_new_layout(open_page, h):
    at = open_page("simulator")
    at.number_input(key="sim.start_ms").set_value(500.0)
    at.multiselect(key="sim.policies").set_value(["packrat"])
    at.button(key="sim.btn.run").click().run()
    h.no_errors(at)
    ts = h.chart(at, "sim.timeseries")["layout"]
    assert ts["legend"]["x"] > 1 and ts["legend"]["orientation"] == "v"
    gantt = h.chart(at, "sim.gantt")["layout"]
    notes = gantt.get("annotations", [])
    assert notes and all(a["yref"] == "paper" and a["y"] >= 1 for a in notes)
    assert {a["text"].split(" ")[0] for a in notes} == {"reconfigure", "switch"}


# --------------------------------------------------------- in a real browser


BOXES_JS = """
var gd = document.getElementById('{plot_id}');
function box(e) { var r = e.getBoundingClientRect();
  return {x0: r.left, y0: r.top, x1: r.right, y1: r.bottom, text: e.textContent}; }
function all(sel) { return Array.prototype.map.call(gd.querySelectorAll(sel), box); }
var out = {legend: all('g.legend'), notes: all('g.annotation .annotation-text-g'),
           plots: all('.draglayer .nsewdrag'), title: all('.g-gtitle .gtitle')};
var pre = document.createElement('pre'); pre.className = 'boxes'; pre.title = '%s';
pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
"""


def browser_figures() -> dict:
    """The figures checked in the browser, by name."""
    out = {}
    for template in ("plotly_white", "plotly_dark"):
        fig = charts.time_series(series(), [{"t_s": 1.0, "label": "x"}],
                                 title="packrat: latency, throughput and queue length (dashed: reconfigurations)")
        out[f"series-{template}"] = fig.update_layout(template=template)
    timeline = [dict(s, group="epoch 1") if s["start"] > 500 else s for s in spans()]
    out["timeline"] = charts.gantt(timeline, crowded_marks(), title="packrat: instances over time (red: reconfigurations)")
    out["timeline-tall"] = charts.gantt(timeline, crowded_marks(), title="the same, 900 px tall").update_layout(height=900)
    return out


@pytest.fixture(scope="module")
def drawn(tmp_path_factory) -> dict:
    """The boxes (px) headless Chromium draws for each figure's legend, annotations and plot
    areas: every figure on one page, one browser start (it takes seconds). The page (and, with
    PACKRAT_SHOTS=DIR, a screenshot in DIR) is kept under the test's tmp folder."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    from plotly.offline import get_plotlyjs

    parts = []
    for name, fig in browser_figures().items():
        fig.update_layout(width=1100)
        parts.append(fig.to_html(include_plotlyjs=False, full_html=False, post_script=BOXES_JS % name))
    page = tmp_path_factory.mktemp("layout") / "figures.html"
    page.write_text(f"<html><head><meta charset='utf-8'><script>{get_plotlyjs()}</script></head>"
                    f"<body>{''.join(parts)}</body></html>")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1140,900",
             "--no-first-run", "--disable-background-networking", "--virtual-time-budget=3000"]
    shots = os.environ.get("PACKRAT_SHOTS")
    if shots:
        subprocess.run([CHROMIUM, *flags, f"--screenshot={shots}/figures.png", "--window-size=1140,2400",
                        page.as_uri()], capture_output=True, timeout=120)
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    found = {m.group(1): json.loads(html.unescape(m.group(2)))
             for m in re.finditer(r'<pre class="boxes" title="([^"]+)">(.*?)</pre>', dom, re.S)}
    assert set(found) == set(browser_figures()), "a figure did not render in Chromium"
    return found


def overlap(a: dict, b: dict) -> bool:
    return a["x0"] < b["x1"] - 0.5 and b["x0"] < a["x1"] - 0.5 and a["y0"] < b["y1"] - 0.5 and b["y0"] < a["y1"] - 0.5


@pytest.mark.browser
def test_in_chromium_the_time_series_legend_covers_no_title(drawn):
    for template in ("plotly_white", "plotly_dark"):
        b = drawn[f"series-{template}"]
        assert [n["text"] for n in b["notes"]] == ["request latency (ms)", "throughput (req/s)", "queue length (requests)"]
        (legend,) = b["legend"]
        for note in b["notes"]:
            assert not overlap(legend, note), (template, note["text"], legend)
        assert legend["x0"] >= max(p["x1"] for p in b["plots"]), "the legend sits beside the panels"
        (title,) = b["title"]
        assert all(not overlap(title, n) for n in b["notes"] + b["legend"])


@pytest.mark.browser
@pytest.mark.parametrize("name", ["timeline", "timeline-tall"])
def test_in_chromium_timeline_labels_overlap_nothing(drawn, name):
    b = drawn[name]
    notes, plot, (legend,), (title,) = b["notes"], b["plots"][0], b["legend"], b["title"]
    assert len(notes) == 8
    for i, a in enumerate(notes):
        assert not overlap(a, title), f"{a['text']!r} is drawn over the title"
        assert a["y1"] <= plot["y0"] + 1, f"{a['text']!r} is drawn over the plot area"
        assert not overlap(a, legend), a["text"]
        for other in notes[i + 1:]:
            assert not overlap(a, other), (a["text"], other["text"])


# ------------------------------------------------------------------ item 5


def test_fat_na_says_why_on_the_metric_and_the_bar(app, h, cli):
    app.selectbox(key="profiles.builtin").set_value("cnn-64").run()
    app.button(key="profiles.btn.builtin").click().run()
    at = h.goto(app, "planner")
    at.number_input(key="planner.batch").set_value(1000).run()
    at.number_input(key="planner.cores").set_value(48).run()
    h.no_errors(at)
    code, out, _ = cli("plan", "--profile", "builtin:cnn-64", "--batch", "1000", "--cores", "48", "--json")
    report = json.loads(out)
    assert report["fat_ms"] is None and "needs cells that are not candidates: 48t x 1000" in report["fat_note"]
    fat = next(m for m in at.metric if m.label.startswith("Fat"))
    assert fat.value == "n/a" and not fat.proto.delta, "no bare 'n/a / n/a'"
    assert f"n/a: {report['fat_note']}" in [c.value for c in at.caption]
    bars = h.chart(at, "planner.bars")
    assert bars["data"][0]["x"] == ["fat", "thin", "plan"]
    (note,) = [a["text"] for a in bars["layout"]["annotations"]]
    assert note.startswith("n/a:") and "48t x 1000" in note.replace("<br>", " ")
    # an adapted baseline (thin: not the even split) says how, as the CLI does
    assert report["thin_note"] in [c.value for c in at.caption]


def test_baseline_bars_keep_an_unavailable_bar_with_its_reason():
    fig = charts.baseline_bars(None, 5.0, 4.0, notes=("unavailable: needs cells that are not candidates: 48t x 1000",
                                                      None, None))
    assert list(fig.data[0].x) == ["fat", "thin", "plan"]
    (a,) = fig.layout.annotations
    assert a.x == "fat" and a.text.startswith("n/a:<br>unavailable") and "48t x 1000" in a.text.replace("<br>", " ")
    assert data.fmt_ms(None) == "n/a"
