"""Which kind of switch a reconfiguration is: the one rule the policy, the simulator and the runner share.

A reconfiguration from plan ``old`` to plan ``new`` is performed by the cheapest kind that
suffices (issue 28):

* ``re-route``: the same instances (the same multiset of thread counts); only the split of
  the batch over them changes. No process changes.
* ``retarget``: live workers change their thread count and cores in place; workers the new
  plan does not need park (they keep their model, hold no cores); workers it needs beyond the
  live ones come from the warm standby pool (processes already started, model built).
* ``respawn``: at least one new process must be started (more instances than live plus warm
  standby workers), with the start-up cost that implies.

:func:`switch_kind` decides from the two plans and the number of warm standby workers; the
policy prices that kind (:class:`packrat_sim.policy.SwitchModel`), the simulator models it
and the runner performs it, so the kind priced is the kind executed.

Pure functions.
"""

from __future__ import annotations

from collections import Counter

from packrat_sim.plan import Plan
from packrat_sim.validate import nonnegative_int

REROUTE = "re-route"
RETARGET = "retarget"
RESPAWN = "respawn"
#: Every kind, cheapest first.
SWITCH_KINDS = (REROUTE, RETARGET, RESPAWN)


def switch_kind(old: Plan, new: Plan, standby: int = 0) -> str:
    """The kind of switch ``old`` -> ``new`` needs when ``standby`` warm workers wait parked.

    ``re-route`` when both plans run the same multiset of thread counts; else ``retarget``
    when the new plan's instances fit in the old plan's live workers plus the standby ones;
    else ``respawn``. A plan identical to ``old`` is a (free) re-route.
    """
    standby = nonnegative_int(standby, "standby workers")
    if Counter(i.threads for i in old.instances) == Counter(i.threads for i in new.instances):
        return REROUTE
    if len(new.instances) <= len(old.instances) + standby:
        return RETARGET
    return RESPAWN
