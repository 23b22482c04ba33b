"""Opening scans in the background: each request loads its files on a superqt worker thread (apart from runs,
so opening never waits for one, and several requests may overlap), then reports back on the GUI thread."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtWidgets import QStatusBar
from superqt.utils import create_worker

from radbench.app import scan_files
from radbench.inference.scan import Scan


class ScanOpener(QObject):
    """``opened`` carries the scans of one request, in order; ``problems`` every failure of that request, once.
    Remembers the folder and the recent files in ``settings``; says what it does in ``status``."""

    opened = Signal(list)  # list[Scan]
    problems = Signal(str, list)  # title, problem lines

    def __init__(self, settings: QSettings, status: QStatusBar, parent: QObject | None = None):
        super().__init__(parent)
        self._settings, self._status = settings, status
        self._workers: set = set()

    @property
    def busy(self) -> bool:
        """True while any request is still loading."""
        return bool(self._workers)

    def open(self, paths: Sequence[str | Path]) -> None:
        """Load ``paths`` (folders expanded) in the background; nothing happens if they hold no file."""
        files = scan_files.expand(paths)
        if not files:
            return
        scan_files.remember_folder(self._settings, paths)
        worker = create_worker(lambda: scan_files.load_scans(files), _start_thread=False, _ignore_errors=True)
        worker.returned.connect(self._loaded)
        worker.errored.connect(lambda exc: self.problems.emit("Opening failed", [f"unexpected: {exc}"]))
        worker.finished.connect(lambda: self._workers.discard(worker))
        self._workers.add(worker)
        self._status.showMessage(f"Opening {len(files)} file(s)…")
        worker.start()

    def _loaded(self, result: tuple[list[Scan], list[str], int]) -> None:
        scans, problems, skipped = result
        if scans:
            scan_files.remember(self._settings, [s.path for s in scans])
            self.opened.emit(scans)
        if skipped:
            problems.append(f"{skipped} file(s) skipped: not DICOM or image files")
        if problems:
            self.problems.emit(f"{len(problems)} problem(s) while opening {len(scans) + len(problems)} file(s)",
                               problems)
        self._status.showMessage(f"Opened {len(scans)} scan(s)", 5000)
