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
