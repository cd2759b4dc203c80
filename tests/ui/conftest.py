"""Shared helpers of the dashboard tests (AppTest and browser) and of the `packrat` CLI tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "ui" / "dashboard" / "app.py"
FIXTURES = ROOT / "tests" / "packrat_sim" / "fixtures"


def _app_test_available() -> bool:
    try:
        import plotly  # noqa: F401
        from streamlit.testing.v1 import AppTest  # noqa: F401
    except ImportError:
        return False
    return True


def start_ui(port: int) -> subprocess.Popen:
    """``packrat ui --port PORT`` as a child in its own session (stdout and stderr as text)."""
    return subprocess.Popen(
        [sys.executable, "-m", "ui.cli", "ui", "--port", str(port)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def wait_healthy(proc: subprocess.Popen, url: str, timeout: float, output: Callable[[], str]) -> None:
    """Wait until the dashboard at ``url`` answers its health check; fail the test (with the
    tail of ``output()``) when ``proc`` exits first or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            pytest.fail(f"packrat ui exited with {proc.returncode}: {output()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"the dashboard did not answer on {url}: {output()[-2000:]}")
        time.sleep(0.5)


@pytest.fixture(scope="session")
def ui_server():
    """The `packrat ui` process helpers above (session scope, so module fixtures can use them)."""
    from types import SimpleNamespace

    return SimpleNamespace(start=start_ui, wait_healthy=wait_healthy)


@pytest.fixture
def app():
    """A fresh dashboard session (AppTest) on its first page, already run once."""
    if not _app_test_available():
        pytest.skip("streamlit / plotly not installed (pip install -e '.[ui]')")
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def open_page():
    """Factory: a fresh dashboard session opened directly on ``ui/dashboard/pages/<name>.py``."""
    if not _app_test_available():
        pytest.skip("streamlit / plotly not installed (pip install -e '.[ui]')")
    from streamlit.testing.v1 import AppTest

    def make(name: str):
        at = AppTest.from_file(str(APP), default_timeout=180)
        at.switch_page(f"pages/{name}.py").run()
        assert not at.exception, [e.message for e in at.exception]
        assert at.title and at.title[0].value.lower() == name, [t.value for t in at.title]
        return at

    return make


@pytest.fixture
def verify(open_page):
    """The Verification page opened on its History checker section."""
    at = open_page("verification")
    at.radio(key="verify.section").set_value("History checker").run()
    return at


def history(ops, model="register") -> bytes:
    """A packrat.history/1 upload of ``ops`` under ``model``."""
    return json.dumps({"schema": "packrat.history/1", "model": model, "operations": ops}).encode()


def goto(at, page: str):
    """Switch the AppTest session to ``ui/dashboard/pages/<page>.py`` and run it."""
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def chart(at, key: str) -> dict:
    """The plotly figure (as JSON) drawn by ``st.plotly_chart(..., key=key)``."""
    for el in at.get("plotly_chart"):
        if el.key == key:
            return json.loads(el.proto.spec)
    raise AssertionError(f"no plotly chart with key {key!r}; have {[e.key for e in at.get('plotly_chart')]}")


def frame(at, column: str):
    """The first dataframe on the page that has ``column`` (a pandas DataFrame)."""
    for df in at.dataframe:
        value = df.value
        if column in value.columns:
            return value
    raise AssertionError(f"no dataframe with column {column!r}")


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def texts(at) -> str:
    """All markdown, captions, alerts, code and titles on the page, joined."""
    parts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success", "code"):
        parts.extend(str(e.value) for e in getattr(at, kind))
    return "\n".join(parts)


def no_errors(at) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def small_sweep(at, *, profile: str = "builtin:cnn-4", cores: str = "4",
                workload: str = "poisson:rate=100..200/100,duration=1s,max_batch=8",
                policies: tuple[str, ...] = ("packrat", "fat"), seeds: str = "0"):
    """Fill the Sweep page's grid (by default the small one the sweep tests run: cnn-4 on 4
    cores, two Poisson rates, packrat and fat, seed 0); returns ``at`` (not yet re-run)."""
    at.text_input(key="sweep.profile").set_value(profile)
    at.text_input(key="sweep.cores").set_value(cores)
    at.text_input(key="sweep.workload").set_value(workload)
    at.multiselect(key="sweep.policies").set_value(list(policies))
    at.text_input(key="sweep.seeds").set_value(seeds)
    return at


@pytest.fixture
def h():
    """The helpers above, as a fixture (test modules do not import conftest)."""
    from types import SimpleNamespace

    return SimpleNamespace(goto=goto, history=history, chart=chart, frame=frame, metrics=metrics, texts=texts, no_errors=no_errors, small_sweep=small_sweep,
                           FIXTURES=FIXTURES, ROOT=ROOT, APP=APP)
