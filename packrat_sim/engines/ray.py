"""The Ray engine: the same interface as ``packrat_sim.engines`` over a Ray cluster.

This is the only module of the toolkit that imports ray (an optional extra:
``pip install -e '.[cluster]'``). ``RayEngine(address)``:

* ``address=None``: start a private local Ray instance (``num_cpus`` CPUs, default all,
  no dashboard) and shut it down on ``close()``;
* ``address="auto"``: join the cluster this machine already runs (``RAY_ADDRESS`` or
  ``ray start --head`` on this machine);
* ``address="HOST:PORT"``: join the cluster whose head (GCS) listens there.

Before joining, the head's TCP port is probed (5 s): an unreachable address raises
:class:`RayEngineError` with one line naming it, instead of Ray's minutes of retries.
(A port that answers but is not a Ray head still makes ``ray.init`` wait; the CLI guards
the whole connection with a deadline, see ``ui/cli/engine.py``.)

``map(fn, tasks, retries=1)`` submits ``fn(task)`` as Ray tasks (``fn`` must be importable
on the workers: install the toolkit on every node, or let the engine ship the packages
it needs by name, ``ship_code=("packrat_sim", "checker")``), yields outcomes in completion order with
the semantics of ``packrat_sim.engines``: an exception in ``fn`` is a failed outcome (not
retried); a worker that dies is retried ``retries`` times by Ray (``max_retries``), then
reported failed. :func:`run_on_each_node` runs one task pinned to each node (what
``real_runner.fleet`` profiles a cluster with). Tasks travel in chunks (``chunk_size``; default :func:`auto_chunk`) to
amortise Ray's per-task overhead; a worker that dies costs (and retries) its chunk. At most
``max_in_flight`` chunks are submitted at once.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from packrat_sim.engines.base import Outcome, call_task
from packrat_sim import validate
from packrat_sim.errors import PackratError

PROBE_TIMEOUT_S = 5.0


class RayEngineError(PackratError, RuntimeError):
    """Ray is missing, or the cluster cannot be reached; one line naming the address."""


def _import_ray():
    try:
        import ray
    except ImportError:
        raise RayEngineError("--engine ray needs ray: pip install -e '.[cluster]' (ray==2.60.0)") from None
    return ray


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``ray://`` prefix allowed) -> (host, port); RayEngineError naming it."""
    text = address.strip()
    text = text.removeprefix("ray://")
    host, colon, port = text.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise RayEngineError(f"--ray-address {address!r} must be auto or HOST:PORT")
    return host.strip("[]"), int(port)


def resolve_auto() -> str:
    """The address ``auto`` means: ``RAY_ADDRESS``, else the cluster started on this
    machine (``ray start --head`` records it); RayEngineError when there is none."""
    env = os.environ.get("RAY_ADDRESS", "").strip()
    if env and env != "auto":
        return env
    tmp = os.environ.get("RAY_TMPDIR", "/tmp")
    path = os.path.join(tmp, "ray", "ray_current_cluster")
    try:
        with open(path, encoding="utf-8") as fh:
            address = fh.read().strip()
    except OSError:
        address = ""
    if not address:
        raise RayEngineError("--ray-address auto: no running Ray cluster found on this machine (start one with `ray start --head`)")
    return address


def probe(address: str, timeout_s: float = PROBE_TIMEOUT_S) -> None:
    """Open (and close) a TCP connection to the head; RayEngineError if that fails."""
    host, port = parse_address(address)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if isinstance(exc, socket.timeout):
            reason = f"no answer within {timeout_s:g} s"
        raise RayEngineError(f"cannot reach the Ray cluster at {address!r}: {reason}") from None


def _call(fn: Callable[[Any], Any], chunk: list) -> list[tuple[bool, Any]]:
    """What runs in a Ray worker: per task of the chunk, ``(True, fn(task))`` or
    ``(False, "Type: message")``."""
    return [call_task(fn, task) for task in chunk]


def auto_chunk(tasks: int, workers: int) -> int:
    """Tasks per Ray task when not given: enough that each worker gets about 8 chunks,
    at most 64 (Ray's per-task overhead is ~1 ms; a dead worker costs one chunk)."""
    return max(1, min(64, tasks // (8 * max(1, workers))))


class RayEngine:
    """``packrat_sim.engines``' interface on Ray (see the module docstring)."""

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: int | None = None,
        max_in_flight: int | None = None,
        ship_code: Sequence[str] = (),
        chunk_size: int | None = None,
    ):
        ray = _import_ray()
        self._ray = ray
        self._owns_instance = False
        self.startup_s = 0.0
        t0 = time.perf_counter()
        runtime_env = None
        if ship_code:
            runtime_env = {"py_modules": [importlib.import_module(name) for name in ship_code]}
        target = None
        if address is not None:
            target = resolve_auto() if address.strip() == "auto" else address.strip()
            probe(target)
        if ray.is_initialized():
            pass  # a caller (a test fixture, a notebook) already connected: use that
        elif target is None:
            if num_cpus is not None and num_cpus < 1:
                raise RayEngineError(f"num_cpus must be a positive integer, got {num_cpus}")
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                     logging_level="ERROR", runtime_env=runtime_env)
            self._owns_instance = True
        else:
            if num_cpus is not None:
                raise RayEngineError("--workers sets the CPUs of a local Ray instance; a joined cluster has its own")
            try:
                ray.init(address=target, log_to_driver=False, logging_level="ERROR", runtime_env=runtime_env)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise RayEngineError(f"cannot join the Ray cluster at {target!r}: {' '.join(str(exc).split())[:200]}") from None
        self.startup_s = time.perf_counter() - t0
        self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.max_in_flight = max_in_flight or max(64, 4 * self.workers)
        if chunk_size is not None:
            validate.positive_int(chunk_size, "chunk_size", error=RayEngineError)
        self.chunk_size = chunk_size
        self._remote = ray.remote(_call)
        self._closed = False

    def nodes(self) -> list[dict]:
        """The cluster's live nodes as Ray describes them (``NodeID``, ``NodeManagerAddress``,
        ``Resources``...)."""
        return [n for n in self._ray.nodes() if n.get("Alive")]

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any], retries: int = 1) -> Iterator[Outcome]:
        """Yield an Outcome per task in completion order (see the module docstring)."""
        if self._closed:
            raise RayEngineError("this Ray engine is closed")
        validate.nonnegative_int(retries, "retries", error=RayEngineError)
        ray = self._ray
        tasks = list(tasks)
        if not tasks:
            return
        size = self.chunk_size or auto_chunk(len(tasks), self.workers)
        chunks = [list(range(k, min(k + size, len(tasks)))) for k in range(0, len(tasks), size)]
        remote = self._remote.options(max_retries=retries, retry_exceptions=False)
        fn_ref = ray.put(fn)
        chunk_of: dict[Any, list[int]] = {}
        pending: list = []
        next_chunk = 0
        finished = False
        try:
            while next_chunk < len(chunks) or pending:
                while next_chunk < len(chunks) and len(pending) < self.max_in_flight:
                    indices = chunks[next_chunk]
                    ref = remote.remote(fn_ref, [tasks[i] for i in indices])
                    chunk_of[ref] = indices
                    pending.append(ref)
                    next_chunk += 1
                done, pending = ray.wait(pending, num_returns=len(pending), timeout=0.05)
                if not done:
                    done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    indices = chunk_of.pop(ref)
                    try:
                        results = ray.get(ref)
                    except ray.exceptions.RayError as exc:  # the worker died on every attempt
                        for index in indices:
                            yield Outcome(index, False, None,
                                          f"worker died on each of {retries + 1} attempt(s) ({type(exc).__name__})",
                                          retries + 1)
                        continue
                    for index, (ok, payload) in zip(indices, results):
                        yield Outcome(index, True, payload) if ok else Outcome(index, False, None, payload)
            finished = True
        finally:
            if not finished:
                for ref in pending:
                    with contextlib.suppress(Exception):  # pragma: no cover - already finished
                        ray.cancel(ref, force=True)

    def close(self) -> None:
        """Shut down the local instance this engine started (a joined cluster is left running)."""
        if self._closed:
            return
        self._closed = True
        if self._owns_instance and self._ray.is_initialized():
            self._ray.shutdown()

    def __enter__(self) -> RayEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_on_each_node(engine: RayEngine, fn: Callable[[Any], Any], arg: Any, node_ids: Sequence[str] | None = None,
                     *, whole_node: bool = False) -> list[tuple[str, Outcome]]:
    """``fn(arg)`` once on each live node (or on ``node_ids``), pinned there (hard node
    affinity); with ``whole_node`` the task reserves all the node's CPUs, so nothing else
    of this engine runs beside it. Returns (node id, outcome) per node, in node order."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    ray = engine._ray
    nodes = {n["NodeID"]: n for n in engine.nodes()}
    ids = list(node_ids) if node_ids is not None else list(nodes)
    refs = []
    for node_id in ids:
        cpus = float(nodes.get(node_id, {}).get("Resources", {}).get("CPU", 1)) if whole_node else 0.001
        opts = engine._remote.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node_id, soft=False),
            num_cpus=cpus, max_retries=0,
        )
        refs.append(opts.remote(fn, [arg]))
    out = []
    for k, (node_id, ref) in enumerate(zip(ids, refs)):
        try:
            ((ok, payload),) = ray.get(ref)
        except ray.exceptions.RayError as exc:
            out.append((node_id, Outcome(k, False, None, f"node task failed ({type(exc).__name__})")))
            continue
        out.append((node_id, Outcome(k, True, payload) if ok else Outcome(k, False, None, payload)))
    return out
