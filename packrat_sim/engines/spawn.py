"""The one process spawner: every toolkit worker process starts here, under one parent-death rule.

Two ways to start a worker, one rule for both:

* :func:`spawn_worker`: a fresh ``python`` interpreter running ``module:function`` (the checker's
  partition workers, ``packrat check``'s file workers). Each worker is started with
  :mod:`subprocess` (no ``fork`` of a process that may hold threads, such as the dashboard),
  talks to its parent over two pipes with :class:`multiprocessing.connection.Connection`, runs
  in its own session (a Ctrl-C reaches only the parent, which stops its workers) and ignores
  SIGINT. ``multiprocessing``'s own ``spawn`` method is not used there because it re-runs the
  caller's ``__main__`` module in every worker (the ``packrat`` script's imports, or a user's
  script without a ``__main__`` guard, which then fails).
* :func:`process_context` + :func:`start_process`: a :mod:`multiprocessing` process (the local
  engine's pool, forked from a forkserver that preloaded its imports, so a worker is ready in
  milliseconds; the dashboard's job children, started with ``spawn``).

The parent-death rule: a worker whose parent is gone ends at once and quietly (``os._exit``,
never a traceback on the terminal they share). :func:`watch_parent` enforces it from a daemon
thread (every worker started here runs one); :class:`ParentGone` lets a long computation notice
it cooperatively and stop with its evidence first.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection, wait
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any

from packrat_sim import validate

__all__ = [
    "PARENT_POLL_S",
    "ParentGone",
    "process_context",
    "spawn_worker",
    "start_process",
    "stop_workers",
    "watch_parent",
]

#: Seconds between two checks of :func:`watch_parent` (a worker outlives its parent by at most this).
PARENT_POLL_S = 0.5


class ParentGone:
    """``is_set()`` is true once the process that started this worker has exited.

    ``ParentGone(parent_pid)``: this process's parent is no longer ``parent_pid`` (a worker of
    :func:`spawn_worker` is a direct child). :meth:`of_multiprocessing_parent`: the process that
    created this :mod:`multiprocessing` child is gone, read from the pipe that process holds open
    for it (a forkserver child's direct parent is the forkserver, which outlives it)."""

    def __init__(self, parent_pid: int, sentinel: int | None = None) -> None:
        self.parent_pid = parent_pid
        self.sentinel = sentinel

    @classmethod
    def of_multiprocessing_parent(cls) -> ParentGone:
        """The parent of this process as :mod:`multiprocessing` knows it; ValueError when this
        process was not started by :mod:`multiprocessing`."""
        parent = multiprocessing.parent_process()
        if parent is None or parent.pid is None:
            raise ValueError("this process was not started by multiprocessing: no parent to watch")
        return cls(parent.pid, parent.sentinel)

    def is_set(self) -> bool:
        if self.sentinel is not None:
            return bool(wait([self.sentinel], timeout=0))
        return os.getppid() != self.parent_pid


def watch_parent(parent_pid: int | None = None, interval_s: float = PARENT_POLL_S,
                 exit_code: int = 1) -> threading.Thread:
    """Start (and return) a daemon thread that ends this process with ``os._exit(exit_code)``,
    quietly, within ``interval_s`` seconds (> 0) of its parent exiting. ``parent_pid``: the pid
    of this process's parent (``ParentGone(parent_pid)``); None: this multiprocessing child's
    creator (:meth:`ParentGone.of_multiprocessing_parent`). The parent-death rule of every
    worker; call it in the worker."""
    interval_s = validate.positive_float(interval_s, "interval_s", error=ValueError, expected="a number of seconds > 0")
    gone = ParentGone(parent_pid) if parent_pid is not None else ParentGone.of_multiprocessing_parent()

    def watch() -> None:
        while True:
            time.sleep(interval_s)
            if gone.is_set():
                os._exit(exit_code)

    thread = threading.Thread(target=watch, daemon=True, name="packrat-parent-watch")
    thread.start()
    return thread


# ------------------------------------------------------------- fresh interpreters (subprocess)

# the worker's whole program; a parent that is gone (its pipes closed: Ctrl-C, a kill) ends
# it quietly, never with a traceback on the terminal they share (the pipes' EOF while it waits
# on them, watch_parent while it computes)
_BOOT = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    "from multiprocessing.connection import Connection\n"
    "r = Connection({r}, writable=False)\n"
    "try:\n"
    "    sys.path[:] = r.recv()\n"
    "    from packrat_sim.engines.spawn import watch_parent\n"
    "    watch_parent({parent})\n"
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
    messages, or None unless ``keep_open``). The worker ignores SIGINT and watches this process
    (:func:`watch_parent`); stop it with :func:`stop_workers`. ValueError naming a malformed
    ``target``."""
    if not _TARGET.match(target):
        raise ValueError(f"worker target must be 'module:function', not {target!r}")
    module, function = target.split(":")
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    boot = _BOOT.format(r=to_child_r, w=from_child_w, parent=os.getpid(), module=module, function=function)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", boot],
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


# ------------------------------------------------------------ multiprocessing processes


def process_context(start_method: str | None = None, preload: Sequence[str] = ()) -> BaseContext:
    """The :mod:`multiprocessing` context to start pool processes with.

    ``start_method=None``: forkserver (workers forked from a clean, single-threaded server that
    imported ``preload`` once) where the platform has it, else spawn. Never plain fork by
    default: the caller may be a multi-threaded program (the dashboard). A named method: that
    one, ValueError naming it when this platform does not have it."""
    methods = multiprocessing.get_all_start_methods()
    if start_method is None:
        if "forkserver" in methods:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(list(preload))
            return ctx
        return multiprocessing.get_context("spawn")
    if start_method not in methods:
        raise ValueError(f"start method {start_method!r} is not available here; choose one of {', '.join(methods)}")
    return multiprocessing.get_context(start_method)


@contextlib.contextmanager
def _main_without_fake_path() -> Iterator[None]:
    """While starting a worker, hide ``__main__.__file__`` when it names no file (``python -``
    reads ``<stdin>``; an embedded interpreter): multiprocessing would make the worker re-run
    that path and it would die before its first task. Workers never need the caller's main."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or path is None or getattr(main, "__spec__", None) is not None or os.path.isfile(path):
        yield
        return
    del main.__file__
    try:
        yield
    finally:
        main.__file__ = path


def start_process(ctx: BaseContext, target: Callable[..., object], args: tuple, *, name: str,
                  daemon: bool | None = None) -> BaseProcess:
    """Start ``target(*args)`` in a new process of context ``ctx`` (see :func:`process_context`)
    named ``name``, and return it. ``daemon=None`` inherits this process's flag, as
    :mod:`multiprocessing` does. ``target`` should begin with :func:`watch_parent` (the rule)."""
    process = ctx.Process(target=target, args=args, daemon=daemon, name=name)  # type: ignore[attr-defined]
    with _main_without_fake_path():
        process.start()
    return process
