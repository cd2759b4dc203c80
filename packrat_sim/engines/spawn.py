"""The one process spawner: a worker is a fresh ``python`` interpreter running ``module:function``.

Each worker is started with :mod:`subprocess` (no ``fork`` of a process that may hold threads,
such as the dashboard), talks to its parent over two pipes with
:class:`multiprocessing.connection.Connection`, runs in its own session (a Ctrl-C reaches only
the parent, which stops its workers) and ignores SIGINT. ``multiprocessing``'s own ``spawn``
method is not used because it re-runs the caller's ``__main__`` module in every worker (the
``packrat`` script's imports, or a user's script without a ``__main__`` guard, which then
fails). A worker whose parent is gone (its pipes closed) ends quietly, never with a traceback on
the terminal they share; :class:`ParentGone` lets a long computation in a worker notice that its
parent has exited.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

__all__ = ["ParentGone", "spawn_worker", "stop_workers"]


class ParentGone:
    """``is_set()`` is true once the process that started this worker has exited."""

    def __init__(self, parent_pid: int) -> None:
        self.parent_pid = parent_pid

    def is_set(self) -> bool:
        return os.getppid() != self.parent_pid


# the worker's whole program; a parent that is gone (its pipes closed: Ctrl-C, a kill) ends
# it quietly, never with a traceback on the terminal they share
_BOOT = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    "from multiprocessing.connection import Connection\n"
    "r = Connection({r}, writable=False)\n"
    "try:\n"
    "    sys.path[:] = r.recv()\n"
    "    from {module} import {function} as target\n"
    "    target(r, Connection({w}, readable=False))\n"
    "except (EOFError, BrokenPipeError, ConnectionResetError):\n"
    "    sys.exit(0)\n"
)
_TARGET = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*\Z")


def spawn_worker(target: str, args: Any, keep_open: bool = False
                 ) -> tuple[subprocess.Popen, Connection, Connection | None]:
    """Start a worker process running ``target`` (``"module:function"``, called as
    ``function(inbox, outbox)`` with two :class:`Connection` objects) in a fresh interpreter with
    this process's ``sys.path``, and send it ``args`` (the first thing ``inbox.recv()`` returns).

    Returns (process, the connection to read its messages from, the connection to send it more
    messages, or None unless ``keep_open``). The worker ignores SIGINT; stop it with
    :func:`stop_workers`."""
    if not _TARGET.match(target):
        raise ValueError(f"worker target must be 'module:function', not {target!r}")
    module, function = target.split(":")
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", _BOOT.format(r=to_child_r, w=from_child_w, module=module, function=function)],
            pass_fds=(to_child_r, from_child_w), stdin=subprocess.DEVNULL, close_fds=True,
            # Out of the terminal's process group: a Ctrl-C reaches only the parent, which stops
            # the workers (a SIGINT while a worker is still starting up would print a traceback).
            start_new_session=True,
        )
    except BaseException:
        for fd in (to_child_r, to_child_w, from_child_r, from_child_w):
            os.close(fd)
        raise
    os.close(to_child_r)
    os.close(from_child_w)
    reader = Connection(from_child_r, writable=False)
    out = Connection(to_child_w, readable=False)
    try:
        out.send(list(sys.path))
        out.send(args)
    except BaseException:
        stop_workers([proc])
        reader.close()
        out.close()
        raise
    if not keep_open:
        out.close()
        return proc, reader, None
    return proc, reader, out


def stop_workers(procs: Sequence[subprocess.Popen]) -> None:
    """Terminate the workers still running, then kill those that do not exit within 0.5 s."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(0.5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
