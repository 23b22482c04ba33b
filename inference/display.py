"""Display windowing for viewers, separate from the model's preprocessing: presets, rendering, mouse W/L, values,
the corner annotations and the caption of an exported view.

Pure NumPy; a Qt viewer only turns the uint8 result into a picture. Nothing here changes what the model sees, and
nothing here shows a patient-identifying value.
"""

from __future__ import annotations

import numpy as np

from radbench.inference.backends import get_backend
from radbench.inference.backends.value_ranges import own_window
from radbench.inference.model import NOT_FOR_CLINICAL_USE
from radbench.inference.pipeline import Prediction
from radbench.inference.scan import Scan, WindowPreset

#: The usual named CT windows (Hounsfield units: center, width), offered for every CT scan after the frame's own.
CT_PRESETS = (
    WindowPreset(-600.0, 1500.0, "Lung"),
    WindowPreset(40.0, 400.0, "Mediastinum"),
    WindowPreset(400.0, 1800.0, "Bone"),
    WindowPreset(40.0, 80.0, "Brain"),
)
FULL_RANGE = "Full range"
AUTO = "Auto (1-99 %)"
CUSTOM = "Custom"  # what a window set by hand (a mouse drag) is called
#: The percentiles the automatic window spans.
AUTO_PERCENTILES = (1.0, 99.0)

#: Mouse travel (pixels) that moves the window by the image's whole value range.
DRAG_PIXELS_PER_RANGE = 512.0


def presets_for(scan: Scan, rescaled: np.ndarray) -> tuple[WindowPreset, ...]:
    """Every window offered for a frame, named in words, the default first.

    The file's own presets ("From file: <its explanation>", or "From file: preset 1" when it gives none), the
    frame's full range (:data:`FULL_RANGE`), the window over its 1st to 99th percentile (:data:`AUTO`), then for CT
    the usual named windows (:data:`CT_PRESETS`). Never empty: a PNG or an MR without presets still gets the two
    frame windows. ``rescaled`` is the frame through the modality LUT (:func:`rescaled_frame`).
    """
    own = tuple(WindowPreset(p.center, p.width, f"From file: {p.name or f'preset {i + 1}'}")
                for i, p in enumerate(scan.window_presets))
    frame = (WindowPreset(*full_range_window(rescaled), FULL_RANGE), WindowPreset(*auto_window(rescaled), AUTO))
    return own + frame + (CT_PRESETS if scan.modality.upper() == "CT" else ())


def full_range_window(rescaled: np.ndarray) -> tuple[float, float]:
    """``(center, width)`` spanning the frame's whole value range, as the window stage defines it (width >= 1)."""
    center, width = own_window(float(rescaled.min()), float(rescaled.max()))
    return center, max(1.0, width)


def auto_window(rescaled: np.ndarray) -> tuple[float, float]:
    """``(center, width)`` spanning the frame's 1st to 99th percentile (:data:`AUTO_PERCENTILES`): a few extreme
    pixels (a marker, a collimator edge) no longer flatten the picture. Width >= 1."""
    lo, hi = (float(v) for v in np.percentile(rescaled, AUTO_PERCENTILES))
    center, width = own_window(lo, hi)
    return center, max(1.0, width)


def preset_named(scan: Scan, rescaled: np.ndarray, name: str) -> WindowPreset:
    """The preset of :func:`presets_for` called ``name``; ``KeyError`` naming the ones there are."""
    presets = {p.name: p for p in presets_for(scan, rescaled)}
    if name not in presets:
        raise KeyError(f"no window preset named {name!r} (there are: {', '.join(presets)})")
    return presets[name]


def rescaled_frame(scan: Scan, frame: int | None = None) -> np.ndarray:
    """One frame (grey; colour as luma) through the modality LUT: float32, e.g. Hounsfield units for CT."""
    return get_backend("vectorized").rescale(scan.grey_frame(frame), scan.rescale_slope, scan.rescale_intercept)


def default_window(scan: Scan, rescaled: np.ndarray) -> tuple[float, float]:
    """The file's first preset, else the frame's own range as the window stage defines it (width at least 1): the
    first of :func:`presets_for`."""
    if scan.window_presets:
        return float(scan.window_presets[0].center), float(scan.window_presets[0].width)
    return full_range_window(rescaled)


def render(rescaled: np.ndarray, center: float, width: float, invert: bool) -> np.ndarray:
    """The DICOM linear window onto 0..255 (uint8). Pass ``invert = scan.inverted != user_invert``."""
    windowed = get_backend("vectorized").window(rescaled, center, max(1.0, width), invert)
    return np.round(windowed * 255).astype(np.uint8)


def window_drag(center: float, width: float, dx: float, dy: float, value_range: float) -> tuple[float, float]:
    """Clinical-viewer window/level for a mouse move of (dx, dy) pixels.

    Dragging right widens the window (less contrast), left narrows it; dragging down raises the level (a darker
    picture), up lowers it. :data:`DRAG_PIXELS_PER_RANGE` pixels of travel move by the whole ``value_range``.
    The width never drops below 1.
    """
    step = max(float(value_range), 1.0) / DRAG_PIXELS_PER_RANGE
    return center + dy * step, max(1.0, width + dx * step)


def value_text(scan: Scan, frame: int, row: int, col: int, rescaled: np.ndarray) -> str:
    """What lies under the cursor, e.g. ``(x 30, y 20)  raw 1064  →  40 HU``; empty outside the image.

    The rescaled value (HU for CT, unitless otherwise) is shown only when the modality LUT changes the stored
    value; colour scans show their RGB triple.
    """
    if not (0 <= row < rescaled.shape[0] and 0 <= col < rescaled.shape[1]):
        return ""
    raw = scan.pixels[scan.frame_index(frame), row, col]
    where = f"(x {col}, y {row})"
    if scan.is_color:
        return f"{where}  RGB ({', '.join(_number(v) for v in raw)})"
    if scan.rescale_slope == 1.0 and scan.rescale_intercept == 0.0:
        return f"{where}  raw {_number(raw)}"
    unit = " HU" if scan.modality.upper() == "CT" else ""
    return f"{where}  raw {_number(raw)}  →  {_number(rescaled[row, col])}{unit}"


def _number(value) -> str:
    """An integer as it is, anything else in short ``g`` form."""
    return str(int(value)) if np.issubdtype(np.asarray(value).dtype, np.integer) else f"{float(value):g}"


def corner_texts(scan: Scan, frame: int, center: float, width: float, preset: str, zoom: float,
                 value: str = "") -> tuple[str, str, str, str]:
    """The four corner annotations of a clinical viewer: top left, top right, bottom left, bottom right.

    Top left: modality and body part (or the file format) and the size; top right: the frame, n / N; bottom
    left: the window as W / L and the preset's name (``preset``, e.g. "Lung" or :data:`CUSTOM`); bottom right: the
    value under the cursor (``value``, from :func:`value_text`) and the zoom (``zoom``: screen pixels per image
    pixel, shown in %). Only tags that identify nobody are used: never a name, an ID, a date or an institution.
    """
    kind = " · ".join(part for part in (scan.modality, scan.body_part) if part) or f"{scan.source_format} image"
    top_left = f"{kind}\n{scan.columns} × {scan.rows} px"
    top_right = f"Frame {frame + 1} / {scan.frame_count}"
    bottom_left = f"W {_short(width)}  L {_short(center)}" + (f"\n{preset}" if preset else "")
    bottom_right = "\n".join(part for part in (value, f"Zoom {zoom:.0%}") if part)
    return top_left, top_right, bottom_left, bottom_right


def _short(value: float) -> str:
    """A window value as a reader writes it: whole numbers without decimals, others to one decimal."""
    return f"{value:.0f}" if abs(value - round(value)) < 0.05 or abs(value) >= 100 else f"{value:.1f}"


def view_caption(prediction: Prediction, heatmap_shown: bool = False) -> list[str]:
    """The lines burnt into an exported view: the label and its probability, or "withheld" with the reason and the
    probabilities for discussion; what the heatmap shows (when it is shown); image warnings; the notice."""
    if prediction.withheld:
        probabilities = ", ".join(f"{name} {p:.1%}" for name, p in prediction.probabilities.items())
        lines = [f"Prediction withheld: {prediction.withheld}",
                 f"Probabilities, for discussion only: {probabilities}"]
    else:
        lines = [f"Prediction: {prediction.label}, probability {prediction.probabilities[prediction.label]:.1%} "
                 f"({prediction.model})"]
    if heatmap_shown:
        lines.append("Heatmap: where the model's evidence lies (red strongest); no verdict is given"
                     if prediction.withheld else f"Heatmap: where the evidence for {prediction.label} lies (red "
                     "strongest)")
    lines += [f"Warning: {w}" for w in prediction.ood_warnings]
    return [*lines, NOT_FOR_CLINICAL_USE]
