"""ONNX Runtime's per-image latency at batch 1, per intra-op thread count, in sessions that do not spin (their idle
threads would otherwise steal the cores of a parallel Numba kernel)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from radbench.inference.benchmarking.records import Record
from radbench.inference.benchmarking.schedule import check_counts
from radbench.inference.onnx_runtime import cpu_session, session_options
from radbench.inference.timing import StageClock

INFER_STAGE = "infer"

#: ONNX Runtime intra-op thread counts timed.
ORT_THREADS = (1, 2)


def ort_sessions(model_path: str | Path, threads: Iterable[int] = ORT_THREADS) -> dict[str, object]:
    """CPU sessions named ``onnxruntime-<n>thread(s)``, spinning disabled."""
    return {f"onnxruntime-{count}thread{'s' if count > 1 else ''}":
            cpu_session(model_path, session_options(count, spinning=False)) for count in threads}


def infer_latency(sessions: Mapping[str, object], tensor: np.ndarray, file: str, *, repeats: int = 10,
                  warmup: int = 1) -> tuple[Record, ...]:
    """Per-image inference time at batch 1 for each session, sessions interleaved like the backends."""
    check_counts(repeats, warmup)
    clock = StageClock()
    for round_index in range(warmup + repeats):
        for name, session in sessions.items():
            feed = {session.get_inputs()[0].name: tensor}
            if round_index < warmup:
                session.run(None, feed)
                continue
            with clock.stage(name):
                session.run(None, feed)
    samples: dict[str, list[float]] = {name: [] for name in sessions}
    for name, ns in clock.timings().stages:
        samples[name].append(ns / 1e6)
    return tuple(Record.of(file, name, INFER_STAGE, ms) for name, ms in samples.items())
