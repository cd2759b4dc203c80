"""Simulator page (AppTest): the one load grammar (issue 31 item 2): a stepped closed loop in
the editor, and a deprecated spelling shown as a warning naming the new one."""

from __future__ import annotations


def test_the_editor_builds_a_stepped_closed_loop_the_cli_reads_the_same_way(open_page, h):
    at = open_page("simulator")
    at.radio(key="sim.kind").set_value("closed_steps").run()
    at.text_input(key="sim.c_steps").set_value("4@2s,16@2s").run()
    at.number_input(key="sim.c_clients").set_value(2).run()
    h.no_errors(at)
    texts = h.texts(at)
    assert "`closed:4@2s,16@2s,clients=2`" in texts
    assert "closed loop: 2 client(s), batches of 4 for 2 s, batches of 16 for 2 s" in texts


def test_a_bare_step_rate_shows_a_deprecation_naming_the_spelling_with_units(open_page, h):
    at = open_page("simulator")
    at.text_input(key="sim.steps").set_value("100@2s,600@2s").run()
    h.no_errors(at)
    warnings = [w.value for w in at.warning]
    assert any("Deprecated spelling" in w and "steps:100/s@2s,600/s@2s" in w for w in warnings), warnings


def test_the_old_closed_loop_spelling_typed_as_a_spec_is_read_with_a_deprecation(open_page, h):
    at = open_page("simulator")
    at.radio(key="sim.kind").set_value("spec").run()
    at.text_input(key="sim.spec").set_value("8:2s,32:2s").run()
    h.no_errors(at)
    assert any("closed:8@2s,32@2s" in w.value for w in at.warning)
    assert "closed loop: 1 client(s), batches of 8 for 2 s, batches of 32 for 2 s" in h.texts(at)


def test_the_sweep_page_shows_a_deprecated_workload_spelling_naming_the_new_one(open_page, h):
    at = open_page("sweep")
    at.text_input(key="sweep.workload").set_value("steps:50@1s,200@1s").run()
    h.no_errors(at)
    assert any("steps:50/s@1s,200/s@1s" in w.value for w in at.warning), [w.value for w in at.warning]
