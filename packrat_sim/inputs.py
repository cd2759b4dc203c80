"""Safe input files: the one way every ``packrat`` reader takes a file (or text) in.

The mirror of :mod:`packrat_sim.files` (which writes). Every reader (profile JSON and CSV,
co-run CSV, plan files, histories, replay files, sweep grids, workload trace files) reads
through :func:`read_text` / :func:`read_bytes` and parses JSON with :func:`loads_json`, which
guarantee:

* **Only regular files are read.** A path that is a directory, a device (``/dev/zero``), a
  FIFO or a socket is refused *before* it is opened (``os.stat``), so nothing reads an endless
  device until memory runs out or blocks on a FIFO. The file is opened with ``O_NONBLOCK``
  and checked again with ``fstat``: a FIFO swapped in after the check cannot block either.
  Symbolic links to regular files are followed (reading through a link is harmless).
* **Bounded.** At most :data:`MAX_INPUT_BYTES` (256 MiB) are read, or the ``limit`` a reader
  gives; a larger file is an error naming the file and the bound (checked on the size before
  reading, and again while reading, for a file that grows).
* **Text is UTF-8 text.** Bytes that are not UTF-8 are an error naming the byte offset; a NUL
  character is an error naming its offset (a binary file, not text); a leading byte-order mark
  is dropped.
* **Strict JSON.** :func:`loads_json` refuses a key given twice in one object (JSON would
  silently keep the last one), ``NaN`` / ``Infinity`` and numbers that overflow to them
  (``1e400``), integers of more than :data:`MAX_INT_DIGITS` digits, nesting deeper than
  :data:`MAX_JSON_DEPTH` levels, and strings holding a lone surrogate (``"\\ud800"``: not
  Unicode text, and unprintable later).

Every problem is one exception of the class the caller passes as ``error`` (a
:class:`~packrat_sim.errors.PackratError` subclass, :class:`InputError` by default), whose
message is one line naming the file (and the key, line or offset when known): the CLI turns
it into ``packrat: error: ...`` and exit 2.

Pure standard library; imports nothing from the toolkit but :mod:`packrat_sim.errors`.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from collections.abc import Callable
from typing import Any

from packrat_sim.errors import PackratError

__all__ = [
    "MAX_INPUT_BYTES",
    "MAX_INT_DIGITS",
    "MAX_JSON_DEPTH",
    "InputError",
    "decode_text",
    "file_kind",
    "loads_json",
    "read_bytes",
    "read_json",
    "read_text",
    "tree_problem",
]

#: The most bytes a reader takes from one file unless it names its own bound (256 MiB: far above
#: any profile, plan, grid or replay file, and above a history of millions of operations).
MAX_INPUT_BYTES = 256 * 1024 * 1024
#: The most digits of a JSON integer (Python's own default limit for converting text to int).
MAX_INT_DIGITS = 4300
#: The deepest nesting of JSON arrays and objects accepted. The toolkit's own files nest at most
#: about 6 levels (a history operation's input holds a plan holding its instances).
MAX_JSON_DEPTH = 64

_CHUNK = 1 << 20

ErrorType = Callable[[str], Exception]


class InputError(PackratError):
    """An input file cannot be read safely, or its text is not what it must be (one line naming
    the file). A :class:`~packrat_sim.errors.PackratError`: the CLI answers exit 2."""


def file_kind(mode: int) -> str:
    """``a directory``, ``a character device``, ... for an ``st_mode`` that is not a regular file."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _name(path: str | os.PathLike[str], what: str, error: ErrorType) -> str:
    try:
        name = os.fspath(path)
    except TypeError:
        raise error(f"{what} path {path!r} is not a file name") from None
    if not isinstance(name, str) or name == "" or "\x00" in name:
        raise error(f"{what} path {name!r} is not a usable file name")
    return name


def _refuse_kind(name: str, what: str, mode: int, error: ErrorType) -> None:
    if not stat.S_ISREG(mode):
        raise error(f"cannot read {what} {name!r}: it is {file_kind(mode)}, not a regular file")


def _too_large(name: str, what: str, size: str, limit: int, error: ErrorType) -> Exception:
    return error(f"cannot read {what} {name!r}: it is {size} bytes; the limit is {limit:,} bytes")


def read_bytes(path: str | os.PathLike[str], what: str = "file", *, error: ErrorType = InputError,
               limit: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of the regular file at ``path`` (at most ``limit``). Raises ``error`` (one line
    naming ``what`` and the path) when it is missing, unreadable, not a regular file (directory,
    device, FIFO, socket: refused before opening), or larger than ``limit`` bytes."""
    name = _name(path, what, error)
    try:
        st = os.stat(name)
    except FileNotFoundError:
        raise error(f"cannot read {what} {name!r}: it does not exist") from None
    except NotADirectoryError:
        raise error(f"cannot read {what} {name!r}: a component of the path is not a directory") from None
    except (OSError, ValueError) as exc:
        raise error(f"cannot read {what} {name!r}: {getattr(exc, 'strerror', None) or exc}") from None
    _refuse_kind(name, what, st.st_mode, error)
    if st.st_size > limit:
        raise _too_large(name, what, f"{st.st_size:,}", limit, error)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(name, flags)
    except FileNotFoundError:
        raise error(f"cannot read {what} {name!r}: it does not exist") from None
    except OSError as exc:
        raise error(f"cannot read {what} {name!r}: {exc.strerror or exc}") from None
    try:
        _refuse_kind(name, what, os.fstat(fd).st_mode, error)  # swapped for something else since the stat
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(_CHUNK, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise _too_large(name, what, "more than " + f"{limit:,}", limit, error)
    except OSError as exc:
        raise error(f"cannot read {what} {name!r}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    return b"".join(chunks)


def decode_text(data: bytes, what: str = "input", *, error: ErrorType = InputError) -> str:
    """``data`` as text: strict UTF-8 (``error`` naming ``what`` and the byte offset otherwise),
    no NUL character (a binary file), a leading byte-order mark dropped."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} is not UTF-8 text (byte {exc.start}: {data[exc.start:exc.start + 1]!r})") from None
    nul = data.find(b"\x00")
    if nul >= 0:
        raise error(f"{what} holds a NUL byte (byte {nul}); it is not a text file")
    return text.removeprefix("\ufeff")


def read_text(path: str | os.PathLike[str], what: str = "file", *, error: ErrorType = InputError,
              limit: int = MAX_INPUT_BYTES) -> str:
    """The text of the regular file at ``path``: :func:`read_bytes` then :func:`decode_text`
    (errors name ``what`` and the path)."""
    data = read_bytes(path, what, error=error, limit=limit)
    return decode_text(data, f"{what} {os.fspath(path)!r}", error=error)


# ----------------------------------------------------------------------------------- JSON

#: A ``\\uD800``-``\\uDFFF`` escape: the only way a lone surrogate gets into decoded JSON text.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")


class _Refused(Exception):
    """Raised inside the JSON hooks; carries the message out of ``json.loads``."""


def _pairs_hook(what: str) -> Callable[[list], dict]:
    def hook(pairs: list) -> dict:
        out: dict = {}
        for k, v in pairs:
            if k in out:
                raise _Refused(f"duplicate key {_show(k)} in {what} (JSON would silently keep the last one)")
            out[k] = v
        return out

    return hook


def _show(text: str, limit: int = 80) -> str:
    """``repr`` of a string, shortened, and printable even when it holds a lone surrogate."""
    s = ascii(text) if _has_lone_surrogate(text) else repr(text)
    return s if len(s) <= limit else s[: limit - 4] + "...'"


def _has_lone_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _parse_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a number JSON allows (JSON has no NaN or Infinity)")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"the number {text[:40]}{'...' if len(text) > 40 else ''} is too large "
                       "(it overflows to Infinity; JSON has no NaN or Infinity)")
    return value


def _int_parser(max_digits: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        digits = len(text) - (text[:1] == "-")
        if digits > max_digits:
            raise _Refused(f"an integer of {digits:,} digits (the limit is {max_digits:,})")
        try:
            return int(text)
        except ValueError as exc:  # sys.set_int_max_str_digits set lower than max_digits
            raise _Refused(f"an integer of {digits:,} digits: {exc}") from None

    return parse


def tree_problem(obj: Any, max_depth: int, strings: bool) -> str | None:
    """Why ``obj`` is refused (nesting deeper than ``max_depth``; with ``strings``, a string or
    key holding a lone surrogate), or None. Iterative, level by level."""
    containers = (dict, list)
    level = [obj] if type(obj) in containers else []
    if strings and isinstance(obj, str) and _has_lone_surrogate(obj):
        return f"a string holds a lone surrogate ({_show(obj)}); it is not Unicode text"
    depth = 1
    while level:
        if depth > max_depth:
            return f"nested too deeply (more than {max_depth} levels of arrays and objects)"
        nxt: list = []
        for node in level:
            if type(node) is dict:
                if strings:
                    for k, v in node.items():
                        for s in (k, v):
                            if isinstance(s, str) and _has_lone_surrogate(s):
                                return f"a string holds a lone surrogate ({_show(s)}); it is not Unicode text"
                nxt.extend([v for v in node.values() if type(v) in containers])
            else:
                if strings:
                    for s in node:
                        if isinstance(s, str) and _has_lone_surrogate(s):
                            return f"a string holds a lone surrogate ({_show(s)}); it is not Unicode text"
                nxt.extend([v for v in node if type(v) in containers])
        level = nxt
        depth += 1
    return None


def loads_json(text: str, what: str = "the JSON", *, error: ErrorType = InputError,
               max_depth: int = MAX_JSON_DEPTH, max_int_digits: int = MAX_INT_DIGITS) -> Any:
    """Parse JSON ``text`` strictly (module doc): ``error`` with one line for invalid JSON (line
    and column), a duplicate key (naming it), NaN / Infinity or a number overflowing to one, an
    integer of more than ``max_int_digits`` digits, nesting deeper than ``max_depth`` levels, or a
    string holding a lone surrogate. ``what`` names the document in the messages ("the profile
    JSON"). Pure."""
    if not isinstance(text, str):
        raise error(f"{what} is not text")
    try:
        obj = json.loads(text, object_pairs_hook=_pairs_hook(what), parse_constant=_parse_constant,
                         parse_float=_parse_float, parse_int=_int_parser(max_int_digits))
    except _Refused as exc:
        raise error(f"not valid JSON: {exc}") from None
    except json.JSONDecodeError as exc:
        raise error(f"not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise error(f"not valid JSON: nested too deeply (more than {max_depth} levels of arrays and objects)") from None
    except (ValueError, OverflowError, MemoryError) as exc:  # not expected past the hooks; one line all the same
        raise error(f"not valid JSON: {exc}") from None
    strings = _SURROGATE_ESCAPE.search(text) is not None
    if strings or text.count("[") + text.count("{") > max_depth:
        problem = tree_problem(obj, max_depth, strings)
        if problem is not None:
            raise error(f"not valid JSON: {problem}")
    return obj


def read_json(path: str | os.PathLike[str], what: str = "file", *, error: ErrorType = InputError,
              limit: int = MAX_INPUT_BYTES, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The JSON document in the regular file at ``path`` (:func:`read_text` then
    :func:`loads_json`); every error names ``what`` and the path."""
    text = read_text(path, what, error=error, limit=limit)
    try:
        return loads_json(text, f"the {what}", error=_Prefixed, max_depth=max_depth)
    except _Prefixed as exc:
        raise error(f"{what} {os.fspath(path)!r}: {exc}") from None


class _Prefixed(Exception):
    """Internal: a loads_json error before the file name is put in front."""
