"""The shared engine options: engines by name, the exploration split and file checks on an engine."""

from __future__ import annotations

import json

import pytest

from packrat_sim.engines import LocalEngine, SerialEngine
from ui.cli.common import BadInput
from ui.cli.check import judge_files_on_engine
from ui.cli.engine import make_engine, run_explore_split


def test_engines_are_made_by_name_and_bad_choices_name_the_value():
    assert isinstance(make_engine("serial", None, None), SerialEngine)
    engine = make_engine("local", 2, None)
    assert isinstance(engine, LocalEngine) and engine.workers == 2
    engine.close()
    for args, message in ((("warp", None, None), "--engine must be one of"), (("local", 0, None), "--workers"),
                          (("local", None, "auto"), "--ray-address needs --engine ray")):
        with pytest.raises(BadInput, match=message):
            make_engine(*args)


def test_the_split_exploration_gives_the_single_process_verdict_and_histories():
    from checker.explore import explore

    params = {"replicas": 3, "reads": 1}
    single = explore("register", "dfs", variant="majority", params=params, collect_histories=True)
    protocol, result = run_explore_split("register", "majority", "dfs", params, engine="local", workers=2,
                                         max_schedules=None, max_time=None, seed=0, depth=None, bug_depth=3,
                                         shrink=True)
    assert protocol.name == "register" and result.verdict == single.verdict
    assert result.histories == single.histories


def test_a_split_exploration_with_a_bad_request_is_bad_input():
    with pytest.raises(BadInput, match="no global schedule budget"):
        run_explore_split("register", "majority", "dfs", {}, engine="serial", max_schedules=5, max_time=None,
                          seed=0, depth=None, bug_depth=3, shrink=True)


def test_files_are_judged_from_their_text_on_an_engine_and_keep_their_names(tmp_path):
    from ui.cli.check import CheckOptions, FileVerdict

    ok = {"schema": "packrat.history/1", "model": "register", "operations": [
        {"client": 0, "input": {"op": "write", "value": 1}, "output": None, "call": 0, "ret": 1},
        {"client": 1, "input": {"op": "read"}, "output": 1, "call": 2, "ret": 3}]}
    bad = json.loads(json.dumps(ok))
    bad["operations"][1]["output"] = 2
    (tmp_path / "ok.json").write_text(json.dumps(ok))
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    got = {}
    todo = [(0, str(tmp_path / "ok.json")), (1, str(tmp_path / "bad.json")), (2, str(tmp_path / "missing.json"))]
    with LocalEngine(2) as engine:
        judge_files_on_engine(todo, CheckOptions(), engine, got.__setitem__,
                              lambda path, why: FileVerdict(path, "error", 0.0, f"ERROR {path}: {why}", {}))
    assert [got[i].result for i in range(3)] == ["ok", "illegal", "error"]
    assert got[0].path == todo[0][1] and todo[0][1] in got[0].line and got[1].obj["history"] == todo[1][1]
