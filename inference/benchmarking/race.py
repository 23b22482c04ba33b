"""A race of the preprocessing backends on one frame, for a class to watch: stage results streamed as they are
measured.

:func:`run_race` runs the five preprocessing stages (the stage runner every caller shares,
:func:`inference.preprocessing.preprocess`) of each backend in turn, never two at the same time, so every time is
taken with the machine to itself. As it goes it reports :data:`RaceEvent` s: a lane starting, Numba's warm-up (its
compile or cache load, timed apart and never part of a race time), a stage starting, a stage timed, and, inside a
naive stage, how many rows it has done and how fast (read from the cancel checks the naive backend makes before
every row; the counting costs a clock read per row, under 0.1 % of a naive row, and the reports are made at most every
:data:`PROGRESS_INTERVAL_S`). :class:`RaceBoard` folds those events into what each lane shows, the same whether it
is fed live or from a finished :class:`RaceResult`.

:data:`DEMO` is the preset a class watches: naive once (a run takes seconds), vectorized and numba with a warm-up
and enough timed runs for a stable median, the whole race within about 15 s on the 1841 x 1955 chest film of 2
cores. Compare all (:mod:`.compare`) stays the place for careful numbers: interleaved rounds, full pipeline runs.

Without the desktop app, the demo race of one file, its lanes and its wall time::

    python -m radbench.inference.benchmarking.race FILE
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from radbench.inference.backends import get_backend
from radbench.inference.backends.contract import STAGES, Cancel, stop_if
from radbench.inference.batch import save_csv
from radbench.inference.benchmarking.compare import PREPROCESSING_TOTAL, Spread, speedup
from radbench.inference.benchmarking.numba_compile import CompileTime, warm
from radbench.inference.benchmarking.schedule import Schedule
from radbench.inference.errors import RadBenchError, ScanError
from radbench.inference.loading import load_scan
from radbench.inference.machine import usable_cpus
from radbench.inference.model import Model
from radbench.inference.preprocessing import PreprocessSpec, preprocess
from radbench.inference.scan import Scan
from radbench.inference.threads import current_threads
from radbench.inference.timing import StageClock
from radbench.inference.wording import counted

#: Shortest time between two reports of a stage's rows.
PROGRESS_INTERVAL_S = 0.1
BASELINE = "naive"


@dataclass(frozen=True)
class RacePlan:
    """Who races, in which order (one after another), and how often each runs (warm-ups, then timed runs)."""

    name: str
    lanes: tuple[tuple[str, Schedule], ...]

    @property
    def backends(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.lanes)

    def schedule(self, backend: str) -> Schedule:
        return dict(self.lanes)[backend]

    def describe(self) -> str:
        """"vectorized: 1 warm-up + 9 timed runs; numba: ...; naive: 1 run, no warm-up (...)"."""
        return "; ".join(f"{name}: {runs_text(s)}" for name, s in self.lanes)


def runs_text(schedule: Schedule) -> str:
    """"1 warm-up + 9 timed runs", or "1 run, no warm-up (its note)"."""
    runs = f"{schedule.repeats} timed run{'s' * (schedule.repeats != 1)}"
    text = f"{schedule.warmup} warm-up + {runs}" if schedule.warmup else f"{runs}, no warm-up"
    return f"{text} ({schedule.note})" if schedule.note else text


#: The demo: the fast backends first, then naive crawling while the class watches their times.
DEMO = RacePlan("demo", (("vectorized", Schedule(1, 9)), ("numba", Schedule(1, 9)),
                         ("naive", Schedule(0, 1, "one run takes seconds"))))


# ----- the events, in the order a lane reports them --------------------------------------------------------------
@dataclass(frozen=True)
class LaneStarted:
    backend: str
    schedule: Schedule
    stages: tuple[str, ...]  # what each run times, in order (equalize only when the model card asks for it)
    threads: int | None = None  # Numba's threads for a backend that compiles (a ceiling: see inference.threads)


@dataclass(frozen=True)
class Compiled:
    """Numba's warm-up for this frame, before the lane's first run: never inside a race time."""

    backend: str
    compile: CompileTime


@dataclass(frozen=True)
class StageStarted:
    backend: str
    run: int  # 0-based over the lane's runs, warm-ups first
    warmup: bool
    stage: str


@dataclass(frozen=True)
class RowsDone:
    """Inside a stage: the rows done so far (a naive stage checks before every row; equalize passes the rows three
    times) and their rate."""

    backend: str
    run: int
    warmup: bool
    stage: str
    rows: int
    rows_per_s: float


@dataclass(frozen=True)
class StageTimed:
    backend: str
    run: int
    warmup: bool
    stage: str
    ms: float


@dataclass(frozen=True)
class LaneResult:
    backend: str
    schedule: Schedule
    stages: Mapping[str, Spread]  # the five stages in pipeline order (equalize only when the card asks for it)
    total: Spread  # the stages' sum, per timed run
    threads: int | None = None  # as in :class:`LaneStarted`

    @property
    def repeats(self) -> int:
        return len(self.total.samples_ms)


@dataclass(frozen=True)
class LaneFinished:
    lane: LaneResult


RaceEvent = LaneStarted | Compiled | StageStarted | RowsDone | StageTimed | LaneFinished


@dataclass(frozen=True)
class RaceResult:
    path: Path
    frame: int
    frame_count: int
    plan: RacePlan
    lanes: Mapping[str, LaneResult]  # in the order they ran
    compile: CompileTime | None  # Numba's warm-up within the race (before its lane), if Numba raced
    wall_s: float  # the whole race, warm-ups and compile included
    load_average: float  # of the last minute, read as the race ended
    usable_cpus: int

    def finish_lines(self) -> list[str]:
        """The speedups in words, each lane against naive, then numba against vectorized (:func:`finish_line`)."""
        pairs = [(name, BASELINE) for name in self.lanes if name != BASELINE and BASELINE in self.lanes]
        if {"numba", "vectorized"} <= set(self.lanes):
            pairs.append(("numba", "vectorized"))
        return [finish_line(name, than, speedup(self.lanes[than].total, self.lanes[name].total))
                for name, than in pairs]


def finish_line(backend: str, baseline: str, factor: float | None) -> str:
    """"numba: 640× faster than naive"; "numba: about as fast as vectorized" when their p10-p90 bands overlap."""
    if factor is None:
        return f"{backend}: about as fast as {baseline}"
    ratio = factor if factor >= 1 else 1 / factor
    figure = f"{ratio:,.0f}" if ratio >= 10 else f"{ratio:.2g}"
    return f"{backend}: {figure}× {'faster' if factor >= 1 else 'slower'} than {baseline}"


# ----- running it ------------------------------------------------------------------------------------------------
def run_race(model: Model, scan: Scan, *, frame: int | None = None, plan: RacePlan = DEMO, cancel: Cancel = None,
             report: Callable[[RaceEvent], None] = lambda event: None) -> RaceResult:
    """Race ``plan``'s backends on ``frame`` of ``scan`` (preprocessed for ``model``), one after another, calling
    ``report`` with every event as it happens (on the calling thread). A backend that cannot run raises
    ``BackendError`` (no other one takes its place); ``cancel()`` turning True raises ``Cancelled`` between stages
    and, in naive stages, between rows."""
    started = time.perf_counter()
    try:
        index = scan.frame_index(frame)
    except IndexError as exc:
        raise ScanError(scan.path, str(exc)) from None
    image, spec = scan.grey_frame(index), PreprocessSpec.from_card(model.card, scan)
    stages = tuple(stage for stage, _ in spec.stage_arguments())
    lanes: dict[str, LaneResult] = {}
    compiled = None
    for name, schedule in plan.lanes:
        stop_if(cancel)
        backend = get_backend(name)
        threads = current_threads(numba=True).numba if backend.compiles else None
        report(LaneStarted(name, schedule, stages, threads))
        if backend.compiles:
            compiled = warm(backend, [image.dtype], spec)
            report(Compiled(name, compiled))
        runs = []
        for run in range(schedule.warmup + schedule.repeats):
            rows = _RowCounter(name, run, run < schedule.warmup, cancel, report)
            clock = StageClock(on_start=rows.start, on_end=rows.end)
            preprocess(image, spec, backend, clock=clock, cancel=rows)
            runs.append(clock.timings().as_ms())
        lanes[name] = lane = _lane(name, schedule, runs[schedule.warmup:], threads)
        report(LaneFinished(lane))
    return RaceResult(scan.path, index, scan.frame_count, plan, MappingProxyType(lanes), compiled,
                      time.perf_counter() - started, os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0,
                      usable_cpus())


class _RowCounter:
    """The ``cancel`` a run's stages get: counts the checks made inside the stage going on (a naive stage checks
    before every row) and reports them every :data:`PROGRESS_INTERVAL_S`; also hears the stage clock."""

    def __init__(self, backend: str, run: int, warmup: bool, cancel: Cancel, report: Callable[[RaceEvent], None]):
        self.backend, self.run, self.warmup, self._cancel, self._report = backend, run, warmup, cancel, report
        self.stage, self.rows, self._start, self._next = "", 0, 0.0, 0.0

    def start(self, stage: str) -> None:
        self._report(StageStarted(self.backend, self.run, self.warmup, stage))
        self.stage, self.rows = stage, 0
        self._start = time.perf_counter()
        self._next = self._start + PROGRESS_INTERVAL_S

    def end(self, stage: str, ns: int) -> None:
        self.stage = ""
        self._report(StageTimed(self.backend, self.run, self.warmup, stage, ns / 1e6))

    def __call__(self) -> bool:
        if self.stage:
            self.rows += 1
            now = time.perf_counter()
            if now >= self._next:
                self._next = now + PROGRESS_INTERVAL_S
                self._report(RowsDone(self.backend, self.run, self.warmup, self.stage, self.rows,
                                      self.rows / (now - self._start)))
        return self._cancel is not None and self._cancel()


def _lane(backend: str, schedule: Schedule, runs: list[dict[str, float]], threads: int | None) -> LaneResult:
    stages = {s: Spread(tuple(run[s] for run in runs)) for s in runs[0]}
    return LaneResult(backend, schedule, MappingProxyType(stages), Spread(tuple(sum(run.values()) for run in runs)),
                      threads)


# ----- what each lane shows ----------------------------------------------------------------------------------------
def lane_name(backend: str, threads: int | None) -> str:
    """The backend, with Numba's threads where it has a setting: "numba (2 threads)"."""
    return backend if threads is None else f"{backend} ({counted(threads, 'thread')})"


WAITING, WARMING_UP, RUNNING, DONE = "waiting", "warm-up", "running", "done"


@dataclass
class LaneState:
    """One lane as shown: its status, the stage times of its timed runs so far, and the stage going on."""

    backend: str
    schedule: Schedule
    stages: tuple[str, ...]  # the stages a run times, in order
    status: str = WAITING
    run: int = 0  # the timed run going on or last finished, 1-based (0: none yet)
    timed: dict[str, list[float]] = field(default_factory=dict)  # stage -> ms of each timed run so far
    stage: str = ""  # the stage going on ("" between stages)
    rows: int = 0
    rows_per_s: float = 0.0
    compile: CompileTime | None = None
    result: LaneResult | None = None
    threads: int | None = None  # Numba's threads, for a lane that compiles

    @property
    def name(self) -> str:
        return lane_name(self.backend, self.threads)

    def stage_ms(self, stage: str) -> float | None:
        """The stage's median over the timed runs so far (the final median once the lane is done)."""
        samples = self.timed.get(stage)
        return Spread(tuple(samples)).median_ms if samples else None

    @property
    def total_ms(self) -> float | None:
        """The median of the totals of the timed runs that have finished every stage (None before the first)."""
        if self.result is not None:
            return self.result.total.median_ms
        runs = min(len(self.timed.get(s, ())) for s in self.stages)
        if not runs:
            return None
        return Spread(tuple(sum(self.timed[s][i] for s in self.stages) for i in range(runs))).median_ms

    @property
    def so_far_ms(self) -> float:
        """The stages the first timed run has finished, summed: the race clock before that run is through."""
        return sum(v[0] for v in self.timed.values())


class RaceBoard:
    """Every lane's state, from the events as they arrive (:meth:`apply`) or from a finished race
    (:meth:`from_result`)."""

    def __init__(self, plan: RacePlan, stages: tuple[str, ...] = STAGES):
        self.plan, self.stages = plan, stages
        self.lanes = {name: LaneState(name, schedule, stages) for name, schedule in plan.lanes}
        self.result: RaceResult | None = None

    @classmethod
    def from_result(cls, result: RaceResult) -> RaceBoard:
        board = cls(result.plan, tuple(next(iter(result.lanes.values())).stages))
        for lane in result.lanes.values():
            board.apply(LaneFinished(lane))
        board.result = result
        return board

    def apply(self, event: RaceEvent) -> LaneState:
        """Fold one event in; returns the lane it changed."""
        if isinstance(event, LaneFinished):
            lane = self.lanes[event.lane.backend]
            lane.status, lane.stage, lane.result, lane.run = DONE, "", event.lane, event.lane.repeats
            lane.threads = event.lane.threads
            lane.timed = {s: list(spread.samples_ms) for s, spread in event.lane.stages.items()}
            return lane
        lane = self.lanes[event.backend]
        if isinstance(event, LaneStarted):
            lane.status = WARMING_UP if event.schedule.warmup else RUNNING
            self.stages = lane.stages = event.stages
            lane.threads = event.threads
        elif isinstance(event, Compiled):
            lane.compile = event.compile
        elif isinstance(event, StageStarted):
            lane.status = WARMING_UP if event.warmup else RUNNING
            lane.stage, lane.rows, lane.rows_per_s = event.stage, 0, 0.0
            if not event.warmup:
                lane.run = event.run - lane.schedule.warmup + 1
        elif isinstance(event, RowsDone):
            lane.rows, lane.rows_per_s = event.rows, event.rows_per_s
        elif isinstance(event, StageTimed):
            lane.stage = ""
            if not event.warmup:
                lane.timed.setdefault(event.stage, []).append(event.ms)
        return lane


def save_race_csv(result: RaceResult, path: str | Path) -> None:
    """The race's numbers, one row per backend and stage (then its total): median, p10, p90 and every timed run's
    milliseconds, and Numba's threads on its rows; the file's name, never a patient's."""
    header = ["file", "frame", "backend", "numba_threads", "stage", "warmups", "runs", "median_ms", "p10_ms", "p90_ms",
              "samples_ms"]
    rows = [{"file": result.path.name, "frame": result.frame + 1, "backend": name,
             "numba_threads": "" if lane.threads is None else lane.threads, "stage": stage,
             "warmups": lane.schedule.warmup, "runs": lane.repeats, "median_ms": f"{spread.median_ms:.4f}",
             "p10_ms": f"{spread.p10_ms:.4f}", "p90_ms": f"{spread.p90_ms:.4f}",
             "samples_ms": " ".join(f"{ms:.4f}" for ms in spread.samples_ms)}
            for name, lane in result.lanes.items()
            for stage, spread in (*lane.stages.items(), (PREPROCESSING_TOTAL, lane.total))]
    save_csv(path, header, rows)


def main(path: str) -> None:
    """Race the demo preset on ``path`` with the bundled model and print each lane, the finish and the wall time."""
    try:
        result = run_race(Model(), load_scan(path))
    except RadBenchError as exc:
        sys.exit(f"race: {exc}")
    for name, lane in result.lanes.items():
        total = lane.total
        spread = f" (p10-p90 {total.p10_ms:,.1f}-{total.p90_ms:,.1f} ms)" if lane.repeats > 1 else ""
        print(f"{lane_name(name, lane.threads)}: {runs_text(lane.schedule)}; median {total.median_ms:,.1f} ms{spread}")
    print("\n".join(result.finish_lines()))
    if result.compile is not None:
        print(f"numba warm-up before its lane (not in its times): {result.compile.ms / 1e3:.2f} s, "
              f"{result.compile.source}")
    print(f"race wall time {result.wall_s:.1f} s; load average {result.load_average:.2f} on {result.usable_cpus} "
          "usable cores")


if __name__ == "__main__":
    main(sys.argv[1])
