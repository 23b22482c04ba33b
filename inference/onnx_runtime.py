"""ONNX Runtime sessions on the CPU, with their options made in one place (the classifier and the latency bench).

``onnxruntime`` is imported on first use, as it is slow to import.
"""

from __future__ import annotations

from pathlib import Path

CPU_PROVIDER = "CPUExecutionProvider"

#: Graph optimization level by name -> ``onnxruntime.GraphOptimizationLevel`` member.
OPTIMIZATION_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
                       "all": "ORT_ENABLE_ALL"}

#: Session config entries that keep idle ONNX Runtime threads from spinning (and stealing a Numba kernel's cores).
NO_SPINNING = {"session.intra_op.allow_spinning": "0", "session.inter_op.allow_spinning": "0"}


def session_options(threads: int, *, optimization: str = "all", spinning: bool = True,
                    profile_prefix: str | Path | None = None):
    """``onnxruntime.SessionOptions``: ``threads`` intra-op threads, one inter-op thread (sequential execution), the
    named graph optimization level (a key of :data:`OPTIMIZATION_LEVELS`), and :data:`NO_SPINNING` unless
    ``spinning``. With ``profile_prefix``, ONNX Runtime profiles every operator into ``<prefix>_<date>.json``
    (``session.end_profiling()`` writes it and returns its path)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPTIMIZATION_LEVELS[optimization])
    if not spinning:
        for key, value in NO_SPINNING.items():
            options.add_session_config_entry(key, value)
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = str(profile_prefix)
    return options


def cpu_session(path: str | Path, options):
    """An ``onnxruntime.InferenceSession`` of the model file on the CPU provider, with ``options`` (made by
    :func:`session_options`)."""
    import onnxruntime as ort

    return ort.InferenceSession(str(path), options, providers=[CPU_PROVIDER])
