"""How the Numba kernels run in parallel: bands of rows shared out to threads as they come free.

Every parallel kernel is a serial ``@njit(nogil=True)`` function over a range of bands, called with its arguments and
then ``first, last, bands``: it handles the rows of bands ``first`` to ``last - 1`` when the rows are cut into
``bands`` equal bands (:func:`band_rows`). :func:`in_bands` calls it from the calling thread and from helper threads
of that thread, each taking the next few bands until none are left. A kernel releases the GIL while it runs, so the
threads compute at the same time; a thread slowed down by another process simply takes fewer bands.

Why not Numba's ``parallel=True`` and ``prange``: each such kernel compiles a second function for its loop body,
which made the first run's compile about 60 % longer (7.4 s of CPU instead of 4.6 s for every stage kernel), for
the same speed on this 2-core machine (a parallel loop's threads are woken the same way).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable

import numpy as np
from numba import njit

#: Chunks of bands each thread's share is cut into: a thread that shares its CPU with another process leaves the
#: bands it did not reach to the others.
_CHUNKS_PER_THREAD = 4


@njit(cache=True, inline="always")
def band_rows(band, bands, rows):
    """The first row of band ``band`` when ``rows`` rows are cut into ``bands`` bands (``band == bands``: ``rows``)."""
    return band * rows // bands


def in_bands(kernel: Callable, bands: int, threads: int, *args, per_thread: np.ndarray | None = None) -> None:
    """``kernel(*args, first, last, bands)`` over every band from 0 to ``bands`` - 1, on ``threads`` threads (the
    caller's included); the first exception a thread meets is raised here once every thread has stopped. With
    ``per_thread``, the k-th thread's calls get ``per_thread[k]`` after ``args`` (a table of its own to count into:
    ``threads`` rows at least)."""
    if threads <= 1 or bands <= 1:
        kernel(*args, *_own(per_thread, 0), 0, bands, bands)
        return
    chunk = max(1, bands // (threads * _CHUNKS_PER_THREAD))
    starts = itertools.count(0, chunk)  # next() is atomic under the GIL: each chunk goes to one thread
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        own = _own(per_thread, thread)
        try:
            while (first := next(starts)) < bands:
                kernel(*args, *own, first, min(bands, first + chunk), bands)
        except BaseException as exc:  # noqa: BLE001 - raised again in the calling thread
            errors.append(exc)

    helpers = _helpers(threads - 1)
    for thread, helper in enumerate(helpers, start=1):
        helper.start(lambda thread=thread: work(thread))
    work(0)
    for helper in helpers:
        helper.wait()
    if errors:
        raise errors[0]


def _own(per_thread: np.ndarray | None, thread: int) -> tuple:
    return () if per_thread is None else (per_thread[thread],)


class _Helper:
    """A daemon thread that runs one job at a time for the thread that owns it."""

    def __init__(self) -> None:
        self._go, self._done = threading.Event(), threading.Event()
        self._job: Callable[[], None] | None = None
        threading.Thread(target=self._loop, name="radbench-numba-band", daemon=True).start()

    def start(self, job: Callable[[], None]) -> None:
        self._job = job
        self._done.clear()
        self._go.set()

    def wait(self) -> None:
        self._done.wait()

    def _loop(self) -> None:
        while True:
            self._go.wait()
            self._go.clear()
            self._job()
            self._done.set()


_local = threading.local()  # each calling thread has its own helpers: two callers never wait for each other


def _helpers(count: int) -> list[_Helper]:
    helpers = getattr(_local, "helpers", None)
    if helpers is None:
        helpers = _local.helpers = []
    while len(helpers) < count:
        helpers.append(_Helper())
    return helpers[:count]


def _forget_helpers() -> None:
    """In a forked child: the parent's helper threads do not exist there."""
    _local.__dict__.pop("helpers", None)


os.register_at_fork(after_in_child=_forget_helpers)
