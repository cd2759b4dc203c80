"""The one progress renderer: silent unless enabled; plain readable lines off a terminal
(description, counts, bar, elapsed, ETA, text); a total that grows; counts without a total."""

from __future__ import annotations

import io

import pytest

from packrat_sim.progress import ProgressBar, format_count, format_duration, linear_eta_s


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


@pytest.mark.parametrize("stream_type", [io.StringIO, FakeTerminal])
def test_a_disabled_bar_prints_nothing(stream_type):
    stream = stream_type()
    with ProgressBar("sweep:", 10, enabled=False, stream=stream, unit="runs") as bar:
        bar.update(completed=3, text="(1 failed)")
        bar.advance(2)
    assert stream.getvalue() == ""


def test_an_enabled_bar_off_a_terminal_writes_plain_lines_with_counts_bar_and_eta():
    stream = io.StringIO()
    with ProgressBar("sweep:", 4, enabled=True, stream=stream, unit="runs", external_eta=True) as bar:
        bar.update(completed=0, eta_s=None)
        bar.update(completed=1, text="(1 failed)", eta_s=41.0)
    first, second = lines(stream)
    assert first.startswith("sweep: 0/4 runs [------------------------]") and "ETA ?" in first
    assert second.startswith("sweep: 1/4 runs [######------------------]")
    assert "elapsed, ETA 41s" in second and second.endswith("(1 failed)")
    assert "\x1b" not in stream.getvalue() and "\r" not in stream.getvalue()  # no colour or cursor codes


def test_the_total_may_grow_and_the_bar_follows_it():
    stream = io.StringIO()
    with ProgressBar("job", 2, enabled=True, stream=stream, unit="steps") as bar:
        bar.advance()
        bar.update(total=8, text="found more work")
    assert "job 1/2 steps [############------------]" in lines(stream)[0]
    assert "job 1/8 steps [###---------------------]" in lines(stream)[1]


def test_without_a_total_it_counts_and_shows_elapsed_time_only():
    stream = io.StringIO()
    with ProgressBar("exploring:", None, enabled=True, stream=stream, unit="schedules") as bar:
        bar.update(completed=1234, text="(5 states)")
    (line,) = lines(stream)
    assert line.startswith("exploring: 1,234 schedules ") and line.endswith("elapsed (5 states)")
    assert "ETA" not in line and "[" not in line


def test_quick_updates_are_logged_at_most_every_interval_and_the_last_state_on_close():
    stream = io.StringIO()
    with ProgressBar("sweep:", 100, enabled=True, stream=stream, unit="runs", log_interval_s=3600) as bar:
        for done in range(100):
            bar.update(completed=done)
        bar.update(completed=99)  # the same state again: never logged twice
    got = lines(stream)
    assert len(got) == 2 and got[0].startswith("sweep: 0/100 runs") and got[1].startswith("sweep: 99/100 runs")


def test_a_completed_job_and_a_new_text_are_logged_at_once():
    stream = io.StringIO()
    with ProgressBar("p", 3, enabled=True, stream=stream, log_interval_s=3600) as bar:
        bar.update(completed=1, text="a")
        bar.update(completed=2, text="b")
        bar.update(completed=3, text="b")
    assert [line.split()[-1] for line in lines(stream)] == ["a", "b", "b"]
    assert lines(stream)[-1].startswith("p [########################]")


def test_a_bar_never_reported_to_prints_nothing_even_when_enabled():
    for stream in (io.StringIO(), FakeTerminal()):
        with ProgressBar("exploring:", None, enabled=True, stream=stream, unit="schedules"):
            pass
        assert stream.getvalue() == ""


def test_on_a_terminal_the_line_is_drawn_live_and_left_on_screen():
    stream = FakeTerminal()
    with ProgressBar("sweep:", 2, enabled=True, stream=stream, unit="runs") as bar:
        bar.update(completed=2)
    out = stream.getvalue()
    assert "sweep: 2/2 runs" in out and "ETA 0s" in out
    assert out.replace("\x1b[?25h", "").endswith("\n")  # the line stays; the cursor comes back


def test_text_is_shown_verbatim_not_as_markup():
    stream = io.StringIO()
    with ProgressBar("[bold]x[/]", 1, enabled=True, stream=stream) as bar:
        bar.update(completed=1, text="[1, 2] [/nope]")
    assert lines(stream)[0].startswith("[bold]x[/] [") and lines(stream)[0].endswith("[1, 2] [/nope]")


def test_durations_counts_and_the_linear_eta():
    assert [format_duration(s) for s in (None, -1, 0.4, 41, 65, 3600 + 180)] == ["?", "0s", "0s", "41s", "1m05s", "1h03m"]
    assert [format_count(v) for v in (None, 1234, 12.0, 2.5)] == ["?", "1,234", "12", "2.5"]
    assert linear_eta_s(0, 10, 5.0) is None and linear_eta_s(1, None, 5.0) is None
    assert linear_eta_s(2, 10, 4.0) == pytest.approx(16.0) and linear_eta_s(10, 10, 4.0) == 0.0
