"""``radbench batch``: classify every scan under a folder into CSV (and JSON) rows, losing no file."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from collections import Counter
from typing import TextIO

from radbench.app.argument_types import DECODER_HELP, PLOT_HELP, capped_threads, count, plot_file
from radbench.inference.atomic_file import check_output
from radbench.inference.backends import BACKEND_NAMES
from radbench.inference.batch import (
    DEFAULT_TIMEOUT_S,
    ERROR,
    OK,
    SKIPPED,
    BatchConfig,
    CsvSink,
    OutputLock,
    columns,
    discover,
    run_batch,
    share_of_cpus,
    write_json,
)
from radbench.inference.cluster import MAX_SHIPPED_BYTES, SchedulerLost
from radbench.inference.errors import RadBenchError
from radbench.inference.loading.decoders import DECODER_NAMES
from radbench.inference.machine import usable_cpus
from radbench.inference.memory_ceiling import parse_size
from radbench.inference.model import NOT_FOR_CLINICAL_USE, Model
from radbench.inference.pipeline import PIPELINE_STAGES
from radbench.inference.threads import DEFAULT_ONNX_THREADS, Threads, thread_limit
from radbench.inference.wording import counted


def add_parser(commands) -> None:
    batch = commands.add_parser("batch", help="classify every scan under a folder into a CSV (and JSON)")
    batch.add_argument("folder", help="folder to walk (DICOM files without extension included)")
    batch.add_argument("--backend", choices=BACKEND_NAMES, default="vectorized",
                       help="preprocessing backend (default: vectorized)")
    batch.add_argument("--workers", type=_positive(int), default=None,
                       help="worker processes (default and most: the CPUs this process may use)")
    batch.add_argument("--threads", type=count(1), default=None, metavar="N",
                       help="threads of Numba's parallel kernels, of ONNX Runtime's infer and of the decoders in each "
                            "worker process: every worker uses N, so --workers W runs up to W x N threads (default: "
                            "each worker its share of the CPUs this process may use, at least 1; more than the CPUs "
                            "are capped, with a note)")
    batch.add_argument("--decoder", choices=DECODER_NAMES, default=None, metavar="NAME", help=DECODER_HELP)
    batch.add_argument("--fast-decode", action="store_true",
                       help="decode JPEG 2000 at the coarsest resolution level that still covers the model input "
                            "(much faster; equalize then sees that level, not the full frame: see the README for the "
                            "measured agreement); other files as usual; the fast_decode column says which rows used "
                            "it")
    batch.add_argument("--out", default="results.csv",
                       help="CSV written row by row; one run at a time per file (default: results.csv)")
    batch.add_argument("--json", default=None, metavar="RESULTS.json", help="also write every row as JSON")
    batch.add_argument("--plot", type=plot_file, default=None, metavar="OUT.png|OUT.svg",
                       help=PLOT_HELP + ": the time per stage summed over the files processed and the files/s, as "
                            "the Batch window shows them")
    batch.add_argument("--glob", default="*", metavar="PATTERN",
                       help="only files matching PATTERN, inside the folder (default: *)")
    batch.add_argument("--no-recursive", action="store_true", help="only the folder itself, not its subfolders")
    batch.add_argument("--resume", action="store_true",
                       help="keep the rows already in --out for unchanged files and do only the rest")
    batch.add_argument("--strict", action="store_true", help="exit non-zero when any file is an error row")
    batch.add_argument("--include-phi", action="store_true",
                       help="add patient name, ID, birth date and accession number columns (off by default)")
    batch.add_argument("--model", default=None, help="ONNX classifier with a RadBench card (default: bundled)")
    batch.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                       help="run on a Dask cluster instead of local processes (needs the distributed extra); its "
                            "workers are checked first (RadBench version, model file, backend)")
    batch.add_argument("--ship-files", action="store_true",
                       help="with --scheduler: send each file's bytes with its task, for workers that cannot read "
                            f"the folder (at most {MAX_SHIPPED_BYTES // 1024**2} MiB per file)")
    batch.add_argument("--memory-limit", type=_size, default=None, metavar="SIZE",
                       help="memory a worker may add for one file, e.g. 512M or 4G; a file that needs more is an "
                            "error row (default: physical memory / (workers + 1), at most 16G; Linux only)")
    batch.add_argument("--timeout", type=_positive(float), default=DEFAULT_TIMEOUT_S, metavar="SECONDS",
                       help="time limit per file: a worker still busy after it is ended and the file is an "
                            f"error row (default: {DEFAULT_TIMEOUT_S:g}; local workers only)")


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number greater than 0")
        return value
    return parse


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C."""


def run_batch_command(args: argparse.Namespace, err: TextIO | None = None) -> int:
    """0 when the run completed (error rows counted in the summary); 1 with --strict and error rows;
    2 when the run itself failed; 130 when interrupted, 143 when terminated (every finished file is in the CSV)."""
    err = err or sys.stderr
    try:
        given = [p for p in (args.out, args.json, args.plot) if p]
        targets = [check_output(p) for p in given]  # before any work: an unwritable output costs nothing
        labels = Model(args.model).card.labels
        lock = OutputLock(targets[0])
    except (RadBenchError, OSError) as exc:
        print(f"radbench batch: {exc}", file=err)
        return 2
    try:
        return _run(args, labels, [*given, *targets, lock.path], err)
    finally:
        lock.release()


def _run(args: argparse.Namespace, labels: tuple[str, ...], outputs: list, err: TextIO) -> int:
    """The run after its outputs were checked and locked; ``outputs``: paths that are never inputs."""
    started = time.perf_counter()
    if args.ship_files and not args.scheduler:
        print("radbench batch: --ship-files needs --scheduler (local workers read the files themselves)", file=err)
        return 2
    try:
        files = discover(args.folder, args.glob, not args.no_recursive, exclude=outputs)
        sink = CsvSink(args.out, columns(labels, args.include_phi), resume=args.resume)
    except (RadBenchError, OSError) as exc:
        print(f"radbench batch: {exc}", file=err)
        return 2
    todo = [p for p in files if str(p) not in sink.done]
    if sink.done or sink.damaged:
        print(f"resuming: {counted(len(files) - len(todo), 'file')} already done in {args.out}"
              + (f"; {counted(sink.damaged, 'damaged row')} dropped, their files are done again" if sink.damaged
                 else ""),
              file=err)
    workers = max(1, min(_workers(args.workers, err), len(todo)))
    threads = capped_threads(args.threads, err) if args.threads is not None else None
    config = BatchConfig(args.model, args.backend, args.include_phi, threads, args.decoder, args.fast_decode)
    if not args.scheduler:
        _note_oversubscription(workers, config, err)
    rows = run_batch(todo, config, workers=workers, scheduler=args.scheduler,
                     ceiling_bytes=args.memory_limit, timeout_s=args.timeout, ship_files=args.ship_files)
    stopped = 0
    with _sigterm_as_interrupt():
        try:
            for row in _progress(rows, len(todo), err):
                sink.write(row)
        except Terminated:
            stopped = 143
        except KeyboardInterrupt:
            stopped = 130
        except RadBenchError as exc:
            kept = "; the finished rows are kept: run again with --resume to do the rest" if isinstance(
                exc, SchedulerLost) else ""
            print(f"radbench batch: {exc}{kept}", file=err)
            return 2
        finally:
            rows.close()
            sink.close()
    summary = _summary(sink.rows, len(files), time.perf_counter() - started, len(sink.rows) - len(sink.done),
                       {str(p) for p in todo})
    if args.scheduler:
        workers_seen = per_dask_worker(sink.rows)
        summary.update(scheduler=args.scheduler, per_worker=workers_seen, workers=len(workers_seen))
    else:
        summary.update(workers=workers)
    summary.update(threads=worker_threads(config, None if args.scheduler else workers).as_dict(),
                   backend=config.backend, fast_decode=config.fast_decode)
    json_failed = bool(args.json) and not _write_json(args.json, sink.rows, summary, err)
    plot_failed = bool(args.plot) and not _write_plot(args.plot, summary, err)
    _print_summary(summary, args, bool(stopped), err)
    if stopped or json_failed or plot_failed:
        return stopped or 2
    return 1 if args.strict and summary["errors"] else 0


def _write_json(path: str, rows: list[dict], summary: dict, err: TextIO) -> bool:
    """Write the JSON; False, and one line on ``err``, if it could not be written (the CSV has every row)."""
    try:
        write_json(path, rows, summary)
    except OSError as exc:
        print(f"radbench batch: {path}: cannot write the JSON ({exc.strerror or exc})", file=err)
        return False
    return True


def _write_plot(path: str, summary: dict, err: TextIO) -> bool:
    """Render the chart (:mod:`radbench.app.timing_plots`; Qt only then); False, and one line on ``err``, if it could
    not be written."""
    from radbench.app.timing_plots import save_batch_plot

    try:
        size = save_batch_plot(summary, path)
    except OSError as exc:
        print(f"radbench batch: {path}: cannot write the plot ({exc.strerror or exc})", file=err)
        return False
    print(f"plot: {path} ({size.width()} x {size.height()} px)", file=err)
    return True


def _workers(requested: int | None, err: TextIO) -> int:
    """``--workers``, at most the usable CPUs (said on stderr when capped)."""
    usable = usable_cpus()
    if requested is not None and requested > usable:
        print(f"radbench batch: --workers {requested} capped at the {counted(usable, 'usable CPU')}", file=err)
    return min(requested or usable, usable)


def worker_threads(config: BatchConfig, workers: int | None = None) -> Threads:
    """The threads each worker runs on: ``config.threads``, or with ``workers`` local workers their share of the
    usable CPUs (:func:`inference.batch.share_of_cpus`), or else the defaults (Numba: ``NUMBA_NUM_THREADS``; ONNX
    Runtime: 1); Numba's only with the numba backend."""
    uses_numba = config.backend == "numba"
    threads = config.threads if config.threads is not None else share_of_cpus(workers) if workers else None
    if threads is not None:
        return Threads(threads if uses_numba else None, threads)
    return Threads(thread_limit() if uses_numba else None, DEFAULT_ONNX_THREADS)


def _note_oversubscription(workers: int, config: BatchConfig, err: TextIO) -> None:
    """Say so when the workers' threads together outnumber the usable CPUs (a parallel kernel then waits for cores).
    A worker runs Numba's kernels and ONNX Runtime one after the other, so it keeps the larger count busy."""
    threads = worker_threads(config, workers)
    per_worker = max(threads.numba or 1, threads.onnxruntime)
    if workers > 1 and workers * per_worker > usable_cpus():
        print(f"note: {counted(workers, 'worker')} x {counted(per_worker, 'thread')} each = "
              f"{workers * per_worker} threads on {counted(usable_cpus(), 'usable CPU')}; --threads "
              f"{max(1, usable_cpus() // workers)} would give each worker its share", file=err)


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Inside the block, the first SIGTERM raises :class:`Terminated`; later ones are ignored while cleaning up."""
    def terminate(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _progress(rows, total: int, err: TextIO):
    """A tqdm bar with rate and ETA on a terminal; silent otherwise."""
    from tqdm import tqdm

    return tqdm(rows, total=total, unit="file", file=err, disable=not err.isatty(), dynamic_ncols=True)


def _summary(rows: list[dict], files: int, seconds: float, processed: int, this_run: set[str] | None = None) -> dict:
    """Counts, wall time and files/s, and the time per stage summed over the rows processed in this run (what the
    Batch window shows): ``stage_seconds`` by stage, Numba's warm-ups as "compile", in pipeline order."""
    counts = Counter(row["status"] for row in rows)
    ran = [row for row in rows if this_run is None or row["path"] in this_run]
    stage_seconds = {}
    for stage in (*PIPELINE_STAGES, "compile"):
        values = [float(row[f"{stage}_ms"]) for row in ran if row.get(f"{stage}_ms") not in (None, "")]
        if any(values):
            stage_seconds[stage] = round(sum(values) / 1e3, 3)
    return {"files": files, OK: counts[OK], "withheld": sum(bool(row.get("withheld")) for row in rows),
            "errors": counts[ERROR], SKIPPED: counts[SKIPPED],
            "processed_this_run": processed, "wall_s": round(seconds, 3),
            "files_per_s": round(processed / seconds, 3) if seconds > 0 else 0.0, "stage_seconds": stage_seconds,
            "fast_decoded": sum(str(row.get("fast_decode", "")).startswith("1/") for row in ran),
            "notice": NOT_FOR_CLINICAL_USE}


def per_dask_worker(rows: list[dict]) -> dict[str, dict]:
    """Per Dask worker (the ``worker`` of this run's rows): its files and the seconds it spent compiling Numba's
    kernels (once per worker and input dtype)."""
    workers: dict[str, dict] = {}
    for row in rows:
        if row.get("worker"):
            counts = workers.setdefault(row["worker"], {"files": 0, "compile_s": 0.0})
            counts["files"] += 1
            counts["compile_s"] = round(counts["compile_s"] + float(row.get("compile_ms") or 0) / 1e3, 3)
    return dict(sorted(workers.items()))


def _print_summary(summary: dict, args: argparse.Namespace, interrupted: bool, err: TextIO) -> None:
    """One line: counts, wall time, files/s, workers and their threads, the time per stage summed over this run's files
    (all workers together; with --fast-decode how many were fast-decoded), and where the rows are."""
    state = "interrupted" if interrupted else "done"
    threads = Threads(**summary["threads"]).describe()
    stages = ", ".join(f"{stage} {seconds:.2f} s" for stage, seconds in summary["stage_seconds"].items())
    fast = f", {counted(summary['fast_decoded'], 'file')} fast-decoded" if summary.get("fast_decode") else ""
    print(f"{state}: {counted(summary['files'], 'file')}: {summary[OK]} ok ({summary['withheld']} withheld), "
          f"{counted(summary['errors'], 'error')}, "
          f"{summary[SKIPPED]} skipped; {summary['processed_this_run']} processed in {summary['wall_s']:.1f} s "
          f"({summary['files_per_s']:.2f} files/s) by {_by_whom(summary)}, each on {threads}"
          + (f"; time per stage summed over them ({summary['backend']} backend{fast}): {stages}" if stages else "")
          + f"; rows in {args.out}" + (f" and {args.json}" if args.json else "") + f". {NOT_FOR_CLINICAL_USE}",
          file=err)


def _by_whom(summary: dict) -> str:
    """"2 workers", or with --scheduler "2 Dask workers of tcp://HOST:PORT (tcp://10.0.0.5:40331: 5 files, numba
    compile 8.1 s; ...)": each worker's files of this run and its Numba compile time."""
    if "scheduler" not in summary:
        return counted(summary["workers"], "worker")
    each = [f"{address}: {counted(w['files'], 'file')}" + (f", numba compile {w['compile_s']:.1f} s"
                                                           if w["compile_s"] else "")
            for address, w in summary["per_worker"].items()]
    return f"{counted(summary['workers'], 'Dask worker')} of {summary['scheduler']}" + (
        f" ({'; '.join(each)})" if each else "")
