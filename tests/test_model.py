"""The ONNX model runtime: cards are required and checked, outputs become probabilities."""

from __future__ import annotations

import copy
import json

import numpy as np
import onnx
import pytest

from radbench.inference.errors import ModelError
from radbench.inference.model import DEFAULT_MODEL_PATH, Model


def _save(module, tmp_path, card="default", input_shape=None, name="m.onnx"):
    kwargs = {} if input_shape is None else {"input_shape": input_shape}
    model = module.build(module.CARD if card == "default" else card, **kwargs)
    path = tmp_path / name
    onnx.save(model, path)
    return path


def test_bundled_model_is_the_trained_classifier_with_its_card():
    model = Model()
    assert model.path == DEFAULT_MODEL_PATH
    card = model.card
    assert card.labels == ("NORMAL", "PNEUMONIA")
    assert not card.untrained and "UNTRAINED" not in model.title
    assert (card.input_channels, card.input_height, card.input_width) == (1, 128, 128)
    assert card.positive_label == "PNEUMONIA" and 0 < card.threshold < 1
    assert card.cam_output == "cam"
    assert card.domain["modalities"] == ["CR", "DX"]
    assert "not for clinical use" in card.intended_use
    assert card.extra["calibration"]["ece_after"] <= card.extra["calibration"]["ece_before"]


def test_bundled_model_outputs_probabilities_and_class_maps():
    model = Model()
    outputs = model.infer(np.random.default_rng(0).standard_normal((1, 1, 128, 128)).astype(np.float32))
    probs = model.probabilities(outputs)
    assert probs.shape == (2,) and probs.sum() == pytest.approx(1.0) and (probs >= 0).all()
    maps = model.class_maps(outputs)
    assert maps.shape[0] == 2 and maps.ndim == 3


def test_decision_threshold_picks_the_positive_label_at_or_above_it(placeholder_module, tmp_path):
    card = copy.deepcopy(placeholder_module.CARD)
    card["decision"] = {"positive_label": "PNEUMONIA", "threshold": 0.3}
    decide = Model(_save(placeholder_module, tmp_path, card=card)).card.decide
    assert decide(np.array([0.69, 0.31])) == "PNEUMONIA"
    assert decide(np.array([0.7, 0.3])) == "PNEUMONIA"
    assert decide(np.array([0.71, 0.29])) == "NORMAL"


@pytest.mark.parametrize("decision", [{"positive_label": "COVID", "threshold": 0.5},
                                      {"positive_label": "PNEUMONIA"},
                                      {"positive_label": "PNEUMONIA", "threshold": 1.5}])
def test_malformed_decision_rule_is_refused(placeholder_module, tmp_path, decision):
    card = copy.deepcopy(placeholder_module.CARD)
    card["decision"] = decision
    with pytest.raises(ModelError, match="decision"):
        Model(_save(placeholder_module, tmp_path, card=card))


def test_card_naming_a_missing_cam_output_is_refused(placeholder_module, tmp_path):
    card = copy.deepcopy(placeholder_module.CARD)
    card["cam_output"] = "cam"
    with pytest.raises(ModelError, match="CAM output 'cam'"):
        Model(_save(placeholder_module, tmp_path, card=card))


def test_probabilities_sum_to_one_and_follow_the_graph(placeholder_path):
    model = Model(placeholder_path)
    dark = model.probabilities(model.infer(np.full((1, 1, 224, 224), -1.0, np.float32)))
    bright = model.probabilities(model.infer(np.full((1, 1, 224, 224), 1.0, np.float32)))
    assert dark.sum() == pytest.approx(1.0) and bright.sum() == pytest.approx(1.0)
    assert dark[0] > 0.9 and bright[1] > 0.9  # logits = mean * (-4, 4)


def test_model_without_card_is_refused(placeholder_module, tmp_path):
    path = _save(placeholder_module, tmp_path, card=None)
    with pytest.raises(ModelError, match="no model card"):
        Model(path)


def test_card_beside_the_model_is_used(placeholder_module, tmp_path):
    path = _save(placeholder_module, tmp_path, card=None)
    card = copy.deepcopy(placeholder_module.CARD)
    card["name"] = "beside"
    path.with_suffix(".card.json").write_text(json.dumps(card))
    assert Model(path).card.name == "beside"


def test_input_that_does_not_match_the_card_is_refused(placeholder_module, tmp_path):
    path = _save(placeholder_module, tmp_path, input_shape=("batch", 3, 224, 224))
    with pytest.raises(ModelError, match="card says"):
        Model(path)


def test_incomplete_card_names_the_problem(placeholder_module, tmp_path):
    card = copy.deepcopy(placeholder_module.CARD)
    del card["labels"]
    with pytest.raises(ModelError, match="incomplete or malformed"):
        Model(_save(placeholder_module, tmp_path, card=card))
    card = copy.deepcopy(placeholder_module.CARD)
    card["normalization"]["std"] = [0.0]
    with pytest.raises(ModelError, match="std between 1e-06 and 1000"):
        Model(_save(placeholder_module, tmp_path, card=card, name="m2.onnx"))


@pytest.mark.parametrize("content", [b"", b"not an onnx model at all", b"\x08\x01\x12\x00garbage"])
def test_non_onnx_file_is_refused(tmp_path, content):
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelError, match="not a usable ONNX model"):
        Model(path)


def test_missing_model_file_is_refused(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        Model(tmp_path / "absent.onnx")
