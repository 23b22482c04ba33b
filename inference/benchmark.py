"""Benchmark the preprocessing backends and a library reference stage by stage, plus Numba's compile time and
ONNX Runtime's latency.

Each file is decoded once; its default frame goes through the five compute stages exactly as
:func:`inference.pipeline.preprocess` runs them for the model card. Backends run interleaved (round r:
every backend in the order given, then round r + 1) so machine drift hits all alike; warm-up rounds come
first and are not timed into the statistics. ``preprocess_total`` is the sum of the five stages per run,
summarised over runs (so its median is not the sum of the stage medians). The naive backend runs fewer
repeats, without warm-up, on frames over :data:`LARGE_FRAME_PIXELS`.

Numba's compile is measured apart: in this process (a real compile or a load from its on-disk cache, told
apart by Numba's own cache counters) and, optionally, in two fresh processes sharing an empty
``NUMBA_CACHE_DIR`` (the first compiles, the second loads what it cached). ONNX Runtime sessions are made
with spinning disabled, so their idle threads do not steal the cores of a parallel Numba kernel.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from radbench.inference import reference_pipeline
from radbench.inference.atomic_file import write_atomically
from radbench.inference.backends import BACKEND_NAMES, Backend, fused_numba, get_backend
from radbench.inference.errors import BackendError, NotAScanError, RadBenchError, ScanError
from radbench.inference.loading import load_scan
from radbench.inference.model import Model, ModelCard
from radbench.inference.pipeline import model_window, preprocess
from radbench.inference.scan import Scan
from radbench.inference.timing import StageClock, Timings

TOTAL_STAGE = "preprocess_total"
INFER_STAGE = "infer"
REFERENCE = reference_pipeline.NAME
#: Numba's fused path (window + equalize + resize + normalize in two passes), timed as one stage "fused".
FUSED = "numba-fused"
DEFAULT_BACKENDS = (*BACKEND_NAMES, REFERENCE)
KNOWN_BACKENDS = (*BACKEND_NAMES, FUSED, REFERENCE)  # the fused path is an option: --backends ...,numba-fused
SPEEDUP_BASELINES = ("naive", "vectorized", REFERENCE)
YARDSTICK = "vectorized"  # every tensor is compared with this backend's

#: Frames larger than this make the naive backend run :data:`LARGE_NAIVE_REPEATS` repeats, without warm-up.
LARGE_FRAME_PIXELS = 1_000_000
LARGE_NAIVE_REPEATS = 3

#: ONNX Runtime intra-op thread counts timed, and the session settings used for every benchmark session.
ORT_THREADS = (1, 2)
ORT_CONFIG = {"session.intra_op.allow_spinning": "0", "session.inter_op.allow_spinning": "0"}


PACKAGES = ("numpy", "numba", "onnxruntime", "pydicom", "scikit-image")
_FRESH_COMPILE_SCRIPT = ("import json, sys; from dataclasses import asdict; "
                         "from radbench.inference.benchmark import compile_in_process; "
                         "print(json.dumps([asdict(compile_in_process(d)) for d in sys.argv[1:]]))")


@dataclass(frozen=True)
class Record:
    """Statistics of one (file, backend, stage) over its timed repeats, in milliseconds."""

    file: str
    backend: str
    stage: str
    median_ms: float
    p90_ms: float
    min_ms: float
    repeats: int

    @classmethod
    def of(cls, file: str, backend: str, stage: str, samples_ms: Sequence[float]) -> Record:
        values = np.asarray(samples_ms, dtype=np.float64)
        return cls(file, backend, stage, float(np.median(values)), float(np.percentile(values, 90)),
                   float(values.min()), len(values))


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


@dataclass(frozen=True)
class Speedup:
    """``ratio = baseline median / backend median``: above 1 the backend is faster than the baseline."""

    backend: str
    baseline: str
    stage: str
    ratio: float


@dataclass(frozen=True)
class FileBench:
    """Everything timed on one file's default frame."""

    file: str
    shape: tuple[int, int]
    dtype: str
    frame: int
    frame_count: int
    records: tuple[Record, ...]  # one per (backend, stage) incl. preprocess_total, backends in the order given
    run_order: tuple[Run, ...]
    notes: tuple[str, ...]
    max_abs_diff: Mapping[str, float]  # each backend's model input vs the vectorized backend's
    tensor: np.ndarray = field(repr=False)  # the vectorized backend's model input
    latency: tuple[Record, ...] = ()  # ONNX Runtime on ``tensor``, filled in by :func:`run_benchmark`

    @property
    def backends(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.backend for r in self.records))

    @property
    def stages(self) -> tuple[str, ...]:
        """Every stage timed (a fused path's one stage included), the preprocessing total last."""
        stages = dict.fromkeys(r.stage for r in self.records if r.stage != TOTAL_STAGE)
        return (*stages, TOTAL_STAGE)

    def record(self, backend: str, stage: str) -> Record:
        return next(r for r in self.records if r.backend == backend and r.stage == stage)


@dataclass(frozen=True)
class FileError:
    file: str
    reason: str
    skipped: bool  # readable but not a scan (a README, a DICOMDIR): reported, not a failure

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}"


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


@dataclass(frozen=True)
class Benchmark:
    files: tuple[FileBench, ...]
    errors: tuple[FileError, ...]
    compile: CompileReport
    environment: Mapping[str, object]
    memory: tuple = ()  # inference.memory_bench.MemoryPeak per (file, backend), when measured

    @property
    def records(self) -> tuple[Record, ...]:
        return tuple(r for f in self.files for r in f.records + f.latency)

    def as_json(self) -> dict:
        return {
            "environment": dict(self.environment),
            "compile": self.compile.as_dict(),
            "records": [asdict(r) for r in self.records],
            "files": [{"file": f.file, "shape": list(f.shape), "dtype": f.dtype, "frame": f.frame,
                       "frames": f.frame_count, "notes": list(f.notes),
                       "max_abs_diff_vs_vectorized": dict(f.max_abs_diff)} for f in self.files],
            "errors": [{"file": e.file, "reason": e.reason, "skipped": e.skipped} for e in self.errors],
            "memory": [{**asdict(m), "ratio": round(m.ratio, 3)} for m in self.memory],
        }


def stage_backend(name: str) -> Backend:
    """A registered backend by name, or the (unregistered) library reference."""
    return reference_pipeline.as_backend() if name == REFERENCE else get_backend(name)


def schedule(backend: str, pixels: int, repeats: int, warmup: int) -> Schedule:
    """Warm-ups and repeats for ``backend`` on a frame of ``pixels``: naive is capped on large frames."""
    if backend == "naive" and pixels > LARGE_FRAME_PIXELS and repeats > LARGE_NAIVE_REPEATS:
        return Schedule(0, LARGE_NAIVE_REPEATS, f"naive ran {LARGE_NAIVE_REPEATS} repeats without warm-up "
                                                f"(frame has {pixels / 1e6:.1f} Mpx > {LARGE_FRAME_PIXELS / 1e6:g} Mpx)")
    return Schedule(warmup, repeats)


def run_order(schedules: Mapping[str, Schedule]) -> tuple[Run, ...]:
    """Interleaved rounds: warm-up rounds first, then timed rounds, each round every backend in order."""
    warmup = max(s.warmup for s in schedules.values())
    rounds = warmup + max(s.repeats for s in schedules.values())
    return tuple(Run(r, name, r < warmup) for r in range(rounds) for name, s in schedules.items()
                 if warmup - s.warmup <= r < warmup + s.repeats)


def bench_file(scan: Scan, card: ModelCard, *, backends: Sequence[str] = DEFAULT_BACKENDS, repeats: int = 10,
               warmup: int = 1) -> FileBench:
    """Time the five compute stages of every backend on the scan's default frame (Numba compiled beforehand)."""
    _check_counts(repeats, warmup)
    image = scan.grey_frame()
    chosen = {name: stage_backend(name) for name in backends if name != FUSED}
    for backend in chosen.values():
        backend.warm_up(image.dtype)
    if FUSED in backends:
        fused_numba.warm_up(image.dtype)
    schedules = {name: schedule(name, image.size, repeats, warmup) for name in backends}
    order = run_order(schedules)
    timings: dict[str, list[Timings]] = {name: [] for name in backends}
    tensors: dict[str, np.ndarray] = {}
    for run in order:
        run_timings, tensors[run.backend] = (_time_fused(scan, image, card) if run.backend == FUSED
                                             else _time_once(scan, image, chosen[run.backend], card))
        if not run.warmup:
            timings[run.backend].append(run_timings)
    file = str(scan.path)
    yardstick = preprocess(scan, image, get_backend(YARDSTICK), *_card_args(card), equalize=card.equalize)
    return FileBench(
        file=file,
        shape=image.shape,
        dtype=str(image.dtype),
        frame=scan.default_frame,
        frame_count=scan.frame_count,
        records=tuple(r for name, runs in timings.items() for r in _records(file, name, runs)),
        run_order=order,
        notes=tuple(s.note for s in schedules.values() if s.note),
        max_abs_diff={name: float(np.abs(tensors[name] - yardstick).max()) for name in backends},
        tensor=yardstick,
    )


def speedups(bench: FileBench, stage: str = TOTAL_STAGE,
             baselines: Iterable[str] = SPEEDUP_BASELINES) -> tuple[Speedup, ...]:
    """Each backend's speedup over each baseline present on ``stage``, from the medians."""
    present = [b for b in baselines if b in bench.backends]
    return tuple(Speedup(name, base, stage, bench.record(base, stage).median_ms / bench.record(name, stage).median_ms)
                 for name in bench.backends for base in present if base != name)


def compile_in_process(dtype: str | np.dtype) -> CompileTime:
    """Warm the Numba backend for ``dtype`` in this process; say whether Numba compiled or loaded its cache."""
    backend = get_backend("numba")
    before = _cache_counts()
    seconds = backend.warm_up(np.dtype(dtype))
    hits, misses = (after - was for after, was in zip(_cache_counts(), before))
    if misses and hits:
        source = f"mixed ({hits} kernels loaded from on-disk cache, {misses} compiled)"
    else:
        source = "compiled" if misses else "loaded from on-disk cache" if hits else "already in memory"
    return CompileTime(str(np.dtype(dtype)), seconds * 1e3, source)


def compile_in_fresh_processes(dtypes: Sequence[str]) -> tuple[tuple[CompileTime, ...], tuple[CompileTime, ...]]:
    """Numba's warm-up in a new process with an empty cache folder, then in another reusing that cache."""
    with tempfile.TemporaryDirectory(prefix="radbench-numba-cache-") as cache:
        return _fresh_compile(dtypes, cache), _fresh_compile(dtypes, cache)


def ort_sessions(model_path: str | Path, threads: Iterable[int] = ORT_THREADS) -> dict[str, object]:
    """ONNX Runtime CPU sessions named ``onnxruntime-<n>thread(s)``, spinning disabled (see :data:`ORT_CONFIG`)."""
    import onnxruntime as ort

    sessions = {}
    for count in threads:
        options = ort.SessionOptions()
        options.intra_op_num_threads = count
        options.inter_op_num_threads = 1
        for key, value in ORT_CONFIG.items():
            options.add_session_config_entry(key, value)
        name = f"onnxruntime-{count}thread{'s' if count > 1 else ''}"
        sessions[name] = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    return sessions


def infer_latency(sessions: Mapping[str, object], tensor: np.ndarray, file: str, *, repeats: int = 10,
                  warmup: int = 1) -> tuple[Record, ...]:
    """Per-image inference time at batch 1 for each session, sessions interleaved like the backends."""
    _check_counts(repeats, warmup)
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


def environment(ort_threads: Iterable[int] = ORT_THREADS) -> dict[str, object]:
    """CPU, versions and thread settings: the stamp every benchmark result is printed with."""
    import numba

    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = "not initialised (no parallel kernel ran)"
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        **{package: _version(package) for package in PACKAGES},
        "NUMBA_NUM_THREADS": os.environ.get("NUMBA_NUM_THREADS", "unset"),
        "numba_config_threads": numba.config.NUMBA_NUM_THREADS,
        "numba_get_num_threads": numba.get_num_threads(),
        "numba_threading_layer": layer,
        "onnxruntime_sessions": {"provider": "CPUExecutionProvider", "intra_op_threads": list(ort_threads),
                                 "inter_op_threads": 1, "execution_mode": "sequential", **ORT_CONFIG},
    }


def run_benchmark(paths: Iterable[str | Path], *, backends: Sequence[str] = DEFAULT_BACKENDS, repeats: int = 10,
                  warmup: int = 1, fresh_compile: bool = True, model: Model | None = None,
                  report: Callable[[FileBench | FileError], None] | None = None) -> Benchmark:
    """Benchmark every file; a file that cannot be read becomes a :class:`FileError` and the others go on.

    ``report`` is called with each file's result as soon as it is known. Raises ``ModelError`` if the
    model is unusable and ``ValueError`` for bad counts or backend names.
    """
    _check_counts(repeats, warmup)
    unknown = [b for b in backends if b not in KNOWN_BACKENDS]
    if unknown or not backends:
        raise ValueError(f"backends must be among {', '.join(KNOWN_BACKENDS)}; got {', '.join(backends) or 'none'}")
    model = model or Model()
    sessions = ort_sessions(model.path)
    files, errors, compiled = [], [], {}
    for path in paths:
        try:
            scan = load_scan(path)
            dtype = str(scan.grey_frame().dtype)
            if "numba" in backends and dtype not in compiled:
                compiled[dtype] = compile_in_process(dtype)
            result = bench_file(scan, model.card, backends=backends, repeats=repeats, warmup=warmup)
            result = replace(result, latency=infer_latency(sessions, result.tensor, result.file, repeats=repeats,
                                                           warmup=warmup))
            files.append(result)
        except (RadBenchError, OSError, ValueError) as exc:
            result = _file_error(path, exc)
            errors.append(result)
        if report is not None:
            report(result)
    return Benchmark(tuple(files), tuple(errors), _compile_report(compiled, fresh_compile),
                     environment())


def write_json(benchmark: Benchmark, path: str | Path) -> None:
    """The benchmark as JSON, written atomically (a temporary file in the same folder, then a rename)."""
    write_atomically(path, lambda file: json.dump(benchmark.as_json(), file, indent=1))


def _check_counts(repeats: int, warmup: int) -> None:
    if repeats < 1 or warmup < 0:
        raise ValueError("repeats must be at least 1 and warm-up runs at least 0")


def _card_args(card: ModelCard) -> tuple:
    return (card.input_height, card.input_width), card.mean, card.std, card.input_channels


def _time_once(scan: Scan, image: np.ndarray, backend: Backend, card: ModelCard) -> tuple[Timings, np.ndarray]:
    clock = StageClock()

    def stage(name: str, *args):
        function = backend.stage(name)
        with clock.stage(name):
            return function(*args)

    tensor = preprocess(scan, image, backend, *_card_args(card), equalize=card.equalize, stage=stage)
    return clock.timings(), tensor


def _time_fused(scan: Scan, image: np.ndarray, card: ModelCard) -> tuple[Timings, np.ndarray]:
    if not card.equalize:
        raise ValueError(f"{FUSED} always equalizes; this model's card turns equalization off")
    clock = StageClock()
    (height, width), mean, std, channels = _card_args(card)
    with clock.stage("fused"):
        tensor = fused_numba.fused_preprocess(image, scan.rescale_slope, scan.rescale_intercept, *model_window(scan),
                                              scan.inverted, height, width, mean, std, channels)
    return clock.timings(), tensor


def _records(file: str, backend: str, runs: list[Timings]) -> list[Record]:
    stages = [name for name, _ in runs[0].stages]
    records = [Record.of(file, backend, s, [t.ms(s) for t in runs]) for s in stages]
    return records + [Record.of(file, backend, TOTAL_STAGE, [t.total_ms for t in runs])]


def _file_error(path: str | Path, exc: Exception) -> FileError:
    if isinstance(exc, ScanError):
        return FileError(str(exc.path), exc.reason, isinstance(exc, NotAScanError))
    return FileError(str(path), str(exc) or type(exc).__name__, False)


def _cache_counts() -> tuple[int, int]:
    from numba.core.dispatcher import Dispatcher

    from radbench.inference.backends import numba_jit

    kernels = [k for k in vars(numba_jit).values() if isinstance(k, Dispatcher)]
    return (sum(sum(k.stats.cache_hits.values()) for k in kernels),
            sum(sum(k.stats.cache_misses.values()) for k in kernels))


def _fresh_compile(dtypes: Sequence[str], cache: str) -> tuple[CompileTime, ...]:
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "NUMBA_CACHE_DIR": cache,
           "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    result = subprocess.run([sys.executable, "-c", _FRESH_COMPILE_SCRIPT, *dtypes], env=env, capture_output=True,
                            text=True, check=False)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise BackendError(f"Numba warm-up in a fresh process failed: {last}")
    return tuple(CompileTime(**c) for c in json.loads(result.stdout.strip().splitlines()[-1]))


def _compile_report(in_process: Mapping[str, CompileTime], fresh: bool) -> CompileReport:
    if not fresh or not in_process:
        return CompileReport(tuple(in_process.values()))
    try:
        cold, cached = compile_in_fresh_processes(list(in_process))
    except BackendError as exc:
        return CompileReport(tuple(in_process.values()), fresh_error=str(exc))
    return CompileReport(tuple(in_process.values()), cold, cached)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"
