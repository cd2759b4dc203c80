"""Issue 30 item 8 (chart builders, pure): core-map colours told apart past 10 instances and a
legend naming threads and sub-batch; hover text with units; linearization points clear of the
bar labels; message labels never drawn over a lifeline; axis text at >= 4.5:1 in both themes."""

from __future__ import annotations

import itertools

import pytest

pytest.importorskip("plotly")

from ui.dashboard import charts, data  # noqa: E402


def test_instance_colours_are_told_apart_at_a_glance_well_past_ten_instances():
    colours = [charts.instance_color(k) for k in range(48)]
    worst = min(charts.color_difference(a, b) for a, b in itertools.combinations([*colours, charts.IDLE], 2))
    assert worst > 15, worst  # #1 and #11 were both orange (Delta E 7.4)


def test_the_core_map_has_a_legend_naming_each_instances_threads_and_sub_batch():
    instances = [{"threads": 4, "batch": 16}, {"threads": 1, "batch": 2}]
    fig = charts.core_map([0, 0, 0, 0, 1, None], instances)
    assert fig.layout.showlegend
    entries = [t for t in fig.data if t.showlegend is not False]
    assert [t.name for t in entries] == ["#0: 4 threads, sub-batch 16", "#1: 1 thread, sub-batch 2"]
    assert [t.marker.color for t in entries] == [charts.instance_color(0), charts.instance_color(1)]
    assert fig.data[0].name == "cores"  # the squares' labels stay the first trace


def _figures():
    rows = [{"batch": 1, "fat_ms": 1.0, "thin_ms": 2.0, "plan_ms": 0.5, "plan": "1 x 1t x 1"}]
    yield charts.baseline_bars(10.0, 8.0, 401.7243)
    yield charts.sweep_chart(rows)
    yield charts.latency_cdf({"packrat": [1.0, 2.0], "fat": [3.0]})
    yield charts.scaling_curves([{"batch": 1, "threads": [1, 2], "latency_ms": [2.0, 1.2], "ideal_ms": [2.0, 1.0]}])
    yield charts.interference_chart({"cores": [0, 1], "slowdown": [1.0, 1.1], "points": [(1, 1.1)]})
    yield charts.compare_bars([{"run": "a", "p99_ms": 3.0}], "p99_ms", "p99")
    yield charts.predicted_vs_measured([{"label": "plan", "predicted_ms": 1.0, "measured_ms": 1.2}])
    yield charts.time_series({"t_s": [0, 1], "p50_ms": [1, 2], "p99_ms": [2, 3], "throughput_per_s": [5, 6],
                              "queue_t_s": [0, 1], "queue": [0, 1]}, marks=[{"t_s": 0.5}])
    yield charts.sequence_diagram(["a", "b"], [{"src": "a", "dst": "b", "label": "1. m", "step": 1}])
    yield charts.core_map([0, None], [{"threads": 1, "batch": 1}])


@pytest.mark.parametrize("fig", list(_figures()), ids=lambda f: str(f.layout.title.text))
def test_every_trace_hovers_with_formatted_numbers_and_units_or_not_at_all(fig):
    for trace in fig.data:
        template = trace.hovertemplate
        if template:  # a float is shown with a format ("%{y:.2f}"), never raw ("401.7243")
            for axis in ("x", "y"):
                values = getattr(trace, axis) or ()
                if any(isinstance(v, float) and v != int(v) for v in values):
                    assert f"%{{{axis}}}" not in template, (trace.name, template)
        else:
            assert trace.hoverinfo in ("skip", "none", "text"), (trace.name, trace.hoverinfo)


def test_the_plan_bar_hovers_in_milliseconds_with_two_decimals():
    bars = charts.baseline_bars(10.0, 8.0, 401.7243).data[0]
    assert bars.hovertemplate == "%{x}: %{y:.2f} ms<extra></extra>"


def test_linearization_points_sit_under_the_bar_labels_not_on_their_first_characters():
    ops = [{"index": 0, "client": 0, "call": 0, "ret": 10, "role": "linearized", "order": 1, "label": "write(1)"},
           {"index": 1, "client": 1, "call": 5, "ret": 15, "role": "linearized", "order": 2, "label": "read() -> 1"}]
    points = [{"t": 0, "client": 0, "order": 1, "label": "write(1)", "state": "1"},
              {"t": 5, "client": 1, "order": 2, "label": "read() -> 1", "state": "1"}]
    fig = charts.history_chart(ops, points=points)
    diamonds = next(t for t in fig.data if t.name == "linearization point")
    assert diamonds.yaxis == "y2" and fig.layout.yaxis2.overlaying == "y"
    lanes = list(fig.layout.yaxis.categoryarray)
    assert list(fig.layout.yaxis.range) == list(fig.layout.yaxis2.range) == [len(lanes) - 0.5, -0.5]
    for p, y in zip(points, diamonds.y):
        offset = y - lanes.index(str(p["client"]))
        assert 0.25 <= offset < 0.5  # below the label (centred on its lane), still on its own lane


def test_message_labels_never_run_over_a_lifeline():
    actors = ["c0", "operator", "dispatcher", "controller", "i0.0", "i1.0"]
    msgs = [{"src": "c0", "dst": "dispatcher", "label": "1. infer(0, 4)", "step": 1},
            {"src": "controller", "dst": "dispatcher", "label": "4. switch(1, ('i1.0',))", "step": 2, "breaks": True},
            {"src": "dispatcher", "dst": "c0", "label": "6. result(0, (0,), 'b0x4')", "step": 3},
            {"src": "i1.0", "dst": "i1.0", "label": "7. crash i1.0", "step": 4}]
    fig = charts.sequence_diagram(actors, msgs)
    labels = fig.data[-1]
    assert "(breaks here)" in labels.text[1]
    lines = {int(t.name.split()[-1]): t for t in fig.data if (t.name or "").startswith("lifeline")}
    lane_px = charts.ASSUMED_PLOT_PX / (len(actors) - 1 + 1.2)
    crossed = 0
    for x, y, text in zip(labels.x, labels.y, labels.text):
        lo, hi = charts.label_extent(x, text, lane_px)
        for i, line in lines.items():
            if lo < i < hi:  # the lifeline is interrupted over the label's band
                crossed += 1
                ys = list(line.y)
                gaps = [(ys[k + 1], ys[k - 1]) for k in range(1, len(ys) - 1) if ys[k] is None]  # (bottom, top)
                assert any(bottom <= y <= top for bottom, top in gaps), (text, i, gaps)
    assert crossed >= 4  # the labels above do cross lifelines: the check is not vacuous


# Streamlit 1.67's theme text colours, read in Chromium (computed style of a chart's container):
# light: rgb(47, 45, 43) on white; dark: rgb(237, 235, 232) on rgb(23, 22, 20).
THEMES = {"light": ("#2F2D2B", "#FFFFFF"), "dark": ("#EDEBE8", "#171614")}


def _over(fg: str, bg: str, alpha: float) -> str:
    """``fg`` at opacity ``alpha`` over ``bg`` (#RRGGBB)."""
    mix = [round(alpha * int(fg[i:i + 2], 16) + (1 - alpha) * int(bg[i:i + 2], 16)) for i in (1, 3, 5)]
    return "#" + "".join(f"{c:02X}" for c in mix)


@pytest.mark.parametrize("theme", sorted(THEMES))
def test_axis_text_follows_the_theme_text_colour_at_wcag_contrast(theme):
    css = charts.AXIS_TEXT_CSS
    for part in ('g[class^="x"][class$="tick"] text', 'g[class^="y"][class$="tick"] text',
                 'g[class^="g-x"][class$="title"] text', 'g[class^="g-y"][class$="title"] text'):
        assert part in css
    assert "fill: currentColor !important" in css
    text, bg = THEMES[theme]
    ratio = data.contrast_ratio(_over(text, bg, charts.AXIS_TEXT_OPACITY), bg)
    assert ratio >= 4.5, ratio  # Streamlit's own grey #808495 on white: 3.8
    assert data.contrast_ratio("#808495", "#FFFFFF") < 4.5  # why the override exists


def test_the_stepper_shows_whole_states_and_what_changed_field_by_field():
    """The stepper's table cut DispatcherState(...) at 160 characters; a state too wide for its
    cell now has a short 'what changed' beside it."""
    from checker.explore import explore
    from checker.protocols import build

    protocol = build("reconfig", "switch-before-ready", clients=2)
    found = explore("reconfig", "dpor", variant="switch-before-ready", params={"clients": 2}, max_schedules=2000,
                    max_time=30.0)
    assert found.violation is not None
    cx = data.counterexample_steps(protocol, found.violation.found)  # as found: wider states than shrunk
    widest = max((s["after"]["dispatcher"] for s in cx["steps"]), key=len)
    assert widest.startswith("DispatcherState(") and widest.endswith(")") and len(widest) > 160
    step = next(s for s in cx["steps"] if "dispatcher" in s["changed"])
    row = next(r for r in data.actor_state_rows(step) if r["actor"] == "dispatcher")
    assert row["what changed"] and all(" -> " in part for part in row["what changed"].split("; "))
    assert row["after"] == step["after"]["dispatcher"]
