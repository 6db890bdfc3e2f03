"""Images decoded for a spec's input: Pillow's decoders, the resize, the scaling to [-1, 1],
and the loader that keeps decoded images in memory and applies the recipe's augmentation.
Framework-free, so both backends (and `xgraph predict`, `xgraph evaluate`) see the same
numbers."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from xgraph.training.augment import apply, draw, image_rng
from xgraph.training.data import FORMATS, DataError, ImageFolder, reason_of
from xgraph.training.recipe import Augmentation

DEFAULT_CACHE_BYTES = 2 * 1024**3

# The preprocessing, named once: the run's serving record (xgraph.training.serving) states
# these and `xgraph predict` applies them through the functions below.
RESIZE = "bilinear"
SCALE = 127.5  # pixels x in [0, 255] become x / SCALE + OFFSET, in [-1, 1]
OFFSET = -1.0
JPEG_DECODE = "at the smallest DCT scale (1/1, 1/2, 1/4, 1/8) not below the input's size"


class ImageLoader:
    """Decodes images for the spec's input `shape` (H, W, C), C 1 (grey) or 3 (RGB): bilinear
    resize to (H, W) and Keras's Xception scaling x / 127.5 - 1 to [-1, 1], after the
    augmentation when one is given and the call names an epoch. Decoded images are kept in
    memory as uint8 (a quarter of float32) up to `cache_bytes`, at the input's size, or at
    their own for the images augmented (each epoch crops them anew); beyond that an image is
    decoded again each time. Safe to call from several threads at once."""

    def __init__(
        self,
        folder: ImageFolder,
        shape: Sequence[int],
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        augment: Augmentation | None = None,
        seed: int = 0,
    ) -> None:
        if not _is_image_shape(shape):
            raise DataError(
                folder.root,
                f"the spec's input shape {list(shape)} is not (height, width, 1 or 3 channels)",
                hint="images train a model whose input is grey (C=1) or RGB (C=3)",
            )
        self.folder = folder
        self.height, self.width, self.channels = (int(size) for size in shape)
        self.cache_bytes = cache_bytes
        self.augment = augment if augment is not None and augment.enabled else None
        self.seed = seed
        self._cache: dict[tuple[int, bool], np.ndarray] = {}
        self._cached_bytes = 0
        self._lock = threading.Lock()

    def load(self, indices: Sequence[int] | np.ndarray, epoch: int | None = None) -> np.ndarray:
        """The images at `indices` as float32 (N, H, W, C) in [-1, 1]: augmented as drawn for
        `epoch` when the loader augments and an epoch is given (training), else resized."""
        images = np.empty((len(indices), self.height, self.width, self.channels), np.float32)
        self.load_into(images, indices, epoch)
        return images

    def load_into(
        self, out: np.ndarray, indices: Sequence[int] | np.ndarray, epoch: int | None = None
    ) -> None:
        """`load`, written into the rows of `out` (a worker fills its part of a batch)."""
        for row, index in enumerate(indices):
            out[row] = scale_pixels(self.pixels(int(index), epoch))

    def pixels(self, index: int, epoch: int | None = None) -> np.ndarray:
        """One image as uint8 (H, W, C), augmented for `epoch` where that applies."""
        if self.augment is None or epoch is None:
            return self._cached(index, full_size=False)
        # A crop needs the image at its own size; a flip alone, the resized one.
        source = self._cached(index, full_size=self.augment.random_resized_crop is not None)
        drawn = draw(
            self.augment, image_rng(self.seed, epoch, index), source.shape[1], source.shape[0]
        )
        return apply(source, drawn, self.height, self.width)

    def _cached(self, index: int, full_size: bool) -> np.ndarray:
        key = (index, full_size)
        found = self._cache.get(key)
        if found is not None:
            return found
        path = self.folder.paths[index]
        if full_size:
            pixels = decode_image(path, None, None, self.channels)
        else:
            pixels = decode_image(path, self.height, self.width, self.channels)
        with self._lock:
            if self._cached_bytes + pixels.nbytes <= self.cache_bytes:
                self._cache[key] = pixels
                self._cached_bytes += pixels.nbytes
        return pixels


def scale_pixels(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels as float32 in [-1, 1]: Keras's Xception scaling x / 127.5 - 1."""
    return pixels.astype(np.float32) / np.float32(SCALE) + np.float32(OFFSET)


def decode_image(path: Path, height: int | None, width: int | None, channels: int) -> np.ndarray:
    """One image as uint8 (height, width, channels): grey (1) or RGB (3), resized bilinearly
    when its size differs (height and width None: its own size); a file that does not decode
    is a DataError naming it. A JPEG at least twice the size asked for is decoded at the
    smallest of libjpeg's DCT scales (1/2, 1/4, 1/8) that still covers it, as Pillow's
    thumbnail does, then resized: a 299x299 JPEG for a 71x71 input decodes in half the time."""
    mode = "L" if channels == 1 else "RGB"
    try:
        with Image.open(path, formats=FORMATS) as image:
            if height is not None and width is not None:
                image.draft(image.mode, (width, height))  # a no-op for other formats
            converted = _converted(image, mode)
            if height is not None and width is not None and converted.size != (width, height):
                converted = converted.resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.asarray(converted, dtype=np.uint8)
    # A file can be truncated past its header, or change after the scan.
    except Exception as error:
        raise DataError(path, f"cannot decode image: {reason_of(error)}") from None
    return pixels.reshape(pixels.shape[0], pixels.shape[1], channels)


def _is_image_shape(shape: Sequence[int]) -> bool:
    sizes_ok = all(isinstance(size, int | np.integer) and size >= 1 for size in shape)
    return sizes_ok and len(shape) == 3 and shape[2] in (1, 3)


def _converted(image: Image.Image, mode: str) -> Image.Image:
    """`image` in mode L or RGB. 16-bit grey is scaled to 8 bits (Pillow's own conversion
    clips it, whitening the image), and a palette's transparency goes through RGBA (as Pillow
    asks) before it is dropped."""
    if image.mode.startswith("I;16"):
        wide = np.asarray(image, dtype=np.uint32)
        image = Image.fromarray(((wide * 255 + 32767) // 65535).astype(np.uint8))
    elif image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return image if image.mode == mode else image.convert(mode)
