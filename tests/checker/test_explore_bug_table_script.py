"""The bug-finding table (``benchmarks/explore.py --bug-table``) runs from a fresh checkout at
its smallest size: a row per strategy, a column per buggy (then correct) variant, known bugs found."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from checker.explore import SAMPLING_STRATEGIES, STRATEGIES
from checker.protocols import PROTOCOLS

ROOT = Path(__file__).resolve().parents[2]


def _matrix(lines: list[str], title: str) -> dict[str, dict[str, str]]:
    """The markdown matrix under ``title``: strategy -> column -> cell."""
    start = lines.index(title) + 2
    head = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(head[1:], cells[1:]))
    return rows


def test_the_quick_bug_table_has_every_strategy_on_every_variant_and_finds_the_known_bugs():
    done = subprocess.run([sys.executable, "benchmarks/explore.py", "--bug-table", "--quick"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    bugs = _matrix(lines, "### Schedules (seconds) to the first violation")
    proofs = _matrix(lines, "### Schedules (seconds) to a complete proof")
    larger = _matrix(lines, "### Schedules (seconds) to the first violation, larger (reconfig clients=2 instances=2; "
                            "register readers=2)")
    buggy = [f"{s.name}/{v}" for s in PROTOCOLS.values() for v in s.buggy_variants]
    correct = [f"{s.name}/{v}" for s in PROTOCOLS.values() for v in s.correct_variants]
    assert list(bugs) == [*STRATEGIES, "bita pcr", "bita pbr"]
    assert list(proofs) == [s for s in STRATEGIES if s not in SAMPLING_STRATEGIES]
    assert all(list(row) == buggy for row in bugs.values())
    assert list(larger) == list(bugs) and all(
        list(row) == [c for c in buggy if c != "register/ds2-erroneous"] for row in larger.values())
    assert all(list(row) == correct for row in proofs.values())
    # dpor finds ack-before-switch in a handful of schedules; every bita seed finds it too
    assert bugs["dpor"]["reconfig/ack-before-switch"].split()[0].isdigit()
    assert bugs["bita"]["reconfig/ack-before-switch"].endswith(" 2/2")
    assert proofs["dpor"]["reconfig/correct"].split()[0] == "8"
    assert any(line.startswith("- reconfig: find bugs: ") for line in lines)
