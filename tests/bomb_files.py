"""Decoder bombs: small real files whose codestream, deflated stream or pixel data lies about its size.

Each builder writes one file into a folder and returns its path. They start from real files (the bundled
chest film, pydicom's test corpus) and change only the size a decoder would trust.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    SecondaryCaptureImageStorage,
)

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"
CHEST_J2K = SAMPLES / "chest_cr_rg1_j2k_lossless.dcm"
HUGE = 60000


def _with_frame(source: Path, target: Path, edit, syntax=None) -> Path:
    """``source`` with its (single) encapsulated frame replaced by ``edit(bytearray(frame))``."""
    ds = dcmread(source)
    frame = bytearray(next(generate_frames(ds.PixelData, number_of_frames=1)))
    ds.PixelData = encapsulate([bytes(edit(frame))])
    ds.file_meta.TransferSyntaxUID = syntax or ds.file_meta.TransferSyntaxUID
    ds.save_as(target, enforce_file_format=True)
    return target


def _siz_60000(frame: bytearray) -> bytearray:
    struct.pack_into(">2I", frame, 8, HUGE, HUGE)  # Xsiz, Ysiz
    struct.pack_into(">2I", frame, 24, HUGE, HUGE)  # XTsiz, YTsiz
    return frame


def j2k_siz_bomb(folder: Path) -> Path:
    """The chest film (header 1955 x 1841) whose SIZ marker declares a 60000 x 60000 image and tile."""
    return _with_frame(CHEST_J2K, folder / "j2k_siz_60000.dcm", _siz_60000)


def htj2k_siz_bomb(folder: Path) -> Path:
    """The same codestream as HTJ2K Lossless (an HTJ2K decoder reads Part 1 codestreams; SIZ is shared)."""
    return _with_frame(CHEST_J2K, folder / "htj2k_siz_60000.dcm", _siz_60000, syntax=HTJ2KLossless)


def j2k_tile_bomb(folder: Path) -> Path:
    """The chest film with the right image size but a tile size of 1 x 1: millions of tiles."""
    def edit(frame):
        struct.pack_into(">2I", frame, 24, 1, 1)
        return frame
    return _with_frame(CHEST_J2K, folder / "j2k_tiles_1x1.dcm", edit)


def _sof_bomb(source: str, marker: bytes, target: Path) -> Path:
    def edit(frame):
        at = frame.index(marker)
        struct.pack_into(">2H", frame, at + 5, HUGE, HUGE)  # Y, X after the length and precision
        return frame
    return _with_frame(Path(get_testdata_file(source)), target, edit)


def jpeg_sof_bomb(folder: Path) -> Path:
    """pydicom's 3 KB JPEG baseline RGB file with its SOF0 marker changed to 60000 x 60000."""
    return _sof_bomb("SC_rgb_jpeg_dcmtk.dcm", b"\xff\xc0", folder / "jpeg_sof_60000.dcm")


def jpeg_ls_sof_bomb(folder: Path) -> Path:
    """pydicom's JPEG-LS MR_small with its SOF55 marker changed to 60000 x 60000."""
    return _sof_bomb("MR_small_jpeg_ls_lossless.dcm", b"\xff\xf7", folder / "jpeg_ls_sof_60000.dcm")


def rle_offset_bomb(folder: Path) -> Path:
    """pydicom's RLE MR_small whose second segment offset points far past the end of the frame."""
    def edit(frame):
        struct.pack_into("<I", frame, 8, 2**31)
        return frame
    return _with_frame(Path(get_testdata_file("MR_small_RLE.dcm")), folder / "rle_offset_past_end.dcm", edit)


def _image_dataset(rows: int, columns: int, frames: int = 1) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.Modality = "OT"
    ds.Rows, ds.Columns, ds.NumberOfFrames = rows, columns, frames
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    return ds


def _file_meta(syntax) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    meta.TransferSyntaxUID = syntax
    return meta


def deflate_bomb(folder: Path, pixel_bytes: int = 2 * 1024**3) -> Path:
    """Deflated Explicit VR Little Endian: a 256 x 256 image whose deflated stream holds ``pixel_bytes`` of
    pixel data (2 GiB by default, in about 2 MB on disk)."""
    body = DicomBytesIO()
    body.is_implicit_VR, body.is_little_endian = False, True
    write_dataset(body, _image_dataset(256, 256))
    body.write(struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, pixel_bytes))
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    path = folder / "deflate_2gib.dcm"
    with path.open("wb") as f:
        f.write(b"\0" * 128 + b"DICM")
        write_file_meta_info(f, _file_meta(DeflatedExplicitVRLittleEndian))
        f.write(deflater.compress(body.getvalue()))
        chunk = bytes(16 * 1024**2)
        for start in range(0, pixel_bytes, len(chunk)):
            f.write(deflater.compress(chunk[: pixel_bytes - start]))
        f.write(deflater.flush())
    return path


def excess_frames(folder: Path, frames_held: int = 512) -> Path:
    """Uncompressed 64 x 64, Number of Frames 1, with ``frames_held`` frames' worth of pixel data."""
    ds = _image_dataset(64, 64)
    ds.file_meta = _file_meta(ExplicitVRLittleEndian)
    ds.PixelData = np.arange(frames_held * 64 * 64, dtype="<u2").tobytes()
    path = folder / "excess_frames.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def gif_frame_extent_bomb(folder: Path, extent: int = 13000) -> Path:
    """An 89-byte GIF of 1 x 1 whose second frame is ``extent`` x ``extent`` (one pixel of LZW data), to be
    disposed to the background: Pillow grows the image and fills that area on seek (13000: 676 MB of RGBA),
    under its bomb error (2 x 89.5 Mpx) and after ``Image.open``, where its warning is not an error."""
    screen = b"GIF89a" + struct.pack("<2H3B", 1, 1, 0x80, 0, 0) + bytes(6)  # a global palette of 2 colours

    def frame(width: int, height: int) -> bytes:
        control = b"\x21\xf9\x04" + bytes([2 << 2 | 1, 0, 0, 0, 0])  # disposal 2, transparent index 0
        return control + b"\x2c" + struct.pack("<4HB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00"

    path = folder / "gif_frame_13000.gif"
    path.write_bytes(screen + frame(1, 1) + frame(extent, extent) + frame(1, 1) + b"\x3b")
    return path


BOMBS = {
    "j2k_siz": j2k_siz_bomb,
    "htj2k_siz": htj2k_siz_bomb,
    "j2k_tiles": j2k_tile_bomb,
    "jpeg_sof": jpeg_sof_bomb,
    "jpeg_ls_sof": jpeg_ls_sof_bomb,
    "rle_offsets": rle_offset_bomb,
    "deflate": deflate_bomb,
    "gif_frame_extent": gif_frame_extent_bomb,
}
