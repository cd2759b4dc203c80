"""Sweeps against hostile output directories and inputs (issue 29, items 1, 2, 3 and 9): every
output file checked before any run, one sweep per directory, late write failures keep the
runs, exact integer seeds, resume keyed by the profile's content, counts of distinct rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from packrat_sim import sweep as sw
from packrat_sim.engines import SerialEngine
from packrat_sim.profile import builtin_profile, dumps_profile
from tests.disk_full_helpers import fill_disk

REPO = Path(__file__).resolve().parents[2]
AXES = ["profile=builtin:cnn-4", "cores=4", "workload=poisson:rate=100..200/100,duration=1s,max_batch=8", "policy=fat"]


def grid(*extra: str) -> sw.Grid:
    return sw.load_grid(None, [*AXES, *extra])


class NoRunEngine(SerialEngine):
    """Fails the test if a single run starts."""

    def map(self, fn, tasks, retries=1):
        raise AssertionError(f"{len(tasks)} runs started before the output was validated")


# ---- item 1: every output file follows the safe writer's rules, checked before any run


@pytest.mark.parametrize("name", ["results.csv", "results.parquet", "grid.json", "report.html"])
def test_a_symlink_in_place_of_any_output_file_is_refused_before_any_run(tmp_path, name):
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.csv"
    victim.write_text("")  # an empty file reads as an empty table: the old code appended to it
    os.symlink(victim, out / name)
    with pytest.raises(sw.SweepError, match="symbolic link"):
        sw.run_sweep(grid(), str(out), NoRunEngine())
    assert victim.read_text() == "" and os.path.islink(out / name)


@pytest.mark.parametrize("name, make, kind", [
    ("results.csv", os.mkfifo, "FIFO"),
    ("grid.json", os.mkfifo, "FIFO"),
    ("report.html", os.mkdir, "directory"),
    ("results.parquet", os.mkdir, "directory"),
])
def test_a_fifo_or_directory_in_place_of_an_output_file_is_refused_without_blocking(tmp_path, name, make, kind):
    make(tmp_path / name)
    errors: list[Exception] = []

    def sweep() -> None:
        try:
            sw.run_sweep(grid(), str(tmp_path), NoRunEngine())
        except sw.SweepError as exc:
            errors.append(exc)

    t = threading.Thread(target=sweep, daemon=True)
    t.start()
    t.join(20)
    assert not t.is_alive(), "the sweep blocked on the FIFO"
    assert len(errors) == 1 and kind in str(errors[0]) and name in str(errors[0])


def test_the_cli_refuses_a_linked_table_in_one_line_and_appends_nothing_outside(cli, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("")
    os.symlink(victim, out / "results.csv")
    code, stdout, err = cli("sweep", *(f"--axis={a}" for a in AXES), "--out", str(out), "--engine", "serial")
    assert code == 2 and stdout == "" and "Traceback" not in err
    assert "symbolic link" in err and len(err.strip().splitlines()) == 1
    assert victim.read_text() == ""


# ---- item 3: a write that fails after the runs keeps them; outputs validated before them


def test_a_full_disk_after_the_runs_keeps_every_row_and_names_each_file_not_written(tmp_path, monkeypatch):
    fill_disk(monkeypatch, tmp_path)
    result = sw.run_sweep(grid(), str(tmp_path), SerialEngine())
    assert len(result.rows) == 2 and all(r["status"] == "ok" for r in result.rows)
    assert result.files == ()
    text = " | ".join(result.errors)
    assert "results.csv" in text and "grid.json" in text and "no space left" in text
    assert not (tmp_path / "grid.json").exists()


def test_the_cli_on_a_full_disk_prints_the_summary_then_one_error_line_and_exits_2(cli, tmp_path, monkeypatch):
    fill_disk(monkeypatch, tmp_path)
    code, out, err = cli("sweep", *(f"--axis={a}" for a in AXES), "--out", str(tmp_path / "o"), "--engine", "serial")
    assert code == 2 and "Traceback" not in err
    assert "2 ran now" in out and "best policy per cell" in out and "wrote" not in out
    errors = [line for line in err.splitlines() if line.startswith("packrat: error:")]
    assert len(errors) == 1 and "results.csv" in errors[0] and "report.html" in errors[0]


def test_a_seed_beyond_64_bits_is_refused_before_any_run(cli, tmp_path):
    code, out, err = cli("sweep", *(f"--axis={a}" for a in AXES), f"--axis=seed={2**63}", "--out", str(tmp_path / "o"),
                         "--engine", "serial")
    assert code == 2 and out == "" and str(2**63) in err and "64-bit" in err
    assert not (tmp_path / "o" / "results.csv").exists()
    assert sw.load_grid(None, [*AXES, f"seed={2**63 - 1}"]).seeds == (2**63 - 1,)


# ---- item 2: one sweep at a time per directory


def test_a_second_sweep_into_a_busy_directory_is_refused_naming_the_first(cli, tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom packrat_sim import sweep\nwith sweep.sweep_lock(sys.argv[1]):\n"
                               "    print('held', flush=True)\n    time.sleep(60)\n", str(tmp_path)],
        cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        code, out, err = cli("sweep", *(f"--axis={a}" for a in AXES), "--out", str(tmp_path), "--engine", "serial")
        assert code == 2 and out == "" and f"pid {holder.pid}" in err and len(err.strip().splitlines()) == 1
        with pytest.raises(sw.SweepError, match=f"pid {holder.pid}"):
            sw.run_sweep(grid(), str(tmp_path), NoRunEngine())
    finally:
        holder.kill()
        holder.wait()
    result = sw.run_sweep(grid(), str(tmp_path), SerialEngine())  # free again once the holder is gone
    assert result.ran == 2 and len(sw.read_rows(str(tmp_path / "results.csv"))) == 2


# ---- item 9: exact seeds, resume by content, counts of distinct rows


def test_seeds_are_exact_integers_never_rounded_through_a_float(tmp_path):
    big = 2**53 + 1  # 9007199254740993: a float makes it ...992
    assert sw.load_grid(None, [*AXES, f"seed={big}"]).seeds == (big,)
    assert sw.load_grid(None, [*AXES, f"seed={big}..{big + 2}"]).seeds == (big, big + 1, big + 2)
    assert sw.make_grid({"profile": ["builtin:cnn-4"], "cores": [4], "workload": ["closed:batch=1,requests=4"],
                         "seed": [big, "5.0", "1e2"]}).seeds == (big, 5, 100)
    with pytest.raises(sw.SweepError, match="too large to be exact"):
        sw.make_grid({"profile": ["builtin:cnn-4"], "cores": [4], "workload": ["closed:batch=1,requests=4"],
                      "seed": [float(big)]})
    result = sw.run_sweep(sw.load_grid(None, [*AXES, f"seed={big - 1},{big}"]), str(tmp_path), SerialEngine())
    rows = sw.read_rows(str(tmp_path / "results.csv"))
    assert sorted({r["seed"] for r in rows}) == [big - 1, big] and result.ran == 4
    by_seed = {(r["workload"], r["seed"]): r["p99_ms"] for r in result.rows}
    assert any(by_seed[(w, big)] != by_seed[(w, big - 1)] for w, _ in by_seed)  # two seeds, two runs


def test_an_edited_profile_is_run_again_not_skipped_with_its_old_result(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(dumps_profile(builtin_profile("cnn-4")))
    g = sw.load_grid(None, [f"profile={path}", *AXES[1:]])
    out = tmp_path / "out"
    first = sw.run_sweep(g, str(out), SerialEngine())
    obj = json.loads(path.read_text())
    for cell in obj["cells"]:  # the same model, three times slower
        for key in ("min_ms", "median_ms", "mean_ms", "p90_ms", "max_ms"):
            cell[key] *= 3
        cell["samples_ms"] = [x * 3 for x in cell["samples_ms"]]
    path.write_text(json.dumps(obj))
    second = sw.run_sweep(g, str(out), SerialEngine())
    assert second.ran == 2 and second.skipped == 0
    assert all(b["p99_ms"] > a["p99_ms"] for a, b in zip(first.rows, second.rows))
    again = sw.run_sweep(g, str(out), SerialEngine())
    assert again.ran == 0 and again.skipped == 2 and again.rows == second.rows
    digests = {r["profile_digest"] for r in sw.read_rows(str(out / "results.csv"))}
    assert len(digests) == 2  # the old rows stay in the table, told apart by the digest


def test_a_ladder_whose_values_coincide_counts_one_run_for_one_row(tmp_path):
    g = sw.load_grid(None, ["profile=builtin:cnn-4", "cores=4", "workload=poisson:rate=1..1.0000000001/0.00000000001,duration=1s",
                            "policy=fat"])
    assert g.size() == 1
    result = sw.run_sweep(g, str(tmp_path), SerialEngine())
    assert result.ran == 1 and result.skipped == 0 and len(result.rows) == 1
    overlap = sw.load_grid(None, ["profile=builtin:cnn-4", "cores=4", "policy=fat",
                                  "workload=poisson:rate=1..3,duration=1s,poisson:rate=2..4,duration=1s"])
    assert overlap.size() == 4 == len(list(sw.expand(overlap)))


def test_the_cli_counts_distinct_rows(cli, tmp_path):
    code, out, err = cli("sweep", "--axis=profile=builtin:cnn-4", "--axis=cores=4", "--axis=policy=fat",
                         "--axis=workload=poisson:rate=1..1.0000000001/0.00000000001,duration=1s",
                         "--out", str(tmp_path), "--engine", "serial", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["runs"] == 1 and summary["ran"] == 1 and summary["skipped"] == 0
