"""The `--engine` / `--workers` / `--ray-address` options shared by the verbs that scale out.

* :func:`make_engine`: the engine a command line names (``local`` process pool, ``ray``,
  ``serial``), every problem a :class:`BadInput`; joining a Ray address is guarded by a
  deadline (one line, exit 2, whatever Ray does).
* :func:`run_explore_split`: ``packrat explore --workers N --engine local|ray`` (same
  inputs and result as ``ui.cli.explore.run_explore``, through :mod:`checker.explore.split`).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable

from ui.cli.common import BadInput, print_error

RAY_CONNECT_DEADLINE_S = 25.0


def _connect_timed_out(address: str) -> None:
    """Joining a Ray address hung (a port that answers but is not a Ray head): one line, exit 2."""
    print_error(f"cannot join the Ray cluster at {address!r}: no Ray head answered within {RAY_CONNECT_DEADLINE_S:g} s")
    sys.stderr.flush()
    os._exit(2)


def make_engine(engine: str, workers: int | None, ray_address: str | None):
    """The engine named on the command line (``packrat_sim.engines.select_engine``), every
    problem a BadInput naming the bad choice; joining a Ray address must answer within
    :data:`RAY_CONNECT_DEADLINE_S` (else one line, exit 2, whatever Ray does)."""
    from packrat_sim.engines import EngineError, select_engine
    from packrat_sim.engines.ray import RayEngineError

    watchdog = None
    if engine == "ray" and ray_address is not None:
        watchdog = threading.Timer(RAY_CONNECT_DEADLINE_S, _connect_timed_out, args=(ray_address,))
        watchdog.daemon = True
        watchdog.start()
    try:
        return select_engine(engine, workers, ray_address)
    except (EngineError, RayEngineError) as exc:
        raise BadInput(str(exc)) from None
    finally:
        if watchdog is not None:
            watchdog.cancel()


def run_explore_split(
    protocol_name: str,
    variant: str | None,
    strategy: str,
    params: dict,
    *,
    engine: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    frontier_depth: int | None = None,
    max_schedules: int | None,
    max_time: float | None,
    seed: int,
    depth: int | None,
    bug_depth: int,
    shrink: bool,
    check_timeout: float | None = 10.0,
    reductions=None,
    progress: Callable[[int, int], None] | None = None,
    split_after_s: float | None = None,
):
    """``(protocol, ExploreResult)`` of the exploration split over an engine (``split_after_s``:
    seconds the dfs/dpor-family search first runs whole here, None: the strategy's default, see
    ``explore_split``; ``reductions``: a
    :class:`checker.explore.Reductions`, None for the default); every input problem becomes
    BadInput. Walks (random, pct) split by seed, the dfs/dpor family by
    subtrees (see ``checker/explore/split.py``); ``max_time`` applies to each job."""
    from checker.explore import ExploreError, Reductions
    from checker.explore.split import Options, SplitError, explore_split
    from checker.protocols import ProtocolError, build

    try:
        protocol = build(protocol_name, variant, **params)
    except ProtocolError as exc:
        raise BadInput(str(exc)) from None
    eng = make_engine(engine, workers, ray_address)
    try:
        options = Options(check_timeout=check_timeout, max_time=max_time, depth=depth, bug_depth=bug_depth,
                          reductions=reductions or Reductions())
        split = explore_split(protocol_name, strategy, eng, variant=protocol.variant, params=params,
                              workers=workers, frontier_depth=frontier_depth, seed=seed,
                              max_schedules=max_schedules, options=options, shrink=shrink, progress=progress,
                              split_after_s=split_after_s)
    except (ProtocolError, ExploreError, SplitError) as exc:
        raise BadInput(str(exc)) from None
    finally:
        eng.close()
    return protocol, split.result


def run_fleet_profile(model: str, threads: str | None, batches: str | None, repeats: int | None,
                      warmup: int | None, interference: bool, out_dir: str, ray_address: str | None,
                      as_json: bool) -> int:
    """``packrat profile --model M --engine ray --out DIR``: one profile per machine type of the
    cluster, written to ``DIR/<machine>.json`` (see ``real_runner.fleet.profile_fleet``). Prints
    one line per machine type (or one JSON object); returns 0, or 1 when a type failed."""
    import typer

    from real_runner.models import ModelCatalogError, get_spec
    from real_runner.profiling import ProfilingError, parse_int_list
    from ui.cli.common import emit_json, output_dir_arg

    try:
        get_spec(model)
        threads_l = tuple(parse_int_list(threads, "--threads")) if threads is not None else None
        batches_l = tuple(parse_int_list(batches, "--batches")) if batches is not None else None
    except (ModelCatalogError, ProfilingError) as exc:
        raise BadInput(str(exc)) from None
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise BadInput(f"--out {out_dir!r}: with --engine ray, --out is a directory (one profile per machine type)")
    output_dir_arg(out_dir, "--out", create=True)  # its parent must exist, as for every output
    from real_runner.fleet import FleetRequest, profile_fleet

    request = FleetRequest(model, threads_l, batches_l, 5 if repeats is None else repeats,
                           2 if warmup is None else warmup, interference)
    engine = make_engine("ray", None, ray_address)
    try:
        results = profile_fleet(engine, request, out_dir)
    except OSError as exc:
        raise BadInput(f"cannot write --out {out_dir!r}: {exc.strerror or exc}") from None
    finally:
        engine.close()
    if as_json:
        emit_json({"out": out_dir, "machines": [
            {"machine": r.machine, "node": r.node, "path": r.path, "error": r.error or None,
             "same_type_nodes": list(r.same_type_nodes)} for r in results]})
    else:
        for r in results:
            others = f" (also {len(r.same_type_nodes)} more node(s) of this type)" if r.same_type_nodes else ""
            typer.echo(f"{r.machine}: measured on {r.node}{others}: " + (f"wrote {r.path}" if r.path else f"FAILED: {r.error}"))
    return 1 if any(r.path is None for r in results) else 0
