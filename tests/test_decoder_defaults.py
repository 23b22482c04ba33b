"""Each transfer syntax's default decoder, on one thread and with threads free, gives pydicom's reference pixels for
every file of the corpora (pydicom's, pydicom-data's and the bundled samples): ``pixel_array`` with pydicom's own
plugin order (GDCM first), the palette applied."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import data_store
import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_color_lut

from radbench.inference.errors import ScanError
from radbench.inference.loading import decode_threads, load_scan
from radbench.inference.loading.decoders import ONE_THREAD, THREADED

PYDICOM_FILES = Path(pydicom.data.__file__).parent / "test_files"  # get_testdata_files('*') would download
SAMPLES = Path(__file__).parents[1] / "sample_images"
ROOTS = (PYDICOM_FILES, Path(data_store.__file__).parent / "data", SAMPLES)


def _compressed_files() -> dict[str, list[Path]]:
    """Compressed (and deflated) transfer syntax name -> the corpus files in it."""
    found = defaultdict(list)
    for path in sorted(p for root in ROOTS for p in root.rglob("*") if p.is_file() and p.suffix != ".py"):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            syntax = ds.file_meta.TransferSyntaxUID
        except Exception:  # noqa: BLE001 - not DICOM, or no file meta
            continue
        if (syntax.is_compressed or syntax.is_deflated) and "Rows" in ds:
            found[syntax.name].append(path)
    return found


FILES = _compressed_files()
CASES = [(path, threads) for paths in FILES.values() for path in paths for threads in (1, 2)]


def _reference(path: Path) -> np.ndarray | None:
    ds = pydicom.dcmread(path)
    try:
        pixels = ds.pixel_array
    except Exception:  # noqa: BLE001 - pydicom cannot decode it: tests/test_decoding_coverage.py covers these
        return None
    if ds.PhotometricInterpretation == "PALETTE COLOR":
        pixels = apply_color_lut(pixels, ds)
    return pixels[np.newaxis] if int(ds.get("NumberOfFrames") or 1) == 1 else pixels


def test_the_corpus_covers_every_compressed_syntax_with_a_measured_order():
    measured = {uid.name for uid in ONE_THREAD} | {uid.name for uid in THREADED}
    assert len(FILES) == 9  # JPEG 2000 x 2, JPEG baseline, extended, lossless, JPEG-LS x 2, RLE, deflated
    assert set(FILES) - measured == {"Deflated Explicit VR Little Endian"}  # pydicom's own code, no choice


@pytest.mark.parametrize("path,threads", CASES, ids=lambda v: v.name if isinstance(v, Path) else f"{v}thr")
def test_the_default_decoder_gives_pydicoms_reference_pixels(path, threads):
    reference = _reference(path)
    if reference is None:
        pytest.skip("pydicom cannot decode it (no reference)")
    try:
        with decode_threads(threads, adaptive=False):
            scan = load_scan(path)
    except ScanError as exc:  # a file the loader refuses on purpose (damaged, or lying about its size)
        pytest.skip(f"refused: {exc.reason}")
    assert scan.pixels.dtype == reference.dtype.newbyteorder("=")
    np.testing.assert_array_equal(scan.pixels, reference, err_msg=f"default decoder {scan.decoder}")
