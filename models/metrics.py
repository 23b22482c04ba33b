"""Classifier metrics in NumPy: ROC AUC, confusion at a threshold, calibration error, temperature fitting."""

from __future__ import annotations

import itertools

import numpy as np
from scipy.stats import rankdata


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties counted half)."""
    ranks = rankdata(score)
    n1 = int(y.sum())
    n0 = len(y) - n1
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def expected_calibration_error(y: np.ndarray, probs: np.ndarray, bins: int = 15) -> float:
    """Top-label ECE: confidence vs accuracy in ``bins`` equal-width confidence bins, weighted by count."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        inside = (confidence > lo) & (confidence <= hi)
        if inside.any():
            ece += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(ece)


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature ``T`` minimizing the negative log-likelihood of ``softmax(logits / T)`` (grid search)."""
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 2000))
    nll = [-np.log(softmax(logits / t)[np.arange(len(y)), y] + 1e-12).mean() for t in grid]
    return float(grid[int(np.argmin(nll))])


def balanced_threshold(y: np.ndarray, p_positive: np.ndarray) -> float:
    """The threshold on P(positive) that maximizes min(sensitivity, specificity); ties: the larger sum."""
    best, best_key = 0.5, (-1.0, -1.0)
    for t in np.unique(p_positive):
        sens, spec = _rates(y, p_positive >= t)
        key = (min(sens, spec), sens + spec)
        if key > best_key:
            best, best_key = float(t), key
    return best


def _rates(y: np.ndarray, called_positive: np.ndarray) -> tuple[float, float]:
    sens = float(called_positive[y == 1].mean()) if (y == 1).any() else float("nan")
    spec = float((~called_positive[y == 0]).mean()) if (y == 0).any() else float("nan")
    return sens, spec


def report(y: np.ndarray, probs: np.ndarray, threshold: float) -> dict:
    """Accuracy, sensitivity, specificity, confusion matrix (rows true, columns predicted) at ``threshold``;
    AUC; ECE."""
    called = probs[:, 1] >= threshold
    sens, spec = _rates(y, called)
    confusion = [[int(((y == t) & (called == bool(p))).sum()) for p in (0, 1)] for t in (0, 1)]
    return {
        "images": len(y),
        "accuracy": round(float((called == (y == 1)).mean()), 4),
        "roc_auc": round(roc_auc(y, probs[:, 1]), 4),
        "sensitivity": round(sens, 4),
        "specificity": round(spec, 4),
        "ece": round(expected_calibration_error(y, probs), 4),
        "confusion_matrix": confusion,
    }


def bootstrap(y: np.ndarray, probs: np.ndarray, threshold: float, groups: np.ndarray, seed: int,
              rounds: int = 1000) -> dict:
    """95 % intervals (2.5th and 97.5th percentiles) of accuracy, sensitivity, specificity and ROC AUC at
    ``threshold`` over ``rounds`` resamplings of whole ``groups`` (patients) with replacement."""
    rng = np.random.default_rng(seed)
    names = np.unique(groups)
    members = {g: np.flatnonzero(groups == g) for g in names}
    rows = []
    for _ in range(rounds):
        index = np.concatenate([members[g] for g in rng.choice(names, len(names))])
        yy, pp = y[index], probs[index, 1]
        called = pp >= threshold
        sens, spec = _rates(yy, called)
        auc = roc_auc(yy, pp) if 0 < yy.sum() < len(yy) else float("nan")
        rows.append([float((called == (yy == 1)).mean()), sens, spec, auc])
    with np.errstate(all="ignore"):
        low, high = np.nanpercentile(np.asarray(rows, np.float64), [2.5, 97.5], axis=0)
    return {name: [round(float(lo), 4), round(float(hi), 4)]
            for name, lo, hi in zip(("accuracy", "sensitivity", "specificity", "roc_auc"), low, high)}
