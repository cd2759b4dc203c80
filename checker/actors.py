"""Actor systems as pure values: actors emit commands, a system steps a network of them.

An **actor** is a handler over an immutable, hashable state (tuples, frozen dataclasses,
frozensets). It never does I/O: it returns the commands it wants carried out, so the same actor
definition can be driven by the explorer (every schedule), a simulator or real processes::

    on_start()                -> (state, commands)
    on_msg(state, src, msg)   -> (state, commands)
    on_restart(state)         -> (state, commands)      # after a crash; default: on_start()
    key_of(msg)               -> hashable or None       # the part of the state msg touches
    read_only(msg)            -> bool                   # msg never changes the state

Commands are :class:`Send` ``(dst, msg)``; client actors (``is_client = True``) also emit
:class:`Invoke` ``(input)`` when an operation starts and :class:`Return` ``(output)`` when it
ends. Those records form the history (:meth:`System.history`). Messages must be hashable and
made of tuples, strings, numbers, booleans and None (so that a schedule can be written as JSON
and read back); inputs and outputs must be JSON values.

``ignores`` is a promise that lets the system discard a message that can no longer change
anything (a late reply): such a message is removed from the network (reported in
:attr:`Outcome.ignored`) rather than scheduled, which removes pointless interleavings without
changing any state an actor can observe. ``key_of`` is a promise used by key-aware reduction: a message with key ``k`` reads and writes
only the part ``k`` of the actor's state, so two messages with different keys commute. None (the
default) means "the whole state".

A :class:`System` puts named actors on a network:

``unordered`` (default)
    every message in flight may be delivered next (a multiset: two equal messages are two copies);
``fifo``
    messages of one channel (src, dst) are delivered in the order they were sent; channels are
    independent.

:class:`Faults` gives budgets, per schedule, for message **drop**, **duplicate** delivery (the
message is delivered and stays in flight), actor **crash** (a crashed actor receives nothing) and
**restart** (``on_restart``). Client actors never crash: they are the test harness.

A :class:`SystemState` is a hashable value: actor states, the network, the history record and
the fault budget used. The history record keeps, per client, its operations in order and, for
each call, how many operations of every client had returned by then. That is exactly the
real-time order a linearizability check needs, and nothing about unrelated interleavings, so two
schedules that reach the same record produce equivalent histories. Everything here is a pure
function of its arguments; errors are :class:`ActorError` naming the actor, message or event.
"""

from __future__ import annotations

import heapq
import json
import operator
from bisect import bisect_left, insort
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from checker.history import History, Operation
from packrat_sim import validate
from packrat_sim.errors import PackratError

__all__ = [
    "NETWORKS",
    "Actor",
    "ActorError",
    "Envelope",
    "Event",
    "Faults",
    "Invariant",
    "Invoke",
    "Outcome",
    "Return",
    "Send",
    "System",
    "SystemState",
    "all_operations_return",
    "event_from_json",
    "event_to_json",
    "message_from_json",
    "message_to_json",
]

NETWORKS = ("unordered", "fifo")
EVENT_KINDS = ("deliver", "drop", "duplicate", "crash", "restart")


class ActorError(PackratError):
    """An actor, message, event or system definition is wrong; the message names it."""


# --------------------------------------------------------------------------------------------
# Commands


@dataclass(frozen=True)
class Send:
    """Put ``msg`` in flight to the actor named ``dst``."""

    dst: str
    msg: Hashable


@dataclass(frozen=True)
class Invoke:
    """A client starts an operation with this ``input`` (a JSON value); it becomes its call.

    ``client``: the client whose operation it is, when a server records the call on the
    client's behalf (DS2 records an invocation when the replica receives the request); None:
    the emitting actor, which must then be a client."""

    input: Any
    client: str | None = None


@dataclass(frozen=True)
class Return:
    """A client's outstanding operation ends with this ``output`` (a JSON value); ``client`` as
    for :class:`Invoke`."""

    output: Any
    client: str | None = None


class Actor:
    """Base class of actors (see the module docstring for the contract).

    Subclasses are usually frozen dataclasses holding their configuration; the state lives
    outside, in :class:`SystemState`, and every handler is a pure function of its arguments.
    """

    is_client: ClassVar[bool] = False

    def on_start(self) -> tuple[Hashable, Sequence[Any]]:
        raise NotImplementedError

    def on_msg(self, state: Any, src: str, msg: Any) -> tuple[Hashable, Sequence[Any]]:
        raise NotImplementedError

    def on_restart(self, state: Any) -> tuple[Hashable, Sequence[Any]]:
        """State and commands after a crash; ``state`` is the state at the crash. Default: a fresh start."""
        return self.on_start()

    def key_of(self, msg: Any) -> Hashable | None:
        """The part of the state ``msg`` touches (None: all of it)."""
        return None

    def read_only(self, msg: Any) -> bool:
        """Promise that delivering ``msg`` never changes this actor's state, whatever the state
        (it may still send, e.g. the answer to a read). Two such deliveries commute on an
        unordered network; key-aware reduction uses it. Default: False (no promise)."""
        return False

    def history_effects(self, msg: Any) -> tuple[bool, bool]:
        """Promise of what delivering ``msg`` to this actor may record in the history, whatever
        the state: ``(may_invoke, may_return)``. Default: both for clients, neither for other
        actors. The DPOR family uses it (two deliveries to different actors commute unless one
        may invoke and the other may return: swapping two calls, or two returns, leaves the
        history record unchanged); the explorer checks the promise on every step it takes."""
        return (True, True) if self.is_client else (False, False)

    def ignores(self, state: Any, src: str, msg: Any) -> bool:
        """Promise that ``msg`` from ``src`` changes nothing, now and in every later state
        (``on_msg`` would return the state unchanged and no command), e.g. a late reply to an
        operation already finished. The system then removes it from the network instead of
        scheduling a delivery that cannot matter. Default: False (no promise)."""
        return False


# --------------------------------------------------------------------------------------------
# Values


class Envelope(NamedTuple):
    """A message in flight from ``src`` to ``dst``."""

    src: str
    dst: str
    msg: Hashable


class Event(NamedTuple):
    """One step of a schedule.

    ``deliver`` / ``drop`` / ``duplicate``: the message ``msg`` from ``src`` to ``dst``;
    ``crash`` / ``restart``: the actor ``dst`` (``src`` and ``msg`` are None).
    """

    kind: str
    src: str | None
    dst: str
    msg: Hashable = None

    def describe(self) -> str:
        if self.kind in ("crash", "restart"):
            return f"{self.kind} {self.dst}"
        verb = "" if self.kind == "deliver" else f"{self.kind} "
        return f"{verb}{self.src} -> {self.dst}: {_show(self.msg)}"


def _show(msg: Any) -> str:
    """A message as ``kind(arg, ...)`` when it is a tuple led by a string (the convention for
    messages); its arguments, tuples included, as Python values."""
    if isinstance(msg, tuple) and msg and isinstance(msg[0], str):
        return f"{msg[0]}({', '.join(repr(m) for m in msg[1:])})"
    return repr(msg)


@dataclass(frozen=True)
class Faults:
    """Fault budgets per schedule (all zero: a reliable network and no crashes)."""

    drops: int = 0
    duplicates: int = 0
    crashes: int = 0
    restarts: int = 0

    def __post_init__(self) -> None:
        for name in ("drops", "duplicates", "crashes", "restarts"):
            value = getattr(self, name)
            if not validate.is_integer(value) or value < 0:
                raise ActorError(f"fault budget {name} must be a non-negative integer, not {value!r}")

    @property
    def any(self) -> bool:
        return bool(self.drops or self.duplicates or self.crashes or self.restarts)

    def to_json(self) -> dict:
        return {"drops": self.drops, "duplicates": self.duplicates, "crashes": self.crashes, "restarts": self.restarts}


# A state's network (private to its system): an unordered network's sorted tuple of interned
# message ids (copies repeat), or a fifo network's frozenset of ((src, dst), messages in order).
Network = tuple | frozenset


class SystemState(NamedTuple):
    """A global state: hashable, compared by value.

    ``actors``: the actor states, in the order of :attr:`System.names` (a crashed actor's entry is
    ``(CRASHED, state_at_crash)``); ``network``: the messages in flight, in a canonical form
    private to the system (read it with :meth:`System.in_flight`); ``history``: per client (order of
    :attr:`System.clients`) a tuple of operations ``(input, returned_counts)`` (pending) or
    ``(input, returned_counts, output)``, inputs and outputs as canonical JSON text; ``used``:
    the fault budget spent, ``(drops, duplicates, crashes, restarts)``.
    """

    actors: tuple
    network: Network
    history: tuple
    used: tuple = (0, 0, 0, 0)


class Outcome(NamedTuple):
    """What one step did: the next state, the history records ``(client, "invoke"|"return",
    value)``, the envelopes sent, in order, and the envelopes discarded because their receiver
    ignores them (see :meth:`Actor.ignores`), one entry per copy."""

    state: SystemState
    records: tuple
    sent: tuple
    ignored: tuple = ()


CRASHED = "<crashed>"
_new_tuple = tuple.__new__  # builds a named tuple without its Python-level __new__ (hot paths)


def _is_crashed(actor_state: Any) -> bool:
    """Whether an entry of :attr:`SystemState.actors` is a crashed actor's ``(CRASHED, state)``."""
    return isinstance(actor_state, tuple) and len(actor_state) == 2 and actor_state[0] is CRASHED


@dataclass(frozen=True)
class Invariant:
    """A property of global states. ``check(system, state)`` returns None when it holds, else a
    sentence saying what is wrong. ``quiescent=True``: checked only where nothing can be
    delivered (a terminal state). Invariants checked on every state should be *stable* (once
    violated, violated in every later state, e.g. a flag an actor sets), so that reduced
    strategies, which visit only some interleavings, still see them at the end of a schedule."""

    name: str
    check: Callable[[System, SystemState], str | None]
    quiescent: bool = False


# --------------------------------------------------------------------------------------------
# JSON of messages and events


def message_to_json(msg: Any) -> Any:
    """A message as a JSON value: tuples become lists. Raises ActorError for other types."""
    if msg is None or isinstance(msg, (str, bool, int, float)):
        return msg
    if isinstance(msg, tuple):
        return [message_to_json(m) for m in msg]
    if isinstance(msg, frozenset):
        raise ActorError(f"message part {msg!r} is a frozenset; messages are tuples of JSON scalars")
    raise ActorError(f"message part {msg!r} ({type(msg).__name__}) is not a tuple or a JSON scalar")


def message_from_json(value: Any) -> Any:
    """Inverse of :func:`message_to_json`: lists become tuples."""
    if isinstance(value, list):
        return tuple(message_from_json(v) for v in value)
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise ActorError(f"message part {value!r} is not a JSON list or scalar")


def event_to_json(event: Event) -> dict:
    out: dict[str, Any] = {"kind": event.kind}
    if event.src is not None:
        out["src"] = event.src
    out["dst"] = event.dst
    if event.kind not in ("crash", "restart"):
        out["msg"] = message_to_json(event.msg)
    return out


def event_from_json(obj: Any) -> Event:
    """An :class:`Event` from its JSON object; raises ActorError naming what is wrong."""
    if not isinstance(obj, dict):
        raise ActorError(f"an event must be an object with \"kind\" and \"dst\", not {obj!r}")
    kind = obj.get("kind", "deliver")
    if kind not in EVENT_KINDS:
        raise ActorError(f"unknown event kind {kind!r} (expected one of {', '.join(EVENT_KINDS)})")
    dst = obj.get("dst")
    if not isinstance(dst, str):
        raise ActorError(f"event {obj!r} needs a string \"dst\"")
    if kind in ("crash", "restart"):
        return Event(kind, None, dst, None)
    src = obj.get("src")
    if not isinstance(src, str):
        raise ActorError(f"event {obj!r} needs a string \"src\"")
    if "msg" not in obj:
        raise ActorError(f"event {obj!r} needs a \"msg\"")
    return Event(kind, src, dst, message_from_json(obj["msg"]))


def _canon(value: Any, what: str, actor: str) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ActorError(f"client {actor!r}: {what} {value!r} is not a JSON value ({exc})") from None


def _picker(positions: Sequence[int]) -> Callable[[Sequence], tuple]:
    """A function from a sequence to the tuple of its items at ``positions`` (in C)."""
    if len(positions) == 1:
        only = positions[0]
        return lambda seq: (seq[only],)
    return operator.itemgetter(*positions)


# --------------------------------------------------------------------------------------------
# System


class System:
    """Named actors on a network (see the module docstring).

    ``actors``: a mapping (or sequence of pairs) from name to :class:`Actor`; the order fixes
    :attr:`names`. ``network``: ``"unordered"`` or ``"fifo"``. ``faults``: :class:`Faults`.
    """

    def __init__(
        self,
        actors: Mapping[str, Actor] | Iterable[tuple[str, Actor]],
        network: str = "unordered",
        faults: Faults | None = None,
        symmetry: Iterable[Iterable[str]] = (),
    ) -> None:
        pairs = list(actors.items()) if isinstance(actors, Mapping) else list(actors)
        if not pairs:
            raise ActorError("a system needs at least one actor")
        names: list[str] = []
        for pair in pairs:
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise ActorError(f"actors must be (name, actor) pairs, not {pair!r}")
            name, actor = pair
            if not isinstance(name, str) or not name:
                raise ActorError(f"actor name must be a non-empty string, not {name!r}")
            if name in names:
                raise ActorError(f"actor name {name!r} is used twice")
            if not isinstance(actor, Actor):
                raise ActorError(f"actor {name!r} is not an Actor: {actor!r}")
            names.append(name)
        if network not in NETWORKS:
            raise ActorError(f"unknown network {network!r} (expected one of {', '.join(NETWORKS)})")
        faults = Faults() if faults is None else faults
        if not isinstance(faults, Faults):
            raise ActorError(f"faults must be a Faults value, not {faults!r}")
        self.names: tuple[str, ...] = tuple(names)
        self.actors: tuple[Actor, ...] = tuple(a for _, a in pairs)
        self.index: dict[str, int] = {n: i for i, n in enumerate(names)}
        self.clients: tuple[str, ...] = tuple(n for n, a in pairs if a.is_client)
        self.client_index: dict[str, int] = {n: i for i, n in enumerate(self.clients)}
        self.network = network
        self.fifo = network == "fifo"
        self.faults = faults
        self._sort_keys: dict[Envelope, tuple] = {}
        # unordered networks are sorted tuples of interned message ids (cheap to copy and hash)
        self._ids: dict[tuple, int] = {}  # Envelope -> id (hot paths look up equal plain tuples)
        self._envs: list[Envelope] = []
        self._dst_index: list[int] = []  # message id -> index of its receiver
        self._events: list[Event] = []
        self._keys: list[tuple] = []
        self._ignoring = tuple(type(a).ignores is not Actor.ignores for a in self.actors)
        if not any(self._ignoring):
            self._ignoring = ()
        self._fast = not self.fifo and not faults.crashes
        self._faulty = faults.any
        self.symmetry: tuple[tuple[str, ...], ...] = self._check_symmetry(symmetry)
        self._perms = self._permutations()  # the identity first
        # per renaming, for each actor position, the position whose state moves there
        self._perm_sources = [self._sources(m) for m in self._perms]
        # per renaming, a function picking those positions out of a sequence (always a tuple)
        self._perm_getters = [_picker(src) for src in self._perm_sources]
        self._actor_memo: dict = {}  # actor state -> per renaming, (renamed state, its hash)
        self._canon_cache: dict = {}  # (actors, network) -> (actors, network, renaming) of the representative
        self._perm_ids: dict[int, list[int]] = {}  # message id -> its id under each renaming (unordered networks)
        # event ids (enabled_event_ids): message ids where every event is a delivery of an
        # interned message (unordered network, no fault), else an own table
        self._delivery_ids = not self.fifo and not self._faulty
        self._effects: dict[tuple, tuple] = {}  # (receiver index, its state, message id) -> _effect
        self._sorted_memo: dict[Network, tuple] = {}  # unordered network -> _sorted_ids
        self._ignores_memo: dict[tuple, dict] = {}  # (actor index, its state) -> message id -> ignores
        self._event_ids: dict[Event, int] = {}
        self._event_list: list[Event] = []
        self._renamed_ids: dict[tuple[int, int], int] = {}  # (event id, id of a renaming) -> event id

    # ----------------------------------------------------------------------------------------
    # symmetry

    def _check_symmetry(self, groups: Iterable[Iterable[str]]) -> tuple[tuple[str, ...], ...]:
        """Validate groups of interchangeable actors: existing, disjoint, not clients, at least
        two each, of one type and equal configuration."""
        out: list[tuple[str, ...]] = []
        used: set[str] = set()
        for group in groups:
            group = tuple(group)
            if len(group) < 2:
                raise ActorError(f"a symmetry group needs at least two actors, not {group!r}")
            for name in group:
                if name not in self.index:
                    raise ActorError(f"symmetry group {group!r} names {name!r}, which is not an actor")
                if name in used:
                    raise ActorError(f"actor {name!r} is in two symmetry groups")
                if self.actors[self.index[name]].is_client:
                    raise ActorError(f"symmetry group {group!r}: client {name!r} cannot be permuted (its history is observed)")
                used.add(name)
            first = self.actors[self.index[group[0]]]
            for name in group[1:]:
                other = self.actors[self.index[name]]
                if type(other) is not type(first) or other != first:
                    raise ActorError(f"symmetry group {group!r}: {name!r} is not configured like {group[0]!r}")
            out.append(group)
        return tuple(out)

    MAX_PERMUTATIONS: ClassVar[int] = 720

    def _permutations(self) -> list[dict[str, str]]:
        """The renamings tried by :meth:`canonical` (every permutation of every group, or only
        the identity when there are more than :attr:`MAX_PERMUTATIONS`)."""
        import itertools
        import math

        if not self.symmetry:
            return []
        if math.prod(math.factorial(len(g)) for g in self.symmetry) > self.MAX_PERMUTATIONS:
            return []
        perms: list[dict[str, str]] = [{}]
        for group in self.symmetry:
            perms = [dict(m, **dict(zip(group, p))) for m in perms for p in itertools.permutations(group)]
        return perms

    def _sources(self, mapping: Mapping[str, str]) -> list[int]:
        """For each actor position, the position whose state ``mapping`` moves there."""
        out = list(range(len(self.names)))
        for a, b in mapping.items():
            out[self.index[b]] = self.index[a]
        return out

    def rename_state(self, state: SystemState, mapping: Mapping[str, str]) -> SystemState:
        """``state`` with the actors renamed by ``mapping`` (a permutation of symmetric actors):
        their states move to their new names, and every actor name inside actor states and
        messages (plain strings within tuples and frozensets) is renamed. The history record
        and the fault budget are unchanged."""
        if not mapping:
            return state
        mapping = dict(mapping)
        actors = tuple(_rename(state.actors[j], mapping) for j in self._sources(mapping))
        return SystemState(actors, self._rename_network(state.network, mapping), state.history, state.used)

    def rename_envelope(self, env: Envelope, mapping: Mapping[str, str]) -> Envelope:
        return Envelope(mapping.get(env.src, env.src), mapping.get(env.dst, env.dst), _rename(env.msg, mapping))

    def rename_event(self, event: Event, mapping: Mapping[str, str]) -> Event:
        if not mapping:
            return event
        src = None if event.src is None else mapping.get(event.src, event.src)
        return Event(event.kind, src, mapping.get(event.dst, event.dst), _rename(event.msg, mapping))

    CANONICAL_CACHE_LIMIT: ClassVar[int] = 1_000_000

    def canonical(self, state: SystemState) -> tuple[SystemState, dict[str, str]]:
        """A representative of ``state``'s orbit under the symmetry groups, and the renaming
        that maps ``state`` to it. Two states of one orbit get the same representative (up to
        hash collisions, which only cost reduction, never soundness: the representative is always
        in the orbit). Without symmetry: ``(state, {})``.

        The representative is the renaming whose renamed actor states and network have the
        smallest hashes (the history record and the fault budget are the same in every renaming,
        so they take no part); ties keep the earlier renaming, the identity first. The choice
        depends only on ``(state.actors, state.network)``, which is cached."""
        if not self._perms:
            return state, {}
        cache = self._canon_cache
        ck = (state.actors, state.network)
        hit = cache.get(ck)
        if hit is None:
            if len(cache) > self.CANONICAL_CACHE_LIMIT or len(self._actor_memo) > self.CANONICAL_CACHE_LIMIT:
                cache.clear()  # keep the caches bounded
                self._actor_memo.clear()
            hit = cache[ck] = self._canonical_parts(state.actors, state.network)
        actors, network, mapping = hit
        if not mapping:
            return state, {}
        return SystemState(actors, network, state.history, state.used), mapping

    def _canonical_parts(self, old: tuple, net: Network) -> tuple[tuple, Network, dict]:
        """:meth:`canonical`'s choice for actor states ``old`` and network ``net``: the renamed
        actor states and network of the chosen renaming, and the renaming ({} for the identity)."""
        perms = self._perms
        memo = self._actor_memo
        states = []  # per actor position: its state under each renaming
        hashes = []  # per actor position: their hashes
        for a in old:
            r = memo.get(a)
            if r is None:
                renamed = tuple([_rename(a, m) if m else a for m in perms])
                r = memo[a] = (renamed, tuple([hash(b) for b in renamed]))
            states.append(r[0])
            hashes.append(r[1])
        # the smallest (actor hashes, network hash), first renaming on ties: compare the actor
        # states first and rename the network only for the renamings tied there. Under renaming
        # k, position p holds the renamed state of position sources[k][p] (_perm_getters[k])
        actor_hashes = [hash(g(c)) for g, c in zip(self._perm_getters, zip(*hashes))]
        low = min(actor_hashes)
        best_k, best_h, best_net = -1, 0, net
        for k, h in enumerate(actor_hashes):
            if h != low:
                continue
            if not k:
                net_k = net
            elif self.fifo:
                net_k = self._rename_network(net, perms[k])
            else:
                net_k = self._renamed_ids_k(net, k)
            nh = hash(net_k)
            if best_k < 0 or nh < best_h:
                best_k, best_h, best_net = k, nh, net_k
        if best_k == 0:
            return old, net, {}
        return tuple([states[j][best_k] for j in self._perm_sources[best_k]]), best_net, perms[best_k]

    def _renamed_ids_k(self, net: Iterable[int], k: int) -> tuple:
        """An unordered network's message ids under renaming ``k`` (sorted)."""
        rows, envs, perms = self._perm_ids, self._envs, self._perms
        out = []
        for i in net:
            r = rows.get(i)
            if r is None:
                r = rows[i] = [i] + [self._intern(self.rename_envelope(envs[i], m)) for m in perms[1:]]
            out.append(r[k])
        out.sort()
        return tuple(out)

    def _rename_network(self, net: Network, mapping: dict) -> Network:
        """The network ``net`` with actors renamed by ``mapping``."""
        if self.fifo:
            return frozenset(
                ((mapping.get(src, src), mapping.get(dst, dst)), _rename(msgs, mapping)) for (src, dst), msgs in net
            )
        ids = []
        envs = self._envs
        memo: dict[int, int] = {}  # copies of one message repeat
        for i in net:
            j = memo.get(i)
            if j is None:
                j = memo[i] = self._intern(self.rename_envelope(envs[i], mapping))
            ids.append(j)
        ids.sort()
        return tuple(ids)

    # ----------------------------------------------------------------------------------------
    # enabled events with stable ids

    def enabled_ids(self, state: SystemState, pending: Mapping[Hashable, Envelope]) -> list[tuple[Hashable, Event]]:
        """Every event enabled in ``state``, each with a stable id, given ``pending``: the
        messages in flight (one entry per copy, in the order they were sent) under ids chosen by
        the caller. Ids: ``mid`` (deliver), ``("drop", mid)``, ``("duplicate", mid)``,
        ``("crash", name)``, ``("restart", name)``. Deliveries first (FIFO: only the oldest
        message of each channel; never to a crashed actor), then faults within their budgets.
        The one definition of enabledness, shared by :meth:`enabled` and the DPOR family."""
        if not self._faulty and not self.fifo:  # every message in flight, no fault: the hot path
            ids, events = self._ids, self._events  # an interned message's delivery event
            out: list[tuple[Hashable, Event]] = []
            for mid, env in pending.items():
                i = ids.get(env)
                out.append((mid, events[i] if i is not None else Event("deliver", env.src, env.dst, env.msg)))
            return out
        crashed = {n for n in self.names if self.crashed(state, n)} if self.faults.crashes else set()
        if self.fifo:
            heads: dict = {}
            for mid, env in pending.items():
                heads.setdefault((env.src, env.dst), mid)
            deliverable = [mid for mid in heads.values() if pending[mid].dst not in crashed]
        else:
            deliverable = [mid for mid, env in pending.items() if env.dst not in crashed]
        out = []
        for mid in deliverable:
            env = pending[mid]
            out.append((mid, Event("deliver", env.src, env.dst, env.msg)))
        if self._faulty:
            drops, dups, crashes, restarts = state.used
            f = self.faults
            if drops < f.drops:
                out += [(("drop", mid), Event("drop", pending[mid].src, pending[mid].dst, pending[mid].msg)) for mid in deliverable]
            if dups < f.duplicates:
                out += [(("duplicate", mid), Event("duplicate", pending[mid].src, pending[mid].dst, pending[mid].msg))
                        for mid in deliverable]
            if crashes < f.crashes:
                out += [(("crash", n), Event("crash", None, n, None))
                        for n, a in zip(self.names, self.actors) if not a.is_client and n not in crashed]
            if restarts < f.restarts:
                out += [(("restart", n), Event("restart", None, n, None)) for n in self.names if n in crashed]
        return out

    def __repr__(self) -> str:
        return f"System({', '.join(self.names)}; {self.network})"

    # ----------------------------------------------------------------------------------------
    # construction of states

    def initial(self) -> SystemState:
        """The state after every actor's ``on_start``, in the order of :attr:`names`."""
        return self.start().state

    def start(self) -> Outcome:
        """The initial state, with the records and messages of every ``on_start`` in order."""
        actor_states: list[Any] = []
        history = [() for _ in self.clients]
        network = _working_net(self, self._empty())
        records: list = []
        sent: list = []
        for name, actor in zip(self.names, self.actors):
            state, commands = _call(name, "on_start", actor.on_start)
            actor_states.append(state)
            self._apply(name, commands, network, history, records, sent)
        ignored = self._discard(actor_states, network, sent, None) if self._ignoring else ()
        return Outcome(
            SystemState(tuple(actor_states), network.freeze(), tuple(history), (0, 0, 0, 0)),
            tuple(records), tuple(sent), ignored,
        )

    def _empty(self):
        return frozenset() if self.fifo else ()

    def _intern(self, env: Envelope) -> int:
        """The id of a message (interned on first sight). Raises ActorError when unhashable."""
        try:
            i = self._ids.get(env)
        except TypeError:
            raise ActorError(f"actor {env.src!r} sends an unhashable message {env.msg!r}") from None
        if i is None:
            i = len(self._envs)
            self._ids[env] = i
            self._envs.append(env)
            self._dst_index.append(self.index.get(env.dst, -1))
            self._events.append(Event("deliver", env.src, env.dst, env.msg))
            self._keys.append((env.src, env.dst, repr(env.msg)))
        return i

    def _discard(self, actor_states: list, net: _Net, sent: Sequence[Envelope], receiver: str | None) -> tuple:
        """Remove the messages that their receiver ignores (see :meth:`Actor.ignores`): those just
        sent, and those in flight to ``receiver`` (the only actor whose state changed)."""
        candidates = list(dict.fromkeys(sent))
        if receiver is not None and self._ignoring[self.index[receiver]]:
            candidates += [e for e in net.envelopes() if e.dst == receiver and e not in candidates]
        ignored: list = []
        for env in candidates:
            di = self.index[env.dst]
            if not self._ignoring[di]:
                continue
            st = actor_states[di]
            if _is_crashed(st):
                continue
            if self.actors[di].ignores(st, env.src, env.msg):
                ignored += [env] * net.discard(env)
        return tuple(ignored)

    # ----------------------------------------------------------------------------------------
    # queries

    def state_of(self, state: SystemState, name: str) -> Any:
        """The state of the actor ``name`` (``(CRASHED, state_at_crash)`` when crashed)."""
        try:
            return state.actors[self.index[name]]
        except KeyError:
            raise ActorError(f"no actor named {name!r} (actors: {', '.join(self.names)})") from None

    def last_state_of(self, state: SystemState, name: str) -> Any:
        """The state of the actor ``name``, or its state at the crash when it is crashed (what
        invariants over actor states read)."""
        s = self.state_of(state, name)
        return s[1] if _is_crashed(s) else s

    def crashed(self, state: SystemState, name: str) -> bool:
        return _is_crashed(self.state_of(state, name))

    def in_flight(self, state: SystemState) -> Iterator[Envelope]:
        """Every message in flight, once per copy, in a deterministic order."""
        if self.fifo:
            for (src, dst), msgs in sorted(state.network, key=lambda item: item[0]):
                for m in msgs:
                    yield Envelope(src, dst, m)
        else:
            envs, keys = self._envs, self._keys
            for i in sorted(state.network, key=keys.__getitem__):
                yield envs[i]

    def network_of(self, envelopes: Iterable[Envelope]) -> Network:
        """The network (this system's private form) holding ``envelopes``, every copy, in the
        order :meth:`in_flight` lists them (its inverse): how a state travels to another
        process by value (:mod:`checker.explore.split`)."""
        if not self.fifo:
            return tuple(sorted(self._intern(env) for env in envelopes))
        channels: dict[tuple[str, str], tuple] = {}
        for env in envelopes:
            channels[(env.src, env.dst)] = channels.get((env.src, env.dst), ()) + (env.msg,)
        return frozenset(channels.items())

    def _sort_key(self, env: Envelope) -> tuple:
        key = self._sort_keys.get(env)
        if key is None:
            key = (env.src, env.dst, repr(env.msg))
            self._sort_keys[env] = key
        return key

    def deliverable(self, state: SystemState) -> list[Envelope]:
        """Distinct messages that may be delivered next, in a deterministic order."""
        if self.fifo:
            envs = [Envelope(src, dst, msgs[0]) for (src, dst), msgs in state.network]
            envs.sort(key=self._sort_key)
        else:
            envs = [self._envs[i] for i in self._sorted_ids(state.network)]
        if self.faults.crashes:
            envs = [e for e in envs if not self.crashed(state, e.dst)]
        return envs

    def enabled(self, state: SystemState) -> list[Event]:
        """Every event possible in ``state``: deliveries first (deterministic order), then faults."""
        if not self.fifo and not self._faulty:
            events = self._events
            return [events[i] for i in self._sorted_ids(state.network)]
        if self.fifo:
            envs = [Envelope(src, dst, msgs[0]) for (src, dst), msgs in state.network]
            envs.sort(key=self._sort_key)
        else:
            envs = [self._envs[i] for i in self._sorted_ids(state.network)]
        return [ev for _, ev in self.enabled_ids(state, {env: env for env in envs})]

    def enabled_event_ids(self, state: SystemState) -> Sequence[int]:
        """The events of :meth:`enabled` (same order) as small integer ids, for searches that
        keep sets of events (sleep sets): an id names one event for the system's life, and
        identical events share it (:meth:`event_of`, :meth:`renamed_event_id`)."""
        if self._delivery_ids:
            return self._sorted_ids(state.network)
        return [self._event_id(ev) for ev in self.enabled(state)]

    SORTED_MEMO_LIMIT: ClassVar[int] = 1_000_000

    def _sorted_ids(self, network: Network) -> tuple:
        """The distinct message ids of an unordered network, in delivery order (by source,
        receiver and message text), memoised per network."""
        out = self._sorted_memo.get(network)
        if out is None:
            if len(self._sorted_memo) > self.SORTED_MEMO_LIMIT:
                self._sorted_memo.clear()
            out = self._sorted_memo[network] = tuple(sorted(set(network), key=self._keys.__getitem__))
        return out

    def _event_id(self, event: Event) -> int:
        i = self._event_ids.get(event)
        if i is None:
            i = self._event_ids[event] = len(self._event_list)
            self._event_list.append(event)
        return i

    def event_of(self, i: int) -> Event:
        """The event with id ``i`` (see :meth:`enabled_event_ids`)."""
        return self._events[i] if self._delivery_ids else self._event_list[i]

    def renamed_event_id(self, i: int, mapping: Mapping[str, str]) -> int:
        """The id of event ``i`` with actors renamed by ``mapping`` (memoised for the renamings
        :meth:`canonical` returns)."""
        if not mapping:
            return i
        key = (i, id(mapping))
        j = self._renamed_ids.get(key)
        if j is None:
            if self._delivery_ids:
                j = self._intern(self.rename_envelope(self._envs[i], mapping))
            else:
                j = self._event_id(self.rename_event(self._event_list[i], mapping))
            if any(m is mapping for m in self._perms):  # (a long-lived object: its id is a key)
                self._renamed_ids[key] = j
        return j

    def terminal(self, state: SystemState) -> bool:
        """No message can be delivered (fault events may still be enabled: they are optional, so the
        explorers check quiescent invariants here, whether or not a schedule ends here)."""
        if self._fast:  # (every message in flight can be delivered)
            return not state.network
        return not self.deliverable(state)

    def key_of(self, env: Envelope) -> Hashable | None:
        """The key of a message at its receiver (see :meth:`Actor.key_of`)."""
        i = self.index.get(env.dst)
        if i is None:
            return None
        return self.actors[i].key_of(env.msg)

    def read_only(self, env: Envelope) -> bool:
        """Whether the receiver promises the message never changes its state (:meth:`Actor.read_only`)."""
        i = self.index.get(env.dst)
        return False if i is None else bool(self.actors[i].read_only(env.msg))

    # ----------------------------------------------------------------------------------------
    # stepping

    def step(self, state: SystemState, event: Event) -> Outcome:
        """Carry out ``event`` in ``state``. Raises ActorError when it is not enabled there."""
        if event.kind == "deliver" and self._fast:
            return self._deliver(state, event)
        kind = event.kind
        if kind not in EVENT_KINDS:
            raise ActorError(f"unknown event kind {kind!r} (expected one of {', '.join(EVENT_KINDS)})")
        if event.dst not in self.index:
            raise ActorError(f"event {event.describe()}: no actor named {event.dst!r}")
        di = self.index[event.dst]
        used = list(state.used)
        net = _working_net(self, state.network)
        actors = list(state.actors)
        history = list(state.history)
        records: list = []
        sent: list = []
        if kind in ("deliver", "drop", "duplicate"):
            env = None if event.src is None else Envelope(event.src, event.dst, event.msg)
            if env is None or self.crashed(state, event.dst) or not net.can_take(env):
                raise ActorError(f"event {event.describe()} is not enabled: no such message can be delivered now")
            if kind == "drop":
                if used[0] >= self.faults.drops:
                    raise ActorError(f"event {event.describe()} is not enabled: the drop budget ({self.faults.drops}) is spent")
                used[0] += 1
                net.take(env)
            else:
                if kind == "duplicate":
                    if used[1] >= self.faults.duplicates:
                        raise ActorError(
                            f"event {event.describe()} is not enabled: the duplicate budget ({self.faults.duplicates}) is spent"
                        )
                    used[1] += 1
                else:
                    net.take(env)
                actor = self.actors[di]
                new_state, commands = _call(event.dst, "on_msg", actor.on_msg, actors[di], event.src, event.msg)
                actors[di] = new_state
                self._apply(event.dst, commands, net, history, records, sent)
        elif kind == "crash":
            if self.actors[di].is_client:
                raise ActorError(f"event {event.describe()} is not enabled: clients do not crash")
            if self.crashed(state, event.dst):
                raise ActorError(f"event {event.describe()} is not enabled: {event.dst!r} is already crashed")
            if used[2] >= self.faults.crashes:
                raise ActorError(f"event {event.describe()} is not enabled: the crash budget ({self.faults.crashes}) is spent")
            used[2] += 1
            actors[di] = (CRASHED, actors[di])
        else:  # restart
            if not self.crashed(state, event.dst):
                raise ActorError(f"event {event.describe()} is not enabled: {event.dst!r} is not crashed")
            if used[3] >= self.faults.restarts:
                raise ActorError(f"event {event.describe()} is not enabled: the restart budget ({self.faults.restarts}) is spent")
            used[3] += 1
            actor = self.actors[di]
            new_state, commands = _call(event.dst, "on_restart", actor.on_restart, actors[di][1])
            actors[di] = new_state
            self._apply(event.dst, commands, net, history, records, sent)
        ignored = self._discard(actors, net, sent, event.dst) if self._ignoring and kind != "crash" else ()
        new = SystemState(tuple(actors), net.freeze(), tuple(history), tuple(used))
        return Outcome(new, tuple(records), tuple(sent), ignored)

    def step_id(self, state: SystemState, i: int) -> Outcome:
        """``step(state, event_of(i))`` (see :meth:`enabled_event_ids`), without looking the
        event's message up again."""
        if self._delivery_ids:
            return self._deliver(state, self._events[i], i)
        return self.step(state, self._event_list[i])

    EFFECT_MEMO_LIMIT: ClassVar[int] = 1_000_000

    def _effect(self, di: int, actor_state: Any, event: Event) -> tuple:
        """What delivering ``event`` does at its receiver (index ``di``) in ``actor_state``: the
        receiver's new state, the ids of the messages it sends (in order) and its history
        commands (Invoke / Return, in order, prepared by :meth:`_history_command`). Validates
        what ``on_msg`` returned. Pure (handlers are), so :meth:`_deliver` memoises it."""
        new_state, commands = _call(event.dst, "on_msg", self.actors[di].on_msg, actor_state, event.src, event.msg)
        sends, history_commands = self._commands(event.dst, commands)
        return new_state, tuple([self._intern(env) for env in sends]), tuple(history_commands)

    def _deliver(self, state: SystemState, event: Event, i: int | None = None) -> Outcome:
        """``step`` for a delivery (of message id ``i`` when given) on an unordered network
        without crashes (the hot path). A receiver's reaction to a message in a state is
        memoised (:meth:`_effect`)."""
        dst = event.dst
        di = self.index.get(dst)
        if di is None:
            raise ActorError(f"event {event.describe()}: no actor named {dst!r}")
        if i is None:
            try:
                i = self._ids.get((event.src, dst, event.msg))
            except TypeError:
                i = None
        lst = list(state.network)
        pos = -1 if i is None else bisect_left(lst, i)
        if pos < 0 or pos == len(lst) or lst[pos] != i:
            raise ActorError(f"event {event.describe()} is not enabled: no such message can be delivered now")
        del lst[pos]
        actors = list(state.actors)
        memo = self._effects
        key = (di, actors[di], i)
        effect = memo.get(key)
        if effect is None:
            if len(memo) > self.EFFECT_MEMO_LIMIT:
                memo.clear()
            effect = memo[key] = self._effect(di, actors[di], event)
        new_state, sent_ids, history_commands = effect
        actors[di] = new_state
        envs = self._envs
        for j in sent_ids:
            insort(lst, j)
        records: list = []
        history: tuple | list = state.history
        if history_commands:
            history = list(history)
            for prepared in history_commands:
                self._apply_history(prepared, history, records)
        ignoring = self._ignoring
        ignored: list = []
        if ignoring:
            receiver = self._dst_index
            candidates = list(dict.fromkeys(sent_ids))
            if ignoring[di]:
                known = set(candidates)
                candidates += [j for j in dict.fromkeys(lst) if receiver[j] == di and j not in known]
            tables = self._ignores_memo
            for j in candidates:
                k = receiver[j]
                if not ignoring[k]:
                    continue
                table = tables.get((k, actors[k]))  # message id -> ignored by receiver k in its state
                if table is None:
                    if len(tables) > self.EFFECT_MEMO_LIMIT:
                        tables.clear()
                    table = tables[(k, actors[k])] = {}
                ign = table.get(j)
                if ign is None:
                    e = envs[j]
                    ign = table[j] = bool(self.actors[k].ignores(actors[k], e.src, e.msg))
                if ign:
                    n = lst.count(j)
                    if n:
                        lst = [x for x in lst if x != j]
                        ignored += [envs[j]] * n
        return _new_tuple(Outcome, (
            _new_tuple(SystemState, (tuple(actors), tuple(lst), tuple(history), state.used)),
            tuple(records), tuple([envs[j] for j in sent_ids]), tuple(ignored),
        ))

    def _history_command(self, name: str, cmd: Any) -> tuple[int, str, bool, str]:
        """An Invoke or Return command emitted by actor ``name``, checked and prepared: (client
        index, client name, is an invocation, canonical JSON text). Pure."""
        if not isinstance(cmd, (Invoke, Return)):
            raise ActorError(f"actor {name!r} emitted {cmd!r}, which is not a Send, Invoke or Return")
        if cmd.client is not None:
            ci = self.client_index.get(cmd.client)
            if ci is None:
                raise ActorError(f"actor {name!r} emits {type(cmd).__name__} for {cmd.client!r}, which is not a client")
            name = cmd.client
        else:
            ci = self.client_index.get(name)
        if ci is None:
            raise ActorError(f"actor {name!r} emits {type(cmd).__name__} but is not a client (set is_client = True)")
        if isinstance(cmd, Invoke):
            return ci, name, True, _canon(cmd.input, "input", name)
        return ci, name, False, _canon(cmd.output, "output", name)

    def _apply_history(self, prepared: tuple[int, str, bool, str], history: list, records: list) -> None:
        """Apply a prepared history command (:meth:`_history_command`) to the history record."""
        ci, name, invoke, text = prepared
        ops = history[ci]
        if invoke:
            if ops and len(ops[-1]) == 2:
                raise ActorError(f"client {name!r} invokes {text} while its previous operation is outstanding")
            counts = tuple(sum(1 for op in h if len(op) == 3) for h in history)
            history[ci] = ops + ((text, counts),)
            records.append((name, "invoke", text))
        else:
            if not ops or len(ops[-1]) == 3:
                raise ActorError(f"client {name!r} returns {text} without an outstanding operation")
            history[ci] = ops[:-1] + (ops[-1] + (text,),)
            records.append((name, "return", text))

    def run(self, events: Iterable[Event], state: SystemState | None = None) -> SystemState:
        """The state after carrying out ``events`` in order from ``state`` (default: initial)."""
        state = self.initial() if state is None else state
        for event in events:
            state = self.step(state, event).state
        return state

    def _commands(self, name: str, commands: Any) -> tuple[list[Envelope], list[tuple]]:
        """The commands actor ``name`` returned (None, or a list or tuple of Send, Invoke and
        Return), checked: its sends as envelopes, and its history commands prepared by
        :meth:`_history_command`, each in order. Pure; ActorError names a bad command."""
        sends: list = []
        history_commands: list = []
        if commands is None:
            return sends, history_commands
        if not isinstance(commands, (list, tuple)):
            raise ActorError(f"actor {name!r} must return a sequence of commands, not {commands!r}")
        for cmd in commands:
            if isinstance(cmd, Send):
                if cmd.dst not in self.index:
                    raise ActorError(f"actor {name!r} sends {cmd.msg!r} to {cmd.dst!r}, which is not an actor")
                try:
                    hash(cmd.msg)
                except TypeError:
                    raise ActorError(f"actor {name!r} sends an unhashable message {cmd.msg!r}") from None
                sends.append(Envelope(name, cmd.dst, cmd.msg))
            else:
                history_commands.append(self._history_command(name, cmd))
        return sends, history_commands

    def _apply(self, name: str, commands: Sequence[Any], net: _Net, history: list, records: list, sent: list) -> None:
        """Carry out the commands actor ``name`` returned: sends into ``net`` (and ``sent``),
        history commands into ``history`` (and ``records``)."""
        sends, history_commands = self._commands(name, commands)
        for env in sends:
            net.put(env)
            sent.append(env)
        for prepared in history_commands:
            self._apply_history(prepared, history, records)

    # ----------------------------------------------------------------------------------------
    # histories

    def history(self, state: SystemState, model: str | None = None) -> History:
        """The history recorded in ``state``, as :class:`~checker.history.History`.

        Times are event numbers 1, 2, ... chosen so that operation A returns before operation B
        is called exactly when that happened in the schedule (the real-time order is all that
        the record keeps, and all that linearizability depends on). Clients are actor names.
        """
        return history_of(self.clients, state.history, model)


def history_of(clients: Sequence[str], record: tuple, model: str | None = None) -> History:
    """Rebuild a :class:`History` from a history record (see :class:`SystemState`)."""
    ops: list[tuple[int, int, tuple]] = []  # (client index, op index, op)
    for ci, client_ops in enumerate(record):
        for k, op in enumerate(client_ops):
            ops.append((ci, k, op))
    n = len(ops)
    # events: 2*i = call of ops[i], 2*i+1 = return of ops[i] (only for completed ops)
    succ: list[list[int]] = [[] for _ in range(2 * n)]
    indeg = [0] * (2 * n)
    exists = [True] * (2 * n)

    def edge(a: int, b: int) -> None:
        succ[a].append(b)
        indeg[b] += 1

    for i, (_ci, _k, op) in enumerate(ops):
        if len(op) == 3:
            edge(2 * i, 2 * i + 1)
        else:
            exists[2 * i + 1] = False
    for a, (ca, ka, opa) in enumerate(ops):
        if len(opa) != 3:
            continue
        for b, (_cb, _kb, opb) in enumerate(ops):
            if a == b:
                continue
            if opb[1][ca] > ka:  # a returned before b was called
                edge(2 * a + 1, 2 * b)
            else:
                edge(2 * b, 2 * a + 1)
    ready = sorted(e for e in range(2 * n) if exists[e] and indeg[e] == 0)
    times = [0] * (2 * n)
    t = 0
    heapq.heapify(ready)
    while ready:
        e = heapq.heappop(ready)
        t += 1
        times[e] = t
        for f in succ[e]:
            indeg[f] -= 1
            if indeg[f] == 0:
                heapq.heappush(ready, f)
    if t != sum(exists):
        raise ActorError("history record is inconsistent (its real-time order has a cycle)")
    order = sorted(range(n), key=lambda i: times[2 * i])
    result = []
    for i in order:
        ci, _, op = ops[i]
        inp = json.loads(op[0])
        if len(op) == 3:
            result.append(Operation(clients[ci], inp, json.loads(op[2]), times[2 * i], times[2 * i + 1]))
        else:
            result.append(Operation(clients[ci], inp, None, times[2 * i], None))
    return History(result, model=model)


def _rename(value: Any, mapping: Mapping[str, str]) -> Any:
    """``value`` with every string that ``mapping`` names replaced, inside tuples (named tuples
    included) and frozensets; other values are kept as they are."""
    t = type(value)
    if t is str:
        return mapping.get(value, value)
    if t is tuple:
        return tuple(_rename(v, mapping) for v in value)
    if t is frozenset:
        return frozenset(_rename(v, mapping) for v in value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return t(*(_rename(v, mapping) for v in value))
    return value


def _call(name: str, what: str, fn: Callable, *args: Any) -> tuple[Any, Sequence[Any]]:
    result = fn(*args)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise ActorError(f"actor {name!r}: {what} must return (state, commands), not {result!r}")
    state, commands = result
    try:
        hash(state)
    except TypeError:
        raise ActorError(f"actor {name!r}: {what} returned an unhashable state {state!r}") from None
    return state, commands


class _BagNet:
    """A mutable working copy of an unordered network for one step (never escapes a step):
    ``items``, a sorted list of interned message ids (copies repeat)."""

    __slots__ = ("items", "system")

    def __init__(self, system: System, frozen: tuple) -> None:
        self.system = system
        self.items: list[int] = list(frozen)

    def can_take(self, env: Envelope) -> bool:
        """A copy of ``env`` is in flight."""
        try:
            i = self.system._ids.get(env)
        except TypeError:
            return False
        return i is not None and i in self.items

    def take(self, env: Envelope) -> None:
        """Remove one copy of ``env`` (in flight)."""
        self.items.remove(self.system._ids[env])

    def put(self, env: Envelope) -> None:
        """Add a copy of ``env``."""
        insort(self.items, self.system._intern(env))

    def envelopes(self) -> list[Envelope]:
        """The distinct messages in flight."""
        envs = self.system._envs
        return [envs[i] for i in dict.fromkeys(self.items)]

    def discard(self, env: Envelope) -> int:
        """Remove every copy of ``env``; returns how many there were."""
        i = self.system._ids.get(env)
        if i is None:
            return 0
        n = self.items.count(i)
        if n:
            self.items = [x for x in self.items if x != i]
        return n

    def freeze(self) -> tuple:
        """The network as a state holds it: the sorted tuple of message ids."""
        return tuple(self.items)


class _FifoNet:
    """A mutable working copy of a fifo network for one step (never escapes a step):
    ``items``, a dict from channel (src, dst) to the tuple of its messages in order."""

    __slots__ = ("items",)

    def __init__(self, frozen: frozenset) -> None:
        self.items: dict[tuple[str, str], tuple] = dict(frozen)

    def can_take(self, env: Envelope) -> bool:
        """``env`` is the oldest message of its channel."""
        msgs = self.items.get((env.src, env.dst), ())
        return bool(msgs) and msgs[0] == env.msg

    def take(self, env: Envelope) -> None:
        """Remove the oldest message of ``env``'s channel (``env`` itself)."""
        key = (env.src, env.dst)
        rest = self.items[key][1:]
        if rest:
            self.items[key] = rest
        else:
            del self.items[key]

    def put(self, env: Envelope) -> None:
        """Append ``env`` to its channel."""
        key = (env.src, env.dst)
        self.items[key] = self.items.get(key, ()) + (env.msg,)

    def envelopes(self) -> list[Envelope]:
        """The distinct messages in flight."""
        return [Envelope(src, dst, m) for (src, dst), msgs in self.items.items() for m in dict.fromkeys(msgs)]

    def discard(self, env: Envelope) -> int:
        """Remove every copy of ``env``; returns how many there were."""
        key = (env.src, env.dst)
        msgs = self.items.get(key, ())
        rest = tuple(m for m in msgs if m != env.msg)
        if rest:
            self.items[key] = rest
        else:
            self.items.pop(key, None)
        return len(msgs) - len(rest)

    def freeze(self) -> frozenset:
        """The network as a state holds it: a frozenset of (channel, messages) pairs."""
        return frozenset(self.items.items())


_Net = _BagNet | _FifoNet


def _working_net(system: System, frozen: Any) -> _Net:
    """A mutable working copy of the network ``frozen`` (a state's) of ``system``."""
    return _FifoNet(frozen) if system.fifo else _BagNet(system, frozen)


def all_operations_return(system: System, state: SystemState) -> str | None:
    """Quiescent check: every client operation has returned (skipped when a message was dropped
    or an actor crashed, which may legitimately leave operations pending)."""
    if state.used[0] or state.used[2]:
        return None
    for client, ops in zip(system.clients, state.history):
        if ops and len(ops[-1]) == 2:
            return f"client {client}'s operation {json.loads(ops[-1][0])!r} never returned, and nothing is left to deliver"
    return None
