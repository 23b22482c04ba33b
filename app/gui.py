"""Start the desktop app. Knows nothing of the command line: ``cli`` asks :func:`has_display` first and runs
``radbench predict`` instead when there is none; :func:`launch` does the same when Qt's X11 platform lacks a system
library (it names the packages to install), instead of letting Qt abort the process."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence

from radbench.app.qt_platform import XCB_LIBRARIES, SystemLibrary, install_hint, missing_libraries, uses_xcb


def has_display() -> bool:
    """False on Linux/BSD without X11 or Wayland, unless a Qt platform (e.g. offscreen) is chosen explicitly."""
    if sys.platform in ("win32", "darwin") or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def launch(files: Sequence[str], libraries: Iterable[SystemLibrary] = XCB_LIBRARIES) -> int:
    """Open the main window with ``files`` (a bundled sample on first start).

    Needs a display (:func:`has_display`); without one this raises instead of letting Qt abort the process. When Qt
    would start on X11 (xcb) and one of ``libraries`` is missing, it says in one line which packages to install and
    runs ``radbench predict`` on the files instead, returning its exit status.

    When the window closes, background work is stopped (:meth:`MainWindow.shutdown` on ``aboutToQuit``) and the
    process ends at once with Qt's exit status (``os._exit``, after flushing the output): settings are saved by
    then, and nothing is left to tear down but the interpreter's heap and an uninterruptible Numba warm-up.
    """
    if not has_display():
        raise RuntimeError("no display (no DISPLAY or WAYLAND_DISPLAY): the desktop app cannot open")
    if uses_xcb():
        missing = missing_libraries(libraries)
        if missing:
            print(install_hint(missing), file=sys.stderr, flush=True)
            return _predict_instead(files)
    from PySide6.QtWidgets import QApplication

    from radbench.app import scan_files
    from radbench.app.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("RadBench")
    app.setOrganizationName("RadBench")
    window = MainWindow()
    app.aboutToQuit.connect(window.shutdown)
    first_start = not window.settings.value("started", False, type=bool)
    window.settings.setValue("started", True)
    if files:
        window.open_files(files)
    elif first_start:
        window.open_files([path for path in scan_files.FIRST_START if path.is_file()])
    window.show()
    status = app.exec()
    window.settings.sync()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _predict_instead(files: Sequence[str]) -> int:
    """``radbench predict`` on ``files`` (the bundled samples when none), as the no-display path does."""
    from radbench.app.cli import main
    from radbench.app.samples import sample_files

    targets = list(files) or [str(p) for p in sample_files()]
    print(f"Running `radbench predict {' '.join(targets) if files else 'sample_images/*'}` instead.\n",
          file=sys.stderr, flush=True)
    return main(["predict", *targets])
