"""The model catalog builds real networks offline, deterministically, with fixed input shapes."""

from __future__ import annotations

import pytest

from real_runner import models
from real_runner.models import ModelCatalogError as ModelError  # renamed from ModelError (checker.models has its own)
from real_runner.models import build_model, get_spec, known_models, make_inputs


def test_the_catalog_offers_the_tiny_models_and_the_transformer_models():
    assert {"tiny-mlp", "tiny-cnn", "resnet50", "bert-base", "gpt2"} <= set(known_models())


def test_an_unknown_model_is_refused_with_the_list_of_known_ones():
    with pytest.raises(ModelError, match="unknown model 'resnet51'; known models: tiny-mlp, tiny-cnn, resnet50"):
        get_spec("resnet51")


def test_inception_is_offered_only_where_torchvision_imports(monkeypatch):
    monkeypatch.setattr(models, "_TORCHVISION_OK", False)
    assert "inception-v3" not in known_models()
    with pytest.raises(ModelError, match="needs torchvision"):
        get_spec("inception-v3")
    monkeypatch.setattr(models, "_TORCHVISION_OK", True)
    assert "inception-v3" in known_models()


def test_the_transformer_models_have_the_fixed_input_shapes():
    assert get_spec("resnet50").input_shape == (3, 224, 224)
    assert get_spec("bert-base").input_shape == (128,) and get_spec("bert-base").input_dtype == "int64"
    assert get_spec("gpt2").input_shape == (128,)


@pytest.mark.parametrize("name, out_shape", [("tiny-mlp", (5, 10)), ("tiny-cnn", (5, 10))])
def test_a_tiny_model_maps_a_batch_to_one_output_row_per_input(name, out_shape):
    import torch

    model = build_model(name)
    with torch.inference_mode():
        y = model(make_inputs(name, 5))
    assert tuple(y.shape) == out_shape and model.runtime == "eager"


def test_the_same_seed_builds_the_same_weights_and_the_same_inputs():
    import torch

    a, b = build_model("tiny-cnn", seed=3), build_model("tiny-cnn", seed=3)
    x = make_inputs("tiny-cnn", 4, seed=9)
    assert torch.equal(x, make_inputs("tiny-cnn", 4, seed=9))
    with torch.inference_mode():
        assert torch.equal(a(x), b(x))
    assert not torch.equal(make_inputs("tiny-cnn", 4, seed=1), x)


def test_jit_traces_and_freezes_a_model_that_gives_the_same_outputs():
    import torch

    eager, frozen = build_model("tiny-cnn"), build_model("tiny-cnn", jit=True)
    assert frozen.runtime == "torchscript-frozen"
    x = make_inputs("tiny-cnn", 3)
    with torch.inference_mode():
        assert torch.allclose(eager(x), frozen(x), atol=1e-5)


def test_a_batch_must_be_positive():
    with pytest.raises(ModelError, match="batch must be a positive integer, got 0"):
        make_inputs("tiny-mlp", 0)
