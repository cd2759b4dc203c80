"""`packrat profile --model`: measures on this machine, resumes, refuses bad input with exit 2."""

from __future__ import annotations

import json
import os

import pytest

from packrat_sim.profile import read_profile
from ui.cli.app import main

ALLOWED = sorted(os.sched_getaffinity(0))


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_profile_measures_then_resumes_only_the_missing_cells(capsys, tmp_path):
    out_file = str(tmp_path / "tiny.json")
    code, out, err = run(capsys, "profile", "--model", "tiny-mlp", "--threads", "1", "--batches", "1,2", "--no-interference",
                         "--repeats", "3", "--out", out_file, "--json")
    assert code == 0 and err == ""  # no progress bar when stderr is not a terminal
    first = json.loads(out)
    assert first["measured"] == [[1, 1], [1, 2]] and first["resumed"] == [] and first["statistic"] == "median"
    code, out, err = run(capsys, "profile", "--model", "tiny-mlp", "--threads", "1", "--batches", "1,2,4", "--no-interference",
                         "--repeats", "3", "--out", out_file, "--json", "--progress")
    assert code == 0
    second = json.loads(out)
    assert second["measured"] == [[1, 4]] and second["resumed"] == [[1, 1], [1, 2]]
    assert "ETA" in err and "cells" in err  # asked for: progress on stderr, stdout stays one object
    assert [(c.threads, c.batch) for c in read_profile(out_file).cells] == [(1, 1), (1, 2), (1, 4)]


def test_profile_prints_a_table_of_cells_when_nothing_is_missing(capsys, tmp_path):
    out_file = str(tmp_path / "tiny.json")
    cells = '{"threads": 1, "batch": 1, "samples_ms": [1.0, 1.1, 0.9]}'
    from real_runner.topology import detect

    topo = detect()
    machine = json.dumps(topo.machine().to_json())
    with open(out_file, "w") as fh:
        fh.write('{"schema": "packrat.profile/1", "model": "tiny-mlp", "statistic": "median", '
                 f'"machine": {machine}, "cells": [{cells}], "meta": {{"runner.jit": "false"}}}}')
    code, out, err = run(capsys, "profile", "--model", "tiny-mlp", "--threads", "1", "--batches", "1", "--out", out_file)
    assert code == 0, err
    assert "measured 0 cell(s), kept 1 from the existing file" in out and "resumed" in out


def test_profile_refuses_to_resume_from_a_corrupted_partial_profile_and_keeps_it(capsys, tmp_path):
    out_file = tmp_path / "partial.json"
    out_file.write_text('{"schema": "packrat.profile/1", "cells": [')
    code, out, err = run(capsys, "profile", "--model", "tiny-mlp", "--threads", "1", "--out", str(out_file))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "cannot resume from" in err and "not a readable profile" in err and "Traceback" not in err
    assert out_file.read_text() == '{"schema": "packrat.profile/1", "cells": ['


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--model", "resnet51"], "unknown model 'resnet51'; known models: tiny-mlp, tiny-cnn, resnet50"),
        (["--model", "tiny-mlp", "--threads", str(len(ALLOWED) + 1)],
         f"threads {len(ALLOWED) + 1} is beyond the {len(ALLOWED)} CPUs this process may use"),
        (["--model", "tiny-mlp", "--batches", "0,1"], "--batches must be positive integers, got 0"),
        (["--model", "tiny-mlp", "--threads", "two"], "--threads must be a list like 1,2,4 or a range like 1-8"),
        (["--model", "tiny-mlp", "--repeats", "0"], "repeats must be an integer >= 1, got 0"),
        (["--from", "builtin:cnn-16", "--threads", "1"], "only apply to --model"),
    ],
)
def test_profile_bad_input_exits_2_with_one_line_naming_the_value(capsys, tmp_path, args, fragment):
    code, out, err = run(capsys, "profile", *args, "--out", str(tmp_path / "p.json"))
    assert code == 2 and out == ""
    assert fragment in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "p.json").exists()


def test_profile_model_writes_json_only_into_an_existing_directory(capsys, tmp_path):
    code, _, err = run(capsys, "profile", "--model", "tiny-mlp", "--out", str(tmp_path / "p.csv"))
    assert code == 2 and "--model writes a profile JSON" in err
    code, _, err = run(capsys, "profile", "--model", "tiny-mlp", "--out", str(tmp_path / "no" / "p.json"))
    assert code == 2 and "does not exist" in err


def test_ctrl_c_keeps_every_measured_cell_stops_the_worker_and_says_how_to_resume(tmp_path):
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    out_file = tmp_path / "cnn.json"
    root = Path(__file__).resolve().parents[3]
    proc = subprocess.Popen(
        [sys.executable, "-c", "from ui.cli.app import main; main()", "profile", "--model", "tiny-cnn",
         "--threads", "1", "--batches", "1,2,4,8,16,32,64,128,256,512", "--repeats", "50", "--out", str(out_file)],
        cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=str(root)),
    )
    deadline = time.monotonic() + 120
    while not out_file.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert out_file.exists(), proc.communicate()[1]
    children = [int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted; the cells measured so far are kept in" in err and "run the same command to resume" in err
    assert len(read_profile(str(out_file)).cells) >= 1
    deadline = time.monotonic() + 15  # the worker is stopped before exit; helpers follow their parent
    while not all(_gone(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert children and all(_gone(pid) for pid in children)


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return any(line.startswith("State:") and line.split()[1] in "ZX" for line in fh)
    except FileNotFoundError:
        return True
