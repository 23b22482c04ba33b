"""The errors RadBench raises on purpose: each names the file or the step and the reason in words."""

from __future__ import annotations

import re
from pathlib import Path

#: A plain DICOM code string (CS: letters, digits, underscore and space, at most 16 characters), e.g. CT, CHEST.
CODE_STRING = re.compile(r"[A-Za-z0-9_ ]{1,16}")

#: Characters that would end or forge a line of output, or cannot be encoded: C0/C1 controls, DEL, the Unicode
#: line and paragraph separators, and the lone surrogates that stand for undecodable bytes in file names.
_UNPRINTABLE = {c: repr(chr(c))[1:-1] for c in (*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029)}
_UNPRINTABLE.update({c: f"\\x{c - 0xDC00:02x}" for c in range(0xDC80, 0xDD00)})


def printable(text: str) -> str:
    """``text`` as one line of output: control characters, line separators and undecodable bytes escaped."""
    return text.translate(_UNPRINTABLE)


def quoted(value: object, limit: int = 32) -> str:
    """A value read from a file or a card, as shown inside a line: a plain DICOM code string (``CT``, ``LEFT
    KNEE``) as it is, anything else quoted, escaped onto one line and cut after ``limit`` characters."""
    text = str(value)
    if CODE_STRING.fullmatch(text):
        return text
    text = printable(text)
    return f"'{text[:limit]}…'" if len(text) > limit else f"'{text}'"


class RadBenchError(Exception):
    """Base class: anything RadBench reports to a user as one clear line."""


class ScanError(RadBenchError):
    """A file could not be read as a scan.

    ``str(error)`` is ``"<path>: <reason>"`` on one line (see :func:`printable`), ready to show to a user.
    """

    def __init__(self, path: str | Path, reason: str):
        self.path = Path(path)
        self.reason = printable(reason)
        super().__init__(f"{printable(str(self.path))}: {self.reason}")

    def __reduce__(self):  # pickles with its path and reason (errors cross process boundaries)
        return type(self), (self.path, self.reason)


class ModelError(RadBenchError):
    """An ONNX model or its card cannot be used."""


class BackendError(RadBenchError):
    """A preprocessing backend is unknown, unavailable, or was given input it refuses."""


class Cancelled(RadBenchError):
    """The caller asked a running pipeline to stop."""

    def __init__(self) -> None:
        super().__init__("cancelled")


class NotAScanError(ScanError):
    """The file is readable but holds no image to classify (a text file, a DICOMDIR, a structured report).

    Front ends report it as *skipped*, not as a failure: pointing RadBench at a folder with a README in
    it is not an error.
    """
