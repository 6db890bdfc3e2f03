"""Xception forward time and construction time: xgraph's builds against keras.applications.

Run: `.venv/bin/python benchmarks/bench_xception.py [--repeats N] [--batch B]`. Everything is
measured in this one run and printed as medians and as ratios to keras.applications.Xception's
predict_on_batch, because timings vary by up to 20% between runs on this machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np
import torch

from xgraph.api import load
from xgraph.backend import load_backend
from xgraph.init import initial_weights
from xgraph.passes.fold_batch_norm import fold_batch_norm

SPEC = "specs/xception.yaml"


def median_seconds(run: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def timed(make: Callable[[], object]) -> tuple[object, float]:
    started = time.perf_counter()
    made = make()
    return made, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    import keras

    x_nhwc = np.random.default_rng(0).random((args.batch, 299, 299, 3), dtype=np.float32)
    x_nchw = torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2)))

    reference, reference_build = timed(lambda: keras.applications.Xception(weights=None))
    keras_backend, torch_backend = load_backend("keras"), load_backend("torch")

    def build_with(backend):
        analysed = load(SPEC)
        return backend.build(analysed, initial_weights(analysed, seed=0))

    keras_model, keras_build = timed(lambda: build_with(keras_backend))
    torch_model, torch_build = timed(lambda: build_with(torch_backend))
    torch_model.eval()
    exported = torch_backend.export(torch_model, load(SPEC)).module()
    analysed = load(SPEC)
    folded_graph, folded_weights = fold_batch_norm(analysed, initial_weights(analysed, seed=0))
    folded_model = torch_backend.build(folded_graph, folded_weights)
    nchw_model = build_with(torch_backend).to(memory_format=torch.contiguous_format).eval()
    nchw_model.channels_last = False

    def torch_forward(model, x):
        def run():
            with torch.inference_mode():
                return model(x)

        return run

    runs = [
        (
            "keras.applications.Xception, predict_on_batch",
            lambda: reference.predict_on_batch(x_nhwc),
        ),
        ("xgraph keras build, predict_on_batch", lambda: keras_model.predict_on_batch(x_nhwc)),
        ("xgraph torch build (default: channels_last inside)", torch_forward(torch_model, x_nchw)),
        ("xgraph torch build, --fold-batch-norm", torch_forward(folded_model, x_nchw)),
        (
            "xgraph torch build, kept NCHW (contiguous) throughout",
            torch_forward(nchw_model, x_nchw),
        ),
        ("xgraph torch build, exported .pt2 program", torch_forward(exported, x_nchw)),
    ]
    rows = [(what, median_seconds(run, args.repeats)) for what, run in runs]

    anchor = rows[0][1]
    print(
        f"Forward, batch {args.batch}, 299x299x3, fp32, {torch.get_num_threads()} threads, "
        f"median of {args.repeats}:"
    )
    print(f"  {'what':<52} {'s/batch':>8} {'img/s':>7} {'x keras.applications':>21}")
    for what, seconds in rows:
        print(f"  {what:<52} {seconds:8.3f} {args.batch / seconds:7.1f} {seconds / anchor:21.2f}")
    print("Spec to ready model (seconds; ratio to constructing keras.applications.Xception):")
    for what, seconds in (
        ("keras.applications.Xception(weights=None)", reference_build),
        ("xgraph spec -> keras model", keras_build),
        ("xgraph spec -> torch model", torch_build),
    ):
        print(f"  {what:<52} {seconds:8.3f} {seconds / reference_build:8.2f}")


if __name__ == "__main__":
    main()
