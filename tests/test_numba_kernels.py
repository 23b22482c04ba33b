"""The Numba backend's own machinery: min/max through order keys, how many threads a kernel runs on, and how its
bands of rows are shared out to them."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numba
import numpy as np
import pytest

from radbench.inference.backends import get_backend
from radbench.inference.backends.checks import MAX_WINDOW_WIDTH
from radbench.inference.backends.numba_jit import inputs
from radbench.inference.backends.numba_jit.bands import in_bands
from radbench.inference.backends.numba_jit.gathers import LANES, equalized_lanes, looked_up_lanes
from radbench.inference.backends.numba_jit.scalars import equalized, quotient
from radbench.inference.backends.numba_jit.stages import extremes
from radbench.inference.errors import BackendError
from radbench.inference.machine import runnable_elsewhere, usable_cpus
from radbench.inference.threads import compute_threads

RNG = np.random.default_rng(7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("values", [[-3.5, -0.0, 0.0, 2.25], [-1e30, -1e-30, 5e-45], [7.0], [-2.0, -8.0]],
                         ids=["mixed signs", "tiny and huge", "one value", "all negative"])
def test_float_extremes_through_bit_patterns_equal_numpys(dtype, values):
    image = RNG.permutation(np.resize(np.array(values, dtype=dtype), 5 * 7)).reshape(5, 7)
    lo, hi = extremes(inputs.prepared(image, "test"))
    assert (lo, hi) == (float(image.min()), float(image.max()))


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16, np.int32, np.uint32, np.int64])
def test_integer_extremes_equal_numpys(dtype):
    info = np.iinfo(dtype)
    image = RNG.integers(info.min, info.max, size=(9, 4), dtype=dtype, endpoint=True)
    image[3, 2], image[8, 0] = info.min, info.max
    assert extremes(inputs.prepared(image, "test")) == (float(info.min), float(info.max))


@numba.njit
def _quotients(a, b):
    out = np.empty_like(a)
    for i in range(a.shape[0]):
        out[i] = quotient(a[i], b[i])
    return out


def test_the_division_without_a_divide_is_the_correctly_rounded_quotient():
    """Every magnitude of numerator the window meets, widths from 1 to the largest voi() takes, and the hard cases of
    a reciprocal: mantissas of all ones, powers of two, and integers plus halves (real widths)."""
    n = 400_000
    a = RNG.choice([-1, 1], n) * np.ldexp(RNG.uniform(1, 2, n), RNG.integers(-1074, 1000, n))
    b = np.concatenate([np.ldexp(RNG.uniform(1, 2, n // 4), RNG.integers(0, 996, n // 4)),
                        np.ldexp(np.nextafter(2.0, 0), RNG.integers(0, 996, n // 4)),
                        np.ldexp(1.0, RNG.integers(0, 996, n // 4)),
                        RNG.integers(1, 1 << 16, n // 4) + 0.5 * RNG.integers(0, 2, n // 4)])
    assert b.max() <= MAX_WINDOW_WIDTH
    got, want = _quotients(a, b), a / b
    normal = np.abs(want) >= np.finfo(np.float64).tiny
    assert normal.sum() > n // 2
    assert np.array_equal(got[normal].view(np.int64), want[normal].view(np.int64))
    assert np.array_equal(got + 0.5, want + 0.5)  # a subnormal quotient may be off, and then only ever added to 0.5
    assert np.array_equal(_quotients(a, np.ones(n)), a)


@numba.njit
def _equalized_both_ways(row, lo, scale, cdf, slopes):
    """``row`` equalized by :func:`.gathers.equalized_lanes` (every whole group of lanes) and pixel by pixel."""
    lanes, one_by_one = np.zeros_like(row), np.empty_like(row)
    pairs = cdf + 1j * slopes
    for start in range(0, row.shape[0] - LANES + 1, LANES):
        equalized_lanes(row, lanes, start, lo, scale, pairs)
    for j in range(row.shape[0]):
        one_by_one[j] = equalized(row[j], lo, scale, cdf, slopes)
    return lanes, one_by_one


def test_equalize_lanes_are_the_scalar_equalization_bit_for_bit():
    """Runs whether or not this CPU has gathers (LLVM splits them where it has none): values on every bin's edge and
    centre, both clamps, -0.0, and random values; a width that is not a whole number of lanes."""
    lo, scale = -0.25, 256 / 1.5
    edges = lo + np.arange(257) / scale
    row = np.concatenate([edges, edges + 0.5 / scale, [lo - 1, lo + 1.5 + 1, -0.0, 0.0, lo, lo + 1.5],
                          RNG.uniform(lo - 0.1, lo + 1.6, 4003)]).astype(np.float32)
    cdf = np.cumsum(RNG.integers(0, 1000, 256)) / 1.0
    cdf /= cdf[-1]
    lanes, one_by_one = _equalized_both_ways(row, lo, scale, cdf, np.append(np.diff(cdf), 0.0))
    whole = row.size - row.size % LANES
    assert row.size % LANES and np.array_equal(lanes[:whole].view(np.uint32), one_by_one[:whole].view(np.uint32))
    assert not lanes[whole:].any()  # the lanes never write past the groups they were given


@numba.njit
def _looked_up_by_lanes(indices, flip, table):
    out = np.zeros(indices.shape[0], dtype=np.float32)
    for start in range(0, indices.shape[0] - LANES + 1, LANES):
        looked_up_lanes(indices, flip, table, out, start)
    return out


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_fused_lookup_lanes_fetch_table_at_index_xor_flip(dtype):
    """Every index of the dtype (and the signed dtype's flip of the sign bit), a width that is not a whole number of
    lanes; nothing is written past the groups of lanes."""
    bits = 8 * np.dtype(dtype).itemsize
    indices = np.concatenate([np.arange(1 << bits), RNG.integers(0, 1 << bits, 13)]).astype(dtype)
    table = RNG.random(1 << bits, dtype=np.float32)
    whole = indices.size - indices.size % LANES
    for flip in (dtype(0), dtype(1 << (bits - 1))):
        got = _looked_up_by_lanes(indices, flip, table)
        assert indices.size % LANES and np.array_equal(got[:whole], table[indices[:whole] ^ flip])
        assert not got[whole:].any()


def test_prepared_inputs_are_read_only_contiguous_native_and_never_float16():
    image = np.asfortranarray(np.arange(12, dtype=">f2").reshape(3, 4))
    prepared = inputs.prepared(image, "test")
    assert prepared.dtype == np.float32 and prepared.flags.c_contiguous and not prepared.flags.writeable
    np.testing.assert_array_equal(prepared, image)


def threads_of_one_call(pixels: int) -> int:
    before = inputs.threads_used.copy()
    threads = inputs.threads_for(pixels)
    assert inputs.threads_used - before == {threads: 1}
    return threads


def test_small_images_run_on_one_thread_and_large_ones_on_at_most_the_configured_threads():
    assert threads_of_one_call(inputs.SERIAL_BELOW - 1) == 1
    assert 1 <= threads_of_one_call(inputs.SERIAL_BELOW) <= numba.get_num_threads()
    with compute_threads(1):
        assert threads_of_one_call(inputs.SERIAL_BELOW) == 1


def band_calls(threads: int, bands: int = 40, **options) -> list[tuple[int, int, int, object]]:
    """The calls ``in_bands`` makes: (thread id, first, last, the thread's own row or None). Each thread's first call
    waits until every thread has made one, so that each gets some bands however busy the machine."""
    calls, everyone = [], threading.Barrier(threads)

    def kernel(*args):
        *own, first, last, total = args
        assert total == bands
        first_call = threading.get_ident() not in {thread for thread, *_ in calls}
        calls.append((threading.get_ident(), first, last, own[0] if own else None))
        if first_call:
            everyone.wait(timeout=30)

    in_bands(kernel, bands, threads, **options)
    return calls


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_every_band_is_handled_once_and_each_thread_counts_into_its_own_row(threads):
    tables = np.zeros((threads, 8))
    calls = band_calls(threads, per_thread=tables)
    assert sorted(b for _, first, last, _ in calls for b in range(first, last)) == list(range(40))
    assert len({thread for thread, *_ in calls}) == threads
    rows_by_thread = {}
    for thread, _, _, own in calls:
        rows_by_thread.setdefault(thread, set()).add(own.__array_interface__["data"][0])
    assert all(len(rows) == 1 for rows in rows_by_thread.values())
    assert len(set.union(*rows_by_thread.values())) == threads


def test_an_error_in_a_helper_thread_is_raised_in_the_caller_after_every_thread_stopped():
    caller, running = threading.get_ident(), []

    def kernel(first, last, bands):
        running.append(first)
        time.sleep(0.002)
        running.remove(first)
        if threading.get_ident() != caller:
            raise ValueError("band refused")

    with pytest.raises(ValueError, match="band refused"):
        in_bands(kernel, 40, 2)
    assert running == []


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


@pytest.mark.slow
@pytest.mark.skipif(usable_cpus() < 2, reason="one usable CPU: every kernel runs on one thread anyway")
def test_two_threads_give_one_threads_model_input_bit_for_bit_staged_and_fused(monkeypatch):
    from radbench.inference.preprocessing import PreprocessSpec, preprocess

    monkeypatch.setattr(inputs, "runnable_elsewhere", lambda: 0)  # as on an idle machine, however busy this one is
    numba_backend = get_backend("numba")
    frame = RNG.integers(0, 4096, size=(1100, 1000), dtype=np.uint16)  # over SERIAL_BELOW: parallel kernels
    spec = PreprocessSpec(1.0, -1024.0, None, None, False, (224, 224), (0.5,), (0.25,), 3, True)
    inputs_by_threads = {}
    for threads in (1, 2):
        before = inputs.threads_used.copy()
        with compute_threads(threads):
            inputs_by_threads[threads] = (preprocess(frame, spec, numba_backend),
                                          numba_backend.fused(frame, spec))
        assert max(inputs.threads_used - before) == threads  # the full-size passes; the 224 x 224 ones run on one
    for one, two in zip(*inputs_by_threads.values()):
        np.testing.assert_array_equal(one, two)


def test_equalize_after_the_window_is_right_when_its_output_changed_in_between():
    """The window stage notes its output's range for equalize; the note is a guess that the histogram's pass checks,
    so a changed output (another range, or NaN) still gives the vectorized backend's result, or its refusal."""
    numba, vectorized = get_backend("numba"), get_backend("vectorized")
    image = RNG.normal(100.0, 30.0, size=(64, 48)).astype(np.float32)
    for change in ("none", "new range", "same range", "nan"):
        buffer = np.empty_like(image)
        windowed = numba.window(image, 100.0, 120.0, False, out=buffer)
        if change == "new range":
            windowed *= 0.5
        elif change == "same range":
            windowed[5:9] = windowed[0, 0]
        elif change == "nan":
            windowed[7, 7] = np.nan
        expected = windowed.copy()
        if change == "nan":
            with pytest.raises(BackendError, match=r"^equalize refused: the image has 1 non-finite pixel value "):
                numba.equalize(windowed, out=windowed)
            continue
        got = numba.equalize(windowed, out=windowed)
        assert np.array_equal(got, vectorized.equalize(expected)), change



@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["in place", "float64"])
def test_the_window_refuses_nan_and_infinity_with_the_inputs_count_even_in_place(dtype, threads):
    """With a window given, the extremes come from the window's own pass, as it writes ``out``: in place, the count
    of NaN and infinite values must still be the input's (64 bands on 2 threads, several steps per row)."""
    height, width = 1100, inputs.SERIAL_BELOW // 1100 + 1
    places = {"first": [(0, 0)], "end of a row": [(3, width - 1)], "one band, three": [(500, 7), (500, 900), (501, 3)],
              "many bands": [(i, 37 * i % width) for i in range(0, height, 90)], "last": [(height - 1, width - 1)]}
    clean = RNG.normal(0.0, 1000.0, size=(height, width)).astype(dtype)
    for name, where in places.items():
        for bad in (np.nan, -np.nan, np.inf, -np.inf):
            image = clean.copy()
            image[tuple(np.array(where).T)] = bad
            out = image if dtype == np.float32 else np.empty(image.shape, np.float32)
            with compute_threads(threads), pytest.raises(BackendError) as error:
                get_backend("numba").window(image, 10.0, 400.0, True, out=out)
            n = len(where)
            assert str(error.value) == (f"window refused: the image has {n} non-finite pixel value{'s' * (n != 1)} "
                                        "(NaN or infinity)"), (name, bad)
    with compute_threads(threads):
        out = clean.copy() if dtype == np.float32 else np.empty(clean.shape, np.float32)
        got = get_backend("numba").window(out if dtype == np.float32 else clean, 10.0, 400.0, True, out=out)
    np.testing.assert_array_equal(got, get_backend("vectorized").window(clean, 10.0, 400.0, True))


@pytest.mark.parametrize("threads", [1, 2])
def test_resize_adds_the_taps_in_order_whatever_their_count(threads):
    """The row pass adds four input rows per loop and the rest one by one. Shrinking by a whole factor F (2 to 12
    taps per output row, every remainder of four) with each output's first two input rows +2**60 and -2**60: added
    in order they cancel exactly and the small values after them survive; any other order loses some of them."""
    for factor in (2, 3, 4, 5, 6, 8, 10, 12):
        image = RNG.random((1200, 900), dtype=np.float32)
        image[::factor], image[1::factor] = 2.0**60, -(2.0**60)
        with compute_threads(threads):
            got = get_backend("numba").resize(image, 1200 // factor, 128)
        expected = get_backend("vectorized").resize(image, 1200 // factor, 128)
        np.testing.assert_array_equal(got, expected, err_msg=f"factor {factor}")
        assert factor == 2 or np.all(expected > 0)  # the small values survived
