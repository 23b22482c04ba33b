"""Start the desktop app. Knows nothing of the command line: ``cli`` asks :func:`has_display` first and runs
``radbench predict`` instead when there is none."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence


def has_display() -> bool:
    """False on Linux/BSD without X11 or Wayland, unless a Qt platform (e.g. offscreen) is chosen explicitly."""
    if sys.platform in ("win32", "darwin") or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def launch(files: Sequence[str]) -> int:
    """Open the main window with ``files`` (a bundled sample on first start); returns Qt's exit status.

    Needs a display (:func:`has_display`); without one this raises instead of letting Qt abort the process.
    """
    if not has_display():
        raise RuntimeError("no display (no DISPLAY or WAYLAND_DISPLAY): the desktop app cannot open")
    from PySide6.QtWidgets import QApplication

    from radbench.app import scan_files
    from radbench.app.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("RadBench")
    app.setOrganizationName("RadBench")
    window = MainWindow()
    first_start = not window.settings.value("started", False, type=bool)
    window.settings.setValue("started", True)
    if files:
        window.open_files(files)
    elif first_start and scan_files.FIRST_SAMPLE.is_file():
        window.open_files([scan_files.FIRST_SAMPLE])
    window.show()
    return app.exec()
