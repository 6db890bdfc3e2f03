"""`xgraph predict`: classify images with an exported model (.pt2, .keras, .onnx) or a
training run's folder, from the class names and preprocessing recorded in the model alone
(xgraph.training.serving); no spec needed. Each format runs in its own framework."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xgraph.cli.common import add_command, positive_int
from xgraph.errors import FileError

BATCH = 32  # images run at once
if TYPE_CHECKING:  # numpy is imported by the command, not at the CLI's start-up
    import numpy as np

    Run = Callable[[np.ndarray], np.ndarray]  # float32 NHWC images -> scores


def add_predict(commands: argparse._SubParsersAction) -> None:
    predict = add_command(
        commands,
        "predict",
        "classify images with an exported model or a training run",
        """
        MODEL is a .pt2 (run with torch.export.load), .keras (keras.saving.load_model) or
        .onnx file (ONNX Runtime) that 'xgraph train' exported, or the run's folder (its
        exported model). The class names, the input size and the preprocessing (bilinear
        resize, x / 127.5 - 1) come from the record inside the model (docs/training.md,
        'What a run records'). Prints each image's top K classes with their probabilities
        (softmax applied when the model gives logits).
        """,
        """
        xgraph predict run/ photo.jpg
        xgraph predict run/xception_tiny.onnx a.png b.png --top 3 --json
        """,
    )
    predict.add_argument("model", metavar="MODEL_OR_RUN", help="a .pt2/.keras/.onnx or run folder")
    predict.add_argument("images", metavar="IMAGE", nargs="+", help="image files to classify")
    predict.add_argument(
        "--top", type=positive_int, default=5, metavar="K", help="classes shown per image (5)"
    )
    predict.add_argument("--json", action="store_true", help="print JSON instead of text")
    predict.set_defaults(handler=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from xgraph.training.images import decode_image, scale_pixels
    from xgraph.training.serving import read_serving

    model_path = model_of(Path(args.model))
    serving = read_serving(model_path)
    height, width, channels = serving.input_shape
    paths = [Path(image) for image in args.images]
    pixels = np.stack([decode_image(path, height, width, channels) for path in paths])
    run = _runner(model_path)
    scores = np.concatenate(
        [run(scale_pixels(pixels[start : start + BATCH])) for start in range(0, len(paths), BATCH)]
    )
    if scores.ndim != 2 or scores.shape[1] != len(serving.classes):
        raise FileError(
            model_path,
            f"the model gives scores of shape {scores.shape[1:]}, but its record names "
            f"{len(serving.classes)} classes",
        )
    probabilities = _softmax(scores) if serving.logits else scores
    top = min(args.top, len(serving.classes))
    predictions: list[dict[str, Any]] = [
        {
            "image": str(path),
            "top": [
                {
                    "class": serving.classes[index],
                    "index": int(index),
                    "probability": float(row[index]),
                }
                for index in np.argsort(-row, kind="stable")[:top]
            ],
        }
        for path, row in zip(paths, probabilities, strict=True)
    ]
    if args.json:
        print(json.dumps({"model": str(model_path), "predictions": predictions}, indent=2))
        return 0
    for prediction in predictions:
        print(prediction["image"])
        for entry in prediction["top"]:
            print(f"  {entry['probability']:.4f}  {entry['class']}")
    return 0


def model_of(path: Path) -> Path:
    """The model file of MODEL_OR_RUN: itself, or a run folder's exported model (the
    backend's own, named in the newest checkpoint's state.json)."""
    if not path.is_dir():
        return path
    from xgraph.training.checkpoint import latest_checkpoint
    from xgraph.training.serving import BACKEND_OF_SUFFIX

    checkpoint = latest_checkpoint(path)
    state = checkpoint / "state.json" if checkpoint else None
    if state is None or not state.is_file():
        raise FileError(
            path,
            "a folder, but not a training run (no 'latest' checkpoint)",
            hint="give the exported .pt2, .keras or .onnx file, or the --out of 'xgraph train'",
        )
    try:
        record = json.loads(state.read_text())
        name, backend = str(record["spec"]), str(record["backend"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise FileError(state, f"not a readable checkpoint state: {error}") from None
    # the backend's own export first, then the ONNX copy
    suffixes = sorted(BACKEND_OF_SUFFIX, key=lambda suffix: BACKEND_OF_SUFFIX[suffix] != backend)
    candidates = [path / f"{name}{suffix}" for suffix in suffixes]
    found = next((candidate for candidate in candidates if candidate.is_file()), None)
    if found is None:
        raise FileError(
            path,
            f"the run exported no model yet (no {name}.pt2, .keras or .onnx)",
            hint="a run exports its model when its last epoch ends",
        )
    return found


def _runner(path: Path) -> Run:
    import numpy as np

    """The model loaded by the backend that saved it (`load`), run by its `predict`, which
    takes and returns channels-last numpy whatever the format's own layout."""
    from xgraph.backend import load_backend
    from xgraph.training.serving import BACKEND_OF_SUFFIX

    backend = load_backend(BACKEND_OF_SUFFIX[path.suffix])
    model = backend.load(path)
    return lambda images: np.asarray(backend.predict(model, [images])[0])


def _softmax(scores: np.ndarray) -> np.ndarray:
    import numpy as np

    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
