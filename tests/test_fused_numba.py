"""The fused Numba path gives the model input of the five staged Numba kernels, bit for bit, and refuses what
they refuse in the same words."""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from pydicom.data import get_testdata_file

import radbench.inference.backends.numba_jit as numba_jit
from radbench.inference.backends import Backend, get_backend
from radbench.inference.backends.numba_jit.fused import fused_preprocess
from radbench.inference.errors import BackendError
from radbench.inference.loading import load_scan
from radbench.inference.preprocessing import PreprocessSpec, preprocess

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"
STAGED = get_backend("numba")
DTYPES = [np.uint8, np.uint16, np.int16, np.float32]


def spec(slope=1.0, intercept=0.0, center=None, width=None, invert=False, size=(40, 33), mean=(0.5,), std=(0.29,),
         channels=1):
    return PreprocessSpec(slope, intercept, center, width, invert, size, mean, std, channels)


def assert_same_as_staged(pixels, spec):
    """Same dtype, shape and values as the staged kernels. They share every float64 operation and summation
    order, so the values are compared exactly (measured max |difference|: 0 on every case here)."""
    expected, result = preprocess(pixels, spec, STAGED), fused_preprocess(pixels, spec)
    assert result.dtype == np.float32 and result.shape == expected.shape
    np.testing.assert_array_equal(result, expected)


@cache
def scan(name: str):
    path = get_testdata_file(name) if name == "CT_small.dcm" else SAMPLES / name
    return load_scan(path)


def test_chest_radiograph_as_the_pipeline_runs_it():
    s = scan("chest_cr_rg1_j2k_lossless.dcm")
    pixels = s.grey_frame()
    assert pixels.dtype == np.uint16 and pixels.shape == (1955, 1841) and s.inverted and s.window_presets
    assert_same_as_staged(pixels, PreprocessSpec.for_scan(s, size=(128, 128), mean=(0.5,), std=(0.29,), channels=1))


@pytest.mark.parametrize("window", [None, (40.0, 400.0)], ids=["own range", "soft tissue"])
def test_ct_in_hounsfield_units(window):
    s = scan("CT_small.dcm")
    pixels = s.grey_frame()
    assert pixels.dtype == np.int16 and s.rescale_intercept == -1024 and not s.window_presets
    ct = PreprocessSpec.for_scan(s, size=(100, 90), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                                 channels=3)
    if window:
        ct = replace(ct, window_center=window[0], window_width=window[1])
    assert_same_as_staged(pixels, ct)


@pytest.mark.parametrize("invert", [False, True])
def test_8_bit_png(invert):
    s = scan("tibia_cr_rg3_8bit_440px.png")
    pixels = s.grey_frame()
    assert pixels.dtype == np.uint8
    png = PreprocessSpec.for_scan(s, size=(64, 200), mean=(0.5,), std=(0.29,), channels=1)
    assert_same_as_staged(pixels, replace(png, invert=invert))


def chest_crop_as(dtype) -> np.ndarray:
    """A 300x260 piece of the chest radiograph, its values spread over ``dtype``'s range (or kept, for floats)."""
    crop = scan("chest_cr_rg1_j2k_lossless.dcm").grey_frame()[800:1100, 700:960].astype(np.float64)
    if np.dtype(dtype).kind == "f":
        return (crop / 7.3).astype(dtype)
    info = np.iinfo(dtype)
    spread = (crop - crop.min()) / (crop.max() - crop.min())
    return (info.min + spread * (int(info.max) - int(info.min))).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("slope, intercept", [(1.0, 0.0), (0.5, -1024.0), (-2.0, 7.0)], ids=["identity", "CT-like",
                                                                                          "negative slope"])
@pytest.mark.parametrize("window", [None, "middle", "narrow"])
@pytest.mark.parametrize("invert", [False, True], ids=["normal", "inverted"])
def test_every_dtype_window_and_modality_lut(dtype, slope, intercept, window, invert):
    pixels = chest_crop_as(dtype)
    rescaled = pixels.astype(np.float64) * slope + intercept
    center = float(np.median(rescaled))
    width = {None: None, "middle": float(np.ptp(rescaled)) / 2, "narrow": 1.0}[window]
    assert_same_as_staged(pixels, spec(slope, intercept, center if window else None, width, invert))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("window", [None, (100.0, 50.0)], ids=["own range", "given"])
def test_flat_image(dtype, window):
    pixels = np.full((37, 41), 90, dtype=dtype)
    assert_same_as_staged(pixels, spec(1.0, 0.0, *(window or (None, None)), True, (12, 80)))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("size", [(50, 40), (700, 520), (60, 260), (300, 260)], ids=["shrink", "enlarge", "mixed",
                                                                                    "same"])
def test_output_sizes(dtype, size):
    assert_same_as_staged(chest_crop_as(dtype), spec(size=size))


def test_strided_big_endian_and_float16_input_are_taken_as_the_staged_kernels_take_them():
    pixels = chest_crop_as(np.uint16)
    assert_same_as_staged(np.asfortranarray(pixels.astype(">u2"))[::2, ::-3], spec(invert=True, size=(30, 20)))
    assert_same_as_staged(chest_crop_as(np.float16), spec(size=(30, 20)))


def test_window_made_non_monotonic_by_rounding_still_matches():
    """At x = 1e10 the float64 window's upper edge rounds up onto a pixel, which then maps above 1 (7/6) while
    brighter pixels map to 1: the windowed range predicted from the image's extremes is wrong, and the fused
    path must notice and bin the histogram with the range it saw."""
    x = np.float32(1e10)
    pixels = np.array([[x - 1024, x, x + 1024, x]] * 3, dtype=np.float32)
    center, width = 1e10 + 0.5 - 2.0**-19, 1 + 3 * 2.0**-20
    for invert in (False, True):
        windowed = STAGED.window(pixels, center, width, invert)
        assert windowed.max() - windowed.min() > 1  # the premise: not a monotonic map into [0, 1]
        assert_same_as_staged(pixels, spec(1.0, 0.0, center, width, invert, (2, 3)))


GOOD = {"pixels": np.arange(20, dtype=np.uint16).reshape(4, 5), "center": 10.0, "width": 8.0, "size": (3, 3),
        "mean": (0.5,), "std": (0.29,), "channels": 1}
BAD = {
    "3-D": {"pixels": np.zeros((2, 3, 4))}, "1-D": {"pixels": np.zeros(5)}, "empty": {"pixels": np.zeros((0, 4))},
    "complex": {"pixels": np.zeros((2, 2), complex)}, "bool": {"pixels": np.zeros((2, 2), bool)},
    "half window": {"width": None}, "narrow window": {"width": 0.5}, "nan center": {"center": np.nan},
    "zero height": {"size": (0, 3)}, "fractional width": {"size": (3, 2.5)}, "no channels": {"channels": 0},
    "zero std": {"std": (0.0,)}, "two means for three channels": {"mean": (0.5, 0.5), "channels": 3},
}


@pytest.mark.parametrize("bad", BAD.values(), ids=BAD.keys())
def test_refuses_what_the_staged_kernels_refuse_in_their_words(bad):
    args = {**GOOD, **bad}
    pixels, bad_spec = args.pop("pixels"), spec(**args)
    with pytest.raises(BackendError) as expected:
        preprocess(pixels, bad_spec, STAGED)
    with pytest.raises(BackendError) as refused:
        fused_preprocess(pixels, bad_spec)
    assert str(refused.value) == str(expected.value)


def test_refuses_a_spec_without_equalization_as_it_always_equalizes():
    with pytest.raises(BackendError, match="always equalizes"):
        fused_preprocess(GOOD["pixels"], replace(spec(), equalize=False))


def signatures() -> dict[str, int]:
    kernels = numba_jit.kernels(fused=True)
    assert len(kernels) >= 8
    return {name: len(kernel.signatures) for name, kernel in kernels.items()}


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_warm_up_compiles_everything_a_run_needs(dtype):
    backend = Backend.from_module("numba", "test", numba_jit)  # no warm dtypes, as in a new process
    assert backend.warm_up(dtype, fused=True) > 0
    assert backend.warm_up(dtype, fused=True) == 0.0
    compiled = signatures()
    pixels = chest_crop_as(dtype)[::2, 1:]
    pixels.flags.writeable = False  # as a loaded scan's frame is
    fused_preprocess(pixels, spec(1, -1024, 40, 400, True, (224, 224), [0.485, 0.456, 0.406], [0.229, 0.224, 0.225],
                                  3))
    fused_preprocess(pixels, spec(2.0, 0.0, size=(8, 8)))
    assert signatures() == compiled
