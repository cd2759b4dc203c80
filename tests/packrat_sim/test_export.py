"""Exports of a plan to run_cpu launch lines, TorchServe properties and plan JSON."""

from __future__ import annotations

import json
import shlex
from argparse import ArgumentParser

import pytest

from packrat_sim.export import ExportError, export_plan
from packrat_sim.plan import Instance, Plan, loads_plan

HOMOGENEOUS = Plan((Instance(4, 16),) * 4, batch=64, cores=16)
HETEROGENEOUS = Plan((Instance(6, 2), Instance(5, 1), Instance(5, 1)), batch=4, cores=16)


def launch_lines(text: str) -> list[list[str]]:
    return [shlex.split(line.rstrip(" &")) for line in text.splitlines() if line.startswith("python -m")]


def run_cpu_parser() -> ArgumentParser:
    run_cpu = pytest.importorskip("torch.backends.xeon.run_cpu")
    parser = ArgumentParser()
    run_cpu.create_args(parser)
    return parser


@pytest.mark.parametrize("plan", [HOMOGENEOUS, HETEROGENEOUS], ids=["homogeneous", "heterogeneous"])
def test_every_run_cpu_line_parses_with_the_installed_torch_launcher(plan):
    parser = run_cpu_parser()
    lines = launch_lines(export_plan(plan, "run-cpu").text)
    assert len(lines) == len(plan.instances)
    seen_batches = []
    for argv in lines:
        assert argv[:3] == ["python", "-m", "torch.backends.xeon.run_cpu"]
        args = parser.parse_args(argv[3:])
        assert args.program == "serve.py"
        seen_batches.append(int(args.program_args[args.program_args.index("--batch-size") + 1]))
    assert sorted(seen_batches) == sorted(i.batch for i in plan.instances)


def test_a_heterogeneous_plan_gets_disjoint_core_lists_of_the_right_sizes():
    parser = run_cpu_parser()
    cores = []
    for argv, inst in zip(launch_lines(export_plan(HETEROGENEOUS, "run-cpu").text), HETEROGENEOUS.instances):
        args = parser.parse_args(argv[3:])
        ids = [int(c) for c in args.core_list.split(",")]
        assert len(ids) == inst.threads == args.ncores_per_instance
        cores += ids
    assert len(cores) == len(set(cores))


def test_a_homogeneous_plan_uses_ninstances_and_rank():
    lines = launch_lines(export_plan(HOMOGENEOUS, "run-cpu").text)
    assert [argv[argv.index("--rank") + 1] for argv in lines] == ["0", "1", "2", "3"]


def torchserve_properties(text: str) -> dict[str, str]:
    props = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and key.strip() and " " not in key, f"malformed property line {line!r}"
        props[key] = value
    return props


def test_torchserve_properties_are_well_formed_and_carry_the_plan():
    export = export_plan(HOMOGENEOUS, "torchserve", model="resnet")
    props = torchserve_properties(export.text)
    assert props["cpu_launcher_enable"] == "true"
    assert props["cpu_launcher_args"] == "--ncores-per-instance 4"
    config = json.loads(props["models"])["resnet"]["1.0"]
    assert config["minWorkers"] == config["maxWorkers"] == 4 and config["batchSize"] == 16
    assert not any("heterogeneous" in x for x in export.limitations)


def test_torchserve_names_what_it_cannot_express_for_heterogeneous_plans():
    export = export_plan(HETEROGENEOUS, "torchserve")
    assert any("no heterogeneous workers" in x for x in export.limitations)
    assert json.loads(torchserve_properties(export.text)["models"])["model"]["1.0"]["minWorkers"] == 3


def test_the_json_export_is_the_plan_file():
    assert loads_plan(export_plan(HETEROGENEOUS, "json").text) == HETEROGENEOUS


def test_unknown_formats_and_bad_names_are_rejected():
    with pytest.raises(ExportError, match="unknown export format 'yaml'"):
        export_plan(HOMOGENEOUS, "yaml")
    with pytest.raises(ExportError, match="model name"):
        export_plan(HOMOGENEOUS, "torchserve", model='a"b')


def _transformer_13():
    """transformer-16's calibrated optimum for a batch of 13 on 16 cores (heterogeneous) and
    its homogeneous optimum, both priced by one predictor."""
    from packrat_sim.optimizer import OptimizerOptions
    from packrat_sim.predictor import Predictor, best_plan, candidate_profile, homogeneous_optimum
    from packrat_sim.profile import builtin_profile

    predictor = Predictor(candidate_profile(builtin_profile("transformer-16"), 16, 13), None, True)
    options = OptimizerOptions(exact_cores=False)
    return best_plan(predictor, 13, 16, options), homogeneous_optimum(predictor, 13, 16, options)


def test_the_homogeneous_optimum_is_identical_instances_priced_no_faster_than_the_optimum():
    best, homogeneous = _transformer_13()
    assert best.describe() == "6 x 2t x 2 + 1 x 2t x 1" and homogeneous.describe() == "13 x 1t x 1"
    assert homogeneous.predicted_ms >= best.predicted_ms


def test_torchserve_exports_the_homogeneous_optimum_of_a_heterogeneous_plan_and_says_how_much_slower():
    best, homogeneous = _transformer_13()
    export = export_plan(best, "torchserve", homogeneous=homogeneous)
    props = torchserve_properties(export.text)
    config = json.loads(props["models"])["model"]["1.0"]
    assert (config["minWorkers"], config["batchSize"], props["cpu_launcher_args"]) == (13, 1, "--ncores-per-instance 1")
    ratio = homogeneous.predicted_ms / best.predicted_ms
    assert "exported the best homogeneous plan 13 x 1t x 1" in export.limitations[0]
    assert f"{ratio:.2f}x the predicted latency of the heterogeneous optimum" in export.limitations[0]


def test_a_homogeneous_plan_exports_itself_whatever_alternative_is_given():
    assert export_plan(HOMOGENEOUS, "torchserve", homogeneous=HETEROGENEOUS) == export_plan(HOMOGENEOUS, "torchserve")


def test_an_alternative_that_is_not_homogeneous_for_the_batch_or_not_priced_is_refused():
    best, homogeneous = _transformer_13()
    with pytest.raises(ExportError, match="not a homogeneous plan for batch 13"):
        export_plan(best, "torchserve", homogeneous=HOMOGENEOUS)
    with pytest.raises(ExportError, match="must both be priced"):
        export_plan(best, "torchserve", homogeneous=homogeneous.with_prediction(None))
