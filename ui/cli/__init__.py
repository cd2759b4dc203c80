"""The ``packrat`` command line: the typer app (:mod:`ui.cli.app`) and one module per verb.

Nothing is imported here, so a verb module can import :mod:`ui.cli.common` without
assembling the whole app."""
