"""The dashboard's pure helpers: data shaping, plotly figures, `packrat ui`."""

from __future__ import annotations

import math

import pytest

from packrat_sim.optimizer import OptimizerOptions, PlanTable
from packrat_sim.plan import Instance, Plan
from packrat_sim.profile import builtin_profile, import_packrat_csv
from ui.dashboard import data as data

go = pytest.importorskip("plotly.graph_objects")
from ui.dashboard import charts as charts  # noqa: E402


def test_latency_grid_and_scaling_series():
    prof = builtin_profile("cnn-16")
    threads, batches, z = data.latency_grid(prof)
    assert threads == list(range(1, 17)) and batches[0] == 1
    assert z[3][2] == prof.latency(4, 4)
    s = data.scaling_series(prof, 8)
    assert s["threads"] == threads
    assert s["ideal_ms"][7] == pytest.approx(prof.latency(1, 8) / 8)
    assert s["speedup"][0] == 1.0


def test_packrat_series_and_exact_selectors(tmp_path):
    text = (__import__("pathlib").Path(__file__).parents[2] / "packrat_sim" / "fixtures" / "packrat_resnet_8core.csv").read_text()
    series = data.packrat_series(text)
    assert len(series) == 4
    for s in series:
        imported = import_packrat_csv(text, series=data.series_selectors(s))
        assert dict(imported.chosen) == s
    assert data.series_selectors({"benchmark": "a*b[1]?"}) == [("benchmark", "a[*]b[[]1][?]")]
    assert data.packrat_series("") == []


def test_core_layout_contiguous_pinned_and_idle():
    plan = Plan((Instance(4, 16), Instance(2, 8)), 24, 8)
    owner = data.core_layout(plan.to_json())
    assert owner == [0, 0, 0, 0, 1, 1, None, None]
    pinned = Plan((Instance(2, 4, (5, 6)), Instance(1, 4, (0,))), 8, 8)
    assert data.core_layout(pinned.to_json()) == [1, None, None, None, None, 0, 0, None]
    # sockets of 8: two 6-thread instances never span a socket boundary in the drawing
    socketed = Plan((Instance(6, 8), Instance(6, 8), Instance(2, 8), Instance(2, 8)), 32, 16)
    owner = data.core_layout(socketed.to_json(), cores_per_socket=8)
    for k in range(4):
        cores = [c for c, o in enumerate(owner) if o == k]
        assert len({c // 8 for c in cores}) == 1, (k, owner)
    assert None not in owner


def test_batch_sweep_matches_the_plan_table_and_reports_infeasible_batches():
    prof = builtin_profile("transformer-16")
    rows = data.batch_sweep(prof, 16, [1, 2, 4, 64], OptimizerOptions())
    table = PlanTable(prof, 16, 64)
    assert [r["plan_ms"] for r in rows] == pytest.approx([table.latency_ms(16, b) for b in (1, 2, 4, 64)])
    assert rows[-1]["plan"] == "4 x 4t x 16" and rows[-1]["speedup_vs_fat"] > 1
    homo = data.batch_sweep(prof, 16, [3, 4], OptimizerOptions(homogeneous=True))
    assert homo[0]["plan_ms"] is None and "reason" in homo[0]
    assert homo[1]["plan_ms"] is not None


def test_workload_spec_round_trips_through_the_parser():
    wl = pytest.importorskip("packrat_sim.workload")
    specs = [
        data.workload_spec("poisson", {"rate": 250, "duration_s": 20, "max_batch": 32, "max_delay_ms": 5}),
        data.workload_spec("steps", {"steps": "100/s@10s, 600/s@10s", "max_batch": 64, "max_delay_ms": 10}),
        data.workload_spec("diurnal", {"base": 50, "peak": 600, "period_s": 20, "duration_s": 40}),
        data.workload_spec("closed", {"batch": 64, "requests": 1000, "clients": 2, "think_ms": 5}),
        data.workload_spec("spec", {"spec": " poisson:rate=1/s,duration=1s "}),
    ]
    parsed = [wl.parse_workload(s) for s in specs]
    assert parsed[0].rate_per_s == 250 and parsed[0].batching.max_batch == 32 and parsed[0].batching.max_delay_ms == 5
    assert [s.rate_per_s for s in parsed[1].steps] == [100, 600]
    assert parsed[2].peak_per_s == 600
    assert (parsed[3].batch, parsed[3].requests, parsed[3].clients, parsed[3].think_ms) == (64, 1000, 2, 5)
    assert specs[4] == "poisson:rate=1/s,duration=1s"


def test_cdf_points_keep_the_extremes():
    xs = list(range(10000))
    pts = data.cdf_points(xs, max_points=100)
    assert len(pts) == 100 and pts[0] == 0 and pts[-1] == 9999
    assert data.cdf_points([3, 1, 2]) == [1, 2, 3]


def test_figures_carry_the_data_they_draw():
    fig = charts.profile_heatmap([1, 2], [1, 4], [[10.0, None], [5.0, 20.0]])
    hm = fig.data[0]
    assert hm.z[0][0] == pytest.approx(1.0) and hm.z[0][1] is None and hm.customdata[1][1] == 20.0
    bars = charts.baseline_bars(9.0, 8.0, 4.0).data[0]
    assert list(bars.y) == [9.0, 8.0, 4.0] and list(bars.text) == ["9.00 ms", "8.00 ms", "4.00 ms"]
    cm = charts.core_map([0, 0, None], [{"threads": 2, "batch": 4}])
    assert [sh.fillcolor for sh in cm.layout.shapes] == [charts.PALETTE[0], charts.PALETTE[0], charts.IDLE]
    cdf = charts.latency_cdf({"a": [1.0, 2.0, 3.0, 4.0]}).data[0]
    assert list(cdf.y) == [0.25, 0.5, 0.75, 1.0]
    g = charts.gantt([{"lane": "i0", "start": 1.0, "end": 3.0, "group": "e0"}], [{"t": 2.0, "label": "r"}])
    assert list(g.data[0].base) == [1.0] and list(g.data[0].x) == [2.0]
    assert g.layout.shapes[0].x0 == 2.0
    sd = charts.sequence_diagram(["a", "b"], [{"src": "a", "dst": "b", "label": "start"}])
    assert sd.layout.annotations[0].ax == 0 and sd.layout.annotations[0].x == 1
    hc = charts.history_chart([{"index": 0, "client": 1, "call": 0, "ret": 5, "label": "w", "order": 1, "role": "linearized"},
                               {"index": 1, "client": 2, "call": 2, "ret": 6, "label": "r", "order": None, "role": "blocked"}])
    assert [d.name for d in hc.data] == ["linearized", "blocked"] and hc.data[0].text[0] == "[1] w"
    pvm = charts.predicted_vs_measured([{"label": "p", "predicted_ms": 2.0, "measured_ms": 3.0}])
    assert list(pvm.data[1].x) == [2.0] and list(pvm.data[1].y) == [3.0]
    assert math.isclose(pvm.data[0].x[1], 4.5) and pvm.layout.xaxis.type == "log"


def test_packrat_ui_runs_streamlit_headless_on_loopback(capsys, monkeypatch):
    from ui.cli import ui as cmd_ui
    from ui.cli.app import main

    cmd = cmd_ui.streamlit_command(8600)
    assert cmd[1:5] == ["-m", "streamlit", "run", str(cmd_ui.APP)]
    assert cmd_ui.APP.name == "app.py" and cmd_ui.APP.is_file()
    joined = " ".join(cmd)
    assert "--server.headless true" in joined and "--server.address 127.0.0.1" in joined
    assert "--server.port 8600" in joined
    seen = []
    monkeypatch.setattr(cmd_ui, "exec_streamlit", lambda c: seen.append(c))
    port = cmd_ui.free_port()
    assert main(["ui", "--port", str(port)]) == 0
    out = capsys.readouterr().out
    assert f"http://127.0.0.1:{port}" in out and seen[0][seen[0].index("--server.port") + 1] == str(port)
    assert main(["ui", "--port", "0"]) == 2
