"""The model catalog: real networks built on the CPU with random weights, no downloads.

Every entry has a fixed per-item input shape, so a batch of ``b`` inputs is one tensor
``[b, *input_shape]`` and every model maps it to one output tensor ``[b, ...]``:

* ``tiny-mlp``, ``tiny-cnn``: plain torch, milliseconds per batch, for tests and the demo;
* ``resnet50`` (224x224 images), ``bert-base`` and ``gpt2`` (128-token sequences): built
  with ``transformers`` from their default configs (``HF_HUB_OFFLINE=1``, nothing is
  downloaded); the output is the last hidden state;
* ``inception-v3`` (299x299 images): only where ``torchvision`` imports.

Weights come from ``torch.manual_seed(seed)``, so every process that builds the same
model with the same seed holds the same weights (the executor relies on this to compare
a split batch with the fat run). Models are in ``eval()`` mode and are meant to be
called under ``torch.inference_mode()``. Optionally (``jit=True``) a model is traced and
frozen with TorchScript; which runtime was used is returned with the model.

Importing this module does not import torch: the catalog's names and shapes are plain
data, and torch / transformers are imported by the builders.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from packrat_sim import validate
from packrat_sim.errors import PackratError


class ModelCatalogError(PackratError):
    """An unknown model name, or a model that cannot be built here; names the value."""


@dataclass(frozen=True)
class ModelSpec:
    """One catalog entry. ``input_shape`` is per item; ``input_kind`` is ``image``
    (float32 in N(0, 1)), ``features`` (float32) or ``tokens`` (int64 ids below ``vocab``)."""

    name: str
    description: str
    family: str  # "plain-torch" | "transformers" | "torchvision"
    input_shape: tuple[int, ...]
    input_kind: str
    vocab: int = 0
    slow: bool = False  # seconds per batch on one core: not for the default test run

    @property
    def input_dtype(self) -> str:
        return "int64" if self.input_kind == "tokens" else "float32"


SEQ_LEN = 128
IMAGE = 224

CATALOG: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("tiny-mlp", "3-layer MLP 64-256-256-10 (plain torch, ~0.1 ms per item)", "plain-torch", (64,), "features"),
        ModelSpec("tiny-cnn", "4-layer CNN on 3x64x64 images (plain torch, ~1 ms per item)", "plain-torch", (3, 64, 64), "image"),
        ModelSpec("resnet50", "ResNet-50 (transformers ResNetConfig()), 3x224x224 images", "transformers", (3, IMAGE, IMAGE), "image", slow=True),
        ModelSpec("bert-base", "BERT-base (transformers BertConfig()), 128-token sequences", "transformers", (SEQ_LEN,), "tokens", vocab=30522, slow=True),
        ModelSpec("gpt2", "GPT-2 small (transformers GPT2Config()), 128-token sequences", "transformers", (SEQ_LEN,), "tokens", vocab=50257, slow=True),
        ModelSpec("inception-v3", "Inception-v3 (torchvision, random weights), 3x299x299 images", "torchvision", (3, 299, 299), "image", slow=True),
    )
}

_TORCHVISION_OK: bool | None = None


def torchvision_available() -> bool:
    """Whether ``import torchvision`` works beside this torch (checked once)."""
    global _TORCHVISION_OK
    if _TORCHVISION_OK is None:
        if importlib.util.find_spec("torchvision") is None:
            _TORCHVISION_OK = False
        else:
            try:
                importlib.import_module("torchvision")
                _TORCHVISION_OK = True
            except Exception:  # a torchvision built for another torch fails in many ways
                _TORCHVISION_OK = False
    return _TORCHVISION_OK


def known_models() -> tuple[str, ...]:
    """Names of the models this machine can build, in catalog order."""
    return tuple(
        name for name, spec in CATALOG.items() if spec.family != "torchvision" or torchvision_available()
    )


def get_spec(name: str) -> ModelSpec:
    """The catalog entry of ``name``; ModelCatalogError listing the known models otherwise."""
    known = known_models()
    if name not in known:
        why = " (inception-v3 needs torchvision, which does not import here)" if name == "inception-v3" else ""
        raise ModelCatalogError(f"unknown model {name!r}{why}; known models: {', '.join(known)}")
    return CATALOG[name]


# ----------------------------------------------------------------------- builders


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _tiny_mlp():
    from torch import nn

    return nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))


def _tiny_cnn():
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10),
    )


def _wrap_last_hidden(inner, keyword: str, **extra):
    """A module that calls a transformers model with one tensor and returns last_hidden_state."""
    from torch import nn

    class LastHiddenState(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(**{keyword: x}, **extra).last_hidden_state

    return LastHiddenState()


def _transformers():
    _offline()
    transformers = importlib.import_module("transformers")
    with contextlib.suppress(Exception):  # pragma: no cover - logging API moved
        transformers.logging.set_verbosity_error()
    return transformers


def _resnet50():
    tf = _transformers()
    return _wrap_last_hidden(tf.ResNetModel(tf.ResNetConfig()), "pixel_values")


def _bert_base():
    tf = _transformers()
    return _wrap_last_hidden(tf.BertModel(tf.BertConfig(), add_pooling_layer=False), "input_ids")


def _gpt2():
    tf = _transformers()
    return _wrap_last_hidden(tf.GPT2Model(tf.GPT2Config()), "input_ids", use_cache=False)


def _inception_v3():
    import torchvision

    return torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=True)


_BUILDERS: dict[str, Callable[[], Any]] = {
    "tiny-mlp": _tiny_mlp,
    "tiny-cnn": _tiny_cnn,
    "resnet50": _resnet50,
    "bert-base": _bert_base,
    "gpt2": _gpt2,
    "inception-v3": _inception_v3,
}


def require_batch_memory(name: str, batch: int, error=None) -> None:
    """Refuse (``error``, default ModelCatalogError) a batch of ``name`` whose inputs, their copies and
    activations would exceed packrat_sim.limits' memory limit (PACKRAT_MAX_MEMORY_MB)."""
    from packrat_sim import limits

    spec = get_spec(name)
    limits.require(limits.batch_bytes(batch, spec.input_shape, spec.input_dtype), f"a batch of {batch} {name} inputs",
                   error=error or ModelCatalogError)


def make_inputs(name: str, batch: int, seed: int = 0):
    """A deterministic batch ``[batch, *input_shape]`` for model ``name`` (same seed, same tensor)."""
    import torch

    spec = get_spec(name)
    validate.positive_int(batch, "batch", error=ModelCatalogError)
    require_batch_memory(name, batch)
    gen = torch.Generator().manual_seed(seed)
    shape = (batch, *spec.input_shape)
    if spec.input_kind == "tokens":
        return torch.randint(0, spec.vocab, shape, generator=gen, dtype=torch.int64)
    return torch.randn(shape, generator=gen, dtype=torch.float32)


@dataclass
class BuiltModel:
    """A built catalog model: ``module(x)`` maps ``[b, *input_shape]`` to ``[b, ...]``."""

    name: str
    module: Any
    runtime: str  # "eager" | "torchscript-frozen" | "eager (jit failed: ...)"

    def __call__(self, x):
        return self.module(x)


def build_model(name: str, *, seed: int = 0, jit: bool = False) -> BuiltModel:
    """Build catalog model ``name`` with weights from ``torch.manual_seed(seed)``, in eval mode.

    ``jit=True`` traces it with a batch of 1 and freezes it (TorchScript); if tracing fails
    the eager model is kept and ``runtime`` says why. Raises ModelCatalogError for unknown names.
    """
    import torch

    get_spec(name)
    torch.manual_seed(seed)
    try:
        module = _BUILDERS[name]()
    except ImportError as exc:
        raise ModelCatalogError(f"model {name!r} needs a package that does not import here: {exc}") from None
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    runtime = "eager"
    if jit:
        import warnings

        try:
            with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
                warnings.simplefilter("ignore")  # torch >= 2.10 deprecates TorchScript; it still works
                traced = torch.jit.trace(module, make_inputs(name, 1, seed), check_trace=False)
                module = torch.jit.freeze(traced.eval())
            runtime = "torchscript-frozen"
        except Exception as exc:  # keep serving eagerly, say so
            runtime = f"eager (jit failed: {type(exc).__name__})"
    return BuiltModel(name=name, module=module, runtime=runtime)
