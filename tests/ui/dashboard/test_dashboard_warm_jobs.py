"""Issue 30 item 3: a job starts at once. The app starts a warm job server with the libraries
imported; each job is forked from it (still its own process, which Cancel kills: see
test_dashboard_jobs.py) and never re-runs the app as its main module."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from ui.dashboard import jobs

pytestmark = pytest.mark.skipif("forkserver" not in multiprocessing.get_all_start_methods(),
                                reason="no forkserver on this platform: jobs are spawned")


def server_pid():
    from multiprocessing import forkserver

    return forkserver._forkserver._forkserver_pid  # (private: multiprocessing names no public accessor)


def run(job: jobs.Job, within_s: float = 30.0):
    deadline = time.monotonic() + within_s
    while not job.poll(0.1):
        assert time.monotonic() < deadline
    return job.result()


def test_the_app_starts_the_job_server(app):
    assert server_pid() is not None


PROBE = """
import json, os, time
from multiprocessing import forkserver
from ui.dashboard import jobs
assert jobs.warm()
job = jobs.Job("ui.dashboard.jobs:probe_job", {}).start()
while not job.poll(0.1):
    pass
print(json.dumps(dict(job.result(), job_pid=job.pid, me=os.getpid(), server=forkserver._forkserver._forkserver_pid)))
"""


def test_a_job_is_forked_from_the_warm_server_with_the_libraries_imported(h):
    """In a fresh interpreter (the server of this test process may have been started by a local
    engine, with its own preload): the app's warm() server, then one job."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", PROBE], cwd=h.ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["pid"] == seen["job_pid"] != seen["me"], "each job is its own process"
    assert seen["ppid"] == seen["server"] != seen["me"], "forked from the job server, not spawned afresh"
    assert seen["preloaded"] == list(jobs.PRELOAD), "the libraries were imported before the job started"
    assert seen["main_file"] is None, "a job never re-runs the caller's main"


def test_a_job_started_from_an_app_run_does_not_re_run_the_app(tmp_path, monkeypatch):
    """In a page run ``__main__`` is app.py: a child of multiprocessing would re-run it (the whole
    app, in bare mode) before its work. Here the main script would leave a mark and fail."""
    import sys
    import types

    mark = tmp_path / "ran"
    script = tmp_path / "app.py"
    script.write_text(f"open({str(mark)!r}, 'w').write('x')\nraise SystemExit(3)\n")
    fake_main = types.ModuleType("__main__")
    fake_main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", fake_main)
    seen = run(jobs.Job("ui.dashboard.jobs:probe_job", {}).start())
    assert seen["main_file"] is None and not mark.exists()
    assert sys.modules["__main__"] is fake_main  # put back after the start
