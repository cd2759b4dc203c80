"""`packrat` assembles its verbs from ui/cli/<verb>.py modules and fails loudly when one is missing."""

from __future__ import annotations

import pytest


def test_every_listed_verb_module_registers_a_command():
    import typer.main

    from ui.cli import app as cli

    names = {c.name for c in typer.main.get_command(cli.app).commands.values()}
    for module in cli.VERB_MODULES:
        assert module.startswith("ui.cli.")
    assert {"plan", "check", "explore", "ui"} <= names


def test_a_missing_verb_module_is_an_error_not_a_silently_missing_verb():
    from ui.cli import app as cli

    with pytest.raises(ModuleNotFoundError, match="ui.cli.not_there"):
        cli._register_verbs(("ui.cli.not_there",))
