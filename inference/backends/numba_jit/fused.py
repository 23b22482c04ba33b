"""rescale -> window -> equalize -> resize -> normalize fused into two passes over the full-resolution image.

The result equals the five staged kernels (:mod:`.stages`) run one after another, bit for bit: every value goes
through the same float64 operations (:mod:`.scalars`) in the same order (see :mod:`inference.backends.contract` for the
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

from typing import TYPE_CHECKING

import numpy as np
from numba import njit

from radbench.inference.backends.checks import check_finite, per_channel, voi
from radbench.inference.backends.numba_jit.bands import band_rows, in_bands
from radbench.inference.backends.numba_jit.gathers import GATHERS, LANES, looked_up_lanes
from radbench.inference.backends.numba_jit.inputs import bands_of, prepared, threads_for
from radbench.inference.backends.numba_jit.scalars import bin_index, equalized, rescaled, windowed
from radbench.inference.backends.numba_jit.stages import cdf_slopes, extremes
from radbench.inference.backends.resample import axis_weights
from radbench.inference.backends.value_ranges import equalization_bins
from radbench.inference.backends.vectorized import rescale
from radbench.inference.errors import BackendError

if TYPE_CHECKING:
    from radbench.inference.preprocessing import PreprocessSpec


def fused_preprocess(pixels: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """The model input ``(1, channels, height, width)`` float32 of the 2-D ``pixels``, as the staged kernels make it.

    The fused path always equalizes: a ``spec`` without equalization is refused. Bad input raises the
    ``BackendError`` the first stage to refuse it would raise.
    """
    if not spec.equalize:
        raise BackendError("the fused path always equalizes, but this preprocessing turns equalization off")
    threads = threads_for(np.size(pixels))
    return _fused(prepared(pixels, "rescale"), spec, threads)


def _fused(pixels: np.ndarray, spec: PreprocessSpec, threads: int) -> np.ndarray:
    slope, intercept, invert = float(spec.slope), float(spec.intercept), bool(spec.invert)
    out_height, out_width = spec.size
    tabulated = pixels.dtype.kind in "ui" and pixels.dtype.itemsize <= 2
    if tabulated:
        first = int(np.iinfo(pixels.dtype).min)
        # Values as unsigned indices: value - first is the unsigned view with the sign bit flipped (0 flips for
        # unsigned dtypes). Unsigned indices spare each lookup Numba's negative-index check (30% faster).
        indices = pixels.view(np.dtype(f"u{pixels.dtype.itemsize}"))
        flip = indices.dtype.type(-first)
        tables = np.zeros((threads, 1 << (8 * pixels.dtype.itemsize)), dtype=np.uint32)
        in_bands(_value_counts, bands_of(pixels), threads, indices, flip, per_thread=tables)
        counts, *present = _merged_counts(tables)  # present: the indices of the smallest and largest value present
        raw_range = float(first + present[0]), float(first + present[1])  # floats, as from extremes()
    else:
        raw_range = extremes(pixels)
    lo, hi = _range_of_ends(rescaled, *raw_range, slope, intercept)
    if not (np.isfinite(lo) and np.isfinite(hi)):  # refused as the window stage refuses the rescaled image
        check_finite(rescale(pixels, slope, intercept), "window")
    c0, w1 = voi(spec.window_center, spec.window_width, lambda: (lo, hi))
    row_starts, row_weights = axis_weights(pixels.shape[0], out_height)
    column_starts, column_weights = axis_weights(pixels.shape[1], out_width)
    means, stds = (np.array(values) for values in per_channel(spec.mean, spec.std, spec.channels))

    if tabulated:
        windowed_values, *windowed_range = _windowed_values(counts, *present, first, slope, intercept, c0, w1,
                                                            invert)
        table = _equalization_table(counts, *present, windowed_values, *equalization_bins(*windowed_range))
        rows = np.zeros((row_starts.shape[0], pixels.shape[1]))
        in_bands(_tabulated_rows, bands_of(rows), threads, indices, flip, table, row_starts, row_weights, rows)
    else:
        predicted = _range_of_ends(windowed, lo, hi, c0, w1, invert)
        histogram, *seen = _windowed_histogram(pixels, slope, intercept, c0, w1, invert, predicted, threads)
        if tuple(seen) != predicted:  # rounding made the window non-monotonic: count again with the true range
            histogram = _windowed_histogram(pixels, slope, intercept, c0, w1, invert, tuple(seen), threads)[0]
        cdf = np.cumsum(histogram) / pixels.size
        rows = np.zeros((row_starts.shape[0], pixels.shape[1]))
        in_bands(_computed_rows, bands_of(rows), threads, pixels, slope, intercept, c0, w1, invert,
                 *equalization_bins(*seen), cdf, cdf_slopes(cdf), row_starts, row_weights, rows)
    out = np.empty((1, means.shape[0], rows.shape[0], column_starts.shape[0]), dtype=np.float32)
    in_bands(_columns_resampled_normalized, bands_of(rows), threads, rows, column_starts, column_weights, means, stds,
             out)
    return out


def _range_of_ends(function, lo: float, hi: float, *args) -> tuple[float, float]:
    """The range of a monotonic ``function(x, *args)`` over ``[lo, hi]``, from its values at the ends (NaN if any)."""
    ends = [float(function(x, *args)) for x in (lo, hi)]
    return float(np.min(ends)), float(np.max(ends))


@njit(cache=True, nogil=True)
def _value_counts(indices, flip, table, first, last, bands):
    """How many pixels of the bands hold each raw value (index ``indices ^ flip``, the value minus the dtype's
    minimum), added to ``table``, the calling thread's own (uint32: faster than int64, exact below 2**32 pixels,
    far more than any frame the loader admits)."""
    height, width = indices.shape
    for i in range(band_rows(first, bands, height), band_rows(last, bands, height)):
        row = indices[i]
        for j in range(width):
            table[row[j] ^ flip] += 1


@njit(cache=True)
def _merged_counts(tables):
    """The threads' value counts added up (int64: exact), and the first and last index above 0 (the image holds at
    least one pixel)."""
    counts = np.zeros(tables.shape[1], dtype=np.int64)
    for table in tables:
        for i in range(counts.shape[0]):
            counts[i] += table[i]
    low, high = 0, counts.shape[0] - 1
    while counts[low] == 0:
        low += 1
    while counts[high] == 0:
        high -= 1
    return counts, low, high


@njit(cache=True)
def _windowed_values(counts, low, high, first, slope, intercept, c0, w1, invert):
    """Raw value (index ``value - first``) -> windowed value for every value from index ``low`` to ``high`` (0
    outside), and the windowed min and max of the values present in the image (``counts`` above 0). No branch on
    ``counts`` in the loop, so that it vectorizes; the values computed for absent indices are never looked up."""
    values = np.zeros(counts.shape[0], dtype=np.float32)
    lo, hi = np.inf, -np.inf
    for i in range(low, high + 1):
        values[i] = windowed(rescaled(first + i, slope, intercept), c0, w1, invert)
    for i in range(low, high + 1):
        present = counts[i] > 0
        lo = min(lo, np.float64(values[i]) if present else np.inf)
        hi = max(hi, np.float64(values[i]) if present else -np.inf)
    return values, lo, hi


@njit(cache=True)
def _equalization_table(counts, low, high, values, lo, scale):
    """Raw value (index as in ``values``) -> equalized value (float32), binned by ``lo`` and ``scale``, for every
    index from ``low`` to ``high`` (0 outside; absent values add 0 to the histogram and are never looked up)."""
    histogram = np.zeros(256, dtype=np.int64)
    for i in range(low, high + 1):
        histogram[bin_index(values[i], lo, scale)] += counts[i]
    cdf = np.cumsum(histogram) / histogram.sum()
    slopes = np.append(np.diff(cdf), 0.0)
    table = np.zeros(counts.shape[0], dtype=np.float32)
    for i in range(low, high + 1):
        table[i] = equalized(values[i], lo, scale, cdf, slopes)
    return table


@njit(cache=True, nogil=True)
def _tabulated_rows(indices, flip, table, starts, weights, out, first, last, bands):
    """``table[indices ^ flip]`` resampled to ``len(starts)`` rows, added to ``out`` (zeros) in float64 (the staged
    resize's first half).

    Each input row is looked up into a row buffer (with :data:`.gathers.GATHERS`, :data:`.gathers.LANES` values at a
    time by gathers; else, and for the rest of the row, by scalar loads), then accumulated by a loop that vectorizes.
    An input row on the border of two output rows is looked up once for both (the buffer still holds it)."""
    width = indices.shape[1]
    gathered = width - width % LANES if GATHERS else 0
    values = np.empty(width, dtype=np.float32)
    held = -1  # the input row in ``values``
    rows = starts.shape[0]
    for i in range(band_rows(first, bands, rows), band_rows(last, bands, rows)):
        target = out[i]
        for k in range(weights.shape[1]):
            weight, r = weights[i, k], starts[i] + k
            if weight == 0.0:  # a padding tap: adding 0 * x would change nothing
                continue
            if r != held:
                row = indices[r]
                for start in range(0, gathered, LANES):
                    looked_up_lanes(row, flip, table, values, start)
                for j in range(gathered, width):
                    values[j] = table[row[j] ^ flip]
                held = r
            for j in range(values.shape[0]):
                target[j] += weight * np.float64(values[j])


def _windowed_histogram(pixels: np.ndarray, slope: float, intercept: float, c0: float, w1: float, invert: bool,
                        binned: tuple[float, float], threads: int) -> tuple[np.ndarray, float, float]:
    """The 256-bin histogram of the windowed image binned for the range ``binned``, and the windowed min and max,
    combined from the bands' in NumPy (exact integer sums; Numba's axis sum, min and max would each compile for
    seconds)."""
    bands = bands_of(pixels)
    histograms = np.zeros((bands, 256), dtype=np.int64)
    lows, highs = np.full(bands, np.inf), np.full(bands, -np.inf)
    in_bands(_band_histograms, bands, threads, pixels, slope, intercept, c0, w1, invert,
             *equalization_bins(*binned), histograms, lows, highs)
    return histograms.sum(axis=0), float(lows.min()), float(highs.max())


@njit(cache=True, nogil=True)
def _band_histograms(pixels, slope, intercept, c0, w1, invert, lo, scale, histograms, lows, highs, first, last,
                     bands):
    """Per band of rows: the 256-bin histogram of the windowed image binned for ``lo``/``scale``, and the windowed
    min and max."""
    height, width = pixels.shape
    for b in range(first, last):
        band_lo, band_hi = np.inf, -np.inf
        for i in range(band_rows(b, bands, height), band_rows(b + 1, bands, height)):
            for j in range(width):
                v = windowed(rescaled(pixels[i, j], slope, intercept), c0, w1, invert)
                histograms[b, bin_index(v, lo, scale)] += 1
                band_lo, band_hi = min(band_lo, np.float64(v)), max(band_hi, np.float64(v))
        lows[b], highs[b] = band_lo, band_hi


@njit(cache=True, nogil=True)
def _computed_rows(pixels, slope, intercept, c0, w1, invert, lo, scale, cdf, slopes, starts, weights, out, first,
                   last, bands):
    """Every pixel rescaled, windowed and equalized, resampled to ``len(starts)`` rows added to ``out`` (zeros) in
    float64."""
    rows = starts.shape[0]
    for i in range(band_rows(first, bands, rows), band_rows(last, bands, rows)):
        for k in range(weights.shape[1]):
            weight, row = weights[i, k], starts[i] + k
            for j in range(pixels.shape[1]):
                v = windowed(rescaled(pixels[row, j], slope, intercept), c0, w1, invert)
                out[i, j] += weight * np.float64(equalized(v, lo, scale, cdf, slopes))


@njit(cache=True, nogil=True)
def _columns_resampled_normalized(rows, starts, weights, means, stds, out, first, last, bands):
    """Each row resampled to ``len(starts)`` columns, stored as float32, then normalized into every channel of
    ``out``."""
    height = rows.shape[0]
    for i in range(band_rows(first, bands, height), band_rows(last, bands, height)):
        for j in range(starts.shape[0]):
            total = 0.0
            for k in range(weights.shape[1]):
                total += weights[j, k] * rows[i, starts[j] + k]
            resized = np.float64(np.float32(total))
            for c in range(means.shape[0]):
                out[0, c, i, j] = (resized - means[c]) / stds[c]
