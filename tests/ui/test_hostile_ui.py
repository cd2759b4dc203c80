"""`packrat ui` under hostile signals: killing the pid the user started frees the port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _session_members(sid: int) -> list[int]:
    """Pids whose session id is ``sid`` (Linux /proc)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:  # state, ppid, pgrp, session
            pids.append(int(entry))
    return pids


def _listening(port: int) -> bool:
    """True when something accepts connections on 127.0.0.1:port (TIME_WAIT leftovers of
    closed connections do not count: a new server could bind with SO_REUSEADDR)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait_healthy(proc: subprocess.Popen, url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"packrat ui exited with {proc.returncode}: {proc.stdout.read()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"the dashboard did not answer on {url}")


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killing_packrat_ui_frees_the_port_and_leaves_no_child(sig):
    pytest.importorskip("streamlit")
    pytest.importorskip("plotly")
    from ui.cmd_ui import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ui.cli", "ui", "--port", str(port)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        _wait_healthy(proc, f"http://127.0.0.1:{port}")
        os.kill(proc.pid, sig)  # the pid the user started, not its process group
        proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while _listening(port) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _listening(port), f"something still listens on port {port} after {sig.name} to packrat ui"
        assert _session_members(proc.pid) == [], "a child of packrat ui outlived it"
    finally:
        for pid in _session_members(proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
