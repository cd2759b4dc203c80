"""A full disk for the writer tests: writes of files under one directory fail with ENOSPC.

No small file system can be mounted in a test, so the disk is "full" where the toolkit's
writers meet the OS: every file that ``packrat_sim.files`` stages there fails at its
``fsync`` (after ``after`` successful ones), and every append through
``packrat_sim.files.open_regular`` fails at its first write. Only paths under ``root`` are
affected (read from ``/proc/self/fd``), so the rest of the process writes as usual.
"""

from __future__ import annotations

import errno
import os


def _full() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class _FullFile:
    """A text file whose writes fail with ENOSPC (reads, fileno, close pass through)."""

    def __init__(self, fh) -> None:
        self._fh = fh

    def write(self, text: str) -> int:
        raise _full()

    def __getattr__(self, name: str):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._fh.close()


def fill_disk(monkeypatch, root, *, after: int = 0) -> None:
    """From now on (until ``monkeypatch`` undoes it), writes of files under ``root`` fail with
    ENOSPC: staged files after ``after`` successful ones, appends at once."""
    from packrat_sim import files

    root = os.path.realpath(root)
    real_fsync = os.fsync
    real_open = files.open_regular
    done = [0]

    def under(fd: int) -> bool:
        try:
            return os.path.realpath(os.readlink(f"/proc/self/fd/{fd}")).startswith(root + os.sep)
        except OSError:
            return False

    def fsync(fd: int) -> None:
        if under(fd):
            done[0] += 1
            if done[0] > after:
                raise _full()
        real_fsync(fd)

    def open_regular(path, mode="r", what="file"):
        fh = real_open(path, mode, what)
        if mode == "a" and fh is not None and under(fh.fileno()):
            return _FullFile(fh)
        return fh

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(files, "open_regular", open_regular)
