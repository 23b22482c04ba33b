"""The errors RadBench raises on purpose: each names the file or the step and the reason in words."""

from __future__ import annotations

from pathlib import Path


class RadBenchError(Exception):
    """Base class: anything RadBench reports to a user as one clear line."""


class ScanError(RadBenchError):
    """A file could not be read as a scan.

    ``str(error)`` is ``"<path>: <reason>"``, ready to show to a user.
    """

    def __init__(self, path: str | Path, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


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
