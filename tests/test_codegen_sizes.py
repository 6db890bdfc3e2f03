"""The generated torch Xception runs at any size Keras's model takes: TensorFlow's 'same'
padding is worked out from the input at run time, not baked in from the spec's size. At
299x299, 150x150 and 71x71 (the smallest Xception takes) its logits agree with the Keras
build's; and the generated module still exports with torch.export.

One generated module (from the spec's default 299x299) serves every size; each size's Keras
build is made once and shared, batch 1: building at 299 takes a while on a CPU."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import import_source
from test_codegen import XCEPTION, relative_error
from test_codegen_api import TEXT

from xgraph.api import codegen, load, loads
from xgraph.weights.initial import random_weights

SIZES = (299, 150, 71)
LOGITS = ("classifier_activation=none",)


def generated_model(analysed: Any, weights: Any, directory: Path, name: str) -> Any:
    """The generated torch module for `analysed`, holding the build's weights."""
    from xgraph.codegen import class_name
    from xgraph_torch.backend import TorchBackend
    from xgraph_torch.codegen import state_dict_keys

    module = import_source(codegen(analysed, "torch"), directory, name)
    model = getattr(module, class_name(analysed.name))().eval()
    state = TorchBackend().build(analysed, weights).state_dict()
    keys = state_dict_keys(analysed, list(state))
    model.load_state_dict({keys[key]: value for key, value in state.items()})
    return model


@pytest.fixture(scope="module")
def xception(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    """The generated torch Xception (logits out) with seeded random weights (BatchNorm
    statistics too), and those weights."""
    analysed = load(XCEPTION, LOGITS)
    weights = random_weights(analysed, seed=3)
    directory = tmp_path_factory.mktemp("xception")
    return generated_model(analysed, weights, directory, "xception_any_size"), weights


@pytest.fixture(scope="module")
def keras_logits() -> Callable[[int, Any, np.ndarray], np.ndarray]:
    """Each size's Keras build, made the first time a test asks for it."""
    from xgraph_keras.backend import KerasBackend

    backend = KerasBackend()
    made: dict[int, Any] = {}

    def logits(size: int, weights: Any, image: np.ndarray) -> np.ndarray:
        if size not in made:
            analysed = load(XCEPTION, [*LOGITS, f"input_shape=[{size}, {size}, 3]"])
            made[size] = backend.build(analysed, weights)
        (out,) = backend.predict(made[size], [image])
        return out

    return logits


@pytest.mark.parametrize("size", SIZES)
def test_generated_xception_agrees_with_keras_at_every_size(
    size: int, xception: tuple[Any, Any], keras_logits: Callable[..., np.ndarray]
) -> None:
    from xgraph_torch.backend import TorchBackend

    model, weights = xception
    image = np.random.default_rng(size).standard_normal((1, size, size, 3)).astype(np.float32)
    (got,) = TorchBackend().predict(model, [image])
    want = keras_logits(size, weights, image)
    assert got.shape == want.shape == (1, 1000)
    assert relative_error(got, want) <= 1e-5


def test_the_generated_module_exports(tmp_path: Path) -> None:
    """torch.export traces the run-time padding (strided 'same' convolutions in a block
    repeated as an nn.Sequential), and the exported program computes the module's numbers."""
    import torch

    analysed = loads(TEXT.replace("shape: [16, 16, 4]", "shape: [15, 15, 4]"))
    model = generated_model(analysed, random_weights(analysed, seed=1), tmp_path, "held_export")
    image = torch.randn(1, 4, 15, 15)
    exported = torch.export.export(model, (image,))
    with torch.inference_mode():
        want = model(image)
        got = exported.module()(image)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
