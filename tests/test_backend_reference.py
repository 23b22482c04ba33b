"""Each stage of each backend against a well-kept outside implementation, on real scans.

References get float64 input where they accept it, so the tolerances below only have to cover our
float32 output (one rounding: relative 2**-24, absolute 6e-8 on [0, 1]) plus the reference's own
float64 rounding:

- rescale, normalize: relative 2**-24 (one float32 rounding of the same float64 arithmetic).
- window: absolute 1e-6 on [0, 1] (pydicom scales to the BitsStored range and we map back).
- equalize: absolute 1e-6, far below 1 / pixel count (>= 1.3e-5 here), so a single pixel counted in a
  different histogram bin than skimage would fail the test.
- resize: absolute 1e-6 on [0, 1] images (skimage sums in a different order).
"""

from __future__ import annotations

import numpy as np
import pytest
from backend_samples import BACKENDS, SAMPLE_NAMES, sample, windowed
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, apply_windowing
from skimage.exposure import equalize_hist
from skimage.transform import downscale_local_mean, resize, resize_local_mean

ONE_ROUNDING = 2.0**-24
UNIT_TOLERANCE = 1e-6

backends = pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
samples = pytest.mark.parametrize("name", SAMPLE_NAMES)


@backends
@samples
@pytest.mark.parametrize("slope, intercept", [(None, None), (1.0, -1024.0), (0.37, 12.5), (-2.0, 0.0)])
def test_rescale_matches_pydicom_modality_lut(backend, name, slope, intercept):
    s = sample(name)
    ds = Dataset()
    if slope is not None:
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    expected = apply_modality_lut(s.pixels, ds)
    ours = backend.rescale(s.pixels, ds.get("RescaleSlope", 1.0), ds.get("RescaleIntercept", 0.0))
    np.testing.assert_allclose(ours, expected, rtol=ONE_ROUNDING, atol=0)


def pydicom_linear_window(image, center, width):
    """pydicom's LINEAR VOI function, mapped from its 16-bit output range back to [0, 1]."""
    ds = Dataset()
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsStored, ds.PixelRepresentation = 16, 0
    ds.WindowCenter, ds.WindowWidth, ds.VOILUTFunction = center, width, "LINEAR"
    return apply_windowing(image.astype(np.float64), ds) / (2**16 - 1)


@backends
@samples
@pytest.mark.parametrize("invert", [False, True])
@pytest.mark.parametrize("which", ["header", "own range", "width 1", "narrow"])
def test_window_matches_pydicom_linear(backend, name, which, invert):
    s = sample(name)
    image = backend.rescale(s.pixels, s.slope, s.intercept)
    lo, hi = float(image.min()), float(image.max())
    center, width = {
        "header": (s.center, s.width),
        "own range": (None, None),
        "width 1": (float(np.median(image)), 1.0),
        "narrow": ((lo + hi) / 2, 7.5),
    }[which]
    if center is None and which == "header":
        center, width = 40.0, 400.0  # CT_small has no window: a soft-tissue one
    ours = backend.window(image, center, width, invert)
    if center is None:  # the image's own range, as the specification defines it
        center, width = (lo + hi + 1) / 2, hi - lo + 1
    expected = pydicom_linear_window(image, center, width)
    np.testing.assert_allclose(ours, 1 - expected if invert else expected, rtol=0, atol=UNIT_TOLERANCE)
    assert 0 < np.mean(expected) < 1  # the window really cuts through the image


@backends
@pytest.mark.parametrize("name", [*SAMPLE_NAMES, "flat"])
def test_equalize_matches_skimage(backend, name):
    image = np.full((5, 7), 0.25, dtype=np.float32) if name == "flat" else windowed(name)
    expected = equalize_hist(image.astype(np.float64), nbins=256)
    np.testing.assert_allclose(backend.equalize(image), expected, rtol=0, atol=UNIT_TOLERANCE)


def sizes(shape, fy, fx):
    return max(1, round(shape[0] * fy)), max(1, round(shape[1] * fx))


@backends
@samples
@pytest.mark.parametrize("fy, fx", [(0.5, 0.5), (0.31, 0.77), (0.1, 0.05), (1.0, 0.5)])
def test_area_shrink_matches_skimage_local_mean(backend, name, fy, fx):
    image = windowed(name)
    size = sizes(image.shape, fy, fx)
    expected = resize_local_mean(image.astype(np.float64), size, grid_mode=True, preserve_range=True)
    np.testing.assert_allclose(backend.resize(image, *size), expected, rtol=0, atol=UNIT_TOLERANCE)


@backends
@samples
@pytest.mark.parametrize("factors", [(2, 2), (4, 2), (1, 8)])
def test_integer_shrink_matches_skimage_downscale(backend, name, factors):
    image = windowed(name)
    assert image.shape[0] % 8 == image.shape[1] % 8 == 0
    expected = downscale_local_mean(image.astype(np.float64), factors)
    ours = backend.resize(image, image.shape[0] // factors[0], image.shape[1] // factors[1])
    np.testing.assert_allclose(ours, expected, rtol=0, atol=UNIT_TOLERANCE)


def skimage_bilinear(image, size):
    return resize(image.astype(np.float64), size, order=1, mode="edge", anti_aliasing=False, preserve_range=True)


@backends
@samples
@pytest.mark.parametrize("fy, fx", [(2.0, 2.0), (1.37, 3.1), (1.0, 1.5)])
def test_bilinear_enlarge_matches_skimage(backend, name, fy, fx):
    image = windowed(name)[:40, :24]  # enlarging the naive backend's work: keep it small
    size = sizes(image.shape, fy, fx)
    np.testing.assert_allclose(backend.resize(image, *size), skimage_bilinear(image, size), rtol=0, atol=UNIT_TOLERANCE)


@backends
@pytest.mark.parametrize("shape, size", [((1, 5), (30, 5)), ((5, 1), (5, 30)), ((1, 1), (3, 4))])
def test_length_one_axis_enlarges_to_copies(backend, shape, size):
    image = windowed("MR_small")[20:20 + shape[0], 20:20 + shape[1]]
    np.testing.assert_allclose(backend.resize(image, *size), skimage_bilinear(image, size), rtol=0, atol=UNIT_TOLERANCE)


@backends
@samples
def test_mixed_resize_is_area_rows_then_bilinear_columns(backend, name):
    image = windowed(name)
    height, width = image.shape[0] // 3, image.shape[1] * 2 - 1
    rows = resize_local_mean(image.astype(np.float64), (height, image.shape[1]), grid_mode=True, preserve_range=True)
    expected = skimage_bilinear(rows, (height, width))
    np.testing.assert_allclose(backend.resize(image, height, width), expected, rtol=0, atol=UNIT_TOLERANCE)


@backends
@pytest.mark.parametrize("mean, std, channels", [((0.5,), (0.25,), 1), ((0.5,), (0.25,), 3),
                                                 ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 3)])
def test_normalize_matches_numpy(backend, mean, std, channels):
    image = windowed("MR_small")
    grey = image.astype(np.float64)
    means, stds = np.broadcast_to(mean, channels), np.broadcast_to(std, channels)
    expected = np.stack([(grey - m) / s for m, s in zip(means, stds)])[None]
    np.testing.assert_allclose(backend.normalize(image, mean, std, channels), expected, rtol=ONE_ROUNDING, atol=0)
