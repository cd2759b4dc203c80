"""The one progress renderer of the toolkit (profile, sweep, explore), built on ``rich.progress``.

:class:`ProgressBar` draws one job as one line::

    DESCRIPTION [DONE/TOTAL UNIT] [BAR] 12s elapsed, ETA 41s [TEXT]

- disabled (``enabled=False``): it prints nothing and costs almost nothing;
- on a terminal: rich's live display redraws the line in place (colours, a smooth bar)
  from the first report on, and leaves it on screen when the bar is closed;
- on anything else (a pipe, a log file, a test's StringIO, when progress was asked for
  explicitly): whole plain lines, no colour or cursor codes, an ASCII bar ``[####----]``;
  a line when the text changes, when the job completes, or every ``log_interval_s``
  seconds, and the last state when the bar is closed; never the same state twice.

A bar that was never reported to (a job refused before it started) prints nothing.

Without a total (``total=None``) the bar shows counts and elapsed time only (no bar, no
ETA). The total may grow (``update(total=...)``), so a job can declare all its work up
front and add work it discovers. The ETA is linear in ``completed / total`` over the
elapsed time, unless the caller estimates it itself (``external_eta=True`` and
``update(eta_s=...)``).

Where the output goes is the caller's business: every CLI passes stderr (the default),
and enables the bar only on a terminal or when asked (the CLI contract).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task
from rich.text import Text

LOG_WIDTH = 240  # columns of a plain log line (a non-terminal has no width of its own)
BAR_WIDTH = 24  # characters of the bar


def format_duration(seconds: float | None) -> str:
    """``"?"`` for None, else ``"41s"``, ``"1m05s"`` or ``"2h03m"`` (rounded to whole
    seconds; negative values count as 0). Pure."""
    if seconds is None:
        return "?"
    whole = max(0, int(round(seconds)))
    if whole >= 3600:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    if whole >= 60:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole}s"


def linear_eta_s(completed: float, total: float | None, elapsed_s: float) -> float | None:
    """Seconds left if the rest goes at the pace so far (>= 0); None without a total or
    before any progress. Pure."""
    if total is None or completed <= 0:
        return None
    return max(0.0, elapsed_s / completed * (total - completed))


def format_count(value: float | None) -> str:
    """A count with thousands separators: ``"1,234"`` (whole numbers), ``"12.5"`` otherwise,
    ``"?"`` for None. Pure."""
    if value is None:
        return "?"
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"


def _elapsed_s(task: Task) -> float:
    """Seconds since ``task`` started (0 before)."""
    return task.elapsed or 0.0


class DescriptionColumn(ProgressColumn):
    """The task's description, verbatim (no markup)."""

    def render(self, task: Task) -> Text:
        return Text(task.description)


class CountsColumn(ProgressColumn):
    """``"45/200 runs"`` (or ``"45 runs"`` without a total)."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        done = format_count(task.completed)
        counts = done if task.total is None else f"{done}/{format_count(task.total)}"
        return Text(f"{counts} {self.unit}")


class PlainBarColumn(ProgressColumn):
    """``"[#########---------------]"``: a bar that stays readable without colour."""

    def render(self, task: Task) -> Text:
        frac = 0.0 if not task.total else min(1.0, max(0.0, task.completed / task.total))
        filled = int(frac * BAR_WIDTH)
        return Text("[" + "#" * filled + "-" * (BAR_WIDTH - filled) + "]")


class TimeColumn(ProgressColumn):
    """``"12s elapsed, ETA 41s"`` (``"12s elapsed"`` without a total). The ETA is the
    task's field ``eta_s`` when the caller gives it (``external_eta``), else linear."""

    def render(self, task: Task) -> Text:
        elapsed = _elapsed_s(task)
        if task.total is None:
            return Text(f"{format_duration(elapsed)} elapsed")
        if task.fields.get("external_eta"):
            eta = task.fields.get("eta_s")
        else:
            eta = linear_eta_s(task.completed, task.total, elapsed)
        return Text(f"{format_duration(elapsed)} elapsed, ETA {format_duration(eta)}")


class NoteColumn(ProgressColumn):
    """The caller's free text (the ``text`` field), verbatim (no markup)."""

    def render(self, task: Task) -> Text:
        return Text(str(task.fields.get("text", "")))


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (OSError, ValueError):  # a closed stream
        return False


class ProgressBar:
    """One job's progress line on ``stream`` (default: stderr at construction); see the
    module docstring. Use it as a context manager (or call :meth:`close`).

    ``total``: the work to do, in the caller's unit (None: counts only, no bar, no ETA).
    ``unit``: shown after the counts (``"runs"``); None hides the counts.
    ``external_eta``: the ETA shown is the last ``update(eta_s=...)`` (None shows ``?``).
    ``log_interval_s``: on a non-terminal, at most one line per this many seconds unless
    the text changes or the job completes.
    """

    def __init__(self, description: str, total: float | None = None, *, enabled: bool,
                 stream: TextIO | None = None, unit: str | None = None, external_eta: bool = False,
                 log_interval_s: float = 5.0) -> None:
        self.enabled = enabled
        self.log_interval_s = log_interval_s
        self._closed = False
        self._touched = False  # drawn (live) or logged only once something was reported
        self._last_logged: tuple | None = None
        self._last_log_at = 0.0
        if not enabled:
            return
        out = stream if stream is not None else sys.stderr
        self.live = _is_terminal(out)
        self._console = Console(file=out, force_terminal=self.live, highlight=False, soft_wrap=not self.live,
                                color_system="auto" if self.live else None, width=None if self.live else LOG_WIDTH)
        self._columns = self._make_columns(total is not None, unit)
        self._progress = Progress(*self._columns, console=self._console, refresh_per_second=4,
                                  redirect_stdout=False, redirect_stderr=False)
        self._task = self._progress.add_task(description, total=total, text="", eta_s=None,
                                             external_eta=external_eta)

    def _make_columns(self, with_bar: bool, unit: str | None) -> list[ProgressColumn]:
        """The line's columns: description, counts, bar, times, text."""
        columns: list[ProgressColumn] = [DescriptionColumn()]
        if unit is not None:
            columns.append(CountsColumn(unit))
        if with_bar:
            columns.append(BarColumn(bar_width=BAR_WIDTH) if self.live else PlainBarColumn())
        columns += [TimeColumn(), NoteColumn()]
        return columns

    # ------------------------------------------------------------------ updates

    def advance(self, n: float = 1.0) -> None:
        """Add ``n`` to the work done."""
        if not self.enabled or self._closed:
            return
        self._progress.advance(self._task, n)
        self._show()

    def update(self, *, completed: float | None = None, total: float | None = None, text: str | None = None,
               eta_s: float | None = None) -> None:
        """Set the work done, the total (it may grow), the free text and, with
        ``external_eta``, the ETA in seconds (None: unknown). Arguments left out keep
        their value, except ``eta_s``, which is the caller's latest estimate."""
        if not self.enabled or self._closed:
            return
        fields: dict = {"eta_s": eta_s}
        if text is not None:
            fields["text"] = text
        self._progress.update(self._task, completed=completed, total=total, **fields)
        self._show()

    def close(self) -> None:
        """Finish the line: on a terminal stop redrawing (the line stays), elsewhere log
        the last state if it was not logged yet; nothing when nothing was reported (a job
        refused before it started leaves no line). Idempotent."""
        if not self.enabled or self._closed:
            return
        self._closed = True
        if not self._touched:
            return
        if self.live:
            self._progress.stop()
        else:
            self._log(force=True)

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ------------------------------------------------------------- plain lines

    def _state(self) -> tuple:
        task = self._progress.tasks[0]
        return task.completed, task.total, task.fields.get("text")

    def _show(self) -> None:
        """After a report: start the live line on the first one (terminal), else log if due."""
        if self.live:
            if not self._touched:
                self._progress.start()
        else:
            self._log(force=False)
        self._touched = True

    def _log(self, force: bool) -> None:
        """Write the current state as one plain line when it is new and due (or ``force``)."""
        state = self._state()
        if state == self._last_logged:
            return
        now = time.monotonic()
        completed, total, text = state
        due = (force or self._last_logged is None or text != self._last_logged[2]
               or (total is not None and completed >= total) or now - self._last_log_at >= self.log_interval_s)
        if not due:
            return
        self._last_logged, self._last_log_at = state, now
        self._console.print(self.line())

    def line(self) -> Text:
        """The current state as one plain line (what a non-terminal gets; only built
        there, where every column renders as text)."""
        task = self._progress.tasks[0]
        parts: Iterable[Text] = (_as_text(column(task)) for column in self._columns)
        return Text(" ").join(p for p in parts if p.plain)


def _as_text(renderable: object) -> Text:
    return renderable if isinstance(renderable, Text) else Text(str(renderable))


__all__ = [
    "BAR_WIDTH",
    "CountsColumn",
    "DescriptionColumn",
    "NoteColumn",
    "PlainBarColumn",
    "ProgressBar",
    "TimeColumn",
    "format_count",
    "format_duration",
    "linear_eta_s",
]
