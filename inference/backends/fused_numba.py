"""rescale -> window -> equalize -> resize -> normalize fused into two passes over the full-resolution image.

The result equals :mod:`inference.backends.numba_jit`'s five stages run one after another, bit for bit: every
value goes through the same float64 operations in the same order (see :mod:`inference.backends.contract` for the
specification), only without the four full-size float32 images in between.

8- and 16-bit integer images take two passes. The first counts how often each raw value occurs. The
modality LUT, the window and the equalization then depend only on the raw value, so everything else is
computed once per distinct value: the image's rescaled range (for a ``None`` window), its windowed range and
256-bin histogram, and a table from raw value to equalized value. The second pass looks each pixel up in
that table and accumulates it straight into the area-average (or bilinear) rows of the output; a small
kernel then resamples those rows along the columns and normalizes.

Other dtypes (float16/32/64, wider integers) cannot be tabulated and take three passes: the raw min/max, the
histogram of the windowed values, then the same resampling with each pixel computed on the fly. The rescaled
range follows exactly from the raw extremes (the rounded modality LUT is monotonic, rising or falling with the
slope's sign). The windowed range that bins the histogram is predicted the same way and checked in that pass
against the range actually seen, because rounding at the window's upper edge can map a pixel above 1; if they
differ, the histogram is counted again with the true range.
"""

from __future__ import annotations

import time

import numpy as np
from numba import get_num_threads, njit, prange

from radbench.inference.backends.checks import check_finite, check_image, per_channel, voi
from radbench.inference.backends.numba_jit import all_finite
from radbench.inference.backends.resample import axis_weights
from radbench.inference.backends.value_ranges import equalization_bins
from radbench.inference.backends.vectorized import rescale
from radbench.inference.errors import BackendError
from radbench.inference.preprocessing import PreprocessSpec

_warm_dtypes: set[np.dtype] = set()


def fused_preprocess(pixels: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """The model input ``(1, channels, height, width)`` float32 of the 2-D ``pixels``, as the staged kernels make it.

    The fused path always equalizes: a ``spec`` without equalization is refused. Bad input raises the
    ``BackendError`` the first stage to refuse it would raise.
    """
    if not spec.equalize:
        raise BackendError("the fused path always equalizes, but this preprocessing turns equalization off")
    pixels = _pixels(pixels)
    slope, intercept, invert = float(spec.slope), float(spec.intercept), bool(spec.invert)
    out_height, out_width = spec.size
    tabulated = pixels.dtype.kind in "ui" and pixels.dtype.itemsize <= 2
    if tabulated:
        first = int(np.iinfo(pixels.dtype).min)
        bands = min(pixels.shape[0], max(get_num_threads(), -(-pixels.size // 2**31)))  # < 2**32 pixels each
        counts = _value_counts(pixels, -first, 1 << (8 * pixels.dtype.itemsize), bands)
        present = np.flatnonzero(counts)
        raw_range = first + present[0], first + present[-1]
    else:
        raw_range = _raw_range(pixels)
    lo, hi = _range_of_ends(_rescaled, *raw_range, slope, intercept)
    if not (np.isfinite(lo) and np.isfinite(hi)):  # refused as the window stage refuses the rescaled image
        check_finite(rescale(pixels, slope, intercept), "window")
    c0, w1 = voi(spec.window_center, spec.window_width, lambda: (lo, hi))
    row_starts, row_weights = axis_weights(pixels.shape[0], out_height)
    column_starts, column_weights = axis_weights(pixels.shape[1], out_width)
    means, stds = (np.array(values) for values in per_channel(spec.mean, spec.std, spec.channels))

    if tabulated:
        windowed, *windowed_range = _windowed_values(counts, first, slope, intercept, c0, w1, invert)
        table = _equalization_table(counts, windowed, *equalization_bins(*windowed_range))
        rows = _tabulated_rows(pixels, -first, table, row_starts, row_weights)
    else:
        predicted = _range_of_ends(_windowed, lo, hi, c0, w1, invert)
        histogram, *seen = _windowed_histogram(pixels, slope, intercept, c0, w1, invert,
                                               *equalization_bins(*predicted))
        if tuple(seen) != predicted:  # rounding made the window non-monotonic: count again with the true range
            histogram = _windowed_histogram(pixels, slope, intercept, c0, w1, invert, *equalization_bins(*seen))[0]
        rows = _computed_rows(pixels, slope, intercept, c0, w1, invert, *equalization_bins(*seen), _cdf(histogram),
                              row_starts, row_weights)
    return _columns_resampled_normalized(rows, column_starts, column_weights, means, stds)


def warm_up(dtype: np.dtype) -> float:
    """Compile (or load from Numba's cache) every kernel ``dtype`` input needs; the seconds it took, 0 if warm."""
    dtype = _pixels(np.zeros((1, 1), dtype=dtype)).dtype
    if dtype in _warm_dtypes:
        return 0.0
    start = time.perf_counter_ns()
    tiny = np.arange(6, dtype=dtype).reshape(2, 3)
    for shape in ((1, 2), (4, 5)):  # shrink and enlarge
        fused_preprocess(tiny, PreprocessSpec(1.0, 0.0, None, None, False, shape, (0.5,), (0.25,), 1))
    _warm_dtypes.add(dtype)
    return (time.perf_counter_ns() - start) / 1e9


def _pixels(pixels: np.ndarray) -> np.ndarray:
    """``check_image`` as the rescale stage does it, then a read-only, C-contiguous, native-endian array.

    Read-only always, so that kernels compiled by ``warm_up`` also serve a scan's read-only frames.
    """
    pixels = check_image(pixels, "rescale", all_finite)
    dtype = np.float32 if pixels.dtype == np.float16 else pixels.dtype.newbyteorder("=")
    pixels = np.ascontiguousarray(pixels, dtype=dtype).view()
    pixels.flags.writeable = False
    return pixels


def _range_of_ends(function, lo: float, hi: float, *args) -> tuple[float, float]:
    """The range of a monotonic ``function(x, *args)`` over ``[lo, hi]``, from its values at the ends (NaN if any)."""
    ends = [float(function(x, *args)) for x in (lo, hi)]
    return float(np.min(ends)), float(np.max(ends))


@njit(cache=True, inline="always")
def _rescaled(x, slope, intercept):
    return np.float32(np.float64(x) * slope + intercept)


@njit(cache=True, inline="always")
def _windowed(r, c0, w1, invert):
    x = np.float64(r)
    if x <= c0 - w1 / 2:
        y = 0.0
    elif x > c0 + w1 / 2:
        y = 1.0
    else:
        y = (x - c0) / w1 + 0.5
    return np.float32(1.0 - y if invert else y)


@njit(cache=True, inline="always")
def _bin(v, lo, scale):
    return min(int((np.float64(v) - lo) * scale), 255)


@njit(cache=True, inline="always")
def _equalized(v, lo, scale, cdf):
    t = (np.float64(v) - lo) * scale - 0.5
    if t <= 0:
        return np.float32(cdf[0])
    if t >= 255:
        return np.float32(cdf[255])
    k = int(t)
    return np.float32(cdf[k] + (t - k) * (cdf[k + 1] - cdf[k]))


@njit(cache=True)
def _cdf(counts):
    return np.cumsum(counts) / counts.sum()


@njit(cache=True, parallel=True)
def _value_counts(pixels, offset, size, bands):
    """How many pixels hold each raw value (index ``value + offset``), counted per band of rows in parallel.

    Each band counts into a local uint32 table: faster than int64 or than indexing a 2-D array, and exact as
    long as no band holds 2**32 pixels (``fused_preprocess`` picks ``bands`` so).
    """
    height, width = pixels.shape
    band_counts = np.empty((bands, size), dtype=np.int64)
    for b in prange(bands):
        counts = np.zeros(size, dtype=np.uint32)
        for i in range(b * height // bands, (b + 1) * height // bands):
            row = pixels[i]
            for j in range(width):
                counts[row[j] + offset] += 1
        band_counts[b] = counts
    return band_counts.sum(axis=0)


@njit(cache=True)
def _windowed_values(counts, first, slope, intercept, c0, w1, invert):
    """Raw value (index ``value - first``) -> windowed value for the values present in the image (``counts``;
    0 for the others), and the windowed min and max."""
    size = counts.shape[0]
    windowed = np.zeros(size, dtype=np.float32)
    lo, hi = np.inf, -np.inf
    for i in range(size):
        if counts[i]:
            windowed[i] = _windowed(_rescaled(first + i, slope, intercept), c0, w1, invert)
            lo, hi = min(lo, np.float64(windowed[i])), max(hi, np.float64(windowed[i]))
    return windowed, lo, hi


@njit(cache=True)
def _equalization_table(counts, windowed, lo, scale):
    """Raw value (index as in ``windowed``) -> equalized value (float32, widened to float64), binned by ``lo`` and
    ``scale``; 0 for values absent from the image."""
    size = counts.shape[0]
    histogram = np.zeros(256, dtype=np.int64)
    for i in range(size):
        if counts[i]:
            histogram[_bin(windowed[i], lo, scale)] += counts[i]
    cdf = _cdf(histogram)
    table = np.zeros(size)
    for i in range(size):
        if counts[i]:
            table[i] = _equalized(windowed[i], lo, scale, cdf)
    return table


@njit(cache=True, parallel=True)
def _tabulated_rows(pixels, offset, table, starts, weights):
    """``table[pixels + offset]`` resampled to ``len(starts)`` rows, in float64 (the staged resize's first half)."""
    out = np.zeros((starts.shape[0], pixels.shape[1]))
    for i in prange(starts.shape[0]):
        for k in range(weights.shape[1]):
            weight, row = weights[i, k], starts[i] + k
            for j in range(pixels.shape[1]):
                out[i, j] += weight * np.float64(table[pixels[row, j] + offset])
    return out


@njit(cache=True, parallel=True)
def _raw_range(pixels):
    height = pixels.shape[0]
    lows = np.empty(height)
    highs = np.empty(height)
    for i in prange(height):
        lo = hi = np.float64(pixels[i, 0])
        for j in range(1, pixels.shape[1]):
            x = np.float64(pixels[i, j])
            lo, hi = min(lo, x), max(hi, x)
        lows[i], highs[i] = lo, hi
    return lows.min(), highs.max()


@njit(cache=True, parallel=True)
def _windowed_histogram(pixels, slope, intercept, c0, w1, invert, lo, scale):
    """The 256-bin histogram of the windowed image binned for ``lo``/``scale``, and the windowed min and max."""
    height, width = pixels.shape
    bands = min(height, 16)
    histograms = np.zeros((bands, 256), dtype=np.int64)
    lows, highs = np.full(bands, np.inf), np.full(bands, -np.inf)
    for b in prange(bands):
        band_lo, band_hi = np.inf, -np.inf
        for i in range(b * height // bands, (b + 1) * height // bands):
            for j in range(width):
                v = _windowed(_rescaled(pixels[i, j], slope, intercept), c0, w1, invert)
                histograms[b, _bin(v, lo, scale)] += 1
                band_lo, band_hi = min(band_lo, np.float64(v)), max(band_hi, np.float64(v))
        lows[b], highs[b] = band_lo, band_hi
    return histograms.sum(axis=0), lows.min(), highs.max()


@njit(cache=True, parallel=True)
def _computed_rows(pixels, slope, intercept, c0, w1, invert, lo, scale, cdf, starts, weights):
    """Every pixel rescaled, windowed and equalized, resampled to ``len(starts)`` rows in float64."""
    out = np.zeros((starts.shape[0], pixels.shape[1]))
    for i in prange(starts.shape[0]):
        for k in range(weights.shape[1]):
            weight, row = weights[i, k], starts[i] + k
            for j in range(pixels.shape[1]):
                v = _windowed(_rescaled(pixels[row, j], slope, intercept), c0, w1, invert)
                out[i, j] += weight * np.float64(_equalized(v, lo, scale, cdf))
    return out


@njit(cache=True, parallel=True)
def _columns_resampled_normalized(rows, starts, weights, means, stds):
    """Each row resampled to ``len(starts)`` columns, stored as float32, then normalized into every channel."""
    out = np.empty((1, means.shape[0], rows.shape[0], starts.shape[0]), dtype=np.float32)
    for i in prange(rows.shape[0]):
        for j in range(starts.shape[0]):
            total = 0.0
            for k in range(weights.shape[1]):
                total += weights[j, k] * rows[i, starts[j] + k]
            resized = np.float64(np.float32(total))
            for c in range(means.shape[0]):
                out[0, c, i, j] = (resized - means[c]) / stds[c]
    return out
