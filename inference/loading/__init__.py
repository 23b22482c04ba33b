"""Load any supported file into a :class:`~inference.scan.Scan`: DICOM by pydicom, other images by Pillow.

The format is found from the content, never the name (DICOM files often have none). Every reader first
declares the decoded size from the header and :func:`load_scan` refuses it over ``max_bytes`` before a
pixel is decoded. A bad file raises :class:`~inference.errors.ScanError` (``NotAScanError`` for files that
hold no image at all) and nothing else.
"""

from __future__ import annotations

import ctypes
from dataclasses import replace
from pathlib import Path

from pydicom.uid import AllTransferSyntaxes

from radbench.inference.errors import ScanError
from radbench.inference.loading import decoders, dicom, images
from radbench.inference.loading.decoders import DECODER_NAMES, decode_threads
from radbench.inference.machine import physical_memory
from radbench.inference.memory_ceiling import MemoryCeilingError, TimeLimitError, default_ceiling_bytes, run_in_child
from radbench.inference.scan import Scan

__all__ = ["DECODER_NAMES", "DEFAULT_MAX_BYTES", "decode_threads", "decoder_plugins", "load_scan", "load_scan_isolated",
           "memory_budget", "processing_peak", "release_free_memory"]

#: The largest decoded image accepted by default: 2 GiB.
DEFAULT_MAX_BYTES = 2 * 1024**3
#: Peak memory of load + preprocess per byte decoded (the file's pixel data and the decoded array) and per
#: pixel of the processed frame (two float32 stage outputs), kept generous: ``radbench bench --memory`` on 8000 x
#: 8000 uncompressed films measured 10.0 bytes per pixel at 16 bits and 9.0 at 8 bits before the file's bytes were
#: decoded in place and the stages shared one float32 buffer, 6.4 and 5.4 since (a 4000 x 4000 12-bit JPEG 2000:
#: 6.9, OpenJPEG's 32-bit working copy while loading); the model says 12 and 10.
_PEAK_PER_DECODED_BYTE, _PEAK_PER_FRAME_PIXEL = 2, 8

_RELEASE_AFTER_BYTES = 1024**2  # decoded images from this size up: freed decoder memory is handed back after
_PREAMBLE = 128  # DICOM Part 10: a 128-byte preamble, then b"DICM"
_FIRST_GROUPS = (0x0002, 0x0008)  # the first group of a preamble-less file: file meta or identifying


def load_scan(path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES, decoder: str | None = None,
              cover: tuple[int, int] | None = None) -> Scan:
    """Read one file; raise ``ScanError(path, reason)`` for anything that cannot be shown as a scan.

    ``decoder`` forces one decoder by name (:data:`.decoders.DECODER_NAMES`): a file it cannot decode raises
    ``ScanError`` naming the decoders that could. ``cover`` (height, width): a JPEG 2000 frame may be decoded at the
    coarsest resolution level still covering it (``radbench batch --fast-decode``; ``Scan.fast_decode`` says so). The
    decoders run on the threads :func:`.decoders.decode_threads` allows (one by default).
    """
    path = Path(path)
    decoders.check_forced(decoder)
    try:
        return _load(path, max_bytes, decoder, cover)
    except ScanError:
        raise
    except MemoryError:
        raise ScanError(path, "not enough memory to decode the image") from None
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:  # the boundary; BaseException for a Rust plugin's PanicException
        raise ScanError(path, f"unreadable ({type(exc).__name__}: {exc})") from exc


def load_scan_isolated(path: str | Path, *, ceiling_bytes: int | None = None, timeout_s: float = 300.0,
                       threads: int | None = None) -> Scan:
    """:func:`load_scan` in a separate process that may grow by ``ceiling_bytes`` (default: a share of this
    machine's memory) and run for ``timeout_s``: a decoder bomb the checks miss costs one ``ScanError``. Its
    decoders may use ``threads`` threads (default: the CPUs this process may use, as far as they are free): the
    desktop app loads this way, one file at a time."""
    try:
        return run_in_child(_load_on_threads, path, threads, ceiling_bytes=ceiling_bytes or default_ceiling_bytes(),
                            timeout_s=timeout_s)
    except (MemoryCeilingError, TimeLimitError) as exc:
        raise ScanError(path, str(exc)) from None


def _load_on_threads(path: str | Path, threads: int | None) -> Scan:
    with decode_threads(threads):
        return load_scan(path)


def decoder_plugins() -> dict[str, tuple[str, ...]]:
    """Each compressed transfer syntax pydicom can decode -> its installed plugins in the order tried.

    An empty tuple means no plugin for that syntax is installed here (for an environment stamp).
    """
    plugins = {}
    for uid in AllTransferSyntaxes:
        if uid.is_compressed:
            try:
                plugins[uid.name] = dicom.plugin_order(uid)
            except NotImplementedError:  # no pydicom decoder at all (MPEG, H.264, ...)
                continue
    return plugins


def _load(path: Path, max_bytes: int, decoder: str | None, cover: tuple[int, int] | None) -> Scan:
    head = _head(path)
    if head[_PREAMBLE:_PREAMBLE + 4] == b"DICM" or _plausible_dicom(head):
        ds = dicom.read_dataset(path, force=True, max_bytes=max_bytes)
        _check_size(path, dicom.declared_size(path, ds), max_bytes)
        scan = dicom.dataset_to_scan(path, ds, decoder=decoder, cover=cover)
        del ds  # with its copy of the file's pixel data, before the decoders' freed memory is handed back
    else:
        with images.open_image(path) as image:
            if decoder not in (None, "pillow"):
                raise ScanError(path, f"decoder {decoder} cannot read a {image.format or 'non-DICOM'} image: only "
                                      "Pillow reads it (--decoder pillow)")
            _check_size(path, images.declared_size(path, image), max_bytes)
            scan = images.image_to_scan(path, image)
            if cover is not None:
                scan = replace(scan, fast_decode="no: not JPEG 2000")
    if scan.pixels.nbytes >= _RELEASE_AFTER_BYTES:
        release_free_memory()
    return scan


def release_free_memory() -> None:
    """Hand the C allocator's free memory back to the system (glibc's ``malloc_trim``; nothing elsewhere).

    A decoder's working buffers (OpenJPEG's 32-bit copy of the image, GDCM's several copies) are freed after
    decoding, but glibc may keep them mapped, resident until the process reuses them: after loading a large
    JPEG 2000 film that could be as much memory as the image itself, or several times it. It takes well under
    a millisecond.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _malloc_trim():
    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):  # not glibc (macOS, musl) or no C library to load
        return None


_MALLOC_TRIM = _malloc_trim()


def _head(path: Path) -> bytes:
    """The first bytes of the file, with the usual reasons it cannot be read put in words."""
    try:
        with path.open("rb") as f:
            head = f.read(_PREAMBLE + 4)
    except FileNotFoundError:
        raise ScanError(path, "no such file") from None
    except IsADirectoryError:
        raise ScanError(path, "is a folder, not a file") from None
    except PermissionError:
        raise ScanError(path, "permission denied") from None
    except OSError as exc:
        raise ScanError(path, f"cannot be read: {exc.strerror or exc}") from None
    if not head:
        raise ScanError(path, "file is empty")
    return head


def _plausible_dicom(head: bytes) -> bool:
    """An old file without the preamble starts with a group 0002 or 0008 tag, in either byte order."""
    return len(head) >= 8 and (int.from_bytes(head[:2], "little") in _FIRST_GROUPS
                               or int.from_bytes(head[:2], "big") in _FIRST_GROUPS)


def memory_budget() -> int:
    """The most memory one file may need to be processed: half this machine's physical memory."""
    return physical_memory() // 2


def processing_peak(rows: int, columns: int, decoded_bytes: int) -> int:
    """The estimated peak memory of loading and preprocessing an image (see ``_PEAK_PER_DECODED_BYTE``)."""
    return _PEAK_PER_DECODED_BYTE * decoded_bytes + _PEAK_PER_FRAME_PIXEL * rows * columns


def _check_size(path: Path, declared: tuple[int, int, int, int], max_bytes: int) -> None:
    """Refuse a declared image over ``max_bytes`` decoded, or one whose processing would not fit the budget."""
    rows, columns, frames, nbytes = declared
    size = f"declared image size {rows} × {columns} × {frames} frames"
    if nbytes > max_bytes:
        raise ScanError(path, f"{size} needs {_human(nbytes)}, over the {_human(max_bytes)} limit")
    peak, budget = processing_peak(rows, columns, nbytes), memory_budget()
    if peak > budget:
        raise ScanError(path, f"{size} would need about {_human(peak)} to process, over the {_human(budget)} "
                              "this machine allows (half its memory)")


def _human(nbytes: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} bytes"
