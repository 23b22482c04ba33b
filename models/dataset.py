"""Training data: list the images, split them by patient, and preprocess them with RadBench's own pipeline."""

from __future__ import annotations

import random
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radbench.inference.backends import get_backend
from radbench.inference.loading import load_scan
from radbench.inference.preprocessing import PreprocessSpec, preprocess

LABELS = ("NORMAL", "PNEUMONIA")
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}
_PATIENT_PATTERNS = (re.compile(r"^person(\d+)_"), re.compile(r"^(?:NORMAL2-)?IM-(\d+)-"))


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int  # index into LABELS
    patient: str


def patient_of(name: str) -> str:
    """The patient key a file name encodes: ``personP_*`` -> ``P:P``; ``IM-X-*`` and ``NORMAL2-IM-X-*`` -> ``N:X``.

    IM and NORMAL2-IM files that share a number are treated as one patient (the cautious reading).
    Unrecognized names are their own patient.
    """
    for prefix, pattern in zip(("P", "N"), _PATIENT_PATTERNS):
        match = pattern.match(name)
        if match:
            return f"{prefix}:{int(match.group(1))}"
    return f"file:{name}"


def list_samples(root: Path) -> list[Sample]:
    """Every image under ``root/<LABEL>/``, sorted by path."""
    samples = []
    for index, label in enumerate(LABELS):
        for path in sorted((root / label).iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                samples.append(Sample(path, index, patient_of(path.name)))
    if not samples:
        raise SystemExit(f"{root}: no images under {'/ or '.join(LABELS)}/")
    return samples


def split_by_patient(samples: list[Sample], val_fraction: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Stratified by class, grouped by patient: no patient is on both sides; each class gives ``val_fraction``."""
    train, val = [], []
    for label in range(len(LABELS)):
        by_patient: dict[str, list[Sample]] = defaultdict(list)
        for s in samples:
            if s.label == label:
                by_patient[s.patient].append(s)
        patients = sorted(by_patient)
        random.Random(seed + label).shuffle(patients)
        target = val_fraction * sum(len(v) for v in by_patient.values())
        taken = 0
        for patient in patients:
            side = val if taken < target else train
            side.extend(by_patient[patient])
            taken += len(by_patient[patient]) if side is val else 0
    overlap = {s.patient for s in train} & {s.patient for s in val}
    assert not overlap, f"patients on both sides of the split: {sorted(overlap)[:5]}"
    return train, val


def equalized(path: Path, size: int) -> np.ndarray:
    """The pipeline's vectorized stages up to equalize, then area-resized to ``size``: float32 (size, size) in [0, 1].

    Runs :func:`inference.preprocessing.preprocess` itself with identity normalization, so training sees
    exactly what serving computes before its final resize and normalization.
    """
    scan = load_scan(path)
    spec = PreprocessSpec.for_scan(scan, size=(size, size), mean=(0.0,), std=(1.0,), channels=1)
    return preprocess(scan.grey_frame(), spec, get_backend("vectorized"))[0, 0]


def serving_tensors(paths: list[Path], size: int, mean: float, std: float) -> np.ndarray:
    """The exact model inputs the pipeline builds at serving time, stacked: (N, 1, size, size) float32."""
    backend = get_backend("vectorized")
    out = np.empty((len(paths), 1, size, size), np.float32)
    for i, path in enumerate(paths):
        scan = load_scan(path)
        spec = PreprocessSpec.for_scan(scan, size=(size, size), mean=(mean,), std=(std,), channels=1)
        out[i] = preprocess(scan.grey_frame(), spec, backend)[0]
    return out


def load_equalized(paths: list[Path], size: int) -> np.ndarray:
    out = np.empty((len(paths), size, size), np.float32)
    for i, path in enumerate(paths):
        out[i] = equalized(path, size)
    return out
