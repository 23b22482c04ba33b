"""Acquisition look: how a film was exposed and framed, and the validation condition where it misleads.

In the training images the look of a film tells its class by itself: bacterial-pneumonia films are mostly
low-contrast and tightly framed (little true black), normal films mostly have a black background around the
body. A logistic regression on ten numbers of the decoded film (before RadBench's pipeline: mean, spread,
percentiles, border brightness, share of black and white pixels) separates the classes with a ROC AUC of about
0.9 on validation. A network can lean on that shortcut; a new hospital or a new year of films breaks it.

The *look-reversed* validation subset takes, of the validation split, the quarter of the normal films that
look most like pneumonia films and the quarter of the pneumonia films that look most like normal films
(by that regression, fitted on the training side only). It is the validation condition where the shortcut
points the wrong way, and it predicts a new split far better than the whole validation split does: the
model bundled before (1.0.0) scored ROC AUC 0.995 on its validation split, 0.971 on its look-reversed
subset (0.949-0.988 over patient resamplings), and 0.976 on the dataset's official test split (measured
elsewhere, issue 15).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from radbench.inference.loading import load_scan

FEATURES = ("mean", "std", "p1", "p5", "p50", "p95", "p99", "border mean", "black share", "white share")


def look_features(paths: list[Path]) -> np.ndarray:
    """(N, 10) numbers describing each decoded film's exposure and framing (see :data:`FEATURES`)."""
    rows = []
    for path in paths:
        grey = load_scan(path).grey_frame().astype(np.float32)
        grey = 255.0 * (grey - grey.min()) / max(float(np.ptp(grey)), 1e-6)  # 8-bit scale whatever the depth
        edge = max(1, grey.shape[0] // 16)
        border = np.concatenate([grey[:edge].ravel(), grey[-edge:].ravel(), grey[:, :edge].ravel(),
                                 grey[:, -edge:].ravel()])
        rows.append([grey.mean(), grey.std(), *np.percentile(grey, [1, 5, 50, 95, 99]), border.mean(),
                     (grey < 10).mean(), (grey > 245).mean()])
    return np.asarray(rows, np.float64)


class LookModel:
    """Logistic regression of the class on the look features (standardized; L2, full-batch gradient descent)."""

    def __init__(self, features: np.ndarray, y: np.ndarray, steps: int = 3000, rate: float = 0.1,
                 l2: float = 1e-3):
        self.mean, self.std = features.mean(0), features.std(0) + 1e-6
        z = (features - self.mean) / self.std
        self.w, self.b = np.zeros(z.shape[1]), 0.0
        for _ in range(steps):
            g = 1 / (1 + np.exp(-(z @ self.w + self.b))) - y
            self.w -= rate * (z.T @ g / len(y) + l2 * self.w)
            self.b -= rate * float(g.mean())

    def score(self, features: np.ndarray) -> np.ndarray:
        """How much like a pneumonia film each film looks (a logit)."""
        return (features - self.mean) / self.std @ self.w + self.b


def look_balancing_weights(score: np.ndarray, y: np.ndarray, floor: float) -> np.ndarray:
    """Per-film training weights under which the look no longer tells the class, and the classes weigh the same.

    ``score`` is :meth:`LookModel.score` of the training films. A film weighs ``1 / P(its class | its look)``: a
    normal film that looks like a pneumonia film (or the reverse) counts more, a film whose look gives its class away
    counts less, so that in the weighted training set the look-only regression has little left to find. The
    probability is held at ``floor`` or above (the regression is overconfident on a few films: unheld, one normal film
    would weigh thousands), then each class is scaled to half the total weight (as inverse-frequency class weights).
    The weights average 1.
    """
    p = 1 / (1 + np.exp(-score))
    weights = 1 / np.maximum(np.where(y == 1, p, 1 - p), floor)
    for label in (0, 1):
        weights[y == label] *= (len(y) / 2) / weights[y == label].sum()
    return weights


def look_reversed(y: np.ndarray, score: np.ndarray, fraction: float = 0.25) -> np.ndarray:
    """Mask: the ``fraction`` of normal films with the highest look score and of pneumonia films with the lowest."""
    normal, pneumonia = y == 0, y == 1
    return ((normal & (score >= np.quantile(score[normal], 1 - fraction)))
            | (pneumonia & (score <= np.quantile(score[pneumonia], fraction))))
