"""Every installed decoder timed on each file, on one CPU and on its own threads: ``radbench bench --decoders``.

Each (file, decoder) is timed as RadBench decodes it, ``load_scan(path, decoder=NAME)`` (reading the file, the
codestream checks and the decode; the first two cost every decoder alike), the decoders interleaved round by round
so that machine noise hits all alike, median of the rounds. Two passes:

- **1 CPU**: the process pinned to one CPU (``sched_setaffinity``) and decoders told to use one thread. GDCM's
  JPEG 2000 codec starts a thread per online CPU whatever it is told; pinned, its threads share the one CPU.
- **own threads**: every CPU this process may use, and decoders that take a thread count (Pillow's OpenJPEG) told
  to use them all; the others run as they do (GDCM's JPEG 2000 codec on its own threads, the rest on one).

Every decode is checked against pydicom's reference: ``pixel_array`` of the file with pydicom's default plugin
order (GDCM first), the palette applied as RadBench applies it. A decoder that fails says why.

The default set of files (:data:`CORPUS`) covers every compressed transfer syntax of the bundled samples and of
pydicom's and pydicom-data's test files, opened by name (``get_testdata_file(name, download=False)``).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from radbench.inference.errors import RadBenchError, ScanError
from radbench.inference.loading import decode_threads, load_scan
from radbench.inference.loading.dicom import decoder_choices
from radbench.inference.machine import usable_cpus

ONE_CPU, OWN_THREADS = "1 CPU", "own threads"
#: pydicom and pydicom-data test files by transfer syntax (with the bundled samples: the README's decoder table).
CORPUS = (
    "RG1_J2KR.dcm", "RG3_J2KR.dcm", "MR2_J2KR.dcm", "693_J2KR.dcm", "US1_J2KR.dcm", "emri_small_jpeg_2k_lossless.dcm",
    "RG1_J2KI.dcm", "MR2_J2KI.dcm", "693_J2KI.dcm", "US1_J2KI.dcm",
    "color3d_jpeg_baseline.dcm", "examples_ybr_color.dcm", "SC_rgb_jpeg.dcm",
    "JPGExtended.dcm", "JPEG-lossy.dcm",
    "JPEG-LL.dcm", "JPGLosslessP14SV1_1s_1f_8b.dcm", "SC_rgb_jpeg_gdcm.dcm",
    "emri_small_jpeg_ls_lossless.dcm", "MR_small_jpeg_ls_lossless.dcm",
    "JPEGLSNearLossless_16.dcm", "SC_rgb_jls_lossy_line.dcm",
    "OBXXXX1A_rle_2frame.dcm", "emri_small_RLE.dcm", "SC_rgb_rle_32bit_2frame.dcm", "MR_small_RLE.dcm",
    "image_dfl.dcm", "CT_small.dcm",
)


@dataclass(frozen=True)
class DecoderTiming:
    """One decoder on one file in one pass."""

    file: str
    syntax: str
    size: str  # "frames x rows x columns[ x 3]"
    decoder: str
    condition: str  # ONE_CPU or OWN_THREADS
    threads: int  # the threads the decoder ran on (0 when it failed)
    median_ms: float | None  # wall time; None when it failed
    cpu_ms: float | None  # CPU time of the process (all its threads), median
    runs: int
    pixels: str  # "reference" (identical to pydicom's), "differs (max |diff| N)", "no reference", "fails: reason"
    default: bool  # RadBench's default decoder for this file under this condition


#: The decoders' packages, for the stamp printed with the table.
DECODER_PACKAGES = ("python-gdcm", "pylibjpeg", "pylibjpeg-openjpeg", "pylibjpeg-libjpeg", "pylibjpeg-rle", "pillow",
                    "pydicom")


def decoder_versions() -> dict[str, str]:
    """The installed version of each decoder package ("not installed" for a missing one)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in DECODER_PACKAGES:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


def corpus_files() -> list[Path]:
    """The bundled samples (DICOM ones) and :data:`CORPUS`, those found locally (nothing is downloaded)."""
    from pydicom.data import get_testdata_file

    from radbench.app.samples import sample_files

    found = [Path(p) for p in sample_files() if Path(p).suffix == ".dcm"]
    for name in CORPUS:
        path = get_testdata_file(name, download=False)
        if path is not None:
            found.append(Path(path))
    return found


def time_decoders(paths: Iterable[str | Path], *, repeats: int = 5, warmup: int = 1,
                  report: Callable[[list[DecoderTiming]], None] | None = None) -> list[DecoderTiming]:
    """Every decoder for each file's transfer syntax, in both passes (see the module); ``report`` gets each file's
    timings as soon as they are known. A file that cannot be read at all is skipped."""
    timings = []
    for path in map(Path, paths):
        try:
            syntax, choices, size = _describe(path)
        except (ScanError, OSError, AttributeError, ValueError):  # not a DICOM file with an image: nothing to time
            continue
        reference = _reference(path)
        found = []
        for condition in (ONE_CPU, OWN_THREADS):
            with _condition(condition):
                default = load_scan(path).decoder
                found += _time_pass(path, syntax.name, size, choices, condition, default, reference, repeats, warmup)
        timings += found
        if report is not None:
            report(found)
    return timings


def _describe(path: Path):
    import pydicom
    from pydicom.uid import UID

    ds = pydicom.dcmread(path, stop_before_pixels=True)
    syntax = UID(ds.file_meta.TransferSyntaxUID)
    size = " x ".join(str(n) for n in (int(ds.get("NumberOfFrames") or 1), ds.Rows, ds.Columns))
    if int(ds.get("SamplesPerPixel") or 1) == 3 or ds.get("PhotometricInterpretation") == "PALETTE COLOR":
        size += " x 3"
    return syntax, decoder_choices(syntax), size


def _reference(path: Path) -> np.ndarray | None:
    """pydicom's pixels with its default plugin order, shaped as a scan's (a frame axis, the palette applied)."""
    import pydicom
    from pydicom.pixels import apply_color_lut

    try:
        ds = pydicom.dcmread(path)
        pixels = ds.pixel_array
        if ds.PhotometricInterpretation == "PALETTE COLOR":
            pixels = apply_color_lut(pixels, ds)
    except Exception:  # noqa: BLE001 - pydicom cannot decode it: no reference
        return None
    return pixels[np.newaxis] if int(ds.get("NumberOfFrames") or 1) == 1 else pixels


@contextmanager
def _condition(condition: str):
    """One CPU (pinned) and one decoder thread, or every usable CPU and as many decoder threads."""
    if condition == OWN_THREADS:
        with decode_threads(usable_cpus(), adaptive=False):
            yield
        return
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})
    try:
        with decode_threads(1, adaptive=False):
            yield
    finally:
        os.sched_setaffinity(0, cpus)


def _time_pass(path: Path, syntax: str, size: str, choices: Sequence[str], condition: str, default: str,
               reference: np.ndarray | None, repeats: int, warmup: int) -> list[DecoderTiming]:
    walls: dict[str, list[float]] = {name: [] for name in choices}
    cpus: dict[str, list[float]] = {name: [] for name in choices}
    outcome: dict[str, tuple[int, str]] = {}
    for round_ in range(warmup + repeats):
        for name in choices:
            if name in outcome and outcome[name][0] == 0:
                continue  # failed once: not timed again
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                scan = load_scan(path, decoder=name)
            except RadBenchError as exc:
                outcome[name] = (0, f"fails: {_short(exc)}")
                continue
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            if round_ >= warmup:
                walls[name].append(wall)
                cpus[name].append(cpu)
            if name not in outcome:
                outcome[name] = (scan.decoder_threads, _compare(scan.pixels, reference))
    return [DecoderTiming(str(path), syntax, size, name, condition, outcome[name][0],
                          _median_ms(walls[name]), _median_ms(cpus[name]), len(walls[name]), outcome[name][1],
                          name == default)
            for name in choices]


def _compare(pixels: np.ndarray, reference: np.ndarray | None) -> str:
    if reference is None:
        return "no reference"
    if pixels.shape != reference.shape:
        return f"differs (shape {pixels.shape} vs {reference.shape})"
    if np.array_equal(pixels, reference):
        return "reference"
    return f"differs (max |diff| {np.abs(pixels.astype(np.float64) - reference).max():g})"


def _median_ms(seconds: list[float]) -> float | None:
    return round(statistics.median(seconds) * 1e3, 3) if seconds else None


def _short(exc: Exception) -> str:
    reason = getattr(exc, "reason", str(exc))
    return reason if len(reason) <= 120 else reason[:119] + "…"


def as_dicts(timings: Iterable[DecoderTiming]) -> list[dict]:
    return [asdict(t) for t in timings]
