"""The training data: an image folder's classes and labels, its stratified split, the loader's
pixels and the epoch's batches; every refusal a `DataError` printed `PATH: error: ...`."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.digits import digit_pixels, write_digits
from xgraph.errors import SpecError
from xgraph.training.data import (
    LAYOUT_HINT,
    DataError,
    ImageFolder,
    epoch_batches,
    scan_image_folder,
    split,
)
from xgraph.training.images import ImageLoader


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> ImageFolder:
    return scan_image_folder(write_digits(tmp_path_factory.mktemp("digits")))


def save(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def scaled(pixels: object) -> np.ndarray:
    """Pixels as keras.applications.xception.preprocess_input makes them (float32 throughout)."""
    return np.asarray(pixels, np.float32) / np.float32(127.5) - np.float32(1)


def grey(value: int, size: int = 4) -> np.ndarray:
    return np.full((size, size), value, np.uint8)


def two_classes(root: Path) -> Path:
    save(root / "a" / "1.png", grey(0))
    save(root / "b" / "1.png", grey(255))
    return root


def fake_folder(counts: list[int]) -> ImageFolder:
    """A folder's index without files: the split needs only the labels."""
    labels = np.repeat(np.arange(len(counts)), counts)
    paths = tuple(Path(f"{label}/{row}.png") for row, label in enumerate(labels))
    return ImageFolder(Path("data"), tuple(map(str, range(len(counts)))), paths, labels)


def first_line(error: pytest.ExceptionInfo[DataError]) -> str:
    return str(error.value).splitlines()[0]


# The layout and its labels.


def test_all_digits_scan_to_ten_classes_with_sklearns_labels(digits: ImageFolder) -> None:
    pixels, labels = digit_pixels()
    assert digits.classes == tuple(str(digit) for digit in range(10))
    assert len(digits) == 1797
    assert digits.class_counts().tolist() == np.bincount(labels).tolist()
    # Within a class, files follow the dataset's order: the loader gives the same pixels back.
    first_sevens = np.flatnonzero(labels == 7)[:3]
    sevens = np.flatnonzero(digits.labels == 7)[:3]
    assert [path.name for path in (digits.paths[i] for i in sevens)] == [
        "0001.png",
        "0002.png",
        "0003.png",
    ]
    loaded = ImageLoader(digits, (8, 8, 1)).load(sevens)
    expected = scaled(pixels[first_sevens][..., None])
    np.testing.assert_array_equal(loaded, expected)


def test_classes_are_sorted_folders_and_files_are_sorted_images_skipping_hidden_ones(
    tmp_path: Path,
) -> None:
    write_digits(tmp_path, per_class=2)
    save(tmp_path / "3" / "nested" / "0000.png", grey(9))  # a sub-folder of a class counts
    save(tmp_path / "3" / "UPPER.PNG", grey(9))  # extensions in any case
    save(tmp_path / "3" / ".hidden.png", grey(9))
    save(tmp_path / ".cache" / "x.png", grey(9))  # a hidden folder is no class
    (tmp_path / "3" / "notes.txt").write_text("not an image")
    (tmp_path / "README.md").write_text("a file beside the classes")

    folder = scan_image_folder(tmp_path)

    assert folder.classes == tuple("0123456789")
    assert folder.labels.tolist() == [
        0,
        0,
        1,
        1,
        2,
        2,
        3,
        3,
        3,
        3,
        4,
        4,
        5,
        5,
        6,
        6,
        7,
        7,
        8,
        8,
        9,
        9,
    ]
    threes = [path.relative_to(tmp_path).as_posix() for path in folder.paths[6:10]]
    assert threes == ["3/0001.png", "3/0002.png", "3/UPPER.PNG", "3/nested/0000.png"]
    assert scan_image_folder(tmp_path).paths == folder.paths


# The split.


@pytest.mark.parametrize("share", [0.0, 0.1, 0.25, 0.5, 0.9])
def test_the_split_is_stratified_disjoint_complete_and_keeps_a_training_image(
    share: float,
) -> None:
    folder = fake_folder([1, 2, 3, 10, 41])
    train, validation = split(folder, share, seed=3)

    assert np.intersect1d(train, validation).size == 0
    assert np.union1d(train, validation).tolist() == list(range(len(folder)))
    for label, count in enumerate(folder.class_counts()):
        held_out = int(np.sum(folder.labels[validation] == label))
        assert held_out == min(int(np.floor(count * share + 0.5)), count - 1)
        assert np.sum(folder.labels[train] == label) >= 1


def test_the_split_depends_on_the_seed_alone_and_each_class_on_itself() -> None:
    folder = fake_folder([20, 30])
    first = split(folder, 0.3, seed=7)
    again = split(folder, 0.3, seed=7)
    other = split(folder, 0.3, seed=8)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[1], other[1])
    # A third class leaves the first two classes' choice as it was.
    bigger = split(fake_folder([20, 30, 5]), 0.3, seed=7)
    assert bigger[1][bigger[1] < 50].tolist() == first[1].tolist()


def test_a_validation_split_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="validation_split"):
        split(fake_folder([3, 3]), 1.0, seed=0)


# The loader.


def test_loaded_images_are_float32_in_minus_one_to_one_at_the_spec_shape(
    digits: ImageFolder,
) -> None:
    batch = ImageLoader(digits, (10, 12, 3)).load(np.arange(0, 1797, 97))
    assert batch.shape == (19, 10, 12, 3)
    assert batch.dtype == np.float32
    assert batch.min() >= -1 and batch.max() <= 1
    assert batch.min() == -1  # the digits' background is black


def test_the_same_size_keeps_every_pixel_and_scales_it_as_keras_does(tmp_path: Path) -> None:
    pixels = np.arange(0, 256, dtype=np.uint8).reshape(16, 16)
    save(tmp_path / "a" / "ramp.png", pixels)
    save(tmp_path / "b" / "x.png", grey(0))
    loaded = ImageLoader(scan_image_folder(tmp_path), (16, 16, 1)).load([0])
    np.testing.assert_array_equal(loaded, scaled(pixels)[None, ..., None])
    assert loaded[0, 0, 0, 0] == -1 and loaded[0, -1, -1, 0] == 1


def test_a_resize_is_bilinear_to_height_by_width(tmp_path: Path) -> None:
    # A left-to-right ramp, resized to a shape that is not square: the ramp must run along
    # the width (10 columns), each row alike, as Pillow's bilinear filter makes it.
    ramp = np.tile(np.linspace(0, 255, 20).round().astype(np.uint8), (20, 1))
    save(tmp_path / "a" / "ramp.png", ramp)
    save(tmp_path / "b" / "x.png", grey(0))
    loaded = ImageLoader(scan_image_folder(tmp_path), (6, 10, 1)).load([0])[0, ..., 0]

    assert loaded.shape == (6, 10)
    assert np.all(loaded == loaded[0])
    assert np.all(np.diff(loaded[0]) > 0)
    bilinear = Image.fromarray(ramp).resize((10, 6), Image.Resampling.BILINEAR)
    np.testing.assert_array_equal(loaded, scaled(bilinear))
    nearest = Image.fromarray(ramp).resize((10, 6), Image.Resampling.NEAREST)
    assert not np.array_equal(loaded, scaled(nearest))


def test_grey_becomes_rgb_and_rgb_becomes_grey(tmp_path: Path) -> None:
    save(tmp_path / "a" / "grey.png", grey(51))
    save(tmp_path / "b" / "red.png", np.full((4, 4, 3), (255, 0, 0), np.uint8))
    folder = scan_image_folder(tmp_path)

    rgb = ImageLoader(folder, (4, 4, 3)).load([0, 1])
    np.testing.assert_array_equal(rgb[0], np.full((4, 4, 3), scaled(51)))
    np.testing.assert_array_equal(rgb[1, ..., 0], np.ones((4, 4), np.float32))
    np.testing.assert_array_equal(rgb[1, ..., 1:], -np.ones((4, 4, 2), np.float32))
    grey_red = ImageLoader(folder, (4, 4, 1)).load([1])
    assert np.all(grey_red == scaled(76))  # ITU-R 601-2 luma: 255 * 0.299


def test_sixteen_bit_grey_is_scaled_to_eight_bits_not_clipped(tmp_path: Path) -> None:
    wide = np.array([[0, 257 * 128, 65535, 1000]], np.uint16)
    save(tmp_path / "a" / "wide.png", wide)
    save(tmp_path / "b" / "x.png", grey(0))
    loaded = ImageLoader(scan_image_folder(tmp_path), (1, 4, 1)).load([0])
    np.testing.assert_array_equal(loaded[0, 0, :, 0], scaled([0, 128, 255, 4]))


def test_the_cache_keeps_decoded_images_up_to_its_budget(tmp_path: Path) -> None:
    two_classes(tmp_path)
    folder = scan_image_folder(tmp_path)
    one_image = 4 * 4 * 3
    cached = ImageLoader(folder, (4, 4, 3), cache_bytes=one_image)
    uncached = ImageLoader(folder, (4, 4, 3), cache_bytes=0)
    before = cached.load([0, 1])
    np.testing.assert_array_equal(uncached.load([0, 1]), before)
    for path in folder.paths:
        path.unlink()
    # Only the first image fitted the budget: it still loads, the other is decoded again.
    np.testing.assert_array_equal(cached.load([0]), before[:1])
    for loader in (cached, uncached):
        with pytest.raises(DataError) as error:
            loader.load([1])
        assert first_line(error).startswith(f"{folder.paths[1]}: error: cannot decode image: ")


def test_a_shape_images_cannot_fill_is_refused(tmp_path: Path) -> None:
    folder = scan_image_folder(two_classes(tmp_path))
    for shape in [(4, 4, 4), (4, 4), (0, 4, 3)]:
        with pytest.raises(DataError) as error:
            ImageLoader(folder, shape)
        assert first_line(error).startswith(f"{tmp_path}: error: the spec's input shape ")


# The epoch's batches.


def test_batches_depend_on_seed_and_epoch_only() -> None:
    indices = np.arange(100, 150)
    first = epoch_batches(indices, 8, epoch=3, seed=1)
    again = epoch_batches(indices, 8, 3, 1)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    for epoch, seed in [(4, 1), (3, 2)]:
        other = np.concatenate(epoch_batches(indices, 8, epoch, seed))
        assert not np.array_equal(np.concatenate(first), other)
    assert epoch_batches(list(indices), 8, 3, 1)[0].tolist() == first[0].tolist()


def test_training_drops_the_short_batch_and_validation_keeps_it_in_order() -> None:
    indices = np.arange(100, 150)
    training = epoch_batches(indices, 8, epoch=0, seed=0)
    assert [batch.size for batch in training] == [8] * 6
    seen = np.concatenate(training)
    assert np.unique(seen).size == 48 and np.isin(seen, indices).all()
    assert not np.array_equal(seen, indices[:48])  # shuffled

    validation = epoch_batches(indices, 8, epoch=0, seed=0, drop_last=False, shuffle=False)
    assert [batch.size for batch in validation] == [8] * 6 + [2]
    assert np.concatenate(validation).tolist() == indices.tolist()
    kept = epoch_batches(indices, 8, epoch=0, seed=0, drop_last=False)
    assert sorted(np.concatenate(kept).tolist()) == indices.tolist()
    assert epoch_batches(indices[:5], 8, epoch=0, seed=0) == []


# Every refusal names its path.


def test_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError) as error:
        scan_image_folder(tmp_path / "nowhere")
    assert str(error.value) == f"{tmp_path}/nowhere: error: no such folder\n  hint: {LAYOUT_HINT}"
    assert isinstance(error.value, SpecError)


def test_a_file_instead_of_a_folder(tmp_path: Path) -> None:
    file = save(tmp_path / "image.png", grey(3))
    with pytest.raises(DataError) as error:
        scan_image_folder(file)
    assert first_line(error) == f"{file}: error: not a folder (a file)"


def test_an_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError) as error:
        scan_image_folder(tmp_path)
    assert str(error.value) == f"{tmp_path}: error: no class sub-folders\n  hint: {LAYOUT_HINT}"


def test_images_without_class_folders(tmp_path: Path) -> None:
    save(tmp_path / "one.png", grey(1))
    with pytest.raises(DataError) as error:
        scan_image_folder(tmp_path)
    assert str(error.value).endswith("  note: 1 image file(s) lie directly in it")


def test_a_class_folder_without_images(tmp_path: Path) -> None:
    two_classes(tmp_path)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "labels.txt").write_text("no images here")
    (tmp_path / "d").mkdir()
    with pytest.raises(DataError) as error:
        scan_image_folder(tmp_path)
    lines = str(error.value).splitlines()
    assert lines[0] == f"{tmp_path}/c: error: class folder 'c' has no images"
    assert lines[2] == f"  note: no images either: {tmp_path}/d"


def test_a_single_class(tmp_path: Path) -> None:
    save(tmp_path / "only" / "1.png", grey(1))
    with pytest.raises(DataError) as error:
        scan_image_folder(tmp_path)
    assert first_line(error) == (
        f"{tmp_path}: error: only one class ('only'); a classifier needs at least 2"
    )


def test_too_many_files(tmp_path: Path) -> None:
    write_digits(tmp_path, per_class=1)
    assert len(scan_image_folder(tmp_path, max_files=20)) == 10
    with pytest.raises(DataError) as error:
        scan_image_folder(tmp_path, max_files=19)
    assert first_line(error) == f"{tmp_path}: error: more than 19 files under this folder"


def test_garbage_named_png_is_refused_at_scan_naming_every_bad_file(tmp_path: Path) -> None:
    two_classes(tmp_path)
    garbage = tmp_path / "a" / "2.png"
    garbage.write_bytes(b"this is not a PNG")
    (tmp_path / "b" / "empty.jpg").write_bytes(b"")
    with pytest.raises(DataError) as error:
        scan_image_folder(tmp_path)
    lines = str(error.value).splitlines()
    reason = f"cannot identify image file {str(garbage)!r}"  # Pillow's words
    assert lines[0] == f"{garbage}: error: not a readable image: {reason}"
    assert lines[1].startswith(f"  note: also unreadable: {tmp_path}/b/empty.jpg: cannot identify")


def test_a_truncated_png_is_refused_when_it_is_loaded(tmp_path: Path) -> None:
    two_classes(tmp_path)
    noise = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    whole = save(tmp_path / "a" / "2.png", noise).read_bytes()
    truncated = tmp_path / "a" / "2.png"
    truncated.write_bytes(whole[: len(whole) // 2])
    folder = scan_image_folder(tmp_path)  # its header is whole
    loader = ImageLoader(folder, (32, 32, 3))
    assert loader.load([0, 2]).shape == (2, 32, 32, 3)
    with pytest.raises(DataError) as error:
        loader.load([1])
    assert first_line(error) == f"{truncated}: error: cannot decode image: image file is truncated"


def test_a_control_character_in_a_name_is_escaped(tmp_path: Path) -> None:
    with pytest.raises(DataError) as error:
        scan_image_folder(tmp_path / "bad\x1b[2Jname")
    assert first_line(error) == f"{tmp_path}/bad\\x1b[2Jname: error: no such folder"


# Permissions: root reads a chmod 000 folder anyway, so as root the scan that must fail runs
# with the effective user `nobody` (the OS then refuses it for real), after root's own scan
# shows what root gets.

NOBODY = 65534


@contextlib.contextmanager
def world_readable_folder() -> Iterator[Path]:
    """A folder `nobody` can reach (pytest's tmp_path is private to its user)."""
    folder = Path(tempfile.mkdtemp(prefix="xgraph-data-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        shutil.rmtree(folder)


@contextlib.contextmanager
def as_nobody() -> Iterator[None]:
    os.setegid(NOBODY)
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


@pytest.mark.parametrize(
    ("locked", "message"),
    [
        (".", "cannot read folder: Permission denied"),
        ("b", "cannot read folder: Permission denied"),
        ("b/1.png", "not a readable image: Permission denied"),
    ],
)
def test_an_unreadable_folder_or_image(locked: str, message: str) -> None:
    with world_readable_folder() as root:
        two_classes(root / "data")
        path = root / "data" / locked
        scan_image_folder(root / "data")  # also imports every Pillow plugin while root can
        path.chmod(0)
        if os.geteuid() == 0:
            assert len(scan_image_folder(root / "data")) == 2  # what root gets
            with as_nobody(), pytest.raises(DataError) as error:
                scan_image_folder(root / "data")
        else:
            with pytest.raises(DataError) as error:
                scan_image_folder(root / "data")
    assert first_line(error) == f"{path}: error: {message}"
