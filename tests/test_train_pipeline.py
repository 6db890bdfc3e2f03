"""The input pipeline and augmentation, framework-free: batches that are a function of the
seed alone (any number of workers, a resume, the cache on or off), Inception's crop drawn
within its ranges, and errors from a worker raised in the training thread."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xgraph.api import load, loads
from xgraph.cli.common import byte_size
from xgraph.errors import SpecError
from xgraph.training.augment import Box, apply, draw, image_rng, sample_crop
from xgraph.training.data import DataError, ImageFolder, epoch_batches, scan_image_folder
from xgraph.training.images import ImageLoader
from xgraph.training.pipeline import Pipeline
from xgraph.training.recipe import Augmentation, RandomResizedCrop, recipe_of

CROP_AND_FLIP = Augmentation(random_resized_crop=RandomResizedCrop(), horizontal_flip=True)
SHAPE = (24, 20, 3)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> ImageFolder:
    """36 JPEGs and PNGs of three sizes in 3 classes, each with its own pattern."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(7)
    for number in range(36):
        height, width = [(40, 56), (64, 48), (33, 33)][number % 3]
        ramp = np.linspace(0, 255, width)[None, :, None] * np.ones((height, 1, 3))
        pixels = (ramp * 0.7 + rng.integers(0, 70, (height, width, 3))).astype(np.uint8)
        folder = root / f"class{number % 3}"
        folder.mkdir(exist_ok=True)
        suffix = ".jpg" if number % 2 else ".png"
        Image.fromarray(pixels).save(folder / f"{number:03d}{suffix}")
    return scan_image_folder(root)


def epoch_images(loader: ImageLoader, workers: int, epoch: int, seed: int = 5) -> np.ndarray:
    plan = epoch_batches(np.arange(len(loader.folder)), 8, epoch, seed)
    with Pipeline(loader, workers) as pipeline:
        return np.stack(list(pipeline.batches(plan, epoch)))


def test_batches_are_the_same_bit_for_bit_for_any_number_of_workers(photos: ImageFolder) -> None:
    loaders = [ImageLoader(photos, SHAPE, augment=CROP_AND_FLIP, seed=5) for _ in range(3)]
    batches = [
        epoch_images(loader, workers, 1) for loader, workers in zip(loaders, (0, 1, 2), strict=True)
    ]
    assert batches[0].shape == (4, 8, *SHAPE) and batches[0].dtype == np.float32
    for other in batches[1:]:
        assert np.array_equal(other, batches[0])


def test_a_resumed_run_sees_the_epochs_batches_and_the_cache_changes_no_pixel(
    photos: ImageFolder,
) -> None:
    """A fresh loader (a resumed process, no cache) gives epoch 2 exactly as a loader that
    already went through epochs 0 and 1 with every image cached."""
    warm = ImageLoader(photos, SHAPE, augment=CROP_AND_FLIP, seed=5)
    for epoch in (0, 1):
        epoch_images(warm, 2, epoch)
    cold = ImageLoader(photos, SHAPE, cache_bytes=0, augment=CROP_AND_FLIP, seed=5)
    assert np.array_equal(epoch_images(cold, 2, 2), epoch_images(warm, 2, 2))
    assert warm._cached_bytes > 0 and cold._cached_bytes == 0


def test_augmentation_changes_with_the_epoch_and_the_seed_and_never_in_validation(
    photos: ImageFolder,
) -> None:
    loader = ImageLoader(photos, SHAPE, augment=CROP_AND_FLIP, seed=5)
    plain = ImageLoader(photos, SHAPE)
    first, second = loader.load(range(36), epoch=0), loader.load(range(36), epoch=1)
    assert not np.array_equal(first, second)
    reseeded = ImageLoader(photos, SHAPE, augment=CROP_AND_FLIP, seed=6)
    assert not np.array_equal(reseeded.load(range(36), epoch=0), first)
    # Validation (no epoch) is the plain resize, as the unaugmented loader's.
    assert np.array_equal(loader.load(range(36)), plain.load(range(36)))


def test_the_flip_alone_mirrors_about_half_the_images_and_changes_nothing_else(
    photos: ImageFolder,
) -> None:
    flips = ImageLoader(photos, SHAPE, augment=Augmentation(horizontal_flip=True), seed=1)
    plain = ImageLoader(photos, SHAPE).load(range(36))
    flipped = flips.load(range(36), epoch=3)
    mirrored = [bool(np.array_equal(a, b[:, ::-1])) for a, b in zip(flipped, plain, strict=True)]
    same = [bool(np.array_equal(a, b)) for a, b in zip(flipped, plain, strict=True)]
    assert all(m or s for m, s in zip(mirrored, same, strict=True))
    assert 8 <= sum(mirrored) <= 28, sum(mirrored)


def test_the_crop_is_drawn_within_its_area_and_ratio_ranges() -> None:
    crop = RandomResizedCrop(scale=[0.25, 0.5], ratio=[0.5, 2.0])
    for index in range(300):
        box = sample_crop(image_rng(0, 0, index), 120, 90, crop)
        assert box.left >= 0 and box.left + box.width <= 120
        assert box.top >= 0 and box.top + box.height <= 90
        area = box.width * box.height / (120 * 90)
        assert 0.22 <= area <= 0.53, box  # rounding to whole pixels
        assert 0.45 <= box.width / box.height <= 2.2, box


def test_a_crop_that_cannot_fit_falls_back_to_the_largest_centred_box_in_ratio() -> None:
    # Ratios 3 to 4 at 90% of a square never fit: the centred box of ratio 3, full width.
    crop = RandomResizedCrop(scale=[0.9, 1.0], ratio=[3.0, 4.0])
    assert sample_crop(image_rng(0, 0, 0), 60, 60, crop) == Box(0, 20, 60, 20)
    # A tall image with ratios 1 to 1: a centred square.
    crop = RandomResizedCrop(scale=[1.0, 1.0], ratio=[1.0, 1.0])
    assert sample_crop(image_rng(0, 0, 0), 30, 50, crop) == Box(0, 10, 30, 30)


def test_a_crop_is_resized_from_the_box_of_the_source() -> None:
    source = np.zeros((40, 40, 1), np.uint8)
    source[5:25, 15:35] = 200  # around the box (20, 10)-(30, 20), wider than the filter
    drawn = draw(Augmentation(random_resized_crop=RandomResizedCrop()), image_rng(0, 0, 0), 40, 40)
    assert drawn.box is not None and not drawn.flip
    inside = apply(source, type(drawn)(Box(20, 10, 10, 10), False), 5, 5)
    assert inside.shape == (5, 5, 1) and np.all(inside == 200)
    flipped = apply(np.arange(12, dtype=np.uint8).reshape(3, 4, 1), type(drawn)(None, True), 3, 4)
    assert flipped[0, :, 0].tolist() == [3, 2, 1, 0]


def test_a_worker_that_cannot_decode_raises_in_the_training_thread(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / name / "1.png")
    folder = scan_image_folder(tmp_path)
    (tmp_path / "b" / "1.png").write_bytes((tmp_path / "a" / "1.png").read_bytes()[:30])
    pipeline = Pipeline(ImageLoader(folder, (8, 8, 1)), 2)
    with pipeline, pytest.raises(DataError, match="cannot decode image"):
        list(pipeline.batches([np.array([0]), np.array([1])]))


def test_the_augment_section_is_read_merged_and_its_errors_located(tmp_path: Path) -> None:
    spec = """\
xgraph: 1
name: aug
inputs: [{name: image, shape: [8, 8, 1]}]
nodes:
  - {name: gap, op: global_avg_pool}
  - {name: logits, op: dense, units: 2, activation: softmax}
training:
  augment: {random_resized_crop: true, horizontal_flip: true}
"""
    recipe = recipe_of(loads(spec))
    assert recipe.augment == CROP_AND_FLIP and recipe.augment.enabled
    assert not recipe_of(loads(spec.split("training:")[0])).augment.enabled
    # A spec extending it changes one setting and keeps the other.
    (tmp_path / "base.yaml").write_text(spec)
    (tmp_path / "child.yaml").write_text(
        "xgraph: 1\nextends: base.yaml\nname: child\n"
        "training:\n  augment: {horizontal_flip: false}\n"
    )
    child = recipe_of(load(tmp_path / "child.yaml")).augment
    assert child.random_resized_crop == RandomResizedCrop() and not child.horizontal_flip
    bad = spec.replace("random_resized_crop: true", "random_resized_crop: {scale: [0.5, 2.0]}")
    with pytest.raises(SpecError, match="more than the whole image") as error:
        loads(bad)
    assert error.value.location is not None and error.value.location.line == 8
    with pytest.raises(SpecError, match="horizontal_fip") as error:
        loads(spec.replace("horizontal_flip", "horizontal_fip"))
    assert "horizontal_flip" in str(error.value.hint)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", 0), ("4096", 4096), ("512M", 512 * 2**20), ("2G", 2 * 2**30), ("1.5GiB", 3 * 2**29)],
)
def test_cache_sizes_read_with_binary_units(text: str, expected: int) -> None:
    assert byte_size(text) == expected


@pytest.mark.parametrize("text", ["-1", "lots", "2X", "nan", "inf"])
def test_a_cache_size_that_is_not_one_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        byte_size(text)


@pytest.mark.parametrize(("cores", "local", "expected"), [(2, None, 2), (4, "2", 2), (2, "4", 1)])
def test_the_default_workers_share_the_cores_among_the_local_processes(
    cores: int, local: str | None, expected: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xgraph.training import pipeline

    monkeypatch.setattr(pipeline, "machine_cores", lambda: cores)
    if local is None:
        monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    else:
        monkeypatch.setenv("LOCAL_WORLD_SIZE", local)
    assert pipeline.default_workers() == expected
