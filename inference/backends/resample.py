"""Per-axis resampling tables shared by every backend, so their resize stages agree.

Output sample ``i`` of an axis is ``sum(weights[i, k] * input[starts[i] + k] for k in range(taps))``.
Every index ``starts[i] + k`` lies inside the axis, so backends need no bounds checks: padding taps carry
weight 0, and near the far edge a row's taps start early (its first weights are then 0).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from radbench.inference.errors import BackendError


def axis_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """``(starts int64 [n_out], weights float64 [n_out, taps])`` resampling an axis of ``n_in`` to ``n_out``.

    Shrinking averages exact areas: output ``i`` covers ``[i * s, (i + 1) * s)`` with ``s = n_in / n_out``
    and input ``j`` weighs its overlap with that interval divided by ``s``. Enlarging is bilinear with
    half-pixel centres, clamped at the edges. Equal sizes give the identity. Read-only arrays, kept for the
    sizes last asked for (a batch or a benchmark asks for the same ones every frame).
    """
    if not (isinstance(n_in, (int, np.integer)) and isinstance(n_out, (int, np.integer))):
        raise BackendError(f"resize sizes must be integers, got {n_in!r} -> {n_out!r}")
    if n_in < 1 or n_out < 1:
        raise BackendError(f"resize sizes must be at least 1, got {n_in} -> {n_out}")
    return _kept_weights(int(n_in), int(n_out))


@lru_cache(maxsize=16)
def _kept_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    if n_out < n_in:
        tables = _area(n_in, n_out)
    elif n_out > n_in:
        tables = _bilinear(n_in, n_out)
    else:
        tables = np.arange(n_in, dtype=np.int64), np.ones((n_in, 1))
    for table in tables:
        table.flags.writeable = False
    return tables


def _area(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    # Interval ends are i * n_in / n_out (exact products, one rounding) rather than i * s, so neighbouring
    # outputs share a boundary and every row of weights sums to 1 up to rounding.
    bounds = np.arange(n_out + 1) * n_in / n_out
    lo, hi = bounds[:-1, None], bounds[1:, None]
    starts = np.floor(bounds[:-1]).astype(np.int64)
    taps = int(np.max(np.ceil(bounds[1:]) - starts))
    starts = np.minimum(starts, n_in - taps)  # keep padding taps inside the axis
    j = starts[:, None] + np.arange(taps)
    overlap = np.minimum(j + 1, hi) - np.maximum(j, lo)
    return starts, np.maximum(overlap, 0.0) * (n_out / n_in)


def _bilinear(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    if n_in == 1:  # every output is the one input
        return np.zeros(n_out, dtype=np.int64), np.ones((n_out, 1))
    src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0.0, n_in - 1.0)
    starts = np.minimum(src.astype(np.int64), n_in - 2)  # at the far edge: the pair (n - 2, n - 1), weights (0, 1)
    f = src - starts
    return starts, np.stack([1.0 - f, f], axis=1)


def axis_matrix(n_in: int, n_out: int) -> np.ndarray:
    """The same resampling as a dense ``(n_out, n_in)`` matrix: ``out = M_rows @ image @ M_cols.T``."""
    starts, weights = axis_weights(n_in, n_out)
    matrix = np.zeros((n_out, n_in))
    columns = starts[:, None] + np.arange(weights.shape[1])
    np.add.at(matrix, (np.arange(n_out)[:, None], columns), weights)
    return matrix
