"""Helpers of the hostile-input tests: run `packrat` in a child process under a memory cap
and a time limit, and assert the CLI contract for bad input (exit 2, one line, no traceback).

A runaway allocation then fails the test (MemoryError / killed child) instead of the
machine: the child runs with ``RLIMIT_AS`` set in ``preexec_fn``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Address-space cap of a child `packrat` (MiB): room for numpy + torch + z3, far below a runaway.
DEFAULT_MEMORY_MB = 3072
DEFAULT_TIMEOUT_S = 120


@dataclass(frozen=True)
class Outcome:
    """What a `packrat` child did: exit code (negative: killed by that signal), output, seconds."""

    code: int
    stdout: str
    stderr: str
    elapsed_s: float


def _limit_memory(mb: int):
    def apply() -> None:
        import resource

        cap = int(mb) * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    return apply


def run_limited(argv: list[str], *, memory_mb: int = DEFAULT_MEMORY_MB, timeout_s: float = DEFAULT_TIMEOUT_S,
                env: dict | None = None, cwd: str | os.PathLike | None = None, stdin: str | None = None) -> Outcome:
    """Run ``argv`` (a full command line) with an address-space cap of ``memory_mb`` MiB and a
    wall-clock limit (``subprocess.TimeoutExpired`` past it). ``env`` entries are added to
    the current environment (value None removes a variable)."""
    full_env = dict(os.environ)
    full_env.setdefault("PYTHONPATH", str(ROOT))
    for k, v in (env or {}).items():
        if v is None:
            full_env.pop(k, None)
        else:
            full_env[k] = v
    t0 = time.monotonic()
    proc = subprocess.run(argv, cwd=cwd or ROOT, env=full_env, capture_output=True, text=True, input=stdin,
                          timeout=timeout_s, preexec_fn=_limit_memory(memory_mb))
    return Outcome(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - t0)


def run_packrat(*args: str, **kwargs) -> Outcome:
    """``packrat ARGS...`` in a child under :func:`run_limited`'s caps."""
    return run_limited([sys.executable, "-m", "ui.cli.app", *map(str, args)], **kwargs)


def assert_bad_input(outcome: Outcome, *fragments: str) -> str:
    """Assert the bad-input contract: exit 2, stderr exactly one ``packrat: error:`` line
    containing every fragment, no traceback, nothing on stdout. Returns the line."""
    lines = [ln for ln in outcome.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in outcome.stderr, outcome.stderr[-3000:]
    assert outcome.code == 2, f"exit {outcome.code}: {outcome.stderr[-2000:]}"
    assert len(lines) == 1 and lines[0].startswith("packrat: error: "), lines
    assert outcome.stdout.strip() == "", outcome.stdout[-2000:]
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])
    return lines[0]


def char_device(tmp_path) -> str:
    """A character device path to aim a writer at, safe even if the writer is broken: as root
    (who could replace /dev/null), a private node (same major/minor as /dev/null) under
    ``tmp_path``; otherwise /dev/null itself, whose directory a non-root user cannot write."""
    if os.geteuid() == 0:
        import stat as _stat

        path = os.path.join(str(tmp_path), "null-device")
        os.mknod(path, _stat.S_IFCHR | 0o666, os.makedev(1, 3))
        return path
    return "/dev/null"
