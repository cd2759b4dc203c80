"""`packrat run --batch` and `demo`'s real step watch the machine through the library
(``real_runner.conditions.watched``), not a probe of their own: with the library's probe
replaced by one that reports a busy machine, `run --json` carries that machine's
``conditions`` and its note, and `demo` prints the note line as before."""

from __future__ import annotations

import json

import pytest

from packrat_sim.plan import Instance, Plan, dumps_plan
from real_runner import conditions as conditions_mod
from real_runner.conditions import measurement_note
from tests.conditions_fakes import BUSY, probe_class



@pytest.fixture
def busy_machine(monkeypatch):
    """The library's probe reports BUSY; returns the log of its starts and stops."""
    events: list[str] = []

    monkeypatch.setattr(conditions_mod, "ConditionsProbe", probe_class(BUSY, events))
    return events


def test_run_batch_json_carries_the_conditions_and_the_busy_note_from_the_library_probe(cli, tmp_path, busy_machine):
    plan = tmp_path / "plan.json"
    plan.write_text(dumps_plan(Plan((Instance(1, 2),), 2, 1)))
    code, out, err = cli("run", "--model", "tiny-mlp", "--batch", "2", "--plan", str(plan), "--cores", "1",
                         "--iterations", "2", "--json")
    assert code == 0, err
    report = json.loads(out)
    note = measurement_note(BUSY, report["predicted_ms"], report["plan"]["median_ms"])
    assert report["conditions"] == dict(BUSY.to_json(), note=note)
    assert "the machine was busy (load average 9.0 on 2 CPUs" in report["conditions"]["note"]
    assert busy_machine == ["probe started", "probe stopped"]


def test_the_demo_real_step_prints_the_busy_note_of_the_library_probe(capsys, monkeypatch, busy_machine):
    import real_runner
    from packrat_sim import plan as plans
    from packrat_sim.profile import builtin_profile
    from real_runner import executor
    from ui.cli import demo

    def compare_with_fat(model, plan, iterations=10, *, cores=None, **kw):
        busy_machine.append("measured")

        def res(p, ms):
            return executor.RunResult(model=model, plan=p, cores=((0,),) * len(p.instances),
                                      stats=executor.Stats((ms, ms, ms)))
        return executor.Comparison(plan=res(plan, plan.predicted_ms), fat=res(plans.fat(plan.batch, plan.cores), 2 * plan.predicted_ms),
                                   max_abs_diff=0.0, outputs_match=True)

    monkeypatch.setattr(real_runner, "quick_profile", lambda model, batch, cores, **kw: builtin_profile("cnn-4", max_batch=batch))
    monkeypatch.setattr(real_runner, "compare_with_fat", compare_with_fat)
    assert demo.step_real_run() == "ok"
    out = capsys.readouterr().out
    assert busy_machine == ["probe started", "measured", "probe stopped"]
    assert f"   note: {measurement_note(BUSY)}\n" in out  # measured as predicted: the busy line alone
