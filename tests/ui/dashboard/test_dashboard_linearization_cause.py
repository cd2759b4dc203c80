"""Issue 30 item 9: the linearization view states the cause in words and lists the model states
along the linearization (both from checker.visualize, which the HTML report uses too)."""

from __future__ import annotations

NEVER_WRITTEN = [
    {"client": 0, "input": {"op": "write", "value": 1}, "output": None, "call": 0, "ret": 10},
    {"client": 1, "input": {"op": "read"}, "output": 1, "call": 12, "ret": 20},
    {"client": 2, "input": {"op": "read"}, "output": 3, "call": 22, "ret": 30},
    {"client": 0, "input": {"op": "write", "value": 2}, "output": None, "call": 25, "ret": 40},
]


def test_an_illegal_history_is_explained_in_words_and_its_model_states_are_listed(verify, h):
    at = verify
    at.file_uploader(key="verify.up.history").upload("ghost.json", h.history(NEVER_WRITTEN), "application/json").run()
    at.button(key="verify.btn.check").click().run()
    assert not at.exception, [e.message for e in at.exception]
    cause = [m.value for m in at.markdown if m.value.startswith("**Cause:**")]
    assert len(cause) == 1 and "returned a value never written" in cause[0], cause
    assert "read\\(\\) \\-\\> 3" in cause[0]  # the operation, escaped so Markdown shows it as written
    states = h.frame(at, "state after")
    assert list(states["operation"]) == ["write(1)", "read() -> 1", "write(2)", "read() -> 3"]
    assert list(states["state before"]) == ["nil", "1", "1", "2"]
    assert list(states["state after"]) == ["1", "1", "2", "cannot be linearized here"]


def test_a_shorter_prefix_lists_only_its_states(verify, h):
    at = verify
    at.file_uploader(key="verify.up.history").upload("ghost.json", h.history(NEVER_WRITTEN), "application/json").run()
    at.button(key="verify.btn.check").click().run()
    at.slider(key="verify.prefix").set_value(2).run()
    assert not at.exception, [e.message for e in at.exception]
    states = h.frame(at, "state after")
    assert list(states["operation"]) == ["write(1)", "read() -> 1"]
