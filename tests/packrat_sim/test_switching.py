"""The one rule for the kind of a switch: re-route, retarget or respawn, the cheapest that suffices."""

from __future__ import annotations

import pytest

from packrat_sim.errors import PackratError
from packrat_sim.plan import Instance, Plan, fat, thin
from packrat_sim.policy import LEARN_WINDOW, SwitchModel
from packrat_sim.switching import REROUTE, RESPAWN, RETARGET, SWITCH_KINDS, switch_kind


def plan(*instances: tuple[int, int], cores: int = 4) -> Plan:
    """A plan of (threads, sub-batch) instances; its batch is the sum of the sub-batches."""
    return Plan(tuple(Instance(t, b) for t, b in instances), sum(b for _, b in instances), cores)


def test_the_kinds_are_named_cheapest_first():
    assert SWITCH_KINDS == ("re-route", "retarget", "respawn")


def test_the_same_threads_with_a_different_split_is_a_re_route():
    assert switch_kind(plan((2, 3), (2, 5)), plan((2, 4), (2, 4))) == REROUTE
    assert switch_kind(thin(8, 4), thin(16, 4)) == REROUTE  # a larger batch over the same workers
    assert switch_kind(plan((1, 1), (3, 2)), plan((3, 6), (1, 2))) == REROUTE  # order does not matter


def test_a_plan_is_a_re_route_of_itself():
    assert switch_kind(fat(8, 4), fat(8, 4)) == REROUTE


def test_fewer_instances_is_a_retarget_whatever_the_standby():
    assert switch_kind(thin(8, 4), fat(8, 4)) == RETARGET  # 4 workers: one takes 4 threads, three park
    assert switch_kind(plan((2, 4), (2, 4)), plan((3, 6), (1, 2))) == RETARGET  # new thread counts in place


def test_more_instances_retarget_when_live_plus_standby_workers_suffice():
    assert switch_kind(fat(8, 4), thin(8, 4), standby=3) == RETARGET
    assert switch_kind(fat(8, 4), plan((2, 4), (2, 4)), standby=1) == RETARGET


def test_more_instances_than_live_plus_standby_workers_is_a_respawn():
    assert switch_kind(fat(8, 4), thin(8, 4)) == RESPAWN  # no standby
    assert switch_kind(fat(8, 4), thin(8, 4), standby=2) == RESPAWN  # 1 + 2 < 4
    assert switch_kind(plan((2, 4), (2, 4)), thin(8, 4), standby=1) == RESPAWN


def test_a_bad_standby_count_is_an_error_naming_it():
    with pytest.raises(PackratError, match="standby workers must be .*, got -1"):
        switch_kind(fat(8, 4), thin(8, 4), standby=-1)



def test_a_learned_price_is_the_median_of_the_latest_measured_switches_of_its_kind():
    model = SwitchModel(retarget_ms=2.0, reroute_ms=0.4).learned(RETARGET, [1.0, 30.0, 3.0])
    assert (model.retarget_ms, model.reroute_ms) == (3.0, 0.4)  # one slow switch does not move it
    assert model.learned(REROUTE, [100.0] * 5 + [0.2] * LEARN_WINDOW).reroute_ms == 0.2  # only the latest count


def test_a_kind_never_measured_and_a_respawn_keep_their_price():
    assert SwitchModel().learned(RETARGET, []) == SwitchModel()
    assert SwitchModel().learned(RESPAWN, [9000.0]) == SwitchModel()


@pytest.mark.parametrize("kind, ms, named", [("reboot", [1.0], "'reboot'"), (RETARGET, [-1.0], "-1.0"),
                                             (RETARGET, [float("nan")], "nan"), (REROUTE, ["1"], "'1'")])
def test_a_bad_kind_or_measurement_is_an_error_naming_it(kind, ms, named):
    with pytest.raises(PackratError, match=named):
        SwitchModel().learned(kind, ms)
