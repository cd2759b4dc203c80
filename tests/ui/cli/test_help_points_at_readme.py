"""Issue 31, item 8: `--help` texts point a reader at the README (by section), never at the
toolkit's source files or modules, and every README section they name exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
VERBS = ("profile", "plan", "predict", "verify", "simulate", "sweep", "check", "explore", "run", "bench",
         "fidelity", "demo", "ui")
# a path to one of the toolkit's files (ui/run_load.py, packrat_sim/policy.py) or a dotted module
# name (packrat_sim.policy.PolicyConfig)
SOURCE = re.compile(r"\b(?:packrat_sim|checker|real_runner|ui|benchmarks|tests)(?:/[\w/]+\.py|\.[A-Za-z_][\w.]*)|"
                    r"\b[\w/]+\.py\b")


def help_text(cli, monkeypatch, *argv: str) -> str:
    monkeypatch.setenv("COLUMNS", "400")  # one option per line: nothing is wrapped mid-name
    code, out, err = cli(*argv, "--help")
    assert code == 0, err
    return " ".join(out.split())


def readme_sections() -> set[str]:
    """Headings and bold paragraph titles (``**The policy**``) of the README."""
    heads = {m.group(1).strip() for m in re.finditer(r"^#+\s+(.+)$", README, re.M)}
    bold = {m.group(1).strip(" .") for m in re.finditer(r"\*\*([^*]+)\*\*", README)}
    return heads | bold


@pytest.mark.parametrize("verb", VERBS)
def test_no_help_text_points_at_a_source_file(cli, monkeypatch, verb):
    text = help_text(cli, monkeypatch, verb)
    assert SOURCE.findall(text) == [], f"packrat {verb} --help names source files; point at README.md instead"


def test_the_top_level_help_names_no_source_file(cli, monkeypatch):
    assert SOURCE.findall(help_text(cli, monkeypatch)) == []


@pytest.mark.parametrize("verb", VERBS)
def test_every_readme_section_a_help_text_names_exists(cli, monkeypatch, verb):
    named = re.findall(r'README(?:\.md)?, "([^"]+)"', help_text(cli, monkeypatch, verb))
    assert set(named) <= readme_sections(), f"packrat {verb} --help names missing README sections"


def test_run_points_its_load_and_policy_options_at_the_readme(cli, monkeypatch):
    text = help_text(cli, monkeypatch, "run")
    assert 'README.md, "Online reconfiguration under a changing load"' in text
    assert 'README.md, "The policy"' in text
