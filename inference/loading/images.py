"""PNG, JPEG, TIFF, BMP and the other formats Pillow opens, as grey (MONOCHROME2) or RGB scans.

Conversions: palette images become RGB, or grey when every palette entry is grey; alpha is dropped (LA → L,
RGBA → RGB, without compositing) since no scan is transparent; RGB whose three channels are identical
(grey content, as in many exported radiographs) becomes grey; bilevel, CMYK, YCbCr, LAB and HSV become
L or RGB. 8-bit grey stays uint8, 16-bit grey (``I;16*``) uint16, ``I`` int32 and ``F`` float32. Pillow
itself reduces 16-bit-per-channel RGB PNGs to 8 bits. Multi-page files (TIFF stacks, animations) become
frames when every page has the first page's size and mode; otherwise only the first page is kept.

A GIF's declared size is its canvas: the logical screen grown to every frame's extent, as Pillow grows it
when it seeks to a frame (and fills a disposal area of that frame's size). Pillow's decompression-bomb check
is an error only inside ``Image.open``, so an 89-byte GIF of 1 x 1 whose second frame is 13000 x 13000 once
made a seek allocate 700 MB; the canvas is now checked before any frame is read.
"""

from __future__ import annotations

import struct
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


def declared_size(path: Path, image: Image.Image) -> tuple[int, int, int, int]:
    """``(rows, columns, frames, decoded bytes)`` of the converted output, before any pixel is decoded.

    A GIF counts its canvas (:func:`_gif_canvas`); one over Pillow's pixel limit is refused as a bomb.
    """
    columns, rows = _gif_canvas(path, image.size) if image.format == "GIF" else image.size
    limit = Image.MAX_IMAGE_PIXELS
    if limit and columns * rows > limit and (columns, rows) != image.size:
        grown = f"{image.width} x {image.height} image to {columns} x {rows} ({columns * rows} pixels)"
        raise ScanError(path, f"refused as a possible decompression bomb: a later GIF frame grows the {grown}, "
                              f"over Pillow's limit of {limit} pixels")
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
        array = np.ascontiguousarray(array[..., 0])  # grey content stored as RGB (common for exported
        # radiographs): kept grey, as a copy, so the scan does not keep the RGB array (three times the size) alive
    return array if array.dtype.isnative else array.astype(array.dtype.newbyteorder("="))


def _grey_palette(image: Image.Image) -> bool:
    """True for a palette image whose colours are all grey (R == G == B)."""
    if image.mode not in ("P", "PA"):
        return False
    rgb = np.asarray(image.getpalette("RGB") or [], dtype=np.uint8).reshape(-1, 3)
    return bool(len(rgb)) and bool((rgb == rgb[:, :1]).all())


def _gif_canvas(path: Path, size: tuple[int, int]) -> tuple[int, int]:
    """``(columns, rows)`` of the logical screen grown to every frame's extent (x + width, y + height).

    Walks the blocks as Pillow's GIF reader does: extensions and image data are runs of sub-blocks, a byte
    that starts no block is skipped, the trailer or the end of the file stops.
    """
    data = path.read_bytes()
    columns, rows = size
    at = 13 + (3 << ((data[10] & 7) + 1) if len(data) > 10 and data[10] & 0x80 else 0)
    while at < len(data) and data[at] != 0x3B:
        if data[at] == 0x2C and at + 10 <= len(data):  # image descriptor: x, y, width, height, flags
            x, y, width, height = struct.unpack_from("<4H", data, at + 1)
            columns, rows = max(columns, x + width), max(rows, y + height)
            flags = data[at + 9]
            at = _after_sub_blocks(data, at + 11 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0))
        elif data[at] == 0x21:  # extension: its label, then sub-blocks
            at = _after_sub_blocks(data, at + 2)
        else:
            at += 1
    return columns, rows


def _after_sub_blocks(data: bytes, at: int) -> int:
    """The offset after a run of sub-blocks (each a length byte and its data) and its zero terminator."""
    while at < len(data) and data[at]:
        at += data[at] + 1
    return at + 1
