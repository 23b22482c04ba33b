"""Behaviour of ``inference.loading`` on real files and on files written here with pydicom and Pillow."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import data_store
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import apply_color_lut
from pydicom.uid import (
    MPEG2MPML,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from radbench.inference.errors import NotAScanError, ScanError
from radbench.inference.loading import DEFAULT_MAX_BYTES, decode_threads, decoder_plugins, decoders, load_scan
from radbench.inference.loading.decoders import DecoderError
from radbench.inference.loading.dicom import IDENTIFYING_KEYWORDS, METADATA_KEYWORDS, decoder_order, plugin_order
from radbench.inference.scan import WindowPreset

DATA = Path(data_store.__file__).parent / "data"
CT = Path(get_testdata_file("CT_small.dcm"))
MR = Path(get_testdata_file("MR_small.dcm"))
PNG_SAMPLE = Path(__file__).parents[1] / "sample_images" / "tibia_cr_rg3_8bit_440px.png"


def write_dicom(path: Path, pixels: np.ndarray, *, syntax=ExplicitVRLittleEndian, preamble: bool = True,
                **attributes) -> Path:
    """A secondary-capture file holding ``pixels`` (frames, rows, cols) as 16-bit grey, plus ``attributes``."""
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, generate_uid()
    ds.Modality = "OT"
    ds.NumberOfFrames, ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = int(pixels.dtype.kind == "i")
    data = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
    ds.PixelData = encapsulate([data]) if syntax.is_encapsulated else data
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    if preamble:
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = syntax
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(path, enforce_file_format=True)
    else:
        ds.save_as(path, implicit_vr=True, little_endian=True)
    return path


def ramp(frames=1, rows=6, cols=5, dtype=np.uint16, start=0) -> np.ndarray:
    return (np.arange(frames * rows * cols) + start).reshape(frames, rows, cols).astype(dtype)


# --- DICOM -------------------------------------------------------------------------------------------------

def test_ct_is_read_with_rescale_spacing_and_a_leading_frame_axis():
    scan = load_scan(CT)
    assert scan.pixels.shape == (1, 128, 128) and scan.pixels.dtype == np.int16
    assert not scan.pixels.flags.writeable
    assert (scan.rescale_slope, scan.rescale_intercept) == (1.0, -1024.0)
    assert scan.pixel_spacing == pytest.approx((0.661468, 0.661468))
    assert (scan.modality, scan.source_format, scan.decoder) == ("CT", "DICOM", "pydicom")
    assert (scan.transfer_syntax, scan.bits_allocated, scan.bits_stored) == ("Explicit VR Little Endian", 16, 16)
    np.testing.assert_array_equal(scan.pixels[0], pydicom.dcmread(CT).pixel_array)


def test_monochrome1_is_flagged_and_its_values_are_not_inverted(tmp_path):
    pixels = ramp()
    scan = load_scan(write_dicom(tmp_path / "m1.dcm", pixels, PhotometricInterpretation="MONOCHROME1"))
    assert scan.photometric == "MONOCHROME1" and scan.inverted
    np.testing.assert_array_equal(scan.pixels, pixels)
    assert not load_scan(CT).inverted


def test_multiframe_keeps_every_frame():
    scan = load_scan(DATA / "emri_small.dcm")
    assert scan.pixels.shape == (10, 64, 64) and scan.frame_count == 10
    assert not np.array_equal(scan.pixels[0], scan.pixels[9])


def test_multivalued_windows_become_named_presets_and_narrow_widths_are_skipped(tmp_path):
    path = write_dicom(tmp_path / "w.dcm", ramp(), WindowCenter=[40, 400, 50], WindowWidth=[400, 2000, 0],
                       WindowCenterWidthExplanation=["BRAIN", "BONE", "BROKEN"])
    assert load_scan(path).window_presets == (WindowPreset(40, 400, "BRAIN"), WindowPreset(400, 2000, "BONE"))


def test_rescale_values_are_read_and_default_to_identity(tmp_path):
    scan = load_scan(DATA / "MR2_J2KR.dcm")
    assert (scan.rescale_slope, scan.rescale_intercept) == pytest.approx((3.774114, 6.1e-05))
    plain = load_scan(write_dicom(tmp_path / "plain.dcm", ramp()))
    assert (plain.rescale_slope, plain.rescale_intercept, plain.window_presets) == (1.0, 0.0, ())


def test_signed_pixels_with_fewer_bits_stored_keep_their_values(tmp_path):
    pixels = ramp(dtype=np.int16, start=-2048)
    scan = load_scan(write_dicom(tmp_path / "s.dcm", pixels, BitsStored=12, HighBit=11))
    assert scan.pixels.dtype == np.int16 and (scan.bits_allocated, scan.bits_stored) == (16, 12)
    np.testing.assert_array_equal(scan.pixels, pixels)
    assert scan.pixels.min() == -2048


def test_unused_high_bits_are_masked_for_unsigned_data(tmp_path):
    pixels = ramp(rows=2, cols=2) | 0xF000  # garbage above BitsStored = 12
    scan = load_scan(write_dicom(tmp_path / "u.dcm", pixels, BitsStored=12, HighBit=11))
    np.testing.assert_array_equal(scan.pixels, pixels & 0x0FFF)


def test_palette_colour_becomes_rgb():
    path = DATA / "OBXXXX1A.dcm"
    scan = load_scan(path)
    ds = pydicom.dcmread(path)
    assert scan.photometric == "RGB" and scan.is_color and scan.pixels.shape == (1, 600, 800, 3)
    np.testing.assert_array_equal(scan.pixels[0], apply_color_lut(ds.pixel_array, ds))


def test_ybr_is_converted_to_rgb():
    scan = load_scan(DATA / "SC_ybr_full_uncompressed.dcm")
    assert scan.photometric == "RGB" and scan.metadata["PhotometricInterpretation"] == "YBR_FULL"
    rgb = load_scan(DATA / "SC_rgb.dcm").pixels  # the same picture, through a lossy JPEG on the way
    assert np.abs(scan.pixels.astype(int) - rgb).max() <= 8


def test_big_endian_pixels_come_back_in_native_byte_order():
    scan = load_scan(get_testdata_file("MR_small_bigendian.dcm"))
    assert scan.pixels.dtype == np.int16 and scan.pixels.dtype.isnative
    np.testing.assert_array_equal(scan.pixels, load_scan(MR).pixels)


def test_old_file_without_preamble_is_found_by_content(tmp_path):
    pixels = ramp()
    path = write_dicom(tmp_path / "OLDFILE", pixels, preamble=False)
    assert path.read_bytes()[128:132] != b"DICM"
    scan = load_scan(path)
    assert scan.transfer_syntax == ImplicitVRLittleEndian.name
    np.testing.assert_array_equal(scan.pixels, pixels)


def test_compressed_syntaxes_use_the_measured_default_decoder():
    """One thread (the default): decoders.ONE_THREAD; two or more free: Pillow's OpenJPEG for JPEG 2000."""
    assert decoder_order(JPEG2000Lossless)[0] == "pylibjpeg"
    assert decoder_order(JPEG2000Lossless, threads=2)[0] == "pillow"
    assert decoder_order(JPEGBaseline8Bit)[0] == "pillow-frames"
    colour = load_scan(DATA / "US1_J2KR.dcm")  # through pydicom's pylibjpeg plugin
    assert (colour.decoder, colour.decoder_threads) == ("pylibjpeg", 1)
    scan = load_scan(DATA / "RG1_J2KR.dcm")  # grey, one frame: pylibjpeg's OpenJPEG on the fragments, in less memory
    assert scan.decoder == "pylibjpeg" and scan.photometric == "MONOCHROME1" and scan.decoder_threads == 1
    assert scan.transfer_syntax == "JPEG 2000 Image Compression (Lossless Only)"
    assert load_scan(get_testdata_file("MR_small_RLE.dcm")).decoder == "pylibjpeg"
    assert load_scan(get_testdata_file("JPGExtended.dcm")).decoder == "pylibjpeg"  # 12-bit: only libjpeg
    assert load_scan(get_testdata_file("JPEG-LL.dcm")).decoder == "gdcm"
    assert load_scan(get_testdata_file("SC_rgb_jpeg.dcm")).decoder == "pillow-frames"


def test_with_threads_free_jpeg_2000_goes_to_pillows_openjpeg_on_them():
    with decode_threads(2, adaptive=False):
        scan = load_scan(DATA / "MR2_J2KR.dcm")
        colour = load_scan(DATA / "US1_J2KR.dcm")
    assert (scan.decoder, scan.decoder_threads, colour.decoder, colour.decoder_threads) == ("pillow", 2, "pillow", 2)
    assert np.array_equal(scan.pixels, load_scan(DATA / "MR2_J2KR.dcm").pixels)
    assert decoders.threads_now() == 1  # the setting ends with the block


def test_a_forced_decoder_is_the_only_one_tried():
    scan = load_scan(DATA / "RG1_J2KR.dcm", decoder="gdcm")
    assert (scan.decoder, scan.decoder_threads) == ("gdcm", os.cpu_count())  # GDCM's JPEG 2000: every CPU
    assert load_scan(CT, decoder="pydicom").decoder == "pydicom"
    assert load_scan(get_testdata_file("JPEG-lossy.dcm"), decoder="gdcm-direct").decoder == "gdcm-direct"


@pytest.mark.parametrize("name,decoder,reason", [
    ("JPGExtended.dcm", "gdcm", "JPEG Extended (Process 2 and 4) pixel data could not be decoded by the decoder asked "
                                "for, gdcm: GDCM does not support 'JPEG Extended' for samples with 12-bit precision; "
                                "the decoders for it here are pylibjpeg, pillow, gdcm, pillow-frames, gdcm-direct"),
    ("JPEG-LL.dcm", "pillow", "decoder pillow cannot read JPEG Lossless, Non-Hierarchical, First-Order Prediction "
                              "(Process 14 [Selection Value 1]) pixel data here; the decoders for it here are gdcm, "
                              "pylibjpeg"),
    ("CT_small.dcm", "gdcm", "decoder gdcm cannot read Explicit VR Little Endian pixel data: it is not compressed, "
                             "only pydicom reads it (--decoder pydicom)"),
])
def test_a_forced_decoder_that_cannot_decode_the_file_names_the_ones_that_could(name, decoder, reason):
    with pytest.raises(ScanError) as refused:
        load_scan(get_testdata_file(name), decoder=decoder)
    assert refused.value.reason == reason


def test_an_image_file_is_read_by_pillow_only_and_an_unknown_decoder_is_refused():
    assert load_scan(PNG_SAMPLE, decoder="pillow").decoder == "Pillow"
    with pytest.raises(ScanError, match=r"decoder pylibjpeg cannot read a PNG image: only Pillow reads it"):
        load_scan(PNG_SAMPLE, decoder="pylibjpeg")
    with pytest.raises(DecoderError, match=r"no decoder named 'openjpeg'; choose one of gdcm, pylibjpeg, pillow, "):
        load_scan(CT, decoder="openjpeg")


def test_decoder_plugins_lists_each_compressed_syntax_in_order():
    plugins = decoder_plugins()
    assert plugins["JPEG 2000 Image Compression (Lossless Only)"] == plugin_order(JPEG2000Lossless)
    assert plugins["RLE Lossless"] == ("pylibjpeg", "pydicom")
    assert "Explicit VR Little Endian" not in plugins


def test_identifiers_stay_out_of_metadata_and_repr():
    scan = load_scan(CT)
    assert scan.identifiers["PatientName"] == "CompressedSamples^CT1"
    assert {"PatientID", "StudyDate", "InstitutionName"} <= set(scan.identifiers)
    assert not set(scan.metadata) & set(IDENTIFYING_KEYWORDS)
    assert not set(METADATA_KEYWORDS) & set(IDENTIFYING_KEYWORDS)
    for value in (v for v in scan.identifiers.values() if len(v) > 3):  # not 'O' (sex), found everywhere
        assert value not in repr(scan)
        assert all(value not in shown for shown in scan.metadata.values())
    assert scan.metadata["Modality"] == "CT" and scan.metadata["SOPClassUID"] == "CT Image Storage"


# --- refusals ---------------------------------------------------------------------------------------------

def test_truncated_native_pixel_data_says_how_much_is_there(tmp_path):
    with pytest.raises(ScanError, match=r"pixel data truncated: 8130 of 8192 bytes"):
        load_scan(get_testdata_file("MR_truncated.dcm"))
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(CT.read_bytes()[:-500])
    with pytest.raises(ScanError, match=r"truncated: 32406 of 32768 bytes") as info:
        load_scan(cut)
    assert str(info.value).startswith(str(cut))


def test_truncated_compressed_file_is_refused(tmp_path):
    cut = tmp_path / "cut_j2k.dcm"
    cut.write_bytes((DATA / "MR2_J2KR.dcm").read_bytes()[:300_000])
    with pytest.raises(ScanError, match="truncated") as info:
        load_scan(cut)
    assert not isinstance(info.value, NotAScanError)


def test_absurd_declared_size_is_refused_before_decoding(tmp_path):
    path = write_dicom(tmp_path / "huge.dcm", ramp(rows=4, cols=4))
    ds = pydicom.dcmread(path)
    ds.Rows = ds.Columns = 60000
    ds.save_as(path)
    tracemalloc.start()
    with pytest.raises(ScanError, match=r"declared image size 60000 × 60000 × 1 frames needs 6\.7 GiB, "
                                        r"over the 2\.0 GiB limit"):
        load_scan(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 20 * 2**20  # refused from the header: nothing near 6.7 GiB was allocated
    assert DEFAULT_MAX_BYTES == 2 * 2**30


def test_max_bytes_applies_to_frames_and_images(tmp_path):
    with pytest.raises(ScanError, match=r"10 frames needs 80\.0 KiB, over the 79\.0 KiB limit"):
        load_scan(DATA / "emri_small.dcm", max_bytes=79 * 1024)
    png = tmp_path / "small.png"
    Image.fromarray(np.zeros((100, 100), np.uint8)).save(png)
    with pytest.raises(ScanError, match="declared image size 100 × 100 × 1 frames"):
        load_scan(png, max_bytes=9999)
    assert load_scan(png, max_bytes=10000).pixels.shape == (1, 100, 100)


def test_pillow_decompression_bomb_is_refused(tmp_path):
    bomb = tmp_path / "bomb.png"
    Image.new("1", (20000, 10000)).save(bomb)  # 200 Mpx in a few kB: over Pillow's 2 x 89.5 Mpx
    assert bomb.stat().st_size < 100_000
    with pytest.raises(ScanError, match="decompression bomb"):
        load_scan(bomb)


def test_unsupported_transfer_syntax_is_named(tmp_path):
    path = write_dicom(tmp_path / "video.dcm", ramp(), syntax=MPEG2MPML)
    with pytest.raises(ScanError, match="unsupported transfer syntax MPEG2 Main Profile / Main Level"):
        load_scan(path)


def test_unsupported_bits_allocated_and_missing_rows_are_refused(tmp_path):
    with pytest.raises(ScanError, match="unsupported Bits Allocated 12"):
        load_scan(write_dicom(tmp_path / "b12.dcm", ramp(), BitsAllocated=12))
    path = write_dicom(tmp_path / "zero.dcm", ramp())
    ds = pydicom.dcmread(path)
    ds.Rows = 0
    ds.save_as(path)
    with pytest.raises(ScanError, match="invalid Rows 0"):
        load_scan(path)


def test_text_file_is_not_a_scan(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("ward round notes\n" * 20)
    with pytest.raises(NotAScanError, match="not a DICOM or image file"):
        load_scan(notes)


def test_empty_missing_and_folder_paths_are_scan_errors(tmp_path):
    empty = tmp_path / "empty.dcm"
    empty.touch()
    for path, reason in ((empty, "file is empty"), (tmp_path / "gone.dcm", "no such file"),
                         (tmp_path, "is a folder")):
        with pytest.raises(ScanError, match=reason) as info:
            load_scan(path)
        assert not isinstance(info.value, NotAScanError)


def test_dicomdir_and_structured_report_are_not_scans():
    with pytest.raises(NotAScanError, match=r"no pixel data.*Media Storage Directory Storage"):
        load_scan(get_testdata_file("DICOMDIR"))
    with pytest.raises(NotAScanError, match=r"no pixel data.*SR Storage"):
        load_scan(get_testdata_file("test-SR.dcm"))


# --- images -----------------------------------------------------------------------------------------------

def save(tmp_path: Path, name: str, image: Image.Image, **options) -> Path:
    path = tmp_path / name
    image.save(path, **options)
    return path


def test_8_and_16_bit_grey_png_keep_their_values_and_dtypes(tmp_path):
    grey8 = np.arange(60, dtype=np.uint8).reshape(6, 10)
    grey16 = (np.arange(60, dtype=np.uint16) * 1000).reshape(6, 10)
    scan8 = load_scan(save(tmp_path, "g8.png", Image.fromarray(grey8)))
    scan16 = load_scan(save(tmp_path, "g16.png", Image.fromarray(grey16)))
    assert (scan8.source_format, scan8.decoder, scan8.photometric) == ("PNG", "Pillow", "MONOCHROME2")
    assert scan8.pixels.dtype == np.uint8 and scan16.pixels.dtype == np.uint16
    np.testing.assert_array_equal(scan8.pixels, grey8[np.newaxis])
    np.testing.assert_array_equal(scan16.pixels, grey16[np.newaxis])
    assert scan16.bits_allocated == 16 and dict(scan16.identifiers) == {}


def test_rgba_drops_alpha_and_la_becomes_grey(tmp_path):
    rgba = np.random.default_rng(0).integers(0, 256, (4, 5, 4), dtype=np.uint8)
    scan = load_scan(save(tmp_path, "c.png", Image.fromarray(rgba, "RGBA")))
    assert scan.photometric == "RGB" and scan.pixels.shape == (1, 4, 5, 3)
    np.testing.assert_array_equal(scan.pixels[0], rgba[..., :3])
    la = load_scan(save(tmp_path, "la.png", Image.fromarray(rgba[..., :2], "LA")))
    np.testing.assert_array_equal(la.pixels[0], rgba[..., 0])


def test_rgb_with_identical_channels_stays_grey(tmp_path):
    grey = np.random.default_rng(1).integers(0, 256, (6, 7), dtype=np.uint8)
    scan = load_scan(save(tmp_path, "g.png", Image.fromarray(np.stack([grey] * 3, axis=-1), "RGB")))
    assert scan.photometric == "MONOCHROME2" and not scan.is_color
    np.testing.assert_array_equal(scan.pixels[0], grey)
    tinted = np.stack([grey, grey, grey // 2], axis=-1)
    assert load_scan(save(tmp_path, "t.png", Image.fromarray(tinted, "RGB"))).is_color


def test_palette_png_becomes_rgb_or_grey_when_its_palette_is_grey(tmp_path):
    indices = np.array([[0, 1], [2, 1]], np.uint8)
    colour = Image.fromarray(indices, "P")
    colour.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255])
    scan = load_scan(save(tmp_path, "p.png", colour))
    assert scan.photometric == "RGB"
    np.testing.assert_array_equal(scan.pixels[0, 1, 0], [0, 0, 255])
    grey = Image.fromarray(indices, "P")
    grey.putpalette([10, 10, 10, 20, 20, 20, 30, 30, 30])
    scan = load_scan(save(tmp_path, "pg.png", grey))
    assert scan.photometric == "MONOCHROME2" and scan.pixels.dtype == np.uint8
    np.testing.assert_array_equal(scan.pixels[0], [[10, 20], [30, 20]])


def test_multipage_tiff_becomes_frames_and_mixed_pages_keep_the_first(tmp_path):
    pages = [Image.fromarray(np.full((3, 4), v, np.uint16)) for v in (1, 2, 3)]
    stack = load_scan(save(tmp_path, "s.tif", pages[0], save_all=True, append_images=pages[1:]))
    assert stack.source_format == "TIFF" and stack.pixels.shape == (3, 3, 4) and stack.pixels.dtype == np.uint16
    assert stack.pixels[:, 0, 0].tolist() == [1, 2, 3]
    thumbnail = Image.fromarray(np.zeros((2, 2), np.uint16))
    mixed = load_scan(save(tmp_path, "m.tif", pages[0], save_all=True, append_images=[thumbnail]))
    assert mixed.pixels.shape == (1, 3, 4)


def test_jpeg_and_bmp_load_as_rgb(tmp_path):
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 1] = 200
    for name, fmt in (("c.jpg", "JPEG"), ("c.bmp", "BMP")):
        scan = load_scan(save(tmp_path, name, Image.fromarray(rgb)))
        assert scan.source_format == fmt and scan.pixels.shape == (1, 8, 8, 3)
        assert abs(int(scan.pixels[0, 4, 4, 1]) - 200) <= 2


def test_truncated_png_is_a_scan_error(tmp_path):
    noise = np.random.default_rng(1).integers(0, 256, (64, 64), dtype=np.uint8)
    path = save(tmp_path, "n.png", Image.fromarray(noise))
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(ScanError, match="damaged or truncated"):
        load_scan(path)
