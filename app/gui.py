"""Start the desktop app, or say how to use the command line when there is no display."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from radbench.app import scan_files
from radbench.sample_images import sample_files


def has_display() -> bool:
    """False on Linux/BSD without X11 or Wayland, unless a Qt platform (e.g. offscreen) is chosen explicitly."""
    if sys.platform in ("win32", "darwin") or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def launch(files: Sequence[str]) -> int:
    """Open the main window with ``files`` (a bundled sample on first start); returns Qt's exit status."""
    if not has_display():
        return _no_display(files)
    from PySide6.QtWidgets import QApplication

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


def _no_display(files: Sequence[str]) -> int:
    """Headless: say so, show the command-line equivalent, and run it on the files (or the bundled samples)."""
    from radbench.app.cli import main

    targets = list(files) or [str(p) for p in sample_files()]
    print("radbench: no display here (no DISPLAY or WAYLAND_DISPLAY), so the desktop app cannot open.\n"
          "Use the command line instead, e.g.:\n"
          f"  radbench predict {' '.join(targets) if files else 'sample_images/*'}\n"
          "  radbench predict FILE --heatmap OUT.png\n"
          "Running the first of these now.\n", file=sys.stderr, flush=True)
    return main(["predict", *targets])
