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

Bookkeeping (it changes no decision; tests pin the counts): the trace keeps bitmasks per receiver,
key and history effect (:class:`_Masks`), so "the last trace entry dependent with p" is a few
integer operations rather than a test per entry; a process race-checked at the previous frame is
checked here only against the last step (its earlier races were handled there); the facts of a
pending message carry over from frame to frame; a stored summary is grouped by dependency facts
once per renaming (:func:`summary_view`).
"""

from __future__ import annotations

from collections.abc import Sequence

from checker.actors import Actor, Envelope, Event
from checker.explore.commute import Commutations
from checker.explore.harness import ExploreError, Run

__all__ = ["dpor"]


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


class _T:
    """A transition's dependency-relevant facts (static: they depend on the message, never on
    the state it is delivered in). ``inv`` / ``ret``: the delivery may invoke / return an
    operation (:meth:`Actor.history_effects`); ``ro``: the receiver promised it never changes
    its state."""

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


def delivery_facts(system, mid, env: Envelope, keyed: bool) -> _T:
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
    return _T(mid, ev, env.dst, key, bool(inv), bool(ret), ro, False, None if mid is None else mid[0])


def event_facts(system, ev: Event, keyed: bool) -> _T:
    """The static facts of an event, with no process: a delivery's (:func:`delivery_facts`), or a
    fault's (dependent with every transition)."""
    if ev.kind != "deliver":
        return _T(None, ev, ev.dst, None, False, False, False, True, None)
    return delivery_facts(system, None, Envelope(ev.src, ev.dst, ev.msg), keyed)


def check_effects(t: _T, ev: Event, records: Sequence[tuple]) -> None:
    """Raise ExploreError when a step of ``ev`` recorded a call or a return that its receiver's
    :meth:`Actor.history_effects` did not promise (the finer client dependency relies on it)."""
    if t.fault:
        return
    for _, what, _ in records:
        if (what == "invoke" and not t.inv) or (what == "return" and not t.ret):
            raise ExploreError(f"actor {ev.dst!r} broke its history_effects promise: {ev.describe()} recorded an {what}")


def _transitive(a: _T, b: _T) -> bool:
    """The race lies within one class of the actor dependency (same receiver, same key, no
    read-only exception, no fault), where dependency is an equivalence (transitive)."""
    return a.dst == b.dst and a.key == b.key and not (a.fault or b.fault or a.ro or b.ro)


def _dependent(a: _T, b: _T, keyed: bool, coarse: bool) -> bool:
    """The dependency relation (see the module docstring)."""
    if a.fault or b.fault:
        return True
    if a.dst == b.dst:
        if not keyed or a.key is None or b.key is None:
            return True
        return a.key == b.key and not (a.ro and b.ro)
    if coarse:
        return (a.inv or a.ret) and (b.inv or b.ret)
    return (a.inv and b.ret) or (a.ret and b.inv)


class _Masks:
    """Bitmasks over the trace (bit i: trace entry i) that answer "which entries are dependent
    with t" (:func:`_dependent`) in a few integer operations instead of a test per entry.

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

    def push(self, t: _T, i: int) -> None:
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

    def dependent(self, t: _T, n: int) -> int:
        """Bitmask of the entries among the first ``n`` (all of them) that are dependent with
        ``t``: exactly those i with ``_dependent(trace[i], t)``."""
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
    __slots__ = (
        "backtrack",
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
        self.full = False  # every awake enabled transition is a backtrack point
        self.hbs: dict = {}  # pending process -> what the trace proves happens before it


class _Entry:
    """A state of the stateful search's table: explored below (done) or on the stack, the sleep
    set it was explored with and its summary, both in the key's naming."""

    __slots__ = ("open", "sleep", "summary", "views")

    def __init__(self, sleep: frozenset):
        self.open = True
        self.sleep = sleep
        self.summary: frozenset = frozenset()
        self.views: dict = {}  # renaming -> (summary, renamed summary, groups): summary_view's cache


def dpor(run: Run, trans: bool, keyed: bool) -> None:
    """Run DPOR (``trans``: TransDPOR's rule; ``keyed``: key-aware dependency) over ``run``."""
    system = run.system
    faults = system.faults
    coarse = run.reductions.coarse_clients
    stateful = run.reductions.state_cache and run.depth is None
    symmetric = run.symmetric
    event_infos: dict = {}
    rename_memo: dict = {}

    def renamed(events, mapping: dict) -> frozenset:
        """``events`` renamed by ``mapping`` (memoised per mapping: the mappings are the
        system's permutations and their inverses, a handful of objects)."""
        if not mapping:
            return events if type(events) is frozenset else frozenset(events)
        key = tuple(sorted(mapping.items()))
        memo = rename_memo.get(key)
        if memo is None:
            memo = rename_memo[key] = {}
        out = []
        for ev in events:
            r = memo.get(ev)
            if r is None:
                r = memo[ev] = system.rename_event(ev, mapping)
            out.append(r)
        return frozenset(out)

    inverses: dict = {}

    def inverse(mapping: dict) -> dict:
        key = id(mapping)
        inv = inverses.get(key)
        if inv is None:
            inv = inverses[key] = {v: k for k, v in mapping.items()}
        return inv

    def static_info(ev: Event) -> _T:
        """The static facts of an event (no process id, no creator)."""
        t = event_infos.get(ev)
        if t is None:
            t = event_infos[ev] = event_facts(system, ev, keyed)
        return t

    def delivery_info(mid, env: Envelope) -> _T:
        return delivery_facts(system, mid, env, keyed)

    def info(frame: _Frame, pid) -> _T:
        t = frame.infos.get(pid)
        if t is not None:
            return t
        if isinstance(pid[0], str):  # a fault
            mid = pid[1] if pid[0] in ("drop", "duplicate") else None
            creator = mid[0] if mid is not None else -1
            dst = pid[1] if mid is None else frame.pending[mid].dst
            ev = frame.events.get(pid)
            if ev is None:  # a fault no longer enabled (race-checked as disabled)
                ev = (Event(pid[0], None, pid[1], None) if mid is None else
                      Event(pid[0], frame.pending[mid].src, dst, frame.pending[mid].msg))
            t = _T(pid, ev, dst, None, False, False, False, True, creator)
        else:
            env = frame.pending[pid]
            t = delivery_cache.get((pid, env))
            if t is None:  # static facts of (process, message): shared by every frame
                t = delivery_cache[(pid, env)] = delivery_info(pid, env)
        frame.infos[pid] = t
        return t

    def compute_enabled(frame: _Frame) -> None:
        pairs = system.enabled_ids(frame.state, frame.pending)
        frame.enabled = [pid for pid, _ in pairs]
        frame.events = dict(pairs)
        frame.order = {pid: i for i, pid in enumerate(frame.enabled)}

    frames: list[_Frame] = []
    trace: list[_T] = []
    masks = _Masks(keyed, coarse)
    delivery_cache: dict = {}
    path: list[Event] = []

    def hb_to(t: _T) -> int:
        """Bitmask of trace indices that happen before process ``t.pid``'s next transition: the
        step that created its message and what happened before that step. A drop or duplicate
        of a message is a process of its own: the message's delivery disables it, and must race
        with it (a duplicate already in the trace is a fault, so dependency orders it before
        every later entry)."""
        mask = 0
        c = t.creator
        if c is not None and c >= 0:
            mask |= trace[c].hb | (1 << c)
        return mask

    def add_backtrack(pre: _Frame, E: list, ti: _T, tp: _T, exact: bool) -> None:
        if E:
            if exact and trans and _transitive(ti, tp):
                q = min(E, key=pre.order.__getitem__)
                if q not in pre.backtrack and not pre.frozen:
                    pre.backtrack.add(q)
                    pre.frozen = True
            elif pre.backtrack.isdisjoint(E):
                pre.backtrack.add(E[0] if E[0] == tp.pid else min(E, key=pre.order.__getitem__))
        else:
            pre.backtrack.update(q for q in pre.enabled if q not in pre.sleep)
            pre.full = True

    def add_leading(pre: _Frame, E: list, mask: int, i: int) -> None:
        """Append to ``E`` the processes of the trace's transitions after ``i`` that are in
        ``mask`` (happen before the racing one), awake and enabled at ``pre``, each once."""
        m = (mask >> (i + 1)) << (i + 1)
        while m:
            low = m & -m
            m ^= low
            q = trace[low.bit_length() - 1].pid
            if q in pre.order and q not in E and q not in pre.sleep:
                E.append(q)

    def races(frame: _Frame, gone: Sequence[tuple] = (), parent: _Frame | None = None) -> set:
        """Add backtrack points for the races of every pending message (and of the messages the
        last step discarded: it disabled them, so they race with it). Keeps each pending
        process's happens-before mask in ``frame.hbs`` (for :func:`summary_races`). Returns the
        events race-checked (every process's transition: enabled, pending or disabled; empty at
        the root), which the state's summary must hold.

        Incremental: a process that ``parent`` (the frame before the last step) race-checked
        can race only with the last step here: its last race with an earlier entry was found
        there, and handling it again would add nothing (backtrack sets only grow; a frame below
        the parent is not unfrozen while the parent is on the stack)."""
        n = len(trace)
        if n == 0:
            return set()
        run.tick()
        pids = frame.enabled
        if system.fifo or faults.crashes:  # pending but not enabled messages race too
            seen = set(frame.enabled)
            pids = pids + [mid for mid in frame.pending if mid not in seen]
        hbs = frame.hbs
        infos = frame.infos
        dependent = masks.dependent
        checked = parent.hbs if parent is not None else {}
        last = n - 1
        t_last = trace[last]
        events = set()
        for p, tp in [(p, None) for p in pids] + list(gone):
            if tp is None:
                tp = infos.get(p) or info(frame, p)
                events.add(tp.ev)
                mask = checked.get(p)
                if mask is not None:
                    hbs[p] = mask
                    if (mask >> last) & 1 or not _dependent(t_last, tp, keyed, coarse):
                        continue
                    racing = 1 << last
                else:
                    mask = hbs[p] = hb_to(tp)
                    racing = dependent(tp, n) & ~mask
            else:
                events.add(tp.ev)
                mask = hb_to(tp)
                # the last trace entry dependent with p and not happening before it
                racing = dependent(tp, n) & ~mask
            if not racing:
                continue
            i = racing.bit_length() - 1
            pre = frames[i]
            # candidates at pre(i) that lead to p: p itself, or a later transition that
            # happens before p; asleep ones are explored elsewhere and cannot reverse the race
            E = []
            if p in pre.order and p not in pre.sleep:
                E.append(p)
            if mask >> (i + 1):
                add_leading(pre, E, mask, i)
            add_backtrack(pre, E, trace[i], tp, exact=True)
        return events

    def summary_view(entry: _Entry, mapping: dict) -> tuple[frozenset, list]:
        """The summary of ``entry`` in the naming of a state whose renaming to the entry's key
        is ``mapping``, and its events grouped by their dependency facts: a list of ``(static
        info, [(event, its message as a delivery event, or None for crashes and restarts)])``
        in order of first appearance. Cached on the entry until its summary grows."""
        mkey = id(mapping) if mapping else 0  # (the mappings are the system's own objects)
        view = entry.views.get(mkey)
        if view is not None and view[0] is entry.summary:
            return view[1], view[2]
        below = renamed(entry.summary, inverse(mapping))
        groups: dict = {}
        for u in below:
            tu = static_info(u)
            sig = (tu.dst, tu.key, tu.inv, tu.ret, tu.ro, tu.fault)
            group = groups.get(sig)
            if group is None:
                group = groups[sig] = (tu, [])
            as_delivery = None
            if u.kind in ("deliver", "drop", "duplicate"):
                as_delivery = u if u.kind == "deliver" else Event("deliver", u.src, u.dst, u.msg)
            group[1].append((u, as_delivery))
        listed = list(groups.values())
        entry.views[mkey] = (entry.summary, below, listed)
        return below, listed

    def summary_races(frame: _Frame, groups: list) -> None:
        """Races of the current trace with transitions executed below ``frame``'s state when it
        was explored before (see the module docstring): conservative, every race is handled.
        ``groups``: the summary grouped by dependency facts (:func:`summary_view`; one
        dependency test per group and trace entry); a frame whose every awake transition is
        already a backtrack point is skipped."""
        n = len(trace)
        if n == 0:
            return
        run.tick()
        live = []
        for tu, members in groups:
            dep = masks.dependent(tu, n)
            if dep:
                live.append((tu, members, dep))
        if not live:
            return
        # what the trace proves happens before a message: the creators of every copy of it
        known: dict = {}
        hbs = frame.hbs
        for mid, env in frame.pending.items():
            ev = frame.events.get(mid)
            if ev is None:
                ev = Event("deliver", env.src, env.dst, env.msg)
            m = hbs.get(mid)
            if m is None:
                m = hb_to(info(frame, mid))
            old = known.get(ev)
            known[ev] = m if old is None else old & m
        anywhere = 0
        for _, _, dep in live:
            anywhere |= dep
        while anywhere:
            i = anywhere.bit_length() - 1
            anywhere ^= 1 << i
            pre = frames[i]
            if pre.full:
                continue
            ti = trace[i]
            for tu, members, dep in live:
                if pre.full:
                    break
                if not (dep >> i) & 1:
                    continue
                by = pre.infos.get("by-event")
                if by is None:
                    by = pre.infos["by-event"] = {}
                    for q in pre.enabled:
                        if q not in pre.sleep:
                            by.setdefault(pre.events[q], q)
                for u, d in members:
                    mask = known.get(d, 0) if d is not None else 0
                    if (mask >> i) & 1:
                        continue
                    q0 = by.get(u)
                    E = [] if q0 is None else [q0]
                    if mask:
                        add_leading(pre, E, mask, i)
                    add_backtrack(pre, E, ti, tu, exact=False)
                    if pre.full:
                        break

    def sleep_events(frame: _Frame) -> frozenset:
        """The frame's sleep set as events (renamed to its key's naming); sleeping transitions
        no longer enabled here are left out (they cannot be taken here anyway)."""
        return renamed([frame.events[q] for q in frame.sleep if q in frame.events], frame.mapping)

    def covered(frame: _Frame, stored: frozenset) -> bool:
        """Every event asleep in the stored visit is asleep here too (every copy of it)."""
        if not stored:
            return True
        need = renamed(stored, inverse(frame.mapping))
        for q in frame.enabled:
            if frame.events[q] in need and q not in frame.sleep:
                return False
        return True

    def open_frame(frame: _Frame, gone: Sequence[tuple] = (), parent: _Frame | None = None, taken=None) -> bool:
        """Process a new frame: races, terminal check, the visited table. True when it has
        transitions to explore.

        Transitions that the last step disabled (a delivery for the drop of the same message, a
        fault whose budget it spent, a message it discarded, one to an actor it crashed) race
        with it: they are race-checked here as if still pending (FG05's disabled processes)."""
        compute_enabled(frame)
        if parent is not None:
            gone = list(gone) + [(q, info(parent, q)) for q in parent.enabled if q != taken and q not in frame.order]
        checked = races(frame, gone, parent)
        if stateful:
            # the summary holds every transition race-checked below, executed or not (a message
            # discarded as it was sent races with what made its receiver discard it)
            frame.summary |= checked
            if parent is not None:
                parent.summary |= checked
            entry = table.get(frame.key)
            if entry is not None:
                if entry.open:
                    run.schedules += 1
                    run.cut = True  # a cycle: the schedule is cut (never OK)
                    run.check_budget()
                    return False
                if covered(frame, entry.sleep):
                    below, groups = summary_view(entry, frame.mapping)
                    summary_races(frame, groups)
                    if parent is not None:
                        parent.summary |= below
                    run.schedules += 1  # joins a state already explored
                    run.check_budget()
                    return False
        if not frame.enabled or (run.depth is not None and len(path) >= run.depth):
            run.finish(frame.state, path, not frame.enabled or system.terminal(frame.state))
            return False
        awake = [p for p in frame.enabled if p not in frame.sleep]
        if not awake:
            return False  # sleep-set blocked: every continuation is explored elsewhere
        if not frame.backtrack:
            frame.backtrack.add(awake[0])
        if stateful:
            mine = sleep_events(frame)
            entry = table.get(frame.key)
            if entry is None:
                entry = table[frame.key] = _Entry(mine)
            else:  # explored again with fewer transitions asleep
                entry.open = True
                entry.sleep = entry.sleep & mine
            frame.entry = entry
        return True

    def keyed_visit(frame: _Frame) -> None:
        """Visit the frame's state (invariants, the state count), computing its table key once."""
        if symmetric:
            frame.key, frame.mapping = system.canonical(frame.state)
        else:
            frame.key = frame.state
        run.visit(frame.state, path, frame.key)

    def close(frame: _Frame) -> None:
        """A frame is fully explored: store its summary; pass it up."""
        if stateful and frame.entry is not None:
            frame.entry.summary = frame.entry.summary | renamed(frame.summary, frame.mapping)
            frame.entry.open = False

    local = run.reductions.local_commutation and not system.fifo
    commutes = Commutations(system)

    table: dict = {}
    start = system.start()
    init = start.state
    pending0 = {(-1, k): env for k, env in enumerate(start.sent)}
    _forget(pending0, start.ignored)
    root = _Frame(init, pending0)
    keyed_visit(root)
    if not open_frame(root):
        return
    frames.append(root)
    while frames:
        top = frames[-1]
        todo = [p for p in top.backtrack if p not in top.done and p not in top.sleep]
        if not todo:
            frames.pop()
            close(top)
            if trace:
                trace.pop()
                masks.pop(len(trace))
                path.pop()
            if frames:
                frames[-1].frozen = False
                frames[-1].summary |= top.summary
            continue
        p = min(todo, key=top.order.__getitem__)  # backtrack points are always enabled here
        explored_before = list(top.done)
        top.done.add(p)
        t = info(top, p)
        ev = top.events[p]
        out = system.step(top.state, ev)
        run.transitions += 1
        run.tick()
        if out.records:
            check_effects(t, ev, out.records)
        top.summary.add(ev)
        n = len(trace)
        # happens-before of the new trace entry
        hb = 0
        if t.creator is not None and t.creator >= 0:
            hb |= trace[t.creator].hb | (1 << t.creator)
        rest = masks.dependent(t, n) & ~hb
        while rest:  # (hb is transitively closed: an entry's hb holds its predecessors' hb)
            k = rest.bit_length() - 1
            hb |= trace[k].hb | (1 << k)
            rest &= ~hb
        t.hb = hb
        trace.append(t)
        masks.push(t, n)
        path.append(ev)
        pending = dict(top.pending)
        kind = ev.kind
        if kind in ("deliver", "drop"):
            del pending[p if kind == "deliver" else p[1]]
        for k, env in enumerate(out.sent):
            pending[(n, k)] = env
        gone: list = []
        if out.ignored:
            # messages discarded as soon as sent race with this step too: in another order
            # their receiver would have taken them (those in flight before are disabled
            # transitions, handled by open_frame)
            for mid in _forget(pending, out.ignored):
                if mid not in top.pending:
                    gone.append((mid, delivery_info(mid, out.sent[mid[1]])))
        child = _Frame(out.state, pending)
        infos = top.infos  # the facts of messages still pending carry over
        child.infos = {mid: infos[mid] for mid in pending if mid in infos}
        # sleep sets: what was explored (or asleep) here and commutes with p (statically, or
        # in this state: local commutation) stays asleep
        for q in (*top.sleep, *explored_before):
            if q != p and q in top.order:
                tq = info(top, q)
                if not _dependent(tq, t, keyed, coarse) or (
                        local and tq.dst == t.dst and not (tq.fault or t.fault)
                        and commutes.in_state(top.state, tq.ev, ev, tq.ev, ev, False)):
                    child.sleep.add(q)
        keyed_visit(child)
        if open_frame(child, gone, top, p):
            frames.append(child)
        else:
            trace.pop()
            masks.pop(len(trace))
            path.pop()
            top.frozen = False
