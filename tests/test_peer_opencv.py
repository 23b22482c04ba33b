"""The bench's OpenCV row: what a user who wants speed would write, timed beside RadBench's backends."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from radbench.inference.benchmarking import peer_opencv
from radbench.inference.benchmarking.file_bench import OPENCV, TOTAL_STAGE, bench_file
from radbench.inference.errors import BackendError
from radbench.inference.loading import load_scan
from radbench.inference.model import Model
from radbench.inference.preprocessing import PreprocessSpec, preprocess

CT = get_testdata_file("CT_small.dcm")


@pytest.fixture(scope="module")
def ct_scan():
    return load_scan(CT)


def test_the_opencv_pipeline_is_close_to_ours_and_labelled_alike(ct_scan):
    model = Model()
    result = bench_file(ct_scan, model.card, backends=["vectorized", OPENCV], repeats=2, warmup=0, classify=model.label)
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
