"""DPLiViola (``--strategy dpliviola``): DPIRed with the key-aware dependency, pinned on DS2's
register benchmark, with the keys used only where they are sound, and DS2's own key rule (a
fresh key for a message without one) shown to lose histories."""

from __future__ import annotations

import dataclasses

from checker.actors import System
from checker.explore import explore
from checker.protocols import build
from checker.protocols.ds2 import Ds2Agent
from tests.checker.explore_helpers import everything
from tests.checker.test_explore_reductions import per_key


def test_dpliviola_proves_ds2s_register_with_all_44_histories_in_62_schedules_where_ds2s_liviola_finds_12():
    result = everything("register", "dpliviola", variant="ds2")
    assert result.ok and result.complete
    assert result.schedules == 62 and result.distinct_histories == 44
    assert result.histories == everything("register", "exhaustive", variant="ds2").histories
    assert result.schedules < everything("register", "dpired", variant="ds2").schedules == 112
    assert everything("register", "dpliviola", variant="ds2", local_commutation=False).schedules == 132


def test_dpliviola_breaks_ds2s_erroneous_register_at_schedule_6():
    result = explore("register", "dpliviola", variant="ds2-erroneous", shrink_counterexample=False)
    assert result.violated and result.violation.kind == "linearizability"
    assert result.first_violation_at == 6


def test_keys_cut_schedules_on_an_unordered_two_key_register_and_keep_every_history_per_key():
    protocol = build("register", "majority", keys=2, writes=2, replicas=2)
    reference = everything(protocol, "dfs", symmetry=False, sleep_sets=False)
    keyed, plain = everything(protocol, "dpliviola"), everything(protocol, "dpired")
    assert (keyed.schedules, plain.schedules) == (136, 159)
    assert per_key(protocol, keyed.histories) == per_key(protocol, reference.histories)
    assert keyed.violations == reference.violations


def test_keys_are_not_used_on_a_fifo_network_where_a_delivery_enables_the_next_message_of_its_channel():
    protocol = build("register", "majority", keys=2, writes=2, replicas=2, network="fifo")
    keyed, plain = everything(protocol, "dpliviola"), everything(protocol, "dpired")
    assert keyed.schedules == plain.schedules == 244
    assert keyed.histories == plain.histories


@dataclasses.dataclass(frozen=True)
class FreshKeyAgent(Ds2Agent):
    """DS2's LiViola key rule: a message without a key gets a key of its own (DS2 draws a random
    one for each message type its table does not list), so it commutes with every other."""

    def key_of(self, msg):
        key = super().key_of(msg)
        return ("fresh", msg) if key is None else key


def test_ds2s_key_rule_giving_a_message_without_a_key_a_fresh_one_loses_36_of_the_44_histories():
    protocol = build("register", "ds2")
    system = protocol.system
    agents = [(name, FreshKeyAgent(**{f.name: getattr(a, f.name) for f in dataclasses.fields(a)})
               if isinstance(a, Ds2Agent) else a) for name, a in zip(system.names, system.actors)]
    ds2_rule = everything(dataclasses.replace(protocol, system=System(agents)), "dpliviola")
    assert ds2_rule.complete and ds2_rule.distinct_histories == 8  # ours (None: dependent): all 44
    assert everything(protocol, "dpliviola").distinct_histories == 44
