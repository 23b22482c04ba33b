"""Which decoder reads a file: the measured default per transfer syntax, one forced by name, and their threads.

A compressed DICOM file is decoded by the first of its transfer syntax's decoders (:func:`candidates`) that succeeds,
in the order measured fastest among those that give pydicom's reference pixels (the table, its command and the
machine are in the README, "Decoders"). Two orders exist, because two decoders can use threads of their own: Pillow's
OpenJPEG (``OPJ_NUM_THREADS``) and GDCM's JPEG 2000 codec (always every CPU, which is why it is no default). Decoding
runs on one thread unless the caller allows more with :func:`decode_threads` (``predict`` and the desktop app allow
the CPUs this process may use; each ``batch`` worker its share): with one thread the single-threaded order applies,
with two or more free CPUs the threaded one.

A user may force one decoder by name (``--decoder NAME``, :func:`check_forced`): only that one runs, and a file it
cannot decode is an error naming the decoders that could, never a silent fallback to another.
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from pydicom.uid import (
    HTJ2K,
    JPEG2000,
    UID,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from radbench.inference.errors import RadBenchError
from radbench.inference.machine import runnable_elsewhere, usable_cpus

#: Every decoder name a user can force: pydicom's plugins, then RadBench's last resorts (``last_resort.py``).
#: ``pydicom`` is pydicom's own code: uncompressed and deflated data, and RLE.
PLUGIN_NAMES = ("gdcm", "pylibjpeg", "pillow", "pydicom", "pyjpegls")
DECODER_NAMES = (*PLUGIN_NAMES, "gdcm-direct", "pillow-frames")
#: What the ``decoder`` column says for PNG, JPEG, TIFF ... files; ``--decoder pillow`` accepts them too.
IMAGE_DECODER = "Pillow"

_J2K = (JPEG2000Lossless, JPEG2000)
#: Decoders per transfer syntax in the order tried when decoding on one thread: fastest correct first (README,
#: "Decoders"); installed plugins not named come after, then the last resorts.
ONE_THREAD: dict[UID, tuple[str, ...]] = {
    **dict.fromkeys(_J2K, ("pylibjpeg", "pillow", "gdcm")),
    **dict.fromkeys((HTJ2K, HTJ2KLossless, HTJ2KLosslessRPCL), ("pylibjpeg",)),
    JPEGBaseline8Bit: ("pillow-frames", "pillow", "gdcm", "pylibjpeg"),
    JPEGExtended12Bit: ("pylibjpeg", "pillow", "gdcm"),
    JPEGLossless: ("gdcm", "pylibjpeg"),
    JPEGLosslessSV1: ("gdcm", "pylibjpeg"),
    JPEGLSLossless: ("gdcm", "pylibjpeg", "pyjpegls"),
    JPEGLSNearLossless: ("gdcm", "pylibjpeg", "pyjpegls"),
    RLELossless: ("pylibjpeg", "pydicom"),
}
#: The order with two or more threads free: only JPEG 2000 changes, Pillow's OpenJPEG being the one decoder whose
#: threads can be set.
THREADED: dict[UID, tuple[str, ...]] = {**ONE_THREAD, **dict.fromkeys(_J2K, ("pillow", "pylibjpeg", "gdcm"))}
#: Decoders that run on threads of their own, for which transfer syntaxes.
_OPENJPEG_THREADS = {"pillow": frozenset(_J2K)}
_GDCM_ALL_CPUS = frozenset(_J2K)  # GDCM's JPEG 2000 codec starts a thread per online CPU, whatever it is told

_THREADS: contextvars.ContextVar[tuple[int, bool]] = contextvars.ContextVar("radbench_decode_threads",
                                                                            default=(1, True))
_ENVIRONMENT = threading.Lock()


@contextmanager
def decode_threads(count: int | None, *, adaptive: bool = True) -> Iterator[None]:
    """Inside the block, on the calling thread, decoders may use up to ``count`` threads (``None``: the CPUs this
    process may use). ``adaptive``: only as many as other processes leave free at the moment of decoding (as the
    numba backend's kernels do); ``False`` uses ``count`` whatever the load (the decoder benchmark). The default,
    outside any block, is one thread."""
    if count is not None and count < 1:
        raise ValueError(f"decode threads must be at least 1, not {count}")
    token = _THREADS.set((count or usable_cpus(), adaptive))
    try:
        yield
    finally:
        _THREADS.reset(token)


def threads_now() -> int:
    """The threads a decoder may use now: the :func:`decode_threads` setting, adaptively capped by the free CPUs."""
    count, adaptive = _THREADS.get()
    if count == 1 or not adaptive:
        return count
    return max(1, min(count, usable_cpus() - runnable_elsewhere()))


def order(syntax: UID, threads: int) -> tuple[str, ...]:
    """The preferred decoders of a transfer syntax (not all may be installed), for decoding on ``threads``."""
    return (THREADED if threads > 1 else ONE_THREAD).get(syntax, ())


def threads_of(decoder: str, syntax: UID, threads: int) -> int:
    """The threads ``decoder`` ran on for ``syntax`` when ``threads`` were allowed."""
    if syntax in _OPENJPEG_THREADS.get(decoder, ()):
        return threads
    if decoder == "gdcm" and syntax in _GDCM_ALL_CPUS:
        return os.cpu_count() or 1
    return 1


@contextmanager
def openjpeg_threads(count: int) -> Iterator[None]:
    """Pillow's OpenJPEG decodes on ``count`` threads inside the block: it reads ``OPJ_NUM_THREADS`` when it starts a
    decode. The environment is the process's, so the block holds a lock (decodes in one process take turns)."""
    with _ENVIRONMENT:
        before = os.environ.get("OPJ_NUM_THREADS")
        os.environ["OPJ_NUM_THREADS"] = str(count)
        try:
            yield
        finally:
            if before is None:
                os.environ.pop("OPJ_NUM_THREADS", None)
            else:
                os.environ["OPJ_NUM_THREADS"] = before


class DecoderError(RadBenchError, ValueError):
    """No decoder has the name asked for."""


def check_forced(name: str | None) -> str | None:
    """``name`` if it names a decoder (:class:`DecoderError` naming the choices otherwise); ``None`` stays ``None``."""
    if name is not None and name not in DECODER_NAMES:
        raise DecoderError(f"no decoder named {name!r}; choose one of {', '.join(DECODER_NAMES)}")
    return name
