"""Soundness sweep of the explorer's reductions: on seeded pseudo-random actor systems, every
reduced search must find exactly the distinct histories and violated properties of plain stateful
DFS. The CI property tests run 60 systems each; this runs thousands, as anyone changing
``checker/explore/`` should (a join bug of stateful DPOR surfaced only after about 2,000).

Systems: 1-3 servers, 1-2 clients, unordered or FIFO networks, no faults or a budget of drops,
duplicates, crashes or crashes with restarts, often built to commute (``random_protocol`` of
``tests/checker/explore_helpers.py``). Systems whose plain DFS exceeds its schedule budget are
skipped. Exits 1 when a configuration disagrees, printing the system's arguments to reproduce it.

    .venv/bin/python benchmarks/explore_soundness.py [--seed N] [--minutes M] [--systems N]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.checker.explore_helpers import DPOR_RUNS, FAULT_BUDGETS, everything, plain_dfs, random_protocol  # noqa: E402

# the CI property's configurations, and more: DS2's IRed, DPIRed and DPLiViola (tests/checker/explore/
# test_ired_soundness.py; dpliviola's histories equal plain DFS's here: the random systems have no keys)
CONFIGS = {"dfs": ("dfs", {}), **DPOR_RUNS, "stateless keyaware": ("keyaware", {"state_cache": False}),
           "stateful ired": ("ired", {}), "stateful dpired": ("dpired", {}),
           "stateless dpired": ("dpired", {"state_cache": False}), "stateful dpliviola": ("dpliviola", {})}
REDUCED_SECONDS = 60  # a reduced search's budget; one that runs out is reported, not compared


def system_args(rng: random.Random) -> tuple:
    """The arguments of one pseudo-random system (``random_protocol``'s), drawn from ``rng``."""
    return (rng.randrange(10**6), rng.randint(1, 3), rng.randint(1, 2), rng.randint(1, 2),
            rng.choice(["unordered", "fifo"]), rng.choice(FAULT_BUDGETS), rng.random() < 0.7)


def disagreements(args: tuple) -> list[str] | None:
    """The configurations that disagree with plain DFS on the system ``args`` (a label each, with
    "incomplete" for one whose budget ran out), or None when plain DFS itself did not finish.
    Stateless runs are skipped on faulty systems of more than two actors (slow, not informative)."""
    protocol = random_protocol(*args)
    reference = plain_dfs(protocol)
    if not reference.complete:
        return None
    out = []
    for label, (strategy, switches) in CONFIGS.items():
        if args[5] and "state_cache" in switches and args[1] * args[2] > 2:
            continue
        run = everything(protocol, strategy, max_time=REDUCED_SECONDS, **switches)
        if not run.complete:
            out.append(f"{label}: incomplete")
        elif run.histories != reference.histories or run.violations != reference.violations:
            out.append(label)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="seed of the systems drawn (default 0)")
    parser.add_argument("--minutes", type=float, default=10.0, help="stop after this long (default 10)")
    parser.add_argument("--systems", type=int, default=None, help="stop after this many compared systems")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    end = time.monotonic() + 60 * args.minutes
    compared = skipped = 0
    bad: list[tuple] = []
    while time.monotonic() < end and (args.systems is None or compared < args.systems):
        drawn = system_args(rng)
        found = disagreements(drawn)
        if found is None:
            skipped += 1
            continue
        compared += 1
        mismatches = [f for f in found if not f.endswith("incomplete")]
        if found:
            print(f"{'MISMATCH' if mismatches else 'incomplete'} random_protocol{drawn}: {', '.join(found)}", flush=True)
        if mismatches:
            bad.append(drawn)
        if compared % 100 == 0:
            print(f"{compared} systems compared, {len(bad)} with a mismatch, {skipped} skipped", flush=True)
    print(f"done: {compared} systems compared (seed {args.seed}), {len(bad)} with a mismatch, "
          f"{skipped} skipped (plain DFS over its budget)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
