"""Histories: operations on closed real-time intervals, and the file formats they come in.

An :class:`Operation` is one call a client made: ``input`` at time ``call``, ``output`` at time
``ret``. The interval ``[call, ret]`` is closed, so two operations whose endpoints touch overlap.
A *pending* operation has ``ret=None``: the client never saw an answer, so the operation may or may
not have taken effect (at any time after its call). A completed operation whose answer is not known
(a read that timed out) has ``output=UNKNOWN_OUTPUT``.

A :class:`History` is a validated tuple of operations:

- ``ret >= call`` for every completed operation; times are finite numbers (integers in files
  written by the toolkit);
- a client never has two operations outstanding: its next call comes strictly after its previous
  return (closed intervals), and a pending operation is the client's last.

Formats (``read_history`` / ``parse_history``):

``json``
    The toolkit's own, written by the simulator, the real runner and the explorer::

        {"schema": "packrat.history/1", "model": "serving",
         "operations": [{"client": 0, "input": ..., "output": ... or null,
                         "call": t0, "ret": t1 or null}]}

    ``schema`` may be omitted (a file with just ``{"operations": [...]}`` is accepted); any other
    schema is rejected. ``model`` is optional. An operation may carry ``"output_unknown": true`` for
    a completed operation whose output was never observed. Other keys of an operation are ignored.

``jepsen``
    Jepsen's logged register histories, one event per line::

        INFO  jepsen.util - PROCESS TYPE F VALUE

    Fields are separated by any run of whitespace. TYPE is ``:invoke``, ``:ok``, ``:fail`` or
    ``:info``; F is ``:read``, ``:write`` or ``:cas``; VALUE is ``nil``, an integer, ``[FROM TO]``
    for cas, or a keyword such as ``:timed-out``. Semantics (the register starts at nil):

    - ``:ok`` completes the process's open call; a read returns nil or a value, a cas returns true;
    - ``:fail`` means the operation did not take effect. A failed cas is kept as a cas that returned
      false (legal only where the register did not hold FROM); a failed write or read is dropped,
      except ``:fail :read :timed-out``, which completes the read with an unknown value;
    - ``:info`` means indeterminate: the call stays open forever (pending), and that process never
      invokes again.

    Fields after VALUE (such as ``:hint 0`` in some logs) are ignored.

    Line handling: blank lines and lines of other loggers are ignored, and so are ``jepsen.util``
    lines whose process is a keyword (``:nemesis``) or that are free text (no integer process, no
    event type or function among their fields). A ``jepsen.util`` line whose process is an integer,
    or that holds an event type or function, is an event and must parse; so must a line without an
    intact ``jepsen.util -`` marker that still reads like ``PROCESS TYPE F`` (an integer then an
    event type, an event type then a function, or an integer two fields before a function): a
    damaged marker never turns an event into a silently ignored line. A line that must parse and
    does not is an error naming the line number and its text, or, with ``lenient=True`` (``packrat
    check --lenient``), is left out and counted. Lines end at ``\\n`` only. Times are event numbers.

    A log without client events is an empty history (linearizable) when it is blank (an empty file:
    a cluster that never started) or has ``jepsen.util`` lines; one with neither (only other
    loggers' lines) is not a Jepsen log and is refused, as is one whose every event was skipped.

``porcupine-kv``
    Porcupine's key-value logs, one EDN map per line::

        {:process 0, :type :invoke, :f :get, :key "3", :value nil}
        {:process 0, :type :ok, :f :get, :key "3", :value "x 0 0 y"}

    ``:type`` is ``:invoke`` or ``:ok`` (``:fail`` drops the operation, ``:info`` leaves it pending);
    ``:f`` is ``:get``, ``:put`` or ``:append``; ``:value`` is nil on a get invoke, otherwise a
    string (a nil get result reads as ``""``). ``:key`` is a string or an integer, and keeps its
    type (``"1"`` and ``1`` are two keys). Every line but blank ones must parse (or, with
    ``lenient=True``, is left out and counted). Times are event numbers. A blank log is an empty
    history; one whose every line was skipped is refused.

Empty files: given a line format explicitly they are empty histories (above); format detection
refuses them (:func:`detect_format`: nothing tells the format, and an empty file may be one whose
writing failed), naming ``--format`` as the way to check one. An empty ``json`` text is malformed.

Speed: canonical lines (those of Porcupine's logs) are read by one regex each (a kv log of only
canonical lines by one regex pass over the whole text), everything else by the careful parser;
both give the same operations (tests/checker/test_history_fast_parse.py).

Operation inputs produced by the line formats are the dictionaries the models in
:mod:`checker.models` read: ``{"op": "read"}``, ``{"op": "write", "value": v}``,
``{"op": "cas", "from": a, "to": b}`` (output ``True``/``False``), ``{"op": "get", "key": k}``,
``{"op": "put", "key": k, "value": v}``, ``{"op": "append", "key": k, "value": v}``.

Every problem with the input is a :class:`HistoryError` (a ``ValueError``) whose message names the
bad value, and for line formats the line number and its text.
"""

from __future__ import annotations

import gc
import json
import math
import re
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packrat_sim import inputs, validate
from packrat_sim.errors import PackratError
from packrat_sim.files import write_text

__all__ = [
    "FORMATS",
    "SCHEMA",
    "UNKNOWN_OUTPUT",
    "History",
    "HistoryError",
    "LineReport",
    "Operation",
    "detect_format",
    "history_from_json",
    "parse_history",
    "parse_jepsen",
    "parse_json",
    "parse_porcupine_kv",
    "read_history",
    "read_history_text",
    "to_json",
    "write_history",
]

SCHEMA = "packrat.history/1"
FORMATS = ("json", "jepsen", "porcupine-kv")


class HistoryError(PackratError):
    """A history (or history file) is malformed; the message names the bad value or line."""


class _UnknownOutput:
    """Type of :data:`UNKNOWN_OUTPUT`; there is exactly one instance."""

    __slots__ = ()
    _instance: _UnknownOutput | None = None

    def __new__(cls) -> _UnknownOutput:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN_OUTPUT"

    def __reduce__(self):
        return (_UnknownOutput, ())

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self


#: The output of an operation whose result was never observed: a pending operation (the checker
#: uses it for every operation with ``ret=None``) or a completed one such as a timed-out read.
#: Models accept it in every state.
UNKNOWN_OUTPUT = _UnknownOutput()


def _is_time(value: Any) -> bool:
    """True for an int (not a bool) or a finite float: a time of a history."""
    return validate.is_integer(value) or (isinstance(value, float) and math.isfinite(value))


@dataclass(frozen=True)
class Operation:
    """One call of one client, on the closed interval ``[call, ret]``.

    ``ret=None`` makes the operation pending (it may or may not have taken effect, at any time after
    ``call``); its ``output`` is then ignored. ``client`` is an int or a str. Construction checks the
    times and raises :class:`HistoryError` naming the bad value. Operations compare by value; they
    are hashable when their input and output are.
    """

    client: Hashable
    input: Any
    output: Any = None
    call: int | float = 0
    ret: int | float | None = None

    def __post_init__(self) -> None:
        if not (validate.is_integer(self.client) or isinstance(self.client, str)):
            raise HistoryError(f"client must be an integer or a string, not {self.client!r}")
        if not _is_time(self.call):
            raise HistoryError(f"call time must be a finite number, not {self.call!r}")
        if self.ret is not None:
            if not _is_time(self.ret):
                raise HistoryError(f"return time must be a finite number or null, not {self.ret!r}")
            if self.ret < self.call:
                raise HistoryError(
                    f"operation of client {self.client!r} returns at {self.ret!r} before its call at {self.call!r}"
                )

    @property
    def pending(self) -> bool:
        """True when the operation never returned (``ret is None``)."""
        return self.ret is None


@dataclass(frozen=True, init=False)
class History:
    """A validated sequence of operations, optionally naming the model it should be checked against.

    Validation (raises :class:`HistoryError` naming the operations involved): every element is an
    :class:`Operation`; per client, operations do not overlap (the next call is strictly after the
    previous return) and only the client's last operation may be pending.
    """

    operations: tuple[Operation, ...]
    model: str | None

    def __init__(self, operations: Iterable[Operation] = (), model: str | None = None) -> None:
        ops = tuple(operations)
        for i, op in enumerate(ops):
            if not isinstance(op, Operation):
                raise HistoryError(f"operation {i} is not an Operation: {op!r}")
        if model is not None and not isinstance(model, str):
            raise HistoryError(f"model must be a string, not {model!r}")
        _validate(ops)
        object.__setattr__(self, "operations", ops)
        object.__setattr__(self, "model", model)

    def __len__(self) -> int:
        return len(self.operations)

    def __iter__(self) -> Iterator[Operation]:
        return iter(self.operations)

    def __getitem__(self, index: int) -> Operation:
        return self.operations[index]

    @property
    def clients(self) -> tuple[Hashable, ...]:
        """The clients, in order of first appearance."""
        return tuple(dict.fromkeys(op.client for op in self.operations))

    @property
    def pending(self) -> tuple[int, ...]:
        """Indices of the pending operations."""
        return tuple(i for i, op in enumerate(self.operations) if op.ret is None)

    def to_json(self, model: str | None = None) -> dict:
        """The JSON object of the toolkit's format (see :func:`to_json`)."""
        return to_json(self, model=model)


def _validate(ops: Sequence[Operation]) -> None:
    by_client: dict[Hashable, list[int]] = {}
    for i, op in enumerate(ops):
        by_client.setdefault(op.client, []).append(i)
    for client, indices in by_client.items():
        indices.sort(key=lambda i: (ops[i].call, math.inf if ops[i].ret is None else ops[i].ret))
        for a, b in zip(indices, indices[1:]):
            prev, nxt = ops[a], ops[b]
            if prev.ret is None:
                raise HistoryError(
                    f"client {client!r} has two operations outstanding: operation {a} (called at "
                    f"{prev.call!r}) never returns, but operation {b} is called at {nxt.call!r}; "
                    "a pending operation must be the client's last"
                )
            if nxt.call <= prev.ret:
                raise HistoryError(
                    f"client {client!r} has two operations outstanding: operation {b} is called at "
                    f"{nxt.call!r}, before operation {a} (called at {prev.call!r}) returned at "
                    f"{prev.ret!r}"
                )


# --------------------------------------------------------------------------------------------
# JSON


def to_json(history: History, model: str | None = None) -> dict:
    """The history as the toolkit's JSON object (``packrat.history/1``).

    ``model`` overrides ``history.model``; the key is omitted when both are None. Inputs and outputs
    must be JSON-serialisable; :data:`UNKNOWN_OUTPUT` is written as ``"output": null,
    "output_unknown": true``.
    """
    out: dict[str, Any] = {"schema": SCHEMA}
    name = model if model is not None else history.model
    if name is not None:
        out["model"] = name
    rows = []
    for op in history.operations:
        row: dict[str, Any] = {"client": op.client, "input": op.input}
        if op.output is UNKNOWN_OUTPUT:
            row["output"] = None
            row["output_unknown"] = True
        else:
            row["output"] = op.output
        row["call"] = op.call
        row["ret"] = op.ret
        rows.append(row)
    out["operations"] = rows
    return out


def write_history(history: History, path: str | Path, model: str | None = None, *,
                  extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``history`` to ``path`` in the toolkit's JSON format; returns the path. ``extra``:
    more top-level keys (readers of the format ignore keys they do not know)."""
    obj = to_json(history, model=model) | dict(extra or {})
    return write_text(path, json.dumps(obj, indent=None, separators=(",", ":")) + "\n", "history")


def history_from_json(obj: Any) -> History:
    """Build a :class:`History` from a decoded JSON object of the toolkit's format."""
    if not isinstance(obj, dict):
        raise HistoryError(f"a history must be a JSON object with \"operations\", not {type(obj).__name__}")
    schema = obj.get("schema", SCHEMA)
    if schema != SCHEMA:
        raise HistoryError(f"unknown history schema {schema!r} (this reader knows {SCHEMA!r})")
    if "operations" not in obj:
        raise HistoryError("history object has no \"operations\" list")
    rows = obj["operations"]
    if not isinstance(rows, list):
        raise HistoryError(f"\"operations\" must be a list, not {type(rows).__name__}")
    model = obj.get("model")
    if model is not None and not isinstance(model, str):
        raise HistoryError(f"\"model\" must be a string, not {model!r}")
    ops = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise HistoryError(f"operation {i} must be an object, not {_short(row)}")
        for key in ("client", "input", "call", "ret"):
            if key not in row:
                raise HistoryError(f"operation {i} has no {key!r}: {_short(row)}")
        output = row.get("output")
        if row.get("output_unknown") is True:
            output = UNKNOWN_OUTPUT
        try:
            ops.append(Operation(row["client"], row["input"], output, row["call"], row["ret"]))
        except HistoryError as exc:
            raise HistoryError(f"operation {i}: {exc}") from None
    return History(ops, model=model)


def parse_json(text: str) -> History:
    """Parse the toolkit's JSON history format, strictly (packrat_sim.inputs.loads_json: a
    duplicate key, NaN, Infinity, an integer of thousands of digits, nesting deeper than
    ``MAX_JSON_DEPTH`` or a lone surrogate is a HistoryError)."""
    obj = inputs.loads_json(text, "a JSON object of the history", error=HistoryError)
    return history_from_json(obj)


# --------------------------------------------------------------------------------------------
# Line formats: shared assembly of invoke/complete events into operations


class _Assembler:
    """Pairs invocations with completions, per process, numbering events as times 1, 2, ...

    :meth:`add` takes one parsed event ``(process, type, f, payload)`` (see :func:`_jepsen_line`)
    of line ``line_no``; one that breaks a process's protocol (an invocation while its previous
    call is open or after its :info, a result without a call or of another function) is a
    HistoryError naming the line. :meth:`finish` leaves the open calls pending."""

    def __init__(self) -> None:
        self.events = 0  # the time of the latest event
        self.open: dict[Hashable, tuple[int, Any, str, int]] = {}  # process -> (call, input, f, line)
        self.crashed: dict[Hashable, int] = {}  # process -> line of its :info
        self.ops: list[Operation] = []

    def add(self, line_no: int, line: str, event: tuple[Hashable, str, str, Any]) -> None:
        """Record one event (raises HistoryError naming the line; nothing is recorded then)."""
        process, kind, f, payload = event
        if kind == "invoke":
            self._invoke(line_no, line, process, f, payload)
        elif kind == "info":
            call, inp = self._take(line_no, line, process, f, "indeterminate result")
            self.events += 1
            self.crashed[process] = line_no
            self.ops.append(_operation(process, inp, None, call, None))
        elif payload is _DROP:
            self._take(line_no, line, process, f, "failure")
            self.events += 1
        else:
            call, inp = self._take(line_no, line, process, f, "completion")
            self.events += 1
            self.ops.append(_operation(process, inp, payload, call, self.events))

    def _invoke(self, line_no: int, line: str, process: Hashable, f: str, inp: Any) -> None:
        if process in self.open:
            raise HistoryError(
                f"{_Where(line_no, line)}: process {process} invokes while its call from line "
                f"{self.open[process][3]} is still outstanding (two operations outstanding)"
            )
        if process in self.crashed:
            raise HistoryError(
                f"{_Where(line_no, line)}: process {process} invokes again after an indeterminate (:info) "
                f"result on line {self.crashed[process]}; a crashed process never invokes again"
            )
        self.events += 1
        self.open[process] = (self.events, inp, f, line_no)

    def _take(self, line_no: int, line: str, process: Hashable, f: str, kind: str) -> tuple[int, Any]:
        """Close ``process``'s open call of ``f``: its (call time, input)."""
        opened = self.open.pop(process, None)
        if opened is None:
            raise HistoryError(f"{_Where(line_no, line)}: {kind} for process {process} without a call")
        if opened[2] != f:
            self.open[process] = opened
            raise HistoryError(f"{_Where(line_no, line)}: {kind} of :{f} for process {process}, which "
                               f"invoked :{opened[2]}")
        return opened[0], opened[1]

    def finish(self) -> History:
        """The history: every operation, the open calls pending, in order of call."""
        for process, (call, inp, _, _) in self.open.items():
            self.ops.append(_operation(process, inp, None, call, None))
        return _assembled(self.ops)


def _assembled(ops: list[Operation]) -> History:
    """The History of ``ops`` made by pairing events (:class:`_Assembler`, :func:`_kv_assemble`),
    sorted by call, without History's checks, which pairing guarantees: each operation's client is
    an integer and its times distinct event numbers with ``call < ret``; a process invokes only
    after its previous call returned (later than that return) and never after an :info, so only
    its last operation may be pending."""
    ops.sort(key=lambda op: op.call)
    history = object.__new__(History)
    object.__setattr__(history, "operations", tuple(ops))
    object.__setattr__(history, "model", None)
    return history


def _operation(client: Hashable, inp: Any, output: Any, call: int, ret: int | None) -> Operation:
    """An Operation built without :class:`Operation`'s checks, for the assembler only: its client
    is an integer (each line parser checks it) and its times are event numbers with ``call < ret``."""
    op = object.__new__(Operation)
    op.__dict__.update(client=client, input=inp, output=output, call=call, ret=ret)
    return op


def _short(text: Any, limit: int = 120) -> str:
    s = text if isinstance(text, str) else repr(text)
    s = s.rstrip("\r\n")
    return s if len(s) <= limit else s[: limit - 3] + "..."


class _Where:
    """``line N: 'text'`` for error messages, formatted only when an error is raised."""

    __slots__ = ("line_no", "text")

    def __init__(self, line_no: int, text: str) -> None:
        self.line_no = line_no
        self.text = text

    def __str__(self) -> str:
        return f"line {self.line_no}: {_short(self.text)!r}"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


# --------------------------------------------------------------------------------------------
# Jepsen

_JEPSEN_MARKER = re.compile(r"jepsen\.util\s+-\s+(.*)$")
_JEPSEN_CLIENT = re.compile(r"jepsen\.util\s+-\s+([-+]?\d{1,30})\s+(\S+)\s+(\S+)\s+(\[[^\]]*\]|[^\s\[]\S*)(?:\s|$)")
_JEPSEN_TYPES = ("invoke", "ok", "fail", "info")
_JEPSEN_FS = ("read", "write", "cas")
_INT = re.compile(r"[-+]?\d{1,30}\Z")
_KEYWORD = re.compile(r":[A-Za-z_*+!?<>=/.-][\w*+!?<>=/.:#-]*\Z")
_PAIR = re.compile(r"\[\s*(\S+)\s+(\S+)\s*\]\Z")


class _Keyword(str):
    """A Clojure keyword value such as ``:timed-out`` (never a register value)."""


class _FieldError(ValueError):
    """A field of a line-format event does not fit the event; the caller names the line."""


def _jepsen_scalar(token: str) -> Any:
    if token == "nil":
        return None
    if _INT.match(token):
        return int(token)
    if _KEYWORD.match(token):
        return _Keyword(token)
    raise ValueError(token)


def _jepsen_value(text: str) -> Any:
    m = _PAIR.match(text)
    if m:
        a, b = _jepsen_scalar(m.group(1)), _jepsen_scalar(m.group(2))
        if isinstance(a, _Keyword) or isinstance(b, _Keyword):
            raise ValueError(text)
        return [a, b]
    return _jepsen_scalar(text)


#: The event types and functions of a Jepsen register log, as tokens.
_JEPSEN_TYPE_TOKENS = frozenset(":" + t for t in _JEPSEN_TYPES)
_JEPSEN_F_TOKENS = frozenset(":" + f for f in _JEPSEN_FS)


def _looks_like_jepsen_event(fields: Sequence[str]) -> bool:
    """True when whitespace-separated ``fields`` hold what is left of a client's ``PROCESS TYPE F``:
    an integer then an event type, an event type then a function (unless a keyword, a nemesis,
    comes before them), or an integer two fields before a function (one of the three damaged).
    Used for lines whose ``jepsen.util -`` marker is missing or that are not one clean event."""
    for i, tok in enumerate(fields):
        if tok in _JEPSEN_TYPE_TOKENS:
            before = fields[i - 1] if i > 0 else ""
            if _INT.match(before):
                return True
            if i + 1 < len(fields) and fields[i + 1] in _JEPSEN_F_TOKENS and not _KEYWORD.match(before):
                return True
        elif tok in _JEPSEN_F_TOKENS and i > 1 and _INT.match(fields[i - 2]):
            return True
    return False


@dataclass
class LineReport:
    """What a line-format parser (Jepsen, Porcupine kv) did with the lines of its text, filled in
    when passed as ``report=``: ``events``, the line numbers read as events; ``skipped``, with
    ``lenient=True``, the (line number, reason) of each line that looks like an event but does not
    parse and was left out (without ``lenient`` such a line is a HistoryError)."""

    events: list[int] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of ``text``: lines end at ``\\n`` (a ``\\r`` before it dropped) and only
    there, so line numbers are those an editor shows (``str.splitlines`` also breaks at form feeds,
    ``\\x1c``-``\\x1e``, ``\\x85`` and U+2028/U+2029)."""
    for line_no, line in enumerate(text.split("\n"), start=1):
        yield line_no, line[:-1] if line.endswith("\r") else line


def _jepsen_line(line_no: int, line: str) -> tuple[int, str, str, Any] | None:
    """One line of a Jepsen log: None when it is not a client event (another logger, a nemesis,
    free text), else (process, type, f, payload) with the type and f without their colon and
    payload the operation's input (invoke) or output (ok, fail; ``_DROP`` for a failure that drops
    the operation; None for info). Raises HistoryError naming the line when it looks like an event
    but does not parse."""
    if ":" not in line:
        return None  # every event has keywords (:invoke, :read ...)
    em = _JEPSEN_CLIENT.search(line)
    if em is None:
        # Not a well-formed client event: ignore it only if it is not about a client process.
        m = _JEPSEN_MARKER.search(line)
        if m is None:
            if _looks_like_jepsen_event(line.split()):
                raise HistoryError(
                    f"{_Where(line_no, line)}: looks like a Jepsen event but has no 'jepsen.util -' marker "
                    "(a damaged line?)"
                )
            return None  # another logger
        fields = m.group(1).split()
        if not fields:
            return None
        first = fields[0]
        if _KEYWORD.match(first) and not _looks_like_jepsen_event(fields):
            return None  # nemesis or other non-client process
        if not _INT.match(first) and not any(f in _JEPSEN_TYPE_TOKENS or f in _JEPSEN_F_TOKENS for f in fields):
            return None  # free text
        if not _INT.match(first):
            raise HistoryError(f"{_Where(line_no, line)}: process {first!r} is not an integer")
        raise HistoryError(f"{_Where(line_no, line)}: malformed Jepsen event (expected PROCESS TYPE F VALUE)")
    where = _Where(line_no, line)
    before, after = line[:em.start()], line[em.start(4):]
    if (":" in before and _looks_like_jepsen_event(before.split())) or (
            ":" in after and _looks_like_jepsen_event(after.split())):
        # the text around the event is ignored: it must not hide a second event
        raise HistoryError(f"{where}: more than one event on the line (a lost line break?)")
    process = int(em.group(1))
    kind, f, raw_value = em.group(2), em.group(3), em.group(4)
    if not kind.startswith(":") or kind[1:] not in _JEPSEN_TYPES:
        raise HistoryError(f"{where}: unknown event type {kind!r} (expected :invoke, :ok, :fail or :info)")
    if not f.startswith(":") or f[1:] not in _JEPSEN_FS:
        raise HistoryError(f"{where}: unknown function {f!r} (expected :read, :write or :cas)")
    try:
        value = _jepsen_value(raw_value)
    except ValueError:
        raise HistoryError(f"{where}: malformed value {raw_value!r}") from None
    try:
        return process, kind[1:], f[1:], _jepsen_payload(kind[1:], f[1:], value, raw_value)
    except _FieldError as exc:
        raise HistoryError(f"{where}: {exc}") from None


def _jepsen_payload(kind: str, f: str, value: Any, raw_value: str) -> Any:
    """The payload of a Jepsen event of ``kind`` and ``f`` (without their colons) whose VALUE field
    ``raw_value`` reads as ``value``: the operation's input (invoke), its output (ok, fail;
    ``_DROP`` for a failure that drops the operation) or None (info). Raises :class:`_FieldError`
    (the caller names the line) when the value does not fit the event. Shared by the careful and
    the fast reading of a line, so that both give the same payload."""
    payload: Any
    if kind == "invoke":
        if f == "read":
            if value is not None and not isinstance(value, int):
                raise _FieldError(f"a read is invoked with nil, not {raw_value!r}")
            payload = {"op": "read"}
        elif f == "write":
            if isinstance(value, (list, _Keyword)):
                raise _FieldError(f"a write needs nil or an integer, not {raw_value!r}")
            payload = {"op": "write", "value": value}
        else:
            if not isinstance(value, list):
                raise _FieldError(f"a cas needs [FROM TO], not {raw_value!r}")
            payload = {"op": "cas", "from": value[0], "to": value[1]}
    elif kind == "ok":
        if f == "read":
            if isinstance(value, (list, _Keyword)):
                raise _FieldError(f"a read returns nil or an integer, not {raw_value!r}")
            payload = value
        else:
            payload = None if f == "write" else True
    elif kind == "fail":
        if f == "cas":
            payload = False
        elif f == "read" and isinstance(value, _Keyword):
            payload = UNKNOWN_OUTPUT
        else:
            payload = _DROP
    else:  # info
        payload = None
    return payload


#: The payload of a ``:fail`` that drops the operation (it did not take effect).
_DROP = object()


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while many small acyclic objects pile up (a line
    parser's operations, a schedule search's states); it is enabled again afterwards, also on
    errors and Ctrl-C, if it was before. Collecting while they pile up only rescans them: it can
    double the time of a large log and cost a search a quarter to a third of its time.
    Reference counting still frees everything, since none of them is in a cycle."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _skip(report: LineReport, line_no: int, exc: HistoryError, lenient: bool) -> None:
    if not lenient:
        raise exc
    report.skipped.append((line_no, str(exc)))


def parse_jepsen(text: str, *, lenient: bool = False, report: LineReport | None = None) -> History:
    """Parse a Jepsen register log (see the module docstring for the accepted lines).

    A line that looks like an event but does not parse (a damaged ``jepsen.util -`` marker, a
    malformed field) is a HistoryError naming it; with ``lenient=True`` it is left out instead and
    recorded in ``report.skipped``. ``report`` (a :class:`LineReport`) also gets the line number
    of every event read.

    A log without client events is an empty history (linearizable) when it is blank (an empty
    file: a cluster that never started) or holds ``jepsen.util`` lines (nemesis, free text); a
    text with neither (another logger's lines only, a JSON document) is not a Jepsen log and is
    a HistoryError, and so is one whose every event was skipped as malformed."""
    with gc_paused():
        return _parse_jepsen(text, lenient, LineReport() if report is None else report)


def _parse_jepsen(text: str, lenient: bool, report: LineReport) -> History:
    """:func:`parse_jepsen`: each line the fast way (:func:`_jepsen_fast`) or else the careful way."""
    asm = _Assembler()
    for line_no, line in _lines(text):
        event = _jepsen_fast(line)
        if event is None:
            try:
                event = _jepsen_line(line_no, line)
            except HistoryError as exc:
                _skip(report, line_no, exc, lenient)
                continue
            if event is None:
                continue
        asm.add(line_no, line, event)
        report.events.append(line_no)
    if asm.events == 0 and (report.skipped or (text.strip() and not _JEPSEN_LINE.search(text))):
        raise HistoryError(
            "no Jepsen client events found (expected lines like 'INFO  jepsen.util - 3 :invoke :read nil')"
            + (f"; {len(report.skipped)} line(s) skipped as malformed" if report.skipped else "")
        )
    return asm.finish()


#: The clean shape of a Jepsen client event, as in Porcupine's etcd logs (``INFO  jepsen.util -
#: 3<TAB>:invoke<TAB>:cas<TAB>[1 4]``): fields separated by tabs or spaces, nothing after VALUE.
#: Groups: process, type, f, VALUE, and VALUE's integer or the two of a pair. A line it matches
#: reads the same as through :func:`_jepsen_line` (tests/checker/test_history_fast_parse.py).
_JEPSEN_FAST = re.compile(
    r"(?:INFO[ \t]+)?jepsen\.util[ \t]+-[ \t]+([0-9]{1,18})[ \t]+:(invoke|ok|fail|info)[ \t]+:(read|write|cas)[ \t]+"
    r"(nil|(-?[0-9]{1,18})|\[(-?[0-9]{1,18}) (-?[0-9]{1,18})\]|:[a-z][a-z-]{0,30})"
)


def _jepsen_fast(line: str) -> tuple[int, str, str, Any] | None:
    """:func:`_jepsen_line` for a line of the clean event shape (:data:`_JEPSEN_FAST`) whose value
    fits its event, else None: the caller then reads the line the careful way (which names the
    error of a value that does not fit). Never raises."""
    m = _JEPSEN_FAST.fullmatch(line)
    if m is None:
        return None
    process, kind, f, raw, num, a, b = m.groups()
    value: Any
    if num is not None:
        value = int(num)
    elif a is not None:
        value = [int(a), int(b)]
    else:
        value = None if raw == "nil" else _Keyword(raw)
    try:
        return int(process), kind, f, _jepsen_payload(kind, f, value, raw)
    except _FieldError:
        return None


# --------------------------------------------------------------------------------------------
# Porcupine key-value logs (EDN maps)

_EDN_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}
_EDN_DELIMS = set(" \t\r\n\f\v,{}[]()\"")


class _EdnError(ValueError):
    pass


def _edn_map(text: str) -> dict[str, Any]:
    """Parse one flat EDN map of keyword keys and scalar values (strings, ints, keywords, nil)."""
    i, n = 0, len(text)

    def skip(i: int) -> int:
        while i < n and (text[i] in " \t\r\n\f\v,"):
            i += 1
        return i

    def atom(i: int) -> tuple[Any, int]:
        if i >= n:
            raise _EdnError("unexpected end of line")
        c = text[i]
        if c == '"':
            out: list[str] = []
            j = i + 1
            while True:
                if j >= n:
                    raise _EdnError("unterminated string")
                c = text[j]
                if c == '"':
                    return "".join(out), j + 1
                if c == "\\":
                    if j + 1 >= n:
                        raise _EdnError("unterminated string")
                    e = text[j + 1]
                    if e in _EDN_ESCAPES:
                        out.append(_EDN_ESCAPES[e])
                        j += 2
                    elif e == "u":
                        hexd = text[j + 2 : j + 6]
                        if len(hexd) != 4 or any(h not in "0123456789abcdefABCDEF" for h in hexd):
                            raise _EdnError(f"bad unicode escape {text[j:j + 6]!r}")
                        out.append(chr(int(hexd, 16)))
                        j += 6
                    else:
                        raise _EdnError(f"bad escape {text[j:j + 2]!r}")
                else:
                    out.append(c)
                    j += 1
        j = i
        while j < n and text[j] not in _EDN_DELIMS:
            j += 1
        token = text[i:j]
        if not token:
            raise _EdnError(f"unsupported value starting with {text[i]!r}")
        if token == "nil":
            return None, j
        if token == "true":
            return True, j
        if token == "false":
            return False, j
        if _INT.match(token):
            return int(token), j
        if _KEYWORD.match(token):
            return _Keyword(token), j
        raise _EdnError(f"unsupported value {token!r}")

    i = skip(i)
    if i >= n or text[i] != "{":
        raise _EdnError("expected an EDN map '{...}'")
    i += 1
    out: dict[str, Any] = {}
    while True:
        i = skip(i)
        if i >= n:
            raise _EdnError("unterminated map")
        if text[i] == "}":
            i += 1
            break
        key, i = atom(i)
        if not isinstance(key, _Keyword):
            raise _EdnError(f"map key {key!r} is not a keyword")
        i = skip(i)
        if i < n and text[i] == "}":
            raise _EdnError(f"key {key} has no value")
        value, i = atom(i)
        if key in out:
            raise _EdnError(f"duplicate key {key}")
        out[str(key)] = value
    if skip(i) != n:
        raise _EdnError(f"unexpected text after the map: {text[i:].strip()!r}")
    return out


_KV_FS = ("get", "put", "append")


def _kv_line(where: _Where, line: str) -> tuple[int, str, str, Any]:
    """One Porcupine kv line -> (process, type, f, payload) as for :func:`_jepsen_line`; raises
    HistoryError naming the line when it does not parse."""
    try:
        event = _edn_map(line)
    except _EdnError as exc:
        raise HistoryError(f"{where}: {exc}") from None
    for key in (":process", ":type", ":f"):
        if key not in event:
            raise HistoryError(f"{where}: no {key}")
    process = event[":process"]
    if not validate.is_integer(process):
        raise HistoryError(f"{where}: :process must be an integer, not {process!r}")
    kind, f = event[":type"], event[":f"]
    if not isinstance(kind, _Keyword) or kind[1:] not in ("invoke", "ok", "fail", "info"):
        raise HistoryError(f"{where}: unknown :type {kind!r} (expected :invoke or :ok)")
    if not isinstance(f, _Keyword) or f[1:] not in _KV_FS:
        raise HistoryError(f"{where}: unknown :f {f!r} (expected :get, :put or :append)")
    try:
        return process, kind[1:], f[1:], _kv_payload(kind[1:], f[1:], event.get(":key", _MISSING), event.get(":value"))
    except _FieldError as exc:
        raise HistoryError(f"{where}: {exc}") from None


#: The ``key`` of :func:`_kv_payload` when the line has no ``:key``.
_MISSING = object()


def _kv_payload(kind: str, f: str, key: Any, value: Any) -> Any:
    """The payload of a kv event of ``kind`` and ``f`` (without their colons) with ``:key`` ``key``
    (:data:`_MISSING` when absent) and ``:value`` ``value`` (None when absent), as for
    :func:`_jepsen_payload`. Raises :class:`_FieldError` (the caller names the line) when they do
    not fit the event. Shared by the careful and the fast reading of a line."""
    if kind == "invoke":
        if key is _MISSING:
            raise _FieldError("no :key")
        if isinstance(key, (bool, _Keyword)) or not isinstance(key, (str, int)):
            raise _FieldError(f":key must be a string or an integer, not {key!r}")
        if f == "get":
            return {"op": "get", "key": key}
        if not isinstance(value, str) or isinstance(value, _Keyword):
            raise _FieldError(f"a {f} needs a string :value, not {value!r}")
        return {"op": f, "key": key, "value": value}
    if kind == "ok" and f == "get":
        if value is None:
            value = ""
        if not isinstance(value, str) or isinstance(value, _Keyword):
            raise _FieldError(f"a get returns a string :value, not {value!r}")
        return value
    return _DROP if kind == "fail" else None


def parse_porcupine_kv(text: str, *, lenient: bool = False, report: LineReport | None = None) -> History:
    """Parse a Porcupine key-value log (see the module docstring). Every line but blank ones must
    be an event: one that does not parse is a HistoryError naming it, or with ``lenient=True`` is
    left out and recorded in ``report.skipped`` (see :func:`parse_jepsen`). A blank text (an empty
    file) is an empty history; one whose every line was skipped as malformed is a HistoryError."""
    with gc_paused():
        return _parse_kv(text, lenient, LineReport() if report is None else report)


def _parse_kv(text: str, lenient: bool, report: LineReport) -> History:
    """:func:`parse_porcupine_kv`: the whole text at once when every line is canonical
    (:func:`_kv_canonical`), else each line the fast way (:func:`_kv_fast`) or the careful way."""
    history = _kv_canonical(text)
    if history is not None:
        report.events.extend(range(1, text.count("\n") + (not text.endswith("\n")) + 1))  # every line
        return history
    asm = _Assembler()
    for line_no, line in _lines(text):
        event = _kv_fast(line)
        if event is None:
            if not line.strip():
                continue
            try:
                event = _kv_line(_Where(line_no, line), line)
            except HistoryError as exc:
                _skip(report, line_no, exc, lenient)
                continue
        asm.add(line_no, line, event)
        report.events.append(line_no)
    if asm.events == 0 and report.skipped:
        raise HistoryError("no Porcupine key-value events found (expected lines like '{:process 0, :type :invoke, ...}')"
                           f"; {len(report.skipped)} line(s) skipped as malformed")
    return asm.finish()


#: The canonical shape of a Porcupine kv line (``{:process 0, :type :invoke, :f :get, :key "3",
#: :value nil}``): these keys in this order, ``, `` between entries, a decimal process, string key
#: and value without escapes or line breaks. Groups: process, type, f, key, ``nil`` (None for a
#: string value), value (None for nil). A line of this shape reads the same as through
#: :func:`_kv_line` (tests/checker/test_history_fast_parse.py).
_KV_SHAPE = (r'\{:process ([0-9]{1,18}), :type :(invoke|ok|fail|info), :f :(get|put|append), '
             r':key "([^"\\\n]*)", :value (?:(nil)|"([^"\\\n]*)")\}')
_KV_FAST = re.compile(_KV_SHAPE)
#: Every line of a text that has the canonical shape (with ``findall``: a line's ``\r`` before its
#: ``\n`` dropped, as :func:`_lines` does; the groups of a nil value are ``"nil"`` and ``""``).
_KV_CANONICAL = re.compile("^" + _KV_SHAPE + r"\r?$", re.MULTILINE)


def _kv_fast(line: str) -> tuple[int, str, str, Any] | None:
    """:func:`_kv_line` for a line of the canonical shape (:data:`_KV_FAST`) whose value fits its
    event, else None: the caller then reads the line the careful way (which names the error).
    Never raises."""
    m = _KV_FAST.fullmatch(line)
    if m is None:
        return None
    process, kind, f, key, nil, value = m.groups()
    try:
        return int(process), kind, f, _kv_payload(kind, f, key, None if nil else value)
    except _FieldError:
        return None


def _kv_canonical(text: str) -> History | None:
    """The history of a kv log whose every line has the canonical shape (:data:`_KV_SHAPE`; no blank
    line but a final newline) and whose events all fit (values, each process's calls and results),
    as :func:`parse_porcupine_kv` reads it; None for any other text (one regex pass over the text,
    then one loop over its events: the bulk of a large log)."""
    rows = _KV_CANONICAL.findall(text)
    if not rows or len(rows) != text.count("\n") + (not text.endswith("\n")):
        return None
    ops = _kv_assemble(rows)
    return None if ops is None else _assembled(ops)


def _kv_assemble(rows: list[tuple[str, str, str, str, str, str]]) -> list[Operation] | None:
    """The operations of canonical kv events (:data:`_KV_CANONICAL` groups), as :class:`_Assembler`
    makes them (event ``i`` at time ``i``, from 1); None at the first event :func:`_kv_payload` or
    the assembler would refuse (the caller then reads the text the careful way, naming it)."""
    open_: dict[int, tuple[int, Any, str]] = {}  # process -> (call, input, f)
    crashed: set[int] = set()
    ops: list[Operation] = []
    for time, (process, kind, f, key, nil, value) in enumerate(rows, start=1):
        client = int(process)
        if kind == "invoke":
            if client in open_ or client in crashed or (nil and f != "get"):
                return None
            open_[client] = (time, {"op": f, "key": key} if f == "get" else {"op": f, "key": key, "value": value}, f)
            continue
        opened = open_.pop(client, None)
        if opened is None or opened[2] != f:
            return None
        if kind == "ok":  # a nil get result reads as "" (the value group is "" then)
            ops.append(_operation(client, opened[1], value if f == "get" else None, opened[0], time))
        elif kind == "info":
            crashed.add(client)
            ops.append(_operation(client, opened[1], None, opened[0], None))
    ops.extend(_operation(client, inp, None, call, None) for client, (call, inp, _) in open_.items())
    return ops


# --------------------------------------------------------------------------------------------
# Dispatch


#: A ``jepsen.util`` line anywhere in the text (``$`` per line: logs end with other loggers).
_JEPSEN_LINE = re.compile(r"jepsen\.util\s+-\s+\S.*$", re.MULTILINE)


def detect_format(text: str) -> str:
    """Guess the format of ``text``: ``json``, ``porcupine-kv`` or ``jepsen``.

    JSON and Porcupine logs are told by their first character; a Jepsen log by any of its lines
    being a ``jepsen.util`` line (real logs start with other loggers and end with
    ``jepsen.core - Run complete`` or a blank line, so the first and last lines prove nothing).

    Raises :class:`HistoryError` when the text looks like none of them, and for a blank text (an
    empty file): nothing tells its format, and an empty file may be one whose writing failed, so
    it is refused here; given a line format explicitly (``--format jepsen`` or ``porcupine-kv``)
    it parses to an empty history, which is linearizable.
    """
    stripped = text.lstrip()
    if stripped.startswith("["):
        return "json"
    if stripped.startswith("{"):
        after = stripped[1:].lstrip()
        if after.startswith(":"):
            return "porcupine-kv"
        return "json"
    if _JEPSEN_LINE.search(text):
        return "jepsen"
    if not stripped:
        raise HistoryError("the history is empty, so its format cannot be told; pass --format jepsen or "
                           "porcupine-kv to check it as an empty history")
    first = _short(stripped.splitlines()[0])
    raise HistoryError(
        f"cannot tell the history format from its first line {first!r}; pass --format json, jepsen or porcupine-kv"
    )


def parse_history(text: str, format: str | None = None, *, lenient: bool = False,
                  report: LineReport | None = None) -> History:
    """Parse ``text`` in ``format`` (one of :data:`FORMATS`; None or ``"auto"`` detects it).
    ``lenient`` and ``report`` apply to the line formats (see :func:`parse_jepsen`)."""
    if format in (None, "auto"):
        format = detect_format(text)
    if format == "json":
        return parse_json(text)
    if format == "jepsen":
        return parse_jepsen(text, lenient=lenient, report=report)
    if format == "porcupine-kv":
        return parse_porcupine_kv(text, lenient=lenient, report=report)
    raise HistoryError(f"unknown history format {format!r} (expected one of {', '.join(FORMATS)})")


def read_history(path: str | Path, format: str | None = None, *, lenient: bool = False,
                 report: LineReport | None = None) -> History:
    """Read and parse the history file at ``path`` (see :func:`parse_history`)."""
    if format not in (None, "auto") and format not in FORMATS:
        raise HistoryError(f"unknown history format {format!r} (expected one of {', '.join(FORMATS)})")
    return parse_history(read_history_text(path), format, lenient=lenient, report=report)


def read_history_text(path: str | Path) -> str:
    """The text of the history file at ``path`` through packrat_sim.inputs: a regular file only
    (a device or FIFO is refused before it is opened), at most ``MAX_INPUT_BYTES``, UTF-8 text
    without NUL, a byte-order mark dropped; HistoryError naming the path otherwise."""
    return inputs.read_text(path, "history", error=HistoryError)
