"""DS2's IRed enabler rule on the DPOR family: ``ired`` (on TransDPOR) and ``dpired`` (on DPOR).

When DPOR finds that a pending receive ``p`` races with trace entry ``i``, it adds a backtrack
point at the racing state ``pre`` (``frames[i]``) that leads towards ``p``: one of the
candidates ``E``, which are ``p`` itself when it is enabled there and the transitions enabled at
``pre`` that happen before ``p`` in the trace, all awake (Flanagan and Godefroid, POPL 2005; any
member of ``E`` keeps the search complete). :class:`~checker.explore.dpor.Dpor` takes ``p``
itself when it is a candidate (plain DPOR), else the candidate enabled first at ``pre`` (and
TransDPOR always the candidate enabled first).

IRed (Al-Mahfoudh et al., DS2; ``IRedState.didEnable`` in DS2's
``core/schedulers/algorithms/dpor/ired/``) takes the receive that *enabled* ``p``: follow the chain
of enablers back from ``p`` (the receive that sent ``p``'s message, the receive that sent that
one's message, ...) to the first receive of the chain, the one whose message was already in
flight at ``pre``; when that receive is enabled there, it is the backtrack point. ``p`` itself is
the chain's first receive when ``p`` was in flight at ``pre``. TransDPOR's rule is unchanged
otherwise: at most one backtrack point per frame for races within one transitive class, until
the frame is unfrozen.

How ours differs from DS2's, and why it stays sound:

* The chain is the exact creation chain (each message's ``Facts.creator``: the trace entry that
  sent it). DS2 approximates it by receivers: walking the stack from the newest state down to
  the racing one, it takes as the next enabler any receive *at the agent that sent* the current
  one, which may be a later receive at that agent than the one that sent the message.
* When the chain's first receive is not a candidate (not enabled at ``pre``: blocked behind an
  older message of a fifo channel or at a crashed actor; or asleep there), DS2's ``didEnable``
  returns nothing, so its DPIRed adds every enabled receive and its IRed adds *nothing* (its
  TransDPOR does nothing on an empty ``E``): a race left unreversed. Ours falls back to the
  default choice among ``E``, or to every awake enabled transition when ``E`` is empty, as
  DPOR does. The chain's first receive, when chosen, is always a member of ``E`` (it happens
  before ``p`` through creation and is enabled and awake at ``pre``), so the rule only picks
  among the points DPOR's completeness argument allows.
* The rule applies to the races found on the trace. Races with the summary of a state explored
  before (stateful DPOR's join, :meth:`~checker.explore.dpor.Dpor.summary_races`) know only
  what happens before a summary transition, not its chain, and keep DPOR's choice.
* Everything else is :mod:`checker.explore.dpor`'s: its dependency relation (finer than DS2's
  "same receiver"), sleep sets, state caching, symmetry. The tests compare both strategies with
  plain DFS on every shipped protocol and variant and on pseudo-random actor systems.

On DS2's register benchmark DS2 reports IRed at 2,906 schedules (its TransDPOR: 2,906; DPOR:
2,984); ours proves it in 112, as our DPOR and TransDPOR do (``benchmarks/explore.py``). The rule
changes the search where the chain's first receive is not the candidate the default picks; on
small pseudo-random systems that is sometimes a schedule fewer, sometimes one more (the tests pin
both).
"""

from __future__ import annotations

from checker.explore.dpor import Dpor, Facts
from checker.explore.harness import Run

__all__ = ["IRed", "dpired", "ired"]


class IRed(Dpor):
    """The DPOR family's search (:class:`~checker.explore.dpor.Dpor`) with IRed's enabler rule
    (see the module docstring): ``trans`` and ``keyed`` as there."""

    __slots__ = ()

    def enabler(self, pre, E: list, tp: Facts, i: int):
        """The first receive of the creation chain that ends at ``tp`` (the race's later
        transition) after trace entry ``i``, when it is one of the candidates ``E`` at ``pre``;
        else None (the default choice)."""
        trace = self.trace
        first = tp.pid
        c = tp.creator
        while c is not None and c > i:
            step = trace[c]
            first, c = step.pid, step.creator
        return first if first in E else None


def ired(run: Run, keyed: bool = False) -> None:
    """Run IRed (TransDPOR with IRed's enabler rule; ``keyed``: the key-aware dependency) over
    ``run`` (results land in ``run``; :class:`~checker.explore.harness.Stop` at a budget). It
    judges properties as :func:`checker.explore.dpor.dpor` does."""
    IRed(run, True, keyed).search()


def dpired(run: Run, keyed: bool = False) -> None:
    """Run DPIRed (plain DPOR with IRed's enabler rule; ``keyed``: the key-aware dependency)
    over ``run``, as :func:`ired`."""
    IRed(run, False, keyed).search()
