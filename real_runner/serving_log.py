"""What a serving runtime remembers of the batches it served, in memory that does not grow
with the length of the run (issue 29, item 15: every process's RSS flat in a long run).

* :class:`RowSpool`: an append-only log of rows (lists of JSON scalars: one answered batch
  each), spooled as JSON lines to an anonymous temporary file (created unlinked in the
  temporary directory, so it leaves nothing behind even when the process is killed; its
  space is freed when the spool is closed or collected). Memory: the write buffer only.
  Rows are read back, in the order they were appended, without stopping appends.
* :class:`RecentWindow`: the last ``keep`` items of an append-only sequence, indexed by their
  position in the whole sequence (``window[seen:]``: the items appended since ``seen``), so
  that a reader that polls it sees every item while memory stays bounded.
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
import threading
from collections import deque
from collections.abc import Iterator
from typing import Any

#: Bytes read at a time when a spool is read back.
READ_CHUNK = 1 << 20


class RowSpool:
    """Rows appended in order, kept in an unlinked temporary file (``directory``: where it is
    created; default :func:`tempfile.gettempdir`). ``append`` and ``rows`` may run in
    different threads; ``rows()`` yields the rows appended before it was called."""

    def __init__(self, directory: str | None = None) -> None:
        self._file = tempfile.TemporaryFile("w+b", prefix="packrat-history-", dir=directory)  # noqa: SIM115 - lives as long as the spool
        self._lock = threading.Lock()
        self._count = 0

    def __len__(self) -> int:
        """The number of rows appended."""
        return self._count

    def append(self, row: list[Any]) -> None:
        """Append one row (a list of JSON scalars: int, str, float, bool, None)."""
        line = json.dumps(row, separators=(",", ":"), allow_nan=False).encode("utf-8") + b"\n"
        with self._lock:
            self._file.write(line)
            self._count += 1

    def rows(self, limit: int | None = None) -> Iterator[list[Any]]:
        """The rows appended so far (the first ``limit`` of them when given), in order, read
        back from the file in chunks of ``READ_CHUNK`` bytes (appends may go on meanwhile)."""
        with self._lock:
            self._file.flush()
            end, fd, count = self._file.tell(), self._file.fileno(), self._count
        return _read_lines(fd, end, count if limit is None else min(limit, count))

    def close(self) -> None:
        """Remove the spool's file (its rows cannot be read afterwards)."""
        with self._lock:
            self._file.close()


def _read_lines(fd: int, end: int, wanted: int) -> Iterator[list[Any]]:
    """The first ``wanted`` JSON lines of the file ``fd`` up to byte ``end``, decoded,
    read with ``os.pread`` (the file's own position, where appends go, never moves)."""
    offset, rest, n = 0, b"", 0
    while offset < end and n < wanted:
        chunk = os.pread(fd, min(READ_CHUNK, end - offset), offset)
        if not chunk:
            break
        offset += len(chunk)
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            if n == wanted:
                return
            n += 1
            yield json.loads(line)


class RecentWindow:
    """The last ``keep`` items of a sequence that only grows: ``len(window)`` counts every
    item ever appended, ``window[seen:]`` lists those appended since position ``seen`` that
    are still kept (from the oldest kept one when ``seen`` is older). Thread-safe."""

    def __init__(self, keep: int) -> None:
        if keep < 1:
            raise ValueError(f"keep must be >= 1, not {keep!r}")
        self._items: deque = deque(maxlen=keep)
        self._total = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._total

    def append(self, item: Any) -> None:
        """Append ``item`` (the oldest kept item is dropped when ``keep`` are held)."""
        with self._lock:
            self._items.append(item)
            self._total += 1

    def __getitem__(self, index: slice) -> list:
        """``window[seen:]``: the kept items from position ``seen`` on (only that form)."""
        if not isinstance(index, slice) or index.stop is not None or index.step is not None:
            raise TypeError("a RecentWindow is read as window[seen:] only")
        seen = index.start or 0
        with self._lock:
            first = self._total - len(self._items)
            skip = max(0, seen - first)
            return list(itertools.islice(self._items, skip, None))

    @property
    def kept(self) -> int:
        """How many items are held now (at most ``keep``)."""
        return len(self._items)


__all__ = ["READ_CHUNK", "RecentWindow", "RowSpool"]
