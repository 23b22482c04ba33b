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

from math import ceil

import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import HTJ2K, JPEG2000, UID, HTJ2KLossless, HTJ2KLosslessRPCL, JPEG2000Lossless

from radbench.inference.loading.codestream import grey_codestream

#: The name in the ``decoder`` column: pydicom's plugin of the same library, which gives the same pixels.
PLUGIN = "pylibjpeg"
SYNTAXES = frozenset({JPEG2000, JPEG2000Lossless, HTJ2K, HTJ2KLossless, HTJ2KLosslessRPCL})


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
    found = grey_codestream(ds, allocations=(8, 16, 32))
    if found is None:
        return None
    import openjpeg  # pylibjpeg-openjpeg, present when pydicom's pylibjpeg plugin is

    rows, columns = int(ds.Rows), int(ds.Columns)
    decoded = openjpeg.decode(found.reader, j2k_format=0, reshape=False)
    itemsize = ceil(found.precision / 8)
    dtype = np.dtype(f"<{'iu'[not found.signed]}{4 if itemsize == 3 else itemsize}")
    if decoded.dtype != np.uint8 or decoded.size != rows * columns * dtype.itemsize:
        return None
    return decoded.view(dtype).reshape(rows, columns), {
        "photometric_interpretation": str(ds.PhotometricInterpretation), "samples_per_pixel": 1,
        "number_of_frames": 1}
