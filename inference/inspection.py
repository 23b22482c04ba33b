"""The pipeline inspector: one run with every stage's output kept, its numbers (shape, dtype, range, mean, histogram,
time) and a picture of it by a fixed, stated mapping, to teach what each stage does (``radbench inspect``, the
app's Inspector tab). The run is the pipeline's own (:meth:`inference.pipeline.Pipeline.run` with an observer), so
what is shown is what the model got.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radbench.inference.backends.contract import Cancel
from radbench.inference.heatmap import colorize
from radbench.inference.model import NOT_FOR_CLINICAL_USE
from radbench.inference.pipeline import Pipeline, Prediction
from radbench.inference.scan import Scan

#: The stages the inspector shows, in pipeline order (equalize is absent when the model card or a skip leaves it out,
#: the heatmap when the model gives no class activation maps).
INSPECTED_STAGES = ("decode", "rescale", "window", "equalize", "resize", "normalize", "heatmap")
HISTOGRAM_BINS = 64
_BAND_ROWS = 128

_OWN_RANGE = "its own minimum -> black, maximum -> white (stored values have no fixed range)"
_UNIT_RANGE = "0 -> black, 1 -> white"
#: How each stage's picture is made from its values: fixed, so that the [0, 1] stages compare directly.
MAPPINGS = {
    "decode": _OWN_RANGE,
    "rescale": _OWN_RANGE,
    "window": _UNIT_RANGE,
    "equalize": _UNIT_RANGE,
    "resize": _UNIT_RANGE,
    "normalize": "the values that 0 and 1 become, (0 - mean) / std -> black and (1 - mean) / std -> white "
                 "(first channel)",
    "heatmap": "0 -> dark blue, 1 -> dark red (the heatmap's colour ramp)",
}

#: What each step of :data:`~inference.preprocessing.SKIPPABLE` is for and what leaving it out does, for students.
WHAT_IF_EXPLANATIONS = {
    "window": "The window chooses which stored values run from black to white, as a radiologist sets it for the "
              "tissue of interest. Without it the image's own darkest and brightest pixels set the range, so a few "
              "extreme pixels can leave the lungs flat and grey.",
    "equalize": "Equalization spreads the grey levels so that every brightness is used about equally, which makes "
                "films from different machines look alike. Without it the model sees the film's own contrast, "
                "which may differ from the films it learned from.",
    "invert": "MONOCHROME1 files store bone as dark values, so they are flipped to look like every other film. "
              "Without the flip the model sees a negative: bright air and dark bones, unlike anything it was "
              "trained on.",
}

@dataclass(frozen=True)
class StageOutput:
    """One stage's output (a read-only copy), its time and the value range its picture maps to black and white."""

    name: str
    values: np.ndarray
    ms: float | None  # None: not timed (the decode of a scan that was already loaded)
    display_range: tuple[float, float]

    @property
    def low(self) -> float:
        return float(self.values.min())

    @property
    def high(self) -> float:
        return float(self.values.max())

    def histogram(self) -> tuple[np.ndarray, float, float]:
        """:data:`HISTOGRAM_BINS` counts of the values between their minimum and maximum, and those two bounds."""
        low, high = self.low, self.high
        counts, _ = np.histogram(self.values, bins=HISTOGRAM_BINS, range=(low, high if high > low else low + 1))
        return counts, low, high

    def record(self) -> dict:
        """The JSON form: name, shape, dtype, min, max, mean, histogram, time and the picture's mapping."""
        counts, low, high = self.histogram()
        return {"name": self.name, "shape": list(self.values.shape), "dtype": str(self.values.dtype),
                "min": low, "max": high, "mean": float(self.values.mean(dtype=np.float64)),
                "histogram": {"bins": HISTOGRAM_BINS, "lo": low, "hi": high, "counts": counts.tolist()},
                "ms": None if self.ms is None else round(self.ms, 3), "mapping": MAPPINGS[self.name]}

    def picture(self, every: int = 1) -> np.ndarray:
        """The stage's output as uint8 grey ``(H, W)`` (the heatmap: RGB ``(H, W, 3)``) by its fixed mapping; with
        ``every``, only every so many rows and columns (a thumbnail)."""
        plane = (self.values if self.values.ndim == 2 else self.values[0, 0])[::every, ::every]
        if self.name == "heatmap":  # a band of rows at a time: colorize's float64 temporaries stay small
            rgb = np.empty((*plane.shape, 3), dtype=np.uint8)
            for top in range(0, plane.shape[0], _BAND_ROWS):
                rgb[top:top + _BAND_ROWS] = colorize(plane[top:top + _BAND_ROWS])
            return rgb
        low, high = self.display_range
        scaled = (plane.astype(np.float32) - np.float32(low)) * np.float32(255 / (high - low if high > low else 1.0))
        return np.round(np.clip(scaled, 0.0, 255.0, out=scaled), out=scaled).astype(np.uint8)


@dataclass(frozen=True)
class Inspection:
    """A run's prediction and its stages' outputs, in pipeline order."""

    prediction: Prediction
    stages: tuple[StageOutput, ...]

    def stage(self, name: str) -> StageOutput:
        """The output of the stage called ``name``; ``KeyError`` if this run had no such stage."""
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(f"this run has no {name} stage (it has {', '.join(s.name for s in self.stages)})")

    def record(self) -> dict:
        """The JSON form (``stages.json``): the run (file, frame, backend, model, skipped steps, probabilities) and
        its stages. No patient-identifying values."""
        p = self.prediction
        return {"file": str(p.path), "frame": p.frame, "frames": p.frame_count, "backend": p.backend,
                "model": p.model, "skipped": list(p.skipped), "intended_input": not p.skipped,
                "probabilities": dict(p.probabilities), "label": None if p.withheld else p.label,
                "withheld": p.withheld, "stages": [stage.record() for stage in self.stages],
                "notice": NOT_FOR_CLINICAL_USE}


def inspect_run(pipeline: Pipeline, source: str | Path | Scan, *, frame: int | None = None,
                skip: Collection[str] = (), cancel: Cancel = None) -> Inspection:
    """Run ``pipeline`` once on ``source`` (``skip`` as in :meth:`~inference.pipeline.Pipeline.run`) and keep a copy
    of every stage's output; raises what the run raises."""
    kept: dict[str, np.ndarray] = {}

    def keep(name: str, values: np.ndarray) -> None:
        copy = np.array(values, copy=True)
        copy.flags.writeable = False
        kept[name] = copy

    prediction = pipeline.run(source, frame=frame, skip=skip, cancel=cancel, observe=keep)
    times = prediction.timings.as_ms()
    card = pipeline.model.card
    unit_of_normalize = tuple(float((v - card.mean[0]) / card.std[0]) for v in (0.0, 1.0))
    stages = []
    for name in INSPECTED_STAGES:
        if name in kept:
            values = kept[name]
            own = (float(values.min()), float(values.max()))
            display = {"decode": own, "rescale": own, "normalize": unit_of_normalize}.get(name, (0.0, 1.0))
            stages.append(StageOutput(name, values, times.get(name), display))
    return Inspection(prediction, tuple(stages))
