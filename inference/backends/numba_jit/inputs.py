"""What every Numba kernel is handed: one input preparation, and how many threads a kernel of a given size uses."""

from __future__ import annotations

from collections import Counter

import numpy as np
from numba import get_num_threads, njit

from radbench.inference.backends.checks import check_image
from radbench.inference.machine import runnable_elsewhere, usable_cpus

#: Below this many pixels a kernel runs on one thread: waking another costs more than it saves (on a 400 x 400
#: frame, 2-thread histogram and equalize passes ran 1.5-3x slower than 1-thread ones; on 1955 x 1841, 1.8-2.4x
#: faster).
SERIAL_BELOW = 1 << 20

#: How many kernel calls ran on how many threads, since the process started (the benchmark reports it).
threads_used: Counter[int] = Counter()

#: Bands of rows a parallel kernel is cut into (:mod:`.bands`): enough that a thread slowed down by another process
#: leaves its share to the others, few enough that each band's set-up is negligible.
_BANDS = 64


def prepared(image: np.ndarray, stage: str, *, finite: bool = True) -> np.ndarray:
    """``image`` checked as ``stage`` checks it, as a read-only, C-contiguous, native-endian array (float16 as
    float32: Numba has none, and float32 holds every float16 exactly).

    Always read-only, so that the kernels ``warm_up`` compiles serve a scan's read-only frames and the
    writeable buffers of earlier stages alike. ``finite=False`` leaves the NaN/infinity check to the caller, which
    makes it in a pass it needs anyway (:func:`.stages.extremes` with the stage's name).
    """
    image = check_image(image, stage, all_finite if finite else lambda _: True)
    dtype = np.float32 if image.dtype.kind == "f" and image.dtype.itemsize == 2 else image.dtype.newbyteorder("=")
    image = np.ascontiguousarray(image, dtype=dtype).view()
    image.flags.writeable = False
    return image


def bands_of(image: np.ndarray) -> int:
    """How many bands of rows a parallel loop over ``image`` is cut into (each under 2**32 pixels)."""
    return min(image.shape[0], max(_BANDS, -(-image.size // 2**31)))


def threads_for(pixels: int) -> int:
    """The threads a kernel over ``pixels`` pixels runs on: one below :data:`SERIAL_BELOW`; otherwise the calling
    thread's Numba thread setting (:func:`inference.threads.compute_threads`), but no more than the CPUs other
    processes leave free right now.

    A parallel kernel ends only when its slowest thread does: a thread that shares its CPU with another busy
    process makes the whole kernel wait for the scheduler (2-thread kernels ran 5-10x slower than 1-thread ones
    next to one busy process on a 2-core machine). Counted in :data:`threads_used`.
    """
    threads = 1 if pixels < SERIAL_BELOW else max(1, min(get_num_threads(), usable_cpus() - runnable_elsewhere()))
    threads_used[threads] += 1
    return threads


def all_finite(image: np.ndarray) -> bool:
    """No NaN or infinity in a float image, in one pass: the largest exponent field is not all ones.

    Integer max over the bits vectorizes without ``fastmath``, unlike a float reduction: about 5x faster than
    NumPy's min and max on a 1955 x 1841 float32 frame (0.18 against 0.9 ms), fast enough that a second thread
    would cost more to wake than it saves.
    """
    image = np.ascontiguousarray(image, dtype=image.dtype.newbyteorder("="))  # the bits as this machine reads them
    if image.dtype.itemsize == 8:
        return _exponent_max(image.view(np.uint64), np.uint64(0x7FF0000000000000)) != 0x7FF0000000000000
    if image.dtype.itemsize == 4:
        return _exponent_max(image.view(np.uint32), np.uint32(0x7F800000)) != 0x7F800000
    return bool(np.isfinite(image).all())  # float16: rare, and NumPy is fine


@njit(cache=True, nogil=True)
def _exponent_max(bits, mask):
    highest = bits.dtype.type(0)
    for i in range(bits.shape[0]):
        row = bits[i]
        for j in range(row.shape[0]):
            highest = max(highest, row[j] & mask)
    return highest
