"""The Numba backend's own machinery: min/max through order keys, and how many threads a kernel runs on."""

from __future__ import annotations

import subprocess
import sys
import time

import numba
import numpy as np
import pytest

from radbench.inference.backends import get_backend
from radbench.inference.backends.numba_jit import inputs
from radbench.inference.backends.numba_jit.stages import extremes
from radbench.inference.machine import runnable_elsewhere, usable_cpus

RNG = np.random.default_rng(7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("values", [[-3.5, -0.0, 0.0, 2.25], [-1e30, -1e-30, 5e-45], [7.0], [-2.0, -8.0]],
                         ids=["mixed signs", "tiny and huge", "one value", "all negative"])
def test_float_extremes_through_order_keys_equal_numpys(dtype, values):
    image = RNG.permutation(np.resize(np.array(values, dtype=dtype), 5 * 7)).reshape(5, 7)
    lo, hi = extremes(inputs.prepared(image, "test"))
    assert (lo, hi) == (float(image.min()), float(image.max()))


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16, np.int32, np.uint32, np.int64])
def test_integer_extremes_equal_numpys(dtype):
    info = np.iinfo(dtype)
    image = RNG.integers(info.min, info.max, size=(9, 4), dtype=dtype, endpoint=True)
    image[3, 2], image[8, 0] = info.min, info.max
    assert extremes(inputs.prepared(image, "test")) == (float(info.min), float(info.max))


def test_prepared_inputs_are_read_only_contiguous_native_and_never_float16():
    image = np.asfortranarray(np.arange(12, dtype=">f2").reshape(3, 4))
    prepared = inputs.prepared(image, "test")
    assert prepared.dtype == np.float32 and prepared.flags.c_contiguous and not prepared.flags.writeable
    np.testing.assert_array_equal(prepared, image)


def threads_of_one_call(pixels: int) -> int:
    before = inputs.threads_used.copy()
    with inputs.threads_for(pixels):
        threads = numba.get_num_threads()
    assert inputs.threads_used - before == {threads: 1}
    return threads


def test_small_images_run_on_one_thread_and_the_setting_comes_back():
    configured = numba.get_num_threads()
    assert threads_of_one_call(inputs.SERIAL_BELOW - 1) == 1
    assert numba.get_num_threads() == configured


@pytest.mark.skipif(usable_cpus() < 2, reason="one usable CPU: every kernel runs on one thread anyway")
def test_a_busy_process_takes_its_cpu_out_of_the_kernels_threads():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        deadline = time.monotonic() + 10
        while runnable_elsewhere() < 1 and time.monotonic() < deadline:  # until the scheduler shows it running
            time.sleep(0.01)
        assert runnable_elsewhere() >= 1
        threads = threads_of_one_call(inputs.SERIAL_BELOW)
        assert threads <= max(1, usable_cpus() - 1)
    finally:
        busy.kill()
        busy.wait()


def test_the_fused_path_is_the_numba_backends_registered_whole_pipeline_entry():
    assert get_backend("numba").fused is not None
    assert get_backend("vectorized").fused is None and get_backend("naive").fused is None
