"""Every stage as whole-array NumPy: the same arithmetic as the naive loops, run in compiled ufuncs.

Stages work through the image in blocks of rows (:func:`_row_blocks`): each block is converted to float64,
computed on, and written into the float32 output. That keeps the float64 temporaries to a few hundred KiB
(peak memory stays near the output's size) and in cache, which measured slightly faster than converting
the whole image at once. ``cancel`` is accepted and ignored: each stage is short. See
:mod:`inference.backends` for what each stage computes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from inference.backends.resample import axis_weights
from inference.errors import BackendError

Cancel = Callable[[], bool] | None

#: Elements per block of rows (512 KiB of float64).
_BLOCK = 1 << 16


def rescale(pixels: np.ndarray, slope: float, intercept: float, *, cancel: Cancel = None) -> np.ndarray:
    pixels = _image(pixels, "rescale")
    slope, intercept = float(slope), float(intercept)
    out = np.empty(pixels.shape, dtype=np.float32)
    for rows in _row_blocks(pixels.shape):
        x = pixels[rows].astype(np.float64)
        x *= slope
        x += intercept
        out[rows] = x
    return out


def window(image: np.ndarray, center: float | None, width: float | None, invert: bool, *,
           cancel: Cancel = None) -> np.ndarray:
    image = _image(image, "window")
    if center is None and width is None:
        lo, hi = float(image.min()), float(image.max())
        center, width = (lo + hi + 1) / 2, hi - lo + 1
    c0, w1 = _voi(center, width)
    lower, upper = c0 - w1 / 2, c0 + w1 / 2
    out = np.empty(image.shape, dtype=np.float32)
    for rows in _row_blocks(image.shape):
        x = image[rows].astype(np.float64)  # compare in float64 too: float32 vs a Python float would not
        below, above = x <= lower, x > upper
        if w1 > 0:  # with width 1 every pixel is below or above
            x -= c0
            x /= w1
            x += 0.5
        x[below] = 0.0
        x[above] = 1.0
        if invert:
            np.subtract(1.0, x, out=x)
        out[rows] = x
    return out


def equalize(image: np.ndarray, *, cancel: Cancel = None) -> np.ndarray:
    image = _image(image, "equalize")
    lo, hi = float(image.min()), float(image.max())
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    scale = 256.0 / (hi - lo)

    def positions(rows: slice) -> np.ndarray:  # (x - lo) * scale, in float64
        t = image[rows].astype(np.float64)
        t -= lo
        t *= scale
        return t

    hist = np.zeros(256, dtype=np.int64)
    for rows in _row_blocks(image.shape):
        t = positions(rows)
        np.minimum(t, 255.0, out=t)  # the maximum lands at 256: it belongs to the last bin
        hist += np.bincount(t.astype(np.intp).ravel(), minlength=256)
    cdf = np.cumsum(hist) / image.size

    # cdf linearly interpolated at t = (x - lo) * scale - 0.5, held flat outside [0, 255]. A zero slope after
    # the last bin makes t = 255 land exactly on cdf[255]. (np.interp does the same but measured 6x slower.)
    slopes = np.append(np.diff(cdf), 0.0)
    out = np.empty(image.shape, dtype=np.float32)
    for rows in _row_blocks(image.shape):
        t = positions(rows)
        t -= 0.5
        np.clip(t, 0.0, 255.0, out=t)
        k = t.astype(np.intp)
        t -= k
        t *= slopes[k]
        t += cdf[k]
        out[rows] = t
    return out


def resize(image: np.ndarray, height: int, width: int, *, cancel: Cancel = None) -> np.ndarray:
    image = _image(image, "resize")
    starts, weights = axis_weights(image.shape[0], height)
    rows = np.zeros((height, image.shape[1]))  # first every column is resampled to the new height ...
    for k in range(weights.shape[1]):
        rows += weights[:, k, None] * image[starts + k]
    starts, weights = axis_weights(image.shape[1], width)
    out = np.zeros((height, width))  # ... then every row to the new width
    for k in range(weights.shape[1]):
        out += weights[:, k] * rows[:, starts + k]
    return out.astype(np.float32)


def normalize(image: np.ndarray, mean: Sequence[float], std: Sequence[float], channels: int, *,
              cancel: Cancel = None) -> np.ndarray:
    image = _image(image, "normalize")
    means, stds = _per_channel(mean, std, channels)
    out = np.empty((1, channels, *image.shape), dtype=np.float32)
    for rows in _row_blocks(image.shape):
        x = image[rows].astype(np.float64)
        for c in range(channels):
            out[0, c, rows] = (x - means[c]) / stds[c]
    return out


def _row_blocks(shape: tuple[int, int]) -> Iterator[slice]:
    step = max(1, _BLOCK // shape[1])
    return (slice(start, start + step) for start in range(0, shape[0], step))


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
