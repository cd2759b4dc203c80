"""`packrat check HISTORY...`: are these histories linearizable?

Reads histories (the toolkit's JSON, Jepsen logs or Porcupine key-value logs), checks each against
a sequential model with the WGL search of :mod:`checker.linearizability`, and prints the verdict.

One file: the verdict, the number of operations and partitions and the time taken; on ILLEGAL,
the operation that cannot be linearized and the longest linearizable prefix. ``--html FILE``
writes a self-contained page; ``--json`` prints one JSON object.

Several files (a directory, a glob such as ``'store/**/history.txt'``, or several paths): one line
per file (its verdict, or a one-line error for a file that cannot be read or parsed, while the
others are still checked), then a summary (counts of ok / illegal / unknown / unreadable, the
slowest file). ``--json`` prints one JSON object per file, one per line. A directory means the
regular files directly inside it (hidden files skipped); quote globs so the shell leaves ``**``.
Files are checked in this process for the first :data:`POOL_AFTER_S` seconds; with ``--jobs N``
the files left then go to N worker processes (output stays in file order).

A history file must be a regular file (a device or FIFO is refused, never read) of at most 256 MiB
(``packrat_sim.inputs``). In a Jepsen or Porcupine log, a line that looks like an event but does
not parse (a damaged ``jepsen.util -`` marker, a malformed field) is an error naming its line;
``--lenient`` leaves such lines out instead, with a warning giving their count (on stderr, and
``skipped_lines`` in ``--json``; in a batch, on the file's line).

Partitions are decided concurrently (``--jobs``, see :func:`checker.linearizability.check`); the
first ILLEGAL partition ends a file's check unless ``--all-partitions``. ``--timeout`` and
``--max-memory`` bound each file's check and give UNKNOWN, never OK.

Exit codes: 0 all linearizable, 1 some history not linearizable, 3 otherwise some unknown (timeout,
memory bound), 2 bad input (a single file that cannot be read; with several files, only when none
could be read).
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import math
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import typer

from ui.cli.common import EXIT_NEGATIVE, EXIT_OK, EXIT_UNKNOWN, BadInput, emit_json, output_file_arg

#: Model used when neither --model nor the history file names one.
DEFAULT_MODELS = {"jepsen": "cas-register", "porcupine-kv": "kv"}
FORMAT_CHOICES = ("auto", "json", "jepsen", "porcupine-kv")
_SIZE = re.compile(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMgGtT]?)(i?[bB])?\s*\Z")
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """``--max-memory`` text (bytes, or with a K/M/G/T suffix, binary units; ``0``: no bound) as
    bytes. Raises BadInput naming the value."""
    m = _SIZE.match(text or "")
    if m is None:
        raise BadInput(f"--max-memory {text!r} is not a size (expected e.g. 512M, 4G or 0 for no bound)")
    value = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if not math.isfinite(value) or value < 0:
        raise BadInput(f"--max-memory {text!r} is not a size (expected e.g. 512M, 4G or 0 for no bound)")
    if 0 < value < 1 << 20:
        raise BadInput(f"--max-memory {text!r} is below 1 MiB (0 means no bound)")
    return int(value)


def default_jobs() -> int:
    """The CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class CheckOptions:
    """The options shared by every file of one `packrat check`."""

    model: str | None = None
    fmt: str = "auto"
    timeout: float = 60.0
    jobs: int = 1
    all_partitions: bool = False
    max_memory: int | None = None  # bytes; None: the library's default (half of RAM); 0: none
    lenient: bool = False  # line formats: skip (and count) event lines that do not parse


def _validate(opts: CheckOptions) -> None:
    from checker.models import MODELS

    if opts.fmt not in FORMAT_CHOICES:
        raise BadInput(f"unknown --format {opts.fmt!r} (expected json, jepsen or porcupine-kv)")
    if opts.model is not None and opts.model not in MODELS:
        raise BadInput(f"unknown --model {opts.model!r} (expected one of {', '.join(MODELS)})")
    if not math.isfinite(opts.timeout) or opts.timeout < 0:
        raise BadInput(f"--timeout must be a finite number of seconds >= 0 (0: no limit), not {opts.timeout:g}")
    if opts.jobs < 1:
        raise BadInput(f"--jobs must be at least 1, not {opts.jobs}")


def load_history(path: str, opts: CheckOptions, report=None):
    """Read and parse one history file; returns (history, format, model name). Raises BadInput.
    ``report`` (a checker.history.LineReport) gets the lines read as events and, with
    ``opts.lenient``, those skipped."""
    from checker.history import HistoryError, detect_format, parse_history, read_history_text
    from checker.models import MODELS

    try:
        text = read_history_text(path)  # a regular file only, bounded, UTF-8 text
    except HistoryError as exc:  # unreadable, not a regular file, or not UTF-8: the message names the path
        raise BadInput(str(exc)) from None
    try:
        resolved_fmt = detect_format(text) if opts.fmt == "auto" else opts.fmt
        history = parse_history(text, resolved_fmt, lenient=opts.lenient, report=report)
    except HistoryError as exc:
        raise BadInput(f"{path}: {exc}") from None
    name = opts.model or history.model or DEFAULT_MODELS.get(resolved_fmt)
    if name is None:
        raise BadInput(f"{path}: the history names no model; pass --model {'|'.join(MODELS)}")
    if name not in MODELS:
        raise BadInput(f"{path}: unknown model {name!r} in the history (expected one of {', '.join(MODELS)})")
    return history, resolved_fmt, name


def check_one(path: str, opts: CheckOptions, report=None):
    """Load and check one file; returns (history, format, model, CheckResult). Raises BadInput.
    ``report``: see :func:`load_history`."""
    from checker.history import HistoryError
    from checker.linearizability import check
    from checker.models import ModelError

    history, fmt, name = load_history(path, opts, report)
    max_memory = opts.max_memory if opts.max_memory else (None if opts.max_memory is None else float("inf"))
    try:
        result = check(history, name, timeout=opts.timeout or None, jobs=opts.jobs,
                       all_partitions=opts.all_partitions, max_memory=max_memory)
    except (ModelError, HistoryError) as exc:
        raise BadInput(f"{path}: {exc}") from None
    return history, fmt, name, result


def _exit_code(verdict) -> int:
    from checker.linearizability import Verdict

    return {Verdict.OK: EXIT_OK, Verdict.ILLEGAL: EXIT_NEGATIVE, Verdict.UNKNOWN: EXIT_UNKNOWN}[verdict]


def run_check(
    history_path: str,
    model: str | None = None,
    fmt: str = "auto",
    timeout: float = 60.0,
    html: str | None = None,
    as_json: bool = False,
    jobs: int | None = None,
    all_partitions: bool = False,
    max_memory: int | None = None,
    lenient: bool = False,
) -> int:
    """Check one history file and print the verdict; returns the exit code. Raises BadInput.
    With ``lenient``, lines of a Jepsen or Porcupine log that look like events but do not parse
    are left out with a warning on stderr (their count) instead of being an error."""
    from checker.history import LineReport
    from checker.linearizability import explain

    opts = CheckOptions(model, fmt, timeout, default_jobs() if jobs is None else jobs, all_partitions, max_memory,
                        lenient)
    _validate(opts)
    output_file_arg(html, "--html")  # before checking: directory exists, not a symlink or device
    report = LineReport()
    history, resolved_fmt, name, result = check_one(history_path, opts, report)
    warning = skipped_note(report)
    if warning:
        print(f"packrat: warning: {history_path}: {warning}", file=sys.stderr)

    html_path = None
    if html:
        from checker.visualize import write_html

        try:
            html_path = str(write_html(html, history, result, name, title=f"packrat check {history_path}"))
        except OSError as exc:
            raise BadInput(f"cannot write --html {html!r}: {exc.strerror or exc}") from None

    if as_json:
        obj = result.to_json(history, name)
        obj["history"] = history_path
        obj["format"] = resolved_fmt
        if opts.lenient:
            obj.update(skipped_json(report))
        if html_path:
            obj["html"] = html_path
        emit_json(obj)
    else:
        for line in explain(result, history, name):
            typer.echo(line)
        if html_path:
            typer.echo(f"wrote {html_path}")
    return _exit_code(result.result)


def skipped_note(report) -> str | None:
    """The warning for lines ``--lenient`` left out (None when none was): their count and the
    first one's reason."""
    if report is None or not report.skipped:
        return None
    n = len(report.skipped)
    return (f"--lenient skipped {n} line{'s' if n != 1 else ''} that look like events but do not parse "
            f"(the verdict is about the rest); first: {report.skipped[0][1]}")


def skipped_json(report) -> dict:
    """The ``skipped_lines`` fields of a --json object under --lenient: the count and the first
    lines (number and reason, at most 20)."""
    return {"skipped_lines": len(report.skipped),
            "skipped": [{"line": n, "error": why} for n, why in report.skipped[:20]]}


_GLOB_MAGIC = re.compile(r"[*?\[]")


def expand_paths(args: list[str]) -> list[tuple[str, str | None]]:
    """The files named by ``args`` (files, directories, globs), in order, without duplicates, as
    ``(path, error)``: error is None, or why an argument names no file."""
    out: list[tuple[str, str | None]] = []
    seen: set[str] = set()

    def add(path: str, error: str | None = None) -> None:
        if path not in seen:
            seen.add(path)
            out.append((path, error))

    for arg in args:
        if os.path.isdir(arg):
            try:
                names = sorted(os.listdir(arg))
            except OSError as exc:
                add(arg, f"cannot list directory {arg!r}: {exc.strerror or exc}")
                continue
            files = [os.path.join(arg, n) for n in names
                     if not n.startswith(".") and os.path.isfile(os.path.join(arg, n))]
            if not files:
                add(arg, f"directory {arg!r} holds no files")
            for f in files:
                add(f)
        elif os.path.exists(arg) or not _GLOB_MAGIC.search(arg):
            add(arg)
        else:
            matches = sorted(p for p in glob.glob(arg, recursive=True) if os.path.isfile(p))
            if not matches:
                add(arg, f"no file matches {arg!r}")
            for f in matches:
                add(f)
    return out


@dataclass(frozen=True)
class FileVerdict:
    """The judgement of one file of a batch: ``result`` is ok / illegal / unknown / error;
    ``line`` the text line and ``obj`` the JSON object printed for it."""

    path: str
    result: str
    elapsed_s: float
    line: str
    obj: dict


def _error_verdict(path: str, error: str) -> FileVerdict:
    """The ``error`` verdict of a file of a batch that cannot be read or checked."""
    text = " ".join(str(error).split())
    if text.startswith(f"{path}: "):
        text = text[len(path) + 2:]
    return FileVerdict(path, "error", 0.0, f"ERROR    {path}: {text}",
                       {"history": path, "result": "error", "error": str(error)})


def judge_file(path: str, error: str | None, opts: CheckOptions) -> FileVerdict:
    """Check one file of a batch (``error``: why it names no file, or None). Never raises
    BadInput: a file that cannot be read or checked becomes an ``error`` verdict."""
    from checker.history import LineReport
    from checker.linearizability import Verdict, describe
    from checker.models import get_model

    if error is not None:
        return _error_verdict(path, error)
    report = LineReport()
    try:
        history, fmt, name, result = check_one(path, opts, report)
    except BadInput as exc:
        return _error_verdict(path, str(exc))
    obj = result.to_json(history, name)
    obj["history"] = path
    obj["format"] = fmt
    if opts.lenient:
        obj.update(skipped_json(report))
    n_parts, n_ops = len(result.partitions), result.operations
    line = (f"{result.result.value.upper():<8} {path}  ({name}, {n_ops} operation{'s' if n_ops != 1 else ''}, "
            f"{n_parts} partition{'s' if n_parts != 1 else ''}, {result.elapsed_s:.3f} s)")
    first = result.first_failed
    if result.result is Verdict.ILLEGAL and first is not None:
        where = "" if first.key is None else f"partition {first.key!r}: "
        if first.blocked is not None:
            op = history[first.blocked]
            line += f"  {where}operation {first.blocked} ({describe(get_model(name), op)}) cannot be linearized"
        else:
            line += f"  {where}not linearizable"
    elif result.result is Verdict.UNKNOWN:
        line += f"  {result.reason}"
    if report.skipped:
        line += f"  (warning: --lenient skipped {len(report.skipped)} malformed line{'s' if len(report.skipped) != 1 else ''})"
    return FileVerdict(path, result.result.value, result.elapsed_s, line, obj)


#: In a batch with ``--jobs N > 1``, files are checked in this process until this many seconds
#: have passed; the files left then go to N worker processes (one file at a time each). Measured:
#: a worker costs 0.1-0.3 s to start (about 1 s on a loaded 2-CPU machine), while 100 small
#: histories take about 0.5-2.5 s in one process, so small campaigns never pay for workers.
POOL_AFTER_S = 2.0


def _batch_worker(inbox, outbox) -> None:
    """Worker process of a batch: receive the options, then file indices and paths (None: stop),
    and send back ``(index, FileVerdict)`` for each."""
    opts = inbox.recv()
    while True:
        job = inbox.recv()
        if job is None:
            break
        index, path = job
        outbox.send((index, judge_file(path, None, opts)))


def _judge_in_workers(todo: list[tuple[int, str]], opts: CheckOptions, workers: int, deliver) -> None:
    """Judge files ``todo`` ``[(index, path)]`` in ``workers`` worker processes, two files in
    flight per worker; calls ``deliver(index, FileVerdict)`` as results come. Every worker has
    exited when it returns or raises (Ctrl-C included)."""
    import subprocess
    from multiprocessing.connection import Connection, wait
    from typing import cast

    from packrat_sim.engines.spawn import spawn_worker, stop_workers

    worker_opts = dataclasses.replace(opts, jobs=1)
    queue = list(reversed(todo))
    procs: list[subprocess.Popen] = []
    # reader -> (process, writer, files in flight: index -> path)
    readers: dict[Connection, tuple[subprocess.Popen, Connection, dict[int, str]]] = {}
    dead: set = set()
    try:
        for _ in range(workers):
            proc, reader, writer = spawn_worker("ui.cli.check:_batch_worker", worker_opts, keep_open=True)
            procs.append(proc)
            if writer is None:  # not reached: keep_open=True gives the writer
                raise RuntimeError("spawn_worker(keep_open=True) gave no connection to the worker")
            readers[reader] = (proc, writer, {})
            for _ in range(2):
                if queue:
                    job = queue.pop()
                    writer.send(job)
                    readers[reader][2][job[0]] = job[1]
        while any(entry[2] for entry in readers.values()):
            for ready in wait([r for r, e in readers.items() if e[2]]):
                reader = cast(Connection, ready)  # wait() returns the connections it was given
                proc, writer, inflight = readers[reader]
                try:
                    index, verdict = reader.recv()
                except (EOFError, OSError):  # the worker died: its files get an error line each
                    for index, path in inflight.items():
                        deliver(index, _error_verdict(path, "the worker process checking it died"))
                    inflight.clear()
                    dead.add(reader)
                    continue
                del inflight[index]
                deliver(index, verdict)
            for reader, (_, writer, inflight) in readers.items():
                while queue and reader not in dead and len(inflight) < 2:
                    job = queue.pop()
                    writer.send(job)
                    inflight[job[0]] = job[1]
            if queue and len(dead) == len(readers):
                raise BadInput(f"every check worker process died; {len(queue)} histories were not checked")
        for reader, entry in readers.items():
            if reader in dead:
                continue
            with contextlib.suppress(OSError):
                entry[1].send(None)
    finally:
        for reader, (_, writer, _) in readers.items():
            writer.close()
            reader.close()
        stop_workers(procs)


def _judge_text(args: tuple) -> Any:
    """Runs in a worker: judge one history given as (display path, text, options) by writing
    it to a private temporary file of the same name and calling :func:`judge_file`;
    the verdict names the original path."""
    import dataclasses
    import tempfile

    path, text, opts = args
    with tempfile.TemporaryDirectory(prefix="packrat-check-") as tmp:
        local = os.path.join(tmp, os.path.basename(path) or "history")
        with open(local, "w", encoding="utf-8") as fh:
            fh.write(text)
        verdict = judge_file(local, None, opts)
    obj = dict(verdict.obj)
    obj["history"] = path
    return dataclasses.replace(verdict, path=path, line=verdict.line.replace(local, path), obj=obj)


def judge_files_on_engine(todo: list[tuple[int, str]], opts: Any, engine: Any,
                          deliver: Callable[[int, Any], None], error_verdict: Callable[[str, str], Any]) -> None:
    """Judge files ``[(index, path)]`` as tasks of ``engine`` (their text read here and sent),
    calling ``deliver(index, FileVerdict)`` as results come; a file that cannot be read here,
    or whose task failed, gets ``error_verdict(path, why)``."""
    tasks, where = [], []
    from checker.history import HistoryError, read_history_text

    for index, path in todo:
        try:
            text = read_history_text(path)  # a regular file only (no FIFO or device), bounded, UTF-8
        except HistoryError as exc:
            deliver(index, error_verdict(path, str(exc)))
            continue
        tasks.append((path, text, opts))
        where.append(index)
    for outcome in engine.map(_judge_text, tasks):
        index = where[outcome.index]
        if outcome.ok:
            deliver(index, outcome.value)
        else:
            deliver(index, error_verdict(tasks[outcome.index][0], outcome.error))


def run_check_many(paths: list[str], opts: CheckOptions, as_json: bool = False, engine=None) -> int:
    """Check every file ``paths`` names; one line (or JSON object) per file, in order, then a
    summary. With ``opts.jobs > 1``, the files left after :data:`POOL_AFTER_S` seconds are
    checked by worker processes.

    Returns the exit code: 1 if any history is illegal, else 3 if any is unknown, else 0; raises
    BadInput (exit 2) only when no file could be checked."""
    import time

    _validate(opts)
    files = expand_paths(paths)
    verdicts: list[FileVerdict | None] = [None] * len(files)
    printed = 0

    def deliver(index: int, verdict: FileVerdict) -> None:
        nonlocal printed
        verdicts[index] = verdict
        while printed < len(files):
            v = verdicts[printed]
            if v is None:
                break
            if as_json:
                emit_json(v.obj)
            else:
                typer.echo(v.line)
            printed += 1

    start = time.perf_counter()
    k = 0
    # --engine ray: every file is a task of the engine (see ui/cli/engine.py); otherwise files are
    # judged here, and with --jobs N > 1 those left after POOL_AFTER_S seconds go to workers.
    while engine is None and k < len(files):
        if opts.jobs > 1 and len(files) - k > 1 and time.perf_counter() - start > POOL_AFTER_S:
            break
        deliver(k, judge_file(files[k][0], files[k][1], opts))
        k += 1
    if k < len(files):
        todo = []
        for i in range(k, len(files)):
            path, error = files[i]
            if error is None:
                todo.append((i, path))
            else:
                deliver(i, _error_verdict(path, error))
        if engine is not None:
            judge_files_on_engine(todo, dataclasses.replace(opts, jobs=1), engine, deliver, _error_verdict)
        elif todo:
            _judge_in_workers(todo, opts, min(opts.jobs, len(todo)), deliver)

    final = [v for v in verdicts if v is not None]
    if len(final) != len(files):  # not reached: every file is delivered a verdict or an error line
        raise RuntimeError(f"{len(files) - len(final)} histories got no verdict")
    counts = {"ok": 0, "illegal": 0, "unknown": 0, "error": 0}
    for v in final:
        counts[v.result] += 1
    checked = [v for v in final if v.result != "error"]
    if not as_json:
        summary = (f"{len(files)} histor{'y' if len(files) == 1 else 'ies'}: {counts['ok']} ok, "
                   f"{counts['illegal']} illegal, {counts['unknown']} unknown, {counts['error']} unreadable")
        if checked:
            slowest = max(checked, key=lambda v: v.elapsed_s)
            summary += (f"; slowest {slowest.path} ({slowest.elapsed_s:.3f} s); "
                        f"total {time.perf_counter() - start:.3f} s")
        typer.echo(summary)
    if not checked:
        raise BadInput(f"none of the {len(files)} histories could be checked")
    if counts["illegal"]:
        return EXIT_NEGATIVE
    if counts["unknown"]:
        return EXIT_UNKNOWN
    return EXIT_OK


def _single_file(paths: list[str]) -> bool:
    """One argument naming one file (or nothing at all: its error is reported as for one file)."""
    if len(paths) != 1:
        return False
    p = paths[0]
    return not os.path.isdir(p) and (os.path.exists(p) or not _GLOB_MAGIC.search(p))


def register(app: typer.Typer) -> None:
    """Add the `check` verb to the `packrat` app."""

    @app.command(
        "check",
        help=(
            "Check histories for linearizability (OK / ILLEGAL / UNKNOWN). HISTORY is the toolkit's "
            "JSON history, a Jepsen log or a Porcupine key-value log; several files, a directory or a "
            "quoted glob check each file and print one line per file and a summary. Exit codes: 0 ok, "
            "1 illegal, 2 bad input, 3 unknown (timeout, memory bound)."
        ),
    )
    def check_command(
        histories: list[str] = typer.Argument(..., help="History files, directories or globs.",
                                              metavar="HISTORY", show_default=False),
        model: str | None = typer.Option(
            None, "--model",
            help="register | cas-register | kv | serving. Default: the history's \"model\" (json), "
                 "cas-register (jepsen), kv (porcupine-kv).",
        ),
        fmt: str = typer.Option(
            "auto", "--format", help="json | jepsen | porcupine-kv (default: detected from each file's content)."
        ),
        timeout: float = typer.Option(60.0, "--timeout", metavar="S",
                                      help="Give up on a history with UNKNOWN after S seconds (0: no limit)."),
        jobs: int | None = typer.Option(
            None, "--jobs", metavar="N",
            help="Processes for partitions still undecided after 1 s in this process: it keeps one "
                 "share, N-1 workers take the rest (default: the CPUs this process may use; 1: stay "
                 "in this process).",
        ),
        all_partitions: bool = typer.Option(
            False, "--all-partitions",
            help="Decide every partition instead of stopping at the first ILLEGAL one.",
        ),
        max_memory: str | None = typer.Option(
            None, "--max-memory", metavar="SIZE",
            help="Give up with UNKNOWN when the search grows memory by SIZE (e.g. 512M, 4G; "
                 "0: no bound). Default: half of this machine's RAM.",
        ),
        html: str | None = typer.Option(None, "--html", metavar="FILE",
                                           help="Write a self-contained HTML explanation to FILE (one history)."),
        as_json: bool = typer.Option(False, "--json",
                                     help="Print one JSON object on stdout (one per line and file for several)."),
        lenient: bool = typer.Option(
            False, "--lenient",
            help="Jepsen and Porcupine logs: leave out lines that look like events but do not parse "
                 "(a damaged line), with a warning giving their count, instead of exit 2. The verdict "
                 "is then about the lines that parsed.",
        ),
        engine: str = typer.Option("local", "--engine",
                                   help="Several files: local (this process, and --jobs workers) or ray (one task per file)."),
        ray_address: str | None = typer.Option(None, "--ray-address",
                                                  help="With --engine ray: auto or HOST:PORT (default: a local Ray instance)."),
    ) -> None:
        memory = None if max_memory is None else parse_size(max_memory)
        n_jobs = default_jobs() if jobs is None else jobs
        if _single_file(histories):
            code = run_check(histories[0], model=model, fmt=fmt, timeout=timeout, html=html, as_json=as_json,
                             jobs=n_jobs, all_partitions=all_partitions, max_memory=memory, lenient=lenient)
        else:
            if html:
                raise BadInput("--html needs a single history file")
            opts = CheckOptions(model, fmt, timeout, n_jobs, all_partitions, memory, lenient)
            if engine == "local" and ray_address is None:
                code = run_check_many(histories, opts, as_json=as_json)
            else:
                from ui.cli.engine import make_engine

                eng = make_engine(engine, None, ray_address)
                try:
                    code = run_check_many(histories, opts, as_json=as_json, engine=eng)
                finally:
                    eng.close()
        if code:
            raise typer.Exit(code)
