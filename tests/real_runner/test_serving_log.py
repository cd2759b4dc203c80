"""The serving runtime's bounded memory (issue 29, item 15): the spool of answered batches
and the window of recent batches taken."""

from __future__ import annotations

import os

import pytest

from real_runner import serving_log
from real_runner.serving_log import RecentWindow, RowSpool


def test_a_spool_reads_back_every_row_in_the_order_it_was_appended(tmp_path):
    spool = RowSpool(str(tmp_path))
    rows = [[i, "reconfigurer" if i % 3 else i, 2, 10 * i, None if i % 5 == 0 else 10 * i + 7, "ab\ncd"]
            for i in range(1000)]
    for row in rows:
        spool.append(row)
    assert len(spool) == 1000
    assert list(spool.rows()) == rows
    assert list(spool.rows(3)) == rows[:3]


def test_a_spool_reads_rows_that_span_read_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(serving_log, "READ_CHUNK", 7)
    spool = RowSpool(str(tmp_path))
    rows = [[i, "x" * (i % 11)] for i in range(200)]
    for row in rows:
        spool.append(row)
    assert list(spool.rows()) == rows


def test_a_spool_being_read_takes_appends_and_yields_only_the_rows_before_the_read(tmp_path):
    spool = RowSpool(str(tmp_path))
    spool.append([1])
    reading = spool.rows()
    spool.append([2])
    assert list(reading) == [[1]]
    assert list(spool.rows()) == [[1], [2]]


def test_a_spool_leaves_no_file_behind_even_while_it_is_written(tmp_path):
    spool = RowSpool(str(tmp_path))
    spool.append([1, "a"])
    assert os.listdir(tmp_path) == []  # created unlinked: a killed process leaves nothing
    spool.close()
    with pytest.raises(ValueError):
        list(spool.rows())


def test_a_spool_refuses_a_row_json_cannot_hold_and_keeps_no_part_of_it(tmp_path):
    spool = RowSpool(str(tmp_path))
    with pytest.raises(ValueError):
        spool.append([float("nan")])
    assert len(spool) == 0 and list(spool.rows()) == []


def test_a_recent_window_keeps_the_last_items_indexed_from_the_first_ever_appended():
    window = RecentWindow(keep=3)
    for i in range(10):
        window.append(i)
    assert len(window) == 10 and window.kept == 3
    assert window[8:] == [8, 9] and window[10:] == []
    assert window[0:] == [7, 8, 9]  # older ones are gone: from the oldest kept


def test_a_recent_window_is_read_only_from_a_position_on():
    window = RecentWindow(keep=2)
    with pytest.raises(TypeError):
        window[1]  # noqa: B018
    with pytest.raises(ValueError):
        RecentWindow(keep=0)
