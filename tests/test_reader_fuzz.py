"""Mutation fuzz of every input reader (issue 29), small and seeded: each reader gets
:data:`INPUTS` mutated inputs; none may end in a traceback, a hang or a silently dropped line.
``benchmarks/fuzz_readers.py`` runs the same fuzz longer."""

from __future__ import annotations

import pytest

from tests.reader_fuzz_helpers import READERS, fuzz_reader

INPUTS = 150
SEED = 29


@pytest.mark.parametrize("reader", READERS, ids=lambda r: r.name.replace(" ", "-"))
def test_no_mutated_input_ends_in_a_traceback_a_hang_or_a_dropped_line(reader, tmp_path):
    counts = fuzz_reader(reader, INPUTS, SEED, timeout_s=20.0, workdir=tmp_path)
    assert counts.inputs == INPUTS
    assert counts.accepted + counts.refused == INPUTS, "\n".join(
        f"{outcome}: {detail}\n  input: {data[:300]!r}" for outcome, detail, data in counts.examples)
    assert counts.refused > 0  # the mutations reach the readers' checks
