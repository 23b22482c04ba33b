"""Render the README's screenshots offscreen: ``python -m radbench.app.render_screenshots [OUT_DIR [WIDTHxHEIGHT]]``.

Opens the pediatric chest film in the model's domain, runs the vectorized backend and shows the heatmap; opens the
adult chest radiograph (1841 x 1955: the backends' differences show), compares all backends (3 repeats, for the
whiskers), shows the metadata; then runs the head MR, whose verdict is withheld, grabbing the window after each
step; then opens the "How?" code view of the adult film's comparison and the Inspector after a Run and a what-if
run without equalize; then runs the Batch window over a copy of the samples with a truncated DICOM file and a README
among them (an error row and a skipped one) and grabs it with its chart open (default folder: ``app/screenshots``,
default size 1600x1000; check 1024x700 too).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QCoreApplication, QEventLoop, QSettings, QThreadPool, QTimer
from PySide6.QtWidgets import QApplication

from radbench.app.main_window import MainWindow
from radbench.app.samples import sample_files
from radbench.app.scan_files import ADULT_FILM

DEFAULT_OUT = Path(__file__).resolve().parent / "screenshots"
DEFAULT_SIZE = (1600, 1000)
HEAD_MR = ADULT_FILM.with_name("mr_head_multiframe_10_emri_small.dcm")
IN_DOMAIN = ADULT_FILM.with_name("chest_pediatric_pneumonia.dcm")


def _wait(condition, timeout_s: float = 600) -> None:
    loop, waited = QEventLoop(), 0.0
    while not condition():
        if waited > timeout_s:
            raise TimeoutError("the window did not finish in time")
        QTimer.singleShot(50, loop.quit)
        loop.exec()
        waited += 0.05


def main(out: Path = DEFAULT_OUT, size: tuple[int, int] = DEFAULT_SIZE) -> int:
    out.mkdir(parents=True, exist_ok=True)
    _app = QApplication.instance() or QApplication(sys.argv[:1])  # kept alive for the whole run
    with tempfile.TemporaryDirectory() as tmp:
        window = MainWindow(settings=QSettings(str(Path(tmp) / "s.ini"), QSettings.Format.IniFormat))
        window.resize(*size)
        window.show()

        def grab(name: str) -> None:
            QCoreApplication.processEvents()
            window.grab().save(str(out / name))

        _wait(lambda: window.numba_compile is not None)
        for path in (IN_DOMAIN, ADULT_FILM):
            window.open_files([path])
            _wait(lambda p=path: window.current_scan is not None and window.current_scan.path == p)
        window.scan_list.setCurrentRow(0)  # the pediatric film
        window.run_current()
        _wait(lambda: not window.busy)
        grab("prediction.png")
        window.overlay.setChecked(True)
        grab("heatmap.png")
        window.scan_list.setCurrentRow(1)  # the adult radiograph
        window.repeats.setValue(3)
        window.compare_current()
        _wait(lambda: not window.busy)
        grab("compare.png")
        window.tabs.setCurrentWidget(window.metadata_panel)
        grab("metadata.png")
        window.overlay.setChecked(False)
        window.open_files([HEAD_MR])
        _wait(lambda: window.current_scan is not None and window.current_scan.path == HEAD_MR)
        window.run_current()
        _wait(lambda: not window.busy)
        window.tabs.setCurrentWidget(window.prediction_panel)
        grab("withheld.png")
        window.scan_list.setCurrentRow(1)  # the adult radiograph, compared above
        _code_view(window, size, out / "code.png")
        _inspector(window, grab)
        _batch(window, Path(tmp), size, out / "batch.png")
        window.close()
        QThreadPool.globalInstance().waitForDone()
    print(f"wrote {', '.join(p.name for p in sorted(out.glob('*.png')))} to {out}")
    return 0


def _code_view(window: MainWindow, size: tuple[int, int], path: Path) -> None:
    """The "How?" window of the comparison on screen: equalize in every backend, numba's column marked."""
    window.tabs.setCurrentWidget(window.timing_chart)
    window.timing_chart.how.linkActivated.emit("numba")
    view = window.timing_chart.code_view
    view.resize(*size)
    QCoreApplication.processEvents()
    view.grab().save(str(path))
    view.close()


def _inspector(window: MainWindow, grab) -> None:
    """The Inspector after a Run and a what-if run without equalize, the window stage chosen."""
    window.run_current()
    _wait(lambda: not window.busy)
    window.tabs.setCurrentWidget(window.inspector)
    window.inspector.toggles["equalize"].setChecked(True)
    _wait(lambda: not window.busy and bool(window.inspector.what_if_result.text()))
    window.inspector.strip.setCurrentRow(window.inspector.stage_names.index("window"))
    grab("inspector.png")
    window.inspector.toggles["equalize"].setChecked(False)


def _batch(window: MainWindow, tmp: Path, size: tuple[int, int], path: Path) -> None:
    """The Batch window after a run over the samples, a truncated DICOM file (an error) and a README (skipped)."""
    folder = tmp / "batch"
    folder.mkdir()
    for sample in sample_files():
        shutil.copy(sample, folder / sample.name)
    (folder / "truncated.dcm").write_bytes(ADULT_FILM.read_bytes()[:2000])
    (folder / "README.md").write_text("Not a scan.\n")
    dialog = window.open_batch()
    dialog.resize(*size)
    dialog.folder.setText(str(folder))
    dialog.workers.setValue(1)
    dialog.start()
    _wait(lambda: not dialog.running)
    dialog.show_chart(True)
    withheld = next(r for r in range(dialog.proxy.rowCount()) if dialog.proxy.index(r, 5).data())
    dialog.table.selectRow(withheld)
    QCoreApplication.processEvents()
    dialog.grab().save(str(path))
    dialog.close()


if __name__ == "__main__":
    width, height = map(int, sys.argv[2].split("x")) if len(sys.argv) > 2 else DEFAULT_SIZE
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT, (width, height)))
