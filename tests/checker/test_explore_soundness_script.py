"""The soundness sweep script (``benchmarks/explore_soundness.py``) runs from a fresh checkout
and reports how many random systems it compared."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_soundness_sweep_compares_the_systems_it_was_asked_for_and_exits_zero_when_all_agree():
    done = subprocess.run([sys.executable, "benchmarks/explore_soundness.py", "--systems", "3", "--seed", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "done: 3 systems compared (seed 1), 0 with a mismatch" in done.stdout
