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

Integer axes (cores, seed) and integer ladders (``9007199254740993..9007199254740995``) are
exact integers, never rounded through a float, and at most 2^63 - 1 (the table's 64-bit
integers; checked before any run). A ladder whose values coincide once formatted gives each
value once: every count (runs, ran, skipped) is a count of distinct rows.

Each run is one call of :func:`packrat_sim.simulator.simulate` and gives one **row**:
the parameters (``profile_digest``: a digest of the profile's content), the offered load (req/s; empty for closed loops), request latency
p50/p90/p99/mean/max (ms), throughput (req/s), core utilisation (0..1),
reconfigurations, mean batch size, the starting plan, its predicted latency, ``corun``
(how it was priced: ``calibrated`` with the profile's co-run model, the default when it
has one; ``isolated`` when ``Grid.isolated`` ignores it; ``none`` without one) and
``status`` (``ok`` or ``failed`` with ``error``). Rows are deterministic: the same run gives the same row in
any process, on any engine (the simulator is seeded per run, :func:`run_one` is pure).

:func:`run_sweep` writes rows to ``OUT/results.csv`` as they finish (appended and flushed,
so an interrupted sweep loses nothing), skips runs whose ``ok`` row is already there
(resumable; failed rows are tried again; a run's key, its ``run_id``, includes the profile's
content digest, so an edited profile file is run again), and at the end rewrites the table
tidily in grid order (atomically) plus ``results.parquet`` when pyarrow imports. The HTML
page of charts is written by ``ui/reports/sweep.py`` (plotly lives in ui only).

Every file of the output directory (``results.csv``, ``results.parquet``, ``grid.json``,
``report.html``) follows ``packrat_sim.files``' rules and is checked before any run starts
(:func:`prepare_out_dir`: no symlink, FIFO, device or directory in their place). One sweep at
a time writes a directory (:func:`sweep_lock`; a second is refused naming the first's pid).
A file that cannot be written after the runs (a full disk) does not lose the runs: the
result lists it in ``SweepResult.errors`` with the rows computed.
"""

from __future__ import annotations

import contextlib
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
from typing import IO, Any

from packrat_sim import files as safe_files
from packrat_sim.errors import PackratError
from packrat_sim.profile import profile_digest
from packrat_sim.spec import parse_ladder, split_items

AXES = ("profile", "cores", "workload", "policy", "seed")
REQUIRED_AXES = ("profile", "cores", "workload")
MAX_LADDER = 1_000_000  # points in one ladder
CONFIRM_ABOVE = 100_000  # runs; more need an explicit confirmation (``--yes``)
RESULTS_CSV = "results.csv"
RESULTS_PARQUET = "results.parquet"
GRID_JSON = "grid.json"
REPORT_HTML = "report.html"  # written by ui/reports/sweep.py, checked here with the others
#: Every file a sweep writes into its output directory.
OUTPUT_FILES = (RESULTS_CSV, RESULTS_PARQUET, GRID_JSON, REPORT_HTML)
#: The largest integer of an integer axis (cores, seed): the table's integers are 64-bit.
MAX_INT = 2**63 - 1

#: Columns of the tidy table, in order.
COLUMNS = (
    "run_id", "profile", "profile_digest", "cores", "workload", "offered_per_s", "policy", "seed", "status", "error",
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
    """The distinct values of the ladder ``LO..HI[/STEP][UNIT]`` as strings, or None if
    ``text`` is not a ladder (:func:`packrat_sim.spec.parse_ladder`: a ladder of integers is
    computed exactly); values that coincide once formatted are given once. SweepError for an
    empty, reversed, zero-step or oversized (more than ``MAX_LADDER`` points) ladder."""
    values = parse_ladder(text, max_points=MAX_LADDER, error=SweepError)
    return None if values is None else list(dict.fromkeys(values))


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
        """Number of distinct runs, ladders included (the rows the sweep gives)."""
        nw = distinct_workload_count(self.workloads)
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


def distinct_workload_count(workloads: Sequence[str]) -> int:
    """How many distinct concrete specs the workload values give together (two values whose
    ladders overlap give the common specs once). Exact up to ``MAX_LADDER`` specs in all
    (counted by expanding them); above, the sum of :func:`workload_count` (the specs of one
    value are always distinct)."""
    counts = [workload_count(w) for w in workloads]
    total = sum(counts)
    if len(workloads) <= 1 or total > MAX_LADDER:
        return total
    return len({c for w in workloads for c in expand_workload(w)})


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
    """The axes of a grid file's text (``fmt``: ``"toml"`` or ``"json"``) -> {axis: values}.

    JSON is read strictly (packrat_sim.inputs.loads_json: a duplicate key, NaN, an integer of
    thousands of digits, deep nesting or a lone surrogate is a SweepError); a NUL character is
    refused in either format."""
    from packrat_sim import inputs

    if not isinstance(text, str) or "\x00" in text:
        raise SweepError("grid is not text (it holds a NUL character)")
    if fmt == "json":
        try:
            data = inputs.loads_json(text, "the grid", error=SweepError)
        except SweepError as exc:
            raise SweepError(f"grid is {exc}") from None
    elif fmt == "toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - Python 3.10
            try:
                import tomli as tomllib
            except ImportError:
                raise SweepError("TOML grids need Python >= 3.11 (or pip install tomli); use a JSON grid") from None

        def finite_float(token: str) -> float:
            value = float(token)
            if not math.isfinite(value):
                raise SweepError(f"grid is not valid TOML: {token[:40]!r} is not a finite number")
            return value

        try:
            data = tomllib.loads(text, parse_float=finite_float)
        except tomllib.TOMLDecodeError as exc:
            raise SweepError(f"grid is not valid TOML: {exc}") from None
        except RecursionError:
            raise SweepError("grid is not valid TOML: nested too deeply") from None
        except ValueError as exc:  # an integer of thousands of digits (SweepError is one too)
            if isinstance(exc, SweepError):
                raise
            raise SweepError(f"grid is not valid TOML: {exc}") from None
        problem = inputs.tree_problem(data, inputs.MAX_JSON_DEPTH, True)
        if problem is not None:
            raise SweepError(f"grid is not valid TOML: {problem}")
    else:
        raise SweepError(f"grid format must be toml or json, got {fmt!r}")
    if not isinstance(data, dict):
        raise SweepError("a grid must be an object (table) of axes")
    if "grid" in data and isinstance(data["grid"], dict):
        data = data["grid"]
    axes: dict[str, list] = {}
    given: dict[str, str] = {}
    for key, value in data.items():
        name = _axis_name(str(key))
        if name in axes:  # "profile" and "profiles": the second would silently replace the first
            raise SweepError(f"the grid gives axis {name!r} twice (as {given[name]!r} and {str(key)!r})")
        given[name] = str(key)
        values = value if isinstance(value, list) else [value]
        axes[name] = list(values)
    return axes


def read_grid_file(path: str) -> dict[str, list]:
    """Axes of a ``.toml`` or ``.json`` grid file (the format from its extension; JSON
    when the text starts with ``{``). Read through packrat_sim.inputs: a regular file only
    (no device or FIFO), bounded, UTF-8 text without NUL; SweepError naming the path."""
    from packrat_sim import inputs

    text = inputs.read_text(path, "grid", error=SweepError)
    lower = path.lower()
    fmt = "json" if lower.endswith(".json") or (not lower.endswith(".toml") and text.lstrip().startswith("{")) else "toml"
    return parse_grid_text(text, fmt)


def _exact_int(axis: str, item: object) -> int:
    """``item`` (an int, an integral float below 2^53, or the text of an integer such as
    ``"9007199254740993"``, ``"5.0"``, ``"1e3"``) as an exact int; SweepError otherwise."""
    from decimal import Decimal, InvalidOperation

    if isinstance(item, bool):
        raise SweepError(f"axis {axis!r}: {item!r} is not an integer")
    if isinstance(item, int):
        return item
    if isinstance(item, float):
        if not item.is_integer():
            raise SweepError(f"axis {axis!r}: {item!r} is not an integer")
        if abs(item) >= 2**53:  # a float this large has already lost digits
            raise SweepError(f"axis {axis!r}: {item!r} is too large to be exact as a number; "
                             f"write it as an integer (or a string of digits)")
        return int(item)
    if isinstance(item, str) and len(item) <= 64:
        try:
            d = Decimal(item.strip())
        except InvalidOperation:
            d = None
        if d is not None and d.is_finite() and d == d.to_integral_value():
            return int(d)
    raise SweepError(f"axis {axis!r}: {item!r} is not an integer")


def _int_values(axis: str, values: Iterable[object], minimum: int) -> tuple[int, ...]:
    out: list[int] = []
    for v in values:
        if isinstance(v, str):
            ladder = ladder_values(v)
            items: list[object] = list(ladder) if ladder is not None else [v]
        else:
            items = [v]
        for item in items:
            n = _exact_int(axis, item)
            if n < minimum:
                raise SweepError(f"axis {axis!r}: {n} is below {minimum}")
            if n > MAX_INT:
                raise SweepError(f"axis {axis!r}: {n} is above {MAX_INT} (the results table's 64-bit integers)")
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
    profile_digest: str = ""  # digest of the profile's content (profile_digest()); "" when unknown

    @property
    def run_id(self) -> str:
        """Stable 16-hex-digit id of these parameters and the profile's content (the resume
        key: an edited profile file gives new ids; an isolated run gets another id than a
        calibrated one)."""
        params: list = [self.profile, self.cores, self.workload, self.policy, self.seed]
        if self.isolated:
            params.append("isolated")
        if self.profile_digest:
            params.append(f"profile:{self.profile_digest}")
        return hashlib.sha1(json.dumps(params).encode()).hexdigest()[:16]


def grid_profiles(grid: Grid, profiles: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """{spec: Profile} for every profile of ``grid``: those of ``profiles`` as given, the
    others loaded (:func:`load_profile_spec`; SweepError naming a bad one)."""
    given = profiles or {}
    return {spec: given[spec] if spec in given else load_profile_spec(spec) for spec in grid.profiles}


def grid_digests(grid: Grid, profiles: Mapping[str, Any] | None = None) -> dict[str, str]:
    """{spec: :func:`profile_digest`} for every profile of ``grid`` (see :func:`grid_profiles`):
    the ``digests`` that give :func:`expand` the ids :func:`run_sweep` uses."""
    return {spec: profile_digest(p) for spec, p in grid_profiles(grid, profiles).items()}


def expand(grid: Grid, digests: Mapping[str, str] | None = None) -> Iterator[RunParams]:
    """Every distinct run of the grid in grid order: profile, cores, workload (ladders
    expanded; a concrete spec that two workload values both give comes once, at its first
    place), policy, seed (the last varies fastest). ``digests``: {profile spec: its
    :func:`profile_digest`}, part of each run's id (:func:`run_sweep` passes them)."""
    digests = digests or {}
    for profile in grid.profiles:
        digest = digests.get(profile, "")
        for cores in grid.cores:
            seen: set[str] = set()
            for w in grid.workloads:
                for concrete in expand_workload(w):
                    if concrete in seen:
                        continue
                    seen.add(concrete)
                    for policy in grid.policies:
                        for seed in grid.seeds:
                            yield RunParams(profile, cores, concrete, policy, seed, grid.isolated, digest)


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


def _policy_args(spec: str, *, closed: bool = False) -> tuple[str, Any]:
    """(simulator policy name, SimConfig or None) of a policy value: ``packrat``,
    ``packrat-ewma``, ``fat``, ``thin`` or ``packrat:KEY=VALUE,...`` (options of
    ``packrat_sim.policy.PolicyConfig``; on a ``closed`` loop after its defaults,
    :func:`~packrat_sim.policy.load_overrides`). SweepError naming an unknown one."""
    from packrat_sim import simulator
    from packrat_sim.policy import PolicyError, load_overrides, parse_overrides, parse_policy

    try:
        name, items = parse_policy(spec)
        config = simulator.SimConfig(policy=parse_overrides(load_overrides(items, closed=closed))) if items else None
    except (PolicyError, ValueError) as exc:
        raise SweepError(f"axis 'policy': {exc}") from None
    return name, config


def _row_base(p: RunParams) -> dict:
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(run_id=p.run_id, profile=p.profile, profile_digest=p.profile_digest or None, cores=p.cores,
               workload=p.workload, policy=p.policy, seed=p.seed)
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
    from packrat_sim.workload import CLOSED_LOOPS, load_workload

    p = task.params
    co = corun(task_profile(task), p.isolated)
    profile = priced_profile(task_profile(task), co)  # calibrated by default
    try:
        workload = load_workload(p.workload)
        name, config = _policy_args(p.policy, closed=isinstance(workload, CLOSED_LOOPS))
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
    try:
        fh = safe_files.open_regular(path, "r", "sweep table")  # no symlink followed, no FIFO waited on
    except safe_files.OutputPathError as exc:
        raise SweepError(str(exc)) from None
    if fh is None:
        return []
    rows = []
    try:
        with fh:
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
    except UnicodeDecodeError:
        raise SweepError(f"{path} is not a sweep table (not UTF-8 text)") from None
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
    """Write the rows as Parquet if pyarrow imports; False (nothing written) otherwise.
    SweepError naming the path when a value does not fit its column (an integer beyond
    64 bits); OutputPathError when the file cannot be written."""
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
        try:
            columns[c] = pa.array(values, type=types.get(c, pa.string()))
        except (pa.ArrowException, OverflowError, TypeError, ValueError) as exc:
            raise SweepError(f"cannot write {path}: column {c!r}: {' '.join(str(exc).split())}") from None
    safe_files.write_file(path, lambda fh: pq.write_table(pa.table(columns), fh), "sweep Parquet table")
    return True


class _Appender:
    """Appends rows to the results CSV as they come, flushed one by one (through
    ``packrat_sim.files.open_regular``: no symlink followed, no FIFO). A write that fails
    (a full disk) stops the appending, never the sweep: ``error`` says why, and the rows
    are still in the final table."""

    def __init__(self, path: str):
        self.path = path
        self.error: str | None = None
        try:
            fh = safe_files.open_regular(path, "a", "sweep table")
        except safe_files.OutputPathError as exc:
            raise SweepError(str(exc)) from None
        assert fh is not None
        self._fh: IO[str] | None = fh
        self._w = csv.writer(fh, lineterminator="\n")
        try:
            size = os.fstat(fh.fileno()).st_size
            if size == 0:
                self._w.writerow(COLUMNS)
            elif not _ends_with_newline(path, size):  # a killed writer may have left half a line
                fh.write("\n")
            fh.flush()
        except OSError as exc:
            self._failed(exc)

    def _failed(self, exc: OSError) -> None:
        self.error = f"cannot append to {self.path}: {exc.strerror or exc}"
        self.close()

    def add(self, row: Mapping) -> None:
        if self._fh is None:
            return
        try:
            self._w.writerow([_cell_text(row.get(c)) for c in COLUMNS])
            self._fh.flush()
        except OSError as exc:
            self._failed(exc)

    def close(self) -> None:
        fh, self._fh = self._fh, None
        if fh is not None:
            with contextlib.suppress(OSError):
                fh.close()


def _ends_with_newline(path: str, size: int) -> bool:
    """Whether the file's byte at ``size - 1`` is a newline (read without following a link)."""
    fh = safe_files.open_regular(path, "r", "sweep table")
    if fh is None:
        return True
    with fh:
        return os.pread(fh.fileno(), 1, size - 1) == b"\n"


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
    the files written, the wall time (s), and ``errors``: one line per file that could not
    be written after the runs (the rows are complete all the same)."""

    rows: tuple[dict, ...]
    ran: int
    skipped: int
    failed: int
    files: tuple[str, ...]
    elapsed_s: float
    engine: str = ""
    workers: int = 0
    errors: tuple[str, ...] = ()  # files that could not be written after the runs, and why


def prepare_out_dir(out_dir: str) -> None:
    """Create the output directory (its parent must exist, as for every packrat output:
    ``packrat_sim.files.prepare_output_dir``) and check every file a sweep writes there
    (:data:`OUTPUT_FILES`: a symlink, FIFO, device or directory in their place is refused
    before any run); SweepError naming the path otherwise."""
    try:
        safe_files.prepare_output_dir(out_dir, "sweep output directory")
        for name in OUTPUT_FILES:
            safe_files.check_output_path(os.path.join(out_dir, name), "sweep output file")
    except safe_files.OutputPathError as exc:
        raise SweepError(str(exc)) from None


@contextlib.contextmanager
def sweep_lock(out_dir: str) -> Iterator[None]:
    """Hold the output directory for one sweep (``packrat_sim.files.output_lock``): a second
    sweep into the same directory, in any process, is refused at once with a SweepError
    naming the first's pid (else both would run every run and the table would keep only
    one's rows). The same thread may nest it (the CLI holds it around :func:`run_sweep`)."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(safe_files.output_lock(out_dir, "sweep output directory"))
        except safe_files.OutputPathError as exc:
            raise SweepError(str(exc)) from None
        yield


def _pending(grid: Grid, rows: Iterable[dict], digests: Mapping[str, str]) -> tuple[list[RunParams], dict[str, dict]]:
    """(runs still to do, in grid order; the ok rows among ``rows`` by run id)."""
    done = {r["run_id"]: r for r in rows if r["status"] == "ok"}
    todo = [p for p in expand(grid, digests) if p.run_id not in done]
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
    (:mod:`packrat_sim.engines`, ``packrat_sim/engines/ray.py``). Before any run the
    directory and its files are checked (:func:`prepare_out_dir`) and held
    (:func:`sweep_lock`). Rows are appended to ``results.csv`` as they finish; a task whose
    worker died twice, or that raised, gets a ``failed`` row and the sweep goes on. At the
    end the table is rewritten in grid order (rows of runs outside this grid that the
    directory already held are kept, after them), ``results.parquet`` is written when
    pyarrow imports, and ``grid.json`` records the grid; a file that cannot be written then
    is named in ``SweepResult.errors`` (the rows are returned all the same). ``progress`` is
    called after each finished run. Profiles are loaded once, here (unless the caller
    already loaded them: ``profiles``, {spec: Profile}), and travel with the tasks; each
    run's id includes its profile's content digest.
    """
    t0 = time.perf_counter()
    prepare_out_dir(out_dir)
    with sweep_lock(out_dir):
        return _run_sweep_held(grid, out_dir, engine, t0, progress=progress, runner=runner, retries=retries,
                               profiles=profiles)


def _run_sweep_held(grid: Grid, out_dir: str, engine: Any, t0: float, *, progress, runner, retries,
                    profiles) -> SweepResult:
    """:func:`run_sweep` once the directory is held."""
    csv_path = os.path.join(out_dir, RESULTS_CSV)
    previous = read_rows(csv_path)  # read once: the resume key and, at the end, the earlier rows
    loaded = grid_profiles(grid, profiles)
    digests = {spec: profile_digest(profile) for spec, profile in loaded.items()}
    todo, done = _pending(grid, previous, digests)
    tasks = make_tasks(todo, {spec: loaded[spec] for spec in dict.fromkeys(p.profile for p in todo)})
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
    for p in expand(grid, digests):
        total += 1
        row = all_rows.get(p.run_id)
        if row is not None and p.run_id not in seen:
            ordered.append(row)
            seen.add(p.run_id)
    extra = [r for rid, r in all_rows.items() if rid not in seen]
    files, errors = _write_tables(out_dir, grid, ordered + extra)
    if appender.error is not None and csv_path not in files:
        errors.insert(0, appender.error)
    return SweepResult(
        rows=tuple(ordered),
        ran=len(tasks),
        skipped=total - len(tasks),
        failed=failed,
        files=tuple(files),
        elapsed_s=time.perf_counter() - t0,
        engine=getattr(engine, "name", type(engine).__name__),
        workers=int(getattr(engine, "workers", 0) or 0),
        errors=tuple(errors),
    )


def _write_tables(out_dir: str, grid: Grid, rows: Sequence[Mapping]) -> tuple[list[str], list[str]]:
    """Write the tidy table, the Parquet table and ``grid.json``; (files written, one line per
    file that could not be written). Each is tried whatever became of the others."""
    files: list[str] = []
    errors: list[str] = []
    csv_path = os.path.join(out_dir, RESULTS_CSV)
    parquet = os.path.join(out_dir, RESULTS_PARQUET)
    grid_path = os.path.join(out_dir, GRID_JSON)

    def table() -> bool:
        write_rows(csv_path, rows)
        return True

    def grid_file() -> bool:
        safe_files.write_json(grid_path, grid.to_json(), "sweep grid")
        return True

    steps: list[tuple[str, Callable[[], bool]]] = [
        (csv_path, table), (parquet, lambda: write_parquet(parquet, rows)), (grid_path, grid_file),
    ]
    for path, step in steps:
        try:
            if step():
                files.append(path)
        except (SweepError, safe_files.OutputPathError) as exc:
            errors.append(str(exc))
    return files, errors


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
    value, the runner-up's and the starting plan of the best. Pure; cells in :func:`cell_order`
    (workloads by offered load, numerically: rate=50 before rate=100)."""
    acc: dict[tuple[str, int, str], dict[str, list[Mapping]]] = {}
    for r in rows:
        value = r.get(metric)
        if r.get("status") != "ok" or value is None or not math.isfinite(value):
            continue
        acc.setdefault((r["profile"], r["cores"], r["workload"]), {}).setdefault(r["policy"], []).append(r)
    out = []
    for (profile, cores, workload), by_policy in sorted(acc.items(), key=lambda kv: cell_order(kv[0], kv[1])):
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


def cell_order(cell: tuple[str, int, str], by_policy: Mapping[str, list[Mapping]]) -> tuple:
    """The sort key of a (profile, cores, workload) cell: profile, cores, then the workload's
    offered load as a number (closed loops, with no offered load, last), then its spec."""
    profile, cores, workload = cell
    load = next((r.get("offered_per_s") for rs in by_policy.values() for r in rs), None)
    known = load is not None and math.isfinite(load)
    return (profile, cores, not known, load if known else 0.0, workload)
