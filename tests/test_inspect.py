"""``radbench inspect`` and the what-if skips: every stage's output as a picture and numbers, from the pipeline's own
run; a skip changes the model input and nothing else, in every backend."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from dicom_files import write_grey_dicom
from PIL import Image

from radbench.app.cli import main
from radbench.inference.backends import BACKEND_NAMES
from radbench.inference.inspection import HISTOGRAM_BINS, INSPECTED_STAGES, inspect_run
from radbench.inference.loading import load_scan
from radbench.inference.model import NOT_FOR_CLINICAL_USE, Model
from radbench.inference.pipeline import Pipeline

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"
CHEST = SAMPLES / "chest_pediatric_pneumonia.dcm"


@pytest.fixture(scope="module")
def model() -> Model:
    return Model()


@pytest.fixture(scope="module")
def mono1(tmp_path_factory) -> Path:
    """A small MONOCHROME1 radiograph with a window preset narrower than its values: every skip changes something."""
    pixels = np.random.default_rng(1).normal(2000, 600, size=(96, 80)).clip(0, 4095)
    return write_grey_dicom(tmp_path_factory.mktemp("what_if") / "mono1.dcm", pixels, "MONOCHROME1", WindowCenter=2000,
                            WindowWidth=1200)


def test_inspect_writes_one_picture_and_one_entry_per_stage_with_their_shapes_and_ranges(tmp_path, capsys, model):
    assert main(["inspect", str(CHEST), "--out", str(tmp_path / "stages")]) == 0
    printed = capsys.readouterr().out
    record = json.loads((tmp_path / "stages" / "stages.json").read_text())
    stages = {entry["name"]: entry for entry in record["stages"]}
    assert list(stages) == list(INSPECTED_STAGES)
    assert sorted(p.name for p in (tmp_path / "stages").glob("*.png")) == sorted(e["picture"] for e in stages.values())
    for name, entry in stages.items():
        assert name in printed and entry["picture"] in printed  # one summary line each
        with Image.open(tmp_path / "stages" / entry["picture"]) as picture:
            assert (picture.height, picture.width) == tuple(entry["shape"][-2:])
        counts = entry["histogram"]["counts"]
        assert len(counts) == HISTOGRAM_BINS and sum(counts) == np.prod(entry["shape"])
        assert entry["min"] <= entry["mean"] <= entry["max"] and entry["ms"] > 0 and entry["mapping"]
    pixels = load_scan(CHEST).grey_frame()
    assert stages["decode"]["shape"] == list(pixels.shape) and stages["decode"]["dtype"] == str(pixels.dtype)
    assert (stages["decode"]["min"], stages["decode"]["max"]) == (pixels.min(), pixels.max())
    for name in ("window", "equalize", "resize", "heatmap"):
        assert 0.0 <= stages[name]["min"] < stages[name]["max"] <= 1.0
    card = model.card
    assert stages["resize"]["shape"] == [card.input_height, card.input_width]
    assert stages["normalize"]["shape"] == [1, card.input_channels, card.input_height, card.input_width]
    assert stages["heatmap"]["shape"] == list(pixels.shape)
    assert record["intended_input"] and record["notice"] == NOT_FOR_CLINICAL_USE
    assert record["probabilities"]["PNEUMONIA"] > 0.5


def test_stage_pictures_follow_their_stated_mapping(model):
    inspection = inspect_run(Pipeline(model, "vectorized"), CHEST)
    decode = inspection.stage("decode")
    picture = decode.picture()
    assert picture[decode.values == decode.low].max() == 0 and picture[decode.values == decode.high].min() == 255
    window = inspection.stage("window")
    np.testing.assert_array_equal(window.picture(), np.round(window.values * 255).astype(np.uint8))
    resize, normalize = inspection.stage("resize").picture(), inspection.stage("normalize").picture()
    assert np.abs(resize.astype(int) - normalize).max() <= 1  # normalize's mapping undoes it: comparable to resize
    assert inspection.stage("heatmap").picture().shape == (*decode.values.shape, 3)
    for stage in inspection.stages:  # a thumbnail is the picture's every n-th pixel
        np.testing.assert_array_equal(stage.picture(4), stage.picture()[::4, ::4])
    np.testing.assert_array_equal(inspection.stage("normalize").values, inspection.prediction.tensor)


def test_inspect_of_a_bad_file_or_an_impossible_folder_is_one_clear_line(tmp_path, capsys):
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"DICM" * 10)
    assert main(["inspect", str(bad), "--out", str(tmp_path / "out")]) == 1
    assert not (tmp_path / "out").exists()  # made only for a run that worked
    assert main(["inspect", str(CHEST), "--out", str(tmp_path / "missing" / "out")]) == 2
    assert main(["inspect", str(CHEST), "--out", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.dcm" in err and "missing does not exist" in err and f"{bad}: is not a folder" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("backend", BACKEND_NAMES)
@pytest.mark.parametrize("step", ["window", "equalize", "invert"])
def test_a_skip_changes_the_model_input_and_restores_nothing_else(model, mono1, backend, step):
    pipeline = Pipeline(model, backend)
    full = inspect_run(pipeline, mono1)
    skipped = inspect_run(pipeline, mono1, skip=[step])
    again = inspect_run(pipeline, mono1)
    assert skipped.prediction.skipped == (step,) and full.prediction.skipped == ()
    assert not np.allclose(skipped.prediction.tensor, full.prediction.tensor, atol=1e-3)
    np.testing.assert_array_equal(again.prediction.tensor, full.prediction.tensor)  # the next full run is as before
    for name in ("decode", "rescale"):  # the stages before the skipped step see the same values
        np.testing.assert_array_equal(skipped.stage(name).values, full.stage(name).values)
    names = [s.name for s in skipped.stages]
    assert ("equalize" in names) == (step != "equalize")


@pytest.mark.parametrize("step", ["window", "equalize", "invert"])
def test_every_backend_skips_the_same_way(model, mono1, step):
    tensors = [Pipeline(model, backend).run(mono1, skip=[step]).tensor for backend in BACKEND_NAMES]
    for tensor in tensors[1:]:
        np.testing.assert_allclose(tensor, tensors[0], atol=1e-4)


def test_a_step_the_file_does_not_have_is_not_reported_as_skipped(model):
    prediction = Pipeline(model, "vectorized").run(CHEST, skip=["window", "invert"])  # no window, MONOCHROME2
    assert prediction.skipped == ()
    with pytest.raises(ValueError, match="cannot skip resize"):
        Pipeline(model, "vectorized").run(CHEST, skip=["resize"])


def test_predict_skip_prints_the_probability_beside_the_full_pipelines(mono1, capsys, model):
    assert main(["predict", str(mono1), "--skip", "equalize,invert"]) == 0
    printed = capsys.readouterr().out
    full = Pipeline(model, "vectorized").run(mono1).probabilities["PNEUMONIA"]
    changed = Pipeline(model, "vectorized").run(mono1, skip=["equalize", "invert"]).probabilities["PNEUMONIA"]
    assert (f"PNEUMONIA {full:.0%} -> {changed:.0%} without equalize, invert (not the model's intended input)"
            .replace("%", " %")) in printed
    assert "WHAT-IF: without equalize, invert" in printed
    assert main(["predict", str(mono1), "--skip", "window", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["skipped"] == ["window"] and record["intended_input"] is False
    assert record["full_pipeline_probabilities"]["PNEUMONIA"] == pytest.approx(full)


def test_predict_skip_of_a_step_the_file_lacks_says_so(capsys):
    assert main(["predict", str(CHEST), "--skip", "invert"]) == 0
    assert "nothing to skip: this run has no invert step" in capsys.readouterr().out


def test_a_what_if_heatmap_export_says_it_is_not_the_models_intended_input(mono1, model):
    from radbench.inference.overlay_export import caption

    full, changed = (Pipeline(model, "vectorized").run(mono1, skip=skip) for skip in ((), ("equalize",)))
    mark = "WARNING: what-if run without equalize: not the model's intended input"
    assert mark in caption(changed) and not any("what-if" in line for line in caption(full))
