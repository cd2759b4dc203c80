"""The Packrat optimizer: the latency-optimal multiset of instances for (T cores, batch B).

Problem (DESIGN.md): choose instances (t_j threads, b_j sub-batch), each a *profiled*
cell of the profile (a missing cell is unavailable), with sum b_j = B and sum t_j = T
(``exact_cores``, Packrat's rule) or sum t_j <= T (idle cores allowed), minimising the
batch latency max_j L[t_j, b_j]. Packrat's recurrence is

    opt[t, b] = min over items (t', b') of max(opt[t - t', b - b'], L[t', b'])

with opt[0, 0] = 0. Evaluating it directly costs O(T * B * items).

Algorithm used here (threshold sweep, exact): because the objective is a bottleneck
(max), opt[t, b] is the smallest item latency lambda such that (t, b) is a sum of items
of latency <= lambda. Items are visited in ascending (latency, threads, batch) order
while a boolean table ``reach`` holds every (t, b) that is a sum of the items visited
so far (a monoid: closed under addition). Adding item v closes ``reach`` under +v with
log2(max multiple) shifted ORs (R | R+v, then | R+2v, then | R+4v, ...); every cell
that becomes reachable gets opt = latency(v) and remembers v as its choice. An item
whose own cell is already reachable changes nothing and is skipped, which prunes most
of the profile. The whole table for (T, B) is built once and answers every smaller
(t, b). Plans are reconstructed from the stored choices (cell -> cell - v), never by
comparing floats: the predecessor of a cell reached by v is reachable with a latency
<= latency(v), so the walk ends at (0, 0) with the optimal bottleneck.

Ties: items are ranked by (latency, threads, batch) ascending and a cell keeps the first
item that reaches it, recursively for its predecessor; with idle cores allowed, the
fewest cores among equal latencies. Homogeneous mode (``homogeneous=True``) only
considers k identical instances (k * b' = B).

User constraints (``max_instances``, ``cores_per_socket``; see OptimizerOptions for their
exact meaning) use a second exact algorithm, ``constrained_plan``, chosen only when one
of them is set, so the default sweep above is untouched. It is the same threshold idea
with a count instead of a boolean: for the items of latency <= lambda, ``cnt[u, b]`` is
the fewest instances whose threads sum to exactly u (u <= the largest socket) and whose
sub-batches sum to b, an unbounded min-count knapsack closed per item with the same
log2 doubling (cnt = min(cnt, cnt shifted by 2^j v + 2^j)). A socket of c cores can
serve b inputs with g_c[b] = cnt[c, b] instances (min over u <= c with idle cores), and
the sockets together with the min-plus convolution of their g_c over the batch. lambda is
feasible iff that total for B is <= max_instances; feasibility is monotone in lambda, so
the smallest feasible lambda is found by galloping then bisecting over the distinct item
latencies (each step adds items to a saved table, never recomputing from scratch). The
plan is read back from the integer tables by exact equalities (never float comparisons);
among latency-optimal plans it has the fewest instances.

Pure functions; numpy only.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from packrat_sim import validate
from packrat_sim.errors import PackratError
from packrat_sim.plan import Instance, Plan
from packrat_sim.profile import Profile


class OptimizerError(PackratError):
    """Bad optimizer input, or a batch the profile cannot cover; names the value."""


@dataclass(frozen=True)
class OptimizerOptions:
    """Options of the search (all default to Packrat's behaviour).

    * ``exact_cores``: use exactly T threads in total (Packrat's rule); False allows idle cores.
    * ``homogeneous``: only k identical instances.
    * ``min_batch``: smallest sub-batch an instance may get.
    * ``max_threads_per_instance``: a plain cap on any instance's threads.
    * ``statistic``: which per-cell statistic is the latency (None: the profile's own).
    * ``max_instances``: at most this many instances in total (None: no cap).
    * ``cores_per_socket``: the T cores form sockets of this many cores, filled in order:
      ``socket_capacities(T, c)`` = floor(T / c) sockets of c cores, plus one socket of the
      remaining T mod c cores when c does not divide T (c >= T: one socket of T cores).
      An instance never spans a socket: its threads are <= its socket's cores, and the
      threads of the instances placed on one socket sum to at most that socket's cores
      (exactly, with ``exact_cores``, since then all T cores are used). So a plan is valid
      iff its instances can be bin-packed into the sockets, not merely t <= c.
    """

    exact_cores: bool = True
    homogeneous: bool = False
    min_batch: int = 1
    max_threads_per_instance: int | None = None
    statistic: str | None = None
    max_instances: int | None = None
    cores_per_socket: int | None = None

    def __post_init__(self) -> None:
        validate.positive_int(self.min_batch, "min_batch", error=OptimizerError)
        for name in ("max_threads_per_instance", "max_instances", "cores_per_socket"):
            if getattr(self, name) is not None:
                validate.positive_int(getattr(self, name), name, error=OptimizerError)

    @property
    def constrained(self) -> bool:
        """True when a user constraint needs ``constrained_plan`` (max_instances or sockets)."""
        return self.max_instances is not None or self.cores_per_socket is not None

    def limits(self, cores: int, socket_note: str = "") -> list[str]:
        """The constraints these options add on ``cores`` cores, in words and in a fixed order,
        e.g. ``["homogeneous only", "at most 4 instances", "sockets of [8, 8] cores",
        "sub-batches >= 2"]`` (empty for the defaults); ``socket_note`` follows the sockets'
        words. Pure."""
        limits = []
        if self.homogeneous:
            limits.append("homogeneous only")
        if self.max_instances is not None:
            limits.append(f"at most {self.max_instances} instances")
        if self.cores_per_socket is not None:
            limits.append(f"sockets of {list(socket_capacities(cores, self.cores_per_socket))} cores{socket_note}")
        if self.min_batch > 1:
            limits.append(f"sub-batches >= {self.min_batch}")
        return limits


Item = tuple[int, int, float]  # (threads, batch, latency_ms)


def profile_items(profile: Profile, cores: int, batch: int, options: OptimizerOptions) -> list[Item]:
    """The profiled cells usable as instances for (cores, batch) under ``options``,
    ranked by (latency, threads, batch) ascending (the tie-breaking order)."""
    limit_t = cores if options.max_threads_per_instance is None else min(cores, options.max_threads_per_instance)
    if options.cores_per_socket is not None:
        limit_t = min(limit_t, options.cores_per_socket)
    items = [
        (t, b, lat)
        for t, b, lat in profile.items(options.statistic)
        if t <= limit_t and options.min_batch <= b <= batch
    ]
    items.sort(key=lambda it: (it[2], it[0], it[1]))
    return items


def _check_problem(profile: Profile, batch: int, cores: int) -> None:
    """Validate (batch, cores) against the profile: positive integers, cores within the profiled threads."""
    validate.positive_int(batch, "batch", error=OptimizerError, numpy=True)
    validate.positive_int(cores, "cores", error=OptimizerError, numpy=True)
    if cores > profile.max_threads:
        raise OptimizerError(
            f"cores={cores} is beyond the profiled threads (the profile of {profile.model!r} "
            f"goes up to {profile.max_threads}); profile this machine up to {cores} threads"
        )


def _check_size(profile: Profile, batch: int, cores: int, table_rows: int, coverage: bool = True) -> None:
    """Refuse, before allocating, a batch no plan can cover (more than ``cores`` instances
    of the largest profiled sub-batch; only when ``coverage``) and DP tables above the memory
    limit (packrat_sim.limits: PACKRAT_MAX_MEMORY_MB, default half the machine's memory)."""
    largest = max(profile.batches)
    if coverage and batch > largest * cores:
        raise OptimizerError(
            f"batch {batch} cannot be covered on {cores} cores: at most {cores} instances of the "
            f"largest profiled sub-batch {largest} of {profile.model!r} serve {largest * cores} inputs"
        )
    from packrat_sim import limits

    need = limits.dp_table_bytes(table_rows, batch) if table_rows == cores else limits.constrained_table_bytes(table_rows, batch)
    limits.require(need, f"the DP table for batch={batch}, cores={cores}", error=OptimizerError)


class PlanTable:
    """Optimal latencies and choices for every (t <= T, b <= B), built once (see module doc).

    ``latency_ms(t, b)`` is inf where no plan exists; ``plan(t, b)`` raises
    OptimizerError there. Instances are immutable after construction.
    """

    def __init__(self, profile: Profile, cores: int, batch: int, options: OptimizerOptions | None = None):
        options = options or OptimizerOptions()
        _check_problem(profile, batch, cores)
        if options.homogeneous:
            raise OptimizerError("PlanTable is for heterogeneous plans; use homogeneous_plan()")
        if options.constrained:
            raise OptimizerError(
                "PlanTable answers every (cores, batch) and cannot honour max_instances or "
                "cores_per_socket; use optimize() or constrained_plan()"
            )
        _check_size(profile, batch, cores, cores, coverage=False)  # infeasible cells read as inf
        self.profile = profile
        self.cores = int(cores)
        self.batch = int(batch)
        self.options = options
        self.items = profile_items(profile, cores, batch, options)
        exact_lat, self._choice = _sweep(self.items, self.cores, self.batch)
        if options.exact_cores:
            self._lat = exact_lat
            self._cores_used = None
        else:
            self._lat, self._cores_used = _allow_idle(exact_lat)

    @property
    def latency(self) -> np.ndarray:
        """Read-only (T+1) x (B+1) array of optimal latencies in ms (inf: infeasible)."""
        view = self._lat.view()
        view.flags.writeable = False
        return view

    def latency_ms(self, cores: int, batch: int) -> float:
        self._check_bounds(cores, batch)
        return float(self._lat[cores, batch])

    def _check_bounds(self, cores: int, batch: int) -> None:
        if not (1 <= cores <= self.cores and 1 <= batch <= self.batch):
            raise OptimizerError(
                f"(cores={cores}, batch={batch}) is outside this table (cores <= {self.cores}, batch <= {self.batch})"
            )

    def plan(self, cores: int, batch: int) -> Plan:
        """The optimal plan for (cores, batch), with ``predicted_ms`` set."""
        self._check_bounds(cores, batch)
        lat = self._lat[cores, batch]
        if not math.isfinite(lat):
            raise OptimizerError(_infeasible_message(self.profile, cores, batch, self.options))
        t = cores if self._cores_used is None else int(self._cores_used[cores, batch])
        return Plan(walk_back(self._choice, self.items, t, batch), batch, cores, predicted_ms=float(lat))


def walk_back(choice: np.ndarray, items: Sequence[Item], threads: int, batch: int) -> tuple[Instance, ...]:
    """The instances of the plan a choice table stores for the cell (threads, batch): from the
    cell, take the item ``choice`` names and step back by its (t, b) until (0, 0). Pure."""
    instances = []
    t, b = int(threads), int(batch)
    while (t, b) != (0, 0):
        it_t, it_b, _ = items[int(choice[t, b])]
        instances.append(Instance(it_t, it_b))
        t, b = t - it_t, b - it_b
    return tuple(instances)


def _sweep(items: Sequence[Item], T: int, B: int) -> tuple[np.ndarray, np.ndarray]:
    """Threshold sweep (module doc): exact-cores latency table and choice table.

    Returns (lat, choice): lat[t, b] = optimal bottleneck latency using exactly t threads
    (inf if impossible, lat[0, 0] = 0); choice[t, b] = index into ``items`` of the item
    that reached the cell (-1 for (0, 0) and unreachable cells).
    """
    reach = np.zeros((T + 1, B + 1), dtype=bool)
    reach[0, 0] = True
    lat = np.full((T + 1, B + 1), np.inf)
    lat[0, 0] = 0.0
    choice = np.full((T + 1, B + 1), -1, dtype=np.int32)
    remaining = (T + 1) * (B + 1) - 1
    for k, (t, b, latency) in enumerate(items):
        if reach[t, b]:
            continue  # already a sum of cheaper items: closing under it adds nothing
        grown = closed_under(reach, t, b)
        new = grown & ~reach
        lat[new] = latency
        choice[new] = k
        remaining -= int(np.count_nonzero(new))
        reach = grown
        if remaining == 0:
            break
    return lat, choice


def closed_under(reach: np.ndarray, t: int, b: int) -> np.ndarray:
    """A copy of the boolean table ``reach`` ([cores + 1, batch + 1]: which (threads, batch)
    sums are reachable) closed under adding the item (t, b) any number of times (by doubling
    shifts: log steps). Pure."""
    T, B = reach.shape[0] - 1, reach.shape[1] - 1
    grown = reach.copy()
    dt, db = t, b
    while dt <= T and db <= B:
        np.bitwise_or(grown[dt:, db:], grown[: T + 1 - dt, : B + 1 - db], out=grown[dt:, db:])
        dt, db = 2 * dt, 2 * db
    return grown


def sweep_row(items: Sequence[Item], cores: int, batch: int, targets: np.ndarray,
              limit: float = math.inf) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_sweep` stopped early for the cells (cores, b) with ``targets[b]`` (a boolean
    array over b = 0..batch): it stops once they are all reached, or at the first item of
    latency above ``limit``. Returns (row, choice): row[b] = the exact-cores optimum of
    (cores, b) where reached by then (inf elsewhere), and the choice table, equal to the full
    one on every reached cell (a cell's choice is set once, when it is first reached)."""
    T, B = int(cores), int(batch)
    reach = np.zeros((T + 1, B + 1), dtype=bool)
    reach[0, 0] = True
    row = np.full(B + 1, np.inf)
    if T == 0:
        row[0] = 0.0
    choice = np.full((T + 1, B + 1), -1, dtype=np.int32)
    left = int(np.count_nonzero(targets & ~reach[T]))
    for k, (t, b, latency) in enumerate(items):
        if left == 0 or latency > limit:
            break
        if reach[t, b]:
            continue
        grown = closed_under(reach, t, b)
        new = grown & ~reach
        choice[new] = k
        row[new[T]] = latency
        left -= int(np.count_nonzero(new[T] & targets))
        reach = grown
    return row, choice


def _allow_idle(exact: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Idle cores allowed: best[t, b] = min over t' <= t of exact[t', b], and that t'
    (the fewest cores among equal latencies)."""
    best = exact.copy()
    used = np.zeros(exact.shape, dtype=np.int32)
    for t in range(1, exact.shape[0]):
        better = exact[t] < best[t - 1]
        best[t] = np.where(better, exact[t], best[t - 1])
        used[t] = np.where(better, t, used[t - 1])
    return best, used


def _infeasible_message(profile: Profile, cores: int, batch: int, options: OptimizerOptions) -> str:
    sizes = sorted({b for _, b, _ in profile_items(profile, cores, batch, options)})
    rule = "exactly" if options.exact_cores else "at most"
    limits = options.limits(cores)
    return (
        f"batch {batch} cannot be covered on {rule} {cores} cores with the profiled sub-batches "
        f"{sizes or 'none'} of {profile.model!r}"
        + (f" ({', '.join(limits)})" if limits else "")
    )


def homogeneous_plan(profile: Profile, batch: int, cores: int, options: OptimizerOptions | None = None) -> Plan:
    """Best plan of k identical instances (t', b') with k * b' = batch and k * t' within
    the cores (== cores when ``exact_cores``). Ties: (latency, threads, batch) order."""
    options = options or OptimizerOptions(homogeneous=True)
    _check_problem(profile, batch, cores)
    caps = socket_capacities(cores, options.cores_per_socket)
    for t, b, lat in profile_items(profile, cores, batch, options):
        if batch % b:
            continue
        k = batch // b
        if options.max_instances is not None and k > options.max_instances:
            continue
        if _identical_fit(k, t, caps, options.exact_cores):
            return Plan(tuple(Instance(t, b) for _ in range(k)), batch, cores, predicted_ms=lat)
    raise OptimizerError(_infeasible_message(profile, cores, batch, options))


def _identical_fit(k: int, t: int, caps: Sequence[int], exact: bool) -> bool:
    """Whether k instances of t threads pack into sockets of ``caps`` cores (every socket
    full when ``exact``). With one socket this is k*t == T, or k*t <= T with idle cores."""
    if exact:
        return k * t == sum(caps) and all(c % t == 0 for c in caps)
    return sum(c // t for c in caps) >= k


def optimize(profile: Profile, batch: int, cores: int, options: OptimizerOptions | None = None) -> Plan:
    """The optimal plan for one (batch, cores); raises OptimizerError if none exists."""
    options = options or OptimizerOptions()
    if options.homogeneous:
        return homogeneous_plan(profile, batch, cores, options)
    if options.constrained:
        return constrained_plan(profile, batch, cores, options)
    check_problem(profile, batch, cores, options)
    return PlanTable(profile, cores, batch, options).plan(cores, batch)


def check_problem(profile: Profile, batch: int, cores: int, options: OptimizerOptions) -> None:
    """The checks :func:`optimize` makes before it searches, with the same OptimizerErrors:
    batch and cores valid for the profile and, except for homogeneous plans, a batch the
    cores can cover and tables within the memory limit."""
    _check_problem(profile, batch, cores)
    if not options.homogeneous:
        _check_size(profile, batch, cores, max(socket_capacities(cores, options.cores_per_socket)))


def cell_plan(items: Sequence[Item], cores: int, batch: int, limit: float = math.inf, *,
              inclusive: bool = True) -> Plan | None:
    """The exact-cores optimum of the one cell (cores, batch) over ``items`` (ranked as
    :func:`profile_items` ranks them: by (latency, threads, batch)), or None when it is
    infeasible or worse than ``limit`` ms (above it, or equal to it unless ``inclusive``).

    The threshold sweep of :class:`PlanTable` (module doc) stopped early: at the first item
    whose closure reaches (cores, batch), whose latency is then the optimum, or at the first
    item beyond ``limit``. A cell's choice is set once, when it first becomes reachable, so
    every choice stored by then is the one the full table stores, and the walk back returns
    the plan ``PlanTable(..., exact_cores=True).plan(cores, batch)`` returns, with the same
    ``predicted_ms``. Items with more threads or a larger batch than the cell are ignored.
    """
    T, B = int(cores), int(batch)
    reach = np.zeros((T + 1, B + 1), dtype=bool)
    reach[0, 0] = True
    choice = np.full((T + 1, B + 1), -1, dtype=np.int32)
    for k, (t, b, latency) in enumerate(items):
        if latency > limit or (latency == limit and not inclusive):
            return None
        if t > T or b > B or reach[t, b]:
            continue
        grown = closed_under(reach, t, b)
        choice[grown & ~reach] = k
        reach = grown
        if reach[T, B]:
            return Plan(walk_back(choice, items, T, B), B, T, predicted_ms=float(latency))
    return None


# ------------------------------------------------------- user constraints (sockets, count)


def socket_capacities(cores: int, cores_per_socket: int | None) -> tuple[int, ...]:
    """Cores of each socket when ``cores`` cores are split into sockets of
    ``cores_per_socket`` (see OptimizerOptions): e.g. (16, 16, 8) for 40 cores by 16.
    None, or a socket at least as large as ``cores``: one socket ``(cores,)``."""
    if cores_per_socket is None or cores_per_socket >= cores:
        return (cores,)
    full, rest = divmod(cores, cores_per_socket)
    return (cores_per_socket,) * full + ((rest,) if rest else ())


_NONE = np.int64(1 << 40)  # "no way": larger than any instance count


def _close_counts(cnt: np.ndarray, items: Sequence[Item]) -> None:
    """Add ``items`` (unbounded copies) to the min-count table ``cnt`` in place:
    cnt[u, b] = fewest instances with threads summing to u and sub-batches to b."""
    U, B1 = cnt.shape
    for t, b, _ in items:
        if t >= U or b >= B1:
            continue
        dt, db, k = t, b, 1
        while dt < U and db < B1:
            np.minimum(cnt[dt:, db:], cnt[: U - dt, : B1 - db] + k, out=cnt[dt:, db:])
            dt, db, k = 2 * dt, 2 * db, 2 * k


def _socket_row(cnt: np.ndarray, cap: int, exact: bool) -> np.ndarray:
    """g[b]: fewest instances one socket of ``cap`` cores needs to serve b inputs."""
    return cnt[cap].copy() if exact else cnt[: cap + 1].min(axis=0)


def _min_plus(f: np.ndarray, g: np.ndarray) -> np.ndarray:
    """out[b] = min over b' of f[b - b'] + g[b'] (both indexed by batch 0..B)."""
    out = np.full_like(f, _NONE)
    n = len(f)
    for bp in np.flatnonzero(g < _NONE):
        np.minimum(out[bp:], f[: n - bp] + g[bp], out=out[bp:])
    np.minimum(out, _NONE, out=out)
    return out


def _socket_prefixes(cnt: np.ndarray, caps: Sequence[int], exact: bool) -> list[np.ndarray]:
    """P[i][b]: fewest instances the first i sockets need to serve b inputs (P[0]: none)."""
    first = np.full(cnt.shape[1], _NONE)
    first[0] = 0
    prefixes = [first]
    rows: dict[int, np.ndarray] = {}
    for cap in caps:
        if cap not in rows:
            rows[cap] = _socket_row(cnt, cap, exact)
        prefixes.append(_min_plus(prefixes[-1], rows[cap]))
    return prefixes


def constrained_plan(profile: Profile, batch: int, cores: int, options: OptimizerOptions) -> Plan:
    """The optimal plan under ``max_instances`` and/or ``cores_per_socket`` (module doc).

    Exact, and equal to the brute force on every problem; among latency-optimal plans
    it returns one with the fewest instances. The returned plan's instances are not
    pinned (``cores`` empty); ``socket_capacities`` gives the sockets they were packed
    into. Raises OptimizerError when no plan satisfies the constraints.
    """
    _check_problem(profile, batch, cores)
    if options.homogeneous:
        return homogeneous_plan(profile, batch, cores, options)
    caps = socket_capacities(cores, options.cores_per_socket)
    _check_size(profile, batch, cores, max(caps))
    items = profile_items(profile, cores, batch, options)
    limit = _NONE - 1 if options.max_instances is None else options.max_instances
    exact = options.exact_cores
    # group ends: items[:ends[g]] are the items of latency <= the g-th distinct latency
    ends = [k + 1 for k in range(len(items)) if k + 1 == len(items) or items[k + 1][2] != items[k][2]]

    def feasible(cnt: np.ndarray) -> bool:
        return bool(_socket_prefixes(cnt, caps, exact)[-1][batch] <= limit)

    def extend(cnt: np.ndarray, g_from: int, g_to: int) -> np.ndarray:
        out = cnt.copy()
        _close_counts(out, items[(ends[g_from] if g_from >= 0 else 0) : ends[g_to]])
        return out

    empty = np.full((max(caps) + 1, batch + 1), _NONE)
    empty[0, 0] = 0
    lo, lo_cnt = -1, empty  # group lo is known infeasible (-1: no items at all)
    hi: int | None = None
    hi_cnt, step = empty, 1  # hi_cnt is the counts of group hi, set with hi
    while hi is None:
        if lo == len(ends) - 1:
            raise OptimizerError(_infeasible_message(profile, cores, batch, options))
        g = min(lo + step, len(ends) - 1)
        cnt = extend(lo_cnt, lo, g)
        if feasible(cnt):
            hi, hi_cnt = g, cnt
        else:
            lo, lo_cnt, step = g, cnt, step * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        cnt = extend(lo_cnt, lo, mid)
        if feasible(cnt):
            hi, hi_cnt = mid, cnt
        else:
            lo, lo_cnt = mid, cnt
    instances = _read_back(hi_cnt, items[: ends[hi]], caps, exact, batch)
    return Plan(tuple(instances), batch, cores, predicted_ms=items[ends[hi] - 1][2])


def _read_back(cnt: np.ndarray, items: Sequence[Item], caps: Sequence[int], exact: bool, batch: int) -> list[Instance]:
    """A plan realising the minimal count of ``cnt`` for ``batch``: split the batch over the
    sockets (largest share first, from the last socket), then walk each socket's cell back
    to (0, 0) one item at a time, taking the first item (rank order) that keeps the count
    minimal. Integer equalities only."""
    prefixes = _socket_prefixes(cnt, caps, exact)
    instances: list[Instance] = []
    b_left = batch
    for i in range(len(caps), 0, -1):
        cap, before, total = caps[i - 1], prefixes[i - 1], prefixes[i][b_left]
        row = _socket_row(cnt, cap, exact)
        share = next(
            bp for bp in range(b_left, -1, -1) if row[bp] < _NONE and before[b_left - bp] + row[bp] == total
        )
        u = cap if exact else next(u for u in range(cap + 1) if cnt[u, share] == row[share])
        b = share
        while (u, b) != (0, 0):
            need = cnt[u, b] - 1
            t_i, b_i, _ = next(it for it in items if it[0] <= u and it[1] <= b and cnt[u - it[0], b - it[1]] == need)
            instances.append(Instance(t_i, b_i))
            u, b = u - t_i, b - b_i
        b_left -= share
    return instances


# ------------------------------------------------------------------ references


def direct_table(profile: Profile, cores: int, batch: int, options: OptimizerOptions | None = None) -> list[list[float]]:
    """Packrat's recurrence evaluated directly with four nested loops (pure Python).

    The reference the vectorised sweep is benchmarked and tested against: O(T^2 B^2)
    over a dense latency matrix where unprofiled cells are inf. It ignores
    ``max_instances`` and the packing into sockets (``brute_force`` honours them).
    """
    options = options or OptimizerOptions()
    _check_problem(profile, batch, cores)
    T, B = cores, batch
    L = [[math.inf] * (B + 1) for _ in range(T + 1)]
    for t, b, lat in profile_items(profile, cores, batch, options):
        L[t][b] = lat
    inf = math.inf
    opt = [[inf] * (B + 1) for _ in range(T + 1)]
    for t in range(T + 1):
        opt[t][0] = 0.0 if (t == 0 or not options.exact_cores) else inf
    for t in range(1, T + 1):
        row = opt[t]
        for b in range(1, B + 1):
            best = inf
            for ti in range(1, t + 1):
                prev = opt[t - ti]
                lrow = L[ti]
                for bi in range(1, b + 1):
                    cand = lrow[bi]
                    if cand >= best:
                        continue
                    p = prev[b - bi]
                    cand = max(cand, p)
                    best = min(best, cand)
            row[b] = best
    return opt


def brute_force(profile: Profile, batch: int, cores: int, options: OptimizerOptions | None = None) -> tuple[float, tuple[Item, ...]]:
    """Enumerate every multiset of profiled items covering ``batch`` exactly; return the
    minimal bottleneck latency and one multiset achieving it (inf, () if none).

    Exponential: for tests on small T and B only. With ``max_instances`` or
    ``cores_per_socket`` it enumerates socket by socket (``_brute_force_sockets``).
    """
    options = options or OptimizerOptions()
    _check_problem(profile, batch, cores)
    if options.constrained:
        return _brute_force_sockets(profile, batch, cores, options)
    items = sorted(profile_items(profile, cores, batch, options), key=lambda it: (it[0], it[1]))

    @cache
    def best(i: int, t_left: int, b_left: int) -> tuple[float, tuple[Item, ...]]:
        if b_left == 0 and (t_left == 0 or not options.exact_cores):
            return 0.0, ()
        if i == len(items):
            return math.inf, ()
        t, b, lat = items[i]
        result = best(i + 1, t_left, b_left)
        for k in itertools.count(1):
            if k * t > t_left or k * b > b_left:
                break
            sub: tuple[float, tuple[Item, ...]]
            if options.homogeneous:
                if k * b == b_left and (k * t == t_left or not options.exact_cores):
                    sub = (0.0, ())
                else:
                    continue
            else:
                sub = best(i + 1, t_left - k * t, b_left - k * b)
            cand = max(sub[0], lat)
            if cand < result[0]:
                result = (cand, sub[1] + (items[i],) * k)
        return result

    return best(0, cores, batch)


def _brute_force_sockets(profile: Profile, batch: int, cores: int, options: OptimizerOptions) -> tuple[float, tuple[Item, ...]]:
    """Brute force under the user constraints: fill the sockets one after the other, each
    with a multiset of items within its cores (exactly its cores with ``exact_cores``),
    counting instances against ``max_instances``. Exponential; tests only."""
    caps = socket_capacities(cores, options.cores_per_socket)
    items = sorted(profile_items(profile, cores, batch, options), key=lambda it: (it[0], it[1]))
    limit = batch if options.max_instances is None else options.max_instances
    if options.homogeneous:
        best_h: tuple[float, tuple[Item, ...]] = (math.inf, ())
        for it in items:
            t, b, lat = it
            if (batch % b == 0 and batch // b <= limit and _identical_fit(batch // b, t, caps, options.exact_cores)
                    and lat < best_h[0]):
                best_h = (lat, (it,) * (batch // b))
        return best_h

    @cache
    def best(s: int, i: int, c_left: int, b_left: int, n_left: int) -> tuple[float, tuple[Item, ...]]:
        if i == len(items):  # this socket is done
            if options.exact_cores and c_left:
                return math.inf, ()
            if s + 1 == len(caps):
                return (0.0, ()) if b_left == 0 else (math.inf, ())
            return best(s + 1, 0, caps[s + 1], b_left, n_left)
        t, b, lat = items[i]
        result = best(s, i + 1, c_left, b_left, n_left)
        for k in itertools.count(1):
            if k * t > c_left or k * b > b_left or k > n_left:
                break
            sub = best(s, i + 1, c_left - k * t, b_left - k * b, n_left - k)
            cand = max(sub[0], lat)
            if cand < result[0]:
                result = (cand, sub[1] + (items[i],) * k)
        return result

    return best(0, 0, caps[0], batch, limit)
