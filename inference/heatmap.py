"""Where the model looked: class activation maps turned into a heatmap aligned with the scan, and overlays.

The heatmap has the classified frame's shape and orientation (the pipeline resizes the whole frame to the
model input, without cropping, so the map only needs resizing back). Overlays are RGB uint8 arrays; front
ends (CLI export, GUI) only display or save them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: Anchor colours of the heatmap colour scale, low to high (a "jet"-like ramp: blue, cyan, yellow, red).
_RAMP = np.array([[0, 0, 128], [0, 64, 255], [0, 224, 255], [255, 255, 0], [255, 96, 0], [160, 0, 0]], float)


def evidence_map(maps: np.ndarray, label_index: int) -> np.ndarray:
    """Where the evidence for ``label_index`` beats the other classes: ``ReLU(cam_k - mean(other cams))``,
    scaled to a maximum of 1 (all zeros when nothing favours the label). float32 (h, w)."""
    others = np.delete(maps, label_index, axis=0).mean(axis=0)
    evidence = np.maximum(maps[label_index] - others, 0.0)
    peak = evidence.max()
    return (evidence / peak if peak > 0 else evidence).astype(np.float32)


def heatmap(maps: np.ndarray, label_index: int, shape: tuple[int, int],
            resize: Callable[..., np.ndarray]) -> np.ndarray:
    """The evidence map for a label, resized (by a backend's ``resize`` stage) to the frame's ``shape``."""
    return np.clip(resize(evidence_map(maps, label_index), *shape), 0.0, 1.0)


def colorize(heat: np.ndarray) -> np.ndarray:
    """Map a [0, 1] heatmap to RGB uint8 along the colour ramp."""
    position = np.clip(heat, 0, 1) * (len(_RAMP) - 1)
    anchors = np.arange(len(_RAMP))
    return np.stack([np.interp(position, anchors, _RAMP[:, c]) for c in range(3)], axis=-1).round().astype(np.uint8)


def blend(grey: np.ndarray, heat: np.ndarray, opacity: float = 0.5) -> np.ndarray:
    """Grey uint8 image with the coloured heatmap laid over it; each pixel's opacity grows with its heat."""
    alpha = (opacity * np.clip(heat, 0, 1))[..., None]
    base = np.repeat(grey[..., None], 3, axis=-1).astype(np.float32)
    return (base * (1 - alpha) + colorize(heat) * alpha).round().astype(np.uint8)
