"""``dpliviola``: DS2's DPLiViola, the key-aware dependency on DPIRed (plain DPOR with IRed's
enabler rule, :mod:`checker.explore.ired`), made sound.

In DS2 (``DPLiViolaState`` in ``core/schedulers/algorithms/dpor/ired/liviola/``, a subclass of
``DPIRedState``) two receives are dependent when they go to the same agent *and* carry the same
key, the key being the payload field that a per-harness table names for each message type.
Its TransDPOR counterpart, LiViola (ours: ``keyaware``), adds a wildcard key (-1) that is
dependent with every key, and gives a message whose type the table does not list a fresh random
key, which makes it independent of every other receive at its agent. On DS2's own register
benchmark LiViola explores 88 schedules (DS2's figure), and its key rule reaches only 12 of the
model's 44 distinct histories (we measured; ``benchmarks/explore.py``): it is not sound. Under
ours, giving a message without a key a key of its own as DS2 does leaves 8 of the 44
(``tests/checker/explore/test_liviola.py``).

Ours is :func:`checker.explore.dpor.delivery_facts`'s key-aware dependency, the one ``keyaware``
uses, and differs from DS2's as follows:

* An actor names the key of a message itself (:meth:`~checker.actors.Actor.key_of`); a message
  without one (None) is dependent with every delivery to that actor, never independent of all.
* Keys refine the dependency only where that is sound: on unordered networks (on a fifo channel
  a delivery enables the next message whatever its key), not at clients, and not at actors
  that may discard messages (a step at one key may make a message at another ignorable, which
  disables it).
* Two deliveries on the same key commute when both only read
  (:meth:`~checker.actors.Actor.read_only`), an exception DS2 leaves commented out.
* Deliveries to different actors stay dependent when one may invoke an operation and the other
  may return one (they order the history), and faults are dependent with everything; DS2's
  relation has only the same-agent case.
* The rest is :mod:`checker.explore.dpor`'s and :mod:`checker.explore.ired`'s: sleep sets, the
  state cache, symmetry, and IRed's enabler rule with DPOR's fallback where the chain's first
  receive is not a candidate.

What it guarantees: every distinct history *per key* (its projection on each key, which is how
the sequential models judge a multi-key history) and every invariant violation of plain DFS;
the tests compare it with plain DFS on every shipped protocol and variant and on pseudo-random
actor systems.
"""

from __future__ import annotations

from checker.explore.harness import Run
from checker.explore.ired import dpired

__all__ = ["dpliviola"]


def dpliviola(run: Run) -> None:
    """Run DPLiViola (DPIRed with the key-aware dependency) over ``run`` (results land in
    ``run``; :class:`~checker.explore.harness.Stop` at a budget). It judges properties as
    :func:`checker.explore.dpor.dpor` does."""
    dpired(run, keyed=True)
