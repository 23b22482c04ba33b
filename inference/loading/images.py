"""PNG, JPEG, TIFF, BMP and the other formats Pillow opens, as grey (MONOCHROME2) or RGB scans.

Conversions: palette images become RGB, or grey when every palette entry is grey; alpha is dropped (LA → L,
RGBA → RGB, without compositing) since no scan is transparent; RGB whose three channels are identical
(grey content, as in many exported radiographs) becomes grey; bilevel, CMYK, YCbCr, LAB and HSV become
L or RGB. 8-bit grey stays uint8, 16-bit grey (``I;16*``) uint16, ``I`` int32 and ``F`` float32. Pillow
itself reduces 16-bit-per-channel RGB PNGs to 8 bits. Multi-page files (TIFF stacks, animations) become
frames when every page has the first page's size and mode; otherwise only the first page is kept.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence, UnidentifiedImageError

from radbench.inference.errors import NotAScanError, ScanError
from radbench.inference.scan import Scan

_GREY_MODES = {"1": "L", "L": "L", "LA": "L", "I;16": None, "I;16L": None, "I;16B": None, "I;16N": None,
               "I": None, "F": None}  # mode -> conversion (None: keep the array as it is)
_SAMPLE_BYTES = {"I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2, "I": 4, "F": 4}  # default 1


def open_image(path: Path) -> Image.Image:
    """Open lazily (header only); Pillow's decompression-bomb warning and error both refuse the file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(path)
    except UnidentifiedImageError:
        raise NotAScanError(path, "not a DICOM or image file") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ScanError(path, f"refused as a possible decompression bomb: {exc}") from None


def declared_size(image: Image.Image) -> tuple[int, int, int, int]:
    """``(rows, columns, frames, decoded bytes)`` of the converted output, before any pixel is decoded."""
    columns, rows = image.size
    frames = getattr(image, "n_frames", 1)
    bands = 1 if image.mode in _GREY_MODES or _grey_palette(image) else 3
    return rows, columns, frames, rows * columns * frames * bands * _SAMPLE_BYTES.get(image.mode, 1)


def image_to_scan(path: Path, image: Image.Image) -> Scan:
    """Decode an image from :func:`open_image` (after the size check) into a :class:`Scan`."""
    size, mode, pages = image.size, image.mode, []
    try:
        for page in ImageSequence.Iterator(image):
            if page.size != size or page.mode != mode:  # a thumbnail or pyramid level: keep the first page
                pages = pages[:1]
                break
            pages.append(_array(page))
        if any(p.shape != pages[0].shape for p in pages):  # a grey and a colour palette page
            pages = pages[:1]
    except (OSError, SyntaxError, ValueError) as exc:  # Pillow's words for damaged or truncated data
        raise ScanError(path, f"image data damaged or truncated: {exc}") from None
    pixels = pages[0][np.newaxis] if len(pages) == 1 else np.stack(pages)
    return Scan(
        path=path,
        pixels=pixels,
        photometric="RGB" if pixels.ndim == 4 else "MONOCHROME2",
        source_format=image.format or "image",
        decoder="Pillow",
        bits_allocated=pixels.dtype.itemsize * 8,
        bits_stored=pixels.dtype.itemsize * 8,
    )


def _array(image: Image.Image) -> np.ndarray:
    """The current page as (rows, cols) grey or (rows, cols, 3) RGB, in native byte order."""
    if image.mode in _GREY_MODES:
        target = _GREY_MODES[image.mode]
    else:
        target = "L" if _grey_palette(image) else "RGB"
    array = np.asarray(image.convert(target) if target and target != image.mode else image)
    if array.ndim == 3 and (array[..., 0] == array[..., 1]).all() and (array[..., 1] == array[..., 2]).all():
        array = array[..., 0]  # grey content stored as RGB (common for exported radiographs): keep it grey
    return array if array.dtype.isnative else array.astype(array.dtype.newbyteorder("="))


def _grey_palette(image: Image.Image) -> bool:
    """True for a palette image whose colours are all grey (R == G == B)."""
    if image.mode not in ("P", "PA"):
        return False
    rgb = np.asarray(image.getpalette("RGB") or [], dtype=np.uint8).reshape(-1, 3)
    return bool(len(rgb)) and bool((rgb == rgb[:, :1]).all())
