"""Display windowing for viewers, separate from the model's preprocessing: presets, rendering, mouse W/L, values.

Pure NumPy; a Qt viewer only turns the uint8 result into a picture. Nothing here changes what the model sees.
"""

from __future__ import annotations

import numpy as np

from radbench.inference.backends import get_backend
from radbench.inference.backends.value_ranges import own_window
from radbench.inference.scan import Scan, WindowPreset

#: The usual named CT windows (Hounsfield units), offered for every CT scan after the file's own presets.
CT_PRESETS = (
    WindowPreset(-600.0, 1500.0, "Lung"),
    WindowPreset(50.0, 350.0, "Mediastinum"),
    WindowPreset(400.0, 1800.0, "Bone"),
    WindowPreset(40.0, 80.0, "Brain"),
)

#: Mouse travel (pixels) that moves the window by the image's whole value range.
DRAG_PIXELS_PER_RANGE = 512.0


def presets_for(scan: Scan) -> tuple[WindowPreset, ...]:
    """The file's presets (unnamed ones called "File 1", ...), then the CT presets for CT scans."""
    own = tuple(WindowPreset(p.center, p.width, p.name or f"File {i + 1}") for i, p in enumerate(scan.window_presets))
    return own + (CT_PRESETS if scan.modality.upper() == "CT" else ())


def rescaled_frame(scan: Scan, frame: int | None = None) -> np.ndarray:
    """One frame (grey; colour as luma) through the modality LUT: float32, e.g. Hounsfield units for CT."""
    return get_backend("vectorized").rescale(scan.grey_frame(frame), scan.rescale_slope, scan.rescale_intercept)


def default_window(scan: Scan, rescaled: np.ndarray) -> tuple[float, float]:
    """The file's first preset, else the frame's own range as the window stage defines it (width at least 1)."""
    if scan.window_presets:
        return float(scan.window_presets[0].center), float(scan.window_presets[0].width)
    center, width = own_window(float(rescaled.min()), float(rescaled.max()))
    return center, max(1.0, width)


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
