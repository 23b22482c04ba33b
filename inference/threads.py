"""How many threads the compute uses, set in one place: Numba's parallel kernels and ONNX Runtime's intra-op pool.

:func:`compute_threads` is the one switch every front end uses (``--threads N`` of ``predict``, ``batch`` and
``bench``, and the desktop app's Threads box)::

    with compute_threads(2) as threads:     # Numba's kernels on 2 threads, ONNX Runtime sessions on 2
        pipeline.run(path)                  # threads.numba == 2, threads.onnxruntime == 2

Both settings belong to the calling thread, for the duration of the block, and are restored when it ends:
Numba's ``set_num_threads`` is per thread (a new thread starts at ``NUMBA_NUM_THREADS``), and the ONNX Runtime
count is a context variable that :class:`~inference.model.Model` reads when it runs, using (and keeping) a session
made with that many intra-op threads. So a job on a worker thread enters the block on that thread.

Without a count (``None``) the defaults apply, as before this switch existed: Numba on ``NUMBA_NUM_THREADS``
threads (Numba's default: every CPU this process may use, see :func:`inference.machine.usable_cpus`, unless the
environment variable says otherwise), ONNX Runtime on :data:`DEFAULT_ONNX_THREADS`. Numba is imported only when a
count is given or when it is already loaded: a run that never touches Numba does not pay for its import.

Numba's count is a ceiling: the numba backend runs a kernel on fewer threads when its image is small or other
processes hold CPUs (:func:`inference.backends.numba_jit.inputs.threads_for`), never on more.

The naive and vectorized backends do not use these threads: naive is plain Python, and vectorized is NumPy on one
thread, except a resize that enlarges (a frame smaller than the model input, a heatmap): its matrix products run on
OpenBLAS's own thread pool (sized at start-up by ``OPENBLAS_NUM_THREADS``).
"""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from radbench.inference.errors import RadBenchError

#: ONNX Runtime's intra-op threads when no count is set: one (a small CNN at batch 1 gains little from more, and an
#: idle second pool would compete with Numba's kernels for the cores).
DEFAULT_ONNX_THREADS = 1

_ONNX_THREADS: contextvars.ContextVar[int] = contextvars.ContextVar("radbench_onnx_threads",
                                                                    default=DEFAULT_ONNX_THREADS)


class ThreadsError(RadBenchError, ValueError):
    """A thread count outside what Numba can run (``str``: the allowed range and the count given)."""


@dataclass(frozen=True)
class Threads:
    """The threads a run used: Numba's parallel kernels (None when Numba did not run) and ONNX Runtime's infer."""

    numba: int | None
    onnxruntime: int

    def describe(self) -> str:
        """"Numba up to 2 threads, ONNX Runtime 1 thread" (the numba backend runs a kernel on fewer threads than set
        when its image is small or other processes hold CPUs); without Numba: "ONNX Runtime 1 thread (no Numba
        kernels)"."""
        ort = f"ONNX Runtime {_threads(self.onnxruntime)}"
        if self.numba is None:
            return f"{ort} (no Numba kernels)"
        return f"Numba {'up to ' * (self.numba > 1)}{_threads(self.numba)}, {ort}"

    def as_dict(self) -> dict[str, int | None]:
        return {"numba": self.numba, "onnxruntime": self.onnxruntime}


def thread_limit() -> int:
    """The most threads Numba can run here: ``numba.config.NUMBA_NUM_THREADS`` (its default is every usable CPU)."""
    import numba

    return int(numba.config.NUMBA_NUM_THREADS)


def check_threads(count: object) -> int:
    """``count`` if it is a whole number from 1 to :func:`thread_limit`; otherwise :class:`ThreadsError` naming the
    allowed range, e.g. "threads must be a whole number from 1 to 2 (Numba's NUMBA_NUM_THREADS here), not 3"."""
    limit = thread_limit()
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= limit:
        raise ThreadsError(f"threads must be a whole number from 1 to {limit} (Numba's NUMBA_NUM_THREADS here), "
                           f"not {count!r}")
    return count


@contextmanager
def compute_threads(count: int | None = None) -> Iterator[Threads]:
    """On the calling thread, inside the block: Numba's parallel kernels run on ``count`` threads and ONNX Runtime
    infers on ``count`` intra-op threads; ``None`` gives the defaults (see the module). The previous settings are
    restored when the block ends, also after an exception. Yields the :class:`Threads` in force (``numba`` is None
    when no count is given and Numba is not loaded: it will start at its default, ``NUMBA_NUM_THREADS``).

    Raises :class:`ThreadsError` for a count below 1 or above :func:`thread_limit`, before changing anything.
    """
    if count is not None:
        check_threads(count)
    numba = sys.modules.get("numba") if count is None else _numba()
    previous = numba.get_num_threads() if numba is not None else None
    if numba is not None:
        numba.set_num_threads(count if count is not None else thread_limit())
    token = _ONNX_THREADS.set(count if count is not None else DEFAULT_ONNX_THREADS)
    try:
        yield current_threads()
    finally:
        _ONNX_THREADS.reset(token)
        if numba is not None:
            numba.set_num_threads(previous)


def current_threads(numba: bool | None = None) -> Threads:
    """The settings in force on the calling thread. ``numba``: whether to report Numba's count (True: import Numba if
    needed; False: report None, e.g. for a backend that does not use it; None: only if Numba is loaded)."""
    module = _numba() if numba else sys.modules.get("numba") if numba is None else None
    return Threads(module.get_num_threads() if module is not None else None, onnx_threads())


def onnx_threads() -> int:
    """ONNX Runtime's intra-op threads for the calling thread's runs (:data:`DEFAULT_ONNX_THREADS` unless set)."""
    return _ONNX_THREADS.get()


def _numba():
    import numba

    return numba


def _threads(count: int) -> str:
    return f"{count} thread{'s' * (count != 1)}"
