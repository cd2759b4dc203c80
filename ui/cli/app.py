"""`packrat`: thin verbs over the library (see DESIGN.md, "CLI contract").

Exit codes: 0 success / positive verdict; 1 negative verdict; 2 bad input or usage
(one line on stderr naming the bad value, no traceback); 3 unknown (timeout, budget).

Each verb lives in its own module ``ui/cmd_<verb>.py`` exposing ``register(app)``; this
file only assembles them. Nothing here imports torch: heavy imports happen inside the
verbs that need them, so ``packrat --help`` starts fast.
"""

from __future__ import annotations

import importlib
import sys
import warnings

import typer

try:  # typer >= 0.17 vendors its own copy of click
    from typer._click import exceptions as _click_exc
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import exceptions as _click_exc  # type: ignore[no-redef]  # the same module, another home

from packrat_sim.errors import PackratDeprecation, PackratError
from ui.cli.common import EXIT_BAD_INPUT, print_error

app = typer.Typer(
    name="packrat",
    help=(
        "Packrat toolkit: profile a DNN on this CPU server, pick the latency-optimal set of "
        "model instances (threads x sub-batch each), prove it optimal, simulate it, run it, "
        "and check the reconfiguration protocol for linearizability."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def installed_version() -> str:
    """The installed version of the toolkit (``importlib.metadata``); "unknown" when the
    distribution is not installed (sources on ``sys.path`` without ``pip install``)."""
    from importlib import metadata

    from ui import DISTRIBUTION

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"


def _print_version(value: bool) -> None:
    """Eager ``--version``: print ``packrat <version>`` on stdout and exit 0; no-op when unset."""
    if value:
        typer.echo(f"packrat {installed_version()}")
        raise typer.Exit(0)


@app.callback()
def _options(
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
    ),
) -> None:
    # No docstring on purpose: `packrat --help` keeps the Typer(help=...) text above.
    pass


# Verb modules, in the order `packrat --help` lists them. Every one must import: a missing
# or broken verb module is an error of the installation, reported at start-up (never hidden).
VERB_MODULES = (
    "ui.cli.profile",
    "ui.cli.plan",
    "ui.cli.predict",
    "ui.cli.verify",
    "ui.cli.simulate",
    "ui.cli.sweep",
    "ui.cli.check",
    "ui.cli.explore",
    "ui.cli.run",
    "ui.cli.bench",
    "ui.cli.fidelity",
    "ui.cli.demo",
    "ui.cli.ui",
)


def _register_verbs(names=VERB_MODULES) -> None:
    """Import each verb module and let it register its command; a missing module raises."""
    for name in names:
        module = importlib.import_module(name)  # ModuleNotFoundError names the missing verb module
        module.register(app)


_register_verbs()


def _deprecations_as_lines(fallback):
    """A ``warnings.showwarning`` for the CLI: a :class:`PackratDeprecation` is one line on
    stderr, ``packrat: deprecated: <message>``; any other warning goes to ``fallback``."""
    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, PackratDeprecation):
            print(f"packrat: deprecated: {message}", file=sys.stderr)
        else:
            fallback(message, category, filename, lineno, file, line)
    return show


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns (and exits with) the exit code."""
    with warnings.catch_warnings():
        warnings.simplefilter("default", PackratDeprecation)  # each deprecation once per command
        warnings.showwarning = _deprecations_as_lines(warnings.showwarning)
        code = _run(argv)
    if argv is None:
        sys.exit(code)
    return code


def _run(argv: list[str] | None) -> int:
    """Run the command line ``argv``; its exit code (errors printed as one line on stderr)."""
    try:
        result = app(args=argv, prog_name="packrat", standalone_mode=False)
    except PackratError as exc:  # bad input (BadInput or a library error): one line, exit 2
        print_error(str(exc))
        code = EXIT_BAD_INPUT
    except (typer.Exit, getattr(_click_exc, "Exit", typer.Exit)) as exc:
        code = exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        print("packrat: aborted", file=sys.stderr)
        code = 130
    except _click_exc.NoArgsIsHelpError as exc:
        print(exc.format_message() if hasattr(exc, "format_message") else exc, file=sys.stderr)
        code = EXIT_BAD_INPUT
    except _click_exc.ClickException as exc:
        ctx_help = ""
        if isinstance(exc, _click_exc.UsageError) and exc.ctx is not None:
            ctx_help = f" (see '{exc.ctx.command_path} --help')"
        print(f"packrat: error: {exc.format_message()}{ctx_help}", file=sys.stderr)
        code = exc.exit_code
    else:
        code = result if isinstance(result, int) else 0
    return code


if __name__ == "__main__":  # pragma: no cover
    main()
