"""Random co-run models (a base curve and per-thread-count curves) and every plan of a small
problem, for the properties that hold the DP and Z3 under interference against brute force."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache

from hypothesis import strategies as st

from packrat_sim.plan import Instance, Plan
from packrat_sim.profile import Cell, Interference, Profile, ThreadCurve

#: Slowdowns of random models: a few round values, so that scaled latencies tie often, or any in 0.8..3.
SLOWDOWNS = st.sampled_from([1.0, 1.5, 2.0]) | st.floats(0.8, 3.0)


@st.composite
def curve_points(draw: st.DrawFn, max_cores: int) -> tuple[tuple[int, float], ...]:
    """1 to 3 (other busy cores, slowdown) points, cores increasing in 1..``max_cores``."""
    cores = sorted(draw(st.sets(st.integers(1, max(1, max_cores)), min_size=1, max_size=3)))
    return tuple((k, draw(SLOWDOWNS)) for k in cores)


@st.composite
def random_models(draw: st.DrawFn, max_threads: int) -> Interference:
    """A random co-run model for up to ``max_threads`` cores: a base curve and, for a random
    non-empty subset of the thread counts 1..``max_threads``, a curve of their own."""
    base = draw(curve_points(max_threads))
    threads = sorted(draw(st.sets(st.integers(1, max_threads), min_size=1, max_size=max_threads)))
    curves = tuple(ThreadCurve(t, draw(curve_points(max_threads))) for t in threads)
    return Interference(points=base, curves=curves)


@st.composite
def dense_profiles(draw: st.DrawFn, max_threads: int, max_batch: int) -> tuple[Profile, int]:
    """A random profile on a grid of T x B cells (T in 2..``max_threads``, B in 2..``max_batch``)
    with at least half the cells (so most problems have several plans), latencies often tied;
    and B."""
    T, B = draw(st.integers(min(2, max_threads), max_threads)), draw(st.integers(min(2, max_batch), max_batch))
    keys = st.tuples(st.integers(1, T), st.integers(1, B))
    latencies = st.sampled_from([2.0, 3.0, 5.0]) | st.floats(0.5, 50)
    table = draw(st.dictionaries(keys, latencies, min_size=max(1, T * B // 2), max_size=T * B))
    cells = tuple(Cell(threads=t, batch=b, mean_ms=v, min_ms=v, max_ms=v) for (t, b), v in table.items())
    return Profile(model="r", cells=cells), B


def every_plan(profile: Profile, batch: int, cores: int, exact: bool) -> Iterator[Plan]:
    """Every multiset of the profile's cells with threads summing to at most ``cores``
    (exactly ``cores`` when ``exact``) and sub-batches summing to ``batch``, as plans."""
    items = sorted({(c.threads, c.batch) for c in profile.cells if c.threads <= cores})

    @cache
    def multisets(i: int, t_left: int, b_left: int) -> tuple[tuple[tuple[int, int], ...], ...]:
        if b_left == 0:
            return ((),)
        if i == len(items):
            return ()
        t, b = items[i]
        out = list(multisets(i + 1, t_left, b_left))
        k = 1
        while k * t <= t_left and k * b <= b_left:
            out += [m + ((t, b),) * k for m in multisets(i + 1, t_left - k * t, b_left - k * b)]
            k += 1
        return tuple(out)

    for m in multisets(0, cores, batch):
        if m and (not exact or sum(t for t, _ in m) == cores):
            yield Plan(tuple(Instance(t, b) for t, b in m), batch, cores)


def price(plan: Plan, profile: Profile) -> float:
    """The objective written out independently of the predictor: the dispatch cost for the
    plan's instance count plus the slowest instance's mean latency times s_t(U - t)."""
    model = profile.interference
    busy = plan.threads_used
    worst = 0.0
    for i in plan.instances:
        ms = profile.latency(i.threads, i.batch)
        assert ms is not None
        worst = max(worst, ms * (1.0 if model is None else model.slowdown(busy - i.threads, i.threads)))
    return profile.dispatch_ms(len(plan.instances), plan.batch) + worst
