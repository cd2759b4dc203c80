"""checker.visualize states why an operation cannot be linearized, in words, and lists the model
states along a linearization (the dashboard's linearization view and the HTML report use both)."""

from __future__ import annotations

from checker.history import History, Operation
from checker.linearizability import check
from checker.visualize import blocking_cause, render_html, state_rows


def W(c, v, call, ret):
    return Operation(c, {"op": "write", "value": v}, None, call, ret)


def R(c, v, call, ret):
    return Operation(c, {"op": "read"}, v, call, ret)


def _illegal(ops):
    h = History(ops, model="register")
    result = check(h)
    (part,) = result.partitions
    assert result.illegal
    return h, result, part


def test_a_read_of_a_value_never_written_is_named_as_such():
    h, _, part = _illegal([W(0, 1, 0, 10), R(1, 1, 12, 20), R(2, 3, 22, 30), W(0, 2, 25, 40)])
    why = blocking_cause(h, part, "register")
    assert why is not None and why.startswith("operation 2 (read() -> 3) returned a value never written")
    assert "(nil, 1, 2)" in why  # the states the other operations reach


def test_a_stale_read_names_the_state_it_needed_and_the_real_time_order():
    h, _, part = _illegal([W(0, 1, 0, 10), R(1, 1, 5, 15), W(0, 2, 20, 30), R(1, 1, 31, 40)])
    why = blocking_cause(h, part, "register")
    assert why is not None and "legal only in state 1" in why and "[31, 40]" in why and "stale" in why
    assert "never written" not in why


def test_a_linearizable_partition_has_no_cause():
    h = History([W(0, 1, 0, 10), R(1, 1, 12, 20)], model="register")
    assert blocking_cause(h, check(h).partitions[0], "register") is None


def test_the_search_for_reachable_states_is_bounded_and_says_so():
    writes = [W(0, v, 10 * v, 10 * v + 5) for v in range(1, 40)]
    h, _, part = _illegal([*writes, R(1, -1, 1000, 1001)])
    why = blocking_cause(h, part, "register", max_states=5)
    assert why is not None and "legal in none of the first 5 of the states" in why


def test_state_rows_replay_the_linearization_and_end_with_the_blocked_operation():
    h, _, part = _illegal([W(0, 1, 0, 10), R(1, 3, 12, 20)])
    rows = state_rows(h, part, "register")
    assert [(r["operation"], r["state before"], r["state after"]) for r in rows] == [
        ("write(1)", "nil", "1"), ("read() -> 3", "1", "cannot be linearized here")]
    h, _, part = _illegal([W(0, 1, 0, 10), R(1, 1, 12, 20), R(2, 3, 22, 30)])
    assert [r["#"] for r in state_rows(h, part, "register", order=[0])] == ["1"]  # a prefix: no blocked row


def test_the_html_report_states_the_cause():
    h, result, _ = _illegal([W(0, 1, 0, 10), R(1, 3, 12, 20)])
    assert "<b>Cause:</b> operation 1 (read() -&gt; 3) returned a value never written" in render_html(h, result)
