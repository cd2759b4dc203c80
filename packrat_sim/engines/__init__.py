"""Engines: run many independent, picklable tasks and hand back their outcomes as they finish.

One interface (:class:`Engine`: ``map(fn, tasks, retries=1)`` yielding :class:`Outcome` in
completion order, ``close()``, a context manager) and its failure semantics live in
:mod:`packrat_sim.engines.base`. The engines:

* :class:`SerialEngine` (:mod:`~packrat_sim.engines.serial`): in this process, one task after
  the other; the reference.
* :class:`LocalEngine` (:mod:`~packrat_sim.engines.local`): a pool of worker processes on this
  machine, the default of ``packrat sweep``.
* ``RayEngine`` (``packrat_sim/engines/ray.py``, the only module that imports ray; not imported
  here): a Ray cluster.

:mod:`~packrat_sim.engines.selection` picks one by name; :mod:`~packrat_sim.engines.spawn` is the one
process spawner every pool uses (engines, the checker's partition workers, dashboard jobs), with
one parent-death rule.
"""

from __future__ import annotations

from packrat_sim.engines.base import Engine, EngineError, Outcome, available_cpus, call_task, describe_exception
from packrat_sim.engines.local import PRELOAD, LocalEngine
from packrat_sim.engines.selection import ENGINE_NAMES, ENGINES, make_engine, select_engine
from packrat_sim.engines.serial import SerialEngine

__all__ = [
    "ENGINES",
    "ENGINE_NAMES",
    "PRELOAD",
    "Engine",
    "EngineError",
    "LocalEngine",
    "Outcome",
    "SerialEngine",
    "available_cpus",
    "call_task",
    "describe_exception",
    "make_engine",
    "select_engine",
]
