"""Plans: canonical form, compact groups, validation, JSON, baselines."""

from __future__ import annotations

import json
import re

import pytest

from packrat_sim.plan import (
    Instance,
    Plan,
    PlanError,
    dumps_plan,
    equal_instances,
    fat,
    fixed_cores,
    loads_plan,
    plan_latency,
    split_evenly,
    thin,
)


def test_plans_with_the_same_instances_in_any_order_are_equal_and_hash_alike():
    a = Plan((Instance(1, 2), Instance(4, 8), Instance(1, 2)), batch=12, cores=6)
    b = Plan((Instance(4, 8), Instance(1, 2), Instance(1, 2)), batch=12, cores=6)
    assert a == b and hash(a) == hash(b)


def test_groups_give_packrats_compact_form_threads_then_batch_descending():
    p = Plan((Instance(1, 2), Instance(4, 8), Instance(1, 2), Instance(4, 4)), batch=16, cores=10)
    assert p.groups() == [(1, 4, 8), (1, 4, 4), (2, 1, 2)]
    assert p.describe() == "1 x 4t x 8 + 1 x 4t x 4 + 2 x 1t x 2"


def test_a_plan_whose_sub_batches_do_not_sum_to_the_batch_is_rejected():
    with pytest.raises(PlanError, match="sub-batches sum to 3, not the batch 4"):
        Plan((Instance(1, 1), Instance(1, 2)), batch=4, cores=2)


def test_a_plan_needing_more_threads_than_cores_is_rejected():
    with pytest.raises(PlanError, match="need 5 threads but only 4 cores"):
        Plan((Instance(4, 1), Instance(1, 1)), batch=2, cores=4)


def test_instances_may_not_share_pinned_cores():
    with pytest.raises(PlanError, match=r"cores \[1\]"):
        Plan((Instance(2, 1, (0, 1)), Instance(2, 1, (1, 2))), batch=2, cores=4)


def test_an_instance_pinned_to_the_wrong_number_of_cores_is_rejected():
    with pytest.raises(PlanError, match="2 threads is pinned to 1 cores"):
        Instance(2, 1, (0,))


def test_plan_json_round_trips_and_unknown_schemas_are_rejected():
    p = Plan((Instance(2, 4, (0, 1)), Instance(2, 4, (2, 3))), batch=8, cores=4, predicted_ms=12.5)
    again = loads_plan(dumps_plan(p))
    assert again == p and again.predicted_ms == 12.5
    obj = json.loads(dumps_plan(p))
    obj["schema"] = "packrat.plan/0"
    with pytest.raises(PlanError, match="packrat.plan/0"):
        Plan.from_json(obj)


@pytest.mark.parametrize(
    "obj, message",
    [
        ({"schema": "packrat.plan/1", "batch": 0, "cores": 1, "instances": [{"threads": 1, "batch": 1}]}, "plan batch"),
        ({"schema": "packrat.plan/1", "batch": 1, "cores": 1, "instances": "x"}, "instances"),
        ({"schema": "packrat.plan/1", "batch": 1, "cores": 1, "instances": [{"threads": "2", "batch": 1}]}, r"instances\[0\].threads"),
        ({"schema": "packrat.plan/1", "batch": 1, "cores": 1, "instances": [{"threads": 1, "batch": 1, "cores": [-1]}]}, "cores"),
    ],
)
def test_malformed_plan_files_name_the_bad_field(obj, message):
    with pytest.raises(PlanError, match=message):
        Plan.from_json(obj)


def test_split_evenly_differs_by_at_most_one_and_never_exceeds_the_batch():
    assert split_evenly(10, 4) == [3, 3, 2, 2]
    assert split_evenly(3, 8) == [1, 1, 1]


def test_baselines_fat_thin_equal_and_fixed_cores():
    assert fat(64, 16).groups() == [(1, 16, 64)]
    assert thin(64, 16).groups() == [(16, 1, 4)]
    assert thin(4, 16).groups() == [(4, 1, 1)]
    assert equal_instances(64, 16, 4).groups() == [(4, 4, 16)]
    assert fixed_cores(64, 16).groups() == [(4, 4, 16)]
    assert fixed_cores(8, 2).groups() == [(1, 2, 8)]


def test_plan_latency_is_the_slowest_instance_or_none_when_unknown():
    p = Plan((Instance(1, 1), Instance(1, 2)), batch=3, cores=2)
    assert plan_latency(p, lambda t, b: 10.0 * b) == 20.0
    assert plan_latency(p, lambda t, b: None if b == 2 else 1.0) is None


# ---- compact form (issue 27): parse_compact reads what describe() writes


def test_parse_compact_reads_count_x_threads_x_sub_batch_groups_joined_by_plus():
    from packrat_sim.plan import parse_compact

    p = parse_compact("4x4x16+2x2x8")
    assert p.groups() == [(4, 4, 16), (2, 2, 8)] and p.batch == 80 and p.cores == 20


def test_parse_compact_allows_spaces_capital_x_and_the_t_that_describe_writes():
    from packrat_sim.plan import parse_compact

    assert parse_compact(" 4 X 4 x 16 +2x2T x8 ", cores=32) == Plan(
        tuple([Instance(4, 16)] * 4 + [Instance(2, 8)] * 2), batch=80, cores=32)


@pytest.mark.parametrize("plan", [
    Plan((Instance(1, 2), Instance(4, 8), Instance(1, 2), Instance(4, 4)), batch=16, cores=10),
    Plan((Instance(16, 64),), batch=64, cores=16),
])
def test_parse_compact_and_describe_are_inverse(plan):
    from packrat_sim.plan import parse_compact

    assert parse_compact(plan.describe(), plan.cores) == plan
    assert parse_compact(plan.describe(), plan.cores).describe() == plan.describe()


@pytest.mark.parametrize("text, message", [
    ("", "at least one group"),
    ("4x4", "plan group '4x4' is not COUNT x THREADS x SUB-BATCH"),
    ("4x4x16+", "plan group ''"),
    ("4x4x16++2x2x8", "plan group ''"),
    ("4x4x16x2", "plan group '4x4x16x2'"),
    ("0x4x16", "plan group '0x4x16': count must be a positive integer"),
    ("4x-4x16", "plan group '4x-4x16': threads"),
    ("4x4x1.5", "plan group '4x4x1.5': sub-batch"),
    ("100000x1x1", "more than 65536"),
])
def test_parse_compact_names_the_malformed_group(text, message):
    from packrat_sim.plan import parse_compact

    with pytest.raises(PlanError, match=message.replace("+", r"\+").replace(".", r"\.")):
        parse_compact(text)


def test_parse_compact_refuses_more_threads_than_cores():
    from packrat_sim.plan import parse_compact

    with pytest.raises(PlanError, match="'4x8x16' needs 32 threads but only 16 cores"):
        parse_compact("4x8x16", cores=16)


# ---- origin (issue 31, item 3): a plan file records the model, the profile's digest and the machine


def _measured(model="bert-base", cpu="Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz", logical=64):
    from dataclasses import replace

    from packrat_sim.profile import Machine, builtin_profile

    return replace(builtin_profile("cnn-4", max_batch=8), model=model, synthetic=False,
                   machine=Machine(cpu_model=cpu, logical_cores=logical, physical_cores=logical // 2, sockets=2))


def test_a_plan_records_its_origin_and_the_file_round_trips_it():
    from packrat_sim.plan import PlanOrigin, profile_digest

    prof = _measured()
    origin = PlanOrigin.of(prof)
    assert origin == PlanOrigin("bert-base", profile_digest(prof), "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz", 64)
    p = fat(8, 4).with_prediction(3.5).with_origin(origin)
    obj = json.loads(dumps_plan(p))
    assert obj["model"] == "bert-base" and obj["synthetic"] is False
    assert obj["profile_digest"] == profile_digest(prof) and re.fullmatch(r"[0-9a-f]{16}", obj["profile_digest"])
    assert obj["machine"] == {"cpu_model": "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz", "logical_cores": 64}
    again = loads_plan(dumps_plan(p))
    assert again == p and again.origin == origin and again.predicted_ms == 3.5
    assert again.with_prediction(4.0).origin == origin  # kept by with_prediction


def test_a_plan_file_written_before_plans_recorded_their_origin_still_loads():
    old = {"schema": "packrat.plan/1", "batch": 8, "cores": 4,
           "instances": [{"threads": 4, "batch": 8, "cores": []}], "predicted_ms": 2.0}
    p = Plan.from_json(old)
    assert p.origin is None and p == fat(8, 4)
    assert json.loads(dumps_plan(p)) == old  # and a plan without an origin writes no origin fields


@pytest.mark.parametrize("fields, message", [
    ({"model": ""}, "plan 'model' must be a non-empty string"),
    ({"model": 5}, "plan 'model'"),
    ({"model": "m", "profile_digest": 1}, "profile_digest"),
    ({"model": "m", "machine": "x"}, "plan 'machine' must be an object"),
    ({"model": "m", "machine": {"cpu_model": "x", "logical_cores": -1}}, "machine.logical_cores"),
    ({"model": "m", "machine": {"cpu_model": 3}}, "machine.cpu_model"),
    ({"model": "m", "synthetic": "no"}, "'synthetic' must be true or false"),
])
def test_malformed_origin_fields_name_the_field(fields, message):
    obj = {"schema": "packrat.plan/1", "batch": 1, "cores": 1, "instances": [{"threads": 1, "batch": 1}], **fields}
    with pytest.raises(PlanError, match=message):
        Plan.from_json(obj)


def test_the_profile_digest_is_stable_through_a_file_and_changes_with_the_content(tmp_path):
    from dataclasses import replace

    from packrat_sim.plan import profile_digest
    from packrat_sim.profile import read_profile, write_profile

    prof = _measured()
    write_profile(prof, str(tmp_path / "p.json"))
    assert profile_digest(read_profile(str(tmp_path / "p.json"))) == profile_digest(prof)
    assert profile_digest(prof) == profile_digest(_measured())  # deterministic
    assert profile_digest(replace(prof, cells=prof.cells[1:])) != profile_digest(prof)
    assert profile_digest(_measured(model="gpt2")) != profile_digest(prof)


def test_another_machine_is_a_known_cpu_model_or_count_that_differs():
    from packrat_sim.plan import PlanOrigin

    o = PlanOrigin("bert-base", "", "Xeon Gold", 64)
    assert not o.other_machine("Xeon Gold", 64)
    assert o.other_machine("Xeon Gold", 2) and o.other_machine("EPYC", 64)
    assert not PlanOrigin("bert-base").other_machine("EPYC", 2)  # unknown (e.g. imported): nothing to compare
    assert not PlanOrigin("cnn-16", "", "synthetic 16-core server", 16, synthetic=True).other_machine("EPYC", 2)
    warning = o.machine_warning("the plan p.json", "EPYC", 2)
    assert warning == ("warning: the plan p.json describes Xeon Gold, 64 logical CPUs, not this machine "
                       "(EPYC, 2 logical CPUs): its predictions may not hold here")
    assert o.machine_warning("the plan p.json", "Xeon Gold", 64) is None


@pytest.mark.parametrize("text, named", [('{"a": 1, "a": 2}', "'a'"), ('{"batch": NaN}', "NaN"),
                                         ('{"batch": ' + "9" * 5000 + "}", "digits")])
def test_a_plan_file_is_read_strictly_naming_what_is_wrong(text, named):
    with pytest.raises(PlanError, match=named):
        loads_plan(text)
