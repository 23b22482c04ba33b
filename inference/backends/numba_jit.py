"""Every stage as a Numba ``@njit`` kernel: the naive loops, compiled to machine code and run over rows in
parallel (``prange``).

The public stage functions are thin wrappers: they check their input, make arrays C-contiguous and
native-endian, turn scalars into floats and per-channel values into float64 arrays, then call a kernel.
Kernel argument types therefore depend only on the image dtype, so ``Backend.warm_up(dtype)`` compiles
everything a real run needs. Kernels are cached on disk (``cache=True``) and use no ``fastmath``: their
results match the other backends. ``cancel`` is accepted and ignored: each stage is short. See
:mod:`inference.backends.contract` for what each stage computes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit, prange

from radbench.inference.backends.checks import check_image, per_channel, voi
from radbench.inference.backends.contract import Cancel
from radbench.inference.backends.resample import axis_weights
from radbench.inference.backends.value_ranges import equalization_bins

COMPILES = True


def rescale(pixels: np.ndarray, slope: float, intercept: float, *, cancel: Cancel = None) -> np.ndarray:
    return _rescale(_image(pixels, "rescale"), float(slope), float(intercept))


def window(image: np.ndarray, center: float | None, width: float | None, invert: bool, *,
           cancel: Cancel = None) -> np.ndarray:
    image = _image(image, "window")
    c0, w1 = voi(center, width, lambda: _min_max(image))
    return _window(image, c0, w1, bool(invert))


def equalize(image: np.ndarray, *, cancel: Cancel = None) -> np.ndarray:
    image = _image(image, "equalize")
    return _equalize(image, *equalization_bins(*_min_max(image)))


def resize(image: np.ndarray, height: int, width: int, *, cancel: Cancel = None) -> np.ndarray:
    image = _image(image, "resize")
    rows = _resample_columns(image, *axis_weights(image.shape[0], height))
    return _resample_rows(rows, *axis_weights(image.shape[1], width))


def normalize(image: np.ndarray, mean: Sequence[float], std: Sequence[float], channels: int, *,
              cancel: Cancel = None) -> np.ndarray:
    image = _image(image, "normalize")
    means, stds = per_channel(mean, std, channels)
    return _normalize(image, np.array(means), np.array(stds))


@njit(cache=True, parallel=True)
def _rescale(pixels, slope, intercept):
    out = np.empty(pixels.shape, dtype=np.float32)
    for i in prange(pixels.shape[0]):
        for j in range(pixels.shape[1]):
            out[i, j] = np.float64(pixels[i, j]) * slope + intercept
    return out


@njit(cache=True, parallel=True)
def _min_max(image):
    lows = np.empty(image.shape[0])
    highs = np.empty(image.shape[0])
    for i in prange(image.shape[0]):
        lo = hi = np.float64(image[i, 0])
        for j in range(1, image.shape[1]):
            x = np.float64(image[i, j])
            lo = min(lo, x)
            hi = max(hi, x)
        lows[i] = lo
        highs[i] = hi
    return lows.min(), highs.max()


@njit(cache=True, parallel=True)
def _window(image, c0, w1, invert):
    lower, upper = c0 - w1 / 2, c0 + w1 / 2
    out = np.empty(image.shape, dtype=np.float32)
    for i in prange(image.shape[0]):
        for j in range(image.shape[1]):
            x = np.float64(image[i, j])
            if x <= lower:
                y = 0.0
            elif x > upper:
                y = 1.0
            else:
                y = (x - c0) / w1 + 0.5
            out[i, j] = 1.0 - y if invert else y
    return out


@njit(cache=True, parallel=True)
def _equalize(image, lo, scale):
    height, width = image.shape
    bands = min(height, 16)  # each band of rows fills its own histogram, in parallel
    hists = np.zeros((bands, 256), dtype=np.int64)
    for b in prange(bands):
        for i in range(b * height // bands, (b + 1) * height // bands):
            for j in range(width):
                hists[b, min(int((np.float64(image[i, j]) - lo) * scale), 255)] += 1
    cdf = np.cumsum(hists.sum(axis=0)) / (height * width)

    out = np.empty(image.shape, dtype=np.float32)
    for i in prange(height):
        for j in range(width):
            t = (np.float64(image[i, j]) - lo) * scale - 0.5
            if t <= 0:
                out[i, j] = cdf[0]
            elif t >= 255:
                out[i, j] = cdf[255]
            else:
                k = int(t)
                out[i, j] = cdf[k] + (t - k) * (cdf[k + 1] - cdf[k])
    return out


@njit(cache=True, parallel=True)
def _resample_columns(image, starts, weights):
    """Every column resampled to ``len(starts)`` rows, in float64."""
    out = np.zeros((starts.shape[0], image.shape[1]))
    for i in prange(starts.shape[0]):
        for k in range(weights.shape[1]):
            weight, row = weights[i, k], starts[i] + k
            for j in range(image.shape[1]):
                out[i, j] += weight * np.float64(image[row, j])
    return out


@njit(cache=True, parallel=True)
def _resample_rows(image, starts, weights):
    """Every row resampled to ``len(starts)`` columns, stored as float32."""
    out = np.empty((image.shape[0], starts.shape[0]), dtype=np.float32)
    for i in prange(image.shape[0]):
        for j in range(starts.shape[0]):
            total = 0.0
            for k in range(weights.shape[1]):
                total += weights[j, k] * image[i, starts[j] + k]
            out[i, j] = total
    return out


@njit(cache=True, parallel=True)
def _normalize(image, means, stds):
    out = np.empty((1, means.shape[0], image.shape[0], image.shape[1]), dtype=np.float32)
    for i in prange(image.shape[0]):
        for c in range(means.shape[0]):
            for j in range(image.shape[1]):
                out[0, c, i, j] = (np.float64(image[i, j]) - means[c]) / stds[c]
    return out


def all_finite(image: np.ndarray) -> bool:
    """No NaN or infinity in a float image, in one parallel pass: the largest exponent field is not all ones.

    Integer max over the bits vectorizes without ``fastmath``, unlike a float reduction: about 2.5x faster than
    NumPy's min and max on a 1955 x 1841 float32 frame (0.35 against 0.9 ms).
    """
    image = np.ascontiguousarray(image, dtype=image.dtype.newbyteorder("="))  # the bits as this machine reads them
    if image.dtype.itemsize == 8:
        return _exponent_max(image.view(np.uint64), np.uint64(0x7FF0000000000000)) != 0x7FF0000000000000
    if image.dtype.itemsize == 4:
        return _exponent_max(image.view(np.uint32), np.uint32(0x7F800000)) != 0x7F800000
    return bool(np.isfinite(image).all())  # float16: rare, and NumPy is fine


@njit(cache=True, parallel=True)
def _exponent_max(bits, mask):
    rows = np.zeros(bits.shape[0], dtype=bits.dtype)
    for i in prange(bits.shape[0]):
        highest = rows[i]
        for j in range(bits.shape[1]):
            highest = max(highest, bits[i, j] & mask)
        rows[i] = highest
    return rows.max()


def _image(image: np.ndarray, stage: str) -> np.ndarray:
    """``check_image`` (with :func:`all_finite`), then the memory layout and dtype the kernels are compiled for."""
    image = check_image(image, stage, all_finite)
    # Numba has no float16; float32 holds every float16 exactly.
    dtype = np.float32 if image.dtype == np.float16 else image.dtype.newbyteorder("=")
    return np.ascontiguousarray(image, dtype=dtype)
