"""The HTML explanation: self-contained, shows every client's operations and the evidence."""

from __future__ import annotations

import re

from checker.history import History, Operation
from checker.linearizability import check
from checker.visualize import render_html, write_html


def W(c, v, call, ret):
    return Operation(c, {"op": "write", "value": v}, None, call, ret)


def R(c, v, call, ret):
    return Operation(c, {"op": "read"}, v, call, ret)


def _assert_self_contained(page: str) -> None:
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, re.I)
    assert not re.search(r"<link\b", page, re.I)
    assert not re.search(r"@import|url\(", page, re.I)


def test_the_page_is_self_contained_and_draws_every_clients_operations():
    h = History([W(0, 1, 0, 10), R(1, 1, 5, 15), W("ctl", 2, 20, None), R(2, None, 2, 3)], model="register")
    result = check(h)
    page = render_html(h, result, "register")
    _assert_self_contained(page)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    for client in ("client 0", "client 1", "client ctl", "client 2"):
        assert client in page
    for description in ("write(1)", "read() -&gt; 1", "write(2)", "read() -&gt; nil"):
        assert description in page
    assert "OK" in page and "Linearization" in page


def test_an_illegal_page_marks_the_operation_that_cannot_be_linearized_and_the_states():
    h = History([W(0, 1, 0, 1), W(1, 2, 2, 3), R(2, 1, 4, 5)])
    page = render_html(h, check(h, "register"), "register")
    _assert_self_contained(page)
    assert "ILLEGAL" in page
    assert "class='op blocked'" in page
    assert "cannot be linearized here" in page
    assert "longest linearizable prefix" in page
    # States before and after each step of the prefix: nil -> 1, then 1 -> 2.
    assert re.search(r"<td>write\(1\)</td><td>nil</td><td>1</td>", page)
    assert re.search(r"<td>write\(2\)</td><td>1</td><td>2</td>", page)


def test_partitions_are_listed_with_their_verdicts():
    ops = [Operation(0, {"op": "put", "key": "a", "value": "x"}, None, 0, 1),
           Operation(0, {"op": "get", "key": "a"}, "", 2, 3),
           Operation(1, {"op": "put", "key": "b", "value": "y"}, None, 0, 1)]
    h = History(ops)
    page = render_html(h, check(h, "kv", all_partitions=True), "kv")
    assert "Partition &#x27;a&#x27;" in page and "Partition &#x27;b&#x27;" in page
    assert "<td>illegal (failed first)</td>" in page and "<td>ok</td>" in page


def test_the_page_says_which_partition_failed_first_and_which_were_not_needed():
    ops = [Operation(0, {"op": "put", "key": "a", "value": "x"}, None, 0, 1),
           Operation(0, {"op": "get", "key": "a"}, "", 2, 3),
           Operation(1, {"op": "put", "key": "b", "value": "y"}, None, 0, 1),
           Operation(1, {"op": "get", "key": "b"}, "y", 2, 3)]
    h = History(ops)
    result = check(h, "kv")
    page = render_html(h, result, "kv")
    assert "Partition <b>&#x27;a&#x27;</b> failed first" in page
    assert "1 partition not needed" in page
    assert "<td>not needed</td>" in page and "<td>illegal (failed first)</td>" in page
    assert "Partition &#x27;b&#x27; <span" not in page  # no detail section for an undecided partition


def test_values_are_escaped():
    h = History([Operation(0, {"op": "put", "key": "<k>", "value": "<script>alert(1)</script>"}, None, 0, 1)])
    page = render_html(h, check(h, "kv"), "kv")
    assert "<script>" not in page
    assert "&lt;script&gt;" in page


def test_a_large_history_is_cut_around_the_failure(tmp_path):
    ops = []
    for k in range(3000):
        ops.append(W(0, k, 4 * k, 4 * k + 1))
        ops.append(R(1, k if k != 2500 else -1, 4 * k + 2, 4 * k + 3))
    h = History(ops)
    result = check(h, "register")
    assert result.illegal
    path = write_html(tmp_path / "big.html", h, result, "register", max_operations=200)
    page = path.read_text()
    _assert_self_contained(page)
    assert "Showing 200 of 6000 operations" in page and "around the first failure" in page
    assert "read() -&gt; -1" in page
    assert page.count("<rect") <= 200
