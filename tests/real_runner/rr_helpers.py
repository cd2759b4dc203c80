"""Shared helpers of the real-runner tests: real torch, real worker processes, no mocks."""

from __future__ import annotations

import os

import pytest

ALLOWED = sorted(os.sched_getaffinity(0))

needs_two_cpus = pytest.mark.skipif(len(ALLOWED) < 2, reason="needs at least 2 allowed CPUs")


def is_gone(pid: int) -> bool:
    """True when the process no longer runs (absent, or a zombie awaiting its reaper)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("State:"):
                    return line.split()[1] in ("Z", "X")
    except FileNotFoundError:
        return True
    return False


def cpus_allowed(pid: int) -> set[int]:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("Cpus_allowed_list:"):
                out = set()
                for part in line.split(":", 1)[1].strip().split(","):
                    lo, _, hi = part.partition("-")
                    out.update(range(int(lo), int(hi or lo) + 1))
                return out
    raise AssertionError(f"no Cpus_allowed_list for {pid}")


def runs_with_imports_blocked(blocked: tuple[str, ...], body: str) -> tuple[bool, str]:
    """Run ``body`` (Python source, dedented) in a fresh interpreter from the repository root,
    where importing any of the top-level packages ``blocked`` raises ImportError. Returns
    (it printed exactly ``ok`` and exited 0, its stderr)."""
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    guard = textwrap.dedent(f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in {blocked!r}:
                    raise ImportError('blocked ' + name)
        sys.meta_path.insert(0, Block())
    """)
    proc = subprocess.run([sys.executable, "-c", guard + textwrap.dedent(body)], cwd=root, capture_output=True,
                          text=True, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}, timeout=120)
    return proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
