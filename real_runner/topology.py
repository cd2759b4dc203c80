"""CPU topology from sysfs, and which cores each model instance gets.

:func:`detect` reads, for every logical CPU this process may run on
(``os.sched_getaffinity``), its socket (``physical_package_id``) and physical core
(``core_id``) from ``/sys/devices/system/cpu/cpuN/topology``; logical CPUs sharing a
(socket, core) are SMT siblings. Where sysfs says nothing, each CPU is its own core on
socket 0.

Core assignment (:func:`assign_cores`), for a list of instance thread counts:

* instances get disjoint CPUs; the total must fit the allowed CPUs unless
  ``allow_oversubscribe`` (then CPUs are handed out round-robin and shared);
* inside a socket, CPUs are taken physical cores first: one CPU of every free core
  before any SMT sibling (:meth:`Topology.preferred_order`);
* an instance never spans sockets: it goes to the socket where it gets the most whole
  physical cores, then the one with the fewest free CPUs that still fits it (best fit),
  then the lowest socket id; an instance larger than every socket's free CPUs is an
  error unless ``allow_span`` (the usual fat baseline on a multi-socket server).

Also here: pinning the current process (all its threads) to CPUs, moving a running
worker to other CPUs and another thread count in place (:func:`retarget_process`),
reading the CPU set of every thread of a process (:func:`thread_cpus`), and the worker
bootstrap shared by the profiler and the executor.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from packrat_sim import validate
from packrat_sim.engines.spawn import watch_parent
from packrat_sim.errors import PackratError
from packrat_sim.plan import Instance, Plan

SYSFS_CPU = "/sys/devices/system/cpu"


class TopologyError(PackratError):
    """A thread count or plan that does not fit this machine's allowed CPUs; names the values."""


@dataclass(frozen=True, order=True)
class LogicalCpu:
    """One logical CPU: its id, its socket, and the id of its physical core on that socket."""

    socket: int
    core: int
    id: int


def format_cpus(ids: Iterable[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``'0-2,5'``."""
    xs = sorted(set(ids))
    parts, i = [], 0
    while i < len(xs):
        j = i
        while j + 1 < len(xs) and xs[j + 1] == xs[j] + 1:
            j += 1
        parts.append(str(xs[i]) if i == j else f"{xs[i]}-{xs[j]}")
        i = j + 1
    return ",".join(parts) or "none"


@dataclass(frozen=True)
class Topology:
    """The allowed logical CPUs with their cores and sockets (see the module docstring)."""

    cpus: tuple[LogicalCpu, ...]
    cpu_model: str = ""

    def __post_init__(self) -> None:
        if not self.cpus:
            raise TopologyError("no CPU is allowed for this process")
        object.__setattr__(self, "cpus", tuple(sorted(self.cpus, key=lambda c: c.id)))

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(c.id for c in self.cpus)

    @property
    def logical(self) -> int:
        return len(self.cpus)

    @property
    def physical(self) -> int:
        return len({(c.socket, c.core) for c in self.cpus})

    @property
    def sockets(self) -> tuple[int, ...]:
        return tuple(sorted({c.socket for c in self.cpus}))

    @property
    def smt(self) -> bool:
        return self.physical < self.logical

    def socket_of(self, cpu: int) -> int:
        for c in self.cpus:
            if c.id == cpu:
                return c.socket
        raise TopologyError(f"CPU {cpu} is not among the allowed CPUs {format_cpus(self.ids)}")

    def preferred_order(self, socket: int | None = None) -> list[int]:
        """Allowed CPU ids, physical cores first: per socket, the first sibling of every
        core (by core id), then the second siblings, ...; sockets in id order."""
        out: list[int] = []
        for s in self.sockets if socket is None else (socket,):
            cores: dict[int, list[int]] = {}
            for c in self.cpus:
                if c.socket == s:
                    cores.setdefault(c.core, []).append(c.id)
            lists = [sorted(v) for _, v in sorted(cores.items())]
            depth = max((len(v) for v in lists), default=0)
            for level in range(depth):
                out.extend(v[level] for v in lists if len(v) > level)
        return out

    def describe(self) -> str:
        return (
            f"{self.logical} allowed CPUs ({format_cpus(self.ids)}) on {self.physical} physical cores, "
            f"{len(self.sockets)} socket(s){', SMT' if self.smt else ''}"
            + (f", {self.cpu_model}" if self.cpu_model else "")
        )

    def machine(self, **extra: str):
        """A :class:`packrat_sim.profile.Machine` describing this topology (torch version
        from package metadata, without importing torch)."""
        from importlib import metadata

        from packrat_sim.profile import Machine

        try:
            torch_version = metadata.version("torch")
        except metadata.PackageNotFoundError:  # pragma: no cover
            torch_version = ""
        items = {"allowed_cpus": format_cpus(self.ids), "smt": str(self.smt).lower()}
        items.update({k: str(v) for k, v in extra.items()})
        return Machine(
            cpu_model=self.cpu_model,
            logical_cores=self.logical,
            physical_cores=self.physical,
            sockets=len(self.sockets),
            torch_version=torch_version,
            extra=tuple(sorted(items.items())),
        )


def _read_int(path: str) -> int | None:
    try:
        with open(path, encoding="ascii") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


def cpu_model_name(cpuinfo: str = "/proc/cpuinfo") -> str:
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "cpu model", "processor\t: arm")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def detect(
    root: str = SYSFS_CPU, allowed: Iterable[int] | None = None, cpuinfo: str = "/proc/cpuinfo"
) -> Topology:
    """The topology of the CPUs this process may use (``allowed`` defaults to its affinity)."""
    ids = sorted(os.sched_getaffinity(0) if allowed is None else set(allowed))
    cpus = []
    for cpu in ids:
        base = os.path.join(root, f"cpu{cpu}", "topology")
        socket = _read_int(os.path.join(base, "physical_package_id"))
        core = _read_int(os.path.join(base, "core_id"))
        cpus.append(LogicalCpu(
            socket=socket if socket is not None and socket >= 0 else 0,
            core=core if core is not None and core >= 0 else 1_000_000 + cpu,
            id=cpu,
        ))
    return Topology(tuple(cpus), cpu_model_name(cpuinfo))


# ------------------------------------------------------------------ assignment


def check_threads(threads: Iterable[int], topo: Topology, what: str = "threads") -> None:
    """TopologyError when any thread count is < 1 or beyond the allowed CPUs."""
    for t in threads:
        validate.positive_int(t, what, error=TopologyError, expected="positive integers")
        if t > topo.logical:
            raise TopologyError(
                f"{what} {t} is beyond the {topo.logical} CPUs this process may use ({format_cpus(topo.ids)})"
            )


def assign_cores(
    threads: Sequence[int],
    topo: Topology,
    *,
    allow_oversubscribe: bool = False,
    allow_span: bool = False,
) -> list[tuple[int, ...]]:
    """CPU ids for instances of ``threads[i]`` threads each, in the same order (see module doc)."""
    threads = list(threads)
    for t in threads:
        validate.positive_int(t, "instance threads", error=TopologyError, expected="positive integers")
    total = sum(threads)
    if total > topo.logical:
        if not allow_oversubscribe:
            raise TopologyError(
                f"the plan needs {total} cores but only {topo.logical} CPUs are allowed "
                f"({format_cpus(topo.ids)}); use fewer threads or --allow-oversubscribe"
            )
        order = topo.preferred_order()
        out, k = [], 0
        for t in threads:
            cores = []
            for _ in range(t):
                cores.append(order[k % len(order)])
                k += 1
            out.append(tuple(sorted(set(cores))))
        return out

    free: dict[int, list[int]] = {s: topo.preferred_order(s) for s in topo.sockets}
    core_of = {c.id: (c.socket, c.core) for c in topo.cpus}

    def whole_cores_taken(s: int, t: int) -> int:
        busy_cores = {core_of[c] for c in topo.preferred_order(s) if c not in free[s]}
        picked = free[s][:t]
        return len({core_of[c] for c in picked} - busy_cores)

    result: list[tuple[int, ...] | None] = [None] * len(threads)
    for idx in sorted(range(len(threads)), key=lambda i: -threads[i]):
        t = threads[idx]
        fits = [s for s in topo.sockets if len(free[s]) >= t]
        if fits:
            s = min(fits, key=lambda s: (-whole_cores_taken(s, t), len(free[s]), s))
            picked, free[s] = free[s][:t], free[s][t:]
        elif allow_span:
            picked = []
            for s in sorted(topo.sockets, key=lambda s: -len(free[s])):
                take = free[s][: t - len(picked)]
                picked.extend(take)
                free[s] = free[s][len(take):]
        else:
            sizes = ", ".join(f"socket {s}: {len(free[s])}" for s in topo.sockets)
            raise TopologyError(
                f"an instance of {t} threads does not fit in one socket (free CPUs {sizes}); "
                "an instance never spans sockets"
            )
        result[idx] = tuple(sorted(picked))
    return [r for r in result if r is not None]


def pin_plan(
    plan: Plan, topo: Topology, *, allow_oversubscribe: bool = False, allow_span: bool = False
) -> tuple[Plan, list[tuple[int, ...]]]:
    """CPUs for every instance of ``plan`` (plan order).

    A plan whose instances already name their cores keeps them (they must be allowed
    CPUs). Returns the plan with cores filled in (unchanged when oversubscribed, since a
    Plan's cores are disjoint) and the per-instance CPU tuples.
    """
    pinned = [i.cores for i in plan.instances]
    if all(pinned):
        bad = sorted({c for cs in pinned for c in cs} - set(topo.ids))
        if bad:
            raise TopologyError(
                f"the plan pins instances to CPUs {format_cpus(bad)}, which this process may not use "
                f"(allowed: {format_cpus(topo.ids)})"
            )
        return plan, [tuple(c) for c in pinned]
    if any(pinned):
        raise TopologyError("the plan pins some instances to cores but not others; pin all or none")
    cores = assign_cores(
        [i.threads for i in plan.instances], topo,
        allow_oversubscribe=allow_oversubscribe, allow_span=allow_span,
    )
    if plan.threads_used > topo.logical:
        return plan, cores
    instances = tuple(Instance(i.threads, i.batch, c) for i, c in zip(plan.instances, cores))
    pinned_plan = Plan(instances, plan.batch, plan.cores, plan.predicted_ms)
    # Plan re-sorts its instances canonically; read the cores back in that order.
    return pinned_plan, [i.cores for i in pinned_plan.instances]


# ----------------------------------------------------------- pinning and workers


def pin_process(cores: Iterable[int]) -> None:
    """Pin every thread of this process (and threads it starts later) to ``cores``."""
    cpus = set(cores)
    os.sched_setaffinity(0, cpus)
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:  # pragma: no cover - no procfs
        return
    for tid in tids:
        with contextlib.suppress(OSError, ValueError):
            os.sched_setaffinity(int(tid), cpus)


def parse_cpu_list(text: str) -> tuple[int, ...]:
    """The kernel's CPU-list format (``Cpus_allowed_list``: ``'0-2,5'``) -> ``(0, 1, 2, 5)``;
    TopologyError naming the text when it is not one."""
    out: set[int] = set()
    for part in text.strip().split(","):
        lo, _, hi = part.strip().partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            raise TopologyError(f"not a CPU list: {text!r}")
        out.update(range(int(lo), int(hi or lo) + 1))
    return tuple(sorted(out))


def thread_cpus(pid: int | str = "self") -> dict[int, tuple[int, ...]]:
    """The CPU set of every thread of process ``pid`` (``"self"``: this one), read from
    ``/proc/PID/task/*/status`` (``Cpus_allowed_list``): {thread id: CPUs}. A thread that
    exits while it is read is left out; an empty dict when the process is gone."""
    base = f"/proc/{pid}/task"
    try:
        tids = os.listdir(base)
    except OSError:
        return {}
    out: dict[int, tuple[int, ...]] = {}
    for tid in tids:
        with contextlib.suppress(OSError), open(f"{base}/{tid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Cpus_allowed_list:"):
                    out[int(tid)] = parse_cpu_list(line.split(":", 1)[1])
                    break
    return out


def retarget_process(cores: Iterable[int], threads: int) -> None:
    """Move this worker process in place: every thread onto ``cores`` (the main thread
    first, so that threads the OpenMP runtime starts later inherit the new set; then every
    other thread in ``/proc/self/task``, since ``sched_setaffinity(0, ...)`` moves only the
    calling thread), then torch's intra-op thread count to ``threads`` (the next parallel
    region uses that many). Call it between batches, never while the model runs."""
    pin_process(cores)
    import torch

    torch.set_num_threads(threads)


# OpenMP wait policies for worker processes. OpenMP reads these variables once, when the
# runtime loads (at ``import torch``), so they are put in the environment a worker is
# spawned with (see :func:`worker_environment`), never set inside a running process.
# * default: the runtime's own (libgomp spins ~300k iterations before sleeping);
# * passive: threads sleep at once at a barrier (OMP_WAIT_POLICY=PASSIVE; KMP_BLOCKTIME=0
#   for Intel's runtime);
# * bounded: a short spin, then sleep (GOMP_SPINCOUNT=10000, a few microseconds;
#   KMP_BLOCKTIME=1 ms for Intel's runtime).
# Measured with benchmarks/omp_wait_policy.py (figures in docs/results.md): the default
# spin collapses when other processes share the cores (a spinning thread holds a core
# another instance needs), passive pays a wake-up per parallel region when calm; bounded
# keeps most of the calm speed and does not collapse, so it is the default.
OMP_POLICIES: dict[str, dict[str, str]] = {
    "default": {},
    "passive": {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"},
    "bounded": {"GOMP_SPINCOUNT": "10000", "KMP_BLOCKTIME": "1"},
}
DEFAULT_OMP_POLICY = "bounded"
OMP_POLICY_ENV = "PACKRAT_OMP_POLICY"  # overrides DEFAULT_OMP_POLICY for a whole session


def omp_policy(name: str | None = None) -> str:
    """The policy to use: ``name``, else $PACKRAT_OMP_POLICY, else DEFAULT_OMP_POLICY;
    ValueError naming an unknown one."""
    chosen = name or os.environ.get(OMP_POLICY_ENV) or DEFAULT_OMP_POLICY
    if chosen not in OMP_POLICIES:
        raise ValueError(f"unknown OpenMP wait policy {chosen!r}; choose one of {', '.join(OMP_POLICIES)}")
    return chosen


class worker_environment:
    """Context manager: the environment of worker processes spawned inside it carries the
    OpenMP wait policy ``policy`` (variables the user set explicitly are kept, not
    overridden). The parent's own OpenMP runtime is unaffected (already loaded)."""

    def __init__(self, policy: str | None = None) -> None:
        self.policy = omp_policy(policy)
        self._saved: dict[str, str | None] = {}

    def __enter__(self):
        for key, value in OMP_POLICIES[self.policy].items():
            if key not in os.environ:
                self._saved[key] = None
                os.environ[key] = value
        self._saved.setdefault("PACKRAT_WORKER_OMP_POLICY", os.environ.get("PACKRAT_WORKER_OMP_POLICY"))
        os.environ["PACKRAT_WORKER_OMP_POLICY"] = self.policy
        return self

    def __exit__(self, *exc):
        for key, old in self._saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
        return False


def start_worker(cores: Iterable[int], threads: int) -> None:
    """Bootstrap of a worker process: ignore SIGINT (the parent shuts workers down), exit
    when the parent dies, pin to ``cores``, and set torch's intra-op threads to ``threads``
    (one inter-op thread)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watch_parent(os.getppid(), exit_code=3)  # the toolkit's parent-death rule (exit code 3)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    retarget_process(cores, threads)
    import torch

    with contextlib.suppress(RuntimeError):  # already set (a reused interpreter)
        torch.set_num_interop_threads(1)


def thread_settings() -> dict[str, str]:
    """torch's thread settings in this process (for the profile's machine description)."""
    import torch

    info = torch.__config__.parallel_info()
    backend = next((line.split(":", 1)[1].strip() for line in info.splitlines() if "parallel backend" in line), "")
    return {
        "parallel_backend": backend,
        "interop_threads": str(torch.get_num_interop_threads()),
        "mkldnn": str(torch.backends.mkldnn.is_available()).lower(),
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS", ""),
        "omp_wait_policy": os.environ.get("PACKRAT_WORKER_OMP_POLICY", "unset"),
        "omp_env": ",".join(f"{k}={os.environ[k]}" for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
                            if k in os.environ),
    }


class ignoring_sigint:
    """Context manager: SIGINT ignored while worker processes are started, so that they
    inherit SIG_IGN from the very first instruction (a terminal Ctrl-C reaches the whole
    process group; only the parent should react, and it shuts the workers down)."""

    def __enter__(self):
        self._old = None
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        return self

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False
