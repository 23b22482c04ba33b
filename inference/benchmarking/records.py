"""The statistics every timing result is reported with: median, p10, p90 and min milliseconds over the timed repeats,
and the repeats themselves (for a spread drawn from them, e.g. ``radbench bench --plot``'s whiskers)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Record:
    """Statistics of one (file, backend, stage) over its timed repeats, in milliseconds."""

    file: str
    backend: str
    stage: str
    median_ms: float
    p10_ms: float
    p90_ms: float
    min_ms: float
    repeats: int
    samples_ms: tuple[float, ...] = field(default=(), repr=False)  # each timed repeat, in the order run

    @classmethod
    def of(cls, file: str, backend: str, stage: str, samples_ms: Sequence[float]) -> Record:
        values = np.asarray(samples_ms, dtype=np.float64)
        return cls(file, backend, stage, float(np.median(values)), float(np.percentile(values, 10)),
                   float(np.percentile(values, 90)), float(values.min()), len(values),
                   tuple(float(v) for v in values))

    def overlaps(self, other: Record) -> bool:
        return bands_overlap(self, other)


def bands_overlap(one, other) -> bool:
    """Whether two timings' p10-p90 bands (``p10_ms``, ``p90_ms``) overlap: the two are then "about the same",
    whatever their medians say (a :class:`Record` or a :class:`.compare.Spread`)."""
    return one.p10_ms <= other.p90_ms and other.p10_ms <= one.p90_ms
