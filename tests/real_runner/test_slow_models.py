"""The transformer models (resnet50, bert-base, gpt2): a split batch equals the fat run.

Slow (seconds per batch on one core, several seconds to build): CI runs them. On two
CPUs each model runs as two 1-thread instances of one input each and as one 2-thread
instance on both inputs (on one CPU: 1 + 1 inputs on one thread against the fat run).
"""

from __future__ import annotations

import pytest
from rr_helpers import ALLOWED

from packrat_sim.plan import Instance, Plan
from real_runner.executor import compare_with_fat

T = min(2, len(ALLOWED))


@pytest.mark.slow
@pytest.mark.parametrize("model", ["resnet50", "bert-base", "gpt2"])
def test_the_outputs_of_a_split_batch_equal_those_of_the_fat_run(model):
    plan = Plan((Instance(1, 1), Instance(1, 1)), 2, 2) if T == 2 else Plan((Instance(1, 2),), 2, 1)
    comp = compare_with_fat(model, plan, 1, warmup=1)
    assert comp.outputs_match, f"{model}: max |diff| {comp.max_abs_diff}"
    assert comp.output_scale > 0  # the workers really computed something
    assert comp.plan.runtime == "eager" and len(comp.plan.samples_ms) == len(comp.fat.samples_ms) == 1
