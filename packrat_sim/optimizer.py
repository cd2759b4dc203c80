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

Pure functions; numpy only.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

from packrat_sim.plan import Instance, Plan
from packrat_sim.profile import Profile


class OptimizerError(ValueError):
    """Bad optimizer input, or a batch the profile cannot cover; names the value."""


@dataclass(frozen=True)
class OptimizerOptions:
    """Options of the search (all default to Packrat's behaviour).

    * ``exact_cores``: use exactly T threads in total (Packrat's rule); False allows idle cores.
    * ``homogeneous``: only k identical instances.
    * ``min_batch``: smallest sub-batch an instance may get.
    * ``max_threads_per_instance``: e.g. cores per socket (an instance never spans one).
    * ``statistic``: which per-cell statistic is the latency (None: the profile's own).
    """

    exact_cores: bool = True
    homogeneous: bool = False
    min_batch: int = 1
    max_threads_per_instance: int | None = None
    statistic: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.min_batch, bool) or not isinstance(self.min_batch, int) or self.min_batch < 1:
            raise OptimizerError(f"min_batch must be a positive integer, got {self.min_batch!r}")
        m = self.max_threads_per_instance
        if m is not None and (isinstance(m, bool) or not isinstance(m, int) or m < 1):
            raise OptimizerError(f"max_threads_per_instance must be a positive integer, got {m!r}")


Item = tuple[int, int, float]  # (threads, batch, latency_ms)


def profile_items(profile: Profile, cores: int, batch: int, options: OptimizerOptions) -> list[Item]:
    """The profiled cells usable as instances for (cores, batch) under ``options``,
    ranked by (latency, threads, batch) ascending (the tie-breaking order)."""
    limit_t = cores if options.max_threads_per_instance is None else min(cores, options.max_threads_per_instance)
    items = [
        (t, b, lat)
        for t, b, lat in profile.items(options.statistic)
        if t <= limit_t and options.min_batch <= b <= batch
    ]
    items.sort(key=lambda it: (it[2], it[0], it[1]))
    return items


def _check_problem(profile: Profile, batch: int, cores: int) -> None:
    for name, value in (("batch", batch), ("cores", cores)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise OptimizerError(f"{name} must be a positive integer, got {value!r}")
    if cores > profile.max_threads:
        raise OptimizerError(
            f"cores={cores} is beyond the profiled threads (the profile of {profile.model!r} "
            f"goes up to {profile.max_threads}); profile this machine up to {cores} threads"
        )


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
        self.profile = profile
        self.cores = int(cores)
        self.batch = int(batch)
        self.options = options
        self.items = profile_items(profile, cores, batch, options)
        self._exact_lat, self._choice = _sweep(self.items, self.cores, self.batch)
        if options.exact_cores:
            self._lat = self._exact_lat
            self._cores_used = None
        else:
            self._lat, self._cores_used = _allow_idle(self._exact_lat)

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
        b = batch
        instances = []
        while (t, b) != (0, 0):
            k = int(self._choice[t, b])
            it_t, it_b, _ = self.items[k]
            instances.append(Instance(it_t, it_b))
            t, b = t - it_t, b - it_b
        return Plan(tuple(instances), batch, cores, predicted_ms=float(lat))


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
        grown = reach.copy()
        dt, db = t, b
        while dt <= T and db <= B:
            np.bitwise_or(grown[dt:, db:], grown[: T + 1 - dt, : B + 1 - db], out=grown[dt:, db:])
            dt, db = 2 * dt, 2 * db
        new = grown & ~reach
        lat[new] = latency
        choice[new] = k
        remaining -= int(np.count_nonzero(new))
        reach = grown
        if remaining == 0:
            break
    return lat, choice


def _allow_idle(exact: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Idle cores allowed: best[t, b] = min over t' <= t of exact[t', b], and that t'
    (the fewest cores among equal latencies)."""
    best = exact.copy()
    used = np.zeros(exact.shape, dtype=np.int32)
    used[0, :] = 0
    for t in range(1, exact.shape[0]):
        better = exact[t] < best[t - 1]
        best[t] = np.where(better, exact[t], best[t - 1])
        used[t] = np.where(better, t, used[t - 1])
    return best, used


def _infeasible_message(profile: Profile, cores: int, batch: int, options: OptimizerOptions) -> str:
    sizes = sorted({b for _, b, _ in profile_items(profile, cores, batch, options)})
    rule = "exactly" if options.exact_cores else "at most"
    return (
        f"batch {batch} cannot be covered on {rule} {cores} cores with the profiled sub-batches "
        f"{sizes or 'none'} of {profile.model!r}"
        + (" (homogeneous only)" if options.homogeneous else "")
    )


def homogeneous_plan(profile: Profile, batch: int, cores: int, options: OptimizerOptions | None = None) -> Plan:
    """Best plan of k identical instances (t', b') with k * b' = batch and k * t' within
    the cores (== cores when ``exact_cores``). Ties: (latency, threads, batch) order."""
    options = options or OptimizerOptions(homogeneous=True)
    _check_problem(profile, batch, cores)
    for t, b, lat in profile_items(profile, cores, batch, options):
        if batch % b:
            continue
        k = batch // b
        used = k * t
        if used == cores or (not options.exact_cores and used <= cores):
            return Plan(tuple(Instance(t, b) for _ in range(k)), batch, cores, predicted_ms=lat)
    raise OptimizerError(_infeasible_message(profile, cores, batch, options))


def optimize(profile: Profile, batch: int, cores: int, options: OptimizerOptions | None = None) -> Plan:
    """The optimal plan for one (batch, cores); raises OptimizerError if none exists."""
    options = options or OptimizerOptions()
    if options.homogeneous:
        return homogeneous_plan(profile, batch, cores, options)
    return PlanTable(profile, cores, batch, options).plan(cores, batch)


# ------------------------------------------------------------------ references


def direct_table(profile: Profile, cores: int, batch: int, options: OptimizerOptions | None = None) -> list[list[float]]:
    """Packrat's recurrence evaluated directly with four nested loops (pure Python).

    The reference the vectorised sweep is benchmarked and tested against: O(T^2 B^2)
    over a dense latency matrix where unprofiled cells are inf.
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
                    if p > cand:
                        cand = p
                    if cand < best:
                        best = cand
            row[b] = best
    return opt


def brute_force(profile: Profile, batch: int, cores: int, options: OptimizerOptions | None = None) -> tuple[float, tuple[Item, ...]]:
    """Enumerate every multiset of profiled items covering ``batch`` exactly; return the
    minimal bottleneck latency and one multiset achieving it (inf, () if none).

    Exponential: for tests on small T and B only.
    """
    options = options or OptimizerOptions()
    _check_problem(profile, batch, cores)
    items = sorted(profile_items(profile, cores, batch, options), key=lambda it: (it[0], it[1]))

    @lru_cache(maxsize=None)
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
