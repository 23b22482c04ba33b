"""The ``radbench`` command line: one entry point with subcommands."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence

from radbench.app.argument_types import DECODER_HELP, THREADS_HELP, count, fraction, skip_steps
from radbench.app.samples import sample_files
from radbench.inference.backends import BACKEND_NAMES
from radbench.inference.loading.decoders import DECODER_NAMES
from radbench.inference.model import NOT_FOR_CLINICAL_USE

#: The subcommands; anything else as the first argument is a file for the desktop app.
COMMANDS = ("predict", "batch", "bench", "profile", "inspect", "gui")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="radbench",
        description=f"RadBench: preprocess and classify medical scans, and time every stage. {NOT_FOR_CLINICAL_USE}",
        epilog="With no command, or with only files (radbench FILE...), the desktop app opens.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    predict = commands.add_parser("predict", help="classify scans and show per-stage timings")
    predict.add_argument("files", nargs="+", metavar="FILE",
                         help="DICOM, PNG, JPEG or TIFF files (with --series, folders too)")
    predict.add_argument("--backend", choices=BACKEND_NAMES, default="vectorized",
                         help="preprocessing backend (default: vectorized)")
    predict.add_argument("--frame", type=int, default=None,
                         help="frame index of a multi-frame scan, or with --series slice index of a series, in "
                              "anatomical order, counted from 0 (the output's 'frame 1 of 10' is index 0); negative "
                              "counts from the end (default: the middle one)")
    predict.add_argument("--series", action="store_true",
                         help="group the DICOM files (folders expanded) into series and classify one slice of each "
                              "(--frame); other files as usual")
    predict.add_argument("--json", action="store_true", help="print one JSON object per file instead of tables")
    predict.add_argument("--model", default=None, help="ONNX classifier with a RadBench card (default: bundled)")
    predict.add_argument("--threads", type=count(1), default=None, metavar="N", help=THREADS_HELP)
    predict.add_argument("--decoder", choices=DECODER_NAMES, default=None, metavar="NAME", help=DECODER_HELP)
    predict.add_argument("--heatmap", metavar="OUT.png", default=None,
                         help="write the scan with the model's heatmap blended in (with several files: a folder)")
    predict.add_argument("--opacity", type=fraction, default=0.5, help="heatmap opacity, 0 to 1 (default: 0.5)")
    predict.add_argument("--skip", type=skip_steps, default=None, metavar="STAGE[,STAGE]",
                         help="what-if: run without these steps and show the probability beside the full pipeline's "
                              "(not the model's intended input): window (the image's own range instead of the "
                              "file's window), equalize, invert (ignore MONOCHROME1)")
    from radbench.app.batch_command import add_parser as add_batch
    from radbench.app.bench_command import add_parser as add_bench
    from radbench.app.inspect_command import add_parser as add_inspect
    from radbench.app.profile_command import add_parser as add_profile

    add_batch(commands)
    add_bench(commands)
    add_profile(commands)
    add_inspect(commands)
    gui = commands.add_parser("gui", help="open the desktop app (the default with no command)")
    gui.add_argument("files", nargs="*", metavar="FILE", help="scans or folders to open")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _run(argv)
    except BrokenPipeError:  # ``radbench predict ... | head``: the reader left early, which is no error of ours
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's own flush at exit is quiet
        return 141  # 128 + SIGPIPE, as a shell reports it


def _run(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or (argv[0] not in COMMANDS and not argv[0].startswith("-")):
        argv = ["gui", *argv]  # ``radbench`` and ``radbench FILE...`` open the desktop app
    args = parser.parse_args(argv)
    if args.command == "predict":
        from radbench.app.predict_command import run_predict

        return run_predict(args)
    if args.command == "bench":
        from radbench.app.bench_command import run_bench

        return run_bench(args)
    if args.command == "profile":
        from radbench.app.profile_command import run_profile

        return run_profile(args)
    if args.command == "inspect":
        from radbench.app.inspect_command import run_inspect

        return run_inspect(args)
    if args.command == "batch":
        from radbench.app.batch_command import run_batch_command

        return run_batch_command(args)
    from radbench.app.gui import has_display, launch

    return launch(args.files) if has_display() else _predict_without_display(args.files)


def _predict_without_display(files: Sequence[str]) -> int:
    """Headless: say so, show the command-line equivalent, and run it on the files (or the bundled samples)."""
    targets = list(files) or [str(p) for p in sample_files()]
    print("radbench: no display here (no DISPLAY or WAYLAND_DISPLAY), so the desktop app cannot open.\n"
          "Use the command line instead, e.g.:\n"
          f"  radbench predict {' '.join(targets) if files else 'sample_images/*'}\n"
          "  radbench predict FILE --heatmap OUT.png\n"
          "Running the first of these now.\n", file=sys.stderr, flush=True)
    return main(["predict", *targets])


if __name__ == "__main__":
    sys.exit(main())
