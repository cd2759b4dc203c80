"""`packrat explore`: run a protocol's actors over its schedules and judge every history.

    packrat explore --protocol reconfig --variant ack-before-switch --strategy dpor
    packrat explore --protocol register --variant erroneous --strategy random --seed 7
    packrat explore --replay /tmp/packrat-explore-XXXX/explore-reconfig-ack-before-switch.replay.json
    packrat explore --list

Exit codes: 0 OK (a complete strategy covered every schedule and every history is
linearizable), 1 a violation (the shrunk schedule, its history and why; a replay file is
written where --out-replay says, by default into a new temporary directory named on stderr),
2 bad input, 3 unknown (a budget ran out, or the strategy is not exhaustive). ``--replay``:
1 when the replayed schedule breaks a property (the violation the
file records recurs, or another one occurs), 3 when the violation the file records does not
recur and nothing else breaks (the file no longer shows a bug), 0 when a file that records
no violation replays without one.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer

from ui.cli.common import EXIT_NEGATIVE, EXIT_OK, EXIT_UNKNOWN, BadInput, emit_json


def _exit_code(verdict) -> int:
    """0 for OK, 1 for a violation (ILLEGAL), 3 otherwise."""
    from checker.explore import verdict_word

    return {"OK": EXIT_OK, "VIOLATION": EXIT_NEGATIVE}.get(verdict_word(verdict), EXIT_UNKNOWN)


def _parse_params(items: list[str]) -> dict[str, str]:
    """The ``--param NAME=VALUE`` options as {name: value} (a name given twice takes its last
    value); BadInput naming an item that is not NAME=VALUE."""
    from packrat_sim.spec import split_key_value

    return dict(split_key_value(item, "--param", error=BadInput) for item in items or [])


def _explore_bar(enabled: bool):
    """The explorer's progress line on stderr (:class:`packrat_sim.progress.ProgressBar`,
    counts only: how many schedules there are is not known in advance) and the callback that
    feeds it an ``ExploreProgress`` snapshot."""
    from packrat_sim.progress import ProgressBar

    bar = ProgressBar("exploring:", None, enabled=enabled, unit="schedules")

    def show(p) -> None:
        bar.update(completed=p.schedules, text=f"({p.states:,} states, {p.distinct_histories:,} distinct histories)")

    return bar, show


def _check_out_path(path: str) -> None:
    """Refuse an --out-replay that cannot be a replay file before exploring (one line)."""
    p = Path(path)
    if p.exists() and not p.is_file():
        raise BadInput(f"--out-replay {path!r} exists and is not a regular file")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise BadInput(f"--out-replay {path!r}: directory {str(parent)!r} does not exist")


def history_lines(history, model_name: str) -> list[str]:
    """One line per operation: client, interval, description (pending ones say so)."""
    from checker.linearizability import describe
    from checker.models import get_model

    model = get_model(model_name)
    width = max((len(str(op.client)) for op in history), default=6)
    lines = []
    for op in history:
        interval = f"[{op.call}, {'pending' if op.ret is None else op.ret}]"
        lines.append(f"    {op.client!s:<{width}}  {interval:<14} {describe(model, op)}")
    if not lines:
        lines.append("    (no operations)")
    return lines


def _schedule_lines(schedule) -> list[str]:
    width = len(str(len(schedule)))
    return [f"    {i:>{width}}. {ev.describe()}" for i, ev in enumerate(schedule, 1)]


def _default_replay_path(protocol) -> Path:
    """A new temporary directory's replay file (never the current directory unasked)."""
    import tempfile

    return Path(tempfile.mkdtemp(prefix="packrat-explore-")) / f"explore-{protocol.name}-{protocol.variant}.replay.json"


def format_result(result, protocol, replay_file: str | None) -> str:
    """The human-readable report of an :class:`~checker.explore.ExploreResult`."""
    head = f"{protocol.label()}: {protocol.description}"
    if protocol.buggy:
        head += " [known-buggy variant]"
    stats = (
        f"{result.strategy}: {result.schedules} schedules, {result.states} states, "
        f"{result.distinct_histories} distinct histories, {result.elapsed_s:.2f} s"
    )
    if result.first_violation_at is not None:
        stats += f" (first violation in schedule {result.first_violation_at})"
    if result.pct_bound is not None:
        stats += f"; PCT bound per run >= {result.pct_bound:.3g}"
    lines = [f"protocol   {head}", f"explored   {stats}"]
    if result.coverage is not None:  # bita: the ordering goals it found and covered
        lines.append(f"coverage   {result.coverage.describe()}")
    from checker.explore import OK, UNKNOWN

    if result.verdict == OK:
        lines.append(
            "verdict    OK: every schedule explored; every invariant holds and every history is "
            f"linearizable under the {protocol.model} model"
        )
        return "\n".join(lines + property_lines(result))
    v = result.violation
    if result.verdict == UNKNOWN or v is None:  # (VIOLATION without a schedule: a property never reached)
        lines.append(f"verdict    {result.verdict_word}: {result.reason}")
        return "\n".join(lines + property_lines(result))
    lines.append(f"verdict    VIOLATION of \"{v.name}\": {v.message}")
    lines += property_lines(result)
    shrunk = f" (shrunk from {len(v.found)})" if len(v.found) != len(v.schedule) else ""
    if result.strategy == "bfs":
        shrunk = " (bfs: a shortest counterexample, not shrunk)"
    lines.append(f"schedule   {len(v.schedule)} deliveries{shrunk}, from the initial state:")
    lines += _schedule_lines(v.schedule)
    lines.append(f"history    {protocol.model} model; times are event numbers")
    lines += history_lines(v.history, protocol.model)
    lines.append("why")
    lines += [f"    {line}" for line in v.explanation]
    if replay_file:
        lines.append(f"replay     wrote {replay_file}  (packrat explore --replay {replay_file})")
    return "\n".join(lines)


def property_lines(result) -> list[str]:
    """One line per property the protocol declares (``always``/``sometimes``/``eventually``)
    with its outcome: held, counterexample or witness (with its depth), never reached, unknown."""
    return [f"property   {p.describe()}" for p in result.properties]


def run_explore(
    protocol_name: str, variant: str | None, strategy: str, params: dict, *, shrink: bool, reductions=None,
    **limits: Any,
):
    """Build the protocol and explore it (``reductions``: a :class:`checker.explore.Reductions`,
    None for the default; ``limits``: :func:`checker.explore.explore`'s own keywords, such as
    ``max_schedules``, ``max_time``, ``seed``, ``depth``, ``delay_bound``, ``bug_depth`` and
    ``progress``); every input problem becomes :class:`BadInput`."""
    from checker.explore import ExploreError, Reductions, explore
    from checker.protocols import ProtocolError, build

    try:
        protocol = build(protocol_name, variant, **params)
        result = explore(protocol, strategy, shrink_counterexample=shrink, **limits,
                         **asdict(reductions or Reductions()))  # (explore's keywords are its fields)
    except (ProtocolError, ExploreError) as exc:
        raise BadInput(str(exc)) from None
    return protocol, result


def _records_json(records) -> list[dict]:
    """A replay step's history records [(client, kind, text)] as JSON objects."""
    return [{"client": c, "kind": k, "value": t} for c, k, t in records]


def _replay_steps(rr, width: int) -> tuple[list[str], list[dict]]:
    """A replay's steps (``rr``: a checker.explore replay result) as human lines (the
    records before the first step, then each delivery, its records and the invariants it
    broke) and as JSON objects; ``width``: digits of the step numbers."""
    from checker.actors import event_to_json

    def record_line(client: str, kind: str, text: str) -> str:
        return f"    {'':>{width}}    {client} {'calls' if kind == 'invoke' else 'returns'} {text}"

    lines = [record_line(*record) + "  (at start)" for record in rr.initial_records]
    steps = []
    for step in rr.steps:
        lines.append(f"    {step.index:>{width}}. {step.event.describe()}")
        lines += [record_line(*record) for record in step.records]
        lines += [f"    {'':>{width}}    ! {broken}" for broken in step.broken]
        steps.append({
            "index": step.index,
            "event": event_to_json(step.event),
            "text": step.event.describe(),
            "records": _records_json(step.records),
            "broken": list(step.broken),
        })
    return lines, steps


def _replay_verdict_lines(rr, model: str) -> list[str]:
    """The replayed history, its verdict (a broken invariant or linearizability) and why."""
    from checker.explore import OK
    from checker.linearizability import explain

    lines = [f"history    {model} model; times are event numbers"] + history_lines(rr.history, model)
    if rr.violation is not None:
        _, name, message, _ = rr.violation
        lines.append(f"verdict    VIOLATION of \"{name}\": {message}")
    elif rr.verdict == OK:
        lines.append("verdict    OK: no invariant broken; the history is linearizable")
    else:
        lines.append(f"verdict    UNKNOWN: {rr.check.reason or 'the checker gave no verdict'}")
    return lines + [f"    {line}" for line in explain(rr.check, rr.history, model)]


def replay_report(path: str) -> tuple[dict, list[str], int]:
    """Replay a file step by step: (JSON object, human lines, exit code). The exit code:
    1 when the replay breaks a property (the recorded violation
    recurs, or another one occurs), 3 (unknown, never success) when the file records a
    violation that does not recur and nothing else breaks, else the replay's verdict."""
    from checker.explore import ExploreError, read_replay, replay, verdict_word

    try:
        protocol, schedule, obj = read_replay(path)
        rr = replay(protocol, schedule)
    except ExploreError as exc:
        raise BadInput(str(exc)) from None
    recorded = obj.get("violation") if isinstance(obj.get("violation"), dict) else None
    step_lines, steps = _replay_steps(rr, len(str(len(schedule))))
    lines = [f"replay     {path}: {protocol.label()}, {len(schedule)} deliveries", *step_lines,
             *_replay_verdict_lines(rr, protocol.model)]
    reproduced = None
    if recorded is not None:
        reproduced = rr.violation is not None and rr.violation[1] == recorded.get("name")
        lines.append(
            "recorded   " + (f"reproduces the recorded violation \"{recorded.get('name')}\""
                             if reproduced else f"does NOT reproduce the recorded violation \"{recorded.get('name')}\"")
        )
    out = {
        "replay": str(path),
        "protocol": protocol.name,
        "variant": protocol.variant,
        "params": dict(protocol.params),
        "verdict": verdict_word(rr.verdict),
        "initial_records": _records_json(rr.initial_records),
        "steps": steps,
        "terminal": rr.terminal,
        "history": rr.history.to_json(),
        "check": rr.check.to_json(rr.history, protocol.model),
        "violation": None if rr.violation is None else {
            "kind": rr.violation[0], "name": rr.violation[1], "message": rr.violation[2]},
        "reproduces_recorded": reproduced,
    }
    code = _exit_code(rr.verdict)
    if recorded is not None and not reproduced:
        if rr.violation is None:
            # the file promised a violation that did not happen: unknown (exit 3), never success,
            # and not the code of a violation that recurs (exit 1)
            lines.append(f"verdict    NOT REPRODUCED: the recorded violation \"{recorded.get('name')}\" did not "
                         "occur and nothing else broke (exit 3)")
            code = EXIT_UNKNOWN
        else:
            lines.append(f"verdict    NOT REPRODUCED: the recorded violation \"{recorded.get('name')}\" did not "
                         f"occur, but \"{rr.violation[1]}\" did (exit 1)")
            code = EXIT_NEGATIVE
    return out, lines, code


def list_lines() -> list[str]:
    from checker.explore import STRATEGIES
    from checker.protocols import PROTOCOLS

    lines = []
    for spec in PROTOCOLS.values():
        lines.append(f"{spec.name}: {spec.description}")
        for variant, (desc, buggy) in spec.variants.items():
            mark = "buggy  " if buggy else "correct"
            default = " (default)" if variant == spec.default_variant else ""
            lines.append(f"    {variant:<22} {mark} {desc}{default}")
        params = ", ".join(f"{k}={v}" for k, v in spec.defaults.items())
        lines.append(f"    parameters (--param NAME=VALUE): {params}")
    lines.append(f"strategies: {', '.join(STRATEGIES)}")
    return lines


def explore_cmd(
    protocol: str | None = typer.Option(None, "--protocol", help="Protocol to explore: reconfig or register (see --list)."),
    variant: str | None = typer.Option(None, "--variant", help="Variant of the protocol (default: its correct one; see --list)."),
    strategy: str = typer.Option("dpor", "--strategy", help="dfs | bfs | exhaustive | dpor | transdpor | keyaware | ired | dpired | dpliviola | random | pct | delay-bounded | bita (bfs: the first counterexample is a shortest one; bfs and exhaustive also judge eventually properties)."),
    max_schedules: int | None = typer.Option(None, "--max-schedules", help="Stop after N schedules (UNKNOWN unless a violation was found)."),
    max_time: float | None = typer.Option(None, "--max-time", help="Stop after S seconds (UNKNOWN unless a violation was found)."),
    seed: int = typer.Option(0, "--seed", help="Seed of random, pct and bita."),
    depth: int | None = typer.Option(None, "--depth", help="Cut schedules after D steps (the result is then UNKNOWN unless a violation was found; the DPOR family (dpor, transdpor, keyaware, ired, dpired, dpliviola) sees no races past the cut: use dfs to search every schedule up to D)."),
    delay_bound: int = typer.Option(3, "--delay-bound", help="delay-bounded: at most K deviations from the oldest-message-first schedule."),
    bug_depth: int = typer.Option(3, "--bug-depth", help="pct: the bug depth d (d - 1 priority change points)."),
    bita_criterion: str = typer.Option("pr", "--bita-criterion", help="bita: the ordering goals to cover between the receives of one actor: pr (pairs of receives), pcr (consecutive pairs), pbr (pairs around blocking receives: the replies an actor waits for). The goals found and covered are reported."),
    param: list[str] = typer.Option([], "--param", help="Protocol parameter NAME=VALUE (repeatable), e.g. --param replicas=3."),
    replay: str | None = typer.Option(None, "--replay", help="Replay a schedule file step by step instead of exploring; exit 1 when the violation it records recurs (or another one occurs), 3 when the recorded violation does not recur and nothing else breaks, 0 when a file recording no violation replays without one."),
    out_replay: str | None = typer.Option(None, "--out-replay", help="Where to write the replay file of a violation (default: a new temporary directory, named on stderr; never the current directory unasked)."),
    no_symmetry: bool = typer.Option(False, "--no-symmetry", help="Do not identify states that differ by a permutation of interchangeable actors (for comparison)."),
    no_state_cache: bool = typer.Option(False, "--no-state-cache", help="Run the DPOR family stateless (for comparison)."),
    coarse_clients: bool = typer.Option(False, "--coarse-clients", help="DPOR family: treat any two history-recording deliveries as dependent, not only a call against a return (for comparison)."),
    no_sleep_sets: bool = typer.Option(False, "--no-sleep-sets", help="dfs: explore every enabled event at every new state, without sleep sets (for comparison; the same states either way)."),
    no_local_commutation: bool = typer.Option(False, "--no-local-commutation", help="dfs and the DPOR family: let only statically independent events sleep, not two deliveries to one actor that commute in the state where they are taken (for comparison)."),
    progress: bool = typer.Option(False, "--progress", help="Show schedules, states and histories on stderr while exploring (default: on a terminal)."),
    no_shrink: bool = typer.Option(False, "--no-shrink", help="Show the violating schedule as found, without shrinking it."),
    list_: bool = typer.Option(False, "--list", help="List protocols, variants, parameters and strategies."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object and nothing else."),
    workers: int | None = typer.Option(None, "--workers", help="Split the exploration over N workers: random/pct by seed; dfs by subtrees below a frontier; the dpor family resumed where it stands (README.md, \"Exploring every schedule of a protocol\"). A dfs/dpor-family search first runs whole in this process for --split-after seconds and only a search not done by then is split: the dpor family then hands the open backtrack points of its stack, and the state-cache entries of its big subtrees, to the workers, new work going to a worker as soon as it has room. When it pays: on searches of more than a few seconds. Measured on a 2-core VM (medians of 3, load average about 1; docs/scale.md): --workers 2 took 13.5 s against 22.8 s in one process (1.69x faster) on reconfig with clients=2 instances=2 batches=4; every shipped protocol at its defaults took 0.85-1.02x one process's time (all but the ABD register done within the first second). dfs splits by subtrees that repeat what they share, so it waits 5 s before splitting."),
    split_after: float | None = typer.Option(None, "--split-after", help="With --workers, dfs/dpor family: seconds the search first runs whole in this process before it is split; a search done by then costs what one process costs (default: 1 for the dpor family, 5 for dfs/exhaustive; 0: split at once, by subtrees below a frontier, which explores much of the search several times)."),
    engine: str = typer.Option("local", "--engine", help="With --workers: local (process pool) or ray."),
    ray_address: str | None = typer.Option(None, "--ray-address", help="With --engine ray: auto or HOST:PORT (default: a local Ray instance)."),
    frontier_depth: int | None = typer.Option(None, "--frontier-depth", help="With --workers, dfs/dpor family: split the schedule tree at this depth (default: automatic)."),
) -> int:
    """Explore the schedules of a protocol written as actors (DS2's idea), check every
    history for linearizability and the protocol's invariants, and show the shortest
    counterexample found. Exit 0 OK, 1 a violation, 2 bad input, 3 unknown (a budget ran
    out, or the strategy is not exhaustive). With --replay FILE: 1 when the violation the
    file records recurs (or another one occurs), 3 when it does not recur and nothing else
    breaks, 0 when a file recording no violation replays without one."""
    if list_:
        _print_list(as_json)
        raise typer.Exit(EXIT_OK)
    if replay is not None:
        if protocol is not None or variant is not None or param:
            raise BadInput("--replay reads the protocol, variant and parameters from the file; drop --protocol/--variant/--param")
        raise typer.Exit(_print_replay(replay, as_json))
    if protocol is None:
        raise BadInput("--protocol is required (or --replay FILE, or --list)")
    params = _parse_params(param)
    if out_replay is not None:
        _check_out_path(out_replay)
    show = progress or (not as_json and sys.stderr.isatty())
    limits = dict(max_schedules=max_schedules, max_time=max_time, seed=seed, depth=depth, bug_depth=bug_depth,
                  shrink=not no_shrink, reductions=_reductions(no_symmetry, no_state_cache, coarse_clients,
                                                               no_sleep_sets, no_local_commutation))
    if workers is not None or engine != "local" or ray_address is not None:
        from ui.cli.engine import run_explore_split

        if split_after is not None and not split_after >= 0:
            raise BadInput(f"--split-after must be a number of seconds >= 0, got {split_after}")
        proto, result = run_explore_split(protocol, variant, strategy, params, engine=engine, workers=workers,
                                          ray_address=ray_address, frontier_depth=frontier_depth,
                                          split_after_s=split_after, **limits)
    else:
        bar, on_progress = _explore_bar(show)
        with bar:
            proto, result = run_explore(protocol, variant, strategy, params, delay_bound=delay_bound,
                                        bita_criterion=bita_criterion, progress=on_progress if show else None,
                                        **limits)
    replay_file, warning = _save_violation(result, proto, out_replay, strategy, seed)
    _print_result(result, proto, replay_file, as_json)
    if warning:
        typer.echo(warning, err=True)
    raise typer.Exit(_exit_code(result.verdict))


def register(app: typer.Typer) -> None:
    """Add the ``explore`` verb to the CLI."""
    app.command("explore")(explore_cmd)


def list_json() -> dict:
    """The ``--list --json`` object: every protocol (description, default variant, variants
    with their description and whether they are buggy, parameters) and the strategies."""
    from checker.explore import STRATEGIES
    from checker.protocols import PROTOCOLS

    return {
        "protocols": {
            s.name: {
                "description": s.description,
                "default_variant": s.default_variant,
                "variants": {v: {"description": d, "buggy": b} for v, (d, b) in s.variants.items()},
                "parameters": dict(s.defaults),
            }
            for s in PROTOCOLS.values()
        },
        "strategies": list(STRATEGIES),
    }


def _print_list(as_json: bool) -> None:
    """``--list``: the protocols and strategies, as one JSON object or as lines."""
    if as_json:
        emit_json(list_json())
    else:
        typer.echo("\n".join(list_lines()))


def _print_replay(path: str, as_json: bool) -> int:
    """``--replay FILE``: replay it step by step, print the report; its exit code."""
    obj, lines, code = replay_report(path)
    if as_json:
        emit_json(obj)
    else:
        typer.echo("\n".join(lines))
    return code


def _reductions(no_symmetry: bool, no_state_cache: bool, coarse_clients: bool, no_sleep_sets: bool,
                no_local_commutation: bool):
    """The :class:`checker.explore.Reductions` the ``--no-...``/``--coarse-clients`` flags ask for."""
    from checker.explore import Reductions

    return Reductions(symmetry=not no_symmetry, state_cache=not no_state_cache, coarse_clients=coarse_clients,
                      sleep_sets=not no_sleep_sets, local_commutation=not no_local_commutation)


def _save_violation(result, proto, out_replay: str | None, strategy: str, seed: int) -> tuple[str | None, str | None]:
    """Write the replay file of ``result``'s violation (none: nothing to write) to
    ``out_replay``, or into a new temporary directory named on stderr. Returns (the file
    written or None, a warning to print after the result or None); a file that cannot be
    written where --out-replay says is BadInput."""
    if result.violation is None:
        return None, None
    from checker.explore import write_replay

    try:
        target = Path(out_replay) if out_replay else _default_replay_path(proto)
        write_replay(target, proto, result.violation.schedule, result.violation, strategy, seed)
    except OSError as exc:
        if out_replay:
            raise BadInput(f"cannot write replay file {out_replay!r}: {exc.strerror or exc}") from None
        return None, f"packrat: warning: could not write a replay file: {exc.strerror or exc}"
    if not out_replay:
        typer.echo(f"packrat: wrote the replay file {target}", err=True)
    return str(target), None


def _print_result(result, proto, replay_file: str | None, as_json: bool) -> None:
    """The exploration's outcome on stdout: one JSON object, or the human report."""
    if as_json:
        obj: dict[str, Any] = result.to_json()
        obj["model"] = proto.model
        obj["replay_file"] = replay_file
        emit_json(obj)
    else:
        typer.echo(format_result(result, proto, replay_file))
