"""Input validation: small pure checks that share one message format.

Every check returns the value in its canonical type (``int``, ``float``, ``str``) or raises
``error``, an exception class the caller chooses (so a module keeps raising its own error
type; :class:`~packrat_sim.errors.PackratError` by default), with the message::

    {what} must be {expected}, got {value!r}

e.g. ``--batch must be a positive integer, got 0``. ``what`` names the value as the user
wrote it (an option, a field, a parameter); ``expected`` says what was wanted. Each check
has a default ``expected`` text; ``expected=`` replaces it where a caller words it for its
domain ("a number of seconds > 0"). ``bool`` is never a number here, although Python's
``bool`` subclasses ``int``. Numpy floats are numbers; numpy integers are integers only where
the caller says so (``numpy=True``), since a value stored as given must stay JSON-writable.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

from packrat_sim.errors import PackratError

__all__ = [
    "finite",
    "integer",
    "is_integer",
    "is_number",
    "message",
    "name",
    "nonnegative_float",
    "nonnegative_int",
    "one_of",
    "positive_float",
    "positive_int",
]


def message(what: str, expected: str, value: object) -> str:
    """The one message format: ``"{what} must be {expected}, got {value!r}"``."""
    return f"{what} must be {expected}, got {value!r}"


def is_integer(value: object, *, numpy: bool = False) -> bool:
    """True for an ``int`` that is not a ``bool`` (with ``numpy``, also for a numpy integer)."""
    kind = numbers.Integral if numpy else int
    return isinstance(value, kind) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """True for a real number (``int``, ``float``, numpy scalars) that is not a ``bool``."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _integer_range(low: int | None, high: int | None) -> str:
    """``an integer``, ``an integer >= 1``, ``an integer <= 9`` or ``an integer in 1..9``."""
    if low is not None and high is not None:
        return f"an integer in {low}..{high}"
    if low is not None:
        return f"an integer >= {low}"
    if high is not None:
        return f"an integer <= {high}"
    return "an integer"


def integer(
    value: object,
    what: str,
    *,
    low: int | None = None,
    high: int | None = None,
    error: type[Exception] = PackratError,
    expected: str | None = None,
    numpy: bool = False,
) -> int:
    """``value`` as an ``int`` if it is an ``int`` (not a bool; with ``numpy``, also a numpy
    integer) with ``low <= value <= high`` (either bound may be None); else ``error`` naming
    ``what`` and ``value``."""
    if (
        not is_integer(value, numpy=numpy)
        or (low is not None and value < low)  # type: ignore[operator]
        or (high is not None and value > high)  # type: ignore[operator]
    ):
        raise error(message(what, expected or _integer_range(low, high), value))
    return int(value)  # type: ignore[call-overload]


def positive_int(
    value: object,
    what: str,
    *,
    error: type[Exception] = PackratError,
    expected: str = "a positive integer",
    numpy: bool = False,
) -> int:
    """``value`` as an ``int`` >= 1 (see :func:`integer`); else ``error``:
    ``{what} must be a positive integer, got {value!r}``."""
    return integer(value, what, low=1, error=error, expected=expected, numpy=numpy)


def nonnegative_int(
    value: object,
    what: str,
    *,
    error: type[Exception] = PackratError,
    expected: str | None = None,
    numpy: bool = False,
) -> int:
    """``value`` as an ``int`` >= 0 (see :func:`integer`); else ``error``:
    ``{what} must be an integer >= 0, got {value!r}``."""
    return integer(value, what, low=0, error=error, expected=expected, numpy=numpy)


def _number_range(low: float | None, above: float | None, high: float | None) -> str:
    """``a finite number`` followed by its bounds: ``>= 0``, ``> 0``, ``<= 1``, ``in (0, 1]``."""
    text = "a finite number"
    if high is not None and (low is not None or above is not None):
        left = f"[{low:g}" if low is not None else f"({above:g}"
        return f"{text} in {left}, {high:g}]"
    if low is not None:
        text += f" >= {low:g}"
    if above is not None:
        text += f" > {above:g}"
    if high is not None:
        text += f" <= {high:g}"
    return text


def finite(
    value: object,
    what: str,
    *,
    low: float | None = None,
    above: float | None = None,
    high: float | None = None,
    error: type[Exception] = PackratError,
    expected: str | None = None,
) -> float:
    """``value`` as a ``float`` if it is a finite real number (not a bool, NaN or an infinity)
    with ``value >= low``, ``value > above`` and ``value <= high`` (each bound optional);
    else ``error`` naming ``what`` and ``value``."""
    if is_number(value):
        try:
            x = float(value)  # type: ignore[arg-type]
        except OverflowError:  # an int too large for a float
            x = math.nan
        if (
            math.isfinite(x)
            and (low is None or x >= low)
            and (above is None or x > above)
            and (high is None or x <= high)
        ):
            return x
    raise error(message(what, expected or _number_range(low, above, high), value))


def positive_float(
    value: object, what: str, *, error: type[Exception] = PackratError, expected: str | None = None
) -> float:
    """``value`` as a finite ``float`` > 0; else ``error``: ``{what} must be a finite number > 0, got {value!r}``."""
    return finite(value, what, above=0, error=error, expected=expected)


def nonnegative_float(
    value: object, what: str, *, error: type[Exception] = PackratError, expected: str | None = None
) -> float:
    """``value`` as a finite ``float`` >= 0; else ``error``: ``{what} must be a finite number >= 0, got {value!r}``."""
    return finite(value, what, low=0, error=error, expected=expected)


def name(
    value: object, what: str, *, error: type[Exception] = PackratError, expected: str = "a non-empty string"
) -> str:
    """``value`` if it is a string with a non-blank character; else ``error``:
    ``{what} must be a non-empty string, got {value!r}``."""
    if not isinstance(value, str) or not value.strip():
        raise error(message(what, expected, value))
    return value


def one_of(value: object, what: str, choices: Iterable[object], *, error: type[Exception] = PackratError) -> object:
    """``value`` if it is one of ``choices``; else ``error``:
    ``{what} must be one of a, b, c, got {value!r}``."""
    options = list(choices)
    if value not in options:
        raise error(message(what, "one of " + ", ".join(str(c) for c in options), value))
    return value
