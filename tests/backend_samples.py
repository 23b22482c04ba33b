"""Small real scans for the backend tests, from pydicom's bundled test files and pydicom-data.

Each is read once per test session. Files are opened by name: ``get_testdata_files('*')`` would try to
download the whole data set.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import data_store
import numpy as np
from pydicom import dcmread
from pydicom.data import get_testdata_file

from radbench.inference.backends import BACKEND_NAMES, get_backend


@dataclass(frozen=True)
class Sample:
    """A scan's pixels with the values the pipeline would take from its header."""

    name: str
    pixels: np.ndarray
    slope: float
    intercept: float
    center: float | None
    width: float | None
    invert: bool


SAMPLE_NAMES = ("CT_small", "MR_small", "RG1_crop")


@cache
def sample(name: str) -> Sample:
    """``CT_small`` (128x128 int16, rescaled), ``MR_small`` (64x64 int16, windowed) or ``RG1_crop``.

    ``RG1_crop`` is a 96x80 uint16 piece of the middle of a 1955x1841 chest radiograph (MONOCHROME1, so
    inverted), small enough for the naive backend.
    """
    if name == "RG1_crop":
        ds = dcmread(Path(data_store.__file__).parent / "data" / "RG1_UNCR.dcm")
        pixels = ds.pixel_array[900:996, 880:960]
    else:
        ds = dcmread(get_testdata_file(f"{name}.dcm"))
        pixels = ds.pixel_array
    center, width = (float(ds.WindowCenter), float(ds.WindowWidth)) if "WindowCenter" in ds else (None, None)
    return Sample(
        name=name,
        pixels=pixels,
        slope=float(ds.get("RescaleSlope", 1.0)),
        intercept=float(ds.get("RescaleIntercept", 0.0)),
        center=center,
        width=width,
        invert=ds.PhotometricInterpretation == "MONOCHROME1",
    )


def windowed(name: str) -> np.ndarray:
    """A sample rescaled and windowed by the vectorized backend: the float32 input of the later stages."""
    s = sample(name)
    v = get_backend("vectorized")
    return v.window(v.rescale(s.pixels, s.slope, s.intercept), s.center, s.width, s.invert)


BACKENDS = [get_backend(name) for name in BACKEND_NAMES]
