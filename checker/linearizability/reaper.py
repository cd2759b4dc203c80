"""Freeing large search caches off the verdict's path, and the garbage collector during a check.

Freeing tens of millions of cache entries takes seconds, which would delay a verdict that is
already known. :func:`bury` hands such a cache to a background thread that frees it a little at a
time; :func:`collector_paused` keeps the cyclic garbage collector out of the search (it builds no
cycles, and a full collection over a large cache takes seconds as well).

While caches are buried, the objects a check allocated are left in the collector's permanent
generation (``gc.freeze``), so no collection, not even the one at interpreter exit, walks millions
of cache entries; the last cache freed unfreezes them.
"""

from __future__ import annotations

import contextlib
import gc
import queue
import threading
from collections.abc import Iterator

__all__ = ["BURY_OVER", "bury", "collector_paused"]

#: A search cache with more entries than this is freed by a background thread after the search
#: ends (freeing tens of millions of entries takes seconds, which would delay the verdict).
BURY_OVER = 50_000

_graveyard: queue.SimpleQueue[set | dict] = queue.SimpleQueue()
_reaper_lock = threading.Lock()
_reaper: threading.Thread | None = None
_buried = 0  # caches handed to the reaper and not freed yet


def _reap() -> None:
    """The reaper thread: free buried caches one entry at a time (a Python loop, so other threads
    keep running), and unfreeze the collector after the last one."""
    global _buried
    while True:
        cache = _graveyard.get()
        take = cache.popitem if isinstance(cache, dict) else cache.pop
        while cache:
            take()
        del cache, take
        with _reaper_lock:
            _buried -= 1
            if not _buried:
                gc.unfreeze()


def bury(cache: set | dict) -> None:
    """Hand ``cache`` (a search's set or dict, no longer used) to the background reaper when it
    holds more than :data:`BURY_OVER` entries; a smaller one is left to ordinary freeing."""
    global _reaper, _buried
    if len(cache) <= BURY_OVER:
        return
    with _reaper_lock:
        _buried += 1
    _graveyard.put(cache)
    with _reaper_lock:
        if _reaper is None or not _reaper.is_alive():
            _reaper = threading.Thread(target=_reap, name="packrat-check-reaper", daemon=True)
            _reaper.start()


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Disable the cyclic garbage collector for the block (a search builds no cycles).

    On exit, while large caches wait for the reaper, what the search allocated (those caches
    included) is left in the permanent generation without a collection (``gc.freeze``, O(1)): a
    young-generation collection over millions of cache entries would delay the verdict. With
    nothing buried (every small check) the collector is left as it was."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        with _reaper_lock:
            if _buried:
                gc.freeze()
        if was_enabled:
            gc.enable()
