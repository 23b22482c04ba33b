"""argparse types shared by the subcommands (kept apart from ``cli`` so a subcommand needs no import of it)."""

from __future__ import annotations

import argparse
import math


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


def fraction(text: str) -> float:
    """An argparse type: a number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise argparse.ArgumentTypeError(f"needs a number from 0 to 1 (got {text!r})")
    return value
