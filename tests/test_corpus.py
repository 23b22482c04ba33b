"""Every file of pydicom's and pydicom-data's test corpora either loads correctly or raises ScanError."""

from __future__ import annotations

from pathlib import Path

import data_store
import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_color_lut

from radbench.inference.errors import ScanError
from radbench.inference.loading import load_scan
from radbench.inference.loading.last_resort import LAST_RESORTS

PYDICOM_FILES = Path(pydicom.data.__file__).parent / "test_files"  # get_testdata_files('*') would download
DATA_STORE = Path(data_store.__file__).parent / "data"
CORPUS = sorted(p for root in (PYDICOM_FILES, DATA_STORE) for p in root.rglob("*") if p.is_file())

#: (twin, reference): the same pixels in another transfer syntax, byte order or padding; the reference is
#: uncompressed. OBXXXX1A_expb* also checks the big endian palette fix in ``inference.loading.dicom``.
TWINS = [
    ("RG1_J2KR.dcm", "RG1_UNCR.dcm"),
    ("RG3_J2KR.dcm", "RG3_UNCR.dcm"),
    ("MR2_J2KR.dcm", "MR2_UNCR.dcm"),
    ("US1_J2KR.dcm", "US1_UNCR.dcm"),
    ("693_J2KR.dcm", "693_UNCR.dcm"),
    ("examples_jpeg2k.dcm", "US1_UNCR.dcm"),
    ("MR_small_RLE.dcm", "MR_small.dcm"),
    ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm"),
    ("MR_small_jp2klossless.dcm", "MR_small.dcm"),
    ("MR_small_bigendian.dcm", "MR_small.dcm"),
    ("MR_small_expb.dcm", "MR_small.dcm"),
    ("MR_small_implicit.dcm", "MR_small.dcm"),
    ("MR_small_padded.dcm", "MR_small.dcm"),
    ("emri_small_RLE.dcm", "emri_small.dcm"),
    ("emri_small_big_endian.dcm", "emri_small.dcm"),
    ("emri_small_jpeg_2k_lossless.dcm", "emri_small.dcm"),
    ("emri_small_jpeg_ls_lossless.dcm", "emri_small.dcm"),
    ("SC_rgb_rle.dcm", "SC_rgb.dcm"),
    ("SC_rgb_expb.dcm", "SC_rgb.dcm"),
    ("SC_rgb_jpeg_gdcm.dcm", "SC_rgb.dcm"),
    ("SC_rgb_gdcm2k_uncompressed.dcm", "SC_rgb.dcm"),
    ("SC_rgb_rle_2frame.dcm", "SC_rgb_2frame.dcm"),
    ("SC_rgb_expb_2frame.dcm", "SC_rgb_2frame.dcm"),
    ("SC_rgb_rle_16bit.dcm", "SC_rgb_16bit.dcm"),
    ("SC_rgb_expb_16bit.dcm", "SC_rgb_16bit.dcm"),
    ("SC_rgb_rle_16bit_2frame.dcm", "SC_rgb_16bit_2frame.dcm"),
    ("SC_rgb_expb_16bit_2frame.dcm", "SC_rgb_16bit_2frame.dcm"),
    ("SC_rgb_rle_32bit.dcm", "SC_rgb_32bit.dcm"),
    ("SC_rgb_expb_32bit.dcm", "SC_rgb_32bit.dcm"),
    ("SC_rgb_rle_32bit_2frame.dcm", "SC_rgb_32bit_2frame.dcm"),
    ("SC_rgb_expb_32bit_2frame.dcm", "SC_rgb_32bit_2frame.dcm"),
    ("SC_rgb_small_odd_big_endian.dcm", "SC_rgb_small_odd.dcm"),
    ("OBXXXX1A_rle.dcm", "OBXXXX1A.dcm"),
    ("OBXXXX1A_expb.dcm", "OBXXXX1A.dcm"),
    ("OBXXXX1A_rle_2frame.dcm", "OBXXXX1A_2frame.dcm"),
    ("OBXXXX1A_expb_2frame.dcm", "OBXXXX1A_2frame.dcm"),
    ("gdcm-US-ALOKA-16_big.dcm", "gdcm-US-ALOKA-16.dcm"),
    ("liver_expb.dcm", "liver.dcm"),
    ("liver_expb_1frame.dcm", "liver_1frame.dcm"),
    ("rtdose_rle.dcm", "rtdose.dcm"),
    ("rtdose_expb.dcm", "rtdose.dcm"),
    ("rtdose_rle_1frame.dcm", "rtdose_1frame.dcm"),
    ("rtdose_expb_1frame.dcm", "rtdose_1frame.dcm"),
]


def corpus_file(name: str) -> Path:
    return next(p for p in CORPUS if p.name == name)


def test_the_corpus_is_installed():
    assert len(CORPUS) > 200
    assert {"RG1_J2KR.dcm", "CT_small.dcm", "DICOMDIR"} <= {p.name for p in CORPUS}


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_file_loads_like_pydicom_decodes_it_or_raises_scan_error(path):
    try:
        scan = load_scan(path)
    except ScanError as exc:
        assert exc.path == path and exc.reason
        return
    assert scan.pixels.ndim == (4 if scan.photometric == "RGB" else 3)
    assert scan.pixels.dtype.isnative and not scan.pixels.flags.writeable
    if scan.source_format != "DICOM":
        return
    ds = pydicom.dcmread(path, force=True)
    if "TransferSyntaxUID" not in ds.file_meta:
        return  # pydicom cannot decode it; the loader infers the syntax from the encoding pydicom read
    if scan.decoder in LAST_RESORTS:
        return  # pydicom cannot decode it: tests/test_decoding_coverage.py checks these against references
    ds.pixel_array_options(decoding_plugin=scan.decoder)  # the same plugin: lossy JPEG decoders differ by a few levels
    expected = ds.pixel_array
    if ds.PhotometricInterpretation == "PALETTE COLOR":
        if ds.original_encoding[1] is False:
            return  # pydicom 3.0's apply_color_lut misreads big endian LUT data: the twin test checks these
        expected = apply_color_lut(expected, ds)
    if scan.frame_count == 1:
        expected = expected[np.newaxis]
    assert scan.pixels.dtype == expected.dtype.newbyteorder("=")
    np.testing.assert_array_equal(scan.pixels, expected)


@pytest.mark.parametrize("twin,reference", TWINS)
def test_twins_in_other_encodings_have_identical_pixels(twin, reference):
    a, b = load_scan(corpus_file(twin)), load_scan(corpus_file(reference))
    assert a.pixels.dtype == b.pixels.dtype
    np.testing.assert_array_equal(a.pixels, b.pixels)
    assert (a.photometric, a.rescale_slope, a.rescale_intercept) == (b.photometric, b.rescale_slope,
                                                                     b.rescale_intercept)
