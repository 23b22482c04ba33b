"""The two rules that turn an image's value range into a stage's parameters, defined once for every implementation.

Plain float64 arithmetic: the backends, the fused Numba path, the library reference and display windowing all
call these, so their numbers cannot drift apart.
"""

from __future__ import annotations


def own_window(lo: float, hi: float) -> tuple[float, float]:
    """``(center, width)`` of the window spanning the image's own range ``[lo, hi]``: ``y = (x - lo) / (hi - lo)``."""
    return (lo + hi + 1) / 2, hi - lo + 1


def equalization_bins(lo: float, hi: float) -> tuple[float, float]:
    """``(lo, scale)`` of equalize's 256 bins over ``[lo, hi]`` (bin ``min(int((x - lo) * scale), 255)``).

    A flat image (``lo == hi``) is widened to ``[lo - 0.5, hi + 0.5]``, NumPy's rule for a histogram's range.
    """
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    return lo, 256.0 / (hi - lo)
