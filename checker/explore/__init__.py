"""Schedule exploration: run a protocol's actors over many schedules and judge every history.

``explore(protocol, strategy)`` walks the schedules (orders of message deliveries, and faults
where budgets allow) that the protocol's :class:`~checker.actors.System` can take. On every state
it checks the protocol's invariants; where a schedule ends it checks the quiescent invariants and
the history against the protocol's sequential model (:func:`checker.linearizability.check`),
once per distinct history. The first violation stops the search; its schedule is shrunk (prefix
cut, then delta debugging over the delivery list, keeping a valid schedule that still violates the
same property) and returned with its history and the checker's explanation.

The package: :mod:`~checker.explore.harness` (result types, budgets, progress, the visited set),
one module per strategy family (:mod:`~checker.explore.tree`: ``dfs``, ``exhaustive``,
``delay-bounded``; :mod:`~checker.explore.bfs`: ``bfs``; :mod:`~checker.explore.dpor`: ``dpor``,
``transdpor``, ``keyaware``; :mod:`~checker.explore.ired`: ``ired``, ``dpired``;
:mod:`~checker.explore.liviola`: ``dpliviola``; :mod:`~checker.explore.walks`: ``random``,
``pct``; :mod:`~checker.explore.bita`: ``bita``),
:mod:`~checker.explore.properties` (properties with expectations),
:mod:`~checker.explore.shrinking`, :mod:`~checker.explore.replay` (replay files), and
:data:`STRATEGY_TABLE` from name to function.

Strategies (:data:`STRATEGIES`):

``dfs``
    exhaustive depth-first search over states, pruning states already seen (the visited set holds
    the states themselves, compared by value: a hash collision can never prune a new state; with
    symmetry, one representative per orbit of interchangeable actors), with sleep sets (a step that
    commutes with one explored before is not taken again; the same states, fewer transitions).
    A *schedule* is a path of the search: it ends at a terminal state, at the depth bound, where
    it joins a state already explored, or where every enabled event is asleep.
``bfs``
    breadth-first search over states, pruning states already seen (Stateright's BFS): the first
    counterexample found is a shortest one, reported as found (no shrinking); its length is its
    depth (:mod:`checker.explore.bfs`).
``exhaustive``
    every schedule, without pruning (what DS2 calls exhaustive exploration).
``dpor``
    dynamic partial-order reduction with sleep sets, stateful by default (see
    :mod:`checker.explore.dpor` for the dependency relation and the state-caching correction).
``transdpor``
    DPOR exploiting the transitivity of the actor dependency (Tasharofi et al., FORTE 2012, as
    DS2 implements it).
``keyaware``
    TransDPOR with DS2's key-aware dependency ("LiViola"): deliveries to the same actor commute
    when their messages touch different keys (:meth:`~checker.actors.Actor.key_of`), or when both
    only read (:meth:`~checker.actors.Actor.read_only`; unordered networks). Distinct histories
    are then distinct per key (the models judge keys independently).
``ired``
    TransDPOR with DS2's IRed enabler rule: when a receive that races is enabled by a chain of
    earlier receives, the backtrack point is the first receive of that chain, where it is enabled
    in the racing state (:mod:`checker.explore.ired`, which says how it differs from DS2's).
``dpired``
    plain DPOR with IRed's enabler rule.
``dpliviola``
    DPIRed with the key-aware dependency of ``keyaware`` (DS2's DPLiViola made sound:
    :mod:`checker.explore.liviola`); distinct histories are distinct per key.
``random``
    seeded random walks: each step picks uniformly among enabled events.
``pct``
    probabilistic concurrency testing (Burckhardt et al., ASPLOS 2010) with channels as threads;
    PCT's per-run probability bound is :attr:`ExploreResult.pct_bound`.
``delay-bounded``
    delay bounding (Emmi, Qadeer, Rakamaric, POPL 2011) over oldest-message-first: complete (and
    able to say OK) when the bound never cut a choice.
``bita``
    coverage-guided scheduling for actor programs (Tasharofi, Pradel, Lin, Johnson, ASE 2013;
    :mod:`checker.explore.bita`): schedules generated to cover ordering goals between the receives
    of one actor, under the criterion ``bita_criterion`` (``pr``: pairs of receives, ``pcr``:
    consecutive ones, ``pbr``: pairs around blocking receives, the replies an actor waits for);
    seeded, never OK (a bug-finding heuristic); reports the goals found and covered in
    :attr:`ExploreResult.coverage`.

Reductions (:class:`Reductions`, each its own keyword of :func:`explore`): ``symmetry``
(protocols declare interchangeable actors), ``state_cache`` (stateful DPOR), ``coarse_clients``
(off: the finer client dependency), ``sleep_sets`` (dfs), ``local_commutation`` (two deliveries
to one actor that commute where they are taken fall asleep, in dfs and the DPOR family). Each is
sound: the tests compare the distinct histories and the invariant violations with plain stateful
DFS (no reduction) on every shipped protocol and variant and on pseudo-random actor systems, and
dfs's visited states with and without sleep sets.

Properties with expectations (:mod:`checker.explore.properties`): a protocol may declare
``always``, ``sometimes`` and ``eventually`` properties; each gets a
:class:`~checker.explore.properties.PropertyResult` in :attr:`ExploreResult.properties`. A
counterexample (always, eventually) is a violation like a broken invariant; a ``sometimes``
property that a complete search never reached makes the verdict VIOLATION (the model is vacuous
for it; there is no schedule to show). Which strategies judge which kind completely is
:data:`PROPERTY_STRATEGIES`: ``always`` and ``sometimes`` need every reachable state visited
(``dfs``, ``bfs``, ``exhaustive``; the DPOR family visits one interleaving per equivalence class,
the sampling strategies and delay bounding some schedules only); ``eventually`` needs every
complete schedule judged (``bfs``, which keeps the pending properties in its visited key, and
``exhaustive``; state caching in ``dfs`` and the DPOR family can hide a schedule on which the
property never held). Another strategy reports ``unknown`` for a kind it does not judge, with the
reason, and the verdict ignores it; a witness or counterexample any strategy finds stands.

Verdicts are :class:`~checker.linearizability.Verdict` values: ``OK`` only when a complete
strategy finished within its budgets and every history was judged linearizable; ``ILLEGAL``
(printed VIOLATION, :func:`verdict_word`) with the shrunk counterexample; ``UNKNOWN`` otherwise (a
budget hit, an incomplete strategy, a history the checker could not decide in time). A budget hit
is never OK. Budgets are checked on every step of every search, during shrinking and while
judging histories.

Everything is a pure function of its inputs and an explicit seed; results are values.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from checker.explore.bfs import bfs as _bfs
from checker.explore.bita import DEFAULT_CRITERION as _DEFAULT_CRITERION
from checker.explore.bita import bita as _bita
from checker.explore.bita import check_criterion as _check_criterion
from checker.explore.dpor import dpor as _dpor
from checker.explore.ired import dpired as _dpired
from checker.explore.ired import ired as _ired
from checker.explore.liviola import dpliviola as _dpliviola
from checker.explore.harness import (
    OK,
    UNKNOWN,
    VIOLATION,
    Coverage,
    ExploreError,
    ExploreProgress,
    ExploreResult,
    Found,
    Reductions,
    Run,
    Stop,
    Violation,
    gc_paused,
    key_projection,
    require_int,
    require_seconds,
    verdict_word,
)
from checker.explore.replay import (
    REPLAY_SCHEMA,
    ReplayResult,
    ReplayStep,
    read_replay,
    replay,
    replay_json,
    write_replay,
)
from checker.explore.properties import ALWAYS, EVENTUALLY, SOMETIMES, Property, PropertyResult
from checker.explore.shrinking import shrink
from checker.explore.tree import delay_bounded as _delay_bounded
from checker.explore.tree import dfs as _dfs
from checker.explore.tree import exhaustive as _exhaustive
from checker.explore.walks import pct as _pct
from checker.explore.walks import random_walks as _random
from checker.linearizability import Verdict, explain

__all__ = [
    "COMPLETE_STRATEGIES",
    "OK",
    "PROPERTY_STRATEGIES",
    "REPLAY_SCHEMA",
    "STRATEGIES",
    "STRATEGY_TABLE",
    "UNKNOWN",
    "VIOLATION",
    "Coverage",
    "ExploreError",
    "ExploreProgress",
    "ExploreResult",
    "Property",
    "PropertyResult",
    "Reductions",
    "ReplayResult",
    "ReplayStep",
    "Violation",
    "explore",
    "key_projection",
    "make_violation",
    "read_replay",
    "replay",
    "replay_json",
    "shrink",
    "verdict_word",
    "write_replay",
]

DEFAULT_INCOMPLETE_SCHEDULES = 1000

# name -> function(run, options) running the search (raises Stop to end it early)
STRATEGY_TABLE: dict[str, Callable[[Run, dict], None]] = {
    "dfs": lambda run, o: _dfs(run),
    "bfs": lambda run, o: _bfs(run),
    "exhaustive": lambda run, o: _exhaustive(run),
    "dpor": lambda run, o: _dpor(run, trans=False, keyed=False),
    "transdpor": lambda run, o: _dpor(run, trans=True, keyed=False),
    "keyaware": lambda run, o: _dpor(run, trans=True, keyed=True),
    "ired": lambda run, o: _ired(run),
    "dpired": lambda run, o: _dpired(run),
    "dpliviola": lambda run, o: _dpliviola(run),
    "random": lambda run, o: _random(run, o["seed"]),
    "pct": lambda run, o: _pct(run, o["seed"], o["bug_depth"]),
    "delay-bounded": lambda run, o: _delay_bounded(run, o["delay_bound"]),
    "bita": lambda run, o: _bita(run, o["seed"], o.get("bita_criterion", _DEFAULT_CRITERION)),
}
STRATEGIES = tuple(STRATEGY_TABLE)
COMPLETE_STRATEGIES = frozenset({"dfs", "bfs", "exhaustive", "dpor", "transdpor", "keyaware", "ired", "dpired",
                                 "dpliviola"})
SAMPLING_STRATEGIES = frozenset({"random", "pct", "bita"})
SHORTEST_STRATEGIES = frozenset({"bfs"})  # their first counterexample is a shortest one: never shrunk
# property kind -> the strategies that judge it completely (see the module docstring)
PROPERTY_STRATEGIES: dict[str, frozenset[str]] = {
    ALWAYS: frozenset({"dfs", "bfs", "exhaustive"}),
    SOMETIMES: frozenset({"dfs", "bfs", "exhaustive"}),
    EVENTUALLY: frozenset({"bfs", "exhaustive"}),
}


def explore(
    protocol,
    strategy: str = "dpor",
    *,
    variant: str | None = None,
    params: dict | None = None,
    max_schedules: int | None = None,
    max_time: float | None = None,
    depth: int | None = None,
    seed: int = 0,
    delay_bound: int = 3,
    bug_depth: int = 3,
    bita_criterion: str = _DEFAULT_CRITERION,
    check_timeout: float | None = 10.0,
    shrink_counterexample: bool = True,
    collect_histories: bool = False,
    stop_on_violation: bool = True,
    symmetry: bool = True,
    state_cache: bool = True,
    coarse_clients: bool = False,
    sleep_sets: bool = True,
    local_commutation: bool = True,
    progress: Callable[[ExploreProgress], None] | None = None,
) -> ExploreResult:
    """Explore ``protocol`` (a :class:`~checker.protocols.Protocol`, or a registered name built
    with ``variant`` and ``params``) with ``strategy`` (one of :data:`STRATEGIES`).

    ``bfs``'s counterexample is a shortest one and is never shrunk (``shrink_counterexample``
    applies to the other strategies). The protocol's properties with expectations are judged as
    :data:`PROPERTY_STRATEGIES` says and reported in :attr:`ExploreResult.properties`.

    Budgets: ``max_schedules``, ``max_time`` (seconds, checked on every step, and covering
    shrinking), ``depth`` (steps per schedule; a cut schedule makes the verdict UNKNOWN, and the
    DPOR family sees no races beyond the cut and runs stateless, so it may miss a violation
    within the depth that ``dfs`` or ``exhaustive`` would find). random and pct without a budget
    get ``max_schedules=1000`` (bita too). ``seed`` drives random, pct and bita; ``delay_bound`` is
    delay-bounded's K; ``bug_depth`` is PCT's d; ``bita_criterion`` is bita's coverage criterion
    (``pr``, ``pcr`` or ``pbr``; :mod:`checker.explore.bita`). ``check_timeout``: seconds per history check.
    Reductions (see :class:`Reductions`): ``symmetry``, ``state_cache``, ``coarse_clients``,
    ``sleep_sets``, ``local_commutation``.
    ``progress``: called with an :class:`ExploreProgress` snapshot at most every 0.25 s during
    the search and once at its end (from the exploring thread; keep it cheap). Raises
    ExploreError (or ProtocolError) naming a bad argument.
    """
    started = time.perf_counter()
    protocol = _protocol_of(protocol, variant, params)
    max_schedules = _checked_arguments(protocol, strategy, max_schedules, max_time, depth, seed, delay_bound,
                                       bug_depth, progress)
    _check_criterion(bita_criterion)
    reductions = Reductions(symmetry=bool(symmetry), state_cache=bool(state_cache), coarse_clients=bool(coarse_clients),
                            sleep_sets=bool(sleep_sets), local_commutation=bool(local_commutation))
    run = Run(protocol, max_schedules, max_time, depth, check_timeout, stop_on_violation, reductions, progress)
    if max_time is not None:  # the budget started when explore was called (building counts)
        run.deadline = started + max_time
    options = {"seed": seed, "bug_depth": bug_depth, "delay_bound": delay_bound, "bita_criterion": bita_criterion}
    try:
        with gc_paused():
            STRATEGY_TABLE[strategy](run, options)
    except Stop:
        pass
    elapsed = time.perf_counter() - run.started
    complete = (strategy not in SAMPLING_STRATEGIES and not run.budget_hit and not run.cut and not run.delay_cut
                and (run.found is None or not stop_on_violation))
    properties = run.props.results(strategy, complete, _incomplete_reason(run, strategy, depth, delay_bound,
                                                                          check_timeout), PROPERTY_STRATEGIES)
    verdict, reason, violation = _verdict(protocol, run, strategy, complete, depth, delay_bound, check_timeout,
                                          shrink_counterexample and strategy not in SHORTEST_STRATEGIES)
    if verdict is OK and any(p.failed for p in properties):
        verdict, reason = VIOLATION, _vacuity_reason(properties)
    if progress is not None:
        progress(run.snapshot())
    return ExploreResult(
        verdict=verdict,
        protocol=protocol.name,
        variant=protocol.variant,
        params=protocol.params,
        strategy=strategy,
        schedules=run.schedules,
        states=len(run.seen),
        transitions=run.transitions,
        distinct_histories=len(run.checked),
        elapsed_s=elapsed,
        complete=complete,
        reason=reason,
        first_violation_at=run.first_violation_at,
        violation=violation,
        unknown_histories=run.unknown_histories,
        seed=seed if strategy in SAMPLING_STRATEGIES else None,
        pct_bound=run.pct_bound,
        histories=frozenset(run.checked) if collect_histories else None,
        reductions=reductions,
        violations=frozenset(run.violated) if collect_histories else None,
        properties=properties,
        coverage=None if run.coverage is None else run.coverage.result(),
    )


def _incomplete_reason(run: Run, strategy: str, depth: int | None, delay_bound: int,
                       check_timeout: float | None) -> str:
    """Why a property could not be judged held (or never reached) by this run."""
    if run.found is not None and run.stop_on_violation:
        return f"the search stopped at the first violation ({run.found.name})"
    return _unknown_reason(run, strategy, depth, delay_bound, check_timeout)


def _vacuity_reason(properties: tuple[PropertyResult, ...]) -> str:
    """The verdict's reason when only ``sometimes`` properties failed (never reached)."""
    names = ", ".join(f'"{p.name}"' for p in properties if p.failed)
    return f"sometimes property {names} is never reached: no reachable state satisfies it (the model is vacuous for it)"


def _verdict(protocol, run: Run, strategy: str, complete: bool, depth: int | None, delay_bound: int,
             check_timeout: float | None, do_shrink: bool) -> tuple[Verdict, str, Violation | None]:
    """The verdict of a finished search, its reason and its counterexample: VIOLATION with the
    first violation found (shrunk when ``do_shrink``, within the run's deadline); OK when the
    search was ``complete`` and judged every history; else UNKNOWN with why
    (:func:`_unknown_reason`)."""
    if run.found is not None:
        violation = make_violation(protocol, run.found, check_timeout, do_shrink, run.deadline)
        return VIOLATION, violation.message, violation
    if complete and run.unknown_histories == 0:
        return OK, "", None
    return UNKNOWN, _unknown_reason(run, strategy, depth, delay_bound, check_timeout), None


def _protocol_of(protocol: Any, variant: str | None, params: dict | None):
    """The :class:`~checker.protocols.Protocol` that :func:`explore` was given: ``protocol``
    itself, or the registered name built with ``variant`` and ``params``. ExploreError (or
    ProtocolError) names a bad value."""
    from checker.protocols import Protocol, build

    if isinstance(protocol, str):
        return build(protocol, variant, **(params or {}))
    if not isinstance(protocol, Protocol):
        raise ExploreError(f"protocol must be a Protocol or a registered name, not {protocol!r}")
    if variant is not None or params:
        raise ExploreError("variant and params apply only when the protocol is given by name")
    return protocol


def _checked_arguments(protocol, strategy: str, max_schedules: int | None, max_time: float | None,
                       depth: int | None, seed: int, delay_bound: int, bug_depth: int,
                       progress: Callable[[ExploreProgress], None] | None) -> int | None:
    """Validate :func:`explore`'s arguments (ExploreError names the first bad one, in the order
    of the checks below); returns the schedule budget to use (random and pct without a budget
    get :data:`DEFAULT_INCOMPLETE_SCHEDULES`)."""
    if strategy not in STRATEGY_TABLE:
        raise ExploreError(f"unknown strategy {strategy!r} (expected one of {', '.join(STRATEGIES)})")
    for name, value in (("max_schedules", max_schedules), ("depth", depth)):
        if value is not None:
            require_int(name, value, 1, "an integer >= 1")
    require_seconds("max_time", max_time)
    require_int("delay_bound", delay_bound, 0, "a non-negative integer")
    require_int("bug_depth", bug_depth, 1, "a positive integer")
    if strategy in ("pct", "delay-bounded") and protocol.system.faults.any:
        raise ExploreError(f"strategy {strategy} schedules deliveries only and injects no faults; use random, dfs or dpor")
    require_int("seed", seed, None, "an integer")
    if progress is not None and not callable(progress):
        raise ExploreError(f"progress must be a callable, not {progress!r}")
    if strategy in SAMPLING_STRATEGIES and max_schedules is None and max_time is None:
        return DEFAULT_INCOMPLETE_SCHEDULES
    return max_schedules


def _unknown_reason(run: Run, strategy: str, depth: int | None, delay_bound: int, check_timeout: float | None) -> str:
    """Why a finished search without a violation is UNKNOWN (pure: it reads ``run``)."""
    if strategy in SAMPLING_STRATEGIES:
        return f"{strategy} is not exhaustive: no violation in {run.schedules} schedules"
    if run.budget_hit:
        return f"{run.budget_hit} before the search completed; no violation in {run.schedules} schedules"
    if run.delay_cut:
        return f"no violation within {delay_bound} delays ({run.schedules} schedules); larger delays not explored"
    if run.cut and depth is not None:
        return f"schedules were cut at depth {depth}; no violation in {run.schedules} schedules"
    if run.cut:
        return f"the state graph has a cycle, which stateful DPOR cuts; no violation in {run.schedules} schedules"
    return f"{run.unknown_histories} histories could not be judged within {check_timeout} s each"


def make_violation(protocol, found: Found, timeout: float | None, do_shrink: bool,
                   deadline: float | None = None) -> Violation:
    """The counterexample of ``found``: its schedule shrunk (when ``do_shrink``, within
    ``deadline``), replayed from the initial state, with its history and explanation (also used
    by :mod:`checker.explore.split` to merge a split's first violation)."""
    schedule = shrink(protocol, found.path, found, timeout=timeout, deadline=deadline) if do_shrink else found.path
    rr = replay(protocol, schedule, timeout=timeout)
    explanation: tuple[str, ...]
    message = found.message
    if found.kind == "linearizability":
        explanation = tuple(explain(rr.check, rr.history, protocol.model))
    elif found.kind in (ALWAYS, EVENTUALLY):
        explanation = (f"{found.kind} property violated: {found.name}", message)
    else:
        # the shrunk schedule may word the same invariant's breach differently
        if rr.violation is not None and rr.violation[1] == found.name:
            message = rr.violation[2]
        explanation = (f"invariant violated: {found.name}", message)
    return Violation(
        kind=found.kind,
        name=found.name,
        message=message,
        schedule=tuple(schedule),
        found=found.path,
        history=rr.history,
        explanation=explanation,
        check=rr.check,
        quiescent=found.quiescent,
    )
