"""What a backend is: five stage functions with fixed signatures and meaning (:class:`Stages`), and how they cancel.

Every stage refuses an image holding NaN or infinity with one ``BackendError``, "<stage> refused: the image has
N non-finite pixel values (NaN or infinity)", before it writes any output
(:func:`inference.backends.checks.check_image`; the Numba backend checks in a pass it makes anyway where it can).
One exception: the Numba window with a window given checks in its one pass, so when it refuses, part of ``out``
may have been written (in place: part of the input); the count is still the input's.
Rescale may itself make infinity (values beyond float32) or NaN (an infinite slope times 0); the next stage refuses it.

The three full-size stages (rescale, window, equalize) take ``out``: a float32 C-contiguous array of the image's
shape, possibly the input image itself, into which the result is written and which is returned (``None``: a new
array; the benchmark's library reference, which keeps a user's float64 arrays, always returns its own). A stage
reads every input pixel it needs before it writes that pixel's output, so one buffer serves all three stages in
turn (:func:`inference.preprocessing.preprocess`): peak memory is the decoded frame plus one float32 frame.
:func:`inference.backends.checks.output` checks ``out``.

``cancel`` is a zero-argument callable; when it returns True a stage that can stop mid-way raises
:class:`inference.errors.Cancelled`. The naive backend checks it between rows; the others run too
briefly to need it (the pipeline checks between stages). Kernels carry no timing code: the pipeline
times around the calls. A backend that cannot run raises :class:`BackendError`; nothing ever falls
back silently to another backend.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from radbench.inference.errors import Cancelled

#: The compute stages, in pipeline order.
STAGES = ("rescale", "window", "equalize", "resize", "normalize")
#: The stages that take ``out`` (their output has the input's full size).
FULL_SIZE_STAGES = ("rescale", "window", "equalize")

Cancel = Callable[[], bool] | None


class Stages(Protocol):
    """The five stage functions; a backend module (or any object) holding them under these names keeps the contract."""

    def rescale(self, pixels: np.ndarray, slope: float, intercept: float, *, out: np.ndarray | None = None,
                cancel: Cancel = None) -> np.ndarray:
        """Modality LUT: ``float64(x) * slope + intercept``, stored as float32 ``(H, W)``. ``pixels`` is 2-D, any
        real dtype."""

    def window(self, image: np.ndarray, center: float | None, width: float | None, invert: bool, *,
               out: np.ndarray | None = None, cancel: Cancel = None) -> np.ndarray:
        """DICOM linear VOI function (PS3.3 C.11.2.1.2.1) onto float32 ``(H, W)`` in [0, 1], computed in float64::

            x <= c - 0.5 - (w - 1) / 2  ->  0
            x >  c - 0.5 + (w - 1) / 2  ->  1
            otherwise                   ->  (x - (c - 0.5)) / (w - 1) + 0.5

        ``center``/``width`` ``None`` means "the image's own range"
        (:func:`inference.backends.value_ranges.own_window`: ``y = (x - lo) / (hi - lo)``).
        ``width < 1`` raises ``BackendError``. ``invert`` (MONOCHROME1) returns ``1 - y``.
        """

    def equalize(self, image: np.ndarray, *, out: np.ndarray | None = None, cancel: Cancel = None) -> np.ndarray:
        """Global 256-bin histogram equalization onto float32 ``(H, W)`` in [0, 1], the algorithm of
        ``skimage.exposure.equalize_hist``: ``lo, scale`` from the image's min and max
        (:func:`inference.backends.value_ranges.equalization_bins`); bin ``min(int((x - lo) * scale), 255)``;
        ``cdf = cumsum(hist) / N`` (float64); output is the cdf linearly interpolated at bin centres:
        ``t = (x - lo) * scale - 0.5``; ``t <= 0 -> cdf[0]``, ``t >= 255 -> cdf[255]``, else
        ``cdf[k] + (t - k) * (cdf[k + 1] - cdf[k])`` with ``k = int(t)``.
        """

    def resize(self, image: np.ndarray, height: int, width: int, *, cancel: Cancel = None) -> np.ndarray:
        """To float32 ``(height, width)``: separable, first along rows then along columns, float64 accumulation,
        per-axis weights from :func:`inference.backends.resample.axis_weights`: exact area averaging when
        shrinking, bilinear (half-pixel centres, edge clamped) when enlarging, identity when equal.
        """

    def normalize(self, image: np.ndarray, mean: Sequence[float], std: Sequence[float], channels: int, *,
                  cancel: Cancel = None) -> np.ndarray:
        """``(x - mean[c]) / std[c]`` in float64 per channel, as float32 ``(1, channels, H, W)``; ``mean``/``std``
        hold 1 or ``channels`` values; a grey image is replicated into every channel.
        """


def stop_if(cancel: Cancel) -> None:
    """Raise :class:`Cancelled` when ``cancel()`` returns True."""
    if cancel is not None and cancel():
        raise Cancelled()


def contract_problems(backend: object) -> list[str]:
    """Why ``backend``'s stage functions do not match :class:`Stages`, one item per stage, in words; empty if they do.

    A stage must be callable with the contract's parameter names, kinds and defaults (annotations are not compared).
    """
    problems = []
    for stage in STAGES:
        function = getattr(backend, stage, None)
        expected = _plain(inspect.signature(getattr(Stages, stage)), drop_self=True)
        if not callable(function):
            problems.append(f"no {stage} function")
        elif _plain(inspect.signature(function)) != expected:
            problems.append(f"{stage} must take {expected}, not {_plain(inspect.signature(function))}")
    return problems


def _plain(signature: inspect.Signature, drop_self: bool = False) -> inspect.Signature:
    """``signature`` without annotations (and without its first parameter, ``self``, if asked)."""
    parameters = list(signature.parameters.values())[drop_self:]
    return inspect.Signature([p.replace(annotation=inspect.Parameter.empty) for p in parameters])
