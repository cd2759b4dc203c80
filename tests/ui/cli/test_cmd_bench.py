"""`packrat bench` writes report.json, report.md and a self-contained report.html."""

from __future__ import annotations

import json
import os

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


@needs_two_cpus
def test_a_full_disk_keeps_the_measurements_printed_and_leaves_no_partial_report_set(cli, tmp_path, monkeypatch):
    from tests.disk_full_helpers import fill_disk

    out = tmp_path / "r"
    out.mkdir()
    fill_disk(monkeypatch, out, after=2)  # the third report finds the disk full
    code, stdout, err = cli("bench", "--model", "tiny-mlp", "--batches", "1", "--iterations", "2",
                            "--cores", "2", "--profile", "builtin:cnn-2", "--out", str(out))
    assert code == 2 and "Traceback" not in err
    assert "batch    1: fat" in stdout and "wrote" not in stdout
    assert "the measurements above are kept, but the reports were not written" in err and "no space left" in err
    assert os.listdir(out) == []


@needs_two_cpus
def test_bench_records_the_conditions_it_measured_under(cli):
    code, out, err = cli("bench", "--model", "tiny-mlp", "--batches", "1", "--iterations", "2",
                         "--cores", "2", "--profile", "builtin:cnn-2", "--json")
    assert code == 0, err
    conditions = json.loads(out)["conditions"]
    assert conditions["cpus"] >= 2 and conditions["seconds"] > 0 and set(conditions) >= {"loadavg_1m", "busy", "note"}
    if conditions["busy"]:
        assert "the machine was busy" in conditions["note"]
