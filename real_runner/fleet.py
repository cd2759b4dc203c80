"""Fleet profiling: one profile per machine type of a Ray cluster (``packrat profile --engine ray``).

Every live node is probed (CPU model, cores, sockets, host; no torch); one node of each
machine type measures the profile while holding all its CPUs. The engine itself
(:mod:`packrat_sim.engines.ray`) knows nothing of models or profiles.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass

from packrat_sim.engines.ray import RayEngine, run_on_each_node
from packrat_sim.files import write_text


@dataclass(frozen=True)
class FleetRequest:
    """What to profile on every machine type (the options of ``packrat profile --model``)."""

    model: str
    threads: tuple[int, ...] | None = None
    batches: tuple[int, ...] | None = None
    repeats: int = 5
    warmup: int = 2
    interference: bool = False


@dataclass(frozen=True)
class FleetProfile:
    """One machine type's outcome: its name, the node that measured it, the file written
    (or the one-line error), and the other nodes of that type that were not measured."""

    machine: str
    node: str
    path: str | None
    error: str = ""
    same_type_nodes: tuple[str, ...] = ()


def machine_name(cpu_model: str, logical: int, sockets: int) -> str:
    """A file-name-safe machine type: ``intel-xeon-gold-6338-cpu-2-00ghz-64c-2s``."""
    slug = re.sub(r"[^a-z0-9]+", "-", (cpu_model or "unknown-cpu").lower()).strip("-") or "unknown-cpu"
    return f"{slug}-{logical}c-{sockets}s"


def _probe_node(_: object) -> dict:
    """Runs on a node: its host name and CPU topology (no torch)."""
    from real_runner.topology import detect

    topo = detect()
    return {"host": socket.gethostname(), "machine": machine_name(topo.cpu_model, topo.logical, len(topo.sockets)),
            "cpu_model": topo.cpu_model, "logical": topo.logical, "physical": topo.physical}


def _profile_node(request: FleetRequest) -> tuple[str, str]:
    """Runs on a node, holding all its CPUs: measure the profile there (the profiler pins
    its workers to this node's cores) and return (machine name, profile JSON text)."""
    import tempfile

    from packrat_sim.profile import dumps_profile
    from real_runner.profiling import measure_profile
    from real_runner.topology import detect

    topo = detect()
    with tempfile.TemporaryDirectory(prefix="packrat-fleet-") as tmp:
        result = measure_profile(
            request.model, list(request.threads) if request.threads else None,
            list(request.batches) if request.batches else None, request.repeats, warmup=request.warmup,
            out=os.path.join(tmp, "profile.json"), interference=request.interference, progress=False, topology=topo,
        )
    return machine_name(topo.cpu_model, topo.logical, len(topo.sockets)), dumps_profile(result.profile)


def profile_fleet(engine: RayEngine, request: FleetRequest, out_dir: str) -> list[FleetProfile]:
    """Profile ``request.model`` once per machine type of the cluster.

    Every live node is probed (CPU model, cores, sockets, host; no torch); for each machine
    type one node measures the profile holding all its CPUs, and it is written to
    ``OUT_DIR/<machine name>.json``. Machine types are measured in parallel. Returns one
    :class:`FleetProfile` per type (an error instead of a path when that node failed).
    """
    from packrat_sim.files import prepare_output_dir

    prepare_output_dir(out_dir, "fleet output directory")  # OutputPathError (an OSError) names the path
    probes = run_on_each_node(engine, _probe_node, None)
    by_type: dict[str, list[tuple[str, dict]]] = {}
    failed = []
    for node_id, outcome in probes:
        if outcome.ok:
            by_type.setdefault(outcome.value["machine"], []).append((node_id, outcome.value))
        else:
            failed.append(FleetProfile("?", node_id, None, f"probe failed: {outcome.error}"))
    chosen = [(machine, members[0]) for machine, members in sorted(by_type.items())]
    results = run_on_each_node(engine, _profile_node, request, [node_id for _, (node_id, _) in chosen],
                               whole_node=True)
    out = list(failed)
    for (machine, (_node, info)), (_, outcome) in zip(chosen, results):
        others = tuple(i["host"] for _, i in by_type[machine][1:])
        if not outcome.ok:
            out.append(FleetProfile(machine, info["host"], None, outcome.error, others))
            continue
        name, text = outcome.value
        path = os.path.join(out_dir, f"{name}.json")
        write_text(path, text, "fleet profile")
        out.append(FleetProfile(name, info["host"], path, "", others))
    return out
