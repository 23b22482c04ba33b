"""Time the five compute stages of every backend, and of a library reference, on one scan's default frame.

Each backend runs the stages exactly as serving does (:func:`inference.preprocessing.preprocess` with the model
card's :class:`~inference.preprocessing.PreprocessSpec`), in the interleaved order of :mod:`.schedule`.
``preprocess_total`` is the sum of the five stages per run, summarised over runs (so its median is not the sum of
the stage medians). Numba is compiled before anything is timed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from radbench.inference.backends import BACKEND_NAMES, Backend, get_backend
from radbench.inference.benchmarking import peer_opencv, reference_pipeline
from radbench.inference.benchmarking.records import Record
from radbench.inference.benchmarking.schedule import Run, check_counts, run_order, schedule
from radbench.inference.model import ModelCard
from radbench.inference.ood import withheld_reason
from radbench.inference.preprocessing import PreprocessSpec, preprocess
from radbench.inference.scan import Scan
from radbench.inference.timing import StageClock, Timings

TOTAL_STAGE = "preprocess_total"
REFERENCE = reference_pipeline.NAME
OPENCV = peer_opencv.NAME  # the OpenCV pipeline a user who wants speed would write (optional: the peers extra)
#: The numba backend's whole-pipeline entry (``Backend.fused``: all five stages in two passes), timed as one stage
#: "fused".
FUSED = "numba-fused"
DEFAULT_BACKENDS = (*BACKEND_NAMES, REFERENCE)
KNOWN_BACKENDS = (*BACKEND_NAMES, FUSED, REFERENCE, OPENCV)  # options: --backends ...,numba-fused,opencv
SPEEDUP_BASELINES = ("naive", "vectorized", REFERENCE, OPENCV)
#: The outside yardsticks: not RadBench backends, and approximate (their model inputs differ by design).
PEERS = (REFERENCE, OPENCV)
#: Why each peer's model input differs from ours.
DIFFERS_BY_DESIGN = {REFERENCE: reference_pipeline.DIFFERS_BY_DESIGN, OPENCV: peer_opencv.DIFFERS_BY_DESIGN}
YARDSTICK = "vectorized"  # every tensor is compared with this backend's


@dataclass(frozen=True)
class Speedup:
    """``ratio = baseline median / backend median``: above 1 the backend is faster than the baseline."""

    backend: str
    baseline: str
    stage: str
    ratio: float
    within_noise: bool = False  # the two p10-p90 ranges overlap (:meth:`.records.Record.overlaps`)


@dataclass(frozen=True)
class FileBench:
    """Everything timed on one file's default frame."""

    file: str
    shape: tuple[int, int]
    dtype: str
    frame: int
    frame_count: int
    records: tuple[Record, ...]  # one per (backend, stage) incl. preprocess_total, backends in the order given
    run_order: tuple[Run, ...]
    notes: tuple[str, ...]
    max_abs_diff: Mapping[str, float]  # each backend's model input vs the vectorized backend's
    tensor: np.ndarray = field(repr=False)  # the vectorized backend's model input
    latency: tuple[Record, ...] = ()  # ONNX Runtime on ``tensor``, filled in by the runner
    labels: Mapping[str, str | None] = field(default_factory=dict)  # each backend's label on its model input
    withheld: str | None = None  # why no label may be shown (outside the model's domain), as a prediction says

    @property
    def backends(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.backend for r in self.records))

    @property
    def stages(self) -> tuple[str, ...]:
        """Every stage timed (a fused path's one stage included), the preprocessing total last."""
        stages = dict.fromkeys(r.stage for r in self.records if r.stage != TOTAL_STAGE)
        return (*stages, TOTAL_STAGE)

    def record(self, backend: str, stage: str) -> Record:
        return next(r for r in self.records if r.backend == backend and r.stage == stage)


def stage_backend(name: str) -> Backend:
    """A registered backend by name, or one of the (unregistered) peers; ``BackendError`` if it cannot run here."""
    peers = {REFERENCE: reference_pipeline.as_backend, OPENCV: peer_opencv.as_backend}
    return peers[name]() if name in peers else get_backend(name)


def bench_file(scan: Scan, card: ModelCard, *, backends: Sequence[str] = DEFAULT_BACKENDS, repeats: int = 10,
               warmup: int = 1, classify: Callable[[np.ndarray], str | None] | None = None) -> FileBench:
    """Time the five compute stages of every backend on the scan's default frame (Numba compiled beforehand).

    An optional peer that cannot run here (OpenCV not installed) is left out with a note saying how to install it.
    ``classify(model_input)``, if given, labels each backend's model input (``FileBench.labels``), and the labels
    are withheld where a prediction's would be (``FileBench.withheld``)."""
    check_counts(repeats, warmup)
    image = scan.grey_frame()
    spec = PreprocessSpec.from_card(card, scan)
    notes = []
    if OPENCV in backends and not peer_opencv.available():
        notes.append(f"{OPENCV} left out: it is not installed here; {peer_opencv.INSTALL}")
        backends = [name for name in backends if name != OPENCV]
    chosen = {name: stage_backend("numba" if name == FUSED else name) for name in backends}
    for name, backend in chosen.items():
        backend.warm_up(image.dtype, fused=name == FUSED)
    schedules = {name: schedule(name, image.size, repeats, warmup) for name in backends}
    order = run_order(schedules)
    timings: dict[str, list[Timings]] = {name: [] for name in backends}
    tensors: dict[str, np.ndarray] = {}
    for run in order:
        clock = StageClock()
        if run.backend == FUSED:
            with clock.stage("fused"):
                tensors[run.backend] = chosen[run.backend].fused(image, spec)
        else:
            tensors[run.backend] = preprocess(image, spec, chosen[run.backend], clock=clock)
        if not run.warmup:
            timings[run.backend].append(clock.timings())
    file = str(scan.path)
    yardstick = preprocess(image, spec, get_backend(YARDSTICK))
    return FileBench(
        file=file,
        shape=image.shape,
        dtype=str(image.dtype),
        frame=scan.default_frame,
        frame_count=scan.frame_count,
        records=tuple(r for name, runs in timings.items() for r in _records(file, name, runs)),
        run_order=order,
        notes=(*notes, *(s.note for s in schedules.values() if s.note)),
        max_abs_diff={name: float(np.abs(tensors[name] - yardstick).max()) for name in backends},
        tensor=yardstick,
        labels={name: classify(t) for name, t in {YARDSTICK: yardstick, **{n: tensors[n] for n in backends}}.items()}
        if classify else {},
        withheld=withheld_reason(scan, yardstick, card.domain) if classify else None,
    )


def speedups(bench: FileBench, stage: str = TOTAL_STAGE,
             baselines: Iterable[str] = SPEEDUP_BASELINES) -> tuple[Speedup, ...]:
    """Each backend's speedup over each baseline present on ``stage``, from the medians."""
    present = [b for b in baselines if b in bench.backends]
    return tuple(Speedup(name, base, stage, bench.record(base, stage).median_ms / bench.record(name, stage).median_ms,
                         bench.record(base, stage).overlaps(bench.record(name, stage)))
                 for name in bench.backends for base in present if base != name)


def _records(file: str, backend: str, runs: list[Timings]) -> list[Record]:
    stages = [name for name, _ in runs[0].stages]
    records = [Record.of(file, backend, s, [t.ms(s) for t in runs]) for s in stages]
    return [*records, Record.of(file, backend, TOTAL_STAGE, [t.total_ms for t in runs])]
