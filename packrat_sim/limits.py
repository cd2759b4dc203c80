"""Memory limits: estimate what a request needs *before* allocating it, and refuse above a limit.

A hostile or mistaken request (``plan --batch 10000000``, ``simulate ... max_batch=1000000000``,
``run --load 1000000000:2s``, ``bench --batches 1000000000``) must not make the kernel's
OOM killer decide. The library functions that allocate in proportion to a request (the
optimizer's DP tables, the simulator's setup, workload generation, real runs and the
bench) call :func:`require` at their entry with an estimate of the bytes they will need;
above the limit it raises one line that states the estimate, the limit and how to raise it.

The limit (bytes) is :func:`max_memory_bytes`:

* ``PACKRAT_MAX_MEMORY_MB`` (environment variable, megabytes, > 0) when set;
* otherwise ``DEFAULT_FRACTION`` (1/2) of the machine's physical memory (or of this process's
  cgroup memory limit, when that is lower: :func:`physical_memory_bytes`);
* and never more than the process's address-space limit (``RLIMIT_AS``) when one is set.

Estimates are deliberately simple upper-bound-ish formulas (documented per function, bytes
per cell / per item measured on CPython 3.12 + numpy 2); they only need to be right to
within a small factor, since their job is to stop requests that are off by orders of
magnitude. Pure except for reading the environment and the machine's memory size.

This is also the toolkit's one place that measures memory: :func:`physical_memory_bytes`
(cgroup-aware), :func:`current_rss` (this process's resident set) and :func:`format_bytes`; the
linearizability checker takes its default memory bound and its measurements from here.
"""

from __future__ import annotations

import functools
import math
import os
import sys
from collections.abc import Callable, Sequence

from packrat_sim.errors import PackratError

__all__ = [
    "BYTES_PER_DP_CELL",
    "BYTES_PER_REQUEST",
    "DEFAULT_FRACTION",
    "ENV_VAR",
    "ResourceLimitError",
    "batch_bytes",
    "constrained_table_bytes",
    "current_rss",
    "dp_table_bytes",
    "format_bytes",
    "max_memory_bytes",
    "physical_memory_bytes",
    "requests_bytes",
    "require",
]

ENV_VAR = "PACKRAT_MAX_MEMORY_MB"
DEFAULT_FRACTION = 0.5

#: Peak bytes per (t, b) cell of the optimizer's threshold sweep: the reachability table,
#: its grown copy and two temporaries (1 byte each), the latency table (8), the choice
#: table (4), and with idle cores allowed a second latency table and a cores-used table (12).
BYTES_PER_DP_CELL = 28
#: Bytes per (t, b) cell of one count table of the constrained DP (int64), times the copies alive.
BYTES_PER_COUNT_CELL = 8 * 6
#: Bytes per simulated or served request: arrival/dispatch/finish arrays, the per-request
#: record and its history operation (Python objects dominate).
BYTES_PER_REQUEST = 600
#: A batch of a real model run exists as the input in shared memory, the worker's copy
#: and the output, plus activations; this factor times the input size is the estimate.
BATCH_COPIES = 8


_ITEMSIZE = {"float16": 2, "bfloat16": 2, "float32": 4, "int32": 4, "float64": 8, "int64": 8, "uint8": 1, "int8": 1}


class ResourceLimitError(PackratError):
    """A request would need more memory than the limit allows. One line: estimate, limit, how to raise it."""


#: Files that hold this process's cgroup memory limit (cgroup v2, then v1); "max" or a huge
#: number means no limit.
CGROUP_MEMORY_FILES = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def _sysconf_memory() -> int | None:
    """The machine's physical memory in bytes as the OS reports it, or None when it does not say."""
    try:
        pages = os.sysconf("SC_PHYS_PAGES")
        size = os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
    if pages <= 0 or size <= 0:
        return None
    return int(pages) * int(size)


def _cgroup_memory_limit() -> int | None:
    """The lowest memory limit in bytes in :data:`CGROUP_MEMORY_FILES`, or None when none is set."""
    limit = None
    for path in CGROUP_MEMORY_FILES:
        try:
            with open(path) as fh:
                text = fh.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < (1 << 60):
            limit = int(text) if limit is None else min(limit, int(text))
    return limit


@functools.lru_cache(maxsize=1)
def physical_memory_bytes() -> int | None:
    """The memory this process can have, in bytes: the machine's physical memory, or its cgroup's
    memory limit when that is lower (a container); None when neither is known. Read once, cached."""
    phys, cgroup = _sysconf_memory(), _cgroup_memory_limit()
    if phys is None or cgroup is None:
        return cgroup if phys is None else phys
    return min(phys, cgroup)


def _page_size() -> int:
    """The OS page size in bytes (4096 when the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4096


_PAGE = _page_size()


def current_rss() -> int:
    """Resident memory of this process in bytes (Linux: now; elsewhere: the peak so far)."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def _address_space_limit() -> int | None:
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft in (resource.RLIM_INFINITY, -1) or soft <= 0 else int(soft)


def max_memory_bytes() -> int:
    """The memory limit in bytes (module doc). Raises :class:`ResourceLimitError` when
    ``PACKRAT_MAX_MEMORY_MB`` is set to something that is not a positive finite number."""
    raw = os.environ.get(ENV_VAR)
    if raw is not None and raw.strip() != "":
        try:
            mb = float(raw)
        except ValueError:
            mb = float("nan")
        if not math.isfinite(mb) or mb <= 0:
            raise ResourceLimitError(f"{ENV_VAR}={raw!r} is not a positive number of megabytes")
        limit = int(mb * 2**20)
    else:
        phys = physical_memory_bytes()
        limit = int(DEFAULT_FRACTION * phys) if phys else 8 * 2**30
    cap = _address_space_limit()
    return limit if cap is None else min(limit, cap)


def format_bytes(n: float, *, compact: bool = False) -> str:
    """``n`` bytes as text with a binary unit: ``1536`` -> ``'1.5 KiB'``; huge values in scientific
    notation. ``compact``: whole numbers below a GiB and for whole amounts (``'512 MiB'``,
    ``'2 KiB'``, ``'3 GiB'``, ``'1.5 GiB'``), as the linearizability checker's messages print them.
    Pure."""
    if compact:
        return _format_bytes_compact(n)
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            if unit == "PiB" and n >= 1024 ** 2:
                return f"{n:.3g} PiB"
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.3g} PiB"  # pragma: no cover


def _format_bytes_compact(n: float) -> str:
    """:func:`format_bytes` with ``compact=True``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit in ("B", "KiB", "MiB") or n == int(n) else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover - the loop returns at TiB


def _how_to_raise(limit: int) -> str:
    cap = _address_space_limit()
    if cap is not None and limit == cap:
        return (f"the memory limit is {format_bytes(limit)} (this process's address-space limit, ulimit -v); "
                f"raise that limit, then {ENV_VAR}=MEGABYTES if needed")
    if os.environ.get(ENV_VAR, "").strip():
        src = f"{ENV_VAR}={os.environ[ENV_VAR].strip()}"
    else:
        src = f"default: {DEFAULT_FRACTION:g} of physical memory"
    return f"the memory limit is {format_bytes(limit)} ({src}); raise it with {ENV_VAR}=MEGABYTES"


def require(nbytes: float, what: str, *, error: Callable[[str], Exception] = ResourceLimitError) -> None:
    """Raise ``error(message)`` when ``nbytes`` (an estimate) exceeds :func:`max_memory_bytes`.

    ``what`` names the request (e.g. ``"the DP table for batch=10000000, cores=16"``); the
    message says the estimate, the limit and how to raise it. ``error`` lets a library
    raise its own exception type (OptimizerError, SimulationError, ...), so its callers'
    existing handlers turn the refusal into exit 2. Non-finite estimates are refused.
    """
    try:
        limit = max_memory_bytes()
    except ResourceLimitError as exc:
        raise error(str(exc)) from None
    if not math.isfinite(nbytes) or nbytes > limit:
        size = "an unbounded amount of memory" if not math.isfinite(nbytes) else f"about {format_bytes(nbytes)}"
        raise error(f"{what} would need {size}, more than allowed: {_how_to_raise(limit)}")


def dp_table_bytes(cores: int, batch: int) -> int:
    """Peak bytes of the optimizer's (cores+1) x (batch+1) tables (``BYTES_PER_DP_CELL`` each)."""
    return (int(cores) + 1) * (int(batch) + 1) * BYTES_PER_DP_CELL


def constrained_table_bytes(cores: int, batch: int) -> int:
    """Peak bytes of the constrained DP's count tables ((cores+1) x (batch+1) int64, a few alive)."""
    return (int(cores) + 1) * (int(batch) + 1) * BYTES_PER_COUNT_CELL


def requests_bytes(requests: float) -> float:
    """Bytes to generate and simulate (or serve and log) ``requests`` requests."""
    return float(requests) * BYTES_PER_REQUEST


def batch_bytes(batch: int, item_shape: Sequence[int], dtype: int | str = 4, copies: int = BATCH_COPIES) -> int:
    """Bytes of a real run of a batch: ``batch * prod(item_shape) * itemsize * copies``;
    ``dtype`` is an item size in bytes or a name (``float32``, ``int64``, ...)."""
    per_item = dtype if isinstance(dtype, int) else _ITEMSIZE.get(str(dtype), 8)
    for d in item_shape:
        per_item *= int(d)
    return int(batch) * per_item * int(copies)
