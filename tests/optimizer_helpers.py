"""Small profiles for the optimizer's tests and the checker's certificates: a profile from a
table of latencies, and random small profiles (missing cells, often tied latencies) for the
properties that compare the DP with the brute force or with Z3."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from packrat_sim.profile import Cell, Profile

#: Latencies of random profiles: a few round values, so that ties are frequent, or any in 0.1..100 ms.
LATENCIES = st.sampled_from([1.0, 2.0, 3.0, 5.0, 8.0]) | st.floats(0.1, 100.0)


def profile_of(table: dict[tuple[int, int], float], model: str = "t", **fields: Any) -> Profile:
    """A profile of ``model`` whose cell (threads, batch) has the latency ``table[threads, batch]``
    (min = mean = max); ``fields``: other Profile fields (interference, dispatch)."""
    return Profile(
        model=model,
        cells=tuple(Cell(threads=t, batch=b, mean_ms=v, min_ms=v, max_ms=v) for (t, b), v in table.items()),
        **fields,
    )


@st.composite
def random_profiles(draw: st.DrawFn, max_threads: int, max_batch: int, latencies: st.SearchStrategy = LATENCIES
                    ) -> tuple[Profile, int]:
    """A random profile on a grid of T x B cells (T in 1..``max_threads``, B in 1..``max_batch``)
    with at least one cell, some missing, latencies drawn from ``latencies``; and B."""
    T = draw(st.integers(1, max_threads))
    B = draw(st.integers(1, max_batch))
    cells = draw(st.dictionaries(st.tuples(st.integers(1, T), st.integers(1, B)), latencies, min_size=1, max_size=T * B))
    return profile_of(cells), B
