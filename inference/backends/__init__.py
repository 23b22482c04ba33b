"""The three preprocessing backends, registered in one place, checked against the contract
(:mod:`inference.backends.contract`) when first loaded, and selected by name."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from radbench.inference.backends.contract import STAGES, contract_problems
from radbench.inference.errors import BackendError

#: name -> (module, one-line description). The only place backends are registered.
_REGISTRY = {
    "naive": ("radbench.inference.backends.naive", "plain Python loops over pixels"),
    "vectorized": ("radbench.inference.backends.vectorized", "whole-array NumPy"),
    "numba": ("radbench.inference.backends.numba_jit", "Numba @njit kernels, compiled on first use"),
}

BACKEND_NAMES = tuple(_REGISTRY)


@dataclass
class Backend:
    """One backend: its five stage functions (a :class:`~inference.backends.contract.Stages`), optionally the whole
    pipeline as one call (``fused(pixels, spec)``, the same numbers without the stages' full-size images), and (for
    JIT backends) which input dtypes are compiled. ``BackendError`` if the functions break the contract."""

    name: str
    description: str
    rescale: Callable[..., np.ndarray]
    window: Callable[..., np.ndarray]
    equalize: Callable[..., np.ndarray]
    resize: Callable[..., np.ndarray]
    normalize: Callable[..., np.ndarray]
    compiles: bool = False
    fused: Callable[..., np.ndarray] | None = None
    _warm_dtypes: set[tuple[np.dtype, bool]] = field(default_factory=set, repr=False)

    def __post_init__(self) -> None:
        problems = contract_problems(self)
        if problems:
            raise BackendError(f"backend {self.name!r} breaks the stage contract: {'; '.join(problems)}")

    @classmethod
    def from_module(cls, name: str, description: str, module: object) -> Backend:
        """The stage functions a backend module defines (``COMPILES = True`` for a JIT backend), checked."""
        return cls(name=name, description=description, compiles=getattr(module, "COMPILES", False),
                   fused=getattr(module, "fused_preprocess", None),
                   **{stage: getattr(module, stage, None) for stage in STAGES})

    def is_warm(self, dtype: np.dtype, *, fused: bool = False) -> bool:
        return not self.compiles or (np.dtype(dtype), fused) in self._warm_dtypes

    def warm_up(self, dtype: np.dtype, *, fused: bool = False) -> float:
        """Compile (or load from cache) every stage kernel for ``dtype`` input, and with ``fused`` the whole-pipeline
        entry's too; return the seconds it took.

        Runs the stages (or the fused path) on a tiny image, so the real run that follows measures only run time.
        The fused path compiles only when asked (about a third more compile time). Backends that do not compile
        return 0 without running anything.
        """
        from radbench.inference.preprocessing import PreprocessSpec, preprocess  # here: preprocessing imports backends

        dtype = np.dtype(dtype)
        if self.is_warm(dtype, fused=fused):
            return 0.0
        if fused and self.fused is None:
            raise BackendError(f"backend {self.name!r} has no fused path")
        start = time.perf_counter_ns()
        tiny = np.arange(6, dtype=dtype).reshape(2, 3)
        for shape in ((1, 2), (4, 5)):  # shrink and enlarge
            spec = PreprocessSpec(1.0, 0.0, None, None, False, shape, (0.5,), (0.25,), 1)
            if fused:
                self.fused(tiny, spec)
            else:
                preprocess(tiny, spec, self)
        if not fused:  # windows straight on the raw values: a preset with inversion, and their own range
            self.window(tiny, 1.0, 1.0, True)
            self.window(tiny, None, None, False)
        self._warm_dtypes.add((dtype, fused))
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
        _loaded[name] = Backend.from_module(name, description, module)
    return _loaded[name]
