"""Opening scans in the background: each request loads its files on a superqt worker thread (apart from runs,
so opening never waits for one, and several requests may overlap), then reports back on the GUI thread."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtWidgets import QStatusBar
from superqt.utils import create_worker

from radbench.app import scan_files
from radbench.inference.wording import counted


class ScanOpener(QObject):
    """``opened`` carries the scans of one request, in order; ``problems`` every failure of that request, once, each
    line naming the file and the reason.
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
        """Load ``paths`` (folders expanded) in the background; nothing happens if they hold no file. Files that are
        not scans are reported only when named on their own (:func:`scan_files.quiet_skips`)."""
        files = scan_files.expand(paths)
        if not files:
            return
        scan_files.remember_folder(self._settings, paths)
        quiet = scan_files.quiet_skips(paths)
        worker = create_worker(lambda: scan_files.load_scans(files), _start_thread=False, _ignore_errors=True)
        worker.returned.connect(lambda loaded: self._loaded(loaded, quiet))
        worker.errored.connect(lambda exc: self.problems.emit("Opening failed", [f"unexpected: {exc}"]))
        worker.finished.connect(lambda: self._workers.discard(worker))
        self._workers.add(worker)
        self._status.showMessage(f"Opening {counted(len(files), 'file')}…")
        worker.start()

    def _loaded(self, loaded: scan_files.Loaded, quiet: bool) -> None:
        if loaded.scans:
            scan_files.remember(self._settings, [s.path for s in loaded.scans])
            self.opened.emit(loaded.scans)
        skipped = [] if quiet else loaded.skipped
        parts = []
        if loaded.failed:
            parts.append(f"{counted(len(loaded.failed), 'file')} could not be opened")
        if skipped:
            parts.append("1 file is not a scan" if len(skipped) == 1 else f"{len(skipped)} files are not scans")
        if parts:
            self.problems.emit("; ".join(parts), loaded.failed + skipped)
        others = f"; skipped {counted(len(loaded.skipped), 'file')} that are not scans" if loaded.skipped else ""
        self._status.showMessage(f"Opened {counted(len(loaded.scans), 'scan')}{others}", 8000)
