"""Verification page (AppTest): history upload and verdict, linearization chart; explorer status."""

from __future__ import annotations

import json

import pytest

GOOD = [
    {"client": 0, "input": {"op": "write", "value": 1}, "output": None, "call": 0, "ret": 10},
    {"client": 1, "input": {"op": "read"}, "output": 1, "call": 5, "ret": 15},
    {"client": 0, "input": {"op": "write", "value": 2}, "output": None, "call": 20, "ret": 30},
    {"client": 1, "input": {"op": "read"}, "output": 2, "call": 31, "ret": 40},
]
STALE = GOOD[:3] + [{"client": 1, "input": {"op": "read"}, "output": 1, "call": 31, "ret": 40}]


@pytest.fixture
def explorer(open_page):
    """The Verification page on its Schedule explorer section (the first one)."""
    return open_page("verification")


def test_a_linearizable_history_gets_ok_and_its_linearization_drawn(verify, h):
    at = verify
    at.file_uploader(key="verify.up.history").upload("good.json", h.history(GOOD), "application/json").run()
    at.button(key="verify.btn.check").click().run()
    h.no_errors(at)
    ok = [s.value for s in at.success if s.value.startswith("LINEARIZABLE")]
    assert ok and "good.json: 4 operations" in ok[0] and "model register" in ok[0]
    fig = h.chart(at, "verify.history_chart")
    assert [d["name"] for d in fig["data"]] == ["linearized", "linearization point"]
    bars = fig["data"][0]
    assert bars["text"] == ["[1] write(1)", "[2] read() -> 1", "[3] write(2)", "[4] read() -> 2"]
    assert bars["base"] == [0, 5, 20, 31] and bars["y"] == ["0", "1", "0", "1"]
    assert "OK: the history is linearizable" in h.texts(at)


def test_a_stale_read_is_not_linearizable_and_the_blocked_operation_is_marked(verify, h):
    at = verify
    at.file_uploader(key="verify.up.history").upload("stale.json", h.history(STALE), "application/json").run()
    at.button(key="verify.btn.check").click().run()
    assert not at.exception
    assert any(e.value.startswith("NOT LINEARIZABLE: stale.json") for e in at.error)
    fig = h.chart(at, "verify.history_chart")
    roles = {d["name"]: d for d in fig["data"]}
    assert roles["blocked"]["base"] == [31]
    assert "cannot be linearized" in h.texts(at)


def test_a_jepsen_log_is_read_with_the_cas_register_model(verify, h):
    log = "\n".join([
        "INFO  jepsen.util - 0\t:invoke\t:write\t1",
        "INFO  jepsen.util - 0\t:ok\t:write\t1",
        "INFO  jepsen.util - 1\t:invoke\t:read\tnil",
        "INFO  jepsen.util - 1\t:ok\t:read\t1",
        "INFO  jepsen.util - 2\t:invoke\t:cas\t[1 3]",
        "INFO  jepsen.util - 2\t:ok\t:cas\t[1 3]",
        "INFO  jepsen.util - 1\t:invoke\t:read\tnil",
        "INFO  jepsen.util - 1\t:ok\t:read\t3",
    ]) + "\n"
    at = verify
    at.file_uploader(key="verify.up.history").upload("run.log", log.encode(), "text/plain").run()
    at.button(key="verify.btn.check").click().run()
    h.no_errors(at)
    ok = [s.value for s in at.success if s.value.startswith("LINEARIZABLE")]
    assert ok and "model cas-register" in ok[0] and "4 operations" in ok[0]


def test_a_bad_upload_shows_an_error_and_the_page_keeps_working(verify, h):
    at = verify
    at.file_uploader(key="verify.up.history").upload("junk.json", b"{not json", "application/json").run()
    at.button(key="verify.btn.check").click().run()
    assert not at.exception
    assert any(e.value.startswith("Cannot check junk.json") for e in at.error)
    at.file_uploader(key="verify.up.history").set_value(("good.json", h.history(GOOD), "application/json")).run()
    at.button(key="verify.btn.check").click().run()
    h.no_errors(at)
    assert any(s.value.startswith("LINEARIZABLE") for s in at.success)


def test_the_model_can_be_chosen_when_the_history_names_none(verify, h):
    at = verify
    doc = {"schema": "packrat.history/1", "operations": GOOD}
    at.file_uploader(key="verify.up.history").upload("nomodel.json", json.dumps(doc).encode(), "application/json").run()
    at.button(key="verify.btn.check").click().run()
    assert any("names no model" in e.value for e in at.error)
    at.selectbox(key="verify.model").set_value("register").run()
    at.button(key="verify.btn.check").click().run()
    h.no_errors(at)
    assert any(s.value.startswith("LINEARIZABLE") for s in at.success)


def test_the_explorer_finds_the_switch_before_ready_bug_and_draws_it(explorer, h):
    from checker.explore import explore

    at = explorer
    at.selectbox(key="explore.variant").set_value("switch-before-ready").run()
    at.button(key="explore.btn.run").click().run()
    assert not at.exception
    ref = explore("reconfig", "dpor", variant="switch-before-ready", max_schedules=2000, max_time=30.0)
    assert ref.violated
    errors = [e.value for e in at.error if e.value.startswith("VIOLATION")]
    assert errors and f"at schedule {ref.first_violation_at}" in errors[0] and ref.reason in errors[0]
    m = h.metrics(at)
    assert m["Schedules"] == str(ref.schedules) and m["States"] == str(ref.states)
    assert m["Distinct histories"] == str(ref.distinct_histories)
    msc = h.chart(at, "explore.msc")
    arrows = msc["layout"]["annotations"]
    assert len(arrows) == len(ref.violation.schedule)
    labels = msc["data"][-1]["text"]
    assert labels[0].startswith("1. ") and labels[-1].startswith(f"{len(ref.violation.schedule)}. ")
    assert ref.violation.explanation[0] in h.texts(at)
    assert "explore.dl.replay" in [b.key for b in at.get("download_button")]


def test_the_explorer_says_ok_for_the_correct_protocol(explorer, h):
    at = explorer
    at.selectbox(key="explore.variant").set_value("correct").run()
    at.selectbox(key="explore.strategy").set_value("dfs").run()
    at.button(key="explore.btn.run").click().run()
    h.no_errors(at)
    assert any(s.value.startswith("OK: every schedule is correct") for s in at.success)
