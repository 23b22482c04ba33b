"""No confident verdict outside the model's domain, the same contract everywhere: ``predict --json`` and its text,
the batch CSV and summary, the exported heatmap's caption and ``bench``. A chest film keeps its label; an image
unlike the training films keeps it only when its file names a modality and body part in the domain."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from radbench.app.cli import main
from radbench.inference.batch import columns
from radbench.inference.model import NOT_FOR_CLINICAL_USE, Model
from radbench.inference.overlay_export import caption
from radbench.inference.pipeline import Pipeline

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"
CT, MR, CHEST, PEDIATRIC = (SAMPLES / name for name in (
    "ct_small_128px.dcm", "mr_head_multiframe_10_emri_small.dcm", "chest_cr_rg1_j2k_lossless.dcm",
    "chest_pediatric_normal.dcm"))
REASONS = {CT: "withheld: the model was trained on chest CR/DX images; this is a CT image",
           MR: "withheld: the model was trained on chest CR/DX images; this is an MR image of the HEAD"}


def test_predict_json_gives_no_label_and_the_reason_and_a_chest_film_its_label(capsys):
    assert main(["predict", "--json", str(MR), str(CT), str(CHEST)]) == 0
    records = {Path(r["file"]): r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    for path, reason in REASONS.items():
        assert records[path]["label"] is None and records[path]["withheld"] == reason
        assert set(records[path]["probabilities"]) == {"NORMAL", "PNEUMONIA"}  # still there, for whoever asks
    assert records[CHEST]["label"] in ("NORMAL", "PNEUMONIA") and records[CHEST]["withheld"] is None


def test_predict_text_says_withheld_with_the_reason(capsys):
    assert main(["predict", str(MR), str(CHEST)]) == 0
    lines = capsys.readouterr().out.splitlines()
    verdicts = [line.strip() for line in lines if line.lstrip().startswith("prediction:")]
    assert verdicts[0] == f"prediction: {REASONS[MR]}"
    assert verdicts[1].split()[1] in ("NORMAL", "PNEUMONIA") and "withheld" not in verdicts[1]


def test_batch_rows_keep_status_ok_with_an_empty_label_and_the_reason_and_the_summary_counts_them(
        tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for path in (CT, MR, CHEST):
        shutil.copy(path, folder / path.name)
    out = tmp_path / "results.csv"
    assert main(["batch", str(folder), "--out", str(out), "--workers", "1"]) == 0
    header = columns(Model().card.labels)
    assert header[header.index("label") + 1] == "withheld"
    with out.open(encoding="utf-8", newline="") as f:
        rows = {Path(r["path"]).name: r for r in csv.DictReader(f)}
    for path, reason in REASONS.items():
        row = rows[path.name]
        assert (row["status"], row["label"], row["withheld"]) == ("ok", "", reason)
    assert rows[CHEST.name]["label"] in ("NORMAL", "PNEUMONIA") and rows[CHEST.name]["withheld"] == ""
    assert "3 ok (2 withheld)" in capsys.readouterr().err


@pytest.mark.parametrize("path", [CT, MR])
def test_the_heatmap_caption_carries_the_reason_and_no_label(path):
    prediction = Pipeline(Model(), "vectorized").run(path)
    lines = caption(prediction)
    assert lines[0].startswith(f"No verdict ({REASONS[path]})")
    assert not any(label in line for line in lines for label in ("NORMAL", "PNEUMONIA"))
    assert lines[-1] == NOT_FOR_CLINICAL_USE


def test_the_heatmap_caption_of_a_chest_film_names_its_label():
    prediction = Pipeline(Model(), "vectorized").run(CHEST)
    assert caption(prediction)[0].startswith(f"{prediction.label} (")
    assert caption(prediction)[-1] == NOT_FOR_CLINICAL_USE


def test_an_unlike_image_keeps_its_label_only_when_its_tags_vouch_for_it(tmp_path):
    """The adult chest CR looks unlike the pediatric training films: named CR and CHEST it keeps its label with the
    warning; without Body Part Examined, or as a PNG, nothing vouches for it and the label is withheld."""
    pipeline = Pipeline(Model(), "vectorized")
    tagged = pipeline.run(CHEST)
    assert tagged.withheld is None and any("looks unlike the training images" in w for w in tagged.ood_warnings)
    ds = pydicom.dcmread(CHEST)
    del ds.BodyPartExamined
    ds.save_as(tmp_path / "no_body_part.dcm")
    untagged = pipeline.run(tmp_path / "no_body_part.dcm")
    assert untagged.withheld.startswith("withheld: the image looks unlike the training images (distance ")
    assert untagged.withheld.endswith("; the file does not name its body part (the model was trained on chest "
                                      "CR/DX images)")
    noise = np.random.default_rng(0).integers(0, 256, size=(256, 256), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "noise.png")
    assert pipeline.run(tmp_path / "noise.png").withheld.endswith(
        "; the file does not name its modality or body part (the model was trained on chest CR/DX images)")


def test_a_film_like_the_training_films_keeps_its_label_without_tags(tmp_path):
    """A pediatric validation film saved as a PNG (no modality, no body part) still looks like the training films."""
    pixels = pydicom.dcmread(PEDIATRIC).pixel_array
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(tmp_path / "film.png")
    prediction = Pipeline(Model(), "vectorized").run(tmp_path / "film.png")
    assert prediction.withheld is None and not prediction.ood_warnings and prediction.label == "NORMAL"


def test_bench_withholds_the_label_where_a_prediction_would_and_still_checks_agreement(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", str(MR), str(PEDIATRIC), "--backends", "vectorized,numba", "--repeat", "1",
                 "--no-fresh-compile", "--json", str(out)]) == 0
    lines = [line.strip() for line in capsys.readouterr().out.splitlines() if "label on the model input" in line]
    assert lines == [f"label on the model input: {REASONS[MR]}; every backend's model input gets the same decision",
                     f"label on the model input: vectorized NORMAL; numba agrees. {NOT_FOR_CLINICAL_USE}"]
    document = json.loads(out.read_text(encoding="utf-8"))
    files = {Path(f["file"]): f for f in document["files"]}
    assert (files[MR]["labels"], files[MR]["label_withheld"], files[MR]["labels_agree"]) == (None, REASONS[MR], True)
    assert files[PEDIATRIC]["labels"] == {"vectorized": "NORMAL", "numba": "NORMAL"}
    assert files[PEDIATRIC]["label_withheld"] is None and document["notice"] == NOT_FOR_CLINICAL_USE
