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

Speed without changing a decision: :func:`observe` trims the window by cutting the prefix
of batches that left it (the window is kept in time order, which the state remembers),
:func:`decide` counts the window's sizes in C and scores all candidates over the distinct
sizes at once from memoised costs (:meth:`PlanCatalog._scored`): the same products and the
same ``sum`` in the same order as :meth:`PlanCatalog.objective`, so the same floats, and a
``min_gain`` near tie cannot go the other way. A driver that forms many batches between
decisions may keep them aside while :func:`decision_due` is false and hand them over with
:func:`observe_many` (the simulator does).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from operator import itemgetter, mul
from typing import Any

import numpy as np

from packrat_sim import validate
from packrat_sim.errors import PackratError
from packrat_sim.interference import CoRunPlanTable
from packrat_sim.optimizer import OptimizerError, OptimizerOptions, PlanTable
from packrat_sim.plan import Plan
from packrat_sim.profile import Profile, ProfileError
from packrat_sim.spec import bool_word, key_value, split_items
from packrat_sim.switching import REROUTE, RESPAWN, RETARGET, SWITCH_KINDS, switch_kind

POLICY_NAMES = ("packrat", "packrat-ewma")
#: How many of the latest measured switches of a kind :meth:`SwitchModel.learned` takes the median of.
LEARN_WINDOW = 9


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

    def learned(self, kind: str, measured_ms: Sequence[float]) -> SwitchModel:
        """This model with the pause of ``kind`` priced from switches of that kind measured on
        this machine: the median of the last ``LEARN_WINDOW`` of ``measured_ms`` (ms, oldest
        first; each the decision to the first batch served by the new configuration, the old
        epoch's drain left out: ``real_runner.serving.ReconfigRecord.measured_ms``). A median,
        so one switch slowed by a busy machine does not move the price. No measurement, or a
        respawn (priced by its slowdown model, not by a pause): the model as is. PolicyError
        for an unknown kind or a negative or non-finite measurement. Pure."""
        validate.one_of(kind, "switch kind", SWITCH_KINDS, error=PolicyError)
        for ms in measured_ms:
            if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not math.isfinite(ms) or ms < 0:
                raise PolicyError(f"a measured switch cost must be a finite number of ms >= 0, got {ms!r}")
        if not measured_ms or kind == RESPAWN:
            return self
        price = float(np.median(measured_ms[-LEARN_WINDOW:]))
        return replace(self, reroute_ms=price) if kind == REROUTE else replace(self, retarget_ms=price)

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


CLOSED_LOOP_DEFAULTS = ("capacity_floor=0",)


def load_overrides(overrides: Sequence[str], *, closed: bool) -> tuple[str, ...]:
    """The packrat policy's override items for a load: ``overrides`` after
    :data:`CLOSED_LOOP_DEFAULTS` when the load is a closed loop (``closed``). Pure.

    A closed loop's clients wait for their answers, so no plan can be overrun by a surge:
    the ``capacity_floor`` (which keeps an open loop on plans that survive a surge it has not
    seen yet) defaults to 0 there, so the plan for small batches is a candidate again when
    the batches shrink. An explicit ``capacity_floor=`` in ``overrides`` wins (a later item
    wins, see :func:`parse_overrides`). The simulator and the real runner both use it."""
    return (CLOSED_LOOP_DEFAULTS if closed else ()) + tuple(overrides)


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


#: Histograms with at most this many distinct sizes are scored in plain Python (the same
#: products and sums as with numpy, which pays off beyond: measured crossover about 8).
_FEW_SIZES = 6


class _Candidates:
    """Plans scored together (:meth:`PlanCatalog._scored`): ``matrix[r, n]`` and ``rows[r][n]``
    are ``PlanCatalog.cost(plans[r], n)`` for every size n in ``filled`` (copied as computed)."""

    __slots__ = ("plans", "matrix", "rows", "filled")

    def __init__(self, plans: tuple[int, ...], max_batch: int):
        self.plans = plans
        self.matrix = np.zeros((len(plans), max_batch + 1))
        self.rows: list[list[float]] = [[0.0] * (max_batch + 1) for _ in plans]  # the same, as lists
        self.filled: set[int] = set()


class PlanCatalog:
    """The candidate plans of a (profile, cores, max batch) and their expected latencies.

    ``plans``: the optimizer's plan for every feasible batch size 1..max_batch, without
    duplicates, in order of first appearance; with a co-run model in the profile, the
    plans optimal under it (:class:`~packrat_sim.interference.CoRunPlanTable`, the plans
    ``packrat plan`` gives), else the isolated optimizer's. ``cost(i, n)``: expected latency of a batch
    of n on plan i (memoised). ``execution`` says how a server runs a batch of n on a plan
    for B: ``"split"`` (the simulator: split over the instances in proportion,
    :func:`split_batch`) or ``"chunks"`` (the real runner: ceil(n / B) runs of B, the last
    one padded, so ``cost = ceil(n / B) * E[plan, B]``). Deterministic; the only state is
    memos (the costs, the throughputs, the candidate sets with their costs gathered for
    scoring, the switch prices under the last switch model), each filled on first use.
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
            # calibrated (issue 27): with a co-run model the candidates are the plans optimal under it
            table_type = PlanTable if profile.interference is None else CoRunPlanTable
            table = table_type(profile, self.cores, self.max_batch, options)
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
        # The decision's fast path (see _best): memoised throughputs, candidate sets and their
        # costs in a matrix (PlanCatalog._scored); all filled lazily, from cost() and throughput().
        self._tputs: tuple[float, ...] | None = None
        self._fastest: int | None = None
        self._eligible: dict[tuple[int, float], tuple[_Candidates, int, tuple[float, ...]]] = {}
        self._sets: dict[tuple[int, ...], _Candidates] = {}
        self._switch_for: SwitchModel | None = None
        self._switch_memo: dict[tuple[int, int], tuple[str, float]] | None = None

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
        """J(plan i): request-weighted expected latency over ``hist`` ({size: batches}).

        The definition (and the reference :func:`decide` is checked against): the products
        ``c * n * E[i, n]`` summed with ``sum`` in ``hist``'s order, over ``sum(c * n)``."""
        num = sum(c * n * self.cost(i, n) for n, c in hist.items())
        den = sum(c * n for n, c in hist.items())
        return num / den

    def objectives(self, plans: Sequence[int], hist: dict[int, int]) -> list[float]:
        """``[objective(i, hist) for i in plans]``: the same floats, vectorised over the
        distinct sizes (:meth:`_scored`, the decision's hot path) when ``hist`` is non-empty
        with int sizes in 1..max_batch and ``plans`` are indexes of this catalog; else that loop."""
        plans = tuple(plans)
        if not hist or not plans or not all(type(n) is int and 1 <= n <= self.max_batch for n in hist) \
                or not all(type(i) is int and 0 <= i < len(self.plans) for i in plans):
            return [self.objective(i, hist) for i in plans]
        return self._scored(self._candidate_set(plans), hist)

    def _candidate_set(self, plans: tuple[int, ...]) -> _Candidates:
        got = self._sets.get(plans)
        if got is None:
            got = self._sets[plans] = _Candidates(plans, self.max_batch)
        return got

    def _scored(self, cands: _Candidates, hist: dict[int, int]) -> list[float]:
        """J of each of ``cands.plans`` over ``hist`` (non-empty, int sizes in 1..max_batch).

        Exactly :meth:`objective`'s floats: each product ``c * n * E[i, n]`` is one IEEE
        multiplication of the same two doubles (``c * n`` an exact int, < 2**53; numpy and
        Python multiply doubles alike, with no fused multiply-add), each plan's products
        are added by the same builtin ``sum`` in the same order (``hist``'s), and divided by
        the same int. Only the gathering is vectorised; no running sum is kept across
        decisions (a running float sum would depend on the order of the updates and could
        flip a near tie)."""
        sizes = list(hist)
        if not cands.filled.issuperset(sizes):
            self._fill(cands, sizes)
        if len(sizes) <= _FEW_SIZES:  # numpy's fixed cost exceeds a few products per plan
            pairs = [(n, c * n) for n, c in hist.items()]
            den = sum([w for _, w in pairs])
            return [sum([w * row[n] for n, w in pairs]) / den for row in cands.rows]
        ws = list(map(mul, hist.values(), sizes))  # c * n, exact ints
        den = sum(ws)
        m = cands.matrix.take(sizes, axis=1) * np.array(ws, dtype=float)
        return [sum(r) / den for r in m.tolist()]

    def _fill(self, cands: _Candidates, sizes: list[int]) -> None:
        """Copy cost(i, n) into ``cands.matrix`` for the sizes not there yet, asking :meth:`cost`
        in the order :meth:`objective` does (plan by plan), so that an error is the same one."""
        m, filled = cands.matrix, cands.filled
        todo = [n for n in sizes if n not in filled]
        for r, i in enumerate(cands.plans):
            row = cands.rows[r]
            for n in todo:
                row[n] = c = self.cost(i, n)
                m[r, n] = c
        filled.update(todo)

    def _throughputs(self) -> tuple[float, ...]:
        """:meth:`throughput` of every plan (computed once, in index order)."""
        t = self._tputs
        if t is None:
            t = self._tputs = tuple(self.throughput(i) for i in range(len(self.plans)))
        return t

    def _candidates(self, cur: int, floor: float) -> tuple[_Candidates, int, tuple[float, ...]]:
        """(the plans scored in latency mode: ``cur`` and those with at least ``floor`` of the
        best full-batch throughput, in index order; the position of ``cur`` among them; their
        throughputs), memoised per (cur, floor)."""
        key = (cur, floor)
        got = self._eligible.get(key)
        if got is None:
            tput = self._throughputs()
            top = max(tput)
            plans = tuple(i for i in range(len(self.plans)) if i == cur or tput[i] >= floor * top)
            got = self._eligible[key] = (self._candidate_set(plans), plans.index(cur), tuple(tput[i] for i in plans))
        return got

    def _highest_throughput(self) -> int:
        """The overload mode's plan: the most requests per ms on full batches (ties: the lower index)."""
        best = self._fastest
        if best is None:
            best = self._fastest = max(range(len(self.plans)), key=lambda i: (self.throughput(i), -i))
        return best

    def throughput(self, i: int) -> float:
        """Requests per ms of plan i on full batches of ``max_batch``."""
        return self.max_batch / self.cost(i, self.max_batch)

    def switch_cost(self, i_from: int, i_to: int, switch: SwitchModel) -> tuple[str, float]:
        """(kind, priced ms) of switching plan i_from -> i_to on this catalog's cores: the
        kind the runner performs (:meth:`SwitchModel.kind`) and its price
        (:meth:`SwitchModel.price_ms`, the new plan's full batch as the first batch)."""
        memo = self._switch_memo if switch is self._switch_for else self._switch_memo_for(switch)
        got = None if memo is None else memo.get((i_from, i_to))
        if got is None:
            a, b = self.plans[i_from], self.plans[i_to]
            kind = switch.kind(a, b, self.cores)
            got = (kind, switch.price_ms(kind, a, b, self.cores, self.cost(i_to, b.batch)))
            if memo is not None:
                memo[(i_from, i_to)] = got
        return got

    def _switch_memo_for(self, switch: SwitchModel) -> dict | None:
        """The memo of :meth:`switch_cost` for ``switch`` (pure: a frozen SwitchModel, the
        plans and the memoised costs decide it): kept while the model is equal to the last
        one (the real runner passes an equal copy each time), None for a subclass."""
        if type(switch) is not SwitchModel:
            return None
        if type(self._switch_for) is not SwitchModel or switch != self._switch_for:
            self._switch_memo = {}
        self._switch_for = switch
        return self._switch_memo

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
    # A cache, not part of the state's value (left out of ==, hash and repr): ``recent`` itself
    # (the same object) when it is known to hold (float time, int size >= 1) pairs in time
    # order -- as :func:`observe` builds it -- so that trimming the window cuts a prefix and
    # the decision may take the vectorised path. Any other value (None: a state built by hand,
    # or by ``replace(state, recent=...)``) only means "not known": the checks run again.
    _checked: tuple | None = field(default=None, compare=False, repr=False)


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


_new = object.__new__
_set = object.__setattr__


def _state(cls: type, current: int, recent: tuple, backlog: int, leader: int | None, streak: int,
           last_decision_ms: float | None, switching: bool, checked: tuple | None) -> PolicyState:
    """``PolicyState(current, recent, ..., checked)``: the same instance as the dataclass's
    ``__init__`` makes (the fields in the instance dict; PolicyState has no ``__post_init__``),
    built in one step instead of one frozen ``__setattr__`` per field (a third of the time,
    on the path every formed batch takes). ``cls``: the type of the state it follows (a
    subclass, which this module never makes, goes through its own ``__init__``)."""
    if cls is not PolicyState:
        return cls(current, recent, backlog, leader, streak, last_decision_ms, switching, checked)
    x = _new(cls)
    _set(x, "__dict__", {"current": current, "recent": recent, "backlog": backlog, "leader": leader,
                         "streak": streak, "last_decision_ms": last_decision_ms, "switching": switching,
                         "_checked": checked})
    return x


def _decision(t_ms: float, plan: int, reconfigure: bool, reason: str, mode: str,
              objective: tuple[float, float] | None, gain_ms: float, cost_ms: float, kind: str | None) -> Decision:
    """``Decision(t_ms, plan, ...)``, built as :func:`_state` builds a state (Decision has no
    ``__post_init__``)."""
    x = _new(Decision)
    _set(x, "__dict__", {"t_ms": t_ms, "plan": plan, "reconfigure": reconfigure, "reason": reason, "mode": mode,
                         "objective_ms": objective, "gain_ms": gain_ms, "cost_ms": cost_ms, "kind": kind})
    return x


def _checked(recent: tuple) -> tuple | None:
    """``recent`` when it holds (float, int >= 1) pairs with non-decreasing times, else None."""
    prev = -math.inf
    for x in recent:
        if type(x) is not tuple or len(x) != 2:
            return None
        t, n = x
        if type(t) is not float or type(n) is not int or n < 1 or not t >= prev:
            return None
        prev = t
    return recent


def _trimmed(state: PolicyState, lo: float) -> tuple[tuple, tuple | None]:
    """(``tuple(x for x in state.recent if x[0] > lo)``; that tuple again when it is known
    checked (:func:`_checked`), else None). A checked window is in time order, so the batches
    kept are a suffix, found by skipping the (few) oldest that left it."""
    recent = state.recent
    if state._checked is recent:
        k = 0
        for x in recent:
            if x[0] > lo:
                break
            k += 1
        out = recent[k:]
        return out, out
    out = tuple(x for x in recent if x[0] > lo)
    return out, _checked(out)


def observe(config: PolicyConfig, state: PolicyState, t_ms: float, size: int, backlog: int = 0) -> PolicyState:
    """A batch of ``size`` (1..max_batch) formed at ``t_ms`` (non-decreasing), ``backlog``
    requests still waiting; returns the next state (window trimmed to ``window_ms``)."""
    if type(t_ms) is float and 0.0 <= t_ms < math.inf and type(size) is int and size >= 1 \
            and type(backlog) is int and backlog >= 0:
        t, n = t_ms, size  # what the checks below return for values of exactly these types
    else:
        t = _num(t_ms, "t_ms")
        n = validate.integer(size, "batch size", low=1, error=PolicyError, numpy=True)
        backlog = validate.integer(backlog, "backlog", low=0, error=PolicyError, numpy=True)
    recent = state.recent
    lo = t - config.window_ms
    checked: tuple | None
    if state._checked is recent and (not recent or recent[-1][0] <= t):
        if recent and not recent[0][0] > lo:  # the oldest batches leave the window: a prefix
            k, end = 1, len(recent)
            while k < end and not recent[k][0] > lo:
                k += 1
            recent = recent[k:]
        out = checked = recent + ((t, n),)
    else:  # built by hand, or out of time order: the plain filter, then check what it made
        out = tuple(x for x in recent if x[0] > lo) + ((t, n),)
        checked = _checked(out)
    if type(state) is PolicyState:  # as _state, copying the fields that do not change
        fields = state.__dict__.copy()
        fields["recent"], fields["backlog"], fields["_checked"] = out, backlog, checked
        x = _new(PolicyState)
        _set(x, "__dict__", fields)
        return x
    return _state(type(state), state.current, out, backlog, state.leader, state.streak, state.last_decision_ms,
                  state.switching, checked)


def observe_many(config: PolicyConfig, state: PolicyState, formed: Sequence[tuple[float, int]],
                 backlog: int = 0) -> PolicyState:
    """:func:`observe` for each batch ``(t_ms, size)`` of ``formed`` in turn, ``backlog``
    requests waiting after the last (each observation replaces the backlog, so the earlier
    ones do not matter): the same state, and the same error for a bad batch. ``formed``
    empty: ``state`` unchanged. One window update for them all when the batches are in time
    order after the window's (sequential trims to rising bounds keep exactly the batches
    after the last bound); otherwise one :func:`observe` each."""
    if not formed:
        return state
    recent = state.recent
    prev = recent[-1][0] if recent else 0.0
    fast = state._checked is recent and type(state) is PolicyState and type(backlog) is int and backlog >= 0
    if fast:
        for x in formed:
            if type(x) is not tuple or len(x) != 2:
                fast = False
                break
            t, n = x
            if not (type(t) is float and prev <= t < math.inf and type(n) is int and n >= 1):
                fast = False
                break
            prev = t
    if not fast:
        last = len(formed) - 1
        for k, (t, n) in enumerate(formed):
            state = observe(config, state, t, n, backlog if k == last else 0)
        return state
    lo = prev - config.window_ms
    out = recent + tuple(formed)
    if not out[0][0] > lo:
        k, end = 1, len(out)
        while k < end and not out[k][0] > lo:
            k += 1
        out = out[k:]
    fields = state.__dict__.copy()
    fields["recent"], fields["backlog"], fields["_checked"] = out, backlog, out
    made = _new(PolicyState)
    _set(made, "__dict__", fields)
    return made


def decision_due(config: PolicyConfig, state: PolicyState, t_ms: float) -> bool:
    """Whether :func:`decide` at ``t_ms`` would look at the window: False exactly when it
    returns ``(state, None)`` at once (a switch in progress, or the last decision less than
    ``decide_every_ms`` ago). Observations change neither, so a driver may keep formed
    batches aside while no decision is due and hand them over with :func:`observe_many`."""
    if state.switching:
        return False
    last = state.last_decision_ms
    return last is None or not t_ms - last < config.decide_every_ms


try:  # the C helper behind collections.Counter: count into a plain dict, in order of first appearance
    from collections import _count_elements  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - not CPython
    def _count_elements(mapping: dict, iterable) -> None:
        for n in iterable:
            mapping[n] = mapping.get(n, 0) + 1


def _counts(recent: tuple) -> dict[int, int]:
    """{size: batches} over ``recent``, sizes in order of first appearance (as :func:`histogram`)."""
    h: dict[int, int] = {}
    _count_elements(h, map(_size, recent))
    return h


_size = itemgetter(1)


def histogram(state: PolicyState) -> dict[int, int]:
    """{batch size: number of batches} over the state's window, sizes in order of first
    appearance (the order the objective sums in)."""
    if state._checked is state.recent:
        return _counts(state.recent)
    h: dict[int, int] = {}
    for _, n in state.recent:
        h[n] = h.get(n, 0) + 1
    return h


def _best(config: PolicyConfig, catalog: PlanCatalog, state: PolicyState) -> tuple[str, int, tuple[float, float]]:
    """(mode, best plan index, (objective of the current plan, of the best)) over the state's
    window: the highest-throughput plan under overload, else the plan of least J among
    the eligible ones, a near tie (within ``min_gain``) going to the higher throughput. Pure.

    :func:`_best_reference` is the definition; this returns the same (the same floats:
    :meth:`PlanCatalog._scored`) from memoised throughputs and candidate sets, the window
    counted in C; a state whose window was built by hand takes the reference."""
    return _choose(config, catalog, state)


def _choose(config: PolicyConfig, catalog: PlanCatalog, state: PolicyState | None, cur: Any = None,
            recent: Any = None, backlog: Any = None, checked: Any = None) -> tuple[str, int, tuple[float, float]]:
    """:func:`_best`, given the state's fields (``state`` may then be None; the reference
    builds it only if it needs it)."""
    if state is not None:
        cur, recent, backlog, checked = state.current, state.recent, state.backlog, state._checked
    if config.overload and backlog >= config.max_batch:
        best = catalog._highest_throughput()
        return "overload", best, (catalog.max_batch / catalog.throughput(cur),
                                  catalog.max_batch / catalog.throughput(best))
    if checked is recent and recent and type(cur) is int and 0 <= cur < len(catalog.plans):
        hist = _counts(recent)
        if max(hist) <= catalog.max_batch:
            cands, at, tput = catalog._candidates(cur, config.capacity_floor)
            plans = cands.plans
            scores = catalog._scored(cands, hist)
            limit = min(scores) * (1.0 + config.min_gain)
            near = [k for k, j in enumerate(scores) if j <= limit]
            k = near[0] if len(near) == 1 else max(near, key=lambda k: (tput[k], -scores[k], -plans[k]))
            return "latency", plans[k], (scores[at], scores[k])
    if state is None:
        state = PolicyState(cur, recent, backlog)
    return _best_reference(config, catalog, state)


def _best_reference(config: PolicyConfig, catalog: PlanCatalog, state: PolicyState) -> tuple[str, int, tuple[float, float]]:
    """:func:`_best` as defined, computed plainly (:meth:`PlanCatalog.objective` per plan)."""
    cur = state.current
    if config.overload and state.backlog >= config.max_batch:
        best = max(range(len(catalog.plans)), key=lambda i: (catalog.throughput(i), -i))
        return "overload", best, (catalog.max_batch / catalog.throughput(cur),
                                  catalog.max_batch / catalog.throughput(best))
    hist: dict[int, int] = {}
    for _, n in state.recent:
        hist[n] = hist.get(n, 0) + 1
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
    last = state.last_decision_ms
    if last is not None and t_ms - last < config.decide_every_ms:
        return state, None
    recent, checked = _trimmed(state, t_ms - config.window_ms)
    cls, cur, backlog, switching = type(state), state.current, state.backlog, state.switching
    leader, streak = state.leader, state.streak
    if len(recent) < config.min_batches:
        return _state(cls, cur, recent, backlog, leader, streak, last, switching, checked), None
    # (the state with this decision's window and time, as _best sees it: only its fields are needed)
    mode, best, objective = _choose(config, catalog, None, cur, recent, backlog, checked)
    if best == cur:
        return (_state(cls, cur, recent, backlog, None, 0, t_ms, switching, checked),
                _decision(t_ms, cur, False, "current plan is best", mode, objective, 0.0, 0.0, None))
    gain = objective[0] - objective[1]
    kind, cost = catalog.switch_cost(cur, best, switch)
    # the gain, relative to the current plan, must be real and repay the switch: in latency
    # mode J falls by `gain`, in overload mode the batch time on full batches does (throughput)
    refused = ("gain below min_gain" if gain < config.min_gain * objective[0] else
               "gain does not repay the switch" if gain * config.payback_ms < objective[0] * cost else None)
    if refused is not None:
        return (_state(cls, cur, recent, backlog, best, 0, t_ms, switching, checked),
                _decision(t_ms, cur, False, refused, mode, objective, gain, cost, kind))
    streak += 1
    if streak < config.confirmations:
        return (_state(cls, cur, recent, backlog, best, streak, t_ms, switching, checked),
                _decision(t_ms, cur, False, f"current plan loses {streak}/{config.confirmations}", mode,
                          objective, gain, cost, kind))
    if mode == "overload":
        reason = (f"overload: backlog {backlog} >= {config.max_batch}; highest-throughput plan "
                  f"({catalog.throughput(best) * 1000:.0f} vs {catalog.throughput(cur) * 1000:.0f} req/s on full batches)")
    else:
        sizes = sorted(histogram(PolicyState(cur, recent, _checked=checked)))
        reason = (f"batches formed in the last {config.window_ms / 1000:g} s: sizes {sizes[0]}..{sizes[-1]} "
                  f"({len(recent)} batches); expected latency {objective[0]:.1f} -> {objective[1]:.1f} ms")
    state = _state(cls, best, recent, backlog, None, 0, t_ms, kind != REROUTE, checked)
    return state, _decision(t_ms, best, True, reason, mode, objective, gain, cost, kind)


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
    "LEARN_WINDOW", "POLICY_NAMES", "Decision", "PlanCatalog", "PolicyConfig", "PolicyError", "PolicyState", "ServiceModel",
    "SwitchModel", "active_cells", "batch_cost", "decide", "expected_max", "first_batch_size", "first_plan",
    "decision_due", "histogram", "initial_state", "observe", "observe_many", "parse_overrides", "parse_policy", "replay", "split_batch", "switched",
]
