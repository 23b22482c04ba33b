"""How often each backend runs on a frame, and in which order: warm-up rounds first, then interleaved timed rounds
(round r: every backend in the order given, then round r + 1), so that machine drift hits all alike. The naive
backend runs fewer repeats, without warm-up, on frames over :data:`LARGE_FRAME_PIXELS`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

#: Frames larger than this make the naive backend run :data:`LARGE_NAIVE_REPEATS` repeats, without warm-up.
LARGE_FRAME_PIXELS = 1_000_000
LARGE_NAIVE_REPEATS = 3


@dataclass(frozen=True)
class Run:
    """One entry of the run order: which backend ran in which round, and whether that round was a warm-up."""

    round: int
    backend: str
    warmup: bool


@dataclass(frozen=True)
class Schedule:
    """How often one backend runs on one frame."""

    warmup: int
    repeats: int
    note: str = ""  # why it runs fewer times than asked, if it does


def check_counts(repeats: int, warmup: int) -> None:
    """``ValueError`` unless there is at least one timed repeat and no negative number of warm-ups."""
    if repeats < 1 or warmup < 0:
        raise ValueError("repeats must be at least 1 and warm-up runs at least 0")


def schedule(backend: str, pixels: int, repeats: int, warmup: int) -> Schedule:
    """Warm-ups and repeats for ``backend`` on a frame of ``pixels``: naive is capped on large frames."""
    if backend == "naive" and pixels > LARGE_FRAME_PIXELS and repeats > LARGE_NAIVE_REPEATS:
        return Schedule(0, LARGE_NAIVE_REPEATS,
                        f"naive ran {LARGE_NAIVE_REPEATS} repeats without warm-up "
                        f"(frame has {pixels / 1e6:.1f} Mpx > {LARGE_FRAME_PIXELS / 1e6:g} Mpx)")
    return Schedule(warmup, repeats)


def run_order(schedules: Mapping[str, Schedule]) -> tuple[Run, ...]:
    """Interleaved rounds: warm-up rounds first, then timed rounds, each round every backend in order."""
    warmup = max(s.warmup for s in schedules.values())
    rounds = warmup + max(s.repeats for s in schedules.values())
    return tuple(Run(r, name, r < warmup) for r in range(rounds) for name, s in schedules.items()
                 if warmup - s.warmup <= r < warmup + s.repeats)
