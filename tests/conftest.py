"""Fixtures every test folder may use."""

from __future__ import annotations

import pytest


@pytest.fixture
def cli(capsys):
    """Run ``packrat ARGV...`` in process: ``cli(*argv) -> (exit code, stdout, stderr)``."""
    from ui.cli.app import main

    def run(*argv):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    return run
