"""The model card: one dict embedded in the ONNX metadata, and the same facts as markdown in ``models/README.md``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from radbench.models import augment

BEGIN, END = "<!-- card:begin (written by models/train.py) -->", "<!-- card:end -->"

DATASET = {
    "citation": "Kermany, D., Zhang, K., Goldbaum, M. (2018). Labeled Optical Coherence Tomography (OCT) and Chest "
                "X-Ray Images for Classification. Mendeley Data, v2. doi:10.17632/rscbjbr9sj.2",
    "paper": "Kermany, D. S., et al. (2018). Identifying Medical Diagnoses and Treatable Diseases by Image-Based "
             "Deep Learning. Cell 172(5), 1122-1131.",
    "license": "CC BY 4.0 (attribution required)",
    "used": "the training split only (5,216 pediatric chest X-rays, NORMAL 1,341 / PNEUMONIA 3,875), re-encoded "
            "as 224 x 224 JPEG; the 624-image test split was not available during development",
    "how_to_retrain": "download ChestXRay2017.zip from https://data.mendeley.com/datasets/rscbjbr9sj/2, unpack it, "
                      "and pass its chest_xray/train folder as --data",
}

RULES = {
    "half": ("PNEUMONIA when its calibrated probability >= 0.5. The network is trained with balanced class priors "
             "(inverse-frequency class weights), so this is the equal-cost Bayes decision for a patient with even "
             "prior odds: it does not depend on the validation split's prevalence (74 % pneumonia; 62.5 % in the "
             "dataset's test split) nor on where the densest tail of the validation normals happens to lie, which "
             "is what a threshold balanced on validation is fitted to and what moves when normal films from a new "
             "set score higher. A threshold below 0.5 trades specificity for sensitivity on this dataset's "
             "validation films only; on new films that trade was lost (1.0.0: 0.255, specificity 0.769 on the test "
             "split)"),
    "look": ("PNEUMONIA when its calibrated probability >= threshold (balanced sensitivity and specificity on the "
             "look-reversed validation films)"),
    "shifted": ("PNEUMONIA when its calibrated probability >= threshold (chosen on validation for balanced "
                "sensitivity and specificity, pooled over the validation films and their simulated acquisition "
                "shifts)"),
    "validation": ("PNEUMONIA when its calibrated probability >= threshold (chosen on validation for balanced "
                   "sensitivity and specificity)"),
}

INTENDED_USE = ("Education and demonstration, not for clinical use: shows clinicians-in-training and teachers how "
                "a CNN classifies pediatric frontal chest radiographs as NORMAL or PNEUMONIA and where it looked. "
                "Never use it to diagnose, triage or treat anyone.")


def build(*, args: argparse.Namespace, argv: list[str], labels, size: int, mean: float, std: float,
          threshold: float, temperature: float, parameters: int, split: dict, metrics: dict, ood: dict,
          train_minutes: float, date: str) -> dict:
    """The card as the pipeline reads it (``inference.model.ModelCard``) plus everything a reader should know."""
    return {
        "name": "radbench-pneumonia-cnn",
        "version": args.version,
        "date": date,
        "labels": list(labels),
        "input": {"height": size, "width": size, "channels": 1},
        "normalization": {"mean": [mean], "std": [std]},
        "activation": "softmax",
        "preprocessing": {
            "equalize": True,
            "steps": "modality LUT; window = the first DICOM preset or the image's own range (MONOCHROME1 "
                     "inverted); global 256-bin histogram equalization; exact area-average resize to "
                     f"{size} x {size} (aspect not kept); (x - {mean}) / {std}",
        },
        "outputs": {
            "logits": "calibrated logits (already divided by the temperature); softmax gives probabilities",
            "cam": "class activation maps (batch, classes, h, w) over the input's area"
                   + ("; the spatial mean of map k is the raw logit of k" if set(args.serve_zooms) == {1.0} else
                      ", the mean of the members' maps, each cut back to the input's area from the input as that "
                      "member saw it (so the mean is no longer exactly the logit)"),
        },
        "framing": _framing(args.serve_zooms, metrics.get("serving_zoom_sweep")),
        "cam_output": "cam",
        "decision": {"positive_label": labels[1], "threshold": round(threshold, 4),
                     "chosen_by": args.threshold_on, "rule": RULES[args.threshold_on]},
        "calibration": {"method": "temperature scaling on the validation split (NLL)",
                        "temperature": round(temperature, 4), "ece_bins": 15,
                        "ece_before": metrics["validation"]["ece_before_temperature"],
                        "ece_after": metrics["validation"]["ece"]},
        "domain": {"modalities": ["CR", "DX"], "body_parts": ["CHEST"], "image_statistics": ood},
        "intended_use": INTENDED_USE,
        "dataset": DATASET,
        "split": {"method": "by patient (personP_* = one patient; IM-X-* and NORMAL2-IM-X-* = one patient), "
                            f"stratified by class, {args.val_fraction:.0%} of each class to validation, "
                            f"seed {args.seed}",
                  **split},
        "architecture": {"type": f"{args.members} x VGG-style CNN (9 conv 3x3 + BN + ReLU, global average pool, "
                                 "linear), logits averaged", "parameters": parameters,
                         "trained_from": "scratch (no pretrained weights)"},
        "training": {
            "command": "python -m radbench.models.train " + " ".join(argv),
            "seed": args.seed, "epochs": args.epochs, "members": args.members, "batch": args.batch,
            "optimizer": f"AdamW lr {args.lr} (one-cycle), weight decay 0.02",
            "loss": ("cross-entropy with inverse-frequency class weights, label smoothing 0.05"
                     if args.look_weights is None else
                     "cross-entropy with label smoothing 0.05, each film weighted by 1 / P(its class | its look), the "
                     f"probability held at {args.look_weights:g} or above, each class half the total weight "
                     "(models/looks.py: look_balancing_weights)"),
            "augmentation": f"profile {args.augment}: {augment.describe(args.augment)}",
            "minutes": round(train_minutes, 1), "threads": args.threads, "device": "CPU",
        },
        "metrics": metrics,
    }


def _framing(zooms: tuple[float, ...], sweep: dict | None) -> str:
    if set(zooms) == {1.0}:
        return "none: every member sees the input as given"
    seen = ", ".join(f"member {k + 1}: {'as given' if z == 1 else f'framed at {z:g}'}" for k, z in enumerate(zooms))
    text = (f"inside the model, per member ({seen}); framed = the input shrunk about its centre to that share of its "
            "size on a border of its own minimum (black), as training's random rotations and zoom-outs with black "
            "fill leave most films; each member's CAM is cut back to the input's area")
    if sweep:
        text += "; ROC AUC (validation / look-reversed): " + ", ".join(
            f"{name} {r['validation_roc_auc']} / {r['look_reversed_roc_auc']}" for name, r in sweep.items())
    return text


def _table(rows: list[list], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def _threshold_line(m: dict) -> str:
    alone = m.get("validation_threshold_balanced_on_validation_only")
    if not alone:
        return ""
    return (f"Threshold balanced on the validation films alone would be {alone['threshold']}: accuracy "
            f"{alone['accuracy']}, sensitivity {alone['sensitivity']}, specificity {alone['specificity']}.")


def _look_lines(m: dict) -> list[str]:
    """The look-reversed validation, the members' spread, bootstrap intervals and the other threshold rules."""
    look = m.get("validation_look_reversed")
    if not look:
        return []
    rows = [["all validation films", *(m["validation"][k] for k in ("images", "accuracy", "roc_auc", "sensitivity",
                                                                      "specificity", "ece"))],
            ["look-reversed validation films", *(look[k] for k in ("images", "accuracy", "roc_auc", "sensitivity",
                                                                     "specificity", "ece"))]]
    for i, (a, b) in enumerate(zip(m["validation_each_member"], m.get("validation_look_reversed_each_member", []))):
        rows.append([f"member {i + 1} alone: all / look-reversed", f"{a['images']} / {b['images']}",
                     f"{a['accuracy']} / {b['accuracy']}", f"{a['roc_auc']} / {b['roc_auc']}",
                     f"{a['sensitivity']} / {b['sensitivity']}", f"{a['specificity']} / {b['specificity']}",
                     f"{a['ece']} / {b['ece']}"])
    intro = ("**Look-reversed validation** (`models/looks.py`): the quarter of the validation normals that look most "
             "like pneumonia films and the quarter of the validation pneumonias that look most like normal films, by "
             "a logistic regression on exposure and framing alone fitted on the training side (its own ROC AUC on "
             f"the validation split: {look['look_only_roc_auc_on_validation']}). It is the figure to expect on a new "
             "split: the 1.0.0 model scored AUC 0.995 on its validation split, 0.971 (95 % interval 0.949-0.988) "
             "on its look-reversed films and 0.976 on the dataset's test split.")
    lines = [intro, "",
             _table(rows, ["at the threshold", "images", "accuracy", "ROC AUC", "sensitivity", "specificity", "ECE"]),
             ""]
    boot = m.get("bootstrap_95")
    if boot:
        lines += ["95 % intervals (1000 resamplings of validation patients): " + "; ".join(
            f"{name.replace('_', '-')}: " + ", ".join(f"{k.replace('roc_auc', 'AUC')} {lo}-{hi}"
                                                      for k, (lo, hi) in v.items())
            for name, v in boot.items()) + ".", ""]
    rules = m.get("threshold_rules")
    if rules:
        lines += ["Other decision rules on the same probabilities (accuracy / sensitivity / specificity):", "",
                  _table([[name, r["threshold"],
                           f"{r['validation']['accuracy']} / {r['validation']['sensitivity']} / "
                           f"{r['validation']['specificity']}",
                           f"{r['look_reversed']['accuracy']} / {r['look_reversed']['sensitivity']} / "
                           f"{r['look_reversed']['specificity']}"] for name, r in rules.items()],
                         ["rule", "threshold", "validation", "look-reversed validation"]), ""]
    return lines


def markdown(card: dict) -> str:
    """The card's facts as markdown."""
    m = card["metrics"]
    val = m["validation"]
    (tn, fp), (fn, tp) = val["confusion_matrix"]
    shifted_rows = [[name, r["accuracy"], r["roc_auc"], r["sensitivity"], r["specificity"], r["ece"]]
                    for name, r in m["validation_shifted"].items()]
    lat, check, ood = card.get("latency", {}), card.get("export_check", {}), card["domain"]["image_statistics"]
    return "\n".join([
        f"## {card['name']} {card['version']} ({card['date']})",
        "",
        f"**Intended use.** {card['intended_use']}",
        "",
        f"- Labels: {', '.join(card['labels'])}. Input: {card['input']['height']} x {card['input']['width']}, "
        f"{card['input']['channels']} channel, float32.",
        f"- Preprocessing: {card['preprocessing']['steps']}.",
        *([f"- Framing: {card['framing']}."] if "framing" in card else []),
        f"- Outputs: `logits` ({card['outputs']['logits']}); `cam` ({card['outputs']['cam']}).",
        f"- Decision: {card['decision']['rule']}; threshold **{card['decision']['threshold']}**.",
        f"- Architecture: {card['architecture']['type']}; {card['architecture']['parameters']:,} parameters; "
        f"trained from {card['architecture']['trained_from']}.",
        f"- Training: `{card['training']['command']}`; {card['training']['minutes']} min on "
        f"{card['training']['threads']} CPU threads; {card['training']['optimizer']}; {card['training']['loss']}.",
        f"- Augmentation: {card['training']['augmentation']}.",
        f"- Split: {card['split']['method']}: {card['split']['train_images']} training images "
        f"({card['split']['train_patients']} patients), {card['split']['validation_images']} validation images "
        f"({card['split']['validation_patients']} patients).",
        "",
        "### Validation (patient-level split of the training images; expect the real test split to score lower)",
        "",
        _table([[val["images"], val["accuracy"], val["roc_auc"], val["sensitivity"], val["specificity"], val["ece"],
                 m["validation_threshold_0_5"]["sensitivity"], m["validation_threshold_0_5"]["specificity"]]],
               ["images", "accuracy", "ROC AUC", "sensitivity", "specificity", "ECE",
                "sens. at 0.5", "spec. at 0.5"]),
        "",
        _threshold_line(m),
        "",
        *(["Each member alone (same temperature and threshold): "
           + "; ".join(f"accuracy {r['accuracy']}, AUC {r['roc_auc']}, sensitivity {r['sensitivity']}, "
                       f"specificity {r['specificity']}" for r in m["validation_each_member"]) + ".", ""]
          if m.get("validation_each_member") else []),
        *_look_lines(m),
        "Confusion matrix at the threshold (rows: truth):",
        "",
        _table([["NORMAL", tn, fp], ["PNEUMONIA", fn, tp]], ["", "called NORMAL", "called PNEUMONIA"]),
        "",
        f"Calibration: {card['calibration']['method']}, T = {card['calibration']['temperature']}; expected "
        f"calibration error ({card['calibration']['ece_bins']} bins) {card['calibration']['ece_before']} before, "
        f"{card['calibration']['ece_after']} after.",
        "",
        "### Harder check: validation films with simulated acquisition shifts (same threshold)",
        "",
        _table(shifted_rows, ["shift", "accuracy", "ROC AUC", "sensitivity", "specificity", "ECE"]),
        "",
        "### Out of the model's domain",
        "",
        f"The label is withheld when the DICOM modality is not {'/'.join(card['domain']['modalities'])} or the body "
        f"part is not {'/'.join(card['domain']['body_parts']).lower()}. A prediction warns when the input's "
        f"{ood['cells']} x {ood['cells']} thumbnail is farther than {ood['threshold']} (RMS z-score, the training "
        f"images' 99.5th percentile) from the training mean ({ood['validation_flagged']:.1%} of validation films "
        "are flagged); for a file that does not name its modality and body part (PNG, JPEG, TIFF) that warning "
        "withholds the label too.",
        "",
        "### Export and latency",
        "",
        f"ONNX opset 18. ONNX Runtime vs PyTorch on a batch of {check.get('batch')}: max abs difference "
        f"{check.get('logits_max_abs_diff', float('nan')):.2e} (logits), "
        f"{check.get('cam_max_abs_diff', float('nan')):.2e} "
        f"(CAM). Latency (ONNX Runtime {lat.get('onnxruntime')}, batch 1, one thread, {lat.get('cpu')}): median "
        f"{lat.get('median_ms')} ms, p90 {lat.get('p90_ms')} ms.",
        "",
        "### Data",
        "",
        f"{card['dataset']['citation']} License: {card['dataset']['license']}. Paper: {card['dataset']['paper']} "
        f"Used: {card['dataset']['used']}. To retrain: {card['dataset']['how_to_retrain']}.",
    ])


def write_readme(card: dict, path: Path) -> None:
    """Replace the card section of ``path`` (between the markers) or create the file with it."""
    section = f"{BEGIN}\n{markdown(card)}\n\nFull card (also embedded in the ONNX metadata):\n\n```json\n" \
              f"{json.dumps(card, indent=1)}\n```\n{END}"
    text = path.read_text(encoding="utf-8") if path.is_file() else f"# Model card\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    path.write_text(head + section + rest.split(END, 1)[1], encoding="utf-8")
