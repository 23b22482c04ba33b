"""Peak memory of loading + preprocessing (``radbench bench --memory``): the child's measurement, its wording, and
what a loaded scan keeps. The speed and memory targets themselves are measured by ``radbench bench --memory``;
the bounds here are generous, for a busy 2-core machine."""

from __future__ import annotations

import gc
import io
import struct
import tracemalloc
from pathlib import Path

import data_store
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, SecondaryCaptureImageStorage, generate_uid

from radbench.app.bench_command import _memory_line
from radbench.inference.benchmarking.memory import (
    LIFETIME_HIGH_WATER,
    RESET_HIGH_WATER,
    MemoryPeak,
    memory_peak,
    peak_from_child,
    reset_high_water,
    resident_status,
)
from radbench.inference.errors import ScanError
from radbench.inference.loading import load_scan
from radbench.inference.loading.codestream import FragmentReader
from radbench.inference.loading.dicom import plugin_order
from radbench.inference.scan import LUMA_WEIGHTS, Scan

MiB = 2**20
DATA = Path(data_store.__file__).parent / "data"
CAN_RESET = reset_high_water()
needs_reset = pytest.mark.skipif(not CAN_RESET, reason="this system cannot reset the high-water mark (clear_refs)")


def write_uncompressed(path: Path, rows: int, columns: int, *, bits_stored: int = 16, high_bits: int = 0,
                       frames_of_data: int = 1) -> Path:
    """A one-frame 16-bit grey uncompressed DICOM of random pixels below ``2**bits_stored``, with ``high_bits`` set
    in the unused bits above and pixel data for ``frames_of_data`` frames."""
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, generate_uid()
    ds.Modality, ds.PatientName = "CR", "Doe^Jane"
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = rows, columns, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, bits_stored, bits_stored - 1, 0
    pixels = np.random.default_rng(0).integers(0, 2**bits_stored, (frames_of_data, rows, columns), dtype=np.uint16)
    ds.PixelData = (pixels | np.uint16(high_bits)).astype("<u2").tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    ds.save_as(path, enforce_file_format=True)
    return path


# ----- the measurement


def test_a_child_measured_with_resets_gives_loading_and_preprocessing_apart_and_the_larger_as_the_peak():
    child = {"measured_by": RESET_HIGH_WATER, "baseline": 100 * MiB, "load_peak": 120 * MiB,
             "after_load": 110 * MiB, "preprocess_peak": 130 * MiB, "decoded": 10 * MiB}
    peak = peak_from_child("a.dcm", "numba", child)
    assert not peak.censored and peak.measured_by == RESET_HIGH_WATER
    assert (peak.load_peak_bytes, peak.resident_after_load_bytes, peak.preprocess_peak_bytes) == (
        20 * MiB, 10 * MiB, 30 * MiB)
    assert peak.peak_above_baseline_bytes == 30 * MiB and peak.ratio == 3.0


def test_without_a_reset_a_high_water_mark_that_loading_did_not_raise_is_only_an_upper_bound():
    unmoved = {"measured_by": LIFETIME_HIGH_WATER, "baseline": 100 * MiB, "before": 200 * MiB, "peak": 200 * MiB,
               "decoded": 10 * MiB}
    raised = {**unmoved, "peak": 250 * MiB}
    assert peak_from_child("a.dcm", "numba", unmoved).censored
    assert not peak_from_child("a.dcm", "numba", raised).censored
    assert peak_from_child("a.dcm", "numba", raised).load_peak_bytes is None


def test_the_printed_line_splits_loading_from_preprocessing_and_says_at_most_when_censored():
    measured = MemoryPeak("a.dcm", "numba", 10 * MiB, 30 * MiB, False, load_peak_bytes=20 * MiB,
                          preprocess_peak_bytes=30 * MiB, resident_after_load_bytes=10 * MiB,
                          measured_by=RESET_HIGH_WATER)
    line = _memory_line(measured)
    assert "30.0 MiB = 3.0 x the decoded image (10.0 MiB)" in line
    assert "loading 2.0 x (then 1.0 x resident), preprocessing 3.0 x" in line and "at most" not in line
    censored = MemoryPeak("a.dcm", "numba", 10 * MiB, 90 * MiB, True)
    assert _memory_line(censored).endswith("(at most)")


def test_the_bench_command_explains_a_censored_figure_in_words(monkeypatch):
    from radbench.app import bench_command

    censored = MemoryPeak("a.dcm", "numba", 10 * MiB, 90 * MiB, True)
    monkeypatch.setattr(bench_command, "memory_peak", lambda file, backend, decoder: censored)
    benchmark = type("B", (), {"files": (type("F", (), {"file": "a.dcm"}),)})
    out = io.StringIO()
    assert bench_command._memory(benchmark, ["numba"], None, out, io.StringIO()) == (censored,)
    assert "(at most)" in out.getvalue() and "cannot reset" in out.getvalue() and "clear_refs" in out.getvalue()


@needs_reset
def test_a_reset_brings_the_high_water_mark_down_to_the_resident_size():
    block = np.ones(64 * MiB, dtype=np.uint8)  # touched: resident
    del block
    assert resident_status()["VmHWM"] >= resident_status()["VmRSS"]
    assert reset_high_water()
    status = resident_status()
    assert status["VmHWM"] < status["VmRSS"] + 8 * MiB


@needs_reset
@pytest.mark.slow
def test_the_child_reports_an_uncensored_peak_of_a_few_decoded_images_for_numba(tmp_path):
    path = write_uncompressed(tmp_path / "film.dcm", 2048, 2048, bits_stored=12)  # 8 MiB decoded
    peak = memory_peak(path, "numba")
    assert peak.measured_by == RESET_HIGH_WATER and not peak.censored
    assert peak.decoded_bytes == 2048 * 2048 * 2
    assert peak.load_peak_bytes >= 0.5 * peak.decoded_bytes  # the pixels are resident after loading
    assert peak.preprocess_peak_bytes >= 2 * peak.decoded_bytes  # the frame and one float32 frame at least
    assert peak.ratio < 8  # the target is 3.5; generous for a busy machine


@needs_reset
@pytest.mark.parametrize("decoder", ["pylibjpeg", "pillow"])
def test_the_child_loads_with_the_decoder_the_bench_was_given_and_says_which(decoder):
    """``radbench bench --decoder NAME --memory``: the peak belongs to the decoder the stages were timed with."""
    path = Path(__file__).parents[1] / "sample_images" / "chest_cr_rg1_j2k_lossless.dcm"
    peak = memory_peak(path, "vectorized", decoder)
    assert peak.decoder == decoder
    assert _memory_line(peak).split(":")[0].endswith(f", decoded by {decoder}")


# ----- what loading allocates and keeps


def traced_load(path: Path):
    """``load_scan(path)`` under tracemalloc: the scan, the bytes still allocated after it and the peak."""
    tracemalloc.start()
    try:
        scan = load_scan(path)
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return scan, current, peak


def test_an_uncompressed_file_is_decoded_in_its_own_bytes_with_its_unused_high_bits_still_cleared(tmp_path):
    path = write_uncompressed(tmp_path / "film.dcm", 1024, 1024, bits_stored=12, high_bits=0xA000)
    scan, current, peak = traced_load(path)
    nbytes = 1024 * 1024 * 2
    assert scan.pixels.nbytes == nbytes
    assert peak < 1.3 * nbytes and current < 1.2 * nbytes  # was 2 copies: the file's bytes and the decoded array
    expected = pydicom.dcmread(path).pixel_array  # pydicom clears the bits above Bits Stored
    assert expected.max() < 2**12 and np.array_equal(scan.pixels[0], expected)
    assert not scan.pixels.flags.writeable and scan.pixels.flags.c_contiguous and scan.pixels.dtype.isnative


@pytest.mark.filterwarnings("ignore:The pixel data is .* bytes long")  # pydicom's word on the excess
def test_excess_frames_in_an_uncompressed_file_are_not_kept_with_the_scan(tmp_path):
    path = write_uncompressed(tmp_path / "film.dcm", 512, 512, frames_of_data=4)  # declares 1 frame, holds 4
    scan, current, _ = traced_load(path)
    assert scan.pixels.shape == (1, 512, 512) and scan.warnings
    assert current < 1.2 * scan.pixels.nbytes


def test_a_grey_jpeg_2000_frame_is_decoded_from_its_fragments_like_pydicoms_pylibjpeg_plugin():
    scan, current, peak = traced_load(DATA / "MR2_J2KR.dcm")
    nbytes = 1024 * 1024 * 2
    assert scan.decoder == "pylibjpeg" and scan.pixels.nbytes == nbytes
    assert current < 1.2 * nbytes  # neither the file's bytes nor the dataset are kept
    assert peak < 2.5 * nbytes  # Python's share of the peak: GDCM's path made 6.9 (text, bytes, array)
    ds = pydicom.dcmread(DATA / "MR2_J2KR.dcm")
    ds.pixel_array_options(decoding_plugin="pylibjpeg")
    assert np.array_equal(scan.pixels[0], ds.pixel_array) and scan.pixels.dtype == ds.pixel_array.dtype


@pytest.mark.parametrize("name", ["US1_J2KR.dcm", "J2K_pixelrep_mismatch.dcm"])
def test_jpeg_2000_that_needs_pydicoms_corrections_goes_through_its_plugins(name):
    path = DATA / name if (DATA / name).exists() else Path(get_testdata_file(name))
    # colour (YBR to RGB); signedness differing from the header: pydicom's first plugin (decoders.ONE_THREAD's order)
    assert load_scan(path).decoder == plugin_order(JPEG2000Lossless)[0]


def test_when_openjpeg_fails_the_plugins_decode_the_file_as_before(monkeypatch):
    import openjpeg

    def refuse(*args, **kwargs):
        raise RuntimeError("Error decoding the J2K data: failed to decode image")

    expected = load_scan(DATA / "MR2_J2KR.dcm").pixels
    monkeypatch.setattr(openjpeg, "decode", refuse)
    scan = load_scan(DATA / "MR2_J2KR.dcm")
    assert scan.decoder == plugin_order(JPEG2000Lossless)[0] and np.array_equal(scan.pixels, expected)


def j2k_in_fragments(tmp_path: Path, fragments: int, *, columns: int | None = None) -> Path:
    """MR2_J2KR.dcm with its codestream cut into ``fragments`` fragments (and its SIZ width set to ``columns``)."""
    ds = pydicom.dcmread(DATA / "MR2_J2KR.dcm")
    frame = bytearray(next(generate_frames(ds.PixelData, number_of_frames=1)))
    if columns is not None:
        struct.pack_into(">I", frame, 8, columns)  # Xsiz
    ds.PixelData = encapsulate([bytes(frame)], fragments_per_frame=fragments)
    path = tmp_path / f"mr2_{fragments}.dcm"
    ds.save_as(path)
    return path


def test_a_codestream_in_many_fragments_is_checked_and_decoded_across_their_boundaries(tmp_path):
    expected = load_scan(DATA / "MR2_J2KR.dcm").pixels
    scan = load_scan(j2k_in_fragments(tmp_path, 5000))  # about 120 bytes each: the SIZ marker spans fragments
    assert scan.decoder == "pylibjpeg" and np.array_equal(scan.pixels, expected)
    with pytest.raises(ScanError, match=r"JPEG 2000 codestream declares 1024 x 60000 x 1 sample of 12 bits but the "
                                        r"header says 1024 x 1024 x 1 sample of 16 bits"):
        load_scan(j2k_in_fragments(tmp_path, 5000, columns=60000))


def test_the_fragment_reader_reads_the_fragments_as_one_stream():
    frame = bytes(range(256)) * 40
    reader = FragmentReader.of_single_frame(encapsulate([frame], fragments_per_frame=7))
    assert reader.read() == frame and reader.read(10) == b""
    assert reader.seek(-20, io.SEEK_END) == len(frame) - 20 and reader.read(5) == frame[-20:-15]
    assert reader.seek(1400) == 1400 and reader.read(3000) == frame[1400:4400] and reader.tell() == 4400
    target = bytearray(100)
    assert reader.seek(0) == 0 and reader.readinto(target) == 100 and target == frame[:100]
    two_frames = encapsulate([frame, frame], has_bot=True)
    assert FragmentReader.of_single_frame(two_frames) is None  # more than one frame: pydicom splits them


def test_the_luma_of_a_colour_frame_is_the_same_in_a_fraction_of_the_memory():
    rgb = np.random.default_rng(1).integers(0, 256, (1, 1000, 1100, 3), dtype=np.uint8)
    scan = Scan(path=Path("colour.png"), pixels=rgb, photometric="RGB", source_format="PNG", decoder="Pillow")
    r, g, b = LUMA_WEIGHTS
    expected = (r * rgb[0, ..., 0] + g * rgb[0, ..., 1] + b * rgb[0, ..., 2]).astype(np.float32)
    tracemalloc.start()
    try:
        grey = scan.grey_frame()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert grey.dtype == np.float32 and np.array_equal(grey, expected)
    assert peak < 2 * rgb.nbytes  # the float32 result is 1.33; whole-frame float64 temporaries made 5.3


def test_grey_content_stored_as_rgb_keeps_one_grey_copy_not_the_rgb_array(tmp_path):
    grey = (np.arange(600 * 500) % 251).astype(np.uint8).reshape(600, 500)
    Image.fromarray(np.stack([grey] * 3, axis=-1)).save(tmp_path / "export.png")
    scan, current, _ = traced_load(tmp_path / "export.png")
    assert scan.photometric == "MONOCHROME2" and np.array_equal(scan.pixels[0], grey)
    assert scan.pixels.flags.c_contiguous and current < 1.2 * grey.nbytes  # was 3: a view of the RGB array
