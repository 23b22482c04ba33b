"""The three preprocessing backends, registered in one place, checked against the contract
(:mod:`inference.backends.contract`) when first loaded, and selected by name."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from radbench.inference.backends.contract import STAGES, contract_problems
from radbench.inference.errors import BackendError

if TYPE_CHECKING:
    from radbench.inference.preprocessing import PreprocessSpec

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
    #: (dtype, fused, equalize compiled, the image's extremes compiled) of each warm-up done
    _warm_dtypes: set[tuple[np.dtype, bool, bool, bool]] = field(default_factory=set, repr=False)

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

    def is_warm(self, dtype: np.dtype, *, fused: bool = False, spec: PreprocessSpec | None = None) -> bool:
        """Whether a run on ``dtype`` frames needs no compile: with ``spec``, a run of that preprocessing; without,
        a run of any."""
        dtype, needs = np.dtype(dtype), _needs(spec, fused)
        return not self.compiles or any(d == dtype and f == fused and all(h >= n for h, n in zip(has, needs))
                                        for d, f, *has in self._warm_dtypes)

    def warm_up(self, dtype: np.dtype, *, fused: bool = False, spec: PreprocessSpec | None = None) -> float:
        """Compile (or load from Numba's on-disk cache) what a run on ``dtype`` frames needs, and return the seconds
        it took: the stage kernels (with ``fused``: the whole-pipeline entry's instead) that ``spec``'s stages call,
        or without ``spec`` those of every stage (the window by a preset and by the image's own range, equalize).

        Nothing else: kernels are typed by the raw dtype only in rescale (every later stage reads rescale's float32),
        so a further dtype compiles one kernel, and a run's first warm-up only what it calls. Runs the stages (or the
        fused path) on a tiny image, so the real run that follows measures only run time. Backends that do not
        compile return 0 without running anything.
        """
        from radbench.inference.preprocessing import PreprocessSpec  # here: preprocessing imports backends

        dtype = np.dtype(dtype)
        if self.is_warm(dtype, fused=fused, spec=spec):
            return 0.0
        if fused and self.fused is None:
            raise BackendError(f"backend {self.name!r} has no fused path")
        equalize = _needs(spec, fused)[0]
        start = time.perf_counter_ns()
        tiny = np.arange(6, dtype=dtype).reshape(2, 3)
        tiny.flags.writeable = False  # as a scan's frame is
        windows = ((None, None), (1.0, 1.0)) if spec is None else ((None, None) if spec.window_center is None else
                                                                    (1.0, 1.0),)
        for center, width in windows:  # by the image's own range, by a preset
            tiny_spec = PreprocessSpec(1.0, 0.0, center, width, True, (1, 2), (0.5,), (0.25,), 1, equalize)
            if fused:
                self.fused(tiny, tiny_spec)
            else:
                self._tiny_run(tiny, tiny_spec)
        self._warm_dtypes.add((dtype, fused, *_needs(spec, fused)))
        return (time.perf_counter_ns() - start) / 1e9

    def _tiny_run(self, tiny: np.ndarray, spec: PreprocessSpec) -> None:
        from radbench.inference.preprocessing import preprocess

        preprocess(tiny, spec, self)


def _needs(spec: PreprocessSpec | None, fused: bool) -> tuple[bool, bool]:
    """Whether a run of ``spec`` (None: of any preprocessing) calls equalize (the fused path always does), and whether
    it needs the image's extremes (equalize does, and a window by the image's own range)."""
    equalize = fused or spec is None or spec.equalize
    return equalize, equalize or spec.window_center is None


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


def stage_source(name: str, stage: str) -> str:
    """The source code of backend ``name``'s ``stage`` function as installed, followed by the helpers it calls that
    belong to the backend (its private functions and its Numba kernels, and theirs in turn), each once: what a
    reader needs to see how that backend computes the stage. ``BackendError`` for an unknown backend, ``KeyError``
    for an unknown stage."""
    import inspect

    if stage not in STAGES:
        raise KeyError(f"no stage named {stage!r}; the stages are {', '.join(STAGES)}")
    package = _REGISTRY[get_backend(name).name][0]
    pending, seen, parts = [getattr(get_backend(name), stage)], set(), []
    while pending:
        function = pending.pop(0)
        # a Numba dispatcher's Python function, a Numba intrinsic's (its code generator), a kept (lru_cache) function's
        plain = next((getattr(function, attribute) for attribute in ("py_func", "_defn", "__wrapped__")
                      if hasattr(function, attribute)), function)
        if plain in seen:
            continue
        seen.add(plain)
        parts.append(inspect.getsource(plain).rstrip())
        for called in plain.__code__.co_names:
            helper = plain.__globals__.get(called)
            module = getattr(helper, "__module__", "") or ""
            if callable(helper) and module.startswith(package) and (called.startswith("_") or hasattr(helper,
                                                                                                       "py_func")):
                pending.append(helper)
    return "\n\n\n".join(parts) + "\n"
