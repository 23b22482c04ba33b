"""The "before" picture: every stage as plain Python loops over pixels, one element at a time.

Each pixel is read with ``image[i, j]`` and turned into a Python float (a float64), so the arithmetic is
exactly the specification's; outputs are written element by element into arrays made with ``np.empty``.
``cancel`` is checked before every row. See :mod:`inference.backends` for what each stage computes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from inference.backends.resample import axis_weights
from inference.errors import BackendError, Cancelled

Cancel = Callable[[], bool] | None


def rescale(pixels: np.ndarray, slope: float, intercept: float, *, cancel: Cancel = None) -> np.ndarray:
    pixels = _image(pixels, "rescale")
    slope, intercept = float(slope), float(intercept)
    height, width = pixels.shape
    out = np.empty((height, width), dtype=np.float32)
    for i in range(height):
        _stop_if(cancel)
        for j in range(width):
            out[i, j] = float(pixels[i, j]) * slope + intercept
    return out


def window(image: np.ndarray, center: float | None, width: float | None, invert: bool, *,
           cancel: Cancel = None) -> np.ndarray:
    image = _image(image, "window")
    if center is None and width is None:
        lo, hi = _min_max(image, cancel)
        center, width = (lo + hi + 1) / 2, hi - lo + 1
    c0, w1 = _voi(center, width)
    lower, upper = c0 - w1 / 2, c0 + w1 / 2
    out = np.empty(image.shape, dtype=np.float32)
    for i in range(image.shape[0]):
        _stop_if(cancel)
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


def equalize(image: np.ndarray, *, cancel: Cancel = None) -> np.ndarray:
    image = _image(image, "equalize")
    lo, hi = _min_max(image, cancel)
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    scale = 256.0 / (hi - lo)
    height, width = image.shape

    hist = [0] * 256
    for i in range(height):
        _stop_if(cancel)
        for j in range(width):
            hist[min(int((float(image[i, j]) - lo) * scale), 255)] += 1
    cdf, running = [], 0
    for count in hist:
        running += count
        cdf.append(running / (height * width))

    out = np.empty((height, width), dtype=np.float32)
    for i in range(height):
        _stop_if(cancel)
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
    image = _image(image, "resize")
    in_height, in_width = image.shape
    row_starts, row_weights = (table.tolist() for table in axis_weights(in_height, height))
    col_starts, col_weights = (table.tolist() for table in axis_weights(in_width, width))

    rows = np.empty((height, in_width))  # first every column is resampled to the new height ...
    for i in range(height):
        _stop_if(cancel)
        for j in range(in_width):
            total = 0.0
            for k, weight in enumerate(row_weights[i]):
                total += weight * float(image[row_starts[i] + k, j])
            rows[i, j] = total

    out = np.empty((height, width), dtype=np.float32)  # ... then every row to the new width
    for i in range(height):
        _stop_if(cancel)
        for j in range(width):
            total = 0.0
            for k, weight in enumerate(col_weights[j]):
                total += weight * float(rows[i, col_starts[j] + k])
            out[i, j] = total
    return out


def normalize(image: np.ndarray, mean: Sequence[float], std: Sequence[float], channels: int, *,
              cancel: Cancel = None) -> np.ndarray:
    image = _image(image, "normalize")
    means, stds = _per_channel(mean, std, channels)
    height, width = image.shape
    out = np.empty((1, channels, height, width), dtype=np.float32)
    for c in range(channels):
        for i in range(height):
            _stop_if(cancel)
            for j in range(width):
                out[0, c, i, j] = (float(image[i, j]) - means[c]) / stds[c]
    return out


def _stop_if(cancel: Cancel) -> None:
    if cancel is not None and cancel():
        raise Cancelled()


def _min_max(image: np.ndarray, cancel: Cancel) -> tuple[float, float]:
    lo = hi = float(image[0, 0])
    for i in range(image.shape[0]):
        _stop_if(cancel)
        for j in range(image.shape[1]):
            x = float(image[i, j])
            lo, hi = min(lo, x), max(hi, x)
    return lo, hi


# The input checks below are the same in every backend module (naive, vectorized, numba_jit).

def _image(image: np.ndarray, stage: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 2 or image.size == 0 or image.dtype.kind not in "uif":
        raise BackendError(f"{stage} needs a non-empty 2-D array of real numbers, got {image.dtype} {image.shape}")
    return image


def _voi(center: float | None, width: float | None) -> tuple[float, float]:
    """``(c - 0.5, w - 1)`` of a valid window; ``BackendError`` in words otherwise."""
    if center is None or width is None:
        raise BackendError("window needs both a center and a width, or neither (the image's own range)")
    center, width = float(center), float(width)
    if not (math.isfinite(center) and math.isfinite(width) and width >= 1):
        raise BackendError(f"window center must be finite and width at least 1, got {center} / {width}")
    return center - 0.5, width - 1.0


def _per_channel(mean: Sequence[float], std: Sequence[float], channels: int) -> tuple[list[float], list[float]]:
    """``mean`` and ``std`` as ``channels`` floats each; ``BackendError`` in words if that cannot be."""
    if not isinstance(channels, (int, np.integer)) or channels < 1:
        raise BackendError(f"normalize needs at least 1 channel, got {channels!r}")
    means, stds = [float(m) for m in mean], [float(s) for s in std]
    for name, values in (("mean", means), ("std", stds)):
        if len(values) not in (1, channels):
            raise BackendError(f"normalize {name} needs 1 or {channels} values, got {len(values)}")
    if not all(math.isfinite(v) for v in means + stds) or 0.0 in stds:
        raise BackendError(f"normalize mean and std must be finite and std non-zero, got {means} / {stds}")
    return means * (channels // len(means)), stds * (channels // len(stds))
