"""benchmarks/soak.py, short (issue 29, item 15): a stepping load served while workers are
killed loses nothing, answers nothing twice, leaves a linearizable history, and the memory of
every process, the serving one included, stays flat after its warm-up."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from rr_helpers import needs_two_cpus

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import soak  # noqa: E402


def test_a_step_load_alternates_batches_of_2_and_8_for_the_whole_duration():
    assert soak.step_load(50, 20) == "closed:2@20s,8@20s,2@10s"


def test_rss_growth_is_judged_after_each_process_own_warm_up():
    samples = [(t, 1, "server", 100 + t) for t in range(0, 10)] + [(t, 2, "worker", 50) for t in (5, 6, 7, 8, 9)]
    growth = {g["pid"]: g for g in soak.rss_growth(samples, warmup_s=2)}
    assert growth[1]["min_kb"] == 102 and growth[1]["max_kb"] == 109 and set(growth) == {1, 2}
    assert soak.rss_growth(samples, warmup_s=4) and 2 not in {g["pid"] for g in soak.rss_growth(samples, 4)}


def test_every_process_is_judged_and_the_serving_one_must_have_samples_after_its_warm_up():
    flat = {"pid": 1, "role": "server", "ratio": 1.05}
    assert soak.rss_failures([flat, {"pid": 2, "role": "worker", "ratio": 1.0}], 1.10) == []
    assert soak.rss_failures([{**flat, "ratio": 1.2}], 1.10) == ["server 1 RSS grew 1.20x after its warm-up"]
    assert soak.rss_failures([{"pid": 2, "role": "worker", "ratio": 1.0}], 1.10) == [
        "the serving process has no RSS sample after its warm-up"]


@pytest.mark.slow
@needs_two_cpus
def test_a_minute_of_stepping_load_with_a_kill_every_fifteen_seconds_loses_nothing_and_stays_flat(capsys):
    code = soak.main(["--minutes", "1", "--step-s", "10", "--kill-every-s", "15", "--sample-s", "1",
                      "--warmup-s", "15", "--profile", "builtin:cnn-2", "--model", "tiny-cnn", "--cores", "2",
                      "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out["failures"]
    assert out["kills"] >= 3 and out["requests_lost"] == 0 and out["answered_twice"] == 0 and out["verdict"] == "ok"
    assert any(g["role"] == "worker" for g in out["rss"])
    (server,) = [g for g in out["rss"] if g["role"] == "server"]
    assert server["ratio"] <= 1.10 and server["to_s"] - server["from_s"] >= 30  # judged over the last 45 s
