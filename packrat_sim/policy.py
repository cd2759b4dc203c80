"""The online reconfiguration policy: which plan should serve the load right now?

One module, used by the simulator (:mod:`packrat_sim.simulator`) and by the real
runner's serving loop (``real_runner.serving``), so that both take the same decisions
from the same observations. Pure: a frozen :class:`PolicyConfig`, a frozen
:class:`PolicyState`, a :class:`PlanCatalog` (the candidate plans and their expected
latency per batch size, computed from a profile) and two functions:

* :func:`observe` ``(config, state, t_ms, size, backlog)``: a batch of ``size`` requests
  was formed at ``t_ms``; ``backlog`` requests were still waiting after it was taken;
* :func:`decide` ``(config, catalog, state, t_ms, switch)``: the plan to run from now on,
  with the reason, the predicted gain and the modelled switch cost.

The rule (all times in ms):

1. **Observe what the load forms.** The policy keeps the sizes of the batches formed in
   the last ``window_ms`` (default 2 s) -- not the queue depth, which depends on the plan
   running.
2. **Objective.** For a plan p and the window's histogram h (batches of size n: h[n]),
   the request-weighted expected latency is ``J(p) = sum_n h[n] n E[p, n] / sum_n h[n] n``,
   where ``E[p, n]`` is the expected latency of a batch of n on p: the batch is split as
   the dispatcher splits it (:func:`split_batch`) and waits for the slowest of its k
   instances, so E is the expected maximum of k independent draws from the profile's
   samples of each cell (the empirical distributions; a cell without samples is
   deterministic). Candidates: the optimizer's plan for every batch size 1..max_batch
   (deduplicated).
   Only plans with at least ``capacity_floor`` of the best full-batch throughput are
   candidates (besides the current plan); plans within ``min_gain`` of the least J are
   tied, and the tie goes to the highest throughput (differences that small are noise).
3. **Gate.** The current plan is replaced only when it loses ``confirmations``
   consecutive decisions (default 2; by whichever candidate leads, the switch going to
   the last one) and each time the best plan's predicted gain repays the switch:
   ``(J(cur) - J(best)) * payback_ms >= J(cur) * cost_ms`` where ``cost_ms`` is the price
   of the kind of switch the runner would perform (:meth:`SwitchModel.kind`, the one
   rule of :mod:`packrat_sim.switching`; :meth:`SwitchModel.price_ms`): about
   0.1 ms for a re-route (same thread counts), tens of ms for a retarget (warm workers
   change threads and cores in place), seconds of slowed serving for a respawn; and the
   gain is at least ``min_gain`` of J(cur). The :class:`Decision` carries the kind.
4. **Overload.** When the backlog left after forming a batch is >= ``max_batch`` in the
   last observation, the objective is throughput: the plan with the most requests per ms
   on full batches (``max_batch / E[p, max_batch]``), J being the full-batch time; the
   same gate applies (a respawn under overload slows the serving instances exactly when
   capacity is short, so a small throughput gain is not worth it).
5. **First plan.** :func:`first_plan` gives the plan for the first formed batch (its
   size is known when the first batch forms).

Decisions are taken only when a batch forms (at most one per ``decide_every_ms``), so
an idle server costs nothing: time without arrivals needs no computation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from packrat_sim import validate
from packrat_sim.errors import PackratError
from packrat_sim.optimizer import OptimizerError, OptimizerOptions, PlanTable
from packrat_sim.plan import Plan
from packrat_sim.profile import Profile, ProfileError
from packrat_sim.spec import bool_word, key_value, split_items
from packrat_sim.switching import REROUTE, RETARGET, SWITCH_KINDS, switch_kind

POLICY_NAMES = ("packrat", "packrat-ewma")


class PolicyError(PackratError):
    """Bad policy configuration, observation or name; the message names the value."""


def _num(value: object, what: str, *, lo: float = 0.0, strict: bool = False) -> float:
    """``value`` as a float: PolicyError ``{what} must be a finite number, got ...`` unless it is
    one, then ``{what} must be >= lo`` (``> lo`` when ``strict``) ``, got ...`` unless in range."""
    validate.finite(value, what, error=PolicyError)
    if strict:
        return validate.finite(value, what, above=lo, error=PolicyError, expected=f"> {lo:g}")
    return validate.finite(value, what, low=lo, error=PolicyError, expected=f">= {lo:g}")


# ------------------------------------------------------------------ configuration


@dataclass(frozen=True)
class SwitchModel:
    """What a reconfiguration costs, by kind, as the simulator models it and the policy prices it.

    The kind is :func:`packrat_sim.switching.switch_kind`'s (the one rule, shared with the
    runner): :meth:`kind` asks it, :meth:`price_ms` prices it. All times in ms.

    * **re-route** (same thread counts, new split): the dispatcher changes its routing
      between two batches, ``reroute_ms`` (0.4 ms, measured) later; no process changes.
    * **retarget** (live workers change their thread count and cores in place; the new
      plan's extra instances come from warm standby workers; the ones it does not need
      park): routing holds, the in-flight batch drains (no loss: it was being served
      anyway), the workers retarget (``retarget_ms``), then the first batch on the new
      configuration runs ``first_batch_factor`` times slower (OpenMP pools rebuilt, cold
      caches). Price: ``retarget_ms + (first_batch_factor - 1) * first-batch ms``.
      Defaults measured by ``benchmarks/adaptive.py --measure-reconfig`` on this project's
      2-core VM (tiny-cnn, 5 plan pairs each way, medians of 5): decision to the first new
      batch 1.1-1.6 ms for a retarget (2.5-3.6 ms inside ``run --load``), hence 2 ms; the
      first batch after it 1.23-1.43x its steady state, hence 1.3x; a re-route 0.36-0.48 ms,
      hence 0.4 ms.
    * **respawn** (new processes: more instances than live plus standby workers): the new
      instances start beside the old ones (DESIGN.md's protocol):

      - **start-up**, ``start_ms``: each new instance is one busy process (spawn, import,
        build the model). With ``live`` = the serving threads + one per starting instance,
        ``oversub = live / cores``; when ``oversub > 1`` a serving instance with t threads
        runs ``1 + startup_sensitivity * (oversub - 1) * min(t, startup_threads_cap)``
        times slower (multi-threaded instances suffer more: their threads wait for each
        other at every barrier; only t <= 2 was measured, so larger t is capped there).
      - **warm-up**: every new instance runs ``warmup_iterations`` inferences of its
        sub-batch; now all threads are live, and every instance on the shared cores runs
        ``oversub * warmup_slowdown`` times slower (``oversub`` = all live threads / cores;
        no extra factor without oversubscription).

      Defaults measured on this project's 2-core VM with tiny-cnn (README, "Reconfiguration
      cost"; ``benchmarks/adaptive.py --measure-reconfig``): start-up 3.6-4.7 s; a serving
      2 x 1t pool 1.79x slower beside one starting instance (model: 1.85x), a serving
      1 x 2t pool 4.7x slower beside two (model: 4.4x); warm-up 2.2x at oversubscription
      2 (model: 2.2x). The machine was shared and loaded: treat them as a rough scale.

    ``standby``: warm parked workers beside the serving ones. None (the default): the
    runner keeps one warm worker per core, so every plan on the cores (at most one
    instance per core) retargets and only an explicit ``standby`` makes a respawn
    possible; an integer n: exactly n warm workers wait beside the serving ones.
    """

    start_ms: float = 4000.0
    startup_sensitivity: float = 1.7
    startup_threads_cap: int = 2
    warmup_iterations: int = 2
    warmup_slowdown: float = 1.1
    reroute_ms: float = 0.4
    retarget_ms: float = 2.0
    first_batch_factor: float = 1.3
    standby: int | None = None

    def __post_init__(self) -> None:
        _num(self.start_ms, "start_ms")
        _num(self.startup_sensitivity, "startup_sensitivity")
        _num(self.warmup_slowdown, "warmup_slowdown", lo=1.0)
        validate.integer(self.warmup_iterations, "warmup_iterations", low=0, error=PolicyError, numpy=True)
        validate.integer(self.startup_threads_cap, "startup_threads_cap", low=1, error=PolicyError, numpy=True)
        _num(self.reroute_ms, "reroute_ms")
        _num(self.retarget_ms, "retarget_ms")
        _num(self.first_batch_factor, "first_batch_factor", lo=1.0)
        if self.standby is not None:
            validate.integer(self.standby, "standby", low=0, error=PolicyError, numpy=True)

    def standby_workers(self, old: Plan, cores: int) -> int:
        """Warm parked workers beside ``old``'s serving ones: ``standby``, or (None) the
        rest of one worker per core, ``max(0, cores - len(old.instances))``."""
        if self.standby is not None:
            return int(self.standby)
        return max(0, int(cores) - len(old.instances))

    def kind(self, old: Plan, new: Plan, cores: int) -> str:
        """The kind of switch old -> new on ``cores`` cores: :func:`switching.switch_kind`
        with :meth:`standby_workers` (``re-route``, ``retarget`` or ``respawn``). Pure."""
        return switch_kind(old, new, self.standby_workers(old, cores))

    def price_ms(self, kind: str, old: Plan, new: Plan, cores: int, warm_batch_ms: float) -> float:
        """The modelled loss (ms of serving time) of a switch of ``kind`` old -> new, the new
        plan's batch taking ``warm_batch_ms``: ``reroute_ms``; ``retarget_ms + (first_batch_factor
        - 1) * warm_batch_ms``; or :meth:`penalty_ms` for a respawn. PolicyError for an unknown
        kind. Any kind may be priced for any pair (a manual reconfigure names its kind). Pure."""
        validate.one_of(kind, "switch kind", SWITCH_KINDS, error=PolicyError)
        if kind == REROUTE:
            return self.reroute_ms
        if kind == RETARGET:
            return self.retarget_ms + (self.first_batch_factor - 1.0) * warm_batch_ms
        return self.penalty_ms(old, new, cores, warm_batch_ms)

    def pause_ms(self, kind: str) -> float:
        """How long routing holds after the old plan drained (ms): ``reroute_ms`` for a
        re-route, ``retarget_ms`` for a retarget, 0 for a respawn (the old plan serves
        while the new processes start)."""
        validate.one_of(kind, "switch kind", SWITCH_KINDS, error=PolicyError)
        return {REROUTE: self.reroute_ms, RETARGET: self.retarget_ms}.get(kind, 0.0)

    def startup_factor(self, threads: int, oversub: float) -> float:
        """Slowdown (>= 1) of a serving instance with ``threads`` threads during start-up."""
        t = min(int(threads), self.startup_threads_cap)
        return 1.0 if oversub <= 1.0 else 1.0 + self.startup_sensitivity * (oversub - 1.0) * t

    def warmup_factor(self, oversub: float) -> float:
        """Slowdown (>= 1) of every instance on the shared cores during warm-up."""
        return 1.0 if oversub <= 1.0 else oversub * self.warmup_slowdown

    def penalty_ms(self, old: Plan, new: Plan, cores: int, warm_batch_ms: float) -> float:
        """Slowed time (ms) of the serving instances during one respawn old -> new:
        ``start_ms * (startup factor - 1) + warm-up duration * (warm-up factor - 1)``, the
        warm-up lasting ``warmup_iterations`` batches of ``warm_batch_ms`` at the shared
        speed; the start-up factor is the worst over the old instances. Requests served
        meanwhile lose about this fraction of their latency: the policy's gate weighs it
        against the gain over ``payback_ms``."""
        o_start = (old.threads_used + len(new.instances)) / cores
        f_start = max(self.startup_factor(i.threads, o_start) for i in old.instances)
        f_warm = self.warmup_factor((old.threads_used + new.threads_used) / cores)
        warm = self.warmup_iterations * warm_batch_ms * f_warm
        return self.start_ms * (f_start - 1.0) + warm * (f_warm - 1.0)


@dataclass(frozen=True)
class PolicyConfig:
    """Parameters of the ``packrat`` policy (times in ms).

    * ``window_ms`` (2000): how far back formed batch sizes are kept;
    * ``decide_every_ms`` (250): at most one decision per this interval (taken when a
      batch forms, never while idle);
    * ``min_batches`` (4): fewer batches in the window -> no decision;
    * ``confirmations`` (2): the current plan must lose (by the gate) this many decisions
      in a row, whichever candidate leads (near-equal candidates trade the lead on noise;
      the confirmation guards against leaving on one noisy window, and must not delay a
      needed switch because the lead changed hands);
    * ``payback_ms`` (10000): the predicted gain must repay the switch's price within this
      time (a respawn's seconds need a long horizon; a retarget's tens of ms repay at once);
    * ``min_gain`` (0.03): relative gain below this is noise, not a reason to switch; for
      the same reason plans within this fraction of the best J count as tied, and a tie
      goes to the higher throughput (as ``first_slack`` does for the first plan);
    * ``first_slack`` (0.25): the first plan is the highest-throughput plan among those
      within this fraction of the best expected latency for the first formed batch (one
      batch is a poor guess of the load: a plan for one request alone is often hopeless
      at a higher rate);
    * ``capacity_floor`` (0.9): in latency mode only plans with at least this fraction
      of the best full-batch throughput are candidates. A retarget leaves a plan in tens
      of ms, but the policy sees a surge only when the window's batches show it (1-2.5 s
      after a step in the simulated steps of ``benchmarks/adaptive.py``); with cheap
      switches the policy does move to low-load plans, and one with much less capacity
      than the best is overloaded by a surge before the policy can leave it. (0.75 when
      a switch was a seconds-long restart and the policy rarely moved.)
    * ``overload`` (True): backlog >= ``max_batch`` switches to the highest-throughput plan;
    * ``max_batch`` (64): the largest batch the dispatcher forms (the workload's cap).
    """

    window_ms: float = 2000.0
    decide_every_ms: float = 250.0
    min_batches: int = 4
    confirmations: int = 2
    payback_ms: float = 10000.0
    min_gain: float = 0.03
    first_slack: float = 0.25
    capacity_floor: float = 0.9
    overload: bool = True
    max_batch: int = 64

    def __post_init__(self) -> None:
        _num(self.window_ms, "window_ms", strict=True)
        _num(self.decide_every_ms, "decide_every_ms")
        validate.integer(self.min_batches, "min_batches", low=1, error=PolicyError, numpy=True)
        validate.integer(self.confirmations, "confirmations", low=1, error=PolicyError, numpy=True)
        _num(self.payback_ms, "payback_ms")
        _num(self.min_gain, "min_gain")
        _num(self.first_slack, "first_slack")
        _num(self.capacity_floor, "capacity_floor")
        if self.capacity_floor > 1:
            raise PolicyError(f"capacity_floor must be in [0, 1], got {self.capacity_floor!r}")
        validate.integer(self.max_batch, "max_batch", low=1, error=PolicyError, numpy=True)
        if not isinstance(self.overload, bool):
            raise PolicyError(f"overload must be true or false, got {self.overload!r}")


def parse_overrides(items: Sequence[str], base: PolicyConfig | None = None) -> PolicyConfig:
    """``["window_ms=1000", "overload=false"]`` -> a :class:`PolicyConfig` (PolicyError
    naming the bad item for an unknown key or a bad value). Items are ``KEY=VALUE``
    (:func:`packrat_sim.spec.key_value`); a key given twice takes its last value."""
    cfg = base or PolicyConfig()
    fields = {f: type(getattr(cfg, f)) for f in cfg.__dataclass_fields__}
    changes: dict[str, Any] = {}  # bool, int or float: the type of the field it replaces
    for item in items:
        pair = key_value(item)
        if pair is None or pair[0] not in fields:
            raise PolicyError(f"policy option {item!r}: expected KEY=VALUE with KEY one of {', '.join(fields)}")
        key, text = pair
        kind = fields[key]
        try:
            if kind is bool:
                flag = bool_word(text)
                if flag is None:
                    raise ValueError
                changes[key] = flag
            elif kind is int:
                changes[key] = int(text)
            else:
                changes[key] = float(text)
        except ValueError:
            raise PolicyError(f"policy option {item!r}: {text!r} is not a {kind.__name__}") from None
    return replace(cfg, **changes)


def parse_policy(spec: str) -> tuple[str, tuple[str, ...]]:
    """``"packrat"``, ``"packrat:window_ms=1000,confirmations=3"``, ``"packrat-ewma"``,
    ``"fat"``, ``"thin"`` -> (name, override items). PolicyError for an unknown name."""
    name, _, rest = spec.strip().partition(":")
    name = name.strip()
    known = POLICY_NAMES + ("fat", "thin")
    if name not in known:
        raise PolicyError(f"unknown policy {name!r}; choose one of {', '.join(known)}")
    items = tuple(split_items(rest, f"policy {spec!r}", empty="skip", strip=False, error=PolicyError))
    if items and name != "packrat":
        raise PolicyError(f"policy {name!r} takes no options (got {rest!r}); options apply to 'packrat'")
    if items:
        parse_overrides(items)  # validate now
    return name, items


# ---------------------------------------------------------------- batch splitting


def split_batch(plan: Plan, n: int) -> tuple[int, ...]:
    """Split a batch of ``n`` requests over ``plan.instances`` (same order).

    Proportional to the instances' configured sub-batches, largest remainder (ties: the
    earlier instance): sizes sum to ``n``; ``n == plan.batch`` gives the plan's own
    sub-batches; an instance may get 0 (it idles for this batch).
    """
    validate.positive_int(n, "batch size", error=PolicyError, numpy=True)
    conf = [i.batch for i in plan.instances]
    total = plan.batch
    if n == total:
        return tuple(conf)
    floors = [n * b // total for b in conf]
    rest = n - sum(floors)
    order = sorted(range(len(conf)), key=lambda j: (-((n * conf[j]) % total), j))
    for j in order[:rest]:
        floors[j] += 1
    return tuple(floors)


# ------------------------------------------------------------- service-time model


class ServiceModel:
    """Base latency (ms) and relative noise factors per cell (t, b); built lazily, then looked up.

    Measured cell: base = the profile's statistic, factors = samples / base (so a draw is
    exactly one of the samples). Missing cell: base = ``Profile.predict``, factors borrowed
    from the nearest measured cell (nearest thread count, then nearest batch in log scale;
    ties: the smaller). No samples: factors = [1.0]. Raises PolicyError (or the
    ``error`` class given) for a cell that cannot be predicted.
    """

    def __init__(self, profile: Profile, error: type[Exception] = PolicyError):
        self.profile = profile
        self.error = error
        self._cells: dict[tuple[int, int], tuple[float, np.ndarray]] = {}
        self.predicted: set[tuple[int, int]] = set()
        rows: dict[int, list[int]] = {}
        for c in profile.cells:
            rows.setdefault(c.threads, []).append(c.batch)
        self._rows = {t: sorted(bs) for t, bs in rows.items()}
        self._threads = sorted(rows)
        self._interference = profile.interference
        self._slow_cache: dict[tuple[int, int | None], float] = {}

    def slowdown(self, other_busy_cores: int, threads: int | None = None) -> float:
        """Interference slowdown (> 0, 1 without a model) of an instance of ``threads`` threads
        beside that many other busy cores (its thread count's curve, else the base curve; see
        :meth:`packrat_sim.profile.Interference.slowdown`)."""
        key = (int(other_busy_cores), None if threads is None else int(threads))
        s = self._slow_cache.get(key)
        if s is None:
            s = 1.0 if self._interference is None else float(self._interference.slowdown(*key))
            if not math.isfinite(s) or s <= 0:
                raise self.error(f"interference slowdown at {other_busy_cores} busy cores is {s!r}")
            self._slow_cache[key] = s
        return s

    def _factors(self, t: int, b: int) -> np.ndarray:
        cell = self.profile.cell(t, b)
        if cell is None:
            tn = min(self._threads, key=lambda x: (abs(x - t), x))
            bn = min(self._rows[tn], key=lambda x: (abs(math.log(x) - math.log(b)), x))
            cell = self.profile.cell(tn, bn)
        if cell is None:  # not reached: (tn, bn) comes from the profiled cells
            raise self.error(f"no profiled cell near {t}t x {b} to borrow noise factors from")
        stat = cell.stat(self.profile.statistic)
        if not cell.samples_ms:
            return np.ones(1)
        return np.asarray(cell.samples_ms, dtype=float) / stat

    def cell(self, t: int, b: int) -> tuple[float, np.ndarray]:
        """(base_ms, factors) of instance (t threads, sub-batch b)."""
        key = (t, b)
        got = self._cells.get(key)
        if got is None:
            measured = self.profile.latency(t, b)
            if measured is None:
                try:
                    base = float(self.profile.predict(t, b))
                except ProfileError as exc:
                    raise self.error(f"cannot predict cell threads={t} batch={b}: {exc}") from None
                self.predicted.add(key)
            else:
                base = float(measured)
            if not math.isfinite(base) or base <= 0:
                raise self.error(f"latency of cell threads={t} batch={b} is {base!r} ms (need > 0)")
            got = (base, self._factors(t, b))
            self._cells[key] = got
        return got


def expected_max(dists: Sequence[np.ndarray]) -> float:
    """E[max_j X_j] for independent X_j, each uniform over the values of ``dists[j]`` (ms).

    Exact for the empirical distributions: E = sum over the sorted support of
    v * (G(v) - G(v-)), G the product of the CDFs. One value each: the plain maximum.
    """
    if not dists:
        raise PolicyError("expected_max of no distributions")
    if all(d.size == 1 for d in dists):
        return float(max(float(d[0]) for d in dists))
    support = np.unique(np.concatenate(dists))
    g = np.ones(support.size)
    for d in dists:
        s = np.sort(d)
        g *= np.searchsorted(s, support, side="right") / s.size
    prev = np.concatenate(([0.0], g[:-1]))
    return float(np.dot(support, g - prev))


def dispatch_cost_ms(profile: Profile, plan: Plan, n: int) -> float:
    """The profile's measured dispatch cost of a batch of ``n`` over ``plan``'s instances
    (``Profile.dispatch_ms``; 0 where the profile has none)."""
    f = getattr(profile, "dispatch_ms", None)
    return 0.0 if f is None else float(f(len(plan.instances), n))


def active_cells(plan: Plan, n: int) -> list[tuple[int, int]]:
    """(threads, sub-batch) of ``plan``'s instances with work in a batch of ``n`` (split by
    :func:`split_batch`; an instance given nothing is left out)."""
    return [(inst.threads, b) for inst, b in zip(plan.instances, split_batch(plan, n)) if b > 0]


def batch_cost(model: ServiceModel, plan: Plan, n: int) -> float:
    """Expected latency (ms) of a batch of ``n`` on ``plan``: the slowest of its busy
    instances (:func:`active_cells`), with the plan's own interference, plus the
    profile's dispatch cost."""
    active = active_cells(plan, n)
    busy = sum(t for t, _ in active)
    dists = []
    for t, b in active:
        base, factors = model.cell(t, b)
        dists.append(base * model.slowdown(busy - t, t) * factors)
    return expected_max(dists) + dispatch_cost_ms(model.profile, plan, n)


class PlanCatalog:
    """The candidate plans of a (profile, cores, max batch) and their expected latencies.

    ``plans``: the optimizer's plan for every feasible batch size 1..max_batch, without
    duplicates, in order of first appearance. ``cost(i, n)``: expected latency of a batch
    of n on plan i (memoised). ``execution`` says how a server runs a batch of n on a plan
    for B: ``"split"`` (the simulator: split over the instances in proportion,
    :func:`split_batch`) or ``"chunks"`` (the real runner: ceil(n / B) runs of B, the last
    one padded, so ``cost = ceil(n / B) * E[plan, B]``). Deterministic; the only state is
    the memo.
    """

    def __init__(self, profile: Profile, cores: int, max_batch: int,
                 options: OptimizerOptions | None = None, *, model: ServiceModel | None = None,
                 error: type[Exception] = PolicyError, execution: str = "split"):
        if execution not in ("split", "chunks"):
            raise error(f"execution must be 'split' or 'chunks', got {execution!r}")
        self.execution = execution
        self.cores = validate.integer(cores, "cores", low=1, error=PolicyError, numpy=True)
        self.max_batch = validate.integer(max_batch, "max_batch", low=1, error=PolicyError, numpy=True)
        try:
            table = PlanTable(profile, self.cores, self.max_batch, options)
        except OptimizerError as exc:
            raise error(str(exc)) from None
        self.table = table
        self.model = model or ServiceModel(profile, error)
        plans: list[Plan] = []
        index: dict[tuple, int] = {}
        self.best_for: dict[int, int] = {}
        for b in range(1, self.max_batch + 1):
            if not math.isfinite(table.latency_ms(self.cores, b)):
                continue
            p = table.plan(self.cores, b)
            key = (p.batch, p.instances)
            if key not in index:
                index[key] = len(plans)
                plans.append(p)
            self.best_for[b] = index[key]
        if not plans:
            raise error(f"the profile of {profile.model!r} has no plan on {cores} cores for any batch 1..{max_batch}")
        self.plans = tuple(plans)
        self._cost: dict[tuple[int, int], float] = {}

    def cost(self, i: int, n: int) -> float:
        key = (i, n)
        c = self._cost.get(key)
        if c is None:
            p = self.plans[i]
            if self.execution == "chunks":
                c = -(-n // p.batch) * batch_cost(self.model, p, p.batch)
            else:
                c = batch_cost(self.model, p, n)
            self._cost[key] = c
        return c

    def index(self, plan: Plan) -> int | None:
        for i, p in enumerate(self.plans):
            if p.batch == plan.batch and p.instances == plan.instances:
                return i
        return None

    def objective(self, i: int, hist: dict[int, int]) -> float:
        """J(plan i): request-weighted expected latency over ``hist`` ({size: batches})."""
        num = sum(c * n * self.cost(i, n) for n, c in hist.items())
        den = sum(c * n for n, c in hist.items())
        return num / den

    def throughput(self, i: int) -> float:
        """Requests per ms of plan i on full batches of ``max_batch``."""
        return self.max_batch / self.cost(i, self.max_batch)

    def switch_cost(self, i_from: int, i_to: int, switch: SwitchModel) -> tuple[str, float]:
        """(kind, priced ms) of switching plan i_from -> i_to on this catalog's cores: the
        kind the runner performs (:meth:`SwitchModel.kind`) and its price
        (:meth:`SwitchModel.price_ms`, the new plan's full batch as the first batch)."""
        a, b = self.plans[i_from], self.plans[i_to]
        kind = switch.kind(a, b, self.cores)
        return kind, switch.price_ms(kind, a, b, self.cores, self.cost(i_to, b.batch))

    def switch_penalty_ms(self, i_from: int, i_to: int, switch: SwitchModel) -> float:
        """The priced loss (ms) of switching plan i_from -> i_to (:meth:`switch_cost`)."""
        return self.switch_cost(i_from, i_to, switch)[1]


# ------------------------------------------------------------------------ the rule


@dataclass(frozen=True)
class PolicyState:
    """``current``: index of the plan serving now (in the catalog); ``recent``: formed
    batches (t_ms, size) in the window, oldest first; ``backlog``: requests waiting after
    the last batch formed; ``leader``/``streak``: the plan that won the last decisions and
    how many in a row; ``last_decision_ms``: time of the last decision (None: none yet);
    ``switching``: a retarget or respawn is in progress (no new decision until it finished)."""

    current: int
    recent: tuple[tuple[float, int], ...] = ()
    backlog: int = 0
    leader: int | None = None
    streak: int = 0
    last_decision_ms: float | None = None
    switching: bool = False


@dataclass(frozen=True)
class Decision:
    """Outcome of :func:`decide`. ``plan``: catalog index to run from now on;
    ``reconfigure``: True iff it differs from the current one; ``reason``: why (one line);
    ``mode``: "latency" or "overload"; ``objective_ms``: J of (current, best) over the
    window; ``gain_ms``: J(current) - J(best); ``cost_ms``: the priced switch loss (ms);
    ``kind``: the kind of switch current -> best (``re-route``, ``retarget``, ``respawn``;
    None when the current plan is best), the kind priced and the kind the runner performs."""

    t_ms: float
    plan: int
    reconfigure: bool
    reason: str
    mode: str = "latency"
    objective_ms: tuple[float, float] | None = None
    gain_ms: float = 0.0
    cost_ms: float = 0.0
    kind: str | None = None

    def to_json(self, catalog: PlanCatalog | None = None) -> dict:
        out = {"t_ms": self.t_ms, "plan": self.plan, "reconfigure": self.reconfigure, "reason": self.reason,
               "mode": self.mode, "gain_ms": self.gain_ms, "cost_ms": self.cost_ms, "kind": self.kind,
               "objective_ms": None if self.objective_ms is None else list(self.objective_ms)}
        if catalog is not None:
            out["plan_describe"] = catalog.plans[self.plan].describe()
        return out


def initial_state(current: int) -> PolicyState:
    return PolicyState(current=validate.integer(current, "current plan index", low=0, error=PolicyError, numpy=True))


def observe(config: PolicyConfig, state: PolicyState, t_ms: float, size: int, backlog: int = 0) -> PolicyState:
    """A batch of ``size`` (1..max_batch) formed at ``t_ms`` (non-decreasing), ``backlog``
    requests still waiting; returns the next state (window trimmed to ``window_ms``)."""
    t = _num(t_ms, "t_ms")
    n = validate.integer(size, "batch size", low=1, error=PolicyError, numpy=True)
    validate.integer(backlog, "backlog", low=0, error=PolicyError, numpy=True)
    lo = t - config.window_ms
    recent = tuple(x for x in state.recent if x[0] > lo) + ((t, n),)
    return replace(state, recent=recent, backlog=int(backlog))


def histogram(state: PolicyState) -> dict[int, int]:
    """{batch size: number of batches} over the state's window."""
    h: dict[int, int] = {}
    for _, n in state.recent:
        h[n] = h.get(n, 0) + 1
    return h


def _best(config: PolicyConfig, catalog: PlanCatalog, state: PolicyState) -> tuple[str, int, tuple[float, float]]:
    """(mode, best plan index, (objective of the current plan, of the best)) over the state's
    window: the highest-throughput plan under overload, else the plan of least J among
    the eligible ones, a near tie (within ``min_gain``) going to the higher throughput. Pure."""
    cur = state.current
    if config.overload and state.backlog >= config.max_batch:
        best = max(range(len(catalog.plans)), key=lambda i: (catalog.throughput(i), -i))
        return "overload", best, (catalog.max_batch / catalog.throughput(cur),
                                  catalog.max_batch / catalog.throughput(best))
    hist = histogram(state)
    top = max(catalog.throughput(i) for i in range(len(catalog.plans)))
    eligible = [i for i in range(len(catalog.plans))
                if i == cur or catalog.throughput(i) >= config.capacity_floor * top]
    scores = {i: catalog.objective(i, hist) for i in eligible}
    least = min(scores.values())
    near = [i for i in eligible if scores[i] <= least * (1.0 + config.min_gain)]
    best = max(near, key=lambda i: (catalog.throughput(i), -scores[i], -i))
    return "latency", best, (scores[cur], scores[best])


def decide(config: PolicyConfig, catalog: PlanCatalog, state: PolicyState, t_ms: float,
           switch: SwitchModel = SwitchModel()) -> tuple[PolicyState, Decision | None]:
    """Decide at ``t_ms`` (right after an :func:`observe`). Returns (state, None) when no
    decision is due (too soon, too few batches, a switch in progress), else the next
    state and the :class:`Decision`; on ``reconfigure`` the state already names the new
    plan as current (the driver applies it and calls :func:`switched` when it serves).
    ``streak`` counts the consecutive decisions in which the current plan lost by the gate
    (whichever candidate led); the switch goes to the best plan of the last one."""
    if state.switching:
        return state, None
    if state.last_decision_ms is not None and t_ms - state.last_decision_ms < config.decide_every_ms:
        return state, None
    lo = t_ms - config.window_ms
    recent = tuple(x for x in state.recent if x[0] > lo)
    if len(recent) < config.min_batches:
        return replace(state, recent=recent), None
    state = replace(state, recent=recent, last_decision_ms=t_ms)
    cur = state.current
    mode, best, objective = _best(config, catalog, state)
    gain = objective[0] - objective[1]
    if best == cur:
        return (replace(state, leader=None, streak=0),
                Decision(t_ms, cur, False, "current plan is best", mode, objective, 0.0, 0.0))
    kind, cost = catalog.switch_cost(cur, best, switch)
    # the gain, relative to the current plan, must be real and repay the switch: in latency
    # mode J falls by `gain`, in overload mode the batch time on full batches does (throughput)
    refused = ("gain below min_gain" if gain < config.min_gain * objective[0] else
               "gain does not repay the switch" if gain * config.payback_ms < objective[0] * cost else None)
    if refused is not None:
        return replace(state, leader=best, streak=0), Decision(t_ms, cur, False, refused, mode, objective, gain, cost, kind)
    streak = state.streak + 1
    if streak < config.confirmations:
        return (replace(state, leader=best, streak=streak),
                Decision(t_ms, cur, False, f"current plan loses {streak}/{config.confirmations}", mode,
                         objective, gain, cost, kind))
    if mode == "overload":
        reason = (f"overload: backlog {state.backlog} >= {config.max_batch}; highest-throughput plan "
                  f"({catalog.throughput(best) * 1000:.0f} vs {catalog.throughput(cur) * 1000:.0f} req/s on full batches)")
    else:
        sizes = sorted(histogram(state))
        reason = (f"batches formed in the last {config.window_ms / 1000:g} s: sizes {sizes[0]}..{sizes[-1]} "
                  f"({len(state.recent)} batches); expected latency {objective[0]:.1f} -> {objective[1]:.1f} ms")
    state = replace(state, current=best, leader=None, streak=0, switching=kind != REROUTE)
    return state, Decision(t_ms, best, True, reason, mode, objective, gain, cost, kind)


def switched(state: PolicyState) -> PolicyState:
    """The driver finished a switch (the new plan serves): decisions resume."""
    return replace(state, switching=False)


def first_plan(catalog: PlanCatalog, first_batch: int, slack: float = PolicyConfig.first_slack) -> int:
    """Index of the first plan: among the plans whose expected latency for the first formed
    batch is within ``slack`` of the best, the one with the highest throughput on full
    batches (ties: the lower latency, then the lower index)."""
    n = min(max(1, int(first_batch)), catalog.max_batch)
    costs = [catalog.cost(i, n) for i in range(len(catalog.plans))]
    best = min(costs)
    near = [i for i, c in enumerate(costs) if c <= best * (1.0 + slack)]
    return max(near, key=lambda i: (catalog.throughput(i), -costs[i], -i))


def first_batch_size(arrivals_ms: np.ndarray, max_batch: int, max_delay_ms: float) -> int:
    """Size of the first batch the dispatcher forms: the arrivals within ``max_delay_ms`` of
    the first one, at most ``max_batch`` (1 for an empty sequence)."""
    a = np.asarray(arrivals_ms, dtype=float)
    if a.size == 0:
        return 1
    k = int(np.searchsorted(a, a[0] + max_delay_ms, side="right"))
    return max(1, min(k, int(max_batch)))


def replay(config: PolicyConfig, catalog: PlanCatalog, current: int,
           batches: Sequence[tuple[float, int, int]], switch: SwitchModel = SwitchModel(),
           restart_ms: float = 0.0) -> list[Decision]:
    """Decisions for a scripted sequence of formed batches ``(t_ms, size, backlog)``.

    A retarget or respawn is taken to finish ``restart_ms`` after its decision (0: at
    once; a re-route always finishes at once). Pure;
    used by tests and by ``benchmarks/adaptive.py`` to explain decisions."""
    state = initial_state(current)
    out = []
    done_at = None
    for t, n, backlog in batches:
        if done_at is not None and t >= done_at:
            state, done_at = switched(state), None
        state = observe(config, state, t, n, backlog)
        state, d = decide(config, catalog, state, t, switch)
        if d is not None:
            out.append(d)
            if d.reconfigure and state.switching:
                done_at = t + restart_ms
                if restart_ms <= 0:
                    state, done_at = switched(state), None
    return out


__all__ = [
    "POLICY_NAMES", "Decision", "PlanCatalog", "PolicyConfig", "PolicyError", "PolicyState", "ServiceModel",
    "SwitchModel", "active_cells", "batch_cost", "decide", "expected_max", "first_batch_size", "first_plan",
    "histogram", "initial_state", "observe", "parse_overrides", "parse_policy", "replay", "split_batch", "switched",
]
