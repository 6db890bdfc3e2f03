"""Augmentation drawn per image: what `training.augment` does to one training image, from a
random stream of (seed, epoch, image) alone, so that the pixels never depend on which worker
loaded the image, on how many there are, on a resume, or on the backend."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from xgraph.training.recipe import Augmentation, RandomResizedCrop

# xgraph.training.data draws the split from stream 0 and the batch order from stream 1.
AUGMENT_STREAM = 2
CROP_ATTEMPTS = 10


@dataclass(frozen=True)
class Box:
    """A crop of an image, in pixels: its left and top edges, width and height."""

    left: int
    top: int
    width: int
    height: int

    @property
    def corners(self) -> tuple[int, int, int, int]:
        """(left, top, right, bottom), as Pillow's `box` takes it."""
        return (self.left, self.top, self.left + self.width, self.top + self.height)


@dataclass(frozen=True)
class Draw:
    """What augmentation does to one image: the crop (None: the whole image) and the flip."""

    box: Box | None
    flip: bool


def image_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random stream of one image in one epoch."""
    return np.random.default_rng([seed, AUGMENT_STREAM, epoch, index])


def sample_crop(rng: np.random.Generator, width: int, height: int, crop: RandomResizedCrop) -> Box:
    """A box of `crop.scale` of the area and a log-uniform aspect ratio in `crop.ratio`, at a
    uniform position; after CROP_ATTEMPTS misses, the largest centred box of a ratio in
    range (the whole image when its own ratio is)."""
    area = width * height
    log_low, log_high = (math.log(bound) for bound in crop.ratio)
    for _ in range(CROP_ATTEMPTS):
        low, high = crop.scale
        target = area * rng.uniform(low, high)
        aspect = math.exp(rng.uniform(log_low, log_high))
        box_width = round(math.sqrt(target * aspect))
        box_height = round(math.sqrt(target / aspect))
        if 0 < box_width <= width and 0 < box_height <= height:
            left = int(rng.integers(0, width - box_width + 1))
            top = int(rng.integers(0, height - box_height + 1))
            return Box(left, top, box_width, box_height)
    own = width / height
    box_width, box_height = width, height
    if own < crop.ratio[0]:
        box_height = max(1, min(height, round(width / crop.ratio[0])))
    elif own > crop.ratio[1]:
        box_width = max(1, min(width, round(height * crop.ratio[1])))
    return Box((width - box_width) // 2, (height - box_height) // 2, box_width, box_height)


def draw(augment: Augmentation, rng: np.random.Generator, width: int, height: int) -> Draw:
    """One image's augmentation: the crop drawn first, then the coin of the flip."""
    crop = augment.random_resized_crop
    box = sample_crop(rng, width, height, crop) if crop is not None else None
    flip = bool(rng.random() < 0.5) if augment.horizontal_flip else False
    return Draw(box, flip)


def apply(source: np.ndarray, drawn: Draw, height: int, width: int) -> np.ndarray:
    """`source` (h, w, C) uint8 cropped to the drawn box and resized to (height, width) with
    the bilinear filter of the unaugmented path (Pillow's, antialiased), then flipped."""
    channels = source.shape[2]
    image = Image.fromarray(source[..., 0] if channels == 1 else source)
    corners = drawn.box.corners if drawn.box is not None else None
    if corners is not None or image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR, box=corners)
    pixels = np.asarray(image, dtype=np.uint8).reshape(height, width, channels)
    return np.ascontiguousarray(pixels[:, ::-1]) if drawn.flip else pixels
