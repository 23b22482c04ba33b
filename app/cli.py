"""The ``radbench`` command line: one entry point with subcommands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from inference.backends import BACKEND_NAMES
from inference.model import NOT_FOR_CLINICAL_USE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="radbench",
        description=f"RadBench: preprocess and classify medical scans, and time every stage. {NOT_FOR_CLINICAL_USE}",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    predict = commands.add_parser("predict", help="classify scans and show per-stage timings")
    predict.add_argument("files", nargs="+", metavar="FILE", help="DICOM, PNG, JPEG or TIFF files")
    predict.add_argument("--backend", choices=BACKEND_NAMES, default="vectorized",
                         help="preprocessing backend (default: vectorized)")
    predict.add_argument("--frame", type=int, default=None,
                         help="frame index of a multi-frame scan (default: the middle frame)")
    predict.add_argument("--json", action="store_true", help="print one JSON object per file instead of tables")
    predict.add_argument("--model", default=None, help="ONNX classifier with a RadBench card (default: bundled)")
    predict.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (default: 1)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "predict":
        from app.predict_command import run_predict

        return run_predict(args)
    build_parser().print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
