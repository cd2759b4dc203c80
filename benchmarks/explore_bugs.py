"""The bug-finding table: every strategy on every variant of every shipped protocol.

For every buggy variant (reconfig's seeded bugs, the erroneous registers, DS2's erroneous
register: every variant ``checker.protocols`` marks buggy, default parameters) and every strategy
of ``checker.explore.STRATEGIES`` (read from the registry, so strategies added later appear; then
bita under its other two criteria, pcr and pbr; bita's own row is its default, pr): the
schedules and the seconds to the first violation (no shrinking). A deterministic strategy runs
once; a sampling strategy (random, pct, bita) runs once per seed 0..N-1 and reports the median
over the seeds (a seed that did not find the bug within the budget counts as infinitely slow, so
the median is '-' when half of them or more missed) and how many seeds found it. For every
correct variant and every strategy that can prove (not the sampling ones): the schedules and
seconds to a complete proof (OK), or '>N' where the budget ran out first (delay-bounded: 'cut'
where its bound cut a choice, so it could not say OK). Then the buggy variants again at a larger
size (:data:`LARGER`: two clients and two instances per epoch, two readers), where the
strategies part ways. Last, per protocol, the strategy to pick
to find bugs (found every bug, every seed; least total seconds) and to prove (proved every
correct variant; least total seconds).

    .venv/bin/python benchmarks/explore.py --bug-table [--quick]
    .venv/bin/python benchmarks/explore_bugs.py [--quick] [--budget S] [--walk N] [--seeds N]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from checker.explore import SAMPLING_STRATEGIES, STRATEGIES, explore  # noqa: E402
from checker.protocols import PROTOCOLS, build  # noqa: E402


@dataclass(frozen=True)
class Size:
    """How hard the table tries: ``budget_s`` seconds per run, ``walk`` schedules per sampling
    run (within the same time budget), ``seeds`` runs per sampling strategy."""

    budget_s: float
    walk: int
    seeds: int


FULL = Size(budget_s=30.0, walk=20_000, seeds=10)
QUICK = Size(budget_s=0.3, walk=200, seeds=2)


# rows beyond the registry's strategies (with their default options): label -> (strategy, options)
EXTRA_ROWS: dict[str, tuple[str, dict]] = {
    "bita pcr": ("bita", {"bita_criterion": "pcr"}),
    "bita pbr": ("bita", {"bita_criterion": "pbr"}),
}


def rows() -> dict[str, tuple[str, dict]]:
    """The table's rows: every strategy of the registry (its default options), then :data:`EXTRA_ROWS`."""
    return {**{s: (s, {}) for s in STRATEGIES}, **EXTRA_ROWS}


@dataclass(frozen=True)
class Cell:
    """One strategy on one variant: ``goal`` ``"bug"`` (schedules and seconds to the first
    violation) or ``"proof"`` (to an OK); ``runs`` and ``found`` (runs that reached the goal);
    ``schedules`` and ``seconds``: the median (sampling) or the one run's figures, None when not
    reached; ``spent``: schedules of a run that did not reach it; ``note``: why not."""

    protocol: str
    variant: str
    strategy: str
    goal: str
    runs: int
    found: int
    schedules: float | None
    seconds: float | None
    spent: int = 0
    note: str = ""


def _median_or_none(values: list[float], runs: int) -> float | None:
    """The median of ``runs`` results of which ``values`` reached the goal (the others count as
    infinitely slow); None when half of the runs or more missed."""
    padded = sorted(values) + [math.inf] * (runs - len(values))
    m = statistics.median(padded)
    return None if math.isinf(m) else m


def bug_cell(protocol, label: str, size: Size, goal: str = "bug") -> Cell:
    """Schedules and seconds of the row ``label`` (:func:`rows`) to the first violation of ``protocol``."""
    strategy, options = rows()[label]
    sampling = strategy in SAMPLING_STRATEGIES
    seeds = range(size.seeds) if sampling else range(1)
    extra = {"max_schedules": size.walk, **options} if sampling else dict(options)
    hits: list[tuple[int, float]] = []
    spent, note = 0, ""
    for seed in seeds:
        r = explore(protocol, strategy, max_time=size.budget_s, seed=seed, shrink_counterexample=False, **extra)
        if r.violated and r.first_violation_at is not None:
            hits.append((r.first_violation_at, r.elapsed_s))
        else:
            spent, note = max(spent, r.schedules), _why_not(r.reason)
    runs = len(seeds)
    return Cell(protocol.name, protocol.variant, label, goal, runs, len(hits),
                _median_or_none([float(h[0]) for h in hits], runs), _median_or_none([h[1] for h in hits], runs),
                spent, note)


def _why_not(reason: str) -> str:
    """``cut`` where delay bounding's bound cut the search, else ``budget``."""
    return "cut" if "delays" in reason else "budget"


def proof_cell(protocol, label: str, size: Size) -> Cell:
    """Schedules and seconds of the row ``label`` (:func:`rows`) to a complete proof (OK) of ``protocol``."""
    strategy, options = rows()[label]
    r = explore(protocol, strategy, max_time=size.budget_s, shrink_counterexample=False, **options)
    if r.ok:
        return Cell(protocol.name, protocol.variant, label, "proof", 1, 1, float(r.schedules), r.elapsed_s)
    return Cell(protocol.name, protocol.variant, label, "proof", 1, 0, None, None, r.schedules, _why_not(r.reason))


# the larger size of the buggy variants (DS2's benchmark register keeps DS2's size)
LARGER: dict[str, dict] = {"reconfig": {"clients": 2, "instances": 2}, "register": {"readers": 2}}
FIXED_SIZE = frozenset({"ds2", "ds2-erroneous"})
GOALS = {"bug": "find bugs", "proof": "prove", "bug larger": "find bugs at the larger size"}


def cases() -> list[tuple[str, str, dict, str]]:
    """(protocol, variant, parameters, goal) for every variant of every registered protocol at
    its defaults (goal ``bug`` or ``proof``), then every buggy one at :data:`LARGER`."""
    out = [(spec.name, v, {}, "bug" if buggy else "proof")
           for spec in PROTOCOLS.values() for v, (_, buggy) in spec.variants.items()]
    return out + [(spec.name, v, LARGER.get(spec.name, {}), "bug larger")
                  for spec in PROTOCOLS.values() for v in spec.buggy_variants if v not in FIXED_SIZE]


def table(size: Size, progress=None) -> list[Cell]:
    """Every cell: each buggy variant under every row (:func:`rows`), each correct one under
    every row whose strategy can prove (``progress(cell)`` is told of each as it is done)."""
    cells = []
    for name, variant, params, goal in cases():
        protocol = build(name, variant, **params)
        for label, (strategy, _) in rows().items():
            if goal != "proof":
                cell = bug_cell(protocol, label, size, goal)
            elif strategy not in SAMPLING_STRATEGIES:
                cell = proof_cell(protocol, label, size)
            else:
                continue
            cells.append(cell)
            if progress is not None:
                progress(cell)
    return cells


def _seconds(s: float) -> str:
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.1f} s"


def _fmt(cell: Cell) -> str:
    """A cell of the markdown matrix: ``schedules (time)``, with ``found/runs`` for sampling;
    ``>N`` where no run reached the goal within the budget (N schedules), ``cut`` where delay
    bounding's bound cut the search, ``-`` where the median run missed it."""
    if cell.schedules is None or cell.seconds is None:
        text = "-" if cell.found else ("cut" if cell.note == "cut" else f">{cell.spent:,}")
    else:
        text = f"{cell.schedules:,.0f} ({_seconds(cell.seconds)})"
    if cell.runs > 1:
        text += f" {cell.found}/{cell.runs}"
    return text


def matrix(cells: list[Cell], goal: str) -> list[str]:
    """The markdown matrix of one goal: a row per strategy, a column per variant."""
    columns = list(dict.fromkeys((c.protocol, c.variant) for c in cells if c.goal == goal))
    rows = list(dict.fromkeys(c.strategy for c in cells if c.goal == goal))
    at = {(c.strategy, c.protocol, c.variant): c for c in cells if c.goal == goal}
    head = ["| strategy | " + " | ".join(f"{p}/{v}" for p, v in columns) + " |", "|---|" + "---|" * len(columns)]
    return head + [f"| {s} | " + " | ".join(_fmt(at[(s, p, v)]) if (s, p, v) in at else "" for p, v in columns) + " |"
                   for s in rows]


def picks(cells: list[Cell]) -> list[str]:
    """Per protocol: the strategy that found every bug in every run in the least total (median)
    seconds, and the one that proved every correct variant in the least total seconds."""
    lines = []
    for spec in PROTOCOLS.values():
        for goal, verb in GOALS.items():
            mine = [c for c in cells if c.protocol == spec.name and c.goal == goal]
            total: dict[str, float] = {}
            for c in mine:
                seconds = c.seconds if c.found == c.runs and c.seconds is not None else math.inf
                total[c.strategy] = total.get(c.strategy, 0.0) + seconds
            finite = {s: t for s, t in total.items() if not math.isinf(t)}
            variants = len({c.variant for c in mine})
            if not finite:
                lines.append(f"{spec.name}: {verb}: no strategy reached all {variants} variants within the budget")
                continue
            best = min(finite, key=lambda s: (finite[s], s))
            lines.append(f"{spec.name}: {verb}: {best} ({_seconds(finite[best])} over its {variants} variants)")
    return lines


def report(size: Size, progress=None) -> list[str]:
    """The whole table as markdown lines (see the module docstring)."""
    cells = table(size, progress)
    head = (f"budget {size.budget_s:g} s per run; sampling strategies ({', '.join(sorted(SAMPLING_STRATEGIES))}): "
            f"seeds 0..{size.seeds - 1}, at most {size.walk:,} schedules each")
    larger = "; ".join(f"{name} {' '.join(f'{k}={v}' for k, v in params.items())}" for name, params in LARGER.items())
    return [head, "", "### Schedules (seconds) to the first violation", "", *matrix(cells, "bug"), "",
            f"### Schedules (seconds) to the first violation, larger ({larger})", "", *matrix(cells, "bug larger"), "",
            "### Schedules (seconds) to a complete proof", "", *matrix(cells, "proof"), "",
            "### Pick", "", *(f"- {line}" for line in picks(cells)), "", LEGEND]


LEGEND = ("Cells: schedules (time) to the goal, the median over the seeds for sampling strategies, with how "
          "many seeds reached it (a seed that missed counts as infinitely slow: '-' where half or more "
          "missed); '>N': not reached within the budget (N schedules explored); 'cut': delay-bounded "
          "explored every schedule within its bound of 3 delays without reaching it. Times are search "
          "times (no shrinking).")


def main(argv: list[str] | None = None, quick: bool | None = None) -> None:
    """Print the table (``quick``: the smoke size, overriding ``--quick``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"the smoke size: {QUICK}")
    parser.add_argument("--budget", type=float, default=None, help=f"seconds per run (default {FULL.budget_s:g})")
    parser.add_argument("--walk", type=int, default=None, help=f"schedules per sampling run (default {FULL.walk:,})")
    parser.add_argument("--seeds", type=int, default=None, help=f"seeds per sampling strategy (default {FULL.seeds})")
    args = parser.parse_args(argv)
    base = QUICK if (args.quick if quick is None else quick) else FULL
    size = Size(args.budget or base.budget_s, args.walk or base.walk, args.seeds or base.seeds)
    start = time.perf_counter()

    def show(cell: Cell) -> None:
        print(f"  {cell.protocol}/{cell.variant} {cell.strategy}: {_fmt(cell)}", file=sys.stderr, flush=True)

    print("\n".join(report(size, show)))
    print(f"\n(total {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
