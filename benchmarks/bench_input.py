"""Input pipeline: `xgraph train`'s throughput against each framework's own input pipeline.

Run: `.venv/bin/python benchmarks/bench_input.py [--images 20000] [--data-dir DIR] [--epochs 2]
[--rows ROW,...] [--quick]`. It writes (or reuses) a folder of 299x299 RGB JPEGs in 10 classes,
then trains examples/specs/xception_tiny.yaml (71x71 input, batch 32, Adam 0.002, a constant
rate, no weight decay, so every row does the same arithmetic) from the same initial weights on
the folder's 80% training share, and prints the images/s of the LAST epoch of each row (the
first holds tracing and warm-up): keras model.fit on tf.data, a plain torch loop on a
DataLoader(num_workers=2), and xgraph train in each backend with its image cache off, each
xgraph row as a ratio to its framework's anchor (acceptance: >= 0.9). Then xgraph train with
the data in memory (its cache on) over the trainer's own train_step on one pre-made batch, as a
ratio of seconds per step, the fastest of 3 cached epochs against the fastest of 3 bare runs
of as many steps (acceptance: <= 1.05). Notes follow the table: one image's decode and
resize in Pillow and in tf.io, and the load average if something else ran (rows run minutes
apart, so a busy machine skews the ratios). `--quick` (2,000 images) is a smoke test.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import multiprocessing
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np
import torch
from PIL import Image

from xgraph.api import load
from xgraph.backend import load_backend
from xgraph.ir.analysis import AnalysedGraph
from xgraph.training.recipe import Constant, recipe_of
from xgraph.training.trainer import training_graph
from xgraph.weights.initial import Weights, initial_weights

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "examples/specs/xception_tiny.yaml"
CLASSES, SIDE, INPUT, BATCH, RATE, SEED = 10, 299, 71, 32, 0.002, 0
MARKER = ".complete"  # hidden: the loaders skip it
# The in-memory rows: the first epoch fills the cache, the fastest of the others is compared
# with the fastest of as many runs of the bare step (a shared host's noise is one-sided).
MEMORY_EPOCHS = 4
# Run order: the DataLoader forks its workers before TensorFlow starts its threads.
ROWS = ("torch-loop", "xgraph-torch", "memory-torch", "keras-fit", "xgraph-keras", "memory-keras")


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine() -> str:
    """The CPU and its ISA hints (AVX-512 and AMX change oneDNN's kernels), and the versions."""
    cpuinfo = Path("/proc/cpuinfo")
    info = cpuinfo.read_text() if cpuinfo.is_file() else ""
    found = re.search(r"^model name\s*:\s*(.*)$", info, re.MULTILINE)
    model = found.group(1) if found else "unknown CPU"
    flags = set(info.split())
    isa = [flag for flag in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if flag in flags]
    return (
        f"{model} ({os.cpu_count()} cores; {', '.join(isa) or 'no avx2'}); "
        f"torch {torch.__version__}, tensorflow {tensorflow_version()}"
    )


def tensorflow_version() -> str:
    """From its package's metadata: importing TensorFlow starts threads, best not before the
    DataLoader forks."""
    for name in ("tensorflow", "tensorflow-cpu"):
        with contextlib.suppress(PackageNotFoundError):
            return version(name)
    return "not installed"


@cache
def _grid() -> tuple[np.ndarray, np.ndarray]:
    axis = np.linspace(0.0, 1.0, SIDE, dtype=np.float32)
    xx, yy = np.meshgrid(axis, axis)
    return xx, yy


def write_image(job: tuple[Path, int, int]) -> None:
    """A seeded image a model can learn but a JPEG cannot shrink to nothing: a gradient
    between two random colours, stripes whose angle and frequency tell the class, and noise."""
    path, label, index = job
    rng = np.random.default_rng([SEED, label, index])
    xx, yy = _grid()
    a, phase = rng.uniform(0, 2 * math.pi, 2)
    ramp = xx * math.cos(a) + yy * math.sin(a)
    ramp = (ramp - ramp.min()) / (ramp.max() - ramp.min())
    start, end = rng.uniform(0, 255, (2, 3)).astype(np.float32)
    theta = math.pi * label / CLASSES
    wave = np.sin(2 * math.pi * (4 + label) * (xx * math.cos(theta) + yy * math.sin(theta)) + phase)
    pixels = start + (end - start) * ramp[..., None] + 40 * wave[..., None]
    pixels += 12 * rng.standard_normal((SIDE, SIDE, 3), dtype=np.float32)
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)


def ensure_images(root: Path, count: int) -> int:
    """`count` JPEGs (rounded down to whole classes) in root/CLASS/, written unless a complete
    earlier run left them; returns how many there are."""
    per_class = count // CLASSES
    marker = root / MARKER
    if marker.is_file() and marker.read_text().strip() == str(per_class * CLASSES):
        progress(f"reusing {per_class * CLASSES:,} images in {root}")
        return per_class * CLASSES
    if marker.is_file():  # rewriting fewer would leave the rest in the classes' folders
        sys.exit(f"{root} holds {marker.read_text().strip()} images: give another --data-dir")
    jobs = []
    for label in range(CLASSES):
        (root / f"class{label}").mkdir(parents=True, exist_ok=True)
        jobs += [(root / f"class{label}" / f"{i:06d}.jpg", label, i) for i in range(per_class)]
    progress(f"writing {len(jobs):,} JPEGs of {SIDE}x{SIDE} into {root}")
    with multiprocessing.get_context("fork").Pool(2) as pool:
        for done, _ in enumerate(pool.imap_unordered(write_image, jobs, chunksize=64), 1):
            if done % 2000 == 0:
                progress(f"  {done:,} written")
    marker.write_text(f"{len(jobs)}\n")
    return len(jobs)


@dataclasses.dataclass(frozen=True)
class Setup:
    """What every row shares: the spec (its recipe pinned), its training graph (logits), the
    initial weights and the image folder."""

    analysed: AnalysedGraph
    logits: AnalysedGraph
    weights: Weights
    data: Path


def make_setup(data: Path, epochs: int) -> Setup:
    analysed = load(SPEC)
    pinned = {"epochs": epochs, "schedule": Constant(name="constant"), "weight_decay": 0.0}
    analysed = analysed.with_section("training", recipe_of(analysed).model_copy(update=pinned))
    recipe = recipe_of(analysed)
    assert (recipe.batch_size, recipe.optimizer.learning_rate) == (BATCH, RATE), recipe
    weights = initial_weights(analysed, seed=SEED)
    return Setup(analysed, training_graph(analysed).analysed, weights, data)


def keras_fit(setup: Setup, epochs: int) -> float:
    """model.fit on image_dataset_from_directory: tf.data decodes and resizes in parallel."""
    import keras
    import tensorflow as tf

    dataset = keras.utils.image_dataset_from_directory(
        setup.data, label_mode="int", seed=SEED, validation_split=0.2, subset="training",
        image_size=(INPUT, INPUT), interpolation="bilinear", batch_size=BATCH, shuffle=True,
    )  # fmt: skip
    images = len(dataset.file_paths)
    scaled = dataset.map(lambda x, y: (x / 127.5 - 1, y), num_parallel_calls=tf.data.AUTOTUNE)
    model = load_backend("keras").build(setup.logits, setup.weights)
    model.compile(
        optimizer=keras.optimizers.Adam(RATE),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    seconds: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            seconds.append(time.perf_counter() - self.started)

    # shuffle=False: the dataset shuffles itself each epoch (fit's own flag only warns here)
    fitted = scaled.prefetch(tf.data.AUTOTUNE)
    model.fit(fitted, epochs=epochs, callbacks=[Clock()], shuffle=False, verbose=0)
    return images / seconds[-1]


def training_files(root: Path) -> list[tuple[Path, int]]:
    """Each class's sorted files less a seeded 20% (the split xgraph and Keras make differ in
    which files, not in how many)."""
    files = []
    for label, folder in enumerate(sorted(p for p in root.iterdir() if p.is_dir())):
        paths = sorted(folder.glob("*.jpg"))
        rng = np.random.default_rng([SEED, label])
        kept = rng.permutation(len(paths))[round(0.2 * len(paths)) :]
        files += [(paths[i], label) for i in sorted(kept)]
    return files


class Folder(torch.utils.data.Dataset):
    """Decodes with Pillow in the DataLoader's workers, as torchvision's ImageFolder does."""

    def __init__(self, files: list[tuple[Path, int]]) -> None:
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.files[index]
        with Image.open(path) as image:
            rgb = image.convert("RGB").resize((INPUT, INPUT), Image.Resampling.BILINEAR)
        pixels = np.asarray(rgb, dtype=np.float32) / 127.5 - 1
        return torch.from_numpy(pixels.transpose(2, 0, 1).copy()), label


def torch_loop(setup: Setup, epochs: int) -> float:
    """The plain loop: forward, cross-entropy, backward, Adam; the last epoch timed."""
    loader = torch.utils.data.DataLoader(
        Folder(training_files(setup.data)), batch_size=BATCH, shuffle=True, num_workers=2,
        drop_last=True, persistent_workers=True,
    )  # fmt: skip
    model = load_backend("torch").build(setup.logits, setup.weights).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=RATE, eps=1e-7)
    rate = 0.0
    for _ in range(epochs):
        started, images = time.perf_counter(), 0
        for x, y in loader:
            loss = torch.nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            images += len(y)
        rate = images / (time.perf_counter() - started)
    return rate


def xgraph_records(setup: Setup, backend: str, cache_off: bool) -> list[dict[str, Any]]:
    """`xgraph train`'s per-epoch records, by the Python API, with the loader's default
    workers (one per core), the decoded-image cache off or at its default (2 GiB)."""
    from xgraph.training.loop import RunConfig, train

    options = {"cache_bytes": 0} if cache_off else {}
    with tempfile.TemporaryDirectory(prefix="xgraph-bench-input-run-") as out:
        config = RunConfig(setup.data, Path(out), backend, export=False, **options)
        return train(setup.analysed, config).records


def bare_step(setup: Setup, backend: str, steps: int, warmup: int = 5) -> float:
    """Seconds per trainer.train_step on one pre-made batch: the floor for xgraph's loop. The
    batch is real images of every class: random noise with random labels drives torch's
    weights towards denormal floats, which its CPU kernels do not flush, and slows it."""
    from xgraph.training.data import scan_image_folder
    from xgraph.training.images import ImageLoader
    from xgraph.training.replicas import Replicas
    from xgraph.training.trainer import load_trainer

    recipe = recipe_of(setup.analysed)
    trainer = load_trainer(backend)(setup.analysed, setup.weights, recipe, Replicas())
    folder = scan_image_folder(setup.data)
    chosen = np.linspace(0, len(folder) - 1, BATCH).round().astype(np.int64)
    images = ImageLoader(folder, (INPUT, INPUT, 3)).load(chosen)
    labels = folder.labels[chosen].astype(np.int64)
    for step in range(warmup):
        trainer.train_step(images, labels, RATE, step)
    started = time.perf_counter()
    for step in range(warmup, warmup + steps):
        trainer.train_step(images, labels, RATE, step)
    return (time.perf_counter() - started) / steps


def decode_times(root: Path, count: int = 200) -> str:
    """One core's decode + resize per image: Pillow (what the torch row and xgraph do), Pillow
    with JPEG draft (DCT downscaling), and tf.io (what tf.data runs)."""
    import tensorflow as tf

    paths = sorted((root / "class0").glob("*.jpg"))[:count]

    def pillow(path: Path, draft: bool = False) -> None:
        with Image.open(path) as image:
            if draft:
                image.draft("RGB", (INPUT, INPUT))
            image.convert("RGB").resize((INPUT, INPUT), Image.Resampling.BILINEAR).tobytes()

    def tf_io(path: Path) -> None:
        tf.image.resize(tf.io.decode_jpeg(tf.io.read_file(str(path)), 3), (INPUT, INPUT))

    def each(run: Callable[[Path], None]) -> float:
        run(paths[0])
        started = time.perf_counter()
        for path in paths:
            run(path)
        return (time.perf_counter() - started) / len(paths) * 1000

    return (
        f"decode+resize, one image at a time: Pillow {each(pillow):.2f} ms, "
        f"Pillow draft {each(lambda p: pillow(p, True)):.2f} ms, "
        f"tf.io {each(tf_io):.2f} ms"
    )


# (row, label, the row its ratio is to, acceptance), as printed.
TABLE = (
    ("keras-fit", "keras model.fit + tf.data", None, ""),
    ("torch-loop", "torch loop + DataLoader(num_workers=2)", None, ""),
    ("xgraph-torch", "xgraph train (torch), cache off", "torch-loop", ">= 0.9"),
    ("xgraph-keras", "xgraph train (keras), cache off", "keras-fit", ">= 0.9"),
    ("memory-torch", "xgraph train, data in memory (torch)", "bare-torch", "<= 1.05"),
    ("bare-torch", "  bare trainer.train_step (torch)", None, ""),
    ("memory-keras", "xgraph train, data in memory (keras)", "bare-keras", "<= 1.05"),
    ("bare-keras", "  bare trainer.train_step (keras)", None, ""),
)


def print_table(results: dict[str, float], notes: list[str]) -> None:
    """Every row's images/s and ms a step; in-memory rows' ratio is of times (bare over it)."""
    print(f"{'row':<44} {'images/s':>9} {'ms/step':>8}  ratio (acceptance)")
    for row, label, anchor, acceptance in TABLE:
        if row in results:
            rate, ratio = results[row], ""
            if anchor in results:
                value = rate / results[anchor]
                ratio = f"{1 / value if row.startswith('memory') else value:.3f} ({acceptance})"
            print(f"{label:<44} {rate:>9,.0f} {BATCH / rate * 1000:>8.1f}  {ratio}")
    for note in notes:
        print(f"note: {note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--data-dir", type=Path, help="default: TMP/xgraph-bench-input-IMAGES")
    parser.add_argument("--epochs", type=int, default=2, help="the last one is timed")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"any of {','.join(ROWS)}")
    parser.add_argument("--quick", action="store_true", help="2,000 images: a smoke test")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first holds the warm-up")
    count = 2_000 if args.quick else args.images
    data = args.data_dir or Path(tempfile.gettempdir()) / f"xgraph-bench-input-{count}"
    rows = [row for row in ROWS if row in args.rows.split(",")]
    if unknown := set(args.rows.split(",")) - set(ROWS):
        parser.error(f"--rows: no row {', '.join(sorted(unknown))}")
    print(machine())
    notes = []
    if (load_average := os.getloadavg()[0]) > 0.5:  # the rows run minutes apart: load skews
        notes.append(f"the 1-minute load average was {load_average:.1f} at the start")
    count = ensure_images(data, count)
    setup = make_setup(data, args.epochs)
    results: dict[str, float] = {}
    for row in rows:
        progress(f"{row}: training {args.epochs} epochs on {count:,} images' training share")
        kind, _, backend = row.partition("-")
        if row == "torch-loop":
            results[row] = torch_loop(setup, args.epochs)
        elif row == "keras-fit":
            results[row] = keras_fit(setup, args.epochs)
        elif kind == "xgraph":
            results[row] = xgraph_records(setup, backend, cache_off=True)[-1]["images_per_second"]
        else:  # epoch 1 fills the cache; the fastest later epoch against the fastest chunk
            memory = make_setup(data, MEMORY_EPOCHS)
            records = xgraph_records(memory, backend, cache_off=False)
            steps = records[1]["step"] - records[0]["step"]
            results[row] = max(BATCH * steps / record["seconds"] for record in records[1:])
            progress(f"bare-{backend}: {MEMORY_EPOCHS - 1} x {steps} steps on one batch")
            chunks = [bare_step(memory, backend, steps) for _ in range(MEMORY_EPOCHS - 1)]
            results[f"bare-{backend}"] = BATCH / min(chunks)
    notes.append(decode_times(data))
    print_table(results, notes)


if __name__ == "__main__":
    main()
