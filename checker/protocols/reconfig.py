"""DESIGN.md's reconfiguration protocol as actors, correct and with four known bugs.

Actors (names as they appear in schedules):

``c0, c1, ...`` (clients)
    each runs a script of ``batches`` inference requests, one at a time: ``infer(batch, size)``
    to the dispatcher; the answer ``{"epoch": e, "digest": d}`` (or ``{"epochs": [...], ...}``
    when the sub-batches ran in different epochs) is the operation's output.
``operator`` (client)
    calls ``reconfigure(plan)`` on the controller ``reconfigures`` times; output ``{"epoch": e}``.
``dispatcher``
    splits each batch into one sub-batch per routing slot, sends ``run`` to the slot's instance,
    and answers the client when every sub-batch is ``done``, with the epochs they ran in. On
    ``switch`` it replaces the routing in one step, and drains the old instances: each is sent
    ``stop`` once it holds no sub-batch.
``controller``
    ``reconfigure``: start the instances of epoch e+1, wait until each reports ``ready``, tell the
    dispatcher to ``switch``, and answer the operator once the dispatcher confirms.
``i<epoch>.<slot>`` (instances)
    epoch 0 starts ready; later epochs start off and become ready on ``start``. A ready instance
    answers ``run`` with ``done`` (tagged with its epoch). An instance that is off or stopped loses
    the work it receives (a process that is not running reads no queue).

Variants (``buggy`` ones must be found by the explorer):

``correct``
    the protocol above.
``switch-before-ready``
    the controller switches routing without waiting for ``ready``: work can reach an instance that
    has not started, and is lost.
``stop-before-drain``
    the controller stops the old instances as soon as routing switched, without draining: a
    sub-batch still on its way to an old instance is lost.
``per-instance-switch``
    routing is switched slot by slot (``switch-slot``): a batch dispatched in between runs its
    sub-batches in two epochs.
``ack-before-switch``
    the controller answers the operator when it sends ``switch``, before the dispatcher switched:
    a batch submitted after ``reconfigure`` returned can still run in the old epoch (illegal under
    the ``serving`` model).
``drop-batch``
    the dispatcher discards a result that comes back from an instance of an epoch older than its
    routing (it takes it for stale) and forgets that batch: the batch was accepted and is never
    answered. The history only has a pending operation, which is linearizable; the
    ``eventually`` property below (and the quiescent invariant) catch it.

Invariants (DESIGN.md's, checked on every state by the explorer, each stable once violated):
no instance receives work before it is ready; no instance is stopped while it holds work (a
sub-batch on its way to it, or one it lost); all sub-batches of one batch run in one epoch; every
batch is answered exactly once (no second answer, and, where nothing is left to deliver, no
batch left unanswered). Histories are judged by the ``serving`` model.

Properties with expectations (:mod:`checker.explore.properties`): ``sometimes`` "a
reconfiguration completes" (the operator's first ``reconfigure`` returns; declared when
``reconfigures`` >= 1, so a configuration in which no reconfiguration can complete is reported
as vacuous), and ``eventually`` "every accepted batch is answered" (every client has submitted
all its batches and each was answered; excused where a message was dropped or an actor crashed,
as the fault model allows a request to go unanswered then).

Fault model (``drops``, ``duplicates``, ``crashes``, ``restarts`` parameters): every message is
idempotent (requests carry batch ids, reconfiguration requests and switches carry epochs, and a
duplicate is recognised and ignored), so ``correct`` stays correct under duplication; a dropped
message or a crash-stop can leave a request unanswered but never breaks safety. The actors keep
no durable state, so a restart (which starts an actor afresh) is outside the fault model, and
the explorer shows how it breaks the protocol.

Parameters: ``clients`` (1), ``batches`` per client (2), ``batch`` size (4), ``instances`` per
epoch (1; 2 for ``per-instance-switch``), ``reconfigures`` (1), ``network`` (``unordered``), and the fault budgets
``drops``, ``duplicates``, ``crashes``, ``restarts`` (0).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from checker.actors import Actor, Invariant, Invoke, Return, Send, System, SystemState, all_operations_return
from checker.explore.properties import eventually, sometimes
from checker.protocols.registry import FAULT_DEFAULTS, Protocol, ProtocolError
from checker.protocols.registry import ProtocolSpec, make_protocol, require_at_least
from packrat_sim.plan import Instance as PlanInstance
from packrat_sim.plan import Plan, split_evenly

DISPATCHER = "dispatcher"
CONTROLLER = "controller"
OPERATOR = "operator"

VARIANTS = {
    "correct": ("start, wait for ready, switch in one step, ack, drain then stop", False),
    "switch-before-ready": ("routing switched before the new instances are ready", True),
    "stop-before-drain": ("old instances stopped as soon as routing switched, while holding work", True),
    "per-instance-switch": ("routing switched slot by slot, so one batch can span two epochs", True),
    "ack-before-switch": ("reconfigure returns before the dispatcher switched routing", True),
    "drop-batch": ("a result from an instance of an older epoch is discarded: its batch is never answered", True),
}


def instance_name(epoch: int, slot: int) -> str:
    return f"i{epoch}.{slot}"


def _digest(batch: int, size: int) -> str:
    return f"b{batch}x{size}"


# --------------------------------------------------------------------------------------------
# clients


@dataclass(frozen=True)
class InferClient(Actor):
    """Sends its batches one at a time. State: ``(next index, outstanding batch or None)``.
    A result for a batch that is not outstanding (a duplicate the network made) is ignored."""

    is_client = True
    batches: tuple[int, ...]
    size: int

    def _invoke(self, i: int) -> list:
        b = self.batches[i]
        return [Invoke({"op": "infer", "batch": b, "size": self.size}), Send(DISPATCHER, ("infer", b, self.size))]

    def on_start(self):
        if not self.batches:
            return (0, None), []
        return (1, self.batches[0]), self._invoke(0)

    def on_msg(self, state, src, msg):
        nxt, outstanding = state
        if msg[0] != "result":
            return state, []
        _, batch, epochs, digest = msg
        if batch != outstanding:
            return state, []
        output: dict[str, Any] = {"epoch": epochs[0]} if len(epochs) == 1 else {"epochs": list(epochs)}
        output["digest"] = digest
        commands: list = [Return(output)]
        if nxt < len(self.batches):
            commands += self._invoke(nxt)
            return (nxt + 1, self.batches[nxt]), commands
        return (nxt, None), commands


@dataclass(frozen=True)
class Operator(Actor):
    """Calls ``reconfigure`` ``len(plans)`` times. State: ``(reconfigures done, outstanding?)``."""

    is_client = True
    plans: tuple[str, ...]  # canonical JSON of each target plan (kept hashable)

    def _invoke(self, i: int) -> list:
        return [Invoke({"op": "reconfigure", "plan": json.loads(self.plans[i])}), Send(CONTROLLER, ("reconfigure", i))]

    def on_start(self):
        if not self.plans:
            return (0, False), []
        return (0, True), self._invoke(0)

    def on_msg(self, state, src, msg):
        done, outstanding = state
        if msg[0] != "reconfigured" or not outstanding or msg[1] != done + 1:
            return state, []  # a duplicate of an earlier answer
        commands: list = [Return({"epoch": msg[1]})]
        done += 1
        if done < len(self.plans):
            return (done, True), commands + self._invoke(done)
        return (done, False), commands


# --------------------------------------------------------------------------------------------
# dispatcher


@dataclass(frozen=True)
class DispatcherState:
    routing: tuple[tuple[str, int], ...]  # per slot: (instance, epoch)
    pending: tuple = ()  # sorted (batch, client, size, parts, ((part, epoch), ...))
    outstanding: tuple = ()  # sorted (instance, sub-batches sent and not done), counts > 0
    retiring: frozenset = frozenset()  # old instances to stop once drained
    mixed: tuple = ()  # batches answered with sub-batches from several epochs
    answered: tuple = ()  # every answer sent, by batch (sorted; a batch twice is a bug)


def _bump(pairs: tuple, key: str, delta: int) -> tuple:
    d = dict(pairs)
    d[key] = d.get(key, 0) + delta
    if d[key] <= 0:
        del d[key]
    return tuple(sorted(d.items()))


@dataclass(frozen=True)
class Dispatcher(Actor):
    drain: bool  # stop old instances once they hold no work (False: the controller stops them)
    initial_routing: tuple[tuple[str, int], ...]
    discard_stale: bool = False  # drop-batch: forget a batch whose result comes from an older epoch

    def on_start(self):
        return DispatcherState(self.initial_routing), []

    def on_msg(self, state: DispatcherState, src, msg):
        kind = msg[0]
        if kind == "infer":
            _, batch, size = msg
            if batch in state.answered or any(entry[0] == batch for entry in state.pending):
                return state, []  # a duplicate request
            sizes = split_evenly(size, len(state.routing))
            commands = []
            outstanding = state.outstanding
            lo = 0
            for slot, n in enumerate(sizes):
                inst, _ = state.routing[slot]
                commands.append(Send(inst, ("run", batch, slot, lo, lo + n)))
                outstanding = _bump(outstanding, inst, +1)
                lo += n
            pending = tuple(sorted(state.pending + ((batch, src, size, len(sizes), ()),)))
            return replace(state, pending=pending, outstanding=outstanding), commands
        if kind == "done":
            _, batch, part, epoch = msg
            if not any(e[0] == batch and all(p != part for p, _ in e[4]) for e in state.pending):
                return state, []  # a duplicate: this sub-batch was already counted
            state = replace(state, outstanding=_bump(state.outstanding, src, -1))
            if self.discard_stale and epoch < max(e for _, e in state.routing):
                return self._forget(state, src, batch)
            commands = []
            entries = []
            for entry in state.pending:
                if entry[0] != batch:
                    entries.append(entry)
                    continue
                b, client, size, parts, got = entry
                got = tuple(sorted(got + ((part, epoch),)))
                if len(got) < parts:
                    entries.append((b, client, size, parts, got))
                    continue
                epochs = tuple(sorted({e for _, e in got}))
                commands.append(Send(client, ("result", b, epochs, _digest(b, size))))
                state = replace(state, answered=tuple(sorted(state.answered + (b,))))
                if len(epochs) > 1:
                    state = replace(state, mixed=state.mixed + (b,))
            state = replace(state, pending=tuple(entries))
            if src in state.retiring and not dict(state.outstanding).get(src):
                commands.append(Send(src, ("stop",)))
                state = replace(state, retiring=state.retiring - {src})
            return state, commands
        if kind == "switch":
            _, epoch, instances = msg
            if epoch <= max(e for _, e in state.routing):
                return state, []  # a duplicate of a switch already made
            new_routing = tuple((inst, epoch) for inst in instances)
            old = [inst for inst, _ in state.routing if inst not in instances]
            state, commands = self._retire(replace(state, routing=new_routing), old)
            return state, commands + [Send(src, ("switched", epoch))]
        if kind == "switch-slot":
            _, epoch, slot, inst = msg
            if epoch <= state.routing[slot][1]:
                return state, []  # a duplicate of a switch already made
            routing = list(state.routing)
            old_inst = routing[slot][0]
            routing[slot] = (inst, epoch)
            still_used = {i for i, _ in routing}
            old = [] if old_inst in still_used else [old_inst]
            state, commands = self._retire(replace(state, routing=tuple(routing)), old)
            return state, commands + [Send(src, ("switched-slot", epoch, slot))]
        return state, []

    def _forget(self, state: DispatcherState, src: str, batch: int):
        """drop-batch's bug: drop ``batch`` from the pending ones without answering it (its
        result came from ``src``, an instance of an older epoch); stop ``src`` if it retires and
        is drained."""
        state = replace(state, pending=tuple(e for e in state.pending if e[0] != batch))
        if src in state.retiring and not dict(state.outstanding).get(src):
            return replace(state, retiring=state.retiring - {src}), [Send(src, ("stop",))]
        return state, []

    def _retire(self, state: DispatcherState, old: list[str]):
        if not self.drain:
            return state, []
        commands = []
        retiring = set(state.retiring)
        busy = dict(state.outstanding)
        for inst in old:
            if busy.get(inst):
                retiring.add(inst)
            else:
                commands.append(Send(inst, ("stop",)))
        return replace(state, retiring=frozenset(retiring)), commands


# --------------------------------------------------------------------------------------------
# controller


@dataclass(frozen=True)
class ControllerState:
    epoch: int = 0
    phase: str = "idle"  # idle | starting | switching
    waiting: frozenset = frozenset()  # new instances not ready yet
    switching: frozenset = frozenset()  # slots (or {-1} for the whole routing) not confirmed
    requester: str | None = None
    acked: bool = False


@dataclass(frozen=True)
class Controller(Actor):
    epochs: tuple[tuple[str, ...], ...]  # instance names per epoch
    wait_ready: bool = True
    per_slot: bool = False
    ack_before_switch: bool = False
    stop_old: bool = False  # stop the old instances right after the switch (no drain)

    def on_start(self):
        return ControllerState(), []

    def on_msg(self, state: ControllerState, src, msg):
        kind = msg[0]
        if kind == "reconfigure":
            target = state.epoch + 1
            if state.phase != "idle" or msg[1] != state.epoch or target >= len(self.epochs):
                # one reconfiguration at a time, within the configured epochs; request i moves
                # epoch i to i + 1, so a duplicated request is ignored
                return state, []
            new = self.epochs[target]
            commands: list = [Send(inst, ("start",)) for inst in new]
            state = replace(state, phase="starting", waiting=frozenset(new), requester=src, acked=False)
            if not self.wait_ready:
                state, more = self._switch(state)
                commands += more
            return state, commands
        if kind == "ready":
            if state.phase == "idle" or src not in state.waiting:
                return state, []
            state = replace(state, waiting=state.waiting - {src})
            if state.phase == "starting" and not state.waiting:
                return self._switch(state)
            return state, []
        if kind in ("switched", "switched-slot"):
            if state.phase != "switching":
                return state, []
            slot = -1 if kind == "switched" else msg[2]
            left = state.switching - {slot}
            if left:
                return replace(state, switching=left), []
            target = state.epoch + 1
            commands = []
            if self.stop_old:
                commands += [Send(inst, ("stop",)) for inst in self.epochs[state.epoch]]
            if not state.acked:
                assert state.requester is not None  # (set when the reconfiguration started)
                commands.append(Send(state.requester, ("reconfigured", target)))
            return ControllerState(epoch=target), commands
        return state, []

    def _switch(self, state: ControllerState):
        target = state.epoch + 1
        new = self.epochs[target]
        if self.per_slot:
            commands: list = [Send(DISPATCHER, ("switch-slot", target, slot, inst)) for slot, inst in enumerate(new)]
            slots = frozenset(range(len(new)))
        else:
            commands = [Send(DISPATCHER, ("switch", target, new))]
            slots = frozenset({-1})
        acked = False
        if self.ack_before_switch:
            assert state.requester is not None  # (set when the reconfiguration started)
            commands.append(Send(state.requester, ("reconfigured", target)))
            acked = True
        return replace(state, phase="switching", switching=slots, acked=acked), commands


# --------------------------------------------------------------------------------------------
# instances


@dataclass(frozen=True)
class ServingInstance(Actor):
    """State: ``(status, lost)``: status ``off`` | ``ready`` | ``stopped``; ``lost`` the
    ``(batch, part, status)`` of every sub-batch that arrived while it was not ready."""

    epoch: int
    starts_ready: bool

    def on_start(self):
        return ("ready" if self.starts_ready else "off", ()), []

    def on_msg(self, state, src, msg):
        status, lost = state
        kind = msg[0]
        if kind == "start":
            if status == "off":
                return ("ready", lost), [Send(src, ("ready",))]
            return state, []
        if kind == "run":
            _, batch, part, lo, hi = msg
            if status == "ready":
                return state, [Send(src, ("done", batch, part, self.epoch))]
            return (status, lost + ((batch, part, status),)), []
        if kind == "stop":
            return ("stopped", lost), []
        return state, []


# --------------------------------------------------------------------------------------------
# invariants


def _instances(system: System):
    for name, actor in zip(system.names, system.actors):
        if isinstance(actor, ServingInstance):
            yield name


def _awaited(system: System, state: SystemState) -> set[tuple[int, int]]:
    """The ``(batch, part)`` sub-batches the dispatcher still waits for: work that is lost if
    it is lost (a duplicate of a sub-batch already done is not)."""
    return {(batch, part) for batch, _, _, parts, got in system.last_state_of(state, DISPATCHER).pending
            for part in range(parts) if all(p != part for p, _ in got)}


def _no_work_before_ready(system: System, state: SystemState) -> str | None:
    awaited = None
    for name in _instances(system):
        _, lost = system.last_state_of(state, name)
        for batch, part, status in lost:
            if status == "off":
                awaited = _awaited(system, state) if awaited is None else awaited
                if (batch, part) in awaited:
                    return f"instance {name} received sub-batch {part} of batch {batch} before it was started and ready (the work is lost)"
    return None


def _no_stop_while_holding_work(system: System, state: SystemState) -> str | None:
    awaited = None
    for name in _instances(system):
        status, lost = system.last_state_of(state, name)
        if status != "stopped" and not lost:
            continue
        awaited = _awaited(system, state) if awaited is None else awaited
        for batch, part, st in lost:
            if st == "stopped" and (batch, part) in awaited:
                return f"instance {name} was stopped while sub-batch {part} of batch {batch} was on its way to it (the work is lost)"
        if status == "stopped":
            for env in system.in_flight(state):
                msg = env.msg  # (every message of this protocol is a tuple led by its kind)
                if env.dst == name and isinstance(msg, tuple) and msg[0] == "run" and (msg[1], msg[2]) in awaited:
                    return f"instance {name} was stopped while it holds sub-batch {msg[2]} of batch {msg[1]}"
    return None


def _one_epoch_per_batch(system: System, state: SystemState) -> str | None:
    mixed = system.last_state_of(state, DISPATCHER).mixed
    if mixed:
        return f"the sub-batches of batch {mixed[0]} ran in different epochs"
    return None


def _answered_at_most_once(system: System, state: SystemState) -> str | None:
    answered = system.last_state_of(state, DISPATCHER).answered
    for a, b in zip(answered, answered[1:]):
        if a == b:
            return f"the dispatcher answered batch {a} twice"
    return None


def _answered(system: System, state: SystemState) -> str | None:
    problem = all_operations_return(system, state)
    return None if problem is None else problem.replace("operation", "request", 1)


def _reconfiguration_completed(system: System, state: SystemState) -> bool:
    """The operator's first ``reconfigure`` returned."""
    return system.last_state_of(state, OPERATOR)[0] >= 1


def _every_batch_answered(system: System, state: SystemState) -> bool:
    """Every client submitted all its batches and each was answered (or a message was dropped
    or an actor crashed, which may leave a request unanswered within the fault model)."""
    if state.used[0] or state.used[2]:
        return True
    for name, actor in zip(system.names, system.actors):
        if isinstance(actor, InferClient):
            nxt, outstanding = system.last_state_of(state, name)
            if outstanding is not None or nxt < len(actor.batches):
                return False
    return True


RECONFIGURATION_COMPLETES = sometimes("a reconfiguration completes", _reconfiguration_completed)
BATCHES_ANSWERED = eventually("every accepted batch is answered", _every_batch_answered)

ANSWERED = "every batch is answered exactly once"
INVARIANTS = (
    Invariant("no instance receives work before it is ready", _no_work_before_ready),
    Invariant("no instance is stopped while it holds work", _no_stop_while_holding_work),
    Invariant("all sub-batches of one batch run in one epoch", _one_epoch_per_batch),
    Invariant(ANSWERED, _answered_at_most_once),
    Invariant(ANSWERED, _answered, quiescent=True),
)


# --------------------------------------------------------------------------------------------
# construction


def _plan_json(batch: int, instances: int) -> str:
    sizes = split_evenly(batch, instances)
    plan = Plan(tuple(PlanInstance(1, b) for b in sizes), batch, len(sizes))
    return json.dumps(plan.to_json(), sort_keys=True, separators=(",", ":"))


def build_reconfig(variant: str, params: dict) -> Protocol:
    clients, batches, size = params["clients"], params["batches"], params["batch"]
    k, reconfigures = params["instances"], params["reconfigures"]
    require_at_least("reconfig", (("clients", clients, 0), ("batches", batches, 0), ("batch", size, 1),
                                  ("instances", k, 1), ("reconfigures", reconfigures, 0)))
    if k > size:
        raise ProtocolError(f"reconfig parameter instances={k} exceeds the batch size {size}")
    if variant == "per-instance-switch" and k < 2:
        raise ProtocolError("variant per-instance-switch needs instances >= 2 (one slot cannot be switched piecewise)")
    epochs = tuple(tuple(instance_name(e, s) for s in range(k)) for e in range(reconfigures + 1))
    controller = Controller(
        epochs=epochs,
        wait_ready=variant != "switch-before-ready",
        per_slot=variant == "per-instance-switch",
        ack_before_switch=variant == "ack-before-switch",
        stop_old=variant == "stop-before-drain",
    )
    dispatcher = Dispatcher(drain=variant != "stop-before-drain", initial_routing=tuple((i, 0) for i in epochs[0]),
                            discard_stale=variant == "drop-batch")
    actors: list[tuple[str, Actor]] = [
        (f"c{c}", InferClient(tuple(c * batches + j for j in range(batches)), size)) for c in range(clients)
    ]
    actors.append((OPERATOR, Operator(tuple(_plan_json(size, k) for _ in range(reconfigures)))))
    actors.append((DISPATCHER, dispatcher))
    actors.append((CONTROLLER, controller))
    actors += [(name, ServingInstance(e, starts_ready=e == 0)) for e, names in enumerate(epochs) for name in names]
    properties = ((RECONFIGURATION_COMPLETES,) if reconfigures else ()) + (BATCHES_ANSWERED,)
    return make_protocol("reconfig", variant, params, actors, model="serving", variants=VARIANTS, invariants=INVARIANTS,
                         properties=properties)


SPEC = ProtocolSpec(
    name="reconfig",
    description="DESIGN.md's reconfiguration protocol: clients, dispatcher, controller, old and new instances",
    variants=VARIANTS,
    default_variant="correct",
    defaults={"clients": 1, "batches": 2, "batch": 4, "instances": 1, "reconfigures": 1, "network": "unordered", **FAULT_DEFAULTS},
    variant_defaults={"per-instance-switch": {"instances": 2}},
    build=build_reconfig,
)
