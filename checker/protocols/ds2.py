"""DS2's distributed-register benchmark as actors (variants ``ds2`` and ``ds2-erroneous`` of
``register``).

Mirrors the register of DS2 (Al-Mahfoudh, Stutsman, Gopalakrishnan, "DS2: a domain-specific
language and scheduler for distributed systems"), whose schedule counts the paper publishes:

- agents ``register1 .. registerN`` (N = ``replicas``); ``register1`` is the leader;
- one client per operation (``writer`` clients first, then readers: ``c0, c1, ...``); every request
  is in flight from the start; operation j goes to ``register(j mod N + 1)`` (round robin: with
  one write and two reads, the write to register1 and the reads to register2 and then register1,
  or register3 when N = 3);
- the invocation is recorded when the agent receives the request (DS2 logs it there); the
  answer is recorded by the agent that answers, when it answers: DS2 schedules the requests and
  the messages between agents, not the answers to the clients (a client sends its one request
  and receives nothing);
- ``ds2``: a write (only at the leader; elsewhere it is forwarded to it) writes locally, sends a
  replica write to every peer and acknowledges after a majority of acknowledgements counting
  itself; a read at a non-leader is forwarded to the leader, which asks every peer for its value
  and answers once a majority (counting its own value) agree;
- ``ds2-erroneous``: the write is acknowledged after the first replica acknowledgement, and any
  agent answers a read at once with its local value.

Every message is delivered (nothing is discarded as late), as DS2 schedules them all. Schedule
counts of the stateless exhaustive search, one write and two reads: ``ds2`` with N = 2 has three
independent causal chains of scheduled deliveries (the write: request, replica write, ack; the
read at register2: request, forward, replica read, value; the read at register1: request,
replica read, value), so 10!/(3! 4! 3!) = 4,200 schedules; ``ds2-erroneous`` with N = 3 (its
default) has the write's request followed by two independent replica-write/ack pairs (6 orders)
and two one-step reads, so 6 * 7!/5! = 252 schedules: DS2's two published figures.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from checker.actors import Actor, ActorError, Invoke, Return, Send

__all__ = ["Ds2Agent", "Ds2Client", "ds2_actors"]


@dataclass(frozen=True)
class Ds2Client(Actor):
    """Sends its one request at start and receives nothing: the agent that serves the request
    records its invocation and its answer (DS2 does not schedule the answer to a client)."""

    is_client = True
    agent: str
    op: tuple  # ("w", value) or ("r", None)

    def on_start(self):
        kind, value = self.op
        return "sent", [Send(self.agent, ("write", value) if kind == "w" else ("read",))]

    def history_effects(self, msg):
        return False, False

    def on_msg(self, state, src, msg):
        raise ActorError(f"DS2 client: unexpected message {msg!r} from {src!r} (answers are recorded, not sent)")


@dataclass(frozen=True)
class Ds2Agent(Actor):
    """State: ``(value, pending)`` with ``pending`` a tuple, sorted by client, of ``(client, kind,
    votes)`` for the leader's operations in progress (``votes``: acknowledgements, or a tuple of
    values read)."""

    name: str
    leader: str
    peers: tuple[str, ...]  # every agent but this one
    erroneous: bool

    @property
    def majority(self) -> int:
        return (len(self.peers) + 1) // 2 + 1

    @property
    def acks_needed(self) -> int:
        """Acknowledgements (the leader's own included) after which a write is acknowledged: a
        majority, or (erroneous) the leader's and the first replica's; never more than N."""
        return min(2, len(self.peers) + 1) if self.erroneous else self.majority

    def on_start(self):
        return (None, ()), []

    def history_effects(self, msg):
        """Requests invoke (and a read answered at once, or at a leader alone, returns); a replica
        ack or value may complete the leader's operation; a forwarded request returns only where
        the leader alone is a majority."""
        kind = msg[0]
        at_once = {"write": self.acks_needed <= 1, "read": self.majority <= 1}
        if kind in ("write", "read"):
            return True, (kind == "read" and self.erroneous) or (self.name == self.leader and at_once[kind])
        if kind in ("fwrite", "fread"):
            return False, at_once[kind[1:]]
        return False, kind in ("rack", "rval")

    def key_of(self, msg):
        """The part of the state a message touches, for key-aware reduction: ``"value"`` (a
        replica write or read at a peer), ``("pending", client)`` (a replica ack or value at the
        leader: that operation's entry only), None (the whole state) for requests, forwarded or
        not. Every message that may invoke an operation has key None, so the key refinement
        never reorders a call against a return at the same agent."""
        kind = msg[0]
        if kind in ("rwrite", "rread"):
            return "value"
        if kind in ("rack", "rval"):
            return ("pending", msg[1])
        return None

    def read_only(self, msg):
        """A replica read only reads the value (two of them commute)."""
        return msg[0] == "rread"

    def _update(self, pending, client, entry):
        """``pending`` with ``client``'s entry replaced by ``entry`` (None: removed), sorted by
        client, so that updates of different operations commute (as ``key_of`` promises)."""
        rest = tuple(p for p in pending if p[0] != client)
        return rest if entry is None else tuple(sorted(rest + (entry,), key=lambda p: p[0]))

    def on_msg(self, state, src, msg):
        value, pending = state
        kind = msg[0]
        if kind in ("write", "read"):  # a client's request: the operation starts here
            invoke = Invoke({"op": "write", "value": msg[1]} if kind == "write" else {"op": "read"}, client=src)
            if kind == "read" and self.erroneous:
                return state, [invoke, Return(value, client=src)]
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
            if acks >= self.acks_needed:
                return (value, self._update(pending, client, None)), [Return(None, client=client)]
            return (value, self._update(pending, client, (client, "write", acks))), []
        if kind == "rval":
            client = msg[1]
            entry = next((p for p in pending if p[0] == client), None)
            if entry is None:
                return state, []
            votes = entry[2] + (msg[2],)
            top, n = Counter(votes).most_common(1)[0]
            if n >= self.majority:
                return (value, self._update(pending, client, None)), [Return(top, client=client)]
            return (value, self._update(pending, client, (client, "read", votes))), []
        return state, []

    def _lead(self, value, pending, client, kind, new):
        """The leader starts ``client``'s operation (``new``: the value written)."""
        if kind == "write":
            value = new
            if self.acks_needed <= 1:
                return (value, pending), [Return(None, client=client)]
            return (value, self._update(pending, client, (client, "write", 1))), [Send(p, ("rwrite", client, new)) for p in self.peers]
        if self.majority <= 1:
            return (value, pending), [Return(value, client=client)]
        return (value, self._update(pending, client, (client, "read", (value,)))), [Send(p, ("rread", client)) for p in self.peers]


def ds2_actors(variant: str, replicas: int, writers: int, writes: int, readers: int, reads: int) -> list:
    """The actors of DS2's register: clients first (one per operation), then the agents."""
    agents = tuple(f"register{i + 1}" for i in range(replicas))
    ops: list[tuple[str, int | None]] = [("w", w * writes + j + 1) for w in range(writers) for j in range(writes)]
    ops += [("r", None) for _ in range(readers) for _ in range(reads)]
    actors: list = [(f"c{j}", Ds2Client(agents[j % replicas], op)) for j, op in enumerate(ops)]
    erroneous = variant == "ds2-erroneous"
    actors += [(name, Ds2Agent(name, agents[0], tuple(a for a in agents if a != name), erroneous)) for name in agents]
    return actors
