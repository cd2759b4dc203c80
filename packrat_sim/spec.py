"""The spec mini-languages of the toolkit, parsed in one place.

Every command-line value that is a small language -- a list of integers (``--threads``),
a ``KIND:KEY=VALUE,...`` spec (``--workload``, ``--policy``), a ``NAME=VALUE`` item
(``--param``), a duration, a rate, a ladder (``--axis``) -- is parsed here. Call these;
never write another splitter.

Pure functions of strings. Every error names the bad value and is raised as the caller's
error class (``error=``, default :class:`~packrat_sim.errors.PackratError`; any class
built from one message string), so each module keeps its own exception type while the
grammar and its messages live here once.

Grammar (whitespace around items, keys and values is ignored unless said otherwise)::

    number     := ["+" | "-"] (digits ["." digits*] | "." digits) [("e" | "E") ["+" | "-"] digits]
    count      := ["+"] digits                         value >= 1
    bool       := "true" | "yes" | "1" | "false" | "no" | "0"        any case
    duration   := number [unit]     unit: s (also bare), ms, us, min, h    value >= 0, finite
    rate       := number ["/" unit] unit: s (also bare), ms, min, h        per second, >= 0, finite
    int-list   := int-item ("," int-item)*
    int-item   := int | int "-" int                    an inclusive range, LO <= HI; every value >= 1
    items      := item ("," item)*
    key-value  := key "=" value
    key-values := key-value ("," key-value)*           each key at most once
    kind-spec  := kind ":" items                       an item is a key-value or a bare value
    ladder     := number ".." number ["/" number] [unit]     LO, LO+STEP, ... up to HI inclusive
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Mapping
from typing import Literal, NamedTuple

from packrat_sim.errors import PackratError

__all__ = [
    "KindSpec",
    "bool_word",
    "key_value",
    "parse_count",
    "parse_duration_ms",
    "parse_duration_s",
    "parse_int_list",
    "parse_key_values",
    "parse_kind_spec",
    "parse_ladder",
    "parse_rate_per_s",
    "split_items",
    "split_key_value",
]

#: The error class of a parse failure: called with the message.
ErrorClass = Callable[[str], Exception]

NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
"""Regular expression of a decimal number (sign and exponent allowed)."""

_DURATION_UNITS = {
    "s": {"": 1.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "min": 60.0, "h": 3600.0},
    "ms": {"": 1000.0, "s": 1000.0, "ms": 1.0, "us": 1e-3, "min": 60_000.0, "h": 3_600_000.0},
}
_RATE_UNITS_PER_S = {"": 1.0, "/s": 1.0, "/ms": 1000.0, "/min": 1.0 / 60.0, "/h": 1.0 / 3600.0}
_LADDER = re.compile(rf"^({NUMBER})\.\.({NUMBER})(?:/({NUMBER}))?(.*)$")
_INTEGER = re.compile(r"[+-]?\d+")


# ---------------------------------------------------------------- numbers with units


def _scaled(text: str, what: str, pattern: str, units: Mapping[str, float], noun: str, *,
            positive: bool, error: ErrorClass) -> float:
    """``text`` matched as NUMBER followed by ``pattern`` (a unit group), times its unit's factor.

    Refuses a text that is not a number with a known unit (the message says ``noun``), a
    non-finite or negative result, and with ``positive`` a zero.
    """
    m = re.fullmatch(rf"\s*({NUMBER})\s*({pattern})\s*", text)
    if not m or m.group(2) not in units:
        raise error(f"{what} {text!r} is not {noun}")
    value = float(m.group(1)) * units[m.group(2)]
    if not math.isfinite(value):
        raise error(f"{what} {text!r} is not finite")
    if value < 0:
        raise error(f"{what} {text!r} is negative")
    if positive and value <= 0:
        raise error(f"{what} {text!r} must be > 0")
    return value


def _duration(text: str, what: str, unit: str, positive: bool, error: ErrorClass) -> float:
    noun = "a duration (a number with unit s, ms, us, min or h, e.g. 60s)"
    return _scaled(text, what, "[a-z]*", _DURATION_UNITS[unit], noun, positive=positive, error=error)


def parse_duration_s(text: str, what: str = "duration", *, positive: bool = False,
                     error: ErrorClass = PackratError) -> float:
    """A duration in seconds: ``"20s"`` -> 20.0, ``"500ms"`` -> 0.5, ``"2min"`` -> 120.0,
    ``"1.5"`` (a bare number is seconds) -> 1.5; units s, ms, us, min, h.

    Finite and >= 0 (> 0 with ``positive``); ``error`` names ``what`` and the text otherwise.
    """
    return _duration(text, what, "s", positive, error)


def parse_duration_ms(text: str, what: str = "duration", *, positive: bool = False,
                      error: ErrorClass = PackratError) -> float:
    """As :func:`parse_duration_s`, in milliseconds (``"60s"`` -> 60000.0, ``"1.5"`` -> 1500.0).

    Each unit has its own factor to milliseconds (not seconds x 1000), so ``"250ms"`` is
    exactly 250.0.
    """
    return _duration(text, what, "ms", positive, error)


def parse_rate_per_s(text: str, what: str = "rate", *, positive: bool = False,
                     error: ErrorClass = PackratError) -> float:
    """A rate in requests per second: ``"40/s"`` -> 40.0, ``"2/ms"`` -> 2000.0,
    ``"120/min"`` -> 2.0, ``"7"`` (a bare number is per second) -> 7.0; units /s, /ms, /min, /h.

    Finite and >= 0 (> 0 with ``positive``); ``error`` names ``what`` and the text otherwise.
    """
    noun = "a rate (a number with unit /s, /ms, /min or /h, e.g. 40/s)"
    return _scaled(text, what, "/[a-z]+|", _RATE_UNITS_PER_S, noun, positive=positive, error=error)


def bool_word(text: str) -> bool | None:
    """``"true"``, ``"yes"``, ``"1"`` -> True; ``"false"``, ``"no"``, ``"0"`` -> False (any
    case, no surrounding whitespace); None for any other text (the caller words the error)."""
    word = text.lower()
    if word in ("true", "yes", "1"):
        return True
    if word in ("false", "no", "0"):
        return False
    return None


#: The most digits :func:`parse_count` reads.
MAX_COUNT_DIGITS = 30


def parse_count(text: str, what: str, *, error: ErrorClass = PackratError) -> int:
    """A positive integer written in decimal, an optional leading ``+`` allowed (``"64"``,
    ``"+8"``); ``error`` ("WHAT must be a positive integer, got 'TEXT'") otherwise."""
    t = text.strip()
    if not re.fullmatch(r"\+?\d+", t) or (len(t) <= MAX_COUNT_DIGITS and int(t) < 1):
        raise error(f"{what} must be a positive integer, got {text!r}")
    if len(t) > MAX_COUNT_DIGITS:  # int() of thousands of digits is a ValueError, and no count is that large
        raise error(f"{what} must be a positive integer of at most {MAX_COUNT_DIGITS} digits, got one of {len(t):,} digits")
    return int(t)


# ----------------------------------------------------------------------- integer lists


def _int_range(item: str) -> range | None:
    """``"4"`` -> range(4, 5), ``"1-3"`` -> range(1, 4); None when ``item`` is neither an
    integer nor ``LO-HI`` with LO <= HI (``"-1"`` is not an integer here: it is a range
    with no LO)."""
    lo, dash, hi = item.partition("-")
    try:
        values = range(int(lo), int(hi) + 1) if dash else range(int(item), int(item) + 1)
    except ValueError:
        return None
    return values if len(values) else None


def parse_int_list(text: str, what: str, *, sort_unique: bool = False, powers_of_two: bool = False,
                   error: ErrorClass = PackratError) -> list[int]:
    """Positive integers from ``"1,2,4"``, ranges ``"1-4"`` (inclusive) and mixes
    ``"1-3,8"`` (grammar ``int-list`` of the module docstring).

    Two dialects, one grammar; they differ where their callers always did:

    * ``sort_unique=False`` (an ordered list, e.g. the dashboard's batch sizes): the
      values in the order written, repeats kept; empty items (``"1,,2"``, a trailing
      comma) are skipped. Errors: ``"WHAT: give at least one positive integer, e.g.
      1,2,4"`` for no item, ``"WHAT: 'ITEM' is not a positive integer (or a range like
      1-4)"`` naming the bad item.
    * ``sort_unique=True`` (a grid, e.g. the profiler's ``--threads``): the distinct
      values in increasing order; an empty item is an error. Errors: ``"WHAT must be a
      list like 1,2,4 or a range like 1-8, got 'TEXT'"`` for a malformed list, ``"WHAT
      must be positive integers, got V in 'TEXT'"`` naming the first value below 1.
      With ``powers_of_two`` a range stands for the powers of two it holds (``"1-64"`` ->
      1, 2, 4, ..., 64: the benchmark scripts' batch and thread grids).
    """
    items = [x.strip() for x in str(text).split(",")]
    if not sort_unique:
        out: list[int] = []
        items = [x for x in items if x]
        if not items:
            raise error(f"{what}: give at least one positive integer, e.g. 1,2,4")
        for item in items:
            values = _int_range(item)
            if values is None or values[0] < 1:
                raise error(f"{what}: {item!r} is not a positive integer (or a range like 1-4)")
            out += values
        return out
    malformed = f"{what} must be a list like 1,2,4 or a range like 1-8, got {text!r}"
    if not str(text).strip():
        raise error(malformed)
    distinct: set[int] = set()
    for item in items:
        values = _int_range(item)
        if values is None:
            raise error(malformed)
        if values[0] < 1:
            raise error(f"{what} must be positive integers, got {values[0]} in {text!r}")
        ranged = powers_of_two and len(values) > 1
        distinct.update(v for v in values if not ranged or v & (v - 1) == 0)
    return sorted(distinct)


# ------------------------------------------------------------------- items and options


def split_items(text: str, what: str, *, empty: Literal["refuse", "skip", "keep"] = "refuse",
                strip: bool = True, error: ErrorClass = PackratError) -> list[str]:
    """The comma-separated items of ``text`` (``"a, b,c"`` -> ``["a", "b", "c"]``); a blank
    text has no items (``[]``).

    ``empty`` says what an empty item (two commas, a trailing comma) does: ``"refuse"``
    raises ``"WHAT has an empty item (two commas or a trailing comma)"``, ``"skip"`` drops
    it, ``"keep"`` returns it. With ``strip=False`` the items keep their surrounding
    whitespace (for callers that rebuild the text or quote the item as written).
    """
    if not text.strip():
        return []
    raw = text.split(",")
    stripped = [x.strip() for x in raw]
    if empty == "refuse" and not all(stripped):
        raise error(f"{what} has an empty item (two commas or a trailing comma)")
    chosen = raw if not strip else stripped
    if empty == "skip":
        return [x for x, s in zip(chosen, stripped) if s]
    return chosen


def key_value(item: str) -> tuple[str, str] | None:
    """``"name = value"`` -> ``("name", "value")`` (both stripped; the value may be empty
    and may hold further ``=``); None when ``item`` has no ``=`` or an empty name."""
    key, eq, value = item.partition("=")
    if not eq or not key.strip():
        return None
    return key.strip(), value.strip()


def split_key_value(item: str, what: str, *, error: ErrorClass = PackratError) -> tuple[str, str]:
    """As :func:`key_value`, raising ``"WHAT expects NAME=VALUE, not 'ITEM'"`` where it
    gives None."""
    pair = key_value(item)
    if pair is None:
        raise error(f"{what} expects NAME=VALUE, not {item!r}")
    return pair


def _options(items: list[str], text: str, what: str, keys: Collection[str] | None,
             error: ErrorClass) -> dict[str, str]:
    """The ``KEY=VALUE`` items of ``text`` as a dict (keys lower-cased, values stripped).

    Refuses, naming the item or key, at the first item that has no ``=``, an unknown key
    (when ``keys`` is given; ``what`` names where), an empty key, a key given before, or
    an empty value.
    """
    options: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if not eq:
            raise error(f"{what} expects NAME=VALUE, not {item!r}")
        if keys is not None and key not in keys:
            raise error(f"unknown option {key!r} in {what}; known: {', '.join(keys)}")
        if not key:
            raise error(f"{what} expects NAME=VALUE, not {item!r}")
        if key in options:
            raise error(f"option {key!r} is given twice in {text!r}")
        if not value.strip():
            raise error(f"option {key!r} has no value in {text!r}")
        options[key] = value.strip()
    return options


def parse_key_values(text: str, what: str, *, keys: Collection[str] | None = None,
                     error: ErrorClass = PackratError) -> dict[str, str]:
    """``"k=v,k2=v2"`` -> ``{"k": "v", "k2": "v2"}`` (grammar ``key-values``; keys
    lower-cased, values stripped; a blank text gives ``{}``).

    Refuses, naming the bad part: an empty item, an item without ``=`` or with an empty
    key, a key not in ``keys`` (when given), a key given twice, an empty value.
    """
    return _options(split_items(text, f"{what} {text!r}", error=error), text, what, keys, error)


class KindSpec(NamedTuple):
    """A parsed ``kind:items`` spec: the kind (lower-cased), its ``KEY=VALUE`` options
    (keys lower-cased, values stripped) and its bare items, in order."""

    kind: str
    options: dict[str, str]
    positional: tuple[str, ...]


def parse_kind_spec(text: str, what: str, kinds: Mapping[str, Collection[str]], *, example: str,
                    leading_positional: Collection[str] = (), error: ErrorClass = PackratError) -> KindSpec:
    """``"poisson:rate=40/s,duration=60s"`` -> ``KindSpec("poisson", {"rate": "40/s",
    "duration": "60s"}, ())`` (grammar ``kind-spec``).

    ``kinds`` maps each known kind to its option keys. An item holding ``=`` is an option,
    any other a bare (positional) item; for a kind in ``leading_positional`` the first item
    is bare even with an ``=`` unless its key is one of the kind's (a file path may hold
    ``=``). Kinds and keys are case-insensitive.

    Refuses, naming ``what``, the text and the bad part: a blank text (``example`` shows a
    good one), a missing or unknown kind, an empty item, an unknown key, a key given
    twice, an empty value. Checking which keys are required is the caller's.
    """
    if not isinstance(text, str) or not text.strip():
        raise error(f"the {what} spec is empty; e.g. {example}")
    kind, colon, body = text.strip().partition(":")
    kind = kind.strip().lower()
    if not colon or kind not in kinds:
        raise error(f"{what} {text!r} must start with one of {', '.join(k + ':' for k in kinds)} (e.g. {example})")
    items = split_items(body, f"{what} {text!r}", error=error)
    option_items: list[str] = []
    positional: list[str] = []
    for k, item in enumerate(items):
        bare_first = (kind in leading_positional and k == 0
                      and item.partition("=")[0].strip().lower() not in kinds[kind])
        if "=" in item and not bare_first:
            option_items.append(item)
        else:
            positional.append(item)
    return KindSpec(kind, _options(option_items, text, f"{kind} {what}", kinds[kind], error), tuple(positional))


# --------------------------------------------------------------------------- ladders


def _fmt_ladder_value(x: float) -> str:
    """``3.0`` -> ``"3"``, ``0.5`` -> ``"0.5"`` (10 significant digits)."""
    if float(x).is_integer():
        return str(int(x))
    return f"{x:.10g}"


def parse_ladder(text: str, *, max_points: int, error: ErrorClass = PackratError) -> list[str] | None:
    """The values of the ladder ``LO..HI[/STEP][UNIT]`` as strings, or None if ``text`` is not
    a ladder: LO, LO+STEP, ... up to HI inclusive (STEP 1 when left out), each followed by
    UNIT (``"50..150/50/s"`` -> ``["50/s", "100/s", "150/s"]``).

    Refuses (``error`` naming the ladder) a step <= 0, HI below LO, more than ``max_points``
    values.
    """
    m = _LADDER.match(text.strip())
    if not m:
        return None
    if all(g is None or _INTEGER.fullmatch(g) for g in m.groups()[:3]):
        return _integer_ladder(text, m, max_points, error)
    lo, hi = float(m.group(1)), float(m.group(2))
    step = float(m.group(3)) if m.group(3) is not None else 1.0
    unit = m.group(4)
    if step <= 0 or not math.isfinite(step):
        raise error(f"ladder {text!r}: the step must be > 0")
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise error(f"ladder {text!r}: its bounds must be finite numbers")
    if hi < lo:
        raise error(f"ladder {text!r}: {_fmt_ladder_value(hi)} is below {_fmt_ladder_value(lo)}")
    span = (hi - lo) / step
    if not math.isfinite(span):  # bounds 1e308 apart, or a step of 1e-320
        raise error(f"ladder {text!r} has more than {max_points} points")
    count = int(math.floor(span + 1e-9)) + 1
    if count > max_points:
        raise error(f"ladder {text!r} has {count} points (more than {max_points})")
    return [_fmt_ladder_value(round(lo + k * step, 10)) + unit for k in range(count)]


def _integer_ladder(text: str, m: re.Match, max_points: int, error: ErrorClass) -> list[str]:
    """:func:`parse_ladder` of a ladder whose bounds and step are integers, computed exactly
    (no float: ``9007199254740993..9007199254740995`` gives three values). Refuses, besides
    what parse_ladder refuses, a bound or step of more than 100 digits."""
    if any(g is not None and len(g) > 100 for g in m.groups()[:3]):  # int() of thousands of digits fails
        raise error(f"ladder {text[:60]!r}...: a bound or step of more than 100 digits")
    lo, hi = int(m.group(1)), int(m.group(2))
    step = int(m.group(3)) if m.group(3) is not None else 1
    if step <= 0:
        raise error(f"ladder {text!r}: the step must be > 0")
    if hi < lo:
        raise error(f"ladder {text!r}: {hi} is below {lo}")
    count = (hi - lo) // step + 1
    if count > max_points:
        raise error(f"ladder {text!r} has {count} points (more than {max_points})")
    return [f"{lo + k * step}{m.group(4)}" for k in range(count)]
