"""``radbench bench`` over many files: each file's stages (:mod:`.file_bench`), ONNX Runtime's latency on its model
input (:mod:`.onnx_latency`), Numba's compile (:mod:`.numba_compile`) and the environment stamp, as one result that
can be written as JSON. Each file is decoded once; a file that cannot be read is reported and the others go on.

With thread counts (``radbench bench --threads 1,2``) each file is timed once per count, Numba's kernels on that many
threads (:func:`inference.threads.compute_threads`): the first pass, at the lowest count, times every backend; each
further pass times only Numba's backends (numba, numba-fused), since the others do not use Numba's threads. The
optimization ladder (:func:`ladder`) then shows each gain on its own rung: vectorizing (naive -> vectorized),
JIT-compiling (vectorized -> numba, at the lowest count) and parallelizing (numba at the lowest count -> each
further count)."""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from radbench.inference.atomic_file import write_atomically
from radbench.inference.benchmarking.environment import environment, load_average
from radbench.inference.benchmarking.file_bench import (
    DEFAULT_BACKENDS,
    FUSED,
    KNOWN_BACKENDS,
    TOTAL_STAGE,
    FileBench,
    bench_file,
)
from radbench.inference.benchmarking.memory import MemoryPeak
from radbench.inference.benchmarking.numba_compile import (
    CompileReport,
    compile_in_process,
    compile_report,
    run_token,
)
from radbench.inference.benchmarking.onnx_latency import ORT_THREADS, infer_latency, ort_sessions
from radbench.inference.benchmarking.records import Record
from radbench.inference.benchmarking.schedule import check_counts
from radbench.inference.errors import NotAScanError, RadBenchError, ScanError
from radbench.inference.loading import decode_threads, load_scan
from radbench.inference.machine import usable_cpus
from radbench.inference.model import NOT_FOR_CLINICAL_USE, Model
from radbench.inference.preprocessing import PreprocessSpec
from radbench.inference.threads import check_threads, compute_threads, thread_limit

#: The backends that run on Numba's threads: timed again at each further thread count.
NUMBA_BACKENDS = ("numba", FUSED)


@dataclass(frozen=True)
class FileError:
    file: str
    reason: str
    skipped: bool  # readable but not a scan (a README, a DICOMDIR): reported, not a failure

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}"


@dataclass(frozen=True)
class ThreadPass:
    """Numba's backends timed again on one file, Numba's kernels on ``threads`` threads."""

    threads: int
    bench: FileBench
    load_average: float | None = None  # of the last minute, read as the pass ended (None: not on this system)
    #: How many of Numba's kernel calls in this pass ran on how many threads: a kernel runs on fewer than set when its
    #: image is small or other processes hold CPUs (:func:`inference.backends.numba_jit.inputs.threads_for`).
    kernel_threads: Mapping[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class FileResult:
    """One file: ``bench`` times every backend with Numba's kernels on ``threads`` threads (ONNX Runtime's latency
    included); ``more`` times Numba's backends again at each further thread count, in increasing order."""

    bench: FileBench
    threads: int
    more: tuple[ThreadPass, ...] = ()
    latency_threads: Mapping[str, int] = field(default_factory=dict)  # latency session name -> intra-op threads
    kernel_threads: Mapping[int, int] = field(default_factory=dict)  # of the first pass, as in :class:`ThreadPass`
    decode: Record | None = None  # loading the file (decoder named as the record's backend), repeated
    decoder_threads: int = 1  # the threads that decoder ran on

    @property
    def file(self) -> str:
        return self.bench.file

    def passes(self) -> tuple[ThreadPass, ...]:
        """Every pass, the first (every backend) included."""
        return (ThreadPass(self.threads, self.bench, kernel_threads=self.kernel_threads), *self.more)

    def record_dicts(self) -> list[dict]:
        """Every record as JSON, each with the ``threads`` it ran on: Numba's threads during its pass (only numba and
        numba-fused use them), or the intra-op threads of an ONNX Runtime latency session."""
        rows = [{**asdict(r), "threads": p.threads} for p in self.passes() for r in p.bench.records]
        return rows + [{**asdict(r), "threads": self.latency_threads.get(r.backend)} for r in self.bench.latency]


@dataclass(frozen=True)
class Gain:
    """``before`` median / ``after`` median on one stage: above 1, ``after`` is faster."""

    stage: str
    before_ms: float
    after_ms: float
    within_noise: bool = False  # the two p10-p90 ranges overlap (:meth:`.records.Record.overlaps`)

    @property
    def ratio(self) -> float:
        return self.before_ms / self.after_ms


@dataclass(frozen=True)
class Rung:
    """One step of the optimization ladder: what changed from ``before`` to ``after``, and by how much per stage
    (``gains``: the preprocessing total first, then every stage both timed)."""

    name: str  # "vectorize", "JIT-compile", "parallelize"
    before: str
    after: str
    gains: tuple[Gain, ...]
    note: str = ""  # what else changed on this rung, if anything

    @property
    def total(self) -> Gain:
        return self.gains[0]


@dataclass(frozen=True)
class Benchmark:
    results: tuple[FileResult, ...]
    errors: tuple[FileError, ...]
    compile: CompileReport
    environment: Mapping[str, object]
    memory: tuple[MemoryPeak, ...] = ()  # per (file, backend), when measured
    threads: tuple[int, ...] = ()  # the Numba thread count of each pass, lowest first

    @property
    def files(self) -> tuple[FileBench, ...]:
        """Each file's first pass: every backend."""
        return tuple(r.bench for r in self.results)

    @property
    def records(self) -> tuple[Record, ...]:
        return tuple(r for f in self.results for p in f.passes() for r in p.bench.records) + tuple(
            r for f in self.files for r in f.latency)

    def as_json(self) -> dict:
        return {
            "notice": NOT_FOR_CLINICAL_USE,
            "environment": dict(self.environment),
            "compile": self.compile.as_dict(),
            "threads": list(self.threads),
            "records": [row for f in self.results for row in f.record_dicts()],
            "files": [{"file": r.file, "shape": list(r.bench.shape), "dtype": r.bench.dtype, "frame": r.bench.frame,
                       "frames": r.bench.frame_count, "notes": list(r.bench.notes),
                       "max_abs_diff_vs_vectorized": dict(r.bench.max_abs_diff), **_label_dict(r.bench),
                       "decode": _decode_dict(r)} for r in self.results],
            "passes": [{"file": f.file, "threads": p.threads, "backends": list(p.bench.backends),
                        "kernel_calls_by_threads": {str(n): calls for n, calls in sorted(p.kernel_threads.items())}}
                       for f in self.results for p in f.passes()],
            "ladder": [{"file": f.file, "rungs": [_rung_dict(r) for r in ladder(f)]} for f in self.results],
            "errors": [{"file": e.file, "reason": e.reason, "skipped": e.skipped} for e in self.errors],
            "memory": [{**asdict(m), "ratio": round(m.ratio, 3)} for m in self.memory],
        }


def _label_dict(bench: FileBench) -> dict:
    """The backends' labels (``None`` where withheld, with the reason), and whether they all agree."""
    return {"labels": None if bench.withheld else dict(bench.labels), "label_withheld": bench.withheld,
            "labels_agree": len(set(bench.labels.values())) <= 1}


def run_benchmark(paths: Iterable[str | Path], *, backends: Sequence[str] = DEFAULT_BACKENDS, repeats: int = 10,
                  warmup: int = 1, fresh_compile: bool = True, model: Model | None = None,
                  threads: Sequence[int] | None = None, decoder: str | None = None,
                  report: Callable[[FileResult | FileError], None] | None = None) -> Benchmark:
    """Benchmark every file; a file that cannot be read becomes a :class:`FileError` and the others go on.

    ``threads``: the Numba thread counts to time (see the module), also the intra-op threads of the ONNX Runtime
    latency sessions; None: one pass at the defaults (Numba's ``NUMBA_NUM_THREADS``), latency at
    :data:`~.onnx_latency.ORT_THREADS`. Each file is loaded ``repeats`` times more to time its decoding (``decoder``:
    that one, else the default; on the first thread count, or the free CPUs without one). ``report`` is called with
    each file's result as soon as it is known. Raises
    ``ModelError`` if the model is unusable, ``ThreadsError`` for a thread count Numba cannot run and ``ValueError``
    for bad counts or backend names.
    """
    check_counts(repeats, warmup)
    before = load_average()
    unknown = [b for b in backends if b not in KNOWN_BACKENDS]
    if unknown or not backends:
        raise ValueError(f"backends must be among {', '.join(KNOWN_BACKENDS)}; got {', '.join(backends) or 'none'}")
    counts = tuple(sorted({check_threads(count) for count in threads})) if threads else ()
    first = counts[0] if counts else thread_limit()
    ort_counts = counts or ORT_THREADS
    model = model or Model()
    sessions = ort_sessions(model.path, ort_counts)
    latency_threads = dict(zip(sessions, ort_counts))
    again = [b for b in backends if b in NUMBA_BACKENDS]
    results, errors, compiled = [], [], {}
    for path in paths:
        try:
            with decode_threads(counts[0] if counts else None):
                scan = load_scan(path, decoder=decoder)
                decode = _decode_record(path, decoder, scan.decoder, repeats)
            dtype = str(scan.grey_frame().dtype)
            spec = PreprocessSpec.from_card(model.card, scan)
            if "numba" in backends and run_token(dtype, spec) not in compiled:  # what this file's run compiles
                compiled[run_token(dtype, spec)] = compile_in_process(dtype, spec)
            with compute_threads(counts[0] if counts else None), _kernel_calls() as calls:
                bench = bench_file(scan, model.card, backends=backends, repeats=repeats, warmup=warmup,
                                   classify=model.label)
            bench = replace(bench, latency=infer_latency(sessions, bench.tensor, bench.file, repeats=repeats,
                                                         warmup=warmup))
            more = []
            for count in counts[1:] if again else ():
                with compute_threads(count), _kernel_calls() as more_calls:
                    timed = bench_file(scan, model.card, backends=again, repeats=repeats, warmup=warmup)
                more.append(ThreadPass(count, timed, _load_average(), dict(more_calls)))
            result = FileResult(bench, first, tuple(more), latency_threads, dict(calls), decode, scan.decoder_threads)
            results.append(result)
        except (RadBenchError, OSError, ValueError) as exc:
            result = _file_error(path, exc)
            errors.append(result)
        if report is not None:
            report(result)
    env = {**environment(ort_counts), "numba_threads_timed": list(counts or (first,)),
           "threads_option": list(counts) or None, "load_average": [before, load_average()]}
    return Benchmark(tuple(results), tuple(errors), compile_report(compiled, fresh_compile), env,
                     threads=counts or (first,))


def _decode_record(path: str | Path, decoder: str | None, name: str, repeats: int) -> Record:
    """Loading ``path`` ``repeats`` more times, as the first load did: a :class:`Record` of stage "decode" whose backend
    is the decoder's name."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        load_scan(path, decoder=decoder)
        samples.append((time.perf_counter() - start) * 1e3)
    return Record.of(str(path), name, "decode", samples)


def _decode_dict(result: FileResult) -> dict | None:
    if result.decode is None:
        return None
    return {"decoder": result.decode.backend, "threads": result.decoder_threads,
            **{k: v for k, v in asdict(result.decode).items() if k.endswith("_ms") or k == "repeats"}}


def ladder(result: FileResult, stage: str = TOTAL_STAGE) -> tuple[Rung, ...]:
    """The optimization ladder of one file, each gain on its own rung, from the medians: vectorize (naive ->
    vectorized), JIT-compile (vectorized -> numba, Numba on the first pass's threads) and parallelize (numba, and
    numba-fused, from the first pass's thread count to each further one). A rung needs both its ends timed."""
    first = result.bench
    rungs = []
    if {"naive", "vectorized"} <= set(first.backends):
        rungs.append(Rung("vectorize", "naive", "vectorized", _gains(first, "naive", first, "vectorized", stage)))
    if {"vectorized", "numba"} <= set(first.backends):
        note = ""
        if result.threads > 1 and _widest(result.kernel_threads) > 1:
            note = (f"numba ran on {_threads(result.threads)}: JIT and parallel gains together (--threads 1,N "
                    "separates them)")
        elif result.threads > 1 and result.kernel_threads:
            note = (f"numba was set to {_threads(result.threads)}, but every kernel call ran on 1 (a small image, or "
                    "other processes holding CPUs): the JIT gain alone")
        rungs.append(Rung("JIT-compile", "vectorized", f"numba ({_threads(result.threads)})",
                          _gains(first, "vectorized", first, "numba", stage), note))
    for p in result.more:
        for backend in (b for b in NUMBA_BACKENDS if b in p.bench.backends):
            gains = _gains(first, backend, p.bench, backend, stage)
            if p.kernel_threads and _widest(p.kernel_threads) <= _widest(result.kernel_threads):
                notes = [f"no kernel call ran on more threads than in the {result.threads}-thread pass (a small "
                         "image, or other processes holding CPUs): this ratio is run-to-run noise, not a parallel "
                         "gain"]
            else:
                notes = [_fewer(p), _contention(p) if gains[0].ratio < 1 else ""]
            note = "; ".join(n for n in notes if n)
            rungs.append(Rung("parallelize", f"{backend} ({_threads(result.threads)})", f"{_threads(p.threads)}",
                              gains, note))
    return tuple(rungs)


def _contention(p: ThreadPass) -> str:
    """Why more threads may have been slower, as far as it can be detected: other processes on the cores."""
    if p.load_average is None:
        return f"slower on {_threads(p.threads)}; the load of the cores cannot be read on this system"
    others, cores = p.load_average - 1, usable_cpus()
    load = (f"load average {p.load_average:.1f} over the last minute on {cores} usable cores, this benchmark "
            "counting for 1")
    if others >= 0.5:
        return (f"slower on {_threads(p.threads)}: other processes kept about {others:.1f} cores busy ({load}); a "
                "parallel kernel waits for its slowest thread")
    return f"slower on {_threads(p.threads)}; no other busy process detected ({load})"


def _widest(kernel_threads: Mapping[int, int]) -> int:
    """The most threads any kernel call of a pass ran on (1 if none is known)."""
    return max(kernel_threads, default=1)


def _fewer(p: ThreadPass) -> str:
    """How many kernel calls of a pass ran on fewer threads than set, if any did."""
    fewer = sum(calls for n, calls in p.kernel_threads.items() if n < p.threads)
    if not fewer:
        return ""
    return (f"{fewer} of {sum(p.kernel_threads.values())} kernel calls ran on fewer than {_threads(p.threads)} (a "
            "small image, or other processes holding CPUs)")


@contextmanager
def _kernel_calls() -> Iterator[Counter]:
    """The Numba kernel calls made inside the block, by the threads each ran on (empty if Numba did not run)."""
    module = sys.modules.get("radbench.inference.backends.numba_jit.inputs")
    before = module.threads_used.copy() if module is not None else Counter()
    calls: Counter = Counter()
    yield calls
    module = sys.modules.get("radbench.inference.backends.numba_jit.inputs")
    if module is not None:
        calls.update(module.threads_used - before)


def _load_average() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def _gains(before: FileBench, name: str, after: FileBench, other: str, total: str) -> tuple[Gain, ...]:
    """``total`` first, then every other stage timed for both, in ``after``'s order."""
    theirs = {r.stage: r for r in before.records if r.backend == name}
    mine = {r.stage: r for r in after.records if r.backend == other}
    stages = [total, *(s for s in mine if s != total and s in theirs)]
    return tuple(Gain(s, theirs[s].median_ms, mine[s].median_ms, theirs[s].overlaps(mine[s])) for s in stages)


def _rung_dict(rung: Rung) -> dict:
    return {"rung": rung.name, "before": rung.before, "after": rung.after, "note": rung.note,
            "gains": [{"stage": g.stage, "before_ms": g.before_ms, "after_ms": g.after_ms,
                       "ratio": float(f"{g.ratio:.4g}"), "within_noise": g.within_noise} for g in rung.gains]}


def _threads(count: int) -> str:
    return f"{count} thread{'s' * (count != 1)}"


def write_json(benchmark: Benchmark, path: str | Path) -> None:
    """The benchmark as JSON, written atomically (a temporary file in the same folder, then a rename)."""
    write_atomically(path, lambda file: json.dump(benchmark.as_json(), file, indent=1))


def _file_error(path: str | Path, exc: Exception) -> FileError:
    if isinstance(exc, ScanError):
        return FileError(str(exc.path), exc.reason, isinstance(exc, NotAScanError))
    return FileError(str(path), str(exc) or type(exc).__name__, False)
