"""The bundled pneumonia classifier through the pipeline: backend and encoding invariance, heatmap, OOD warnings."""

from __future__ import annotations

from pathlib import Path

import data_store
import numpy as np
import pytest
from PIL import Image
from pydicom import dcmread
from pydicom.data import get_testdata_file

from radbench.inference.backends import BACKEND_NAMES
from radbench.inference.model import Model
from radbench.inference.pipeline import Pipeline

CORPUS = Path(data_store.__file__).parent / "data"
CHEST_SAMPLE = Path(__file__).resolve().parent.parent / "sample_images" / "chest_cr_rg1_j2k_lossless.dcm"


@pytest.fixture(scope="module")
def model() -> Model:
    return Model()


@pytest.fixture(scope="module")
def chest(model):
    return {name: Pipeline(model, name).run(CHEST_SAMPLE) for name in BACKEND_NAMES}


def test_all_backends_give_the_same_label_and_probabilities(chest):
    reference = chest["vectorized"]
    assert sum(reference.probabilities.values()) == pytest.approx(1.0)
    for prediction in chest.values():
        assert prediction.label == reference.label
        for label, p in prediction.probabilities.items():
            assert p == pytest.approx(reference.probabilities[label], abs=1e-4)


def test_pixel_identical_files_in_different_encodings_give_the_same_prediction(model):
    pipeline = Pipeline(model, "vectorized")
    uncompressed, j2k = (pipeline.run(CORPUS / name) for name in ("RG1_UNCR.dcm", "RG1_J2KR.dcm"))
    assert uncompressed.decoder != j2k.decoder or "J2K" not in uncompressed.decoder
    assert uncompressed.label == j2k.label
    assert dict(uncompressed.probabilities) == pytest.approx(dict(j2k.probabilities), abs=1e-6)


def test_heatmap_is_aligned_with_the_classified_frame(chest):
    for prediction in chest.values():
        heat = prediction.heatmap
        assert heat.shape == (1955, 1841) and heat.dtype == np.float32
        assert 0.0 <= heat.min() and heat.max() <= 1.0
        assert "heatmap" in dict(prediction.timings.stages)
    np.testing.assert_allclose(chest["naive"].heatmap, chest["vectorized"].heatmap, atol=1e-5)


def test_heatmap_of_a_frame_of_a_multiframe_scan_has_that_frame_shape(model):
    path = get_testdata_file("emri_small.dcm")
    prediction = Pipeline(model, "vectorized").run(path, frame=3)
    assert prediction.heatmap.shape == dcmread(path).pixel_array.shape[1:]


def test_chest_radiograph_gets_no_modality_or_body_part_warning(chest):
    assert not [w for w in chest["vectorized"].ood_warnings if "modality" in w or "body part" in w]


@pytest.mark.parametrize("name, words", [("CT_small.dcm", "modality CT"), ("MR_small.dcm", "modality MR")])
def test_other_modalities_are_flagged_out_of_distribution(model, name, words):
    prediction = Pipeline(model, "vectorized").run(get_testdata_file(name))
    assert any(words in w for w in prediction.ood_warnings)


def test_a_chest_modality_with_another_body_part_is_flagged(model, tmp_path):
    ds = dcmread(CORPUS / "RG1_UNCR.dcm")
    ds.BodyPartExamined = "KNEE"
    ds.save_as(tmp_path / "knee.dcm")
    warnings = Pipeline(model, "vectorized").run(tmp_path / "knee.dcm").ood_warnings
    assert any("body part KNEE" in w for w in warnings)
    assert not any("modality" in w for w in warnings)


def test_an_image_unlike_a_chest_film_is_flagged_by_its_statistics(model, tmp_path):
    ramp = np.tile(np.linspace(0, 255, 256), (256, 1)).astype(np.uint8)  # dark left, bright right
    Image.fromarray(ramp).save(tmp_path / "ramp.png")
    warnings = Pipeline(model, "vectorized").run(tmp_path / "ramp.png").ood_warnings
    assert any("unlike the training images" in w for w in warnings)
