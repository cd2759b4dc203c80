"""Replicated registers as actors (DS2's running example), one correct, one erroneous, and ABD.

``replicas`` replica actors ``p0, p1, ...`` each keep, per key, a timestamped value
``((seq, writer), value)`` and answer every request at once. Clients (``w0, ...`` writers and
``r0, ...`` readers) run their scripts one operation at a time and talk to every replica; a
*majority* is ``replicas // 2 + 1``.

``majority`` (correct for one writer)
    write(v): the writer stamps ``(seq + 1, writer)``, sends it to every replica, and returns once
    a majority acknowledged. read(): asks every replica and returns once a majority report the
    same timestamped value (once a value is on a majority, no later read can see a majority
    agree on an older one).
``erroneous`` (DS2's erroneous register)
    as ``majority``, but a read returns as soon as one replica answers: after a write returned,
    a read can still see a replica the write has not reached (new-old inversion).
``abd`` (Attiya, Bar-Noy, Dolev; correct for any number of writers)
    both operations first ask a majority for their timestamped values; a write then stores
    ``(max seq + 1, writer)``, a read writes back the largest value it saw; each returns once a
    majority acknowledged that second phase.

Scripts: each writer writes ``writes`` values (writer w's j-th value is ``w * writes + j + 1``),
each reader reads ``reads`` times; the j-th operation of a client uses key ``j % keys``. With one
key, histories use the ``register`` model (``{"op": "write", "value": v}``, ``{"op": "read"} -> v``,
None initially); with several, the ``kv`` model (``put`` / ``get`` of strings, ``""`` initially),
which is judged per key. Replicas declare the key of each message (``key_of``) for key-aware
reduction.

Parameters: ``replicas`` (3), ``writers`` (1), ``writes`` (1), ``readers`` (1), ``reads`` (2),
``keys`` (1), ``network`` (``unordered``), and the fault budgets
``drops``, ``duplicates``, ``crashes``, ``restarts`` (0). The defaults are DS2's reference configuration: one
write and two reads.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from checker.actors import Actor, Invariant, Invoke, Return, Send, all_operations_return
from checker.protocols.registry import FAULT_DEFAULTS, Protocol, ProtocolError
from checker.protocols.registry import ProtocolSpec, make_protocol, require_at_least
from checker.protocols.ds2 import ds2_actors

VARIANTS = {
    "majority": ("writes and reads wait for a majority (reads: a majority agreeing); one writer", False),
    "erroneous": ("a read returns once one replica answers (DS2's erroneous register)", True),
    "abd": ("Attiya-Bar-Noy-Dolev: query a majority, then write (back) to a majority", False),
    "ds2": ("DS2's benchmark register: leader-based, 2 agents, one client per operation (see checker.protocols.ds2)", False),
    "ds2-erroneous": ("DS2's erroneous benchmark register: 3 agents, first ack acknowledges, reads answer locally", True),
}

INITIAL_TS = (0, -1)


@dataclass(frozen=True)
class Replica(Actor):
    """State: a tuple, per key, of ``(timestamp, value)``."""

    keys: int
    initial: Any

    def on_start(self):
        return tuple((INITIAL_TS, self.initial) for _ in range(self.keys)), []

    def key_of(self, msg):
        return msg[1]

    def read_only(self, msg):
        return msg[0] in ("read", "get")

    def on_msg(self, state, src, msg):
        kind, k, req = msg[0], msg[1], msg[2]
        ts, value = state[k]
        if kind == "read":
            return state, [Send(src, ("value", k, req, ts, value))]
        if kind == "get":
            return state, [Send(src, ("got", k, req, ts, value))]
        if kind in ("write", "put"):
            new_ts, new_value = msg[3], msg[4]
            if new_ts > ts:
                state = state[:k] + ((new_ts, new_value),) + state[k + 1:]
            return state, [Send(src, ("ack", k, req))]
        return state, []


@dataclass(frozen=True)
class RegisterClient(Actor):
    """Runs ``script`` (``("w", key, value)`` / ``("r", key, None)`` operations).

    State: ``(op index, phase, replies, seq, carry)``: ``replies`` a frozenset of
    ``(replica, payload)`` for the current phase; ``seq`` the writer's last sequence number
    (majority / erroneous); ``carry`` the timestamped value of ABD's second phase.
    """

    is_client = True
    index: int
    variant: str
    replicas: tuple[str, ...]
    script: tuple[tuple[str, int, Any], ...]
    keyed: bool  # kv-model inputs (several keys) rather than register-model inputs

    @property
    def majority(self) -> int:
        return len(self.replicas) // 2 + 1

    def _input(self, op) -> dict:
        kind, k, value = op
        if self.keyed:
            if kind == "w":
                return {"op": "put", "key": f"k{k}", "value": value}
            return {"op": "get", "key": f"k{k}"}
        return {"op": "write", "value": value} if kind == "w" else {"op": "read"}

    def _broadcast(self, msg) -> list:
        return [Send(r, msg) for r in self.replicas]

    def _begin(self, i: int, seq: int):
        """State and commands that start operation ``i`` (or finish the script)."""
        if i >= len(self.script):
            return (i, "", frozenset(), seq, None), []
        kind, k, value = self.script[i]
        commands: list = [Invoke(self._input(self.script[i]))]
        if self.variant == "abd":
            phase = "get-w" if kind == "w" else "get-r"
            return (i, phase, frozenset(), seq, None), commands + self._broadcast(("get", k, i))
        if kind == "w":
            seq += 1
            return (i, "write", frozenset(), seq, None), commands + self._broadcast(("write", k, i, (seq, self.index), value))
        return (i, "read", frozenset(), seq, None), commands + self._broadcast(("read", k, i))

    def on_start(self):
        return self._begin(0, 0)

    def _finish(self, state, output):
        i, _, _, seq, _ = state
        nxt, commands = self._begin(i + 1, seq)
        return nxt, [Return(output)] + commands

    def history_effects(self, msg):
        """A reply to operation i may return it and invoke operation i + 1 (if the script has
        one); ABD's query replies ("got") never end an operation."""
        if msg[0] == "got":
            return False, False
        return msg[2] + 1 < len(self.script), True

    _PHASES = {"value": ("read",), "ack": ("write", "put-w", "put-r"), "got": ("get-w", "get-r")}

    def ignores(self, state, src, msg):
        """A reply to an earlier operation, or to a phase already left, never matters again
        (the operation index and the phase within an operation only move forward)."""
        i, phase = state[0], state[1]
        return msg[2] != i or phase not in self._PHASES.get(msg[0], ())

    def on_msg(self, state, src, msg):
        i, phase, replies, seq, carry = state
        kind, k, req = msg[0], msg[1], msg[2]
        if req != i or not phase:
            return state, []  # a late answer to an earlier operation
        if (kind, phase) in (("value", "read"),):
            replies = replies | {(src, (msg[3], msg[4]))}
            if self.variant == "erroneous":
                return self._finish(state, msg[4])
            counts = Counter(payload for _, payload in replies)
            agreed = [payload for payload, n in counts.items() if n >= self.majority]
            if agreed:
                return self._finish(state, agreed[0][1])
            return (i, phase, replies, seq, carry), []
        if kind == "ack" and phase in ("write", "put-w", "put-r"):
            replies = replies | {(src, None)}
            if len(replies) >= self.majority:
                return self._finish(state, carry[1] if phase == "put-r" else None)
            return (i, phase, replies, seq, carry), []
        if kind == "got" and phase in ("get-w", "get-r"):
            replies = replies | {(src, (msg[3], msg[4]))}
            if len(replies) < self.majority:
                return (i, phase, replies, seq, carry), []
            if phase == "get-w":
                top = max(ts for _, (ts, _) in replies)
                value = self.script[i][2]
                carry = ((top[0] + 1, self.index), value)
                nxt = "put-w"
            else:
                carry = max(payload for _, payload in replies)
                nxt = "put-r"
            return (i, nxt, frozenset(), seq, carry), self._broadcast(("put", k, i, carry[0], carry[1]))
        return state, []


def build_register(variant: str, params: dict) -> Protocol:
    replicas, writers, writes = params["replicas"], params["writers"], params["writes"]
    readers, reads, keys = params["readers"], params["reads"], params["keys"]
    require_at_least("register", (("replicas", replicas, 1), ("writers", writers, 0), ("writes", writes, 0),
                                  ("readers", readers, 0), ("reads", reads, 0), ("keys", keys, 1)))
    if variant in ("ds2", "ds2-erroneous"):
        if keys != 1:
            raise ProtocolError(f"register variant {variant} has one key, not keys={keys}")
        return make_protocol(
            "register", variant, params, ds2_actors(variant, replicas, writers, writes, readers, reads),
            model="register", variants=VARIANTS,
        )
    keyed = keys > 1
    initial = "" if keyed else None
    replica_names = tuple(f"p{j}" for j in range(replicas))
    actors: list[tuple[str, Actor]] = []
    for w in range(writers):
        script = tuple(
            ("w", j % keys, str(w * writes + j + 1) if keyed else w * writes + j + 1) for j in range(writes)
        )
        actors.append((f"w{w}", RegisterClient(w, variant, replica_names, script, keyed)))
    for r in range(readers):
        script = tuple(("r", j % keys, None) for j in range(reads))
        actors.append((f"r{r}", RegisterClient(writers + r, variant, replica_names, script, keyed)))
    actors += [(name, Replica(keys, initial)) for name in replica_names]
    invariants: tuple[Invariant, ...] = ()
    if variant == "abd":
        invariants = (Invariant("every operation returns", all_operations_return, quiescent=True),)
    return make_protocol(
        "register", variant, params, actors,
        model="kv" if keyed else "register",
        variants=VARIANTS,
        invariants=invariants,
        op_key=(lambda inp: inp.get("key")) if keyed else None,
        # clients broadcast to every replica and replicas answer whoever asks: replicas are
        # interchangeable (their names appear in client states only as reply senders)
        symmetry=(replica_names,) if replicas > 1 else (),
    )


SPEC = ProtocolSpec(
    name="register",
    description="a replicated register (DS2's example): majority quorum, DS2's erroneous one, and ABD",
    variants=VARIANTS,
    default_variant="majority",
    defaults={"replicas": 3, "writers": 1, "writes": 1, "readers": 1, "reads": 2, "keys": 1, "network": "unordered", **FAULT_DEFAULTS},
    build=build_register,
    variant_defaults={"ds2": {"replicas": 2}, "ds2-erroneous": {"replicas": 3}},
)
