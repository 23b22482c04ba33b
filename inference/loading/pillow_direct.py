"""Grey one-frame JPEG 2000 decoded by Pillow's OpenJPEG straight from the dataset's fragments: on threads of its own
(``OPJ_NUM_THREADS``), and optionally at a reduced resolution level (``radbench batch --fast-decode``).

At full resolution the pixels are those of pydicom's ``pillow`` plugin, bit for bit: the same library on the same
codestream, Pillow's scaling of N-bit samples to 8 or 16 bits undone as that plugin undoes it (a left shift, with a
level shift for signed data). The frame applies under the same conditions as :mod:`.openjpeg_direct` (one frame,
one grey sample, a raw codestream whose signedness is the Pixel Representation, no Extended Offset Table), and only
up to 16 bits, Pillow's largest grey sample. Anything else, or any failure, returns ``None`` and the plugins decode
the file as before.

A JPEG 2000 codestream holds the image at every resolution level of its wavelet decomposition: level ``r`` is the
image reduced ``2**r`` times along each side (each side rounded up), and OpenJPEG decodes it without the finer
levels' code blocks, most of the work. :func:`reduction_for` picks the coarsest level that still covers a size (the
model's input); the pixels are then the low-pass band of the wavelet, not pydicom's.
"""

from __future__ import annotations

from math import ceil

import numpy as np
from PIL import Image, ImageFile
from pydicom.dataset import Dataset
from pydicom.uid import JPEG2000, UID, JPEG2000Lossless

from radbench.inference.loading import codestream
from radbench.inference.loading.codestream import FragmentReader, j2k_levels
from radbench.inference.loading.decoders import openjpeg_threads

#: The name in the ``decoder`` column: pydicom's plugin of the same library, which gives the same pixels.
PLUGIN = "pillow"
SYNTAXES = frozenset({JPEG2000, JPEG2000Lossless})


def grey_codestream(ds: Dataset, syntax: UID, frames: int) -> tuple[FragmentReader, int, int, bool] | None:
    """``(reader over the codestream, precision, decomposition levels, signed)`` of a frame this path decodes, or
    ``None`` (see the module's docstring)."""
    if syntax not in SYNTAXES or frames != 1:
        return None
    found = codestream.grey_codestream(ds, allocations=(8, 16))
    if found is None:
        return None
    levels = j2k_levels(found.head)
    return found.reader, found.precision, levels if levels is not None else 0, found.signed


def reduction_for(rows: int, columns: int, levels: int, cover: tuple[int, int]) -> int:
    """The coarsest resolution level (0 = full) of a ``rows`` x ``columns`` image with ``levels`` decomposition
    levels whose size still covers ``cover`` (height, width)."""
    level = 0
    while (level < levels and ceil(rows / 2 ** (level + 1)) >= cover[0]
           and ceil(columns / 2 ** (level + 1)) >= cover[1]):
        level += 1
    return level


def decode_grey_frame(ds: Dataset, syntax: UID, frames: int, threads: int,
                      level: int = 0) -> tuple[np.ndarray, dict] | None:
    """``(pixels (rows, cols), properties)`` as pydicom's ``Decoder.as_array`` gives them (at ``level`` > 0: the
    image reduced ``2**level`` times), decoded on ``threads`` threads; ``None`` when this path does not apply or
    fails."""
    try:
        found = grey_codestream(ds, syntax, frames)
        if found is None:
            return None
        reader, precision, levels, signed = found
        if not 0 <= level <= levels:
            return None
        size = (ceil(int(ds.Columns) / 2**level), ceil(int(ds.Rows) / 2**level))
        return _decode(reader, precision, signed, size, level, threads), {
            "photometric_interpretation": str(ds.PhotometricInterpretation), "samples_per_pixel": 1,
            "number_of_frames": 1}
    except Exception:  # noqa: BLE001 - any refusal: pydicom's plugins decode the file and report what they find
        return None


def _decode(reader: FragmentReader, precision: int, signed: bool, size: tuple[int, int], level: int,
            threads: int) -> np.ndarray | None:
    with Image.open(reader, formats=("JPEG2000",)) as image:
        if level:  # Pillow rounds a reduced side to nearest; OpenJPEG rounds it up: the tile is set to OpenJPEG's
            tile = image.tile[0]
            image._size = size
            image.tile = [ImageFile._Tile(tile.codec_name, (0, 0, *size), tile.offset, (tile.args[0], level,
                                                                                         *tile.args[2:]))]
        elif image.size != size:
            return None
        with openjpeg_threads(threads):
            image.load()
        stored = np.asarray(image)  # Pillow's samples scaled to 8 or 16 bits: (value + offset) << shift
    if stored.shape != (size[1], size[0]):
        return None
    container = stored.dtype.itemsize * 8
    shift = container - precision
    if signed:  # undo the level shift Pillow adds to signed samples, wrapping as pydicom's plugin does
        values = stored.view(f"i{stored.dtype.itemsize}") - np.array(1 << (container - 1), stored.dtype).view(
            f"i{stored.dtype.itemsize}")
        np.right_shift(values, shift, out=values)
        return values
    return np.right_shift(stored, shift) if shift else stored
