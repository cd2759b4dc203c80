"""The dashboard in a real browser: `packrat ui` (streamlit run) driven by Debian's Chromium.

Starts the server on a free local port, visits every page through the sidebar (one
session), does the main action of each page, checks that no exception box appears and
that the expected numbers are on screen, and saves a screenshot of each page under the
test's tmp folder (copied to /tmp/packrat-screenshots/ as well).

Needs the Python ``playwright`` package and /usr/bin/chromium (``make test`` installs
both; Playwright's own browser download is never used).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
    "--no-first-run", "--disable-component-update", "--disable-sync",
]
SHOTS_COPY = Path("/tmp/packrat-screenshots")
WAIT_MS = 120_000


def _requirements() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[browser]'; make test does it)"
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} is missing (apt-get install -y chromium; make test does it)"
    try:
        import plotly  # noqa: F401
        import streamlit  # noqa: F401
    except ImportError:
        return "streamlit / plotly are not installed"
    return None


@pytest.fixture(scope="module")
def server(ui_server):
    """`packrat ui --port P` on a free port; yields the base URL; stops the process group."""
    why = _requirements()
    if why:
        pytest.skip(why)
    from ui.cli.ui import free_port

    port = free_port()
    proc = ui_server.start(port)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    url = f"http://127.0.0.1:{port}"
    try:
        ui_server.wait_healthy(proc, url, 90, lambda: "".join(lines))
        assert any(f"Packrat dashboard: {url}" in line for line in lines), lines[:5]
        yield url, proc.pid
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=5)


class Dashboard:
    """Thin helpers over a Playwright page showing the dashboard."""

    def __init__(self, page, shots: Path) -> None:
        self.page = page
        self.shots = shots
        self.taken: list[Path] = []
        self.t0 = time.monotonic()

    def idle(self, quiet_s: float = 1.0) -> None:
        """Wait until the app shows no running indicator for ``quiet_s`` seconds."""
        running = self.page.get_by_test_id("stStatusWidgetRunningIcon")
        deadline = time.monotonic() + WAIT_MS / 1000
        calm_since = None
        while time.monotonic() < deadline:
            if running.count():
                calm_since = None
            elif calm_since is None:
                calm_since = time.monotonic()
            elif time.monotonic() - calm_since >= quiet_s:
                return
            time.sleep(0.2)
        raise AssertionError("the app kept running")

    def see(self, text: str, timeout_ms: int = WAIT_MS) -> None:
        self.page.get_by_text(text, exact=False).first.wait_for(state="visible", timeout=timeout_ms)

    def go(self, title: str) -> None:
        self.page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
        self.page.locator("h1", has_text=title).first.wait_for(timeout=WAIT_MS)
        self.idle()

    def metric(self, label: str) -> str:
        box = self.page.get_by_test_id("stMetric").filter(
            has=self.page.get_by_test_id("stMetricLabel").get_by_text(label, exact=True))
        return box.get_by_test_id("stMetricValue").first.inner_text().strip()

    def set_number(self, label: str, value) -> None:
        box = self.page.get_by_label(label, exact=True)
        box.fill(str(value))
        box.press("Enter")
        self.idle()

    def upload(self, path: Path) -> None:
        self.page.locator("input[type=file]").first.set_input_files(str(path))
        self.idle()

    def choose(self, label: str, option: str) -> None:
        """Pick ``option`` (a prefix of its text) in the selectbox labelled ``label``."""
        box = self.page.get_by_test_id("stSelectbox").filter(
            has=self.page.get_by_test_id("stWidgetLabel").get_by_text(label, exact=True))
        box.locator("div[role=combobox], input").first.click()
        self.page.get_by_role("option").filter(has_text=option).first.click()
        self.idle()

    def click(self, name: str) -> None:
        self.page.get_by_role("button", name=name, exact=True).click()

    def no_exception(self) -> None:
        assert self.page.get_by_test_id("stException").count() == 0, self.page.get_by_test_id("stException").first.inner_text()

    def shot(self, name: str) -> None:
        self.no_exception()
        path = self.shots / f"{len(self.taken) + 1}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        print(f"screenshot {path.name} at {time.monotonic() - self.t0:.1f} s")


STALE = [
    {"client": 0, "input": {"op": "write", "value": 1}, "output": None, "call": 0, "ret": 10},
    {"client": 1, "input": {"op": "read"}, "output": 1, "call": 5, "ret": 15},
    {"client": 0, "input": {"op": "write", "value": 2}, "output": None, "call": 20, "ret": 30},
    {"client": 1, "input": {"op": "read"}, "output": 1, "call": 31, "ret": 40},
]


def _descendants(pid: int) -> list[int]:
    """Every live descendant process of ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _cmdline_and_stat(pid: int) -> tuple[bytes, list[str]] | None:
    """(cmdline, the fields of /proc/PID/stat after the name) of a process, None when it is gone."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read()
        with open(f"/proc/{pid}/stat") as f:
            return cmd, f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _workers(server_pid: int) -> list[int]:
    """The dashboard's job processes still running: spawned ones (``spawn_main``) or ones the
    warm job server (multiprocessing's forkserver) forked; not the job server itself, not
    multiprocessing's resource tracker."""
    out = []
    for pid in _descendants(server_pid):
        seen = _cmdline_and_stat(pid)
        if seen is None or seen[1][0] == "Z":
            continue
        parent = _cmdline_and_stat(int(seen[1][1]))
        forked = parent is not None and b"forkserver" in parent[0]
        if b"spawn_main" in seen[0] or forked:
            out.append(pid)
    return out


def test_every_page_in_chromium(server, tmp_path):
    from playwright.sync_api import sync_playwright

    from packrat_sim.optimizer import OptimizerOptions, optimize
    from packrat_sim.profile import builtin_profile, dumps_profile
    from packrat_sim.simulator import SimConfig, compare_plans

    profile = builtin_profile("cnn-16")
    profile_file = tmp_path / "cnn16.json"
    profile_file.write_text(dumps_profile(profile))
    history_file = tmp_path / "good.history.json"
    history_file.write_text(json.dumps({"schema": "packrat.history/1", "model": "register", "operations": [
        {"client": 0, "input": {"op": "write", "value": 1}, "output": None, "call": 0, "ret": 10},
        {"client": 1, "input": {"op": "read"}, "output": 1, "call": 5, "ret": 15},
        {"client": 0, "input": {"op": "write", "value": 2}, "output": None, "call": 20, "ret": 30},
        {"client": 1, "input": {"op": "read"}, "output": 2, "call": 31, "ret": 40},
    ]}))
    stale_file = tmp_path / "stale.history.json"
    stale_file.write_text(json.dumps({"schema": "packrat.history/1", "model": "register", "operations": STALE}))
    shots = tmp_path / "screenshots"
    shots.mkdir()
    server_url, server_pid = server
    outside: list[str] = []

    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1400, "height": 2200},
        )
        try:
            page = ctx.pages[0] if ctx.pages else ctx.new_page()
            page.set_default_timeout(WAIT_MS)
            # everything is served locally: any request elsewhere (a CDN font, an emoji favicon) fails the test
            page.on("request", lambda r: None if r.url.startswith(("http://127.0.0.1", "data:", "blob:", "about:"))
                    else outside.append(r.url))
            d = Dashboard(page, shots)

            # Defect 7: /profiles is a page, not "Page not found"; the favicon is local.
            page.goto(server_url + "/profiles")
            page.locator("h1", has_text="Profiles").first.wait_for()
            d.idle()
            assert page.get_by_text("Page not found").count() == 0
            icons = page.locator("link[rel*='icon']").evaluate_all("els => els.map(e => e.href)")
            assert icons and all(h.startswith((server_url, "data:")) for h in icons), icons

            # 1. Profiles: load a profile file; its cells and the heatmap are drawn.
            page.get_by_text("Profile file (JSON)", exact=True).click()
            d.idle()
            d.upload(profile_file)
            d.see("Loaded cnn16.json")
            d.see("Current profile: cnn-16 [synthetic]")
            assert d.metric("Cells") == str(len(profile.cells))
            assert d.metric("Threads") == "1..16"
            assert page.locator(".js-plotly-plot").count() >= 2
            d.shot("profiles")

            # 2. Planner: batch 32 on 16 cores; plan, baselines, CLI box; Z3 certificate.
            d.go("Planner")
            d.set_number("Batch size B (inputs)", 32)
            best = optimize(profile, 32, 16, OptimizerOptions(exact_cores=False))
            d.see(best.describe())
            assert d.metric("Plan latency") == f"{best.predicted_ms:.2f} ms"
            d.see("packrat plan --profile PROFILE.json --batch 32 --cores 16")
            assert "planner.batch=32" in page.url  # the page's parameters live in the URL
            d.click("Certify this plan with Z3")
            d.see("OPTIMAL: Z3 proved")
            d.idle()
            d.shot("planner")

            # 3. Simulator: the default step workload against packrat, fat and thin; time series.
            d.go("Simulator")
            d.click("Simulate")
            d.see("Per-instance timeline")
            d.idle()
            spec = "steps:100/s@10s,600/s@10s,100/s@10s,max_batch=64,max_delay=10ms"
            comp = compare_plans(profile, 16, spec, seed=0, config=SimConfig())
            for r in comp.results:
                assert d.metric(f"{r.name}: p99 latency") == f"{r.stats.request_latency.p99_ms:.2f} ms"
            d.see("requests answered per second")
            d.click("Save run")
            d.see("Runs to compare")
            d.idle()
            d.shot("simulator-time-series")

            # 4. Verification: explore a buggy variant; the counterexample stepper.
            d.go("Verification")
            d.choose("Variant", "switch-before-ready")
            d.click("Explore")
            d.see("VIOLATION found at schedule")
            d.idle()
            assert page.get_by_text("Counterexample as a message sequence").count() >= 1
            assert d.metric("Schedules").isdigit()
            d.see("this step breaks the property")
            d.see("(breaks here)")
            d.see("packrat explore --replay explore-reconfig-switch-before-ready.replay.json")
            d.shot("verification-stepper")

            # Defect 3: Cancel stops the exploring process for real.
            d.choose("Protocol", "register")
            d.choose("Variant", "abd")
            d.choose("Strategy", "exhaustive")
            d.set_number("Max schedules", 10_000_000)
            d.set_number("Max time (s)", 120)
            d.click("Explore")
            page.get_by_role("button", name="Cancel").wait_for()
            deadline = time.monotonic() + 60
            while not _workers(server_pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert _workers(server_pid), "the exploration runs in a child process"
            # live progress from the explorer itself, not just a clock (its first snapshot comes
            # once the child has imported and started: seconds on a loaded machine)
            deadline = time.monotonic() + 60
            progress = ""
            while " schedules" not in progress and time.monotonic() < deadline:
                time.sleep(0.5)
                progress = page.get_by_test_id("stProgress").first.inner_text()
            assert "Exploring register/abd with exhaustive" in progress and " schedules" in progress, progress
            d.shot("verification-cancel-progress")
            page.get_by_role("button", name="Cancel").click()
            d.see("Exploration cancelled: its process was stopped")
            d.idle()
            deadline = time.monotonic() + 10
            while _workers(server_pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not _workers(server_pid), "a worker kept running after Cancel"

            # 5. History checker: an OK history, then an illegal one and its linearization view.
            page.get_by_text("History checker", exact=True).click()
            d.idle()
            d.upload(history_file)
            d.click("Check linearizability")
            d.see("LINEARIZABLE: good.history.json: 4 operations")
            d.idle()
            d.upload(stale_file)
            assert page.get_by_text("LINEARIZABLE: good.history.json").count() == 0  # defect 2: no stale verdict
            d.click("Check linearizability")
            d.see("NOT LINEARIZABLE: stale.history.json")
            d.see("Failed first: partition all operations")
            d.idle()
            d.shot("verification-linearization")

            # 6. Hardware: run a plan beside the fat instance on this machine's cores.
            d.go("Hardware")
            d.set_number("Batch B", 2)
            d.set_number("Iterations", 2)
            page.get_by_text("Also run the thin plan", exact=True).click()
            d.idle()
            d.click("Run on this machine")
            d.see("Measured speedup of the plan over fat", timeout_ms=600_000)  # torch on a busy 2-CPU machine
            d.idle()
            labels = page.get_by_test_id("stMetricLabel").all_inner_texts()
            plan_label = next(x for x in labels if x.startswith("plan "))
            assert d.metric(plan_label).endswith(" ms") and float(d.metric(plan_label).split()[0]) > 0
            assert any(x.startswith("fat 1 x ") for x in labels)
            d.shot("hardware")

            # Choices and results persist for the session across pages...
            d.go("Planner")
            assert page.get_by_label("Batch size B (inputs)", exact=True).input_value() == "32"
            assert d.metric("Plan latency") == f"{best.predicted_ms:.2f} ms"
            d.see("OPTIMAL: Z3 proved")
            d.no_exception()
            # ...and a shared link opens the same plan in a fresh session.
            page.wait_for_url(lambda url: "planner.batch=32" in url)  # the query string follows the page
            link = page.url
            other = ctx.new_page()
            other.set_default_timeout(WAIT_MS)
            other.goto(link.replace("planner.batch=32", "planner.batch=48"))
            other.locator("h1", has_text="Planner").first.wait_for()
            Dashboard(other, shots).idle()
            batch = other.get_by_label("Batch size B (inputs)", exact=True)
            deadline = time.monotonic() + 30
            while batch.input_value() != "48" and time.monotonic() < deadline:
                time.sleep(0.2)
            assert batch.input_value() == "48"
            other.close()
        except BaseException:
            SHOTS_COPY.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS_COPY / "failure.png"), full_page=True)
            raise
        finally:
            ctx.close()

    assert not outside, f"fetched from outside this machine: {outside[:5]}"
    SHOTS_COPY.mkdir(parents=True, exist_ok=True)
    for p in d.taken:
        shutil.copy(p, SHOTS_COPY / p.name)
    assert [p.name for p in d.taken] == [
        "1-profiles.png", "2-planner.png", "3-simulator-time-series.png", "4-verification-stepper.png",
        "5-verification-cancel-progress.png", "6-verification-linearization.png", "7-hardware.png",
    ]
    assert all(p.stat().st_size > 10_000 for p in d.taken)
