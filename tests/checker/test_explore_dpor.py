"""The DPOR family's bookkeeping: the trace bitmasks that answer "which trace entries are
dependent with this transition" must agree exactly with the pairwise dependency relation, and the
incremental race check must leave every count unchanged."""

from __future__ import annotations

import itertools
import random

import pytest

from checker.actors import Event
from checker.explore import explore
from checker.explore.dpor import _dependent, _Masks, _T

RECEIVERS = ("p0", "p1", "c0")
KEYS = (None, 0, 1)


def transition(rng: random.Random, index: int) -> _T:
    """A random transition: a fault one time in eight, else a delivery with random facts."""
    dst = rng.choice(RECEIVERS)
    if rng.random() < 0.125:
        return _T(("crash", dst), Event("crash", None, dst, None), dst, None, False, False, False, True, -1, None)
    key = rng.choice(KEYS)
    inv, ret, ro = rng.random() < 0.3, rng.random() < 0.3, rng.random() < 0.4
    return _T((index, 0), Event("deliver", "x", dst, ("m", index)), dst, key, inv, ret, ro, False, -1, (index, 0))


@pytest.mark.parametrize("keyed, coarse", list(itertools.product((False, True), (False, True))))
def test_the_trace_masks_name_exactly_the_dependent_entries_as_the_trace_grows_and_shrinks(keyed, coarse):
    rng = random.Random(17)
    masks = _Masks(keyed, coarse)
    trace: list[_T] = []
    for step in range(600):
        if trace and rng.random() < 0.35:
            trace.pop()
            masks.pop(len(trace))
        else:
            t = transition(rng, step)
            masks.push(t, len(trace))
            trace.append(t)
        probe = transition(rng, 10_000 + step)
        expected = sum(1 << i for i, u in enumerate(trace) if _dependent(u, probe, keyed, coarse))
        assert masks.dependent(probe, len(trace)) == expected


@pytest.mark.parametrize("strategy", ["dpor", "transdpor", "keyaware"])
def test_the_dpor_family_keeps_its_pinned_counts_on_the_three_replica_abd_register_with_one_read(strategy):
    # pinned before the bitmask and incremental race bookkeeping (which must change no decision)
    expected = {"dpor": (1637, 2128, 4503), "transdpor": (1620, 2108, 4436), "keyaware": (1520, 2088, 4307)}[strategy]
    result = explore("register", strategy, variant="abd", params={"reads": 1})
    assert result.ok and result.complete and result.distinct_histories == 2
    assert (result.schedules, result.states, result.transitions) == expected
