"""Batch processing: every file of a folder in, one row per file out, nothing lost.

:func:`run_batch` yields one row (a dict with :func:`columns`) per input file as it finishes, from a process
pool (each worker loads the model and compiles or loads Numba's kernels once, and runs ONNX Runtime on one
thread) or from a Dask cluster. A file that cannot be read becomes an ``error`` row with the reason in
words; a file that is not a scan at all becomes a ``skipped`` row. :class:`CsvSink` writes and flushes rows
as they arrive and can resume a killed run.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from inference.atomic_file import write_atomically
from inference.errors import NotAScanError, RadBenchError, ScanError
from inference.model import NOT_FOR_CLINICAL_USE, Model
from inference.pipeline import PIPELINE_STAGES, Pipeline

OK, ERROR, SKIPPED = "ok", "error", "skipped"
#: DICOM values added as columns only with ``include_phi``.
PHI_COLUMNS = ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class BatchConfig:
    """What every worker needs to build its pipeline; picklable."""

    model_path: str | None
    backend: str
    include_phi: bool = False


def discover(folder: str | Path, pattern: str = "*", recursive: bool = True) -> list[Path]:
    """Every non-directory entry matching ``pattern`` (DICOM without extension included, broken links too)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RadBenchError(f"{folder}: not a folder")
    entries = folder.rglob(pattern) if recursive else folder.glob(pattern)
    return sorted(p for p in entries if not p.is_dir())


def columns(labels: Sequence[str], include_phi: bool = False) -> list[str]:
    """The CSV header: fixed fields, one probability per label, one time per stage, file identity."""
    return (["path", "status", "error", "label", *[f"prob_{label}" for label in labels], "ood_warning",
             "backend", "decoder", *[f"{stage}_ms" for stage in PIPELINE_STAGES], "compile_ms",
             "size_bytes", "mtime_ns"] + (list(PHI_COLUMNS) if include_phi else []))


_PIPELINES: dict[BatchConfig, Pipeline] = {}  # one per worker process and configuration


def _pipeline(config: BatchConfig) -> Pipeline:
    if config not in _PIPELINES:
        _PIPELINES[config] = Pipeline(Model(config.model_path, threads=1), config.backend)
    return _PIPELINES[config]


def process_file(path: str | Path, config: BatchConfig) -> dict:
    """Classify one file into a row; never raises for a bad file (the row says what went wrong)."""
    path = Path(path)
    row: dict = {"path": str(path), "backend": config.backend}
    try:
        stat = path.stat()
        row.update(size_bytes=stat.st_size, mtime_ns=stat.st_mtime_ns)
    except OSError as exc:
        reason = "broken symbolic link" if path.is_symlink() else f"cannot read the file ({exc.strerror or exc})"
        return {**row, "status": ERROR, "error": reason}
    try:
        prediction = _pipeline(config).run(path)
    except NotAScanError as exc:
        return {**row, "status": SKIPPED, "error": exc.reason}
    except ScanError as exc:
        return {**row, "status": ERROR, "error": exc.reason}
    except RadBenchError as exc:
        return {**row, "status": ERROR, "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - one file's surprise must cost one row, not the batch
        return {**row, "status": ERROR, "error": f"unexpected {type(exc).__name__}: {exc}"}
    row.update(status=OK, error="", label=prediction.label, decoder=prediction.decoder,
               ood_warning="; ".join(prediction.ood_warnings), compile_ms=round(prediction.compile_ms, 3))
    row.update({f"prob_{label}": round(p, 6) for label, p in prediction.probabilities.items()})
    row.update({f"{stage}_ms": round(ms, 3) for stage, ms in prediction.timings.as_ms().items()})
    if config.include_phi:
        row.update(_identifiers(path))
    return row


def _identifiers(path: Path) -> dict[str, str]:
    from pydicom import dcmread

    try:
        ds = dcmread(path, stop_before_pixels=True, specific_tags=list(PHI_COLUMNS))
    except Exception:  # noqa: BLE001 - not DICOM: no identifiers
        return {}
    return {k: str(ds.get(k, "")) for k in PHI_COLUMNS}


def run_batch(files: Sequence[Path], config: BatchConfig, workers: int = 1,
              scheduler: str | None = None) -> Iterator[dict]:
    """One row per file, in completion order: in this process (``workers == 1``), a process pool, or a Dask
    cluster at ``scheduler`` (``tcp://host:port``). Closing the generator stops handing out work."""
    if scheduler:
        yield from _run_dask(files, config, scheduler)
    elif workers <= 1:
        for path in files:
            yield process_file(path, config)
    else:
        yield from _run_pool(files, config, workers)


def _run_pool(files: Sequence[Path], config: BatchConfig, workers: int) -> Iterator[dict]:
    import multiprocessing

    pending, queue = set(), list(reversed(files))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            while queue or pending:
                while queue and len(pending) < 2 * workers:  # a short queue: a kill loses little work
                    pending.add(pool.submit(process_file, queue.pop(), config))
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        finally:
            for future in pending:
                future.cancel()


def _run_dask(files: Sequence[Path], config: BatchConfig, scheduler: str) -> Iterator[dict]:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise RadBenchError("--scheduler needs Dask: pip install 'radbench[distributed]'") from None
    with Client(scheduler) as client:
        futures = client.map(process_file, [str(p) for p in files], config=config, pure=False)
        for future in as_completed(futures):
            yield future.result()


def escape_cell(value) -> object:
    """Text a spreadsheet would execute (starting with = + - @ tab CR) gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


class CsvSink:
    """Rows appended and flushed one by one, so a killed run leaves a valid CSV of every finished file.

    With ``resume``, rows already in ``path`` whose file is unchanged (same path, size and mtime) are kept,
    the others dropped, and :attr:`done` holds the kept paths so the caller can skip them.
    """

    def __init__(self, path: str | Path, header: list[str], resume: bool = False):
        self.path, self.header = Path(path), header
        kept = _read_rows(self.path, header) if resume and self.path.exists() else []
        kept = [row for row in kept if _unchanged(row)]
        self.done = {row["path"] for row in kept}
        self.rows: list[dict] = list(kept)
        save_csv(self.path, header, kept)
        self._file = self.path.open("a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._file, header, extrasaction="ignore")

    def write(self, row: dict) -> None:
        self._writer.writerow({k: escape_cell(v) for k, v in row.items()})
        self._file.flush()
        self.rows.append(row)

    def close(self) -> None:
        self._file.close()


def _write_csv(file, header: list[str], rows: Iterable[dict]) -> None:
    writer = csv.DictWriter(file, header, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: escape_cell(v) for k, v in row.items()})


def save_csv(path: str | Path, header: list[str], rows: Iterable[dict]) -> None:
    """All ``rows`` as one CSV (formula-like text escaped), written atomically."""
    write_atomically(Path(path), lambda f: _write_csv(f, header, rows))


def _read_rows(path: Path, header: list[str]) -> list[dict]:
    """The complete rows of an earlier CSV (a row cut short by a kill is dropped); its header must match."""
    text = path.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    reader = csv.DictReader(text.splitlines(keepends=True))
    if reader.fieldnames and list(reader.fieldnames) != header:
        raise RadBenchError(f"{path}: cannot resume: its columns differ from this run's (other model or options)")
    return [{k: _unescape(v) for k, v in row.items()} for row in reader]


def _unescape(value: str) -> str:
    return value[1:] if value.startswith("'") and value[1:].startswith(_FORMULA_STARTS) else value


def _unchanged(row: dict) -> bool:
    try:
        stat = os.stat(row["path"])
    except OSError:
        return False
    return str(stat.st_size) == str(row.get("size_bytes")) and str(stat.st_mtime_ns) == str(row.get("mtime_ns"))


def write_json(path: str | Path, rows: list[dict], summary: dict) -> None:
    """All rows and the summary as one JSON document, written atomically."""
    document = {"notice": NOT_FOR_CLINICAL_USE, "summary": summary, "rows": rows}
    write_atomically(Path(path), lambda f: json.dump(document, f, indent=1))
