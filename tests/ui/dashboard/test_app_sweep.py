"""Sweep page (AppTest): a small grid on the local engine; chart, table and downloads match the library."""

from __future__ import annotations

import pytest

from packrat_sim import sweep as sw
from packrat_sim.engines import SerialEngine

pytestmark = pytest.mark.slow

AXES = ["profile=builtin:cnn-4", "cores=4", "workload=poisson:rate=100..200/100,duration=1s,max_batch=8",
        "policy=packrat,fat", "seed=0"]


@pytest.fixture
def sweep_page(open_page, h):
    return h.small_sweep(open_page("sweep")).run()


def test_the_page_counts_the_runs_of_the_grid_and_shows_the_equivalent_command(sweep_page, h):
    h.no_errors(sweep_page)
    text = h.texts(sweep_page)
    assert "4 runs" in text and "packrat sweep --axis profile=builtin:cnn-4 --axis cores=4" in text


def test_running_the_sweep_shows_the_capacity_chart_and_the_same_rows_as_the_library(sweep_page, h, tmp_path):
    at = sweep_page
    at.button(key="sweep.run").click().run()
    h.no_errors(at)
    expected = sw.run_sweep(sw.load_grid(None, AXES), str(tmp_path), SerialEngine())
    table = h.frame(at, "p99_ms")
    assert list(table["run_id"]) == [r["run_id"] for r in expected.rows]
    assert list(table["p99_ms"]) == pytest.approx([r["p99_ms"] for r in expected.rows])
    fig = h.chart(at, "sweep.capacity.0")
    names = [t["name"] for t in fig["data"]]
    assert names == ["fat p99", "fat p50", "packrat p99", "packrat p50"]
    assert fig["data"][0]["x"] == [100.0, 200.0]
    assert h.metrics(at)["Runs"] == "4"
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Download the table (CSV)", "Download the report (HTML)"]


def test_a_bad_grid_shows_one_error_naming_the_value(sweep_page, h):
    at = sweep_page
    at.text_input(key="sweep.cores").set_value("four").run()
    assert not at.exception
    assert [e.value for e in at.error] == ["axis 'cores': 'four' is not an integer"]
