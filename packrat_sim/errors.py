"""The base of every bad-input error in the toolkit.

Every library error that means "the caller gave a bad value" (a malformed profile, a
batch size of zero, an unknown protocol name, ...) derives from `PackratError`.
"""

from __future__ import annotations

__all__ = ["PackratError"]


class PackratError(ValueError):
    """Bad input: the message names the offending value and says what was expected.

    It subclasses `ValueError`, so callers that catch `ValueError` keep working. The CLI
    catches it once and maps it to one line on stderr (`packrat: error: <message>`) and
    exit code 2.
    """
