"""The per-pixel arithmetic of the Numba backend, as ``inline="always"`` functions.

The staged kernels (:mod:`.stages`) and the fused path (:mod:`.fused`) both compute through these, so the
same value takes the same float64 operations in the same order in both: their results agree bit for bit by
construction. See :mod:`inference.backends.contract` for what each stage computes.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic


@njit(cache=True, inline="always")
def rescaled(x, slope, intercept):
    """The modality LUT of one raw value, stored as float32."""
    return np.float32(np.float64(x) * slope + intercept)


@intrinsic
def _fma(typingctx, a, b, c):
    """``a * b + c`` with one rounding (LLVM's ``llvm.fma``: one instruction where the CPU has FMA)."""
    def codegen(context, builder, signature, args):
        double = ir.DoubleType()
        function = builder.module.declare_intrinsic("llvm.fma", [double], ir.FunctionType(double, [double] * 3))
        return builder.call(function, args)
    return types.float64(types.float64, types.float64, types.float64), codegen


@njit(cache=True, inline="always")
def quotient(a, b):
    """``a / b`` in float64, correctly rounded, without a division per call: ``1 / b`` is loop-invariant (hoisted out
    of the kernels' loops), then one product and two fused multiply-adds.

    Markstein's theorem: with ``r`` the correctly rounded ``1 / b`` and ``q`` within one ulp of ``a / b``, the
    residual ``a - q * b`` is exact in one FMA, and ``q + residual * r`` is ``a / b`` correctly rounded, the very
    value of ``a / b``, unless that is subnormal (below 2.2e-308; :func:`windowed` then adds it to 0.5, which it
    cannot change). :func:`inference.backends.checks.voi` bounds the width so that ``1 / b`` is never subnormal.
    A float64 division occupies the divider for about 2 cycles per pixel even vectorized; this takes a fraction of
    that, and the window stage runs twice as fast.
    """
    reciprocal = 1.0 / b
    q = a * reciprocal
    return _fma(_fma(-q, b, a), reciprocal, q)


@njit(cache=True, inline="always")
def windowed(x, c0, w1, invert):
    """The linear VOI function of one value (``c0 = center - 0.5``, ``w1 = width - 1``), stored as float32."""
    x = np.float64(x)
    if x <= c0 - w1 / 2:
        y = 0.0
    elif x > c0 + w1 / 2:
        y = 1.0
    else:
        y = quotient(x - c0, w1) + 0.5
    return np.float32(1.0 - y if invert else y)


@njit(cache=True, inline="always")
def bin_index(v, lo, scale):
    """Equalize's histogram bin of ``v``, ``min(int((v - lo) * scale), 255)``, clamped to ``[0, 255]`` before the
    conversion (so that it vectorizes, and a value below ``lo``, or NaN, lands in bin 0, never outside the
    histogram: the comparisons are false for NaN)."""
    x = (np.float64(v) - lo) * scale
    x = x if x > 0.0 else 0.0
    return np.uint32(x if x < 255.0 else 255.0)


@njit(cache=True, inline="always")
def position(v, lo, scale):
    """Where ``v`` falls on the cdf's bin centres, ``(v - lo) * scale - 0.5``, held to ``[0, 255]``."""
    return min(max((np.float64(v) - lo) * scale - 0.5, 0.0), 255.0)


@njit(cache=True, inline="always")
def blend(base, fraction, slope):
    """One step of linear interpolation, ``base + fraction * slope``, stored as float32."""
    return np.float32(base + fraction * slope)


@njit(cache=True, inline="always")
def equalized(v, lo, scale, cdf, slopes):
    """The equalized value of ``v``: the cdf interpolated at :func:`position`; ``slopes[k] = cdf[k + 1] - cdf[k]``
    (0 after the last bin, so that the clamped ends land exactly on ``cdf[0]`` and ``cdf[255]``)."""
    t = position(v, lo, scale)
    k = np.floor(t)
    i = np.uint32(k)
    return blend(cdf[i], t - k, slopes[i])
