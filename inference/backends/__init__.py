"""The three preprocessing backends, registered in one place and selected by name.

Every backend module defines the same five stage functions with the same signatures:

``rescale(pixels, slope, intercept, *, cancel=None) -> float32 (H, W)``
    Modality LUT: ``float64(x) * slope + intercept``, stored as float32. ``pixels`` is 2-D, any real dtype.
``window(image, center, width, invert, *, cancel=None) -> float32 (H, W) in [0, 1]``
    DICOM linear VOI function (PS3.3 C.11.2.1.2.1), computed in float64::

        x <= c - 0.5 - (w - 1) / 2  ->  0
        x >  c - 0.5 + (w - 1) / 2  ->  1
        otherwise                   ->  (x - (c - 0.5)) / (w - 1) + 0.5

    ``center``/``width`` ``None`` means "the image's own range": ``lo, hi = min, max``,
    ``c = (lo + hi + 1) / 2``, ``w = hi - lo + 1`` (so ``y = (x - lo) / (hi - lo)``).
    ``width < 1`` raises ``BackendError``. ``invert`` (MONOCHROME1) returns ``1 - y``.
``equalize(image, *, cancel=None) -> float32 (H, W) in [0, 1]``
    Global 256-bin histogram equalization, the algorithm of ``skimage.exposure.equalize_hist``:
    ``lo, hi = min, max`` (if equal: ``lo -= 0.5; hi += 0.5``, NumPy's rule); ``scale = 256 / (hi - lo)``;
    bin ``min(int((x - lo) * scale), 255)``; ``cdf = cumsum(hist) / N`` (float64); output is the cdf
    linearly interpolated at bin centres: ``t = (x - lo) * scale - 0.5``; ``t <= 0 -> cdf[0]``,
    ``t >= 255 -> cdf[255]``, else ``cdf[k] + (t - k) * (cdf[k + 1] - cdf[k])`` with ``k = int(t)``.
``resize(image, height, width, *, cancel=None) -> float32 (height, width)``
    Separable, first along rows then along columns, float64 accumulation, per-axis weights from
    :func:`inference.backends.resample.axis_weights`: exact area averaging when shrinking, bilinear
    (half-pixel centres, edge clamped) when enlarging, identity when equal.
``normalize(image, mean, std, channels, *, cancel=None) -> float32 (1, channels, H, W)``
    ``(x - mean[c]) / std[c]`` in float64 per channel; ``mean``/``std`` hold 1 or ``channels`` values;
    a grey image is replicated into every channel.

Every stage refuses an image holding NaN or infinity with one ``BackendError``, "<stage> refused: the image has
N non-finite pixel values (NaN or infinity)", before any kernel runs (:func:`inference.backends.checks.check_image`).
Rescale may itself make infinity (values beyond float32) or NaN (an infinite slope times 0); the next stage refuses it.

``cancel`` is a zero-argument callable; when it returns True a stage that can stop mid-way raises
:class:`inference.errors.Cancelled`. The naive backend checks it between rows; the others run too
briefly to need it (the pipeline checks between stages). Kernels carry no timing code: the pipeline
times around the calls. A backend that cannot run raises :class:`BackendError`; nothing ever falls
back silently to another backend.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from radbench.inference.errors import BackendError

#: The compute stages, in pipeline order.
STAGES = ("rescale", "window", "equalize", "resize", "normalize")

#: name -> (module, one-line description). The only place backends are registered.
_REGISTRY = {
    "naive": ("radbench.inference.backends.naive", "plain Python loops over pixels"),
    "vectorized": ("radbench.inference.backends.vectorized", "whole-array NumPy"),
    "numba": ("radbench.inference.backends.numba_jit", "Numba @njit kernels, compiled on first use"),
}

BACKEND_NAMES = tuple(_REGISTRY)


@dataclass
class Backend:
    """One backend: its five stage functions, and (for JIT backends) which input dtypes are compiled."""

    name: str
    description: str
    rescale: Callable[..., np.ndarray]
    window: Callable[..., np.ndarray]
    equalize: Callable[..., np.ndarray]
    resize: Callable[..., np.ndarray]
    normalize: Callable[..., np.ndarray]
    compiles: bool = False
    _warm_dtypes: set[np.dtype] = field(default_factory=set, repr=False)

    def stage(self, name: str) -> Callable[..., np.ndarray]:
        return getattr(self, name)

    def is_warm(self, dtype: np.dtype) -> bool:
        return not self.compiles or np.dtype(dtype) in self._warm_dtypes

    def warm_up(self, dtype: np.dtype) -> float:
        """Compile (or load from cache) every kernel for ``dtype`` input; return the seconds it took.

        Runs the five stages on a tiny image, so the real run that follows measures only run time.
        Backends that do not compile return 0 without running anything.
        """
        dtype = np.dtype(dtype)
        if self.is_warm(dtype):
            return 0.0
        start = time.perf_counter_ns()
        tiny = np.arange(6, dtype=dtype).reshape(2, 3)
        self.rescale(tiny, 1.0, 0.0)
        tiny.flags.writeable = False  # frames of loaded scans are read-only, which Numba compiles apart
        image = self.rescale(tiny, 1.0, 0.0)
        image = self.window(image, None, None, False)
        image = self.equalize(image)
        for shape in ((1, 2), (4, 5)):  # shrink and enlarge
            self.resize(image, *shape)
        self.normalize(image, (0.5,), (0.25,), 1)
        self._warm_dtypes.add(dtype)
        return (time.perf_counter_ns() - start) / 1e9


_loaded: dict[str, Backend] = {}


def get_backend(name: str) -> Backend:
    """The backend called ``name``; ``BackendError`` naming the choices if there is none."""
    if name not in _REGISTRY:
        raise BackendError(f"no backend named {name!r}; choose one of {', '.join(BACKEND_NAMES)}")
    if name not in _loaded:
        module_name, description = _REGISTRY[name]
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise BackendError(f"backend {name!r} cannot run here: {exc}") from exc
        _loaded[name] = Backend(
            name=name,
            description=description,
            compiles=getattr(module, "COMPILES", False),
            **{stage: getattr(module, stage) for stage in STAGES},
        )
    return _loaded[name]
