"""DESIGN.md's import rule, enforced on the source tree.

packrat_sim imports none of checker / real_runner / ui; checker imports only packrat_sim;
real_runner imports packrat_sim and checker; ui imports anything. torch only in
real_runner, z3 only in checker/allocation.py, streamlit and plotly only in ui.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("packrat_sim", "checker", "real_runner", "ui")
ALLOWED_PROJECT_IMPORTS = {
    "packrat_sim": {"packrat_sim"},
    "checker": {"packrat_sim", "checker"},
    "real_runner": {"packrat_sim", "checker", "real_runner"},
    "ui": set(PACKAGES),
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def sources():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield package, path


@pytest.mark.parametrize("package, path", list(sources()), ids=lambda x: str(x).rsplit("/work/main/", 1)[-1] if isinstance(x, Path) else x)
def test_each_module_imports_only_what_its_package_may(package, path):
    roots = imported_roots(path)
    rel = path.relative_to(ROOT).as_posix()
    forbidden = (roots & set(PACKAGES)) - ALLOWED_PROJECT_IMPORTS[package]
    assert not forbidden, f"{rel} imports {sorted(forbidden)}"
    if "torch" in roots or "torchvision" in roots or "transformers" in roots:
        assert package == "real_runner", f"{rel} imports torch outside real_runner"
    if "z3" in roots:
        assert rel == "checker/allocation.py", f"{rel} imports z3"
    if roots & {"streamlit", "plotly"}:
        assert package == "ui", f"{rel} imports streamlit/plotly outside ui"


def test_no_module_is_named_profile_at_top_level():
    assert not (ROOT / "profile.py").exists()
    assert not (ROOT / "real_runner" / "profile.py").exists()


def test_the_cli_help_and_the_core_start_without_torch_z3_or_streamlit():
    code = (
        "import sys, contextlib, io\n"
        "from ui.cli.app import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help'])\n"
        "import packrat_sim.optimizer, packrat_sim.profile, packrat_sim.plan\n"
        "bad = [m for m in ('torch', 'z3', 'streamlit', 'plotly') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
