"""The heatmap export: the classified frame with the heatmap blended in and a caption strip beneath it.

The caption names the verdict (no label when it is withheld outside the model's domain: the reason instead) and the
model, and always carries the "not for clinical use" notice; it never carries patient-identifying values.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from radbench.inference import display
from radbench.inference.errors import RadBenchError
from radbench.inference.heatmap import blend
from radbench.inference.loading import load_scan
from radbench.inference.model import NOT_FOR_CLINICAL_USE
from radbench.inference.pipeline import Prediction


def verdict(prediction: Prediction) -> str:
    """The label and its probability, or, outside the model's domain, no label: the reason it is withheld."""
    if prediction.withheld:
        return f"No verdict ({prediction.withheld})"
    return f"{prediction.label} ({prediction.probabilities[prediction.label]:.1%})"


def caption(prediction: Prediction) -> list[str]:
    """The caption lines: verdict, model, what the colours mean, a what-if run's mark, warnings, the notice."""
    heatmap = ("where the model's evidence lies (red strongest); no verdict is given" if prediction.withheld
               else f"where the evidence for {prediction.label} lies (red strongest)")
    lines = [f"{verdict(prediction)}  -  {prediction.model}", f"heatmap: {heatmap}"]
    if prediction.skipped:
        lines.append(f"WARNING: what-if run without {', '.join(prediction.skipped)}: not the model's intended input")
    lines += [f"WARNING: {w}" for w in prediction.ood_warnings]
    return [*lines, NOT_FOR_CLINICAL_USE]


def overlay_image(prediction: Prediction, opacity: float = 0.5) -> Image.Image:
    """The frame (windowed as the model saw it) with the heatmap blended in, and the caption strip."""
    if prediction.heatmap is None:
        raise RadBenchError(f"{prediction.path}: the model gives no class activation map, so there is no heatmap")
    scan = load_scan(prediction.path)
    rescaled = display.rescaled_frame(scan, prediction.frame)  # windowed as the model saw it
    grey = display.render(rescaled, *display.default_window(scan, rescaled), scan.inverted)
    picture = Image.fromarray(blend(grey, prediction.heatmap, opacity))
    size = max(12, picture.width // 45)
    font = ImageFont.load_default(size=size)
    columns = max(20, int(picture.width / (0.6 * size)))  # characters that fit on a line, roughly
    lines = [((255, 200, 0) if line.startswith("WARNING") else (255, 255, 255), part)
             for line in caption(prediction) for part in textwrap.wrap(line, columns, subsequent_indent="  ")]
    strip = Image.new("RGB", (picture.width, (len(lines) * (size + size // 2)) + size), "black")
    draw = ImageDraw.Draw(strip)
    for i, (colour, line) in enumerate(lines):
        draw.text((size // 2, size // 2 + i * (size + size // 2)), line, fill=colour, font=font)
    out = Image.new("RGB", (picture.width, picture.height + strip.height))
    out.paste(picture, (0, 0))
    out.paste(strip, (0, picture.height))
    return out


def save_overlay(prediction: Prediction, path: str | Path, opacity: float = 0.5) -> Path:
    """Write :func:`overlay_image` as PNG to ``path``; returns the path."""
    path = Path(path)
    try:
        overlay_image(prediction, opacity).save(path, format="PNG")
    except OSError as exc:
        raise RadBenchError(f"{path}: cannot write the heatmap image ({exc.strerror or exc})") from None
    return path
