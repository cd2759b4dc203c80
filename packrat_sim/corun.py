"""Co-run measurements: Packrat's multi-instance CSVs read into runs, runs turned into
slowdown observations against an isolated profile, and the busy-cores model fitted on them.

A multi-instance CSV has the columns of Packrat's profile CSV (found by header name, see
:func:`packrat_sim.profile.import_packrat_csv`), one row per co-running instance, and
optionally an ``instances`` column. The instances of one run share (series, intraop_threads,
batch_size); a run of k instances of t threads on sub-batches of b is the plan ``k x t x b``.
How each variant seen in published files is read:

* **Series** (``benchmark``, ``topology``, ``pinning``, ``source``, ``allocator``,
  ``interop_threads``) are never mixed. ``topology=interleave`` (instances spread over the
  sockets) is a series of its own, calibrated only against the ``interleave`` profile. The
  ``--series COLUMN=GLOB`` selectors of the single-instance file choose here too (selectors on
  ``instance_id`` or on a column this file lacks are ignored); when several series remain, the
  one agreeing with the profile's series is taken; the chosen series must agree with the
  profile's on every column both have, else CorunError naming both.
* **With an ``instances`` column** (k), a run is every row of one (series, threads, batch, k),
  wherever it is in the file. The numbering of instance ids is decided for the whole file:
  (1) if a run of k >= 2 has a row with ``instance_id`` == k, ids are 1..k and id 0 is a solo
  run measured just before the co-run (Packrat's harness): not a co-running instance, it is
  held against the isolated cell (the solo check); (2) else, with no id 0, ids are 1..k;
  (3) else, if every run of k >= 2 holds exactly ids 0..k-1, ids are 0..k-1 (no solo rows);
  (4) else the numbering is ambiguous and the file is refused naming the first id-0 row. An
  id outside the numbering's range (a row disagreeing with its run's k) is refused naming
  its line. **Missing rows** are accepted: the run is still k instances (k - 1 others busy),
  measured by its slowest *present* instance (a lower bound on the straggler), and marked
  partial.
* **Without an ``instances`` column**, a run is every row of one (series, threads, batch), so
  a file holds one run per (series, threads, batch). Ids are 0..k-1 if the file has an id 0,
  else 1..k; k is the number of rows, and a run whose ids are not exactly that range (a gap:
  rows are missing, so k cannot be determined) is refused naming its first line. A single row
  is a 1-instance run whatever its id.
* **A 1-instance run** (a fat ``1 x T x B`` row, or k = 1) is not a co-run observation: it is
  held against the isolated cell L[T, B] (the fat check) and does not enter the fit.
* **Rows repeated verbatim** (every field equal, as the published files have) are read once
  and reported as skipped; two *different* rows for the same instance id of one run are
  refused naming both lines.

The slowdown of a run is the profiler's definition (real_runner/profiling.py): the slowest
instance's ``latency(avg)`` over the isolated cell L[t, b] of the profile's statistic (a batch
ends with its straggler). A run of k instances of t threads keeps (k - 1) x t other cores
busy. Observations keep the instance's own thread count, and the fit gets it: a thread
count whose co-runs the base curve misses gets its own curve
(:func:`packrat_sim.interference.fit_interference`).

Pure functions: text and profiles in, values out. Errors are :class:`CorunError` (a
ProfileError) naming the line and the value.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from packrat_sim import validate
from packrat_sim.interference import fit_interference
from packrat_sim.plan import Instance, Plan
from packrat_sim.profile import (
    PACKRAT_SERIES_COLUMNS,
    Profile,
    ProfileError,
    SeriesKey,
    choose_series,
    format_series,
    packrat_csv_reader,
    packrat_data_rows,
    packrat_header,
    packrat_row,
)

CORUN_INSTANCES = "instances"
CORUN_ID = "instance_id"
#: Columns telling co-run series apart (the profile's, less ``instance_id``, which numbers instances here).
CORUN_SERIES_COLUMNS = tuple(c for c in PACKRAT_SERIES_COLUMNS if c != CORUN_ID)

NUMBERING_SOLO = "1..k, instance_id 0 a solo run"
NUMBERING_FROM_ONE = "1..k"
NUMBERING_FROM_ZERO = "0..k-1"

REPEATED = "repeats an earlier row verbatim (read once)"
SLOWDOWN_DEFINITION = ("slowest present instance's latency(avg) / isolated L[t, b]; "
                       "other busy cores = (k - 1) x t")


class CorunError(ProfileError):
    """A co-run CSV or its calibration is invalid; the message names the line and the value."""


# ------------------------------------------------------------------------- values


@dataclass(frozen=True)
class CorunRow:
    """One instance's measurement: its CSV ``line``, ``instance_id`` and ``latency(avg)`` in ms."""

    line: int
    instance_id: int
    latency_ms: float


@dataclass(frozen=True)
class CorunRun:
    """One measured run: ``instances`` (k) instances of ``threads`` threads on sub-batches of
    ``batch``, side by side. ``rows`` are the co-running instances present (ordered by id; fewer
    than k when rows are missing), ``solo`` the solo rows measured before it (id 0 of an
    ``instances`` file). Invariant: at least one row."""

    source: str
    series: SeriesKey
    threads: int
    batch: int
    instances: int
    rows: tuple[CorunRow, ...]
    solo: tuple[CorunRow, ...] = ()

    @property
    def line(self) -> int:
        """The first CSV line of the run."""
        return min(r.line for r in self.rows + self.solo)

    @property
    def complete(self) -> bool:
        """True when a row is present for every one of the k instances."""
        return len(self.rows) >= self.instances

    @property
    def slowest(self) -> CorunRow:
        """The present instance of the largest latency(avg) (the straggler the batch waits for)."""
        return max(self.rows, key=lambda r: (r.latency_ms, -r.line))

    @property
    def measured_ms(self) -> float:
        """The run's batch latency in ms: its slowest present instance's latency(avg)."""
        return self.slowest.latency_ms

    def plan(self) -> Plan:
        """The plan ``k x t x b`` (batch k*b on k*t cores) this run measured."""
        inst = tuple(Instance(self.threads, self.batch) for _ in range(self.instances))
        return Plan(inst, self.batch * self.instances, self.threads * self.instances)

    def describe(self) -> str:
        """E.g. ``4 x 1t x 16``, with ``(3 of 4 rows)`` when rows are missing."""
        text = f"{self.instances} x {self.threads}t x {self.batch}"
        return text if self.complete else f"{text} ({len(self.rows)} of {self.instances} rows)"


@dataclass(frozen=True)
class SkippedRow:
    """A data row that was read but not used, and why (other series, verbatim repeat, ...)."""

    line: int
    reason: str


@dataclass(frozen=True)
class CorunFile:
    """What one multi-instance CSV held: its chosen ``series``, the ``runs`` of it (in file
    order), the rows ``skipped`` and why, and the ``numbering`` of instance ids the file used."""

    source: str
    series: SeriesKey
    series_in_file: tuple[SeriesKey, ...]
    runs: tuple[CorunRun, ...]
    skipped: tuple[SkippedRow, ...]
    numbering: str
    instances_column: bool


@dataclass(frozen=True)
class _Row:
    """A parsed data row of the chosen series (internal)."""

    line: int
    series: SeriesKey
    threads: int
    batch: int
    k: int | None
    instance_id: int
    latency_ms: float
    fields: tuple[str, ...]

    def corun_row(self) -> CorunRow:
        return CorunRow(self.line, self.instance_id, self.latency_ms)


# ------------------------------------------------------------------------ reading


def read_corun_csv(
    text: str,
    *,
    source: str = "",
    series: Sequence[tuple[str, str]] = (),
    profile_series: Mapping[str, str] | None = None,
) -> CorunFile:
    """Parse a Packrat multi-instance CSV (``text``) into the runs of one series (module doc).

    ``series``: (column, glob) selectors, as for the single-instance import; ``profile_series``:
    the chosen series of the profile (``{column: value}``) it must agree with. Pure; raises
    CorunError naming the line (and both series on a mismatch).
    """
    reader = packrat_csv_reader(text)
    try:
        _, names = packrat_header(reader)
    except ProfileError as exc:
        raise CorunError(str(exc)) from None
    if CORUN_ID not in names:
        raise CorunError(f"a co-run CSV needs an {CORUN_ID} column (header: {','.join(names)[:200]})")
    col = {n: i for i, n in enumerate(names)}
    has_k = CORUN_INSTANCES in col
    series_cols = [c for c in CORUN_SERIES_COLUMNS if c in col]
    rows = _parse_rows(reader, col, len(names), series_cols, has_k)
    all_series = tuple(sorted({r.series for r in rows}))
    chosen = _choose(all_series, series, profile_series or {})
    skipped = [SkippedRow(r.line, f"series {format_series(r.series)} (not chosen)") for r in rows if r.series != chosen]
    kept, repeats = _drop_repeats([r for r in rows if r.series == chosen])
    numbering = _numbering(kept) if has_k else _numbering_without_k(kept)
    group = _runs_with_k if has_k else _runs_without_k
    runs, solo_only = group(kept, numbering, source)
    skipped_all = tuple(sorted(skipped + repeats + solo_only, key=lambda s: s.line))
    return CorunFile(source, chosen, all_series, runs, skipped_all, numbering, has_k)


def _parse_rows(reader: Iterator[list[str]], col: Mapping[str, int], width: int,
                series_cols: Sequence[str], has_k: bool) -> list[_Row]:
    """Every data row left in ``reader`` (line 2 on), blank lines skipped. CorunError naming
    the line on a short or bad row, on unreadable CSV, and when no data row remains."""
    rows = [_parse_row(raw, col, series_cols, has_k, lineno)
            for lineno, raw in packrat_data_rows(reader, width, CorunError)]
    if not rows:
        raise CorunError("the co-run CSV has a header but no data rows")
    return rows


def _parse_row(raw: Sequence[str], col: Mapping[str, int], series_cols: Sequence[str], has_k: bool,
               lineno: int) -> _Row:
    """One data row -> _Row; CorunError ``line N: COLUMN must be ...`` on a bad value."""
    where = f"line {lineno}"
    try:
        t, b, (_, avg, _) = packrat_row(raw, col, where)
    except ProfileError as exc:
        raise CorunError(str(exc)) from None
    k = _cell_int(raw[col[CORUN_INSTANCES]], f"{where}: {CORUN_INSTANCES}", low=1) if has_k else None
    ident = _cell_int(raw[col[CORUN_ID]], f"{where}: {CORUN_ID}", low=0)
    key = tuple((c, raw[col[c]].strip()) for c in series_cols)
    return _Row(lineno, key, t, b, k, ident, avg, tuple(x.strip() for x in raw))


def _cell_int(text: str, what: str, *, low: int) -> int:
    """A CSV cell holding an integer >= ``low`` (``3`` or ``3.0``); CorunError naming ``what``."""
    try:
        value = float(text.strip())
    except ValueError:
        value = math.nan
    number: object = int(value) if math.isfinite(value) and value.is_integer() else text
    return validate.integer(number, what, low=low, error=CorunError, expected=f"an integer >= {low}")


def _choose(all_series: Sequence[SeriesKey], selectors: Sequence[tuple[str, str]],
            profile_series: Mapping[str, str]) -> SeriesKey:
    """The series of this file to read (module doc, **Series**). Pure; CorunError listing the
    series when the choice is not one, or naming both when it disagrees with the profile's."""
    present = {c for key in all_series for c, _ in key}
    usable = [(c, g) for c, g in selectors if c.lower() in present]
    matching = [k for k in all_series if all(fnmatch.fnmatchcase(dict(k).get(c.lower(), ""), g) for c, g in usable)]
    agreeing = [k for k in matching if not _disagreement(k, profile_series)]
    if len(matching) > 1 and len(agreeing) == 1:
        return agreeing[0]
    if not matching and profile_series:
        raise CorunError(
            f"the co-run series {'; '.join(format_series(k) for k in all_series)} "
            f"{'does' if len(all_series) == 1 else 'do'} not match the profile's series "
            f"{format_series(tuple(profile_series.items()))}"
            + (" under " + " ".join(f"--series {c}={g}" for c, g in usable) if usable else "")
        )
    try:
        chosen = choose_series(all_series, usable)
    except ProfileError as exc:
        raise CorunError(str(exc)) from None
    if _disagreement(chosen, profile_series):
        raise CorunError(
            f"the co-run series {format_series(chosen)} does not match the profile's series "
            f"{format_series(tuple(profile_series.items()))} (differs in {', '.join(_disagreement(chosen, profile_series))})"
        )
    return chosen


def _disagreement(key: SeriesKey, profile_series: Mapping[str, str]) -> list[str]:
    """The columns on which a co-run series and the profile's series (both have) differ."""
    return [c for c, v in key if c in profile_series and profile_series[c] != v]


def _drop_repeats(rows: Sequence[_Row]) -> tuple[list[_Row], list[SkippedRow]]:
    """``rows`` with verbatim repeats (every field equal) read once; the repeats as skipped rows."""
    seen: set[tuple[str, ...]] = set()
    kept, skipped = [], []
    for r in rows:
        if r.fields in seen:
            skipped.append(SkippedRow(r.line, REPEATED))
            continue
        seen.add(r.fields)
        kept.append(r)
    return kept, skipped


def _numbering(rows: Sequence[_Row]) -> str:
    """The id numbering of a file with an ``instances`` column (module doc, rules 1-4).
    CorunError naming the first id-0 row when it is ambiguous."""
    multi = [r for r in rows if r.k is not None and r.k >= 2]
    if any(r.instance_id == r.k for r in multi):
        return NUMBERING_SOLO
    zeros = [r for r in multi if r.instance_id == 0]
    if not zeros:
        return NUMBERING_FROM_ONE
    ids: dict[tuple, set[int]] = {}
    for r in multi:
        ids.setdefault((r.threads, r.batch, r.k), set()).add(r.instance_id)
    if all(got == set(range(k)) for (_, _, k), got in ids.items()):
        return NUMBERING_FROM_ZERO
    first = min(zeros, key=lambda r: r.line)
    raise CorunError(
        f"line {first.line}: instance_id 0 in a run of {first.k} instances, and no run has an instance_id equal to "
        "its instances: ids 0..k-1 with rows missing, or 1..k with id 0 a solo run? Ambiguous: renumber the file "
        "(1..k with a solo 0, or 0..k-1 complete)"
    )


def _numbering_without_k(rows: Sequence[_Row]) -> str:
    """Ids of a file without an ``instances`` column: 0..k-1 if any id is 0, else 1..k."""
    return NUMBERING_FROM_ZERO if any(r.instance_id == 0 for r in rows) else NUMBERING_FROM_ONE


def _unique_ids(rows: Sequence[_Row], what: str) -> None:
    """CorunError naming both lines when two rows of one run share an instance id."""
    seen: dict[int, _Row] = {}
    for r in sorted(rows, key=lambda r: r.line):
        if r.instance_id in seen:
            raise CorunError(
                f"line {r.line}: instance_id {r.instance_id} of {what} already read on line "
                f"{seen[r.instance_id].line} with different values"
            )
        seen[r.instance_id] = r


def _runs_with_k(rows: Sequence[_Row], numbering: str, source: str) -> tuple[tuple[CorunRun, ...], list[SkippedRow]]:
    """Runs of a file with an ``instances`` column: one per (series, threads, batch, k), in the
    order of their first line. Returns (runs, skipped rows of runs that hold only a solo row)."""
    groups: dict[tuple, list[_Row]] = {}
    for r in rows:
        groups.setdefault((r.series, r.threads, r.batch, r.k), []).append(r)
    runs, skipped = [], []
    for (key, t, b, k), members in groups.items():
        what = f"the run {k} x {t}t x {b}"
        _unique_ids(members, what)
        low, high, solo_id = (0, 1, None) if k == 1 else _id_range(numbering, k)
        for r in members:
            if not low <= r.instance_id <= high:
                raise CorunError(f"line {r.line}: instance_id {r.instance_id} disagrees with instances {k} "
                                 f"(ids of this file are {numbering})")
        inst = tuple(r.corun_row() for r in sorted(members, key=lambda r: r.instance_id) if r.instance_id != solo_id)
        solo = tuple(r.corun_row() for r in members if r.instance_id == solo_id)
        if not inst:
            skipped += [SkippedRow(s.line, f"solo row of {what}, whose co-running rows are all missing") for s in solo]
            continue
        runs.append(CorunRun(source, key, t, b, int(k or 1), inst, solo))
    return tuple(sorted(runs, key=lambda run: run.line)), skipped


def _id_range(numbering: str, k: int) -> tuple[int, int, int | None]:
    """(lowest id, highest id, the solo id or None) of a run of k >= 2 under ``numbering``."""
    if numbering == NUMBERING_SOLO:
        return 0, k, 0
    if numbering == NUMBERING_FROM_ONE:
        return 1, k, None
    return 0, k - 1, None


def _runs_without_k(rows: Sequence[_Row], numbering: str, source: str) -> tuple[tuple[CorunRun, ...], list[SkippedRow]]:
    """Runs of a file without an ``instances`` column: one per (series, threads, batch); k is
    the number of rows, whose ids must be exactly the numbering's range (else CorunError)."""
    groups: dict[tuple, list[_Row]] = {}
    for r in rows:
        groups.setdefault((r.series, r.threads, r.batch), []).append(r)
    runs = []
    base = 0 if numbering == NUMBERING_FROM_ZERO else 1
    for (key, t, b), members in groups.items():
        what = (f"the run of {t}t x {b} (without an {CORUN_INSTANCES} column a series, threads and batch "
                "hold one run)")
        _unique_ids(members, what)
        ids = sorted(r.instance_id for r in members)
        first = min(r.line for r in members)
        if len(members) > 1 and ids != list(range(base, base + len(members))):
            raise CorunError(
                f"line {first}: the run of {t}t x {b} has instance ids {ids}, not {base}..{base + len(members) - 1}: "
                f"rows are missing, and without an {CORUN_INSTANCES} column its instance count cannot be determined"
            )
        inst = tuple(r.corun_row() for r in sorted(members, key=lambda r: r.instance_id))
        runs.append(CorunRun(source, key, t, b, len(members), inst))
    return tuple(sorted(runs, key=lambda run: run.line)), []


# ------------------------------------------------------------------- observations


@dataclass(frozen=True)
class CorunObservation:
    """One co-run's slowdown: an instance of ``threads`` threads on ``batch`` inputs, one of
    ``instances`` side by side, beside ``other_busy_cores`` busy cores, ran ``slowdown`` times
    its isolated latency (slowest instance / isolated cell). ``source_row``: the CSV line of
    that slowest instance in ``source``."""

    threads: int
    batch: int
    instances: int
    other_busy_cores: int
    slowdown: float
    source_row: int
    source: str = ""


@dataclass(frozen=True)
class CorunCheck:
    """A row that measured an instance alone, held against the isolated cell: ``kind`` ``solo``
    (the id-0 row before a co-run) or ``fat`` (a 1-instance run). ``isolated_ms`` is None when
    the profile lacks the cell."""

    kind: str
    threads: int
    batch: int
    line: int
    measured_ms: float
    isolated_ms: float | None
    source: str = ""

    @property
    def difference(self) -> float | None:
        """measured / isolated - 1 (a fraction; +0.01 is 1% slower), None without the cell."""
        return None if self.isolated_ms is None else self.measured_ms / self.isolated_ms - 1.0


@dataclass(frozen=True)
class CorunEvidence:
    """Observations of the co-runs (k >= 2) a profile can price, the solo and fat checks, and
    the co-runs whose isolated cell the profile lacks (``unpriced``: no observation)."""

    observations: tuple[CorunObservation, ...]
    checks: tuple[CorunCheck, ...]
    unpriced: tuple[CorunRun, ...]


def corun_evidence(profile: Profile, runs: Sequence[CorunRun]) -> CorunEvidence:
    """Turn ``runs`` into observations against ``profile``'s isolated cells (module doc). Pure."""
    obs, checks, unpriced = [], [], []
    for run in runs:
        isolated = profile.latency(run.threads, run.batch)
        kind = "fat" if run.instances == 1 else "solo"
        alone = run.rows if run.instances == 1 else run.solo
        checks += [CorunCheck(kind, run.threads, run.batch, r.line, r.latency_ms, isolated, run.source) for r in alone]
        if run.instances == 1:
            continue
        if isolated is None:
            unpriced.append(run)
            continue
        obs.append(CorunObservation(
            run.threads, run.batch, run.instances, (run.instances - 1) * run.threads,
            run.measured_ms / isolated, run.slowest.line, run.source,
        ))
    return CorunEvidence(tuple(obs), tuple(checks), tuple(unpriced))


# -------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class Calibration:
    """The calibrated profile (interference fitted, provenance in ``meta``) and its evidence."""

    profile: Profile
    evidence: CorunEvidence


def calibrate(profile: Profile, files: Sequence[CorunFile]) -> Calibration:
    """Fit the busy-cores model of ``profile`` on the co-runs of ``files`` and record where it
    came from. The fitted points and RMS relative fit error go to ``profile.interference``
    (replacing any model it had); ``meta`` gains ``interference.*`` keys (sources, series, runs,
    rows, partial runs, skipped rows, solo and fat checks, the slowdown definition), kept
    sorted so the profile JSON round-trips. Pure; CorunError when no co-run can be priced."""
    runs = [run for f in files for run in f.runs]
    evidence = corun_evidence(profile, runs)
    if not any(r.instances > 1 for r in runs):
        raise CorunError(f"no co-run to fit: the {len(runs)} run(s) read are all of 1 instance (fat rows)")
    if not evidence.observations:
        missing = ", ".join(sorted({f"{r.threads}t x {r.batch}" for r in evidence.unpriced}))
        raise CorunError(f"no co-run of {len(runs)} run(s) can be priced against the profile "
                         f"(co-runs of k >= 2 instances whose isolated cell it lacks: {missing})")
    model = fit_interference((o.threads, o.other_busy_cores, o.slowdown) for o in evidence.observations)
    meta = {k: v for k, v in profile.meta if not k.startswith("interference.")}
    meta.update(_provenance(files, evidence))
    return Calibration(replace(profile, interference=model, meta=tuple(sorted(meta.items()))), evidence)


def _provenance(files: Sequence[CorunFile], evidence: CorunEvidence) -> dict[str, str]:
    """The ``interference.*`` meta entries of a calibration (strings, see :func:`calibrate`)."""
    corun = [run for f in files for run in f.runs if run.instances > 1]
    out = {
        "interference.source": "; ".join(f.source or "co-run CSV" for f in files),
        "interference.series": "; ".join(sorted({format_series(f.series) for f in files})),
        "interference.numbering": "; ".join(f.numbering for f in files),
        "interference.runs": str(len(corun)),
        "interference.instances": ",".join(str(k) for k in sorted({r.instances for r in corun})),
        "interference.plans": ", ".join(sorted({f"{r.instances} x {r.threads}t x {r.batch}" for r in corun},
                                               key=lambda s: [int(x.rstrip("t")) for x in s.split(" x ")])),
        "interference.rows": str(sum(len(r.rows) for r in corun)),
        "interference.partial_runs": str(sum(1 for r in corun if not r.complete)),
        "interference.unpriced_runs": str(len(evidence.unpriced)),
        "interference.skipped_rows": str(sum(len(f.skipped) for f in files)),
        "interference.observations": str(len(evidence.observations)),
        "interference.definition": SLOWDOWN_DEFINITION,
    }
    for kind in ("solo", "fat"):
        text = check_summary(evidence.checks, kind)
        if text:
            out[f"interference.{kind}_check"] = text
    return out


def check_summary(checks: Sequence[CorunCheck], kind: str) -> str:
    """One line on the ``kind`` checks: how many, and measured vs isolated (median and max
    |difference| in %); '' when there are none."""
    mine = [c for c in checks if c.kind == kind]
    diffs = [c.difference for c in mine if c.difference is not None]
    if not mine:
        return ""
    text = f"{len(mine)} {kind} row(s) vs the isolated cell"
    if diffs:
        text += (f": median {100 * float(np.median(diffs)):+.2f}%, "
                 f"max |{100 * max(abs(d) for d in diffs):.2f}|%")
    missing = len(mine) - len(diffs)
    return text + (f"; {missing} without an isolated cell" if missing else "")
