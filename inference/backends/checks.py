"""Input checks shared by every backend: the same refusals, in the same words, whichever backend runs."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from radbench.inference.backends.value_ranges import own_window
from radbench.inference.errors import BackendError


def check_image(image: np.ndarray, stage: str,
                all_finite: Callable[[np.ndarray], bool] | None = None) -> np.ndarray:
    """``image`` as a non-empty 2-D array of finite real numbers; ``BackendError`` in words otherwise.

    ``all_finite`` decides :func:`check_finite` for float images (a backend may bring a faster one)."""
    image = np.asarray(image)
    if image.ndim != 2 or image.size == 0 or image.dtype.kind not in "uif":
        raise BackendError(f"{stage} needs a non-empty 2-D array of real numbers, got {image.dtype} {image.shape}")
    check_finite(image, stage, all_finite)
    return image


def output(out: np.ndarray | None, shape: tuple[int, ...], stage: str) -> np.ndarray:
    """``out`` checked as a full-size stage's output buffer (float32, C-contiguous, writeable, ``shape``), or a new
    one if ``None``; ``BackendError`` in words otherwise."""
    if out is None:
        return np.empty(shape, dtype=np.float32)
    if not (isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == shape
            and out.flags.c_contiguous and out.flags.writeable and out.dtype.isnative):
        raise BackendError(f"{stage} needs out as a writeable C-contiguous float32 array of shape {shape}, got "
                           f"{getattr(out, 'dtype', type(out).__name__)} {getattr(out, 'shape', '')}")
    return out


def _min_and_max_finite(image: np.ndarray) -> bool:
    """Min and max propagate NaN, so two reductions without a temporary decide it."""
    return bool(np.isfinite(image.min()) and np.isfinite(image.max()))


def check_finite(image: np.ndarray, stage: str, all_finite: Callable[[np.ndarray], bool] | None = None) -> None:
    """The one rule for NaN and infinity: no stage takes an image holding any (``BackendError`` says how many).

    Integer images cannot hold any; for float images ``all_finite(image)`` decides (default: min and max), and the
    values are counted only on refusal.
    """
    if image.dtype.kind == "f" and not (all_finite or _min_and_max_finite)(image):
        count = int(image.size - np.count_nonzero(np.isfinite(image)))
        raise BackendError(f"{stage} refused: the image has {count} non-finite pixel value{'s' * (count != 1)} "
                           "(NaN or infinity)")


#: The widest window any stage takes: far beyond any real image's range (float32 ends at 3.4e38), and narrow enough
#: that the Numba backend's division by the width stays exact (:func:`.numba_jit.scalars.quotient`).
MAX_WINDOW_WIDTH = 1e300


def voi(center: float | None, width: float | None, extremes: Callable[[], tuple[float, float]]) -> tuple[float, float]:
    """``(c - 0.5, w - 1)`` of a valid window; ``BackendError`` in words otherwise.

    Neither ``center`` nor ``width`` given: the image's own range, :func:`own_window` of ``extremes()`` (its min
    and max, computed only then).
    """
    if center is None and width is None:
        center, width = own_window(*extremes())
    if center is None or width is None:
        raise BackendError("window needs both a center and a width, or neither (the image's own range)")
    center, width = float(center), float(width)
    if not (math.isfinite(center) and math.isfinite(width) and 1 <= width <= MAX_WINDOW_WIDTH):
        raise BackendError(f"window center must be finite and width from 1 to {MAX_WINDOW_WIDTH:g}, got "
                           f"{center} / {width}")
    return center - 0.5, width - 1.0


def per_channel(mean: Sequence[float], std: Sequence[float], channels: int) -> tuple[list[float], list[float]]:
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
