"""Opening scans in the background: each request groups DICOM slices into series and loads the other files on a
superqt worker thread (apart from runs, so opening never waits for one, and several requests may overlap), then
reports back on the GUI thread."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtWidgets import QStatusBar
from superqt.utils import create_worker

from radbench.app import scan_files
from radbench.inference.series import Grouping, expand
from radbench.inference.wording import counted

#: Files left out of a series that the status bar names (with the reason); more are listed in a message box.
LEFT_OUT_IN_STATUS = 3


class ScanOpener(QObject):
    """``opened`` carries the entries of one request, in order: each series as one
    :class:`~inference.series.SeriesStack`, then the other scans; ``problems`` every failure of that request, once,
    each line naming the file and the reason.
    Remembers the folder and the recent files in ``settings``; says what it does in ``status``."""

    opened = Signal(list)  # list[SeriesStack | Scan]
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
        files = expand(paths)  # folders in natural order: f2 before f10
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
        if loaded.entries:
            folders = list(dict.fromkeys(stack.series.files[0].parent for stack in loaded.series))
            scan_files.remember(self._settings, [*folders, *(s.path for s in loaded.scans)])
            self.opened.emit(loaded.entries)
        skipped = [] if quiet else loaded.skipped
        parts = []
        if loaded.failed:
            parts.append(f"{counted(len(loaded.failed), 'file')} could not be opened")
        if skipped:
            parts.append("1 file is not a scan" if len(skipped) == 1 else f"{len(skipped)} files are not scans")
        left_out = loaded.grouping.left_out
        if len(left_out) > LEFT_OUT_IN_STATUS:  # more than the status bar names
            parts.append(f"{counted(len(left_out), 'file')} left out of a series (each opened on its own)")
        if parts:
            lines = [f"{item.path}: {item.reason}" for item in left_out] if len(left_out) > LEFT_OUT_IN_STATUS else []
            self.problems.emit("; ".join(parts), loaded.failed + skipped + lines)
        others = f"; skipped {counted(len(loaded.skipped), 'file')} that are not scans" if loaded.skipped else ""
        opened = _grouping_note(loaded.grouping) or counted(len(loaded.entries), 'scan')
        message = f"Opened {opened}{others}"
        self._status.showMessage(message, 30000 if loaded.grouping.series else 8000)
        self._status.setToolTip(f"Last opening: {message}")  # in full where the window is too narrow for it


def _grouping_note(grouping: Grouping) -> str:
    """What was opened when files were grouped into series or left out of one: "2000 files: 1 series (1999 slices),
    1 single file; 1 file left out of a series: f7.dcm (no Series Instance UID)", naming the first
    :data:`LEFT_OUT_IN_STATUS` files left out, then how many more; "" when neither happened."""
    if not grouping.series and not grouping.left_out:
        return ""
    named = ", ".join(f"{item.path.name} ({item.reason})" for item in grouping.left_out[:LEFT_OUT_IN_STATUS])
    more = len(grouping.left_out) - LEFT_OUT_IN_STATUS
    return (grouping.summary() + (f": {named}" if named else "")
            + (f" and {more} more (listed in the message)" if more > 0 else ""))
