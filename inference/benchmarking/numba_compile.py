"""Numba's compile time, measured apart from every stage time.

In this process, a warm-up is a real compile or a load from Numba's on-disk cache, told apart by Numba's own cache
counters (:func:`compile_in_process`). Fresh processes sharing an empty ``NUMBA_CACHE_DIR`` show both (the first
compiles, the second loads what it cached); each runs this module::

    python -m radbench.inference.benchmarking.numba_compile DTYPE...

which prints :func:`compile_in_process` of each dtype in turn as one JSON line (a dtype warms every stage kernel up for
it; ``uint16:preset`` only those a run with a window preset and equalize calls, see :func:`run_token`).

Every front end words a warm-up alike (:func:`describe`: "cold compile, 16.8 s" or "on-disk cache load, 0.61 s"),
and announces a cold compile before it starts (:func:`first_use_message`).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from radbench.inference.backends import Backend, get_backend
from radbench.inference.errors import BackendError

if TYPE_CHECKING:
    from radbench.inference.preprocessing import PreprocessSpec

COMPILED, CACHED, IN_MEMORY = "compiled", "loaded from on-disk cache", "already in memory"
#: A cold compile of what a run on one input dtype needs took FIRST_DTYPE_COMPILE_S on the 2-core development machine,
#: and each further dtype (one more rescale kernel) NEXT_DTYPE_COMPILE_S: the estimates :func:`first_use_message` gives
#: (README, "Numba's first use").
FIRST_DTYPE_COMPILE_S, NEXT_DTYPE_COMPILE_S = 4.0, 0.4
#: How much lower in priority :func:`warm_in_subprocess` runs its compile than the front end that waits for it: the
#: user's runs on the other backends go first (a vectorized run next to the compile: median 46-47 ms alone, 58-73 ms
#: beside a compile at the same priority).
BACKGROUND_NICENESS = 10
#: The dtype a warm-up without named dtypes is estimated for (the app's start-up warm-up counts dtypes only).
_TYPICAL_DTYPE = "uint16"


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


def warm(backend: Backend, dtypes: Iterable[str | np.dtype], spec: PreprocessSpec | None = None) -> CompileTime:
    """Warm ``backend`` up for every dtype in this process (for ``spec``'s stages only, if given), as one figure: the
    time summed, and what Numba did over all of them. A backend that compiles nothing, or is already warm, costs
    nothing (Numba is not even imported)."""
    dtypes = [np.dtype(d) for d in dtypes]
    names = ", ".join(map(str, dtypes))
    if all(backend.is_warm(d, spec=spec) for d in dtypes):
        return CompileTime(names, 0.0, IN_MEMORY)
    before = _cache_counts()
    seconds = sum(backend.warm_up(d, spec=spec) for d in dtypes)
    hits, misses = (after - was for after, was in zip(_cache_counts(), before))
    return CompileTime(names, seconds * 1e3, cache_source(hits, misses))


def warm_in_subprocess(backend: Backend, dtypes: Iterable[str | np.dtype],
                       spec: PreprocessSpec | None = None) -> CompileTime:
    """:func:`warm`, with any compile done in a separate process (on one CPU: Numba compiles on one thread) that
    writes Numba's on-disk cache, which this process then loads. For a front end that compiles in the background
    while the user works: a compile in a thread of the same process holds the GIL most of the time and slows the
    user's own runs; a process only takes its one CPU. The figure is the child's compile plus the load here, a
    "cold compile" (without a writable on-disk cache the load here compiles again, inside that figure). When the cache
    already holds the kernels, it is :func:`warm`: a load here."""
    dtypes = [np.dtype(d) for d in dtypes]
    if all(backend.is_warm(d, spec=spec) for d in dtypes) or kernels_cached(dtypes, spec):
        return warm(backend, dtypes, spec)
    try:
        child = _run_compile_process([run_token(d, spec) for d in dtypes], os.environ, niceness=BACKGROUND_NICENESS)
    except CompileEnded:
        raise
    except BackendError:
        return warm(backend, dtypes, spec)  # the child failed: compile here, as warm() would
    here = warm(backend, dtypes, spec)
    return CompileTime(", ".join(map(str, dtypes)), sum(c.ms for c in child) + here.ms, COMPILED)


class CompileEnded(BackendError):
    """A compile process was ended by :func:`end_compile_processes`."""


def end_compile_processes() -> None:
    """End every compile process this module started and still waits for (a front end quitting): the warm-ups
    waiting for them raise :class:`CompileEnded` instead of compiling here."""
    with _children_lock:
        for child in _children:
            _ended.add(child.pid)
            child.kill()


def combined(first: CompileTime | None, then: CompileTime) -> CompileTime:
    """Two warm-ups of one process as one figure (``first`` may be None: nothing yet)."""
    if first is None or then.source == IN_MEMORY:
        return first or then
    if first.source == IN_MEMORY:
        return then
    source = first.source if first.source == then.source else f"mixed ({COMPILED} and {CACHED})"
    return CompileTime(f"{first.dtype}, {then.dtype}", first.ms + then.ms, source)


def compile_in_process(dtype: str | np.dtype, spec: PreprocessSpec | None = None) -> CompileTime:
    """Warm the Numba backend for ``dtype`` (a dtype, or a :func:`run_token`) and ``spec`` in this process; say whether
    Numba compiled or loaded its cache."""
    if isinstance(dtype, str) and ":" in dtype:
        dtype, spec = _from_token(dtype)
    return warm(get_backend("numba"), [dtype], spec)


def run_token(dtype: str | np.dtype, spec: PreprocessSpec | None = None) -> str:
    """What a warm-up compiles, as one word for a fresh process's command line: the dtype, then with a ``spec`` the
    kinds of its stages that change the kernels (":preset" or ":own" window, ":plain" without equalize)."""
    name = np.dtype(dtype).name
    if spec is None:
        return name
    return f"{name}:{'own' if spec.window_center is None else 'preset'}" + ("" if spec.equalize else ":plain")


def _from_token(token: str) -> tuple[str, PreprocessSpec | None]:
    from radbench.inference.preprocessing import PreprocessSpec

    dtype, *kinds = token.split(":")
    if not kinds:
        return dtype, None
    window = (None, None) if "own" in kinds else (1.0, 1.0)
    return dtype, PreprocessSpec(1.0, 0.0, *window, False, (1, 1), (0.0,), (1.0,), 1, "plain" not in kinds)


def needed_kernels(dtype: str | np.dtype, spec: PreprocessSpec | None = None) -> dict[str, str]:
    """The numba backend's kernels a warm-up for ``dtype`` (and ``spec``) compiles, each with the dtype of its first
    argument in that signature: ``rescale`` is the only stage typed by the raw dtype; every later stage reads float32
    (the finite checks its bits as uint32, the window's extremes as int32 and uint32)."""
    dtype = np.dtype(dtype)
    equalize = spec is None or spec.equalize
    stage = "radbench.inference.backends.numba_jit.stages."
    raw = np.float32 if dtype.kind == "f" and dtype.itemsize == 2 else dtype.newbyteorder("=")
    needed = {f"{stage}_rescale": np.dtype(raw).name, "radbench.inference.backends.numba_jit.inputs._exponent_max":
              "uint32", f"{stage}_bit_ranges": "int32", f"{stage}_window": "float32",
              f"{stage}_resample_columns": "float32", f"{stage}_resample_rows": "float64",
              f"{stage}_normalize": "float32"}
    if equalize:
        needed.update({f"{stage}_histogram": "float32", f"{stage}_equalize": "float32"})
    return needed


def kernels_cached(dtypes: Iterable[str | np.dtype] = (_TYPICAL_DTYPE,), spec: PreprocessSpec | None = None) -> bool:
    """Whether Numba's on-disk cache holds, for the kernels' current source, every kernel a warm-up for ``dtypes``
    (and ``spec``) needs, so that it is expected to load rather than compile."""
    return not missing_kernels(dtypes, spec)


def missing_kernels(dtypes: Iterable[str | np.dtype] = (_TYPICAL_DTYPE,),
                    spec: PreprocessSpec | None = None) -> set[tuple[str, str]]:
    """``(kernel, dtype of its first argument)`` of each kernel a warm-up for ``dtypes`` (and ``spec``) needs that
    Numba's on-disk cache lacks for the kernels' current source (read from its index files: one entry per compiled
    signature, keyed by the argument types). Where the index cannot be read, every kernel counts as missing."""
    wanted = {(name, first) for dtype in dtypes for name, first in needed_kernels(dtype, spec).items()}
    try:
        kernels = numba_kernels()
        cached = {name: {_first_dtype(key) for key in kernels[name]._cache._cache_file._load_index()}
                  for name in {name for name, _ in wanted}}
    except (AttributeError, KeyError, OSError, EOFError, ValueError, TypeError, IndexError):
        return wanted  # Numba's private layout changed, or an unreadable index
    return {(name, first) for name, first in wanted if first not in cached[name]}


def _first_dtype(key) -> str:
    """The dtype of the first argument of a cache index key ``((argument types...), magic, hashes)``."""
    return str(key[0][0].dtype)


def compile_estimate_s(dtypes: int | Iterable[str | np.dtype] = 1, spec: PreprocessSpec | None = None) -> float | None:
    """About how many seconds warming Numba up for ``dtypes`` (a count, or the dtypes themselves) will take if it
    compiles, or None when a load from the on-disk cache is expected instead (under a second or two). Only rescale's
    kernel missing (a new dtype after others were compiled): :data:`NEXT_DTYPE_COMPILE_S` per dtype."""
    named = [_TYPICAL_DTYPE] if isinstance(dtypes, int) else [np.dtype(d).name for d in dtypes]
    count = dtypes if isinstance(dtypes, int) else len(named)
    missing = missing_kernels(named, spec)
    if not missing:
        return None
    if all(name.endswith("._rescale") for name, _ in missing):
        return NEXT_DTYPE_COMPILE_S * len(missing)
    return FIRST_DTYPE_COMPILE_S + NEXT_DTYPE_COMPILE_S * max(0, count - 1)


def first_use_message(dtypes: int | Iterable[str | np.dtype] = 1, spec: PreprocessSpec | None = None) -> str | None:
    """What to say before a warm-up for ``dtypes`` (a count, or the dtypes) that is expected to compile: "compiling
    Numba kernels (first use, about 4 s)…"; None when a cache load is expected."""
    seconds = compile_estimate_s(dtypes, spec)
    return None if seconds is None else f"compiling Numba kernels (first use, about {max(1, round(seconds))} s)…"


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


def numba_kernels() -> dict[str, object]:
    """The numba backend's dispatchers by qualified name, the fused path's included."""
    from radbench.inference.backends import numba_jit

    return numba_jit.kernels(fused=True)


def _cache_counts() -> tuple[int, int]:
    kernels = numba_kernels().values()
    return (sum(sum(k.stats.cache_hits.values()) for k in kernels),
            sum(sum(k.stats.cache_misses.values()) for k in kernels))


def _fresh_compile(dtypes: Sequence[str], cache: str) -> tuple[CompileTime, ...]:
    return _run_compile_process(dtypes, {**os.environ, "NUMBA_CACHE_DIR": cache})


_children: set[subprocess.Popen] = set()  # compile processes running, for end_compile_processes()
_children_lock = threading.Lock()
_ended: set[int] = set()  # the ids of the processes end_compile_processes() ended


def _run_compile_process(dtypes: Sequence[str], env: Mapping[str, str], niceness: int = 0) -> tuple[CompileTime, ...]:
    """:func:`compile_in_process` of each dtype (or :func:`run_token`) in a fresh process with ``env``, ``niceness``
    lower in priority than this one (where the platform allows it)."""
    with _children_lock:
        child = subprocess.Popen([sys.executable, "-m", "radbench.inference.benchmarking.numba_compile", *dtypes],
                                 env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if niceness and hasattr(os, "setpriority"):  # set from here: a preexec_fn is unsafe in a threaded program
            with contextlib.suppress(OSError):  # ended already, or not allowed: it compiles at our priority
                os.setpriority(os.PRIO_PROCESS, child.pid, os.getpriority(os.PRIO_PROCESS, 0) + niceness)
        _children.add(child)
    try:
        stdout, stderr = child.communicate()
    finally:
        with _children_lock:
            _children.discard(child)
            ended = child.pid in _ended
            _ended.discard(child.pid)
    if ended:
        raise CompileEnded("Numba warm-up stopped: its compile process was ended")
    if child.returncode != 0:
        last = (stderr.strip().splitlines() or [f"ended by signal {-child.returncode}" if child.returncode < 0
                                                 else "no output"])[-1]
        raise BackendError(f"Numba warm-up in a fresh process failed: {last}")
    return tuple(CompileTime(**c) for c in json.loads(stdout.strip().splitlines()[-1]))


if __name__ == "__main__":
    print(json.dumps([asdict(compile_in_process(dtype)) for dtype in sys.argv[1:]]))
