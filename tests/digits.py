"""A real image folder for tests without a download: scikit-learn's bundled 8x8 digits as PNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def digit_pixels() -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits as uint8 (N, 8, 8) grey (0..16 scaled to 0..255), and their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = np.round(digits.images * (255 / 16)).astype(np.uint8)
    return pixels, digits.target.astype(np.int64)


def write_digits(root: Path, per_class: int | None = None) -> Path:
    """`root/DIGIT/0001.png`..., numbered from 1 within each class in the dataset's order:
    every digit, or the first `per_class` of each class. Returns `root`."""
    pixels, labels = digit_pixels()
    for digit in range(10):
        folder = root / str(digit)
        folder.mkdir(parents=True, exist_ok=True)
        chosen = np.flatnonzero(labels == digit)[:per_class]
        for number, index in enumerate(chosen, start=1):
            Image.fromarray(pixels[index]).save(folder / f"{number:04d}.png")
    return root
