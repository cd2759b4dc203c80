"""`packrat ui` under hostile signals: killing the pid the user started frees the port."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest


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


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killing_packrat_ui_frees_the_port_and_leaves_no_child(sig, ui_server):
    pytest.importorskip("streamlit")
    pytest.importorskip("plotly")
    from ui.cli.ui import free_port

    port = free_port()
    proc = ui_server.start(port)
    try:
        ui_server.wait_healthy(proc, f"http://127.0.0.1:{port}", 120, proc.stdout.read)
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
