"""Numba's compile time, measured apart from every stage time.

In this process, a warm-up is a real compile or a load from Numba's on-disk cache, told apart by Numba's own cache
counters (:func:`compile_in_process`). Fresh processes sharing an empty ``NUMBA_CACHE_DIR`` show both (the first
compiles, the second loads what it cached); each runs this module::

    python -m radbench.inference.benchmarking.numba_compile DTYPE...

which prints :func:`compile_in_process` of each dtype in turn as one JSON line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from radbench.inference.backends import get_backend
from radbench.inference.errors import BackendError


@dataclass(frozen=True)
class CompileTime:
    """Time of Numba's warm-up for one input dtype, and what Numba did during it."""

    dtype: str
    ms: float
    source: str  # "compiled", "loaded from on-disk cache", "mixed (...)" or "already in memory"


@dataclass(frozen=True)
class CompileReport:
    in_process: tuple[CompileTime, ...]
    fresh_cold: tuple[CompileTime, ...] = ()  # a fresh process with an empty NUMBA_CACHE_DIR
    fresh_cached: tuple[CompileTime, ...] = ()  # a second fresh process with the cache the first one wrote
    fresh_error: str = ""

    def as_dict(self) -> dict:
        return {
            "in_process": [asdict(c) for c in self.in_process],
            "fresh_process_cold": [asdict(c) for c in self.fresh_cold],
            "fresh_process_cached": [asdict(c) for c in self.fresh_cached],
            "fresh_process_error": self.fresh_error,
            "note": "in_process: first warm-up per dtype in the benchmarking process; fresh_process_cold: a new "
                    "process with an empty NUMBA_CACHE_DIR; fresh_process_cached: a second new process reusing it",
        }


def cache_source(hits: int, misses: int) -> str:
    """What Numba did during a warm-up, from how many kernels it loaded from its cache (hits) and compiled (misses)."""
    if misses and hits:
        return f"mixed ({hits} kernels loaded from on-disk cache, {misses} compiled)"
    return "compiled" if misses else "loaded from on-disk cache" if hits else "already in memory"


def compile_in_process(dtype: str | np.dtype) -> CompileTime:
    """Warm the Numba backend for ``dtype`` in this process; say whether Numba compiled or loaded its cache."""
    backend = get_backend("numba")
    before = _cache_counts()
    seconds = backend.warm_up(np.dtype(dtype))
    hits, misses = (after - was for after, was in zip(_cache_counts(), before))
    return CompileTime(str(np.dtype(dtype)), seconds * 1e3, cache_source(hits, misses))


def compile_in_fresh_processes(dtypes: Sequence[str]) -> tuple[tuple[CompileTime, ...], tuple[CompileTime, ...]]:
    """Numba's warm-up in a new process with an empty cache folder, then in another reusing that cache."""
    with tempfile.TemporaryDirectory(prefix="radbench-numba-cache-") as cache:
        return _fresh_compile(dtypes, cache), _fresh_compile(dtypes, cache)


def compile_report(in_process: Mapping[str, CompileTime], fresh: bool) -> CompileReport:
    """The in-process times by dtype, plus (if ``fresh``) both fresh processes for the same dtypes; a failure of
    the fresh processes is reported in words, not raised."""
    if not fresh or not in_process:
        return CompileReport(tuple(in_process.values()))
    try:
        cold, cached = compile_in_fresh_processes(list(in_process))
    except BackendError as exc:
        return CompileReport(tuple(in_process.values()), fresh_error=str(exc))
    return CompileReport(tuple(in_process.values()), cold, cached)


def _cache_counts() -> tuple[int, int]:
    from numba.core.dispatcher import Dispatcher

    from radbench.inference.backends import numba_jit

    kernels = [k for k in vars(numba_jit).values() if isinstance(k, Dispatcher)]
    return (sum(sum(k.stats.cache_hits.values()) for k in kernels),
            sum(sum(k.stats.cache_misses.values()) for k in kernels))


def _fresh_compile(dtypes: Sequence[str], cache: str) -> tuple[CompileTime, ...]:
    result = subprocess.run([sys.executable, "-m", "radbench.inference.benchmarking.numba_compile", *dtypes],
                            env={**os.environ, "NUMBA_CACHE_DIR": cache}, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise BackendError(f"Numba warm-up in a fresh process failed: {last}")
    return tuple(CompileTime(**c) for c in json.loads(result.stdout.strip().splitlines()[-1]))


if __name__ == "__main__":
    print(json.dumps([asdict(compile_in_process(dtype)) for dtype in sys.argv[1:]]))
