"""Every keras.applications model with a spec in specs/ loads from each of Keras's files.

Per spec, keras.applications builds the model once, at a small input with 10 classes
(random weights, BatchNorm statistics far from (0, 1)), and saves it as `.weights.h5`,
`.keras`, a legacy `.h5` (Keras 3's `model.save`) and a Keras 2 `.h5` (the layout of
keras.applications' ImageNet files, written with h5py). xgraph reads each file, and its torch
and keras builds, made once per spec, must compute Keras's logits within 1e-5 relative.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_keras_weight_files import import_keras, randomise, relative_error, write_keras2_copy

from xgraph.api import load
from xgraph.backend import load_backend
from xgraph.ir.analysis import AnalysedGraph
from xgraph.weights.formats import read_weights

SPECS = Path(__file__).resolve().parent.parent / "specs"
CLASSES = 10
LOGITS_TOLERANCE = 1e-5
FORMATS = ("weights_h5", "keras", "legacy_h5", "keras2_h5")
BACKENDS = ("torch", "keras")


@dataclass(frozen=True)
class App:
    """A spec and the keras.applications function that builds the same network, at the
    smallest square input both take."""

    spec: str
    function: str
    size: int

    def overrides(self) -> list[str]:
        return [
            f"input_shape=[{self.size}, {self.size}, 3]",
            f"classes={CLASSES}",
            "classifier_activation=none",
        ]


APPS = (
    App("xception", "Xception", 71),
    App("vgg16", "VGG16", 32),
    App("resnet50", "ResNet50", 32),
    App("inception_v3", "InceptionV3", 75),
    App("mobilenet", "MobileNet", 32),
)


@dataclass(frozen=True)
class Saved:
    """One app's files, the spec's builds (to take each file's weights in turn), an input
    and Keras's logits for it."""

    analysed: AnalysedGraph
    files: dict[str, Path]
    builds: dict[str, Any]
    x: np.ndarray
    logits: np.ndarray


def save_formats(model: Any, folder: Path) -> dict[str, Path]:
    """The model in each format that Keras writes, and a Keras 2 `.h5` made from the legacy one."""
    files = {
        "weights_h5": folder / "model.weights.h5",
        "keras": folder / "model.keras",
        "legacy_h5": folder / "model.h5",
        "keras2_h5": folder / "keras2.h5",
    }
    model.save_weights(files["weights_h5"])
    model.save(files["keras"])
    model.save(files["legacy_h5"])
    write_keras2_copy(files["legacy_h5"], files["keras2_h5"], at_root=True)
    return files


@pytest.fixture(scope="module")
def saved(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Saved]:
    """The app of `request.param`: Keras's model, its files and logits, the spec's builds."""
    app: App = request.param
    keras = import_keras()
    keras.utils.set_random_seed(0)
    build = getattr(keras.applications, app.function)
    model = build(
        weights=None,
        input_shape=(app.size, app.size, 3),
        classes=CLASSES,
        classifier_activation=None,
    )
    randomise(model, seed=1)
    folder = tmp_path_factory.mktemp(app.spec)
    x = np.random.default_rng(2).uniform(-1, 1, (2, app.size, app.size, 3)).astype(np.float32)
    analysed = load(SPECS / f"{app.spec}.yaml", app.overrides())
    yield Saved(
        analysed=analysed,
        files=save_formats(model, folder),
        builds={name: load_backend(name).build(analysed) for name in BACKENDS},
        x=x,
        logits=np.asarray(model(x, training=False)),  # eager: no tracing for one call
    )
    keras.backend.clear_session()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("saved", APPS, ids=lambda app: app.spec, indirect=True)
def test_keras_file_gives_keras_logits(saved: Saved, fmt: str) -> None:
    weights = read_weights(saved.files[fmt], saved.analysed)
    for name, model in saved.builds.items():
        backend = load_backend(name)
        backend.set_weights(model, saved.analysed, weights)
        (got,) = backend.predict(model, [saved.x])
        assert got.shape == saved.logits.shape, name
        error = relative_error(got, saved.logits)
        assert error <= LOGITS_TOLERANCE, f"{name}: relative error {error:.2e}"
