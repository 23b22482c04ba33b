"""A harder check than a random split: validation films with simulated acquisition shifts.

Each shift changes the decoded image before RadBench's pipeline (so equalization sees it, as it would see a
different scanner's film): exposure curve, blur, noise, zoom out with a black border, zoom in, rotation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from skimage import filters, transform

from radbench.inference.backends import get_backend
from radbench.inference.loading import load_scan
from radbench.inference.preprocessing import PreprocessSpec, preprocess


def _zoom(image: np.ndarray, factor: float) -> np.ndarray:
    """Scale about the centre, keeping the size: < 1 leaves a black border, > 1 crops."""
    h, w = image.shape
    matrix = transform.AffineTransform(scale=1 / factor, translation=((w - w / factor) / 2, (h - h / factor) / 2))
    return transform.warp(image, matrix, order=1, cval=0.0, preserve_range=True)


SHIFTS = {
    "gamma_0.6": lambda im, rng: 255.0 * (im / 255.0) ** 0.6,
    "gamma_1.6": lambda im, rng: 255.0 * (im / 255.0) ** 1.6,
    "blur_sigma_1.5": lambda im, rng: filters.gaussian(im, sigma=1.5, preserve_range=True),
    "noise_sigma_8": lambda im, rng: np.clip(im + rng.normal(0, 8, im.shape), 0, 255),
    "zoom_out_0.8": lambda im, rng: _zoom(im, 0.8),
    "zoom_in_1.2": lambda im, rng: _zoom(im, 1.2),
    "rotate_8deg": lambda im, rng: transform.rotate(im, 8, order=1, cval=0.0, preserve_range=True),
}


def shifted_tensors(paths: list[Path], shift: str, size: int, mean: float, std: float, seed: int) -> np.ndarray:
    """Model inputs of ``paths`` after ``shift``, built by the same pipeline function as at serving time."""
    backend, rng = get_backend("vectorized"), np.random.default_rng(seed)
    out = np.empty((len(paths), 1, size, size), np.float32)
    for i, path in enumerate(paths):
        scan = load_scan(path)
        image = SHIFTS[shift](scan.grey_frame().astype(np.float64), rng).astype(np.float32)
        spec = PreprocessSpec.for_scan(scan, size=(size, size), mean=(mean,), std=(std,), channels=1)
        out[i] = preprocess(image, spec, backend)[0]
    return out
