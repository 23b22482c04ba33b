"""Compare backends on one scan: a warm-up run each, then repeats interleaved across backends, medians per stage.

Interleaving (naive, vectorized, numba, naive, ...) lets machine drift hit every backend alike. The scan is
decoded once by the caller, so the comparison times only the stages that differ between backends plus
inference and the heatmap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from inference.backends import BACKEND_NAMES, get_backend
from inference.errors import Cancelled
from inference.model import Model
from inference.pipeline import Pipeline, Prediction
from inference.scan import Scan

#: Largest max-abs difference between preprocessed tensors that still counts as "the same numbers".
TENSOR_TOLERANCE = 1e-4


@dataclass(frozen=True)
class BackendResult:
    backend: str
    median_ms: Mapping[str, float]  # per stage, in pipeline order
    repeats: int
    compile_ms: float  # Numba's first-use compile or cache load during the warm-up; 0 for the others
    last: Prediction  # the last timed run (label, probabilities, tensor, heatmap)

    @property
    def total_ms(self) -> float:
        return sum(self.median_ms.values())


@dataclass(frozen=True)
class Comparison:
    results: Mapping[str, BackendResult]
    max_abs_diff: float  # largest difference between any backend's preprocessed tensor and the first's
    labels_agree: bool

    @property
    def equivalent(self) -> bool:
        return self.labels_agree and self.max_abs_diff <= TENSOR_TOLERANCE


def compare_backends(model: Model, scan: Scan, *, frame: int | None = None, backends: Sequence[str] = BACKEND_NAMES,
                     repeats: int = 3, cancel: Callable[[], bool] | None = None,
                     progress: Callable[[int, int, str], None] | None = None) -> Comparison:
    """Run every backend once to warm up, then ``repeats`` interleaved rounds; medians of the timed rounds.

    ``progress(done, total, backend)`` is called before each run; ``cancel()`` returning True raises
    :class:`Cancelled` between and inside stages.
    """
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    pipelines = {name: Pipeline(model, get_backend(name)) for name in backends}
    total = len(pipelines) * (repeats + 1)
    runs: dict[str, list[Prediction]] = {name: [] for name in pipelines}
    compile_ms: dict[str, float] = {}
    done = 0
    for round_index in range(repeats + 1):
        for name, pipeline in pipelines.items():
            if cancel is not None and cancel():
                raise Cancelled()
            if progress is not None:
                progress(done, total, name)
            prediction = pipeline.run(scan, frame=frame, cancel=cancel)
            if round_index == 0:
                compile_ms[name] = prediction.compile_ms
            else:
                runs[name].append(prediction)
            done += 1
    if progress is not None:
        progress(done, total, "")
    results = {name: BackendResult(name, _medians(preds), repeats, compile_ms[name], preds[-1])
               for name, preds in runs.items()}
    lasts = [r.last for r in results.values()]
    return Comparison(
        results=MappingProxyType(results),
        max_abs_diff=max(float(np.abs(p.tensor - lasts[0].tensor).max()) for p in lasts),
        labels_agree=len({p.label for p in lasts}) == 1,
    )


def _medians(predictions: list[Prediction]) -> Mapping[str, float]:
    stages = [name for name, _ in predictions[0].timings.stages]
    return MappingProxyType({s: float(np.median([p.timings.ms(s) for p in predictions])) for s in stages})
