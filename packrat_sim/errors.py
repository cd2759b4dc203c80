"""The base of every bad-input error in the toolkit.

Every library error that means "the caller gave a bad value" (a malformed profile, a
batch size of zero, an unknown protocol name, ...) derives from `PackratError`.
"""

from __future__ import annotations

__all__ = ["PackratDeprecation", "PackratError"]


class PackratError(ValueError):
    """Bad input: the message names the offending value and says what was expected.

    It subclasses `ValueError`, so callers that catch `ValueError` keep working. The CLI
    catches it once and maps it to one line on stderr (`packrat: error: <message>`) and
    exit code 2.
    """


class PackratDeprecation(FutureWarning):
    """An old spelling that still works in this release; the message names the new one.

    A FutureWarning, so Python shows it to users by default; the CLI prints it as one line
    on stderr (``packrat: deprecated: <message>``), the dashboard as a warning box."""
