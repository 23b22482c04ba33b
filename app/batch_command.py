"""``radbench batch``: classify every scan under a folder into CSV (and JSON) rows, losing no file."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from typing import TextIO

from inference.backends import BACKEND_NAMES
from inference.batch import (
    ERROR,
    OK,
    SKIPPED,
    BatchConfig,
    CsvSink,
    columns,
    discover,
    run_batch,
    write_json,
)
from inference.errors import RadBenchError
from inference.model import NOT_FOR_CLINICAL_USE, Model


def add_parser(commands) -> None:
    batch = commands.add_parser("batch", help="classify every scan under a folder into a CSV (and JSON)")
    batch.add_argument("folder", help="folder to walk (DICOM files without extension included)")
    batch.add_argument("--backend", choices=BACKEND_NAMES, default="vectorized")
    batch.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                       help="worker processes (default: the CPU count)")
    batch.add_argument("--out", default="results.csv", help="CSV written row by row (default: results.csv)")
    batch.add_argument("--json", default=None, metavar="RESULTS.json", help="also write every row as JSON")
    batch.add_argument("--glob", default="*", metavar="PATTERN", help="only files matching PATTERN (default: *)")
    batch.add_argument("--no-recursive", action="store_true", help="only the folder itself, not its subfolders")
    batch.add_argument("--resume", action="store_true",
                       help="keep the rows already in --out for unchanged files and do only the rest")
    batch.add_argument("--strict", action="store_true", help="exit non-zero when any file is an error row")
    batch.add_argument("--include-phi", action="store_true",
                       help="add patient name, ID, birth date and accession number columns (off by default)")
    batch.add_argument("--model", default=None, help="ONNX classifier with a RadBench card (default: bundled)")
    batch.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                       help="run on a Dask cluster instead of local processes (needs the distributed extra)")


def run_batch_command(args: argparse.Namespace, err: TextIO | None = None) -> int:
    """0 when the run completed (error rows counted in the summary); 1 with --strict and error rows;
    2 when the run itself failed; 130 when interrupted (every finished file is in the CSV)."""
    err = err or sys.stderr
    started = time.perf_counter()
    try:
        labels = Model(args.model).card.labels
        files = discover(args.folder, args.glob, not args.no_recursive)
        sink = CsvSink(args.out, columns(labels, args.include_phi), resume=args.resume)
    except (RadBenchError, OSError) as exc:
        print(f"radbench batch: {exc}", file=err)
        return 2
    todo = [p for p in files if str(p) not in sink.done]
    if sink.done:
        print(f"resuming: {len(files) - len(todo)} file(s) already done in {args.out}", file=err)
    config = BatchConfig(args.model, args.backend, args.include_phi)
    interrupted = False
    rows = run_batch(todo, config, workers=max(1, min(args.workers, len(todo))), scheduler=args.scheduler)
    try:
        for row in _progress(rows, len(todo), err):
            sink.write(row)
    except KeyboardInterrupt:
        interrupted = True
    except RadBenchError as exc:
        print(f"radbench batch: {exc}", file=err)
        return 2
    finally:
        rows.close()
        sink.close()
    summary = _summary(sink.rows, len(files), time.perf_counter() - started, len(todo))
    if args.json:
        write_json(args.json, sink.rows, summary)
    _print_summary(summary, args, interrupted, err)
    if interrupted:
        return 130
    return 1 if args.strict and summary["errors"] else 0


def _progress(rows, total: int, err: TextIO):
    """A tqdm bar with rate and ETA on a terminal; silent otherwise."""
    from tqdm import tqdm

    return tqdm(rows, total=total, unit="file", file=err, disable=not err.isatty(), dynamic_ncols=True)


def _summary(rows: list[dict], files: int, seconds: float, processed: int) -> dict:
    counts = Counter(row["status"] for row in rows)
    return {"files": files, OK: counts[OK], "errors": counts[ERROR], SKIPPED: counts[SKIPPED],
            "processed_this_run": processed, "wall_s": round(seconds, 3),
            "files_per_s": round(processed / seconds, 3) if seconds > 0 else 0.0, "notice": NOT_FOR_CLINICAL_USE}


def _print_summary(summary: dict, args: argparse.Namespace, interrupted: bool, err: TextIO) -> None:
    state = "interrupted" if interrupted else "done"
    print(f"{state}: {summary['files']} file(s): {summary[OK]} ok, {summary['errors']} error(s), "
          f"{summary[SKIPPED]} skipped; {summary['processed_this_run']} processed in {summary['wall_s']:.1f} s "
          f"({summary['files_per_s']:.2f} files/s); rows in {args.out}"
          + (f" and {args.json}" if args.json else "") + f". {NOT_FOR_CLINICAL_USE}", file=err)
