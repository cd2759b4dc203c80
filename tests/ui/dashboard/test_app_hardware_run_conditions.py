"""Hardware page (AppTest): the run of a plan beside fat records what the machine was doing
(``jobs.hardware_steps`` measures through ``real_runner.conditions.watched``), and a run on a
busy machine is NOT TRUSTED, the library's busy-machine note among the reasons, as
`packrat run` says it. The measurement and the probe are faked; the page's job is the real one."""

from __future__ import annotations

import os

import pytest

from real_runner.conditions import Conditions, conditions_report
from tests.conditions_fakes import BUSY, QUIET, probe_class

needs_two_cpus = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 usable CPUs")


@pytest.fixture
def run_under(monkeypatch):
    """Factory: the Hardware run measured under the given conditions, plan and fat each measuring
    what the profile predicts for them (a plausible measurement: only the machine can be wrong)."""
    monkeypatch.setenv("PACKRAT_UI_JOBS", "thread")  # the fakes live in this process only
    from packrat_sim import plan as plans
    from packrat_sim.predictor import Predictor
    from packrat_sim.profile import Cell, Profile
    from real_runner import conditions, executor, profiling

    cells = tuple(Cell.from_samples(t, b, [b * 4.0 / t + 2.0 * t]) for t in (1, 2) for b in (1, 2, 4))
    prof = Profile(model="tiny-mlp", cells=cells, source="fake measurement", meta=(("runner.seed", "0"),))
    monkeypatch.setattr(profiling, "quick_profile", lambda *a, **k: prof)

    def compare_with_fat(model, plan, iterations=10, *, cores=None, **kw):
        fat = plans.fat(plan.batch, plan.cores)

        def res(p, ms):
            return executor.RunResult(model=model, plan=p, cores=((0,),) * len(p.instances),
                                      stats=executor.Stats((ms, ms * 1.01, ms * 0.99)))
        return executor.Comparison(plan=res(plan, plan.predicted_ms), fat=res(fat, Predictor(prof).plan_ms(fat)),
                                   max_abs_diff=0.0, outputs_match=True)

    monkeypatch.setattr(executor, "compare_with_fat", compare_with_fat)

    def under(seen: Conditions) -> None:
        monkeypatch.setattr(conditions, "ConditionsProbe", probe_class(seen, []))

    return under


def _run(at):
    at.selectbox(key="hw.model").set_value("tiny-mlp")
    at.number_input(key="hw.batch").set_value(4)
    at.number_input(key="hw.cores").set_value(2)
    at.checkbox(key="hw.thin").uncheck()
    at.button(key="hw.btn.run").click().run()
    return at


@needs_two_cpus
def test_a_run_on_a_busy_machine_is_not_trusted_and_says_the_machine_was_busy(open_page, h, run_under):
    run_under(BUSY)
    at = _run(open_page("hardware"))
    h.no_errors(at)
    assert not [s.value for s in at.success]
    verdicts = [w.value for w in at.warning if "Measured speedup of the plan over fat" in w.value]
    assert len(verdicts) == 1 and "NOT TRUSTED" in verdicts[0]
    assert "the machine was busy (load average 9.0 on 2 CPUs, 300 ms/s waiting for a CPU)" in verdicts[0]
    assert conditions_report(BUSY)["note"] in verdicts[0]  # the library's words, as `packrat run` prints them


@needs_two_cpus
def test_the_same_run_on_a_quiet_machine_is_a_success(open_page, h, run_under):
    run_under(QUIET)
    at = _run(open_page("hardware"))
    h.no_errors(at)
    assert not at.warning
    assert [s.value for s in at.success if s.value.startswith("Measured speedup of the plan over fat")]


def test_the_verdict_quotes_the_busy_note_and_ignores_quiet_or_missing_conditions():
    from ui.dashboard.data import busy_note, run_verdict

    run = {"speedup": 1.5, "outputs_match": True, "max_abs_diff": 0.0}
    busy = dict(run, conditions=conditions_report(BUSY))
    assert busy_note(busy) == [f"{conditions_report(BUSY)['note']}."]
    level, text = run_verdict(busy, [])
    assert level == "warning" and "NOT TRUSTED" in text and conditions_report(BUSY)["note"] in text
    assert run_verdict(dict(run, conditions=conditions_report(QUIET)), [])[0] == "success"
    assert run_verdict(run, [])[0] == "success"  # a result kept before runs recorded their conditions
    far_but_quiet = dict(run, conditions=conditions_report(QUIET, 1.0, 9.0))  # measurement_warnings' own call
    assert busy_note(far_but_quiet) == []
