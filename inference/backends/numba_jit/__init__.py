"""The Numba backend: the five stages as ``@njit`` kernels (:mod:`.stages`), and the whole pipeline fused into two
passes over the frame (:mod:`.fused`), both computing through the same scalar functions (:mod:`.scalars`) on
inputs prepared one way (:mod:`.inputs`). Kernels are compiled on first use and cached on disk (``cache=True``).
"""

from radbench.inference.backends.numba_jit.fused import fused_preprocess
from radbench.inference.backends.numba_jit.inputs import all_finite
from radbench.inference.backends.numba_jit.stages import equalize, normalize, rescale, resize, window

COMPILES = True


def kernels(*, fused: bool = False) -> dict[str, object]:
    """The Numba dispatchers of the stages (with ``fused``, also of the fused path) by qualified name: compile and
    cache statistics, tests."""
    from numba.core.dispatcher import Dispatcher

    from radbench.inference.backends.numba_jit import fused as fused_module
    from radbench.inference.backends.numba_jit import inputs, stages

    modules = (stages, inputs, fused_module) if fused else (stages, inputs)
    return {f"{module.__name__}.{name}": obj for module in modules
            for name, obj in vars(module).items() if isinstance(obj, Dispatcher) and obj.__module__ == module.__name__}


__all__ = ["COMPILES", "all_finite", "equalize", "fused_preprocess", "kernels", "normalize", "rescale", "resize",
           "window"]
