"""Training data: an image folder (`DIR/CLASS/IMAGE`), its stratified split, and the epoch's
batches. Framework-free (numpy and Pillow) so both backends train on the same numbers.

An image folder is untrusted input: every refusal is a `DataError`, printed
`PATH: error: message` with the file or folder to look at, and scanning opens every image's
header so that a garbage file stops the run before the first step rather than hours into it.
"""

from __future__ import annotations

import builtins
import math
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from xgraph.errors import FileError
from xgraph.weights.checks import limited_notes

EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
# The Pillow decoders tried on a file, whatever its extension (a JPEG named .png still loads).
# Naming them keeps Pillow's other plugins (EPS runs Ghostscript) away from untrusted files.
# JPEG includes the multi-picture JPEGs (MPO) that many cameras write.
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")
# Enough for ImageNet several times over; more means the wrong folder (a home or a disk).
MAX_FILES = 10_000_000
LAYOUT_HINT = "the layout is DIR/CLASS/IMAGE: one sub-folder of images per class"

# Random streams, kept apart so that the split and the batch order never share numbers.
_SPLIT_STREAM = 0
_EPOCH_STREAM = 1


class DataError(FileError):
    """The training data refused, printed `PATH: error: message` (exit status 2)."""


@dataclass(frozen=True, eq=False)
class ImageFolder:
    """The images of a folder and their labels: `labels[i]` indexes `classes` for `paths[i]`."""

    root: Path
    classes: tuple[str, ...]
    paths: tuple[Path, ...]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)

    def class_counts(self) -> np.ndarray:
        """Images per class, in the order of `classes`."""
        return np.bincount(self.labels, minlength=len(self.classes))


def scan_image_folder(root: Path, max_files: int = MAX_FILES) -> ImageFolder:
    """The classes (sorted sub-folder names) and images (sorted, sub-folders included) of
    `root`. Hidden files and folders are skipped, and so are files of other extensions; the
    structure is checked before any image header is opened, so layout mistakes come quickly."""
    root = Path(root)
    _check_folder(root)
    walk = _Walk(max_files, root)
    class_folders = [entry for entry in walk.list(root) if entry.is_dir()]
    if not class_folders:
        images = [entry.name for entry in walk.list(root) if _is_image(entry)]
        notes = [f"{len(images)} image file(s) lie directly in it"] if images else []
        raise DataError(root, "no class sub-folders", hint=LAYOUT_HINT, notes=notes)
    classes = tuple(entry.name for entry in class_folders)
    per_class = [walk.images(Path(entry.path)) for entry in class_folders]
    empty = [
        Path(entry.path) for entry, found in zip(class_folders, per_class, strict=True) if not found
    ]
    if empty:
        raise DataError(
            empty[0],
            f"class folder '{empty[0].name}' has no images",
            hint=f"image files end in {', '.join(sorted(EXTENSIONS))}",
            notes=limited_notes([f"no images either: {path}" for path in empty[1:]]),
        )
    if len(classes) < 2:
        raise DataError(
            root,
            f"only one class ('{classes[0]}'); a classifier needs at least 2",
            hint=LAYOUT_HINT,
        )
    paths = tuple(path for images in per_class for path in images)
    _check_headers(paths)
    labels = np.repeat(np.arange(len(classes)), [len(images) for images in per_class])
    labels.setflags(write=False)
    return ImageFolder(root, classes, paths, labels)


def _check_folder(root: Path) -> None:
    try:
        status = root.stat()
    except FileNotFoundError:
        raise DataError(root, "no such folder", hint=LAYOUT_HINT) from None
    except OSError as error:
        raise DataError(root, f"cannot read folder: {error.strerror}") from None
    if not stat.S_ISDIR(status.st_mode):
        kind = "a file" if stat.S_ISREG(status.st_mode) else "not a file either"
        raise DataError(root, f"not a folder ({kind})", hint=LAYOUT_HINT)


class _Walk:
    """Lists folders, counting every entry so that a walk of the wrong tree stops early."""

    def __init__(self, max_files: int, root: Path) -> None:
        self.seen = 0
        self.max_files = max_files
        self.root = root

    def list(self, folder: Path) -> list[os.DirEntry[str]]:
        """The folder's visible entries, sorted by name for a deterministic order."""
        try:
            with os.scandir(folder) as entries:
                visible = sorted(
                    (entry for entry in entries if not entry.name.startswith(".")),
                    key=lambda entry: entry.name,
                )
        except OSError as error:
            raise DataError(folder, f"cannot read folder: {error.strerror}") from None
        self.seen += len(visible)
        if self.seen > self.max_files:
            raise DataError(
                self.root,
                f"more than {self.max_files:,} files under this folder",
                hint="is this the training data folder?",
            )
        return visible

    def images(self, folder: Path) -> builtins.list[Path]:  # `list` here is the method above
        """The image files in `folder` and its sub-folders (not through links to folders,
        which could loop), in sorted order."""
        found: list[Path] = []
        for entry in self.list(folder):
            if entry.is_dir(follow_symlinks=False):
                found.extend(self.images(Path(entry.path)))
            elif _is_image(entry):
                found.append(Path(entry.path))
        return found


def _is_image(entry: os.DirEntry[str]) -> bool:
    return os.path.splitext(entry.name)[1].lower() in EXTENSIONS and entry.is_file()


def _check_headers(paths: Sequence[Path]) -> None:
    """Opens every image's header (not its pixels) and reports all the unreadable ones."""
    unreadable = [(path, reason) for path in paths if (reason := _header_problem(path))]
    if unreadable:
        path, reason = unreadable[0]
        raise DataError(
            path,
            f"not a readable image: {reason}",
            notes=limited_notes(
                [f"also unreadable: {other}: {why}" for other, why in unreadable[1:]]
            ),
        )


def _header_problem(path: Path) -> str | None:
    try:
        with Image.open(path, formats=FORMATS):
            return None
    # Pillow's decoders raise many kinds of exception on malformed input; each is a bad file.
    except Exception as error:
        return reason_of(error)


def reason_of(error: Exception) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def split(folder: ImageFolder, validation_split: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) image indices, each sorted: `validation_split` of every class
    (rounded) held out, chosen at random from `seed` and the class's label alone, so a class
    added after the others (sorting last) leaves their split unchanged. Every class keeps at
    least one training image; a small class may have no validation image."""
    if not 0 <= validation_split < 1:
        raise ValueError(f"validation_split must be in [0, 1), not {validation_split}")
    train, validation = [], []
    for label in range(len(folder.classes)):
        members = np.flatnonzero(folder.labels == label)
        shuffled = members[_rng(seed, _SPLIT_STREAM, label).permutation(members.size)]
        held_out = min(math.floor(members.size * validation_split + 0.5), members.size - 1)
        validation.append(shuffled[:held_out])
        train.append(shuffled[held_out:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(validation))


def epoch_batches(
    indices: Sequence[int] | np.ndarray,
    batch_size: int,
    epoch: int,
    seed: int,
    drop_last: bool = True,
    shuffle: bool = True,
) -> list[np.ndarray]:
    """The epoch's batches of `indices`: shuffled by a permutation of (seed, epoch) only, so a
    run resumed at `epoch` sees the same batches. Training drops the last short batch (every
    step then splits into equal replica shares); validation keeps it (`drop_last=False`) and
    its order (`shuffle=False`). No batch at all when `drop_last` and too few indices."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    order = np.array(indices, dtype=np.int64)
    if shuffle:
        order = order[_rng(seed, _EPOCH_STREAM, epoch).permutation(order.size)]
    stop = order.size - order.size % batch_size if drop_last else order.size
    return [order[start : start + batch_size] for start in range(0, stop, batch_size)]


def _rng(seed: int, stream: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream, index])
