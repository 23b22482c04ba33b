"""Decoders of RadBench's own, each named in the ``decoder`` column: last resorts after every pydicom plugin failed,
and ``pillow-frames`` also the measured fastest for JPEG baseline (``decoders.py``).

- ``pillow-frames`` (JPEG baseline and extended): each frame's fragment as a complete JPEG, decoded by Pillow
  (libjpeg-turbo), colour converted to RGB by libjpeg-turbo itself; a colour frame whose header says RGB and that
  carries no Adobe marker is read without conversion, as pydicom's ``pillow`` plugin reads it. pydicom's plugin
  converts YBR to RGB in NumPy afterwards, three times slower on a 120-frame film, to the same pixels. It also
  decodes what pydicom cannot: pydicom decodes all frames into one buffer sized from the header, so a header whose
  Bits Allocated (16) is wider than its 8-bit JPEG data fails there ("could not broadcast"), although every frame
  is a valid JPEG.
- ``gdcm-direct`` (JPEG extended, grey): GDCM's JPEG codec on each frame's fragment, as pydicom's GDCM plugin
  calls it but also for 12-bit data, which that plugin refuses. It gives the pixels of ``gdcm.ImageReader`` on
  the file, which is not used: GDCM's reader parses the whole file again, outside the loader's checks (a 5 KB
  fuzzed file made it grow to 3.7 GB).

Both run after the codestream check (``codestream.py``), so every frame declares the header's size, and
both return exactly the size the header declares, which the loader bounded.
"""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO
from itertools import islice
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.uid import UID, JPEGBaseline8Bit, JPEGExtended12Bit

from radbench.inference.errors import quoted

_GDCM_TYPES = {"UINT8": "=u1", "INT8": "=i1", "UINT16": "=u2", "INT16": "=i2", "UINT32": "=u4", "INT32": "=i4"}
_GREY = ("MONOCHROME1", "MONOCHROME2")


def last_resorts(syntax: UID) -> tuple[tuple[str, Callable], ...]:
    """``(name, decode)`` pairs to try, in order, for a transfer syntax whose plugins all failed."""
    return _LAST_RESORTS.get(syntax, ())


def pillow_frames(path: Path, ds: Dataset, frames: int) -> tuple[np.ndarray, dict]:
    """Each frame's fragment as a complete JPEG, decoded by Pillow to grey (``L``) or ``RGB``."""
    rows, columns, samples = int(ds.Rows), int(ds.Columns), int(ds.get("SamplesPerPixel") or 1)
    stored_rgb = str(ds.get("PhotometricInterpretation", "")) == "RGB"
    pixels = _each_frame(ds, frames, lambda frame: _pillow_frame(frame, rows, columns, samples, stored_rgb))
    return _result(pixels, "RGB" if samples == 3 else str(ds.PhotometricInterpretation), samples)


def _pillow_frame(frame: bytes, rows: int, columns: int, samples: int, stored_rgb: bool) -> np.ndarray:
    with Image.open(BytesIO(frame), formats=("JPEG",)) as image:
        if image.size != (columns, rows):
            raise ValueError(f"a frame decodes to {image.height} x {image.width}, not {rows} x {columns}")
        if samples == 3 and stored_rgb and "adobe_transform" not in image.info:
            image.draft("YCbCr", image.size)  # the samples as stored: RGB, not YCbCr to convert (as pydicom)
            return np.asarray(image)
        return np.asarray(image.convert("RGB" if samples == 3 else "L"))


def gdcm_direct(path: Path, ds: Dataset, frames: int) -> tuple[np.ndarray, dict]:
    """Each frame's fragment through GDCM's codec, into a grey frame of the header's size and sample format."""
    try:
        import gdcm
    except ImportError:
        raise ValueError("python-gdcm is not installed") from None
    photometric = str(ds.PhotometricInterpretation)
    if int(ds.get("SamplesPerPixel") or 1) != 1 or photometric not in _GREY:
        raise ValueError(f"only grey images are decoded this way, not {quoted(photometric)}")
    stored = int(ds.get("BitsStored") or ds.BitsAllocated)
    signed = int(ds.get("PixelRepresentation") or 0)
    pixel_format = gdcm.PixelFormat(1, int(ds.BitsAllocated), stored, stored - 1, signed)
    kind = pixel_format.GetScalarTypeAsString()
    if kind not in _GDCM_TYPES:
        raise ValueError(f"GDCM has no sample type for Bits Allocated {ds.BitsAllocated} and Bits Stored {stored}")
    dtype = np.dtype(_GDCM_TYPES[kind])
    return _result(_each_frame(ds, frames, lambda frame: _gdcm_frame(gdcm, frame, ds, pixel_format, dtype)),
                   photometric, 1)


def _gdcm_frame(gdcm, frame: bytes, ds: Dataset, pixel_format, dtype: np.dtype) -> np.ndarray:
    """One frame as a ``gdcm.Image`` of the header's size (so GDCM's output buffer is that size), decoded."""
    rows, columns = int(ds.Rows), int(ds.Columns)
    fragment = gdcm.Fragment()
    fragment.SetByteStringValue(frame)
    fragments = gdcm.SequenceOfFragments.New()
    fragments.AddFragment(fragment)
    element = gdcm.DataElement(gdcm.Tag(0x7FE0, 0x0010))
    element.SetValue(fragments.__ref__())
    image = gdcm.Image()
    image.SetNumberOfDimensions(2)
    image.SetDimensions((columns, rows, 1))
    image.SetDataElement(element)
    kind = gdcm.PhotometricInterpretation.GetPIType(str(ds.PhotometricInterpretation))
    image.SetPhotometricInterpretation(gdcm.PhotometricInterpretation(kind))
    image.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.GetTSType(str(ds.file_meta.TransferSyntaxUID))))
    image.SetPixelFormat(pixel_format)
    buffer = image.GetBuffer()  # a str holding the bytes (surrogateescape), or None when decoding failed
    data = buffer.encode("utf-8", "surrogateescape") if buffer else b""
    if len(data) != rows * columns * dtype.itemsize:
        raise ValueError("GDCM returned no pixel data" if not data else f"GDCM returned {len(data)} bytes for a frame")
    return np.frombuffer(data, dtype).reshape(rows, columns)


def _each_frame(ds: Dataset, frames: int, decode: Callable[[bytes], np.ndarray]) -> np.ndarray:
    """``decode`` of each of the first ``frames`` frames of the encapsulated pixel data, into one array (allocated
    after the first frame: the frames are never held twice)."""
    pixels, count = None, 0
    for frame in islice(generate_frames(ds.PixelData, number_of_frames=frames), frames):
        decoded = decode(frame)
        if pixels is None:
            pixels = np.empty((frames, *decoded.shape), decoded.dtype)
        elif decoded.shape != pixels.shape[1:] or decoded.dtype != pixels.dtype:
            raise ValueError(f"frame {count + 1} decodes to {decoded.shape} {decoded.dtype}, frame 1 to "
                             f"{pixels.shape[1:]} {pixels.dtype}")
        pixels[count] = decoded
        count += 1
    if count < frames:
        raise ValueError(f"{count} of {frames} frames found")
    return pixels


def _result(pixels: np.ndarray, photometric: str, samples: int) -> tuple[np.ndarray, dict]:
    """Pixels and properties as pydicom's ``Decoder.as_array`` gives them (no frame axis for one frame)."""
    frames = pixels.shape[0]
    properties = {"photometric_interpretation": photometric, "samples_per_pixel": samples, "number_of_frames": frames}
    return (pixels[0] if frames == 1 else pixels), properties


_LAST_RESORTS = {JPEGBaseline8Bit: (("pillow-frames", pillow_frames),),
                 JPEGExtended12Bit: (("pillow-frames", pillow_frames), ("gdcm-direct", gdcm_direct))}
#: The names a last resort gives the ``decoder`` column.
LAST_RESORTS = frozenset(name for pairs in _LAST_RESORTS.values() for name, _ in pairs)
