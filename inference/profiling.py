"""Profile one pipeline run with cProfile: the .prof file (opens in snakeviz) and the top functions."""

from __future__ import annotations

import cProfile
import io
import pstats
from pathlib import Path

from inference.loading import load_scan
from inference.model import Model
from inference.pipeline import Pipeline, Prediction


def profile_run(path: str | Path, model: Model, backend: str, out: str | Path | None = None,
                top: int = 25) -> tuple[Prediction, str]:
    """Run the pipeline on ``path`` under cProfile; Numba's compile happens before, outside the profile.

    Returns the prediction and the top ``top`` functions by cumulative time as text; writes the raw
    profile to ``out`` when given.
    """
    pipeline = Pipeline(model, backend)
    pipeline.backend.warm_up(load_scan(path).pixels.dtype)
    profiler = cProfile.Profile()
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
