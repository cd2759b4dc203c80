"""Issue 30 item 6 and 8 in a real browser (`packrat ui` and Debian's Chromium, light and dark
themes): no Deploy button in the toolbar, axis text at >= 4.5:1 against the page, and the
sidebar naming the profile the Hardware page works on.

Needs the Python ``playwright`` package and /usr/bin/chromium, like tests/ui/dashboard/test_browser.py.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
WAIT_MS = 120_000


@pytest.fixture(scope="module")
def dashboard_url(ui_server):
    """`packrat ui --port P` on a free port; yields its URL; stops its process group."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install -e '.[browser]'; make test does it)")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing")
    from ui.cli.ui import free_port

    port = free_port()
    proc = ui_server.start(port)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    try:
        ui_server.wait_healthy(proc, url, 90, lambda: "".join(lines))
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield b
        b.close()


def _open(browser, url: str, scheme: str):
    ctx = browser.new_context(color_scheme=scheme, viewport={"width": 1440, "height": 900})
    page = ctx.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(url)
    page.locator("h1").first.wait_for()
    return ctx, page


def _rgb(css: str) -> tuple[int, int, int]:
    r, g, b = (int(x) for x in re.findall(r"\d+", css)[:3])
    return r, g, b


def _hex(rgb) -> str:
    return "#" + "".join(f"{round(c):02X}" for c in rgb)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axis_text_reads_at_wcag_contrast_and_the_toolbar_has_no_deploy_button(browser, dashboard_url, scheme):
    from ui.dashboard.data import contrast_ratio

    ctx, page = _open(browser, f"{dashboard_url}/planner", scheme)
    try:
        page.locator(".stPlotlyChart .xtick text").first.wait_for()
        page.get_by_test_id("stToolbar").first.wait_for()
        assert page.get_by_test_id("stAppDeployButton").count() == 0
        assert page.get_by_role("button", name="Deploy").count() == 0
        seen = page.evaluate("""() => {
            const bg = getComputedStyle(document.querySelector('.stApp')).backgroundColor;
            return [...document.querySelectorAll(
                '.stPlotlyChart .xtick text, .stPlotlyChart .ytick text, .stPlotlyChart .g-xtitle text, '
                + '.stPlotlyChart .g-ytitle text')].map(t => {
                const s = getComputedStyle(t);
                return [s.fill, parseFloat(s.fillOpacity), bg];
            });
        }""")
        assert seen
        for fill, opacity, bg in seen:
            f, b = _rgb(fill), _rgb(bg)
            shown = [opacity * fc + (1 - opacity) * bc for fc, bc in zip(f, b)]
            ratio = contrast_ratio(_hex(shown), _hex(b))
            assert ratio >= 4.5, (scheme, fill, opacity, bg, ratio)  # Streamlit's grey on white: 3.8
    finally:
        ctx.close()


def test_the_sidebar_names_the_quick_profile_the_hardware_page_works_on(browser, dashboard_url):
    ctx, page = _open(browser, f"{dashboard_url}/hardware", "light")
    try:
        sidebar = page.get_by_test_id("stSidebar")
        sidebar.get_by_text("(quick profile)", exact=False).first.wait_for()
        assert "The other pages use the current profile, transformer-16 [synthetic]." in sidebar.inner_text()
    finally:
        ctx.close()
