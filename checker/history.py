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

    Line handling: blank lines and lines without ``jepsen.util -`` (other loggers) are ignored, and
    so are ``jepsen.util`` lines whose process is a keyword (``:nemesis``) or that are free text.
    A line whose process is an integer, or whose second field is an event type, is an event and must
    parse; otherwise it is an error naming the line number and its text. Times are event numbers.

``porcupine-kv``
    Porcupine's key-value logs, one EDN map per line::

        {:process 0, :type :invoke, :f :get, :key "3", :value nil}
        {:process 0, :type :ok, :f :get, :key "3", :value "x 0 0 y"}

    ``:type`` is ``:invoke`` or ``:ok`` (``:fail`` drops the operation, ``:info`` leaves it pending);
    ``:f`` is ``:get``, ``:put`` or ``:append``; ``:value`` is nil on a get invoke, otherwise a
    string (a nil get result reads as ``""``). Times are event numbers.

Operation inputs produced by the line formats are the dictionaries the models in
:mod:`checker.models` read: ``{"op": "read"}``, ``{"op": "write", "value": v}``,
``{"op": "cas", "from": a, "to": b}`` (output ``True``/``False``), ``{"op": "get", "key": k}``,
``{"op": "put", "key": k, "value": v}``, ``{"op": "append", "key": k, "value": v}``.

Every problem with the input is a :class:`HistoryError` (a ``ValueError``) whose message names the
bad value, and for line formats the line number and its text.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packrat_sim import validate
from packrat_sim.errors import PackratError
from packrat_sim.files import no_duplicate_keys, write_text

__all__ = [
    "FORMATS",
    "SCHEMA",
    "UNKNOWN_OUTPUT",
    "History",
    "HistoryError",
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


def write_history(history: History, path: str | Path, model: str | None = None) -> Path:
    """Write ``history`` to ``path`` in the toolkit's JSON format; returns the path."""
    return write_text(path, json.dumps(to_json(history, model=model), indent=None, separators=(",", ":")) + "\n",
                      "history")


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
    """Parse the toolkit's JSON history format."""
    try:
        obj = json.loads(text, object_pairs_hook=no_duplicate_keys(HistoryError, "a JSON object of the history"))
    except HistoryError:
        raise
    except json.JSONDecodeError as exc:
        raise HistoryError(f"not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:
        raise HistoryError(f"not valid JSON: {exc}") from None
    return history_from_json(obj)


# --------------------------------------------------------------------------------------------
# Line formats: shared assembly of invoke/complete events into operations


class _Assembler:
    """Pairs invocations with completions, per process, numbering events as times."""

    def __init__(self) -> None:
        self.time = 0
        self.open: dict[Hashable, tuple[int, Any, str, int]] = {}  # process -> (call, input, f, line)
        self.crashed: dict[Hashable, int] = {}  # process -> line of its :info
        self.ops: list[Operation] = []
        self.events = 0

    def _tick(self) -> int:
        self.time += 1
        self.events += 1
        return self.time

    def invoke(self, line_no: int, where: _Where, process: Hashable, f: str, inp: Any) -> None:
        if process in self.open:
            raise HistoryError(
                f"{where}: process {process} invokes while its call from line {self.open[process][3]} "
                "is still outstanding (two operations outstanding)"
            )
        if process in self.crashed:
            raise HistoryError(
                f"{where}: process {process} invokes again after an indeterminate (:info) result on "
                f"line {self.crashed[process]}; a crashed process never invokes again"
            )
        self.open[process] = (self._tick(), inp, f, line_no)

    def _take(self, where: _Where, process: Hashable, f: str, kind: str) -> tuple[int, Any]:
        if process not in self.open:
            raise HistoryError(f"{where}: {kind} for process {process} without a call")
        call, inp, invoked_f, _ = self.open[process]
        if invoked_f != f:
            raise HistoryError(f"{where}: {kind} of :{f} for process {process}, which invoked :{invoked_f}")
        del self.open[process]
        return call, inp

    def complete(self, where: _Where, process: Hashable, f: str, output: Any) -> None:
        call, inp = self._take(where, process, f, "completion")
        self.ops.append(Operation(process, inp, output, call, self._tick()))

    def drop(self, where: _Where, process: Hashable, f: str) -> None:
        self._take(where, process, f, "failure")
        self._tick()

    def crash(self, line_no: int, where: _Where, process: Hashable, f: str) -> None:
        call, inp = self._take(where, process, f, "indeterminate result")
        self._tick()
        self.crashed[process] = line_no
        self.ops.append(Operation(process, inp, None, call, None))

    def finish(self) -> History:
        for process, (call, inp, _, _) in self.open.items():
            self.ops.append(Operation(process, inp, None, call, None))
        self.ops.sort(key=lambda op: op.call)
        return History(self.ops)


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


def parse_jepsen(text: str) -> History:
    """Parse a Jepsen register log (see the module docstring for the accepted lines)."""
    asm = _Assembler()
    for line_no, line in enumerate(text.splitlines(), start=1):
        if "jepsen.util" not in line:
            continue
        em = _JEPSEN_CLIENT.search(line)
        if em is None:
            # Not a well-formed client event: ignore it if it is not about a client process.
            m = _JEPSEN_MARKER.search(line)
            if m is None:
                continue
            fields = m.group(1).split()
            if not fields:
                continue
            first = fields[0]
            looks_like_event = len(fields) >= 2 and fields[1][:1] == ":" and fields[1][1:] in _JEPSEN_TYPES
            if not _INT.match(first):
                if first.startswith(":") or not looks_like_event:
                    continue  # nemesis or other non-client process, or free text
                raise HistoryError(f"{_Where(line_no, line)}: process {first!r} is not an integer")
            raise HistoryError(f"{_Where(line_no, line)}: malformed Jepsen event (expected PROCESS TYPE F VALUE)")
        where = _Where(line_no, line)
        process = int(em.group(1))
        kind, f, raw_value = em.group(2), em.group(3), em.group(4)
        if not kind.startswith(":") or kind[1:] not in _JEPSEN_TYPES:
            raise HistoryError(f"{where}: unknown event type {kind!r} (expected :invoke, :ok, :fail or :info)")
        if not f.startswith(":") or f[1:] not in _JEPSEN_FS:
            raise HistoryError(f"{where}: unknown function {f!r} (expected :read, :write or :cas)")
        kind, f = kind[1:], f[1:]
        try:
            value = _jepsen_value(raw_value)
        except ValueError:
            raise HistoryError(f"{where}: malformed value {raw_value!r}") from None
        if kind == "invoke":
            if f == "read":
                if value is not None and not isinstance(value, int):
                    raise HistoryError(f"{where}: a read is invoked with nil, not {raw_value!r}")
                inp: dict[str, Any] = {"op": "read"}
            elif f == "write":
                if isinstance(value, (list, _Keyword)):
                    raise HistoryError(f"{where}: a write needs nil or an integer, not {raw_value!r}")
                inp = {"op": "write", "value": value}
            else:
                if not isinstance(value, list):
                    raise HistoryError(f"{where}: a cas needs [FROM TO], not {raw_value!r}")
                inp = {"op": "cas", "from": value[0], "to": value[1]}
            asm.invoke(line_no, where, process, f, inp)
        elif kind == "ok":
            if f == "read":
                if isinstance(value, (list, _Keyword)):
                    raise HistoryError(f"{where}: a read returns nil or an integer, not {raw_value!r}")
                asm.complete(where, process, f, value)
            elif f == "write":
                asm.complete(where, process, f, None)
            else:
                asm.complete(where, process, f, True)
        elif kind == "fail":
            if f == "cas":
                asm.complete(where, process, f, False)
            elif f == "read" and isinstance(value, _Keyword):
                asm.complete(where, process, f, UNKNOWN_OUTPUT)
            else:
                asm.drop(where, process, f)
        else:  # info
            asm.crash(line_no, where, process, f)
    if asm.events == 0:
        raise HistoryError(
            "no Jepsen client events found (expected lines like 'INFO  jepsen.util - 3 :invoke :read nil')"
        )
    return asm.finish()


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


def parse_porcupine_kv(text: str) -> History:
    """Parse a Porcupine key-value log (see the module docstring)."""
    asm = _Assembler()
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = _Where(line_no, line)
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
        kind, f = kind[1:], f[1:]
        value = event.get(":value")
        if kind == "invoke":
            if ":key" not in event:
                raise HistoryError(f"{where}: no :key")
            key = event[":key"]
            if isinstance(key, (bool, _Keyword)) or not isinstance(key, (str, int)):
                raise HistoryError(f"{where}: :key must be a string or an integer, not {key!r}")
            if f == "get":
                inp: dict[str, Any] = {"op": "get", "key": key}
            else:
                if not isinstance(value, str) or isinstance(value, _Keyword):
                    raise HistoryError(f"{where}: a {f} needs a string :value, not {value!r}")
                inp = {"op": f, "key": key, "value": value}
            asm.invoke(line_no, where, process, f, inp)
        elif kind == "ok":
            if f == "get":
                if value is None:
                    value = ""
                if not isinstance(value, str) or isinstance(value, _Keyword):
                    raise HistoryError(f"{where}: a get returns a string :value, not {value!r}")
                asm.complete(where, process, f, value)
            else:
                asm.complete(where, process, f, None)
        elif kind == "fail":
            asm.drop(where, process, f)
        else:
            asm.crash(line_no, where, process, f)
    if asm.events == 0:
        raise HistoryError("no Porcupine key-value events found (expected lines like '{:process 0, :type :invoke, ...}')")
    return asm.finish()


# --------------------------------------------------------------------------------------------
# Dispatch


#: A ``jepsen.util`` line anywhere in the text (``$`` per line: logs end with other loggers).
_JEPSEN_LINE = re.compile(r"jepsen\.util\s+-\s+\S.*$", re.MULTILINE)


def detect_format(text: str) -> str:
    """Guess the format of ``text``: ``json``, ``porcupine-kv`` or ``jepsen``.

    JSON and Porcupine logs are told by their first character; a Jepsen log by any of its lines
    being a ``jepsen.util`` line (real logs start with other loggers and end with
    ``jepsen.core - Run complete`` or a blank line, so the first and last lines prove nothing).

    Raises :class:`HistoryError` when the text looks like none of them.
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
    first = _short(stripped.splitlines()[0]) if stripped else "(empty)"
    raise HistoryError(
        f"cannot tell the history format from its first line {first!r}; pass --format json, jepsen or porcupine-kv"
    )


def parse_history(text: str, format: str | None = None) -> History:
    """Parse ``text`` in ``format`` (one of :data:`FORMATS`; None or ``"auto"`` detects it)."""
    if format in (None, "auto"):
        format = detect_format(text)
    if format == "json":
        return parse_json(text)
    if format == "jepsen":
        return parse_jepsen(text)
    if format == "porcupine-kv":
        return parse_porcupine_kv(text)
    raise HistoryError(f"unknown history format {format!r} (expected one of {', '.join(FORMATS)})")


def read_history(path: str | Path, format: str | None = None) -> History:
    """Read and parse the history file at ``path`` (see :func:`parse_history`)."""
    if format not in (None, "auto") and format not in FORMATS:
        raise HistoryError(f"unknown history format {format!r} (expected one of {', '.join(FORMATS)})")
    return parse_history(read_history_text(path), format)


def read_history_text(path: str | Path) -> str:
    """The text of the history file at ``path`` (UTF-8, a byte-order mark dropped); HistoryError
    naming the path when it cannot be read or is not UTF-8 text."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise HistoryError(f"cannot read history {str(path)!r}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise HistoryError(f"history {str(path)!r} is not UTF-8 text (byte {exc.start})") from None
