"""The statistics every timing result is reported with: median, p90 and min milliseconds over the timed repeats."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Record:
    """Statistics of one (file, backend, stage) over its timed repeats, in milliseconds."""

    file: str
    backend: str
    stage: str
    median_ms: float
    p90_ms: float
    min_ms: float
    repeats: int

    @classmethod
    def of(cls, file: str, backend: str, stage: str, samples_ms: Sequence[float]) -> Record:
        values = np.asarray(samples_ms, dtype=np.float64)
        return cls(file, backend, stage, float(np.median(values)), float(np.percentile(values, 90)),
                   float(values.min()), len(values))
