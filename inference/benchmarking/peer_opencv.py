"""The preprocessing a user who wants speed would write with OpenCV: the benchmark's second outside yardstick.

The five stage functions of the backend contract (:mod:`inference.backends.contract`), each the OpenCV call its
documentation suggests: a float32 modality LUT, ``cv2.convertScaleAbs`` to window onto 8 bits, ``cv2.equalizeHist``,
``cv2.resize(INTER_AREA)`` and a float32 normalize. It is approximate, not a backend: the window quantizes to 256
levels before the histogram, equalization maps bins without interpolating the cdf, and the resize runs on 8-bit
values. The benchmark prints how far its model input lies from the vectorized backend's and whether the label
agrees. OpenCV is optional (the ``peers`` extra); :func:`as_backend` says how to install it when it is missing.
Like a user's code, it allocates its own arrays: ``out`` is accepted (the contract's signature) and not used.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from radbench.inference.backends import Backend
from radbench.inference.backends.contract import Cancel
from radbench.inference.backends.value_ranges import own_window
from radbench.inference.errors import BackendError

NAME = "opencv"
#: Why its model input is not ours, as the benchmark prints it.
DIFFERS_BY_DESIGN = ("its window quantizes to 256 levels before the histogram, its equalize maps bins without "
                     "interpolating the cdf, and it resizes 8-bit values")
INSTALL = "pip install 'radbench[peers]' (or: pip install opencv-python-headless)"


def rescale(pixels: np.ndarray, slope: float, intercept: float, *, out: np.ndarray | None = None,
            cancel: Cancel = None) -> np.ndarray:
    """``pixels`` as float32 times the slope plus the intercept (float32 math)."""
    return pixels.astype(np.float32) * np.float32(slope) + np.float32(intercept)


def window(image: np.ndarray, center: float | None, width: float | None, invert: bool, *,
           out: np.ndarray | None = None, cancel: Cancel = None) -> np.ndarray:
    """``cv2.convertScaleAbs`` onto 0..255 (uint8; saturating); no preset: the image's own range."""
    cv2 = _cv2()
    if center is None and width is None:
        center, width = own_window(*(float(v) for v in cv2.minMaxLoc(image)[:2]))
    alpha = 255.0 / float(width)
    windowed = cv2.convertScaleAbs(image, alpha=alpha, beta=-(float(center) - float(width) / 2) * alpha)
    return cv2.bitwise_not(windowed) if invert else windowed


def equalize(image: np.ndarray, *, out: np.ndarray | None = None, cancel: Cancel = None) -> np.ndarray:
    """``cv2.equalizeHist`` of the 8-bit image (uint8 out)."""
    return _cv2().equalizeHist(image)


def resize(image: np.ndarray, height: int, width: int, *, cancel: Cancel = None) -> np.ndarray:
    """``cv2.resize`` with ``INTER_AREA``, the interpolation OpenCV recommends for shrinking."""
    cv2 = _cv2()
    return cv2.resize(image, (int(width), int(height)), interpolation=cv2.INTER_AREA)


def normalize(image: np.ndarray, mean: Sequence[float], std: Sequence[float], channels: int, *,
              cancel: Cancel = None) -> np.ndarray:
    """8-bit values to [0, 1], then ``(x - mean) / std`` per channel in float32: the ``(1, channels, H, W)`` input."""
    x = image.astype(np.float32) / np.float32(255.0)
    means = np.resize(np.asarray(mean, dtype=np.float32), channels).reshape(-1, 1, 1)
    stds = np.resize(np.asarray(std, dtype=np.float32), channels).reshape(-1, 1, 1)
    return ((x[np.newaxis] - means) / stds)[np.newaxis]


def available() -> bool:
    """Whether OpenCV can be imported here."""
    try:
        _cv2()
    except BackendError:
        return False
    return True


def as_backend() -> Backend:
    """The five functions in a :class:`Backend` record; ``BackendError`` saying how to install OpenCV if missing."""
    _cv2()
    return Backend(name=NAME, description="OpenCV, as a user who wants speed would write it",
                   rescale=rescale, window=window, equalize=equalize, resize=resize, normalize=normalize)


def _cv2():
    try:
        import cv2
    except ImportError as exc:
        raise BackendError(f"opencv is not installed ({exc}): {INSTALL}") from None
    return cv2
