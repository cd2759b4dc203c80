"""Screenshots of every dashboard page in both themes, for docs/screenshots/README.md.

Usage (a dashboard already running, e.g. ``packrat ui --port 8731``; needs the ``playwright``
package, ``pip install -e '.[browser]'``, and Chromium at /usr/bin/chromium)::

    python docs/screenshots/shoot.py http://127.0.0.1:8731 docs/screenshots

Each page is opened in a fresh tab at 1440x900 (saved at 0.6 scale, small PNGs), its main
action done where it has one (Simulate, Explore, a history check), scrolled to its results,
and saved as ``<page>-<light|dark>.png``. A page that shows an exception box fails the run.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
#: A register history whose read returns a value never written (the linearization view's cause).
GHOST = [
    {"client": 0, "input": {"op": "write", "value": 1}, "output": None, "call": 0, "ret": 10},
    {"client": 1, "input": {"op": "read"}, "output": 1, "call": 12, "ret": 20},
    {"client": 2, "input": {"op": "read"}, "output": 3, "call": 22, "ret": 30},
    {"client": 0, "input": {"op": "write", "value": 2}, "output": None, "call": 25, "ret": 40},
]
#: (file name, path and query, the heading scrolled to the top: None for the page's top).
PAGES = [
    ("profiles", "", None),
    ("planner", "planner", "Optimal plan"),
    ("simulator", "simulator", "Results"),
    ("verification-explorer", "verification?explore.variant=switch-before-ready", "Step through the schedule"),
    ("verification-history", "verification?verify.section=History+checker", "Linearization"),
    ("hardware", "hardware", None),
    ("sweep", "sweep", None),
]


def idle(page, quiet_s: float = 1.5, limit_s: float = 180) -> None:
    """Wait until the app has shown no running indicator for ``quiet_s`` seconds."""
    calm = None
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if page.get_by_test_id("stStatusWidgetRunningIcon").count():
            calm = None
        elif calm is None:
            calm = time.monotonic()
        elif time.monotonic() - calm > quiet_s:
            return
        time.sleep(0.2)
    raise RuntimeError("the app kept running")


def act(page, name: str, history: Path) -> None:
    """The page's main action, where the screenshot should show its result."""
    if name == "simulator":
        page.get_by_role("button", name="Simulate", exact=True).click()
    elif name == "verification-explorer":
        page.get_by_role("button", name="Explore", exact=True).click()
    elif name == "verification-history":
        page.locator("input[type=file]").first.set_input_files(str(history))
        idle(page)
        page.get_by_role("button", name="Check linearizability", exact=True).click()
    idle(page, 2.5)


def shoot(url: str, out: Path) -> list[Path]:
    """Every page of the dashboard at ``url`` in both themes, saved under ``out``."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    saved = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        history = Path(tmp) / "ghost.history.json"
        history.write_text(json.dumps({"schema": "packrat.history/1", "model": "register", "operations": GHOST}))
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        for scheme in ("light", "dark"):
            ctx = browser.new_context(color_scheme=scheme, viewport={"width": 1440, "height": 900},
                                      device_scale_factor=0.6)
            for name, path, anchor in PAGES:
                page = ctx.new_page()
                page.set_default_timeout(180_000)
                page.goto(f"{url}/{path}")
                page.locator("h1").first.wait_for()
                page.wait_for_timeout(2500)
                idle(page)
                act(page, name, history)
                if anchor:
                    page.get_by_text(anchor, exact=True).first.evaluate("e => e.scrollIntoView({block: 'start'})")
                    page.wait_for_timeout(1500)
                if page.get_by_test_id("stException").count():
                    raise RuntimeError(f"{name} ({scheme}) shows an exception")
                saved.append(out / f"{name}-{scheme}.png")
                page.screenshot(path=str(saved[-1]))
                page.close()
            ctx.close()
        browser.close()
    return saved


if __name__ == "__main__":
    for p in shoot(sys.argv[1], Path(sys.argv[2])):
        print(p, p.stat().st_size)
