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

from collections.abc import Sequence

import numpy as np
from numba import njit

from radbench.inference.backends.checks import check_finite, output, per_channel, voi
from radbench.inference.backends.contract import Cancel
from radbench.inference.backends.numba_jit.bands import band_rows, in_bands
from radbench.inference.backends.numba_jit.inputs import all_finite, bands_of, prepared, threads_for
from radbench.inference.backends.numba_jit.scalars import bin_index, blend, position, rescaled, windowed
from radbench.inference.backends.resample import axis_weights
from radbench.inference.backends.value_ranges import equalization_bins

#: Pixels handled per step of equalize's split loops: small enough that the step's buffers stay in L1.
_STEP = 512


def rescale(pixels: np.ndarray, slope: float, intercept: float, *, out: np.ndarray | None = None,
            cancel: Cancel = None) -> np.ndarray:
    pixels = prepared(pixels, "rescale")
    out = output(out, pixels.shape, "rescale")
    in_bands(_rescale, bands_of(pixels), threads_for(pixels.size), pixels, float(slope), float(intercept), out)
    return out


def window(image: np.ndarray, center: float | None, width: float | None, invert: bool, *,
           out: np.ndarray | None = None, cancel: Cancel = None) -> np.ndarray:
    threads = threads_for(np.size(image))
    own_range = center is None and width is None  # then the extremes pass checks for NaN and infinity
    image = prepared(image, "window", finite=not own_range)
    out = output(out, image.shape, "window")
    c0, w1 = voi(center, width, lambda: extremes(image, "window"))
    in_bands(_window, bands_of(image), threads, image, c0, w1, bool(invert), out)
    return out


def equalize(image: np.ndarray, *, out: np.ndarray | None = None, cancel: Cancel = None) -> np.ndarray:
    threads = threads_for(np.size(image))
    image = prepared(image, "equalize", finite=False)
    out = output(out, image.shape, "equalize")
    lo, scale = equalization_bins(*extremes(image, "equalize"))
    bands = bands_of(image)
    counts = np.zeros((bands, 256), dtype=np.int64)
    in_bands(_histogram, bands, threads, image, lo, scale, counts)
    cdf = np.cumsum(counts.sum(axis=0)) / image.size  # exact integer sums in NumPy
    in_bands(_equalize, bands, threads, image, lo, scale, cdf + 1j * cdf_slopes(cdf), out)
    return out


def resize(image: np.ndarray, height: int, width: int, *, cancel: Cancel = None) -> np.ndarray:
    """The NaN/infinity check rides on the first pass (:func:`_check_through`): no pass of its own."""
    threads = threads_for(max(np.size(image), _pixels(height, width)))  # the larger side decides: a heatmap enlarges
    image = prepared(image, "resize", finite=False)
    starts, weights = axis_weights(image.shape[0], height)
    rows = np.empty((starts.shape[0], image.shape[1]))
    in_bands(_resample_columns, bands_of(rows), threads, image, starts, weights, rows)
    _check_through(rows, image, starts, weights.shape[1])
    threads = threads_for(max(rows.size, _pixels(height, width)))
    starts, weights = axis_weights(image.shape[1], width)
    out = np.empty((rows.shape[0], starts.shape[0]), dtype=np.float32)
    in_bands(_resample_rows, bands_of(out), threads, rows, starts, weights, out)
    return out


def normalize(image: np.ndarray, mean: Sequence[float], std: Sequence[float], channels: int, *,
              cancel: Cancel = None) -> np.ndarray:
    threads = threads_for(np.size(image))
    image = prepared(image, "normalize")
    means, stds = per_channel(mean, std, channels)
    out = np.empty((1, len(means), *image.shape), dtype=np.float32)
    in_bands(_normalize, bands_of(image), threads, image, np.array(means), np.array(stds), out)
    return out


def _check_through(rows: np.ndarray, image: np.ndarray, starts: np.ndarray, taps: int) -> None:
    """Refuse a float ``image`` holding NaN or infinity, as :func:`.inputs.prepared` would, from ``rows``, its
    resampling along the columns: every pixel of a row some tap reads reaches ``rows`` multiplied by a finite weight
    (``0 * inf`` is NaN too), and NaN and infinity survive any sum, so ``rows`` is finite if those pixels are. The
    rows no tap reads (none, for today's weights) are checked directly; a non-finite ``rows`` from finite pixels
    (float64 overflow near 1.8e308) is let through, as the other backends let it through."""
    if image.dtype.kind != "f":
        return
    read = np.zeros(image.shape[0], dtype=bool)
    read[(starts[:, None] + np.arange(taps)).ravel()] = True
    if not (all_finite(rows) and all_finite(image[~read])):
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

    Float min/max reductions do not vectorize (NaN rules); for float images the bit patterns are compared as
    integers instead, after flipping the magnitude bits of negative values so that integer order is float
    order (IEEE 754 "total order" keys): 10x faster than a float reduction on a 1955 x 1841 float32 frame. In that
    order infinities and NaNs lie at the ends, so the same two keys tell whether any is present.
    """
    if image.dtype.kind != "f":
        lo, hi = _integer_range(image)
        return float(lo), float(hi)
    ints = np.int32 if image.dtype.itemsize == 4 else np.int64
    sign_shift, magnitude = 8 * image.dtype.itemsize - 1, np.iinfo(ints).max

    def key(value: float) -> int:
        bits = int(np.array(value, dtype=image.dtype).view(ints)[()])
        return bits ^ ((bits >> sign_shift) & magnitude)

    def value(key: int) -> float:  # the key transform is its own inverse
        return float(np.array(key ^ ((key >> sign_shift) & magnitude), dtype=ints).view(image.dtype)[()])

    lo, hi = (int(k) for k in _key_range(image.view(ints), ints(magnitude), ints(sign_shift)))
    if stage is not None and (lo <= key(-np.inf) or hi >= key(np.inf)):
        check_finite(image, stage, lambda _: False)  # raises, counting the NaN and infinite pixels
    return value(lo), value(hi)


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
def _key_range(bits, magnitude, sign_shift):
    """Min and max of the order keys ``b ^ ((b >> sign_shift) & magnitude)`` of float bit patterns ``bits``.

    One thread: the pass runs at memory speed, and a second thread would cost more to wake than it saves."""
    lo = hi = np.int64(bits[0, 0] ^ ((bits[0, 0] >> sign_shift) & magnitude))
    for i in range(bits.shape[0]):
        row = bits[i]
        for j in range(row.shape[0]):
            key = np.int64(row[j] ^ ((row[j] >> sign_shift) & magnitude))
            lo, hi = min(lo, key), max(hi, key)
    return lo, hi


@njit(cache=True, nogil=True)
def _window(image, c0, w1, invert, out, first, last, bands):
    """Written through a small buffer per step: with ``out`` the input's own memory, LLVM's overlap check would
    send a direct loop down its scalar path (4x slower)."""
    values = np.empty(_STEP, dtype=np.float32)
    rows = image.shape[0]
    for i in range(band_rows(first, bands, rows), band_rows(last, bands, rows)):
        row, target = image[i], out[i]
        for start in range(0, row.shape[0], _STEP):
            step, step_out = row[start:start + _STEP], target[start:start + _STEP]
            for j in range(step.shape[0]):
                values[j] = windowed(step[j], c0, w1, invert)
            for j in range(step.shape[0]):  # a loop: a slice assignment compiled for 2-3 s
                step_out[j] = values[j]


@njit(cache=True, nogil=True)
def _histogram(image, lo, scale, counts, first, last, bands):
    """Equalize's 256-bin histogram of each band into its row of ``counts`` (the caller adds them up in NumPy:
    exact integer sums, and Numba's ``sum(axis=0)`` alone took half of this kernel's cold compile).

    Each step of a row first gets its bin indices (a loop that vectorizes), then is counted into four interleaved
    uint32 tables, so that runs of equal bins do not wait on one counter; exact while a band holds fewer than 2**32
    pixels (:func:`.inputs.bands_of`).
    """
    height, width = image.shape
    bins = np.empty(_STEP, dtype=np.uint32)
    for b in range(first, last):
        tables = np.zeros((4, 256), dtype=np.uint32)
        for i in range(band_rows(b, bands, height), band_rows(b + 1, bands, height)):
            row = image[i]
            for start in range(0, width, _STEP):
                step = row[start:start + _STEP]  # slices, not row[start + j]: offset indices defeat vectorization
                n = step.shape[0]
                for j in range(n):
                    bins[j] = bin_index(step[j], lo, scale)
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


@njit(cache=True, nogil=True)
def _equalize(image, lo, scale, pairs, out, first, last, bands):
    """:func:`.scalars.equalized` of every pixel, split per step into a loop that vectorizes (positions), the
    table lookups (scalar: LLVM emits no gathers for this CPU family) and a loop that vectorizes (the blend).

    ``pairs[k] = cdf[k] + 1j * slopes[k]``: one 16-byte load and store per pixel fetches both values of a bin
    (25% faster than two tables); the arithmetic on them is the same float64 as :func:`.scalars.equalized`.
    """
    height, width = image.shape
    fractions, fetched = np.empty(_STEP), np.empty(_STEP, dtype=np.complex128)
    bins = np.empty(_STEP, dtype=np.uint32)
    for i in range(band_rows(first, bands, height), band_rows(last, bands, height)):
        row, target = image[i], out[i]
        for start in range(0, width, _STEP):
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
    zeros: the same sums, without zeroing the rows first)."""
    rows = starts.shape[0]
    for i in range(band_rows(first, bands, rows), band_rows(last, bands, rows)):
        target = out[i]
        weight, row = weights[i, 0], image[starts[i]]
        for j in range(row.shape[0]):
            target[j] = weight * np.float64(row[j])
        for k in range(1, weights.shape[1]):
            weight, row = weights[i, k], image[starts[i] + k]
            for j in range(row.shape[0]):
                target[j] += weight * np.float64(row[j])


@njit(cache=True, nogil=True)
def _resample_rows(image, starts, weights, out, first, last, bands):
    """Every row resampled to ``len(starts)`` columns of ``out``, stored as float32."""
    rows = image.shape[0]
    for i in range(band_rows(first, bands, rows), band_rows(last, bands, rows)):
        row = image[i]
        for j in range(starts.shape[0]):
            total = 0.0
            for k in range(weights.shape[1]):
                total += weights[j, k] * row[starts[j] + k]
            out[i, j] = total


@njit(cache=True, nogil=True)
def _normalize(image, means, stds, out, first, last, bands):
    rows = image.shape[0]
    for i in range(band_rows(first, bands, rows), band_rows(last, bands, rows)):
        row = image[i]
        for c in range(means.shape[0]):
            target = out[0, c, i]
            for j in range(row.shape[0]):
                target[j] = (np.float64(row[j]) - means[c]) / stds[c]
