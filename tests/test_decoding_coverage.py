"""Files pydicom's plugins cannot decode: the last resorts decode them to the reference pixels, and what cannot be
decoded is said in stable words. The odd files are written here with pydicom from corpus files."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import ExplicitVRLittleEndian

from radbench.inference.errors import ScanError
from radbench.inference.loading import load_scan
from radbench.inference.loading.codestream import _JPEG_SOF

LOSSY_12_BIT = Path(get_testdata_file("JPEG-lossy.dcm"))  # 12-bit JPEG Extended that pylibjpeg rejects (-1038)
FIXED_TWIN = Path(get_testdata_file("JPGExtended.dcm"))  # the same image with a valid scan header


def _reason(path: Path) -> str:
    with pytest.raises(ScanError) as refused:
        load_scan(path)
    return refused.value.reason


def _with_frames(source: str, path: Path, frames: list[bytes], **attributes) -> Path:
    """``source`` with ``frames`` as its encapsulated pixel data and ``attributes`` set."""
    ds = pydicom.dcmread(get_testdata_file(source))
    ds.PixelData = encapsulate(frames, has_bot=True)
    ds["PixelData"].is_undefined_length = True
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.save_as(path)
    return path


def _frames(source: str) -> list[bytes]:
    ds = pydicom.dcmread(get_testdata_file(source))
    return list(generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames") or 1)))


def _after_frame_header(frame: bytes) -> int:
    """The offset just past a JPEG frame's SOF segment."""
    at = 2
    while frame[at + 1] not in _JPEG_SOF:
        at += 2 + struct.unpack_from(">H", frame, at + 2)[0]
    return at + 2 + struct.unpack_from(">H", frame, at + 2)[0]


def test_12_bit_jpeg_extended_that_every_plugin_refuses_is_decoded_by_gdcm_direct():
    with pytest.raises(Exception, match="-1038"):  # pydicom alone: pylibjpeg fails, gdcm and pillow refuse 12-bit
        pydicom.dcmread(LOSSY_12_BIT).pixel_array  # noqa: B018
    scan = load_scan(LOSSY_12_BIT)
    assert (scan.decoder, scan.pixels.shape, scan.pixels.dtype) == ("gdcm-direct", (1, 1024, 256), np.uint16)
    reference = pydicom.dcmread(FIXED_TWIN).pixel_array  # pylibjpeg decodes the fixed twin
    difference = np.abs(scan.pixels[0].astype(int) - reference)
    assert difference.max() <= 1 and (difference == 0).mean() > 0.98  # two lossy IDCTs: rounding apart


def test_gdcm_direct_comes_after_the_codestream_check_and_the_size_bound(tmp_path):
    ds = pydicom.dcmread(LOSSY_12_BIT)
    ds.Rows = 512  # its codestream still says 1024
    ds.save_as(tmp_path / "short.dcm")
    assert _reason(tmp_path / "short.dcm") == ("JPEG codestream declares 1024 x 256 x 1 sample of 12 bits but the "
                                               "header says 512 x 256 x 1 sample of 16 bits")
    with pytest.raises(ScanError, match=r"needs 512\.0 KiB, over the 1\.0 KiB limit"):
        load_scan(LOSSY_12_BIT, max_bytes=1024)


def test_multiframe_ybr_full_422_that_pydicom_cannot_fit_is_decoded_frame_by_frame(tmp_path):
    """140 frames of YBR_FULL_422 JPEG baseline under Bits Allocated 16: pydicom sizes its buffer from the header
    and fails with a broadcast error; each fragment is a complete JPEG."""
    source = "color3d_jpeg_baseline.dcm"
    frames = (_frames(source) * 2)[:140]
    path = _with_frames(source, tmp_path / "ybr140.dcm", frames, NumberOfFrames=140, BitsAllocated=16)
    with pytest.raises(ValueError, match="could not broadcast"):
        pydicom.dcmread(path).pixel_array  # noqa: B018
    scan = load_scan(path)
    assert (scan.decoder, scan.photometric, scan.pixels.shape) == ("pillow-frames", "RGB", (140, 480, 640, 3))
    reference = pydicom.dcmread(get_testdata_file(source))
    reference.pixel_array_options(decoding_plugin="pillow")
    expected = reference.pixel_array
    np.testing.assert_array_equal(scan.pixels[:120], expected)
    np.testing.assert_array_equal(scan.pixels[120:], expected[:20])


@pytest.mark.parametrize("undefined_length", [False, True])
def test_encapsulated_pixel_data_under_an_uncompressed_syntax_is_named(tmp_path, undefined_length):
    ds = pydicom.dcmread(get_testdata_file("MR_small_jp2klossless.dcm"))
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds["PixelData"].is_undefined_length = undefined_length
    ds.save_as(tmp_path / "wrong_syntax.dcm")
    assert _reason(tmp_path / "wrong_syntax.dcm") == (
        "pixel data holds compressed (encapsulated) fragments but the transfer syntax Explicit VR Little Endian is "
        "uncompressed: the file declares the wrong transfer syntax")


def test_an_image_without_pixel_data_says_so_without_guessing(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    del ds.PixelData
    ds.save_as(tmp_path / "no_pixels.dcm")
    assert _reason(tmp_path / "no_pixels.dcm") == "no pixel data in this CT Image Storage object"


def test_failures_are_said_in_the_same_words_on_every_run(tmp_path, monkeypatch):
    """No memory address (Pillow's '<_io.BytesIO object at 0x...>'), no Python internals (pydicom's GDCM plugin's
    "'NoneType' object has no attribute 'encode'"), and Pillow's pixel limit said as such."""
    frame = _frames("JPEG-lossy.dcm")[0]
    at = _after_frame_header(frame)
    junk = _with_frames("JPEG-lossy.dcm", tmp_path / "junk_marker.dcm", [frame[:at] + b"\xff\x12" + frame[at:]])
    j2k = _frames("MR_small_jp2klossless.dcm")[0]
    header_only = _with_frames("MR_small_jp2klossless.dcm", tmp_path / "header_only.dcm",
                               [j2k[: j2k.index(b"\xff\x90")] + bytes(64)])  # main header, then no tile
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow's own decompression-bomb setting, made small
    reasons = {path.name: _reason(path) for path in (junk, header_only)}
    assert reasons == {path.name: _reason(path) for path in (junk, header_only)}
    assert "pillow-frames: cannot identify image file;" in reasons["junk_marker.dcm"]
    assert "gdcm-direct: GDCM returned no pixel data" in reasons["junk_marker.dcm"]
    assert reasons["header_only.dcm"] == (
        "JPEG 2000 Image Compression (Lossless Only) pixel data could not be decoded: pylibjpeg: Error decoding the "
        "J2K data: failed to read the header; pillow: a frame of 4096 pixels is over Pillow's limit of 2000; gdcm: "
        "returned no pixel data")
    for reason in reasons.values():
        assert " at 0x" not in reason and "NoneType" not in reason and "damaged" not in reason
