"""argparse types shared by the subcommands (kept apart from ``cli`` so a subcommand needs no import of it), and the
one rule for a ``--threads`` count above what this process may use."""

from __future__ import annotations

import argparse
import math
from typing import TextIO

from radbench.inference.loading.decoders import DECODER_NAMES
from radbench.inference.machine import usable_cpus

#: ``--threads`` help shared by predict, batch and bench.
THREADS_HELP = ("threads of Numba's parallel kernels, of ONNX Runtime's infer and of the decoders that have threads of "
                "their own (default: Numba and decoders on every CPU this process may use, as far as other processes "
                "leave them free, ONNX Runtime on 1; more than the CPUs this process may use are capped, with a note)")
#: ``--decoder`` help shared by predict, batch and bench.
DECODER_HELP = ("decode with this decoder only; a file it cannot decode is an error naming the decoders that could "
                f"(never another decoder): {', '.join(DECODER_NAMES)} (default: the fastest for the file's transfer "
                "syntax, see the README)")


def count(minimum: int):
    """An argparse type: a whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"needs a whole number of at least {minimum} (got {text!r})")
        return value

    return parse


def counts(minimum: int):
    """An argparse type: whole numbers of at least ``minimum`` separated by commas (``1,2``), as a tuple in
    increasing order without repeats."""

    def parse(text: str) -> tuple[int, ...]:
        try:
            values = [int(part) for part in text.split(",")]
        except ValueError:
            values = [minimum - 1]
        if min(values) < minimum:
            raise argparse.ArgumentTypeError(f"needs whole numbers of at least {minimum} separated by commas, "
                                             f"such as 1,2 (got {text!r})")
        return tuple(sorted(set(values)))

    return parse


def fraction(text: str) -> float:
    """An argparse type: a number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise argparse.ArgumentTypeError(f"needs a number from 0 to 1 (got {text!r})")
    return value


def capped_threads(requested: int, err: TextIO) -> int:
    """``requested`` threads, capped at the CPUs this process may use and at Numba's ``NUMBA_NUM_THREADS`` (the most
    it can run), with a note on ``err`` when capped."""
    from radbench.inference.threads import thread_limit

    usable, numba = usable_cpus(), thread_limit()
    if requested <= min(usable, numba):
        return requested
    why = "the CPUs this process may use" if usable <= numba else "Numba's NUMBA_NUM_THREADS"
    print(f"note: --threads {requested} capped at {min(usable, numba)}, {why}", file=err)
    return min(usable, numba)


def skip_steps(text: str) -> tuple[str, ...]:
    """An argparse type: steps of :data:`~inference.preprocessing.SKIPPABLE` separated by commas (``window,invert``),
    in pipeline order without repeats."""
    from radbench.inference.preprocessing import SKIPPABLE

    steps = {part.strip() for part in text.split(",")}
    if not steps or not steps <= set(SKIPPABLE):
        raise argparse.ArgumentTypeError(f"needs steps among {', '.join(SKIPPABLE)} separated by commas (got {text!r})")
    return tuple(step for step in SKIPPABLE if step in steps)
