"""Mutation fuzz of every input reader (issue 29), longer than the CI test
(``tests/test_reader_fuzz.py``, 150 inputs a reader): profile JSON, Packrat CSV, plan files,
history JSON, Jepsen logs, Porcupine kv EDN, workload specs, sweep grids (TOML and JSON) and
replay files. Each input is a valid seed with 1-4 mutations, read as the CLI reads it (see
``tests/reader_fuzz_helpers.py``); it must be accepted or refused with one printable error line
(PackratError), never end in a traceback, a hang or a silently dropped line.

Prints, per reader: inputs, refused cleanly, accepted, tracebacks, hangs, silently dropped lines,
seconds; then up to three examples of each reader's failures. Exits 1 when any input failed.
Seeded: the same ``--seed`` and ``--inputs`` give the same inputs.

    .venv/bin/python benchmarks/fuzz_readers.py [--inputs N] [--seed S] [--reader NAME] [--timeout S]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.reader_fuzz_helpers import HEADER, READERS, fuzz_reader  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inputs", type=int, default=1000, help="mutated inputs per reader (default 1000)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the mutations (default 1)")
    ap.add_argument("--reader", action="append", default=[],
                    help="fuzz only this reader (repeatable): " + ", ".join(r.name for r in READERS))
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds an input may take before it counts as a hang")
    args = ap.parse_args(argv)
    chosen = [r for r in READERS if not args.reader or r.name in args.reader]
    unknown = set(args.reader) - {r.name for r in READERS}
    if unknown or args.inputs < 1:
        ap.error(f"unknown reader(s) {sorted(unknown)}" if unknown else "--inputs must be at least 1")
    print(f"fuzz: {args.inputs} inputs per reader, seed {args.seed}")
    print(HEADER)
    results = []
    for reader in chosen:
        counts = fuzz_reader(reader, args.inputs, args.seed, timeout_s=args.timeout, keep_examples=3)
        results.append(counts)
        print(counts.row(), flush=True)
    total_inputs = sum(c.inputs for c in results)
    total_bad = sum(c.bad for c in results)
    for counts in results:
        for outcome, detail, data in counts.examples:
            print(f"\n{counts.reader}: {outcome}: {detail}\n  input: {data[:400]!r}")
    print(f"\ndone: {total_inputs} inputs over {len(results)} readers (seed {args.seed}), {total_bad} failed")
    return 1 if total_bad else 0


if __name__ == "__main__":
    sys.exit(main())
