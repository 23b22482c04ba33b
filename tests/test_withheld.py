"""No confident verdict outside the model's domain, the same contract everywhere: ``predict --json`` and its text,
the batch CSV and summary, and the exported heatmap's caption. A chest film keeps its label."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from radbench.app.cli import main
from radbench.inference.batch import columns
from radbench.inference.model import NOT_FOR_CLINICAL_USE, Model
from radbench.inference.overlay_export import caption
from radbench.inference.pipeline import Pipeline

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"
CT, MR, CHEST = (SAMPLES / name for name in ("ct_small_128px.dcm", "mr_head_multiframe_10_emri_small.dcm",
                                               "chest_cr_rg1_j2k_lossless.dcm"))
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
