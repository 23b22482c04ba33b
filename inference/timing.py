"""Wall-clock timing around pipeline stages (perf_counter_ns); the stages themselves never time anything."""

from __future__ import annotations

import time
from collections.abc import Iterator
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
    """Collects stage times: ``with clock.stage("rescale"): ...``; a stage that raises is not recorded."""

    def __init__(self) -> None:
        self._stages: list[tuple[str, int]] = []
        self._starts: list[int] = []

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter_ns()
        yield
        self._stages.append((name, time.perf_counter_ns() - start))
        self._starts.append(start)

    def timings(self) -> Timings:
        return Timings(tuple(self._stages), tuple(self._starts))
