"""The one type every loader returns: pixels plus what the pipeline and the viewer need to know."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType

import numpy as np

from radbench.inference.wording import counted

#: ITU-R BT.601 luma weights, used to turn RGB into grey for a grey model: Y = 0.299 R + 0.587 G + 0.114 B.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
_LUMA_BAND_VALUES = 2**17  # pixels per band of rows in grey_frame: 1 MiB per float64 temporary


@dataclass(frozen=True)
class WindowPreset:
    """A VOI window (DICOM WindowCenter / WindowWidth), in rescaled units."""

    center: float
    width: float
    name: str = ""


@dataclass(frozen=True)
class Scan:
    """A decoded scan.

    ``pixels`` always has a leading frame axis: ``(frames, rows, cols)`` for grey data and
    ``(frames, rows, cols, 3)`` for colour, in the decoder's native dtype (no copies, read-only).
    The stored values are raw: no modality LUT, no MONOCHROME1 inversion (``inverted`` says whether
    the display and the window stage must flip them, which they each do exactly once).

    Patient-identifying values live only in ``identifiers`` (kept out of ``repr``); ``metadata`` holds
    display fields that identify nobody, so code that prints or exports ``metadata`` leaks nothing.
    """

    path: Path
    pixels: np.ndarray
    photometric: str
    source_format: str  # "DICOM", "PNG", "JPEG", "TIFF", ...
    decoder: str  # which plugin decoded the pixels, e.g. "gdcm", "pylibjpeg", "pydicom", "Pillow"
    decoder_threads: int = 1  # the threads the decoder ran on
    #: Asked for a reduced JPEG 2000 decode (batch --fast-decode): "1/8" when the frame holds the stored image reduced
    #: 8 times along each side, "no: <why>" when it was decoded in full; "" when not asked.
    fast_decode: str = ""
    rescale_slope: float = 1.0
    rescale_intercept: float = 0.0
    window_presets: tuple[WindowPreset, ...] = ()
    modality: str = ""
    body_part: str = ""
    pixel_spacing: tuple[float, float] | None = None
    transfer_syntax: str = ""
    bits_allocated: int = 0
    bits_stored: int = 0
    metadata: Mapping[str, str] = field(default_factory=dict)
    identifiers: Mapping[str, str] = field(default_factory=dict, repr=False)
    warnings: tuple[str, ...] = ()  # what the loader noticed and worked around, e.g. excess frames ignored

    def __post_init__(self) -> None:
        if self.pixels.ndim not in (3, 4):
            raise ValueError(f"pixels must be (frames, rows, cols[, 3]), got shape {self.pixels.shape}")
        self.pixels.flags.writeable = False
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))
        object.__setattr__(self, "identifiers", MappingProxyType(dict(self.identifiers)))

    def __reduce__(self):  # picklable (read-only mappings as dicts): scans come back from loader processes
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(metadata=dict(self.metadata), identifiers=dict(self.identifiers))
        return _scan_from_fields, (values,)

    @property
    def frame_count(self) -> int:
        return self.pixels.shape[0]

    @property
    def rows(self) -> int:
        return self.pixels.shape[1]

    @property
    def columns(self) -> int:
        return self.pixels.shape[2]

    @property
    def is_color(self) -> bool:
        return self.pixels.ndim == 4

    @property
    def inverted(self) -> bool:
        """True for MONOCHROME1, where low values are bright: windowing flips them once."""
        return self.photometric == "MONOCHROME1"

    @property
    def default_frame(self) -> int:
        """The frame shown and classified when none is asked for: the middle one."""
        return self.frame_count // 2

    def frame_index(self, frame: int | None) -> int:
        """Validate a user's frame index (``None`` means the default); negative counts from the end."""
        if frame is None:
            return self.default_frame
        if not -self.frame_count <= frame < self.frame_count:
            raise IndexError(f"frame index {frame} out of range: the scan has {counted(self.frame_count, 'frame')} "
                             f"(indices 0 to {self.frame_count - 1}, counted from 0; -1 is the last)")
        return frame % self.frame_count

    def grey_frame(self, frame: int | None = None) -> np.ndarray:
        """One frame as a 2-D array: a view in the native dtype for grey data, BT.601 luma (float32) for colour.

        The luma is computed in float64 and rounded to float32 a band of rows at a time, so its temporaries stay
        near a MiB instead of four float64 frames (8 times an RGB frame of bytes); the values are the same.
        """
        data = self.pixels[self.frame_index(frame)]
        if not self.is_color:
            return data
        r, g, b = LUMA_WEIGHTS
        grey = np.empty(data.shape[:2], dtype=np.float32)
        step = max(1, _LUMA_BAND_VALUES // max(1, data.shape[1]))
        for top in range(0, data.shape[0], step):
            band = data[top:top + step]
            grey[top:top + step] = r * band[..., 0] + g * band[..., 1] + b * band[..., 2]
        return grey


def _scan_from_fields(values: dict) -> Scan:
    return Scan(**values)
