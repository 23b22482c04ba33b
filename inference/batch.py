"""Batch processing: every file of a folder in, one row per file out, nothing lost.

:func:`run_batch` yields one row (a dict with :func:`columns`) per input file as it finishes, from a pool of
worker processes (each loads the model once, warms Numba's kernels up per input dtype as files need them, runs on the
configuration's threads (:func:`inference.threads.compute_threads`: Numba's kernels and ONNX Runtime's infer, and
:func:`inference.loading.decode_threads`: the decoders; each worker alike, by default its share of the CPUs), and
holds one file at a time under a memory ceiling and a time limit) or from a Dask cluster. A file that
cannot be read becomes an ``error`` row with the reason in words; a file that is not a scan at all becomes a
``skipped`` row; a file whose worker died, ran out of its memory ceiling or time becomes an ``error`` row and
the run goes on. :class:`CsvSink` writes and flushes rows as they arrive and can resume a killed run;
:class:`OutputLock` keeps two runs from writing the same CSV.

Text in the CSV and JSON is printable UTF-8 whatever the file names hold. Paths are absolute; in every text
cell a backslash is written ``\\\\``, a byte of a name that is not UTF-8 ``\\xNN`` (``\\xff``), and a control
or line-breaking character (C0, DEL, C1 such as U+0085, U+2028, U+2029) ``\\uNNNN`` (``\\u000d`` for a
carriage return). :func:`decode_text` reverses it exactly (``os.fsencode`` of the result gives the name's
bytes).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import multiprocessing
import os
import re
import signal
import stat
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from multiprocessing import connection
from pathlib import Path, PurePath

from radbench.inference.atomic_file import write_atomically
from radbench.inference.errors import NotAScanError, RadBenchError, ScanError
from radbench.inference.loading import decode_threads
from radbench.inference.loading.noise import captured_noise
from radbench.inference.machine import usable_cpus
from radbench.inference.memory_ceiling import (
    address_space_limit,
    caused_by_memory,
    default_ceiling_bytes,
    memory_limit_message,
    start_shielded,
    time_limit_message,
)
from radbench.inference.model import NOT_FOR_CLINICAL_USE, Model
from radbench.inference.threads import compute_threads

try:
    import fcntl
except ImportError:  # Windows: no output lock
    fcntl = None
from radbench.inference.pipeline import PIPELINE_STAGES, Pipeline
from radbench.inference.series import series_fields

OK, ERROR, SKIPPED = "ok", "error", "skipped"
#: DICOM values added as columns only with ``include_phi``.
PHI_COLUMNS = ("PatientName", "PatientID", "PatientBirthDate", "AccessionNumber")
#: Seconds one file may take before its worker is ended.
DEFAULT_TIMEOUT_S = 600.0
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NOT_REGULAR = {stat.S_IFDIR: "a folder that cannot be listed", stat.S_IFIFO: "a named pipe (FIFO)",
                stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device"}
_UNSAFE = re.compile(r"[\\\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_ESCAPE = re.compile(r"\\(\\|x[0-9a-f]{2}|u[0-9a-f]{4})")


@dataclass(frozen=True)
class BatchConfig:
    """What every worker needs to build its pipeline; picklable.

    ``threads``: Numba's, ONNX Runtime's and the decoders' threads in each worker; ``None`` gives each local worker
    its share of the usable CPUs (:func:`share_of_cpus`: one each when there are as many workers as CPUs), a Dask
    worker the defaults. ``decoder`` forces one decoder (``--decoder``); ``fast_decode`` lets a JPEG 2000 frame be
    decoded at the coarsest resolution level still covering the model input (``--fast-decode``, the ``fast_decode``
    column says which rows used it).
    """

    model_path: str | None
    backend: str
    include_phi: bool = False
    threads: int | None = None
    decoder: str | None = None
    fast_decode: bool = False


def share_of_cpus(workers: int) -> int:
    """The threads each of ``workers`` local worker processes gets by default: the usable CPUs shared out, at least
    one, so that the workers' threads together never outnumber the CPUs (one thread per worker from as many workers
    as CPUs)."""
    return max(1, usable_cpus() // max(1, workers))


def discover(folder: str | Path, pattern: str = "*", recursive: bool = True,
             exclude: Iterable[str | Path] = ()) -> list[Path]:
    """Every non-directory entry matching ``pattern``, as absolute paths (DICOM without extension, broken links,
    pipes and devices too: rows say what they are). A subfolder that cannot be listed (permission, a path over
    the system's length limit) is listed itself, to become an error row. ``exclude``: this run's own outputs.
    """
    folder = Path(os.path.abspath(folder))
    if not folder.is_dir():
        raise RadBenchError(f"{folder}: not a folder")
    if PurePath(pattern).is_absolute() or ".." in PurePath(pattern).parts:
        raise RadBenchError(f"--glob {pattern!r}: a pattern must stay inside {folder}")
    found: list[Path] = []
    for top, _, names in os.walk(folder, onerror=lambda exc: found.append(Path(exc.filename))):
        found.extend(Path(top, name) for name in names if Path(top, name).relative_to(folder).match(pattern))
        if not recursive:
            break
    skip = {Path(os.path.abspath(p)) for p in exclude}
    return sorted(p for p in found if p not in skip)


def columns(labels: Sequence[str], include_phi: bool = False) -> list[str]:
    """The CSV header: fixed fields ("withheld": why no label is given outside the model's domain; "decoder" and the
    threads it ran on; "fast_decode": with --fast-decode, "1/8" for a frame decoded at 1/8 of each side, "no: <why>"
    for one decoded in full), one probability per label, one time per stage, the threads those times ran on
    (``numba_threads`` empty for a backend without Numba kernels), the DICOM series (``series_uid``: a stand-in for the
    Series Instance UID, the same for every file of a series, :func:`inference.series.series_uid_stand_in`;
    ``instance``: the Instance Number), file identity."""
    return (["path", "status", "error", "warning", "label", "withheld", *[f"prob_{label}" for label in labels],
             "ood_warning", "backend", "decoder", "decoder_threads", "fast_decode",
             *[f"{stage}_ms" for stage in PIPELINE_STAGES], "compile_ms", "numba_threads", "onnxruntime_threads",
             "series_uid", "instance", "size_bytes", "mtime_ns"]
            + (list(PHI_COLUMNS) if include_phi else []))


_PIPELINES: dict[BatchConfig, Pipeline] = {}  # one per worker process and configuration


def _pipeline(config: BatchConfig) -> Pipeline:
    """The configuration's pipeline, built on first use. Numba compiles (or loads from its cache) lazily: each run
    warms up what its frame's dtype and preprocessing need, outside the file's memory ceiling, and reports it in
    that row's ``compile_ms``."""
    if config not in _PIPELINES:
        _PIPELINES[config] = Pipeline(Model(config.model_path), config.backend, decoder=config.decoder,
                                      fast_decode=config.fast_decode)
    return _PIPELINES[config]


def process_file(path: str | Path, config: BatchConfig, ceiling_bytes: int | None = None) -> dict:
    """Classify one file into a row, growing by at most ``ceiling_bytes`` of memory (``None``: no ceiling), on the
    configuration's threads; never raises for a bad file (the row says what went wrong). Only regular files are
    opened."""
    path = Path(path)
    row: dict = {"path": str(path), "backend": config.backend}
    try:
        info = path.stat()
    except (OSError, ValueError) as exc:
        broken_link = isinstance(exc, FileNotFoundError) and os.path.islink(path)
        reason = "broken symbolic link" if broken_link else f"cannot read the file ({_strerror(exc)})"
        return {**row, "status": ERROR, "error": reason}
    row.update(size_bytes=info.st_size, mtime_ns=info.st_mtime_ns)
    if not stat.S_ISREG(info.st_mode):
        kind = _NOT_REGULAR.get(stat.S_IFMT(info.st_mode), "a special file")
        return {**row, "status": ERROR, "error": f"not a regular file: {kind}"}
    noise: list[str] = []  # what the decoders warned or printed: this row's, not the shared stderr's
    try:
        with compute_threads(config.threads), decode_threads(config.threads or 1):
            pipeline = _pipeline(config)
            with captured_noise() as noise:
                row.update(series_fields(path))  # from the header alone: kept in an error row too
                prediction = pipeline.run(path, within=lambda: address_space_limit(ceiling_bytes))
    except Exception as exc:  # noqa: BLE001 - one file's surprise must cost one row, not the batch
        return {**row, **_failure(exc, ceiling_bytes), "warning": "; ".join(noise)}
    row.update(status=OK, error="", warning="; ".join([*prediction.warnings, *noise]),
               label="" if prediction.withheld else prediction.label, withheld=prediction.withheld or "",
               decoder=prediction.decoder, decoder_threads=prediction.decoder_threads,
               fast_decode=prediction.fast_decode, ood_warning="; ".join(prediction.ood_warnings),
               compile_ms=round(prediction.compile_ms, 3), numba_threads=prediction.threads.numba or "",
               onnxruntime_threads=prediction.threads.onnxruntime)
    row.update({f"prob_{label}": round(p, 6) for label, p in prediction.probabilities.items()})
    row.update({f"{stage}_ms": round(ms, 3) for stage, ms in prediction.timings.as_ms().items()})
    if config.include_phi:
        row.update(_identifiers(path))
    return row


def _strerror(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def _failure(exc: Exception, ceiling_bytes: int | None) -> dict:
    """The status and reason of a file whose run raised ``exc``."""
    if caused_by_memory(exc):
        reason = memory_limit_message(ceiling_bytes) if ceiling_bytes else "not enough memory"
        return {"status": ERROR, "error": reason}
    if isinstance(exc, NotAScanError):
        return {"status": SKIPPED, "error": exc.reason}
    if isinstance(exc, ScanError):
        return {"status": ERROR, "error": exc.reason}
    if isinstance(exc, RadBenchError):
        return {"status": ERROR, "error": str(exc)}
    return {"status": ERROR, "error": f"unexpected {type(exc).__name__}: {exc}"}


def failed_row(path: str | Path, config: BatchConfig, reason: str) -> dict:
    """The error row of a file whose worker could not give one (it died, or ran out of time)."""
    row = {"path": str(path), "backend": config.backend, "status": ERROR, "error": reason}
    with contextlib.suppress(OSError, ValueError):
        info = os.stat(path)
        row.update(size_bytes=info.st_size, mtime_ns=info.st_mtime_ns)
    return row


def _identifiers(path: Path) -> dict[str, str]:
    from pydicom import dcmread

    try:
        ds = dcmread(path, stop_before_pixels=True, specific_tags=list(PHI_COLUMNS))
    except Exception:  # noqa: BLE001 - not DICOM: no identifiers
        return {}
    return {k: str(ds.get(k, "")) for k in PHI_COLUMNS}


def run_batch(files: Sequence[Path], config: BatchConfig, workers: int = 1, scheduler: str | None = None,
              ceiling_bytes: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
              ship_files: bool = False) -> Iterator[dict]:
    """One row per file, in completion order, from ``workers`` local worker processes or a Dask cluster at
    ``scheduler`` (``tcp://host:port``; no time limit there; ``ship_files`` sends each file's bytes with its task:
    :mod:`inference.cluster`). Each file may grow its process by
    ``ceiling_bytes`` (default: :func:`default_ceiling_bytes` of ``workers``). Local workers without ``threads`` in
    ``config`` run on their :func:`share_of_cpus`. Closing the generator stops handing out work and ends the
    workers."""
    ceiling_bytes = ceiling_bytes or default_ceiling_bytes(workers)
    if scheduler:
        from radbench.inference.cluster import cluster_rows

        yield from cluster_rows(files, config, scheduler, ceiling_bytes, ship_files)
    else:
        workers = max(1, workers)
        if config.threads is None:
            config = replace(config, threads=share_of_cpus(workers))
        yield from _run_pool(files, config, workers, ceiling_bytes, timeout_s)


def _run_pool(files: Sequence[Path], config: BatchConfig, workers: int, ceiling_bytes: int,
              timeout_s: float) -> Iterator[dict]:
    """Each worker holds one file at a time, so the file of a worker that dies or runs out of time is known:
    it becomes an error row, a fresh worker takes the place, and the run goes on."""
    queue = list(reversed(files))
    pool = [_Worker(config, ceiling_bytes) for _ in range(min(workers, len(queue)))]
    try:
        while queue or any(worker.path is not None for worker in pool):
            for worker in pool:
                if worker.idle and queue and worker.give(queue[-1]):
                    queue.pop()
            deadlines = [worker.started + timeout_s for worker in pool if worker.path is not None]
            wait_s = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            connection.wait([w.conn for w in pool] + [w.process.sentinel for w in pool], wait_s)
            for worker in pool:
                row = worker.collect(timeout_s)
                if row is not None:
                    yield row
            pool = [w if w.alive else _Worker(config, ceiling_bytes) for w in pool if w.alive or queue]
    finally:
        for worker in pool:
            worker.stop()


class _Worker:
    """A spawned process that builds the pipeline once, then processes one file at a time."""

    def __init__(self, config: BatchConfig, ceiling_bytes: int):
        context = multiprocessing.get_context("spawn")
        self.config = config
        self.conn, child_end = context.Pipe()
        self.process = context.Process(target=_serve, args=(child_end, config, ceiling_bytes), daemon=True)
        start_shielded(self.process)
        child_end.close()
        self.ready, self.alive, self.path, self.started = False, True, None, 0.0

    @property
    def idle(self) -> bool:
        return self.ready and self.alive and self.path is None

    def give(self, path: Path) -> bool:
        """Hand ``path`` over; False if the worker is gone (it died while idle, and the file is not lost)."""
        try:
            self.conn.send(str(path))
        except OSError:
            return False
        self.path, self.started = path, time.monotonic()
        return True

    def collect(self, timeout_s: float) -> dict | None:
        """The row of the file this worker held, if it finished, died or ran out of time; else ``None``."""
        if self.conn.poll():
            try:
                kind, value = self.conn.recv()
            except (EOFError, OSError):
                return self._lost(self._death())
            if kind == "failed":
                raise RadBenchError(f"a worker process could not start: {value}")
            self.ready, self.path = True, None
            return value if kind == "row" else None
        if not self.process.is_alive():
            return self._lost(self._death())
        if self.path is not None and time.monotonic() - self.started > timeout_s:
            self.process.kill()
            self.process.join()
            return self._lost(time_limit_message(timeout_s))
        return None

    def _death(self) -> str:
        self.process.join(5)
        code = self.process.exitcode
        if code is None or code >= 0:
            return f"worker process exited unexpectedly (code {code})"
        with contextlib.suppress(ValueError):  # a signal without a name (real-time)
            return f"worker process died (signal {-code}, {signal.Signals(-code).name})"
        return f"worker process died (signal {-code})"

    def _lost(self, reason: str) -> dict | None:
        self.alive = False
        self.conn.close()
        if not self.ready:
            raise RadBenchError(f"a worker process could not start: {reason}")
        path, self.path = self.path, None
        return failed_row(path, self.config, reason) if path is not None else None

    def stop(self) -> None:
        """End the process: at once if it holds a file or is still starting, else once it has read EOF."""
        if self.path is not None or not self.ready:
            self.process.kill()
        self.conn.close()
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def _serve(conn: connection.Connection, config: BatchConfig, ceiling_bytes: int) -> None:
    """A worker's life: load the model, say so, then one row per path received, until the parent hangs up."""
    with contextlib.suppress(EOFError, BrokenPipeError):  # the parent hung up, or is gone
        try:
            with compute_threads(config.threads):
                _pipeline(config)  # the model loaded before the first file (Numba warms up per file, lazily)
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which stops the run
            conn.send(("failed", str(exc)))
            return
        conn.send(("ready", None))
        while True:
            path = conn.recv()
            conn.send(("row", process_file(path, config, ceiling_bytes)))


def encode_text(text: str) -> str:
    """``text`` with backslashes, undecodable name bytes and control or line-breaking characters escaped."""
    return _UNSAFE.sub(_escape_char, text)


def _escape_char(match: re.Match) -> str:
    char = match.group()
    if char == "\\":
        return "\\\\"
    if "\udc80" <= char <= "\udcff":  # a byte that os.fsdecode could not decode (surrogateescape)
        return f"\\x{ord(char) - 0xDC00:02x}"
    return f"\\u{ord(char):04x}"


def decode_text(text: str) -> str:
    """The exact inverse of :func:`encode_text`."""
    return _ESCAPE.sub(_unescape_char, text)


def _unescape_char(match: re.Match) -> str:
    code = match.group(1)
    if code == "\\":
        return "\\"
    return chr(int(code[1:], 16) + (0xDC00 if code[0] == "x" else 0))


def escape_cell(value) -> object:
    """Text a spreadsheet would execute (starting with = + - @ tab CR) gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


class CsvSink:
    """Rows appended and flushed one by one, so a killed run leaves a valid CSV of every finished file.

    With ``resume``, rows already in ``path`` whose file is unchanged (same absolute path, size and mtime)
    are kept (the last one of a file listed twice), the others dropped, and :attr:`done` holds the kept paths
    so the caller can skip them; :attr:`damaged` counts rows that could not be read (wrong number of fields,
    a row cut short by a kill), whose files are done again. A CSV that cannot be resumed at all (not UTF-8
    text, other columns) raises ``RadBenchError`` naming it and the reason. Accepts what a spreadsheet writes
    back: a byte order mark, CRLF line ends, quoted fields.
    """

    def __init__(self, path: str | Path, header: list[str], resume: bool = False):
        self.path, self.header = Path(path), header
        kept, self.damaged = _read_rows(self.path, header) if resume and self.path.exists() else ([], 0)
        kept = [row for row in kept if _unchanged(row)]
        self.done = {row["path"] for row in kept}
        self.rows: list[dict] = list(kept)
        save_csv(self.path, header, kept)
        self._file = self.path.open("a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._file, header, extrasaction="ignore")

    def write(self, row: dict) -> None:
        self._writer.writerow(_encode_row(row))
        self._file.flush()
        self.rows.append(row)

    def close(self) -> None:
        self._file.close()


class OutputLock:
    """One run at a time per output: an exclusive ``flock`` on ``<out>.lock`` beside it, which holds the run's
    pid and is removed on :meth:`release` (the kernel drops the lock of a killed run). No lock on Windows."""

    def __init__(self, target: str | Path):
        self.path = Path(f"{target}.lock")
        self._fd = None
        while fcntl is not None and self._fd is None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise RadBenchError(f"{target} is being written by another radbench run (pid {pid})") from None
            if _same_file(fd, self.path):
                self._fd = fd
            else:  # the previous holder removed the file between our open and our lock: lock the new one
                os.close(fd)
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.write(self._fd, f"{os.getpid()}\n".encode())

    def release(self) -> None:
        if self._fd is not None:
            self.path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _encode_row(row: dict, formulas: bool = True) -> dict:
    """Text cells escaped (:func:`encode_text`) and, for spreadsheets, formula-like text defused."""
    encode = (lambda text: escape_cell(encode_text(text))) if formulas else encode_text
    return {k: encode(v) if isinstance(v, str) else v for k, v in row.items()}


def _write_csv(file, header: list[str], rows: Iterable[dict]) -> None:
    writer = csv.DictWriter(file, header, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(_encode_row(row))


def save_csv(path: str | Path, header: list[str], rows: Iterable[dict]) -> None:
    """All ``rows`` as one CSV (text escaped, formula-like text defused), written atomically."""
    write_atomically(Path(path), lambda f: _write_csv(f, header, rows))


def _read_rows(path: Path, header: list[str]) -> tuple[list[dict], int]:
    """The rows of an earlier CSV, the last per absolute path, and how many were damaged; the header must match."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise RadBenchError(f"{path}: cannot resume: not a RadBench CSV (not UTF-8 text)") from None
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]  # a row cut short by a kill
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows, damaged = {}, 0
    try:
        if reader.fieldnames and list(reader.fieldnames) != header:
            raise RadBenchError(f"{path}: cannot resume: its columns differ from this run's (other model or "
                                "options, or not a RadBench CSV)")
        for row in reader:
            if None in row or None in row.values() or not row["path"]:
                damaged += 1
                continue
            row = {k: decode_text(_unescape(v)) for k, v in row.items()}
            row["path"] = os.path.abspath(row["path"])
            rows.pop(row["path"], None)
            rows[row["path"]] = row
    except csv.Error as exc:
        raise RadBenchError(f"{path}: cannot resume: unreadable CSV ({exc})") from None
    return list(rows.values()), damaged


def _unescape(value: str) -> str:
    return value[1:] if value.startswith("'") and value[1:].startswith(_FORMULA_STARTS) else value


def _unchanged(row: dict) -> bool:
    try:
        info = os.stat(row["path"])
    except (OSError, ValueError):
        return False
    return str(info.st_size) == str(row.get("size_bytes")) and str(info.st_mtime_ns) == str(row.get("mtime_ns"))


def write_json(path: str | Path, rows: list[dict], summary: dict) -> None:
    """All rows (text escaped as in the CSV) and the summary as one JSON document, written atomically."""
    document = {"notice": NOT_FOR_CLINICAL_USE, "summary": summary,
                "rows": [_encode_row(row, formulas=False) for row in rows]}
    write_atomically(Path(path), lambda f: json.dump(document, f, indent=1))
