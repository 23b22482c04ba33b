"""The desktop window driven like a user would, offscreen: open, run, compare, cancel, errors, privacy."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import bomb_files
import pytest
from pydicom.data import get_testdata_file
from PySide6.QtCore import QPoint, QPointF, QSettings, Qt, QTimer
from PySide6.QtGui import QColor, QMouseEvent
from PySide6.QtWidgets import QApplication

from radbench.app.main_window import MainWindow
from radbench.app.metadata_panel import HIDDEN
from radbench.inference.backends import BACKEND_NAMES
from radbench.inference.benchmarking.numba_compile import describe

CT = Path(get_testdata_file("CT_small.dcm"))
CHEST = Path(__file__).resolve().parent.parent / "sample_images" / "chest_cr_rg1_j2k_lossless.dcm"


@pytest.fixture
def settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "radbench.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, settings) -> MainWindow:
    win = MainWindow(settings=settings, warm_numba=False)
    qtbot.addWidget(win)
    win.show()
    return win


def _open(qtbot, window, *paths, expect=1):
    before = len(window.scans)
    window.open_files(list(paths))
    qtbot.waitUntil(lambda: not window.opening, timeout=30000)
    assert len(window.scans) == before + expect
    return window.scans[-1] if expect else None


def _run(qtbot, window, backend, timeout=60000):
    window.backend.setCurrentIndex(window.backend.findData(backend))
    window.run_current()
    assert window.busy
    qtbot.waitUntil(lambda: not window.busy, timeout=timeout)


def test_opening_a_sample_shows_it_with_its_key_fields(qtbot, window):
    scan = _open(qtbot, window, CHEST)
    assert window.current_scan is scan and window.scan_list.count() == 1
    fields = {window.metadata_panel.form.itemAt(i, window.metadata_panel.form.ItemRole.LabelRole).widget().text():
              window.metadata_panel.form.itemAt(i, window.metadata_panel.form.ItemRole.FieldRole).widget().text()
              for i in range(window.metadata_panel.form.rowCount())}
    assert fields["Modality:"] == "CR" and "1841 × 1955" in fields["Size:"] and scan.decoder in fields["Decoded by:"]
    assert window.run_button.isEnabled() and window.compare_button.isEnabled()


@pytest.mark.parametrize("backend", BACKEND_NAMES)
def test_each_backend_runs_and_fills_prediction_and_timing(qtbot, window, backend):
    _open(qtbot, window, CT)
    _run(qtbot, window, backend)
    prediction = window.predictions[(CT, 0)]
    assert prediction.backend == backend and prediction.withheld  # a CT: outside the chest film model's domain
    assert f"backend {backend}" in window.prediction_panel.heading.text()
    assert "out of distribution: modality CT" in window.prediction_panel.warnings.text()
    assert window.prediction_panel.notice.isVisible()
    shown = window.timing_chart.values()
    assert set(shown[backend]) >= {"rescale", "window", "equalize", "resize", "normalize", "heatmap"}
    assert set(shown["shared"]) == {"decode", "infer", "postprocess"}
    assert window.timing_chart.title.text() == f"CT_small.dcm, frame 1 of 1: {backend}"


def test_compare_all_fills_the_chart_and_the_equivalence_badge(qtbot, window):
    _open(qtbot, window, CT)
    window.repeats.setValue(1)
    window.compare_current()
    qtbot.waitUntil(lambda: not window.busy, timeout=120000)
    shown = window.timing_chart.values()
    assert set(BACKEND_NAMES) <= set(shown)
    for backend in BACKEND_NAMES:
        assert {"rescale", "window", "equalize", "resize", "normalize", "heatmap"} <= set(shown[backend])
        assert all(v > 0 for v in shown[backend].values())
    assert set(shown["shared"]) == {"decode", "infer", "postprocess"}
    assert "equivalent" in window.badge.text() and "agree" in window.badge.text() and window.badge.isVisible()
    assert window.timings[(CT, 0)].max_abs_diff < 1e-4
    assert window.tabs.currentWidget() is window.timing_chart  # the first comparison brings its tab forward


class _CancelFlagThatWaits(threading.Event):
    """The Run toolbar's cancel flag, whose ``GATED_CHECK``-th check (on the run's worker thread, well inside a naive
    stage: it checks before every row) waits until ``gui_turned`` is set, or gives up after a minute."""

    GATED_CHECK = 100

    def __init__(self, gui_turned: threading.Event):
        super().__init__()
        self.gui_turned, self.checks, self.gui_turned_in_time = gui_turned, 0, False

    def is_set(self) -> bool:
        self.checks += 1
        if self.checks == self.GATED_CHECK:
            self.gui_turned_in_time = self.gui_turned.wait(60)
        return super().is_set()


def test_a_naive_run_can_be_cancelled_and_the_window_stays_responsive(qtbot, window):
    """The run stops mid-stage until the GUI thread has handled 10 timer events while it goes; then Cancel is
    pressed. A run blocking the GUI thread lets no timer event through, so the gate times out and the test fails,
    however fast or slow the machine."""
    _open(qtbot, window, CHEST)
    window.backend.setCurrentIndex(window.backend.findData("naive"))
    gui_turned = threading.Event()
    window.run_toolbar._cancel = flag = _CancelFlagThatWaits(gui_turned)
    ticks_while_running = 0

    def tick() -> None:
        nonlocal ticks_while_running
        ticks_while_running += window.busy
        if ticks_while_running == 10:
            window.cancel_button.click()
            gui_turned.set()

    timer = QTimer(interval=20)
    timer.timeout.connect(tick)
    timer.start()
    window.run_current()
    qtbot.waitUntil(lambda: not window.busy, timeout=300000)  # a hang guard only
    timer.stop()
    assert flag.gui_turned_in_time and ticks_while_running >= 10  # the event loop kept turning during the run
    assert flag.checks == _CancelFlagThatWaits.GATED_CHECK  # the next check saw Cancel: stopped mid-stage
    assert "cancelled" in window.statusBar().currentMessage()
    assert (CHEST, window.viewer.frame) not in window.predictions
    assert window.run_button.isEnabled()


def test_a_decoder_bomb_is_reported_by_name_and_the_good_file_opens(qtbot, window, tmp_path):
    bomb = bomb_files.jpeg_sof_bomb(tmp_path)
    _open(qtbot, window, bomb, CT, expect=1)
    assert window.current_scan.path == CT
    assert "jpeg_sof_60000.dcm: JPEG codestream declares 60000 x 60000" in window.last_problems


def test_bad_files_are_reported_together_and_the_app_goes_on(qtbot, window, tmp_path):
    broken = []
    for i in range(20):
        path = tmp_path / f"broken_{i}.dcm"
        path.write_bytes(CT.read_bytes()[: 1000 + 37 * i])
        broken.append(path)
    _open(qtbot, window, *broken, CT, expect=1)
    assert window.last_problems.startswith("20 files could not be opened\n")
    assert all(f"broken_{i}.dcm: " in window.last_problems for i in range(20))  # every file named, with its reason
    dialogs = [w for w in QApplication.topLevelWidgets() if w.isVisible() and w.inherits("QMessageBox")]
    assert len(dialogs) == 1
    dialogs[0].close()
    _run(qtbot, window, "vectorized")
    assert (CT, 0) in window.predictions


def _drag(widget, start: QPoint, end: QPoint) -> None:
    for kind, pos, buttons in ((QMouseEvent.Type.MouseButtonPress, start, Qt.MouseButton.LeftButton),
                               (QMouseEvent.Type.MouseMove, (start + end) / 2, Qt.MouseButton.LeftButton),
                               (QMouseEvent.Type.MouseMove, end, Qt.MouseButton.LeftButton),
                               (QMouseEvent.Type.MouseButtonRelease, end, Qt.MouseButton.NoButton)):
        event = QMouseEvent(kind, QPointF(pos), QPointF(widget.mapToGlobal(pos)), Qt.MouseButton.LeftButton,
                            buttons, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(widget, event)


def test_window_level_drag_changes_the_displayed_window(qtbot, window):
    _open(qtbot, window, CT)
    before = window.viewer.window()
    picture = window.viewer.grab().toImage()
    centre = window.viewer.viewport().rect().center()
    _drag(window.viewer.viewport(), centre, centre + QPoint(80, 60))
    assert window.viewer.window() != before
    assert "C " in window.window_label.text() and "W " in window.window_label.text()
    assert window.viewer.grab().toImage() != picture


def test_patient_fields_are_hidden_until_revealed(qtbot, window):
    _open(qtbot, window, CT)
    values = window.metadata_panel.visible_values()
    assert HIDDEN in values and "JFK IMAGING CENTER" not in values and "CompressedSamples^CT1" not in values
    window.metadata_panel.search.setText("institution")
    assert window.metadata_panel.visible_values() == [HIDDEN]
    window.metadata_panel.reveal.setChecked(True)
    assert window.metadata_panel.visible_values() == ["JFK IMAGING CENTER"]


def test_heatmap_toggle_changes_the_picture(qtbot, window):
    _open(qtbot, window, CHEST)
    _run(qtbot, window, "vectorized")
    assert window.overlay.isEnabled()
    window.overlay.setChecked(False)
    plain = window.viewer.grab().toImage()
    window.overlay.setChecked(True)
    assert window.viewer.grab().toImage() != plain
    window.overlay.setChecked(False)
    assert window.viewer.grab().toImage() == plain


def test_export_with_a_prediction_carries_the_notice(qtbot, window, tmp_path):
    from PIL import Image

    _open(qtbot, window, CT)
    window.export_view(tmp_path / "plain.png")
    _run(qtbot, window, "vectorized")
    window.export_view(tmp_path / "marked.png")
    plain, marked = (Image.open(tmp_path / name) for name in ("plain.png", "marked.png"))
    assert plain.size == (128, 128) and marked.size[0] == 128 and marked.size[1] > 128


def test_settings_persist_between_sessions(qtbot, settings):
    first = MainWindow(settings=settings, warm_numba=False)
    qtbot.addWidget(first)
    first.backend.setCurrentIndex(first.backend.findData("numba"))
    first.repeats.setValue(7)
    first.close()
    second = MainWindow(settings=settings, warm_numba=False)
    qtbot.addWidget(second)
    assert second.backend_name == "numba" and second.repeats.value() == 7
    assert settings.value("geometry") is not None


def test_numba_compiles_in_the_background_at_start_up(qtbot, settings):
    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    index = win.backend.findData("numba")
    qtbot.waitUntil(lambda: win.numba_compile is not None, timeout=180000)
    figure = win.numba_compile  # compiled, loaded from the on-disk cache, or already in memory (earlier tests)
    assert win.backend.itemText(index) == f"numba ({describe(figure.ms, figure.source)})"


def test_without_a_display_the_command_says_how_to_use_the_cli():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    radbench = Path(os.sys.executable).parent / "radbench"
    result = subprocess.run([str(radbench), str(CT)], capture_output=True, text=True, env=env, timeout=300,
                            check=False)
    assert "no display" in result.stderr and "radbench predict" in result.stderr
    assert "prediction:" in result.stdout and result.returncode == 0


def test_batch_window_processes_a_folder_and_exports_its_rows(qtbot, window, tmp_path):
    import csv
    import shutil

    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(CT, folder / "ct.dcm")
    (folder / "broken.dcm").write_bytes(CT.read_bytes()[:900])
    (folder / "notes.txt").write_text("not a scan")
    dialog = window.open_batch()
    dialog.folder.setText(str(folder))
    dialog.workers.setValue(1)
    dialog.start()
    qtbot.waitUntil(lambda: not dialog.running, timeout=120000)
    statuses = {Path(r["path"]).name: r["status"] for r in dialog.rows}
    assert statuses == {"ct.dcm": "ok", "broken.dcm": "error", "notes.txt": "skipped"}
    assert dialog.model.rowCount() == 3
    assert dialog.headers == ["File", "Status", "Label", "P(NORMAL)", "P(PNEUMONIA)", "Withheld (why)", "Warnings",
                              "Error"]
    cells = {dialog.model.item(r, 0).text(): [dialog.model.item(r, c) for c in range(8)] for r in range(3)}
    failed = cells["broken.dcm"]
    assert failed[1].text() == "error" and failed[7].text() and failed[0].background().color().red() == 255
    assert failed[0].toolTip() == str(folder / "broken.dcm")  # the name in the cell, the full path in the tooltip
    withheld = cells["ct.dcm"]  # the CT: no label, amber row, the reason in full in its tooltip
    assert withheld[1].text() == "ok" and withheld[2].text() == "" and withheld[5].text().startswith("withheld")
    assert withheld[5].toolTip() == withheld[5].text() and withheld[0].background().color() == QColor("#fff1c1")
    assert all(cell.text().endswith("%") and len(cell.text().split(".")[1]) == 2 for cell in withheld[3:5])  # "61.2%"
    dialog.filter.setCurrentIndex(dialog.filter.findData("error"))
    assert dialog.proxy.rowCount() == 1 and dialog.filter.currentText() == "Errors (1)"
    dialog.filter.setCurrentIndex(dialog.filter.findData("withheld"))
    assert dialog.proxy.rowCount() == 1 and dialog.proxy.index(0, 0).data() == "ct.dcm"
    dialog.table.selectRow(0)
    assert "Withheld (why): withheld" in dialog.details.text() and str(folder / "ct.dcm") in dialog.details.text()
    assert "P(NORMAL) " in dialog.details.text()
    dialog.filter.setCurrentIndex(0)
    assert dialog.proxy.rowCount() == 3
    assert "1 ok (1 withheld), 1 error, 1 skipped" in dialog.status.text()
    assert "decode" in dialog.chart.values()["shared"] and "3 files" in dialog.chart.title.text()
    dialog.export_csv(tmp_path / "out.csv")
    with (tmp_path / "out.csv").open() as f:
        assert sorted(Path(r["path"]).name for r in csv.DictReader(f)) == ["broken.dcm", "ct.dcm", "notes.txt"]
    dialog.openRequested.emit(str(folder / "ct.dcm"))
    qtbot.waitUntil(lambda: not window.opening, timeout=30000)
    assert window.current_scan.path == folder / "ct.dcm"


def test_profile_from_the_menu_writes_a_prof(qtbot, window, tmp_path):
    _open(qtbot, window, CT)
    window.profile_current(tmp_path / "run.prof")
    qtbot.waitUntil(lambda: not window.busy, timeout=60000)
    assert (tmp_path / "run.prof").stat().st_size > 0 and "cumulative" in window.last_profile


@pytest.mark.parametrize("content", [b"", b"not onnx at all", b"\x08\x07garbage-protobuf"])
def test_an_unusable_model_file_is_a_clear_message_and_runs_are_off(qtbot, settings, tmp_path, content):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(content)
    win = MainWindow(settings=settings, model_path=bad, warm_numba=False)
    qtbot.addWidget(win)
    assert "model.onnx" in win.last_problems and "not a usable ONNX model" in win.last_problems
    _open(qtbot, win, CT)
    assert not win.run_button.isEnabled() and not win.compare_button.isEnabled()


def test_the_first_start_shows_an_in_domain_film_first_beside_the_adult_one(qtbot, window):
    from radbench.app.scan_files import FIRST_START

    _open(qtbot, window, *FIRST_START, expect=2)
    assert [window.scan_list.item(i).text() for i in range(2)] == ["chest_pediatric_normal.dcm",
                                                                   "chest_cr_rg1_j2k_lossless.dcm"]
    assert window.current_scan.path.name == "chest_pediatric_normal.dcm"
    _run(qtbot, window, "vectorized")
    assert "NORMAL" in window.prediction_panel.label.text() and not window.prediction_panel.warnings.isVisible()


@pytest.mark.slow
def test_the_batch_windows_fast_decode_reaches_the_workers_and_its_rows_say_so(qtbot, window, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / CHEST.name).write_bytes(CHEST.read_bytes())
    (folder / CT.name).write_bytes(CT.read_bytes())
    dialog = window.open_batch()
    dialog.folder.setText(str(folder))
    dialog.backend.setCurrentText("vectorized")
    dialog.workers.setValue(1)
    dialog.fast_decode.setChecked(True)
    dialog.start()
    qtbot.waitUntil(lambda: not dialog.running, timeout=120000)
    used = {Path(r["path"]).name: r["fast_decode"] for r in dialog.rows}
    assert used[CHEST.name].startswith("1/") and used[CT.name].startswith("no: ")
