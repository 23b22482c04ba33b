"""The main window's menu bar, and the file dialogs and message boxes behind its entries."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox

from radbench.app import scan_files
from radbench.app.help_windows import show_about, show_shortcuts
from radbench.app.samples import sample_files
from radbench.app.viewer import ZOOM_STEP

if TYPE_CHECKING:
    from radbench.app.main_window import MainWindow


def build_menus(window: MainWindow) -> None:
    """File, View, Run and Help; each entry calls a method of ``window`` or of its parts."""
    file_menu = window.menuBar().addMenu("&File")
    file_menu.setToolTipsVisible(True)
    add_action(file_menu, "&Open…", lambda: choose_files(window), QKeySequence.StandardKey.Open,
               "Open DICOM, PNG, JPEG or TIFF files (several at once)")
    add_action(file_menu, "Open &folder…", lambda: choose_folder(window), tip="Open every scan in a folder")
    window.samples_menu = file_menu.addMenu("Open &sample")
    for path in sample_files():
        add_action(window.samples_menu, path.name, lambda p=path: window.open_files([p]))
    window.recent_menu = file_menu.addMenu("Open &recent")
    window.recent_menu.aboutToShow.connect(lambda: _fill_recent(window, window.recent_menu))
    add_action(file_menu, "&Batch folder…", window.open_batch, QKeySequence("Ctrl+B"),
               "Classify every scan in a folder in worker processes (the Batch window)")
    file_menu.addSeparator()
    add_action(file_menu, "&Export view as PNG…", lambda: choose_export(window), QKeySequence("Ctrl+E"),
               "Save the image as shown (window, heatmap) at full resolution, with the prediction and the notice")
    file_menu.addSeparator()
    add_action(file_menu, "&Quit", window.close, QKeySequence("Ctrl+Q"))
    view = window.menuBar().addMenu("&View")
    pane = window.scan_pane
    add_action(view, "&Fit to window", lambda: window.viewer.fit(), QKeySequence("F"))
    add_action(view, "&Actual size (1:1)\t1", pane.actual_size)
    add_action(view, "Zoom &in\t+", lambda: pane.zoom(ZOOM_STEP))
    add_action(view, "Zoom &out\t-", lambda: pane.zoom(1 / ZOOM_STEP))
    view.addSeparator()
    add_action(view, "&Previous frame\tPgUp", lambda: pane.step_frame(-1))
    add_action(view, "&Next frame\tPgDown", lambda: pane.step_frame(1))
    add_action(view, "First frame\tHome", lambda: pane.go_to_frame(0))
    add_action(view, "Last frame\tEnd", lambda: pane.go_to_frame(-1))
    view.addSeparator()
    add_action(view, "&Reset view", pane.reset_button.click, QKeySequence("R"))
    add_action(view, "&Invert", pane.invert.toggle, QKeySequence("I"))
    window.annotations_action = action = view.addAction("Corner &annotations")
    action.setCheckable(True)
    action.setShortcut(QKeySequence("A"))
    action.setChecked(window.settings.value("annotations", True, type=bool))
    window.viewer.set_annotations_visible(action.isChecked())
    action.toggled.connect(window.viewer.set_annotations_visible)
    action.toggled.connect(lambda shown: window.settings.setValue("annotations", shown))
    view.addSeparator()
    window.presentation_action = action = view.addAction("&Presentation")
    action.setCheckable(True)
    action.setShortcut(QKeySequence("F11"))
    action.setToolTip("Full screen for a projector: larger type, the image and the Race tab side by side")
    action.toggled.connect(window.presentation.set_active)
    run = window.menuBar().addMenu("&Run")
    add_action(run, "&Run", window.run_current, QKeySequence("Ctrl+R"))
    add_action(run, "&Compare all backends", window.compare_current, QKeySequence("Ctrl+Shift+R"))
    add_action(run, "R&ace the backends (demo)", window.race_current, QKeySequence("Ctrl+D"),
               "Every backend on the frame shown, one after another, stage by stage, with few repeats")
    add_action(run, "C&ancel", window.cancel, QKeySequence("Esc"))
    add_action(run, "&Profile current run…", lambda: choose_profile(window))
    help_menu = window.menuBar().addMenu("&Help")
    add_action(help_menu, "&Keyboard shortcuts", lambda: show_shortcuts(window), QKeySequence("F1"))
    add_action(help_menu, "&About RadBench", lambda: show_about(window))


def add_action(menu: QMenu, text: str, slot: Callable, shortcut=None, tip: str = "") -> QAction:
    """A menu entry that calls ``slot()`` (without Qt's ``checked`` argument). A key written after a tab in
    ``text`` is only shown: the pane's own shortcuts handle it where they apply."""
    action = menu.addAction(text)
    action.triggered.connect(lambda checked=False: slot())
    if shortcut is not None:
        action.setShortcut(shortcut)
    if tip:
        action.setToolTip(tip)
    return action


def _fill_recent(window: MainWindow, menu: QMenu) -> None:
    menu.clear()
    for path in scan_files.recent_files(window.settings):
        add_action(menu, path, lambda p=path: window.open_files([p]))
    if menu.isEmpty():
        menu.addAction("(none)").setEnabled(False)


def choose_files(window: MainWindow) -> None:
    files, _ = QFileDialog.getOpenFileNames(window, "Open scans", scan_files.last_folder(window.settings),
                                            scan_files.OPEN_FILTER)
    if files:
        window.open_files(files)


def choose_folder(window: MainWindow) -> None:
    folder = QFileDialog.getExistingDirectory(window, "Open a folder of scans", scan_files.last_folder(window.settings))
    if folder:
        window.open_files([folder])


def choose_export(window: MainWindow) -> None:
    path = _ask_save_path(window, "Export view as PNG", "_view.png", "PNG image (*.png)")
    if path:
        window.export_view(path)


def choose_profile(window: MainWindow) -> None:
    path = _ask_save_path(window, "Save the profile", f"_{window.backend_name}.prof", "cProfile output (*.prof)")
    if path:
        window.profile_current(path)


def _ask_save_path(window: MainWindow, title: str, suffix: str, file_filter: str) -> str:
    """A save dialog for the current scan, proposing ``<scan stem><suffix>`` in the last folder; "" if none."""
    scan = window.current_scan
    if scan is None:
        return ""
    default = str(Path(scan_files.last_folder(window.settings)) / f"{scan.path.stem}{suffix}")
    return QFileDialog.getSaveFileName(window, title, default, file_filter)[0]


def show_profile(window: MainWindow, out: str, text: str) -> None:
    """Where a profile went, with its top functions in the details (also kept as ``window.last_profile``)."""
    window.last_profile = text
    box = QMessageBox(QMessageBox.Icon.Information, "Profile", f"Profile written to {out} (open it with "
                      "snakeviz). The top functions by cumulative time are in the details.", parent=window)
    box.setDetailedText(text)
    box.open()

