"""`packrat run --load`: serving a changing load, reconfiguring online, writing and checking the history."""

from __future__ import annotations

import json

import pytest

from checker import check, read_history
from checker.linearizability import Verdict
from tests.real_runner.rr_helpers import needs_two_cpus


@needs_two_cpus
def test_run_load_serves_the_schedule_writes_a_legal_history_and_prints_one_json_object(cli, tmp_path):
    hist = tmp_path / "run.history.json"
    code, out, err = cli("run", "--model", "tiny-mlp", "--load", "closed:2@2s", "--cores", "2",
                     "--profile", "builtin:cnn-2", "--warmup", "1", "--history", str(hist), "--check", "--json")
    assert code == 0, err
    rep = json.loads(out)
    assert rep["load_kind"] == "closed" and rep["cores"] == 2
    assert rep["batches_sent"] == rep["batches_answered"] > 0
    assert rep["requests_sent"] == rep["requests_answered"] == 2 * rep["batches_sent"]
    assert rep["check"]["verdict"] == "ok"
    assert isinstance(rep["reconfigurations"], list)
    assert [w["kind"] for w in rep["switches"]] == [r["kind"] for r in rep["reconfigurations"] if r["ok"]]
    assert all({"kind", "priced_ms", "priced_pause_ms", "measured_ms"} <= set(w) for w in rep["switches"])
    assert rep["request_latency_ms"]["n"] == rep["requests_answered"]  # percentiles even with no switch
    assert rep["conditions"]["seconds"] > 0 and (rep["conditions"]["note"] is not None) == rep["conditions"]["busy"]
    assert set(rep["switch_prices_ms"]) == {"re-route", "retarget", "learned_from"}
    assert check(read_history(hist), "serving").result is Verdict.OK
    assert rep["history_operations"] == len(read_history(hist))


@pytest.mark.parametrize("argv, message", [
    (["--load", "closed:0@2s"], "batch size"),
    (["--load", "closed:8@2s", "--batch", "8"], "--load picks"),
    (["--batch", "4", "--plan", "auto", "--check"], "apply to --load"),
    (["--plan", "auto"], "missing option --batch"),
    (["--batch", "4"], "missing option --plan"),
    (["--load", "closed:8@2s", "--cores", "999"], "--cores 999"),
    (["--load", "closed:8@2s", "--policy", "greedy"], "unknown policy 'greedy'"),
    (["--load", "closed:8@2s", "--policy", "packrat:window_ms=0"], "window_ms must be > 0"),
    (["--load", "closed:8@2s", "--policy", "fat"], "needs an adaptive policy"),
    (["--batch", "4", "--plan", "auto", "--policy", "packrat-ewma"], "--policy applies to --load"),
])
def test_run_load_rejects_bad_input_with_exit_2_and_one_line(cli, argv, message):
    code, out, err = cli("run", "--model", "tiny-mlp", *argv)
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


@needs_two_cpus
@pytest.mark.slow
def test_run_load_replays_a_trace_with_a_1e300_ms_gap_without_waiting_for_it(cli, tmp_path):
    trace = tmp_path / "gap.csv"
    trace.write_text("0\n0\n1\n1e300\n1e300\n")
    code, out, err = cli("run", "--model", "tiny-mlp", "--load", f"trace:{trace},unit=ms", "--cores", "2",
                         "--profile", "builtin:cnn-2", "--warmup", "1", "--json")
    assert code == 0, err
    rep = json.loads(out)
    assert rep["requests_answered"] == 5 and rep["policy"] == "packrat"
    assert rep["idle_skipped_s"] == pytest.approx(1e297, rel=1e-6)


def _report(**extra):
    """A load report as `run --load --json` prints it, with one retarget."""
    switch = {"kind": "retarget", "priced_ms": 24.0, "priced_pause_ms": 3.0, "measured_ms": 4.2, "first_batch_ms": 8.1, "at_s": 15.3,
              "from_plan": "2 x 1t x 1", "to_plan": "1 x 2t x 8", "p99_ratio": 1.2,
              "latency_window": {"p99_ms": 9.6}, "latency_steady": {"p99_ms": 8.0}}
    return {"model": "tiny-cnn", "cores": 2, "load": "closed:2@15s,8@15s", "load_kind": "closed", "policy": "packrat",
            "batches_sent": 10, "batches_answered": 10, "batches_failed": 0, "requests_sent": 50,
            "requests_answered": 50, "reconfigurations": [], "switches": [switch],
            "request_latency_ms": {"n": 50, "median_ms": 7.5, "p90_ms": 8.5, "p99_ms": 9.5, "max_ms": 10.0}, **extra}


def test_the_load_text_prints_request_percentiles_and_each_switch_with_its_kind_price_and_measured_cost(capsys):
    from ui.cli.run import _print_load_report

    _print_load_report(_report())
    out = capsys.readouterr().out
    assert "requests latency p50 7.5 ms, p90 8.5 ms, p99 9.5 ms, max 10.0 ms  (n=50)" in out
    assert "switch   at 15.3s retarget: 2 x 1t x 1 -> 1 x 2t x 8: priced 24.0 ms (its pause 3.0 ms), measured 4.2 ms" in out
    assert "window p99 9.6 ms vs steady 8.0 ms (1.20x)" in out
    _print_load_report(_report(switches=[], request_latency_ms=None))
    out = capsys.readouterr().out
    assert "requests latency -" in out and "switch " not in out
