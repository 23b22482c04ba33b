"""Train RadBench's pneumonia classifier from scratch on CPU, calibrate it, and export it to ONNX with its card.

    python -m radbench.models.train --data ../shared/data/chest_xray/train

Deterministic for a given ``--seed`` and thread count. Writes ``models/pneumonia.onnx`` (the card embedded in
its metadata) and the card section of ``models/README.md``. Needs the ``train`` extra (PyTorch).
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn.functional as F

from radbench.inference.model import CARD_KEY
from radbench.inference.ood import image_statistics, statistics_distance
from radbench.models import card as model_card
from radbench.models import metrics
from radbench.models.augment import PROFILES, Augmenter
from radbench.models.dataset import (
    LABELS,
    list_samples,
    load_equalized,
    serving_tensors,
    split_by_patient,
)
from radbench.models.latency import latency
from radbench.models.looks import LookModel, look_balancing_weights, look_features, look_reversed
from radbench.models.net import PneumoniaNet, ServingNet, framed
from radbench.models.shifts import SHIFTS, shifted_tensors

HERE = Path(__file__).resolve().parent
MEAN, STD = 0.5, 0.29  # of equalized images (uniform on [0, 1]: mean 0.5, std 0.289)


def zooms(text: str) -> tuple[float, ...]:
    """``--serve-zooms``: comma-separated zooms, each above 0 and at most 1."""
    values = tuple(float(z) for z in text.split(","))
    if not all(0 < z <= 1 for z in values):
        raise argparse.ArgumentTypeError(f"each zoom must be above 0 and at most 1, got {text}")
    return values


def floor(text: str) -> float:
    """``--look-weights``: a probability above 0 and below 1."""
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"the floor must be above 0 and below 1, got {text}")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="folder with NORMAL/ and PNEUMONIA/ images")
    p.add_argument("--out", type=Path, default=HERE / "pneumonia.onnx")
    p.add_argument("--readme", type=Path, default=HERE / "README.md", help="card markdown to update")
    p.add_argument("--size", type=int, default=128, help="model input size in pixels")
    p.add_argument("--source-size", type=int, default=224, help="size augmentation works at")
    p.add_argument("--epochs", type=int, default=16)
    p.add_argument("--members", type=int, default=2, help="independently seeded networks averaged in the export")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--val-fraction", type=float, default=0.15)
    p.add_argument("--threshold-on", choices=("half", "look", "shifted", "validation"), default="half",
                   help="half (default): the calibrated probability 0.5 of a model trained with balanced class priors "
                        "(prevalence-free, equal costs); or balance sensitivity and specificity on the look-reversed "
                        "validation films, on the validation films plus their shifted copies, or on the validation "
                        "films alone")
    p.add_argument("--augment", choices=sorted(PROFILES), default="v1",
                   help="augmentation profile (models/augment.py): v1 (the bundled model's), v2 (stronger framing) "
                        "or v1f (v1 with framing drawn by class)")
    p.add_argument("--serve-zooms", type=zooms, default=(1.0, 0.9),
                   help="per member, the zoom at which it sees the input (net.framed; 1 = as given), comma-separated, "
                        "one per member (default: 1,0.9)")
    p.add_argument("--look-weights", type=floor, default=None, metavar="FLOOR",
                   help="weigh each training film by 1 / P(its class | its look) (models/looks.py), the probability "
                        "held at FLOOR or above, so that exposure and framing no longer tell the class (default: off, "
                        "inverse-frequency class weights)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--version", default="1.2.0", help="the card's model version")
    return p.parse_args(argv)


def train_member(x: torch.Tensor, y: torch.Tensor, args: argparse.Namespace, seed: int,
                 film_weights: torch.Tensor | None = None) -> PneumoniaNet:
    """One network: AdamW, one-cycle schedule, class-weighted cross-entropy with light label smoothing; with
    ``film_weights``, each film's loss weighted by its own weight instead (:func:`.looks.look_balancing_weights`)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    augment = Augmenter(args.source_size, args.size, MEAN, STD, gen, args.augment)
    net = PneumoniaNet()
    counts = torch.bincount(y, minlength=len(LABELS)).float()
    weights = counts.sum() / (len(LABELS) * counts.clamp(min=1))
    steps = max(1, len(y) // args.batch)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=0.02)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, epochs=args.epochs, steps_per_epoch=steps)
    for epoch in range(args.epochs):
        net.train()
        order = torch.randperm(len(y), generator=gen)
        started, total = time.perf_counter(), 0.0
        for step in range(steps):
            index = order[step * args.batch:(step + 1) * args.batch]
            logits = net(augment(x[index], y[index]))
            if film_weights is None:
                loss = F.cross_entropy(logits, y[index], weight=weights, label_smoothing=0.05)
            else:
                losses = F.cross_entropy(logits, y[index], reduction="none", label_smoothing=0.05)
                loss = (losses * film_weights[index]).sum() / film_weights[index].sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
            total += loss.item()
        print(f"  member seed {seed} epoch {epoch + 1}/{args.epochs}: loss {total / steps:.4f} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)
    return net.eval()


@torch.no_grad()
def ensemble_logits(members: list[PneumoniaNet], tensors: np.ndarray, zooms: tuple[float, ...]) -> np.ndarray:
    """The members' mean uncalibrated logits, each member seeing the input framed at its zoom, as the exported model
    computes them before the temperature."""
    batches = torch.from_numpy(tensors).split(256)
    return torch.stack([torch.cat([member(framed(b, zoom_out)) for b in batches])
                        for member, zoom_out in zip(members, zooms)]).mean(0).numpy()


def zoom_sweep(members: list[PneumoniaNet], zooms: tuple[float, ...], x_val: np.ndarray, y_val: np.ndarray,
               hard: np.ndarray) -> dict:
    """ROC AUC on validation and on its look-reversed subset with the framed members (zoom below 1) at each zoom of
    a sweep, the others as given (1: every member sees the input as given), and with every member framed at the
    chosen zoom: how the chosen framing compares."""
    framed_zoom = min(zooms)
    options = {f"framed members at {z:g}": tuple(z if k < 1 else 1.0 for k in zooms) for z in (1.0, 0.95, 0.9, 0.85)}
    options[f"every member at {framed_zoom:g}"] = (framed_zoom,) * len(members)
    sweep = {}
    for name, option in options.items():
        scores = ensemble_logits(members, x_val, option) @ np.array([-1.0, 1.0])  # ranks as the probability
        sweep[name] = {"validation_roc_auc": round(metrics.roc_auc(y_val, scores), 4),
                       "look_reversed_roc_auc": round(metrics.roc_auc(y_val[hard], scores[hard]), 4)}
    return sweep


def export(serving: ServingNet, path: Path, size: int, card: dict) -> None:
    example = torch.zeros(1, 1, size, size)
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated but needs no onnxscript
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(serving, (example,), str(path), input_names=["image"], output_names=["logits", "cam"],
                          dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}, "cam": {0: "batch"}},
                          opset_version=18, dynamo=False)
    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, {CARD_KEY: json.dumps(card, indent=1)})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def onnx_vs_torch(serving: ServingNet, path: Path, batch: np.ndarray) -> dict:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    onnx_logits, onnx_cam = session.run(None, {"image": batch})
    with torch.no_grad():
        torch_logits, torch_cam = (t.numpy() for t in serving(torch.from_numpy(batch)))
    return {"batch": len(batch), "logits_max_abs_diff": float(np.abs(onnx_logits - torch_logits).max()),
            "cam_max_abs_diff": float(np.abs(onnx_cam - torch_cam).max())}


def ood_reference(train_equalized: np.ndarray, val_tensors: np.ndarray) -> dict:
    """Per-cell mean and std of the 8 x 8 thumbnails of the training inputs; the alarm threshold is the 99.5th
    percentile of the training images' own distance, so about 1 in 200 typical films is flagged."""
    inputs = [((img - MEAN) / STD)[None, None] for img in train_equalized]
    stats = np.stack([image_statistics(x) for x in inputs])
    reference = {"cells": 8, "mean": np.round(stats.mean(0), 5).tolist(),
                 "std": np.round(stats.std(0) + 1e-5, 5).tolist()}
    threshold = float(np.percentile([statistics_distance(x, reference) for x in inputs], 99.5))
    flagged = np.mean([statistics_distance(t[None], reference) > threshold for t in val_tensors])
    return {**reference, "threshold": round(threshold, 4), "validation_flagged": round(float(flagged), 4)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if len(args.serve_zooms) != args.members:
        raise SystemExit(f"--serve-zooms needs one zoom per member ({args.members}), got {len(args.serve_zooms)}")
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    random.seed(args.seed)
    np.random.seed(args.seed)

    samples = list_samples(args.data)
    train, val = split_by_patient(samples, args.val_fraction, args.seed)
    print(f"{len(samples)} images, {len({s.patient for s in samples})} patients: "
          f"train {len(train)}, validation {len(val)} (by patient, stratified)", flush=True)
    x_train = load_equalized([s.path for s in train], args.source_size)
    y_train = torch.tensor([s.label for s in train])
    val_paths, y_val = [s.path for s in val], np.array([s.label for s in val])
    x_val = serving_tensors(val_paths, args.size, MEAN, STD)
    print(f"preprocessed with the vectorized pipeline in {time.perf_counter() - started:.0f} s", flush=True)

    train_looks = look_features([s.path for s in train])
    look_model = LookModel(train_looks, y_train.numpy())
    film_weights = None
    if args.look_weights is not None:
        film_weights = torch.from_numpy(look_balancing_weights(
            look_model.score(train_looks), y_train.numpy(), args.look_weights)).float()
    members = [train_member(torch.from_numpy(x_train)[:, None], y_train, args, args.seed + 1000 * k, film_weights)
               for k in range(args.members)]
    train_minutes = (time.perf_counter() - started) / 60

    raw_logits = ensemble_logits(members, x_val, args.serve_zooms)
    temperature = metrics.fit_temperature(raw_logits, y_val)
    probs = metrics.softmax(raw_logits / temperature)
    shifted_probs = {name: metrics.softmax(ensemble_logits(members, shifted_tensors(
        val_paths, name, args.size, MEAN, STD, args.seed), args.serve_zooms) / temperature) for name in SHIFTS}
    validation_only = metrics.balanced_threshold(y_val, probs[:, 1])
    val_look = look_model.score(look_features(val_paths))
    hard = look_reversed(y_val, val_look)
    thresholds = {"half": 0.5, "validation": validation_only,
                  "look": metrics.balanced_threshold(y_val[hard], probs[hard, 1]),
                  "shifted": metrics.balanced_threshold(  # validation films plus their shifted copies
                      np.tile(y_val, 1 + len(SHIFTS)),
                      np.concatenate([probs[:, 1], *(p[:, 1] for p in shifted_probs.values())]))}
    threshold = thresholds[args.threshold_on]
    validation = metrics.report(y_val, probs, threshold)
    ece_before = metrics.expected_calibration_error(y_val, metrics.softmax(raw_logits))
    validation["ece_before_temperature"] = round(ece_before, 4)
    at_half = metrics.report(y_val, probs, 0.5)
    at_validation_only = {"threshold": round(validation_only, 4), **metrics.report(y_val, probs, validation_only)}
    member_probs = [metrics.softmax(ensemble_logits([m], x_val, (z,)) / temperature)
                    for m, z in zip(members, args.serve_zooms)]
    single = [metrics.report(y_val, p, threshold) for p in member_probs]
    patients = np.array([s.patient for s in val])
    look_reversed_report = {**metrics.report(y_val[hard], probs[hard], threshold),
                            "look_only_roc_auc_on_validation": round(metrics.roc_auc(y_val, val_look), 4)}
    look_reversed_members = [metrics.report(y_val[hard], p[hard], threshold) for p in member_probs]
    intervals = {"validation": metrics.bootstrap(y_val, probs, threshold, patients, args.seed),
                 "look_reversed": metrics.bootstrap(y_val[hard], probs[hard], threshold, patients[hard], args.seed)}
    other_thresholds = {name: {"threshold": round(t, 4), "validation": metrics.report(y_val, probs, t),
                               "look_reversed": metrics.report(y_val[hard], probs[hard], t)}
                        for name, t in thresholds.items()}
    shifted = {name: metrics.report(y_val, p, threshold) for name, p in shifted_probs.items()}
    print(f"validation: {json.dumps(validation)}", flush=True)
    print(f"look-reversed validation: {json.dumps(look_reversed_report)}", flush=True)
    for name, result in other_thresholds.items():
        print(f"  threshold rule {name}: {json.dumps(result)}", flush=True)
    for name, result in shifted.items():
        print(f"  shifted {name}: {json.dumps(result)}", flush=True)

    serving = ServingNet(members, temperature, args.serve_zooms).eval()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    card = model_card.build(
        args=args, argv=sys.argv[1:] if argv is None else argv, labels=LABELS, size=args.size, mean=MEAN, std=STD,
        threshold=threshold, temperature=temperature, parameters=sum(p.numel() for p in serving.parameters()),
        split={"train_images": len(train), "validation_images": len(val),
               "train_patients": len({s.patient for s in train}), "validation_patients": len({s.patient for s in val})},
        metrics={"validation": validation, "validation_threshold_0_5": at_half,
                 "validation_threshold_balanced_on_validation_only": at_validation_only, "validation_shifted": shifted,
                 "validation_each_member": single, "validation_look_reversed": look_reversed_report,
                 "validation_look_reversed_each_member": look_reversed_members,
                 "bootstrap_95": intervals, "threshold_rules": other_thresholds,
                 "serving_zoom_sweep": zoom_sweep(members, args.serve_zooms, x_val, y_val, hard)},
        ood=ood_reference(x_train, x_val), train_minutes=train_minutes,
        date=datetime.date.today().isoformat())
    export(serving, args.out, args.size, card)  # twice: latency and the ONNX check are measured on the file
    card["export_check"] = onnx_vs_torch(serving, args.out, x_val[:64])
    card["latency"] = latency(args.out, args.size)
    export(serving, args.out, args.size, card)
    model_card.write_readme(card, args.readme)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) and {args.readme}; "
          f"total {(time.perf_counter() - started) / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
