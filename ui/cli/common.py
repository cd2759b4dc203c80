"""Shared plumbing for the `packrat` verbs: input errors, exit codes, JSON output, stderr
notes, and loading ``--profile``.

The verbs stay thin: they parse options, call the library, and print. Everything that
can go wrong with user input is raised as :class:`BadInput` or as a library error derived
from :class:`~packrat_sim.errors.PackratError` (BadInput is one too); the entry point turns
it into one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any, NoReturn

import typer

from packrat_sim.errors import PackratError

#: The one load grammar (packrat_sim.workload) in one line, for every --help that takes a workload.
WORKLOAD_HELP = (
    "Workload (README.md, \"Workloads\"). Closed loop, spelled with batch sizes: closed:batch=64,requests=1000 | "
    "closed:8@20s,32@20s[,clients=2][,think=5ms] (batches of 8 for 20 s, then of 32). Open loop, spelled with rates: "
    "poisson:rate=40/s,duration=60s | steps:8/s@20s,32/s@20s | diurnal:base=20/s,peak=200/s,period=60s,duration=120s | "
    "trace:FILE[,unit=ms]; open loops take [,max_batch=64][,max_delay=10ms]."
)

EXIT_OK = 0
EXIT_NEGATIVE = 1  # not linearizable, bug found, plan not optimal
EXIT_BAD_INPUT = 2
EXIT_UNKNOWN = 3  # timeout, budget


class BadInput(PackratError):
    """A user-supplied value is wrong. The message names the value; exit code 2.

    A :class:`~packrat_sim.errors.PackratError` like every library bad-input error, so the
    entry point catches them all at once."""


def print_error(message: str) -> None:
    """Print ``packrat: error: <message>`` on one line of stderr."""
    one_line = " ".join(str(message).split())
    print(f"packrat: error: {one_line}", file=sys.stderr)


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print ``packrat: error: <message>`` on one line of stderr and exit with ``code``."""
    print_error(message)
    raise typer.Exit(code)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _jsonable(value.item())
    return value


def note(message: str) -> None:
    """Print ``packrat: <message>`` on stderr (progress and caveats; stdout stays for results)."""
    print(f"packrat: {message}", file=sys.stderr)


def print_corun(line: str, notes) -> None:
    """Print ``co-run: <line>`` and a ``note: <n>`` line per note on stdout (the text form of
    the co-run fields of `simulate`, `sweep` and `bench`)."""
    print(f"co-run: {line}")
    for n in notes:
        print(f"note: {n}")


def corun_fields(co, notes: list[str]) -> dict:
    """The ``corun``, ``corun_model`` and ``notes`` fields of a --json object, in that order
    (``co``: a ``packrat_sim.predictor.CoRun``)."""
    return {"corun": co.mode, "corun_model": co.to_json(), "notes": notes}


def profile_line(profile) -> str:
    """The ``profile   <label>`` line that heads `plan`, `predict` and `verify` (the source
    too when the profile is synthetic)."""
    return f"profile   {profile.label()}" + (f"  ({profile.source})" if profile.synthetic else "")


def emit_json(obj: dict) -> None:
    """Print exactly one JSON object on stdout (non-finite floats become null)."""
    sys.stdout.write(json.dumps(_jsonable(obj), sort_keys=False) + "\n")


def load_profile_arg(spec: str):
    """Resolve ``--profile``: ``builtin:NAME`` or a path to a profile JSON file.

    Raises :class:`BadInput` naming the spec when it cannot be loaded.
    """
    from packrat_sim.profile import ProfileError, builtin_profile, read_profile

    try:
        if spec.startswith("builtin:"):
            return builtin_profile(spec[len("builtin:"):])
        return read_profile(spec)
    except ProfileError as exc:
        raise BadInput(str(exc)) from None


def load_model_profile(spec: str, model: str, *, planning: bool = False):
    """:func:`load_profile_arg` for a verb that runs ``--model``: a measured profile must be
    of that model (BadInput naming both otherwise; a synthetic one fits any model). With
    ``planning``, planning from a synthetic profile is noted on stderr."""
    profile = load_profile_arg(spec)
    if not profile.synthetic and profile.model != model:
        raise BadInput(f"--profile {spec} is a profile of {profile.model!r}, not of --model {model!r}")
    if planning and profile.synthetic:
        note(f"planning from the SYNTHETIC profile {profile.label()}: predictions are not measurements")
    return profile


#: The one rule for output paths, quoted in every writer's --help and in the README.
OUTPUT_RULE = ("Its directory must exist (packrat creates no parent directories); a symlink, device, "
               "FIFO or directory there is refused; the file is replaced atomically.")


def output_file_arg(path: str | None, option: str = "--out") -> str | None:
    """Validate an output file option *before* any work (packrat_sim.files rule): BadInput
    naming ``option`` when the path is a symlink, not a regular file, or its directory is
    missing. Returns ``path`` (None passes through)."""
    if path is None:
        return None
    from packrat_sim.files import OutputPathError, check_output_path

    try:
        check_output_path(path, option)
    except OutputPathError as exc:
        raise BadInput(str(exc)) from None
    return path


def output_dir_arg(path: str | None, option: str = "--out", *, create: bool = False) -> str | None:
    """Validate (with ``create``: make) an output directory option: its parent must exist, it
    must not be a symlink or a non-directory. BadInput naming ``option`` otherwise."""
    if path is None:
        return None
    from packrat_sim.files import OutputPathError, prepare_output_dir

    try:
        return prepare_output_dir(path, option, create=create)
    except OutputPathError as exc:
        raise BadInput(str(exc)) from None


def write_output(path: str, data, option: str = "--out") -> str:
    """Write ``data`` (str, bytes or a writer callable) through packrat_sim.files.write_file;
    BadInput (one line naming ``option``) on any refusal or OS error. Returns the path."""
    from packrat_sim.files import OutputPathError, write_file

    try:
        return str(write_file(path, data, option))
    except OutputPathError as exc:
        raise BadInput(str(exc)) from None


def warn_other_machine(origin, what: str, topology) -> None:
    """One line on stderr when ``origin`` (a ``PlanOrigin``) describes another machine than
    ``topology`` (its CPU model and the CPUs this process may use): ``what``'s predictions may
    not hold here."""
    warning = origin.machine_warning(what, topology.cpu_model, topology.logical)
    if warning:
        note(warning)
