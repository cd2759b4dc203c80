"""Mutation fuzz of every input reader (issue 29): the engine shared by the CI test
(``tests/test_reader_fuzz.py``, a small seeded run) and the longer script
(``benchmarks/fuzz_readers.py``).

Each reader starts from a few valid seed files; every input is a seed with 1-4 mutations
(bytes changed, inserted, deleted, lines repeated or dropped, numbers swapped for hostile ones,
hostile tokens such as ``NaN``, ``1e400``, a 5,000-digit integer, ``\\ud800``, deep nesting, NUL,
non-UTF-8 bytes, and for JSON seeds whole values replaced or keys repeated). The input is written
to a file and read the way the CLI reads it, then what was read is used a little (a profile
printed as JSON, a history checked, a replay replayed, a workload described). Each input ends as:

* ``accepted``: read without error (and used without error);
* ``refused``: a :class:`~packrat_sim.errors.PackratError` with a printable one-line message (the
  CLI's exit 2);
* ``traceback``: any other exception, or an error message that cannot be printed as UTF-8;
* ``hang``: still running after the time limit (SIGALRM);
* ``dropped``: accepted, but a line that looks like an event (Jepsen, Porcupine kv) or a data row
  (Packrat CSV) was neither read nor refused, or a CSV row of another width than its header was
  read (its columns shifted).

Pure standard library plus the toolkit; deterministic for a seed.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import random
import re
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HISTORY_FIXTURES = ROOT / "tests" / "checker" / "fixtures"
PROFILE_FIXTURES = ROOT / "tests" / "packrat_sim" / "fixtures"

OUTCOMES = ("accepted", "refused", "traceback", "hang", "dropped")


class Hang(BaseException):
    """Raised by SIGALRM in the reader under test (a BaseException: readers' ``except Exception``
    does not swallow it)."""


class Dropped(Exception):
    """Raised by a reader's check when an accepted input lost a line silently."""


@dataclass
class Counts:
    """What one reader did with its inputs; ``examples``: the first few non-clean ones."""

    reader: str
    inputs: int = 0
    accepted: int = 0
    refused: int = 0
    traceback: int = 0
    hang: int = 0
    dropped: int = 0
    seconds: float = 0.0
    examples: list[tuple[str, str, bytes]] = field(default_factory=list)

    @property
    def bad(self) -> int:
        return self.traceback + self.hang + self.dropped

    def row(self) -> str:
        return (f"{self.reader:<16} {self.inputs:>7} {self.refused:>8} {self.accepted:>8} {self.traceback:>10} "
                f"{self.hang:>6} {self.dropped:>8} {self.seconds:>8.1f}")


HEADER = (f"{'reader':<16} {'inputs':>7} {'refused':>8} {'accepted':>8} {'tracebacks':>10} {'hangs':>6} "
          f"{'dropped':>8} {'seconds':>8}")


# ------------------------------------------------------------------------------- mutations

TOKENS: tuple[bytes, ...] = (
    b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"9" * 5000, b"-" + b"9" * 4400, b"\\ud800",
    b"\\udfff", b"\\ud83d\\ude00", b"[" * 300, b"{\"a\":" * 80, b"]", b"}", b"{", b"[", b"\"", b",", b":", b"\x00",
    b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xe2\x80\xa8", b"\xc2\x85", b"\x1c", b"\x1e", b"\x0c", b"\x0b", b"\r", b"\n",
    b"\r\n", b"\t", b" ", b"nil", b"true", b"false", b"null", b"-1", b"0", b"1.0", b"1e308", b"2147483648",
    b"18446744073709551617", b"\xef\xbb\xbf", b"'", b"\\", b"=", b"..", b"/s", b"@", b"+", b"x", b"\"\"", b"[]", b"{}",
    b":ok", b":invoke", b":fail", b":info", b":read", b":write", b":cas", b":nemesis", b"jepsen.util - ",
    b"INFO  jepsen.util - 1 :ok :read 3", b"{:process 9, :type :ok, :f :get, :key \"a\", :value \"x\"}",
    b":key", b":value", b":process", b"\"name\"", b"\"variant\"", b"\"params\"",
)

_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_JSON_PAIR = re.compile(rb'"[^"\\\n]{1,40}"\s*:\s*(?:-?\d[\d.eE+-]*|"[^"\\\n]{0,40}"|true|false|null)')

def _deep(levels: int) -> Any:
    value: Any = 0
    for _ in range(levels):
        value = [value]
    return value


JSON_VALUES: tuple[Any, ...] = (
    None, True, False, 0, -1, 1, 2**63, 10**30, 1.5, -0.0, 1e308, float("nan"), float("inf"), "", "x", "\ud800",
    "a" * 300, [], {}, [1, 2], {"a": 1}, _deep(20), "builtin:cnn-4",
)


def _json_nodes(obj: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    yield path, obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _json_nodes(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _json_nodes(v, path + (i,))


def _mutate_json(rng: random.Random, data: bytes) -> bytes:
    """Replace, delete or deepen one value of a JSON document (unchanged when it is not JSON)."""
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):
        return data
    nodes = list(_json_nodes(obj))
    path, _ = rng.choice(nodes)
    if not path:
        return data
    parent = obj
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    action = rng.random()
    if action < 0.15 and isinstance(parent, dict):
        del parent[last]
    elif action < 0.25 and isinstance(parent, list):
        del parent[last]
    elif action < 0.35:
        parent[last] = _deep(rng.choice((70, 200, 600)))
    elif action < 0.45 and isinstance(parent, dict):
        parent[rng.choice(["name", "variant", "schema", "model", "extra", "\ud800", ""])] = rng.choice(JSON_VALUES)
    else:
        parent[last] = rng.choice(JSON_VALUES)
    try:
        return json.dumps(obj, indent=rng.choice([None, 1])).encode("utf-8")
    except (ValueError, RecursionError):
        return data


def _lines_of(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def mutate(rng: random.Random, data: bytes, *, is_json: bool) -> bytes:
    """``data`` with 1-4 random mutations."""
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
        n = len(data)
        pos = rng.randrange(n + 1)
        op = rng.randrange(13 if is_json else 11)
        if op == 0 and n:
            i = rng.randrange(n)
            data = data[:i] + bytes([rng.randrange(256)]) + data[i + 1:]
        elif op == 1 and n:
            i = rng.randrange(n)
            data = data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1:]
        elif op in (2, 3):
            data = data[:pos] + rng.choice(TOKENS) + data[pos:]
        elif op == 4 and n:
            data = data[:pos] + data[pos + rng.randint(1, 16):]
        elif op == 5 and n:
            span = data[pos:pos + rng.randint(1, 32)]
            data = data[:pos] + span + data[pos:]
        elif op == 6:
            lines = _lines_of(data)
            i = rng.randrange(len(lines))
            if rng.random() < 0.5:
                del lines[i]
            else:
                lines.insert(i, lines[i])
            data = b"\n".join(lines)
        elif op == 7:
            lines = _lines_of(data)
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
            data = b"\n".join(lines)
        elif op == 8:
            numbers = list(_NUMBER.finditer(data))
            if numbers:
                m = rng.choice(numbers)
                hostile = rng.choice((b"NaN", b"1e400", b"9" * 5000, b"0", b"-1", b"1.5", b"1e308", b"99999999999",
                                      b"-0", b"true", b"\"1\"", b"1" * 40))
                data = data[:m.start()] + hostile + data[m.end():]
        elif op == 9:
            data = data[:pos] if rng.random() < 0.7 else data[pos:]
        elif op == 10:  # join two lines (a lost line break) or split one
            lines = _lines_of(data)
            if len(lines) > 1:
                i = rng.randrange(len(lines) - 1)
                lines[i:i + 2] = [lines[i] + rng.choice((b" ", b"", b"\t")) + lines[i + 1]]
            data = b"\n".join(lines)
        elif op == 11:
            data = _mutate_json(rng, data)
        elif op == 12:
            pairs = list(_JSON_PAIR.finditer(data))
            if pairs:
                m = rng.choice(pairs)
                data = data[:m.end()] + b", " + m.group(0) + data[m.end():]
    return data


# ------------------------------------------------------------------------- the readers


@dataclass(frozen=True)
class Reader:
    """A reader under fuzz: its seeds (file suffix, bytes) made in a work directory, and how to
    read one input file (raising on refusal; :class:`Dropped` for a silently lost line)."""

    name: str
    seeds: Callable[[Path], list[tuple[str, bytes]]]
    read: Callable[[Path], None]
    is_json: bool = False


def _printable(*texts: str) -> None:
    for t in texts:
        t.encode("utf-8")  # UnicodeEncodeError: a lone surrogate would crash the CLI's output


# -- profile JSON


def _profile_seeds(tmp: Path) -> list[tuple[str, bytes]]:
    from packrat_sim.profile import builtin_profile, dumps_profile

    return [(".json", dumps_profile(builtin_profile("cnn-2", max_batch=4)).encode()),
            (".json", dumps_profile(builtin_profile("transformer-3+interference", max_batch=2)).encode())]


def _read_profile(path: Path) -> None:
    from packrat_sim.profile import dumps_profile, read_profile

    profile = read_profile(str(path))
    _printable(profile.label(), dumps_profile(profile))
    for t, b, _ in profile.items():
        profile.predict(t, b)


# -- Packrat CSV


def _csv_head(name: str, rows: int) -> bytes:
    lines = (PROFILE_FIXTURES / name).read_bytes().split(b"\n")
    return b"\n".join(lines[: rows + 1]) + b"\n"


def _packrat_csv_seeds(tmp: Path) -> list[tuple[str, bytes]]:
    return [(".csv", _csv_head("packrat_resnet_8core.csv", 12)),
            (".csv", _csv_head("packrat_bert_4core_with_source.csv", 8))]


def _data_rows(text: str) -> tuple[int, int]:
    """(non-blank CSV records after the header: the rows a reader must use or refuse, how many
    of them have another number of fields than the header: rows it must refuse)."""
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")))
    data = [r for r in rows[1:] if r and any(x.strip() for x in r)]
    return len(data), sum(1 for r in data if len(r) != len(rows[0]))


def _read_packrat_csv(path: Path) -> None:
    from packrat_sim.profile import dumps_profile, import_packrat_csv, read_text

    text = read_text(str(path), "CSV")
    imported = import_packrat_csv(text, source=str(path))
    _printable(imported.profile.label(), dumps_profile(imported.profile))
    used = len(imported.profile.cells) + imported.merged_duplicates
    expected, misfit = _data_rows(text)
    if used != expected:
        raise Dropped(f"{expected} data rows, {used} read")
    if misfit:
        raise Dropped(f"{misfit} row(s) with another number of fields than the header were read (columns shifted)")


# -- plan files


def _plan_seeds(tmp: Path) -> list[tuple[str, bytes]]:
    from packrat_sim.optimizer import OptimizerOptions, optimize
    from packrat_sim.plan import dumps_plan
    from packrat_sim.profile import builtin_profile

    plan = optimize(builtin_profile("cnn-4", max_batch=16), 16, 4, OptimizerOptions())
    return [(".json", dumps_plan(plan).encode())]


def _read_plan(path: Path) -> None:
    from ui.cli.verify import load_plan_file

    plan = load_plan_file(str(path))
    _printable(plan.describe(), json.dumps(plan.to_json()))


# -- histories


def _history_seeds(names: tuple[str, ...]) -> Callable[[Path], list[tuple[str, bytes]]]:
    def seeds(tmp: Path) -> list[tuple[str, bytes]]:
        return [(Path(n).suffix, (HISTORY_FIXTURES / n).read_bytes()) for n in names]

    return seeds


def _check_history(history, model: str) -> None:
    from checker.linearizability import check, explain

    result = check(history, history.model or model, timeout=2.0, jobs=1)
    _printable(*explain(result, history, history.model or model), json.dumps(result.to_json(history, history.model or model)))


def _read_history_json(path: Path) -> None:
    from checker.history import read_history

    history = read_history(path, "json")
    if history.model is None:
        return
    _check_history(history, history.model)


_TYPES = {":invoke", ":ok", ":fail", ":info"}
_FS = {":read", ":write", ":cas"}
_INT = re.compile(r"[-+]?\d{1,30}\Z")
_KW = re.compile(r":[A-Za-z_*+!?<>=/.-]")


def jepsen_events_in(line: str) -> int:
    """The oracle: how many client events a Jepsen log line holds, judged from its fields alone
    (``PROCESS TYPE F`` with at most one of the three damaged, a keyword process excepted)."""
    fields = line.split()
    count = 0
    for i, tok in enumerate(fields):
        before = fields[i - 1] if i > 0 else ""
        if tok in _TYPES:
            if _INT.match(before) or (i + 1 < len(fields) and fields[i + 1] in _FS and not _KW.match(before)):
                count += 1
        elif tok in _FS and i > 1 and _INT.match(fields[i - 2]) and fields[i - 1] not in _TYPES:
            count += 1
    return count


def _text_lines(path: Path) -> list[str]:
    text = path.read_bytes().decode("utf-8").removeprefix("\ufeff")
    return [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]


def _read_jepsen(path: Path) -> None:
    from checker.history import LineReport, read_history

    report = LineReport()
    history = read_history(path, "jepsen", report=report)
    consumed = set(report.events)
    for n, line in enumerate(_text_lines(path), start=1):
        expected = jepsen_events_in(line)
        if expected > (1 if n in consumed else 0):
            raise Dropped(f"line {n} holds {expected} event(s), {int(n in consumed)} read: {line[:120]!r}")
    _check_history(history, "cas-register")


def _read_kv(path: Path) -> None:
    from checker.history import LineReport, read_history

    report = LineReport()
    history = read_history(path, "porcupine-kv", report=report)
    consumed = set(report.events)
    for n, line in enumerate(_text_lines(path), start=1):
        if line.strip() and n not in consumed:
            raise Dropped(f"line {n} was neither read nor refused: {line[:120]!r}")
    _check_history(history, "kv")


# -- workload specs

WORKLOAD_SPECS = (
    "poisson:rate=40/s,duration=10s,max_batch=16,max_delay=5ms",
    "closed:clients=4,batch=8,requests=64,think=2ms",
    "steps:32/s@20s,128/s@20s",
    "diurnal:base=20/s,peak=200/s,period=60s,duration=120s",
    "trace:arrivals.csv,unit=ms,max_batch=8",
)


def _workload_seeds(tmp: Path) -> list[tuple[str, bytes]]:
    return [("", s.encode()) for s in WORKLOAD_SPECS]


def _read_workload(path: Path) -> None:
    from packrat_sim.workload import describe, parse_workload, to_spec

    spec = path.read_bytes().decode("utf-8", "surrogateescape")  # as argv would give it
    workload = parse_workload(spec)
    for text in (describe(workload), to_spec(workload)):
        text.encode("utf-8", "surrogateescape")  # a trace path keeps the bytes argv gave it


# -- sweep grids

GRID_TOML = b"""profile = ["builtin:cnn-4", "builtin:transformer-4"]
cores = [2, 4]
workload = ["poisson:rate=40/s,duration=2s", "closed:clients=2,batch=4,requests=8"]
policy = ["packrat", "fat"]
seed = [0, 1]
"""


def _grid_seeds(tmp: Path) -> list[tuple[str, bytes]]:
    import tomllib

    return [(".toml", GRID_TOML), (".json", json.dumps(tomllib.loads(GRID_TOML.decode())).encode()),
            (".json", json.dumps({"grid": {"profile": "builtin:cnn-4", "cores": "1..4", "workload": [
                "poisson:rate=10..40/10/s,duration=2s"]}}).encode())]


def _read_grid(path: Path) -> None:
    from packrat_sim.sweep import load_grid

    grid = load_grid(str(path))
    _printable(json.dumps(grid.to_json(), ensure_ascii=False))
    grid.size()


# -- replay files


def _replay_seeds(tmp: Path) -> list[tuple[str, bytes]]:
    from checker.explore import explore, write_replay
    from checker.protocols import build

    out = []
    for variant in ("switch-before-ready", "ack-before-switch"):
        protocol = build("reconfig", variant)
        result = explore(protocol, "dpor", max_time=30)
        if result.violation is None:
            continue
        target = tmp / f"seed-{variant}.replay.json"
        write_replay(target, protocol, result.violation.schedule, result.violation, "dpor", 0)
        out.append((".json", target.read_bytes()))
    return out


def _read_replay(path: Path) -> None:
    from checker.explore import read_replay, replay

    protocol, schedule, _ = read_replay(path)
    result = replay(protocol, schedule, timeout=2.0)
    _printable(json.dumps(result.history.to_json()), protocol.label())


READERS: tuple[Reader, ...] = (
    Reader("profile JSON", _profile_seeds, _read_profile, is_json=True),
    Reader("Packrat CSV", _packrat_csv_seeds, _read_packrat_csv),
    Reader("plan", _plan_seeds, _read_plan, is_json=True),
    Reader("history JSON", _history_seeds(("register-ok.json", "cas-register-pending-ok.json",
                                           "serving-reconfigure-ok.json", "register-stale-read-illegal.json")),
           _read_history_json, is_json=True),
    Reader("Jepsen", _history_seeds(("stale-read-illegal.log", "cas-pending-ok.log", "failed-cas-illegal.log")),
           _read_jepsen),
    Reader("kv EDN", _history_seeds(("kv-ok.txt", "kv-lost-append-illegal.txt")), _read_kv),
    Reader("workload spec", _workload_seeds, _read_workload),
    Reader("sweep grid", _grid_seeds, _read_grid, is_json=True),
    Reader("replay file", _replay_seeds, _read_replay, is_json=True),
)


# ----------------------------------------------------------------------------- the run


@contextlib.contextmanager
def alarm(seconds: float, error: Callable[[], BaseException] = Hang) -> Iterator[None]:
    """Raise ``error()`` in this (main) thread when the block runs longer than ``seconds``: a
    blocked open() of a FIFO or a runaway parse is interrupted by SIGALRM."""
    def fire(signum, frame):
        raise error()

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def classify(reader: Reader, path: Path, timeout_s: float) -> tuple[str, str]:
    """(outcome, detail) of reading the input file at ``path``."""
    from packrat_sim.errors import PackratError

    try:
        with alarm(timeout_s):
            reader.read(path)
    except Hang:
        return "hang", f"still running after {timeout_s:g} s"
    except Dropped as exc:
        return "dropped", str(exc)
    except PackratError as exc:
        message = str(exc)
        try:
            _printable(message)
        except UnicodeEncodeError:
            return "traceback", f"unprintable error message: {ascii(message)[:300]}"
        if not message.strip():
            return "traceback", f"empty error message ({type(exc).__name__})"
        return "refused", message
    except Exception as exc:  # noqa: BLE001 - what the fuzz is looking for
        return "traceback", f"{type(exc).__name__}: {ascii(str(exc))[:300]}"
    return "accepted", ""


def fuzz_reader(reader: Reader, inputs: int, seed: int, *, timeout_s: float = 10.0, workdir: Path | None = None,
                keep_examples: int = 5) -> Counts:
    """Fuzz ``reader`` with ``inputs`` mutated inputs (seeded: the same seed, the same inputs)."""
    counts = Counts(reader.name)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="packrat-fuzz-", dir=workdir) as tmp_dir:
        tmp = Path(tmp_dir)
        seeds = reader.seeds(tmp)
        rng = random.Random(f"{seed}:{reader.name}")
        for k in range(inputs):
            suffix, base = seeds[k % len(seeds)]
            data = mutate(rng, base, is_json=reader.is_json)
            path = tmp / f"input-{k % 2}{suffix}"
            path.write_bytes(data)
            outcome, detail = classify(reader, path, timeout_s)
            counts.inputs += 1
            setattr(counts, outcome, getattr(counts, outcome) + 1)
            if outcome not in ("accepted", "refused") and len(counts.examples) < keep_examples:
                counts.examples.append((outcome, detail, data))
    counts.seconds = time.perf_counter() - start
    return counts


def reader_named(name: str) -> Reader:
    for r in READERS:
        if r.name == name:
            return r
    raise KeyError(name)
