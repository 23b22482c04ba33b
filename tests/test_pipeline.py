"""The pipeline end to end on real files: stage order and timings, backends, compile time, cancel, errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from dicom_files import write_grey_dicom
from PIL import Image
from pydicom.data import get_testdata_file

from radbench.inference.backends import BACKEND_NAMES, get_backend
from radbench.inference.errors import Cancelled, ScanError
from radbench.inference.model import Model
from radbench.inference.pipeline import PIPELINE_STAGES, Pipeline

CT = get_testdata_file("CT_small.dcm")


@pytest.fixture(scope="module")
def model() -> Model:
    return Model()


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_run_times_every_stage_in_order(model, backend):
    prediction = Pipeline(model, backend).run(CT)
    assert [name for name, _ in prediction.timings.stages] == list(PIPELINE_STAGES)
    assert all(ns > 0 for _, ns in prediction.timings.stages)
    assert prediction.backend == backend
    assert prediction.tensor.shape == (1, 1, 128, 128) and prediction.tensor.dtype == np.float32
    assert not prediction.tensor.flags.writeable
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0)
    assert prediction.label == model.card.decide(np.array(list(prediction.probabilities.values())))
    assert prediction.warnings == ()


def test_untrained_model_is_flagged_and_has_no_heatmap(placeholder_path):
    prediction = Pipeline(Model(placeholder_path), "vectorized").run(CT)
    assert any("UNTRAINED" in w for w in prediction.warnings)
    assert prediction.heatmap is None
    assert "heatmap" not in dict(prediction.timings.stages)


def test_backends_agree_on_a_real_scan(model):
    results = [Pipeline(model, name).run(CT) for name in BACKEND_NAMES]
    for other in results[1:]:
        assert other.label == results[0].label
        np.testing.assert_allclose(other.tensor, results[0].tensor, atol=1e-5 / model.card.std[0])  # std scales 1e-5


def test_numba_compile_time_is_reported_apart_once(model):
    fresh = dataclasses.replace(get_backend("numba"), _warm_dtypes=set())
    pipeline = Pipeline(model, fresh)
    first, second = pipeline.run(CT), pipeline.run(CT)
    assert first.compile_ms > 0
    assert second.compile_ms == 0 and second.compile_source == "already in memory"
    assert "compile" not in dict(first.timings.stages)


def test_non_compiling_backends_report_no_compile_time(model):
    assert Pipeline(model, "vectorized").run(CT).compile_ms == 0


def test_naive_run_can_be_cancelled_mid_stage(model):
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 3  # past the between-stage checks: inside the naive loops

    with pytest.raises(Cancelled):
        Pipeline(model, "naive").run(CT, cancel=cancel)
    assert len(calls) == 4


def test_frame_out_of_range_names_the_file(model):
    with pytest.raises(ScanError, match=r"CT_small\.dcm.*frame index 5 out of range"):
        Pipeline(model, "vectorized").run(CT, frame=5)


def test_multiframe_runs_the_requested_frame(model):
    path = get_testdata_file("emri_small.dcm")
    default = Pipeline(model, "vectorized").run(path)
    first = Pipeline(model, "vectorized").run(path, frame=0)
    assert (default.frame, first.frame, default.frame_count) == (5, 0, 10)
    assert not np.array_equal(default.tensor, first.tensor)


def test_colour_image_is_converted_to_grey_with_a_warning(model, tmp_path):
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[..., 0] = np.arange(60, dtype=np.uint8)
    path = tmp_path / "colour.png"
    Image.fromarray(rgb).save(path)
    prediction = Pipeline(model, "vectorized").run(path)
    assert any("BT.601" in w for w in prediction.warnings)


def test_monochrome1_is_inverted_exactly_once(model, tmp_path):
    rng = np.random.default_rng(0)
    bright_bones = rng.integers(0, 4096, size=(64, 48))
    mono2 = write_grey_dicom(tmp_path / "mono2.dcm", bright_bones, "MONOCHROME2")
    mono1 = write_grey_dicom(tmp_path / "mono1.dcm", 4095 - bright_bones, "MONOCHROME1")
    pipeline = Pipeline(model, "vectorized")
    np.testing.assert_allclose(pipeline.run(mono1).tensor, pipeline.run(mono2).tensor, atol=1e-5)


def test_an_already_loaded_scan_runs_without_a_decode_stage(model):
    from radbench.inference.loading import load_scan

    prediction = Pipeline(model, "vectorized").run(load_scan(CT))
    assert "decode" not in dict(prediction.timings.stages)


@pytest.mark.parametrize("name, reason", [
    ("ct_small_128px.dcm", "withheld: the model was trained on chest CR/DX images; this is a CT image"),
    ("mr_head_multiframe_10_emri_small.dcm",
     "withheld: the model was trained on chest CR/DX images; this is an MR image of the HEAD"),
    ("chest_cr_rg1_j2k_lossless.dcm", None),
    ("tibia_cr_rg3_8bit_440px.png",  # no DICOM tags: the image statistics decide
     "withheld: the image looks unlike the training images (distance 5.72, typical films stay below 1.96); the file "
     "does not name its modality or body part (the model was trained on chest CR/DX images)"),
])
def test_a_verdict_is_withheld_outside_the_cards_domain(model, name, reason):
    prediction = Pipeline(model, "vectorized").run(Path(__file__).resolve().parent.parent / "sample_images" / name)
    assert prediction.withheld == reason
