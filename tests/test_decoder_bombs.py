"""Small files that lie about their decoded size are refused before any decoder runs, in bounded memory."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from bomb_files import BOMBS, SAMPLES, deflate_bomb, excess_frames
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.uid import DeflatedExplicitVRLittleEndian

from radbench.inference.errors import ScanError
from radbench.inference.loading import (
    DEFAULT_MAX_BYTES,
    load_scan,
    load_scan_isolated,
    memory_budget,
    processing_peak,
)

#: What each bomb's refusal says.
REASONS = {
    "j2k_siz": "JPEG 2000 codestream declares 60000 x 60000 x 1 sample of 15 bits but the header says "
               "1955 x 1841 x 1 sample of 16 bits",
    "htj2k_siz": "HTJ2K codestream declares 60000 x 60000 x 1 sample of 15 bits but the header says "
                 "1955 x 1841",
    "j2k_tiles": "JPEG 2000 codestream declares 3599155 tiles of 1 x 1, over the 65535 allowed",
    "jpeg_sof": "JPEG codestream declares 60000 x 60000 x 3 samples of 8 bits but the header says 100 x 100",
    "jpeg_ls_sof": "JPEG-LS codestream declares 60000 x 60000 x 1 sample of 16 bits but the header says 64 x 64",
    "rle_offsets": "RLE segment offsets [64, 2147483648] do not fit the frame's",
    "deflate": "deflated data expands beyond its declared size (0.1 MiB image): refused",
    "gif_frame_extent": "decompression bomb: a later GIF frame grows the 1 x 1 image to 13000 x 13000",
}
PEAK_BOUND_MIB = 400  # the interpreter with NumPy, pydicom and the decoder plugins takes about 100
ADDRESS_SPACE_GUARD = 4 * 1024**3  # a regression fails the test instead of taking the machine down

_CHILD = textwrap.dedent("""
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, ({guard}, {guard}))
    from radbench.inference.errors import ScanError
    from radbench.inference.loading import load_scan
    try:
        load_scan(sys.argv[1])
        reason = None
    except ScanError as exc:
        reason = exc.reason
    peak_kib = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
    print(json.dumps({{"reason": reason, "peak_mib": peak_kib / 1024}}))
""").format(guard=ADDRESS_SPACE_GUARD)


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bombs")
    built = {name: build(folder) for name, build in BOMBS.items() if name != "deflate"}
    built["deflate"] = deflate_bomb(folder, pixel_bytes=512 * 1024**2)  # 2 GiB takes 6 s to build; same rule
    return built


@pytest.mark.parametrize("name", sorted(REASONS))
def test_bomb_is_refused_with_both_sizes_in_bounded_memory(bombs, name):
    result = subprocess.run([sys.executable, "-c", _CHILD, str(bombs[name])], capture_output=True, text=True,
                            timeout=60, check=True, cwd=Path(__file__).resolve().parent.parent)
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["reason"] is not None and REASONS[name] in outcome["reason"]
    assert outcome["peak_mib"] < PEAK_BOUND_MIB


def test_the_full_size_deflate_bomb_is_refused_before_inflating_it(tmp_path):
    with pytest.raises(ScanError, match="deflated data expands beyond its declared size"):
        load_scan(deflate_bomb(tmp_path))


def test_a_deflated_file_within_its_size_loads_like_its_uncompressed_twin(tmp_path):
    source = Path(get_testdata_file("CT_small.dcm"))
    ds = dcmread(source)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(tmp_path / "ct_deflated.dcm", enforce_file_format=True)
    deflated, plain = load_scan(tmp_path / "ct_deflated.dcm"), load_scan(source)
    assert deflated.transfer_syntax == "Deflated Explicit VR Little Endian"
    np.testing.assert_array_equal(deflated.pixels, plain.pixels)
    assert deflated.rescale_intercept == plain.rescale_intercept and deflated.window_presets == plain.window_presets


def test_excess_frames_are_ignored_with_a_warning(tmp_path):
    scan = load_scan(excess_frames(tmp_path, frames_held=512))
    assert scan.frame_count == 1 and scan.pixels.shape == (1, 64, 64)
    np.testing.assert_array_equal(scan.pixels[0].ravel(), np.arange(64 * 64))
    assert scan.warnings == ("pixel data holds 512 frames' worth but Number of Frames is 1: only the declared "
                             "frames were read",)


def test_a_file_with_fewer_frames_than_declared_is_still_refused_as_truncated(tmp_path):
    ds = dcmread(excess_frames(tmp_path, frames_held=2))
    ds.NumberOfFrames = 3
    ds.save_as(tmp_path / "short.dcm")
    with pytest.raises(ScanError, match="pixel data truncated"):
        load_scan(tmp_path / "short.dcm")


def test_an_image_too_large_to_process_on_this_machine_is_refused_before_decoding(tmp_path):
    ds = dcmread(excess_frames(tmp_path, frames_held=1))
    side = int((memory_budget() / 10) ** 0.5) + 1  # 8-bit: 2 + 8 bytes of peak per pixel
    ds.Rows = ds.Columns = side
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.save_as(tmp_path / "huge.dcm")
    assert processing_peak(side, side, side * side) > memory_budget()
    with pytest.raises(ScanError) as refused:
        load_scan(tmp_path / "huge.dcm")
    over_limit = side * side > DEFAULT_MAX_BYTES
    assert ("limit" if over_limit else "this machine allows (half its memory)") in refused.value.reason


def test_header_values_in_messages_are_quoted_on_one_line(tmp_path):
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    ds.PhotometricInterpretation = "YBR\nok: NORMAL 0.99"
    ds.save_as(tmp_path / "forged.dcm")
    with pytest.raises(ScanError) as refused:
        load_scan(tmp_path / "forged.dcm")
    assert "\n" not in str(refused.value) and "'YBR\\nok: NORMAL 0.99'" in refused.value.reason


def test_isolated_loading_turns_a_decoder_over_its_ceiling_into_a_scan_error(tmp_path):
    ds = dcmread(excess_frames(tmp_path, frames_held=1))
    ds.Rows = ds.Columns = 4000
    ds.PixelData = bytes(4000 * 4000 * 2)  # 32 MB: accepted by every size check, over a 16 MiB ceiling
    ds.save_as(tmp_path / "big.dcm")
    with pytest.raises(ScanError, match=r"big\.dcm: decoder exceeded the memory limit"):
        load_scan_isolated(tmp_path / "big.dcm", ceiling_bytes=16 * 1024**2)
    assert load_scan_isolated(tmp_path / "big.dcm").pixels.shape == (1, 4000, 4000)


def test_a_batch_over_every_bomb_and_good_files_gives_one_row_each(bombs, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for path in [*bombs.values(), SAMPLES / "ct_small_128px.dcm", SAMPLES / "tibia_cr_rg3_8bit_440px.png"]:
        shutil.copy(path, folder)
    excess_frames(folder)
    out = tmp_path / "results.csv"
    subprocess.run([Path(sys.executable).parent / "radbench", "batch", str(folder), "--out", str(out),
                    "--workers", "2"], check=True, timeout=600, capture_output=True)
    with out.open(newline="", encoding="utf-8") as f:
        rows = {Path(row["path"]).name: row for row in csv.DictReader(f)}
    assert set(rows) == {p.name for p in folder.iterdir()}
    assert {name for name, row in rows.items() if row["status"] == "ok"} == {
        "ct_small_128px.dcm", "tibia_cr_rg3_8bit_440px.png", "excess_frames.dcm"}
    for name, path in bombs.items():
        assert rows[path.name]["status"] == "error" and REASONS[name][:40] in rows[path.name]["error"]
    assert "only the declared frames were read" in rows["excess_frames.dcm"]["warning"]
    assert not rows["ct_small_128px.dcm"]["warning"]
