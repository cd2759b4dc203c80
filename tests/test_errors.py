"""One base exception: every library error that means bad input derives from PackratError,
which the CLI maps to one line on stderr and exit code 2."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from packrat_sim.errors import PackratError

#: Where the library's errors live (ui.cli holds BadInput; the dashboard pages run on import).
PACKAGES = ("packrat_sim", "checker", "real_runner", "ui.cli")

#: Runtime failures, not bad input: the CLI maps them to exit 1 (or they never reach it), so
#: they keep their RuntimeError base and do not derive from PackratError.
RUNTIME_FAILURES = {
    "real_runner.executor.WorkerError",  # a worker process failed or died: exit 1
    "real_runner.profiling.ProfilingWorkerError",  # a profiling worker failed: exit 1
    "real_runner.serving.ServingError",  # serving under load failed at run time
}


def _modules():
    for package in PACKAGES:
        yield importlib.import_module(package)
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, prefix=package + "."):
            if info.name.rsplit(".", 1)[-1] == "__main__":
                continue
            yield importlib.import_module(info.name)


def _public_errors() -> dict[str, type]:
    """``module.Name`` -> class, for each public exception class defined in the library whose
    name ends in Error (or is BadInput)."""
    found = {}
    for module in _modules():
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__ == module.__name__
                and not name.startswith("_")
                and (name.endswith("Error") or name == "BadInput")
            ):
                found[f"{module.__name__}.{name}"] = obj
    return found


ERRORS = _public_errors()


def test_the_walk_finds_the_library_errors():
    for name in ("packrat_sim.profile.ProfileError", "checker.models.ModelError", "ui.cli.common.BadInput",
                 "real_runner.models.ModelCatalogError", *RUNTIME_FAILURES):
        assert name in ERRORS, name


@pytest.mark.parametrize("name", sorted(set(ERRORS) - RUNTIME_FAILURES))
def test_each_bad_input_error_derives_from_packrat_error(name):
    assert issubclass(ERRORS[name], PackratError), f"{name} should derive from PackratError (bad input, exit 2)"


@pytest.mark.parametrize("name", sorted(RUNTIME_FAILURES))
def test_runtime_failures_are_not_bad_input(name):
    assert not issubclass(ERRORS[name], PackratError)
    assert issubclass(ERRORS[name], RuntimeError)


def test_no_two_error_classes_share_a_name():
    short = {}
    for name in ERRORS:
        short.setdefault(name.rsplit(".", 1)[-1], []).append(name)
    assert {k: v for k, v in short.items() if len(v) > 1} == {}


def test_packrat_error_is_a_value_error():
    assert issubclass(PackratError, ValueError)


def test_the_cli_maps_a_library_error_to_one_line_and_exit_2(monkeypatch, capsys):
    from packrat_sim.plan import PlanError
    from ui.cli import app as cli_app

    def boom(*args, **kwargs):
        raise PlanError("plan  file\n'x.json' is bad")

    monkeypatch.setattr(cli_app, "app", boom)
    assert cli_app.main(["plan"]) == 2
    assert capsys.readouterr().err == "packrat: error: plan file 'x.json' is bad\n"
