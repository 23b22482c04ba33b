"""Numba's compile time, measured apart from every stage time.

In this process, a warm-up is a real compile or a load from Numba's on-disk cache, told apart by Numba's own cache
counters (:func:`compile_in_process`). Fresh processes sharing an empty ``NUMBA_CACHE_DIR`` show both (the first
compiles, the second loads what it cached); each runs this module::

    python -m radbench.inference.benchmarking.numba_compile DTYPE...

which prints :func:`compile_in_process` of each dtype in turn as one JSON line.

Every front end words a warm-up alike (:func:`describe`: "cold compile, 16.8 s" or "on-disk cache load, 0.61 s"),
and announces a cold compile before it starts (:func:`first_use_message`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from radbench.inference.backends import Backend, get_backend
from radbench.inference.errors import BackendError

COMPILED, CACHED, IN_MEMORY = "compiled", "loaded from on-disk cache", "already in memory"
#: A cold compile of every kernel took 15-17 s for the first input dtype on the 2-core development machine, and
#: 2-3 s for each further dtype: the estimates :func:`first_use_message` gives.
FIRST_DTYPE_COMPILE_S, NEXT_DTYPE_COMPILE_S = 16.0, 3.0


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
    return COMPILED if misses else CACHED if hits else IN_MEMORY


def kind(source: str) -> str:
    """What Numba did, in short: "cold compile", "on-disk cache load", or the mixed ``source`` as it is."""
    return {COMPILED: "cold compile", CACHED: "on-disk cache load", IN_MEMORY: "already compiled"}.get(source, source)


def describe(ms: float, source: str) -> str:
    """A warm-up in the words every front end uses: "cold compile, 16.8 s", "on-disk cache load, 0.61 s"."""
    if source == IN_MEMORY or not ms:
        return "already compiled in this process"
    return f"{kind(source)}, {ms / 1e3:.3g} s"


def warm(backend: Backend, dtypes: Iterable[str | np.dtype]) -> CompileTime:
    """Warm ``backend`` up for every dtype in this process, as one figure: the time summed, and what Numba did over
    all of them. A backend that compiles nothing, or is already warm, costs nothing (Numba is not even imported)."""
    dtypes = [np.dtype(d) for d in dtypes]
    names = ", ".join(map(str, dtypes))
    if all(backend.is_warm(d) for d in dtypes):
        return CompileTime(names, 0.0, IN_MEMORY)
    before = _cache_counts()
    seconds = sum(backend.warm_up(d) for d in dtypes)
    hits, misses = (after - was for after, was in zip(_cache_counts(), before))
    return CompileTime(names, seconds * 1e3, cache_source(hits, misses))


def combined(first: CompileTime | None, then: CompileTime) -> CompileTime:
    """Two warm-ups of one process as one figure (``first`` may be None: nothing yet)."""
    if first is None or then.source == IN_MEMORY:
        return first or then
    if first.source == IN_MEMORY:
        return then
    source = first.source if first.source == then.source else f"mixed ({COMPILED} and {CACHED})"
    return CompileTime(f"{first.dtype}, {then.dtype}", first.ms + then.ms, source)


def compile_in_process(dtype: str | np.dtype) -> CompileTime:
    """Warm the Numba backend for ``dtype`` in this process; say whether Numba compiled or loaded its cache."""
    return warm(get_backend("numba"), [dtype])


def kernels_cached() -> bool:
    """Whether Numba's on-disk cache holds code of every kernel of the numba backend for its current source, so
    that a warm-up is expected to load rather than compile (read from Numba's cache index files)."""
    try:
        return all(kernel._cache._cache_file._load_index() for kernel in _kernels())
    except (AttributeError, OSError, EOFError, ValueError):  # Numba's private layout changed, or an unreadable index
        return False


def compile_estimate_s(dtypes: int = 1) -> float | None:
    """About how many seconds warming Numba up for ``dtypes`` input dtypes will take if it compiles, or None when a
    load from the on-disk cache is expected instead (under a second or two)."""
    return None if kernels_cached() else FIRST_DTYPE_COMPILE_S + NEXT_DTYPE_COMPILE_S * (dtypes - 1)


def first_use_message(dtypes: int = 1) -> str | None:
    """What to say before a warm-up for ``dtypes`` input dtypes that is expected to compile: "compiling Numba kernels
    (first use, about 16 s)…"; None when a cache load is expected."""
    seconds = compile_estimate_s(dtypes)
    return None if seconds is None else f"compiling Numba kernels (first use, about {seconds:.0f} s)…"


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


def _kernels() -> list:
    from radbench.inference.backends import numba_jit

    return list(numba_jit.kernels().values())


def _cache_counts() -> tuple[int, int]:
    kernels = _kernels()
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
