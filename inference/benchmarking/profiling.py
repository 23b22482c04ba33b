"""Profile one pipeline run with cProfile: the .prof file (opens in snakeviz) and the top functions."""

from __future__ import annotations

import cProfile
import io
import pstats
from pathlib import Path

from radbench.inference.errors import RadBenchError, ScanError
from radbench.inference.loading import load_scan
from radbench.inference.model import Model
from radbench.inference.pipeline import Pipeline, Prediction


def profile_run(path: str | Path, model: Model, backend: str, out: str | Path | None = None,
                top: int = 25) -> tuple[Prediction, str]:
    """Run the pipeline on ``path`` under cProfile; Numba's compile happens before, outside the profile.

    Returns the prediction and the top ``top`` functions by cumulative time as text; writes the raw
    profile to ``out`` when given. Any failure of the run is a ``RadBenchError`` naming the file.
    """
    pipeline = Pipeline(model, backend)
    profiler = cProfile.Profile()
    try:
        pipeline.backend.warm_up(load_scan(path).grey_frame().dtype)
        profiler.enable()
        try:
            prediction = pipeline.run(path)
        finally:
            profiler.disable()
    except ScanError:
        raise  # its message names the file already
    except Exception as exc:  # as in predict and batch: whatever a file causes is one clear line naming it
        reason = str(exc) if isinstance(exc, RadBenchError) else f"unexpected {type(exc).__name__}: {exc}"
        raise RadBenchError(f"{path}: {reason}") from exc
    if out is not None:
        profiler.dump_stats(str(out))
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.strip_dirs().sort_stats("cumulative").print_stats(top)
    return prediction, text.getvalue()
