"""benchmarks/soak.py, short (issue 29, item 15): a stepping load served while workers are
killed loses nothing, answers nothing twice, leaves a linearizable history, and the workers'
memory stays flat after their warm-up."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from rr_helpers import needs_two_cpus

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import soak  # noqa: E402


def test_a_step_load_alternates_batches_of_2_and_8_for_the_whole_duration():
    assert soak.step_load(50, 20) == "2:20s,8:20s,2:10s"


def test_rss_growth_is_judged_after_each_process_own_warm_up():
    samples = [(t, 1, "server", 100 + t) for t in range(0, 10)] + [(t, 2, "worker", 50) for t in (5, 6, 7, 8, 9)]
    growth = {g["pid"]: g for g in soak.rss_growth(samples, warmup_s=2)}
    assert growth[1]["min_kb"] == 102 and growth[1]["max_kb"] == 109 and set(growth) == {1, 2}
    assert soak.rss_growth(samples, warmup_s=4) and 2 not in {g["pid"] for g in soak.rss_growth(samples, 4)}


@pytest.mark.slow
@needs_two_cpus
def test_thirty_seconds_of_stepping_load_with_a_kill_every_ten_seconds_lose_nothing(capsys):
    code = soak.main(["--minutes", "0.5", "--step-s", "6", "--kill-every-s", "10", "--sample-s", "1",
                      "--warmup-s", "4", "--profile", "builtin:cnn-2", "--model", "tiny-cnn", "--cores", "2",
                      "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out["failures"]
    assert out["kills"] >= 2 and out["requests_lost"] == 0 and out["answered_twice"] == 0 and out["verdict"] == "ok"
    assert any(g["role"] == "worker" for g in out["rss"])
