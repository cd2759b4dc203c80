"""`packrat` assembles its verbs from ui/cmd_*.py modules and fails loudly when one is missing."""

from __future__ import annotations

import pytest


def test_every_listed_verb_module_registers_a_command():
    import typer.main

    from ui import cli

    names = {c.name for c in typer.main.get_command(cli.app).commands.values()}
    for module in cli.VERB_MODULES:
        assert module.startswith("ui.cmd_")
    assert {"plan", "check", "explore", "ui"} <= names


def test_a_missing_verb_module_is_an_error_not_a_silently_missing_verb():
    from ui import cli

    with pytest.raises(ModuleNotFoundError, match="ui.cmd_not_there"):
        cli._register_verbs(("ui.cmd_not_there",))
