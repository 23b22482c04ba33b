"""The per-pixel arithmetic of the Numba backend, as ``inline="always"`` functions.

The staged kernels (:mod:`.stages`) and the fused path (:mod:`.fused`) both compute through these, so the
same value takes the same float64 operations in the same order in both: their results agree bit for bit by
construction. See :mod:`inference.backends.contract` for what each stage computes.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def rescaled(x, slope, intercept):
    """The modality LUT of one raw value, stored as float32."""
    return np.float32(np.float64(x) * slope + intercept)


@njit(cache=True, inline="always")
def windowed(x, c0, w1, invert):
    """The linear VOI function of one value (``c0 = center - 0.5``, ``w1 = width - 1``), stored as float32."""
    x = np.float64(x)
    if x <= c0 - w1 / 2:
        y = 0.0
    elif x > c0 + w1 / 2:
        y = 1.0
    else:
        y = (x - c0) / w1 + 0.5
    return np.float32(1.0 - y if invert else y)


@njit(cache=True, inline="always")
def bin_index(v, lo, scale):
    """Equalize's histogram bin of ``v``, ``min(int((v - lo) * scale), 255)``, clamped to ``[0, 255]`` before the
    conversion (so that it vectorizes, and a value below ``lo`` lands in bin 0, never outside the histogram)."""
    return np.uint32(min(max((np.float64(v) - lo) * scale, 0.0), 255.0))


@njit(cache=True, inline="always")
def position(v, lo, scale):
    """Where ``v`` falls on the cdf's bin centres, ``(v - lo) * scale - 0.5``, held to ``[0, 255]``."""
    return min(max((np.float64(v) - lo) * scale - 0.5, 0.0), 255.0)


@njit(cache=True, inline="always")
def blend(base, fraction, slope):
    """One step of linear interpolation, ``base + fraction * slope``, stored as float32."""
    return np.float32(base + fraction * slope)


@njit(cache=True, inline="always")
def equalized(v, lo, scale, cdf, slopes):
    """The equalized value of ``v``: the cdf interpolated at :func:`position`; ``slopes[k] = cdf[k + 1] - cdf[k]``
    (0 after the last bin, so that the clamped ends land exactly on ``cdf[0]`` and ``cdf[255]``)."""
    t = position(v, lo, scale)
    k = np.floor(t)
    i = np.uint32(k)
    return blend(cdf[i], t - k, slopes[i])
