"""DS2's distributed-register benchmark as actors (variants ``ds2`` and ``ds2-erroneous`` of
``register``).

Mirrors the register of DS2 (Al-Mahfoudh, Stutsman, Gopalakrishnan, "DS2: a domain-specific
language and scheduler for distributed systems"), whose schedule counts the paper publishes:

- agents ``register1 .. registerN`` (N = ``replicas``); ``register1`` is the leader;
- one client per operation (``writer`` clients first, then readers: ``c0, c1, ...``); every request
  is in flight from the start; operation j goes to ``register(j mod N + 1)`` (round robin: with
  one write and two reads, the write to register1 and the reads to register2 and then register1,
  or register3 when N = 3);
- the invocation is recorded when the agent receives the request (DS2 logs it there), the
  response when the client receives the answer;
- ``ds2``: a write (only at the leader; elsewhere it is forwarded to it) writes locally, sends a
  replica write to every peer and acknowledges after a majority of acknowledgements counting
  itself; a read at a non-leader is forwarded to the leader, which asks every peer for its value
  and answers once a majority (counting its own value) agree;
- ``ds2-erroneous``: the write is acknowledged after the first replica acknowledgement, and any
  agent answers a read at once with its local value.

Every message is delivered (nothing is discarded as late), as DS2 schedules them all.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from checker.actors import Actor, Invoke, Return, Send

__all__ = ["Ds2Agent", "Ds2Client", "ds2_actors"]


@dataclass(frozen=True)
class Ds2Client(Actor):
    """Sends its one request at start; returns the answer."""

    is_client = True
    agent: str
    op: tuple  # ("w", value) or ("r", None)

    def on_start(self):
        kind, value = self.op
        return "waiting", [Send(self.agent, ("write", value) if kind == "w" else ("read",))]

    def history_effects(self, msg):
        return False, True

    def on_msg(self, state, src, msg):
        if state != "waiting":
            return state, []
        return "done", [Return(None if msg[0] == "wack" else msg[1])]


@dataclass(frozen=True)
class Ds2Agent(Actor):
    """State: ``(value, pending)`` with ``pending`` a tuple of ``(client, kind, votes)`` for the
    leader's operations in progress (``votes``: acknowledgements, or a tuple of values read)."""

    name: str
    leader: str
    peers: tuple[str, ...]  # every agent but this one
    erroneous: bool

    @property
    def majority(self) -> int:
        return (len(self.peers) + 1) // 2 + 1

    def on_start(self):
        return (None, ()), []

    def history_effects(self, msg):
        return msg[0] in ("write", "read"), False

    def _update(self, pending, client, entry):
        rest = tuple(p for p in pending if p[0] != client)
        return rest if entry is None else rest + (entry,)

    def on_msg(self, state, src, msg):
        value, pending = state
        kind = msg[0]
        if kind in ("write", "read"):  # a client's request: the operation starts here
            invoke = Invoke({"op": "write", "value": msg[1]} if kind == "write" else {"op": "read"}, client=src)
            if kind == "read" and self.erroneous:
                return state, [invoke, Send(src, ("value", value))]
            if self.name != self.leader:
                fwd = ("fwrite", src, msg[1]) if kind == "write" else ("fread", src)
                return state, [invoke, Send(self.leader, fwd)]
            st, cmds = self._lead(value, pending, src, kind, msg[1] if kind == "write" else None)
            return st, [invoke] + cmds
        if kind in ("fwrite", "fread"):
            return self._lead(value, pending, msg[1], "write" if kind == "fwrite" else "read",
                              msg[2] if kind == "fwrite" else None)
        if kind == "rwrite":  # at a peer
            return (msg[2], pending), [Send(src, ("rack", msg[1]))]
        if kind == "rread":
            return state, [Send(src, ("rval", msg[1], value))]
        if kind == "rack":
            client = msg[1]
            entry = next((p for p in pending if p[0] == client), None)
            if entry is None:
                return state, []
            acks = entry[2] + 1
            need = 2 if self.erroneous else self.majority
            if acks >= need:
                return (value, self._update(pending, client, None)), [Send(client, ("wack",))]
            return (value, self._update(pending, client, (client, "write", acks))), []
        if kind == "rval":
            client = msg[1]
            entry = next((p for p in pending if p[0] == client), None)
            if entry is None:
                return state, []
            votes = entry[2] + (msg[2],)
            top, n = Counter(votes).most_common(1)[0]
            if n >= self.majority:
                return (value, self._update(pending, client, None)), [Send(client, ("value", top))]
            return (value, self._update(pending, client, (client, "read", votes))), []
        return state, []

    def _lead(self, value, pending, client, kind, new):
        """The leader starts ``client``'s operation (``new``: the value written)."""
        if kind == "write":
            value = new
            if 1 >= self.majority and not self.erroneous:
                return (value, pending), [Send(client, ("wack",))]
            return (value, pending + ((client, "write", 1),)), [Send(p, ("rwrite", client, new)) for p in self.peers]
        if 1 >= self.majority:
            return (value, pending), [Send(client, ("value", value))]
        return (value, pending + ((client, "read", (value,)),)), [Send(p, ("rread", client)) for p in self.peers]


def ds2_actors(variant: str, replicas: int, writers: int, writes: int, readers: int, reads: int) -> list:
    """The actors of DS2's register: clients first (one per operation), then the agents."""
    agents = tuple(f"register{i + 1}" for i in range(replicas))
    ops = [("w", w * writes + j + 1) for w in range(writers) for j in range(writes)]
    ops += [("r", None) for _ in range(readers) for _ in range(reads)]
    actors: list = [(f"c{j}", Ds2Client(agents[j % replicas], op)) for j, op in enumerate(ops)]
    erroneous = variant == "ds2-erroneous"
    for name in agents:
        actors.append((name, Ds2Agent(name, agents[0], tuple(a for a in agents if a != name), erroneous)))
    return actors
