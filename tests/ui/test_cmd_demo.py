"""`packrat demo`: the whole pipeline, end to end, on this machine."""

from __future__ import annotations

import pytest

from ui.cli import main


@pytest.mark.slow
def test_the_demo_runs_every_step_and_reports_each_one_ok(capsys):
    code = main(["demo"])
    out = capsys.readouterr().out
    assert code == 0, out
    for section in ("== plan:", "== certify:", "== simulate:", "== check:", "== real run:", "== reconfigure online:"):
        assert section in out
    assert "OPTIMAL" in out and "linearizable" in out and "measured speedup over fat" in out
    summary = next(line for line in out.splitlines() if line.startswith("summary"))
    assert summary.count(": ok") == summary.count(":")
