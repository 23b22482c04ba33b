"""The five compute stages as one call: what they need besides the pixels (:class:`PreprocessSpec`), and the
stage runner every caller shares (:func:`preprocess`): serving, training, the benchmark and the comparison."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from radbench.inference.backends.contract import FULL_SIZE_STAGES, Cancel, Stages, stop_if
from radbench.inference.timing import StageClock

if TYPE_CHECKING:
    from radbench.inference.model import ModelCard
    from radbench.inference.scan import Scan

#: The steps a what-if run may leave out (``radbench predict --skip``), in pipeline order: the file's window (the
#: image's own range instead), histogram equalization, and the MONOCHROME1 inversion.
SKIPPABLE = ("window", "equalize", "invert")

#: Called after a stage with its name and output; the output may be overwritten by the next stage (copy to keep it).
Observer = Callable[[str, np.ndarray], None]


@dataclass(frozen=True)
class PreprocessSpec:
    """The scan's modality LUT, window and inversion, and the model input's size, normalization and equalization."""

    slope: float
    intercept: float
    window_center: float | None  # both None: the image's own range
    window_width: float | None
    invert: bool  # MONOCHROME1
    size: tuple[int, int]  # (height, width)
    mean: Sequence[float]  # 1 value or one per channel
    std: Sequence[float]
    channels: int
    equalize: bool = True

    @classmethod
    def from_card(cls, card: ModelCard, scan: Scan) -> PreprocessSpec:
        """What the model described by ``card`` needs from ``scan``'s frames."""
        return cls.for_scan(scan, size=(card.input_height, card.input_width), mean=card.mean, std=card.std,
                            channels=card.input_channels, equalize=card.equalize)

    @classmethod
    def for_scan(cls, scan: Scan, *, size: tuple[int, int], mean: Sequence[float], std: Sequence[float],
                 channels: int, equalize: bool = True) -> PreprocessSpec:
        """``scan``'s modality LUT, its first window preset (none: the image's own range) and inversion, with the
        model input given (training builds its inputs so, without a model card)."""
        preset = scan.window_presets[0] if scan.window_presets else None
        return cls(scan.rescale_slope, scan.rescale_intercept, preset.center if preset else None,
                   preset.width if preset else None, scan.inverted, size, mean, std, channels, equalize)

    def without(self, skip: Collection[str]) -> PreprocessSpec:
        """This spec with the steps named in ``skip`` (of :data:`SKIPPABLE`) left out; ``ValueError`` for others.

        The stages stay the same for every backend: a skipped window is the window stage by the image's own range, a
        skipped inversion is the window stage without it, a skipped equalize is no equalize stage.
        """
        unknown = set(skip) - set(SKIPPABLE)
        if unknown:
            raise ValueError(f"cannot skip {', '.join(sorted(unknown))}; choose from {', '.join(SKIPPABLE)}")
        spec = self
        if "window" in skip:
            spec = replace(spec, window_center=None, window_width=None)
        if "equalize" in skip:
            spec = replace(spec, equalize=False)
        if "invert" in skip:
            spec = replace(spec, invert=False)
        return spec

    def stage_arguments(self) -> tuple[tuple[str, tuple], ...]:
        """``(stage, arguments after the image)`` in pipeline order; equalize only when the spec asks for it."""
        return (("rescale", (self.slope, self.intercept)),
                ("window", (self.window_center, self.window_width, self.invert)),
                *((("equalize", ()),) if self.equalize else ()),
                ("resize", self.size),
                ("normalize", (self.mean, self.std, self.channels)))


def preprocess(image: np.ndarray, spec: PreprocessSpec, backend: Stages, *, clock: StageClock | None = None,
               cancel: Cancel = None, observe: Observer | None = None) -> np.ndarray:
    """The compute stages of ``backend`` on one 2-D frame: the model input ``(1, channels, *size)`` float32.

    The full-size stages write one after another into one float32 buffer (``out``, allocated outside the stage
    times and kept for the calling thread's next frame of the same size), so a run holds the frame and one float32
    frame. ``cancel`` is checked before each stage
    (:class:`inference.errors.Cancelled`) and handed to it; a ``clock`` times each stage around its call only, so a
    JIT backend must be warmed up before. Training calls this same function, so training and serving cannot drift
    apart. ``observe`` sees each stage's output after its time is taken (:mod:`inference.inspection`).
    """
    buffer = {"out": _full_size_buffer(np.shape(image))} if np.ndim(image) == 2 else {}
    for name, arguments in spec.stage_arguments():
        stop_if(cancel)
        function = getattr(backend, name)
        extra = buffer if name in FULL_SIZE_STAGES else {}
        with clock.stage(name) if clock is not None else nullcontext():
            result = function(image, *arguments, **extra, cancel=cancel)
        if observe is not None:
            observe(name, result)
        image = result  # the previous stage's output is freed here, outside the stage's time
    return image


_workspace = threading.local()


def _full_size_buffer(shape: tuple[int, ...]) -> np.ndarray:
    """The calling thread's float32 buffer of ``shape``, kept from its previous run when the shape is the same.

    A new 14 MB buffer is zeroed by the kernel page by page as the first stage writes it: 1-2 ms, as long as a
    whole Numba stage. A batch of same-size films and the benchmark's repeats pay that once. The returned model
    input never aliases the buffer (normalize writes a new array), so reuse cannot change a result.
    """
    buffer = getattr(_workspace, "buffer", None)
    if buffer is None or buffer.shape != shape:
        _workspace.buffer = None  # the old buffer is freed before the new one is made
        buffer = _workspace.buffer = np.empty(shape, dtype=np.float32)
    return buffer
