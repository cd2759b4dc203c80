"""``python -m ui.cli ARGS``: the same as the ``packrat`` console script."""

from ui.cli.app import main

main()
