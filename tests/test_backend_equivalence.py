"""The three backends compute the same thing: every stage's float output agrees to 1e-5 (max abs diff).

Each stage is fed the same input in every backend (the vectorized output of the stage before), so a
disagreement points at one stage. They share the specification's float64 arithmetic and summation order,
so in practice they agree bit for bit; 1e-5 is the promise the app makes when it compares their timings.
"""

from __future__ import annotations

import numpy as np
import pytest
from backend_samples import BACKENDS, SAMPLE_NAMES, sample
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

TOLERANCE = 1e-5
RESIZE_TARGETS = {"shrink": (0.4, 0.3), "enlarge": (1.7, 2.3), "mixed": (0.5, 1.6), "equal": (1.0, 1.0)}


FEED = [backend.name for backend in BACKENDS].index("vectorized")  # whose output feeds the next stage


def run_stages(pixels, slope, intercept, center, width, invert, size):
    """Every stage in every backend on shared inputs: ``{stage: [output per backend]}``."""
    outputs = {}

    def fed(stage):
        return outputs[stage][FEED]

    stages = [
        ("rescale", lambda b: b.rescale(pixels, slope, intercept)),
        ("window", lambda b: b.window(fed("rescale"), center, width, invert)),
        ("window own range", lambda b: b.window(fed("rescale"), None, None, invert)),
        ("equalize", lambda b: b.equalize(fed("window"))),
        ("equalize rescaled", lambda b: b.equalize(fed("rescale"))),
        ("resize", lambda b: b.resize(fed("equalize"), *size)),
        ("normalize", lambda b: b.normalize(fed("resize"), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 3)),
    ]
    for stage, call in stages:
        outputs[stage] = [call(backend) for backend in BACKENDS]
    return outputs


def assert_agree(outputs):
    for stage, results in outputs.items():
        for backend, result in zip(BACKENDS, results):
            assert result.dtype == np.float32, (stage, backend.name)
            assert result.shape == results[0].shape, (stage, backend.name)
            diff = np.max(np.abs(result.astype(np.float64) - results[0]))
            assert diff <= TOLERANCE, f"{stage}: {backend.name} differs from {BACKENDS[0].name} by {diff}"


@pytest.mark.parametrize("target", RESIZE_TARGETS)
@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_backends_agree_on_real_scans(name, target):
    s = sample(name)
    fy, fx = RESIZE_TARGETS[target]
    size = (round(s.pixels.shape[0] * fy), round(s.pixels.shape[1] * fx))
    center, width = (s.center, s.width) if s.center is not None else (600.0, 1200.0)
    assert_agree(run_stages(s.pixels, s.slope, s.intercept, center, width, s.invert, size))


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (7, 5)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32])
def test_backends_agree_on_edge_shapes(shape, dtype):
    pixels = np.random.default_rng(7).integers(0, 200, shape).astype(dtype)
    for size in ((1, 1), (3, 11), (shape[0], shape[1])):
        assert_agree(run_stages(pixels, 2.0, -50.0, 100.0, 1.0, False, size))


_DTYPE_ELEMENTS = {
    np.uint8: st.integers(0, 255),
    np.uint16: st.integers(0, 65535),
    np.int16: st.integers(-32768, 32767),
    np.float32: st.floats(-1e6, 1e6, width=32),
}


@st.composite
def scans(draw):
    """A small image of any supported dtype, header values, a window inside its range, a resize target."""
    dtype = draw(st.sampled_from(list(_DTYPE_ELEMENTS)))
    shape = (draw(st.integers(1, 12)), draw(st.integers(1, 12)))
    pixels = draw(hnp.arrays(dtype, shape, elements=_DTYPE_ELEMENTS[dtype]))
    slope = draw(st.sampled_from([1.0, 0.5, -2.0]) | st.floats(0.001, 100.0))
    intercept = draw(st.sampled_from([0.0, -1024.0]) | st.floats(-1e4, 1e4))
    lo, hi = float(pixels.min()) * slope + intercept, float(pixels.max()) * slope + intercept
    center = min(lo, hi) + draw(st.floats(0.0, 1.0)) * abs(hi - lo)
    width = draw(st.just(1.0) | st.floats(1.0, max(1.0, 2 * abs(hi - lo))))
    size = (draw(st.integers(1, 16)), draw(st.integers(1, 16)))
    return pixels, slope, intercept, center, width, draw(st.booleans()), size


@settings(max_examples=60, deadline=None)
@given(scans())
def test_backends_agree_on_any_small_image(case):
    assert_agree(run_stages(*case))
