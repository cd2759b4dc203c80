"""The wheel holds every file the code loads at run time (issue 26).

Builds the wheel from a copy of the source tree (no network: no build isolation, no index),
installs it with ``pip install --no-deps`` into a fresh virtual environment that sees this
environment's dependencies but neither the source tree nor its editable install, and from a
directory outside the repository runs ``packrat --version``, imports the CLI and the dashboard's
help, and starts the dashboard's app module (Streamlit's AppTest) from the installed files.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("packrat_sim", "checker", "real_runner", "ui")
DIST_INFO = re.compile(r"packrat_toolkit-.*\.dist-info$")
# not copied to build from: environments, VCS, caches and earlier build outputs
COPY_IGNORE = shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", "*.pyc",
                                     ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis")


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> str:
    """Run ``argv``; its stdout, or a test failure quoting its output when it exits non-zero."""
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


def _project_version() -> str:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def _shadow_site_packages(dest: Path) -> Path:
    """A folder of links to this environment's site-packages entries, less the toolkit itself
    (its editable-install finder, its dist-info, its packages) and the .pth files."""
    dest.mkdir()
    site = Path(sysconfig.get_path("purelib"))
    for entry in sorted(site.iterdir()):
        name = entry.name
        if (name.startswith("__editable__") or name.endswith(".pth") or DIST_INFO.match(name)
                or name in PACKAGES or name == "__pycache__"):
            continue
        (dest / name).symlink_to(entry)
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the wheel, the fresh environment's python, its bin folder, its site-packages, an
    environment for subprocesses, a working directory outside the repository)."""
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("setuptools is needed to build the wheel without build isolation")
    tmp = tmp_path_factory.mktemp("packaging")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=COPY_IGNORE, symlinks=True)
    wheels = tmp / "wheels"
    quiet = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", str(wheels), str(src)], cwd=tmp, env=quiet)
    (wheel,) = wheels.glob("packrat_toolkit-*.whl")

    env_dir = tmp / "env"
    _run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], cwd=tmp)
    python = env_dir / "bin" / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=tmp).strip())
    (site / "_packrat_test_deps.pth").write_text(f"{_shadow_site_packages(tmp / 'deps')}\n", encoding="utf-8")

    env = {k: v for k, v in quiet.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")}
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    outside = tmp / "elsewhere"
    outside.mkdir()
    _run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)], cwd=outside, env=env)
    return wheel, python, env_dir / "bin", site, env, outside


def test_the_wheel_holds_the_license_and_every_data_file_of_the_packages(installed):
    wheel = installed[0]
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "ui/dashboard/favicon.png" in names
    assert any(re.fullmatch(r"packrat_toolkit-[^/]+\.dist-info/licenses/LICENSE", n) for n in names), sorted(names)
    data_files = sorted(
        str(p.relative_to(ROOT)) for package in PACKAGES for p in (ROOT / package).rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    )
    assert data_files, "expected at least the dashboard's favicon"
    assert [f for f in data_files if f not in names] == []


def test_packrat_version_runs_from_the_installed_wheel(installed):
    _, _, bin_dir, _, env, outside = installed
    out = _run([str(bin_dir / "packrat"), "--version"], cwd=outside, env=env)
    assert out == f"packrat {_project_version()}\n"


INSTALLED_CHECK = r"""
import importlib.util, pathlib, re, sys
site = pathlib.Path(sys.argv[1]).resolve()
import ui, ui.cli.app, ui.dashboard.help
assert pathlib.Path(ui.__file__).resolve().is_relative_to(site), ui.__file__  # not the source tree
app = pathlib.Path(importlib.util.find_spec("ui.dashboard.app").origin).resolve()
assert app.is_relative_to(site), app
# every file app.py names beside itself (the favicon, the pages) is installed
named = re.findall(r'"([\w.-]+\.(?:png|ico|svg|css|json|md|py))"', app.read_text(encoding="utf-8"))
assert "favicon.png" in named, named
missing = [n for n in named if not (app.parent / n).exists() and not (app.parent / "pages" / n).exists()]
assert not missing, missing
assert ui.dashboard.help.readme_section("Dashboard").startswith("## Dashboard")  # the README, from metadata
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(str(app), default_timeout=60).run()
assert not at.exception, [e.value for e in at.exception]
print("ok")
"""


def test_the_dashboard_app_starts_from_the_installed_wheel(installed):
    pytest.importorskip("streamlit")
    pytest.importorskip("plotly")
    _, python, _, site, env, outside = installed
    out = _run([str(python), "-c", INSTALLED_CHECK, str(site)], cwd=outside, env=env, timeout=180)
    assert out.strip().endswith("ok")
