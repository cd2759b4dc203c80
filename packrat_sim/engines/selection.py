"""Engine selection: an engine by name (``local``, ``ray``, ``serial``), every bad choice an error
naming the value.

:func:`make_engine` builds the engines of this package (``local``, ``serial``);
:func:`select_engine` is the choice a command line makes (``--engine``, ``--workers``,
``--ray-address``), the Ray engine included. Ray's module is imported only when ``ray`` is chosen.
"""

from __future__ import annotations

from packrat_sim.engines.base import Engine, EngineError
from packrat_sim.engines.local import LocalEngine
from packrat_sim.engines.serial import SerialEngine

__all__ = ["ENGINES", "ENGINE_NAMES", "make_engine", "select_engine"]

#: The engines :func:`make_engine` builds (no ray needed).
ENGINES = ("local", "serial")
#: Every engine :func:`select_engine` (and ``--engine``) accepts.
ENGINE_NAMES = ("local", "ray", "serial")


def make_engine(name: str, workers: int | None = None) -> SerialEngine | LocalEngine:
    """``"local"`` (process pool of ``workers``) or ``"serial"`` (this process).
    The Ray engine lives in ``packrat_sim/engines/ray.py`` (the only module that imports ray)."""
    if name == "local":
        return LocalEngine(workers)
    if name == "serial":
        return SerialEngine()
    raise EngineError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)} (or ray, from the CLI)")


def check_choice(name: str, workers: int | None, ray_address: str | None) -> None:
    """EngineError naming the bad value when ``name`` is not in :data:`ENGINE_NAMES`,
    ``workers`` is below 1, or a ``ray_address`` comes without the ``ray`` engine. Pure."""
    if name not in ENGINE_NAMES:
        raise EngineError(f"--engine must be one of {', '.join(ENGINE_NAMES)}, got {name!r}")
    if workers is not None and workers < 1:
        raise EngineError(f"--workers must be a positive integer, got {workers}")
    if ray_address is not None and name != "ray":
        raise EngineError(f"--ray-address needs --engine ray (got --engine {name})")


def select_engine(name: str, workers: int | None = None, ray_address: str | None = None) -> Engine:
    """The engine ``--engine name --workers workers --ray-address ray_address`` means:
    ``ray`` a :class:`~packrat_sim.engines.ray.RayEngine` (a private local instance of ``workers``
    CPUs, or the cluster at ``ray_address``; RayEngineError when ray is missing or the cluster
    cannot be reached), else :func:`make_engine`. EngineError naming a bad choice
    (:func:`check_choice`). Joining a cluster may block (see ``ui/cli/engine.py``'s deadline)."""
    check_choice(name, workers, ray_address)
    if name == "ray":
        from packrat_sim.engines.ray import RayEngine

        return RayEngine(address=ray_address, num_cpus=workers)
    return make_engine(name, workers)
