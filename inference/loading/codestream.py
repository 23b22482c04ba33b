"""The image size a compressed frame declares inside its own codestream, read before any decoder runs.

A decoder sizes its buffers from the codestream (JPEG 2000 SIZ, JPEG SOFn, JPEG-LS SOF55, the RLE header),
not from the DICOM header, so a file whose header says 1841 x 1955 can still ask a decoder for 60000 x 60000.
:func:`check_frames` parses those few header bytes of every frame and refuses a frame whose codestream
disagrees with Rows, Columns, Samples per Pixel or Bits Allocated, naming both sizes.
"""

from __future__ import annotations

import io
import struct
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from math import ceil
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames, parse_basic_offsets, parse_fragments
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

from radbench.inference.errors import ScanError
from radbench.inference.wording import counted

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7}  # F7: SOF55
_STANDALONE = {0x01, *range(0xD0, 0xD9)}  # TEM, RSTn, SOI: markers without a length
_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_MAX_TILES = 65535  # Isot is 16 bits: a codestream cannot hold more tiles
_SIZ_MAX = 42 + 3 * 16384  # SOC and a SIZ marker of the most components a codestream may hold


@dataclass(frozen=True)
class Geometry:
    """What a header (DICOM or codestream) says one frame decodes to."""

    rows: int
    columns: int
    samples: int
    bits: int  # DICOM: Bits Allocated; codestream: the largest component precision

    def describe(self) -> str:
        return f"{self.rows} x {self.columns} x {counted(self.samples, 'sample')} of {self.bits} bits"


def _families() -> dict[UID, tuple[str, Callable[[bytes, Geometry], None]]]:
    """Transfer syntax -> (its name in messages, the check of one frame against the header)."""
    families = {}
    for name, syntaxes, check in (
            ("JPEG 2000", (JPEG2000, JPEG2000Lossless), _check_j2k),
            ("HTJ2K", (HTJ2K, HTJ2KLossless, HTJ2KLosslessRPCL), _check_j2k),
            ("JPEG", (JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLossless, JPEGLosslessSV1), _check_jpeg),
            ("JPEG-LS", (JPEGLSLossless, JPEGLSNearLossless), _check_jpeg),
            ("RLE", (RLELossless,), _check_rle)):
        families.update(dict.fromkeys(syntaxes, (name, check)))
    return families


def check_frames(path: Path, ds: Dataset, syntax: UID, frames: int) -> None:
    """Refuse the file when any of its first ``frames`` frames declares another size than the DICOM header.

    Only the transfer syntaxes with a codestream header are checked (JPEG, JPEG-LS, JPEG 2000, HTJ2K, RLE).
    """
    if syntax not in _FAMILIES:
        return
    family, check = _FAMILIES[syntax]
    header = Geometry(int(ds.Rows), int(ds.Columns), int(ds.get("SamplesPerPixel") or 1), int(ds.BitsAllocated))
    if check is _check_j2k and frames == 1 and (head := _j2k_head(ds.PixelData)) is not None:
        try:
            return check(head, header)
        except ValueError as exc:
            raise ScanError(path, f"{family} {exc}") from None
    for index, frame in enumerate(generate_frames(ds.PixelData, number_of_frames=frames)):
        where = f"frame {index + 1}: " if frames > 1 else ""
        try:
            check(frame, header)
        except ValueError as exc:
            raise ScanError(path, f"{where}{family} {exc}") from None


def _j2k_head(data: bytes) -> bytes | None:
    """The start of a one-frame raw JPEG 2000 codestream, enough for its SIZ marker, read from the fragments
    without joining them (the image is 2 bytes per pixel or so: a copy of the codestream would cost a third of
    it); ``None`` for a JP2 file, whose boxes may need more, or pixel data that does not parse."""
    try:
        reader = FragmentReader.of_single_frame(data)
        head = reader.read(_SIZ_MAX) if reader is not None else b""
    except (ValueError, struct.error):
        return None
    return head if head.startswith(b"\xff\x4f\xff\x51") else None


def _check_jpeg(frame: bytes, header: Geometry) -> None:
    _compare(_jpeg_geometry(frame), header)


def _check_j2k(frame: bytes, header: Geometry) -> None:
    _compare(_j2k_geometry(frame), header)


def _compare(declared: Geometry, header: Geometry) -> None:
    if (declared.rows, declared.columns, declared.samples) != (header.rows, header.columns, header.samples) \
            or declared.bits > header.bits:
        raise ValueError(f"codestream declares {declared.describe()} but the header says {header.describe()}")


def _jpeg_geometry(frame: bytes) -> Geometry:
    """The frame header (SOF0-15, or SOF55 for JPEG-LS) of a JPEG or JPEG-LS stream."""
    if frame[:2] != b"\xff\xd8":
        raise ValueError("frame does not start with a JPEG start-of-image marker")
    at = 2
    while at + 4 <= len(frame):
        if frame[at] != 0xFF:
            raise ValueError(f"codestream damaged before its frame header (byte {at})")
        marker = frame[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in _STANDALONE:
            at += 2
            continue
        if marker == 0xDA:
            break
        (length,) = struct.unpack_from(">H", frame, at + 2)
        if marker in _JPEG_SOF:
            if length < 8 or at + 10 > len(frame):
                break
            bits, rows, columns, samples = struct.unpack_from(">BHHB", frame, at + 4)
            return Geometry(rows, columns, samples, bits)
        at += 2 + length
    raise ValueError("codestream has no frame header (SOF) before its image data")


def _j2k_geometry(frame: bytes) -> Geometry:
    """The SIZ marker of a JPEG 2000 / HTJ2K codestream (raw, or inside a JP2 file's 'jp2c' box)."""
    stream = _jp2_codestream(frame) if frame.startswith(_JP2_SIGNATURE) else frame
    if stream[:4] != b"\xff\x4f\xff\x51" or len(stream) < 42:
        raise ValueError("codestream does not start with SOC and SIZ markers")
    xsiz, ysiz, xosiz, yosiz, xtsiz, ytsiz, xtosiz, ytosiz, components = struct.unpack_from(">8IH", stream, 8)
    if len(stream) < 42 + 3 * components or not components:
        raise ValueError("codestream SIZ marker is cut short")
    if not (xtsiz and ytsiz and xosiz < xsiz and yosiz < ysiz and xtosiz <= xosiz and ytosiz <= yosiz):
        raise ValueError(f"codestream SIZ marker is inconsistent (image {xsiz} x {ysiz}, tile {xtsiz} x {ytsiz})")
    tiles = ceil((xsiz - xtosiz) / xtsiz) * ceil((ysiz - ytosiz) / ytsiz)
    if tiles > _MAX_TILES:
        raise ValueError(f"codestream declares {tiles} tiles of {xtsiz} x {ytsiz}, over the {_MAX_TILES} allowed")
    bits = max((stream[42 + 3 * c] & 0x7F) + 1 for c in range(components))
    return Geometry(ysiz - yosiz, xsiz - xosiz, components, bits)


def j2k_levels(head: bytes) -> int | None:
    """The fewest wavelet decomposition levels the main header of a raw JPEG 2000 codestream gives any component
    (its COD marker, and COC markers overriding it), read from ``head``, the codestream's first bytes; ``None`` when
    the main header does not end within them or does not parse. Tile-part headers may still say fewer."""
    if head[:4] != b"\xff\x4f\xff\x51" or len(head) < 42:
        return None
    components = struct.unpack_from(">H", head, 40)[0]
    at, levels = 2, []  # the SIZ marker first
    while at + 4 <= len(head):
        marker, length = struct.unpack_from(">HH", head, at)
        if marker == 0xFF90:  # SOT: the main header has ended
            return min(levels) if levels else None
        if marker >> 8 != 0xFF or length < 2:
            return None
        body = head[at + 4:at + 2 + length]
        if marker == 0xFF52 and len(body) >= 6:  # COD: Scod, SGcod (4 bytes), then SPcod's level count
            levels.append(body[5])
        elif marker == 0xFF53:  # COC: Ccoc (2 bytes from 257 components on), Scoc, then SPcoc's level count
            index = 2 if components >= 257 else 1
            if len(body) > index + 1:
                levels.append(body[index + 1])
        at += 2 + length
    return None


def _jp2_codestream(frame: bytes) -> bytes:
    """The contiguous codestream box ('jp2c') of a JP2 file."""
    at = 0
    while at + 8 <= len(frame):
        length, kind = struct.unpack_from(">I4s", frame, at)
        header = 8
        if length == 1 and at + 16 <= len(frame):
            (length,) = struct.unpack_from(">Q", frame, at + 8)
            header = 16
        if kind == b"jp2c":
            return frame[at + header:]
        if length < header:
            break
        at += length
    raise ValueError("JP2 file has no codestream box")


def _check_rle(frame: bytes, header: Geometry) -> None:
    """The RLE header: one segment per sample and byte, offsets increasing and inside the frame."""
    if len(frame) < 64:
        raise ValueError(f"frame of {len(frame)} bytes is shorter than its 64-byte header")
    segments, *offsets = struct.unpack_from("<16I", frame)
    expected = header.samples * ceil(header.bits / 8)
    if segments != expected:
        raise ValueError(f"header declares {counted(segments, 'segment')} but {header.describe()} needs {expected}")
    offsets = offsets[:segments]
    if offsets[0] != 64 or any(b <= a for a, b in pairwise(offsets)) or offsets[-1] >= len(frame):
        raise ValueError(f"segment offsets {offsets} do not fit the frame's {len(frame)} bytes")


_FAMILIES = _families()
class FragmentReader(io.RawIOBase):
    """The fragments of an encapsulated frame read as one stream, without joining them into a new copy."""

    def __init__(self, data: bytes, spans: list[tuple[int, int]]) -> None:
        super().__init__()
        self._view, self._spans = memoryview(data), spans  # (start in data, length) per fragment
        self._starts, total = [], 0
        for _, length in spans:
            self._starts.append(total)
            total += length
        self._length, self._at = total, 0

    @classmethod
    def of_single_frame(cls, data: bytes) -> FragmentReader | None:
        """Every fragment of a one-frame encapsulated pixel data, which pydicom joins into the frame; ``None``
        when a Basic Offset Table says there is more than one frame."""
        buffer = io.BytesIO(data)  # shares ``data``, no copy
        if len(parse_basic_offsets(buffer)) > 1:
            return None
        _, offsets = parse_fragments(buffer)
        spans = [(at + 8, max(0, min(struct.unpack_from("<L", data, at + 4)[0], len(data) - at - 8)))
                 for at in offsets]
        return cls(data, spans) if spans else None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all the rest for -1) as one new ``bytes``: a single copy, which matters when
        OpenJPEG asks for the whole codestream at once (``RawIOBase.read`` would make two)."""
        end = self._length if size is None or size < 0 else min(self._length, self._at + size)
        pieces = []
        while self._at < end:
            index = bisect_right(self._starts, self._at) - 1
            start, length = self._spans[index]
            inside = self._at - self._starts[index]
            count = min(end - self._at, length - inside)
            pieces.append(self._view[start + inside:start + inside + count])
            self._at += count
        return b"".join(pieces)

    def readinto(self, target) -> int:
        data = self.read(len(memoryview(target).cast("B")))
        memoryview(target).cast("B")[:len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._at, io.SEEK_END: self._length}[whence]
        self._at = max(0, base + offset)
        return self._at

    def tell(self) -> int:
        return self._at


_GREY = ("MONOCHROME1", "MONOCHROME2")
_HEAD = 64 * 1024  # enough for the main header of any real codestream (SIZ, COD, COC, QCD, comments)


@dataclass(frozen=True)
class GreyCodestream:
    """A grey one-frame JPEG 2000 codestream a direct decoder may read as it is (see :func:`grey_codestream`)."""

    reader: FragmentReader  # over the codestream, at its start
    head: bytes  # its first bytes: the main header of any real codestream
    precision: int  # bits per sample, from SIZ
    signed: bool


def grey_codestream(ds: Dataset, allocations: tuple[int, ...]) -> GreyCodestream | None:
    """The codestream of a one-frame encapsulated dataset when a direct decoder gives pydicom's pixels from it
    without pydicom's corrections: one grey sample, Bits Allocated in ``allocations``, Bits Stored within it, no
    Extended Offset Table, a raw codestream (not JP2) of one component whose signedness is the Pixel Representation
    and whose precision fits Bits Allocated; ``None`` otherwise (pydicom's plugins then decode and report)."""
    signed, allocated = int(ds.get("PixelRepresentation", 0)), int(ds.BitsAllocated)
    stored = int(ds.get("BitsStored") or allocated)
    if (int(ds.get("SamplesPerPixel") or 1) != 1 or str(ds.get("PhotometricInterpretation", "")) not in _GREY
            or signed not in (0, 1) or allocated not in allocations or not 1 <= stored <= allocated
            or "ExtendedOffsetTable" in ds):
        return None
    data, expected = ds.PixelData, int(ds.Rows) * int(ds.Columns) * allocated // 8
    if not isinstance(data, bytes) or len(data) in (expected, expected + expected % 2):
        return None  # pydicom warns when compressed data is as long as uncompressed: left to it
    reader = FragmentReader.of_single_frame(data)
    if reader is None:
        return None
    head = reader.read(_HEAD)
    reader.seek(0)
    if head[:4] != b"\xff\x4f\xff\x51" or len(head) < 44 or struct.unpack_from(">H", head, 40)[0] != 1:
        return None  # a JP2 file or more than one component
    precision, codestream_signed = (head[42] & 0x7F) + 1, head[42] >> 7
    if codestream_signed != signed or precision > allocated:
        return None  # pydicom shifts the values (sign correction) or refuses them
    return GreyCodestream(reader, head, precision, bool(signed))
