"""``radbench inspect``: run the pipeline once and write every stage's output as a PNG, with ``stages.json`` holding
each stage's shape, dtype, range, mean, histogram and time; one summary line per stage."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TextIO

import numpy as np
from PIL import Image

from radbench.app.argument_types import skip_steps
from radbench.inference.atomic_file import write_atomically
from radbench.inference.backends import BACKEND_NAMES
from radbench.inference.benchmarking.numba_compile import describe
from radbench.inference.errors import RadBenchError, ScanError
from radbench.inference.inspection import INSPECTED_STAGES, Inspection, StageOutput, inspect_run
from radbench.inference.model import NOT_FOR_CLINICAL_USE, Model
from radbench.inference.pipeline import Pipeline
from radbench.inference.preprocessing import SKIPPABLE


def add_parser(commands) -> None:
    inspect = commands.add_parser("inspect", help="write every pipeline stage's output as a picture, with its numbers")
    inspect.add_argument("file", help="a DICOM, PNG, JPEG or TIFF file")
    inspect.add_argument("--backend", choices=BACKEND_NAMES, default="vectorized",
                         help="preprocessing backend (default: vectorized)")
    inspect.add_argument("--frame", type=int, default=None,
                         help="frame index of a multi-frame scan, counted from 0 (the output's 'frame 1 of 10' is "
                              "index 0); negative counts from the end (default: the middle frame)")
    inspect.add_argument("--out", default=None, metavar="DIR",
                         help="folder for the pictures and stages.json (default: FILE's name + _stages in the current "
                              "folder; made if its parent exists)")
    inspect.add_argument("--json", action="store_true", help="print stages.json instead of one line per stage")
    inspect.add_argument("--skip", type=skip_steps, default=None, metavar="STAGE[,STAGE]",
                         help=f"leave steps out (what-if; not the model's intended input): {', '.join(SKIPPABLE)}")
    inspect.add_argument("--model", default=None, help="ONNX classifier with a RadBench card (default: bundled)")


def run_inspect(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """0 when written; 1 when the file, the model or the backend failed; 2 when ``--out`` cannot be made (checked
    before the run)."""
    out, err = out or sys.stdout, err or sys.stderr
    folder = Path(args.out) if args.out is not None else Path(f"{Path(args.file).name}_stages")
    problem = _folder_problem(folder)
    if problem:
        print(f"radbench inspect: {folder}: {problem}", file=err)
        return 2
    try:
        pipeline = Pipeline(Model(args.model), args.backend,
                            announce=lambda message: print(message, file=err, flush=True))
        inspection = inspect_run(pipeline, args.file, frame=args.frame, skip=args.skip or ())
    except ScanError as exc:  # its message names the file
        print(f"radbench inspect: {exc}", file=err)
        return 1
    except RadBenchError as exc:
        print(f"radbench inspect: {args.file}: {exc}", file=err)
        return 1
    try:
        folder.mkdir(exist_ok=True)
        record = write_inspection(inspection, folder)
    except OSError as exc:
        print(f"radbench inspect: {folder}: cannot write ({exc.strerror or exc})", file=err)
        return 1
    if args.json:
        print(json.dumps(record, indent=1, allow_nan=False), file=out)
        return 0
    p = inspection.prediction
    skipped = f", without {', '.join(p.skipped)} (not the model's intended input)" if p.skipped else ""
    print(f"{p.path}  [frame {p.frame + 1} of {p.frame_count}, backend {p.backend}, model {p.model}{skipped}]",
          file=out)
    for stage, entry in zip(inspection.stages, record["stages"]):
        print(summary_line(stage, entry["picture"]), file=out)
    if p.compile_ms:
        print(f"numba compile: {describe(p.compile_ms, p.compile_source)} (first use in this process; not in the "
              "stage times)", file=out)
    verdict = p.withheld or f"{p.label} {p.probabilities[p.label]:.1%}"
    print(f"prediction: {verdict}\nwritten to {folder}: one PNG per stage and stages.json (pictures: see 'mapping' "
          f"there)\n{NOT_FOR_CLINICAL_USE}", file=out)
    return 0


def _folder_problem(folder: Path) -> str:
    """Why ``folder`` cannot take the output (empty if it can): an existing folder, or a new one in an existing
    folder, that this process may write to."""
    if folder.exists():
        return "" if folder.is_dir() and os.access(folder, os.W_OK | os.X_OK) else (
            "is not a folder" if not folder.is_dir() else "cannot write in this folder")
    parent = folder.absolute().parent
    if not parent.is_dir():
        return f"cannot make the output folder: {parent} does not exist (only the last folder is made)"
    return "" if os.access(parent, os.W_OK | os.X_OK) else f"cannot make the output folder in {parent}"


def picture_name(stage: str) -> str:
    """The file name of a stage's picture: its place in :data:`INSPECTED_STAGES` and its name, ``3_window.png``."""
    return f"{INSPECTED_STAGES.index(stage) + 1}_{stage}.png"


def write_inspection(inspection: Inspection, folder: Path) -> dict:
    """Write each stage's picture and ``stages.json`` (its record, each stage naming its picture) into ``folder``. The
    PNGs are compressed lightly: at the default level, a full-size film's seven took 4 s of a 6 s run."""
    record = inspection.record()
    for stage, entry in zip(inspection.stages, record["stages"]):
        entry["picture"] = picture_name(stage.name)
        image = Image.fromarray(stage.picture())
        write_atomically(folder / entry["picture"],
                         lambda file, image=image: image.save(file, format="PNG", compress_level=1), binary=True)
    write_atomically(folder / "stages.json", lambda file: json.dump(record, file, indent=1, allow_nan=False))
    return record


def summary_line(stage: StageOutput, picture: str) -> str:
    """One stage in a line: name, shape and dtype, min, max, mean, time, picture."""
    shape = " x ".join(str(n) for n in stage.values.shape)
    time = "not timed" if stage.ms is None else f"{stage.ms:.2f} ms"
    mean = float(stage.values.mean(dtype=np.float64))
    return (f"  {stage.name:<10}{shape:>18} {stage.values.dtype!s:<8} min {stage.low:<10.4g} "
            f"max {stage.high:<10.4g} mean {mean:<10.4g} {time:>10}  {picture}")
