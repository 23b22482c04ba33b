"""Compare backends on one scan (the desktop app's Compare all): full pipeline runs, interleaved, medians per stage.

Interleaving (naive, vectorized, numba, naive, ...) lets machine drift hit every backend alike. The scan is
decoded once by the caller, so the comparison times only the stages that differ between backends plus
inference and the heatmap.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from radbench.inference.backends import BACKEND_NAMES, get_backend
from radbench.inference.backends.contract import Cancel, stop_if
from radbench.inference.benchmarking.records import Record
from radbench.inference.benchmarking.schedule import run_order, schedule
from radbench.inference.model import Model
from radbench.inference.pipeline import Pipeline, Prediction
from radbench.inference.scan import Scan

#: Largest max-abs difference between preprocessed tensors that still counts as "the same numbers".
TENSOR_TOLERANCE = 1e-4


@dataclass(frozen=True)
class BackendResult:
    backend: str
    median_ms: Mapping[str, float]  # per stage, in pipeline order
    repeats: int
    compile_ms: float  # Numba's first-use compile or cache load during the warm-up; 0 for the others
    last: Prediction  # the last timed run (label, probabilities, tensor, heatmap)
    note: str = ""  # why it ran fewer repeats than asked, if it did

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
                     repeats: int = 3, cancel: Cancel = None,
                     progress: Callable[[int, int, str], None] | None = None) -> Comparison:
    """A warm-up run per backend, then ``repeats`` interleaved rounds; medians of the timed rounds.

    The schedule (naive capped on large frames) and the statistics are the benchmark's own
    (:mod:`.schedule`, :mod:`.records`). ``progress(done, total, backend)`` is called before each run;
    ``cancel()`` returning True raises :class:`Cancelled` between and inside stages.
    """
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    pipelines = {name: Pipeline(model, get_backend(name)) for name in backends}
    rows, cols = scan.pixels.shape[1:3]
    schedules = {name: schedule(name, rows * cols, repeats, warmup=1) for name in pipelines}
    order = run_order(schedules)
    runs: dict[str, list[Prediction]] = {name: [] for name in pipelines}
    compile_ms = dict.fromkeys(pipelines, 0.0)
    for done, run in enumerate(order):
        stop_if(cancel)
        if progress is not None:
            progress(done, len(order), run.backend)
        prediction = pipelines[run.backend].run(scan, frame=frame, cancel=cancel)
        compile_ms[run.backend] += prediction.compile_ms
        if not run.warmup:
            runs[run.backend].append(prediction)
    if progress is not None:
        progress(len(order), len(order), "")
    results = {name: BackendResult(name, _medians(str(scan.path), name, preds), len(preds), compile_ms[name],
                                   preds[-1], schedules[name].note)
               for name, preds in runs.items()}
    lasts = [r.last for r in results.values()]
    return Comparison(
        results=MappingProxyType(results),
        max_abs_diff=max(float(np.abs(p.tensor - lasts[0].tensor).max()) for p in lasts),
        labels_agree=len({p.label for p in lasts}) == 1,
    )


def _medians(file: str, backend: str, predictions: list[Prediction]) -> Mapping[str, float]:
    stages = [name for name, _ in predictions[0].timings.stages]
    return MappingProxyType({s: Record.of(file, backend, s, [p.timings.ms(s) for p in predictions]).median_ms
                             for s in stages})
