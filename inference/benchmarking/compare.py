"""Compare backends on one scan (the desktop app's Compare all): full pipeline runs, interleaved, with the spread.

Interleaving (naive, vectorized, numba, naive, ...) lets machine drift hit every backend alike. Each round also
decodes the file once: decode, infer and postprocess are the same code for every backend, so they are reported
once, as shared stages, pooled over every run, and never as a speedup. Each stage is summarised by its median and
its p10-p90 band; two backends whose bands overlap are "about the same" on that stage, whatever their medians say.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from radbench.inference.backends import BACKEND_NAMES, get_backend
from radbench.inference.backends.contract import STAGES, Cancel, stop_if
from radbench.inference.benchmarking.records import bands_overlap
from radbench.inference.benchmarking.schedule import run_order, schedule
from radbench.inference.loading import load_scan
from radbench.inference.machine import usable_cpus
from radbench.inference.model import Model
from radbench.inference.pipeline import Pipeline, Prediction
from radbench.inference.scan import Scan

#: Largest max-abs difference between preprocessed tensors that still counts as "the same numbers".
TENSOR_TOLERANCE = 1e-4
#: The same code for every backend: reported once, never as a speedup.
SHARED_STAGES = ("decode", "infer", "postprocess")
PREPROCESSING_TOTAL, END_TO_END_TOTAL = "preprocessing total", "end-to-end total"
WARMUPS = 1


@dataclass(frozen=True)
class Spread:
    """One stage's milliseconds over the timed repeats: the median and the p10-p90 band."""

    samples_ms: tuple[float, ...]

    @property
    def median_ms(self) -> float:
        return float(np.median(self.samples_ms))

    @property
    def p10_ms(self) -> float:
        return float(np.percentile(self.samples_ms, 10))

    @property
    def p90_ms(self) -> float:
        return float(np.percentile(self.samples_ms, 90))

    def overlaps(self, other: Spread) -> bool:
        return bands_overlap(self, other)


def speedup(baseline: Spread, mine: Spread) -> float | None:
    """``baseline`` median / ``mine`` median (above 1: faster), or None when the p10-p90 bands overlap."""
    return None if baseline.overlaps(mine) else baseline.median_ms / mine.median_ms


@dataclass(frozen=True)
class BackendResult:
    backend: str
    stages: Mapping[str, Spread]  # its own stages in pipeline order (no shared one), then the two totals
    last: Prediction  # the last timed run (label, probabilities, tensor, heatmap)
    note: str = ""  # why it ran fewer repeats than asked, if it did

    @property
    def repeats(self) -> int:
        return len(self.stages[END_TO_END_TOTAL].samples_ms)


@dataclass(frozen=True)
class Comparison:
    results: Mapping[str, BackendResult]
    shared: Mapping[str, Spread]  # decode (once per round), infer and postprocess (every backend's runs pooled)
    repeats: int  # timed rounds asked for (naive may have run fewer: its note says so)
    warmups: int
    max_abs_diff: float  # largest difference between any backend's preprocessed tensor and the first's
    labels_agree: bool
    load_average: float  # of the last minute, read as the comparison ended
    usable_cpus: int

    @property
    def equivalent(self) -> bool:
        return self.labels_agree and self.max_abs_diff <= TENSOR_TOLERANCE

    @property
    def path(self) -> Path:
        return next(iter(self.results.values())).last.path

    @property
    def frame(self) -> int:
        return next(iter(self.results.values())).last.frame

    @property
    def frame_count(self) -> int:
        return next(iter(self.results.values())).last.frame_count

    def slower(self, backend: str = "numba", than: str = "vectorized") -> list[str]:
        """The stages (totals included) on which ``backend``'s whole p10-p90 band lies above ``than``'s."""
        if backend not in self.results or than not in self.results:
            return []
        mine, theirs = self.results[backend].stages, self.results[than].stages
        return [s for s in mine if s in theirs and mine[s].p10_ms > theirs[s].p90_ms]

    def likely_cause(self) -> str:
        """Why a parallel backend may have lost, as far as it can be detected: other processes busy on the cores,
        read from the load average (this comparison's own thread counts for one)."""
        others = self.load_average - 1
        load = (f"load average {self.load_average:.1f} over the last minute on {self.usable_cpus} usable cores, this "
                "comparison counting for 1")
        if others >= 0.5:
            return (f"other processes kept about {others:.1f} cores busy ({load}); Numba's kernels run only on the "
                    "cores others leave free at the moment each starts, so a process that starts mid-stage still "
                    "slows them.")
        return f"none detected: no other process was busy ({load})."


def compare_backends(model: Model, scan: Scan, *, frame: int | None = None, backends: Sequence[str] = BACKEND_NAMES,
                     repeats: int = 3, cancel: Cancel = None,
                     progress: Callable[[int, int, str], None] | None = None) -> Comparison:
    """A warm-up run per backend, then ``repeats`` interleaved rounds, each decoding the file once.

    The schedule (naive capped on large frames) is the benchmark's own (:mod:`.schedule`). ``progress(done, total,
    backend)`` is called before each run; ``cancel()`` returning True raises :class:`Cancelled` between and inside
    stages.
    """
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    pipelines = {name: Pipeline(model, get_backend(name)) for name in backends}
    rows, cols = scan.pixels.shape[1:3]
    schedules = {name: schedule(name, rows * cols, repeats, warmup=WARMUPS) for name in pipelines}
    order = run_order(schedules)
    runs: dict[str, list[tuple[Prediction, float]]] = {name: [] for name in pipelines}
    decoded: dict[int, float] = {}
    for done, run in enumerate(order):
        stop_if(cancel)
        if progress is not None:
            progress(done, len(order), run.backend)
        if not run.warmup and run.round not in decoded:
            decoded[run.round] = _decode_ms(scan.path)
        prediction = pipelines[run.backend].run(scan, frame=frame, cancel=cancel)
        if not run.warmup:
            runs[run.backend].append((prediction, decoded[run.round]))
    if progress is not None:
        progress(len(order), len(order), "")
    results = {name: BackendResult(name, _own_stages(done), done[-1][0], schedules[name].note)
               for name, done in runs.items()}
    pooled = [p for done in runs.values() for p, _ in done]
    lasts = [r.last for r in results.values()]
    return Comparison(
        results=MappingProxyType(results),
        shared=MappingProxyType({"decode": Spread(tuple(decoded.values())),
                                 **{s: Spread(tuple(p.timings.ms(s) for p in pooled)) for s in SHARED_STAGES[1:]}}),
        repeats=repeats,
        warmups=WARMUPS,
        max_abs_diff=max(float(np.abs(p.tensor - lasts[0].tensor).max()) for p in lasts),
        labels_agree=len({p.label for p in lasts}) == 1,
        load_average=os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0,
        usable_cpus=usable_cpus(),
    )


def _decode_ms(path: Path) -> float:
    start = time.perf_counter_ns()
    load_scan(path)
    return (time.perf_counter_ns() - start) / 1e6


def _own_stages(runs: list[tuple[Prediction, float]]) -> Mapping[str, Spread]:
    """A backend's own stages, then the preprocessing total (the five stages of a run) and the end-to-end total
    (everything a run timed plus its round's decode), each summarised over the runs."""
    names = [name for name, _ in runs[0][0].timings.stages if name not in SHARED_STAGES]
    spreads = {s: Spread(tuple(p.timings.ms(s) for p, _ in runs)) for s in names}
    spreads[PREPROCESSING_TOTAL] = Spread(tuple(sum(p.timings.ms(s) for s in STAGES if s in names) for p, _ in runs))
    spreads[END_TO_END_TOTAL] = Spread(tuple(p.timings.total_ms + decode for p, decode in runs))
    return MappingProxyType(spreads)
