"""Simulation sweeps: every combination of profile x cores x workload x policy x seed.

A **grid** names the values of five axes:

==========  =======================================================  =====================
axis        values                                                   default
==========  =======================================================  =====================
profile     ``builtin:NAME`` or a profile JSON path                  (required)
cores       positive integers; ladders ``4..16/4``                   (required)
workload    workload specs (``packrat_sim/workload.py``) whose       (required)
            option values may be ladders: ``poisson:rate=50..800/50,duration=10s``
policy      ``packrat``, ``packrat-ewma``, ``fat``, ``thin``,      ``simulator.POLICIES``
            ``packrat:KEY=VALUE,...`` (``policy.PolicyConfig``)
seed        integers >= 0; ladders ``0..9``                          ``0``
==========  =======================================================  =====================

A **ladder** ``LO..HI/STEP[UNIT]`` is LO, LO+STEP, ... up to HI inclusive (``/STEP`` may be
left out: step 1); a unit after the step is appended to every value, so
``rate=50..800/50/s`` gives ``rate=50/s``, ``rate=100/s``, ... Several ladders in one
workload spec multiply.

Grids come from a TOML or JSON file (the axes as top-level keys, or under a ``[grid]``
table; a value is a scalar or a list) and/or from ``NAME=V1,V2,...`` strings (the CLI's
``--axis``; for ``workload`` a comma starts a new value only before ``KIND:``, so specs
keep their own commas). An ``--axis`` replaces the file's values of that axis.

Each run is one call of :func:`packrat_sim.simulator.simulate` and gives one **row**:
the parameters, the offered load (req/s; empty for closed loops), request latency
p50/p90/p99/mean/max (ms), throughput (req/s), core utilisation (0..1),
reconfigurations, mean batch size, the starting plan, its predicted latency, ``corun``
(how it was priced: ``calibrated`` with the profile's co-run model, the default when it
has one; ``isolated`` when ``Grid.isolated`` ignores it; ``none`` without one) and
``status`` (``ok`` or ``failed`` with ``error``). Rows are deterministic: the same run gives the same row in
any process, on any engine (the simulator is seeded per run, :func:`run_one` is pure).

:func:`run_sweep` writes rows to ``OUT/results.csv`` as they finish (appended and flushed,
so an interrupted sweep loses nothing), skips runs whose ``ok`` row is already there
(resumable; failed rows are tried again), and at the end rewrites the table tidily in
grid order (atomically) plus ``results.parquet`` when pyarrow imports. The HTML page of
charts is written by ``ui/reports/sweep.py`` (plotly lives in ui only).
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import math
import os
import pickle
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from packrat_sim import files as safe_files
from packrat_sim.errors import PackratError
from packrat_sim.spec import parse_ladder, split_items

AXES = ("profile", "cores", "workload", "policy", "seed")
REQUIRED_AXES = ("profile", "cores", "workload")
MAX_LADDER = 1_000_000  # points in one ladder
CONFIRM_ABOVE = 100_000  # runs; more need an explicit confirmation (``--yes``)
RESULTS_CSV = "results.csv"
RESULTS_PARQUET = "results.parquet"
GRID_JSON = "grid.json"

#: Columns of the tidy table, in order.
COLUMNS = (
    "run_id", "profile", "cores", "workload", "offered_per_s", "policy", "seed", "status", "error",
    "requests", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "max_ms", "throughput_per_s", "utilisation",
    "reconfigurations", "mean_batch_size", "plan", "predicted_ms", "corun",
)
_LATENCY_COLUMNS = ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "max_ms")  # request latency (LatencyStats fields)
_INT_COLUMNS = ("cores", "seed", "requests", "reconfigurations")
_FLOAT_COLUMNS = (
    "offered_per_s", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "max_ms", "throughput_per_s", "utilisation",
    "mean_batch_size", "predicted_ms",
)


class SweepError(PackratError):
    """A grid or an output directory is unusable; the message names the bad value."""


# ------------------------------------------------------------------ ladders

def ladder_values(text: str) -> list[str] | None:
    """The values of the ladder ``LO..HI[/STEP][UNIT]`` as strings, or None if ``text`` is
    not a ladder (grammar: :func:`packrat_sim.spec.parse_ladder`). SweepError for an empty,
    reversed, zero-step or oversized (more than ``MAX_LADDER`` points) ladder."""
    return parse_ladder(text, max_points=MAX_LADDER, error=SweepError)


def _ladder_len(text: str) -> int:
    values = ladder_values(text)
    return 1 if values is None else len(values)


def _spec_parts(spec: str) -> tuple[str, list[str]]:
    """``"kind:a,b"`` -> ``("kind", ["a", "b"])``, items exactly as written (empty ones
    kept: :func:`packrat_sim.workload.parse_workload` refuses them later); ``(spec, [])``
    without a colon."""
    kind, colon, body = spec.partition(":")
    if not colon:
        return spec, []
    return kind, split_items(body, f"workload {spec!r}", empty="keep", strip=False, error=SweepError)


def expand_workload(spec: str) -> list[str]:
    """Every concrete spec of a workload spec whose ``key=value`` items may be ladders
    (several ladders multiply, in item order). A spec without ladders gives itself."""
    kind, items = _spec_parts(spec)
    choices: list[list[str]] = []
    for item in items:
        key, eq, value = item.partition("=")
        values = ladder_values(value) if eq else None
        choices.append([item] if values is None else [f"{key}={v}" for v in values])
    if not items:
        return [spec]
    return [f"{kind}:" + ",".join(combo) for combo in itertools.product(*choices)]


def workload_count(spec: str) -> int:
    """How many concrete specs :func:`expand_workload` gives, without building them."""
    _, items = _spec_parts(spec)
    n = 1
    for item in items:
        key, eq, value = item.partition("=")
        if eq:
            n *= _ladder_len(value)
    return n


# --------------------------------------------------------------------- grids


@dataclass(frozen=True)
class Grid:
    """The values of each axis (workloads as written, ladders not yet expanded)."""

    profiles: tuple[str, ...]
    cores: tuple[int, ...]
    workloads: tuple[str, ...]
    policies: tuple[str, ...]
    seeds: tuple[int, ...]
    isolated: bool = False  # ignore the profiles' co-run models (calibrated by default)

    def size(self) -> int:
        """Number of runs, ladders included (computed without expanding)."""
        nw = sum(workload_count(w) for w in self.workloads)
        return len(self.profiles) * len(self.cores) * nw * len(self.policies) * len(self.seeds)

    def to_json(self) -> dict:
        return {
            "profile": list(self.profiles),
            "cores": list(self.cores),
            "workload": list(self.workloads),
            "policy": list(self.policies),
            "seed": list(self.seeds),
            **({"isolated": True} if self.isolated else {}),
        }


_WORKLOAD_START = re.compile(r"^\s*(closed|poisson|steps|diurnal|trace)\s*:", re.IGNORECASE)


def split_axis_values(name: str, text: str) -> list[str]:
    """Split the ``V1,V2,...`` of ``--axis NAME=...``. For ``workload`` a comma separates
    values only when the next part starts a spec (``poisson:``, ``steps:``, ...)."""
    parts = split_items(text, f"axis {name!r}", empty="keep", error=SweepError)
    if name == "policy":  # packrat:KEY=V,KEY=V keeps its option items
        policies: list[str] = []
        for p in parts:
            if policies and "=" in p and ":" not in p and ":" in policies[-1]:
                policies[-1] += "," + p
            else:
                policies.append(p)
        return [p for p in policies if p]
    if name != "workload":
        return [p for p in parts if p]
    values: list[str] = []
    for p in parts:
        if not values or _WORKLOAD_START.match(p):
            values.append(p)
        else:
            values[-1] += "," + p
    return [v for v in values if v]


def parse_axis(text: str) -> tuple[str, list[str]]:
    """``NAME=V1,V2,...`` -> (axis name, values). SweepError naming an unknown axis."""
    name, eq, values = text.partition("=")
    name = _axis_name(name.strip())
    if not eq:
        raise SweepError(f"--axis {text!r} must be NAME=V1,V2,... (axes: {', '.join(AXES)})")
    return name, split_axis_values(name, values)


def _axis_name(name: str) -> str:
    key = name.strip().lower()
    if key.endswith("s") and key[:-1] in AXES:  # profiles, workloads, policies... are fine too
        key = key[:-1]
    if key == "policie":
        key = "policy"
    if key not in AXES:
        raise SweepError(f"unknown axis {name!r}; axes are {', '.join(AXES)}")
    return key


def parse_grid_text(text: str, fmt: str) -> dict[str, list]:
    """The axes of a grid file's text (``fmt``: ``"toml"`` or ``"json"``) -> {axis: values}."""
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SweepError(f"grid is not valid JSON: {exc}") from None
    elif fmt == "toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - Python 3.10
            try:
                import tomli as tomllib
            except ImportError:
                raise SweepError("TOML grids need Python >= 3.11 (or pip install tomli); use a JSON grid") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SweepError(f"grid is not valid TOML: {exc}") from None
    else:
        raise SweepError(f"grid format must be toml or json, got {fmt!r}")
    if not isinstance(data, dict):
        raise SweepError("a grid must be an object (table) of axes")
    if "grid" in data and isinstance(data["grid"], dict):
        data = data["grid"]
    axes: dict[str, list] = {}
    for key, value in data.items():
        name = _axis_name(str(key))
        values = value if isinstance(value, list) else [value]
        axes[name] = list(values)
    return axes


def read_grid_file(path: str) -> dict[str, list]:
    """Axes of a ``.toml`` or ``.json`` grid file (the format from its extension; JSON
    when the text starts with ``{``)."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise SweepError(f"cannot read grid {path!r}: {exc.strerror or exc}") from None
    lower = path.lower()
    fmt = "json" if lower.endswith(".json") or (not lower.endswith(".toml") and text.lstrip().startswith("{")) else "toml"
    return parse_grid_text(text, fmt)


def _int_values(axis: str, values: Iterable[object], minimum: int) -> tuple[int, ...]:
    out: list[int] = []
    for v in values:
        if isinstance(v, str):
            ladder = ladder_values(v)
            items: list[object] = list(ladder) if ladder is not None else [v]
        else:
            items = [v]
        for item in items:
            try:
                if isinstance(item, bool):
                    raise ValueError
                x = float(item) if isinstance(item, str) else item
                if not isinstance(x, (int, float)) or not float(x).is_integer():
                    raise ValueError
                n = int(x)
            except (TypeError, ValueError):
                raise SweepError(f"axis {axis!r}: {item!r} is not an integer") from None
            if n < minimum:
                raise SweepError(f"axis {axis!r}: {n} is below {minimum}")
            out.append(n)
    return tuple(dict.fromkeys(out))


def _str_values(axis: str, values: Iterable[object]) -> tuple[str, ...]:
    out = []
    for v in values:
        if not isinstance(v, str) or not v.strip():
            raise SweepError(f"axis {axis!r}: {v!r} is not a non-empty string")
        out.append(v.strip())
    return tuple(dict.fromkeys(out))


def make_grid(axes: Mapping[str, Sequence[object]]) -> Grid:
    """Validate axes {name: values} into a :class:`Grid` (defaults filled in).

    SweepError for an unknown axis, a missing required axis, an axis without values (an
    empty grid), a bad integer, an unknown policy or a workload spec that does not parse.
    Pure (workload specs are parsed, trace files are not read).
    """
    from packrat_sim import simulator
    from packrat_sim.workload import WorkloadError, parse_workload

    named = {_axis_name(k): v for k, v in axes.items()}
    for axis in REQUIRED_AXES:
        if axis not in named:
            raise SweepError(f"the grid has no {axis!r} axis (axes: {', '.join(AXES)}; required: {', '.join(REQUIRED_AXES)})")
    named.setdefault("policy", list(simulator.POLICIES))
    named.setdefault("seed", [0])
    for axis, values in named.items():
        if not list(values):
            raise SweepError(f"empty grid: axis {axis!r} has no values")
    policies = _str_values("policy", named["policy"])
    for p in policies:
        _policy_args(p)
    workloads = _str_values("workload", named["workload"])
    for w in workloads:
        for concrete in itertools.islice(expand_workload(w), 3):  # the rest differ only in ladder values
            try:
                parse_workload(concrete)
            except WorkloadError as exc:
                raise SweepError(f"axis 'workload': {w!r}: {exc}") from None
    return Grid(
        profiles=_str_values("profile", named["profile"]),
        cores=_int_values("cores", named["cores"], 1),
        workloads=workloads,
        policies=policies,
        seeds=_int_values("seed", named["seed"], 0),
    )


def load_grid(path: str | None = None, axes: Sequence[str] = ()) -> Grid:
    """The grid of a file and/or ``NAME=V1,...`` strings (these replace the file's axis;
    repeating a name adds values). SweepError when neither gives anything."""
    named: dict[str, list] = read_grid_file(path) if path else {}
    given: dict[str, list] = {}
    for text in axes:
        name, values = parse_axis(text)
        given.setdefault(name, []).extend(values)
    named.update(given)
    if not named:
        raise SweepError("empty grid: give a grid file or --axis NAME=V1,V2,...")
    return make_grid(named)


# ---------------------------------------------------------------------- runs


@dataclass(frozen=True)
class RunParams:
    """The parameters of one run (a point of the expanded grid)."""

    profile: str
    cores: int
    workload: str
    policy: str
    seed: int
    isolated: bool = False  # the profile's co-run model ignored on request

    @property
    def run_id(self) -> str:
        """Stable 16-hex-digit id of these parameters (the resume key; a calibrated run keeps
        the id it had before co-run models existed, an isolated one gets another)."""
        params: list = [self.profile, self.cores, self.workload, self.policy, self.seed]
        key = json.dumps(params + ["isolated"] if self.isolated else params)
        return hashlib.sha1(key.encode()).hexdigest()[:16]


def expand(grid: Grid) -> Iterator[RunParams]:
    """Every run of the grid in grid order: profile, cores, workload (ladders expanded),
    policy, seed (the last varies fastest)."""
    for profile in grid.profiles:
        for cores in grid.cores:
            for w in grid.workloads:
                for concrete in expand_workload(w):
                    for policy in grid.policies:
                        for seed in grid.seeds:
                            yield RunParams(profile, cores, concrete, policy, seed, grid.isolated)


@dataclass(frozen=True)
class RunTask:
    """What is sent to a worker: the parameters and the profile, pickled once by the
    sender (``profile_blob``, tens of kB) and named by its digest, so a worker unpickles
    each profile once (:func:`task_profile`), not once per run."""

    params: RunParams
    profile_blob: bytes
    profile_digest: str

    @classmethod
    def of(cls, params: RunParams, profile: Any) -> RunTask:
        """A task for ``params`` with a loaded Profile (use :func:`make_tasks` for many)."""
        return cls(params, *_pickled(profile))


def _pickled(profile: Any) -> tuple[bytes, str]:
    """(pickle of ``profile``, its sha1 digest): what a :class:`RunTask` carries."""
    blob = pickle.dumps(profile, protocol=pickle.HIGHEST_PROTOCOL)
    return blob, hashlib.sha1(blob).hexdigest()


_PROFILE_CACHE: dict[str, Any] = {}  # per process: digest -> Profile (profiles are immutable)


def task_profile(task: RunTask) -> Any:
    """The task's Profile, unpickled at most once per process and digest."""
    profile = _PROFILE_CACHE.get(task.profile_digest)
    if profile is None:
        if len(_PROFILE_CACHE) >= 64:
            _PROFILE_CACHE.clear()
        profile = _PROFILE_CACHE[task.profile_digest] = pickle.loads(task.profile_blob)
    return profile


def make_tasks(runs: Iterable[RunParams], profiles: Mapping[str, Any]) -> list[RunTask]:
    """Tasks for ``runs``, each profile (by spec in ``profiles``) pickled once and shared."""
    blobs = {spec: _pickled(profile) for spec, profile in profiles.items()}
    return [RunTask(p, *blobs[p.profile]) for p in runs]


def load_profile_spec(spec: str):
    """``builtin:NAME`` or a path -> Profile. SweepError naming the spec otherwise."""
    from packrat_sim.profile import ProfileError, builtin_profile, read_profile

    try:
        if spec.startswith("builtin:"):
            return builtin_profile(spec[len("builtin:"):])
        return read_profile(spec)
    except ProfileError as exc:
        raise SweepError(f"axis 'profile': {spec!r}: {exc}") from None


def offered_per_s(workload: Any) -> float:
    """Mean offered load of a workload in requests per second (NaN for a closed loop,
    where the load follows the service). Pure."""
    from packrat_sim import workload as wl

    if isinstance(workload, wl.Poisson):
        return float(workload.rate_per_s)
    if isinstance(workload, wl.Steps):
        total = sum(s.rate_per_s * s.duration_s for s in workload.steps)
        return float(total / workload.duration_s)
    if isinstance(workload, wl.Diurnal):
        return float((workload.base_per_s + workload.peak_per_s) / 2.0)
    times = getattr(workload, "times_ms", None)
    if times is not None and len(times) > 1 and times[-1] > times[0]:
        return float((len(times) - 1) / ((times[-1] - times[0]) / 1000.0))
    return float("nan")


def _policy_args(spec: str) -> tuple[str, Any]:
    """(simulator policy name, SimConfig or None) of a policy value: ``packrat``,
    ``packrat-ewma``, ``fat``, ``thin`` or ``packrat:KEY=VALUE,...`` (options of
    ``packrat_sim.policy.PolicyConfig``). SweepError naming an unknown one."""
    from packrat_sim import simulator
    from packrat_sim.policy import PolicyError, parse_overrides, parse_policy

    try:
        name, items = parse_policy(spec)
        config = simulator.SimConfig(policy=parse_overrides(items)) if items else None
    except (PolicyError, ValueError) as exc:
        raise SweepError(f"axis 'policy': {exc}") from None
    return name, config


def _row_base(p: RunParams) -> dict:
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(run_id=p.run_id, profile=p.profile, cores=p.cores, workload=p.workload, policy=p.policy, seed=p.seed)
    return row


def failed_row(p: RunParams, error: str) -> dict:
    """The row of a run that did not produce a result."""
    row = _row_base(p)
    row.update(status="failed", error=" ".join(str(error).split()))
    return row


def run_one(task: RunTask) -> dict:
    """Simulate one run and return its row (pure: the same task gives the same row in any
    process). A simulation that rejects its input gives a ``failed`` row naming why."""
    from packrat_sim.predictor import Predictor, corun, priced_profile
    from packrat_sim.simulator import simulate
    from packrat_sim.workload import load_workload

    p = task.params
    co = corun(task_profile(task), p.isolated)
    profile = priced_profile(task_profile(task), co)  # calibrated by default
    try:
        workload = load_workload(p.workload)
        name, config = _policy_args(p.policy)
        result = simulate(profile, p.cores, workload, name, seed=p.seed, config=config)
        predicted = Predictor(profile).estimate_ms(result.plan)
    except ValueError as exc:  # SimulationError, WorkloadError, OptimizerError, ... all name the value
        return failed_row(p, f"{type(exc).__name__}: {exc}")
    s = result.stats
    lat = s.request_latency
    row = _row_base(p)
    row.update(
        offered_per_s=offered_per_s(workload),
        status="ok",
        error="",
        requests=s.requests,
        **{column: getattr(lat, column) for column in _LATENCY_COLUMNS},
        throughput_per_s=s.throughput_per_s,
        utilisation=s.utilisation,
        reconfigurations=len(result.reconfigurations),
        mean_batch_size=s.mean_batch_size,
        plan=result.plan.describe(),
        predicted_ms=predicted,
        corun=co.mode,
    )
    return row


# ---------------------------------------------------------------- the table


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if not math.isfinite(value) else repr(value)
    return str(value)


def _parse_cell(column: str, text: str) -> object:
    if text == "":
        return None if column not in ("error",) else ""
    if column in _INT_COLUMNS:
        return int(text)
    if column in _FLOAT_COLUMNS:
        return float(text)
    return text


def read_rows(path: str) -> list[dict]:
    """Rows of a results CSV written by this module (missing file: no rows). A truncated
    last line (a sweep killed mid-write) is ignored; other damage raises SweepError."""
    if not os.path.exists(path):
        return []
    rows = []
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None:
                return []
            missing = [c for c in ("run_id", "status") if c not in reader.fieldnames]
            if missing:
                raise SweepError(f"{path} is not a sweep table (no {', '.join(missing)} column)")
            for line in reader:
                if None in line.values() or None in line:  # short or long (truncated) line
                    continue
                try:
                    rows.append({c: _parse_cell(c, line.get(c, "")) for c in COLUMNS})
                except ValueError:
                    continue
    except OSError as exc:
        raise SweepError(f"cannot read {path}: {exc.strerror or exc}") from None
    return rows


def write_rows(path: str, rows: Sequence[Mapping]) -> None:
    """Write the tidy table atomically (a temporary file renamed over ``path``)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(COLUMNS)
    for row in rows:
        w.writerow([_cell_text(row.get(c)) for c in COLUMNS])
    safe_files.write_text(path, out.getvalue(), "sweep table")


def write_parquet(path: str, rows: Sequence[Mapping]) -> bool:
    """Write the rows as Parquet if pyarrow imports; False (nothing written) otherwise."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return False
    types = {c: pa.int64() for c in _INT_COLUMNS}
    types.update({c: pa.float64() for c in _FLOAT_COLUMNS})
    columns = {}
    for c in COLUMNS:
        values = [row.get(c) for row in rows]
        if c in _FLOAT_COLUMNS:
            values = [None if v is None or not math.isfinite(v) else float(v) for v in values]
        columns[c] = pa.array(values, type=types.get(c, pa.string()))
    safe_files.write_file(path, lambda fh: pq.write_table(pa.table(columns), fh), "sweep Parquet table")
    return True


class _Appender:
    """Appends rows to the results CSV as they come, flushed one by one."""

    def __init__(self, path: str):
        fresh = not os.path.exists(path) or os.path.getsize(path) == 0
        if not fresh:
            with open(path, "rb") as fh:  # a killed writer may have left half a line
                fh.seek(-1, os.SEEK_END)
                needs_newline = fh.read(1) != b"\n"
        self._fh = open(path, "a", newline="", encoding="utf-8")  # noqa: SIM115 - held until close()
        self._w = csv.writer(self._fh, lineterminator="\n")
        if fresh:
            self._w.writerow(COLUMNS)
        elif needs_newline:
            self._fh.write("\n")
        self._fh.flush()

    def add(self, row: Mapping) -> None:
        self._w.writerow([_cell_text(row.get(c)) for c in COLUMNS])
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


# ----------------------------------------------------------------- sweeping


@dataclass(frozen=True)
class Progress:
    """Where a sweep stands: runs done (this session) out of ``total`` to do, failures,
    seconds elapsed; ``eta_s`` is the linear estimate of the seconds left (None before
    the first run finishes)."""

    done: int
    total: int
    failed: int
    elapsed_s: float

    @property
    def eta_s(self) -> float | None:
        return eta_s(self.done, self.total, self.elapsed_s)


def eta_s(done: int, total: int, elapsed_s: float) -> float | None:
    """Seconds left if the remaining runs go at the pace so far; None when nothing is done."""
    if done <= 0:
        return None
    return max(0.0, elapsed_s / done * (total - done))


@dataclass(frozen=True)
class SweepResult:
    """The outcome of :func:`run_sweep`: every row of the grid found or produced (grid
    order), how many ran now, how many were already in the directory, how many failed,
    the files written and the wall time (s)."""

    rows: tuple[dict, ...]
    ran: int
    skipped: int
    failed: int
    files: tuple[str, ...]
    elapsed_s: float
    engine: str = ""
    workers: int = 0


def prepare_out_dir(out_dir: str) -> None:
    """Create the output directory (its parent must exist, as for every packrat output:
    ``packrat_sim.files.prepare_output_dir``); SweepError naming the path otherwise."""
    from packrat_sim.files import OutputPathError, prepare_output_dir

    try:
        prepare_output_dir(out_dir, "sweep output directory")
    except OutputPathError as exc:
        raise SweepError(str(exc)) from None


def _pending(grid: Grid, rows: Iterable[dict]) -> tuple[list[RunParams], dict[str, dict]]:
    """(runs still to do, in grid order; the ok rows among ``rows`` by run id)."""
    done = {r["run_id"]: r for r in rows if r["status"] == "ok"}
    todo = [p for p in expand(grid) if p.run_id not in done]
    return todo, done


def run_sweep(
    grid: Grid,
    out_dir: str,
    engine: Any,
    *,
    progress: Callable[[Progress], None] | None = None,
    runner: Callable[[RunTask], dict] = run_one,
    retries: int = 1,
    profiles: Mapping[str, Any] | None = None,
) -> SweepResult:
    """Run every run of ``grid`` not already finished in ``out_dir`` on ``engine``.

    ``engine``: anything with ``map(fn, tasks, retries)`` yielding outcomes
    (:mod:`packrat_sim.engines`, ``packrat_sim/engines/ray.py``). Rows are appended to
    ``results.csv`` as they finish; a task whose worker died twice, or that raised, gets
    a ``failed`` row and the sweep goes on. At the end the table is rewritten in grid
    order (rows of runs outside this grid that the directory already held are kept, after
    them), ``results.parquet`` is written when pyarrow imports, and ``grid.json`` records
    the grid. ``progress`` is called after each finished run. Profiles are loaded once,
    here (unless the caller already loaded them: ``profiles``, {spec: Profile}), and travel
    with the tasks.
    """
    t0 = time.perf_counter()
    prepare_out_dir(out_dir)
    csv_path = os.path.join(out_dir, RESULTS_CSV)
    previous = read_rows(csv_path)  # read once: the resume key and, at the end, the earlier rows
    todo, done = _pending(grid, previous)
    given = profiles or {}
    needed = {spec: given[spec] if spec in given else load_profile_spec(spec)
              for spec in dict.fromkeys(p.profile for p in todo)}
    tasks = make_tasks(todo, needed)
    new_rows: dict[str, dict] = {}
    failed = 0
    appender = _Appender(csv_path)
    try:
        if progress is not None:
            progress(Progress(0, len(tasks), 0, time.perf_counter() - t0))
        for k, outcome in enumerate(engine.map(runner, tasks, retries=retries), start=1):
            params = tasks[outcome.index].params
            row = outcome.value if outcome.ok else failed_row(params, outcome.error)
            if row.get("status") != "ok":
                failed += 1
            new_rows[params.run_id] = row
            appender.add(row)
            if progress is not None:
                progress(Progress(k, len(tasks), failed, time.perf_counter() - t0))
    finally:
        appender.close()
    all_rows = {r["run_id"]: r for r in previous}  # includes failed rows of earlier runs
    all_rows.update(done)
    all_rows.update(new_rows)
    ordered, seen, total = [], set(), 0
    for p in expand(grid):
        total += 1
        row = all_rows.get(p.run_id)
        if row is not None and p.run_id not in seen:
            ordered.append(row)
            seen.add(p.run_id)
    extra = [r for rid, r in all_rows.items() if rid not in seen]
    write_rows(csv_path, ordered + extra)
    files = [csv_path]
    parquet = os.path.join(out_dir, RESULTS_PARQUET)
    if write_parquet(parquet, ordered + extra):
        files.append(parquet)
    grid_path = os.path.join(out_dir, GRID_JSON)
    safe_files.write_json(grid_path, grid.to_json(), "sweep grid")
    files.append(grid_path)
    return SweepResult(
        rows=tuple(ordered),
        ran=len(tasks),
        skipped=total - len(tasks),
        failed=failed,
        files=tuple(files),
        elapsed_s=time.perf_counter() - t0,
        engine=getattr(engine, "name", type(engine).__name__),
        workers=int(getattr(engine, "workers", 0) or 0),
    )


# ------------------------------------------------------------------ summaries


def _median(values: list[float]) -> float:
    values = sorted(values)
    n = len(values)
    if n == 0:
        return float("nan")
    mid = n // 2
    return values[mid] if n % 2 else (values[mid - 1] + values[mid]) / 2.0


def capacity_curves(rows: Iterable[Mapping], metric: str = "p99_ms") -> dict[tuple[str, int, str], list[tuple[float, float]]]:
    """Latency vs offered load: {(profile, cores, policy): [(offered req/s, median metric
    over seeds and workloads of that load), ...] sorted by load}. Only ok rows with an
    offered load count. Pure."""
    acc: dict[tuple[str, int, str], dict[float, list[float]]] = {}
    for r in rows:
        load, value = r.get("offered_per_s"), r.get(metric)
        if r.get("status") != "ok" or load is None or value is None:
            continue
        if not (math.isfinite(load) and math.isfinite(value)):
            continue
        acc.setdefault((r["profile"], r["cores"], r["policy"]), {}).setdefault(load, []).append(value)
    return {k: sorted((load, _median(v)) for load, v in pts.items()) for k, pts in sorted(acc.items())}


def _multi_instance(row: Mapping) -> bool:
    """Whether an ok row priced a plan of more than one instance: its starting plan has
    several, or it reconfigured (to plans the row does not name)."""
    from packrat_sim.plan import PlanError, parse_compact

    if row.get("reconfigurations"):
        return True
    try:
        return len(parse_compact(str(row.get("plan") or "")).instances) > 1
    except PlanError:
        return False


def corun_notes(rows: Iterable[Mapping]) -> list[str]:
    """The one line (``predictor.NO_CORUN_NOTE``, or ``ISOLATED_NOTE`` for runs that ignored
    a model on request), followed by the profiles it concerns in parentheses, for ok rows
    that priced a multi-instance plan without co-run data. At most one line per kind. Pure."""
    from packrat_sim.predictor import ISOLATED_NOTE, NO_CORUN_NOTE

    by_note: dict[str, list[str]] = {}
    for r in rows:
        if r.get("status") != "ok" or r.get("corun") not in ("none", "isolated") or not _multi_instance(r):
            continue
        names = by_note.setdefault(NO_CORUN_NOTE if r["corun"] == "none" else ISOLATED_NOTE, [])
        if r["profile"] not in names:
            names.append(r["profile"])
    return [f"{note} ({', '.join(names)})" for note, names in by_note.items()]


def best_per_cell(rows: Iterable[Mapping], metric: str = "p99_ms") -> list[dict]:
    """For each cell (profile, cores, workload): the policy with the lowest median
    ``metric`` over its seeds (ties: the earlier policy name alphabetically), with that
    value, the runner-up's and the starting plan of the best. Pure; cells in sorted order."""
    acc: dict[tuple[str, int, str], dict[str, list[Mapping]]] = {}
    for r in rows:
        value = r.get(metric)
        if r.get("status") != "ok" or value is None or not math.isfinite(value):
            continue
        acc.setdefault((r["profile"], r["cores"], r["workload"]), {}).setdefault(r["policy"], []).append(r)
    out = []
    for (profile, cores, workload), by_policy in sorted(acc.items()):
        ranked = sorted((_median([x[metric] for x in rs]), policy) for policy, rs in by_policy.items())
        best_value, best = ranked[0]
        runner_up = ranked[1] if len(ranked) > 1 else (float("nan"), "")
        out.append(
            {
                "profile": profile,
                "cores": cores,
                "workload": workload,
                "offered_per_s": by_policy[best][0].get("offered_per_s"),
                "best_policy": best,
                f"best_{metric}": best_value,
                "runner_up": runner_up[1],
                f"runner_up_{metric}": runner_up[0],
                "plan": by_policy[best][0].get("plan"),
                "seeds": len(by_policy[best]),
            }
        )
    return out
