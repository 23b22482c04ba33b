"""``radbench bench`` over many files: each file's stages (:mod:`.file_bench`), ONNX Runtime's latency on its model
input (:mod:`.onnx_latency`), Numba's compile (:mod:`.numba_compile`) and the environment stamp, as one result that
can be written as JSON. Each file is decoded once; a file that cannot be read is reported and the others go on."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from radbench.inference.atomic_file import write_atomically
from radbench.inference.benchmarking.environment import environment
from radbench.inference.benchmarking.file_bench import DEFAULT_BACKENDS, KNOWN_BACKENDS, FileBench, bench_file
from radbench.inference.benchmarking.memory import MemoryPeak
from radbench.inference.benchmarking.numba_compile import CompileReport, compile_in_process, compile_report
from radbench.inference.benchmarking.onnx_latency import infer_latency, ort_sessions
from radbench.inference.benchmarking.records import Record
from radbench.inference.benchmarking.schedule import check_counts
from radbench.inference.errors import NotAScanError, RadBenchError, ScanError
from radbench.inference.loading import load_scan
from radbench.inference.model import Model


@dataclass(frozen=True)
class FileError:
    file: str
    reason: str
    skipped: bool  # readable but not a scan (a README, a DICOMDIR): reported, not a failure

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}"


@dataclass(frozen=True)
class Benchmark:
    files: tuple[FileBench, ...]
    errors: tuple[FileError, ...]
    compile: CompileReport
    environment: Mapping[str, object]
    memory: tuple[MemoryPeak, ...] = ()  # per (file, backend), when measured

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


def run_benchmark(paths: Iterable[str | Path], *, backends: Sequence[str] = DEFAULT_BACKENDS, repeats: int = 10,
                  warmup: int = 1, fresh_compile: bool = True, model: Model | None = None,
                  report: Callable[[FileBench | FileError], None] | None = None) -> Benchmark:
    """Benchmark every file; a file that cannot be read becomes a :class:`FileError` and the others go on.

    ``report`` is called with each file's result as soon as it is known. Raises ``ModelError`` if the
    model is unusable and ``ValueError`` for bad counts or backend names.
    """
    check_counts(repeats, warmup)
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
    return Benchmark(tuple(files), tuple(errors), compile_report(compiled, fresh_compile), environment())


def write_json(benchmark: Benchmark, path: str | Path) -> None:
    """The benchmark as JSON, written atomically (a temporary file in the same folder, then a rename)."""
    write_atomically(path, lambda file: json.dump(benchmark.as_json(), file, indent=1))


def _file_error(path: str | Path, exc: Exception) -> FileError:
    if isinstance(exc, ScanError):
        return FileError(str(exc.path), exc.reason, isinstance(exc, NotAScanError))
    return FileError(str(path), str(exc) or type(exc).__name__, False)
