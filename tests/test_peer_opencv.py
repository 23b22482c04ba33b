"""The bench's OpenCV row: what a user who wants speed would write, timed beside RadBench's backends."""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from radbench.app.bench_command import add_parser, agreement_lines, run_bench
from radbench.inference.benchmarking import peer_opencv
from radbench.inference.benchmarking.file_bench import OPENCV, TOTAL_STAGE, bench_file
from radbench.inference.benchmarking.runner import FileResult
from radbench.inference.errors import BackendError
from radbench.inference.loading import load_scan
from radbench.inference.model import NOT_FOR_CLINICAL_USE, Model
from radbench.inference.preprocessing import PreprocessSpec, preprocess

CT = get_testdata_file("CT_small.dcm")
#: In the model's domain, so that the bench gives labels (outside it, a CT's are withheld).
CHEST = Path(__file__).resolve().parent.parent / "sample_images" / "chest_pediatric_normal.dcm"


@pytest.fixture(scope="module")
def ct_scan():
    return load_scan(CT)


@pytest.fixture(scope="module")
def chest_scan():
    return load_scan(CHEST)


def test_the_opencv_pipeline_is_close_to_ours_and_labelled_alike(chest_scan):
    model = Model()
    result = bench_file(chest_scan, model.card, backends=["vectorized", OPENCV], repeats=2, warmup=0,
                        classify=model.label)
    assert {r.stage for r in result.records if r.backend == OPENCV} == {
        "rescale", "window", "equalize", "resize", "normalize", TOTAL_STAGE}
    assert 0 < result.max_abs_diff[OPENCV] < 0.5  # approximate: 8-bit window, no cdf interpolation
    assert set(result.labels) == {"vectorized", OPENCV} and set(result.labels.values()) <= set(model.card.labels)


def test_opencv_stages_keep_the_contracts_shapes_and_value_ranges():
    image = np.arange(40 * 30, dtype=np.uint16).reshape(40, 30)
    spec = PreprocessSpec(1.0, -5.0, None, None, True, (8, 6), (0.5,), (0.25,), 3)
    tensor = preprocess(image, spec, peer_opencv.as_backend())
    assert tensor.shape == (1, 3, 8, 6) and tensor.dtype == np.float32
    assert np.all(np.isfinite(tensor))


def test_without_opencv_the_row_is_left_out_with_how_to_install_it(ct_scan, monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # as on a machine without OpenCV: its import fails
    with pytest.raises(BackendError, match=r"^opencv is not installed .*pip install 'radbench\[peers\]'"):
        peer_opencv.as_backend()
    result = bench_file(ct_scan, Model().card, backends=["vectorized", OPENCV], repeats=1, warmup=0)
    assert result.backends == ("vectorized",)
    assert any(note.startswith("opencv left out: it is not installed here; pip install") for note in result.notes)


def _bench(*argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    out, err = io.StringIO(), io.StringIO()
    code = run_bench(parser.parse_args(["bench", *argv]), out, err)
    return code, out.getvalue(), err.getvalue()


def test_the_bench_prints_the_opencv_row_its_speedups_label_agreement_and_why_it_differs(tmp_path):
    target = tmp_path / "bench.json"
    code, text, err = _bench(CT, str(CHEST), "--backends", "vectorized,numba,opencv", "--repeat", "2",
                             "--no-fresh-compile", "--json", str(target))  # the CT is withheld, the chest film not
    assert code == 0 and "error" not in err
    header = next(line for line in text.splitlines() if line.lstrip().startswith("stage "))
    assert header.split()[-1] == OPENCV
    assert re.search(r"numba \(\d threads?\) +[\d.]+x( \(noise\))? vs vectorized, [\d.]+x( \(noise\))? vs opencv", text)
    assert re.search(r"model input vs vectorized, max \|diff\|: numba 0, opencv 0\.0\d+", text)
    label = re.search(r"label on the model input: vectorized (\w+); numba, opencv agree", text)
    assert label and label[1] in Model().card.labels
    assert ("opencv differs by design: its window quantizes to 256 levels before the histogram, its equalize maps "
            "bins without interpolating the cdf, and it resizes 8-bit values") in text
    document = json.loads(target.read_text(encoding="utf-8"))
    assert {r["stage"] for r in document["records"] if r["backend"] == OPENCV} == {
        "rescale", "window", "equalize", "resize", "normalize", TOTAL_STAGE}
    assert document["files"][0]["labels"] is None and document["files"][0]["label_withheld"].startswith("withheld: ")
    assert document["files"][1]["labels"] == {"vectorized": label[1], "numba": label[1], OPENCV: label[1]}
    assert document["environment"]["opencv-python-headless"] == version("opencv-python-headless")


def test_a_label_that_differs_from_ours_is_named(chest_scan):
    def classify(tensor: np.ndarray) -> str:  # a label per distinct model input: only opencv's differs
        return f"mean {tensor.mean():.9f}"

    bench = bench_file(chest_scan, Model().card, backends=["numba", OPENCV], repeats=1, warmup=0, classify=classify)
    lines = agreement_lines(FileResult(bench, threads=1))
    ours, theirs = bench.labels["vectorized"], bench.labels[OPENCV]
    assert ours != theirs
    assert (f"label on the model input: vectorized {ours}; numba agrees; opencv says {theirs}, DIFFERS. "
            f"{NOT_FOR_CLINICAL_USE}") in lines


def test_without_opencv_the_bench_reports_the_row_unavailable_and_times_the_rest(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "cv2", None)
    target = tmp_path / "bench.json"
    code, text, err = _bench(CT, "--backends", "vectorized,opencv", "--repeat", "1", "--no-fresh-compile", "--json",
                             str(target))
    assert code == 0 and err == ""
    assert "note: opencv left out: it is not installed here; pip install 'radbench[peers]'" in text
    assert "vs opencv" not in text and "opencv differs" not in text
    document = json.loads(target.read_text(encoding="utf-8"))
    assert {r["backend"] for r in document["records"]} >= {"vectorized"}
    assert OPENCV not in {r["backend"] for r in document["records"]} and document["errors"] == []
