"""All 40 keras.applications constructors against their specs, each at its default input
size, in the torch, Keras and ONNX builds (`make zoo`). The tests compare them at reduced
sizes (tests/test_zoo.py, test_zoo_classic.py, test_zoo_modern.py).

For each constructor: the Keras model with its own initial weights (weights=None) and
random BatchNorm statistics is saved as `.weights.h5`; xgraph reads the file and builds the
spec in each backend; all run the same random pixels. Printed per model: nodes (= Keras
layers), parameters (xgraph = Keras), each backend's largest relative error at the logits
against Keras's, and Keras's own sensitivity: how far Keras's logits move when the input
moves by one part in 10^7. A model whose sensitivity is near the errors amplifies float
rounding as much as any difference of summation order does: its errors say so, not a bug.
Last, `import`: the spec `xgraph import` writes from the model's config, with the weights
file read for it, built in torch (its error at the logits; `same` where its graph is the
spec's, Keras's automatic names aside, else `DIFFERS`).

Run: `.venv/bin/python benchmarks/zoo.py [--only efficientnet_b0,mobilenet_v2] [--batch N]
[--size S]` (S: every model at S x S, or at its smallest size where that is larger).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.test_zoo_classic import CONSTRUCTORS as CLASSIC  # noqa: E402
from tests.test_zoo_modern import CONSTRUCTORS as MODERN  # noqa: E402
from tests.test_zoo_modern import KERAS_OPS  # noqa: E402
from tests.zoo_harness import flat_layers, structural_changes  # noqa: E402
from xgraph.api import load  # noqa: E402
from xgraph.backend import load_backend  # noqa: E402
from xgraph.importing import imported_spec  # noqa: E402
from xgraph.weights.formats import read_weights  # noqa: E402

BACKENDS = ("torch", "keras", "onnx")


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(got - want).max() / max(float(np.abs(want).max()), 1e-30))


def batch_norm_statistics(model, rng: np.random.Generator) -> None:
    """Moving statistics away from (0, 1), as a trained model has them; kernels stay Keras's
    initial ones, so activations keep a trained network's scale."""
    for layer in model.layers:
        if type(layer).__name__ != "BatchNormalization":
            continue
        shape = tuple(layer.moving_mean.shape)  # (InceptionV3's have no gamma)
        layer.moving_mean.assign(rng.normal(0.0, 0.1, shape).astype(np.float32))
        layer.moving_variance.assign(rng.uniform(0.5, 1.5, shape).astype(np.float32))


# The first five, compared in tests/test_zoo.py and tests/test_keras_reference.py.
ORIGINAL = {
    "xception": ("Xception", 299, None),
    "vgg16": ("VGG16", 224, None),
    "resnet50": ("ResNet50", 224, None),
    "inception_v3": ("InceptionV3", 299, None),
    "mobilenet": ("MobileNet", 224, None),
}
CONSTRUCTORS = {**ORIGINAL, **CLASSIC, **MODERN}


# The smallest input size of the models that take no smaller one than 32.
SMALLEST = {"inception_v3": 75, "inception_resnet_v2": 75, "xception": 71}


def run(spec: str, batch: int, folder: Path, size: int | None = None) -> dict[str, object]:
    import keras

    function, default, _ = CONSTRUCTORS[spec]
    size = default if size is None else max(size, SMALLEST.get(spec, 32))
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, function)(
        weights=None, classifier_activation=None, input_shape=(size, size, 3)
    )
    rng = np.random.default_rng(1)
    batch_norm_statistics(model, rng)
    path = folder / f"{spec}.weights.h5"
    model.save_weights(path)
    x = rng.uniform(0, 255, (batch, size, size, 3)).astype(np.float32)
    want = np.asarray(model.predict_on_batch(x))
    nudged = x * (1 + 1e-7 * rng.choice([-1.0, 1.0], x.shape)).astype(np.float32)
    sensitivity = relative_error(np.asarray(model.predict_on_batch(nudged)), want)
    layers = len(flat_layers(model, KERAS_OPS.get(spec, ())))
    keras_params = model.count_params()
    config = folder / f"{spec}.json"
    config.write_text(model.to_json())
    del model
    keras.backend.clear_session()

    sets = ["classifier_activation=none", f"input_shape=[{size},{size},3]"]
    analysed = load(ROOT / "specs" / f"{spec}.yaml", sets)
    weights = read_weights(path, analysed)
    row: dict[str, object] = {
        "spec": spec,
        "nodes": len(analysed.graph),
        "layers": layers,
        "params": analysed.total_params,
        "keras_params": keras_params,
        "sensitivity": sensitivity,
    }
    for name in BACKENDS:
        backend = load_backend(name)
        start = time.perf_counter()
        got = backend.predict(backend.build(analysed, weights), [x])[0]
        row[name] = relative_error(got, want)
        row[f"{name}_s"] = time.perf_counter() - start
    _, imported = imported_spec(config, str(folder / f"{spec}.yaml"))
    torch = load_backend("torch")
    got = torch.predict(torch.build(imported, read_weights(path, imported)), [x])[0]
    row["import"] = relative_error(got, want)
    row["import_same"] = same_graph_but_names(imported, analysed)
    return row


def same_graph_but_names(imported: object, spec: object) -> bool:
    """`xgraph diff` finds no node added, removed or changed beyond float32 rounding of
    a number (the tests' check: zoo_harness.structural_changes); renamed nodes aside."""
    return not structural_changes(imported, spec)[0]  # type: ignore[arg-type]


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated spec names")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--size", type=int, default=None, help="input size (default: Keras's)")
    args = parser.parse_args()
    specs = [s for s in args.only.split(",") if s] or list(CONSTRUCTORS)
    sizes = f"{args.size} (or a model's smallest)" if args.size else "each model's default"
    print(f"CPU: {cpu_model()}; batch {args.batch}; input size {sizes}")
    header = (
        f"{'spec':<20} {'nodes':>5} {'params':>12}  {'torch':>8} {'keras':>8} {'onnx':>8}"
        f"  {'keras sensitivity':>17}  {'import':>8}"
    )
    print(header)
    print("-" * len(header))
    failed = 0
    with tempfile.TemporaryDirectory() as folder:
        for spec in specs:
            row = run(spec, args.batch, Path(folder), args.size)
            same = row["nodes"] == row["layers"] and row["params"] == row["keras_params"]
            same = same and bool(row["import_same"])
            failed += not same
            print(
                f"{spec:<20} {row['nodes']:>5} {row['params']:>12,}  "
                + " ".join(f"{row[name]:>8.1e}" for name in BACKENDS)
                + f"  {row['sensitivity']:>17.1e}"
                + f"  {row['import']:>8.1e} {'same' if row['import_same'] else 'DIFFERS'}"
                + ("" if same else "  (nodes, parameters or the import differ from Keras)"),
                flush=True,
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
