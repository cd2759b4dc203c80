"""Two `profile --out same.json` at once (issue 29, item 2): the second is refused at once,
naming the first's pid, instead of both keeping only their own cells."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from real_runner.profiling import ProfilingError, measure_profile

REPO = Path(__file__).resolve().parents[2]
HOLD = """
import sys, time
from packrat_sim.files import output_lock
with output_lock(sys.argv[1], "--out"):
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def measuring(tmp_path):
    """The path another process is measuring into (it holds the file's writer lock)."""
    out = tmp_path / "same.json"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], cwd=REPO, stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield out, holder.pid
    finally:
        holder.kill()
        holder.wait()


def test_a_second_measurement_into_the_same_file_is_refused_before_any_worker(measuring):
    out, pid = measuring
    with pytest.raises(ProfilingError, match=f"pid {pid}"):
        measure_profile("tiny-mlp", [1], [1], 1, warmup=0, out=str(out), interference=False)
    assert not out.exists()


def test_the_cli_refuses_it_in_one_line_and_an_export_onto_it_too(cli, measuring):
    out, pid = measuring
    for argv in (["--model", "tiny-mlp", "--threads", "1", "--batches", "1"], ["--from", "builtin:cnn-4"]):
        code, stdout, err = cli("profile", *argv, "--out", str(out))
        assert code == 2 and stdout == "" and f"pid {pid}" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
