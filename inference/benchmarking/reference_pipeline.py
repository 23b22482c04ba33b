"""The preprocessing a user would write with well-kept libraries: the benchmark's outside yardstick.

The five stage functions of the backend contract (:mod:`inference.backends.contract`), built on pydicom,
scikit-image and NumPy as their documentation suggests, keeping the libraries' float64 results until the model input.
Like a user's code it allocates a new float64 array per stage: ``out`` is accepted (the contract's signature) and
not used. It is deliberately **not** registered as a backend: it computes slightly different numbers, mostly in
``resize`` (Gaussian anti-aliasing then bilinear interpolation with reflected edges, where RadBench
averages exact areas), so the benchmark reports how far its tensor lies from the vectorized backend's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, apply_windowing
from skimage.exposure import equalize_hist
from skimage.transform import resize as skimage_resize

from radbench.inference.backends import Backend
from radbench.inference.backends.contract import Cancel
from radbench.inference.backends.value_ranges import own_window

NAME = "reference"
#: Why its model input is not ours, as the benchmark prints it.
DIFFERS_BY_DESIGN = ("its resize anti-aliases with a Gaussian and interpolates bilinearly with reflected edges")

_VOI_BITS = 16  # pydicom's windowing output spans the BitsStored range; 16 bits, then mapped to [0, 1]
_VOI_MAX = 2**_VOI_BITS - 1


def rescale(pixels: np.ndarray, slope: float, intercept: float, *, out: np.ndarray | None = None,
            cancel: Cancel = None) -> np.ndarray:
    """``pydicom.pixels.apply_modality_lut`` with the scan's slope and intercept (float64 out; ``out`` unused)."""
    ds = Dataset()
    ds.RescaleSlope, ds.RescaleIntercept = float(slope), float(intercept)
    return apply_modality_lut(pixels, ds)


def window(image: np.ndarray, center: float | None, width: float | None, invert: bool, *,
           out: np.ndarray | None = None, cancel: Cancel = None) -> np.ndarray:
    """``pydicom.pixels.apply_windowing`` (LINEAR) onto [0, 1]; no preset: the image's own range."""
    if center is None and width is None:
        center, width = own_window(float(image.min()), float(image.max()))
    ds = Dataset()
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsStored, ds.PixelRepresentation = _VOI_BITS, 0
    ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = float(center), float(width), "LINEAR"
    out = apply_windowing(image, ds) / _VOI_MAX
    return 1.0 - out if invert else out


def equalize(image: np.ndarray, *, out: np.ndarray | None = None, cancel: Cancel = None) -> np.ndarray:
    """``skimage.exposure.equalize_hist`` with its default 256 bins."""
    return equalize_hist(image)


def resize(image: np.ndarray, height: int, width: int, *, cancel: Cancel = None) -> np.ndarray:
    """``skimage.transform.resize`` with anti-aliasing (its default bilinear order and reflect mode)."""
    return skimage_resize(image, (height, width), anti_aliasing=True)


def normalize(image: np.ndarray, mean: Sequence[float], std: Sequence[float], channels: int, *,
              cancel: Cancel = None) -> np.ndarray:
    """NumPy ``(x - mean) / std`` broadcast over channels, as the float32 ``(1, channels, H, W)`` model input."""
    means = np.asarray(mean, dtype=np.float64).reshape(-1, 1, 1)
    stds = np.asarray(std, dtype=np.float64).reshape(-1, 1, 1)
    out = (image[np.newaxis] - means) / stds
    return np.broadcast_to(out, (channels, *image.shape)).astype(np.float32)[np.newaxis]


def as_backend() -> Backend:
    """The five functions in a :class:`Backend` record, for code that takes one; not in the registry."""
    return Backend(name=NAME, description="pydicom + scikit-image + NumPy, as a user would write it",
                   rescale=rescale, window=window, equalize=equalize, resize=resize, normalize=normalize)
