"""``radbench predict`` as a user runs it: a subprocess of the installed console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"
RADBENCH = shutil.which("radbench", path=str(Path(sys.executable).parent)) or "radbench"


def radbench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([RADBENCH, *map(str, args)], capture_output=True, text=True, timeout=600)


def test_every_backend_gives_the_same_labels_on_the_samples(sample_files):
    labels = {}
    for backend in ("naive", "vectorized", "numba"):
        result = radbench("predict", "--json", "--backend", backend, *sample_files)
        assert result.returncode == 0, result.stderr
        records = [json.loads(line) for line in result.stdout.splitlines()]
        scans = [r["file"] for r in records]
        assert all(r["backend"] == backend for r in records)
        assert all(r["notice"] == "For education, not for clinical use." for r in records)
        assert all(set(r["timings_ms"]) >= {"decode", "rescale", "window", "resize", "normalize", "infer"}
                   for r in records)
        labels[backend] = {r["file"]: r["label"] for r in records}
    assert len(scans) >= 5
    assert labels["naive"] == labels["vectorized"] == labels["numba"]


def test_table_output_has_probabilities_timings_and_the_notice():
    result = radbench("predict", get_testdata_file("CT_small.dcm"))
    assert result.returncode == 0, result.stderr
    for expected in ("prediction: withheld: the model was trained on chest CR/DX images; this is a CT image",
                     "NORMAL", "PNEUMONIA", "stage", "decode", "equalize",
                     "infer", "heatmap", "total", "out of distribution: modality CT",
                     "For education, not for clinical use."):
        assert expected in result.stdout


def test_bad_files_cost_one_line_each_and_the_rest_still_run(tmp_path):
    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(Path(get_testdata_file("CT_small.dcm")).read_bytes()[:-500])
    notes = tmp_path / "notes.txt"
    notes.write_text("not a scan")
    missing = tmp_path / "missing.dcm"
    good = get_testdata_file("MR_small.dcm")
    result = radbench("predict", truncated, notes, missing, good)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "MR_small.dcm" in result.stdout and "prediction:" in result.stdout
    problem_lines = [line for line in result.stderr.splitlines() if line.startswith(("error:", "skipped:"))]
    assert len(problem_lines) == 2  # the non-scan among several files is counted, not listed (as from a glob)
    assert any("truncated.dcm" in line and "truncated" in line.split("truncated.dcm", 1)[1] for line in problem_lines)
    assert any("missing.dcm" in line for line in problem_lines)
    assert "1 classified, 2 failed, 1 skipped (not scans)" in result.stderr


def test_unknown_model_is_one_clear_line(tmp_path):
    bogus = tmp_path / "bogus.onnx"
    bogus.write_text("nope")
    result = radbench("predict", "--model", bogus, get_testdata_file("CT_small.dcm"))
    assert result.returncode == 1
    assert "bogus.onnx" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("frame,ok", [(0, True), (9, True), (10, False)])
def test_frame_option_selects_or_refuses(frame, ok):
    result = radbench("predict", "--json", "--frame", frame, get_testdata_file("emri_small.dcm"))
    assert (result.returncode == 0) is ok
    if ok:
        assert json.loads(result.stdout)["frame"] == frame
    else:
        assert "out of range" in result.stderr


def test_heatmap_option_writes_the_scan_with_the_heatmap_and_the_notice(tmp_path):
    out = tmp_path / "heat.png"
    result = radbench("predict", "--heatmap", out, SAMPLES / "chest_cr_rg1_j2k_lossless.dcm")
    assert result.returncode == 0, result.stderr
    picture = np.asarray(Image.open(out))
    rows, cols = 1955, 1841
    assert picture.shape[1] == cols and picture.shape[0] > rows and picture.shape[2] == 3
    scan_part = picture[:rows]
    assert (scan_part[..., 0] != scan_part[..., 2]).any()  # colour where the heatmap lies
    assert str(out) in result.stderr


def test_heatmap_for_several_files_needs_a_folder(tmp_path):
    files = [SAMPLES / "chest_cr_rg1_j2k_lossless.dcm", SAMPLES / "tibia_cr_rg3_8bit_440px.png"]
    result = radbench("predict", "--heatmap", tmp_path / "nope.png", *files)
    assert result.returncode == 1 and "existing folder" in result.stderr
    result = radbench("predict", "--heatmap", tmp_path, *files)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chest_cr_rg1_j2k_lossless.dcm_heatmap.png",
                                                          "tibia_cr_rg3_8bit_440px.png_heatmap.png"]


def test_a_reader_that_leaves_early_is_no_traceback():
    """``radbench predict A B | head -1``: the pipe closes while RadBench still writes."""
    files = [str(SAMPLES / "ct_small_128px.dcm"), str(SAMPLES / "tibia_cr_rg3_8bit_440px.png")]
    process = subprocess.Popen([RADBENCH, "predict", *files, *files, *files],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = process.stdout.readline()
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141
    assert first.startswith(files[0].encode()) and "Traceback" not in stderr and "BrokenPipe" not in stderr


def test_decoder_option_names_the_decoder_or_the_ones_that_could_decode_the_file():
    mr = SAMPLES / "mr_shoulder_mr2_j2k_lossless.dcm"
    forced = radbench("predict", "--json", "--decoder", "gdcm", mr)
    assert forced.returncode == 0, forced.stderr
    record = json.loads(forced.stdout)
    assert record["decoder"] == "gdcm" and record["decoder_threads"] >= 1
    refused = radbench("predict", "--decoder", "pydicom", mr, SAMPLES / "ct_small_128px.dcm")
    assert refused.returncode == 1
    assert (f"error: {mr}: decoder pydicom cannot read JPEG 2000 Image Compression (Lossless Only) pixel data here; "
            "the decoders for it here are pylibjpeg, pillow, gdcm") in refused.stderr.splitlines()
    assert "decoded by pydicom" in refused.stdout  # the CT, uncompressed, still runs
    unknown = radbench("predict", "--decoder", "openjpeg", mr)
    assert unknown.returncode == 2 and "invalid choice: 'openjpeg' (choose from 'gdcm', 'pylibjpeg'" in unknown.stderr
