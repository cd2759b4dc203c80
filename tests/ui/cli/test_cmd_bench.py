"""`packrat bench` writes report.json, report.md and a self-contained report.html."""

from __future__ import annotations

import json

import pytest

from tests.real_runner.rr_helpers import needs_two_cpus


@needs_two_cpus
def test_bench_prints_one_json_object_and_writes_three_reports(cli, tmp_path):
    code, out, err = cli("bench", "--model", "tiny-mlp", "--batches", "1", "--iterations", "2",
                     "--cores", "2", "--profile", "builtin:cnn-2", "--out", str(tmp_path / "r"), "--json")
    assert code == 0, err
    rep = json.loads(out)
    assert rep["batches"][0]["batch"] == 1 and rep["profile"]["synthetic"] is True
    assert json.loads((tmp_path / "r" / "report.json").read_text())["model"] == "tiny-mlp"
    assert "| batch |" in (tmp_path / "r" / "report.md").read_text()
    html = (tmp_path / "r" / "report.html").read_text()
    assert "plotly" in html.lower() and "<script" in html and "<script src=" not in html


@pytest.mark.parametrize("argv, message", [
    (["--model", "resnet51", "--batches", "1"], "resnet51"),
    (["--model", "tiny-mlp", "--batches", "x"], "--batches"),
    (["--model", "tiny-mlp", "--batches", "1", "--iterations", "0"], "--iterations"),
])
def test_bench_rejects_bad_input_with_exit_2_and_one_line(cli, argv, message):
    code, out, err = cli("bench", *argv)
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1
