"""Every stage as Numba ``@njit`` kernels over bands of rows, run in parallel by :mod:`.bands`, written so that
LLVM vectorizes the inner loops: clamps as ``min``/``max``, no data-dependent branches, contiguous rows, per-pixel
arithmetic from :mod:`.scalars`.

The public stage functions are thin wrappers: :func:`.inputs.prepared` gives every kernel a read-only,
C-contiguous, native-endian input, ``out`` is a checked float32 buffer (possibly the input's own memory), and
scalars are floats, so kernel types depend only on the image dtype and ``warm_up`` compiles everything a run
needs. No ``fastmath``: the results match the other backends. ``cancel`` is accepted and ignored: each stage is
short. See :mod:`inference.backends.contract` for what each stage computes.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from numba import njit

from radbench.inference.backends import vectorized
from radbench.inference.backends.checks import check_finite, output, per_channel, voi
from radbench.inference.backends.contract import Cancel
from radbench.inference.backends.numba_jit.bands import band_rows, in_bands
from radbench.inference.backends.numba_jit.gathers import GATHERS, LANES, equalized_lanes
from radbench.inference.backends.numba_jit.inputs import all_finite, bands_of, prepared, threads_for
from radbench.inference.backends.numba_jit.scalars import bin_index, blend, position, rescaled, windowed
from radbench.inference.backends.resample import axis_weights
from radbench.inference.backends.value_ranges import equalization_bins
from radbench.inference.errors import BackendError

#: Pixels handled per step of equalize's split loops: small enough that the step's buffers stay in L1.
_STEP = 512
#: From this many outputs per run of equal starts on (a heatmap: 115), :func:`_resample_rows` computes a run at a time.
_LONG_RUN = 8


def rescale(pixels: np.ndarray, slope: float, intercept: float, *, out: np.ndarray | None = None,
            cancel: Cancel = None) -> np.ndarray:
    pixels = prepared(pixels, "rescale")
    out = output(out, pixels.shape, "rescale")
    in_bands(_rescale, bands_of(pixels), threads_for(pixels.size), pixels, float(slope), float(intercept), out)
    return out


def window(image: np.ndarray, center: float | None, width: float | None, invert: bool, *,
           out: np.ndarray | None = None, cancel: Cancel = None) -> np.ndarray:
    """The input's extremes serve three ends: the NaN/infinity check, the image's own range (when no window is
    given), and the output's range, noted for the equalize stage that follows (:func:`_noted_range`). With a window
    given, the window's own pass takes them (:func:`_window`), so a refused image may have had part of ``out``
    written (the contract's one exception); with none given, a pass of their own before it."""
    threads = threads_for(np.size(image))
    image = prepared(image, "window", finite=False)
    out = output(out, image.shape, "window")
    own_range = center is None and width is None
    value_range = extremes(image, "window") if own_range else None
    try:
        c0, w1 = voi(center, width, lambda: value_range)
    except BackendError:
        check_finite(image, "window", all_finite)  # a NaN or infinity is refused first, as by the other backends
        raise
    signed, unsigned = _bit_views(image)
    bands = bands_of(image)
    taken = 0 if own_range else bands  # bands whose extremes the window's pass takes
    signed_ranges, unsigned_ranges = np.empty((taken, 2), signed.dtype), np.empty((taken, 2), unsigned.dtype)
    in_bands(_window, bands, threads, image, signed, unsigned, c0, w1, bool(invert), out, signed_ranges,
             unsigned_ranges, *_finite_limits(image.dtype))
    if not own_range:
        value_range = _range_of_bands(image.dtype, signed_ranges, unsigned_ranges)
        if not (np.isfinite(value_range[0]) and np.isfinite(value_range[1])):
            # Raises, counting: every NaN and infinity is still in ``image`` (a band stops before writing the step
            # that holds one), and what was written over it in place is the window of finite values: finite.
            check_finite(image, "window", lambda _: False)
    ends = vectorized.window(np.array([value_range]), center, width, invert)  # the same numbers, no compile
    _window_outputs.noted = (out.ctypes.data, out.shape, float(ends.min()), float(ends.max()))
    return out


def _finite_limits(dtype: np.dtype) -> tuple[np.generic, np.generic]:
    """``(signed, unsigned)``: the bits of a finite ``dtype`` value read as signed lie below the first and read as
    unsigned below the second (:func:`_float_range`: +inf and -inf, with NaN beyond them); integers: no limits."""
    if dtype.kind != "f":
        return np.inf, np.inf
    infinity = np.array([np.inf, -np.inf], dtype)
    return infinity[:1].view(f"i{dtype.itemsize}")[0], infinity[1:].view(f"u{dtype.itemsize}")[0]


def equalize(image: np.ndarray, *, out: np.ndarray | None = None, cancel: Cancel = None) -> np.ndarray:
    """One pass fewer when ``image`` is the window stage's output: its noted range bins the histogram, and the
    histogram's pass checks it against the range it sees (and the image for NaN and infinity); on a mismatch the
    histogram is counted again with the range seen. The result never depends on the note."""
    threads = threads_for(np.size(image))
    noted = _noted_range(image)
    image = prepared(image, "equalize", finite=False)
    out = output(out, image.shape, "equalize")
    value_range = noted or extremes(image, "equalize")
    counts, seen = _histogram_of(image, value_range, threads)
    if noted and seen != noted:
        if not all(np.isfinite(seen)):
            check_finite(image, "equalize", lambda _: False)  # raises, counting the NaN and infinite pixels
        value_range = seen
        counts = _histogram_of(image, value_range, threads)[0]
    lo, scale = equalization_bins(*value_range)
    cdf = np.cumsum(counts) / image.size
    in_bands(_equalize, bands_of(image), threads, image, lo, scale, cdf + 1j * cdf_slopes(cdf), out)
    return out


_window_outputs = threading.local()  # .noted: (address, shape, min, max) of the calling thread's last window output


def _noted_range(image: object) -> tuple[float, float] | None:
    """The window stage's noted output range if ``image`` is that output (same memory and shape), else ``None``.

    A guess, checked by the histogram's pass, never trusted: the array may have changed since, and the noted range is
    the window of the input's extremes, which rounding at the window's edges can make differ from the output's."""
    noted = getattr(_window_outputs, "noted", None)
    if (noted is None or not isinstance(image, np.ndarray) or image.dtype != np.float32
            or not image.flags.c_contiguous or (image.ctypes.data, image.shape) != noted[:2]):
        return None
    return noted[2], noted[3]


def _histogram_of(image: np.ndarray, value_range: tuple[float, float], threads: int
                  ) -> tuple[np.ndarray, tuple[float, float]]:
    """Equalize's 256-bin histogram of ``image`` binned for ``value_range`` (exact integer sums of the bands' in
    NumPy), and the image's min and max as seen in the same pass (±inf or NaN if it holds any)."""
    signed, unsigned = _bit_views(image)
    bands = bands_of(image)
    counts = np.zeros((bands, 256), dtype=np.int64)
    signed_ranges, unsigned_ranges = np.zeros((bands, 2), signed.dtype), np.zeros((bands, 2), unsigned.dtype)
    in_bands(_histogram, bands, threads, image, signed, unsigned, *equalization_bins(*value_range), counts,
             signed_ranges, unsigned_ranges)
    return counts.sum(axis=0), _range_of_bands(image.dtype, signed_ranges, unsigned_ranges)


def resize(image: np.ndarray, height: int, width: int, *, cancel: Cancel = None) -> np.ndarray:
    """The NaN/infinity check rides on the passes (:func:`_check_through`): no pass of its own."""
    threads = threads_for(max(np.size(image), _pixels(height, width)))  # the larger side decides: a heatmap enlarges
    image = prepared(image, "resize", finite=False)
    row_starts, row_weights = axis_weights(image.shape[0], height)
    rows = np.empty((row_starts.shape[0], image.shape[1]))
    in_bands(_resample_columns, bands_of(rows), threads, image, row_starts, row_weights, rows)
    threads = threads_for(max(rows.size, _pixels(height, width)))
    column_starts, tap_weights, run_ends = _by_tap(image.shape[1], width)
    out = np.empty((rows.shape[0], column_starts.shape[0]), dtype=np.float32)
    in_bands(_resample_rows, bands_of(out), threads, rows, column_starts, tap_weights, run_ends, out)
    _check_through(out, image, (row_starts, row_weights.shape[1]), (column_starts, tap_weights.shape[0]))
    return out


@lru_cache(maxsize=16)
def _by_tap(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`.resample.axis_weights` for :func:`_resample_rows`: unsigned starts (no negative-index check per
    lookup), the weights tap-major (``[tap, output]``), and where each run of outputs with the same start ends when
    those runs are long (at least :data:`_LONG_RUN` outputs on average: a large enlargement), else none; read-only,
    kept per size."""
    starts, weights = axis_weights(n_in, n_out)
    ends = np.flatnonzero(np.diff(starts)) + 1
    ends = np.append(ends, n_out) if n_out >= _LONG_RUN * (ends.size + 1) else ends[:0]
    starts, weights, ends = starts.astype(np.uintp), np.ascontiguousarray(weights.T), ends.astype(np.intp)
    starts.flags.writeable = weights.flags.writeable = ends.flags.writeable = False
    return starts, weights, ends


def normalize(image: np.ndarray, mean: Sequence[float], std: Sequence[float], channels: int, *,
              cancel: Cancel = None) -> np.ndarray:
    threads = threads_for(np.size(image))
    image = prepared(image, "normalize")
    means, stds = per_channel(mean, std, channels)
    out = np.empty((1, len(means), *image.shape), dtype=np.float32)
    in_bands(_normalize, bands_of(image), threads, image, np.array(means), np.array(stds), out)
    return out


def _check_through(out: np.ndarray, image: np.ndarray, *axes: tuple[np.ndarray, int]) -> None:
    """Refuse a float ``image`` holding NaN or infinity, as :func:`.inputs.prepared` would, from ``out``, its
    resampling by ``axes`` (``(starts, taps)`` of the rows, then of the columns): every pixel whose row and column
    some tap reads reaches ``out`` multiplied by finite weights (``0 * inf`` is NaN too), and NaN and infinity
    survive any sum, so ``out`` is finite if those pixels are. Rows and columns no tap reads (none, for today's
    weights) are checked directly. A non-finite ``out`` from finite pixels (float32 overflow) is let through, as the
    other backends let it through."""
    if image.dtype.kind != "f":
        return
    unread = []
    for axis, (starts, taps) in enumerate(axes):
        read = np.zeros(image.shape[axis], dtype=bool)
        read[(starts.astype(np.intp)[:, None] + np.arange(taps)).ravel()] = True
        unread.append(~read)
    if not (all_finite(out) and all_finite(image[unread[0]]) and all_finite(image[:, unread[1]])):
        check_finite(image, "resize", all_finite)


def _pixels(height: object, width: object) -> int:
    """``height * width`` for the thread choice; 0 for sizes resize will refuse."""
    return height * width if isinstance(height, (int, np.integer)) and isinstance(width, (int, np.integer)) else 0


def cdf_slopes(cdf: np.ndarray) -> np.ndarray:
    """``cdf[k + 1] - cdf[k]`` per bin, 0 after the last (see :func:`.scalars.equalized`)."""
    return np.append(np.diff(cdf), 0.0)


def extremes(image: np.ndarray, stage: str | None = None) -> tuple[float, float]:
    """The min and max of an image, in one pass that vectorizes without ``fastmath``; with ``stage``, a float image
    holding NaN or infinity is refused as :func:`inference.backends.checks.check_finite` refuses it.

    Float min/max reductions do not vectorize (NaN rules); for float images the bit patterns are reduced as integers
    instead (:func:`_float_range`). In that order infinities and NaNs lie at the ends, so the same extremes tell
    whether any is present.
    """
    if image.dtype.kind != "f":
        lo, hi = _integer_range(image)
        return float(lo), float(hi)
    signed, unsigned = _bit_views(image)
    bands = bands_of(image)
    signed_ranges, unsigned_ranges = np.empty((bands, 2), signed.dtype), np.empty((bands, 2), unsigned.dtype)
    in_bands(_bit_ranges, bands, threads_for(image.size), signed, unsigned, signed_ranges, unsigned_ranges)
    lo, hi = _range_of_bands(image.dtype, signed_ranges, unsigned_ranges)
    if stage is not None and not (np.isfinite(lo) and np.isfinite(hi)):
        check_finite(image, stage, lambda _: False)  # raises, counting the NaN and infinite pixels
    return lo, hi


def _bit_views(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A float image's bit patterns as signed and as unsigned integers of its width (an integer image: itself,
    twice)."""
    if image.dtype.kind != "f":
        return image, image
    return image.view(f"i{image.dtype.itemsize}"), image.view(f"u{image.dtype.itemsize}")


def _range_of_bands(dtype: np.dtype, signed_ranges: np.ndarray, unsigned_ranges: np.ndarray) -> tuple[float, float]:
    """An image's min and max from its bands' extremes of the bits read as signed and as unsigned integers (rows:
    min, max; :func:`_bit_views`); for an integer image the signed extremes are its values."""
    signed_min, signed_max = signed_ranges[:, 0].min(), signed_ranges[:, 1].max()
    if dtype.kind != "f":
        return float(signed_min), float(signed_max)
    return _float_range(dtype, signed_min, signed_max, unsigned_ranges[:, 0].min(), unsigned_ranges[:, 1].max())


def _float_range(dtype: np.dtype, signed_min, signed_max, unsigned_min, unsigned_max) -> tuple[float, float]:
    """A float image's min and max from the extremes of its bit patterns read as signed and as unsigned integers.

    A non-negative float's bits, read either way, order as its value; a negative float's bits have the sign bit set
    (negative as signed, above every non-negative as unsigned) and grow with its magnitude. So the max is the
    largest signed pattern if any value is non-negative, else the smallest (the negative of least magnitude); the
    min is the largest unsigned pattern if any value is negative, else the smallest. Four integer reductions
    that vectorize, with no widening (numba widens ``int32 ^ int32`` to int64, which made order keys 1.5x slower).
    NaN and infinity come out as such: their patterns lie beyond every finite one.
    """
    sign = 1 << (8 * dtype.itemsize - 1)
    hi = signed_max if signed_max >= 0 else signed_min
    lo = unsigned_max if unsigned_max >= sign else unsigned_min
    return (float(np.array(lo, dtype=f"u{dtype.itemsize}").view(dtype)[()]),
            float(np.array(hi, dtype=f"i{dtype.itemsize}").view(dtype)[()]))


@njit(cache=True, nogil=True)
def _rescale(pixels, slope, intercept, out, first, last, bands):
    rows = pixels.shape[0]
    for i in range(band_rows(first, bands, rows), band_rows(last, bands, rows)):
        row, target = pixels[i], out[i]
        for j in range(row.shape[0]):
            target[j] = rescaled(row[j], slope, intercept)


@njit(cache=True, nogil=True)
def _integer_range(image):
    lo = hi = image[0, 0]
    for i in range(image.shape[0]):
        row = image[i]
        for j in range(row.shape[0]):
            lo, hi = min(lo, row[j]), max(hi, row[j])
    return lo, hi


@njit(cache=True, nogil=True)
def _bit_ranges(signed, unsigned, signed_ranges, unsigned_ranges, first, last, bands):
    """Per band of rows, the min and max of ``signed`` and of ``unsigned`` (the same bits read two ways:
    :func:`_float_range`) into its rows of the ranges."""
    height = signed.shape[0]
    for b in range(first, last):
        first_row = band_rows(b, bands, height)
        signed_min = signed_max = signed[first_row, 0]
        unsigned_min = unsigned_max = unsigned[first_row, 0]
        for i in range(first_row, band_rows(b + 1, bands, height)):
            row, unsigned_row = signed[i], unsigned[i]
            for j in range(row.shape[0]):
                signed_min, signed_max = min(signed_min, row[j]), max(signed_max, row[j])
                unsigned_min, unsigned_max = min(unsigned_min, unsigned_row[j]), max(unsigned_max, unsigned_row[j])
        signed_ranges[b, 0], signed_ranges[b, 1] = signed_min, signed_max
        unsigned_ranges[b, 0], unsigned_ranges[b, 1] = unsigned_min, unsigned_max


@njit(cache=True, nogil=True)
def _window(image, signed, unsigned, c0, w1, invert, out, signed_ranges, unsigned_ranges, signed_limit,
            unsigned_limit, first, last, bands):
    """Written through a small buffer per step: with ``out`` the input's own memory, LLVM's overlap check would
    send a direct loop down its scalar path (4x slower).

    With ranges for every band (not empty), also each band's extremes of ``signed`` and ``unsigned`` (the
    input's bits: :func:`_bit_views`), from each step while it is in cache, before its output is written: no pass
    of their own (a third of the stage). A band whose extremes reach the limits (:func:`_finite_limits`: a NaN or
    infinity) stops before writing that step, so that :func:`window` still finds every one of them to count."""
    values = np.empty(_STEP, dtype=np.float32)
    rows, width = image.shape
    taken = signed_ranges.shape[0] > 0
    for b in range(first, last):
        first_row = band_rows(b, bands, rows)
        signed_min = signed_max = signed[first_row, 0]
        unsigned_min = unsigned_max = unsigned[first_row, 0]
        stopped = False
        for i in range(first_row, band_rows(b + 1, bands, rows)):
            row, target, signed_row, unsigned_row = image[i], out[i], signed[i], unsigned[i]
            for start in range(0, width, _STEP):
                step, step_out = row[start:start + _STEP], target[start:start + _STEP]
                for j in range(step.shape[0]):
                    values[j] = windowed(step[j], c0, w1, invert)
                if taken:
                    signed_step, unsigned_step = signed_row[start:start + _STEP], unsigned_row[start:start + _STEP]
                    for j in range(signed_step.shape[0]):
                        signed_min, signed_max = min(signed_min, signed_step[j]), max(signed_max, signed_step[j])
                        unsigned_min = min(unsigned_min, unsigned_step[j])
                        unsigned_max = max(unsigned_max, unsigned_step[j])
                    if signed_max >= signed_limit or unsigned_max >= unsigned_limit:
                        stopped = True
                        break
                for j in range(step.shape[0]):  # a loop: a slice assignment compiled for 2-3 s
                    step_out[j] = values[j]
            if stopped:
                break
        if taken:
            signed_ranges[b, 0], signed_ranges[b, 1] = signed_min, signed_max
            unsigned_ranges[b, 0], unsigned_ranges[b, 1] = unsigned_min, unsigned_max


@njit(cache=True, nogil=True)
def _histogram(image, signed, unsigned, lo, scale, counts, signed_ranges, unsigned_ranges, first, last, bands):
    """Equalize's 256-bin histogram of each band into its row of ``counts`` (the caller adds them up in NumPy:
    exact integer sums, and Numba's ``sum(axis=0)`` alone took half of this kernel's cold compile), and the band's
    extremes of ``signed`` and ``unsigned`` (the image's bits: :func:`_bit_views`) into its rows of the ranges.

    Each step of a row first gets its bin indices and extremes (one loop that vectorizes), then is counted into four
    interleaved uint32 tables, so that runs of equal bins do not wait on one counter; exact while a band holds fewer
    than 2**32 pixels (:func:`.inputs.bands_of`). A NaN lands in bin 0 (:func:`.scalars.bin_index`), and the
    extremes tell the caller it is there.
    """
    height, width = image.shape
    bins = np.empty(_STEP, dtype=np.uint32)
    for b in range(first, last):
        tables = np.zeros((4, 256), dtype=np.uint32)
        first_row = band_rows(b, bands, height)
        signed_min = signed_max = signed[first_row, 0]
        unsigned_min = unsigned_max = unsigned[first_row, 0]
        for i in range(first_row, band_rows(b + 1, bands, height)):
            row, signed_row, unsigned_row = image[i], signed[i], unsigned[i]
            for start in range(0, width, _STEP):
                step = row[start:start + _STEP]  # slices, not row[start + j]: offset indices defeat vectorization
                signed_step, unsigned_step = signed_row[start:start + _STEP], unsigned_row[start:start + _STEP]
                n = step.shape[0]
                for j in range(n):  # one loop, not two: each value is loaded once (8% faster)
                    bins[j] = bin_index(step[j], lo, scale)
                    signed_min, signed_max = min(signed_min, signed_step[j]), max(signed_max, signed_step[j])
                    unsigned_min = min(unsigned_min, unsigned_step[j])
                    unsigned_max = max(unsigned_max, unsigned_step[j])
                j = 0
                while j + 4 <= n:
                    tables[0, bins[j]] += 1
                    tables[1, bins[j + 1]] += 1
                    tables[2, bins[j + 2]] += 1
                    tables[3, bins[j + 3]] += 1
                    j += 4
                for tail in range(j, n):
                    tables[0, bins[tail]] += 1
        for q in range(4):
            for k in range(256):
                counts[b, k] += tables[q, k]
        signed_ranges[b, 0], signed_ranges[b, 1] = signed_min, signed_max
        unsigned_ranges[b, 0], unsigned_ranges[b, 1] = unsigned_min, unsigned_max


@njit(cache=True, nogil=True)
def _equalize(image, lo, scale, pairs, out, first, last, bands):
    """:func:`.scalars.equalized` of every pixel. With :data:`.gathers.GATHERS`, :data:`.gathers.LANES` pixels at a
    time as vector code whose lookups are gathers (:func:`.gathers.equalized_lanes`), the rest of each row as below.

    Otherwise (and for the rest), split per step into a loop that vectorizes (positions), the table lookups (scalar:
    LLVM emits no gathers here) and a loop that vectorizes (the blend). ``pairs[k] = cdf[k] + 1j * slopes[k]``: one
    16-byte load and store per pixel fetches both values of a bin (25% faster than two tables); the arithmetic on
    them is the same float64 as :func:`.scalars.equalized`.
    """
    height, width = image.shape
    gathered = width - width % LANES if GATHERS else 0
    fractions, fetched = np.empty(_STEP), np.empty(_STEP, dtype=np.complex128)
    bins = np.empty(_STEP, dtype=np.uint32)
    for i in range(band_rows(first, bands, height), band_rows(last, bands, height)):
        row, target = image[i], out[i]
        for start in range(0, gathered, LANES):
            equalized_lanes(row, target, start, lo, scale, pairs)
        for start in range(gathered, width, _STEP):
            step, step_out = row[start:start + _STEP], target[start:start + _STEP]
            n = step.shape[0]
            for j in range(n):
                t = position(step[j], lo, scale)
                k = np.floor(t)
                fractions[j] = t - k
                bins[j] = np.uint32(k)
            for j in range(n):
                fetched[j] = pairs[bins[j]]
            for j in range(n):
                step_out[j] = blend(fetched[j].real, fractions[j], fetched[j].imag)


@njit(cache=True, nogil=True)
def _resample_columns(image, starts, weights, out, first, last, bands):
    """Every column resampled to ``len(starts)`` rows of ``out``, in float64 (the first tap assigned, not added to
    zeros: the same sums, without zeroing the rows first).

    The taps after the first are added four input rows per loop, in order (the same sums): each output value is
    loaded and stored once per four rows instead of once per row (the chest film's 16-tap shrink about 20 % faster on
    one thread: README, "What made it fast", item 18)."""
    rows, taps = starts.shape[0], weights.shape[1]
    for i in range(band_rows(first, bands, rows), band_rows(last, bands, rows)):
        target, start = out[i], starts[i]
        weight, row = weights[i, 0], image[start]
        for j in range(row.shape[0]):
            target[j] = weight * np.float64(row[j])
        k = 1  # the next tap
        while k + 4 <= taps:
            w0, w1, w2, w3 = weights[i, k], weights[i, k + 1], weights[i, k + 2], weights[i, k + 3]
            r0, r1, r2, r3 = image[start + k], image[start + k + 1], image[start + k + 2], image[start + k + 3]
            for j in range(r0.shape[0]):
                target[j] = ((((target[j] + w0 * np.float64(r0[j])) + w1 * np.float64(r1[j]))
                              + w2 * np.float64(r2[j])) + w3 * np.float64(r3[j]))
            k += 4
        for tail in range(k, taps):
            weight, row = weights[i, tail], image[start + tail]
            for j in range(row.shape[0]):
                target[j] += weight * np.float64(row[j])


@njit(cache=True, nogil=True)
def _resample_rows(image, starts, weights, run_ends, out, first, last, bands):
    """Every row resampled to ``len(starts)`` columns of ``out``, stored as float32 (:func:`_by_tap`'s tables). The
    taps of an output are added in order, in float64, whichever loop runs.

    Each output sums its taps, a run of neighbouring values (a shrink: 16 per output). A large enlargement (the
    heatmap: 2 taps per output, 3.6 million outputs) goes a run at a time instead: the outputs of a run read the same
    input values, so its loop is a stream of multiply-adds with those values held (heatmap of the chest film 7.5 ->
    1.7 ms on one thread; a 16-tap shrink 0.16 -> 0.12 ms, by the unsigned starts).
    """
    rows, taps, width = image.shape[0], weights.shape[0], starts.shape[0]
    sums = np.empty(width)
    for i in range(band_rows(first, bands, rows), band_rows(last, bands, rows)):
        row, target = image[i], out[i]
        if run_ends.shape[0] == 0:
            for j in range(width):
                total = 0.0
                for k in range(taps):
                    total += weights[k, j] * row[starts[j] + np.uintp(k)]
                target[j] = total
            continue
        begin = 0
        for end in run_ends:
            run, start = sums[begin:end], starts[begin]  # slices: offset indices would defeat vectorization
            held, tap = row[start], weights[0, begin:end]
            for j in range(run.shape[0]):
                run[j] = 0.0 + tap[j] * held  # 0.0 + : a -0.0 sums to 0.0, as in the loop above
            for k in range(1, taps):
                held, tap = row[start + np.uintp(k)], weights[k, begin:end]
                for j in range(run.shape[0]):
                    run[j] += tap[j] * held
            begin = end
        for j in range(width):
            target[j] = sums[j]


@njit(cache=True, nogil=True)
def _normalize(image, means, stds, out, first, last, bands):
    rows = image.shape[0]
    for i in range(band_rows(first, bands, rows), band_rows(last, bands, rows)):
        row = image[i]
        for c in range(means.shape[0]):
            target = out[0, c, i]
            for j in range(row.shape[0]):
                target[j] = (np.float64(row[j]) - means[c]) / stds[c]
