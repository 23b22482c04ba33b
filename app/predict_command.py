"""``radbench predict``: classify files one by one; a bad file costs one line, never the run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from radbench.app.argument_types import capped_threads
from radbench.app.what_if import NOT_INTENDED, comparison, what_if, what_if_record
from radbench.inference.atomic_file import check_output
from radbench.inference.benchmarking.numba_compile import describe
from radbench.inference.errors import NotAScanError, RadBenchError, ScanError, quoted
from radbench.inference.loading import decode_threads
from radbench.inference.model import NOT_FOR_CLINICAL_USE, Model
from radbench.inference.overlay_export import save_overlay
from radbench.inference.pipeline import Pipeline, Prediction
from radbench.inference.series import Series, expand, group_series, series_uid_stand_in
from radbench.inference.threads import compute_threads

#: One file to classify: its path, the frame (None: the default), and for a slice its series and index in it.
Job = tuple[str, int | None, tuple[Series, int] | None]


def run_predict(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Print a result per file; return 1 if any file failed, the model/backend is unusable or --heatmap cannot
    be written (checked before the first file).

    Files that are not scans at all (a README, a DICOMDIR) are reported as skipped, not as failures. Everything runs
    on ``--threads`` threads (Numba's kernels and ONNX Runtime's infer), or on the defaults without it. With
    ``--series`` the files (folders expanded) are grouped into series first: one slice of each is classified
    (``--frame``, default the middle one), its result naming the series and the slice.
    """
    out, err = out or sys.stdout, err or sys.stderr
    threads = capped_threads(args.threads, err) if args.threads is not None else None
    with compute_threads(threads), decode_threads(threads):
        return _predict(args, out, err)


def _predict(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        pipeline = Pipeline(Model(args.model), args.backend, decoder=getattr(args, "decoder", None),
                            announce=lambda message: print(message, file=err, flush=True))
        jobs = _series_jobs(args.files, args.frame, err) if getattr(args, "series", False) else [
            (path, args.frame, None) for path in args.files]
        heatmap_paths = _heatmap_paths(args.heatmap, [path for path, _, _ in jobs])
    except (RadBenchError, OSError) as exc:
        print(f"radbench: {exc}", file=err)
        return 1
    failed = skipped = 0
    for path, frame, in_series in jobs:
        try:
            if getattr(args, "skip", None):
                text, prediction = _what_if_text(pipeline, path, frame, in_series, args)
            else:
                prediction = pipeline.run(path, frame=frame)
                text = (json.dumps({**as_record(prediction), **_series_record(in_series)}, allow_nan=False)
                        if args.json else _series_line(in_series) + as_table(prediction))
            if heatmap_paths:
                save_overlay(prediction, heatmap_paths[path], args.opacity)
                print(f"heatmap: {heatmap_paths[path]}", file=err)
        except NotAScanError as exc:
            skipped += 1
            if len(jobs) == 1:  # named alone: say why; among several (a glob, a folder's files): counted
                print(f"skipped: {exc}", file=err)
            continue
        except ScanError as exc:  # its message already names the file
            failed += 1
            print(f"error: {exc}", file=err)
            continue
        except RadBenchError as exc:
            failed += 1
            print(f"error: {path}: {exc}", file=err)
            continue
        except Exception as exc:  # noqa: BLE001 - one file's surprise must not end the run or print a traceback
            failed += 1
            print(f"error: {path}: unexpected {type(exc).__name__}: {exc}", file=err)
            continue
        print(text, file=out, flush=True)
    if not args.json:
        print(NOT_FOR_CLINICAL_USE, file=out)
    if failed or skipped:
        print(f"{len(jobs) - failed - skipped} classified, {failed} failed, {skipped} skipped (not scans)",
              file=err)
    return 1 if failed else 0


def _what_if_text(pipeline: Pipeline, path: str, frame: int | None, in_series: tuple[Series, int] | None,
                  args: argparse.Namespace) -> tuple[str, Prediction]:
    """The run without ``args.skip`` as a table (or JSON line) with its comparison to the full pipeline."""
    full, changed = what_if(pipeline, path, frame, args.skip)
    if args.json:
        record = {**as_record(changed), **_series_record(in_series), **what_if_record(full, changed)}
        return json.dumps(record, allow_nan=False), changed
    header, *rest = as_table(changed).split("\n")
    marked = f"  WHAT-IF: without {', '.join(changed.skipped)}, {NOT_INTENDED}" if changed.skipped else None
    lines = [header, *([marked] if marked else []), *rest, f"  what-if: {comparison(full, changed, args.skip)}"]
    return _series_line(in_series) + "\n".join(lines), changed


def _series_jobs(paths: list[str], frame: int | None, err: TextIO) -> list[Job]:
    """``--series``: what to classify, (file, frame, (series, slice index) or None): one slice of each series, then
    every other file. A file left out of a series is noted on ``err`` with the reason; a slice index out of a
    series' range raises ``RadBenchError`` before any file runs."""
    grouping = group_series(expand(paths))
    for item in grouping.left_out:
        print(f"note: {item.path} left out of a series ({item.reason}): classified on its own", file=err)
    jobs: list[Job] = []
    for series in grouping.series:
        try:
            index = series.slice_index(frame)
        except IndexError as exc:
            raise RadBenchError(f"--frame: {exc} ({series.title}, {series.files[0].parent})") from None
        jobs.append((str(series.files[index]), None, (series, index)))
    return jobs + [(str(path), frame, None) for path in grouping.singles]


def _series_line(in_series: tuple[Series, int] | None) -> str:
    """The line above a slice's table: "series: CT, 120 slices, series 3: Chest; slice 61 of 120, instance 61"."""
    if in_series is None:
        return ""
    series, index = in_series
    return f"series: {series.title}; {series.describe_slice(index)} (ordered by {series.ordered_by})\n"


def _series_record(in_series: tuple[Series, int] | None) -> dict:
    """The ``series`` field of a slice's JSON record (the UID as its stand-in: no identifying value)."""
    if in_series is None:
        return {}
    series, index = in_series
    return {"series": {"title": series.title, "series_uid": series_uid_stand_in(series.series_uid),
                       "slice": index, "slices": len(series.files), "ordered_by": series.ordered_by,
                       "instance": series.instances[index] if series.instances else None}}


def _heatmap_paths(target: str | None, files: list[str]) -> dict[str, Path]:
    """Where each file's heatmap goes: ``target`` itself for one file, ``target/<file name>_heatmap.png`` for
    several (``chest.dcm_heatmap.png``); each checked by :func:`check_output`."""
    if target is None:
        return {}
    target = Path(target)
    if len(files) == 1 and not target.is_dir():
        paths = {files[0]: target}
    elif not target.is_dir():
        raise RadBenchError(f"{target}: with several files, --heatmap must name an existing folder")
    else:
        paths = {f: target / f"{Path(f).name}_heatmap.png" for f in files}
    for path in paths.values():
        check_output(path)
    return paths


def as_record(p: Prediction) -> dict:
    """The JSON form of a prediction: same content as the table, no patient-identifying values."""
    return {
        "file": str(p.path),
        "frame": p.frame,
        "frames": p.frame_count,
        "modality": p.modality,
        "decoder": p.decoder,
        "decoder_threads": p.decoder_threads,
        "backend": p.backend,
        "model": p.model,
        "label": None if p.withheld else p.label,
        "withheld": p.withheld,
        "probabilities": dict(p.probabilities),
        "timings_ms": {stage: round(ms, 3) for stage, ms in p.timings.as_ms().items()},
        "total_ms": round(p.timings.total_ms, 3),
        "compile_ms": round(p.compile_ms, 3),
        "threads": p.threads.as_dict(),
        "warnings": list(p.warnings),
        "ood_warnings": list(p.ood_warnings),
        "notice": NOT_FOR_CLINICAL_USE,
    }


def as_table(p: Prediction) -> str:
    """A human-readable block: header, probabilities, a per-stage timing table, warnings."""
    modality = quoted(p.modality) if p.modality else "no modality"
    decoder = p.decoder + (f" on {p.decoder_threads} threads" if p.decoder_threads > 1 else "")
    header = (f"{p.path}  [frame {p.frame + 1} of {p.frame_count}, {modality}, decoded by {decoder}, "
              f"backend {p.backend}, model {p.model}]")
    lines = [header, f"  prediction: {p.withheld or (p.label + _decision_note(p))}"]
    width = max(len(label) for label in p.probabilities)
    for label, prob in p.probabilities.items():
        lines.append(f"    {label:<{width}}  {prob * 100:5.1f} %  {'#' * round(prob * 20)}")
    lines.append(f"  {'stage':<12}{'ms':>10}")
    lines += [f"  {stage:<12}{ms:>10.2f}" for stage, ms in p.timings.as_ms().items()]
    lines.append(f"  {'total':<12}{p.timings.total_ms:>10.2f}")
    lines.append(f"  threads: {p.threads.describe()}")
    if p.compile_ms:
        lines.append(f"  numba compile: {describe(p.compile_ms, p.compile_source)} (first use in this process; "
                     "not in the stage times)")
    lines += [f"  warning: {w}" for w in p.ood_warnings + p.warnings]
    return "\n".join(lines)


def _decision_note(p: Prediction) -> str:
    return f"  (decision threshold {p.threshold:.3f} on P({p.positive_label}))" if p.threshold is not None else ""
