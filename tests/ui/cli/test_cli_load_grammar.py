"""One load grammar on the command line (issue 31 item 2): simulate, run --load and sweep take
the same specs, and an old spelling prints one `packrat: deprecated:` line naming the new one."""

from __future__ import annotations

import json


def test_simulate_takes_a_stepped_closed_loop_and_the_packrat_policy_adapts_to_it(cli):
    code, out, err = cli("simulate", "--profile", "builtin:cnn-8", "--cores", "8",
                         "--workload", "closed:2@5s,32@5s,2@5s", "--json")
    assert code == 0, err
    res = {r["name"]: r for r in json.loads(out)["results"]}
    assert res["packrat"]["closed_loop"] and len(res["packrat"]["reconfigurations"]) == 2
    assert "deprecated" not in err


def test_the_old_closed_loop_spelling_prints_one_deprecation_line_and_simulates_the_same(cli):
    code, out, err = cli("simulate", "--profile", "builtin:cnn-8", "--cores", "8", "--workload", "8:1s,32:1s", "--json")
    assert code == 0
    lines = [line for line in err.splitlines() if line.startswith("packrat: deprecated:")]
    assert len(lines) == 1 and "write 'closed:8@1s,32@1s'" in lines[0]
    code2, out2, _ = cli("simulate", "--profile", "builtin:cnn-8", "--cores", "8", "--workload", "closed:8@1s,32@1s", "--json")
    assert code2 == 0 and json.loads(out)["results"] == json.loads(out2)["results"]


def test_a_bare_step_rate_prints_a_deprecation_naming_the_spelling_with_units(cli):
    code, _, err = cli("simulate", "--profile", "builtin:cnn-8", "--cores", "8", "--workload", "steps:20@1s")
    assert code == 0 and "packrat: deprecated: steps: a step's rate needs its unit: write steps:20/s@1s" in err


def test_a_rate_in_a_closed_loop_is_one_error_line_pointing_at_the_open_loop_spelling(cli):
    code, _, err = cli("simulate", "--profile", "builtin:cnn-8", "--cores", "8", "--workload", "closed:8/s@2s")
    assert code == 2 and "for an open loop at that rate write steps:8/s@2s" in err


def test_run_load_help_names_the_two_spellings_and_the_shared_grammar(cli):
    code, out, _ = cli("run", "--help")
    text = " ".join(out.split())
    assert code == 0 and "closed:8@20s,32@20s" in text and "steps:8/s@20s,32/s@20s" in text
    assert "B:DURATION" not in text


def test_a_sweep_simulates_a_stepped_closed_loop_workload(cli, tmp_path):
    code, out, err = cli("sweep", "--axis", "profile=builtin:cnn-8", "--axis", "cores=8",
                         "--axis", "workload=closed:2@2s,32@2s", "--axis", "policy=packrat", "--engine", "serial",
                         "--out", str(tmp_path / "sw"), "--json")
    assert code == 0, err
    assert json.loads(out)["ran"] == 1


def test_simulate_takes_the_reconfiguration_models_start_up_and_warm_up(cli, monkeypatch):
    from packrat_sim import simulator

    seen = []
    real = simulator.compare_plans
    monkeypatch.setattr(simulator, "compare_plans", lambda *a, **k: seen.append(k["config"]) or real(*a, **k))
    argv = ("simulate", "--profile", "builtin:cnn-8", "--cores", "8", "--workload", "steps:100/s@1s", "--json")
    assert cli(*argv, "--start-ms", "0", "--warmup", "0")[0] == 0
    assert cli(*argv)[0] == 0
    assert (seen[0].start_ms, seen[0].warmup_iterations) == (0.0, 0)
    default = simulator.SimConfig()
    assert (seen[1].start_ms, seen[1].warmup_iterations) == (default.start_ms, default.warmup_iterations)
    assert cli(*argv, "--warmup", "-1")[0] == 2
