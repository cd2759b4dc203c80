"""The real runner: real PyTorch models on this machine's real cores.

The only package that imports torch (and only inside the functions that need it, so
``import real_runner`` stays cheap). Modules:

* :mod:`real_runner.models`: the model catalog (random weights, no downloads);
* :mod:`real_runner.topology`: CPUs, cores, SMT siblings, sockets; core assignment;
* :mod:`real_runner.profiling`: isolated (t, b) sweeps and co-run interference sweeps;
* :mod:`real_runner.executor`: instance worker pool, dispatcher, fat-vs-plan comparison;
* :mod:`real_runner.serving`: online serving with reconfiguration, fault retry, history log;
* :mod:`real_runner.bench`: fat vs thin vs plan vs every feasible plan, measured interleaved.

The public functions are re-exported here lazily: ``profile_model``, ``measure_profile``,
``quick_profile``, ``run_plan``, ``compare_with_fat``, ``InstancePool``, ``known_models``,
``detect_topology``.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "profile_model": "real_runner.profiling",
    "measure_profile": "real_runner.profiling",
    "quick_profile": "real_runner.profiling",
    "ProfilingResult": "real_runner.profiling",
    "run_plan": "real_runner.executor",
    "compare_with_fat": "real_runner.executor",
    "InstancePool": "real_runner.executor",
    "RunResult": "real_runner.executor",
    "Comparison": "real_runner.executor",
    "known_models": "real_runner.models",
    "build_model": "real_runner.models",
    "make_inputs": "real_runner.models",
    "Topology": "real_runner.topology",
    "assign_cores": "real_runner.topology",
}

__all__ = sorted(_EXPORTS) + ["detect_topology"]


def __getattr__(name: str):
    if name == "detect_topology":
        return importlib.import_module("real_runner.topology").detect
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'real_runner' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
