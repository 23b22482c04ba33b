"""Wall-clock timing around pipeline stages (perf_counter_ns); the stages themselves never time anything."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Timings:
    """Per-stage wall times of one run, in pipeline order, in nanoseconds, and when each began."""

    stages: tuple[tuple[str, int], ...]
    starts: tuple[int, ...] = ()  # ``time.perf_counter_ns()`` at each stage's start (a trace's spans)

    def ms(self, stage: str) -> float:
        return dict(self.stages)[stage] / 1e6

    def as_ms(self) -> dict[str, float]:
        return {name: ns / 1e6 for name, ns in self.stages}

    @property
    def total_ms(self) -> float:
        return sum(ns for _, ns in self.stages) / 1e6


class StageClock:
    """Collects stage times: ``with clock.stage("rescale"): ...``; a stage that raises is not recorded.

    ``on_start(name)`` and ``on_end(name, ns)``, when given, hear each stage begin and end as it happens (a live
    view: :mod:`inference.benchmarking.race`); they are called outside the time measured.
    """

    def __init__(self, on_start: Callable[[str], None] | None = None,
                 on_end: Callable[[str, int], None] | None = None) -> None:
        self._stages: list[tuple[str, int]] = []
        self._starts: list[int] = []
        self._on_start, self._on_end = on_start, on_end

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self._on_start is not None:
            self._on_start(name)
        start = time.perf_counter_ns()
        yield
        elapsed = time.perf_counter_ns() - start
        self._stages.append((name, elapsed))
        self._starts.append(start)
        if self._on_end is not None:
            self._on_end(name, elapsed)

    def timings(self) -> Timings:
        return Timings(tuple(self._stages), tuple(self._starts))
