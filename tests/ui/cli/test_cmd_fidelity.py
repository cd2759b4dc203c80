"""`packrat fidelity --profile P --measured FILE`: measured vs predicted (isolated and calibrated)
per run, a summary, one JSON object with --json, a log-log page with --html; bad input exits 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


FIXTURES = Path(__file__).parents[2] / "packrat_sim" / "fixtures"
SINGLE = str(FIXTURES / "packrat_corun_single_4core.csv")
CORUN = str(FIXTURES / "packrat_corun_k_x_1t_4core.csv")


@pytest.fixture
def calibrated(cli, tmp_path) -> str:
    """A profile imported from the fixture with its co-run model fitted on the fixture's runs."""
    path = str(tmp_path / "p.json")
    code, _, err = cli("profile", "--import-packrat", SINGLE, "--corun", CORUN,
                       "--series", "topology=sequential", "--out", path)
    assert code == 0, err
    return path


def test_fidelity_prints_each_run_isolated_and_calibrated_and_a_summary(cli, calibrated):
    code, out, err = cli("fidelity", "--profile", calibrated, "--measured", CORUN)
    assert code == 0, err
    lines = out.splitlines()
    row = next(x for x in lines if x.startswith("2 x 1t x 4 "))
    assert row.split()[5:10] == ["44.100", "42.000", "-4.8", "44.100", "+0.0"]  # (42 - 44.1) / 44.1 = -4.8%
    assert any("4 x 1t x 8" in x and "2 of 4 rows present" in x for x in lines)
    assert lines[-1].startswith("summary   isolated median |error| 9.1% (max 13.8%), 5 of 5 optimistic; calibrated")


def test_fidelity_json_is_one_object_with_rows_and_both_summaries(cli, calibrated):
    code, out, err = cli("fidelity", "--profile", calibrated, "--measured", CORUN, "--json")
    assert code == 0 and err == ""
    report = json.loads(out)
    assert len(report["rows"]) == 5 and report["unpriced"] == [] and report["co_run_model"] is True
    assert report["isolated"]["optimistic"] == 5 and report["calibrated"]["median_abs_error_pct"] < 1.0
    first = report["rows"][0]
    assert first["isolated_error_pct"] == pytest.approx(100 * (42.0 - 44.1) / 44.1)


def test_fidelity_html_plots_predicted_against_measured_on_log_axes(cli, calibrated, tmp_path):
    page = tmp_path / "f.html"
    code, out, err = cli("fidelity", "--profile", calibrated, "--measured", CORUN, "--html", str(page))
    assert code == 0, err
    assert f"wrote {page}" in out
    html = page.read_text()
    assert '"type":"log"' in html and "isolated prediction" in html and "calibrated prediction" in html
    assert "1:1 (predicted = measured)" in html


def test_runs_the_profile_cannot_price_are_listed(cli, tmp_path):
    small = tmp_path / "small.json"
    code, _, _ = cli("profile", "--import-packrat", SINGLE, "--series", "topology=sequential", "--out", str(small))
    assert code == 0
    measured = tmp_path / "m.csv"
    lines = open(CORUN).read().splitlines()
    measured.write_text("\n".join(lines + [lines[-1].replace(",4,16,", ",4,64,")]) + "\n")
    code, out, err = cli("fidelity", "--profile", str(small), "--measured", str(measured))
    assert code == 0, err
    assert "unpriced  1 x 4t x 64 (m.csv line 30): the profile lacks cell(s) 4t x 64" in out
    assert "no co-run model" in out


def test_fidelity_reads_a_bench_report_directory(cli, calibrated, tmp_path):
    report = {"schema": "packrat.bench/1", "model": "cnn_script", "cores": 4, "batches": [
        {"batch": 8, "plans": [{"groups": [[2, 1, 4]], "median_ms": 44.1}]}]}
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "report.json").write_text(json.dumps(report))
    code, out, err = cli("fidelity", "--profile", calibrated, "--measured", str(tmp_path / "bench"), "--json")
    assert code == 0, err
    (row,) = json.loads(out)["rows"]
    assert row["plan"] == "2 x 1t x 4" and row["calibrated_error_pct"] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("args, fragment", [
    (["--model", "tiny-mlp", "--profile", "P", "--measured", "M"], "give one of them, not both"),
    (["--measured", "M"], "--measured needs --profile"),
    ([], "give --model NAME"),
    (["--profile", "builtin:cnn-16", "--measured", "/nonexistent.csv"], "does not exist"),
    (["--model", "tiny-mlp", "--html", "x.html"], "--series and --html only apply to --measured"),
])
def test_fidelity_bad_input_exits_2_with_one_line(cli, args, fragment):
    code, out, err = cli("fidelity", *args)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and fragment in err


def test_measured_runs_of_another_series_exit_2_naming_both(cli, tmp_path):
    inter = tmp_path / "inter.json"
    code, _, _ = cli("profile", "--import-packrat", SINGLE, "--series", "topology=interleave", "--out", str(inter))
    assert code == 0
    lines = open(CORUN).read().splitlines()
    seq = tmp_path / "seq.csv"
    seq.write_text("\n".join([x for x in lines if ",interleave," not in x]) + "\n")
    code, _, err = cli("fidelity", "--profile", str(inter), "--measured", str(seq))
    assert code == 2 and "topology=sequential" in err and "topology=interleave" in err and "does not match" in err
