"""`packrat simulate`: side-by-side output, JSON, files written with --out, and exit code 2 on bad input."""

from __future__ import annotations

import csv
import json

import pytest

from packrat_sim.profile import Cell, Profile, dumps_profile
from ui.cli.app import main

SMALL = ["--profile", "builtin:cnn-4", "--cores", "4", "--seed", "1"]
POISSON = "poisson:rate=100/s,duration=10s,max_batch=16"


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["simulate", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_simulate_prints_packrat_fat_and_thin_side_by_side(capsys):
    code, out, err = run(capsys, *SMALL, "--workload", POISSON)
    assert code == 0, err
    header = next(line for line in out.splitlines() if "packrat" in line and "fat" in line and "thin" in line)
    assert header.split() == ["packrat", "fat", "thin"]
    for label in (
        "request latency p50 ms", "request latency p90 ms", "request latency p99 ms", "request latency max ms",
        "batch latency p50 ms", "throughput req/s", "queueing delay mean ms", "core utilisation %", "reconfigurations",
    ):
        assert label in out
    assert "synthetic" in out.lower()


def test_simulate_json_is_one_object_with_the_three_results(capsys):
    code, out, err = run(capsys, *SMALL, "--workload", POISSON, "--json")
    assert code == 0, err
    obj = json.loads(out)
    assert [r["name"] for r in obj["results"]] == ["packrat", "fat", "thin"]
    assert obj["synthetic"] is True and obj["cores"] == 4 and obj["seed"] == 1
    for r in obj["results"]:
        stats = r["stats"]
        assert stats["requests"] > 0
        assert stats["request_latency"]["p99_ms"] >= stats["request_latency"]["p50_ms"] > 0
        assert 0 < stats["utilisation"] <= 1


def test_simulate_is_deterministic_for_a_seed(capsys):
    _, first, _ = run(capsys, *SMALL, "--workload", POISSON, "--json")
    _, second, _ = run(capsys, *SMALL, "--workload", POISSON, "--json")
    assert first == second


def test_simulate_out_writes_requests_timeline_and_history_per_plan(capsys, tmp_path):
    out_dir = tmp_path / "sim"
    code, out, err = run(capsys, *SMALL, "--workload", "steps:20/s@5s,400/s@5s,max_batch=16", "--out", str(out_dir))
    assert code == 0, err
    names = sorted(p.name for p in out_dir.iterdir())
    for plan in ("packrat", "fat", "thin"):
        assert f"{plan}-requests.csv" in names and f"{plan}-timeline.json" in names and f"{plan}-history.json" in names
    assert "summary.json" in names
    rows = list(csv.DictReader((out_dir / "fat-requests.csv").open()))
    summary = json.loads((out_dir / "summary.json").read_text())
    assert len(rows) == summary["results"][1]["stats"]["requests"]
    history = json.loads((out_dir / "packrat-history.json").read_text())
    assert history["schema"] == "packrat.history/1" and history["model"] == "serving"
    timeline = json.loads((out_dir / "packrat-timeline.json").read_text())
    assert timeline["events"][0]["event"] == "dispatch"


def test_simulate_replays_a_trace_file(capsys, tmp_path):
    trace = tmp_path / "arrivals.csv"
    trace.write_text("timestamp\n" + "\n".join(str(i * 0.01) for i in range(200)) + "\n")
    code, out, err = run(capsys, *SMALL, "--workload", f"trace:{trace},max_batch=8", "--json")
    assert code == 0, err
    assert all(r["stats"]["requests"] == 200 for r in json.loads(out)["results"])


def _profile_with_threads(tmp_path, threads: tuple[int, ...]) -> str:
    cells = tuple(Cell.from_samples(t, b, [10.0 * b / t]) for t in threads for b in (1, 2, 4))
    path = tmp_path / "small.json"
    path.write_text(dumps_profile(Profile(model="small", cells=cells)))
    return str(path)


@pytest.mark.parametrize(
    "workload, named",
    [
        ("poisson:rate=40/s", "needs duration"),
        ("poisson:rate=-40/s,duration=60s", "negative"),
        ("poisson:rate=40/s,duration=0s", "must be > 0"),
        ("gamma:shape=2", "must start with one of"),
        ("steps:8/s@20s,x", "RATE@DURATION"),
    ],
)
def test_a_bad_workload_exits_2_with_one_line_naming_it(capsys, workload, named):
    code, out, err = run(capsys, *SMALL, "--workload", workload)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("packrat: error:") and named in err
    assert "Traceback" not in err


def test_a_trace_file_with_unsorted_timestamps_exits_2(capsys, tmp_path):
    trace = tmp_path / "bad.csv"
    trace.write_text("0.1\n0.3\n0.2\n")
    code, _, err = run(capsys, *SMALL, "--workload", f"trace:{trace}")
    assert code == 2 and "line 3" in err and "not sorted" in err


def test_a_trace_file_with_negative_timestamps_or_missing_exits_2(capsys, tmp_path):
    trace = tmp_path / "neg.csv"
    trace.write_text("-1\n0\n")
    code, _, err = run(capsys, *SMALL, "--workload", f"trace:{trace}")
    assert code == 2 and "negative" in err
    code, _, err = run(capsys, *SMALL, "--workload", f"trace:{tmp_path / 'nope.csv'}")
    assert code == 2 and "does not exist" in err


def test_a_profile_lacking_every_cell_the_plans_need_exits_2(capsys, tmp_path):
    path = _profile_with_threads(tmp_path, (1, 2))
    code, out, err = run(capsys, "--profile", path, "--cores", "4", "--workload", "closed:batch=4,requests=8")
    assert code == 2 and out == ""
    assert err.startswith("packrat: error:") and "up to 2" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "args, named",
    [
        (["--profile", "builtin:cnn-4", "--cores", "0", "--workload", POISSON], "--cores"),
        (["--profile", "builtin:cnn-4", "--cores", "4", "--seed", "-3", "--workload", POISSON], "--seed"),
        (["--profile", "builtin:nope-4", "--cores", "4", "--workload", POISSON], "nope-4"),
        (["--profile", "/no/such/profile.json", "--cores", "4", "--workload", POISSON], "does not exist"),
    ],
)
def test_bad_options_exit_2_with_one_line(capsys, args, named):
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert named in err and err.count("\n") == 1


def test_out_pointing_at_a_file_exits_2(capsys, tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("x")
    code, _, err = run(capsys, *SMALL, "--workload", POISSON, "--out", str(target))
    assert code == 2 and "not a directory" in err


STEPS = "steps:20/s@10s,400/s@10s,20/s@20s,max_batch=16"


def test_simulate_explains_each_reconfiguration_why_gain_and_cost(capsys):
    # the policy retargets warm workers (tens of ms) on this step load
    code, out, err = run(capsys, *SMALL, "--workload", STEPS)
    assert code == 0, err
    lines = out.splitlines()
    switches = [k for k, line in enumerate(lines)
                if any(f"({kind}, switched after" in line for kind in ("re-route", "retarget", "respawn"))]
    assert switches
    for k in switches:
        assert lines[k + 1].strip().startswith("why: ")
        assert "predicted gain" in lines[k + 2] and "modelled cost" in lines[k + 2]


def test_simulate_policy_packrat_ewma_runs_the_papers_estimator_beside_fat_and_thin(capsys):
    code, out, err = run(capsys, *SMALL, "--workload", STEPS, "--policy", "packrat-ewma", "--json")
    assert code == 0, err
    obj = json.loads(out)
    assert [r["name"] for r in obj["results"]] == ["packrat-ewma", "fat", "thin"]
    assert all(rc["reason"] == "" for rc in obj["results"][0]["reconfigurations"])


def test_simulate_policy_options_reach_the_policy(capsys):
    _, default, _ = run(capsys, *SMALL, "--workload", STEPS, "--json")
    code, out, err = run(capsys, *SMALL, "--workload", STEPS, "--json", "--policy", "packrat:min_gain=0.5")
    assert code == 0, err
    assert json.loads(out)["results"][0] != json.loads(default)["results"][0]


@pytest.mark.parametrize("policy, named", [
    ("greedy", "unknown policy 'greedy'"),
    ("packrat:nope=1", "'nope=1'"),
    ("packrat:confirmations=0", "confirmations must be an integer >= 1"),
    ("fat", "fat and thin are always simulated"),
])
def test_a_bad_policy_exits_2_with_one_line_naming_it(capsys, policy, named):
    code, out, err = run(capsys, *SMALL, "--workload", POISSON, "--policy", policy)
    assert code == 2 and out == ""
    assert named in err and err.count("\n") == 1


def test_simulate_says_why_the_policy_kept_its_first_plan(capsys):
    # a policy that wants a 50% gain keeps its first plan on this step load
    code, out, err = run(capsys, *SMALL, "--workload", STEPS, "--policy", "packrat:min_gain=0.5")
    assert code == 0, err
    assert "no reconfiguration:" in out and "decisions (" in out
