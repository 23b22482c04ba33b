"""The main window's menu bar, and the file dialogs and message boxes behind its entries."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox

from radbench.app import scan_files
from radbench.app.samples import sample_files
from radbench.inference.model import NOT_FOR_CLINICAL_USE

if TYPE_CHECKING:
    from radbench.app.main_window import MainWindow


def build_menus(window: MainWindow) -> None:
    """File, View, Run and Help; each entry calls a method of ``window`` or of its parts."""
    file_menu = window.menuBar().addMenu("&File")
    add_action(file_menu, "&Open…", lambda: choose_files(window), QKeySequence.StandardKey.Open)
    add_action(file_menu, "Open &folder…", lambda: choose_folder(window))
    window.samples_menu = file_menu.addMenu("Open &sample")
    for path in sample_files():
        add_action(window.samples_menu, path.name, lambda p=path: window.open_files([p]))
    window.recent_menu = file_menu.addMenu("Open &recent")
    window.recent_menu.aboutToShow.connect(lambda: _fill_recent(window, window.recent_menu))
    add_action(file_menu, "&Batch folder…", window.open_batch, QKeySequence("Ctrl+B"))
    file_menu.addSeparator()
    add_action(file_menu, "&Export view as PNG…", lambda: choose_export(window), QKeySequence("Ctrl+E"))
    file_menu.addSeparator()
    add_action(file_menu, "&Quit", window.close, QKeySequence.StandardKey.Quit)
    view = window.menuBar().addMenu("&View")
    add_action(view, "&Fit to window", lambda: window.viewer.fit(), QKeySequence("F"))
    add_action(view, "&Reset view", window.scan_pane.reset_button.click, QKeySequence("R"))
    add_action(view, "&Invert", window.scan_pane.invert.toggle, QKeySequence("I"))
    run = window.menuBar().addMenu("&Run")
    add_action(run, "&Run", window.run_current, QKeySequence("Ctrl+R"))
    add_action(run, "&Compare all backends", window.compare_current, QKeySequence("Ctrl+Shift+R"))
    add_action(run, "C&ancel", window.cancel, QKeySequence("Esc"))
    add_action(run, "&Profile current run…", lambda: choose_profile(window))
    help_menu = window.menuBar().addMenu("&Help")
    add_action(help_menu, "&About RadBench", lambda: show_about(window))


def add_action(menu: QMenu, text: str, slot: Callable, shortcut=None) -> QAction:
    """A menu entry that calls ``slot()`` (without Qt's ``checked`` argument)."""
    action = menu.addAction(text)
    action.triggered.connect(lambda checked=False: slot())
    if shortcut is not None:
        action.setShortcut(shortcut)
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


def show_about(window: MainWindow) -> None:
    QMessageBox.about(window, "About RadBench",
                      "RadBench: open scans, preprocess them with naive, NumPy and Numba backends, classify "
                      f"with ONNX Runtime, and time every stage.\n\n{NOT_FOR_CLINICAL_USE}")
