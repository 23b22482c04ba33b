"""Grey one-frame JPEG 2000 (and HTJ2K) decoded by pylibjpeg's OpenJPEG straight from the dataset's fragments.

The pixels are those pydicom's ``pylibjpeg`` plugin gives, bit for bit (the same OpenJPEG call on the same
codestream), in less memory. pydicom joins the fragments into one more copy of the codestream, decodes into a
buffer and copies that into an array it allocated before decoding; here OpenJPEG reads the fragments where they
are (:class:`FragmentReader`) and its output array is the result. ``radbench bench --memory`` on the 1841 x 1955
CR: loading peaked at 8.2 decoded images with GDCM, 6.1 with pydicom's pylibjpeg plugin, 4.5 this way (OpenJPEG's
own 32-bit working copy of the image is 2 of those).

Only what needs none of pydicom's corrections comes this way: one frame, one grey sample, a raw codestream whose
signedness is the Pixel Representation, no Extended Offset Table. Anything else, or any failure, returns ``None``
and the file goes through pydicom's plugins as before, so their messages and warnings are unchanged.
"""

from __future__ import annotations

import struct
from math import ceil

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import HTJ2K, JPEG2000, UID, HTJ2KLossless, HTJ2KLosslessRPCL, JPEG2000Lossless

from radbench.inference.loading.codestream import FragmentReader

#: The name in the ``decoder`` column: pydicom's plugin of the same library, which gives the same pixels.
PLUGIN = "pylibjpeg"
SYNTAXES = frozenset({JPEG2000, JPEG2000Lossless, HTJ2K, HTJ2KLossless, HTJ2KLosslessRPCL})
_GREY = ("MONOCHROME1", "MONOCHROME2")
_SOC_SIZ = b"\xff\x4f\xff\x51"


def decode_grey_frame(ds: Dataset, syntax: UID, frames: int,
                      plugins: tuple[str, ...]) -> tuple[np.ndarray, dict] | None:
    """``(pixels (rows, cols), properties)`` as pydicom's ``Decoder.as_array`` gives them, or ``None`` when this
    path does not apply (see the module's docstring) or fails. ``plugins`` are the available ones for ``syntax``."""
    if syntax not in SYNTAXES or frames != 1 or PLUGIN not in plugins:
        return None
    try:
        return _decode(ds)
    except Exception:  # noqa: BLE001 - any refusal: pydicom's plugins decode the file and report what they find
        return None


def _decode(ds: Dataset) -> tuple[np.ndarray, dict] | None:
    photometric = str(ds.get("PhotometricInterpretation", ""))
    rows, columns = int(ds.Rows), int(ds.Columns)
    signed, allocated = int(ds.get("PixelRepresentation", 0)), int(ds.BitsAllocated)
    stored = int(ds.get("BitsStored") or allocated)
    if (int(ds.get("SamplesPerPixel") or 1) != 1 or photometric not in _GREY or signed not in (0, 1)
            or allocated not in (8, 16, 32) or not 1 <= stored <= allocated or "ExtendedOffsetTable" in ds):
        return None
    data, expected = ds.PixelData, rows * columns * allocated // 8
    if not isinstance(data, bytes) or len(data) in (expected, expected + expected % 2):
        return None  # pydicom warns when compressed data is as long as uncompressed: left to it
    reader = FragmentReader.of_single_frame(data)
    if reader is None:
        return None
    head = reader.read(44)
    if head[:4] != _SOC_SIZ or len(head) < 44 or struct.unpack_from(">H", head, 40)[0] != 1:
        return None  # a JP2 file or more than one component
    ssiz = head[42]
    precision, codestream_signed = (ssiz & 0x7F) + 1, ssiz >> 7
    if codestream_signed != signed or precision > allocated:
        return None  # pydicom shifts the values (sign correction) or refuses them
    reader.seek(0)
    import openjpeg  # pylibjpeg-openjpeg, present when pydicom's pylibjpeg plugin is

    decoded = openjpeg.decode(reader, j2k_format=0, reshape=False)
    itemsize = ceil(precision / 8)
    dtype = np.dtype(f"<{'iu'[not signed]}{4 if itemsize == 3 else itemsize}")
    if decoded.dtype != np.uint8 or decoded.size != rows * columns * dtype.itemsize:
        return None
    return decoded.view(dtype).reshape(rows, columns), {"photometric_interpretation": photometric,
                                                         "samples_per_pixel": 1, "number_of_frames": 1}
