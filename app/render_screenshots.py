"""Render the README's screenshots offscreen: ``python -m radbench.app.render_screenshots [OUT_DIR [WIDTHxHEIGHT]]``.

Opens the pediatric chest film in the model's domain, runs the vectorized backend and shows the heatmap; opens the
adult chest radiograph (1841 x 1955: the backends' differences show), compares all backends (3 repeats, for the
whiskers), shows the metadata, races the backends (grabbed mid-race, at the finish, and in presentation mode on a
screen of the screenshots' size); then runs the head MR, whose verdict is withheld, grabbing the window after each
step; then opens the "How?" code view of the adult film's comparison and the Inspector after a Run and a what-if
run without equalize; then runs the Batch window over a copy of the samples with a truncated DICOM file and a README
among them (an error row and a skipped one) and grabs it with its chart open; last opens a generated chest CT series
(one file per slice, shuffled names, and a slice of another size) and grabs it at a slice with its metadata (default
folder: ``app/screenshots``, default size 1600x1000; check 1024x700 too).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

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
    _offscreen_screen(size)
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
        race(window, grab)
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
        series = Path(tmp) / "series"
        _phantom_series(series)
        window.open_files([series])
        _wait(lambda: window.scan_pane.stack is not None)
        window.scan_pane.go_to_frame(12)
        window.tabs.setCurrentWidget(window.metadata_panel)
        grab("series.png")
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


def race(window: MainWindow, grab) -> None:
    """The demo race on the scan shown: mid-race (naive crawling through equalize, the fast lanes done), at the
    finish, and the finish and the comparison in presentation mode."""
    naive = lambda: window.race_view.board.lanes["naive"]  # noqa: E731
    window.race_current()
    _wait(lambda: naive().stage == "equalize" and naive().rows > 1500)
    grab("race_mid.png")
    _wait(lambda: not window.busy)
    grab("race_finish.png")
    window.presentation_action.setChecked(True)
    _wait(lambda: window.isFullScreen())
    grab("presentation.png")
    window.tabs.setCurrentWidget(window.timing_chart)  # the comparison of the same film, in projector type
    grab("presentation_compare.png")
    window.presentation_action.setChecked(False)


def _offscreen_screen(size: tuple[int, int]) -> None:
    """Offscreen, a screen of the screenshots' size, so that full screen (presentation mode) is that size too."""
    if os.environ.get("QT_QPA_PLATFORM") != "offscreen" or QApplication.instance() is not None:
        return
    config = Path(tempfile.gettempdir()) / f"radbench_screen_{size[0]}x{size[1]}.json"
    config.write_text(json.dumps({"screens": [{"name": "screenshots", "x": 0, "y": 0, "width": size[0],
                                               "height": size[1], "logicalDpi": 96, "logicalBaseDpi": 96}]}))
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={config}"


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


def _phantom_series(folder: Path, slices: int = 48, size: int = 256) -> None:
    """A synthetic chest CT series in Hounsfield units (body, lungs, heart, spine as ellipses whose size follows the
    slice), one file per slice under shuffled names, and one slice of another size in the same series."""
    folder.mkdir()
    study, series = generate_uid(), generate_uid()
    y, x = np.mgrid[-1:1:size * 1j, -1:1:size * 1j]
    rng = np.random.default_rng(0)
    names = random.Random(0).sample(range(1, slices + 1), slices)
    for index, name in enumerate(names):
        z = index / (slices - 1)  # 0 at the diaphragm, 1 at the apex
        hu = np.full((size, size), -1000.0)
        hu[(x / 0.9) ** 2 + (y / 0.62) ** 2 < 1] = 40  # body
        lung = 0.32 * (1.1 - 0.6 * z)
        for side in (-1, 1):
            hu[((x - side * 0.38) / lung) ** 2 + (y / (lung * 1.5)) ** 2 < 1] = -850
        hu[((x + 0.1) / (0.26 * (1 - z))) ** 2 + ((y + 0.1) / (0.2 * (1 - z) + 1e-3)) ** 2 < 1] = 45  # heart
        hu[(x / 0.09) ** 2 + ((y - 0.45) / 0.09) ** 2 < 1] = 700  # spine
        pixels = np.clip(hu + rng.normal(0, 12, hu.shape) + 1024, 0, 4095).astype(np.uint16)
        cut = size // 2 if index == slices // 3 else size  # one slice of another size: left out of the stack
        _write_ct_slice(folder / f"IMG{name}.dcm", pixels[:cut, :cut], study, series, index, 2.5 * index)


def _write_ct_slice(path: Path, pixels: np.ndarray, study: str, series: str, index: int, z: float) -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.BodyPartExamined, ds.StudyInstanceUID, ds.SeriesInstanceUID = "CT", "CHEST", study, series
    ds.SeriesNumber, ds.SeriesDescription, ds.InstanceNumber = 3, "Thorax 2.5 mm (synthetic phantom)", index + 1
    ds.ImagePositionPatient, ds.ImageOrientationPatient = [-200.0, -200.0, z], [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing, ds.SliceThickness = [1.5625, 1.5625], 2.5
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.WindowCenter, ds.WindowWidth = [40, -600], [400, 1500]
    ds.WindowCenterWidthExplanation = ["MEDIASTINUM", "LUNG"]
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = pixels.tobytes()
    ds.save_as(path, enforce_file_format=True)


if __name__ == "__main__":
    width, height = map(int, sys.argv[2].split("x")) if len(sys.argv) > 2 else DEFAULT_SIZE
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT, (width, height)))
