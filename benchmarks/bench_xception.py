"""Xception inference: every xgraph artifact against keras.applications, in one run.

Run: `.venv/bin/python benchmarks/bench_xception.py [--repeats N] [--batches 8,1]`. All
artifacts hold the same weights (keras.applications.Xception's own random weights, read
from its `.weights.h5` by xgraph), run the same input, and are printed as medians, as
ratios to keras.applications' predict_on_batch measured in this same run (timings vary by
up to 20% between runs), and with their outputs' largest relative error against
keras.applications'. The anchors for the ONNX rows are the same runtimes running an ONNX
file exported from xgraph's torch build by `torch.onnx.export`. OpenVINO runs in fp32 (its
default on CPUs with bf16 is not fp32). The last row is the machine's limit: the model's
FLOPs over the sgemm rate measured here. Artifacts are timed in interleaved rounds (each
round runs every one once), so that a machine whose speed drifts slows every row alike.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np
import torch

from xgraph.api import load
from xgraph.backend import load_backend
from xgraph.passes.optimize import optimize
from xgraph.weights.formats import read_weights

SPEC = "specs/xception.yaml"
THREADS = os.cpu_count() or 1


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def interleaved_medians(
    runs: list[Callable[[], object]], repeats: int, warmup: int = 2
) -> list[float]:
    """Each run's median time, timed in rounds that run every artifact once: a machine
    whose speed drifts during the benchmark (a shared host) then slows every row alike,
    where timing one artifact after another would blame the drift on whichever ran then."""
    for run in runs:
        for _ in range(warmup):
            run()
    times: list[list[float]] = [[] for _ in runs]
    for round_number in range(repeats):
        progress(f"  round {round_number + 1} of {repeats}")
        for run, measured in zip(runs, times, strict=True):
            started = time.perf_counter()
            run()
            measured.append(time.perf_counter() - started)
    return [statistics.median(measured) for measured in times]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                flags = Path("/proc/cpuinfo").read_text()
                simd = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
                return f"{line.split(':', 1)[1].strip()} ({simd})"
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def sgemm_flops_per_second() -> float:
    """The machine's fp32 matrix-multiply rate: the best of a few 2048^3 products."""
    a, b = torch.rand(2048, 2048), torch.rand(2048, 2048)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - started)
    return 2 * 2048**3 / best


def onnx_runners(path: Path) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """The file in ONNX Runtime (all graph optimisations) and in OpenVINO (fp32)."""
    import onnxruntime
    import openvino

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    compiled = openvino.Core().compile_model(
        str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": THREADS}
    )
    output = compiled.output(0)
    return {
        "onnxruntime": lambda x: session.run(None, {name: x})[0],
        "openvino": lambda x: compiled([x])[output],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", default="8,1")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    torch.set_num_threads(THREADS)
    import keras

    folder = Path(tempfile.mkdtemp(prefix="xgraph-bench-"))
    progress("building keras.applications.Xception with random weights")
    reference = keras.applications.Xception(weights=None)
    rng = np.random.default_rng(0)
    for layer in reference.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape).astype(np.float32),
                    rng.normal(0, 0.1, beta.shape).astype(np.float32),
                    rng.normal(0, 0.1, mean.shape).astype(np.float32),
                    rng.uniform(0.5, 1.5, variance.shape).astype(np.float32),
                ]
            )
    reference.save_weights(folder / "xception.weights.h5")
    analysed = load(SPEC)
    weights = read_weights(folder / "xception.weights.h5", analysed)

    progress("building xgraph's artifacts")
    keras_backend, torch_backend = load_backend("keras"), load_backend("torch")
    onnx_backend = load_backend("onnx")
    keras_model = keras_backend.build(analysed, weights)
    torch_model = torch_backend.build(analysed, weights)
    torch_backend.save(torch_model, analysed, folder / "xgraph.pt2")
    exported = torch.export.load(folder / "xgraph.pt2").module()
    optimized = optimize(analysed, weights)
    progress(f"--optimize: {optimized.describe()}")
    optimized_model = torch_backend.build(optimized.analysed, optimized.weights)
    torch_backend.save(optimized_model, optimized.analysed, folder / "optimized.pt2")
    optimized_exported = torch.export.load(folder / "optimized.pt2").module()
    progress("compiling the optimised graph with AOTInductor (--option compile=aoti)")
    started = time.perf_counter()
    aoti_backend = load_backend("torch", {"compile": "aoti"})
    aoti_backend.save(optimized_model, optimized.analysed, folder / "aoti.pt2")
    aoti_seconds = time.perf_counter() - started
    from torch._inductor import aoti_load_package

    aoti_package = aoti_load_package(str(folder / "aoti.pt2"))
    nchw_model = torch_backend.build(analysed, weights).to(memory_format=torch.contiguous_format)
    nchw_model.channels_last = False
    onnx_backend.save(onnx_backend.build(analysed, weights), analysed, folder / "xgraph.onnx")
    onnx_backend.save(
        onnx_backend.build(optimized.analysed, optimized.weights),
        optimized.analysed,
        folder / "optimized.onnx",
    )
    progress("exporting the torch build with torch.onnx.export (the anchor)")
    torch.onnx.export(
        nchw_model,
        (torch.zeros(1, 3, 299, 299),),
        str(folder / "torch_export.onnx"),
        dynamo=False,
        input_names=["image"],
        dynamic_axes={"image": {0: "batch"}},
    )
    xgraph_onnx = onnx_runners(folder / "xgraph.onnx")
    anchor_onnx = onnx_runners(folder / "torch_export.onnx")
    optimized_onnx = onnx_runners(folder / "optimized.onnx")

    def torch_run(model: torch.nn.Module) -> Callable[[np.ndarray], np.ndarray]:
        def run(x_nchw: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return model(torch.from_numpy(x_nchw)).numpy()

        return run

    # (label, takes NCHW, run)
    artifacts: list[tuple[str, bool, Callable[[np.ndarray], np.ndarray]]] = [
        ("keras.applications.Xception, predict_on_batch", False, reference.predict_on_batch),
        ("xgraph keras build, predict_on_batch", False, keras_model.predict_on_batch),
        ("xgraph torch module (channels_last inside)", True, torch_run(torch_model)),
        ("xgraph torch module, kept NCHW", True, torch_run(nchw_model)),
        ("xgraph torch module, --optimize", True, torch_run(optimized_model)),
        ("xgraph .pt2 (exported program)", True, torch_run(exported)),
        ("xgraph .pt2, --optimize", True, torch_run(optimized_exported)),
        ("xgraph .pt2, --optimize, compile=aoti", True, torch_run(aoti_package)),
        ("xgraph .onnx in ONNX Runtime", True, xgraph_onnx["onnxruntime"]),
        ("xgraph .onnx, --optimize, in ONNX Runtime", True, optimized_onnx["onnxruntime"]),
        ("xgraph .onnx in OpenVINO (fp32)", True, xgraph_onnx["openvino"]),
        ("anchor: torch.onnx.export in ONNX Runtime", True, anchor_onnx["onnxruntime"]),
        ("anchor: torch.onnx.export in OpenVINO (fp32)", True, anchor_onnx["openvino"]),
    ]
    rate = sgemm_flops_per_second()
    print(
        f"Xception forward, 299x299x3, fp32, {THREADS} threads, median of {args.repeats}; "
        f"{cpu_model()}; torch {torch.__version__}, keras {keras.__version__}"
    )
    print(f"AOTInductor compile of the optimised Xception: {aoti_seconds:.0f} s")
    for batch in batches:
        x = np.random.default_rng(batch).random((batch, 299, 299, 3), dtype=np.float32)
        x_nchw = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        expected = np.asarray(reference.predict_on_batch(x))
        errors, timed = [], []
        for label, nchw, run in artifacts:
            progress(f"batch {batch}: {label}")
            given = x_nchw if nchw else x
            got = np.asarray(run(given))
            errors.append(float(np.abs(got - expected).max() / np.abs(expected).max()))
            timed.append(lambda run=run, given=given: run(given))
        progress(f"batch {batch}: timing every artifact, {args.repeats} interleaved rounds")
        medians = interleaved_medians(timed, args.repeats)
        rows = list(zip([label for label, _, _ in artifacts], medians, errors, strict=True))
        anchor = rows[0][1]
        limit = 2 * analysed.macs * batch / rate
        print(f"\nbatch {batch}:")
        print(f"  {'what':<48} {'s/batch':>8} {'img/s':>7} {'x keras.app':>11} {'rel. error':>10}")
        for label, seconds, error in rows:
            print(
                f"  {label:<48} {seconds:8.3f} {batch / seconds:7.1f} {seconds / anchor:11.2f}"
                f" {error:10.1e}"
            )
        print(
            f"  {'machine limit: FLOPs / sgemm rate':<48} {limit:8.3f} {batch / limit:7.1f}"
            f" {limit / anchor:11.2f}   ({rate / 1e9:.0f} GFLOP/s measured)"
        )


if __name__ == "__main__":
    main()
