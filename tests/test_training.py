"""The training code, end to end on a few generated images: split, one epoch, calibration, ONNX export, card."""

from __future__ import annotations

import json
import re

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

from radbench.inference.model import CARD_KEY, Model
from radbench.inference.pipeline import Pipeline
from radbench.models.augment import Augmenter, describe
from radbench.models.dataset import list_samples, patient_of, split_by_patient
from radbench.models.looks import LookModel, look_balancing_weights
from radbench.models.metrics import roc_auc
from radbench.models.train import main as train


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """24 small grey JPEGs named like the real dataset: NORMAL films darker on the left, PNEUMONIA on the right."""
    root = tmp_path_factory.mktemp("chest") / "train"
    rng = np.random.default_rng(0)
    for label, count in (("NORMAL", 10), ("PNEUMONIA", 14)):
        (root / label).mkdir(parents=True)
        for i in range(count):
            image = rng.integers(60, 200, size=(48, 48)).astype(np.uint8)
            image[:, :24] //= 2 if label == "NORMAL" else 1
            image[:, 24:] //= 1 if label == "NORMAL" else 2
            name = f"IM-{i // 2:04d}-{i:04d}.jpeg" if label == "NORMAL" else f"person{i // 2}_virus_{i}.jpeg"
            Image.fromarray(np.stack([image] * 3, axis=-1)).save(root / label / name)  # grey stored as RGB
    return root


def _train(data, out_dir, seed=0, *more):
    out = out_dir / "tiny.onnx"
    readme = out_dir / "README.md"
    assert train(["--data", str(data), "--out", str(out), "--readme", str(readme), "--epochs", "1",
                  "--members", "2", "--batch", "8", "--source-size", "48", "--size", "32",
                  "--val-fraction", "0.3", "--seed", str(seed), "--threads", "1", *more]) == 0
    return out, readme


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    return _train(tiny_data, tmp_path_factory.mktemp("run1"))


def test_one_epoch_exports_a_loadable_model_with_its_card(trained, tiny_data):
    out, _ = trained
    model = Model(out)
    card = model.card
    assert card.labels == ("NORMAL", "PNEUMONIA")
    assert (card.input_height, card.input_width, card.input_channels) == (32, 32, 1)
    assert card.positive_label == "PNEUMONIA" and 0 < card.threshold < 1
    assert card.cam_output == "cam" and not card.untrained
    for key in ("dataset", "split", "calibration", "metrics", "latency", "export_check", "training"):
        assert key in card.extra
    assert card.extra["export_check"]["logits_max_abs_diff"] < 1e-4
    assert card.extra["export_check"]["cam_max_abs_diff"] < 1e-4  # the framing and the CAM's cut export too
    assert "member 1: as given, member 2: framed at 0.9" in card.extra["framing"]
    assert set(card.extra["metrics"]["serving_zoom_sweep"]) == {
        "framed members at 1", "framed members at 0.95", "framed members at 0.9", "framed members at 0.85",
        "every member at 0.9"}
    assert "--seed 0" in card.extra["training"]["command"]
    assert onnx.load(str(out)).opset_import[0].version >= 17

    scan_path = next((tiny_data / "NORMAL").iterdir())
    prediction = Pipeline(model, "vectorized").run(scan_path)
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0)
    assert prediction.heatmap.shape == (48, 48)


def test_framing_shrinks_each_film_onto_its_own_black_and_the_cam_cut_undoes_it():
    """The served model frames its input zoomed out (net.framed); the CAM it returns is cut back to the input's
    area, so a map computed on the framed input lines up with the film again."""
    import torch

    from radbench.models.net import _zoomed, framed

    rows, columns = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 48), indexing="ij")
    films = torch.stack([rows + 2 * columns, 3 - rows * columns])[:, None]  # smooth, each with its own minimum
    out = framed(films, 0.9)
    assert out.shape == films.shape
    for film, shown in zip(films, out):
        border = torch.cat([shown[0, 0], shown[0, -1], shown[0, :, 0], shown[0, :, -1]])
        assert torch.allclose(border, film.min().expand_as(border))  # black: the film's own minimum
        assert torch.allclose(shown[0, 32, 24], film[0, 32, 24], atol=0.02)  # the centre stays in place
    assert torch.allclose(_zoomed(out, 0.9, "border")[..., 4:-4, 4:-4], films[..., 4:-4, 4:-4], atol=0.02)
    assert torch.equal(framed(films, 1.0), films)


def test_readme_card_matches_the_embedded_card(trained):
    out, readme = trained
    text = readme.read_text()
    embedded = json.loads({p.key: p.value for p in onnx.load(str(out)).metadata_props}[CARD_KEY])
    block = json.loads(re.search(r"```json\n(.*?)\n```", text, re.DOTALL).group(1))
    assert block == embedded
    for expected in ("not for clinical use", "CC BY 4.0", "Confusion matrix", "Calibration", "ms"):
        assert expected in text


def test_training_is_deterministic_for_a_seed(trained, tiny_data, tmp_path):
    again, _ = _train(tiny_data, tmp_path)
    x = np.random.default_rng(1).standard_normal((4, 1, 32, 32)).astype(np.float32)
    first, second = (Model(path).infer(x) for path in (trained[0], again))
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name, patient", [("person1017_bacteria_2948.jpeg", "P:1017"),
                                           ("person3_virus_16.jpeg", "P:3"),
                                           ("IM-0427-0001.jpeg", "N:427"),
                                           ("NORMAL2-IM-0427-0001.jpeg", "N:427"),
                                           ("odd.jpeg", "file:odd.jpeg")])
def test_patient_is_read_from_the_file_name(name, patient):
    assert patient_of(name) == patient


def test_split_keeps_each_patient_on_one_side_and_is_stratified(tiny_data):
    samples = list_samples(tiny_data)
    train_set, val_set = split_by_patient(samples, 0.3, seed=0)
    assert sorted(s.path for s in train_set + val_set) == sorted(s.path for s in samples)
    assert not {s.patient for s in train_set} & {s.patient for s in val_set}
    for label in (0, 1):
        assert any(s.label == label for s in val_set) and any(s.label == label for s in train_set)


def test_serve_zooms_are_refused_in_words_when_out_of_range_or_not_one_per_member(tiny_data, capsys):
    with pytest.raises(SystemExit):
        train(["--data", str(tiny_data), "--serve-zooms", "1,1.5"])
    assert "each zoom must be above 0 and at most 1, got 1,1.5" in capsys.readouterr().err
    with pytest.raises(SystemExit, match=r"--serve-zooms needs one zoom per member \(3\), got 2"):
        train(["--data", str(tiny_data), "--members", "3", "--serve-zooms", "1,0.9"])


def test_look_weights_take_the_class_out_of_the_look_and_weigh_the_classes_alike():
    """Films whose look gives their class away weigh less, films whose look contradicts it more (held by the floor),
    and under the weights the look-only regression ranks the classes far worse."""
    rng = np.random.default_rng(0)
    y = (rng.random(4000) < 0.74).astype(int)  # the training side's prevalence
    looks = rng.normal(y[:, None] * 1.2, 1.0, size=(4000, 3))  # exposure numbers that lean with the class
    score = LookModel(looks, y).score(looks)
    weights = look_balancing_weights(score, y, floor=0.1)
    assert weights.mean() == pytest.approx(1.0)
    assert weights[y == 0].sum() == pytest.approx(weights[y == 1].sum())
    normal = y == 0
    assert weights[normal][np.argmax(score[normal])] > 3 * weights[normal][np.argmin(score[normal])]
    for label in (0, 1):  # within a class a weight runs from 1 to 1 / floor before the class is scaled
        assert weights[y == label].max() / weights[y == label].min() <= 1 / 0.1 + 1e-9
    assert look_balancing_weights(score, y, floor=1e-6).max() > 1.5 * weights.max()
    drawn = rng.choice(len(y), 40000, p=weights / weights.sum())
    assert roc_auc(y, score) > 0.8 and roc_auc(y[drawn], score[drawn]) < roc_auc(y, score) - 0.15


def test_framing_by_class_zooms_normal_films_in_and_pneumonia_films_out_further():
    """v1f draws each film's zoom from its label's range; v1 from one range for every film."""
    labels = torch.arange(4000) % 2  # NORMAL, PNEUMONIA alternately
    zooms = {profile: Augmenter(64, 32, 0.5, 0.29, torch.Generator().manual_seed(0), profile).zooms(labels)
             for profile in ("v1", "v1f")}
    normal, pneumonia = zooms["v1f"][labels == 0], zooms["v1f"][labels == 1]
    assert 1 / 1.25 - 1e-6 <= normal.min() and 1.45 < normal.max() <= 1.5 + 1e-6
    assert 1 / 1.5 - 1e-6 <= pneumonia.min() < 1 / 1.45 and pneumonia.max() <= 1.25 + 1e-6
    for label in (0, 1):
        v1 = zooms["v1"][labels == label]
        assert 1 / 1.25 - 1e-6 <= v1.min() < 1 / 1.2 and 1.2 < v1.max() <= 1.25 + 1e-6
    assert "NORMAL out to 1/1.25 and in to 1.5x, PNEUMONIA out to 1/1.5 and in to 1.25x" in describe("v1f")


def test_look_weighted_training_runs_and_its_card_says_so(tiny_data, tmp_path):
    out, _ = _train(tiny_data, tmp_path, 0, "--look-weights", "0.1")
    card = json.loads({p.key: p.value for p in onnx.load(str(out)).metadata_props}[CARD_KEY])
    assert "1 / P(its class | its look), the probability held at 0.1 or above" in card["training"]["loss"]
    assert "--look-weights 0.1" in card["training"]["command"]
    assert Model(out).infer(np.zeros((1, 1, 32, 32), np.float32))[0].shape == (1, 2)


def test_a_look_weight_floor_outside_0_to_1_is_refused_in_words(tiny_data, capsys):
    with pytest.raises(SystemExit):
        train(["--data", str(tiny_data), "--look-weights", "1"])
    assert "the floor must be above 0 and below 1, got 1" in capsys.readouterr().err
