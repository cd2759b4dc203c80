"""The DPOR family: ``dpor``, ``transdpor``, ``keyaware``; stateless, or stateful with summaries.

Each message is a process (its id: the trace index of the step that sent it and its position
among that step's sends). Dependency (static: it depends on the messages, never on the state):
faults with everything; deliveries to the same actor (key-aware: unless their keys differ, or
both only read on an unordered network); deliveries to two different actors when one may invoke
an operation and the other may return one (:meth:`~checker.actors.Actor.history_effects`:
swapping two calls, or two returns, leaves the history record unchanged; only a call against a
return changes the real-time order). ``coarse_clients`` restores the coarser relation (any two
history-recording deliveries are dependent).

Stateless DPOR is Flanagan and Godefroid's (POPL 2005) with sleep sets. Happens-before includes
creation; a message that a step discards (:meth:`~checker.actors.Actor.ignores`) races with that
step; transitions the last step disabled race with it (the drop or duplicate of a message, a
process of its own, races with the message's delivery). TransDPOR (Tasharofi et al., FORTE 2012)
adds at most one backtrack point per state for races within one transitive class.

Sleep sets with local commutation (``Reductions.local_commutation``, unordered networks): races
use the static relation above, but a child's sleep set also keeps a delivery ``q`` (explored or
asleep at the parent state ``s``) to the actor that the step ``p`` delivers to, when the two
commute in ``s``: in either order the actor ends in the same state, records the same history
commands and sends the same messages, and the second stays enabled
(:func:`~checker.explore.commute.local_commutation` with nothing sent in one order only). Why it
stays sound, in outline: ``s·p·q`` and ``s·q·p`` are the same state with the same history, so a
schedule below ``s·p`` that starts with ``q`` reaches what one below ``s·q`` that starts with
``p`` reaches, and that subtree was explored (or is covered where ``q`` fell asleep). The
schedules given up order ``p`` before ``q``; those kept below ``s·q·p`` order ``q`` before ``p``,
and those kept below ``s·p`` run with ``q`` delayed until a step dependent with it. A race hidden
in one by a happens-before edge through ``p`` or ``q`` that the other lacks is then exposed in
the other. This is an argument, not a proof: the tests compare it with plain DFS on every
shipped protocol and on pseudo-random systems built to commute often, and the mutations of the
rule tried (any two deliveries to one actor; different sends) fail them.

Stateful DPOR (``Reductions.state_cache``): every state (with symmetry: every orbit) fully
explored keeps the sleep set it was explored with and a *summary*, the set of transitions
race-checked anywhere below it: executed, or pending, or disabled (a message discarded as it was
sent races with what made its receiver discard it, even where that never ran below). Reaching it again with a sleep set that contains the stored one, the
search does not descend; instead it races the current trace against the state's pending
messages (exactly, as at any state) and against every transition of the summary, with a
happens-before relation that is an under-approximation (only what the trace proves), without
stopping at the first race, and falling back to every awake enabled transition where no
candidate can be named: every backtrack point stateless DPOR would add is added (Yang et al.,
"Efficient stateful dynamic partial order reduction", SPIN 2008, do the same with a graph of
visible operations). Reached with a smaller sleep set, the state is explored again. A state
reached again while on the search stack (a cycle) ends the schedule as cut (UNKNOWN).


The search is :class:`Dpor`, one method per step: :meth:`~Dpor.expand` (take a backtrack point
and build the child frame: :meth:`~Dpor.push_step` extends the happens-before relation,
:meth:`~Dpor.child_pending` the messages in flight, :meth:`~Dpor.child_sleep` propagates the
sleep set), :meth:`~Dpor.open_frame` (race detection, the terminal check, the state-cache join),
:meth:`~Dpor.races` and :meth:`~Dpor.summary_races` (race detection; :meth:`~Dpor.reverse` and
:meth:`~Dpor.add_backtrack` add the backtrack points), :meth:`~Dpor.retreat` (pop a fully
explored frame, :meth:`~Dpor.close` stores its summary). :func:`dpor` is the strategies' entry.

Bookkeeping (it changes no decision; tests pin the counts): the trace keeps bitmasks per receiver,
key and history effect (:class:`TraceMasks`), so "the last trace entry dependent with p" is a few
integer operations rather than a test per entry; a process race-checked at the previous frame is
checked here only against the last step (its earlier races were handled there); the facts of a
pending message carry over from frame to frame; a stored summary is grouped by dependency facts
once per renaming (:meth:`Dpor.summary_view`).
"""

from __future__ import annotations

from collections.abc import Sequence

from checker.actors import Actor, Envelope, Event
from checker.explore.commute import Commutations
from checker.explore.harness import ExploreError, Run

__all__ = [
    "Dpor", "Facts", "TraceMasks", "check_effects", "closed_entry", "delivery_facts", "dependent", "dpor", "event_facts",
]


def _forget(pending: dict, ignored: Sequence[Envelope]) -> list:
    """Remove one pending id per discarded envelope (the newest copy first); returns the ids."""
    gone = []
    for env in ignored:
        for mid in reversed(list(pending)):
            if pending[mid] == env:
                del pending[mid]
                gone.append(mid)
                break
    return gone


class Facts:
    """A transition's dependency-relevant facts (static: they depend on the message, never on
    the state it is delivered in). ``pid``: its process (None for none); ``ev``: its event;
    ``dst``: the receiver; ``key``: the receiver's key of the message (key-aware only, else
    None); ``inv`` / ``ret``: the delivery may invoke / return an operation
    (:meth:`Actor.history_effects`); ``ro``: the receiver promised it never changes its state;
    ``fault``: a fault (dependent with everything); ``creator``: the trace index of the step
    that sent its message (-1: the initial state; None: none). ``hb``: set when it enters the
    trace, the bitmask of the trace entries that happen before it."""

    __slots__ = ("creator", "dst", "ev", "fault", "hb", "inv", "key", "pid", "ret", "ro")

    def __init__(self, pid, ev, dst, key, inv, ret, ro, fault, creator):
        self.pid = pid
        self.ev = ev
        self.dst = dst
        self.key = key
        self.inv = inv
        self.ret = ret
        self.ro = ro
        self.fault = fault
        self.creator = creator
        self.hb = 0


def delivery_facts(system, mid, env: Envelope, keyed: bool) -> Facts:
    """The static facts of delivering ``env`` (process ``mid``, None for none). Key-aware
    (``keyed``), the receiver's key and read-only promise refine the dependency, except on a
    fifo network (a message enables the next one of its channel, whatever their keys), at
    clients and at actors that may discard messages (:meth:`Actor.ignores`: a step at any key
    may make a message at another key ignorable, which disables it)."""
    di = system.index[env.dst]
    actor = system.actors[di]
    key = None
    ro = False
    if keyed and not system.fifo and not actor.is_client and type(actor).ignores is Actor.ignores:
        key = actor.key_of(env.msg)
        ro = bool(actor.read_only(env.msg))
    inv, ret = actor.history_effects(env.msg)
    ev = Event("deliver", env.src, env.dst, env.msg)
    return Facts(mid, ev, env.dst, key, bool(inv), bool(ret), ro, False, None if mid is None else mid[0])


def event_facts(system, ev: Event, keyed: bool) -> Facts:
    """The static facts of an event, with no process: a delivery's (:func:`delivery_facts`), or a
    fault's (dependent with every transition)."""
    if ev.kind != "deliver" or ev.src is None:  # (a delivery always names its sender)
        return Facts(None, ev, ev.dst, None, False, False, False, True, None)
    return delivery_facts(system, None, Envelope(ev.src, ev.dst, ev.msg), keyed)


def _fault_facts(frame: _Frame, pid: tuple) -> Facts:
    """The facts of fault process ``pid`` at ``frame``: ``("drop" | "duplicate", message id)``,
    or ``("crash" | "restart", actor name)``; also for a fault no longer enabled there
    (race-checked as disabled)."""
    mid = pid[1] if pid[0] in ("drop", "duplicate") else None
    creator = mid[0] if mid is not None else -1
    dst = pid[1] if mid is None else frame.pending[mid].dst
    ev = frame.events.get(pid)
    if ev is None:  # a fault no longer enabled (race-checked as disabled)
        ev = (Event(pid[0], None, pid[1], None) if mid is None else
              Event(pid[0], frame.pending[mid].src, dst, frame.pending[mid].msg))
    return Facts(pid, ev, dst, None, False, False, False, True, creator)


def check_effects(t: Facts, ev: Event, records: Sequence[tuple]) -> None:
    """Raise ExploreError when a step of ``ev`` recorded a call or a return that its receiver's
    :meth:`Actor.history_effects` did not promise (the finer client dependency relies on it)."""
    if t.fault:
        return
    for _, what, _ in records:
        if (what == "invoke" and not t.inv) or (what == "return" and not t.ret):
            raise ExploreError(f"actor {ev.dst!r} broke its history_effects promise: {ev.describe()} recorded an {what}")


def _transitive(a: Facts, b: Facts) -> bool:
    """The race lies within one class of the actor dependency (same receiver, same key, no
    read-only exception, no fault), where dependency is an equivalence (transitive)."""
    return a.dst == b.dst and a.key == b.key and not (a.fault or b.fault or a.ro or b.ro)


def dependent(a: Facts, b: Facts, keyed: bool, coarse: bool) -> bool:
    """The dependency relation (see the module docstring): pure, symmetric. ``keyed``: the
    key-aware refinement; ``coarse``: any two history-recording deliveries are dependent."""
    if a.fault or b.fault:
        return True
    if a.dst == b.dst:
        if not keyed or a.key is None or b.key is None:
            return True
        return a.key == b.key and not (a.ro and b.ro)
    if coarse:
        return (a.inv or a.ret) and (b.inv or b.ret)
    return (a.inv and b.ret) or (a.ret and b.inv)


class TraceMasks:
    """Bitmasks over the trace (bit i: trace entry i) that answer "which entries are dependent
    with t" (:func:`dependent`) in a few integer operations instead of a test per entry.

    Entries are added and removed at the top only (the trace is a stack)."""

    __slots__ = ("coarse", "dk", "dnone", "dst", "fault", "inv", "keyed", "marks", "ret", "ro")

    def __init__(self, keyed: bool, coarse: bool):
        self.keyed = keyed
        self.coarse = coarse
        self.dst: dict = {}  # receiver -> non-fault entries delivering to it
        self.dk: dict = {}  # (receiver, key) -> keyed entries with that key (key-aware only)
        self.dnone: dict = {}  # receiver -> entries without a key (key-aware only)
        self.ro = 0  # read-only entries
        self.inv = 0  # entries that may invoke
        self.ret = 0  # entries that may return
        self.fault = 0  # fault entries
        self.marks: list = []  # per entry: the (table, key) slots its bit was set in

    def push(self, t: Facts, i: int) -> None:
        """Entry ``i`` (the new top) is ``t``."""
        bit = 1 << i
        marks = []
        if t.fault:
            self.fault |= bit
        else:
            self.dst[t.dst] = self.dst.get(t.dst, 0) | bit
            marks.append((self.dst, t.dst))
            if self.keyed:
                table, k = (self.dnone, t.dst) if t.key is None else (self.dk, (t.dst, t.key))
                table[k] = table.get(k, 0) | bit
                marks.append((table, k))
            if t.ro:
                self.ro |= bit
            if t.inv:
                self.inv |= bit
            if t.ret:
                self.ret |= bit
        self.marks.append(marks)

    def pop(self, i: int) -> None:
        """Remove entry ``i`` (the top)."""
        clear = ~(1 << i)
        for table, k in self.marks.pop():
            table[k] &= clear
        self.ro &= clear
        self.inv &= clear
        self.ret &= clear
        self.fault &= clear

    def dependent(self, t: Facts, n: int) -> int:
        """Bitmask of the entries among the first ``n`` (all of them) that are dependent with
        ``t``: exactly those i with ``dependent(trace[i], t)``."""
        if t.fault:
            return (1 << n) - 1
        same = self.dst.get(t.dst, 0)
        if self.keyed and t.key is not None:
            keyed = self.dk.get((t.dst, t.key), 0)
            if t.ro:
                keyed &= ~self.ro
            m = self.fault | self.dnone.get(t.dst, 0) | keyed
        else:
            m = self.fault | same
        if self.coarse:
            if t.inv or t.ret:
                m |= (self.inv | self.ret) & ~same
        else:
            cross = (self.ret if t.inv else 0) | (self.inv if t.ret else 0)
            if cross:
                m |= cross & ~same
        return m


class _Frame:
    """One state of the search stack: its pending messages (process id -> envelope, in creation
    order), enabled processes and their events, backtrack, done and sleep sets, and the
    stateful search's bookkeeping."""

    __slots__ = (
        "backtrack",
        "born",
        "by_event",
        "done",
        "enabled",
        "entry",
        "events",
        "frozen",
        "full",
        "hbs",
        "infos",
        "key",
        "mapping",
        "order",
        "pending",
        "sleep",
        "state",
        "summary",
    )

    def __init__(self, state, pending):
        self.state = state
        self.pending = pending  # dict mid -> Envelope, in creation order
        self.enabled: list = []
        self.events: dict = {}
        self.order: dict = {}
        self.backtrack: set = set()
        self.done: set = set()
        self.frozen = False
        self.infos: dict = {}
        self.sleep: set = set()
        self.key = None  # visited-table key (stateful)
        self.mapping: dict = {}  # renaming of this state to its key (symmetry)
        self.summary: set = set()  # events race-checked here and below, in this state's naming (stateful)
        self.entry = None
        self.born = 0  # the run's transitions when the frame entered the table (stateful)
        self.full = False  # every awake enabled transition is a backtrack point
        self.hbs: dict = {}  # pending process -> what the trace proves happens before it
        self.by_event: dict | None = None  # awake enabled event -> its first process (summary_races)

    def awake_by_event(self) -> dict:
        """Each awake enabled event -> its first process (computed once: neither the enabled
        set nor the sleep set of a frame changes)."""
        by = self.by_event
        if by is None:
            by = self.by_event = {}
            for q in self.enabled:
                if q not in self.sleep:
                    by.setdefault(self.events[q], q)
        return by


class _Entry:
    """A state of the stateful search's table: explored below (done) or on the stack, the sleep
    set it was explored with and its summary, both in the key's naming, and the transitions its
    last exploration took (``work``, set when it closes; 0 for an entry from elsewhere)."""

    __slots__ = ("open", "sleep", "summary", "views", "work")

    def __init__(self, sleep: frozenset):
        self.open = True
        self.sleep = sleep
        self.summary: frozenset = frozenset()
        self.views: dict = {}  # renaming -> (summary, renamed summary, groups): summary_view's cache
        self.work = 0


def closed_entry(sleep: frozenset, summary: frozenset) -> _Entry:
    """A state-cache entry of a state explored elsewhere (another process of a split search,
    :mod:`checker.explore.split`): explored with ``sleep`` asleep, ``summary`` race-checked
    below it, both in the naming of the key it is stored under."""
    entry = _Entry(sleep)
    entry.open = False
    entry.summary = summary
    return entry


def dpor(run: Run, trans: bool, keyed: bool) -> None:
    """Run DPOR (``trans``: TransDPOR's rule; ``keyed``: key-aware dependency) over ``run``
    (results land in ``run``; raises :class:`~checker.explore.harness.Stop` at a budget).

    Properties (:mod:`checker.explore.properties`): the family explores one interleaving per
    class of equivalent schedules, so it keeps the terminal histories and the stable invariants
    but not every intermediate state: it judges no property kind completely (``always`` can
    fail only in a state it skips; a ``sometimes`` witness may lie there; a cached state can
    hide a schedule on which an ``eventually`` property never held). What it finds stands; the
    rest is reported unknown."""
    Dpor(run, trans, keyed).search()


class Dpor:
    """One search of the DPOR family over ``run`` (see the module docstring). ``trans``:
    TransDPOR's rule (at most one backtrack point per state for races within one transitive
    class); ``keyed``: key-aware dependency.

    The state the steps share: ``frames`` (the search stack: one :class:`_Frame` per state of
    the current schedule), ``trace`` (the :class:`Facts` of the steps taken: ``trace[i]`` leaves
    ``frames[i]``), ``masks`` (:class:`TraceMasks` over the trace), ``path`` (the events taken),
    and, stateful, ``table`` (state key -> :class:`_Entry`). Results land in ``run``."""

    __slots__ = (
        "coarse", "commutes", "delivery_cache", "event_infos", "frames", "inverses", "keyed", "local", "masks",
        "path", "race_pending", "rename_memo", "run", "stateful", "symmetric", "system", "table", "trace", "trans",
    )

    def __init__(self, run: Run, trans: bool, keyed: bool) -> None:
        system = run.system
        self.run = run
        self.system = system
        self.trans = trans
        self.keyed = keyed
        self.coarse = run.reductions.coarse_clients
        self.stateful = run.reductions.state_cache and run.depth is None
        self.symmetric = run.symmetric
        self.local = run.reductions.local_commutation and not system.fifo
        self.race_pending = system.fifo or system.faults.crashes  # pending but not enabled messages race too
        self.commutes = Commutations(system)
        self.event_infos: dict = {}  # event -> its static facts (summary_view)
        self.rename_memo: dict = {}  # renaming -> event -> renamed event
        self.inverses: dict = {}  # id of a renaming -> its inverse
        self.delivery_cache: dict = {}  # (process, envelope) -> its facts, shared by every frame
        self.frames: list[_Frame] = []
        self.trace: list[Facts] = []
        self.masks = TraceMasks(keyed, self.coarse)
        self.path: list[Event] = []
        self.table: dict = {}

    # ------------------------------------------------------------------ the search loop

    def search(self) -> None:
        """Explore from the system's initial state until the stack is empty (or a budget stops
        the run: :class:`~checker.explore.harness.Stop` propagates)."""
        self.begin()
        frames, advance = self.frames, self.advance
        while frames:
            advance()

    def begin(self) -> None:
        """Open the initial state's frame: on the stack when it has transitions to explore."""
        start = self.system.start()
        pending0 = {(-1, k): env for k, env in enumerate(start.sent)}
        _forget(pending0, start.ignored)
        root = _Frame(start.state, pending0)
        self.visit(root)
        if self.open_frame(root):
            self.frames.append(root)

    def advance(self) -> None:
        """One step of the search loop (the stack is not empty): take the top frame's next
        backtrack point, or retreat from it when it has none. Between two calls the search is
        at rest (:mod:`checker.explore.split` hands the open backtrack points out there)."""
        top = self.frames[-1]
        todo = [p for p in top.backtrack if p not in top.done and p not in top.sleep]
        if todo:
            self.expand(top, min(todo, key=top.order.__getitem__))  # backtrack points are always enabled here
        else:
            self.retreat(top)

    def retreat(self, top: _Frame) -> None:
        """``top`` is fully explored: pop it, store its summary, undo the step that led to it
        and pass its summary up."""
        frames = self.frames
        frames.pop()
        self.close(top)
        if self.trace:
            self.pop_step()
        if frames:
            frames[-1].frozen = False
            frames[-1].summary |= top.summary

    def expand(self, top: _Frame, p) -> None:
        """Take process ``p`` (a backtrack point, enabled) from ``top``: step the system, extend
        the trace, and push the child frame when it has transitions to explore."""
        explored_before = list(top.done)
        top.done.add(p)
        t = self.info(top, p)
        ev = top.events[p]
        out = self.system.step(top.state, ev)
        run = self.run
        run.transitions += 1
        run.tick()
        if out.records:
            check_effects(t, ev, out.records)
        top.summary.add(ev)
        n = len(self.trace)
        self.push_step(t, ev, n)
        pending, gone = self.child_pending(top, p, ev, out, n)
        child = _Frame(out.state, pending)
        infos = top.infos  # the facts of messages still pending carry over
        child.infos = {mid: infos[mid] for mid in pending if mid in infos}
        child.sleep = self.child_sleep(top, p, t, ev, explored_before)
        self.visit(child)
        if self.open_frame(child, gone, top, p):
            self.frames.append(child)
        else:
            self.pop_step()
            top.frozen = False

    def push_step(self, t: Facts, ev: Event, n: int) -> None:
        """Append ``t`` (event ``ev``) as trace entry ``n``, with its happens-before mask: its
        message's creator and every earlier dependent entry, each with what happens before it
        (the mask is transitively closed: an entry's mask holds its predecessors' masks)."""
        trace = self.trace
        hb = 0
        if t.creator is not None and t.creator >= 0:
            hb |= trace[t.creator].hb | (1 << t.creator)
        rest = self.masks.dependent(t, n) & ~hb
        while rest:
            k = rest.bit_length() - 1
            hb |= trace[k].hb | (1 << k)
            rest &= ~hb
        t.hb = hb
        trace.append(t)
        self.masks.push(t, n)
        self.path.append(ev)

    def pop_step(self) -> None:
        """Undo :meth:`push_step` of the last trace entry."""
        self.trace.pop()
        self.masks.pop(len(self.trace))
        self.path.pop()

    def child_pending(self, top: _Frame, p, ev: Event, out, n: int) -> tuple[dict, list]:
        """The messages pending after ``top`` took ``p`` (event ``ev``, outcome ``out``, trace
        entry ``n``): the delivered or dropped one gone, the sent ones added as processes
        ``(n, k)``, the discarded ones removed. Also returns ``gone``: (process, facts) of the
        messages discarded as soon as sent, which race with this step too (in another order
        their receiver would have taken them; those in flight before are disabled transitions,
        handled by :meth:`open_frame`)."""
        pending = dict(top.pending)
        kind = ev.kind
        if kind in ("deliver", "drop"):
            del pending[p if kind == "deliver" else p[1]]
        for k, env in enumerate(out.sent):
            pending[(n, k)] = env
        if not out.ignored:
            return pending, []
        system, keyed = self.system, self.keyed
        gone = [(mid, delivery_facts(system, mid, out.sent[mid[1]], keyed))
                for mid in _forget(pending, out.ignored) if mid not in top.pending]
        return pending, gone

    def child_sleep(self, top: _Frame, p, t: Facts, ev: Event, explored_before: list) -> set:
        """The child's sleep set after ``top`` took ``p`` (facts ``t``, event ``ev``): what was
        asleep at ``top`` or explored there before ``p`` and commutes with ``p``, statically or
        in ``top``'s state (local commutation)."""
        sleep: set = set()
        keyed, coarse, local = self.keyed, self.coarse, self.local
        for q in (*top.sleep, *explored_before):
            if q != p and q in top.order:
                tq = self.info(top, q)
                if not dependent(tq, t, keyed, coarse) or (
                        local and tq.dst == t.dst and not (tq.fault or t.fault)
                        and self.commutes.in_state(top.state, tq.ev, ev, tq.ev, ev, False)):
                    sleep.add(q)
        return sleep

    # ------------------------------------------------------------------ a new frame

    def visit(self, frame: _Frame) -> None:
        """Visit the frame's state (invariants, the state count), computing its table key once."""
        if self.symmetric:
            frame.key, frame.mapping = self.system.canonical(frame.state)
        else:
            frame.key = frame.state
        self.run.visit(frame.state, self.path, frame.key)

    def enable(self, frame: _Frame) -> None:
        """Fill the frame's enabled processes, their events and their order."""
        pairs = self.system.enabled_ids(frame.state, frame.pending)
        frame.enabled = [pid for pid, _ in pairs]
        frame.events = dict(pairs)
        frame.order = {pid: i for i, pid in enumerate(frame.enabled)}

    def open_frame(self, frame: _Frame, gone: Sequence[tuple] = (), parent: _Frame | None = None, taken=None) -> bool:
        """Process a new frame: races, terminal check, the visited table. True when it has
        transitions to explore.

        Transitions that the last step (``taken`` from ``parent``) disabled (a delivery for the
        drop of the same message, a fault whose budget it spent, a message it discarded, one to
        an actor it crashed) race with it: they are race-checked here as if still pending
        (FG05's disabled processes)."""
        self.enable(frame)
        if parent is not None:
            gone = list(gone) + [(q, self.info(parent, q)) for q in parent.enabled if q != taken and q not in frame.order]
        checked = self.races(frame, gone, parent)
        if self.stateful and self.joins(frame, parent, checked):
            return False
        run = self.run
        if not frame.enabled or (run.depth is not None and len(self.path) >= run.depth):
            run.finish(frame.state, self.path, not frame.enabled or self.system.terminal(frame.state))
            return False
        awake = [p for p in frame.enabled if p not in frame.sleep]
        if not awake:
            return False  # sleep-set blocked: every continuation is explored elsewhere
        if not frame.backtrack:
            frame.backtrack.add(awake[0])
        if self.stateful:
            self.enter(frame)
        return True

    def joins(self, frame: _Frame, parent: _Frame | None, checked: set) -> bool:
        """Stateful: record the events ``checked`` (race-checked at ``frame``) in the summaries
        of ``frame`` and ``parent`` (a message discarded as it was sent races with what made its
        receiver discard it, so the summary holds every transition race-checked below, executed
        or not); then True when the schedule ends here: the state is on the stack (a cycle, cut:
        never OK), or was explored with a sleep set this one covers (its summary is raced
        against the trace instead of descending)."""
        frame.summary |= checked
        if parent is not None:
            parent.summary |= checked
        entry = self.table.get(frame.key)
        if entry is None:
            return False
        run = self.run
        if entry.open:
            run.schedules += 1
            run.cut = True  # a cycle: the schedule is cut (never OK)
            run.check_budget()
            return True
        if self.covered(frame, entry.sleep):
            below, groups = self.summary_view(entry, frame.mapping)
            self.summary_races(frame, groups)
            if parent is not None:
                parent.summary |= below
            run.schedules += 1  # joins a state already explored
            run.check_budget()
            return True
        return False

    def enter(self, frame: _Frame) -> None:
        """Stateful: put the frame's state in the table as open (on the stack), with its sleep
        set; explored again with fewer transitions asleep, the stored sleep set shrinks."""
        mine = self.sleep_events(frame)
        entry = self.table.get(frame.key)
        if entry is None:
            entry = self.table[frame.key] = _Entry(mine)
        else:  # explored again with fewer transitions asleep
            entry.open = True
            entry.sleep = entry.sleep & mine
        frame.entry = entry
        frame.born = self.run.transitions

    def close(self, frame: _Frame) -> None:
        """A frame is fully explored: store its summary (renamed to its key's naming) and mark
        its table entry explored."""
        if self.stateful and frame.entry is not None:
            frame.entry.summary = frame.entry.summary | self.renamed(frame.summary, frame.mapping)
            frame.entry.open = False
            frame.entry.work = self.run.transitions - frame.born

    # ------------------------------------------------------------------ facts and renamings

    def info(self, frame: _Frame, pid) -> Facts:
        """The facts of process ``pid`` at ``frame`` (memoised on the frame; a delivery's are
        shared by every frame where the same message is pending under the same process)."""
        t = frame.infos.get(pid)
        if t is not None:
            return t
        if isinstance(pid[0], str):  # a fault
            t = _fault_facts(frame, pid)
        else:
            env = frame.pending[pid]
            cache = self.delivery_cache
            t = cache.get((pid, env))
            if t is None:  # static facts of (process, message): shared by every frame
                t = cache[(pid, env)] = delivery_facts(self.system, pid, env, self.keyed)
        frame.infos[pid] = t
        return t

    def static_info(self, ev: Event) -> Facts:
        """The static facts of an event (no process id, no creator)."""
        t = self.event_infos.get(ev)
        if t is None:
            t = self.event_infos[ev] = event_facts(self.system, ev, self.keyed)
        return t

    def renamed(self, events, mapping: dict) -> frozenset:
        """``events`` renamed by ``mapping`` (memoised per mapping: the mappings are the
        system's permutations and their inverses, a handful of objects)."""
        if not mapping:
            return events if type(events) is frozenset else frozenset(events)
        key = tuple(sorted(mapping.items()))
        memo = self.rename_memo.get(key)
        if memo is None:
            memo = self.rename_memo[key] = {}
        rename_event = self.system.rename_event
        out = []
        for ev in events:
            r = memo.get(ev)
            if r is None:
                r = memo[ev] = rename_event(ev, mapping)
            out.append(r)
        return frozenset(out)

    def inverse(self, mapping: dict) -> dict:
        """The inverse of a renaming (memoised by identity: the system's own objects)."""
        key = id(mapping)
        inv = self.inverses.get(key)
        if inv is None:
            inv = self.inverses[key] = {v: k for k, v in mapping.items()}
        return inv

    def sleep_events(self, frame: _Frame) -> frozenset:
        """The frame's sleep set as events (renamed to its key's naming); sleeping transitions
        no longer enabled here are left out (they cannot be taken here anyway)."""
        return self.renamed([frame.events[q] for q in frame.sleep if q in frame.events], frame.mapping)

    def covered(self, frame: _Frame, stored: frozenset) -> bool:
        """Every event asleep in the stored visit is asleep here too (every copy of it)."""
        if not stored:
            return True
        need = self.renamed(stored, self.inverse(frame.mapping))
        return not any(frame.events[q] in need and q not in frame.sleep for q in frame.enabled)

    # ------------------------------------------------------------------ race detection

    def hb_to(self, t: Facts) -> int:
        """Bitmask of trace indices that happen before process ``t.pid``'s next transition: the
        step that created its message and what happened before that step. A drop or duplicate
        of a message is a process of its own: the message's delivery disables it, and must race
        with it (a duplicate already in the trace is a fault, so dependency orders it before
        every later entry)."""
        mask = 0
        c = t.creator
        if c is not None and c >= 0:
            mask |= self.trace[c].hb | (1 << c)
        return mask

    def races(self, frame: _Frame, gone: Sequence[tuple] = (), parent: _Frame | None = None) -> set:
        """Add backtrack points for the races of every pending message (and of the messages the
        last step discarded: it disabled them, so they race with it). Keeps each pending
        process's happens-before mask in ``frame.hbs`` (for :meth:`summary_races`). Returns the
        events race-checked (every process's transition: enabled, pending or disabled; empty at
        the root), which the state's summary must hold.

        Incremental: a process that ``parent`` (the frame before the last step) race-checked
        can race only with the last step here: its last race with an earlier entry was found
        there, and handling it again would add nothing (backtrack sets only grow; a frame below
        the parent is not unfrozen while the parent is on the stack)."""
        trace = self.trace
        n = len(trace)
        if n == 0:
            return set()
        self.run.tick()
        pids = frame.enabled
        if self.race_pending:  # pending but not enabled messages race too
            seen = set(frame.enabled)
            pids = pids + [mid for mid in frame.pending if mid not in seen]
        hbs = frame.hbs
        infos = frame.infos
        dependent_mask, hb_to, keyed, coarse = self.masks.dependent, self.hb_to, self.keyed, self.coarse
        checked = parent.hbs if parent is not None else {}
        last = n - 1
        t_last = trace[last]
        events = set()
        for p, tp in [(p, None) for p in pids] + list(gone):
            if tp is None:
                tp = infos.get(p) or self.info(frame, p)
                events.add(tp.ev)
                mask = checked.get(p)
                if mask is not None:
                    hbs[p] = mask
                    if (mask >> last) & 1 or not dependent(t_last, tp, keyed, coarse):
                        continue
                    racing = 1 << last
                else:
                    mask = hbs[p] = hb_to(tp)
                    racing = dependent_mask(tp, n) & ~mask
            else:
                events.add(tp.ev)
                mask = hb_to(tp)
                racing = dependent_mask(tp, n) & ~mask
            if racing:  # the last trace entry dependent with p and not happening before it
                self.reverse(p, tp, mask, racing.bit_length() - 1)
        return events

    def reverse(self, p, tp: Facts, mask: int, i: int) -> None:
        """Process ``p`` (facts ``tp``, happens-before ``mask``) races with trace entry ``i``:
        add a backtrack point at ``frames[i]`` among the candidates that lead to ``p`` there:
        ``p`` itself, or a later transition that happens before ``p`` (asleep ones are explored
        elsewhere and cannot reverse the race)."""
        pre = self.frames[i]
        E = []
        if p in pre.order and p not in pre.sleep:
            E.append(p)
        if mask >> (i + 1):
            self.add_leading(pre, E, mask, i)
        self.add_backtrack(pre, E, self.trace[i], tp, exact=True, first=self.enabler(pre, E, tp, i) if E else None)

    def enabler(self, pre: _Frame, E: list, tp: Facts, i: int):
        """The candidate of ``E`` (non-empty) to prefer as the backtrack point at ``pre``
        (``frames[i]``) for the race of trace entry ``i`` with ``tp``, or None for the default
        choice (:meth:`add_backtrack`). Here always None; IRed's rule
        (:mod:`checker.explore.ired`) overrides it. Any member of ``E`` keeps the search
        sound (every candidate leads to ``tp`` from ``pre``)."""
        return None

    def add_backtrack(self, pre: _Frame, E: list, ti: Facts, tp: Facts, exact: bool, first=None) -> None:
        """Add a backtrack point at ``pre`` for a race of trace entry ``ti`` with ``tp``, among
        the candidates ``E``: TransDPOR's rule for an ``exact`` race within one transitive
        class (at most one point per frame until it is unfrozen), else one of ``E`` unless one
        already is; with no candidate, every awake enabled transition (the frame is then
        ``full``). The point added is ``first`` (a member of ``E``) when given, else ``tp``'s
        own process when it is a candidate (plain DPOR) or the candidate enabled first at
        ``pre``."""
        if E:
            if exact and self.trans and _transitive(ti, tp):
                q = first if first is not None else min(E, key=pre.order.__getitem__)
                if q not in pre.backtrack and not pre.frozen:
                    pre.backtrack.add(q)
                    pre.frozen = True
            elif pre.backtrack.isdisjoint(E):
                if first is None:
                    first = E[0] if E[0] == tp.pid else min(E, key=pre.order.__getitem__)
                pre.backtrack.add(first)
        else:
            pre.backtrack.update(q for q in pre.enabled if q not in pre.sleep)
            pre.full = True

    def add_leading(self, pre: _Frame, E: list, mask: int, i: int) -> None:
        """Append to ``E`` the processes of the trace's transitions after ``i`` that are in
        ``mask`` (happen before the racing one), awake and enabled at ``pre``, each once."""
        trace = self.trace
        m = (mask >> (i + 1)) << (i + 1)
        while m:
            low = m & -m
            m ^= low
            q = trace[low.bit_length() - 1].pid
            if q in pre.order and q not in E and q not in pre.sleep:
                E.append(q)

    # ------------------------------------------------------------------ the state-cache join

    def summary_view(self, entry: _Entry, mapping: dict) -> tuple[frozenset, list]:
        """The summary of ``entry`` in the naming of a state whose renaming to the entry's key
        is ``mapping``, and its events grouped by their dependency facts: a list of ``(static
        info, [(event, its message as a delivery event, or None for crashes and restarts)])``
        in order of first appearance. Cached on the entry until its summary grows."""
        mkey = id(mapping) if mapping else 0  # (the mappings are the system's own objects)
        view = entry.views.get(mkey)
        if view is not None and view[0] is entry.summary:
            return view[1], view[2]
        below = self.renamed(entry.summary, self.inverse(mapping))
        groups: dict = {}
        for u in below:
            tu = self.static_info(u)
            sig = (tu.dst, tu.key, tu.inv, tu.ret, tu.ro, tu.fault)
            group = groups.get(sig)
            if group is None:
                members: list = []
                group = groups[sig] = (tu, members)
            as_delivery = None
            if u.kind in ("deliver", "drop", "duplicate"):
                as_delivery = u if u.kind == "deliver" else Event("deliver", u.src, u.dst, u.msg)
            group[1].append((u, as_delivery))
        listed = list(groups.values())
        entry.views[mkey] = (entry.summary, below, listed)
        return below, listed

    def summary_races(self, frame: _Frame, groups: list) -> None:
        """Races of the current trace with transitions executed below ``frame``'s state when it
        was explored before (see the module docstring): conservative, every race is handled.
        ``groups``: the summary grouped by dependency facts (:meth:`summary_view`; one
        dependency test per group and trace entry); a frame whose every awake transition is
        already a backtrack point is skipped."""
        n = len(self.trace)
        if n == 0:
            return
        self.run.tick()
        live = []
        dependent_mask = self.masks.dependent
        for tu, members in groups:
            dep = dependent_mask(tu, n)
            if dep:
                live.append((tu, members, dep))
        if not live:
            return
        known = self.pending_hbs(frame)
        anywhere = 0
        for _, _, dep in live:
            anywhere |= dep
        frames = self.frames
        while anywhere:
            i = anywhere.bit_length() - 1
            anywhere ^= 1 << i
            pre = frames[i]
            if not pre.full:
                self.summary_backtrack(pre, i, live, known)

    def pending_hbs(self, frame: _Frame) -> dict:
        """What the trace proves happens before each message pending at ``frame`` (as its
        delivery event): the creators of every copy of it (the intersection of their masks)."""
        known: dict = {}
        hbs = frame.hbs
        for mid, env in frame.pending.items():
            ev = frame.events.get(mid)
            if ev is None:
                ev = Event("deliver", env.src, env.dst, env.msg)
            m = hbs.get(mid)
            if m is None:
                m = self.hb_to(self.info(frame, mid))
            old = known.get(ev)
            known[ev] = m if old is None else old & m
        return known

    def summary_backtrack(self, pre: _Frame, i: int, live: list, known: dict) -> None:
        """Backtrack points at ``pre`` (``frames[i]``) for the races of trace entry ``i`` with
        the summary's transitions: ``live`` lists ``(facts, members, mask of the dependent
        trace entries)`` per group; ``known``: :meth:`pending_hbs`. Stops once ``pre`` is full."""
        ti = self.trace[i]
        for tu, members, dep in live:
            if pre.full:
                break
            if not (dep >> i) & 1:
                continue
            by = pre.awake_by_event()
            for u, d in members:
                mask = known.get(d, 0) if d is not None else 0
                if (mask >> i) & 1:
                    continue
                q0 = by.get(u)
                E = [] if q0 is None else [q0]
                if mask:
                    self.add_leading(pre, E, mask, i)
                self.add_backtrack(pre, E, ti, tu, exact=False)
                if pre.full:
                    break
