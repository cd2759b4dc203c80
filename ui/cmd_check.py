"""`packrat check HISTORY`: is a history linearizable?

Reads a history (the toolkit's JSON, a Jepsen log or a Porcupine key-value log), checks it against
a sequential model with the WGL search of :mod:`checker.linearizability`, and prints the verdict,
the number of operations and partitions and the time taken; on ILLEGAL, the operation that cannot
be linearized and the longest linearizable prefix. ``--html FILE`` writes a self-contained page.

Exit codes: 0 linearizable, 1 not linearizable, 2 bad input, 3 unknown (timeout).
"""

from __future__ import annotations

from typing import Optional

import typer

from ui._common import EXIT_NEGATIVE, EXIT_OK, EXIT_UNKNOWN, BadInput, emit_json

#: Model used when neither --model nor the history file names one.
DEFAULT_MODELS = {"jepsen": "cas-register", "porcupine-kv": "kv"}
FORMAT_CHOICES = ("auto", "json", "jepsen", "porcupine-kv")


def run_check(
    history_path: str,
    model: Optional[str] = None,
    fmt: str = "auto",
    timeout: float = 60.0,
    html: Optional[str] = None,
    as_json: bool = False,
) -> int:
    """Do the work of the verb; returns the exit code. Raises BadInput for bad input."""
    from checker.history import HistoryError, detect_format, parse_history
    from checker.linearizability import Verdict, check, explain
    from checker.models import MODELS, ModelError

    if fmt not in FORMAT_CHOICES:
        raise BadInput(f"unknown --format {fmt!r} (expected json, jepsen or porcupine-kv)")
    if model is not None and model not in MODELS:
        raise BadInput(f"unknown --model {model!r} (expected one of {', '.join(MODELS)})")
    if timeout < 0:
        raise BadInput(f"--timeout must be >= 0 seconds (0: no limit), not {timeout:g}")
    try:
        with open(history_path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise BadInput(f"cannot read history {history_path!r}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInput(f"history {history_path!r} is not UTF-8 text (byte {exc.start})") from None
    try:
        resolved_fmt = detect_format(text) if fmt == "auto" else fmt
        history = parse_history(text, resolved_fmt)
    except HistoryError as exc:
        raise BadInput(f"{history_path}: {exc}") from None

    name = model or history.model or DEFAULT_MODELS.get(resolved_fmt)
    if name is None:
        raise BadInput(f"{history_path}: the history names no model; pass --model {'|'.join(MODELS)}")
    if name not in MODELS:
        raise BadInput(f"{history_path}: unknown model {name!r} in the history (expected one of {', '.join(MODELS)})")
    try:
        result = check(history, name, timeout=timeout or None)
    except (ModelError, HistoryError) as exc:
        raise BadInput(f"{history_path}: {exc}") from None

    html_path = None
    if html:
        from checker.visualize import write_html

        try:
            html_path = str(write_html(html, history, result, name, title=f"packrat check {history_path}"))
        except OSError as exc:
            raise BadInput(f"cannot write --html {html!r}: {exc.strerror or exc}") from None

    if as_json:
        obj = result.to_json(history, name)
        obj["history"] = history_path
        obj["format"] = resolved_fmt
        if html_path:
            obj["html"] = html_path
        emit_json(obj)
    else:
        for line in explain(result, history, name):
            typer.echo(line)
        if html_path:
            typer.echo(f"wrote {html_path}")
    return {Verdict.OK: EXIT_OK, Verdict.ILLEGAL: EXIT_NEGATIVE, Verdict.UNKNOWN: EXIT_UNKNOWN}[result.result]


def register(app: typer.Typer) -> None:
    """Add the `check` verb to the `packrat` app."""

    @app.command(
        "check",
        help=(
            "Check a history for linearizability (OK / ILLEGAL / UNKNOWN). HISTORY is the toolkit's "
            "JSON history, a Jepsen log or a Porcupine key-value log. Exit codes: 0 ok, 1 illegal, "
            "2 bad input, 3 unknown (timeout)."
        ),
    )
    def check_command(
        history: str = typer.Argument(..., help="History file (json, Jepsen log or Porcupine kv log).",
                                      metavar="HISTORY", show_default=False),
        model: Optional[str] = typer.Option(
            None, "--model",
            help="register | cas-register | kv | serving. Default: the history's \"model\" (json), "
                 "cas-register (jepsen), kv (porcupine-kv).",
        ),
        fmt: str = typer.Option(
            "auto", "--format", help="json | jepsen | porcupine-kv (default: detected from the content)."
        ),
        timeout: float = typer.Option(60.0, "--timeout", help="Give up with UNKNOWN after S seconds (0: no limit).",
                                      metavar="S"),
        html: Optional[str] = typer.Option(None, "--html", help="Write a self-contained HTML explanation to FILE.",
                                           metavar="FILE"),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout and nothing else."),
    ) -> None:
        code = run_check(history, model=model, fmt=fmt, timeout=timeout, html=html, as_json=as_json)
        if code:
            raise typer.Exit(code)
