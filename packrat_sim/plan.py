"""Plans: which model instances to run (threads x sub-batch each) for a batch on T cores.

``Instance`` and ``Plan`` are frozen and hashable. A plan's instances are kept in a
canonical order (threads desc, batch desc, cores) so that equal configurations compare
equal. ``Plan.groups()`` gives Packrat's compact form ``[(count, threads, batch), ...]``,
``Plan.describe()`` writes it (``2 x 4t x 16 + 1 x 8t x 32``) and :func:`parse_compact`
reads it back (also ``2x4x16+1x8x32``).

Baselines (pure functions): ``fat`` (one instance, all T threads, whole batch), ``thin``
(min(T, B) single-thread instances), ``equal_instances`` (k instances of T // k threads)
and ``fixed_cores`` (PyTorch launcher's latency mode: c cores per instance).

Plan file format (JSON)::

    {"schema": "packrat.plan/1", "batch": B, "cores": T,
     "instances": [{"threads": t, "batch": b, "cores": [c, ...]}], "predicted_ms": x,
     "model": "tiny-cnn", "synthetic": false, "profile_digest": "0123456789abcdef",
     "machine": {"cpu_model": "...", "logical_cores": 16}}

The last four fields are the plan's :class:`PlanOrigin` (what it was made from: the
profile's model, whether that profile is synthetic, :func:`profile_digest` of it, and the
machine the profile describes). Files written before they existed have none and still load
(``Plan.origin`` is then None); readers that predate them ignore them.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from packrat_sim import validate
from packrat_sim.errors import PackratError
from packrat_sim.inputs import loads_json
from packrat_sim.profile import profile_digest
from packrat_sim.spec import parse_count

PLAN_SCHEMA = "packrat.plan/1"


class PlanError(PackratError):
    """A plan is invalid for its batch and cores; the message names the problem."""


@dataclass(frozen=True)
class PlanOrigin:
    """What a plan was made from: the profile's ``model`` (and whether that profile is
    ``synthetic``, a formula that stands for any model), the profile's :func:`profile_digest`
    and the machine it describes (``cpu_model``, ``logical_cores``; "" and 0 when unknown,
    e.g. a profile imported from Packrat's CSVs)."""

    model: str
    profile_digest: str = ""
    cpu_model: str = ""
    logical_cores: int = 0
    synthetic: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model:
            raise PlanError(f"plan 'model' must be a non-empty string, got {self.model!r:.60}")
        if not isinstance(self.profile_digest, str):
            raise PlanError(f"plan 'profile_digest' must be a string, got {self.profile_digest!r:.60}")
        if not isinstance(self.cpu_model, str):
            raise PlanError(f"plan 'machine.cpu_model' must be a string, got {self.cpu_model!r:.60}")
        validate.nonnegative_int(self.logical_cores, "plan 'machine.logical_cores'", error=PlanError)
        if not isinstance(self.synthetic, bool):
            raise PlanError(f"plan 'synthetic' must be true or false, got {self.synthetic!r:.60}")

    @classmethod
    def of(cls, profile) -> PlanOrigin:
        """The origin of a plan made from ``profile`` (a ``packrat_sim.profile.Profile``)."""
        return cls(model=profile.model, profile_digest=profile_digest(profile),
                   cpu_model=profile.machine.cpu_model, logical_cores=profile.machine.logical_cores,
                   synthetic=profile.synthetic)

    def machine(self) -> str:
        """The machine in words: ``Intel(R) Xeon(R) Gold 6338, 64 logical CPUs`` ("unknown machine")."""
        return describe_machine(self.cpu_model, self.logical_cores)

    def other_machine(self, cpu_model: str, logical_cores: int) -> bool:
        """Whether the machine ``cpu_model`` with ``logical_cores`` CPUs is not the one this
        plan's profile describes: a known CPU model or count that differs (an unknown one
        never counts; a synthetic profile describes no real machine). Pure."""
        if self.synthetic:
            return False
        return bool((self.cpu_model and cpu_model and self.cpu_model != cpu_model)
                    or (self.logical_cores and logical_cores and self.logical_cores != logical_cores))

    def machine_warning(self, what: str, cpu_model: str, logical_cores: int) -> str | None:
        """One line saying that ``what`` (a plan file or a profile, named) describes another
        machine than ``cpu_model`` with ``logical_cores`` CPUs (see :meth:`other_machine`);
        None when it does not. Pure."""
        if not self.other_machine(cpu_model, logical_cores):
            return None
        return (f"warning: {what} describes {self.machine()}, not this machine "
                f"({describe_machine(cpu_model, logical_cores)}): its predictions may not hold here")

    def to_json(self) -> dict:
        return {"model": self.model, "synthetic": self.synthetic, "profile_digest": self.profile_digest,
                "machine": {"cpu_model": self.cpu_model, "logical_cores": self.logical_cores}}

    @classmethod
    def from_json(cls, obj: Mapping) -> PlanOrigin | None:
        """The origin fields of a plan JSON object (None when it has no ``model``: a file
        written before plans recorded their origin); PlanError naming a malformed field."""
        model = obj.get("model")
        if model is None:
            return None
        machine = obj.get("machine") or {}
        if not isinstance(machine, Mapping):
            raise PlanError(f"plan 'machine' must be an object, got {machine!r:.60}")
        return cls(model=model, profile_digest=obj.get("profile_digest", ""),
                   cpu_model=machine.get("cpu_model", ""), logical_cores=machine.get("logical_cores", 0),
                   synthetic=obj.get("synthetic", False))


def describe_machine(cpu_model: str, logical_cores: int) -> str:
    """``Intel(R) Xeon(R) Processor, 2 logical CPUs``; the parts that are unknown are left out."""
    parts = [cpu_model] if cpu_model else []
    if logical_cores:
        parts.append(f"{logical_cores} logical CPU{'s' if logical_cores != 1 else ''}")
    return ", ".join(parts) or "an unknown machine"


@dataclass(frozen=True, order=True)
class Instance:
    """One model instance: ``threads`` intra-op threads serving a sub-batch of ``batch``.

    ``cores`` are the logical CPU ids it is pinned to (empty before assignment).
    """

    threads: int
    batch: int
    cores: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        validate.positive_int(self.threads, "instance threads", error=PlanError)
        validate.positive_int(self.batch, "instance batch", error=PlanError)
        object.__setattr__(self, "cores", tuple(self.cores))
        if self.cores and len(self.cores) != self.threads:
            raise PlanError(
                f"instance with {self.threads} threads is pinned to {len(self.cores)} cores {list(self.cores)}"
            )


def _canonical(instances: Sequence[Instance]) -> tuple[Instance, ...]:
    return tuple(sorted(instances, key=lambda i: (-i.threads, -i.batch, i.cores)))


@dataclass(frozen=True)
class Plan:
    """A configuration for one batch of ``batch`` inputs on ``cores`` cores.

    Invariants (checked): sum of instance batches == batch; sum of threads <= cores;
    pinned cores, if any, are disjoint. ``predicted_ms`` is the profile's prediction of
    the batch latency (max over instances), or None; ``origin`` what it was made from
    (:class:`PlanOrigin`), or None.
    """

    instances: tuple[Instance, ...]
    batch: int
    cores: int
    predicted_ms: float | None = field(default=None, compare=False)
    origin: PlanOrigin | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        validate.positive_int(self.batch, "plan batch", error=PlanError)
        validate.positive_int(self.cores, "plan cores", error=PlanError)
        if not self.instances:
            raise PlanError("a plan needs at least one instance")
        for inst in self.instances:
            if not isinstance(inst, Instance):
                raise PlanError(f"plan instances must be Instance, got {inst!r}")
        object.__setattr__(self, "instances", _canonical(self.instances))
        total_b = sum(i.batch for i in self.instances)
        if total_b != self.batch:
            raise PlanError(f"sub-batches sum to {total_b}, not the batch {self.batch}")
        total_t = sum(i.threads for i in self.instances)
        if total_t > self.cores:
            raise PlanError(f"instances need {total_t} threads but only {self.cores} cores are available")
        pinned = [c for i in self.instances for c in i.cores]
        if len(pinned) != len(set(pinned)):
            dup = sorted(c for c, n in Counter(pinned).items() if n > 1)
            raise PlanError(f"cores {dup} are assigned to more than one instance")
        if self.predicted_ms is not None and not (
            isinstance(self.predicted_ms, (int, float)) and math.isfinite(self.predicted_ms) and self.predicted_ms > 0
        ):
            raise PlanError(f"predicted_ms must be a finite positive number, got {self.predicted_ms!r}")
        if self.origin is not None and not isinstance(self.origin, PlanOrigin):
            raise PlanError(f"plan origin must be a PlanOrigin, got {self.origin!r:.60}")

    @property
    def threads_used(self) -> int:
        return sum(i.threads for i in self.instances)

    def groups(self) -> list[tuple[int, int, int]]:
        """Packrat's compact form: [(count, threads, batch), ...], threads then batch descending."""
        counts = Counter((i.threads, i.batch) for i in self.instances)
        return [(n, t, b) for (t, b), n in sorted(counts.items(), key=lambda kv: (-kv[0][0], -kv[0][1]))]

    def describe(self) -> str:
        """E.g. ``2 x 4t x 16 + 1 x 8t x 32`` (count x threads x sub-batch)."""
        return " + ".join(f"{n} x {t}t x {b}" for n, t, b in self.groups())

    def with_prediction(self, predicted_ms: float | None) -> Plan:
        return Plan(self.instances, self.batch, self.cores, predicted_ms, self.origin)

    def with_origin(self, origin: PlanOrigin | None) -> Plan:
        """This plan recording ``origin`` (what it was made from; see :class:`PlanOrigin`)."""
        return Plan(self.instances, self.batch, self.cores, self.predicted_ms, origin)

    def require_prediction(self) -> float:
        """``predicted_ms`` of a priced plan (the optimizer's and the predictor's always are);
        PlanError naming the plan when it carries no prediction."""
        if self.predicted_ms is None:
            raise PlanError(f"plan {self.describe()} has no predicted latency")
        return self.predicted_ms

    # ---- JSON
    def to_json(self) -> dict:
        """The plan file's object (the origin fields only when the plan has an origin)."""
        out = {
            "schema": PLAN_SCHEMA,
            "batch": self.batch,
            "cores": self.cores,
            "instances": [
                {"threads": i.threads, "batch": i.batch, "cores": list(i.cores)} for i in self.instances
            ],
            "predicted_ms": self.predicted_ms,
        }
        if self.origin is not None:
            out.update(self.origin.to_json())
        return out

    @classmethod
    def from_json(cls, obj: object) -> Plan:
        """Parse a plan JSON object; raises PlanError naming the bad field."""
        if not isinstance(obj, Mapping):
            raise PlanError(f"a plan must be a JSON object, got {type(obj).__name__}")
        if obj.get("schema") != PLAN_SCHEMA:
            raise PlanError(f"unknown plan schema {obj.get('schema')!r}; this version reads {PLAN_SCHEMA!r}")
        raw = obj.get("instances")
        if not isinstance(raw, list):
            raise PlanError(f"plan 'instances' must be a list, got {raw!r:.60}")
        instances = []
        for k, d in enumerate(raw):
            if not isinstance(d, Mapping):
                raise PlanError(f"instances[{k}] must be an object, got {d!r:.60}")
            cores = d.get("cores", [])
            if not isinstance(cores, list) or any(not validate.is_integer(c) or c < 0 for c in cores):
                raise PlanError(f"instances[{k}].cores must be a list of CPU ids >= 0, got {cores!r:.60}")
            instances.append(
                Instance(
                    threads=validate.positive_int(d.get("threads"), f"instances[{k}].threads", error=PlanError),
                    batch=validate.positive_int(d.get("batch"), f"instances[{k}].batch", error=PlanError),
                    cores=tuple(cores),
                )
            )
        pred = obj.get("predicted_ms")
        return cls(
            instances=tuple(instances),
            batch=validate.positive_int(obj.get("batch"), "plan batch", error=PlanError),
            cores=validate.positive_int(obj.get("cores"), "plan cores", error=PlanError),
            predicted_ms=pred,
            origin=PlanOrigin.from_json(obj),
        )


#: Most instances a compact plan may name (a plan never has more instances than cores).
MAX_COMPACT_INSTANCES = 65_536


def _compact_group(group: str) -> tuple[int, int, int]:
    """``"4 x 4t x 16"`` / ``"4x4x16"`` -> (count, threads, sub-batch); PlanError naming the group."""
    parts = re.split(r"[xX]", group)
    if len(parts) != 3:
        raise PlanError(f"plan group {group.strip()!r} is not COUNT x THREADS x SUB-BATCH (e.g. 4x4x16)")
    count, threads, batch = parts
    threads = re.sub(r"[tT]\s*$", "", threads.strip())  # describe() writes threads as "4t"
    what = f"plan group {group.strip()!r}:"
    return (parse_count(count, f"{what} count", error=PlanError),
            parse_count(threads, f"{what} threads", error=PlanError),
            parse_count(batch, f"{what} sub-batch", error=PlanError))


def parse_compact(text: str, cores: int | None = None) -> Plan:
    """The plan written in Packrat's compact form: ``count x threads x sub-batch`` groups
    joined by ``+`` (spaces allowed, ``x`` or ``X``, threads may carry :meth:`Plan.describe`'s
    ``t``: ``parse_compact(p.describe())`` gives ``p`` back). The batch is the sum of the
    sub-batches; ``cores`` defaults to the threads the plan uses. Raises PlanError naming
    the malformed group, or the plan when it needs more threads than ``cores``. Pure."""
    if not isinstance(text, str) or not text.strip():
        raise PlanError(f"a plan needs at least one group COUNT x THREADS x SUB-BATCH (e.g. 4x4x16), got {text!r}")
    groups = [_compact_group(g) for g in text.split("+")]
    total = sum(n for n, _, _ in groups)
    if total > MAX_COMPACT_INSTANCES:
        raise PlanError(f"plan {text.strip()!r} has {total} instances, more than {MAX_COMPACT_INSTANCES}")
    threads = sum(n * t for n, t, _ in groups)
    if cores is not None:
        cores = validate.positive_int(cores, "plan cores", error=PlanError)
        if threads > cores:
            raise PlanError(f"plan {text.strip()!r} needs {threads} threads but only {cores} cores are available")
    instances = tuple(Instance(t, b) for n, t, b in groups for _ in range(n))
    return Plan(instances, sum(n * b for n, _, b in groups), threads if cores is None else cores)


def loads_plan(text: str) -> Plan:
    """Parse plan JSON text strictly (:func:`packrat_sim.inputs.loads_json`: no duplicate key,
    NaN, huge integer, deep nesting or lone surrogate); raises PlanError for malformed input."""
    return Plan.from_json(loads_json(text, "the plan JSON", error=PlanError))


def dumps_plan(plan: Plan) -> str:
    return json.dumps(plan.to_json(), indent=1) + "\n"


# -------------------------------------------------------------------- baselines


def split_evenly(batch: int, parts: int) -> list[int]:
    """Split ``batch`` into ``min(parts, batch)`` sizes differing by at most one, largest first."""
    validate.positive_int(batch, "batch", error=PlanError)
    validate.positive_int(parts, "parts", error=PlanError)
    k = min(parts, batch)
    q, r = divmod(batch, k)
    return [q + 1] * r + [q] * (k - r)


def fat(batch: int, cores: int) -> Plan:
    """One instance with all ``cores`` threads on the whole batch (the usual deployment)."""
    return Plan((Instance(cores, batch),), batch, cores)


def thin(batch: int, cores: int) -> Plan:
    """min(cores, batch) single-thread instances sharing the batch evenly."""
    return Plan(tuple(Instance(1, b) for b in split_evenly(batch, cores)), batch, cores)


def equal_instances(batch: int, cores: int, k: int) -> Plan:
    """``k`` instances of ``cores // k`` threads each, the batch split evenly (k <= batch)."""
    validate.positive_int(k, "instance count", error=PlanError)
    if k > cores:
        raise PlanError(f"{k} instances need at least {k} cores, only {cores} available")
    if k > batch:
        raise PlanError(f"{k} instances cannot share a batch of {batch}")
    t = cores // k
    return Plan(tuple(Instance(t, b) for b in split_evenly(batch, k)), batch, cores)


def fixed_cores(batch: int, cores: int, per_instance: int = 4) -> Plan:
    """Launcher "latency mode": instances of ``per_instance`` cores each, as many as fit.

    With fewer cores than ``per_instance``, one instance takes them all. The number of
    instances never exceeds the batch.
    """
    validate.positive_int(per_instance, "cores per instance", error=PlanError)
    k = max(1, min(cores // per_instance, batch))
    t = min(per_instance, cores)
    return Plan(tuple(Instance(t, b) for b in split_evenly(batch, k)), batch, cores)


def plan_latency(plan: Plan, latency: Callable[[int, int], float | None]) -> float | None:
    """Batch latency of ``plan``: max over instances of ``latency(threads, batch)``.

    Returns None if any instance's latency is unknown (``latency`` returned None).
    """
    worst = 0.0
    for inst in plan.instances:
        v = latency(inst.threads, inst.batch)
        if v is None:
            return None
        worst = max(worst, v)
    return worst
