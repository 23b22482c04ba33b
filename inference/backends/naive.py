"""The "before" picture: every stage as plain Python loops over pixels, one element at a time.

Each pixel is read with ``image[i, j]`` and turned into a Python float (a float64), so the arithmetic is
exactly the specification's; outputs are written element by element into arrays made with ``np.empty``.
``cancel`` is checked before every row. See :mod:`inference.backends.contract` for what each stage computes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from radbench.inference.backends.checks import check_image, output, per_channel, voi
from radbench.inference.backends.contract import Cancel, stop_if
from radbench.inference.backends.resample import axis_weights
from radbench.inference.backends.value_ranges import equalization_bins


def rescale(pixels: np.ndarray, slope: float, intercept: float, *, out: np.ndarray | None = None,
            cancel: Cancel = None) -> np.ndarray:
    pixels = check_image(pixels, "rescale")
    slope, intercept = float(slope), float(intercept)
    height, width = pixels.shape
    out = output(out, pixels.shape, "rescale")
    with np.errstate(over="ignore"):  # infinity out: the next stage refuses it
        for i in range(height):
            stop_if(cancel)
            for j in range(width):
                out[i, j] = float(pixels[i, j]) * slope + intercept
    return out


def window(image: np.ndarray, center: float | None, width: float | None, invert: bool, *,
           out: np.ndarray | None = None, cancel: Cancel = None) -> np.ndarray:
    image = check_image(image, "window")
    c0, w1 = voi(center, width, lambda: _min_max(image, cancel))
    lower, upper = c0 - w1 / 2, c0 + w1 / 2
    out = output(out, image.shape, "window")
    for i in range(image.shape[0]):
        stop_if(cancel)
        for j in range(image.shape[1]):
            x = float(image[i, j])
            if x <= lower:
                y = 0.0
            elif x > upper:
                y = 1.0
            else:
                y = (x - c0) / w1 + 0.5
            out[i, j] = 1.0 - y if invert else y
    return out


def equalize(image: np.ndarray, *, out: np.ndarray | None = None, cancel: Cancel = None) -> np.ndarray:
    image = check_image(image, "equalize")
    out = output(out, image.shape, "equalize")
    lo, scale = equalization_bins(*_min_max(image, cancel))
    height, width = image.shape

    hist = [0] * 256
    for i in range(height):
        stop_if(cancel)
        for j in range(width):
            hist[min(int((float(image[i, j]) - lo) * scale), 255)] += 1
    cdf, running = [], 0
    for count in hist:
        running += count
        cdf.append(running / (height * width))

    for i in range(height):
        stop_if(cancel)
        for j in range(width):
            t = (float(image[i, j]) - lo) * scale - 0.5
            if t <= 0:
                out[i, j] = cdf[0]
            elif t >= 255:
                out[i, j] = cdf[255]
            else:
                k = int(t)
                out[i, j] = cdf[k] + (t - k) * (cdf[k + 1] - cdf[k])
    return out


def resize(image: np.ndarray, height: int, width: int, *, cancel: Cancel = None) -> np.ndarray:
    image = check_image(image, "resize")
    in_height, in_width = image.shape
    row_starts, row_weights = (table.tolist() for table in axis_weights(in_height, height))
    col_starts, col_weights = (table.tolist() for table in axis_weights(in_width, width))

    rows = np.empty((height, in_width))  # first every column is resampled to the new height ...
    for i in range(height):
        stop_if(cancel)
        for j in range(in_width):
            total = 0.0
            for k, weight in enumerate(row_weights[i]):
                total += weight * float(image[row_starts[i] + k, j])
            rows[i, j] = total

    out = np.empty((height, width), dtype=np.float32)  # ... then every row to the new width
    for i in range(height):
        stop_if(cancel)
        for j in range(width):
            total = 0.0
            for k, weight in enumerate(col_weights[j]):
                total += weight * float(rows[i, col_starts[j] + k])
            out[i, j] = total
    return out


def normalize(image: np.ndarray, mean: Sequence[float], std: Sequence[float], channels: int, *,
              cancel: Cancel = None) -> np.ndarray:
    image = check_image(image, "normalize")
    means, stds = per_channel(mean, std, channels)
    height, width = image.shape
    out = np.empty((1, channels, height, width), dtype=np.float32)
    for c in range(channels):
        for i in range(height):
            stop_if(cancel)
            for j in range(width):
                out[0, c, i, j] = (float(image[i, j]) - means[c]) / stds[c]
    return out


def _min_max(image: np.ndarray, cancel: Cancel) -> tuple[float, float]:
    lo = hi = float(image[0, 0])
    for i in range(image.shape[0]):
        stop_if(cancel)
        for j in range(image.shape[1]):
            x = float(image[i, j])
            lo, hi = min(lo, x), max(hi, x)
    return lo, hi
