"""Counts in words: "1 file", "3 files", never "3 file(s)"."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` and ``noun``, the noun in the plural (``noun + "s"`` unless given) for any count but 1."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"
