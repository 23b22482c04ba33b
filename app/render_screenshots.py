"""Render the README's screenshots offscreen: ``python -m radbench.app.render_screenshots [OUT_DIR]``.

Opens the bundled chest radiograph, runs the vectorized backend, shows the heatmap, compares all backends
and grabs the window after each step (default folder: ``app/screenshots``).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QCoreApplication, QEventLoop, QSettings, QThreadPool, QTimer
from PySide6.QtWidgets import QApplication

from radbench.app.main_window import MainWindow
from radbench.app.scan_files import FIRST_SAMPLE

DEFAULT_OUT = Path(__file__).resolve().parent / "screenshots"


def _wait(condition, timeout_s: float = 600) -> None:
    loop, waited = QEventLoop(), 0.0
    while not condition():
        if waited > timeout_s:
            raise TimeoutError("the window did not finish in time")
        QTimer.singleShot(50, loop.quit)
        loop.exec()
        waited += 0.05


def main(out: Path = DEFAULT_OUT) -> int:
    out.mkdir(parents=True, exist_ok=True)
    _app = QApplication.instance() or QApplication(sys.argv[:1])  # kept alive for the whole run
    with tempfile.TemporaryDirectory() as tmp:
        window = MainWindow(settings=QSettings(str(Path(tmp) / "s.ini"), QSettings.Format.IniFormat))
        window.resize(1500, 900)
        window.show()
        index = window.backend.findData("numba")
        _wait(lambda: "compiled" in window.backend.itemText(index))
        window.open_files([FIRST_SAMPLE])
        _wait(lambda: window.current_scan is not None)
        window.run_current()
        _wait(lambda: not window.busy)
        window.grab().save(str(out / "prediction.png"))
        window.overlay.setChecked(True)
        QCoreApplication.processEvents()
        window.grab().save(str(out / "heatmap.png"))
        window.repeats.setValue(1)
        window.compare_current()
        _wait(lambda: not window.busy)
        window.grab().save(str(out / "compare.png"))
        window.tabs.setCurrentWidget(window.metadata_panel)
        QCoreApplication.processEvents()
        window.grab().save(str(out / "metadata.png"))
        window.close()
        QThreadPool.globalInstance().waitForDone()
    print(f"wrote {', '.join(p.name for p in sorted(out.glob('*.png')))} to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT))
